using System.Text.RegularExpressions;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

/// <summary>docs/api.md quotes ApiGuideSamples verbatim, and the samples run against the fixtures.</summary>
public partial class ApiGuideTests
{
    private static string RepoFile(string relative)
    {
        Requires.That(Shared.RepoRoot is not null, "the repository root (a folder holding .git above the test binaries)");
        return Path.Combine(Shared.RepoRoot!, relative);
    }

    [GeneratedRegex(@"^[ \t]*// sample: (?<name>[\w-]+)\r?\n(?<body>.*?)^[ \t]*// end sample", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CodeSample();

    [GeneratedRegex(@"^<!-- sample: (?<name>[\w-]+) -->\r?\n```csharp\r?\n(?<body>.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex DocSample();

    private static Dictionary<string, string> Samples(Regex r, string text) =>
        r.Matches(text).ToDictionary(m => m.Groups["name"].Value, m => Dedent(m.Groups["body"].Value));

    private static string Dedent(string body)
    {
        var lines = body.Replace("\r\n", "\n").TrimEnd('\n').Split('\n');
        int indent = lines.Where(l => l.Trim().Length > 0).Min(l => l.Length - l.TrimStart().Length);
        return string.Join("\n", lines.Select(l => l.Length >= indent ? l[indent..].TrimEnd() : l.Trim()));
    }

    [SkippableFact]
    public void The_guide_quotes_every_sample_exactly()
    {
        var code = Samples(CodeSample(), File.ReadAllText(RepoFile("tests/SyConn.Backend.Tests/Api/ApiGuideSamples.cs")));
        var doc = Samples(DocSample(), File.ReadAllText(RepoFile("docs/api.md")));
        Assert.True(code.Count >= 6, $"found {code.Count} samples in ApiGuideSamples.cs");
        Assert.Equal(code.Keys.Order(), doc.Keys.Order());
        foreach (var (name, body) in code) Assert.True(body == doc[name], $"docs/api.md sample '{name}' differs from ApiGuideSamples.cs:\n--- code\n{body}\n--- doc\n{doc[name]}");
    }

    [SkippableFact]
    public void Printing_the_attributes_of_a_fixture()
    {
        var w = new StringWriter();
        ApiGuideSamples.PrintAttributes(Shared.PyFixture("attrdict_p5.pkl"), w);
        var lines = w.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("249467211: size 87499, rep_coord ndarray(dtype=<i8, shape=(3,), [3444, 3171, 2919]), glia True, p 0.29214466", lines);
        Assert.Equal("u64 = 18446744073709551615", lines[^1]);
        using var ad = AttributeDict.Open(Shared.PyFixture("attrdict_p5.pkl"));
        Assert.Equal(ad.Keys.Count(k => ad.AttributeNames(k).Contains("size")) + 1, lines.Length); // one line per cell and the u64 line
    }

    [SkippableFact]
    public void Reading_a_column_of_a_fixture()
    {
        var w = new StringWriter();
        var sizes = ApiGuideSamples.ReadColumns(Shared.PyFixture("attrdict_p5.pkl"), w);
        using var ad = AttributeDict.Open(Shared.PyFixture("attrdict_p5.pkl"));
        var keys = ad.Keys.ToArray();
        Assert.Equal(keys.Length, sizes.Length);
        for (int i = 0; i < keys.Length; i++)
            Assert.Equal(ad.TryGet<long>(keys[i], "size", out var s) ? s : -1, sizes[i]);
        Assert.Equal($"{sizes.Count(s => s >= 0)} of {keys.Length} objects have a size; the largest is {keys[Array.IndexOf(sizes, sizes.Max())]}", w.ToString().Trim());
    }

    [SkippableFact]
    public void Reading_an_array_of_a_fixture()
    {
        var w = new StringWriter();
        var flat = ApiGuideSamples.ReadArray(Shared.PyFixture("compressed_storage.pkl"), w);
        using var cs = CompressedStorage.Open(Shared.PyFixture("compressed_storage.pkl"));
        Assert.Equal(cs[0].Size, flat.Length);
        Assert.StartsWith("ndarray(dtype=<u8, shape=(", w.ToString());
        Assert.Contains($"{flat.Length} values, [0, 1] = {flat[1]}", w.ToString());
    }

    [Fact]
    public void Writing_a_mesh_and_reading_it_back()
    {
        using var dir = new TempDir();
        var m = ApiGuideSamples.WriteAndReadMesh(dir.File("mesh.pkl"));
        Assert.Equal(new long[] { 2, 3 }, m.Indices.ShapeArray);
        Assert.Equal(new long[] { 4, 3 }, m.Vertices.ShapeArray);
        Assert.Equal(1f, m.Vertices.GetValue<float>(2, 1));
    }

    [SkippableFact]
    public void Querying_a_fixture_with_LINQ()
    {
        var rows = ApiGuideSamples.QueryWithLinq(Shared.PyFixture("compressed_storage.pkl"));
        Assert.NotEmpty(rows);
        Assert.Equal(rows.OrderByDescending(r => r.Rows).Select(r => r.Rows), rows.Select(r => r.Rows));
        using var cs = CompressedStorage.Open(Shared.PyFixture("compressed_storage.pkl"));
        Assert.All(rows, r => Assert.Equal(cs[r.Key].Shape[0], r.Rows));
        Assert.Equal(cs.Count(kv => kv.Key.IsInteger && kv.Value.NDim == 2), rows.Count);
    }

    [SkippableFact]
    public void Writing_attributes_that_Python_reads()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        Assert.Equal(1235L, ApiGuideSamples.WriteAttributes(path));
        Infrastructure.Python.Require("numpy");
        var got = Infrastructure.Python.RunChecked("""
import pickle, sys, numpy as np
d = pickle.load(open(sys.argv[1], 'rb'))
a = d[7]
assert type(a['ssv_id']) is np.uint64 and a['ssv_id'] == 2**64 - 1, a
assert a['rep_coord'].dtype == np.int64 and a['rep_coord'].tolist() == [10, 20, 30]
print(a['size'], a['kind'])
""", [path]);
        Assert.Equal("1235 sj", got.Trim());
    }

    [Fact]
    public async Task Locked_updates_count_up()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        Assert.Equal(1L, await ApiGuideSamples.LockAndUpdate(path, CancellationToken.None));
        Assert.Equal(2L, await ApiGuideSamples.LockAndUpdate(path, CancellationToken.None));
        using var r = AttributeDict.Open(path);
        Assert.Equal(2, r.Get<int>(1UL, "visits"));
    }
}
