using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

public class ValueCheckTests
{
    [Fact]
    public void The_indexer_refuses_a_value_that_cannot_be_pickled_in_plain_words()
    {
        using var dir = new TempDir();
        using var ad = AttributeDict.Open(dir.File("attr_dict.pkl"), StoreOptions.Writable);
        var e = Assert.Throws<ArgumentException>(() => ad[5] = new List<int> { 1, 2 });
        Assert.Contains("key 5", e.Message);
        Assert.Contains("List<int>", e.Message);
        Assert.Contains("PyList", e.Message);
        Assert.DoesNotContain("System.Collections.Generic", e.Message);
        Assert.False(ad.ContainsKey(5));
        var nested = Assert.Throws<ArgumentException>(() => ad[6] = new PyDict { ["a"] = new PyList { 1L, new Dictionary<string, int>() } });
        Assert.Contains("['a'][1]", nested.Message);
        Assert.Contains("Dictionary<string, int>", nested.Message);
        Assert.Contains("PyDict", nested.Message);
        Assert.Throws<ArgumentException>(() => ad.Update([new(7, DateTime.UnixEpoch)]));
        var self = new PyDict { ["n"] = 1L };
        self["me"] = self;                                  // a cycle is a Python value
        ad[8] = new PyDict { ["x"] = NdArray.Create(new[] { 1 }), ["s"] = new PySet { 1L }, ["t"] = new PyTuple("a", NpScalar.UInt64(3)), ["self"] = self };
        ad.Push();
    }

    [Fact]
    public void A_live_value_edited_into_something_unpicklable_fails_at_push_with_key_and_path()
    {
        using var dir = new TempDir();
        var path = dir.File("attr_dict.pkl");
        using (var ad = AttributeDict.Open(path, StoreOptions.Writable))
        {
            ad[1] = new PyDict { ["size"] = 10L };
            ad.Push();
        }
        using (var ad = AttributeDict.Open(path, StoreOptions.Writable))
        {
            var attrs = ad.Attributes(1);
            attrs["meta"] = new PyDict { ["when"] = new[] { 1, 2, 3 } };
            var e = Assert.Throws<ArgumentException>(() => ad.Push());
            Assert.Contains("key 1", e.Message);
            Assert.Contains("['meta']['when']", e.Message);
            Assert.Contains("int[]", e.Message);
            Assert.Contains(path, e.Message);
        }
        using var r = AttributeDict.Open(path);
        Assert.Equal(["size"], r.AttributeNames(1));        // the file kept the last good push
    }
}
