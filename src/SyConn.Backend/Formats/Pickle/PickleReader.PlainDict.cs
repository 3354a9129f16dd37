using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Formats.Pickle;

// The attribute-dict value read straight from its opcodes, without the stack machine.
internal sealed partial class PickleReader
{
    private const int PlainMaxItems = 64, PlainMaxList = 64, PlainMaxDims = 8;

    /// <summary>
    /// Reads the dict value in [<paramref name="start"/>, <paramref name="end"/>) (as <see cref="RunRange"/> would, same
    /// memo numbering) when it has the layout CPython writes for SyConn's attribute dicts: str keys, each a new str or
    /// a str another value put, and items that are ints, floats, None, bools, str, lists of up to 64 ints or floats,
    /// immutable objects another value put, numpy scalars, and numpy arrays written by <c>_frombuffer</c> from a
    /// bytearray whose globals, dtypes and order strings come from the shared memo. The result is the object
    /// <see cref="RunRange"/> returns, and <paramref name="bytes"/> the payload bytes it counts
    /// (<see cref="MaterializedBytes"/>). Null for anything else, including anything damaged and anything the reader's
    /// limits (<paramref name="options"/>, at most <paramref name="maxBytes"/> payload bytes) refuse: the caller then
    /// runs the reader, which reads it or reports it as it always does. No reader is needed, so threads reading values
    /// at once share nothing. The value's memo entries are not kept: the caller only asks for values whose memo entries
    /// no other value fetches, and a fetch of one of its own entries gives null.
    /// </summary>
    internal static object? TryReadPlainDict(ReadOnlyMemory<byte> data, PickleReadOptions options, long maxBytes, int start, int end, long memoBase, SharedMemo? shared, out long bytes)
    {
        bytes = 0;
        if (!PlainAllowed(options, shared)) return null;
        var span = data.Span[..end];
        var cur = new PlainCursor(data, options, start, memoBase);
        if (Peek(span, ref cur) != Op.EmptyDict) return null;
        cur.Pos++;
        if (!PlainPut(span, ref cur)) return null;
        // A repeated key: the last value counts, in the first key's place, as in Python (the dict's indexer).
        var dict = new PyDict(8);
        int pairs = 0;
        for (int op; (op = Peek(span, ref cur)) >= 0;)
        {
            if (op == Op.Mark)
            {
                cur.Pos++;
                while (true)
                {
                    op = Peek(span, ref cur);
                    if (op < 0) return null;
                    if (op == Op.SetItems)
                    {
                        cur.Pos++;
                        break;
                    }
                    if (pairs++ == PlainMaxItems || !PlainKey(span, ref cur, shared, out var k) || PlainItem(span, ref cur, shared) is not { } v) return null;
                    dict[k] = v;
                }
            }
            else
            {
                if (pairs++ == PlainMaxItems || !PlainKey(span, ref cur, shared, out var k) || PlainItem(span, ref cur, shared) is not { } v) return null;
                if (Peek(span, ref cur) != Op.SetItem) return null;
                dict[k] = v;
                cur.Pos++;
            }
        }
        if (cur.Pos != end || cur.Bytes > maxBytes) return null;
        bytes = cur.Bytes;
        return dict;
    }

    /// <summary>
    /// Reads the one item value in [<paramref name="start"/>, <paramref name="end"/>) of an attribute dict (as
    /// <see cref="RunRange"/> would) when it is of a kind <see cref="TryReadPlainDict"/> takes; null, with nothing
    /// changed, for anything else.
    /// </summary>
    internal static object? TryReadPlainItem(ReadOnlyMemory<byte> data, PickleReadOptions options, long maxBytes, int start, int end, long memoBase, SharedMemo? shared, out long bytes)
    {
        bytes = 0;
        if (!PlainAllowed(options, shared)) return null;
        var span = data.Span[..end];
        var cur = new PlainCursor(data, options, start, memoBase);
        var v = PlainItem(span, ref cur, shared);
        if (v is null || Peek(span, ref cur) >= 0 || cur.Pos != end || cur.Bytes > maxBytes) return null;
        bytes = cur.Bytes;
        return v;
    }

    // The bounds of the direct read (64 items, 64 list items, 8 dimensions) stay far inside limits this loose, so
    // under them the reader could refuse nothing the direct read takes; tighter limits leave every value to the reader.
    private static bool PlainAllowed(PickleReadOptions options, [NotNullWhen(true)] SharedMemo? shared) =>
        shared is not null && options.MaxDepth >= 8 && options.MaxTotalElements >= 1 << 16;

    private struct PlainCursor(ReadOnlyMemory<byte> data, PickleReadOptions options, int start, long memoBase)
    {
        public readonly ReadOnlyMemory<byte> Data = data;
        public readonly PickleReadOptions Opt = options;
        public readonly long MemoBase = memoBase, Limit = Math.Min(options.MaxMemoEntries, int.MaxValue);
        public int Pos = start;
        public long Memo = memoBase, Bytes;
    }

    // The opcode at the cursor, past any FRAME opcodes (a pickler may start a frame between any two objects; the
    // index scan checked every frame against the whole input, and the reader skips them in a value), or -1 at the end.
    private static int Peek(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        while (c.Pos < span.Length)
        {
            byte op = span[c.Pos];
            if (op != Op.Frame) return op;
            c.Pos += 9;
        }
        return -1;
    }

    // An optional memo put of what was just read: only the next index, in order, under the memo limit.
    private static bool PlainPut(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        int op = Peek(span, ref c);
        if (op < 0) return true;
        long idx;
        int len;
        switch (op)
        {
            case Op.Memoize: idx = c.Memo; len = 1; break;
            case Op.BinPut when c.Pos + 1 < span.Length: idx = span[c.Pos + 1]; len = 2; break;
            case Op.LongBinPut when c.Pos + 4 < span.Length: idx = BinaryPrimitives.ReadUInt32LittleEndian(span[(c.Pos + 1)..]); len = 5; break;
            case Op.BinPut or Op.LongBinPut: return false;
            default: return true;
        }
        if (idx != c.Memo || idx >= c.Limit) return false;
        c.Memo++;
        c.Pos += len;
        return true;
    }

    // A memo fetch of an entry another value put, from the shared memo; false for anything else.
    private static bool PlainShared(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared, out object value)
    {
        value = null!;
        long idx;
        switch (Peek(span, ref c))
        {
            case Op.BinGet when c.Pos + 1 < span.Length: idx = span[c.Pos + 1]; c.Pos += 2; break;
            case Op.LongBinGet when c.Pos + 4 < span.Length: idx = BinaryPrimitives.ReadUInt32LittleEndian(span[(c.Pos + 1)..]); c.Pos += 5; break;
            default: return false;
        }
        if (idx >= c.MemoBase || !shared.TryGetValue(idx, out var e)) return false;
        value = e.Value;
        return true;
    }

    private static bool PlainKey(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared, out object key)
    {
        key = null!;
        int op = Peek(span, ref c);
        if (op < 0) return false;
        if (op == Op.ShortBinUnicode)
        {
            if (PlainStr(span, ref c) is not { } s) return false;
            key = s;
            return true;
        }
        return PlainShared(span, ref c, shared, out key) && key is string;
    }

    // SHORT_BINUNICODE of ASCII text (anything else is left to the reader), with its optional memo put.
    private static string? PlainStr(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        if (c.Pos + 1 >= span.Length) return null;
        int n = span[c.Pos + 1];
        if (n > span.Length - c.Pos - 2) return null;
        var text = span.Slice(c.Pos + 2, n);
        string s;
        if (c.Opt.ShareShortStrings && n <= SharedStrings.MaxBytes && SharedStrings.Get(text) is { } sh) s = sh;
        else if (n == 0) s = "";
        else if (System.Text.Ascii.IsValid(text)) s = Encoding.ASCII.GetString(text);
        else return null;
        c.Bytes += n;
        c.Pos += 2 + n;
        return PlainPut(span, ref c) ? s : null;
    }

    // An int opcode as the reader reads it, or null.
    private static object? PlainInt(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        int op = Peek(span, ref c), p = c.Pos;
        switch (op)
        {
            case Op.BinInt1 when p + 1 < span.Length:
                c.Pos += 2;
                return SmallInts[span[p + 1]];
            case Op.BinInt2 when p + 2 < span.Length:
                c.Pos += 3;
                return (long)BinaryPrimitives.ReadUInt16LittleEndian(span[(p + 1)..]);
            case Op.BinInt when p + 4 < span.Length:
                c.Pos += 5;
                return (long)BinaryPrimitives.ReadInt32LittleEndian(span[(p + 1)..]);
            case Op.Long1 when p + 1 < span.Length && span[p + 1] <= span.Length - p - 2:
            {
                int n = span[p + 1];
                c.Pos += 2 + n;
                return DecodeLong(span.Slice(p + 2, n));
            }
            default:
                return null;
        }
    }

    // An int or a float, as a list item or a dict item.
    private static object? PlainNumber(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        if (Peek(span, ref c) == Op.BinFloat)
        {
            if (c.Pos + 8 >= span.Length) return null;
            double d = BinaryPrimitives.ReadDoubleBigEndian(span[(c.Pos + 1)..]);
            c.Pos += 9;
            return d;
        }
        return PlainInt(span, ref c);
    }

    private static object? PlainItem(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared)
    {
        switch (Peek(span, ref c))
        {
            case < 0:
                return null;
            case Op.None:
                c.Pos++;
                return PyNone.Value;
            case Op.NewTrue:
                c.Pos++;
                return True;
            case Op.NewFalse:
                c.Pos++;
                return False;
            case Op.ShortBinUnicode:
                return PlainStr(span, ref c);
            case Op.EmptyList:
                c.Pos++;
                return PlainPut(span, ref c) ? PlainList(span, ref c) : null;
            case Op.BinGet or Op.LongBinGet:
            {
                if (!PlainShared(span, ref c, shared, out var v)) return null;
                return v switch
                {
                    // An immutable object another value put (numpy's bool scalars are singletons, so a pickler
                    // writes np.False_ once and fetches it after that): the reader returns that same object.
                    string or long or double or bool or System.Numerics.BigInteger or PyNone or NpScalar or PyBytes => v,
                    GlobalRef { Kind: GlobalKind.FromBuffer } => PlainFromBuffer(span, ref c, shared),
                    GlobalRef { Kind: GlobalKind.Scalar } => PlainScalar(span, ref c, shared),
                    _ => null,
                };
            }
            default:
                return PlainNumber(span, ref c);
        }
    }

    // After EMPTY_LIST and its memo put: nothing, one number and APPEND, or MARK, numbers, APPENDS (in batches).
    private static PyList? PlainList(ReadOnlySpan<byte> span, ref PlainCursor c)
    {
        var list = new PyList();
        for (int op; (op = Peek(span, ref c)) >= 0;)
        {
            if (op == Op.Mark)
            {
                c.Pos++;
                while (true)
                {
                    int item = Peek(span, ref c);
                    if (item < 0) return null;
                    if (item == Op.Appends)
                    {
                        c.Pos++;
                        break;
                    }
                    if (list.Count == PlainMaxList || PlainNumber(span, ref c) is not { } x) return null;
                    list.Add(x);
                }
            }
            else if (op is Op.BinInt1 or Op.BinInt2 or Op.BinInt or Op.Long1 or Op.BinFloat)
            {
                if (list.Count == PlainMaxList || PlainNumber(span, ref c) is not { } x) return null;
                if (Peek(span, ref c) != Op.Append) return null;
                c.Pos++;
                list.Add(x);
            }
            else break;
        }
        return list;
    }

    // A dtype from the shared memo, as the reader resolves it.
    private static DType? PlainDType(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared) =>
        PlainShared(span, ref c, shared, out var v) ? v switch { DType d => d, DTypeProxy p => p.Current, _ => null } : null;

    // _frombuffer(bytearray, dtype, shape, order) after its global: MARK, BYTEARRAY8, dtype, shape tuple, order, TUPLE, REDUCE.
    private static NdArray? PlainFromBuffer(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared)
    {
        if (Peek(span, ref c) != Op.Mark) return null;
        c.Pos++;
        if (Peek(span, ref c) != Op.ByteArray8 || c.Pos + 8 >= span.Length) return null;
        ulong len = BinaryPrimitives.ReadUInt64LittleEndian(span[(c.Pos + 1)..]);
        int at = c.Pos + 9;
        if (len > (ulong)(span.Length - at)) return null;
        var data = MemoryMarshal.AsMemory(c.Data.Slice(at, (int)len));
        c.Bytes += (long)len;
        c.Pos = at + (int)len;
        if (!PlainPut(span, ref c) || PlainDType(span, ref c, shared) is not { } dtype || dtype.Kind == 'O' || dtype.ItemSize == 0) return null;
        // The shape: EMPTY_TUPLE, or up to three dimensions and TUPLE1/2/3, or MARK, dimensions, TUPLE.
        Span<long> shape = stackalloc long[PlainMaxDims];
        int nd = 0;
        int first = Peek(span, ref c);
        if (first < 0) return null;
        if (first == Op.EmptyTuple) c.Pos++;
        else
        {
            bool marked = first == Op.Mark;
            if (marked) c.Pos++;
            while (Peek(span, ref c) is Op.BinInt1 or Op.BinInt2 or Op.BinInt)
            {
                if (nd == PlainMaxDims || PlainInt(span, ref c) is not long d || d < 0) return null;
                shape[nd++] = d;
            }
            int t = Peek(span, ref c);
            if (t < 0) return null;
            c.Pos++;
            bool closes = marked ? t == Op.Tuple : (nd == 1 && t == Op.Tuple1) || (nd == 2 && t == Op.Tuple2) || (nd == 3 && t == Op.Tuple3);
            if (!closes) return null;
        }
        shape = shape[..nd];
        if (!PlainPut(span, ref c)) return null;
        string? order = Peek(span, ref c) == Op.ShortBinUnicode ? PlainStr(span, ref c) : PlainShared(span, ref c, shared, out var o) ? o as string : null;
        if (order is not ("C" or "F")) return null;
        if (!PlainCall(span, ref c, Op.Tuple)) return null;
        // As the reader: the dimensions other than 0 multiply to at most MaxTotalElements (else it refuses the shape).
        long size = 1, nonZero = 1;
        foreach (long d in shape)
        {
            if (d == 0)
            {
                size = 0;
                continue;
            }
            if (nonZero > c.Opt.MaxTotalElements / d) return null;
            nonZero *= d;
            size *= d;
        }
        // (Under a MaxTotalElements raised near long.MaxValue the byte count could overflow: left to the reader.)
        if ((ulong)size > (ulong)(long.MaxValue / dtype.ItemSize) || data.Length != size * dtype.ItemSize) return null;
        return new NdArray(dtype, shape, data, order == "F" ? ArrayOrder.F : ArrayOrder.C);
    }

    // scalar(dtype, bytes) after its global: dtype, SHORT_BINBYTES, TUPLE2, REDUCE.
    private static NpScalar? PlainScalar(ReadOnlySpan<byte> span, ref PlainCursor c, SharedMemo shared)
    {
        if (PlainDType(span, ref c, shared) is not { } dtype || dtype.Kind is 'O' or 'U') return null;
        if (Peek(span, ref c) != Op.ShortBinBytes || c.Pos + 1 >= span.Length) return null;
        int n = span[c.Pos + 1];
        if (n != dtype.ItemSize || n > span.Length - c.Pos - 2) return null;
        var raw = span.Slice(c.Pos + 2, n).ToArray();
        c.Bytes += n;
        c.Pos += 2 + n;
        if (!PlainPut(span, ref c) || !PlainCall(span, ref c, Op.Tuple2)) return null;
        return new NpScalar(dtype, raw);
    }

    // The arguments' tuple opcode, its memo put, REDUCE and the result's memo put.
    private static bool PlainCall(ReadOnlySpan<byte> span, ref PlainCursor c, byte tupleOp)
    {
        if (Peek(span, ref c) != tupleOp) return false;
        c.Pos++;
        if (!PlainPut(span, ref c) || Peek(span, ref c) != Op.Reduce) return false;
        c.Pos++;
        return PlainPut(span, ref c);
    }
}
