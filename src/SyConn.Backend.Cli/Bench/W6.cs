using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// Workload W6 of bench/workloads.md: a <see cref="BinarySearchStore"/> of 10^7 unique uint64 IDs
/// drawn from [0, 1e11) with one uint64 attribute in 5 shards; phases <c>build</c> (durable: file and
/// folder fsynced), <c>build_nosync</c> and <c>get_attributes_N</c> for N random existing IDs (N = 1,000 ... 1,000,000) plus a parallel
/// variant for 1,000,000.
/// </summary>
/// <remarks>Thread-safety: one run at a time per output folder (the store file is reused).</remarks>
public static class W6
{
    private const int Seed = 6;
    private const string Key = "attr";
    private static readonly int[] QuerySizes = [1_000, 10_000, 100_000, 1_000_000];

    /// <summary>
    /// Runs W6: one untimed warm-up iteration, then <paramref name="reps"/> timed ones. Every query
    /// phase opens the store anew (empty shard cache), so shard reads are part of the time, as they are
    /// for h5py. The store file is written to <paramref name="outDir"/> and deleted at the end.
    /// </summary>
    /// <param name="scale">Multiplies the number of IDs and the query sizes (each at least 1).</param>
    /// <param name="reps">Timed iterations (at least 1).</param>
    /// <param name="outDir">Folder for the store file (created if missing).</param>
    /// <returns>The workload's JSON line.</returns>
    public static JsonObject RunW6(double scale, int reps, string outDir)
    {
        if (!(scale > 0)) throw new ArgumentException("scale must be positive", nameof(scale));
        if (reps < 1) throw new ArgumentException("reps must be at least 1", nameof(reps));
        Directory.CreateDirectory(outDir);
        var path = Path.Combine(outDir, "w6_binary_search_store.h5");
        int n = BenchMath.Scaled(10_000_000, scale);
        var rng = new Random(Seed);
        var ids = UniqueIds(rng, n, 100_000_000_000UL);
        var attr = new ulong[n];
        for (int i = 0; i < n; i++) attr[i] = (ulong)rng.NextInt64();
        var attrs = new Dictionary<string, NdArray> { [Key] = NdArray.Wrap(attr) };
        var queries = QuerySizes.Select(q =>
        {
            var a = new ulong[BenchMath.Scaled(q, scale)];
            for (int i = 0; i < a.Length; i++) a[i] = ids[rng.Next(n)];
            return a;
        }).ToArray();

        var timings = new PhaseTimings();
        long buildAllocated = 0;
        ulong checksum = 0;

        for (int it = 0; it <= reps; it++)
        {
            // The first iteration is the untimed warm-up.
            var rec = it > 0 ? timings : new PhaseTimings();
            GC.Collect();
            long alloc0 = GC.GetTotalAllocatedBytes(true);
            rec.Add("build", BenchMath.Time(() => BinarySearchStore.Create(path, ids, attrs, 5, overwrite: true).Dispose()));
            buildAllocated = GC.GetTotalAllocatedBytes(true) - alloc0;
            GC.Collect();
            rec.Add("build_nosync", BenchMath.Time(() => BinarySearchStore.Create(path, ids, attrs, 5, overwrite: true, durable: false).Dispose()));

            for (int qi = 0; qi < QuerySizes.Length; qi++)
            {
                GC.Collect();
                rec.Add($"get_attributes_{QuerySizes[qi]}", BenchMath.Time(() =>
                {
                    using var store = new BinarySearchStore(path);
                    checksum += store.GetAttributes(queries[qi], Key).AsSpan<ulong>()[^1];
                }));
            }
            GC.Collect();
            rec.Add($"get_attributes_{QuerySizes[^1]}_parallel", BenchMath.Time(() =>
            {
                using var store = new BinarySearchStore(path);
                checksum += BinarySearchStore.GetAttributesParallel(store, queries[^1], Key).AsSpan<ulong>()[^1];
            }));
        }
        long fileBytes = new FileInfo(path).Length;
        // Building maps to writing the file; a query reads only the shards and chunks it needs, so it has no
        // file floor (its floor_map entry is null).
        var floors = new Floors(reps).File(path);
        floors.Map("build", "write_fsync").Map("build_nosync", "write_nosync");
        foreach (var name in timings.Names) if (name.StartsWith("get_attributes_", StringComparison.Ordinal)) floors.Map(name);
        File.Delete(path);

        var parameters = new JsonObject
        {
            ["n_ids"] = n,
            ["id_range"] = "[0, 1e11)",
            ["n_shards"] = 5,
            ["attribute"] = "one uint64 attribute",
            ["query_sizes"] = new JsonArray(queries.Select(q => (JsonNode)JsonValue.Create(q.Length)).ToArray()),
            ["queries"] = "random existing IDs, drawn with replacement",
            ["query_phase"] = "opens the store (empty shard cache) and answers one get_attributes batch",
            ["seed"] = Seed,
            ["checksum"] = checksum.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        var sizes = new JsonObject
        {
            ["raw_bytes"] = 16L * n,
            ["file_bytes"] = fileBytes,
            ["build_allocated_bytes"] = buildAllocated,
        };
        return BenchMath.Line("w6", scale, reps, parameters, timings, sizes, floors.ToJson(timings));
    }


    /// <summary><paramref name="n"/> unique values below <paramref name="max"/> in random order.</summary>
    private static ulong[] UniqueIds(Random rng, int n, ulong max)
    {
        var buf = new ulong[n];
        int have = 0;
        while (have < n)
        {
            for (int i = have; i < n; i++) buf[i] = (ulong)rng.NextInt64((long)max);
            Array.Sort(buf);
            have = 0;
            for (int i = 0; i < n; i++)
                if (have == 0 || buf[i] != buf[have - 1]) buf[have++] = buf[i];
        }
        rng.Shuffle(buf);
        return buf;
    }
}
