using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using static SyConn.Backend.Stores.EntryParsing;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>VoxelStorageDyn</c>: per object ID its bounding boxes (an (N, 2, 3) int array of
/// <c>[lower xyz, upper xyz)</c>, stored like <see cref="CompressedStorage"/>), plus helper keys in the
/// same pickle: <c>meta</c> (<c>voxeldata_path</c>), <c>size</c> (voxel counts), <c>rep_coord</c> and
/// <c>voxel_cache</c>; and a companion <c>.npz</c> voxel cache (<see cref="VoxelCache"/>).
/// </summary>
/// <remarks>
/// <para>As upstream: <see cref="Keys"/> lists object keys only (non-str keys and all-digit str keys) while
/// <see cref="StorageBase.Count"/> counts the helper keys too; the getter and <see cref="GetBoundingData"/>
/// return the voxel-cache array for a key that has one.</para>
/// <para><see cref="StorageBase.Push"/> writes the <c>.npz</c> first (when it changed), then the <c>.pkl</c>,
/// each atomically. Not thread-safe; process-safe with locking on.</para>
/// </remarks>
public partial class VoxelStorageDyn : CompressedStorage
{
    /// <summary>The helper keys upstream keeps next to the object entries.</summary>
    public static readonly IReadOnlyList<string> HelperKeys = ["meta", "size", "rep_coord", "voxel_cache"];

    private readonly string? _voxeldataPathArg;

    /// <summary>
    /// Opens (pulls) the store at <paramref name="path"/> (<c>.pkl</c> is appended if missing), as
    /// <see cref="Open(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)"/>.
    /// </summary>
    /// <param name="path">The store path.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; when given and different from the stored
    /// <c>meta['voxeldata_path']</c>, it replaces it (as upstream, with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset now so that object masks can be read
    /// (<see cref="GetVoxelMaskOffset"/>); needs a dataset path, given or stored.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <exception cref="InvalidOperationException">Voxel mode without a dataset path.</exception>
    /// <exception cref="FileNotFoundException">Voxel mode and the dataset's configuration cannot be found.</exception>
    public VoxelStorageDyn(string path, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null)
        : this(EntryStores.Open(PklPath(path), EntryStoreKind.Pickle, options), options, voxeldataPath, voxelMode, datasetOptions)
    {
    }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/>; the voxel cache is its side store <see cref="IEntryStore.VoxelCacheSideStore"/>.</summary>
    /// <param name="entryStore">Where the entries live.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; replaces a different stored one (with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset so that object masks can be read.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <inheritdoc cref="VoxelStorageDyn(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)" path="/exception"/>
    public VoxelStorageDyn(IEntryStore entryStore, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null)
        : this(entryStore, options, voxeldataPath)
    {
        OpenNow();
        if (voxelMode) OpenDataset(datasetOptions);
    }

    /// <summary>Creates the store without pulling it (the factories pull it once it is complete).</summary>
    protected VoxelStorageDyn(IEntryStore entryStore, StoreOptions? options, string? voxeldataPath)
        : base(entryStore, options, deferred: true)
    {
        _voxeldataPathArg = voxeldataPath;
        // The voxel cache lives and moves with the store, under its lock; the store decides when it is pushed.
        var cacheOptions = Options with { DisableLocking = true, Optimistic = false, AllowReadOnlyPush = true, CacheDecomp = false };
        VoxelCache = VoxelStorageLazyLoading.Unopened(entryStore.OpenSideStore(IEntryStore.VoxelCacheSideStore), cacheOptions);
        VoxelCache.WarnOnUnpushedDispose = false;
    }

    /// <summary>Opens the store at <paramref name="path"/> (<c>.pkl</c> is appended if missing) and pulls it.</summary>
    /// <param name="path">The store path.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; replaces a different stored one (with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset so that object masks can be read.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <inheritdoc cref="VoxelStorageDyn(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)" path="/exception"/>
    public static VoxelStorageDyn Open(string path, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null) =>
        new(path, StoreOptions.ForFactory(options), voxeldataPath, voxelMode, datasetOptions);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <param name="entryStore">Where the entries live.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; replaces a different stored one (with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset so that object masks can be read.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <inheritdoc cref="VoxelStorageDyn(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)" path="/exception"/>
    public static VoxelStorageDyn Open(IEntryStore entryStore, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null) =>
        new(entryStore, StoreOptions.ForFactory(options), voxeldataPath, voxelMode, datasetOptions);

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <param name="path">The store path.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; replaces a different stored one (with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset so that object masks can be read.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <param name="ct">Cancels the wait for the lock.</param>
    /// <inheritdoc cref="VoxelStorageDyn(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)" path="/exception"/>
    public static Task<VoxelStorageDyn> OpenAsync(string path, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(PklPath(path), EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), voxeldataPath, voxelMode, datasetOptions, ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <param name="entryStore">Where the entries live.</param>
    /// <param name="options">Store options.</param>
    /// <param name="voxeldataPath">The segmentation dataset of the objects; replaces a different stored one (with a warning).</param>
    /// <param name="voxelMode">Open the segmentation dataset so that object masks can be read.</param>
    /// <param name="datasetOptions">Cube cache and parallelism of the dataset reader (voxel mode).</param>
    /// <param name="ct">Cancels the wait for the lock.</param>
    /// <inheritdoc cref="VoxelStorageDyn(string, StoreOptions?, string?, bool, KnossosDatasetOptions?)" path="/exception"/>
    public static async Task<VoxelStorageDyn> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, string? voxeldataPath = null, bool voxelMode = false, KnossosDatasetOptions? datasetOptions = null, CancellationToken ct = default)
    {
        var store = await OpenedAsync(new VoxelStorageDyn(entryStore, StoreOptions.ForFactory(options), voxeldataPath), ct).ConfigureAwait(false);
        if (voxelMode) store.OpenDataset(datasetOptions);
        return store;
    }

    private void OpenDataset(KnossosDatasetOptions? datasetOptions)
    {
        try
        {
            Dataset = KnossosDataset.Open(ResolveVoxeldataPath(), datasetOptions);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The pickle path for a store path (upstream appends <c>.pkl</c> when missing).</summary>
    public static string PklPath(string path) =>
        path.EndsWith(".pkl", StringComparison.Ordinal) || EntryStores.IsBackendAddress(path) ? path : path + ".pkl";

    /// <summary>Where the voxel cache lives: the companion <c>.npz</c> path on files.</summary>
    public string NpzPath => VoxelCache.Location;

    /// <summary>The voxel cache (on files the companion <c>.npz</c>), pushed with the store.</summary>
    public VoxelStorageLazyLoading VoxelCache { get; }

    /// <summary>The voxel cache is read with the entries, under the same lock.</summary>
    protected override void LoadSideData() => VoxelCache.Pull();

    /// <inheritdoc/>
    protected override void OnEntriesReplaced()
    {
        base.OnEntriesReplaced();
        // The helper keys upstream's constructor adds: pushed with the store, but not an edit of the caller's.
        if (!ContainsKey("meta")) SetEntry("meta", new PyDict { ["voxeldata_path"] = (object?)_voxeldataPathArg ?? PyNone.Value }, handedOut: true, edit: false);
        if (!ContainsKey("size")) SetEntry("size", new PyDefaultDict("int"), handedOut: true, edit: false);
        if (!ContainsKey("rep_coord")) SetEntry("rep_coord", new PyDict(), handedOut: true, edit: false);
        if (!ContainsKey("voxel_cache")) SetEntry("voxel_cache", new PyDict(), handedOut: true, edit: false);
        if (_voxeldataPathArg is not null && !Equals(Meta.TryGetValue("voxeldata_path", out var old) ? old : null, _voxeldataPathArg))
        {
            if (old is string s)
                Options.Logger?.LogWarning("{Location}: voxeldata_path '{Old}' replaced by '{New}'", Location, s, _voxeldataPathArg);
            Meta["voxeldata_path"] = _voxeldataPathArg;
        }
    }

    private PyDict Helper(string name) =>
        TryGetEntryForEdit(name, out var raw) ? Dict(raw, Location, $"'{name}'") : throw new InvalidDataException($"{Location}: the helper key '{name}' is missing");

    /// <summary>The <c>meta</c> dict (the store's own: editing it edits the store).</summary>
    public PyDict Meta => Helper("meta");

    /// <summary>The stored <c>meta['voxeldata_path']</c> (null if None).</summary>
    public string? VoxeldataPath => Meta.TryGetValue("voxeldata_path", out var v) ? v as string : null;

    private PyDict SizeDict => Helper("size");

    private PyDict RepCoordDict => Helper("rep_coord");

    /// <summary>Object keys only: non-str keys and str keys made only of digits (upstream's <c>keys()</c>).</summary>
    public override IEnumerable<StoreKey> Keys => base.Keys.Where(IsListedKey);

    /// <inheritdoc/>
    protected override bool IsListedKey(StoreKey key) => key.PythonValue is not string s || (s.Length > 0 && s.All(char.IsAsciiDigit));

    /// <summary>The bounding boxes of <paramref name="key"/>, or its voxel-cache array when it has one (upstream quirk).</summary>
    protected override bool TryDecode(StoreKey key, [MaybeNullWhen(false)] out NdArray value)
    {
        if ((key.IsInteger || key.IsString) && VoxelCache.TryGetValue(key, out value)) return true;
        return base.TryDecode(key, out value);
    }

    /// <summary>upstream's <c>get_boundingdata</c>: the same as the getter.</summary>
    public NdArray GetBoundingData(StoreKey key) => this[key];

    /// <summary>upstream's <c>object_size</c>: the voxel count of an object (0 if none was recorded).</summary>
    /// <exception cref="KeyNotFoundException">The object is not stored.</exception>
    public long ObjectSize(StoreKey key)
    {
        if (!ContainsKey(key)) throw MissingKey(key);
        if (!SizeDict.TryGetValue(key.PythonValue, out var v)) return 0;
        return PyInt.TryGetInt64(v, out var n) ? n : throw Bad(Where(this, key), $"size is {PyRepr.Repr(v)}, expected an int");
    }

    /// <summary>upstream's <c>increase_object_size</c>: adds <paramref name="amount"/> to the object's voxel count.</summary>
    public void IncreaseObjectSize(StoreKey key, long amount)
    {
        var d = SizeDict;
        long old = d.TryGetValue(key.PythonValue, out var v) && PyInt.TryGetInt64(v, out var n) ? n : 0;
        d[key.PythonValue] = checked(old + amount);
    }

    /// <summary>upstream's <c>object_repcoord</c>: the stored representative coordinate (any value; usually an int array (3,)).</summary>
    /// <exception cref="KeyNotFoundException">None is stored for the key.</exception>
    public object ObjectRepCoord(StoreKey key) =>
        RepCoordDict.TryGetValue(key.PythonValue, out var v) ? v : throw new KeyNotFoundException($"no rep_coord for key {key} in {Location}");

    /// <summary>upstream's <c>set_object_repcoord</c>.</summary>
    public void SetObjectRepCoord(StoreKey key, object coord) => RepCoordDict[key.PythonValue] = coord ?? throw new ArgumentNullException(nameof(coord));

    /// <summary>upstream's <c>set_voxel_cache</c>: keeps an array for the key in the <c>.npz</c> cache.</summary>
    public void SetVoxelCache(StoreKey key, NdArray voxels) => VoxelCache[key] = voxels;

    /// <summary>upstream's <c>get_voxel_cache</c>.</summary>
    /// <exception cref="KeyNotFoundException">No cached array for the key.</exception>
    public NdArray GetVoxelCache(StoreKey key) =>
        VoxelCache.TryGetValue(key, out var v) ? v : throw new KeyNotFoundException($"no voxel cache entry for key {key} in {NpzPath}");

    /// <summary>Writes the voxel cache first (when it changed), then the pickle.</summary>
    protected override void WriteEntries()
    {
        if (VoxelCache.IsDirty) VoxelCache.Push();
        base.WriteEntries();
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            VoxelCache.Dispose();
            Dataset?.Dispose();
        }
        base.Dispose(disposing);
    }
}
