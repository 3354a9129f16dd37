using System.Globalization;
using System.Numerics;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Human-readable rendering of Python values for the CLI, close to what Python prints: sets as <c>{1, 2}</c>, a
/// defaultdict as <c>defaultdict(int, {...})</c>, numpy scalars as <c>np.float32(0.5)</c>, arrays with their
/// shape as numpy nests them (summarised with <c>...</c> beyond <see cref="FullArrayLimit"/> elements), float32
/// values with float32 digits. Containers that fit on one line are printed on one line.
/// </summary>
internal static class Describe
{
    /// <summary>Arrays up to this many elements are printed in full; larger ones show 3 items at each end of each axis.</summary>
    public const int FullArrayLimit = 100;

    private const int EdgeItems = 3;
    private const int LineWidth = 100;

    /// <summary>Most containers and arrays one rendering writes out (shared references count each time they are written).</summary>
    public const int MaxParts = 200_000;

    private const int MaxDepth = 200;

    /// <summary>The containers being written (a container met again inside itself is a cycle) and the parts written so far.</summary>
    private sealed class Walk
    {
        public readonly HashSet<object> Open = new(ReferenceEqualityComparer.Instance);
        public long Parts;
    }

    [ThreadStatic]
    private static Walk? _walk;

    /// <summary>
    /// Renders <paramref name="v"/>; nested lines are indented by <paramref name="indent"/> more spaces. A container
    /// inside itself prints as Python prints it (<c>[...]</c>, <c>{...}</c>, <c>(...)</c>); nesting beyond 200 levels
    /// prints as <c>...</c>.
    /// </summary>
    /// <exception cref="InvalidDataException">The value has more than <see cref="MaxParts"/> parts to write out.</exception>
    public static string Value(object? v, int indent = 0)
    {
        if (_walk is not null) return ValueCore(v, indent);
        _walk = new Walk();
        try
        {
            return ValueCore(v, indent);
        }
        finally
        {
            _walk = null;
        }
    }

    private static bool IsContainer(object? v) => v is PyDict or PyList or PyTuple or PySet || v is NdArray { Objects: not null };

    private static string CycleMark(object v) => v switch
    {
        PyList => "[...]",
        PyTuple => "(...)",
        NdArray => "array(...)",
        _ => "{...}",
    };

    private static string ValueCore(object? v, int indent)
    {
        var walk = _walk!;
        if (IsContainer(v))
        {
            if (walk.Open.Contains(v!)) return CycleMark(v!);
            if (walk.Open.Count >= MaxDepth) return "...";
            if (++walk.Parts > MaxParts)
                throw new InvalidDataException($"the value has more than {MaxParts} parts to print (shared references are written out each time); use --json, which writes cycles as references, or -o FILE.json");
        }
        var inline = Inline(v);
        if (inline is not null && inline.Length + indent <= LineWidth) return inline;
        if (!IsContainer(v)) return Multiline(v, indent, inline);
        walk.Open.Add(v!);
        try
        {
            return Multiline(v, indent, inline);
        }
        finally
        {
            walk.Open.Remove(v!);
        }
    }

    private static string Multiline(object? v, int indent, string? inline)
    {
        var pad = new string(' ', indent);
        switch (v)
        {
            case NdArray a:
                return Header(a) + "\n" + pad + ArrayBody(a, indent);
            case PyDict d:
            {
                var body = "{\n" + string.Join(",\n", d.Select(kv => $"{pad}  {ValueCore(kv.Key, indent + 2)}: {ValueCore(kv.Value, indent + 2)}")) + $"\n{pad}}}";
                return WrapDict(d, body);
            }
            case PyList l:
                return "[\n" + string.Join(",\n", l.Select(x => $"{pad}  {ValueCore(x, indent + 2)}")) + $"\n{pad}]";
            case PyTuple t:
                return "(\n" + string.Join(",\n", t.Select(x => $"{pad}  {ValueCore(x, indent + 2)}")) + (t.Count == 1 ? "," : "") + $"\n{pad})";
            case PySet s:
            {
                var body = "{\n" + string.Join(",\n", SortedItems(s).Select(x => $"{pad}  {ValueCore(x, indent + 2)}")) + $"\n{pad}}}";
                return s.IsFrozen ? $"frozenset({body})" : body;
            }
            default:
                return inline ?? PyRepr.Repr(v);
        }
    }

    /// <summary>
    /// A labelled rendering of a MeshStorage value (<c>[indices, vertices, normals(, colours)]</c>): one line per
    /// part, saying what it is and how many vertices and faces the mesh has.
    /// </summary>
    public static string Mesh(object? v)
    {
        if (v is not PyList parts || parts.Count is < 3 or > 4 || parts.Any(p => p is not NdArray)) return Value(v);
        var ind = (NdArray)parts[0];
        var vert = (NdArray)parts[1];
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"mesh: {vert.Size / 3} vertices, {ind.Size / 3} triangles\n");
        string[] names = ["indices", "vertices", "normals", "colours"];
        for (int i = 0; i < parts.Count; i++)
            sb.Append(CultureInfo.InvariantCulture, $"{names[i]}: {Value(Rows((NdArray)parts[i], 3), 2)}\n");
        return sb.ToString().TrimEnd('\n');
    }

    /// <summary>
    /// A labelled rendering of a SkeletonStorage value: nodes as (n, 3) rows and edges as (m, 2) pairs, the other
    /// fields as they are.
    /// </summary>
    public static string Skeleton(object? v)
    {
        if (v is not PyDict d) return Value(v);
        var shown = new PyDict();
        foreach (var kv in d)
        {
            shown[kv.Key] = kv is { Key: "nodes", Value: NdArray n } ? Rows(n, 3)
                : kv is { Key: "edges", Value: NdArray e } ? Rows(e, 2)
                : kv.Value;
        }
        int nodes = d.TryGetValue("nodes", out var nv) && nv is NdArray na ? (int)(na.Size / 3) : 0;
        int edges = d.TryGetValue("edges", out var ev) && ev is NdArray ea ? (int)(ea.Size / 2) : 0;
        return $"skeleton: {nodes} nodes, {edges} edges\n{Value(shown)}";
    }

    /// <summary>A flat array as rows of <paramref name="width"/> (SyConn keeps coordinates flat), else unchanged.</summary>
    private static NdArray Rows(NdArray a, int width) =>
        a.NDim == 1 && a.Size > 0 && a.Size % width == 0 && a.Objects is null ? a.Reshape(a.Size / width, width) : a;

    private static string WrapDict(PyDict d, string body) => d switch
    {
        PyDefaultDict dd => $"defaultdict({dd.DefaultFactory ?? "None"}, {body})",
        PyOrderedDict => $"OrderedDict({body})",
        _ => body,
    };

    /// <summary>The one-line form, or null when the value holds an array of more than one row or is too long.</summary>
    private static string? Inline(object? v)
    {
        var walk = _walk;
        if (walk is null || !IsContainer(v)) return InlineCore(v);
        if (walk.Open.Contains(v!)) return CycleMark(v!);
        if (walk.Open.Count >= MaxDepth) return "...";
        walk.Open.Add(v!);
        try
        {
            return InlineCore(v);
        }
        finally
        {
            walk.Open.Remove(v!);
        }
    }

    private static string? InlineCore(object? v)
    {
        switch (v)
        {
            case NdArray a:
                return a.Size <= 12 && a.NDim <= 1 ? $"{Header(a)} {ArrayBody(a, 0)}" : null;
            case PyDict d:
            {
                if (d.Count == 0) return WrapDict(d, "{}");
                var parts = new List<string>();
                int length = 0;
                foreach (var kv in d)
                {
                    var k = Inline(kv.Key);
                    var x = k is null ? null : Inline(kv.Value);
                    if (k is null || x is null) return null;
                    parts.Add($"{k}: {x}");
                    if ((length += k.Length + x.Length + 4) > LineWidth) return null;
                }
                return Fits(WrapDict(d, "{" + string.Join(", ", parts) + "}"));
            }
            case PyList l:
                return InlineItems(l, "[", "]");
            case PyTuple t:
                return t.Count == 1 ? InlineItems(t, "(", ",)") : InlineItems(t, "(", ")");
            case PySet s:
                if (s.Count == 0) return s.IsFrozen ? "frozenset()" : "set()";
                var body = InlineItems(SortedItems(s), "{", "}");
                return body is null ? null : s.IsFrozen ? $"frozenset({body})" : body;
            case NpScalar sc:
                return Scalar(sc);
            case double d:
                return FloatText(d);
            case Complex z:
                return Element(DType.Float64, z);
            default:
                return PyRepr.Repr(v);
        }
    }

    private static string? InlineItems(IEnumerable<object> items, string open, string close)
    {
        var parts = new List<string>();
        int length = 0;
        foreach (var x in items)
        {
            var s = Inline(x);
            if (s is null) return null;
            parts.Add(s);
            if ((length += s.Length + 2) > LineWidth) return null;
        }
        return Fits(open + string.Join(", ", parts) + close);
    }

    private static string? Fits(string s) => s.Length <= LineWidth && !s.Contains('\n') ? s : null;

    private static IEnumerable<object> SortedItems(PySet s) => s.OrderBy(x => Inline(x) ?? PyRepr.Repr(x), StringComparer.Ordinal);

    private static string Scalar(NpScalar s)
    {
        var name = s.DType.Kind switch
        {
            'b' => "bool",
            'i' => $"int{s.DType.ItemSize * 8}",
            'u' => $"uint{s.DType.ItemSize * 8}",
            'f' => $"float{s.DType.ItemSize * 8}",
            'c' => $"complex{s.DType.ItemSize * 8}",
            'S' => "bytes_",
            'U' => "str_",
            _ => null,
        };
        if (name is null) return PyRepr.Repr(s.ToObject());
        return $"np.{name}({Element(s.DType, s.ToObject())})";
    }

    private static string Header(NdArray a)
    {
        var shape = a.ShapeArray;
        return $"ndarray(dtype={a.DType.Str}, shape=({string.Join(", ", shape)}{(shape.Length == 1 ? "," : "")}))";
    }

    /// <summary>The array's values nested by its shape, numpy style.</summary>
    private static string ArrayBody(NdArray a, int indent)
    {
        if (a.Size == 0) return "[]";
        var shape = a.ShapeArray;
        if (shape.Length == 0) return Element(a.DType, a.GetItem(0));
        var c = a.Objects is null ? a.ToNativeC() : a;
        bool summarise = a.Size > FullArrayLimit;
        var sb = new StringBuilder();
        var strides = new long[shape.Length];
        long st = 1;
        for (int d = shape.Length - 1; d >= 0; d--) { strides[d] = st; st *= shape[d]; }
        void Axis(int dim, long offset, int depth)
        {
            sb.Append('[');
            long n = shape[dim];
            bool cut = summarise && n > 2 * EdgeItems;
            bool first = true;
            for (long i = 0; i < n; i++)
            {
                if (cut && i == EdgeItems)
                {
                    sb.Append(dim == shape.Length - 1 ? ", ..." : ",\n" + new string(' ', indent + depth + 1) + "...");
                    i = n - EdgeItems - 1;
                    continue;
                }
                if (dim < shape.Length - 1)
                {
                    if (!first) sb.Append(",\n" + new string(' ', indent + depth + 1));
                    first = false;
                    Axis(dim + 1, offset + i * strides[dim], depth + 1);
                    continue;
                }
                var text = Element(c.DType, c.GetItem(offset + i));
                if (!first)
                {
                    sb.Append(',');
                    int lineStart = sb.ToString().LastIndexOf('\n') + 1;
                    if (sb.Length - lineStart + text.Length + 2 > LineWidth - indent) sb.Append('\n').Append(' ', indent + depth + 1);
                    else sb.Append(' ');
                }
                first = false;
                sb.Append(text);
            }
            sb.Append(']');
        }
        Axis(0, 0, 0);
        return sb.ToString();
    }

    /// <summary>One element of an array of <paramref name="dtype"/> (float32 and float16 with their own shortest digits).</summary>
    private static string Element(DType dtype, object? item) => item switch
    {
        double d when dtype.Kind == 'f' && dtype.ItemSize == 4 => FloatText((float)d),
        double d when dtype.Kind == 'f' && dtype.ItemSize == 2 => FloatText((float)(Half)d),
        double d => FloatText(d),
        Complex z => $"({FloatText(z.Real)}{(z.Imaginary < 0 || double.IsNegative(z.Imaginary) ? "" : "+")}{FloatText(z.Imaginary)}j)",
        ulong u => u.ToString(CultureInfo.InvariantCulture),
        byte[] b => PyRepr.Repr(new PyBytes(b.AsSpan(0, b.AsSpan().TrimEnd((byte)0).Length).ToArray())),
        string s => PyRepr.Repr(s),
        _ => item is null || dtype.Kind == 'O' ? Inline(item) ?? PyRepr.Repr(item) : PyRepr.Repr(item),
    };

    private static string FloatText(double d) =>
        double.IsNaN(d) ? "nan" : double.IsPositiveInfinity(d) ? "inf" : double.IsNegativeInfinity(d) ? "-inf"
        : WithPoint(d.ToString("R", CultureInfo.InvariantCulture));

    private static string FloatText(float f) =>
        float.IsNaN(f) ? "nan" : float.IsPositiveInfinity(f) ? "inf" : float.IsNegativeInfinity(f) ? "-inf"
        : WithPoint(f.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Python writes floats with a point (<c>1.0</c>) and exponents as <c>1e+20</c>.</summary>
    private static string WithPoint(string s)
    {
        if (s.Contains('E'))
        {
            var parts = s.Split('E');
            var exp = parts[1];
            if (!exp.StartsWith('-') && !exp.StartsWith('+')) exp = "+" + exp;
            if (exp.Length == 2) exp = exp[0] + "0" + exp[1];
            return parts[0] + "e" + exp;
        }
        return s.Contains('.') ? s : s + ".0";
    }
}
