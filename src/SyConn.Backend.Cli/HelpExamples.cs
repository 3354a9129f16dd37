using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;

namespace SyConn.Backend.Cli;

/// <summary>
/// Examples in <c>--help</c>: a command's own help ends with its examples, while the list of commands shows each
/// description's first part only. A command may write its examples into its description after a line
/// <c>Example:</c> or <c>Examples:</c>; commands without any get theirs from <see cref="Defaults"/>.
/// </summary>
internal static class HelpExamples
{
    private static readonly Dictionary<string, string[]> Defaults = new(StringComparer.Ordinal)
    {
        ["dump"] = ["syconn-store dump attr_dict.pkl > attr_dict.json", "syconn-store dump voxel.npz", "syconn-store dump bt:cells/attr_dict"],
        ["keys"] = ["syconn-store keys sv_0/so_storage_100/01/attr_dict.pkl", "syconn-store keys bt:cells/mesh --as MeshStorage --json"],
        ["convert"] = ["syconn-store convert attr_dict.pkl bt:cells/attr_dict", "syconn-store convert bt:cells/attr_dict copy.pkl --overwrite"],
        ["bss"] = ["syconn-store bss mapping_lookup_reverse.h5 --attr ssv_ids --ids 5,17,42", "syconn-store bss mapping_lookup_reverse.h5 --attr ssv_ids --ids-file ids.npy --json"],
        ["bss-build"] = ["syconn-store bss-build lookup.h5 --ids ids.npy --attr ssv_ids=cells.npy --shards 5"],
        ["bench"] = ["syconn-store bench w1", "syconn-store bench all --reps 3 --out results/", "syconn-store bench w8 --backend bt"],
        ["bt-init"] = ["syconn-store bt-init --coordinator 'Host=coord;Database=syconn' --shard 'Host=shard1;Database=syconn' --shard 'Host=shard2;Database=syconn'"],
        ["bt-move-partition"] = ["syconn-store bt-move-partition 3 --to 'Host=shard3;Database=syconn'"],
        ["bt-layout"] = ["syconn-store bt-layout --count", "syconn-store bt-layout --json"],
        ["load-seg"] = ["syconn-store load-seg knossosdatasets/seg --offset 0,0,0 --size 64,64,32 --json", "syconn-store load-seg knossosdatasets/seg --offset=-20,0,0 --size=8,8,8"],
        ["voxels"] = ["syconn-store voxels sv_0/so_storage_100/01/voxel.pkl 1026", "syconn-store voxels voxel.pkl 5 --dataset /data/knossosdatasets/seg --json"],
    };

    /// <summary>Moves examples out of the descriptions of <paramref name="root"/>'s commands and prints them with each command's help.</summary>
    public static void Install(RootCommand root)
    {
        var examples = new Dictionary<Command, string[]>();
        foreach (var c in root.Subcommands)
        {
            var d = c.Description ?? "";
            int at = FindExamples(d);
            if (at >= 0)
            {
                examples[c] = d[at..].Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Trim()).ToArray();
                c.Description = d[..at].TrimEnd();
            }
            else if (Defaults.TryGetValue(c.Name, out var ex))
            {
                examples[c] = ex;
            }
        }
        foreach (var help in root.Options.OfType<HelpOption>())
        {
            if (help.Action is HelpAction inner) help.Action = new WithExamples(inner, examples);
        }
    }

    /// <summary>True when <paramref name="action"/> prints help (with examples).</summary>
    public static bool IsHelp(CommandLineAction? action) => action is WithExamples or HelpAction;

    private static int FindExamples(string description)
    {
        foreach (var marker in new[] { "\nExamples:\n", "\nExample:\n" })
        {
            int i = description.IndexOf(marker, StringComparison.Ordinal);
            if (i >= 0) return i + 1;
        }
        return -1;
    }

    private sealed class WithExamples(HelpAction inner, Dictionary<Command, string[]> examples) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            int code = inner.Invoke(parseResult);
            if (examples.TryGetValue(parseResult.CommandResult.Command, out var lines) && lines.Length > 0)
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine(lines.Length == 1 ? "Example:" : "Examples:");
                foreach (var l in lines) output.WriteLine("  " + l);
                output.WriteLine();
            }
            return code;
        }
    }
}
