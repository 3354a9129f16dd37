using System.Buffers;
using System.Globalization;
using System.Runtime.InteropServices;
using PureHDF;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

public sealed partial class BinarySearchStore
{
    /// <summary>The default number of shards (upstream's default).</summary>
    public const int DefaultShards = 5;

    /// <summary>
    /// Builds a store file like upstream's constructor: the IDs are sorted, every attribute's rows
    /// follow their IDs, and IDs and rows are split into <paramref name="nShards"/> shards with numpy's
    /// <c>array_split</c> rule (the first <c>len % n</c> shards are one row longer). The file is written
    /// through <see cref="AtomicFile"/>: to a temp file beside its final name, fsynced (unless
    /// <paramref name="durable"/> is false) and renamed into place, so a failed build leaves no partial
    /// file and an existing store stays as it was.
    /// </summary>
    /// <param name="path">The <c>.h5</c> file to write.</param>
    /// <param name="ids">The object IDs, in any order; they must be unique.</param>
    /// <param name="attributes">Per attribute name, an array whose first dimension is <c>ids.Length</c>
    /// (any trailing shape). Supported dtypes: bool, signed and unsigned integers of 1–8 bytes,
    /// float32, float64. A big-endian array is stored in native order and its <c>dtype</c> attribute
    /// names the native type. The name <c>ids</c> is reserved.</param>
    /// <param name="nShards">Number of shards, 1 to <c>ids.Length</c>.</param>
    /// <param name="overwrite">Replace an existing file; without it an existing file is refused, also one that
    /// appears while the store is built (the final rename does not replace it).</param>
    /// <param name="options">Options for the returned store.</param>
    /// <param name="durable">fsync the file and its folder before returning (default). False matches upstream
    /// (no fsync): still atomic, but after a power loss the file may be missing or old.</param>
    /// <returns>The new store, open for queries.</returns>
    /// <exception cref="ArgumentException">Duplicate IDs, no IDs, a bad shard count, a bad attribute name, an attribute of the wrong length or of an unsupported dtype.</exception>
    /// <exception cref="IOException">The file exists and <paramref name="overwrite"/> is false, or writing failed (nothing is left behind).</exception>
    /// <remarks>Memory: besides the inputs, the sorted IDs, a permutation (4 bytes per ID) and one
    /// reordered copy of each attribute; about 2.3x the inputs in all for a uint64 attribute.
    /// Thread-safety: a static method; concurrent builds of the same path race on the final rename (with
    /// <paramref name="overwrite"/> the last one wins, without it the first one does).</remarks>
    public static BinarySearchStore Create(string path, ReadOnlySpan<ulong> ids, IReadOnlyDictionary<string, NdArray> attributes,
        int nShards = DefaultShards, bool overwrite = false, BinarySearchStoreOptions? options = null, bool durable = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(attributes);
        int n = ids.Length;
        if (n == 0) throw new ArgumentException("a BinarySearchStore needs at least one ID", nameof(ids));
        if (nShards < 1) throw new ArgumentException($"n_shards must be at least 1, got {nShards}", nameof(nShards));
        if (nShards > n) throw new ArgumentException($"n_shards ({nShards}) is larger than the number of IDs ({n}): shards would be empty", nameof(nShards));
        var plans = new List<(string Name, NdArray Array, int RowBytes)>();
        foreach (var (name, arr) in attributes)
        {
            if (string.IsNullOrEmpty(name) || name == IdsGroup || name == "." || name.Contains('/', StringComparison.Ordinal))
                throw new ArgumentException($"'{name}' cannot be an attribute name (empty, '.', 'ids' or containing '/')", nameof(attributes));
            ArgumentNullException.ThrowIfNull(arr, nameof(attributes));
            if (arr.NDim == 0 || arr.Shape[0] != n)
                throw new ArgumentException($"attribute '{name}' has shape ({string.Join(", ", arr.ShapeArray)}); its first dimension must be the number of IDs ({n})", nameof(attributes));
            if (WriterElementType(arr.DType) is null)
                throw new ArgumentException($"attribute '{name}': dtype {arr.DType.Str} is not supported (bool, integers, float32, float64 are)", nameof(attributes));
            long row = arr.DType.ItemSize;
            for (int i = 1; i < arr.NDim; i++) row = checked(row * arr.Shape[i]);
            if (checked(row * n) > Array.MaxLength)
                throw new ArgumentException($"attribute '{name}' is larger than 2 GiB", nameof(attributes));
            plans.Add((name, arr, (int)row));
        }
        var full = System.IO.Path.GetFullPath(path);
        if (File.Exists(full) && !overwrite)
            throw new IOException($"{full} exists; pass overwrite: true to replace it");

        // Sort the IDs, remembering where each came from.
        var sortedIds = ids.ToArray();
        var perm = new int[n];
        bool isSorted = true;
        for (int i = 0; i < n; i++)
        {
            perm[i] = i;
            if (i > 0 && sortedIds[i] < sortedIds[i - 1]) isSorted = false;
        }
        if (!isSorted) Array.Sort(sortedIds, perm);
        for (int i = 1; i < n; i++)
            if (sortedIds[i] == sortedIds[i - 1])
                throw new ArgumentException($"IDs must be unique; {sortedIds[i].ToString(CultureInfo.InvariantCulture)} occurs more than once", nameof(ids));

        var sizes = new int[nShards];
        var starts = new int[nShards];
        for (int s = 0, at = 0; s < nShards; s++)
        {
            sizes[s] = n / nShards + (s < n % nShards ? 1 : 0);
            starts[s] = at;
            at += sizes[s];
        }

        var file = new H5File();
        var ranges = new ulong[nShards, 2];
        var idGroup = new H5Group();
        for (int s = 0; s < nShards; s++)
        {
            ranges[s, 0] = sortedIds[starts[s]];
            ranges[s, 1] = sortedIds[starts[s] + sizes[s] - 1];
            idGroup[s.ToString(CultureInfo.InvariantCulture)] =
                new H5Dataset(new Memory<ulong>(sortedIds, starts[s], sizes[s]), fileDims: [(ulong)sizes[s]]);
        }
        file[IdsGroup] = idGroup;

        foreach (var (name, arr, rowBytes) in plans)
        {
            var src = arr.ToNativeC();
            var reordered = Permute(src.Data.Span, perm, rowBytes, isSorted);
            var group = new H5Group();
            group.Attributes["shape"] = arr.ShapeArray;
            group.Attributes["dtype"] = src.DType.Str;
            var trailing = arr.ShapeArray.Skip(1).Select(d => (ulong)d).ToArray();
            long rowElems = rowBytes / Math.Max(1, src.DType.ItemSize);
            for (int s = 0; s < nShards; s++)
            {
                var dims = new ulong[1 + trailing.Length];
                dims[0] = (ulong)sizes[s];
                trailing.CopyTo(dims, 1);
                group[s.ToString(CultureInfo.InvariantCulture)] =
                    ShardDataset(reordered, src.DType, (int)(starts[s] * rowElems), (int)(sizes[s] * rowElems), dims);
            }
            file[name] = group;
        }
        file.Attributes["bucket_ranges"] = ranges;

        try
        {
            AtomicFile.Write(full, s => file.Write(s), durable, overwrite);
        }
        catch (IOException e) when (!overwrite && e.HResult == Posix.EEXIST)
        {
            throw new IOException($"{full} appeared while the store was built; pass overwrite: true to replace it", e);
        }
        return new BinarySearchStore(full, options);
    }

    /// <summary>Rows of <paramref name="src"/> in the order given by <paramref name="perm"/>.</summary>
    private static byte[] Permute(ReadOnlySpan<byte> src, int[] perm, int rowBytes, bool identity)
    {
        var dst = GC.AllocateUninitializedArray<byte>(src.Length);
        if (identity) { src.CopyTo(dst); return dst; }
        switch (rowBytes)
        {
            case 1: PermuteTyped(src, perm, MemoryMarshal.Cast<byte, byte>(dst.AsSpan())); break;
            case 2: PermuteTyped(MemoryMarshal.Cast<byte, ushort>(src), perm, MemoryMarshal.Cast<byte, ushort>(dst.AsSpan())); break;
            case 4: PermuteTyped(MemoryMarshal.Cast<byte, uint>(src), perm, MemoryMarshal.Cast<byte, uint>(dst.AsSpan())); break;
            case 8: PermuteTyped(MemoryMarshal.Cast<byte, ulong>(src), perm, MemoryMarshal.Cast<byte, ulong>(dst.AsSpan())); break;
            default:
                for (int i = 0; i < perm.Length; i++)
                    src.Slice(perm[i] * rowBytes, rowBytes).CopyTo(dst.AsSpan(i * rowBytes, rowBytes));
                break;
        }
        return dst;
    }

    private static void PermuteTyped<T>(ReadOnlySpan<T> src, int[] perm, Span<T> dst) where T : unmanaged
    {
        for (int i = 0; i < perm.Length; i++) dst[i] = src[perm[i]];
    }

    /// <summary>HDF5 enum that h5py reads as numpy bool (members FALSE = 0, TRUE = 1).</summary>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("Naming", "CA1707", Justification = "Member names are the HDF5 enum names h5py looks for.")]
    internal enum H5Bool : byte
    {
        FALSE = 0,
        TRUE = 1,
    }

    private static Type? WriterElementType(DType dt) => (dt.Kind, dt.ItemSize) switch
    {
        ('b', 1) => typeof(H5Bool),
        ('i', 1) => typeof(sbyte),
        ('u', 1) => typeof(byte),
        ('i', 2) => typeof(short),
        ('u', 2) => typeof(ushort),
        ('i', 4) => typeof(int),
        ('u', 4) => typeof(uint),
        ('i', 8) => typeof(long),
        ('u', 8) => typeof(ulong),
        ('f', 4) => typeof(float),
        ('f', 8) => typeof(double),
        _ => null,
    };

    private static H5Dataset ShardDataset(byte[] data, DType dt, int startElem, int countElem, ulong[] dims) => (dt.Kind, dt.ItemSize) switch
    {
        ('b', 1) => Make<H5Bool>(data, startElem, countElem, dims),
        ('i', 1) => Make<sbyte>(data, startElem, countElem, dims),
        ('u', 1) => Make<byte>(data, startElem, countElem, dims),
        ('i', 2) => Make<short>(data, startElem, countElem, dims),
        ('u', 2) => Make<ushort>(data, startElem, countElem, dims),
        ('i', 4) => Make<int>(data, startElem, countElem, dims),
        ('u', 4) => Make<uint>(data, startElem, countElem, dims),
        ('i', 8) => Make<long>(data, startElem, countElem, dims),
        ('u', 8) => Make<ulong>(data, startElem, countElem, dims),
        ('f', 4) => Make<float>(data, startElem, countElem, dims),
        ('f', 8) => Make<double>(data, startElem, countElem, dims),
        _ => throw new ArgumentException($"dtype {dt.Str} is not supported by the writer"),
    };

    private static H5Dataset Make<T>(byte[] data, int startElem, int countElem, ulong[] dims) where T : unmanaged =>
        new(new ByteMemory<T>(data).Memory.Slice(startElem, countElem), fileDims: dims);

    /// <summary>A typed view of a byte array as <see cref="Memory{T}"/> (no copy).</summary>
    private sealed class ByteMemory<T>(byte[] bytes) : MemoryManager<T> where T : unmanaged
    {
        public override Span<T> GetSpan() => MemoryMarshal.Cast<byte, T>(bytes.AsSpan());

        public override unsafe MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(bytes, GCHandleType.Pinned);
            return new MemoryHandle((byte*)handle.AddrOfPinnedObject() + (long)elementIndex * sizeof(T), handle, this);
        }

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}
