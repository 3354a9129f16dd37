namespace SyConn.Backend.Cli;

/// <summary>Entry point of <c>syconn-store</c>.</summary>
public static class Program
{
    /// <summary>The variable that makes .NET run socket completions on its epoll threads instead of the thread pool.</summary>
    internal const string InlineSocketCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Runs the command line and returns the exit code (0 ok, 1 bad input or failed check, 2 bad usage).</summary>
    /// <remarks>
    /// Before anything opens a socket, <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS</c> is set to 1 unless the
    /// environment sets it (.NET reads it once, when its socket engine starts). The BT backend reads with blocking
    /// sockets, but .NET's epoll thread still sees each arrival of data and, by default, hands it to a thread-pool
    /// worker, which spins before it sleeps: in a W1 pull those workers took about a third of the process's samples
    /// and a sixth of its system time. This program's own socket work is synchronous, so nothing heavy runs on the
    /// epoll thread. A process setting: the program's to make, not the library's.
    /// </remarks>
    public static int Main(string[] args)
    {
        if (Environment.GetEnvironmentVariable(InlineSocketCompletions) is null)
            Environment.SetEnvironmentVariable(InlineSocketCompletions, "1");
        return Cli.Run(args, Console.Out, Console.Error);
    }
}
