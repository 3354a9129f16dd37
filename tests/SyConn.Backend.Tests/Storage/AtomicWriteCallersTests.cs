using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>
/// The writers that go through <c>AtomicFile</c> (KNOSSOS cubes and configs, BinarySearchStore files) leave
/// no temp files behind, and a failed write leaves the old target as it was.
/// </summary>
public class AtomicWriteCallersTests
{
    /// <summary>Every dot file below <paramref name="root"/>: AtomicFile's temp files are <c>.name.tmp.pid.random</c>.</summary>
    private static string[] Leftovers(string root) =>
        Directory.GetFiles(root, ".*", SearchOption.AllDirectories);

    private static ulong[] Labels(int n, ulong seed)
    {
        var v = new ulong[n];
        for (int i = 0; i < n; i++) v[i] = i % 3 == 0 ? 0 : seed + (ulong)(i % 7);
        return v;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void KnossosWriter_leaves_no_temp_files(bool durable)
    {
        using var t = new TempDir();
        var b = new Xyz(64, 32, 32);
        var w = KnossosWriter.Create(t.Path, "tmpfree", b, 16, (1, 1, 1),
            new KnossosCreateOptions { WriteToml = true, Durable = durable });
        Assert.Equal(durable, w.Durable);
        w.WriteSeg(new Xyz(0, 0, 0), b, Labels((int)b.Product, 10));
        w.WriteSeg(new Xyz(8, 8, 8), new Xyz(20, 20, 20), Labels(8000, 100)); // merges into existing cubes
        w.WriteSeg(new Xyz(0, 0, 0), new Xyz(16, 16, 16), new ulong[16 * 16 * 16]); // an all-zero cube is deleted
        Assert.False(File.Exists(w.Config.CubePath(0, 0, 0)));
        Assert.True(File.Exists(w.Config.CubePath(1, 0, 0)));
        Assert.Empty(Leftovers(t.Path));

        using var ds = KnossosDataset.Open(t.Path, new KnossosDatasetOptions { CacheBytes = 0 });
        Assert.Equal(100UL + 10 % 7, ds.LoadSeg(new Xyz(18, 8, 8), new Xyz(1, 1, 1)).ToArray<ulong>()[0]);
    }

    [Fact]
    public void KnossosWriter_failed_merge_keeps_the_old_cube_and_writes_the_others()
    {
        using var t = new TempDir();
        var b = new Xyz(32, 16, 16);
        var w = KnossosWriter.Create(t.Path, "keep", b, 16, (1, 1, 1));
        w.WriteSeg(new Xyz(0, 0, 0), b, Labels((int)b.Product, 1));
        string bad = w.Config.CubePath(1, 0, 0);
        byte[] corrupt = "not a zip file"u8.ToArray();
        File.WriteAllBytes(bad, corrupt);
        byte[] good = File.ReadAllBytes(w.Config.CubePath(0, 0, 0));

        var e = Assert.Throws<InvalidDataException>(() => w.WriteSeg(new Xyz(0, 0, 0), b, Labels((int)b.Product, 50)));
        Assert.Contains(bad, e.Message);
        Assert.Equal(corrupt, File.ReadAllBytes(bad));
        Assert.NotEqual(good, File.ReadAllBytes(w.Config.CubePath(0, 0, 0))); // the healthy cube was replaced whole
        Assert.Empty(Leftovers(t.Path));
    }

    [Fact]
    public void KnossosWriter_Create_refuses_before_writing_any_config_when_one_exists()
    {
        using var t = new TempDir();
        string toml = Path.Combine(t.Path, "clash.k.toml");
        File.WriteAllText(toml, "theirs");
        var e = Assert.Throws<IOException>(() => KnossosWriter.Create(t.Path, "clash", new Xyz(8, 8, 8), 4, (1, 1, 1),
            new KnossosCreateOptions { WriteToml = true }));
        Assert.Contains(toml, e.Message);
        Assert.Equal("theirs", File.ReadAllText(toml));
        Assert.False(File.Exists(Path.Combine(t.Path, "clash.pyk.conf")));
        Assert.Empty(Leftovers(t.Path));
    }

    private static Dictionary<string, NdArray> Attrs(int n) => new() { ["v"] = NdArray.Create(Enumerable.Range(0, n).Select(i => (long)i * 3).ToArray()) };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BinarySearchStore_Create_leaves_no_temp_files(bool durable)
    {
        using var t = new TempDir();
        string path = t.File("s.h5");
        using (var s = BinarySearchStore.Create(path, [5, 1, 9, 3], Attrs(4), 2, durable: durable))
            Assert.Equal(new ulong[] { 1, 3, 5, 9 }, s.IdArray);
        using (var s = BinarySearchStore.Create(path, [2, 4], Attrs(2), 1, overwrite: true, durable: durable))
            Assert.Equal(new ulong[] { 2, 4 }, s.IdArray);
        Assert.Equal(["s.h5"], Directory.GetFileSystemEntries(t.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void BinarySearchStore_Create_refusing_to_overwrite_keeps_the_old_file()
    {
        using var t = new TempDir();
        string path = t.File("s.h5");
        BinarySearchStore.Create(path, [1, 2, 3], Attrs(3), 1).Dispose();
        byte[] before = File.ReadAllBytes(path);
        var e = Assert.Throws<IOException>(() => BinarySearchStore.Create(path, [7, 8], Attrs(2), 1));
        Assert.Contains(path, e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Empty(Leftovers(t.Path));
    }

    [Fact]
    public void BinarySearchStore_Create_failing_at_the_rename_leaves_the_target_and_no_temp()
    {
        using var t = new TempDir();
        // The target is a non-empty folder: the build succeeds, the final rename(2) fails.
        string path = t.File("taken.h5");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "inside"), "x");
        Assert.ThrowsAny<IOException>(() => BinarySearchStore.Create(path, [1, 2, 3], Attrs(3), 1, overwrite: true));
        Assert.Equal("x", File.ReadAllText(Path.Combine(path, "inside")));
        Assert.Empty(Leftovers(t.Path));
        Assert.Equal(["taken.h5"], Directory.GetFileSystemEntries(t.Path).Select(Path.GetFileName));
    }
}
