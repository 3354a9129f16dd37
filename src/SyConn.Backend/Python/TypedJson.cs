using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>
/// The typed JSON form of Python values used by the fixtures' MANIFEST and by <c>syconn-store dump</c>:
/// every value is an object <c>{"t": TYPE, ...}</c> (see the contracts note for the fields).
/// </summary>
/// <remarks>Stateless and thread-safe.</remarks>
public static class TypedJson
{
    private const int LongStringLimit = 1000;
    private const int ValuesLimit = 64;

    /// <summary>The typed JSON tree of <paramref name="value"/>.</summary>
    /// <exception cref="ArgumentException">A value outside the Python value model.</exception>
    public static JsonObject ToJson(object? value) => Encode(value, 0);

    private static JsonObject Encode(object? value, int depth)
    {
        if (depth > 10_000) throw new ArgumentException("value nests too deeply for typed JSON");
        switch (value)
        {
            case null or PyNone: return T("None");
            case bool b: return new JsonObject { ["t"] = "bool", ["v"] = b };
            case long or int or BigInteger or ulong:
                PyInt.TryGetBigInteger(value, out var bi);
                return new JsonObject { ["t"] = "int", ["v"] = bi.ToString(CultureInfo.InvariantCulture) };
            case double d: return new JsonObject { ["t"] = "float", ["v"] = FloatValue(d), ["hex"] = FloatHex(d) };
            case float f: return Encode((double)f, depth);
            case Complex c: return new JsonObject { ["t"] = "complex", ["v"] = new JsonArray(FloatValue(c.Real), FloatValue(c.Imaginary)) };
            case string s: return EncodeString(s);
            case PyBytes pb: return EncodeBytes("bytes", pb.Data.Span);
            case PyByteArray ba: return EncodeBytes("bytearray", ba.Data.Span);
            case PyTuple t: return Seq("tuple", t, depth);
            case PyList l: return Seq("list", l, depth);
            case PySet set: return Seq(set.IsFrozen ? "frozenset" : "set", set, depth);
            case PyDefaultDict dd:
            {
                var o = new JsonObject { ["t"] = "defaultdict", ["default_factory"] = dd.DefaultFactory ?? "None" };
                o["items"] = Items(dd, depth);
                return o;
            }
            case PyDict dict:
                return new JsonObject { ["t"] = "dict", ["items"] = Items(dict, depth) };
            case NpScalar sc:
            {
                var o = new JsonObject { ["t"] = "npscalar", ["dtype"] = sc.DType.Str, ["raw_hex"] = Convert.ToHexStringLower(sc.Raw) };
                o["value"] = Encode(sc.ToObject(), depth + 1);
                return o;
            }
            case DType dt: return new JsonObject { ["t"] = "dtype", ["str"] = dt.Str };
            case NdArray a: return EncodeArray(a, depth);
            default: throw new ArgumentException($"{value.GetType().Name} is not part of the Python value model");
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

    private static JsonObject Seq(string t, IEnumerable<object> items, int depth)
    {
        var arr = new JsonArray();
        foreach (var item in items) arr.Add(Encode(item, depth + 1));
        return new JsonObject { ["t"] = t, ["items"] = arr };
    }

    private static JsonArray Items(PyDict dict, int depth)
    {
        var arr = new JsonArray();
        foreach (var kv in dict) arr.Add(new JsonArray(Encode(kv.Key, depth + 1), Encode(kv.Value, depth + 1)));
        return arr;
    }

    private static JsonObject EncodeArray(NdArray a, int depth)
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
            foreach (var item in a.Objects) vals.Add(Encode(item, depth + 1));
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
