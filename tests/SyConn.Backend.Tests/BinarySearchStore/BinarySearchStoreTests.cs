using SyConn.Backend.Arrays;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.BinarySearchStores;

/// <summary>Building, querying and the refusals of <see cref="BinarySearchStore"/>.</summary>
public class BinarySearchStoreTests
{
    internal static ulong[] UniqueIds(Random rng, int n, ulong max = 100_000_000_000UL)
    {
        var set = new HashSet<ulong>();
        while (set.Count < n) set.Add((ulong)rng.NextInt64() % max);
        var ids = set.ToArray();
        rng.Shuffle(ids);
        return ids;
    }

    private static (ulong[] Ids, Dictionary<string, NdArray> Attrs) Sample(int n, int seed = 1)
    {
        var rng = new Random(seed);
        var ids = UniqueIds(rng, n);
        var u8 = ids.Select(i => i * 3 + 1).ToArray();
        var f4 = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var flags = Enumerable.Range(0, n).Select(_ => rng.Next(2) == 1).ToArray();
        var coords = Enumerable.Range(0, n * 3).Select(_ => rng.Next(-100000, 100000)).ToArray();
        return (ids, new Dictionary<string, NdArray>
        {
            ["ssv"] = NdArray.Create(u8),
            ["prob"] = NdArray.Create(f4),
            ["flag"] = NdArray.Create(flags),
            ["coords"] = NdArray.Create(coords, n, 3),
        });
    }

    /// <summary>The expected rows for a query, computed by a linear lookup in the unsorted input.</summary>
    private static byte[] Expected(ulong[] ids, NdArray attr, ReadOnlySpan<ulong> query)
    {
        var pos = new Dictionary<ulong, int>();
        for (int i = 0; i < ids.Length; i++) pos[ids[i]] = i;
        int rb = (int)(attr.NBytes / ids.Length);
        var src = attr.ToNativeC().Data.Span;
        var dst = new byte[query.Length * rb];
        for (int q = 0; q < query.Length; q++) src.Slice(pos[query[q]] * rb, rb).CopyTo(dst.AsSpan(q * rb));
        return dst;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 5)]
    [InlineData(1000, 5)]
    [InlineData(1001, 3)]
    [InlineData(5000, 7)]
    public void Build_then_query_returns_rows_in_query_order(int n, int shards)
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(n, n);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, shards);
        Assert.Equal(shards, store.NShards);
        Assert.Equal(ids.Order().ToArray(), store.IdArray);
        Assert.Equal(attrs.Keys.Order(), store.AttributeNames.Order());

        var rng = new Random(n);
        var query = Enumerable.Range(0, 3 * n).Select(_ => ids[rng.Next(n)]).ToArray(); // duplicates included
        foreach (var (key, arr) in attrs)
        {
            var got = store.GetAttributes(query, key);
            Assert.Equal(arr.DType.Str, got.DType.Str);
            Assert.Equal(new long[] { query.Length }.Concat(arr.ShapeArray.Skip(1)), got.ShapeArray);
            Assert.Equal(Expected(ids, arr, query), got.Data.ToArray());
        }
    }

    [Fact]
    public void Shards_follow_numpy_array_split_and_bucket_ranges_hold_first_and_last_ids()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(17);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 5);
        var sorted = ids.Order().ToArray();
        int[] sizes = [4, 4, 3, 3, 3];
        int at = 0;
        for (int s = 0; s < 5; s++)
        {
            var shard = store.ReadShard("ids", s).ToArray<ulong>();
            Assert.Equal(sorted.AsSpan(at, sizes[s]).ToArray(), shard);
            Assert.Equal((sorted[at], sorted[at + sizes[s] - 1]), store.BucketRanges[s]);
            Assert.Equal(new long[] { sizes[s], 3 }, store.ReadShard("coords", s).ShapeArray);
            at += sizes[s];
        }
    }

    [Fact]
    public void Default_shard_count_is_five()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(20);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs);
        Assert.Equal(5, store.NShards);
    }

    [Fact]
    public void Missing_ids_raise_and_name_them_and_TryGet_gives_the_mask()
    {
        using var tmp = new TempDir();
        var ids = new ulong[] { 10, 20, 30, 40, 50, 60 };
        var vals = new long[] { 1, 2, 3, 4, 5, 6 };
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, new Dictionary<string, NdArray> { ["v"] = NdArray.Create(vals) }, 2);
        // 35 lies inside shard 1's range (upstream would return a neighbour), 5 and 99 lie outside all ranges,
        // 31 between shards 0 [10,30] and 1 [40,60].
        ulong[] query = [20, 35, 5, 60, 99, 31];
        var e = Assert.Throws<KeyNotFoundException>(() => store.GetAttributes(query, "v"));
        // The message starts with the file path, whose random folder name may hold digits: look at the numbers
        // after it.
        var afterPath = e.Message[(e.Message.IndexOf("s.h5", StringComparison.Ordinal) + 4)..];
        var numbers = System.Text.RegularExpressions.Regex.Matches(afterPath, "[0-9]+").Select(m => m.Value).ToHashSet();
        foreach (var missing in new[] { "35", "5", "99", "31" }) Assert.Contains(missing, numbers);
        Assert.DoesNotContain("60", numbers);
        Assert.DoesNotContain("20", numbers);

        var got = store.TryGetAttributes(query, "v", out var found);
        Assert.Equal(new[] { true, false, false, true, false, false }, found);
        Assert.Equal(new long[] { 2, 0, 0, 6, 0, 0 }, got.ToArray<long>());
        Assert.True(store.Contains(40));
        Assert.False(store.Contains(41));
        Assert.Throws<KeyNotFoundException>(() => BinarySearchStore.GetAttributesParallel(store, query, "v", 2));
    }

    [Fact]
    public void Missing_attribute_raises_KeyNotFound_naming_it()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(10);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 2);
        var e = Assert.Throws<KeyNotFoundException>(() => store.GetAttributes(ids, "nope"));
        Assert.Contains("'nope'", e.Message);
        Assert.Throws<KeyNotFoundException>(() => store.TryGetAttributes(ids, "nope", out _));
    }

    [Fact]
    public void Build_refuses_duplicates_too_many_shards_bad_lengths_and_existing_files()
    {
        using var tmp = new TempDir();
        var path = tmp.File("s.h5");
        var one = new Dictionary<string, NdArray> { ["v"] = NdArray.Create(new int[] { 1, 2, 3 }) };
        var dup = Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 7, 9, 7 }, one, 1));
        Assert.Contains("7", dup.Message);
        Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 1, 2, 3 }, one, 4));
        Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 1, 2, 3 }, one, 0));
        Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 1, 2 }, one, 1));
        Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 1, 2, 3 },
            new Dictionary<string, NdArray> { ["ids"] = NdArray.Create(new int[] { 1, 2, 3 }) }, 1));
        Assert.Throws<ArgumentException>(() => BinarySearchStore.Create(path, new ulong[] { 1, 2, 3 },
            new Dictionary<string, NdArray> { ["c"] = NdArray.Create(new System.Numerics.Complex[3]) }, 1));
        Assert.False(File.Exists(path));

        BinarySearchStore.Create(path, new ulong[] { 3, 1, 2 }, one, 1).Dispose();
        var before = File.ReadAllBytes(path);
        Assert.Throws<IOException>(() => BinarySearchStore.Create(path, new ulong[] { 5, 6, 4 }, one, 1));
        Assert.Equal(before, File.ReadAllBytes(path));

        using var replaced = BinarySearchStore.Create(path, new ulong[] { 5, 6, 4 }, one, 1, overwrite: true);
        Assert.Equal(new ulong[] { 4, 5, 6 }, replaced.IdArray);
        Assert.Equal(new[] { 3, 1, 2 }, replaced.GetAttributes(new ulong[] { 4, 5, 6 }, "v").ToArray<int>());
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp*"));
    }

    [Fact]
    public void Opening_a_missing_file_raises_FileNotFound_and_a_non_store_raises_InvalidData()
    {
        using var tmp = new TempDir();
        Assert.Throws<FileNotFoundException>(() => new BinarySearchStore(tmp.File("absent.h5")));
        File.WriteAllText(tmp.File("junk.h5"), "not hdf5 at all");
        Assert.Throws<InvalidDataException>(() => new BinarySearchStore(tmp.File("junk.h5")));
    }

    [Fact]
    public void Reopened_store_answers_like_the_built_one_with_any_cache_size()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(3000, 5);
        BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 4).Dispose();
        var rng = new Random(2);
        var query = Enumerable.Range(0, 500).Select(_ => ids[rng.Next(ids.Length)]).ToArray();
        foreach (long cache in new long[] { 0, 30_000, BinarySearchStoreOptions.DefaultCacheBytes })
        {
            using var store = new BinarySearchStore(tmp.File("s.h5"), new BinarySearchStoreOptions { CacheBytes = cache });
            foreach (var (key, arr) in attrs)
                Assert.Equal(Expected(ids, arr, query), store.GetAttributes(query, key).Data.ToArray());
            Assert.True(store.CachedBytes <= cache);
        }
    }

    [Fact]
    public void Big_endian_input_is_stored_with_the_same_values()
    {
        using var tmp = new TempDir();
        var ids = new ulong[] { 5, 1, 3 };
        var native = NdArray.Create(new int[] { 50, 10, 30 });
        var be = native.AsType(DType.Parse(">i4"));
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, new Dictionary<string, NdArray> { ["v"] = be }, 1);
        var got = store.GetAttributes(new ulong[] { 1, 3, 5 }, "v");
        Assert.Equal("<i4", got.DType.Str);
        Assert.Equal(new[] { 10, 30, 50 }, got.ToArray<int>());
    }

    [Fact]
    public void Parallel_helper_and_concurrent_queries_agree_with_serial_queries()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(20000, 9);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 5, options: new BinarySearchStoreOptions { CacheBytes = 200_000 });
        var rng = new Random(4);
        var query = Enumerable.Range(0, 100_000).Select(_ => ids[rng.Next(ids.Length)]).ToArray();
        var serial = store.GetAttributes(query, "coords");
        Assert.Equal(Expected(ids, attrs["coords"], query), serial.Data.ToArray());
        Assert.Equal(serial.Data.ToArray(), BinarySearchStore.GetAttributesParallel(store, query, "coords", 3).Data.ToArray());
        Assert.Equal(serial.Data.ToArray(), BinarySearchStore.GetAttributesParallel(tmp.File("s.h5"), query, "coords").Data.ToArray());

        var results = new byte[4][];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            for (int rep = 0; rep < 3; rep++) results[t] = store.GetAttributes(query, rep % 2 == 0 ? "coords" : "ssv").Data.ToArray();
            results[t] = store.GetAttributes(query, "coords").Data.ToArray();
        });
        foreach (var r in results) Assert.Equal(serial.Data.ToArray(), r);
    }

    [Fact]
    public void Small_queries_on_uncached_shards_read_only_the_needed_rows()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(20000, 21);
        var rng = new Random(8);
        attrs["f8_2x2"] = NdArray.Create(Enumerable.Range(0, 20000 * 4).Select(_ => rng.NextDouble()).ToArray(), 20000, 2, 2);
        BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 2).Dispose();
        var query = Enumerable.Range(0, 30).Select(_ => ids[rng.Next(ids.Length)]).Append(ids[0]).Append(ids[0]).ToArray();
        using var store = new BinarySearchStore(tmp.File("s.h5"));
        foreach (var (key, arr) in attrs)
        {
            Assert.Equal(Expected(ids, arr, query), store.GetAttributes(query, key).Data.ToArray());
            Assert.Equal(20000L * 8, store.CachedBytes); // only the two ID shards were loaded
        }
        var withMissing = query.Append(ids.Max() + 1).ToArray();
        store.TryGetAttributes(withMissing, "coords", out var found);
        Assert.Equal(query.Length, found.Count(f => f));
        Assert.False(found[^1]);
    }

    [Fact]
    public void Empty_query_gives_an_empty_array_with_the_trailing_shape()
    {
        using var tmp = new TempDir();
        var (ids, attrs) = Sample(10);
        using var store = BinarySearchStore.Create(tmp.File("s.h5"), ids, attrs, 2);
        var got = store.GetAttributes(ReadOnlySpan<ulong>.Empty, "coords");
        Assert.Equal(new long[] { 0, 3 }, got.ShapeArray);
        Assert.Equal("<i4", got.DType.Str);
    }
}
