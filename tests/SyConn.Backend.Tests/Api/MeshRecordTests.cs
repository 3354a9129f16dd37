using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Api;

public class MeshRecordTests
{
    private static Mesh Square() => new(
        NdArray.Create(new long[] { 0, 1, 2, 0, 2, 3 }, 2, 3),
        NdArray.Create(new double[] { 0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0 }, 4, 3),
        NdArray.Create(new float[] { 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1 }, 4, 3),
        NdArray.Create(Enumerable.Range(0, 16).Select(i => (byte)(i * 10)).ToArray(), 4, 4));

    [Fact]
    public void Shaped_arrays_convert_to_and_from_the_flat_layout_exactly()
    {
        var m = Square();
        Assert.Equal(new long[] { 2, 3 }, m.Indices.ShapeArray);
        Assert.Equal("<u4", m.Indices.DType.Str);
        Assert.Equal("<f4", m.Vertices.DType.Str);
        Assert.Equal(2, m.TriangleCount);
        Assert.Equal(4, m.VertexCount);
        var flat = m.ToFlat();
        Assert.Equal(new uint[] { 0, 1, 2, 0, 2, 3 }, flat[0].AsSpan<uint>().ToArray());
        Assert.Equal(new long[] { 12 }, flat[1].ShapeArray);
        Assert.Equal(new long[] { 16 }, flat[3].ShapeArray);
        Assert.Equal(m, Mesh.FromFlat(flat));
        Assert.Equal(m.Colours!.AsSpan<byte>().ToArray(), flat[3].AsSpan<byte>().ToArray());

        var bare = new Mesh(NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(new float[9]));
        Assert.False(bare.HasNormals);
        Assert.Null(bare.Colours);
        Assert.Equal(new long[] { 0, 3 }, bare.Normals.ShapeArray);
        Assert.Equal(0, bare.ToFlat()[3].Size);
        var labels = new Mesh(NdArray.Create(new uint[] { 0, 1, 2 }), NdArray.Create(new float[9]), null, NdArray.Create(new byte[] { 1, 2, 3 }));
        Assert.Equal(new long[] { 3, 1 }, labels.Colours!.ShapeArray);
    }

    [Fact]
    public void Values_that_do_not_fit_the_layout_are_refused()
    {
        var v = NdArray.Create(new float[9], 3, 3);
        Assert.Throws<OverflowException>(() => new Mesh(NdArray.Create(new long[] { 0, 1, -1 }), v));
        Assert.Throws<OverflowException>(() => new Mesh(NdArray.Create(new long[] { 0, 1, 1L << 32 }), v));
        Assert.Throws<InvalidCastException>(() => new Mesh(NdArray.Create(new double[] { 0, 1, 2 }), v));
        Assert.Throws<ArgumentException>(() => new Mesh(NdArray.Create(new uint[] { 0, 1 }), v));
        Assert.Throws<ArgumentException>(() => new Mesh(NdArray.Create(new uint[] { 0, 1, 2 }), v, NdArray.Create(new float[6])));
        Assert.Throws<OverflowException>(() => new Mesh(NdArray.Create(new uint[] { 0, 1, 2 }), v, null, NdArray.Create(new int[] { 1, 2, 256 })));
        Assert.Throws<ArgumentException>(() => Mesh.FromFlat([v]));
    }

    [Fact]
    public void MeshStorage_round_trips_a_mesh_with_colours_whatever_load_colarr_says()
    {
        using var dir = new TempDir();
        var path = dir.File("mesh.pkl");
        foreach (var compress in new[] { false, true })
        {
            using (var ms = MeshStorage.Open(path, StoreOptions.Writable, compress: compress))
            {
                ms.SetMesh(7, Square());
                ms.Push();
            }
            using var r = MeshStorage.Open(path);
            Assert.Equal(3, r[7].Length);                  // the upstream getter without load_colarr
            var back = r.GetMesh(7);
            Assert.Equal(Square(), back);
            Assert.Equal(new long[] { 4, 4 }, back.Colours!.ShapeArray);
            Assert.True(r.TryGetMesh(7, out _));
            Assert.False(r.TryGetMesh(8, out _));
            Assert.Throws<KeyNotFoundException>(() => r.GetMesh(8));
        }
    }

    [SkippableFact]
    public void Skeleton_records_give_shaped_views_of_the_flat_fixture_arrays()
    {
        using var ss = SkeletonStorage.Open(Shared.PyFixture("skeleton_storage.pkl"));
        var key = ss.Keys.First();
        var s = ss[key];
        Assert.Equal(1, s.Nodes.NDim);                     // SyConn returns them flat
        Assert.Equal(new long[] { s.Nodes.Size / 3, 3 }, s.NodesShaped.ShapeArray);
        Assert.Equal(s.NodeCount, s.NodesShaped.Shape[0]);
        Assert.Equal(new long[] { s.Edges.Size / 2, 2 }, s.EdgesShaped.ShapeArray);
        Assert.Equal(s.Nodes.AsSpan<uint>()[3], s.NodesShaped.GetValue<uint>(1, 0));
        Assert.Equal(s.Diameters.Size, s.NodeCount);
    }

    [SkippableFact]
    public void Python_reads_a_mesh_written_through_the_record()
    {
        Infrastructure.Python.Require("numpy", "lz4");
        using var dir = new TempDir();
        foreach (var compress in new[] { false, true })
        {
            using var ms = MeshStorage.Open(dir.File(compress ? "mesh_lz4.pkl" : "mesh_raw.pkl"), StoreOptions.Writable, compress: compress);
            ms.SetMesh(ulong.MaxValue, Square());
            ms.Push();
        }
        string script = PyTypedJson.Source + PyTypedJson.UpstreamGetters + """

import sys, os
out = {}
for n in ('mesh_raw.pkl', 'mesh_lz4.pkl'):
    with open(os.path.join(sys.argv[1], n), 'rb') as f: D = pickle.load(f)
    ind, vert, norm, col = mesh_get(D, 2**64 - 1, True)
    out[n] = {'ind': ind.reshape(-1, 3).tolist(), 'vert': vert.reshape(-1, 3).tolist(), 'norm': norm.reshape(-1, 3).tolist(),
              'col': col.reshape(len(vert) // 3, -1).tolist(), 'dtypes': [a.dtype.str for a in (ind, vert, norm, col)]}
print(json.dumps(out))
""";
        var got = JsonNode.Parse(Infrastructure.Python.RunChecked(script, [dir.Path]))!.AsObject();
        var m = Square();
        foreach (var (name, v) in got)
        {
            Assert.Equal("[[0,1,2],[0,2,3]]", v!["ind"]!.ToJsonString());
            Assert.Equal("[[0.0,0.0,0.0],[1.0,0.0,0.0],[1.0,1.0,0.0],[0.0,1.0,0.0]]", v["vert"]!.ToJsonString());
            Assert.Equal("[[0.0,0.0,1.0],[0.0,0.0,1.0],[0.0,0.0,1.0],[0.0,0.0,1.0]]", v["norm"]!.ToJsonString());
            Assert.Equal(m.Colours!.GetValue<byte>(3, 2), (byte)v["col"]![3]![2]!);
            Assert.Equal(new[] { "<u4", "<f4", "<f4", "|u1" }, v["dtypes"]!.AsArray().Select(x => (string)x!));
        }
        Assert.Equal(2, got.Count);
    }
}
