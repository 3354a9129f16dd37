using System.Runtime.InteropServices;

namespace SyConn.Backend.Storage;

/// <summary>
/// The few libc calls the storage layer needs that .NET does not expose: <c>open(2)</c> without .NET's
/// own advisory <c>flock</c>, Linux open-file-description locks through <c>fcntl(2)</c>, <c>rename(2)</c>
/// and <c>fsync(2)</c> of a folder. Linux on x86-64 and arm64 only (constants and the <c>struct flock</c>
/// layout are those two ABIs').
/// </summary>
internal static unsafe partial class Posix
{
    private const string Libc = "libc";

    internal const int O_RDONLY = 0;
    internal const int O_RDWR = 2;
    internal const int O_CREAT = 0x40;      // 0100 octal, same on x86-64 and arm64
    internal const int O_CLOEXEC = 0x80000; // 02000000 octal, same on x86-64 and arm64

    /// <summary><c>O_DIRECTORY</c> differs between the two ABIs (x86-64 0200000, arm64 040000 octal).</summary>
    internal static int O_DIRECTORY => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x4000 : 0x10000;

    internal const int F_OFD_GETLK = 36;
    internal const int F_OFD_SETLK = 37;
    internal const int F_OFD_SETLKW = 38;

    internal const short F_RDLCK = 0;
    internal const short F_WRLCK = 1;
    internal const short F_UNLCK = 2;
    internal const short SEEK_SET = 0;

    internal const int ENOENT = 2;
    internal const int EINTR = 4;
    internal const int EAGAIN = 11;
    internal const int EACCES = 13;
    internal const int EEXIST = 17;
    internal const int EISDIR = 21;
    internal const int EINVAL = 22;
    internal const int ENOSYS = 38;
    internal const int ENOTSUP = 95;

    private const int AT_FDCWD = -100;
    private const uint RENAME_NOREPLACE = 1, RENAME_EXCHANGE = 2;

    /// <summary>
    /// <c>struct flock</c> on Linux x86-64 and arm64: <c>short l_type; short l_whence; long l_start;
    /// long l_len; int l_pid;</c> with natural alignment, 32 bytes in total.
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 32)]
    internal struct Flock
    {
        [FieldOffset(0)] public short l_type;
        [FieldOffset(2)] public short l_whence;
        [FieldOffset(8)] public long l_start;
        [FieldOffset(16)] public long l_len;
        [FieldOffset(24)] public int l_pid;
    }

    // open(2) and fcntl(2) are variadic in C. On the two supported ABIs an integer or pointer passed as a
    // fixed argument lands where the variadic callee reads it, so non-variadic declarations are sound.
    [LibraryImport(Libc, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, uint mode);

    [LibraryImport(Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(Libc, EntryPoint = "fcntl", SetLastError = true)]
    internal static partial int FcntlLock(int fd, int cmd, ref Flock lk);

    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int Fsync(int fd);

    [LibraryImport(Libc, EntryPoint = "pwrite", SetLastError = true)]
    internal static partial nint Pwrite(int fd, byte* buf, nuint count, long offset);

    [LibraryImport(Libc, EntryPoint = "pread", SetLastError = true)]
    internal static partial nint Pread(int fd, byte* buf, nuint count, long offset);

    [StructLayout(LayoutKind.Sequential)]
    internal struct Timespec
    {
        public long tv_sec;
        public long tv_nsec;
    }

    [LibraryImport(Libc, EntryPoint = "nanosleep", SetLastError = true)]
    internal static partial int Nanosleep(in Timespec req, nint rem);

    [LibraryImport(Libc, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Rename(string oldPath, string newPath);

    [LibraryImport(Libc, EntryPoint = "renameat2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Renameat2(int oldDirFd, string oldPath, int newDirFd, string newPath, uint flags);

    /// <summary>
    /// <c>renameat2(…, RENAME_NOREPLACE)</c>: renames unless <paramref name="newPath"/> exists, in one step.
    /// Returns 0 or the errno: <see cref="EEXIST"/> when the target exists, <see cref="EINVAL"/> or
    /// <see cref="ENOSYS"/> when the file system, kernel or libc cannot do it (also when libc lacks the call).
    /// </summary>
    internal static int RenameNoReplace(string oldPath, string newPath)
    {
        try
        {
            return Renameat2(AT_FDCWD, oldPath, AT_FDCWD, newPath, RENAME_NOREPLACE) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        catch (EntryPointNotFoundException)
        {
            return ENOSYS; // libc older than glibc 2.28
        }
    }

    /// <summary>
    /// <c>renameat2(…, RENAME_EXCHANGE)</c>: swaps the two names in one step (both must exist). Returns 0 or the
    /// errno: <see cref="ENOENT"/> when either is missing, <see cref="EINVAL"/> or <see cref="ENOSYS"/> when the
    /// file system, kernel or libc cannot do it.
    /// </summary>
    internal static int RenameExchange(string a, string b)
    {
        try
        {
            return Renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
        catch (EntryPointNotFoundException)
        {
            return ENOSYS;
        }
    }

    [LibraryImport(Libc, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnlinkRaw(string path);

    /// <summary><c>unlink(2)</c>: 0 or the errno (<see cref="EISDIR"/> for a folder).</summary>
    internal static int Unlink(string path) => UnlinkRaw(path) == 0 ? 0 : Marshal.GetLastPInvokeError();

    [LibraryImport(Libc, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial nint Realpath(string path, nint resolved);

    [LibraryImport(Libc, EntryPoint = "free")]
    internal static partial void Free(nint ptr);

    /// <summary>Throws <see cref="PlatformNotSupportedException"/> unless this is Linux on x86-64 or arm64.</summary>
    internal static void EnsureSupported(string what)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException($"{what} needs Linux (open file description locks, fcntl F_OFD_SETLK); this is {RuntimeInformation.OSDescription}.");
        var arch = RuntimeInformation.ProcessArchitecture;
        if (arch is not (Architecture.X64 or Architecture.Arm64))
            throw new PlatformNotSupportedException($"{what} supports Linux on x86-64 and arm64 only; this process runs on {arch}.");
    }

    /// <summary>The text of an errno value, e.g. <c>EACCES (13): Permission denied</c>.</summary>
    internal static string ErrnoText(int errno) => $"errno {errno}: {Marshal.GetPInvokeErrorMessage(errno)}";

    /// <summary>An <see cref="IOException"/> for a failed system call on <paramref name="path"/>.</summary>
    internal static IOException Error(string call, string path, int errno) =>
        new($"{call} failed for '{path}': {ErrnoText(errno)}", errno);

    /// <summary>Resolves every symbolic link and relative part of an existing <paramref name="path"/>.</summary>
    internal static string RealPath(string path)
    {
        nint p = Realpath(path, 0);
        if (p == 0) throw Error("realpath", path, Marshal.GetLastPInvokeError());
        try
        {
            return Marshal.PtrToStringUTF8(p)!;
        }
        finally
        {
            Free(p);
        }
    }

    /// <summary>fsyncs a folder so that a rename inside it survives a power loss.</summary>
    internal static void FsyncDirectory(string dir)
    {
        int fd;
        do fd = Open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
        while (fd < 0 && Marshal.GetLastPInvokeError() == EINTR);
        if (fd < 0) throw Error("open (directory)", dir, Marshal.GetLastPInvokeError());
        try
        {
            int rc;
            do rc = Fsync(fd);
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);
            if (rc < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                // Some file systems (certain FUSE and network mounts) cannot fsync a folder; there is
                // nothing more durable we could do there, so that is not an error.
                if (errno is not (EINVAL or ENOTSUP)) throw Error("fsync (directory)", dir, errno);
            }
        }
        finally
        {
            Close(fd);
        }
    }
}
