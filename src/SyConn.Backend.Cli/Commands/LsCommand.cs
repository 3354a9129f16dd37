using System.CommandLine;
using System.Text.Json.Nodes;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>ls DIR [--json]</c>: every store under a working directory, recursively, one line each (path relative to DIR,
/// class told from the content, entry count, size), sorted by path. Reads only, takes no lock.
/// </summary>
/// <remarks>
/// Entries are the object keys of a dict store (as <c>keys</c> lists them), the members of an npz, the IDs of a
/// BinarySearchStore and the mag-1 cube files of a KNOSSOS dataset. A store that cannot be read is listed with
/// class <c>?</c> and the reason; <c>ls</c> still exits 0 (<c>verify</c> is the check).
/// </remarks>
public static class LsCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "The working directory (or one store file)." };
        var json = new Option<bool>("--json") { Description = "Print one JSON document: {\"dir\", \"stores\": [{\"path\", \"class\", \"entries\", \"bytes\", \"note\"?, \"error\"?}]}." };
        var cmd = new Command("ls", "List every store under a folder (recursively): path, class, entries, size.\n\nExample:\n  syconn-store ls /data/wd --json") { dir, json };
        cmd.SetAction((ParseResult r) =>
        {
            var root = r.GetValue(dir)!;
            if (!Directory.Exists(root) && !File.Exists(root)) throw new InputException("no such file or folder", root);
            var options = StoreScan.NoLock(StoreCommands.ReadOptions(r));
            var stores = StoreScan.Find(root);
            var rows = new StoreSummary[stores.Count];
            Parallel.For(0, stores.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i => rows[i] = StoreScan.Summarize(stores[i], options));
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                var list = new JsonArray();
                foreach (var s in rows)
                {
                    var item = new JsonObject
                    {
                        ["path"] = StoreScan.Relative(root, s.Path),
                        ["class"] = s.Class,
                        ["entries"] = s.Entries,
                        ["bytes"] = s.Bytes,
                    };
                    if (s.Note is not null) item["note"] = s.Note;
                    if (s.Error is not null) item["error"] = s.Error;
                    list.Add(item);
                }
                o.WriteLine(new JsonObject { ["dir"] = Path.GetFullPath(root), ["stores"] = list }.ToJsonString(StoreCommands.Indented));
                return 0;
            }
            int width = rows.Length == 0 ? 4 : Math.Max(4, rows.Max(s => StoreScan.Relative(root, s.Path).Length));
            foreach (var s in rows)
            {
                string tail = s.Error is not null ? $"  unreadable: {s.Error}" : s.Note is not null ? $"  ({s.Note})" : "";
                o.WriteLine($"{StoreScan.Relative(root, s.Path).PadRight(width)}  {s.Class,-24} {s.Entries,9} entries  {StoreScan.Size(s.Bytes),10}{tail}");
            }
            return 0;
        });
        return cmd;
    }
}
