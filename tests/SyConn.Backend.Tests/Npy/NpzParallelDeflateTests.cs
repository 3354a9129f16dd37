using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Tests.Infrastructure;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Npy;

/// <summary>
/// The parallel deflate pipeline of <see cref="NpzWriter"/>: numpy loads what both deflate engines write, the
/// bytes do not depend on thread timing, the chosen level stays within 5% of numpy's file size on voxel
/// coordinates, and a failing member fails the archive without hanging.
/// </summary>
public class NpzParallelDeflateTests
{
    private static readonly DateTime Stamp = new(2024, 5, 6, 7, 8, 10);

    /// <summary>The deflate engine of a test case: libdeflate (skipped where it is missing) or System.IO.Compression.</summary>
    private static DeflateEngine Engine(bool libdeflate)
    {
        if (!libdeflate) return DeflateEngine.Managed;
        Requires.That(LibDeflate.IsAvailable, $"{LibDeflate.Library} (apt-get install libdeflate0)");
        return DeflateEngine.LibDeflate;
    }

    /// <summary>W7-like voxel coordinates (the reference's <c>gen_w7</c>): n in [10,1000] sorted distinct voxels of
    /// a 16^3 box plus an offset in [0,20000)^3, int64 (n,3).</summary>
    internal static List<KeyValuePair<string, NdArray>> VoxelCoordinates(int count, int seed)
    {
        var rng = new Random(seed);
        var perm = Enumerable.Range(0, 4096).ToArray();
        var result = new List<KeyValuePair<string, NdArray>>(count);
        for (int k = 0; k < count; k++)
        {
            int n = rng.Next(10, 1001);
            for (int i = 0; i < n; i++) { int j = rng.Next(i, perm.Length); (perm[i], perm[j]) = (perm[j], perm[i]); }
            var lin = perm.AsSpan(0, n).ToArray();
            Array.Sort(lin);
            long ox = rng.Next(20000), oy = rng.Next(20000), oz = rng.Next(20000);
            var v = new long[3 * n];
            for (int i = 0; i < n; i++)
            {
                v[3 * i] = (lin[i] >> 8) + ox;
                v[3 * i + 1] = ((lin[i] >> 4) & 15) + oy;
                v[3 * i + 2] = (lin[i] & 15) + oz;
            }
            result.Add(new(rng.NextInt64(10_000_000_000).ToString(CultureInfo.InvariantCulture), NdArray.Wrap(v, n, 3)));
        }
        return result;
    }

    /// <summary>Every dtype/order case of the npy tests, many small members (more than the pipeline holds at
    /// once), a member larger than its byte window, and empty members.</summary>
    private static List<KeyValuePair<string, NdArray>> Mixed()
    {
        var list = new List<KeyValuePair<string, NdArray>>();
        for (int i = 0; i < NpyTests.Cases.Length; i++) list.Add(new($"case{i}", NpyTests.Make(i)));
        list.AddRange(VoxelCoordinates(300, 11));
        var big = new int[20_000_000]; // 80 MB, more than the 64 MiB of member bytes the writer keeps in flight
        for (int i = 0; i < big.Length; i++) big[i] = (i / 7) ^ (i % 1000);
        list.Add(new("big", NdArray.Wrap(big, 5_000_000, 4)));
        list.Add(new("empty", NdArray.Zeros(DType.Int64, 0, 3)));
        list.AddRange(VoxelCoordinates(50, 12).Select((kv, i) => new KeyValuePair<string, NdArray>($"tail{i}", kv.Value)));
        return list;
    }

    private static byte[] Write(IEnumerable<KeyValuePair<string, NdArray>> arrays, DeflateEngine engine, int maxParallelism,
        CompressionLevel level = CompressionLevel.Optimal, bool compress = true)
    {
        using var ms = new MemoryStream();
        using (var w = new NpzWriter(ms, compress, leaveOpen: true, level, Stamp, engine, maxParallelism))
            foreach (var (k, v) in arrays) w.Add(k, v);
        return ms.ToArray();
    }

    private const string LoadScript = """
import sys, json, hashlib, zipfile, numpy as np
path = sys.argv[1]
with zipfile.ZipFile(path) as z:
    infos = z.infolist()
    bad = z.testzip()
members = [[i.filename, i.compress_type, i.flag_bits, list(i.date_time)] for i in infos]
arrays = []
with np.load(path) as f:
    for k in f.files:
        a = f[k]
        arrays.append([k, a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()])
print(json.dumps({'bad': bad, 'members': members, 'arrays': arrays}))
""";

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void Numpy_loads_equal_arrays_from_either_engine(bool libdeflate)
    {
        PyRun.Require("numpy");
        var engine = Engine(libdeflate);
        var arrays = Mixed();
        using var dir = new TempDir();
        var path = dir.File("mixed.npz");
        File.WriteAllBytes(path, Write(arrays, engine, maxParallelism: 0));
        var r = JsonNode.Parse(PyRun.RunChecked(LoadScript, [path]))!;
        Assert.Null((string?)r["bad"]); // every member's CRC matches
        var members = r["members"]!.AsArray();
        Assert.Equal(arrays.Select(a => a.Key + ".npy"), members.Select(m => (string)m![0]!));
        Assert.All(members, m =>
        {
            Assert.Equal(8, (int)m![1]!);                  // deflated
            Assert.Equal(0, (int)m[2]!);                   // no data descriptor, ASCII name
            Assert.Equal("[2024,5,6,7,8,10]", m[3]!.ToJsonString());
        });
        var loaded = r["arrays"]!.AsArray();
        Assert.Equal(arrays.Count, loaded.Count);
        for (int i = 0; i < arrays.Count; i++)
        {
            var (k, a) = arrays[i];
            var e = loaded[i]!.AsArray();
            Assert.Equal(k, (string)e[0]!);
            Assert.Equal(a.DType.Str, (string)e[1]!);
            Assert.Equal(a.ShapeArray, e[2]!.AsArray().Select(n => (long)n!).ToArray());
            Assert.Equal(a.Sha256C(), (string)e[3]!);
        }
        // Our reader agrees.
        using var ours = new MemoryStream(File.ReadAllBytes(path));
        var back = Npz.ReadAll(ours);
        foreach (var (k, a) in arrays) Assert.True(a.Equals(back[k]), k);
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_bytes_do_not_depend_on_threads_or_timing(bool libdeflate)
    {
        var engine = Engine(libdeflate);
        var arrays = Mixed();
        var parallel = Write(arrays, engine, maxParallelism: 0);
        Assert.Equal(parallel, Write(arrays, engine, maxParallelism: 0));
        Assert.Equal(parallel, Write(arrays, engine, maxParallelism: 1));
        Assert.Equal(parallel, Write(arrays, engine, maxParallelism: 2));
    }

    [Fact]
    public void Members_finishing_out_of_order_are_written_in_order()
    {
        // Fillers that take random times make workers finish members in a different order on every run.
        byte[] Run(int seed)
        {
            var rng = new Random(seed);
            var delays = Enumerable.Range(0, 200).Select(_ => rng.Next(0, 3)).ToArray();
            using var ms = new MemoryStream();
            using (var z = new ZipMemberWriter(ms, deflate: true, CompressionLevel.Optimal, leaveOpen: true, Stamp, DeflateEngine.Auto, maxParallelism: 0))
                for (int i = 0; i < delays.Length; i++)
                {
                    int n = i, d = delays[i];
                    z.Add($"m{n}", 1000 + n, dest =>
                    {
                        if (d > 0) Thread.Sleep(d);
                        for (int j = 0; j < dest.Length; j++) dest[j] = (byte)(j * n >> 3);
                    });
                }
            return ms.ToArray();
        }
        var a = Run(1);
        Assert.Equal(a, Run(2));
        Assert.Equal(a, Run(3));
        using var zip = new ZipArchive(new MemoryStream(a), ZipArchiveMode.Read);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"m{i}"), zip.Entries.Select(e => e.FullName));
        Assert.Equal(1000 + 137, zip.Entries[137].Length);
    }

    [Fact]
    public async Task Many_writers_on_a_busy_thread_pool_all_finish_with_the_same_bytes()
    {
        // Writers running on pool threads themselves, more of them than cores: their workers queue behind them,
        // so each writer must make progress on its own thread while its workers wait for a pool thread.
        var arrays = VoxelCoordinates(400, 5);
        var expected = Write(arrays, DeflateEngine.Auto, maxParallelism: 0);
        var results = new byte[4 * Environment.ProcessorCount + 4][];
        await Task.WhenAll(Enumerable.Range(0, results.Length)
            .Select(i => Task.Run(() => results[i] = Write(arrays, DeflateEngine.Auto, maxParallelism: 0)))).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(results, r => Assert.Equal(expected, r));
    }

    [Fact]
    public void A_failing_member_fails_the_archive_without_hanging()
    {
        using var ms = new MemoryStream();
        var z = new ZipMemberWriter(ms, deflate: true, CompressionLevel.Optimal, leaveOpen: true, Stamp, DeflateEngine.Auto, maxParallelism: 0);
        var thrown = Assert.Throws<InvalidDataException>(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                int n = i;
                z.Add($"m{n}", 100, dest => { if (n == 500) throw new InvalidDataException("member 500"); dest.Fill((byte)n); });
            }
            z.Finish();
        });
        Assert.Equal("member 500", thrown.Message);
        Assert.Throws<InvalidOperationException>(() => z.Add("more", 1, _ => { }));
        long written = ms.Length;
        z.Dispose(); // releases the workers; writes nothing more (no central directory) and does not throw
        z.Dispose();
        Assert.Equal(written, ms.Length);
        Assert.True(written < 500 * 130, $"{written} bytes: members after the failing one were written");
    }

    private const string NumpyRecompress = """
import sys, os, numpy as np
with np.load(sys.argv[1]) as f:
    arrs = {k: f[k] for k in f.files}
np.savez_compressed(sys.argv[2], **arrs)
print(os.path.getsize(sys.argv[2]))
""";

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_default_level_stays_within_5_percent_of_numpys_file_on_voxel_coordinates(bool libdeflate)
    {
        PyRun.Require("numpy");
        var engine = Engine(libdeflate);
        using var dir = new TempDir();
        var ours = dir.File("ours.npz");
        File.WriteAllBytes(ours, Write(VoxelCoordinates(2000, 7), engine, maxParallelism: 0));
        long numpy = long.Parse(PyRun.RunChecked(NumpyRecompress, [ours, dir.File("numpy.npz")]).Trim(), CultureInfo.InvariantCulture);
        double ratio = (double)new FileInfo(ours).Length / numpy;
        Assert.True(ratio <= 1.05, $"{engine}: our file is {ratio:F4} x numpy's");
        Assert.True(ratio >= 0.9, $"{engine}: our file is {ratio:F4} x numpy's (a level much slower than needed?)");
    }

    [Fact]
    public void Stored_members_and_the_other_levels_still_work()
    {
        var arrays = VoxelCoordinates(200, 3);
        foreach (var (level, compress) in new[] { (CompressionLevel.Optimal, false), (CompressionLevel.Fastest, true), (CompressionLevel.SmallestSize, true), (CompressionLevel.NoCompression, true) })
        {
            var bytes = Write(arrays, DeflateEngine.Auto, 0, level, compress);
            Assert.Equal(bytes, Write(arrays, DeflateEngine.Auto, 1, level, compress));
            var back = Npz.ReadAll(new MemoryStream(bytes));
            Assert.Equal(arrays.Select(a => a.Key), back.Keys);
            foreach (var (k, a) in arrays) Assert.True(a.Equals(back[k]), $"{level} {compress} {k}");
        }
    }
}
