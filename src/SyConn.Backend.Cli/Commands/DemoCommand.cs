using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>demo [DIR] [--objects N] [--json]</c> (<c>--out DIR</c> is the same as DIR): lays out a small SyConn
/// working directory on the local disk the way SyConn does — per storage folder
/// <c>sv_0/so_storage_&lt;n_folders_fs&gt;/xx/…/</c> an <c>attr_dict.pkl</c>, <c>voxel.pkl</c> + <c>voxel.npz</c>,
/// <c>mesh.pkl</c> and <c>skeletons.pkl</c>; a KNOSSOS segmentation in <c>knossosdatasets/seg/</c>; the
/// supervoxel-to-cell BinarySearchStore <c>ssv_0/mapping_lookup_reverse.h5</c> — then reopens everything,
/// verifies it and prints what it wrote. The manifest <c>syconn-demo.json</c> names every file written, so a
/// rerun into the same folder replaces exactly that; a non-empty folder without one is refused.
/// </summary>
public static class DemoCommand
{
    /// <summary>The object count when <c>--objects</c> is not given.</summary>
    public const int DefaultObjects = 300;

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var dirArg = new Argument<string?>("dir")
        {
            Description = "Folder for the working directory: new, empty, or holding an earlier demo (which is replaced). Default: a new folder under the temp directory.",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var outDir = new Option<string?>("--out") { Description = "The same as DIR (kept for scripts).", HelpName = "DIR" };
        var objects = new Option<int>("--objects") { Description = "Number of supervoxels (1 or more).", DefaultValueFactory = _ => DefaultObjects };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary instead of the table (progress stays on stderr)." };
        var cmd = new Command("demo",
            "Lay out a small SyConn working directory (so_storage folders with attr_dict/voxel/mesh/skeletons stores, a KNOSSOS "
            + "segmentation, a supervoxel-to-cell BinarySearchStore), read it back, verify it and print a summary.\n"
            + "Examples:\n"
            + "  syconn-store demo /tmp/wd\n"
            + "  syconn-store demo /tmp/wd --objects 100000 --json")
        { dirArg, outDir, objects, json };
        cmd.SetAction((ParseResult r) =>
        {
            int n = r.GetValue(objects);
            if (n < 1) throw new UsageException("--objects must be at least 1", "--objects");
            var a = r.GetValue(dirArg);
            var o = r.GetValue(outDir);
            if (a is not null && o is not null && Path.GetFullPath(a) != Path.GetFullPath(o))
                throw new UsageException("give the folder once: DIR or --out DIR", "--out");
            var dir = a ?? o ?? Path.Combine(Path.GetTempPath(), "syconn-demo-" + Guid.NewGuid().ToString("N")[..8]);
            var summary = DemoRun.Run(dir, n, r.InvocationConfiguration.Error);
            var stdout = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) stdout.WriteLine(summary.ToJsonString(StoreCommands.Indented));
            else PrintTable(stdout, summary);
            return 0;
        });
        return cmd;
    }

    /// <summary>Builds and verifies the working directory (see <see cref="DemoRun.Run"/>).</summary>
    public static JsonObject Run(string dir, int n, TextWriter progress) => DemoRun.Run(dir, n, progress);

    private static string Bytes(long b) => b switch
    {
        < 10_000 => string.Create(CultureInfo.InvariantCulture, $"{b} B"),
        < 10_000_000 => string.Create(CultureInfo.InvariantCulture, $"{b / 1024.0:0.0} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{b / 1048576.0:0.0} MiB"),
    };

    private static string Seconds(JsonNode? s) => s is null ? "-" : ((double)s).ToString("0.000", CultureInfo.InvariantCulture);

    private static void PrintTable(TextWriter o, JsonObject s)
    {
        var ci = CultureInfo.InvariantCulture;
        o.WriteLine($"SyConn working directory: {s["dir"]}");
        var k = s["knossos"]!;
        o.WriteLine(string.Create(ci, $"  {s["objects"]} supervoxels in {s["storage_folders"]} storage folders of {s["so_storage"]} (n_folders_fs {s["n_folders_fs"]}), {s["cells"]} cells"));
        o.WriteLine(string.Create(ci, $"  KNOSSOS segmentation {k["path"]} ({k["config"]}): {k["objects"]} objects, {k["voxels"]} voxels, boundary {k["boundary"]!.ToJsonString()}, {k["cubes"]} cubes of {k["cube_edge"]}³"));
        o.WriteLine();
        o.WriteLine($"  {"store",-32} {"class",-26} {"files",6} {"entries",8} {"raw",11} {"on disk",11} {"ratio",6} {"write s",8} {"verify s",8}");
        foreach (var row in s["stores"]!.AsArray())
        {
            o.WriteLine(string.Create(ci,
                $"  {row!["store"],-32} {row["class"],-26} {row["files"],6} {row["entries"],8} {Bytes((long)row["bytes_raw"]!),11} {Bytes((long)row["bytes_on_disk"]!),11} {(double)row["ratio"]!,6:0.00} {Seconds(row["write_seconds"]),8} {Seconds(row["verify_seconds"]),8}"));
        }
        var t = s["total"]!;
        o.WriteLine(string.Create(ci,
            $"  {"total",-32} {"",-26} {t["files"],6} {t["entries"],8} {Bytes((long)t["bytes_raw"]!),11} {Bytes((long)t["bytes_on_disk"]!),11} {(double)t["ratio"]!,6:0.00}"));
        o.WriteLine("  raw: the arrays' bytes in memory (attr_dict: its pickle; segmentation: its uint64 cubes); ratio: raw / on disk");
        o.WriteLine("  -: timed with voxel.pkl (voxel.npz is written and read with it, the segmentation is read through its voxel mode)");
        o.WriteLine();
        var phases = s["phases"]!.AsObject();
        o.WriteLine("  phases: " + string.Join(", ", phases.Select(p => string.Create(ci, $"{p.Key} {(double)p.Value!:0.000} s"))));
        o.WriteLine(string.Create(ci, $"all {s["total"]!["files"]} files written, reopened and verified in {s["seconds"]} s; manifest {s["manifest"]}"));
        if ((int)s["replaced_files"]! > 0) o.WriteLine(string.Create(ci, $"(replaced an earlier demo: {s["replaced_files"]} files deleted first)"));
    }
}
