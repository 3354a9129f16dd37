using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;

namespace SyConn.Backend.Stores;

public partial class VoxelStorageDyn
{
    /// <summary>The segmentation dataset in voxel mode; null otherwise.</summary>
    public KnossosDataset? Dataset { get; private set; }

    /// <summary>True when the store was opened in voxel mode (object masks are read from <see cref="Dataset"/>).</summary>
    public bool VoxelMode => Dataset is not null;

    /// <summary>
    /// The dataset path voxel mode uses: the constructor's, else the stored <c>meta['voxeldata_path']</c>. A relative
    /// path is tried against the store's folder first, then against the working directory.
    /// </summary>
    /// <exception cref="InvalidOperationException">Neither is set.</exception>
    public string ResolveVoxeldataPath()
    {
        var p = _voxeldataPathArg ?? VoxeldataPath;
        if (string.IsNullOrEmpty(p))
            throw new InvalidOperationException($"{Location}: voxel mode needs a segmentation dataset, but meta['voxeldata_path'] is None and none was given");
        if (Path.IsPathRooted(p)) return p;
        if (EntryStore.Folder is { } folder)
        {
            var besideStore = Path.GetFullPath(Path.Combine(folder, p));
            if (Directory.Exists(besideStore) || File.Exists(besideStore)) return besideStore;
        }
        return Path.GetFullPath(p);
    }

    private KnossosDataset RequireDataset() =>
        Dataset ?? throw new InvalidOperationException($"{Location}: open the store with voxelMode: true to read object voxels");

    /// <summary>
    /// The stored bounding boxes of an object as <c>[box][lo|hi][x|y|z]</c> (half-open boxes), read from the object's
    /// own entry in the pickle. Unlike <see cref="GetBoundingData"/> (upstream's getter, which returns the voxel-cache
    /// array for a key that has one) this never looks at the voxel cache: the cache holds voxel coordinates (upstream
    /// keeps a synapse's voxels there, an (N, 3) array) and the boxes stay in the pickle beside it, so voxel mode reads
    /// the masks of such a key from its boxes. Upstream's voxel mode iterates the cache's rows as if they were boxes
    /// and fails on such keys.
    /// </summary>
    /// <exception cref="KeyNotFoundException">The key has no entry in the pickle.</exception>
    /// <exception cref="InvalidDataException">The stored array is not of shape (N, 2, 3) with integer type.</exception>
    public long[][][] GetBoundingBoxes(StoreKey key)
    {
        if (!base.TryDecode(key, out var bb))
        {
            throw VoxelCache.ContainsKey(key)
                ? new KeyNotFoundException($"{Location}, key {key}: the key has a voxel cache entry in {NpzPath} but no bounding boxes in the pickle")
                : MissingKey(key);
        }
        if (!bb.DType.IsInteger || bb.NDim != 3 || bb.Shape[1] != 2 || bb.Shape[2] != 3)
            throw new InvalidDataException($"{Location}, key {key}: bounding data is {bb}, expected an (N, 2, 3) integer array");
        var v = bb.ToArray<long>(CastingRule.Unsafe);
        var boxes = new long[bb.Shape[0]][][];
        for (int i = 0; i < boxes.Length; i++)
            boxes[i] = [v.AsSpan(i * 6, 3).ToArray(), v.AsSpan(i * 6 + 3, 3).ToArray()];
        return boxes;
    }

    private static ulong ObjectId(StoreKey key) =>
        key.TryGetUInt64(out var id) ? id : throw new ArgumentException($"key {key} is not a uint64 object ID");

    /// <summary>
    /// upstream's <c>iter_voxelmask_offset</c>: for each stored box, the object's mask (bool, indexed [x][y][z], shape
    /// <c>hi - lo + 2*overlap</c>) and the box's lower corner. As upstream, the offsets are not shifted by the overlap.
    /// </summary>
    /// <exception cref="ArgumentException">A box has zero extent on an axis, or the key is not a uint64 ID.</exception>
    public IEnumerable<(NdArray Mask, long[] Offset)> IterVoxelMaskOffset(StoreKey key, int overlap = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(overlap);
        var ds = RequireDataset();
        ulong id = ObjectId(key);
        foreach (var box in GetBoundingBoxes(key))
        {
            var lo = box[0];
            var hi = box[1];
            var offset = new Xyz(lo[0] - overlap, lo[1] - overlap, lo[2] - overlap);
            var size = new Xyz(hi[0] - lo[0] + 2 * overlap, hi[1] - lo[1] + 2 * overlap, hi[2] - lo[2] + 2 * overlap);
            yield return (ds.LoadMask(offset, size, id), lo);
        }
    }

    /// <summary>
    /// upstream's <c>get_voxelmask_offset</c> (and the voxel-mode getter): all masks of the object and the
    /// boxes' lower corners as an (N, 3) int64 array.
    /// </summary>
    public VoxelMasks GetVoxelMaskOffset(StoreKey key, int overlap = 0)
    {
        var items = IterVoxelMaskOffset(key, overlap).ToList();
        var offsets = new long[items.Count * 3];
        for (int i = 0; i < items.Count; i++) items[i].Offset.CopyTo(offsets, i * 3);
        return new VoxelMasks(items.Select(x => x.Mask).ToList(), NdArray.Create(offsets, items.Count, 3));
    }

    /// <summary>upstream's <c>get_voxeldata</c>: the masks and offsets without overlap.</summary>
    public VoxelMasks GetVoxelData(StoreKey key) => GetVoxelMaskOffset(key);

    /// <summary>
    /// upstream's <c>get_voxel_data_cubed</c>: one dense bool array (indexed [x][y][z]) spanning all boxes of the
    /// object, each box's mask assigned (not OR-ed) in box order, and its offset (the smallest lower corner; may be negative).
    /// </summary>
    public (NdArray Mask, long[] Offset) GetVoxelDataCubed(StoreKey key)
    {
        var items = IterVoxelMaskOffset(key).ToList();
        if (items.Count == 0) throw new InvalidDataException($"{Location}, key {key}: the object has no bounding boxes");
        var min = new long[3];
        var max = new long[3];
        for (int a = 0; a < 3; a++)
        {
            min[a] = items.Min(i => i.Offset[a]);
            max[a] = items.Max(i => i.Offset[a] + i.Mask.Shape[a]);
        }
        long sx = max[0] - min[0], sy = max[1] - min[1], sz = max[2] - min[2];
        var dense = new byte[checked(sx * sy * sz)];
        foreach (var (mask, off) in items)
        {
            var src = mask.Data.Span;
            long mx = mask.Shape[0], my = mask.Shape[1], mz = mask.Shape[2];
            long ox = off[0] - min[0], oy = off[1] - min[1], oz = off[2] - min[2];
            for (long x = 0; x < mx; x++)
                for (long y = 0; y < my; y++)
                    src.Slice((int)((x * my + y) * mz), (int)mz).CopyTo(dense.AsSpan((int)(((x + ox) * sy + (y + oy)) * sz + oz), (int)mz));
        }
        return (new NdArray(DType.Bool, [sx, sy, sz], dense), min);
    }
}

/// <summary>
/// SyConn's <c>VoxelStorage</c> factory: upstream it is <c>VoxelStorageDyn</c> with voxel mode on by default.
/// </summary>
public static class VoxelStorage
{
    /// <summary>Opens a <see cref="VoxelStorageDyn"/>, in voxel mode unless <paramref name="voxelMode"/> is false.</summary>
    public static VoxelStorageDyn Open(string path, StoreOptions? options = null, bool voxelMode = true, string? voxeldataPath = null, KnossosDatasetOptions? datasetOptions = null) =>
        new(path, StoreOptions.ForFactory(options), voxeldataPath, voxelMode, datasetOptions);
}
