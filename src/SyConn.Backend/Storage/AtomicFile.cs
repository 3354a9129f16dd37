using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace SyConn.Backend.Storage;

/// <summary>
/// Crash-safe whole-file writes: the new content goes to a unique temp file in the target's folder, is
/// (optionally) fsynced, renamed over the target with <c>rename(2)</c>, and the folder is fsynced. A reader
/// or a crash at any moment sees either the old or the new file, never a mix or a truncated one.
/// </summary>
/// <remarks>
/// <para><b>Durability.</b> With <c>durable: true</c> (the default) the content and the rename survive a
/// power loss once the call returns (fsync of the file, then of the folder). <c>durable: false</c> is what
/// SyConn's Python code does (no fsync): still atomic against process crashes, much cheaper, but after a
/// power loss or kernel crash the file may be empty or old.</para>
/// <para><b>Deferred write-back.</b> A <c>rename(2)</c> over an existing file makes ext4 (its default
/// <c>auto_da_alloc</c>) start writing the new file's data back inside the call, so that after a power loss
/// the target is the old or the new content rather than an empty file; Python's <c>os.rename</c> gets that too.
/// With <c>durable: false, deferWriteBack: true</c> an existing target is replaced by swapping the two names
/// (<c>renameat2(RENAME_EXCHANGE)</c>) and unlinking the old file instead: the data then reaches the disk on
/// the kernel's schedule (about 30 s later), and not at all if the file is replaced again before that. That
/// makes a push of a small store several times cheaper, and a power loss within that delay may leave the
/// target empty: for stores that can be rebuilt. Readers see the old or the new file at every moment, as with a
/// rename. Where the file system cannot swap names (some network and FUSE mounts) the target is renamed over.
/// With <c>durable: true</c> the flag changes nothing: the fsync writes the data anyway.</para>
/// <para><b>Thread/process safety.</b> Thread-safe: every call uses its own temp file
/// (<c>.&lt;name&gt;.tmp.&lt;pid&gt;.&lt;random&gt;</c>, created exclusively), so parallel writers never
/// share one; the last rename wins. Atomic replacement does not serialise read-modify-write cycles: use
/// <see cref="FileLock"/> for that. A crashed writer may leave a stray temp file; it never damages the
/// target.</para>
/// <para><b>Create only.</b> With <c>overwrite: false</c> an existing target is refused with an
/// <see cref="IOException"/> before anything is written, and the final step is
/// <c>renameat2(RENAME_NOREPLACE)</c>, so a target that appears while the new file is written is not
/// replaced either (the temp file is deleted). Where the file system cannot do that rename (some network
/// and FUSE mounts), the target is checked once more just before a plain rename.</para>
/// <para>The file mode of an existing target is kept; a new file gets 0666 minus the umask (as Python's
/// <c>open(path, 'wb')</c>). Owner, extended attributes and hard links of the old file are not carried
/// over; a symbolic link at the target path is replaced by the file, not followed.</para>
/// </remarks>
public static class AtomicFile
{
    private const int MaxNameBytes = 255;

    /// <summary>Replaces <paramref name="path"/> with <paramref name="data"/>.</summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="data">The new content.</param>
    /// <param name="durable">fsync file and folder (default). False matches upstream: atomic, not durable.</param>
    /// <param name="overwrite">Replace an existing target (default). False creates the file only if
    /// <paramref name="path"/> does not exist, checked up front and again by the rename itself (see the remarks of the class).</param>
    /// <param name="deferWriteBack">With <paramref name="durable"/> false: replace an existing target without starting
    /// its write-back (see the remarks of the class). Default false.</param>
    /// <exception cref="IOException">Writing, renaming or syncing failed (the temp file is deleted when the target was not replaced),
    /// or <paramref name="overwrite"/> is false and the target exists.</exception>
    public static void Write(string path, ReadOnlySpan<byte> data, bool durable = true, bool overwrite = true, bool deferWriteBack = false)
    {
        var target = Prepare(path, overwrite);
        var (fs, temp) = CreateTemp(target, bufferSize: 0);
        try
        {
            using (fs)
            {
                fs.Write(data);
                if (durable) fs.Flush(flushToDisk: true);
            }
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
        Commit(temp, target, durable, overwrite, deferWriteBack);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with what <paramref name="writer"/> writes to the stream it gets.
    /// The stream is buffered, readable, writable and seekable (so writers that read back or patch what
    /// they wrote, like an HDF5 writer, can use it); the writer must not dispose it. If the writer throws,
    /// the target is left untouched and the temp file deleted.
    /// </summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="writer">Writes the new content.</param>
    /// <param name="durable">fsync file and folder (default). False matches upstream: atomic, not durable.</param>
    /// <param name="overwrite">Replace an existing target (default). False creates the file only if
    /// <paramref name="path"/> does not exist, checked up front and again by the rename itself (see the remarks of the class).</param>
    /// <param name="deferWriteBack">With <paramref name="durable"/> false: replace an existing target without starting
    /// its write-back (see the remarks of the class). Default false.</param>
    /// <exception cref="IOException">Writing, renaming or syncing failed, or <paramref name="overwrite"/> is false and the target exists.</exception>
    public static void Write(string path, Action<Stream> writer, bool durable = true, bool overwrite = true, bool deferWriteBack = false)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var target = Prepare(path, overwrite);
        var (fs, temp) = CreateTemp(target, bufferSize: 1 << 16);
        try
        {
            using (fs)
            {
                writer(fs);
                if (durable) fs.Flush(flushToDisk: true);
                else fs.Flush();
            }
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
        Commit(temp, target, durable, overwrite, deferWriteBack);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with what <paramref name="writer"/> writes through the handle it gets, with
    /// positional writes (<see cref="RandomAccess"/>) from offset 0 on: no stream buffer sits between the writer's
    /// data and the file, so a writer that gathers its pieces hands them to the kernel as they are. The file is as
    /// long as the furthest byte written. If the writer throws, the target is left untouched and the temp file deleted.
    /// </summary>
    /// <param name="path">The target file; its folder must exist.</param>
    /// <param name="writer">Writes the new content; it must not close the handle.</param>
    /// <param name="durable">fsync file and folder (default). False matches upstream: atomic, not durable.</param>
    /// <param name="overwrite">Replace an existing target (default). False creates the file only if
    /// <paramref name="path"/> does not exist (see the remarks of the class).</param>
    /// <param name="deferWriteBack">With <paramref name="durable"/> false: replace an existing target without starting
    /// its write-back (see the remarks of the class). Default false.</param>
    /// <exception cref="IOException">Writing, renaming or syncing failed, or <paramref name="overwrite"/> is false and the target exists.</exception>
    internal static void WritePositional(string path, Action<SafeFileHandle> writer, bool durable = true, bool overwrite = true, bool deferWriteBack = false)
    {
        ArgumentNullException.ThrowIfNull(writer);
        var target = Prepare(path, overwrite);
        var (fs, temp) = CreateTemp(target, bufferSize: 0);
        try
        {
            using (fs)
            {
                writer(fs.SafeFileHandle);
                if (durable) fs.Flush(flushToDisk: true);
            }
        }
        catch
        {
            DeleteQuietly(temp);
            throw;
        }
        Commit(temp, target, durable, overwrite, deferWriteBack);
    }

    /// <summary>
    /// Reads a whole file into a new array, or returns null when the file (or its folder) does not exist.
    /// The array is freshly allocated, exactly as long as the content, and owned by the caller (not pooled).
    /// </summary>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    public static byte[]? ReadAllBytes(string path) => ReadAllBytes(path, keepOpen: false, out _);

    /// <summary>
    /// <see cref="ReadAllBytes(string)"/>; with <paramref name="keepOpen"/>, the file stays open and its handle is
    /// returned in <paramref name="kept"/> (null when the file does not exist), for the caller to close.
    /// </summary>
    /// <exception cref="IOException">The file exists but cannot be read.</exception>
    public static byte[]? ReadAllBytes(string path, bool keepOpen, out Microsoft.Win32.SafeHandles.SafeFileHandle? kept)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        kept = null;
        Microsoft.Win32.SafeHandles.SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            var bytes = ReadAll(handle, path);
            if (keepOpen) kept = handle;
            return bytes;
        }
        finally
        {
            if (kept is null) handle.Dispose();
        }
    }

    private static byte[] ReadAll(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        long length = RandomAccess.GetLength(handle);
        if (length > Array.MaxLength) throw new IOException($"File too large to read into one array ({length} bytes): '{path}'.");
        byte[] buffer = GC.AllocateUninitializedArray<byte>((int)length);
        int done = buffer.Length >= ParallelReadMin && Environment.ProcessorCount >= 2 && ReadInParallel(handle, buffer)
            ? buffer.Length
            : ReadFrom(handle, buffer, 0);
        if (done < buffer.Length) return buffer.AsSpan(0, done).ToArray(); // shrank while reading
        // The file may have grown (or report length 0, like /proc files): read the rest.
        Span<byte> probe = stackalloc byte[1];
        if (RandomAccess.Read(handle, probe, done) == 0) return buffer;
        using var ms = new MemoryStream();
        ms.Write(buffer);
        ms.Write(probe);
        long offset = done + 1;
        byte[] chunk = new byte[1 << 16];
        int m;
        while ((m = RandomAccess.Read(handle, chunk, offset)) > 0)
        {
            ms.Write(chunk, 0, m);
            offset += m;
        }
        return ms.ToArray();
    }

    // A big file is read on two cores, in chunks: from the page cache, one thread's copy (and the page faults of a
    // fresh buffer) run at about 60% of what two reach.
    private const int ParallelReadMin = 32 << 20, ParallelReadChunk = 8 << 20;

    private static int ReadFrom(Microsoft.Win32.SafeHandles.SafeFileHandle handle, Span<byte> buffer, long offset)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer[done..], offset + done);
            if (n == 0) break;
            done += n;
        }
        return done;
    }

    // False when a chunk came back short (the file shrank while it was read): the caller reads it again serially.
    private static bool ReadInParallel(Microsoft.Win32.SafeHandles.SafeFileHandle handle, byte[] buffer)
    {
        int chunks = (int)(((long)buffer.Length + ParallelReadChunk - 1) / ParallelReadChunk);
        bool complete = true;
        try
        {
            Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = Math.Min(Environment.ProcessorCount, 4) }, c =>
            {
                long offset = (long)c * ParallelReadChunk;
                int n = (int)Math.Min(ParallelReadChunk, buffer.Length - offset);
                if (ReadFrom(handle, buffer.AsSpan((int)offset, n), offset) != n) Volatile.Write(ref complete, false);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerExceptions[0]); // an IOException, as a serial read gives
        }
        return complete;
    }

    private readonly record struct Target(string Full, string Dir, string Name, UnixFileMode? Mode);

    private static Target Prepare(string path, bool overwrite)
    {
        Posix.EnsureSupported(nameof(AtomicFile));
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string name = Path.GetFileName(full);
        if (name.Length == 0) throw new ArgumentException($"The target must name a file, not a folder: '{path}'.", nameof(path));
        string dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder of '{full}' does not exist.");
        if (!overwrite && File.Exists(full)) throw Exists(full);
        UnixFileMode? mode = null;
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists(full)) mode = File.GetUnixFileMode(full);
        }
        catch (FileNotFoundException)
        {
            // removed meanwhile: a new file
        }
        return new Target(full, dir, name, mode);
    }

    /// <summary>The unique temp name for <paramref name="name"/>: <c>.name.tmp.pid.random</c>, within NAME_MAX.</summary>
    internal static string TempName(string name)
    {
        // Not a secret, only unlikely to repeat (the file is created exclusively in any case): no cryptographic
        // generator, whose first use per process costs more than the rest of a small push.
        string suffix = $".tmp.{Environment.ProcessId}.{(ulong)Random.Shared.NextInt64() ^ ((ulong)Random.Shared.Next() << 63):x16}";
        string stem = name;
        while (System.Text.Encoding.UTF8.GetByteCount(stem) + suffix.Length + 1 > MaxNameBytes)
            stem = stem[..(stem.Length * 3 / 4)];
        return "." + stem + suffix;
    }

    private static (FileStream Stream, string Temp) CreateTemp(in Target target, int bufferSize)
    {
        for (int attempt = 0; ; attempt++)
        {
            string temp = Path.Combine(target.Dir, TempName(target.Name));
            FileStream fs;
            try
            {
                fs = new FileStream(temp, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew, // O_EXCL: never reuse someone else's temp file
                    Access = FileAccess.ReadWrite, // readable too: some writers (PureHDF) require it
                    Share = FileShare.None,
                    BufferSize = bufferSize,
                });
            }
            catch (IOException) when (attempt < 3 && File.Exists(temp))
            {
                continue; // 64 random bits collided: take another name
            }
            try
            {
                if (OperatingSystem.IsLinux() && target.Mode is { } mode) File.SetUnixFileMode(fs.SafeFileHandle, mode);
            }
            catch
            {
                fs.Dispose();
                DeleteQuietly(temp);
                throw;
            }
            return (fs, temp);
        }
    }

    private static void Commit(string temp, in Target target, bool durable, bool overwrite, bool deferWriteBack)
    {
        int errno = 0;
        if (overwrite)
        {
            if (deferWriteBack && !durable && target.Mode is not null && Exchange(temp, target.Full)) return;
            if (Posix.Rename(temp, target.Full) != 0) errno = Marshal.GetLastPInvokeError();
        }
        else
        {
            errno = Posix.RenameNoReplace(temp, target.Full);
            if (errno is Posix.EINVAL or Posix.ENOSYS)
            {
                // The file system (or libc) cannot rename without replacing: check, then rename. A file
                // created between the two steps is replaced; that window is as short as we can make it.
                if (File.Exists(target.Full)) errno = Posix.EEXIST;
                else errno = Posix.Rename(temp, target.Full) == 0 ? 0 : Marshal.GetLastPInvokeError();
            }
            if (errno == Posix.EEXIST)
            {
                DeleteQuietly(temp);
                throw Exists(target.Full);
            }
        }
        if (errno != 0)
        {
            DeleteQuietly(temp);
            throw new IOException($"rename of '{temp}' to '{target.Full}' failed: {Posix.ErrnoText(errno)}", errno);
        }
        if (durable) Posix.FsyncDirectory(target.Dir);
    }

    // Deferred write-back (the remarks of the class): swap the names, then unlink the temp name, which holds the
    // old file after the swap. False when the swap cannot be done here (no such target any more, a file system or
    // kernel without the flag): the caller renames.
    internal static bool Exchange(string temp, string full)
    {
        int errno = Posix.RenameExchange(temp, full);
        if (errno != 0) return false;
        errno = Posix.Unlink(temp);
        if (errno == Posix.EISDIR || (errno != 0 && Directory.Exists(temp)))
        {
            // A folder took the target's name after Prepare looked: put it back where it was, as rename would
            // have refused to replace it.
            if (Posix.RenameExchange(temp, full) != 0)
                throw new IOException($"'{full}' became a folder while it was replaced; the folder is now at '{temp}'.", Posix.EISDIR);
            DeleteQuietly(temp);
            throw new IOException($"'{full}' is a folder; it was left in place.", Posix.EISDIR);
        }
        return true; // another unlink failure leaves the old content under the temp name, as a crash would
    }

    private static IOException Exists(string full) =>
        new($"'{full}' already exists and overwrite is false; it was left untouched.", Posix.EEXIST);

    private static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
