using System.Globalization;
using System.Numerics;
using System.Text.RegularExpressions;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>What a store path is, for <c>ls</c>, <c>info</c> and <c>verify</c>.</summary>
internal enum FoundKind
{
    Pickle,
    Npz,
    Hdf5,
    Knossos,
    Broken,

    /// <summary>A store of a registered backend (<c>bt:IDENTIFIER</c>).</summary>
    Backend,
}

/// <summary>One store found under a folder: a store file or a KNOSSOS dataset folder.</summary>
internal sealed record FoundStore(string Path, FoundKind Kind);

/// <summary>One line of <c>ls</c>: a store, its class, entry count and size (or why it could not be read).</summary>
internal sealed record StoreSummary(string Path, string Class, long Entries, long Bytes, string? Note, string? Error);

/// <summary>Finding and summarising the stores of a working directory. Reads only; takes no lock.</summary>
internal static partial class StoreScan
{
    /// <summary>Read-only, never locking: what <c>ls</c>, <c>info</c> and <c>verify</c> open stores with.</summary>
    internal static StoreOptions NoLock(StoreOptions o) => o with { ReadOnly = true, DisableLocking = true };

    [GeneratedRegex(@"^mag[1-9][0-9]*$")]
    private static partial Regex MagFolder();

    /// <summary>True when <paramref name="dir"/> is a KNOSSOS dataset (a <c>mag1</c> folder and a config).</summary>
    internal static bool IsKnossos(string dir)
    {
        if (!Directory.Exists(Path.Combine(dir, "mag1"))) return false;
        return File.Exists(Path.Combine(dir, "mag1", "knossos.conf"))
            || Directory.EnumerateFiles(dir, "*.pyk.conf").Any() || Directory.EnumerateFiles(dir, "*.k.toml").Any();
    }

    /// <summary>The magnification folders of a dataset, sorted by number.</summary>
    internal static List<string> Mags(string dir) =>
        Directory.EnumerateDirectories(dir).Select(Path.GetFileName).Where(n => MagFolder().IsMatch(n!)).OrderBy(n => int.Parse(n![3..], CultureInfo.InvariantCulture)).ToList()!;

    /// <summary>The cube files of a magnification folder, sorted.</summary>
    internal static List<string> Cubes(string magDir) =>
        Directory.Exists(magDir)
            ? Directory.EnumerateFiles(magDir, "*" + KnossosConfig.SegmentationExtension, SearchOption.AllDirectories).Order(StringComparer.Ordinal).ToList()
            : [];

    /// <summary>The kind of a single path (a file or a dataset folder), or null when it is no store.</summary>
    internal static FoundKind? KindOf(string path)
    {
        if (Directory.Exists(path)) return IsKnossos(path) ? FoundKind.Knossos : null;
        return StoreDetection.FileKindOf(path) switch
        {
            StoreFileKind.Pickle => FoundKind.Pickle,
            StoreFileKind.Zip => FoundKind.Npz,
            StoreFileKind.Hdf5 => FoundKind.Hdf5,
            StoreFileKind.Missing => null,
            _ => HasStoreName(path) ? FoundKind.Broken : null,
        };
    }

    private static bool HasStoreName(string path) =>
        path.EndsWith(".pkl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)
        || path.EndsWith(".h5", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".hdf5", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Every store under <paramref name="root"/>, recursively, sorted by path: pickle, npz and HDF5 files (by content),
    /// files with a store name that are none of these (broken), and KNOSSOS datasets (not descended into). Hidden files
    /// (lock files <c>.NAME.lk</c>, push temp files <c>.NAME.tmp.*</c>) and upstream's <c>NAME.tmp</c> are skipped; symbolic links to folders are not followed.
    /// </summary>
    internal static List<FoundStore> Find(string root)
    {
        var found = new List<FoundStore>();
        if (File.Exists(root))
        {
            found.Add(new FoundStore(root, KindOf(root) ?? FoundKind.Broken));
            return found;
        }
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"no such file or folder: {root}");
        var pending = new Stack<string>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            var dir = pending.Pop();
            if (IsKnossos(dir))
            {
                found.Add(new FoundStore(dir, FoundKind.Knossos));
                continue;
            }
            foreach (var f in Directory.EnumerateFiles(dir))
            {
                var name = Path.GetFileName(f);
                // Hidden files are lock files (.NAME.lk) and temp files of pushes (.NAME.tmp.PID.RANDOM); NAME.tmp is upstream's temp file.
                if (name.StartsWith('.') || name.EndsWith(".tmp", StringComparison.Ordinal)) continue;
                if (new FileInfo(f).LinkTarget is not null && !File.Exists(f)) continue;
                FoundKind? kind;
                try { kind = KindOf(f); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { kind = FoundKind.Broken; }
                if (kind is { } k) found.Add(new FoundStore(f, k));
            }
            foreach (var d in Directory.EnumerateDirectories(dir))
                if (new DirectoryInfo(d).LinkTarget is null) pending.Push(d);
        }
        found.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return found;
    }

    /// <summary>The path relative to <paramref name="root"/> (the file name when the root is the file itself).</summary>
    internal static string Relative(string root, string path)
    {
        if (EntryStores.IsBackendAddress(path)) return path;
        if (File.Exists(root)) return Path.GetFileName(path);
        var rel = Path.GetRelativePath(root, path);
        return rel == "." ? Path.GetFileName(Path.GetFullPath(path).TrimEnd('/')) : rel;
    }

    /// <summary>Total size in bytes of the files under a folder.</summary>
    internal static long FolderBytes(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);

    /// <summary>The VoxelStorageDyn pickle whose voxel cache <paramref name="npz"/> is, if one lies beside it.</summary>
    internal static string? CompanionOf(string npz)
    {
        if (!npz.EndsWith(".npz", StringComparison.Ordinal)) return null;
        var pkl = npz[..^4] + ".pkl";
        if (StoreDetection.FileKindOf(pkl) != StoreFileKind.Pickle) return null;
        try
        {
            using var s = EntryStores.Pickle(pkl);
            s.Load(StoreOptions.Default);
            return s.TryRead("meta", out var m) && m is PyDict d && d.ContainsKey("voxeldata_path") ? pkl : null;
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    /// <summary>Class, entry count and size of one store; an unreadable store gets an error instead of failing.</summary>
    internal static StoreSummary Summarize(FoundStore s, StoreOptions options)
    {
        long bytes = 0;
        try
        {
            bytes = s.Kind == FoundKind.Knossos ? FolderBytes(s.Path) : new FileInfo(s.Path).Length;
            switch (s.Kind)
            {
                case FoundKind.Pickle:
                {
                    using var store = EntryStores.Pickle(s.Path);
                    store.Load(options);
                    var found = StoreDetection.Detect(store, Path.GetFileName(s.Path));
                    long n = found.Class == StoreClass.VoxelStorageDyn
                        ? store.Keys.Count(k => k is not string str || !VoxelStorageDyn.HelperKeys.Contains(str))
                        : store.Count;
                    return new StoreSummary(s.Path, found.Class?.ToString() ?? "?", n, bytes, found.Class is null ? found.Reason : null, null);
                }
                case FoundKind.Npz:
                {
                    using var r = NpzFile.OpenRead(s.Path);
                    var of = CompanionOf(s.Path);
                    return new StoreSummary(s.Path, nameof(StoreClass.VoxelStorageLazyLoading), r.Keys.Count, bytes, of is null ? null : $"voxel cache of {Path.GetFileName(of)}", null);
                }
                case FoundKind.Hdf5:
                {
                    using var b = new BinarySearchStore(s.Path);
                    return new StoreSummary(s.Path, nameof(StoreClass.BinarySearchStore), b.IdArray.LongLength, bytes, $"{b.NShards} shards, attributes {string.Join(",", b.AttributeNames)}", null);
                }
                case FoundKind.Knossos:
                {
                    var conf = KnossosConfigFiles.Open(s.Path);
                    return new StoreSummary(s.Path, "KnossosDataset", Cubes(Path.Combine(conf.Root, "mag1")).Count, bytes, $"'{conf.Name}', boundary {conf.Boundary}", null);
                }
                default:
                    return new StoreSummary(s.Path, "?", 0, bytes, null, $"{StoreDetection.Describe(StoreDetection.FileKindOf(s.Path))}");
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new StoreSummary(s.Path, "?", 0, bytes, null, StripLocation(e.Message, s.Path));
        }
    }

    /// <summary>The message without a leading copy of the path (the line names the file already).</summary>
    internal static string StripLocation(string message, string path)
    {
        string one = message.ReplaceLineEndings(" ");
        foreach (var p in new[] { path, Path.GetFullPath(path), $"pickle '{path}'", $"pickle '{Path.GetFullPath(path)}'" })
        {
            if (one.StartsWith(p + ": ", StringComparison.Ordinal)) return one[(p.Length + 2)..];
            if (one.StartsWith(p + ", ", StringComparison.Ordinal)) return one[(p.Length + 2)..];
        }
        return one;
    }

    /// <summary>A key in the syntax <c>keys</c> prints.</summary>
    internal static string KeyText(object key)
    {
        try { return StoreKey.FromPython(key).ToString(); }
        catch (ArgumentException) { return PyRepr.Repr(key); }
    }

    /// <summary>The smallest and largest integer key (null when there is none).</summary>
    internal static (BigInteger Min, BigInteger Max)? IntRange(IEnumerable<object> keys)
    {
        BigInteger? min = null, max = null;
        foreach (var k in keys)
        {
            if (!PyInt.TryGetBigInteger(StoreKey.FromPython(k).PythonValue, out var v) || StoreKey.FromPython(k).PythonValue is not (long or BigInteger)) continue;
            if (min is null || v < min) min = v;
            if (max is null || v > max) max = v;
        }
        return min is null ? null : (min.Value, max!.Value);
    }

    /// <summary>Every ndarray in a Python value tree (depth-limited; cycles are not followed twice).</summary>
    internal static IEnumerable<NdArray> Arrays(object? value)
    {
        var seen = new HashSet<object>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(object? V, int Depth)>();
        stack.Push((value, 0));
        while (stack.Count > 0)
        {
            var (v, depth) = stack.Pop();
            if (v is NdArray a) { yield return a; continue; }
            if (depth > 64 || v is null || v is string || !seen.Add(v)) continue;
            switch (v)
            {
                case PyDict d: foreach (var kv in d) stack.Push((kv.Value, depth + 1)); break;
                case PyList l: foreach (var x in l) stack.Push((x, depth + 1)); break;
                case PyTuple t: foreach (var x in t) stack.Push((x, depth + 1)); break;
            }
        }
    }

    /// <summary>Human size: bytes, kB, MB, GB (powers of 1000).</summary>
    internal static string Size(long bytes) => bytes switch
    {
        < 1000 => $"{bytes} B",
        < 1_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e3:0.0} kB"),
        < 1_000_000_000 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:0.0} MB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e9:0.00} GB"),
    };
}
