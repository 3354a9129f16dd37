using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Text;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>Short Python-like text of a value, for messages and debugging.</summary>
public static class PyRepr
{
    /// <summary>Characters after which <see cref="Repr"/> cuts a value's text short (with <c>...</c>).</summary>
    public const int MaxLength = 10_000;

    /// <summary>Nesting beyond which <see cref="Repr"/> writes <c>...</c> instead of the inner values.</summary>
    public const int MaxDepth = 100;

    /// <summary>
    /// A Python-like <c>repr</c>, abbreviated for large values: long strings and bytes are shortened, containers
    /// nested deeper than <see cref="MaxDepth"/> are written <c>...</c>, and the whole text stops after about
    /// <see cref="MaxLength"/> characters. A container that holds itself is written as Python writes it
    /// (<c>[[...]]</c>, <c>{'self': {...}}</c>; an object array inside itself is <c>ndarray(...)</c>); other shared
    /// objects are written at each place, within the length limit.
    /// </summary>
    public static string Repr(object? value)
    {
        if (!IsContainer(value)) return Atom(value);
        var w = new Writer();
        w.Write(value, 0);
        return w.ToString();
    }

    private static bool IsContainer(object? v) => v is PyList or PyTuple or PyDict or PySet or NdArray { Objects: not null, Size: > 0 };

    private static string Atom(object? value) => value switch
    {
        null or PyNone => "None",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        BigInteger bi => bi.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        Complex c => $"({FloatRepr(c.Real)}{(c.Imaginary < 0 || double.IsNegative(c.Imaginary) ? "" : "+")}{FloatRepr(c.Imaginary)}j)",
        string s => "'" + (s.Length > 80 ? s[..80] + "..." : s) + "'",
        PyBytes pb => pb.Length <= 32 ? "b'" + Escape(pb.Data.Span) + "'" : $"<bytes of length {pb.Length}>",
        PyByteArray ba => $"bytearray(<{ba.Data.Length} bytes>)",
        NdArray a => a.ToString(),
        DType dt => $"dtype('{dt.Str}')",
        _ => value.ToString() ?? value.GetType().Name,
    };

    /// <summary>Writes containers without recursing into themselves, within the length and depth limits.</summary>
    private sealed class Writer
    {
        private readonly StringBuilder _sb = new();
        private readonly HashSet<object> _open = new(ReferenceEqualityComparer.Instance);

        private bool Full => _sb.Length >= MaxLength;

        public override string ToString() => _sb.ToString();

        public void Write(object? v, int depth)
        {
            if (Full) return;
            if (!IsContainer(v)) { _sb.Append(Atom(v)); return; }
            var c = v!;
            if (_open.Contains(c)) { _sb.Append(c switch { PyList => "[...]", PyTuple => "(...)", NdArray => "ndarray(...)", _ => "{...}" }); return; }
            if (depth >= MaxDepth || !RuntimeHelpers.TryEnsureSufficientExecutionStack()) { _sb.Append("..."); return; }
            _open.Add(c);
            switch (c)
            {
                case PyList l: Items("[", l, "]", depth); break;
                case PyTuple t: Items("(", t, t.Count == 1 ? ",)" : ")", depth); break;
                case PySet { Count: 0 } s: _sb.Append(s.IsFrozen ? "frozenset()" : "set()"); break;
                case PySet s:
                    if (s.IsFrozen) _sb.Append("frozenset(");
                    Items("{", s, "}", depth);
                    if (s.IsFrozen) _sb.Append(')');
                    break;
                case NdArray a:
                    // As NdArray.ToString writes other arrays: dtype, shape and the first values.
                    _sb.Append("ndarray(dtype=").Append(a.DType.Str).Append(", shape=").Append(a.ShapeText());
                    Items(", [", a.Objects!.Take(NdArray.ToStringValues).Select(o => o ?? PyNone.Value), a.Size > NdArray.ToStringValues ? ", ...])" : "])", depth);
                    break;
                case PyDict d:
                {
                    _sb.Append('{');
                    bool first = true;
                    foreach (var kv in d)
                    {
                        if (!first) _sb.Append(", ");
                        first = false;
                        if (Full) { _sb.Append("..."); break; }
                        Write(kv.Key, depth + 1);
                        _sb.Append(": ");
                        Write(kv.Value, depth + 1);
                    }
                    _sb.Append('}');
                    break;
                }
            }
            _open.Remove(c);
        }

        private void Items(string open, IEnumerable<object> items, string close, int depth)
        {
            _sb.Append(open);
            bool first = true;
            foreach (var item in items)
            {
                if (!first) _sb.Append(", ");
                first = false;
                if (Full) { _sb.Append("..."); break; }
                Write(item, depth + 1);
            }
            _sb.Append(close);
        }
    }

    private static string FloatRepr(double d) =>
        double.IsNaN(d) ? "nan" : double.IsPositiveInfinity(d) ? "inf" : double.IsNegativeInfinity(d) ? "-inf" : d.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(ReadOnlySpan<byte> b)
    {
        var sb = new StringBuilder();
        foreach (var c in b)
        {
            if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') sb.Append((char)c);
            else sb.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
        }
        return sb.ToString();
    }
}
