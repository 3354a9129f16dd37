using System.Globalization;
using System.Numerics;
using System.Security.Cryptography;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// A SHA-256 over the decoded content of a store, in a form a Python reader can rebuild from what upstream's
/// getters return (the demo's checker, <c>tests/SyConn.Backend.Tests/Cli/check_demo.py</c>, does):
/// for each object key in ascending order <c>K&lt;key&gt;;</c> and the value, where an ndarray is
/// <c>A&lt;dtype.str&gt;;&lt;shape, comma-separated&gt;;</c> and its C-order bytes (a numpy scalar: empty shape),
/// a dict <c>D&lt;n&gt;;</c> and its items sorted by key, a list <c>L&lt;n&gt;;</c>, a tuple <c>T&lt;n&gt;;</c>,
/// a str <c>S&lt;utf-8 length&gt;;</c> and its bytes, an int <c>I&lt;decimal&gt;;</c>, a float <c>F</c> and its
/// 8 little-endian bytes, a bool <c>B0;</c>/<c>B1;</c>, None <c>N;</c>, bytes <c>Y&lt;n&gt;;</c> and the bytes.
/// </summary>
internal sealed class DemoDigest : IDisposable
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);

    public void Key(BigInteger key) => Text(string.Create(CultureInfo.InvariantCulture, $"K{key};"));

    public void Value(object? v)
    {
        switch (v)
        {
            case null or PyNone: Text("N;"); break;
            case bool b: Text(b ? "B1;" : "B0;"); break;
            case long or int or BigInteger: Text(string.Create(CultureInfo.InvariantCulture, $"I{v};")); break;
            case double d:
                Text("F");
                Span<byte> buf = stackalloc byte[8];
                System.Buffers.Binary.BinaryPrimitives.WriteDoubleLittleEndian(buf, d);
                _hash.AppendData(buf);
                break;
            case string s:
                var utf8 = Encoding.UTF8.GetBytes(s);
                Text(string.Create(CultureInfo.InvariantCulture, $"S{utf8.Length};"));
                _hash.AppendData(utf8);
                break;
            case PyBytes pb:
                Text(string.Create(CultureInfo.InvariantCulture, $"Y{pb.Length};"));
                _hash.AppendData(pb.Data.Span);
                break;
            case NdArray a:
                if (a.Objects is not null) throw new InvalidDataException("object arrays have no digest form");
                Text($"A{a.DType.Str};{string.Join(",", a.ShapeArray)};");
                _hash.AppendData(a.IsCContiguous ? a.Data.Span : a.ToCBytes());
                break;
            case NpScalar sc:
                Text($"A{sc.DType.Str};;");
                _hash.AppendData(sc.Raw);
                break;
            case PyDict d:
                Text(string.Create(CultureInfo.InvariantCulture, $"D{d.Count};"));
                foreach (var kv in d.OrderBy(kv => kv.Key as string ?? throw new InvalidDataException("dict keys of the digest form are str"), StringComparer.Ordinal))
                {
                    Value(kv.Key);
                    Value(kv.Value);
                }
                break;
            case PyTuple t:
                Text(string.Create(CultureInfo.InvariantCulture, $"T{t.Count};"));
                foreach (var x in t) Value(x);
                break;
            case PyList l:
                Text(string.Create(CultureInfo.InvariantCulture, $"L{l.Count};"));
                foreach (var x in l) Value(x);
                break;
            default: throw new InvalidDataException($"{v.GetType().Name} has no digest form");
        }
    }

    private void Text(string s) => _hash.AppendData(Encoding.UTF8.GetBytes(s));

    public string Hex() => Convert.ToHexStringLower(_hash.GetHashAndReset());

    public void Dispose() => _hash.Dispose();
}
