using System.Collections;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The dict contract every store shares (SyConn's <c>FSBase</c>): the entries of a store are one
/// Python dict of per-key objects; opening a store pulls it, <see cref="Push"/> writes it back.
/// </summary>
/// <remarks>
/// <para><b>Locking</b> (when <see cref="StoreOptions.DisableLocking"/> is false): a read-only store holds
/// the store's lock while it reads; a writable store takes it when it pulls and keeps it until
/// <see cref="Push"/> has written the file, or until it is disposed (which releases it without writing).
/// The lock excludes other processes, Python SyConn jobs included, and other store objects and threads of
/// this process.</para>
/// <para><b>Thread-safety:</b> a store object is not thread-safe (like <see cref="Dictionary{TKey,TValue}"/>):
/// use one per thread, or synchronise. <b>Process-safety:</b> with locking on, read-modify-write cycles of
/// several processes never lose updates; with locking off (the default), concurrent writers of one file
/// each replace it whole (the last push wins), but readers always see a complete file.</para>
/// <para><b>Failure:</b> a file that cannot be read raises <see cref="InvalidDataException"/> and is never
/// overwritten (see <see cref="StoreOptions.OnCorruptFile"/>).</para>
/// </remarks>
public abstract class StorageBase : IDisposable
{
    private PyDict _entries = new();
    private bool _pushedWithLock;
    private bool _disposed;

    /// <summary>Opens a store on the filesystem at <paramref name="path"/> and pulls it.</summary>
    protected StorageBase(string path, StoreOptions? options)
        : this(new FileStoreBackend(path), options)
    {
    }

    /// <summary>Opens a store over <paramref name="backend"/> and pulls it.</summary>
    protected StorageBase(IStoreBackend backend, StoreOptions? options)
    {
        Backend = backend ?? throw new ArgumentNullException(nameof(backend));
        Options = options ?? StoreOptions.Default;
        if (Options.PickleProtocol is < 2 or > 5)
            throw new ArgumentException($"pickle protocol {Options.PickleProtocol} is not supported (use 2 to 5)", nameof(options));
    }

    /// <summary>Where the entries live.</summary>
    public IStoreBackend Backend { get; }

    /// <summary>The file path for filesystem stores, else the backend's location.</summary>
    public string Location => Backend.Location;

    /// <summary>The options the store was opened with.</summary>
    public StoreOptions Options { get; }

    /// <summary><c>read_only</c>.</summary>
    public bool ReadOnly => Options.ReadOnly;

    /// <summary>True while this store holds its lock.</summary>
    public bool HoldsLock => Backend.HoldsLock;

    /// <summary>The raw per-key Python objects (what the pickle file holds). Mutations bypass the typed codecs.</summary>
    protected PyDict Entries => _entries;

    /// <summary>Number of entries (helper keys of <c>VoxelStorageDyn</c> included, as upstream's <c>len</c>).</summary>
    public int Count => _entries.Count;

    /// <summary>
    /// Loads the entries: from <paramref name="source"/> (a pickle file, read without locking) if given, else
    /// from the store's own location (locking as the options say). Replaces what is in memory.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">The lock could not be taken in time.</exception>
    public void Pull(string? source = null)
    {
        ThrowIfDisposed();
        if (source is not null)
        {
            SetEntries(FileStoreBackend.ReadFile(Path.GetFullPath(source), Options) ?? new PyDict());
            return;
        }
        if (!ReadOnly) Backend.EnsureWritable();
        bool locking = !Options.DisableLocking;
        if (locking) Backend.AcquireLock(Options);
        try
        {
            PyDict? loaded;
            try
            {
                loaded = Backend.Read(Options);
            }
            catch (InvalidDataException e) when (Options.OnCorruptFile == CorruptFilePolicy.MoveAside)
            {
                var moved = Backend.MoveAside();
                Options.Logger?.LogWarning("{Location} could not be read ({Error}); moved it to {Moved} and started empty", Location, e.Message, moved);
                loaded = null;
            }
            SetEntries(loaded ?? new PyDict());
            _pushedWithLock = false;
        }
        catch
        {
            if (locking) Backend.ReleaseLock();
            throw;
        }
        if (locking && ReadOnly) Backend.ReleaseLock();
    }

    private void SetEntries(PyDict loaded)
    {
        // Keys are kept as stored (numpy integer scalars included: Python treats np.uint64(5) and 5 as one
        // key, and so does PyDict); StoreKey normalises them when they are listed.
        _entries = loaded;
        OnEntriesReplaced();
    }

    /// <summary>Called after the entries were loaded, so derived stores can rebuild their state.</summary>
    protected virtual void OnEntriesReplaced() { }

    /// <summary>
    /// Writes the entries: to <paramref name="dest"/> (a pickle file, written without locking) if given, else to
    /// the store's own location, atomically (and durably unless <see cref="StoreOptions.Durable"/> is false),
    /// then releases the lock of a writable locked store.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store is read-only (and <see cref="StoreOptions.AllowReadOnlyPush"/> is off),
    /// or a locked store was already pushed (its lock is gone: pull again first).</exception>
    public virtual void Push(string? dest = null)
    {
        ThrowIfDisposed();
        if (dest is not null)
        {
            FileStoreBackend.WriteFile(Path.GetFullPath(dest), _entries, Options);
            return;
        }
        if (ReadOnly && !Options.AllowReadOnlyPush)
            throw new InvalidOperationException($"{Location}: the store was opened read-only; open it with ReadOnly = false (or set AllowReadOnlyPush) to push");
        bool locking = !Options.DisableLocking && !ReadOnly;
        if (locking && !Backend.HoldsLock)
            throw new InvalidOperationException(_pushedWithLock
                ? $"{Location}: already pushed; the lock was released then, so another process may have changed the file. Pull() again before pushing"
                : $"{Location}: the store's lock is not held; Pull() before pushing");
        WriteEntries();
        if (locking)
        {
            Backend.ReleaseLock();
            _pushedWithLock = true;
        }
    }

    /// <summary>Writes the entries to the backend (derived stores write companion files first).</summary>
    protected virtual void WriteEntries() => Backend.Write(_entries, Options);

    /// <summary>True if <paramref name="key"/> is stored (helper keys included).</summary>
    public bool ContainsKey(StoreKey key) => _entries.ContainsKey(key.PythonValue);

    /// <summary>The keys (for <c>VoxelStorageDyn</c>: object IDs only), in insertion order.</summary>
    public virtual IEnumerable<StoreKey> Keys
    {
        get
        {
            foreach (var k in _entries.Keys) yield return StoreKey.FromPython(k);
        }
    }

    /// <summary>Removes an entry (upstream's <c>del</c>, which recurses forever there, works here).</summary>
    /// <returns>True if it was stored.</returns>
    public virtual bool Remove(StoreKey key)
    {
        ThrowIfDisposed();
        bool removed = _entries.Remove(key.PythonValue);
        if (removed) OnEntryChanged(key);
        return removed;
    }

    /// <summary>A shallow copy of the internal dict (upstream's <c>copy_intern</c>).</summary>
    public PyDict CopyIntern()
    {
        var c = new PyDict(_entries.Count);
        foreach (var kv in _entries) c[kv.Key] = kv.Value;
        return c;
    }

    /// <summary>The raw Python object stored under <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    public object GetRaw(StoreKey key) =>
        _entries.TryGetValue(key.PythonValue, out var v) ? v : throw MissingKey(key);

    /// <summary>The raw Python object stored under <paramref name="key"/>, if any.</summary>
    public bool TryGetRaw(StoreKey key, [MaybeNullWhen(false)] out object raw) => _entries.TryGetValue(key.PythonValue, out raw);

    /// <summary>Stores a raw Python object (bypassing the typed codec; it must have the store's per-key layout).</summary>
    public void SetRaw(StoreKey key, object raw)
    {
        ThrowIfDisposed();
        _entries[key.PythonValue] = raw ?? throw new ArgumentNullException(nameof(raw));
        OnEntryChanged(key);
    }

    /// <summary>Called when one entry was set or removed (cache invalidation).</summary>
    protected virtual void OnEntryChanged(StoreKey key) { }

    /// <summary>A <see cref="KeyNotFoundException"/> naming the key and the store.</summary>
    protected KeyNotFoundException MissingKey(StoreKey key) => new($"key {key} is not in {Location}");

    /// <summary>Throws if disposed.</summary>
    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Releases the lock (if held) without writing.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Dispose(true);
        Backend.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources of derived stores.</summary>
    protected virtual void Dispose(bool disposing) { }
}

/// <summary>
/// A store whose entries decode to <typeparamref name="TValue"/>: the indexer reads through the entry
/// codec (with a decode cache when <see cref="StoreOptions.CacheDecomp"/> is on) and writes through it.
/// </summary>
/// <typeparam name="TValue">What the getter returns.</typeparam>
public abstract class Storage<TValue> : StorageBase, IEnumerable<KeyValuePair<StoreKey, TValue>> where TValue : notnull
{
    private readonly Dictionary<StoreKey, TValue>? _cache;

    /// <inheritdoc/>
    protected Storage(string path, StoreOptions? options) : this(new FileStoreBackend(path), options) { }

    /// <inheritdoc/>
    protected Storage(IStoreBackend backend, StoreOptions? options) : base(backend, options)
    {
        if (Options.CacheDecomp) _cache = new Dictionary<StoreKey, TValue>();
    }

    /// <summary>Decodes the raw per-key object.</summary>
    /// <exception cref="InvalidDataException">The raw object does not have this store's layout.</exception>
    protected abstract TValue Decode(StoreKey key, object raw);

    /// <summary>Encodes a value into the raw per-key object.</summary>
    /// <exception cref="ArgumentException">The value cannot be stored.</exception>
    protected abstract object Encode(StoreKey key, TValue value);

    /// <summary>Reads (decoding) or writes (encoding) the value of <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">Reading a key that is not stored.</exception>
    public virtual TValue this[StoreKey key]
    {
        get => TryGetValue(key, out var v) ? v : throw MissingKey(key);
        set
        {
            ThrowIfDisposed();
            ArgumentNullException.ThrowIfNull(value);
            var raw = Encode(key, value);
            Entries[key.PythonValue] = raw;
            OnEntryChanged(key);
        }
    }

    /// <summary>The decoded value of <paramref name="key"/>, if stored.</summary>
    public virtual bool TryGetValue(StoreKey key, [MaybeNullWhen(false)] out TValue value)
    {
        if (_cache is not null && _cache.TryGetValue(key, out value)) return true;
        if (!TryDecode(key, out value)) return false;
        if (_cache is not null) _cache[key] = value;
        return true;
    }

    /// <summary>
    /// Looks up and decodes one value, bypassing the decode cache. Called from several threads at once by
    /// <see cref="GetMany"/>, so overrides must only read the store.
    /// </summary>
    protected virtual bool TryDecode(StoreKey key, [MaybeNullWhen(false)] out TValue value)
    {
        if (!Entries.TryGetValue(key.PythonValue, out var raw)) { value = default; return false; }
        value = Decode(key, raw);
        return true;
    }

    /// <summary>
    /// The values of several keys, in the order given, decoded (decompressed) in parallel on all cores: the bulk
    /// counterpart of the indexer. Do not modify the store from another thread meanwhile.
    /// </summary>
    /// <exception cref="KeyNotFoundException">A key is not stored.</exception>
    public TValue[] GetMany(IReadOnlyList<StoreKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var result = new TValue[keys.Count];
        var fromCache = new bool[keys.Count];
        try
        {
            Parallel.For(0, keys.Count, i =>
            {
                if (_cache is not null && _cache.TryGetValue(keys[i], out var c)) { result[i] = c; fromCache[i] = true; return; }
                result[i] = TryDecode(keys[i], out var v) ? v : throw MissingKey(keys[i]);
            });
        }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            throw;
        }
        if (_cache is not null)
            for (int i = 0; i < result.Length; i++) if (!fromCache[i]) _cache[keys[i]] = result[i];
        return result;
    }

    /// <summary>
    /// Sets several values (upstream's <c>update</c>). Values are encoded (compressed) in parallel on all cores,
    /// then stored in the given order; like the indexer, it returns only when every value is encoded, so the
    /// caller may reuse its arrays afterwards. If a value cannot be encoded, nothing is stored.
    /// </summary>
    /// <exception cref="ArgumentException">A value cannot be stored (nothing was changed).</exception>
    public void Update(IEnumerable<KeyValuePair<StoreKey, TValue>> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        ThrowIfDisposed();
        var list = items as IReadOnlyList<KeyValuePair<StoreKey, TValue>> ?? items.ToList();
        var raw = new object[list.Count];
        if (list.Count < 8)
        {
            for (int i = 0; i < raw.Length; i++) raw[i] = Encode(list[i].Key, list[i].Value ?? throw new ArgumentNullException(nameof(items), $"value of key {list[i].Key} is null"));
        }
        else
        {
            try
            {
                Parallel.For(0, raw.Length, i => raw[i] = Encode(list[i].Key, list[i].Value ?? throw new ArgumentNullException(nameof(items), $"value of key {list[i].Key} is null")));
            }
            catch (AggregateException e) when (e.InnerExceptions.Count > 0)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                throw;
            }
        }
        for (int i = 0; i < raw.Length; i++)
        {
            Entries[list[i].Key.PythonValue] = raw[i];
            OnEntryChanged(list[i].Key);
        }
    }

    /// <summary>The decoded values in key order.</summary>
    public IEnumerable<TValue> Values => Keys.Select(k => this[k]);

    /// <summary>Key/value pairs in key order (decoding each value).</summary>
    public IEnumerator<KeyValuePair<StoreKey, TValue>> GetEnumerator()
    {
        foreach (var k in Keys.ToList()) yield return new KeyValuePair<StoreKey, TValue>(k, this[k]);
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    protected override void OnEntryChanged(StoreKey key) => _cache?.Remove(key);

    /// <inheritdoc/>
    protected override void OnEntriesReplaced() => _cache?.Clear();
}
