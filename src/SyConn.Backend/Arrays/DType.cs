using System.Globalization;

namespace SyConn.Backend.Arrays;

/// <summary>
/// A numpy data type as numpy describes it with <c>dtype.str</c>: a byte-order character
/// (<c>'&lt;'</c>, <c>'&gt;'</c> or <c>'|'</c>), a kind character and a size.
/// </summary>
/// <remarks>
/// Numeric kinds (<c>b i u f c</c>) are fully supported by <see cref="NdArray"/>. Flexible and exotic
/// kinds (<c>S U V O M m</c>) are carried so that files holding them can be read and written back;
/// their pickled state is kept in <see cref="PickleState"/> when it carries more than the type string.
/// Instances are immutable and thread-safe.
/// </remarks>
public sealed class DType : IEquatable<DType>
{
    /// <summary>'&lt;' little-endian, '&gt;' big-endian, '|' not applicable.</summary>
    public char ByteOrder { get; }

    /// <summary>numpy kind: b (bool), i (signed), u (unsigned), f (float), c (complex), S (bytes), U (unicode), V (void/structured), O (object), M (datetime), m (timedelta).</summary>
    public char Kind { get; }

    /// <summary>Size of one element in bytes.</summary>
    public int ItemSize { get; }

    /// <summary>The unit suffix of datetime kinds, e.g. <c>[s]</c>; empty otherwise.</summary>
    public string Unit { get; }

    /// <summary>
    /// The pickled BUILD state of the dtype when it carries information beyond the type string
    /// (structured fields, sub-arrays, metadata), kept so that it can be written back unchanged; null otherwise.
    /// </summary>
    public object? PickleState { get; }

    /// <summary>numpy's <c>dtype.str</c>, e.g. <c>&lt;u8</c>, <c>|b1</c>, <c>&lt;U3</c>.</summary>
    public string Str { get; }

    /// <summary>numpy bool (<c>|b1</c>).</summary>
    public static readonly DType Bool = new('|', 'b', 1);
    /// <summary><c>|i1</c></summary>
    public static readonly DType Int8 = new('|', 'i', 1);
    /// <summary><c>|u1</c></summary>
    public static readonly DType UInt8 = new('|', 'u', 1);
    /// <summary><c>&lt;i2</c></summary>
    public static readonly DType Int16 = new('<', 'i', 2);
    /// <summary><c>&lt;u2</c></summary>
    public static readonly DType UInt16 = new('<', 'u', 2);
    /// <summary><c>&lt;i4</c></summary>
    public static readonly DType Int32 = new('<', 'i', 4);
    /// <summary><c>&lt;u4</c></summary>
    public static readonly DType UInt32 = new('<', 'u', 4);
    /// <summary><c>&lt;i8</c></summary>
    public static readonly DType Int64 = new('<', 'i', 8);
    /// <summary><c>&lt;u8</c></summary>
    public static readonly DType UInt64 = new('<', 'u', 8);
    /// <summary><c>&lt;f2</c></summary>
    public static readonly DType Float16 = new('<', 'f', 2);
    /// <summary><c>&lt;f4</c></summary>
    public static readonly DType Float32 = new('<', 'f', 4);
    /// <summary><c>&lt;f8</c></summary>
    public static readonly DType Float64 = new('<', 'f', 8);
    /// <summary><c>&lt;c8</c></summary>
    public static readonly DType Complex64 = new('<', 'c', 8);
    /// <summary><c>&lt;c16</c></summary>
    public static readonly DType Complex128 = new('<', 'c', 16);

    /// <summary>Creates a dtype. One-byte and byte-order-free kinds get '|' whatever is passed.</summary>
    public DType(char byteOrder, char kind, int itemSize, string unit = "", object? pickleState = null)
    {
        if ("biufcSUVOMm".IndexOf(kind) < 0)
            throw new ArgumentException($"unknown numpy dtype kind '{kind}'", nameof(kind));
        if (itemSize < 0)
            throw new ArgumentException($"negative item size {itemSize}", nameof(itemSize));
        if (byteOrder == '=') byteOrder = '<';
        if (byteOrder is not ('<' or '>' or '|'))
            throw new ArgumentException($"unknown byte order '{byteOrder}'", nameof(byteOrder));
        if (!HasByteOrder(kind, itemSize)) byteOrder = '|';
        else if (byteOrder == '|') byteOrder = '<';
        ByteOrder = byteOrder;
        Kind = kind;
        ItemSize = itemSize;
        Unit = unit ?? "";
        PickleState = pickleState;
        Str = ByteOrder + TypeCode;
    }

    private static bool HasByteOrder(char kind, int itemSize) => kind switch
    {
        'b' or 'S' or 'V' or 'O' => false,
        'U' or 'M' or 'm' => true,
        _ => itemSize > 1,
    };

    /// <summary>The type string without byte order as numpy writes it in <c>dtype.str</c> (<c>u8</c>, <c>U3</c>, <c>M8[s]</c>, <c>O</c>).</summary>
    public string TypeCode => Kind switch
    {
        'U' => "U" + (ItemSize / 4).ToString(CultureInfo.InvariantCulture),
        'O' => "O",
        _ => Kind + ItemSize.ToString(CultureInfo.InvariantCulture) + Unit,
    };

    /// <summary>The type string numpy's pickled dtype reduce uses (<c>u8</c>, <c>U3</c>, <c>O8</c>, <c>M8</c>), without unit or byte order.</summary>
    public string PickleTypeCode => Kind switch
    {
        'U' => "U" + (ItemSize / 4).ToString(CultureInfo.InvariantCulture),
        'O' => "O8",
        _ => Kind + ItemSize.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>numpy's name of the type (<c>uint64</c>, <c>float32</c>, <c>bool</c>, <c>str96</c>, ...), without byte order.</summary>
    public string Name => Kind switch
    {
        'b' => "bool",
        'i' => "int" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'u' => "uint" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'f' => "float" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'c' => "complex" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'U' => "str" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'S' => "bytes" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
        'O' => "object",
        'M' => "datetime64" + Unit,
        'm' => "timedelta64" + Unit,
        _ => "void" + (ItemSize * 8).ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>True for bool, integer, float and complex kinds.</summary>
    public bool IsNumeric => Kind is 'b' or 'i' or 'u' or 'f' or 'c';

    /// <summary>True for signed and unsigned integer kinds.</summary>
    public bool IsInteger => Kind is 'i' or 'u';

    /// <summary>True when the data is in this machine's byte order (little-endian) or has no byte order.</summary>
    public bool IsNativeByteOrder => ByteOrder != (BitConverter.IsLittleEndian ? '>' : '<');

    /// <summary>The same type in native (little-endian) byte order.</summary>
    public DType ToNative() => IsNativeByteOrder ? this : new DType(BitConverter.IsLittleEndian ? '<' : '>', Kind, ItemSize, Unit, PickleState);

    /// <summary>The same type with the given byte order.</summary>
    public DType WithByteOrder(char byteOrder) => new(byteOrder, Kind, ItemSize, Unit, PickleState);

    /// <summary>The size of one byte-swappable unit (complex numbers swap each half).</summary>
    internal int SwapUnit => Kind switch
    {
        'c' => ItemSize / 2,
        'U' => 4,
        'b' or 'S' or 'V' or 'O' => 1,
        _ => ItemSize,
    };

    /// <summary>
    /// Parses numpy's <c>dtype.str</c> (<c>&lt;u8</c>, <c>|b1</c>, <c>&gt;f4</c>, <c>&lt;U3</c>, <c>&lt;M8[s]</c>),
    /// a type code without byte order (<c>u8</c>, native order) or a numpy name (<c>uint64</c>, <c>float32</c>, <c>bool</c>).
    /// </summary>
    /// <exception cref="FormatException">The text is not a dtype numpy would print.</exception>
    public static DType Parse(string text)
    {
        if (TryParse(text, out var dt)) return dt;
        throw new FormatException($"'{text}' is not a numpy dtype string");
    }

    /// <summary>Tries <see cref="Parse"/>.</summary>
    public static bool TryParse(string? text, out DType dtype)
    {
        dtype = null!;
        if (string.IsNullOrEmpty(text)) return false;
        var named = text switch
        {
            "bool" or "bool_" or "?" => Bool,
            "int8" => Int8, "uint8" => UInt8, "int16" => Int16, "uint16" => UInt16,
            "int32" => Int32, "uint32" => UInt32, "int64" => Int64, "uint64" => UInt64,
            "float16" => Float16, "float32" => Float32, "float64" or "float" => Float64,
            "complex64" => Complex64, "complex128" or "complex" => Complex128,
            _ => null,
        };
        if (named is not null) { dtype = named; return true; }
        char order = '<';
        var s = text.AsSpan();
        if (s[0] is '<' or '>' or '|' or '=')
        {
            order = s[0] == '=' ? '<' : s[0];
            s = s[1..];
        }
        if (s.Length == 0) return false;
        char kind = s[0];
        if (kind == '?') kind = 'b';
        s = s[1..];
        string unit = "";
        int bracket = s.IndexOf('[');
        if (bracket >= 0)
        {
            if (kind is not ('M' or 'm') || s[^1] != ']') return false;
            unit = s[bracket..].ToString();
            s = s[..bracket];
        }
        int count;
        if (s.Length == 0)
        {
            if (kind == 'O') count = 8;
            else if (kind == 'b') count = 1;
            else return false;
        }
        else if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out count)) return false;
        if ("biufcSUVOMm".IndexOf(kind) < 0) return false;
        if (kind is 'i' or 'u' && count is not (1 or 2 or 4 or 8)) return false;
        if (kind == 'f' && count is not (2 or 4 or 8 or 16)) return false;
        if (kind == 'c' && count is not (8 or 16 or 32)) return false;
        if (kind == 'b' && count != 1) return false;
        if (kind is 'M' or 'm' && count != 8) return false;
        int itemSize = kind == 'U' ? checked(count * 4) : count;
        dtype = Create(order, kind, itemSize, unit);
        return true;
    }

    /// <summary>
    /// A dtype as the constructor makes it, but the shared instance (<see cref="Int64"/>, <see cref="Float32"/>, ...) when
    /// it is one of those: a parsed type string is read in every dtype of every pickle.
    /// </summary>
    internal static DType Create(char byteOrder, char kind, int itemSize, string unit = "", object? pickleState = null)
    {
        if (unit.Length == 0 && pickleState is null)
        {
            var known = (byteOrder, kind, itemSize) switch
            {
                ('|', 'b', 1) => Bool,
                ('|', 'i', 1) => Int8,
                ('|', 'u', 1) => UInt8,
                ('<', 'i', 2) => Int16,
                ('<', 'u', 2) => UInt16,
                ('<', 'i', 4) => Int32,
                ('<', 'u', 4) => UInt32,
                ('<', 'i', 8) => Int64,
                ('<', 'u', 8) => UInt64,
                ('<', 'f', 2) => Float16,
                ('<', 'f', 4) => Float32,
                ('<', 'f', 8) => Float64,
                ('<', 'c', 8) => Complex64,
                ('<', 'c', 16) => Complex128,
                _ => null,
            };
            if (known is not null) return known;
        }
        return new DType(byteOrder, kind, itemSize, unit, pickleState);
    }

    /// <summary>The dtype of a .NET element type (native byte order).</summary>
    public static DType Of<T>() where T : unmanaged
    {
        var t = typeof(T);
        if (t == typeof(bool)) return Bool;
        if (t == typeof(sbyte)) return Int8;
        if (t == typeof(byte)) return UInt8;
        if (t == typeof(short)) return Int16;
        if (t == typeof(ushort)) return UInt16;
        if (t == typeof(int)) return Int32;
        if (t == typeof(uint)) return UInt32;
        if (t == typeof(long)) return Int64;
        if (t == typeof(ulong)) return UInt64;
        if (t == typeof(Half)) return Float16;
        if (t == typeof(float)) return Float32;
        if (t == typeof(double)) return Float64;
        if (t == typeof(System.Numerics.Complex)) return Complex128;
        throw new ArgumentException($"{t.Name} has no numpy dtype");
    }

    /// <summary>True if <typeparamref name="T"/> is the .NET type of this dtype's elements (ignoring byte order).</summary>
    public bool Matches<T>() where T : unmanaged
    {
        var t = typeof(T);
        return (Kind, ItemSize) switch
        {
            ('b', 1) => t == typeof(bool) || t == typeof(byte),
            ('i', 1) => t == typeof(sbyte),
            ('u', 1) => t == typeof(byte),
            ('i', 2) => t == typeof(short),
            ('u', 2) => t == typeof(ushort),
            ('i', 4) => t == typeof(int),
            ('u', 4) => t == typeof(uint),
            ('i', 8) => t == typeof(long),
            ('u', 8) => t == typeof(ulong),
            ('f', 2) => t == typeof(Half),
            ('f', 4) => t == typeof(float),
            ('f', 8) => t == typeof(double),
            ('c', 16) => t == typeof(System.Numerics.Complex),
            _ => false,
        };
    }

    /// <inheritdoc/>
    public bool Equals(DType? other) => other is not null && other.Str == Str && Equals(PickleState is null, other.PickleState is null);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DType d && Equals(d);

    /// <inheritdoc/>
    public override int GetHashCode() => Str.GetHashCode(StringComparison.Ordinal);

    /// <summary>numpy's <c>dtype.str</c>.</summary>
    public override string ToString() => Str;

    /// <summary>Equality by value.</summary>
    public static bool operator ==(DType? a, DType? b) => a is null ? b is null : a.Equals(b);

    /// <summary>Inequality by value.</summary>
    public static bool operator !=(DType? a, DType? b) => !(a == b);
}
