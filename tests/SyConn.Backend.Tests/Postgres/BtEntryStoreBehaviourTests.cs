using System.Text.RegularExpressions;
using SyConn.Backend.Postgres;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.EntryStores;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// The behaviour suite over BT stores (<see cref="PostgresEntryStore"/>) in the database <see cref="Database"/> names:
/// a single server, or the coordinator of a partitioned layout (whose foreign tables the hooks' SQL goes through).
/// </summary>
public abstract partial class BtBehaviourSuite : PickleTreeBehaviourSuite
{
    private readonly string _prefix = BtTestDatabase.NewPrefix();

    /// <summary>The BT database: a connection string.</summary>
    protected abstract string Database { get; }

    /// <inheritdoc/>
    protected override IEntryStore Create(string name) =>
        BtBackend.Open(_prefix + name, EntryStoreKind.Pickle, new StoreOptions { ConnectionString = Database });

    /// <summary>Stores the bytes as the entry of key 1, as damage inside the database would look.</summary>
    protected override void WriteGarbage(string name, byte[] bytes)
    {
        using (var es = Create(name)) es.EnsureWritable();
        BtTestDatabase.ScalarOn(Database, "INSERT INTO syconn.entries (identifier, key, seq, pkey, entry) VALUES ($1, $2, 0, $3, $4)",
            _prefix + name, BtKey.Encode(1L), Formats.Pickle.Pickle.Dump(1L), bytes);
    }

    /// <summary>The entries in the store's order, followed by the generation when the store has a generation row.</summary>
    protected override byte[]? ReadStoredBytes(string name)
    {
        using (var es = Create(name)) es.EnsureWritable();
        var entries = BtTestDatabase.RowsOn(Database, "SELECT entry FROM syconn.entries WHERE identifier = $1 ORDER BY seq, key", _prefix + name);
        var generation = BtTestDatabase.ScalarOn(Database, "SELECT generation FROM syconn.stores WHERE identifier = $1", _prefix + name);
        if (entries.Count == 0 && generation is null) return null;
        var bytes = entries.SelectMany(r => (byte[])r[0]!).ToList();
        if (generation is long g) bytes.AddRange(BitConverter.GetBytes(g));
        return bytes.ToArray();
    }

    /// <inheritdoc/>
    protected override void AssertKeptAside(string name, byte[] garbage, string warning)
    {
        var m = AsideAddress().Match(warning);
        Assert.True(m.Success, $"the warning names no bt: address: {warning}");
        string aside = m.Value["bt:".Length..];
        Assert.StartsWith(_prefix + name + ".corrupt-", aside, StringComparison.Ordinal);
        var rows = BtTestDatabase.RowsOn(Database, "SELECT entry FROM syconn.entries WHERE identifier = $1", aside);
        Assert.Equal(garbage, (byte[])Assert.Single(rows)[0]!);
    }

    /// <inheritdoc/>
    protected override void AssertNothingStored()
    {
        using (var es = Create("any")) es.EnsureWritable();
        foreach (var table in new[] { "entries", "side_entries", "stores" })
            Assert.Equal(0L, BtTestDatabase.ScalarOn(Database, $"SELECT count(*) FROM syconn.{table} WHERE starts_with(identifier, $1)", _prefix));
    }

    [GeneratedRegex(@"bt:\S+\.corrupt-[0-9TZ.]+")]
    private static partial Regex AsideAddress();
}

/// <summary>The behaviour suite on one PostgreSQL server.</summary>
public sealed class BtEntryStoreBehaviourTests : BtBehaviourSuite
{
    /// <inheritdoc/>
    protected override string Database => BtTestDatabase.ConnectionString;
}

/// <summary>The behaviour suite on the partitioned layout: a coordinator and two shards, 16 partitions.</summary>
public sealed class BtPartitionedBehaviourTests : BtBehaviourSuite
{
    /// <inheritdoc/>
    protected override string Database => BtTestDatabase.PartitionedConnectionString;
}
