using System.Diagnostics;
using System.Globalization;
using SyConn.Backend.Cli.Commands;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;
using Py = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// <see cref="FileLock"/> against Python SyConn's primitive (Debian's python3-fasteners 0.17,
/// <c>InterProcessLock</c> = <c>fcntl.lockf</c>) and against other processes of ours.
/// </summary>
[Collection(StorageProcessCollection.Name)]
public class FileLockInteropTests(ITestOutputHelper output)
{
    // Holds fasteners' lock until told to release it on stdin; prints its pid first.
    private const string PyHolder = """
import fasteners, os, sys
lk = fasteners.InterProcessLock(sys.argv[1])
assert lk.acquire(blocking=False)
print(os.getpid(), flush=True)
sys.stdin.readline()
lk.release()
print("released", flush=True)
sys.stdin.readline()
""";

    [SkippableFact]
    public void Python_holder_makes_us_wait_time_out_and_then_get_in()
    {
        Py.Require("fasteners");
        using var dir = new TempDir();
        string lk = LockPaths.ForStore(dir.File("attr_dict.pkl"));
        using var py = ChildProcess.Python(PyHolder, lk);
        int pyPid = int.Parse(py.ReadLine(), CultureInfo.InvariantCulture);
        Assert.Equal(py.Pid, pyPid);

        var e = Assert.Throws<StorageLockTimeoutException>(() =>
            FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromMilliseconds(300) }));
        Assert.Equal(lk, e.LockPath);
        Assert.Equal(pyPid, e.HolderPid);
        Assert.False(e.HeldInProcess);
        Assert.Null(e.HolderLine); // Python never writes into the lock file
        Assert.Contains(lk, e.Message);
        Assert.Contains($"pid {pyPid}", e.Message);
        Assert.True(e.Waited >= TimeSpan.FromMilliseconds(250), e.Waited.ToString());
        Assert.IsAssignableFrom<IOException>(e);

        // A waiter gets in once Python releases.
        var got = new TaskCompletionSource<FileLock>();
        var waiter = new Thread(() =>
        {
            try { got.SetResult(FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromSeconds(30) })); }
            catch (Exception ex) { got.SetException(ex); }
        });
        waiter.Start();
        Thread.Sleep(50);
        Assert.False(got.Task.IsCompleted, "acquired while Python still held the lock");
        py.WriteLine("release");
        Assert.Equal("released", py.ReadLine());
        Assert.True(got.Task.Wait(TimeSpan.FromSeconds(30)));
        using var mine = got.Task.Result;
        Assert.True(mine.IsHeld);
        py.WriteLine("exit");
        Assert.Equal(0, py.WaitForExit());
    }

    [SkippableFact]
    public void Our_lock_makes_fasteners_fail_blocking_and_non_blocking()
    {
        Py.Require("fasteners");
        using var dir = new TempDir();
        string lk = LockPaths.ForStore(dir.File("mesh.pkl"));
        const string probe = """
import fasteners, sys
lk = fasteners.InterProcessLock(sys.argv[1])
a = lk.acquire(blocking=False)
if a: lk.release()
b = lk.acquire(blocking=True, timeout=0.3)
if b: lk.release()
print(a, b)
""";
        using (FileLock.Acquire(lk))
        {
            Assert.Equal("False False", Py.RunChecked(probe, [lk]).Trim());
        }
        Assert.Equal("True True", Py.RunChecked(probe, [lk]).Trim());
    }

    [SkippableFact]
    public void No_lost_updates_with_our_processes_and_python_processes()
    {
        Py.Require("fasteners");
        using var dir = new TempDir();
        string counter = dir.File("counter.txt");
        const int n = 100;
        const string pyIncrement = """
import fasteners, os, sys
path, n = sys.argv[1], int(sys.argv[2])
d, name = os.path.split(os.path.abspath(path))
lk = fasteners.InterProcessLock(d + "/." + name + ".lk")
for _ in range(n):
    lk.acquire()
    try:
        try:
            with open(path) as f: v = int(f.read().strip() or 0)
        except FileNotFoundError:
            v = 0
        with open(path, "w") as f: f.write(str(v + 1))
    finally:
        lk.release()
print("done", flush=True)
""";
        var sw = Stopwatch.StartNew();
        var children = new List<ChildProcess>();
        try
        {
            for (int i = 0; i < 4; i++) children.Add(ChildProcess.Cli("_lock-increment", counter, n.ToString(CultureInfo.InvariantCulture)));
            for (int i = 0; i < 2; i++) children.Add(ChildProcess.Python(pyIncrement, counter, n.ToString(CultureInfo.InvariantCulture)));
            foreach (var c in children) Assert.True(c.WaitForExit(120) == 0, $"child {c.Pid} failed: {c.Stderr}");
        }
        finally
        {
            children.ForEach(c => c.Dispose());
        }
        output.WriteLine($"6 processes x {n} locked increments: {sw.ElapsedMilliseconds} ms");
        Assert.Equal((6 * n).ToString(CultureInfo.InvariantCulture), File.ReadAllText(counter).Trim());
    }

    [Fact]
    public void No_lost_updates_between_our_processes_and_threads()
    {
        using var dir = new TempDir();
        string counter = dir.File("counter2.txt");
        const int n = 100;
        string lk = LockPaths.ForStore(counter);
        var children = Enumerable.Range(0, 2).Select(_ => ChildProcess.Cli("_lock-increment", counter, n.ToString(CultureInfo.InvariantCulture))).ToList();
        try
        {
            var threads = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                for (int i = 0; i < n; i++)
                {
                    using var l = FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromSeconds(60) });
                    LockIncrementCommand.Increment(counter, durable: false);
                }
            })).ToList();
            threads.ForEach(t => t.Start());
            threads.ForEach(t => t.Join());
            foreach (var c in children) Assert.True(c.WaitForExit(120) == 0, $"child {c.Pid} failed: {c.Stderr}");
        }
        finally
        {
            children.ForEach(c => c.Dispose());
        }
        Assert.Equal((4 * n).ToString(CultureInfo.InvariantCulture), File.ReadAllText(counter).Trim());
    }

    /// <summary>
    /// Measures (and prints) the hand-over latency: Python releases fasteners' lock while we wait in
    /// <see cref="FileLock.Acquire"/>; both sides read CLOCK_MONOTONIC. No assertion on the numbers.
    /// </summary>
    [SkippableFact]
    public void Handover_latency_from_python_release_to_our_acquire()
    {
        Py.Require("fasteners");
        Skip.IfNot(Stopwatch.Frequency == 1_000_000_000, "Stopwatch is not CLOCK_MONOTONIC in ns here");
        using var dir = new TempDir();
        string lk = LockPaths.ForStore(dir.File("h.pkl"));
        const int rounds = 50;
        const string script = """
import fasteners, sys, time
lk = fasteners.InterProcessLock(sys.argv[1])
for i in range(int(sys.argv[2])):
    lk.acquire()
    print("held", flush=True)
    sys.stdin.readline()
    time.sleep(0.02)
    t = time.monotonic_ns()
    lk.release()
    print(t, flush=True)
    sys.stdin.readline()
""";
        using var py = ChildProcess.Python(script, lk, rounds.ToString(CultureInfo.InvariantCulture));
        var latencies = new List<double>();
        for (int i = 0; i < rounds; i++)
        {
            Assert.Equal("held", py.ReadLine());
            py.WriteLine("waiting");
            long acquired;
            using (FileLock.Acquire(lk, new LockOptions { Timeout = TimeSpan.FromSeconds(30) }))
                acquired = Stopwatch.GetTimestamp();
            long released = long.Parse(py.ReadLine(), CultureInfo.InvariantCulture);
            Assert.True(acquired >= released, $"acquired at {acquired} before Python released at {released}");
            latencies.Add((acquired - released) / 1000.0);
            py.WriteLine("next");
        }
        Assert.Equal(0, py.WaitForExit());
        latencies.Sort();
        output.WriteLine($"hand-over python release -> our acquire over {rounds}: median {latencies[rounds / 2]:0} us, " +
                         $"min {latencies[0]:0} us, p90 {latencies[rounds * 9 / 10]:0} us, max {latencies[^1]:0} us");
    }
}

/// <summary>Tests that start many processes run one class at a time (the machine has 2 cores).</summary>
[CollectionDefinition(Name)]
public class StorageProcessCollection
{
    public const string Name = "storage-processes";
}
