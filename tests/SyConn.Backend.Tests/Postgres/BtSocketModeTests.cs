using Npgsql;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// Connections used synchronously get blocking sockets (<see cref="BtSocketMode"/>), connections opened
/// asynchronously non-blocking ones, and both keep working: results, command timeouts, cancellation of a lock wait
/// and the lock statement's <c>lock_timeout</c> handling.
/// </summary>
public sealed class BtSocketModeTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    private static BtDatabase Db => BtDatabase.For(BtTestDatabase.ConnectionString);

    [SkippableFact]
    public void A_connection_opened_synchronously_has_a_blocking_socket_and_one_opened_asynchronously_a_non_blocking_one()
    {
        Skip.IfNot(OperatingSystem.IsLinux(), "the socket mode is switched on Linux only");
        Skip.IfNot(BtSocketMode.Enabled, "SYCONN_BT_BLOCKING_SOCKETS=0 is set");
        using (var c = Db.Open())
        {
            Assert.True(BtSocketMode.IsBlocking(c));
            using var cmd = new NpgsqlCommand("SELECT repeat('x', 1000000)", c);
            Assert.Equal(1_000_000, ((string)cmd.ExecuteScalar()!).Length);
        }
        // The pool hands the same physical connection back: asynchronous use switches it to non-blocking again.
        using (var c = Db.OpenAsync(CancellationToken.None).GetAwaiter().GetResult())
        {
            Assert.False(BtSocketMode.IsBlocking(c));
            using var cmd = new NpgsqlCommand("SELECT repeat('y', 1000000)", c);
            Assert.Equal(1_000_000, ((string)cmd.ExecuteScalarAsync().GetAwaiter().GetResult()!).Length);
        }
        using (var c = Db.Open())
            Assert.True(BtSocketMode.IsBlocking(c));
    }

    [SkippableFact]
    public void A_blocking_connection_still_times_out_a_statement_and_stays_usable_after_a_batch_of_several_statements()
    {
        using var c = Db.Open();
        using (var slow = new NpgsqlCommand("SELECT pg_sleep(30)", c) { CommandTimeout = 1 })
        {
            var e = Assert.ThrowsAny<Exception>(() => slow.ExecuteScalar());
            Assert.True(e is NpgsqlException { InnerException: TimeoutException } or TimeoutException, $"not a timeout: {e}");
        }
        using var again = Db.Open();
        using (var batch = new NpgsqlBatch(again) { BatchCommands = { new("SELECT 1"), new("SELECT repeat('z', 500000)"), new("SELECT 3") } })
        using (var r = batch.ExecuteReader())
        {
            Assert.True(r.Read());
            Assert.Equal(1, r.GetInt32(0));
            Assert.True(r.NextResult() && r.Read());
            Assert.Equal(500_000, r.GetString(0).Length);
            Assert.True(r.NextResult() && r.Read());
            Assert.Equal(3, r.GetInt32(0));
        }
        using var after = new NpgsqlCommand("SELECT 42", again);
        Assert.Equal(42, after.ExecuteScalar());
    }

    [SkippableFact]
    public void The_lock_statement_resets_lock_timeout_once_held_and_a_wait_ends_at_its_timeout_or_cancellation()
    {
        string id = _prefix + "lock";
        using (var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            cs[0] = NdArray.Create(new long[] { 7 });
            cs.Push();
        }
        var held = BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.FromSeconds(5) }, CancellationToken.None);
        try
        {
            using (var show = new NpgsqlCommand("SHOW lock_timeout", held.Connection!))
                Assert.Equal("0", show.ExecuteScalar());
            var e = Assert.Throws<StorageLockTimeoutException>(() =>
                BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.FromMilliseconds(200) }, CancellationToken.None));
            Assert.Contains("advisory lock", e.Message);
            // The waiter's lock_timeout applied: it gave up, and the holder still holds the lock.
            Assert.True(held.IsHeld);
            using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
                Assert.ThrowsAny<OperationCanceledException>(() =>
                    BtLock.Acquire(Db, id, new LockOptions { Timeout = Timeout.InfiniteTimeSpan }, cts.Token));
        }
        finally
        {
            held.Dispose();
        }
        // Released: a locked store opens at once and reads the value pushed before.
        using var again = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable));
        Assert.Equal(7L, again[0].ToArray<long>()[0]);
    }

    [SkippableFact]
    public void A_lock_with_its_pull_in_the_same_round_trip_waits_times_out_and_is_cancelled_on_the_callers_thread_and_reads_after_the_lock()
    {
        string id = _prefix + "lockpull";
        using (var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            cs[0] = NdArray.Create(new long[] { 1 });
            cs.Push();
        }
        static NpgsqlBatchCommand Read(string id) => new("SELECT generation FROM syconn.stores WHERE identifier = $1") { Parameters = { new() { Value = id } } };
        var held = BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.FromSeconds(5) }, CancellationToken.None);
        try
        {
            long? seen = null;
            var e = Assert.Throws<StorageLockTimeoutException>(() =>
                BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.FromMilliseconds(200) }, CancellationToken.None, Read(id), r => seen = r.Read() ? r.GetInt64(0) : -1));
            Assert.Contains("advisory lock", e.Message);
            Assert.Null(seen); // a wait that ended without the lock read nothing
            Assert.Throws<StorageLockTimeoutException>(() =>
                BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.Zero }, CancellationToken.None, Read(id), r => seen = r.Read() ? r.GetInt64(0) : -1));
            Assert.Null(seen); // nor did a single try
            using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200)))
                Assert.ThrowsAny<OperationCanceledException>(() =>
                    BtLock.Acquire(Db, id, new LockOptions { Timeout = Timeout.InfiniteTimeSpan }, cts.Token, Read(id), r => seen = 0));
            Assert.Null(seen);
            Assert.True(held.IsHeld);
            // A waiter that gets the lock once the holder's update is committed and the lock released reads the update:
            // the pull's snapshot is taken after the lock is held, not at the start of the round trip.
            var waiter = Task.Run(() =>
            {
                using var l = BtLock.Acquire(Db, id, new LockOptions { Timeout = TimeSpan.FromSeconds(30) }, CancellationToken.None, Read(id), r => seen = r.Read() ? r.GetInt64(0) : -1);
                Assert.True(l.IsHeld);
            });
            Thread.Sleep(300);
            Assert.False(waiter.IsCompleted);
            using (var bump = new NpgsqlCommand("UPDATE syconn.stores SET generation = generation + 10 WHERE identifier = $1", held.Connection!) { Parameters = { new() { Value = id } } })
                Assert.Equal(1, bump.ExecuteNonQuery());
            held.Dispose();
            Assert.True(waiter.Wait(TimeSpan.FromSeconds(30)));
            Assert.Equal(11L, seen);
        }
        finally
        {
            held.Dispose();
        }
        using var again = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable));
        Assert.Equal(1L, again[0].ToArray<long>()[0]);
    }

    [SkippableFact]
    public void A_locked_read_modify_write_runs_prepared_statements_unless_the_connection_string_turns_preparing_off()
    {
        foreach (bool off in new[] { false, true })
        {
            string cs = new NpgsqlConnectionStringBuilder(BtTestDatabase.ConnectionString) { ApplicationName = "prepare-" + off, MaxPoolSize = 1 }.ConnectionString
                + (off ? ";Max Auto Prepare=0" : "");
            string address = "bt:" + _prefix + "prepared" + off;
            var opts = new StoreOptions { ReadOnly = false, ConnectionString = cs };
            for (int i = 0; i < 4; i++)
            {
                using var store = CompressedStorage.Open(address, opts);
                store[0] = NdArray.Create(new long[] { i });
                store.Push();
            }
            // The pool has one connection, which ran the lock, the pull and the push several times: each is prepared once on it.
            long prepared;
            using (var c = BtDatabase.For(cs).Open())
            {
                using (var cmd = new NpgsqlCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%pg_advisory_lock%' OR statement LIKE '%generation = s.generation + 1%'", c))
                    prepared = (long)cmd.ExecuteScalar()!;
                // Pooled connections are not reset between uses: the one that held the lock four times has no lock and
                // no setting left over.
                Assert.True(new NpgsqlConnectionStringBuilder(BtDatabase.For(cs).DataSource.ConnectionString).NoResetOnClose);
                using var state = new NpgsqlCommand("SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()), current_setting('lock_timeout')", c);
                using var r = state.ExecuteReader();
                Assert.True(r.Read());
                Assert.Equal(0L, r.GetInt64(0));
                Assert.Equal("0", r.GetString(1));
            }
            if (off) Assert.Equal(0L, prepared);
            else Assert.True(prepared >= 2, $"{prepared} of the lock and push statements prepared");
            using var back = CompressedStorage.Open(address, new StoreOptions { ConnectionString = cs });
            Assert.Equal(3L, back[0].ToArray<long>()[0]);
        }
    }

    [SkippableFact]
    public void A_small_push_is_planned_once_even_beside_a_big_store()
    {
        // One big store beside a small one: planned with its values, the push of a small store looks cheaper than its
        // generic plan, and the server would plan it on every push unless the statement hides the values it filters on.
        PgServer.RequireAvailable();
        string db = BtTestDatabase.NewDatabase(PgServer.Shared, "plans");
        using (var big = CompressedStorage.Open("bt:big", new StoreOptions { ReadOnly = false, ConnectionString = db }))
        {
            for (int i = 0; i < 3000; i++) big[i] = NdArray.Create(new long[] { i });
            big.Push();
        }
        BtTestDatabase.ScalarOn(db, "ANALYZE syconn.entries");
        string cs = new NpgsqlConnectionStringBuilder(db) { ApplicationName = "plans", MaxPoolSize = 1 }.ConnectionString;
        var opts = new StoreOptions { ReadOnly = false, ConnectionString = cs };
        for (int i = 0; i < 12; i++)
        {
            using var store = CompressedStorage.Open("bt:small", opts);
            store[i % 3] = NdArray.Create(new long[] { i });
            store.Push();
        }
        using var c = BtDatabase.For(cs).Open();
        using var cmd = new NpgsqlCommand("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%put AS (%'", c);
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read(), "the push statement is prepared");
        long generic = r.GetInt64(0), custom = r.GetInt64(1);
        // The server tries the statement with its values five times before it compares; after that the generic plan serves.
        Assert.True(generic >= 5, $"{generic} generic and {custom} custom plans of the push");
        Assert.True(custom <= 5, $"{generic} generic and {custom} custom plans of the push");
    }

    [SkippableFact]
    public void A_lock_whose_pull_fails_is_released_at_once_not_left_with_the_pooled_connection()
    {
        string id = _prefix + "failedpull";
        long key = BtLock.KeyOf(id);
        foreach (var timeout in new[] { TimeSpan.FromSeconds(5), TimeSpan.Zero })
        {
            var failing = new NpgsqlBatchCommand("SELECT 1 / (SELECT count(*) FROM syconn.stores WHERE identifier = $1)::int") { Parameters = { new() { Value = id } } };
            Assert.ThrowsAny<Exception>(() => BtLock.Acquire(Db, id, new LockOptions { Timeout = timeout }, CancellationToken.None, failing, r => r.Read()));
            // Another session (not from this process's pool) finds the lock free.
            using var other = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(BtTestDatabase.ConnectionString) { Pooling = false }.ConnectionString);
            other.Open();
            using var take = new NpgsqlCommand("SELECT pg_try_advisory_lock($1), pg_advisory_unlock($1)", other) { Parameters = { new() { Value = key } } };
            using var r = take.ExecuteReader();
            Assert.True(r.Read());
            Assert.True(r.GetBoolean(0), $"the lock stayed held after a failed pull (timeout {timeout})");
        }
    }
}
