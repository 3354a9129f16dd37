using Npgsql;
using SyConn.Backend.Postgres;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// The PostgreSQL servers the BT tests use, all started by the tests themselves (<see cref="PgServer"/>): one
/// server for the single-server layout, and three (a coordinator and two shards) for the partitioned layout. Every
/// test works in its own identifier namespace (<see cref="NewPrefix"/>), so tests share a database without seeing
/// each other's stores; tests that change a layout or stop a server make their own databases or servers.
/// </summary>
internal static class BtTestDatabase
{
    private static readonly Lazy<(PgServer Coordinator, PgServer Shard0, PgServer Shard1)> Servers = new(() =>
        (PgServer.Start("coord"), PgServer.Start("shard0"), PgServer.Start("shard1")), LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly Lazy<string> SharedLayout = new(() => NewLayout("layout"), LazyThreadSafetyMode.ExecutionAndPublication);

    private static int _databases;

    /// <summary>The single server's connection string; skips or fails the test when PostgreSQL is missing.</summary>
    public static string ConnectionString
    {
        get
        {
            PgServer.RequireAvailable();
            return PgServer.Shared.ConnectionString;
        }
    }

    /// <summary>The coordinator of the shared partitioned layout (16 partitions over two shards).</summary>
    public static string PartitionedConnectionString
    {
        get
        {
            PgServer.RequireAvailable();
            return SharedLayout.Value;
        }
    }

    /// <summary>The coordinator and shard servers of the partitioned layouts.</summary>
    public static (PgServer Coordinator, PgServer Shard0, PgServer Shard1) LayoutServers
    {
        get
        {
            PgServer.RequireAvailable();
            return Servers.Value;
        }
    }

    /// <summary>A new database on <paramref name="server"/> and its connection string.</summary>
    public static string NewDatabase(PgServer server, string stem)
    {
        string db = $"{stem}_{Interlocked.Increment(ref _databases)}_{Environment.ProcessId}";
        server.CreateDatabase(db);
        return new NpgsqlConnectionStringBuilder(server.ConnectionString) { Database = db }.ConnectionString;
    }

    /// <summary>A new partitioned layout: a coordinator database and one database per shard server given (default: the two shared shards).</summary>
    public static string NewLayout(string stem, params PgServer[] shards)
    {
        var (coordinator, s0, s1) = LayoutServers;
        if (shards.Length == 0) shards = [s0, s1];
        string coord = NewDatabase(coordinator, stem + "_coord");
        BtCluster.Init(coord, shards.Select((s, i) => NewDatabase(s, $"{stem}_shard{i}")).ToList());
        return coord;
    }

    /// <summary>A unique identifier prefix for one test.</summary>
    public static string NewPrefix() => "t" + Guid.NewGuid().ToString("N")[..12] + "/";

    /// <summary>Options naming the single test server.</summary>
    public static StoreOptions Options(StoreOptions? baseOptions = null) => (baseOptions ?? StoreOptions.Default) with { ConnectionString = ConnectionString };

    /// <summary>Runs SQL against a database (the single test server by default) and returns the first column of the first row.</summary>
    public static object? Scalar(string sql, params object[] args) => ScalarOn(ConnectionString, sql, args);

    /// <inheritdoc cref="Scalar"/>
    public static object? ScalarOn(string connectionString, string sql, params object[] args)
    {
        using var ds = NpgsqlDataSource.Create(connectionString);
        using var cmd = ds.CreateCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    /// <summary>Runs SQL and returns every row's columns.</summary>
    public static List<object?[]> Rows(string sql, params object[] args) => RowsOn(ConnectionString, sql, args);

    /// <inheritdoc cref="Rows"/>
    public static List<object?[]> RowsOn(string connectionString, string sql, params object[] args)
    {
        using var ds = NpgsqlDataSource.Create(connectionString);
        using var cmd = ds.CreateCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        using var r = cmd.ExecuteReader();
        var rows = new List<object?[]>();
        while (r.Read())
        {
            var row = new object?[r.FieldCount];
            for (int i = 0; i < row.Length; i++) row[i] = r.IsDBNull(i) ? null : r.GetValue(i);
            rows.Add(row);
        }
        return rows;
    }

    /// <summary>The entry store of a BT store of the single test server.</summary>
    public static PostgresEntryStore Store(string identifier, EntryStoreKind kind = EntryStoreKind.Pickle) =>
        BtBackend.Open(identifier, kind, Options());
}
