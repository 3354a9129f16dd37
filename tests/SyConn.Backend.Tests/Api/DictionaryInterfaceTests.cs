using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

public class DictionaryInterfaceTests
{
    [SkippableFact]
    public void A_fixture_store_works_as_a_read_only_dictionary_with_LINQ()
    {
        using var cs = CompressedStorage.Open(Shared.PyFixture("compressed_storage.pkl"));
        IReadOnlyDictionary<StoreKey, NdArray> ro = cs;
        Assert.True(cs.IsReadOnly);
        Assert.Equal(cs.Keys.Count(), ro.Count);
        Assert.True(ro.ContainsKey("str_key"));
        Assert.Equal("<f4", ro["str_key"].DType.Str);
        var big = ro.Where(kv => kv.Value.NDim == 3).Select(kv => kv.Key).ToList();
        Assert.Contains((StoreKey)123456789012L, big);
        Assert.Equal(ro.Keys.Count(), ro.ToDictionary(kv => kv.Key, kv => kv.Value.Size).Count);
        Assert.Throws<KeyNotFoundException>(() => ro[999]);

        IDictionary<StoreKey, NdArray> rw = cs;
        Assert.True(rw.IsReadOnly);
        Assert.Throws<NotSupportedException>(() => rw[1] = NdArray.Create(new[] { 1 }));
        Assert.Throws<NotSupportedException>(() => rw.Remove(0));
        Assert.Throws<NotSupportedException>(() => rw.Add(5, NdArray.Create(new[] { 1 })));
        Assert.Throws<NotSupportedException>(() => rw.Clear());
        Assert.Equal(ro.Count, cs.Count);              // nothing changed
    }

    [SkippableFact]
    public void The_interface_indexer_never_inserts_while_AttributeDicts_own_indexer_does()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        File.Copy(Shared.PyFixture("attrdict_p5.pkl"), path);
        using var ad = AttributeDict.Open(path, StoreOptions.Writable);
        IDictionary<StoreKey, object> d = ad;
        int n = d.Count;
        Assert.Throws<KeyNotFoundException>(() => d[1]);
        Assert.False(ad.ContainsKey(1));
        Assert.IsType<PyDict>(ad[1]);                  // upstream: a missing key gets {}
        Assert.Equal(n + 1, d.Count);
        Assert.False(d.IsReadOnly);
        Assert.Throws<ArgumentException>(() => d.Add(1, new PyDict()));
        d.Add(2, new PyDict { ["size"] = 3L });
        Assert.True(d.Remove(1));
        Assert.Equal(3, ad.Get<int>(2, "size"));
        var pairs = new KeyValuePair<StoreKey, object>[d.Count + 1];
        d.CopyTo(pairs, 1);
        Assert.Equal(d.Keys, pairs.Skip(1).Select(p => p.Key));
    }

    [SkippableFact]
    public void Count_through_the_interface_counts_the_listed_keys_of_a_VoxelStorageDyn()
    {
        using var vs = VoxelStorageDyn.Open(Shared.PyFixture("voxel_storage_dyn.pkl"));
        IReadOnlyDictionary<StoreKey, NdArray> d = vs;
        Assert.Equal(vs.Keys.Count(), d.Count);
        Assert.True(vs.Count > d.Count);               // len() counts the helper keys, as upstream
        Assert.Equal(d.Count, d.Select(kv => kv.Key).Count());
        // The helper keys are not there through the interfaces either, as they are not in Keys.
        Assert.True(vs.ContainsKey("meta"));
        Assert.False(d.ContainsKey("meta"));
        Assert.False(d.TryGetValue("meta", out _));
        Assert.Throws<KeyNotFoundException>(() => d["meta"]);
        Assert.All(vs.Keys, k => Assert.True(d.ContainsKey(k)));
    }

    [Fact]
    public void Tuple_keys_come_from_CSharp_tuples()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using (var cs = CompressedStorage.Open(path, StoreOptions.Writable))
        {
            cs[(1, 2)] = NdArray.Create(new[] { 12 });
            cs[("a", 3L)] = NdArray.Create(new[] { 3 });
            cs.Add(StoreKey.Tuple(ulong.MaxValue, "x"), NdArray.Create(new[] { 9 }));
            cs.Push();
        }
        using var r = CompressedStorage.Open(path);
        Assert.Equal(new[] { 12 }, r[(1L, 2L)].ToArray<int>());
        Assert.Equal(StoreKey.Parse("tuple:1,2"), (StoreKey)(1, 2));
        Assert.Equal(new[] { 3 }, r[StoreKey.Parse("tuple:str:a,3")].ToArray<int>());
        var k = r.Keys.Single(k => k.IsTuple && k.TupleItems[1].IsString);
        Assert.Equal(ulong.MaxValue, k.TupleItems[0].ToUInt64());
        Assert.True(k.TupleItems[1].TryGetString(out var s) && s == "x");
    }
}
