using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Tests.Arrays;

public class DTypeTests
{
    [Theory]
    [InlineData("<u8", 'u', 8, '<')]
    [InlineData("|b1", 'b', 1, '|')]
    [InlineData(">i4", 'i', 4, '>')]
    [InlineData("<U3", 'U', 12, '<')]
    [InlineData("|S5", 'S', 5, '|')]
    [InlineData("<c16", 'c', 16, '<')]
    [InlineData("<M8[s]", 'M', 8, '<')]
    [InlineData("|O", 'O', 8, '|')]
    public void Parse_keeps_numpy_str(string s, char kind, int size, char order)
    {
        var dt = DType.Parse(s);
        Assert.Equal(kind, dt.Kind);
        Assert.Equal(size, dt.ItemSize);
        Assert.Equal(order, dt.ByteOrder);
        Assert.Equal(s, dt.Str);
    }

    [Theory]
    [InlineData("uint64", "<u8")]
    [InlineData("u1", "|u1")]
    [InlineData("<u1", "|u1")]
    [InlineData("bool", "|b1")]
    [InlineData("float32", "<f4")]
    public void Parse_normalises_names(string s, string str) => Assert.Equal(str, DType.Parse(s).Str);

    [Theory]
    [InlineData("")]
    [InlineData("<x4")]
    [InlineData("<i3")]
    [InlineData("<f")]
    public void Parse_rejects_garbage(string s) => Assert.Throws<FormatException>(() => DType.Parse(s));
}

public class NdArrayTests
{
    [Fact]
    public void Big_endian_array_converts_to_native_with_same_values()
    {
        var be = new NdArray(DType.Parse(">i4"), [3], new byte[] { 0, 0, 0, 1, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe });
        var n = be.ToNativeC();
        Assert.Equal("<i4", n.DType.Str);
        Assert.Equal(new[] { 1, 256, -2 }, n.AsSpan<int>().ToArray());
        Assert.Equal(">i4", be.DType.Str);
    }

    [Fact]
    public void Fortran_array_gives_c_order_bytes()
    {
        // np.asfortranarray(np.arange(6, dtype='<u2').reshape(2, 3)).
        var f = new NdArray(DType.UInt16, [2, 3], new byte[] { 0, 0, 3, 0, 1, 0, 4, 0, 2, 0, 5, 0 }, ArrayOrder.F);
        Assert.Equal(new ushort[] { 0, 1, 2, 3, 4, 5 }, f.ToArray<ushort>());
        Assert.Equal(new byte[] { 0, 0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0 }, f.ToCBytes());
        Assert.True(f.Equals(NdArray.Create(new ushort[] { 0, 1, 2, 3, 4, 5 }, 2, 3)));
    }

    [Fact]
    public void AsType_wraps_and_truncates_like_numpy()
    {
        var a = NdArray.Create(new long[] { -1, 4294967297, 5 });
        Assert.Equal(new uint[] { 4294967295, 1, 5 }, a.AsType(DType.UInt32).AsSpan<uint>().ToArray());
        var f = NdArray.Create(new double[] { 1.9, -1.9, 0.5 });
        Assert.Equal(new int[] { 1, -1, 0 }, f.AsType(DType.Int32).AsSpan<int>().ToArray());
        Assert.Equal(new float[] { 1.9f, -1.9f, 0.5f }, f.AsType(DType.Float32).AsSpan<float>().ToArray());
    }

    [Fact]
    public void Reshape_infers_minus_one_and_rejects_bad_sizes()
    {
        var a = NdArray.Create(new int[] { 1, 2, 3, 4, 5, 6 });
        Assert.Equal(new long[] { 2, 3 }, a.Reshape(-1, 3).ShapeArray);
        Assert.Throws<ArgumentException>(() => a.Reshape(-1, 4));
    }

    [Fact]
    public void Data_length_must_match_shape() =>
        Assert.Throws<ArgumentException>(() => new NdArray(DType.Int32, [2], new byte[7]));
}

public class TypedJsonTests
{
    [Theory]
    [InlineData(1.5, "0x1.8000000000000p+0")]
    [InlineData(0.0, "0x0.0p+0")]
    [InlineData(-0.0, "-0x0.0p+0")]
    [InlineData(-2.25, "-0x1.2000000000000p+1")]
    [InlineData(5e-324, "0x0.0000000000001p-1022")]
    [InlineData(double.PositiveInfinity, "inf")]
    [InlineData(double.NaN, "nan")]
    public void FloatHex_matches_python(double d, string hex) => Assert.Equal(hex, TypedJson.FloatHex(d));

    [Fact]
    public void Python_equality_treats_int_like_keys_as_one()
    {
        var d = new PyDict { [5L] = "a" };
        Assert.True(d.ContainsKey(NpScalar.UInt64(5)));
        Assert.True(d.ContainsKey(5.0));
        Assert.True(d.ContainsKey(new System.Numerics.BigInteger(5)));
        Assert.False(d.ContainsKey("5"));
        var t = new PyDict { [new PyTuple(1L, "x")] = 1L };
        Assert.True(t.ContainsKey(new PyTuple(1L, "x")));
    }
}

public class WrapTests
{
    [Fact]
    public void Pinning_wrapped_data_releases_the_array_when_the_pins_are_disposed()
    {
        static WeakReference PinAndDrop()
        {
            var values = new long[] { 1, 2, 3 };
            var a = NdArray.Wrap(values);
            using (var h1 = a.Data.Pin())
            using (var h2 = a.Data.Pin())
            unsafe { Assert.Equal(2L, ((long*)h2.Pointer)[1]); }
            return new WeakReference(values);
        }
        var weak = PinAndDrop();
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Assert.False(weak.IsAlive);
    }
}
