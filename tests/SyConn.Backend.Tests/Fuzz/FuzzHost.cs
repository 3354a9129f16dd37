using System.Diagnostics;
using System.Globalization;
using System.Text;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>The harnesses by name.</summary>
internal static class FuzzTargets
{
    public static FuzzTarget Create(string name) => name switch
    {
        "npy" => new NpyTarget(),
        "npz" => new NpzTarget(),
        "lz4" => new Lz4Target(),
        "knossos-config" => new KnossosConfigTarget(),
        "knossos-cube" => new KnossosCubeTarget(),
        "hdf5" => new Hdf5Target(),
        "selftest-crash" => new CrashingTarget(),
        _ => throw new ArgumentException($"unknown fuzz target '{name}'", nameof(name)),
    };
}

/// <summary>
/// Runs a harness in a child process (<see cref="FuzzChild"/>) for its share of <c>SYCONN_FUZZ_SECONDS</c>, under a
/// 1 GiB GC heap limit, and fails the test on any disallowed outcome, a hang, or a crash of the child (stack overflow,
/// out of memory), naming the input (saved under the temp folder) that caused it.
/// </summary>
internal static class FuzzHost
{
    public static void Run(string harness, ITestOutputHelper output) => Run(harness, FuzzBudget.For(harness), output);

    public static void Run(string harness, TimeSpan budget, ITestOutputHelper output)
    {
        string fixtures = Shared.Dir;
        string dll = Path.Combine(AppContext.BaseDirectory, "SyConn.Backend.Tests.dll");
        Assert.True(File.Exists(dll), $"test assembly not found: {dll}");
        using var scratch = new TempDir();
        string progressFile = Path.Combine(scratch.Path, "progress");
        int seed = Environment.GetEnvironmentVariable("SYCONN_FUZZ_SEED") is { } s ? int.Parse(s, CultureInfo.InvariantCulture) : 20261201;
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (var a in new[] { dll, "fuzz", harness, budget.TotalSeconds.ToString("R", CultureInfo.InvariantCulture), seed.ToString(CultureInfo.InvariantCulture), fixtures, scratch.Path, progressFile })
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_GCHeapHardLimit"] = "0x40000000";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        var lines = new List<string>();
        var stderr = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (lines) lines.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var limit = budget + TimeSpan.FromSeconds(FuzzChild.WatchdogSeconds + 90);
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{harness} fuzz child did not finish within {limit.TotalSeconds:0} s");
        }
        p.WaitForExit();
        string[] got;
        lock (lines) got = lines.ToArray();
        string err;
        lock (stderr) err = stderr.ToString();
        var bad = got.Where(l => l.StartsWith("bad\t", StringComparison.Ordinal)).ToList();
        var hang = got.FirstOrDefault(l => l.StartsWith("hang\t", StringComparison.Ordinal));
        var done = got.FirstOrDefault(l => l.StartsWith("done\t", StringComparison.Ordinal));
        foreach (var l in bad) output.WriteLine(l);
        string saved = Path.Combine(Path.GetTempPath(), $"syconn-fuzz-{harness}");
        if (bad.Count > 0 || hang is not null || done is null)
        {
            Directory.CreateDirectory(saved);
            foreach (var f in Directory.GetFiles(scratch.Path, "*.bin")) File.Copy(f, Path.Combine(saved, Path.GetFileName(f)), true);
        }
        if (hang is not null)
            Assert.Fail($"{harness}: input {hang.Split('\t')[1]} ran longer than {FuzzChild.WatchdogSeconds} s (saved in {saved})");
        if (done is null)
        {
            long index = File.Exists(progressFile) ? BitConverter.ToInt64(File.ReadAllBytes(progressFile), 0) : -1;
            string crash = "";
            if (index >= 0)
            {
                var target = FuzzTargets.Create(harness);
                using var setupDir = new TempDir();
                target.Setup(fixtures, setupDir.Path);
                crash = Path.Combine(saved, $"crash-{index}.bin");
                File.WriteAllBytes(crash, target.Generate(seed, index).Data);
            }
            Assert.Fail($"{harness}: the fuzz child died (exit {p.ExitCode}) on input {index} (saved as {crash}); stderr: {Tail(err)}");
        }
        var fields = done.Split('\t');
        string summary = $"{harness} fuzz: {fields[1]} inputs in {budget.TotalSeconds:0.#} s: {fields[2]} values, {fields[3]} refused, {fields[4]} with a planted flaw";
        output.WriteLine(summary);
        Console.WriteLine(summary);
        Assert.True(bad.Count == 0, $"{harness}: {bad.Count} disallowed outcome(s), inputs saved in {saved}:\n{string.Join("\n", bad)}");
        Assert.True(long.Parse(fields[1], CultureInfo.InvariantCulture) > 0, $"{harness}: no input ran");
    }

    private static string Tail(string s) => s.Length > 3000 ? s[^3000..] : s;
}

/// <summary>A target whose reader overflows the stack on the byte 7: shows that the host reports a dying child with the input.</summary>
internal sealed class CrashingTarget : FuzzTarget
{
    public override string Name => "selftest-crash";

    protected override IEnumerable<byte[]> LoadSeeds(string shared) => [[7]];

    protected override FuzzInput Structured(Random rng) => new([7]);

    public override bool Run(byte[] data) => data.Length > 0 && data[0] == 7 ? Deep(0) > 0 : false;

    private static int Deep(int n) => n == int.MaxValue ? n : Deep(n + 1) + 1;
}
