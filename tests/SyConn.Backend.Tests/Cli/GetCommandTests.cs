using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary><c>get</c> against every getter the MANIFEST records, its text and file output, and the CLI's error lines.</summary>
public partial class GetCommandTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    [GeneratedRegex(@"^(?<cls>\w+)\(path(?:, (?<opt>load_colarr|voxel_mode)=(?<val>True|False))?\)\[(?<key>.+)\]$")]
    private static partial Regex ClassGetter();

    [GeneratedRegex(@"^\[(?<key>.+)\]$")]
    private static partial Regex NpzGetter();

    /// <summary>A Python key literal of the MANIFEST in the CLI's key syntax.</summary>
    private static string CliKey(string literal)
    {
        var m = Regex.Match(literal, @"^np\.u?int\d+\((-?\d+)\)$");
        if (m.Success) return m.Groups[1].Value;
        if (Regex.IsMatch(literal, @"^-?\d+$")) return literal;
        if (literal.StartsWith('\'') && literal.EndsWith('\'')) return "str:" + literal[1..^1];
        if (literal.StartsWith('(') && literal.EndsWith(')')) return "tuple:" + literal[1..^1].Replace(" ", "");
        throw new ArgumentException($"key literal {literal} not understood by the test");
    }

    [SkippableFact]
    public void Get_json_matches_the_manifest_for_every_store_fixture()
    {
        int compared = 0, raised = 0;
        var classes = new HashSet<string>();
        foreach (var file in Manifest.Files)
        {
            var entry = Manifest.File_(file);
            if (entry["getter"] is not JsonArray getters) continue;
            var cls = (string?)entry["class"];
            foreach (var g in getters)
            {
                var call = (string)g!["call"]!;
                var args = new List<string> { "get", Shared.PyFixture(file) };
                string key;
                var m = ClassGetter().Match(call);
                if (m.Success)
                {
                    key = m.Groups["key"].Value;
                    cls = m.Groups["cls"].Value;
                    if (m.Groups["opt"].Value == "load_colarr" && m.Groups["val"].Value == "True") args.Add("--load-colarr");
                    if (m.Groups["opt"].Value == "voxel_mode" && m.Groups["val"].Value == "True") continue;
                }
                else if (NpzGetter().Match(call) is { Success: true } n && cls == "VoxelStorageLazyLoading") key = n.Groups["key"].Value;
                else continue;
                args.AddRange(["--as", cls!, "--json", "--", CliKey(key)]);
                var (code, o, e) = Run([.. args]);
                if (g["raises"] is not null)
                {
                    Assert.True(code == 1, $"{call} on {file}: expected an error, got exit {code}: {o}");
                    Assert.Single(e.Trim().Split('\n'));
                    raised++;
                    continue;
                }
                Assert.True(code == 0, $"{call} on {file}: {e}");
                TypedJsonAssert.Equal(g["returns"], JsonNode.Parse(o), $"{file}: {call}");
                compared++;
                classes.Add(cls!);
            }
        }
        Assert.True(compared >= 80, $"only {compared} getters compared");
        Assert.Superset(new HashSet<string> { "AttributeDict", "CompressedStorage", "MeshStorage", "SkeletonStorage", "VoxelStorageL", "VoxelStorageClass", "VoxelStorageDyn", "VoxelStorageLazyLoading" }, classes);
        _ = raised;
    }

    [SkippableFact]
    public void Get_full_json_and_npy_output_hold_every_value()
    {
        var file = Shared.PyFixture("numpy_zoo_p5.pkl");
        var (code, o, e) = Run("get", file, "str:large_f8_9000", "--as", "AttributeDict", "--json", "--full");
        Assert.True(code == 0, e);
        var doc = JsonNode.Parse(o)!;
        var values = doc["values"]!.AsArray();
        Assert.Equal(9000, values.Count);
        var bytes = values.SelectMany(v => BitConverter.GetBytes((double)v!)).ToArray();
        Assert.Equal((string)doc["sha256_c"]!, Convert.ToHexStringLower(SHA256.HashData(bytes)));

        using var dir = new TempDir();
        var npy = dir.File("big.npy");
        (code, _, e) = Run("get", file, "str:large_f8_9000", "--as", "AttributeDict", "-o", npy);
        Assert.True(code == 0, e);
        var back = SyConn.Backend.Storage.NpyFile.Read(npy);
        Assert.Equal((string)doc["sha256_c"]!, back.Sha256C());
        Assert.Equal([9000L], back.ShapeArray);

        (code, _, e) = Run("get", Shared.PyFixture("mesh_storage_lz4.pkl"), "1", "--as", "MeshStorage", "-o", dir.File("m.npy"));
        Assert.Equal(1, code);
        Assert.Contains("holds a list, not an array", e, StringComparison.Ordinal);
        Assert.False(File.Exists(dir.File("m.npy")));
        (code, _, e) = Run("get", Shared.PyFixture("mesh_storage_lz4.pkl"), "1", "--as", "MeshStorage", "-o", dir.File("m.json"));
        Assert.True(code == 0, e);
        Assert.Equal(3, JsonNode.Parse(File.ReadAllText(dir.File("m.json")))!["items"]!.AsArray().Count);
    }

    [SkippableFact]
    public void Get_without_json_prints_values_as_python_would()
    {
        var zoo = Shared.PyFixture("python_zoo_p5.pkl");
        Assert.Equal("{1, 3, 5}", Run("get", zoo, "str:set", "--as", "AttributeDict").Out.Trim());
        Assert.Equal("frozenset({'a', 'b'})", Run("get", zoo, "str:frozenset", "--as", "AttributeDict").Out.Trim());
        Assert.Equal("defaultdict(int, {1: 3, 'x': 1})", Run("get", zoo, "str:defaultdict_int", "--as", "AttributeDict").Out.Trim());
        Assert.Equal("[0.0, -0.0, 1.5, 0.1, nan, inf, -inf, 5e-324, 1.7976931348623157e+308]", Run("get", zoo, "str:floats", "--as", "AttributeDict").Out.Trim());

        var mesh = Run("get", Shared.PyFixture("mesh_storage_lz4.pkl"), "1", "--as", "MeshStorage").Out;
        Assert.StartsWith("mesh: 12 vertices, 8 triangles", mesh, StringComparison.Ordinal);
        Assert.Contains("vertices: ndarray(dtype=<f4, shape=(12, 3))", mesh, StringComparison.Ordinal);
        Assert.Contains("[[24.921818, 643.2559, 335.745],", mesh, StringComparison.Ordinal);   // float32 digits, as numpy prints them
        Assert.Contains("normals:", mesh, StringComparison.Ordinal);

        var skel = Run("get", Shared.PyFixture("skeleton_storage.pkl"), "1", "--as", "SkeletonStorage").Out;
        Assert.StartsWith("skeleton: 6 nodes, 5 edges", skel, StringComparison.Ordinal);
        Assert.Contains("'nodes': ndarray(dtype=<u4, shape=(6, 3))", skel, StringComparison.Ordinal);

        var ad = Run("get", Shared.PyFixture("attrdict_p4.pkl"), "249467211", "--as", "AttributeDict").Out;
        Assert.Contains("'bounding_box': ndarray(dtype=<i4, shape=(2, 3))", ad, StringComparison.Ordinal);
        Assert.Contains("'prob': np.float32(0.29214466)", ad, StringComparison.Ordinal);
        Assert.DoesNotContain("SyConn.Backend", ad, StringComparison.Ordinal);
    }

    [Fact]
    public void Usage_errors_are_one_line_in_plain_words()
    {
        var (code, o, e) = Run("frobnicate", "a", "b");
        Assert.Equal(2, code);
        Assert.Equal("", o);
        var line = Assert.Single(e.Trim().Split('\n'));
        Assert.StartsWith("syconn-store: unknown command 'frobnicate'; the commands are: ", line, StringComparison.Ordinal);
        Assert.Contains("get, keys", line, StringComparison.Ordinal);

        (code, _, e) = Run();
        Assert.Equal(2, code);
        Assert.StartsWith("syconn-store: no command given; the commands are: ", Assert.Single(e.Trim().Split('\n')), StringComparison.Ordinal);

        (code, _, e) = Run("get", "a", "b", "c", "d");
        Assert.Equal(2, code);
        line = Assert.Single(e.Trim().Split('\n'));
        Assert.Contains("unexpected argument 'c'", line, StringComparison.Ordinal);
        Assert.EndsWith("see 'syconn-store get --help'", line, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void Input_errors_carry_no_internal_tags_or_dotnet_names()
    {
        using var dir = new TempDir();
        var text = dir.File("notes.pkl");
        File.WriteAllText(text, "# not a pickle\n");
        string[][] cases =
        [
            ["get", Shared.PyFixture("compressed_storage.pkl"), "999", "--as", "CompressedStorage"],
            ["get", dir.File("missing.pkl"), "1", "--as", "CompressedStorage"],
            ["dump", text],
            ["get", Shared.PyFixture("truncated.pkl"), "1", "--as", "CompressedStorage"],
        ];
        foreach (var args in cases)
        {
            var (code, _, e) = Run(args);
            Assert.Equal(1, code);
            var line = Assert.Single(e.Trim().Split('\n'));
            Assert.StartsWith("syconn-store: ", line, StringComparison.Ordinal);
            foreach (var tag in new[] { ": input", ": command line", ": key", ": file system", ": file", ": path" })
                Assert.False(line.EndsWith(tag, StringComparison.Ordinal), line);
            Assert.DoesNotContain("Exception", line, StringComparison.Ordinal);
            Assert.DoesNotContain("(Parameter '", line, StringComparison.Ordinal);
        }
        Assert.Contains("missing.pkl", Run(cases[1]).Err, StringComparison.Ordinal);
        Assert.Contains("not a pickle file", Run(cases[2]).Err, StringComparison.Ordinal);
    }

    [Fact]
    public void Bss_build_names_its_own_option_when_the_file_exists()
    {
        using var dir = new TempDir();
        var ids = dir.File("ids.npy");
        var vals = dir.File("vals.npy");
        SyConn.Backend.Storage.NpyFile.Write(ids, SyConn.Backend.Arrays.NdArray.Create(new ulong[] { 1, 2, 3 }));
        SyConn.Backend.Storage.NpyFile.Write(vals, SyConn.Backend.Arrays.NdArray.Create(new long[] { 10, 20, 30 }));
        var target = dir.File("s.h5");
        File.WriteAllText(target, "keep me");
        var (code, _, e) = Run("bss-build", target, "--ids", ids, "--attr", "v=" + vals, "--shards", "1");
        Assert.Equal(1, code);
        Assert.Contains("give --overwrite", e, StringComparison.Ordinal);
        Assert.DoesNotContain("overwrite: true", e, StringComparison.Ordinal);
        Assert.Equal("keep me", File.ReadAllText(target));
        (code, _, e) = Run("bss-build", target, "--ids", ids, "--attr", "v=" + vals, "--shards", "1", "--overwrite");
        Assert.True(code == 0, e);
    }
}

/// <summary><c>get</c>'s text output on values that hold themselves or share parts exponentially.</summary>
public class GetCommandCycleTests
{
    [SkippableFact]
    public void Text_output_prints_cycles_as_python_and_refuses_sharing_bombs()
    {
        Infrastructure.Python.Require("numpy");
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        Infrastructure.Python.RunChecked("""
            import pickle, sys
            l = []; l.append(l)
            d = {'name': 'x'}; d['self'] = d
            x = []
            for _ in range(40): x = [x, x]
            with open(sys.argv[1], 'wb') as f:
                pickle.dump({1: {'loop': l, 'd': d}, 2: {'bomb': x}}, f, protocol=4)
            """, [path]);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["get", path, "1", "--as", "AttributeDict"], o, e);
        Assert.True(code == 0, e.ToString());
        Assert.Contains("'loop': [[...]]", o.ToString(), StringComparison.Ordinal);
        Assert.Contains("'self': {...}", o.ToString(), StringComparison.Ordinal);

        o = new StringWriter();
        e = new StringWriter();
        code = SyConn.Backend.Cli.Cli.Run(["get", path, "2", "--as", "AttributeDict"], o, e);
        Assert.Equal(1, code);
        Assert.Contains("parts to print", e.ToString(), StringComparison.Ordinal);
        Assert.Contains("--json", e.ToString(), StringComparison.Ordinal);
    }
}

/// <summary><c>--help</c> of every command, with examples, and <c>bench</c> without a workload.</summary>
public class HelpTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    [Fact]
    public void Every_command_has_help_with_an_example_and_the_list_stays_one_line_each()
    {
        var root = SyConn.Backend.Cli.Cli.BuildRoot();
        var visible = root.Subcommands.Where(c => !c.Hidden).Select(c => c.Name).ToList();
        Assert.Contains("verify", visible);
        foreach (var name in visible)
        {
            var (code, o, e) = Run(name, "--help");
            Assert.True(code == 0, $"{name} --help: {e}");
            Assert.Matches(@"\nExamples?:\n  syconn-store ", o);
            Assert.Equal("", e);
        }
        var (_, list, _) = Run("--help");
        Assert.DoesNotContain("Example", list, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_without_a_workload_prints_its_usage()
    {
        var (code, o, e) = Run("bench");
        Assert.True(code == 0, e);
        Assert.StartsWith("usage: syconn-store bench WORKLOAD", o, StringComparison.Ordinal);
    }
}
