using System.Runtime.InteropServices;
using System.Text.Json.Nodes;
using SyConn.Backend.Formats.Lz4;
using static SyConn.Backend.Cli.Bench.BenchMath;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// The physical floors of a workload, measured in the same run on the same bytes: memcpy and LZ4 encode/decode of
/// the arrays a store compresses (one block per array, as the stores write them), and writing and reading the
/// store file the workload wrote. <see cref="Map"/> names, for every phase, the floor (or sum of floors) it is
/// read against; <see cref="ToJson"/> gives the floors, that map and each phase's ratio to its floor.
/// </summary>
internal sealed class Floors
{
    private readonly PhaseTimings _t = new();
    private readonly JsonObject _bytes = new();
    private readonly Dictionary<string, string[]?> _map = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <summary>Timed passes per floor, after one untimed warm-up pass (as the workloads' phases).</summary>
    public int Reps { get; }

    public Floors(int reps) => Reps = Math.Max(1, reps);

    /// <summary>
    /// memcpy of the arrays into one reused buffer; LZ4 encode and decode of each array on one core and on both
    /// (decoding into a fresh array per block, as a getter does). Names get <paramref name="prefix"/>.
    /// </summary>
    public Floors Lz4(IReadOnlyList<ReadOnlyMemory<byte>> chunks, string prefix = "", bool lz4 = true)
    {
        long total = chunks.Sum(c => (long)c.Length);
        var blocks = new byte[chunks.Count][];
        int max = chunks.Count == 0 ? 0 : chunks.Max(c => c.Length);
        var dst = new byte[max];
        dst.AsSpan().Fill(1);
        for (int rep = -1; rep < Reps; rep++)
        {
            var t = rep < 0 ? new PhaseTimings() : _t;
            Quiesce();
            t.Add(prefix + "memcpy", Time(() => { foreach (var c in chunks) c.Span.CopyTo(dst); }));
            if (!lz4) continue;
            t.Add(prefix + "lz4_encode_1core", Time(() => { for (int i = 0; i < chunks.Count; i++) blocks[i] = PyLz4.Compress(chunks[i].Span); }));
            t.Add(prefix + "lz4_encode_2core", Time(() => Parallel.For(0, chunks.Count, i => blocks[i] = PyLz4.Compress(chunks[i].Span))));
            Quiesce();
            t.Add(prefix + "lz4_decode_1core", Time(() => { foreach (var b in blocks) PyLz4.Decompress(b); }));
            Quiesce();
            t.Add(prefix + "lz4_decode_2core", Time(() => Parallel.For(0, blocks.Length, i => PyLz4.Decompress(blocks[i]))));
        }
        _bytes[prefix + "raw_bytes"] = total;
        if (lz4) _bytes[prefix + "lz4_bytes"] = blocks.Sum(b => (long)b.Length);
        return this;
    }

    /// <summary>
    /// Writing the bytes of <paramref name="storeFile"/> to a new file next to it (1 MiB writes; without fsync, and
    /// with fsync of the file and its folder as a durable push does), and reading the store file into a fresh
    /// buffer (as a pull does) and into a reused one (the page-cache copy alone). Names get <paramref name="prefix"/>.
    /// </summary>
    public Floors File(string storeFile, string prefix = "")
    {
        var bytes = System.IO.File.ReadAllBytes(storeFile);
        string dir = Path.GetDirectoryName(Path.GetFullPath(storeFile))!;
        string scratch = Path.Combine(dir, ".floor-" + Path.GetFileName(storeFile) + ".bin");
        var reused = new byte[bytes.Length];
        reused.AsSpan().Fill(1);
        try
        {
            for (int rep = -1; rep < Reps; rep++)
            {
                var t = rep < 0 ? new PhaseTimings() : _t;
                Quiesce();
                if (System.IO.File.Exists(scratch)) System.IO.File.Delete(scratch);
                t.Add(prefix + "write_nosync", Time(() => Write(scratch, bytes, false)));
                System.IO.File.Delete(scratch);
                t.Add(prefix + "write_fsync", Time(() => Write(scratch, bytes, true)));
                System.IO.File.Delete(scratch);
                Quiesce();
                t.Add(prefix + "read_fresh", Time(() => ReadInto(storeFile, null)));
                t.Add(prefix + "read_reused", Time(() => ReadInto(storeFile, reused)));
            }
        }
        finally
        {
            if (System.IO.File.Exists(scratch)) System.IO.File.Delete(scratch);
        }
        _bytes[prefix + "file_bytes"] = bytes.LongLength;
        return this;
    }

    /// <summary>
    /// Maps <paramref name="phase"/> to the sum of <paramref name="floors"/> (each a floor's name, or <c>N*name</c> for
    /// one paid N times); none means it has no physical floor.
    /// </summary>
    public Floors Map(string phase, params string[] floors)
    {
        if (!_map.ContainsKey(phase)) _order.Add(phase);
        _map[phase] = floors.Length == 0 ? null : floors;
        return this;
    }

    /// <summary>The floors alone: bytes and timings.</summary>
    public JsonObject FloorsJson() => new() { ["bytes"] = _bytes.DeepClone(), ["timings"] = _t.ToJson() };

    /// <summary>The floors (<c>floors</c>), the map (<c>floor_map</c>) and the ratios (<c>vs_floor</c>) for a JSON line.</summary>
    /// <remarks>Ratios are best over best: on a shared machine the best of a few runs is the least disturbed.</remarks>
    public JsonObject ToJson(PhaseTimings phases)
    {
        var floors = FloorsJson();
        var map = new JsonObject();
        var vs = new JsonObject();
        foreach (var phase in phases.Names)
        {
            if (!_map.TryGetValue(phase, out var parts))
                throw new InvalidOperationException($"bench: phase {phase} has no floor mapping");
            if (parts is null) { map[phase] = null; vs[phase] = null; continue; }
            double floor = 0;
            foreach (var p in parts)
            {
                var (times, name) = Term(p);
                if (!_t.Has(name)) throw new InvalidOperationException($"bench: phase {phase} maps to floor {name}, which was not measured");
                // From the rounded figures the line prints, so that a reader recomputes the same ratio.
                floor += times * Math.Round(_t.Best(name), 6);
            }
            map[phase] = string.Join("+", parts);
            vs[phase] = floor > 0 ? Math.Round(Math.Round(phases.Best(phase), 6) / floor, 3) : null;
        }
        return new JsonObject { ["floors"] = floors, ["floor_map"] = map, ["vs_floor"] = vs };
    }

    /// <summary>A term of a mapping: <c>name</c>, or <c>N*name</c> for a floor paid N times (once per cycle).</summary>
    private static (long Times, string Name) Term(string term)
    {
        int star = term.IndexOf('*', StringComparison.Ordinal);
        return star < 0 ? (1, term) : (long.Parse(term.AsSpan(0, star), System.Globalization.CultureInfo.InvariantCulture), term[(star + 1)..]);
    }

    private static void Write(string path, byte[] bytes, bool fsync)
    {
        using (var fs = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.None))
        {
            for (int o = 0; o < bytes.Length; o += 1 << 20) fs.Write(bytes, o, Math.Min(1 << 20, bytes.Length - o));
            if (fsync) fs.Flush(true);
        }
        if (fsync) FsyncDirectory(Path.GetDirectoryName(path)!);
    }

    private static void ReadInto(string path, byte[]? reused)
    {
        using var h = System.IO.File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long len = RandomAccess.GetLength(h);
        var buf = reused ?? new byte[len];
        long at = 0;
        while (at < len)
        {
            int n = RandomAccess.Read(h, buf.AsSpan((int)at, (int)Math.Min(1 << 24, len - at)), at);
            if (n == 0) break;
            at += n;
        }
    }

    private static void FsyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux()) return;
        int fd = NativeMethods.open(dir, 0 /* O_RDONLY */);
        if (fd < 0) return;
        NativeMethods.fsync(fd);
        NativeMethods.close(fd);
    }

    private static class NativeMethods
    {
#pragma warning disable SYSLIB1054 // three libc calls of a benchmark floor; no marshalling beyond an ANSI path
        [DllImport("libc", SetLastError = true)] public static extern int open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);
        [DllImport("libc", SetLastError = true)] public static extern int fsync(int fd);
        [DllImport("libc", SetLastError = true)] public static extern int close(int fd);
#pragma warning restore SYSLIB1054
    }
}
