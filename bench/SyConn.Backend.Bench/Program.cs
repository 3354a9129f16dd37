using BenchmarkDotNet.Running;

namespace SyConn.Backend.Bench;

/// <summary>Micro-benchmarks (BenchmarkDotNet). Workload benchmarks live in <c>syconn-store bench</c>.</summary>
public static class Program
{
    /// <summary>
    /// Runs the benchmarks selected on the command line (<c>--filter '*'</c> for all, any BenchmarkDotNet option);
    /// <c>quick-pickle [ENTRIES]</c> prints a quick Stopwatch measurement of the pickle codec instead. Without a
    /// <c>--filter</c> (or <c>--list</c>) it lists the benchmarks and says how to pick them, rather than asking on
    /// the console, so scripts never hang on it.
    /// </summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick-pickle")
        {
            PickleBenchmarks.Quick(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100_000);
            return;
        }
        bool chooses = args.Any(a => a is "--filter" or "-f" or "--list" or "--help" or "-h" or "--version" || a.StartsWith("--filter=", StringComparison.Ordinal));
        if (!chooses)
        {
            Console.WriteLine("usage: dotnet run -c Release --project bench/SyConn.Backend.Bench -- --filter PATTERN [BenchmarkDotNet options]");
            Console.WriteLine("  e.g. --filter '*Lz4*'  (all: --filter '*'); workload benchmarks: syconn-store bench");
            Console.WriteLine("benchmarks:");
            args = [.. args, "--list", "flat"];
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
