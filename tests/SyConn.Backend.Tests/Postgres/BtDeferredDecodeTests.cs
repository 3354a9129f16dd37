using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// A pull keeps each well-formed entry as bytes and decodes it when its key is first read (reading ahead of a caller
/// that reads in the store's order); an entry that is no well-formed pickle still fails the pull, and one whose opcodes
/// are well formed but cannot be decoded fails the read of its key, naming the store and the key.
/// </summary>
public sealed class BtDeferredDecodeTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    private static PyDict Value(long i) => new() { ["size"] = i, ["rep"] = NdArray.Create(new[] { i, 2 * i, 3 * i }), ["t"] = "sv" };

    private string Write(string name, int n)
    {
        string id = _prefix + name;
        using var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable));
        for (long i = 0; i < n; i++) ad[i] = Value(i);
        ad.Push();
        return id;
    }

    private static PostgresEntryStore Rows(AttributeDict ad) => (PostgresEntryStore)ad.EntryStore;

    private static void SetEntry(string id, long key, byte[] entry) =>
        Assert.Equal(1, BtTestDatabase.Scalar("WITH u AS (UPDATE syconn.entries SET entry = $3 WHERE identifier = $1 AND key = $2 RETURNING 1) SELECT count(*)::int FROM u",
            id, BtKey.Encode(key), entry));

    [SkippableFact]
    public void Entries_are_decoded_when_first_read_and_read_alike_one_by_one_in_order_and_in_parallel()
    {
        string id = Write("values", 3000);
        using (var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options()))
        {
            Assert.Equal(0, Rows(ad).RowsDecoded);
            var d = (PyDict)ad[1234L];
            Assert.Equal(1234L, d["size"]);
            Assert.Equal(new[] { 1234L, 2468L, 3702L }, ((NdArray)d["rep"]).AsSpan<long>().ToArray());
            Assert.Same(d, ad[1234L]);
            Assert.Equal(1, Rows(ad).RowsDecoded);
        }
        using (var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options()))
        {
            var keys = Enumerable.Range(0, 3000).Select(i => (StoreKey)(long)i).ToArray();
            var got = new object[keys.Length];
            Parallel.For(0, keys.Length, i => got[i] = ad[keys[i]]);
            for (int i = 0; i < keys.Length; i++)
            {
                Assert.Same(got[i], ad[keys[i]]);
                Assert.Equal((long)i, ((PyDict)got[i])["size"]);
            }
        }
    }

    [SkippableFact]
    public void Keys_read_in_order_are_decoded_ahead_on_another_core()
    {
        Skip.If(Environment.ProcessorCount < 2, "reading ahead needs a second core");
        string id = Write("ahead", 3000);
        using var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options());
        for (long i = 0; i < 100; i++) Assert.Equal(i, ((PyDict)ad[i])["size"]);
        var until = DateTime.UtcNow.AddSeconds(30);
        while (!Rows(ad).AheadIdle && DateTime.UtcNow < until) Thread.Sleep(5);
        Assert.True(Rows(ad).RowsDecoded > 1000, $"{Rows(ad).RowsDecoded} rows decoded after reading 100 in order");
        for (long i = 100; i < 3000; i++) Assert.Equal(i, ((PyDict)ad[i])["size"]);
    }

    [SkippableFact]
    public void A_well_formed_entry_that_cannot_be_decoded_fails_the_read_of_its_key_and_nothing_else()
    {
        string id = Write("refused", 50);
        // GLOBAL os.system, STOP: laid out as a pickle should be, refused when decoded.
        SetEntry(id, 7, [0x80, 0x02, (byte)'c', .. "os\nsystem\n"u8, (byte)'.']);
        using (var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options()))
        {
            Assert.Equal(50, ad.Count);
            for (long i = 0; i < 50; i++)
            {
                if (i == 7) continue;
                Assert.Equal(i, ((PyDict)ad[i])["size"]);
            }
            var e = Assert.Throws<InvalidDataException>(() => ad.TryGetValue(7L, out _));
            Assert.Contains("bt:" + id, e.Message, StringComparison.Ordinal);
            Assert.Contains("key 7", e.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidDataException>(() => ad.TryGetValue(7L, out _)); // again, not a half-read value
        }
        // Read in order, with reading ahead: the worker leaves the damaged row to the caller, whose read reports it.
        using (var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options()))
        {
            for (long i = 0; i < 7; i++) _ = ad[i];
            Assert.Throws<InvalidDataException>(() => ad.TryGetValue(7L, out _));
            for (long i = 8; i < 50; i++) Assert.Equal(i, ((PyDict)ad[i])["size"]);
        }
    }

    [SkippableFact]
    public void An_entry_that_is_no_well_formed_pickle_still_fails_the_pull()
    {
        string id = Write("truncated", 20);
        var entry = (byte[])BtTestDatabase.Scalar("SELECT entry FROM syconn.entries WHERE identifier = $1 AND key = $2", id, BtKey.Encode(3L))!;
        SetEntry(id, 3, entry[..^1]); // no STOP
        var e = Assert.Throws<InvalidDataException>(() => AttributeDict.Open("bt:" + id, BtTestDatabase.Options()));
        Assert.Contains("bt:" + id, e.Message, StringComparison.Ordinal);
        Assert.Contains("key 3", e.Message, StringComparison.Ordinal);
    }
}
