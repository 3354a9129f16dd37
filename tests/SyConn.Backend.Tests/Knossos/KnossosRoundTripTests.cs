using System.Globalization;
using System.IO.Compression;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Knossos;

/// <summary>Writer → reader round trips, cube codec edge cases, Python interop and the CLI.</summary>
public sealed class KnossosRoundTripTests
{
    private static readonly ulong[] BigIds = [5, (1UL << 32) + 5, (1UL << 53) + 1, (1UL << 63) + 7, ulong.MaxValue - 1, 1000];

    /// <summary>A sparse random label volume [z][y][x]: background plus random boxes of random (big) IDs.</summary>
    private static ulong[] RandomVolume(Xyz b, int seed, int blobs)
    {
        var rng = new Random(seed);
        var v = new ulong[b.Product];
        for (int n = 0; n < blobs; n++)
        {
            ulong id = rng.Next(3) == 0 ? BigIds[rng.Next(BigIds.Length)] : (ulong)rng.NextInt64(1, long.MaxValue) * 2 + 1;
            long x0 = rng.NextInt64(b.X), y0 = rng.NextInt64(b.Y), z0 = rng.NextInt64(b.Z);
            long x1 = Math.Min(b.X, x0 + rng.Next(1, 40)), y1 = Math.Min(b.Y, y0 + rng.Next(1, 30)), z1 = Math.Min(b.Z, z0 + rng.Next(1, 20));
            for (long z = z0; z < z1; z++)
                for (long y = y0; y < y1; y++)
                    v.AsSpan((int)((z * b.Y + y) * b.X + x0), (int)(x1 - x0)).Fill(id);
        }
        return v;
    }

    /// <summary>What load_seg must return for a box, computed directly from the reference volume.</summary>
    private static ulong[] Expected(ulong[] vol, Xyz b, Xyz off, Xyz size)
    {
        var r = new ulong[size.Product];
        for (long z = 0; z < size.Z; z++)
            for (long y = 0; y < size.Y; y++)
                for (long x = 0; x < size.X; x++)
                {
                    long gx = off.X + x, gy = off.Y + y, gz = off.Z + z;
                    if (gx < 0 || gy < 0 || gz < 0 || gx >= b.X || gy >= b.Y || gz >= b.Z) continue;
                    r[(z * size.Y + y) * size.X + x] = vol[(gz * b.Y + gy) * b.X + gx];
                }
        return r;
    }

    private static NdArray Sub(ulong[] vol, Xyz b, Xyz off, Xyz size) => NdArray.Create(Expected(vol, b, off, size), size.Z, size.Y, size.X);

    [Fact]
    public void Random_segmentation_written_with_edge_32_reads_back_identically()
    {
        using var t = new TempDir();
        var b = new Xyz(100, 70, 45); // not multiples of 32
        var vol = RandomVolume(b, 1234, 60);
        var w = KnossosWriter.Create(t.Path, "rt", b, 32, (9.5, 9.5, 21), new KnossosCreateOptions { WriteToml = true });
        // write in overlapping, unaligned chunks: merging keeps what earlier chunks wrote outside the region
        var rng = new Random(7);
        var chunks = new List<(Xyz off, Xyz size)> { (new Xyz(0, 0, 0), new Xyz(60, 70, 45)), (new Xyz(50, 0, 0), new Xyz(50, 40, 45)), (new Xyz(45, 30, 0), new Xyz(55, 40, 45)) };
        // an extra chunk that sticks out beyond the boundary (clipped on write)
        chunks.Add((new Xyz(90, 60, 40), new Xyz(30, 30, 30)));
        var volPadded = vol; // values beyond the boundary are ignored by the writer
        foreach (var (off, size) in chunks) w.WriteSeg(off, Sub(volPadded, b, off, size));

        foreach (var entry in new[] { t.Path, t.File("rt.k.toml"), t.File("rt.pyk.conf") })
        {
            using var ds = KnossosDataset.Open(entry, new KnossosDatasetOptions { CacheBytes = 1 << 20 });
            Assert.Equal(new Xyz(32, 32, 32), ds.CubeShape);
            Assert.Equal(b, ds.Boundary);
            Assert.Equal(vol, ds.LoadSeg(new Xyz(0, 0, 0), b).ToArray<ulong>());
            for (int i = 0; i < 40; i++)
            {
                var off = new Xyz(rng.Next(-20, 110), rng.Next(-20, 75), rng.Next(-20, 50));
                var size = new Xyz(rng.Next(1, 60), rng.Next(1, 60), rng.Next(1, 60));
                bool outside = off.X > b.X || off.Y > b.Y || off.Z > b.Z || off.X + size.X < 0 || off.Y + size.Y < 0 || off.Z + size.Z < 0;
                if (outside)
                {
                    Assert.Throws<ArgumentOutOfRangeException>(() => ds.LoadSeg(off, size));
                    continue;
                }
                var got = ds.LoadSeg(off, size);
                Assert.Equal(new[] { size.Z, size.Y, size.X }, got.ShapeArray);
                Assert.Equal(Expected(vol, b, off, size), got.ToArray<ulong>());
            }
        }
        // every present cube is a zip with one deflated member named after the file
        var files = Directory.GetFiles(t.File("mag1"), "*.seg.sz.zip", SearchOption.AllDirectories);
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            var bytes = File.ReadAllBytes(f);
            Assert.Equal(8, BitConverter.ToUInt16(bytes, 8));
            using var zip = new ZipArchive(new MemoryStream(bytes));
            Assert.Single(zip.Entries);
            Assert.Equal(Path.GetFileNameWithoutExtension(f), zip.Entries[0].FullName);
        }
        Assert.Empty(Directory.GetFiles(t.Path, "*.tmp*", SearchOption.AllDirectories));
    }

    [Fact]
    public void All_zero_cubes_are_never_written_and_cleared_cubes_are_deleted()
    {
        using var t = new TempDir();
        var b = new Xyz(64, 64, 64);
        var w = KnossosWriter.Create(t.Path, "z", b, 32, (1, 1, 1));
        w.WriteSeg(new Xyz(0, 0, 0), NdArray.Zeros(DType.UInt64, 64, 64, 64));
        Assert.Empty(Directory.GetFiles(t.File("mag1"), "*.zip", SearchOption.AllDirectories));

        var one = new ulong[1];
        one[0] = ulong.MaxValue;
        w.WriteSeg(new Xyz(40, 3, 3), NdArray.Create(one, 1, 1, 1));
        w.WriteSeg(new Xyz(5, 5, 5), NdArray.Create(one, 1, 1, 1));
        var c1 = w.Config.CubePath(1, 0, 0);
        var c0 = w.Config.CubePath(0, 0, 0);
        Assert.True(File.Exists(c1));
        Assert.True(File.Exists(c0));
        Assert.Equal(2, Directory.GetFiles(t.File("mag1"), "*.zip", SearchOption.AllDirectories).Length);
        // zeroing a region that covers the voxel in cube (1,0,0) but not the one in (0,0,0)
        w.WriteSeg(new Xyz(20, 0, 0), NdArray.Zeros(DType.UInt64, 10, 10, 30));
        Assert.False(File.Exists(c1));
        Assert.True(File.Exists(c0));
        using var ds = KnossosDataset.Open(t.Path, new KnossosDatasetOptions { CacheBytes = 0 });
        var all = ds.LoadSeg(new Xyz(0, 0, 0), b).ToArray<ulong>();
        Assert.Equal(1, all.Count(v => v != 0));
        Assert.Equal(ulong.MaxValue, all[(5 * 64 + 5) * 64 + 5]);
    }

    [Fact]
    public void Data_stored_beyond_the_boundary_reads_as_zero_and_stored_members_are_accepted()
    {
        using var t = new TempDir();
        var w = KnossosWriter.Create(t.Path, "edge", new Xyz(40, 40, 40), 32, (1, 1, 1));
        var cube = new ulong[32 * 32 * 32];
        cube.AsSpan().Fill(9); // whole cube (1,1,1): only [32,40)³ lies inside
        var path = w.Config.CubePath(1, 1, 1);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, KnossosCubeCodec.EncodeToArray(cube, Path.GetFileNameWithoutExtension(path), CompressionLevel.NoCompression));
        Assert.Equal(0, BitConverter.ToUInt16(File.ReadAllBytes(path), 8)); // stored
        using var ds = KnossosDataset.Open(t.Path);
        var seg = ds.LoadSeg(new Xyz(30, 30, 30), new Xyz(20, 20, 20)).ToArray<ulong>();
        Assert.Equal(8 * 8 * 8, seg.Count(v => v == 9));
        Assert.Equal(20 * 20 * 20 - 512, seg.Count(v => v == 0));
    }

    [Fact]
    public void Corrupt_cubes_raise_InvalidDataException_naming_the_file()
    {
        using var t = new TempDir();
        var w = KnossosWriter.Create(t.Path, "bad", new Xyz(64, 32, 32), 32, (1, 1, 1));
        var p0 = w.Config.CubePath(0, 0, 0);
        var p1 = w.Config.CubePath(1, 0, 0);
        Directory.CreateDirectory(Path.GetDirectoryName(p0)!);
        Directory.CreateDirectory(Path.GetDirectoryName(p1)!);
        File.WriteAllBytes(p0, "not a zip file at all"u8.ToArray());
        // right container, wrong length: a cube of 16³ voxels in a 32³ dataset
        File.WriteAllBytes(p1, KnossosCubeCodec.EncodeToArray(new ulong[16 * 16 * 16], "x.seg.sz"));
        using var ds = KnossosDataset.Open(t.Path);
        var e = Assert.Throws<InvalidDataException>(() => ds.LoadSeg(new Xyz(0, 0, 0), new Xyz(10, 10, 10)));
        Assert.Contains(p0, e.Message);
        e = Assert.Throws<InvalidDataException>(() => ds.LoadSeg(new Xyz(0, 0, 0), new Xyz(64, 10, 10)));
        Assert.Contains("bad_mag1_x000", e.Message);
        e = Assert.Throws<InvalidDataException>(() => ds.LoadSeg(new Xyz(40, 0, 0), new Xyz(10, 10, 10)));
        Assert.Contains(p1, e.Message);
        Assert.Contains("expected exactly 262144", e.Message);
        // corrupt snappy payload inside a valid zip
        using (var ms = new MemoryStream())
        {
            using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, true))
            using (var s = zip.CreateEntry("m.seg.sz").Open())
                s.Write([0x80, 0x80, 0x10, 0xff, 0xff, 0xff, 0x01, 0x02]);
            File.WriteAllBytes(p1, ms.ToArray());
        }
        e = Assert.Throws<InvalidDataException>(() => ds.LoadSeg(new Xyz(40, 0, 0), new Xyz(10, 10, 10)));
        Assert.Contains(p1, e.Message);
        // a writer refuses to merge into a corrupt cube and leaves it alone
        var before = File.ReadAllBytes(p0);
        Assert.Throws<InvalidDataException>(() => w.WriteSeg(new Xyz(0, 0, 0), NdArray.Zeros(DType.UInt64, 1, 1, 1)));
        Assert.Equal(before, File.ReadAllBytes(p0));
    }

    [Fact]
    public void Writer_rejects_misuse()
    {
        using var t = new TempDir();
        var w = KnossosWriter.Create(t.Path, "m", new Xyz(8, 8, 8), 4, (1, 1, 1), new KnossosCreateOptions { WriteToml = true });
        Assert.Throws<ArgumentException>(() => w.WriteSeg(new Xyz(-1, 0, 0), NdArray.Zeros(DType.UInt64, 1, 1, 1)));
        Assert.Throws<ArgumentException>(() => w.WriteSeg(new Xyz(0, 0, 0), NdArray.Zeros(DType.Int64, 1, 1, 1)));
        Assert.Throws<ArgumentException>(() => w.WriteSeg(new Xyz(0, 0, 0), NdArray.Zeros(DType.UInt64, 1, 1)));
        Assert.Throws<IOException>(() => KnossosWriter.Create(t.Path, "m", new Xyz(8, 8, 8), 4, (1, 1, 1)));
        Assert.Throws<ArgumentException>(() => KnossosWriter.Create(t.File("x"), "m", new Xyz(8, 8, 8), 64, (1, 1, 1), new KnossosCreateOptions { WriteLegacyConf = true }));
        Assert.Throws<ArgumentException>(() => KnossosWriter.Create(t.File("y"), "bad name", new Xyz(8, 8, 8), 4, (1, 1, 1)));
        // legacy conf with edge 128 reads back through the legacy path
        var l = KnossosWriter.Create(t.File("leg"), "leg", new Xyz(300, 10, 10), 128, (10, 10, 25), new KnossosCreateOptions { WriteLegacyConf = true });
        var cfg = KnossosConfigFiles.Open(Path.Combine(t.File("leg"), "mag1", "knossos.conf"));
        Assert.Equal(("leg", new Xyz(300, 10, 10)), (cfg.Name, cfg.Boundary));
        Assert.Equal(l.Config.Root, cfg.Root);
    }

    [SkippableFact]
    public void Debian_python_reads_our_cubes_with_an_independent_checker()
    {
        Infrastructure.Python.Require("snappy", "numpy");
        using var t = new TempDir();
        var b = new Xyz(70, 50, 40);
        var vol = RandomVolume(b, 99, 40);
        var w = KnossosWriter.Create(t.Path, "py", b, 32, (10, 10, 25));
        w.WriteSeg(new Xyz(0, 0, 0), NdArray.Create(vol, b.Z, b.Y, b.X));
        using var ds = KnossosDataset.Open(t.Path);
        var ours = SegmentationSummary.Compute(ds.LoadSeg(new Xyz(0, 0, 0), b).AsSpan<ulong>(), b);

        const string checker = """
            import glob, hashlib, json, os, re, sys, zipfile
            import numpy as np, snappy
            root, name, bx, by, bz, edge = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
            vol = np.zeros((bz, by, bx), dtype=np.uint64)
            members = []
            for path in glob.glob(os.path.join(root, 'mag1', 'x*', 'y*', 'z*', '*.seg.sz.zip')):
                fname = os.path.basename(path)
                m = re.fullmatch(re.escape(name) + r'_mag1_x(\d{4,})_y(\d{4,})_z(\d{4,})\.seg\.sz\.zip', fname)
                assert m, fname
                i, j, k = map(int, m.groups())
                with zipfile.ZipFile(path) as z:
                    info = z.infolist()
                    assert len(info) == 1 and info[0].filename == fname[:-4] and info[0].compress_type == zipfile.ZIP_DEFLATED, info
                    raw = snappy.decompress(z.read(info[0].filename))
                assert len(raw) == 8 * edge ** 3
                cube = np.frombuffer(raw, dtype='<u8').reshape(edge, edge, edge)
                assert cube.any()
                x0, y0, z0 = i * edge, j * edge, k * edge
                sub = cube[: max(0, min(edge, bz - z0)), : max(0, min(edge, by - y0)), : max(0, min(edge, bx - x0))]
                vol[z0:z0 + sub.shape[0], y0:y0 + sub.shape[1], x0:x0 + sub.shape[2]] = sub
                members.append(fname)
            ids, counts = np.unique(vol, return_counts=True)
            print(json.dumps({
                'cubes': len(members),
                'sha256_zyx': hashlib.sha256(np.ascontiguousarray(vol).astype('<u8').tobytes()).hexdigest(),
                'sha256_xyz': hashlib.sha256(np.ascontiguousarray(vol.swapaxes(0, 2)).astype('<u8').tobytes()).hexdigest(),
                'counts': {str(int(i)): int(c) for i, c in zip(ids, counts)},
            }))
            """;
        var outText = Infrastructure.Python.RunChecked(checker, [t.Path, "py", b.X.ToString(CultureInfo.InvariantCulture), b.Y.ToString(CultureInfo.InvariantCulture),
            b.Z.ToString(CultureInfo.InvariantCulture), "32"]);
        var py = JsonNode.Parse(outText)!;
        Assert.Equal(Directory.GetFiles(t.File("mag1"), "*.seg.sz.zip", SearchOption.AllDirectories).Length, (int)py["cubes"]!);
        Assert.Equal(ours.Sha256Zyx, (string)py["sha256_zyx"]!);
        Assert.Equal(ours.Sha256Xyz, (string)py["sha256_xyz"]!);
        var pyCounts = py["counts"]!.AsObject().ToDictionary(kv => ulong.Parse(kv.Key, CultureInfo.InvariantCulture), kv => (long)kv.Value!);
        Assert.Equal(pyCounts.OrderBy(kv => kv.Key), ours.Counts.OrderBy(kv => kv.Key));
        Assert.Contains(ours.Counts.Keys, id => id > 1UL << 63);
    }

    [SkippableFact]
    public void Cli_load_seg_json_matches_the_fixture_and_reports_errors()
    {
        var expectedPath = Shared.KnossosFixture("EXPECTED.json");
        Requires.That(File.Exists(expectedPath), "fixtures/knossos/EXPECTED.json");
        var box = JsonNode.Parse(File.ReadAllText(expectedPath))!["load_seg"]!.AsArray().Single(n => (string)n!["name"]! == "past_upper_x_negative_z")!;
        string Csv(JsonNode n) => string.Join(",", n.AsArray().Select(v => (long)v!));
        var so = new StringWriter();
        var se = new StringWriter();
        int rc = SyConn.Backend.Cli.Cli.Run(["load-seg", Shared.KnossosFixture("ds1"), $"--offset={Csv(box["offset_xyz"]!)}", "--size", Csv(box["size_xyz"]!), "--json"], so, se);
        Assert.True(rc == 0, se.ToString());
        var got = JsonNode.Parse(so.ToString())!;
        Assert.True(JsonNode.DeepEquals(box["result_shape_zyx"], got["result_shape_zyx"]));
        Assert.Equal((string)box["sha256_zyx"]!, (string)got["sha256_zyx"]!);
        Assert.Equal((string)box["sha256_xyz"]!, (string)got["sha256_xyz"]!);
        Assert.Equal((long)box["nonzero"]!, (long)got["nonzero"]!);
        Assert.True(JsonNode.DeepEquals(box["counts"], got["counts"]), got["counts"]!.ToJsonString());

        rc = SyConn.Backend.Cli.Cli.Run(["load-seg", Shared.KnossosFixture("ds1"), "--offset=-20,0,0", "--size=10,10,10"], new StringWriter(), se = new StringWriter());
        Assert.Equal(1, rc);
        Assert.Contains("out of bounds", se.ToString());
        rc = SyConn.Backend.Cli.Cli.Run(["load-seg", Shared.KnossosFixture("ds1"), "--offset=1,2", "--size=10,10,10"], new StringWriter(), se = new StringWriter());
        Assert.Equal(2, rc);
    }
}
