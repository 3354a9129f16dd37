using System.Numerics;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Export;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using static SyConn.Backend.Tests.Export.ExportCli;

namespace SyConn.Backend.Tests.Export;

/// <summary><c>--all -o DIR</c> names files <c>&lt;key&gt;.&lt;ext&gt;</c> made safe: never a path outside DIR, never two keys on one file.</summary>
public class ExportFileNameTests
{
    private static readonly StoreKey[] Hostile =
    [
        "../escape", "a/b", "..", ".", "/abs/path", "", "x\\y", "100%", "%2F", "str_a", "a", ":", "a,b", " ", "\n", "\0",
        "ü/é", "../../../../tmp/evil", "\ud800", "\ud83d\ude00",
        StoreKey.FromPython(new PyTuple(1L, "../t")), StoreKey.FromPython(new PyTuple("a,b")), StoreKey.FromPython(new PyTuple("a", "b")),
        StoreKey.FromPython(new PyTuple()), StoreKey.FromPython(new PyTuple(new PyTuple(1L, 2L), 3L)),
        7, -3, 0, ulong.MaxValue, BigInteger.Pow(10, 40), -BigInteger.Pow(10, 40),
        new string('x', 300), new string('x', 299) + "y", new string('/', 300),
    ];

    [Fact]
    public void Names_are_distinct_single_components_of_bounded_length()
    {
        var names = Hostile.Select(k => ExportFileNames.For(k, "ply")).ToList();
        Assert.Equal(names.Count, names.Distinct(StringComparer.Ordinal).Count());
        foreach (var (k, name) in Hostile.Zip(names))
        {
            Assert.DoesNotContain('/', name);
            Assert.DoesNotContain('\\', name);
            Assert.DoesNotContain('\0', name);
            Assert.True(name.All(c => c is > ' ' and < (char)127), $"key {k}: name '{name}' has a character outside printable ASCII");
            Assert.NotEqual(".", name);
            Assert.NotEqual("..", name);
            Assert.EndsWith(".ply", name);
            Assert.True(Encoding.UTF8.GetByteCount(name) <= 255, $"key {k}: name of {name.Length} bytes");
        }
        Assert.Equal("7.ply", ExportFileNames.For(7, "ply"));
        Assert.Equal("-3.ply", ExportFileNames.For(-3, "ply"));
        Assert.Equal("str_cell.ply", ExportFileNames.For("cell", "ply"));
        Assert.Equal("str_..%2Fescape.swc", ExportFileNames.For("../escape", "swc"));
        Assert.Equal("tuple_1,str_..%2Ft.glb", ExportFileNames.For(StoreKey.FromPython(new PyTuple(1L, "../t")), "glb"));

        using var dir = new TempDir();
        var inner = Path.Combine(dir.Path, "out");
        foreach (var k in Hostile)
            Assert.Equal(inner, Path.GetDirectoryName(ExportFileNames.PathIn(inner + "/", k, "swc")));
    }

    private static readonly StoreKey[] CliKeys =
    [
        "../escape", "a/b", "/abs/path", "..", "../../outside", "x\\y", StoreKey.FromPython(new PyTuple(1L, "../t")), 5, -2,
    ];

    [SkippableFact]
    public void All_writes_every_key_inside_the_folder_whatever_the_key()
    {
        using var dir = new TempDir();
        var meshes = dir.File("mesh_hostile.pkl");
        var skeletons = dir.File("skeleton_hostile.pkl");
        using (var ms = new MeshStorage(meshes, StoreOptions.Writable))
        using (var ss = new SkeletonStorage(skeletons, StoreOptions.Writable))
        {
            foreach (var k in CliKeys)
            {
                ms[k] = [NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 0, 1, 0 })];
                ss[k] = new Skeleton(NdArray.Create(new uint[] { 1, 2, 3, 4, 5, 6 }, 2, 3), NdArray.Create(new float[] { 2, 4 }), NdArray.Create(new uint[] { 0, 1 }, 1, 2));
            }
            ms.Push();
            ss.Push();
        }
        var before = Directory.GetFileSystemEntries(dir.Path).Order(StringComparer.Ordinal).ToList();
        foreach (var (cmd, store, ext) in new[] { ("export-mesh", meshes, "ply"), ("export-mesh", meshes, "obj"), ("export-mesh", meshes, "glb"), ("export-skeleton", skeletons, "swc") })
        {
            var outDir = Path.Combine(dir.Path, "out-" + ext);
            var (o, _) = Ok(cmd, store, "--all", "--format", ext, "-o", outDir);
            var files = Directory.GetFileSystemEntries(outDir).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(CliKeys.Length, files.Count);
            Assert.All(files, f => Assert.True(File.Exists(f) && Path.GetDirectoryName(f) == outDir, $"{f} is not a file directly in {outDir}"));
            Assert.Equal(CliKeys.Select(k => Path.Combine(outDir, ExportFileNames.For(k, ext))).Order(StringComparer.Ordinal), files);
            Assert.All(files, f => Assert.True(new FileInfo(f).Length > 0, $"{f} is empty"));
            Assert.Equal(CliKeys.Length + 1, Lines(o).Length);
        }
        // Nothing appeared beside the output folders: not in the temp folder, not in its parent.
        var after = Directory.GetFileSystemEntries(dir.Path).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(before.Concat(new[] { "ply", "obj", "glb", "swc" }.Select(e => Path.Combine(dir.Path, "out-" + e))).Order(StringComparer.Ordinal), after);
        Assert.False(File.Exists(Path.Combine(Path.GetDirectoryName(dir.Path)!, "outside.ply")));
        Assert.False(Directory.Exists("/abs"));
    }

    [SkippableFact]
    public void All_replaces_a_symbolic_link_in_the_folder_instead_of_writing_through_it()
    {
        using var dir = new TempDir();
        var outDir = Directory.CreateDirectory(dir.File("out")).FullName;
        var victim = dir.File("victim.txt");
        File.WriteAllText(victim, "keep me");
        File.CreateSymbolicLink(Path.Combine(outDir, "1.swc"), victim);
        Ok("export-skeleton", Shared.PyFixture("skeleton_storage.pkl"), "--all", "--format", "swc", "-o", outDir);
        Assert.Equal("keep me", File.ReadAllText(victim));
        Assert.Null(new FileInfo(Path.Combine(outDir, "1.swc")).LinkTarget);
        Assert.StartsWith("# skeleton 1 of ", File.ReadAllText(Path.Combine(outDir, "1.swc")));
    }
}
