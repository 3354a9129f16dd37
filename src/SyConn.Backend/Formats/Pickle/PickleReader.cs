using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// The safe unpickler: an opcode interpreter that builds the Python value model and refuses every
/// global outside <see cref="PickleGlobals"/>. One instance reads one pickle; not thread-safe.
/// </summary>
internal sealed partial class PickleReader
{
    private static readonly object True = true;
    private static readonly object False = false;
    private static readonly object[] SmallInts = MakeSmallInts();

    private readonly ReadOnlyMemory<byte> _data;
    private readonly PickleReadOptions _opt;
    private readonly string? _source;

    // Small to start with: a BT pull reads one small pickle per row, whose stack stays within a dozen items.
    private object[] _stack = new object[16];
    private int[] _heights = new int[16];
    private int _sp;
    private int[] _marks = new int[16];
    private int _mp;
    private int _fence;

    private object?[] _memo = new object?[32];
    private int[] _memoHeights = new int[32];
    private int _memoLen;
    private Dictionary<long, (object Value, int Height)>? _sparseMemo;
    // When set, only the memo indices that are read back are kept, in dense slots (see PickleMemoScan).
    private PickleMemoScan? _memoFilter;
    // Range mode (RunRange): one item of a larger pickle is read; memo indices below _memoBase, and those the
    // range refers to but did not put, come from _shared; only the indices in _refetched are kept locally.
    private bool _rangeMode;
    private long _memoBase;
    private SharedMemo? _shared;
    private ulong[]? _refetched;

    // The items array of the last tuple built, so that REDUCE of a fresh argument tuple needs no copy.
    private object? _lastTuple;
    private object[]? _lastTupleItems;

    private byte _op;
    private int _opPos;
    private long _elements;
    private bool _aliased;
    private bool _sharesValues;
    // An array from _reconstruct was used before its BUILD (it holds itself): its proxy stands in the containers
    // that hold it until Finish puts the built array in its place.
    private bool _placeholders;
    private long _materialized;

    public PickleReader(ReadOnlyMemory<byte> data, PickleReadOptions options, string? source)
    {
        _data = data;
        _opt = options;
        _source = source;
    }

    /// <summary>
    /// The most payload bytes (str, bytes and bytearray contents, and the bytes of arrays the reader copies) one
    /// <see cref="Run"/> may produce; a store file's load sets it to <see cref="ReadLimits.MaxStoreBytes"/>. Each
    /// payload is counted before it is allocated; data that an array merely references is counted once, as the
    /// bytes it came in.
    /// </summary>
    internal long MaxMaterializedBytes { get; set; } = long.MaxValue;

    /// <summary>The payload bytes counted against <see cref="MaxMaterializedBytes"/> so far (since the last <see cref="RunRange"/>).</summary>
    internal long MaterializedBytes => _materialized;

    /// <summary>The name of the limit in <see cref="MaxMaterializedBytes"/>'s error message.</summary>
    internal string MaterializedLimitName { get; init; } = "ReadLimits." + nameof(ReadLimits.MaxStoreBytes);

    private static object[] MakeSmallInts()
    {
        var a = new object[256];
        for (int i = 0; i < a.Length; i++) a[i] = (long)i;
        return a;
    }

    /// <summary>
    /// Reads a pickle that is exactly one int (an optional PROTO and FRAME, then BININT1, BININT2, BININT or a LONG1 of
    /// at most 8 bytes, then STOP) without a reader, giving the object a full run gives. Anything else: false, and the
    /// caller runs the reader. Stores keyed by ints (most of SyConn's) pickle every key this way.
    /// </summary>
    internal static bool TryReadPlainInt(ReadOnlySpan<byte> data, [NotNullWhen(true)] out object? value)
    {
        value = null;
        int pos = 0;
        if (data.Length >= 2 && data[0] == Op.Proto)
        {
            if (data[1] > 5) return false; // the reader refuses it
            pos = 2;
        }
        if (data.Length - pos >= 9 && data[pos] == Op.Frame)
        {
            if (BinaryPrimitives.ReadUInt64LittleEndian(data[(pos + 1)..]) > (ulong)(data.Length - pos - 9)) return false;
            pos += 9;
        }
        if (data.Length - pos < 2 || data[^1] != Op.Stop) return false;
        var arg = data[(pos + 1)..^1];
        switch (data[pos])
        {
            case Op.BinInt1 when arg.Length == 1:
                value = SmallInts[arg[0]];
                return true;
            case Op.BinInt2 when arg.Length == 2:
                value = (long)BinaryPrimitives.ReadUInt16LittleEndian(arg);
                return true;
            case Op.BinInt when arg.Length == 4:
                value = (long)BinaryPrimitives.ReadInt32LittleEndian(arg);
                return true;
            case Op.Long1 when arg.Length >= 1 && arg[0] <= 8 && arg.Length == 1 + arg[0]:
                value = DecodeLong(arg[1..]);
                return true;
            default:
                return false;
        }
    }

    // ---------------------------------------------------------------- errors
    // ---------------------------------------------------------------- errors

    private string Where => _source is null ? "pickle" : $"pickle '{_source}'";

    private InvalidDataException Error(string what) =>
        new($"{Where}: {what} at byte offset {_opPos} (opcode {Op.Name(_op)})");

    private InvalidDataException Truncated(int pos, long needed, int available) =>
        new($"{Where}: truncated at offset {pos + available}: opcode {Op.Name(_op)} at byte offset {_opPos} needs {needed} bytes from offset {pos}, only {available} remain");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Need(ReadOnlySpan<byte> span, int pos, int n)
    {
        if ((uint)n > (uint)(span.Length - pos)) throw Truncated(pos, n, span.Length - pos);
    }

    private int CheckLength(ReadOnlySpan<byte> span, int pos, ulong declared)
    {
        if (declared > (ulong)(span.Length - pos)) throw Truncated(pos, (long)Math.Min(declared, long.MaxValue), span.Length - pos);
        return (int)declared;
    }

    // ---------------------------------------------------------------- stack

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Push(object value, int height)
    {
        int sp = _sp;
        if (sp == _stack.Length) GrowStack();
        // A ref write skips the array covariance check of _stack[sp] = value (_stack is always an object[]).
        Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_stack), sp) = value;
        _heights[sp] = height;
        _sp = sp + 1;
    }

    private void GrowStack()
    {
        Array.Resize(ref _stack, _stack.Length * 2);
        Array.Resize(ref _heights, _heights.Length * 2);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private object Pop(out int height)
    {
        if (_sp <= _fence) throw Underflow();
        _sp--;
        height = _heights[_sp];
        var v = _stack[_sp];
        _stack[_sp] = null!;
        return v;
    }

    private object Pop() => Pop(out _);

    private InvalidDataException Underflow() => Error(_sp == 0 ? "stack underflow (the stack is empty)" : "stack underflow (nothing above the last MARK)");

    private int PopMark()
    {
        if (_mp == 0) throw Error("no MARK on the stack");
        int m = _marks[--_mp];
        _fence = _mp > 0 ? _marks[_mp - 1] : 0;
        return m;
    }

    private void ClearTo(int sp)
    {
        Array.Clear(_stack, sp, _sp - sp);
        _sp = sp;
    }

    private int MaxHeight(int from, int to)
    {
        int h = 0;
        for (int i = from; i < to; i++) if (_heights[i] > h) h = _heights[i];
        return h;
    }

    /// <summary>Counts <paramref name="n"/> payload bytes about to be produced against <see cref="MaxMaterializedBytes"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Materialize(long n)
    {
        _materialized += n;
        if (_materialized > MaxMaterializedBytes) throw TooMuchMaterialized(n);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private InvalidDataException TooMuchMaterialized(long n)
    {
        string entry = CurrentStoreKey() is { } key ? $" in the entry of key {PyRepr.Repr(key)}" : "";
        return Error($"a payload of {n} bytes{entry} brings the bytes read to {_materialized}, more than the limit of {MaxMaterializedBytes} bytes ({MaterializedLimitName})");
    }

    /// <summary>
    /// The key of the top-level dict entry being read, when the stack shows it plainly: the outermost object is a dict
    /// whose SETITEMS batch is open (the first MARK, right above it), holding complete key/value pairs, then the key
    /// (a str or an int, as store keys are), then either nothing more or the container of the value with its own MARK
    /// open. Every key so far must be of one type (store keys are all ints or all strs), which tells a field name of a
    /// value still being built (a one-item dict is written without a MARK) from a key. Null otherwise (the message then
    /// names only the offset).
    /// </summary>
    private object? CurrentStoreKey()
    {
        if (_mp == 0 || _marks[0] != 1 || _sp < 2 || _stack[0] is not PyDict) return null;
        int end = _mp > 1 ? _marks[1] : _sp;
        int above = end - 1; // slots above the mark, below the value's own MARK (or the stack top)
        int keyAt;
        if (_mp > 1 && above >= 2 && above % 2 == 0 && _stack[end - 1] is PyDict or PyList or PySet) keyAt = end - 2;
        else if (_mp == 1 && above % 2 == 1) keyAt = end - 1;
        else return null;
        if (_stack[1] is not (string or long)) return null;
        var keyType = _stack[1].GetType();
        for (int i = 3; i <= keyAt; i += 2)
            if (_stack[i].GetType() != keyType) return null;
        return _stack[keyAt];
    }

    private int CheckHeight(int h)
    {
        if (h > _opt.MaxDepth) throw Error($"structure nests deeper than {_opt.MaxDepth} levels (PickleReadOptions.MaxDepth)");
        return h;
    }

    private void CountElements(long n)
    {
        _elements += n;
        if (_elements > _opt.MaxTotalElements)
            throw Error($"more than {_opt.MaxTotalElements} elements (PickleReadOptions.MaxTotalElements)");
    }

    // ---------------------------------------------------------------- values

    /// <summary>The value to store in a container: proxies are resolved, globals refused.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private object Val(object o) => IsTemp(o) ? Resolve((PickleTemp)o) : o;

    /// <summary><c>o is PickleTemp</c> as four exact type compares (the subclasses are sealed) instead of a cast helper call.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsTemp(object o)
    {
        var t = o.GetType();
        return t == typeof(GlobalRef) || t == typeof(DTypeProxy) || t == typeof(ArgTuple) || t == typeof(ArrayProxy);
    }

    private object Resolve(PickleTemp t) => t switch
    {
        DTypeProxy d => d.Current,
        ArrayProxy { Result: { } a } => a,
        ArrayProxy p => Placeholder(p),
        GlobalRef g => throw Error($"global '{g.FullName}' cannot be used as a value"),
        _ => throw Error("a tuple holding a global cannot be used as a value"),
    };

    /// <summary>
    /// An array whose BUILD state is still being read is put into a container (an object array that holds itself,
    /// <c>a[0] = a</c>, or <c>a[1] = [a]</c>): Python's array exists before its state is set, so the container holds
    /// the array itself. Here the proxy stands in its place until <see cref="ReplacePlaceholders"/>.
    /// </summary>
    private ArrayProxy Placeholder(ArrayProxy p)
    {
        _placeholders = true;
        // A cycle: the nesting depth is checked on the finished value.
        _aliased = true;
        return p;
    }

    /// <summary>
    /// True once the memo (or DUP) handed out an object that is, or may hold, something mutable a second time:
    /// the result then shares such objects between places (a list, dict, set, bytearray, array or tuple).
    /// Strings, bytes, numbers, dtypes and numpy scalars are immutable and do not count.
    /// </summary>
    public bool SharesValues => _sharesValues;

    private static bool MayShareMutable(object o) =>
        o is PyList or PyDict or PySet { IsFrozen: false } or PyByteArray or NdArray or ArrayProxy or PyTuple;

    /// <summary>An object is used a second time (memo GET or DUP): note what that means for cycles and sharing.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void NoteRefetched(object v)
    {
        if (IsMutableContainer(v)) _aliased = true;
        if (MayShareMutable(v)) _sharesValues = true;
    }

    private static bool IsMutableContainer(object o) =>
        o.GetType() != typeof(string) && o is PyList or PyDict or PySet { IsFrozen: false } or PyByteArray;

    private void CheckHashable(object key)
    {
        if (UnhashableMember(key) is { } bad) throw Error($"unhashable dict key or set member of type {TypeName(bad)}");
    }

    /// <summary>
    /// The first part of <paramref name="key"/> that Python cannot hash (the key itself, or a member of its tuples),
    /// or null. Tuples are walked without recursion and each once: a tuple key may be a few bytes of memo references
    /// that stand for 2^n nested tuples.
    /// </summary>
    internal static object? UnhashableMember(object key)
    {
        switch (key)
        {
            case PyList or PyDict or PyByteArray or NdArray or ArrayProxy:
            case PySet { IsFrozen: false }:
                return key;
            case not PyTuple { Count: > 0 }:
                return null;
        }
        HashSet<object>? seen = null;
        var pending = new Stack<PyTuple>();
        pending.Push((PyTuple)key);
        while (pending.Count > 0)
        {
            foreach (var item in pending.Pop())
            {
                switch (item)
                {
                    case PyList or PyDict or PyByteArray or NdArray or ArrayProxy:
                    case PySet { IsFrozen: false }:
                        return item;
                    case PyTuple { Count: > 0 } inner:
                        seen ??= new HashSet<object>(ReferenceEqualityComparer.Instance);
                        if (seen.Add(inner)) pending.Push(inner);
                        break;
                }
            }
        }
        return null;
    }

    internal static string TypeName(object? o) => o switch
    {
        null or PyNone => "None",
        bool => "bool",
        long or BigInteger => "int",
        double => "float",
        Complex => "complex",
        string => "str",
        PyBytes => "bytes",
        PyByteArray => "bytearray",
        PyTuple => "tuple",
        PyList => "list",
        PyDefaultDict => "defaultdict",
        PyOrderedDict => "OrderedDict",
        PyDict => "dict",
        PySet s => s.IsFrozen ? "frozenset" : "set",
        NdArray => "numpy.ndarray",
        NpScalar => "numpy scalar",
        DType => "numpy.dtype",
        DTypeProxy => "numpy.dtype",
        ArrayProxy => "numpy.ndarray",
        GlobalRef g => "global " + g.FullName,
        ArgTuple => "tuple",
        _ => o.GetType().Name,
    };

    // ---------------------------------------------------------------- memo

    private void MemoPut(long index, object value, int height)
    {
        if (index < 0 || index >= _opt.MaxMemoEntries)
            throw Error($"memo index {index} exceeds the limit of {_opt.MaxMemoEntries} entries (PickleReadOptions.MaxMemoEntries)");
        if (_rangeMode)
        {
            RangeMemoPut(index, value, height);
            return;
        }
        if (_memoFilter is not null)
        {
            // The scan made sure that indices are put in order 0, 1, 2, ...: index == _memoLen.
            int slot = _memoFilter.Slot(index);
            if (slot >= 0)
            {
                _memo[slot] = value;
                _memoHeights[slot] = height;
            }
            _memoLen++;
        }
        else if (index < _memo.Length)
        {
            if (_memo[index] is null) _memoLen++;
            _memo[index] = value;
            _memoHeights[index] = height;
        }
        else if (index <= (long)_memo.Length * 2 + 1024)
        {
            int n = (int)Math.Min(Math.Max(index + 1, (long)_memo.Length * 2), _opt.MaxMemoEntries);
            Array.Resize(ref _memo, n);
            Array.Resize(ref _memoHeights, n);
            _memoLen++;
            _memo[index] = value;
            _memoHeights[index] = height;
        }
        else
        {
            _sparseMemo ??= new Dictionary<long, (object, int)>();
            if (!_sparseMemo.ContainsKey(index)) _memoLen++;
            _sparseMemo[index] = (value, height);
        }
        if (_memoLen > _opt.MaxMemoEntries)
            throw Error($"more than {_opt.MaxMemoEntries} memo entries (PickleReadOptions.MaxMemoEntries)");
    }

    private void RangeMemoPut(long index, object value, int height)
    {
        // The index scan made sure that a range puts the indices _memoBase, _memoBase + 1, ... in order.
        long local = index - _memoBase;
        if (local != _memoLen - _memoBase) throw Error($"memo index {index} put out of order (expected {_memoLen})");
        _memoLen++;
        if (_refetched is not null && ((ulong)index >> 6 >= (ulong)_refetched.Length || (_refetched[index >> 6] & (1UL << (int)(index & 63))) == 0))
            return;
        if (local >= _memo.Length)
        {
            int n = (int)Math.Min(Math.Max(local + 1, (long)_memo.Length * 2), _opt.MaxMemoEntries);
            Array.Resize(ref _memo, n);
            Array.Resize(ref _memoHeights, n);
        }
        _memo[local] = value;
        _memoHeights[local] = height;
    }

    private void MemoGet(long index)
    {
        object? v = null;
        int h = 0;
        if (_rangeMode)
        {
            long local = index - _memoBase;
            if (local >= 0 && local < _memo.Length && _memo[local] is { } lv) { v = lv; h = _memoHeights[local]; }
            else if (_shared is not null && _shared.TryGetValue(index, out var se)) { v = se.Value; h = se.Height; }
        }
        else if (_memoFilter is not null)
        {
            int slot = index >= 0 && index < _memoLen ? _memoFilter.Slot(index) : -1;
            if (slot >= 0) { v = _memo[slot]; h = _memoHeights[slot]; }
        }
        else if (index >= 0 && index < _memo.Length) { v = _memo[index]; h = _memoHeights[index]; }
        else if (_sparseMemo is not null && _sparseMemo.TryGetValue(index, out var e)) { v = e.Value; h = e.Height; }
        if (v is null) throw Error($"memo index {index} is not defined");
        // Most memo fetches of a store file are dict-key strings: keep their path to one type test.
        if (v.GetType() != typeof(string)) NoteRefetched(v);
        Push(v, h);
    }

    private void MemoTop(long index)
    {
        if (_sp <= _fence) throw Underflow();
        MemoPut(index, _stack[_sp - 1], _heights[_sp - 1]);
    }

    // ---------------------------------------------------------------- main loop

    /// <summary>
    /// Reads the one item that the opcodes in [<paramref name="start"/>, <paramref name="end"/>) of the pickle leave
    /// on the stack (a value of a top-level dict, found by <see cref="PickleDictIndex"/>). Memo indices are numbered
    /// from <paramref name="memoBase"/> (the number of memo entries put before <paramref name="start"/>); a memo
    /// index the range fetches without putting it is looked up in <paramref name="shared"/>. Frames are not checked
    /// here (the index scan checked them against the whole input). Offsets in errors are offsets in the whole input.
    /// </summary>
    public object RunRange(int start, int end, long memoBase, SharedMemo? shared, ulong[]? refetched)
    {
        _rangeMode = true;
        _memoBase = memoBase;
        _memoLen = checked((int)memoBase);
        _shared = shared;
        _refetched = refetched;
        // A reader is reused for range after range: start from a clean state (a run that threw is not reused).
        if (_memo.Length > 64) { _memo = new object?[8]; _memoHeights = new int[8]; }
        else Array.Clear(_memo);
        _sp = 0;
        _mp = 0;
        _fence = 0;
        _elements = 0;
        _materialized = 0;
        _aliased = false;
        _sharesValues = false;
        _lastTuple = null;
        _lastTupleItems = null;
        return Loop(_data.Span[..end], start);
    }

    /// <summary>The memo entry <paramref name="index"/> this range put and kept (range mode), for the index's shared memo.</summary>
    public bool TryGetRangeMemo(long index, out (object Value, int Height) entry)
    {
        long local = index - _memoBase;
        if (_rangeMode && local >= 0 && local < _memo.Length && _memo[local] is { } v)
        {
            entry = (v, _memoHeights[local]);
            return true;
        }
        entry = default;
        return false;
    }

    public object Run()
    {
        var span = _data.Span;
        if (span.Length == 0)
            throw new InvalidDataException($"{Where}: empty input: truncated at offset 0 (a pickle needs at least a STOP opcode)");
        if (Op.Name(span[0]).StartsWith("0x", StringComparison.Ordinal))
            throw new InvalidDataException($"{Where}: not a pickle file: byte 0 is 0x{span[0]:x2}, no pickle opcode (it starts with {Convert.ToHexStringLower(span[..Math.Min(8, span.Length)])})");
        _memoFilter = PickleMemoScan.Scan(span, _opt.MaxMemoEntries);
        if (_memoFilter is not null)
        {
            _memo = new object?[_memoFilter.Count];
            _memoHeights = new int[_memoFilter.Count];
        }
        return Loop(span, 0);
    }

    private object Loop(ReadOnlySpan<byte> span, int pos)
    {
        while (true)
        {
            if (pos >= span.Length)
            {
                _opPos = pos;
                if (_rangeMode) return FinishRange();
                throw new InvalidDataException($"{Where}: truncated at offset {pos}: input ended before the STOP opcode");
            }
            _opPos = pos;
            byte op = span[pos++];
            _op = op;
            switch (op)
            {
                case Op.Proto:
                    Need(span, pos, 1);
                    if (span[pos] > 5) throw Error($"unsupported pickle protocol {span[pos]}");
                    pos++;
                    break;
                case Op.Frame:
                {
                    Need(span, pos, 8);
                    ulong n = BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]);
                    pos += 8;
                    if (!_rangeMode) CheckLength(span, pos, n);
                    break;
                }
                case Op.Stop:
                    if (_rangeMode) throw Error("STOP inside a dict value");
                    return Finish();
                case Op.Mark:
                    if (_mp == _marks.Length) Array.Resize(ref _marks, _mp * 2);
                    if (_mp >= _opt.MaxDepth) throw Error($"more than {_opt.MaxDepth} nested MARKs (PickleReadOptions.MaxDepth)");
                    _marks[_mp++] = _sp;
                    _fence = _sp;
                    break;
                case Op.Pop:
                    if (_mp > 0 && _marks[_mp - 1] == _sp) PopMark();
                    else Pop();
                    break;
                case Op.PopMark:
                    ClearTo(PopMark());
                    break;
                case Op.Dup:
                {
                    if (_sp <= _fence) throw Underflow();
                    var top = _stack[_sp - 1];
                    if (top.GetType() != typeof(string)) NoteRefetched(top);
                    Push(top, _heights[_sp - 1]);
                    break;
                }
                case Op.None:
                    Push(PyNone.Value, 0);
                    break;
                case Op.NewTrue:
                    Push(True, 0);
                    break;
                case Op.NewFalse:
                    Push(False, 0);
                    break;
                case Op.BinInt1:
                    Need(span, pos, 1);
                    Push(SmallInts[span[pos]], 0);
                    pos++;
                    break;
                case Op.BinInt2:
                    Need(span, pos, 2);
                    Push((long)BinaryPrimitives.ReadUInt16LittleEndian(span[pos..]), 0);
                    pos += 2;
                    break;
                case Op.BinInt:
                    Need(span, pos, 4);
                    Push((long)BinaryPrimitives.ReadInt32LittleEndian(span[pos..]), 0);
                    pos += 4;
                    break;
                case Op.Long1:
                {
                    Need(span, pos, 1);
                    int n = span[pos++];
                    Need(span, pos, n);
                    Push(DecodeLong(span.Slice(pos, n)), 0);
                    pos += n;
                    break;
                }
                case Op.Long4:
                {
                    Need(span, pos, 4);
                    int n = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
                    pos += 4;
                    if (n < 0) throw Error($"negative LONG4 length {n}");
                    if (n > _opt.MaxIntBytes) throw Error($"integer of {n} bytes exceeds PickleReadOptions.MaxIntBytes ({_opt.MaxIntBytes})");
                    Need(span, pos, n);
                    Push(DecodeLong(span.Slice(pos, n)), 0);
                    pos += n;
                    break;
                }
                case Op.BinFloat:
                    Need(span, pos, 8);
                    Push(BinaryPrimitives.ReadDoubleBigEndian(span[pos..]), 0);
                    pos += 8;
                    break;
                case Op.ShortBinUnicode:
                {
                    Need(span, pos, 1);
                    int n = span[pos++];
                    Need(span, pos, n);
                    Materialize(n);
                    Push(_opt.ShareShortStrings && n <= SharedStrings.MaxBytes && SharedStrings.Get(span.Slice(pos, n)) is { } shared
                        ? shared : DecodeUtf8(span.Slice(pos, n)), 0);
                    pos += n;
                    break;
                }
                case Op.BinUnicode:
                {
                    Need(span, pos, 4);
                    int n = CheckLength(span, pos + 4, BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]));
                    pos += 4;
                    Materialize(n);
                    Push(DecodeUtf8(span.Slice(pos, n)), 0);
                    pos += n;
                    break;
                }
                case Op.BinUnicode8:
                {
                    Need(span, pos, 8);
                    int n = CheckLength(span, pos + 8, BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]));
                    pos += 8;
                    Materialize(n);
                    Push(DecodeUtf8(span.Slice(pos, n)), 0);
                    pos += n;
                    break;
                }
                case Op.ShortBinBytes:
                case Op.ShortBinString:
                {
                    Need(span, pos, 1);
                    int n = span[pos++];
                    Need(span, pos, n);
                    Materialize(n);
                    Push(Bytes(pos, n), 0);
                    pos += n;
                    break;
                }
                case Op.BinBytes:
                {
                    Need(span, pos, 4);
                    int n = CheckLength(span, pos + 4, BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]));
                    pos += 4;
                    Materialize(n);
                    Push(Bytes(pos, n), 0);
                    pos += n;
                    break;
                }
                case Op.BinString:
                {
                    Need(span, pos, 4);
                    int declared = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
                    if (declared < 0) throw Error($"negative BINSTRING length {declared}");
                    int n = CheckLength(span, pos + 4, (ulong)declared);
                    pos += 4;
                    Materialize(n);
                    Push(Bytes(pos, n), 0);
                    pos += n;
                    break;
                }
                case Op.BinBytes8:
                {
                    Need(span, pos, 8);
                    int n = CheckLength(span, pos + 8, BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]));
                    pos += 8;
                    Materialize(n);
                    Push(Bytes(pos, n), 0);
                    pos += n;
                    break;
                }
                case Op.ByteArray8:
                {
                    Need(span, pos, 8);
                    int n = CheckLength(span, pos + 8, BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]));
                    pos += 8;
                    Materialize(n);
                    Push(new PyByteArray(MemoryMarshal.AsMemory(_data.Slice(pos, n))), 0);
                    pos += n;
                    break;
                }
                case Op.EmptyTuple:
                    Push(PyTuple.Empty, 0);
                    break;
                case Op.Tuple1:
                    if (!CallDirect(span, ref pos, _sp - 1)) MakeTuple(_sp - 1);
                    break;
                case Op.Tuple2:
                    if (!CallDirect(span, ref pos, _sp - 2)) MakeTuple(_sp - 2);
                    break;
                case Op.Tuple3:
                    if (!CallDirect(span, ref pos, _sp - 3)) MakeTuple(_sp - 3);
                    break;
                case Op.Tuple:
                {
                    int m = PopMark();
                    if (!CallDirect(span, ref pos, m)) MakeTuple(m);
                    break;
                }
                case Op.EmptyList:
                    Push(new PyList(), 1);
                    break;
                case Op.EmptyDict:
                    Push(new PyDict(), 1);
                    break;
                case Op.EmptySet:
                    Push(new PySet(), 1);
                    break;
                case Op.List:
                {
                    int m = PopMark();
                    var list = new PyList(_sp - m);
                    for (int i = m; i < _sp; i++) list.Add(Val(_stack[i]));
                    CountElements(_sp - m);
                    int h = CheckHeight(MaxHeight(m, _sp) + 1);
                    ClearTo(m);
                    Push(list, h);
                    break;
                }
                case Op.Dict:
                {
                    int m = PopMark();
                    if (((_sp - m) & 1) != 0) throw Error("odd number of items for DICT");
                    var dict = new PyDict((_sp - m) / 2);
                    FillDict(dict, m);
                    int h = CheckHeight(MaxHeight(m, _sp) + 1);
                    ClearTo(m);
                    Push(dict, h);
                    break;
                }
                case Op.FrozenSet:
                {
                    int m = PopMark();
                    var set = new PySet(frozen: true);
                    for (int i = m; i < _sp; i++)
                    {
                        var v = Val(_stack[i]);
                        CheckHashable(v);
                        set.Add(v);
                    }
                    CountElements(_sp - m);
                    int h = CheckHeight(MaxHeight(m, _sp) + 1);
                    ClearTo(m);
                    Push(set, h);
                    break;
                }
                case Op.Append:
                {
                    if (_sp - 2 < _fence) throw Underflow();
                    AppendItems(_sp - 1);
                    break;
                }
                case Op.Appends:
                    AppendItems(PopMark());
                    break;
                case Op.SetItem:
                {
                    if (_sp - 3 < _fence) throw Underflow();
                    SetItems(_sp - 2);
                    break;
                }
                case Op.SetItems:
                    SetItems(PopMark());
                    break;
                case Op.AddItems:
                {
                    int m = PopMark();
                    if (m == 0) throw Underflow();
                    if (_stack[m - 1] is not PySet { IsFrozen: false } set)
                        throw Error($"ADDITEMS onto a {TypeName(_stack[m - 1])}, expected a set");
                    for (int i = m; i < _sp; i++)
                    {
                        var v = Val(_stack[i]);
                        CheckHashable(v);
                        set.Add(v);
                    }
                    CountElements(_sp - m);
                    _heights[m - 1] = CheckHeight(Math.Max(_heights[m - 1], MaxHeight(m, _sp) + 1));
                    ClearTo(m);
                    break;
                }
                case Op.Memoize:
                    MemoTop(_memoLen);
                    break;
                case Op.BinPut:
                    Need(span, pos, 1);
                    MemoTop(span[pos++]);
                    break;
                case Op.LongBinPut:
                    Need(span, pos, 4);
                    MemoTop(BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]));
                    pos += 4;
                    break;
                case Op.BinGet:
                    Need(span, pos, 1);
                    MemoGet(span[pos++]);
                    break;
                case Op.LongBinGet:
                    Need(span, pos, 4);
                    MemoGet(BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]));
                    pos += 4;
                    break;
                case Op.Global:
                {
                    string module = ReadLine(span, ref pos);
                    string name = ReadLine(span, ref pos);
                    Push(FindGlobal(module, name), 0);
                    break;
                }
                case Op.StackGlobal:
                {
                    var name = Pop();
                    var module = Pop();
                    if (module is not string ms || name is not string ns)
                        throw Error($"STACK_GLOBAL needs two str, got {TypeName(module)} and {TypeName(name)}");
                    Push(FindGlobal(ms, ns), 0);
                    break;
                }
                case Op.Reduce:
                case Op.NewObj:
                {
                    var args = Pop(out int ah);
                    var callable = Pop();
                    if (callable is not GlobalRef g)
                        throw Error($"{Op.Name(op)} needs a class or function, got {TypeName(callable)}");
                    object[] items = args switch
                    {
                        _ when ReferenceEquals(args, _lastTuple) => _lastTupleItems!,
                        PyTuple t => ToArray(t),
                        ArgTuple at => at.Items,
                        _ => throw Error($"{Op.Name(op)} arguments must be a tuple, got {TypeName(args)}"),
                    };
                    Push(Call(g, items), Math.Max(1, ah - 1));
                    break;
                }
                case Op.Build:
                {
                    var state = Pop();
                    if (_sp <= _fence) throw Underflow();
                    Build(_stack[_sp - 1], state);
                    break;
                }
                // Protocol 0/1 text opcodes.
                case Op.Int:
                {
                    var line = ReadLineBytes(span, ref pos);
                    if (line.SequenceEqual("00"u8)) Push(False, 0);
                    else if (line.SequenceEqual("01"u8)) Push(True, 0);
                    else Push(ParseDecimal(line), 0);
                    break;
                }
                case Op.Long:
                {
                    var line = ReadLineBytes(span, ref pos);
                    if (line.Length > 0 && line[^1] == (byte)'L') line = line[..^1];
                    Push(ParseDecimal(line), 0);
                    break;
                }
                case Op.Float:
                {
                    var line = ReadLineBytes(span, ref pos);
                    if (!double.TryParse(Encoding.ASCII.GetString(line), NumberStyles.Float, CultureInfo.InvariantCulture, out double d))
                        throw Error("FLOAT argument is not a number");
                    Push(d, 0);
                    break;
                }
                case Op.Unicode:
                {
                    var line = ReadLineBytes(span, ref pos);
                    Materialize(line.Length);
                    Push(DecodeRawUnicodeEscape(line), 0);
                    break;
                }
                case Op.String:
                {
                    var line = ReadLineBytes(span, ref pos);
                    Materialize(line.Length);
                    Push(new PyBytes(DecodeStringEscape(line)), 0);
                    break;
                }
                case Op.Get:
                {
                    var line = ReadLineBytes(span, ref pos);
                    MemoGet(ParseIndex(line));
                    break;
                }
                case Op.Put:
                {
                    var line = ReadLineBytes(span, ref pos);
                    MemoTop(ParseIndex(line));
                    break;
                }
                case Op.PersId:
                case Op.BinPersId:
                    throw Error("persistent ids are not supported (the pickle refers to external objects)");
                case Op.Ext1:
                case Op.Ext2:
                case Op.Ext4:
                    throw Error("extension registry codes are not supported");
                case Op.NextBuffer:
                case Op.ReadOnlyBuffer:
                    throw Error("out-of-band buffers are not supported (files never hold them)");
                case Op.Inst:
                case Op.Obj:
                case Op.NewObjEx:
                    throw Error("class instances are not supported by this safe reader");
                default:
                    throw Error($"unknown opcode 0x{op:x2}");
            }
        }
    }

    private object FinishRange()
    {
        if (_mp != 0) throw Error("a MARK is still open at the end of a dict value");
        if (_sp != 1) throw Error($"a dict value left {_sp} items on the stack, expected 1");
        return Finish();
    }

    private object Finish()
    {
        var result = Val(Pop());
        if (_placeholders) result = ReplacePlaceholders(result);
        if (_aliased) CheckStructure(result);
        return result;
    }

    private PyBytes Bytes(int pos, int n) => n == 0 ? PyBytes.Empty : new PyBytes(_data.Slice(pos, n));

    private static object[] ToArray(PyTuple t)
    {
        var a = new object[t.Count];
        for (int i = 0; i < a.Length; i++) a[i] = t[i];
        return a;
    }

    /// <summary>
    /// An arguments tuple (the tuple opcode just read, its items from <paramref name="from"/>) that a REDUCE or NEWOBJ
    /// consumes at once and that is never fetched from the memo (TUPLE, optional memo put, REDUCE: how every array and
    /// numpy scalar of an attribute dict is written) is not built: the call reads the items where they are on the
    /// stack, resolved as the tuple would have held them, and <paramref name="pos"/> moves past the REDUCE. False,
    /// with nothing changed, for anything else.
    /// </summary>
    private bool CallDirect(ReadOnlySpan<byte> span, ref int pos, int from)
    {
        if (from - 1 < _fence || from > _sp || _stack[from - 1] is not GlobalRef g) return false;
        int q = pos;
        long memoIndex = -1;
        if (q < span.Length)
        {
            switch (span[q])
            {
                case Op.Memoize:
                    memoIndex = _memoLen;
                    q++;
                    break;
                case Op.BinPut when q + 1 < span.Length:
                    memoIndex = span[q + 1];
                    q += 2;
                    break;
                case Op.LongBinPut when q + 4 < span.Length:
                    memoIndex = BinaryPrimitives.ReadUInt32LittleEndian(span[(q + 1)..]);
                    q += 5;
                    break;
            }
        }
        if (q >= span.Length || span[q] is not (Op.Reduce or Op.NewObj) || (memoIndex >= 0 && MemoKept(memoIndex))) return false;
        // As MakeTuple: placeholders are resolved up to the first global or tuple holding one, which stay as they are.
        bool holdsGlobal = false;
        for (int i = from; i < _sp; i++)
        {
            if (!IsTemp(_stack[i])) continue;
            var t = (PickleTemp)_stack[i];
            if (t is GlobalRef or ArgTuple) holdsGlobal = true;
            else if (!holdsGlobal) _stack[i] = Resolve(t);
        }
        int n = _sp - from;
        CountElements(n);
        int h = CheckHeight(MaxHeight(from, _sp) + 1);
        if (memoIndex >= 0)
        {
            _opPos = pos;
            MemoPut(memoIndex, g, h); // counted, not kept (MemoKept said so)
        }
        _opPos = q;
        _op = span[q];
        object result = Call(g, _stack.AsSpan(from, n));
        ClearTo(from - 1);
        Push(result, Math.Max(1, h - 1));
        pos = q + 1;
        return true;
    }

    /// <summary>Whether a memo put of <paramref name="index"/> keeps its object (some later opcode may fetch it).</summary>
    private bool MemoKept(long index)
    {
        if (index < 0 || index >= _opt.MaxMemoEntries) return true; // MemoPut reports it
        if (_rangeMode)
            return _refetched is null || ((ulong)index >> 6 < (ulong)_refetched.Length && (_refetched[index >> 6] & (1UL << (int)(index & 63))) != 0);
        return _memoFilter is null || _memoFilter.Slot(index) >= 0;
    }

    private void MakeTuple(int from)
    {
        if (from < _fence) throw Underflow();
        int n = _sp - from;
        var items = new object[n];
        bool holdsGlobal = false;
        for (int i = 0; i < n; i++)
        {
            var v = _stack[from + i];
            if (IsTemp(v))
            {
                var t = (PickleTemp)v;
                if (t is GlobalRef or ArgTuple) holdsGlobal = true;
                else if (!holdsGlobal) v = Resolve(t);
            }
            items[i] = v;
        }
        CountElements(n);
        int h = CheckHeight(MaxHeight(from, _sp) + 1);
        ClearTo(from);
        object tuple = holdsGlobal ? new ArgTuple(items) : new PyTuple(items);
        _lastTuple = tuple;
        _lastTupleItems = items;
        Push(tuple, h);
    }

    private void AppendItems(int m)
    {
        if (m == 0) throw Underflow();
        if (_stack[m - 1] is not PyList list)
            throw Error($"{Op.Name(_op)} onto a {TypeName(_stack[m - 1])}, expected a list");
        int n = _sp - m;
        CountElements(n);
        list.EnsureCapacity(list.Count + n);
        for (int i = m; i < _sp; i++) list.Add(Val(_stack[i]));
        _heights[m - 1] = CheckHeight(Math.Max(_heights[m - 1], MaxHeight(m, _sp) + 1));
        ClearTo(m);
    }

    private void SetItems(int m)
    {
        if (m == 0) throw Underflow();
        if (((_sp - m) & 1) != 0) throw Error($"odd number of items for {Op.Name(_op)}");
        if (_stack[m - 1] is not PyDict dict)
            throw Error($"{Op.Name(_op)} onto a {TypeName(_stack[m - 1])}, expected a dict");
        // Grow geometrically: EnsureCapacity(Count + batch) alone would rehash the whole dict for every
        // batch of 1000 items, which is quadratic in the size of a store's top-level dict.
        int need = dict.Count + (_sp - m) / 2;
        if (_sp - m > 2 && need > dict.Capacity) dict.EnsureCapacity(Math.Max(need, dict.Capacity * 2));
        FillDict(dict, m);
        _heights[m - 1] = CheckHeight(Math.Max(_heights[m - 1], MaxHeight(m, _sp) + 1));
        ClearTo(m);
    }

    private void FillDict(PyDict dict, int m)
    {
        CountElements((_sp - m) / 2);
        for (int i = m; i < _sp; i += 2)
        {
            var key = Val(_stack[i]);
            if (key is not (string or long)) CheckHashable(key);
            dict[key] = Val(_stack[i + 1]);
        }
    }

    // ---------------------------------------------------------------- scalars

    internal static object DecodeLong(ReadOnlySpan<byte> b)
    {
        if (b.Length == 0) return SmallInts[0];
        if (b.Length <= 8)
        {
            long v = 0;
            for (int i = b.Length - 1; i >= 0; i--) v = (v << 8) | b[i];
            int shift = 64 - 8 * b.Length;
            if (shift > 0) v = (v << shift) >> shift;
            return v;
        }
        return PyInt.From(new BigInteger(b, isUnsigned: false, isBigEndian: false));
    }

    private string DecodeUtf8(ReadOnlySpan<byte> b)
    {
        if (b.Length == 0) return "";
        if (System.Text.Unicode.Utf8.IsValid(b)) return Encoding.UTF8.GetString(b);
        return DecodeSurrogatePass(b);
    }

    /// <summary>UTF-8 that also accepts encoded lone surrogates (Python's 'surrogatepass').</summary>
    private string DecodeSurrogatePass(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder(b.Length);
        int i = 0;
        while (i < b.Length)
        {
            if (b[i] == 0xED && i + 2 < b.Length && b[i + 1] >= 0xA0 && b[i + 1] <= 0xBF && (b[i + 2] & 0xC0) == 0x80)
            {
                sb.Append((char)(0xD000 | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F)));
                i += 3;
                continue;
            }
            var status = Rune.DecodeFromUtf8(b[i..], out var rune, out int used);
            if (status != System.Buffers.OperationStatus.Done)
                throw Error($"invalid UTF-8 in a string at byte {i} of the string");
            sb.Append(rune.ToString());
            i += used;
        }
        return sb.ToString();
    }

    private string ReadLine(ReadOnlySpan<byte> span, ref int pos)
    {
        var line = ReadLineBytes(span, ref pos);
        if (!System.Text.Unicode.Utf8.IsValid(line)) throw Error("GLOBAL name is not valid UTF-8");
        // Module and class names repeat in every pickle of a store of many (a BT row, each with its own GLOBALs);
        // they only name what is looked up, so sharing them is never visible.
        return SharedStrings.Get(line) ?? Encoding.UTF8.GetString(line);
    }

    private ReadOnlySpan<byte> ReadLineBytes(ReadOnlySpan<byte> span, ref int pos)
    {
        int nl = span[pos..].IndexOf((byte)'\n');
        if (nl < 0) throw Truncated(span.Length, 1, 0);
        var line = span.Slice(pos, nl);
        pos += nl + 1;
        return line;
    }

    private object ParseDecimal(ReadOnlySpan<byte> line)
    {
        if (line.Length > _opt.MaxIntBytes) throw Error("integer text too long");
        if (!BigInteger.TryParse(Encoding.ASCII.GetString(line), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v))
            throw Error("integer argument is not a decimal number");
        return PyInt.From(v);
    }

    private long ParseIndex(ReadOnlySpan<byte> line)
    {
        if (!long.TryParse(Encoding.ASCII.GetString(line), NumberStyles.None, CultureInfo.InvariantCulture, out long v))
            throw Error("memo index is not a decimal number");
        return v;
    }

    private string DecodeRawUnicodeEscape(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder(b.Length);
        for (int i = 0; i < b.Length; i++)
        {
            if (b[i] == '\\' && i + 1 < b.Length && (b[i + 1] == 'u' || b[i + 1] == 'U'))
            {
                int digits = b[i + 1] == 'u' ? 4 : 8;
                if (i + 2 + digits > b.Length || !int.TryParse(Encoding.ASCII.GetString(b.Slice(i + 2, digits)), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int cp)
                    || cp < 0 || cp > 0x10FFFF)
                    throw Error("bad \\u escape in UNICODE");
                if (cp < 0x10000) sb.Append((char)cp);
                else sb.Append(char.ConvertFromUtf32(cp));
                i += 1 + digits;
            }
            else sb.Append((char)b[i]);
        }
        return sb.ToString();
    }

    private byte[] DecodeStringEscape(ReadOnlySpan<byte> b)
    {
        if (b.Length < 2 || b[0] != b[^1] || (b[0] != '\'' && b[0] != '"')) throw Error("the STRING opcode argument must be quoted");
        b = b[1..^1];
        var o = new List<byte>(b.Length);
        for (int i = 0; i < b.Length; i++)
        {
            if (b[i] != '\\' || i + 1 >= b.Length) { o.Add(b[i]); continue; }
            byte c = b[++i];
            switch (c)
            {
                case (byte)'n': o.Add(10); break;
                case (byte)'r': o.Add(13); break;
                case (byte)'t': o.Add(9); break;
                case (byte)'a': o.Add(7); break;
                case (byte)'b': o.Add(8); break;
                case (byte)'f': o.Add(12); break;
                case (byte)'v': o.Add(11); break;
                case (byte)'x':
                    if (i + 2 >= b.Length || !byte.TryParse(Encoding.ASCII.GetString(b.Slice(i + 1, 2)), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte x))
                        throw Error("bad \\x escape in STRING");
                    o.Add(x);
                    i += 2;
                    break;
                case >= (byte)'0' and <= (byte)'7':
                {
                    int v = c - '0';
                    for (int k = 0; k < 2 && i + 1 < b.Length && b[i + 1] >= '0' && b[i + 1] <= '7'; k++) v = v * 8 + (b[++i] - '0');
                    o.Add((byte)v);
                    break;
                }
                case (byte)'\n': break;
                case (byte)'\\' or (byte)'\'' or (byte)'"': o.Add(c); break;
                default: o.Add((byte)'\\'); o.Add(c); break;
            }
        }
        return o.ToArray();
    }

    // ---------------------------------------------------------------- globals and calls

    private GlobalRef FindGlobal(string module, string name)
    {
        var g = PickleGlobals.Find(module, name);
        if (g is null)
            throw Error($"global '{module}.{name}' is not allowed (only numpy array/scalar/dtype reconstruction, collections.defaultdict/OrderedDict and builtin containers)");
        return g;
    }

    private object Call(GlobalRef g, ReadOnlySpan<object> args)
    {
        switch (g.Kind)
        {
            case GlobalKind.Set:
            case GlobalKind.FrozenSet:
            {
                var set = new PySet(frozen: g.Kind == GlobalKind.FrozenSet);
                if (args.Length > 1) throw BadArgs(g, args);
                if (args.Length == 1)
                    foreach (var item in Iterate(g, args[0]))
                    {
                        CheckHashable(item);
                        set.Add(item);
                    }
                return set;
            }
            case GlobalKind.List:
                if (args.Length > 1) throw BadArgs(g, args);
                return args.Length == 0 ? new PyList() : new PyList(Iterate(g, args[0]));
            case GlobalKind.Tuple:
                if (args.Length > 1) throw BadArgs(g, args);
                return args.Length == 0 ? PyTuple.Empty : new PyTuple(Iterate(g, args[0]).ToArray());
            case GlobalKind.Dict:
            case GlobalKind.OrderedDict:
            {
                PyDict d = g.Kind == GlobalKind.Dict ? new PyDict() : new PyOrderedDict();
                if (args.Length > 1) throw BadArgs(g, args);
                if (args.Length == 1) FillFrom(g, d, Val(args[0]));
                return d;
            }
            case GlobalKind.DefaultDict:
            {
                if (args.Length > 2) throw BadArgs(g, args);
                string? factory = null;
                if (args.Length >= 1)
                {
                    factory = args[0] switch
                    {
                        PyNone => null,
                        GlobalRef f when f.Kind is not (GlobalKind.Reconstruct or GlobalKind.FromBuffer or GlobalKind.Scalar or GlobalKind.CodecsEncode) => f.FactoryName,
                        _ => throw Error($"defaultdict factory must be a type or None, got {TypeName(args[0])}"),
                    };
                }
                var dd = new PyDefaultDict(factory);
                if (args.Length == 2) FillFrom(g, dd, Val(args[1]));
                return dd;
            }
            case GlobalKind.Complex:
            {
                if (args.Length > 2) throw BadArgs(g, args);
                double re = args.Length > 0 ? ToDouble(g, args[0]) : 0, im = args.Length > 1 ? ToDouble(g, args[1]) : 0;
                return new Complex(re, im);
            }
            case GlobalKind.ByteArray:
                if (args.Length == 0) return new PyByteArray(Memory<byte>.Empty);
                if (args.Length == 1 && args[0] is PyBytes b) return new PyByteArray(MemoryMarshal.AsMemory(b.Data));
                if (args.Length == 1 && args[0] is PyByteArray ba) { Materialize(ba.Data.Length); return new PyByteArray(ba.Data.ToArray()); }
                if (args.Length == 2 && args[0] is string s && args[1] is string enc) return new PyByteArray(Latin1(g, s, enc));
                throw BadArgs(g, args);
            case GlobalKind.Bytes:
                if (args.Length == 0) return PyBytes.Empty;
                if (args.Length == 1 && args[0] is PyBytes pb) return pb;
                if (args.Length == 1 && args[0] is PyByteArray pba) { Materialize(pba.Data.Length); return new PyBytes(pba.Data.ToArray()); }
                if (args.Length == 2 && args[0] is string s2 && args[1] is string enc2) return new PyBytes(Latin1(g, s2, enc2));
                throw BadArgs(g, args);
            case GlobalKind.CodecsEncode:
                if (args.Length == 2 && args[0] is string s3 && args[1] is string enc3) return new PyBytes(Latin1(g, s3, enc3));
                throw BadArgs(g, args);
            case GlobalKind.Int:
                if (args.Length == 0) return SmallInts[0];
                if (args.Length == 1 && args[0] is long or BigInteger) return args[0];
                if (args.Length == 1 && args[0] is bool bo) return bo ? SmallInts[1] : SmallInts[0];
                throw BadArgs(g, args);
            case GlobalKind.Float:
                if (args.Length == 0) return 0.0;
                if (args.Length == 1) return ToDouble(g, args[0]);
                throw BadArgs(g, args);
            case GlobalKind.Str:
                if (args.Length == 0) return "";
                if (args.Length == 1 && args[0] is string str) return str;
                throw BadArgs(g, args);
            case GlobalKind.Bool:
                if (args.Length == 0) return False;
                if (args.Length == 1 && args[0] is bool) return args[0];
                throw BadArgs(g, args);
            case GlobalKind.NpDType:
                return MakeDType(g, args);
            case GlobalKind.Reconstruct:
                if (args.Length == 3 && args[0] is GlobalRef { Kind: GlobalKind.NpNdArray } && args[1] is PyTuple && args[2] is PyBytes or string)
                    return new ArrayProxy();
                throw BadArgs(g, args);
            case GlobalKind.FromBuffer:
                return FromBuffer(g, args);
            case GlobalKind.Scalar:
                return MakeScalar(g, args);
            default:
                throw Error($"'{g.FullName}' cannot be called");
        }
    }

    private InvalidDataException BadArgs(GlobalRef g, ReadOnlySpan<object> args) =>
        Error($"unexpected arguments for {g.FullName}: ({string.Join(", ", args.ToArray().Select(TypeName))})");

    private IEnumerable<object> Iterate(GlobalRef g, object arg)
    {
        var v = Val(arg);
        return v switch
        {
            PyList l => l,
            PyTuple t => t,
            PySet s => s,
            _ => throw Error($"{g.FullName} needs an iterable of the value model, got {TypeName(v)}"),
        };
    }

    private void FillFrom(GlobalRef g, PyDict d, object source)
    {
        if (source is PyDict src)
        {
            foreach (var kv in src) d[kv.Key] = kv.Value;
            return;
        }
        foreach (var pair in Iterate(g, source))
        {
            if (pair is not (PyTuple { Count: 2 } or PyList { Count: 2 }))
                throw Error($"{g.FullName} needs (key, value) pairs, got {TypeName(pair)}");
            var p = (IReadOnlyList<object>)pair;
            CheckHashable(p[0]);
            d[p[0]] = p[1];
        }
    }

    private double ToDouble(GlobalRef g, object v) => v switch
    {
        double d => d,
        long l => l,
        BigInteger b => (double)b,
        bool f => f ? 1 : 0,
        _ => throw Error($"{g.FullName} needs a number, got {TypeName(v)}"),
    };

    private byte[] Latin1(GlobalRef g, string s, string encoding)
    {
        if (encoding is not ("latin1" or "latin-1" or "iso-8859-1" or "iso8859-1" or "l1"))
            throw Error($"{g.FullName} with encoding '{encoding}' is not supported (only latin-1)");
        Materialize(s.Length);
        var bytes = new byte[s.Length];
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            if (c > 0xFF) throw Error($"{g.FullName}: character U+{(int)c:X4} cannot be encoded as latin-1");
            bytes[i] = (byte)c;
        }
        return bytes;
    }

    // ---------------------------------------------------------------- numpy

    private DTypeProxy MakeDType(GlobalRef g, ReadOnlySpan<object> args)
    {
        if (args.Length < 1 || args[0] is not string typestr) throw BadArgs(g, args);
        DType dt;
        try
        {
            if (!DType.TryParse(typestr, out dt)) throw Error($"unknown numpy dtype '{typestr}'");
        }
        catch (OverflowException)
        {
            throw Error($"numpy dtype '{typestr}' is too large");
        }
        return new DTypeProxy(dt);
    }

    private void Build(object target, object state)
    {
        switch (target)
        {
            case DTypeProxy d:
                if (state is not PyTuple st) throw Error($"numpy.dtype state must be a tuple, got {TypeName(state)}");
                d.Current = ApplyDTypeState(d.Current, st);
                break;
            case ArrayProxy a:
                if (state is not PyTuple ast) throw Error($"numpy.ndarray state must be a tuple, got {TypeName(state)}");
                a.Result = ApplyArrayState(ast);
                break;
            default:
                throw Error($"BUILD on a {TypeName(target)} is not supported");
        }
    }

    private DType ApplyDTypeState(DType initial, PyTuple st)
    {
        if (st.Count is not (8 or 9) || st[0] is not long version || version is not (3 or 4))
            throw Error($"unsupported numpy.dtype state ({st.Count} items); expected version 3 or 4");
        if (st[1] is not string { Length: 1 } order) throw Error("numpy.dtype state: byte order must be a one-character str");
        var subarray = st[2];
        var names = st[3];
        var fields = st[4];
        if (st[5] is not long elsize || st[6] is not long) throw Error("numpy.dtype state: elsize/alignment must be ints");
        var metadata = st.Count == 9 ? st[8] : PyNone.Value;
        char kind = initial.Kind;
        int itemSize = initial.ItemSize;
        if (kind is 'S' or 'U' or 'V' && elsize >= 0)
        {
            if (elsize > int.MaxValue) throw Error($"numpy.dtype state: item size {elsize} too large");
            itemSize = (int)elsize;
        }
        string unit = initial.Unit;
        bool plainDatetimeMeta = false;
        if (kind is 'M' or 'm' && metadata is PyTuple { Count: 2 } meta && meta[0] is PyDict { Count: 0 }
            && meta[1] is PyTuple { Count: 4 } dm && dm[0] is PyBytes ub && dm[1] is long num)
        {
            string u = Encoding.ASCII.GetString(ub.Data.Span);
            unit = u == "generic" ? "" : "[" + (num == 1 ? "" : num.ToString(CultureInfo.InvariantCulture)) + u + "]";
            plainDatetimeMeta = true;
        }
        bool keep = subarray is not PyNone || names is not PyNone || fields is not PyNone || (metadata is not PyNone && !plainDatetimeMeta);
        char bo = order[0];
        if (bo is not ('<' or '>' or '|' or '=')) throw Error($"numpy.dtype state: unknown byte order '{order}'");
        try
        {
            // A new instance each time, as in the file: the writer memoizes dtypes by identity, so sharing equal ones
            // would write a file back with fewer of them than it had.
            return new DType(bo, kind, itemSize, unit, keep ? st : null);
        }
        catch (ArgumentException e)
        {
            throw Error("numpy.dtype state: " + e.Message);
        }
    }

    private long[] Shape(object v, string what)
    {
        if (v is not PyTuple t) throw Error($"{what}: shape must be a tuple, got {TypeName(v)}");
        var shape = new long[t.Count];
        Shape(t, what, shape);
        return shape;
    }

    /// <summary>Checks the shape tuple <paramref name="t"/> and writes its dimensions to <paramref name="shape"/> (of t.Count).</summary>
    private void Shape(PyTuple t, string what, Span<long> shape)
    {
        long size = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (t[i] is not long d || d < 0) throw Error($"{what}: bad dimension {PyRepr.Repr(t[i])} in shape");
            shape[i] = d;
            // Zero dimensions are left out so that a huge shape with a 0 in it is still refused.
            if (d == 0) continue;
            if (size > _opt.MaxTotalElements / d) size = _opt.MaxTotalElements + 1;
            else size *= d;
        }
        if (size > _opt.MaxTotalElements) throw Error($"{what}: shape ({string.Join(", ", shape.ToArray())}) has more than {_opt.MaxTotalElements} elements");
    }

    private static long SizeOf(ReadOnlySpan<long> shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        return n;
    }

    private NdArray ApplyArrayState(PyTuple st)
    {
        int o = st.Count switch { 5 => 1, 4 => 0, _ => throw Error($"numpy.ndarray state has {st.Count} items, expected 5") };
        if (o == 1 && st[0] is not long) throw Error("numpy.ndarray state: version must be an int");
        var shape = Shape(st[o], "numpy.ndarray state");
        if (st[o + 1] is not DType dtype) throw Error($"numpy.ndarray state: expected a dtype, got {TypeName(st[o + 1])}");
        bool fortran = st[o + 2] switch
        {
            bool b => b,
            long l => l != 0,
            _ => throw Error($"numpy.ndarray state: is_fortran must be a bool, got {TypeName(st[o + 2])}"),
        };
        var data = st[o + 3];
        long size = SizeOf(shape);
        try
        {
            NdArray result;
            if (dtype.Kind == 'O')
            {
                if (data is not PyList list) throw Error($"numpy.ndarray state: object array data must be a list, got {TypeName(data)}");
                if (list.Count != size) throw Error($"numpy.ndarray state: object array of {size} elements has {list.Count} items");
                result = NdArray.FromObjects(shape, list.ToArray());
            }
            else
            {
                Memory<byte> mem = data switch
                {
                    PyBytes b => MemoryMarshal.AsMemory(b.Data),
                    PyByteArray ba => ba.Data,
                    _ => throw Error($"numpy.ndarray state: data must be bytes, got {TypeName(data)}"),
                };
                if (dtype.ItemSize == 0) CountElements(size);
                else if (size > long.MaxValue / dtype.ItemSize)
                    throw Error($"numpy.ndarray state: shape ({string.Join(", ", shape)}) of {dtype.Str} needs more bytes than an array can hold");
                if (mem.Length != size * dtype.ItemSize)
                    throw Error($"numpy.ndarray state: {mem.Length} data bytes for shape ({string.Join(", ", shape)}) of {dtype.Str}, expected {size * dtype.ItemSize}");
                if (!dtype.IsNativeByteOrder)
                {
                    Materialize(mem.Length);
                    var copy = mem.ToArray();
                    NdArray.SwapBytes(copy, dtype.SwapUnit);
                    mem = copy;
                    dtype = dtype.ToNative();
                }
                result = new NdArray(dtype, shape, mem, fortran ? ArrayOrder.F : ArrayOrder.C);
            }
            return result;
        }
        catch (ArgumentException e)
        {
            throw Error("numpy.ndarray state: " + e.Message);
        }
    }

    private NdArray FromBuffer(GlobalRef g, ReadOnlySpan<object> args)
    {
        if (args.Length is not (4 or 5)) throw BadArgs(g, args);
        bool readOnly;
        Memory<byte> mem;
        switch (args[0])
        {
            case PyBytes b: mem = MemoryMarshal.AsMemory(b.Data); readOnly = true; break;
            case PyByteArray ba: mem = ba.Data; readOnly = false; break;
            default: throw Error($"{g.FullName}: buffer must be bytes or bytearray, got {TypeName(args[0])}");
        }
        if (Val(args[1]) is not DType dtype) throw Error($"{g.FullName}: expected a dtype, got {TypeName(args[1])}");
        if (dtype.Kind == 'O' || dtype.ItemSize == 0) throw Error($"{g.FullName}: dtype {dtype.Str} cannot come from a buffer");
        if (args[2] is not PyTuple shapeTuple) throw Error($"{g.FullName}: shape must be a tuple, got {TypeName(args[2])}");
        // Shapes of up to 8 dimensions stay on the stack (NdArray keeps its own copy).
        Span<long> shape = shapeTuple.Count <= 8 ? stackalloc long[8] : new long[shapeTuple.Count];
        shape = shape[..shapeTuple.Count];
        Shape(shapeTuple, g.FullName, shape);
        if (args[3] is not string order || order is not ("C" or "F" or "K" or "A"))
            throw Error($"{g.FullName}: order must be 'C', 'F' or 'K', got {PyRepr.Repr(args[3] as string ?? TypeName(args[3]))}");
        long size = SizeOf(shape);
        if (size > long.MaxValue / dtype.ItemSize)
            throw Error($"{g.FullName}: shape ({string.Join(", ", shape.ToArray())}) of {dtype.Str} needs more bytes than an array can hold");
        if (mem.Length != size * dtype.ItemSize)
            throw Error($"{g.FullName}: buffer of {mem.Length} bytes for shape ({string.Join(", ", shape.ToArray())}) of {dtype.Str}, expected {size * dtype.ItemSize}");
        try
        {
            NdArray result;
            if (args.Length == 5 && args[4] is not PyNone && order == "K")
            {
                var axes = Shape(args[4], g.FullName + " axis order");
                result = Transpose(dtype, shape.ToArray(), mem, axes, g);
            }
            else
            {
                result = new NdArray(dtype, shape, mem, order == "F" ? ArrayOrder.F : ArrayOrder.C);
            }
            if (readOnly) ArrayHints.Set(result, ArrayHint.ReadOnly);
            return result;
        }
        catch (ArgumentException e)
        {
            throw Error($"{g.FullName}: {e.Message}");
        }
    }

    private NdArray Transpose(DType dtype, long[] shape, Memory<byte> src, long[] axes, GlobalRef g)
    {
        int nd = shape.Length;
        if (axes.Length != nd) throw Error($"{g.FullName}: axis order has {axes.Length} axes for {nd} dimensions");
        var seen = new bool[nd];
        foreach (var a in axes)
        {
            if (a >= nd || seen[a]) throw Error($"{g.FullName}: axis order is not a permutation");
            seen[a] = true;
        }
        var cStride = new long[nd];
        long s = 1;
        for (int d = nd - 1; d >= 0; d--) { cStride[d] = s; s *= shape[d]; }
        var outShape = new long[nd];
        var stride = new long[nd];
        for (int i = 0; i < nd; i++) { outShape[i] = shape[axes[i]]; stride[i] = cStride[axes[i]]; }
        long size = s;
        int item = dtype.ItemSize;
        Materialize(size * item);
        var dst = new byte[size * item];
        var from = src.Span;
        var idx = new long[nd];
        for (long c = 0; c < size; c++)
        {
            long off = 0;
            for (int d = 0; d < nd; d++) off += idx[d] * stride[d];
            from.Slice((int)(off * item), item).CopyTo(dst.AsSpan((int)(c * item), item));
            for (int d = nd - 1; d >= 0; d--)
            {
                if (++idx[d] < outShape[d]) break;
                idx[d] = 0;
            }
        }
        return new NdArray(dtype, outShape, dst);
    }

    private NpScalar MakeScalar(GlobalRef g, ReadOnlySpan<object> args)
    {
        if (args.Length is not (1 or 2) || Val(args[0]) is not DType dtype) throw BadArgs(g, args);
        if (dtype.Kind == 'O')
        {
            var item = args.Length == 2 ? Val(args[1]) : PyNone.Value;
            if (item is ArrayProxy) throw Error($"{g.FullName}: an object scalar cannot hold a numpy array before the array's BUILD state");
            return new NpScalar(dtype, item);
        }
        if (args.Length != 2) throw BadArgs(g, args);
        ReadOnlySpan<byte> raw = args[1] switch
        {
            PyBytes b => b.Data.Span,
            string s => Latin1(g, s, "latin1"),
            _ => throw Error($"{g.FullName}: raw value must be bytes, got {TypeName(args[1])}"),
        };
        if (raw.Length != dtype.ItemSize)
            throw Error($"{g.FullName}: {raw.Length} bytes for a scalar of dtype {dtype.Str}, expected {dtype.ItemSize}");
        if (dtype.Kind == 'U')
        {
            for (int i = 0; i + 4 <= raw.Length; i += 4)
            {
                uint cp = dtype.ByteOrder == '>' ? BinaryPrimitives.ReadUInt32BigEndian(raw[i..]) : BinaryPrimitives.ReadUInt32LittleEndian(raw[i..]);
                if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                    throw Error($"{g.FullName}: invalid code point 0x{cp:x} in a numpy str scalar");
            }
        }
        return new NpScalar(dtype, raw.ToArray());
    }

    // ---------------------------------------------------------------- placeholders

    /// <summary>
    /// Puts each array that was used before its BUILD in the places its proxy stands in (list, tuple and dict items,
    /// object-array elements), walking the finished value once, without recursion. A proxy that never got its BUILD
    /// state is refused.
    /// </summary>
    private object ReplacePlaceholders(object root)
    {
        root = Built(root);
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance) { root };
        var pending = new Stack<object>();
        pending.Push(root);
        List<int>? patch = null;
        while (pending.Count > 0)
        {
            switch (pending.Pop())
            {
                case PyList l:
                    for (int i = 0; i < l.Count; i++)
                    {
                        if (l[i] is ArrayProxy p) l[i] = Built(p);
                        Visit(l[i]);
                    }
                    break;
                case PyTuple t:
                    for (int i = 0; i < t.Count; i++)
                    {
                        if (t[i] is ArrayProxy p) t.ReplaceWhileLoading(i, Built(p));
                        Visit(t[i]);
                    }
                    break;
                case PyDict d:
                {
                    // Keys are hashable, hence never an array; values are patched after the enumeration.
                    patch?.Clear();
                    int index = 0;
                    foreach (var kv in d)
                    {
                        Visit(kv.Key);
                        if (kv.Value is ArrayProxy) (patch ??= []).Add(index);
                        else Visit(kv.Value);
                        index++;
                    }
                    if (patch is { Count: > 0 })
                    {
                        foreach (int i in patch)
                        {
                            var built = Built(d.GetAt(i).Value);
                            d.SetAt(i, built);
                            Visit(built);
                        }
                    }
                    break;
                }
                case PySet s:
                    foreach (var item in s) Visit(item);
                    break;
                case NdArray a:
                    Visit(a.DType);
                    if (a.ObjectItems is not { } items) break;
                    for (int i = 0; i < items.Length; i++)
                    {
                        if (items[i] is ArrayProxy p) items[i] = Built(p);
                        Visit(items[i]);
                    }
                    break;
                case NpScalar { ObjectValue: { } v }:
                    Visit(v);
                    break;
                case DType { PickleState: { } state }:
                    // A dtype keeps its BUILD state (metadata may hold anything, the array too).
                    Visit(state);
                    break;
            }
        }
        return root;

        void Visit(object? o)
        {
            if (o is PyList or PyTuple { Count: > 0 } or PyDict { Count: > 0 } or PySet { Count: > 0 } or NdArray or NpScalar { ObjectValue: not null }
                    or DType { PickleState: not null }
                && seen.Add(o))
                pending.Push(o);
        }
    }

    private object Built(object o) => o switch
    {
        ArrayProxy { Result: { } a } => a,
        ArrayProxy => throw Error("a numpy array from _reconstruct is used, but its BUILD state never came"),
        _ => o,
    };

    // ---------------------------------------------------------------- structure check

    /// <summary>
    /// Run when a container was reached twice (memo or DUP): checks the real nesting depth, which the stack
    /// bookkeeping cannot see in that case (a list memoized empty and filled later). A container that holds
    /// itself is legal, as in Python: the way back to an enclosing container is a reference, not more nesting.
    /// Iterative, with each container's height computed once, so shared references cost nothing extra.
    /// </summary>
    private void CheckStructure(object root)
    {
        var height = new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(object Node, IEnumerator<object?> Children, int Max)>();
        var rootChildren = ChildrenOf(root);
        if (rootChildren is null) return;
        height[root] = -1;
        stack.Push((root, rootChildren, 0));
        while (stack.Count > 0)
        {
            var (node, it, max) = stack.Pop();
            bool descended = false;
            while (it.MoveNext())
            {
                var child = it.Current;
                if (child is null) continue;
                if (height.TryGetValue(child, out int h))
                {
                    // h < 0: an enclosing container (a cycle), written as a reference.
                    if (h > max) max = h;
                    continue;
                }
                var cc = ChildrenOf(child);
                if (cc is null) continue;
                if (stack.Count + 1 >= _opt.MaxDepth)
                    throw Error($"structure nests deeper than {_opt.MaxDepth} levels through shared references (PickleReadOptions.MaxDepth), found when the value was complete");
                stack.Push((node, it, max));
                height[child] = -1;
                stack.Push((child, cc, 0));
                descended = true;
                break;
            }
            if (descended) continue;
            if (max + 1 > _opt.MaxDepth)
                throw Error($"structure nests deeper than {_opt.MaxDepth} levels through shared references (PickleReadOptions.MaxDepth), found when the value was complete");
            height[node] = max + 1;
            if (stack.Count > 0)
            {
                var parent = stack.Pop();
                stack.Push((parent.Node, parent.Children, Math.Max(parent.Max, max + 1)));
            }
        }
    }

    private static IEnumerator<object?>? ChildrenOf(object o) => o switch
    {
        PyList l => l.GetEnumerator(),
        PyTuple t => t.GetEnumerator(),
        PySet s => s.GetEnumerator(),
        PyDict d => DictChildren(d).GetEnumerator(),
        NdArray { Objects: { } objs } => objs.GetEnumerator(),
        NpScalar { ObjectValue: { } v } => new[] { v }.AsEnumerable().GetEnumerator()!,
        _ => null,
    };

    private static IEnumerable<object> DictChildren(PyDict d)
    {
        foreach (var kv in d)
        {
            yield return kv.Key;
            yield return kv.Value;
        }
    }
}
