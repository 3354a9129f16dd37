using System.Globalization;
using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Knossos;

/// <summary>Fixture <c>ds1</c> and its EXPECTED.json (produced by knossos_utils master and syconn2).</summary>
public sealed class KnossosFixtureTests
{
    private static readonly Lazy<JsonObject?> ExpectedJson = new(() =>
    {
        try
        {
            var p = Shared.KnossosFixture("EXPECTED.json");
            return File.Exists(p) ? JsonNode.Parse(File.ReadAllText(p))!.AsObject() : null;
        }
        catch (SkipException)
        {
            return null;
        }
    });

    private static readonly Lazy<KnossosDataset> Ds1 = new(() => KnossosDataset.Open(Shared.KnossosFixture("ds1"),
        new KnossosDatasetOptions { CacheBytes = 64L << 20 }));

    private static JsonObject Expected
    {
        get
        {
            Requires.That(ExpectedJson.Value is not null, "fixtures/knossos/EXPECTED.json");
            return ExpectedJson.Value!;
        }
    }

    private static IEnumerable<object[]> Names(string section)
    {
        if (ExpectedJson.Value is null) return [["(fixture missing)"]];
        return ExpectedJson.Value[section]!.AsArray().Select(b => new object[] { (string)b!["name"]! });
    }

    public static IEnumerable<object[]> LoadSegBoxes() => Names("load_seg");
    public static IEnumerable<object[]> ErrorBoxes() => Names("load_seg_errors");

    private static JsonObject Box(string section, string name) =>
        Expected[section]!.AsArray().Select(b => b!.AsObject()).Single(b => (string)b["name"]! == name);

    private static Xyz Triple(JsonNode? n) => new((long)n![0]!, (long)n[1]!, (long)n[2]!);

    private static ulong Id(JsonNode? n) => ulong.Parse((string)n!, CultureInfo.InvariantCulture);

    [SkippableTheory]
    [MemberData(nameof(LoadSegBoxes))]
    public void LoadSeg_reproduces_every_expected_box(string name)
    {
        var box = Box("load_seg", name);
        var offset = Triple(box["offset_xyz"]);
        var size = Triple(box["size_xyz"]);
        var seg = Ds1.Value.LoadSeg(offset.ToArray(), size.ToArray());

        Assert.Equal("<u8", seg.DType.Str);
        Assert.Equal(box["result_shape_zyx"]!.AsArray().Select(v => (long)v!).ToArray(), seg.ShapeArray);
        var summary = SegmentationSummary.Compute(seg.AsSpan<ulong>(), size);
        Assert.Equal((string)box["sha256_zyx"]!, summary.Sha256Zyx);
        Assert.Equal((string)box["sha256_zyx"]!, seg.Sha256C());
        Assert.Equal((string)box["sha256_xyz"]!, summary.Sha256Xyz);
        Assert.Equal((long)box["nonzero"]!, summary.Nonzero);
        var expectedCounts = box["counts"]!.AsObject().ToDictionary(kv => ulong.Parse(kv.Key, CultureInfo.InvariantCulture), kv => (long)kv.Value!);
        Assert.Equal(expectedCounts.OrderBy(kv => kv.Key), summary.Counts.OrderBy(kv => kv.Key));

        var values = seg.AsSpan<ulong>();
        foreach (var s in box["samples_global_xyz_id"]!.AsArray())
        {
            long x = (long)s![0]! - offset.X, y = (long)s[1]! - offset.Y, z = (long)s[2]! - offset.Z;
            Assert.Equal(Id(s[3]), values[(int)((z * size.Y + y) * size.X + x)]);
        }
    }

    [SkippableTheory]
    [MemberData(nameof(LoadSegBoxes))]
    public void Span_overload_overwrites_a_dirty_buffer(string name)
    {
        var box = Box("load_seg", name);
        var size = Triple(box["size_xyz"]);
        var buffer = new ulong[size.Product];
        buffer.AsSpan().Fill(0xDEADBEEFUL);
        Ds1.Value.LoadSeg(Triple(box["offset_xyz"]), size, buffer);
        Assert.Equal((string)box["sha256_zyx"]!, Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(buffer.AsSpan()))));
    }

    [SkippableTheory]
    [MemberData(nameof(ErrorBoxes))]
    public void LoadSeg_raises_for_every_error_box(string name)
    {
        var box = Box("load_seg_errors", name);
        Assert.True((bool)box["knossos_utils_master"]!["raises"]! && (bool)box["knossos_utils_syconn2"]!["raises"]!);
        var offset = Triple(box["offset_xyz"]);
        var size = Triple(box["size_xyz"]);
        var e = Assert.ThrowsAny<ArgumentException>(() => Ds1.Value.LoadSeg(offset, size));
        if (size.X == 0 || size.Y == 0 || size.Z == 0) Assert.Contains("size", e.Message);
        else Assert.Contains("totally out of bounds", e.Message);
        Assert.ThrowsAny<ArgumentException>(() => Ds1.Value.LoadMask(offset, size, 5));
    }

    [SkippableFact]
    public void Mag1_cubes_match_file_by_file()
    {
        var root = Shared.KnossosFixture("ds1");
        var ds = Ds1.Value;
        foreach (var cubeNode in Expected["mag1_cubes"]!.AsArray())
        {
            var cube = cubeNode!.AsObject();
            var rel = (string)cube["path"]!;
            var path = Path.Combine(root, rel);
            Assert.Equal((bool)cube["exists"]!, File.Exists(path));
            // our own naming reproduces the path
            var parts = rel.Split('/');
            long i = long.Parse(parts[1][1..], CultureInfo.InvariantCulture), j = long.Parse(parts[2][1..], CultureInfo.InvariantCulture),
                k = long.Parse(parts[3][1..], CultureInfo.InvariantCulture);
            Assert.Equal(Path.GetFullPath(path), ds.Config.CubePath(i, j, k));
            if (!(bool)cube["exists"]!) continue;

            var bytes = File.ReadAllBytes(path);
            Assert.Equal((long)cube["zip_file_size"]!, bytes.Length);
            Assert.Equal((int)cube["zip_compress_type"]!, BitConverter.ToUInt16(bytes, 8)); // first local header's method
            using (var zip = new ZipArchive(new MemoryStream(bytes), ZipArchiveMode.Read))
            {
                Assert.Equal((string)cube["zip_member"]!, zip.Entries[0].FullName);
                Assert.Equal((long)cube["snappy_len"]!, zip.Entries[0].Length);
            }
            var values = new ulong[ds.CubeShape.Product];
            int snappyLen = KnossosCubeCodec.Decode(new MemoryStream(bytes), values, path);
            Assert.Equal((long)cube["snappy_len"]!, snappyLen);
            Assert.Equal((long)cube["raw_len"]!, values.Length * 8L);
            Assert.Equal((string)cube["sha256_raw"]!, Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values.AsSpan()))));
            Assert.Equal((long)cube["nonzero"]!, values.LongCount(v => v != 0));
        }
    }

    [SkippableFact]
    public void Config_entry_points_that_work_upstream_work_here()
    {
        var root = Shared.KnossosFixture("ds1");
        var paths = new Dictionary<string, string>
        {
            ["kd_factory(dataset dir)"] = root,
            ["initialize_from_conf(kfixA.pyk.conf)"] = Path.Combine(root, "kfixA.pyk.conf"),
            ["initialize_from_conf(kfixA.k.toml)"] = Path.Combine(root, "kfixA.k.toml"),
            ["initialize_from_conf(mag1/knossos.conf)"] = Path.Combine(root, "mag1", "knossos.conf"),
            ["initialize_from_knossos_path(dataset dir)"] = Path.Combine(root, "mag1", "knossos.conf"),
        };
        var expectedKinds = new Dictionary<string, KnossosConfigKind>
        {
            ["kd_factory(dataset dir)"] = KnossosConfigKind.PykConf,
            ["initialize_from_conf(kfixA.pyk.conf)"] = KnossosConfigKind.PykConf,
            ["initialize_from_conf(kfixA.k.toml)"] = KnossosConfigKind.Toml,
            ["initialize_from_conf(mag1/knossos.conf)"] = KnossosConfigKind.LegacyConf,
            ["initialize_from_knossos_path(dataset dir)"] = KnossosConfigKind.LegacyConf,
        };
        var versions = Expected["config_entry_points"]!.AsObject();
        var full = Box("load_seg", "unaligned");
        int checkedCount = 0;
        foreach (var (entry, _) in versions["knossos_utils_master"]!.AsObject())
        {
            var ok = versions.Select(v => v.Value![entry]!.AsObject()).FirstOrDefault(r => (string)r["status"]! == "ok");
            if (ok is null) continue;
            using var ds = KnossosDataset.Open(paths[entry]);
            Assert.Equal(expectedKinds[entry], ds.Config.Kind);
            Assert.Equal((string)ok["experiment_name"]!, ds.Name);
            Assert.Equal(Triple(ok["boundary"]), ds.Boundary);
            Assert.Equal(Triple(ok["cube_shape"]), ds.CubeShape);
            Assert.Equal(Path.GetFullPath(root), ds.Root);
            Assert.Equal((10.0, 10.0, 25.0), ds.Scales[0]);
            var seg = ds.LoadSeg(Triple(full["offset_xyz"]), Triple(full["size_xyz"]));
            Assert.Equal((string)full["sha256_zyx"]!, seg.Sha256C());
            checkedCount++;
        }
        Assert.Equal(5, checkedCount);
        Assert.Equal(3, KnossosDataset.Open(Path.Combine(root, "kfixA.k.toml")).Scales.Count);
    }

    [SkippableFact]
    public void LoadMask_reproduces_voxel_storage_masks_for_overlap_0_and_1()
    {
        var objects = Expected["voxel_storage"]!["objects"]!.AsObject();
        int masks = 0;
        foreach (var (key, objNode) in objects)
        {
            ulong id = ulong.Parse(key, CultureInfo.InvariantCulture);
            var obj = objNode!.AsObject();
            var boxes = obj["bounding_boxes_xyz"]!.AsArray();
            foreach (var (field, overlap) in new[] { ("get_voxelmask_offset", 0), ("get_voxelmask_offset_overlap1", 1) })
            {
                var expectedMasks = obj[field]!["masks"]!.AsArray();
                Assert.Equal(boxes.Count, expectedMasks.Count);
                for (int b = 0; b < boxes.Count; b++)
                {
                    var lo = Triple(boxes[b]![0]);
                    var hi = Triple(boxes[b]![1]);
                    var offset = new Xyz(lo.X - overlap, lo.Y - overlap, lo.Z - overlap);
                    var size = new Xyz(hi.X - lo.X + 2 * overlap, hi.Y - lo.Y + 2 * overlap, hi.Z - lo.Z + 2 * overlap);
                    var mask = Ds1.Value.LoadMask(offset, size, id);
                    var exp = expectedMasks[b]!;
                    Assert.Equal("|b1", mask.DType.Str);
                    Assert.Equal(exp["shape_xyz"]!.AsArray().Select(v => (long)v!).ToArray(), mask.ShapeArray);
                    Assert.Equal((long)exp["count"]!, mask.Data.Span.Count((byte)1));
                    Assert.Equal((string)exp["sha256_xyz_u8"]!, mask.Sha256C());
                    masks++;
                }
            }
        }
        Assert.True(masks > 10);
    }

    [SkippableFact]
    public void Concurrent_calls_with_a_small_cache_agree_with_the_expected_checksums()
    {
        var boxes = Expected["load_seg"]!.AsArray().Select(b => b!.AsObject()).ToArray();
        // 20 MiB holds one decoded 128³ cube: constant eviction while 4 threads read.
        using var ds = KnossosDataset.Open(Shared.KnossosFixture("ds1"), new KnossosDatasetOptions { CacheBytes = 20L << 20, MaxDegreeOfParallelism = 2 });
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        Parallel.For(0, boxes.Length * 2, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            var box = boxes[i % boxes.Length];
            if ((long)box["size_xyz"]![0]! * (long)box["size_xyz"]![1]! * (long)box["size_xyz"]![2]! > 4_000_000) return;
            var seg = ds.LoadSeg(Triple(box["offset_xyz"]), Triple(box["size_xyz"]));
            if (seg.Sha256C() != (string)box["sha256_zyx"]!) failures.Add((string)box["name"]!);
        });
        Assert.Empty(failures);
        Assert.True(ds.CachedBytes <= 20L << 20);
    }

    [SkippableFact]
    public void Writer_config_texts_match_the_fixture_byte_for_byte()
    {
        var root = Shared.KnossosFixture("ds1");
        var boundary = new Xyz(256, 256, 256);
        Assert.Equal(File.ReadAllText(Path.Combine(root, "kfixA.pyk.conf")), KnossosConfigText.PykConfText("kfixA", boundary, 128, (10, 10, 25)));
        Assert.Equal(File.ReadAllText(Path.Combine(root, "mag1", "knossos.conf")), KnossosConfigText.LegacyConfText("kfixA", boundary, (10, 10, 25)));
        var scales = KnossosConfigText.TomlScales(boundary, new Xyz(128, 128, 128), (10, 10, 25));
        Assert.Equal(File.ReadAllText(Path.Combine(root, "kfixA.k.toml")), KnossosConfigText.TomlText("kfixA", boundary, new Xyz(128, 128, 128), scales));
    }
}
