using Npgsql;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Storage;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>The partitioned layout: stores spread over shards, a stopped shard, a partition moved under load.</summary>
public sealed class BtPartitionedTests(ITestOutputHelper output)
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    private static StoreOptions Options(string coordinator, StoreOptions? o = null) => (o ?? StoreOptions.Default) with { ConnectionString = coordinator };

    private static void Put(string coordinator, string identifier, long value)
    {
        using var ad = AttributeDict.Open("bt:" + identifier, Options(coordinator, StoreOptions.Writable));
        ((PyDict)ad[0])["n"] = value;
        ad.Push();
    }

    private static long Get(string coordinator, string identifier)
    {
        using var ad = AttributeDict.Open("bt:" + identifier, Options(coordinator));
        return ad.TryGetValue(0, out var d) ? (long)((PyDict)d)["n"] : -1;
    }

    /// <summary>Entry rows of stores under <paramref name="prefix"/> on one shard database, over all its partitions.</summary>
    private static long RowsOnShard(string shard, string prefix)
    {
        var tables = BtTestDatabase.RowsOn(shard, "SELECT relname FROM pg_class WHERE relname LIKE 'entries_p%' AND relkind = 'r'");
        return tables.Sum(t => (long)BtTestDatabase.ScalarOn(shard, $"SELECT count(*) FROM syconn.{(string)t[0]!} WHERE starts_with(identifier, $1)", prefix)!);
    }

    private static IReadOnlyList<string> Shards(string coordinator)
    {
        using var c = new NpgsqlConnection(coordinator);
        c.Open();
        return BtPartitionMap.Read(c, coordinator, "test").Shards.Values.Distinct().ToList();
    }

    private static bool SameDatabase(string a, string b)
    {
        var x = new NpgsqlConnectionStringBuilder(a);
        var y = new NpgsqlConnectionStringBuilder(b);
        return x.Host == y.Host && x.Port == y.Port && x.Database == y.Database;
    }

    private static int PartitionOf(string coordinator, string identifier) =>
        (int)BtTestDatabase.ScalarOn(coordinator,
            "SELECT r FROM generate_series(0, 15) r WHERE satisfies_hash_partition('syconn.entries'::regclass, 16, r, $1::text)", identifier)!;

    [SkippableFact]
    public void Stores_land_on_both_shards_where_the_map_says_and_the_coordinator_sees_them_all()
    {
        string coord = BtTestDatabase.PartitionedConnectionString;
        for (int i = 0; i < 40; i++) Put(coord, $"{_prefix}s{i}", i);
        var shards = Shards(coord);
        Assert.Equal(2, shards.Count);
        var perShard = shards.Select(s => RowsOnShard(s, _prefix)).ToList();
        output.WriteLine($"entry rows per shard: {string.Join(", ", perShard)}");
        Assert.All(perShard, n => Assert.True(n > 0, "a shard holds none of the 40 stores"));
        Assert.Equal(40, perShard.Sum());
        // Each store's rows are in the partition PostgreSQL's own hash puts the identifier in, on that partition's shard.
        using (var c = new NpgsqlConnection(coord))
        {
            c.Open();
            var map = BtPartitionMap.Read(c, coord, "test");
            for (int i = 0; i < 40; i++)
            {
                string id = $"{_prefix}s{i}";
                int p = PartitionOf(coord, id);
                Assert.Equal(1L, BtTestDatabase.ScalarOn(map.Shards[p], $"SELECT count(*) FROM syconn.entries_p{p} WHERE identifier = $1", id));
                Assert.Equal(1L, BtTestDatabase.ScalarOn(map.Shards[p], $"SELECT generation FROM syconn.stores_p{p} WHERE identifier = $1", id));
                Assert.Equal(i, Get(coord, id));
            }
        }
        // Ad hoc SQL across all stores goes through the coordinator's foreign partitions.
        Assert.Equal(40L, BtTestDatabase.ScalarOn(coord, "SELECT count(*) FROM syconn.entries WHERE starts_with(identifier, $1)", _prefix));
    }

    [SkippableFact]
    public void Stopping_one_shard_fails_only_the_stores_on_it_with_an_error_naming_it()
    {
        var (coordinator, shard0, _) = BtTestDatabase.LayoutServers;
        using var doomed = PgServer.Start("doomed");
        string coord = BtTestDatabase.NewLayout("stop", shard0, doomed);
        var ids = Enumerable.Range(0, 24).Select(i => $"{_prefix}x{i}").ToList();
        foreach (var (id, i) in ids.Select((id, i) => (id, i))) Put(coord, id, i);
        var map = new Dictionary<string, string>();
        using (var c = new NpgsqlConnection(coord))
        {
            c.Open();
            var m = BtPartitionMap.Read(c, coord, "test");
            foreach (var id in ids) map[id] = m.Shards[PartitionOf(coord, id)];
        }
        Assert.Contains(map.Values, s => s.Contains(doomed.SocketDir, StringComparison.Ordinal));
        Assert.Contains(map.Values, s => !s.Contains(doomed.SocketDir, StringComparison.Ordinal));

        doomed.Stop("immediate");
        foreach (var (id, i) in ids.Select((id, i) => (id, i)))
        {
            if (map[id].Contains(doomed.SocketDir, StringComparison.Ordinal))
            {
                var e = Assert.ThrowsAny<IOException>(() => Get(coord, id));
                Assert.Contains(doomed.SocketDir, e.Message, StringComparison.Ordinal);
                Assert.Contains("cannot be reached", e.Message, StringComparison.Ordinal);
                Assert.Contains(id, e.Message, StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(i, Get(coord, id));
                Put(coord, id, i + 100);
                Assert.Equal(i + 100, Get(coord, id));
            }
        }
    }

    [SkippableFact]
    public void Moving_a_partition_under_load_loses_no_increment_and_late_pushes_follow_it()
    {
        var (_, shard0, shard1) = BtTestDatabase.LayoutServers;
        string coord = BtTestDatabase.NewLayout("move", shard0);
        string target = BtTestDatabase.NewDatabase(shard1, "move_target");
        // Four counters, two of them in the partition that moves.
        int moving = PartitionOf(coord, _prefix + "c0");
        var inside = Enumerable.Range(0, 200).Select(i => $"{_prefix}c{i}").Where(id => PartitionOf(coord, id) == moving).Take(2).ToList();
        var outside = Enumerable.Range(0, 200).Select(i => $"{_prefix}c{i}").Where(id => PartitionOf(coord, id) != moving).Take(2).ToList();
        var counters = inside.Concat(outside).ToList();
        foreach (var id in counters) Put(coord, id, 0);

        const int each = 150;
        var workers = counters.SelectMany(id => new[] { "locked", "optimistic" }.Select(mode =>
            ChildProcess.Cli("_bt-worker", "bt:" + id, each.ToString(), mode, coord, "--verbose"))).ToList();
        try
        {
            // Move once the workers are well under way.
            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (Get(coord, inside[0]) < 30 && DateTime.UtcNow < deadline) Thread.Sleep(20);
            var progress = new StringWriter();
            long moved = BtCluster.MovePartition(coord, moving, target, progress);
            output.WriteLine(progress.ToString());
            Assert.True(moved >= 2, $"moved {moved} entry rows");
            foreach (var w in workers)
            {
                Assert.Equal($"done {each}", w.ReadLine(300));
                Assert.True(w.WaitForExit(60) == 0, $"worker failed: {w.Stderr}");
            }
        }
        finally
        {
            foreach (var w in workers) w.Dispose();
        }
        foreach (var id in counters) Assert.Equal(2 * each, Get(coord, id));
        // The moved partition's rows are on the new shard now, and its old tables are marked moved.
        Assert.Equal(2L, (long)BtTestDatabase.ScalarOn(target, $"SELECT count(*) FROM syconn.entries_p{moving} WHERE starts_with(identifier, $1)", _prefix)!);
        Assert.Contains(Shards(coord), s => SameDatabase(s, target));
        var oldShard = Shards(coord).Single(s => !SameDatabase(s, target));
        Assert.Equal(true, BtTestDatabase.ScalarOn(oldShard, $"SELECT moved FROM syconn.partition_state WHERE part = {moving}"));
        Assert.Equal(false, BtTestDatabase.ScalarOn(oldShard, $"SELECT bool_or(moved) FROM syconn.partition_state WHERE part <> {moving}"));
        using (var c = new NpgsqlConnection(coord))
        {
            c.Open();
            Assert.True(SameDatabase(target, BtPartitionMap.Read(c, coord, "test").Shards[moving]));
        }
    }
}
