using System.Buffers;
using System.Runtime.ExceptionServices;
using Microsoft.Win32.SafeHandles;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;

namespace SyConn.Backend.Storage.Knossos;

/// <summary>Options of a <see cref="KnossosDataset"/>.</summary>
public sealed class KnossosDatasetOptions
{
    /// <summary>
    /// Upper bound in bytes for decoded cubes kept in memory (least recently used cubes are dropped
    /// first). 0 turns the cache off (knossos_utils' default). Default: 512 MiB.
    /// </summary>
    public long CacheBytes { get; init; } = 512L << 20;

    /// <summary>How many cubes one <c>LoadSeg</c> call decodes at once. Default: the processor count.</summary>
    public int MaxDegreeOfParallelism { get; init; } = Environment.ProcessorCount;

    /// <summary>Read limits (the largest cube, <see cref="ReadLimits.MaxCubeBytes"/>); null for <see cref="ReadLimits.Default"/>.</summary>
    public ReadLimits? Limits { get; init; }
}

/// <summary>
/// Reads the mag-1 segmentation of a local KNOSSOS dataset with knossos_utils' <c>load_seg</c>
/// semantics (KNOSSOS spec §6): results are uint64 arrays indexed [z][y][x]; everything outside the
/// dataset boundary is 0, also where a boundary cube file stores data beyond it; a missing cube file
/// reads as zeros; a corrupt cube raises <see cref="InvalidDataException"/> naming the file.
/// </summary>
/// <remarks>
/// <para><b>Thread-safety:</b> all members may be called concurrently from several threads. Decoded cubes
/// are kept in a bounded LRU cache (<see cref="KnossosDatasetOptions.CacheBytes"/>) shared by all calls;
/// two calls that miss the same cube at the same moment may both decode it.</para>
/// <para><b>Staleness:</b> cached cubes (and cached "file missing" results) are not re-read when the
/// files change on disk; call <see cref="ClearCache"/> after writing to the dataset, or use a cache size
/// of 0.</para>
/// <para>Unlike syconn2, a dataset without a <c>mag1</c> folder reads as all zeros (knossos_utils master's
/// behaviour) instead of raising.</para>
/// </remarks>
public sealed class KnossosDataset : IDisposable
{
    private readonly KnossosDatasetOptions _options;
    private readonly ReadLimits _limits;
    private readonly int _cubeVoxels;
    private readonly ArrayPool<ulong> _pool;
    private readonly Lock _gate = new();
    private readonly Dictionary<(long, long, long), LinkedListNode<CacheEntry>> _cache = new();
    private readonly LinkedList<CacheEntry> _lru = new();
    private long _cachedBytes;
    private volatile bool _disposed;

    private sealed record CacheEntry((long, long, long) Key, ulong[]? Data, long Cost);

    /// <summary>Opens a dataset from its configuration. A relative <see cref="KnossosConfig.Root"/> is made
    /// absolute here, against the current working directory.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public KnossosDataset(KnossosConfig config, KnossosDatasetOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        _options = options ?? new KnossosDatasetOptions();
        if (_options.CacheBytes < 0) throw new ArgumentException("CacheBytes must be >= 0", nameof(options));
        if (_options.MaxDegreeOfParallelism < 1) throw new ArgumentException("MaxDegreeOfParallelism must be >= 1", nameof(options));
        _limits = (_options.Limits ?? ReadLimits.Default).Validate();
        long cubeBytes = config.CubeShape.Product * sizeof(ulong);
        if (cubeBytes > _limits.MaxCubeBytes)
            throw new InvalidDataException($"{config.ConfigPath ?? config.Root}: cube shape {config.CubeShape}: "
                + ReadLimits.Exceeds("a decoded cube", cubeBytes, _limits.MaxCubeBytes, nameof(ReadLimits.MaxCubeBytes)));
        Config = KnossosConfigFiles.MakeAbsolute(config);
        _cubeVoxels = (int)config.CubeShape.Product;
        _pool = ArrayPool<ulong>.Create(_cubeVoxels, Math.Max(2, _options.MaxDegreeOfParallelism * 2));
    }

    /// <summary>
    /// Opens a dataset from a config file or a dataset folder; see <see cref="KnossosConfigFiles.Open"/> for
    /// the resolution order (one <c>*.pyk.conf</c>, then one <c>*.k.toml</c>, then <c>mag1/knossos.conf</c>).
    /// </summary>
    /// <exception cref="FileNotFoundException">No dataset or config at <paramref name="path"/>.</exception>
    /// <exception cref="InvalidDataException">The config is malformed.</exception>
    /// <exception cref="NotSupportedException">The dataset is remote or neuroglancer-precomputed.</exception>
    public static KnossosDataset Open(string path, KnossosDatasetOptions? options = null) => new(KnossosConfigFiles.Open(path), options);

    /// <summary>The configuration this dataset was opened with (with an absolute root).</summary>
    public KnossosConfig Config { get; }

    /// <summary>The experiment name (used in cube file names).</summary>
    public string Name => Config.Name;

    /// <summary>The dataset extent at mag 1 (x, y, z).</summary>
    public Xyz Boundary => Config.Boundary;

    /// <summary>The cube shape (x, y, z).</summary>
    public Xyz CubeShape => Config.CubeShape;

    /// <summary>Voxel sizes in nm per mag; the first is mag 1.</summary>
    public IReadOnlyList<(double X, double Y, double Z)> Scales => Config.Scales;

    /// <summary>The absolute folder holding <c>mag1/</c>.</summary>
    public string Root => Config.Root;

    /// <summary>Bytes of decoded cubes currently cached.</summary>
    public long CachedBytes { get { lock (_gate) return _cachedBytes; } }

    /// <summary>Drops every cached cube.</summary>
    public void ClearCache()
    {
        lock (_gate)
        {
            _cache.Clear();
            _lru.Clear();
            _cachedBytes = 0;
        }
    }

    /// <summary>
    /// Loads the box <c>[offset, offset + size)</c> (x, y, z) as a new uint64 array of shape
    /// <c>(size_z, size_y, size_x)</c>, C order (x contiguous), like knossos_utils' <c>load_seg(…, mag=1)</c>.
    /// </summary>
    /// <param name="offset">Lower corner (x, y, z); may be negative.</param>
    /// <param name="size">Extent (x, y, z); every component must be positive.</param>
    /// <exception cref="ArgumentException">A size component is zero or negative, or the result would exceed 2 GiB.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The box lies wholly outside the dataset on some axis ("totally out of bounds").</exception>
    /// <exception cref="InvalidDataException">A cube file the box touches is corrupt.</exception>
    public NdArray LoadSeg(long[] offset, long[] size)
    {
        ArgumentNullException.ThrowIfNull(offset);
        ArgumentNullException.ThrowIfNull(size);
        return LoadSeg(Xyz.From(offset), Xyz.From(size));
    }

    /// <inheritdoc cref="LoadSeg(long[], long[])"/>
    public NdArray LoadSeg(Xyz offset, Xyz size)
    {
        int n = CheckedVoxelCount(size);
        var data = GC.AllocateUninitializedArray<ulong>(n);
        LoadSeg(offset, size, data);
        return NdArray.Wrap(data, size.Z, size.Y, size.X);
    }

    /// <summary>
    /// Loads the box <c>[offset, offset + size)</c> into <paramref name="destination"/>, which must hold
    /// exactly <c>size_x*size_y*size_z</c> values; it is fully overwritten in [z][y][x] C order.
    /// </summary>
    /// <exception cref="ArgumentException">A size component is not positive, or the destination length does not match.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The box lies wholly outside the dataset on some axis.</exception>
    /// <exception cref="InvalidDataException">A cube file the box touches is corrupt.</exception>
    public unsafe void LoadSeg(Xyz offset, Xyz size, Span<ulong> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int n = CheckedVoxelCount(size);
        if (destination.Length != n)
            throw new ArgumentException($"destination holds {destination.Length} values; a box of size {size} needs {n}", nameof(destination));
        var b = Boundary;
        Span<long> lo = stackalloc long[3], hi = stackalloc long[3];
        bool empty = false, padded = false;
        for (int a = 0; a < 3; a++)
        {
            long end = checked(offset[a] + size[a]);
            lo[a] = Math.Max(offset[a], 0);
            hi[a] = Math.Min(end, b[a]);
            if (hi[a] < lo[a])
                throw new ArgumentOutOfRangeException(nameof(offset),
                    $"the box at offset {offset} with size {size} is totally out of bounds of the dataset (boundary {b}) on axis {"xyz"[a]}");
            if (hi[a] == lo[a]) empty = true;
            if (lo[a] != offset[a] || hi[a] != end) padded = true;
        }
        if (empty || padded) destination.Clear();
        if (empty) return;

        var c = CubeShape;
        long i0 = lo[0] / c.X, i1 = (hi[0] - 1) / c.X;
        long j0 = lo[1] / c.Y, j1 = (hi[1] - 1) / c.Y;
        long k0 = lo[2] / c.Z, k1 = (hi[2] - 1) / c.Z;
        long ni = i1 - i0 + 1, nj = j1 - j0 + 1, nk = k1 - k0 + 1;
        long cubes = ni * nj * nk;
        var box = new Box(offset, size, new Xyz(lo[0], lo[1], lo[2]), new Xyz(hi[0], hi[1], hi[2]));

        fixed (ulong* p = destination)
        {
            nint ptr = (nint)p;
            void One(long idx)
            {
                long i = i0 + idx % ni, j = j0 + idx / ni % nj, k = k0 + idx / (ni * nj);
                FillFromCube(i, j, k, box, new Span<ulong>((void*)ptr, n));
            }
            int dop = (int)Math.Min(_options.MaxDegreeOfParallelism, cubes);
            if (dop <= 1)
            {
                for (long idx = 0; idx < cubes; idx++) One(idx);
            }
            else
            {
                try
                {
                    Parallel.For(0L, cubes, new ParallelOptions { MaxDegreeOfParallelism = dop }, One);
                }
                catch (AggregateException e) when (e.InnerExceptions.Count > 0)
                {
                    ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                    throw;
                }
            }
        }
    }

    /// <summary>
    /// The mask of one object in the box <c>[offset, offset + size)</c>, as SyConn's
    /// <c>VoxelStorageDyn.get_voxelmask_offset</c> builds it: <c>load_seg(…) == id</c> with axes 0 and 2
    /// swapped, i.e. a bool array of shape <c>(size_x, size_y, size_z)</c> indexed [x][y][z] (C order, z
    /// contiguous). Voxels outside the dataset are false.
    /// </summary>
    /// <exception cref="ArgumentException">A size component is not positive.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The box lies wholly outside the dataset on some axis.</exception>
    /// <exception cref="InvalidDataException">A cube file the box touches is corrupt.</exception>
    public NdArray LoadMask(Xyz offset, Xyz size, ulong id)
    {
        int n = CheckedVoxelCount(size);
        var seg = ArrayPool<ulong>.Shared.Rent(n);
        try
        {
            LoadSeg(offset, size, seg.AsSpan(0, n));
            var mask = new byte[n];
            int sx = (int)size.X, sy = (int)size.Y, sz = (int)size.Z;
            for (int z = 0; z < sz; z++)
            {
                for (int y = 0; y < sy; y++)
                {
                    var row = seg.AsSpan((z * sy + y) * sx, sx);
                    int baseIdx = y * sz + z, stride = sy * sz;
                    for (int x = 0; x < row.Length; x++)
                        if (row[x] == id) mask[baseIdx + x * stride] = 1;
                }
            }
            return new NdArray(DType.Bool, [size.X, size.Y, size.Z], mask);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(seg);
        }
    }

    /// <inheritdoc cref="LoadMask(Xyz, Xyz, ulong)"/>
    public NdArray LoadMask(long[] offset, long[] size, ulong id)
    {
        ArgumentNullException.ThrowIfNull(offset);
        ArgumentNullException.ThrowIfNull(size);
        return LoadMask(Xyz.From(offset), Xyz.From(size), id);
    }

    /// <summary>Drops the cache; later calls raise <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        _disposed = true;
        ClearCache();
    }

    // ---------------------------------------------------------------- internals

    private readonly record struct Box(Xyz Offset, Xyz Size, Xyz Lo, Xyz Hi);

    private static int CheckedVoxelCount(Xyz size)
    {
        if (size.X <= 0 || size.Y <= 0 || size.Z <= 0)
            throw new ArgumentException($"size {size} must be positive on every axis (a zero extent is an error, as in knossos_utils)", nameof(size));
        long n;
        try { n = size.Product; }
        catch (OverflowException) { n = long.MaxValue; }
        if (n > Array.MaxLength / sizeof(ulong))
            throw new ArgumentException($"a box of size {size} holds {n} voxels; at most {Array.MaxLength / sizeof(ulong)} fit in one array", nameof(size));
        return (int)n;
    }

    private void FillFromCube(long i, long j, long k, Box box, Span<ulong> dest)
    {
        var c = CubeShape;
        long ox = i * c.X, oy = j * c.Y, oz = k * c.Z;
        long x0 = Math.Max(box.Lo.X, ox), x1 = Math.Min(box.Hi.X, ox + c.X);
        long y0 = Math.Max(box.Lo.Y, oy), y1 = Math.Min(box.Hi.Y, oy + c.Y);
        long z0 = Math.Max(box.Lo.Z, oz), z1 = Math.Min(box.Hi.Z, oz + c.Z);
        int w = (int)(x1 - x0);
        long sx = box.Size.X, sy = box.Size.Y;

        ulong[]? data = AcquireCube(i, j, k, out bool pooled);
        try
        {
            for (long z = z0; z < z1; z++)
            {
                for (long y = y0; y < y1; y++)
                {
                    int dst = (int)((x0 - box.Offset.X) + sx * ((y - box.Offset.Y) + sy * (z - box.Offset.Z)));
                    var target = dest.Slice(dst, w);
                    if (data is null)
                    {
                        target.Clear();
                    }
                    else
                    {
                        int src = (int)((x0 - ox) + c.X * ((y - oy) + c.Y * (z - oz)));
                        data.AsSpan(src, w).CopyTo(target);
                    }
                }
            }
        }
        finally
        {
            if (pooled) _pool.Return(data!);
        }
    }

    /// <summary>The decoded cube, or null when its file does not exist. <paramref name="pooled"/>: return it to the pool after use.</summary>
    private ulong[]? AcquireCube(long i, long j, long k, out bool pooled)
    {
        pooled = false;
        var key = (i, j, k);
        bool useCache = _options.CacheBytes > 0;
        if (useCache)
        {
            lock (_gate)
            {
                if (_cache.TryGetValue(key, out var node))
                {
                    _lru.Remove(node);
                    _lru.AddFirst(node);
                    return node.Value.Data;
                }
            }
        }
        string path = Config.CubePath(i, j, k);
        ulong[]? data;
        long cubeBytes = (long)_cubeVoxels * sizeof(ulong);
        bool cacheIt = useCache && cubeBytes <= _options.CacheBytes;
        // A cube file is a zip of one Snappy member: larger than what Snappy can make of the cube plus zip overhead means damage.
        long maxFile = cubeBytes + cubeBytes / 6 + (1 << 20);
        if (!TryReadFile(path, maxFile, out var file, out int fileLen))
        {
            data = null;
        }
        else
        {
            try
            {
                if (cacheIt)
                {
                    data = GC.AllocateUninitializedArray<ulong>(_cubeVoxels);
                }
                else
                {
                    data = _pool.Rent(_cubeVoxels);
                    pooled = true;
                }
                try
                {
                    using var ms = new MemoryStream(file, 0, fileLen, writable: false);
                    KnossosCubeCodec.Decode(ms, data.AsSpan(0, _cubeVoxels), path, _limits);
                }
                catch
                {
                    if (pooled) { _pool.Return(data); pooled = false; }
                    throw;
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(file);
            }
        }
        if (useCache) Insert(key, cacheIt ? data : null, data is null ? 64 : cubeBytes, data is not null && !cacheIt);
        return data;
    }

    private void Insert((long, long, long) key, ulong[]? data, long cost, bool skip)
    {
        if (skip) return;
        lock (_gate)
        {
            if (_disposed || _cache.ContainsKey(key)) return;
            var node = _lru.AddFirst(new CacheEntry(key, data, cost));
            _cache[key] = node;
            _cachedBytes += cost;
            while (_cachedBytes > _options.CacheBytes && _lru.Last is { } last && last != node)
            {
                _lru.RemoveLast();
                _cache.Remove(last.Value.Key);
                _cachedBytes -= last.Value.Cost;
            }
        }
    }

    /// <summary>Reads a whole cube file into a rented buffer; false when the file (or its folder) does not exist.</summary>
    private static bool TryReadFile(string path, long maxLength, out byte[] buffer, out int length)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            buffer = [];
            length = 0;
            return false;
        }
        using (handle)
        {
            long len = RandomAccess.GetLength(handle);
            if (len > Math.Min(maxLength, int.MaxValue / 2))
                throw new InvalidDataException($"{path}: cube file of {len} bytes is larger than a zipped Snappy cube of this dataset can be (at most {Math.Min(maxLength, int.MaxValue / 2)} bytes)");
            length = (int)len;
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
            int read = 0;
            while (read < length)
            {
                int r = RandomAccess.Read(handle, buffer.AsSpan(read, length - read), read);
                if (r == 0) break;
                read += r;
            }
            length = read;
            return true;
        }
    }
}
