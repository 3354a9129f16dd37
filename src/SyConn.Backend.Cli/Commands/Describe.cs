using SyConn.Backend.Python;

namespace SyConn.Backend.Cli.Commands;

/// <summary>Human-readable rendering of Python values for the CLI.</summary>
internal static class Describe
{
    public static string Value(object? v, int indent = 0)
    {
        var pad = new string(' ', indent);
        switch (v)
        {
            case Arrays.NdArray a:
            {
                var s = $"{a}";
                if (a.Objects is null && a.DType.IsNumeric && a.Size > 0)
                {
                    var n = a.ToNativeC();
                    long shown = Math.Min(a.Size, 12);
                    var items = Enumerable.Range(0, (int)shown).Select(i => PyRepr.Repr(n.GetItem(i) is ulong u ? PyInt.From(u) : n.GetItem(i)));
                    s += " [" + string.Join(", ", items) + (a.Size > shown ? ", ..." : "") + "]";
                }
                return s;
            }
            case PyDict d:
                if (d.Count == 0) return "{}";
                return "{\n" + string.Join(",\n", d.Select(kv => $"{pad}  {PyRepr.Repr(kv.Key)}: {Value(kv.Value, indent + 2)}")) + $"\n{pad}}}";
            case PyList l:
                if (l.Count == 0) return "[]";
                return "[\n" + string.Join(",\n", l.Select(x => $"{pad}  {Value(x, indent + 2)}")) + $"\n{pad}]";
            case PyTuple t:
                return "(\n" + string.Join(",\n", t.Select(x => $"{pad}  {Value(x, indent + 2)}")) + $"\n{pad})";
            default: return PyRepr.Repr(v);
        }
    }
}
