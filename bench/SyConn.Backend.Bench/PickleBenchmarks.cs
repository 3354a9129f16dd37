using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;

namespace SyConn.Backend.Bench;

/// <summary>
/// Load and dump of a W2-shaped AttributeDict pickle (workloads.md W2): per key a dict with size, rep_coord
/// int64 (3,), bounding_box int64 (2,3), mesh_bb float32 (2,3), rc_radius float64 scalar, type str,
/// ssv_id uint64 scalar and partners (a list of 2 ints). Throughput is reported as entries per second
/// (the Entries column divided by the mean time).
/// </summary>
[MemoryDiagnoser]
public class PickleBenchmarks
{
    private static readonly string[] TypeNames = ["sv", "mi", "sj", "vc", "syn_ssv"];

    /// <summary>Number of AttributeDict entries.</summary>
    [Params(10_000)]
    public int Entries { get; set; }

    private PyDict _value = null!;
    private byte[] _pickle = null!;

    /// <summary>Builds the value and its protocol-5 pickle.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _value = BuildW2(Entries, 42);
        _pickle = Pickle.Dump(_value, 5);
    }

    /// <summary>Unpickles the whole store.</summary>
    [Benchmark]
    public object Load() => Pickle.Load(_pickle);

    /// <summary>Pickles the whole store at protocol 5.</summary>
    [Benchmark]
    public byte[] Dump() => Pickle.Dump(_value, 5);

    /// <summary>A W2-shaped AttributeDict content of <paramref name="n"/> entries.</summary>
    public static PyDict BuildW2(int n, int seed)
    {
        var rnd = new Random(seed);
        var d = new PyDict(n);
        for (int i = 0; i < n; i++)
        {
            long key = rnd.NextInt64(1, 1_000_000_000);
            var rc = new long[3];
            for (int k = 0; k < 3; k++) rc[k] = rnd.Next(0, 20000);
            var bb = new long[6];
            for (int k = 0; k < 6; k++) bb[k] = rnd.Next(0, 20000);
            var mbb = new float[6];
            for (int k = 0; k < 6; k++) mbb[k] = (float)(rnd.NextDouble() * 1e5);
            d[key] = new PyDict
            {
                ["size"] = (long)rnd.Next(1, 1_000_000),
                ["rep_coord"] = NdArray.Create(rc, 3),
                ["bounding_box"] = NdArray.Create(bb, 2, 3),
                ["mesh_bb"] = NdArray.Create(mbb, 2, 3),
                ["rc_radius"] = NpScalar.Float64(rnd.NextDouble() * 100),
                ["type"] = TypeNames[rnd.Next(TypeNames.Length)],
                ["ssv_id"] = NpScalar.UInt64((ulong)rnd.NextInt64()),
                ["partners"] = new PyList { (long)rnd.Next(), (long)rnd.Next() },
            };
        }
        return d;
    }

    /// <summary>
    /// A quick Stopwatch measurement printed to the console (not a BenchmarkDotNet run): after one warm-up,
    /// <paramref name="reps"/> alternating load/dump runs; prints median and best wall time,
    /// the bytes allocated by the calling thread and the GC pause time per run.
    /// </summary>
    public static void Quick(int entries, int reps = 9)
    {
        var value = BuildW2(entries, 42);
        var bytes = Pickle.Dump(value, 5);
        Pickle.Load(bytes);
        var load = new List<double>();
        var dump = new List<double>();
        long allocLoad = 0, allocDump = 0;
        var gcLoad = new List<double>();
        var gcDump = new List<double>();
        for (int r = 0; r < reps; r++)
        {
            long alloc = GC.GetAllocatedBytesForCurrentThread();
            var pause = GC.GetTotalPauseDuration();
            var sw = Stopwatch.StartNew();
            Pickle.Load(bytes);
            load.Add(sw.Elapsed.TotalMilliseconds);
            gcLoad.Add((GC.GetTotalPauseDuration() - pause).TotalMilliseconds);
            allocLoad = GC.GetAllocatedBytesForCurrentThread() - alloc;
            alloc = GC.GetAllocatedBytesForCurrentThread();
            pause = GC.GetTotalPauseDuration();
            sw.Restart();
            Pickle.Dump(value, 5);
            dump.Add(sw.Elapsed.TotalMilliseconds);
            gcDump.Add((GC.GetTotalPauseDuration() - pause).TotalMilliseconds);
            allocDump = GC.GetAllocatedBytesForCurrentThread() - alloc;
        }
        load.Sort();
        dump.Sort();
        gcLoad.Sort();
        gcDump.Sort();
        Console.WriteLine($"W2 pickle, {entries} entries, {bytes.Length} bytes, {reps} runs: " +
            $"load median {load[reps / 2]:F1} ms (best {load[0]:F1}, {allocLoad / 1048576.0:F1} MiB allocated, GC pause median {gcLoad[reps / 2]:F1} ms), " +
            $"dump median {dump[reps / 2]:F1} ms (best {dump[0]:F1}, {allocDump / 1048576.0:F1} MiB allocated, GC pause median {gcDump[reps / 2]:F1} ms)");
    }
}
