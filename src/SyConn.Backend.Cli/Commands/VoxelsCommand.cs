using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>voxels STORE KEY [--dataset DIR] [--overlap N] [--json]</c>: an object's masks read from the
/// segmentation (VoxelStorageDyn voxel mode), with the field names and checksums of the KNOSSOS fixture's EXPECTED.json.
/// </summary>
public static class VoxelsCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var store = new Argument<string>("store") { Description = "A VoxelStorageDyn .pkl file, or a bt:IDENTIFIER store." };
        var key = new Argument<string>("key") { Description = "The object ID." };
        var dataset = new Option<string?>("--dataset") { Description = "The KNOSSOS dataset (folder or config); default: the store's meta voxeldata_path." };
        var overlap = new Option<int>("--overlap") { Description = "Voxels added around each box.", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var cmd = new Command("voxels", "Print an object's voxel masks (offsets, per-mask shape, count, sha256) and its cubed mask.") { store, key, dataset, overlap, json };
        cmd.SetAction((ParseResult r) =>
        {
            var p = r.GetValue(store)!;
            var k = StoreCommands.ParseKey(r.GetValue(key)!);
            int ov = r.GetValue(overlap);
            if (ov < 0) throw new UsageException("--overlap must not be negative", "--overlap");
            if (!EntryStores.IsBackendAddress(p)) StoreCommands.RequireFile(VoxelStorageDyn.PklPath(p));
            using var vs = OpenInVoxelMode(p, StoreCommands.ReadOptions(r), r.GetValue(dataset));
            var result = Summarise(vs, k, ov);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) o.WriteLine(result.ToJsonString(StoreCommands.Indented));
            else
            {
                var m = result["get_voxelmask_offset"]!;
                var offs = m["offsets_xyz"]!.AsArray();
                var masks = m["masks"]!.AsArray();
                o.WriteLine($"object {k}: {masks.Count} boxes (overlap {ov})");
                for (int i = 0; i < masks.Count; i++)
                    o.WriteLine($"  offset {offs[i]!.ToJsonString()}  shape {masks[i]!["shape_xyz"]!.ToJsonString()}  voxels {masks[i]!["count"]}  sha256 {masks[i]!["sha256_xyz_u8"]}");
                var c = result["get_voxel_data_cubed"]!;
                o.WriteLine($"  cubed: offset {c["offset_xyz"]!.ToJsonString()}  shape {c["shape_xyz"]!.ToJsonString()}  voxels {c["count"]}  sha256 {c["sha256_xyz_u8"]}");
                if (result["voxel_cache"] is { } vc)
                    o.WriteLine($"  voxel cache ({vs.NpzPath}): {vc["dtype"]} {vc["shape"]!.ToJsonString()}, {vc["in_mask"]} of {vc["voxels"]} coordinates in the mask");
            }
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// Opens the store in voxel mode. A segmentation dataset that is not there (the stored <c>voxeldata_path</c>, or
    /// none at all) is an error that names the path and suggests <c>--dataset</c>; the store is read twice then
    /// (once to find the path), which keeps the error before any dataset is opened.
    /// </summary>
    private static VoxelStorageDyn OpenInVoxelMode(string address, StoreOptions options, string? dataset)
    {
        const string Hint = "pass --dataset DIR (the KNOSSOS dataset folder, or its .pyk.conf / .k.toml)";
        if (dataset is not null)
        {
            if (!File.Exists(dataset) && !Directory.Exists(dataset)) throw new InputException("no such KNOSSOS dataset (folder or config)", dataset);
            return StoreCommands.AtBackend(address, () => new VoxelStorageDyn(address, options, dataset, voxelMode: true));
        }
        string? stored;
        string? resolved = null;
        using (var plain = StoreCommands.AtBackend(address, () => new VoxelStorageDyn(address, options)))
        {
            stored = plain.VoxeldataPath;
            if (!string.IsNullOrEmpty(stored)) resolved = plain.ResolveVoxeldataPath();
        }
        if (resolved is null)
            throw new InputException($"the store names no segmentation dataset (meta['voxeldata_path'] is None); {Hint}", address);
        if (!File.Exists(resolved) && !Directory.Exists(resolved))
            throw new InputException($"segmentation dataset '{stored}' (meta['voxeldata_path']) not found; {Hint}", address);
        try
        {
            return StoreCommands.AtBackend(address, () => new VoxelStorageDyn(address, options, null, voxelMode: true));
        }
        catch (FileNotFoundException e)
        {
            throw new InputException($"{e.Message} (meta['voxeldata_path'] is '{stored}'); {Hint}", address, e);
        }
    }

    private static JsonArray Arr(IEnumerable<long> xs) => new(xs.Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());

    private static JsonObject MaskJson(NdArray mask)
    {
        var bytes = mask.Data.Span;
        long count = 0;
        foreach (var b in bytes) count += b != 0 ? 1 : 0;
        return new JsonObject
        {
            ["shape_xyz"] = Arr(mask.ShapeArray),
            ["count"] = count,
            ["sha256_xyz_u8"] = Convert.ToHexStringLower(SHA256.HashData(bytes)),
        };
    }

    /// <summary>The JSON summary of one object (also used by tests).</summary>
    public static JsonObject Summarise(VoxelStorageDyn vs, StoreKey key, int overlap)
    {
        var masks = vs.GetVoxelMaskOffset(key, overlap);
        var cubed = vs.GetVoxelDataCubed(key);
        var o = new JsonObject
        {
            ["key"] = key.ToString(),
            ["overlap"] = overlap,
            ["get_voxelmask_offset"] = new JsonObject
            {
                ["offsets_xyz"] = new JsonArray(masks.OffsetRows.Select(r => (JsonNode?)Arr(r)).ToArray()),
                ["masks"] = new JsonArray(masks.Masks.Select(m => (JsonNode?)MaskJson(m)).ToArray()),
            },
            ["get_voxel_data_cubed"] = MaskJson(cubed.Mask),
        };
        var c = (JsonObject)o["get_voxel_data_cubed"]!;
        c["offset_xyz"] = Arr(cubed.Offset);
        c["dtype"] = "bool";
        o["object_size"] = vs.ObjectSize(key);
        if (vs.VoxelCache.TryGetValue(key, out var cache)) o["voxel_cache"] = CacheJson(cache, cubed.Mask, cubed.Offset);
        if (vs.ContainsKey(key) && TryRepCoord(vs, key) is { } rc) o["object_repcoord_xyz"] = Arr(rc);
        return o;
    }

    /// <summary>
    /// The key's voxel cache (upstream keeps an object's voxel coordinates there, an (N, 3) array): its dtype, shape,
    /// and how many of its rows are voxels of the cubed mask.
    /// </summary>
    private static JsonObject CacheJson(NdArray cache, NdArray mask, long[] offset)
    {
        var o = new JsonObject { ["dtype"] = cache.DType.Str, ["shape"] = Arr(cache.ShapeArray) };
        if (cache.NDim == 2 && cache.Shape[1] == 3 && cache.DType.IsInteger)
        {
            var v = cache.AsType(DType.Int64).ToArray<long>();
            long sx = mask.Shape[0], sy = mask.Shape[1], sz = mask.Shape[2], inside = 0;
            var m = mask.Data.Span;
            for (int i = 0; i < v.Length; i += 3)
            {
                long x = v[i] - offset[0], y = v[i + 1] - offset[1], z = v[i + 2] - offset[2];
                if (x >= 0 && y >= 0 && z >= 0 && x < sx && y < sy && z < sz && m[(int)((x * sy + y) * sz + z)] != 0) inside++;
            }
            o["voxels"] = cache.Shape[0];
            o["in_mask"] = inside;
        }
        return o;
    }

    private static long[]? TryRepCoord(VoxelStorageDyn vs, StoreKey key)
    {
        object coord;
        try
        {
            coord = vs.ObjectRepCoord(key);
        }
        catch (KeyNotFoundException)
        {
            return null;
        }
        return coord switch
        {
            NdArray a when a.DType.IsInteger => a.ToArray<long>(CastingRule.Unsafe),
            PyTuple or PyList => ((IEnumerable<object>)coord).Select(x => PyInt.TryGetInt64(x, out var v) ? v : 0).ToArray(),
            _ => null,
        };
    }
}
