using CsCheck;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Lz4;

/// <summary>
/// The two LZ4 codecs behind <see cref="PyLz4"/>, K4os and liblz4 through P/Invoke: the same bytes decoded,
/// blocks of either readable by the other and by python-lz4, and the same refusals of malformed blocks.
/// </summary>
public class NativeLz4Tests(ITestOutputHelper output)
{
    /// <summary>Debian's liblz4 (package liblz4-1), the library python-lz4 links here.</summary>
    private const string DebianLibrary = "/usr/lib/x86_64-linux-gnu/liblz4.so.1";

    /// <summary>Every decoder: K4os, liblz4 and our own (decoding only; it compresses as K4os does).</summary>
    private static readonly Lz4Impl[] Both = [Lz4Impl.Managed, Lz4Impl.Native, Lz4Impl.Builtin];

    /// <summary>Skips (fails under CI) unless liblz4 is loaded.</summary>
    internal static void RequireNative() =>
        Requires.That(NativeLz4.IsAvailable, $"the native LZ4 library ({NativeLz4.Unavailable}; apt-get install liblz4-1)");

    /// <summary>The codec named in a theory's data (the enum is internal, so theories take its name).</summary>
    private static Lz4Impl Codec(string name)
    {
        var impl = Enum.Parse<Lz4Impl>(name);
        if (impl == Lz4Impl.Native) RequireNative();
        return impl;
    }

    [SkippableFact]
    public void Debian_liblz4_is_found_by_its_soname()
    {
        if (!File.Exists(DebianLibrary) || !OperatingSystem.IsLinux())
        {
            Requires.That(false, DebianLibrary);
            return;
        }
        Assert.True(NativeLz4.IsAvailable, NativeLz4.Unavailable);
        Assert.Null(NativeLz4.Unavailable);
        Assert.True(NativeLz4.Version >= NativeLz4.MinimumVersion, NativeLz4.VersionText);
        output.WriteLine($"liblz4 {NativeLz4.VersionText}; {PyLz4.Implementation}");
    }

    [Fact]
    public void The_switch_picks_the_codecs()
    {
        var forced = Environment.GetEnvironmentVariable(PyLz4.SwitchVariable)?.Trim().ToLowerInvariant();
        var expectedEncoder = forced switch { "managed" => Lz4Impl.Managed, "native" => Lz4Impl.Native, _ => PyLz4.DefaultEncoder };
        var expectedDecoder = forced switch { "managed" => Lz4Impl.Managed, "native" => Lz4Impl.Native, _ => PyLz4.DefaultDecoder };
        if (!NativeLz4.IsAvailable)
        {
            expectedEncoder = Lz4Impl.Managed;
            if (expectedDecoder == Lz4Impl.Native) expectedDecoder = PyLz4.DefaultDecoder;
        }
        Assert.Equal(expectedEncoder, PyLz4.Encoder);
        Assert.Equal(expectedDecoder, PyLz4.Decoder);
        output.WriteLine($"{PyLz4.SwitchVariable}={forced ?? "(unset)"}: {PyLz4.Implementation}");
    }

    [Fact]
    public void A_missing_library_means_the_managed_codec_and_no_exception()
    {
        Assert.False(NativeLz4.TryOpen("liblz4-missing-for-the-test.so.1", out nint handle, out var reason));
        Assert.Equal(0, handle);
        Assert.Contains("not found", reason);
        // A library without the functions (libc here) is refused too.
        if (OperatingSystem.IsLinux())
        {
            Assert.False(NativeLz4.TryOpen("libc.so.6", out handle, out reason));
            Assert.Contains("has no LZ4_", reason);
        }
        foreach (var forced in new[] { null, "", "native", "managed", "NATIVE ", "k4os" })
            Assert.Equal(Lz4Impl.Managed, PyLz4.Choose(Lz4Impl.Native, forced, () => false));
        bool asked = false;
        Assert.Equal(Lz4Impl.Managed, PyLz4.Choose(Lz4Impl.Native, "managed", () => asked = true));
        Assert.False(asked); // forcing the managed codec does not even load liblz4
        Assert.Equal(Lz4Impl.Native, PyLz4.Choose(Lz4Impl.Managed, " Native", () => true));
        Assert.Equal(Lz4Impl.Native, PyLz4.Choose(Lz4Impl.Native, "other", () => true));
        Assert.Equal(Lz4Impl.Managed, PyLz4.Choose(Lz4Impl.Managed, null, () => true));
        // The decoder's default is our own: kept unless a codec is forced, and the fallback when liblz4 is forced but missing.
        Assert.Equal(Lz4Impl.Builtin, PyLz4.Choose(Lz4Impl.Builtin, null, () => asked = true));
        Assert.Equal(Lz4Impl.Builtin, PyLz4.Choose(Lz4Impl.Builtin, "native", () => false));
        Assert.Equal(Lz4Impl.Native, PyLz4.Choose(Lz4Impl.Builtin, "native", () => true));
        Assert.Equal(Lz4Impl.Managed, PyLz4.Choose(Lz4Impl.Builtin, "managed", () => true));
        Assert.False(asked);
    }

    [SkippableFact]
    public void Our_bound_is_liblz4s_compressBound()
    {
        RequireNative();
        foreach (int n in new[] { 0, 1, 15, 16, 254, 255, 256, 4096, 65535, 65536, 1 << 20, 123_456_789, PyLz4.MaxInputSize })
            Assert.Equal(NativeLz4.CompressBound(n), PyLz4.MaxCompressedLength(n) - PyLz4.PrefixLength);
        Assert.Equal(0, NativeLz4.CompressBound(PyLz4.MaxInputSize + 1));
    }

    [SkippableTheory]
    [InlineData("Managed")]
    [InlineData("Native")]
    [InlineData("Builtin")]
    public void Spec_examples_with_each_codec(string codec)
    {
        var impl = Codec(codec);
        Assert.Equal("0000000000", Convert.ToHexStringLower(PyLz4.Compress([], impl)));
        Assert.Equal("0100000010" + "61", Convert.ToHexStringLower(PyLz4.Compress("a"u8, impl)));
        Assert.Equal("64000000" + "1f0001004b5000000000" + "00", Convert.ToHexStringLower(PyLz4.Compress(new byte[100], impl)));
        Assert.Equal(new byte[100], PyLz4.Decompress(Convert.FromHexString("64000000" + "1f0001004b500000000000"), impl));
        Assert.Equal("a"u8.ToArray(), PyLz4.Decompress(Convert.FromHexString("010000001061"), impl));
        Assert.Empty(PyLz4.Decompress(Convert.FromHexString("0000000000"), impl));
    }

    // ------------------------------------------------------------------ the same bytes either way

    /// <summary>Inputs of several kinds: random, zeros, short runs, W1-like voxel coordinates, repeated short patterns, float meshes.</summary>
    internal static byte[] Structured(int kind, int length, int seed)
    {
        var rng = new Random(seed);
        var data = new byte[length];
        switch (kind)
        {
            case 0:
                rng.NextBytes(data);
                break;
            case 1:
                break;
            case 2:
                for (int i = 0; i < data.Length; i++) data[i] = (byte)(i / (1 + (seed & 0x7fffffff) % 50) % 7);
                break;
            case 3:
                {
                    // sorted uint64 (n,3) coordinates in a 32^3 box plus an offset, as W1 stores them
                    var coords = new ulong[length / 8 + 1];
                    ulong ox = (ulong)rng.Next(20000), oy = (ulong)rng.Next(20000), oz = (ulong)rng.Next(20000);
                    int lin = 0;
                    for (int i = 0; i + 2 < coords.Length; i += 3)
                    {
                        lin += 1 + rng.Next(6);
                        coords[i] = ox + (ulong)(lin >> 10 & 31);
                        coords[i + 1] = oy + (ulong)(lin >> 5 & 31);
                        coords[i + 2] = oz + (ulong)(lin & 31);
                    }
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(coords.AsSpan())[..length].CopyTo(data);
                    break;
                }
            case 4:
                {
                    var pattern = new byte[1 + rng.Next(20)];
                    rng.NextBytes(pattern);
                    for (int i = 0; i < data.Length; i++) data[i] = rng.Next(100) == 0 ? (byte)rng.Next(256) : pattern[i % pattern.Length];
                    break;
                }
            default:
                {
                    var f = new float[length / 4 + 1];
                    for (int i = 0; i < f.Length; i++) f[i] = 50000f + (float)(rng.NextDouble() * 1000);
                    System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.AsSpan())[..length].CopyTo(data);
                    break;
                }
        }
        return data;
    }

    /// <summary>The bytes of one W1 value: (n,3) uint64, n in [100,5000] unique voxels of a 32^3 box, sorted, plus an offset in [0,20000)^3.</summary>
    internal static byte[] W1Value(Random rng)
    {
        int n = rng.Next(100, 5001);
        var picked = new SortedSet<int>();
        while (picked.Count < n) picked.Add(rng.Next(32 * 32 * 32));
        ulong ox = (ulong)rng.Next(20000), oy = (ulong)rng.Next(20000), oz = (ulong)rng.Next(20000);
        var v = new ulong[3 * n];
        int k = 0;
        foreach (int p in picked)
        {
            v[k++] = ox + (ulong)(p >> 10);
            v[k++] = oy + (ulong)(p >> 5 & 31);
            v[k++] = oz + (ulong)(p & 31);
        }
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(v.AsSpan()).ToArray();
    }

    /// <summary>The bytes of one W5 mask: (64,64,50) uint8 with about 10% ones as balls of radius 3 to 10.</summary>
    internal static byte[] W5Mask(Random rng)
    {
        const int X = 64, Y = 64, Z = 50;
        var m = new byte[X * Y * Z];
        int ones = 0;
        while (ones < m.Length / 10)
        {
            int r = rng.Next(3, 11), cx = rng.Next(X), cy = rng.Next(Y), cz = rng.Next(Z);
            for (int x = Math.Max(0, cx - r); x < Math.Min(X, cx + r + 1); x++)
                for (int y = Math.Max(0, cy - r); y < Math.Min(Y, cy + r + 1); y++)
                    for (int z = Math.Max(0, cz - r); z < Math.Min(Z, cz + r + 1); z++)
                    {
                        int dx = x - cx, dy = y - cy, dz = z - cz;
                        if (dx * dx + dy * dy + dz * dz > r * r || m[(x * Y + y) * Z + z] != 0) continue;
                        m[(x * Y + y) * Z + z] = 1;
                        ones++;
                    }
        }
        return m;
    }

    private static readonly Gen<byte[]> Inputs = Gen.OneOf(
        Gen.Byte.Array[0, 3000],
        Gen.Select(Gen.Int[0, 5], Gen.Int[0, 200_000], Gen.Int, Structured));

    /// <summary>Compresses with both codecs and decodes each block with both: four identical results.</summary>
    private static void CrossCheck(byte[] data)
    {
        var byManaged = PyLz4.Compress(data, Lz4Impl.Managed);
        var byNative = PyLz4.Compress(data, Lz4Impl.Native);
        foreach (var block in new[] { byManaged, byNative })
        {
            Assert.Equal(data.Length, PyLz4.DecompressedLength(block));
            Assert.True(block.Length <= PyLz4.MaxCompressedLength(data.Length));
            foreach (var impl in Both)
            {
                Assert.Equal(data, PyLz4.Decompress(block, impl));
                var dest = new byte[data.Length + 3];
                Assert.Equal(data.Length, PyLz4.Decompress(block, dest, impl));
                Assert.Equal(data, dest[..data.Length]);
            }
        }
        // The span overload writes what the array overload returns.
        var buffer = new byte[PyLz4.MaxCompressedLength(data.Length)];
        Assert.Equal(byNative, buffer[..PyLz4.Compress(data, buffer, Lz4Impl.Native)]);
    }

    [SkippableFact]
    public void Either_codec_decodes_either_codecs_blocks_to_the_same_bytes()
    {
        RequireNative();
        Inputs.Sample(CrossCheck, iter: 400);
    }

    [SkippableFact]
    public void Workload_like_values_cross_decode()
    {
        RequireNative();
        for (int i = 0; i < 50; i++) CrossCheck(W1Value(new Random(i)));
        for (int i = 0; i < 10; i++) CrossCheck(W5Mask(new Random(i)));
        // The most compressible input there is: close to LZ4's limit of 255 bytes per byte, and still accepted.
        var zeros = new byte[10 << 20];
        var block = PyLz4.Compress(zeros, Lz4Impl.Native);
        Assert.True(zeros.Length / (block.Length - 4.0) > 250, $"{block.Length}");
        CrossCheck(zeros);
    }

    [SkippableFact]
    public void K4os_writes_what_LZ4_compress_default_writes_and_above_64_KiB_what_python_lz4_writes()
    {
        RequireNative();
        int sameAsDefault = 0, sameAsStream = 0, total = 0;
        for (int kind = 0; kind < 6; kind++)
            foreach (int n in new[] { 1, 13, 100, 4096, 65536, 65547, 65548, 70_000, 300_000 })
            {
                var data = Structured(kind, n, kind * 31 + n);
                var managed = PyLz4.Compress(data, Lz4Impl.Managed);
                var stream = PyLz4.Compress(data, Lz4Impl.Native);
                var body = new byte[PyLz4.MaxCompressedLength(n)];
                int m = NativeLz4.CompressDefault(data, body);
                Assert.True(m > 0);
                Assert.Equal(data, PyLz4.Decompress([.. managed[..4], .. body[..m]], Lz4Impl.Managed));
                total++;
                if (managed.AsSpan(4).SequenceEqual(body.AsSpan(0, m))) sameAsDefault++;
                if (managed.AsSpan().SequenceEqual(stream)) sameAsStream++;
                // LZ4_compress_default switches to 16-bit tables below LZ4_64Klimit (64 KiB + 11 bytes) only.
                if (n > 65547) Assert.Equal(stream, managed);
            }
        output.WriteLine($"of {total} blocks, K4os = LZ4_compress_default for {sameAsDefault}, = python-lz4's stream call for {sameAsStream}");
    }

    // ------------------------------------------------------------------ malformed blocks

    [Theory]
    [InlineData("", "shorter than the 4-byte size prefix")]
    [InlineData("000000", "shorter than the 4-byte size prefix")]
    [InlineData("00000000", "no LZ4 data")]
    [InlineData("05000000", "no LZ4 data")]
    [InlineData("ffffffff00", "above the largest allowed size")]
    [InlineData("0000008000", "above the largest allowed size")]
    [InlineData("ffffff7f00", "more than 1 bytes of LZ4 data can produce")]
    [InlineData("00ff000010", "more than 1 bytes of LZ4 data can produce")]
    [InlineData("0100000010", "corrupt LZ4 block")]
    [InlineData("020000001061", "produced 1 bytes")]
    [InlineData("0100000020" + "6161", "corrupt LZ4 block")]
    [InlineData("0000000010" + "61", "for an empty output")]
    [InlineData("19000000" + "f001" + "61616161616161616161616161616161" + "0000" + "50" + "6262626262", "corrupt LZ4 block")] // match offset 0 in the last 64 bytes (liblz4's careful loop)
    [InlineData("19000000" + "f001" + "61616161616161616161616161616161" + "1100" + "50" + "6262626262", "corrupt LZ4 block")] // match offset before the start
    [InlineData("0500000050" + "6161616161" + "00", "corrupt LZ4 block")] // data after the last literals
    public void Both_codecs_refuse_malformed_blocks_with_the_same_message(string hex, string what)
    {
        var block = Convert.FromHexString(hex);
        var messages = new List<string>();
        foreach (var impl in Both)
        {
            if (impl == Lz4Impl.Native && !NativeLz4.IsAvailable) continue;
            var ex = Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block, impl, "key 5, chunk 0"));
            Assert.Contains(what, ex.Message);
            Assert.Contains("key 5, chunk 0", ex.Message);
            Assert.StartsWith("python-lz4 block: ", ex.Message);
            messages.Add(ex.Message);
            Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block, new byte[1 << 16], impl));
        }
        Assert.Single(messages.Distinct());
    }

    [SkippableTheory]
    [InlineData("Managed")]
    [InlineData("Native")]
    [InlineData("Builtin")]
    public void Truncated_and_resized_blocks_are_refused(string codec)
    {
        var impl = Codec(codec);
        var data = Structured(3, 10_000, 4);
        var block = PyLz4.Compress(data, impl);
        for (int cut = 5; cut < block.Length; cut++)
            Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block.AsSpan(0, cut), impl));
        foreach (int delta in new[] { -1000, -1, 1, 1000 })
        {
            var wrong = (byte[])block.Clone();
            System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(wrong, data.Length + delta);
            var ex = Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(wrong, impl));
            Assert.Contains(delta < 0 ? "corrupt LZ4 block" : "produced 10000 bytes", ex.Message);
        }
    }

    /// <summary>
    /// A match with offset 0 is invalid in the LZ4 block format, but neither decoder looks for it: liblz4 (and so
    /// python-lz4) copies what the destination held before, K4os skips the bytes, so the two codecs' data would differ
    /// (and liblz4's could be stale memory). Such a block is refused before either decoder runs.
    /// </summary>
    [SkippableFact]
    public void A_match_with_offset_0_is_refused_by_both_codecs()
    {
        RequireNative();
        // 16 literals, a 16-byte match at offset 0, 80 final literals: 112 bytes.
        var block = Convert.FromHexString("70000000" + "fc01" + "6162636465666768696a6b6c6d6e6f70" + "0000" + "f041" + Convert.ToHexString([.. Enumerable.Range(0, 80).Select(i => (byte)i)]));
        Assert.True(HasZeroOffset(block.AsSpan(4)));
        Assert.Equal(18, PyLz4.ZeroOffsetAt(block.AsSpan(4)));
        foreach (var impl in Both)
        {
            var dest = new byte[112];
            dest.AsSpan().Fill(0xA5);
            var e = Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(block, dest, impl, "key 7"));
            Assert.Contains("offset 22 has distance 0", e.Message);
            Assert.Contains("key 7", e.Message);
            // liblz4 and K4os are stopped by a walk before they run; our decoder finds the match as it decodes, having
            // written the 16 literals before it, and nothing else (no stale bytes come out).
            int untouched = impl == Lz4Impl.Builtin ? 16 : 0;
            if (impl == Lz4Impl.Builtin) Assert.Equal("abcdefghijklmnop"u8.ToArray(), dest[..16]);
            Assert.True(dest.AsSpan(untouched).IndexOfAnyExcept((byte)0xA5) < 0, "the destination was written past the bytes before the bad match");
        }
        Assert.Throws<InvalidDataException>(() => SyConn.Backend.Formats.Lz4.Lz4List.Decode(new SyConn.Backend.Python.PyList { new SyConn.Backend.Python.PyBytes(block) }, SyConn.Backend.Arrays.DType.UInt8));
    }

    /// <summary>Whether a raw block (no prefix) holds a match with offset 0; false when it ends before one is found.</summary>
    internal static bool HasZeroOffset(ReadOnlySpan<byte> body)
    {
        int i = 0;
        while (i < body.Length)
        {
            int token = body[i++];
            long literals = token >> 4;
            if (literals == 15)
            {
                int x;
                do
                {
                    if (i >= body.Length) return false;
                    x = body[i++];
                    literals += x;
                }
                while (x == 255);
            }
            if (i + literals >= body.Length) return false; // the last literals, or a block cut short
            i += (int)literals;
            if (i + 2 > body.Length) return false;
            if (body[i] == 0 && body[i + 1] == 0) return true;
            i += 2;
            if ((token & 15) == 15)
            {
                int x;
                do
                {
                    if (i >= body.Length) return false;
                    x = body[i++];
                }
                while (x == 255);
            }
        }
        return false;
    }

    /// <summary>
    /// Mutated blocks: both codecs refuse them with an <see cref="InvalidDataException"/> or both decode them, to the same
    /// bytes unless the block holds an (invalid) match at offset 0; neither writes a byte past the announced size,
    /// whatever the destination holds beyond it.
    /// </summary>
    [SkippableFact]
    public void Mutated_blocks_are_refused_or_decoded_alike_and_never_write_past_the_size()
    {
        RequireNative();
        var rng = new Random(20261203);
        var originals = new List<byte[]>();
        for (int kind = 0; kind < 6; kind++)
            foreach (int n in new[] { 1, 12, 40, 300, 5000, 70_000 })
            {
                originals.Add(PyLz4.Compress(Structured(kind, n, n + kind), Lz4Impl.Native));
                originals.Add(PyLz4.Compress(Structured(kind, n, n - kind), Lz4Impl.Managed));
            }
        const int Slack = 64;
        int refused = 0, decoded = 0, zeroOffset = 0;
        for (int iter = 0; iter < 20_000; iter++)
        {
            var block = ByteMutator.Mutate(originals[rng.Next(originals.Count)], rng, [0x00, 0xff, 0x0f, 0xf0, 0x10]);
            int size;
            try
            {
                size = PyLz4.DecompressedLength(block);
            }
            catch (InvalidDataException)
            {
                refused++;
                continue;
            }
            // A mutated prefix may announce up to 255 bytes per byte of data; such sizes are tried one time in 50 to keep
            // the harness quick (a wrong size alone is what Truncated_and_resized_blocks_are_refused covers).
            if (size > 1 << 20 && rng.Next(50) != 0) continue;
            var results = new byte[Both.Length][];
            var errors = new string?[Both.Length];
            for (int k = 0; k < Both.Length; k++)
            {
                // The same sentinel-filled buffer for both: a block that copies from not yet written bytes reads the same.
                var dest = new byte[size + Slack];
                dest.AsSpan().Fill(0xA5);
                try
                {
                    Assert.Equal(size, PyLz4.Decompress(block, dest, Both[k]));
                    results[k] = dest;
                }
                catch (InvalidDataException e)
                {
                    errors[k] = e.Message;
                }
                if (dest.AsSpan(size).IndexOfAnyExcept((byte)0xA5) >= 0)
                    Assert.Fail($"{Both[k]} wrote past the size of {Convert.ToHexString(block)}");
            }
            for (int k = 1; k < Both.Length; k++)
                if ((errors[0] is null) != (errors[k] is null))
                    Assert.Fail($"the codecs disagree on {Convert.ToHexString(block)}: managed {errors[0] ?? "decodes"}, {Both[k]} {errors[k] ?? "decodes"}");
            if (errors[0] is not null)
            {
                refused++;
            }
            else if (Enumerable.Range(1, Both.Length - 1).FirstOrDefault(k => !results[0].AsSpan().SequenceEqual(results[k])) is int other and > 0)
            {
                if (!HasZeroOffset(block.AsSpan(PyLz4.PrefixLength)))
                    Assert.Fail($"K4os and {Both[other]} decode {Convert.ToHexString(block)} differently from byte {results[0].AsSpan().CommonPrefixLength(results[other])}");
                zeroOffset++;
            }
            else
            {
                decoded++;
            }
        }
        output.WriteLine($"{decoded} mutated blocks decoded alike, {zeroOffset} with an offset-0 match decoded differently, {refused} refused by both");
        Assert.True(refused > 1000 && decoded > 100, $"{decoded} decoded, {refused} refused");
    }

    // ------------------------------------------------------------------ python-lz4 reads what we write

    private const string CheckScript = """
import sys, os, glob, lz4.block
d = sys.argv[1]
ok = 0
for raw in sorted(glob.glob(os.path.join(d, '*.raw'))):
    data = open(raw, 'rb').read()
    for ext in ('.native', '.managed'):
        block = open(raw[:-4] + ext, 'rb').read()
        assert lz4.block.decompress(block) == data, raw + ext
        ok += 1
    # python-lz4's own block, for the byte-identity report
    open(raw[:-4] + '.py', 'wb').write(lz4.block.compress(data))
print(ok)
""";

    [SkippableFact]
    public void Python_lz4_reads_the_blocks_of_both_codecs()
    {
        RequireNative();
        PyRun.Require("lz4");
        using var dir = new TempDir();
        int files = 0;
        var sizes = new[] { 0, 1, 5, 12, 13, 64, 255, 4096, 65535, 65536, 65547, 1 << 20, 3_000_001 };
        for (int kind = 0; kind < 6; kind++)
            foreach (int n in sizes)
            {
                var data = Structured(kind, n, 1000 * kind + n);
                string stem = dir.File($"{files++:D3}");
                File.WriteAllBytes(stem + ".raw", data);
                File.WriteAllBytes(stem + ".native", PyLz4.Compress(data, Lz4Impl.Native));
                File.WriteAllBytes(stem + ".managed", PyLz4.Compress(data, Lz4Impl.Managed));
            }
        for (int i = 0; i < 20; i++)
        {
            var data = i % 4 == 3 ? W5Mask(new Random(i)) : W1Value(new Random(i));
            string stem = dir.File($"{files++:D3}");
            File.WriteAllBytes(stem + ".raw", data);
            File.WriteAllBytes(stem + ".native", PyLz4.Compress(data, Lz4Impl.Native));
            File.WriteAllBytes(stem + ".managed", PyLz4.Compress(data, Lz4Impl.Managed));
        }
        Assert.Equal(2 * files, int.Parse(PyRun.RunChecked(CheckScript, [dir.Path]).Trim(), System.Globalization.CultureInfo.InvariantCulture));
        int nativeSame = 0, managedSame = 0;
        foreach (var raw in Directory.GetFiles(dir.Path, "*.raw"))
        {
            var py = File.ReadAllBytes(Path.ChangeExtension(raw, ".py"));
            if (py.AsSpan().SequenceEqual(File.ReadAllBytes(Path.ChangeExtension(raw, ".native")))) nativeSame++;
            if (py.AsSpan().SequenceEqual(File.ReadAllBytes(Path.ChangeExtension(raw, ".managed")))) managedSame++;
            // python-lz4's blocks decode alike with both codecs.
            var data = File.ReadAllBytes(raw);
            foreach (var impl in Both) Assert.Equal(data, PyLz4.Decompress(py, impl));
        }
        output.WriteLine($"byte-identical to python-lz4: native {nativeSame} of {files}, K4os {managedSame} of {files}");
        // Same library, same calls (a fresh stream, LZ4_compress_fast_continue, acceleration 1): the same bytes.
        Assert.Equal(files, nativeSame);
    }
}
