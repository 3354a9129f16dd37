using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Stores;

public class CompressedStorageTests
{
    [Fact]
    public void Arrays_round_trip_through_a_file_and_come_back_native_C()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        var be = new NdArray(DType.Parse(">i4"), [3], new byte[] { 0, 0, 0, 1, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe });
        var fortran = new NdArray(DType.UInt16, [2, 3], new byte[] { 0, 0, 3, 0, 1, 0, 4, 0, 2, 0, 5, 0 }, ArrayOrder.F);
        var ids = NdArray.Create(new ulong[] { 0, 1, ulong.MaxValue, 1UL << 63, 5, 6 }, 2, 3);
        using (var cs = new CompressedStorage(path, StoreOptions.Writable))
        {
            cs[1] = be;
            cs[ulong.MaxValue] = fortran;
            cs["name"] = ids;
            cs[-5] = NdArray.Zeros(DType.Float32, 0, 3);
            cs.Push();
        }
        using var r = new CompressedStorage(path);
        Assert.Equal(4, r.Count);
        Assert.Equal("<i4", r[1].DType.Str);
        Assert.Equal(new[] { 1, 256, -2 }, r[1].ToArray<int>());
        Assert.Equal(new ushort[] { 0, 1, 2, 3, 4, 5 }, r[ulong.MaxValue].AsSpan<ushort>().ToArray());
        Assert.Equal(new long[] { 2, 3 }, r[ulong.MaxValue].ShapeArray);
        Assert.True(r["name"].Equals(ids));
        Assert.Equal(new long[] { 0 }, r[-5].ShapeArray);
        Assert.Equal(new StoreKey[] { 1, ulong.MaxValue, "name", -5 }, r.Keys.ToArray());
    }

    [Fact]
    public void Unreadable_shapes_are_refused_on_write()
    {
        using var dir = new TempDir();
        using var cs = new CompressedStorage(dir.File("cs.pkl"), StoreOptions.Writable);
        Assert.Throws<ArgumentException>(() => cs[1] = NdArray.Zeros(DType.Int32, 3, 0));
        Assert.Throws<ArgumentException>(() => cs[1] = NdArray.Zeros(DType.Int32));
        Assert.False(cs.ContainsKey(1));
    }

    [Fact]
    public void Remove_works_and_persists()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using (var cs = new CompressedStorage(path, StoreOptions.Writable))
        {
            cs[1] = NdArray.Create(new[] { 1, 2 });
            cs[2] = NdArray.Create(new[] { 3 });
            Assert.True(cs.Remove(1));
            Assert.False(cs.Remove(1));
            cs.Push();
        }
        using var r = new CompressedStorage(path);
        Assert.Equal(new StoreKey[] { 2 }, r.Keys.ToArray());
        Assert.Throws<KeyNotFoundException>(() => r[1]);
    }

    [Fact]
    public void Push_on_a_read_only_store_is_refused_unless_asked_for()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using (var ro = new CompressedStorage(path))
        {
            ro[1] = NdArray.Create(new[] { 1 });
            Assert.Throws<InvalidOperationException>(() => ro.Push());
        }
        Assert.False(File.Exists(path));
        using (var ro = new CompressedStorage(path, new StoreOptions { AllowReadOnlyPush = true }))
        {
            ro[1] = NdArray.Create(new[] { 1 });
            ro.Push();
        }
        Assert.True(File.Exists(path));
    }

    [Fact]
    public void Second_push_of_a_locked_store_is_refused_before_writing()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using var cs = new CompressedStorage(path, StoreOptions.WritableLocked);
        Assert.True(cs.HoldsLock);
        cs[1] = NdArray.Create(new[] { 1 });
        cs.Push();
        Assert.False(cs.HoldsLock);
        var first = File.ReadAllBytes(path);
        cs[2] = NdArray.Create(new[] { 2 });
        Assert.Throws<InvalidOperationException>(() => cs.Push());
        Assert.Equal(first, File.ReadAllBytes(path));
        cs.Pull();
        Assert.True(cs.HoldsLock);
        Assert.Equal(1, cs.Count);
    }

    [Fact]
    public void A_held_lock_makes_a_second_store_time_out_and_dispose_releases_it_without_writing()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        var holder = new CompressedStorage(path, StoreOptions.WritableLocked);
        holder[1] = NdArray.Create(new[] { 1 });
        var quick = StoreOptions.WritableLocked with { Timeout = 0.3, MaxNbAttempts = 3 };
        var e = Assert.Throws<StorageLockTimeoutException>(() => new CompressedStorage(path, quick));
        Assert.Contains(".cs.pkl.lk", e.Message, StringComparison.Ordinal);
        holder.Dispose();
        Assert.False(File.Exists(path));
        using var second = new CompressedStorage(path, quick);
        Assert.True(second.HoldsLock);
        Assert.Equal(0, second.Count);
    }

    [Fact]
    public void Read_only_store_holds_the_lock_only_while_reading()
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using var ro = new CompressedStorage(path, new StoreOptions { DisableLocking = false });
        Assert.False(ro.HoldsLock);
        using var w = new CompressedStorage(path, StoreOptions.WritableLocked with { Timeout = 1 });
        Assert.True(w.HoldsLock);
    }

    [Fact]
    public void CacheDecomp_decodes_once_and_forgets_on_write()
    {
        using var dir = new TempDir();
        using var cs = new CompressedStorage(dir.File("cs.pkl"), StoreOptions.Writable with { CacheDecomp = true });
        cs[1] = NdArray.Create(new[] { 1, 2, 3 });
        var a = cs[1];
        Assert.Same(a, cs[1]);
        cs[1] = NdArray.Create(new[] { 4 });
        Assert.Equal(new[] { 4 }, cs[1].ToArray<int>());
    }
}

public class AttributeDictTests
{
    [Fact]
    public void Indexer_inserts_an_empty_dict_for_a_missing_key_and_TryGetValue_does_not()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        using (var ad = new AttributeDict(path, StoreOptions.Writable))
        {
            Assert.False(ad.TryGetValue(7, out _));
            Assert.Equal(0, ad.Count);
            ad.Attributes(424242)["b"] = 2L;
            ad[5] = new PyDict { ["size"] = 10L, ["rep_coord"] = NdArray.Create(new long[] { 1, 2, 3 }), ["p"] = NpScalar.Float32(0.5f) };
            ad.Push();
        }
        using var r = new AttributeDict(path);
        Assert.Equal(2L, r.Attributes(424242)["b"]);
        Assert.True(r.TryGetAttribute(5, "size", out var size));
        Assert.Equal(10L, size);
        Assert.Equal(new long[] { 1, 2, 3 }, ((NdArray)r.Attributes(5)["rep_coord"]).ToArray<long>());
    }
}

public class MeshAndSkeletonTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Mesh_fills_missing_arrays_and_casts(bool compress)
    {
        using var dir = new TempDir();
        var path = dir.File("mesh.pkl");
        using (var ms = new MeshStorage(path, StoreOptions.Writable, compress: compress))
        {
            ms[3] = [NdArray.Create(new long[] { 0, 1, 2 }), NdArray.Create(new double[] { 0, 1.5, 2 })];
            ms.Push();
        }
        using var r = new MeshStorage(path, loadColArr: true);
        var m = r[3];
        Assert.Equal(4, m.Length);
        Assert.Equal("<u4", m[0].DType.Str);
        Assert.Equal(new uint[] { 0, 1, 2 }, m[0].ToArray<uint>());
        Assert.Equal(new float[] { 0, 1.5f, 2 }, m[1].ToArray<float>());
        Assert.Equal(0, m[2].Size);
        Assert.Equal("|u1", m[3].DType.Str);
        using var r3 = new MeshStorage(path);
        Assert.Equal(3, r3[3].Length);
    }

    [Fact]
    public void Legacy_mesh_entries_are_read_without_changing_them()
    {
        using var dir = new TempDir();
        var path = dir.File("mesh.pkl");
        using var ms = new MeshStorage(path, StoreOptions.Writable);
        ms.SetRaw(1, new PyList { NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(new float[] { 1, 2, 3 }) });
        var m = ms[1];
        Assert.Equal(3, m.Length);
        Assert.Equal(0, m[2].Size);
        Assert.Equal(2, ((PyList)ms.GetRaw(1)).Count);
    }

    [Fact]
    public void Skeleton_round_trips_flat_with_extras()
    {
        using var dir = new TempDir();
        var path = dir.File("skeletons.pkl");
        using (var ss = new SkeletonStorage(path, StoreOptions.Writable))
        {
            ss[4] = new Skeleton(NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3), NdArray.Create(new double[] { 2, 3 }),
                NdArray.Create(new long[] { 0, 1 }, 1, 2), new PyDict { ["axoness"] = NdArray.Create(new long[] { 1 }) });
            ss.Push();
        }
        using var r = new SkeletonStorage(path);
        var s = r[4];
        Assert.Equal(new uint[] { 1, 2, 3, 4, 5, 6 }, s.Nodes.ToArray<uint>());
        Assert.Equal(new long[] { 6 }, s.Nodes.ShapeArray);
        Assert.Equal(new float[] { 2, 3 }, s.Diameters.ToArray<float>());
        Assert.Equal(new uint[] { 0, 1 }, s.Edges.ToArray<uint>());
        Assert.Equal(new long[] { 1 }, ((NdArray)s.Extras["axoness"]).ToArray<long>());
    }
}

public class VoxelStorageTests
{
    [Fact]
    public void Append_extends_list_and_array_offsets_and_keeps_dt_a_str()
    {
        using var dir = new TempDir();
        var path = dir.File("vl.pkl");
        using (var vl = new VoxelStorageL(path, StoreOptions.Writable))
        {
            vl[5] = new VoxelMasks([NdArray.Create(new byte[] { 1, 1 }, 1, 1, 2)], [new long[] { 7, 8, 9 }]);
            vl.Append(5, NdArray.Zeros(DType.UInt8, 1, 1, 1), [1, 1, 1]);
            vl[6] = new VoxelMasks([NdArray.Create(new byte[] { 1 }, 1, 1, 1)], NdArray.Create(new long[] { 4, 5, 6 }, 1, 3));
            vl.Append(6, NdArray.Create(new byte[] { 0, 1 }, 2, 1, 1), [10, 11, 12]);
            Assert.Throws<ArgumentException>(() => vl.Append(6, NdArray.Create(new[] { 1 }, 1, 1, 1), [0, 0, 0]));
            vl.Push();
        }
        using var r = new VoxelStorageL(path);
        var a = r[5];
        Assert.Equal(2, a.Masks.Count);
        Assert.Equal(new[] { new long[] { 7, 8, 9 }, new long[] { 1, 1, 1 } }, a.OffsetRows);
        Assert.IsType<string>(((PyDict)r.GetRaw(5))["dt"]);
        var b = r[6];
        Assert.Equal(new[] { new long[] { 4, 5, 6 }, new long[] { 10, 11, 12 } }, b.OffsetRows);
        Assert.Equal(new long[] { 2, 1, 1 }, b.Masks[1].ShapeArray);
        Assert.IsType<NdArray>(b.Offsets);
    }

    [Fact]
    public void VoxelStorageClass_refuses_locking()
    {
        using var dir = new TempDir();
        Assert.Throws<ArgumentException>(() => new VoxelStorageClass(dir.File("v.pkl"), StoreOptions.WritableLocked));
    }

    [Fact]
    public void Dyn_keeps_helper_keys_sizes_repcoords_and_writes_the_voxel_cache()
    {
        using var dir = new TempDir();
        var stem = dir.File("voxel_store");
        using (var vs = new VoxelStorageDyn(stem, StoreOptions.Writable, voxeldataPath: "/kd/seg"))
        {
            vs[7] = NdArray.Create(new int[] { 1, 2, 3, 4, 5, 6 }, 1, 2, 3);
            vs.IncreaseObjectSize(7, 5);
            vs.IncreaseObjectSize(7, 2);
            vs.SetObjectRepCoord(7, new PyTuple(1L, 2L, 3L));
            vs.SetVoxelCache(11, NdArray.Create(new uint[] { 1, 2, 3 }, 1, 3));
            vs.Push();
        }
        Assert.True(File.Exists(stem + ".pkl"));
        Assert.True(File.Exists(stem + ".npz"));
        using var r = new VoxelStorageDyn(stem + ".pkl");
        Assert.Equal(new StoreKey[] { 7 }, r.Keys.ToArray());
        Assert.Equal(5, r.Count);
        Assert.Equal(7, r.ObjectSize(7));
        Assert.Equal("/kd/seg", r.VoxeldataPath);
        Assert.Equal(new PyTuple(1L, 2L, 3L), r.ObjectRepCoord(7));
        Assert.Equal(new uint[] { 1, 2, 3 }, r.GetVoxelCache(11).ToArray<uint>());
        Assert.Equal(new int[] { 1, 2, 3, 4, 5, 6 }, r.GetBoundingData(7).ToArray<int>());
        Assert.Throws<KeyNotFoundException>(() => r.ObjectSize(8));
        Assert.Equal(new[] { "meta", "size", "rep_coord", "voxel_cache" },
            r.CopyIntern().Keys.Take(4).Cast<string>().ToArray());
    }

    [Fact]
    public void LazyLoading_overwrite_deletes_nothing_until_push()
    {
        using var dir = new TempDir();
        var path = dir.File("cache.npz");
        using (var s = new VoxelStorageLazyLoading(path))
        {
            s[10] = NdArray.Create(new long[] { 1, 2, 3 }, 1, 3);
            s[-3] = NdArray.Create(new short[] { 4 }, 1, 1);
            s.Push();
        }
        var before = File.ReadAllBytes(path);
        using (var s = new VoxelStorageLazyLoading(path, overwrite: true))
        {
            Assert.Equal(0, s.Count);
            Assert.Equal(before, File.ReadAllBytes(path));
            s[1] = NdArray.Create(new long[] { 9 });
            s.Push();
        }
        using var r = new VoxelStorageLazyLoading(path);
        Assert.Equal(new StoreKey[] { 1 }, r.Keys.ToArray());
    }

    [Fact]
    public void LazyLoading_can_modify_an_existing_file()
    {
        using var dir = new TempDir();
        var path = dir.File("cache.npz");
        using (var s = new VoxelStorageLazyLoading(path))
        {
            s[10] = NdArray.Create(new long[] { 1, 2, 3 }, 1, 3);
            s.Push();
            s[11] = NdArray.Create(new long[] { 5 });
            s.Push();
        }
        using var r = new VoxelStorageLazyLoading(path);
        Assert.Equal(new StoreKey[] { 10, 11 }, r.Keys.ToArray());
        Assert.Equal(new long[] { 1, 2, 3 }, r[10].ToArray<long>());
    }
}

public class UpdateTests
{
    [Fact]
    public void Update_encodes_in_parallel_keeps_order_and_stores_nothing_on_error()
    {
        using var dir = new TempDir();
        using var cs = new CompressedStorage(dir.File("cs.pkl"), StoreOptions.Writable);
        var items = Enumerable.Range(0, 100).Select(i => new KeyValuePair<StoreKey, NdArray>(100 - i, NdArray.Create(Enumerable.Range(0, i * 3).Select(x => (long)x).ToArray()))).ToList();
        cs.Update(items);
        Assert.Equal(items.Select(i => i.Key), cs.Keys);
        foreach (var (k, v) in items) Assert.True(cs[k].Equals(v.NBytes == 0 ? NdArray.Zeros(DType.Int64, 0) : v), k.ToString());
        var bad = items.Take(20).Select(kv => new KeyValuePair<StoreKey, NdArray>(kv.Key.ToUInt64() + 1000, kv.Value)).Append(new(5000, NdArray.Zeros(DType.Int32, 3, 0))).ToList();
        Assert.Throws<ArgumentException>(() => cs.Update(bad));
        Assert.False(cs.ContainsKey(1001));
        Assert.Equal(100, cs.Count);
    }
}

public class GetManyTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void GetMany_returns_values_in_key_order_and_names_a_missing_key(bool cacheDecomp)
    {
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        using (var cs = new CompressedStorage(path, StoreOptions.Writable))
        {
            for (int i = 0; i < 50; i++) cs[i] = NdArray.Create(Enumerable.Repeat((long)i, i + 1).ToArray());
            cs.Push();
        }
        using var r = new CompressedStorage(path, new StoreOptions { CacheDecomp = cacheDecomp });
        var first = r[3];
        var keys = Enumerable.Range(0, 50).Reverse().Select(i => (StoreKey)i).ToArray();
        var values = r.GetMany(keys);
        for (int i = 0; i < keys.Length; i++) Assert.Equal(Enumerable.Repeat(49L - i, 50 - i), values[i].ToArray<long>());
        if (cacheDecomp) Assert.Same(first, values[46]);
        var e = Assert.Throws<KeyNotFoundException>(() => r.GetMany([1, 77, 2]));
        Assert.Contains("77", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetMany_on_VoxelStorageDyn_prefers_the_voxel_cache()
    {
        using var dir = new TempDir();
        using var vs = new VoxelStorageDyn(dir.File("v"), StoreOptions.Writable);
        vs[1] = NdArray.Create(new long[] { 0, 0, 0, 1, 1, 1 }, 1, 2, 3);
        vs[2] = NdArray.Create(new long[] { 0, 0, 0, 2, 2, 2 }, 1, 2, 3);
        vs.SetVoxelCache(2, NdArray.Create(new long[] { 9, 9, 9 }, 1, 3));
        var v = vs.GetMany([1, 2]);
        Assert.Equal(new long[] { 1, 2, 3 }.Length, v[1].Size);
        Assert.Equal(new long[] { 9, 9, 9 }, v[1].ToArray<long>());
        Assert.Equal(6, v[0].Size);
    }
}

public class MeshWarningTests
{
    private sealed class ListLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<string> Messages { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Messages.Add($"{logLevel}: {formatter(state, exception)}");
    }

    [Fact]
    public void Mismatched_normal_and_colour_lengths_are_logged_as_warnings()
    {
        using var dir = new TempDir();
        var log = new ListLogger();
        using var ms = new MeshStorage(dir.File("mesh.pkl"), StoreOptions.Writable with { Logger = log });
        var ind = NdArray.Create(new uint[] { 0, 1, 2 });
        var vert = NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 0, 1, 0 });
        ms[1] = [ind, vert, NdArray.Create(new float[] { 0, 0, 1, 0, 0, 1, 0, 0, 1 }), NdArray.Create(new byte[] { 1, 2, 3 })];
        Assert.Empty(log.Messages);
        ms[2] = [ind, vert, NdArray.Create(new float[] { 0, 0, 1 })];
        Assert.Single(log.Messages);
        Assert.Contains("normal", log.Messages[0], StringComparison.Ordinal);
        ms[3] = [ind, vert, NdArray.Zeros(DType.Float32, 0), NdArray.Create(new byte[] { 1, 2 })];
        Assert.Equal(2, log.Messages.Count);
        Assert.StartsWith("Warning", log.Messages[1], StringComparison.Ordinal);
        Assert.Contains("colour", log.Messages[1], StringComparison.Ordinal);
    }
}
