using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Cli;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Stores;

/// <summary>VoxelStorageDyn in voxel mode reproduces every object of the KNOSSOS fixture's EXPECTED.json.</summary>
public class VoxelModeTests
{
    private static JsonObject Expected() =>
        (JsonObject)JsonNode.Parse(File.ReadAllText(Shared.KnossosFixture("EXPECTED.json")))!["voxel_storage"]!;

    private static StoreKey Key(string s) => BigInteger.Parse(s, CultureInfo.InvariantCulture);

    [SkippableFact]
    public void Every_object_matches_expected_masks_offsets_and_cubed_data()
    {
        var exp = Expected();
        using var vs = VoxelStorage.Open(Shared.KnossosFixture((string)exp["pkl"]!), StoreOptions.Default);
        Assert.True(vs.VoxelMode);
        Assert.Equal(((JsonArray)exp["keys"]!).Select(k => Key((string)k!)).ToList(), vs.Keys.ToList());
        foreach (var (id, o) in (JsonObject)exp["objects"]!)
        {
            var key = Key(id);
            var boxes = vs.GetBoundingBoxes(key);
            Assert.Equal(o!["bounding_boxes_xyz"]!.ToJsonString(), new JsonArray(boxes.Select(b => (JsonNode?)new JsonArray(b.Select(c => (JsonNode?)new JsonArray(c.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray())).ToArray())).ToArray()).ToJsonString());
            Assert.Equal((string)o["bounding_boxes_dtype"]!, vs.GetBoundingData(key).DType.Str);
            foreach (var (field, overlap) in new[] { ("get_voxelmask_offset", 0), ("get_voxelmask_offset_overlap1", 1) })
            {
                var actual = VoxelsCommand.Summarise(vs, key, overlap);
                AssertJsonEqual(o[field]!, actual["get_voxelmask_offset"]!, $"{id} {field}");
                var cubed = (JsonObject)actual["get_voxel_data_cubed"]!;
                foreach (var f in new[] { "offset_xyz", "dtype", "shape_xyz", "count", "sha256_xyz_u8" })
                    AssertJsonEqual(o["get_voxel_data_cubed"]![f]!, cubed[f]!, $"{id} cubed {f}");
                Assert.Equal((long)o["object_size"]!, (long)actual["object_size"]!);
                AssertJsonEqual(o["object_repcoord_xyz"]!, actual["object_repcoord_xyz"]!, $"{id} repcoord");
            }
        }
    }

    private static void AssertJsonEqual(JsonNode expected, JsonNode actual, string what) =>
        Assert.True(JsonNode.DeepEquals(expected, actual), $"{what}: expected {expected.ToJsonString()}, got {actual.ToJsonString()}");

    [SkippableFact]
    public void Cli_voxels_prints_the_expected_json()
    {
        var exp = Expected();
        var o = exp["objects"]!["4294967301"]!;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        int rc = global::SyConn.Backend.Cli.Cli.Run(["voxels", Shared.KnossosFixture("ds1_voxelstore.pkl"), "4294967301", "--overlap", "1", "--json", "--dataset", Shared.KnossosFixture("ds1")], stdout, stderr);
        Assert.True(rc == 0, stderr.ToString());
        var actual = JsonNode.Parse(stdout.ToString())!;
        AssertJsonEqual(o["get_voxelmask_offset_overlap1"]!, actual["get_voxelmask_offset"]!, "cli masks");
        Assert.Equal(1, (int)actual["overlap"]!);
    }

    [Fact]
    public void Voxel_mode_without_a_dataset_is_a_clear_error()
    {
        using var dir = new TempDir();
        var path = dir.File("voxel.pkl");
        using (var vs = new VoxelStorageDyn(path, StoreOptions.Writable))
        {
            vs[5] = NdArray.Create(new long[] { 0, 0, 0, 2, 2, 2 }, 1, 2, 3);
            vs.Push();
        }
        var e = Assert.Throws<InvalidOperationException>(() => VoxelStorage.Open(path));
        Assert.Contains("voxeldata_path", e.Message, StringComparison.Ordinal);
        using var plain = new VoxelStorageDyn(path);
        Assert.Throws<InvalidOperationException>(() => plain.GetVoxelMaskOffset(5));
    }

    [Fact]
    public void Relative_dataset_path_resolves_beside_the_store_first()
    {
        using var dir = new TempDir();
        var storeDir = Path.Combine(dir.Path, "store");
        Directory.CreateDirectory(storeDir);
        var writer = KnossosWriter.Create(Path.Combine(storeDir, "seg"), "tiny", new Xyz(40, 40, 40), 32, (10, 10, 25));
        var data = new ulong[10 * 10 * 10];
        for (int z = 0; z < 10; z++)
            for (int y = 0; y < 10; y++)
                for (int x = 0; x < 10; x++)
                    data[(z * 10 + y) * 10 + x] = x < 5 ? 7UL : ulong.MaxValue;
        writer.WriteSeg(new Xyz(28, 28, 28), NdArray.Create(data, 10, 10, 10));
        var path = Path.Combine(storeDir, "voxel.pkl");
        using (var vs = new VoxelStorageDyn(path, StoreOptions.Writable, voxeldataPath: "seg"))
        {
            vs[7] = NdArray.Create(new long[] { 28, 28, 28, 38, 38, 38 }, 1, 2, 3);
            vs[ulong.MaxValue] = NdArray.Create(new long[] { 30, 28, 28, 38, 38, 38, 33, 30, 30, 40, 40, 40 }, 2, 2, 3);
            vs.Push();
        }
        using var r = VoxelStorage.Open(path);
        var m = r.GetVoxelMaskOffset(7);
        Assert.Equal(new long[] { 10, 10, 10 }, m.Masks[0].ShapeArray);
        Assert.Equal(500, m.Masks[0].Data.ToArray().Count(b => b != 0));
        Assert.Equal(1, m.Masks[0].Data.Span[0]);                    // x=28 is object 7
        Assert.Equal(0, m.Masks[0].Data.Span[5 * 100]);              // x=33 is not
        var (cubed, off) = r.GetVoxelDataCubed(ulong.MaxValue);
        Assert.Equal(new long[] { 30, 28, 28 }, off);
        Assert.Equal(new long[] { 10, 12, 12 }, cubed.ShapeArray);
        Assert.Equal(5 * 10 * 10, cubed.Data.ToArray().Count(b => b != 0));
    }
}
