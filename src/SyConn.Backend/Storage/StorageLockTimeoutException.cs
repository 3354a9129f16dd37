namespace SyConn.Backend.Storage;

/// <summary>
/// A store's lock could not be taken within the configured timeout. Names the locked resource (a lock
/// file, or a database lock and its store), who holds it as far as it is known (the process id the kernel
/// reports for a conflicting file lock, the <c>pid@host</c> line a .NET holder writes into the lock file, a
/// database backend's pid, or another lock object of this process) and how long we waited.
/// </summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class StorageLockTimeoutException : IOException
{
    /// <summary>A file lock timed out; the message is built from the parts.</summary>
    /// <param name="lockPath">The lock file.</param>
    /// <param name="holderPid">Process id of the conflicting lock as <c>F_OFD_GETLK</c> reported it, if the kernel knew it.</param>
    /// <param name="holderLine">The holder line found in the lock file (<c>pid@host ...</c>), if any.</param>
    /// <param name="heldInProcess">True when another lock object of this process held it.</param>
    /// <param name="waited">How long we waited.</param>
    public StorageLockTimeoutException(string lockPath, int? holderPid, string? holderLine, bool heldInProcess, TimeSpan waited)
        : this(lockPath, holderPid, holderLine, heldInProcess, waited, pidSource: "kernel", holderSource: "lock file says")
    {
    }

    /// <summary>A lock of any backend timed out.</summary>
    /// <param name="resource">What was locked, e.g. <c>advisory lock 42 of store 'bt:cells'</c>.</param>
    /// <param name="holderPid">The holder's process id as the backend reports it (a database backend pid), if known.</param>
    /// <param name="holder">A description of the holder (application name, host, since when), if known.</param>
    /// <param name="heldInProcess">True when another lock object of this process held it.</param>
    /// <param name="waited">How long we waited.</param>
    /// <param name="pidSource">Who reported <paramref name="holderPid"/>, for the message (e.g. <c>database backend</c>).</param>
    public static StorageLockTimeoutException ForResource(string resource, int? holderPid, string? holder, bool heldInProcess, TimeSpan waited, string pidSource) =>
        new(resource, holderPid, holder, heldInProcess, waited, pidSource, holderSource: "holder");

    private StorageLockTimeoutException(string resource, int? holderPid, string? holder, bool heldInProcess, TimeSpan waited, string pidSource, string holderSource)
        : base(BuildMessage(resource, holderPid, holder, heldInProcess, waited, pidSource, holderSource))
    {
        ArgumentException.ThrowIfNullOrEmpty(resource);
        Resource = resource;
        HolderPid = holderPid;
        Holder = holder;
        HeldInProcess = heldInProcess;
        Waited = waited;
    }

    /// <summary>What was locked: the lock file (<c>.&lt;name&gt;.lk</c>) of a file store, or a database lock and its store.</summary>
    public string Resource { get; }

    /// <summary>The lock file, for file stores (the same as <see cref="Resource"/>).</summary>
    public string LockPath => Resource;

    /// <summary>
    /// Process id of the holder as the backend reported it. For file locks: <c>l_pid</c> from <c>F_OFD_GETLK</c>,
    /// known when the holder uses a classic POSIX lock (Python's <c>fcntl.lockf</c>, as fasteners does), null
    /// when the holder uses an open file description lock (other .NET processes: see <see cref="Holder"/>) or
    /// the lock was released just before we asked. For a database: the holding backend's pid.
    /// </summary>
    public int? HolderPid { get; }

    /// <summary>
    /// What is known of the holder besides its pid: for file locks the line a .NET holder wrote into the lock file
    /// (<c>pid@host since time</c>; null when the file was empty: Python holders never write it), a help for humans,
    /// not the source of truth; for a database what the server reports of the holding session.
    /// </summary>
    public string? Holder { get; }

    /// <summary>The holder line of a file lock (the same as <see cref="Holder"/>).</summary>
    public string? HolderLine => Holder;

    /// <summary>True when the holder was another lock object of this very process.</summary>
    public bool HeldInProcess { get; }

    /// <summary>How long we waited before giving up.</summary>
    public TimeSpan Waited { get; }

    private static string BuildMessage(string resource, int? holderPid, string? holder, bool heldInProcess, TimeSpan waited, string pidSource, string holderSource)
    {
        var parts = new List<string>();
        if (heldInProcess) parts.Add($"held by another lock object in this process (pid {Environment.ProcessId})");
        if (holderPid is { } pid) parts.Add($"held by pid {pid} ({pidSource})");
        if (holder is not null) parts.Add($"{holderSource} '{holder}'");
        if (parts.Count == 0) parts.Add("holder unknown");
        return $"Could not lock '{resource}' within {waited.TotalSeconds:0.###} s: {string.Join("; ", parts)}";
    }
}
