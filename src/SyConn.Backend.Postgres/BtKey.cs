using System.Buffers;
using System.Buffers.Binary;
using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Postgres;

/// <summary>
/// The canonical bytes of a store key under Python's key equality, the primary key of a BT entry: keys that are
/// equal as Python dict keys (<c>5</c>, <c>np.uint64(5)</c>, <c>5.0</c>, <c>True</c> for 1) get the same bytes, and
/// different keys get different bytes. Pickled bytes are not canonical (they differ by protocol and type), so the
/// pickled key is kept beside it.
/// </summary>
/// <remarks>
/// Layout: a tag byte, then the payload.
/// <list type="bullet">
/// <item><c>i</c>: an int (bool, numpy integer, or float of integral value), big-endian two's complement, minimal length.</item>
/// <item><c>f</c>: a float that is not an integer (inf included), 8 bytes big-endian IEEE 754.</item>
/// <item><c>c</c>: a complex with non-zero imaginary part, real and imaginary as <c>f</c>'s payload.</item>
/// <item><c>s</c>: a str, WTF-8 (UTF-8 that also carries lone surrogates, which Python strs may hold).</item>
/// <item><c>b</c>: bytes, as they are.</item>
/// <item><c>n</c>: None.</item>
/// <item><c>t</c>: a tuple: per item its length (LEB128) and its encoding.</item>
/// <item><c>z</c>: a frozenset: as a tuple of its items' encodings in byte order (sets are unordered).</item>
/// </list>
/// A NaN key is refused: Python finds a NaN key only by identity, which no database row can keep.
/// Thread-safe (stateless).
/// </remarks>
public static class BtKey
{
    private const int MaxDepth = 100;

    /// <summary>The canonical bytes of <paramref name="key"/>.</summary>
    /// <exception cref="ArgumentException">The value cannot be a store key (a NaN, an unhashable value).</exception>
    public static byte[] Encode(object key)
    {
        var w = new ArrayBufferWriter<byte>(16);
        Write(w, key, 0);
        return w.WrittenSpan.ToArray();
    }

    private static void Write(ArrayBufferWriter<byte> w, object? key, int depth)
    {
        if (depth > MaxDepth) throw new ArgumentException($"a key nested deeper than {MaxDepth} levels cannot be stored");
        key ??= PyNone.Value;
        if (key is NpScalar s && s.DType.Kind != 'V') key = s.ToObject();
        if (PyInt.TryGetBigInteger(key, out var integer))
        {
            WriteInt(w, integer);
            return;
        }
        switch (key)
        {
            case double d: WriteFloat(w, d); return;
            case float f: WriteFloat(w, f); return;
            case Complex c when c.Imaginary == 0: WriteFloat(w, c.Real); return;
            case Complex c:
                if (double.IsNaN(c.Real) || double.IsNaN(c.Imaginary)) throw NaN();
                w.Write("c"u8);
                WriteDouble(w, c.Real);
                WriteDouble(w, c.Imaginary);
                return;
            case string str: w.Write("s"u8); WriteWtf8(w, str); return;
            case PyBytes b: w.Write("b"u8); w.Write(b.Data.Span); return;
            case PyNone: w.Write("n"u8); return;
            case PyTuple t:
                w.Write("t"u8);
                foreach (var item in t) WriteItem(w, Encode(item, depth + 1));
                return;
            case PySet { IsFrozen: true } set:
                var items = new List<byte[]>(set.Count);
                foreach (var item in set) items.Add(Encode(item, depth + 1));
                items.Sort((a, b) => a.AsSpan().SequenceCompareTo(b));
                w.Write("z"u8);
                foreach (var item in items) WriteItem(w, item);
                return;
            default:
                throw new ArgumentException($"a {key.GetType().Name} cannot be a store key (use an int, str, bytes, float, None or a tuple of those)");
        }
    }

    private static byte[] Encode(object? item, int depth)
    {
        var w = new ArrayBufferWriter<byte>(16);
        Write(w, item, depth);
        return w.WrittenSpan.ToArray();
    }

    private static void WriteItem(ArrayBufferWriter<byte> w, byte[] item)
    {
        uint n = (uint)item.Length;
        while (n >= 0x80)
        {
            w.Write([(byte)(n | 0x80)]);
            n >>= 7;
        }
        w.Write([(byte)n]);
        w.Write(item);
    }

    private static void WriteInt(ArrayBufferWriter<byte> w, BigInteger v)
    {
        w.Write("i"u8);
        int n = v.GetByteCount(isUnsigned: false);
        var span = w.GetSpan(n);
        v.TryWriteBytes(span, out int written, isUnsigned: false, isBigEndian: true);
        w.Advance(written);
    }

    private static void WriteFloat(ArrayBufferWriter<byte> w, double d)
    {
        if (double.IsNaN(d)) throw NaN();
        if (!double.IsInfinity(d) && Math.Truncate(d) == d)
        {
            WriteInt(w, new BigInteger(d)); // 5.0 == 5 and -0.0 == 0 as dict keys
            return;
        }
        w.Write("f"u8);
        WriteDouble(w, d);
    }

    private static void WriteDouble(ArrayBufferWriter<byte> w, double d)
    {
        if (d == 0) d = 0; // -0.0 == 0.0
        BinaryPrimitives.WriteDoubleBigEndian(w.GetSpan(8), d);
        w.Advance(8);
    }

    private static void WriteWtf8(ArrayBufferWriter<byte> w, string s)
    {
        var buf = w.GetSpan(s.Length * 3);
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            int c = s[i];
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                c = char.ConvertToUtf32(s[i], s[i + 1]);
                i++;
            }
            if (c < 0x80) buf[n++] = (byte)c;
            else if (c < 0x800)
            {
                buf[n++] = (byte)(0xC0 | (c >> 6));
                buf[n++] = (byte)(0x80 | (c & 0x3F));
            }
            else if (c < 0x10000)
            {
                buf[n++] = (byte)(0xE0 | (c >> 12));
                buf[n++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (byte)(0x80 | (c & 0x3F));
            }
            else
            {
                buf[n++] = (byte)(0xF0 | (c >> 18));
                buf[n++] = (byte)(0x80 | ((c >> 12) & 0x3F));
                buf[n++] = (byte)(0x80 | ((c >> 6) & 0x3F));
                buf[n++] = (byte)(0x80 | (c & 0x3F));
            }
        }
        w.Advance(n);
    }

    private static ArgumentException NaN() => new("a NaN cannot be a store key (Python finds NaN keys only by identity)");
}
