using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Lz4;

public class PyLz4Tests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("", "0000000000")]
    [InlineData("61", "0100000010" + "61")]
    public void Compress_matches_python_lz4_examples(string inputHex, string expectedHex)
    {
        var input = Convert.FromHexString(inputHex);
        Assert.Equal(expectedHex, Convert.ToHexStringLower(PyLz4.Compress(input)));
        Assert.Equal(input, PyLz4.Decompress(Convert.FromHexString(expectedHex)));
    }

    [Fact]
    public void Compress_of_100_zero_bytes_matches_the_spec_example()
    {
        var block = PyLz4.Compress(new byte[100]);
        Assert.Equal("64000000" + "1f0001004b5000000000" + "00", Convert.ToHexStringLower(block));
        Assert.Equal(new byte[100], PyLz4.Decompress(block));
        Assert.Equal(100, PyLz4.DecompressedLength(block));
    }

    [Fact]
    public void Span_overloads_write_what_the_array_overloads_return()
    {
        var data = new byte[5000];
        new Random(7).NextBytes(data.AsSpan(0, 2500));
        var dest = new byte[PyLz4.MaxCompressedLength(data.Length)];
        int n = PyLz4.Compress(data, dest);
        Assert.Equal(PyLz4.Compress(data), dest[..n]);
        var back = new byte[data.Length + 10];
        Assert.Equal(data.Length, PyLz4.Decompress(dest.AsSpan(0, n), back));
        Assert.Equal(data, back[..data.Length]);
        Assert.Throws<ArgumentException>(() => PyLz4.Compress(data, new byte[10]));
        Assert.Throws<ArgumentException>(() => PyLz4.Decompress(dest.AsSpan(0, n), new byte[data.Length - 1]));
    }

    [Fact]
    public void Too_large_input_is_refused_before_compressing()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => PyLz4.MaxCompressedLength(PyLz4.MaxInputSize + 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => PyLz4.MaxCompressedLength(-1));
        var ex = new Lz4InputTooLargeException(PyLz4.MaxInputSize + 1L, PyLz4.MaxInputSize);
        Assert.IsAssignableFrom<ArgumentException>(ex);
    }

    [Theory]
    [InlineData("", "shorter than the 4-byte size prefix")]
    [InlineData("000000", "shorter than the 4-byte size prefix")]
    [InlineData("00000000", "no LZ4 data")]
    [InlineData("ffffffff00", "above the largest allowed size")]
    [InlineData("0000008000", "above the largest allowed size")]
    [InlineData("0100000010", "corrupt LZ4 block")]
    [InlineData("020000001061", "produced 1 bytes")]
    [InlineData("0100000020" + "6161", "corrupt LZ4 block")]
    [InlineData("0000000010" + "61", "for an empty output")]
    public void Corrupt_blocks_raise_InvalidDataException_saying_what(string hex, string what)
    {
        var block = Convert.FromHexString(hex);
        var ex = Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block, "key 5, chunk 0"));
        Assert.Contains(what, ex.Message);
        Assert.Contains("key 5, chunk 0", ex.Message);
        Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block, new byte[16]));
    }

    [Fact]
    public void Truncated_and_extended_blocks_are_refused()
    {
        var data = new byte[10000];
        for (int i = 0; i < data.Length; i++) data[i] = (byte)(i * 7 / 13);
        var block = PyLz4.Compress(data);
        for (int cut = 5; cut < block.Length; cut += Math.Max(1, block.Length / 17))
            Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block.AsSpan(0, cut)));
        // A prefix announcing more or fewer bytes than the block holds.
        var wrong = (byte[])block.Clone();
        wrong[0]++;
        Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(wrong));
        wrong[0] -= 2;
        Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(wrong));
    }

    /// <summary>Every python-lz4 block in the fixtures' MANIFEST whose bytes are given decompresses to the recorded digest.</summary>
    [SkippableFact]
    public void Fixture_blocks_decompress_to_their_manifest_digests()
    {
        int checkedBlocks = 0;
        foreach (var file in Manifest.Files.Where(f => f.EndsWith(".pkl", StringComparison.Ordinal)))
        {
            var raw = File.ReadAllBytes(Shared.PyFixture(file));
            var found = new List<JsonObject>();
            Collect(Manifest.File_(file), found);
            foreach (var node in found)
            {
                if (node["hex"] is not JsonValue hexNode) continue;
                var block = Convert.FromHexString((string)hexNode!);
                Assert.True(raw.AsSpan().IndexOf(block) >= 0, $"{file}: block {(string)hexNode!} not in the fixture's bytes");
                var data = PyLz4.Decompress(block, file);
                Assert.Equal((long)node["lz4_size_prefix"]!, data.Length);
                Assert.Equal((string)node["lz4_decompressed_sha256"]!, Convert.ToHexStringLower(SHA256.HashData(data)));
                // Our own block of the same data need not be byte-identical to liblz4's, but must round-trip.
                Assert.Equal(data, PyLz4.Decompress(PyLz4.Compress(data)));
                checkedBlocks++;
            }
        }
        Assert.True(checkedBlocks >= 20, $"only {checkedBlocks} fixture blocks with bytes found");
    }

    private static void Collect(JsonNode? node, List<JsonObject> found)
    {
        switch (node)
        {
            case JsonObject o:
                if ((string?)o["t"] == "bytes" && o["lz4_size_prefix"] is not null) found.Add(o);
                foreach (var kv in o) Collect(kv.Value, found);
                break;
            case JsonArray a:
                foreach (var item in a) Collect(item, found);
                break;
        }
    }

    private const string MakeBlocksScript = """
import sys, os, numpy as np, lz4.block
d = sys.argv[1]
rng = np.random.default_rng(20240611)
sizes = [0, 1, 2, 5, 12, 13, 15, 16, 64, 100, 255, 4096, 65535, 65536, 65547, 1 << 20]
sizes += [int(x) for x in rng.integers(0, 1 << 20, 6)]
i = 0
for n in sizes:
    for kind in ('random', 'zeros', 'runs', 'voxels'):
        if kind == 'random':
            data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        elif kind == 'zeros':
            data = bytes(n)
        elif kind == 'runs':
            data = (np.arange(n) // 37 % 7).astype(np.uint8).tobytes()
        else:
            m = n // 24 + 1
            v = np.sort(rng.integers(0, 32, m)) + 10000
            data = np.stack([v, v // 3, v % 5], axis=1).astype(np.uint64).tobytes()[:n]
        open(os.path.join(d, '%03d.raw' % i), 'wb').write(data)
        open(os.path.join(d, '%03d.py' % i), 'wb').write(lz4.block.compress(data))
        i += 1
print(i)
""";

    private const string CheckBlocksScript = """
import sys, os, glob, lz4.block
d = sys.argv[1]
ok = 0
for raw in sorted(glob.glob(os.path.join(d, '*.raw'))):
    data = open(raw, 'rb').read()
    ours = open(raw[:-4] + '.cs', 'rb').read()
    assert lz4.block.decompress(ours) == data, raw
    ok += 1
print(ok)
""";

    [SkippableFact]
    public void Blocks_interoperate_with_python_lz4_both_ways()
    {
        PyRun.Require("numpy", "lz4");
        using var dir = new TempDir();
        int count = int.Parse(PyRun.RunChecked(MakeBlocksScript, [dir.Path]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(count > 50);
        int identical = 0;
        foreach (var raw in Directory.GetFiles(dir.Path, "*.raw").Order(StringComparer.Ordinal))
        {
            var data = File.ReadAllBytes(raw);
            var theirs = File.ReadAllBytes(Path.ChangeExtension(raw, ".py"));
            Assert.Equal(data, PyLz4.Decompress(theirs, Path.GetFileName(raw)));
            Assert.Equal(data.Length, PyLz4.DecompressedLength(theirs));
            var ours = PyLz4.Compress(data);
            File.WriteAllBytes(Path.ChangeExtension(raw, ".cs"), ours);
            if (ours.AsSpan().SequenceEqual(theirs)) identical++;
        }
        Assert.Equal(count.ToString(System.Globalization.CultureInfo.InvariantCulture), PyRun.RunChecked(CheckBlocksScript, [dir.Path]).Trim());
        // Byte-identical output to liblz4 is not required (formats.md §3); it is reported, not asserted.
        output.WriteLine($"{identical} of {count} blocks are byte-identical to python-lz4's");
    }
}
