using BenchmarkDotNet.Running;

namespace SyConn.Backend.Bench;

/// <summary>Micro-benchmarks (BenchmarkDotNet). Workload benchmarks live in <c>syconn-store bench</c>.</summary>
public static class Program
{
    /// <summary>
    /// Runs the benchmarks selected on the command line (<c>--filter '*'</c> for all);
    /// <c>quick-pickle [ENTRIES]</c> prints a quick Stopwatch measurement of the pickle codec instead.
    /// </summary>
    public static void Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "quick-pickle")
        {
            PickleBenchmarks.Quick(args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 100_000);
            return;
        }
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
    }
}
