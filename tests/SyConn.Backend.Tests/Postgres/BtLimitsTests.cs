using Npgsql;
using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>What the BT backend refuses, and what it says when it does: entries over the field limit, newer schemas, damaged rows.</summary>
public sealed class BtLimitsTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    [SkippableFact]
    public void An_entry_over_the_row_limit_is_refused_naming_the_key_and_nothing_is_written()
    {
        string id = _prefix + "big";
        var es = BtTestDatabase.Store(id);
        using var cs = CompressedStorage.Open(es, BtTestDatabase.Options(StoreOptions.Writable));
        cs[1] = NdArray.Create(new long[] { 1, 2, 3 });
        cs.Push();
        cs.Pull();
        es.MaxEntryBytes = 4096; // stands in for PostgreSQL's 1 GB field limit
        for (int i = 100; i < 300; i++) cs[i] = NdArray.Create(new long[] { i }); // enough rows to pickle on all cores
        cs[2] = NdArray.Create(new long[] { 4 });
        var rnd = new Random(7);
        var noise = new byte[100_000];
        rnd.NextBytes(noise);
        cs[3] = NdArray.Create(noise);
        var e = Assert.Throws<ArgumentException>(() => cs.Push());
        Assert.Contains("key 3", e.Message, StringComparison.Ordinal);
        Assert.Contains(id, e.Message, StringComparison.Ordinal);
        Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT count(*) FROM syconn.entries WHERE identifier = $1", id));
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
        Assert.Equal(PostgresEntryStore.MaxEntryBytesDefault, BtTestDatabase.Store(id).MaxEntryBytes);
    }

    [SkippableFact]
    public void A_push_with_Durable_false_commits_without_waiting_for_the_log_and_a_default_push_waits()
    {
        // A trigger on the store table notes the commit setting the push's transaction runs with (it fires at the end of
        // the push's statement, after the statement's own settings): for a push of one row (one statement) and of many
        // (a transaction of several, with COPY).
        string fn = "syconn_sc_" + Guid.NewGuid().ToString("N")[..8];
        BtTestDatabase.Scalar($"""
            CREATE TABLE {fn}_seen (identifier text, setting text);
            CREATE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.identifier LIKE '{_prefix}%' THEN INSERT INTO {fn}_seen VALUES (NEW.identifier, current_setting('synchronous_commit')); END IF;
              RETURN NEW;
            END $$;
            CREATE TRIGGER {fn} AFTER INSERT OR UPDATE ON syconn.stores FOR EACH ROW EXECUTE FUNCTION {fn}();
            """);
        try
        {
            foreach (int rows in new[] { 1, 200 })
                foreach (bool durable in new[] { true, false })
                {
                    string id = _prefix + "durable" + durable + rows;
                    using (var ad = AttributeDict.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable with { Durable = durable })))
                    {
                        for (int i = 0; i < rows; i++) ((PyDict)ad[i])["n"] = 1L;
                        ad.Push();
                    }
                    Assert.Equal(durable ? "on" : "off", BtTestDatabase.Scalar($"SELECT string_agg(setting, ',') FROM {fn}_seen WHERE identifier = $1", id));
                    using var back = AttributeDict.Open("bt:" + id, BtTestDatabase.Options());
                    Assert.Equal(rows, back.Count);
                    Assert.Equal(1L, ((PyDict)back[rows - 1])["n"]);
                }
        }
        finally
        {
            BtTestDatabase.Scalar($"DROP TRIGGER {fn} ON syconn.stores; DROP FUNCTION {fn}(); DROP TABLE {fn}_seen;");
        }
    }

    [SkippableFact]
    public void A_single_server_database_of_schema_version_1_is_upgraded_on_first_use_and_keeps_its_stores()
    {
        PgServer.RequireAvailable();
        string db = BtTestDatabase.NewDatabase(PgServer.Shared, "v1");
        using (var ad = AttributeDict.Open("bt:old", new StoreOptions { ReadOnly = false, ConnectionString = db }))
        {
            ((PyDict)ad[1])["a"] = 1L;
            ad.Push();
        }
        // What version 1 looked like: no push tokens.
        BtTestDatabase.ScalarOn(db, "ALTER TABLE syconn.stores DROP COLUMN pushes");
        BtTestDatabase.ScalarOn(db, "UPDATE syconn.schema_version SET version = 1");
        string fresh = new NpgsqlConnectionStringBuilder(db) { ApplicationName = "upgrade" }.ConnectionString;
        using (var ad = AttributeDict.Open("bt:old", new StoreOptions { ReadOnly = false, ConnectionString = fresh }))
        {
            Assert.Equal(1L, ((PyDict)ad[1])["a"]);
            ((PyDict)ad[1])["a"] = 2L;
            ad.Push();
        }
        Assert.Equal(BtSchema.Version, BtTestDatabase.ScalarOn(db, "SELECT version FROM syconn.schema_version"));
        Assert.Equal(1, BtTestDatabase.ScalarOn(db, "SELECT cardinality(pushes) FROM syconn.stores WHERE identifier = 'old'"));
        Assert.Equal(2L, BtTestDatabase.ScalarOn(db, "SELECT generation FROM syconn.stores WHERE identifier = 'old'"));
        using var back = AttributeDict.Open("bt:old", new StoreOptions { ConnectionString = fresh });
        Assert.Equal(2L, ((PyDict)back[1])["a"]);
    }

    [SkippableFact]
    public void A_database_with_a_newer_schema_is_refused_with_an_error_that_says_so()
    {
        PgServer.RequireAvailable();
        string db = BtTestDatabase.NewDatabase(PgServer.Shared, "newer");
        using (var ad = AttributeDict.Open("bt:x", new StoreOptions { ReadOnly = false, ConnectionString = db }))
        {
            ((PyDict)ad[1])["a"] = 1L;
            ad.Push();
        }
        BtTestDatabase.ScalarOn(db, "UPDATE syconn.schema_version SET version = $1", BtSchema.Version + 1);
        // A new process would meet the database afresh: a connection string this process has not used yet.
        string fresh = new NpgsqlConnectionStringBuilder(db) { ApplicationName = "fresh" }.ConnectionString;
        var e = Assert.Throws<NotSupportedException>(() => AttributeDict.Open("bt:x", new StoreOptions { ConnectionString = fresh }));
        Assert.Contains($"schema version {BtSchema.Version + 1}", e.Message, StringComparison.Ordinal);
        Assert.Contains("newer", e.Message, StringComparison.Ordinal);
    }

    [SkippableFact]
    public void A_damaged_row_fails_the_pull_naming_the_store_and_key_and_a_lazy_store_reads_the_others()
    {
        string id = _prefix + "damaged";
        using (var cs = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            for (int i = 0; i < 5; i++) cs[i] = NdArray.Create(new long[] { i });
            cs.Push();
        }
        var entry = (byte[])BtTestDatabase.Scalar("SELECT entry FROM syconn.entries WHERE identifier = $1 AND key = $2", id, BtKey.Encode(3L))!;
        BtTestDatabase.Scalar("UPDATE syconn.entries SET entry = $3 WHERE identifier = $1 AND key = $2", id, BtKey.Encode(3L), entry[..(entry.Length / 2)]);

        var e = Assert.Throws<InvalidDataException>(() => CompressedStorage.Open("bt:" + id, BtTestDatabase.Options()));
        Assert.Contains("bt:" + id, e.Message, StringComparison.Ordinal);
        Assert.Contains("key 3", e.Message, StringComparison.Ordinal);
        Assert.Contains("offset", e.Message, StringComparison.OrdinalIgnoreCase);

        using var lazy = CompressedStorage.Open("bt:" + id, BtTestDatabase.Options() with { LazyLoad = true });
        Assert.Equal(5, lazy.Count);
        Assert.Equal([4L], lazy[4].ToArray<long>());
        Assert.Throws<InvalidDataException>(() => lazy[3]);
    }

    [SkippableFact]
    public void Keys_of_every_kind_survive_fs_to_bt_to_fs_as_they_were_pickled()
    {
        using var dir = new TempDir();
        var keys = new object[]
        {
            NpScalar.UInt64(ulong.MaxValue), PyInt.From(System.Numerics.BigInteger.Pow(10, 30)), -5L, "name", new PyTuple(1L, "a"),
            new PyBytes(new byte[] { 1, 2 }), new PyBytes(Array.Empty<byte>()), 2L,
        };
        var dict = new PyDict();
        foreach (var (k, i) in keys.Select((k, i) => (k, i))) dict[k] = new PyDict { ["i"] = (long)i };
        File.WriteAllBytes(dir.File("src.pkl"), Formats.Pickle.Pickle.Dump(dict));
        string id = _prefix + "keys";
        var options = BtTestDatabase.Options(StoreOptions.Writable);
        using (var src = new PickleFileEntryStore(dir.File("src.pkl")))
        using (var bt = BtTestDatabase.Store(id))
        {
            src.Load(options);
            bt.ReplaceAll(src.ReadAll(), options);
        }
        using (var bt = BtTestDatabase.Store(id))
        using (var back = new PickleFileEntryStore(dir.File("back.pkl")))
        {
            bt.Load(options);
            back.ReplaceAll(bt.ReadAll(), options);
        }
        var original = TypedJson.ToJson(Formats.Pickle.Pickle.Load(File.ReadAllBytes(dir.File("src.pkl"))));
        var returned = TypedJson.ToJson(Formats.Pickle.Pickle.Load(File.ReadAllBytes(dir.File("back.pkl"))));
        TypedJsonAssert.Equal(original, returned, "the dict with its keys as pickled");
    }
}
