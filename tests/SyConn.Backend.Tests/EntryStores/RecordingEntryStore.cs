using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Tests.EntryStores;

/// <summary>
/// An <see cref="IEntryStore"/> that passes every call to an inner entry store and records it, so tests can
/// prove what a store asked its backend for: that reads are lazy, and that a push writes only what changed.
/// </summary>
/// <remarks>
/// Reads may come from several threads at once (a store's parallel <c>GetMany</c>), so their records are
/// thread-safe. <see cref="Reset"/> forgets what was recorded (for instance everything the open did).
/// </remarks>
public sealed class RecordingEntryStore(IEntryStore inner) : IEntryStore
{
    private int _loads;
    private int _containsKeys;
    private int _readAlls;
    private int _keysCalls;
    private int _acquireLocks;
    private int _acquireLockAsyncs;
    private ConcurrentQueue<StoreKey> _tryReads = new();
    private ConcurrentQueue<WriteChangesCall> _writeChanges = new();
    private ConcurrentQueue<int> _replaceAlls = new();

    /// <summary>One <see cref="IEntryStore.WriteChanges"/> call: its removed keys and its changed keys, in the order given.</summary>
    public sealed record WriteChangesCall(IReadOnlyList<StoreKey> Removed, IReadOnlyList<StoreKey> Changed);

    /// <summary>The entry store every call goes to.</summary>
    public IEntryStore Inner { get; } = inner ?? throw new ArgumentNullException(nameof(inner));

    /// <summary>Number of <see cref="Load"/> calls.</summary>
    public int Loads => Volatile.Read(ref _loads);

    /// <summary>Number of <see cref="ContainsKey"/> calls.</summary>
    public int ContainsKeyCalls => Volatile.Read(ref _containsKeys);

    /// <summary>Number of times <see cref="Keys"/> was enumerated.</summary>
    public int KeysCalls => Volatile.Read(ref _keysCalls);

    /// <summary>Number of <see cref="ReadAll"/> enumerations.</summary>
    public int ReadAlls => Volatile.Read(ref _readAlls);

    /// <summary>Number of <see cref="AcquireLock"/> calls.</summary>
    public int AcquireLocks => Volatile.Read(ref _acquireLocks);

    /// <summary>Number of <see cref="AcquireLockAsync"/> calls.</summary>
    public int AcquireLockAsyncs => Volatile.Read(ref _acquireLockAsyncs);

    /// <summary>The keys of every <see cref="TryRead"/> call, in call order (found or not).</summary>
    public IReadOnlyList<StoreKey> TryReads => _tryReads.ToArray();

    /// <summary>Every <see cref="WriteChanges"/> call.</summary>
    public IReadOnlyList<WriteChangesCall> WriteChangesCalls => _writeChanges.ToArray();

    /// <summary>The number of entries of every <see cref="ReplaceAll"/> call.</summary>
    public IReadOnlyList<int> ReplaceAllCalls => _replaceAlls.ToArray();

    /// <summary>Forgets everything recorded so far.</summary>
    public void Reset()
    {
        Volatile.Write(ref _loads, 0);
        Volatile.Write(ref _containsKeys, 0);
        Volatile.Write(ref _readAlls, 0);
        Volatile.Write(ref _keysCalls, 0);
        Volatile.Write(ref _acquireLocks, 0);
        Volatile.Write(ref _acquireLockAsyncs, 0);
        _tryReads = new();
        _writeChanges = new();
        _replaceAlls = new();
    }

    /// <inheritdoc/>
    public string Location => Inner.Location;

    /// <inheritdoc/>
    public EntryStoreKind Kind => Inner.Kind;

    /// <inheritdoc/>
    public string? Folder => Inner.Folder;

    /// <inheritdoc/>
    public bool LocksByDefault => Inner.LocksByDefault;

    /// <inheritdoc/>
    public bool SnapshotLoads => Inner.SnapshotLoads;

    /// <inheritdoc/>
    public bool SupportsOptimistic => Inner.SupportsOptimistic;

    /// <inheritdoc/>
    public void DescribeAs(string storeClass) => Inner.DescribeAs(storeClass);

    /// <inheritdoc/>
    public void PrepareLoad(StoreOptions options) => Inner.PrepareLoad(options);

    /// <inheritdoc/>
    public IEntryStore OpenRelated(string address, StoreOptions options) => Inner.OpenRelated(address, options);

    /// <inheritdoc/>
    public bool StableReads => Inner.StableReads;

    /// <inheritdoc/>
    public bool Exists => Inner.Exists;

    /// <inheritdoc/>
    public void Load(StoreOptions options)
    {
        Interlocked.Increment(ref _loads);
        Inner.Load(options);
    }

    /// <inheritdoc/>
    public int Count => Inner.Count;

    /// <inheritdoc/>
    public IEnumerable<object> Keys
    {
        get
        {
            Interlocked.Increment(ref _keysCalls);
            return Inner.Keys;
        }
    }

    /// <inheritdoc/>
    public bool ContainsKey(StoreKey key)
    {
        Interlocked.Increment(ref _containsKeys);
        return Inner.ContainsKey(key);
    }

    /// <inheritdoc/>
    public bool TryRead(StoreKey key, [MaybeNullWhen(false)] out object entry)
    {
        _tryReads.Enqueue(key);
        return Inner.TryRead(key, out entry);
    }

    /// <inheritdoc/>
    public IEnumerable<KeyValuePair<object, object>> ReadAll()
    {
        Interlocked.Increment(ref _readAlls);
        return Inner.ReadAll();
    }

    /// <inheritdoc/>
    public void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options)
    {
        _writeChanges.Enqueue(new WriteChangesCall(
            removed.Select(StoreKey.FromPython).ToArray(),
            changed.Select(kv => StoreKey.FromPython(kv.Key)).ToArray()));
        Inner.WriteChanges(removed, changed, options);
    }

    /// <inheritdoc/>
    public void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options)
    {
        var list = entries.ToList();
        _replaceAlls.Enqueue(list.Count);
        Inner.ReplaceAll(list, options);
    }

    /// <inheritdoc/>
    public IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _acquireLocks);
        return Inner.AcquireLock(options, ct);
    }

    /// <inheritdoc/>
    public Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default)
    {
        Interlocked.Increment(ref _acquireLockAsyncs);
        return Inner.AcquireLockAsync(options, ct);
    }

    /// <inheritdoc/>
    public IEntryStore OpenSideStore(string name) => Inner.OpenSideStore(name);

    /// <inheritdoc/>
    public void EnsureWritable() => Inner.EnsureWritable();

    /// <inheritdoc/>
    public string MoveAside() => Inner.MoveAside();

    /// <inheritdoc/>
    public void Dispose() => Inner.Dispose();

    /// <inheritdoc/>
    public override string ToString() => $"Recording({Inner})";
}
