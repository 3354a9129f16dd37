using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>demo --out DIR</c>: builds a small SyConn working directory on the local disk (every store kind),
/// reads it back, checks every value and prints what it did.
/// </summary>
public static class DemoCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var outDir = new Option<string>("--out") { Description = "Folder for the working directory (created; existing store files in it are replaced).", DefaultValueFactory = _ => Path.Combine(Path.GetTempPath(), "syconn-demo") };
        var objects = new Option<int>("--objects") { Description = "Number of objects.", DefaultValueFactory = _ => 200 };
        var json = new Option<bool>("--json") { Description = "Print a JSON summary instead of text." };
        var cmd = new Command("demo", "Write a small SyConn working directory with every store kind, read it back and verify it.") { outDir, objects, json };
        cmd.SetAction((ParseResult r) =>
        {
            int n = r.GetValue(objects);
            if (n < 1) throw new UsageException("--objects must be at least 1", "--objects");
            var summary = Run(r.GetValue(outDir)!, n, r.InvocationConfiguration.Error);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) o.WriteLine(summary.ToJsonString(StoreCommands.Indented));
            else
            {
                o.WriteLine($"SyConn working directory: {summary["dir"]}");
                foreach (var s in summary["stores"]!.AsArray())
                    o.WriteLine($"  {s!["file"],-28} {s["class"],-24} {s["entries"],6} entries  {s["bytes"],10} bytes  verified");
                o.WriteLine($"all {summary["stores"]!.AsArray().Count} stores verified in {summary["seconds"]} s");
            }
            return 0;
        });
        return cmd;
    }

    private sealed class Checker(string file)
    {
        public void That(bool ok, string what)
        {
            if (!ok) throw new InvalidDataException($"{file}: read-back check failed: {what}");
        }
    }

    /// <summary>Builds and verifies the working directory; progress lines go to <paramref name="progress"/>.</summary>
    public static JsonObject Run(string dir, int n, TextWriter progress)
    {
        var sw = Stopwatch.StartNew();
        Directory.CreateDirectory(dir);
        var rng = new Random(12345);
        var ids = Enumerable.Range(0, n).Select(i => (ulong)rng.NextInt64(1, long.MaxValue) | (i % 3 == 0 ? 1UL << 63 : 0)).Distinct().ToArray();
        var stores = new JsonArray();
        void Done(string file, string cls, int entries)
        {
            stores.Add(new JsonObject { ["file"] = file, ["class"] = cls, ["entries"] = entries, ["bytes"] = new FileInfo(Path.Combine(dir, file)).Length });
            progress.WriteLine($"demo: {file} written and verified ({entries} entries)");
        }
        var locked = StoreOptions.WritableLocked;

        // Attribute dict: per object a dict of attributes, as SyConn's segmentation objects keep them.
        var ad = Path.Combine(dir, "attr_dict.pkl");
        File.Delete(ad);
        using (var s = new AttributeDict(ad, locked))
        {
            foreach (var id in ids)
                s[id] = new PyDict { ["size"] = (long)(id % 100000), ["rep_coord"] = NdArray.Create(new long[] { (long)(id % 1000), 2, 3 }), ["ssv_id"] = NpScalar.UInt64(id), ["type"] = "sv" };
            s.Push();
        }
        using (var s = new AttributeDict(ad))
        {
            var c = new Checker(ad);
            c.That(s.Count == ids.Length, "entry count");
            foreach (var id in ids)
                c.That(s.TryGetAttribute(id, "ssv_id", out var v) && PyEquality.AreEqual(v, NpScalar.UInt64(id)), $"ssv_id of {id}");
        }
        Done("attr_dict.pkl", "AttributeDict", ids.Length);

        // A KNOSSOS segmentation (one 10x10x8 block per object) and the voxel store pointing at it: bounding
        // boxes, sizes, representative coordinates, a voxel cache; then the masks are read back in voxel mode.
        var seg = Path.Combine(dir, "knossos_seg");
        if (Directory.Exists(seg)) Directory.Delete(seg, recursive: true);
        var writer = KnossosWriter.Create(seg, "demo_seg", new Xyz(256, 256, 64), 64, (10, 10, 25));
        var volume = new ulong[8 * 256 * 256];
        long[] Corner(int i) => [(i % 16) * 16, (i / 16 % 16) * 16, 0];
        for (int i = 0; i < ids.Length; i++)
        {
            var c = Corner(i);
            for (int z = 0; z < 8; z++)
                for (int y = 0; y < 10; y++)
                    volume.AsSpan((int)((z * 256 + c[1] + y) * 256 + c[0]), 10).Fill(ids[i]);
        }
        writer.WriteSeg(new Xyz(0, 0, 0), NdArray.Wrap(volume, 8, 256, 256));
        var vx = Path.Combine(dir, "voxel.pkl");
        File.Delete(vx);
        File.Delete(Path.ChangeExtension(vx, ".npz"));
        using (var s = new VoxelStorageDyn(vx, locked, voxeldataPath: "knossos_seg"))
        {
            for (int i = 0; i < ids.Length; i++)
            {
                var c = Corner(i);
                s[ids[i]] = NdArray.Create(new long[] { c[0], c[1], 0, c[0] + 10, c[1] + 10, 8 }, 1, 2, 3);
                s.IncreaseObjectSize(ids[i], 800);
                s.SetObjectRepCoord(ids[i], NdArray.Create(new long[] { c[0] + 5, c[1] + 5, 4 }));
            }
            s.SetVoxelCache(ids[0], NdArray.Create(new long[] { 1, 2, 3 }, 1, 3));
            s.Push();
        }
        using (var s = VoxelStorage.Open(vx))
        {
            var c = new Checker(vx);
            c.That(s.Keys.Count() == ids.Length, "object keys");
            foreach (var id in ids.Skip(1))
            {
                var masks = s.GetVoxelMaskOffset(id);
                long voxels = 0;
                foreach (var b in masks.Masks[0].Data.Span) voxels += b;
                c.That(s.ObjectSize(id) == 800 && voxels == 800, $"object {id}: {voxels} voxels in the segmentation");
            }
            c.That(s.GetVoxelCache(ids[0]).Size == 3, "voxel cache");
        }
        Done("voxel.pkl", "VoxelStorageDyn", ids.Length);

        // A BinarySearchStore mapping supervoxel IDs to cell IDs and coordinates.
        var bssPath = Path.Combine(dir, "sv_to_cell.h5");
        var cells = ids.Select(id => id / 7).ToArray();
        var coords = ids.SelectMany(id => new int[] { (int)(id % 1000), (int)(id % 777), (int)(id % 55) }).ToArray();
        using (BinarySearchStore.Create(bssPath, ids, new Dictionary<string, NdArray>
        {
            ["cell_id"] = NdArray.Create(cells),
            ["coords"] = NdArray.Create(coords, ids.Length, 3),
        }, nShards: 4, overwrite: true))
        {
        }
        using (var b = new BinarySearchStore(bssPath))
        {
            var c = new Checker(bssPath);
            var query = ids.Reverse().ToArray();
            var got = b.GetAttributes(query, "cell_id").ToArray<ulong>();
            for (int i = 0; i < query.Length; i++) c.That(got[i] == query[i] / 7, $"cell of {query[i]}");
        }
        Done("sv_to_cell.h5", "BinarySearchStore", ids.Length);

        // Meshes and skeletons.
        var mesh = Path.Combine(dir, "mesh.pkl");
        File.Delete(mesh);
        using (var s = new MeshStorage(mesh, locked, compress: true))
        {
            foreach (var id in ids)
                s[id] = [NdArray.Create(new uint[] { 0, 1, 2, 0, 2, 3 }), NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0 }), NdArray.Create(new float[] { 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1 })];
            s.Push();
        }
        using (var s = new MeshStorage(mesh))
        {
            var c = new Checker(mesh);
            foreach (var id in ids) c.That(s[id][1].Size == 12 && s[id][0].ToArray<uint>()[5] == 3, $"mesh {id}");
        }
        Done("mesh.pkl", "MeshStorage", ids.Length);

        var skel = Path.Combine(dir, "skeletons.pkl");
        File.Delete(skel);
        using (var s = new SkeletonStorage(skel, locked))
        {
            foreach (var id in ids)
                s[id] = new Skeleton(NdArray.Create(new uint[] { 0, 0, 0, 1, 1, 1, 2, 2, 2 }, 3, 3), NdArray.Create(new float[] { 1, 2, 3 }), NdArray.Create(new uint[] { 0, 1, 1, 2 }, 2, 2),
                    new PyDict { ["axoness"] = NdArray.Create(new long[] { 0, 1, 1 }) });
            s.Push();
        }
        using (var s = new SkeletonStorage(skel))
        {
            var c = new Checker(skel);
            foreach (var id in ids) c.That(s[id].Edges.ToArray<uint>()[3] == 2 && s[id].Extras.ContainsKey("axoness"), $"skeleton {id}");
        }
        Done("skeletons.pkl", "SkeletonStorage", ids.Length);

        return new JsonObject
        {
            ["dir"] = Path.GetFullPath(dir),
            ["objects"] = ids.Length,
            ["stores"] = stores,
            ["seconds"] = Math.Round(sw.Elapsed.TotalSeconds, 3),
        };
    }
}
