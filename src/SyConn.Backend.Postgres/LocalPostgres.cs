using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// A private PostgreSQL server in a temporary folder, for benchmarks and tests: <c>initdb</c> into the folder, a
/// server that listens only on a Unix socket in that folder, and <see cref="Dispose"/> stops it and deletes the
/// folder. The server keeps PostgreSQL's default settings (fsync on, synchronous commit), so what is measured on it
/// is what users get.
/// </summary>
/// <remarks>
/// <para>The binaries are the highest version under <c>/usr/lib/postgresql/VERSION/bin</c>, else the folder
/// <c>pg_config --bindir</c> names. initdb and pg_ctl refuse to run as root, so a root process hands the folder to
/// the <c>postgres</c> user and runs them through <c>runuser -u postgres --</c>.</para>
/// <para>The server stops when the object is disposed, and also when the process exits normally or is interrupted
/// (SIGINT, SIGTERM, SIGHUP) before that. For a process that dies without running any code (SIGKILL, a crash), a
/// small watcher shell started with the server notices the end of its pipe from this process and stops the server
/// (immediate shutdown) and deletes the folder.</para>
/// </remarks>
internal sealed class LocalPostgres : IDisposable
{
    private const string ServiceUser = "postgres";

    /// <summary>A socket path is at most 107 bytes on Linux (sun_path).</summary>
    private const int MaxSocketPath = 107;

    /// <summary>
    /// The watcher: a shell that waits on a pipe from this process. A line <c>stopped</c> ends it quietly; end of
    /// file without one (this process died, even by SIGKILL) makes it stop the server and delete the folder.
    /// Arguments: folder, data folder, pg_ctl, then the command prefix that runs pg_ctl (runuser ... or nothing).
    /// </summary>
    private const string WatcherScript = """
        trap '' INT HUP
        exec >/dev/null 2>&1
        if read -r line && [ "$line" = stopped ]; then exit 0; fi
        root=$1; data=$2; pgctl=$3; shift 3
        if [ -f "$data/postmaster.pid" ]; then "$@" "$pgctl" stop -D "$data" -m immediate -w -t 30; fi
        rm -rf "$root"
        """;

    private readonly object _gate = new();
    private readonly List<PosixSignalRegistration> _signals = [];
    private Process? _watcher;
    private bool _stopped;

    private LocalPostgres(string binDir, string rootDir, int port, bool asServiceUser)
    {
        BinDir = binDir;
        RootDir = rootDir;
        DataDir = Path.Combine(rootDir, "data");
        SocketDir = rootDir;
        LogFile = Path.Combine(rootDir, "server.log");
        Port = port;
        AsServiceUser = asServiceUser;
        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = SocketDir,
            Port = port,
            Username = ServiceUser,
            Database = "postgres",
        }.ConnectionString;
    }

    /// <summary>The folder of <c>initdb</c>, <c>pg_ctl</c>, <c>postgres</c> (and usually <c>psql</c>).</summary>
    public string BinDir { get; }

    /// <summary>The temporary folder that holds everything (deleted by <see cref="Dispose"/>).</summary>
    public string RootDir { get; }

    /// <summary>The server's data folder.</summary>
    public string DataDir { get; }

    /// <summary>The folder of the server's Unix socket (<c>.s.PGSQL.PORT</c>).</summary>
    public string SocketDir { get; }

    /// <summary>The port number (it only names the socket: the server listens on no TCP address).</summary>
    public int Port { get; }

    /// <summary>The server's log.</summary>
    public string LogFile { get; }

    /// <summary>True when the server runs as the <c>postgres</c> user because this process is root.</summary>
    public bool AsServiceUser { get; }

    /// <summary>The Npgsql connection string of the server (user and database <c>postgres</c>, trust authentication).</summary>
    public string ConnectionString { get; }

    /// <summary>The <c>psql</c> of the server's version, or the one on PATH; null when there is none.</summary>
    public string? Psql => FindPsql(BinDir);

    /// <summary>True when the server binaries can be found (see <see cref="FindBinDir"/>).</summary>
    public static bool BinariesAvailable => TryFindBinDir() is not null;

    /// <summary>The folder of the PostgreSQL server binaries.</summary>
    /// <exception cref="InvalidOperationException">None is installed (the message says what to install).</exception>
    public static string FindBinDir() => TryFindBinDir() ?? throw new InvalidOperationException(
        "the PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found under /usr/lib/postgresql/*/bin or by pg_config --bindir; " +
        "install them (Debian/Ubuntu: apt-get install postgresql), or set SYCONN_BT to the connection string of a running server");

    /// <summary>The folder of the PostgreSQL server binaries, or null.</summary>
    public static string? TryFindBinDir()
    {
        const string debianRoot = "/usr/lib/postgresql";
        if (Directory.Exists(debianRoot))
        {
            var versions = Directory.GetDirectories(debianRoot)
                .Select(d => (Dir: d, Version: double.TryParse(Path.GetFileName(d), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : -1))
                .Where(x => x.Version >= 0 && HasServer(Path.Combine(x.Dir, "bin")))
                .OrderByDescending(x => x.Version)
                .ToList();
            if (versions.Count > 0) return Path.Combine(versions[0].Dir, "bin");
        }
        try
        {
            var (code, output, _) = RunProcess("pg_config", ["--bindir"], workingDirectory: null, TimeSpan.FromSeconds(20));
            var dir = output.Trim();
            if (code == 0 && dir.Length > 0 && HasServer(dir)) return dir;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // no pg_config on PATH
        }
        return null;
    }

    /// <summary>The <c>psql</c> next to the server binaries of <paramref name="binDir"/> (if given), else the first on PATH.</summary>
    public static string? FindPsql(string? binDir = null)
    {
        if (binDir is not null && File.Exists(Path.Combine(binDir, "psql"))) return Path.Combine(binDir, "psql");
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            if (File.Exists(Path.Combine(dir, "psql"))) return Path.Combine(dir, "psql");
        return null;
    }

    private static bool HasServer(string bin) =>
        File.Exists(Path.Combine(bin, "initdb")) && File.Exists(Path.Combine(bin, "pg_ctl")) && File.Exists(Path.Combine(bin, "postgres"));

    /// <summary>
    /// Creates a database in a new folder under <paramref name="baseDir"/> (default: the temporary folder), starts a
    /// server on it and returns once the server accepts connections.
    /// </summary>
    /// <exception cref="InvalidOperationException">The binaries are missing, or the server could not be set up or
    /// started (the message has the tool's output or the server log; nothing is left running).</exception>
    public static LocalPostgres Start(string? baseDir = null)
    {
        string bin = FindBinDir();
        bool asService = Environment.IsPrivilegedProcess;
        if (asService && !OperatingSystem.IsWindows()) CheckServiceUser();
        string parent = Path.GetFullPath(baseDir ?? Path.GetTempPath());
        Directory.CreateDirectory(parent);
        string root = Path.Combine(parent, "syconn-pg-" + Guid.NewGuid().ToString("N")[..10]);
        int port = FreePort();
        var server = new LocalPostgres(bin, root, port, asService);
        int socketPathLength = Encoding.UTF8.GetByteCount(Path.Combine(server.SocketDir, $".s.PGSQL.{port}"));
        if (socketPathLength > MaxSocketPath)
            throw new InvalidOperationException($"the folder {parent} is too deep for a Unix socket ({socketPathLength} bytes, at most {MaxSocketPath}); start the server under a shorter folder");
        Directory.CreateDirectory(root);
        try
        {
            server.RegisterStopOnExit();
            server.SetUp();
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private void SetUp()
    {
        if (AsServiceUser)
        {
            Run("chown", ["-R", $"{ServiceUser}:", RootDir], asServiceUser: false);
            var (code, _, _) = RunProcess("runuser", ["-u", ServiceUser, "--", "test", "-w", RootDir], RootDir, TimeSpan.FromSeconds(20));
            if (code != 0)
                throw new InvalidOperationException($"the user '{ServiceUser}' cannot write to {RootDir} (a folder on its way is closed to it); start the server under a folder that user can reach, such as /tmp");
        }
        // --no-sync only skips initdb's fsync of the fresh files; the server itself keeps fsync on.
        Run(Path.Combine(BinDir, "initdb"), ["-D", DataDir, "--auth=trust", "-U", ServiceUser, "-E", "UTF8", "--locale=C", "--no-sync"], AsServiceUser);
        File.AppendAllText(Path.Combine(DataDir, "postgresql.conf"),
            $"""

             # syconn LocalPostgres: a Unix socket in the folder, no TCP
             listen_addresses = ''
             unix_socket_directories = '{SocketDir.Replace("'", "''", StringComparison.Ordinal)}'
             port = {Port.ToString(CultureInfo.InvariantCulture)}

             """);
        StartWatcher();
        try
        {
            Run(Path.Combine(BinDir, "pg_ctl"), ["-D", DataDir, "-l", LogFile, "-w", "-t", "60", "-s", "start"], AsServiceUser);
        }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException($"{e.Message}; server log: {LogTail()}", e);
        }
        WaitForConnections(TimeSpan.FromSeconds(30));
    }

    private void StartWatcher()
    {
        if (OperatingSystem.IsWindows()) return;
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardInput = true, UseShellExecute = false, WorkingDirectory = "/" };
        foreach (var a in new[] { "-c", WatcherScript, "syconn-pg-watcher", RootDir, DataDir, Path.Combine(BinDir, "pg_ctl") }) psi.ArgumentList.Add(a);
        if (AsServiceUser) foreach (var a in new[] { "runuser", "-u", ServiceUser, "--" }) psi.ArgumentList.Add(a);
        _watcher = Process.Start(psi) ?? throw new InvalidOperationException("could not start /bin/sh to watch the server");
    }

    private void StopWatcher()
    {
        var w = _watcher;
        _watcher = null;
        if (w is null) return;
        try
        {
            w.StandardInput.WriteLine("stopped");
            w.StandardInput.Close();
            w.WaitForExit(5000);
        }
        catch (Exception e) when (e is IOException or InvalidOperationException)
        {
            // it is gone already
        }
        finally
        {
            w.Dispose();
        }
    }

    private void WaitForConnections(TimeSpan limit)
    {
        var sw = Stopwatch.StartNew();
        var cs = new NpgsqlConnectionStringBuilder(ConnectionString) { Pooling = false, Timeout = 5 }.ConnectionString;
        while (true)
        {
            try
            {
                using var c = new NpgsqlConnection(cs);
                c.Open();
                using var cmd = new NpgsqlCommand("SELECT 1", c);
                cmd.ExecuteScalar();
                return;
            }
            catch (Exception e) when (e is NpgsqlException or SocketException or TimeoutException)
            {
                if (sw.Elapsed > limit)
                    throw new InvalidOperationException($"the PostgreSQL server in {RootDir} did not accept connections within {limit.TotalSeconds:F0} s: {e.Message}; server log: {LogTail()}", e);
                Thread.Sleep(100);
            }
        }
    }

    private string LogTail()
    {
        try
        {
            if (!File.Exists(LogFile)) return "(none)";
            var lines = File.ReadAllLines(LogFile);
            return string.Join(" | ", lines.Skip(Math.Max(0, lines.Length - 8)));
        }
        catch (IOException e)
        {
            return $"(unreadable: {e.Message})";
        }
    }

    private static void CheckServiceUser()
    {
        try
        {
            var (code, _, err) = RunProcess("runuser", ["-u", ServiceUser, "--", "true"], "/", TimeSpan.FromSeconds(20));
            if (code != 0)
                throw new InvalidOperationException($"running as root, the server must run as the user '{ServiceUser}', which runuser cannot become ({err.Trim()}); the postgresql package creates that user (apt-get install postgresql)");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"running as root, the server must run as the user '{ServiceUser}' through runuser, which is missing ({e.Message}); run as another user or install util-linux", e);
        }
    }

    /// <summary>A TCP port number nobody listens on (the server only uses it to name its socket and lock file).</summary>
    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        try
        {
            return ((IPEndPoint)l.LocalEndpoint).Port;
        }
        finally
        {
            l.Stop();
        }
    }

    private void RegisterStopOnExit()
    {
        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
        if (OperatingSystem.IsWindows()) return;
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM, PosixSignal.SIGHUP })
            _signals.Add(PosixSignalRegistration.Create(signal, OnSignal));
    }

    private void OnProcessExit(object? sender, EventArgs e) => Dispose();

    // The default action of the signal (ending the process) follows once the server is stopped.
    private void OnSignal(PosixSignalContext context) => Dispose();

    /// <summary>Stops the server (fast shutdown: open sessions are ended) and deletes its folder. Idempotent and thread-safe.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_stopped) return;
            _stopped = true;
        }
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        foreach (var s in _signals) s.Dispose();
        _signals.Clear();
        Stop();
        DeleteFolder();
        StopWatcher();
    }

    private void Stop()
    {
        string pidFile = Path.Combine(DataDir, "postmaster.pid");
        if (!File.Exists(pidFile)) return;
        int? pid = ReadPostmasterPid(pidFile);
        foreach (var (mode, seconds) in new[] { ("fast", "30"), ("immediate", "10") })
        {
            try
            {
                Run(Path.Combine(BinDir, "pg_ctl"), ["-D", DataDir, "-m", mode, "-w", "-t", seconds, "-s", "stop"], AsServiceUser);
                return;
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception)
            {
                // try the next way
            }
        }
        // pg_ctl could not stop it (or it was gone): end the postmaster this object started, by its pid.
        if (pid is int p) KillIfRunning(p);
    }

    private static int? ReadPostmasterPid(string pidFile)
    {
        try
        {
            var first = File.ReadLines(pidFile).FirstOrDefault();
            return int.TryParse(first, NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static void KillIfRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            if (!p.HasExited && p.ProcessName.StartsWith("postgres", StringComparison.Ordinal))
            {
                p.Kill(entireProcessTree: false);
                p.WaitForExit(10_000);
            }
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // gone already
        }
    }

    private void DeleteFolder()
    {
        for (int attempt = 0; attempt < 5 && Directory.Exists(RootDir); attempt++)
        {
            try
            {
                Directory.Delete(RootDir, recursive: true);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Thread.Sleep(200);
            }
        }
    }

    /// <summary>Runs a tool (as the <c>postgres</c> user when <paramref name="asServiceUser"/>); throws with its output when it fails.</summary>
    private void Run(string file, string[] args, bool asServiceUser)
    {
        var (f, a) = asServiceUser ? ("runuser", (string[])["-u", ServiceUser, "--", file, .. args]) : (file, args);
        var (code, output, error) = RunProcess(f, a, RootDir, TimeSpan.FromSeconds(120));
        if (code != 0)
            throw new InvalidOperationException($"{Path.GetFileName(file)} failed (exit {code}): {(error + " " + output).Trim().ReplaceLineEndings(" ")}");
    }

    private static (int Code, string Output, string Error) RunProcess(string file, string[] args, string? workingDirectory, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        // The tools run in the server's folder: a folder the postgres user cannot enter makes initdb fail.
        if (workingDirectory is not null && Directory.Exists(workingDirectory)) psi.WorkingDirectory = workingDirectory;
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var v in new[] { "PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS" }) psi.Environment.Remove(v);
        psi.Environment["LC_ALL"] = "C";
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new InvalidOperationException($"{Path.GetFileName(file)} did not finish within {timeout.TotalSeconds:F0} s");
        }
        p.WaitForExit();
        return (p.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
