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
    // Each generator follows the reference harness's gen_wN (shared/ref/bench_py.py): the same counts,
    // distributions, dtypes, shapes and key types; only the random values differ (System.Random, fixed seed).

    /// <summary>The reference's <c>unique_keys</c>: <paramref name="n"/> distinct ints from [0, <paramref name="hi"/>), sorted.</summary>
    public static ulong[] UniqueKeys(Random rng, int n, long hi = 10_000_000_000)
    {
        var set = new HashSet<ulong>(n);
        while (set.Count < n) set.Add((ulong)rng.NextInt64(hi));
        var keys = set.ToArray();
        Array.Sort(keys);
        return keys;
    }

    /// <summary>A standard normal deviate (Box-Muller).</summary>
    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>
    /// W1 (<c>gen_w1</c>): 5,000 sorted unique keys from [0, 10^10); each value (n,3) uint64, n uniform in
    /// [100,5000] unique voxels of a 32^3 box in C order, shifted by a random offset in [0,20000)^3.
    /// </summary>
    public static List<(ulong Key, NdArray Value)> W1Data(double scale, int seed = 1)
    {
        var rng = new Random(seed);
        int count = Scaled(5000, scale);
        var keys = UniqueKeys(rng, count);
        var result = new List<(ulong, NdArray)>(count);
        var perm = Enumerable.Range(0, 32768).ToArray();
        foreach (ulong key in keys)
        {
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

    /// <summary>
    /// W5 (<c>gen_w5</c>): sorted unique keys from [0, 10^10); 4 uint8 masks of (64,64,50) per object, balls of
    /// radius 3..10 at random centres until at least 10% are ones; offsets a list of 4 int64 (3,) arrays in [0,20000).
    /// </summary>
    public static List<(ulong Key, NdArray[] Masks, PyList Offsets)> W5Data(double scale, int seed = 5)
    {
        var rng = new Random(seed);
        int count = Scaled(200, scale);
        var keys = UniqueKeys(rng, count);
        var result = new List<(ulong, NdArray[], PyList)>(count);
        foreach (ulong key in keys)
        {
            var masks = new NdArray[4];
            var offs = new PyList(4);
            for (int m = 0; m < 4; m++)
            {
                var data = new byte[64 * 64 * 50];
                int ones = 0, target = (int)Math.Ceiling(0.10 * data.Length);
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
            }
            for (int m = 0; m < 4; m++) offs.Add(NdArray.Create(new long[] { rng.Next(20000), rng.Next(20000), rng.Next(20000) }));
            result.Add((key, masks, offs));
        }
        return result;
    }

    // ---------------------------------------------------------------- floors and memory

    /// <summary>
    /// Maps the writing phases of one store: <c>SET</c> (and <c>SET_nosync</c>) to <paramref name="encode"/> (none:
    /// no floor), <c>push</c> to writing the file with fsync, <c>push_nosync</c> without, <c>set_push</c> to the sum.
    /// </summary>
    private static void MapWrites(Floors f, string pre, string set, string? encode, string file = "")
    {
        string[] enc = encode is null ? [] : [encode];
        f.Map(pre + set, enc).Map(pre + set + "_nosync", enc);
        f.Map(pre + "push", file + "write_fsync").Map(pre + "push_nosync", file + "write_nosync");
        f.Map(pre + "set_push", [.. enc, file + "write_fsync"]).Map(pre + "set_push_nosync", [.. enc, file + "write_nosync"]);
    }

    /// <summary>
    /// Maps the reading phases: <c>pull</c> to reading the file into a fresh buffer, <c>get_all</c> (GetMany, both
    /// cores) to <paramref name="decode2"/>, <c>get_all_indexer</c> (one key at a time) to <paramref name="decode1"/>,
    /// <c>pull_get</c> to read + decode.
    /// </summary>
    private static void MapReads(Floors f, string pre, string decode2, string decode1, string file = "")
    {
        f.Map(pre + "pull", file + "read_fresh");
        f.Map(pre + "get_all", decode2).Map(pre + "get_all_indexer", decode1);
        f.Map(pre + "pull_get", file + "read_fresh", decode2);
    }

    private static List<ReadOnlyMemory<byte>> Chunks(IEnumerable<NdArray> arrays) => arrays.Select(a => (ReadOnlyMemory<byte>)a.Data).ToList();

    /// <summary>The floors, their map and ratios, and the peak memory of reading the store, for <see cref="BenchMath.Line"/>.</summary>
    private static JsonObject Extra(Floors f, PhaseTimings t, JsonObject? memory)
    {
        var o = f.ToJson(t);
        if (memory is not null)
        {
            o["peak_rss_bytes"] = memory["peak_rss_bytes"]?.DeepClone();
            o["memory"] = memory;
        }
        return o;
    }

    // ---------------------------------------------------------------- W1

    public static JsonObject W1(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W1Data(scale);
        string dir = Path.Combine(outDir, "w1");
        string file = Path.Combine(dir, "w1.pkl");
        var keys = data.Select(d => (StoreKey)d.Key).ToArray();
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool durable in new[] { true, false })
            {
                string sfx = durable ? "" : "_nosync";
                using var cs = new CompressedStorage(Fresh(dir, durable ? "w1.pkl" : "w1_nosync.pkl"), W(durable));
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
            Quiesce();
            CompressedStorage? r = null;
            double pull = Time(() => r = new CompressedStorage(file));
            long n = 0;
            double get = Time(() => n += r!.GetMany(keys).Length);
            rec.Add("pull", pull);
            rec.Add("get_all", get);
            rec.Add("pull_get", pull + get);
            rec.Add("get_all_indexer", Time(() => { foreach (var k in keys) n += r![k].Size; }));
            r!.Dispose();
        }, t, progress, "w1");
        long raw = data.Sum(d => d.Value.NBytes);
        progress.WriteLine("bench w1: floors");
        var f = new Floors(reps).Lz4(Chunks(data.Select(d => d.Value))).File(file);
        MapWrites(f, "", "set_all", "lz4_encode_2core");
        f.Map("set_all_indexer", "lz4_encode_1core");
        MapReads(f, "", "lz4_decode_2core", "lz4_decode_1core");
        var mem = PeakMemory.Measure("compressed", file, raw, progress);
        return Line("w1", scale, reps, new JsonObject { ["n_keys"] = data.Count, ["n_range"] = new JsonArray(100, 5000), ["dtype"] = "uint64" }, t,
            new JsonObject { ["raw_bytes"] = raw, ["file_bytes"] = FileSize(file) }, Extra(f, t, mem));
    }

    // ---------------------------------------------------------------- W2

    private static readonly string[] TypeNames = ["sv", "sj", "vc", "mi", "syn_ssv"];

    /// <summary>
    /// W2 (<c>gen_w2</c>): sorted unique keys from [0, 10^10); each value a dict of <c>size</c> int [1,10^6),
    /// <c>rep_coord</c> int64 (3,) in [0,30000), <c>bounding_box</c> int64 (2,3) = [lo, lo + ext] with lo in
    /// [0,30000) and ext in [1,500), <c>mesh_bb</c> float32 (2,3) = [lo*10 + U[0,1), that + ext*10],
    /// <c>rc_radius</c> numpy float64 in [0,1000), <c>type</c> one of 5 names, <c>ssv_id</c> numpy uint64 in
    /// [1,10^10) and <c>partners</c> a list of 2 ints in [1,10^10).
    /// </summary>
    public static List<(ulong, PyDict)> W2Data(double scale, int seed = 2)
    {
        var rng = new Random(seed);
        int count = Scaled(100_000, scale);
        var keys = UniqueKeys(rng, count);
        var list = new List<(ulong, PyDict)>(count);
        foreach (ulong key in keys)
        {
            long[] rep = [rng.Next(30000), rng.Next(30000), rng.Next(30000)];
            long[] lo = [rng.Next(30000), rng.Next(30000), rng.Next(30000)];
            long[] ext = [rng.Next(1, 500), rng.Next(1, 500), rng.Next(1, 500)];
            var mlo = new float[3];
            for (int i = 0; i < 3; i++) mlo[i] = (float)(lo[i] * 10) + rng.NextSingle();
            list.Add((key, new PyDict
            {
                ["size"] = (long)rng.Next(1, 1_000_000),
                ["rep_coord"] = NdArray.Create(rep),
                ["bounding_box"] = NdArray.Create(new[] { lo[0], lo[1], lo[2], lo[0] + ext[0], lo[1] + ext[1], lo[2] + ext[2] }, 2, 3),
                ["mesh_bb"] = NdArray.Create(new[] { mlo[0], mlo[1], mlo[2], mlo[0] + ext[0] * 10f, mlo[1] + ext[1] * 10f, mlo[2] + ext[2] * 10f }, 2, 3),
                ["rc_radius"] = NpScalar.Float64(rng.NextDouble() * 1000),
                ["type"] = TypeNames[rng.Next(TypeNames.Length)],
                ["ssv_id"] = NpScalar.UInt64((ulong)rng.NextInt64(1, 10_000_000_000)),
                ["partners"] = new PyList { rng.NextInt64(1, 10_000_000_000), rng.NextInt64(1, 10_000_000_000) },
            }));
        }
        return list;
    }

    public static JsonObject W2(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W2Data(scale);
        string dir = Path.Combine(outDir, "w2");
        string file = Path.Combine(dir, "attr_dict.pkl");
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool durable in new[] { true, false })
            {
                string sfx = durable ? "" : "_nosync";
                using var ad = new AttributeDict(Fresh(dir, durable ? "attr_dict.pkl" : "attr_dict_nosync.pkl"), W(durable));
                double set = Time(() => { foreach (var (k, v) in data) ad[k] = v; });
                double push = Time(() => ad.Push());
                rec.Add("set_all" + sfx, set);
                rec.Add("push" + sfx, push);
                rec.Add("build_push" + sfx, set + push);
            }
            Quiesce();
            AttributeDict? r = null;
            double pull = Time(() => r = new AttributeDict(file));
            rec.Add("pull", pull);
            long n = 0;
            // As the Python harness: every attribute of every key, through the indexer.
            double readAll = Time(() =>
            {
                foreach (var (k, _) in data)
                {
                    var d = (PyDict)r![k];
                    n += (long)d["size"];
                    _ = d["rep_coord"]; _ = d["bounding_box"]; _ = d["mesh_bb"]; _ = d["rc_radius"];
                    _ = d["type"]; _ = d["ssv_id"]; _ = d["partners"];
                }
            });
            rec.Add("read_all", readAll);
            rec.Add("pull_read_all", pull + readAll);
            r!.Dispose();
            // The same information read as columns from a freshly pulled store: what analysis code does.
            Quiesce();
            AttributeDict? c = null;
            double cpull = Time(() => c = new AttributeDict(file));
            double cols = Time(() =>
            {
                n += c!.Column<long>("size").Length;
                n += c.ColumnArray<long>("rep_coord").Size + c.ColumnArray<long>("bounding_box").Size + c.ColumnArray<float>("mesh_bb").Size;
                n += c.Column<double>("rc_radius").Length + c.Column<string>("type").Length + c.Column<ulong>("ssv_id").Length;
                n += c.ColumnArray<long>("partners").Size;
            });
            rec.Add("columns_all", cols);
            rec.Add("pull_columns_all", cpull + cols);
            c!.Dispose();
        }, t, progress, "w2");
        progress.WriteLine("bench w2: floors");
        // Building Python objects has no physical floor; writing and reading the pickle file has.
        var f = new Floors(reps).File(file);
        f.Map("set_all").Map("set_all_nosync").Map("read_all").Map("pull_read_all").Map("columns_all").Map("pull_columns_all");
        f.Map("push", "write_fsync").Map("push_nosync", "write_nosync").Map("build_push", "write_fsync").Map("build_push_nosync", "write_nosync");
        f.Map("pull", "read_fresh");
        var mem = PeakMemory.Measure("attr", file, 0, progress);
        return Line("w2", scale, reps, new JsonObject { ["n_keys"] = data.Count, ["attrs_per_obj"] = 8 }, t,
            new JsonObject { ["file_bytes"] = FileSize(file) }, Extra(f, t, mem));
    }

    // ---------------------------------------------------------------- W3

    /// <summary>
    /// W3 (<c>gen_w3</c>): sorted unique keys from [0, 10^10); nv uniform in [5000,50000]; indices uint32 flat,
    /// 2 nv triangles, index i = min(i/6 + U{0..29}, nv-1); vertices float32 flat, normal with sd 500 plus one
    /// random integer centre in [0,10^5) for all coordinates; normals float32 flat unit vectors.
    /// </summary>
    public static List<(ulong, NdArray[])> W3Data(double scale, int seed = 3)
    {
        var rng = new Random(seed);
        int count = Scaled(500, scale);
        var keys = UniqueKeys(rng, count);
        var list = new List<(ulong, NdArray[])>(count);
        foreach (ulong key in keys)
        {
            int nv = rng.Next(5000, 50001);
            var ind = new uint[2 * nv * 3];
            for (int i = 0; i < ind.Length; i++) ind[i] = (uint)Math.Min(nv - 1, i / 6 + rng.Next(30));
            var vert = new float[nv * 3];
            double centre = rng.Next(100_000);
            for (int i = 0; i < vert.Length; i++) vert[i] = (float)(Gauss(rng) * 500 + centre);
            var norm = new float[nv * 3];
            for (int i = 0; i < nv; i++)
            {
                double a = Gauss(rng), b = Gauss(rng), c = Gauss(rng), l = Math.Sqrt(a * a + b * b + c * c);
                norm[3 * i] = (float)(a / l); norm[3 * i + 1] = (float)(b / l); norm[3 * i + 2] = (float)(c / l);
            }
            list.Add((key, [NdArray.Wrap(ind), NdArray.Wrap(vert), NdArray.Wrap(norm)]));
        }
        return list;
    }

    public static JsonObject W3(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W3Data(scale);
        string dir = Path.Combine(outDir, "w3");
        var keys = data.Select(d => (StoreKey)d.Item1).ToArray();
        string File(string pre) => Path.Combine(dir, $"mesh_{pre}.pkl");
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            foreach (bool compress in new[] { true, false })
            {
                string pre = compress ? "lz4_" : "raw_";
                foreach (bool durable in new[] { true, false })
                {
                    string sfx = durable ? "" : "_nosync";
                    using var ms = new MeshStorage(Fresh(dir, $"mesh_{pre}{(durable ? "" : "nosync")}.pkl"), W(durable), compress: compress);
                    double set = Time(() => ms.Update(data.Select(d => new KeyValuePair<StoreKey, NdArray[]>(d.Item1, d.Item2))));
                    double push = Time(() => ms.Push());
                    rec.Add(pre + "set" + sfx, set);
                    rec.Add(pre + "push" + sfx, push);
                    rec.Add(pre + "set_push" + sfx, set + push);
                }
                Quiesce();
                MeshStorage? r = null;
                double pull = Time(() => r = new MeshStorage(File(pre), StoreOptions.Default, compress: compress));
                long n = 0;
                double get = Time(() => n += r!.GetMany(keys).Length);
                rec.Add(pre + "pull", pull);
                rec.Add(pre + "get_all", get);
                rec.Add(pre + "pull_get", pull + get);
                rec.Add(pre + "get_all_indexer", Time(() => { foreach (var k in keys) n += r![k][1].Size; }));
                r!.Dispose();
            }
        }, t, progress, "w3");
        progress.WriteLine("bench w3: floors");
        long raw = data.Sum(d => d.Item2.Sum(a => a.NBytes));
        var f = new Floors(reps).Lz4(Chunks(data.SelectMany(d => d.Item2))).File(File("lz4_"), "lz4file_").File(File("raw_"), "rawfile_");
        MapWrites(f, "lz4_", "set", "lz4_encode_2core", "lz4file_");
        MapReads(f, "lz4_", "lz4_decode_2core", "lz4_decode_1core", "lz4file_");
        // Uncompressed meshes: setting and getting can at best copy the arrays.
        MapWrites(f, "raw_", "set", "memcpy", "rawfile_");
        MapReads(f, "raw_", "memcpy", "memcpy", "rawfile_");
        var mem = PeakMemory.Measure("mesh_lz4", File("lz4_"), raw, progress);
        return Line("w3", scale, reps, new JsonObject { ["n_meshes"] = data.Count, ["verts_range"] = new JsonArray(5000, 50000), ["faces_per_vert"] = 2 }, t,
            new JsonObject { ["raw_bytes"] = raw, ["lz4_file_bytes"] = FileSize(File("lz4_")), ["raw_file_bytes"] = FileSize(File("raw_")) }, Extra(f, t, mem));
    }

    // ---------------------------------------------------------------- W4

    /// <summary>
    /// W4 (<c>gen_w4</c>): sorted unique keys from [0, 10^10); n uniform in [50,2000] nodes, (n,3) uint32, a random
    /// walk (steps uniform in [-5,5] per axis, the cumulative sum plus a start in [20000,200000)^3); diameters float32
    /// uniform in [0,20); edges (n-1,2) uint32 (parent, child), the parent of node i being i-1 with p = 0.95, else a
    /// uniformly random earlier node.
    /// </summary>
    public static List<(ulong, Skeleton)> W4Data(double scale, int seed = 4)
    {
        var rng = new Random(seed);
        int count = Scaled(5000, scale);
        var keys = UniqueKeys(rng, count);
        var list = new List<(ulong, Skeleton)>(count);
        foreach (ulong key in keys)
        {
            int n = rng.Next(50, 2001);
            var steps = new long[n * 3];
            for (int i = 0; i < steps.Length; i++) steps[i] = rng.Next(-5, 6);
            long sx = rng.Next(20000, 200000), sy = rng.Next(20000, 200000), sz = rng.Next(20000, 200000);
            var nodes = new uint[n * 3];
            for (int i = 0; i < n; i++)
            {
                sx += steps[3 * i]; sy += steps[3 * i + 1]; sz += steps[3 * i + 2];
                nodes[3 * i] = (uint)sx; nodes[3 * i + 1] = (uint)sy; nodes[3 * i + 2] = (uint)sz;
            }
            var diam = new float[n];
            for (int i = 0; i < n; i++) diam[i] = (float)(rng.NextDouble() * 20);
            var edges = new uint[(n - 1) * 2];
            for (int c = 1; c < n; c++)
            {
                int parent = rng.NextDouble() < 0.05 ? (int)(rng.NextDouble() * c) : c - 1;
                edges[2 * (c - 1)] = (uint)parent;
                edges[2 * (c - 1) + 1] = (uint)c;
            }
            list.Add((key, new Skeleton(NdArray.Wrap(nodes, n, 3), NdArray.Wrap(diam), NdArray.Wrap(edges, n - 1, 2))));
        }
        return list;
    }

    public static JsonObject W4(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W4Data(scale);
        string dir = Path.Combine(outDir, "w4");
        string file = Path.Combine(dir, "skeletons.pkl");
        var keys = data.Select(d => (StoreKey)d.Item1).ToArray();
        var t = new PhaseTimings();
        Repeat(reps, rec => SetPushPullGet(rec, dir, "skeletons",
            o => new SkeletonStorage(o.Path, o.Options), s => s.Update(data.Select(d => new KeyValuePair<StoreKey, Skeleton>(d.Item1, d.Item2))),
            s => s.GetMany(keys).Length,
            s => { long n = 0; foreach (var k in keys) n += s[k].Nodes.Size; }), t, progress, "w4");
        progress.WriteLine("bench w4: floors");
        long raw = data.Sum(d => d.Item2.Nodes.NBytes + d.Item2.Diameters.NBytes + d.Item2.Edges.NBytes);
        var f = new Floors(reps).Lz4(Chunks(data.SelectMany(d => new[] { d.Item2.Nodes, d.Item2.Diameters, d.Item2.Edges }))).File(file);
        MapWrites(f, "", "set", "lz4_encode_2core");
        MapReads(f, "", "lz4_decode_2core", "lz4_decode_1core");
        var mem = PeakMemory.Measure("skeleton", file, raw, progress);
        return Line("w4", scale, reps, new JsonObject { ["n_skeletons"] = data.Count, ["nodes_range"] = new JsonArray(50, 2000), ["edges"] = "n-1" }, t,
            new JsonObject { ["raw_bytes"] = raw, ["file_bytes"] = FileSize(file) }, Extra(f, t, mem));
    }

    private readonly record struct Open(string Path, StoreOptions Options);

    /// <summary>
    /// One iteration of set / push (durable and not) / pull / get: <paramref name="getAll"/> is the idiomatic
    /// whole-store read (<c>GetMany</c>, both cores), <paramref name="getIndexer"/> one key at a time.
    /// </summary>
    private static void SetPushPullGet<TStore>(PhaseTimings rec, string dir, string name, Func<Open, TStore> open, Action<TStore> setAll, Func<TStore, int> getAll, Action<TStore> getIndexer)
        where TStore : StorageBase
    {
        foreach (bool durable in new[] { true, false })
        {
            string sfx = durable ? "" : "_nosync";
            using var s = open(new Open(Fresh(dir, durable ? name + ".pkl" : name + "_nosync.pkl"), W(durable)));
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
        rec.Add("pull", pull);
        rec.Add("get_all", get);
        rec.Add("pull_get", pull + get);
        rec.Add("get_all_indexer", Time(() => getIndexer(r!)));
        r!.Dispose();
    }

    // ---------------------------------------------------------------- W5

    public static JsonObject W5(double scale, int reps, string outDir, TextWriter progress)
    {
        var data = W5Data(scale);
        string dir = Path.Combine(outDir, "w5");
        string file = Path.Combine(dir, "voxel.pkl");
        var keys = data.Select(d => (StoreKey)d.Key).ToArray();
        var t = new PhaseTimings();
        Repeat(reps, rec => SetPushPullGet(rec, dir, "voxel",
            o => new VoxelStorageL(o.Path, o.Options), s => s.Update(data.Select(d => new KeyValuePair<StoreKey, VoxelMasks>(d.Key, new VoxelMasks(d.Masks, d.Offsets)))),
            s => s.GetMany(keys).Length,
            s => { long n = 0; foreach (var k in keys) n += s[k].Masks.Sum(m => m.Size); }), t, progress, "w5");
        progress.WriteLine("bench w5: floors");
        long raw = data.Sum(d => d.Masks.Sum(m => m.NBytes));
        var f = new Floors(reps).Lz4(Chunks(data.SelectMany(d => d.Masks))).File(file);
        MapWrites(f, "", "set", "lz4_encode_2core");
        MapReads(f, "", "lz4_decode_2core", "lz4_decode_1core");
        var mem = PeakMemory.Measure("voxel", file, raw, progress);
        return Line("w5", scale, reps, new JsonObject { ["n_objects"] = data.Count, ["masks_per_object"] = 4, ["mask_shape"] = new JsonArray(64, 64, 50), ["mean_fraction_ones"] = Math.Round(MeanOnes(data.SelectMany(d => d.Masks)), 5) }, t,
            new JsonObject { ["raw_bytes"] = raw, ["file_bytes"] = FileSize(file) }, Extra(f, t, mem));
    }

    private static double MeanOnes(IEnumerable<NdArray> masks) =>
        masks.Average(m => (double)m.Data.Span.Count((byte)1) / m.Data.Length);

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
        progress.WriteLine("bench w7: floors");
        string file = Path.Combine(dir, "voxel_cache.npz");
        long raw = data.Sum(d => d.Item2.NBytes);
        // Deflate and inflate are not measured as floors: the floors here are copying the arrays and writing and
        // reading the file, lower bounds that leave the codec's time out.
        var f = new Floors(reps).Lz4(Chunks(data.Select(d => d.Item2)), lz4: false).File(file);
        f.Map("set", "memcpy").Map("set_nosync", "memcpy");
        f.Map("push", "write_fsync").Map("push_nosync", "write_nosync").Map("push_fastest", "write_fsync");
        f.Map("reopen").Map("read_all", "read_fresh").Map("reopen_read_all", "read_fresh");
        var mem = PeakMemory.Measure("npz", file, raw, progress);
        return Line("w7", scale, reps, new JsonObject { ["n_keys"] = count, ["n_range"] = new JsonArray(10, 1000), ["dtype"] = "int64", ["deflate"] = SyConn.Backend.Formats.Npy.NpzWriter.OptimalDeflate }, t,
            new JsonObject { ["raw_bytes"] = raw, ["file_bytes"] = FileSize(file), ["file_bytes_fastest"] = FileSize(Path.Combine(dir, "voxel_cache_fastest.npz")) }, Extra(f, t, mem));
    }
}
