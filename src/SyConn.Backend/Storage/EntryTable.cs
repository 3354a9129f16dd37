using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The entries of a store as its base sees them: what the entry store holds, read lazily, plus every change
/// since the last pull or push, recorded per key, so that a push writes exactly the changed and removed keys.
/// </summary>
/// <remarks>
/// <para>Changes live in an overlay over the base (the entry store a pull loaded, or nothing): a set or a
/// value handed out mutable goes into the overlay; a removal of a base key is remembered. Iteration follows
/// Python's dict order: base keys in their order (a changed key keeps its place), then new keys in the order
/// they were first set; a key removed and set again moves to the end.</para>
/// <para><b>Mutable values.</b> A value handed out for in-place editing (AttributeDict's dicts, VoxelStorageDyn's
/// helper dicts, raw entries) is pinned in the overlay, so every later read returns that very object, and it
/// counts as changed on a pushable store: after a push it stays pinned and changed, because its holder may edit it
/// again. Values set through an entry codec are the codec's own objects and are dropped from the overlay after a
/// push (the entry store then holds them).</para>
/// <para>Not thread-safe, except that <see cref="TryPeek"/>, <see cref="ContainsKey"/> and <see cref="Count"/> may
/// run on several threads at once while nothing changes the table.</para>
/// </remarks>
internal sealed class EntryTable : IDisposable
{
    private IEntryStore? _base;
    private bool _ownsBase;
    private bool _replaceAll;
    private readonly OrderedEntries _overlay = new();
    private readonly HashSet<object> _removed = new(PyEquality.Comparer);
    private int _added;
    private int _edits;

    /// <summary>True when the store's own values are the objects it hands out (AttributeDict): set entries then count as handed out.</summary>
    public bool LiveByDefault
    {
        get => _overlay.LiveByDefault;
        set => _overlay.LiveByDefault = _overlay.Count == 0 ? value : throw new InvalidOperationException("the mode is chosen before any entry is set");
    }

    /// <summary>True when values handed out mutable count as changes (the store can push).</summary>
    public bool TrackHandedOut { get; set; }

    /// <summary>Set and removed keys since the last pull or push, not counting values merely handed out.</summary>
    public int Edits => _edits;

    /// <summary>True when a push has something to write beyond what the base holds.</summary>
    public bool IsDirty => _replaceAll || _overlay.Count > 0 || _removed.Count > 0;

    /// <summary>
    /// Starts over from <paramref name="base"/> (null: empty), forgetting all changes. With
    /// <paramref name="replaceAll"/>, the next push replaces everything its target holds with this table's entries
    /// (a pull from another location, or an overwrite). An owned base is disposed when the table moves on.
    /// </summary>
    public void Reset(IEntryStore? @base, bool replaceAll = false, bool ownsBase = false)
    {
        Rebase(@base, replaceAll, ownsBase);
        _overlay.Clear();
    }

    /// <summary>Makes <paramref name="base"/> what unchanged entries are read from, with no removal or edit pending.</summary>
    private void Rebase(IEntryStore? @base, bool replaceAll, bool ownsBase)
    {
        if (!ReferenceEquals(@base, _base)) ReleaseBase();
        _base = @base;
        _ownsBase = ownsBase;
        _replaceAll = replaceAll;
        _removed.Clear();
        _added = 0;
        _edits = 0;
    }

    private void ReleaseBase()
    {
        if (_ownsBase) _base?.Dispose();
        _base = null;
        _ownsBase = false;
    }

    private bool BaseHas(object key) =>
        _base is not null && _base.Count > 0 && (_removed.Count == 0 || !_removed.Contains(key)) && _base.ContainsKey(StoreKey.FromPython(key));

    /// <summary>Number of entries.</summary>
    public int Count => (_base?.Count ?? 0) - _removed.Count + _added;

    /// <summary>True if the key has an entry.</summary>
    public bool ContainsKey(StoreKey key) =>
        _overlay.ContainsKey(key.PythonValue) || (!_removed.Contains(key.PythonValue) && _base is not null && _base.ContainsKey(key));

    /// <summary>The keys as stored (numpy integer scalars included), in dict order.</summary>
    public IEnumerable<object> Keys
    {
        get
        {
            if (_base is not null)
            {
                foreach (var k in _base.Keys)
                    if (_removed.Count == 0 || !_removed.Contains(k)) yield return k;
            }
            // Overlay keys the base does not have (new ones, or removed and set again) follow in overlay order.
            if (_added > 0)
                foreach (var (k, _, _) in _overlay.Items)
                    if (!BaseHas(k)) yield return k;
        }
    }

    /// <summary>The raw entry of a key without pinning it (for decoding into a new value).</summary>
    public bool TryPeek(StoreKey key, [MaybeNullWhen(false)] out object raw)
    {
        if (_overlay.TryGetValue(key.PythonValue, out raw, out _)) return true;
        if (_base is null || (_removed.Count > 0 && _removed.Contains(key.PythonValue))) { raw = null; return false; }
        return _base.TryRead(key, out raw);
    }

    /// <summary>
    /// The item <paramref name="name"/> of the dict entry of a key for one look (not to be edited); the base reads
    /// only what it needs and keeps nothing. Thread-safe as <see cref="TryPeek"/>.
    /// </summary>
    public Formats.Pickle.PickleDictIndex.AttributeRead PeekItemTransient(StoreKey key, string name, out object? result)
    {
        if (_overlay.TryGetValue(key.PythonValue, out var raw, out _)) return Formats.Pickle.PickleDictIndex.ItemOf(raw, name, out result);
        if (_base is null || (_removed.Count > 0 && _removed.Contains(key.PythonValue)))
        {
            result = null;
            return Formats.Pickle.PickleDictIndex.AttributeRead.NoKey;
        }
        if (_base is IEntryItemReader items) return items.ReadItemTransient(key, name, out result);
        if (!_base.TryRead(key, out raw))
        {
            result = null;
            return Formats.Pickle.PickleDictIndex.AttributeRead.NoKey;
        }
        return Formats.Pickle.PickleDictIndex.ItemOf(raw, name, out result);
    }

    /// <summary>
    /// The raw entry of a key to be edited in place: pinned (later reads return this object) and, on a store that
    /// can push, counted as changed.
    /// </summary>
    public bool TryGetHandedOut(StoreKey key, [MaybeNullWhen(false)] out object raw)
    {
        if (_overlay.TryGetValue(key.PythonValue, out raw, out bool handedOut))
        {
            if (!handedOut) _overlay.MarkHandedOut(key.PythonValue);
            return true;
        }
        if (_base is null || (_removed.Count > 0 && _removed.Contains(key.PythonValue)) || !_base.TryRead(key, out raw)) { raw = null; return false; }
        // A read-only store over a base that returns the same object every time needs no pin.
        if (TrackHandedOut || !_base!.StableReads) _overlay.Set(key.PythonValue, raw, handedOut: true);
        return true;
    }

    /// <summary>Sets the raw entry of a key.</summary>
    /// <param name="key">The key.</param>
    /// <param name="raw">The entry.</param>
    /// <param name="handedOut">The caller keeps the object and may edit it in place (it stays changed after a push).</param>
    /// <param name="edit">False for entries the store adds itself (SyConn's helper keys), which are pushed but do not make a dispose without push worth a warning.</param>
    public void Set(StoreKey key, object raw, bool handedOut, bool edit = true)
    {
        object k = key.PythonValue;
        if (_overlay.Set(k, raw, handedOut) && !BaseHas(k)) _added++;
        if (edit) _edits++;
    }

    /// <summary>Removes a key; true if it had an entry.</summary>
    public bool Remove(StoreKey key)
    {
        object k = key.PythonValue;
        bool inBase = BaseHas(k);
        bool inOverlay = _overlay.Remove(k);
        if (inOverlay && !inBase) _added--;
        if (inBase) _removed.Add(k);
        bool removed = inOverlay || inBase;
        if (removed) _edits++;
        return removed;
    }

    /// <summary>Every entry in dict order (values not pinned).</summary>
    public IEnumerable<KeyValuePair<object, object>> ReadAll()
    {
        foreach (var k in Keys.ToList())
        {
            var key = StoreKey.FromPython(k);
            if (!TryPeek(key, out var v)) throw new InvalidOperationException($"key {key} vanished while the entries were read");
            yield return KeyValuePair.Create(k, v);
        }
    }

    /// <summary>
    /// Writes what changed to <paramref name="target"/> (only the changed and removed keys; everything after a pull
    /// from elsewhere), then makes <paramref name="target"/> the base. On failure nothing is forgotten.
    /// </summary>
    public void Push(IEntryStore target, StoreOptions options)
    {
        if (_replaceAll || !ReferenceEquals(target, _base))
        {
            target.ReplaceAll(ReadAll(), options);
        }
        else
        {
            target.WriteChanges(_removed, _overlay.AsChanges(), options);
        }
        // The target now holds every entry: keep only what holders may still edit.
        Rebase(target, replaceAll: false, ownsBase: false);
        _overlay.KeepHandedOut();
    }

    /// <inheritdoc/>
    public void Dispose() => Reset(null);

    /// <summary>
    /// An insertion-ordered map from raw keys (Python equality) to entries, as lean as the dict the stores kept
    /// before: entries are stored as themselves, and the keys whose handed-out flag differs from the store's usual
    /// one (<see cref="LiveByDefault"/>) are kept in a side set, which is empty in the common cases (a codec store
    /// that only sets, an AttributeDict). A removal leaves a tombstone, so removing is O(1); tombstones are swept out
    /// when they are many. Setting a key again after removing it moves it to the end, which costs a shift of the
    /// entries after it.
    /// </summary>
    private sealed class OrderedEntries
    {
        private static readonly object Tombstone = new();

        private OrderedDictionary<object, object> _map = new(PyEquality.Comparer);
        private HashSet<object>? _unusual;
        private int _tombstones;

        /// <summary>True when most entries are handed out (AttributeDict), false when most are made by a codec.</summary>
        public bool LiveByDefault { get; set; }

        public int Count => _map.Count - _tombstones;

        public bool ContainsKey(object key) => TryGetValue(key, out _, out _);

        private bool IsHandedOut(object key) => LiveByDefault != (_unusual is { Count: > 0 } u && u.Contains(key));

        private void Flag(object key, bool handedOut)
        {
            if (handedOut != LiveByDefault) (_unusual ??= new HashSet<object>(PyEquality.Comparer)).Add(key);
            else _unusual?.Remove(key);
        }

        public bool TryGetValue(object key, [MaybeNullWhen(false)] out object value, out bool handedOut)
        {
            if (_map.Count > 0 && _map.TryGetValue(key, out var v) && !ReferenceEquals(v, Tombstone))
            {
                handedOut = IsHandedOut(key);
                value = v;
                return true;
            }
            value = null;
            handedOut = false;
            return false;
        }

        /// <summary>Sets a value; true if the key had none.</summary>
        public bool Set(object key, object value, bool handedOut)
        {
            bool added;
            if (_map.TryAdd(key, value, out int index)) added = true;
            else if (ReferenceEquals(_map.GetAt(index).Value, Tombstone))
            {
                _map.RemoveAt(index); // set again after a removal: it moves to the end
                _tombstones--;
                _map.Add(key, value);
                added = true;
            }
            else
            {
                _map.SetAt(index, value);
                added = false;
            }
            Flag(key, handedOut);
            return added;
        }

        public void MarkHandedOut(object key) => Flag(key, handedOut: true);

        public bool Remove(object key)
        {
            if (_map.Count == 0 || !_map.TryGetValue(key, out var v, out int index) || ReferenceEquals(v, Tombstone)) return false;
            _map.SetAt(index, Tombstone);
            _unusual?.Remove(key);
            _tombstones++;
            if (_tombstones > 64 && _tombstones > _map.Count / 2) Keep(_ => true);
            return true;
        }

        public IEnumerable<(object Key, object Value, bool HandedOut)> Items
        {
            get
            {
                foreach (var (k, v) in _map)
                    if (!ReferenceEquals(v, Tombstone)) yield return (k, v, IsHandedOut(k));
            }
        }

        /// <summary>The entries in order as a list view (valid until the map changes), for a push without a copy.</summary>
        public IReadOnlyList<KeyValuePair<object, object>> AsChanges()
        {
            if (_tombstones > 0) Keep(_ => true);
            return _map;
        }

        /// <summary>Drops the entries a codec made (and the tombstones), keeping the handed-out ones.</summary>
        public void KeepHandedOut()
        {
            int unusual = _unusual?.Count ?? 0;
            if (LiveByDefault)
            {
                if (unusual == 0 && _tombstones == 0) return;
                Keep(k => !_unusual!.Contains(k));
                _unusual = null;
            }
            else if (unusual == 0) Clear();
            else
            {
                Keep(_unusual!.Contains);
            }
        }

        private void Keep(Func<object, bool> keep)
        {
            var next = new OrderedDictionary<object, object>(_map.Count - _tombstones, PyEquality.Comparer);
            foreach (var (k, v) in _map)
                if (!ReferenceEquals(v, Tombstone) && keep(k)) next.Add(k, v);
            _map = next;
            _tombstones = 0;
        }

        public void Clear()
        {
            if (_map.Count > 0) _map = new OrderedDictionary<object, object>(PyEquality.Comparer);
            _unusual = null;
            _tombstones = 0;
        }
    }
}
