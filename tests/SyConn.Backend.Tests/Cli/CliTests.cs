using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>The <c>syconn-store</c> commands, run in-process, against the fixtures and their MANIFEST.</summary>
public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    private static JsonNode? Getter(string file, string call) =>
        ((JsonArray)Manifest.File_(file)["getter"]!).First(g => (string)g!["call"]! == call)!["returns"];

    [SkippableFact]
    public void Get_prints_the_getter_as_typed_json()
    {
        var (code, o, e) = Run("get", Shared.PyFixture("compressed_storage.pkl"), "--as", "CompressedStorage", "--json", "--", "-5");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(Getter("compressed_storage.pkl", "CompressedStorage(path)[-5]"), JsonNode.Parse(o));
        (code, o, e) = Run("get", Shared.PyFixture("compressed_storage.pkl"), "str:str_key", "--as=CompressedStorage", "--json");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(Getter("compressed_storage.pkl", "CompressedStorage(path)['str_key']"), JsonNode.Parse(o));
        (code, o, e) = Run("get", Shared.PyFixture("mesh_storage_lz4.pkl"), "1", "--as", "MeshStorage", "--load-colarr", "--json");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(Getter("mesh_storage_lz4.pkl", "MeshStorage(path, load_colarr=True)[1]"), JsonNode.Parse(o));
    }

    [SkippableFact]
    public void Dump_of_an_npz_lists_its_members()
    {
        var (code, o, e) = Run("dump", Shared.PyFixture("voxel_lazy.npz"));
        Assert.True(code == 0, e);
        var items = JsonNode.Parse(o)!["items"]!.AsArray();
        Assert.Equal(["10", "0", "123456789012", "-3"], items.Select(i => (string)i![0]!["v"]!));
        TypedJsonAssert.Equal(Getter("voxel_lazy.npz", "[10]"), items[0]![1]);
        TypedJsonAssert.Equal(Getter("voxel_lazy.npz", "[-3]"), items[3]![1]);
    }

    [SkippableFact]
    public void Keys_lists_one_key_per_line_in_key_syntax()
    {
        var (code, o, e) = Run("keys", Shared.PyFixture("compressed_storage.pkl"), "--as", "CompressedStorage");
        Assert.True(code == 0, e);
        var lines = o.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(["0", "123456789012", "str:str_key", "-5"], lines.Take(4));
    }

    [SkippableFact]
    public void Errors_are_one_line_with_exit_codes()
    {
        var (code, o, e) = Run("get", Shared.PyFixture("compressed_storage.pkl"), "999", "--as", "CompressedStorage", "--json");
        Assert.Equal(1, code);
        Assert.Equal("", o);
        Assert.StartsWith("syconn-store: ", e);
        Assert.Single(e.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        (code, _, e) = Run("get", "bt:cells", "5"); // the class of a bt: store is not told without --as
        Assert.Equal(2, code);
        Assert.Contains("--as", e, StringComparison.Ordinal);
        (code, _, e) = Run("get", Shared.PyFixture("truncated.pkl"), "5", "--as", "CompressedStorage");
        Assert.Equal(1, code);
        Assert.Contains("offset", e, StringComparison.Ordinal);
        (code, _, _) = Run("get", Shared.PyFixture("compressed_storage.pkl"), "not-a-key", "--as", "CompressedStorage");
        Assert.Equal(2, code);
        (code, _, _) = Run("frobnicate");
        Assert.Equal(2, code);
    }

    [SkippableFact]
    public void Bss_answers_the_manifest_queries()
    {
        var m = (JsonArray)Manifest.File_("binary_search_store.h5")["getter"]!;
        var q = m.First(g => ((string)g!["call"]!).StartsWith("query ids", StringComparison.Ordinal))!["returns"]!["values"]!.AsArray();
        var ids = string.Join(",", q.Select(v => v!.ToJsonString()));
        var (code, o, e) = Run("bss", Shared.PyFixture("binary_search_store.h5"), "--attr", "probs", "--ids", ids, "--json");
        Assert.True(code == 0, e);
        TypedJsonAssert.Equal(m.First(g => (string)g!["call"]! == "get_attributes(query_ids, 'probs')")!["returns"], JsonNode.Parse(o));
    }

    [Fact]
    public void Bss_build_then_query_from_npy_files()
    {
        using var dir = new TempDir();
        var ids = new ulong[] { 10, 3, ulong.MaxValue, 7, 1UL << 63 };
        NpyFile.Write(dir.File("ids.npy"), NdArray.Create(ids));
        NpyFile.Write(dir.File("cell.npy"), NdArray.Create(new long[] { 100, 30, -1, 70, 5 }));
        var h5 = dir.File("store.h5");
        var (code, _, e) = Run("bss-build", h5, "--ids", dir.File("ids.npy"), "--attr", $"cell={dir.File("cell.npy")}", "--shards", "2");
        Assert.True(code == 0, e);
        (code, _, _) = Run("bss-build", h5, "--ids", dir.File("ids.npy"), "--attr", $"cell={dir.File("cell.npy")}");
        Assert.Equal(1, code);
        NpyFile.Write(dir.File("q.npy"), NdArray.Create(new ulong[] { ulong.MaxValue, 3, 1UL << 63 }));
        var (c2, o, e2) = Run("bss", h5, "--attr", "cell", "--ids-file", dir.File("q.npy"));
        Assert.True(c2 == 0, e2);
        Assert.Equal(["18446744073709551615\t-1", "3\t30", "9223372036854775808\t5"], o.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        (c2, _, _) = Run("bss", h5, "--attr", "cell", "--ids", "4");
        Assert.Equal(1, c2);
    }

    [Fact]
    public void Bench_prints_one_json_line_with_phases()
    {
        using var dir = new TempDir();
        var (code, o, e) = Run("bench", "w2", "--scale", "0.001", "--reps", "2", "--out", dir.Path);
        Assert.True(code == 0, e);
        var line = JsonNode.Parse(o.Trim())!;
        Assert.Equal("w2", (string)line["workload"]!);
        Assert.Equal("csharp", (string)line["impl"]!);
        foreach (var phase in new[] { "set_all", "push", "build_push", "push_nosync", "build_push_nosync", "pull", "read_all" })
        {
            var runs = line["timings"]![phase]!["runs"]!.AsArray();
            Assert.Equal(2, runs.Count);
            Assert.True((double)line["timings"]![phase]!["median"]! >= 0);
        }
        Assert.True(File.Exists(Path.Combine(dir.Path, "w2", "attr_dict.pkl")));
    }
}
