using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// A pickle whose top level is one dict (every SyConn store file), indexed by key without building the values:
/// one pass over the opcodes finds where each key and each value lies, the keys are read, and a value is read from
/// its bytes the first time it is asked for (then kept, so every read returns the same object).
/// </summary>
/// <remarks>
/// <para><b>Memo references across values.</b> A pickler memoizes what it writes, so a value may fetch an object
/// that an earlier value put (formats.md §5.5): in SyConn files the attribute-name strings, dtypes and the numpy
/// globals. The scan notes every such fetch; the values that put those objects are read while the index is built,
/// and the objects are kept in a shared memo that later reads look up. When a fetched object is mutable (a list,
/// dict, set, array or bytearray, or a tuple holding one), or a value refers to the dict itself, the values share
/// state and cannot be read one by one: <see cref="TryBuild"/> then returns null and the caller reads the whole
/// pickle as before.</para>
/// <para>The scan never throws: anything but the plain layout CPython writes at protocol 2 to 5 (dict, optional
/// memo, then batches of MARK key value ... SETITEMS or single SETITEMs, STOP; memo indices put in order; no DUP,
/// text memo opcodes, persistent ids, extensions or out-of-band buffers) gives null, and the whole-pickle reader
/// raises the error with its message. A damaged value whose opcodes are well formed (a refused global, a bad array
/// shape) is found when the value is read: the error names the file, the key and the byte offset.</para>
/// <para>Thread-safety: after construction, <see cref="TryGetValue"/>, <see cref="ContainsKey"/>, <see cref="Keys"/>
/// and <see cref="Count"/> may be called from several threads at once; a value read by two threads at once is read
/// twice and one of the two results is kept and returned to both.</para>
/// </remarks>
internal sealed class PickleDictIndex
{
    private readonly ReadOnlyMemory<byte> _data;
    private readonly PickleReadOptions _options;
    private readonly string? _source;
    private readonly object[] _keys;
    private readonly int[] _start;
    private readonly int[] _end;
    private readonly int[] _memoBase;
    private readonly object?[] _values;
    private readonly int[]?[] _layouts;
    // Where each key is: by value while every key is an int that fits in a long (SyConn's object ids; no boxed key to
    // follow and no general comparer per probe), else by Python equality. A lookup by anything but a long (True,
    // 1.0, a numpy integer) builds the general table once, so such keys still find the ints they equal.
    private Dictionary<long, int>? _longs;
    private Dictionary<object, int>? _lookup;
    private readonly SharedMemo _shared;
    private readonly ulong[] _refetched;
    private readonly ulong[] _crossFetched;
    // Readers kept for the next read: one per core of the usual two (a read on the calling thread, one ahead).
    private PickleReader? _spare, _spare2;
    // Reading ahead of a caller that reads key after key in dict order (see TryGetValue).
    private readonly ReadAhead _ahead;
    private readonly long _maxStoreBytes;
    private long _storeBytes;
    // The attribute name asked for last, with its UTF-8 (FindItem).
    private AskedName? _lastName;

    private PickleDictIndex(ReadOnlyMemory<byte> data, PickleReadOptions options, string? source, Scan scan, long maxStoreBytes)
    {
        _maxStoreBytes = maxStoreBytes;
        _data = data;
        _options = options;
        _source = source;
        int n = scan.Entries;
        _keys = new object[n];
        // The scan's arrays (sized for at least n entries) are the index's.
        _start = scan.ValueStart;
        _end = scan.ValueEnd;
        _memoBase = scan.ValueMemo;
        _values = new object?[n];
        _layouts = new int[]?[n];
        _longs = new Dictionary<long, int>(n);
        _shared = new SharedMemo();
        _refetched = scan.Refetched;
        _crossFetched = scan.CrossFetched;
        _ahead = new ReadAhead(n, i => { if (Volatile.Read(ref _values[i]) is null) Value(i); }, AheadValues,
            (cursor, next) => _start[next] - _end[cursor], AheadBytes);
    }

    /// <summary>Number of keys.</summary>
    public int Count => _keys.Length;

    /// <summary>The keys in dict order (the order of first appearance, as Python's dict keeps them).</summary>
    public IEnumerable<object> Keys
    {
        get
        {
            foreach (var k in _keys) yield return k;
        }
    }

    /// <summary>True if <paramref name="key"/> (a Python value) is a key of the dict.</summary>
    public bool ContainsKey(object key) => Find(key) >= 0;

    /// <summary>The entry of <paramref name="key"/>, or -1.</summary>
    private int Find(object key)
    {
        if (_longs is { } longs)
        {
            if (key is long l) return longs.TryGetValue(l, out int at) ? at : -1;
            return ByEquality().TryGetValue(key, out int eq) ? eq : -1;
        }
        return _lookup!.TryGetValue(key, out int i) ? i : -1;
    }

    // The general table over int keys, built on the first lookup by another type (thread-safe: one table is kept).
    private Dictionary<object, int> ByEquality()
    {
        if (Volatile.Read(ref _lookup) is { } built) return built;
        var d = new Dictionary<object, int>(_keys.Length, PyEquality.Comparer);
        for (int i = 0; i < _keys.Length; i++) d.Add(_keys[i], i);
        return Interlocked.CompareExchange(ref _lookup, d, null) ?? d;
    }

    /// <summary>The value of <paramref name="key"/>, read on first use.</summary>
    /// <exception cref="InvalidDataException">The value's bytes are damaged (the message names the file, key and offset).</exception>
    public bool TryGetValue(object key, [MaybeNullWhen(false)] out object value)
    {
        int i = Find(key);
        if (i < 0)
        {
            value = null;
            return false;
        }
        _ahead.Noted(i);
        value = Value(i);
        return true;
    }

    // Reading ahead (ReadAhead): after 16 keys read one after the other in dict order, a worker on another core reads
    // the values that follow, at most AheadValues values or AheadBytes bytes of pickle past the caller's. The values
    // read are kept as if the caller had read them; a value the worker cannot read is left for the caller.
    private const int AheadValues = 4096, AheadBytes = 4 << 20;

    /// <summary>How many values are read and kept (for tests).</summary>
    internal int ValuesHeld => _values.Count(v => v is not null);

    /// <summary>
    /// Entry <paramref name="entry"/>'s value read by <see cref="PickleReader.TryReadPlainDict"/> (null when it does not
    /// take it) and by a fresh reader, each with the bytes it counted; the reader's error in place of its value (for
    /// tests: the two must agree wherever the first takes a value).
    /// </summary>
    internal (object? Plain, long PlainBytes, object ByReader, long ReaderBytes) ReadBothWays(int entry)
    {
        var p = PickleReader.TryReadPlainDict(_data, _options, long.MaxValue, _start[entry], _end[entry], _memoBase[entry], _shared, out long plainBytes);
        var reader = new PickleReader(_data, _options, _source);
        object r;
        try
        {
            r = reader.RunRange(_start[entry], _end[entry], _memoBase[entry], _shared, _refetched);
        }
        catch (InvalidDataException e)
        {
            r = e;
        }
        return (p, plainBytes, r, reader.MaterializedBytes);
    }

    /// <summary>Whether no worker is reading ahead (for tests).</summary>
    internal bool AheadIdle => _ahead.Idle;

    /// <summary>What <paramref name="value"/> (a value of the dict) says of its item <paramref name="name"/>.</summary>
    public static AttributeRead ItemOf(object value, string name, out object? result)
    {
        if (value is PyDict d) return d.TryGetValue(name, out result) ? AttributeRead.Found : AttributeRead.NoAttribute;
        result = value;
        return AttributeRead.NotADict;
    }

    /// <summary>What <see cref="ReadAttributeTransient"/> found.</summary>
    public enum AttributeRead
    {
        /// <summary>The key is not in the dict.</summary>
        NoKey,
        /// <summary>The value is a dict holding the attribute; the result is the attribute's value.</summary>
        Found,
        /// <summary>The value is a dict without the attribute.</summary>
        NoAttribute,
        /// <summary>The value is not a dict; the result is the value.</summary>
        NotADict,
    }

    /// <summary>
    /// The item <paramref name="name"/> of the dict stored under <paramref name="key"/>, reading only that item's bytes
    /// when the value was not read before (the usual case of an attribute dict whose items refer only to shared
    /// strings, dtypes and globals); otherwise the whole value is read for this call. Nothing is kept.
    /// </summary>
    /// <exception cref="InvalidDataException">The bytes read are damaged (the message names the file, key and offset).</exception>
    public AttributeRead ReadAttributeTransient(object key, string name, out object? result)
    {
        result = null;
        int i = Find(key);
        if (i < 0) return AttributeRead.NoKey;
        var whole = Volatile.Read(ref _values[i]);
        if (whole is null)
        {
            switch (FindItem(i, name, out int vs, out int ve, out int vm))
            {
                case 1:
                    result = ReadRange(i, vs, ve, vm, kept: false, item: true);
                    return AttributeRead.Found;
                case 0:
                    return AttributeRead.NoAttribute;
            }
            whole = ReadRange(i, _start[i], _end[i], _memoBase[i], kept: false);
        }
        return ItemOf(whole, name, out result);
    }

    /// <summary>
    /// Finds the item <paramref name="name"/> in the dict value of entry <paramref name="entry"/> by its opcodes:
    /// 1 with its value's range and memo base, 0 when the dict has no such str key, -1 when it cannot tell (not a
    /// plain dict, or the item's value fetches an object another item of the same value put).
    /// </summary>
    private int FindItem(int entry, string name, out int valueStart, out int valueEnd, out int valueMemo)
    {
        valueStart = valueEnd = valueMemo = 0;
        try
        {
            var span = _data.Span;
            var layout = Volatile.Read(ref _layouts[entry]) ?? Layout(span, entry);
            if (layout.Length == 0) return -1;
            int memoBase = _memoBase[entry], found = 0;
            // A column asks for one name key after key: its UTF-8 is made once and kept for the next call.
            var asked = Volatile.Read(ref _lastName);
            if (asked is null || !string.Equals(asked.Name, name, StringComparison.Ordinal))
                Volatile.Write(ref _lastName, asked = new AskedName(name, System.Text.Encoding.UTF8.GetBytes(name)));
            ReadOnlySpan<byte> utf8 = asked.Utf8;
            for (int k = 0; k < layout.Length; k += 4)
            {
                int r = layout[k] >= 0 ? StrIs(span, layout[k], utf8) : SharedStrIs(-layout[k] - 1, name);
                if (r < 0) return -1;
                if (r == 0) continue;
                (valueStart, valueEnd, valueMemo) = (layout[k + 1], layout[k + 2], layout[k + 3]);
                found = 1; // a repeated key: the last one counts, as in Python
            }
            if (found == 0) return 0;
            return FetchesEarlierItem(span, valueStart, valueEnd, memoBase, valueMemo) ? -1 : 1;
        }
        catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException)
        {
            return -1; // damaged lengths: the whole-value read reports them
        }
    }

    private static readonly int[] NoLayout = [];

    // The items of entry's dict value, found by one walk over its opcodes and kept for the next attribute asked for:
    // four ints per item (where its str key lies, or -1 - the shared memo index the key fetches; where its value
    // starts and ends; the memo count at its value's start). Empty when the value is not a plain dict of str keys
    // that can be read this way.
    private int[] Layout(ReadOnlySpan<byte> span, int entry)
    {
        var layout = WalkItems(span, entry);
        return Interlocked.CompareExchange(ref _layouts[entry], layout, null) ?? layout;
    }

    [System.Runtime.CompilerServices.SkipLocalsInit] // the stack arrays are written before they are read
    private int[] WalkItems(ReadOnlySpan<byte> span, int entry)
    {
        const int MaxItems = 64;
        int pos = _start[entry], end = _end[entry], memoBase = _memoBase[entry], memo = memoBase;
        if (span[pos] != Op.EmptyDict) return NoLayout;
        Span<int> start = stackalloc int[MaxItems];
        Span<int> memoAt = stackalloc int[MaxItems];
        Span<int> markSp = stackalloc int[MaxItems];
        Span<int> markPos = stackalloc int[MaxItems];
        Span<int> markMemo = stackalloc int[MaxItems];
        Span<int> putItem = stackalloc int[MaxItems]; // where the item memoized as memoBase + k starts
        Span<int> items = stackalloc int[4 * MaxItems];
        int sp = 0, mp = 0, n = 0;
        while (pos < end)
        {
            int p = pos;
            byte op = span[pos++];
            long len = 0;
            switch (op)
            {
                case Op.BinGet or Op.LongBinGet:
                {
                    long idx = op == Op.BinGet ? span[pos] : BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                    if (idx >= memo) return NoLayout;
                    len = op == Op.BinGet ? 1 : 4;
                    break;
                }
                case Op.Memoize or Op.BinPut or Op.LongBinPut:
                {
                    int skip = op == Op.Memoize ? 0 : op == Op.BinPut ? 1 : 4;
                    if (sp == 0 || (skip > 0 && (skip == 1 ? span[pos] : BinaryPrimitives.ReadUInt32LittleEndian(span[pos..])) != memo)) return NoLayout;
                    if (memo - memoBase < MaxItems) putItem[memo - memoBase] = start[sp - 1];
                    memo++;
                    pos += skip;
                    continue;
                }
                case Op.Frame:
                    pos += 8;
                    continue;
                case Op.Mark:
                    if (mp == MaxItems) return NoLayout;
                    markSp[mp] = sp;
                    markPos[mp] = p;
                    markMemo[mp] = memo;
                    mp++;
                    continue;
                // As in the file scan: nothing but SETITEM(S) of its items may touch the value's dict (index 0).
                case Op.Tuple or Op.List or Op.Dict or Op.FrozenSet:
                    if (mp == 0 || markSp[mp - 1] < 1) return NoLayout;
                    mp--;
                    sp = markSp[mp];
                    start[sp] = markPos[mp];
                    memoAt[sp] = markMemo[mp];
                    sp++;
                    continue;
                case Op.Tuple1:
                    if (sp < 2 || (mp > 0 && markSp[mp - 1] > sp - 1)) return NoLayout;
                    continue;
                case Op.Tuple2 or Op.Reduce or Op.Build or Op.NewObj or Op.StackGlobal or Op.Append:
                    if (sp < 3 || (mp > 0 && markSp[mp - 1] > sp - 2)) return NoLayout;
                    sp--;
                    continue;
                case Op.Tuple3:
                    if (sp < 4 || (mp > 0 && markSp[mp - 1] > sp - 3)) return NoLayout;
                    sp -= 2;
                    continue;
                case Op.SetItem:
                    if (sp < 3 || (mp > 0 && markSp[mp - 1] > sp - 3)) return NoLayout;
                    if (sp == 3 && mp == 0)
                    {
                        if (n == 4 * MaxItems) return NoLayout;
                        items[n] = start[1]; items[n + 1] = start[2]; items[n + 2] = p; items[n + 3] = memoAt[2];
                        n += 4;
                    }
                    sp -= 2;
                    continue;
                case Op.SetItems or Op.Appends or Op.AddItems:
                {
                    if (mp == 0) return NoLayout;
                    int m = markSp[--mp];
                    if (m < 1 || (m == 1 && (op != Op.SetItems || mp != 0))) return NoLayout;
                    if (m == 1)
                    {
                        if (((sp - m) & 1) != 0) return NoLayout;
                        for (int k = m; k < sp; k += 2)
                        {
                            if (n == 4 * MaxItems) return NoLayout;
                            bool last = k + 2 >= sp;
                            items[n] = start[k]; items[n + 1] = start[k + 1]; items[n + 2] = last ? p : start[k + 2]; items[n + 3] = memoAt[k + 1];
                            n += 4;
                        }
                    }
                    sp = m;
                    continue;
                }
                default:
                    len = PushArgLength(span, pos, op);
                    if (len < 0) return NoLayout;
                    break;
            }
            pos += (int)len;
            if (sp == MaxItems) return NoLayout;
            start[sp] = p;
            memoAt[sp] = memo;
            sp++;
        }
        if (sp != 1 || mp != 0 || memo - memoBase > MaxItems) return NoLayout;
        // Each key as where its str lies: a key that fetches what this value put is the item that put it; one that
        // fetches from another value is looked up in the shared memo.
        for (int k = 0; k < n; k += 4)
        {
            int at = items[k];
            byte op = span[at];
            if (op is not (Op.BinGet or Op.LongBinGet)) continue;
            long idx = op == Op.BinGet ? span[at + 1] : BinaryPrimitives.ReadUInt32LittleEndian(span[(at + 1)..]);
            if (idx < memoBase)
            {
                if (idx > int.MaxValue - 1) return NoLayout;
                items[k] = -1 - (int)idx;
            }
            else if (idx - memoBase < MaxItems) items[k] = putItem[(int)(idx - memoBase)];
            else return NoLayout;
        }
        return items[..n].ToArray();
    }

    private int SharedStrIs(long idx, string name) =>
        _shared.TryGetValue(idx, out var e) ? (e.Value is string sv && sv == name ? 1 : 0) : -1;

    // Whether the item value in [start, end) fetches an object that an earlier item of the same value put (memo
    // indices from memoBase up to valueMemo): such an item cannot be read alone.
    private static bool FetchesEarlierItem(ReadOnlySpan<byte> span, int start, int end, int memoBase, int valueMemo)
    {
        for (int q = start; q < end;)
        {
            byte op = span[q++];
            if (op is Op.BinGet or Op.LongBinGet)
            {
                long idx = op == Op.BinGet ? span[q] : BinaryPrimitives.ReadUInt32LittleEndian(span[q..]);
                if (idx >= memoBase && idx < valueMemo) return true;
                q += op == Op.BinGet ? 1 : 4;
                continue;
            }
            long n = op switch
            {
                Op.Memoize or Op.Mark or Op.Tuple or Op.List or Op.Dict or Op.FrozenSet or Op.Tuple1 or Op.Tuple2 or Op.Tuple3
                    or Op.Reduce or Op.Build or Op.NewObj or Op.StackGlobal or Op.Append or Op.SetItem or Op.SetItems
                    or Op.Appends or Op.AddItems => 0,
                Op.BinPut => 1,
                Op.LongBinPut => 4,
                Op.Frame => 8,
                _ => PushArgLength(span, q, op),
            };
            if (n < 0) return true;
            q += (int)n;
        }
        return false;
    }

    private sealed record AskedName(string Name, byte[] Utf8);

    private static int StrIs(ReadOnlySpan<byte> span, int at, ReadOnlySpan<byte> utf8)
    {
        ReadOnlySpan<byte> text;
        switch (span[at])
        {
            case Op.ShortBinUnicode:
                text = span.Slice(at + 2, span[at + 1]);
                break;
            case Op.BinUnicode:
                text = span.Slice(at + 5, checked((int)BinaryPrimitives.ReadUInt32LittleEndian(span[(at + 1)..])));
                break;
            case Op.BinUnicode8 or Op.Unicode:
                return -1;
            default:
                return 0; // not a str: an int, a tuple, bytes, ...
        }
        return text.SequenceEqual(utf8) ? 1 : 0;
    }

    /// <summary>Every key and value in dict order; values not read yet are read on both cores, a batch ahead.</summary>
    public IEnumerable<KeyValuePair<object, object>> Items()
    {
        const int Batch = 256;
        for (int from = 0; from < _keys.Length; from += Batch)
        {
            int to = Math.Min(_keys.Length, from + Batch);
            ReadAhead(from, to);
            for (int i = from; i < to; i++)
                yield return KeyValuePair.Create(_keys[i], Value(i));
        }
    }

    /// <summary>Reads every value not read yet (on all cores) and returns the whole dict, in order.</summary>
    public PyDict Materialize()
    {
        ReadAhead(0, _keys.Length);
        var d = new PyDict(_keys.Length);
        for (int i = 0; i < _keys.Length; i++)
            d.Add(_keys[i], Value(i));
        return d;
    }

    private void ReadAhead(int from, int to)
    {
        int pending = 0;
        long bytes = 0;
        for (int i = from; i < to; i++)
        {
            if (Volatile.Read(ref _values[i]) is null)
            {
                pending++;
                bytes += _end[i] - _start[i];
            }
        }
        if (pending < 16 || bytes < 64 * 1024 || Environment.ProcessorCount < 2)
        {
            for (int i = from; i < to; i++)
                Value(i);
            return;
        }
        // A damaged value fails the read as it would one key at a time: the first in key order, not an AggregateException.
        var errors = new Exception?[to - from];
        Parallel.For(from, to, i =>
        {
            try
            {
                Value(i);
            }
            catch (Exception e)
            {
                errors[i - from] = e;
            }
        });
        foreach (var e in errors)
            if (e is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e);
    }

    private object Value(int i)
    {
        var v = Volatile.Read(ref _values[i]);
        if (v is not null) return v;
        var read = ReadRange(i, _start[i], _end[i], _memoBase[i], kept: true);
        return Interlocked.CompareExchange(ref _values[i], read, null) ?? read;
    }

    // kept: the value read is kept by the index, so its payload counts toward the store's limit
    // (ReadLimits.MaxStoreBytes); a value read for one look is only held to that limit by itself.
    // shareTo: while the index is built, the memo entries the range put (memoBase up to shareTo) that other ranges
    // fetch are copied into the shared memo.
    // item: the range is one item value of a dict value (ReadAttributeTransient), not a whole value.
    private object ReadRange(int entry, int start, int end, int memoBase, bool kept, int shareTo = -1, bool item = false)
    {
        // A value no other value fetches from (shareTo < 0) and that has the common attribute-dict layout is read
        // without the stack machine (and without a reader); anything else, or anything the direct read does not take,
        // by the reader.
        if (shareTo < 0)
        {
            long maxBytes = kept ? Math.Max(0, _maxStoreBytes - Volatile.Read(ref _storeBytes)) : _maxStoreBytes;
            var plain = item
                ? PickleReader.TryReadPlainItem(_data, _options, maxBytes, start, end, memoBase, _shared, out long bytes)
                : PickleReader.TryReadPlainDict(_data, _options, maxBytes, start, end, memoBase, _shared, out bytes);
            if (plain is not null)
            {
                if (kept) Interlocked.Add(ref _storeBytes, bytes);
                return plain;
            }
        }
        var reader = Interlocked.Exchange(ref _spare, null) ?? Interlocked.Exchange(ref _spare2, null) ?? new PickleReader(_data, _options, _source);
        try
        {
            reader.MaxMaterializedBytes = kept ? Math.Max(0, _maxStoreBytes - Volatile.Read(ref _storeBytes)) : _maxStoreBytes;
            var v = reader.RunRange(start, end, memoBase, _shared, _refetched);
            if (kept) Interlocked.Add(ref _storeBytes, reader.MaterializedBytes);
            for (int m = memoBase; m < shareTo; m++)
                if ((_crossFetched[m >> 6] & (1UL << (m & 63))) != 0 && reader.TryGetRangeMemo(m, out var e)) _shared.Set(m, e);
            if (Interlocked.CompareExchange(ref _spare, reader, null) is not null) Volatile.Write(ref _spare2, reader);
            return v;
        }
        catch (InvalidDataException e)
        {
            string where = _keys[entry] is { } k ? $"key {PyRepr.Repr(k)}" : $"key #{entry}";
            throw new InvalidDataException($"{_source ?? "pickle"}, {where}: {e.Message}", e);
        }
    }

    /// <summary>
    /// Indexes <paramref name="data"/>, or returns null when it is not a plain dict pickle whose values can be read
    /// one by one (see the remarks; the caller then reads it whole).
    /// </summary>
    /// <exception cref="InvalidDataException">A key, or a value that others refer to, is damaged.</exception>
    /// <param name="data">The pickle.</param>
    /// <param name="options">The reader's limits.</param>
    /// <param name="source">The name in error messages (the file).</param>
    /// <param name="maxStoreBytes">The most payload bytes the values kept may add up to (<see cref="ReadLimits.MaxStoreBytes"/>).</param>
    public static PickleDictIndex? TryBuild(ReadOnlyMemory<byte> data, PickleReadOptions options, string? source, long maxStoreBytes = long.MaxValue)
    {
        var scan = Scan.Run(data.Span, options);
        if (scan is null) return null;
        var index = new PickleDictIndex(data, options, source, scan, maxStoreBytes);
        return index.Fill(scan) ? index : null;
    }

    private bool Fill(Scan scan)
    {
        var span = _data.Span;
        // Keys, and the values that put objects other ranges fetch, are read while building, in file order.
        for (int i = 0; i < scan.Entries; i++)
        {
            int ks = scan.KeyStart[i], vs = scan.ValueStart[i], ve = scan.ValueEnd[i];
            object key = TryPlainInt(span, ks, vs, out var plain) ? plain
                : ReadRange(i, ks, vs, scan.KeyMemo[i], kept: false, shareTo: scan.ValueMemo[i]);
            if (PickleReader.UnhashableMember(key) is { } bad)
                throw new InvalidDataException($"{_source ?? "pickle"}: unhashable dict key or member of type {PickleReader.TypeName(bad)} at byte offset {ks}");
            // A repeated key (CPython's pickler never writes one) would leave the first value unread, though
            // Python reads it, and refuses the file if it is damaged: such a file is read whole.
            if (!AddKey(key, i)) return false;
            _keys[i] = key;
            if (scan.IsDefiner(i)) _values[i] = ReadRange(i, vs, ve, scan.ValueMemo[i], kept: true, shareTo: scan.ValueMemoEnd[i]);
        }
        // Values that share a mutable object cannot be read one by one.
        foreach (var v in _shared.Values)
            if (!Immutable(v, 0)) return false;
        return true;
    }

    // False for a key equal to an earlier one.
    private bool AddKey(object key, int entry)
    {
        if (_longs is { } longs)
        {
            if (key is long l) return longs.TryAdd(l, entry);
            // The first key of another type: every key from here on by Python equality.
            _lookup = new Dictionary<object, int>(_keys.Length, PyEquality.Comparer);
            foreach (var (_, at) in longs) _lookup.Add(_keys[at], at);
            _longs = null;
        }
        return _lookup!.TryAdd(key, entry);
    }

    private static bool Immutable(object v, int depth) => v switch
    {
        string or long or double or bool or System.Numerics.BigInteger or PyNone or PyBytes or NpScalar or Arrays.DType => true,
        PyTuple t => depth < 32 && t.All(x => Immutable(x, depth + 1)),
        PySet { IsFrozen: true } s => depth < 32 && s.All(x => Immutable(x, depth + 1)),
        PickleTemp temp => temp is GlobalRef or DTypeProxy,
        _ => false,
    };

    /// <summary>
    /// The argument length of an opcode that pushes one new item and touches nothing else (constants, strings,
    /// bytes, GLOBAL), or -1 for any other opcode; -2 when the argument runs past the input.
    /// </summary>
    private static long PushArgLength(ReadOnlySpan<byte> span, int pos, byte op)
    {
        long len;
        switch (op)
        {
            case Op.None or Op.NewTrue or Op.NewFalse or Op.EmptyTuple or Op.EmptyList or Op.EmptyDict or Op.EmptySet:
                len = 0;
                break;
            case Op.BinInt1: len = 1; break;
            case Op.BinInt2: len = 2; break;
            case Op.BinInt: len = 4; break;
            case Op.BinFloat: len = 8; break;
            case Op.Long1 or Op.ShortBinUnicode or Op.ShortBinString or Op.ShortBinBytes:
                len = 1 + (long)span[pos];
                break;
            case Op.Long4 or Op.BinString:
                len = 4 + (long)BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
                if (len < 4) return -2;
                break;
            case Op.BinUnicode or Op.BinBytes:
                len = 4 + (long)BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                break;
            case Op.BinUnicode8 or Op.BinBytes8 or Op.ByteArray8:
            {
                ulong n = BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]);
                if (n > (ulong)span.Length) return -2;
                len = 8 + (long)n;
                break;
            }
            case Op.Int or Op.Long or Op.Float or Op.String or Op.Unicode:
            {
                int nl = span[pos..].IndexOf((byte)'\n');
                if (nl < 0) return -2;
                len = nl + 1;
                break;
            }
            case Op.Global:
            {
                int nl1 = span[pos..].IndexOf((byte)'\n');
                if (nl1 < 0) return -2;
                int nl2 = span[(pos + nl1 + 1)..].IndexOf((byte)'\n');
                if (nl2 < 0) return -2;
                len = nl1 + 1 + nl2 + 1;
                break;
            }
            default:
                return -1;
        }
        return len > span.Length - pos ? -2 : len;
    }

    /// <summary>A key that is one BININT1/BININT2/BININT opcode (the common case) is read without a reader.</summary>
    private static bool TryPlainInt(ReadOnlySpan<byte> span, int start, int end, out object value)
    {
        value = null!;
        int len = end - start;
        switch (span[start])
        {
            case Op.BinInt1 when len == 2:
                value = (long)span[start + 1];
                return true;
            case Op.BinInt2 when len == 3:
                value = (long)BinaryPrimitives.ReadUInt16LittleEndian(span[(start + 1)..]);
                return true;
            case Op.BinInt when len == 5:
                value = (long)BinaryPrimitives.ReadInt32LittleEndian(span[(start + 1)..]);
                return true;
            default:
                return false;
        }
    }

    /// <summary>The opcode pass: where every top-level key and value lies, and which memo entries cross values.</summary>
    private sealed class Scan
    {
        public int Entries;
        public int[] KeyStart = new int[64], ValueStart = new int[64], ValueEnd = new int[64];
        public int[] KeyMemo = new int[64], ValueMemo = new int[64], ValueMemoEnd = new int[64];
        public ulong[] Refetched = new ulong[64];
        public ulong[] CrossFetched = new ulong[64];
        private bool[] _definer = new bool[64];
        // Memo fetches not yet assigned to a range: those since the last batch of entries was closed.
        private int[] _getPos = new int[256], _getIdx = new int[256];
        private int _gets;
        private int _resolvedEntries;

        public bool IsDefiner(int entry) => _definer[entry];

        private void AddEntry(int ks, int km, int vs, int vm, int ve, int vme)
        {
            if (Entries == KeyStart.Length)
            {
                int m = Entries * 2;
                Array.Resize(ref KeyStart, m); Array.Resize(ref ValueStart, m); Array.Resize(ref ValueEnd, m);
                Array.Resize(ref KeyMemo, m); Array.Resize(ref ValueMemo, m); Array.Resize(ref ValueMemoEnd, m);
                Array.Resize(ref _definer, m);
            }
            KeyStart[Entries] = ks; KeyMemo[Entries] = km;
            ValueStart[Entries] = vs; ValueMemo[Entries] = vm;
            ValueEnd[Entries] = ve; ValueMemoEnd[Entries] = vme;
            Entries++;
        }

        public static Scan? Run(ReadOnlySpan<byte> span, PickleReadOptions options)
        {
            try
            {
                var s = new Scan();
                return s.Walk(span, options) ? s : null;
            }
            catch (Exception e) when (e is IndexOutOfRangeException or ArgumentOutOfRangeException or OverflowException)
            {
                return null; // damaged lengths: the whole-pickle reader reports them
            }
        }

        private bool Walk(ReadOnlySpan<byte> span, PickleReadOptions options)
        {
            int pos = 0;
            if (span.Length < 3 || span[0] != Op.Proto || span[1] < 2 || span[1] > Pickle.HighestProtocol) return false;
            pos = 2;
            int depthLimit = Math.Max(16, options.MaxDepth);
            var start = new int[64];
            var memoAt = new int[64];
            int sp = 0;
            var markSp = new int[16];
            var markPos = new int[16];
            var markMemo = new int[16];
            int mp = 0;
            int memo = 0;
            bool root = false;

            // The stack and mark arrays are locals the loop keeps in registers: they grow by assignment, never
            // through a ref or a captured variable (which would keep them in memory for the whole loop).

            while (true)
            {
                if (pos >= span.Length) return false;
                int p = pos;
                byte op = span[pos++];
                long len;
                switch (op)
                {
                    case Op.EmptyDict when !root:
                        if (sp != 0) return false;
                        root = true;
                        if (sp == start.Length) (start, memoAt) = (Grown(start), Grown(memoAt));
                        start[sp] = p;
                        memoAt[sp] = memo;
                        sp++;
                        continue;
                    case Op.BinGet or Op.LongBinGet:
                    {
                        long idx = op == Op.BinGet ? span[pos] : BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                        if (idx >= memo) return false;
                        if (_gets == _getPos.Length) (_getPos, _getIdx) = (Grown(_getPos), Grown(_getIdx));
                        _getPos[_gets] = p;
                        _getIdx[_gets] = (int)idx;
                        _gets++;
                        len = op == Op.BinGet ? 1 : 4;
                        break;
                    }
                    case Op.Memoize or Op.BinPut or Op.LongBinPut:
                    {
                        if (sp == 0 || (mp > 0 && markSp[mp - 1] == sp)) return false;
                        int skip = op == Op.Memoize ? 0 : op == Op.BinPut ? 1 : 4;
                        if (skip > 0)
                        {
                            long idx = skip == 1 ? span[pos] : BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                            if (idx != memo) return false; // only indices put in order, as CPython writes them
                        }
                        if (memo >= options.MaxMemoEntries) return false;
                        memo++;
                        pos += skip;
                        if (pos > span.Length) return false;
                        continue;
                    }
                    case Op.Frame:
                    {
                        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]);
                        pos += 8;
                        if (n > (ulong)(span.Length - pos)) return false;
                        continue;
                    }
                    case Op.Mark:
                        if (mp == markSp.Length) (markSp, markPos, markMemo) = (Grown(markSp), Grown(markPos), Grown(markMemo));
                        if (mp >= depthLimit) return false;
                        markSp[mp] = sp;
                        markPos[mp] = p;
                        markMemo[mp] = memo;
                        mp++;
                        continue;
                    // Below, an opcode that would consume or change the dict itself (stack index 0) other than by
                    // SETITEM(S) of its entries makes the top level something else: such a pickle is read whole.
                    case Op.Tuple or Op.List or Op.Dict or Op.FrozenSet:
                    {
                        if (mp == 0 || markSp[mp - 1] < 1) return false;
                        mp--;
                        sp = markSp[mp];
                        if (sp == start.Length) (start, memoAt) = (Grown(start), Grown(memoAt));
                        start[sp] = markPos[mp];
                        memoAt[sp] = markMemo[mp];
                        sp++;
                        continue;
                    }
                    case Op.Tuple1:
                        if (sp < 2 || (mp > 0 && markSp[mp - 1] > sp - 1)) return false;
                        continue;
                    case Op.Tuple2 or Op.Reduce or Op.Build or Op.NewObj or Op.StackGlobal:
                        if (sp < 3 || (mp > 0 && markSp[mp - 1] > sp - 2)) return false;
                        sp--;
                        continue;
                    case Op.Tuple3:
                        if (sp < 4 || (mp > 0 && markSp[mp - 1] > sp - 3)) return false;
                        sp -= 2;
                        continue;
                    case Op.Append:
                        if (sp < 3 || (mp > 0 && markSp[mp - 1] > sp - 2)) return false;
                        sp--;
                        continue;
                    case Op.SetItem:
                        if (sp < 3 || (mp > 0 && markSp[mp - 1] > sp - 3)) return false;
                        if (sp == 3 && mp == 0)
                        {
                            AddEntry(start[1], memoAt[1], start[2], memoAt[2], p, memo);
                            if (!Resolve(memo)) return false;
                        }
                        sp -= 2;
                        continue;
                    case Op.Appends or Op.SetItems or Op.AddItems:
                    {
                        if (mp == 0) return false;
                        int m = markSp[--mp];
                        if (m < 1 || (m == 1 && (op != Op.SetItems || mp != 0))) return false;
                        if (m == 1)
                        {
                            if (((sp - m) & 1) != 0) return false;
                            for (int i = m; i < sp; i += 2)
                            {
                                bool last = i + 2 >= sp;
                                AddEntry(start[i], memoAt[i], start[i + 1], memoAt[i + 1],
                                    last ? p : start[i + 2], last ? memo : memoAt[i + 2]);
                            }
                            if (!Resolve(memo)) return false;
                        }
                        sp = m;
                        continue;
                    }
                    case Op.Pop:
                        if (mp > 0 && markSp[mp - 1] == sp) mp--;
                        else if (sp > 1) sp--;
                        else return false;
                        continue;
                    case Op.Stop:
                        if (sp != 1 || mp != 0 || !root || Entries == 0) return false; // no entries: nothing to gain
                        return _gets == 0; // a fetch after the last entry fetches from the dict itself
                    default:
                        // Pushing one new item, or: PROTO again, DUP, POP_MARK, text memo opcodes, persistent ids,
                        // extensions, buffers, unknown.
                        len = PushArgLength(span, pos, op);
                        if (len < 0) return false;
                        break;
                }
                pos += (int)len;
                if (sp >= depthLimit * 4) return false;
                if (sp == start.Length) (start, memoAt) = (Grown(start), Grown(memoAt));
                start[sp] = p;
                memoAt[sp] = memo;
                sp++;
            }
        }

        private static int[] Grown(int[] a)
        {
            var b = new int[a.Length * 2];
            a.CopyTo(b, 0);
            return b;
        }

        // Assigns the memo fetches since the last batch to the ranges of the entries just closed (key i is range 2i,
        // value i is range 2i+1, in file order) and notes those that fetch from another range. memoCount: the
        // number of memo entries put so far. False if a fetch lies outside every range or fetches the dict itself.
        private bool Resolve(int memoCount)
        {
            int words = (memoCount + 63) >> 6;
            if (words > Refetched.Length)
            {
                int n = Math.Max(words, Refetched.Length * 2);
                Array.Resize(ref Refetched, n);
                Array.Resize(ref CrossFetched, n);
            }
            int r = _resolvedEntries * 2, ranges = Entries * 2;
            for (int g = 0; g < _gets; g++)
            {
                int p = _getPos[g], m = _getIdx[g];
                while (r < ranges && RangeEnd(r) <= p) r++;
                if (r == ranges || RangeStart(r) > p) return false; // between the entries
                Refetched[m >> 6] |= 1UL << (m & 63);
                if (m >= MemoStart(r))
                {
                    if (m >= MemoEnd(r)) return false; // cannot be: the fetch comes after the put
                    continue; // put and fetched by the same range
                }
                // Put by an earlier range: found once per memo index (a fetch of the same index from any other
                // range is a crossing fetch of the same definer).
                if ((CrossFetched[m >> 6] & (1UL << (m & 63))) != 0) continue;
                int from = DefiningRange(m, r);
                if (from < 0) return false; // the dict itself
                CrossFetched[m >> 6] |= 1UL << (m & 63);
                if ((from & 1) == 1) _definer[from >> 1] = true;
            }
            _gets = 0;
            _resolvedEntries = Entries;
            return true;
        }

        private int RangeStart(int r) => (r & 1) == 0 ? KeyStart[r >> 1] : ValueStart[r >> 1];
        private int RangeEnd(int r) => (r & 1) == 0 ? ValueStart[r >> 1] : ValueEnd[r >> 1];
        private int MemoStart(int r) => (r & 1) == 0 ? KeyMemo[r >> 1] : ValueMemo[r >> 1];
        private int MemoEnd(int r) => (r & 1) == 0 ? ValueMemo[r >> 1] : ValueMemoEnd[r >> 1];

        // The range before `before` that put memo index m: memo indices are put in file order, so each range put
        // the indices from the count at its start to the count at its end. -1: put outside every range.
        private int DefiningRange(int m, int before)
        {
            int lo = 0, hi = before - 1; // the last range whose start count is <= m
            while (lo < hi)
            {
                int mid = (lo + hi + 1) >> 1;
                if (MemoStart(mid) <= m) lo = mid;
                else hi = mid - 1;
            }
            return hi >= 0 && MemoStart(lo) <= m && m < MemoEnd(lo) ? lo : -1;
        }
    }
}
