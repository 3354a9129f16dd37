using System.Buffers.Binary;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Py = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// The HDF5 metadata walk that runs before PureHDF (<see cref="Hdf5Precheck"/>): it accepts every store our writer and h5py
/// write (in every group and chunk-index layout h5py produces) and visits all their objects; it refuses damaged sizes naming
/// the file, the structure and its offset; and every flaw the fuzz harness plants is refused by the store.
/// </summary>
public class Hdf5PrecheckTests
{
    private static readonly ReadLimits Limits = new() { MaxArrayBytes = 64L << 20 };

    [Fact]
    public void Stores_of_our_writer_pass_and_every_group_and_dataset_is_visited()
    {
        using var dir = new TempDir();
        int k = 0;
        foreach (var data in Hdf5Target.OwnStores(dir.Path, 9))
        {
            string path = dir.File($"check-{k++}.h5");
            File.WriteAllBytes(path, data);
            var summary = Hdf5Precheck.Check(path, Limits);
            using var store = new BinarySearchStore(path);
            int n = store.NShards, a = store.AttributeNames.Count;
            Assert.Equal(2 + n + a * (1 + n), summary.ObjectHeaders);
            Assert.Equal(n * (1 + a), summary.Datasets);
            Assert.Equal(1, summary.GlobalHeaps);
            Assert.True(store.IdArray.Length >= n);
        }
    }

    [SkippableFact]
    public void The_h5py_fixture_passes_with_all_its_objects_visited()
    {
        string path = Shared.PyFixture("binary_search_store.h5");
        var summary = Hdf5Precheck.Check(path, Limits);
        // Root, ids and three attribute groups, each with three shards.
        Assert.Equal(2 + 3 + 3 * 4, summary.ObjectHeaders);
        Assert.Equal(12, summary.Datasets);
        Assert.Equal(1, summary.GlobalHeaps);
    }

    private const string LayoutsScript = """
import sys, h5py, numpy as np
out = sys.argv[1]
def store(name, nshards=3, nattr=3, libver='latest', n=50, mode=None, **kw):
    f = h5py.File(out + '/' + name, 'w', libver=libver)
    def put(path, data):
        extra = dict(kw)
        if mode == 'unlimited': extra.update(maxshape=(None,) * data.ndim, chunks=True)
        if mode == 'small': extra.update(chunks=(4,) + data.shape[1:])
        f.create_dataset(path, data=data, **extra)
    ids = np.arange(n, dtype=np.uint64) * 7 + 1
    parts = np.array_split(ids, nshards)
    for i, p in enumerate(parts): put(f'ids/{i}', p)
    for a in range(nattr):
        g = f.create_group(f'a{a}')
        arr = np.arange(n * 2, dtype=np.float32).reshape(n, 2)
        g.attrs['shape'] = np.array(arr.shape, dtype=np.int64)
        g.attrs['dtype'] = arr.dtype.str
        for i, p in enumerate(np.array_split(arr, nshards)): put(f'a{a}/{i}', p)
    f.attrs['bucket_ranges'] = np.array([[p[0], p[-1]] for p in parts], dtype=np.uint64)
    f.close()
store('latest.h5')
store('dense.h5', nshards=12, nattr=10)
store('earliest.h5', libver='earliest', nshards=12, nattr=10)
store('gzip.h5', compression='gzip', chunks=True, nshards=2)
store('gzip_earliest.h5', libver='earliest', compression='gzip', chunks=True, nshards=2)
store('chunks.h5', mode='unlimited', nshards=2, n=400, nattr=1)
store('fixed_chunks.h5', mode='small', nshards=2, n=400, nattr=2)
store('small_chunks_earliest.h5', libver='earliest', mode='small', nshards=2, n=400, nattr=1)
""";

    [SkippableTheory]
    [InlineData("latest.h5", 3, 3, false, false)]
    [InlineData("dense.h5", 12, 10, true, false)]
    [InlineData("earliest.h5", 12, 10, false, true)]
    [InlineData("gzip.h5", 2, 3, false, false)]
    [InlineData("gzip_earliest.h5", 2, 3, false, true)]
    [InlineData("chunks.h5", 2, 1, false, false)]
    [InlineData("fixed_chunks.h5", 2, 2, false, false)]
    [InlineData("small_chunks_earliest.h5", 2, 1, false, true)]
    public void Stores_h5py_writes_pass_in_every_group_and_chunk_layout(string name, int shards, int attrs, bool dense, bool oldStyle)
    {
        Py.Require("h5py", "numpy");
        using var dir = new TempDir();
        Py.RunChecked(LayoutsScript, [dir.Path]);
        string path = dir.File(name);
        var summary = Hdf5Precheck.Check(path, Limits);
        Assert.Equal(2 + shards + attrs * (1 + shards), summary.ObjectHeaders);
        Assert.Equal(shards * (1 + attrs), summary.Datasets);
        if (dense) Assert.True(summary.FractalHeaps >= 2, $"{summary}");
        if (oldStyle) Assert.Equal(2 + attrs, summary.LocalHeaps);
        using var store = new BinarySearchStore(path);
        var ids = store.IdArray;
        Assert.Equal(Enumerable.Range(0, ids.Length).Select(i => (ulong)i * 7 + 1), ids);
        var v = store.GetAttributes([ids[^1]], "a0");
        Assert.Equal([1L, 2L], v.ShapeArray);
    }

    private const string LargeScript = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'w', libver='latest')
for i in range(3000): f.create_dataset(f'ids/{i}', data=np.array([2 * i + 1, 2 * i + 2], dtype=np.uint64))
f.attrs['bucket_ranges'] = np.array([[2 * i + 1, 2 * i + 2] for i in range(3000)], dtype=np.uint64)
for i in range(30): f.attrs[f'x{i}'] = np.arange(i + 1)
f.attrs['big'] = np.zeros(20000)
f.attrs['text'] = 'hello'
f.close()
""";

    /// <summary>3000 shards put the links of /ids in a fractal heap with an indirect root block and a B-tree with internal nodes;
    /// 33 root attributes (one of 160 KB) are stored densely too. Every object is still visited.</summary>
    [SkippableFact]
    public void A_group_of_3000_links_and_dense_attributes_are_walked_whole()
    {
        Py.Require("h5py", "numpy");
        using var dir = new TempDir();
        string path = dir.File("large.h5");
        Py.RunChecked(LargeScript, [path]);
        var summary = Hdf5Precheck.Check(path, Limits);
        Assert.Equal(3002, summary.ObjectHeaders);
        Assert.Equal(3000, summary.Datasets);
        Assert.Equal(2, summary.FractalHeaps);
        using var store = new BinarySearchStore(path, new BinarySearchStoreOptions { Limits = Limits });
        Assert.Equal(3000, store.NShards);
        Assert.True(store.Contains(5999) && store.Contains(6000) && !store.Contains(6001));
    }

    private static string Write(TempDir dir, string name, byte[] data)
    {
        string path = dir.File(name);
        File.WriteAllBytes(path, data);
        return path;
    }

    private static InvalidDataException Refused(string path)
    {
        var e = Assert.Throws<InvalidDataException>(() => Hdf5Precheck.Check(path, Limits));
        Assert.Contains(path, e.Message);
        Assert.Contains(" at offset ", e.Message);
        return e;
    }

    [Fact]
    public void Damaged_sizes_are_refused_naming_the_structure_and_its_offset()
    {
        using var dir = new TempDir();
        var data = Hdf5Target.OwnStores(dir.Path, 1).Single();
        var map = Hdf5Map.TryParse(data)!;
        Assert.NotNull(map);

        var gcol = (byte[])data.Clone();
        var g = map.GlobalHeaps.Single();
        BinaryPrimitives.WriteUInt64LittleEndian(gcol.AsSpan(g.At + 8), 0x7ff0_0000);
        var e = Refused(Write(dir, "gcol.h5", gcol));
        Assert.Contains($"global heap collection at offset {g.At}", e.Message);
        Assert.Contains("runs past the end", e.Message);

        var obj = (byte[])data.Clone();
        var o = g.Objects[0];
        BinaryPrimitives.WriteUInt64LittleEndian(obj.AsSpan(o.At + 8), 0x7ff0_0000);
        e = Refused(Write(dir, "gobj.h5", obj));
        Assert.Contains($"global heap collection at offset {o.At}", e.Message);
        Assert.Contains($"object {o.Index} declares 2146435072 bytes", e.Message);

        var dims = (byte[])data.Clone();
        var ds = map.Datasets.First(x => x.Name == "/ids/0");
        BinaryPrimitives.WriteUInt64LittleEndian(dims.AsSpan(ds.Space.DataAt + 4), 1UL << 33);
        Hdf5Map.Fix(dims, ds.Space.Chunk);
        e = Refused(Write(dir, "dims.h5", dims));
        Assert.Contains("object header of /ids/0", e.Message);
        Assert.Contains("ReadLimits.MaxArrayBytes", e.Message);

        var chunk = (byte[])data.Clone();
        var header = map.Blocks.First(b => b.Owner == "/ids/0");
        BinaryPrimitives.WriteUInt64LittleEndian(chunk.AsSpan(header.Start + 6), 0x7ff0_0000);
        e = Refused(Write(dir, "chunk.h5", chunk));
        Assert.Contains($"object header of /ids/0 at offset {header.Start}", e.Message);

        var sum = (byte[])data.Clone();
        sum[header.Start + 20] ^= 1;
        e = Refused(Write(dir, "sum.h5", sum));
        Assert.Contains("checksum mismatch", e.Message);

        var cut = data.AsSpan(0, map.Boundaries.Max).ToArray();
        e = Refused(Write(dir, "cut.h5", cut));
        Assert.Contains("superblock at offset 0", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    private const string OldStyleScript = """
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], 'w', libver='earliest')
f.create_dataset('ids/0', data=np.array([1, 2, 3], dtype=np.uint64))
g = f.create_group('a'); g.attrs['dtype'] = '<i8'; g.attrs['shape'] = np.array([3], dtype=np.int64)
g.create_dataset('0', data=np.arange(3))
f.attrs['bucket_ranges'] = np.array([[1, 3]], dtype=np.uint64)
f.close()
""";

    [SkippableFact]
    public void A_local_heap_or_B_tree_size_beyond_the_file_is_refused()
    {
        Py.Require("h5py", "numpy");
        using var dir = new TempDir();
        string path = dir.File("old.h5");
        Py.RunChecked(OldStyleScript, [path]);
        Assert.Equal(3, Hdf5Precheck.Check(path, Limits).LocalHeaps);
        var data = File.ReadAllBytes(path);
        int heap = data.AsSpan().IndexOf("HEAP"u8);
        var bad = (byte[])data.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bad.AsSpan(heap + 8), 0x7ff0_0000);
        var e = Refused(Write(dir, "heap.h5", bad));
        Assert.Contains("local heap of /", e.Message);
        var tree = (byte[])data.Clone();
        int node = data.AsSpan().IndexOf("TREE"u8);
        BinaryPrimitives.WriteUInt16LittleEndian(tree.AsSpan(node + 6), 0xffff);
        e = Refused(Write(dir, "tree.h5", tree));
        Assert.Contains("B-tree node", e.Message);
    }

    [SkippableFact]
    public void A_dense_group_with_a_damaged_B_tree_or_fractal_heap_is_refused()
    {
        Py.Require("h5py", "numpy");
        using var dir = new TempDir();
        Py.RunChecked(LayoutsScript, [dir.Path]);
        var data = File.ReadAllBytes(dir.File("dense.h5"));
        int bthd = data.AsSpan().IndexOf("BTHD"u8);
        var bad = (byte[])data.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(bthd + 6), 0x7ff0_0000); // node size
        int len = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + 8 + 2 + 8;
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(bthd + len), Hdf5Precheck.Lookup3(bad.AsSpan(bthd, len)));
        var e = Refused(Write(dir, "btree.h5", bad));
        Assert.Contains($"B-tree header of link name index of", e.Message);
        Assert.Contains("node size 2146435072", e.Message);
        int frhp = data.AsSpan().IndexOf("FRHP"u8);
        var heap = (byte[])data.Clone();
        heap[frhp + 20] ^= 0x10;
        e = Refused(Write(dir, "heap.h5", heap));
        Assert.Contains("fractal heap header", e.Message);
    }

    /// <summary>Every flaw the harness plants, in every valid base it plants in, is refused by the store with a message naming the file.</summary>
    [SkippableFact]
    public void Every_planted_flaw_is_refused_by_the_store()
    {
        using var dir = new TempDir();
        var target = new Hdf5Target();
        target.Setup(Shared.Dir, dir.Path);
        Assert.True(target.Bases.Count >= 10, $"only {target.Bases.Count} bases were mapped");
        var planted = new Dictionary<string, int>();
        for (int kind = 0; kind < Hdf5Flaws.Kinds.Length; kind++)
        {
            for (int b = 0; b < target.Bases.Count; b++)
            {
                for (int seed = 0; seed < 3; seed++)
                {
                    var (data, map) = target.Bases[b];
                    var input = Hdf5Flaws.Plant(data, map, new Random(kind * 1000 + b * 10 + seed), kind);
                    if (input is null) continue;
                    Assert.NotNull(input.MustRefuse);
                    var e = Assert.ThrowsAny<Exception>(() => target.Run(input.Data));
                    Assert.True(target.Disallowed(e) is null, $"{input.MustRefuse} (base {b}): {target.Disallowed(e)}: {e}");
                    planted[Hdf5Flaws.Kinds[kind]] = planted.GetValueOrDefault(Hdf5Flaws.Kinds[kind]) + 1;
                }
            }
        }
        // Every kind found a structure to damage (contiguous data only exists in the larger bases).
        foreach (var kind in Hdf5Flaws.Kinds)
            Assert.True(planted.GetValueOrDefault(kind) >= 6, $"{kind} was planted only {planted.GetValueOrDefault(kind)} times");
        Assert.True(planted.Values.Sum() >= Hdf5Flaws.Kinds.Length * target.Bases.Count, $"{planted.Values.Sum()} flaws planted in all");
    }

    [Fact]
    public void Valid_bases_themselves_are_accepted()
    {
        using var dir = new TempDir();
        foreach (var data in Hdf5Target.OwnStores(dir.Path, 4))
        {
            Assert.NotNull(Hdf5Map.TryParse(data));
            string path = Write(dir, "valid.h5", data);
            using var store = new BinarySearchStore(path, new BinarySearchStoreOptions { Limits = Limits });
            foreach (var name in store.AttributeNames)
            {
                var values = store.GetAttributes(store.IdArray, name);
                Assert.Equal(store.IdArray.Length, values.ShapeArray[0]);
            }
        }
    }
}
