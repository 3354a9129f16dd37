using System.Collections.Concurrent;
using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// One BT database as this process reaches it: an Npgsql data source (a connection pool) per connection string,
/// shared by every store that names it, and whether its schema has been checked. Connections are tagged with
/// <c>application_name</c> = <c>pid@host</c> unless the connection string sets one, so a lock holder can be named.
/// </summary>
/// <remarks>Thread-safe.</remarks>
internal sealed class BtDatabase
{
    private static readonly ConcurrentDictionary<string, BtDatabase> Cache = new(StringComparer.Ordinal);
    private volatile bool _schemaChecked;
    private readonly object _schemaGate = new();

    private BtDatabase(string connectionString)
    {
        ConnectionString = connectionString;
        var b = new NpgsqlConnectionStringBuilder(connectionString);
        if (string.IsNullOrEmpty(b.ApplicationName)) b.ApplicationName = ProcessTag;
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        // Npgsql takes each keyword with or without its spaces.
        bool Given(string keyword) => given.ContainsKey(keyword) || given.ContainsKey(keyword.Replace(" ", "", StringComparison.Ordinal));
        // Pulls and pushes of big stores run longer than Npgsql's 30 s default; a connection string may set its own.
        if (!Given("Command Timeout"))
            b.CommandTimeout = DefaultCommandTimeoutSeconds;
        // Entries are tens of KB: buffers of 128 KB instead of Npgsql's 8 KB take a pull's and a push's rows in a quarter
        // of the socket calls (each of which costs a wake-up of another thread in .NET's socket layer on Unix).
        if (!Given("Read Buffer Size")) b.ReadBufferSize = BufferBytes;
        if (!Given("Write Buffer Size")) b.WriteBufferSize = BufferBytes;
        // Every statement of a pull, a push and a lock is one of a few fixed texts: prepared once per connection, a
        // locked read-modify-write costs the server a fifth of what parsing and planning each time did. A connection
        // string may turn this off (Max Auto Prepare=0, e.g. behind a pooler in transaction mode).
        if (!Given("Max Auto Prepare")) b.MaxAutoPrepare = AutoPrepareStatements;
        if (!Given("Auto Prepare Min Usages")) b.AutoPrepareMinUsages = 2;
        // Only this library's code uses these connections, and it leaves no session state behind (settings are local to
        // a transaction or reset by the statement that made them; a session lock is released, or its connection dropped
        // from the pool, see BtLock): the reset Npgsql sends before a pooled connection's next use was a tenth of a
        // locked read-modify-write. A connection string may ask for it (No Reset On Close=false).
        if (!Given("No Reset On Close")) b.NoResetOnClose = true;
        DataSource = NpgsqlDataSource.Create(b.ConnectionString);
        Description = DescribeServer(b);
    }

    /// <summary>The statement timeout a connection string without <c>Command Timeout</c> gets (lock waits have none: <c>lock_timeout</c> bounds them).</summary>
    public const int DefaultCommandTimeoutSeconds = 600;

    /// <summary>How many statements each connection keeps prepared, unless the connection string sets <c>Max Auto Prepare</c>.</summary>
    public const int AutoPrepareStatements = 32;

    /// <summary>The read and write buffer of each connection, unless the connection string sets them.</summary>
    public const int BufferBytes = 128 * 1024;

    /// <summary>This process as lock holders are named: <c>pid@host</c>.</summary>
    public static string ProcessTag { get; } = $"{Environment.ProcessId}@{Environment.MachineName}";

    /// <summary>The database of <paramref name="connectionString"/> (one instance per distinct string).</summary>
    /// <exception cref="ArgumentException">The connection string is malformed.</exception>
    public static BtDatabase For(string connectionString)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        if (Cache.TryGetValue(connectionString, out var db)) return db;
        try
        {
            return Cache.GetOrAdd(connectionString, static cs => new BtDatabase(cs));
        }
        catch (Exception e) when (e is ArgumentException or FormatException or KeyNotFoundException)
        {
            throw new ArgumentException($"not an Npgsql connection string: {e.Message}", nameof(connectionString), e);
        }
    }

    /// <summary>The connection string (as given).</summary>
    public string ConnectionString { get; }

    /// <summary>The layout the schema check found: <c>single</c>, <c>coordinator</c> or <c>shard</c> (null before the first connection).</summary>
    public string? Layout { get; private set; }

    /// <summary>The partition map of a coordinator, read on first use and again after a partition moved.</summary>
    internal BtPartitionMap? PartitionMap { get; set; }

    /// <summary>The pool.</summary>
    public NpgsqlDataSource DataSource { get; }

    /// <summary>The server and database, for messages (never the password).</summary>
    public string Description { get; }

    /// <summary>An open connection whose database has the current schema (created on first use).</summary>
    /// <exception cref="IOException">The server cannot be reached (the message names it).</exception>
    public NpgsqlConnection Open()
    {
        NpgsqlConnection c;
        try
        {
            c = DataSource.OpenConnection();
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw Unreachable(e);
        }
        // Used synchronously: reads and writes block in the caller's thread instead of going through .NET's epoll thread.
        BtSocketMode.Set(c, blocking: true);
        return Checked(c);
    }

    /// <summary>An open connection, opened without blocking; see <see cref="Open"/>.</summary>
    public async Task<NpgsqlConnection> OpenAsync(CancellationToken ct)
    {
        NpgsqlConnection c;
        try
        {
            c = await DataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException && !ct.IsCancellationRequested)
        {
            throw Unreachable(e);
        }
        // A pooled connection last used synchronously has a blocking socket: an async read on it would block its thread.
        BtSocketMode.Set(c, blocking: false);
        return Checked(c);
    }

    private NpgsqlConnection Checked(NpgsqlConnection c)
    {
        if (_schemaChecked) return c;
        try
        {
            lock (_schemaGate)
            {
                if (!_schemaChecked)
                {
                    Layout = BtSchema.Ensure(c, Description);
                    _schemaChecked = true;
                }
            }
            return c;
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    /// <summary>An <see cref="IOException"/> saying the server cannot be reached.</summary>
    public IOException Unreachable(Exception e) => new($"the BT database {Description} cannot be reached: {e.Message}", e);

    private static string DescribeServer(NpgsqlConnectionStringBuilder b)
    {
        string host = string.IsNullOrEmpty(b.Host) ? "localhost" : b.Host;
        return $"{host}:{b.Port}/{(string.IsNullOrEmpty(b.Database) ? b.Username ?? "postgres" : b.Database)}";
    }
}
