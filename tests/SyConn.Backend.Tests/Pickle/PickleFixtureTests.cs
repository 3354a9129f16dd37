using System.Text.Json.Nodes;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>Every pickle fixture loads to exactly the MANIFEST's <c>internal</c> tree, and writing it again reproduces the file.</summary>
public class PickleFixtureTests
{
    public static readonly string[] PickleFixtures =
    [
        "attrdict_p5.pkl", "attrdict_p4.pkl", "attrdict_p2.pkl",
        "numpy_zoo_p5.pkl", "numpy_zoo_p4.pkl", "numpy_zoo_p2.pkl",
        "python_zoo_p5.pkl", "python_zoo_p2.pkl", "numpy2_style_p5.pkl",
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl",
        "compressed_storage_empty.pkl", "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl",
        "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_class.pkl", "voxel_storage_dyn.pkl",
    ];

    /// <summary>
    /// Fixtures that <c>Dump(Load(file), protocol)</c> reproduces byte for byte. The others hold something
    /// that numpy itself does not write back the same way after loading it: a non-contiguous view
    /// (<c>attrdict_p5</c>, <c>numpy_zoo_p5</c>: pickled through <c>_reconstruct</c>, loaded as a contiguous
    /// array, written again with <c>_frombuffer</c>), a big-endian <c>_reconstruct</c> array that loading
    /// converts to native order (<c>numpy_zoo_p4</c>, <c>numpy_zoo_p2</c>), or numpy-2 names and the 'K'
    /// form (<c>numpy2_style_p5</c>; we write numpy-1 names). Those are checked by content instead.
    /// </summary>
    public static readonly string[] ByteExact =
    [
        "attrdict_p4.pkl", "attrdict_p2.pkl",
        "python_zoo_p5.pkl", "python_zoo_p2.pkl",
        "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl",
        "compressed_storage_empty.pkl", "mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl",
        "skeleton_storage.pkl", "voxel_storage_l.pkl", "voxel_storage_class.pkl", "voxel_storage_dyn.pkl",
    ];

    public static TheoryData<string> All => new(PickleFixtures);
    public static TheoryData<string> Exact => new(ByteExact);

    internal static byte[] Read(string name)
    {
        var path = Shared.PyFixture(name);
        Requires.That(File.Exists(path), $"fixture {path}");
        return File.ReadAllBytes(path);
    }

    [SkippableTheory]
    [MemberData(nameof(All))]
    public void Fixture_loads_to_the_manifest_internal_tree(string name)
    {
        var value = Formats.Pickle.Pickle.Load(Read(name), sourceName: name);
        var expected = Manifest.File_(name)["internal"];
        TypedJsonAssert.Equal(expected, TypedJson.ToJson(value), name);
    }

    [SkippableTheory]
    [MemberData(nameof(All))]
    public void Fixture_written_again_loads_to_the_same_tree(string name)
    {
        var file = Read(name);
        int proto = file[1];
        var again = Formats.Pickle.Pickle.Load(Formats.Pickle.Pickle.Dump(Formats.Pickle.Pickle.Load(file), Math.Max(2, proto)));
        TypedJsonAssert.Equal(Manifest.File_(name)["internal"], TypedJson.ToJson(again), name + " (written again)");
    }

    [SkippableTheory]
    [MemberData(nameof(Exact))]
    public void Fixture_written_again_is_byte_identical(string name)
    {
        var file = Read(name);
        int proto = file[1];
        var written = Formats.Pickle.Pickle.Dump(Formats.Pickle.Pickle.Load(file), proto);
        int diff = 0;
        while (diff < Math.Min(file.Length, written.Length) && file[diff] == written[diff]) diff++;
        Assert.True(diff == file.Length && written.Length == file.Length,
            $"{name}: rewritten pickle differs at byte {diff} (file {file.Length} bytes, written {written.Length})");
    }

    [SkippableTheory]
    [InlineData("truncated.pkl", "offset 592")]
    [InlineData("empty_file.pkl", "offset 0")]
    public void Truncated_and_empty_files_are_errors_naming_the_offset(string name, string where)
    {
        var data = Read(name);
        var e = Assert.Throws<InvalidDataException>(() => Formats.Pickle.Pickle.Load(data, sourceName: name));
        Assert.Contains(where, e.Message);
        Assert.Contains(name, e.Message);
    }

    [SkippableFact]
    public void Loaded_bytes_share_the_input_buffer()
    {
        var data = Read("numpy_zoo_p5.pkl");
        var d = (PyDict)Formats.Pickle.Pickle.Load(data);
        var a = (SyConn.Backend.Arrays.NdArray)d["large_f8_9000"];
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<byte>(a.Data, out var seg));
        Assert.Same(data, seg.Array);
    }

    [SkippableFact]
    public void Memo_references_are_the_same_object()
    {
        var d = (PyDict)Formats.Pickle.Pickle.Load(Read("python_zoo_p5.pkl"));
        var shared = (PyList)d["shared_refs"];
        Assert.Same(shared[0], shared[1]);
    }

    [SkippableFact]
    public void Dump_command_prints_the_typed_json()
    {
        var path = Shared.PyFixture("compressed_storage.pkl");
        Requires.That(File.Exists(path), path);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["dump", path], o, e);
        Assert.True(code == 0, e.ToString());
        TypedJsonAssert.Equal(Manifest.File_("compressed_storage.pkl")["internal"], JsonNode.Parse(o.ToString()));
    }

    [SkippableTheory]
    [InlineData("truncated.pkl", 1)]
    [InlineData("no_such_file.pkl", 1)]
    public void Dump_command_reports_errors_in_one_line(string name, int exitCode)
    {
        var path = Shared.PyFixture(name);
        var o = new StringWriter();
        var e = new StringWriter();
        int code = SyConn.Backend.Cli.Cli.Run(["dump", path], o, e);
        Assert.Equal(exitCode, code);
        Assert.Equal("", o.ToString());
        Assert.Single(e.ToString().TrimEnd('\n').Split('\n'));
    }
}
