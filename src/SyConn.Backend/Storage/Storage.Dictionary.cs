using System.Collections.ObjectModel;
using System.Diagnostics.CodeAnalysis;

namespace SyConn.Backend.Storage;

/// <summary>
/// The .NET dictionary interfaces of a store: <see cref="IDictionary{TKey,TValue}"/> and
/// <see cref="IReadOnlyDictionary{TKey,TValue}"/> over the keys <see cref="StorageBase.Keys"/> lists.
/// </summary>
/// <remarks>
/// <para>Keys convert implicitly from <c>ulong</c>, <c>long</c>, <c>int</c>, <c>BigInteger</c>, <c>string</c> and
/// C# tuples of those (<c>store[(1, 2)]</c>), so a store is used like a <c>Dictionary</c>.</para>
/// <para>Where an upstream quirk would break an interface's contract, the interface is implemented explicitly and
/// keeps the contract, while the store's own members keep the upstream behaviour:</para>
/// <list type="bullet">
/// <item>the interface indexer throws <see cref="KeyNotFoundException"/> for a missing key (AttributeDict's own indexer
/// inserts an empty dict, as upstream);</item>
/// <item>the interfaces' <c>Count</c> counts the keys <c>Keys</c> lists (VoxelStorageDyn's own
/// <see cref="StorageBase.Count"/> counts its helper keys too, as upstream's <c>len</c>);</item>
/// <item>the interfaces' <c>Keys</c> and <c>Values</c> are snapshots taken when read.</item>
/// </list>
/// <para><b>Read-only</b> is a run-time property (<see cref="IsReadOnly"/>): on a store opened read-only, the
/// mutations of the interfaces (their indexer's setter, <c>Add</c>, <c>Remove</c>, <c>Clear</c>) and
/// <see cref="Add(StoreKey, TValue)"/> and <see cref="Clear"/> throw <see cref="NotSupportedException"/>. The
/// store's own indexer and <see cref="StorageBase.Remove"/> still change the in-memory entries (upstream allows it;
/// such changes can be pushed to another location with <see cref="StorageBase.Push(string?)"/>).</para>
/// </remarks>
public abstract partial class Storage<TValue> : IDictionary<StoreKey, TValue>, IReadOnlyDictionary<StoreKey, TValue>
{
    /// <summary>True when the store cannot push to its own location (opened read-only, without <see cref="StoreOptions.AllowReadOnlyPush"/>): the dictionary interfaces' mutations then throw <see cref="NotSupportedException"/>.</summary>
    public bool IsReadOnly => Options.ReadOnly && !Options.AllowReadOnlyPush;

    /// <summary>Adds a new entry (as <see cref="Dictionary{TKey,TValue}.Add"/>).</summary>
    /// <exception cref="ArgumentException">The key is already stored.</exception>
    /// <exception cref="NotSupportedException">The store is read-only (<see cref="IsReadOnly"/>).</exception>
    public void Add(StoreKey key, TValue value)
    {
        ThrowIfReadOnly();
        if (ContainsKey(key)) throw new ArgumentException($"key {key} is already in {Location}", nameof(key));
        this[key] = value;
    }

    /// <summary>Removes every key <see cref="StorageBase.Keys"/> lists (a push then writes the store without them).</summary>
    /// <exception cref="NotSupportedException">The store is read-only (<see cref="IsReadOnly"/>).</exception>
    public void Clear()
    {
        ThrowIfReadOnly();
        foreach (var k in Keys.ToList()) Remove(k);
    }

    private void ThrowIfReadOnly()
    {
        ThrowIfDisposed();
        if (IsReadOnly)
            throw new NotSupportedException($"{Location} was opened read-only; open it with StoreOptions.Writable (ReadOnly = false) to change it");
    }

    private TValue GetExisting(StoreKey key) => IsListedKey(key) && TryGetValue(key, out var v) ? v : throw MissingKey(key);

    /// <summary>
    /// True when <see cref="StorageBase.Keys"/> lists <paramref name="key"/> if stored; false for a store's helper keys
    /// (VoxelStorageDyn's <c>meta</c>, <c>size</c>, ...), which the dictionary interfaces then do not see either.
    /// </summary>
    protected virtual bool IsListedKey(StoreKey key) => true;

    private int ListedCount => Keys.Count();

    TValue IDictionary<StoreKey, TValue>.this[StoreKey key]
    {
        get => GetExisting(key);
        set
        {
            ThrowIfReadOnly();
            this[key] = value;
        }
    }

    TValue IReadOnlyDictionary<StoreKey, TValue>.this[StoreKey key] => GetExisting(key);

    ICollection<StoreKey> IDictionary<StoreKey, TValue>.Keys => new ReadOnlyCollection<StoreKey>(Keys.ToList());

    ICollection<TValue> IDictionary<StoreKey, TValue>.Values => new ReadOnlyCollection<TValue>(Values.ToList());

    IEnumerable<StoreKey> IReadOnlyDictionary<StoreKey, TValue>.Keys => Keys;

    IEnumerable<TValue> IReadOnlyDictionary<StoreKey, TValue>.Values => Values;

    int ICollection<KeyValuePair<StoreKey, TValue>>.Count => ListedCount;

    int IReadOnlyCollection<KeyValuePair<StoreKey, TValue>>.Count => ListedCount;

    bool IDictionary<StoreKey, TValue>.ContainsKey(StoreKey key) => IsListedKey(key) && ContainsKey(key);

    bool IReadOnlyDictionary<StoreKey, TValue>.ContainsKey(StoreKey key) => IsListedKey(key) && ContainsKey(key);

    bool IDictionary<StoreKey, TValue>.TryGetValue(StoreKey key, [MaybeNullWhen(false)] out TValue value) => ListedTryGetValue(key, out value);

    bool IReadOnlyDictionary<StoreKey, TValue>.TryGetValue(StoreKey key, [MaybeNullWhen(false)] out TValue value) => ListedTryGetValue(key, out value);

    private bool ListedTryGetValue(StoreKey key, [MaybeNullWhen(false)] out TValue value)
    {
        if (IsListedKey(key)) return TryGetValue(key, out value);
        value = default;
        return false;
    }

    bool IDictionary<StoreKey, TValue>.Remove(StoreKey key)
    {
        ThrowIfReadOnly();
        return Remove(key);
    }

    void ICollection<KeyValuePair<StoreKey, TValue>>.Add(KeyValuePair<StoreKey, TValue> item) => Add(item.Key, item.Value);

    bool ICollection<KeyValuePair<StoreKey, TValue>>.Contains(KeyValuePair<StoreKey, TValue> item) =>
        TryGetValue(item.Key, out var v) && EqualityComparer<TValue>.Default.Equals(v, item.Value);

    void ICollection<KeyValuePair<StoreKey, TValue>>.CopyTo(KeyValuePair<StoreKey, TValue>[] array, int arrayIndex)
    {
        ArgumentNullException.ThrowIfNull(array);
        ArgumentOutOfRangeException.ThrowIfNegative(arrayIndex);
        // Enumerated directly: LINQ's ToList on this collection calls CopyTo.
        var items = new List<KeyValuePair<StoreKey, TValue>>();
        using (var e = GetEnumerator())
            while (e.MoveNext()) items.Add(e.Current);
        if (array.Length - arrayIndex < items.Count)
            throw new ArgumentException($"the array has room for {array.Length - arrayIndex} items from index {arrayIndex}; the store has {items.Count}", nameof(array));
        items.CopyTo(array, arrayIndex);
    }

    bool ICollection<KeyValuePair<StoreKey, TValue>>.Remove(KeyValuePair<StoreKey, TValue> item)
    {
        ThrowIfReadOnly();
        return ((ICollection<KeyValuePair<StoreKey, TValue>>)this).Contains(item) && Remove(item.Key);
    }

    bool ICollection<KeyValuePair<StoreKey, TValue>>.IsReadOnly => IsReadOnly;
}
