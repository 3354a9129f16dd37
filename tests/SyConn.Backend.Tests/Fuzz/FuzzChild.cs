using System.Diagnostics;
using System.IO.MemoryMappedFiles;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// The entry point of the test assembly when it is started as a program (<c>dotnet SyConn.Backend.Tests.dll fuzz …</c>):
/// runs one fuzz harness in this child process, so that a stack overflow, an out-of-memory or a hang is reported by
/// the parent test instead of ending the test run. The test runner itself never calls it.
/// </summary>
/// <remarks>
/// Protocol (stdout, tab-separated lines): <c>bad	index	reason	exception</c> for each disallowed outcome,
/// <c>hang	index</c> when one input ran longer than the watchdog allows (the process then exits with 3), and a
/// closing <c>done	runs	values	refused	structured</c>. The index of the input being run is kept in a small memory-mapped
/// file, so that the parent can regenerate the input that crashed the process.
/// </remarks>
public static class FuzzChild
{
    /// <summary>Seconds one input may run before the watchdog reports a hang.</summary>
    public const int WatchdogSeconds = 30;

    /// <summary>Disallowed outcomes reported before the harness stops.</summary>
    private const int MaxBad = 5;

    /// <summary>The limits inputs are read under in the child: small, so that a missed check shows as an out-of-memory under the heap limit.</summary>
    internal static readonly ReadLimits ChildLimits = new()
    {
        MaxArrayBytes = 64L << 20,
        MaxEntryBytes = 64L << 20,
        MaxStoreBytes = 256L << 20,
        MaxNpzMemberBytes = 64L << 20,
        MaxNpzTotalBytes = 256L << 20,
        MaxCubeBytes = 64L << 20,
    };

    /// <summary>Program entry: <c>fuzz harness seconds seed fixtures scratch progressFile</c>.</summary>
    public static int Main(string[] args)
    {
        if (args.Length == 5 && args[0] == "replay") return Replay(args);
        if (args.Length != 7 || args[0] != "fuzz")
        {
            Console.Error.WriteLine("usage: SyConn.Backend.Tests fuzz <harness> <seconds> <seed> <fixtures> <scratch> <progress-file>");
            return 2;
        }
        var target = FuzzTargets.Create(args[1]);
        double seconds = double.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
        int seed = int.Parse(args[3], System.Globalization.CultureInfo.InvariantCulture);
        string fixtures = args[4], scratch = args[5];
        ReadLimits.Default = ChildLimits;
        target.Setup(fixtures, scratch);

        using var mmf = MemoryMappedFile.CreateFromFile(args[6], FileMode.OpenOrCreate, null, 16);
        using var progress = mmf.CreateViewAccessor(0, 16);
        long current = -1, runs = 0, values = 0, refused = 0, bad = 0, structured = 0;
        long startedAt = Stopwatch.GetTimestamp();
        var budget = TimeSpan.FromSeconds(seconds);
        var output = Console.Out;
        var worker = new Thread(() =>
        {
            var sw = Stopwatch.StartNew();
            for (long i = 0; sw.Elapsed < budget && bad < MaxBad; i++)
            {
                progress.Write(0, i);
                Volatile.Write(ref startedAt, Stopwatch.GetTimestamp());
                Volatile.Write(ref current, i);
                var input = target.Generate(seed, i);
                if (input.MustRefuse is not null) structured++;
                runs++;
                string? problem;
                string detail = "";
                try
                {
                    bool value = target.Run(input.Data);
                    if (value) values++; else refused++;
                    problem = value && input.MustRefuse is not null ? "accepted an input that must be refused: " + input.MustRefuse : null;
                }
                catch (Exception e)
                {
                    refused++;
                    problem = target.Disallowed(e);
                    detail = OneLine(e.GetType().FullName + ": " + e.Message + " @ " + (e.StackTrace ?? "").Split('\n').FirstOrDefault()?.Trim());
                }
                if (problem is not null)
                {
                    bad++;
                    File.WriteAllBytes(Path.Combine(scratch, $"bad-{i}.bin"), input.Data);
                    lock (output) output.WriteLine($"bad\t{i}\t{OneLine(problem)}\t{detail}");
                }
            }
        }, 1 << 20); // 1 MiB, below the 1.5 MiB of a .NET thread-pool thread on Linux: a reader must not need more
        worker.IsBackground = true;
        worker.Start();
        while (!worker.Join(200))
        {
            long i = Volatile.Read(ref current);
            if (i >= 0 && Stopwatch.GetElapsedTime(Volatile.Read(ref startedAt)) > TimeSpan.FromSeconds(WatchdogSeconds) && Volatile.Read(ref current) == i)
            {
                File.WriteAllBytes(Path.Combine(scratch, $"hang-{i}.bin"), target.Generate(seed, i).Data);
                lock (output) { output.WriteLine($"hang\t{i}"); output.Flush(); }
                Environment.Exit(3);
            }
        }
        lock (output) { output.WriteLine($"done\t{runs}\t{values}\t{refused}\t{structured}"); output.Flush(); }
        return 0;
    }

    /// <summary><c>replay harness shared scratch file</c>: runs one saved input and prints the outcome with the whole exception.</summary>
    private static int Replay(string[] args)
    {
        var target = FuzzTargets.Create(args[1]);
        ReadLimits.Default = ChildLimits;
        target.Setup(args[2], args[3]);
        try
        {
            Console.WriteLine(target.Run(File.ReadAllBytes(args[4])) ? "value" : "no value");
        }
        catch (Exception e)
        {
            Console.WriteLine($"{target.Disallowed(e) ?? "allowed"}: {e}");
        }
        return 0;
    }

    private static string OneLine(string s)
    {
        s = s.Replace('\t', ' ').Replace('\r', ' ').Replace('\n', ' ');
        return s.Length > 600 ? s[..600] + "..." : s;
    }
}
