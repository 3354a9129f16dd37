using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>Reading the per-key Python objects of the stores, with errors that name the store and key.</summary>
internal static class EntryParsing
{
    public static string Where(StorageBase store, StoreKey key) => $"{store.Location}, key {key}";

    public static InvalidDataException Bad(string where, string what) => new($"{where}: {what}");

    public static PyDict Dict(object raw, string where, string what = "entry") =>
        raw as PyDict ?? throw Bad(where, $"{what} is a {TypeName(raw)}, expected a dict");

    public static PyList List(object raw, string where, string what) =>
        raw as PyList ?? throw Bad(where, $"{what} is a {TypeName(raw)}, expected a list");

    public static object Field(PyDict d, string name, string where) =>
        d.TryGetValue(name, out var v) ? v : throw Bad(where, $"entry has no '{name}' field");

    /// <summary>A field of a dict entry of the layout <paramref name="expected"/>; a missing one names the keys found.</summary>
    public static object Field(PyDict d, string name, string where, string expected)
    {
        if (d.TryGetValue(name, out var v)) return v;
        var keys = string.Join(", ", d.Keys.Take(6).Select(PyRepr.Repr)) + (d.Count > 6 ? ", ..." : "");
        throw Bad(where, $"entry has no '{name}' field: expected {expected}, found a dict with keys {(d.Count == 0 ? "(none)" : keys)}");
    }

    /// <summary>A shape stored as a tuple or list of ints (<c>'sh'</c>).</summary>
    public static long[] Shape(object raw, string where)
    {
        IReadOnlyList<object> items = raw switch
        {
            PyTuple t => t,
            PyList l => l,
            _ => throw Bad(where, $"shape is a {TypeName(raw)}, expected a tuple or list of ints"),
        };
        var shape = new long[items.Count];
        for (int i = 0; i < shape.Length; i++)
            if (!PyInt.TryGetInt64(items[i], out shape[i]))
                throw Bad(where, $"shape item {i} is {PyRepr.Repr(items[i])}, expected an int");
        return shape;
    }

    /// <summary>A dtype stored as numpy's <c>dtype.str</c> or as a pickled <c>numpy.dtype</c> (<c>'dt'</c>).</summary>
    public static DType ParseDType(object raw, string where) => raw switch
    {
        DType d => d,
        string s when Arrays.DType.TryParse(s, out var d) => d,
        string s => throw Bad(where, $"dtype '{s}' is not a numpy dtype string"),
        _ => throw Bad(where, $"dtype is a {TypeName(raw)}, expected a str"),
    };

    /// <summary>The stored shape with its first entry replaced by -1 (as upstream writes <c>'sh'</c>).</summary>
    public static object[] ShapeItems(NdArray a)
    {
        var items = new object[a.NDim];
        for (int i = 0; i < items.Length; i++) items[i] = i == 0 ? -1L : a.Shape[i];
        return items;
    }

    /// <summary>
    /// Runs one entry's decoding so that only <see cref="InvalidDataException"/> leaves it: what the lower layers
    /// report as a bad argument, an overflow, a cast or an index out of range on a hostile tree becomes an
    /// <see cref="InvalidDataException"/> naming <paramref name="where"/> (file and key).
    /// </summary>
    public static T Guard<T>(string where, Func<T> decode)
    {
        try
        {
            return decode();
        }
        catch (Exception e) when (e is ArgumentException or OverflowException or InvalidCastException or IndexOutOfRangeException
                                       or FormatException or NotSupportedException or InvalidOperationException)
        {
            throw new InvalidDataException(e.Message.StartsWith(where, StringComparison.Ordinal) ? e.Message : $"{where}: {e.Message}", e);
        }
    }

    /// <summary>An LZ4 block list (<c>lz4string_listtoarr</c>), with errors that name <paramref name="where"/>.</summary>
    public static NdArray Lz4(object raw, DType dtype, long[]? shape, string where, string what)
    {
        if (raw is not PyList list) throw Bad(where, $"{what} is a {TypeName(raw)}, expected a list of LZ4 blocks");
        for (int i = 0; i < list.Count; i++)
            if (list[i] is not (PyBytes or PyByteArray or string { Length: 0 }))
                throw Bad(where, $"{what}: block {i} is a {TypeName(list[i])}, expected bytes");
        // Inside GetMany or an enumeration, the call's running total of decoded bytes (and the store's limits) apply.
        var budget = DecodeBudget.Current;
        return Guard(where, () => Formats.Lz4.Lz4List.Decode(list, dtype, shape, $"{where}, {what}", budget?.Limits, budget));
    }

    public static string TypeName(object? o) => o switch
    {
        null or PyNone => "None",
        PyDict => "dict",
        PyList => "list",
        PyTuple => "tuple",
        string => "str",
        PyBytes => "bytes",
        long or System.Numerics.BigInteger => "int",
        double => "float",
        NdArray => "ndarray",
        PyByteArray => "bytearray",
        bool => "bool",
        DType => "numpy.dtype",
        NpScalar => "numpy scalar",
        _ => o.GetType().Name,
    };
}
