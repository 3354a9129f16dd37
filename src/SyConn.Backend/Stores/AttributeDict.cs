using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>AttributeDict</c>: any Python value per key, usually an attribute dict
/// (<c>{obj_id: {attr_name: value}}</c>). Values are kept as they are, in the Python value model
/// (see <see cref="PyDict"/>).
/// </summary>
/// <remarks>
/// As upstream, reading a missing key through the indexer inserts an empty dict under it and returns
/// it (so <c>ad[k]["x"] = 1</c> works and a later push persists the key); use
/// <see cref="Storage{TValue}.TryGetValue"/> to look without inserting. Values are live objects: mutating a
/// returned dict mutates the store, and a value read or set counts as changed on a store that can push, so
/// an edit in place is never lost by a push. Not thread-safe; process-safe with locking on.
/// </remarks>
public sealed class AttributeDict : Storage<object>
{
    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?)"/>).</summary>
    public AttributeDict(string path, StoreOptions? options = null) : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?)"/>).</summary>
    public AttributeDict(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, options)
    {
        OpenNow();
    }

    private AttributeDict(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, options) { }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    public static AttributeDict Open(string path, StoreOptions? options = null) => new(path, options);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static AttributeDict Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, options);

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<AttributeDict> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), options, ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<AttributeDict> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new AttributeDict(entryStore, options, deferred: true), ct);

    /// <summary>The value of <paramref name="key"/>; a missing key gets a new empty dict (upstream behaviour).</summary>
    public override object this[StoreKey key]
    {
        get
        {
            if (TryGetValue(key, out var v)) return v;
            var fresh = new PyDict();
            base[key] = fresh;
            return fresh;
        }
        set => base[key] = value;
    }

    /// <summary>The attribute dict of <paramref name="key"/> (inserted empty when missing, as the indexer).</summary>
    /// <exception cref="InvalidDataException">The value stored under the key is not a dict.</exception>
    public PyDict Attributes(StoreKey key) =>
        this[key] as PyDict ?? throw new InvalidDataException($"{Location}, key {key}: value is a {EntryParsing.TypeName(this[key])}, not an attribute dict");

    /// <summary>Looks up one attribute without inserting anything.</summary>
    public bool TryGetAttribute(StoreKey key, string name, [MaybeNullWhen(false)] out object value)
    {
        value = null;
        return TryGetValue(key, out var v) && v is PyDict d && d.TryGetValue(name, out value);
    }

    /// <summary>Values are the stored objects themselves: editing one edits the store.</summary>
    protected override bool ValuesAreLive => true;

    /// <inheritdoc/>
    protected override object Decode(StoreKey key, object raw) => raw;

    /// <inheritdoc/>
    protected override object Encode(StoreKey key, object value) => value;
}
