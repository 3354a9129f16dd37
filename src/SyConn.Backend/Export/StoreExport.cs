using System.Globalization;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Export;

/// <summary>An entry of a store that cannot be exported: not what the store class holds, or not a valid mesh/skeleton.</summary>
/// <param name="what">What is wrong, naming the key.</param>
/// <param name="location">The store.</param>
/// <param name="key">The key.</param>
/// <param name="inner">The error of the decoder or checker.</param>
public sealed class ExportInputException(string what, string location, StoreKey key, Exception? inner = null)
    : Exception($"{what} ({location})", inner)
{
    /// <summary>What is wrong, without the store's location.</summary>
    public string What { get; } = what;

    /// <summary>The store.</summary>
    public string Location { get; } = location;

    /// <summary>The key.</summary>
    public StoreKey Key { get; } = key;
}

/// <summary>One exported file.</summary>
/// <param name="Key">The key exported.</param>
/// <param name="Path">The file written.</param>
/// <param name="Summary">What was written, e.g. <c>12 vertices, 8 triangles</c>.</param>
/// <param name="Notes">What the format could not hold or what was changed (for the user).</param>
public sealed record ExportedFile(StoreKey Key, string Path, string Summary, IReadOnlyList<string> Notes);

/// <summary>
/// Exports entries of a <see cref="MeshStorage"/> (PLY, OBJ, GLB) or a <see cref="SkeletonStorage"/> (SWC) to
/// files: one key to a given path, or every key into a folder as <c>&lt;key&gt;.&lt;ext&gt;</c>
/// (<see cref="ExportFileNames"/>), never outside it.
/// </summary>
/// <remarks>
/// Every file is written atomically (a temp file in the same folder renamed over the target; an existing file is
/// replaced, a symbolic link at the target replaced rather than followed), without fsync: an export can be redone.
/// Entries are checked before anything is written for them: an entry that is not what the class stores, or arrays
/// that do not make a mesh or skeleton, raise <see cref="ExportInputException"/>. Open a MeshStorage with
/// <c>loadColArr: true</c> to have all four arrays of each entry checked (what the command line does); colours are
/// exported only when asked for. Not thread-safe (the stores are not).
/// </remarks>
public static class StoreExport
{
    /// <summary>Reads one mesh and checks it.</summary>
    /// <param name="store">The store.</param>
    /// <param name="key">The key.</param>
    /// <param name="colours">Include the colour/label array (needs a store opened with <c>loadColArr: true</c>).</param>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    /// <exception cref="ExportInputException">The entry is not a mesh.</exception>
    public static Export.ExportMesh ReadMesh(MeshStorage store, StoreKey key, bool colours)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (colours && !store.LoadColArr)
            throw new ArgumentException("colours need a MeshStorage opened with loadColArr: true", nameof(colours));
        if (!store.ContainsKey(key)) throw new KeyNotFoundException($"key {key} is not in {store.Location}");
        Arrays.NdArray[] arrays;
        try
        {
            arrays = store[key];
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            throw new ExportInputException($"key {key} holds no mesh (not a MeshStorage entry: {Detail(e, store, key)})", store.Location, key, e);
        }
        try
        {
            return Export.ExportMesh.FromArrays(colours ? arrays : arrays.Take(3).ToArray());
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            throw new ExportInputException($"mesh {key}: {e.Message}", store.Location, key, e);
        }
    }

    /// <summary>Reads one skeleton and turns it into SWC trees.</summary>
    /// <param name="store">The store.</param>
    /// <param name="key">The key.</param>
    /// <param name="scale">Multiplies x, y, z; null: 1,1,1.</param>
    /// <exception cref="KeyNotFoundException">The key is not stored.</exception>
    /// <exception cref="ExportInputException">The entry is not a skeleton.</exception>
    public static SwcTree ReadSkeleton(SkeletonStorage store, StoreKey key, (double X, double Y, double Z)? scale = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        if (!store.ContainsKey(key)) throw new KeyNotFoundException($"key {key} is not in {store.Location}");
        Skeleton skeleton;
        try
        {
            skeleton = store[key];
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            throw new ExportInputException($"key {key} holds no skeleton (not a SkeletonStorage entry: {Detail(e, store, key)})", store.Location, key, e);
        }
        try
        {
            return SwcWriter.Build(skeleton, scale);
        }
        catch (Exception e) when (e is InvalidDataException or NotSupportedException)
        {
            throw new ExportInputException($"skeleton {key}: {e.Message}", store.Location, key, e);
        }
    }

    /// <summary>Exports one mesh to <paramref name="path"/> (its folder must exist).</summary>
    /// <inheritdoc cref="ReadMesh" path="/exception"/>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static ExportedFile ExportMesh(MeshStorage store, StoreKey key, MeshFormat format, string path, bool colours = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var mesh = ReadMesh(store, key, colours);
        IReadOnlyList<string> notes = [];
        string name = $"mesh {key}";
        try
        {
            // Encode first: nothing is written for a mesh the format cannot hold.
            using var buffer = new MemoryStream();
            notes = MeshWriter.Write(mesh, format, buffer, name);
            AtomicFile.Write(path, buffer.GetBuffer().AsSpan(0, (int)buffer.Length), durable: false);
        }
        catch (InvalidDataException e)
        {
            throw new ExportInputException($"mesh {key}: {e.Message}", store.Location, key, e);
        }
        return new ExportedFile(key, path, string.Create(CultureInfo.InvariantCulture, $"{mesh.VertexCount} vertices, {mesh.FaceCount} triangles"), notes);
    }

    /// <summary>Exports every mesh into <paramref name="directory"/> (created if missing) as <c>&lt;key&gt;.&lt;ext&gt;</c>.</summary>
    /// <param name="store">The store.</param>
    /// <param name="format">The file format.</param>
    /// <param name="directory">The folder.</param>
    /// <param name="colours">Include colours and labels.</param>
    /// <param name="progress">Called after each file.</param>
    /// <returns>The files written, in key order.</returns>
    /// <exception cref="ExportInputException">An entry is not a mesh (files written before it stay).</exception>
    /// <exception cref="IOException">A file cannot be written.</exception>
    public static IReadOnlyList<ExportedFile> ExportAllMeshes(MeshStorage store, MeshFormat format, string directory, bool colours = false, Action<ExportedFile>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return ExportAll(store, directory, MeshWriter.Extension(format), (k, p) => ExportMesh(store, k, format, p, colours), progress);
    }

    /// <summary>Exports one skeleton as SWC to <paramref name="path"/> (its folder must exist).</summary>
    /// <inheritdoc cref="ReadSkeleton" path="/exception"/>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public static ExportedFile ExportSkeleton(SkeletonStorage store, StoreKey key, string path, (double X, double Y, double Z)? scale = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var tree = ReadSkeleton(store, key, scale);
        var (sx, sy, sz) = scale ?? (1, 1, 1);
        var inv = CultureInfo.InvariantCulture;
        string[] header =
        [
            $"skeleton {key} of {store.Location}, written by syconn-store",
            string.Create(inv, $"coordinates scaled by {sx:R},{sy:R},{sz:R}; radius = diameter / 2 (not scaled); type 0 = undefined"),
            string.Create(inv, $"{tree.Samples.Count} node{(tree.Samples.Count == 1 ? "" : "s")}, {tree.Components} connected component{(tree.Components == 1 ? "" : "s")} (one root each), {tree.DroppedEdges} edge{(tree.DroppedEdges == 1 ? "" : "s")} dropped that closed a cycle"),
        ];
        AtomicFile.Write(path, s => SwcWriter.Write(tree, s, header), durable: false);
        var notes = new List<string>();
        if (tree.DroppedEdges > 0)
            notes.Add(string.Create(inv, $"{tree.DroppedEdges} edge{(tree.DroppedEdges == 1 ? "" : "s")} closing a cycle dropped (SWC holds trees)"));
        return new ExportedFile(key, path,
            string.Create(inv, $"{tree.Samples.Count} node{(tree.Samples.Count == 1 ? "" : "s")}, {tree.Components} root{(tree.Components == 1 ? "" : "s")}"), notes);
    }

    /// <summary>Exports every skeleton into <paramref name="directory"/> (created if missing) as <c>&lt;key&gt;.swc</c>.</summary>
    /// <param name="store">The store.</param>
    /// <param name="directory">The folder.</param>
    /// <param name="scale">Multiplies x, y, z; null: 1,1,1.</param>
    /// <param name="progress">Called after each file.</param>
    /// <returns>The files written, in key order.</returns>
    /// <exception cref="ExportInputException">An entry is not a skeleton (files written before it stay).</exception>
    /// <exception cref="IOException">A file cannot be written.</exception>
    public static IReadOnlyList<ExportedFile> ExportAllSkeletons(SkeletonStorage store, string directory, (double X, double Y, double Z)? scale = null, Action<ExportedFile>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        return ExportAll(store, directory, SwcWriter.Extension, (k, p) => ExportSkeleton(store, k, p, scale), progress);
    }

    /// <summary>The decoder's message without the store and key it starts with (the exception names them).</summary>
    private static string Detail(Exception e, StorageBase store, StoreKey key)
    {
        var prefix = $"{store.Location}, key {key}";
        var m = e.Message;
        if (m.StartsWith(prefix, StringComparison.Ordinal)) m = m[prefix.Length..].TrimStart(',', ':', ' ');
        return m;
    }

    private static List<ExportedFile> ExportAll(StorageBase store, string directory, string extension, Func<StoreKey, string, ExportedFile> export, Action<ExportedFile>? progress)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        if (File.Exists(directory)) throw new IOException($"{directory} is a file, not a folder");
        Directory.CreateDirectory(directory);
        var keys = store.Keys.ToList();
        // All names first: a clash (possible only between keys cut to the same hashed name) stops the export before it starts.
        var paths = new Dictionary<string, StoreKey>(StringComparer.Ordinal);
        var plan = new List<(StoreKey Key, string Path)>(keys.Count);
        foreach (var k in keys)
        {
            var p = ExportFileNames.PathIn(directory, k, extension);
            if (!paths.TryAdd(p, k))
                throw new IOException($"keys {paths[p]} and {k} would both be written to {p}");
            plan.Add((k, p));
        }
        var done = new List<ExportedFile>(plan.Count);
        foreach (var (k, p) in plan)
        {
            var f = export(k, p);
            done.Add(f);
            progress?.Invoke(f);
        }
        return done;
    }
}
