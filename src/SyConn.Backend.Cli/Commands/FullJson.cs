using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>--json --full</c>: typed JSON that leaves nothing out. The typed JSON schema gives large arrays as a
/// checksum and their first and last values, and strings over 1000 code points as a length and a checksum;
/// this adds every array's flat C-order <c>values</c> and every string's <c>v</c>, in the schema's own value
/// format.
/// </summary>
internal static class FullJson
{
    private const int Slice = 64;

    /// <summary>The typed JSON of <paramref name="value"/> with all values written out.</summary>
    public static JsonObject Of(object? value)
    {
        var json = TypedJson.ToJson(value);
        Fill(value, json);
        return json;
    }

    private static void Fill(object? value, JsonNode? node)
    {
        if (node is not JsonObject o) return;
        if ((string?)o["t"] == "ref") return;
        switch (value)
        {
            case string s when o["v"] is null:
                o["v"] = s;
                break;
            case NdArray a when o["values"] is null && a.Objects is null && (a.DType.IsNumeric || a.DType.Kind is 'S' or 'U'):
                o["values"] = Values(a);
                break;
            case PyDict d when o["items"] is JsonArray items && items.Count == d.Count:
            {
                int i = 0;
                foreach (var kv in d)
                {
                    if (items[i++] is JsonArray pair && pair.Count == 2)
                    {
                        Fill(kv.Key, pair[0]);
                        Fill(kv.Value, pair[1]);
                    }
                }
                break;
            }
            case PyList l when o["items"] is JsonArray items && items.Count == l.Count:
                for (int i = 0; i < l.Count; i++) Fill(l[i], items[i]);
                break;
            case PyTuple t when o["items"] is JsonArray items && items.Count == t.Count:
                for (int i = 0; i < t.Count; i++) Fill(t[i], items[i]);
                break;
        }
    }

    /// <summary>The flat C-order values, encoded by the typed JSON writer itself slice by slice (it lists arrays of up to 64 elements in full).</summary>
    private static JsonArray Values(NdArray a)
    {
        var c = a.ToNativeC();
        var all = new JsonArray();
        int item = c.DType.ItemSize;
        for (long start = 0; start < c.Size; start += Slice)
        {
            long n = Math.Min(Slice, c.Size - start);
            var part = new NdArray(c.DType, [n], c.Data.Slice((int)(start * item), (int)(n * item)));
            if (TypedJson.ToJson(part)["values"] is not JsonArray vals)
                throw new InvalidOperationException($"typed JSON gives no values for dtype {c.DType.Str}");
            foreach (var v in vals.ToArray())
            {
                vals.Remove(v);
                all.Add(v);
            }
        }
        return all;
    }
}
