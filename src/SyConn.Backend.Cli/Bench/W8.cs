using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using static SyConn.Backend.Cli.Bench.BenchMath;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// W8: locking. Sequential open-set-push cycles on a 100-entry and a 1-entry store, locked and unlocked,
/// durable, not (<c>_nosync</c>) and, on files, not and with deferred write-back (<c>_deferred</c>,
/// <see cref="StoreOptions.DeferWriteBack"/>); and 4 processes doing locked read-modify-write increments of one counter.
/// </summary>
internal static class W8
{
    /// <summary>How a cycle's push ends: fsynced, not fsynced (as upstream), or not fsynced and not written back at once.</summary>
    internal enum PushMode { Durable, NoSync, Deferred }

    private static readonly PushMode[] FileModes = [PushMode.Durable, PushMode.NoSync, PushMode.Deferred];
    private static readonly PushMode[] BtModes = [PushMode.Durable, PushMode.NoSync];

    /// <summary>The suffix of a phase's name: "", "_nosync", "_deferred".</summary>
    internal static string Suffix(PushMode m) => m switch { PushMode.Durable => "", PushMode.NoSync => "_nosync", _ => "_deferred" };

    /// <summary>The mode word of the worker's command line: durable, nosync, deferred.</summary>
    internal static string Word(PushMode m) => m switch { PushMode.Durable => "durable", PushMode.NoSync => "nosync", _ => "deferred" };

    /// <summary>The mode of a worker's mode word; an unknown word is an error.</summary>
    internal static PushMode ParseWord(string word) => word switch
    {
        "durable" => PushMode.Durable,
        "nosync" => PushMode.NoSync,
        "deferred" => PushMode.Deferred,
        _ => throw new ArgumentException($"w8 worker: mode must be durable, nosync or deferred, not '{word}'", nameof(word)),
    };

    private static StoreOptions With(StoreOptions o, PushMode m) => o with { Durable = m == PushMode.Durable, DeferWriteBack = m == PushMode.Deferred };

    public static JsonObject Run(double scale, int reps, string outDir, TextWriter progress)
    {
        string dir = Path.Combine(outDir, "w8");
        Directory.CreateDirectory(dir);
        int cycles = Scaled(2000, scale);
        int perProcess = Scaled(500, scale);
        var t = new PhaseTimings();
        var values = SeqValues();
        var fileBytes = new JsonObject();
        Repeat(reps, rec =>
        {
            foreach (int fill in new[] { 100, 1 })
                foreach (bool locked in new[] { true, false })
                    foreach (var mode in FileModes)
                    {
                        var path = Path.Combine(dir, $"seq_f{fill}.pkl");
                        if (File.Exists(path)) File.Delete(path);
                        using (var init = new CompressedStorage(path, StoreOptions.Writable))
                        {
                            for (int i = 0; i < fill; i++) init[i] = values[i];
                            init.Push();
                        }
                        var opts = With(new StoreOptions { ReadOnly = false, DisableLocking = !locked }, mode);
                        double total = Time(() =>
                        {
                            for (int c = 0; c < cycles; c++)
                            {
                                using var cs = new CompressedStorage(path, opts);
                                cs[c % fill] = values[c * 7 % 100];
                                cs.Push();
                            }
                        });
                        fileBytes[$"f{fill}"] = FileSize(path);
                        rec.Add($"seq_f{fill}_{(locked ? "locked" : "unlocked")}_total{Suffix(mode)}", total);
                    }
        }, t, progress, "w8");
        // A cycle must at least read the store file and write it again (with fsync when durable).
        progress.WriteLine("bench w8: floors");
        var floors = new Floors(reps);
        foreach (int fill in new[] { 100, 1 })
        {
            floors.File(Path.Combine(dir, $"seq_f{fill}.pkl"), $"f{fill}file_");
            foreach (string lk in new[] { "locked", "unlocked" })
            {
                floors.Map($"seq_f{fill}_{lk}_total", $"{cycles}*f{fill}file_read_fresh", $"{cycles}*f{fill}file_write_fsync");
                floors.Map($"seq_f{fill}_{lk}_total_nosync", $"{cycles}*f{fill}file_read_fresh", $"{cycles}*f{fill}file_write_nosync");
                floors.Map($"seq_f{fill}_{lk}_total_deferred", $"{cycles}*f{fill}file_read_fresh", $"{cycles}*f{fill}file_write_nosync");
            }
        }
        var extra = floors.ToJson(t);
        var parallel = ParallelRuns(reps, progress, "w8", null, FileModes, mode => ParallelRun(Path.Combine(dir, "counter.pkl"), 4, perProcess, mode));
        extra["parallel"] = parallel;
        return Line("w8", scale, reps, new JsonObject { ["cycles"] = cycles, ["processes"] = 4, ["increments_per_process"] = perProcess, ["seq_file_entries"] = new JsonObject { ["f100"] = 100, ["f1"] = 1 } }, t,
            new JsonObject { ["seq_file_bytes"] = fileBytes }, extra);
    }

    /// <summary>
    /// The values of the sequential cycles, as the reference's <c>w8</c>: 100 arrays of (100,3) uint64 in [0,20000),
    /// each column sorted; a store of 100 entries is about 132 kB, one of 1 entry about 1.3 kB.
    /// </summary>
    private static NdArray[] SeqValues()
    {
        var rng = new Random(8);
        var values = new NdArray[100];
        for (int k = 0; k < values.Length; k++)
        {
            var cols = new ulong[3][];
            for (int c = 0; c < 3; c++)
            {
                cols[c] = new ulong[100];
                for (int i = 0; i < 100; i++) cols[c][i] = (ulong)rng.Next(20000);
                Array.Sort(cols[c]);
            }
            var v = new ulong[300];
            for (int i = 0; i < 100; i++) for (int c = 0; c < 3; c++) v[3 * i + c] = cols[c][i];
            values[k] = NdArray.Wrap(v, 100, 3);
        }
        return values;
    }

    /// <summary>
    /// W8 on the BT backend: the same sequential cycles on <c>bt:bench/w8/seq_f100</c> and <c>bt:bench/w8/seq_f1</c>,
    /// locked (the bt default, an advisory lock held from open to push) and unlocked, and the 4-process run on
    /// <c>bt:bench/w8/counter</c>. Durable only (the server's setting; there is no per-push fsync to turn off).
    /// </summary>
    public static JsonObject RunBt(double scale, int reps, TextWriter progress, BtServer server)
    {
        int cycles = Scaled(2000, scale);
        int perProcess = Scaled(500, scale);
        var t = new PhaseTimings();
        var small = NdArray.Create(new long[] { 1, 2, 3 });
        Repeat(reps, rec =>
        {
            foreach (int fill in new[] { 100, 1 })
                foreach (bool locked in new[] { true, false })
                foreach (var mode in BtModes)
                {
                    string id = $"bench/w8/seq_f{fill}";
                    server.DeleteStore(id);
                    using (var init = CompressedStorage.Open("bt:" + id, server.Options(StoreOptions.Writable)))
                    {
                        for (int i = 0; i < fill; i++) init[i] = small;
                        init.Push();
                    }
                    server.Settle("syconn.entries", "syconn.stores");
                    var opts = server.Options(With(new StoreOptions { ReadOnly = false, DisableLocking = !locked }, mode));
                    double total = Time(() =>
                    {
                        for (int c = 0; c < cycles; c++)
                        {
                            using var cs = CompressedStorage.Open("bt:" + id, opts);
                            cs[c % fill] = small;
                            cs.Push();
                        }
                    });
                    rec.Add($"seq_f{fill}_{(locked ? "locked" : "unlocked")}_total{Suffix(mode)}", total);
                }
        }, t, progress, "w8 (bt)");
        var parallel = ParallelRuns(reps, progress, "w8 (bt)", () => server.Settle("syconn.entries", "syconn.stores"),
            BtModes, mode => BtParallelRun("bt:bench/w8/counter", 4, perProcess, mode, server.ConnectionString));
        var perCycle = new JsonObject();
        foreach (var p in new[] { "seq_f100_locked_total", "seq_f100_unlocked_total", "seq_f1_locked_total", "seq_f1_unlocked_total" })
            foreach (var suffix in new[] { "", "_nosync" })
                perCycle[(p + suffix).Replace("_total", "_ms_per_cycle", StringComparison.Ordinal)] = Math.Round(t.Median(p + suffix) / cycles * 1e3, 4);
        return BtWorkloads.BtLine("w8", scale, reps, new JsonObject { ["cycles"] = cycles, ["processes"] = 4, ["increments_per_process"] = perProcess, ["stores"] = new JsonArray("bt:bench/w8/seq_f100", "bt:bench/w8/seq_f1", "bt:bench/w8/counter") }, t,
            new JsonObject(), server, perCycle, new JsonObject { ["parallel"] = parallel });
    }

    /// <summary>The environment variable that makes a bt <c>_w8-worker</c> wait at the start line (<see cref="BtParallelRun"/>).</summary>
    private const string BtBarrierVariable = "SYCONN_W8_START_BARRIER";

    /// <summary>
    /// The 4-process run on bt, timed as the reference harness times its own (<c>_w8_parallel</c>: the workers are
    /// started, then released together, and the clock runs from the release to the last worker's end): each worker
    /// starts, warms up, says <c>ready</c> and waits for <c>go</c> on its standard input. <c>wall_s</c> is that time;
    /// <c>wall_with_start_s</c> also counts starting the processes and their warm-up, as the file run's <c>wall_s</c>.
    /// </summary>
    private static JsonObject BtParallelRun(string path, int processes, int perProcess, PushMode mode, string connectionString)
    {
        var writable = StoreOptions.Writable with { ConnectionString = connectionString };
        using (var init = CompressedStorage.Open(path, writable))
        {
            init[0] = NdArray.Create(new long[] { 0 });
            init.Push();
        }
        var started = Stopwatch.StartNew();
        var (file, prefix) = SelfProcess.Command();
        var procs = new List<Process>();
        foreach (var _ in Enumerable.Range(0, processes))
        {
            var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
            foreach (var a in prefix) psi.ArgumentList.Add(a);
            foreach (var a in new[] { "_w8-worker", path, perProcess.ToString(CultureInfo.InvariantCulture), Word(mode), "--bt", connectionString })
                psi.ArgumentList.Add(a);
            psi.Environment[BtBarrierVariable] = "1";
            foreach (var (name, value) in BtWorkerEnvironment)
                if (Environment.GetEnvironmentVariable(name) is null) psi.Environment[name] = value; // a setting of the caller's wins
            procs.Add(Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}"));
        }
        var errors = procs.Select(p => p.StandardError.ReadToEndAsync()).ToList();
        foreach (var (p, i) in procs.Select((p, i) => (p, i)))
        {
            string? line = p.StandardOutput.ReadLine();
            if (line != "ready")
            {
                foreach (var q in procs) q.StandardInput.Close();
                throw new InvalidOperationException($"w8 worker {i} did not get ready (said '{line}'): {errors[i].GetAwaiter().GetResult()}");
            }
        }
        var sw = Stopwatch.StartNew();
        foreach (var p in procs)
        {
            p.StandardInput.WriteLine("go");
            p.StandardInput.Flush();
        }
        double maxWait = 0;
        var outputs = procs.Select(p => p.StandardOutput.ReadToEndAsync()).ToList();
        foreach (var (p, i) in procs.Select((p, i) => (p, i)))
        {
            string output = outputs[i].GetAwaiter().GetResult();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"w8 worker failed (exit {p.ExitCode}): {errors[i].GetAwaiter().GetResult()}");
            var o = JsonNode.Parse(output)!;
            maxWait = Math.Max(maxWait, (double)o["max_wait_s"]!);
        }
        double wall = sw.Elapsed.TotalSeconds;
        double withStart = started.Elapsed.TotalSeconds;
        return Outcome(path, connectionString, (long)processes * perProcess, wall, maxWait, withStart);
    }

    /// <summary>The JSON of a parallel run: its wall time(s), the counter the workers left and what it should be, the longest wait.</summary>
    private static JsonObject Outcome(string path, string? connectionString, long expected, double wall, double maxWait, double? withStart = null)
    {
        using var r = CompressedStorage.Open(path, StoreOptions.Default with { ConnectionString = connectionString });
        long final = r[0].ToArray<long>()[0];
        var o = new JsonObject { ["wall_s"] = Math.Round(wall, 4) };
        if (withStart is { } ws) o["wall_with_start_s"] = Math.Round(ws, 4);
        o["final_counter"] = final;
        o["expected"] = expected;
        o["lost_updates"] = expected - final;
        o["max_wait_s"] = Math.Round(maxWait, 6);
        return o;
    }

    /// <summary>In a bt worker started by <see cref="BtParallelRun"/>: says <c>ready</c> and waits for the start.</summary>
    private static void BtStartBarrier(TextWriter stdout)
    {
        if (Environment.GetEnvironmentVariable(BtBarrierVariable) != "1") return;
        stdout.WriteLine("ready");
        stdout.Flush();
        if (Console.In.ReadLine() != "go") throw new InvalidOperationException("w8 worker: the runner did not say go");
    }

    /// <summary>
    /// The 4-process runs of each of <paramref name="modes"/>, <paramref name="reps"/> of each: durable (<c>locked</c>),
    /// not (<c>locked_nosync</c>), not and deferred (<c>locked_deferred</c>).
    /// </summary>
    private static JsonObject ParallelRuns(int reps, TextWriter progress, string label, Action? beforeEach, PushMode[] modes, Func<PushMode, JsonNode> run)
    {
        var parallel = new JsonObject();
        foreach (var mode in modes)
        {
            string key = "locked" + Suffix(mode);
            var runs = new JsonArray();
            for (int r = 0; r < Math.Max(1, reps); r++)
            {
                progress.WriteLine($"bench {label}: parallel {key} run {r + 1}");
                beforeEach?.Invoke();
                runs.Add(run(mode));
            }
            parallel[key] = runs;
        }
        return parallel;
    }

    /// <summary>
    /// Two increments on a private scratch store, so that the first-call compilation of the open, pull,
    /// set and push code happens before the shared counter is touched. Otherwise each worker's first
    /// increment holds the shared lock for tens of milliseconds while the code is compiled, and those
    /// holds show up as "waits" of the other workers that have nothing to do with locking.
    /// </summary>
    private static void WarmUp(StoreOptions opts)
    {
        if (opts.ConnectionString is { } connection)
        {
            string id = $"bench/w8/warmup-{Environment.ProcessId}";
            try
            {
                Increments("bt:" + id, opts);
            }
            finally
            {
                BtServer.DeleteStore(connection, id);
            }
            return;
        }
        string scratch = Path.Combine(Path.GetTempPath(), $"syconn-w8-warmup-{Environment.ProcessId}");
        Directory.CreateDirectory(scratch);
        try
        {
            Increments(Path.Combine(scratch, "warmup.pkl"), opts);
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static void Increments(string address, StoreOptions opts)
    {
        using (var first = CompressedStorage.Open(address, opts))
        {
            first[0] = NdArray.Create(new long[] { 0 });
            first.Push();
        }
        using var second = CompressedStorage.Open(address, opts);
        var v = second[0].ToArray<long>();
        v[0]++;
        second[0] = NdArray.Create(v);
        second.Push();
    }

    /// <summary>
    /// The runtime settings of the workers. A worker lives for a fraction of a second: its code is compiled ahead of time
    /// (ReadyToRun, see the CLI project) and re-compiling the hot part in the background (tiered compilation, with its
    /// instrumented tier) costs more processor time than the whole run gains from it (about 400 methods re-compiled
    /// against about 60 compiled at all without tiering; the 4-process run took about half the processor time without).
    /// For file stores only: the BT workers spend their time in Npgsql, which is not compiled ahead of time.
    /// </summary>
    private static readonly KeyValuePair<string, string>[] WorkerEnvironment = [new("DOTNET_TieredCompilation", "0")];

    /// <summary>
    /// The runtime settings of the bt workers (each unless the caller's environment sets it). Their code, Npgsql included,
    /// is compiled ahead of time, so tiering is off as for the file workers. Every read of a worker's connection is
    /// a blocking socket read (see <c>BtSocketMode</c>), but .NET's epoll thread still sees the socket's data arrive and,
    /// by default, hands each such event to a thread-pool worker, which then spins (<c>sched_yield</c>) before it sleeps:
    /// on 2 cores shared by 4 workers and 4 server processes, those spins take the processor from the lock's holder.
    /// Inline completions keep the events on the epoll thread, and a spin limit of 0 makes idle pool threads sleep at
    /// once. These are process settings, the benchmark's to make for its own processes, not the library's.
    /// </summary>
    internal static readonly KeyValuePair<string, string>[] BtWorkerEnvironment =
    [
        new("DOTNET_TieredCompilation", "0"),
        new(Program.InlineSocketCompletions, "1"),
        new("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0"),
    ];

    /// <summary>
    /// Starts <paramref name="processes"/> workers doing locked increments; checks the final count. With
    /// <paramref name="connectionString"/>, <paramref name="path"/> is a <c>bt:</c> address in that database.
    /// </summary>
    public static JsonObject ParallelRun(string path, int processes, int perProcess, PushMode mode, string? connectionString = null)
    {
        var writable = StoreOptions.Writable with { ConnectionString = connectionString };
        if (connectionString is null && File.Exists(path)) File.Delete(path);
        using (var init = CompressedStorage.Open(path, writable))
        {
            init[0] = NdArray.Create(new long[] { 0 });
            init.Push();
        }
        string[] bt = connectionString is null ? [] : ["--bt", connectionString];
        var sw = Stopwatch.StartNew();
        var procs = Enumerable.Range(0, processes)
            .Select(_ => SelfProcess.Start(connectionString is null ? WorkerEnvironment : [], ["_w8-worker", path, perProcess.ToString(CultureInfo.InvariantCulture), Word(mode), .. bt]))
            .ToList();
        double maxWait = 0;
        foreach (var p in procs)
        {
            string output = p.StandardOutput.ReadToEnd();
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) throw new InvalidOperationException($"w8 worker failed (exit {p.ExitCode}): {err}");
            var o = JsonNode.Parse(output)!;
            maxWait = Math.Max(maxWait, (double)o["max_wait_s"]!);
        }
        return Outcome(path, connectionString, (long)processes * perProcess, sw.Elapsed.TotalSeconds, maxWait);
    }

    /// <summary>
    /// The worker: <paramref name="n"/> locked read-modify-write increments of key 0; prints the longest wait. With
    /// <paramref name="connectionString"/>, <paramref name="path"/> is a <c>bt:</c> address in that database.
    /// </summary>
    public static int Worker(string path, int n, PushMode mode, TextWriter stdout, string? connectionString = null)
    {
        var opts = With(new StoreOptions { ReadOnly = false, DisableLocking = false, Timeout = 600, ConnectionString = connectionString }, mode);
        WarmUp(opts);
        if (connectionString is not null) BtStartBarrier(stdout);
        double maxWait = 0;
        int longWaits = 0;
        for (int i = 0; i < n; i++)
        {
            var sw = Stopwatch.StartNew();
            using var cs = CompressedStorage.Open(path, opts);
            double wait = sw.Elapsed.TotalSeconds;
            maxWait = Math.Max(maxWait, wait);
            if (wait > 1e-3) longWaits++;
            var v = cs[0].ToArray<long>();
            v[0]++;
            cs[0] = NdArray.Create(v);
            cs.Push();
        }
        stdout.WriteLine(new JsonObject { ["max_wait_s"] = maxWait, ["increments"] = n, ["waits_over_1ms"] = longWaits }.ToJsonString());
        return 0;
    }
}

/// <summary>Starts this program again as a child process (for multi-process benchmarks and tests).</summary>
public static class SelfProcess
{
    /// <summary>The executable and leading arguments that run <c>syconn-store</c>.</summary>
    public static (string FileName, string[] Prefix) Command()
    {
        var dll = typeof(Program).Assembly.Location;
        var exe = Environment.ProcessPath ?? "dotnet";
        if (Path.GetFileNameWithoutExtension(exe) == "syconn-store") return (exe, []);
        var host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH");
        if (string.IsNullOrEmpty(host)) host = Path.GetFileNameWithoutExtension(exe) == "dotnet" ? exe : "dotnet";
        return (host, [dll]);
    }

    /// <summary>Starts <c>syconn-store ARGS</c> with redirected output.</summary>
    public static Process Start(params string[] args) => Start([], args);

    /// <summary>Starts <c>syconn-store ARGS</c> with redirected output and <paramref name="environment"/> added to its environment.</summary>
    public static Process Start(IEnumerable<KeyValuePair<string, string>> environment, string[] args)
    {
        ArgumentNullException.ThrowIfNull(environment);
        var (file, prefix) = Command();
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        foreach (var a in prefix) psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
    }
}
