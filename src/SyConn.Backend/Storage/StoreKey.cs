using System.Globalization;
using System.Numerics;
using SyConn.Backend.Python;

namespace SyConn.Backend.Storage;

/// <summary>
/// The key of a store entry: a Python int of any size (object IDs are usually uint64), a str, or a
/// tuple of those. Numpy integer scalars, which SyConn often uses as keys, are the same key as the
/// int of equal value (as in Python) and are normalised to it.
/// </summary>
/// <remarks>
/// Text form (the CLI's syntax): a decimal integer (<c>5</c>, <c>-3</c>, <c>18446744073709551615</c>),
/// <c>str:NAME</c>, or <c>tuple:1,2</c>. Immutable and thread-safe.
/// </remarks>
public readonly struct StoreKey : IEquatable<StoreKey>
{
    private readonly object? _value;

    private StoreKey(object value) => _value = value;

    /// <summary>The key as a Python value: long, BigInteger, string or PyTuple.</summary>
    public object PythonValue => _value ?? 0L;

    /// <summary>True if the key is a Python int.</summary>
    public bool IsInteger => PythonValue is long or BigInteger;

    /// <summary>True if the key is a Python str.</summary>
    public bool IsString => PythonValue is string;

    /// <summary>The key as an unsigned 64-bit ID, if it is an int in [0, 2^64).</summary>
    public bool TryGetUInt64(out ulong id) => PyInt.TryGetUInt64(PythonValue, out id);

    /// <summary>The key as an unsigned 64-bit ID.</summary>
    /// <exception cref="InvalidOperationException">The key is not an int in [0, 2^64).</exception>
    public ulong ToUInt64() => TryGetUInt64(out var v) ? v : throw new InvalidOperationException($"key {this} is not a uint64 object ID");

    /// <summary>A key from a Python value (int, numpy integer scalar, bool, str, bytes, tuple of those).</summary>
    /// <exception cref="ArgumentException">The value cannot be a dict key in this model.</exception>
    public static StoreKey FromPython(object key)
    {
        switch (key)
        {
            case long or string: return new StoreKey(key);
            case BigInteger b: return new StoreKey(PyInt.From(b));
            case int i: return new StoreKey((long)i);
            case ulong u: return new StoreKey(PyInt.From(u));
            case NpScalar s when s.DType.Kind is 'i' or 'u':
                PyInt.TryGetBigInteger(s, out var v);
                return new StoreKey(PyInt.From(v));
            case NpScalar s when s.DType.Kind == 'U': return new StoreKey((string)s.ToObject());
            case PyTuple t: return new StoreKey(new PyTuple(t.Select(x => FromPython(x).PythonValue).ToArray()));
            case bool or double or PyBytes or NpScalar or PyNone or PySet { IsFrozen: true }: return new StoreKey(key);
            default: throw new ArgumentException($"a {key?.GetType().Name ?? "null"} cannot be a store key");
        }
    }

    /// <summary>An integer key.</summary>
    public static implicit operator StoreKey(ulong id) => new(PyInt.From(id));
    /// <summary>An integer key.</summary>
    public static implicit operator StoreKey(long id) => new(id);
    /// <summary>An integer key.</summary>
    public static implicit operator StoreKey(int id) => new((long)id);
    /// <summary>An integer key of any size.</summary>
    public static implicit operator StoreKey(BigInteger id) => new(PyInt.From(id));
    /// <summary>A str key.</summary>
    public static implicit operator StoreKey(string name) => new(name ?? throw new ArgumentNullException(nameof(name)));

    /// <summary>A tuple key (Python's <c>(a, b, ...)</c>) of ints, strs or nested tuples (any value <see cref="FromPython"/> takes).</summary>
    /// <exception cref="ArgumentException">An item cannot be part of a key.</exception>
    public static StoreKey Tuple(params object[] items)
    {
        ArgumentNullException.ThrowIfNull(items);
        return new StoreKey(new PyTuple(items.Select(i => i is StoreKey k ? k.PythonValue : FromPython(i).PythonValue).ToArray()));
    }

    /// <summary>A tuple key <c>(a, b)</c>.</summary>
    public static implicit operator StoreKey((long, long) t) => Tuple(t.Item1, t.Item2);
    /// <summary>A tuple key <c>(a, b)</c>.</summary>
    public static implicit operator StoreKey((int, int) t) => Tuple((long)t.Item1, (long)t.Item2);
    /// <summary>A tuple key <c>(a, b)</c>.</summary>
    public static implicit operator StoreKey((ulong, ulong) t) => Tuple(t.Item1, t.Item2);
    /// <summary>A tuple key <c>(a, b, c)</c>.</summary>
    public static implicit operator StoreKey((long, long, long) t) => Tuple(t.Item1, t.Item2, t.Item3);
    /// <summary>A tuple key <c>(a, b, c)</c>.</summary>
    public static implicit operator StoreKey((int, int, int) t) => Tuple((long)t.Item1, (long)t.Item2, (long)t.Item3);
    /// <summary>A tuple key <c>(name, n)</c>.</summary>
    public static implicit operator StoreKey((string, long) t) => Tuple(t.Item1, t.Item2);
    /// <summary>A tuple key <c>(a, b)</c> of strs.</summary>
    public static implicit operator StoreKey((string, string) t) => Tuple(t.Item1, t.Item2);

    /// <summary>The key as a signed 64-bit int, if it is an int in that range.</summary>
    public bool TryGetInt64(out long value) => PyInt.TryGetInt64(PythonValue, out value);

    /// <summary>The key as a str, if it is one.</summary>
    public bool TryGetString([System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out string value)
    {
        value = PythonValue as string;
        return value is not null;
    }

    /// <summary>True if the key is a tuple.</summary>
    public bool IsTuple => PythonValue is PyTuple;

    /// <summary>The items of a tuple key, each as a key.</summary>
    /// <exception cref="InvalidOperationException">The key is not a tuple.</exception>
    public IReadOnlyList<StoreKey> TupleItems => PythonValue is PyTuple t
        ? t.Select(FromPython).ToList()
        : throw new InvalidOperationException($"key {this} is not a tuple");

    /// <summary>Parses the CLI syntax: a decimal integer, <c>str:NAME</c> or <c>tuple:A,B</c> (items are ints or <c>str:</c> names).</summary>
    /// <exception cref="FormatException">Not a key.</exception>
    public static StoreKey Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.StartsWith("str:", StringComparison.Ordinal)) return new StoreKey(text[4..]);
        if (text.StartsWith("tuple:", StringComparison.Ordinal))
        {
            var body = text[6..];
            if (body.Length == 0) return new StoreKey(PyTuple.Empty);
            var items = body.Split(',').Select(p => Parse(p.Trim()).PythonValue).ToArray();
            return new StoreKey(new PyTuple(items));
        }
        if (BigInteger.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && text.Length > 0 && (char.IsDigit(text[^1])))
            return new StoreKey(PyInt.From(v));
        throw new FormatException($"'{text}' is not a key: use a decimal integer, str:NAME or tuple:A,B");
    }

    /// <summary>The CLI syntax of the key.</summary>
    public override string ToString() => Format(PythonValue);

    private static string Format(object v) => v switch
    {
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger b => b.ToString(CultureInfo.InvariantCulture),
        string s => "str:" + s,
        PyTuple t => "tuple:" + string.Join(",", t.Select(Format)),
        _ => PyRepr.Repr(v),
    };

    /// <inheritdoc/>
    public bool Equals(StoreKey other) => PyEquality.AreEqual(PythonValue, other.PythonValue);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is StoreKey k && Equals(k);
    /// <inheritdoc/>
    public override int GetHashCode() => PyEquality.Comparer.GetHashCode(PythonValue);
    /// <summary>Equality.</summary>
    public static bool operator ==(StoreKey a, StoreKey b) => a.Equals(b);
    /// <summary>Inequality.</summary>
    public static bool operator !=(StoreKey a, StoreKey b) => !a.Equals(b);
}
