using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// <c>info PATH [--as CLASS] [--json]</c>: what a store file, a KNOSSOS dataset folder or a <c>bt:</c> store is: the
/// class used and why, entry count, key range, dtypes and shapes of the decoded values, raw and file bytes, pickle
/// protocol, npz members, BinarySearchStore shards and attributes, the dataset's boundary, cube size and
/// magnifications, and the lock state (free, or held by pid@host since when). Reads only; takes no lock and
/// creates no lock file.
/// </summary>
/// <remarks>
/// In <c>--json</c>, <c>class</c> is the Python class name and <c>entries</c> lists the object keys as strings in the
/// key syntax <c>keys</c> prints (decimal integers, <c>str:NAME</c>, <c>tuple:A,B</c>); for a BinarySearchStore the
/// IDs, for a KNOSSOS dataset the mag-1 cube files relative to the dataset folder.
/// </remarks>
public static class InfoCommand
{
    private const int MaxShapes = 20;

    private static readonly System.Text.Json.JsonSerializerOptions Compact = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var path = new Argument<string>("path") { Description = "A store file, a KNOSSOS dataset folder, or bt:IDENTIFIER." };
        var asOpt = StoreCommands.AsOption();
        var json = new Option<bool>("--json") { Description = "Print one JSON document (class, reason, entries, ...)." };
        var cmd = new Command("info", "Describe a store: class and why, entries, key range, dtypes and shapes, sizes, format details, lock state.\n\nExample:\n  syconn-store info /data/wd/voxel.pkl --json") { path, asOpt, json };
        cmd.SetAction((ParseResult r) =>
        {
            var p = r.GetValue(path)!;
            var options = StoreScan.NoLock(StoreCommands.ReadOptions(r));
            var doc = Describe(p, r.GetValue(asOpt), options);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) o.WriteLine(doc.ToJsonString(StoreCommands.Indented));
            else WriteText(doc, o);
            return 0;
        });
        return cmd;
    }

    /// <summary>The info document of one path.</summary>
    internal static JsonObject Describe(string path, string? asName, StoreOptions options)
    {
        bool backend = EntryStores.IsBackendAddress(path);
        if (!backend && Directory.Exists(path))
        {
            if (asName is not null) throw new UsageException("--as applies to store files, not to a folder", "--as");
            if (!StoreScan.IsKnossos(path)) throw new InputException("a folder that is no KNOSSOS dataset (use 'syconn-store ls' to list its stores)", path);
            return Knossos(path);
        }
        var found = StoreCommands.Resolve(path, asName, options);
        var cls = found.Class!.Value;
        var doc = new JsonObject { ["path"] = backend ? path : Path.GetFullPath(path), ["class"] = cls.ToString(), ["reason"] = found.Reason };
        if (cls == StoreClass.BinarySearchStore)
        {
            if (backend) throw new UsageException("a BinarySearchStore is a file, not a bt: store", path);
            Bss(path, doc);
        }
        else DictStore(path, cls, options, doc);
        if (!backend)
        {
            string file = FileOf(path, cls);
            doc["file_bytes"] = new FileInfo(file).Length;
            // A BinarySearchStore is written once and never locked (upstream neither).
            if (cls != StoreClass.BinarySearchStore) doc["lock"] = Lock(file);
        }
        return doc;
    }

    private static void DictStore(string path, StoreClass cls, StoreOptions options, JsonObject doc)
    {
        using var store = StoreCommands.OpenStore(path, cls, options, new StoreParameters { LoadColArr = true });
        var keys = store.Keys.ToList();
        doc["count"] = keys.Count;
        if (store.Count != keys.Count) doc["stored_keys"] = store.Count;
        var range = StoreScan.IntRange(keys.Select(k => k.PythonValue));
        if (range is { } rg) doc["key_range"] = new JsonObject { ["min"] = rg.Min.ToString(CultureInfo.InvariantCulture), ["max"] = rg.Max.ToString(CultureInfo.InvariantCulture) };
        var dtypes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var shapes = new List<string>();
        var shapeSet = new HashSet<string>(StringComparer.Ordinal);
        long raw = 0;
        foreach (var k in keys)
        {
            var value = store.GetAsPython(k);
            foreach (var a in StoreScan.Arrays(value))
            {
                dtypes[a.DType.Str] = dtypes.GetValueOrDefault(a.DType.Str) + 1;
                raw += a.NBytes;
                var sh = "(" + string.Join(", ", a.ShapeArray) + (a.NDim == 1 ? ",)" : ")");
                if (shapeSet.Add(sh) && shapes.Count < MaxShapes) shapes.Add(sh);
            }
        }
        doc["dtypes"] = new JsonObject(dtypes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value)));
        doc["shapes"] = new JsonArray(shapes.Select(s => (JsonNode?)s).ToArray());
        if (shapeSet.Count > shapes.Count) doc["shapes_more"] = shapeSet.Count - shapes.Count;
        doc["raw_bytes"] = raw;
        doc["entries"] = new JsonArray(keys.Select(k => (JsonNode?)k.ToString()).ToArray());
        if (EntryStores.IsBackendAddress(path)) return;
        if (cls == StoreClass.VoxelStorageLazyLoading)
        {
            using var npz = NpzFile.OpenRead(FileOf(path, cls));
            var members = new JsonArray();
            foreach (var name in npz.Keys)
            {
                var a = npz.Read(name);
                members.Add(new JsonObject { ["name"] = name + ".npy", ["dtype"] = a.DType.Str, ["shape"] = new JsonArray(a.ShapeArray.Select(x => (JsonNode?)x).ToArray()) });
            }
            doc["npz_members"] = members;
            if (StoreScan.CompanionOf(FileOf(path, cls)) is { } of) doc["voxel_cache_of"] = of;
        }
        else
        {
            doc["pickle_protocol"] = PickleProtocol(FileOf(path, cls));
            if (store is VoxelStorageDyn dyn)
            {
                doc["voxeldata_path"] = dyn.VoxeldataPath;
                doc["voxel_cache"] = new JsonObject { ["path"] = dyn.NpzPath, ["exists"] = File.Exists(dyn.NpzPath), ["entries"] = dyn.VoxelCache.Count };
            }
        }
    }

    /// <summary>The file a store path names for its class (SyConn appends <c>.pkl</c> or <c>.npz</c> when missing).</summary>
    private static string FileOf(string path, StoreClass cls) => cls switch
    {
        StoreClass.VoxelStorageDyn => VoxelStorageDyn.PklPath(path),
        StoreClass.VoxelStorageLazyLoading when !File.Exists(path) && !path.EndsWith(".npz", StringComparison.Ordinal) => path + ".npz",
        _ => path,
    };

    private static void Bss(string path, JsonObject doc)
    {
        using var b = new BinarySearchStore(path);
        var ids = b.IdArray;
        doc["count"] = ids.LongLength;
        if (ids.Length > 0) doc["key_range"] = new JsonObject { ["min"] = ids.Min().ToString(CultureInfo.InvariantCulture), ["max"] = ids.Max().ToString(CultureInfo.InvariantCulture) };
        doc["shards"] = b.NShards;
        doc["bucket_ranges"] = new JsonArray(b.BucketRanges.Select(br => (JsonNode?)new JsonArray(br.First.ToString(CultureInfo.InvariantCulture), br.Last.ToString(CultureInfo.InvariantCulture))).ToArray());
        var attrs = new JsonArray();
        long raw = ids.LongLength * sizeof(ulong);
        foreach (var name in b.AttributeNames)
        {
            var shape = b.GetAttributeShape(name);
            var dt = b.GetAttributeDType(name);
            long n = 1;
            foreach (var d in shape) n *= d;
            raw += n * dt.ItemSize;
            attrs.Add(new JsonObject { ["name"] = name, ["dtype"] = dt.Str, ["shape"] = new JsonArray(shape.Select(x => (JsonNode?)x).ToArray()) });
        }
        doc["attributes"] = attrs;
        doc["raw_bytes"] = raw;
        doc["entries"] = new JsonArray(ids.Select(i => (JsonNode?)i.ToString(CultureInfo.InvariantCulture)).ToArray());
    }

    private static JsonObject Knossos(string dir)
    {
        var conf = KnossosConfigFiles.Open(dir);
        var cubes = StoreScan.Cubes(Path.Combine(conf.Root, "mag1"));
        var mags = StoreScan.Mags(conf.Root);
        return new JsonObject
        {
            ["path"] = Path.GetFullPath(dir),
            ["class"] = "KnossosDataset",
            ["reason"] = $"a folder with mag1/ and a {conf.Kind} config ({conf.ConfigPath})",
            ["name"] = conf.Name,
            ["boundary"] = new JsonArray(conf.Boundary.X, conf.Boundary.Y, conf.Boundary.Z),
            ["cube_shape"] = new JsonArray(conf.CubeShape.X, conf.CubeShape.Y, conf.CubeShape.Z),
            ["scales"] = new JsonArray(conf.Scales.Select(s => (JsonNode?)new JsonArray(s.X, s.Y, s.Z)).ToArray()),
            ["magnifications"] = new JsonArray(mags.Select(m => (JsonNode?)m).ToArray()),
            ["count"] = cubes.Count,
            ["raw_bytes"] = cubes.Count * conf.CubeShape.Product * sizeof(ulong),
            ["file_bytes"] = StoreScan.FolderBytes(dir),
            ["entries"] = new JsonArray(cubes.Select(c => (JsonNode?)Path.GetRelativePath(conf.Root, c)).ToArray()),
        };
    }

    private static JsonObject Lock(string file)
    {
        var state = LockProbe.OfStore(file);
        var o = new JsonObject { ["state"] = state.Held ? "held" : "free", ["lock_file"] = state.LockPath, ["lock_file_exists"] = state.LockFileExists, ["text"] = state.ToString() };
        if (state.Pid is { } pid) o["pid"] = pid;
        if (state.Record is not null) o["record"] = state.Record;
        if (state.Kind is not null) o["kind"] = state.Kind;
        return o;
    }

    private static int? PickleProtocol(string file)
    {
        using var fs = File.OpenRead(file);
        Span<byte> b = stackalloc byte[2];
        int n = fs.ReadAtLeast(b, 2, throwOnEndOfStream: false);
        if (n == 0) return null;
        if (b[0] == 0x80 && n == 2) return b[1];
        return b[0] == '}' ? 1 : 0;
    }

    private static void WriteText(JsonObject doc, TextWriter o)
    {
        foreach (var (name, value) in doc)
        {
            if (name == "entries")
            {
                var arr = value!.AsArray();
                var shown = arr.Take(10).Select(x => (string)x!);
                o.WriteLine($"{"entries",-16} {arr.Count}: {string.Join(" ", shown)}{(arr.Count > 10 ? " ..." : "")}");
                continue;
            }
            string text = value switch
            {
                JsonValue v => v.ToString(),
                JsonObject obj when name == "lock" => (string)obj["text"]! + $" ({(string)obj["lock_file"]!})",
                null => "None",
                _ => value.ToJsonString(Compact),
            };
            o.WriteLine($"{name,-16} {text}");
        }
    }
}
