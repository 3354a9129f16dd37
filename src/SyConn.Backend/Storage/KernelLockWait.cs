using System.Runtime.InteropServices;

namespace SyConn.Backend.Storage;

/// <summary>
/// One blocking <c>fcntl(F_OFD_SETLKW)</c> request on a lock file descriptor, run on a waiter thread so
/// that the caller can wait for it with a timeout and a cancellation token. The kernel wakes the request
/// at the moment the conflicting lock is released, so a waiter does not sleep past the release the way a
/// poller does, and a releasing process cannot keep re-taking the lock while pollers sleep.
/// </summary>
/// <remarks>
/// <para>Ownership of the descriptor follows <see cref="State"/>: while <see cref="Waiting"/> or after
/// <see cref="Acquired"/>/<see cref="Failed"/> it belongs to the caller; once the caller has moved the
/// state to <see cref="Abandoned"/> it belongs to the waiter thread, which, when the kernel finally grants
/// the lock, unlocks and closes it at once (<see cref="Dropped"/>), so no lock is ever left held by nobody.
/// An abandoned request stays blocked in the kernel until the holder releases; the in-process gate keeps
/// it (<see cref="FileLock"/>) so that the next waiter of this process adopts it again instead of starting
/// a second one (<see cref="TryReclaim"/>).</para>
/// <para>All transitions are compare-and-swap on <see cref="State"/>.</para>
/// </remarks>
internal sealed class KernelLockWait
{
    public const int Waiting = 0;
    public const int Acquired = 1;
    public const int Failed = 2;
    public const int Abandoned = 3;
    public const int Dropped = 4;

    private int _state;
    // No spinning: the caller waits for a lock held by another process, typically for a whole
    // read-modify-write cycle or longer, and spinning would take processor time from that holder (W8:
    // about 8% less wall time without it).
    private readonly ManualResetEventSlim _done = new(false, spinCount: 0);

    public KernelLockWait(SafeHandle fd, string path)
    {
        Fd = fd;
        Path = path;
    }

    /// <summary>The lock file descriptor (see the ownership rules above).</summary>
    public SafeHandle Fd { get; }

    /// <summary>The lock file, for error messages.</summary>
    public string Path { get; }

    /// <summary>The errno of a failed request (<see cref="Failed"/>).</summary>
    public int Errno { get; private set; }

    public int State => Volatile.Read(ref _state);

    /// <summary>Starts the blocking request on a waiter thread.</summary>
    public void Start() => LockWaiterThreads.Run(this);

    /// <summary>
    /// Waits until the request has completed (true: <see cref="Acquired"/> or <see cref="Failed"/>) or the
    /// timeout has passed (false). Throws <see cref="OperationCanceledException"/> on cancellation; the
    /// request is still <see cref="Waiting"/> then (the caller decides whether to abandon it).
    /// </summary>
    public bool Wait(TimeSpan timeout, CancellationToken ct) => _done.Wait(timeout, ct);

    /// <summary>
    /// Gives the request up. True: the waiter thread now owns the descriptor and will drop the lock when
    /// the kernel grants it. False: the request completed first (<see cref="Acquired"/> or
    /// <see cref="Failed"/>) and the descriptor still belongs to the caller.
    /// </summary>
    public bool TryAbandon() => Interlocked.CompareExchange(ref _state, Abandoned, Waiting) == Waiting;

    /// <summary>
    /// Takes an abandoned request back (its descriptor belongs to the caller again). False when the waiter
    /// thread has already dropped it or is dropping it.
    /// </summary>
    public bool TryReclaim() => Interlocked.CompareExchange(ref _state, Waiting, Abandoned) == Abandoned;

    /// <summary>The waiter thread's part: block in the kernel, then hand the result over or drop it.</summary>
    internal void RunBlocking()
    {
        int fd = (int)Fd.DangerousGetHandle();
        int errno = 0;
        while (true)
        {
            var lk = FileLock.WholeFile(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_SETLKW, ref lk) == 0) break;
            errno = Marshal.GetLastPInvokeError();
            if (errno != Posix.EINTR) break;
            errno = 0;
        }
        int outcome = errno == 0 ? Acquired : Failed;
        if (errno != 0) Errno = errno;
        while (true)
        {
            if (Interlocked.CompareExchange(ref _state, outcome, Waiting) == Waiting)
            {
                _done.Set();
                return;
            }
            // Abandoned: nobody wants the lock any more. Drop it unless a new waiter reclaims the request
            // in the meantime (then the CAS above succeeds on the next round).
            if (Interlocked.CompareExchange(ref _state, Dropped, Abandoned) == Abandoned)
            {
                if (outcome == Acquired)
                {
                    var unlock = FileLock.WholeFile(Posix.F_UNLCK);
                    Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref unlock);
                }
                Fd.Dispose(); // closing the descriptor releases the lock in any case
                return;
            }
        }
    }
}

/// <summary>
/// A small pool of dedicated background threads for blocking lock requests (not the thread pool: a request
/// may block for as long as another process holds the lock). Idle threads end after a while.
/// </summary>
internal static class LockWaiterThreads
{
    private static readonly TimeSpan IdleLifetime = TimeSpan.FromSeconds(30);
    private static readonly List<Worker> Idle = [];

    public static void Run(KernelLockWait job)
    {
        Worker? worker = null;
        lock (Idle)
        {
            if (Idle.Count > 0)
            {
                worker = Idle[^1];
                Idle.RemoveAt(Idle.Count - 1);
            }
        }
        if (worker is null)
        {
            worker = new Worker(job);
            var thread = new Thread(worker.Loop) { IsBackground = true, Name = "FileLock waiter" };
            thread.UnsafeStart();
        }
        else
        {
            worker.Assign(job);
        }
    }

    private sealed class Worker(KernelLockWait first)
    {
        private readonly object _sync = new();
        private KernelLockWait? _job = first;

        public void Assign(KernelLockWait job)
        {
            lock (_sync)
            {
                _job = job;
                Monitor.Pulse(_sync);
            }
        }

        public void Loop()
        {
            while (true)
            {
                KernelLockWait job;
                lock (_sync)
                {
                    while (_job is null)
                    {
                        if (Monitor.Wait(_sync, IdleLifetime) || _job is not null) continue;
                        bool leave;
                        lock (Idle) leave = Idle.Remove(this);
                        // Not in the idle list any more: someone took this worker and is about to assign a job.
                        if (leave) return;
                    }
                    job = _job;
                    _job = null;
                }
                job.RunBlocking();
                lock (Idle) Idle.Add(this);
            }
        }
    }
}
