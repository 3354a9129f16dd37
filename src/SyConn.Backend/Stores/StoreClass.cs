using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>The store classes, named as SyConn names them.</summary>
public enum StoreClass
{
    /// <summary><see cref="Stores.AttributeDict"/></summary>
    AttributeDict,
    /// <summary><see cref="Stores.CompressedStorage"/></summary>
    CompressedStorage,
    /// <summary><see cref="Stores.MeshStorage"/></summary>
    MeshStorage,
    /// <summary><see cref="Stores.SkeletonStorage"/></summary>
    SkeletonStorage,
    /// <summary><see cref="Stores.VoxelStorageL"/></summary>
    VoxelStorageL,
    /// <summary><see cref="Stores.VoxelStorageClass"/></summary>
    VoxelStorageClass,
    /// <summary><see cref="Stores.VoxelStorageDyn"/></summary>
    VoxelStorageDyn,
    /// <summary><see cref="Stores.VoxelStorageLazyLoading"/></summary>
    VoxelStorageLazyLoading,
    /// <summary>BinarySearchStore (HDF5)</summary>
    BinarySearchStore,
}

/// <summary>Opening stores by class name, and guessing the class from a file name as SyConn names its files.</summary>
public static class StoreFactory
{
    /// <summary>Parses a class name (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Not a store class.</exception>
    public static StoreClass ParseClass(string name) =>
        Enum.TryParse<StoreClass>(name, ignoreCase: true, out var c) && Enum.IsDefined(c)
            ? c
            : throw new ArgumentException($"unknown store class '{name}'; use one of {string.Join(", ", Enum.GetNames<StoreClass>())}");

    /// <summary>
    /// The class SyConn's file naming implies: <c>attr_dict*.pkl</c> AttributeDict, <c>mesh*.pkl</c> MeshStorage,
    /// <c>skeleton*.pkl</c> SkeletonStorage, <c>voxel*.pkl</c> VoxelStorageDyn, <c>*.npz</c>
    /// VoxelStorageLazyLoading, <c>*.h5</c> BinarySearchStore; null otherwise.
    /// </summary>
    public static StoreClass? GuessFromFileName(string path)
    {
        var name = Path.GetFileName(path).ToLowerInvariant();
        if (name.EndsWith(".npz", StringComparison.Ordinal)) return StoreClass.VoxelStorageLazyLoading;
        if (name.EndsWith(".h5", StringComparison.Ordinal) || name.EndsWith(".hdf5", StringComparison.Ordinal)) return StoreClass.BinarySearchStore;
        if (!name.EndsWith(".pkl", StringComparison.Ordinal)) return null;
        if (name.StartsWith("attr_dict", StringComparison.Ordinal)) return StoreClass.AttributeDict;
        if (name.StartsWith("mesh", StringComparison.Ordinal)) return StoreClass.MeshStorage;
        if (name.StartsWith("skeleton", StringComparison.Ordinal)) return StoreClass.SkeletonStorage;
        if (name.StartsWith("voxel", StringComparison.Ordinal)) return StoreClass.VoxelStorageDyn;
        return null;
    }

    /// <summary>
    /// Opens the store of class <paramref name="cls"/> at <paramref name="address"/> (a path, or <c>bt:IDENTIFIER</c>
    /// once a backend registered that scheme, see <see cref="EntryStores"/>) and pulls it: the one way the command
    /// line and other tools open a store by name. A VoxelStorageDyn path gets <c>.pkl</c> appended when missing,
    /// a VoxelStorageLazyLoading path <c>.npz</c>.
    /// </summary>
    /// <param name="cls">The store class (any but BinarySearchStore, which is no dict store: use <see cref="BinarySearchStore"/>).</param>
    /// <param name="address">Where the store lives.</param>
    /// <param name="options">Store options (null: read-only, unlocked, as upstream; a VoxelStorageLazyLoading opened from a path is writable).</param>
    /// <param name="parameters">Class-specific arguments (mesh colours, voxel mode, ...).</param>
    /// <exception cref="ArgumentException">BinarySearchStore, or an address no backend serves.</exception>
    /// <exception cref="InvalidDataException">The stored data is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    /// <exception cref="FileNotFoundException">A read-only store does not exist (unless <see cref="StoreOptions.MustExist"/> is false).</exception>
    public static StorageBase Open(StoreClass cls, string address, StoreOptions? options = null, StoreParameters? parameters = null)
    {
        if (options is not null || cls != StoreClass.VoxelStorageLazyLoading) options = StoreOptions.ForFactory(options); // null: an npz opens writable
        ArgumentException.ThrowIfNullOrEmpty(address);
        var p = parameters ?? StoreParameters.Default;
        var entries = EntryStoreFor(cls, address, options, p);
        return cls switch
        {
            StoreClass.AttributeDict => new AttributeDict(entries, options),
            StoreClass.CompressedStorage => new CompressedStorage(entries, options),
            StoreClass.MeshStorage => new MeshStorage(entries, options, p.LoadColArr, p.Compress),
            StoreClass.SkeletonStorage => new SkeletonStorage(entries, options),
            StoreClass.VoxelStorageL => new VoxelStorageL(entries, options),
            StoreClass.VoxelStorageClass => new VoxelStorageClass(entries, options),
            StoreClass.VoxelStorageDyn => new VoxelStorageDyn(entries, options, p.VoxeldataPath, p.VoxelMode, p.DatasetOptions),
            StoreClass.VoxelStorageLazyLoading => new VoxelStorageLazyLoading(entries, options),
            _ => throw NotADictStore(cls, address, entries),
        };
    }

    /// <summary><see cref="Open(StoreClass, string, StoreOptions?, StoreParameters?)"/> that waits for the store's lock without blocking the caller's thread.</summary>
    /// <param name="cls">The store class (any but BinarySearchStore).</param>
    /// <param name="address">Where the store lives.</param>
    /// <param name="options">Store options.</param>
    /// <param name="parameters">Class-specific arguments.</param>
    /// <param name="ct">Cancels the wait for the lock.</param>
    /// <inheritdoc cref="Open(StoreClass, string, StoreOptions?, StoreParameters?)" path="/exception"/>
    public static async Task<StorageBase> OpenAsync(StoreClass cls, string address, StoreOptions? options = null, StoreParameters? parameters = null, CancellationToken ct = default)
    {
        if (options is not null || cls != StoreClass.VoxelStorageLazyLoading) options = StoreOptions.ForFactory(options); // null: an npz opens writable
        ArgumentException.ThrowIfNullOrEmpty(address);
        var p = parameters ?? StoreParameters.Default;
        var entries = EntryStoreFor(cls, address, options, p);
        return cls switch
        {
            StoreClass.AttributeDict => await AttributeDict.OpenAsync(entries, options, ct).ConfigureAwait(false),
            StoreClass.CompressedStorage => await CompressedStorage.OpenAsync(entries, options, ct).ConfigureAwait(false),
            StoreClass.MeshStorage => await MeshStorage.OpenAsync(entries, options, p.LoadColArr, p.Compress, ct).ConfigureAwait(false),
            StoreClass.SkeletonStorage => await SkeletonStorage.OpenAsync(entries, options, ct).ConfigureAwait(false),
            StoreClass.VoxelStorageL => await VoxelStorageL.OpenAsync(entries, options, ct).ConfigureAwait(false),
            StoreClass.VoxelStorageClass => await VoxelStorageClass.OpenAsync(entries, options, ct).ConfigureAwait(false),
            StoreClass.VoxelStorageDyn => await VoxelStorageDyn.OpenAsync(entries, options, p.VoxeldataPath, p.VoxelMode, p.DatasetOptions, ct).ConfigureAwait(false),
            StoreClass.VoxelStorageLazyLoading => await VoxelStorageLazyLoading.OpenAsync(entries, options, ct).ConfigureAwait(false),
            _ => throw NotADictStore(cls, address, entries),
        };
    }

    private static IEntryStore EntryStoreFor(StoreClass cls, string address, StoreOptions? options, StoreParameters p)
    {
        if (cls == StoreClass.BinarySearchStore)
            throw new ArgumentException($"{address}: a BinarySearchStore is not a dict store; open it with new BinarySearchStore(path)");
        if (EntryStores.IsBackendAddress(address))
            return EntryStores.Open(address, cls == StoreClass.VoxelStorageLazyLoading ? EntryStoreKind.Npz : EntryStoreKind.Pickle, options, p.NpzCompressionLevel);
        return cls switch
        {
            StoreClass.VoxelStorageDyn => EntryStores.Pickle(VoxelStorageDyn.PklPath(address)),
            StoreClass.VoxelStorageLazyLoading => EntryStores.Npz(VoxelStorageLazyLoading.NpzPath(address), p.NpzCompressionLevel),
            _ => EntryStores.Pickle(address),
        };
    }

    private static ArgumentException NotADictStore(StoreClass cls, string address, IEntryStore entries)
    {
        entries.Dispose();
        return new ArgumentException($"{address}: {cls} is not a store class that opens over entries");
    }

    /// <summary>Opens a pickle-backed store of the given class from a path (<see cref="Open(StoreClass, string, StoreOptions?, StoreParameters?)"/> for the pickle classes).</summary>
    /// <exception cref="ArgumentException">The class is not pickle-backed.</exception>
    public static StorageBase OpenPickleStore(string path, StoreClass cls, StoreOptions? options = null, bool loadColArr = false) =>
        cls is StoreClass.VoxelStorageLazyLoading or StoreClass.BinarySearchStore
            ? throw new ArgumentException($"{cls} is not a pickle-backed store")
            : Open(cls, path, options, new StoreParameters { LoadColArr = loadColArr });

    /// <summary>
    /// What the store's getter returns for <paramref name="key"/>, as a Python value (arrays, lists, dicts,
    /// tuples), the form the fixtures' MANIFEST lists under <c>getter</c>. Never inserts a missing key.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    public static object GetAsPython(StorageBase store, StoreKey key)
    {
        ArgumentNullException.ThrowIfNull(store);
        return store.GetAsPython(key);
    }
}

/// <summary>Class-specific arguments of <see cref="StoreFactory.Open"/>, named as SyConn names them.</summary>
public sealed record StoreParameters
{
    /// <summary>No class-specific arguments.</summary>
    public static StoreParameters Default { get; } = new();

    /// <summary>MeshStorage <c>load_colarr</c>: the getter also returns the colour/label array.</summary>
    public bool LoadColArr { get; init; }

    /// <summary>MeshStorage <c>compress</c>: new entries are stored as LZ4 block lists.</summary>
    public bool Compress { get; init; }

    /// <summary>VoxelStorageDyn <c>voxeldata_path</c>: replaces the stored dataset path when given.</summary>
    public string? VoxeldataPath { get; init; }

    /// <summary>VoxelStorageDyn <c>voxel_mode</c>: open the segmentation dataset so that object masks can be read.</summary>
    public bool VoxelMode { get; init; }

    /// <summary>VoxelStorageDyn in voxel mode: cube cache and parallelism of the dataset reader.</summary>
    public Storage.Knossos.KnossosDatasetOptions? DatasetOptions { get; init; }

    /// <summary>VoxelStorageLazyLoading on files: the deflate level of push.</summary>
    public System.IO.Compression.CompressionLevel NpzCompressionLevel { get; init; } = System.IO.Compression.CompressionLevel.Optimal;
}
