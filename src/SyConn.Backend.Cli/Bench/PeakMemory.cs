using System.Globalization;
using System.Text.Json.Nodes;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// Peak memory of reading a whole store: a child process (<c>bench _read KIND PATH</c>) that does nothing but open
/// the store read-only (pull) and decode every value with <c>GetMany</c>, keeping them all, then reports its peak
/// resident set (<c>VmHWM</c> of <c>/proc/self/status</c>).
/// </summary>
internal static class PeakMemory
{
    /// <summary>The store classes the child can read.</summary>
    public static readonly string[] Kinds = ["compressed", "attr", "mesh_lz4", "mesh_raw", "skeleton", "voxel", "npz"];

    /// <summary>
    /// Runs the child on <paramref name="path"/> and returns <c>peak_rss_bytes</c> with the bytes beside it; on
    /// Linux only (elsewhere, or when the child fails, an object with <c>error</c>).
    /// </summary>
    public static JsonObject Measure(string kind, string path, long rawBytes, TextWriter progress)
    {
        var o = new JsonObject { ["raw_bytes"] = rawBytes, ["file_bytes"] = BenchMath.FileSize(path), ["store"] = kind };
        if (!OperatingSystem.IsLinux()) { o["error"] = "peak memory needs /proc/self/status (Linux)"; return o; }
        progress.WriteLine($"bench: peak memory of reading {Path.GetFileName(path)} in a child process");
        using var p = SelfProcess.Start("bench", "_read", kind, path);
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(600_000)) { p.Kill(true); o["error"] = "child did not finish in 10 minutes"; return o; }
        if (p.ExitCode != 0) { o["error"] = $"child exited with {p.ExitCode}: {stderr.Result.Trim()}"; return o; }
        var child = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!.AsObject();
        foreach (var kv in child.ToList()) { child.Remove(kv.Key); o[kv.Key] = kv.Value; }
        long peak = (long)o["peak_rss_bytes"]!;
        if (rawBytes > 0) o["peak_over_raw"] = Math.Round((double)peak / rawBytes, 3);
        long start = (long)o["rss_at_start_bytes"]!;
        if (rawBytes > 0) o["peak_above_start_over_raw"] = Math.Round((double)(peak - start) / rawBytes, 3);
        return o;
    }

    /// <summary>The child: pull and read everything, then print one JSON line with the peak resident set.</summary>
    public static int Read(string kind, string path, TextWriter stdout)
    {
        long start = Status("VmRSS");
        long n;
        switch (kind)
        {
            case "compressed": n = ReadAll(new CompressedStorage(path), v => v.NBytes); break;
            case "attr": n = ReadAll(new AttributeDict(path), _ => 1); break;
            case "mesh_lz4": n = ReadAll(new MeshStorage(path, StoreOptions.Default, compress: true), v => v.Sum(a => a.NBytes)); break;
            case "mesh_raw": n = ReadAll(new MeshStorage(path, StoreOptions.Default, compress: false), v => v.Sum(a => a.NBytes)); break;
            case "skeleton": n = ReadAll(new SkeletonStorage(path), v => v.Nodes.NBytes + v.Diameters.NBytes + v.Edges.NBytes); break;
            case "voxel": n = ReadAll(new VoxelStorageL(path), v => v.Masks.Sum(m => m.NBytes)); break;
            case "npz": n = ReadAll(new VoxelStorageLazyLoading(path), v => v.NBytes); break;
            default: throw new UsageException($"unknown store kind '{kind}'; use one of {string.Join(", ", Kinds)}", "KIND");
        }
        long peak = Status("VmHWM");
        stdout.WriteLine(new JsonObject
        {
            ["peak_rss_bytes"] = peak,
            ["rss_at_start_bytes"] = start,
            ["values_bytes"] = n,
            ["read"] = "open read-only, then GetMany of all keys (every value kept)",
        }.ToJsonString());
        return 0;
    }

    private static long ReadAll<TValue>(Storage<TValue> store, Func<TValue, long> size) where TValue : notnull
    {
        using (store)
        {
            var values = store.GetMany(store.Keys.ToList());
            long n = 0;
            foreach (var v in values) n += size(v);
            GC.KeepAlive(values);
            return n;
        }
    }

    /// <summary>A <c>kB</c> field of <c>/proc/self/status</c>, in bytes.</summary>
    private static long Status(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var parts = line[(field.Length + 1)..].Trim().Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return long.Parse(parts[0], CultureInfo.InvariantCulture) * 1024;
        }
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }
}
