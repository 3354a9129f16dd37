using System.IO.Compression;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;

namespace SyConn.Backend.Storage.Knossos;

/// <summary>What <see cref="KnossosWriter.Create"/> writes besides the <c>.pyk.conf</c>.</summary>
public sealed class KnossosCreateOptions
{
    /// <summary>Also write <c>&lt;name&gt;.k.toml</c> (knossos_utils master's format). Default: false.</summary>
    public bool WriteToml { get; init; }

    /// <summary>Also write <c>mag1/knossos.conf</c> (legacy; only possible with a 128³ cube). Default: false.</summary>
    public bool WriteLegacyConf { get; init; }

    /// <summary>Deflate level of cube files. Default: zlib's default level, as Python's zipfile uses.</summary>
    public CompressionLevel CompressionLevel { get; init; } = CompressionLevel.Optimal;

    /// <summary>
    /// fsync every file written (config files and, through the returned writer, cubes) and the folders they
    /// are in, so a write survives a power loss once it returns. Default: true. False is still atomic
    /// against process crashes, and faster (see <see cref="AtomicFile"/>).
    /// </summary>
    public bool Durable { get; init; } = true;
}

/// <summary>
/// Creates KNOSSOS segmentation datasets and writes mag-1 segmentation into them the way knossos_utils'
/// <c>save_seg(…, mags=[1])</c> does: data is merged into existing cubes (the written region is
/// replaced, zeros included; voxels outside it are kept), the region is clipped to the boundary, an
/// all-zero cube is never written (an existing file that becomes all zero is deleted), and each cube is a
/// ZIP with one deflated member <c>&lt;file name minus .zip&gt;</c> holding raw Snappy. Every file is written
/// through <see cref="AtomicFile"/> (temporary file in the same folder, rename; fsynced unless not
/// <see cref="Durable"/>), so a failed or interrupted write leaves the old cube or config intact.
/// </summary>
/// <remarks>
/// <b>Thread-safety:</b> calls on one instance are serialised (a <see cref="WriteSeg(Xyz, NdArray)"/>
/// decodes and writes its cubes in parallel internally). There is no inter-process locking: do not write
/// the same dataset from two processes (or two writer instances) at once. Readers that cache cubes
/// (<see cref="KnossosDataset"/>) must clear their cache to see new data.
/// </remarks>
public sealed class KnossosWriter
{
    private readonly Lock _gate = new();
    private readonly CompressionLevel _level;
    private readonly int _parallelism;

    /// <summary>Opens an existing dataset for writing. A relative <see cref="KnossosConfig.Root"/> is made
    /// absolute here, against the current working directory.</summary>
    /// <param name="config">The dataset's configuration.</param>
    /// <param name="level">Deflate level of cube files.</param>
    /// <param name="maxDegreeOfParallelism">How many cubes are encoded at once; default the processor count.</param>
    /// <param name="durable">fsync each cube file and its folder (default); false is atomic but not durable.</param>
    public KnossosWriter(KnossosConfig config, CompressionLevel level = CompressionLevel.Optimal, int maxDegreeOfParallelism = 0, bool durable = true)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = KnossosConfigFiles.MakeAbsolute(config);
        _level = level;
        _parallelism = maxDegreeOfParallelism > 0 ? maxDegreeOfParallelism : Environment.ProcessorCount;
        Durable = durable;
    }

    /// <summary>The configuration of the dataset being written (with an absolute root).</summary>
    public KnossosConfig Config { get; }

    /// <summary>Whether cube writes are fsynced (file and folder) before they return.</summary>
    public bool Durable { get; }

    /// <summary>
    /// Creates a new dataset in <paramref name="root"/>: <c>&lt;name&gt;.pyk.conf</c> exactly as SyConn
    /// (knossos_utils syconn2) writes it (three <c>[Dataset]</c> sections for <c>.jpg</c>, <c>.raw</c> and
    /// <c>.seg.sz.zip</c>, scales truncated to integers, no <c>_BaseURL</c>), an empty <c>mag1/</c> folder
    /// and, optionally, <c>&lt;name&gt;.k.toml</c> and <c>mag1/knossos.conf</c>.
    /// </summary>
    /// <param name="root">The dataset folder (created if needed).</param>
    /// <param name="name">The experiment name; letters, digits, '.', '_', '-' only.</param>
    /// <param name="boundary">The dataset extent (x, y, z).</param>
    /// <param name="cubeEdge">The cube edge (cubic cubes, as both knossos_utils versions support).</param>
    /// <param name="scale">Voxel size of mag 1 in nm (x, y, z).</param>
    /// <param name="options">Optional extra files, compression level and durability.</param>
    /// <exception cref="ArgumentException">A value is invalid, or a legacy conf is requested with an edge other than 128.</exception>
    /// <exception cref="IOException">A config file of that name already exists (checked for all of them before any
    /// is written; an existing file is never replaced).</exception>
    public static KnossosWriter Create(string root, string name, Xyz boundary, int cubeEdge, (double X, double Y, double Z) scale,
        KnossosCreateOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(root);
        ArgumentException.ThrowIfNullOrEmpty(name);
        options ??= new KnossosCreateOptions();
        foreach (char ch in name)
            if (!(char.IsAsciiLetterOrDigit(ch) || ch is '.' or '_' or '-'))
                throw new ArgumentException($"experiment name '{name}' may only hold ASCII letters, digits, '.', '_' and '-'", nameof(name));
        if (cubeEdge <= 0) throw new ArgumentOutOfRangeException(nameof(cubeEdge), cubeEdge, "cube edge must be positive");
        if (options.WriteLegacyConf && cubeEdge != KnossosConfig.DefaultCubeEdge)
            throw new ArgumentException($"a legacy knossos.conf implies a 128³ cube; cube edge is {cubeEdge}", nameof(options));
        if (!(scale.X > 0 && scale.Y > 0 && scale.Z > 0))
            throw new ArgumentException($"scale {scale} must be positive", nameof(scale));
        var cube = new Xyz(cubeEdge, cubeEdge, cubeEdge);
        var scales = options.WriteToml ? KnossosConfigText.TomlScales(boundary, cube, scale) : [scale];
        string full = Path.GetFullPath(root);
        string pykPath = Path.Combine(full, name + ".pyk.conf");
        var config = new KnossosConfig(name, boundary, cube, scales, full, KnossosConfigKind.PykConf, pykPath);

        var files = new List<(string Path, string Text)> { (pykPath, KnossosConfigText.PykConfText(name, boundary, cubeEdge, scale)) };
        if (options.WriteToml) files.Add((Path.Combine(full, name + ".k.toml"), KnossosConfigText.TomlText(name, boundary, cube, scales)));
        if (options.WriteLegacyConf) files.Add((Path.Combine(full, "mag1", "knossos.conf"), KnossosConfigText.LegacyConfText(name, boundary, scale)));
        foreach (var (path, _) in files)
            if (File.Exists(path)) throw new IOException($"{path} already exists; refusing to overwrite a dataset config");

        CreateFolders(Path.Combine(full, "mag1"), options.Durable);
        foreach (var (path, text) in files)
            AtomicFile.Write(path, Encoding.UTF8.GetBytes(text), options.Durable, overwrite: false);
        return new KnossosWriter(config, options.CompressionLevel, durable: options.Durable);
    }

    /// <summary>
    /// Creates <paramref name="dir"/> and any missing parents. When <paramref name="durable"/>, the folder
    /// holding each newly created one is fsynced, so the new path survives a power loss like the files in it.
    /// </summary>
    private static void CreateFolders(string dir, bool durable)
    {
        if (Directory.Exists(dir)) return;
        var missing = new Stack<string>();
        for (string? d = dir; d is not null && !Directory.Exists(d); d = Path.GetDirectoryName(d)) missing.Push(d);
        Directory.CreateDirectory(dir);
        if (!durable) return;
        foreach (var created in missing) Posix.FsyncDirectory(Path.GetDirectoryName(created)!);
    }

    // ---------------------------------------------------------------- segmentation

    /// <summary>
    /// Writes a uint64 array indexed [z][y][x] (C order, shape <c>(size_z, size_y, size_x)</c>) at
    /// <paramref name="offset"/> (x, y, z, non-negative) into the mag-1 cubes, clipped to the boundary.
    /// </summary>
    /// <exception cref="ArgumentException">The data is not a 3-d uint64 array, or an offset component is negative.</exception>
    /// <exception cref="InvalidDataException">An existing cube that must be merged is corrupt (it is left untouched).</exception>
    public void WriteSeg(Xyz offset, NdArray data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.NDim != 3) throw new ArgumentException($"segmentation must be 3-d (z, y, x), got {data.NDim}-d", nameof(data));
        if (data.DType.Kind != 'u' || data.DType.ItemSize != 8)
            throw new ArgumentException($"segmentation must be uint64, got dtype {data.DType.Str}", nameof(data));
        var native = data.ToNativeC();
        var size = new Xyz(data.Shape[2], data.Shape[1], data.Shape[0]);
        WriteSeg(offset, size, native.AsSpan<ulong>());
    }

    /// <summary>
    /// Writes <paramref name="values"/> (shape <paramref name="size"/>, [z][y][x] C order) at
    /// <paramref name="offset"/>; see <see cref="WriteSeg(Xyz, NdArray)"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Size and values disagree, or an offset component is negative.</exception>
    /// <exception cref="InvalidDataException">An existing cube that must be merged is corrupt.</exception>
    public unsafe void WriteSeg(Xyz offset, Xyz size, ReadOnlySpan<ulong> values)
    {
        if (offset.X < 0 || offset.Y < 0 || offset.Z < 0)
            throw new ArgumentException($"offset {offset} must be non-negative (as in knossos_utils' save_seg)", nameof(offset));
        if (size.X < 0 || size.Y < 0 || size.Z < 0 || size.Product != values.Length)
            throw new ArgumentException($"{values.Length} values do not fill a box of size {size}", nameof(values));
        var b = Config.Boundary;
        var lo = offset;
        var hi = new Xyz(Math.Min(offset.X + size.X, b.X), Math.Min(offset.Y + size.Y, b.Y), Math.Min(offset.Z + size.Z, b.Z));
        if (hi.X <= lo.X || hi.Y <= lo.Y || hi.Z <= lo.Z) return;
        var c = Config.CubeShape;
        long i0 = lo.X / c.X, i1 = (hi.X - 1) / c.X, j0 = lo.Y / c.Y, j1 = (hi.Y - 1) / c.Y, k0 = lo.Z / c.Z, k1 = (hi.Z - 1) / c.Z;
        long ni = i1 - i0 + 1, nj = j1 - j0 + 1, cubes = ni * nj * (k1 - k0 + 1);
        int n = values.Length;
        lock (_gate)
        {
            fixed (ulong* p = values)
            {
                nint ptr = (nint)p;
                void One(long idx)
                {
                    long i = i0 + idx % ni, j = j0 + idx / ni % nj, k = k0 + idx / (ni * nj);
                    MergeCube(i, j, k, offset, size, lo, hi, new ReadOnlySpan<ulong>((void*)ptr, n));
                }
                try
                {
                    Parallel.For(0L, cubes, new ParallelOptions { MaxDegreeOfParallelism = _parallelism }, One);
                }
                catch (AggregateException e) when (e.InnerExceptions.Count > 0)
                {
                    System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
                    throw;
                }
            }
        }
    }

    private void MergeCube(long i, long j, long k, Xyz offset, Xyz size, Xyz lo, Xyz hi, ReadOnlySpan<ulong> values)
    {
        var c = Config.CubeShape;
        int voxels = (int)c.Product;
        string path = Config.CubePath(i, j, k);
        var cube = new ulong[voxels];
        if (AtomicFile.ReadAllBytes(path) is { } existing)
        {
            using var ms = new MemoryStream(existing, writable: false);
            KnossosCubeCodec.Decode(ms, cube, path);
        }
        long ox = i * c.X, oy = j * c.Y, oz = k * c.Z;
        long x0 = Math.Max(lo.X, ox), x1 = Math.Min(hi.X, ox + c.X);
        long y0 = Math.Max(lo.Y, oy), y1 = Math.Min(hi.Y, oy + c.Y);
        long z0 = Math.Max(lo.Z, oz), z1 = Math.Min(hi.Z, oz + c.Z);
        int w = (int)(x1 - x0);
        for (long z = z0; z < z1; z++)
            for (long y = y0; y < y1; y++)
            {
                int src = (int)((x0 - offset.X) + size.X * ((y - offset.Y) + size.Y * (z - offset.Z)));
                int dst = (int)((x0 - ox) + c.X * ((y - oy) + c.Y * (z - oz)));
                values.Slice(src, w).CopyTo(cube.AsSpan(dst, w));
            }
        string folder = Path.GetDirectoryName(path)!;
        if (cube.AsSpan().IndexOfAnyExcept(0UL) < 0)
        {
            if (!File.Exists(path)) return;
            File.Delete(path);
            if (Durable) Posix.FsyncDirectory(folder);
            return;
        }
        CreateFolders(folder, Durable);
        string member = Path.GetFileNameWithoutExtension(path);
        AtomicFile.Write(path, s => KnossosCubeCodec.Encode(cube, member, s, _level), Durable);
    }
}
