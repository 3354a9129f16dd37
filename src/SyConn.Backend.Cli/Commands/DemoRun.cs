using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>Writes, reopens and verifies the demo working directory (<see cref="DemoCommand"/>).</summary>
public static class DemoRun
{
    private const string DatasetName = "demo_seg";

    /// <summary>Per store kind: what was written and how long writing and verifying took.</summary>
    private sealed class Kind(string store, string cls)
    {
        public string Store { get; } = store;
        public string Class { get; } = cls;
        public int Files;
        public long Entries;
        public long RawBytes;
        public long DiskBytes;
        public readonly Stopwatch Write = new();
        public readonly Stopwatch Verify = new();

        /// <summary>Written and verified with the store before it (its times are counted there).</summary>
        public bool Shared { get; init; }

        /// <summary>The store whose verification reads this one (its time is counted there), if any.</summary>
        public string? VerifiedBy { get; init; }

        public JsonObject Json() => new()
        {
            ["store"] = Store,
            ["class"] = Class,
            ["files"] = Files,
            ["entries"] = Entries,
            ["bytes_raw"] = RawBytes,
            ["bytes_on_disk"] = DiskBytes,
            ["ratio"] = DiskBytes == 0 ? 0 : Math.Round((double)RawBytes / DiskBytes, 3),
            ["write_seconds"] = Shared ? null : Math.Round(Write.Elapsed.TotalSeconds, 3),
            ["verify_seconds"] = Shared || VerifiedBy is not null ? null : Math.Round(Verify.Elapsed.TotalSeconds, 3),
            ["verified_with"] = Shared ? "voxel.pkl" : VerifiedBy,
        };
    }

    private static void Check(bool ok, string file, string what)
    {
        if (!ok) throw new InvalidDataException($"{file}: read-back check failed: {what}");
    }

    /// <summary>
    /// Builds the working directory of <paramref name="n"/> supervoxels in <paramref name="dir"/>, reopens and verifies
    /// every store, writes the manifest and returns the summary; progress goes to <paramref name="progress"/>.
    /// </summary>
    /// <exception cref="InputException">The folder is not empty and holds no earlier demo (nothing is touched).</exception>
    /// <exception cref="InvalidDataException">A read-back check failed.</exception>
    public static JsonObject Run(string dir, int n, TextWriter progress)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        var total = Stopwatch.StartNew();
        var phases = new JsonObject();
        var phase = Stopwatch.StartNew();
        void EndPhase(string name)
        {
            phases[name] = Math.Round(phase.Elapsed.TotalSeconds, 3);
            phase.Restart();
        }

        var world = new DemoWorld(n);
        var kdRel = SyConnLayout.KnossosSegmentation;
        var mappingRel = SyConnLayout.SuperSegmentationDataset + "/" + SyConnLayout.MappingLookupReverse;
        // Every file the demo may write, known before anything is written: the manifest lists them all from the
        // start, so a rerun after an interrupted demo still finds (and replaces) whatever it had written.
        var planned = new List<string> { kdRel + "/" + DatasetName + ".pyk.conf" };
        var cubeLayout = new KnossosConfig(DatasetName, new Xyz(world.Boundary[0], world.Boundary[1], world.Boundary[2]),
            new Xyz(DemoWorld.CubeEdge, DemoWorld.CubeEdge, DemoWorld.CubeEdge), [DemoWorld.Scale], kdRel, KnossosConfigKind.PykConf);
        for (long k = 0; k * DemoWorld.CubeEdge < world.Boundary[2]; k++)
            for (long j = 0; j * DemoWorld.CubeEdge < world.Boundary[1]; j++)
                for (long i = 0; i * DemoWorld.CubeEdge < world.Boundary[0]; i++)
                    planned.Add(kdRel + "/" + cubeLayout.CubeRelativePath(i, j, k).Replace('\\', '/'));
        foreach (var (folder, objs) in world.Folders)
            foreach (var f in SyConnLayout.ObjectFiles) planned.Add(folder + "/" + f);
        planned.Add(mappingRel);
        int replaced = DemoManifest.Prepare(dir, planned);
        EndPhase("plan");

        var manifest = new JsonObject
        {
            [DemoManifest.MarkerField] = 1,
            ["complete"] = false,
            ["objects"] = n,
        };
        void SaveManifest(IEnumerable<string> list)
        {
            manifest["files"] = new JsonArray(list.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray());
            DemoManifest.Write(dir, manifest);
        }
        SaveManifest(planned);
        string Full(string rel) => Path.Combine(dir, rel);

        // Segmentation: each voxelised object's ellipsoid in one uint64 volume, written as KNOSSOS cubes.
        var kdRoot = Path.GetFullPath(Full(kdRel));
        var seg = new Kind(kdRel, "KNOSSOS segmentation") { VerifiedBy = "voxel.pkl" };
        long segVoxels = 0;
        using (var bar = new ProgressBar(progress, "demo: segmentation", world.Voxelised, "objects"))
        {
            seg.Write.Start();
            long bx = world.Boundary[0], by = world.Boundary[1], bz = world.Boundary[2];
            var volume = new ulong[checked(bx * by * bz)];
            foreach (var o in world.Objects.Take(world.Voxelised))
            {
                var v = o.Voxels;
                for (int i = 0; i < v.Length; i += 3) volume[(v[i + 2] * by + v[i + 1]) * bx + v[i]] = o.Id;
                segVoxels += o.Size;
                bar.Add();
            }
            var writer = KnossosWriter.Create(kdRoot, DatasetName, new Xyz(bx, by, bz), DemoWorld.CubeEdge, DemoWorld.Scale,
                new KnossosCreateOptions { Durable = false });
            writer.WriteSeg(new Xyz(0, 0, 0), NdArray.Wrap(volume, bz, by, bx));
            seg.Write.Stop();
        }
        var kdFiles = planned.Where(f => f.StartsWith(kdRel + "/", StringComparison.Ordinal) && File.Exists(Full(f))).ToList();
        int cubes = kdFiles.Count(f => f.EndsWith(".zip", StringComparison.Ordinal));
        seg.Files = kdFiles.Count;
        seg.Entries = world.Voxelised;
        seg.RawBytes = (long)cubes * DemoWorld.CubeEdge * DemoWorld.CubeEdge * DemoWorld.CubeEdge * 8;
        seg.DiskBytes = kdFiles.Sum(f => new FileInfo(Full(f)).Length);
        EndPhase("segmentation");

        // The storage folders: attr_dict, voxel (+ its voxel cache), mesh and skeletons per folder.
        var ad = new Kind("attr_dict.pkl", "AttributeDict");
        var vx = new Kind("voxel.pkl", "VoxelStorageDyn");
        var npz = new Kind("voxel.npz", "VoxelStorageLazyLoading") { Shared = true };
        var mesh = new Kind("mesh.pkl", "MeshStorage");
        var skel = new Kind("skeletons.pkl", "SkeletonStorage");
        var writable = StoreOptions.Writable with { DisableLocking = true, Durable = false };
        using (var bar = new ProgressBar(progress, "demo: storage folders", n, "objects"))
        {
            foreach (var (folder, objs) in world.Folders)
            {
                Directory.CreateDirectory(Full(folder));
                ad.Write.Start();
                using (var s = new AttributeDict(Full(folder + "/attr_dict.pkl"), writable))
                {
                    foreach (var o in objs) s[o.Id] = Attributes(o);
                    s.Push();
                }
                ad.Write.Stop();
                if (objs.Any(o => o.Voxelised))
                {
                    vx.Write.Start();
                    using (var s = new VoxelStorageDyn(Full(folder + "/voxel.pkl"), writable, voxeldataPath: kdRoot))
                    {
                        foreach (var o in objs.Where(o => o.Voxelised))
                        {
                            s[o.Id] = Boxes(o);
                            vx.RawBytes += o.Boxes.Length * 48;
                            s.IncreaseObjectSize(o.Id, o.Size);
                            s.SetObjectRepCoord(o.Id, NdArray.Create(o.RepCoord.Select(c => (int)c).ToArray()));
                            if (o.Cached)
                            {
                                s.SetVoxelCache(o.Id, NdArray.Create(o.Voxels, o.Size, 3));
                                npz.RawBytes += o.Voxels.Length * 4;
                            }
                        }
                        s.Push();
                    }
                    vx.Write.Stop();
                }
                mesh.Write.Start();
                using (var s = new MeshStorage(Full(folder + "/mesh.pkl"), writable))
                {
                    foreach (var o in objs)
                    {
                        var m = Mesh(o);
                        s[o.Id] = m;
                        mesh.RawBytes += m.Sum(a => a.Data.Length);
                    }
                    s.Push();
                }
                mesh.Write.Stop();
                skel.Write.Start();
                using (var s = new SkeletonStorage(Full(folder + "/skeletons.pkl"), writable))
                {
                    foreach (var o in objs)
                    {
                        var k = Skeleton(o);
                        s[o.Id] = k;
                        skel.RawBytes += k.Nodes.Data.Length + k.Diameters.Data.Length + k.Edges.Data.Length + ((NdArray)k.Extras["axoness"]).Data.Length;
                    }
                    s.Push();
                }
                skel.Write.Stop();
                bar.Add(objs.Length);
            }
        }
        EndPhase("storage folders");

        // The supervoxel-to-cell lookup of the SuperSegmentationDataset.
        var bss = new Kind(mappingRel, "BinarySearchStore");
        var ids = world.Objects.Select(o => o.Id).ToArray();
        var cells = world.Objects.Select(o => o.Cell).ToArray();
        int shards = Math.Min(n, Math.Max(5, (n + 19_999) / 20_000));
        bss.Write.Start();
        Directory.CreateDirectory(Full(SyConnLayout.SuperSegmentationDataset));
        using (BinarySearchStore.Create(Full(mappingRel), ids, new Dictionary<string, NdArray> { ["ssv_ids"] = NdArray.Create(cells) }, nShards: shards, overwrite: true, durable: false))
        {
        }
        bss.Write.Stop();
        bss.Files = 1;
        bss.Entries = n;
        bss.RawBytes = 16L * n;
        bss.DiskBytes = new FileInfo(Full(mappingRel)).Length;
        EndPhase("mapping");

        // Reopen everything read-only and check it against what was written.
        var stores = new JsonArray();
        var read = StoreOptions.Default with { DisableLocking = true };
        using (var bar = new ProgressBar(progress, "demo: verify", n, "objects"))
        {
            foreach (var (folder, objs) in world.Folders)
            {
                VerifyFolder(folder, objs, Full, read, stores, ad, vx, npz, mesh, skel);
                bar.Add(objs.Length);
            }
        }
        bss.Verify.Start();
        string bssDigest;
        using (var b = new BinarySearchStore(Full(mappingRel)))
        {
            Check(b.NShards == shards, mappingRel, $"{b.NShards} shards, expected {shards}");
            var query = ids.Reverse().ToArray();
            var got = b.GetAttributes(query, "ssv_ids").ToArray<ulong>();
            for (int i = 0; i < query.Length; i++)
                Check(got[i] == cells[n - 1 - i], mappingRel, $"cell of {query[i]} is {got[i]}, expected {cells[n - 1 - i]}");
            using var d = new DemoDigest();
            d.Value(NdArray.Create(ids));
            d.Value(b.GetAttributes(ids, "ssv_ids"));
            bssDigest = d.Hex();
        }
        bss.Verify.Stop();
        stores.Add(new JsonObject { ["path"] = mappingRel, ["class"] = "BinarySearchStore", ["entries"] = n, ["n_shards"] = shards, ["attribute"] = "ssv_ids", ["sha256"] = bssDigest });
        EndPhase("verify");

        var kinds = new[] { ad, vx, npz, mesh, skel, bss, seg };
        long rawTotal = kinds.Sum(k => k.RawBytes), diskTotal = kinds.Sum(k => k.DiskBytes);
        var samples = new JsonArray();
        foreach (var i in new[] { 0, n / 2, n - 1 }.Distinct())
        {
            var o = world.Objects[i];
            samples.Add(new JsonObject
            {
                ["id"] = o.Id,
                ["folder"] = o.Folder,
                ["ssv_id"] = o.Cell,
                ["size"] = o.Size,
                ["rep_coord"] = new JsonArray(o.RepCoord.Select(c => (JsonNode?)c).ToArray()),
                ["voxelised"] = o.Voxelised,
                ["voxel_cache"] = o.Cached,
            });
        }
        var knossos = new JsonObject
        {
            ["path"] = kdRel,
            ["config"] = kdRel + "/" + DatasetName + ".pyk.conf",
            ["boundary"] = new JsonArray(world.Boundary.Select(c => (JsonNode?)c).ToArray()),
            ["cube_edge"] = DemoWorld.CubeEdge,
            ["scale"] = new JsonArray(DemoWorld.Scale.X, DemoWorld.Scale.Y, DemoWorld.Scale.Z),
            ["cubes"] = cubes,
            ["objects"] = world.Voxelised,
            ["voxels"] = segVoxels,
        };
        manifest["complete"] = true;
        manifest["n_folders_fs"] = world.NFoldersFs;
        manifest["so_storage"] = SyConnLayout.SoStorage(world.NFoldersFs);
        manifest["storage_folders"] = world.Folders.Count;
        manifest["cells"] = cells.Distinct().Count();
        manifest["voxel_caches"] = world.Objects.Count(o => o.Cached);
        manifest["knossos"] = knossos;
        manifest["samples"] = samples;
        manifest["stores"] = stores;
        var files = planned.Where(f => File.Exists(Full(f))).ToList();
        SaveManifest(files);

        return new JsonObject
        {
            ["dir"] = Path.GetFullPath(dir),
            ["manifest"] = Path.GetFullPath(Full(DemoManifest.FileName)),
            ["objects"] = n,
            ["n_folders_fs"] = world.NFoldersFs,
            ["so_storage"] = SyConnLayout.SoStorage(world.NFoldersFs),
            ["storage_folders"] = world.Folders.Count,
            ["cells"] = manifest["cells"]!.DeepClone(),
            ["voxel_caches"] = manifest["voxel_caches"]!.DeepClone(),
            ["knossos"] = knossos.DeepClone(),
            ["mapping"] = mappingRel,
            ["stores"] = new JsonArray(kinds.Select(k => (JsonNode?)k.Json()).ToArray()),
            ["total"] = new JsonObject
            {
                ["files"] = files.Count + 1,
                ["entries"] = kinds.Sum(k => k.Entries),
                ["bytes_raw"] = rawTotal,
                ["bytes_on_disk"] = diskTotal,
                ["ratio"] = diskTotal == 0 ? 0 : Math.Round((double)rawTotal / diskTotal, 3),
            },
            ["phases"] = phases,
            ["replaced_files"] = replaced,
            ["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 3),
        };
    }

    private static void VerifyFolder(string folder, DemoObject[] objs, Func<string, string> full, StoreOptions read, JsonArray stores,
        Kind ad, Kind vx, Kind npz, Kind mesh, Kind skel)
    {
        void Done(Kind k, string rel, int entries, string digest, JsonObject? extra = null)
        {
            k.Files++;
            k.Entries += entries;
            k.DiskBytes += new FileInfo(full(rel)).Length;
            var row = new JsonObject { ["path"] = rel, ["class"] = k.Class, ["entries"] = entries, ["sha256"] = digest };
            if (extra is not null)
                foreach (var kv in extra) row[kv.Key] = kv.Value?.DeepClone();
            stores.Add(row);
        }
        static void Keys(StorageBase s, IEnumerable<DemoObject> expected, string file)
        {
            var got = s.Keys.Select(k => k.ToUInt64()).Order().ToArray();
            var want = expected.Select(o => o.Id).ToArray();
            Check(got.SequenceEqual(want), file, $"keys: {got.Length} stored, {want.Length} written");
        }

        var rel = folder + "/attr_dict.pkl";
        ad.Verify.Start();
        using (var s = new AttributeDict(full(rel), read))
        using (var d = new DemoDigest())
        {
            Keys(s, objs, rel);
            foreach (var o in objs)
            {
                Check(s.TryGetAttribute(o.Id, "size", out var size) && PyInt.TryGetInt64(size, out var sz) && sz == o.Size, rel, $"size of {o.Id}");
                Check(s.TryGetAttribute(o.Id, "rep_coord", out var rc) && rc is NdArray a && a.ToArray<int>().Select(c => (long)c).SequenceEqual(o.RepCoord), rel, $"rep_coord of {o.Id}");
                d.Key(o.Id);
                d.Value(s.GetAsPython(o.Id));
            }
            ad.Verify.Stop();
            Done(ad, rel, objs.Length, d.Hex());
            ad.RawBytes += new FileInfo(full(rel)).Length;
        }

        var vox = objs.Where(o => o.Voxelised).ToArray();
        if (vox.Length > 0)
        {
            rel = folder + "/voxel.pkl";
            vx.Verify.Start();
            string pklDigest, npzDigest;
            using (var s = VoxelStorage.Open(full(rel), read))
            using (var d = new DemoDigest())
            using (var dc = new DemoDigest())
            {
                Keys(s, vox, rel);
                foreach (var o in vox)
                {
                    Check(s.ObjectSize(o.Id) == o.Size, rel, $"size of {o.Id} is {s.ObjectSize(o.Id)}, expected {o.Size}");
                    var boxes = s.GetBoundingBoxes(o.Id);
                    Check(boxes.Length == o.Boxes.Length && boxes.Zip(o.Boxes).All(p => p.First[0].Concat(p.First[1]).SequenceEqual(p.Second)), rel, $"bounding boxes of {o.Id}");
                    // Voxel mode: the masks read from the segmentation hold exactly the object's voxels.
                    var (cubed, off) = s.GetVoxelDataCubed(o.Id);
                    long count = 0;
                    foreach (var b in cubed.Data.Span) count += b;
                    Check(count == o.Size, rel, $"object {o.Id}: {count} voxels in the segmentation, expected {o.Size}");
                    long sy = cubed.Shape[1], sz = cubed.Shape[2];
                    var mask = cubed.Data.Span;
                    for (int i = 0; i < o.Voxels.Length; i += 3)
                    {
                        long x = o.Voxels[i] - off[0], y = o.Voxels[i + 1] - off[1], z = o.Voxels[i + 2] - off[2];
                        Check(mask[(int)((x * sy + y) * sz + z)] == 1, rel, $"object {o.Id}: voxel ({o.Voxels[i]}, {o.Voxels[i + 1]}, {o.Voxels[i + 2]}) not in its mask");
                    }
                    if (o.Cached)
                    {
                        var cache = s.GetVoxelCache(o.Id);
                        Check(cache.DType == DType.UInt32 && cache.Shape.SequenceEqual([o.Size, 3L]) && cache.ToArray<uint>().SequenceEqual(o.Voxels), rel, $"voxel cache of {o.Id}");
                    }
                    d.Key(o.Id);
                    d.Value(new PyList { CompressedStorage.DecodeEntry(s.GetRaw(o.Id), rel), s.ObjectSize(o.Id), s.ObjectRepCoord(o.Id) });
                }
                // The `voxels` command's own summary of every key.
                foreach (var o in vox)
                    Check((long)VoxelsCommand.Summarise(s, o.Id, 0)["get_voxel_data_cubed"]!["count"]! == o.Size, rel, $"voxels {o.Id}");
                foreach (var o in vox.Where(o => o.Cached))
                {
                    dc.Key(o.Id);
                    dc.Value(s.GetVoxelCache(o.Id));
                }
                pklDigest = d.Hex();
                npzDigest = dc.Hex();
                Check(s.VoxeldataPath is not null, rel, "meta['voxeldata_path']");
            }
            vx.Verify.Stop();
            Done(vx, rel, vox.Length, pklDigest, new JsonObject { ["voxeldata_path"] = Path.GetFullPath(full(SyConnLayout.KnossosSegmentation)) });
            int cached = vox.Count(o => o.Cached);
            if (cached > 0) Done(npz, folder + "/voxel.npz", cached, npzDigest);
        }

        rel = folder + "/mesh.pkl";
        mesh.Verify.Start();
        using (var s = new MeshStorage(full(rel), read))
        using (var d = new DemoDigest())
        {
            Keys(s, objs, rel);
            foreach (var o in objs)
            {
                var m = s[o.Id];
                var want = Mesh(o);
                Check(m.Length == 3 && m[0].Equals(want[0]) && m[1].Equals(want[1]) && m[2].Equals(want[2]), rel, $"mesh of {o.Id}");
                d.Key(o.Id);
                d.Value(s.GetAsPython(o.Id));
            }
            mesh.Verify.Stop();
            Done(mesh, rel, objs.Length, d.Hex());
        }

        rel = folder + "/skeletons.pkl";
        skel.Verify.Start();
        using (var s = new SkeletonStorage(full(rel), read))
        using (var d = new DemoDigest())
        {
            Keys(s, objs, rel);
            foreach (var o in objs)
            {
                var k = s[o.Id];
                var want = Skeleton(o);
                Check(k.Nodes.ToArray<uint>().SequenceEqual(want.Nodes.ToArray<uint>()) && k.Edges.ToArray<uint>().SequenceEqual(want.Edges.ToArray<uint>())
                    && k.Diameters.ToArray<float>().SequenceEqual(want.Diameters.ToArray<float>())
                    && k.Extras.TryGetValue("axoness", out var ax) && ax is NdArray axa && axa.Equals(want.Extras["axoness"]), rel, $"skeleton of {o.Id}");
                d.Key(o.Id);
                d.Value(s.GetAsPython(o.Id));
            }
            skel.Verify.Stop();
            Done(skel, rel, objs.Length, d.Hex());
        }
    }

    /// <summary>The attribute dict of a supervoxel, with the attributes SyConn keeps per object.</summary>
    private static PyDict Attributes(DemoObject o)
    {
        var mn = new long[3];
        var mx = new long[3];
        for (int a = 0; a < 3; a++)
        {
            mn[a] = long.MaxValue;
            for (int i = a; i < o.Voxels.Length; i += 3)
            {
                mn[a] = Math.Min(mn[a], o.Voxels[i]);
                mx[a] = Math.Max(mx[a], o.Voxels[i]);
            }
        }
        var (sx, sy, sz) = DemoWorld.Scale;
        double ex = (o.Hi[0] - o.Lo[0]) * sx, ey = (o.Hi[1] - o.Lo[1]) * sy, ez = (o.Hi[2] - o.Lo[2]) * sz;
        return new PyDict
        {
            ["size"] = o.Size,
            ["rep_coord"] = NdArray.Create(o.RepCoord.Select(c => (int)c).ToArray()),
            ["bounding_box"] = NdArray.Create(mn.Concat(mx).Select(c => (int)c).ToArray(), 2, 3),
            ["mesh_bb"] = NdArray.Create(new[] { o.Lo[0] * sx, o.Lo[1] * sy, o.Lo[2] * sz, o.Hi[0] * sx, o.Hi[1] * sy, o.Hi[2] * sz }.Select(v => (float)v).ToArray(), 2, 3),
            ["mesh_area"] = 2 * (ex * ey + ey * ez + ez * ex),
        };
    }

    private static NdArray Boxes(DemoObject o) => NdArray.Create(o.Boxes.SelectMany(b => b).ToArray(), o.Boxes.Length, 2, 3);

    private static readonly uint[] BoxTriangles =
    [
        0, 2, 1, 1, 2, 3, 4, 5, 6, 5, 7, 6, // z faces
        0, 1, 4, 1, 5, 4, 2, 6, 3, 3, 6, 7, // y faces
        0, 4, 2, 2, 4, 6, 1, 3, 5, 3, 7, 5, // x faces
    ];

    /// <summary>The object's box as a closed triangle mesh in nm (flat arrays, as MeshStorage holds them).</summary>
    private static NdArray[] Mesh(DemoObject o)
    {
        var (sx, sy, sz) = DemoWorld.Scale;
        var vert = new float[24];
        var norm = new float[24];
        for (int c = 0; c < 8; c++)
        {
            bool hx = (c & 1) != 0, hy = (c & 2) != 0, hz = (c & 4) != 0;
            vert[3 * c] = (float)((hx ? o.Hi[0] : o.Lo[0]) * sx);
            vert[3 * c + 1] = (float)((hy ? o.Hi[1] : o.Lo[1]) * sy);
            vert[3 * c + 2] = (float)((hz ? o.Hi[2] : o.Lo[2]) * sz);
            float s = 1 / MathF.Sqrt(3);
            norm[3 * c] = hx ? s : -s;
            norm[3 * c + 1] = hy ? s : -s;
            norm[3 * c + 2] = hz ? s : -s;
        }
        return [NdArray.Create(BoxTriangles), NdArray.Create(vert), NdArray.Create(norm)];
    }

    /// <summary>A three-node skeleton along the object's x axis, in voxels, with a per-node label.</summary>
    private static Skeleton Skeleton(DemoObject o)
    {
        var c = o.RepCoord;
        uint y = (uint)c[1], z = (uint)c[2];
        var nodes = new uint[] { (uint)o.Lo[0], y, z, (uint)c[0], y, z, (uint)(o.Hi[0] - 1), y, z };
        float d = Math.Min(o.Hi[1] - o.Lo[1], o.Hi[2] - o.Lo[2]);
        return new Skeleton(NdArray.Create(nodes, 3, 3), NdArray.Create(new[] { d / 2, d, d / 2 }), NdArray.Create(new uint[] { 0, 1, 1, 2 }, 2, 2),
            new PyDict { ["axoness"] = NdArray.Create(new long[] { 1, (long)(o.Id % 3), 0 }) });
    }
}
