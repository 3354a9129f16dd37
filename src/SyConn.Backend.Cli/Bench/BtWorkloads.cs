using System.Diagnostics;
using System.Text.Json.Nodes;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using static SyConn.Backend.Cli.Bench.BenchMath;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// W1 and W2 on the BT backend (<c>bench --backend bt</c>): the data of <see cref="Workloads"/> and the phases of
/// the file runs, on <c>bt:bench/w1</c> and <c>bt:bench/w2</c>, plus what only a database has: <c>get_one</c> (one
/// key read on demand) and <c>copy_floor</c> (PostgreSQL's own binary COPY of the rows the push wrote).
/// </summary>
/// <remarks>
/// Writable stores open with the backend's default locking (on for bt), so each push holds the store's advisory
/// lock from open to push, as a SyConn job does. Only the default, durable phases are run: the server's
/// durability is a server setting, not a per-push choice, so there are no <c>_nosync</c> variants.
/// </remarks>
internal static class BtWorkloads
{
    private const int GetOneCalls = 1000;
    private const int GetOneTargetBytes = 17_000;

    public static JsonObject W1(double scale, int reps, string outDir, TextWriter progress, BtServer server)
    {
        var data = Workloads.W1Data(scale);
        const string id = "bench/w1", indexerId = "bench/w1_indexer";
        string dir = Path.Combine(outDir, "w1-bt");
        Directory.CreateDirectory(dir);
        var writable = server.Options(StoreOptions.Writable);
        var readOnly = server.Options(StoreOptions.Default);
        using var floor = new CopyFloor(server, id, Path.Combine(dir, "copy_floor.bin"));
        var t = new PhaseTimings();
        int getOneBytes = 0;
        Repeat(reps, rec =>
        {
            server.DeleteStore(id);
            server.DeleteStore(indexerId);
            server.Settle("syconn.entries");
            using (var cs = CompressedStorage.Open("bt:" + id, writable))
            {
                // Bulk assignment through Update encodes on all cores; the indexer encodes on the caller's thread.
                double set = Time(() => cs.Update(data.Select(d => new KeyValuePair<StoreKey, Arrays.NdArray>(d.Key, d.Value))));
                double push = Time(() => cs.Push());
                // After the push: the garbage of a second store's set (84 MB of encoded arrays) collected during the
                // push made it 0.1-0.2 s slower, time that is not the push's.
                using (var one = CompressedStorage.Open("bt:" + indexerId, writable))
                    rec.Add("set_all_indexer", Time(() => { foreach (var (k, v) in data) one[k] = v; }));
                rec.Add("set_all", set);
                rec.Add("push", push);
                rec.Add("set_push", set + push);
            }
            floor.Run(rec);
            Quiesce();
            CompressedStorage? r = null;
            rec.Add("pull", Time(() => r = CompressedStorage.Open("bt:" + id, readOnly)));
            long n = 0;
            rec.Add("get_all", Time(() => { foreach (var (k, _) in data) n += r![k].Size; }));
            var keys = data.Select(d => (StoreKey)d.Key).ToArray();
            rec.Add("get_all_parallel", Time(() => n += r!.GetMany(keys).Length));
            r!.Dispose();

            // One key on demand: a lazy store reads each get from the server (one round trip), decoding included.
            var (key, bytes) = server.KeyNearSize(id, GetOneTargetBytes);
            getOneBytes = bytes;
            using var lazy = CompressedStorage.Open("bt:" + id, readOnly with { LazyLoad = true });
            var calls = new double[GetOneCalls];
            for (int i = 0; i < calls.Length; i++)
            {
                long start = Stopwatch.GetTimestamp();
                n += lazy[key].Size;
                calls[i] = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
            rec.Add("get_one", Median(calls));
        }, t, progress, "w1 (bt)");
        long raw = data.Sum(d => d.Value.NBytes);
        long entryBytes = server.EntryBytes(id);
        var floors = new Floors(3).Lz4(data.Select(d => (ReadOnlyMemory<byte>)d.Value.Data).ToList()).FloorsJson();
        return BtLine("w1", scale, reps,
            new JsonObject
            {
                ["n_keys"] = data.Count,
                ["n_range"] = new JsonArray(100, 5000),
                ["store"] = "bt:" + id,
                ["get_one_calls"] = GetOneCalls,
                ["get_one_entry_bytes"] = getOneBytes,
            },
            t, new JsonObject { ["raw_bytes"] = raw, ["entry_bytes"] = entryBytes }, server,
            Derived(t, entryBytes, "push", "pull", "get_one"), new JsonObject { ["floors"] = floors });
    }

    public static JsonObject W2(double scale, int reps, string outDir, TextWriter progress, BtServer server)
    {
        var data = Workloads.W2Data(scale);
        const string id = "bench/w2";
        string dir = Path.Combine(outDir, "w2-bt");
        Directory.CreateDirectory(dir);
        var writable = server.Options(StoreOptions.Writable);
        var readOnly = server.Options(StoreOptions.Default);
        using var floor = new CopyFloor(server, id, Path.Combine(dir, "copy_floor.bin"));
        var t = new PhaseTimings();
        Repeat(reps, rec =>
        {
            server.DeleteStore(id);
            server.Settle("syconn.entries");
            using (var ad = AttributeDict.Open("bt:" + id, writable))
            {
                double set = Time(() => { foreach (var (k, v) in data) ad[k] = v; });
                double push = Time(() => ad.Push());
                rec.Add("set_all", set);
                rec.Add("push", push);
                rec.Add("build_push", set + push);
            }
            floor.Run(rec);
            Quiesce();
            AttributeDict? r = null;
            rec.Add("pull", Time(() => r = AttributeDict.Open("bt:" + id, readOnly)));
            long n = 0;
            rec.Add("read_all", Time(() => { foreach (var (k, _) in data) n += ((PyDict)r![k]).Count; }));
            r!.Dispose();
        }, t, progress, "w2 (bt)");
        long entryBytes = server.EntryBytes(id);
        return BtLine("w2", scale, reps, new JsonObject { ["n_keys"] = data.Count, ["store"] = "bt:" + id }, t,
            new JsonObject { ["entry_bytes"] = entryBytes }, server, Derived(t, entryBytes, "push", "pull", null));
    }

    /// <summary>Rates read off the medians: pull MB/s of entry bytes, push over the COPY floor, get_one in ms.</summary>
    private static JsonObject Derived(PhaseTimings t, long entryBytes, string push, string pull, string? getOne)
    {
        var d = new JsonObject { ["pull_mb_s"] = Math.Round(entryBytes / 1e6 / t.Median(pull), 1) };
        if (t.Has("copy_floor"))
        {
            d["copy_floor_mb_s"] = Math.Round(entryBytes / 1e6 / t.Median("copy_floor"), 1);
            d["push_over_copy_floor"] = Math.Round(t.Median(push) / t.Median("copy_floor"), 3);
            d["copy_out_floor_mb_s"] = Math.Round(entryBytes / 1e6 / t.Median("copy_out_floor"), 1);
            d["pull_over_copy_out_floor"] = Math.Round(t.Median(pull) / t.Median("copy_out_floor"), 3);
        }
        if (getOne is not null) d["get_one_ms"] = Math.Round(t.Median(getOne) * 1e3, 4);
        return d;
    }

    /// <summary>The JSON line of a BT run: the file runs' shape with <c>"backend": "bt"</c> and the server in <c>env</c>.</summary>
    public static JsonObject BtLine(string workload, double scale, int reps, JsonObject parameters, PhaseTimings timings, JsonObject sizes,
        BtServer server, JsonObject? derived = null, JsonObject? extra = null)
    {
        extra ??= new JsonObject();
        if (derived is not null) extra["derived"] = derived;
        var line = Line(workload, scale, reps, parameters, timings, sizes, extra, backend: "bt");
        line["env"]!["bt_server"] = server.Describe();
        return line;
    }
}

/// <summary>
/// The push floor of a BT workload: the rows the push wrote, exported once with psql's binary <c>\copy ... TO</c>,
/// then loaded by <c>psql -c "\copy ... FROM file (FORMAT binary)"</c> into an emptied scratch table of the same
/// shape (<c>LIKE syconn.entries INCLUDING ALL</c>: primary key and storage settings), timed as a whole.
/// </summary>
internal sealed class CopyFloor(BtServer server, string identifier, string file) : IDisposable
{
    private const string Schema = "syconn_bench";
    private const string Table = Schema + ".copy_floor";
    private bool _exported;

    /// <summary>
/// Records <c>copy_floor</c>, <c>copy_floor_psql_start</c> (psql's start and connection alone) and
/// <c>copy_out_floor</c> (psql exporting the same rows to /dev/null); nothing without psql.
/// </summary>
    public void Run(PhaseTimings rec)
    {
        if (server.Psql is null) return;
        string quoted = "'" + file.Replace("'", "''", StringComparison.Ordinal) + "'";
        if (!_exported)
        {
            server.RunPsql($"\\copy (SELECT identifier, key, seq, pkey, entry FROM syconn.entries WHERE identifier = '{identifier.Replace("'", "''", StringComparison.Ordinal)}') TO {quoted} (FORMAT binary)");
            server.Execute($"CREATE SCHEMA IF NOT EXISTS {Schema}");
            server.Execute($"DROP TABLE IF EXISTS {Table}");
            server.Execute($"CREATE TABLE {Table} (LIKE syconn.entries INCLUDING ALL)");
            _exported = true;
        }
        server.Execute($"TRUNCATE {Table}");
        server.Settle();
        rec.Add("copy_floor", server.RunPsql($"\\copy {Table} FROM {quoted} (FORMAT binary)"));
        rec.Add("copy_floor_psql_start", server.RunPsql("SELECT 1"));
        // The way back: the same rows exported by psql to /dev/null, what PostgreSQL itself sends in a pull.
        rec.Add("copy_out_floor", server.RunPsql($"\\copy (SELECT identifier, key, seq, pkey, entry FROM {Table}) TO '/dev/null' (FORMAT binary)"));
    }

    public void Dispose()
    {
        if (!_exported) return;
        try
        {
            server.Execute($"DROP TABLE IF EXISTS {Table}");
            server.Execute($"DROP SCHEMA IF EXISTS {Schema}");
        }
        catch (Exception e) when (e is IOException or Npgsql.NpgsqlException)
        {
            // the server is gone (the run failed); nothing to clean up there
        }
        File.Delete(file);
    }
}
