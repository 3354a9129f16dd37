using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// The by-key index of store pickles (<see cref="PickleDictIndex"/>): values read one by one equal the values of the
/// whole-pickle reader, files whose values share mutable objects are read whole, damaged values are reported when read
/// and never written over, and the columnar reads of <see cref="AttributeDict"/> equal per-key reads.
/// </summary>
public sealed class PickleDictIndexTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("syconn-dictindex-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> StoreFixtures => new(
        "attrdict_p5.pkl", "attrdict_p4.pkl", "attrdict_p2.pkl",
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl",
        "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl",
        "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_class.pkl", "voxel_storage_dyn.pkl",
        "numpy_zoo_p5.pkl", "numpy_zoo_p4.pkl", "numpy_zoo_p2.pkl", "python_zoo_p5.pkl", "python_zoo_p2.pkl");

    [SkippableTheory]
    [MemberData(nameof(StoreFixtures))]
    public void Every_value_read_by_key_equals_the_whole_pickle_read(string name)
    {
        var bytes = PickleFixtureTests.Read(name);
        var whole = (PyDict)Formats.Pickle.Pickle.Load(bytes, sourceName: name);
        var index = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, name);
        if (index is null)
        {
            // Read whole: only files whose values share a mutable object (or hold the dict itself) may be.
            Formats.Pickle.Pickle.Load(bytes, null, name, out bool shares);
            Assert.True(shares, $"{name}: not indexed, though its values share nothing mutable");
            return;
        }
        Assert.Equal(whole.Count, index.Count);
        Assert.Equal(whole.Keys.Select(PyRepr.Repr), index.Keys.Select(PyRepr.Repr));
        foreach (var (k, v) in whole)
        {
            Assert.True(index.TryGetValue(k, out var got));
            TypedJsonAssert.Equal(TypedJson.ToJson(v), TypedJson.ToJson(got), $"{name}, key {PyRepr.Repr(k)}");
            Assert.True(index.TryGetValue(k, out var again));
            Assert.Same(got, again);
        }
        TypedJsonAssert.Equal(TypedJson.ToJson(whole), TypedJson.ToJson(index.Materialize()), name);
    }

    public static TheoryData<string> SyConnStoreFixtures => new(SyConnStoreFixtureNames);

    internal static readonly string[] SyConnStoreFixtureNames =
    [
        "attrdict_p5.pkl", "attrdict_p4.pkl", "attrdict_p2.pkl",
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl",
        "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl",
        "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_class.pkl", "voxel_storage_dyn.pkl",
    ];

    [SkippableTheory]
    [MemberData(nameof(SyConnStoreFixtures))]
    public void Store_files_written_by_SyConn_are_indexed(string name)
    {
        var bytes = PickleFixtureTests.Read(name);
        Assert.NotNull(PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, name));
    }

    [Fact]
    public void Store_files_we_write_are_indexed_and_attribute_dicts_read_alike()
    {
        var path = Path.Combine(_dir, "attr_dict.pkl");
        var expected = WriteAttributeDicts(path, 3000);
        var bytes = File.ReadAllBytes(path);
        var index = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, path);
        Assert.NotNull(index);
        using var ad = new AttributeDict(path);
        Assert.Equal(expected.Count, ad.Count);
        foreach (var (k, d) in expected)
            TypedJsonAssert.Equal(TypedJson.ToJson(d), TypedJson.ToJson(ad[k]), $"key {k}");
    }

    // Int keys are found by value; any key Python takes as equal to one (True, 1.0, a numpy integer) finds it too, and
    // a file mixing int and other keys, or holding 1 and True as two keys, is read as Python reads it.
    [Fact]
    public void Int_keys_are_found_by_every_key_Python_takes_as_equal()
    {
        var ints = PickleDictIndex.TryBuild(Formats.Pickle.Pickle.Dump(new PyDict { [1L] = "one", [5L] = "five", [-3L] = "minus" }), PickleReadOptions.Default, "ints")!;
        Assert.True(ints.TryGetValue(1L, out var v1) && (string)v1 == "one");
        Assert.True(ints.TryGetValue(true, out var vt) && (string)vt == "one");
        Assert.True(ints.TryGetValue(5.0, out var vf) && (string)vf == "five");
        Assert.True(ints.TryGetValue(NpScalar.Int64(-3), out var vs) && (string)vs == "minus");
        Assert.True(ints.TryGetValue(new System.Numerics.BigInteger(5), out _));
        Assert.False(ints.TryGetValue(2L, out _));
        Assert.False(ints.TryGetValue("1", out _));
        Assert.False(ints.ContainsKey(false));
        Assert.True(ints.ContainsKey(1L));

        var mixed = PickleDictIndex.TryBuild(Formats.Pickle.Pickle.Dump(new PyDict { [1L] = "a", [2L] = "b", ["x"] = "c", [3L] = "d" }), PickleReadOptions.Default, "mixed")!;
        Assert.Equal(4, mixed.Count);
        Assert.Equal(["a", "b", "c", "d"], new object[] { 1L, 2L, "x", 3L }.Select(k => mixed.TryGetValue(k, out var v) ? (string)v : "?"));
        Assert.True(mixed.TryGetValue(true, out var mt) && (string)mt == "a");

        // {1: 'a', True: 'b'} is {1: 'b'} to Python: not indexed (read whole), so the second value wins as there.
        byte[] twice = [0x80, 4, 0x7d, 0x28, 0x4b, 1, 0x8c, 1, (byte)'a', 0x88, 0x8c, 1, (byte)'b', 0x75, 0x2e];
        Assert.Null(PickleDictIndex.TryBuild(twice, PickleReadOptions.Default, "twice"));
        Assert.Equal("{1: 'b'}", PyRepr.Repr(Formats.Pickle.Pickle.Load(twice)));
    }

    [Fact]
    public void Values_sharing_a_mutable_object_are_read_whole_and_stay_apart()
    {
        var shared = new PyList { 1L, 2L };
        var path = Path.Combine(_dir, "shares.pkl");
        File.WriteAllBytes(path, Formats.Pickle.Pickle.Dump(new PyDict { [1L] = new PyDict { ["l"] = shared }, [2L] = new PyDict { ["l"] = shared } }));
        Assert.Null(PickleDictIndex.TryBuild(File.ReadAllBytes(path), PickleReadOptions.Default, path));
        using var ad = new AttributeDict(path, new StoreOptions { ReadOnly = false });
        ((PyList)((PyDict)ad[1L])["l"]).Add(3L);
        Assert.Equal(2, ((PyList)((PyDict)ad[2L])["l"]).Count);
    }

    // Objects fetched across values are held in a shared memo, in an array for low memo indices and a dictionary for
    // the rest: strings put by late values (memo indices in the tens of thousands) and fetched by later ones.
    [Fact]
    public void Strings_put_late_in_the_file_and_fetched_by_later_values_read_right()
    {
        var dict = new PyDict();
        var names = Enumerable.Range(0, 6000).Select(i => "name-" + i).ToArray();
        for (int i = 0; i < 6000; i++) dict[(long)i] = new PyDict { ["own"] = names[i], ["n"] = (long)i };
        // Each of these fetches the string object an earlier value put.
        for (int i = 6000; i < 9000; i++) dict[(long)i] = new PyDict { ["earlier"] = names[i - 3000], ["first"] = names[i % 7] };
        var bytes = Formats.Pickle.Pickle.Dump(dict);
        var index = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "late.pkl");
        Assert.NotNull(index);
        for (long i = 8999; i >= 0; i -= 7)
        {
            Assert.True(index.TryGetValue(i, out var v));
            var d = (PyDict)v;
            if (i < 6000) Assert.Equal(names[i], d["own"]);
            else
            {
                Assert.Equal(names[i - 3000], d["earlier"]);
                Assert.Equal(names[i % 7], d["first"]);
            }
        }
    }

    // numpy's _frombuffer reduced twice from one memoized arguments tuple: across two values (1: a, 2: a'), and
    // within one value (1: [a, a']). The reader builds no tuple for a _frombuffer call whose arguments nobody fetches;
    // these fetch them, so the tuple must be there.
    [Theory]
    [InlineData("80057d944b018c126e756d70792e636f72652e6e756d65726963948c0b5f66726f6d6275666665729493942896100000000000000000000000000000000100000000000000948c056e756d7079948c0564747970659493948c02693894898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624b0285948c01439474945294734b026803680f52732e", "{1: a, 2: a'}")]
    [InlineData("80057d944b015d288c126e756d70792e636f72652e6e756d65726963948c0b5f66726f6d6275666665729493942896100000000000000000000000000000000100000000000000948c056e756d7079948c0564747970659493948c02693894898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624b0285948c014394749452946803680f5265732e", "{1: [a, a']}")]
    public void Array_arguments_fetched_again_from_the_memo_are_kept(string hex, string shape)
    {
        var bytes = Convert.FromHexString(hex);
        var whole = (PyDict)Formats.Pickle.Pickle.Load(bytes);
        var arrays = whole.Values.SelectMany(v => v is PyList l ? l.Cast<object>() : [v]).Cast<NdArray>().ToList();
        Assert.Equal(2, arrays.Count);
        foreach (var a in arrays) Assert.Equal(new long[] { 0, 1 }, a.ToArray<long>());
        if (PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, shape) is { } index)
            foreach (var (k, v) in whole)
            {
                Assert.True(index.TryGetValue(k, out var got));
                TypedJsonAssert.Equal(TypedJson.ToJson(v), TypedJson.ToJson(got), $"{shape}, key {k}");
            }
    }

    [Fact]
    public void A_value_holding_the_dict_itself_is_read_whole()
    {
        var root = new PyDict { [1L] = 5L };
        root[2L] = new PyList { root };
        var bytes = Formats.Pickle.Pickle.Dump(root);
        Assert.Null(PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "cycle"));
        var path = Path.Combine(_dir, "cycle.pkl");
        File.WriteAllBytes(path, bytes);
        using var ad = new AttributeDict(path);
        Assert.Equal(2, ad.Count);
    }

    [Fact]
    public void Fuzz_input_2750338_an_opcode_that_wraps_the_dict_itself_is_not_taken_for_its_entries()
    {
        // ({1: 2},): TUPLE1 after the last SETITEMS makes the top level a tuple.
        byte[] top = [0x80, 4, (byte)'}', (byte)'(', (byte)'K', 1, (byte)'K', 2, (byte)'u', 0x85, (byte)'.'];
        Assert.IsType<PyTuple>(Formats.Pickle.Pickle.Load(top));
        Assert.Null(PickleDictIndex.TryBuild(top, PickleReadOptions.Default, "wrapped"));
        // {1: ({'a': 1},)}: the value is a tuple holding a dict, not a dict; its item 'a' is not an attribute.
        byte[] value = [0x80, 4, (byte)'}', (byte)'(', (byte)'K', 1, (byte)'}', (byte)'(', 0x8c, 1, (byte)'a', (byte)'K', 1, (byte)'u', 0x85, (byte)'u', (byte)'.'];
        var index = PickleDictIndex.TryBuild(value, PickleReadOptions.Default, "wrapped-value");
        Assert.NotNull(index);
        Assert.Equal(PickleDictIndex.AttributeRead.NotADict, index.ReadAttributeTransient(1L, "a", out var whole));
        Assert.IsType<PyTuple>(whole);
    }

    [Fact]
    public void Fuzz_input_1360824_a_repeated_key_is_read_whole_so_its_first_value_is_checked()
    {
        // PROTO 4, EMPTY_DICT, MARK, 1: 10, 2: 20, 1: 30, SETITEMS, STOP: Python keeps 1: 30 in the first place, but
        // reads (and would refuse a damaged) 10 too; by key, 10 would never be read.
        byte[] bytes = [0x80, 4, (byte)'}', (byte)'(', (byte)'K', 1, (byte)'K', 10, (byte)'K', 2, (byte)'K', 20, (byte)'K', 1, (byte)'K', 30, (byte)'u', (byte)'.'];
        Assert.Null(PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "dup"));
        var path = Path.Combine(_dir, "dup.pkl");
        File.WriteAllBytes(path, bytes);
        using var ad = new AttributeDict(path);
        Assert.Equal(new object[] { 1L, 2L }, ad.Keys.Select(k => k.PythonValue));
        Assert.Equal(30L, ad[1L]);
        // The same file with the first value damaged (an invalid UTF-8 str) is refused.
        byte[] bad = [0x80, 4, (byte)'}', (byte)'(', (byte)'K', 1, 0x8c, 2, 0xc3, 0x28, (byte)'K', 2, (byte)'K', 20, (byte)'K', 1, (byte)'K', 30, (byte)'u', (byte)'.'];
        File.WriteAllBytes(path, bad);
        Assert.Throws<InvalidDataException>(() => new AttributeDict(path));
    }

    // Regression inputs of the pickle-index fuzz harness (PickleDictIndexFuzzTests), reduced by hand.

    [Fact]
    public void Fuzz_input_4153_protocol_148_is_not_indexed_and_refused_whole()
    {
        byte[] bytes = [0x80, 148, (byte)'}', (byte)'(', (byte)'K', 1, (byte)'K', 2, (byte)'u', (byte)'.'];
        Assert.Null(PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "p148"));
        Assert.Throws<InvalidDataException>(() => Formats.Pickle.Pickle.Load(bytes));
    }

    [Fact]
    public void Fuzz_input_429356_a_dict_inside_a_tuple_key_is_refused_as_the_whole_reader_does()
    {
        // {({},): 2}: the key is a tuple holding a dict, which Python cannot hash.
        byte[] bytes = [0x80, 4, (byte)'}', (byte)'(', (byte)'}', 0x85, (byte)'K', 2, (byte)'u', (byte)'.'];
        Assert.Throws<InvalidDataException>(() => Formats.Pickle.Pickle.Load(bytes));
        var e = Assert.Throws<InvalidDataException>(() => PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "tuplekey"));
        Assert.Contains("tuplekey", e.Message);
        Assert.Contains("unhashable", e.Message);
    }

    [Fact]
    public void A_damaged_value_is_reported_when_read_and_a_push_leaves_the_file_alone()
    {
        var path = Path.Combine(_dir, "damaged.pkl");
        var good = Formats.Pickle.Pickle.Dump(new PyDict
        {
            [1L] = new PyDict { ["x"] = 1L },
            [2L] = new PyDict { ["y"] = NdArray.Create(new long[] { 1, 2 }) },
            [3L] = new PyDict { ["z"] = 3L },
        });
        // Only key 2 names numpy's _frombuffer: misspell it (same length), a global the reader refuses.
        int at = IndexOf(good, "_frombuffer"u8.ToArray());
        Assert.True(at > 0);
        var bad = (byte[])good.Clone();
        bad[at + "_frombuffe".Length] = (byte)'x';
        File.WriteAllBytes(path, bad);
        Assert.NotNull(PickleDictIndex.TryBuild(bad, PickleReadOptions.Default, path));
        using var ad = new AttributeDict(path, new StoreOptions { ReadOnly = false });
        Assert.Equal(3, ad.Count);
        Assert.Equal(1L, ad.Get<long>(1L, "x"));
        Assert.Equal(3L, ad.Get<long>(3L, "z"));
        var e = Assert.Throws<InvalidDataException>(() => ad[2L]);
        Assert.Contains(path, e.Message);
        Assert.Contains("key 2", e.Message);
        Assert.Contains("offset", e.Message);
        ad[4L] = new PyDict { ["w"] = 4L };
        Assert.Throws<InvalidDataException>(() => ad.Push());
        Assert.Equal(bad, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_damaged_value_in_a_big_store_fails_a_push_with_the_reader_error_not_an_aggregate()
    {
        var path = Path.Combine(_dir, "damaged-big.pkl");
        var root = new PyDict();
        for (long k = 0; k < 2000; k++) root[k] = new PyDict { ["x"] = new PyBytes(new byte[400]), ["n"] = k }; // batches big enough to be read on both cores
        root[1500L] = new PyDict { ["y"] = NdArray.Create(new long[] { 1, 2 }) };
        var bytes = Formats.Pickle.Pickle.Dump(root);
        // Only key 1500 names numpy's _frombuffer: misspell it (same length), a global the reader refuses.
        int at = IndexOf(bytes, "_frombuffer"u8.ToArray());
        bytes[at + "_frombuffe".Length] = (byte)'x';
        File.WriteAllBytes(path, bytes);
        using var ad = new AttributeDict(path, new StoreOptions { ReadOnly = false });
        ad[5000L] = new PyDict();
        var e = Assert.Throws<InvalidDataException>(() => ad.Push());
        Assert.Contains("key 1500", e.Message);
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    private static void WaitAheadIdle(PickleDictIndex index)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        while (!index.AheadIdle && sw.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(5);
        Assert.True(index.AheadIdle, "the read-ahead worker did not stop");
    }

    [Fact]
    public void Keys_read_in_order_are_read_ahead_on_another_core_within_the_window()
    {
        var path = Path.Combine(_dir, "ahead.pkl");
        var expected = WriteAttributeDicts(path, 20_000);
        var index = PickleDictIndex.TryBuild(File.ReadAllBytes(path), PickleReadOptions.Default, path)!;
        var keys = expected.Keys.ToArray();
        int held0 = index.ValuesHeld; // the values that others fetch from, read while building
        for (int i = 0; i < 100; i++) Assert.True(index.TryGetValue(keys[i], out _));
        WaitAheadIdle(index);
        int held = index.ValuesHeld - held0;
        if (Environment.ProcessorCount >= 2) Assert.True(held > 100, $"nothing read ahead ({held} values held)");
        Assert.True(held <= 100 + 4 + 4096 + 1, $"read ahead past the window: {held} values held");
        // Random reads start no worker.
        var idle = PickleDictIndex.TryBuild(File.ReadAllBytes(path), PickleReadOptions.Default, path)!;
        var rng = new Random(3);
        for (int i = 0; i < 200; i++) Assert.True(idle.TryGetValue(keys[rng.Next(keys.Length)], out _));
        WaitAheadIdle(idle);
        Assert.True(idle.ValuesHeld - held0 <= 200);
        // Everything read in order, the worker racing the caller, equals what was written.
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.True(index.TryGetValue(keys[i], out var v));
            if (i % 97 == 0) TypedJsonAssert.Equal(TypedJson.ToJson(expected[keys[i]]), TypedJson.ToJson(v), $"key {keys[i]}");
        }
        Assert.Equal(keys.Length, index.ValuesHeld);
    }

    [Fact]
    public void A_damaged_value_met_while_reading_ahead_is_reported_by_the_callers_own_read()
    {
        var path = Path.Combine(_dir, "ahead-damaged.pkl");
        var root = new PyDict();
        for (long k = 0; k < 600; k++) root[k] = new PyDict { ["n"] = k, ["s"] = new string('x', (int)(k % 50)) };
        root[300L] = new PyDict { ["y"] = NdArray.Create(new long[] { 1, 2 }) };
        var bytes = Formats.Pickle.Pickle.Dump(root);
        // Only key 300 names numpy's _frombuffer: misspell it (same length), a global the reader refuses.
        int at = IndexOf(bytes, "_frombuffer"u8.ToArray());
        bytes[at + "_frombuffe".Length] = (byte)'x';
        var index = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, path)!;
        for (long k = 0; k < 300; k++) Assert.True(index.TryGetValue(k, out _));
        WaitAheadIdle(index);
        var e = Assert.Throws<InvalidDataException>(() => index.TryGetValue(300L, out _));
        Assert.Contains(path, e.Message);
        Assert.Contains("key 300", e.Message);
        for (long k = 301; k < 600; k++)
        {
            Assert.True(index.TryGetValue(k, out var v));
            Assert.Equal(k, ((PyDict)v)["n"]);
        }
    }

    [Fact]
    public void Reads_from_several_threads_return_one_object_per_key()
    {
        var path = Path.Combine(_dir, "threads.pkl");
        var expected = WriteAttributeDicts(path, 5000);
        var index = PickleDictIndex.TryBuild(File.ReadAllBytes(path), PickleReadOptions.Default, path)!;
        var keys = expected.Keys.ToArray();
        var seen = new object[2][];
        Parallel.For(0, 2, t =>
        {
            var got = new object[keys.Length];
            for (int j = 0; j < keys.Length; j++)
            {
                int i = t == 0 ? j : keys.Length - 1 - j;
                Assert.True(index.TryGetValue(keys[i], out var v));
                got[i] = v;
            }
            seen[t] = got;
        });
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Same(seen[0][i], seen[1][i]);
            TypedJsonAssert.Equal(TypedJson.ToJson(expected[keys[i]]), TypedJson.ToJson(seen[0][i]), $"key {keys[i]}");
        }
    }

    [Fact]
    public void Columns_equal_per_key_reads()
    {
        var path = Path.Combine(_dir, "columns.pkl");
        var expected = WriteAttributeDicts(path, 6000);
        using var ad = new AttributeDict(path);
        var keys = ad.Keys.ToArray();
        var size = ad.Column<long>("size");
        var rep = ad.ColumnArray<long>("rep_coord");
        var mesh = ad.ColumnArray<float>("mesh_bb");
        var type = ad.Column<string>("type");
        var ssv = ad.Column<ulong>("ssv_id");
        var radius = ad.Column<double>("rc_radius");
        Assert.Equal([keys.Length, 3], rep.ShapeArray);
        Assert.Equal([keys.Length, 2, 3], mesh.ShapeArray);
        var repSpan = rep.AsSpan<long>();
        var meshSpan = mesh.AsSpan<float>();
        for (int i = 0; i < keys.Length; i++)
        {
            var d = expected[(long)keys[i].PythonValue];
            Assert.Equal((long)d["size"], size[i]);
            Assert.Equal(((NdArray)d["rep_coord"]).AsSpan<long>().ToArray(), repSpan.Slice(i * 3, 3).ToArray());
            Assert.Equal(((NdArray)d["mesh_bb"]).AsSpan<float>().ToArray(), meshSpan.Slice(i * 6, 6).ToArray());
            Assert.Equal((string)d["type"], type[i]);
            Assert.Equal(PyConvert.To<ulong>(d["ssv_id"]), ssv[i]);
            Assert.Equal(PyConvert.To<double>(d["rc_radius"]), radius[i]);
        }
        // Nothing was kept or inserted by the column reads.
        Assert.Equal(expected.Count, ad.Count);
    }

    [Fact]
    public void Columns_see_edits_defaults_and_report_what_is_missing()
    {
        var path = Path.Combine(_dir, "edits.pkl");
        WriteAttributeDicts(path, 50);
        using var ad = new AttributeDict(path, new StoreOptions { ReadOnly = false });
        var first = ad.Keys.First();
        ad.Attributes(first)["size"] = -5L;
        ad[999_999L] = new PyDict { ["other"] = 1L };
        var size = ad.Column<long>("size", missing: -1);
        Assert.Equal(-5L, size[0]);
        Assert.Equal(-1L, size[^1]);
        var e = Assert.Throws<KeyNotFoundException>(() => ad.Column<long>("size"));
        Assert.Contains("999999", e.Message);
        Assert.Contains("'size'", e.Message);
        ad[999_999L] = 7L;
        Assert.Throws<InvalidDataException>(() => ad.Column<long>("size", missing: 0));
        Assert.Throws<InvalidCastException>(() => ad.Column<long>("type"));
    }

    [Fact]
    public void A_column_whose_values_share_a_dtype_put_in_the_same_value_is_read_right()
    {
        // Key 2 is the only value with int32 arrays, twice: its "c" fetches the dtype its "b" put, inside the same
        // value, so "c" cannot be read on its own and the value is read whole for the column.
        var path = Path.Combine(_dir, "samevalue.pkl");
        File.WriteAllBytes(path, Formats.Pickle.Pickle.Dump(new PyDict
        {
            [1L] = new PyDict { ["c"] = NdArray.Create(new long[] { 0, 0, 0 }), ["n"] = 1L },
            [2L] = new PyDict { ["n"] = 2L, ["b"] = NdArray.Create(new[] { 1, 2, 3 }), ["c"] = NdArray.Create(new[] { 4, 5, 6 }) },
        }));
        using var ad = new AttributeDict(path);
        var c = ad.ColumnArray<long>("c");
        Assert.Equal(new long[] { 2, 3 }, c.ShapeArray);
        Assert.Equal(new long[] { 0, 0, 0, 4, 5, 6 }, c.AsSpan<long>().ToArray());
        Assert.Equal(new long[] { 1, 2 }, ad.Column<long>("n"));
    }

    private static Dictionary<long, PyDict> WriteAttributeDicts(string path, int n)
    {
        var rng = new Random(7);
        string[] types = ["sv", "sj", "vc", "mi", "syn_ssv"];
        var all = new Dictionary<long, PyDict>();
        var root = new PyDict();
        for (int i = 0; i < n; i++)
        {
            long key = rng.NextInt64(1, long.MaxValue);
            var d = new PyDict
            {
                ["size"] = (long)rng.Next(1, 1_000_000),
                ["rep_coord"] = NdArray.Create(new long[] { rng.Next(30000), rng.Next(30000), rng.Next(30000) }),
                ["mesh_bb"] = NdArray.Create(new[] { rng.NextSingle(), rng.NextSingle(), rng.NextSingle(), rng.NextSingle(), rng.NextSingle(), rng.NextSingle() }, 2, 3),
                ["rc_radius"] = NpScalar.Float64(rng.NextDouble() * 1000),
                ["type"] = types[rng.Next(types.Length)],
                ["ssv_id"] = NpScalar.UInt64((ulong)rng.NextInt64(1, 10_000_000_000)),
                ["partners"] = new PyList { rng.NextInt64(1, 10_000_000_000), rng.NextInt64(1, 10_000_000_000) },
            };
            all[key] = d;
            root[key] = d;
        }
        File.WriteAllBytes(path, Formats.Pickle.Pickle.Dump(root));
        return all;
    }

    private static int IndexOf(byte[] haystack, byte[] needle)
    {
        for (int i = 0; i + needle.Length <= haystack.Length; i++)
            if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
        return -1;
    }
}
