using System.Diagnostics;
using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// The direct read of attribute-dict values (<see cref="PickleReader.TryReadPlainDict"/>) against the reader, value by
/// value: wherever the direct read takes a value, the reader reads the same objects (same CLR types, dtypes, orders,
/// shapes and bytes) and counts the same payload bytes; and it does take the layouts SyConn writes.
/// </summary>
public class PlainDictReadTests(ITestOutputHelper output)
{
    private const string Source = "plain.pkl";

    /// <summary>Compares the two reads of every entry; returns how many the direct read took.</summary>
    private static int CheckAll(byte[] data, string name) => CheckEach(data, name).Count;

    /// <summary>Compares the two reads of every entry; returns the entries the direct read took.</summary>
    private static List<int> CheckEach(byte[] data, string name)
    {
        var index = PickleDictIndex.TryBuild(data, PickleReadOptions.Default, name);
        Assert.NotNull(index);
        var taken = new List<int>();
        var keys = index.Keys.ToList();
        for (int i = 0; i < index.Count; i++)
        {
            var (plain, plainBytes, byReader, readerBytes) = index.ReadBothWays(i);
            // Every str item read alone (directly where it can be, else by the reader) is the item of the value.
            if (byReader is PyDict whole)
                foreach (var (ik, iv) in whole)
                {
                    if (ik is not string attr) continue;
                    Assert.Equal(PickleDictIndex.AttributeRead.Found, index.ReadAttributeTransient(keys[i], attr, out var item));
                    string? itemDiff = Difference(iv, item, $"item '{attr}'");
                    Assert.True(itemDiff is null, $"{name}, entry {i}: {itemDiff}");
                }
            if (plain is null) continue;
            taken.Add(i);
            if (byReader is Exception e) Assert.Fail($"{name}, entry {i}: read directly as {PyRepr.Repr(plain)}, but the reader refuses it: {e.Message}");
            string? diff = Difference(byReader, plain, "value");
            Assert.True(diff is null, $"{name}, entry {i}: {diff}");
            Assert.Equal(readerBytes, plainBytes);
        }
        return taken;
    }

    /// <summary>Where two values differ in anything observable (types included), or null.</summary>
    internal static string? Difference(object? expected, object? actual, string path)
    {
        if (expected is null || actual is null) return expected == actual ? null : $"{path}: {Show(expected)} vs {Show(actual)}";
        if (expected.GetType() != actual.GetType()) return $"{path}: {expected.GetType().Name} vs {actual.GetType().Name}";
        switch (expected)
        {
            case PyDict d:
            {
                var a = (PyDict)actual;
                if (d.Count != a.Count) return $"{path}: {d.Count} items vs {a.Count}";
                for (int i = 0; i < d.Count; i++)
                {
                    var (ek, ev) = d.GetAt(i);
                    var (ak, av) = a.GetAt(i);
                    if (Difference(ek, ak, path + $" key #{i}") is { } kd) return kd;
                    if (Difference(ev, av, path + $"[{PyRepr.Repr(ek)}]") is { } vd) return vd;
                }
                return null;
            }
            case PyList l:
            {
                var a = (PyList)actual;
                if (l.Count != a.Count) return $"{path}: {l.Count} items vs {a.Count}";
                for (int i = 0; i < l.Count; i++)
                    if (Difference(l[i], a[i], path + $"[{i}]") is { } id) return id;
                return null;
            }
            case NdArray x:
            {
                var a = (NdArray)actual;
                if (!x.DType.Equals(a.DType) || x.DType.Str != a.DType.Str) return $"{path}: dtype {x.DType.Str} vs {a.DType.Str}";
                if (!x.Shape.SequenceEqual(a.Shape)) return $"{path}: shape ({string.Join(",", x.ShapeArray)}) vs ({string.Join(",", a.ShapeArray)})";
                if (x.Order != a.Order) return $"{path}: order {x.Order} vs {a.Order}";
                if (!x.Data.Span.SequenceEqual(a.Data.Span)) return $"{path}: array bytes differ";
                if (ArrayHints.Get(x) != ArrayHints.Get(a)) return $"{path}: hints {ArrayHints.Get(x)} vs {ArrayHints.Get(a)}";
                return null;
            }
            case NpScalar s:
            {
                var a = (NpScalar)actual;
                return s.DType.Str == a.DType.Str && s.Raw.AsSpan().SequenceEqual(a.Raw) ? null : $"{path}: scalar {Show(s)} vs {Show(a)}";
            }
            case PyBytes b:
                return b.Data.Span.SequenceEqual(((PyBytes)actual).Data.Span) ? null : $"{path}: bytes differ";
            case double dv:
                return BitConverter.DoubleToInt64Bits(dv) == BitConverter.DoubleToInt64Bits((double)actual) ? null : $"{path}: {dv} vs {actual}";
            case string or long or bool or BigInteger or PyNone:
                return expected.Equals(actual) ? null : $"{path}: {Show(expected)} vs {Show(actual)}";
            default:
                // A kind the direct read never gives (tuples, sets, ...): the reader gave both, compared as typed JSON.
                return TypedJson.ToJson(expected).ToJsonString() == TypedJson.ToJson(actual).ToJsonString() ? null : $"{path}: {Show(expected)} vs {Show(actual)}";
        }
    }

    private static string Show(object? v)
    {
        var s = v is null ? "null" : PyRepr.Repr(v);
        return s.Length > 200 ? s[..200] + "..." : s;
    }

    [SkippableTheory]
    [MemberData(nameof(PickleDictIndexTests.StoreFixtures), MemberType = typeof(PickleDictIndexTests))]
    public void Values_of_the_fixtures_read_directly_equal_the_readers(string name)
    {
        var bytes = PickleFixtureTests.Read(name);
        if (PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, name) is null) return; // read whole (checked elsewhere)
        var taken = CheckEach(bytes, name);
        output.WriteLine($"{name}: values #{string.Join(", #", taken)} read directly");
        // Its first five values are the attribute dicts of a SyConn object (ints, floats, arrays, numpy scalars, np.False_
        // fetched again): all but the first, which puts the globals and dtypes, are taken. The rest hold what the
        // direct read leaves to the reader (tuples, sets, nested dicts, non-ASCII text, object arrays).
        if (name == "attrdict_p5.pkl") Assert.Equal([1, 2, 3, 4], taken.Where(i => i < 5));
    }

    private static readonly string[] Names = ["size", "rep_coord", "bb", "r", "type", "ids", "flag", "mean"];
    private static readonly string[] Texts = ["sv", "sj", "vc", "mi", "syn_ssv", "", "Zelle-ä"];

    /// <summary>Attribute dicts of every item kind the direct read takes, and of many it leaves to the reader.</summary>
    internal static byte[] VariedStore(int count, int seed)
    {
        var rng = new Random(seed);
        var root = new PyDict();
        for (int i = 0; i < count; i++)
        {
            var d = new PyDict();
            int kinds = 1 + rng.Next(12);
            for (int k = 0; k < kinds; k++)
            {
                string name = rng.Next(4) == 0 ? $"attr_{rng.Next(1000)}" : Names[rng.Next(Names.Length)];
                d[name] = rng.Next(24) switch
                {
                    0 => (long)rng.Next(256),
                    1 => (long)rng.Next(256, 65536),
                    2 => (long)rng.Next(int.MinValue, int.MaxValue),
                    3 => rng.NextInt64(long.MinValue, long.MaxValue),
                    4 => BigInteger.Pow(3, 50 + rng.Next(200)) * (rng.Next(2) * 2 - 1),
                    5 => rng.NextDouble() * 1e6 - 5e5,
                    6 => rng.Next(2) == 0,
                    7 => PyNone.Value,
                    8 => Texts[rng.Next(Texts.Length)],
                    9 => NdArray.Create(new long[] { rng.Next(), rng.Next(), rng.Next() }),
                    10 => NdArray.Create(new[] { rng.NextSingle(), 2, 3, 4, 5, 6 }, 2, 3),
                    11 => NdArray.Create(new double[] { rng.NextDouble() }, 1, 1, 1),
                    12 => NdArray.Create(new ushort[] { 1, 2, 3, 4, 5, 6, 7, 8 }, 2, 2, 2),
                    13 => NdArray.Create(new int[0], 0, 3),
                    14 => NpScalar.Float64(rng.NextDouble()),
                    15 => NpScalar.UInt64((ulong)rng.NextInt64()),
                    16 => new PyList(Enumerable.Range(0, rng.Next(4)).Select(_ => (object)rng.NextInt64(-5, 1L << 40))),
                    17 => new PyList(Enumerable.Range(0, 70).Select(x => (object)(long)x)),
                    18 => new PyList { 1.5, (long)rng.Next(100) },
                    19 => new PyList { "a", 1L },
                    20 => new PyTuple(1L, 2L),
                    21 => new PyDict { ["inner"] = 1L },
                    22 => new NdArray(DType.Int64, [3, 4], new byte[96], ArrayOrder.F),
                    _ => new PyBytes(new byte[] { 1, 2, 3 }),
                };
            }
            root[(long)(i * 7919 + 1)] = d;
        }
        return P.Dump(root);
    }

    [Fact]
    public void Every_item_kind_read_directly_equals_the_readers()
    {
        foreach (int protocol in new[] { 5, 4, 3, 2 })
        {
            var bytes = P.Dump(P.Load(VariedStore(600, 7)), protocol);
            int taken = CheckAll(bytes, $"varied store, protocol {protocol}");
            output.WriteLine($"protocol {protocol}: {taken} of 600 values read directly");
            if (protocol == 5) Assert.True(taken > 100, $"only {taken} of 600 values read directly");
        }
    }

    [Fact]
    public void The_attribute_dicts_of_the_benchmark_are_read_directly()
    {
        // The layout of W2 (and of SyConn's attr_dict.pkl): every value after the first is taken.
        var root = new PyDict();
        var rng = new Random(3);
        for (int i = 0; i < 300; i++)
        {
            root[(long)i] = new PyDict
            {
                ["size"] = (long)rng.Next(1, 1_000_000),
                ["rep_coord"] = NdArray.Create(new long[] { rng.Next(30000), rng.Next(30000), rng.Next(30000) }),
                ["bounding_box"] = NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6 }, 2, 3),
                ["mesh_bb"] = NdArray.Create(new[] { 1f, 2, 3, 4, 5, 6 }, 2, 3),
                ["rc_radius"] = NpScalar.Float64(rng.NextDouble()),
                ["type"] = "sv",
                ["ssv_id"] = NpScalar.UInt64((ulong)rng.NextInt64(1, 10_000_000_000)),
                ["partners"] = new PyList { rng.NextInt64(1, 10_000_000_000), rng.NextInt64(1, 10_000_000_000) },
            };
        }
        var bytes = P.Dump(root);
        Assert.Equal(299, CheckAll(bytes, "benchmark layout"));
        // And the store reads them so: the same values as the whole-pickle reader.
        var index = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "benchmark layout")!;
        var whole = (PyDict)P.Load(bytes);
        foreach (var (k, v) in whole)
        {
            Assert.True(index.TryGetValue(k, out var got));
            Assert.Null(Difference(v, got, $"key {k}"));
        }
    }

    [Fact]
    public void Limits_the_reader_enforces_make_the_direct_read_step_aside()
    {
        var bytes = VariedStore(50, 11);
        foreach (var options in new[]
        {
            PickleReadOptions.Default with { MaxTotalElements = 1000 },
            PickleReadOptions.Default with { MaxDepth = 4 },
        })
        {
            var index = PickleDictIndex.TryBuild(bytes, options, "limits");
            if (index is null) continue;
            for (int i = 0; i < index.Count; i++) Assert.Null(index.ReadBothWays(i).Plain);
        }
        // A store byte limit: the values the direct read takes count the bytes the reader counts, so the same
        // values fail the same limit (checked by CheckAll's byte comparison), and a limit below a value's bytes fails it.
        var e = Record.Exception(() =>
        {
            var tight = PickleDictIndex.TryBuild(bytes, PickleReadOptions.Default, "limits", maxStoreBytes: 10)!;
            foreach (var k in tight.Keys.ToList()) tight.TryGetValue(k, out _);
        });
        Assert.IsType<InvalidDataException>(e);
        Assert.Contains("MaxStoreBytes", e.Message);
    }

    [Theory]
    [InlineData(5)] // _frombuffer(bytearray, dtype, shape, order): the direct read's layout
    [InlineData(4)] // _reconstruct, then BUILD with (1, shape, dtype, fortran, bytes)
    public void A_shape_whose_bytes_overflow_is_refused_by_both_reads_under_the_highest_element_limit(int protocol)
    {
        // Under the highest element limit, 2^20 * 2^20 * 2^21 int64 elements pass the element count, and their bytes
        // (2^64) wrap to 0 in 64 bits: an empty buffer must not pass for them.
        var options = PickleReadOptions.Default with { MaxTotalElements = long.MaxValue };
        var index = PickleDictIndex.TryBuild(OverflowingArrayStore(protocol), options, "overflow");
        Assert.NotNull(index);
        var (plain, _, byReader, _) = index.ReadBothWays(1);
        Assert.Null(plain);
        var e = Assert.IsType<InvalidDataException>(byReader);
        Assert.Contains("more bytes than an array can hold", e.Message);
    }

    // A store whose second value holds an int64 array of shape (1048576, 1048576, 2097152) and no data: written as a
    // (2, 2, 2) array is, with its 64 data bytes dropped and the shape's three ints patched in.
    private static byte[] OverflowingArrayStore(int protocol)
    {
        var bytes = P.Dump(new PyDict
        {
            [1L] = new PyDict { ["a"] = NdArray.Create(new long[] { 7, 8, 9, 10, 11, 12, 13, 14 }, 2, 2, 2) },
            [2L] = new PyDict { ["a"] = NdArray.Create(new long[] { 1, 2, 3, 4, 5, 6, 7, 8 }, 2, 2, 2) },
        }, protocol).ToList();
        // The second value's data: BYTEARRAY8 (u64 length) at protocol 5, SHORT_BINBYTES (u8 length) at 4.
        int at, lengthBytes;
        if (protocol == 5)
        {
            at = bytes.LastIndexOf(0x96);
            lengthBytes = 8;
        }
        else
        {
            at = bytes.FindLastIndex(i => i == 0x43);
            while (bytes[at + 1] != 64) at = bytes.FindLastIndex(at - 1, i => i == 0x43);
            lengthBytes = 1;
        }
        bytes.RemoveRange(at + 1 + lengthBytes, 64);
        for (int i = 1; i <= lengthBytes; i++) bytes[at + i] = 0;
        // The shape: BININT1 2 three times, then TUPLE3 (after the data at protocol 5, before it at 4).
        int k = protocol == 5 ? bytes.IndexOf(0x87, at) : bytes.FindLastIndex(at, b => b == 0x87);
        Assert.True(bytes[k - 6] == 0x4b && bytes[k - 5] == 2 && bytes[k - 4] == 0x4b && bytes[k - 2] == 0x4b);
        bytes.RemoveRange(k - 6, 6);
        bytes.InsertRange(k - 6, [0x4a, 0, 0, 0x10, 0, 0x4a, 0, 0, 0x10, 0, 0x4a, 0, 0, 0x20, 0]);
        // The one frame (PROTO, FRAME length) is 64 - 9 bytes shorter.
        var result = bytes.ToArray();
        Assert.Equal(0x95, result[2]);
        ulong frame = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(result.AsSpan(3));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(result.AsSpan(3), frame - 64 + 9);
        return result;
    }

    [SkippableFact]
    public void Mutated_attribute_dicts_read_directly_only_as_the_reader_reads_them()
    {
        var seconds = FuzzBudget.For("pickle-index").TotalSeconds / 2;
        var seeds = new[] { VariedStore(40, 1), VariedStore(40, 2), PickleFixtureTests.Read("attrdict_p5.pkl") };
        var rng = new Random(20261202);
        long runs = 0, taken = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds || runs < 300)
        {
            var data = ByteMutator.Mutate(seeds[runs % seeds.Length], rng, [0x28, 0x2e, 0x4b, 0x4d, 0x4a, 0x8a, 0x94, 0x68, 0x6a, 0x71, 0x72, 0x52, 0x73, 0x75, 0x61, 0x65, 0x85, 0x86, 0x87, 0x74, 0x96, 0x43, 0x8c, 0x5d, 0x7d, 0x29, 0x00, 0xff]);
            runs++;
            PickleDictIndex? index;
            try
            {
                index = PickleDictIndex.TryBuild(data, PickleReadOptions.Default, Source);
            }
            catch (InvalidDataException)
            {
                continue;
            }
            if (index is null) continue;
            for (int i = 0; i < index.Count; i++)
            {
                var (plain, plainBytes, byReader, readerBytes) = index.ReadBothWays(i);
                if (plain is null) continue;
                taken++;
                string? failure = byReader is Exception e ? $"the reader refuses it: {e.Message}" : Difference(byReader, plain, "value")
                    ?? (readerBytes == plainBytes ? null : $"bytes counted {plainBytes}, the reader {readerBytes}");
                if (failure is not null)
                {
                    var saved = Path.Combine(Path.GetTempPath(), $"plain-dict-fuzz-{runs}.pkl");
                    File.WriteAllBytes(saved, data);
                    Assert.Fail($"input {runs} (saved to {saved}), entry {i}: {failure}");
                }
            }
        }
        output.WriteLine($"{runs} mutated stores, {taken} values read directly, each as the reader reads it");
        Assert.True(taken > 0);
    }
}
