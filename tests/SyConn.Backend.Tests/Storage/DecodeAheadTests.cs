using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>Enumerating a store decodes values ahead in parallel batches; what the caller sees is what one-by-one reads give.</summary>
public class DecodeAheadTests
{
    private static NdArray Values(int key, int n) => NdArray.Create(Enumerable.Range(0, n * 3).Select(i => (long)(key * 1000 + i)).ToArray(), n, 3);

    private static string Write(TempDir dir, int count)
    {
        var path = dir.File("cs.pkl");
        using var cs = new CompressedStorage(path, StoreOptions.Writable);
        for (int k = 0; k < count; k++) cs[(ulong)k] = Values(k, 1 + k % 50);
        cs.Push();
        return path;
    }

    [Fact]
    public void Enumeration_gives_every_value_in_key_order()
    {
        using var dir = new TempDir();
        var path = Write(dir, 1000);
        using var cs = new CompressedStorage(path);
        var seen = cs.ToList();
        Assert.Equal(cs.Keys, seen.Select(kv => kv.Key));
        foreach (var (key, value) in seen)
        {
            int k = int.Parse(key.ToString(), System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(Values(k, 1 + k % 50).ToArray<long>(), value.ToArray<long>());
        }
        Assert.Equal(seen.Select(kv => kv.Value.Sha256C()), cs.Values.Select(v => v.Sha256C()));
    }

    [Fact]
    public void A_value_changed_inside_the_loop_is_seen_as_changed()
    {
        using var dir = new TempDir();
        var path = Write(dir, 200);
        using var cs = new CompressedStorage(path, StoreOptions.Writable);
        var replaced = Values(7777, 2);
        int visited = 0;
        foreach (var (key, value) in cs)
        {
            if (visited == 0)
            {
                cs[(ulong)2] = replaced;   // in the batch already decoded (the first holds at least 4 keys)
                cs[(ulong)150] = replaced; // in a later batch
            }
            if (key == (ulong)2 || key == (ulong)150) Assert.Equal(replaced.ToArray<long>(), value.ToArray<long>());
            visited++;
        }
        Assert.Equal(200, visited);
    }

    [Fact]
    public void A_corrupt_value_throws_at_its_own_turn()
    {
        using var dir = new TempDir();
        var path = Write(dir, 100);
        using var cs = new CompressedStorage(path, StoreOptions.Writable);
        cs.SetRaw((ulong)60, new PyDict { ["shape"] = new PyTuple([3L]), ["dtype"] = "<i8", ["data"] = new PyList { new PyBytes(new byte[] { 1, 2, 3 }) } });
        var before = new List<StoreKey>();
        var e = Record.Exception(() =>
        {
            foreach (var (key, _) in cs) before.Add(key);
        });
        Assert.NotNull(e);
        Assert.IsType<InvalidDataException>(e);
        Assert.Equal(cs.Keys.TakeWhile(k => k != (ulong)60), before);
    }
}
