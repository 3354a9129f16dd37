using System.Text.Json.Nodes;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>
/// <c>syconn-store convert</c> run in-process against the fixtures (read in place; the copies it writes go to a
/// temporary folder), and the <c>--bt</c> option of the commands that open a store address.
/// </summary>
public class ConvertCommandTests
{
    /// <summary>A database nobody listens on: a bt: address fails however far the backend has come.</summary>
    private const string NoDatabase = "Host=127.0.0.1;Port=1;Timeout=2;Username=nobody;Database=nowhere";

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The typed JSON <c>dump</c> prints for a file.</summary>
    private static JsonNode Dump(string path)
    {
        var (code, o, e) = Run("dump", path);
        Assert.True(code == 0, $"dump {path}: {e}");
        return JsonNode.Parse(o)!;
    }

    /// <summary>The pickle fixtures the MANIFEST lists as dict stores (it gives their internal dict), corrupt ones left out.</summary>
    private static List<string> DictStoreFixtures() =>
        Manifest.Files.Where(f => f.EndsWith(".pkl", StringComparison.Ordinal)
                                  && Manifest.File_(f)["pickle_load_error"] is null
                                  && (string?)Manifest.File_(f)["internal"]?["t"] == "dict").ToList();

    private static List<string> CorruptFixtures() =>
        Manifest.Files.Where(f => Manifest.File_(f)["pickle_load_error"] is not null).ToList();

    private static void AssertOneCleanErrorLine(string err, string what)
    {
        Assert.StartsWith("syconn-store: ", err);
        Assert.True(Lines(err).Length == 1, $"{what}: expected one error line, got:\n{err}");
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception:", err, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Every_pickle_dict_store_fixture_converts_entry_for_entry()
    {
        using var dir = new TempDir();
        var fixtures = DictStoreFixtures();
        Assert.True(fixtures.Count >= 15, $"the MANIFEST lists only {fixtures.Count} pickle dict stores");
        foreach (var name in fixtures)
        {
            var dst = dir.File("copy_of_" + name);
            var (code, o, e) = Run("convert", Shared.PyFixture(name), dst, "--quiet");
            Assert.True(code == 0, $"{name}: {e}");
            var expected = Manifest.File_(name)["internal"];
            var copy = Dump(dst);
            TypedJsonAssert.Equal(expected, copy, $"{name} converted");
            // Per key, the copy's raw entries are exactly the source's (all typed JSON fields, not only the required ones).
            var source = Dump(Shared.PyFixture(name))["items"]!.AsArray();
            var copied = copy["items"]!.AsArray();
            Assert.Equal(source.Count, copied.Count);
            for (int i = 0; i < source.Count; i++)
                Assert.True(JsonNode.DeepEquals(source[i], copied[i]), $"{name}: entry {i} differs: {source[i]!.ToJsonString()[..Math.Min(200, source[i]!.ToJsonString().Length)]}");
            Assert.Equal($"converted {source.Count} entries from {Shared.PyFixture(name)} to {dst}", o.TrimEnd('\n'));
        }
    }

    [SkippableFact]
    public void An_npz_archive_converts_as_arrays()
    {
        using var dir = new TempDir();
        var src = Shared.PyFixture("voxel_lazy.npz");
        var dst = dir.File("lazy.npz");
        var (code, o, e) = Run("convert", src, dst, "--json");
        Assert.True(code == 0, e);
        Assert.Equal(4, (int)JsonNode.Parse(o)!["entries"]!);
        var copy = Dump(dst);
        Assert.True(JsonNode.DeepEquals(Dump(src), copy), "the npz copy differs from the source");
        var items = copy["items"]!.AsArray();
        Assert.Equal(["10", "0", "123456789012", "-3"], items.Select(i => (string)i![0]!["v"]!));
        TypedJsonAssert.Equal(((JsonArray)Manifest.File_("voxel_lazy.npz")["getter"]!).First(g => (string)g!["call"]! == "[10]")!["returns"], items[0]![1]);
    }

    [SkippableFact]
    public void A_voxel_storage_dyn_brings_its_voxel_cache_along()
    {
        using var dir = new TempDir();
        // SyConn's path rule: VoxelStorageDyn('x') is x.pkl with its voxel cache x.npz.
        var (code, o, e) = Run("convert", Shared.PyFixture("voxel_storage_dyn"), dir.File("dyn"), "--as", "VoxelStorageDyn", "--json", "--quiet");
        Assert.True(code == 0, e);
        var summary = JsonNode.Parse(o)!;
        Assert.Equal(dir.File("dyn.pkl"), (string)summary["destination"]!);
        Assert.Equal(2, (int)summary["side_entries"]!);
        Assert.True(JsonNode.DeepEquals(Dump(Shared.PyFixture("voxel_storage_dyn.pkl")), Dump(dir.File("dyn.pkl"))), "entries differ");
        Assert.True(JsonNode.DeepEquals(Dump(Shared.PyFixture("voxel_storage_dyn.npz")), Dump(dir.File("dyn.npz"))), "voxel cache differs");
        Assert.Equal(Manifest.File_("voxel_storage_dyn.npz")["npz_entries"]!.AsArray().Count, Dump(dir.File("dyn.npz"))["items"]!.AsArray().Count);

        // An occupied voxel cache counts as an occupied destination; --overwrite replaces it with the source's,
        // and a source without one leaves no stale cache behind.
        var fresh = dir.File("other");
        (code, _, e) = Run("convert", Shared.PyFixture("voxel_storage_dyn"), fresh, "--as", "VoxelStorageDyn", "--quiet");
        Assert.True(code == 0, e);
        File.Delete(fresh + ".pkl");
        (code, _, e) = Run("convert", Shared.PyFixture("voxel_storage_dyn"), fresh, "--as", "VoxelStorageDyn", "--quiet");
        Assert.Equal(1, code);
        Assert.Contains("voxel cache", e, StringComparison.Ordinal);
        (code, o, e) = Run("convert", Shared.PyFixture("attrdict_p5.pkl"), fresh, "--as", "VoxelStorageDyn", "--overwrite", "--json", "--quiet");
        Assert.True(code == 0, e);
        Assert.Equal(0, (int)JsonNode.Parse(o)!["side_entries"]!);
        Assert.Empty(Dump(fresh + ".npz")["items"]!.AsArray());
        TypedJsonAssert.Equal(Manifest.File_("attrdict_p5.pkl")["internal"], Dump(fresh + ".pkl"));

        // Without --as only the entries are copied, and stderr says what was left behind.
        (code, _, e) = Run("convert", Shared.PyFixture("voxel_storage_dyn.pkl"), dir.File("plain.pkl"), "--quiet");
        Assert.True(code == 0, e);
        Assert.False(File.Exists(dir.File("plain.npz")));
        Assert.Contains("--as VoxelStorageDyn", e, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_corrupt_source_is_refused_and_nothing_is_written()
    {
        using var dir = new TempDir();
        var corrupt = CorruptFixtures();
        Assert.NotEmpty(corrupt);
        foreach (var name in corrupt)
        {
            var dst = Path.Combine(dir.Path, "out", name);
            var (code, o, e) = Run("convert", Shared.PyFixture(name), dst);
            Assert.Equal(1, code);
            Assert.Equal("", o);
            AssertOneCleanErrorLine(e, name);
            Assert.False(File.Exists(dst), $"{name}: the destination was written");
            Assert.False(Directory.Exists(Path.Combine(dir.Path, "out")), $"{name}: the destination folder was created");
        }
        var (c, _, err) = Run("convert", Shared.PyFixture("no_such_store.pkl"), dir.File("x.pkl"));
        Assert.Equal(1, c);
        AssertOneCleanErrorLine(err, "missing source");
        Assert.False(File.Exists(dir.File("x.pkl")));
    }

    [SkippableFact]
    public void An_existing_destination_is_replaced_only_with_overwrite()
    {
        using var dir = new TempDir();
        var dst = dir.File("store.pkl");
        var (code, _, e) = Run("convert", Shared.PyFixture("compressed_storage.pkl"), dst, "--quiet");
        Assert.True(code == 0, e);
        var before = File.ReadAllBytes(dst);

        var (c2, o2, e2) = Run("convert", Shared.PyFixture("attrdict_p5.pkl"), dst, "--quiet");
        Assert.Equal(1, c2);
        Assert.Equal("", o2);
        AssertOneCleanErrorLine(e2, "occupied destination");
        Assert.Contains("--overwrite", e2, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(dst));

        (code, _, e) = Run("convert", Shared.PyFixture("attrdict_p5.pkl"), dst, "--overwrite", "--quiet");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(Manifest.File_("attrdict_p5.pkl")["internal"], Dump(dst));

        // A destination that exists but holds no entries needs no --overwrite.
        var empty = dir.File("empty.pkl");
        File.Copy(Shared.PyFixture("compressed_storage_empty.pkl"), empty);
        (code, _, e) = Run("convert", Shared.PyFixture("compressed_storage.pkl"), empty, "--quiet");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(Manifest.File_("compressed_storage.pkl")["internal"], Dump(empty));

        // The source is never its own destination.
        (code, _, e) = Run("convert", dst, dst, "--overwrite");
        Assert.Equal(2, code);
        AssertOneCleanErrorLine(e, "same store");
    }

    [SkippableFact]
    public void Progress_goes_to_stderr_and_json_to_stdout()
    {
        using var dir = new TempDir();
        var src = Shared.PyFixture("numpy_zoo_p5.pkl");
        int n = Manifest.File_("numpy_zoo_p5.pkl")["internal"]!["items"]!.AsArray().Count;
        var (code, o, e) = Run("convert", src, dir.File("a.pkl"), "--json");
        Assert.True(code == 0, e);
        var doc = JsonNode.Parse(o)!.AsObject();
        Assert.Equal(["source", "destination", "entries", "side_entries", "seconds"], doc.Select(kv => kv.Key));
        Assert.Equal(src, (string)doc["source"]!);
        Assert.Equal(dir.File("a.pkl"), (string)doc["destination"]!);
        Assert.Equal(n, (int)doc["entries"]!);
        Assert.Equal(0, (int)doc["side_entries"]!);
        Assert.True((double)doc["seconds"]! >= 0);
        Assert.DoesNotContain("convert:", o, StringComparison.Ordinal);
        var progress = Lines(e);
        Assert.NotEmpty(progress);
        Assert.All(progress, l => Assert.Matches(@"^convert: \d+/\d+ entries( in \d+\.\d s)?$", l));
        Assert.StartsWith($"convert: {n}/{n} entries in ", progress[^1]);

        (code, o, e) = Run("convert", src, dir.File("b.pkl"), "--quiet");
        Assert.True(code == 0, e);
        Assert.Equal("", e);
        Assert.Equal([$"converted {n} entries from {src} to {dir.File("b.pkl")}"], Lines(o));
    }

    [SkippableFact]
    public void Bt_addresses_without_a_database_fail_with_one_clean_line()
    {
        using var dir = new TempDir();
        var fixture = Shared.PyFixture("attrdict_p5.pkl");
        var dst = dir.File("from_bt.pkl");
        string[][] commands =
        [
            ["get", "bt:syconn_cli_test", "5", "--as", "AttributeDict", "--bt", NoDatabase],
            ["keys", "bt:syconn_cli_test", "--as", "AttributeDict", "--bt=" + NoDatabase],
            ["dump", "bt:syconn_cli_test", "--bt", NoDatabase],
            ["--bt", NoDatabase, "dump", "bt:syconn_cli_test"],
            ["convert", fixture, "bt:syconn_cli_test", "--bt", NoDatabase],
            ["convert", "bt:syconn_cli_test", dst, "--as", "AttributeDict", "--bt", NoDatabase],
            ["convert", "bt:syconn_cli_test", "bt:syconn_cli_test_copy", "--bt", NoDatabase],
        ];
        foreach (var args in commands)
        {
            var (code, o, e) = Run(args);
            var what = string.Join(' ', args);
            Assert.True(code == 1, $"{what}: exit {code}, {e}");
            Assert.Equal("", o);
            AssertOneCleanErrorLine(e, what);
        }
        Assert.False(File.Exists(dst));
    }

    [Fact]
    public void Get_and_keys_of_a_bt_address_ask_for_the_class()
    {
        foreach (var args in new[] { new[] { "get", "bt:cells", "5" }, ["keys", "bt:cells"], ["keys", "bt:attr_dict.pkl"] })
        {
            var (code, _, e) = Run(args);
            Assert.Equal(2, code);
            AssertOneCleanErrorLine(e, string.Join(' ', args));
            Assert.Contains("--as", e, StringComparison.Ordinal);
            Assert.EndsWith(": " + args[1], e.TrimEnd('\n'), StringComparison.Ordinal);
        }
    }
}
