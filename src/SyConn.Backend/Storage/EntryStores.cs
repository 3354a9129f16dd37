using System.Collections.Concurrent;
using System.IO.Compression;

namespace SyConn.Backend.Storage;

/// <summary>Opens a backend's entry store for a store address (without reading or connecting yet, where it can).</summary>
/// <param name="identifier">The address without its scheme (what follows <c>bt:</c>).</param>
/// <param name="kind">What the store holds per key.</param>
/// <param name="options">The store's options (a database backend takes <see cref="StoreOptions.ConnectionString"/> from them).</param>
public delegate IEntryStore EntryStoreProvider(string identifier, EntryStoreKind kind, StoreOptions options);

/// <summary>
/// Maps a store address to the entry store that holds it: a path is a file (a pickle, or an <c>.npz</c> for
/// <see cref="EntryStoreKind.Npz"/>), and <c>SCHEME:IDENTIFIER</c> (such as <c>bt:cells</c>) goes to the backend
/// registered for that scheme (<see cref="Register"/>). Other text before a colon is part of a path.
/// </summary>
/// <remarks>Thread-safe.</remarks>
public static class EntryStores
{
    private static readonly ConcurrentDictionary<string, EntryStoreProvider> Providers = new(StringComparer.Ordinal);

    /// <summary>The entry store of a SyConn <c>.pkl</c> store file.</summary>
    public static IEntryStore Pickle(string path) => new PickleFileEntryStore(path);

    /// <summary>The entry store of an <c>.npz</c> archive.</summary>
    public static IEntryStore Npz(string path, CompressionLevel compressionLevel = CompressionLevel.Optimal) => new NpzEntryStore(path, compressionLevel);

    /// <summary>
    /// Registers the backend of addresses <c><paramref name="scheme"/>:IDENTIFIER</c> (a database backend registers
    /// <c>bt</c>); a later registration of the same scheme replaces the earlier one.
    /// </summary>
    /// <exception cref="ArgumentException">The scheme is not at least two lower-case letters (one letter would be a drive).</exception>
    public static void Register(string scheme, EntryStoreProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        if (!IsScheme(scheme)) throw new ArgumentException($"'{scheme}' is not a scheme: use two or more lower-case ASCII letters", nameof(scheme));
        Providers[scheme] = provider;
    }

    /// <summary>The scheme of SyConn's BT backend (<c>bt:IDENTIFIER</c>), recognised even before a backend registers it.</summary>
    public const string BtScheme = "bt";

    /// <summary>True if <paramref name="address"/> is <c>SCHEME:IDENTIFIER</c> of <c>bt</c> or a registered scheme rather than a path.</summary>
    public static bool IsBackendAddress(string address) => SchemeOf(address) is not null;

    /// <summary>Opens the entry store for <paramref name="address"/> (nothing is read yet).</summary>
    /// <param name="address">A path, or <c>SCHEME:IDENTIFIER</c>.</param>
    /// <param name="kind">What the store holds per key: it picks the file form of a path.</param>
    /// <param name="options">The store's options, for backends that need them to connect (null: defaults).</param>
    /// <param name="npzCompressionLevel">Deflate level of an <c>.npz</c> file's writes.</param>
    /// <exception cref="ArgumentException">An empty address, or a scheme no backend is registered for.</exception>
    public static IEntryStore Open(string address, EntryStoreKind kind, StoreOptions? options = null, CompressionLevel npzCompressionLevel = CompressionLevel.Optimal)
    {
        ArgumentException.ThrowIfNullOrEmpty(address);
        if (SchemeOf(address) is { } scheme)
        {
            string identifier = address[(scheme.Length + 1)..];
            if (identifier.Length == 0) throw new ArgumentException($"'{address}' names no store: write {scheme}:IDENTIFIER", nameof(address));
            if (!Providers.TryGetValue(scheme, out var provider) && !(scheme == BtScheme && TryLoadBtBackend() && Providers.TryGetValue(scheme, out provider)))
                throw new ArgumentException($"no backend is registered for '{scheme}:' addresses ('{address}'); a backend registers itself with EntryStores.Register (for 'bt:', reference the {BtAssembly} package)", nameof(address));
            return provider(identifier, kind, options ?? StoreOptions.Default);
        }
        return kind == EntryStoreKind.Npz ? new NpzEntryStore(address, npzCompressionLevel) : new PickleFileEntryStore(address);
    }

    /// <summary>The assembly of the BT backend, which registers <c>bt:</c> when it is loaded.</summary>
    private const string BtAssembly = "SyConn.Backend.Postgres";

    /// <summary>
    /// Loads the BT backend's assembly if the application ships it, which runs its module initializer (it registers
    /// the <c>bt</c> scheme). Only this fixed assembly name is ever loaded.
    /// </summary>
    private static bool TryLoadBtBackend()
    {
        try
        {
            var asm = System.Reflection.Assembly.Load(new System.Reflection.AssemblyName(BtAssembly));
            System.Runtime.CompilerServices.RuntimeHelpers.RunModuleConstructor(asm.ManifestModule.ModuleHandle);
            return true;
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            return false;
        }
    }

    private static string? SchemeOf(string address)
    {
        int colon = address.IndexOf(':', StringComparison.Ordinal);
        if (colon < 2) return null;
        var scheme = address[..colon];
        return scheme == BtScheme || (IsScheme(scheme) && Providers.ContainsKey(scheme)) ? scheme : null;
    }

    private static bool IsScheme(string s) => s is { Length: >= 2 } && s.All(char.IsAsciiLetterLower);
}
