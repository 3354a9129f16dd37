using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;

namespace SyConn.Backend.Bench;

/// <summary>
/// LZ4 block encode/decode throughput on W1-like and W5-like values (bench/workloads.md), against a plain
/// memcpy of the same bytes. Run with <c>--filter '*Lz4Benchmarks*'</c>.
/// </summary>
[MemoryDiagnoser]
public class Lz4Benchmarks
{
    private byte[][] _items = [];
    private byte[][] _blocks = [];
    private NdArray[] _arrays = [];
    private PyList[] _lists = [];
    private byte[] _dest = [];

    /// <summary>The workload the values look like.</summary>
    [Params("W1", "W5")]
    public string Workload { get; set; } = "W1";

    /// <summary>Builds the values and their compressed blocks.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _arrays = Lz4Workloads.Make(Workload, seed: 1, count: Workload == "W1" ? 200 : 50);
        _items = _arrays.Select(a => a.Data.ToArray()).ToArray();
        _blocks = _items.Select(i => PyLz4.Compress(i)).ToArray();
        _lists = _arrays.Select(a => Lz4List.Encode(a)).ToArray();
        _dest = new byte[_items.Max(i => PyLz4.MaxCompressedLength(i.Length))];
    }

    /// <summary>Copies every value once (the floor).</summary>
    [Benchmark(Baseline = true)]
    public int Memcpy()
    {
        int n = 0;
        foreach (var item in _items) { item.CopyTo(_dest, 0); n += item.Length; }
        return n;
    }

    /// <summary>python-lz4 framed compression into a reused buffer.</summary>
    [Benchmark]
    public int Encode()
    {
        int n = 0;
        foreach (var item in _items) n += PyLz4.Compress(item, _dest);
        return n;
    }

    /// <summary>python-lz4 framed decompression into a reused buffer.</summary>
    [Benchmark]
    public int Decode()
    {
        int n = 0;
        foreach (var block in _blocks) n += PyLz4.Decompress(block, _dest);
        return n;
    }

    /// <summary>Array to LZ4 list (allocates the blocks, as a store's setter does).</summary>
    [Benchmark]
    public int EncodeList()
    {
        int n = 0;
        foreach (var a in _arrays) n += Lz4List.Encode(a).Count;
        return n;
    }

    /// <summary>LZ4 list to array (allocates the result, as a store's getter does).</summary>
    [Benchmark]
    public long DecodeList()
    {
        long n = 0;
        for (int i = 0; i < _lists.Length; i++)
            n += Lz4List.Decode(_lists[i], _arrays[i].DType, [-1, .. _arrays[i].ShapeArray.Skip(1)]).Size;
        return n;
    }
}

/// <summary>Values shaped like the workloads of bench/workloads.md, deterministic for a seed.</summary>
public static class Lz4Workloads
{
    /// <summary><paramref name="count"/> values of workload W1 (sorted uint64 voxel coordinates) or W5 (uint8 masks with balls).</summary>
    public static NdArray[] Make(string workload, int seed, int count) => workload switch
    {
        "W1" => Enumerable.Range(0, count).Select(i => VoxelCoordinates(new Random(seed * 7919 + i))).ToArray(),
        "W5" => Enumerable.Range(0, count).Select(i => BallMask(new Random(seed * 7919 + i))).ToArray(),
        _ => throw new ArgumentException($"unknown workload {workload}", nameof(workload)),
    };

    /// <summary>W1: an (n,3) uint64 array of n in [100,5000] unique voxels of a 32^3 box, lexicographically sorted, shifted by a random offset in [0,20000)^3.</summary>
    public static NdArray VoxelCoordinates(Random rng)
    {
        int n = rng.Next(100, 5001);
        var picked = new SortedSet<int>();
        while (picked.Count < n) picked.Add(rng.Next(32 * 32 * 32));
        ulong ox = (ulong)rng.Next(20000), oy = (ulong)rng.Next(20000), oz = (ulong)rng.Next(20000);
        var v = new ulong[n * 3];
        int k = 0;
        foreach (int p in picked)
        {
            v[k++] = ox + (ulong)(p >> 10);
            v[k++] = oy + (ulong)((p >> 5) & 31);
            v[k++] = oz + (ulong)(p & 31);
        }
        return NdArray.Wrap(v, n, 3);
    }

    /// <summary>W5: a (64,64,50) uint8 mask with about 10% ones as balls of radius 3 to 10.</summary>
    public static NdArray BallMask(Random rng)
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
                        if (dx * dx + dy * dy + dz * dz > r * r) continue;
                        ref byte b = ref m[(x * Y + y) * Z + z];
                        if (b == 0) { b = 1; ones++; }
                    }
        }
        return NdArray.Wrap(m, X, Y, Z);
    }

    /// <summary>
    /// A quick single-core Stopwatch measurement (best of <paramref name="rounds"/>) of memcpy, encode and decode
    /// MB/s (of uncompressed bytes) on a workload's values; not a BenchmarkDotNet run.
    /// </summary>
    public static (double MemcpyMBps, double EncodeMBps, double DecodeMBps, double Ratio) Quick(string workload, int count, int rounds = 5)
    {
        var items = Make(workload, 1, count).Select(a => a.Data.ToArray()).ToArray();
        var blocks = items.Select(i => PyLz4.Compress(i)).ToArray();
        var dest = new byte[items.Max(i => PyLz4.MaxCompressedLength(i.Length))];
        long raw = items.Sum(i => (long)i.Length), packed = blocks.Sum(b => (long)b.Length);
        double Best(Action run)
        {
            run();
            double best = double.MaxValue;
            for (int r = 0; r < rounds; r++)
            {
                var sw = Stopwatch.StartNew();
                run();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
            }
            return raw / 1e6 / best;
        }
        double copy = Best(() => { foreach (var i in items) i.CopyTo(dest, 0); });
        double enc = Best(() => { foreach (var i in items) PyLz4.Compress(i, dest); });
        double dec = Best(() => { foreach (var b in blocks) PyLz4.Decompress(b, dest); });
        return (copy, enc, dec, (double)raw / packed);
    }
}
