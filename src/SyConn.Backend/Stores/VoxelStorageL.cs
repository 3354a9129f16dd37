using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using static SyConn.Backend.Stores.EntryParsing;

namespace SyConn.Backend.Stores;

/// <summary>The voxel masks of one object and their offsets, as <see cref="VoxelStorageL"/> keeps them.</summary>
public sealed class VoxelMasks
{
    /// <summary>Masks with offsets given as xyz rows (stored as a list of int64 arrays, as SyConn does).</summary>
    public VoxelMasks(IReadOnlyList<NdArray> masks, IReadOnlyList<long[]> offsets)
        : this(masks, (object)ToPythonOffsets(offsets))
    {
    }

    /// <summary>Masks with offsets in any stored form (list of arrays, list of lists, (N, 3) ndarray).</summary>
    public VoxelMasks(IReadOnlyList<NdArray> masks, object offsets)
    {
        Masks = masks ?? throw new ArgumentNullException(nameof(masks));
        Offsets = offsets ?? throw new ArgumentNullException(nameof(offsets));
    }

    /// <summary>The masks, in order.</summary>
    public IReadOnlyList<NdArray> Masks { get; }

    /// <summary>The offsets exactly as stored (upstream returns them unchanged).</summary>
    public object Offsets { get; }

    /// <summary>The offsets as integer rows, whatever form they were stored in.</summary>
    /// <exception cref="InvalidDataException">The stored offsets are not integer rows.</exception>
    public long[][] OffsetRows => ParseOffsets(Offsets, "offsets");

    internal static PyList ToPythonOffsets(IReadOnlyList<long[]> offsets)
    {
        ArgumentNullException.ThrowIfNull(offsets);
        var l = new PyList(offsets.Count);
        foreach (var o in offsets) l.Add(NdArray.Create(o ?? throw new ArgumentNullException(nameof(offsets), "an offset is null")));
        return l;
    }

    internal static long[][] ParseOffsets(object raw, string where)
    {
        switch (raw)
        {
            case NdArray a when a.DType.IsInteger && a.NDim == 2:
            {
                var v = a.ToArray<long>(CastingRule.Unsafe);
                int w = (int)a.Shape[1];
                return Enumerable.Range(0, (int)a.Shape[0]).Select(i => v.AsSpan(i * w, w).ToArray()).ToArray();
            }
            case PyList or PyTuple:
                return ((IEnumerable<object>)raw).Select(r => Row(r, where)).ToArray();
            default: throw Bad(where, $"offsets are a {TypeName(raw)}, expected a list of rows or an (N, 3) array");
        }
    }

    private static long[] Row(object r, string where) => r switch
    {
        NdArray a when a.DType.IsInteger => a.ToArray<long>(CastingRule.Unsafe),
        PyList or PyTuple => ((IEnumerable<object>)r).Select(x => PyInt.TryGetInt64(x, out var v) ? v : throw Bad(where, $"offset item {PyRepr.Repr(x)} is not an int")).ToArray(),
        _ => throw Bad(where, $"an offset is a {TypeName(r)}, expected an int array or list"),
    };
}

/// <summary>
/// SyConn's <c>VoxelStorageL</c>: per key a list of voxel masks (each an LZ4 block list with its own
/// shape) sharing one dtype, plus their offsets:
/// <c>{'arr': [LZ4LIST...], 'sh': [[-1, ...]...], 'dt': str, 'off': offsets}</c>.
/// </summary>
/// <remarks>
/// <see cref="Append"/> fixes two upstream bugs: ndarray offsets are extended (not added to), and
/// <c>'dt'</c> stays a str. Not thread-safe; process-safe with locking on.
/// </remarks>
public class VoxelStorageL : Storage<VoxelMasks>
{
    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?)"/>).</summary>
    public VoxelStorageL(string path, StoreOptions? options = null) : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?)"/>).</summary>
    public VoxelStorageL(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, options)
    {
        OpenNow();
    }

    /// <summary>Creates the store without pulling it, for derived stores and the factories (they pull once the store is complete).</summary>
    protected VoxelStorageL(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, options) { }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    public static VoxelStorageL Open(string path, StoreOptions? options = null) => new(path, StoreOptions.ForFactory(options));

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static VoxelStorageL Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, StoreOptions.ForFactory(options));

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<VoxelStorageL> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<VoxelStorageL> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new VoxelStorageL(entryStore, StoreOptions.ForFactory(options), deferred: true), ct);

    /// <inheritdoc/>
    protected override object Encode(StoreKey key, VoxelMasks value)
    {
        var masks = value.Masks;
        if (masks.Count == 0) throw new ArgumentException($"key {key}: at least one mask is needed (the dtype is taken from the first)");
        int nOff = value.Offsets switch
        {
            NdArray a when a.NDim >= 1 => (int)a.Shape[0],
            PyList l => l.Count,
            PyTuple t => t.Count,
            _ => throw new ArgumentException($"key {key}: offsets must be a list or an (N, 3) array"),
        };
        if (nOff != masks.Count) throw new ArgumentException($"key {key}: {masks.Count} masks but {nOff} offsets");
        var dt = masks[0].DType;
        var arr = new PyList(masks.Count);
        var sh = new PyList(masks.Count);
        foreach (var m in masks)
        {
            if (m.DType != dt) throw new ArgumentException($"key {key}: all masks must share one dtype ({dt.Str} and {m.DType.Str} given)");
            arr.Add(Lz4List.Encode(m));
            sh.Add(new PyList(ShapeItems(m)));
        }
        return new PyDict { ["arr"] = arr, ["sh"] = sh, ["dt"] = dt.Str, ["off"] = value.Offsets };
    }

    /// <inheritdoc/>
    protected override long EstimateBytes(VoxelMasks value) => value.Masks.Sum(m => m.NBytes) + 256;

    /// <inheritdoc/>
    protected override VoxelMasks Decode(StoreKey key, object raw)
    {
        string where = Where(this, key);
        const string Expected = "a VoxelStorageL dict {'arr': [LZ4 block lists], 'sh': [shapes], 'dt': dtype, 'off': offsets}";
        if (raw is not PyDict d) throw Bad(where, $"entry is a {TypeName(raw)}, expected {Expected}");
        var arr = List(Field(d, "arr", where, Expected), where, "'arr'");
        for (int i = 0; i < arr.Count; i++)
            if (arr[i] is not PyList)
                throw Bad(where, $"mask {i} is a {TypeName(arr[i])}, expected a list of LZ4 blocks" + (arr[i] is PyBytes ? " ('arr' of a CompressedStorage entry holds the blocks themselves)" : ""));
        var sh = List(Field(d, "sh", where, Expected), where, "'sh'");
        var dt = ParseDType(Field(d, "dt", where, Expected), where);
        var off = Field(d, "off", where, Expected);
        if (arr.Count != sh.Count) throw Bad(where, $"{arr.Count} masks but {sh.Count} shapes");
        var masks = new NdArray[arr.Count];
        for (int i = 0; i < masks.Length; i++)
            masks[i] = Lz4(arr[i], dt, Shape(sh[i], $"{where}, mask {i}"), where, $"mask {i}");
        return new VoxelMasks(masks, off);
    }

    /// <summary>
    /// Adds one mask and its offset to <paramref name="key"/> (creating the entry if missing). The mask must
    /// have the entry's dtype.
    /// </summary>
    public void Append(StoreKey key, NdArray mask, long[] offset)
    {
        ArgumentNullException.ThrowIfNull(mask);
        ArgumentNullException.ThrowIfNull(offset);
        if (!TryPeekEntry(key, out var raw))
        {
            this[key] = new VoxelMasks([mask], [offset]);
            return;
        }
        string where = Where(this, key);
        var d = Dict(raw, where);
        var dt = ParseDType(Field(d, "dt", where), where);
        if (mask.DType != dt) throw new ArgumentException($"key {key}: mask dtype {mask.DType.Str} differs from the stored {dt.Str}");
        var arr = List(Field(d, "arr", where), where, "'arr'");
        var sh = List(Field(d, "sh", where), where, "'sh'");
        var off = Field(d, "off", where);
        var newOff = off switch
        {
            NdArray a => (object)AppendRow(a, offset, where),
            PyList l => new PyList(l) { NdArray.Create(offset) },
            PyTuple t => new PyList(t) { NdArray.Create(offset) },
            _ => throw Bad(where, $"offsets are a {TypeName(off)}, cannot append"),
        };
        var copy = new PyDict
        {
            ["arr"] = new PyList(arr) { Lz4List.Encode(mask) },
            ["sh"] = new PyList(sh) { new PyList(ShapeItems(mask)) },
            ["dt"] = dt.Str,
            ["off"] = newOff,
        };
        foreach (var kv in d) if (!copy.ContainsKey(kv.Key)) copy[kv.Key] = kv.Value;
        SetEntry(key, copy, handedOut: false);
    }

    /// <summary>The getter's value as upstream returns it: <c>(masks, offsets)</c>.</summary>
    protected override object ToPython(VoxelMasks value) => new PyTuple(new PyList(value.Masks), value.Offsets);

    private static NdArray AppendRow(NdArray a, long[] row, string where)
    {
        if (a.NDim != 2 || a.Shape[1] != row.Length)
            throw Bad(where, $"offsets array of shape ({string.Join(", ", a.ShapeArray)}) cannot take a row of {row.Length}");
        var rowArr = NdArray.Create(row, 1, row.Length).AsType(a.DType.ToNative());
        var c = a.ToNativeC();
        var bytes = new byte[c.Data.Length + rowArr.Data.Length];
        c.Data.Span.CopyTo(bytes);
        rowArr.Data.Span.CopyTo(bytes.AsSpan(c.Data.Length));
        return new NdArray(c.DType, [a.Shape[0] + 1, a.Shape[1]], bytes);
    }
}

/// <summary>
/// SyConn's <c>VoxelStorageClass</c>: the <see cref="VoxelStorageL"/> layout, for stores that must not be
/// locked (upstream refuses <c>disable_locking=False</c>, and so do we).
/// </summary>
public sealed class VoxelStorageClass : VoxelStorageL
{
    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?)"/>).</summary>
    /// <exception cref="ArgumentException">Locking was enabled.</exception>
    public VoxelStorageClass(string path, StoreOptions? options = null) : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?)"/>).</summary>
    /// <exception cref="ArgumentException">Locking was enabled.</exception>
    public VoxelStorageClass(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, CheckOptions(options), deferred: true)
    {
        OpenNow();
    }

    private VoxelStorageClass(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, CheckOptions(options), deferred) { }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <exception cref="ArgumentException">Locking was enabled.</exception>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    public static new VoxelStorageClass Open(string path, StoreOptions? options = null) => new(path, StoreOptions.ForFactory(options));

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static new VoxelStorageClass Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, StoreOptions.ForFactory(options));

    /// <summary>Opens the store at <paramref name="path"/> and pulls it (no lock is waited for: this class never locks).</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static new Task<VoxelStorageClass> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static new Task<VoxelStorageClass> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new VoxelStorageClass(entryStore, StoreOptions.ForFactory(options), deferred: true), ct);

    private static StoreOptions? CheckOptions(StoreOptions? o) =>
        o is { DisableLocking: false } ? throw new ArgumentException("VoxelStorageClass does not support locking: keep DisableLocking = true") : o;
}
