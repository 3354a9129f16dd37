using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// A real PostgreSQL server for tests: its own temp folder (<c>syconn-pg-*</c> with <c>data</c>, the
/// socket folder <c>s</c> and <c>server.log</c>), reachable only through a Unix socket, with trust
/// authentication for the superuser <c>postgres</c>.
/// </summary>
/// <remarks>
/// <para>The binaries come from <c>/usr/lib/postgresql/&lt;highest version&gt;/bin</c> (Debian keeps them
/// off PATH), else from <c>pg_config --bindir</c>. When the tests run as root, initdb and pg_ctl run as
/// the system user <c>postgres</c> through <c>runuser</c>, since the server refuses to run as root.</para>
/// <para><c>fsync=off</c>: the tests only simulate process crashes (immediate shutdown), never power
/// loss, and the operating system keeps what a crashed process wrote. <c>synchronous_commit</c> stays
/// on, so a commit that returned is in the WAL when the server is killed.</para>
/// <para>Every server still running is stopped (<c>-m immediate</c>) and its folder deleted at process
/// exit. Since vstest may kill the test host before that is done, and a crashed host runs no exit
/// handler, a watcher shell started with the first server does the same once this process is gone.
/// When <c>SYCONN_PG_RUNDIR</c> is set, each server also leaves <c>&lt;folder&gt;.datadir</c> (its data
/// dir) and <c>&lt;folder&gt;.pid</c> (the postmaster pid while it runs) there, so that
/// <c>scripts/test.sh</c> can stop the servers of a test host that died as a last resort.</para>
/// </remarks>
internal sealed class PgServer : IDisposable
{
    private const string Superuser = "postgres";
    private const string ServiceUser = "postgres";
    private const string VersionedRoot = "/usr/lib/postgresql";
    private const int PgCtlWaitSeconds = 60;
    private const int ReadyWaitSeconds = 30;
    private const int ToolTimeoutSeconds = 120;

    /// <summary>The longest socket path the kernel accepts (sun_path holds 108 bytes with the NUL).</summary>
    private const int SocketPathLimit = 107;

    private static readonly string[] RequiredTools = ["initdb", "pg_ctl", "postgres", "psql", "pg_isready"];

    private static readonly bool AsRoot = IsRoot();
    private static readonly Lazy<(string? BinDir, string? Missing)> Binaries = new(FindBinaries);
    private static readonly Lazy<PgServer> SharedServer = new(StartShared, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly object Gate = new();
    private static readonly List<PgServer> Live = [];
    private static readonly HashSet<int> PortsInUse = [];
    private static readonly Lazy<string?> WatcherDir = new(StartWatcher, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Holds the write end of the watcher's stdin open for as long as this process lives.</summary>
    private static Process? _watcher;

    private readonly string _root;
    private readonly string[] _markerFiles;
    private readonly string? _pidFile;
    private bool _isShared;
    private bool _disposed;

    static PgServer() => AppDomain.CurrentDomain.ProcessExit += (_, _) => StopAllAtExit();

    private PgServer(string name, string root, int port, string binDir)
    {
        Name = name;
        _root = root;
        Port = port;
        BinDir = binDir;
        DataDir = Path.Combine(root, "data");
        SocketDir = Path.Combine(root, "s");
        LogFile = Path.Combine(root, "server.log");
        ConnectionString = $"Host={SocketDir};Port={Port};Username={Superuser};Database=postgres";
        var unique = Path.GetFileName(root);
        var markers = new List<string>();
        var runDir = Environment.GetEnvironmentVariable("SYCONN_PG_RUNDIR");
        if (!string.IsNullOrEmpty(runDir))
        {
            markers.Add(Path.Combine(runDir, unique + ".datadir"));
            _pidFile = Path.Combine(runDir, unique + ".pid");
        }
        if (WatcherDir.Value is string watcherDir) markers.Add(Path.Combine(watcherDir, unique + ".datadir"));
        _markerFiles = [.. markers];
    }

    /// <summary>The name given to <see cref="Start"/> (for messages only).</summary>
    public string Name { get; }

    /// <summary>Npgsql connection string for the superuser and database <c>postgres</c> over the Unix socket.</summary>
    public string ConnectionString { get; }

    /// <summary>The folder holding the server's socket <c>.s.PGSQL.&lt;Port&gt;</c>.</summary>
    public string SocketDir { get; }

    /// <summary>The port; with no TCP listener it only names the socket file.</summary>
    public int Port { get; }

    /// <summary>The cluster's data directory.</summary>
    public string DataDir { get; }

    /// <summary>The folder of initdb, pg_ctl, postgres, psql and pg_isready.</summary>
    public string BinDir { get; }

    /// <summary>The server log (pg_ctl -l).</summary>
    public string LogFile { get; }

    /// <summary>Null when the server binaries (and, as root, runuser and the user postgres) exist; else what is missing.</summary>
    public static string? MissingReason => Binaries.Value.Missing;

    /// <summary>Skips the test (fails it under <c>CI=true</c>) when <see cref="MissingReason"/> is not null.</summary>
    public static void RequireAvailable()
    {
        var missing = MissingReason;
        Requires.That(missing is null, missing ?? "");
    }

    /// <summary>One server for the whole test run, started on first use, stopped at process exit. Dispose does nothing on it.</summary>
    public static PgServer Shared => SharedServer.Value;

    /// <summary>Creates and starts a new server in a fresh temp folder; returns once it accepts connections.</summary>
    public static PgServer Start(string name)
    {
        var (binDir, missing) = Binaries.Value;
        if (missing is not null) throw new InvalidOperationException($"cannot start PostgreSQL server '{name}': {missing}");
        var root = CreateRootFolder();
        PgServer server;
        try
        {
            server = new PgServer(name, root, ChoosePort(), binDir!);
        }
        catch
        {
            TryDeleteFolder(root);
            throw;
        }
        lock (Gate) Live.Add(server);
        try
        {
            server.WriteMarker();
            server.InitDb();
            server.AppendConfig();
            server.StartPostmaster();
        }
        catch
        {
            server.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>Stops the server (<c>pg_ctl stop -m <paramref name="mode"/></c>: smart, fast or immediate) and waits until it is down.</summary>
    public void Stop(string mode = "fast")
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var r = RunPgCtl("stop", "-D", DataDir, "-m", mode, "-w", "-t", PgCtlWaitSeconds.ToString());
        if (r.ExitCode != 0) throw Failure($"pg_ctl stop -m {mode} failed", r);
        DeletePidFile();
    }

    /// <summary>Starts the stopped server again: same data dir, socket folder and port.</summary>
    public void StartAgain()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        StartPostmaster();
    }

    /// <summary><c>pg_ctl restart -m <paramref name="mode"/></c>; returns once the server accepts connections again.</summary>
    /// <remarks>With <c>immediate</c> the server is killed without a checkpoint and recovers from its WAL on the way up.</remarks>
    public void Restart(string mode = "immediate")
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var r = RunPgCtl("restart", "-D", DataDir, "-m", mode, "-l", LogFile, "-w", "-t", PgCtlWaitSeconds.ToString());
        if (r.ExitCode != 0) throw Failure($"pg_ctl restart -m {mode} failed", r);
        WaitUntilReady();
        WritePidFile();
    }

    /// <summary>True while the postmaster named in <c>postmaster.pid</c> is alive.</summary>
    public bool IsRunning => PostmasterPid is int pid && IsPostmasterAlive(pid);

    /// <summary>The pid in <c>postmaster.pid</c> (null when there is no such file). The file outlives a killed postmaster; see <see cref="IsRunning"/>.</summary>
    public int? PostmasterPid
    {
        get
        {
            try
            {
                using var reader = new StreamReader(Path.Combine(DataDir, "postmaster.pid"));
                return int.TryParse(reader.ReadLine(), out var pid) && pid > 0 ? pid : null;
            }
            catch (IOException) { return null; }
            catch (UnauthorizedAccessException) { return null; }
        }
    }

    /// <summary>Runs <paramref name="sql"/> with psql in <paramref name="database"/>; returns stdout trimmed (unaligned, tuples only). Throws with psql's stderr on failure.</summary>
    public string Psql(string sql, string database = "postgres")
    {
        var psi = new ProcessStartInfo(Path.Combine(BinDir, "psql"));
        foreach (var a in (string[])["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", SocketDir, "-p", Port.ToString(), "-U", Superuser, "-d", database, "-c", sql])
            psi.ArgumentList.Add(a);
        psi.Environment["PGCLIENTENCODING"] = "UTF8";
        psi.Environment["PGCONNECT_TIMEOUT"] = "10";
        var r = Run(psi, ToolTimeoutSeconds);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"psql on server '{Name}' database '{database}' failed (exit {r.ExitCode}): {r.Stderr.Trim()}\nSQL: {sql}");
        return r.Stdout.Trim();
    }

    /// <summary>Creates database <paramref name="db"/> (the name is quoted, so it is taken as written).</summary>
    public void CreateDatabase(string db) => Psql($"CREATE DATABASE \"{db.Replace("\"", "\"\"")}\"");

    /// <summary>Stops the server at once (immediate) and deletes its folder. Does nothing on <see cref="Shared"/>.</summary>
    public void Dispose()
    {
        if (_isShared) return;
        lock (Gate)
        {
            if (_disposed) return;
            _disposed = true;
            Live.Remove(this);
        }
        TearDown();
    }

    public override string ToString() => $"PgServer '{Name}' ({SocketDir}, port {Port})";

    // ---- start-up -------------------------------------------------------------------------------

    private static PgServer StartShared()
    {
        var server = Start("shared");
        server._isShared = true;
        return server;
    }

    private void InitDb()
    {
        // --no-sync: the cluster runs with fsync=off anyway, so flushing initdb's files buys nothing.
        var r = RunTool("initdb", "-D", DataDir, "--auth=trust", "-U", Superuser, "--encoding=UTF8", "--locale=C", "--no-sync");
        if (r.ExitCode != 0) throw Failure("initdb failed", r);
    }

    private void AppendConfig()
    {
        var config = new StringBuilder()
            .AppendLine()
            .AppendLine("# test server settings (tests/SyConn.Backend.Tests/Infrastructure/PgServer.cs)")
            .AppendLine("listen_addresses = ''")
            .AppendLine($"unix_socket_directories = '{SocketDir.Replace("'", "''")}'")
            .AppendLine($"port = {Port}")
            .AppendLine("fsync = off")
            .AppendLine("synchronous_commit = on")
            .AppendLine("max_connections = 200")
            .AppendLine("shared_preload_libraries = ''")
            .ToString();
        // Appending keeps the file's owner (postgres when we are root).
        File.AppendAllText(Path.Combine(DataDir, "postgresql.conf"), config);
    }

    private void StartPostmaster()
    {
        var r = RunPgCtl("start", "-D", DataDir, "-l", LogFile, "-w", "-t", PgCtlWaitSeconds.ToString());
        if (r.ExitCode != 0) throw Failure("pg_ctl start failed", r);
        WaitUntilReady();
        WritePidFile();
    }

    private void WaitUntilReady()
    {
        var deadline = Stopwatch.StartNew();
        ProcResult? last = null;
        while (deadline.Elapsed < TimeSpan.FromSeconds(ReadyWaitSeconds))
        {
            var psi = new ProcessStartInfo(Path.Combine(BinDir, "pg_isready"));
            foreach (var a in (string[])["-q", "-h", SocketDir, "-p", Port.ToString(), "-U", Superuser, "-d", "postgres", "-t", "5"])
                psi.ArgumentList.Add(a);
            last = Run(psi, ToolTimeoutSeconds);
            if (last.ExitCode == 0) return;
            Thread.Sleep(100);
        }
        throw Failure($"server did not accept connections on {SocketDir} port {Port} within {ReadyWaitSeconds}s (pg_isready)", last);
    }

    /// <summary>A new folder <c>syconn-pg-*</c> holding the socket folder <c>s</c>, owned by postgres when we are root.</summary>
    private static string CreateRootFolder()
    {
        var root = CreateFolder(ServerParentFolder(), "syconn-pg-");
        try
        {
            CreatePrivateDirectory(Path.Combine(root, "s"));
            if (AsRoot)
            {
                var r = Run(new ProcessStartInfo("chown") { ArgumentList = { "-R", ServiceUser + ":", root } }, ToolTimeoutSeconds);
                if (r.ExitCode != 0) throw new InvalidOperationException($"chown -R {ServiceUser}: {root} failed: {r.Stderr.Trim()}");
            }
        }
        catch
        {
            TryDeleteFolder(root);
            throw;
        }
        return root;
    }

    /// <summary>
    /// The temp folder, unless it would push the socket path over the kernel's limit or, as root, the
    /// user postgres could not enter it: then <c>/tmp</c>.
    /// </summary>
    private static string ServerParentFolder()
    {
        var parent = Path.GetTempPath();
        return SocketPathLength(parent) > SocketPathLimit || (AsRoot && !OthersCanEnter(parent)) ? "/tmp" : parent;
    }

    /// <summary>Creates <paramref name="prefix"/> plus ten random characters below <paramref name="parent"/>, mode 0700.</summary>
    private static string CreateFolder(string parent, string prefix)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var suffix = string.Create(10, Random.Shared, static (span, rnd) =>
            {
                const string alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
                for (var i = 0; i < span.Length; i++) span[i] = alphabet[rnd.Next(alphabet.Length)];
            });
            var folder = Path.Combine(parent, prefix + suffix);
            if (Directory.Exists(folder) || File.Exists(folder)) continue;
            CreatePrivateDirectory(folder);
            return folder;
        }
        throw new IOException($"could not find a free folder name {prefix}* below {parent}");
    }

    private static void CreatePrivateDirectory(string path)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("PostgreSQL test servers listen on Unix sockets");
        Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>Bytes of the socket path for a server folder below <paramref name="parent"/>, at the longest port.</summary>
    private static int SocketPathLength(string parent) =>
        Encoding.UTF8.GetByteCount(Path.Combine(parent, "syconn-pg-0123456789", "s", ".s.PGSQL.65535"));

    private static bool OthersCanEnter(string folder)
    {
        for (var dir = new DirectoryInfo(Path.GetFullPath(folder)); dir is not null; dir = dir.Parent)
        {
            try
            {
                if ((dir.UnixFileMode & UnixFileMode.OtherExecute) == 0) return false;
            }
            catch (IOException) { return false; }
        }
        return true;
    }

    /// <summary>A port the OS reports free on loopback, distinct from every other server of this process.</summary>
    private static int ChoosePort()
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            lock (Gate)
                if (PortsInUse.Add(port)) return port;
        }
        throw new InvalidOperationException("no free port number found for a PostgreSQL test server");
    }

    // ---- crash-cleanup files ---------------------------------------------------------------------

    private void WriteMarker()
    {
        foreach (var marker in _markerFiles)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(marker)!);
            File.WriteAllText(marker, DataDir + "\n");
        }
    }

    private void WritePidFile()
    {
        if (_pidFile is null) return;
        if (PostmasterPid is int pid) File.WriteAllText(_pidFile, pid + "\n");
    }

    private void DeletePidFile()
    {
        if (_pidFile is not null) TryDeleteFile(_pidFile);
    }

    // ---- shutdown ----------------------------------------------------------------------------------

    /// <summary>
    /// At process exit, every server still here gets SIGQUIT, the signal of <c>pg_ctl stop -m immediate</c>.
    /// vstest kills the test host about 100 ms after the run (VSTEST_TESTHOST_SHUTDOWN_TIMEOUT), too
    /// soon for a pg_ctl per server; what this handler does not finish, the watcher does.
    /// </summary>
    private static void StopAllAtExit()
    {
        PgServer[] servers;
        lock (Gate)
        {
            servers = [.. Live];
            Live.Clear();
            foreach (var s in servers) s._disposed = true;
        }
        var postmasters = new List<(PgServer Server, int Pid)>();
        foreach (var s in servers)
        {
            if (s.PostmasterPid is int pid && s.IsPostmasterAlive(pid) && kill(pid, SigQuit) == 0)
                postmasters.Add((s, pid));
        }
        var waited = Stopwatch.StartNew();
        while (postmasters.Any(p => p.Server.IsPostmasterAlive(p.Pid)) && waited.Elapsed < TimeSpan.FromSeconds(10))
            Thread.Sleep(10);
        // A server still shutting down keeps its folder and markers for the watcher.
        foreach (var s in servers)
            if (!postmasters.Any(p => p.Server == s && s.IsPostmasterAlive(p.Pid))) s.RemoveFiles();
    }

    /// <summary>Immediate stop (a kill when pg_ctl cannot), then the folder and the marker files go.</summary>
    private void TearDown()
    {
        try
        {
            if (PostmasterPid is int pid && IsPostmasterAlive(pid))
            {
                var r = RunPgCtl("stop", "-D", DataDir, "-m", "immediate", "-w", "-t", "30");
                if (r.ExitCode != 0 && IsPostmasterAlive(pid)) kill(pid, SigKill);
            }
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // Best effort: the marker files stay behind for the watcher and scripts/test.sh.
        }
        RemoveFiles();
    }

    private void RemoveFiles()
    {
        if (TryDeleteFolder(_root))
        {
            DeletePidFile();
            foreach (var marker in _markerFiles) TryDeleteFile(marker);
        }
        lock (Gate) PortsInUse.Remove(Port);
    }

    private bool IsPostmasterAlive(int pid)
    {
        try
        {
            // The postmaster runs as "postgres -D <data dir>"; a reused pid would not name our data dir.
            var cmdline = File.ReadAllText($"/proc/{pid}/cmdline");
            return cmdline.Contains(DataDir, StringComparison.Ordinal);
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static bool TryDeleteFolder(string folder)
    {
        try
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, true);
            return true;
        }
        catch (IOException) { return false; }
        catch (UnauthorizedAccessException) { return false; }
    }

    private static void TryDeleteFile(string file)
    {
        try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    // ---- the watcher -------------------------------------------------------------------------------

    /// <summary>
    /// A detached shell that waits for end of file on its stdin, which comes when this process is gone
    /// however it ended (killed by vstest, crashed, SIGKILL), then stops the servers named by the
    /// <c>*.datadir</c> files in its folder and deletes their folders. $1: its folder, $2: the bin dir,
    /// $3: the runuser prefix when we are root (split into words on purpose).
    /// </summary>
    private const string WatcherScript = """
        exec 3<&0 </dev/null >/dev/null 2>&1
        (
          trap '' INT HUP
          cat <&3 >/dev/null
          for marker in "$1"/*.datadir; do
            [ -f "$marker" ] || continue
            data=$(head -n 1 "$marker")
            case "$data" in */syconn-pg-*/data) ;; *) continue ;; esac
            if [ -f "$data/postmaster.pid" ]; then $3 "$2/pg_ctl" stop -D "$data" -m immediate -w -t 30; fi
            rm -rf "${data%/data}"
            rm -f "$marker"
          done
          rm -rf "$1"
        ) &
        """;

    private static string? StartWatcher()
    {
        var (binDir, missing) = Binaries.Value;
        if (missing is not null || !File.Exists("/bin/sh")) return null;
        string? dir = null;
        try
        {
            // Inside SYCONN_PG_RUNDIR when set, so that scripts/test.sh removes it even if the watcher dies.
            var runDir = Environment.GetEnvironmentVariable("SYCONN_PG_RUNDIR");
            var parent = string.IsNullOrEmpty(runDir) ? ServerParentFolder() : runDir;
            Directory.CreateDirectory(parent);
            dir = CreateFolder(parent, "syconn-pgwatch-");
            var psi = new ProcessStartInfo("/bin/sh");
            foreach (var a in (string[])["-c", WatcherScript, "syconn-pg-watcher", dir, binDir!, AsRoot ? $"{RunUserPath()} -u {ServiceUser} --" : ""])
                psi.ArgumentList.Add(a);
            psi.RedirectStandardInput = true;
            psi.RedirectStandardOutput = true;
            psi.RedirectStandardError = true;
            psi.UseShellExecute = false;
            psi.WorkingDirectory = dir;
            // Never written to, never closed: the pipe ends when this process does.
            _watcher = Process.Start(psi) ?? throw new InvalidOperationException("/bin/sh did not start");
            return dir;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // Servers work without it; the exit handler and scripts/test.sh still clean up.
            if (dir is not null) TryDeleteFolder(dir);
            return null;
        }
    }

    // ---- running tools -----------------------------------------------------------------------------

    private sealed record ProcResult(int ExitCode, string Stdout, string Stderr);

    private ProcResult RunPgCtl(params string[] args) => RunTool("pg_ctl", args);

    /// <summary>Runs a server-side tool from <see cref="BinDir"/>, as the user postgres when we are root.</summary>
    private ProcResult RunTool(string tool, params string[] args)
    {
        var exe = Path.Combine(BinDir, tool);
        ProcessStartInfo psi;
        if (AsRoot)
        {
            psi = new ProcessStartInfo(RunUserPath()!);
            foreach (var a in (string[])["-u", ServiceUser, "--", exe]) psi.ArgumentList.Add(a);
        }
        else
        {
            psi = new ProcessStartInfo(exe);
        }
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The server's own folder: our working directory may be closed to the user postgres.
        psi.WorkingDirectory = _root;
        return Run(psi, ToolTimeoutSeconds);
    }

    private static ProcResult Run(ProcessStartInfo psi, int timeoutSeconds)
    {
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.StandardOutputEncoding = Encoding.UTF8;
        psi.StandardErrorEncoding = Encoding.UTF8;
        // PGDATA, PGHOST, PGOPTIONS and friends from the caller's environment must not steer our tools.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
        {
            if (key is not ("PGCLIENTENCODING" or "PGCONNECT_TIMEOUT")) psi.Environment.Remove(key);
        }
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeoutSeconds * 1000))
        {
            try { p.Kill(true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{psi.FileName} {string.Join(' ', psi.ArgumentList)} did not finish within {timeoutSeconds}s");
        }
        p.WaitForExit();
        return new ProcResult(p.ExitCode, stdout.Result, stderr.Result);
    }

    private InvalidOperationException Failure(string what, ProcResult? r)
    {
        var sb = new StringBuilder($"PostgreSQL test server '{Name}' ({DataDir}): {what}");
        if (r is not null)
        {
            sb.Append($" (exit {r.ExitCode})");
            if (r.Stdout.Trim().Length > 0) sb.Append('\n').Append(r.Stdout.Trim());
            if (r.Stderr.Trim().Length > 0) sb.Append('\n').Append(r.Stderr.Trim());
        }
        sb.Append($"\n--- last lines of {LogFile} ---\n").Append(LogTail(40));
        return new InvalidOperationException(sb.ToString());
    }

    private string LogTail(int lines)
    {
        try
        {
            var all = File.ReadAllLines(LogFile);
            return string.Join('\n', all.Skip(Math.Max(0, all.Length - lines)));
        }
        catch (IOException) { return "(no server log)"; }
        catch (UnauthorizedAccessException) { return "(server log not readable)"; }
    }

    // ---- finding the binaries ----------------------------------------------------------------------

    private static (string? BinDir, string? Missing) FindBinaries()
    {
        var dir = HighestVersionedBinDir() ?? PgConfigBinDir();
        if (dir is null)
            return (null, $"PostgreSQL server binaries not found under {VersionedRoot}/*/bin or by pg_config --bindir (apt-get install postgresql)");
        var absent = RequiredTools.Where(t => !File.Exists(Path.Combine(dir, t))).ToArray();
        if (absent.Length > 0)
            return (null, $"PostgreSQL programs {string.Join(", ", absent)} not found in {dir} (apt-get install postgresql)");
        if (AsRoot)
        {
            if (RunUserPath() is null)
                return (null, "runuser (util-linux), needed to run the PostgreSQL server as user postgres when the tests run as root");
            if (!ServiceUserExists())
                return (null, $"the system user '{ServiceUser}' that runs the PostgreSQL server when the tests run as root (apt-get install postgresql creates it)");
        }
        return (dir, null);
    }

    /// <summary><c>/usr/lib/postgresql/&lt;v&gt;/bin</c> of the highest version <c>v</c> that has a server.</summary>
    private static string? HighestVersionedBinDir()
    {
        if (!Directory.Exists(VersionedRoot)) return null;
        return Directory.EnumerateDirectories(VersionedRoot)
            .Select(d => (Dir: Path.Combine(d, "bin"), Version: ParseVersion(Path.GetFileName(d))))
            .Where(c => c.Version is not null && File.Exists(Path.Combine(c.Dir, "postgres")))
            .OrderByDescending(c => c.Version!, VersionComparer.Instance)
            .Select(c => c.Dir)
            .FirstOrDefault();
    }

    private static int[]? ParseVersion(string name)
    {
        var parts = name.Split('.');
        var numbers = new int[parts.Length];
        for (var i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out numbers[i])) return null;
        return numbers;
    }

    private sealed class VersionComparer : IComparer<int[]>
    {
        public static readonly VersionComparer Instance = new();

        public int Compare(int[]? x, int[]? y)
        {
            x ??= [];
            y ??= [];
            for (var i = 0; i < Math.Min(x.Length, y.Length); i++)
                if (x[i] != y[i]) return x[i].CompareTo(y[i]);
            return x.Length.CompareTo(y.Length);
        }
    }

    private static string? PgConfigBinDir()
    {
        try
        {
            var r = Run(new ProcessStartInfo("pg_config") { ArgumentList = { "--bindir" } }, 30);
            var dir = r.Stdout.Trim();
            return r.ExitCode == 0 && File.Exists(Path.Combine(dir, "postgres")) ? dir : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }

    private static string? RunUserPath() =>
        ((string[])["/usr/sbin/runuser", "/sbin/runuser", "/usr/bin/runuser", "/bin/runuser"]).FirstOrDefault(File.Exists);

    private static bool ServiceUserExists()
    {
        try
        {
            return File.ReadLines("/etc/passwd").Any(l => l.StartsWith(ServiceUser + ":", StringComparison.Ordinal));
        }
        catch (IOException) { return false; }
    }

    private static bool IsRoot()
    {
        try { return geteuid() == 0; }
        catch (DllNotFoundException) { return false; }
        catch (EntryPointNotFoundException) { return false; }
    }

    private const int SigKill = 9;
    private const int SigQuit = 3;

    [DllImport("libc")]
    private static extern uint geteuid();

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
