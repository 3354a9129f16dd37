using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// The per-store limit (<see cref="ReadLimits.MaxStoreBytes"/>) beyond the npz readers: the payloads one load of a
/// <c>.pkl</c> store file produces, and the LZ4 bytes one <c>GetMany</c> or enumeration decodes. A small configured
/// limit refuses with a message naming the file and key, before allocating, and nothing stored changes.
/// </summary>
public class StoreReadLimitTests
{
    private const int Keys = 10;

    /// <summary>Values of 8000 random bytes (LZ4 cannot shrink them), so each entry's block is a little over 8000 bytes.</summary>
    private static NdArray Random8000(int key)
    {
        var values = new long[1000];
        var rng = new Random(key);
        for (int i = 0; i < values.Length; i++) values[i] = rng.NextInt64();
        return NdArray.Create(values);
    }

    /// <summary>Values of 80 000 zero bytes: a block of a few hundred bytes each.</summary>
    private static NdArray Zeros80000(int key) => NdArray.Create(Enumerable.Repeat((long)key, 10_000).ToArray());

    private static string Write(TempDir dir, Func<int, NdArray> values)
    {
        var path = dir.File("cs.pkl");
        using var cs = new CompressedStorage(path, StoreOptions.Writable);
        for (int k = 0; k < Keys; k++) cs[(ulong)k] = values(k);
        cs.Push();
        return path;
    }

    private static StoreOptions Limited(long maxStoreBytes, bool writable = false) =>
        new() { ReadOnly = !writable, Limits = new ReadLimits { MaxStoreBytes = maxStoreBytes } };

    [Fact]
    public void Loading_a_pickle_store_file_stops_at_the_store_limit_naming_the_file_and_key()
    {
        using var dir = new TempDir();
        var path = Write(dir, Random8000);
        var before = File.ReadAllBytes(path);
        int block = Lz4List.Encode(Random8000(0)).Sum(b => ((PyBytes)b).Length);
        Assert.InRange(block, 8000, 8100);

        // The blocks of keys 0-3 and the few field strings fit; the block of key 4 passes the limit.
        long limit = block * 9 / 2;
        var e = Assert.Throws<InvalidDataException>(() => new CompressedStorage(path, Limited(limit)));
        Assert.Contains(path, e.Message);
        Assert.Contains("in the entry of key 4", e.Message);
        Assert.Contains("ReadLimits.MaxStoreBytes", e.Message);
        Assert.Contains("byte offset", e.Message);
        // Writable too: the refused file is kept as it was (no push, no move aside).
        Assert.Throws<InvalidDataException>(() => new CompressedStorage(path, Limited(limit, writable: true)));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(dir.Path));

        // At the default limit, and at a limit just above the file's payloads, every value is there.
        using var ok = new CompressedStorage(path, Limited(before.Length));
        for (int k = 0; k < Keys; k++) Assert.Equal(Random8000(k).ToArray<long>(), ok[(ulong)k].ToArray<long>());
        using var byDefault = new CompressedStorage(path);
        Assert.Equal(Keys, byDefault.Count);
    }

    [Fact]
    public void The_pickle_readers_payload_limit_counts_strings_bytes_and_copies_before_allocating()
    {
        // Strings are counted by their UTF-8 bytes, bytes and bytearrays by their length.
        var value = new PyDict { [1L] = new string('x', 300), [2L] = new PyBytes(new byte[300]), [3L] = new PyByteArray(new byte[300]) };
        var bytes = P.Dump(value);
        Assert.NotNull(P.Load(bytes, null, "ok.pkl", out _, 900));
        var e = Assert.Throws<InvalidDataException>(() => P.Load(bytes, null, "limited.pkl", out _, 899));
        Assert.Contains("limited.pkl", e.Message);
        Assert.Contains("in the entry of key 3", e.Message);
        Assert.Contains("brings the bytes read to 900", e.Message);
        // A one-field dict value has no MARK of its own: its field name is not mistaken for the store key.
        var small = new PyDict { ["blob"] = new PyBytes(new byte[10]) };
        var oneField = P.Dump(new PyDict { [6L] = small, [7L] = new PyDict { ["blob"] = new PyBytes(new byte[500]) } });
        var f = Assert.Throws<InvalidDataException>(() => P.Load(oneField, null, "one.pkl", out _, 100));
        Assert.Contains("one.pkl", f.Message);
        Assert.Contains("a payload of 500 bytes", f.Message);
        Assert.DoesNotContain("key", f.Message);
        // A big-endian array is copied (swapped to native order): the copy counts too, a native one is not copied.
        var native = P.Dump(new PyDict { [1L] = new NdArray(new DType('<', 'i', 8), [100], new byte[800]) }, 4);
        var swapped = P.Dump(new PyDict { [1L] = new NdArray(new DType('>', 'i', 8), [100], new byte[800]) }, 4);
        Assert.NotNull(P.Load(native, null, "le.pkl", out _, 1000));
        var c = Assert.Throws<InvalidDataException>(() => P.Load(swapped, null, "be.pkl", out _, 1000));
        Assert.Contains("be.pkl", c.Message);
        Assert.Contains("a payload of 800 bytes", c.Message);
        Assert.NotNull(P.Load(swapped, null, "be.pkl", out _, 2000));
    }

    [Fact]
    public void GetMany_stops_at_the_store_limit_of_decoded_LZ4_bytes_naming_the_file_and_key()
    {
        using var dir = new TempDir();
        var path = Write(dir, Zeros80000);
        var before = File.ReadAllBytes(path);
        var all = Enumerable.Range(0, Keys).Select(k => (StoreKey)(ulong)k).ToList();
        using (var cs = new CompressedStorage(path, Limited(250_000, writable: true)))
        {
            // The file's payloads are a few KB; three values of 80 000 bytes fit in one call, ten do not.
            var three = cs.GetMany(all.Take(3).ToList());
            Assert.Equal(Zeros80000(2).ToArray<long>(), three[2].ToArray<long>());
            Assert.Equal(3, cs.GetMany(all.Skip(3).Take(3).ToList()).Length); // each call has its own total
            var e = Assert.Throws<InvalidDataException>(() => cs.GetMany(all));
            Assert.Contains(path, e.Message);
            Assert.Matches(@"key \d, 'arr'", e.Message);
            Assert.Contains("ReadLimits.MaxStoreBytes", e.Message);
            Assert.Contains("80000 bytes", e.Message);
            // One-by-one reads are not one call: each is within the limit.
            for (int k = 0; k < Keys; k++) Assert.Equal(Zeros80000(k).ToArray<long>(), cs[(ulong)k].ToArray<long>());
            Assert.False(cs.IsDirty);
        }
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void Enumeration_stops_at_the_store_limit_of_decoded_LZ4_bytes()
    {
        using var dir = new TempDir();
        var path = Write(dir, Zeros80000);
        var before = File.ReadAllBytes(path);
        using (var cs = new CompressedStorage(path, Limited(250_000)))
        {
            int seen = 0;
            var e = Assert.Throws<InvalidDataException>(() => { foreach (var kv in cs) seen++; });
            Assert.Contains(path, e.Message);
            Assert.Matches(@"key \d, 'arr'", e.Message);
            Assert.Contains("ReadLimits.MaxStoreBytes", e.Message);
            Assert.InRange(seen, 0, 3);
            Assert.Throws<InvalidDataException>(() => cs.Values.Count());
        }
        Assert.Equal(before, File.ReadAllBytes(path));
        // The limit is per call: with room for the whole store, one enumeration reads every value.
        using var roomy = new CompressedStorage(path, Limited(Keys * 80_000));
        Assert.Equal(Keys, roomy.Count());
        Assert.Equal(Keys, roomy.Count());
    }

    [Fact]
    public void An_LZ4_block_declaring_more_than_255_bytes_per_byte_is_refused_before_allocating()
    {
        // LZ4's best ratio approaches 255:1 (a match of 255 bytes per length byte) and never reaches it.
        var zeros = new byte[16 << 20];
        var block = PyLz4.Compress(zeros);
        long body = block.Length - 4;
        Assert.True(zeros.Length < body * 255, $"{zeros.Length} bytes from {body}");
        Assert.True(zeros.Length > body * 254, $"{zeros.Length} bytes from {body}");
        Assert.Equal(zeros.Length, PyLz4.DecompressedLength(block));
        // A prefix one byte beyond the bound is refused from the prefix alone; at the bound it is left to the decoder.
        var lying = (byte[])block.Clone();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(lying, (int)(body * 255 + 1));
        var e = Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(lying, "key 9, chunk 0"));
        Assert.Contains("can produce", e.Message);
        Assert.Contains("key 9, chunk 0", e.Message);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(lying, (int)(body * 255));
        Assert.Equal((int)(body * 255), PyLz4.DecompressedLength(lying));
        Assert.Throws<InvalidDataException>(() => PyLz4.Decompress(lying));
        // In a store's chunk list the same block is refused with the file and key.
        var list = new List<object> { new PyBytes(lying) };
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(lying, (int)(body * 255 + 1));
        var l = Assert.Throws<InvalidDataException>(() => Lz4List.Decode(list, DType.UInt8, null, "cs.pkl, key 3, 'arr'"));
        Assert.Contains("cs.pkl, key 3, 'arr'", l.Message);
    }
}
