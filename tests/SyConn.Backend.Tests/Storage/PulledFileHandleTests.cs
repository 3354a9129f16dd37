using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// A locked writable file store keeps the file it pulled open until its lock is released (so that the push's rename
/// does not free the old file while the lock is held): the handle must be closed by then, and never leak.
/// </summary>
public class PulledFileHandleTests
{
    // The descriptors of this process that refer to path (open, or open and since replaced: "path (deleted)"; a
    // replace by swapping names leaves the old file under a temp name of path before it is unlinked).
    private static int OpenDescriptors(string path)
    {
        string temps = Path.Combine(Path.GetDirectoryName(path)!, "." + Path.GetFileName(path) + ".tmp.");
        int n = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            string? target;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
                continue; // closed while listed
            }
            if (target is not null && (target == path || target == path + " (deleted)" || target.StartsWith(temps, StringComparison.Ordinal))) n++;
        }
        return n;
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_pulled_file_is_open_while_the_lock_is_held_and_closed_once_it_is_released(bool deferWriteBack)
    {
        var Locked = new StoreOptions { ReadOnly = false, DisableLocking = false, Durable = false, DeferWriteBack = deferWriteBack };
        Skip.IfNot(Directory.Exists("/proc/self/fd"), "needs /proc/self/fd (Linux)");
        using var dir = new TempDir();
        string path = Path.GetFullPath(dir.File("c.pkl"));
        using (var cs = CompressedStorage.Open(path, Locked))
        {
            cs[0] = NdArray.Create(new long[] { 0 });
            cs.Push();
        }
        for (int i = 0; i < 30; i++)
        {
            using var cs = CompressedStorage.Open(path, Locked);
            Assert.Equal(1, OpenDescriptors(path));
            var v = cs[0].ToArray<long>();
            v[0]++;
            cs[0] = NdArray.Create(v);
            cs.Push();
            Assert.Equal(0, OpenDescriptors(path)); // the push released the lock, and with it the old file
        }
        using (var never = CompressedStorage.Open(path, Locked))
            Assert.Equal(1, OpenDescriptors(path));
        Assert.Equal(0, OpenDescriptors(path)); // disposed without a push
        using (var ro = CompressedStorage.Open(path))
            Assert.Equal(0, OpenDescriptors(path)); // read-only: nothing kept
        using (var unlocked = CompressedStorage.Open(path, StoreOptions.Writable))
            Assert.Equal(0, OpenDescriptors(path)); // no lock: nothing to keep it out of
        using var r = CompressedStorage.Open(path);
        Assert.Equal(30, r[0].ToArray<long>()[0]);
    }
}
