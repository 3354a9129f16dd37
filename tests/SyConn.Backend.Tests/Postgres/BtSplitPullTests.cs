using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// Pulls of big stores on two connections sharing one exported snapshot, and pushes whose entries are pickled while
/// the COPY streams: same content and order as before, one consistent state, nothing written on a failure.
/// </summary>
public sealed class BtSplitPullTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    /// <summary>Keys 0..n-1 (in a shuffled order, so the store's order is not the key order), each 8 KB of random bytes plus its value.</summary>
    private static List<(long Key, long[] Value)> Data(int n, long value, int seed)
    {
        var rnd = new Random(seed);
        var keys = Enumerable.Range(0, n).Select(i => (long)i).OrderBy(_ => rnd.Next()).ToList();
        return keys.Select(k =>
        {
            var v = new long[1024];
            for (int i = 1; i < v.Length; i++) v[i] = rnd.NextInt64();
            v[0] = value;
            return (k, v);
        }).ToList();
    }

    private static void Write(string id, List<(long Key, long[] Value)> data)
    {
        using var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable));
        foreach (var (k, v) in data) cs[k] = NdArray.Create(v);
        cs.Push();
    }

    [SkippableFact]
    public void Entries_of_every_size_around_the_pull_chunks_come_back_whole_pulled_read_only_locked_and_after_a_push()
    {
        // Sizes that fill a chunk exactly, leave a byte, straddle its end, and go past the size kept in chunks.
        int[] sizes = [1, 7, 8000, BtEntryArena.FirstChunkBytes - 1, BtEntryArena.FirstChunkBytes + 1, BtEntryArena.OwnArrayBytes - 200, BtEntryArena.OwnArrayBytes - 8, BtEntryArena.OwnArrayBytes + 8,
            BtEntryArena.ChunkBytes / 3, BtEntryArena.ChunkBytes / 2, 3 * BtEntryArena.ChunkBytes / 2, 5, 100_000, 200_000, 250_000, 17];
        var rnd = new Random(11);
        var data = new List<(long Key, byte[] Value)>();
        for (int round = 0; round < 3; round++)
            foreach (int n in sizes)
            {
                var v = new byte[n];
                rnd.NextBytes(v); // random bytes do not compress: the entry is as big as the value
                data.Add((data.Count, v));
            }
        string id = _prefix + "sizes";
        using (var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            foreach (var (k, v) in data) cs[k] = NdArray.Create(v);
            cs.Push();
        }
        void Check(CompressedStorage cs)
        {
            Assert.Equal(data.Count, cs.Count);
            foreach (var (k, v) in data) Assert.Equal(v, cs[k].ToArray<byte>());
        }
        using (var ro = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options()))
            Check(ro); // big: in halves, on two connections
        using (var locked = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            Check(locked); // read in the lock's round trip
            locked[0] = NdArray.Create(new byte[] { 9 });
            data[0] = (0, [9]);
            locked.Push();
        }
        using (var again = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Default with { LazyLoad = true })))
            Check(again);
    }

    [SkippableFact]
    public void A_big_store_is_pulled_on_two_connections_with_every_key_in_its_order_and_a_small_one_on_one()
    {
        string big = _prefix + "big", small = _prefix + "small";
        var data = Data(300, 7, 1); // 300 x 8 KB: over the 1 MB that splits a pull
        Write(big, data);
        Write(small, Data(20, 3, 2));
        Assert.True((long)BtTestDatabase.Scalar("SELECT sum(octet_length(entry)) FROM syconn.entries WHERE identifier = $1", big)! >= PostgresEntryStore.SplitPullBytes);

        foreach (var (id, expected, splits) in new[] { (big, data, 1), (small, Data(20, 3, 2), 0) })
        {
            var es = BtTestDatabase.Store(id);
            int imports = 0;
            es.SnapshotToImport = s =>
            {
                imports++;
                return s;
            };
            using var cs = CompressedStorage.Open(es, BtTestDatabase.Options());
            Assert.Equal(splits, imports);
            Assert.Equal(expected.Select(d => (StoreKey)d.Key), cs.Keys);
            foreach (var (k, v) in expected) Assert.Equal(v, cs[k].ToArray<long>());
            Assert.Equal(1L, es.Generation);
        }
    }

    [SkippableFact]
    public void A_split_pull_whose_snapshot_ended_before_the_second_connection_imported_it_is_redone_in_one_statement()
    {
        string id = _prefix + "ended";
        var data = Data(300, 5, 3);
        Write(id, data);
        var es = BtTestDatabase.Store(id);
        string? exported = null;
        // A snapshot the server does not know stands in for one whose exporting transaction has ended.
        es.SnapshotToImport = s =>
        {
            exported = s;
            return "0000FFFF-0000FFFF-1";
        };
        using var cs = CompressedStorage.Open(es, BtTestDatabase.Options());
        Assert.NotNull(exported);
        Assert.Equal(data.Count, cs.Count);
        Assert.Equal(data.Select(d => (StoreKey)d.Key), cs.Keys);
        foreach (var (k, v) in data) Assert.Equal(v, cs[k].ToArray<long>());
    }

    [SkippableFact]
    public void Split_pulls_during_pushes_each_see_one_push_whole()
    {
        string id = _prefix + "consistent";
        const int n = 200;
        Write(id, Data(n, 0, 4));
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            // Every push rewrites every key with the push's number in element 0.
            using var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable with { DisableLocking = true }));
            for (long g = 1; !stop.IsCancellationRequested && g < 400; g++)
            {
                foreach (var key in cs.Keys.ToList())
                {
                    var v = cs[key].ToArray<long>();
                    v[0] = g;
                    cs[key] = NdArray.Create(v);
                }
                cs.Push();
            }
        });
        try
        {
            var seen = new HashSet<long>();
            // At least 15 pulls, and more while the writer has not pushed yet (a loaded machine may start it late).
            for (int pull = 0; pull < 15 || (seen.Count < 2 && !writer.IsCompleted && pull < 5000); pull++)
            {
                using var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options());
                Assert.Equal(n, cs.Count);
                var values = cs.Keys.Select(k => cs[k].ToArray<long>()[0]).Distinct().ToList();
                Assert.True(values.Count == 1, $"pull {pull} saw keys of pushes {string.Join(", ", values)}");
                seen.Add(values[0]);
            }
            Assert.True(seen.Count > 1 || writer.IsCompleted, "the pulls ran while the pushes did");
        }
        finally
        {
            stop.Cancel();
            writer.GetAwaiter().GetResult();
        }
    }

    [SkippableFact]
    public void A_push_through_copy_whose_late_entry_cannot_be_stored_leaves_the_previous_content()
    {
        string id = _prefix + "late";
        var data = Data(150, 1, 5);
        Write(id, data);
        var es = BtTestDatabase.Store(id);
        using var cs = CompressedStorage.Open(es, BtTestDatabase.Options(StoreOptions.Writable));
        es.MaxEntryBytes = 16_000; // stands in for PostgreSQL's 1 GB field limit
        foreach (var (k, v) in data) cs[k] = NdArray.Create(v.Select(x => x + 1).ToArray());
        var rnd = new Random(9);
        var noise = new byte[40_000];
        rnd.NextBytes(noise);
        cs[1000] = NdArray.Create(noise); // the last row of the COPY, after 150 rows have gone out
        var e = Assert.Throws<ArgumentException>(() => cs.Push());
        Assert.Contains("key 1000", e.Message, StringComparison.Ordinal);
        Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        Assert.Equal(150L, BtTestDatabase.Scalar("SELECT count(*) FROM syconn.entries WHERE identifier = $1", id));
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
        using var back = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options());
        foreach (var (k, v) in data) Assert.Equal(v, back[k].ToArray<long>());
    }

    [SkippableFact]
    public void A_locked_push_of_a_few_keys_releases_the_lock_with_its_commit_and_a_conflicting_one_writes_nothing_and_keeps_it()
    {
        string address = "bt:" + _prefix + "onestatement";
        var locked = BtTestDatabase.Options(StoreOptions.Writable);
        var tryOnce = BtTestDatabase.Options(StoreOptions.Writable with { Timeout = 0 });
        using (var first = AttributeDict.Open(address, locked))
        {
            ((PyDict)first[0])["n"] = 1L;
            ((PyDict)first[1])["n"] = 1L;
            first.Push();
            Assert.False(first.HoldsLock);
        }
        using (var next = AttributeDict.Open(address, tryOnce)) // the lock is free right after the commit
        {
            next.Remove(1);
            ((PyDict)next[2])["n"] = 2L;
            next.Push();
        }

        // A locked store meets an unlocked writer's push: conflict, nothing written, and the lock is still held.
        var a = AttributeDict.Open(address, locked);
        Assert.True(a.HoldsLock);
        using (var sneak = AttributeDict.Open(address, BtTestDatabase.Options(StoreOptions.Writable with { DisableLocking = true })))
        {
            ((PyDict)sneak[0])["n"] = 50L;
            sneak.Push();
        }
        ((PyDict)a[0])["n"] = 2L;
        Assert.Throws<StoreConflictException>(() => a.Push());
        Assert.True(a.HoldsLock);
        Assert.Throws<StorageLockTimeoutException>(() => AttributeDict.Open(address, tryOnce));
        a.Dispose();
        using var after = AttributeDict.Open(address, tryOnce);
        Assert.Equal([(StoreKey)0, 2], after.Keys);
        Assert.Equal(50L, ((PyDict)after[0])["n"]);
        Assert.Equal(3L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", address[3..]));
    }
}
