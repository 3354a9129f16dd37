using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Stores;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// Every pickle store fixture written by Python SyConn goes FS -> BT -> FS with equal per-key entries, and on BT the
/// typed stores return exactly what upstream's getters returned; corrupt fixtures are refused on the way in.
/// </summary>
public sealed class BtFixtureRoundTripTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    /// <summary>Copies a store's entries, and its voxel cache side data when it has any, as a conversion does.</summary>
    private static void Copy(IEntryStore from, IEntryStore to, StoreOptions options)
    {
        from.Load(options);
        using (var fromSide = from.OpenSideStore(IEntryStore.VoxelCacheSideStore))
        {
            fromSide.Load(options);
            if (fromSide.Exists)
            {
                using var toSide = to.OpenSideStore(IEntryStore.VoxelCacheSideStore);
                toSide.EnsureWritable();
                toSide.ReplaceAll(fromSide.ReadAll(), options);
            }
        }
        to.EnsureWritable();
        to.ReplaceAll(from.ReadAll(), options);
    }

    private static List<(StoreKey Key, string Json)> Entries(IEntryStore es)
    {
        es.Load(StoreOptions.Default);
        return es.ReadAll().Select(kv => (StoreKey.FromPython(kv.Key), TypedJson.ToJson(kv.Value).ToJsonString())).ToList();
    }

    [SkippableTheory]
    [MemberData(nameof(StoreFixtureTests.PickleStoreFixtures), MemberType = typeof(StoreFixtureTests))]
    public void A_fixture_goes_fs_to_bt_to_fs_with_equal_entries_and_bt_getters_match_upstream(string file)
    {
        string id = _prefix + file;
        var options = BtTestDatabase.Options(StoreOptions.Writable);
        using (var fs = new PickleFileEntryStore(Shared.PyFixture(file)))
        using (var bt = BtTestDatabase.Store(id))
            Copy(fs, bt, options);

        // The typed stores read the BT copy exactly as upstream read the file.
        StoreFixtureTests.CheckGetters(file, (cls, loadColArr) =>
            StoreFactory.Open(cls, "bt:" + id, BtTestDatabase.Options(), new StoreParameters { LoadColArr = loadColArr }));

        using var dir = new TempDir();
        using (var bt = BtTestDatabase.Store(id))
        using (var back = new PickleFileEntryStore(dir.File(file)))
            Copy(bt, back, StoreOptions.Writable);

        using var original = new PickleFileEntryStore(Shared.PyFixture(file));
        using var roundTripped = new PickleFileEntryStore(dir.File(file));
        var expected = Entries(original);
        Assert.NotEmpty(expected);
        Assert.Equal(expected, Entries(roundTripped));
        using (var bt = BtTestDatabase.Store(id)) Assert.Equal(expected, Entries(bt));

        using var originalCache = original.OpenSideStore(IEntryStore.VoxelCacheSideStore);
        using var returnedCache = roundTripped.OpenSideStore(IEntryStore.VoxelCacheSideStore);
        var cache = Entries(originalCache);
        Assert.Equal(cache, Entries(returnedCache));
        if (file == "voxel_storage_dyn.pkl") Assert.NotEmpty(cache);
    }

    [SkippableTheory]
    [InlineData("truncated.pkl")]
    [InlineData("empty_file.pkl")]
    public void A_corrupt_fixture_is_refused_on_the_way_in_and_nothing_is_written(string file)
    {
        string id = _prefix + file;
        using (var fs = new PickleFileEntryStore(Shared.PyFixture(file)))
        using (var bt = BtTestDatabase.Store(id))
        {
            var e = Assert.Throws<InvalidDataException>(() => Copy(fs, bt, BtTestDatabase.Options(StoreOptions.Writable)));
            Assert.Contains(file, e.Message, StringComparison.Ordinal);
        }
        using (var bt = BtTestDatabase.Store(id)) bt.EnsureWritable();
        Assert.Equal(0L, BtTestDatabase.Scalar("SELECT count(*) FROM syconn.entries WHERE identifier = $1", id));
        Assert.Equal(0L, BtTestDatabase.Scalar("SELECT count(*) FROM syconn.stores WHERE identifier = $1", id));
    }

    [SkippableFact]
    public void A_VoxelStorageDyn_on_bt_keeps_its_voxel_cache_in_the_side_table_and_reads_it_back()
    {
        string id = _prefix + "dyn";
        var bb = NdArray.Create(new long[] { 0, 0, 0, 4, 4, 4 }, 1, 2, 3);
        var cached = NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3);
        using (var vs = VoxelStorageDyn.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable), voxeldataPath: "/data/seg"))
        {
            Assert.True(vs.HoldsLock); // BT locks by default
            vs[7] = bb;
            vs.IncreaseObjectSize(7, 10);
            vs.SetVoxelCache(7, cached);
            vs.Push();
        }
        var side = BtTestDatabase.Rows("SELECT side, seq FROM syconn.side_entries WHERE identifier = $1", id);
        Assert.Equal("voxel_cache", (string)Assert.Single(side)[0]!);
        Assert.Equal("VoxelStorageDyn", BtTestDatabase.Scalar("SELECT class FROM syconn.stores WHERE identifier = $1", id));

        using var again = VoxelStorageDyn.Open("bt:" + id, BtTestDatabase.Options());
        Assert.Equal([(StoreKey)7], again.Keys);
        Assert.Equal(10L, again.ObjectSize(7));
        TypedJsonAssert.Equal(TypedJson.ToJson(cached), TypedJson.ToJson(again.GetVoxelCache(7)), "the voxel cache entry");
    }

    [SkippableFact]
    public void Typed_stores_write_on_bt_and_read_back_what_they_wrote()
    {
        var options = BtTestDatabase.Options(StoreOptions.Writable);
        var arr = NdArray.Create(Enumerable.Range(0, 1000).Select(i => (float)i).ToArray(), 10, 100);
        using (var cs = CompressedStorage.Open("bt:" + _prefix + "cs", options))
        {
            cs[1] = arr;
            cs[ulong.MaxValue] = arr;
            cs.Push();
        }
        using (var ad = AttributeDict.Open("bt:" + _prefix + "ad", options))
        {
            ((PyDict)ad[5])["size"] = 123L;
            ad.Push();
        }
        using (var cs = CompressedStorage.Open("bt:" + _prefix + "cs", BtTestDatabase.Options()))
        {
            Assert.Equal([(StoreKey)1, ulong.MaxValue], cs.Keys);
            Assert.Equal(arr.ToArray<float>(), cs[ulong.MaxValue].ToArray<float>());
        }
        using var ad2 = AttributeDict.Open("bt:" + _prefix + "ad", BtTestDatabase.Options());
        Assert.Equal(123L, ((PyDict)ad2[5])["size"]);
    }
}
