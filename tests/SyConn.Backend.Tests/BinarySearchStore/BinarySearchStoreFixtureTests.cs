using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.BinarySearchStores;

/// <summary>The h5py-written fixture reads exactly as MANIFEST.json describes it.</summary>
public class BinarySearchStoreFixtureTests
{
    private const string Name = "binary_search_store.h5";

    private static (BinarySearchStore Store, JsonObject Entry) Open()
    {
        var path = Shared.PyFixture(Name);
        Requires.That(File.Exists(path), $"fixture {path}");
        return (new BinarySearchStore(path), Manifest.File_(Name));
    }

    private static JsonNode Getter(JsonObject entry, string call) =>
        ((JsonArray)entry["getter"]!).Single(g => (string?)g!["call"] == call)!["returns"]!;

    [SkippableFact]
    public void Shards_ids_and_bucket_ranges_match_the_manifest()
    {
        var (store, entry) = Open();
        using var _ = store;
        TypedJsonAssert.Equal(Getter(entry, "n_shards"), TypedJson.ToJson((long)store.NShards), "n_shards");
        TypedJsonAssert.Equal(Getter(entry, "id_array"), TypedJson.ToJson(NdArray.Wrap(store.IdArray)), "id_array");

        var ranges = store.BucketRanges;
        var flat = ranges.SelectMany(r => new[] { r.First, r.Last }).ToArray();
        TypedJsonAssert.Equal(entry["h5"]!["root_attrs"]!["bucket_ranges"]!["value"],
            TypedJson.ToJson(NdArray.Wrap(flat, ranges.Length, 2)), "bucket_ranges");
    }

    [SkippableFact]
    public void Every_dataset_and_group_attribute_matches_the_manifest()
    {
        var (store, entry) = Open();
        using var _ = store;
        var groups = (JsonObject)entry["h5"]!["groups"]!;
        Assert.Equal(groups.Select(g => g.Key).Where(k => k != "ids").Order(StringComparer.Ordinal),
            store.AttributeNames.Order(StringComparer.Ordinal));
        int checkedDatasets = 0;
        foreach (var (group, node) in groups)
        {
            if (group != "ids")
            {
                var attrs = node!["attrs"]!;
                TypedJsonAssert.Equal(attrs["dtype"]!["value"], TypedJson.ToJson(store.GetAttributeDType(group).Str), $"{group} dtype");
                TypedJsonAssert.Equal(attrs["shape"]!["value"], TypedJson.ToJson(NdArray.Wrap(store.GetAttributeShape(group))), $"{group} shape");
            }
            foreach (var (shard, ds) in (JsonObject)node!["datasets"]!)
            {
                var actual = store.ReadShard(group, int.Parse(shard, System.Globalization.CultureInfo.InvariantCulture));
                TypedJsonAssert.Equal(ds!["data"], TypedJson.ToJson(actual), $"/{group}/{shard}");
                checkedDatasets++;
            }
        }
        Assert.Equal(4 * 3, checkedDatasets);
    }

    [SkippableFact]
    public void The_50_manifest_queries_return_the_manifest_results()
    {
        var (store, entry) = Open();
        using var _ = store;
        var queryNode = Getter(entry, "query ids (used by the get_attributes calls below)");
        var query = ((JsonArray)queryNode["values"]!).Select(v => ulong.Parse(v!.ToJsonString().Trim('"'), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(50, query.Length);
        TypedJsonAssert.Equal(queryNode, TypedJson.ToJson(NdArray.Wrap(query)), "query ids");
        int calls = 0;
        foreach (var g in (JsonArray)entry["getter"]!)
        {
            var call = (string)g!["call"]!;
            if (!call.StartsWith("get_attributes(query_ids, '", StringComparison.Ordinal)) continue;
            var key = call["get_attributes(query_ids, '".Length..^2];
            TypedJsonAssert.Equal(g["returns"], TypedJson.ToJson(store.GetAttributes(query, key)), call);
            TypedJsonAssert.Equal(g["returns"], TypedJson.ToJson(BinarySearchStore.GetAttributesParallel(store, query, key, 2)), call + " (parallel)");
            calls++;
        }
        Assert.Equal(3, calls);
    }
}
