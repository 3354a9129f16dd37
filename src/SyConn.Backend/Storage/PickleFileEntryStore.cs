using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The filesystem entry store of SyConn's <c>.pkl</c> stores: the whole store is one pickle of one Python dict,
/// read whole by <see cref="Load"/> and rewritten whole (atomically, see <see cref="AtomicFile"/>) by every write;
/// the per-key calls work on the dict it read. Locked through <c>.&lt;name&gt;.lk</c> beside the file
/// (<see cref="FileLock"/>, interoperating with Python's fasteners locks).
/// </summary>
/// <remarks>
/// <para><b>Reading.</b> <see cref="Load"/> reads the file into one buffer and indexes the dict by key
/// (<see cref="PickleDictIndex"/>): no value is built until it is first read, then it is kept, so <see cref="Count"/>,
/// <see cref="Keys"/> and <see cref="ContainsKey"/> cost nothing per value and a read of one key reads only that
/// key's bytes. A damaged value is found when it is read (the error names the file, the key and the offset), and a
/// push reads every value first, so a damaged one fails the push before anything is written.</para>
/// <para>A pickle may share an object between the entries of two keys through its memo. Such a file is read
/// with <see cref="StableReads"/> false: each entry read is a deep copy (<see cref="PyCopy.Deep"/>), so that no
/// entry shares a mutable object with another and editing one key never changes another, as with a backend that
/// keeps each key apart. Files written by SyConn share only immutable objects (key strings, dtypes, empty bytes)
/// and are read without copies.</para>
/// <para>Side stores (<see cref="OpenSideStore"/>): the voxel cache is SyConn's sibling <c>.npz</c> (the path
/// with <c>.pkl</c> replaced, or <c>.npz</c> appended); any other name <c>N</c> is <c>&lt;stem&gt;.N.npz</c>.</para>
/// <para>Thread-safety: see <see cref="IEntryStore"/>.</para>
/// </remarks>
public sealed class PickleFileEntryStore : IEntryStore, IEntryItemReader
{
    private PyDict _entries = new();
    private PickleDictIndex? _index;
    private bool _shares;
    // The file read by the last load of a locked writable store, open until the lock is released (AfterUnlock).
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _read;

    /// <summary>An entry store over the pickle file at <paramref name="path"/> (made absolute; nothing is read yet).</summary>
    /// <exception cref="ArgumentException">The path is empty or names a folder.</exception>
    public PickleFileEntryStore(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Path = System.IO.Path.GetFullPath(path);
        if (System.IO.Path.GetFileName(Path).Length == 0) throw new ArgumentException($"a store path must name a file, not a folder: '{path}'", nameof(path));
    }

    /// <summary>The absolute path of the pickle file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string Location => Path;

    /// <inheritdoc/>
    public EntryStoreKind Kind => EntryStoreKind.Pickle;

    /// <inheritdoc/>
    public string? Folder => System.IO.Path.GetDirectoryName(Path);

    /// <inheritdoc/>
    public bool StableReads => !_shares;

    /// <inheritdoc/>
    public bool Exists { get; private set; }

    /// <inheritdoc/>
    public void Load(StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _index = null;
        _read?.Dispose();
        // A locked writable store keeps the file it read open: the push that replaces the file then does not free the
        // old one (ext4 frees its blocks, discards included, inside rename) while the lock is held.
        bool keep = !options.ReadOnly && !options.Optimistic && options.DisableLocking == false;
        var bytes = AtomicFile.ReadAllBytes(Path, keep, out _read);
        if (bytes is null)
        {
            _entries = new PyDict();
            _shares = false;
            Exists = false;
            return;
        }
        var limits = options.Limits ?? ReadLimits.Default;
        // Index the dict by key and read each value when it is first asked for; a file whose values share mutable
        // objects (or is not a plain dict pickle) is read whole, and so is a file larger than the store limit (the
        // whole reader counts its payloads and names the key at which they pass the limit).
        var index = bytes.Length <= limits.MaxStoreBytes
            ? PickleDictIndex.TryBuild(bytes, options.PickleOptions ?? PickleReadOptions.Default, Path, limits.MaxStoreBytes)
            : null;
        if (index is not null)
        {
            _index = index;
            _entries = new PyDict();
            _shares = false;
            Exists = true;
            return;
        }
        var obj = Pickle.Load(bytes, options.PickleOptions, Path, out bool shares, limits.MaxStoreBytes);
        _entries = obj as PyDict ?? throw new InvalidDataException(
            $"{Path}: the pickle holds a {obj?.GetType().Name ?? "None"} at offset 0; a SyConn store file holds a dict");
        _shares = shares;
        Exists = true;
    }

    /// <inheritdoc/>
    public int Count => _index?.Count ?? _entries.Count;

    /// <inheritdoc/>
    public IEnumerable<object> Keys => _index?.Keys ?? _entries.Keys;

    /// <inheritdoc/>
    public bool ContainsKey(StoreKey key) => _index?.ContainsKey(key.PythonValue) ?? _entries.ContainsKey(key.PythonValue);

    /// <inheritdoc/>
    public bool TryRead(StoreKey key, [MaybeNullWhen(false)] out object entry)
    {
        if (_index is { } index) return index.TryGetValue(key.PythonValue, out entry);
        if (!_entries.TryGetValue(key.PythonValue, out entry)) return false;
        if (_shares) entry = PyCopy.Deep(entry);
        return true;
    }

    /// <summary>The item <paramref name="name"/> of the dict value of <paramref name="key"/>, reading only what it needs and keeping nothing (see <see cref="PickleDictIndex.ReadAttributeTransient"/>).</summary>
    PickleDictIndex.AttributeRead IEntryItemReader.ReadItemTransient(StoreKey key, string name, out object? result)
    {
        if (_index is { } index) return index.ReadAttributeTransient(key.PythonValue, name, out result);
        if (!TryRead(key, out var v))
        {
            result = null;
            return PickleDictIndex.AttributeRead.NoKey;
        }
        return PickleDictIndex.ItemOf(v, name, out result);
    }

    /// <inheritdoc/>
    public IEnumerable<KeyValuePair<object, object>> ReadAll() => _index is { } index ? index.Items() : _shares ? _entries.Select(kv => KeyValuePair.Create(kv.Key, PyCopy.Deep(kv.Value))) : _entries;

    /// <inheritdoc/>
    public void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(removed);
        ArgumentNullException.ThrowIfNull(changed);
        ArgumentNullException.ThrowIfNull(options);
        if (_index is { } index)
        {
            // The whole dict is written: read the values not read yet (a damaged one fails the push, nothing is written).
            _entries = index.Materialize();
            _index = null;
        }
        // Changes are applied to the dict read, then the whole dict is written. If the write fails, the dict is
        // ahead of the file; the caller still holds the changes and applies them again (setting and removing are
        // idempotent), so reads and the next push stay right. Removing from an ordered dict shifts its tail, so
        // with removals the dict is rebuilt once instead.
        if (removed.Count > 0)
        {
            var gone = removed as IReadOnlySet<object> ?? new HashSet<object>(removed, PyEquality.Comparer);
            var next = new PyDict(_entries.Count + changed.Count);
            foreach (var kv in _entries)
                if (!gone.Contains(kv.Key)) next.Add(kv.Key, kv.Value);
            _entries = next;
        }
        if (_entries.Count == 0) _entries.EnsureCapacity(changed.Count);
        foreach (var kv in changed) _entries[kv.Key] = kv.Value; // a stored key keeps its place and its stored form
        WriteFile(_entries, options);
    }

    /// <inheritdoc/>
    public void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(options);
        var next = new PyDict();
        foreach (var kv in entries) next[kv.Key] = kv.Value;
        WriteFile(next, options);
        _entries = next;
        _index = null;
        _shares = false;
    }

    private void WriteFile(PyDict entries, StoreOptions options)
    {
        EnsureWritable();
        // Positional writes of about 1 MiB straight from the entries' bytes: no stream buffer, no copy of the payloads.
        AtomicFile.WritePositional(Path, h => PickleFile.Dump(entries, h, 0, options.PickleProtocol), options.Durable, deferWriteBack: options.DeferWriteBack);
        Exists = true;
    }

    /// <inheritdoc/>
    public IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default) =>
        FileLock.Acquire(LockPaths.ForStore(Path), options, ct);

    /// <inheritdoc/>
    public Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default) =>
        FileStoreFiles.AcquireLockAsync(Path, options, ct);

    /// <inheritdoc/>
    public IEntryStore OpenSideStore(string name) => new NpzEntryStore(FileStoreFiles.SidePath(Path, name, voxelCacheIsSibling: true));

    /// <inheritdoc/>
    public void EnsureWritable() => FileStoreFiles.EnsureFolder(Path);

    /// <inheritdoc/>
    public string MoveAside() => FileStoreFiles.MoveAside(Path);

    /// <summary>Nothing to release: the file is read whole and no handle is kept. (The entries read go with this object;
    /// dropping them here measurably slowed the next store's work in the benchmarks, through the garbage collector.)</summary>
    public void Dispose() => AfterUnlock();

    /// <inheritdoc/>
    public void AfterUnlock()
    {
        _read?.Dispose();
        _read = null;
    }

    /// <inheritdoc/>
    public override string ToString() => $"PickleFileEntryStore({Path})";
}

/// <summary>What the file entry stores share: side-store paths, folders, moving damaged files aside, waiting for a lock without blocking.</summary>
internal static class FileStoreFiles
{
    public static string SidePath(string path, string name, bool voxelCacheIsSibling)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (!name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            throw new ArgumentException($"side store name '{name}' must be made of ASCII letters, digits and '_'", nameof(name));
        string stem = path.EndsWith(".pkl", StringComparison.Ordinal) || path.EndsWith(".npz", StringComparison.Ordinal) ? path[..^4] : path;
        return voxelCacheIsSibling && name == IEntryStore.VoxelCacheSideStore ? stem + ".npz" : $"{stem}.{name}.npz";
    }

    public static void EnsureFolder(string path)
    {
        var dir = Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
    }

    public static string MoveAside(string path)
    {
        var target = $"{path}.corrupt-{DateTime.UtcNow:yyyyMMddTHHmmss.fffZ}";
        File.Move(path, target);
        return target;
    }

    /// <summary>
    /// Waits for the file lock on a thread-pool thread, so the caller's thread is free meanwhile; the kernel wait
    /// itself runs on <see cref="FileLock"/>'s own waiter thread and honours the token.
    /// </summary>
    public static async Task<IStoreLock> AcquireLockAsync(string path, LockOptions options, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var lockPath = LockPaths.ForStore(path);
        return await Task.Run(() => (IStoreLock)FileLock.Acquire(lockPath, options, ct), ct).ConfigureAwait(false);
    }
}
