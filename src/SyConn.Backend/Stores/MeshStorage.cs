using Microsoft.Extensions.Logging;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using static SyConn.Backend.Stores.EntryParsing;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>MeshStorage</c>: per key a list <c>[indices, vertices, normals, colours]</c> cast to uint32,
/// float32, float32 and uint8; each element an ndarray (<c>compress=false</c>, the default) or an LZ4 block
/// list (<c>compress=true</c>).
/// </summary>
/// <remarks>
/// Setting accepts 2 to 4 arrays (missing normals and colours are stored empty). The getter returns
/// <c>[indices, vertices, normals]</c>, plus colours when <c>loadColArr</c> is true; LZ4 elements come back flat.
/// Legacy entries with 2 or 3 elements are read as if the missing ones were empty, without changing the
/// stored entry (upstream appends to it). Not thread-safe; process-safe with locking on.
/// </remarks>
public sealed class MeshStorage : Storage<NdArray[]>
{
    private static readonly DType[] Types = [DType.UInt32, DType.Float32, DType.Float32, DType.UInt8];

    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?, bool, bool)"/>).</summary>
    public MeshStorage(string path, StoreOptions? options = null, bool loadColArr = false, bool compress = false)
        : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options, loadColArr, compress) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?, bool, bool)"/>).</summary>
    public MeshStorage(IEntryStore entryStore, StoreOptions? options = null, bool loadColArr = false, bool compress = false)
        : this(entryStore, options, loadColArr, compress, deferred: true)
    {
        OpenNow();
    }

    private MeshStorage(IEntryStore entryStore, StoreOptions? options, bool loadColArr, bool compress, bool deferred)
        : base(entryStore, options)
    {
        LoadColArr = loadColArr;
        Compress = compress;
    }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <param name="path">The store file.</param>
    /// <param name="options">Store options.</param>
    /// <param name="loadColArr"><c>load_colarr</c>: the getter also returns the colour/label array.</param>
    /// <param name="compress"><c>compress</c>: new entries are stored as LZ4 block lists.</param>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    public static MeshStorage Open(string path, StoreOptions? options = null, bool loadColArr = false, bool compress = false) =>
        new(path, StoreOptions.ForFactory(options), loadColArr, compress);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <param name="entryStore">Where the entries live.</param>
    /// <param name="options">Store options.</param>
    /// <param name="loadColArr"><c>load_colarr</c>: the getter also returns the colour/label array.</param>
    /// <param name="compress"><c>compress</c>: new entries are stored as LZ4 block lists.</param>
    /// <inheritdoc cref="Open(string, StoreOptions?, bool, bool)" path="/exception"/>
    public static MeshStorage Open(IEntryStore entryStore, StoreOptions? options = null, bool loadColArr = false, bool compress = false) =>
        new(entryStore, StoreOptions.ForFactory(options), loadColArr, compress);

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <param name="path">The store file.</param>
    /// <param name="options">Store options.</param>
    /// <param name="loadColArr"><c>load_colarr</c>: the getter also returns the colour/label array.</param>
    /// <param name="compress"><c>compress</c>: new entries are stored as LZ4 block lists.</param>
    /// <param name="ct">Cancels the wait for the lock.</param>
    /// <inheritdoc cref="Open(string, StoreOptions?, bool, bool)" path="/exception"/>
    public static Task<MeshStorage> OpenAsync(string path, StoreOptions? options = null, bool loadColArr = false, bool compress = false, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), loadColArr, compress, ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <param name="entryStore">Where the entries live.</param>
    /// <param name="options">Store options.</param>
    /// <param name="loadColArr"><c>load_colarr</c>: the getter also returns the colour/label array.</param>
    /// <param name="compress"><c>compress</c>: new entries are stored as LZ4 block lists.</param>
    /// <param name="ct">Cancels the wait for the lock.</param>
    /// <inheritdoc cref="Open(string, StoreOptions?, bool, bool)" path="/exception"/>
    public static Task<MeshStorage> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, bool loadColArr = false, bool compress = false, CancellationToken ct = default) =>
        OpenedAsync(new MeshStorage(entryStore, StoreOptions.ForFactory(options), loadColArr, compress, deferred: true), ct);

    /// <summary><c>load_colarr</c>: the getter also returns the colour/label array.</summary>
    public bool LoadColArr { get; }

    /// <summary><c>compress</c>: new entries are stored as LZ4 block lists instead of raw arrays.</summary>
    public bool Compress { get; }

    /// <inheritdoc/>
    protected override object Encode(StoreKey key, NdArray[] mesh)
    {
        if (mesh.Length is < 2 or > 4)
            throw new ArgumentException($"a mesh has 2 to 4 arrays (indices, vertices[, normals[, colours]]), got {mesh.Length}");
        var parts = new NdArray[4];
        for (int i = 0; i < 4; i++)
        {
            var a = i < mesh.Length ? mesh[i] ?? throw new ArgumentNullException(nameof(mesh), $"mesh array {i} is null") : NdArray.Zeros(Types[i], 0);
            parts[i] = a.AsType(Types[i]).ToNativeC();
        }
        Warn(key, parts);
        var list = new PyList(4);
        foreach (var p in parts) list.Add(Compress ? Lz4List.Encode(p) : p);
        return list;
    }

    private void Warn(StoreKey key, NdArray[] p)
    {
        var log = Options.Logger;
        if (log is null) return;
        long nVert = p[1].Size;
        if (p[2].Size > 0 && p[2].Size != nVert)
            log.LogWarning("mesh {Key} in {Location}: {Normals} normal values for {Vertices} vertex values", key, Location, p[2].Size, nVert);
        if (p[3].Size > 0 && p[3].Size != nVert && p[3].Size * 3 != nVert)
            log.LogWarning("mesh {Key} in {Location}: {Colours} colour/label values for {Vertices} vertex values", key, Location, p[3].Size, nVert);
    }

    /// <inheritdoc/>
    protected override NdArray[] Decode(StoreKey key, object raw)
    {
        string where = Where(this, key);
        if (raw is not PyList list) throw Bad(where, $"entry is a {TypeName(raw)}, expected a MeshStorage list [indices, vertices, normals, colours] of arrays or LZ4 block lists");
        if (list.Count is < 2 or > 4) throw Bad(where, $"mesh entry has {list.Count} elements, expected 2 to 4");
        // Every element is checked, also the colours the getter does not return: a skeleton's extras dict is no mesh array.
        for (int i = 0; i < list.Count; i++)
            if (list[i] is not (NdArray or PyList))
                throw Bad(where, $"mesh array {i} is a {TypeName(list[i])}, expected an ndarray or a list of LZ4 blocks"
                    + (i == 3 && list[i] is PyDict ? " (a SkeletonStorage entry ends with such a dict)" : ""));
        int n = LoadColArr ? 4 : 3;
        var result = new NdArray[n];
        for (int i = 0; i < n; i++)
            result[i] = i < list.Count ? DecodePart(list[i], Types[i], where, $"mesh array {i}") : NdArray.Zeros(Types[i], 0);
        return result;
    }

    /// <inheritdoc/>
    protected override object ToPython(NdArray[] value) => new PyList(value);

    private static NdArray DecodePart(object part, DType dt, string where, string what) => part switch
    {
        NdArray a => a,
        _ => Lz4(part, dt, null, where, what),
    };

    /// <summary>
    /// The mesh of <paramref name="key"/> with shaped arrays (indices (T, 3), vertices (V, 3), normals (V, 3) or
    /// (0, 3), colours (V, C) when stored, whatever <see cref="LoadColArr"/> says).
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    /// <exception cref="InvalidDataException">The stored entry is not a mesh (or its sizes do not fit a mesh: not a multiple of 3, one normal per vertex).</exception>
    public Mesh GetMesh(StoreKey key) =>
        TryGetMesh(key, out var mesh) ? mesh : throw MissingKey(key);

    /// <summary>The mesh of <paramref name="key"/> with shaped arrays (as <see cref="GetMesh"/>), if stored.</summary>
    /// <exception cref="InvalidDataException">The stored entry is not a mesh.</exception>
    public bool TryGetMesh(StoreKey key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Mesh mesh)
    {
        mesh = null;
        if (!TryGetValue(key, out var arrays)) return false;
        var colours = arrays.Length > 3 ? arrays[3] : StoredColours(key);
        try
        {
            mesh = new Mesh(arrays[0], arrays[1], arrays[2], colours);
        }
        catch (Exception e) when (e is ArgumentException or InvalidCastException or OverflowException)
        {
            throw new InvalidDataException($"{Where(this, key)}: the stored arrays are not a mesh: {e.Message}", e);
        }
        return true;
    }

    /// <summary>Stores <paramref name="mesh"/> under <paramref name="key"/> in SyConn's flat layout (<see cref="Mesh.ToFlat"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="mesh"/> is null.</exception>
    public void SetMesh(StoreKey key, Mesh mesh)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        this[key] = mesh.ToFlat();
    }

    private NdArray? StoredColours(StoreKey key)
    {
        if (!TryPeekEntry(key, out var raw) || raw is not PyList { Count: 4 } list) return null;
        return list[3] is NdArray or PyList ? DecodePart(list[3], Types[3], Where(this, key), "mesh array 3") : null;
    }
}
