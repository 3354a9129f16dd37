using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;

namespace SyConn.Backend.Storage;

/// <summary>The state of a store's lock as <see cref="LockProbe"/> found it.</summary>
/// <param name="LockPath">The lock file (<c>&lt;dir&gt;/.&lt;name&gt;.lk</c>).</param>
/// <param name="LockFileExists">False when the lock file does not exist (then the lock is free).</param>
/// <param name="Held">True when the kernel reports a conflicting lock on the lock file.</param>
/// <param name="Pid">The holder's pid: from the kernel for classic POSIX locks (what Python's <c>fcntl.lockf</c> takes), else
/// from the holder record of our own locks; null when unknown.</param>
/// <param name="Record">The holder record in the file (<c>pid@host since time</c>, written by this library's locks while held); null when none.</param>
/// <param name="Kind">What the kernel reports: <c>posix</c> (a classic record lock, e.g. Python), <c>ofd</c> (an open file
/// description lock, as this library takes), or null when free.</param>
public sealed record LockState(string LockPath, bool LockFileExists, bool Held, int? Pid, string? Record, string? Kind)
{
    /// <summary>One line for humans: <c>free</c>, or <c>held by pid@host since ...</c>.</summary>
    public override string ToString()
    {
        if (!Held) return LockFileExists ? "free" : "free (no lock file)";
        if (Record is not null) return $"held by {Record}";
        // A kernel record lock is local: its holder runs on this host (Python SyConn writes no record, so there is no 'since').
        return Pid is { } p ? $"held by {p}@{Environment.MachineName} ({Kind} lock, since unknown)" : $"held ({Kind} lock, holder unknown)";
    }
}

/// <summary>
/// Reads the state of a store's lock without taking it and without creating anything: the lock file is opened
/// read-only (not created when missing) and asked with <c>fcntl(F_OFD_GETLK)</c> whether a write lock would
/// conflict; the holder record <c>pid@host since time</c> that <see cref="FileLock"/> writes is read beside it.
/// </summary>
/// <remarks>
/// A lock held through another descriptor of this process counts as held. The answer may be stale as soon as it
/// is returned (another process may lock or unlock at any time). Linux only. Thread-safe (stateless).
/// </remarks>
public static class LockProbe
{
    /// <summary>The lock file of the store at <paramref name="storePath"/> (as <see cref="LockPaths.ForStore"/>, without creating its folder).</summary>
    /// <exception cref="ArgumentException">The path is empty or names a folder.</exception>
    public static string LockPathOf(string storePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(storePath);
        string full = Path.GetFullPath(storePath);
        string name = Path.GetFileName(full);
        if (name.Length == 0) throw new ArgumentException($"A store path must name a file, not a folder: '{storePath}'.", nameof(storePath));
        return Path.Combine(Path.GetDirectoryName(full)!, "." + name + ".lk");
    }

    /// <summary>The lock state of the store at <paramref name="storePath"/>.</summary>
    /// <exception cref="IOException">The lock file exists but cannot be opened or asked (errno in the message).</exception>
    /// <exception cref="PlatformNotSupportedException">Not Linux on x86-64 or arm64.</exception>
    public static LockState OfStore(string storePath) => OfLockFile(LockPathOf(storePath));

    /// <summary>The lock state of the lock file <paramref name="lockPath"/>.</summary>
    /// <inheritdoc cref="OfStore" path="/exception"/>
    public static unsafe LockState OfLockFile(string lockPath)
    {
        Posix.EnsureSupported(nameof(LockProbe));
        ArgumentException.ThrowIfNullOrEmpty(lockPath);
        string full = Path.GetFullPath(lockPath);
        int fd;
        do fd = Posix.Open(full, Posix.O_RDONLY | Posix.O_CLOEXEC, 0);
        while (fd < 0 && Marshal.GetLastPInvokeError() == Posix.EINTR);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Posix.ENOENT) return new LockState(full, false, false, null, null, null);
            throw Posix.Error("open", full, errno);
        }
        try
        {
            var lk = FileLock.WholeFile(Posix.F_WRLCK);
            int rc;
            do rc = Posix.FcntlLock(fd, Posix.F_OFD_GETLK, ref lk);
            while (rc != 0 && Marshal.GetLastPInvokeError() == Posix.EINTR);
            if (rc != 0) throw Posix.Error("fcntl(F_OFD_GETLK)", full, Marshal.GetLastPInvokeError());
            string? record = ReadRecord(fd);
            if (lk.l_type == Posix.F_UNLCK) return new LockState(full, true, false, null, null, null);
            // The kernel names the pid of a classic POSIX lock; an OFD lock belongs to no process (l_pid = -1).
            bool posix = lk.l_pid > 0;
            int? pid = posix ? lk.l_pid : PidOfRecord(record);
            return new LockState(full, true, true, pid, record, posix ? "posix" : "ofd");
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    private static unsafe string? ReadRecord(int fd)
    {
        byte* buf = stackalloc byte[512];
        nint n = Posix.Pread(fd, buf, 512, 0);
        if (n <= 0) return null;
        var text = Encoding.UTF8.GetString(buf, (int)n);
        int nl = text.IndexOf('\n', StringComparison.Ordinal);
        if (nl >= 0) text = text[..nl];
        text = text.Trim();
        return text.Length == 0 ? null : text;
    }

    private static int? PidOfRecord(string? record)
    {
        if (record is null) return null;
        int at = record.IndexOf('@', StringComparison.Ordinal);
        return at > 0 && int.TryParse(record.AsSpan(0, at), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }
}
