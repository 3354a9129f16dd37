namespace SyConn.Backend.Storage;

/// <summary>Where the lock file of a store lives.</summary>
/// <remarks>Thread-safe (stateless).</remarks>
public static class LockPaths
{
    /// <summary>
    /// The lock file of the store at <paramref name="storePath"/>: <c>&lt;dir&gt;/.&lt;name&gt;.lk</c>, the
    /// path SyConn's <c>FSBase</c> locks, so both lock the same file. Deviation from upstream: for a bare
    /// file name the lock lives beside the file in the current directory (upstream builds
    /// <c>"" + "/." + name + ".lk"</c>, i.e. a file at the root of the file system). Creates the folder
    /// when it is missing (as upstream does). Returns a full path.
    /// </summary>
    /// <exception cref="ArgumentException">The path is empty or names a folder (ends with a separator).</exception>
    public static string ForStore(string storePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(storePath);
        string full = Path.GetFullPath(storePath);
        string name = Path.GetFileName(full);
        if (name.Length == 0)
            throw new ArgumentException($"A store path must name a file, not a folder: '{storePath}'.", nameof(storePath));
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"A store path must name a file: '{storePath}'.", nameof(storePath));
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, "." + name + ".lk");
    }
}
