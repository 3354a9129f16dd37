using Npgsql;

namespace SyConn.Backend.Postgres;

/// <summary>
/// The tables of the BT backend, in the schema <c>syconn</c>, created on first use and versioned.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>schema_version(version)</c>: one row; a database with a newer version than <see cref="Version"/> is refused.</item>
/// <item><c>stores(identifier, class, kind, generation, created, updated, pushes)</c>: one row per store that was ever
/// pushed; <c>generation</c> counts its pushes (optimistic writers check it); <c>pushes</c> holds a random token of each
/// of the store's last <see cref="PushTokens"/> pushes, newest first, by which a writer whose connection broke before the
/// answer came back tells whether its push committed (single-server layout only, since version 2: a partitioned layout's
/// pushes are told by their transaction id, as a single server's pushes of many rows also are).</item>
/// <item><c>entries(identifier, key, seq, pkey, entry)</c>: one row per key; the primary key leads with the identifier.
/// <c>key</c> is the canonical key (<see cref="BtKey"/>), <c>pkey</c> the key as pickled (numpy scalars and all),
/// <c>seq</c> the key's place in the store's order (Python dict order), <c>entry</c> the pickled per-key tree, the
/// same tree a SyConn <c>.pkl</c> keeps under that key. Stored out of line without compression (the entries are
/// mostly LZ4 data already).</item>
/// <item><c>side_entries(identifier, side, key, seq, pkey, entry)</c>: named side data of a store, such as
/// VoxelStorageDyn's voxel cache (<c>side = 'voxel_cache'</c>), one row per key.</item>
/// </list>
/// </remarks>
internal static class BtSchema
{
    /// <summary>The schema version this code reads and writes.</summary>
    public const int Version = 2;

    /// <summary>How many push tokens <c>stores.pushes</c> keeps.</summary>
    public const int PushTokens = 64;

    /// <summary>The column version 2 added to a single server's <c>stores</c> table.</summary>
    private const string PushesColumn = "pushes bigint[] NOT NULL DEFAULT '{}'";

    /// <summary>The advisory lock that serialises schema creation among concurrent first users.</summary>
    private const long CreationLock = 0x5359_436F_6E6E_0001; // "SYConn" + 1

    private static readonly string CreateSql = $"""
        CREATE SCHEMA IF NOT EXISTS syconn;
        {VersionTableSql}
        CREATE TABLE IF NOT EXISTS syconn.stores (
            identifier text PRIMARY KEY,
            class text,
            kind text NOT NULL,
            generation bigint NOT NULL DEFAULT 0,
            created timestamptz NOT NULL DEFAULT now(),
            updated timestamptz NOT NULL DEFAULT now(),
            {PushesColumn});
        CREATE TABLE IF NOT EXISTS syconn.entries (
            identifier text NOT NULL,
            key bytea NOT NULL,
            seq bigint NOT NULL,
            pkey bytea NOT NULL,
            entry bytea NOT NULL,
            PRIMARY KEY (identifier, key));
        ALTER TABLE syconn.entries ALTER COLUMN entry SET STORAGE EXTERNAL;
        CREATE TABLE IF NOT EXISTS syconn.side_entries (
            identifier text NOT NULL,
            side text NOT NULL,
            key bytea NOT NULL,
            seq bigint NOT NULL,
            pkey bytea NOT NULL,
            entry bytea NOT NULL,
            PRIMARY KEY (identifier, side, key));
        ALTER TABLE syconn.side_entries ALTER COLUMN entry SET STORAGE EXTERNAL;
        """;

    /// <summary>The version table (one row: the schema version and the database's layout).</summary>
    internal const string VersionTableSql = """
        CREATE TABLE IF NOT EXISTS syconn.schema_version (
            one boolean PRIMARY KEY DEFAULT true CHECK (one),
            version integer NOT NULL,
            layout text NOT NULL DEFAULT 'single' CHECK (layout IN ('single', 'coordinator', 'shard')),
            updated timestamptz NOT NULL DEFAULT now());
        """;

    /// <summary>The entry tables' columns, shared by a single server's tables and every partition's.</summary>
    internal static string EntryColumns(bool side) => side
        ? "identifier text NOT NULL, side text NOT NULL, key bytea NOT NULL, seq bigint NOT NULL, pkey bytea NOT NULL, entry bytea NOT NULL"
        : "identifier text NOT NULL, key bytea NOT NULL, seq bigint NOT NULL, pkey bytea NOT NULL, entry bytea NOT NULL";

    /// <summary>The store table's columns.</summary>
    internal const string StoreColumns =
        "identifier text NOT NULL, class text, kind text NOT NULL, generation bigint NOT NULL DEFAULT 0, " +
        "created timestamptz NOT NULL DEFAULT now(), updated timestamptz NOT NULL DEFAULT now()";

    /// <summary>Checks the schema version, creating the schema if there is none, and returns the database's layout
    /// (<c>single</c>, <c>coordinator</c> of a partitioned layout, or one of its <c>shard</c>s).</summary>
    /// <exception cref="NotSupportedException">The database has a newer schema than this code knows.</exception>
    /// <exception cref="InvalidDataException">The version table is damaged.</exception>
    public static string Ensure(NpgsqlConnection c, string database)
    {
        int? found = ReadVersion(c);
        if (found is null)
        {
            using var tx = c.BeginTransaction();
            using (var cmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", c, tx) { Parameters = { new() { Value = CreationLock } } })
                cmd.ExecuteNonQuery();
            using (var cmd = new NpgsqlCommand(CreateSql, c, tx))
                cmd.ExecuteNonQuery();
            using (var cmd = new NpgsqlCommand("INSERT INTO syconn.schema_version (version) VALUES ($1) ON CONFLICT (one) DO NOTHING", c, tx) { Parameters = { new() { Value = Version } } })
                cmd.ExecuteNonQuery();
            tx.Commit();
            found = ReadVersion(c) ?? throw new InvalidDataException($"the BT database {database} has an empty syconn.schema_version table");
        }
        if (found > Version)
            throw new NotSupportedException($"the BT database {database} has schema version {found}, newer than this library knows ({Version}); use a newer SyConn.Backend.Postgres");
        if (found < 1)
            throw new InvalidDataException($"the BT database {database} has schema version {found}, which no release wrote");
        using var layout = new NpgsqlCommand("SELECT layout FROM syconn.schema_version", c);
        string kind = layout.ExecuteScalar() as string ?? "single";
        if (found < 2 && kind == "single") Upgrade(c);
        return kind;
    }

    /// <summary>Version 1 to 2 on a single server: adds <c>stores.pushes</c> (no rewrite of the table: the default is a constant).</summary>
    private static void Upgrade(NpgsqlConnection c)
    {
        using var tx = c.BeginTransaction();
        using (var cmd = new NpgsqlCommand("SELECT pg_advisory_xact_lock($1)", c, tx) { Parameters = { new() { Value = CreationLock } } })
            cmd.ExecuteNonQuery();
        using (var cmd = new NpgsqlCommand($"""
            ALTER TABLE syconn.stores ADD COLUMN IF NOT EXISTS {PushesColumn};
            UPDATE syconn.schema_version SET version = {Version}, updated = now() WHERE version < {Version};
            """, c, tx))
            cmd.ExecuteNonQuery();
        tx.Commit();
    }

    private static int? ReadVersion(NpgsqlConnection c)
    {
        using var cmd = new NpgsqlCommand("SELECT to_regclass('syconn.schema_version') IS NOT NULL", c);
        if (cmd.ExecuteScalar() is not true) return null;
        using var read = new NpgsqlCommand("SELECT max(version) FROM syconn.schema_version", c);
        return read.ExecuteScalar() is int v ? v : null;
    }
}
