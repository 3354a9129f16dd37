using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>
/// Typed access to values of the Python value model (what stores return: <c>long</c> or <c>BigInteger</c> for a
/// Python int, <see cref="NpScalar"/> for a numpy scalar, <see cref="PyDict"/>, <see cref="NdArray"/>, ...).
/// </summary>
/// <remarks>
/// <para><b>Integers</b> (<c>sbyte</c> to <c>ulong</c>, <c>Int128</c>, <c>UInt128</c>, <c>BigInteger</c>): a Python int,
/// a bool, a numpy integer or bool scalar, or a 0-d integer array converts to any integer type its value fits in; a value
/// that does not fit raises <see cref="OverflowException"/> saying so. A float never converts to an integer.</para>
/// <para><b>Floats</b> (<c>double</c>, <c>float</c>, <c>Half</c>): a Python float, a numpy float scalar, an int or a
/// bool converts when the target holds the value exactly (a numpy float32 is always exact as a <c>float</c> and a
/// <c>double</c>; the Python float 0.1 is not exact as a <c>float</c>: ask for <c>double</c>).</para>
/// <para><b>Others</b>: <c>bool</c> from a bool or numpy bool; <c>string</c> from a str or numpy str scalar;
/// <c>byte[]</c> (a copy) from bytes, bytearray or a numpy bytes scalar; a one-dimensional array of a numeric type
/// (<c>long[]</c>, <c>float[]</c>, ...) from an ndarray (its elements in C order, converted by numpy's safe casting) or
/// a list of numbers; <see cref="Complex"/> from a complex, a float
/// or an exact int; a nullable value type takes None as null; any other type when the value is one (for example
/// <see cref="PyDict"/>, <see cref="PyList"/>, <see cref="NdArray"/>).</para>
/// <para><b>Arrays</b> (<see cref="ToArray{T}(object?, CastingRule, string?)"/>): an ndarray converts by numpy's casting
/// rules (<see cref="CastingRule.Safe"/> unless asked otherwise); a list or tuple of numbers (nested to any depth, of
/// equal lengths) becomes an array of that shape, each item converted as a scalar.</para>
/// Everything here is thread-safe and never modifies the value.
/// </remarks>
public static class PyConvert
{
    /// <summary>The value as <typeparamref name="T"/> (see the rules of <see cref="PyConvert"/>).</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <param name="what">What the value is, for the exception message (a key, an attribute name).</param>
    /// <exception cref="InvalidCastException">The value is of a kind that does not convert to <typeparamref name="T"/>.</exception>
    /// <exception cref="OverflowException">An integer that does not fit in <typeparamref name="T"/>.</exception>
    public static T To<T>(object? value, string? what = null)
    {
        if (TryConvert(value, typeof(T), out var result, out var error)) return (T)result!;
        throw Failure(error!, typeof(T), what);
    }

    /// <summary>The value as <typeparamref name="T"/> if it converts (see <see cref="PyConvert"/>); false otherwise, never throwing.</summary>
    public static bool TryTo<T>(object? value, [MaybeNullWhen(false)] out T result)
    {
        if (TryConvert(value, typeof(T), out var r, out _))
        {
            result = (T)r!;
            return true;
        }
        result = default;
        return false;
    }

    /// <summary>
    /// The value as an array of element type <typeparamref name="T"/>, shape kept, in C order and native byte order
    /// (so <see cref="NdArray.AsSpan{T}"/> works on it): an ndarray converted as <paramref name="casting"/> allows, or a
    /// (nested) list or tuple of numbers, each converted as <see cref="To{T}(object?, string?)"/>.
    /// </summary>
    /// <param name="value">An ndarray, or a list or tuple of numbers.</param>
    /// <param name="casting">Which dtype conversions of an ndarray are allowed (numpy's <c>casting</c>; default safe).</param>
    /// <param name="what">What the value is, for the exception message.</param>
    /// <exception cref="InvalidCastException">Not an array, a conversion <paramref name="casting"/> does not allow, or a ragged list.</exception>
    /// <exception cref="OverflowException">A list item that does not fit in <typeparamref name="T"/>.</exception>
    public static NdArray ToArray<T>(object? value, CastingRule casting = CastingRule.Safe, string? what = null) where T : unmanaged
    {
        string prefix = what is null ? "" : what + ": ";
        switch (value)
        {
            case NdArray a:
                if (a.Objects is not null) throw new InvalidCastException($"{prefix}an object array (dtype |O) does not convert to an array of {typeof(T).Name}");
                try
                {
                    return a.As<T>(casting);
                }
                catch (InvalidCastException e)
                {
                    throw new InvalidCastException(prefix + e.Message, e);
                }
            case PyList or PyTuple:
            {
                var shape = new List<long>();
                var items = new List<T>();
                Flatten(value, 0, shape, items, prefix);
                return NdArray.Create(items.ToArray(), shape.Count == 0 ? [0] : shape.ToArray());
            }
            default:
                throw new InvalidCastException($"{prefix}{Describe(value)} is not an array or a list of numbers; it does not convert to an array of {typeof(T).Name}");
        }
    }

    private static void Flatten<T>(object? node, int depth, List<long> shape, List<T> items, string prefix) where T : unmanaged
    {
        if (node is PyList or PyTuple)
        {
            var seq = (IReadOnlyList<object>)node;
            if (depth == shape.Count) shape.Add(seq.Count);
            else if (shape[depth] != seq.Count)
                throw new InvalidCastException($"{prefix}a ragged list (lengths {shape[depth]} and {seq.Count} at depth {depth}) is not an array");
            foreach (var item in seq) Flatten(item, depth + 1, shape, items, prefix);
            return;
        }
        if (depth != shape.Count)
            throw new InvalidCastException($"{prefix}a ragged list (a number where a list of {shape[depth]} is expected at depth {depth}) is not an array");
        items.Add(To<T>(node, prefix.Length == 0 ? $"item {items.Count}" : $"{prefix}item {items.Count}"));
    }

    /// <summary>
    /// The value at <paramref name="path"/> inside <paramref name="tree"/>: each step a dict key (a str, int or tuple,
    /// compared with Python's rules) or, for a list or tuple, an <c>int</c> index (negative counts from the end).
    /// </summary>
    /// <exception cref="KeyNotFoundException">A step is missing, naming the path so far.</exception>
    public static object At(object? tree, params object[] path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (TryAt(tree, path, out var v, out var missing)) return v;
        throw new KeyNotFoundException(missing);
    }

    /// <summary>The value at <paramref name="path"/> inside <paramref name="tree"/> (as <see cref="At"/>), if every step exists.</summary>
    public static bool TryAt(object? tree, object[] path, [MaybeNullWhen(false)] out object value) => TryAt(tree, path, out value, out _);

    private static bool TryAt(object? tree, object[] path, [MaybeNullWhen(false)] out object value, out string missing)
    {
        ArgumentNullException.ThrowIfNull(path);
        object? cur = tree;
        for (int i = 0; i < path.Length; i++)
        {
            var step = path[i];
            object? next = null;
            bool found = cur switch
            {
                PyDict d => d.TryGetValue(step, out next),
                IReadOnlyList<object> l when step is int or long => TryIndex(l, Convert.ToInt64(step, CultureInfo.InvariantCulture), out next),
                _ => false,
            };
            if (!found)
            {
                value = null;
                missing = $"{PathText(path.AsSpan(0, i + 1))} is not there ({(cur is PyDict ? "no such key" : cur is IReadOnlyList<object> ? "index out of range" : $"{Describe(cur)} has no items")})";
                return false;
            }
            cur = next;
        }
        value = cur ?? PyNone.Value;
        missing = "";
        return true;
    }

    private static bool TryIndex(IReadOnlyList<object> l, long i, out object? v)
    {
        if (i < 0) i += l.Count;
        if (i < 0 || i >= l.Count) { v = null; return false; }
        v = l[(int)i];
        return true;
    }

    /// <summary>The value at <paramref name="path"/> inside <paramref name="tree"/> as <typeparamref name="T"/>.</summary>
    /// <exception cref="KeyNotFoundException">A step of the path is missing.</exception>
    /// <inheritdoc cref="To{T}(object?, string?)" path="/exception"/>
    public static T Get<T>(object? tree, params object[] path) => To<T>(At(tree, path), PathText(path));

    /// <summary>
    /// Finds the first value inside <paramref name="value"/> (depth first, dict keys and values, list, tuple and set
    /// items, object array elements) that is not of the Python value model, so that a store could not pickle it: a
    /// <c>List&lt;int&gt;</c>, a <c>Dictionary</c>, a <c>DateTime</c>, ... Shared and self-containing containers are
    /// visited once.
    /// </summary>
    /// <param name="value">The value to check.</param>
    /// <param name="path">Where the foreign value is, as <c>['a'][0]</c> (empty when it is <paramref name="value"/> itself).</param>
    /// <param name="type">Its CLR type.</param>
    /// <returns>True if a foreign value was found.</returns>
    public static bool TryFindForeign(object? value, out string path, [NotNullWhen(true)] out Type? type)
    {
        int budget = 1024;
        if (AllKnown(value, 0, ref budget))
        {
            path = "";
            type = null;
            return false;
        }
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var steps = new List<object>();
        if (FindForeign(value, seen, steps, out type))
        {
            path = PathText(steps.ToArray());
            return true;
        }
        path = "";
        return false;
    }

    // The value-model objects that hold no other objects.
    private static bool IsLeaf([NotNullWhen(false)] object? v) =>
        v is null or PyNone or bool or long or int or ulong or BigInteger or double or float or string or PyBytes or PyByteArray
            or Complex or NpScalar or DType;

    // The common case without allocating: a small value (an attribute dict) made of value-model objects only. False
    // when something is foreign, or the value is deep or big (a shared or self-containing container is then walked
    // more than once, or forever, so the walk stops): the full walk decides.
    private static bool AllKnown(object? v, int depth, ref int budget)
    {
        if (--budget < 0) return false;
        if (IsLeaf(v)) return true;
        switch (v)
        {
            case NdArray a:
                if (a.Objects is null) return true;
                if (depth >= 8) return false;
                for (int i = 0; i < a.Objects.Count; i++)
                    if (!AllKnown(a.Objects[i], depth + 1, ref budget)) return false;
                return true;
            case PyDict d:
                if (depth >= 8) return false;
                for (int i = 0; i < d.Count; i++)
                {
                    var kv = d.GetAt(i);
                    if (!AllKnown(kv.Key, depth + 1, ref budget) || !AllKnown(kv.Value, depth + 1, ref budget)) return false;
                }
                return true;
            case PyList l:
                if (depth >= 8) return false;
                for (int i = 0; i < l.Count; i++)
                    if (!AllKnown(l[i], depth + 1, ref budget)) return false;
                return true;
            case PyTuple t:
                if (depth >= 8) return false;
                for (int i = 0; i < t.Count; i++)
                    if (!AllKnown(t[i], depth + 1, ref budget)) return false;
                return true;
            default:
                return false;
        }
    }

    private static bool FindForeign(object? v, HashSet<object> seen, List<object> steps, [NotNullWhen(true)] out Type? type)
    {
        type = null;
        if (IsLeaf(v)) return false;
        switch (v)
        {
            case NdArray a:
                if (a.Objects is null || !seen.Add(a)) return false;
                for (int i = 0; i < a.Objects.Count; i++)
                {
                    steps.Add(i);
                    if (FindForeign(a.Objects[i], seen, steps, out type)) return true;
                    steps.RemoveAt(steps.Count - 1);
                }
                return false;
            case PyDict d:
                if (!seen.Add(d)) return false;
                foreach (var kv in d)
                {
                    if (FindForeign(kv.Key, seen, steps, out type)) return true;
                    steps.Add(kv.Key);
                    if (FindForeign(kv.Value, seen, steps, out type)) return true;
                    steps.RemoveAt(steps.Count - 1);
                }
                return false;
            case PyList or PyTuple or PySet:
                if (!seen.Add(v)) return false;
                int n = 0;
                foreach (var item in (IEnumerable<object>)v)
                {
                    steps.Add(n++);
                    if (FindForeign(item, seen, steps, out type)) return true;
                    steps.RemoveAt(steps.Count - 1);
                }
                return false;
            default:
                type = v.GetType();
                return true;
        }
    }

    /// <summary>Words for a foreign CLR value: what it is and what to use instead.</summary>
    internal static string ForeignAdvice(Type type) =>
        $"a {ClrName(type)} is not a Python value, so it cannot be pickled; use the Python value model instead " +
        (typeof(System.Collections.IDictionary).IsAssignableFrom(type) || type.GetInterfaces().Any(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IDictionary<,>))
            ? "(a PyDict for a dict)"
            : typeof(System.Collections.IEnumerable).IsAssignableFrom(type)
                ? "(a PyList for a list, a PyTuple for a tuple, or an NdArray from NdArray.Create for numbers)"
                : "(long, double, string, bool, PyBytes, NpScalar, NdArray, PyList, PyTuple, PyDict, PyNone.Value)");

    /// <summary>A path as text for messages: <c>['a'][0]</c>.</summary>
    internal static string PathText(ReadOnlySpan<object> path)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var p in path) sb.Append('[').Append(PyRepr.Repr(p)).Append(']');
        return sb.ToString();
    }

    /// <summary>The value for messages: its Python type and a short repr (<c>a Python int (5)</c>, <c>a numpy uint64 (7)</c>).</summary>
    public static string Describe(object? value) => value switch
    {
        null or PyNone => "None",
        bool b => $"a Python bool ({(b ? "True" : "False")})",
        long or BigInteger or int or ulong => $"a Python int ({Convert.ToString(value, CultureInfo.InvariantCulture)})",
        double d => $"a Python float ({PyRepr.Repr(d)})",
        float f => $"a float32 ({PyRepr.Repr((double)f)})",
        string s => $"a Python str ({PyRepr.Repr(s)})",
        NpScalar s => $"a numpy {s.DType.Name} scalar ({PyRepr.Repr(s.ToObject())})",
        NdArray a => $"an array {a}",
        PyDict => "a Python dict",
        PyList l => $"a Python list of {l.Count}",
        PyTuple t => $"a Python tuple of {t.Count}",
        _ => $"a {ClrName(value.GetType())}",
    };

    /// <summary>A CLR type's name as C# writes it (<c>List&lt;int&gt;</c>, <c>Dictionary&lt;string, object&gt;</c>), for messages.</summary>
    public static string ClrName(Type type)
    {
        ArgumentNullException.ThrowIfNull(type);
        if (type.IsArray) return ClrName(type.GetElementType()!) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        var alias = Type.GetTypeCode(type) switch
        {
            TypeCode.Boolean => "bool", TypeCode.Byte => "byte", TypeCode.SByte => "sbyte", TypeCode.Int16 => "short",
            TypeCode.UInt16 => "ushort", TypeCode.Int32 => "int", TypeCode.UInt32 => "uint", TypeCode.Int64 => "long",
            TypeCode.UInt64 => "ulong", TypeCode.Single => "float", TypeCode.Double => "double", TypeCode.Decimal => "decimal",
            TypeCode.String => "string", TypeCode.Char => "char",
            _ => null,
        };
        if (alias is not null && !type.IsEnum) return alias;
        if (!type.IsGenericType) return type.Name;
        var name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick >= 0) name = name[..tick];
        return name + "<" + string.Join(", ", type.GetGenericArguments().Select(ClrName)) + ">";
    }

    private static Exception Failure(string error, Type target, string? what)
    {
        string prefix = what is null ? "" : what + ": ";
        return error.StartsWith("overflow:", StringComparison.Ordinal)
            ? new OverflowException(prefix + error["overflow:".Length..].TrimStart() + $" (converting to {ClrName(target)})")
            : new InvalidCastException(prefix + error);
    }

    private static bool TryConvert(object? value, Type target, out object? result, out string? error)
    {
        result = null;
        error = null;
        var underlying = Nullable.GetUnderlyingType(target);
        if (underlying is not null)
        {
            if (value is null or PyNone) return true;
            return TryConvert(value, underlying, out result, out error);
        }
        if (target == typeof(object))
        {
            result = value ?? PyNone.Value;
            return true;
        }
        if (value is NdArray { NDim: 0, Objects: null } zeroD && target != typeof(NdArray))
            value = new NpScalar(zeroD.DType, zeroD.ToCBytes());
        if (IsIntegerType(target)) return ToInteger(value, target, out result, out error);
        if (target == typeof(double) || target == typeof(float) || target == typeof(Half)) return ToFloat(value, target, out result, out error);
        if (target == typeof(bool))
        {
            if (value is bool b) { result = b; return true; }
            if (value is NpScalar { DType.Kind: 'b' } nb) { result = nb.ToObject(); return true; }
            error = $"{Describe(value)} is not a bool";
            return false;
        }
        if (target == typeof(string))
        {
            if (value is string s) { result = s; return true; }
            if (value is NpScalar { DType.Kind: 'U' } ns) { result = ns.ToObject(); return true; }
            error = $"{Describe(value)} is not a str";
            return false;
        }
        if (target.IsArray && target.GetArrayRank() == 1 && (value is NdArray or PyList or PyTuple))
            return ToFlatArray(value, target, out result, out error);
        if (target == typeof(byte[]))
        {
            switch (value)
            {
                case PyBytes pb: result = pb.Data.ToArray(); return true;
                case PyByteArray ba: result = ba.Data.ToArray(); return true;
                case NpScalar { DType.Kind: 'S' } sb: result = ((PyBytes)sb.ToObject()).Data.ToArray(); return true;
            }
            error = $"{Describe(value)} is not bytes";
            return false;
        }
        if (target == typeof(Complex))
        {
            if (value is Complex c) { result = c; return true; }
            if (value is NpScalar { DType.Kind: 'c' } nc) { result = nc.ToObject(); return true; }
            if (ToFloat(value, typeof(double), out var d, out error)) { result = new Complex((double)d!, 0); return true; }
            error = $"{Describe(value)} is not a number";
            return false;
        }
        if (value is not null && target.IsInstanceOfType(value))
        {
            result = value;
            return true;
        }
        error = $"{Describe(value)} is not a {ClrName(target)}";
        return false;
    }

    private static bool ToFlatArray(object value, Type target, out object? result, out string? error)
    {
        result = null;
        error = null;
        try
        {
            var e = target.GetElementType()!;
            result = e == typeof(long) ? Flat<long>(value) : e == typeof(int) ? Flat<int>(value) : e == typeof(ulong) ? Flat<ulong>(value)
                : e == typeof(uint) ? Flat<uint>(value) : e == typeof(short) ? Flat<short>(value) : e == typeof(ushort) ? Flat<ushort>(value)
                : e == typeof(byte) ? Flat<byte>(value) : e == typeof(sbyte) ? Flat<sbyte>(value) : e == typeof(double) ? Flat<double>(value)
                : e == typeof(float) ? Flat<float>(value) : e == typeof(bool) ? Flat<bool>(value) : null;
            if (result is null) error = $"{Describe(value)} does not convert to a {ClrName(target)}";
            return result is not null;
        }
        catch (Exception ex) when (ex is InvalidCastException or OverflowException)
        {
            error = (ex is OverflowException ? "overflow: " : "") + ex.Message;
            return false;
        }
    }

    // The elements in C order, converted by safe casting (arrays) or by value (lists).
    private static T[] Flat<T>(object value) where T : unmanaged => ToArray<T>(value).AsSpan<T>().ToArray();

    private static bool IsIntegerType(Type t) =>
        t == typeof(int) || t == typeof(long) || t == typeof(ulong) || t == typeof(uint) || t == typeof(short) || t == typeof(ushort)
        || t == typeof(byte) || t == typeof(sbyte) || t == typeof(Int128) || t == typeof(UInt128) || t == typeof(BigInteger);

    private static bool ToInteger(object? value, Type target, out object? result, out string? error)
    {
        result = null;
        if (value is double or float or Complex || value is NpScalar { DType.Kind: 'f' or 'c' })
        {
            error = $"{Describe(value)} does not convert to {ClrName(target)}: floats never convert to integers here; ask for double, or round it yourself";
            return false;
        }
        if (!PyInt.TryGetBigInteger(value, out var v))
        {
            error = $"{Describe(value)} is not an integer";
            return false;
        }
        var (min, max) = Range(target);
        if ((min is { } lo && v < lo) || (max is { } hi && v > hi))
        {
            error = $"overflow: {Describe(value)} does not fit in {ClrName(target)} (range {min} to {max}); ask for a wider type such as {(v < 0 ? "long" : v > long.MaxValue ? "ulong or BigInteger" : "long")}";
            return false;
        }
        error = null;
        result = target == typeof(BigInteger) ? v
            : target == typeof(Int128) ? (Int128)v
            : target == typeof(UInt128) ? (UInt128)v
            : target == typeof(ulong) ? (ulong)v
            : Convert.ChangeType((long)v, target, CultureInfo.InvariantCulture);
        return true;
    }

    private static (BigInteger? Min, BigInteger? Max) Range(Type t) =>
        t == typeof(sbyte) ? (sbyte.MinValue, sbyte.MaxValue)
        : t == typeof(byte) ? (byte.MinValue, byte.MaxValue)
        : t == typeof(short) ? (short.MinValue, short.MaxValue)
        : t == typeof(ushort) ? (ushort.MinValue, ushort.MaxValue)
        : t == typeof(int) ? (int.MinValue, int.MaxValue)
        : t == typeof(uint) ? (uint.MinValue, uint.MaxValue)
        : t == typeof(long) ? (long.MinValue, long.MaxValue)
        : t == typeof(ulong) ? (ulong.MinValue, ulong.MaxValue)
        : t == typeof(Int128) ? ((BigInteger)Int128.MinValue, (BigInteger)Int128.MaxValue)
        : t == typeof(UInt128) ? (BigInteger.Zero, (BigInteger)UInt128.MaxValue)
        : (null, null);

    private static bool ToFloat(object? value, Type target, out object? result, out string? error)
    {
        result = null;
        error = null;
        double d;
        switch (value)
        {
            case double x: d = x; break;
            case float f: d = f; break;
            case NpScalar { DType.Kind: 'f' } s: d = (double)s.ToObject(); break;
            default:
                if (!PyInt.TryGetBigInteger(value, out var v))
                {
                    error = $"{Describe(value)} is not a number";
                    return false;
                }
                d = (double)v;
                if (double.IsInfinity(d) || (BigInteger)d != v)
                {
                    error = $"{Describe(value)} is not exactly a {ClrName(target)}";
                    return false;
                }
                break;
        }
        if (target == typeof(double)) { result = d; return true; }
        if (target == typeof(float))
        {
            float f = (float)d;
            if (f == d || double.IsNaN(d)) { result = f; return true; }
            error = $"{Describe(value)} is not exactly a float (float32); ask for double";
            return false;
        }
        var h = (Half)d;
        if ((double)h == d || double.IsNaN(d)) { result = h; return true; }
        error = $"{Describe(value)} is not exactly a Half (float16); ask for double";
        return false;
    }
}
