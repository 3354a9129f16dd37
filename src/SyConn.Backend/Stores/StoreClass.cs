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

    /// <summary>Opens a pickle-backed store of the given class (not the npz or HDF5 ones).</summary>
    /// <exception cref="ArgumentException">The class is not pickle-backed.</exception>
    public static StorageBase OpenPickleStore(string path, StoreClass cls, StoreOptions? options = null, bool loadColArr = false) => cls switch
    {
        StoreClass.AttributeDict => new AttributeDict(path, options),
        StoreClass.CompressedStorage => new CompressedStorage(path, options),
        StoreClass.MeshStorage => new MeshStorage(path, options, loadColArr),
        StoreClass.SkeletonStorage => new SkeletonStorage(path, options),
        StoreClass.VoxelStorageL => new VoxelStorageL(path, options),
        StoreClass.VoxelStorageClass => new VoxelStorageClass(path, options),
        StoreClass.VoxelStorageDyn => new VoxelStorageDyn(path, options),
        _ => throw new ArgumentException($"{cls} is not a pickle-backed store"),
    };

    /// <summary>
    /// What the store's getter returns for <paramref name="key"/>, as a Python value (arrays, lists, dicts,
    /// tuples), the form the fixtures' MANIFEST lists under <c>getter</c>. Never inserts a missing key.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    public static object GetAsPython(StorageBase store, StoreKey key)
    {
        switch (store)
        {
            case AttributeDict ad:
                return ad.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"key {key} is not in {store.Location}");
            case CompressedStorage cs: return cs[key];
            case MeshStorage ms: return new PyList(ms[key]);
            case SkeletonStorage ss: return ss[key].ToPython();
            case VoxelStorageL vl:
            {
                var m = vl[key];
                return new PyTuple(new PyList(m.Masks), m.Offsets);
            }
            default: throw new ArgumentException($"{store.GetType().Name} has no getter");
        }
    }
}
