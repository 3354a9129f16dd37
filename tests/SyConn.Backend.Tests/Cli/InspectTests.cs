using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>
/// Telling a store's class from its content, a wrong <c>--as</c>, and the <c>info</c>, <c>ls</c> and <c>verify</c>
/// commands, against the fixtures (read in place or copied into a temp folder) and a <c>demo</c> working directory.
/// </summary>
public class InspectTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    private static JsonObject Json(params string[] args)
    {
        var (code, o, e) = Run(args);
        Assert.True(code == 0, $"{string.Join(' ', args)}: exit {code}: {e}");
        return (JsonObject)JsonNode.Parse(o)!;
    }

    /// <summary>The class a fixture must be detected as (the MANIFEST's, VoxelStorageClass as VoxelStorageL); null for the corrupt ones.</summary>
    private static StoreClass? Expected(string file)
    {
        if (file is "truncated.pkl" or "empty_file.pkl") return null;
        var cls = (string?)Manifest.File_(file)["class"];
        // The constructed zoo files are plain dicts of values: an AttributeDict holds any value.
        if (cls is null) return StoreClass.AttributeDict;
        if (cls.StartsWith("VoxelStorageLazyLoading", StringComparison.Ordinal)) return StoreClass.VoxelStorageLazyLoading;
        var c = Enum.Parse<StoreClass>(cls);
        return c == StoreClass.VoxelStorageClass ? StoreClass.VoxelStorageL : c;
    }

    [SkippableFact]
    public void Every_fixture_is_classified_as_its_manifest_says()
    {
        foreach (var file in Manifest.Files)
        {
            var path = Shared.PyFixture(file);
            var expected = Expected(file);
            if (expected is null)
            {
                var err = Assert.Throws<InvalidDataException>(() => StoreDetection.Detect(path));
                Assert.Contains(path, err.Message, StringComparison.Ordinal);
                var (code, _, e) = Run("info", path);
                Assert.Equal(1, code);
                Assert.StartsWith("syconn-store: ", e, StringComparison.Ordinal);
                continue;
            }
            var found = StoreDetection.Detect(path);
            Assert.True(found.Class == expected, $"{file}: detected {found.Class} ({found.Reason}), expected {expected}");
            Assert.False(string.IsNullOrWhiteSpace(found.Reason));
            var info = Json("info", path, "--json");
            Assert.Equal(expected.ToString(), (string?)info["class"]);
            Assert.Equal(found.Reason, (string?)info["reason"]);
        }
        // The content decides over the file name: a voxel*.pkl of VoxelStorageL entries is no VoxelStorageDyn.
        Assert.Equal(StoreClass.VoxelStorageL, StoreDetection.Detect(Shared.PyFixture("voxel_storage_l.pkl")).Class);
    }

    [SkippableFact]
    public void Content_decides_without_a_telling_file_name_and_an_empty_store_with_an_unknown_name_asks_for_as()
    {
        using var dir = new TempDir();
        foreach (var (file, cls) in new[] { ("attrdict_p5.pkl", "AttributeDict"), ("skeleton_storage.pkl", "SkeletonStorage"), ("mesh_storage_raw.pkl", "MeshStorage"), ("voxel_storage_dyn.pkl", "VoxelStorageDyn"), ("voxel_storage_l.pkl", "VoxelStorageL"), ("compressed_storage.pkl", "CompressedStorage") })
        {
            var copy = dir.File("store_" + file.Replace('_', '-'));
            File.Copy(Shared.PyFixture(file), copy);
            Assert.Equal(cls, (string?)Json("info", copy, "--json")["class"]);
        }
        // SyConn names a VoxelStorageDyn without its .pkl.
        File.Copy(Shared.PyFixture("voxel_storage_dyn.npz"), dir.File("store_voxel-storage-dyn.npz"));
        Assert.Equal("VoxelStorageDyn", (string?)Json("info", dir.File("store_voxel-storage-dyn"), "--json")["class"]);
        Assert.Equal(["7", "9", "1099511627779"], Run("keys", dir.File("store_voxel-storage-dyn")).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var empty = dir.File("data.pkl");
        File.Copy(Shared.PyFixture("compressed_storage_empty.pkl"), empty);
        var (code, _, e) = Run("keys", empty);
        Assert.Equal(2, code);
        Assert.Contains("--as", e, StringComparison.Ordinal);
        Assert.Equal(0, Run("keys", empty, "--as", "CompressedStorage").Code);

        var text = dir.File("notes.pkl");
        File.WriteAllText(text, "hello, this is text\n");
        (code, _, e) = Run("get", text, "1");
        Assert.Equal(1, code);
        Assert.Contains("not a pickle file", e, StringComparison.Ordinal);
        Assert.DoesNotContain("memo", e, StringComparison.Ordinal);
        (code, _, e) = Run("keys", text, "--as", "AttributeDict");
        Assert.Equal(1, code);
        Assert.Contains("not a pickle file", e, StringComparison.Ordinal);
    }

    [Fact]
    public void File_names_break_a_tie_the_content_cannot_decide()
    {
        // Three block lists: a legacy 3-element mesh and a skeleton without extras look the same.
        using var dir = new TempDir();
        var empty = SyConn.Backend.Python.PyBytes.Empty;
        var dict = new SyConn.Backend.Python.PyDict
        {
            [1L] = new SyConn.Backend.Python.PyList { new SyConn.Backend.Python.PyList { empty }, new SyConn.Backend.Python.PyList { empty }, new SyConn.Backend.Python.PyList { empty } },
        };
        var bytes = SyConn.Backend.Formats.Pickle.Pickle.Dump(dict);
        foreach (var (name, cls) in new[] { ("mesh_0.pkl", (StoreClass?)StoreClass.MeshStorage), ("skeletons.pkl", StoreClass.SkeletonStorage), ("objects.pkl", null) })
        {
            File.WriteAllBytes(dir.File(name), bytes);
            var found = StoreDetection.Detect(dir.File(name));
            Assert.True(found.Class == cls, $"{name}: {found.Class} ({found.Reason})");
            if (cls is null)
            {
                Assert.Contains("MeshStorage and SkeletonStorage", found.Reason, StringComparison.Ordinal);
                var (code, _, e) = Run("get", dir.File(name), "1");
                Assert.Equal(2, code);
                Assert.Contains("--as", e, StringComparison.Ordinal);
            }
        }
        // The empty store of a SyConn name takes the class of the name; of another name it asks.
        File.WriteAllBytes(dir.File("attr_dict.pkl"), SyConn.Backend.Formats.Pickle.Pickle.Dump(new SyConn.Backend.Python.PyDict()));
        Assert.Equal(StoreClass.AttributeDict, StoreDetection.Detect(dir.File("attr_dict.pkl")).Class);
        Assert.Equal(StoreFileKind.Zip, StoreDetection.FileKindOf(Shared.PyFixture("voxel_lazy.npz")));
        Assert.Equal(StoreFileKind.Hdf5, StoreDetection.FileKindOf(Shared.PyFixture("binary_search_store.h5")));
        Assert.Equal(StoreFileKind.Empty, StoreDetection.FileKindOf(Shared.PyFixture("empty_file.pkl")));
    }

    [SkippableFact]
    public void A_wrong_as_is_an_error_naming_the_file_and_key()
    {
        var cases = new (string File, string Cls, string? Key)[]
        {
            ("skeleton_storage.pkl", "MeshStorage", "1"),
            ("mesh_storage_lz4.pkl", "SkeletonStorage", "1"),
            ("mesh_storage_raw.pkl", "SkeletonStorage", "1"),
            ("attrdict_p5.pkl", "CompressedStorage", "249467211"),
            ("voxel_storage_l.pkl", "VoxelStorageDyn", "8192734"),
            ("voxel_storage_l.pkl", "CompressedStorage", "8192734"),
            ("compressed_storage.pkl", "VoxelStorageL", "0"),
            ("compressed_storage.pkl", "MeshStorage", "0"),
        };
        foreach (var (file, cls, key) in cases)
        {
            var path = Shared.PyFixture(file);
            foreach (var args in new[] { new[] { "get", path, key!, "--as", cls }, new[] { "keys", path, "--as", cls } })
            {
                var (code, o, e) = Run(args);
                Assert.True(code == 1, $"{string.Join(' ', args)}: exit {code}, stdout {o}");
                Assert.Equal("", o);
                Assert.Single(e.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.Contains(path, e, StringComparison.Ordinal);
                Assert.Contains($"key {key}", e, StringComparison.Ordinal);
                Assert.Contains("expected", e, StringComparison.Ordinal);
            }
        }
        // A file of another kind: named with what it is and what the class needs.
        foreach (var (file, cls) in new[] { ("mesh_storage_raw.pkl", "VoxelStorageLazyLoading"), ("voxel_lazy.npz", "MeshStorage"), ("binary_search_store.h5", "AttributeDict") })
        {
            var (code, o, e) = Run("keys", Shared.PyFixture(file), "--as", cls);
            Assert.True(code == 1, $"keys {file} --as {cls}: exit {code}, stdout {o}");
            Assert.Equal("", o);
            Assert.Contains(Shared.PyFixture(file), e, StringComparison.Ordinal);
        }
    }

    /// <summary>A MANIFEST key (typed JSON) in the key syntax of <c>keys</c>.</summary>
    private static string KeyOf(JsonNode k)
    {
        switch ((string)k["t"]!)
        {
            case "int": return (string)k["v"]!;
            case "str": return "str:" + (string)k["v"]!;
            case "tuple": return "tuple:" + string.Join(",", k["items"]!.AsArray().Select(x => KeyOf(x!)));
            case "npscalar":
            {
                var bytes = Convert.FromHexString((string)k["raw_hex"]!);
                var dt = (string)k["dtype"]!;
                if (dt[0] == '>') Array.Reverse(bytes);
                var v = new BigInteger(bytes, isUnsigned: dt[1] == 'u', isBigEndian: false);
                return v.ToString(CultureInfo.InvariantCulture);
            }
            default: throw new InvalidOperationException($"key {k.ToJsonString()}");
        }
    }

    [SkippableFact]
    public void Info_json_names_the_class_and_the_keys_of_every_store_fixture()
    {
        foreach (var file in Manifest.Files.Where(f => Expected(f) is not null))
        {
            var m = Manifest.File_(file);
            var path = Shared.PyFixture(file);
            var info = Json("info", path, "--json");
            var entries = info["entries"]!.AsArray().Select(x => (string)x!).ToList();
            List<string> expected;
            if (m["internal"] is JsonObject internalDict)
            {
                expected = internalDict["items"]!.AsArray().Select(kv => KeyOf(kv![0]!)).ToList();
                if (Expected(file) == StoreClass.VoxelStorageDyn) expected = expected.Where(k => !k.StartsWith("str:", StringComparison.Ordinal) || k[4..].All(char.IsAsciiDigit)).ToList();
            }
            else if (m["npz_entries"] is JsonArray members)
                expected = members.Select(x => ((string)x!["name"]!)[..^4]).ToList();
            else continue; // the HDF5 store: its IDs are checked below
            Assert.True(expected.SequenceEqual(entries), $"{file}: info lists [{string.Join(" ", entries)}], the MANIFEST [{string.Join(" ", expected)}]");
            Assert.Equal(entries.Count, (int)info["count"]!);
            var (code, o, _) = Run("keys", path);
            Assert.Equal(0, code);
            Assert.Equal(entries, o.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Equal(new FileInfo(path).Length, (long)info["file_bytes"]!);
        }
        var bss = Json("info", Shared.PyFixture("binary_search_store.h5"), "--json");
        Assert.Equal("BinarySearchStore", (string?)bss["class"]);
        Assert.Equal(5000, bss["entries"]!.AsArray().Count);
        Assert.Equal(3, (int)bss["shards"]!);
        Assert.Equal(["16", "17182"], bss["bucket_ranges"]![0]!.AsArray().Select(x => (string)x!));
        Assert.Equal(["coords", "probs", "ssv_ids"], bss["attributes"]!.AsArray().Select(a => (string)a!["name"]!).Order(StringComparer.Ordinal));

        var cs = Json("info", Shared.PyFixture("compressed_storage.pkl"), "--json");
        Assert.Equal(5, (int)cs["pickle_protocol"]!);
        // Getters return native byte order: the stored '>i4' array is counted as '<i4'.
        var dtypes = cs["dtypes"]!.AsObject().Select(kv => kv.Key).ToList();
        Assert.Contains("<i4", dtypes);
        Assert.DoesNotContain(">i4", dtypes);
        var p2 = Json("info", Shared.PyFixture("attrdict_p2.pkl"), "--json");
        Assert.Equal(2, (int)p2["pickle_protocol"]!);
    }

    [SkippableFact]
    public void Info_of_a_knossos_dataset_gives_boundary_cubes_and_mags()
    {
        var expected = JsonNode.Parse(File.ReadAllText(Shared.KnossosFixture("EXPECTED.json")))!;
        var info = Json("info", Shared.KnossosFixture("ds1"), "--json");
        Assert.Equal("KnossosDataset", (string?)info["class"]);
        Assert.Equal(expected["dataset"]!["boundary_xyz"]!.AsArray().Select(x => (long)x!), info["boundary"]!.AsArray().Select(x => (long)x!));
        Assert.Equal(expected["dataset"]!["cube_shape_xyz"]!.AsArray().Select(x => (long)x!), info["cube_shape"]!.AsArray().Select(x => (long)x!));
        Assert.Equal(expected["dataset"]!["mag_folders"]!.AsArray().Select(x => (string)x!), info["magnifications"]!.AsArray().Select(x => (string)x!));
        var cubes = expected["mag1_cubes"]!.AsArray().Where(c => (bool)c!["exists"]!).Select(c => (string)c!["path"]!).Order(StringComparer.Ordinal);
        Assert.Equal(cubes, info["entries"]!.AsArray().Select(x => (string)x!));
    }

    [SkippableFact]
    public void Ls_json_lists_every_store_of_a_folder_of_fixture_copies_sorted()
    {
        using var dir = new TempDir();
        Directory.CreateDirectory(dir.File("sub"));
        var copies = new Dictionary<string, (string Fixture, string Class, int Entries)>
        {
            ["attr_dict.pkl"] = ("attrdict_p5.pkl", "AttributeDict", 10),
            ["sub/voxel.pkl"] = ("voxel_storage_dyn.pkl", "VoxelStorageDyn", 3),
            ["sub/voxel.npz"] = ("voxel_storage_dyn.npz", "VoxelStorageLazyLoading", 2),
            ["sub/mesh_0.pkl"] = ("mesh_storage_lz4.pkl", "MeshStorage", 5),
            ["skel"] = ("skeleton_storage.pkl", "SkeletonStorage", 3),
            ["bss.h5"] = ("binary_search_store.h5", "BinarySearchStore", 5000),
            ["cs.pkl"] = ("compressed_storage.pkl", "CompressedStorage", 10),
            ["voxel_l.pkl"] = ("voxel_storage_l.pkl", "VoxelStorageL", 3),
        };
        foreach (var (name, c) in copies) File.Copy(Shared.PyFixture(c.Fixture), dir.File(name));
        File.WriteAllText(dir.File("README.txt"), "not a store");
        // What a push killed midway leaves behind, and a lock file: neither is a store.
        File.WriteAllBytes(dir.File(".cs.pkl.tmp.4242.0123456789abcdef"), File.ReadAllBytes(Shared.PyFixture("truncated.pkl")));
        File.WriteAllText(dir.File(".cs.pkl.lk"), "");
        var doc = Json("ls", dir.Path, "--json");
        var stores = doc["stores"]!.AsArray();
        var paths = stores.Select(s => (string)s!["path"]!).ToList();
        Assert.Equal(copies.Keys.Order(StringComparer.Ordinal), paths);
        foreach (var s in stores)
        {
            var c = copies[(string)s!["path"]!];
            Assert.Equal(c.Class, (string?)s["class"]);
            Assert.Equal(c.Entries, (long)s["entries"]!);
            Assert.Equal(new FileInfo(Shared.PyFixture(c.Fixture)).Length, (long)s["bytes"]!);
        }
        Assert.Single(Directory.GetFiles(dir.Path, "*.lk", SearchOption.AllDirectories));
        Assert.Equal(0, Run("verify", dir.Path, "--quiet").Code);
        var (code, text, _) = Run("ls", dir.Path);
        Assert.Equal(0, code);
        Assert.Equal(copies.Count, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void Verify_of_a_demo_folder_passes_and_a_truncated_store_fails_naming_it()
    {
        using var dir = new TempDir();
        var (code, _, e) = Run("demo", "--out", dir.Path, "--objects", "30");
        Assert.True(code == 0, e);
        var listed = Json("ls", dir.Path, "--json")["stores"]!.AsArray();
        long entries = listed.Sum(s => (long)s!["entries"]!);
        Assert.All(listed, s => Assert.Null(s!["error"]));
        Assert.Contains(listed, s => (string?)s!["class"] == "KnossosDataset");
        string o;
        (code, o, e) = Run("verify", dir.Path);
        Assert.True(code == 0, o + e);
        Assert.Equal($"{listed.Count} stores, {entries} entries verified, 0 corrupt", o.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        var json = Json("verify", dir.Path, "--json", "--quiet");
        Assert.Equal(0, (int)json["corrupt"]!);
        Assert.Equal(entries, (long)json["entries"]!);

        var mesh = Directory.GetFiles(dir.Path, "mesh.pkl", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var rel = Path.GetRelativePath(dir.Path, mesh);
        var bytes = File.ReadAllBytes(mesh);
        File.WriteAllBytes(mesh, bytes[..(bytes.Length / 2)]);
        (code, o, e) = Run("verify", dir.Path, "--quiet");
        Assert.True(code == 1, o + e);
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines, l => l.StartsWith($"corrupt: {rel}: ", StringComparison.Ordinal));
        Assert.Single(lines, l => l.StartsWith("corrupt: ", StringComparison.Ordinal));
        Assert.EndsWith(", 1 corrupt", lines[^1], StringComparison.Ordinal);
        (code, o, _) = Run("verify", dir.Path, "--json", "--quiet");
        Assert.Equal(1, code);
        json = JsonNode.Parse(o)!.AsObject();
        Assert.Equal(1, (int)json["corrupt"]!);
        Assert.Equal(rel, (string?)json["problems"]![0]!["path"]);
    }

    [Fact]
    public void Verify_names_the_corrupt_key_and_member()
    {
        using var dir = new TempDir();
        using (var s = new CompressedStorage(dir.File("cs.pkl"), StoreOptions.Writable))
        {
            s[1] = SyConn.Backend.Arrays.NdArray.Create(new long[] { 1, 2, 3 });
            s[2] = SyConn.Backend.Arrays.NdArray.Create(new long[] { 4, 5, 6 });
            s.Push();
        }
        // Key 2's block loses its last byte: the pickle is valid, the entry is not.
        var raw = (SyConn.Backend.Python.PyDict)RawFile.Read(dir.File("cs.pkl"));
        var d = (SyConn.Backend.Python.PyDict)raw[2L];
        var arr = (SyConn.Backend.Python.PyList)d["arr"];
        var block = ((SyConn.Backend.Python.PyBytes)arr[0]).Data.ToArray();
        arr[0] = new SyConn.Backend.Python.PyBytes(block[..^1]);
        File.WriteAllBytes(dir.File("cs.pkl"), SyConn.Backend.Formats.Pickle.Pickle.Dump(raw));
        var (code, o, e) = Run("verify", dir.Path, "--quiet");
        Assert.True(code == 1, o + e);
        Assert.Contains("corrupt: cs.pkl key 2: ", o, StringComparison.Ordinal);
        Assert.DoesNotContain("key 1:", o, StringComparison.Ordinal);
        Assert.EndsWith("1 stores, 2 entries verified, 1 corrupt", o.TrimEnd(), StringComparison.Ordinal);
    }

    [SkippableFact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Info_and_verify_create_no_lock_file_and_verify_works_on_a_read_only_folder()
    {
        using var dir = new TempDir();
        foreach (var f in new[] { "attrdict_p5.pkl", "voxel_storage_dyn.pkl", "voxel_storage_dyn.npz", "mesh_storage_raw.pkl", "binary_search_store.h5", "voxel_lazy.npz" })
            File.Copy(Shared.PyFixture(f), dir.File(f));
        var before = Snapshot(dir.Path);
        foreach (var f in Directory.GetFiles(dir.Path)) Json("info", f, "--json");
        var (code, o, e) = Run("verify", dir.Path, "--quiet");
        Assert.True(code == 0, o + e);
        string summary = o.TrimEnd().Split('\n')[^1];
        Assert.Equal("6 stores, 5024 entries verified, 0 corrupt", summary);
        Assert.Equal(before, Snapshot(dir.Path));

        var ro = Path.Combine(dir.Path, "ro");
        Directory.CreateDirectory(ro);
        foreach (var f in Directory.GetFiles(dir.Path)) File.Copy(f, Path.Combine(ro, Path.GetFileName(f)));
        foreach (var f in Directory.GetFiles(ro)) File.SetUnixFileMode(f, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        try
        {
            var roBefore = Snapshot(ro);
            (code, o, e) = Run("verify", ro, "--quiet");
            Assert.True(code == 0, o + e);
            Assert.EndsWith(summary, o.TrimEnd(), StringComparison.Ordinal);
            Assert.Equal(0, Run("info", Path.Combine(ro, "mesh_storage_raw.pkl")).Code);
            Assert.Equal(roBefore, Snapshot(ro));
        }
        finally
        {
            File.SetUnixFileMode(ro, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>Every file under a folder (hidden ones included) with its size and modification time.</summary>
    private static string Snapshot(string dir) =>
        string.Join("\n", Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(f => $"{f} {new FileInfo(f).Length} {File.GetLastWriteTimeUtc(f).Ticks}"));

    [SkippableFact]
    public void Info_reports_the_lock_holder_without_taking_the_lock()
    {
        using var dir = new TempDir();
        var store = dir.File("mesh.pkl");
        File.Copy(Shared.PyFixture("mesh_storage_raw.pkl"), store);
        var free = Json("info", store, "--json")["lock"]!;
        Assert.Equal("free", (string?)free["state"]);
        Assert.False((bool)free["lock_file_exists"]!);
        Assert.False(File.Exists(dir.File(".mesh.pkl.lk")));

        using (FileLock.Acquire(LockPaths.ForStore(store)))
        {
            var held = Json("info", store, "--json")["lock"]!;
            Assert.Equal("held", (string?)held["state"]);
            Assert.Equal(Environment.ProcessId, (int)held["pid"]!);
            Assert.StartsWith($"{Environment.ProcessId}@{Environment.MachineName} since ", (string)held["record"]!, StringComparison.Ordinal);
        }
        Assert.Equal("free", (string?)Json("info", store, "--json")["lock"]!["state"]);

        // A Python holder (fcntl.lockf, as fasteners locks): the kernel names its pid.
        Infrastructure.Python.Require();
        using var py = Storage.ChildProcess.Python(
            "import fcntl, os, sys\nf = open(sys.argv[1], 'r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint(os.getpid(), flush=True)\nsys.stdin.readline()\n",
            dir.File(".mesh.pkl.lk"));
        int pid = int.Parse(py.ReadLine(), CultureInfo.InvariantCulture);
        var lk = Json("info", store, "--json")["lock"]!;
        Assert.Equal("held", (string?)lk["state"]);
        Assert.Equal(pid, (int)lk["pid"]!);
        Assert.Equal("posix", (string?)lk["kind"]);
        py.WriteLine("");
        Assert.Equal(0, py.WaitForExit());
    }

    [SkippableFact]
    public void Info_and_verify_tell_a_bt_store_from_its_entries()
    {
        string cs = Postgres.BtTestDatabase.ConnectionString;
        string bt = $"bt:{Postgres.BtTestDatabase.NewPrefix()}skel";
        var fixture = Shared.PyFixture("skeleton_storage.pkl");
        var (code, o, e) = Run("convert", fixture, bt, "--as", "SkeletonStorage", "--bt", cs, "--quiet");
        Assert.True(code == 0, e);
        var info = Json("info", bt, "--bt", cs, "--json");
        Assert.Equal("SkeletonStorage", (string?)info["class"]);
        Assert.Equal(Run("keys", fixture).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), info["entries"]!.AsArray().Select(x => (string)x!));
        (code, o, e) = Run("verify", bt, "--bt", cs, "--quiet");
        Assert.True(code == 0, o + e);
        Assert.Equal("1 stores, 3 entries verified, 0 corrupt", o.Trim());
        (code, _, e) = Run("get", bt, "1", "--bt", cs, "--as", "MeshStorage");
        Assert.Equal(1, code);
        Assert.Contains($"{bt}, key 1: ", e, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_built_cli_runs_info_ls_and_verify_as_a_process()
    {
        Requires.That(File.Exists(CliRun.Dll), $"the built CLI ({CliRun.Dll})");
        using var dir = new TempDir();
        File.Copy(Shared.PyFixture("skeleton_storage.pkl"), dir.File("skeletons.pkl"));
        File.Copy(Shared.PyFixture("voxel_lazy.npz"), dir.File("cache.npz"));

        var (code, o, e) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "info", dir.File("skeletons.pkl"), "--json");
        Assert.True(code == 0, e);
        var info = JsonNode.Parse(o)!;
        Assert.Equal("SkeletonStorage", (string?)info["class"]);
        Assert.Equal(Run("keys", dir.File("skeletons.pkl")).Out.Split('\n', StringSplitOptions.RemoveEmptyEntries), info["entries"]!.AsArray().Select(x => (string)x!));
        (code, o, e) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "ls", dir.Path, "--json");
        Assert.True(code == 0, e);
        Assert.Equal(["cache.npz", "skeletons.pkl"], JsonNode.Parse(o)!["stores"]!.AsArray().Select(s => (string)s!["path"]!));
        (code, o, e) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "verify", dir.Path);
        Assert.True(code == 0, e);
        Assert.Equal("2 stores, 7 entries verified, 0 corrupt", o.Trim());
        (code, _, e) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "get", dir.File("skeletons.pkl"), "1", "--as", "MeshStorage");
        Assert.Equal(1, code);
        Assert.Matches("^syconn-store: .*skeletons.pkl, key 1: .*expected", e.Trim());
        (code, o, _) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "verify", "--help");
        Assert.Equal(0, code);
        Assert.Contains("Example:", o, StringComparison.Ordinal);
        (code, _, _) = CliRun.AsProcess(TimeSpan.FromSeconds(120), "ls");
        Assert.Equal(2, code);
    }
}
