using System.Diagnostics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// BinarySearchStore files (HDF5 through PureHDF): mutations of the fixture, of stores written here and of hostile stores
/// written with h5py when it is installed (a dataset declaring 2^40 rows that were never allocated, shapes and dtypes that
/// do not match, unsorted ids); and structure-aware inputs: a valid store (ours or the h5py fixture) with one flaw planted
/// at a known structure offset (<see cref="Hdf5Flaws"/>), checksums made right again, which must be refused. Each input is
/// opened and queried: every attribute for the ids at the shard boundaries and a few others, the id array, membership.
/// </summary>
internal sealed class Hdf5Target : FuzzTarget
{
    private string _file = "";
    private string _scratch = "";
    private readonly List<(byte[] Data, Hdf5Map Map)> _bases = [];

    /// <summary>The valid stores flaws are planted in (mapped), after <see cref="Setup"/>.</summary>
    internal IReadOnlyList<(byte[] Data, Hdf5Map Map)> Bases => _bases;

    public override string Name => "hdf5";

    public override string InputName => _file;

    public override void Setup(string shared, string scratch)
    {
        _scratch = scratch;
        _file = Path.Combine(scratch, "fuzz-input.h5");
        base.Setup(shared, scratch);
    }

    /// <summary>Valid stores of our writer, drawn from a fixed seed: compact and contiguous shards, 1 to 12 shards, the supported dtypes with trailing dimensions.</summary>
    internal static IEnumerable<byte[]> OwnStores(string scratch, int count)
    {
        var rng = new Random(11);
        DType[] types = [DType.Bool, DType.Int8, DType.UInt8, DType.Int16, DType.UInt16, DType.Int32, DType.UInt32, DType.Int64, DType.UInt64, DType.Float32, DType.Float64];
        for (int k = 0; k < count; k++)
        {
            int n = k % 3 == 0 ? 2000 + rng.Next(3000) : 1 + rng.Next(60);
            var set = new HashSet<ulong>();
            while (set.Count < n) set.Add(rng.Next(4) == 0 ? (ulong)rng.NextInt64() << 1 : (ulong)rng.Next(100_000));
            var ids = set.ToArray();
            var attrs = new Dictionary<string, NdArray>();
            int na = 1 + rng.Next(3);
            for (int a = 0; a < na; a++)
            {
                var dt = types[rng.Next(types.Length)];
                long[] shape = rng.Next(3) switch { 0 => [n], 1 => [n, 1 + rng.Next(4)], _ => [n, 2, 1 + rng.Next(3)] };
                var arr = NdArray.Zeros(dt, shape);
                var bytes = arr.Data.Span;
                for (int i = 0; i < bytes.Length; i++) bytes[i] = dt.Kind == 'b' ? (byte)rng.Next(2) : (byte)rng.Next(256);
                attrs["attr" + a] = arr;
            }
            string path = Path.Combine(scratch, $"own-{k}.h5");
            BinarySearchStore.Create(path, ids, attrs, nShards: 1 + rng.Next(Math.Min(n, 12)), overwrite: true, durable: false).Dispose();
            yield return File.ReadAllBytes(path);
        }
    }

    protected override IEnumerable<byte[]> LoadSeeds(string shared)
    {
        yield return File.ReadAllBytes(Path.Combine(shared, "fixtures", "py", "binary_search_store.h5"));
        string own = Path.Combine(_scratch, "own.h5");
        var ids = new ulong[] { 5, 1, 9, 1UL << 63, 40, 2, 77 };
        var attrs = new Dictionary<string, NdArray>
        {
            ["v"] = NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6, 7 }, 7),
            ["c"] = NdArray.Create(new int[21], 7, 3),
            ["f"] = NdArray.Create(new bool[] { true, false, true, true, false, false, true }, 7),
        };
        BinarySearchStore.Create(own, ids, attrs, nShards: 3, overwrite: true, durable: false).Dispose();
        var valid = new List<byte[]> { File.ReadAllBytes(Path.Combine(shared, "fixtures", "py", "binary_search_store.h5")), File.ReadAllBytes(own) };
        valid.AddRange(OwnStores(_scratch, 9));
        foreach (var v in valid)
        {
            if (Hdf5Map.TryParse(v) is { } map) _bases.Add((v, map));
        }
        foreach (var v in valid.Skip(1)) yield return v;
        foreach (var hostile in H5pyHostile()) yield return hostile;
    }

    private const string HostileScript = """
import sys, h5py, numpy as np
out = sys.argv[1]
def base(name):
    f = h5py.File(out + '/' + name, 'w', libver='latest')
    f.attrs['bucket_ranges'] = np.array([[1, 3], [4, 6]], dtype=np.uint64)
    f.create_dataset('ids/0', data=np.array([1, 2, 3], dtype=np.uint64))
    f.create_dataset('ids/1', data=np.array([4, 5, 6], dtype=np.uint64))
    g = f.create_group('a')
    g.attrs['dtype'] = '<i8'
    g.attrs['shape'] = np.array([6], dtype=np.int64)
    return f, g
f, g = base('huge_rows.h5'); g.create_dataset('0', shape=(2**40,), dtype='<i8'); g.create_dataset('1', data=np.arange(3)); f.close()
f, g = base('huge_trailing.h5'); g.attrs['shape'] = np.array([6, 2**31, 2**31], dtype=np.int64); g.create_dataset('0', shape=(3, 2**31, 2**31), dtype='<i8'); f.close()
f, g = base('bad_dtype.h5'); g.attrs['dtype'] = '<U4'; g.create_dataset('0', data=np.arange(3)); g.create_dataset('1', data=np.arange(3)); f.close()
f, g = base('negative_shape.h5'); g.attrs['shape'] = np.array([-1], dtype=np.int64); f.close()
f, g = base('unsorted.h5'); del f['ids/1']; f.create_dataset('ids/1', data=np.array([6, 5, 4], dtype=np.uint64)); g.create_dataset('0', data=np.arange(3)); g.create_dataset('1', data=np.arange(3)); f.close()
f, g = base('huge_buckets.h5'); f.attrs['bucket_ranges'] = np.zeros((3, 3), dtype=np.uint64); f.close()
f, g = base('shape_attr_matrix.h5'); g.attrs['shape'] = np.zeros((2, 2), dtype=np.int64); f.close()
f, g = base('dtype_number.h5'); g.attrs['dtype'] = 5; f.close()
""";

    /// <summary>Hostile stores from h5py (none when python3 with h5py is missing; the fixture and our own store still run).</summary>
    private IEnumerable<byte[]> H5pyHostile()
    {
        string dir = Path.Combine(_scratch, "hostile");
        Directory.CreateDirectory(dir);
        try
        {
            var psi = new ProcessStartInfo(Infrastructure.Python.Interpreter) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add(HostileScript);
            psi.ArgumentList.Add(dir);
            using var p = Process.Start(psi)!;
            p.StandardError.ReadToEnd();
            p.WaitForExit(60_000);
        }
        catch (System.ComponentModel.Win32Exception)
        {
        }
        return Directory.GetFiles(dir, "*.h5").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
    }

    protected override ReadOnlySpan<byte> Interesting => [0x00, 0xff, 0x01, 0x08, 0x10, 0x80, 0x7f, 0xfe];

    /// <summary>Hostile contents: mostly a valid store with one planted flaw that must be refused; otherwise a seed with a run of
    /// bytes overwritten by large values (sizes, offsets, dimensions).</summary>
    protected override FuzzInput Structured(Random rng)
    {
        if (_bases.Count > 0 && rng.Next(4) != 0)
        {
            var (data, map) = _bases[rng.Next(_bases.Count)];
            if (Hdf5Flaws.Plant(data, map, rng, rng.Next(Hdf5Flaws.Kinds.Length)) is { } planted) return planted;
        }
        var d = (byte[])Seeds[rng.Next(Seeds.Count)].Clone();
        int at = rng.Next(d.Length);
        int len = Math.Min(d.Length - at, 1 + rng.Next(16));
        byte fill = new byte[] { 0xff, 0x7f, 0x00, 0x40 }[rng.Next(4)];
        d.AsSpan(at, len).Fill(fill);
        return new FuzzInput(d);
    }

    public override bool Run(byte[] data)
    {
        File.WriteAllBytes(_file, data);
        using var store = new BinarySearchStore(_file, new BinarySearchStoreOptions { CacheBytes = 1 << 20 });
        var ranges = store.BucketRanges;
        var query = ranges.SelectMany(r => new[] { r.First, r.Last, r.First + 1 }).Append(0UL).Append(ulong.MaxValue).ToArray();
        foreach (var name in store.AttributeNames)
        {
            var a = store.TryGetAttributes(query, name, out var found);
            Assert.Equal(query.Length, found.Length);
            Assert.Equal(query.Length, a.ShapeArray[0]);
        }
        var all = store.IdArray;
        foreach (var id in query) store.Contains(id);
        return all.Length >= 0;
    }
}
