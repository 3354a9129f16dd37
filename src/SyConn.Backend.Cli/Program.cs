namespace SyConn.Backend.Cli;

/// <summary>Entry point of <c>syconn-store</c>.</summary>
public static class Program
{
    /// <summary>Runs the command line and returns the exit code (0 ok, 1 bad input or failed check, 2 bad usage).</summary>
    public static int Main(string[] args) => Cli.Run(args, Console.Out, Console.Error);
}
