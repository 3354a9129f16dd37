namespace SyConn.Backend.Storage;

/// <summary>
/// A store's exclusive lock as an entry store hands it out: a <see cref="FileLock"/> on the store's
/// <c>.&lt;name&gt;.lk</c> file for files, an advisory lock held on one pinned connection for a database.
/// Disposing releases it (idempotent).
/// </summary>
/// <remarks>
/// A lock excludes other processes (Python SyConn jobs included, where the backend interoperates) and
/// other lock objects of this process. It is not re-entrant, and it is not bound to the thread that took
/// it. Implementations make <see cref="IDisposable.Dispose"/> and <see cref="IsHeld"/> thread-safe.
/// </remarks>
public interface IStoreLock : IDisposable
{
    /// <summary>What is locked, for messages: a lock file's path, or a database lock and its store.</summary>
    string Resource { get; }

    /// <summary>True until the lock is released.</summary>
    bool IsHeld { get; }

    /// <summary>
    /// Says that the holder releases the lock right after its next successful write (a store's push), so a backend may
    /// release it as part of that write (a database: in the commit's round trip). The holder still disposes the lock
    /// afterwards; if the write fails, the lock stays held. The default does nothing.
    /// </summary>
    void ReleaseWithNextWrite() { }
}
