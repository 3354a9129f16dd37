using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;

namespace SyConn.Backend.Python;

/// <summary>
/// The typed JSON form of Python values used by the fixtures' MANIFEST and by <c>syconn-store dump</c>:
/// every value is an object <c>{"t": TYPE, ...}</c> (see the contracts note for the fields).
/// </summary>
/// <remarks>
/// <para>Shared references: an object that occurs at several places is written out in full at each. A container
/// that holds itself (directly or further down) is written once; its inner occurrence is
/// <c>{"t": "ref", "up": N}</c>, N counting the enclosing containers outward from that occurrence (1 = its
/// immediate parent). Containers are lists, tuples, sets, frozensets, dicts (defaultdict and OrderedDict too),
/// object arrays and object-dtype numpy scalars.</para>
/// <para>Stateless and thread-safe.</para>
/// </remarks>
public static class TypedJson
{
    private const int LongStringLimit = 1000;
    private const int ValuesLimit = 64;

    /// <summary>The typed JSON tree of <paramref name="value"/>, within the default limits (<see cref="PickleReadOptions.Default"/>).</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <exception cref="ArgumentException">A value outside the Python value model.</exception>
    /// <exception cref="InvalidDataException">The value nests too deeply, or writing its shared references out in full
    /// would add more nodes than <see cref="PickleReadOptions.MaxExpandedNodes"/> allows.</exception>
    public static JsonObject ToJson(object? value) => ToJson(value, null);

    /// <summary>The typed JSON tree of <paramref name="value"/>.</summary>
    /// <param name="value">A value of the Python value model.</param>
    /// <param name="limits">The nesting limit (<see cref="PickleReadOptions.MaxDepth"/>) and the limit on the nodes
    /// that shared references add (<see cref="PickleReadOptions.MaxExpandedNodes"/>, computed before anything is
    /// written); <see cref="PickleReadOptions.Default"/> when null.</param>
    /// <exception cref="ArgumentException">A value outside the Python value model.</exception>
    /// <exception cref="InvalidDataException">The value nests deeper than the limit (or than the call stack allows),
    /// or writing its shared references out in full would add more nodes than the limit allows.</exception>
    public static JsonObject ToJson(object? value, PickleReadOptions? limits)
    {
        limits ??= PickleReadOptions.Default;
        var sizer = new Sizer(limits);
        long extra = sizer.ExtraNodes(value);
        if (extra > limits.MaxExpandedNodes) throw sizer.TooLarge(extra);
        return new Encoder(limits).Encode(value);
    }

    /// <summary>
    /// Counts the nodes that writing shared containers again at each place adds, without writing anything: each
    /// container's expanded size is computed once (by identity), so a DAG of 2^60 nodes costs 60 steps.
    /// </summary>
    private sealed class Sizer(PickleReadOptions limits)
    {
        private readonly Dictionary<object, long> _size = new(ReferenceEqualityComparer.Instance);
        private long _once = 1;
        private int _depth;

        /// <summary>Nodes of the full expansion minus the nodes if every container were written out only once.</summary>
        public long ExtraNodes(object? value)
        {
            long total = Size(value);
            return total == long.MaxValue ? long.MaxValue : Math.Max(0, total - _once);
        }

        public InvalidDataException TooLarge(long extra) => new(
            $"the value expands to {(extra == long.MaxValue ? "more than 2^63" : extra.ToString(CultureInfo.InvariantCulture))} more nodes when its shared references are written out in full, more than the limit of {limits.MaxExpandedNodes} (PickleReadOptions.MaxExpandedNodes)");

        private long Size(object? v)
        {
            if (!IsContainer(v)) return 1;
            var c = v!;
            // A container of leaves only (most of a store file's) cannot close a cycle and is cheap to size
            // again: it stays out of the memo. Repeats of it are counted by the encoder while it writes.
            if (!HoldsContainer(c))
            {
                long n = Count(c);
                _once = Add(_once, n);
                return Add(1, n);
            }
            if (_size.TryGetValue(c, out long known)) return known < 0 ? 1 : known; // < 0: on the path, a ref node
            if (_depth >= limits.MaxDepth) throw TooDeep(limits, _depth);
            if (!RuntimeHelpers.TryEnsureSufficientExecutionStack()) throw TooDeep(limits, _depth, stack: true);
            _size[c] = -1;
            _depth++;
            long total = 1, children = 0;
            foreach (var child in Children(c))
            {
                children++;
                total = Add(total, Size(child));
            }
            _depth--;
            _once = Add(_once, children);
            _size[c] = total;
            return total;
        }

        private static bool HoldsContainer(object c)
        {
            switch (c)
            {
                case PyList l:
                    foreach (var x in l) if (IsContainer(x)) return true;
                    return false;
                case PyTuple t:
                    foreach (var x in t) if (IsContainer(x)) return true;
                    return false;
                case PyDict d:
                    foreach (var kv in d) if (IsContainer(kv.Key) || IsContainer(kv.Value)) return true;
                    return false;
                default:
                    return true;
            }
        }

        private static long Count(object c) => c switch
        {
            PyList l => l.Count,
            PyTuple t => t.Count,
            PyDict d => 2L * d.Count,
            _ => 0,
        };

        private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
    }

    private static bool IsContainer(object? v) =>
        v is PyList or PyTuple { Count: > 0 } or PySet { Count: > 0 } or PyDict { Count: > 0 } or NdArray { Objects: not null } or NpScalar { ObjectValue: not null };

    private static IEnumerable<object?> Children(object c)
    {
        switch (c)
        {
            case PyDict d:
                foreach (var kv in d)
                {
                    yield return kv.Key;
                    yield return kv.Value;
                }
                break;
            case IEnumerable<object> items:
                foreach (var item in items) yield return item;
                break;
            case NdArray { Objects: { } objs }:
                foreach (var item in objs) yield return item;
                break;
            case NpScalar { ObjectValue: { } o }:
                yield return o;
                break;
        }
    }

    private static InvalidDataException TooDeep(PickleReadOptions limits, int depth, bool stack = false) => stack
        ? new($"the value nests too deeply for typed JSON ({depth} levels exhaust the call stack)")
        : new($"the value nests deeper than {limits.MaxDepth} levels, too deep for typed JSON (PickleReadOptions.MaxDepth)");

    /// <summary>One conversion: the path of enclosing containers (for ref nodes) and the count of repeated nodes.</summary>
    private sealed class Encoder(PickleReadOptions limits)
    {
        // Enclosing containers: object -> its index on the path (0 = the outermost).
        private readonly Dictionary<object, int> _path = new(ReferenceEqualityComparer.Instance);
        // Containers written out once already: writing one again repeats its nodes, which are counted.
        private readonly HashSet<object> _written = new(ReferenceEqualityComparer.Instance);
        // Leaves whose JSON costs a hash of their data (arrays, bytes, long str), written again as copies.
        private readonly Dictionary<object, JsonObject> _leaves = new(ReferenceEqualityComparer.Instance);
        private int _repeating;
        private long _repeated;

        public JsonObject Encode(object? value)
        {
            if (_repeating > 0 && ++_repeated > limits.MaxExpandedNodes)
                throw new InvalidDataException($"the value expands to more than {limits.MaxExpandedNodes} more nodes when its shared references are written out in full (PickleReadOptions.MaxExpandedNodes)");
            if (IsContainer(value)) return Container(value!);
            if (value is NdArray or PyBytes { Length: > ValuesLimit } or PyByteArray { Data.Length: > ValuesLimit } or string { Length: > LongStringLimit })
            {
                if (_leaves.TryGetValue(value, out var done)) return (JsonObject)done.DeepClone();
                var o = Leaf(value);
                _leaves[value] = o;
                return o;
            }
            return Leaf(value);
        }

        private JsonObject Container(object c)
        {
            if (_path.TryGetValue(c, out int at)) return new JsonObject { ["t"] = "ref", ["up"] = _path.Count - at };
            if (_path.Count >= limits.MaxDepth) throw TooDeep(limits, _path.Count);
            if (!RuntimeHelpers.TryEnsureSufficientExecutionStack()) throw TooDeep(limits, _path.Count, stack: true);
            bool again = !_written.Add(c);
            if (again) _repeating++;
            _path.Add(c, _path.Count);
            try
            {
                return c switch
                {
                    PyTuple t => Seq("tuple", t),
                    PyList l => Seq("list", l),
                    PySet set => Seq(set.IsFrozen ? "frozenset" : "set", set),
                    PyDefaultDict dd => new JsonObject { ["t"] = "defaultdict", ["default_factory"] = dd.DefaultFactory ?? "None", ["items"] = Items(dd) },
                    PyDict dict => new JsonObject { ["t"] = "dict", ["items"] = Items(dict) },
                    NpScalar sc => Scalar(sc),
                    NdArray a => EncodeArray(a, this),
                    _ => throw new ArgumentException($"{c.GetType().Name} is not part of the Python value model"),
                };
            }
            finally
            {
                _path.Remove(c);
                if (again) _repeating--;
            }
        }

        private JsonObject Leaf(object? value)
        {
            switch (value)
            {
                case null or PyNone: return T("None");
                case bool b: return new JsonObject { ["t"] = "bool", ["v"] = b };
                case long or int or BigInteger or ulong:
                    PyInt.TryGetBigInteger(value, out var bi);
                    return new JsonObject { ["t"] = "int", ["v"] = bi.ToString(CultureInfo.InvariantCulture) };
                case double d: return new JsonObject { ["t"] = "float", ["v"] = FloatValue(d), ["hex"] = FloatHex(d) };
                case float f: return Leaf((double)f);
                case Complex c: return new JsonObject { ["t"] = "complex", ["v"] = new JsonArray(FloatValue(c.Real), FloatValue(c.Imaginary)) };
                case string s: return EncodeString(s);
                case PyBytes pb: return EncodeBytes("bytes", pb.Data.Span);
                case PyByteArray ba: return EncodeBytes("bytearray", ba.Data.Span);
                // Empty containers (the others are written by Container).
                case PyTuple: return new JsonObject { ["t"] = "tuple", ["items"] = new JsonArray() };
                case PySet set: return new JsonObject { ["t"] = set.IsFrozen ? "frozenset" : "set", ["items"] = new JsonArray() };
                case PyDefaultDict dd: return new JsonObject { ["t"] = "defaultdict", ["default_factory"] = dd.DefaultFactory ?? "None", ["items"] = new JsonArray() };
                case PyDict: return new JsonObject { ["t"] = "dict", ["items"] = new JsonArray() };
                case NpScalar sc: return Scalar(sc);
                case DType dt: return new JsonObject { ["t"] = "dtype", ["str"] = dt.Str };
                case NdArray a: return EncodeArray(a, this);
                default: throw new ArgumentException($"{value.GetType().Name} is not part of the Python value model");
            }
        }

        private JsonObject Scalar(NpScalar sc)
        {
            var o = new JsonObject { ["t"] = "npscalar", ["dtype"] = sc.DType.Str, ["raw_hex"] = Convert.ToHexStringLower(sc.Raw) };
            o["value"] = Encode(sc.ToObject());
            return o;
        }

        private JsonObject Seq(string t, IEnumerable<object> items)
        {
            var arr = new JsonArray();
            foreach (var item in items) arr.Add(Encode(item));
            return new JsonObject { ["t"] = t, ["items"] = arr };
        }

        private JsonArray Items(PyDict dict)
        {
            var arr = new JsonArray();
            foreach (var kv in dict) arr.Add(new JsonArray(Encode(kv.Key), Encode(kv.Value)));
            return arr;
        }
    }

    private static JsonObject T(string t) => new() { ["t"] = t };

    private static JsonNode FloatValue(double d) =>
        double.IsNaN(d) ? "nan" : double.IsPositiveInfinity(d) ? "inf" : double.IsNegativeInfinity(d) ? "-inf" : JsonValue.Create(d);

    private static JsonObject EncodeString(string s)
    {
        int codePoints = CountCodePoints(s);
        if (codePoints <= LongStringLimit) return new JsonObject { ["t"] = "str", ["v"] = s };
        var utf8 = Utf8Surrogatepass(s);
        return new JsonObject
        {
            ["t"] = "str",
            ["len"] = codePoints,
            ["utf8_sha256"] = Convert.ToHexStringLower(SHA256.HashData(utf8)),
        };
    }

    /// <summary>Python's <c>len(str)</c>: the number of code points (a surrogate pair counts once).</summary>
    public static int CountCodePoints(string s)
    {
        int n = 0;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
            n++;
        }
        return n;
    }

    /// <summary>UTF-8 with lone surrogates encoded as three bytes each (Python's 'surrogatepass').</summary>
    internal static byte[] Utf8Surrogatepass(string s)
    {
        var strict = new UTF8Encoding(false, false);
        bool lone = false;
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) { lone = true; break; }
        }
        if (!lone) return strict.GetBytes(s);
        var ms = new List<byte>(s.Length * 3);
        for (int i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
            {
                ms.AddRange(strict.GetBytes(s.Substring(i, 2)));
                i++;
            }
            else if (char.IsSurrogate(s[i]))
            {
                int c = s[i];
                ms.Add((byte)(0xE0 | (c >> 12)));
                ms.Add((byte)(0x80 | ((c >> 6) & 0x3F)));
                ms.Add((byte)(0x80 | (c & 0x3F)));
            }
            else ms.AddRange(strict.GetBytes(s[i].ToString()));
        }
        return ms.ToArray();
    }

    private static JsonObject EncodeBytes(string t, ReadOnlySpan<byte> b)
    {
        var o = new JsonObject { ["t"] = t, ["len"] = b.Length, ["sha256"] = Convert.ToHexStringLower(SHA256.HashData(b)) };
        if (b.Length <= ValuesLimit) o["hex"] = Convert.ToHexStringLower(b);
        return o;
    }

    private static JsonObject EncodeArray(NdArray a, Encoder encoder)
    {
        var shape = new JsonArray();
        foreach (var d in a.Shape) shape.Add(d);
        bool c = a.IsCContiguous, f = a.IsFContiguous;
        var o = new JsonObject
        {
            ["t"] = "ndarray",
            ["dtype"] = a.DType.Str,
            ["shape"] = shape,
            ["memory_order"] = c && f ? "CF" : c ? "C" : f ? "F" : "none",
            ["nbytes"] = a.NBytes,
        };
        if (a.Objects is not null)
        {
            var vals = new JsonArray();
            foreach (var item in a.Objects) vals.Add(encoder.Encode(item));
            o["values"] = vals;
            return o;
        }
        o["sha256_c"] = a.Sha256C();
        if (!a.DType.IsNumeric && a.DType.Kind is not ('S' or 'U')) return o;
        var n = a.ToNativeC();
        if (a.Size <= ValuesLimit)
        {
            var vals = new JsonArray();
            for (long i = 0; i < a.Size; i++) vals.Add(ElementJson(n.GetItem(i)));
            o["values"] = vals;
        }
        else
        {
            var first = new JsonArray();
            var last = new JsonArray();
            for (long i = 0; i < 3; i++) first.Add(ElementJson(n.GetItem(i)));
            for (long i = a.Size - 3; i < a.Size; i++) last.Add(ElementJson(n.GetItem(i)));
            o["first"] = first;
            o["last"] = last;
        }
        if (a.DType.IsInteger || a.DType.Kind == 'b')
        {
            BigInteger sum = 0;
            for (long i = 0; i < a.Size; i++) { PyInt.TryGetBigInteger(n.GetItem(i), out var v); sum += v; }
            o["sum"] = sum.ToString(CultureInfo.InvariantCulture);
        }
        return o;
    }

    private static JsonNode? ElementJson(object? v) => v switch
    {
        bool b => JsonValue.Create(b),
        long l => Math.Abs((double)l) < 9007199254740992.0 ? JsonValue.Create(l) : JsonValue.Create(l.ToString(CultureInfo.InvariantCulture)),
        ulong u => u < 9007199254740992UL ? JsonValue.Create(u) : JsonValue.Create(u.ToString(CultureInfo.InvariantCulture)),
        double d => FloatValue(d),
        Complex c => new JsonArray(FloatValue(c.Real), FloatValue(c.Imaginary)),
        byte[] raw => JsonValue.Create(Convert.ToHexStringLower(TrimNul(raw))),
        string s => JsonValue.Create(s),
        _ => JsonValue.Create(PyRepr.Repr(v)),
    };

    private static byte[] TrimNul(byte[] b)
    {
        int n = b.Length;
        while (n > 0 && b[n - 1] == 0) n--;
        return b[..n];
    }

    /// <summary>Python's <c>float.hex()</c>: <c>0x1.8000000000000p+0</c>, <c>-0x0.0p+0</c>, <c>inf</c>, <c>nan</c>.</summary>
    public static string FloatHex(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsInfinity(d)) return d > 0 ? "inf" : "-inf";
        long bits = BitConverter.DoubleToInt64Bits(d);
        string sign = bits < 0 ? "-" : "";
        int exp = (int)((bits >> 52) & 0x7FF);
        long mant = bits & 0xFFFFFFFFFFFFFL;
        if (exp == 0 && mant == 0) return sign + "0x0.0p+0";
        int e;
        string lead;
        if (exp == 0) { lead = "0"; e = -1022; }
        else { lead = "1"; e = exp - 1023; }
        return string.Create(CultureInfo.InvariantCulture, $"{sign}0x{lead}.{mant:x13}p{(e >= 0 ? "+" : "-")}{Math.Abs(e)}");
    }
}
