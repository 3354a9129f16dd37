namespace SyConn.Backend.Storage;

/// <summary>
/// A store's lock file could not be locked within the configured timeout. Names the lock file, who holds
/// it (the process id the kernel reports for the conflicting lock, the <c>pid@host</c> line a .NET holder
/// writes into the lock file, or another lock object of this process) and how long we waited.
/// </summary>
/// <remarks>Immutable; safe to share between threads.</remarks>
public sealed class StorageLockTimeoutException : IOException
{
    /// <summary>Creates the exception; the message is built from the parts.</summary>
    /// <param name="lockPath">The lock file.</param>
    /// <param name="holderPid">Process id of the conflicting lock as <c>F_OFD_GETLK</c> reported it, if the kernel knew it.</param>
    /// <param name="holderLine">The holder line found in the lock file (<c>pid@host ...</c>), if any.</param>
    /// <param name="heldInProcess">True when another lock object of this process held it.</param>
    /// <param name="waited">How long we waited.</param>
    public StorageLockTimeoutException(string lockPath, int? holderPid, string? holderLine, bool heldInProcess, TimeSpan waited)
        : base(BuildMessage(lockPath, holderPid, holderLine, heldInProcess, waited))
    {
        LockPath = lockPath;
        HolderPid = holderPid;
        HolderLine = holderLine;
        HeldInProcess = heldInProcess;
        Waited = waited;
    }

    /// <summary>The lock file (<c>.&lt;name&gt;.lk</c>).</summary>
    public string LockPath { get; }

    /// <summary>
    /// Process id of the holder as the kernel reported it (<c>l_pid</c> from <c>F_OFD_GETLK</c>). Known
    /// when the holder uses a classic POSIX lock (Python's <c>fcntl.lockf</c>, as fasteners does); null
    /// when the holder uses an open file description lock (other .NET processes: see
    /// <see cref="HolderLine"/>) or the lock was released just before we asked.
    /// </summary>
    public int? HolderPid { get; }

    /// <summary>
    /// The line a .NET holder wrote into the lock file (<c>pid@host since time</c>), or null when the file
    /// was empty (Python holders never write it). A help for humans, not the source of truth.
    /// </summary>
    public string? HolderLine { get; }

    /// <summary>True when the holder was another <see cref="FileLock"/> of this very process.</summary>
    public bool HeldInProcess { get; }

    /// <summary>How long we waited before giving up.</summary>
    public TimeSpan Waited { get; }

    private static string BuildMessage(string lockPath, int? holderPid, string? holderLine, bool heldInProcess, TimeSpan waited)
    {
        var parts = new List<string>();
        if (heldInProcess) parts.Add($"held by another lock object in this process (pid {Environment.ProcessId})");
        if (holderPid is { } pid) parts.Add($"held by pid {pid} (kernel)");
        if (holderLine is not null) parts.Add($"lock file says '{holderLine}'");
        if (parts.Count == 0) parts.Add("holder unknown");
        return $"Could not lock '{lockPath}' within {waited.TotalSeconds:0.###} s: {string.Join("; ", parts)}";
    }
}
