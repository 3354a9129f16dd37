using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using PureHDF;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Stores;

/// <summary>Options for opening a <see cref="BinarySearchStore"/>.</summary>
public sealed class BinarySearchStoreOptions
{
    /// <summary>The default <see cref="CacheBytes"/>: 256 MiB.</summary>
    public const long DefaultCacheBytes = 256L << 20;

    /// <summary>
    /// Upper bound on the bytes of shards (ID shards and attribute shards) kept in memory between
    /// queries, in the spirit of h5py's <c>rdcc_nbytes</c>. Least recently used shards are dropped
    /// first; a shard larger than the bound is read for the query that needs it and not kept. 0 keeps
    /// nothing (every query batch reads the shards it touches).
    /// </summary>
    public long CacheBytes { get; init; } = DefaultCacheBytes;

    /// <summary>Read limits: a file in which any dataset, attribute, chunk or global heap collection declares more than
    /// <see cref="ReadLimits.MaxArrayBytes"/> is refused when it is opened (its metadata is walked before the HDF5 reader
    /// allocates anything). Null for <see cref="ReadLimits.Default"/>.</summary>
    public ReadLimits? Limits { get; init; }
}

/// <summary>
/// SyConn's <c>BinarySearchStore</c>: an HDF5 file holding a sorted array of unique uint64 object IDs
/// and, per attribute, one value row per ID, both split into <see cref="NShards"/> shards
/// (layout: formats.md §5.8). Files written by SyConn (h5py, <c>libver='latest'</c>) are read, and
/// files written by <see cref="Create"/> are read by SyConn.
/// </summary>
/// <remarks>
/// <para>Differences from upstream: an ID that is not stored raises <see cref="KeyNotFoundException"/>
/// (upstream silently returns a neighbour's value); <see cref="TryGetAttributes"/> reports a found
/// mask instead. Building refuses duplicate IDs and more shards than IDs.</para>
/// <para>Queries sort the query IDs once and visit each shard once. Shards are read lazily on first
/// use and kept within <see cref="BinarySearchStoreOptions.CacheBytes"/>; a query that needs fewer
/// than 1/256 of the rows of an attribute shard that is not cached reads only those rows and does not
/// cache them (the ID shard is always read whole, as upstream does).</para>
/// <para>Opening walks the file's HDF5 metadata first (superblock, object headers and their checksums, heaps, B-trees, chunk
/// indexes) and refuses any declared size beyond the end of the file, the read limits or what the enclosing structure allows,
/// naming the structure and its offset, before the HDF5 reader (PureHDF) allocates from it. Ids must be strictly ascending
/// within and across shards (a repeated id is refused when its shard is read).</para>
/// <para>Big-endian attribute datasets (h5py writes them for big-endian numpy input) are read and
/// returned in native order; ID datasets must be little-endian uint64 (or non-negative int64).</para>
/// <para>Thread-safety: after construction, all members except <see cref="Dispose"/> may be called
/// from several threads at once (shard reads are serialised internally; queries on loaded shards run
/// in parallel). <see cref="Dispose"/> must not overlap other calls. The file is opened read-only and
/// shared; no lock file is used (the store is immutable once written).</para>
/// </remarks>
public sealed partial class BinarySearchStore : IDisposable
{
    private const string IdsGroup = "ids";
    private const int MaxListedMissing = 10;

    private readonly PureHDF.VOL.Native.NativeFile _file;
    private readonly object _fileGate = new();
    private readonly ReadBudgetStream _reads = null!;

    /// <summary>What the HDF5 reader may read to open the file or to find one object: far more than any valid store needs,
    /// little enough that a cycle in a damaged file's structures ends in seconds.</summary>
    private const long MetadataReadBudget = 256L << 20;
    private readonly ShardCache _cache;
    private readonly ReadLimits _limits;
    private readonly ulong[] _lo;
    private readonly ulong[] _hi;
    private readonly Dictionary<string, AttributeInfo> _attributes;
    private readonly string[] _attributeNames;
    private bool _disposed;

    private sealed record AttributeInfo(string Name, DType FileDType, long[] Shape, int RowBytes);

    /// <summary>The path of the file.</summary>
    public string Path { get; }

    /// <summary>Number of shards (upstream's <c>n_shards</c> = <c>len(bucket_ranges)</c>).</summary>
    public int NShards => _lo.Length;

    /// <summary>The names of the attribute groups (every root group except <c>ids</c>), in file order.</summary>
    public IReadOnlyList<string> AttributeNames => _attributeNames;

    /// <summary>Per shard, the first and last ID (the root attribute <c>bucket_ranges</c>), as a new array.</summary>
    public (ulong First, ulong Last)[] BucketRanges
    {
        get
        {
            var r = new (ulong, ulong)[_lo.Length];
            for (int i = 0; i < r.Length; i++) r[i] = (_lo[i], _hi[i]);
            return r;
        }
    }

    /// <summary>All stored IDs in ascending order (upstream's <c>id_array</c>): a new array on each call.</summary>
    public ulong[] IdArray
    {
        get
        {
            var shards = new byte[NShards][];
            long total = 0;
            for (int s = 0; s < NShards; s++) { shards[s] = IdShard(s); total += shards[s].Length / 8; }
            var all = new ulong[total];
            long at = 0;
            foreach (var sh in shards)
            {
                var v = MemoryMarshal.Cast<byte, ulong>(sh);
                v.CopyTo(all.AsSpan((int)at));
                at += v.Length;
            }
            return all;
        }
    }

    /// <summary>Opens an existing store read-only.</summary>
    /// <param name="path">The <c>.h5</c> file.</param>
    /// <param name="options">Cache options; null for the defaults.</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a BinarySearchStore (the message says which part is wrong).</exception>
    public BinarySearchStore(string path, BinarySearchStoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new BinarySearchStoreOptions();
        if (options.CacheBytes < 0) throw new ArgumentException("CacheBytes must not be negative", nameof(options));
        if (!File.Exists(path)) throw new FileNotFoundException($"BinarySearchStore file not found: {path}", path);
        Path = path;
        _limits = (options.Limits ?? ReadLimits.Default).Validate();
        _cache = new ShardCache(options.CacheBytes);
        CheckSuperblock(path);
        // Every metadata size PureHDF would allocate from (heaps, object headers, B-tree nodes, declared shapes) is checked first.
        Storage.Hdf5Precheck.Check(path, _limits);
        try
        {
            _reads = new ReadBudgetStream(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16), path);
            _reads.Arm(MetadataReadBudget, "the file's metadata");
            _file = H5File.Open(_reads, leaveOpen: false);
        }
        catch (Exception e)
        {
            _reads?.Dispose();
            if (IsFormatError(e, metadata: true)) throw new InvalidDataException($"{path}: not a readable HDF5 file ({Describe(e)})", e);
            throw;
        }
        try
        {
            (_lo, _hi) = ReadBucketRanges();
            (_attributes, _attributeNames) = ReadAttributeInfo();
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Exceptions the HDF5 reader raises for damaged input (anything but a real I/O failure, a disposed store or our own
    /// InvalidDataException); a file that ends early (EndOfStreamException) is damage too.
    /// </summary>
    private static bool IsFormatError(Exception e) => IsFormatError(e, metadata: false);

    /// <summary>
    /// As <see cref="IsFormatError(Exception)"/>; while reading metadata (bucket ranges, attribute descriptions: a few KB in any
    /// valid store) an OutOfMemoryException means the file declared a huge structure (e.g. a global heap object), so it is damage too.
    /// </summary>
    private static bool IsFormatError(Exception e, bool metadata) =>
        (metadata && e is OutOfMemoryException) ||
        e is EndOfStreamException || e is not (InvalidDataException or IOException or UnauthorizedAccessException or OutOfMemoryException or ObjectDisposedException
            or InsufficientExecutionStackException);

    /// <summary>A reader exception for a message: its text, with the type named only when the text alone says little.</summary>
    private static string Describe(Exception e) => e switch
    {
        EndOfStreamException => "the file ends early (a structure points past its end)",
        OutOfMemoryException => "a structure declares a size larger than memory allows (the file is damaged)",
        OverflowException or IndexOutOfRangeException or ArgumentOutOfRangeException or NullReferenceException or InvalidCastException
            => $"a damaged structure ({e.GetType().Name}: {e.Message})",
        _ => e.Message,
    };

    /// <summary>The HDF5 signature must be at offset 0 (h5py writes no user block); checked before the HDF5 reader sees the file.</summary>
    private static void CheckSuperblock(string path)
    {
        Span<byte> sig = stackalloc byte[9];
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1);
        int n = fs.ReadAtLeast(sig, sig.Length, throwOnEndOfStream: false);
        ReadOnlySpan<byte> magic = [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];
        if (n < 9 || !sig[..8].SequenceEqual(magic))
            throw new InvalidDataException($"{path}: not an HDF5 file: no signature \\x89HDF\\r\\n\\x1a\\n at offset 0 ({fs.Length} bytes)");
        if (sig[8] > 3)
            throw new InvalidDataException($"{path}: offset 8: HDF5 superblock version {sig[8]} is unknown (0 to 3 are)");
    }

    /// <summary>Refuses a dataset or attribute whose declared size exceeds <see cref="ReadLimits.MaxArrayBytes"/> before it is read.</summary>
    private void CheckDeclaredSize(string where, ulong[] dims, ulong itemSize)
    {
        ulong bytes = itemSize;
        foreach (var d in dims)
        {
            if (d != 0 && bytes > (ulong)long.MaxValue / d)
                throw Corrupt(where, $"declared shape ({string.Join(", ", dims)}) of {itemSize}-byte elements overflows a 64-bit size");
            bytes *= d;
        }
        if (dims.Any(d => d == 0)) bytes = 0;
        if ((long)bytes > _limits.MaxArrayBytes)
            throw Corrupt(where, ReadLimits.Exceeds($"declared shape ({string.Join(", ", dims)}) of {itemSize}-byte elements", (long)bytes, _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)));
    }

    private InvalidDataException Corrupt(string where, string what, Exception? inner = null) =>
        new($"{Path}: {where}: {what}", inner);

    private (ulong[] Lo, ulong[] Hi) ReadBucketRanges()
    {
        ulong[] flat;
        try
        {
            if (!_file.AttributeExists("bucket_ranges"))
                throw Corrupt("/", "root attribute 'bucket_ranges' is missing");
            var a = _file.Attribute("bucket_ranges");
            var dims = a.Space.Dimensions;
            if (a.Type.Class != H5DataTypeClass.FixedPoint || a.Type.Size != 8 || dims.Length != 2 || dims[1] != 2 || dims[0] < 1)
                throw Corrupt("/bucket_ranges", $"expected a (n_shards, 2) array of 8-byte integers, found {a.Type.Class} of size {a.Type.Size} and shape ({string.Join(", ", dims)})");
            CheckDeclaredSize("/bucket_ranges", dims, 8);
            flat = a.Read<ulong[]>();
            if (flat.LongLength != (long)dims[0] * 2)
                throw Corrupt("/bucket_ranges", $"holds {flat.LongLength} values; its shape ({dims[0]}, 2) needs {(long)dims[0] * 2}");
            if (a.Type.FixedPoint.IsSigned)
                foreach (var v in flat)
                    if ((long)v < 0) throw Corrupt("/bucket_ranges", $"negative id {(long)v}");
            if (!_file.LinkExists(IdsGroup)) throw Corrupt("/ids", "group is missing");
        }
        catch (Exception e) when (IsFormatError(e, metadata: true))
        {
            throw Corrupt("/bucket_ranges", "cannot be read: " + Describe(e), e);
        }
        int n = flat.Length / 2;
        var lo = new ulong[n];
        var hi = new ulong[n];
        for (int i = 0; i < n; i++)
        {
            lo[i] = flat[2 * i];
            hi[i] = flat[2 * i + 1];
            if (lo[i] > hi[i] || (i > 0 && lo[i] <= hi[i - 1]))
                throw Corrupt("/bucket_ranges", $"shard {i} range [{lo[i]}, {hi[i]}] is not ascending after the previous shards (ids are unique, so shards cannot share one)");
        }
        return (lo, hi);
    }

    private (Dictionary<string, AttributeInfo>, string[]) ReadAttributeInfo()
    {
        var map = new Dictionary<string, AttributeInfo>(StringComparer.Ordinal);
        var names = new List<string>();
        List<IH5Object> children;
        try
        {
            children = _file.Children().ToList();
        }
        catch (Exception e) when (IsFormatError(e, metadata: true))
        {
            throw Corrupt("/", "the root group's links cannot be read: " + Describe(e), e);
        }
        foreach (var child in children)
        {
            string where = "/" + child.Name;
            try
            {
                if (child.Name == IdsGroup || child is not IH5Group g) continue;
                if (!g.AttributeExists("dtype") || !g.AttributeExists("shape"))
                    throw Corrupt(where, "attribute group lacks its 'dtype' or 'shape' attribute");
                var dtAttr = g.Attribute("dtype");
                if (dtAttr.Type.Class is not (H5DataTypeClass.String or H5DataTypeClass.VariableLength) || dtAttr.Space.Dimensions.Length != 0 && dtAttr.Space.Dimensions.Aggregate(1UL, (x, y) => x * y) != 1)
                    throw Corrupt(where + " attribute 'dtype'", $"expected a scalar string, found {dtAttr.Type.Class} of shape ({string.Join(", ", dtAttr.Space.Dimensions)})");
                var shapeAttr = g.Attribute("shape");
                if (shapeAttr.Type.Class != H5DataTypeClass.FixedPoint || shapeAttr.Type.Size != 8 || shapeAttr.Space.Dimensions.Length != 1 || shapeAttr.Space.Dimensions[0] > 64)
                    throw Corrupt(where + " attribute 'shape'", $"expected a 1-D array of at most 64 8-byte integers, found {shapeAttr.Type.Class} of size {shapeAttr.Type.Size} and shape ({string.Join(", ", shapeAttr.Space.Dimensions)})");
                var dtText = dtAttr.Read<string>();
                if (!DType.TryParse(dtText, out var dt) || dt.Kind is not ('b' or 'i' or 'u' or 'f' or 'c' or 'S') || dt.ItemSize == 0)
                    throw Corrupt(where + " attribute 'dtype'", $"'{dtText}' is not a supported numpy dtype string");
                var shape = shapeAttr.Read<long[]>();
                if (shape.Length < 1 || shape.Any(d => d < 0))
                    throw Corrupt(where + " attribute 'shape'", $"({string.Join(", ", shape)}) is not an array shape");
                long row = dt.ItemSize;
                for (int i = 1; i < shape.Length; i++)
                {
                    if (shape[i] != 0 && row > int.MaxValue / shape[i]) throw Corrupt(where + " attribute 'shape'", $"rows of ({string.Join(", ", shape)}) are larger than 2 GiB; not supported");
                    row *= shape[i];
                }
                if (row > _limits.MaxArrayBytes)
                    throw Corrupt(where + " attribute 'shape'", ReadLimits.Exceeds($"rows of ({string.Join(", ", shape)}) of {dt.Str}", row, _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)));
                map[child.Name] = new AttributeInfo(child.Name, dt, shape, (int)row);
                names.Add(child.Name);
            }
            catch (Exception e) when (IsFormatError(e, metadata: true))
            {
                throw Corrupt(where, "cannot be read: " + Describe(e), e);
            }
        }
        return (map, names.ToArray());
    }

    private byte[] IdShard(int s)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _cache.Get("ids/" + s.ToString(CultureInfo.InvariantCulture), () =>
        {
            string where = "/ids/" + s.ToString(CultureInfo.InvariantCulture);
            var data = ReadDataset(where, 8, [], H5DataTypeClass.FixedPoint);
            var v = MemoryMarshal.Cast<byte, ulong>(data);
            if (v.Length == 0 || v[0] != _lo[s] || v[^1] != _hi[s])
                throw Corrupt(where, $"first/last id ({(v.Length == 0 ? "empty" : v[0] + ", " + v[^1])}) differ from bucket_ranges [{_lo[s]}, {_hi[s]}]");
            // Strictly ascending: a repeated id would make its value depend on which copy the search meets first.
            for (int i = 1; i < v.Length; i++)
                if (v[i] <= v[i - 1]) throw Corrupt(where, v[i] == v[i - 1] ? $"id {v[i]} is repeated at index {i} (ids must be unique)" : $"ids are not sorted at index {i}");
            return data;
        });
    }

    /// <summary>A query touching fewer than 1/PartialReadFactor of an uncached shard's rows reads just those rows.</summary>
    private const int PartialReadFactor = 256;

    private static string AttributeCacheKey(AttributeInfo a, int s) => "a/" + a.Name + "/" + s.ToString(CultureInfo.InvariantCulture);

    /// <summary>Reads the given rows (ascending, unique) of one attribute shard, without caching them.</summary>
    private byte[] ReadRows(AttributeInfo a, int s, int shardRows, List<int> rows)
    {
        string where = "/" + a.Name + "/" + s.ToString(CultureInfo.InvariantCulture);
        var dims = new ulong[a.Shape.Length];
        dims[0] = (ulong)shardRows;
        for (int d = 1; d < dims.Length; d++) dims[d] = (ulong)a.Shape[d];
        ulong last = dims.Length > 1 ? dims[^1] : 1;
        ulong rowElems = 1;
        for (int d = 1; d < dims.Length; d++) rowElems *= dims[d];
        ulong stepsPerRow = last == 0 ? 0 : rowElems / last;
        IEnumerable<PureHDF.Selections.Step> Steps(ulong[] _)
        {
            foreach (var r in rows)
            {
                for (ulong k = 0; k < stepsPerRow; k++)
                {
                    var c = new ulong[dims.Length];
                    c[0] = (ulong)r;
                    ulong rest = k;
                    for (int d = dims.Length - 2; d >= 1; d--) { c[d] = rest % dims[d]; rest /= dims[d]; }
                    yield return new PureHDF.Selections.Step(c, last);
                }
            }
        }
        var selection = new PureHDF.Selections.DelegateSelection((ulong)rows.Count * rowElems, Steps);
        lock (_fileGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                _reads.Arm(MetadataReadBudget, where);
                var ds = CheckedDataset(where, a.FileDType.ItemSize, a.Shape.AsSpan(1), ExpectedClass(a.FileDType), shardRows);
                _reads.Arm(MetadataReadBudget + 2L * shardRows * a.RowBytes, where);
                var data = ds.Read<byte[]>(selection, null, [(ulong)rows.Count * (ulong)a.RowBytes]);
                if (data.LongLength != (long)rows.Count * a.RowBytes)
                    throw Corrupt(where, $"reading {rows.Count} rows gave {data.LongLength} bytes, expected {(long)rows.Count * a.RowBytes}");
                return data;
            }
            catch (Exception e) when (IsFormatError(e))
            {
                throw Corrupt(where, "cannot be read: " + Describe(e), e);
            }
        }
    }

    private static H5DataTypeClass ExpectedClass(DType dt) => dt.Kind switch
    {
        'f' => H5DataTypeClass.FloatingPoint,
        'c' => H5DataTypeClass.Compound,
        'S' => H5DataTypeClass.String,
        'b' => H5DataTypeClass.Enumerated,
        _ => H5DataTypeClass.FixedPoint,
    };

    private byte[] AttributeShard(AttributeInfo a, int s)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        string where = "/" + a.Name + "/" + s.ToString(CultureInfo.InvariantCulture);
        return _cache.Get(AttributeCacheKey(a, s), () =>
        {
            var data = ReadDataset(where, a.FileDType.ItemSize, a.Shape.AsSpan(1), ExpectedClass(a.FileDType));
            int idRows = IdShard(s).Length / 8;
            if (data.LongLength != (long)idRows * a.RowBytes)
                throw Corrupt(where, $"holds {data.LongLength / Math.Max(1, a.RowBytes)} rows; /ids/{s} holds {idRows}");
            return data;
        });
    }

    /// <summary>Reads a whole dataset as raw bytes (the file's byte order), checking its type class, element size and trailing dimensions.</summary>
    private byte[] ReadDataset(string where, int itemSize, ReadOnlySpan<long> trailing, H5DataTypeClass expected)
    {
        var trail = trailing.ToArray();
        lock (_fileGate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                _reads.Arm(MetadataReadBudget, where);
                var ds = CheckedDataset(where, itemSize, trail, expected, null);
                // CheckedDataset bounded the declared size by ReadLimits.MaxArrayBytes.
                _reads.Arm(MetadataReadBudget + 2 * _limits.MaxArrayBytes, where);
                return ds.Read<byte[]>();
            }
            catch (Exception e) when (IsFormatError(e))
            {
                throw Corrupt(where, "cannot be read: " + Describe(e), e);
            }
        }
    }

    /// <summary>The dataset at <paramref name="where"/> after checking type class, element size, trailing dims and (if given) row count. Call under the file lock.</summary>
    private IH5Dataset CheckedDataset(string where, int itemSize, ReadOnlySpan<long> trail, H5DataTypeClass expected, int? rows)
    {
        try
        {
            return CheckedDatasetCore(where, itemSize, trail, expected, rows);
        }
        catch (OutOfMemoryException e)
        {
            // The dataset's header (type, shape) is metadata of a few bytes: a huge allocation there means damage.
            throw Corrupt(where, "cannot be read: " + Describe(e), e);
        }
    }

    private IH5Dataset CheckedDatasetCore(string where, int itemSize, ReadOnlySpan<long> trail, H5DataTypeClass expected, int? rows)
    {
        if (!_file.LinkExists(where)) throw Corrupt(where, "dataset is missing");
        var ds = _file.Dataset(where);
        var t = ds.Type;
        bool classOk = t.Class == expected
            || (expected == H5DataTypeClass.Enumerated && t.Class == H5DataTypeClass.FixedPoint);
        if (!classOk || t.Size != itemSize)
            throw Corrupt(where, $"element type {t.Class} of size {t.Size} does not match the expected {expected} of size {itemSize}");
        var dims = ds.Space.Dimensions;
        CheckDeclaredSize(where, dims, (ulong)t.Size);
        bool dimsOk = dims.Length == 1 + trail.Length && (rows is null || dims[0] == (ulong)rows.Value);
        for (int d = 0; dimsOk && d < trail.Length; d++) dimsOk = dims[d + 1] == (ulong)trail[d];
        if (!dimsOk)
            throw Corrupt(where, $"shape ({string.Join(", ", dims)}) does not match the group's 'shape' attribute (trailing ({string.Join(", ", trail.ToArray())})){(rows is null ? "" : $" and {rows} rows")}");
        return ds;
    }

    private AttributeInfo Attribute(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!_attributes.TryGetValue(key, out var a))
            throw new KeyNotFoundException($"{Path}: no attribute '{key}' (attributes: {string.Join(", ", _attributeNames)})");
        return a;
    }

    /// <summary>The dtype named by the attribute group's <c>dtype</c> attribute (as stored, byte order included).</summary>
    /// <exception cref="KeyNotFoundException">The attribute does not exist.</exception>
    public DType GetAttributeDType(string key) => Attribute(key).FileDType;

    /// <summary>The full attribute shape from the group's <c>shape</c> attribute (a new array).</summary>
    /// <exception cref="KeyNotFoundException">The attribute does not exist.</exception>
    public long[] GetAttributeShape(string key) => (long[])Attribute(key).Shape.Clone();

    /// <summary>One shard as stored (<paramref name="group"/> is <c>ids</c> or an attribute name), for inspection and tests.</summary>
    internal NdArray ReadShard(string group, int shard)
    {
        if ((uint)shard >= (uint)NShards) throw new ArgumentOutOfRangeException(nameof(shard));
        var ids = IdShard(shard);
        if (group == IdsGroup) return new NdArray(DType.UInt64, [ids.Length / 8], ids);
        var a = Attribute(group);
        var shape = (long[])a.Shape.Clone();
        shape[0] = ids.Length / 8;
        return new NdArray(a.FileDType, shape, AttributeShard(a, shard));
    }

    /// <summary>
    /// The values of attribute <paramref name="key"/> for <paramref name="ids"/>, in query order
    /// (upstream's <c>get_attributes</c>). Repeated IDs in the query are allowed.
    /// </summary>
    /// <returns>An array of the dtype named by the group's <c>dtype</c> attribute in native byte order,
    /// shape <c>[ids.Length] + shape[1:]</c>, C order.</returns>
    /// <exception cref="KeyNotFoundException">The attribute does not exist, or some IDs are not stored (the message lists up to ten of them).</exception>
    /// <exception cref="InvalidDataException">A shard needed by the query is corrupt.</exception>
    public NdArray GetAttributes(ReadOnlySpan<ulong> ids, string key)
    {
        var a = Attribute(key);
        var found = new bool[ids.Length];
        var raw = new byte[ResultBytes(ids.Length, a)];
        int missing = Query(ids, a, raw, found);
        if (missing > 0) throw MissingIds(ids, found, missing, key);
        return Result(a, raw, ids.Length);
    }

    /// <summary>
    /// Like <see cref="GetAttributes"/>, but IDs that are not stored do not raise: their rows are zero
    /// and <paramref name="found"/> is false at their positions.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The attribute does not exist.</exception>
    public NdArray TryGetAttributes(ReadOnlySpan<ulong> ids, string key, out bool[] found)
    {
        var a = Attribute(key);
        found = new bool[ids.Length];
        var raw = new byte[ResultBytes(ids.Length, a)];
        Query(ids, a, raw, found);
        return Result(a, raw, ids.Length);
    }

    /// <summary>True if <paramref name="id"/> is stored.</summary>
    public bool Contains(ulong id)
    {
        int s = ShardOf(id);
        if (s < 0) return false;
        var v = MemoryMarshal.Cast<byte, ulong>(IdShard(s));
        int j = LowerBound(v, 0, id);
        return j < v.Length && v[j] == id;
    }

    /// <summary>The size of a query's result, refused above <see cref="ReadLimits.MaxArrayBytes"/> before it is allocated.</summary>
    private long ResultBytes(int n, AttributeInfo a)
    {
        long bytes = (long)n * a.RowBytes;
        if (bytes > _limits.MaxArrayBytes)
            throw new InvalidDataException($"{Path}: attribute '{a.Name}': " + ReadLimits.Exceeds($"the result for {n} IDs of {a.RowBytes}-byte rows", bytes, _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)));
        return bytes;
    }

    private int ShardOf(ulong id)
    {
        // Last shard whose range holds id (upstream: the last matching bucket wins).
        for (int s = _lo.Length - 1; s >= 0; s--)
            if (_lo[s] <= id && id <= _hi[s]) return s;
        return -1;
    }

    private NdArray Result(AttributeInfo a, byte[] raw, int n)
    {
        var shape = new long[a.Shape.Length];
        shape[0] = n;
        Array.Copy(a.Shape, 1, shape, 1, shape.Length - 1);
        return new NdArray(a.FileDType, shape, raw).ToNativeC();
    }

    private KeyNotFoundException MissingIds(ReadOnlySpan<ulong> ids, bool[] found, int missing, string key)
    {
        var listed = new List<string>();
        for (int i = 0; i < ids.Length && listed.Count < MaxListedMissing; i++)
            if (!found[i]) listed.Add(ids[i].ToString(CultureInfo.InvariantCulture));
        string more = missing > listed.Count ? $", ... ({missing} in all)" : "";
        return new KeyNotFoundException($"{Path}: attribute '{key}': {missing} of {ids.Length} queried IDs are not stored: {string.Join(", ", listed)}{more}");
    }

    /// <summary>
    /// Fills the rows of <paramref name="raw"/> (file byte order) and <paramref name="found"/> for
    /// the queried IDs: sorts the query once, then visits each shard at most once.
    /// </summary>
    /// <returns>The number of IDs not found.</returns>
    private int Query(ReadOnlySpan<ulong> ids, AttributeInfo a, Span<byte> raw, Span<bool> found)
    {
        int n = ids.Length;
        if (n == 0) return 0;
        var keys = new ulong[n];
        var order = new int[n];
        ids.CopyTo(keys);
        bool sorted = true;
        for (int i = 0; i < n; i++)
        {
            order[i] = i;
            if (i > 0 && keys[i] < keys[i - 1]) sorted = false;
        }
        if (!sorted) Array.Sort(keys, order);

        int hits = 0;
        int pos = 0;
        int rb = a.RowBytes;
        for (int s = 0; s < _lo.Length && pos < n; s++)
        {
            ulong lo = _lo[s], hi = _hi[s];
            bool hasNext = s + 1 < _lo.Length;
            ulong nextLo = hasNext ? _lo[s + 1] : 0;
            while (pos < n && keys[pos] < lo) pos++;            // below this shard and after the previous one: not stored
            int start = pos;
            while (pos < n && keys[pos] <= hi && !(hasNext && keys[pos] >= nextLo)) pos++;
            if (pos == start) continue;
            var shardIds = MemoryMarshal.Cast<byte, ulong>(IdShard(s));
            var qKeys = keys.AsSpan(start, pos - start);
            var qOrder = order.AsSpan(start, pos - start);
            if (qKeys.Length * PartialReadFactor < shardIds.Length && !_cache.TryGet(AttributeCacheKey(a, s), out _))
            {
                // Few rows of a shard that is not cached: read only those rows (as h5py's fancy indexing does).
                var at = new int[qKeys.Length];
                var wanted = new List<int>();
                int j = 0;
                for (int q = 0; q < qKeys.Length; q++)
                {
                    j = LowerBound(shardIds, j, qKeys[q]);
                    at[q] = j < shardIds.Length && shardIds[j] == qKeys[q] ? j : -1;
                    if (at[q] >= 0 && (wanted.Count == 0 || wanted[^1] != j)) wanted.Add(j);
                }
                var rows = ReadRows(a, s, shardIds.Length, wanted);
                int w = -1, last = -1;
                for (int q = 0; q < qKeys.Length; q++)
                {
                    if (at[q] < 0) continue;
                    if (at[q] != last) { w++; last = at[q]; }
                    int o = qOrder[q];
                    found[o] = true;
                    hits++;
                    rows.AsSpan(w * rb, rb).CopyTo(raw.Slice(o * rb, rb));
                }
                continue;
            }
            ReadOnlySpan<byte> shardRows = AttributeShard(a, s);
            hits += Gather(qKeys, qOrder, shardIds, shardRows, rb, raw, found);
        }
        return n - hits;
    }

    private static int Gather(ReadOnlySpan<ulong> keys, ReadOnlySpan<int> order, ReadOnlySpan<ulong> shardIds,
        ReadOnlySpan<byte> rows, int rb, Span<byte> dst, Span<bool> found)
    {
        int hits = 0;
        int j = 0;
        ulong prev = 0;
        bool havePrev = false;
        for (int q = 0; q < keys.Length; q++)
        {
            ulong k = keys[q];
            if (!havePrev || k != prev)
            {
                j = LowerBound(shardIds, j, k);
                prev = k;
                havePrev = true;
            }
            if (j >= shardIds.Length || shardIds[j] != k) continue;
            int o = order[q];
            found[o] = true;
            hits++;
            switch (rb)
            {
                case 1: dst[o] = rows[j]; break;
                case 2: Unsafe.WriteUnaligned(ref dst[o * 2], Unsafe.ReadUnaligned<ushort>(in rows[j * 2])); break;
                case 4: Unsafe.WriteUnaligned(ref dst[o * 4], Unsafe.ReadUnaligned<uint>(in rows[j * 4])); break;
                case 8: Unsafe.WriteUnaligned(ref dst[o * 8], Unsafe.ReadUnaligned<ulong>(in rows[j * 8])); break;
                default: rows.Slice(j * rb, rb).CopyTo(dst.Slice(o * rb, rb)); break;
            }
        }
        return hits;
    }

    /// <summary>First index &gt;= <paramref name="from"/> whose value is &gt;= <paramref name="key"/> (galloping from <paramref name="from"/>).</summary>
    private static int LowerBound(ReadOnlySpan<ulong> v, int from, ulong key)
    {
        int n = v.Length;
        if (from >= n || v[from] >= key) return from;
        // v[from] < key: gallop to find hi with v[hi] >= key (or n).
        int lo = from, step = 1, hi = from + 1;
        while (hi < n && v[hi] < key)
        {
            lo = hi;
            step <<= 1;
            hi = lo + step;
        }
        if (hi > n) hi = n;
        // invariant: v[lo] < key, (hi == n or v[hi] >= key)
        while (hi - lo > 1)
        {
            int mid = lo + ((hi - lo) >> 1);
            if (v[mid] < key) lo = mid; else hi = mid;
        }
        return hi;
    }

    /// <summary>
    /// Splits a large query over <paramref name="threads"/> threads (upstream's <c>bss_get_attr_helper</c>):
    /// each thread answers a contiguous part of <paramref name="ids"/> with the store's shared shard cache.
    /// Same result and exceptions as <see cref="GetAttributes"/>.
    /// </summary>
    /// <param name="store">An open store.</param>
    /// <param name="ids">The query (not copied; must not change during the call).</param>
    /// <param name="key">The attribute.</param>
    /// <param name="threads">Number of threads; null for <see cref="Environment.ProcessorCount"/>.</param>
    public static NdArray GetAttributesParallel(BinarySearchStore store, ReadOnlyMemory<ulong> ids, string key, int? threads = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        int t = threads ?? Environment.ProcessorCount;
        if (t < 1) throw new ArgumentException("threads must be at least 1", nameof(threads));
        var a = store.Attribute(key);
        int n = ids.Length;
        const int MinPerThread = 16384;
        t = Math.Max(1, Math.Min(t, n / MinPerThread));
        if (t == 1) return store.GetAttributes(ids.Span, key);
        var found = new bool[n];
        var raw = new byte[checked((long)n * a.RowBytes)];
        int missing = 0;
        Parallel.For(0, t, new ParallelOptions { MaxDegreeOfParallelism = t }, part =>
        {
            int start = (int)((long)n * part / t), end = (int)((long)n * (part + 1) / t);
            int m = store.Query(ids.Span[start..end], a, raw.AsSpan(start * a.RowBytes, (end - start) * a.RowBytes), found.AsSpan(start, end - start));
            Interlocked.Add(ref missing, m);
        });
        if (missing > 0) throw store.MissingIds(ids.Span, found, missing, key);
        return store.Result(a, raw, n);
    }

    /// <summary>Opens the store at <paramref name="path"/>, runs <see cref="GetAttributesParallel(BinarySearchStore, ReadOnlyMemory{ulong}, string, int?)"/> and closes it.</summary>
    public static NdArray GetAttributesParallel(string path, ReadOnlyMemory<ulong> ids, string key, int? threads = null)
    {
        using var store = new BinarySearchStore(path);
        return GetAttributesParallel(store, ids, key, threads);
    }

    /// <summary>Drops all cached shards (the next queries read them again).</summary>
    public void ClearCache() => _cache.Clear();

    /// <summary>Bytes of shards currently cached.</summary>
    public long CachedBytes => _cache.Bytes;

    /// <summary>Closes the file and drops the cache. Must not overlap other calls on this instance.</summary>
    public void Dispose()
    {
        lock (_fileGate)
        {
            if (_disposed) return;
            _disposed = true;
            _file.Dispose();
        }
        _cache.Clear();
    }
}

/// <summary>
/// The file under the HDF5 reader: counts what is read since the last <see cref="Arm"/> and refuses to go on past the budget, so that
/// a damaged file whose structures form a cycle (which PureHDF would follow for ever) ends in an InvalidDataException naming the file.
/// </summary>
internal sealed class ReadBudgetStream(FileStream inner, string path) : Stream
{
    private long _budget = long.MaxValue;
    private long _used;
    private string _what = "";

    /// <summary>Starts a new budget of <paramref name="bytes"/> for reading <paramref name="what"/>.</summary>
    public void Arm(long bytes, string what)
    {
        _used = 0;
        _budget = bytes;
        _what = what;
    }

    private void Count(int n)
    {
        // Every call counts, so that a loop of empty reads is caught too.
        _used += n + 1;
        if (_used > _budget)
            throw new InvalidDataException($"{path}: reading {_what} made the HDF5 reader read more than {_budget} bytes; the file's structures point in a cycle (damaged file)");
    }

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => false;
    public override long Length => inner.Length;
    public override long Position { get => inner.Position; set => Seek(value, SeekOrigin.Begin); }
    public override void Flush() { }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        // At or past the end (a damaged address far beyond it makes the file system refuse the read with a bare IOException).
        int n = inner.Position >= inner.Length ? 0 : inner.Read(buffer);
        Count(n);
        return n;
    }

    public override long Seek(long offset, SeekOrigin origin)
    {
        long target = origin switch
        {
            SeekOrigin.Begin => offset,
            SeekOrigin.Current => inner.Position + offset,
            _ => inner.Length + offset,
        };
        // A damaged address can be anything; the file system refuses negative ones with a bare IOException.
        if (target < 0 || (origin != SeekOrigin.Begin && ((offset > 0 && target < inner.Position) || (offset < 0 && target > inner.Length))))
            throw new InvalidDataException($"{path}: reading {_what}, the HDF5 reader was sent to offset {(ulong)target} (from {origin} {offset}), outside the {inner.Length}-byte file (damaged address)");
        return inner.Seek(target, SeekOrigin.Begin);
    }
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
