using Npgsql;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>A server that crashes and restarts in the middle of a run of pushes loses none that were acknowledged.</summary>
public sealed class BtServerRestartTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void An_immediate_restart_mid_run_loses_no_acknowledged_push()
    {
        PgServer.RequireAvailable();
        using var server = PgServer.Start("restart");
        var options = new StoreOptions { ReadOnly = false, ConnectionString = server.ConnectionString, Timeout = 30 };
        const string address = "bt:restart/counter";
        long acknowledged = 0;
        int failures = 0;
        var started = StartTime(server.ConnectionString);
        long ackBefore = 0, ackAfter = 0;
        var restarted = new ManualResetEventSlim();
        var restarter = Task.Run(() =>
        {
            while (Interlocked.Read(ref acknowledged) < 100) Thread.Sleep(5);
            ackBefore = Interlocked.Read(ref acknowledged);
            server.Restart("immediate"); // the postmaster and every backend die at once, then recovery runs
            ackAfter = Interlocked.Read(ref acknowledged);
            restarted.Set();
        });
        long target = long.MaxValue;
        while (acknowledged < target)
        {
            if (restarted.IsSet && target == long.MaxValue) target = acknowledged + 100; // go on a while after the restart
            try
            {
                using var ad = AttributeDict.Open(address, options);
                var d = (PyDict)ad[0];
                long n = d.TryGetValue("n", out var v) ? (long)v : 0;
                Assert.Equal(acknowledged, n); // every acknowledged push is there, and nothing else
                d["n"] = n + 1;
                ad.Push();
                Interlocked.Increment(ref acknowledged);
            }
            catch (IOException e) when (e is not StorageLockTimeoutException)
            {
                // The server is down or restarting: the push was not acknowledged (an unknown commit would have been
                // resolved by asking the server, and reported as written or not); redo it once the server is back.
                Assert.DoesNotContain("could not be asked", e.Message, StringComparison.Ordinal);
                Assert.True(++failures < 500, $"the server did not come back: {e.Message}");
                Thread.Sleep(20);
            }
        }
        Assert.True(restarter.Wait(TimeSpan.FromSeconds(60)), "the restart did not finish");
        // Whether an attempt meets the server down is up to timing (on a busy machine the loop can be between two
        // cycles for the whole restart, and the next one finds the server up): that the server restarted in the
        // middle of the run, with pushes acknowledged before and after it, is what the test needs.
        output.WriteLine($"{failures} failed attempts while the server restarted; {ackBefore} pushes before the restart, {ackAfter} when it had finished");
        Assert.NotEqual(started, StartTime(server.ConnectionString));
        Assert.True(acknowledged >= 200);
        using var check = AttributeDict.Open(address, options with { ReadOnly = true });
        Assert.Equal(acknowledged, (long)((PyDict)check[0])["n"]);
    }

    private static DateTime StartTime(string connectionString)
    {
        using var c = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand("SELECT pg_postmaster_start_time()", c);
        return ((DateTime)cmd.ExecuteScalar()!).ToUniversalTime();
    }
}
