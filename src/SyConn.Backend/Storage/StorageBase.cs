using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The dict contract every store shares (SyConn's <c>FSBase</c>, and its <c>BTBase</c>): a store's entries are
/// per-key Python objects held by an entry store (<see cref="IEntryStore"/>: a pickle file, an npz archive, rows
/// of a database); <see cref="Pull"/> loads them and <see cref="Push"/> writes back what changed.
/// </summary>
/// <remarks>
/// <para><b>Opening.</b> The stores' <c>Open</c> and <c>OpenAsync</c> factories (and their constructors, shaped as
/// SyConn's) create the store and pull it. A store's own constructor does no I/O before it is complete.</para>
/// <para><b>Entries</b> are read lazily from the entry store, and every change is recorded per key
/// (the indexer, <c>Update</c>, <see cref="Remove"/>, <see cref="SetRaw"/>, and values handed out for editing in
/// place, such as AttributeDict's dicts); a push writes only the changed and removed keys (a file backend
/// rewrites its file whole, as SyConn does).</para>
/// <para><b>Locking</b> (when <see cref="StoreOptions.DisableLocking"/> is false, or null on a backend that locks by
/// default, see <see cref="IEntryStore.LocksByDefault"/>): a read-only store holds the store's lock while it reads
/// (unless the backend reads one consistent snapshot without it, <see cref="IEntryStore.SnapshotLoads"/>); a writable store takes it when it pulls and keeps it until <see cref="Push"/> has
/// written, or until it is disposed (which releases it without writing). The lock excludes other processes,
/// Python SyConn jobs included, and other store objects and threads of this process.</para>
/// <para><b>Disposing</b> releases the lock and drops changes that were not pushed (as upstream); a writable store
/// with such changes logs a warning through <see cref="StoreOptions.Logger"/>.</para>
/// <para><b>Thread-safety:</b> a store object is not thread-safe (like <see cref="Dictionary{TKey,TValue}"/>):
/// use one per thread, or synchronise. <b>Process-safety:</b> with locking on, read-modify-write cycles of
/// several processes never lose updates; with locking off (the default), concurrent writers of one file
/// each replace it whole (the last push wins), but readers always see a complete file.</para>
/// <para><b>Failure:</b> data that cannot be read raises <see cref="InvalidDataException"/> and is never
/// overwritten (see <see cref="StoreOptions.OnCorruptFile"/>).</para>
/// </remarks>
public abstract class StorageBase : IDisposable
{
    private readonly EntryTable _table = new();
    private IStoreLock? _lock;
    private bool _pushedWithLock;
    private bool _disposed;

    /// <summary>Creates a store over <paramref name="entryStore"/> without reading anything (the factories pull it).</summary>
    /// <exception cref="ArgumentException">An unsupported pickle protocol.</exception>
    protected StorageBase(IEntryStore entryStore, StoreOptions? options)
    {
        EntryStore = entryStore ?? throw new ArgumentNullException(nameof(entryStore));
        Options = options ?? StoreOptions.Default;
        if (Options.PickleProtocol is < 2 or > 5)
            throw new ArgumentException($"pickle protocol {Options.PickleProtocol} is not supported (use 2 to 5)", nameof(options));
        _table.TrackHandedOut = CanPush;
        EntryStore.DescribeAs(GetType().Name);
    }

    /// <summary>Where the entries live.</summary>
    public IEntryStore EntryStore { get; }

    /// <summary>The store's address: a file path, or <c>bt:IDENTIFIER</c>.</summary>
    public string Location => EntryStore.Location;

    /// <summary>The options the store was opened with.</summary>
    public StoreOptions Options { get; }

    /// <summary><c>read_only</c>.</summary>
    public bool ReadOnly => Options.ReadOnly;

    private bool CanPush => !Options.ReadOnly || Options.AllowReadOnlyPush;

    /// <summary>True when the store locks: as the options say, else as the backend does by default; never in optimistic mode.</summary>
    private bool Locking => !Options.Optimistic && !(Options.DisableLocking ?? !EntryStore.LocksByDefault);

    /// <summary>True when a pull takes the lock (a read-only pull of a backend with snapshot loads needs none).</summary>
    private bool LocksPull => Locking && !(ReadOnly && EntryStore.SnapshotLoads);

    /// <summary>True while this store holds its lock.</summary>
    public bool HoldsLock => _lock is { IsHeld: true };

    /// <summary>True when there are changes that a push would write (set or removed keys, values handed out for editing).</summary>
    public bool IsDirty => _table.IsDirty;

    /// <summary>Number of entries (helper keys of <c>VoxelStorageDyn</c> included, as upstream's <c>len</c>).</summary>
    public int Count => _table.Count;

    /// <summary>
    /// Pulls the store as the last step of opening it, disposing it when that fails (which releases a lock taken);
    /// what the constructors shaped as SyConn's and the <c>Open</c> factories call once the store is complete.
    /// </summary>
    protected void OpenNow()
    {
        try
        {
            Pull();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Pulls a newly created store without blocking on its lock, disposing it when that fails (the <c>OpenAsync</c> factories' common part).</summary>
    protected static async Task<TStore> OpenedAsync<TStore>(TStore store, CancellationToken ct) where TStore : StorageBase
    {
        ArgumentNullException.ThrowIfNull(store);
        try
        {
            await store.PullAsync(ct).ConfigureAwait(false);
            return store;
        }
        catch
        {
            store.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Loads the entries: from <paramref name="source"/> (an address of the same kind of store, read without
    /// locking) if given, else from the store's own location (locking as the options say). Forgets all changes.
    /// After a pull from elsewhere, the next <see cref="Push"/> replaces everything stored at the own location.
    /// </summary>
    /// <exception cref="InvalidDataException">The data is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">The lock could not be taken in time.</exception>
    /// <exception cref="FileNotFoundException">A read-only store does not exist and <see cref="StoreOptions.MustExist"/> is true.</exception>
    public void Pull(string? source = null)
    {
        ThrowIfDisposed();
        if (source is not null)
        {
            PullFrom(source);
            return;
        }
        ThrowIfOptimisticUnsupported();
        if (!ReadOnly) EntryStore.EnsureWritable();
        if (LocksPull && _lock is null)
        {
            EntryStore.PrepareLoad(Options);
            _lock = EntryStore.AcquireLock(Options.LockOptions);
        }
        LoadLocked();
    }

    /// <summary>
    /// <see cref="Pull(string?)"/> of the own location that waits for the lock without blocking the caller's thread.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled while waiting for the lock.</exception>
    /// <inheritdoc cref="Pull(string?)" path="/exception"/>
    public async Task PullAsync(CancellationToken ct = default)
    {
        ThrowIfDisposed();
        ThrowIfOptimisticUnsupported();
        if (!ReadOnly) EntryStore.EnsureWritable();
        if (LocksPull && _lock is null)
        {
            EntryStore.PrepareLoad(Options);
            _lock = await EntryStore.AcquireLockAsync(Options.LockOptions, ct).ConfigureAwait(false);
        }
        LoadLocked();
    }

    private void ThrowIfOptimisticUnsupported()
    {
        if (Options.Optimistic && !EntryStore.SupportsOptimistic)
            throw new NotSupportedException($"{Location}: this backend keeps no store generation, so it cannot push optimistically; use locking (DisableLocking = false) instead");
    }

    private void LoadLocked()
    {
        bool locking = LocksPull;
        try
        {
            try
            {
                EntryStore.Load(Options);
            }
            catch (InvalidDataException e) when (Options.OnCorruptFile == CorruptFilePolicy.MoveAside)
            {
                var moved = EntryStore.MoveAside();
                Options.Logger?.LogWarning("{Location} could not be read ({Error}); moved it to {Moved} and started empty", Location, e.Message, moved);
                EntryStore.Load(Options);
            }
            CheckExists();
            LoadSideData();
            _table.Reset(EntryStore);
            _pushedWithLock = false;
            OnEntriesReplaced();
        }
        catch
        {
            if (locking) ReleaseLock();
            throw;
        }
        if (locking && ReadOnly) ReleaseLock();
    }

    /// <summary>A read-only store over nothing: warn, and refuse when <see cref="StoreOptions.MustExist"/> says so.</summary>
    private void CheckExists()
    {
        if (!ReadOnly || EntryStore.Exists || !WarnOnUnpushedDispose) return; // writable stores create it; side stores are optional
        bool must = Options.MustExist ?? false;
        Options.Logger?.LogWarning("{Location} does not exist; {What}", Location, must ? "refusing to open it (MustExist)" : "opened it read-only as an empty store");
        if (must)
            throw new FileNotFoundException(
                $"{Location} does not exist (opening a read-only {GetType().Name}); check the path, or set StoreOptions.MustExist = false to open it as an empty store", Location);
    }

    private void PullFrom(string source)
    {
        var src = OpenEntryStoreAt(source);
        try
        {
            src.Load(Options);
        }
        catch
        {
            src.Dispose();
            throw;
        }
        _table.Reset(src, replaceAll: true, ownsBase: true);
        OnEntriesReplaced();
    }

    /// <summary>
    /// Starts with no entries, without reading (SyConn's <c>overwrite</c>); with <paramref name="replaceOnPush"/>
    /// the next push replaces everything stored.
    /// </summary>
    protected void ResetEmpty(bool replaceOnPush)
    {
        ThrowIfDisposed();
        _table.Reset(null, replaceAll: replaceOnPush);
        OnEntriesReplaced();
    }

    /// <summary>Loads data that lives beside the entries (VoxelStorageDyn's voxel cache), under the same lock.</summary>
    protected virtual void LoadSideData() { }

    /// <summary>The entry store of another address, for <see cref="Pull(string?)"/> and <see cref="Push(string?)"/> with a location.</summary>
    protected virtual IEntryStore OpenEntryStoreAt(string address) => EntryStore.OpenRelated(address, Options);

    /// <summary>Called after the entries were loaded, so derived stores can rebuild their state.</summary>
    protected virtual void OnEntriesReplaced() { }

    /// <summary>
    /// Writes the entries: to <paramref name="dest"/> (an address of the same kind of store, all entries, without
    /// locking) if given, else what changed to the store's own location, atomically (and durably unless
    /// <see cref="StoreOptions.Durable"/> is false), then releases the lock of a writable locked store.
    /// </summary>
    /// <exception cref="InvalidOperationException">The store is read-only (and <see cref="StoreOptions.AllowReadOnlyPush"/> is off),
    /// or a locked store was already pushed (its lock is gone: pull again first).</exception>
    /// <exception cref="ArgumentException">A value cannot be pickled (edited in place into something that is not a Python value): names the key and the path inside the value; nothing is written.</exception>
    public virtual void Push(string? dest = null)
    {
        ThrowIfDisposed();
        if (dest is not null)
        {
            using var target = OpenEntryStoreAt(dest);
            target.ReplaceAll(_table.ReadAll(), Options);
            return;
        }
        if (!CanPush)
            throw new InvalidOperationException($"{Location}: the store was opened read-only; open it with ReadOnly = false (or set AllowReadOnlyPush) to push");
        bool locking = Locking && !ReadOnly;
        if (locking && !HoldsLock)
            throw new InvalidOperationException(_pushedWithLock
                ? $"{Location}: already pushed; the lock was released then, so another process may have changed the store. Pull() again before pushing"
                : $"{Location}: the store's lock is not held; Pull() before pushing");
        if (locking) _lock!.ReleaseWithNextWrite();
        try
        {
            WriteEntries();
        }
        catch (ArgumentException e) when (FindForeignValue() is { } where)
        {
            throw new ArgumentException($"{Location}: the push failed: {where}", e);
        }
        if (locking)
        {
            ReleaseLock();
            _pushedWithLock = true;
        }
    }

    /// <summary>
    /// <see cref="Push(string?)"/> without blocking the caller's thread: the write runs on a thread-pool thread.
    /// <paramref name="ct"/> is observed until the write begins; a push that has begun runs to its end and is
    /// then complete (stopping a push halfway would leave nothing better than finishing it: the store file is
    /// replaced atomically either way).
    /// </summary>
    /// <exception cref="OperationCanceledException">Cancelled before the write began; nothing was written and the lock is still held.</exception>
    public Task PushAsync(string? dest = null, CancellationToken ct = default)
    {
        ct.ThrowIfCancellationRequested();
        ThrowIfDisposed();
        return Task.Run(() =>
        {
            ct.ThrowIfCancellationRequested();
            Push(dest);
        }, ct);
    }

    /// <summary>
    /// The first entry holding a value that cannot be pickled (put there by editing a live value in place after it
    /// was set), as words naming the key, the path inside the value and the CLR type; null if there is none.
    /// </summary>
    private string? FindForeignValue()
    {
        foreach (var k in _table.Keys.ToList())
        {
            var key = StoreKey.FromPython(k);
            if (_table.TryPeek(key, out var raw) && PyConvert.TryFindForeign(raw, out var path, out var type))
                return $"key {key}: {(path.Length == 0 ? "the value" : "the value at " + path)}: {PyConvert.ForeignAdvice(type)}";
        }
        return null;
    }

    /// <summary>Writes what changed to the entry store (derived stores write their side data first).</summary>
    protected virtual void WriteEntries() => _table.Push(EntryStore, Options);

    private void ReleaseLock()
    {
        var l = _lock;
        _lock = null;
        l?.Dispose();
        if (l is not null) EntryStore.AfterUnlock();
    }

    /// <summary>True if <paramref name="key"/> is stored (helper keys included).</summary>
    public bool ContainsKey(StoreKey key) => _table.ContainsKey(key);

    /// <summary>The keys (for <c>VoxelStorageDyn</c>: object IDs only), in insertion order.</summary>
    public virtual IEnumerable<StoreKey> Keys
    {
        get
        {
            foreach (var k in _table.Keys) yield return StoreKey.FromPython(k);
        }
    }

    /// <summary>Removes an entry (upstream's <c>del</c>, which recurses forever there, works here).</summary>
    /// <returns>True if it was stored.</returns>
    public virtual bool Remove(StoreKey key)
    {
        ThrowIfDisposed();
        bool removed = _table.Remove(key);
        if (removed) OnEntryChanged(key);
        return removed;
    }

    /// <summary>
    /// A shallow copy of the internal dict (upstream's <c>copy_intern</c>): its values are the store's own objects,
    /// so editing one edits the store, and each counts as changed on a store that can push.
    /// </summary>
    public PyDict CopyIntern()
    {
        var c = new PyDict(_table.Count);
        foreach (var k in _table.Keys.ToList())
            if (_table.TryGetHandedOut(StoreKey.FromPython(k), out var v)) c[k] = v;
        return c;
    }

    /// <summary>The raw Python object stored under <paramref name="key"/> (the store's own object: editing it edits the store).</summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    public object GetRaw(StoreKey key) => TryGetRaw(key, out var v) ? v : throw MissingKey(key);

    /// <summary>The raw Python object stored under <paramref name="key"/>, if any (the store's own object).</summary>
    public bool TryGetRaw(StoreKey key, [MaybeNullWhen(false)] out object raw) => _table.TryGetHandedOut(key, out raw);

    /// <summary>Stores a raw Python object (bypassing the typed codec; it must have the store's per-key layout).</summary>
    public void SetRaw(StoreKey key, object raw)
    {
        ThrowIfDisposed();
        ArgumentNullException.ThrowIfNull(raw);
        SetEntry(key, raw, handedOut: true);
    }

    /// <summary>The raw entry of a key for decoding into a new value (not pinned, not counted as changed).</summary>
    protected bool TryPeekEntry(StoreKey key, [MaybeNullWhen(false)] out object raw) => _table.TryPeek(key, out raw);

    /// <summary>The item <paramref name="name"/> of the dict entry of a key, for one look (thread-safe while nothing changes the store).</summary>
    internal Formats.Pickle.PickleDictIndex.AttributeRead PeekItemTransient(StoreKey key, string name, out object? result) => _table.PeekItemTransient(key, name, out result);

    /// <summary>The raw entry of a key that the caller edits in place or hands out: pinned, and counted as changed on a store that can push.</summary>
    protected bool TryGetEntryForEdit(StoreKey key, [MaybeNullWhen(false)] out object raw) => _table.TryGetHandedOut(key, out raw);

    /// <summary>Tells the entry table that most entries will be handed out (a store whose getter returns its own objects).</summary>
    private protected void ExpectLiveValues(bool live) => _table.LiveByDefault = live;

    /// <summary>Records a new raw entry for a key.</summary>
    /// <param name="key">The key.</param>
    /// <param name="raw">The raw entry.</param>
    /// <param name="handedOut">Someone else keeps the object and may edit it in place.</param>
    /// <param name="edit">False for entries the store adds by itself (no warning when they are dropped unpushed).</param>
    protected void SetEntry(StoreKey key, object raw, bool handedOut, bool edit = true)
    {
        _table.Set(key, raw, handedOut, edit);
        OnEntryChanged(key);
    }

    /// <summary>Called when one entry was set or removed (cache invalidation).</summary>
    protected virtual void OnEntryChanged(StoreKey key) { }

    /// <summary>What the store's getter returns for <paramref name="key"/> as a Python value (the fixtures' <c>getter</c> form); never inserts.</summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    /// <exception cref="InvalidDataException">The stored entry does not have this store's layout.</exception>
    public abstract object GetAsPython(StoreKey key);

    /// <summary>A <see cref="KeyNotFoundException"/> naming the key and the store.</summary>
    protected KeyNotFoundException MissingKey(StoreKey key) => new($"key {key} is not in {Location}");

    /// <summary>Throws if disposed.</summary>
    protected void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    /// <summary>Releases the lock (if held) without writing; changes not pushed are dropped (a writable store logs a warning).</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        try
        {
            if (!ReadOnly && _table.Edits > 0 && WarnOnUnpushedDispose)
                Options.Logger?.LogWarning("{Location}: disposed with {Edits} change(s) that were never pushed; they are dropped", Location, _table.Edits);
            Dispose(true);
        }
        finally
        {
            ReleaseLock();
            _table.Dispose();
            EntryStore.Dispose();
            GC.SuppressFinalize(this);
        }
    }

    /// <summary>False for stores whose owner pushes them (a side store), so only the owner warns.</summary>
    internal bool WarnOnUnpushedDispose { get; set; } = true;

    /// <summary>Releases resources of derived stores.</summary>
    protected virtual void Dispose(bool disposing) { }
}
