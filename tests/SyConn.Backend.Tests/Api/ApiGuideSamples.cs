// The code samples of docs/api.md. Each region between "// sample: NAME" and "// end sample" is quoted in the
// guide verbatim (ApiGuideTests checks that the two agree) and run by ApiGuideTests against the fixtures.
// Samples use the public API only, as a console application would.
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Tests.Api;

public static class ApiGuideSamples
{
    public static void PrintAttributes(string path, TextWriter output)
    {
        // sample: print-attributes
        using var attrs = AttributeDict.Open(path);            // read-only; a missing file is an error
        foreach (var id in attrs.Keys)
        {
            if (!attrs.TryGet<long>(id, "size", out var size)) continue;
            var rep = attrs.GetArray<long>(id, "rep_coord");     // shape (3,), int64
            bool glia = attrs.Get<bool>(id, "is_glia");          // a numpy bool
            float prob = attrs.Get<float>(id, "prob");           // a numpy float32
            output.WriteLine($"{id}: size {size}, rep_coord {rep}, glia {glia}, p {prob}");
        }
        ulong ssv = attrs.Get<ulong>(18446744073709551557UL, "u64"); // uint64 values stay exact
        output.WriteLine($"u64 = {ssv}");
        // end sample
    }

    public static long[] ReadColumns(string path, TextWriter output)
    {
        // sample: read-columns
        using var attrs = AttributeDict.Open(path);
        long[] sizes = attrs.Column<long>("size", missing: -1);  // one value per key, in Keys order
        var ids = attrs.Keys.ToArray();
        int largest = Array.IndexOf(sizes, sizes.Max());
        output.WriteLine($"{sizes.Count(s => s >= 0)} of {ids.Length} objects have a size; the largest is {ids[largest]}");
        // end sample
        return sizes;
    }

    public static ulong[] ReadArray(string path, TextWriter output)
    {
        // sample: read-array
        using var cs = CompressedStorage.Open(path);
        NdArray a = cs[0];                                       // native byte order, C order
        output.WriteLine(a);                                     // dtype, shape and the first values
        ulong[] flat = a.ToArray<ulong>();                       // the dtype is <u8: no conversion
        ulong second = a.GetValue<ulong>(0, 1);                  // row 0, column 1
        double[] asDouble = a.ToArray<double>();                 // uint64 -> float64 is a safe cast
        // a.ToArray<long>() throws InvalidCastException: uint64 -> int64 is not safe; say so explicitly:
        long[] wrapped = a.ToArray<long>(CastingRule.Unsafe);
        output.WriteLine($"{flat.Length} values, [0, 1] = {second}, {asDouble.Length} as double, {wrapped.Length} as long");
        // end sample
        return flat;
    }

    public static Mesh WriteAndReadMesh(string path)
    {
        // sample: write-mesh
        var square = new Mesh(
            indices: NdArray.Create(new uint[] { 0, 1, 2, 0, 2, 3 }, 2, 3),
            vertices: NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0 }, 4, 3));
        using (var meshes = MeshStorage.Open(path, StoreOptions.WritableLocked))
        {
            meshes.SetMesh(42UL, square);                        // stored flat, as SyConn does
            meshes.Push();                                       // atomic, durable, then unlocks
        }
        using var again = MeshStorage.Open(path);
        Mesh back = again.GetMesh(42UL);                         // indices (2, 3), vertices (4, 3)
        // end sample
        return back;
    }

    public static IReadOnlyList<(StoreKey Key, long Rows)> QueryWithLinq(string path)
    {
        // sample: linq
        using var cs = CompressedStorage.Open(path);
        IReadOnlyDictionary<StoreKey, NdArray> arrays = cs;      // every store is a dictionary
        var largest = arrays
            .Where(kv => kv.Key.IsInteger && kv.Value.NDim == 2)
            .Select(kv => (kv.Key, Rows: kv.Value.Shape[0]))
            .OrderByDescending(x => x.Rows)
            .ToList();
        bool known = arrays.ContainsKey("str_key");               // str keys convert implicitly, as ulong, long and tuples do
        // end sample
        return known ? largest : [];
    }

    public static long WriteAttributes(string path)
    {
        // sample: write-attributes
        using (var attrs = AttributeDict.Open(path, StoreOptions.WritableLocked))
        {
            attrs[7UL] = new PyDict
            {
                ["size"] = 1234L,                                    // a Python int
                ["rep_coord"] = NdArray.Create(new long[] { 10, 20, 30 }),
                ["ssv_id"] = NpScalar.UInt64(18446744073709551615UL), // a numpy uint64, as SyConn stores IDs
                ["kind"] = "sj",
            };
            attrs.Attributes(7UL)["size"] = 1235L;                   // values are live: edit in place
            attrs.Push();
        }
        using var check = AttributeDict.Open(path);
        // end sample
        return check.Get<long>(7UL, "size");
    }

    public static async Task<long> LockAndUpdate(string path, CancellationToken ct)
    {
        // sample: locking
        // Writable + locked: the lock is taken by the pull and held until Push (or Dispose, which drops changes).
        // Python SyConn jobs that lock the same file wait for it, and so do other processes using this library.
        using var attrs = await AttributeDict.OpenAsync(path, StoreOptions.WritableLocked with { Timeout = 60 }, ct);
        long n = attrs.TryGet<long>(1UL, "visits", out var v) ? v : 0;
        attrs.Attributes(1UL)["visits"] = n + 1;                     // Attributes inserts {} for a new key, as upstream
        attrs.Push();
        // end sample
        return n + 1;
    }
}
