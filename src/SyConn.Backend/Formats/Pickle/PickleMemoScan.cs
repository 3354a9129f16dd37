using System.Buffers.Binary;
using System.Numerics;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// The memo indices a pickle ever reads back (BINGET/LONG_BINGET), found by a quick pass over the opcodes
/// before the real run. A pickler memoizes every object it writes, but in a store file almost none of them
/// is fetched again (in a SyConn AttributeDict only dict keys, dtypes and globals are); with this filter
/// the reader keeps just the fetched ones, so the argument tuples, buffers and other temporaries of each
/// entry die young instead of staying reachable until the end of the load.
/// </summary>
/// <remarks>
/// The pass never throws: whenever the input is anything but the plain case (memo indices assigned in order
/// by MEMOIZE or by BINPUT/LONG_BINPUT counting up from 0, as CPython writes them; no text GET/PUT; valid
/// lengths; a reference only to an index already put), <see cref="Scan"/> returns null and the reader keeps
/// every memo entry as before, so all errors are raised by the real run with its messages.
/// Immutable after construction.
/// </remarks>
internal sealed class PickleMemoScan
{
    private const sbyte Unknown = -1;
    private const sbyte Len1 = 101;      // 1-byte length, then data
    private const sbyte Len4 = 104;      // uint32 length
    private const sbyte Len4Signed = 105; // int32 length (LONG4, BINSTRING)
    private const sbyte Len8 = 108;      // uint64 length
    private const sbyte OneLine = 110;   // text argument up to '\n'
    private const sbyte TwoLines = 111;  // GLOBAL, INST
    private const sbyte MemoizeOp = 120;
    private const sbyte PutOp = 121;
    private const sbyte LongPutOp = 122;
    private const sbyte GetOp = 123;
    private const sbyte LongGetOp = 124;
    private const sbyte StopOp = 125;

    private static readonly sbyte[] Table = MakeTable();

    private readonly ulong[] _bits;
    private readonly int[] _rank;

    private PickleMemoScan(ulong[] bits, int words)
    {
        _bits = bits;
        _rank = new int[words];
        int n = 0;
        for (int i = 0; i < words; i++)
        {
            _rank[i] = n;
            n += BitOperations.PopCount(bits[i]);
        }
        Count = n;
    }

    /// <summary>Number of memo indices that are read back.</summary>
    public int Count { get; }

    /// <summary>The dense slot of memo index <paramref name="index"/>, or -1 when it is never read back.</summary>
    public int Slot(long index)
    {
        long w = index >> 6;
        if ((ulong)w >= (ulong)_rank.Length) return -1;
        ulong word = _bits[w];
        ulong bit = 1UL << (int)(index & 63);
        if ((word & bit) == 0) return -1;
        return _rank[w] + BitOperations.PopCount(word & (bit - 1));
    }

    private static sbyte[] MakeTable()
    {
        var t = new sbyte[256];
        Array.Fill(t, Unknown);
        foreach (byte op in (ReadOnlySpan<byte>)[
                     Op.Mark, Op.Pop, Op.PopMark, Op.Dup, Op.None, Op.Reduce, Op.Append, Op.Build, Op.Dict, Op.EmptyDict,
                     Op.Appends, Op.List, Op.EmptyList, Op.Obj, Op.SetItem, Op.Tuple, Op.EmptyTuple, Op.SetItems, Op.NewObj,
                     Op.Tuple1, Op.Tuple2, Op.Tuple3, Op.NewTrue, Op.NewFalse, Op.EmptySet, Op.AddItems, Op.FrozenSet,
                     Op.NewObjEx, Op.StackGlobal, Op.BinPersId, Op.NextBuffer, Op.ReadOnlyBuffer])
            t[op] = 0;
        t[Op.BinInt1] = 1;
        t[Op.Proto] = 1;
        t[Op.Ext1] = 1;
        t[Op.BinInt2] = 2;
        t[Op.Ext2] = 2;
        t[Op.BinInt] = 4;
        t[Op.Ext4] = 4;
        t[Op.BinFloat] = 8;
        t[Op.Frame] = 8; // the frame's content is parsed as ordinary opcodes
        t[Op.Long1] = Len1;
        t[Op.ShortBinBytes] = Len1;
        t[Op.ShortBinString] = Len1;
        t[Op.ShortBinUnicode] = Len1;
        t[Op.BinBytes] = Len4;
        t[Op.BinUnicode] = Len4;
        t[Op.Long4] = Len4Signed;
        t[Op.BinString] = Len4Signed;
        t[Op.BinBytes8] = Len8;
        t[Op.BinUnicode8] = Len8;
        t[Op.ByteArray8] = Len8;
        foreach (byte op in (ReadOnlySpan<byte>)[Op.Float, Op.Int, Op.Long, Op.String, Op.Unicode, Op.PersId]) t[op] = OneLine;
        t[Op.Global] = TwoLines;
        t[Op.Inst] = TwoLines;
        t[Op.Memoize] = MemoizeOp;
        t[Op.BinPut] = PutOp;
        t[Op.LongBinPut] = LongPutOp;
        t[Op.BinGet] = GetOp;
        t[Op.LongBinGet] = LongGetOp;
        t[Op.Stop] = StopOp;
        // GET and PUT (text memo indices) stay Unknown: such pickles are read without the filter.
        return t;
    }

    /// <summary>Finds the memo indices read back, or returns null when the filter cannot be used (see the remarks).</summary>
    public static PickleMemoScan? Scan(ReadOnlySpan<byte> span, int maxMemoEntries) => ScanTo(span, maxMemoEntries, out _);

    /// <summary>
    /// True when <paramref name="span"/> is a pickle of the plain case (see the remarks) whose STOP is its last byte:
    /// every opcode known, every length within the input, every memo read of an index already put. Its run can still
    /// fail on what the opcodes say (a refused global, a bad array shape), never on how they are laid out.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> span, int maxMemoEntries) =>
        ScanTo(span, maxMemoEntries, out int end) is not null && end == span.Length;

    private static PickleMemoScan? ScanTo(ReadOnlySpan<byte> span, int maxMemoEntries, out int end)
    {
        end = -1;
        var table = Table;
        ulong[] bits = new ulong[16];
        long puts = 0;
        int pos = 0;
        int len = span.Length;
        while (pos < len)
        {
            byte op = span[pos++];
            int kind = table[op];
            if ((uint)kind <= 8)
            {
                pos += kind;
                continue;
            }
            long index;
            switch (kind)
            {
                case MemoizeOp:
                    puts++;
                    continue;
                case PutOp:
                    if (pos >= len || span[pos] != puts) return null;
                    pos++;
                    puts++;
                    continue;
                case LongPutOp:
                    if (pos > len - 4 || BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]) != puts) return null;
                    pos += 4;
                    puts++;
                    continue;
                case GetOp:
                    if (pos >= len) return null;
                    index = span[pos++];
                    break;
                case LongGetOp:
                    if (pos > len - 4) return null;
                    index = BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                    pos += 4;
                    break;
                case Len1:
                    if (pos >= len) return null;
                    pos += 1 + span[pos];
                    continue;
                case Len4:
                {
                    if (pos > len - 4) return null;
                    uint n = BinaryPrimitives.ReadUInt32LittleEndian(span[pos..]);
                    if (n > (uint)(len - pos - 4)) return null;
                    pos += 4 + (int)n;
                    continue;
                }
                case Len4Signed:
                {
                    if (pos > len - 4) return null;
                    int n = BinaryPrimitives.ReadInt32LittleEndian(span[pos..]);
                    if (n < 0 || n > len - pos - 4) return null;
                    pos += 4 + n;
                    continue;
                }
                case Len8:
                {
                    if (pos > len - 8) return null;
                    ulong n = BinaryPrimitives.ReadUInt64LittleEndian(span[pos..]);
                    if (n > (ulong)(len - pos - 8)) return null;
                    pos += 8 + (int)n;
                    continue;
                }
                case OneLine:
                case TwoLines:
                {
                    for (int lines = kind == OneLine ? 1 : 2; lines > 0; lines--)
                    {
                        int nl = span[pos..].IndexOf((byte)'\n');
                        if (nl < 0) return null;
                        pos += nl + 1;
                    }
                    continue;
                }
                case StopOp:
                    if (puts > maxMemoEntries) return null; // the run reports the limit
                    end = pos;
                    return new PickleMemoScan(bits, (int)Math.Min(bits.Length, (puts + 63) >> 6));
                default:
                    return null;
            }
            // A memo read: only an index already put (anything else is an error the run reports).
            if (index >= puts) return null;
            long w = index >> 6;
            if (w >= bits.Length) Array.Resize(ref bits, (int)Math.Max(w + 1, (long)bits.Length * 2));
            bits[w] |= 1UL << (int)(index & 63);
        }
        return null; // truncated: no STOP
    }
}
