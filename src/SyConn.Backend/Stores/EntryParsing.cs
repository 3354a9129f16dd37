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
        _ => o.GetType().Name,
    };
}
