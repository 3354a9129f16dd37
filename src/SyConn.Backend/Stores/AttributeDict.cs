using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Arrays;
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
    public static AttributeDict Open(string path, StoreOptions? options = null) => new(path, StoreOptions.ForFactory(options));

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static AttributeDict Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, StoreOptions.ForFactory(options));

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<AttributeDict> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<AttributeDict> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new AttributeDict(entryStore, StoreOptions.ForFactory(options), deferred: true), ct);

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
    /// <exception cref="ArgumentException">The value, or a value inside it, cannot be pickled (naming the key, the path and the CLR type).</exception>
    protected override object Encode(StoreKey key, object value) => CheckedValue(key, value);

    // Typed access. The conversions are PyConvert's: checked by value (a Python int or numpy integer converts to any
    // integer type it fits in), floats never to integers, arrays by numpy's safe casting unless asked otherwise.

    /// <summary>
    /// The attribute <paramref name="name"/> of <paramref name="key"/> as <typeparamref name="T"/>, without inserting
    /// anything: <c>ad.Get&lt;long&gt;(id, "size")</c>, <c>ad.Get&lt;ulong&gt;(id, "ssv_id")</c>,
    /// <c>ad.Get&lt;double?&gt;(id, "mean")</c> (None as null). See <see cref="PyConvert"/> for the conversions.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key, or the attribute of the key, is not stored.</exception>
    /// <exception cref="InvalidDataException">The value of the key is not an attribute dict.</exception>
    /// <exception cref="InvalidCastException">The attribute's value does not convert to <typeparamref name="T"/>.</exception>
    /// <exception cref="OverflowException">An integer that does not fit in <typeparamref name="T"/>.</exception>
    public T Get<T>(StoreKey key, string name) =>
        PyConvert.To<T>(AttributeValue(key, name), Describe(key, name));

    /// <summary>
    /// The attribute <paramref name="name"/> of <paramref name="key"/> as <typeparamref name="T"/>, if the key and the
    /// attribute are stored (false otherwise; nothing is inserted). A stored value that does not convert still throws.
    /// </summary>
    /// <exception cref="InvalidDataException">The value of the key is not an attribute dict.</exception>
    /// <exception cref="InvalidCastException">The attribute's value does not convert to <typeparamref name="T"/>.</exception>
    /// <exception cref="OverflowException">An integer that does not fit in <typeparamref name="T"/>.</exception>
    public bool TryGet<T>(StoreKey key, string name, [MaybeNullWhen(false)] out T value)
    {
        ArgumentNullException.ThrowIfNull(name);
        value = default;
        if (!TryGetValue(key, out var v)) return false;
        var d = v as PyDict ?? throw NotADict(key, v);
        if (!d.TryGetValue(name, out var raw)) return false;
        value = PyConvert.To<T>(raw, Describe(key, name));
        return true;
    }

    /// <summary>The whole value of <paramref name="key"/> as <typeparamref name="T"/> (a <see cref="PyDict"/>, or any other stored value), without inserting.</summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    /// <exception cref="InvalidCastException">The value does not convert to <typeparamref name="T"/>.</exception>
    /// <exception cref="OverflowException">An integer that does not fit in <typeparamref name="T"/>.</exception>
    public T Get<T>(StoreKey key) =>
        PyConvert.To<T>(TryGetValue(key, out var v) ? v : throw MissingKey(key), $"{Location}, key {key}");

    /// <summary>
    /// The attribute <paramref name="name"/> of <paramref name="key"/> as an array of <typeparamref name="T"/>, shape
    /// kept (<c>ad.GetArray&lt;long&gt;(id, "rep_coord")</c>): an ndarray converted as numpy's
    /// <paramref name="casting"/> allows (safe by default: uint32 to long yes, uint64 to long no), or a list of numbers.
    /// The result is in C order and native byte order, so <see cref="NdArray.AsSpan{T}"/> and
    /// <see cref="NdArray.GetValue{T}(long[])"/> work on it.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key, or the attribute of the key, is not stored.</exception>
    /// <exception cref="InvalidDataException">The value of the key is not an attribute dict.</exception>
    /// <exception cref="InvalidCastException">The attribute is not an array, or its dtype does not convert under <paramref name="casting"/>.</exception>
    public NdArray GetArray<T>(StoreKey key, string name, CastingRule casting = CastingRule.Safe) where T : unmanaged =>
        PyConvert.ToArray<T>(AttributeValue(key, name), casting, Describe(key, name));

    /// <summary>The attribute names of <paramref name="key"/> (empty when the key is not stored; nothing is inserted).</summary>
    /// <exception cref="InvalidDataException">The value of the key is not an attribute dict.</exception>
    public IReadOnlyList<string> AttributeNames(StoreKey key)
    {
        if (!TryGetValue(key, out var v)) return [];
        var d = v as PyDict ?? throw NotADict(key, v);
        return d.Keys.Select(k => k as string ?? PyRepr.Repr(k)).ToList();
    }

    // Columnar reads: one attribute of every key, for analysis code. Values the store has not read yet are read for
    // the call only (on all cores) and not kept, so a column of a store of a million objects costs the bytes of the
    // column, not a million attribute dicts.

    /// <summary>
    /// The attribute <paramref name="name"/> of every key, in the order of <see cref="StorageBase.Keys"/>, as
    /// <typeparamref name="T"/> (converted as <see cref="Get{T}(StoreKey, string)"/> does): <c>long[] sizes =
    /// ad.Column&lt;long&gt;("size")</c>. Nothing is inserted, and values not read before are not kept.
    /// </summary>
    /// <exception cref="KeyNotFoundException">A key has no such attribute (the message names the first one found).</exception>
    /// <exception cref="InvalidDataException">A value is not an attribute dict, or is damaged in the file.</exception>
    /// <exception cref="InvalidCastException">A value does not convert to <typeparamref name="T"/>.</exception>
    /// <exception cref="OverflowException">An integer that does not fit in <typeparamref name="T"/>.</exception>
    public T[] Column<T>(string name) => ColumnCore(name, hasMissing: false, default(T)!);

    /// <summary>
    /// <see cref="Column{T}(string)"/>, with <paramref name="missing"/> for the keys that lack the attribute.
    /// </summary>
    /// <inheritdoc cref="Column{T}(string)" path="/exception"/>
    public T[] Column<T>(string name, T missing) => ColumnCore(name, hasMissing: true, missing);

    /// <summary>
    /// The array attribute <paramref name="name"/> of every key stacked into one array of shape (n, ...), in the order
    /// of <see cref="StorageBase.Keys"/>: <c>ad.ColumnArray&lt;long&gt;("rep_coord")</c> is an (n, 3) array. Every
    /// key's array must have the same shape; dtypes convert as <paramref name="casting"/> allows (safe by default).
    /// </summary>
    /// <exception cref="KeyNotFoundException">A key has no such attribute.</exception>
    /// <exception cref="InvalidDataException">A value is not an attribute dict or is damaged, or two keys' arrays differ in shape.</exception>
    /// <exception cref="InvalidCastException">An attribute is not an array, or its dtype does not convert under <paramref name="casting"/>.</exception>
    public NdArray ColumnArray<T>(string name, CastingRule casting = CastingRule.Safe) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(name);
        var keys = Keys.ToArray();
        var arrays = new NdArray[keys.Length];
        ForEachKey(keys, (i, key) =>
        {
            var raw = ColumnValue(key, name, hasMissing: false, out _);
            try
            {
                arrays[i] = PyConvert.ToArray<T>(raw, casting);
            }
            catch (InvalidCastException)
            {
                // The description is built only for the message of a value that does not convert.
                arrays[i] = PyConvert.ToArray<T>(raw, casting, Describe(key, name));
            }
        });
        long[] inner = keys.Length == 0 ? [0] : arrays[0].Shape.ToArray();
        long per = 1;
        foreach (long d in inner) per *= d;
        var data = new T[checked(per * keys.Length)];
        for (int i = 0; i < keys.Length; i++)
        {
            var a = arrays[i];
            if (!a.Shape.SequenceEqual(inner))
                throw new InvalidDataException($"{Location}, key {keys[i]}, attribute '{name}': shape ({string.Join(", ", a.Shape.ToArray())}) differs from the first key's ({string.Join(", ", inner)})");
            a.AsSpan<T>().CopyTo(data.AsSpan((int)(i * per), (int)per));
        }
        return NdArray.Create(data, [keys.Length, .. inner]);
    }

    private T[] ColumnCore<T>(string name, bool hasMissing, T missing)
    {
        ArgumentNullException.ThrowIfNull(name);
        var keys = Keys.ToArray();
        var result = new T[keys.Length];
        ForEachKey(keys, (i, key) =>
        {
            var raw = ColumnValue(key, name, hasMissing, out bool found);
            result[i] = !found ? missing : PyConvert.TryTo<T>(raw, out var v) ? v : PyConvert.To<T>(raw, Describe(key, name));
        });
        return result;
    }

    private object? ColumnValue(StoreKey key, string name, bool hasMissing, out bool found)
    {
        switch (PeekItemTransient(key, name, out var raw))
        {
            case Formats.Pickle.PickleDictIndex.AttributeRead.Found:
                found = true;
                return raw;
            case Formats.Pickle.PickleDictIndex.AttributeRead.NoAttribute when hasMissing:
                found = false;
                return null;
            case Formats.Pickle.PickleDictIndex.AttributeRead.NoAttribute:
                found = false;
                return AttributeValue(key, name); // throws, naming the attributes the key has
            case Formats.Pickle.PickleDictIndex.AttributeRead.NotADict:
                throw NotADict(key, raw!);
            default:
                throw MissingKey(key);
        }
    }

    /// <summary>Runs <paramref name="body"/> for every key, on all cores for a big store; the first failure in key order is thrown.</summary>
    private static void ForEachKey(StoreKey[] keys, Action<int, StoreKey> body)
    {
        if (keys.Length < 4096 || Environment.ProcessorCount < 2)
        {
            for (int i = 0; i < keys.Length; i++) body(i, keys[i]);
            return;
        }
        const int Chunk = 2048;
        int chunks = (keys.Length + Chunk - 1) / Chunk;
        var errors = new Exception?[chunks];
        Parallel.For(0, chunks, c =>
        {
            int to = Math.Min(keys.Length, (c + 1) * Chunk);
            try
            {
                for (int i = c * Chunk; i < to; i++) body(i, keys[i]);
            }
            catch (Exception e)
            {
                errors[c] = e;
            }
        });
        foreach (var e in errors)
            if (e is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    private object AttributeValue(StoreKey key, string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!TryGetValue(key, out var v)) throw MissingKey(key);
        var d = v as PyDict ?? throw NotADict(key, v);
        return d.TryGetValue(name, out var raw)
            ? raw
            : throw new KeyNotFoundException($"{Location}, key {key}: no attribute '{name}' (it has {(d.Count == 0 ? "none" : string.Join(", ", d.Keys.Take(20).Select(PyRepr.Repr)))})");
    }

    private object CheckedValue(StoreKey key, object value)
    {
        if (!PyConvert.TryFindForeign(value, out var path, out var type)) return value;
        throw new ArgumentException($"{Location}, key {key}: {(path.Length == 0 ? "the value" : "the value at " + path)} is refused: {PyConvert.ForeignAdvice(type)}", nameof(value));
    }

    private string Describe(StoreKey key, string name) => $"{Location}, key {key}, attribute '{name}'";

    private InvalidDataException NotADict(StoreKey key, object v) =>
        new($"{Location}, key {key}: value is a {EntryParsing.TypeName(v)}, not an attribute dict");
}
