using System.Diagnostics;
using System.Globalization;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// SIGKILLs a process that keeps rewriting a file at random moments; the file must always be exactly one
/// of the two versions. Every other child rewrites a CompressedStorage through pull/set/push cycles, and the
/// store must then load with key 1 holding exactly one version. Budget: <c>SYCONN_KILL_COUNT</c> kills
/// (default 200) in all.
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
        string path = dir.File("victim.bin");
        string storePath = dir.File("victim.pkl");
        AtomicFile.Write(path, a, durable: false);
        using (var init = new CompressedStorage(storePath, StoreOptions.Writable))
        {
            init[1] = NdArray.Wrap(a);
            init.Push();
        }
        int storeA = 0, storeB = 0, storeStrays = 0;
        var rng = new Random(12345);
        int sawA = 0, sawB = 0, strays = 0;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < kills; i++)
        {
            // Every other child rewrites the store; every third runs without fsync so that kills also land
            // in the cheap-write window, and half of those replace the file by swapping names (deferred write-back).
            bool store = i % 2 == 1;
            var args = new List<string> { "_atomic-write-loop", store ? storePath : path };
            if (i % 3 == 2) args.Add("--no-sync");
            if (i % 3 == 2 && i % 12 >= 8) args.Add("--defer-write-back"); // i % 12 of 8 (file) and 11 (store)
            if (store) args.Add("--store");
            using (var child = ChildProcess.Cli([.. args]))
            {
                Assert.Equal("ready", child.ReadLine());
                Thread.Sleep(rng.Next(0, 40));
                child.Kill();
                child.Process.WaitForExit();
            }
            if (store)
            {
                using var cs = new CompressedStorage(storePath);
                var v = cs[1].Data.Span;
                bool sa = v.SequenceEqual(a), sb = v.SequenceEqual(b);
                Assert.True(sa || sb, $"after kill {i}: the store's key 1 has {v.Length} bytes, neither version");
                if (sa) storeA++; else storeB++;
                foreach (var stray in Directory.GetFiles(dir.Path, ".victim.pkl.tmp.*")) { storeStrays++; File.Delete(stray); }
                continue;
            }
            byte[]? now = AtomicFile.ReadAllBytes(path);
            Assert.NotNull(now);
            bool isA = now!.AsSpan().SequenceEqual(a), isB = now.AsSpan().SequenceEqual(b);
            Assert.True(isA || isB, $"after kill {i}: file has {now.Length} bytes, neither version A ({a.Length}) nor B ({b.Length})");
            if (isA) sawA++; else sawB++;
            foreach (var stray in Directory.GetFiles(dir.Path, ".victim.bin.tmp.*"))
            {
                strays++;
                File.Delete(stray);
            }
        }
        output.WriteLine($"{kills} kills in {sw.Elapsed.TotalSeconds:0.0} s: file was A {sawA}x, B {sawB}x; store was A {storeA}x, B {storeB}x; {strays} + {storeStrays} stray temp files left by killed writers");
        Assert.True(storeA > 0 && storeB > 0, $"the store never changed between versions (A {storeA}, B {storeB})");
        // The kills must have hit a writer that was actually replacing the file, or the test proves nothing.
        Assert.True(sawA > 0 && sawB > 0, $"the file never changed between versions (A {sawA}, B {sawB})");
        Assert.True(strays > 0, "no kill landed while a temp file was being written");
        Assert.True(storeStrays > 0, "no kill landed while a store push was writing its temp file");
    }
}
