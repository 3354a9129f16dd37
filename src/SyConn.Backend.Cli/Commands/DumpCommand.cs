using System.CommandLine;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>syconn-store dump FILE</c>: the raw content of a pickle file as typed JSON; an <c>.npz</c> file as a dict of
/// member name (without <c>.npy</c>, as numpy lists them) to array, an <c>.npy</c> file as its array.
/// </summary>
public static class DumpCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A pickle (.pkl), numpy archive (.npz) or numpy array (.npy) file." };
        var cmd = new Command("dump", "Print the raw content of a pickle, .npz or .npy file as one typed JSON document.") { file };
        cmd.SetAction((ParseResult r) =>
        {
            var path = r.GetValue(file)!;
            StoreCommands.RequireFile(path);
            var value = RawFile.Read(path);
            r.InvocationConfiguration.Output.WriteLine(TypedJson.ToJson(value).ToJsonString(StoreCommands.Indented));
            return 0;
        });
        return cmd;
    }
}
