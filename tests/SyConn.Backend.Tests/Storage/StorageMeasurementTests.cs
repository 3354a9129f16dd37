using System.Diagnostics;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// Prints the costs of the storage primitives (no assertions on time): uncontended lock round trip and a
/// small atomic write with and without fsync. The test checks only that the work was done.
/// </summary>
[Collection(StorageProcessCollection.Name)]
public class StorageMeasurementTests(ITestOutputHelper output)
{
    [Fact]
    public void Uncontended_lock_round_trip()
    {
        using var dir = new TempDir();
        string lk = LockPaths.ForStore(dir.File("m.pkl"));
        for (int i = 0; i < 200; i++) FileLock.Acquire(lk).Dispose(); // warm up
        const int n = 2000;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < n; i++)
        {
            using var l = FileLock.Acquire(lk);
            Assert.True(l.IsHeld);
        }
        sw.Stop();
        output.WriteLine($"uncontended Acquire+Dispose: {sw.Elapsed.TotalMicroseconds / n:0.0} us per round trip ({n} rounds)");
        Assert.True(RawLockProbe.TryLockAndUnlock(lk), "the lock was not released");
    }

    [Fact]
    public void Small_atomic_write_with_and_without_fsync()
    {
        using var dir = new TempDir();
        string p = dir.File("small.pkl");
        var data = new byte[4096];
        new Random(1).NextBytes(data);
        foreach (bool durable in new[] { false, true, false, true })
        {
            int n = durable ? 50 : 500;
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < n; i++) AtomicFile.Write(p, data, durable);
            sw.Stop();
            output.WriteLine($"AtomicFile.Write 4 KiB durable={durable}: {sw.Elapsed.TotalMicroseconds / n:0} us per write ({n} writes)");
        }
        Assert.Equal(data, AtomicFile.ReadAllBytes(p));
    }
}
