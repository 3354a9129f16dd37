using System.Collections;
using System.Numerics;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

// The Python value model. A Python object read from a pickle becomes one of these .NET values:
//   None -> PyNone.Value            bool -> bool             int -> long, or BigInteger outside the long range
//   float -> double                 complex -> Complex       str -> string
//   bytes -> PyBytes                bytearray -> PyByteArray tuple -> PyTuple
//   list -> PyList                  dict -> PyDict (PyDefaultDict, PyOrderedDict)
//   set / frozenset -> PySet        numpy.ndarray -> NdArray numpy scalar -> NpScalar
//   numpy.dtype -> DType
// Dict keys and set members compare with Python's rules (PyEquality): 1 == 1.0 == True == np.uint64(1).
// A value may share objects between places and a list or dict may hold itself, as in Python; equality,
// hashing, PyRepr, PyCopy, TypedJson and the pickle writer all terminate on such values.

/// <summary>Python's <c>None</c>.</summary>
public sealed class PyNone
{
    /// <summary>The single instance.</summary>
    public static readonly PyNone Value = new();
    private PyNone() { }
    /// <inheritdoc/>
    public override string ToString() => "None";
}

/// <summary>Helpers for Python ints, which are unbounded: <see cref="long"/> when they fit, else <see cref="BigInteger"/>.</summary>
public static class PyInt
{
    /// <summary>The canonical representation of an integer value: a boxed long when it fits, else a BigInteger.</summary>
    public static object From(BigInteger value) => value >= long.MinValue && value <= long.MaxValue ? (object)(long)value : value;

    /// <summary>The canonical representation of an unsigned 64-bit value.</summary>
    public static object From(ulong value) => value <= long.MaxValue ? (object)(long)value : new BigInteger(value);

    /// <summary>The integer value of a Python int, bool or numpy integer/bool scalar; false for anything else.</summary>
    public static bool TryGetBigInteger(object? value, out BigInteger result)
    {
        switch (value)
        {
            case long l: result = l; return true;
            case int i: result = i; return true;
            case ulong u: result = u; return true;
            case BigInteger b: result = b; return true;
            case bool f: result = f ? 1 : 0; return true;
            case NpScalar s when s.DType.Kind is 'i' or 'u' or 'b':
                result = s.ToObject() switch { long l2 => l2, BigInteger b2 => b2, bool f2 => f2 ? 1 : 0, var other => throw new InvalidOperationException($"numpy scalar {s.DType.Str} decoded to {other.GetType().Name}") };
                return true;
            default: result = default; return false;
        }
    }

    /// <summary>The value as an unsigned 64-bit integer if it is an integer in [0, 2^64).</summary>
    public static bool TryGetUInt64(object? value, out ulong result)
    {
        if (value is long l && l >= 0) { result = (ulong)l; return true; }
        if (TryGetBigInteger(value, out var b) && b >= 0 && b <= ulong.MaxValue) { result = (ulong)b; return true; }
        result = 0;
        return false;
    }

    /// <summary>The value as a signed 64-bit integer if it is an integer in that range.</summary>
    public static bool TryGetInt64(object? value, out long result)
    {
        if (value is long l) { result = l; return true; }
        if (TryGetBigInteger(value, out var b) && b >= long.MinValue && b <= long.MaxValue) { result = (long)b; return true; }
        result = 0;
        return false;
    }
}

/// <summary>Python <c>bytes</c>: immutable, compared by content.</summary>
public sealed class PyBytes : IEquatable<PyBytes>, IPickleMarked
{
    private long _pickleMark;
    ref long IPickleMarked.PickleMark => ref _pickleMark;

    /// <summary>The empty bytes object.</summary>
    public static readonly PyBytes Empty = new(ReadOnlyMemory<byte>.Empty);

    /// <summary>The content (may be a slice of a larger buffer; never mutate it).</summary>
    public ReadOnlyMemory<byte> Data { get; }

    /// <summary>Wraps <paramref name="data"/> without copying.</summary>
    public PyBytes(ReadOnlyMemory<byte> data) => Data = data;

    /// <summary>Number of bytes.</summary>
    public int Length => Data.Length;

    /// <inheritdoc/>
    public bool Equals(PyBytes? other) => other is not null && Data.Span.SequenceEqual(other.Data.Span);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PyBytes b && Equals(b);
    /// <inheritdoc/>
    public override int GetHashCode() { var h = new HashCode(); h.AddBytes(Data.Span); return h.ToHashCode(); }
    /// <inheritdoc/>
    public override string ToString() => $"bytes[{Length}]";
}

/// <summary>Python <c>bytearray</c>: mutable bytes, compared by content (unhashable in Python).</summary>
public sealed class PyByteArray : IEquatable<PyByteArray>
{
    /// <summary>The content.</summary>
    public Memory<byte> Data { get; set; }

    /// <summary>Wraps <paramref name="data"/> without copying.</summary>
    public PyByteArray(Memory<byte> data) => Data = data;

    /// <inheritdoc/>
    public bool Equals(PyByteArray? other) => other is not null && Data.Span.SequenceEqual(other.Data.Span);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PyByteArray b && Equals(b);
    /// <inheritdoc/>
    public override int GetHashCode() => Data.Length;
    /// <inheritdoc/>
    public override string ToString() => $"bytearray[{Data.Length}]";
}

/// <summary>Python <c>tuple</c>: immutable sequence compared element-wise with Python equality.</summary>
public sealed class PyTuple : IReadOnlyList<object>, IEquatable<PyTuple>, IPickleMarked
{
    private long _pickleMark;
    ref long IPickleMarked.PickleMark => ref _pickleMark;

    private readonly object[] _items;

    /// <summary>The empty tuple.</summary>
    public static readonly PyTuple Empty = new([]);

    /// <summary>Creates a tuple of <paramref name="items"/> (the array is taken over, not copied).</summary>
    public PyTuple(params object[] items) => _items = items;

    /// <inheritdoc/>
    public object this[int index] => _items[index];
    /// <inheritdoc/>
    public int Count => _items.Length;
    /// <inheritdoc/>
    public IEnumerator<object> GetEnumerator() => ((IEnumerable<object>)_items).GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => _items.GetEnumerator();

    /// <summary>Replaces an item: only for the pickle reader, which puts an array built later in place of its placeholder.</summary>
    internal void ReplaceWhileLoading(int index, object value) => _items[index] = value;

    /// <inheritdoc/>
    public bool Equals(PyTuple? other) => other is not null && PyEquality.AreEqual(this, other);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PyTuple t && Equals(t);
    /// <inheritdoc/>
    public override int GetHashCode() => PyEquality.Comparer.GetHashCode(this);
    /// <inheritdoc/>
    public override string ToString() => PyRepr.Repr(this);
}

/// <summary>Python <c>list</c>.</summary>
public class PyList : List<object>, IPickleMarked
{
    private long _pickleMark;
    ref long IPickleMarked.PickleMark => ref _pickleMark;

    /// <summary>An empty list.</summary>
    public PyList() { }
    /// <summary>An empty list with room for <paramref name="capacity"/> items.</summary>
    public PyList(int capacity) : base(capacity) { }
    /// <summary>A list of <paramref name="items"/>.</summary>
    public PyList(IEnumerable<object> items) : base(items) { }
    /// <inheritdoc/>
    public override string ToString() => PyRepr.Repr(this);
}

/// <summary>Python <c>dict</c>: insertion-ordered, keys compared with Python equality.</summary>
public class PyDict : OrderedDictionary<object, object>, IPickleMarked
{
    private long _pickleMark;
    ref long IPickleMarked.PickleMark => ref _pickleMark;

    /// <summary>An empty dict.</summary>
    public PyDict() : base(PyEquality.Comparer) { }
    /// <summary>An empty dict with room for <paramref name="capacity"/> items.</summary>
    public PyDict(int capacity) : base(capacity, PyEquality.Comparer) { }
    /// <inheritdoc/>
    public override string ToString() => PyRepr.Repr(this);
}

/// <summary><c>collections.defaultdict</c>; the factory is kept by name (<c>int</c>, <c>list</c>, ...).</summary>
public sealed class PyDefaultDict : PyDict
{
    /// <summary>The name of the default factory as Python 3 spells it (<c>int</c>, <c>list</c>, <c>dict</c>, ...), or null for None.</summary>
    public string? DefaultFactory { get; set; }

    /// <summary>An empty defaultdict with the given factory.</summary>
    public PyDefaultDict(string? defaultFactory) => DefaultFactory = defaultFactory;

    /// <summary>The value the factory makes for a missing key (int -> 0, list -> [], dict -> {}, ...).</summary>
    /// <exception cref="KeyNotFoundException">No factory, or one this model cannot call.</exception>
    public object MakeDefault(object key) => DefaultFactory switch
    {
        "int" => 0L,
        "float" => 0.0,
        "list" => new PyList(),
        "dict" => new PyDict(),
        "set" => new PySet(),
        "str" => "",
        _ => throw new KeyNotFoundException($"key {PyRepr.Repr(key)} not found and defaultdict factory '{DefaultFactory ?? "None"}' cannot be called"),
    };
}

/// <summary><c>collections.OrderedDict</c>.</summary>
public sealed class PyOrderedDict : PyDict
{
}

/// <summary>Python <c>set</c> or <c>frozenset</c>, members compared with Python equality.</summary>
public sealed class PySet : HashSet<object>
{
    /// <summary>True for a <c>frozenset</c>.</summary>
    public bool IsFrozen { get; }

    /// <summary>An empty set (or frozenset).</summary>
    public PySet(bool frozen = false) : base(PyEquality.Comparer) => IsFrozen = frozen;

    /// <summary>A set of <paramref name="items"/>.</summary>
    public PySet(IEnumerable<object> items, bool frozen = false) : base(items, PyEquality.Comparer) => IsFrozen = frozen;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is PySet s && s.IsFrozen == IsFrozen && SetEquals(s);
    /// <inheritdoc/>
    public override int GetHashCode() => PyEquality.Comparer.GetHashCode(this);
    /// <inheritdoc/>
    public override string ToString() => PyRepr.Repr(this);
}

/// <summary>A numpy scalar (<c>np.uint64(5)</c>, <c>np.float32(0.5)</c>, ...): a dtype and its raw bytes in that dtype's byte order.</summary>
public sealed class NpScalar : IEquatable<NpScalar>, IPickleMarked
{
    private long _pickleMark;
    ref long IPickleMarked.PickleMark => ref _pickleMark;

    /// <summary>The scalar's dtype.</summary>
    public DType DType { get; }

    /// <summary>The raw value, <see cref="DType"/>.ItemSize bytes.</summary>
    public byte[] Raw { get; }

    /// <summary>The object of an object-dtype scalar; null otherwise.</summary>
    public object? ObjectValue { get; }

    /// <summary>Creates a scalar from its raw bytes.</summary>
    /// <exception cref="ArgumentException">The byte count does not match the dtype.</exception>
    public NpScalar(DType dtype, byte[] raw)
    {
        if (dtype.Kind != 'O' && raw.Length != dtype.ItemSize)
            throw new ArgumentException($"numpy scalar of dtype {dtype.Str} needs {dtype.ItemSize} bytes, got {raw.Length}");
        DType = dtype;
        Raw = raw;
    }

    /// <summary>Creates an object-dtype scalar.</summary>
    public NpScalar(DType dtype, object? value)
    {
        DType = dtype;
        Raw = [];
        ObjectValue = value;
    }

    /// <summary>A <c>numpy.uint64</c> scalar.</summary>
    public static NpScalar UInt64(ulong v) { var b = new byte[8]; System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, v); return new NpScalar(Arrays.DType.UInt64, b); }
    /// <summary>A <c>numpy.int64</c> scalar.</summary>
    public static NpScalar Int64(long v) { var b = new byte[8]; System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(b, v); return new NpScalar(Arrays.DType.Int64, b); }
    /// <summary>A <c>numpy.float64</c> scalar.</summary>
    public static NpScalar Float64(double v) { var b = new byte[8]; System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(b, v); return new NpScalar(Arrays.DType.Float64, b); }
    /// <summary>A <c>numpy.float32</c> scalar.</summary>
    public static NpScalar Float32(float v) { var b = new byte[4]; System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(b, v); return new NpScalar(Arrays.DType.Float32, b); }

    /// <summary>
    /// numpy's <c>.item()</c> in this model: bool, long or BigInteger (ints, canonical), double, Complex,
    /// PyBytes (<c>S</c>), string (<c>U</c>) or the object of an object scalar.
    /// </summary>
    public object ToObject()
    {
        if (DType.Kind == 'O') return ObjectValue ?? PyNone.Value;
        var raw = Raw;
        if (!DType.IsNativeByteOrder) { raw = (byte[])raw.Clone(); NdArray.SwapBytes(raw, DType.SwapUnit); }
        var v = ElementConvert.Read(DType.ToNative(), raw);
        return v switch
        {
            ulong u => PyInt.From(u),
            byte[] b when DType.Kind == 'S' => new PyBytes(TrimTrailingNul(b)),
            byte[] b => new PyBytes(b),
            _ => v,
        };
    }

    private static byte[] TrimTrailingNul(byte[] b)
    {
        int n = b.Length;
        while (n > 0 && b[n - 1] == 0) n--;
        return b[..n];
    }

    /// <inheritdoc/>
    public bool Equals(NpScalar? other) => other is not null && PyEquality.AreEqual(this, other);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is NpScalar s && Equals(s);
    /// <inheritdoc/>
    public override int GetHashCode() => PyEquality.Comparer.GetHashCode(this);
    /// <inheritdoc/>
    public override string ToString() => $"np.{DType.Str}({PyRepr.Repr(ToObject())})";
}
