using System.Diagnostics;
using System.Globalization;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// SIGKILLs a process that keeps rewriting a file with <see cref="AtomicFile"/> at random moments; the
/// file must always be exactly one of the two versions. Budget: <c>SYCONN_KILL_COUNT</c> kills (default 200).
/// </summary>
[Collection(StorageProcessCollection.Name)]
public class AtomicFileCrashTests(ITestOutputHelper output)
{
    private static int KillCount()
    {
        var env = Environment.GetEnvironmentVariable("SYCONN_KILL_COUNT");
        return int.TryParse(env, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : 200;
    }

    [Fact]
    public void Sigkill_at_random_moments_never_leaves_a_partial_file()
    {
        int kills = KillCount();
        byte[] a = AtomicWriteLoopCommand.Version(false), b = AtomicWriteLoopCommand.Version(true);
        using var dir = new TempDir();
        string path = dir.File("victim.pkl");
        AtomicFile.Write(path, a, durable: false);
        var rng = new Random(12345);
        int sawA = 0, sawB = 0, strays = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < kills; i++)
        {
            // Every third child runs without fsync so that kills also land in the cheap-write window.
            var args = i % 3 == 2 ? new[] { "_atomic-write-loop", path, "--no-sync" } : ["_atomic-write-loop", path];
            using (var child = ChildProcess.Cli(args))
            {
                Assert.Equal("ready", child.ReadLine());
                Thread.Sleep(rng.Next(0, 40));
                child.Kill();
                child.Process.WaitForExit();
            }
            byte[]? now = AtomicFile.ReadAllBytes(path);
            Assert.NotNull(now);
            bool isA = now!.AsSpan().SequenceEqual(a), isB = now.AsSpan().SequenceEqual(b);
            Assert.True(isA || isB, $"after kill {i}: file has {now.Length} bytes, neither version A ({a.Length}) nor B ({b.Length})");
            if (isA) sawA++; else sawB++;
            foreach (var stray in Directory.GetFiles(dir.Path, ".victim.pkl.tmp.*"))
            {
                strays++;
                File.Delete(stray);
            }
        }
        output.WriteLine($"{kills} kills in {sw.Elapsed.TotalSeconds:0.0} s: file was A {sawA}x, B {sawB}x; {strays} stray temp files left by killed writers");
        // The kills must have hit a writer that was actually replacing the file, or the test proves nothing.
        Assert.True(sawA > 0 && sawB > 0, $"the file never changed between versions (A {sawA}, B {sawB})");
        Assert.True(strays > 0, "no kill landed while a temp file was being written");
    }
}
