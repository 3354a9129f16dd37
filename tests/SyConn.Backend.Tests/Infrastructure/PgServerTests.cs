using System.Diagnostics;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>The test servers themselves: settings, isolation, restarts, crash recovery, postgres_fdw.</summary>
public class PgServerTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Started_server_answers_over_its_own_socket_with_the_test_settings()
    {
        PgServer.RequireAvailable();
        string root;
        var started = Stopwatch.StartNew();
        using (var pg = PgServer.Start("select-one"))
        {
            output.WriteLine($"initdb and start took {started.ElapsedMilliseconds} ms ({pg.BinDir})");
            root = Path.GetDirectoryName(pg.DataDir)!;
            Assert.StartsWith("syconn-pg-", Path.GetFileName(root));
            Assert.Equal("1", pg.Psql("SELECT 1"));
            Assert.True(File.Exists(Path.Combine(pg.SocketDir, $".s.PGSQL.{pg.Port}")), "socket file missing");
            Assert.Equal($"Host={pg.SocketDir};Port={pg.Port};Username=postgres;Database=postgres", pg.ConnectionString);
            Assert.True(pg.IsRunning);
            Assert.NotNull(pg.PostmasterPid);

            var settings = pg.Psql(
                "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) FROM pg_settings WHERE name IN " +
                "('listen_addresses','unix_socket_directories','port','fsync','synchronous_commit','max_connections','shared_preload_libraries','server_encoding','lc_collate')");
            Assert.Equal(
                $"fsync=off,lc_collate=C,listen_addresses=,max_connections=200,port={pg.Port},server_encoding=UTF8," +
                $"shared_preload_libraries=,synchronous_commit=on,unix_socket_directories={pg.SocketDir}",
                settings);
            Assert.Equal("postgres|true", pg.Psql("SELECT current_user || '|' || rolsuper FROM pg_roles WHERE rolname = current_user"));
        }
        Assert.False(Directory.Exists(root), "the server's temp folder outlived Dispose");
    }

    [SkippableFact]
    public void Psql_failure_throws_with_the_server_message()
    {
        PgServer.RequireAvailable();
        var e = Assert.Throws<InvalidOperationException>(() => PgServer.Shared.Psql("SELECT * FROM table_that_is_not_there"));
        Assert.Contains("table_that_is_not_there", e.Message);
        Assert.Contains("does not exist", e.Message);
    }

    [SkippableFact]
    public void Two_servers_run_at_once_each_with_its_own_socket_and_data()
    {
        PgServer.RequireAvailable();
        using var a = PgServer.Start("two-a");
        using var b = PgServer.Start("two-b");
        Assert.NotEqual(a.SocketDir, b.SocketDir);
        Assert.NotEqual(a.Port, b.Port);
        Assert.NotEqual(a.DataDir, b.DataDir);
        Assert.NotEqual(a.PostmasterPid, b.PostmasterPid);

        a.Psql("CREATE TABLE only_in_a (x int)");
        Assert.Equal("1", a.Psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'"));
        Assert.Equal("0", b.Psql("SELECT count(*) FROM pg_class WHERE relname = 'only_in_a'"));
        Assert.Equal(a.DataDir, a.Psql("SHOW data_directory"));
        Assert.Equal(b.DataDir, b.Psql("SHOW data_directory"));
    }

    [SkippableFact]
    public void Immediate_restart_keeps_committed_rows_through_crash_recovery()
    {
        PgServer.RequireAvailable();
        using var pg = PgServer.Start("restart");
        pg.Psql("CREATE TABLE t (i int PRIMARY KEY, s text)");
        pg.Psql("INSERT INTO t SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g");
        pg.Psql("UPDATE t SET s = 'changed' WHERE i <= 10");
        var pidBefore = pg.PostmasterPid;

        pg.Restart("immediate");

        Assert.True(pg.IsRunning);
        Assert.NotEqual(pidBefore, pg.PostmasterPid);
        Assert.Equal("5000", pg.Psql("SELECT count(*) FROM t"));
        Assert.Equal("10", pg.Psql("SELECT count(*) FROM t WHERE s = 'changed'"));
        // The immediate stop skipped the shutdown checkpoint, so the rows came back from the WAL.
        Assert.Contains("automatic recovery in progress", File.ReadAllText(pg.LogFile));
    }

    [SkippableFact]
    public void Stopped_server_refuses_connections_and_starts_again_with_its_data()
    {
        PgServer.RequireAvailable();
        using var pg = PgServer.Start("stop-start");
        pg.Psql("CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before stop')");
        var socket = Path.Combine(pg.SocketDir, $".s.PGSQL.{pg.Port}");

        pg.Stop();
        Assert.False(pg.IsRunning);
        Assert.Null(pg.PostmasterPid);
        Assert.False(File.Exists(socket), "socket file left behind by a stopped server");
        Assert.Throws<InvalidOperationException>(() => pg.Psql("SELECT 1"));

        pg.StartAgain();
        Assert.True(pg.IsRunning);
        Assert.True(File.Exists(socket), "restarted server is not on the same socket");
        Assert.Equal("before stop", pg.Psql("SELECT v FROM kept"));
        // Shut down cleanly this time: no recovery was needed.
        Assert.DoesNotContain("automatic recovery in progress", File.ReadAllText(pg.LogFile));
    }

    [SkippableFact]
    public void Postgres_fdw_reads_a_table_of_another_database_over_the_socket()
    {
        PgServer.RequireAvailable();
        var pg = PgServer.Shared;
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var remote = "fdw_remote_" + suffix;
        var local = "fdw_local_" + suffix;
        pg.CreateDatabase(remote);
        pg.CreateDatabase(local);
        pg.Psql("CREATE TABLE items (id int, name text); INSERT INTO items VALUES (1, 'one'), (2, 'two')", remote);

        pg.Psql("CREATE EXTENSION postgres_fdw", local);
        Assert.Equal("postgres_fdw", pg.Psql("SELECT extname FROM pg_extension WHERE extname = 'postgres_fdw'", local));
        pg.Psql(
            $"CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '{pg.SocketDir}', port '{pg.Port}', dbname '{remote}');" +
            "CREATE USER MAPPING FOR postgres SERVER other OPTIONS (user 'postgres');" +
            "CREATE FOREIGN TABLE items (id int, name text) SERVER other;",
            local);
        Assert.Equal("1:one,2:two", pg.Psql("SELECT string_agg(id || ':' || name, ',' ORDER BY id) FROM items", local));
    }

    [SkippableFact]
    public void Shared_is_one_running_server_that_dispose_leaves_running()
    {
        PgServer.RequireAvailable();
        var shared = PgServer.Shared;
        Assert.Same(shared, PgServer.Shared);
        Assert.Equal("shared", shared.Name);
        shared.Dispose();
        Assert.True(shared.IsRunning);
        Assert.Equal("1", shared.Psql("SELECT 1"));
    }

    [SkippableFact]
    public void Run_dir_files_name_the_data_dir_and_postmaster_and_go_with_the_server()
    {
        PgServer.RequireAvailable();
        // scripts/test.sh sets SYCONN_PG_RUNDIR; outside it, use a folder of our own for this test.
        var given = Environment.GetEnvironmentVariable("SYCONN_PG_RUNDIR");
        using var own = given is null ? new TempDir() : null;
        var runDir = given ?? own!.Path;
        if (given is null) Environment.SetEnvironmentVariable("SYCONN_PG_RUNDIR", runDir);
        try
        {
            string marker, pidFile;
            using (var pg = PgServer.Start("run-dir"))
            {
                var unique = Path.GetFileName(Path.GetDirectoryName(pg.DataDir)!);
                marker = Path.Combine(runDir, unique + ".datadir");
                pidFile = Path.Combine(runDir, unique + ".pid");
                Assert.Equal(pg.DataDir, File.ReadAllText(marker).Trim());
                Assert.Equal(pg.PostmasterPid.ToString(), File.ReadAllText(pidFile).Trim());

                pg.Restart("fast");
                Assert.Equal(pg.PostmasterPid.ToString(), File.ReadAllText(pidFile).Trim());
                pg.Stop("immediate");
                Assert.False(File.Exists(pidFile), "pid file of a stopped server");
                Assert.True(File.Exists(marker), "the marker must stay until the folder is gone");
            }
            Assert.False(File.Exists(marker), "marker outlived Dispose");
        }
        finally
        {
            if (given is null) Environment.SetEnvironmentVariable("SYCONN_PG_RUNDIR", null);
        }
    }
}
