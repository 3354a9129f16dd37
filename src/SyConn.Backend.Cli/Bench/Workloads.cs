using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using static SyConn.Backend.Cli.Bench.BenchMath;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// The workloads of <c>shared/bench/workloads.md</c> (W1–W5, W7) with the same counts and distributions,
/// generated with a fixed seed; each returns one JSON line.
/// </summary>
internal static class Workloads
{
    private static StoreOptions W(bool durable) => StoreOptions.Writable with { Durable = durable };

    private static string Fresh(string dir, string name)
    {
        Directory.CreateDirectory(dir);
        var p = Path.Combine(dir, name);
        if (File.Exists(p)) File.Delete(p);
        return p;
    }

    // ---------------------------------------------------------------- data

    /// <summary>W1: (n,3) uint64 unique voxel coordinates in a 32^3 box, sorted, shifted by a random offset.</summary>
    public static List<(ulong Key, NdArray Value)> W1Data(double scale, int seed = 1)
    {
        var rng = new Random(seed);
        int count = Scaled(5000, scale);
        var keys = new HashSet<ulong>();
        var result = new List<(ulong, NdArray)>(count);
        var perm = Enumerable.Range(0, 32768).ToArray();
        while (result.Count < count)
        {
            ulong key = (ulong)rng.NextInt64() ^ ((ulong)rng.Next() << 40);
            if (!keys.Add(key)) continue;
            int n = rng.Next(100, 5001);
            // partial Fisher-Yates: n unique linear indices of the 32^3 box
            for (int i = 0; i < n; i++) { int j = rng.Next(i, perm.Length); (perm[i], perm[j]) = (perm[j], perm[i]); }
            var lin = perm.AsSpan(0, n).ToArray();
            Array.Sort(lin);
            ulong ox = (ulong)rng.Next(20000), oy = (ulong)rng.Next(20000), oz = (ulong)rng.Next(20000);
            var v = new ulong[n * 3];
            for (int i = 0; i < n; i++)
            {
                int l = lin[i];
                v[3 * i] = (ulong)(l >> 10) + ox;
                v[3 * i + 1] = (ulong)((l >> 5) & 31) + oy;
                v[3 * i + 2] = (ulong)(l & 31) + oz;
            }
            result.Add((key, NdArray.Wrap(v, n, 3)));
        }
        return result;
    }

    /// <summary>W5: 4 uint8 masks of (64,64,50) per object with about 10% ones as balls of radius 3..10.</summary>
    public static List<(ulong Key, NdArray[] Masks, long[][] Offsets)> W5Data(double scale, int seed = 5)
    {
        var rng = new Random(seed);
        int count = Scaled(200, scale);
        var result = new List<(ulong, NdArray[], long[][])>(count);
        for (int o = 0; o < count; o++)
        {
            var masks = new NdArray[4];
            var offs = new long[4][];
            for (int m = 0; m < 4; m++)
            {
                var data = new byte[64 * 64 * 50];
                int ones = 0, target = data.Length / 10;
                while (ones < target)
                {
                    int r = rng.Next(3, 11);
                    int cx = rng.Next(64), cy = rng.Next(64), cz = rng.Next(50);
                    for (int x = Math.Max(0, cx - r); x < Math.Min(64, cx + r + 1); x++)
                        for (int y = Math.Max(0, cy - r); y < Math.Min(64, cy + r + 1); y++)
                            for (int z = Math.Max(0, cz - r); z < Math.Min(50, cz + r + 1); z++)
                            {
                                int dx = x - cx, dy = y - cy, dz = z - cz;
                                if (dx * dx + dy * dy + dz * dz > r * r) continue;
                                ref byte b = ref data[(x * 64 + y) * 50 + z];
                                if (b == 0) { b = 1; ones++; }
                            }
                }
                masks[m] = NdArray.Wrap(data, 64, 64, 50);
                offs[m] = [rng.Next(20000), rng.Next(20000), rng.Next(20000)];
            }
            result.Add(((ulong)o * 7919 + 1, masks, offs));
        }
        return result;
    }

    // ---------------------------------------------------------------- floors

    /// <summary>What the machine allows for the same bytes: memcpy, LZ4 on one and both cores, file writes with and without fsync.</summary>
    public static JsonObject Floors(IReadOnlyList<ReadOnlyMemory<byte>> chunks, string dir)
    {
        long total = chunks.Sum(c => (long)c.Length);
        var blocks = new byte[chunks.Count][];
        var t = new PhaseTimings();
        var dst = new byte[chunks.Max(c => c.Length)];
        for (int rep = 0; rep < 3; rep++)
        {
            t.Add("memcpy", Time(() => { foreach (var c in chunks) c.Span.CopyTo(dst); }));
            t.Add("lz4_encode_1core", Time(() => { for (int i = 0; i < chunks.Count; i++) blocks[i] = PyLz4.Compress(chunks[i].Span); }));
            t.Add("lz4_encode_2core", Time(() => Parallel.For(0, chunks.Count, i => blocks[i] = PyLz4.Compress(chunks[i].Span))));
            t.Add("lz4_decode_1core", Time(() => { foreach (var b in blocks) PyLz4.Decompress(b); }));
            t.Add("lz4_decode_2core", Time(() => Parallel.For(0, blocks.Length, i => PyLz4.Decompress(blocks[i]))));
            var f = Fresh(dir, "floor.bin");
            t.Add("write_nosync", Time(() => { using var fs = new FileStream(f, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20); foreach (var b in blocks) fs.Write(b); }));
            t.Add("write_fsync", Time(() => { using var fs = new FileStream(f, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20); foreach (var b in blocks) fs.Write(b); fs.Flush(true); }));
            File.Delete(f);
        }
        long compressed = blocks.Sum(b => (long)b.Length);
        var o = new JsonObject { ["raw_bytes"] = total, ["lz4_bytes"] = compressed, ["timings"] = t.ToJson() };
        var mbps = new JsonObject();
        foreach (var p in new[] { "memcpy", "lz4_encode_1core", "lz4_encode_2core", "lz4_decode_1core", "lz4_decode_2core" })
            mbps[p] = Math.Round(total / 1e6 / t.Median(p), 1);
        mbps["write_nosync"] = Math.Round(compressed / 1e6 / t.Median("write_nosync"), 1);
        mbps["write_fsync"] = Math.Round(compressed / 1e6 / t.Median("write_fsync"), 1);
        o["mb_per_s"] = mbps;
        return o;
    }

    // ---------------------------------------------------------------- W1

    public static JsonObject W1(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W1Data(scale);
        string dir = Path.Combine(outDir, "w1");
        var t = new PhaseTimings();
        string path = "";
        Repeat(reps, rec =>
        {
            foreach (bool durable in new[] { true, false })
            {
                string sfx = durable ? "" : "_nosync";
                path = Fresh(dir, durable ? "w1.pkl" : "w1_nosync.pkl");
                using var cs = new CompressedStorage(path, W(durable));
                // Bulk assignment through Update encodes on all cores; the indexer encodes on the caller's thread.
                double set = Time(() => cs.Update(data.Select(d => new KeyValuePair<StoreKey, NdArray>(d.Key, d.Value))));
                if (durable)
                {
                    using var one = new CompressedStorage(Fresh(dir, "w1_indexer.pkl"), W(false));
                    rec.Add("set_all_indexer", Time(() => { foreach (var (k, v) in data) one[k] = v; }));
                }
                double push = Time(() => cs.Push());
                rec.Add("set_all" + sfx, set);
                rec.Add("push" + sfx, push);
                rec.Add("set_push" + sfx, set + push);
            }
            path = Path.Combine(dir, "w1.pkl");
            Quiesce();
            CompressedStorage? r = null;
            rec.Add("pull", Time(() => r = new CompressedStorage(path)));
            long n = 0;
            rec.Add("get_all", Time(() => { foreach (var (k, _) in data) n += r![k].Size; }));
            var keys = data.Select(d => (StoreKey)d.Key).ToArray();
            rec.Add("get_all_parallel", Time(() => n += r!.GetMany(keys).Length));
            r!.Dispose();
        }, t, progress, "w1");
        long raw = data.Sum(d => d.Value.NBytes);
        var floors = Floors(data.Select(d => (ReadOnlyMemory<byte>)d.Value.Data).ToList(), dir);
        return Line("w1", scale, reps, new JsonObject { ["n_keys"] = data.Count, ["n_range"] = new JsonArray(100, 5000) }, t,
            new JsonObject { ["raw_bytes"] = raw, ["file_bytes"] = FileSize(Path.Combine(dir, "w1.pkl")) }, new JsonObject { ["floors"] = floors });
    }

    // ---------------------------------------------------------------- W2

    private static readonly string[] TypeNames = ["sv", "mi", "sj", "vc", "syn_ssv"];

    public static List<(ulong, PyDict)> W2Data(double scale, int seed = 2)
    {
        var rng = new Random(seed);
        int count = Scaled(100_000, scale);
        var list = new List<(ulong, PyDict)>(count);
        var seen = new HashSet<ulong>();
        while (list.Count < count)
        {
            ulong key = (ulong)rng.NextInt64(1, long.MaxValue);
            if (!seen.Add(key)) continue;
            long x = rng.Next(20000), y = rng.Next(20000), z = rng.Next(20000);
            list.Add((key, new PyDict
            {
                ["size"] = (long)rng.Next(1, 1_000_000),
                ["rep_coord"] = NdArray.Create(new[] { x, y, z }),
                ["bounding_box"] = NdArray.Create(new[] { x - 10, y - 10, z - 5, x + 10, y + 10, z + 5 }, 2, 3),
                ["mesh_bb"] = NdArray.Create(new[] { x * 10f, y * 10f, z * 25f, x * 10f + 200, y * 10f + 200, z * 25f + 250 }, 2, 3),
                ["rc_radius"] = NpScalar.Float64(rng.NextDouble() * 100),
                ["type"] = TypeNames[rng.Next(TypeNames.Length)],
                ["ssv_id"] = NpScalar.UInt64((ulong)rng.NextInt64(1, long.MaxValue)),
                ["partners"] = new PyList { (long)rng.Next(), (long)rng.Next() },
            }));
        }
        return list;
    }

    public static JsonObject W2(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W2Data(scale);
        string dir = Path.Combine(outDir, "w2");
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool durable in new[] { true, false })
            {
                string sfx = durable ? "" : "_nosync";
                var path = Fresh(dir, durable ? "attr_dict.pkl" : "attr_dict_nosync.pkl");
                using var ad = new AttributeDict(path, W(durable));
                double set = Time(() => { foreach (var (k, v) in data) ad[k] = v; });
                double push = Time(() => ad.Push());
                rec.Add("set_all" + sfx, set);
                rec.Add("push" + sfx, push);
                rec.Add("build_push" + sfx, set + push);
            }
            Quiesce();
            AttributeDict? r = null;
            rec.Add("pull", Time(() => r = new AttributeDict(Path.Combine(dir, "attr_dict.pkl"))));
            long n = 0;
            rec.Add("read_all", Time(() => { foreach (var (k, _) in data) n += ((PyDict)r![k]).Count; }));
            r!.Dispose();
        }, t, progress, "w2");
        return Line("w2", scale, reps, new JsonObject { ["n_keys"] = data.Count }, t,
            new JsonObject { ["file_bytes"] = FileSize(Path.Combine(dir, "attr_dict.pkl")) });
    }

    // ---------------------------------------------------------------- W3

    public static List<(ulong, NdArray[])> W3Data(double scale, int seed = 3)
    {
        var rng = new Random(seed);
        int count = Scaled(500, scale);
        var list = new List<(ulong, NdArray[])>(count);
        for (int m = 0; m < count; m++)
        {
            int nv = rng.Next(5000, 50001);
            var ind = new uint[2 * nv * 3];
            for (int i = 0; i < ind.Length; i++)
            {
                int baseV = Math.Min(nv - 1, i / 6);
                ind[i] = (uint)Math.Clamp(baseV + rng.Next(-20, 21), 0, nv - 1);
            }
            var vert = new float[nv * 3];
            float cx = rng.Next(100000), cy = rng.Next(100000), cz = rng.Next(100000);
            for (int i = 0; i < nv; i++)
            {
                vert[3 * i] = cx + (float)(Gauss(rng) * 500);
                vert[3 * i + 1] = cy + (float)(Gauss(rng) * 500);
                vert[3 * i + 2] = cz + (float)(Gauss(rng) * 500);
            }
            var norm = new float[nv * 3];
            for (int i = 0; i < nv; i++)
            {
                double a = Gauss(rng), b = Gauss(rng), c = Gauss(rng), l = Math.Sqrt(a * a + b * b + c * c) + 1e-12;
                norm[3 * i] = (float)(a / l); norm[3 * i + 1] = (float)(b / l); norm[3 * i + 2] = (float)(c / l);
            }
            list.Add(((ulong)m + 1, [NdArray.Wrap(ind), NdArray.Wrap(vert), NdArray.Wrap(norm)]));
        }
        return list;
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    public static JsonObject W3(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W3Data(scale);
        string dir = Path.Combine(outDir, "w3");
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool compress in new[] { true, false })
            {
                string pre = compress ? "lz4_" : "raw_";
                foreach (bool durable in new[] { true, false })
                {
                    string sfx = durable ? "" : "_nosync";
                    var path = Fresh(dir, $"mesh_{pre}{(durable ? "" : "nosync")}.pkl");
                    using var ms = new MeshStorage(path, W(durable), compress: compress);
                    double set = Time(() => ms.Update(data.Select(d => new KeyValuePair<StoreKey, NdArray[]>(d.Item1, d.Item2))));
                    double push = Time(() => ms.Push());
                    rec.Add(pre + "set" + sfx, set);
                    rec.Add(pre + "push" + sfx, push);
                    rec.Add(pre + "set_push" + sfx, set + push);
                }
                Quiesce();
                MeshStorage? r = null;
                double pull = Time(() => r = new MeshStorage(Path.Combine(dir, $"mesh_{pre}.pkl")));
                long n = 0;
                double get = Time(() => { foreach (var (k, _) in data) n += r![k][1].Size; });
                var keys = data.Select(d => (StoreKey)d.Item1).ToArray();
                double getPar = Time(() => n += r!.GetMany(keys).Length);
                r!.Dispose();
                rec.Add(pre + "pull", pull);
                rec.Add(pre + "get_all", get);
                rec.Add(pre + "pull_get", pull + get);
                rec.Add(pre + "get_all_parallel", getPar);
                rec.Add(pre + "pull_get_parallel", pull + getPar);
            }
        }, t, progress, "w3");
        return Line("w3", scale, reps, new JsonObject { ["n_meshes"] = data.Count }, t,
            new JsonObject { ["raw_bytes"] = data.Sum(d => d.Item2.Sum(a => a.NBytes)), ["file_bytes_lz4"] = FileSize(Path.Combine(dir, "mesh_lz4_.pkl")), ["file_bytes_raw"] = FileSize(Path.Combine(dir, "mesh_raw_.pkl")) });
    }

    // ---------------------------------------------------------------- W4

    public static List<(ulong, Skeleton)> W4Data(double scale, int seed = 4)
    {
        var rng = new Random(seed);
        int count = Scaled(5000, scale);
        var list = new List<(ulong, Skeleton)>(count);
        for (int s = 0; s < count; s++)
        {
            int n = rng.Next(50, 2001);
            var nodes = new uint[n * 3];
            uint x = (uint)rng.Next(10000, 20000), y = (uint)rng.Next(10000, 20000), z = (uint)rng.Next(10000, 20000);
            for (int i = 0; i < n; i++)
            {
                x = (uint)(x + rng.Next(-5, 6)); y = (uint)(y + rng.Next(-5, 6)); z = (uint)(z + rng.Next(-5, 6));
                nodes[3 * i] = x; nodes[3 * i + 1] = y; nodes[3 * i + 2] = z;
            }
            var diam = new float[n];
            for (int i = 0; i < n; i++) diam[i] = (float)(rng.NextDouble() * 10);
            var edges = new uint[(n - 1) * 2];
            for (int i = 1; i < n; i++) { edges[2 * (i - 1)] = (uint)rng.Next(i); edges[2 * (i - 1) + 1] = (uint)i; }
            list.Add(((ulong)s + 1, new Skeleton(NdArray.Wrap(nodes, n, 3), NdArray.Wrap(diam), NdArray.Wrap(edges, n - 1, 2))));
        }
        return list;
    }

    public static JsonObject W4(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W4Data(scale);
        string dir = Path.Combine(outDir, "w4");
        var t = new PhaseTimings();
        Repeat(reps, rec => SetPushPullGet(rec, dir, "skeletons",
            o => new SkeletonStorage(o.Path, o.Options), s => s.Update(data.Select(d => new KeyValuePair<StoreKey, Skeleton>(d.Item1, d.Item2))),
            s => { long n = 0; foreach (var (k, _) in data) n += s[k].Nodes.Size; },
            s => s.GetMany(data.Select(d => (StoreKey)d.Item1).ToArray())), t, progress, "w4");
        return Line("w4", scale, reps, new JsonObject { ["n_skeletons"] = data.Count }, t,
            new JsonObject { ["raw_bytes"] = data.Sum(d => d.Item2.Nodes.NBytes + d.Item2.Diameters.NBytes + d.Item2.Edges.NBytes), ["file_bytes"] = FileSize(Path.Combine(dir, "skeletons.pkl")) });
    }

    private readonly record struct Open(string Path, StoreOptions Options);

    private static void SetPushPullGet<TStore>(PhaseTimings rec, string dir, string name, Func<Open, TStore> open, Action<TStore> setAll, Action<TStore> getAll, Action<TStore> getMany)
        where TStore : StorageBase
    {
        foreach (bool durable in new[] { true, false })
        {
            string sfx = durable ? "" : "_nosync";
            var path = Fresh(dir, durable ? name + ".pkl" : name + "_nosync.pkl");
            using var s = open(new Open(path, W(durable)));
            double set = Time(() => setAll(s));
            double push = Time(() => s.Push());
            rec.Add("set" + sfx, set);
            rec.Add("push" + sfx, push);
            rec.Add("set_push" + sfx, set + push);
        }
        Quiesce();
        TStore? r = null;
        double pull = Time(() => r = open(new Open(Path.Combine(dir, name + ".pkl"), StoreOptions.Default)));
        double get = Time(() => getAll(r!));
        double getPar = Time(() => getMany(r!));
        r!.Dispose();
        rec.Add("pull", pull);
        rec.Add("get_all", get);
        rec.Add("pull_get", pull + get);
        rec.Add("get_all_parallel", getPar);
        rec.Add("pull_get_parallel", pull + getPar);
    }

    // ---------------------------------------------------------------- W5

    public static JsonObject W5(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W5Data(scale);
        string dir = Path.Combine(outDir, "w5");
        var t = new PhaseTimings();
        Repeat(reps, rec => SetPushPullGet(rec, dir, "voxel",
            o => new VoxelStorageL(o.Path, o.Options), s => s.Update(data.Select(d => new KeyValuePair<StoreKey, VoxelMasks>(d.Key, new VoxelMasks(d.Masks, d.Offsets)))),
            s => { long n = 0; foreach (var (k, _, _) in data) n += s[k].Masks.Sum(m => m.Size); },
            s => s.GetMany(data.Select(d => (StoreKey)d.Key).ToArray())), t, progress, "w5");
        var floors = Floors(data.SelectMany(d => d.Masks).Select(m => (ReadOnlyMemory<byte>)m.Data).ToList(), dir);
        return Line("w5", scale, reps, new JsonObject { ["n_objects"] = data.Count, ["masks_per_object"] = 4 }, t,
            new JsonObject { ["raw_bytes"] = data.Sum(d => d.Masks.Sum(m => m.NBytes)), ["file_bytes"] = FileSize(Path.Combine(dir, "voxel.pkl")) }, new JsonObject { ["floors"] = floors });
    }

    // ---------------------------------------------------------------- W7

    /// <summary>
    /// W7 (the reference's <c>gen_w7</c>): unique int keys drawn from [0, 10^10), sorted; each value an (n,3)
    /// int64 array of n uniform in [10,1000] distinct voxels of a 16^3 box, sorted (C order of (x,y,z)),
    /// plus a random offset in [0,20000)^3.
    /// </summary>
    public static List<(long Key, NdArray Value)> W7Data(double scale, int seed = 7)
    {
        var rng = new Random(seed);
        int count = Scaled(10_000, scale);
        var keySet = new HashSet<long>(count);
        while (keySet.Count < count) keySet.Add(rng.NextInt64(10_000_000_000));
        var keys = keySet.ToArray();
        Array.Sort(keys);
        var result = new List<(long, NdArray)>(count);
        var perm = Enumerable.Range(0, 4096).ToArray();
        foreach (long key in keys)
        {
            int n = rng.Next(10, 1001);
            // partial Fisher-Yates: n distinct linear indices of the 16^3 box
            for (int i = 0; i < n; i++) { int j = rng.Next(i, perm.Length); (perm[i], perm[j]) = (perm[j], perm[i]); }
            var lin = perm.AsSpan(0, n).ToArray();
            Array.Sort(lin);
            long ox = rng.Next(20000), oy = rng.Next(20000), oz = rng.Next(20000);
            var v = new long[n * 3];
            for (int i = 0; i < n; i++)
            {
                int l = lin[i];
                v[3 * i] = (l >> 8) + ox;
                v[3 * i + 1] = ((l >> 4) & 15) + oy;
                v[3 * i + 2] = (l & 15) + oz;
            }
            result.Add((key, NdArray.Wrap(v, n, 3)));
        }
        return result;
    }

    public static JsonObject W7(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W7Data(scale);
        int count = data.Count;
        string dir = Path.Combine(outDir, "w7");
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool durable in new[] { true, false })
            {
                string sfx = durable ? "" : "_nosync";
                var path = Fresh(dir, durable ? "voxel_cache.npz" : "voxel_cache_nosync.npz");
                using var s = new VoxelStorageLazyLoading(path, durable: durable);
                double set = Time(() => { foreach (var (k, v) in data) s[k] = v; });
                double push = Time(() => s.Push());
                rec.Add("set" + sfx, set);
                rec.Add("push" + sfx, push);
            }
            {
                // Our option: zlib-ng's fastest level (numpy reads it; on these data the file is about 1.7x numpy's).
                var path = Fresh(dir, "voxel_cache_fastest.npz");
                using var s = new VoxelStorageLazyLoading(path, compressionLevel: System.IO.Compression.CompressionLevel.Fastest);
                foreach (var (k, v) in data) s[k] = v;
                rec.Add("push_fastest", Time(() => s.Push()));
            }
            Quiesce();
            VoxelStorageLazyLoading? r = null;
            double reopen = Time(() => r = new VoxelStorageLazyLoading(Path.Combine(dir, "voxel_cache.npz")));
            long n = 0;
            double read = Time(() => { foreach (var (k, _) in data) n += r![k].Size; });
            r!.Dispose();
            rec.Add("reopen", reopen);
            rec.Add("read_all", read);
            rec.Add("reopen_read_all", reopen + read);
        }, t, progress, "w7");
        return Line("w7", scale, reps, new JsonObject { ["n_keys"] = count, ["deflate"] = SyConn.Backend.Formats.Npy.NpzWriter.OptimalDeflate }, t,
            new JsonObject { ["raw_bytes"] = data.Sum(d => d.Item2.NBytes), ["file_bytes"] = FileSize(Path.Combine(dir, "voxel_cache.npz")), ["file_bytes_fastest"] = FileSize(Path.Combine(dir, "voxel_cache_fastest.npz")) });
    }
}
