using System.Diagnostics;
using System.Numerics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Stores;

/// <summary>
/// Structure-aware fuzzing of the typed stores' entry decoding: valid raw entries of every class (from the
/// fixtures) are mutated as trees (wrong types, wrong shapes, wrong dtypes, missing or extra fields, huge declared
/// sizes, entries of another class), written as a valid pickle store and read through each class's getter. Only a
/// value, an <see cref="InvalidDataException"/> naming the file and the key, or a <see cref="KeyNotFoundException"/>
/// may come out. Budget: this harness's share of SYCONN_FUZZ_SECONDS (<see cref="FuzzBudget"/>).
/// </summary>
public class TypedEntryFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly StoreClass[] Classes =
    [
        StoreClass.AttributeDict, StoreClass.CompressedStorage, StoreClass.MeshStorage, StoreClass.SkeletonStorage,
        StoreClass.VoxelStorageL, StoreClass.VoxelStorageClass, StoreClass.VoxelStorageDyn, StoreClass.VoxelStorageLazyLoading,
    ];

    private static readonly string[] Sources =
    [
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl",
        "mesh_storage_legacy.pkl", "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_dyn.pkl", "attrdict_p5.pkl",
    ];

    private const int EntriesPerStore = 24;

    [SkippableFact]
    public void Hostile_entries_decode_or_fail_with_InvalidDataException_naming_file_and_key()
    {
        var seeds = Sources.SelectMany(f => ((PyDict)RawFile.Read(Shared.PyFixture(f))).Select(kv => kv.Value)).ToList();
        var budget = FuzzBudget.For("typed-entries");
        using var dir = new TempDir();
        var rng = new Random(20261201);
        var clock = Stopwatch.StartNew();
        long entries = 0, values = 0, refused = 0, missing = 0, rounds = 0;
        while (clock.Elapsed < budget || rounds < Classes.Length)
        {
            var cls = Classes[rounds % Classes.Length];
            string path = dir.File($"fuzz_{rounds}.pkl");
            var dict = new PyDict();
            if (cls == StoreClass.VoxelStorageDyn && rng.Next(4) != 0)
            {
                // Valid helper keys most of the time, so that the object entries are reached; hostile ones otherwise.
                dict["meta"] = rng.Next(8) == 0 ? Hostile(rng) : new PyDict { ["voxeldata_path"] = PyNone.Value };
                dict["size"] = new PyDefaultDict("int");
                dict["rep_coord"] = rng.Next(8) == 0 ? Hostile(rng) : new PyDict();
                dict["voxel_cache"] = new PyDict();
            }
            for (int i = 0; i < EntriesPerStore; i++)
                dict[(long)i] = Mutate(PyCopy.Deep(seeds[rng.Next(seeds.Count)]), rng);
            File.WriteAllBytes(path, P.Dump(dict));
            rounds++;

            StorageBase store;
            try
            {
                store = cls == StoreClass.VoxelStorageLazyLoading
                    ? new VoxelStorageLazyLoading(new AsArrayStore(SyConn.Backend.Storage.EntryStores.Pickle(path)), StoreOptions.Default)
                    : StoreFactory.Open(cls, path, StoreOptions.Default, new StoreParameters { LoadColArr = rng.Next(2) == 0 });
            }
            catch (InvalidDataException e)
            {
                Assert.True(e.Message.Contains(path, StringComparison.Ordinal), $"{cls}: open error does not name the file: {e.Message}");
                refused++;
                continue;
            }
            catch (Exception e)
            {
                Fail(cls, path, null, e);
                return;
            }
            using (store)
            {
                var keys = Enumerable.Range(-1, EntriesPerStore + 2).Select(i => (StoreKey)i).ToList();
                foreach (var k in keys)
                {
                    entries++;
                    try
                    {
                        var v = store.GetAsPython(k);
                        Assert.NotNull(v);
                        values++;
                    }
                    catch (KeyNotFoundException)
                    {
                        missing++;
                    }
                    catch (InvalidDataException e)
                    {
                        refused++;
                        Assert.True(e.Message.Contains(path, StringComparison.Ordinal) && e.Message.Contains($"key {k}", StringComparison.Ordinal),
                            $"{cls}: the error does not name the file and key {k}: {e.Message}");
                    }
                    catch (Exception e)
                    {
                        Fail(cls, path, k, e);
                        return;
                    }
                }
            }
            File.Delete(path);
        }
        output.WriteLine($"{rounds} stores, {entries} getter calls: {values} values, {refused} refused, {missing} missing, in {clock.Elapsed.TotalSeconds:0.0} s");
        Assert.True(values > 0, "no mutated entry decoded at all");
        Assert.True(refused > 0, "no mutated entry was refused");
    }

    private static void Fail(StoreClass cls, string path, StoreKey? key, Exception e)
    {
        var keep = Path.Combine(Path.GetTempPath(), "typed-entry-fuzz-crash.pkl");
        File.Copy(path, keep, overwrite: true);
        Assert.Fail($"{cls}, key {key?.ToString() ?? "(open)"}: raised {e.GetType().Name} (store saved to {keep}): {e}");
    }

    /// <summary>One to three tree mutations of <paramref name="entry"/> (which is a private copy).</summary>
    private static object Mutate(object entry, Random rng)
    {
        if (rng.Next(10) == 0) return entry; // some entries stay valid (possibly of another class)
        for (int n = 1 + rng.Next(3); n > 0; n--)
        {
            var slots = new List<(object Parent, object Slot)>();
            Collect(entry, slots, 0);
            if (slots.Count == 0 || rng.Next(12) == 0) return Hostile(rng);
            var (parent, slot) = slots[rng.Next(slots.Count)];
            switch (parent)
            {
                case PyDict d:
                    switch (rng.Next(6))
                    {
                        case 0: d.Remove(slot); break;
                        case 1: d[slot] = Hostile(rng); break;
                        case 2 when slot is "sh": d[slot] = HostileShape(rng); break;
                        case 3 when slot is "dt": d[slot] = HostileDType(rng); break;
                        case 4 when slot is "arr": d[slot] = new PyList { HostileBlock(rng) }; break;
                        default: d[slot] = Hostile(rng); break;
                    }
                    break;
                case PyList l:
                    int i = (int)slot;
                    switch (rng.Next(5))
                    {
                        case 0: l.RemoveAt(i); break;
                        case 1: l.Add(l[i]); break;
                        case 2: l[i] = HostileBlock(rng); break;
                        default: l[i] = Hostile(rng); break;
                    }
                    break;
            }
        }
        return entry;
    }

    /// <summary>Every mutable slot (dict field, list item) of a tree, down to a small depth.</summary>
    private static void Collect(object node, List<(object, object)> slots, int depth)
    {
        if (depth > 6) return;
        switch (node)
        {
            case PyDict d:
                foreach (var kv in d.ToList())
                {
                    slots.Add((d, kv.Key));
                    Collect(kv.Value, slots, depth + 1);
                }
                break;
            case PyList l:
                for (int i = 0; i < l.Count; i++)
                {
                    slots.Add((l, i));
                    Collect(l[i], slots, depth + 1);
                }
                break;
        }
    }

    private static object Hostile(Random rng) => rng.Next(17) switch
    {
        0 => PyNone.Value,
        1 => (long)rng.Next(-3, 4),
        2 => BigInteger.Pow(2, 70),
        3 => "",
        4 => "<i4",
        5 => PyBytes.Empty,
        6 => new PyBytes(RandomBytes(rng, rng.Next(1, 40))),
        7 => new PyList(),
        8 => new PyDict(),
        9 => new PyTuple(),
        10 => NdArray.Create(new long[] { 1, 2, 3 }),
        11 => NdArray.Zeros(DType.Float64, 0, 3),
        12 => HostileDType(rng),
        13 => new PyList { new PyList { PyBytes.Empty } },
        14 => 1.5,
        15 => new PyDict { ["arr"] = new PyList { HostileBlock(rng) }, ["sh"] = HostileShape(rng), ["dt"] = HostileDType(rng) },
        _ => new PyList { HostileBlock(rng), HostileBlock(rng), HostileBlock(rng), new PyDict() },
    };

    /// <summary>Shapes with huge, negative, zero or several unknown dimensions, or of the wrong container type.</summary>
    private static object HostileShape(Random rng) => rng.Next(9) switch
    {
        0 => new PyTuple(-1L, 1L << 40, 1L << 40),
        1 => new PyTuple(-1L, -1L),
        2 => new PyTuple(-1L, 0L),
        3 => new PyTuple(-5L),
        4 => new PyTuple(),
        5 => new PyList { -1L, 3L },
        6 => new PyTuple(-1L, BigInteger.Pow(2, 80)),
        7 => new PyTuple(long.MaxValue, long.MaxValue, 2L),
        _ => "(-1, 3)",
    };

    /// <summary>Dtypes that cannot hold raw bytes, odd sizes, big-endian, or no dtype at all.</summary>
    private static object HostileDType(Random rng) => rng.Next(10) switch
    {
        0 => "|O",
        1 => "<U0",
        2 => "|V0",
        3 => "|S3",
        4 => ">c16",
        5 => "garbage",
        6 => "<f2",
        7 => new DType('|', 'O', 8),
        8 => 7L,
        _ => ">i8",
    };

    /// <summary>LZ4 blocks that are empty, short, declare huge sizes, or are random.</summary>
    private static object HostileBlock(Random rng)
    {
        switch (rng.Next(6))
        {
            case 0: return PyBytes.Empty;
            case 1: return new PyBytes(new byte[] { 0xff, 0xff, 0xff, 0x7f, 0x00 });
            case 2: return new PyBytes(new byte[] { 0x10, 0x00, 0x00, 0x00 });
            case 3:
            {
                // A block that declares 255 times its length (the most LZ4 can expand) but holds garbage.
                var b = RandomBytes(rng, 64);
                BitConverter.TryWriteBytes(b.AsSpan(0, 4), 60 * 255);
                return new PyBytes(b);
            }
            case 4: return "x";
            default: return new PyBytes(RandomBytes(rng, rng.Next(5, 50)));
        }
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    /// <summary>
    /// A pickle file's entries presented as an array store, so that VoxelStorageLazyLoading's getter sees hostile trees
    /// (an npz can only hold arrays; its reader is fuzzed on its own).
    /// </summary>
    private sealed class AsArrayStore(IEntryStore inner) : IEntryStore
    {
        public string Location => inner.Location;
        public EntryStoreKind Kind => EntryStoreKind.Npz;
        public string? Folder => inner.Folder;
        public bool StableReads => inner.StableReads;
        public bool Exists => inner.Exists;
        public void Load(StoreOptions options) => inner.Load(options);
        public int Count => inner.Count;
        public IEnumerable<object> Keys => inner.Keys;
        public bool ContainsKey(StoreKey key) => inner.ContainsKey(key);
        public bool TryRead(StoreKey key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out object entry) => inner.TryRead(key, out entry);
        public IEnumerable<KeyValuePair<object, object>> ReadAll() => inner.ReadAll();
        public void WriteChanges(IReadOnlyCollection<object> removed, IReadOnlyList<KeyValuePair<object, object>> changed, StoreOptions options) => throw new NotSupportedException();
        public void ReplaceAll(IEnumerable<KeyValuePair<object, object>> entries, StoreOptions options) => throw new NotSupportedException();
        public IStoreLock AcquireLock(LockOptions options, CancellationToken ct = default) => inner.AcquireLock(options, ct);
        public Task<IStoreLock> AcquireLockAsync(LockOptions options, CancellationToken ct = default) => inner.AcquireLockAsync(options, ct);
        public IEntryStore OpenSideStore(string name) => inner.OpenSideStore(name);
        public void EnsureWritable() => throw new NotSupportedException();
        public string MoveAside() => throw new NotSupportedException();
        public void Dispose() => inner.Dispose();
    }
}
