using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using static SyConn.Backend.Stores.EntryParsing;

namespace SyConn.Backend.Stores;

/// <summary>
/// SyConn's <c>CompressedStorage</c>: one numpy array per key, kept as
/// <c>{'arr': [LZ4 blocks], 'sh': (-1, ...), 'dt': dtype.str}</c>.
/// </summary>
/// <remarks>
/// The getter returns a C-ordered array in native byte order; an empty array comes back with shape
/// <c>(0,)</c>, as upstream. Not thread-safe (see <see cref="StorageBase"/>); process-safe with locking on.
/// </remarks>
public class CompressedStorage : Storage<NdArray>
{
    /// <summary>Opens (pulls) the store at <paramref name="path"/> (as <see cref="Open(string, StoreOptions?)"/>).</summary>
    public CompressedStorage(string path, StoreOptions? options = null) : this(EntryStores.Open(path, EntryStoreKind.Pickle, options), options) { }

    /// <summary>Opens (pulls) the store over <paramref name="entryStore"/> (as <see cref="Open(IEntryStore, StoreOptions?)"/>).</summary>
    public CompressedStorage(IEntryStore entryStore, StoreOptions? options = null) : base(entryStore, options)
    {
        OpenNow();
    }

    /// <summary>Creates the store without pulling it, for derived stores and the factories (they pull once the store is complete).</summary>
    protected CompressedStorage(IEntryStore entryStore, StoreOptions? options, bool deferred) : base(entryStore, options) { }

    /// <summary>Opens the store at <paramref name="path"/> and pulls it.</summary>
    /// <exception cref="InvalidDataException">The file is corrupt (it is left untouched).</exception>
    /// <exception cref="StorageLockTimeoutException">Locking is on and the lock was not free in time.</exception>
    public static CompressedStorage Open(string path, StoreOptions? options = null) => new(path, StoreOptions.ForFactory(options));

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static CompressedStorage Open(IEntryStore entryStore, StoreOptions? options = null) => new(entryStore, StoreOptions.ForFactory(options));

    /// <summary>Opens the store at <paramref name="path"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<CompressedStorage> OpenAsync(string path, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenAsync(EntryStores.Open(path, EntryStoreKind.Pickle, options), StoreOptions.ForFactory(options), ct);

    /// <summary>Opens the store over <paramref name="entryStore"/> and pulls it, waiting for its lock without blocking.</summary>
    /// <inheritdoc cref="Open(string, StoreOptions?)" path="/exception"/>
    public static Task<CompressedStorage> OpenAsync(IEntryStore entryStore, StoreOptions? options = null, CancellationToken ct = default) =>
        OpenedAsync(new CompressedStorage(entryStore, StoreOptions.ForFactory(options), deferred: true), ct);

    /// <inheritdoc/>
    protected override NdArray Decode(StoreKey key, object raw) => DecodeEntry(raw, Where(this, key));

    /// <inheritdoc/>
    protected override object Encode(StoreKey key, NdArray value) => EncodeEntry(value);

    /// <summary>The raw entry of an array: <c>{'arr': LZ4LIST, 'sh': tuple, 'dt': str}</c>.</summary>
    /// <exception cref="ArgumentException">0-d or object arrays, or an array with rows but no bytes (shape (3, 0)).</exception>
    public static PyDict EncodeEntry(NdArray value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value.NDim == 0) throw new ArgumentException("a 0-d array cannot be stored in a CompressedStorage (upstream fails the same way)");
        if (value.Objects is not null) throw new ArgumentException("object arrays cannot be stored in a CompressedStorage");
        return new PyDict
        {
            ["arr"] = Lz4List.Encode(value),
            ["sh"] = new PyTuple(ShapeItems(value)),
            ["dt"] = value.DType.Str,
        };
    }

    /// <summary>Decodes a raw entry (<see cref="EncodeEntry"/>'s layout).</summary>
    /// <exception cref="InvalidDataException">The entry does not have that layout or its blocks are corrupt.</exception>
    public static NdArray DecodeEntry(object raw, string where)
    {
        const string Expected = "a CompressedStorage dict {'arr': [LZ4 blocks], 'sh': shape, 'dt': dtype}";
        if (raw is not PyDict d) throw Bad(where, $"entry is a {TypeName(raw)}, expected {Expected}");
        var arr = List(Field(d, "arr", where, Expected), where, "'arr'");
        if (arr.Count > 0 && arr[0] is PyList)
            throw Bad(where, "'arr' holds lists of blocks (the VoxelStorageL layout), expected LZ4 blocks (the CompressedStorage layout)");
        var dt = ParseDType(Field(d, "dt", where, Expected), where);
        var sh = Shape(Field(d, "sh", where, Expected), where);
        return Lz4(arr, dt, sh, where, "'arr'");
    }
}
