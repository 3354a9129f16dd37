using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// How <see cref="FileLock"/> waits for a lock held by another open file description: one blocking kernel
/// request per lock file and process, given up requests leave no lock behind, and a releasing process lets
/// a blocked waiter in before it takes the lock again.
/// </summary>
public class FileLockWaitTests
{
    private static readonly LockOptions Tiny = new() { Timeout = TimeSpan.FromMilliseconds(20) };
    private static readonly LockOptions Long = new() { Timeout = TimeSpan.FromSeconds(30) };

    [Fact]
    public void Given_up_waits_share_one_kernel_request_which_the_next_waiter_adopts()
    {
        using var dir = new TempDir();
        string lk = dir.File(".share.lk");
        var probe = RawLockProbe.Hold(lk);
        for (int i = 0; i < 5; i++)
            Assert.False(FileLock.TryAcquire(lk, Tiny, out _));
        var e = Assert.Throws<StorageLockTimeoutException>(() => FileLock.Acquire(lk, Tiny));
        Assert.False(e.HeldInProcess);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(20)))
            Assert.ThrowsAny<OperationCanceledException>(() => FileLock.Acquire(lk, Long, cts.Token));
        // A zero timeout never blocks and leaves the pending request alone.
        Assert.False(FileLock.TryAcquire(lk, out _));
        Assert.Equal(1, FileLock.KernelWaitsStarted(lk));
        Assert.True(FileLock.HasAbandonedKernelWait(lk));

        probe.Dispose();
        using (var held = FileLock.Acquire(lk, Long))
        {
            Assert.True(held.IsHeld);
            Assert.Equal(1, FileLock.KernelWaitsStarted(lk)); // the pending request was adopted
            Assert.False(FileLock.HasAbandonedKernelWait(lk));
            Assert.False(RawLockProbe.TryLockAndUnlock(lk));
        }
        Assert.True(RawLockProbe.TryLockAndUnlock(lk));
    }

    [Fact]
    public void A_given_up_request_drops_the_lock_when_the_kernel_grants_it()
    {
        using var dir = new TempDir();
        string lk = dir.File(".drop.lk");
        var probe = RawLockProbe.Hold(lk);
        Assert.False(FileLock.TryAcquire(lk, Tiny, out _));
        Assert.True(FileLock.HasAbandonedKernelWait(lk));
        probe.Dispose();

        // Nobody in this process asks again: the waiter thread gets the lock and must give it back at once.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (FileLock.HasAbandonedKernelWait(lk) && DateTime.UtcNow < deadline) Thread.Sleep(1);
        Assert.False(FileLock.HasAbandonedKernelWait(lk), "the given-up request never completed");
        Assert.True(RawLockProbe.TryLockAndUnlock(lk), "the given-up request left the lock held");
        using var again = FileLock.Acquire(lk, Long);
        Assert.True(again.IsHeld);
    }

    [Fact]
    public void A_blocked_waiter_is_not_starved_by_a_release_and_immediate_re_request()
    {
        using var dir = new TempDir();
        string lk = dir.File(".fair.lk");
        const int maxRounds = 200;
        int sequence = 0, waiterFirst = 0, rounds = 0;

        // Start with a contended acquire, as in a busy multi-process loop.
        var first = RawLockProbe.Hold(lk);
        var releaser = new Thread(() => { Thread.Sleep(20); first.Dispose(); });
        releaser.Start();
        var mine = FileLock.Acquire(lk, Long);
        releaser.Join();

        // Rounds until the waiter gets in first once (a loaded machine may need many: see below), at most maxRounds.
        while (waiterFirst == 0 && rounds < maxRounds)
        {
            rounds++;
            int waiterSeq = 0;
            var waiterReady = new ManualResetEventSlim();
            var waiter = new Thread(() =>
            {
                waiterReady.Set();
                using var got = RawLockProbe.HoldBlocking(lk); // another open file description: "another process"
                waiterSeq = Interlocked.Increment(ref sequence);
                Thread.Sleep(1); // hold it a little, like a read-modify-write cycle
            });
            waiter.Start();
            waiterReady.Wait();
            Thread.Sleep(20); // let the waiter block in the kernel

            mine.Dispose();
            mine = FileLock.Acquire(lk, Long); // re-request at once, like a loop of read-modify-write cycles
            int mySeq = Interlocked.Increment(ref sequence);
            mine.Dispose(); // the waiter may still be blocked behind us
            waiter.Join();
            if (waiterSeq < mySeq) waiterFirst++;
            mine = FileLock.Acquire(lk, Long);
        }
        mine.Dispose();

        // The re-request comes microseconds after the release. The kernel only wakes the waiter and lets it
        // retry, so the waiter gets in first only if it runs before the re-request (on an idle processor it
        // usually does) or if the re-request holds back (the hand-over window after recent contention).
        // Starving it in every round is the failure this guards against. How often it wins depends on how
        // the machine schedules the two threads (on a loaded machine 6 of 20 was seen), so the proportion is
        // measured by benchmark W8 (longest single wait), not asserted here; the rounds stop at its first win.
        Assert.True(waiterFirst >= 1, $"the blocked waiter never got the lock first in {rounds} rounds");
    }

    [Fact]
    public void A_single_use_after_contention_releases_at_once()
    {
        using var dir = new TempDir();
        string lk = dir.File(".once.lk");
        var probe = RawLockProbe.Hold(lk);
        var releaser = new Thread(() => { Thread.Sleep(20); probe.Dispose(); });
        releaser.Start();
        var mine = FileLock.Acquire(lk, Long); // contended: waited for the probe
        releaser.Join();
        mine.Dispose();
        // No quick re-request came before: nothing is deferred, another open file description gets the lock now.
        Assert.Equal(0, FileLock.DeferredReleasesOf(lk));
        Assert.True(RawLockProbe.TryLockAndUnlock(lk));
    }

    [Fact]
    public void A_loop_under_contention_defers_its_releases_and_a_deferred_release_ends_by_itself()
    {
        using var dir = new TempDir();
        string lk = dir.File(".burst.lk");
        var probe = RawLockProbe.Hold(lk);
        var releaser = new Thread(() => { Thread.Sleep(20); probe.Dispose(); });
        releaser.Start();
        var mine = FileLock.Acquire(lk, Long);
        releaser.Join();

        // A loop of cycles right after contention: within the burst a release is deferred and the next request takes
        // the lock back. Rounds until one release was deferred (a loaded machine may let a burst pass in between).
        bool deferred = false;
        for (int round = 0; round < 500 && !deferred; round++)
        {
            int before = FileLock.DeferredReleasesOf(lk);
            mine.Dispose();
            deferred = FileLock.DeferredReleasesOf(lk) > before;
            if (deferred) break;
            mine = FileLock.Acquire(lk, Long);
            Assert.True(mine.IsHeld);
        }
        Assert.True(deferred, "no release was deferred in a loop of re-requests under contention");
        Assert.False(mine.IsHeld);

        // Nobody of this process asks again: the deferred release must end by itself and free the lock for others.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        bool free = false;
        while (!free && DateTime.UtcNow < deadline)
        {
            free = RawLockProbe.TryLockAndUnlock(lk);
            if (!free) Thread.Sleep(1);
        }
        Assert.True(free, "a deferred release was never ended");
        Assert.False(LockProbe.OfLockFile(lk).Held);
        using var again = FileLock.Acquire(lk, Tiny);
        Assert.True(again.IsHeld);
    }

    [Fact]
    public void A_tight_loop_of_cycles_lets_a_waiter_blocked_in_the_kernel_in()
    {
        using var dir = new TempDir();
        string lk = dir.File(".loop.lk");
        var probe = RawLockProbe.Hold(lk);
        var releaser = new Thread(() => { Thread.Sleep(20); probe.Dispose(); });
        releaser.Start();
        var mine = FileLock.Acquire(lk, Long); // contended, as in a busy multi-process loop
        releaser.Join();

        int got = 0, cyclesNotHeld = 0;
        var waiterReady = new ManualResetEventSlim();
        var waiter = new Thread(() =>
        {
            waiterReady.Set();
            using var held = RawLockProbe.HoldBlocking(lk); // another open file description: "another process"
            Volatile.Write(ref got, 1);
        });
        waiter.Start();
        waiterReady.Wait();
        Thread.Sleep(20); // let the waiter block in the kernel

        // Read-modify-write cycles back to back, bursts included, until the waiter got in once (at most 20 s).
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        int cycles = 0;
        while (Volatile.Read(ref got) == 0 && DateTime.UtcNow < deadline)
        {
            mine.Dispose();
            mine = FileLock.Acquire(lk, Long);
            if (!LockProbe.OfLockFile(lk).Held) cyclesNotHeld++; // never: this process holds it here
            cycles++;
        }
        mine.Dispose();
        waiter.Join();
        Assert.Equal(1, got);
        Assert.True(cycles > 0);
        Assert.Equal(0, cyclesNotHeld);
    }
}
