using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

public class AtomicFileTests
{
    private static string[] Strays(TempDir dir, string name) =>
        Directory.GetFiles(dir.Path, "." + name + ".tmp.*");

    [Theory]
    [InlineData(32 << 20)]                 // the smallest file read in chunks on several cores
    [InlineData((40 << 20) + 123)]         // several chunks and a short last one
    [InlineData((32 << 20) - 1)]           // read in one go
    public void A_big_file_is_read_whole_and_in_order(int length)
    {
        using var dir = new TempDir();
        string p = dir.File("big.pkl");
        var bytes = new byte[length];
        new Random(length).NextBytes(bytes);
        File.WriteAllBytes(p, bytes);
        var read = AtomicFile.ReadAllBytes(p)!;
        Assert.Equal(bytes.Length, read.Length);
        Assert.True(bytes.AsSpan().SequenceEqual(read));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Writes_new_file_and_replaces_existing(bool durable)
    {
        using var dir = new TempDir();
        string p = dir.File("a.pkl");
        AtomicFile.Write(p, "first"u8, durable);
        Assert.Equal("first"u8.ToArray(), File.ReadAllBytes(p));
        AtomicFile.Write(p, s => s.Write("second, longer"u8), durable);
        Assert.Equal("second, longer"u8.ToArray(), AtomicFile.ReadAllBytes(p));
        AtomicFile.Write(p, ReadOnlySpan<byte>.Empty, durable);
        Assert.Empty(AtomicFile.ReadAllBytes(p)!);
        Assert.Empty(Strays(dir, "a.pkl"));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void Keeps_the_mode_of_an_existing_file_and_new_files_follow_the_umask()
    {
        using var dir = new TempDir();
        string p = dir.File("m.pkl");
        AtomicFile.Write(p, "x"u8);
        // New file: like Python's open(p, 'wb') — 0666 minus umask; compare with a file .NET creates the same way.
        string reference = dir.File("ref");
        File.WriteAllBytes(reference, [1]);
        Assert.Equal(File.GetUnixFileMode(reference), File.GetUnixFileMode(p));

        var mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherExecute;
        File.SetUnixFileMode(p, mode);
        AtomicFile.Write(p, "y"u8);
        Assert.Equal(mode, File.GetUnixFileMode(p));
        Assert.Equal("y"u8.ToArray(), File.ReadAllBytes(p));
    }

    [Fact]
    public void Temp_names_are_unique_and_parallel_writers_never_collide()
    {
        var names = Enumerable.Range(0, 10_000).Select(_ => AtomicFile.TempName("store.pkl")).ToHashSet();
        Assert.Equal(10_000, names.Count);
        Assert.All(names, n => Assert.StartsWith($".store.pkl.tmp.{Environment.ProcessId}.", n));
        string longName = new string('n', 250);
        Assert.True(System.Text.Encoding.UTF8.GetByteCount(AtomicFile.TempName(longName)) <= 255);

        using var dir = new TempDir();
        string p = dir.File("par.pkl");
        var versions = Enumerable.Range(0, 8).Select(i => Enumerable.Repeat((byte)i, 50_000 + i).ToArray()).ToArray();
        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            for (int k = 0; k < 20; k++) AtomicFile.Write(p, versions[i], durable: k % 5 == 0);
        });
        byte[] final = File.ReadAllBytes(p);
        Assert.Contains(versions, v => v.AsSpan().SequenceEqual(final));
        Assert.Empty(Strays(dir, "par.pkl"));
    }

    [Fact]
    public void A_failing_writer_leaves_the_target_alone_and_deletes_the_temp()
    {
        using var dir = new TempDir();
        string p = dir.File("f.pkl");
        AtomicFile.Write(p, "old"u8);
        var e = Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(p, s =>
        {
            s.Write(new byte[100_000]);
            Assert.Single(Strays(dir, "f.pkl")); // the temp exists while writing ...
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal("boom", e.Message);
        Assert.Equal("old"u8.ToArray(), File.ReadAllBytes(p));
        Assert.Empty(Strays(dir, "f.pkl")); // ... and is gone after the failure
    }

    [Fact]
    public void The_stream_a_writer_gets_can_be_read_back_and_patched()
    {
        using var dir = new TempDir();
        string p = dir.File("rw.h5");
        AtomicFile.Write(p, s =>
        {
            Assert.True(s.CanRead && s.CanWrite && s.CanSeek);
            s.Write("abcdef"u8);
            s.Position = 1;
            var two = new byte[2];
            s.ReadExactly(two);
            Assert.Equal("bc"u8.ToArray(), two);
            s.Position = 0;
            s.Write("X"u8);
            s.SetLength(4);
        });
        Assert.Equal("Xbcd"u8.ToArray(), File.ReadAllBytes(p));
        Assert.Empty(Strays(dir, "rw.h5"));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Overwrite_false_creates_a_new_file_and_refuses_an_existing_one(bool durable)
    {
        using var dir = new TempDir();
        string p = dir.File("once.cfg");
        AtomicFile.Write(p, "first"u8, durable, overwrite: false);
        Assert.Equal("first"u8.ToArray(), File.ReadAllBytes(p));
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(p, "second"u8, durable, overwrite: false));
        Assert.Contains(p, e.Message);
        bool called = false;
        Assert.Throws<IOException>(() => AtomicFile.Write(p, s => { called = true; s.Write("third"u8); }, durable, overwrite: false));
        Assert.False(called); // refused before anything is written
        Assert.Equal("first"u8.ToArray(), File.ReadAllBytes(p));
        Assert.Empty(Strays(dir, "once.cfg"));
    }

    [Fact]
    public void Overwrite_false_does_not_replace_a_target_that_appears_while_writing()
    {
        using var dir = new TempDir();
        string p = dir.File("race.cfg");
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(p, s =>
        {
            s.Write("ours"u8);
            File.WriteAllText(p, "theirs"); // another writer wins the race
        }, overwrite: false));
        Assert.Contains(p, e.Message);
        Assert.Equal("theirs", File.ReadAllText(p));
        Assert.Empty(Strays(dir, "race.cfg"));
    }

    [Fact]
    public void A_failing_rename_deletes_the_temp()
    {
        using var dir = new TempDir();
        // The target is a non-empty folder: rename(2) of a file over it fails (EISDIR).
        string target = dir.File("d.pkl");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "inside"), "x");
        var e = Assert.ThrowsAny<IOException>(() => AtomicFile.Write(target, "new"u8));
        Assert.Contains("rename", e.Message);
        Assert.Empty(Strays(dir, "d.pkl"));
        Assert.True(Directory.Exists(target));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void A_non_durable_replace_swaps_the_names_and_unlinks_the_old_file()
    {
        using var dir = new TempDir();
        string p = dir.File("x.pkl"), temp = dir.File(".x.pkl.tmp.test");
        File.WriteAllText(p, "old");
        File.WriteAllText(temp, "new");
        Assert.True(AtomicFile.Exchange(temp, p));
        Assert.Equal("new", File.ReadAllText(p));
        Assert.False(File.Exists(temp));
        // No target: nothing to swap with; the caller renames.
        File.WriteAllText(temp, "newer");
        Assert.False(AtomicFile.Exchange(temp, dir.File("missing.pkl")));
        Assert.Equal("newer", File.ReadAllText(temp));
        File.Delete(temp);

        // Through Write: a reader that opened the old file keeps its content, the mode is kept, a symbolic link at
        // the target is replaced and the file it pointed to is left alone.
        File.SetUnixFileMode(p, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        using (var reader = new FileStream(p, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
        {
            AtomicFile.Write(p, "third"u8, durable: false, deferWriteBack: true);
            Assert.Equal("new", new StreamReader(reader).ReadToEnd());
        }
        Assert.Equal("third", File.ReadAllText(p));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(p));
        string link = dir.File("link.pkl");
        File.CreateSymbolicLink(link, p);
        AtomicFile.Write(link, "via link"u8, durable: false, deferWriteBack: true);
        Assert.Null(new FileInfo(link).LinkTarget);
        Assert.Equal("via link", File.ReadAllText(link));
        Assert.Equal("third", File.ReadAllText(p));
        Assert.Empty(Strays(dir, "x.pkl"));
        Assert.Empty(Strays(dir, "link.pkl"));
    }

    [Fact]
    public void A_swap_that_meets_a_folder_puts_the_folder_back()
    {
        // A folder that takes the target's name after the writer looked: rename(2) would refuse it, so the swap is undone.
        using var dir = new TempDir();
        string target = dir.File("d.pkl"), temp = dir.File(".d.pkl.tmp.test");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "inside"), "x");
        File.WriteAllText(temp, "new");
        var e = Assert.Throws<IOException>(() => AtomicFile.Exchange(temp, target));
        Assert.Contains("is a folder", e.Message);
        Assert.Equal("x", File.ReadAllText(Path.Combine(target, "inside")));
        Assert.False(File.Exists(temp));
        Assert.False(Directory.Exists(temp));
    }

    [Fact]
    public void Missing_folder_is_an_error_and_missing_file_reads_as_null()
    {
        using var dir = new TempDir();
        Assert.Throws<DirectoryNotFoundException>(() => AtomicFile.Write(Path.Combine(dir.Path, "no", "x.pkl"), "x"u8));
        Assert.Null(AtomicFile.ReadAllBytes(dir.File("missing.pkl")));
        Assert.Null(AtomicFile.ReadAllBytes(Path.Combine(dir.Path, "no", "x.pkl")));
        Assert.Throws<ArgumentException>(() => AtomicFile.Write(dir.Path + "/", "x"u8));
    }

    [Fact]
    public void Directory_fsync_works_and_reports_errors()
    {
        using var dir = new TempDir();
        Posix.FsyncDirectory(dir.Path); // must not throw on a normal folder
        var e = Assert.Throws<IOException>(() => Posix.FsyncDirectory(Path.Combine(dir.Path, "absent")));
        Assert.Contains("absent", e.Message);
        Assert.Contains("errno 2", e.Message); // ENOENT
        File.WriteAllText(dir.File("plain"), "x");
        Assert.Throws<IOException>(() => Posix.FsyncDirectory(dir.File("plain"))); // O_DIRECTORY refuses a file (ENOTDIR)
    }

    [Fact]
    public void ReadAllBytes_reads_large_files_and_files_without_a_size()
    {
        using var dir = new TempDir();
        var big = new byte[3_000_001];
        new Random(5).NextBytes(big);
        string p = dir.File("big");
        AtomicFile.Write(p, big, durable: false);
        Assert.Equal(big, AtomicFile.ReadAllBytes(p));
        // /proc files report length 0 but have content.
        var self = AtomicFile.ReadAllBytes("/proc/self/status");
        Assert.NotNull(self);
        Assert.Contains("Pid:", System.Text.Encoding.ASCII.GetString(self!));
    }
}
