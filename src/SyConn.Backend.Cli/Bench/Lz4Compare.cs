using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Formats.Lz4;
using static SyConn.Backend.Cli.Bench.BenchMath;

namespace SyConn.Backend.Cli.Bench;

/// <summary>
/// K4os against liblz4 (and python-lz4 beside them) on the bytes of W1, W3 and W5: encode and decode, one core and
/// both cores, alternating the codecs within each round so that both see the same machine load. Our own decoder
/// (<see cref="Lz4Impl.Builtin"/>, the default) is timed in the decode phases of the same rounds ("ours"). Every
/// decode goes through <see cref="PyLz4"/>, so liblz4's and K4os's include the walk that refuses a match at
/// distance 0 before they run, as a store's read does with them.
/// </summary>
internal static class Lz4Compare
{
    private static readonly Lz4Impl[] Impls = [Lz4Impl.Managed, Lz4Impl.Native];
    /// <summary>
    /// Encode and decode into buffers allocated (and touched) beforehand: the codecs alone. <c>decode_new_*</c> decode
    /// into a fresh array per block, as a store's getter and python-lz4 do (allocation and first-touch page faults included).
    /// </summary>
    private static readonly string[] Phases = ["encode_1core", "encode_2core", "decode_1core", "decode_2core", "decode_new_1core", "decode_new_2core"];

    /// <summary>The bytes LZ4 sees in a workload: one chunk per stored array.</summary>
    public static byte[][] Chunks(string dataset, double scale) => dataset switch
    {
        "w1" => Workloads.W1Data(scale).Select(d => d.Value.Data.ToArray()).ToArray(),
        "w3" => Workloads.W3Data(scale).SelectMany(d => d.Item2).Select(a => a.Data.ToArray()).ToArray(),
        "w5" => Workloads.W5Data(scale).SelectMany(d => d.Masks).Select(a => a.Data.ToArray()).ToArray(),
        _ => throw new UsageException($"unknown data set '{dataset}'; use w1, w3 or w5", "DATASETS"),
    };

    public static JsonObject Run(IReadOnlyList<string> datasets, double scale, int rounds, bool python, string dir, TextWriter progress)
    {
        if (!NativeLz4.IsAvailable) throw new InvalidOperationException($"liblz4 is not available: {NativeLz4.Unavailable}");
        var result = new JsonObject
        {
            ["bench"] = "lz4_compare",
            ["scale"] = scale,
            ["rounds"] = rounds,
            ["liblz4"] = NativeLz4.VersionText,
            ["default"] = PyLz4.Implementation,
        };
        bool py = python && PythonHasLz4();
        if (python && !py) progress.WriteLine("lz4-compare: /usr/bin/python3 cannot import lz4; python-lz4 is not measured");
        var sets = new JsonObject();
        foreach (var name in datasets)
        {
            progress.WriteLine($"lz4-compare {name}: generating");
            var chunks = Chunks(name, scale);
            sets[name] = RunOne(name, chunks, rounds, py, dir, progress);
        }
        result["datasets"] = sets;
        result["env"] = Env();
        return result;
    }

    private static JsonObject RunOne(string name, byte[][] chunks, int rounds, bool py, string dir, TextWriter progress)
    {
        long raw = chunks.Sum(c => (long)c.Length);
        var encoded = chunks.Select(c => new byte[PyLz4.MaxCompressedLength(c.Length)]).ToArray();
        var encodedLength = new int[chunks.Length];
        var decoded = chunks.Select(c => new byte[c.Length]).ToArray();
        // Touch the output buffers now, so that neither codec's first pass pays their first-touch page faults.
        foreach (var b in encoded) b.AsSpan().Fill(0xA5);
        foreach (var b in decoded) b.AsSpan().Fill(0xA5);

        // Blocks as python-lz4 writes them (the native encoder's are byte-identical): what files hold.
        var blocks = chunks.Select(c => PyLz4.Compress(c, Lz4Impl.Native)).ToArray();
        var sizes = new JsonObject();
        int identical = 0;
        foreach (var impl in Impls)
        {
            long packed = 0;
            for (int i = 0; i < chunks.Length; i++)
            {
                var b = PyLz4.Compress(chunks[i], impl);
                packed += b.Length;
                if (impl == Lz4Impl.Managed && b.AsSpan().SequenceEqual(blocks[i])) identical++;
                // Each codec decodes each codec's block to the input.
                foreach (var dec in Impls.Append(Lz4Impl.Builtin))
                {
                    if (!PyLz4.Decompress(b, dec).AsSpan().SequenceEqual(chunks[i]) || !PyLz4.Decompress(blocks[i], dec).AsSpan().SequenceEqual(chunks[i]))
                        throw new InvalidOperationException($"{name} chunk {i}: {dec} did not decode a {impl} block to its input");
                }
            }
            sizes[Key(impl)] = packed;
        }

        var runs = Phases.ToDictionary(p => p, _ => Impls.ToDictionary(i => i, _ => new List<double>()));
        var pyRuns = Phases.ToDictionary(p => p, _ => new List<double>());
        var oursRuns = Phases.ToDictionary(p => p, _ => new List<double>());
        var firstPass = Phases.ToDictionary(p => p, _ => new Dictionary<Lz4Impl, double>());
        var fresh = new byte[blocks.Length][];
        string? chunkFile = py ? WriteChunks(chunks, Path.Combine(dir, $"lz4-compare-{name}")) : null;

        for (int round = 0; round <= rounds; round++)
        {
            bool warmup = round == 0;
            progress.WriteLine($"lz4-compare {name}: {(warmup ? "warm-up" : $"round {round}/{rounds}")}");
            Quiesce();
            var order = round % 2 == 0 ? Impls : Impls.Reverse().ToArray();
            foreach (var phase in Phases)
            {
                bool decode = phase.StartsWith("decode", StringComparison.Ordinal);
                // Ours runs first in odd rounds and last in even ones.
                var timed = decode ? (round % 2 == 1 ? order.Prepend(Lz4Impl.Builtin) : order.Append(Lz4Impl.Builtin)).ToArray() : order;
                foreach (var impl in timed)
                {
                    if (phase.StartsWith("decode_new", StringComparison.Ordinal)) Quiesce();
                    double t = phase switch
                    {
                        "encode_1core" => Time(() => { for (int i = 0; i < chunks.Length; i++) encodedLength[i] = PyLz4.Compress(chunks[i], encoded[i], impl); }),
                        "encode_2core" => Time(() => Parallel.For(0, chunks.Length, i => encodedLength[i] = PyLz4.Compress(chunks[i], encoded[i], impl))),
                        "decode_1core" => Time(() => { for (int i = 0; i < blocks.Length; i++) PyLz4.Decompress(blocks[i], decoded[i], impl); }),
                        "decode_2core" => Time(() => Parallel.For(0, blocks.Length, i => PyLz4.Decompress(blocks[i], decoded[i], impl))),
                        "decode_new_1core" => Time(() => { for (int i = 0; i < blocks.Length; i++) fresh[i] = PyLz4.Decompress(blocks[i], impl); }),
                        _ => Time(() => Parallel.For(0, blocks.Length, i => fresh[i] = PyLz4.Decompress(blocks[i], impl))),
                    };
                    Array.Clear(fresh);
                    if (impl == Lz4Impl.Builtin) { if (!warmup) oursRuns[phase].Add(t); }
                    else if (warmup) firstPass[phase][impl] = t;
                    else runs[phase][impl].Add(t);
                }
            }
            if (chunkFile is not null)
            {
                var p = RunPython(chunkFile);
                if (!warmup) foreach (var phase in Phases.Where(x => p[x] is not null)) pyRuns[phase].Add((double)p[phase]!);
            }
        }
        if (chunkFile is not null)
        {
            File.Delete(chunkFile);
            File.Delete(chunkFile + ".len");
        }

        var timings = new JsonObject();
        var mbps = new JsonObject();
        var speedup = new JsonObject();
        var oursSpeedup = new JsonObject();
        foreach (var phase in Phases)
        {
            var t = new JsonObject();
            var m = new JsonObject();
            foreach (var impl in Impls)
            {
                t[Key(impl)] = Series(runs[phase][impl]);
                m[Key(impl)] = Math.Round(raw / 1e6 / Median(runs[phase][impl]), 0);
            }
            t["first_pass"] = new JsonObject { ["k4os"] = Math.Round(firstPass[phase][Lz4Impl.Managed], 5), ["liblz4"] = Math.Round(firstPass[phase][Lz4Impl.Native], 5) };
            if (oursRuns[phase].Count > 0)
            {
                t["ours"] = Series(oursRuns[phase]);
                m["ours"] = Math.Round(raw / 1e6 / Median(oursRuns[phase]), 0);
                var byRound = runs[phase][Lz4Impl.Native].Zip(oursRuns[phase], (n, o) => n / o).ToList();
                oursSpeedup[phase] = new JsonObject
                {
                    ["over_liblz4_of_medians"] = Math.Round(Median(runs[phase][Lz4Impl.Native]) / Median(oursRuns[phase]), 3),
                    ["paired_min"] = Math.Round(byRound.Min(), 3),
                    ["paired_max"] = Math.Round(byRound.Max(), 3),
                };
            }
            if (pyRuns[phase].Count > 0)
            {
                t["python_lz4"] = Series(pyRuns[phase]);
                m["python_lz4"] = Math.Round(raw / 1e6 / Median(pyRuns[phase]), 0);
            }
            timings[phase] = t;
            mbps[phase] = m;
            // Native speed-up over K4os: ratio of the medians, and of each round's pair.
            var pairs = runs[phase][Lz4Impl.Managed].Zip(runs[phase][Lz4Impl.Native], (a, b) => a / b).ToList();
            speedup[phase] = new JsonObject
            {
                ["of_medians"] = Math.Round(Median(runs[phase][Lz4Impl.Managed]) / Median(runs[phase][Lz4Impl.Native]), 3),
                ["paired_median"] = Math.Round(Median(pairs), 3),
                ["paired_min"] = Math.Round(pairs.Min(), 3),
                ["paired_max"] = Math.Round(pairs.Max(), 3),
                ["rounds_native_faster_by_10pct"] = pairs.Count(x => x > 1.10),
                ["rounds_k4os_faster_by_10pct"] = pairs.Count(x => x < 1 / 1.10),
            };
        }
        return new JsonObject
        {
            ["chunks"] = chunks.Length,
            ["raw_bytes"] = raw,
            ["compressed_bytes"] = sizes,
            ["k4os_blocks_identical_to_python_lz4"] = identical,
            ["timings_s"] = timings,
            ["mb_per_s_median"] = mbps,
            ["native_speedup"] = speedup,
            ["ours_speedup"] = oursSpeedup,
        };
    }

    private static string Key(Lz4Impl impl) => impl == Lz4Impl.Native ? "liblz4" : "k4os";

    private static JsonObject Series(List<double> xs)
    {
        var arr = new JsonArray();
        foreach (var x in xs) arr.Add(Math.Round(x, 5));
        return new JsonObject { ["median"] = Math.Round(Median(xs), 5), ["best"] = Math.Round(xs.Min(), 5), ["runs"] = arr };
    }

    /// <summary>The chunks concatenated, and their lengths one per line in <c>FILE.len</c>.</summary>
    private static string WriteChunks(byte[][] chunks, string file)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        using (var fs = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            foreach (var c in chunks) fs.Write(c);
        File.WriteAllText(file + ".len", string.Join("\n", chunks.Select(c => c.Length.ToString(CultureInfo.InvariantCulture))));
        return file;
    }

    private const string Interpreter = "/usr/bin/python3";

    /// <summary>
    /// One python-lz4 round on the same chunks: a warm-up pass, then encode and decode with one thread and with two
    /// (python-lz4 releases the GIL inside compress and decompress).
    /// </summary>
    private const string PythonScript = """
import sys, json, time, lz4.block
from concurrent.futures import ThreadPoolExecutor
path = sys.argv[1]
lens = [int(x) for x in open(path + '.len').read().split()]
buf = open(path, 'rb').read()
chunks, o = [], 0
for n in lens:
    chunks.append(buf[o:o + n]); o += n
del buf
blocks = [lz4.block.compress(c) for c in chunks]
for b in blocks: lz4.block.decompress(b)
out = {}
def timed(name, f):
    t = time.perf_counter(); f(); out[name] = time.perf_counter() - t
timed('encode_1core', lambda: [lz4.block.compress(c) for c in chunks])
with ThreadPoolExecutor(2) as ex:
    timed('encode_2core', lambda: list(ex.map(lz4.block.compress, chunks, chunksize=16)))
    # python-lz4 always decodes into a fresh bytes object
    timed('decode_new_1core', lambda: [lz4.block.decompress(b) for b in blocks])
    timed('decode_new_2core', lambda: list(ex.map(lz4.block.decompress, blocks, chunksize=16)))
out['lz4_library'] = lz4.library_version_string()
print(json.dumps(out))
""";

    private static bool PythonHasLz4()
    {
        if (!File.Exists(Interpreter)) return false;
        using var p = Process.Start(new ProcessStartInfo(Interpreter, ["-c", "import lz4.block"]) { RedirectStandardError = true, UseShellExecute = false })!;
        p.StandardError.ReadToEnd();
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    private static JsonObject RunPython(string chunkFile)
    {
        var psi = new ProcessStartInfo(Interpreter, ["-c", PythonScript, chunkFile])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        psi.Environment.Remove("PYTHONPATH");
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"python-lz4 measurement failed (exit {p.ExitCode}): {stderr.Result}");
        return JsonNode.Parse(stdout.Result)!.AsObject();
    }

    /// <summary>A Markdown table of the medians (MB/s of uncompressed bytes) and the native speed-ups.</summary>
    public static string Table(JsonObject result)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| data | phase | K4os MB/s | liblz4 MB/s | ours MB/s | python-lz4 MB/s | liblz4 / K4os (of medians; paired min–max) | liblz4 time / ours (paired min–max) | rounds >10% faster: liblz4 / K4os | warm-up round K4os / liblz4 MB/s |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var (name, node) in result["datasets"]!.AsObject())
        {
            var d = node!.AsObject();
            foreach (var phase in Phases)
            {
                var m = d["mb_per_s_median"]![phase]!.AsObject();
                var s = d["native_speedup"]![phase]!.AsObject();
                string pyText = m["python_lz4"] is JsonNode pyNode ? ((double)pyNode).ToString("F0", CultureInfo.InvariantCulture) : "—";
                string oursText = m["ours"] is JsonNode oursNode ? ((double)oursNode).ToString("F0", CultureInfo.InvariantCulture) : "—";
                string oursRatio = d["ours_speedup"]?[phase] is JsonObject o
                    ? string.Create(CultureInfo.InvariantCulture, $"{(double)o["over_liblz4_of_medians"]!:F2} ({(double)o["paired_min"]!:F2}–{(double)o["paired_max"]!:F2})")
                    : "—";
                var first = d["timings_s"]![phase]!["first_pass"]!;
                long raw = (long)d["raw_bytes"]!;
                double firstK4os = raw / 1e6 / (double)first["k4os"]!, firstNative = raw / 1e6 / (double)first["liblz4"]!;
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"| {name.ToUpperInvariant()} | {phase.Replace('_', ' ')} | {(double)m["k4os"]!:F0} | {(double)m["liblz4"]!:F0} | {oursText} | {pyText} | {(double)s["of_medians"]!:F2} ({(double)s["paired_min"]!:F2}–{(double)s["paired_max"]!:F2}) | {oursRatio} | {(int)s["rounds_native_faster_by_10pct"]!} / {(int)s["rounds_k4os_faster_by_10pct"]!} | {firstK4os:F0} / {firstNative:F0} |");
            }
        }
        return sb.ToString();
    }
}
