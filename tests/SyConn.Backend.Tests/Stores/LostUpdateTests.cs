using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Storage;

namespace SyConn.Backend.Tests.Stores;

/// <summary>
/// Four processes, two of ours and two Python ones using SyConn's own scheme (fasteners lock on
/// <c>.&lt;name&gt;.lk</c>, pickle load, modify, write <c>PATH.tmp</c>, rename), each do locked
/// read-modify-write increments of one counter in one CompressedStorage: no update may be lost.
/// </summary>
[Collection(StorageProcessCollection.Name)]
public class LostUpdateTests
{
    private const string PythonWorker = """
import sys, os, pickle, fasteners, lz4.block, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
d, name = os.path.split(path)
lock = fasteners.InterProcessLock(os.path.join(d, '.' + name + '.lk'))
for _ in range(n):
    lock.acquire()
    try:
        with open(path, 'rb') as f:
            D = pickle.load(f)
        e = D[0]
        a = np.frombuffer(lz4.block.decompress(e['arr'][0]), np.dtype(e['dt'])).reshape(e['sh']).copy()
        a[0] += 1
        D[0] = {'arr': [lz4.block.compress(a.tobytes())], 'sh': (-1,), 'dt': a.dtype.str}
        with open(path + '.tmp', 'wb') as f:
            pickle.dump(D, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(path + '.tmp', path)
    finally:
        lock.release()
print('done')
""";

    [SkippableFact]
    public void Mixed_processes_lose_no_update()
    {
        Infrastructure.Python.Require("numpy", "lz4", "fasteners");
        const int each = 200;
        using var dir = new TempDir();
        var path = dir.File("counter.pkl");
        using (var init = new CompressedStorage(path, StoreOptions.Writable))
        {
            init[0] = NdArray.Create(new long[] { 0 });
            init[1] = NdArray.Create(new long[] { 42, 43 });
            init.Push();
        }
        var children = new List<ChildProcess>
        {
            ChildProcess.Cli("_w8-worker", path, each.ToString(System.Globalization.CultureInfo.InvariantCulture), "nosync"),
            ChildProcess.Python(PythonWorker, path, each.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ChildProcess.Cli("_w8-worker", path, each.ToString(System.Globalization.CultureInfo.InvariantCulture), "durable"),
            ChildProcess.Python(PythonWorker, path, each.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            ChildProcess.Cli("_w8-worker", path, each.ToString(System.Globalization.CultureInfo.InvariantCulture), "deferred"),
        };
        try
        {
            foreach (var c in children)
                Assert.True(c.WaitForExit(300) == 0, $"worker {c.Pid} failed: {c.Stderr}");
        }
        finally
        {
            foreach (var c in children) c.Dispose();
        }
        using var r = new CompressedStorage(path);
        Assert.Equal(children.Count * each, r[0].ToArray<long>()[0]);
        Assert.Equal(new long[] { 42, 43 }, r[1].ToArray<long>());
    }

    [SkippableFact]
    public void A_python_lock_holder_makes_our_pull_time_out_and_ours_blocks_python()
    {
        Infrastructure.Python.Require("fasteners");
        using var dir = new TempDir();
        var path = dir.File("cs.pkl");
        var lockPath = dir.File(".cs.pkl.lk");
        using (var holder = ChildProcess.Python("""
import sys, fasteners
l = fasteners.InterProcessLock(sys.argv[1])
assert l.acquire(blocking=False)
print('locked', flush=True)
sys.stdin.readline()
l.release()
print('released', flush=True)
sys.stdin.readline()
""", lockPath))
        {
            Assert.Equal("locked", holder.ReadLine());
            var quick = StoreOptions.WritableLocked with { Timeout = 0.4, MaxNbAttempts = 4 };
            var e = Assert.Throws<StorageLockTimeoutException>(() => new CompressedStorage(path, quick));
            Assert.Contains(".cs.pkl.lk", e.Message, StringComparison.Ordinal);
            Assert.Equal(holder.Pid, e.HolderPid);
            Assert.False(File.Exists(path));
            holder.WriteLine("go");
            Assert.Equal("released", holder.ReadLine());
            using var cs = new CompressedStorage(path, quick);
            Assert.True(cs.HoldsLock);
            var probe = Infrastructure.Python.Run("""
import sys, fasteners
l = fasteners.InterProcessLock(sys.argv[1])
print(l.acquire(blocking=False))
""", [lockPath]);
            Assert.Equal("False", probe.Stdout.Trim());
            holder.WriteLine("bye");
        }
    }
}
