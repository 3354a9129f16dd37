using System.Runtime.CompilerServices;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Formats.Pickle;

/// <summary>What an allowed global stands for.</summary>
internal enum GlobalKind
{
    Reconstruct,
    FromBuffer,
    Scalar,
    NpDType,
    NpNdArray,
    DefaultDict,
    OrderedDict,
    Set,
    FrozenSet,
    Complex,
    ByteArray,
    Bytes,
    Int,
    Float,
    Str,
    List,
    Tuple,
    Dict,
    Bool,
    CodecsEncode,
}

/// <summary>The global allowlist: the only callables a pickle may name.</summary>
internal static class PickleGlobals
{
    // Keyed by (module, name): a lookup builds no string (a BT row names its globals again in every pickle).
    private static readonly Dictionary<(string Module, string Name), GlobalRef> Allowed = Build();

    private static Dictionary<(string Module, string Name), GlobalRef> Build()
    {
        var d = new Dictionary<(string Module, string Name), GlobalRef>();
        void Add(string module, string name, GlobalKind kind, string? factoryName = null) =>
            d[(module, name)] = new GlobalRef(kind, module + "." + name, factoryName ?? name);
        foreach (var m in new[] { "numpy.core.multiarray", "numpy.core._multiarray_umath" })
        {
            Add(m, "_reconstruct", GlobalKind.Reconstruct);
            Add(m, "scalar", GlobalKind.Scalar);
        }
        Add("numpy.core.numeric", "_frombuffer", GlobalKind.FromBuffer);
        Add("numpy", "dtype", GlobalKind.NpDType);
        Add("numpy", "ndarray", GlobalKind.NpNdArray);
        Add("collections", "defaultdict", GlobalKind.DefaultDict);
        Add("collections", "OrderedDict", GlobalKind.OrderedDict);
        Add("builtins", "set", GlobalKind.Set);
        Add("builtins", "frozenset", GlobalKind.FrozenSet);
        Add("builtins", "complex", GlobalKind.Complex);
        Add("builtins", "bytearray", GlobalKind.ByteArray);
        Add("builtins", "bytes", GlobalKind.Bytes);
        Add("builtins", "int", GlobalKind.Int);
        Add("builtins", "float", GlobalKind.Float);
        Add("builtins", "str", GlobalKind.Str);
        Add("builtins", "list", GlobalKind.List);
        Add("builtins", "tuple", GlobalKind.Tuple);
        Add("builtins", "dict", GlobalKind.Dict);
        Add("builtins", "bool", GlobalKind.Bool);
        Add("_codecs", "encode", GlobalKind.CodecsEncode);
        return d;
    }

    /// <summary>The allowed global for a module and name (Python 2 and numpy 2 spellings are mapped first), or null.</summary>
    public static GlobalRef? Find(string module, string name)
    {
        if (module == "__builtin__") module = "builtins";
        else if (module == "copy_reg") module = "copyreg";
        else if (module.StartsWith("numpy._core.", StringComparison.Ordinal)) module = "numpy.core." + module["numpy._core.".Length..];
        if (module == "builtins") name = name switch { "long" => "int", "unicode" => "str", _ => name };
        return Allowed.GetValueOrDefault((module, name));
    }
}

/// <summary>
/// Objects that exist only while a pickle is being read; they never reach the result. The reader tests for
/// them by exact type (PickleReader.IsTemp): a new subclass must be sealed and added there.
/// </summary>
internal abstract class PickleTemp
{
}

/// <summary>A reference to an allowed global (a class or function).</summary>
internal sealed class GlobalRef(GlobalKind kind, string fullName, string factoryName) : PickleTemp
{
    public GlobalKind Kind { get; } = kind;
    public string FullName { get; } = fullName;
    /// <summary>The name a defaultdict reports for this global as factory (<c>int</c>, <c>list</c>, <c>OrderedDict</c>).</summary>
    public string FactoryName { get; } = factoryName;
}

/// <summary>A tuple holding globals: only valid as arguments of REDUCE/NEWOBJ.</summary>
internal sealed class ArgTuple(object[] items) : PickleTemp
{
    public object[] Items { get; } = items;
}

/// <summary>A <c>numpy.dtype(...)</c> result that BUILD completes.</summary>
internal sealed class DTypeProxy(DType initial) : PickleTemp
{
    public DType Current { get; set; } = initial;
}

/// <summary>A <c>_reconstruct(ndarray, ...)</c> result that BUILD completes.</summary>
internal sealed class ArrayProxy : PickleTemp
{
    public NdArray? Result { get; set; }
}

/// <summary>How an array was pickled, remembered so that writing it again reproduces the file.</summary>
[Flags]
internal enum ArrayHint
{
    None = 0,
    /// <summary>The array came from a read-only buffer (bytes): written back as BINBYTES, not BYTEARRAY8.</summary>
    ReadOnly = 1,
}

/// <summary>Side table of <see cref="ArrayHint"/>s (weak: does not keep arrays alive).</summary>
internal static class ArrayHints
{
    private static readonly ConditionalWeakTable<NdArray, StrongBox<ArrayHint>> Table = new();

    public static void Set(NdArray a, ArrayHint hint) => Table.AddOrUpdate(a, new StrongBox<ArrayHint>(hint));

    public static ArrayHint Get(NdArray a) => Table.TryGetValue(a, out var box) ? box.Value : ArrayHint.None;
}
