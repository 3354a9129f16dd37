using System.Diagnostics;
using Npgsql;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Storage;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>Lost updates, dead lock holders and failed pushes on BT stores, with real worker processes.</summary>
public sealed class BtConcurrencyTests(ITestOutputHelper output)
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    private static long Counter(string address)
    {
        using var ad = AttributeDict.Open(address, BtTestDatabase.Options());
        return ad.TryGetValue(0, out var d) && ((PyDict)d).TryGetValue("n", out var n) ? (long)n : 0;
    }

    private void RunWorkers(string address, int workers, int each, string mode)
    {
        string cs = BtTestDatabase.ConnectionString;
        var children = Enumerable.Range(0, workers).Select(_ => ChildProcess.Cli("_bt-worker", address, each.ToString(), mode, cs)).ToList();
        try
        {
            foreach (var c in children)
            {
                Assert.Equal($"done {each}", c.ReadLine(300));
                Assert.True(c.WaitForExit(60) == 0, $"worker {c.Pid} failed: {c.Stderr}");
            }
        }
        finally
        {
            foreach (var c in children) c.Dispose();
        }
    }

    [SkippableFact]
    public void Eight_workers_doing_200_locked_increments_each_count_exactly_1600()
    {
        string address = "bt:" + _prefix + "locked";
        var sw = Stopwatch.StartNew();
        RunWorkers(address, 8, 200, "locked");
        output.WriteLine($"8 x 200 locked increments: {sw.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(1600, Counter(address));
        Assert.Equal(1600L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", _prefix + "locked"));
    }

    [SkippableFact]
    public void Eight_workers_doing_200_optimistic_increments_with_retries_count_exactly_1600()
    {
        string address = "bt:" + _prefix + "optimistic";
        var sw = Stopwatch.StartNew();
        RunWorkers(address, 8, 200, "optimistic");
        output.WriteLine($"8 x 200 optimistic increments: {sw.Elapsed.TotalSeconds:F2} s");
        Assert.Equal(1600, Counter(address));
    }

    [SkippableFact]
    public void An_optimistic_push_after_someone_else_pushed_raises_a_conflict_and_writes_nothing()
    {
        string address = "bt:" + _prefix + "conflict";
        var optimistic = BtTestDatabase.Options(StoreOptions.Writable with { Optimistic = true });
        using (var first = AttributeDict.Open(address, optimistic))
        {
            ((PyDict)first[0])["n"] = 1L;
            first.Push();
        }
        using var a = AttributeDict.Open(address, optimistic);
        using var b = AttributeDict.Open(address, optimistic);
        Assert.False(a.HoldsLock);
        ((PyDict)a[0])["n"] = 10L;
        ((PyDict)b[0])["n"] = 20L;
        a.Push();
        var e = Assert.Throws<StoreConflictException>(() => b.Push());
        Assert.Equal(1, e.PulledGeneration);
        Assert.Equal(2, e.CurrentGeneration);
        Assert.Contains(address, e.Message, StringComparison.Ordinal);
        Assert.Equal(10, Counter(address));

        // The helper reruns the whole read-modify-write on fresh content.
        int attempts = 0;
        OptimisticRetry.Run(() => AttributeDict.Open(address, optimistic), ad =>
        {
            if (attempts++ == 0)
            {
                using var other = AttributeDict.Open(address, optimistic);
                ((PyDict)other[0])["n"] = 100L;
                other.Push();
            }
            var d = (PyDict)ad[0];
            d["n"] = (long)d["n"] + 1;
        });
        Assert.Equal(2, attempts);
        Assert.Equal(101, Counter(address));
    }

    [SkippableFact]
    public void A_worker_killed_while_it_holds_the_lock_frees_the_store_once_the_server_sees_the_session_end()
    {
        string address = "bt:" + _prefix + "killed";
        using var holder = ChildProcess.Cli("_bt-worker", address, "0", "hold", BtTestDatabase.ConnectionString);
        Assert.Equal("locked", holder.ReadLine(120));

        var quick = BtTestDatabase.Options(StoreOptions.WritableLocked with { Timeout = 0.2 });
        var e = Assert.Throws<StorageLockTimeoutException>(() => AttributeDict.Open(address, quick));
        Assert.NotNull(e.HolderPid);
        Assert.Contains($"{holder.Pid}@", e.Message, StringComparison.Ordinal); // application_name pid@host
        Assert.Contains(address, e.Message, StringComparison.Ordinal);

        var sw = Stopwatch.StartNew();
        holder.Kill();
        using var next = AttributeDict.Open(address, BtTestDatabase.Options(StoreOptions.WritableLocked with { Timeout = 30 }));
        output.WriteLine($"the lock of a SIGKILLed holder was free after {sw.Elapsed.TotalMilliseconds:F1} ms");
        Assert.True(next.HoldsLock);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30));
    }

    [SkippableFact]
    public void A_push_that_fails_in_the_middle_of_its_transaction_leaves_the_previous_content()
    {
        string id = _prefix + "midway";
        string address = "bt:" + id;
        using (var cs = CompressedStorage.Open(address, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            for (int i = 0; i < 100; i++) cs[i] = SyConn.Backend.Arrays.NdArray.Create(new long[] { i });
            cs.Push();
        }
        string fn = "syconn_fail_" + Guid.NewGuid().ToString("N")[..8];
        BtTestDatabase.Scalar($"""
            CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.identifier = '{id}' AND NEW.seq = 150 THEN RAISE EXCEPTION 'injected failure'; END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {fn} BEFORE INSERT ON syconn.entries FOR EACH ROW EXECUTE FUNCTION {fn}();
            """);
        try
        {
            using var cs = CompressedStorage.Open(address, BtTestDatabase.Options(StoreOptions.Writable));
            for (int i = 0; i < 100; i++) cs[i] = SyConn.Backend.Arrays.NdArray.Create(new long[] { -i });
            for (int i = 100; i < 200; i++) cs[i] = SyConn.Backend.Arrays.NdArray.Create(new long[] { i });
            var e = Assert.Throws<IOException>(() => cs.Push());
            Assert.Contains("injected failure", e.Message, StringComparison.Ordinal);
            Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            BtTestDatabase.Scalar($"DROP TRIGGER {fn} ON syconn.entries; DROP FUNCTION {fn}();");
        }
        using var after = CompressedStorage.Open(address, BtTestDatabase.Options());
        Assert.Equal(100, after.Count);
        for (int i = 0; i < 100; i++) Assert.Equal([(long)i], after[i].ToArray<long>());
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
    }

    [SkippableFact]
    public void A_commit_whose_connection_dies_is_resolved_by_asking_the_server_and_here_wrote_nothing()
    {
        string id = _prefix + "lostcommit";
        var es = BtTestDatabase.Store(id);
        using var ad = AttributeDict.Open(es, BtTestDatabase.Options(StoreOptions.Writable));
        ((PyDict)ad[0])["n"] = 1L;
        ad.Push();
        ad.Pull(); // takes the lock again
        ((PyDict)ad[0])["n"] = 2L;
        es.BeforeCommit = c =>
        {
            // The server ends the session before it sees the COMMIT: the client cannot know the outcome.
            int pid = c.ProcessID;
            BtTestDatabase.Scalar("SELECT pg_terminate_backend($1)", pid);
        };
        var e = Assert.Throws<IOException>(() => ad.Push());
        Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        Assert.Contains("aborted", e.Message, StringComparison.Ordinal);
        es.BeforeCommit = null;
        Assert.Equal(1, Counter("bt:" + id));
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
    }

    [SkippableFact]
    public void The_outcome_of_an_unanswered_commit_is_read_from_the_server_not_guessed()
    {
        var es = BtTestDatabase.Store(_prefix + "resolve");
        using var ds = NpgsqlDataSource.Create(BtTestDatabase.ConnectionString);
        ulong Xid(bool commit)
        {
            using var c = ds.OpenConnection();
            using var tx = c.BeginTransaction();
            using var cmd = new NpgsqlCommand("SELECT pg_current_xact_id()::text", c, tx);
            ulong xid = ulong.Parse((string)cmd.ExecuteScalar()!);
            if (commit) tx.Commit(); else tx.Rollback();
            return xid;
        }
        var lost = new IOException("connection lost");
        es.ResolveUnknownCommit(Xid(commit: true), 0, lost); // committed: returns
        var e = Assert.Throws<IOException>(() => es.ResolveUnknownCommit(Xid(commit: false), 0, lost));
        Assert.Contains("aborted", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void The_outcome_of_an_unanswered_one_statement_push_is_read_from_the_tokens_the_store_keeps()
    {
        string id = _prefix + "tokens";
        var es = BtTestDatabase.Store(id);
        using (var ad = AttributeDict.Open(es, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            ((PyDict)ad[0])["n"] = 1L;
            ad.Push();
        }
        var first = (long[])BtTestDatabase.Scalar("SELECT pushes FROM syconn.stores WHERE identifier = $1", id)!;
        Assert.Single(first);
        // 70 more pushes, one row each (one statement) and a big one (a transaction with COPY): the newest 64 tokens are kept, newest first.
        for (int i = 0; i < 70; i++)
        {
            using var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable));
            int rows = i == 69 ? 100 : 1;
            for (int k = 0; k < rows; k++) ((PyDict)ad[k])["n"] = (long)i;
            ad.Push();
        }
        var kept = (long[])BtTestDatabase.Scalar("SELECT pushes FROM syconn.stores WHERE identifier = $1", id)!;
        Assert.Equal(BtSchema.PushTokens, kept.Length);
        Assert.Equal(kept.Length, kept.Distinct().Count());
        Assert.DoesNotContain(first[0], kept);
        Assert.Equal(71L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
        var lost = new IOException("connection lost");
        // A listed token: the push committed, and its place gives its generation.
        Assert.Equal(71L, es.ResolveUnknownPush(kept[0], 70, lost));
        Assert.Equal(68L, es.ResolveUnknownPush(kept[3], 60, lost));
        // Not listed, with fewer pushes since the pull than the store keeps: it did not commit.
        var e = Assert.Throws<IOException>(() => es.ResolveUnknownPush(first[0], 70, lost));
        Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        // Not listed, but so many pushes since the pull that it could have dropped out: no guess.
        e = Assert.Throws<IOException>(() => es.ResolveUnknownPush(first[0], 0, lost));
        Assert.Contains("cannot be told", e.Message, StringComparison.Ordinal);
        // A store that does not exist was not created by the push.
        e = Assert.Throws<IOException>(() => BtTestDatabase.Store(_prefix + "nothere").ResolveUnknownPush(5, 0, lost));
        Assert.Contains("does not exist", e.Message, StringComparison.Ordinal);
    }
}
