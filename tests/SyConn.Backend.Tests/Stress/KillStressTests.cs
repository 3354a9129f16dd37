using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Stress;

/// <summary>
/// The kill-stress run: 8 processes (5 writers, 3 readers) on 50 stores of three classes for
/// <c>SYCONN_STRESS_SECONDS</c> (default 20; the long setting is a few minutes), writers killed with SIGKILL at
/// random moments, mid-push included, and started again. Afterwards <c>syconn-store verify</c> must find no corrupt
/// store, and every push a writer acknowledged must be there: a key holds the last acknowledged counter, or one
/// more when its writer was killed after the push returned but before it wrote its log line.
/// </summary>
public class KillStressTests(ITestOutputHelper output)
{
    private const int Writers = 5;
    private const int Readers = 3;

    private static double Seconds =>
        double.TryParse(Environment.GetEnvironmentVariable("SYCONN_STRESS_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) && s > 0 ? s : 20;

    private static string CliDll => Storage.ChildProcess.CliDll;

    private static Process Start(string dir, int worker, string role, double seconds, int seed, string log)
    {
        var psi = new ProcessStartInfo("dotnet") { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in new[] { CliDll, "_stress-worker", dir, "--worker", worker.ToString(CultureInfo.InvariantCulture), "--role", role,
                     "--seconds", seconds.ToString(CultureInfo.InvariantCulture), "--seed", seed.ToString(CultureInfo.InvariantCulture), "--log", log })
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    [Fact]
    public void Killed_writers_lose_no_acknowledged_push_and_corrupt_no_store()
    {
        Assert.True(File.Exists(CliDll), $"syconn-store.dll not found next to the tests: {CliDll}");
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "wd");
        Directory.CreateDirectory(dir);
        double seconds = Seconds;
        var clock = Stopwatch.StartNew();
        var end = TimeSpan.FromSeconds(seconds);
        var rng = new Random(4242);
        var writers = new Process[Writers];
        var readers = new Process[Readers];
        string WriterLog(int w) => Path.Combine(tmp.Path, $"writer{w}.log");
        string ReaderLog(int w) => Path.Combine(tmp.Path, $"reader{w}.log");
        for (int w = 0; w < Writers; w++) writers[w] = Start(dir, w + 1, "writer", seconds, rng.Next(), WriterLog(w + 1));
        for (int q = 0; q < Readers; q++) readers[q] = Start(dir, 50 + q, "reader", seconds, rng.Next(), ReaderLog(q));
        int kills = 0, restarts = 0;
        try
        {
            // Kill a random writer every 0.2-0.8 s (a push takes milliseconds, so some kills land inside one), then start it again.
            while (clock.Elapsed < end - TimeSpan.FromSeconds(2))
            {
                Thread.Sleep(200 + rng.Next(600));
                int w = rng.Next(Writers);
                if (writers[w].HasExited)
                {
                    Assert.True(writers[w].ExitCode == 0, $"writer {w + 1} exited with {writers[w].ExitCode}");
                    continue;
                }
                writers[w].Kill();
                writers[w].WaitForExit();
                kills++;
                double left = (end - clock.Elapsed).TotalSeconds;
                if (left > 1)
                {
                    writers[w] = Start(dir, w + 1, "writer", left, rng.Next(), WriterLog(w + 1));
                    restarts++;
                }
            }
            foreach (var p in writers.Concat(readers))
            {
                Assert.True(p.WaitForExit(TimeSpan.FromSeconds(180)), "a worker did not finish");
                Assert.True(p.ExitCode == 0 || writers.Contains(p) && p.ExitCode == 137, $"a worker exited with {p.ExitCode}");
            }
        }
        finally
        {
            foreach (var p in writers.Concat(readers))
                if (!p.HasExited) p.Kill();
        }

        // Every acknowledged push is there.
        var acked = new Dictionary<(int Store, long Key), long>();
        int acknowledged = 0;
        for (int w = 1; w <= Writers; w++)
        {
            if (!File.Exists(WriterLog(w))) continue;
            foreach (var line in File.ReadLines(WriterLog(w)))
            {
                var f = line.Split(' ');
                if (f.Length != 3) continue; // a line cut by a kill cannot happen (one write call), but never count one
                var id = (int.Parse(f[0], CultureInfo.InvariantCulture), long.Parse(f[1], CultureInfo.InvariantCulture));
                long n = long.Parse(f[2], CultureInfo.InvariantCulture);
                acked[id] = Math.Max(acked.GetValueOrDefault(id), n);
                acknowledged++;
            }
        }
        int found = 0, ahead = 0;
        foreach (var ((store, key), n) in acked)
        {
            using var s = StoreFactory.Open(StressWorkerCommand.ClassOf(store), StressWorkerCommand.StorePath(dir, store), StoreOptions.Default);
            Assert.True(s.ContainsKey(key), $"store {store} lost key {key} (acknowledged up to {n})");
            long stored = StressWorkerCommand.CounterOf(s, key);
            Assert.True(stored == n || stored == n + 1, $"store {store} key {key}: stored {stored}, acknowledged {n}");
            if (stored == n + 1) ahead++;
            found++;
        }
        // A writer killed while writing its temp file leaves it behind (never in place of the store): evidence of kills mid-push.
        int tempsLeft = Directory.EnumerateFiles(dir, ".*.tmp.*", SearchOption.AllDirectories).Count();
        int reads = Enumerable.Range(0, Readers).Where(q => File.Exists(ReaderLog(q))).Sum(q => File.ReadLines(ReaderLog(q)).Count());

        // verify finds nothing corrupt, and takes no lock.
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["verify", dir], o, e);
        var last = o.ToString().Trim().Split('\n')[^1];
        var figures = new
        {
            seconds,
            writers = Writers,
            readers = Readers,
            pushes_acknowledged = acknowledged,
            keys_acknowledged = acked.Count,
            keys_found = found,
            keys_one_ahead = ahead,
            kills,
            killed_mid_push = tempsLeft,
            restarts,
            reads,
            verify = last,
        };
        output.WriteLine(JsonSerializer.Serialize(figures));
        Assert.True(code == 0, $"verify: {o}{e}");
        Assert.EndsWith(" 0 corrupt", last, StringComparison.Ordinal);
        Assert.True(acknowledged > 0 && kills > 0, $"the run did too little: {JsonSerializer.Serialize(figures)}");
    }
}
