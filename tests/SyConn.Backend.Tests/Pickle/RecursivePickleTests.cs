using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// Legal but unusual pickles: containers that hold themselves, shared references, and 2^n expansions. They load as
/// CPython loads them, print with <c>ref</c> nodes, compare and hash in linear time, and write back with the same
/// identities; expansion and nesting beyond the limits are refused with clear errors, never a crash.
/// </summary>
public class RecursivePickleTests
{
    // Each case: the Python expression building `v`, the identity checks on `v` (Python), and the expected typed JSON.
    private static readonly (string Name, string Build, string Check, string Json)[] Cases =
    [
        ("self_list", "v = []; v.append(v)", "v[0] is v",
            """{"t":"list","items":[{"t":"ref","up":1}]}"""),
        ("self_dict", "v = {}; v['self'] = v", "v['self'] is v",
            """{"t":"dict","items":[[{"t":"str","v":"self"},{"t":"ref","up":1}]]}"""),
        ("deeper_list", "v = [[]]; v[0].append(v)", "v[0][0] is v and v[0] is not v",
            """{"t":"list","items":[{"t":"list","items":[{"t":"ref","up":2}]}]}"""),
        ("dict_list_dict", "v = {}; v['v'] = [v]", "v['v'][0] is v",
            """{"t":"dict","items":[[{"t":"str","v":"v"},{"t":"list","items":[{"t":"ref","up":2}]}]]}"""),
        ("tuple_in_cycle", "l = []; v = (l, 1); l.append(v)", "v[0][0] is v and type(v) is tuple",
            """{"t":"tuple","items":[{"t":"list","items":[{"t":"ref","up":2}]},{"t":"int","v":"1"}]}"""),
        ("list_tuple_list", "v = []; v.append((v, 2))", "v[0][0] is v",
            """{"t":"list","items":[{"t":"tuple","items":[{"t":"ref","up":2},{"t":"int","v":"2"}]}]}"""),
        ("shared_not_cycle", "x = [1]; v = [x, x]", "v[0] is v[1]",
            """{"t":"list","items":[{"t":"list","items":[{"t":"int","v":"1"}]},{"t":"list","items":[{"t":"int","v":"1"}]}]}"""),
        ("shared_cycles", "c = []; c.append(c); v = {'a': c, 'b': [c]}", "v['a'][0] is v['a'] and v['b'][0] is v['a']",
            """{"t":"dict","items":[[{"t":"str","v":"a"},{"t":"list","items":[{"t":"ref","up":1}]}],[{"t":"str","v":"b"},{"t":"list","items":[{"t":"list","items":[{"t":"ref","up":1}]}]}]]}"""),
        ("three_cycle", "a = []; b = [a]; c = [b]; a.append(c); v = a", "v[0][0][0] is v",
            """{"t":"list","items":[{"t":"list","items":[{"t":"list","items":[{"t":"ref","up":3}]}]}]}"""),
    ];

    public static TheoryData<string, int> CasesAndProtocols()
    {
        var d = new TheoryData<string, int>();
        foreach (var c in Cases)
            foreach (int p in new[] { 2, 4, 5 }) d.Add(c.Name, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(CasesAndProtocols))]
    public void CPython_cycles_load_dump_with_ref_nodes_and_write_back_with_the_same_identities(string name, int protocol)
    {
        PyRun.Require();
        var c = Cases.Single(x => x.Name == name);
        using var tmp = new TempDir();
        var file = tmp.File($"{name}.pkl");
        PyRun.RunChecked($"import pickle, sys\n{c.Build}\nassert {c.Check}\nopen(sys.argv[1], 'wb').write(pickle.dumps(v, protocol={protocol}))", [file]);
        var cpython = File.ReadAllBytes(file);

        var value = P.Load(cpython, sourceName: file);
        CheckIdentities(name, value);

        // dump, in process through the CLI.
        var so = new StringWriter();
        var se = new StringWriter();
        Assert.True(SyConn.Backend.Cli.Cli.Run(["dump", file], so, se) == 0, se.ToString());
        AssertJson(JsonNode.Parse(c.Json), JsonNode.Parse(so.ToString()), name);
        AssertJson(JsonNode.Parse(c.Json), TypedJson.ToJson(value), name);

        // Our writer: the same bytes as CPython, and CPython sees the same identities.
        var ours = P.Dump(value, protocol);
        Assert.Equal(Convert.ToHexString(cpython), Convert.ToHexString(ours));
        var back = tmp.File($"{name}.ours.pkl");
        File.WriteAllBytes(back, ours);
        var verdict = PyRun.RunChecked($"import pickle, sys\nv = pickle.load(open(sys.argv[1], 'rb'))\nprint({c.Check})", [back]);
        Assert.Equal("True", verdict.Trim());

        // Copy, repr, equality and hashing terminate; the copy has the same shape and no shared object.
        var copy = PyCopy.Deep(value);
        CheckIdentities(name, copy);
        Assert.True(PyEquality.AreEqual(value, copy));
        AssertJson(JsonNode.Parse(c.Json), TypedJson.ToJson(copy), name + " (copy)");
        Assert.Equal(PyRun.RunChecked($"{c.Build}\nprint(repr(v))").Trim(), PyRepr.Repr(value));
    }

    private static void CheckIdentities(string name, object v)
    {
        switch (name)
        {
            case "self_list": Assert.Same(v, ((PyList)v)[0]); break;
            case "self_dict": Assert.Same(v, ((PyDict)v)["self"]); break;
            case "deeper_list": Assert.Same(v, ((PyList)((PyList)v)[0])[0]); Assert.NotSame(v, ((PyList)v)[0]); break;
            case "dict_list_dict": Assert.Same(v, ((PyList)((PyDict)v)["v"])[0]); break;
            case "tuple_in_cycle": Assert.Same(v, ((PyList)((PyTuple)v)[0])[0]); break;
            case "list_tuple_list": Assert.Same(v, ((PyTuple)((PyList)v)[0])[0]); break;
            case "shared_not_cycle": Assert.Same(((PyList)v)[0], ((PyList)v)[1]); break;
            case "shared_cycles":
            {
                var d = (PyDict)v;
                var cyc = (PyList)d["a"];
                Assert.Same(cyc, cyc[0]);
                Assert.Same(cyc, ((PyList)d["b"])[0]);
                break;
            }
            case "three_cycle": Assert.Same(v, ((PyList)((PyList)((PyList)v)[0])[0])[0]); break;
            default: Assert.Fail(name); break;
        }
    }

    // numpy object arrays that hold themselves: Python creates the array before its BUILD state (whose list refers
    // to the array through the memo), so the array is its own element.
    private const string SelfArray = "import numpy as np\na = np.empty(2, dtype=object); a[0] = a; a[1] = [a]\n";
    private const string SelfArrayJson =
        """{"t":"ndarray","dtype":"|O","shape":[2],"memory_order":"CF","nbytes":16,"values":[{"t":"ref","up":UP1},{"t":"list","items":[{"t":"ref","up":UP2}]}]}""";

    private static readonly (string Name, string Build, string Check, string Json)[] ArrayCases =
    [
        ("self_array", SelfArray + "v = a", "v[0] is v and v[1][0] is v and type(v[1]) is list",
            SelfArrayJson.Replace("UP1", "1").Replace("UP2", "2")),
        ("dict_self_array", SelfArray + "v = {'a': a, 'l': [a]}", "v['a'][0] is v['a'] and v['a'][1][0] is v['a'] and v['l'][0] is v['a']",
            "{\"t\":\"dict\",\"items\":[[{\"t\":\"str\",\"v\":\"a\"}," + SelfArrayJson.Replace("UP1", "1").Replace("UP2", "2")
            + "],[{\"t\":\"str\",\"v\":\"l\"},{\"t\":\"list\",\"items\":[" + SelfArrayJson.Replace("UP1", "1").Replace("UP2", "2") + "]}]]}"),
        ("list_self_array", SelfArray + "v = [a, (a, 1)]", "v[0][0] is v[0] and v[1][0] is v[0] and v[0][1][0] is v[0]",
            "{\"t\":\"list\",\"items\":[" + SelfArrayJson.Replace("UP1", "1").Replace("UP2", "2")
            + ",{\"t\":\"tuple\",\"items\":[" + SelfArrayJson.Replace("UP1", "1").Replace("UP2", "2") + ",{\"t\":\"int\",\"v\":\"1\"}]}]}"),
    ];

    public static TheoryData<string, int> ArrayCasesAndProtocols()
    {
        var d = new TheoryData<string, int>();
        foreach (var c in ArrayCases)
            foreach (int p in new[] { 2, 4, 5 }) d.Add(c.Name, p);
        return d;
    }

    [SkippableTheory]
    [MemberData(nameof(ArrayCasesAndProtocols))]
    public void CPython_object_arrays_that_hold_themselves_load_dump_and_write_back_with_the_same_identities(string name, int protocol)
    {
        PyRun.Require("numpy");
        var c = ArrayCases.Single(x => x.Name == name);
        using var tmp = new TempDir();
        var file = tmp.File($"{name}.pkl");
        PyRun.RunChecked($"import pickle, sys\n{c.Build}\nassert {c.Check}\nopen(sys.argv[1], 'wb').write(pickle.dumps(v, protocol={protocol}))", [file]);
        var cpython = File.ReadAllBytes(file);

        var value = P.Load(cpython, sourceName: file);
        var array = CheckArrayIdentities(name, value);

        var so = new StringWriter();
        var se = new StringWriter();
        Assert.True(SyConn.Backend.Cli.Cli.Run(["dump", file], so, se) == 0, se.ToString());
        AssertJson(JsonNode.Parse(c.Json), JsonNode.Parse(so.ToString()), name);
        AssertJson(JsonNode.Parse(c.Json), TypedJson.ToJson(value), name);

        // Our writer: CPython's bytes, and CPython finds the same identities in them.
        var ours = P.Dump(value, protocol);
        Assert.Equal(Convert.ToHexString(cpython), Convert.ToHexString(ours));
        var back = tmp.File($"{name}.ours.pkl");
        File.WriteAllBytes(back, ours);
        var verdict = PyRun.RunChecked($"import pickle, sys\nv = pickle.load(open(sys.argv[1], 'rb'))\nprint({c.Check})", [back]);
        Assert.Equal("True", verdict.Trim());
        // Also from a value built here (not read), at every protocol.
        var built = NdArray.FromObjects([2], new object?[2]);
        built.ObjectItems![0] = built;
        built.ObjectItems[1] = new PyList { built };
        File.WriteAllBytes(back, P.Dump(built, protocol));
        Assert.Equal("True", PyRun.RunChecked($"import pickle, sys\nv = pickle.load(open(sys.argv[1], 'rb'))\nprint({ArrayCases[0].Check})", [back]).Trim());

        // Copy, equality, hashing and repr terminate; the copy holds itself the same way and shares nothing.
        var copy = PyCopy.Deep(value);
        var copied = CheckArrayIdentities(name, copy);
        Assert.NotSame(array, copied);
        Assert.True(PyEquality.AreEqual(value, copy));
        Assert.True(array.Equals(copied));
        Assert.True(PyEquality.AreEqual(array, built));
        Assert.True(PyEquality.AreEqual(value, P.Load(ours)));
        Assert.Equal(PyEquality.Comparer.GetHashCode(array), PyEquality.Comparer.GetHashCode(array));
        var different = NdArray.FromObjects([2], new object?[2]);
        different.ObjectItems![0] = different;
        different.ObjectItems[1] = new PyList { 5L };
        Assert.False(PyEquality.AreEqual(array, different));
        AssertJson(JsonNode.Parse(c.Json), TypedJson.ToJson(copy), name + " (copy)");
        Assert.Equal("ndarray(dtype=|O, shape=(2,), [ndarray(...), [ndarray(...)]])", PyRepr.Repr(array));
        Assert.Equal(PyRepr.Repr(array), array.ToString());
    }

    private static NdArray CheckArrayIdentities(string name, object v)
    {
        NdArray a = name switch
        {
            "self_array" => (NdArray)v,
            "dict_self_array" => (NdArray)((PyDict)v)["a"],
            "list_self_array" => (NdArray)((PyList)v)[0],
            _ => throw new ArgumentException(name),
        };
        Assert.Same(a, a.Objects![0]);
        Assert.Same(a, ((PyList)a.Objects[1]!)[0]);
        switch (name)
        {
            case "dict_self_array": Assert.Same(a, ((PyList)((PyDict)v)["l"])[0]); break;
            case "list_self_array": Assert.Same(a, ((PyTuple)((PyList)v)[1])[0]); break;
        }
        return a;
    }

    [SkippableFact]
    public void A_store_file_whose_entry_holds_a_self_holding_array_reads_and_pushes_back()
    {
        PyRun.Require("numpy");
        using var tmp = new TempDir();
        var file = tmp.File("attr_dict.pkl");
        PyRun.RunChecked($"import pickle, sys\n{SelfArray}pickle.dump({{1: {{'a': a, 'n': 3}}}}, open(sys.argv[1], 'wb'), protocol=4)", [file]);
        using (var ad = new SyConn.Backend.Stores.AttributeDict(file, SyConn.Backend.Storage.StoreOptions.Writable))
        {
            // The memo hands the array out more than once, so each entry read is a copy: the copy holds itself.
            var entry = (PyDict)ad[1UL];
            var a = (NdArray)entry["a"];
            Assert.Same(a, a.Objects![0]);
            Assert.Same(a, ((PyList)a.Objects[1]!)[0]);
            ad[2UL] = new PyDict { ["n"] = 4L };
            ad.Push();
        }
        var verdict = PyRun.RunChecked("import pickle, sys\nd = pickle.load(open(sys.argv[1], 'rb'))\na = d[1]['a']\nprint(a[0] is a and a[1][0] is a and d[2] == {'n': 4} and d[1]['n'] == 3)", [file]);
        Assert.Equal("True", verdict.Trim());
    }

    [Fact]
    public void An_array_named_in_its_own_dtype_metadata_is_put_in_place_there_too()
    {
        // arr -> dtype -> BUILD state -> metadata dict -> arr: the dtype is written inside the array's BUILD state, so
        // the metadata refers to the array before it is built (legal, if odd; the reader must leave no stand-in behind).
        var metadata = new PyDict();
        var state = new PyTuple(3L, "|", PyNone.Value, PyNone.Value, PyNone.Value, 1L, 1L, 0L, metadata);
        var dt = new DType('|', 'u', 1, "", state);
        var arr = new NdArray(dt, [2], new byte[] { 1, 2 });
        metadata["self"] = arr;
        var loaded = (NdArray)P.Load(P.Dump(arr, 2), sourceName: "meta.pkl");
        var loadedState = Assert.IsType<PyTuple>(loaded.DType.PickleState);
        Assert.Same(loaded, ((PyDict)loadedState[8])["self"]);
        Assert.Equal(new byte[] { 1, 2 }, loaded.Data.ToArray());
    }

    [Fact]
    public void An_array_used_before_a_BUILD_that_never_comes_is_refused()
    {
        // _reconstruct(...) memoized, put into a list, and never given its state: Python would hand out an
        // uninitialised array; here it is refused, naming the file.
        // PROTO 2, GLOBAL _reconstruct, BINPUT 0, GLOBAL ndarray, BINPUT 1, (0,), b'b', TUPLE3, REDUCE, BINPUT 2, then `then`.
        static byte[] Reconstructed(params byte[] then) =>
        [
            0x80, 2, (byte)'c', .. "numpy.core.multiarray\n_reconstruct\n"u8, (byte)'q', 0,
            (byte)'c', .. "numpy\nndarray\n"u8, (byte)'q', 1, (byte)'K', 0, 0x85, (byte)'C', 1, (byte)'b', 0x87, (byte)'R', (byte)'q', 2,
            .. then,
        ];
        // EMPTY_LIST, BINGET 2, APPEND, STOP.
        var bad = Reconstructed((byte)']', (byte)'h', 2, (byte)'a', (byte)'.');
        var e = Assert.Throws<InvalidDataException>(() => P.Load(bad, sourceName: "never-built.pkl"));
        Assert.Contains("never-built.pkl", e.Message);
        Assert.Contains("BUILD", e.Message);
        // An array before its BUILD is unhashable, like the array it becomes.
        // EMPTY_DICT, BINGET 2, NONE, SETITEM, STOP.
        var asKey = Reconstructed((byte)'}', (byte)'h', 2, (byte)'N', (byte)'s', (byte)'.');
        var k = Assert.Throws<InvalidDataException>(() => P.Load(asKey, sourceName: "key.pkl"));
        Assert.Contains("unhashable", k.Message);
    }

    private static void AssertJson(JsonNode? expected, JsonNode? actual, string what) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{what}: expected {expected?.ToJsonString()}, got {actual?.ToJsonString()}");

    [Fact]
    public void Equality_of_cycles_follows_each_pair_once()
    {
        PyList SelfList(object extra) { var l = new PyList(); l.Add(l); l.Add(extra); return l; }
        var a = SelfList(1L);
        var b = SelfList(1L);
        Assert.True(PyEquality.AreEqual(a, b));
        Assert.False(PyEquality.AreEqual(a, SelfList(2L)));
        // a = [a, 1] against c = [[c, 1], 1]: the same infinite value.
        var c = new PyList();
        var inner = new PyList { c, 1L };
        c.Add(inner);
        c.Add(1L);
        Assert.True(PyEquality.AreEqual(a, c));
        inner[1] = 3L;
        Assert.False(PyEquality.AreEqual(a, c));

        var d1 = new PyDict(); d1["self"] = d1;
        var d2 = new PyDict(); d2["self"] = d2;
        var d3 = new PyDict(); d3["other"] = d3;
        Assert.True(PyEquality.AreEqual(d1, d2));
        Assert.False(PyEquality.AreEqual(d1, d3));

        // A tuple inside a cycle, as a dict value and hashed: tuples holding lists hash by their items' identity.
        var l1 = new PyList(); var t1 = new PyTuple(l1, 1L); l1.Add(t1);
        var l2 = new PyList(); var t2 = new PyTuple(l2, 1L); l2.Add(t2);
        Assert.True(PyEquality.AreEqual(t1, t2));
        _ = PyEquality.Comparer.GetHashCode(t1);
        Assert.Equal("([(...)], 1)", PyRepr.Repr(t1));
        Assert.Equal("{'self': {...}}", PyRepr.Repr(d1));
    }

    private static PyList ListBomb(int levels, object leaf)
    {
        object x = new PyList { leaf };
        for (int i = 0; i < levels; i++) x = new PyList { x, x };
        return (PyList)x;
    }

    private static PyTuple TupleBomb(int levels, object leaf)
    {
        object x = new PyTuple(leaf);
        for (int i = 0; i < levels; i++) x = new PyTuple(x, x);
        return (PyTuple)x;
    }

    [Fact]
    public void Equality_and_hashing_of_a_2_to_the_60_expansion_are_linear()
    {
        // Written by our writer: each level is one list and two memo references, so 60 levels fit in ~1 KB.
        var bytes = P.Dump(ListBomb(60, 7L), 4);
        Assert.InRange(bytes.Length, 100, 1024);
        var loaded = (PyList)P.Load(bytes);
        Assert.Same(loaded[0], loaded[1]);
        Assert.True(PyEquality.AreEqual(loaded, ListBomb(60, 7L)));
        Assert.False(PyEquality.AreEqual(loaded, ListBomb(60, 8L)));
        Assert.False(PyEquality.AreEqual(loaded, ListBomb(59, 7L)));

        // Tuples are hashable: dict keys and set members made of 2^60 tuples hash and compare level by level.
        var t = TupleBomb(60, 7L);
        var same = TupleBomb(60, 7L);
        var other = TupleBomb(60, 8L);
        Assert.Equal(PyEquality.Comparer.GetHashCode(t), PyEquality.Comparer.GetHashCode(same));
        Assert.True(PyEquality.AreEqual(t, same));
        Assert.False(PyEquality.AreEqual(t, other));
        var dict = new PyDict { [t] = "bomb" };
        Assert.Equal("bomb", dict[same]);
        Assert.False(dict.ContainsKey(other));
        var set = new PySet([t, same, other]);
        Assert.Equal(2, set.Count);

        // A tuple-bomb key read from a pickle: the reader's hashability check is linear too.
        var keyed = (PyDict)P.Load(P.Dump(dict, 5));
        Assert.Equal("bomb", keyed[same]);
        Assert.True(PyEquality.AreEqual(PyCopy.Deep(loaded), loaded));
        Assert.True(PyRepr.Repr(loaded).Length <= PyRepr.MaxLength + 1000);
    }

    [SkippableFact]
    public void Dump_refuses_an_expansion_beyond_the_node_limit()
    {
        PyRun.Require();
        using var tmp = new TempDir();
        var file = tmp.File("bomb.pkl");
        PyRun.RunChecked("import pickle, sys\nx = [1]\nfor i in range(60): x = [x, x]\nopen(sys.argv[1], 'wb').write(pickle.dumps(x, protocol=4))", [file]);
        Assert.True(new FileInfo(file).Length < 1024);
        var so = new StringWriter();
        var se = new StringWriter();
        int rc = SyConn.Backend.Cli.Cli.Run(["dump", file], so, se);
        Assert.Equal(1, rc);
        Assert.Equal("", so.ToString());
        var err = se.ToString();
        Assert.Contains("MaxExpandedNodes", err);
        Assert.Contains(file, err);
        // The limit is a documented option: a small bomb fits the default, a larger one fits a larger limit.
        var small = ListBomb(10, 1L);
        Assert.Equal(3 * 1024 - 1, CountNodes(TypedJson.ToJson(small)));
        var e = Assert.Throws<InvalidDataException>(() => TypedJson.ToJson(ListBomb(12, 1L), new PickleReadOptions { MaxExpandedNodes = 1000 }));
        Assert.Contains("MaxExpandedNodes", e.Message);
        Assert.Equal(3 * 4096 - 1, CountNodes(TypedJson.ToJson(ListBomb(12, 1L), new PickleReadOptions { MaxExpandedNodes = 100_000 })));
        Assert.Throws<InvalidDataException>(() => TypedJson.ToJson(ListBomb(17, 1L)));
    }

    [Fact]
    public void Typed_json_stops_counting_repeated_nodes_of_dense_cycles()
    {
        // 12 lists that each hold all 12: every simple path is written out, about 12! nodes. The size computed
        // up front cannot see that (it depends on the path), so the nodes are also counted while writing.
        var lists = Enumerable.Range(0, 12).Select(_ => new PyList()).ToArray();
        foreach (var l in lists) l.AddRange(lists);
        var e = Assert.Throws<InvalidDataException>(() => TypedJson.ToJson(lists[0]));
        Assert.Contains("MaxExpandedNodes", e.Message);
        // Everything else is linear in the number of objects here.
        var copy = (PyList)PyCopy.Deep(lists[0]);
        Assert.Same(copy, ((PyList)copy[1])[0]);
        Assert.True(PyEquality.AreEqual(lists[0], copy));
        var loaded = (PyList)P.Load(P.Dump(lists[0]));
        Assert.Same(loaded, ((PyList)loaded[5])[0]);
        Assert.True(PyEquality.AreEqual(loaded, lists[3]));
        // Three of them write out fully: 3 lists of 3, with refs back up.
        var small = Enumerable.Range(0, 3).Select(_ => new PyList()).ToArray();
        foreach (var l in small) l.AddRange(small);
        var json = TypedJson.ToJson(small[0]);
        Assert.Equal("ref", (string?)json["items"]![0]!["t"]);
        Assert.Equal(1, (int)json["items"]![0]!["up"]!);
        Assert.Equal(2, (int)json["items"]![1]!["items"]![0]!["up"]!);
        Assert.Equal("ref", (string?)json["items"]![1]!["items"]![1]!["t"]);
        Assert.Equal(1, (int)json["items"]![1]!["items"]![1]!["up"]!);
    }

    private static int CountNodes(JsonNode n) => n is JsonObject o && o["t"] is not null
        ? 1 + (o["items"] is JsonArray items ? items.Sum(i => CountNodes(i!)) : 0)
        : n is JsonArray a ? a.Sum(i => CountNodes(i!)) : 0;

    /// <summary><paramref name="depth"/> nested lists: that many EMPTY_LIST, then one APPEND fewer.</summary>
    private static byte[] NestedLists(int depth)
    {
        var data = new byte[2 + depth + (depth - 1) + 1];
        data[0] = 0x80; data[1] = 4;
        data.AsSpan(2, depth).Fill((byte)']');
        data.AsSpan(2 + depth, depth - 1).Fill((byte)'a');
        data[^1] = (byte)'.';
        return data;
    }

    [SkippableFact]
    public void A_100000_deep_list_is_refused_by_the_cli_without_a_crash()
    {
        var cli = Shared.RepoRoot is null ? null : Path.Combine(Shared.RepoRoot, "src", "SyConn.Backend.Cli", "bin", "Release", "net10.0", "syconn-store.dll");
        Requires.That(cli is not null && File.Exists(cli), "the built CLI (dotnet build -c Release)");
        using var tmp = new TempDir();
        var file = tmp.File("deep.pkl");
        File.WriteAllBytes(file, NestedLists(100_000));
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(cli!);
        psi.ArgumentList.Add("dump");
        psi.ArgumentList.Add(file);
        using var p = Process.Start(psi)!;
        var so = p.StandardOutput.ReadToEndAsync();
        var se = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "the CLI did not finish");
        Assert.True(p.ExitCode == 1, $"exit code {p.ExitCode} (a crash is not 1): {se.Result}");
        Assert.Contains("deeper than 1000", se.Result);
        Assert.Contains("deep.pkl", se.Result);
        Assert.Equal("", so.Result);
    }

    [Fact]
    public void Values_deeper_than_any_limit_fail_cleanly_everywhere()
    {
        // The reader is iterative: with its limit raised it loads 100 000 levels, and everything that walks the
        // value then stops at its own limit or at the call stack's end with an exception, never a crash.
        var opts = new PickleReadOptions { MaxDepth = 200_000 };
        var deep = (PyList)P.Load(NestedLists(100_000), opts);
        var deep2 = (PyList)P.Load(NestedLists(100_000), opts);
        Assert.Throws<InvalidOperationException>(() => PyEquality.AreEqual(deep, deep2));
        Assert.Throws<InvalidOperationException>(() => PyCopy.Deep(deep));
        Assert.Throws<ArgumentException>(() => P.Dump(deep));
        Assert.Throws<InvalidDataException>(() => TypedJson.ToJson(deep));
        var e = Assert.Throws<InvalidDataException>(() => TypedJson.ToJson(deep, opts));
        Assert.Contains("nests", e.Message);
        Assert.EndsWith("]]]", PyRepr.Repr(deep));
        Assert.Contains("...", deep.ToString());
        // Tuples nest too, and are hashed: deep ones get a hash without recursing to the bottom.
        object t = PyTuple.Empty;
        for (int i = 0; i < 100_000; i++) t = new PyTuple(t);
        Assert.Equal(PyEquality.Comparer.GetHashCode(t), PyEquality.Comparer.GetHashCode(t));
        // Below the limits the same walks work: 2500 levels (more than the reader's default, less than the writer's 3000).
        var opts3000 = new PickleReadOptions { MaxDepth = 3000 };
        var mid = (PyList)P.Load(NestedLists(2500), opts3000);
        var midBack = (PyList)P.Load(P.Dump(mid), opts3000);
        object level = midBack;
        for (int i = 1; i < 2500; i++) level = Assert.Single((PyList)level);
        Assert.Empty((PyList)level);
        Assert.NotNull(PyCopy.Deep(midBack));
        Assert.NotNull(TypedJson.ToJson(midBack, opts3000));
        // At the default limit the same file is refused, naming the limit.
        var refused = Assert.Throws<InvalidDataException>(() => P.Load(NestedLists(100_000), sourceName: "deep.pkl"));
        Assert.Contains("PickleReadOptions.MaxDepth", refused.Message);
    }

    [Fact]
    public void The_reader_checks_the_depth_of_a_cycle_without_counting_the_way_back()
    {
        // 999 nested lists whose innermost holds the outermost: 999 levels plus a reference, within the limit of 1000.
        object MakeRing(int n)
        {
            var outer = new PyList();
            var cur = outer;
            for (int i = 1; i < n; i++) { var next = new PyList(); cur.Add(next); cur = next; }
            cur.Add(outer);
            return outer;
        }
        var ok = (PyList)P.Load(P.Dump(MakeRing(999)));
        object node = ok;
        for (int i = 0; i < 999; i++) node = ((PyList)node)[0];
        Assert.Same(ok, node);
        var json = TypedJson.ToJson(ok);
        JsonNode inner = json;
        for (int i = 0; i < 999; i++) inner = inner["items"]![0]!;
        Assert.Equal("ref", (string?)inner["t"]);
        Assert.Equal(999, (int)inner["up"]!);
        var e = Assert.Throws<InvalidDataException>(() => P.Load(P.Dump(MakeRing(1001)), sourceName: "ring.pkl"));
        Assert.Contains("ring.pkl", e.Message);
        Assert.Contains("deeper than 1000", e.Message);
    }
}
