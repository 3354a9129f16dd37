using BenchmarkDotNet.Running;

namespace SyConn.Backend.Bench;

/// <summary>Micro-benchmarks (BenchmarkDotNet). Workload benchmarks live in <c>syconn-store bench</c>.</summary>
public static class Program
{
    /// <summary>Runs the benchmarks selected on the command line (<c>--filter '*'</c> for all).</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
