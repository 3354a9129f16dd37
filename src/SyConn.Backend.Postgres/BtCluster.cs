using System.Globalization;
using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// The partitioned BT layout: stores spread over several PostgreSQL servers with PostgreSQL's own machinery. The
/// coordinator (the database <c>SYCONN_BT</c> names) holds <c>syconn.stores</c>, <c>syconn.entries</c> and
/// <c>syconn.side_entries</c> as tables hash-partitioned by identifier, all with the same modulus (so a store's rows
/// and its generation row share a server), each partition a <c>postgres_fdw</c> foreign table on a shard, where the
/// real tables (<c>syconn.entries_pN</c>, ...) with their primary keys live.
/// </summary>
/// <remarks>
/// <para>Clients read the partition map from the coordinator's catalog and send each store's traffic, its lock
/// included, straight to the shard that holds it; the coordinator's foreign tables are for ad hoc SQL across all
/// stores (through <c>postgres_fdw</c> they are several times slower, so no data goes that way). One store is one
/// transaction on one shard: there is no atomicity across shards, and none is needed.</para>
/// <para>Each shard keeps <c>syconn.partition_state(part, moved)</c>. Every push takes its partition's row
/// <c>FOR SHARE</c> in its own transaction; moving a partition marks it moved under an update of that row, so a push
/// routed by a stale map fails instead of writing to the old shard after the copy, and the client rereads the map and
/// writes on the new shard (checking the copied generation).</para>
/// </remarks>
public static class BtCluster
{
    /// <summary>The default number of hash partitions: enough to spread over up to 16 shards without splitting.</summary>
    public const int DefaultPartitions = 16;

    /// <summary>
    /// Lays out the partitioned schema on the coordinator and the shards: partition <c>p</c> goes to shard
    /// <c>p % shards</c>. The coordinator must have no BT schema yet; a shard may already be one (of this layout).
    /// </summary>
    /// <param name="coordinator">The coordinator's connection string (its user must be able to create extensions and servers).</param>
    /// <param name="shards">The shards' connection strings (at least one).</param>
    /// <param name="partitions">The hash modulus.</param>
    /// <param name="progress">Receives one line per step; null for none.</param>
    /// <exception cref="InvalidOperationException">The coordinator already has a BT schema.</exception>
    public static void Init(string coordinator, IReadOnlyList<string> shards, int partitions = DefaultPartitions, TextWriter? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(coordinator);
        ArgumentNullException.ThrowIfNull(shards);
        if (shards.Count == 0) throw new ArgumentException("give at least one shard", nameof(shards));
        ArgumentOutOfRangeException.ThrowIfLessThan(partitions, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(partitions, 4096);

        using var coord = new NpgsqlConnection(coordinator);
        coord.Open();
        if (Scalar(coord, "SELECT to_regclass('syconn.schema_version') IS NOT NULL") is true)
            throw new InvalidOperationException($"{Describe(coordinator)} already has a BT schema (layout '{Scalar(coord, "SELECT layout FROM syconn.schema_version")}'); bt-init lays out a new coordinator only");

        for (int p = 0; p < partitions; p++)
        {
            string shard = shards[p % shards.Count];
            CreatePartitionOnShard(shard, p, replace: false);
            progress?.WriteLine($"bt-init: partition {p}/{partitions} on {Describe(shard)}");
        }

        using var tx = coord.BeginTransaction();
        Exec(coord, $"""
            CREATE EXTENSION IF NOT EXISTS postgres_fdw;
            CREATE SCHEMA IF NOT EXISTS syconn;
            {BtSchema.VersionTableSql}
            INSERT INTO syconn.schema_version (version, layout) VALUES ({BtSchema.Version}, 'coordinator');
            CREATE TABLE syconn.layout_version (one boolean PRIMARY KEY DEFAULT true CHECK (one), version bigint NOT NULL);
            INSERT INTO syconn.layout_version (version) VALUES (1);
            CREATE TABLE syconn.stores ({BtSchema.StoreColumns}) PARTITION BY HASH (identifier);
            CREATE TABLE syconn.entries ({BtSchema.EntryColumns(side: false)}) PARTITION BY HASH (identifier);
            CREATE TABLE syconn.side_entries ({BtSchema.EntryColumns(side: true)}) PARTITION BY HASH (identifier);
            """);
        var servers = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int p = 0; p < partitions; p++)
        {
            string shard = shards[p % shards.Count];
            if (!servers.TryGetValue(shard, out var server))
            {
                server = $"syconn_shard_{servers.Count}";
                CreateServer(coord, server, shard);
                servers[shard] = server;
            }
            AttachForeignPartition(coord, p, partitions, server);
        }
        tx.Commit();
        progress?.WriteLine($"bt-init: {Describe(coordinator)} coordinates {partitions} partitions on {servers.Count} shard(s)");
    }

    /// <summary>
    /// Moves partition <paramref name="partition"/> to another shard while clients keep working: the partition is
    /// marked moved on its old shard (which waits for pushes under way and holds off new ones), its rows are copied to
    /// the new shard, the mark is committed (late pushes now fail and follow the map), and the coordinator's foreign
    /// partitions are re-pointed (PostgreSQL's DETACH/ATTACH). The old shard's tables are kept, marked moved.
    /// Rerunning after an interruption finishes the move.
    /// </summary>
    /// <param name="coordinator">The coordinator's connection string.</param>
    /// <param name="partition">The partition (hash remainder).</param>
    /// <param name="newShard">The shard to move it to.</param>
    /// <param name="progress">Receives progress lines; null for none.</param>
    /// <returns>The number of entry rows moved.</returns>
    public static long MovePartition(string coordinator, int partition, string newShard, TextWriter? progress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(coordinator);
        ArgumentException.ThrowIfNullOrEmpty(newShard);
        using var coord = new NpgsqlConnection(coordinator);
        coord.Open();
        if (Scalar(coord, "SELECT layout FROM syconn.schema_version") as string != "coordinator")
            throw new InvalidOperationException($"{Describe(coordinator)} is not the coordinator of a partitioned BT layout (run bt-init first)");
        var map = BtPartitionMap.Read(coord, coordinator, Describe(coordinator));
        if (!map.Shards.TryGetValue(partition, out var oldShard))
            throw new ArgumentOutOfRangeException(nameof(partition), partition, $"the layout has partitions 0 to {map.Modulus - 1}");
        if (SameServer(oldShard, newShard))
            throw new InvalidOperationException($"partition {partition} is on {Describe(newShard)} already");

        var t = BtTables.OfPartition(partition);
        long moved = 0;
        using (var old = new NpgsqlConnection(oldShard))
        {
            old.Open();
            using var oldTx = old.BeginTransaction();
            bool alreadyMarked = Scalar(old, $"SELECT moved FROM syconn.partition_state WHERE part = {partition} FOR UPDATE") is true;
            if (!alreadyMarked)
            {
                CreatePartitionOnShard(newShard, partition, replace: true);
                Exec(old, $"UPDATE syconn.partition_state SET moved = true, moved_to = '{Describe(newShard).Replace("'", "''", StringComparison.Ordinal)}' WHERE part = {partition}");
                progress?.WriteLine($"bt-move-partition: partition {partition} marked moved on {Describe(oldShard)}; copying to {Describe(newShard)}");
                using var dst = new NpgsqlConnection(newShard);
                dst.Open();
                using var dstTx = dst.BeginTransaction();
                foreach (var table in new[] { t.Stores, t.Entries, t.Side })
                {
                    long rows = CopyTable(old, dst, table);
                    if (table == t.Entries) moved = rows;
                    progress?.WriteLine($"bt-move-partition: {table}: {rows} rows");
                }
                dstTx.Commit();
            }
            else
            {
                progress?.WriteLine($"bt-move-partition: partition {partition} was marked moved already; finishing the move");
            }
            oldTx.Commit();
        }

        using (var tx = coord.BeginTransaction())
        {
            string server = ServerFor(coord, newShard);
            foreach (var parent in new[] { "stores", "entries", "side_entries" })
            {
                Exec(coord, $"ALTER TABLE syconn.{parent} DETACH PARTITION syconn.{parent}_p{partition}");
                Exec(coord, $"DROP FOREIGN TABLE syconn.{parent}_p{partition}");
            }
            AttachForeignPartition(coord, partition, map.Modulus, server);
            Exec(coord, "UPDATE syconn.layout_version SET version = version + 1");
            tx.Commit();
        }
        progress?.WriteLine($"bt-move-partition: partition {partition} now lives on {Describe(newShard)} ({moved} entry rows)");
        return moved;
    }

    /// <summary>Per partition: its shard and how many stores and entry rows it holds there.</summary>
    public static IReadOnlyList<(int Partition, string Shard, long Stores, long Entries)> Describe(string coordinator, bool countRows)
    {
        using var coord = new NpgsqlConnection(coordinator);
        coord.Open();
        var map = BtPartitionMap.Read(coord, coordinator, Describe(coordinator));
        var result = new List<(int, string, long, long)>();
        foreach (var (p, shard) in map.Shards.OrderBy(kv => kv.Key))
        {
            long stores = -1, entries = -1;
            if (countRows)
            {
                using var c = new NpgsqlConnection(shard);
                c.Open();
                stores = (long)Scalar(c, $"SELECT count(*) FROM syconn.stores_p{p}")!;
                entries = (long)Scalar(c, $"SELECT count(*) FROM syconn.entries_p{p}")!;
            }
            result.Add((p, Describe(shard), stores, entries));
        }
        return result;
    }

    private static void CreatePartitionOnShard(string shard, int p, bool replace)
    {
        using var c = new NpgsqlConnection(shard);
        c.Open();
        using var tx = c.BeginTransaction();
        Exec(c, "SELECT pg_advisory_xact_lock(6076207745286258689)"); // one layout change per shard at a time
        var layout = Scalar(c, "SELECT to_regclass('syconn.schema_version') IS NOT NULL") is true
            ? Scalar(c, "SELECT layout FROM syconn.schema_version") as string
            : null;
        if (layout is not null and not "shard")
            throw new InvalidOperationException($"{Describe(shard)} already holds a BT schema of layout '{layout}'; a shard needs a database of its own");
        if (layout is null)
        {
            Exec(c, $"""
                CREATE SCHEMA IF NOT EXISTS syconn;
                {BtSchema.VersionTableSql}
                INSERT INTO syconn.schema_version (version, layout) VALUES ({BtSchema.Version}, 'shard');
                CREATE TABLE syconn.partition_state (part integer PRIMARY KEY, moved boolean NOT NULL DEFAULT false, moved_to text);
                """);
        }
        var t = BtTables.OfPartition(p);
        if (replace)
        {
            Exec(c, $"DROP TABLE IF EXISTS {t.Stores}, {t.Entries}, {t.Side}");
            Exec(c, $"DELETE FROM syconn.partition_state WHERE part = {p}");
        }
        Exec(c, $"""
            CREATE TABLE {t.Stores} ({BtSchema.StoreColumns}, PRIMARY KEY (identifier));
            CREATE TABLE {t.Entries} ({BtSchema.EntryColumns(side: false)}, PRIMARY KEY (identifier, key));
            ALTER TABLE {t.Entries} ALTER COLUMN entry SET STORAGE EXTERNAL;
            CREATE TABLE {t.Side} ({BtSchema.EntryColumns(side: true)}, PRIMARY KEY (identifier, side, key));
            ALTER TABLE {t.Side} ALTER COLUMN entry SET STORAGE EXTERNAL;
            INSERT INTO syconn.partition_state (part) VALUES ({p});
            """);
        tx.Commit();
    }

    private static void CreateServer(NpgsqlConnection coord, string server, string shard)
    {
        var b = new NpgsqlConnectionStringBuilder(shard);
        var opts = new List<string>();
        if (!string.IsNullOrEmpty(b.Host)) opts.Add($"host {Literal(b.Host)}");
        opts.Add($"port {Literal(b.Port.ToString(CultureInfo.InvariantCulture))}");
        if (!string.IsNullOrEmpty(b.Database)) opts.Add($"dbname {Literal(b.Database)}");
        Exec(coord, $"CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS ({string.Join(", ", opts)})");
        var user = new List<string>();
        if (!string.IsNullOrEmpty(b.Username)) user.Add($"user {Literal(b.Username)}");
        if (!string.IsNullOrEmpty(b.Password)) user.Add($"password {Literal(b.Password)}");
        Exec(coord, $"CREATE USER MAPPING FOR PUBLIC SERVER {server}{(user.Count > 0 ? $" OPTIONS ({string.Join(", ", user)})" : "")}");
    }

    /// <summary>The foreign server of <paramref name="shard"/> on the coordinator, created when there is none.</summary>
    private static string ServerFor(NpgsqlConnection coord, string shard)
    {
        var names = new List<(string Name, string[] Options)>();
        using (var cmd = new NpgsqlCommand("SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname LIKE 'syconn_shard_%'", coord))
        using (var r = cmd.ExecuteReader())
            while (r.Read()) names.Add((r.GetString(0), r.IsDBNull(1) ? [] : r.GetFieldValue<string[]>(1)));
        var b = new NpgsqlConnectionStringBuilder(shard);
        foreach (var (name, options) in names)
        {
            var o = options.Select(kv => kv.Split('=', 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1], StringComparer.Ordinal);
            if (o.GetValueOrDefault("host") == b.Host && o.GetValueOrDefault("port", "5432") == b.Port.ToString(CultureInfo.InvariantCulture)
                && o.GetValueOrDefault("dbname") == b.Database)
                return name;
        }
        int next = names.Select(n => int.TryParse(n.Name["syconn_shard_".Length..], CultureInfo.InvariantCulture, out int i) ? i + 1 : 0).DefaultIfEmpty(0).Max();
        string server = $"syconn_shard_{next}";
        CreateServer(coord, server, shard);
        return server;
    }

    private static void AttachForeignPartition(NpgsqlConnection coord, int p, int modulus, string server)
    {
        foreach (var parent in new[] { "stores", "entries", "side_entries" })
            Exec(coord, $"""
                CREATE FOREIGN TABLE syconn.{parent}_p{p} PARTITION OF syconn.{parent}
                FOR VALUES WITH (MODULUS {modulus}, REMAINDER {p}) SERVER {server}
                OPTIONS (schema_name 'syconn', table_name '{parent}_p{p}')
                """);
    }

    /// <summary>Streams one table from one server to another with binary COPY; returns the rows copied.</summary>
    private static long CopyTable(NpgsqlConnection from, NpgsqlConnection to, string table)
    {
        using (var src = from.BeginRawBinaryCopy($"COPY {table} TO STDOUT (FORMAT BINARY)"))
        using (var dst = to.BeginRawBinaryCopy($"COPY {table} FROM STDIN (FORMAT BINARY)"))
            src.CopyTo(dst);
        return (long)Scalar(to, $"SELECT count(*) FROM {table}")!;
    }

    private static bool SameServer(string a, string b)
    {
        var x = new NpgsqlConnectionStringBuilder(a);
        var y = new NpgsqlConnectionStringBuilder(b);
        return x.Host == y.Host && x.Port == y.Port && x.Database == y.Database;
    }

    internal static string Describe(string connectionString)
    {
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        return $"{(string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host)}:{b.Port}/{b.Database ?? b.Username ?? "postgres"}";
    }

    private static string Literal(string s) => "'" + s.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static object? Scalar(NpgsqlConnection c, string sql)
    {
        using var cmd = new NpgsqlCommand(sql, c);
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    private static void Exec(NpgsqlConnection c, string sql)
    {
        using var cmd = new NpgsqlCommand(sql, c);
        cmd.ExecuteNonQuery();
    }
}
