using System.Runtime.CompilerServices;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>In-process behaviour of <see cref="FileLock"/>: the gate, timeouts, cancellation, the holder line.</summary>
public class FileLockTests
{
    private static readonly LockOptions Short = new() { Timeout = TimeSpan.FromMilliseconds(150) };

    [Fact]
    public void Two_lock_objects_in_one_process_exclude_each_other()
    {
        using var dir = new TempDir();
        string lk = dir.File(".a.pkl.lk");
        using var first = FileLock.Acquire(lk, Short);
        Assert.False(FileLock.TryAcquire(lk, out var second));
        Assert.Null(second);
        var e = Assert.Throws<StorageLockTimeoutException>(() => FileLock.Acquire(lk, Short));
        Assert.True(e.HeldInProcess);
        Assert.Equal(Path.GetFullPath(lk), e.LockPath);
        Assert.Contains(lk, e.Message);
        Assert.True(e.Waited >= TimeSpan.FromMilliseconds(100), e.Waited.ToString());
        first.Dispose();
        Assert.False(first.IsHeld);
        Assert.True(FileLock.TryAcquire(lk, out var third));
        third.Dispose();
    }

    [Fact]
    public void Threads_exclude_each_other_no_lost_updates()
    {
        using var dir = new TempDir();
        string lk = dir.File(".counter.lk");
        long counter = 0; // deliberately non-atomic read-modify-write, protected only by the lock
        int inside = 0, maxInside = 0;
        var threads = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                using var l = FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromSeconds(60) });
                int now = Interlocked.Increment(ref inside);
                if (now > Volatile.Read(ref maxInside)) Volatile.Write(ref maxInside, now);
                long v = Volatile.Read(ref counter);
                if (i % 16 == 0) Thread.Yield();
                Volatile.Write(ref counter, v + 1);
                Interlocked.Decrement(ref inside);
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.Equal(800, counter);
        Assert.Equal(1, maxInside);
    }

    [Fact]
    public void Symlinked_folder_maps_to_the_same_gate()
    {
        using var dir = new TempDir();
        string real = dir.File("real");
        Directory.CreateDirectory(real);
        string link = dir.File("link");
        Directory.CreateSymbolicLink(link, real);
        using var a = FileLock.Acquire(Path.Combine(real, ".x.lk"), Short);
        Assert.Equal(a.CanonicalPath, Path.Combine(Posix.RealPath(real), ".x.lk"));
        var e = Assert.Throws<StorageLockTimeoutException>(() => FileLock.Acquire(Path.Combine(link, ".x.lk"), Short));
        Assert.True(e.HeldInProcess);
    }

    [Fact]
    public void Disposing_one_lock_keeps_another_locks_file_lock()
    {
        using var dir = new TempDir();
        string a = dir.File(".a.lk"), b = dir.File(".b.lk");
        using var la = FileLock.Acquire(a, Short);
        var lb = FileLock.Acquire(b, Short);
        lb.Dispose();
        lb.Dispose(); // idempotent
        // Opening and closing other descriptors of the held lock file in this process (what drops a classic
        // POSIX lock) must not drop ours: a failing acquire opens and closes one, and so does a plain read.
        Assert.False(FileLock.TryAcquire(a, out _));
        Assert.NotNull(AtomicFile.ReadAllBytes(a));
        using (new FileStream(a, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite)) { }
        Assert.True(la.IsHeld);
        Assert.True(KernelSaysLocked(a), "the OFD lock was dropped when another descriptor closed");
    }

    /// <summary>Asks the kernel, bypassing the in-process gate: a raw F_OFD_SETLK on a new descriptor.</summary>
    internal static bool KernelSaysLocked(string lockPath) => !RawLockProbe.TryLockAndUnlock(lockPath);

    [Fact]
    public void Holder_line_is_written_while_held_and_cleared_on_release()
    {
        using var dir = new TempDir();
        string lk = dir.File(".s.lk");
        var l = FileLock.Acquire(lk);
        string text = File.ReadAllText(lk);
        Assert.StartsWith($"{Environment.ProcessId}@{Environment.MachineName} since ", text);
        l.Dispose();
        Assert.True(string.IsNullOrWhiteSpace(File.ReadAllText(lk)), "the holder line was not cleared");
        Assert.True(File.Exists(lk), "the lock file must never be deleted");
    }

    [Fact]
    public void Cancellation_stops_the_wait_and_leaves_the_gate_usable()
    {
        using var dir = new TempDir();
        string lk = dir.File(".c.lk");
        var holder = FileLock.Acquire(lk);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.ThrowsAny<OperationCanceledException>(() => FileLock.Acquire(lk, LockOptions.Default, cts.Token));
        holder.Dispose();
        using var again = FileLock.Acquire(lk, Short);
        Assert.True(again.IsHeld);
    }

    [Fact]
    public void Cancellation_during_the_file_lock_wait()
    {
        using var dir = new TempDir();
        string lk = dir.File(".c2.lk");
        using var probe = RawLockProbe.Hold(lk); // another open file description holds it: we poll, not the gate
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        Assert.ThrowsAny<OperationCanceledException>(() => FileLock.Acquire(lk, LockOptions.Default, cts.Token));
        probe.Dispose();
        using var again = FileLock.Acquire(lk, Short);
        Assert.True(again.IsHeld);
    }

    [Fact]
    public void Release_from_another_thread_works()
    {
        using var dir = new TempDir();
        string lk = dir.File(".t.lk");
        var l = FileLock.Acquire(lk);
        var t = new Thread(l.Dispose);
        t.Start();
        t.Join();
        Assert.True(FileLock.TryAcquire(lk, out var l2));
        l2.Dispose();
    }

    [Fact]
    public void Abandoned_lock_is_released_by_the_garbage_collector()
    {
        using var dir = new TempDir();
        string lk = dir.File(".g.lk");
        AcquireAndDrop(lk);
        bool ok = false;
        for (int i = 0; i < 10 && !ok; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            if (FileLock.TryAcquire(lk, out var l)) { ok = true; l.Dispose(); }
        }
        Assert.True(ok, "an abandoned lock was not released after garbage collection");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AcquireAndDrop(string lk) => FileLock.Acquire(lk);

    [Fact]
    public void Creates_missing_folder_and_lock_file()
    {
        using var dir = new TempDir();
        string lk = Path.Combine(dir.Path, "x", "y", ".z.lk");
        using (FileLock.Acquire(lk)) Assert.True(File.Exists(lk));
        Assert.True(File.Exists(lk));
    }

    [Fact]
    public void Options_are_validated()
    {
        using var dir = new TempDir();
        string lk = dir.File(".o.lk");
        Assert.Throws<ArgumentOutOfRangeException>(() => FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromSeconds(-1) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => FileLock.Acquire(lk, new LockOptions { MaxNbAttempts = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => FileLock.Acquire(lk, new LockOptions { MaxDelay = TimeSpan.FromSeconds(-1) }));
        Assert.Throws<ArgumentException>(() => FileLock.Acquire(""));
        Assert.Equal(TimeSpan.FromSeconds(1000), LockOptions.Default.Timeout);
        Assert.Equal(100, LockOptions.Default.MaxNbAttempts);
        Assert.Equal(TimeSpan.FromSeconds(100), LockOptions.Default.MaxDelay);
        // Infinite is allowed; with a free lock it returns at once.
        using var l = FileLock.Acquire(lk, new LockOptions { Timeout = Timeout.InfiniteTimeSpan, MaxDelay = TimeSpan.Zero });
        Assert.True(l.IsHeld);
    }

    [Fact]
    public void LockPaths_for_store()
    {
        using var dir = new TempDir();
        Assert.Equal(Path.Combine(dir.Path, "sub", ".attr_dict.pkl.lk"), LockPaths.ForStore(Path.Combine(dir.Path, "sub", "attr_dict.pkl")));
        Assert.True(Directory.Exists(Path.Combine(dir.Path, "sub")));
        // A bare file name: beside the file in the current directory, not at the file system root.
        Assert.Equal(Path.Combine(Environment.CurrentDirectory, ".voxel.pkl.lk"), LockPaths.ForStore("voxel.pkl"));
        Assert.Throws<ArgumentException>(() => LockPaths.ForStore(dir.Path + "/"));
        Assert.Throws<ArgumentException>(() => LockPaths.ForStore(""));
    }
}
