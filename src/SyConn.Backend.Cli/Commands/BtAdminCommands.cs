using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Postgres;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Administration of the partitioned BT layout: <c>bt-init --shard CONN ...</c>, <c>bt-move-partition P --to CONN</c>
/// and <c>bt-layout</c>. The coordinator is <c>--coordinator CONN</c>, else <c>SYCONN_BT</c>.
/// </summary>
public static class BtAdminCommands
{
    private static Option<string?> CoordinatorOption() => new("--coordinator")
    {
        Description = "The coordinator's Npgsql connection string (default: $SYCONN_BT).",
    };

    private static string Coordinator(ParseResult r, Option<string?> option) =>
        r.GetValue(option) is { Length: > 0 } c ? c
        : Environment.GetEnvironmentVariable(BtBackend.EnvironmentVariable) is { Length: > 0 } env ? env
        : throw new UsageException($"name the coordinator with --coordinator CONNSTRING or {BtBackend.EnvironmentVariable}", "--coordinator");

    /// <summary><c>bt-init --shard CONN [--shard CONN ...] [--partitions N]</c>.</summary>
    public static Command Init()
    {
        var coordinator = CoordinatorOption();
        var shards = new Option<string[]>("--shard") { Description = "A shard's Npgsql connection string (repeat for each shard).", Required = true, AllowMultipleArgumentsPerToken = false };
        var partitions = new Option<int>("--partitions") { Description = "Hash partitions (spread round-robin over the shards).", DefaultValueFactory = _ => BtCluster.DefaultPartitions };
        var cmd = new Command("bt-init", "Lay out the partitioned BT schema: hash partitions on the coordinator, each a postgres_fdw foreign table on a shard.")
        {
            coordinator, shards, partitions,
        };
        cmd.SetAction((ParseResult r) =>
        {
            var list = r.GetValue(shards) ?? [];
            if (list.Length == 0) throw new UsageException("give at least one --shard", "--shard");
            int n = r.GetValue(partitions);
            if (n < 1) throw new UsageException("--partitions must be at least 1", "--partitions");
            BtCluster.Init(Coordinator(r, coordinator), list, n, r.InvocationConfiguration.Error);
            r.InvocationConfiguration.Output.WriteLine($"laid out {n} partitions over {list.Distinct().Count()} shard(s)");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>bt-move-partition PARTITION --to CONN</c>.</summary>
    public static Command Move()
    {
        var coordinator = CoordinatorOption();
        var partition = new Argument<int>("partition") { Description = "The partition number (see bt-layout)." };
        var to = new Option<string>("--to") { Description = "The new shard's Npgsql connection string.", Required = true };
        var cmd = new Command("bt-move-partition", "Move one partition to another shard while clients keep working (rerun to finish an interrupted move).")
        {
            partition, coordinator, to,
        };
        cmd.SetAction((ParseResult r) =>
        {
            long rows = BtCluster.MovePartition(Coordinator(r, coordinator), r.GetValue(partition), r.GetValue(to)!, r.InvocationConfiguration.Error);
            r.InvocationConfiguration.Output.WriteLine($"moved partition {r.GetValue(partition).ToString(CultureInfo.InvariantCulture)} ({rows.ToString(CultureInfo.InvariantCulture)} entry rows)");
            return 0;
        });
        return cmd;
    }

    /// <summary><c>bt-layout [--count] [--json]</c>: which shard holds each partition.</summary>
    public static Command Layout()
    {
        var coordinator = CoordinatorOption();
        var count = new Option<bool>("--count") { Description = "Also count stores and entry rows per partition (asks every shard)." };
        var json = new Option<bool>("--json") { Description = "One JSON document on stdout." };
        var cmd = new Command("bt-layout", "Show the partitioned BT layout: each partition and its shard.") { coordinator, count, json };
        cmd.SetAction((ParseResult r) =>
        {
            var rows = BtCluster.Describe(Coordinator(r, coordinator), r.GetValue(count));
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json))
            {
                var arr = new JsonArray();
                foreach (var (p, shard, stores, entries) in rows)
                {
                    var item = new JsonObject { ["partition"] = p, ["shard"] = shard };
                    if (stores >= 0) { item["stores"] = stores; item["entries"] = entries; }
                    arr.Add(item);
                }
                o.WriteLine(new JsonObject { ["partitions"] = arr }.ToJsonString());
            }
            else
            {
                foreach (var (p, shard, stores, entries) in rows)
                    o.WriteLine(stores >= 0 ? $"{p}\t{shard}\t{stores} stores\t{entries} entries" : $"{p}\t{shard}");
            }
            return 0;
        });
        return cmd;
    }
}
