using System.Text.Json.Nodes;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Postgres;

namespace SyConn.Backend.Tests.CommandLine;

/// <summary>The command line on <c>bt:</c> addresses against a real PostgreSQL server: convert both ways, dump, keys, get, layout.</summary>
public sealed class BtCliTests
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    private static (int Code, string Out, string Err) Run(params string[] args) => CliRun.InProcess(args);

    [SkippableFact]
    public void A_fixture_converts_to_bt_and_back_and_dump_keys_and_get_read_it_there()
    {
        string cs = BtTestDatabase.ConnectionString;
        string bt = $"bt:{_prefix}cs";
        using var dir = new TempDir();
        var fixture = Shared.PyFixture("compressed_storage.pkl");

        var (code, o, e) = Run("convert", fixture, bt, "--as", "CompressedStorage", "--bt", cs, "--json");
        Assert.True(code == 0, e);
        var summary = JsonNode.Parse(o)!;
        Assert.Equal(bt, (string)summary["destination"]!);
        Assert.True((int)summary["entries"]! > 0);
        Assert.Contains("convert: ", e, StringComparison.Ordinal); // progress on stderr

        // dump of the bt: store is the dump of the file, entry for entry.
        var (c1, fileDump, e1) = Run("dump", fixture);
        var (c2, btDump, e2) = Run("dump", bt, "--bt", cs);
        Assert.True(c1 == 0 && c2 == 0, e1 + e2);
        TypedJsonAssert.Equal(JsonNode.Parse(fileDump), JsonNode.Parse(btDump), "dump of the file and of its bt: copy");

        var (c3, fileKeys, _) = Run("keys", fixture, "--as", "CompressedStorage");
        var (c4, btKeys, e4) = Run("keys", bt, "--as", "CompressedStorage", "--bt", cs);
        Assert.True(c3 == 0 && c4 == 0, e4);
        Assert.Equal(fileKeys, btKeys);

        string firstKey = fileKeys.Split('\n', StringSplitOptions.RemoveEmptyEntries)[0];
        var (c5, fileGet, _) = Run("get", fixture, "--as", "CompressedStorage", "--json", "--", firstKey);
        var (c6, btGet, e6) = Run("get", bt, "--as", "CompressedStorage", "--bt", cs, "--json", "--", firstKey);
        Assert.True(c5 == 0 && c6 == 0, e6);
        Assert.Equal(fileGet, btGet);

        // And back to a file, whose dump is the fixture's.
        var back = dir.File("back.pkl");
        var (c7, _, e7) = Run("convert", bt, back, "--as", "CompressedStorage", "--bt", cs, "--quiet");
        Assert.True(c7 == 0, e7);
        TypedJsonAssert.Equal(JsonNode.Parse(fileDump), JsonNode.Parse(Run("dump", back).Out), "dump after FS -> BT -> FS");
    }

    [SkippableFact]
    public void Convert_overwrite_replaces_an_existing_bt_store_and_without_it_refuses()
    {
        string cs = BtTestDatabase.ConnectionString;
        string bt = $"bt:{_prefix}over";
        var first = Run("convert", Shared.PyFixture("attrdict_p5.pkl"), bt, "--as", "AttributeDict", "--bt", cs, "--quiet");
        Assert.True(first.Code == 0, first.Err);
        var refused = Run("convert", Shared.PyFixture("attrdict_p4.pkl"), bt, "--as", "AttributeDict", "--bt", cs, "--quiet");
        Assert.Equal(1, refused.Code);
        var again = Run("convert", Shared.PyFixture("compressed_storage.pkl"), bt, "--as", "CompressedStorage", "--bt", cs, "--quiet", "--overwrite");
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(Run("keys", Shared.PyFixture("compressed_storage.pkl"), "--as", "CompressedStorage").Out,
            Run("keys", bt, "--as", "CompressedStorage", "--bt", cs).Out);
    }

    [SkippableFact]
    public void SYCONN_BT_names_the_database_when_bt_is_not_given()
    {
        string cs = BtTestDatabase.ConnectionString;
        string bt = $"bt:{_prefix}env";
        var (code, _, e) = Run("convert", Shared.PyFixture("attrdict_p5.pkl"), bt, "--as", "AttributeDict", "--bt", cs, "--quiet");
        Assert.True(code == 0, e);
        string? before = Environment.GetEnvironmentVariable("SYCONN_BT");
        try
        {
            Environment.SetEnvironmentVariable("SYCONN_BT", cs);
            var (c, keys, err) = Run("keys", bt, "--as", "AttributeDict");
            Assert.True(c == 0, err);
            var expected = Run("keys", Shared.PyFixture("attrdict_p5.pkl"), "--as", "AttributeDict").Out;
            Assert.NotEmpty(expected);
            Assert.Equal(expected, keys);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SYCONN_BT", before);
        }
    }

    [SkippableFact]
    public void A_missing_bt_store_is_one_error_line_with_exit_code_1()
    {
        var (code, _, e) = Run("dump", $"bt:{_prefix}nothing", "--bt", BtTestDatabase.ConnectionString);
        Assert.Equal(1, code);
        Assert.StartsWith("syconn-store: ", e);
        Assert.Contains("nothing", e, StringComparison.Ordinal);
        Assert.Single(e.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [SkippableFact]
    public void Bt_layout_lists_every_partition_and_its_shard()
    {
        string coord = BtTestDatabase.PartitionedConnectionString;
        var (code, o, e) = Run("bt-layout", "--coordinator", coord, "--count", "--json");
        Assert.True(code == 0, e);
        var parts = (JsonArray)JsonNode.Parse(o)!["partitions"]!;
        Assert.Equal(16, parts.Count);
        Assert.Equal(2, parts.Select(p => (string)p!["shard"]!).Distinct().Count());
        Assert.All(parts, p => Assert.True((long)p!["stores"]! >= 0));
    }
}
