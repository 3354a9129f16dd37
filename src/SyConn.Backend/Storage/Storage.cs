using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace SyConn.Backend.Storage;

/// <summary>
/// A store whose entries decode to <typeparamref name="TValue"/>: the indexer reads through the entry
/// codec (with a decode cache when <see cref="StoreOptions.CacheDecomp"/> is on) and writes through it.
/// </summary>
/// <typeparam name="TValue">What the getter returns.</typeparam>
public abstract partial class Storage<TValue> : StorageBase, IEnumerable<KeyValuePair<StoreKey, TValue>> where TValue : notnull
{
    private readonly Dictionary<StoreKey, TValue>? _cache;

    /// <inheritdoc/>
    protected Storage(IEntryStore entryStore, StoreOptions? options) : base(entryStore, options)
    {
        if (Options.CacheDecomp) _cache = new Dictionary<StoreKey, TValue>();
#pragma warning disable CA2214 // ValuesAreLive is a constant of the store class, not state set by a constructor
        ExpectLiveValues(ValuesAreLive);
#pragma warning restore CA2214
    }

    /// <summary>
    /// True when the getter returns the stored objects themselves (AttributeDict), so that editing a value edits the
    /// store: reads then pin the entry and count it as changed on a store that can push.
    /// </summary>
    protected virtual bool ValuesAreLive => false;

    /// <summary>Decodes the raw per-key object.</summary>
    /// <exception cref="InvalidDataException">The raw object does not have this store's layout.</exception>
    protected abstract TValue Decode(StoreKey key, object raw);

    /// <summary>Encodes a value into the raw per-key object.</summary>
    /// <exception cref="ArgumentException">The value cannot be stored.</exception>
    protected abstract object Encode(StoreKey key, TValue value);

    /// <summary>The getter's value as a Python value (<see cref="StorageBase.GetAsPython"/>); the value itself by default.</summary>
    protected virtual object ToPython(TValue value) => value;

    /// <inheritdoc/>
    public override object GetAsPython(StoreKey key) => TryGetValue(key, out var v) ? ToPython(v) : throw MissingKey(key);

    /// <summary>Reads (decoding) or writes (encoding) the value of <paramref name="key"/>.</summary>
    /// <exception cref="KeyNotFoundException">Reading a key that is not stored.</exception>
    public virtual TValue this[StoreKey key]
    {
        get => TryGetValue(key, out var v) ? v : throw MissingKey(key);
        set
        {
            ThrowIfDisposed();
            ArgumentNullException.ThrowIfNull(value);
            SetEntry(key, Encode(key, value), ValuesAreLive);
        }
    }

    /// <summary>The decoded value of <paramref name="key"/>, if stored.</summary>
    public virtual bool TryGetValue(StoreKey key, [MaybeNullWhen(false)] out TValue value)
    {
        if (_cache is not null && _cache.TryGetValue(key, out value)) return true;
        if (ValuesAreLive)
        {
            if (!TryGetEntryForEdit(key, out var raw)) { value = default; return false; }
            value = Decode(key, raw);
        }
        else if (!TryDecode(key, out value)) return false;
        if (_cache is not null) _cache[key] = value;
        return true;
    }

    /// <summary>
    /// Looks up and decodes one value, bypassing the decode cache. Called from several threads at once by
    /// <see cref="GetMany"/>, so overrides must only read the store.
    /// </summary>
    protected virtual bool TryDecode(StoreKey key, [MaybeNullWhen(false)] out TValue value)
    {
        if (!TryPeekEntry(key, out var raw)) { value = default; return false; }
        value = Decode(key, raw);
        return true;
    }

    /// <summary>
    /// The values of several keys, in the order given, decoded (decompressed) in parallel on all cores: the bulk
    /// counterpart of the indexer. Do not modify the store from another thread meanwhile. The LZ4 bytes decoded by the
    /// call add up to <see cref="ReadLimits.MaxStoreBytes"/> of <see cref="StoreOptions.Limits"/> at most, each entry's
    /// declared size counted before it is decoded.
    /// </summary>
    /// <exception cref="KeyNotFoundException">A key is not stored.</exception>
    /// <exception cref="InvalidDataException">An entry cannot be decoded, or decoding it would pass the limit (the message names the file and key).</exception>
    public TValue[] GetMany(IReadOnlyList<StoreKey> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var result = new TValue[keys.Count];
        using var budget = DecodeBudget.Enter(NewDecodeBudget());
        if (ValuesAreLive)
        {
            // Live values are pinned one by one: pinning changes the entry table.
            for (int i = 0; i < result.Length; i++) result[i] = TryGetValue(keys[i], out var v) ? v : throw MissingKey(keys[i]);
            return result;
        }
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
        for (int i = 0; i < raw.Length; i++) SetEntry(list[i].Key, raw[i], ValuesAreLive);
    }

    /// <summary>The decoded values in key order, decoded ahead on all cores as <see cref="GetEnumerator"/> does.</summary>
    public IEnumerable<TValue> Values => this.Select(kv => kv.Value);

    /// <summary>How many bytes of decoded values enumeration decodes ahead of the caller at most (after its first batch; values
    /// under about 85 KB each: 4 MB).</summary>
    public const long DecodeAheadBytes = 64L << 20;

    // Values below the runtime's large-object threshold live in the collector's young generations: a batch of 64 MB of
    // them is copied from generation to generation by the collections that fall while it is held (W7's 10,000 arrays
    // of 12 KB took 0.24 s to enumerate that way, 0.15 s one by one), so their batches hold at most 4 MB.
    private const long SmallValueBytes = 85_000, SmallValuesAheadBytes = 4L << 20;

    private int _version;

    /// <summary>
    /// Key/value pairs in key order. Values are decoded (decompressed) on all cores in batches of about
    /// <see cref="DecodeAheadBytes"/> bytes of values (4 MB when the values are smaller than about 85 KB, which the
    /// collector would otherwise copy while the batch is held), then handed out one by one; no decoding runs while the caller
    /// holds a pair, so the caller may modify the store inside the loop (a value changed after its batch was
    /// decoded is read again). Stores whose values are live objects (AttributeDict) are read one key at a time. A
    /// value that cannot be decoded throws when its turn comes, as a one-by-one read would. The LZ4 bytes decoded by one
    /// enumeration add up to <see cref="ReadLimits.MaxStoreBytes"/> of <see cref="StoreOptions.Limits"/> at most (as
    /// <see cref="GetMany"/>).
    /// </summary>
    public IEnumerator<KeyValuePair<StoreKey, TValue>> GetEnumerator()
    {
        var keys = Keys.ToList();
        var budget = NewDecodeBudget();
        if (ValuesAreLive || keys.Count < 4 || Environment.ProcessorCount < 2)
        {
            foreach (var k in keys) yield return new KeyValuePair<StoreKey, TValue>(k, Read(k, budget));
            yield break;
        }
        int batch = 2 * Environment.ProcessorCount;
        for (int start = 0; start < keys.Count;)
        {
            int n = Math.Min(batch, keys.Count - start);
            var values = new TValue[n];
            var errors = new Exception?[n];
            var cached = new bool[n];
            int version = _version;
            using (DecodeBudget.Enter(budget))
            {
                Parallel.For(0, n, i =>
                {
                    var key = keys[start + i];
                    try
                    {
                        if (_cache is not null && _cache.TryGetValue(key, out var c)) { values[i] = c; cached[i] = true; }
                        else if (TryDecode(key, out var v)) values[i] = v;
                        else errors[i] = MissingKey(key);
                    }
                    catch (Exception e)
                    {
                        errors[i] = e;
                    }
                });
            }
            long bytes = 0;
            for (int i = 0; i < n; i++)
            {
                if (errors[i] is null) bytes += Math.Max(1, EstimateBytes(values[i]));
                if (_cache is not null && errors[i] is null && !cached[i]) _cache[keys[start + i]] = values[i];
            }
            for (int i = 0; i < n; i++)
            {
                var key = keys[start + i];
                if (_version != version) { yield return new KeyValuePair<StoreKey, TValue>(key, Read(key, budget)); continue; }
                if (errors[i] is { } error) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
                var value = values[i];
                values[i] = default!;
                yield return new KeyValuePair<StoreKey, TValue>(key, value);
            }
            start += n;
            long perValue = Math.Max(1, bytes / n);
            batch = (int)Math.Clamp((perValue < SmallValueBytes ? SmallValuesAheadBytes : DecodeAheadBytes) / perValue, 2L * Environment.ProcessorCount, 4096);
        }
    }

    private DecodeBudget NewDecodeBudget() => new(Options.Limits ?? ReadLimits.Default);

    /// <summary>The indexer's read, counted in <paramref name="budget"/> (the ambient budget is not left set across a yield).</summary>
    private TValue Read(StoreKey key, DecodeBudget budget)
    {
        using var scope = DecodeBudget.Enter(budget);
        return this[key];
    }

    /// <summary>
    /// About how many bytes <paramref name="value"/> holds, to size the batches of <see cref="GetEnumerator"/>: the
    /// arrays' bytes for arrays and lists of arrays, a small constant otherwise.
    /// </summary>
    protected virtual long EstimateBytes(TValue value) => value switch
    {
        Arrays.NdArray a => a.NBytes,
        IEnumerable<Arrays.NdArray> many => many.Sum(a => a?.NBytes ?? 0),
        _ => 256,
    };

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <inheritdoc/>
    protected override void OnEntryChanged(StoreKey key)
    {
        _version++;
        _cache?.Remove(key);
    }

    /// <inheritdoc/>
    protected override void OnEntriesReplaced()
    {
        _version++;
        _cache?.Clear();
    }
}
