using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// numpy's <c>.npy</c> format (formats.md §7): reads versions 1.0, 2.0 and 3.0; writes exactly what
/// numpy 1.24's <c>np.save</c> writes (same header text, growth spaces and padding, version 1.0 unless the
/// header needs more).
/// </summary>
/// <remarks>
/// Simple dtypes only: structured dtypes and object arrays (which need pickle, refused like numpy's
/// <c>allow_pickle=False</c>) raise <see cref="InvalidDataException"/> on read and
/// <see cref="ArgumentException"/> on write. Arrays keep the byte order of the file and its memory order
/// (<see cref="ArrayOrder.F"/> when <c>fortran_order</c> is true). All members are thread-safe. A pure codec
/// on spans and streams: files are read and written by <c>SyConn.Backend.Storage.NpyFile</c>.
/// </remarks>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];
    private const int Align = 64;
    private const int GrowthAxisMaxDigits = 21;

    /// <summary>Reads an .npy image; the data is copied.</summary>
    /// <param name="data">The whole file. Bytes after the array data are ignored, as numpy does.</param>
    /// <param name="name">A name for error messages (file or member).</param>
    /// <exception cref="InvalidDataException">The input is not a valid .npy file of a supported dtype.</exception>
    public static NdArray Read(ReadOnlySpan<byte> data, string? name = null)
    {
        var header = ParsePreamble(data, name, out int dataOffset);
        CheckLimit(header, ReadLimits.Default, name);
        long need = header.DataLength;
        if (data.Length - dataOffset < need)
            throw Corrupt($"array data is truncated: {data.Length - dataOffset} bytes after the header at offset {dataOffset}, {need} needed", name);
        byte[] bytes = data.Slice(dataOffset, (int)need).ToArray();
        return header.Create(bytes);
    }

    /// <summary>Reads an .npy image held in <paramref name="data"/>; the array shares the buffer (no copy).</summary>
    /// <param name="data">The whole file. Bytes after the array data are ignored, as numpy does.</param>
    /// <param name="name">A name for error messages (file or member).</param>
    /// <exception cref="InvalidDataException">The input is not a valid .npy file of a supported dtype.</exception>
    public static NdArray Read(byte[] data, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        return ReadShared(data, name, ReadLimits.Default);
    }

    /// <summary>As <see cref="Read(byte[], string)"/> (the array shares <paramref name="data"/>) within <paramref name="limits"/>.</summary>
    internal static NdArray ReadShared(byte[] data, string? name, ReadLimits limits)
    {
        var header = ParsePreamble(data, name, out int dataOffset);
        CheckLimit(header, limits, name);
        long need = header.DataLength;
        if (data.Length - dataOffset < need)
            throw Corrupt($"array data is truncated: {data.Length - dataOffset} bytes after the header at offset {dataOffset}, {need} needed", name);
        return header.Create(data.AsMemory(dataOffset, (int)need));
    }

    /// <summary>Reads one .npy image from <paramref name="stream"/>, consuming the header and exactly the array data.</summary>
    /// <param name="stream">A readable stream positioned at the magic string.</param>
    /// <param name="name">A name for error messages (file or member).</param>
    /// <exception cref="InvalidDataException">The input is not a valid .npy file of a supported dtype, or it ends early.</exception>
    public static NdArray Read(Stream stream, string? name = null) => Read(stream, name, null, -1);

    /// <summary>Reads one .npy image from <paramref name="stream"/> within <paramref name="limits"/>.</summary>
    /// <param name="stream">A readable stream positioned at the magic string.</param>
    /// <param name="name">A name for error messages (file or member).</param>
    /// <param name="limits">The largest array allowed (<see cref="ReadLimits.MaxArrayBytes"/>); null for <see cref="ReadLimits.Default"/>.</param>
    /// <exception cref="InvalidDataException">The input is not a valid .npy file of a supported dtype, it ends early, or the array exceeds the limit.</exception>
    public static NdArray Read(Stream stream, string? name, ReadLimits? limits) => Read(stream, name, limits, -1);

    /// <summary>As <see cref="Read(Stream, string, ReadLimits)"/>; <paramref name="available"/> (when not negative) is the
    /// number of bytes the stream holds, so that a header declaring more data is refused before allocating.</summary>
    internal static NdArray Read(Stream stream, string? name, ReadLimits? limits, long available)
    {
        ArgumentNullException.ThrowIfNull(stream);
        limits ??= ReadLimits.Default;
        Span<byte> pre = stackalloc byte[12];
        ReadExact(stream, pre[..8], name, "the magic string and version");
        CheckMagic(pre, name);
        int major = pre[6];
        int lenBytes = major == 1 ? 2 : 4;
        ReadExact(stream, pre.Slice(8, lenBytes), name, "the header length");
        long hlen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(pre[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(pre[8..]);
        if (hlen > 100_000_000)
            throw Corrupt($"header length {hlen} is implausibly large", name);
        if (available >= 0 && hlen > available - 8 - lenBytes)
            throw Corrupt($"header length {hlen} at offset 8 runs past the end of the {available}-byte input", name);
        var headerBytes = new byte[hlen];
        ReadExact(stream, headerBytes, name, "the header");
        var header = ParseHeader(headerBytes, major, name);
        long need = header.DataLength;
        CheckLimit(header, limits, name);
        if (available >= 0 && need > available - 8 - lenBytes - hlen)
            throw Corrupt($"array data is truncated: {available - 8 - lenBytes - hlen} bytes after the header at offset {8 + lenBytes + hlen}, {need} needed", name);
        if (need > Array.MaxLength)
            throw Corrupt($"array data of {need} bytes does not fit in one .NET array", name);
        byte[] bytes = need == 0 ? [] : GC.AllocateUninitializedArray<byte>((int)need);
        ReadExact(stream, bytes, name, "the array data");
        return header.Create(bytes);
    }

    /// <summary>Writes <paramref name="array"/> as numpy 1.24's <c>np.save</c> would (byte for byte).</summary>
    /// <exception cref="ArgumentException">The array is an object array or has a dtype numpy cannot describe by a simple type string.</exception>
    public static void Write(Stream stream, NdArray array)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var (header, fortran) = BuildHeader(array);
        stream.Write(header);
        // Data in the order the header declares: the memory order when F-contiguous only, C otherwise.
        if (fortran || array.IsCContiguous) stream.Write(array.Data.Span);
        else stream.Write(array.ToCBytes());
    }

    /// <summary>The bytes <see cref="Write"/> would write.</summary>
    /// <exception cref="ArgumentException">The array is an object array or has an unsupported dtype.</exception>
    public static byte[] ToBytes(NdArray array)
    {
        var (header, fortran) = BuildHeader(array);
        var result = GC.AllocateUninitializedArray<byte>(checked(header.Length + (int)array.NBytes));
        header.CopyTo(result, 0);
        if (fortran || array.IsCContiguous) array.Data.Span.CopyTo(result.AsSpan(header.Length));
        else array.ToCBytes().CopyTo(result, header.Length);
        return result;
    }

    /// <summary>The header numpy would write for <paramref name="array"/> (magic, version, length, dict text, padding).</summary>
    internal static (byte[] Header, bool Fortran) BuildHeader(NdArray array)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Objects is not null || array.DType.Kind == 'O')
            throw new ArgumentException("object arrays need pickle inside .npy; not supported", nameof(array));
        if (array.DType.PickleState is not null && array.DType.Kind == 'V')
            throw new ArgumentException($"structured dtype {array.DType.Str} is not supported in .npy", nameof(array));
        bool fortran = !array.IsCContiguous && array.IsFContiguous;
        var shape = array.Shape;
        var sb = new StringBuilder();
        sb.Append("{'descr': '").Append(array.DType.Str).Append("', 'fortran_order': ").Append(fortran ? "True" : "False").Append(", 'shape': (");
        for (int i = 0; i < shape.Length; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(shape[i].ToString(CultureInfo.InvariantCulture));
        }
        if (shape.Length == 1) sb.Append(',');
        sb.Append("), }");
        if (shape.Length > 0)
        {
            long growth = shape[fortran ? shape.Length - 1 : 0];
            sb.Append(' ', Math.Max(0, GrowthAxisMaxDigits - growth.ToString(CultureInfo.InvariantCulture).Length));
        }
        string text = sb.ToString();
        bool latin1 = text.All(c => c <= '\u00ff');
        byte[] body = latin1 ? Encoding.Latin1.GetBytes(text) : Encoding.UTF8.GetBytes(text);
        int hlen = body.Length + 1;
        int major;
        int lenField;
        if (!latin1) { major = 3; lenField = 4; }
        else
        {
            major = 1; lenField = 2;
            if (hlen + Pad(6 + 2 + lenField, hlen) > ushort.MaxValue) { major = 2; lenField = 4; }
        }
        int prefix = 8 + lenField;
        int padlen = Pad(prefix, hlen);
        var header = new byte[prefix + hlen + padlen];
        Magic.CopyTo(header, 0);
        header[6] = (byte)major;
        header[7] = 0;
        if (lenField == 2) BinaryPrimitives.WriteUInt16LittleEndian(header.AsSpan(8), (ushort)(hlen + padlen));
        else BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), (uint)(hlen + padlen));
        body.CopyTo(header, prefix);
        header.AsSpan(prefix + body.Length, padlen).Fill((byte)' ');
        header[^1] = (byte)'\n';
        return (header, fortran);
    }

    // numpy: padlen = ARRAY_ALIGN - ((MAGIC_LEN + len_field + hlen) % ARRAY_ALIGN), so 1..64 spaces.
    private static int Pad(int prefix, int hlen) => Align - ((prefix + hlen) % Align);

    private static void CheckMagic(ReadOnlySpan<byte> pre, string? name)
    {
        if (!pre[..6].SequenceEqual(Magic))
            throw Corrupt($"not an .npy file: magic string is {Convert.ToHexStringLower(pre[..6])}, expected 934e554d5059 (\\x93NUMPY)", name);
        int major = pre[6], minor = pre[7];
        if (major is not (1 or 2 or 3) || minor != 0)
            throw Corrupt($"unsupported .npy format version {major}.{minor} (1.0, 2.0 and 3.0 are known)", name);
    }

    private static void CheckLimit(Header header, ReadLimits limits, string? name)
    {
        if (header.DataLength > limits.MaxArrayBytes)
            throw Corrupt($"header (shape ({string.Join(", ", header.Shape)}) of {header.DType.Str}): " + ReadLimits.Exceeds("an array", header.DataLength, limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)), name);
    }

    private static Header ParsePreamble(ReadOnlySpan<byte> data, string? name, out int dataOffset)
    {
        if (data.Length < 10)
            throw Corrupt($"file of {data.Length} bytes is too short for an .npy header", name);
        CheckMagic(data, name);
        int major = data[6];
        int prefix = major == 1 ? 10 : 12;
        if (data.Length < prefix)
            throw Corrupt($"file of {data.Length} bytes is too short for a version {major}.0 header", name);
        long hlen = major == 1 ? BinaryPrimitives.ReadUInt16LittleEndian(data[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (hlen > data.Length - prefix)
            throw Corrupt($"header length {hlen} at offset 8 runs past the end of the {data.Length}-byte input", name);
        dataOffset = prefix + (int)hlen;
        return ParseHeader(data.Slice(prefix, (int)hlen), major, name);
    }

    private static void ReadExact(Stream stream, Span<byte> buffer, string? name, string what)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0)
                throw Corrupt($"input ends after {total} of {buffer.Length} bytes of {what}", name);
            total += n;
        }
    }

    private static Header ParseHeader(ReadOnlySpan<byte> bytes, int major, string? name)
    {
        string text;
        try
        {
            text = major == 3 ? new UTF8Encoding(false, true).GetString(bytes) : Encoding.Latin1.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            throw Corrupt($"header is not valid UTF-8: {e.Message}", name);
        }
        var parser = new LiteralParser(text, name);
        object? value = parser.ParseTop();
        if (value is not List<KeyValuePair<object?, object?>> dict)
            throw Corrupt($"header is not a Python dict literal: {Trim(text)}", name);
        string? descrText = null;
        object? descr = null, fortran = null, shape = null;
        var seen = new HashSet<string>();
        foreach (var (k, v) in dict)
        {
            if (k is not string key)
                throw Corrupt($"header has a non-string key: {Trim(text)}", name);
            seen.Add(key);
            switch (key)
            {
                case "descr": descr = v; break;
                case "fortran_order": fortran = v; break;
                case "shape": shape = v; break;
                default: throw Corrupt($"header has the unexpected key '{key}' (expected descr, fortran_order, shape): {Trim(text)}", name);
            }
        }
        if (seen.Count != 3)
            throw Corrupt($"header lacks {string.Join(", ", new[] { "descr", "fortran_order", "shape" }.Where(k => !seen.Contains(k)))}: {Trim(text)}", name);
        if (descr is List<object?>)
            throw Corrupt("structured dtypes not supported (descr is a list of fields)", name);
        descrText = descr as string ?? throw Corrupt($"'descr' is not a string: {Trim(text)}", name);
        if (!DType.TryParse(descrText, out var dtype))
            throw Corrupt($"'descr' {descrText} is not a numpy type string", name);
        if (dtype.Kind == 'O')
            throw Corrupt("object arrays hold a pickle; refused as numpy does with allow_pickle=False", name);
        if (fortran is not bool isFortran)
            throw Corrupt($"'fortran_order' is not a bool: {Trim(text)}", name);
        if (shape is not List<object?> { } dims || parser.LastTupleWasList(shape))
            throw Corrupt($"'shape' is not a tuple: {Trim(text)}", name);
        var shapeArr = new long[dims.Count];
        for (int i = 0; i < dims.Count; i++)
        {
            if (dims[i] is not long d || d < 0)
                throw Corrupt($"'shape' entry {i} is not a non-negative integer: {Trim(text)}", name);
            shapeArr[i] = d;
        }
        long elements = 1;
        try
        {
            foreach (var d in shapeArr) elements = checked(elements * d);
            long nbytes = checked(elements * dtype.ItemSize);
            return new Header(dtype, shapeArr, isFortran ? ArrayOrder.F : ArrayOrder.C, nbytes, name);
        }
        catch (OverflowException)
        {
            throw Corrupt($"shape ({string.Join(", ", shapeArr)}) of {dtype.Str} overflows", name);
        }
    }

    private static string Trim(string s) => s.Length > 200 ? s[..200] + "..." : s.TrimEnd();

    private static InvalidDataException Corrupt(string what, string? name) =>
        new(string.IsNullOrEmpty(name) ? $".npy: {what}" : $".npy {name}: {what}");

    private sealed record Header(DType DType, long[] Shape, ArrayOrder Order, long DataLength, string? Name)
    {
        public NdArray Create(Memory<byte> data)
        {
            if (DataLength > Array.MaxLength)
                throw Corrupt($"array data of {DataLength} bytes does not fit in one .NET array", Name);
            return new NdArray(DType, Shape, data, Order);
        }
    }

    /// <summary>
    /// A parser for the subset of Python literals numpy headers use: dicts, tuples, lists, strings,
    /// integers (with Python 2's L suffix), True/False/None. Dicts come back as key/value lists, tuples
    /// and lists as <see cref="List{T}"/> (tuples remembered separately).
    /// </summary>
    private sealed class LiteralParser(string text, string? name)
    {
        private int _pos;
        private readonly HashSet<object> _lists = new(ReferenceEqualityComparer.Instance);
        private int _depth;

        public bool LastTupleWasList(object value) => _lists.Contains(value);

        public object? ParseTop()
        {
            var v = ParseValue();
            SkipSpace();
            if (_pos != text.Length)
                throw Error($"unexpected text after the literal at position {_pos}");
            return v;
        }

        private InvalidDataException Error(string what) => Corrupt($"header literal: {what}: {Trim(text)}", name);

        private void SkipSpace()
        {
            while (_pos < text.Length && text[_pos] is ' ' or '\t' or '\n' or '\r' or '\f' or '\v') _pos++;
        }

        private char Peek()
        {
            SkipSpace();
            return _pos < text.Length ? text[_pos] : '\0';
        }

        private object? ParseValue()
        {
            if (++_depth > 32) throw Error("nesting too deep");
            try
            {
                char c = Peek();
                switch (c)
                {
                    case '{': return ParseDict();
                    case '(': return ParseSeq(')', tuple: true);
                    case '[': return ParseSeq(']', tuple: false);
                    case '\'' or '"': return ParseString();
                    case '\0': throw Error("unexpected end");
                }
                if (c == '-' || c == '+' || char.IsAsciiDigit(c)) return ParseInt();
                if (char.IsAsciiLetter(c))
                {
                    int start = _pos;
                    while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] == '_')) _pos++;
                    string word = text[start.._pos];
                    return word switch
                    {
                        "True" => true,
                        "False" => false,
                        "None" => null,
                        _ => throw Error($"unsupported name '{word}'"),
                    };
                }
                throw Error($"unexpected character '{c}' at position {_pos}");
            }
            finally { _depth--; }
        }

        private List<KeyValuePair<object?, object?>> ParseDict()
        {
            _pos++;
            var items = new List<KeyValuePair<object?, object?>>();
            while (true)
            {
                if (Peek() == '}') { _pos++; return items; }
                var key = ParseValue();
                if (Peek() != ':') throw Error($"expected ':' at position {_pos}");
                _pos++;
                var value = ParseValue();
                items.Add(new(key, value));
                char c = Peek();
                if (c == ',') { _pos++; continue; }
                if (c == '}') { _pos++; return items; }
                throw Error($"expected ',' or '}}' at position {_pos}");
            }
        }

        private object? ParseSeq(char close, bool tuple)
        {
            _pos++;
            var items = new List<object?>();
            if (!tuple) _lists.Add(items);
            bool sawComma = false;
            while (true)
            {
                if (Peek() == close) { _pos++; break; }
                items.Add(ParseValue());
                char c = Peek();
                if (c == ',') { _pos++; sawComma = true; continue; }
                if (c == close) { _pos++; break; }
                throw Error($"expected ',' or '{close}' at position {_pos}");
            }
            if (tuple && items.Count == 1 && !sawComma)
                return items[0];
            return items;
        }

        private long ParseInt()
        {
            int start = _pos;
            if (text[_pos] is '-' or '+') _pos++;
            while (_pos < text.Length && (char.IsAsciiDigit(text[_pos]) || text[_pos] == '_')) _pos++;
            string digits = text[start.._pos].Replace("_", "", StringComparison.Ordinal);
            if (_pos < text.Length && text[_pos] is 'L' or 'l') _pos++;
            if (!long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
                throw Error($"integer '{digits}' is out of range");
            return v;
        }

        private string ParseString()
        {
            char quote = text[_pos++];
            var sb = new StringBuilder();
            while (true)
            {
                if (_pos >= text.Length) throw Error("unterminated string");
                char c = text[_pos++];
                if (c == quote) return sb.ToString();
                if (c != '\\') { sb.Append(c); continue; }
                if (_pos >= text.Length) throw Error("unterminated escape");
                char e = text[_pos++];
                switch (e)
                {
                    case '\\': sb.Append('\\'); break;
                    case '\'': sb.Append('\''); break;
                    case '"': sb.Append('"'); break;
                    case 'n': sb.Append('\n'); break;
                    case 't': sb.Append('\t'); break;
                    case 'r': sb.Append('\r'); break;
                    case '0': sb.Append('\0'); break;
                    case 'x': sb.Append(Hex(2)); break;
                    case 'u': sb.Append(Hex(4)); break;
                    case 'U': sb.Append(char.ConvertFromUtf32(HexValue(8))); break;
                    default: sb.Append('\\').Append(e); break;
                }
            }
        }

        private char Hex(int n) => (char)HexValue(n);

        private int HexValue(int n)
        {
            if (_pos + n > text.Length || !int.TryParse(text.AsSpan(_pos, n), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int v))
                throw Error($"bad escape at position {_pos}");
            _pos += n;
            return v;
        }
    }
}
