using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The filesystem backend: one pickle file per store, as SyConn keeps it, locked through
/// <c>.&lt;name&gt;.lk</c> beside it (interoperating with Python's fasteners locks) and written atomically.
/// </summary>
public sealed class FileStoreBackend : IStoreBackend
{
    private FileLock? _lock;

    /// <summary>A backend for the pickle file at <paramref name="path"/> (made absolute).</summary>
    public FileStoreBackend(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
    }

    /// <summary>The absolute path of the pickle file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string Location => Path;

    /// <inheritdoc/>
    public bool HoldsLock => _lock is not null;

    /// <inheritdoc/>
    public void EnsureWritable()
    {
        var dir = System.IO.Path.GetDirectoryName(Path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }

    /// <inheritdoc/>
    public void AcquireLock(StoreOptions options)
    {
        _lock ??= FileLock.Acquire(LockPaths.ForStore(Path), options.ToLockOptions());
    }

    /// <inheritdoc/>
    public void ReleaseLock()
    {
        var l = _lock;
        _lock = null;
        l?.Dispose();
    }

    /// <inheritdoc/>
    public PyDict? Read(StoreOptions options) => ReadFile(Path, options);

    internal static PyDict? ReadFile(string path, StoreOptions options)
    {
        var bytes = AtomicFile.ReadAllBytes(path);
        if (bytes is null) return null;
        var obj = Pickle.Load(bytes, options.PickleOptions, path);
        return obj as PyDict ?? throw new InvalidDataException(
            $"{path}: the pickle holds a {obj?.GetType().Name ?? "None"} at offset 0; a SyConn store file holds a dict");
    }

    /// <inheritdoc/>
    public void Write(PyDict entries, StoreOptions options) => WriteFile(Path, entries, options);

    internal static void WriteFile(string path, PyDict entries, StoreOptions options) =>
        AtomicFile.Write(path, s => Pickle.Dump(entries, s, options.PickleProtocol), options.Durable);

    /// <inheritdoc/>
    public string MoveAside()
    {
        var target = $"{Path}.corrupt-{DateTime.UtcNow:yyyyMMddTHHmmss.fffZ}";
        File.Move(Path, target);
        return target;
    }

    /// <inheritdoc/>
    public void Dispose() => ReleaseLock();
}
