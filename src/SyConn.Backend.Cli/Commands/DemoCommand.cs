using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
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

        // Voxel store: bounding boxes, sizes, representative coordinates, voxel cache.
        var vx = Path.Combine(dir, "voxel.pkl");
        File.Delete(vx);
        File.Delete(Path.ChangeExtension(vx, ".npz"));
        using (var s = new VoxelStorageDyn(vx, locked, voxeldataPath: "knossos_seg"))
        {
            foreach (var id in ids)
            {
                long x = (long)(id % 997);
                s[id] = NdArray.Create(new long[] { x, 0, 0, x + 10, 8, 4 }, 1, 2, 3);
                s.IncreaseObjectSize(id, 320);
                s.SetObjectRepCoord(id, NdArray.Create(new long[] { x + 5, 4, 2 }));
            }
            s.SetVoxelCache(ids[0], NdArray.Create(new long[] { 1, 2, 3 }, 1, 3));
            s.Push();
        }
        using (var s = new VoxelStorageDyn(vx))
        {
            var c = new Checker(vx);
            c.That(s.Keys.Count() == ids.Length, "object keys");
            foreach (var id in ids.Skip(1))
                c.That(s.ObjectSize(id) == 320 && s.GetBoundingData(id).ToArray<long>()[3] == (long)(id % 997) + 10, $"object {id}");
            c.That(s.GetVoxelCache(ids[0]).Size == 3, "voxel cache");
        }
        Done("voxel.pkl", "VoxelStorageDyn", ids.Length);

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
