using System.Numerics;
using CsCheck;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>The canonical BT key: equal as Python dict keys exactly when equal as bytes.</summary>
public sealed class BtKeyTests
{
    private static string Hex(object key) => Convert.ToHexString(BtKey.Encode(key));

    [Fact]
    public void Keys_that_Python_treats_as_one_key_have_one_encoding()
    {
        string five = Hex(5L);
        Assert.Equal(five, Hex(NpScalar.UInt64(5)));
        Assert.Equal(five, Hex(NpScalar.Int64(5)));
        Assert.Equal(five, Hex(5.0));
        Assert.Equal(five, Hex(NpScalar.Float64(5.0)));
        Assert.Equal(five, Hex(new BigInteger(5)));
        Assert.Equal(five, Hex(new Complex(5, 0)));
        Assert.Equal(Hex(1L), Hex(true));
        Assert.Equal(Hex(0L), Hex(-0.0));
        Assert.Equal(Hex(PyInt.From(ulong.MaxValue)), Hex(NpScalar.UInt64(ulong.MaxValue)));
        Assert.Equal(Hex(new PyTuple(1L, "a")), Hex(new PyTuple(NpScalar.UInt64(1), "a")));
        Assert.Equal(Hex(new PySet([1L, 2L, "x"], frozen: true)), Hex(new PySet(["x", 2.0, NpScalar.Int64(1)], frozen: true)));
        Assert.Equal("6905", five); // tag 'i', then big-endian two's complement
    }

    [Fact]
    public void Keys_that_Python_tells_apart_have_different_encodings()
    {
        object[] keys =
        [
            1L, -1L, 1.5, "1", new PyBytes(new byte[] { 0x31 }), new PyTuple(1L), new PyTuple(new PyTuple(1L)), PyNone.Value,
            new PyTuple(), "", new PyBytes(Array.Empty<byte>()), new PyTuple(1L, 2L), new PyTuple(12L), new PyTuple("1", "2"), new PyTuple("12"),
            PyInt.From(BigInteger.Pow(2, 64)), PyInt.From(ulong.MaxValue), 255L, 128L, -128L, double.PositiveInfinity, double.NegativeInfinity,
            new Complex(1, 1), new PySet([1L], frozen: true), "\ud800", "\udc00", "\U00010000",
        ];
        var encodings = keys.Select(Hex).ToList();
        Assert.Equal(keys.Length, encodings.Distinct().Count());
    }

    [Fact]
    public void Unhashable_and_NaN_keys_are_refused()
    {
        Assert.Throws<ArgumentException>(() => BtKey.Encode(double.NaN));
        Assert.Throws<ArgumentException>(() => BtKey.Encode(new PyTuple(double.NaN)));
        Assert.Throws<ArgumentException>(() => BtKey.Encode(new PyList()));
        Assert.Throws<ArgumentException>(() => BtKey.Encode(new PyDict()));
    }

    private static readonly Gen<object> GenAtom = Gen.OneOf(
        Gen.Long[-300, 300].Select(l => (object)l),
        Gen.Long.Select(l => (object)l),
        Gen.Long[-300, 300].Select(l => (object)NpScalar.Int64(l)),
        Gen.ULong.Select(u => (object)NpScalar.UInt64(u)),
        Gen.Int[-20, 20].Select(i => (object)(i / 4.0)),
        Gen.Bool.Select(b => (object)b),
        Gen.Int[0x20, 0x7E].Array[0, 4].Select(c => (object)new string(c.Select(x => (char)x).ToArray())),
        Gen.Byte[0x30, 0x33].Array[0, 3].Select(b => (object)new PyBytes(b)),
        Gen.Const((object)PyNone.Value));

    private static readonly Gen<object> GenKey = Gen.OneOf(
        GenAtom,
        GenAtom.Array[0, 3].Select(items => (object)new PyTuple(items)),
        GenAtom.Array[0, 3].Select(items => (object)new PySet(items, frozen: true)));

    [Fact]
    public void For_random_keys_equal_bytes_mean_equal_Python_keys()
    {
        Gen.Select(GenKey, GenKey).Sample((a, b) =>
            (BtKey.Encode(a).AsSpan().SequenceEqual(BtKey.Encode(b))) == PyEquality.AreEqual(a, b)
            && PyEquality.AreEqual(a, b) == (PyEquality.Comparer.GetHashCode(a) == PyEquality.Comparer.GetHashCode(b) && PyEquality.AreEqual(a, b)),
            iter: 20_000);
    }
}
