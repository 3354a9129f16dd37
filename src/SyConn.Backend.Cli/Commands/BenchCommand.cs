using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Cli.Bench;

namespace SyConn.Backend.Cli.Commands;

/// <summary><c>bench WORKLOAD [--scale S] [--reps N] [--out DIR]</c>: the workloads of the benchmark plan, one JSON line each.</summary>
public static class BenchCommand
{
    private static readonly string[] Known = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"];

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var workload = new Argument<string>("workload") { Description = "w1 ... w8, or all." };
        var scale = new Option<double>("--scale") { Description = "Multiply every count of the workload by S.", DefaultValueFactory = _ => 1.0 };
        var reps = new Option<int>("--reps") { Description = "Timed iterations after one warm-up.", DefaultValueFactory = _ => 3 };
        var outDir = new Option<string?>("--out") { Description = "Folder for the store files (kept for inspection); default: a temporary folder." };
        var cmd = new Command("bench", "Run a benchmark workload and print one JSON line per workload (progress on stderr).") { workload, scale, reps, outDir };
        cmd.SetAction((ParseResult r) =>
        {
            var w = r.GetValue(workload)!.ToLowerInvariant();
            var names = w == "all" ? Known : [w];
            if (names.Any(n => !Known.Contains(n))) throw new UsageException($"unknown workload '{w}'; use one of {string.Join(", ", Known)} or all", "WORKLOAD");
            double s = r.GetValue(scale);
            int n = r.GetValue(reps);
            if (s <= 0) throw new UsageException("--scale must be positive", "--scale");
            if (n < 1) throw new UsageException("--reps must be at least 1", "--reps");
            var dir = r.GetValue(outDir) ?? Path.Combine(Path.GetTempPath(), "syconn-bench");
            Directory.CreateDirectory(dir);
            var o = r.InvocationConfiguration.Output;
            var err = r.InvocationConfiguration.Error;
            foreach (var name in names)
            {
                JsonObject line = name switch
                {
                    "w1" => Workloads.W1(s, n, dir, err),
                    "w2" => Workloads.W2(s, n, dir, err),
                    "w3" => Workloads.W3(s, n, dir, err),
                    "w4" => Workloads.W4(s, n, dir, err),
                    "w5" => Workloads.W5(s, n, dir, err),
                    "w6" => W6.RunW6(s, n, dir),
                    "w7" => Workloads.W7(s, n, dir, err),
                    "w8" => W8.Run(s, n, dir, err),
                    _ => throw new UsageException($"workload {name} is not available in this build", "WORKLOAD"),
                };
                o.WriteLine(line.ToJsonString());
                o.Flush();
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>The hidden worker of W8 and of the lost-update tests.</summary>
    public static Command Worker()
    {
        var path = new Argument<string>("path");
        var n = new Argument<int>("n");
        var mode = new Argument<string>("mode") { Description = "durable or nosync" };
        var cmd = new Command("_w8-worker", "internal: locked counter increments") { path, n, mode };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) => W8.Worker(r.GetValue(path)!, r.GetValue(n), r.GetValue(mode) != "nosync", r.InvocationConfiguration.Output));
        return cmd;
    }
}
