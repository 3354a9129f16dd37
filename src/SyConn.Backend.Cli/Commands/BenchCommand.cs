using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Cli.Bench;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>bench WORKLOAD [--scale S] [--reps N] [--out DIR] [--backend fs|bt]</c>: the workloads of the benchmark plan,
/// one JSON line each. With <c>--backend bt</c> the stores live in PostgreSQL (the server <c>SYCONN_BT</c> names,
/// else one started in a temporary folder for the run and stopped after it); W1, W2 and W8 exist there.
/// </summary>
public static class BenchCommand
{
    private static readonly string[] Known = ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8"];
    private static readonly string[] KnownBt = ["w1", "w2", "w8"];

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var workload = new Argument<string?>("workload") { Description = "w1 ... w8, or all.", Arity = ArgumentArity.ZeroOrOne };
        var scale = new Option<double>("--scale") { Description = "Multiply every count of the workload by S.", DefaultValueFactory = _ => 1.0 };
        var reps = new Option<int>("--reps") { Description = "Timed iterations after one warm-up.", DefaultValueFactory = _ => 3 };
        var outDir = new Option<string?>("--out") { Description = "Folder for the store files (kept for inspection); default: a temporary folder." };
        var backend = new Option<string>("--backend")
        {
            Description = "fs (files, default) or bt (PostgreSQL: the server SYCONN_BT names, else one the runner starts in a temporary folder; w1, w2 and w8 only).",
            DefaultValueFactory = _ => "fs",
        };
        backend.AcceptOnlyFromAmong("fs", "bt");
        var cmd = new Command("bench", "Run a benchmark workload and print one JSON line per workload (progress on stderr).") { workload, scale, reps, outDir, backend };
        cmd.Subcommands.Add(ReadWorker());
        cmd.SetAction((ParseResult r) =>
        {
            if (r.GetValue(workload) is not { } given)
            {
                // No workload: its usage, not a run of everything.
                var usage = r.InvocationConfiguration.Output;
                usage.WriteLine("usage: syconn-store bench WORKLOAD [--scale S] [--reps N] [--out DIR] [--backend fs|bt]");
                usage.WriteLine($"  WORKLOAD: {string.Join(", ", Known)} or all (with --backend bt: {string.Join(", ", KnownBt)} or all)");
                usage.WriteLine("  one JSON line per workload on stdout; 'syconn-store bench --help' for the options");
                return 0;
            }
            var w = given.ToLowerInvariant();
            bool bt = r.GetValue(backend) == "bt";
            var known = bt ? KnownBt : Known;
            var names = w == "all" ? known : [w];
            if (bt && names.Any(n => Known.Contains(n) && !KnownBt.Contains(n)))
                throw new UsageException($"workload '{w}' has no BT variant; with --backend bt use one of {string.Join(", ", KnownBt)} or all", "WORKLOAD");
            if (names.Any(n => !known.Contains(n))) throw new UsageException($"unknown workload '{w}'; use one of {string.Join(", ", known)} or all", "WORKLOAD");
            double s = r.GetValue(scale);
            int n = r.GetValue(reps);
            if (s <= 0) throw new UsageException("--scale must be positive", "--scale");
            if (n < 1) throw new UsageException("--reps must be at least 1", "--reps");
            var dir = r.GetValue(outDir) ?? Path.Combine(Path.GetTempPath(), "syconn-bench");
            Directory.CreateDirectory(dir);
            var o = r.InvocationConfiguration.Output;
            var err = r.InvocationConfiguration.Error;
            if (bt)
            {
                // Disposing stops a server the runner started, also when a workload fails; an interrupt or the
                // process exit stops it too (LocalPostgres watches for them).
                using var server = BtServer.Resolve(err);
                foreach (var name in names)
                {
                    JsonObject line = name switch
                    {
                        "w1" => BtWorkloads.W1(s, n, dir, err, server),
                        "w2" => BtWorkloads.W2(s, n, dir, err, server),
                        _ => W8.RunBt(s, n, err, server),
                    };
                    o.WriteLine(line.ToJsonString());
                    o.Flush();
                }
                return 0;
            }
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

    /// <summary>
    /// The hidden child of the peak-memory measurement: <c>bench _read KIND PATH</c> opens the store read-only, reads
    /// every value and prints its peak resident set as one JSON line.
    /// </summary>
    public static Command ReadWorker()
    {
        var kind = new Argument<string>("kind") { Description = string.Join(", ", PeakMemory.Kinds) };
        var path = new Argument<string>("path");
        var cmd = new Command("_read", "internal: read a whole store and print the peak resident set") { kind, path };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) => PeakMemory.Read(r.GetValue(kind)!, r.GetValue(path)!, r.InvocationConfiguration.Output));
        return cmd;
    }

    /// <summary>The hidden worker of W8 and of the lost-update tests (<c>--bt CONNSTRING</c>: PATH is a bt: address in that database).</summary>
    public static Command Worker()
    {
        var path = new Argument<string>("path");
        var n = new Argument<int>("n");
        var mode = new Argument<string>("mode") { Description = "durable, nosync or deferred (no fsync, deferred write-back)" };
        var bt = new Option<string?>("--bt") { Description = "The BT database (Npgsql connection string) of a bt: PATH." };
        var cmd = new Command("_w8-worker", "internal: locked counter increments") { path, n, mode, bt };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) => W8.Worker(r.GetValue(path)!, r.GetValue(n), W8.ParseWord(r.GetValue(mode)!), r.InvocationConfiguration.Output, r.GetValue(bt)));
        return cmd;
    }
}
