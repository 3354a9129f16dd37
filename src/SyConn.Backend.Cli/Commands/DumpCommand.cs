using System.CommandLine;
using System.Text.Json;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;

namespace SyConn.Backend.Cli.Commands;

/// <summary><c>syconn-store dump FILE</c>: the raw content of a pickle file as typed JSON.</summary>
public static class DumpCommand
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "A pickle (.pkl) file." };
        var cmd = new Command("dump", "Print the raw content of a pickle file as one typed JSON document.") { file };
        cmd.SetAction((ParseResult r) =>
        {
            var path = r.GetValue(file)!;
            var ext = Path.GetExtension(path);
            if (ext.Equals(".npz", StringComparison.OrdinalIgnoreCase) || ext.Equals(".npy", StringComparison.OrdinalIgnoreCase))
                throw new UsageException("dump of numpy .npz/.npy files is not supported yet; only pickles", path);
            if (!File.Exists(path)) throw new FileNotFoundException($"no such file: {path}", path);
            var data = File.ReadAllBytes(path);
            var value = Pickle.Load(data, sourceName: path);
            r.InvocationConfiguration.Output.WriteLine(TypedJson.ToJson(value).ToJsonString(Indented));
            return 0;
        });
        return cmd;
    }
}
