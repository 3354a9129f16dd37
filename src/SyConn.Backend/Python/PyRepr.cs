using System.Globalization;
using System.Numerics;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>Short Python-like text of a value, for messages and debugging.</summary>
public static class PyRepr
{
    /// <summary>A Python-like <c>repr</c>, abbreviated for large values.</summary>
    public static string Repr(object? value) => value switch
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

    private static string FloatRepr(double d) =>
        double.IsNaN(d) ? "nan" : double.IsPositiveInfinity(d) ? "inf" : double.IsNegativeInfinity(d) ? "-inf" : d.ToString("R", CultureInfo.InvariantCulture);

    private static string Escape(ReadOnlySpan<byte> b)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var c in b)
        {
            if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') sb.Append((char)c);
            else sb.Append(CultureInfo.InvariantCulture, $"\\x{c:x2}");
        }
        return sb.ToString();
    }
}
