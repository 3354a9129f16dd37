using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// Where a store's entries live. A typed store is an entry codec plus a backend: the same per-key
/// Python object tree is kept whether the backend is a pickle file (<see cref="FileStoreBackend"/>, the
/// embedded default) or rows of a database table.
/// </summary>
/// <remarks>Backends are used by one store object at a time and need not be thread-safe.</remarks>
public interface IStoreBackend : IDisposable
{
    /// <summary>A human-readable location for messages (a path, or a table and store name).</summary>
    string Location { get; }

    /// <summary>Prepares the location for writing (creates missing folders, tables, ...).</summary>
    void EnsureWritable();

    /// <summary>Takes the store's exclusive lock (waiting as <paramref name="options"/> says) unless already held.</summary>
    /// <exception cref="StorageLockTimeoutException">The lock could not be taken in time.</exception>
    void AcquireLock(StoreOptions options);

    /// <summary>True while this backend holds the lock.</summary>
    bool HoldsLock { get; }

    /// <summary>Releases the lock if held.</summary>
    void ReleaseLock();

    /// <summary>Reads all entries; null if the store does not exist yet.</summary>
    /// <exception cref="InvalidDataException">The stored data is corrupt.</exception>
    PyDict? Read(StoreOptions options);

    /// <summary>Replaces the stored entries with <paramref name="entries"/>, atomically.</summary>
    void Write(PyDict entries, StoreOptions options);

    /// <summary>Keeps damaged data out of the way (see <see cref="CorruptFilePolicy.MoveAside"/>); returns where it went.</summary>
    string MoveAside();
}
