using System.IO.Compression;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>VoxelStorageLazyLoading</c>: one numpy array per key, on files an <c>.npz</c> archive with one
/// member <c>str(key) + ".npy"</c> per key (<see cref="NpzEntryStore"/>), read lazily. Unlike upstream, an opened
/// file can be modified: changes stay in memory until <see cref="StorageBase.Push"/> rewrites the whole file
/// atomically (as <c>numpy.savez_compressed</c> writes it).
/// </summary>
/// <remarks>
/// Keys are ints (member names are decimal strings); a member whose name is not Python's spelling of an int is
/// exposed as a str key. <c>overwrite: true</c> starts empty but deletes nothing until push (upstream deletes the
/// file at once). Opened from a path, the store is writable and unlocked (as upstream); over an entry store it
/// takes the options given. Not thread-safe.
/// </remarks>
public sealed class VoxelStorageLazyLoading : Storage<NdArray>
{
    /// <summary>Opens the npz at <paramref name="path"/> (<c>.npz</c> is appended if missing); a missing file gives an empty store.</summary>
    /// <param name="path">The npz path.</param>
    /// <param name="overwrite">Start empty even if the file exists (it is replaced on push).</param>
    /// <param name="durable">Push fsyncs the file and folder (see <see cref="StoreOptions.Durable"/>).</param>
    /// <param name="compressionLevel">Deflate level of push: <see cref="CompressionLevel.Optimal"/> (the default) is the
    /// fastest level whose files stay within 5% of <c>numpy.savez_compressed</c>'s (libdeflate 3, else zlib-ng 4);
    /// <see cref="CompressionLevel.Fastest"/> is faster still, with files about 1.7x numpy's on voxel coordinates;
    /// numpy reads all of them.</param>
    /// <exception cref="InvalidDataException">The file is not a readable npz archive.</exception>
    public VoxelStorageLazyLoading(string path, bool overwrite = false, bool durable = true, CompressionLevel compressionLevel = CompressionLevel.Optimal)
        : this(EntryStores.Open(NpzPath(path), EntryStoreKind.Npz, PathOptions(durable), compressionLevel), PathOptions(durable), overwrite)
    {
        CompressionLevel = compressionLevel;
    }

    /// <summary>Opens the store over <paramref name="entryStore"/> (an <see cref="EntryStoreKind.Npz"/> store).</summary>
    /// <param name="entryStore">Where the arrays live.</param>
    /// <param name="options">Store options (null: writable, unlocked, as a path opens it).</param>
    /// <param name="overwrite">Start empty even if the store exists (it is replaced on push).</param>
    /// <exception cref="ArgumentException">The entry store does not hold arrays.</exception>
    public VoxelStorageLazyLoading(IEntryStore entryStore, StoreOptions? options = null, bool overwrite = false)
        : this(options ?? PathOptions(durable: true), entryStore)
    {
        if (!overwrite)
        {
            OpenNow();
            return;
        }
        try
        {
            Overwrite();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Creates the store without reading it (for the factories and for VoxelStorageDyn, whose pull pulls it).</summary>
    internal static VoxelStorageLazyLoading Unopened(IEntryStore entryStore, StoreOptions options) => new(options, entryStore);

    private VoxelStorageLazyLoading(StoreOptions? options, IEntryStore entryStore) : base(entryStore, options)
    {
        if (entryStore.Kind != EntryStoreKind.Npz)
            throw new ArgumentException($"{entryStore.Location} holds {entryStore.Kind} entries; a VoxelStorageLazyLoading needs an npz (array) store", nameof(entryStore));
    }

    private static StoreOptions PathOptions(bool durable) => new() { ReadOnly = false, DisableLocking = true, Durable = durable };

    /// <summary>The npz path for a store path (upstream appends <c>.npz</c> when missing); a backend address stays as it is.</summary>
    internal static string NpzPath(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return path.EndsWith(".npz", StringComparison.Ordinal) || EntryStores.IsBackendAddress(path) ? path : path + ".npz";
    }

    /// <summary>Opens the npz at <paramref name="path"/>; see the constructor.</summary>
    /// <exception cref="InvalidDataException">The file is not a readable npz archive.</exception>
    public static VoxelStorageLazyLoading Open(string path, bool overwrite = false, bool durable = true, CompressionLevel compressionLevel = CompressionLevel.Optimal) =>
        new(path, overwrite, durable, compressionLevel);

    /// <summary>Opens the store over <paramref name="entryStore"/>; see the constructor.</summary>
    /// <exception cref="InvalidDataException">The stored data is not readable.</exception>
    public static VoxelStorageLazyLoading Open(IEntryStore entryStore, StoreOptions? options = null, bool overwrite = false) =>
        new(entryStore, options, overwrite);

    /// <summary>Opens the store over <paramref name="entryStore"/>, waiting for its lock (if the options ask for one) without blocking.</summary>
    /// <exception cref="InvalidDataException">The stored data is not readable.</exception>
    public static Task<VoxelStorageLazyLoading> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(Unopened(entryStore, options ?? PathOptions(durable: true)), ct);

    /// <summary>Starts empty; the next push replaces what is stored (when something is).</summary>
    private void Overwrite()
    {
        EntryStore.Load(Options);
        ResetEmpty(replaceOnPush: EntryStore.Exists);
    }

    /// <summary>The npz path (the entry store's location).</summary>
    public string Path => Location;

    /// <summary>The deflate level of push, for a store opened from a path.</summary>
    public CompressionLevel CompressionLevel { get; } = CompressionLevel.Optimal;

    /// <summary>Whether push fsyncs.</summary>
    public bool Durable => Options.Durable;

    /// <summary>The member name of a key (<c>str(key)</c>).</summary>
    /// <exception cref="ArgumentException">The key is neither an int nor a str.</exception>
    public static string MemberName(StoreKey key) => NpzEntryStore.MemberName(key);

    /// <summary>A file at another path is written with this store's compression level.</summary>
    protected override IEntryStore OpenEntryStoreAt(string address) => EntryStores.Open(address, EntryStoreKind.Npz, Options, CompressionLevel);

    /// <summary>Closes the file (upstream's <c>close</c>). Unpushed changes are dropped.</summary>
    public void Close() => Dispose();

    /// <inheritdoc/>
    protected override NdArray Decode(StoreKey key, object raw) =>
        raw as NdArray ?? throw new InvalidDataException($"{Location}, key {key}: entry is a {EntryParsing.TypeName(raw)}, expected an ndarray");

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">An object array, or a key that cannot name a member.</exception>
    protected override object Encode(StoreKey key, NdArray value)
    {
        if (value.Objects is not null) throw new ArgumentException("object arrays cannot be stored in an npz (numpy reads them only with allow_pickle)");
        MemberName(key);
        return value;
    }
}
