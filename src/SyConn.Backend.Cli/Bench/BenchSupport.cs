using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace SyConn.Backend.Cli.Bench;

/// <summary>Timing helpers for the workload runner: phases with best/median/runs, and the JSON line.</summary>
internal sealed class PhaseTimings
{
    private readonly Dictionary<string, List<double>> _runs = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    public void Add(string phase, double seconds)
    {
        if (!_runs.TryGetValue(phase, out var l))
        {
            _runs[phase] = l = [];
            _order.Add(phase);
        }
        l.Add(seconds);
    }

    public double Median(string phase) => BenchMath.Median(_runs[phase]);

    public bool Has(string phase) => _runs.ContainsKey(phase);

    public double Best(string phase) => _runs[phase].Min();

    /// <summary>The phases in the order first recorded.</summary>
    public IReadOnlyList<string> Names => _order;

    public JsonObject ToJson()
    {
        var o = new JsonObject();
        foreach (var p in _order)
        {
            var runs = _runs[p];
            var arr = new JsonArray();
            foreach (var r in runs) arr.Add(Math.Round(r, 6));
            o[p] = new JsonObject { ["best"] = Math.Round(runs.Min(), 6), ["median"] = Math.Round(BenchMath.Median(runs), 6), ["runs"] = arr };
        }
        return o;
    }
}

internal static class BenchMath
{
    public static double Median(IReadOnlyList<double> xs)
    {
        var s = xs.OrderBy(x => x).ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    public static double Time(Action a)
    {
        var sw = Stopwatch.StartNew();
        a();
        return sw.Elapsed.TotalSeconds;
    }

    public static void Quiesce()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
    }

    public static int Scaled(int n, double scale) => Math.Max(1, (int)Math.Round(n * scale));

    public static JsonObject Env() => new()
    {
        ["dotnet"] = RuntimeInformation.FrameworkDescription,
        ["os"] = RuntimeInformation.OSDescription,
        ["nproc"] = Environment.ProcessorCount,
        ["gc_server"] = System.Runtime.GCSettings.IsServerGC,
    };

    public static JsonObject Line(string workload, double scale, int reps, JsonObject parameters, PhaseTimings timings, JsonObject sizes, JsonObject? extra = null, string backend = "fs")
    {
        var o = new JsonObject
        {
            ["workload"] = workload,
            ["impl"] = "csharp",
            ["backend"] = backend,
            ["scale"] = scale,
            ["reps"] = reps,
            ["params"] = parameters,
            ["timings"] = timings.ToJson(),
            ["sizes"] = sizes,
        };
        if (extra is not null) foreach (var kv in extra.ToList()) { extra.Remove(kv.Key); o[kv.Key] = kv.Value; }
        o["env"] = Env();
        return o;
    }

    /// <summary>Runs <paramref name="iteration"/> once untimed (warm-up), then <paramref name="reps"/> times recording phases.</summary>
    public static void Repeat(int reps, Action<PhaseTimings> iteration, PhaseTimings timings, TextWriter progress, string name)
    {
        progress.WriteLine($"bench {name}: warm-up");
        iteration(new PhaseTimings());
        for (int r = 0; r < reps; r++)
        {
            progress.WriteLine($"bench {name}: rep {r + 1}/{reps}");
            Quiesce();
            iteration(timings);
        }
    }

    public static long FileSize(string path) => File.Exists(path) ? new FileInfo(path).Length : 0;
}
