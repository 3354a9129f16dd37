using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>
/// <c>syconn-store demo</c>, run as the built CLI in a child process: the SyConn layout it writes, object counts
/// from 1 to 1000, replacing an earlier demo, refusing a folder that holds something else, every key with the
/// other commands, and the Python checker (<c>check_demo.py</c>, upstream's getter rules) agreeing with it.
/// </summary>
public class DemoTests
{
    private sealed record Result(int Code, string Out, string Err);

    /// <summary>The built CLI: the project's Release output, else the copy beside the tests.</summary>
    private static string CliDll()
    {
        var candidates = new List<string>();
        if (Shared.RepoRoot is { } root) candidates.Add(Path.Combine(root, "src", "SyConn.Backend.Cli", "bin", "Release", "net10.0", "syconn-store.dll"));
        candidates.Add(Path.Combine(AppContext.BaseDirectory, "syconn-store.dll"));
        var found = candidates.FirstOrDefault(File.Exists);
        Assert.True(found is not null, "the built syconn-store.dll was not found at " + string.Join(" or ", candidates));
        return found!;
    }

    private static Result Cli(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        psi.ArgumentList.Add(CliDll());
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            p.Kill();
            Assert.Fail($"syconn-store {string.Join(' ', args)} did not finish in 5 minutes");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, so.Result, se.Result);
    }

    private static JsonObject Demo(string dir, int? n, params string[] more)
    {
        var args = new List<string> { "demo", dir, "--json" };
        if (n is { } count) args.AddRange(["--objects", count.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        args.AddRange(more);
        var r = Cli([.. args]);
        Assert.True(r.Code == 0, $"demo exited {r.Code}: {r.Err}");
        // --json: stdout is one JSON document and nothing else; progress went to stderr.
        var summary = JsonNode.Parse(r.Out)!.AsObject();
        Assert.Contains("demo: verify", r.Err, StringComparison.Ordinal);
        return summary;
    }

    private static JsonObject Manifest(string dir) => JsonNode.Parse(File.ReadAllText(Path.Combine(dir, DemoManifest.FileName)))!.AsObject();

    /// <summary>Runs the Python checker on <paramref name="dir"/>; returns its JSON summary.</summary>
    private static JsonObject Check(string dir)
    {
        Infrastructure.Python.Require("numpy", "lz4", "h5py", "snappy");
        var script = Path.Combine(Shared.RepoRoot ?? "", "tests", "SyConn.Backend.Tests", "Cli", "check_demo.py");
        Assert.True(File.Exists(script), $"checker not found: {script}");
        var r = Infrastructure.Python.Run(File.ReadAllText(script), [dir], timeoutSeconds: 300);
        Assert.True(r.ExitCode == 0, $"check_demo.py failed (exit {r.ExitCode}):\n{r.Stderr}\n{r.Stdout}");
        var summary = JsonNode.Parse(r.Stdout)!.AsObject();
        Assert.True((bool)summary["ok"]!, r.Stdout);
        return summary;
    }

    /// <summary>Every file below <paramref name="dir"/> with its bytes' hash and modification time.</summary>
    private static Dictionary<string, string> Snapshot(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories).ToDictionary(
            p => Path.GetRelativePath(dir, p),
            p => File.Exists(p)
                ? Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(p))) + "@" + File.GetLastWriteTimeUtc(p).Ticks
                : "dir");

    [SkippableFact]
    public void Demo_lays_out_a_syconn_working_directory_that_the_python_checker_reads()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("wd");
        var s = Demo(dir, null);
        Assert.Equal(DemoCommand.DefaultObjects, (int)s["objects"]!);
        Assert.Equal(Path.GetFullPath(dir), (string)s["dir"]!);
        var m = Manifest(dir);
        Assert.True((bool)m["complete"]!);
        Assert.Equal("sv_0/so_storage_100", (string)m["so_storage"]!);

        // SyConn's layout: so_storage_100/<two digits>/ holding the five stores of its objects.
        var folders = Directory.GetDirectories(Path.Combine(dir, "sv_0", "so_storage_100"));
        Assert.Equal((int)m["storage_folders"]!, folders.Length);
        Assert.All(folders, f => Assert.Matches("^[0-9]{2}$", Path.GetFileName(f)));
        Assert.All(folders, f => Assert.True(File.Exists(Path.Combine(f, "attr_dict.pkl")) && File.Exists(Path.Combine(f, "voxel.pkl"))
            && File.Exists(Path.Combine(f, "mesh.pkl")) && File.Exists(Path.Combine(f, "skeletons.pkl")), f));
        Assert.True(folders.Count(f => File.Exists(Path.Combine(f, "voxel.npz"))) >= 1);
        Assert.True(File.Exists(Path.Combine(dir, "ssv_0", "mapping_lookup_reverse.h5")));
        Assert.True(File.Exists(Path.Combine(dir, "knossosdatasets", "seg", "demo_seg.pyk.conf")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "knossosdatasets", "seg", "mag1"), "*.seg.sz.zip", SearchOption.AllDirectories));
        // Every file written is in the manifest, and the manifest names nothing else.
        var written = Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(p => Path.GetRelativePath(dir, p)).Order(StringComparer.Ordinal);
        Assert.Equal(written, m["files"]!.AsArray().Select(f => (string)f!).Append(DemoManifest.FileName).Order(StringComparer.Ordinal));
        // Every key in the folder upstream's subfold_from_ix gives it (the checker recomputes that in Python, too).
        foreach (var sample in m["samples"]!.AsArray())
            Assert.Equal((string)sample!["folder"]!, SyConnLayout.ObjectFolder((ulong)sample["id"]!, 100));

        var c = Check(dir);
        Assert.Equal(DemoCommand.DefaultObjects, (int)c["objects"]!);
        Assert.Equal((int)m["voxel_caches"]!, (int)c["voxel_caches"]!);
        Assert.Equal((long)m["knossos"]!["voxels"]!, (long)c["segmentation_voxels"]!);
        Assert.True((int)c["voxel_caches"]! > 0);
    }

    [SkippableTheory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(257)]
    [InlineData(1000)]
    public void Any_object_count_works_and_says_what_it_wrote(int n)
    {
        using var tmp = new TempDir();
        var s = Demo(tmp.Path, n);
        Assert.Equal(n, (int)s["objects"]!);
        var stores = s["stores"]!.AsArray().ToDictionary(r => (string)r!["store"]!, r => r!);
        Assert.Equal(n, (long)stores["attr_dict.pkl"]["entries"]!);
        Assert.Equal(Math.Min(n, 4096), (long)stores["voxel.pkl"]["entries"]!);
        Assert.Equal(n, (long)stores["ssv_0/mapping_lookup_reverse.h5"]["entries"]!);
        Assert.True((long)stores["knossosdatasets/seg"]["bytes_on_disk"]! > 0);
        Assert.Equal(Math.Min(n, 4096), (int)s["knossos"]!["objects"]!);
        var c = Check(tmp.Path);
        Assert.Equal(n, (int)c["objects"]!);
        Assert.Equal(Math.Min(n, 4096), (int)c["voxel_objects"]!);
    }

    [SkippableFact]
    public void Every_key_works_with_get_and_voxels_and_each_store_with_keys_dump_and_the_exports()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("wd");
        Demo(dir, 3);
        var m = Manifest(dir);
        var outDir = tmp.File("out");
        Directory.CreateDirectory(outDir);
        var classesSeen = new HashSet<string>();
        int keysSeen = 0, withCache = 0;
        foreach (var store in m["stores"]!.AsArray())
        {
            var rel = (string)store!["path"]!;
            var cls = (string)store["class"]!;
            if (cls == "BinarySearchStore") continue;
            var path = Path.Combine(dir, rel);
            bool firstOfClass = classesSeen.Add(cls);
            // keys, dump and the exports once per store class as a process (every key of a larger demo runs in-process below).
            var (code, keysOut, err) = firstOfClass ? ToTuple(Cli("keys", path)) : InProcess("keys", path);
            Assert.True(code == 0, err);
            var list = keysOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal((int)store["entries"]!, list.Length);
            if (firstOfClass)
            {
                var dump = Cli("dump", path);
                Assert.True(dump.Code == 0, $"dump {rel}: {dump.Err}");
                if (cls == "MeshStorage")
                {
                    var e = Cli("export-mesh", path, list[0], "--format", "ply", "-o", Path.Combine(outDir, list[0] + ".ply"));
                    Assert.True(e.Code == 0, $"export-mesh {rel} {list[0]}: {e.Err}");
                    Assert.True(new FileInfo(Path.Combine(outDir, list[0] + ".ply")).Length > 0);
                }
                if (cls == "SkeletonStorage")
                {
                    var e = Cli("export-skeleton", path, list[0], "--format", "swc", "-o", Path.Combine(outDir, list[0] + ".swc"));
                    Assert.True(e.Code == 0, $"export-skeleton {rel} {list[0]}: {e.Err}");
                    Assert.Equal(3, File.ReadAllLines(Path.Combine(outDir, list[0] + ".swc")).Count(l => l.Length > 0 && !l.StartsWith('#')));
                }
            }
            foreach (var key in list)
            {
                keysSeen++;
                var get = Cli("get", path, key, "--json");
                Assert.True(get.Code == 0, $"get {rel} {key}: {get.Err}");
                Assert.NotNull(JsonNode.Parse(get.Out));
                if (cls != "VoxelStorageDyn") continue;
                var v = Cli("voxels", path, key, "--json");
                Assert.True(v.Code == 0, $"voxels {rel} {key}: {v.Err}");
                var vj = JsonNode.Parse(v.Out)!;
                var size = (long)vj["object_size"]!;
                Assert.True(size > 0);
                Assert.Equal(size, (long)vj["get_voxel_data_cubed"]!["count"]!);
                if (vj["voxel_cache"] is { } cache)
                {
                    withCache++;
                    Assert.Equal(size, (long)cache["voxels"]!);
                    Assert.Equal(size, (long)cache["in_mask"]!);
                }
            }
        }
        Assert.Equal(5, classesSeen.Count);
        Assert.True(keysSeen >= 3 * 4 + 1, $"{keysSeen} keys");
        Assert.True(withCache >= 1, "the first object's voxel cache was not reported");
    }

    private static (int, string, string) ToTuple(Result r) => (r.Code, r.Out, r.Err);

    [SkippableFact]
    public void Every_key_of_a_larger_demo_works_with_every_command_in_process()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("wd");
        Demo(dir, 120);
        var m = Manifest(dir);
        var outDir = tmp.File("out");
        Directory.CreateDirectory(outDir);
        int voxelKeys = 0;
        foreach (var store in m["stores"]!.AsArray())
        {
            var rel = (string)store!["path"]!;
            var cls = (string)store["class"]!;
            if (cls == "BinarySearchStore") continue;
            var path = Path.Combine(dir, rel);
            var (code, keysOut, err) = InProcess("keys", path);
            Assert.True(code == 0, err);
            (code, _, err) = InProcess("dump", path);
            Assert.True(code == 0, $"dump {rel}: {err}");
            foreach (var key in keysOut.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                (code, _, err) = InProcess("get", path, key);
                Assert.True(code == 0, $"get {rel} {key}: {err}");
                (code, _, err) = cls switch
                {
                    "VoxelStorageDyn" => InProcess("voxels", path, key),
                    "MeshStorage" => InProcess("export-mesh", path, key, "--format", "obj", "-o", Path.Combine(outDir, key + ".obj")),
                    "SkeletonStorage" => InProcess("export-skeleton", path, key, "--format", "swc", "-o", Path.Combine(outDir, key + ".swc")),
                    _ => (0, "", ""),
                };
                Assert.True(code == 0, $"{cls} {rel} {key}: {err}");
                if (cls == "VoxelStorageDyn") voxelKeys++;
            }
        }
        Assert.Equal(120, voxelKeys);
        Assert.Equal(2 * 120, Directory.GetFiles(outDir).Length);
    }

    private static (int Code, string Out, string Err) InProcess(params string[] args) => CliRun.InProcess(args);

    [SkippableFact]
    public void A_rerun_replaces_the_earlier_demo_and_keeps_other_files()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("wd");
        Demo(dir, 40);
        var before = Manifest(dir)["files"]!.AsArray().Select(f => (string)f!).ToHashSet();
        File.WriteAllText(Path.Combine(dir, "notes.txt"), "mine");
        var s = Demo(dir, 2, "--out", dir);
        Assert.True((int)s["replaced_files"]! >= before.Count - 1);
        var after = Manifest(dir)["files"]!.AsArray().Select(f => (string)f!).ToHashSet();
        // Files of the first demo that the second did not write are gone; the user's file stays.
        foreach (var f in before.Except(after)) Assert.False(File.Exists(Path.Combine(dir, f)), f);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(dir, "notes.txt")));
        Assert.Equal(Manifest(dir)["storage_folders"]!.GetValue<int>(), Directory.GetDirectories(Path.Combine(dir, "sv_0", "so_storage_100")).Length);
        Check(dir);
    }

    [SkippableFact]
    public void A_folder_that_holds_something_else_is_refused_and_left_untouched()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("data");
        Directory.CreateDirectory(Path.Combine(dir, "sv_0"));
        File.WriteAllText(Path.Combine(dir, "sv_0", "attr_dict.pkl"), "not a demo");
        File.WriteAllText(Path.Combine(dir, "readme.txt"), "keep");
        var before = Snapshot(dir);
        var r = Cli("demo", dir, "--objects", "5");
        Assert.Equal(1, r.Code);
        Assert.Equal("", r.Out);
        var lines = r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("syconn-store: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(DemoManifest.FileName, lines[0], StringComparison.Ordinal);
        Assert.Equal(before, Snapshot(dir));

        // A manifest that names a file outside the folder is not followed.
        var outside = tmp.File("outside.txt");
        File.WriteAllText(outside, "precious");
        File.WriteAllText(Path.Combine(dir, DemoManifest.FileName), """{"syconn_store_demo": 1, "files": ["../outside.txt"]}""");
        before = Snapshot(dir);
        r = Cli("demo", dir, "--objects", "5");
        Assert.Equal(1, r.Code);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal("precious", File.ReadAllText(outside));
        Assert.Equal(before, Snapshot(dir));

        // Nor one whose path runs through a symbolic link to a folder outside.
        var elsewhere = tmp.File("elsewhere");
        Directory.CreateDirectory(elsewhere);
        File.WriteAllText(Path.Combine(elsewhere, "attr_dict.pkl"), "precious");
        Directory.CreateSymbolicLink(Path.Combine(dir, "linked"), elsewhere);
        File.WriteAllText(Path.Combine(dir, DemoManifest.FileName), """{"syconn_store_demo": 1, "files": ["linked/attr_dict.pkl", "readme.txt"]}""");
        r = Cli("demo", dir, "--objects", "5");
        Assert.Equal(1, r.Code);
        Assert.Contains("symbolic link", r.Err, StringComparison.Ordinal);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(elsewhere, "attr_dict.pkl")));
        Assert.Equal("keep", File.ReadAllText(Path.Combine(dir, "readme.txt")));
    }

    [SkippableFact]
    public void Without_a_folder_the_demo_goes_to_a_new_temp_folder_and_says_where()
    {
        var r = Cli("demo", "--objects", "1");
        Assert.True(r.Code == 0, r.Err);
        var line = r.Out.Split('\n')[0];
        Assert.StartsWith("SyConn working directory: ", line, StringComparison.Ordinal);
        var dir = line["SyConn working directory: ".Length..].Trim();
        try
        {
            Assert.StartsWith(Path.GetFullPath(Path.GetTempPath()).TrimEnd('/'), dir, StringComparison.Ordinal);
            Assert.True(File.Exists(Path.Combine(dir, DemoManifest.FileName)));
            Assert.Contains("KNOSSOS segmentation knossosdatasets/seg", r.Out, StringComparison.Ordinal);
        }
        finally
        {
            if (dir.Contains("syconn-demo-", StringComparison.Ordinal) && Directory.Exists(dir)) Directory.Delete(dir, true);
        }
    }

    [SkippableFact]
    public void Voxels_names_a_missing_dataset_and_suggests_dataset()
    {
        using var tmp = new TempDir();
        var dir = tmp.File("wd");
        Demo(dir, 1);
        var m = Manifest(dir);
        var sample = m["samples"]!.AsArray()[0]!;
        var store = Path.Combine(dir, (string)sample["folder"]!, "voxel.pkl");
        var key = ((ulong)sample["id"]!).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var moved = tmp.File("seg-moved");
        Directory.Move(Path.Combine(dir, "knossosdatasets", "seg"), moved);
        var r = Cli("voxels", store, key);
        Assert.Equal(1, r.Code);
        Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("--dataset", r.Err, StringComparison.Ordinal);
        Assert.Contains("knossosdatasets/seg", r.Err, StringComparison.Ordinal);
        r = Cli("voxels", store, key, "--dataset", moved, "--json");
        Assert.True(r.Code == 0, r.Err);
        Assert.Equal((long)sample["size"]!, (long)JsonNode.Parse(r.Out)!["get_voxel_data_cubed"]!["count"]!);

        // A store that names no dataset at all, and a --dataset that is not there.
        var bare = tmp.File("voxel.pkl");
        using (var vs = new VoxelStorageDyn(bare, StoreOptions.Writable))
        {
            vs[5] = NdArray.Create(new long[] { 0, 0, 0, 2, 2, 2 }, 1, 2, 3);
            vs.Push();
        }
        var (code, o, err) = InProcess("voxels", bare, "5");
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.Contains("None", err, StringComparison.Ordinal);
        Assert.Contains("--dataset", err, StringComparison.Ordinal);
        (code, _, err) = InProcess("voxels", bare, "5", "--dataset", tmp.File("nowhere"));
        Assert.Equal(1, code);
        Assert.Contains("nowhere", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Voxel_mode_reads_the_boxes_of_a_key_that_has_a_voxel_cache()
    {
        using var dir = new TempDir();
        var writer = KnossosWriter.Create(dir.File("seg"), "tiny", new Xyz(16, 16, 16), 16, (10, 10, 25));
        var data = new ulong[16 * 16 * 16];
        var coords = new List<uint>();
        for (uint z = 2; z < 4; z++)
            for (uint y = 3; y < 6; y++)
                for (uint x = 1; x < 5; x++)
                {
                    data[(z * 16 + y) * 16 + x] = 9;
                    coords.AddRange([x, y, z]);
                }
        writer.WriteSeg(new Xyz(0, 0, 0), NdArray.Create(data, 16, 16, 16));
        var path = dir.File("voxel.pkl");
        using (var vs = new VoxelStorageDyn(path, StoreOptions.Writable, voxeldataPath: dir.File("seg")))
        {
            vs[9] = NdArray.Create(new long[] { 0, 0, 0, 8, 8, 8 }, 1, 2, 3);
            vs.IncreaseObjectSize(9, coords.Count / 3);
            vs.SetVoxelCache(9, NdArray.Create(coords.ToArray(), coords.Count / 3, 3));
            vs.Push();
        }
        using var r = VoxelStorage.Open(path);
        // The getter keeps upstream's quirk (the cache comes back), voxel mode uses the boxes beside it.
        Assert.Equal(new long[] { 24, 3 }, r.GetBoundingData(9).ShapeArray);
        var boxes = r.GetBoundingBoxes(9);
        Assert.Single(boxes);
        Assert.Equal(new long[] { 0, 0, 0, 8, 8, 8 }, boxes[0][0].Concat(boxes[0][1]));
        var (cubed, off) = r.GetVoxelDataCubed(9);
        Assert.Equal(new long[] { 0, 0, 0 }, off);
        Assert.Equal(24, cubed.Data.ToArray().Count(b => b != 0));
        var summary = VoxelsCommand.Summarise(r, 9, 0);
        Assert.Equal(24L, (long)summary["voxel_cache"]!["in_mask"]!);
        Assert.Throws<KeyNotFoundException>(() => r.GetBoundingBoxes(10));
    }
}
