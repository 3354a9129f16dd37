using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using PickleFormat = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.EntryStores;

/// <summary>
/// Every way a store's entries can change (the indexer, Update, Remove, values edited in place, the helper dicts
/// of VoxelStorageDyn, its voxel cache, VoxelStorageL.Append) must reach the file with a changed-keys push. Each
/// test checks the result through a pull of the same store and through a fresh store object.
/// </summary>
public sealed class MutationPathTests : IDisposable
{
    private readonly TempDir _dir = new();

    private static StoreOptions Writable => StoreOptions.Writable;

    public void Dispose() => _dir.Dispose();

    private static void AssertPy(object expected, object? actual, string what)
    {
        Assert.NotNull(actual);
        TypedJsonAssert.Equal(TypedJson.ToJson(expected), TypedJson.ToJson(actual), what);
    }

    private static NdArray Arr(params long[] v) => NdArray.Create(v);

    /// <summary>The pickle file's entry store, recording what each push names as changed.</summary>
    private static RecordingEntryStore Rec(string path) => new(new PickleFileEntryStore(path));

    /// <summary>
    /// The last push named these keys as changed (or removed): a pickle file is rewritten whole, so only this shows
    /// that a backend writing changed keys alone would get the edit as well.
    /// </summary>
    private static void AssertLastPushNamed(RecordingEntryStore rec, StoreKey[] changed, StoreKey[]? removed = null)
    {
        Assert.NotEmpty(rec.WriteChangesCalls);
        var call = rec.WriteChangesCalls[^1];
        foreach (var k in changed) Assert.Contains(k, call.Changed);
        foreach (var k in removed ?? []) Assert.Contains(k, call.Removed);
    }

    private static NdArray Box(long lo, long hi) => NdArray.Create(new[] { lo, lo, lo, hi, hi, hi }, 1, 2, 3);

    private static NdArray Mask(byte seed) => NdArray.Create(Enumerable.Range(0, 8).Select(i => (byte)((seed + i) % 2)).ToArray(), 2, 2, 2);

    // ------------------------------------------------------------------ codec stores

    [Fact]
    public void Indexer_sets_survive_push_and_pull()
    {
        var path = _dir.File("cs.pkl");
        using (var cs = CompressedStorage.Open(path, Writable))
        {
            cs[1] = Arr(1, 2, 3);
            cs[2] = Arr(4);
            cs.Push();
        }
        var rec = Rec(path);
        using (var cs = CompressedStorage.Open(rec, Writable))
        {
            cs[2] = Arr(40, 41);
            cs[3] = Arr(5, 6);
            cs.Push();
            Assert.Equal(new StoreKey[] { 2, 3 }, Assert.Single(rec.WriteChangesCalls).Changed);
            cs.Pull();
            Assert.Equal(new long[] { 40, 41 }, cs[2].ToArray<long>());
            Assert.Equal(new long[] { 5, 6 }, cs[3].ToArray<long>());
        }
        using var r = CompressedStorage.Open(path);
        Assert.Equal(new StoreKey[] { 1, 2, 3 }, r.Keys);
        Assert.Equal(new long[] { 1, 2, 3 }, r[1].ToArray<long>());
        Assert.Equal(new long[] { 40, 41 }, r[2].ToArray<long>());
        Assert.Equal(new long[] { 5, 6 }, r[3].ToArray<long>());
    }

    [Theory]
    [InlineData(3)]
    [InlineData(12)] // encoded in parallel
    public void Update_survives_push_and_pull(int n)
    {
        var path = _dir.File("cs.pkl");
        using (var cs = CompressedStorage.Open(path, Writable))
        {
            cs[0] = Arr(-1);
            cs.Push();
        }
        var rec = Rec(path);
        using (var cs = CompressedStorage.Open(rec, Writable))
        {
            cs.Update(Enumerable.Range(0, n).Select(i => KeyValuePair.Create((StoreKey)i, Arr(i, 10 * i))));
            cs.Push();
            Assert.Equal(Enumerable.Range(0, n).Select(i => (StoreKey)i), Assert.Single(rec.WriteChangesCalls).Changed);
            cs.Pull();
            Assert.Equal(n, cs.Count);
            Assert.Equal(new long[] { 0, 0 }, cs[0].ToArray<long>());
        }
        using var r = CompressedStorage.Open(path);
        Assert.Equal(Enumerable.Range(0, n).Select(i => (StoreKey)i), r.Keys);
        for (int i = 0; i < n; i++) Assert.Equal(new long[] { i, 10 * i }, r[i].ToArray<long>());
    }

    [Fact]
    public void Remove_survives_push_and_pull()
    {
        var path = _dir.File("cs.pkl");
        using (var cs = CompressedStorage.Open(path, Writable))
        {
            cs.Update([KeyValuePair.Create((StoreKey)1, Arr(1)), KeyValuePair.Create((StoreKey)2, Arr(2)), KeyValuePair.Create((StoreKey)3, Arr(3))]);
            cs.Push();
        }
        var rec = Rec(path);
        using (var cs = CompressedStorage.Open(rec, Writable))
        {
            Assert.True(cs.Remove(2));
            cs.Push();
            var call = Assert.Single(rec.WriteChangesCalls);
            Assert.Equal(new StoreKey[] { 2 }, call.Removed);
            Assert.Empty(call.Changed);
            cs.Pull();
            Assert.Equal(new StoreKey[] { 1, 3 }, cs.Keys);
        }
        using var r = CompressedStorage.Open(path);
        Assert.Equal(new StoreKey[] { 1, 3 }, r.Keys);
        Assert.False(r.TryGetValue(2, out _));
    }

    // ------------------------------------------------------------------ AttributeDict values edited in place

    [Fact]
    public void AttributeDict_values_edited_in_place_after_a_read_survive_push_and_pull()
    {
        var path = _dir.File("attr_dict.pkl");
        using (var ad = AttributeDict.Open(path, Writable))
        {
            ad[1] = new PyDict { ["a"] = 1L };
            ad[2] = new PyDict { ["b"] = 2L };
            ad.Push();
        }
        var rec = Rec(path);
        using (var ad = AttributeDict.Open(rec, Writable))
        {
            ((PyDict)ad[1])["x"] = 1L;            // a stored value, read through the indexer
            ad.Attributes(2)["y"] = 2L;            // the same through Attributes
            ad.Attributes(3)["z"] = 3L;            // a missing key: the indexer inserts an empty dict
            ad.Push();
            AssertLastPushNamed(rec, [1, 2, 3]);
            ad.Pull();
            AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L }, ad[1], "key 1 after pull");
        }
        using var r = AttributeDict.Open(path);
        Assert.Equal(new StoreKey[] { 1, 2, 3 }, r.Keys);
        AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L }, r[1], "key 1");
        AssertPy(new PyDict { ["b"] = 2L, ["y"] = 2L }, r[2], "key 2");
        AssertPy(new PyDict { ["z"] = 3L }, r[3], "key 3");
    }

    [Fact]
    public void AttributeDict_values_edited_in_place_after_a_set_survive_push_and_pull()
    {
        var path = _dir.File("attr_dict.pkl");
        var rec = Rec(path);
        using (var ad = AttributeDict.Open(rec, Writable))
        {
            var d = new PyDict { ["a"] = 1L };
            ad[1] = d;
            d["x"] = 1L;                           // the caller's own object, after the set
            ((PyDict)ad[1])["y"] = 2L;             // the same object, read back
            ad.Push();
            AssertLastPushNamed(rec, [1]);
            ad.Pull();
            AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L, ["y"] = 2L }, ad[1], "key 1 after pull");
        }
        using var r = AttributeDict.Open(path);
        AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L, ["y"] = 2L }, r[1], "key 1");
    }

    [Fact]
    public void AttributeDict_values_edited_again_after_a_first_push_survive_a_second_push()
    {
        var path = _dir.File("attr_dict.pkl");
        var rec = Rec(path);
        using (var ad = AttributeDict.Open(rec, Writable))
        {
            var set = new PyDict { ["a"] = 1L };
            ad[1] = set;
            ad.Push();
            set["a"] = 2L;                         // edited after the first push on an unlocked store
            set["b"] = 3L;
            ad.Push();
            Assert.Equal(2, rec.WriteChangesCalls.Count);
            AssertLastPushNamed(rec, [1]);
        }
        using (var r = AttributeDict.Open(path))
            AssertPy(new PyDict { ["a"] = 2L, ["b"] = 3L }, r[1], "key 1 after the second push");

        var rec2 = Rec(path);
        using (var ad = AttributeDict.Open(rec2, Writable))
        {
            var read = ad.Attributes(1);           // a stored value, read before the first push
            read["c"] = 4L;
            ad.Push();
            read["c"] = 5L;
            read["d"] = 6L;
            ad.Push();
            Assert.Equal(2, rec2.WriteChangesCalls.Count);
            AssertLastPushNamed(rec2, [1]);
        }
        using var r2 = AttributeDict.Open(path);
        AssertPy(new PyDict { ["a"] = 2L, ["b"] = 3L, ["c"] = 5L, ["d"] = 6L }, r2[1], "key 1 after the fourth push");
    }

    [Fact]
    public void CopyIntern_values_edited_in_place_survive_push_and_pull()
    {
        var adPath = _dir.File("attr_dict.pkl");
        using (var ad = AttributeDict.Open(adPath, Writable))
        {
            ad[1] = new PyDict { ["a"] = 1L };
            ad[2] = new PyDict { ["b"] = 2L };
            ad.Push();
        }
        var rec = Rec(adPath);
        using (var ad = AttributeDict.Open(rec, Writable))
        {
            var copy = ad.CopyIntern();
            Assert.Equal(2, copy.Count);
            ((PyDict)copy[1L])["x"] = 1L;
            ad.Push();
            AssertLastPushNamed(rec, [1]);
            ad.Pull();
            AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L }, ad[1], "key 1 after pull");
        }
        using (var r = AttributeDict.Open(adPath))
        {
            AssertPy(new PyDict { ["a"] = 1L, ["x"] = 1L }, r[1], "key 1");
            AssertPy(new PyDict { ["b"] = 2L }, r[2], "key 2");
        }

        // The raw entries of a codec store edited in place: key 1 gets the encoding of another array.
        var csPath = _dir.File("cs.pkl");
        using (var cs = CompressedStorage.Open(csPath, Writable))
        {
            cs[1] = Arr(1, 2, 3);
            cs.Push();
        }
        var recCs = Rec(csPath);
        using (var cs = CompressedStorage.Open(recCs, Writable))
        {
            var raw = (PyDict)cs.CopyIntern()[1L];
            var other = CompressedStorage.EncodeEntry(Arr(7, 8));
            raw.Clear();
            foreach (var kv in other) raw[kv.Key] = kv.Value;
            cs.Push();
            AssertLastPushNamed(recCs, [1]);
        }
        using var rcs = CompressedStorage.Open(csPath);
        Assert.Equal(new long[] { 7, 8 }, rcs[1].ToArray<long>());
    }

    // ------------------------------------------------------------------ VoxelStorageDyn's helper dicts and voxel cache

    [Fact]
    public void VoxelStorageDyn_IncreaseObjectSize_survives_push_and_pull()
    {
        var path = _dir.File("voxel.pkl");
        using (var vs = VoxelStorageDyn.Open(path, Writable))
        {
            vs[1] = Box(0, 2);
            vs[2] = Box(1, 3);
            vs.IncreaseObjectSize(1, 5);
            vs.Push();
            vs.Pull();
            Assert.Equal(5, vs.ObjectSize(1));
        }
        var rec = Rec(path);
        using (var vs = VoxelStorageDyn.Open(rec, Writable))
        {
            Assert.Equal(5, vs.ObjectSize(1));
            vs.IncreaseObjectSize(1, 3);           // the stored size dict, edited in place
            vs.IncreaseObjectSize(2, 7);
            vs.Push();
            AssertLastPushNamed(rec, ["size"]);
        }
        using var r = VoxelStorageDyn.Open(path);
        Assert.Equal(8, r.ObjectSize(1));
        Assert.Equal(7, r.ObjectSize(2));
    }

    [Fact]
    public void VoxelStorageDyn_SetObjectRepCoord_survives_push_and_pull()
    {
        var path = _dir.File("voxel.pkl");
        using (var vs = VoxelStorageDyn.Open(path, Writable))
        {
            vs[1] = Box(0, 2);
            vs.SetObjectRepCoord(1, Arr(1, 2, 3));
            vs.Push();
            vs.Pull();
            AssertPy(Arr(1, 2, 3), vs.ObjectRepCoord(1), "rep_coord of 1 after pull");
        }
        var rec = Rec(path);
        using (var vs = VoxelStorageDyn.Open(rec, Writable))
        {
            vs[2] = Box(1, 3);
            vs.SetObjectRepCoord(2, Arr(4, 5, 6));
            vs.SetObjectRepCoord(1, Arr(7, 8, 9));
            vs.Push();
            AssertLastPushNamed(rec, [2, "rep_coord"]);
        }
        using var r = VoxelStorageDyn.Open(path);
        AssertPy(Arr(7, 8, 9), r.ObjectRepCoord(1), "rep_coord of 1");
        AssertPy(Arr(4, 5, 6), r.ObjectRepCoord(2), "rep_coord of 2");
    }

    [Fact]
    public void VoxelStorageDyn_Meta_edits_survive_push_and_pull()
    {
        var path = _dir.File("voxel.pkl");
        using (var vs = VoxelStorageDyn.Open(path, Writable))
        {
            Assert.Null(vs.VoxeldataPath);
            vs.Meta["voxeldata_path"] = "/data/seg";
            vs.Push();
            vs.Pull();
            Assert.Equal("/data/seg", vs.VoxeldataPath);
        }
        var rec = Rec(path);
        using (var vs = VoxelStorageDyn.Open(rec, Writable))
        {
            Assert.Equal("/data/seg", vs.VoxeldataPath);
            vs.Meta["extra"] = 5L;
            vs.Push();
            AssertLastPushNamed(rec, ["meta"]);
        }
        using var r = VoxelStorageDyn.Open(path);
        Assert.Equal("/data/seg", r.VoxeldataPath);
        Assert.Equal(5L, r.Meta["extra"]);
    }

    [Fact]
    public void VoxelStorageDyn_SetVoxelCache_survives_push_and_pull()
    {
        var path = _dir.File("voxel.pkl");
        var one = NdArray.Create(new long[] { 1, 1, 1, 2, 2, 2 }, 2, 3);
        var two = NdArray.Create(new long[] { 3, 3, 3 }, 1, 3);
        using (var vs = VoxelStorageDyn.Open(path, Writable))
        {
            vs[1] = Box(0, 2);
            vs[2] = Box(1, 3);
            vs.SetVoxelCache(1, one);
            vs.Push();
            Assert.True(File.Exists(vs.NpzPath));
            vs.Pull();
            AssertPy(one, vs.GetVoxelCache(1), "voxel cache of 1 after pull");
        }
        using (var vs = VoxelStorageDyn.Open(path, Writable))
        {
            vs.SetVoxelCache(2, two);              // onto the stored cache
            vs.Push();
        }
        using var r = VoxelStorageDyn.Open(path);
        AssertPy(one, r.GetVoxelCache(1), "voxel cache of 1");
        AssertPy(two, r.GetVoxelCache(2), "voxel cache of 2");
        AssertPy(one, r[1], "the getter prefers the voxel cache");
    }

    // ------------------------------------------------------------------ VoxelStorageL

    [Fact]
    public void VoxelStorageL_Append_survives_push_and_pull()
    {
        var path = _dir.File("vl.pkl");
        using (var vl = VoxelStorageL.Open(path, Writable))
        {
            vl.Append(1, Mask(0), [0, 0, 0]);       // creates the entry
            vl.Append(1, Mask(1), [1, 1, 1]);       // onto the entry set in this session
            vl.Push();
            vl.Pull();
            Assert.Equal(2, vl[1].Masks.Count);
        }
        var rec = Rec(path);
        using (var vl = VoxelStorageL.Open(rec, Writable))
        {
            vl.Append(1, Mask(0), [2, 2, 2]);       // onto the stored entry
            vl.Push();
            Assert.Equal(new StoreKey[] { 1 }, Assert.Single(rec.WriteChangesCalls).Changed);
        }
        using var r = VoxelStorageL.Open(path);
        var m = r[1];
        Assert.Equal(3, m.Masks.Count);
        Assert.Equal(new[] { new long[] { 0, 0, 0 }, [1, 1, 1], [2, 2, 2] }, m.OffsetRows);
        AssertPy(Mask(0), m.Masks[0], "mask 0");
        AssertPy(Mask(1), m.Masks[1], "mask 1");
        AssertPy(Mask(0), m.Masks[2], "mask 2");
    }

    // ------------------------------------------------------------------ entries that share an object through the pickle memo

    private string WriteSharedListStore()
    {
        var path = _dir.File("attr_dict.pkl");
        var shared = new PyList { 1L, 2L };
        var bytes = PickleFormat.Dump(new PyDict { ["a"] = shared, ["b"] = shared, ["c"] = new PyList { 3L } });
        // The file really shares the list between the two keys.
        var loaded = (PyDict)PickleFormat.Load(bytes);
        Assert.Same(loaded["a"], loaded["b"]);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void Editing_a_list_shared_through_the_pickle_memo_via_one_key_does_not_change_the_other_key()
    {
        var path = WriteSharedListStore();
        using (var ad = AttributeDict.Open(path, Writable))
        {
            var a = (PyList)ad["a"];
            a.Add(99L);
            AssertPy(new PyList { 1L, 2L }, ad["b"], "key b before push");
            AssertPy(new PyList { 1L, 2L, 99L }, ad["a"], "key a before push");
            ad.Push();
            ad.Pull();
            AssertPy(new PyList { 1L, 2L }, ad["b"], "key b after pull");
        }
        using var r = AttributeDict.Open(path);
        AssertPy(new PyList { 1L, 2L, 99L }, r["a"], "key a");
        AssertPy(new PyList { 1L, 2L }, r["b"], "key b");
        AssertPy(new PyList { 3L }, r["c"], "key c");
    }

    [Fact]
    public void Editing_a_list_shared_through_the_pickle_memo_and_pushing_without_reading_the_other_key_keeps_the_other_key()
    {
        var path = WriteSharedListStore();
        using (var ad = AttributeDict.Open(path, Writable))
        {
            ((PyList)ad["a"]).Add(99L);
            ad.Push();
        }
        var onDisk = (PyDict)PickleFormat.Load(File.ReadAllBytes(path));
        AssertPy(new PyList { 1L, 2L }, onDisk["b"], "key b in the file");
        using var r = AttributeDict.Open(path);
        AssertPy(new PyList { 1L, 2L, 99L }, r["a"], "key a");
        AssertPy(new PyList { 1L, 2L }, r["b"], "key b");
    }
}
