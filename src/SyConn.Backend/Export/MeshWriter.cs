using System.Globalization;
using System.Text;

namespace SyConn.Backend.Export;

/// <summary>The file formats a mesh can be exported to.</summary>
public enum MeshFormat
{
    /// <summary>Stanford PLY, binary little-endian: positions, normals, RGBA colours and labels (a scalar property <c>label</c>).</summary>
    Ply,
    /// <summary>Wavefront OBJ: <c>v</c> (with RGB in 0..1 when there are colours), <c>vn</c>, <c>f</c>.</summary>
    Obj,
    /// <summary>glTF 2.0 binary (GLB): POSITION, NORMAL (unit length), COLOR_0 and triangle indices.</summary>
    Glb,
}

/// <summary>Writes an <see cref="ExportMesh"/> as PLY, OBJ or GLB.</summary>
/// <remarks>
/// Each writer returns notes on what the format could not hold (labels in OBJ and GLB, alpha in OBJ, normals that
/// glTF cannot take), for the caller to show; what the format can hold is written in full. Thread-safe.
/// </remarks>
public static class MeshWriter
{
    /// <summary>The file extension of <paramref name="format"/>, without the dot.</summary>
    public static string Extension(MeshFormat format) => format switch
    {
        MeshFormat.Ply => "ply",
        MeshFormat.Obj => "obj",
        MeshFormat.Glb => "glb",
        _ => throw new ArgumentOutOfRangeException(nameof(format)),
    };

    /// <summary>Parses <c>ply</c>, <c>obj</c> or <c>glb</c> (case-insensitive).</summary>
    /// <exception cref="ArgumentException">Not one of those.</exception>
    public static MeshFormat ParseFormat(string text) => text?.ToLowerInvariant() switch
    {
        "ply" => MeshFormat.Ply,
        "obj" => MeshFormat.Obj,
        "glb" => MeshFormat.Glb,
        _ => throw new ArgumentException($"unknown mesh format '{text}'; use ply, obj or glb"),
    };

    /// <summary>Writes <paramref name="mesh"/> to <paramref name="output"/> in <paramref name="format"/>.</summary>
    /// <param name="mesh">The mesh.</param>
    /// <param name="format">The file format.</param>
    /// <param name="output">Where to write (left open).</param>
    /// <param name="name">A name for the mesh inside the file (a comment in PLY and OBJ, the mesh and node name in GLB).</param>
    /// <returns>Notes on what was left out or changed, the mesh's own <see cref="ExportMesh.Notes"/> first.</returns>
    /// <exception cref="InvalidDataException">GLB only: a vertex coordinate is not finite.</exception>
    public static IReadOnlyList<string> Write(ExportMesh mesh, MeshFormat format, Stream output, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        ArgumentNullException.ThrowIfNull(output);
        var notes = new List<string>(mesh.Notes);
        switch (format)
        {
            case MeshFormat.Ply: WritePly(mesh, output, name); break;
            case MeshFormat.Obj: WriteObj(mesh, output, name, notes); break;
            case MeshFormat.Glb: GlbMeshWriter.Write(mesh, output, name, notes); break;
            default: throw new ArgumentOutOfRangeException(nameof(format));
        }
        return notes;
    }

    /// <summary>
    /// Binary little-endian PLY: <c>element vertex</c> with float <c>x y z</c>, float <c>nx ny nz</c> when there are
    /// normals, uchar <c>red green blue alpha</c> when there are colours, uchar <c>label</c> when there are labels;
    /// <c>element face</c> with <c>list uchar uint vertex_indices</c>.
    /// </summary>
    public static void WritePly(ExportMesh mesh, Stream output, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        ArgumentNullException.ThrowIfNull(output);
        var h = new StringBuilder();
        h.Append("ply\nformat binary_little_endian 1.0\n");
        h.Append("comment written by syconn-store\n");
        if (!string.IsNullOrEmpty(name)) h.Append("comment ").Append(OneLine(name)).Append('\n');
        h.Append(CultureInfo.InvariantCulture, $"element vertex {mesh.VertexCount}\n");
        h.Append("property float x\nproperty float y\nproperty float z\n");
        if (mesh.Normals is not null) h.Append("property float nx\nproperty float ny\nproperty float nz\n");
        if (mesh.Rgba is not null) h.Append("property uchar red\nproperty uchar green\nproperty uchar blue\nproperty uchar alpha\n");
        if (mesh.Labels is not null) h.Append("property uchar label\n");
        h.Append(CultureInfo.InvariantCulture, $"element face {mesh.FaceCount}\n");
        h.Append("property list uchar uint vertex_indices\nend_header\n");

        using var w = new BinaryWriter(output, Encoding.ASCII, leaveOpen: true); // BinaryWriter is little-endian everywhere
        w.Write(Encoding.ASCII.GetBytes(h.ToString()));
        var v = mesh.Vertices;
        var n = mesh.Normals;
        var c = mesh.Rgba;
        var l = mesh.Labels;
        for (int i = 0; i < mesh.VertexCount; i++)
        {
            w.Write(v[i * 3]); w.Write(v[i * 3 + 1]); w.Write(v[i * 3 + 2]);
            if (n is not null) { w.Write(n[i * 3]); w.Write(n[i * 3 + 1]); w.Write(n[i * 3 + 2]); }
            if (c is not null) w.Write(c, i * 4, 4);
            if (l is not null) w.Write(l[i]);
        }
        var f = mesh.Indices;
        for (int i = 0; i < mesh.FaceCount; i++)
        {
            w.Write((byte)3);
            w.Write(f[i * 3]); w.Write(f[i * 3 + 1]); w.Write(f[i * 3 + 2]);
        }
        w.Flush();
    }

    /// <summary>
    /// Wavefront OBJ: <c>v x y z</c> (followed by <c>r g b</c> in 0..1 when there are colours, the common extension),
    /// <c>vn</c> per vertex when there are normals, <c>f a b c</c> (<c>a//a</c> with normals), 1-based.
    /// Labels and alpha have no place in OBJ: they are left out with a note.
    /// </summary>
    public static void WriteObj(ExportMesh mesh, Stream output, string? name, ICollection<string> notes)
    {
        ArgumentNullException.ThrowIfNull(mesh);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(notes);
        if (mesh.Labels is not null) notes.Add("OBJ has no per-vertex scalars: labels left out (export as ply to keep them)");
        if (mesh.HasTransparency) notes.Add("OBJ has no alpha channel: colours written as RGB");
        var inv = CultureInfo.InvariantCulture;
        using var w = new StreamWriter(output, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        w.WriteLine("# written by syconn-store");
        if (!string.IsNullOrEmpty(name)) w.WriteLine("# " + OneLine(name));
        w.WriteLine(string.Create(inv, $"# {mesh.VertexCount} vertices, {mesh.FaceCount} triangles"));
        if (!string.IsNullOrEmpty(name)) w.WriteLine("o " + ObjName(name));
        var v = mesh.Vertices;
        var c = mesh.Rgba;
        for (int i = 0; i < mesh.VertexCount; i++)
        {
            w.Write("v ");
            w.Write(F(v[i * 3])); w.Write(' ');
            w.Write(F(v[i * 3 + 1])); w.Write(' ');
            w.Write(F(v[i * 3 + 2]));
            if (c is not null)
            {
                w.Write(' '); w.Write(F(c[i * 4] / 255f));
                w.Write(' '); w.Write(F(c[i * 4 + 1] / 255f));
                w.Write(' '); w.Write(F(c[i * 4 + 2] / 255f));
            }
            w.WriteLine();
        }
        var n = mesh.Normals;
        if (n is not null)
            for (int i = 0; i < mesh.VertexCount; i++)
                w.WriteLine($"vn {F(n[i * 3])} {F(n[i * 3 + 1])} {F(n[i * 3 + 2])}");
        var f = mesh.Indices;
        for (int i = 0; i < mesh.FaceCount; i++)
        {
            ulong a = f[i * 3] + 1UL, b = f[i * 3 + 1] + 1UL, d = f[i * 3 + 2] + 1UL;
            w.WriteLine(n is null
                ? string.Create(inv, $"f {a} {b} {d}")
                : string.Create(inv, $"f {a}//{a} {b}//{b} {d}//{d}"));
        }
        w.Flush();
    }

    /// <summary>A float as the shortest text that reads back as the same float (invariant culture).</summary>
    internal static string F(float x) => x.ToString("R", CultureInfo.InvariantCulture);

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");

    private static string ObjName(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (var ch in s) sb.Append(char.IsWhiteSpace(ch) || char.IsControl(ch) ? '_' : ch);
        return sb.ToString();
    }
}
