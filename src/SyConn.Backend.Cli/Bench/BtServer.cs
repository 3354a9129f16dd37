using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using Npgsql;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Postgres;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// The PostgreSQL server of <c>bench --backend bt</c>: the one <c>SYCONN_BT</c> names, or a private one started in
/// a temporary folder (<see cref="LocalPostgres"/>) and stopped when this is disposed. Also the helpers the BT
/// workloads need beside the stores: emptying a store between runs, sizes, and psql for the COPY floor.
/// </summary>
internal sealed class BtServer : IDisposable
{
    private readonly LocalPostgres? _local;
    private JsonObject? _description;

    private BtServer(string connectionString, LocalPostgres? local)
    {
        ConnectionString = connectionString;
        _local = local;
        Psql = local?.Psql ?? LocalPostgres.FindPsql(LocalPostgres.TryFindBinDir());
    }

    /// <summary>The Npgsql connection string of the database.</summary>
    public string ConnectionString { get; }

    /// <summary>True when the runner started the server (so it may checkpoint and vacuum it freely).</summary>
    public bool Owned => _local is not null;

    /// <summary>The psql client, or null when none is installed (then there is no COPY floor).</summary>
    public string? Psql { get; }

    /// <summary><c>SYCONN_BT</c> if it is set, else a server started in a temporary folder.</summary>
    public static BtServer Resolve(TextWriter progress)
    {
        if (Environment.GetEnvironmentVariable(BtBackend.EnvironmentVariable) is { Length: > 0 } cs)
        {
            progress.WriteLine($"bench: BT database from {BtBackend.EnvironmentVariable}");
            return new BtServer(cs, null);
        }
        progress.WriteLine($"bench: {BtBackend.EnvironmentVariable} is not set; starting a PostgreSQL server in a temporary folder");
        var local = LocalPostgres.Start();
        progress.WriteLine($"bench: PostgreSQL from {local.BinDir} on the socket {local.SocketDir} (port {local.Port})");
        return new BtServer(local.ConnectionString, local);
    }

    /// <summary><paramref name="options"/> naming this database.</summary>
    public StoreOptions Options(StoreOptions options) => options with { ConnectionString = ConnectionString };

    /// <summary>A connection to the database, with the BT schema in place.</summary>
    public NpgsqlConnection Open() => BtDatabase.For(ConnectionString).Open();

    /// <summary>Runs one statement outside any transaction.</summary>
    public void Execute(string sql, params object[] args)
    {
        using var c = Open();
        using var cmd = new NpgsqlCommand(sql, c);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        cmd.ExecuteNonQuery();
    }

    /// <summary>Runs a query and returns the first column of the first row.</summary>
    public object? Scalar(string sql, params object[] args)
    {
        using var c = Open();
        using var cmd = new NpgsqlCommand(sql, c);
        foreach (var a in args) cmd.Parameters.Add(new NpgsqlParameter { Value = a });
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    /// <summary>Removes every row of BT store <paramref name="identifier"/> (entries, side data, its store row).</summary>
    public void DeleteStore(string identifier) => DeleteStore(ConnectionString, identifier);

    /// <summary>Removes every row of BT store <paramref name="identifier"/> in the database of <paramref name="connectionString"/>.</summary>
    public static void DeleteStore(string connectionString, string identifier)
    {
        using var c = BtDatabase.For(connectionString).Open();
        using var tx = c.BeginTransaction();
        using var batch = new NpgsqlBatch(c, tx);
        foreach (var sql in new[]
        {
            "DELETE FROM syconn.entries WHERE identifier = $1",
            "DELETE FROM syconn.side_entries WHERE identifier = $1",
            "DELETE FROM syconn.stores WHERE identifier = $1",
        })
            batch.BatchCommands.Add(new NpgsqlBatchCommand(sql) { Parameters = { new() { Value = identifier } } });
        batch.ExecuteNonQuery();
        tx.Commit();
    }

    /// <summary>
    /// Untimed settling before a timed write, on a server the runner started only: dead rows of the last run are
    /// vacuumed away and a checkpoint is taken, so every run writes into the same kind of table and a checkpoint
    /// started by the previous run's WAL does not land inside the next timed phase.
    /// </summary>
    public void Settle(params string[] tables)
    {
        if (!Owned) return;
        foreach (var t in tables) Execute($"VACUUM {t}");
        Execute("CHECKPOINT");
    }

    /// <summary>Sum of the stored entry sizes of a store (the bytes a pull moves, keys and framing aside).</summary>
    public long EntryBytes(string identifier) =>
        Scalar("SELECT coalesce(sum(octet_length(entry)), 0)::bigint FROM syconn.entries WHERE identifier = $1", identifier) is long n ? n : 0;

    /// <summary>The key of the entry of <paramref name="identifier"/> whose stored size is nearest <paramref name="bytes"/>, and that size.</summary>
    public (StoreKey Key, int Bytes) KeyNearSize(string identifier, int bytes)
    {
        using var c = Open();
        using var cmd = new NpgsqlCommand(
            "SELECT pkey, octet_length(entry) FROM syconn.entries WHERE identifier = $1 ORDER BY abs(octet_length(entry) - $2), key LIMIT 1", c)
        {
            Parameters = { new() { Value = identifier }, new() { Value = bytes } },
        };
        using var r = cmd.ExecuteReader();
        if (!r.Read()) throw new InvalidOperationException($"bt:{identifier} has no entries");
        var key = StoreKey.FromPython(Pickle.Load(r.GetFieldValue<byte[]>(0)));
        return (key, r.GetInt32(1));
    }

    /// <summary>
    /// Runs <c>psql -c COMMAND</c> against the database and returns its wall time (process start, connection and
    /// all, as a user running psql sees it).
    /// </summary>
    /// <exception cref="InvalidOperationException">psql is missing or failed.</exception>
    public double RunPsql(string command)
    {
        if (Psql is null) throw new InvalidOperationException("psql was not found (apt-get install postgresql-client)");
        var b = new NpgsqlConnectionStringBuilder(ConnectionString);
        var psi = new ProcessStartInfo(Psql)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-X", "-q", "-v", "ON_ERROR_STOP=1" }) psi.ArgumentList.Add(a);
        if (!string.IsNullOrEmpty(b.Host)) { psi.ArgumentList.Add("-h"); psi.ArgumentList.Add(b.Host); }
        psi.ArgumentList.Add("-p");
        psi.ArgumentList.Add(b.Port.ToString(CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(b.Username)) { psi.ArgumentList.Add("-U"); psi.ArgumentList.Add(b.Username); }
        if (!string.IsNullOrEmpty(b.Database)) { psi.ArgumentList.Add("-d"); psi.ArgumentList.Add(b.Database); }
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(command);
        if (!string.IsNullOrEmpty(b.Password)) psi.Environment["PGPASSWORD"] = b.Password;
        foreach (var v in new[] { "PGOPTIONS", "PGSERVICE" }) psi.Environment.Remove(v);
        var sw = Stopwatch.StartNew();
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {Psql}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        double seconds = sw.Elapsed.TotalSeconds;
        if (p.ExitCode != 0)
            throw new InvalidOperationException($"psql failed (exit {p.ExitCode}) on {command}: {(stderr.GetAwaiter().GetResult() + stdout.GetAwaiter().GetResult()).Trim()}");
        return seconds;
    }

    /// <summary>The server as the JSON line's <c>env</c> reports it: version, the durability settings in force, how it is reached.</summary>
    public JsonObject Describe()
    {
        if (_description is not null) return (JsonObject)_description.DeepClone();
        using var c = Open();
        using var cmd = new NpgsqlCommand("""
            SELECT current_setting('server_version'), current_setting('fsync'), current_setting('synchronous_commit'),
                   current_setting('shared_buffers'), current_setting('wal_sync_method'), current_setting('full_page_writes'),
                   current_setting('wal_level'), current_setting('max_wal_size')
            """, c);
        using var r = cmd.ExecuteReader();
        r.Read();
        var b = new NpgsqlConnectionStringBuilder(ConnectionString);
        _description = new JsonObject
        {
            ["source"] = Owned ? "started by the runner in a temporary folder (LocalPostgres)" : BtBackend.EnvironmentVariable,
            ["server_version"] = r.GetString(0),
            ["fsync"] = r.GetString(1),
            ["synchronous_commit"] = r.GetString(2),
            ["shared_buffers"] = r.GetString(3),
            ["wal_sync_method"] = r.GetString(4),
            ["full_page_writes"] = r.GetString(5),
            ["wal_level"] = r.GetString(6),
            ["max_wal_size"] = r.GetString(7),
            ["transport"] = b.Host is { } h && h.StartsWith('/') ? "unix socket" : "tcp",
            ["psql"] = Psql,
        };
        return (JsonObject)_description.DeepClone();
    }

    /// <summary>Stops a server the runner started (and deletes its folder); a server from <c>SYCONN_BT</c> is left as it is.</summary>
    public void Dispose() => _local?.Dispose();
}
