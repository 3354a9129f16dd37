using Npgsql;
using SyConn.Backend.Postgres;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// The PostgreSQL server the BT tests use: the test run's shared server (started by the tests themselves), or the
/// one named by <c>SYCONN_TEST_BT</c> when that is set. Every test works in its own identifier namespace
/// (<see cref="NewPrefix"/>), so tests share the database without seeing each other's stores.
/// </summary>
internal static class BtTestDatabase
{
    /// <summary>The connection string of the test database; skips or fails the test when there is no server.</summary>
    public static string ConnectionString
    {
        get
        {
            if (Environment.GetEnvironmentVariable("SYCONN_TEST_BT") is { Length: > 0 } cs) return cs;
            throw new InvalidOperationException("PGSERVER-PENDING");
        }
    }

    /// <summary>A unique identifier prefix for one test.</summary>
    public static string NewPrefix() => "t" + Guid.NewGuid().ToString("N")[..12] + "/";

    /// <summary>Options naming the test database.</summary>
    public static StoreOptions Options(StoreOptions? baseOptions = null) => (baseOptions ?? StoreOptions.Default) with { ConnectionString = ConnectionString };

    /// <summary>Runs SQL against the test database and returns the first column of the first row.</summary>
    public static object? Scalar(string sql, params object[] args)
    {
        using var ds = NpgsqlDataSource.Create(ConnectionString);
        using var cmd = ds.CreateCommand(sql);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    /// <summary>Runs SQL and returns every row's columns.</summary>
    public static List<object?[]> Rows(string sql, params object[] args)
    {
        using var ds = NpgsqlDataSource.Create(ConnectionString);
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

    /// <summary>The entry store of a BT store of the test database.</summary>
    public static PostgresEntryStore Store(string identifier, EntryStoreKind kind = EntryStoreKind.Pickle) =>
        BtBackend.Open(identifier, kind, Options());
}
