using System.CommandLine;

namespace SyConn.Backend.Cli.Commands;

/// <summary><c>syconn-store dump FILE</c>: the raw content of a pickle or npz file as typed JSON.</summary>
public static class DumpCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A pickle (.pkl) or numpy (.npz, .npy) file." };
        var cmd = new Command("dump", "Print the raw content of a pickle or npz file as typed JSON.") { file };
        cmd.SetAction((ParseResult r) =>
        {
            var path = r.GetValue(file)!;
            if (path.Length >= 0) throw new UsageException("dump is not available yet", path);
            return 0;
        });
        return cmd;
    }
}
