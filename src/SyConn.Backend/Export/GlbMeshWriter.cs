using System.Globalization;
using System.Runtime.InteropServices;
using SharpGLTF.Memory;
using SharpGLTF.Schema2;

namespace SyConn.Backend.Export;

/// <summary>
/// glTF 2.0 binary (GLB) through SharpGLTF: one scene, one node, one mesh with one primitive holding POSITION
/// (float VEC3 with its bounds), NORMAL (float VEC3, unit length), COLOR_0 (normalised unsigned byte VEC4) and
/// uint32 triangle indices.
/// </summary>
/// <remarks>
/// glTF requires unit normals: stored normals are rescaled to unit length (with a note), and left out (with a note)
/// when one of them has zero length or is not finite. Labels have no glTF attribute and are left out with a note.
/// A mesh without vertices becomes a scene without nodes (glTF accessors cannot be empty); vertices without
/// triangles become a point primitive.
/// </remarks>
internal static class GlbMeshWriter
{
    public static void Write(ExportMesh mesh, Stream output, string? name, ICollection<string> notes)
    {
        foreach (var x in mesh.Vertices)
            if (!float.IsFinite(x))
                throw new InvalidDataException("the mesh has a vertex coordinate that is not finite, which glTF cannot hold");
        if (mesh.Labels is not null) notes.Add("glTF has no attribute for per-vertex labels: labels left out (export as ply to keep them)");

        var model = ModelRoot.CreateModel();
        model.Asset.Generator = "syconn-store (SharpGLTF)";
        var scene = model.UseScene(0);
        model.DefaultScene = scene;
        if (mesh.VertexCount == 0)
        {
            notes.Add("the mesh has no vertices: the GLB holds an empty scene");
            Emit(model, output);
            return;
        }

        var gltfMesh = model.CreateMesh(name);
        var prim = gltfMesh.CreatePrimitive();
        int nv = mesh.VertexCount;

        var position = model.CreateAccessor("POSITION");
        position.SetVertexData(View(model, MemoryMarshal.AsBytes(mesh.Vertices.AsSpan()).ToArray(), BufferMode.ARRAY_BUFFER), 0, nv, new AttributeFormat(DimensionType.VEC3, EncodingType.FLOAT, false));
        prim.SetVertexAccessor("POSITION", position);

        if (mesh.Normals is not null && UnitNormals(mesh.Normals, notes) is { } unit)
        {
            var normal = model.CreateAccessor("NORMAL");
            normal.SetVertexData(View(model, MemoryMarshal.AsBytes(unit.AsSpan()).ToArray(), BufferMode.ARRAY_BUFFER), 0, nv, new AttributeFormat(DimensionType.VEC3, EncodingType.FLOAT, false));
            prim.SetVertexAccessor("NORMAL", normal);
        }

        if (mesh.Rgba is not null)
        {
            var colour = model.CreateAccessor("COLOR_0");
            colour.SetVertexData(View(model, (byte[])mesh.Rgba.Clone(), BufferMode.ARRAY_BUFFER), 0, nv, new AttributeFormat(DimensionType.VEC4, EncodingType.UNSIGNED_BYTE, true));
            prim.SetVertexAccessor("COLOR_0", colour);
        }

        if (mesh.FaceCount > 0)
        {
            var indices = model.CreateAccessor("indices");
            indices.SetIndexData(View(model, MemoryMarshal.AsBytes(mesh.Indices.AsSpan()).ToArray(), BufferMode.ELEMENT_ARRAY_BUFFER), 0, mesh.Indices.Length, IndexEncodingType.UNSIGNED_INT);
            prim.SetIndexAccessor(indices);
            prim.DrawPrimitiveType = PrimitiveType.TRIANGLES;
        }
        else
        {
            notes.Add("the mesh has no triangles: its vertices are written as points");
            prim.DrawPrimitiveType = PrimitiveType.POINTS;
        }

        scene.CreateNode(name).Mesh = gltfMesh;
        Emit(model, output);
    }

    private static BufferView View(ModelRoot model, byte[] data, BufferMode mode) => model.UseBufferView(data, 0, null, 0, mode);

    private static void Emit(ModelRoot model, Stream output)
    {
        var bytes = model.WriteGLB();
        output.Write(bytes.AsSpan());
    }

    /// <summary>The normals scaled to unit length, or null (with a note) when one cannot be.</summary>
    private static float[]? UnitNormals(float[] normals, ICollection<string> notes)
    {
        var unit = new float[normals.Length];
        int rescaled = 0;
        for (int i = 0; i < normals.Length; i += 3)
        {
            double x = normals[i], y = normals[i + 1], z = normals[i + 2];
            double len = Math.Sqrt(x * x + y * y + z * z);
            if (!double.IsFinite(len) || len == 0 || len < 1e-20)
            {
                notes.Add(string.Create(CultureInfo.InvariantCulture,
                    $"normal {i / 3} has length {len}, which glTF cannot take (it requires unit normals): normals left out"));
                return null;
            }
            if (Math.Abs(len - 1) > 5e-4) rescaled++;
            unit[i] = (float)(x / len);
            unit[i + 1] = (float)(y / len);
            unit[i + 2] = (float)(z / len);
        }
        if (rescaled > 0)
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"{rescaled} of {normals.Length / 3} normals rescaled to unit length (glTF requires unit normals)"));
        return unit;
    }
}
