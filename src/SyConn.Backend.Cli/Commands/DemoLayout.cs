using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Where SyConn keeps the data of a segmentation object: <c>WD/&lt;type&gt;_&lt;version&gt;/so_storage_&lt;n_folders_fs&gt;/&lt;subfold&gt;/</c>
/// with upstream's <c>subfold_from_ix</c> (the new scheme, <c>use_new_subfold=True</c>, which
/// <c>generate_default_conf</c> writes): the ID divided by 1000 (<c>ix // 1e3</c>, in floating point as
/// upstream computes it), modulo <c>n_folders_fs</c>, zero-padded to log10(n_folders_fs) digits and cut into
/// folders of two digits (the last of one when the count of digits is odd).
/// </summary>
public static class SyConnLayout
{
    /// <summary>The folder of the supervoxel SegmentationDataset (type <c>sv</c>, version 0).</summary>
    public const string SegmentationDataset = "sv_0";

    /// <summary>The folder of the SuperSegmentationDataset (type <c>ssv</c>, version 0).</summary>
    public const string SuperSegmentationDataset = "ssv_0";

    /// <summary>The supervoxel-to-cell lookup of a SuperSegmentationDataset (<c>mapping_lookup_reverse_path</c>).</summary>
    public const string MappingLookupReverse = "mapping_lookup_reverse.h5";

    /// <summary>The segmentation's folder below the working directory (upstream's default <c>kd_seg</c>).</summary>
    public const string KnossosSegmentation = "knossosdatasets/seg";

    /// <summary>The file names of one storage folder, as <c>SegmentationObject</c> names them.</summary>
    public static readonly IReadOnlyList<string> ObjectFiles = ["attr_dict.pkl", "voxel.pkl", "voxel.npz", "mesh.pkl", "skeletons.pkl"];

    /// <summary><c>so_storage_path</c> of a new dataset, relative to the working directory.</summary>
    public static string SoStorage(int nFoldersFs) =>
        string.Create(CultureInfo.InvariantCulture, $"{SegmentationDataset}/so_storage_{nFoldersFs}");

    /// <summary>
    /// upstream's <c>subfold_from_ix_new(ix, n_folders)</c> without the leading and trailing slash, e.g.
    /// <c>"04/51"</c> for ID 451_332 and 10,000 folders.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="nFolders"/> is not 10, 100, ..., 100,000.</exception>
    public static string Subfold(ulong ix, int nFolders)
    {
        int order = Order(nFolders);
        long slot = (long)PyFloatMod(PyFloatFloorDiv(ix, 1e3), nFolders);
        string digits = slot.ToString(CultureInfo.InvariantCulture).PadLeft(order, '0');
        var sb = new StringBuilder();
        for (int i = 0; i < order; i += 2)
        {
            if (sb.Length > 0) sb.Append('/');
            sb.Append(digits, i, Math.Min(2, digits.Length - i));
        }
        return sb.ToString();
    }

    /// <summary>The storage folder of object <paramref name="ix"/>, relative to the working directory.</summary>
    public static string ObjectFolder(ulong ix, int nFolders) => SoStorage(nFolders) + "/" + Subfold(ix, nFolders);

    private static int Order(int nFolders)
    {
        int order = 0;
        for (long v = nFolders; v > 1; v /= 10)
        {
            if (v % 10 != 0) throw new ArgumentException($"n_folders_fs must be a power of ten from 10 to 100000, got {nFolders}", nameof(nFolders));
            order++;
        }
        if (order is < 1 or > 5) throw new ArgumentException($"n_folders_fs must be a power of ten from 10 to 100000, got {nFolders}", nameof(nFolders));
        return order;
    }

    /// <summary>Python's <c>int // float</c>: the int rounded to a double, then CPython's float floor division.</summary>
    private static double PyFloatFloorDiv(ulong ix, double w)
    {
        double v = ix;
        double mod = v % w;
        double div = (v - mod) / w;
        if (mod != 0 && (w < 0) != (mod < 0)) div -= 1.0;
        if (div == 0) return 0;
        double floor = Math.Floor(div);
        if (div - floor > 0.5) floor += 1.0;
        return floor;
    }

    /// <summary>Python's <c>float % int</c> for a non-negative left side.</summary>
    private static double PyFloatMod(double v, int w)
    {
        double mod = v % w;
        if (mod != 0 && (w < 0) != (mod < 0)) mod += w;
        return mod;
    }
}

/// <summary>
/// The demo's manifest, <c>syconn-demo.json</c>: what an earlier demo wrote (so a rerun can replace exactly
/// that) and what a checker may expect of each store.
/// </summary>
public static class DemoManifest
{
    /// <summary>The manifest's file name in the demo folder.</summary>
    public const string FileName = "syconn-demo.json";

    /// <summary>The field that marks a demo manifest; its value is the manifest version.</summary>
    public const string MarkerField = "syconn_store_demo";

    /// <summary>
    /// Makes <paramref name="dir"/> ready for a new demo: creates it when missing; when it holds an earlier demo,
    /// deletes the files that demo's manifest lists (and the folders that become empty); refuses a non-empty
    /// folder without a manifest, and one whose manifest would let the new demo replace files it does not list.
    /// Nothing is deleted before every check has passed. Returns how many files were deleted.
    /// </summary>
    /// <exception cref="InputException">The folder cannot take the demo; nothing in it was touched.</exception>
    public static int Prepare(string dir, IEnumerable<string> newFiles)
    {
        if (File.Exists(dir)) throw new InputException("is a file, not a folder for the demo", dir);
        if (!Directory.Exists(dir))
        {
            Directory.CreateDirectory(dir);
            return 0;
        }
        var manifestPath = Path.Combine(dir, FileName);
        bool empty = !Directory.EnumerateFileSystemEntries(dir).Any();
        if (empty) return 0;
        if (!File.Exists(manifestPath))
            throw new InputException($"folder is not empty and holds no earlier demo (no {FileName}); give an empty or new folder", dir);
        var old = ReadOwnedFiles(manifestPath);
        var owned = new HashSet<string>(old, StringComparer.Ordinal) { FileName };
        foreach (var f in newFiles)
        {
            if (!owned.Contains(f) && (File.Exists(Path.Combine(dir, f)) || Directory.Exists(Path.Combine(dir, f))))
                throw new InputException($"{f} exists but the earlier demo's {FileName} does not list it; not replacing it", dir);
        }
        foreach (var f in old)
        {
            if (ThroughLink(dir, f) is { } link)
                throw new InputException($"the earlier demo's {FileName} lists {f}, but {link} is a symbolic link; not following it", dir);
        }
        int deleted = 0;
        foreach (var f in old)
        {
            var p = Path.Combine(dir, f);
            if (!File.Exists(p)) continue;
            File.Delete(p);
            deleted++;
            RemoveEmptyParents(dir, Path.GetDirectoryName(p));
        }
        File.Delete(manifestPath);
        return deleted;
    }

    /// <summary>The relative file paths an earlier manifest lists, each checked to stay inside the demo folder.</summary>
    private static List<string> ReadOwnedFiles(string manifestPath)
    {
        JsonNode? doc;
        try
        {
            doc = JsonNode.Parse(File.ReadAllText(manifestPath));
        }
        catch (JsonException e)
        {
            throw new InputException($"not a demo manifest ({e.Message}); not touching the folder", manifestPath);
        }
        if (doc is not JsonObject o || o[MarkerField] is null || o["files"] is not JsonArray files)
            throw new InputException($"not a demo manifest (no '{MarkerField}' and 'files'); not touching the folder", manifestPath);
        var list = new List<string>();
        foreach (var item in files)
        {
            if (item is not JsonValue v || !v.TryGetValue<string>(out var rel) || !IsSafeRelative(rel))
                throw new InputException($"lists {item?.ToJsonString() ?? "null"}, which is not a path inside the demo folder; not touching the folder", manifestPath);
            list.Add(rel);
        }
        return list;
    }

    /// <summary>A relative path of plain names separated by '/', none of them '.' or '..'.</summary>
    internal static bool IsSafeRelative(string rel) =>
        rel.Length > 0 && !rel.StartsWith('/') && !rel.Contains('\\', StringComparison.Ordinal) && !rel.Contains('\0', StringComparison.Ordinal)
        && rel.Split('/').All(part => part.Length > 0 && part != "." && part != "..");

    /// <summary>The first folder on the way from <paramref name="root"/> to <paramref name="rel"/> that is a symbolic link, if any.</summary>
    private static string? ThroughLink(string root, string rel)
    {
        var parts = rel.Split('/');
        var p = root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            p = Path.Combine(p, parts[i]);
            var info = new DirectoryInfo(p);
            if (!info.Exists && !File.Exists(p)) return null;
            if (info.LinkTarget is not null || new FileInfo(p).LinkTarget is not null) return Path.GetRelativePath(root, p);
        }
        return null;
    }

    private static void RemoveEmptyParents(string root, string? folder)
    {
        var top = Path.GetFullPath(root).TrimEnd('/');
        for (var d = folder is null ? null : Path.GetFullPath(folder).TrimEnd('/'); d is not null && d.Length > top.Length && d.StartsWith(top + "/", StringComparison.Ordinal); d = Path.GetDirectoryName(d))
        {
            if (!Directory.Exists(d) || Directory.EnumerateFileSystemEntries(d).Any()) return;
            Directory.Delete(d);
        }
    }

    /// <summary>Writes the manifest atomically (a rerun finds either the old or the new one).</summary>
    public static void Write(string dir, JsonObject manifest) =>
        AtomicFile.Write(Path.Combine(dir, FileName), Encoding.UTF8.GetBytes(manifest.ToJsonString(StoreCommands.Indented) + "\n"), durable: false, overwrite: true);
}
