using System.Numerics;
using System.Text.Json.Nodes;
using SharpGLTF.Schema2;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using static SyConn.Backend.Tests.Export.ExportCli;

namespace SyConn.Backend.Tests.Export;

/// <summary>
/// <c>export-mesh</c> on the Python-written mesh fixtures (and meshes built here), checked by independent readers:
/// Debian's meshio for PLY and OBJ, the Khronos glTF validator and SharpGLTF for GLB.
/// </summary>
public class MeshExportTests
{
    private static readonly string[] Fixtures = ["mesh_storage_raw.pkl", "mesh_storage_lz4.pkl", "mesh_storage_legacy.pkl"];

    /// <summary>A mesh as the store's getter returns it (with load_colarr).</summary>
    private sealed record Stored(uint[] Indices, float[] Vertices, float[] Normals, byte[] Colours)
    {
        public int VertexCount => Vertices.Length / 3;
        public int FaceCount => Indices.Length / 3;
    }

    private static Dictionary<string, Stored> Read(string path)
    {
        using var ms = new MeshStorage(path, loadColArr: true);
        Assert.NotEmpty(ms.Keys);
        return ms.Keys.ToDictionary(k => k.ToString(), k =>
        {
            var a = ms[k];
            return new Stored(a[0].ToArray<uint>(), a[1].ToArray<float>(), a[2].ToArray<float>(), a[3].ToArray<byte>());
        });
    }

    /// <summary>Exports every key of <paramref name="store"/> into a new folder below <paramref name="dir"/>; returns key text -> file.</summary>
    private static Dictionary<string, string> ExportAll(TempDir dir, string store, string format, params string[] extra)
    {
        var outDir = dir.File($"{Path.GetFileNameWithoutExtension(store)}-{format}{string.Concat(extra)}");
        var (o, _) = Ok(["export-mesh", store, "--all", "--format", format, "-o", outDir, .. extra]);
        var stored = Read(store);
        Assert.Contains($"exported {stored.Count} meshes to {outDir}", o, StringComparison.Ordinal);
        var files = Directory.GetFiles(outDir).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(stored.Count, files.Count);
        return stored.Keys.ToDictionary(k => k, k =>
        {
            var f = Path.Combine(outDir, k + "." + format);
            Assert.True(File.Exists(f), $"no {f}");
            return f;
        });
    }

    private static void AssertFloats(float[] expected, double[] actual, string what)
    {
        Assert.True(expected.Length == actual.Length, $"{what}: {actual.Length} values, expected {expected.Length}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(expected[i] == (float)actual[i], $"{what}[{i}]: {actual[i]} read, {expected[i]} stored");
    }

    [SkippableFact]
    public void Ply_and_obj_of_every_fixture_mesh_load_in_meshio_with_the_stored_counts()
    {
        Meshio.Require();
        using var dir = new TempDir();
        var checkedFiles = 0;
        foreach (var fixture in Fixtures)
        {
            var path = Shared.PyFixture(fixture);
            var stored = Read(path);
            foreach (var format in new[] { "ply", "obj" })
            {
                var files = ExportAll(dir, path, format);
                var read = Meshio.Read(files.Values);
                foreach (var (key, file) in files)
                {
                    var m = stored[key];
                    var r = read[file];
                    string what = $"{fixture} key {key} as {format}";
                    Assert.True(m.VertexCount == (int)r["points"]!, $"{what}: meshio reads {r["points"]} vertices, the store has {m.VertexCount}");
                    int triangles = r["cells"]!["triangle"] is { } t ? (int)t : 0;
                    Assert.True(m.FaceCount == triangles, $"{what}: meshio reads {triangles} triangles, the store has {m.FaceCount}");
                    Assert.True(r["cells"]!.AsObject().Count <= 1, $"{what}: cells other than triangles: {r["cells"]}");
                    AssertFloats(m.Vertices, Meshio.Doubles(r["xyz"]), $"{what}: vertices");
                    Assert.Equal(m.Indices.Select(i => (long)i), Meshio.Longs(r["triangles"]));
                    var pd = r["point_data"]!.AsObject();
                    if (m.Normals.Length == m.Vertices.Length && m.Normals.Length > 0)
                    {
                        if (format == "ply")
                        {
                            var n = Meshio.Doubles(pd["nx"]).Zip(Meshio.Doubles(pd["ny"]), Meshio.Doubles(pd["nz"])).SelectMany(v => new[] { v.First, v.Second, v.Third }).ToArray();
                            AssertFloats(m.Normals, n, $"{what}: normals");
                        }
                        else AssertFloats(m.Normals, Meshio.Doubles(pd["obj:vn"]), $"{what}: normals");
                    }
                    else
                    {
                        Assert.False(pd.ContainsKey("nx") || pd.ContainsKey("obj:vn"), $"{what}: normals written though none are stored");
                    }
                    // Without --load-colarr nothing of the colour/label array is written.
                    Assert.False(pd.ContainsKey("label") || pd.ContainsKey("red"), $"{what}: colours without --load-colarr");
                    Assert.Equal(format == "obj" ? (m.VertexCount > 0 ? 3 : 0) : 3, (int)r["columns"]!);
                    checkedFiles++;
                }
            }
        }
        Assert.Equal(2 * (5 + 5 + 3), checkedFiles);

        // One key to a named file (no --all) is the same file as --all writes for it.
        var single = dir.File("one.ply");
        var (o, _) = Ok("export-mesh", Shared.PyFixture("mesh_storage_lz4.pkl"), "3", "--format", "ply", "-o", single);
        Assert.Equal($"wrote mesh 3 (12 vertices, 8 triangles) to {single}", o.TrimEnd('\n'));
        Assert.Equal(File.ReadAllBytes(Path.Combine(dir.Path, "mesh_storage_lz4-ply", "3.ply")), File.ReadAllBytes(single));
    }

    [SkippableFact]
    public void Glb_of_every_fixture_mesh_passes_the_khronos_validator_and_loads_back_in_sharpgltf()
    {
        GltfValidator.Require();
        using var dir = new TempDir();
        int meshes = 0;
        foreach (var fixture in Fixtures)
        {
            var path = Shared.PyFixture(fixture);
            var stored = Read(path);
            foreach (var colarr in new[] { false, true })
            {
                var files = ExportAll(dir, path, "glb", colarr ? ["--load-colarr"] : []);
                var reports = GltfValidator.Validate(files.Values);
                foreach (var (key, file) in files)
                {
                    var m = stored[key];
                    string what = $"{fixture} key {key} as glb{(colarr ? " with colours" : "")}";
                    var rep = reports[file];
                    Assert.True((int)rep["errors"]! == 0, $"{what}: the glTF validator reports errors: {rep["messages"]!.ToJsonString()}");
                    Assert.Equal(m.VertexCount, (int)rep["vertices"]!);
                    Assert.Equal(m.FaceCount, (int)rep["triangles"]!);
                    AssertSharpGltfReads(file, m, colarr, what);
                    meshes++;
                }
            }
        }
        Assert.Equal(2 * (5 + 5 + 3), meshes);
    }

    /// <summary>The GLB read back with SharpGLTF: the stored counts, positions, indices, unit normals along the stored ones, colours.</summary>
    private static void AssertSharpGltfReads(string file, Stored m, bool colours, string what)
    {
        var model = ModelRoot.Load(file);
        if (m.VertexCount == 0)
        {
            Assert.Empty(model.LogicalMeshes);
            return;
        }
        var prim = Assert.Single(Assert.Single(model.LogicalMeshes).Primitives);
        Assert.Same(model.LogicalMeshes[0], Assert.Single(model.DefaultScene.VisualChildren).Mesh);
        var pos = prim.GetVertexAccessor("POSITION").AsVector3Array();
        Assert.True(pos.Count == m.VertexCount, $"{what}: SharpGLTF reads {pos.Count} vertices, the store has {m.VertexCount}");
        for (int i = 0; i < pos.Count; i++)
            Assert.Equal(new Vector3(m.Vertices[i * 3], m.Vertices[i * 3 + 1], m.Vertices[i * 3 + 2]), pos[i]);
        var idx = prim.GetIndices();
        Assert.True(idx.Count == m.Indices.Length, $"{what}: SharpGLTF reads {idx.Count / 3} triangles, the store has {m.FaceCount}");
        Assert.Equal(m.Indices, idx.ToArray());
        Assert.Equal(PrimitiveType.TRIANGLES, prim.DrawPrimitiveType);

        var normals = prim.GetVertexAccessor("NORMAL");
        if (m.Normals.Length == m.Vertices.Length)
        {
            Assert.NotNull(normals);
            var n = normals.AsVector3Array();
            for (int i = 0; i < n.Count; i++)
            {
                var s = Vector3.Normalize(new Vector3(m.Normals[i * 3], m.Normals[i * 3 + 1], m.Normals[i * 3 + 2]));
                Assert.True(MathF.Abs(n[i].Length() - 1) < 1e-5f, $"{what}: normal {i} has length {n[i].Length()}");
                Assert.True(Vector3.Distance(s, n[i]) < 1e-5f, $"{what}: normal {i} is {n[i]}, stored direction {s}");
            }
        }
        else Assert.Null(normals);

        var colour = prim.GetVertexAccessor("COLOR_0");
        if (colours && m.Colours.Length == 3 * m.VertexCount)
        {
            Assert.NotNull(colour);
            var c = colour.AsColorArray().SelectMany(v => new[] { v.X, v.Y, v.Z, v.W }).Select(x => (byte)MathF.Round(x * 255)).ToArray();
            var expected = Enumerable.Range(0, m.VertexCount).SelectMany(i => new byte[] { m.Colours[i * 3], m.Colours[i * 3 + 1], m.Colours[i * 3 + 2], 255 });
            Assert.Equal(expected, c);
        }
        else Assert.Null(colour); // labels (one value per vertex) have no glTF attribute
    }

    [SkippableFact]
    public void Load_colarr_writes_colours_as_vertex_colours_and_labels_as_a_ply_property()
    {
        Meshio.Require();
        GltfValidator.Require();
        using var dir = new TempDir();
        var raw = Shared.PyFixture("mesh_storage_raw.pkl");
        var stored = Read(raw);
        Assert.Equal(12, stored["1"].Colours.Length); // one value per vertex: labels
        Assert.Equal(36, stored["4"].Colours.Length); // three per vertex: RGB

        // An RGBA mesh with transparency, built here (the fixtures have labels and RGB only).
        var rgbaStore = dir.File("mesh_rgba.pkl");
        byte[] rgba = [255, 0, 0, 255, 0, 255, 0, 128, 0, 0, 255, 0, 10, 20, 30, 40];
        using (var ms = new MeshStorage(rgbaStore, StoreOptions.Writable))
        {
            ms[7] = [NdArray.Create(new uint[] { 0, 1, 2, 0, 2, 3 }), NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0 }),
                     NdArray.Create(new float[] { 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1 }), NdArray.Create(rgba)];
            ms.Push();
        }

        var files = new Dictionary<string, string>();
        var notes = new Dictionary<string, string>();
        foreach (var (store, key) in new[] { (raw, "1"), (raw, "4"), (rgbaStore, "7") })
            foreach (var format in new[] { "ply", "obj", "glb" })
            {
                var f = dir.File($"k{key}.{format}");
                var (_, err) = Ok("export-mesh", store, key, "--format", format, "--load-colarr", "-o", f);
                files[$"{key}.{format}"] = f;
                notes[$"{key}.{format}"] = err;
            }

        var read = Meshio.Read(files.Where(kv => !kv.Key.EndsWith(".glb", StringComparison.Ordinal)).Select(kv => kv.Value));
        var plyLabels = read[files["1.ply"]]["point_data"]!.AsObject();
        Assert.Equal(stored["1"].Colours, Meshio.Bytes(plyLabels["label"]));
        Assert.False(plyLabels.ContainsKey("red"));
        Assert.Contains("labels left out", notes["1.obj"], StringComparison.Ordinal);
        Assert.Contains("labels left out", notes["1.glb"], StringComparison.Ordinal);
        Assert.DoesNotContain("labels left out", notes["1.ply"], StringComparison.Ordinal);
        Assert.StartsWith("syconn-store: note: ", notes["1.obj"]);
        Assert.Equal(3, (int)read[files["1.obj"]]["columns"]!);

        var plyRgb = read[files["4.ply"]]["point_data"]!.AsObject();
        var c4 = stored["4"].Colours;
        Assert.Equal(c4.Where((_, i) => i % 3 == 0), Meshio.Bytes(plyRgb["red"]));
        Assert.Equal(c4.Where((_, i) => i % 3 == 1), Meshio.Bytes(plyRgb["green"]));
        Assert.Equal(c4.Where((_, i) => i % 3 == 2), Meshio.Bytes(plyRgb["blue"]));
        Assert.All(Meshio.Bytes(plyRgb["alpha"]), a => Assert.Equal(255, a));
        Assert.False(plyRgb.ContainsKey("label"));
        var objRgb = read[files["4.obj"]];
        Assert.Equal(6, (int)objRgb["columns"]!);
        Assert.Equal(c4.Select(b => Math.Round(b / 255.0, 5)), Meshio.Doubles(objRgb["extra"]).Select(x => Math.Round(x, 5)));
        Assert.Equal("", notes["4.obj"]);

        var plyRgba = read[files["7.ply"]]["point_data"]!.AsObject();
        Assert.Equal(rgba.Where((_, i) => i % 4 == 3), Meshio.Bytes(plyRgba["alpha"]));
        Assert.Equal(rgba.Where((_, i) => i % 4 == 0), Meshio.Bytes(plyRgba["red"]));
        Assert.Equal(rgba.Where((_, i) => i % 4 == 1), Meshio.Bytes(plyRgba["green"]));
        Assert.Contains("no alpha channel", notes["7.obj"], StringComparison.Ordinal);
        Assert.Equal(4, (int)read[files["7.ply"]]["points"]!);

        var reports = GltfValidator.Validate([files["1.glb"], files["4.glb"], files["7.glb"]]);
        Assert.All(reports.Values, r => Assert.True((int)r["errors"]! == 0, r.ToJsonString()));
        var glb = ModelRoot.Load(files["7.glb"]).LogicalMeshes[0].Primitives[0];
        var col = glb.GetVertexAccessor("COLOR_0");
        Assert.Equal(DimensionType.VEC4, col.Dimensions);
        Assert.True(col.Normalized);
        var got = col.AsColorArray().SelectMany(v => new[] { v.X, v.Y, v.Z, v.W }).Select(x => (byte)MathF.Round(x * 255)).ToArray();
        Assert.Equal(rgba, got);
        Assert.Null(ModelRoot.Load(files["1.glb"]).LogicalMeshes[0].Primitives[0].GetVertexAccessor("COLOR_0"));
    }

    [SkippableFact]
    public void Bad_input_is_exit_1_and_bad_usage_exit_2_with_one_line()
    {
        using var dir = new TempDir();
        var raw = Shared.PyFixture("mesh_storage_raw.pkl");
        var skel = Shared.PyFixture("skeleton_storage.pkl");
        var f = dir.File("x.ply");

        Assert.Contains("key 99", Fails(1, "export-mesh", raw, "99", "--format", "ply", "-o", f), StringComparison.Ordinal);
        Assert.Contains("not a MeshStorage entry", Fails(1, "export-mesh", skel, "1", "--format", "ply", "-o", f), StringComparison.Ordinal);
        Assert.Contains("not a MeshStorage entry", Fails(1, "export-mesh", skel, "--all", "--format", "glb", "-o", dir.File("all")), StringComparison.Ordinal);
        Fails(1, "export-mesh", Shared.PyFixture("no_such_mesh.pkl"), "1", "--format", "ply", "-o", f);
        Fails(1, "export-mesh", raw, "1", "--format", "ply", "-o", dir.File("missing-folder/x.ply"));
        Fails(2, "export-mesh", raw, "1", "--format", "stl", "-o", f);
        Fails(2, "export-mesh", raw, "1", "-o", f);
        Fails(2, "export-mesh", raw, "--format", "ply", "-o", f);
        Fails(2, "export-mesh", raw, "1", "--all", "--format", "ply", "-o", dir.Path);
        Fails(2, "export-mesh", raw, "--all", "--format", "ply");
        Fails(2, "export-mesh", raw, "not-a-key", "--format", "ply", "-o", f);

        // Arrays that do not make a mesh: an index beyond the vertices, a colour array of the wrong length.
        var bad = dir.File("mesh_bad.pkl");
        using (var ms = new MeshStorage(bad, StoreOptions.Writable))
        {
            ms[1] = [NdArray.Create(new uint[] { 0, 1, 3 }), NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 0, 1, 0 })];
            ms[2] = [NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(new float[] { 0, 0, 0, 1, 0, 0, 0, 1, 0 }), NdArray.Zeros(DType.Float32, 0), NdArray.Create(new byte[] { 1, 2 })];
            ms.Push();
        }
        var line = Fails(1, "export-mesh", bad, "1", "--format", "obj", "-o", f);
        Assert.Contains("outside its 3 vertices", line, StringComparison.Ordinal);
        Assert.EndsWith(": " + bad, line);
        Assert.Contains("colour/label values", Fails(1, "export-mesh", bad, "2", "--format", "ply", "--load-colarr", "-o", f), StringComparison.Ordinal);
        Ok("export-mesh", bad, "2", "--format", "ply", "-o", f); // without --load-colarr the colours are not read
        Assert.False(File.Exists(dir.File("x.obj")));
    }

    [Fact]
    public void Help_shows_the_syntax_and_an_example()
    {
        var (o, _) = Ok("export-mesh", "--help");
        Assert.Contains("Examples:", o, StringComparison.Ordinal);
        Assert.Contains("syconn-store export-mesh mesh.pkl 5 --format glb -o cell5.glb", o, StringComparison.Ordinal);
        Assert.Contains("--load-colarr", o, StringComparison.Ordinal);
        Assert.Contains("--all", o, StringComparison.Ordinal);
        (o, _) = Ok("export-skeleton", "--help");
        Assert.Contains("syconn-store export-skeleton skeleton.pkl 5 --format swc --scale 10,10,25 -o cell5.swc", o, StringComparison.Ordinal);
    }

    [Fact]
    public void Glb_of_normals_that_cannot_be_unit_leaves_them_out_and_points_without_triangles()
    {
        var zero = SyConn.Backend.Export.ExportMesh.Create([0, 1, 2], [0, 0, 0, 1, 0, 0, 0, 1, 0], [0, 0, 1, 0, 0, 0, 0, 0, 2]);
        using var s = new MemoryStream();
        var notes = SyConn.Backend.Export.MeshWriter.Write(zero, SyConn.Backend.Export.MeshFormat.Glb, s, "m");
        Assert.Contains(notes, n => n.Contains("normals left out", StringComparison.Ordinal));
        var prim = ModelRoot.ParseGLB(s.ToArray()).LogicalMeshes[0].Primitives[0];
        Assert.Null(prim.GetVertexAccessor("NORMAL"));

        var points = SyConn.Backend.Export.ExportMesh.Create([], [0, 0, 0, 1, 0, 0]);
        using var p = new MemoryStream();
        SyConn.Backend.Export.MeshWriter.Write(points, SyConn.Backend.Export.MeshFormat.Glb, p, "pts");
        var pp = ModelRoot.ParseGLB(p.ToArray()).LogicalMeshes[0].Primitives[0];
        Assert.Equal(PrimitiveType.POINTS, pp.DrawPrimitiveType);
        Assert.Equal(2, pp.GetVertexAccessor("POSITION").Count);
    }
}
