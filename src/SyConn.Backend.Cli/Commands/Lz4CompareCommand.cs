using System.CommandLine;
using SyConn.Backend.Cli.Bench;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _lz4-compare [--datasets w1,w3,w5] [--scale S] [--rounds N] [--no-python]</c>: K4os and liblz4
/// (and python-lz4) on the same workload bytes, alternating in each round; one JSON line on stdout, a Markdown table on stderr.
/// </summary>
public static class Lz4CompareCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var datasets = new Option<string>("--datasets") { Description = "Comma-separated: w1, w3, w5.", DefaultValueFactory = _ => "w1,w3,w5" };
        var scale = new Option<double>("--scale") { Description = "Workload scale.", DefaultValueFactory = _ => 1.0 };
        var rounds = new Option<int>("--rounds") { Description = "Timed rounds after one warm-up.", DefaultValueFactory = _ => 7 };
        var noPython = new Option<bool>("--no-python") { Description = "Do not measure python-lz4 beside." };
        var outDir = new Option<string?>("--out") { Description = "Folder for the chunk files handed to Python; default: a temporary folder." };
        var cmd = new Command("_lz4-compare", "Benchmark helper: K4os against native liblz4 on W1/W3/W5 bytes.") { datasets, scale, rounds, noPython, outDir };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            var names = r.GetValue(datasets)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(s => s.ToLowerInvariant()).ToArray();
            double s = r.GetValue(scale);
            int n = r.GetValue(rounds);
            if (s <= 0) throw new UsageException("--scale must be positive", "--scale");
            if (n < 1) throw new UsageException("--rounds must be at least 1", "--rounds");
            if (names.Length == 0 || names.Any(x => x is not ("w1" or "w3" or "w5"))) throw new UsageException("--datasets takes w1, w3 and w5", "--datasets");
            var dir = r.GetValue(outDir) ?? Path.Combine(Path.GetTempPath(), "syconn-lz4-compare");
            var err = r.InvocationConfiguration.Error;
            var result = Lz4Compare.Run(names, s, n, !r.GetValue(noPython), dir, err);
            r.InvocationConfiguration.Output.WriteLine(result.ToJsonString());
            err.Write(Lz4Compare.Table(result));
            return 0;
        });
        return cmd;
    }
}
