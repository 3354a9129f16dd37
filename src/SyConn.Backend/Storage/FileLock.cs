using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace SyConn.Backend.Storage;

/// <summary>
/// An exclusive lock on a store's lock file (<c>.&lt;name&gt;.lk</c>, see <see cref="LockPaths"/>) that
/// excludes other processes, including Python SyConn (fasteners <c>InterProcessLock</c> =
/// <c>fcntl.lockf</c> whole-file write lock), and other threads and lock objects of this process.
/// </summary>
/// <remarks>
/// <para><b>Process-safety.</b> The lock is a Linux open file description lock
/// (<c>fcntl(F_OFD_SETLK)</c>, write lock on the whole file) on a descriptor opened with <c>open(2)</c>, so
/// .NET adds no <c>flock</c> of its own. It conflicts in both directions with classic POSIX record locks
/// (what Python's <c>fcntl.lockf</c> takes) and with other OFD locks, also between two descriptors of one
/// process. It is released when the lock is disposed or when the process dies; the lock file itself is
/// never deleted (other processes may hold descriptors to it). The line <c>pid@host since time</c> is
/// written into the file while the lock is held and cleared on release, for humans only.</para>
/// <para><b>Waiting.</b> A request first tries once without blocking. When the lock is held by another
/// open file description (another process, Python included), the request waits in the kernel
/// (<c>fcntl(F_OFD_SETLKW)</c>) on a dedicated waiter thread while the caller waits for that thread with
/// the timeout and the cancellation token; the kernel wakes the request at the moment of the release, so
/// there is no polling delay. When the caller gives up (timeout or cancellation), the kernel request cannot
/// be withdrawn: it stays blocked, holding the waiter thread and a descriptor of the lock file, until the
/// holder releases; if the kernel then grants it, the lock is unlocked and the descriptor closed at once
/// (the lock is held by nobody for those few microseconds, which a concurrent non-blocking
/// <see cref="TryAcquire(string, out FileLock?)"/> of this process may see as busy). The next waiter of
/// this process for the same file adopts such a pending request instead of starting another, so there is
/// at most one blocked kernel request per lock file and process.</para>
/// <para><b>Bursts and hand-over.</b> Handing the lock to another process costs wake-ups and context switches,
/// more than a short read-modify-write cycle itself; so a process that has seen contention during the last
/// 50 ms keeps the lock for a bounded burst of 5 ms from the start of its run of holds. Within the burst,
/// when the process has lately asked for the lock again right after releasing it (a loop of cycles),
/// <see cref="Dispose"/> defers the release: the kernel lock stays held for up to 2 ms more, and this
/// process's next request within that time takes it back at once (without a system call). A deferred
/// release that nobody of this process takes back is released by a background thread after those 2 ms.
/// The first release after the burst is immediate, and a re-request within 1 ms of it first gives the
/// other waiters up to that millisecond to take the lock (sleeping in 50 µs steps, stopping as soon as
/// another holder shows up); whatever is taken after that starts a new run. So a waiter waits at most
/// about one burst per other busy process, and none is starved. Without recent contention, or without a
/// recent quick re-request, nothing is deferred or delayed: <see cref="Dispose"/> releases at once, as
/// always for locks held longer than the burst. While a release is deferred, other processes (and
/// <see cref="LockProbe"/>) see the lock as held. Python waiters poll (fasteners sleeps 0.1 s and more
/// between tries), so they get the lock when they happen to find it free, as among Python processes.</para>
/// <para><b>Thread-safety.</b> The static methods are thread-safe. Before the file lock is taken, an
/// in-process gate per canonical lock path (folder with symbolic links resolved + file name) is entered,
/// so threads and separate <see cref="FileLock"/> objects of one process exclude each other without
/// polling (and only one of them waits for the file lock); waiting there counts against the same
/// timeout. The lock is not re-entrant: acquiring the same
/// path again while holding it waits (and times out). A lock may be released from any thread (it is not
/// bound to the acquiring thread, so it works across <c>await</c>); <see cref="Dispose"/> is idempotent
/// and thread-safe. Disposing one lock never drops another lock object's lock. A lock that is never
/// disposed is released when it is garbage-collected (as upstream's) — relying on that is a bug.</para>
/// <para>Linux only (x86-64, arm64); elsewhere <see cref="PlatformNotSupportedException"/>. Locks on
/// network file systems behave as the file system makes them (not verified).</para>
/// </remarks>
public sealed class FileLock : IStoreLock
{
    private sealed class Gate(string canonicalPath)
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public readonly string CanonicalPath = canonicalPath;

        /// <summary>
        /// A kernel lock request of this process that its caller gave up (timeout or cancellation) and that
        /// is still blocked; the next waiter adopts it. Read and written only by the holder of
        /// <see cref="Semaphore"/>.
        /// </summary>
        public KernelLockWait? Pending;

        /// <summary>How many blocking kernel requests this process has made for this lock file (for tests).</summary>
        public int KernelWaits;

        /// <summary>How many releases this process has deferred for this lock file (for tests).</summary>
        public int DeferredReleases;

        /// <summary>Stopwatch timestamp of the last release of this file lock by this process (0: none).</summary>
        public long LastRelease;

        /// <summary>Stopwatch timestamp of the last time a lock request of this process found the file lock held (0: never).</summary>
        public long LastContended;

        /// <summary>
        /// Stopwatch timestamp of the start of this process's current run of holds: the acquisition that was not a
        /// quick re-take of its own release (see <see cref="BurstTicks"/>).
        /// </summary>
        public long StreakStart;

        /// <summary>Stopwatch timestamp of the last request of this process that came within the hand-over window of its own release (0: never).</summary>
        public long LastQuickRequest;

        /// <summary>
        /// The descriptor of a lock that was disposed within a burst and whose release is deferred (see
        /// <see cref="LingerMs"/>): it still holds the file lock. Guarded by <see cref="LingerSync"/>.
        /// </summary>
        public LockFd? Lingering;

        /// <summary>Stopwatch timestamp after which <see cref="Lingering"/> is released. Guarded by <see cref="LingerSync"/>.</summary>
        public long LingerDeadline;

        // True while the thread that ends deferred releases runs, and while it waits for one to come. Guarded by LingerSync.
        private bool _lingerThreadRunning;
        private bool _lingerThreadIdle;

        public readonly object LingerSync = new();

        /// <summary>Defers the release of <paramref name="fd"/>; the caller holds <see cref="Semaphore"/>.</summary>
        public void Linger(LockFd fd, long now)
        {
            Interlocked.Increment(ref DeferredReleases);
            lock (LingerSync)
            {
                Lingering = fd;
                LingerDeadline = now + LingerTicks;
                if (!_lingerThreadRunning)
                {
                    _lingerThreadRunning = true;
                    new Thread(LingerLoop) { IsBackground = true, Name = "FileLock release" }.UnsafeStart();
                }
                else if (_lingerThreadIdle)
                {
                    Monitor.Pulse(LingerSync);
                }
            }
        }

        /// <summary>Takes a deferred lock back (null when there is none); the caller holds <see cref="Semaphore"/>.</summary>
        public LockFd? Reclaim()
        {
            lock (LingerSync)
            {
                var fd = Lingering;
                Lingering = null;
                return fd;
            }
        }

        /// <summary>
        /// The release thread (one per lock file while deferred releases happen; it ends after a second without any):
        /// releases the deferred lock once its deadline has passed, under the gate so that no request of this process
        /// finds its own lock still held. A dedicated thread, not a timer: the thread pool's timer and workers cost
        /// more wake-ups per release than the deferral saves.
        /// </summary>
        private void LingerLoop()
        {
            lock (LingerSync)
            {
                while (true)
                {
                    if (Lingering is null)
                    {
                        _lingerThreadIdle = true;
                        bool woken = Monitor.Wait(LingerSync, 1000);
                        _lingerThreadIdle = false;
                        if (!woken && Lingering is null)
                        {
                            _lingerThreadRunning = false;
                            return;
                        }
                        continue;
                    }
                    long left = LingerDeadline - Stopwatch.GetTimestamp();
                    if (left > 0)
                    {
                        Monitor.Wait(LingerSync, (int)(left * 1000 / Stopwatch.Frequency) + 1);
                        continue;
                    }
                    // Due. A request of this process that holds the gate is taking the lock back (or about to defer
                    // it again): look again in a moment.
                    if (!Semaphore.Wait(0))
                    {
                        Monitor.Wait(LingerSync, 1);
                        continue;
                    }
                    try
                    {
                        var fd = Lingering;
                        Lingering = null;
                        ReleaseDescriptor(fd, this);
                    }
                    finally
                    {
                        Semaphore.Release();
                    }
                }
            }
        }
    }

    // Hand-over to waiters of other processes (see the remarks of the class). The kernel wakes blocked requests
    // when the lock is released but does not hand the lock to one of them: whoever asks first after the release
    // gets it. Handing over on every release makes each cycle of a tight loop a cross-process hand-over, which
    // costs more than the cycle itself; so a process that has seen contention within ContentionMemoryTicks keeps
    // the lock for a burst of BurstTicks from the start of its run of holds (StreakStart). Within the burst a
    // release is deferred (LingerMs): releasing and re-taking instead would wake every waiter blocked in the
    // kernel on each release, and a woken waiter on an idle processor takes the lock before the releasing
    // process asks again, so the burst would not happen. (Only for a process that lately asked again within
    // HandOffWindowTicks of its own release, LastQuickRequest: a single use releases at once.) After the burst the release is immediate, and a
    // re-request within HandOffWindowTicks gives the waiters that window first (sleeping in HandOffStepNs
    // steps, stopping as soon as another holder shows up). Without recent contention nothing changes: the
    // uncontended path pays a timestamp read per release.
    private static readonly long HandOffWindowTicks = Stopwatch.Frequency / 1000; // 1 ms
    private static readonly long ContentionMemoryTicks = Stopwatch.Frequency / 20; // 50 ms
    private static readonly long BurstTicks = Stopwatch.Frequency / 200; // 5 ms
    private const long HandOffStepNs = 50_000; // 50 us
    private const int LingerMs = 2;
    private static readonly long LingerTicks = Stopwatch.Frequency * LingerMs / 1000;

    // One gate per canonical lock path, and the gate of each absolute path seen (so that the folder's
    // symbolic links are resolved once per path); entries are kept for the life of the process (a small
    // object per distinct lock file ever used).
    private static readonly ConcurrentDictionary<string, Gate> Gates = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, Gate> GatesByPath = new(StringComparer.Ordinal);

    /// <summary><c>pid@host</c> of the holder line, built once (the host name costs a system call each time it is asked for).</summary>
    private static readonly Lazy<string> HolderName = new(() => string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId}@{Environment.MachineName}"));

    /// <summary>The holder line is padded to this size so that writing and clearing it never changes the file size.</summary>
    private const int HolderRecordBytes = 128;

    private readonly Gate _gate;
    private readonly LockFd _fd;
    private int _released;

    private FileLock(string lockPath, Gate gate, LockFd fd)
    {
        LockPath = lockPath;
        _gate = gate;
        _fd = fd;
    }

    /// <summary>Releases the in-process gate of a lock that was never disposed (the descriptor closes itself).</summary>
    ~FileLock()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) _gate.Semaphore.Release();
    }

    /// <summary>The lock file as given (made absolute).</summary>
    public string LockPath { get; }

    /// <summary>The lock file with the folder's symbolic links resolved: the key of the in-process gate.</summary>
    public string CanonicalPath => _gate.CanonicalPath;

    /// <summary>The lock file (<see cref="LockPath"/>): what <see cref="IStoreLock"/> calls the locked resource.</summary>
    public string Resource => LockPath;

    /// <summary>True until <see cref="Dispose"/> is called.</summary>
    public bool IsHeld => Volatile.Read(ref _released) == 0;

    /// <summary>
    /// Takes the lock on <paramref name="lockPath"/>, waiting up to <see cref="LockOptions.Timeout"/>.
    /// Creates the lock file (mode 0666 minus umask) and its folder when missing.
    /// </summary>
    /// <param name="lockPath">The lock file, usually <see cref="LockPaths.ForStore"/> of a store.</param>
    /// <param name="options">How to wait; null for <see cref="LockOptions.Default"/> (1000 s).</param>
    /// <param name="ct">Cancels the wait (<see cref="OperationCanceledException"/>).</param>
    /// <returns>The held lock; dispose it to release.</returns>
    /// <exception cref="StorageLockTimeoutException">Not acquired within the timeout.</exception>
    /// <exception cref="IOException">The lock file cannot be opened or locked for another reason (errno in the message).</exception>
    /// <exception cref="PlatformNotSupportedException">Not Linux on x86-64 or arm64.</exception>
    public static FileLock Acquire(string lockPath, LockOptions? options = null, CancellationToken ct = default)
    {
        var result = AcquireCore(lockPath, options ?? LockOptions.Default, throwOnTimeout: true, ct);
        return result!;
    }

    /// <summary>
    /// Like <see cref="Acquire"/> but returns false instead of throwing when the lock is not free within
    /// <see cref="LockOptions.Timeout"/>.
    /// </summary>
    public static bool TryAcquire(string lockPath, LockOptions? options, [NotNullWhen(true)] out FileLock? fileLock, CancellationToken ct = default)
    {
        fileLock = AcquireCore(lockPath, options ?? LockOptions.Default, throwOnTimeout: false, ct);
        return fileLock is not null;
    }

    /// <summary>Tries once, without waiting; returns false when someone else holds the lock.</summary>
    public static bool TryAcquire(string lockPath, [NotNullWhen(true)] out FileLock? fileLock) =>
        TryAcquire(lockPath, new LockOptions { Timeout = TimeSpan.Zero }, out fileLock);

    /// <summary>
    /// Releases the lock: clears the holder line, unlocks, closes the descriptor. Idempotent. Within a burst of a
    /// loop of cycles under contention the release is deferred by up to 2 ms so that this process's next request takes the lock
    /// back without a hand-over (see the remarks of the class).
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        GC.SuppressFinalize(this);
        try
        {
            long now = Stopwatch.GetTimestamp();
            if (InBurst(_gate, now) && now - Volatile.Read(ref _gate.LastQuickRequest) < ContentionMemoryTicks)
            {
                // Deferred: still held in the kernel; the next request of this process takes it back (see LingerMs).
                _gate.Linger(_fd, now);
                return;
            }
            ReleaseDescriptor(_fd, _gate);
        }
        finally
        {
            _gate.Semaphore.Release();
        }
    }

    /// <summary>Clears the holder line, unlocks and closes <paramref name="owned"/>; notes the release in <paramref name="gate"/>.</summary>
    private static void ReleaseDescriptor(LockFd owned, Gate gate)
    {
        try
        {
            int fd = (int)owned.DangerousGetHandle();
            ClearHolderLine(fd);
            var unlock = WholeFile(Posix.F_UNLCK);
            Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref unlock);
        }
        finally
        {
            // Closing the only descriptor of the open file description releases the lock in any case.
            owned.Dispose();
            Volatile.Write(ref gate.LastRelease, Stopwatch.GetTimestamp());
        }
    }

    /// <summary>True while this process's run of holds is within its burst and it has seen contention lately (see <see cref="BurstTicks"/>).</summary>
    private static bool InBurst(Gate gate, long now)
    {
        long contended = Volatile.Read(ref gate.LastContended);
        return contended != 0 && now - contended < ContentionMemoryTicks && now - Volatile.Read(ref gate.StreakStart) < BurstTicks;
    }

    /// <summary>How many blocking kernel requests this process has started for <paramref name="lockPath"/> (0 when never used); for tests.</summary>
    internal static int KernelWaitsStarted(string lockPath) =>
        GatesByPath.TryGetValue(Path.GetFullPath(lockPath), out var gate) ? Volatile.Read(ref gate.KernelWaits) : 0;

    /// <summary>How many releases of <paramref name="lockPath"/> this process has deferred within a burst (0 when never used); for tests.</summary>
    internal static int DeferredReleasesOf(string lockPath) =>
        GatesByPath.TryGetValue(Path.GetFullPath(lockPath), out var gate) ? Volatile.Read(ref gate.DeferredReleases) : 0;

    /// <summary>True while a request of this process that its caller gave up is still blocked in the kernel or still holds the lock; for tests.</summary>
    internal static bool HasAbandonedKernelWait(string lockPath) =>
        GatesByPath.TryGetValue(Path.GetFullPath(lockPath), out var gate)
        && Volatile.Read(ref gate.Pending) is { } pending
        && pending.State == KernelLockWait.Abandoned;

    /// <inheritdoc/>
    public override string ToString() => $"FileLock({LockPath}, {(IsHeld ? "held" : "released")})";

    private static FileLock? AcquireCore(string lockPath, LockOptions options, bool throwOnTimeout, CancellationToken ct)
    {
        Posix.EnsureSupported(nameof(FileLock));
        ArgumentException.ThrowIfNullOrEmpty(lockPath);
        options.Validate();
        ct.ThrowIfCancellationRequested();

        string full = Path.GetFullPath(lockPath);
        string name = Path.GetFileName(full);
        if (name.Length == 0) throw new ArgumentException($"A lock path must name a file: '{lockPath}'.", nameof(lockPath));
        string dir = Path.GetDirectoryName(full)!;
        if (!GatesByPath.TryGetValue(full, out var gate))
        {
            Directory.CreateDirectory(dir);
            string canonical = Path.Combine(Posix.RealPath(dir), name);
            gate = GatesByPath.GetOrAdd(full, Gates.GetOrAdd(canonical, static c => new Gate(c)));
        }

        long start = Stopwatch.GetTimestamp();
        TimeSpan timeout = options.Timeout;
        bool infinite = timeout == Timeout.InfiniteTimeSpan;

        if (!gate.Semaphore.Wait(infinite ? Timeout.InfiniteTimeSpan : Remaining(start, timeout), ct))
        {
            if (!throwOnTimeout) return null;
            throw new StorageLockTimeoutException(full, null, null, heldInProcess: true, Stopwatch.GetElapsedTime(start));
        }

        // The descriptor this call owns and must close when it does not return a lock, and whether this
        // call still holds the gate.
        LockFd? owned = null;
        bool gateHeld = true;
        try
        {
            if (gate.Reclaim() is { } kept)
            {
                // Our own lock, released within the burst and not yet let go: take it back as it is (the holder
                // line still names this process).
                return new FileLock(full, gate, kept);
            }
            KernelLockWait? wait = null;
            if (gate.Pending is { } pending && (timeout != TimeSpan.Zero || pending.State == KernelLockWait.Dropped))
            {
                // An earlier waiter of this process gave up while its request was blocked in the kernel.
                // Adopt that request rather than queueing a second one; a request that was dropped meanwhile
                // is forgotten. (A zero timeout never blocks, so it leaves a live request alone.)
                gate.Pending = null;
                if (timeout != TimeSpan.Zero && pending.TryReclaim())
                {
                    wait = pending;
                    owned = (LockFd)pending.Fd;
                    Volatile.Write(ref gate.LastContended, Stopwatch.GetTimestamp());
                }
            }

            if (wait is null)
            {
                owned = LockFd.Open(full, dir);
                int raw = (int)owned.DangerousGetHandle();
                long now = Stopwatch.GetTimestamp();
                bool retake = IsRetake(gate, now);
                if (retake) Volatile.Write(ref gate.LastQuickRequest, now);
                if (retake && timeout != TimeSpan.Zero)
                    retake = !LetOtherWaitersIn(gate, raw, infinite ? long.MaxValue : start + (long)(timeout.TotalSeconds * Stopwatch.Frequency));
                if (TrySetLock(raw, full)) return Held(full, gate, ref owned, retake);
                Volatile.Write(ref gate.LastContended, Stopwatch.GetTimestamp());

                if (!infinite && Stopwatch.GetElapsedTime(start) >= timeout)
                {
                    if (!throwOnTimeout)
                    {
                        owned.Dispose();
                        gateHeld = false;
                        gate.Semaphore.Release();
                        return null;
                    }
                    throw new StorageLockTimeoutException(full, QueryHolderPid(raw), ReadHolderLine(raw),
                        heldInProcess: false, Stopwatch.GetElapsedTime(start));
                }

                if (infinite && !ct.CanBeCanceled)
                {
                    // Nobody can stop this wait: block in the kernel on this thread.
                    Interlocked.Increment(ref gate.KernelWaits);
                    SetLockBlocking(raw, full);
                    return Held(full, gate, ref owned, retake: false);
                }

                wait = new KernelLockWait(owned, full);
                Interlocked.Increment(ref gate.KernelWaits);
                wait.Start();
            }

            bool completed;
            try
            {
                completed = wait.Wait(infinite ? Timeout.InfiniteTimeSpan : Remaining(start, timeout), ct);
            }
            catch (OperationCanceledException)
            {
                if (wait.TryAbandon())
                {
                    owned = null; // the waiter thread closes it
                    gate.Pending = wait;
                    gateHeld = false;
                    gate.Semaphore.Release();
                    throw;
                }
                // The request completed at the same moment. The caller asked to stop, so a granted lock is
                // given back (owned is closed by the handler below, which also releases the gate).
                throw;
            }

            if (!completed)
            {
                int raw = (int)owned!.DangerousGetHandle();
                // Ask who holds the lock while the descriptor is still ours.
                int? pid = throwOnTimeout ? QueryHolderPid(raw) : null;
                string? line = throwOnTimeout ? ReadHolderLine(raw) : null;
                if (wait.TryAbandon())
                {
                    owned = null; // the waiter thread closes it
                    gate.Pending = wait;
                    gateHeld = false;
                    gate.Semaphore.Release();
                    if (!throwOnTimeout) return null;
                    throw new StorageLockTimeoutException(full, pid, line, heldInProcess: false, Stopwatch.GetElapsedTime(start));
                }
                // Granted at the deadline: take it.
            }

            if (wait.State == KernelLockWait.Failed) throw Posix.Error("fcntl(F_OFD_SETLKW)", full, wait.Errno);
            return Held(full, gate, ref owned, retake: false);
        }
        catch
        {
            owned?.Dispose();
            if (gateHeld) gate.Semaphore.Release();
            throw;
        }
    }

    /// <summary>True when a request at <paramref name="now"/> re-takes this process's own release of a moment ago (see <see cref="BurstTicks"/>).</summary>
    private static bool IsRetake(Gate gate, long now)
    {
        long released = Volatile.Read(ref gate.LastRelease);
        return released != 0 && now - released < HandOffWindowTicks;
    }

    /// <summary>
    /// See <see cref="HandOffWindowTicks"/>: for a re-take after the burst, when there was recent contention, gives
    /// waiters of other processes the lock first. True when it did (the burst is over), false when the re-take may go
    /// ahead within the burst or without contention.
    /// </summary>
    private static bool LetOtherWaitersIn(Gate gate, int fd, long deadline)
    {
        long released = Volatile.Read(ref gate.LastRelease);
        long contended = Volatile.Read(ref gate.LastContended);
        if (contended == 0) return false;
        long now = Stopwatch.GetTimestamp();
        if (now - contended >= ContentionMemoryTicks || InBurst(gate, now)) return false;
        deadline = Math.Min(deadline, released + HandOffWindowTicks);
        var step = new Posix.Timespec { tv_sec = 0, tv_nsec = HandOffStepNs };
        while (Stopwatch.GetTimestamp() < deadline)
        {
            Posix.Nanosleep(step, 0);
            var lk = WholeFile(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_GETLK, ref lk) != 0 || lk.l_type != Posix.F_UNLCK) break;
        }
        return true;
    }

    /// <summary>The lock is ours: a re-take within the burst keeps the run of holds going, anything else starts one.</summary>
    private static FileLock Held(string full, Gate gate, ref LockFd? owned, bool retake)
    {
        if (!retake) Volatile.Write(ref gate.StreakStart, Stopwatch.GetTimestamp());
        var fd = owned!;
        WriteHolderLine((int)fd.DangerousGetHandle());
        var held = new FileLock(full, gate, fd);
        owned = null;
        return held;
    }

    private static TimeSpan Remaining(long start, TimeSpan timeout)
    {
        var left = timeout - Stopwatch.GetElapsedTime(start);
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    internal static Posix.Flock WholeFile(short type) => new()
    {
        l_type = type,
        l_whence = Posix.SEEK_SET,
        l_start = 0,
        l_len = 0, // to the end of the file and beyond, like lockf(fd, F_TLOCK, 0) in Python
        l_pid = 0, // must be 0 for OFD locks
    };

    /// <summary>One non-blocking try. True = acquired, false = busy; other failures throw.</summary>
    private static bool TrySetLock(int fd, string path)
    {
        while (true)
        {
            var lk = WholeFile(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref lk) == 0) return true;
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Posix.EAGAIN or Posix.EACCES) return false;
            if (errno == Posix.EINTR) continue;
            throw Posix.Error("fcntl(F_OFD_SETLK)", path, errno);
        }
    }

    /// <summary>Blocks in the kernel until the lock is granted; failures other than EINTR throw.</summary>
    private static void SetLockBlocking(int fd, string path)
    {
        while (true)
        {
            var lk = WholeFile(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_SETLKW, ref lk) == 0) return;
            int errno = Marshal.GetLastPInvokeError();
            if (errno != Posix.EINTR) throw Posix.Error("fcntl(F_OFD_SETLKW)", path, errno);
        }
    }

    /// <summary>The pid of the conflicting lock, when the kernel knows it (classic POSIX locks; -1 for OFD locks).</summary>
    private static int? QueryHolderPid(int fd)
    {
        var lk = WholeFile(Posix.F_WRLCK);
        if (Posix.FcntlLock(fd, Posix.F_OFD_GETLK, ref lk) != 0)
            return null; // only used for the message; the timeout itself is the error to report
        if (lk.l_type == Posix.F_UNLCK) return null;
        return lk.l_pid > 0 ? lk.l_pid : null;
    }

    private static unsafe string? ReadHolderLine(int fd)
    {
        byte* buf = stackalloc byte[512];
        nint n = Posix.Pread(fd, buf, 512, 0);
        if (n <= 0) return null;
        var text = Encoding.UTF8.GetString(buf, (int)n);
        int nl = text.IndexOf('\n');
        if (nl >= 0) text = text[..nl];
        text = text.Trim();
        return text.Length == 0 ? null : text;
    }

    // The holder line is written as a fixed-size record padded with spaces and cleared by overwriting it with
    // spaces, so the file keeps its size: pwrite only, no ftruncate (which costs ~10x more on ext4).
    // Python never reads or writes the file's content.
    private static unsafe void WriteHolderLine(int fd)
    {
        string line = string.Create(CultureInfo.InvariantCulture, $"{HolderName.Value} since {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ}");
        int length = Math.Max(HolderRecordBytes, Encoding.UTF8.GetByteCount(line) + 1);
        Span<byte> record = length <= 512 ? stackalloc byte[length] : new byte[length];
        record.Fill((byte)' ');
        Encoding.UTF8.GetBytes(line, record);
        record[^1] = (byte)'\n';
        // Best effort: the line is for humans; the lock is what counts.
        fixed (byte* p = record) Posix.Pwrite(fd, p, (nuint)record.Length, 0);
    }

    private static unsafe void ClearHolderLine(int fd)
    {
        Span<byte> record = stackalloc byte[HolderRecordBytes];
        record.Fill((byte)' ');
        record[^1] = (byte)'\n';
        fixed (byte* p = record) Posix.Pwrite(fd, p, (nuint)record.Length, 0);
    }

    /// <summary>The descriptor of the lock file; closing it releases the lock.</summary>
    private sealed class LockFd : SafeHandle
    {
        private LockFd() : base(-1, ownsHandle: true) { }

        public override bool IsInvalid => handle == -1;

        public static LockFd Open(string path, string dir)
        {
            int fd;
            for (bool retried = false; ; retried = true)
            {
                do fd = Posix.Open(path, Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0x1B6 /* 0666, minus umask */);
                while (fd < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR);
                if (fd >= 0) break;
                int errno = Marshal.GetLastPInvokeError();
                if (errno != Posix.ENOENT || retried) throw Posix.Error("open", path, errno);
                Directory.CreateDirectory(dir); // the folder was removed since we last used this path
            }
            var h = new LockFd();
            h.SetHandle(fd);
            return h;
        }

        protected override bool ReleaseHandle() => Posix.Close((int)handle) == 0;
    }
}
