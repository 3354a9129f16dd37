using SyConn.Backend.Python;

namespace SyConn.Backend.Tests.Python;

/// <summary>Python's <c>==</c> on the value model, where it decides which dict keys are one key.</summary>
public sealed class PyEqualityTests
{
    [Fact]
    public void Empty_bytes_equal_only_empty_bytes_not_every_other_value()
    {
        var empty = new PyBytes(Array.Empty<byte>());
        Assert.True(PyEquality.AreEqual(empty, new PyBytes(Array.Empty<byte>())));
        Assert.True(PyEquality.AreEqual(empty, new PyByteArray(Array.Empty<byte>())));
        foreach (var other in new object[] { 0L, 2L, "", PyNone.Value, new PyTuple(), 0.0, false })
        {
            Assert.False(PyEquality.AreEqual(empty, other), $"b'' == {PyRepr.Repr(other)}");
            Assert.False(PyEquality.AreEqual(other, empty), $"{PyRepr.Repr(other)} == b''");
        }
        // As dict keys: b'' and 2 are two keys.
        var d = new PyDict { [empty] = 1L, [2L] = 2L };
        Assert.Equal(2, d.Count);
    }
}
