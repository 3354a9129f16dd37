using System.Runtime.InteropServices;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Tests.Storage;

/// <summary>Raw OFD locks on a lock file, bypassing <see cref="FileLock"/>'s in-process gate.</summary>
internal sealed class RawLockProbe : IDisposable
{
    private int _fd;

    private RawLockProbe(int fd) => _fd = fd;

    private static int OpenFd(string path)
    {
        int fd = Posix.Open(path, Posix.O_RDWR | Posix.O_CREAT | Posix.O_CLOEXEC, 0x1B6);
        Assert.True(fd >= 0, $"open {path}: errno {Marshal.GetLastPInvokeError()}");
        return fd;
    }

    private static Posix.Flock Whole(short type) => new() { l_type = type, l_whence = Posix.SEEK_SET };

    /// <summary>True if a write lock could be taken on a new open file description (and was released again).</summary>
    public static bool TryLockAndUnlock(string path)
    {
        int fd = OpenFd(path);
        try
        {
            var lk = Whole(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref lk) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                Assert.True(errno is Posix.EAGAIN or Posix.EACCES, $"unexpected errno {errno}");
                return false;
            }
            var un = Whole(Posix.F_UNLCK);
            Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref un);
            return true;
        }
        finally
        {
            Posix.Close(fd);
        }
    }

    /// <summary>Holds a write lock on a new open file description until disposed.</summary>
    public static RawLockProbe Hold(string path)
    {
        int fd = OpenFd(path);
        var lk = Whole(Posix.F_WRLCK);
        Assert.Equal(0, Posix.FcntlLock(fd, Posix.F_OFD_SETLK, ref lk));
        return new RawLockProbe(fd);
    }

    /// <summary>Waits in the kernel (<c>F_OFD_SETLKW</c>) until a write lock is granted on a new open file description; holds it until disposed.</summary>
    public static RawLockProbe HoldBlocking(string path)
    {
        int fd = OpenFd(path);
        while (true)
        {
            var lk = Whole(Posix.F_WRLCK);
            if (Posix.FcntlLock(fd, Posix.F_OFD_SETLKW, ref lk) == 0) return new RawLockProbe(fd);
            int errno = Marshal.GetLastPInvokeError();
            Assert.True(errno == Posix.EINTR, $"F_OFD_SETLKW failed: errno {errno}");
        }
    }

    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) Posix.Close(fd);
    }
}
