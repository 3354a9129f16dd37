using System.Collections.Concurrent;
using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>The tables that hold one store's rows on the server that holds them: a single server's, or one partition's on a shard.</summary>
/// <param name="Stores">The store table.</param>
/// <param name="Entries">The entry table.</param>
/// <param name="Side">The side-data table.</param>
/// <param name="Partition">The hash partition (remainder) on a partitioned layout; null on a single server.</param>
internal sealed record BtTables(string Stores, string Entries, string Side, int? Partition)
{
    /// <summary>A single server's tables.</summary>
    public static readonly BtTables Single = new("syconn.stores", "syconn.entries", "syconn.side_entries", null);

    /// <summary>The tables of partition <paramref name="p"/> as they are named on its shard.</summary>
    public static BtTables OfPartition(int p) => new($"syconn.stores_p{p}", $"syconn.entries_p{p}", $"syconn.side_entries_p{p}", p);
}

/// <summary>Where a store's traffic goes: the server and its tables.</summary>
internal sealed record BtRoute(BtDatabase Db, BtTables Tables);

/// <summary>
/// The partition map of a partitioned layout, as PostgreSQL's catalog on the coordinator tells it: the hash modulus of
/// <c>syconn.entries</c>, and for each partition the shard its foreign table points at (<c>postgres_fdw</c> server and
/// user mapping options). Which partition an identifier falls in is asked once per identifier
/// (<c>satisfies_hash_partition</c>) and cached.
/// </summary>
/// <remarks>Thread-safe once built.</remarks>
internal sealed partial class BtPartitionMap
{
    private readonly ConcurrentDictionary<string, int> _partitionOf = new(StringComparer.Ordinal);

    private BtPartitionMap(int modulus, long version, Dictionary<int, string> shards)
    {
        Modulus = modulus;
        Version = version;
        Shards = shards;
    }

    /// <summary>The hash modulus (number of partitions).</summary>
    public int Modulus { get; }

    /// <summary>The layout version the map was read at (bumped by every partition move).</summary>
    public long Version { get; }

    /// <summary>Partition -> connection string of the shard that holds it.</summary>
    public IReadOnlyDictionary<int, string> Shards { get; }

    /// <summary>Reads the map from the coordinator's catalog.</summary>
    public static BtPartitionMap Read(NpgsqlConnection coordinator, string coordinatorConnectionString, string description)
    {
        using var cmd = new NpgsqlCommand("""
            SELECT pg_get_expr(c.relpartbound, c.oid), s.srvoptions, um.umoptions,
                   (SELECT version FROM syconn.layout_version)
            FROM pg_inherits i
            JOIN pg_class c ON c.oid = i.inhrelid
            JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
            JOIN pg_foreign_server s ON s.oid = ft.ftserver
            LEFT JOIN LATERAL (SELECT m.umoptions FROM pg_user_mappings m
                               WHERE m.srvid = s.oid AND (m.usename = current_user OR m.usename = 'public')
                               ORDER BY m.usename = 'public' LIMIT 1) um ON true
            WHERE i.inhparent = 'syconn.entries'::regclass
            """, coordinator);
        var shards = new Dictionary<int, string>();
        int modulus = 0;
        long version = 0;
        using (var r = cmd.ExecuteReader())
        {
            while (r.Read())
            {
                if (r.IsDBNull(0)) continue; // a partition being detached by a move
                var bound = Bound().Match(r.GetString(0));
                if (!bound.Success) throw new InvalidDataException($"the BT coordinator {description} has a partition of syconn.entries that is not a hash partition: {r.GetString(0)}");
                int m = int.Parse(bound.Groups[1].Value, CultureInfo.InvariantCulture);
                int p = int.Parse(bound.Groups[2].Value, CultureInfo.InvariantCulture);
                if (modulus != 0 && m != modulus) throw new InvalidDataException($"the BT coordinator {description} mixes hash moduli {modulus} and {m}");
                modulus = m;
                var server = Options(r.IsDBNull(1) ? [] : r.GetFieldValue<string[]>(1));
                var user = Options(r.IsDBNull(2) ? [] : r.GetFieldValue<string[]>(2));
                shards[p] = ShardConnectionString(coordinatorConnectionString, server, user);
                version = r.IsDBNull(3) ? 0 : r.GetInt64(3);
            }
        }
        if (modulus == 0 || shards.Count != modulus)
            throw new IncompleteMapException($"the BT coordinator {description} maps {shards.Count} of {modulus} partitions to shards; finish bt-init or bt-move-partition");
        return new BtPartitionMap(modulus, version, shards);
    }

    /// <summary>The partition <paramref name="identifier"/> falls in, asked of the coordinator once.</summary>
    public int PartitionOf(BtDatabase coordinator, string identifier)
    {
        if (_partitionOf.TryGetValue(identifier, out int p)) return p;
        using var c = coordinator.Open();
        using var cmd = new NpgsqlCommand(
            "SELECT r FROM generate_series(0, $1 - 1) r WHERE satisfies_hash_partition('syconn.entries'::regclass, $1, r, $2::text)", c)
        {
            Parameters = { new() { Value = Modulus }, new() { Value = identifier } },
        };
        p = cmd.ExecuteScalar() is int found ? found : throw new InvalidDataException($"no partition of the BT coordinator {coordinator.Description} takes identifier '{identifier}'");
        _partitionOf[identifier] = p;
        return p;
    }

    private static Dictionary<string, string> Options(string[] pairs)
    {
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in pairs)
        {
            int eq = kv.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0) d[kv[..eq]] = kv[(eq + 1)..];
        }
        return d;
    }

    /// <summary>A connection string for a shard: the coordinator's settings with the shard's host, port, database and user.</summary>
    private static string ShardConnectionString(string coordinator, Dictionary<string, string> server, Dictionary<string, string> user)
    {
        var b = new NpgsqlConnectionStringBuilder(coordinator);
        if (server.TryGetValue("host", out var host)) b.Host = host;
        b.Port = server.TryGetValue("port", out var port) ? int.Parse(port, CultureInfo.InvariantCulture) : 5432;
        if (server.TryGetValue("dbname", out var db)) b.Database = db;
        if (user.TryGetValue("user", out var u)) b.Username = u;
        if (user.TryGetValue("password", out var pw)) b.Password = pw;
        return b.ConnectionString;
    }

    /// <summary>The catalog maps fewer partitions than the modulus: a layout change is under way, or was interrupted.</summary>
    internal sealed class IncompleteMapException(string message) : IOException(message);

    [GeneratedRegex(@"modulus (\d+), remainder (\d+)", RegexOptions.IgnoreCase)]
    private static partial Regex Bound();
}

/// <summary>Sends a store's traffic to the server that holds it.</summary>
internal static class BtRouter
{
    /// <summary>The route of <paramref name="identifier"/> in the database <paramref name="db"/> names (a single server, or a coordinator).</summary>
    /// <exception cref="InvalidOperationException">The database is a shard: stores are reached through its coordinator.</exception>
    public static BtRoute Route(BtDatabase db, string identifier)
    {
        if (db.Layout is null) db.Open().Dispose();
        switch (db.Layout)
        {
            case "coordinator":
                var map = db.PartitionMap;
                for (int attempt = 0; map is null; attempt++)
                {
                    using var c = db.Open();
                    try
                    {
                        map = BtPartitionMap.Read(c, db.ConnectionString, db.Description);
                        db.PartitionMap = map;
                    }
                    catch (BtPartitionMap.IncompleteMapException) when (attempt < 100)
                    {
                        Thread.Sleep(50); // a move is re-pointing a partition: its transaction commits in a moment
                    }
                }
                int p = map.PartitionOf(db, identifier);
                return new BtRoute(BtDatabase.For(map.Shards[p]), BtTables.OfPartition(p));
            case "shard":
                throw new InvalidOperationException($"the BT database {db.Description} is a shard of a partitioned layout; name its coordinator (SYCONN_BT) instead");
            default:
                return new BtRoute(db, BtTables.Single);
        }
    }

    /// <summary>Forgets the partition map, so the next route reads it again (after a partition moved).</summary>
    public static void Forget(BtDatabase db) => db.PartitionMap = null;
}
