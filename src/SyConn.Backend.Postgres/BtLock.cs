using System.Buffers.Binary;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Npgsql;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Postgres;

/// <summary>
/// A BT store's exclusive lock: a session advisory lock, held on one connection that stays open (pinned) from the
/// pull until the lock is released. The server drops it when the holder's session ends, so a worker that dies
/// (even by SIGKILL) frees the store as soon as the server notices the closed connection.
/// </summary>
/// <remarks>
/// <para>The lock key is the first 8 bytes of SHA-256 of <c>syconn-store:</c> and the identifier, so every client, in any
/// language, computes the same key. Dispose and <see cref="IsHeld"/> are thread-safe.</para>
/// <para><b>Waiting.</b> A request waits in the server (<c>pg_advisory_lock</c> under <c>lock_timeout</c>), which
/// wakes the waiters in order at each release; <see cref="LockOptions.Timeout"/> = 0 tries once
/// (<c>pg_try_advisory_lock</c>). The pull that rides in the lock's round trip reads only once the lock is held.</para>
/// </remarks>
internal sealed class BtLock : IStoreLock
{
    private readonly object _gate = new();
    private NpgsqlConnection? _connection;

    private readonly string _identifier;
    private readonly LockOptions _options;

    private BtDatabase _db;

    private BtLock(BtDatabase db, NpgsqlConnection connection, long key, string resource, string identifier, LockOptions options)
    {
        _db = db;
        _connection = connection;
        Key = key;
        Resource = resource;
        _identifier = identifier;
        _options = options;
    }

    /// <summary>The advisory lock key.</summary>
    public long Key { get; }

    /// <inheritdoc/>
    public string Resource { get; }

    /// <inheritdoc/>
    public bool IsHeld
    {
        get
        {
            lock (_gate) return _connection is { State: System.Data.ConnectionState.Open };
        }
    }

    /// <summary>True once the holder asked for the lock to be released by its next write (<see cref="IStoreLock.ReleaseWithNextWrite"/>).</summary>
    public bool ReleaseRequested { get; private set; }

    /// <inheritdoc/>
    public void ReleaseWithNextWrite() => ReleaseRequested = true;

    /// <summary>True when the pinned connection broke while the lock was held: the server has dropped the lock.</summary>
    public bool IsLost
    {
        get
        {
            lock (_gate) return _connection is { State: not System.Data.ConnectionState.Open };
        }
    }

    /// <summary>The write unlocked in its commit's round trip: return the connection without another unlock.</summary>
    public void ReleasedByWrite()
    {
        NpgsqlConnection? c;
        lock (_gate)
        {
            c = _connection;
            _connection = null;
        }
        c?.Dispose();
    }

    /// <summary>The pinned connection (null once released or broken); the holder runs its pull and push on it.</summary>
    public NpgsqlConnection? Connection
    {
        get
        {
            lock (_gate) return _connection is { State: System.Data.ConnectionState.Open } c ? c : null;
        }
    }

    /// <summary>The advisory lock key of a store.</summary>
    public static long KeyOf(string identifier)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes("syconn-store:" + identifier), hash);
        return BinaryPrimitives.ReadInt64BigEndian(hash);
    }

    /// <summary>
    /// Takes the lock of <paramref name="identifier"/>, waiting as <paramref name="options"/> says; <paramref name="then"/>,
    /// when given, runs in the same round trip once the lock is held, and <paramref name="read"/> reads its rows.
    /// </summary>
    public static BtLock Acquire(BtDatabase db, string identifier, LockOptions options, CancellationToken ct,
        NpgsqlBatchCommand? then = null, Action<NpgsqlDataReader>? read = null) =>
        AcquireAsync(db, identifier, options, ct, sync: true, then, read).GetAwaiter().GetResult();

    /// <summary>Takes the lock without blocking the caller's thread while it waits; see <see cref="Acquire"/>.</summary>
    public static Task<BtLock> AcquireAsync(BtDatabase db, string identifier, LockOptions options, CancellationToken ct,
        NpgsqlBatchCommand? then = null, Action<NpgsqlDataReader>? read = null) =>
        AcquireAsync(db, identifier, options, ct, sync: false, then, read);

    private static async Task<BtLock> AcquireAsync(BtDatabase db, string identifier, LockOptions options, CancellationToken ct, bool sync,
        NpgsqlBatchCommand? then, Action<NpgsqlDataReader>? read)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        ct.ThrowIfCancellationRequested();
        long key = KeyOf(identifier);
        string resource = $"advisory lock {key} of store 'bt:{identifier}' on {db.Description}";
        var sw = Stopwatch.StartNew();
        var c = sync ? db.Open() : await db.OpenAsync(ct).ConfigureAwait(false);
        try
        {
            // Timeout = 0 tries once; any other timeout waits queued in the server, which hands the lock on in order.
            bool queue = options.Timeout != TimeSpan.Zero;
            long ms = options.Timeout == Timeout.InfiniteTimeSpan ? 0 : Math.Max(1, (long)Math.Ceiling(options.Timeout.TotalMilliseconds));
            bool got = await TakeAsync(c, key, queue, ms, resource, ct, sync, then, read).ConfigureAwait(false);
            if (!got)
            {
                var (pid, holder) = Holder(sync ? db.Open() : await db.OpenAsync(CancellationToken.None).ConfigureAwait(false), key);
                throw StorageLockTimeoutException.ForResource(resource, pid, holder, heldInProcess: false, sw.Elapsed, "database backend");
            }
            return new BtLock(db, c, key, resource, identifier, options);
        }
        catch
        {
            c.Dispose();
            throw;
        }
    }

    /// <summary>
    /// One request for the lock: without queueing (<c>pg_try_advisory_lock</c>), or queued in the server under
    /// <c>lock_timeout</c> = <paramref name="timeoutMs"/> (0: no limit). <paramref name="then"/> runs in the same round
    /// trip and is read only when the lock is held; after a request that did not get the lock it has read nothing. The
    /// request takes <paramref name="then"/> over (a try wraps its text in that condition).
    /// </summary>
    private static async Task<bool> TakeAsync(NpgsqlConnection c, long key, bool queue, long timeoutMs, string resource, CancellationToken ct, bool sync,
        NpgsqlBatchCommand? then, Action<NpgsqlDataReader>? read)
    {
        // A queued wait is bounded by lock_timeout in the server, not by the client's command timeout. The queued lock is
        // one statement: its innermost subquery sets lock_timeout before the lock is asked for, and the outermost resets
        // it once the lock is held (a timeout aborts the statement's transaction, which undoes the setting too). A try
        // notes its answer in a session setting, and the pull that follows reads its rows only when that says the lock
        // is held (a condition the server checks once, before it reads anything). The pull is a second statement of
        // the same round trip, so its snapshot is taken after the lock is held.
        using var batch = new NpgsqlBatch(c) { Timeout = 0 };
        var lockCommand = new NpgsqlBatchCommand(queue
            ? "SELECT set_config('lock_timeout', '0', false) FROM (SELECT pg_advisory_lock($1) FROM (SELECT set_config('lock_timeout', $2, false)) t) l"
            : "SELECT set_config('syconn.lock_held', pg_try_advisory_lock($1)::text, false)");
        lockCommand.Parameters.Add(new() { Value = key });
        if (queue) lockCommand.Parameters.Add(new() { Value = timeoutMs.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        batch.BatchCommands.Add(lockCommand);
        if (then is not null)
        {
            if (!queue) then.CommandText = $"SELECT * FROM ({then.CommandText}) pulled WHERE current_setting('syconn.lock_held') = 'true'";
            batch.BatchCommands.Add(then);
        }
        // A synchronous batch of two statements has Npgsql write the second from a thread-pool thread (so that a big
        // batch cannot deadlock against the results of the first), a thread hand-over on every lock. This batch is
        // a few hundred bytes, written in one flush; on a blocking socket (BtSocketMode) Npgsql's asynchronous path
        // runs on the caller's thread from start to end, reads included, so a synchronous caller takes that path.
        bool inline = sync && then is not null && BtSocketMode.IsBlocking(c) == true;
        bool got = false;
        try
        {
            using var reg = sync && !inline ? ct.Register(() => { try { batch.Cancel(); } catch (Exception) { } }) : default;
            using var r = sync && !inline ? batch.ExecuteReader(System.Data.CommandBehavior.SequentialAccess)
                : inline ? batch.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct).GetAwaiter().GetResult()
                : await batch.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess, ct).ConfigureAwait(false);
            // The first result is the lock's: the try's answer, or the reset's row once the queued lock is held.
            got = r.Read() && (queue || r.GetString(0) == "true");
            if (r.NextResult() && then is not null && got) read?.Invoke(r);
            return got;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.LockNotAvailable)
        {
            return false;
        }
        catch (Exception e) when (ct.IsCancellationRequested && e is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } or OperationCanceledException or NpgsqlException)
        {
            Drop(c, got);
            throw new OperationCanceledException($"the wait for {resource} was cancelled", e, ct);
        }
        catch (NpgsqlException e)
        {
            Drop(c, got);
            throw new IOException($"could not take {resource}: the BT database cannot be reached or ended the session ({e.Message})", e);
        }
        catch
        {
            Drop(c, got);
            throw;
        }
    }

    /// <summary>
    /// After a failure that may have left the lock held on <paramref name="c"/> (the lock was granted, then its pull
    /// failed): releases every advisory lock of the session, or, when that fails too, has the pool close the connection
    /// instead of handing it out again, so the lock never stays with an idle pooled connection.
    /// </summary>
    private static void Drop(NpgsqlConnection c, bool mayHold)
    {
        // A broken connection is not pooled again, and its session (with the lock) ends with it.
        if (!mayHold || c.FullState != System.Data.ConnectionState.Open) return;
        try
        {
            using var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock_all()", c);
            cmd.ExecuteNonQuery();
            return;
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            // Fall through: the pool must not hand this connection out again.
        }
        NpgsqlConnection.ClearPool(c);
    }

    /// <summary>Who holds advisory lock <paramref name="key"/>: the backend pid and a description (application name, client, since when). Disposes <paramref name="c"/>.</summary>
    internal static (int? Pid, string? Holder) Holder(NpgsqlConnection c, long key)
    {
        using (c)
        {
            try
            {
                using var cmd = new NpgsqlCommand("""
                    SELECT a.pid, a.application_name, coalesce(host(a.client_addr), 'a local socket'), a.backend_start
                    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
                      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                      AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
                    LIMIT 1
                    """, c)
                {
                    Parameters = { new() { Value = (long)(uint)(key >> 32) }, new() { Value = (long)(uint)key } },
                };
                using var r = cmd.ExecuteReader();
                if (!r.Read()) return (null, "no session holds it any more");
                int pid = r.GetInt32(0);
                string app = r.IsDBNull(1) || r.GetString(1).Length == 0 ? "no application_name" : r.GetString(1);
                string from = r.GetString(2);
                string since = r.IsDBNull(3) ? "?" : r.GetDateTime(3).ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
                return (pid, $"application_name '{app}' from {from}, connected since {since}");
            }
            catch (NpgsqlException e)
            {
                return (null, $"could not be looked up ({e.Message})");
            }
        }
    }

    /// <summary>
    /// Takes the same lock on another server (where the store's partition moved) and then releases the old one, so
    /// the holder is never without it. Waits as the original acquisition did.
    /// </summary>
    public void MoveTo(BtDatabase db)
    {
        if (ReferenceEquals(db, _db)) return; // the map has not changed yet: keep the lock where it is
        var moved = Acquire(db, _identifier, _options, CancellationToken.None);
        _db = db;
        NpgsqlConnection? old;
        lock (_gate)
        {
            old = _connection;
            _connection = moved._connection;
            moved._connection = null;
        }
        if (old is not null) Release(old, Key);
    }

    /// <summary>Releases the lock and closes the pinned connection (idempotent). A broken connection has lost the lock already.</summary>
    public void Dispose()
    {
        NpgsqlConnection? c;
        lock (_gate)
        {
            c = _connection;
            _connection = null;
        }
        if (c is null) return;
        Release(c, Key);
    }

    private static void Release(NpgsqlConnection c, long key)
    {
        try
        {
            if (c.State == System.Data.ConnectionState.Open)
            {
                using var cmd = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", c) { Parameters = { new() { Value = key } } };
                cmd.ExecuteNonQuery();
            }
        }
        catch (Exception e) when (e is NpgsqlException or InvalidOperationException or IOException)
        {
            // A broken session is gone, and with it the lock. One that still works may hold the lock: pooled connections
            // are not reset (BtDatabase), so the pool must close it instead of handing it out again.
            if (c.FullState == System.Data.ConnectionState.Open) NpgsqlConnection.ClearPool(c);
        }
        finally
        {
            c.Dispose();
        }
    }
}
