using System.CommandLine;
using System.Globalization;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _stress-worker DIR --worker W --role writer|reader --seconds S --seed N --log FILE</c>:
/// one process of the kill-stress run. DIR holds <see cref="StoreCount"/> stores of three classes
/// (<see cref="StorePath"/>). A writer does locked read-modify-writes of its own keys (<see cref="KeysPerWriter"/>
/// keys from <c>W * 100</c>): it reads the key's counter, stores counter + 1 and, once <c>Push</c> has returned,
/// appends <c>STORE KEY COUNTER</c> to its log (one write call, so a SIGKILL after it cannot lose the line). A reader
/// opens stores without a lock, decodes every value and checks each one is whole; it logs <c>read STORE ENTRIES</c>,
/// and a value that is not whole ends it with exit code 1. Exit code 0 at the deadline.
/// </summary>
public static class StressWorkerCommand
{
    /// <summary>Stores in a stress folder.</summary>
    public const int StoreCount = 50;

    /// <summary>Keys each writer owns.</summary>
    public const int KeysPerWriter = 5;

    /// <summary>The class of store <paramref name="i"/>: AttributeDict, CompressedStorage and MeshStorage in turn.</summary>
    public static StoreClass ClassOf(int i) => (i % 3) switch
    {
        0 => StoreClass.AttributeDict,
        1 => StoreClass.CompressedStorage,
        _ => StoreClass.MeshStorage,
    };

    /// <summary>The file of store <paramref name="i"/> under <paramref name="dir"/>, named as SyConn names them.</summary>
    public static string StorePath(string dir, int i) => Path.Combine(dir, i.ToString("00", CultureInfo.InvariantCulture), ClassOf(i) switch
    {
        StoreClass.AttributeDict => "attr_dict.pkl",
        StoreClass.CompressedStorage => "voxel_coords.pkl",
        _ => "mesh.pkl",
    });

    /// <summary>The counter stored for a key, checking that the value is whole (every part agrees with it).</summary>
    /// <exception cref="InvalidDataException">The value is not one a writer stored.</exception>
    public static long CounterOf(StorageBase store, StoreKey key)
    {
        long k = long.Parse(key.ToString(), CultureInfo.InvariantCulture);
        switch (store)
        {
            case AttributeDict ad:
            {
                var d = (PyDict)ad[key];
                long n = (long)d["n"];
                if ((long)d["check"] != Check(n, k) || ((PyList)d["history"]).Count != (int)(n % 7)) throw NotWhole(store, key);
                return n;
            }
            case CompressedStorage cs:
            {
                var a = cs[key].ToArray<long>();
                long n = a[0];
                if (a.Length != 3 + (int)(n % 50) || a[1] != Check(n, k) || a.Skip(2).Any(x => x != n)) throw NotWhole(store, key);
                return n;
            }
            case MeshStorage ms:
            {
                var parts = ms[key];
                var v = parts[1].ToArray<float>();
                long n = (long)v[0];
                if (parts[0].Size != 3 || v.Length != 3 * (1 + (int)(n % 9)) || v.Any(x => x != (float)n) || parts[2].Size != v.Length) throw NotWhole(store, key);
                return n;
            }
            default:
                throw new ArgumentException($"no stress value for {store.GetType().Name}");
        }
    }

    private static long Check(long n, long key) => n * 31 + key;

    private static InvalidDataException NotWhole(StorageBase store, StoreKey key) => new($"{store.Location}: key {key} holds a value no writer stored");

    private static void SetCounter(StorageBase store, StoreKey key, long n)
    {
        long k = long.Parse(key.ToString(), CultureInfo.InvariantCulture);
        switch (store)
        {
            case AttributeDict ad:
                var history = new PyList();
                for (int i = 0; i < n % 7; i++) history.Add((long)i);
                ad[key] = new PyDict { ["n"] = n, ["check"] = Check(n, k), ["history"] = history };
                break;
            case CompressedStorage cs:
                var a = new long[3 + (int)(n % 50)];
                Array.Fill(a, n);
                a[1] = Check(n, k);
                cs[key] = NdArray.Create(a);
                break;
            case MeshStorage ms:
                var v = new float[3 * (1 + (int)(n % 9))];
                Array.Fill(v, (float)n);
                ms[key] = [NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(v), NdArray.Create((float[])v.Clone())];
                break;
        }
    }

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var dir = new Argument<string>("dir") { Description = "The stress folder." };
        var worker = new Option<int>("--worker") { Description = "This worker's number (its keys start at 100 times it).", Required = true };
        var role = new Option<string>("--role") { Description = "writer or reader.", Required = true };
        var seconds = new Option<double>("--seconds") { Description = "Run until this many seconds after start.", DefaultValueFactory = _ => 10 };
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1 };
        var log = new Option<string>("--log") { Description = "Append acknowledged pushes (or reads) here.", Required = true };
        var cmd = new Command("_stress-worker", "Test helper: one writer or reader of the kill-stress run.") { dir, worker, role, seconds, seed, log };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            string folder = r.GetValue(dir)!;
            int w = r.GetValue(worker);
            var rng = new Random(r.GetValue(seed));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(r.GetValue(seconds));
            using var output = new FileStream(r.GetValue(log)!, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1);
            void Log(string line)
            {
                var bytes = System.Text.Encoding.ASCII.GetBytes(line + "\n");
                output.Write(bytes);
                output.Flush();
            }
            bool writer = r.GetValue(role) switch
            {
                "writer" => true,
                "reader" => false,
                var other => throw new UsageException($"--role is writer or reader, not '{other}'", "--role"),
            };
            var locked = StoreOptions.WritableLocked with { Timeout = 120 };
            while (DateTime.UtcNow < deadline)
            {
                int i = rng.Next(StoreCount);
                var path = StorePath(folder, i);
                if (writer)
                {
                    Directory.CreateDirectory(Path.GetDirectoryName(path)!);
                    StoreKey key = (long)(w * 100 + rng.Next(KeysPerWriter));
                    long n;
                    using (var s = StoreFactory.Open(ClassOf(i), path, locked))
                    {
                        n = s.ContainsKey(key) ? CounterOf(s, key) + 1 : 1;
                        SetCounter(s, key, n);
                        s.Push();
                    }
                    Log($"{i} {key} {n}");
                }
                else
                {
                    if (!File.Exists(path)) continue;
                    using var s = StoreFactory.Open(ClassOf(i), path, StoreOptions.Default with { DisableLocking = true });
                    int entries = 0;
                    foreach (var key in s.Keys.ToList())
                    {
                        CounterOf(s, key);
                        entries++;
                    }
                    Log($"read {i} {entries}");
                }
            }
            return 0;
        });
        return cmd;
    }
}
