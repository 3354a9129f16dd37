using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using static SyConn.Backend.Stores.EntryParsing;

namespace SyConn.Backend.Stores;

/// <summary>A skeleton as <see cref="SkeletonStorage"/> keeps it.</summary>
/// <param name="Nodes">Node coordinates (usually (N, 3)); stored as uint32, read back flat (3N).</param>
/// <param name="Diameters">Node diameters; stored as float32.</param>
/// <param name="Edges">Node index pairs (usually (M, 2)); stored as uint32, read back flat (2M).</param>
/// <param name="Extras">Every other attribute of the skeleton dict, stored uncompressed as given.</param>
public sealed record Skeleton(NdArray Nodes, NdArray Diameters, NdArray Edges, PyDict Extras)
{
    /// <summary>A skeleton without extra attributes.</summary>
    public Skeleton(NdArray nodes, NdArray diameters, NdArray edges) : this(nodes, diameters, edges, new PyDict()) { }

    /// <summary>The skeleton as the dict upstream's getter returns: <c>{'nodes', 'diameters', 'edges', **extras}</c>.</summary>
    public PyDict ToPython()
    {
        var d = new PyDict { ["nodes"] = Nodes, ["diameters"] = Diameters, ["edges"] = Edges };
        foreach (var kv in Extras) d[kv.Key] = kv.Value;
        return d;
    }

    /// <summary>The node coordinates as (N, 3) rows (a view of <see cref="Nodes"/>, which SyConn stores and returns flat).</summary>
    /// <exception cref="InvalidOperationException">The number of node values is not a multiple of 3.</exception>
    public NdArray NodesShaped => Rows(Nodes, 3, "node coordinates");

    /// <summary>The edges as (M, 2) rows of node indices (a view of <see cref="Edges"/>, which SyConn stores and returns flat).</summary>
    /// <exception cref="InvalidOperationException">The number of edge values is not even.</exception>
    public NdArray EdgesShaped => Rows(Edges, 2, "edge node indices");

    /// <summary>Number of nodes (N): node values / 3.</summary>
    public long NodeCount => Nodes.Size / 3;

    /// <summary>Number of edges (M): edge values / 2.</summary>
    public long EdgeCount => Edges.Size / 2;

    private static NdArray Rows(NdArray a, int width, string what) =>
        a.NDim == 2 && a.Shape[1] == width ? a
        : a.Size % width == 0 ? a.Reshape(-1, width)
        : throw new InvalidOperationException($"the skeleton has {a.Size} {what}, not a multiple of {width}");
}

/// <summary>
/// SyConn's <c>SkeletonStorage</c>: per key <c>[LZ4 nodes (uint32), LZ4 diameters (float32), LZ4 edges (uint32), extras dict]</c>.
/// Shapes are not stored: the arrays come back flat, callers reshape. Not thread-safe; process-safe with locking on.
/// </summary>
public sealed class SkeletonStorage : Storage<Skeleton>
{
    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?)"/>).</summary>
    public SkeletonStorage(string path, StoreOptions? options = null) : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?)"/>).</summary>
    public SkeletonStorage(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, options)
    {
        OpenNow();
    }

    private SkeletonStorage(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, options) { }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    public static SkeletonStorage Open(string path, StoreOptions? options = null) => new(path, StoreOptions.ForFactory(options));

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static SkeletonStorage Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, StoreOptions.ForFactory(options));

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<SkeletonStorage> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<SkeletonStorage> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new SkeletonStorage(entryStore, StoreOptions.ForFactory(options), deferred: true), ct);

    /// <inheritdoc/>
    protected override object Encode(StoreKey key, Skeleton value) => new PyList(4)
    {
        Lz4List.Encode(value.Nodes.AsType(DType.UInt32)),
        Lz4List.Encode(value.Diameters.AsType(DType.Float32)),
        Lz4List.Encode(value.Edges.AsType(DType.UInt32)),
        value.Extras ?? new PyDict(),
    };

    /// <inheritdoc/>
    protected override object ToPython(Skeleton value) => value.ToPython();

    /// <inheritdoc/>
    protected override long EstimateBytes(Skeleton value) => value.Nodes.NBytes + value.Diameters.NBytes + value.Edges.NBytes + 256;

    /// <inheritdoc/>
    protected override Skeleton Decode(StoreKey key, object raw)
    {
        string where = Where(this, key);
        if (raw is not PyList list) throw Bad(where, $"entry is a {TypeName(raw)}, expected a SkeletonStorage list [nodes, diameters, edges, extras]");
        if (list.Count < 3) throw Bad(where, $"skeleton entry has {list.Count} elements, expected 3 or 4");
        if (list.Count > 3 && list[3] is not PyDict)
            throw Bad(where, $"skeleton extras (element 3) is a {TypeName(list[3])}, expected a dict" + (list[3] is PyList or NdArray ? " (a MeshStorage entry has a colour array there)" : ""));
        var nodes = Lz4(list[0], DType.UInt32, null, where, "nodes");
        var diameters = Lz4(list[1], DType.Float32, null, where, "diameters");
        var edges = Lz4(list[2], DType.UInt32, null, where, "edges");
        var extras = list.Count > 3 ? (PyDict)list[3] : new PyDict();
        return new Skeleton(nodes, diameters, edges, extras);
    }
}
