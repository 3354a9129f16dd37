using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Stores;

/// <summary>Every store fixture opens, and every getter listed in its MANIFEST entry returns exactly what upstream returned.</summary>
public class StoreFixtureTests
{
    public static TheoryData<string> PickleStoreFixtures => new()
    {
        "attrdict_p5.pkl", "attrdict_p4.pkl", "attrdict_p2.pkl",
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl",
        "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl",
        "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_class.pkl", "voxel_storage_dyn.pkl",
    };

    /// <summary>Parses the key expression of a MANIFEST call: <c>5</c>, <c>-1</c>, <c>'s'</c>, <c>np.uint64(7)</c>, <c>(1, 2)</c>.</summary>
    internal static StoreKey ParseKeyExpr(string e)
    {
        e = e.Trim();
        if (e.StartsWith("np.", StringComparison.Ordinal))
            return ParseKeyExpr(e[(e.IndexOf('(') + 1)..e.LastIndexOf(')')]);
        if (e.StartsWith('\'') || e.StartsWith('"')) return e[1..^1];
        if (e.StartsWith('('))
        {
            var parts = e[1..^1].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            return StoreKey.FromPython(new PyTuple(parts.Select(p => ParseKeyExpr(p).PythonValue).ToArray()));
        }
        return BigInteger.Parse(e, CultureInfo.InvariantCulture);
    }

    private static string Inside(string call, char open, char close) => call[(call.IndexOf(open) + 1)..call.LastIndexOf(close)];

    [SkippableTheory]
    [MemberData(nameof(PickleStoreFixtures))]
    public void Getters_match_manifest(string file)
    {
        var path = Shared.PyFixture(file);
        CheckGetters(file, (cls, loadColArr) => StoreFactory.OpenPickleStore(path, cls, loadColArr: loadColArr));
    }

    /// <summary>
    /// Checks every getter the MANIFEST lists for fixture <paramref name="file"/> on stores that <paramref name="open"/>
    /// opens (by class, and with <c>load_colarr</c> for meshes), wherever they live.
    /// </summary>
    internal static void CheckGetters(string file, Func<StoreClass, bool, StorageBase> open)
    {
        var entry = Manifest.File_(file);
        var cls = StoreFactory.ParseClass((string)entry["class"]!);
        var getters = (JsonArray)entry["getter"]!;
        Assert.NotEmpty(getters);
        using var plain = open(cls, false);
        using var colarr = cls == StoreClass.MeshStorage ? open(cls, true) : null;
        int checkedCount = 0;
        foreach (var g in getters)
        {
            string call = (string)g!["call"]!;
            var expected = g["returns"];
            object actual;
            if (call.EndsWith(".keys()", StringComparison.Ordinal) || call == "list(keys())")
            {
                var expectedKeys = ((JsonArray)expected!["items"]!).Select(KeyFromTypedJson).ToList();
                Assert.Equal(expectedKeys, plain.Keys.ToList());
                checkedCount++;
                continue;
            }
            if (call == "len(store)") { Assert.Equal(long.Parse((string)expected!["v"]!, CultureInfo.InvariantCulture), plain.Count); checkedCount++; continue; }
            if (call.StartsWith("get_boundingdata(", StringComparison.Ordinal))
                actual = ((VoxelStorageDyn)plain).GetBoundingData(ParseKeyExpr(Inside(call, '(', ')')));
            else if (call.StartsWith("object_size(", StringComparison.Ordinal))
                actual = ((VoxelStorageDyn)plain).ObjectSize(ParseKeyExpr(Inside(call, '(', ')')));
            else if (call.StartsWith("object_repcoord(", StringComparison.Ordinal))
                actual = ((VoxelStorageDyn)plain).ObjectRepCoord(ParseKeyExpr(Inside(call, '(', ')')));
            else if (call.StartsWith("get_voxel_cache(", StringComparison.Ordinal))
                actual = ((VoxelStorageDyn)plain).GetVoxelCache(ParseKeyExpr(Inside(call, '(', ')')));
            else if (call.EndsWith(']'))
            {
                var store = call.Contains("load_colarr=True", StringComparison.Ordinal) ? colarr! : plain;
                actual = StoreFactory.GetAsPython(store, ParseKeyExpr(Inside(call, '[', ']')));
            }
            else throw new InvalidOperationException($"test does not know the call '{call}'");
            TypedJsonAssert.Equal(expected, TypedJson.ToJson(actual), $"{file}: {call}");
            checkedCount++;
        }
        Assert.Equal(getters.Count, checkedCount);
    }

    internal static StoreKey KeyFromTypedJson(JsonNode? n)
    {
        var o = (JsonObject)n!;
        return (string)o["t"]! switch
        {
            "int" => BigInteger.Parse((string)o["v"]!, CultureInfo.InvariantCulture),
            "str" => (string)o["v"]!,
            "npscalar" => KeyFromTypedJson(o["value"]),
            "tuple" => StoreKey.FromPython(new PyTuple(((JsonArray)o["items"]!).Select(i => KeyFromTypedJson(i).PythonValue).ToArray())),
            var t => throw new InvalidOperationException($"key of type {t}"),
        };
    }

    [SkippableFact]
    public void Lazy_loading_npz_matches_manifest()
    {
        var entry = Manifest.File_("voxel_lazy.npz");
        using var s = new VoxelStorageLazyLoading(Shared.PyFixture("voxel_lazy.npz"));
        foreach (var g in (JsonArray)entry["getter"]!)
        {
            string call = (string)g!["call"]!;
            var expected = g["returns"];
            if (call == "list(keys())")
                Assert.Equal(((JsonArray)expected!["items"]!).Select(KeyFromTypedJson).ToList(), s.Keys.ToList());
            else if (call == "len()")
                Assert.Equal(long.Parse((string)expected!["v"]!, CultureInfo.InvariantCulture), s.Count);
            else
                TypedJsonAssert.Equal(expected, TypedJson.ToJson(s[ParseKeyExpr(Inside(call, '[', ']'))]), call);
        }
    }

    [SkippableTheory]
    [InlineData("truncated.pkl")]
    [InlineData("empty_file.pkl")]
    public void Corrupt_files_raise_and_are_kept(string file)
    {
        using var dir = new TempDir();
        var copy = dir.File("cs.pkl");
        File.Copy(Shared.PyFixture(file), copy);
        var before = File.ReadAllBytes(copy);
        var e = Assert.Throws<InvalidDataException>(() => new CompressedStorage(copy, StoreOptions.Writable));
        Assert.Contains("cs.pkl", e.Message, StringComparison.Ordinal);
        Assert.Contains("offset", e.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, File.ReadAllBytes(copy));
    }

    [SkippableFact]
    public void Corrupt_file_can_be_moved_aside_explicitly()
    {
        using var dir = new TempDir();
        var copy = dir.File("cs.pkl");
        File.Copy(Shared.PyFixture("truncated.pkl"), copy);
        var before = File.ReadAllBytes(copy);
        using var cs = new CompressedStorage(copy, StoreOptions.Writable with { OnCorruptFile = CorruptFilePolicy.MoveAside });
        Assert.Equal(0, cs.Count);
        Assert.False(File.Exists(copy));
        var moved = Directory.GetFiles(dir.Path, "cs.pkl.corrupt-*");
        Assert.Single(moved);
        Assert.Equal(before, File.ReadAllBytes(moved[0]));
    }
}
