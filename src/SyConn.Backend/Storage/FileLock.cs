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
/// <para><b>Thread-safety.</b> The static methods are thread-safe. Before the file lock is taken, an
/// in-process gate per canonical lock path (folder with symbolic links resolved + file name) is entered,
/// so threads and separate <see cref="FileLock"/> objects of one process exclude each other without
/// polling; waiting there counts against the same timeout. The lock is not re-entrant: acquiring the same
/// path again while holding it waits (and times out). A lock may be released from any thread (it is not
/// bound to the acquiring thread, so it works across <c>await</c>); <see cref="Dispose"/> is idempotent
/// and thread-safe. Disposing one lock never drops another lock object's lock. A lock that is never
/// disposed is released when it is garbage-collected (as upstream's) — relying on that is a bug.</para>
/// <para>Linux only (x86-64, arm64); elsewhere <see cref="PlatformNotSupportedException"/>. Locks on
/// network file systems behave as the file system makes them (not verified).</para>
/// </remarks>
public sealed class FileLock : IDisposable
{
    private sealed class Gate(string canonicalPath)
    {
        public readonly SemaphoreSlim Semaphore = new(1, 1);
        public readonly string CanonicalPath = canonicalPath;
    }

    // One gate per canonical lock path, and the gate of each absolute path seen (so that the folder's
    // symbolic links are resolved once per path); entries are kept for the life of the process (a small
    // object per distinct lock file ever used).
    private static readonly ConcurrentDictionary<string, Gate> Gates = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, Gate> GatesByPath = new(StringComparer.Ordinal);

    /// <summary>The holder line is padded to this size so that writing and clearing it never changes the file size.</summary>
    private const int HolderRecordBytes = 128;

    // Back-off between two tries of the file lock: starts at 50 us and doubles up to a cap that grows with
    // the time already waited, so that a short wait ends within a fraction of a millisecond of the release
    // and a long wait costs a negligible amount of CPU (at most ~100 wake-ups per second after 2 s).
    private const double FirstPauseUs = 50;
    private static double PauseCapUs(TimeSpan waited) => waited.TotalMilliseconds switch
    {
        < 50 => 250,
        < 2000 => 2000,
        _ => 10_000,
    };

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

    /// <summary>Releases the lock: clears the holder line, unlocks, closes the descriptor. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0) return;
        GC.SuppressFinalize(this);
        try
        {
            int fd = (int)_fd.DangerousGetHandle();
            ClearHolderLine(fd);
            var unlock = WholeFile(Posix.F_UNLCK);
            Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref unlock);
        }
        finally
        {
            // Closing the only descriptor of the open file description releases the lock in any case.
            _fd.Dispose();
            _gate.Semaphore.Release();
        }
    }

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

        LockFd? fd = null;
        try
        {
            fd = LockFd.Open(full, dir);
            int raw = (int)fd.DangerousGetHandle();
            double pauseUs = FirstPauseUs;
            while (!TrySetLock(raw, full))
            {
                TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
                if (!infinite && elapsed >= timeout)
                {
                    if (!throwOnTimeout)
                    {
                        fd.Dispose();
                        gate.Semaphore.Release();
                        return null;
                    }
                    int? pid = QueryHolderPid(raw);
                    string? line = ReadHolderLine(raw);
                    throw new StorageLockTimeoutException(full, pid, line, heldInProcess: false, elapsed);
                }
                double pause = Math.Min(pauseUs, Math.Min(PauseCapUs(elapsed), options.MaxDelay.TotalMicroseconds));
                if (!infinite) pause = Math.Min(pause, (timeout - elapsed).TotalMicroseconds);
                Pause(pause, ct);
                pauseUs *= 2;
            }
            WriteHolderLine(raw);
            return new FileLock(full, gate, fd);
        }
        catch
        {
            fd?.Dispose();
            gate.Semaphore.Release();
            throw;
        }
    }

    private static TimeSpan Remaining(long start, TimeSpan timeout)
    {
        var left = timeout - Stopwatch.GetElapsedTime(start);
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    private static void Pause(double microseconds, CancellationToken ct)
    {
        if (microseconds < 1)
        {
            Thread.Yield();
        }
        else if (microseconds < 1000 || !ct.CanBeCanceled)
        {
            // Thread.Sleep has millisecond resolution; nanosleep gives the sub-millisecond pauses that let
            // a waiter notice a release quickly. EINTR just ends the pause early.
            long ns = (long)(microseconds * 1000);
            var ts = new Posix.Timespec { tv_sec = ns / 1_000_000_000, tv_nsec = ns % 1_000_000_000 };
            Posix.Nanosleep(ts, 0);
        }
        else
        {
            ct.WaitHandle.WaitOne(TimeSpan.FromMicroseconds(microseconds));
        }
        ct.ThrowIfCancellationRequested();
    }

    private static Posix.Flock WholeFile(short type) => new()
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
        string line = string.Create(CultureInfo.InvariantCulture,
            $"{Environment.ProcessId}@{Environment.MachineName} since {DateTime.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ}");
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
