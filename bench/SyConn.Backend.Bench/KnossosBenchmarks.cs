using System.Buffers;
using System.Diagnostics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;

namespace SyConn.Backend.Bench;

/// <summary>
/// <c>KnossosDataset.LoadSeg</c> throughput on random 256³ boxes of a synthetic 1024³ dataset (128³
/// cubes, 512 files) against the floor "only read + unzip + unsnappy the cubes the boxes touch".
/// The dataset is generated once into <c>/tmp/syconn-knossos-bench-&lt;edge&gt;</c> (edge from
/// <c>SYCONN_KNOSSOS_BENCH_EDGE</c>, default 1024) and reused. Every benchmark invocation processes the
/// same <see cref="BoxesPerOp"/> boxes, so voxels/s = BoxesPerOp * 256³ / time.
/// </summary>
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 1, iterationCount: 5)]
[MemoryDiagnoser]
public class KnossosBenchmarks
{
    /// <summary>Boxes per benchmark invocation.</summary>
    public const int BoxesPerOp = 4;

    /// <summary>Box edge in voxels.</summary>
    public const int BoxEdge = 256;

    private KnossosDataset _uncached = null!;
    private KnossosDataset _cached = null!;
    private Xyz[] _offsets = null!;
    private ulong[] _buffer = null!;

    /// <summary>Dataset folder for a given edge.</summary>
    public static string DatasetPath(int edge) => Path.Combine(Path.GetTempPath(), $"syconn-knossos-bench-{edge}");

    /// <summary>The dataset edge from the environment (default 1024).</summary>
    public static int Edge => int.TryParse(Environment.GetEnvironmentVariable("SYCONN_KNOSSOS_BENCH_EDGE"), out var e) && e >= BoxEdge ? e : 1024;

    /// <summary>Generates the dataset if missing; loads the box list.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var path = DatasetPath(Edge);
        EnsureDataset(path, Edge, Console.Out);
        _uncached = KnossosDataset.Open(path, new KnossosDatasetOptions { CacheBytes = 0 });
        var rng = new Random(42);
        _offsets = Enumerable.Range(0, BoxesPerOp).Select(_ => new Xyz(rng.Next(0, Edge - BoxEdge), rng.Next(0, Edge - BoxEdge), rng.Next(0, Edge - BoxEdge))).ToArray();
        _buffer = new ulong[BoxEdge * BoxEdge * BoxEdge];
        // big enough for every cube the boxes touch: after the first pass LoadSeg only copies
        _cached = KnossosDataset.Open(path, new KnossosDatasetOptions { CacheBytes = 4L << 30 });
        foreach (var off in _offsets) _cached.LoadSeg(off, new Xyz(BoxEdge, BoxEdge, BoxEdge), _buffer);
    }

    /// <summary>Releases the dataset.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _uncached.Dispose();
        _cached.Dispose();
    }

    /// <summary>Floor: read, unzip and unsnappy every cube the boxes touch (parallel, like LoadSeg), nothing else.</summary>
    [Benchmark(Baseline = true)]
    public long DecodeOnly()
    {
        long sum = 0;
        foreach (var off in _offsets) sum += DecodeCubesOf(_uncached.Config, off, new Xyz(BoxEdge, BoxEdge, BoxEdge));
        return sum;
    }

    /// <summary>LoadSeg into a reused buffer (no cache).</summary>
    [Benchmark]
    public ulong LoadSegIntoBuffer()
    {
        ulong x = 0;
        foreach (var off in _offsets)
        {
            _uncached.LoadSeg(off, new Xyz(BoxEdge, BoxEdge, BoxEdge), _buffer);
            x ^= _buffer[12345];
        }
        return x;
    }

    /// <summary>LoadSeg into a reused buffer with every touched cube already cached: the cost of copying alone.</summary>
    [Benchmark]
    public ulong LoadSegWarmCache()
    {
        ulong x = 0;
        foreach (var off in _offsets)
        {
            _cached.LoadSeg(off, new Xyz(BoxEdge, BoxEdge, BoxEdge), _buffer);
            x ^= _buffer[12345];
        }
        return x;
    }

    /// <summary>LoadSeg returning a new NdArray per box (no cache).</summary>
    [Benchmark]
    public long LoadSegNewArray()
    {
        long n = 0;
        foreach (var off in _offsets) n += _uncached.LoadSeg(off, new Xyz(BoxEdge, BoxEdge, BoxEdge)).Size;
        return n;
    }

    /// <summary>Decodes (without copying) every cube a box touches; returns the number of cube files decoded.</summary>
    public static long DecodeCubesOf(KnossosConfig config, Xyz off, Xyz size)
    {
        var c = config.CubeShape;
        long i0 = off.X / c.X, i1 = (off.X + size.X - 1) / c.X, j0 = off.Y / c.Y, j1 = (off.Y + size.Y - 1) / c.Y;
        long k0 = off.Z / c.Z, k1 = (off.Z + size.Z - 1) / c.Z;
        var cubes = new List<(long, long, long)>();
        for (long k = k0; k <= k1; k++) for (long j = j0; j <= j1; j++) for (long i = i0; i <= i1; i++) cubes.Add((i, j, k));
        long decoded = 0;
        int voxels = (int)c.Product;
        Parallel.ForEach(cubes, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, cube =>
        {
            var path = config.CubePath(cube.Item1, cube.Item2, cube.Item3);
            if (!File.Exists(path)) return;
            var bytes = File.ReadAllBytes(path);
            var buf = ArrayPool<ulong>.Shared.Rent(voxels);
            try
            {
                KnossosCubeCodec.Decode(new MemoryStream(bytes), buf.AsSpan(0, voxels), path);
            }
            finally
            {
                ArrayPool<ulong>.Shared.Return(buf);
            }
            Interlocked.Increment(ref decoded);
        });
        return decoded;
    }

    /// <summary>
    /// Writes a synthetic edge³ dataset (128³ cubes) unless it exists: wobbly cells about 40 voxels wide,
    /// random 64-bit IDs, about 40% background, written through <see cref="KnossosWriter"/> in 256³ slabs.
    /// </summary>
    public static void EnsureDataset(string path, int edge, TextWriter log)
    {
        var marker = Path.Combine(path, ".complete");
        if (File.Exists(marker)) return;
        if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        var sw = Stopwatch.StartNew();
        var writer = KnossosWriter.Create(path, "bench", new Xyz(edge, edge, edge), 128, (10, 10, 25));
        var wob = new int[edge];
        for (int i = 0; i < edge; i++) wob[i] = (int)Math.Round(9 * Math.Sin(i * 0.07) + 4 * Math.Sin(i * 0.31));
        const int slab = 256;
        var data = new ulong[slab * slab * slab];
        for (int z0 = 0; z0 < edge; z0 += slab)
            for (int y0 = 0; y0 < edge; y0 += slab)
                for (int x0 = 0; x0 < edge; x0 += slab)
                {
                    Parallel.For(0, slab, z =>
                    {
                        int gz = z0 + z;
                        for (int y = 0; y < slab; y++)
                        {
                            int gy = y0 + y;
                            var row = data.AsSpan((z * slab + y) * slab, slab);
                            for (int x = 0; x < slab; x++)
                            {
                                int gx = x0 + x;
                                int cx = (gx + 64 + wob[gy]) / 40, cy = (gy + 64 + wob[gz]) / 40, cz = (gz + 64 + wob[gx]) / 40;
                                ulong h = Mix((uint)cx | ((ulong)(uint)cy << 21) | ((ulong)(uint)cz << 42));
                                row[x] = (h & 0xF) < 6 ? 0 : h | 1;
                            }
                        }
                    });
                    writer.WriteSeg(new Xyz(x0, y0, z0), NdArray.Wrap(data, slab, slab, slab));
                }
        File.WriteAllText(marker, "");
        long bytes = Directory.GetFiles(Path.Combine(path, "mag1"), "*.zip", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        log.WriteLine($"generated {edge}^3 KNOSSOS dataset in {sw.Elapsed.TotalSeconds:F1} s at {path} ({bytes / (1 << 20)} MiB of cube files)");
    }

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
