using System.Runtime.CompilerServices;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Postgres;

/// <summary>
/// SyConn's BT backend on PostgreSQL: stores addressed as <c>bt:IDENTIFIER</c>. Loading this assembly registers the
/// <c>bt</c> scheme with <see cref="EntryStores"/>, so every typed store opens <c>bt:</c> addresses unchanged.
/// </summary>
public static class BtBackend
{
    /// <summary>The environment variable that names the database when <see cref="StoreOptions.ConnectionString"/> is null.</summary>
    public const string EnvironmentVariable = "SYCONN_BT";

    // Registering on load is the point: EntryStores loads this assembly by name when it first meets a bt: address.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void RegisterOnLoad() => Register();

    /// <summary>Registers the <c>bt</c> scheme (done when this assembly loads; calling it again is harmless).</summary>
    public static void Register() => EntryStores.Register(EntryStores.BtScheme, static (id, kind, options) => Open(id, kind, options));

    /// <summary>The entry store of BT store <paramref name="identifier"/> in the database the options name (nothing is read yet).</summary>
    /// <exception cref="InvalidOperationException">No database is named.</exception>
    /// <exception cref="ArgumentException">A malformed connection string or identifier.</exception>
    public static PostgresEntryStore Open(string identifier, EntryStoreKind kind, StoreOptions? options = null) =>
        new(BtDatabase.For(ResolveConnectionString(options)), identifier, kind);

    /// <summary>The connection string a store with <paramref name="options"/> uses: its own, else <c>SYCONN_BT</c>.</summary>
    /// <exception cref="InvalidOperationException">Neither is set.</exception>
    public static string ResolveConnectionString(StoreOptions? options) =>
        options?.ConnectionString is { Length: > 0 } cs ? cs
        : Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } env ? env
        : throw new InvalidOperationException($"bt: stores need a database: set {EnvironmentVariable} to an Npgsql connection string (or pass --bt CONNSTRING, or StoreOptions.ConnectionString)");
}
