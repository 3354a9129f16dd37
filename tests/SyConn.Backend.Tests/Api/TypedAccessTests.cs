using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

public class TypedAccessTests
{
    private const ulong NearMax = 18446744073709551557UL;

    [SkippableFact]
    public void Fixture_attributes_read_as_the_types_a_caller_asks_for()
    {
        using var ad = AttributeDict.Open(Shared.PyFixture("attrdict_p5.pkl"));
        Assert.Equal(87499L, ad.Get<long>(249467211, "size"));
        Assert.Equal(87499, ad.Get<int>(249467211, "size"));
        Assert.Equal(87499UL, ad.Get<ulong>(249467211, "size"));
        Assert.Equal(79, ad.Get<int>(249467211, "n_syn"));                // a numpy int64 scalar
        Assert.Equal((byte)79, ad.Get<byte>(249467211, "n_syn"));
        Assert.True(ad.Get<bool>(249467211, "is_glia"));                   // a numpy bool scalar
        Assert.Equal(0.29214466f, ad.Get<float>(249467211, "prob"));       // a numpy float32 stays exact
        Assert.Equal((double)0.29214466f, ad.Get<double>(249467211, "prob"));
        Assert.Equal(23.277134043030422, ad.Get<double>(249467211, "volume_um3"));
        Assert.Equal(ulong.MaxValue, ad.Get<ulong>(NearMax, "u64"));       // 2^64-1, a numpy uint64
        Assert.Equal((BigInteger)ulong.MaxValue, ad.Get<BigInteger>(NearMax, "u64"));
        Assert.Equal("numpy.uint64 key close to 2**64", ad.Get<string>(NearMax, "note"));

        var rep = ad.GetArray<long>(249467211, "rep_coord");
        Assert.Equal(new long[] { 3 }, rep.ShapeArray);
        Assert.Equal(new long[] { 3444, 3171, 2919 }, rep.AsSpan<long>().ToArray());
        var bb = ad.GetArray<long>(249467211, "bounding_box");            // int32 widens safely
        Assert.Equal(new long[] { 2, 3 }, bb.ShapeArray);
        Assert.Equal(2391L, bb.GetValue<long>(1, 0));
        Assert.Equal("<f8", ad.GetArray<double>(249467211, "mesh_bb").DType.Str);
        Assert.Equal(new long[] { 3444, 3171, 2919 }, ad.Get<long[]>(249467211, "rep_coord"));
        Assert.Equal(new long[] { 130, 1685, 769, 2391, 2433, 1184 }, ad.Get<long[]>(249467211, "bounding_box")); // C order
        Assert.Equal(20, ad.Get<byte[]>(249467211, "glia_probability").Length);
        Assert.Throws<InvalidCastException>(() => ad.Get<int[]>(249467211, "rep_coord"));       // int64 -> int32 is not safe
    }

    [SkippableFact]
    public void Conversions_that_would_change_a_value_are_refused_naming_what_and_where()
    {
        using var ad = AttributeDict.Open(Shared.PyFixture("attrdict_p5.pkl"));
        var tooBig = Assert.Throws<OverflowException>(() => ad.Get<long>(NearMax, "u64"));
        Assert.Contains("u64", tooBig.Message);
        Assert.Contains("18446744073709551615", tooBig.Message);
        Assert.Contains("long", tooBig.Message);
        Assert.Throws<OverflowException>(() => ad.Get<short>(249467211, "size"));   // 87499 > 32767
        var fl = Assert.Throws<InvalidCastException>(() => ad.Get<long>(249467211, "volume_um3"));
        Assert.Contains("float", fl.Message);
        Assert.Throws<InvalidCastException>(() => ad.Get<int>(NearMax, "f64"));     // a numpy float64 2.5
        Assert.Throws<InvalidCastException>(() => ad.Get<float>(249467211, "volume_um3")); // not exact in float32
        Assert.Throws<InvalidCastException>(() => ad.Get<string>(249467211, "size"));
        var narrow = Assert.Throws<InvalidCastException>(() => ad.GetArray<int>(249467211, "rep_coord")); // int64 -> int32 is not safe
        Assert.Contains("safe", narrow.Message);
        Assert.Contains("rep_coord", narrow.Message);
        Assert.Equal(new[] { 3444, 3171, 2919 }, ad.GetArray<int>(249467211, "rep_coord", CastingRule.SameKind).AsSpan<int>().ToArray());
        Assert.Throws<InvalidCastException>(() => ad.GetArray<long>(249467211, "mesh_bb"));  // float -> int
    }

    [SkippableFact]
    public void Missing_keys_and_attributes_are_reported_and_nothing_is_inserted()
    {
        using var ad = AttributeDict.Open(Shared.PyFixture("attrdict_p5.pkl"));
        int before = ad.Count;
        var e = Assert.Throws<KeyNotFoundException>(() => ad.Get<long>(249467211, "sizee"));
        Assert.Contains("sizee", e.Message);
        Assert.Contains("size", e.Message.Replace("sizee", ""));
        Assert.Throws<KeyNotFoundException>(() => ad.Get<long>(1, "size"));
        Assert.False(ad.TryGet<long>(1, "size", out _));
        Assert.False(ad.TryGet<long>(249467211, "nope", out _));
        Assert.True(ad.TryGet<int>(249467211, "size", out var size));
        Assert.Equal(87499, size);
        Assert.Empty(ad.AttributeNames(1));
        Assert.Contains("rep_coord", ad.AttributeNames(249467211));
        Assert.Equal(before, ad.Count);
        Assert.False(ad.ContainsKey(1));
    }

    [Fact]
    public void PyConvert_checks_by_value_and_walks_value_trees()
    {
        Assert.Equal(255, PyConvert.To<byte>(NpScalar.UInt64(255)));
        Assert.Throws<OverflowException>(() => PyConvert.To<byte>(NpScalar.UInt64(256)));
        Assert.Throws<OverflowException>(() => PyConvert.To<uint>(-1L));
        Assert.Equal(-1, PyConvert.To<int>(NpScalar.Int64(-1)));
        Assert.Equal(1L, PyConvert.To<long>(true));
        Assert.Null(PyConvert.To<long?>(PyNone.Value));
        Assert.Equal(5L, PyConvert.To<long?>(5L));
        Assert.Throws<InvalidCastException>(() => PyConvert.To<long>(PyNone.Value));
        Assert.Equal(9007199254740992.0, PyConvert.To<double>(9007199254740992L));
        Assert.Throws<InvalidCastException>(() => PyConvert.To<double>(9007199254740993L)); // 2^53 + 1 is not a double
        Assert.False(PyConvert.TryTo<int>(2.5, out _));
        Assert.Equal(7L, PyConvert.To<long>(NdArray.Create(new long[] { 7 }).Reshape())); // a 0-d array

        var tree = new PyDict { ["a"] = new PyList { 1L, new PyTuple(2L, NpScalar.UInt64(3)) } };
        Assert.Equal(3, PyConvert.Get<int>(tree, "a", 1, 1));
        Assert.Equal(2, PyConvert.Get<int>(tree, "a", -1, 0));
        var missing = Assert.Throws<KeyNotFoundException>(() => PyConvert.Get<int>(tree, "a", 5));
        Assert.Contains("['a'][5]", missing.Message);

        var nested = PyConvert.ToArray<int>(new PyList { new PyList { 1L, 2L }, new PyList { 3L, NpScalar.Int64(4) } });
        Assert.Equal(new long[] { 2, 2 }, nested.ShapeArray);
        Assert.Equal(new[] { 1, 2, 3, 4 }, nested.AsSpan<int>().ToArray());
        Assert.Throws<InvalidCastException>(() => PyConvert.ToArray<int>(new PyList { new PyList { 1L }, new PyList { 2L, 3L } }));
        Assert.Throws<OverflowException>(() => PyConvert.ToArray<byte>(new PyList { 1L, 300L }));
        Assert.Equal("List<int>", PyConvert.ClrName(typeof(List<int>)));
    }
}

public class NdArrayApiTests
{
    [Fact]
    public void ToArray_refuses_what_numpy_safe_casting_refuses_unless_asked()
    {
        var u64 = NdArray.Create(new ulong[] { 1, ulong.MaxValue });
        var e = Assert.Throws<InvalidCastException>(() => u64.ToArray<float>());
        Assert.Contains("<u8", e.Message);
        Assert.Contains("Unsafe", e.Message);
        Assert.Throws<InvalidCastException>(() => u64.ToArray<long>());
        Assert.Equal(new[] { 1L, -1L }, u64.ToArray<long>(CastingRule.Unsafe));
        Assert.Equal(new[] { 1L, -1L }, u64.ToArray<long>(CastingRule.SameKind));
        Assert.Equal(new[] { 1.0, 18446744073709551615.0 }, u64.ToArray<double>());     // numpy: u8 -> f8 is safe
        var f8 = NdArray.Create(new[] { 1.5, -2.5 });
        Assert.Throws<InvalidCastException>(() => f8.ToArray<float>());
        Assert.Equal(new[] { 1.5f, -2.5f }, f8.ToArray<float>(CastingRule.SameKind));
        Assert.Throws<InvalidCastException>(() => f8.ToArray<long>(CastingRule.SameKind));
        Assert.Equal(new[] { 1L, -2L }, f8.ToArray<long>(CastingRule.Unsafe));
        Assert.Equal(new[] { 1L, 2L }, NdArray.Create(new uint[] { 1, 2 }).ToArray<long>());
        Assert.Throws<InvalidCastException>(() => NdArray.Create(new int[] { 1, 2 }).ToArray<uint>());
        Assert.Equal(new[] { 1.0f, 0.0f }, NdArray.Create(new[] { true, false }).ToArray<float>());
    }

    [Theory]
    [InlineData("|u1", "<f2", true)]
    [InlineData("|i1", "<f2", true)]
    [InlineData("<i2", "<f2", false)]
    [InlineData("<u2", "<f4", true)]
    [InlineData("<i4", "<f4", false)]
    [InlineData("<i8", "<f8", true)]
    [InlineData("<u4", "<i8", true)]
    [InlineData("<u8", "<i8", false)]
    [InlineData("<i4", "<u8", false)]
    [InlineData("<f4", "<c8", true)]
    [InlineData("<f8", "<c8", false)]
    [InlineData("<c8", "<f8", false)]
    [InlineData("|b1", "|u1", true)]
    [InlineData("|u1", "|b1", false)]
    [InlineData(">i4", "<i4", true)]
    public void The_safe_table_is_numpys(string from, string to, bool safe) =>
        Assert.Equal(safe, Casting.CanCast(DType.Parse(from), DType.Parse(to), CastingRule.Safe));

    [Fact]
    public void ToString_shows_dtype_shape_and_leading_values()
    {
        var a = NdArray.Create(Enumerable.Range(0, 18).Select(i => (uint)i).ToArray(), 6, 3);
        Assert.Equal("ndarray(dtype=<u4, shape=(6, 3), [0, 1, 2, 3, 4, 5, 6, 7, ...])", a.ToString());
        Assert.Equal("ndarray(dtype=<f8, shape=(2,), [1.5, -2])", NdArray.Create(new[] { 1.5, -2.0 }).ToString());
        Assert.Equal("ndarray(dtype=|b1, shape=(0,))", NdArray.Zeros(DType.Bool, 0).ToString());
        Assert.Equal("ndarray(dtype=<i8, shape=(), [7])", NdArray.Create(new long[] { 7 }).Reshape().ToString());
    }

    [Fact]
    public void Reshape_and_GetValue_index_a_flat_layout()
    {
        var flat = NdArray.Create(new uint[] { 1, 2, 3, 4, 5, 6 });
        var rows = flat.Reshape(-1, 3);
        Assert.Equal(new long[] { 2, 3 }, rows.ShapeArray);
        Assert.Equal(6u, rows.GetValue<uint>(1, 2));
        Assert.Equal(4L, rows.GetValue<long>(1, 0));
        Assert.Throws<IndexOutOfRangeException>(() => rows.GetValue<uint>(2, 0));
        Assert.Throws<ArgumentException>(() => rows.GetValue<uint>(1));
        Assert.Throws<ArgumentException>(() => flat.Reshape(4, -1));
    }
}
