namespace SyConn.Backend.Cli.Commands;

/// <summary>One supervoxel of the demo: its ID, cell, storage folder and geometry.</summary>
internal sealed class DemoObject
{
    public required ulong Id { get; init; }

    /// <summary>Position in ascending ID order.</summary>
    public required int Index { get; init; }

    /// <summary>The cell (SSV) it belongs to: the smallest supervoxel ID of that cell.</summary>
    public ulong Cell { get; set; }

    /// <summary>The storage folder, relative to the working directory.</summary>
    public required string Folder { get; init; }

    /// <summary>The ellipsoid's enclosing box: lower corner (inclusive) and upper corner (exclusive), xyz.</summary>
    public required long[] Lo { get; init; }

    /// <inheritdoc cref="Lo"/>
    public required long[] Hi { get; init; }

    /// <summary>The boxes stored in voxel.pkl (one, or two halves split along z), each [lo xyz, hi xyz].</summary>
    public required long[][] Boxes { get; init; }

    /// <summary>True when the object's voxels are in the KNOSSOS segmentation (and it has a voxel.pkl entry).</summary>
    public required bool Voxelised { get; init; }

    /// <summary>True when voxel.npz holds the object's voxel coordinates (upstream's voxel cache).</summary>
    public required bool Cached { get; init; }

    /// <summary>Voxel coordinates (xyz, ascending z, y, x) of the ellipsoid.</summary>
    public required uint[] Voxels { get; init; }

    public long Size => Voxels.Length / 3;

    /// <summary>A voxel inside the object (the centre of its box).</summary>
    public long[] RepCoord => [(Lo[0] + Hi[0]) / 2, (Lo[1] + Hi[1]) / 2, (Lo[2] + Hi[2]) / 2];
}

/// <summary>
/// The objects of a demo of <c>n</c> supervoxels, the same for the same count: IDs, storage folders, cells,
/// and a small ellipsoid per object in its own 10-voxel cell of a grid. Only the first
/// <see cref="MaxVoxelised"/> objects are written into the KNOSSOS segmentation, which keeps its size bounded.
/// </summary>
internal sealed class DemoWorld
{
    /// <summary>At most this many objects get voxels in the segmentation (and a voxel.pkl entry).</summary>
    public const int MaxVoxelised = 4096;

    /// <summary>Every this many voxelised objects one has a voxel cache (the first one included).</summary>
    public const int CacheEvery = 10;

    /// <summary>The edge of each object's grid cell, in voxels.</summary>
    public const int CellEdge = 10;

    /// <summary>The KNOSSOS cube edge.</summary>
    public const int CubeEdge = 64;

    /// <summary>The voxel size (nm) of the segmentation.</summary>
    public static readonly (double X, double Y, double Z) Scale = (10, 10, 25);

    public const int Seed = 12345;

    public DemoWorld(int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        NFoldersFs = ChooseFolders(n);
        var rng = new Random(Seed);
        long span = 1000L * NFoldersFs * Math.Max(1, (2L * n + 1000L * NFoldersFs - 1) / (1000L * NFoldersFs));
        int big = n >= 2 ? Math.Max(1, n / 50) : 0;
        var ids = new HashSet<ulong>();
        while (ids.Count < n - big) ids.Add((ulong)rng.NextInt64(1, span + 1));
        while (ids.Count < n) ids.Add((1UL << 63) | (ulong)rng.NextInt64(1, span + 1));
        var sorted = ids.Order().ToArray();

        Grid = (int)Math.Ceiling(Math.Cbrt(n) - 1e-9);
        while ((long)Grid * Grid * Grid < n) Grid++;
        Voxelised = Math.Min(n, MaxVoxelised);
        var objects = new DemoObject[n];
        for (int i = 0; i < n; i++)
        {
            long cx = i % Grid, cy = i / Grid % Grid, cz = i / ((long)Grid * Grid);
            var lo = new long[3];
            var hi = new long[3];
            long[] cell = [cx, cy, cz];
            for (int a = 0; a < 3; a++)
            {
                lo[a] = cell[a] * CellEdge + rng.Next(0, 3);
                hi[a] = lo[a] + rng.Next(3, 8);
            }
            bool split = i % 3 == 2;
            long mz = (lo[2] + hi[2]) / 2;
            long[][] boxes = split
                ? [[lo[0], lo[1], lo[2], hi[0], hi[1], mz], [lo[0], lo[1], mz, hi[0], hi[1], hi[2]]]
                : [[lo[0], lo[1], lo[2], hi[0], hi[1], hi[2]]];
            objects[i] = new DemoObject
            {
                Id = sorted[i],
                Index = i,
                Folder = SyConnLayout.ObjectFolder(sorted[i], NFoldersFs),
                Lo = lo,
                Hi = hi,
                Boxes = boxes,
                Voxelised = i < Voxelised,
                Cached = i < Voxelised && i % CacheEvery == 0,
                Voxels = Ellipsoid(lo, hi),
            };
        }
        for (int i = 0; i < n;)
        {
            int size = rng.Next(1, 9);
            for (int j = i; j < Math.Min(n, i + size); j++) objects[j].Cell = objects[i].Id;
            i += size;
        }
        Objects = objects;
        long rows = Math.Min(Voxelised, (long)Grid * Grid);
        Boundary = [Math.Min(Voxelised, Grid) * (long)CellEdge, (rows + Grid - 1) / Grid * CellEdge, ((Voxelised + (long)Grid * Grid - 1) / ((long)Grid * Grid)) * CellEdge];
        Folders = objects.GroupBy(o => o.Folder, StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => (g.Key, g.ToArray())).ToArray();
    }

    /// <summary>n_folders_fs: 100 below 100,000 objects, then 1,000, then 10,000 from a million on.</summary>
    public static int ChooseFolders(int n) => n switch
    {
        < 100_000 => 100,
        < 1_000_000 => 1_000,
        _ => 10_000,
    };

    public int NFoldersFs { get; }

    /// <summary>Objects per row of the grid (and rows per layer).</summary>
    public int Grid { get; }

    /// <summary>How many objects have voxels in the segmentation.</summary>
    public int Voxelised { get; }

    /// <summary>The segmentation's extent (xyz): the grid cells of the voxelised objects.</summary>
    public long[] Boundary { get; }

    public IReadOnlyList<DemoObject> Objects { get; }

    /// <summary>The storage folders in use, each with its objects (ascending IDs).</summary>
    public IReadOnlyList<(string Folder, DemoObject[] Objects)> Folders { get; }

    /// <summary>The voxels of the ellipsoid inscribed in the box, as (N, 3) xyz rows; the centre voxel is always in.</summary>
    private static uint[] Ellipsoid(long[] lo, long[] hi)
    {
        var result = new List<uint>();
        double rx = (hi[0] - lo[0]) / 2.0, ry = (hi[1] - lo[1]) / 2.0, rz = (hi[2] - lo[2]) / 2.0;
        double cx = (lo[0] + hi[0]) / 2.0, cy = (lo[1] + hi[1]) / 2.0, cz = (lo[2] + hi[2]) / 2.0;
        for (long z = lo[2]; z < hi[2]; z++)
            for (long y = lo[1]; y < hi[1]; y++)
                for (long x = lo[0]; x < hi[0]; x++)
                {
                    double dx = (x + 0.5 - cx) / rx, dy = (y + 0.5 - cy) / ry, dz = (z + 0.5 - cz) / rz;
                    if (dx * dx + dy * dy + dz * dz <= 1.0) result.AddRange([(uint)x, (uint)y, (uint)z]);
                }
        return result.ToArray();
    }
}
