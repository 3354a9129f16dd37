using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Storage;

/// <summary>The file side of the npy/npz codecs: errors name the path, writes are atomic.</summary>
public class NpyFileTests
{
    private static string[] Strays(TempDir dir) => Directory.GetFiles(dir.Path, ".*.tmp.*");

    [Fact]
    public void Missing_files_are_FileNotFoundException_naming_the_path()
    {
        using var dir = new TempDir();
        foreach (var p in new[] { dir.File("absent.npy"), Path.Combine(dir.Path, "no", "such", "a.npz") })
        {
            var e1 = Assert.Throws<FileNotFoundException>(() => NpyFile.Read(p));
            Assert.Contains(p, e1.Message);
            var e2 = Assert.Throws<FileNotFoundException>(() => NpzFile.OpenRead(p));
            Assert.Contains(p, e2.Message);
            Assert.Throws<FileNotFoundException>(() => NpzFile.ReadAll(p));
        }
    }

    [Fact]
    public void Corrupt_files_are_InvalidDataException_naming_the_path()
    {
        using var dir = new TempDir();
        string p = dir.File("junk.npy");
        File.WriteAllText(p, "not numpy at all");
        Assert.Contains(p, Assert.Throws<InvalidDataException>(() => NpyFile.Read(p)).Message);
        Assert.Contains(p, Assert.Throws<InvalidDataException>(() => NpzFile.OpenRead(p)).Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Writes_round_trip_and_leave_no_temp_files(bool durable)
    {
        using var dir = new TempDir();
        var a = NdArray.Create(new ulong[] { 1, 2, ulong.MaxValue, 4 }, 2, 2);
        NpyFile.Write(dir.File("a.npy"), a, durable);
        Assert.True(a.Equals(NpyFile.Read(dir.File("a.npy"))));
        NpzFile.Write(dir.File("a.npz"), [new("x", a), new("y", NdArray.Create(new[] { 1.5 }))], compress: true, durable: durable);
        using (var r = NpzFile.OpenRead(dir.File("a.npz")))
        {
            Assert.Equal(["x", "y"], r.Keys);
            Assert.True(a.Equals(r.Read("x")));
        }
        Assert.Equal(["x", "y"], NpzFile.ReadAll(dir.File("a.npz")).Keys);
        Assert.Empty(Strays(dir));
    }

    [Fact]
    public void A_failed_write_keeps_the_old_file()
    {
        using var dir = new TempDir();
        var old = NdArray.Create(new long[] { 7, 8, 9 });
        NpyFile.Write(dir.File("k.npy"), old);
        NpzFile.Write(dir.File("k.npz"), [new("old", old)]);
        var objects = NdArray.FromObjects([1], ["not storable in .npy"]);
        Assert.Throws<ArgumentException>(() => NpyFile.Write(dir.File("k.npy"), objects));
        Assert.Throws<ArgumentException>(() => NpzFile.Write(dir.File("k.npz"), [new("a", old), new("a", old)])); // repeated name
        Assert.Throws<ArgumentException>(() => NpzFile.Write(dir.File("k.npz"), [new("b", objects)]));
        Assert.True(old.Equals(NpyFile.Read(dir.File("k.npy"))));
        Assert.Equal(["old"], NpzFile.ReadAll(dir.File("k.npz")).Keys);
        Assert.Empty(Strays(dir));
    }
}
