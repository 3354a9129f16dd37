using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// Compares a typed JSON tree we produced with an expected one (a MANIFEST entry) on the fields the
/// contracts note makes required, understanding the manifest's compact forms (<c>int_values</c>, <c>int_items</c>).
/// </summary>
public static class TypedJsonAssert
{
    /// <summary>Asserts equality; the message lists the first differences with their JSON paths.</summary>
    public static void Equal(JsonNode? expected, JsonNode? actual, string what = "value")
    {
        var diffs = new List<string>();
        Compare(expected, actual, "$", diffs);
        if (diffs.Count > 0)
            Assert.Fail($"{what} differs from the expected typed JSON ({diffs.Count} differences):\n  " + string.Join("\n  ", diffs.Take(20)));
    }

    /// <summary>The differences between two typed JSON trees (empty when equal).</summary>
    public static List<string> Differences(JsonNode? expected, JsonNode? actual)
    {
        var diffs = new List<string>();
        Compare(expected, actual, "$", diffs);
        return diffs;
    }

    private static void Compare(JsonNode? e, JsonNode? a, string path, List<string> diffs)
    {
        if (diffs.Count > 50) return;
        if (e is not JsonObject eo || a is not JsonObject ao)
        {
            diffs.Add($"{path}: expected object {Short(e)}, got {Short(a)}");
            return;
        }
        string? t = (string?)eo["t"];
        string? at = (string?)ao["t"];
        if (t != at) { diffs.Add($"{path}: type {t} expected, got {at} ({Short(a)})"); return; }
        switch (t)
        {
            case "None": break;
            case "bool": Field(eo, ao, "v", path, diffs); break;
            case "int": Field(eo, ao, "v", path, diffs); break;
            case "str":
                if (eo["v"] is not null) Field(eo, ao, "v", path, diffs);
                else { Field(eo, ao, "len", path, diffs); Field(eo, ao, "utf8_sha256", path, diffs); }
                break;
            case "float":
                Field(eo, ao, "hex", path, diffs);
                if (!FloatEq(eo["v"], ao["v"])) diffs.Add($"{path}.v: expected {Short(eo["v"])}, got {Short(ao["v"])}");
                break;
            case "complex":
            {
                var ev = (JsonArray)eo["v"]!; var av = ao["v"] as JsonArray;
                if (av is null || av.Count != 2 || !FloatEq(ev[0], av[0]) || !FloatEq(ev[1], av[1]))
                    diffs.Add($"{path}.v: expected {Short(ev)}, got {Short(av)}");
                break;
            }
            case "bytes" or "bytearray":
                Field(eo, ao, "len", path, diffs); Field(eo, ao, "sha256", path, diffs); break;
            case "list" or "tuple":
                CompareSeq(ExpandList(eo), ao["items"] as JsonArray, path, diffs); break;
            case "set" or "frozenset":
                CompareUnordered((JsonArray)eo["items"]!, ao["items"] as JsonArray, path, diffs); break;
            case "dict":
                CompareSeq(ExpandDict(eo), ao["items"] as JsonArray, path, diffs); break;
            case "defaultdict":
                Field(eo, ao, "default_factory", path, diffs);
                CompareSeq(ExpandDict(eo), ao["items"] as JsonArray, path, diffs);
                break;
            case "npscalar": Field(eo, ao, "dtype", path, diffs); Field(eo, ao, "raw_hex", path, diffs); break;
            case "dtype": Field(eo, ao, "str", path, diffs); break;
            case "ndarray":
                Field(eo, ao, "dtype", path, diffs);
                Field(eo, ao, "shape", path, diffs);
                if (eo["sha256_c"] is not null) Field(eo, ao, "sha256_c", path, diffs);
                else if (eo["values"] is JsonArray ev2) CompareSeq(ev2, ao["values"] as JsonArray, path + ".values", diffs);
                break;
            default: diffs.Add($"{path}: unknown typed JSON type '{t}'"); break;
        }
    }

    private static JsonArray ExpandList(JsonObject o)
    {
        if (o["items"] is JsonArray items) return items;
        var arr = new JsonArray();
        foreach (var v in (JsonArray)o["int_values"]!) arr.Add(IntNode(v!));
        return arr;
    }

    private static JsonArray ExpandDict(JsonObject o)
    {
        if (o["items"] is JsonArray items) return items;
        var arr = new JsonArray();
        foreach (var kv in (JsonArray)o["int_items"]!)
            arr.Add(new JsonArray(IntNode(kv![0]!), IntNode(kv[1]!)));
        return arr;
    }

    private static JsonObject IntNode(JsonNode n) => new() { ["t"] = "int", ["v"] = n.ToJsonString().Trim('"') };

    private static void CompareSeq(JsonArray e, JsonArray? a, string path, List<string> diffs)
    {
        if (a is null) { diffs.Add($"{path}: expected items, got none"); return; }
        if (e.Count != a.Count) diffs.Add($"{path}: expected {e.Count} items, got {a.Count}");
        for (int i = 0; i < Math.Min(e.Count, a.Count); i++)
        {
            if (e[i] is JsonArray ep && a[i] is JsonArray ap && ep.Count == 2 && ap.Count == 2)
            {
                Compare(ep[0], ap[0], $"{path}[{i}].key", diffs);
                Compare(ep[1], ap[1], $"{path}[{i}].value", diffs);
            }
            else if (e[i] is JsonObject) Compare(e[i], a[i], $"{path}[{i}]", diffs);
            else if (!JsonNode.DeepEquals(e[i], a[i]) && !FloatEq(e[i], a[i])) diffs.Add($"{path}[{i}]: expected {Short(e[i])}, got {Short(a[i])}");
        }
    }

    private static void CompareUnordered(JsonArray e, JsonArray? a, string path, List<string> diffs)
    {
        if (a is null || e.Count != a.Count) { diffs.Add($"{path}: expected {e.Count} set items, got {a?.Count}"); return; }
        var used = new bool[a.Count];
        foreach (var item in e)
        {
            int match = -1;
            for (int j = 0; j < a.Count && match < 0; j++)
                if (!used[j] && Differences(item, a[j]).Count == 0) match = j;
            if (match < 0) diffs.Add($"{path}: no match for set item {Short(item)}");
            else used[match] = true;
        }
    }

    private static void Field(JsonObject e, JsonObject a, string name, string path, List<string> diffs)
    {
        var ev = e[name];
        var av = a[name];
        if (ev is null && av is null) return;
        if (ev is JsonValue && av is JsonValue && ev.GetValueKind() == JsonValueKind.Number && av.GetValueKind() == JsonValueKind.Number)
        {
            if (decimal.Parse(ev.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture) == decimal.Parse(av.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture)) return;
        }
        else if (JsonNode.DeepEquals(ev, av)) return;
        diffs.Add($"{path}.{name}: expected {Short(ev)}, got {Short(av)}");
    }

    private static bool FloatEq(JsonNode? e, JsonNode? a)
    {
        if (e is null || a is null) return e is null && a is null;
        if (e.GetValueKind() == JsonValueKind.String || a.GetValueKind() == JsonValueKind.String)
            return e.GetValueKind() == a.GetValueKind() && (string?)e == (string?)a;
        if (e.GetValueKind() != JsonValueKind.Number || a.GetValueKind() != JsonValueKind.Number) return false;
        double x = double.Parse(e.ToJsonString(), CultureInfo.InvariantCulture);
        double y = double.Parse(a.ToJsonString(), CultureInfo.InvariantCulture);
        return x.Equals(y);
    }

    private static string Short(JsonNode? n)
    {
        var s = n?.ToJsonString() ?? "null";
        return s.Length > 200 ? s[..200] + "..." : s;
    }
}

/// <summary>Loads the fixtures' MANIFEST.json once.</summary>
public static class Manifest
{
    private static readonly Lazy<JsonObject> Py = new(() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Shared.PyFixture("MANIFEST.json")))!);

    /// <summary>The <c>files</c> entry of one fixture.</summary>
    public static JsonObject File_(string name) => (JsonObject)Py.Value["files"]![name]!;

    /// <summary>All fixture names in the manifest.</summary>
    public static IEnumerable<string> Files => ((JsonObject)Py.Value["files"]!).Select(kv => kv.Key);
}
