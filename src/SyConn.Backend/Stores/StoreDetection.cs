using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Stores;

/// <summary>What a file is, told from its first bytes (not from its name).</summary>
public enum StoreFileKind
{
    /// <summary>There is no such file.</summary>
    Missing,

    /// <summary>The file has no bytes.</summary>
    Empty,

    /// <summary>A pickle (protocol 2 to 5, or a protocol 0/1 dict): SyConn's <c>.pkl</c> stores.</summary>
    Pickle,

    /// <summary>A zip archive: a numpy <c>.npz</c> (VoxelStorageLazyLoading) or a KNOSSOS cube.</summary>
    Zip,

    /// <summary>An HDF5 file: a BinarySearchStore.</summary>
    Hdf5,

    /// <summary>None of these (a text file, for example).</summary>
    Other,
}

/// <summary>The store class told from a store's content, and why.</summary>
/// <param name="Class">The class (VoxelStorageClass stores are reported as <see cref="StoreClass.VoxelStorageL"/>: they share one format);
/// null when the content and the file name cannot decide (pass the class explicitly then).</param>
/// <param name="Reason">Why: what in the file decided it, or why nothing could.</param>
/// <param name="Kind">The file kind (<see cref="StoreFileKind.Pickle"/> for a store read through another backend).</param>
public sealed record DetectedStore(StoreClass? Class, string Reason, StoreFileKind Kind);

/// <summary>
/// Tells a store's class from its content, as the command line does without <c>--as</c>: the file kind first
/// (zip: VoxelStorageLazyLoading, HDF5: BinarySearchStore, pickle otherwise), then the layout of the entries
/// (formats.md §5: a VoxelStorageDyn store has its <c>meta</c> helper key; CompressedStorage entries are
/// <c>{'arr': [blocks], 'sh', 'dt'}</c> dicts; VoxelStorageL entries hold a list of block lists and <c>'off'</c>;
/// a skeleton entry is <c>[nodes, diameters, edges, extras dict]</c>; a mesh entry is a list of 2 to 4 arrays or
/// block lists; anything else is an AttributeDict value), and only where the content cannot decide, SyConn's
/// file names (<c>attr_dict*.pkl</c>, <c>mesh*.pkl</c>, <c>skeleton*.pkl</c>, <c>voxel*.pkl</c>,
/// <c>compressed*.pkl</c>).
/// </summary>
/// <remarks>Reads the file without locking and never writes. Thread-safe (stateless).</remarks>
public static class StoreDetection
{
    /// <summary>How many entries are looked at to decide (spread over the store: first, last and evenly between).</summary>
    public const int SampleSize = 64;

    private static ReadOnlySpan<byte> Hdf5Magic => [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];

    /// <summary>The kind of <paramref name="path"/> from its first bytes (HDF5 also after a user block of 512, 1024, ... bytes).</summary>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static StoreFileKind FileKindOf(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) return StoreFileKind.Missing;
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1, FileOptions.None);
        Span<byte> head = stackalloc byte[8];
        int n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (n == 0) return StoreFileKind.Empty;
        var kind = FileKindOf(head[..n]);
        if (kind != StoreFileKind.Other) return kind;
        // HDF5 allows a user block before the superblock (512 bytes, then powers of two).
        for (long at = 512; at + 8 <= fs.Length && at <= 1L << 20; at *= 2)
        {
            fs.Position = at;
            if (fs.ReadAtLeast(head, 8, throwOnEndOfStream: false) == 8 && head.SequenceEqual(Hdf5Magic)) return StoreFileKind.Hdf5;
        }
        return StoreFileKind.Other;
    }

    /// <summary>The kind of a file from its first bytes (8 suffice).</summary>
    public static StoreFileKind FileKindOf(ReadOnlySpan<byte> head)
    {
        if (head.Length == 0) return StoreFileKind.Empty;
        if (head.Length >= 4 && head[0] == 'P' && head[1] == 'K' && ((head[2] == 3 && head[3] == 4) || (head[2] == 5 && head[3] == 6))) return StoreFileKind.Zip;
        if (head.Length >= 8 && head[..8].SequenceEqual(Hdf5Magic)) return StoreFileKind.Hdf5;
        // PROTO 2..5; a protocol 0 dict starts with MARK '(' ('(dp0'), a protocol 1 dict with EMPTY_DICT '}'.
        if (head[0] == 0x80 && head.Length >= 2 && head[1] is >= 2 and <= 5) return StoreFileKind.Pickle;
        if (head[0] == '}' || (head[0] == '(' && head.Length >= 2 && head[1] == 'd')) return StoreFileKind.Pickle;
        return StoreFileKind.Other;
    }

    /// <summary>A short description of a file kind for messages (<c>an npz (zip) archive</c>, ...).</summary>
    public static string Describe(StoreFileKind kind) => kind switch
    {
        StoreFileKind.Missing => "missing",
        StoreFileKind.Empty => "an empty file (0 bytes)",
        StoreFileKind.Pickle => "a pickle file",
        StoreFileKind.Zip => "a zip (npz) archive",
        StoreFileKind.Hdf5 => "an HDF5 file",
        _ => "not a pickle, npz or HDF5 file",
    };

    /// <summary>The file kind a store of class <paramref name="cls"/> lives in.</summary>
    public static StoreFileKind KindOfClass(StoreClass cls) => cls switch
    {
        StoreClass.VoxelStorageLazyLoading => StoreFileKind.Zip,
        StoreClass.BinarySearchStore => StoreFileKind.Hdf5,
        _ => StoreFileKind.Pickle,
    };

    /// <summary>
    /// Checks that the file at <paramref name="path"/> is of the kind a store of class <paramref name="cls"/> lives in
    /// (a missing file passes: it is an empty store).
    /// </summary>
    /// <exception cref="InvalidDataException">It is not, or it is empty (names the file, its kind and what was expected).</exception>
    public static void RequireKind(string path, StoreClass cls)
    {
        var kind = FileKindOf(path);
        var expected = KindOfClass(cls);
        if (kind == StoreFileKind.Missing || kind == expected) return;
        throw new InvalidDataException($"{path}: {Describe(kind)}{Head(path, kind)}, not {Describe(expected)} as a {cls} store is");
    }

    private static string Head(string path, StoreFileKind kind)
    {
        if (kind != StoreFileKind.Other) return "";
        try
        {
            using var fs = File.OpenRead(path);
            Span<byte> b = stackalloc byte[8];
            int n = fs.ReadAtLeast(b, 8, throwOnEndOfStream: false);
            return $" (it starts with {Convert.ToHexString(b[..n]).ToLowerInvariant()})";
        }
        catch (IOException)
        {
            return "";
        }
    }

    /// <summary>
    /// Tells the class of the store file at <paramref name="path"/>. A VoxelStorageDyn store is named by its
    /// <c>.pkl</c> file; its <c>.npz</c> voxel cache alone is a VoxelStorageLazyLoading.
    /// </summary>
    /// <param name="path">A store file.</param>
    /// <param name="options">Read limits (null: defaults).</param>
    /// <exception cref="FileNotFoundException">There is no such file.</exception>
    /// <exception cref="InvalidDataException">The file is empty, corrupt, or neither a pickle, an npz nor an HDF5 file.</exception>
    public static DetectedStore Detect(string path, StoreOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var kind = FileKindOf(path);
        switch (kind)
        {
            case StoreFileKind.Missing: throw new FileNotFoundException("no such file", path);
            case StoreFileKind.Empty: throw new InvalidDataException($"{path}: an empty file (0 bytes) is not a pickle (upstream reads it as an empty store; give --as to say which)");
            case StoreFileKind.Other: throw new InvalidDataException($"{path}: not a pickle file{Head(path, kind)} (nor an npz or HDF5 file)");
            case StoreFileKind.Zip: return new DetectedStore(StoreClass.VoxelStorageLazyLoading, "a zip archive (numpy .npz): VoxelStorageLazyLoading", kind);
            case StoreFileKind.Hdf5: return new DetectedStore(StoreClass.BinarySearchStore, "an HDF5 file: BinarySearchStore", kind);
        }
        using var store = EntryStores.Pickle(path);
        store.Load(options ?? StoreOptions.Default);
        return Detect(store, Path.GetFileName(path));
    }

    /// <summary>
    /// Tells the class of a loaded pickle-kind entry store (a <c>.pkl</c> file or a <c>bt:</c> store) from its
    /// entries, with <paramref name="fileName"/> (null: none) to break a tie.
    /// </summary>
    /// <param name="loaded">An entry store after <see cref="IEntryStore.Load"/>.</param>
    /// <param name="fileName">The store's file name, for SyConn's naming; null for a store that has none.</param>
    /// <exception cref="InvalidDataException">An entry cannot be read.</exception>
    public static DetectedStore Detect(IEntryStore loaded, string? fileName)
    {
        ArgumentNullException.ThrowIfNull(loaded);
        if (loaded.Kind == EntryStoreKind.Npz)
            return new DetectedStore(StoreClass.VoxelStorageLazyLoading, "an array store (npz): VoxelStorageLazyLoading", StoreFileKind.Zip);
        var byName = FromName(fileName);
        string NameNote(StoreClass decided) => byName is not { } n ? "" : n == decided ? "; the file name agrees" : $"; the content decides over the file name '{fileName}', which would say {n}";

        // VoxelStorageDyn: its constructor always adds the helper keys, 'meta' first.
        if (loaded.ContainsKey("meta") && loaded.TryRead("meta", out var meta) && meta is PyDict md && md.ContainsKey("voxeldata_path"))
        {
            var objects = Sample(loaded, skipHelpers: true);
            int boxes = objects.Count(e => Classify(e.Value).HasFlag(Fits.Compressed) && IsBoxes(e.Value));
            string path = md["voxeldata_path"] is string s ? $"'{s}'" : "None";
            return new DetectedStore(StoreClass.VoxelStorageDyn,
                $"has VoxelStorageDyn's helper key 'meta' (voxeldata_path {path}); {boxes} of {objects.Count} sampled object entries are (N, 2, 3) boxes in the CompressedStorage layout",
                StoreFileKind.Pickle);
        }

        var sample = Sample(loaded, skipHelpers: false);
        if (sample.Count == 0)
        {
            return byName is { } c
                ? new DetectedStore(c, $"an empty store: the file name '{fileName}' says {c}", StoreFileKind.Pickle)
                : new DetectedStore(null, fileName is null ? "an empty store: nothing tells its class" : $"an empty store with a file name ('{fileName}') that names no store class", StoreFileKind.Pickle);
        }

        var common = Fits.All;
        foreach (var e in sample) common &= Classify(e.Value);
        string of = sample.Count == 1 && loaded.Count == 1 ? "the only entry" : sample.Count == loaded.Count ? $"all {sample.Count} entries" : $"{sample.Count} sampled of {loaded.Count} entries";
        string have = sample.Count == 1 && loaded.Count == 1 ? "has" : "have", are = sample.Count == 1 && loaded.Count == 1 ? "is" : "are", fit = sample.Count == 1 && loaded.Count == 1 ? "fits" : "fit";
        var typed = common & ~Fits.Attribute;
        var candidates = Enum.GetValues<Fits>().Where(f => f is not (Fits.None or Fits.All or Fits.Attribute) && typed.HasFlag(f)).Select(ClassOf).ToList();
        if (candidates.Count == 1)
            return new DetectedStore(candidates[0], $"{of} {have} the {candidates[0]} layout ({Layout(candidates[0])}){NameNote(candidates[0])}", StoreFileKind.Pickle);
        if (candidates.Count > 1)
        {
            if (byName is { } c && candidates.Contains(c))
                return new DetectedStore(c, $"{of} {fit} both {string.Join(" and ", candidates)}; the file name '{fileName}' says {c}", StoreFileKind.Pickle);
            return new DetectedStore(null, $"{of} {fit} {string.Join(" and ", candidates)} alike and the file name does not decide", StoreFileKind.Pickle);
        }
        bool attrs = sample.All(e => e.Value is PyDict d && d.Keys.All(k => k is string));
        return new DetectedStore(StoreClass.AttributeDict,
            (attrs ? $"{of} {are} dicts of attributes" : $"{of} {fit} no typed store layout (an AttributeDict holds any value)") + NameNote(StoreClass.AttributeDict),
            StoreFileKind.Pickle);
    }

    /// <summary>
    /// True when the raw entry <paramref name="raw"/> has the layout a store of class <paramref name="cls"/> keeps
    /// (structure only: no block is decompressed). Any value fits an AttributeDict.
    /// </summary>
    public static bool Matches(StoreClass cls, object raw)
    {
        var f = Classify(raw);
        return cls switch
        {
            StoreClass.AttributeDict => true,
            StoreClass.CompressedStorage or StoreClass.VoxelStorageDyn => f.HasFlag(Fits.Compressed),
            StoreClass.VoxelStorageL or StoreClass.VoxelStorageClass => f.HasFlag(Fits.Voxels),
            StoreClass.MeshStorage => f.HasFlag(Fits.Mesh),
            StoreClass.SkeletonStorage => f.HasFlag(Fits.Skeleton),
            StoreClass.VoxelStorageLazyLoading => raw is NdArray,
            _ => false,
        };
    }

    /// <summary>The class SyConn's file naming implies for a <c>.pkl</c> name (null: none).</summary>
    public static StoreClass? FromName(string? fileName)
    {
        if (string.IsNullOrEmpty(fileName)) return null;
        var name = Path.GetFileName(fileName).ToLowerInvariant();
        if (!name.EndsWith(".pkl", StringComparison.Ordinal)) return null;
        if (name.StartsWith("attr_dict", StringComparison.Ordinal)) return StoreClass.AttributeDict;
        if (name.StartsWith("mesh", StringComparison.Ordinal)) return StoreClass.MeshStorage;
        if (name.StartsWith("skeleton", StringComparison.Ordinal)) return StoreClass.SkeletonStorage;
        if (name.StartsWith("voxel", StringComparison.Ordinal)) return StoreClass.VoxelStorageL;
        if (name.StartsWith("compressed", StringComparison.Ordinal)) return StoreClass.CompressedStorage;
        return null;
    }

    [Flags]
    private enum Fits
    {
        None = 0,
        Attribute = 1,
        Compressed = 2,
        Voxels = 4,
        Mesh = 8,
        Skeleton = 16,
        All = Attribute | Compressed | Voxels | Mesh | Skeleton,
    }

    private static StoreClass ClassOf(Fits f) => f switch
    {
        Fits.Compressed => StoreClass.CompressedStorage,
        Fits.Voxels => StoreClass.VoxelStorageL,
        Fits.Mesh => StoreClass.MeshStorage,
        Fits.Skeleton => StoreClass.SkeletonStorage,
        _ => StoreClass.AttributeDict,
    };

    private static string Layout(StoreClass c) => c switch
    {
        StoreClass.CompressedStorage => "dicts of 'arr' block list, 'sh', 'dt'",
        StoreClass.VoxelStorageL => "dicts of 'arr' list of block lists, 'sh' list of shapes, 'dt', 'off'",
        StoreClass.MeshStorage => "lists of 2 to 4 arrays or block lists",
        StoreClass.SkeletonStorage => "lists of nodes, diameters, edges block lists and an extras dict",
        _ => "any value",
    };

    /// <summary>Up to <see cref="SampleSize"/> entries spread over the store (object entries only when <paramref name="skipHelpers"/>).</summary>
    private static List<KeyValuePair<object, object>> Sample(IEntryStore store, bool skipHelpers)
    {
        var keys = store.Keys.Where(k => !skipHelpers || k is not string s || !VoxelStorageDyn.HelperKeys.Contains(s)).ToList();
        var picked = new List<object>();
        if (keys.Count <= SampleSize) picked = keys;
        else
            for (int i = 0; i < SampleSize; i++) picked.Add(keys[(int)((long)i * (keys.Count - 1) / (SampleSize - 1))]);
        var result = new List<KeyValuePair<object, object>>(picked.Count);
        foreach (var k in picked)
        {
            StoreKey key;
            try { key = StoreKey.FromPython(k); }
            catch (ArgumentException) { continue; } // a key no store key can name is not looked at
            if (store.TryRead(key, out var v)) result.Add(new(k, v));
        }
        return result;
    }

    private static Fits Classify(object? raw)
    {
        var f = Fits.Attribute;
        switch (raw)
        {
            case PyDict d when d.Count >= 3 && d.TryGetValue("arr", out var arr) && d.TryGetValue("sh", out var sh) && d.TryGetValue("dt", out var dt) && IsDType(dt):
                if (arr is PyList al && IsBlockList(al) && IsIntSeq(sh)) f |= Fits.Compressed;
                if (arr is PyList vl && d.ContainsKey("off") && sh is PyList sl && vl.Count == sl.Count
                    && vl.All(x => x is PyList b && IsBlockList(b)) && sl.All(IsIntSeq)) f |= Fits.Voxels;
                break;
            case PyList l:
                if (l.Count is >= 2 and <= 4 && l.All(x => x is NdArray || (x is PyList b && IsBlockList(b)))) f |= Fits.Mesh;
                if (l.Count is 3 or 4 && l.Take(3).All(x => x is PyList b && IsBlockList(b)) && (l.Count == 3 || l[3] is PyDict)) f |= Fits.Skeleton;
                break;
        }
        return f;
    }

    private static bool IsBoxes(object raw) =>
        raw is PyDict d && d.TryGetValue("sh", out var sh) && sh is IReadOnlyList<object> { Count: 3 } s
        && PyInt.TryGetInt64(s[1], out var a) && a == 2 && PyInt.TryGetInt64(s[2], out var b) && b == 3;

    private static bool IsBlockList(PyList l) => l.All(x => x is PyBytes or PyByteArray or string { Length: 0 });

    private static bool IsIntSeq(object? o) => o is PyTuple or PyList && ((IEnumerable<object>)o).All(x => PyInt.TryGetInt64(x, out _));

    private static bool IsDType(object? o) => o is DType || (o is string s && DType.TryParse(s, out _));
}
