using System.CommandLine;
using System.Text.Json;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary><c>get</c> and <c>keys</c>: read one entry, or list the keys, of any store.</summary>
public static class StoreCommands
{
    internal static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    internal static Option<string?> AsOption() => new("--as") { Description = "Store class (AttributeDict, CompressedStorage, MeshStorage, SkeletonStorage, VoxelStorageL, VoxelStorageClass, VoxelStorageDyn, VoxelStorageLazyLoading, BinarySearchStore); told from the content when omitted (file kind, entry layout, then SyConn file names; required for bt: stores)." };

    /// <summary>
    /// The class of the store at <paramref name="path"/>: <paramref name="asName"/> when given, else told from the
    /// file's content (<see cref="StoreDetection"/>: file kind, then the entries' layout, then SyConn's file names).
    /// </summary>
    internal static StoreClass ResolveClass(string path, string? asName) => Resolve(path, asName, null).Class!.Value;

    /// <summary>
    /// <see cref="ResolveClass(string, string?)"/> with the reason; with <paramref name="options"/> a <c>bt:</c> store
    /// is told from its entries too (without, it needs <paramref name="asName"/>).
    /// </summary>
    internal static DetectedStore Resolve(string path, string? asName, StoreOptions? options)
    {
        if (asName is not null)
        {
            var given = ParseClass(asName);
            return new DetectedStore(given, "given with --as", EntryStores.IsBackendAddress(path) ? StoreFileKind.Pickle : StoreDetection.KindOfClass(given));
        }
        DetectedStore found;
        if (EntryStores.IsBackendAddress(path))
        {
            if (options is null)
                throw new UsageException("give --as CLASS for bt: stores (there is no file name to tell the class from)", path);
            using var store = OpenEntryStore(path, EntryStoreKind.Pickle, options);
            LoadForReading(store, options);
            if (!store.Exists) throw new InputException("no such store", path);
            found = AtBackend(path, () => StoreDetection.Detect(store, null));
        }
        else
        {
            if (Directory.Exists(path)) throw new InputException("a folder, not a store file (see 'syconn-store ls')", path);
            // A store named without its extension, as SyConn names VoxelStorageDyn (.pkl) and VoxelStorageLazyLoading (.npz) stores.
            if (!File.Exists(path) && !path.EndsWith(".pkl", StringComparison.Ordinal) && File.Exists(path + ".pkl")
                && StoreDetection.Detect(path + ".pkl", options) is { Class: StoreClass.VoxelStorageDyn } dyn)
                return dyn;
            if (!File.Exists(path) && !path.EndsWith(".npz", StringComparison.Ordinal) && StoreDetection.FileKindOf(path + ".npz") == StoreFileKind.Zip)
                return new DetectedStore(StoreClass.VoxelStorageLazyLoading, $"'{Path.GetFileName(path)}.npz' is a zip archive (numpy .npz): VoxelStorageLazyLoading", StoreFileKind.Zip);
            RequireFile(path);
            found = StoreDetection.Detect(path, options);
        }
        return found.Class is null
            ? throw new UsageException($"cannot tell the store class: {found.Reason}; pass --as CLASS", path)
            : found;
    }

    internal static StoreKey ParseKey(string text)
    {
        try { return StoreKey.Parse(text); }
        catch (FormatException e) { throw new UsageException(e.Message, "KEY"); }
    }

    /// <summary>Parses an <c>--as</c> value.</summary>
    internal static StoreClass ParseClass(string asName)
    {
        try { return StoreFactory.ParseClass(asName); }
        catch (ArgumentException e) { throw new UsageException(e.Message, "--as"); }
    }

    /// <summary>Read-only store options (as upstream) with the database of <c>bt:</c> addresses from <c>--bt</c>.</summary>
    internal static StoreOptions ReadOptions(ParseResult r) => StoreOptions.Default with { ConnectionString = r.GetValue(Cli.Bt) };

    /// <summary>
    /// Opens a dict store read-only through the library's factory (BinarySearchStore has its own commands). A file must
    /// exist and be of the kind the class lives in (a pickle, or an npz for VoxelStorageLazyLoading), else the error
    /// names the file and what it is; a VoxelStorageLazyLoading file that exists is opened under its own name even
    /// when it does not end in <c>.npz</c>.
    /// </summary>
    internal static StorageBase OpenStore(string address, StoreClass cls, StoreOptions options, StoreParameters? parameters)
    {
        if (cls == StoreClass.BinarySearchStore) throw new UsageException("use 'syconn-store bss' for a BinarySearchStore", address);
        if (EntryStores.IsBackendAddress(address)) return AtBackend(address, () => StoreFactory.Open(cls, address, options, parameters));
        string file = cls switch
        {
            StoreClass.VoxelStorageDyn => VoxelStorageDyn.PklPath(address),
            StoreClass.VoxelStorageLazyLoading when !File.Exists(address) && !address.EndsWith(".npz", StringComparison.Ordinal) => address + ".npz",
            _ => address,
        };
        if (Directory.Exists(file)) throw new InputException("a folder, not a store file", file);
        RequireFile(file);
        StoreDetection.RequireKind(file, cls);
        if (cls == StoreClass.VoxelStorageLazyLoading && !file.EndsWith(".npz", StringComparison.Ordinal))
            return new VoxelStorageLazyLoading(EntryStores.Npz(file), options);
        return StoreFactory.Open(cls, file, options, parameters);
    }

    /// <summary>
    /// Decodes the first object entry of <paramref name="store"/>, so that a store opened with the wrong class is an
    /// error (naming the file, the key and what the class expects) even where nothing else is decoded (<c>keys</c>).
    /// </summary>
    /// <exception cref="InvalidDataException">The entry is not what the class stores.</exception>
    internal static void CheckFirstEntry(StorageBase store)
    {
        foreach (var k in store.Keys)
        {
            store.GetAsPython(k);
            return;
        }
    }

    /// <summary>
    /// Runs <paramref name="open"/>, which opens (and maybe reads) the store at <paramref name="address"/>. For a
    /// <c>bt:</c> address, what the backend refuses (no backend, no database, a bad connection string) becomes
    /// an error that names the address; for a path, exceptions pass unchanged.
    /// </summary>
    internal static T AtBackend<T>(string address, Func<T> open)
    {
        if (!EntryStores.IsBackendAddress(address)) return open();
        try
        {
            return open();
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or NotSupportedException or NotImplementedException)
        {
            throw new InputException(e.Message, address, e);
        }
    }

    /// <summary>Opens the raw entry store at <paramref name="address"/> (nothing is read yet).</summary>
    internal static IEntryStore OpenEntryStore(string address, EntryStoreKind kind, StoreOptions options) =>
        AtBackend(address, () => EntryStores.Open(address, kind, options));

    /// <summary>
    /// Loads <paramref name="store"/> for reading as a read-only typed store would: under the store's lock when
    /// its backend locks by default and cannot read a consistent snapshot without it, else unlocked.
    /// <paramref name="alsoUnderLock"/> (side stores, guarded by the same lock) runs right after, under the same lock.
    /// </summary>
    internal static void LoadForReading(IEntryStore store, StoreOptions options, Action? alsoUnderLock = null)
    {
        bool locking = !(options.DisableLocking ?? !store.LocksByDefault) && !store.SnapshotLoads;
        AtBackend(store.Location, () =>
        {
            using (locking ? store.AcquireLock(options.LockOptions) : null)
            {
                store.Load(options);
                alsoUnderLock?.Invoke();
            }
            return 0;
        });
    }

    internal static void RequireFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such file", path);
    }

    /// <summary>Creates <c>get PATH KEY</c>.</summary>
    public static Command Get()
    {
        var path = new Argument<string>("path") { Description = "The store: a file, or bt:IDENTIFIER (with --as)." };
        var key = new Argument<string>("key") { Description = "A decimal integer, str:NAME or tuple:A,B (negative numbers after --)." };
        var asOpt = AsOption();
        var json = new Option<bool>("--json") { Description = "Print typed JSON (the MANIFEST's getter form: large arrays as a checksum and their ends)." };
        var full = new Option<bool>("--full") { Description = "With --json: every array's values and every string in full." };
        var output = new Option<string?>("--output", "-o") { Description = "Write the value to FILE instead: an array as .npy, anything as full typed JSON (.json).", HelpName = "FILE" };
        var colarr = new Option<bool>("--load-colarr") { Description = "MeshStorage: also return the colour/label array." };
        var cmd = new Command("get", "Print what the store's getter returns for KEY.\n\nExamples:\n  syconn-store get sv_0/so_storage/0/0/attr_dict.pkl 5\n  syconn-store get mesh.pkl 5 --json --full\n  syconn-store get voxel.pkl 5 -o boxes.npy") { path, key, asOpt, json, full, output, colarr };
        cmd.SetAction((ParseResult r) =>
        {
            var p = r.GetValue(path)!;
            var cls = ResolveClass(p, r.GetValue(asOpt));
            var k = ParseKey(r.GetValue(key)!);
            bool fullJson = r.GetValue(full);
            if (fullJson && !r.GetValue(json) && r.GetValue(output) is null) throw new UsageException("--full goes with --json (or -o FILE.json)", "--full");
            object value;
            using (var s = OpenStore(p, cls, ReadOptions(r), new StoreParameters { LoadColArr = r.GetValue(colarr) }))
                value = s.GetAsPython(k);
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(output) is { } file)
            {
                WriteValue(value, file, k, p);
                r.InvocationConfiguration.Error.WriteLine($"get: wrote {file}");
            }
            else if (r.GetValue(json)) o.WriteLine((fullJson ? FullJson.Of(value) : TypedJson.ToJson(value)).ToJsonString(Indented));
            else o.WriteLine(cls switch { StoreClass.MeshStorage => Describe.Mesh(value), StoreClass.SkeletonStorage => Describe.Skeleton(value), _ => Describe.Value(value) });
            return 0;
        });
        return cmd;
    }

    /// <summary><c>get -o FILE</c>: an array as <c>.npy</c>, any value as full typed JSON when FILE ends in <c>.json</c>.</summary>
    private static void WriteValue(object value, string file, StoreKey key, string store)
    {
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            File.WriteAllText(file, FullJson.Of(value).ToJsonString(Indented) + "\n");
            return;
        }
        if (value is not Arrays.NdArray a)
            throw new InputException($"key {key} holds a {PythonTypeName(value)}, not an array; -o FILE.npy writes arrays, -o FILE.json any value", store);
        if (a.Objects is not null)
            throw new InputException($"key {key} holds an object array, which .npy cannot hold without pickles; use -o FILE.json", store);
        NpyFile.Write(file, a);
    }

    private static string PythonTypeName(object? v) => v switch
    {
        PyDefaultDict => "defaultdict",
        PyDict => "dict",
        PyList => "list",
        PyTuple => "tuple",
        PySet s => s.IsFrozen ? "frozenset" : "set",
        string => "str",
        long or System.Numerics.BigInteger => "int",
        double => "float",
        bool => "bool",
        null or PyNone => "None",
        NpScalar sc => $"numpy scalar ({sc.DType.Str})",
        _ => v.GetType().Name,
    };

    /// <summary>Creates <c>keys PATH</c>.</summary>
    public static Command Keys()
    {
        var path = new Argument<string>("path") { Description = "The store: a file, or bt:IDENTIFIER (with --as)." };
        var asOpt = AsOption();
        var json = new Option<bool>("--json") { Description = "Print the keys as a typed JSON list." };
        var cmd = new Command("keys", "List the keys of a store, one per line (decimal ints, str:NAME, tuple:A,B).") { path, asOpt, json };
        cmd.SetAction((ParseResult r) =>
        {
            var p = r.GetValue(path)!;
            var cls = ResolveClass(p, r.GetValue(asOpt));
            List<StoreKey> keys;
            using (var s = OpenStore(p, cls, ReadOptions(r), null))
            {
                CheckFirstEntry(s);
                keys = s.Keys.ToList();
            }
            var o = r.InvocationConfiguration.Output;
            if (r.GetValue(json)) o.WriteLine(TypedJson.ToJson(new PyList(keys.Select(k => k.PythonValue))).ToJsonString(Indented));
            else foreach (var k in keys) o.WriteLine(k.ToString());
            return 0;
        });
        return cmd;
    }
}
