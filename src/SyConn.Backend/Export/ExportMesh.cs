using System.Globalization;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Export;

/// <summary>What the colour/label array of a mesh holds, told from its length per vertex.</summary>
public enum MeshColourKind
{
    /// <summary>No colour/label array (not loaded, or stored empty).</summary>
    None,
    /// <summary>One value per vertex: labels (a scalar per vertex, not a colour).</summary>
    Labels,
    /// <summary>Three values per vertex: RGB colours (exported with alpha 255).</summary>
    Rgb,
    /// <summary>Four values per vertex: RGBA colours.</summary>
    Rgba,
}

/// <summary>
/// A triangle mesh checked and ready for the writers: what <see cref="Stores.MeshStorage"/>'s getter returns
/// (<c>[indices, vertices, normals]</c>, plus the colour/label array with <c>load_colarr</c>), flattened to
/// plain arrays, with every index inside the vertex range.
/// </summary>
/// <remarks>
/// Normals are kept only when there is one xyz triple per vertex (else they are left out with a note); the
/// colour/label array must hold 1 (labels), 3 (RGB) or 4 (RGBA) values per vertex. Immutable by convention:
/// the writers only read it.
/// </remarks>
public sealed class ExportMesh
{
    private ExportMesh(uint[] indices, float[] vertices, float[]? normals, byte[]? rgba, byte[]? labels, MeshColourKind colourKind, IReadOnlyList<string> notes)
    {
        Indices = indices;
        Vertices = vertices;
        Normals = normals;
        Rgba = rgba;
        Labels = labels;
        ColourKind = colourKind;
        Notes = notes;
    }

    /// <summary>Triangle corners, three per face, each a vertex index below <see cref="VertexCount"/>.</summary>
    public uint[] Indices { get; }

    /// <summary>Vertex coordinates, xyz per vertex.</summary>
    public float[] Vertices { get; }

    /// <summary>Normals, xyz per vertex, as stored (not normalised); null when none are stored or they do not fit.</summary>
    public float[]? Normals { get; }

    /// <summary>Vertex colours, RGBA per vertex (RGB colours get alpha 255); null without colours.</summary>
    public byte[]? Rgba { get; }

    /// <summary>Per-vertex labels (a single-channel colour/label array); null without labels.</summary>
    public byte[]? Labels { get; }

    /// <summary>What the stored colour/label array held.</summary>
    public MeshColourKind ColourKind { get; }

    /// <summary>Notes about what was left out while reading the arrays (for the user, not errors).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>The number of vertices.</summary>
    public int VertexCount => Vertices.Length / 3;

    /// <summary>The number of triangles.</summary>
    public int FaceCount => Indices.Length / 3;

    /// <summary>True when <see cref="Rgba"/> has an alpha value other than 255.</summary>
    public bool HasTransparency
    {
        get
        {
            if (Rgba is null) return false;
            for (int i = 3; i < Rgba.Length; i += 4) if (Rgba[i] != 255) return true;
            return false;
        }
    }

    /// <summary>
    /// Checks and flattens what <see cref="Stores.MeshStorage"/>'s getter returned for one key.
    /// </summary>
    /// <param name="arrays"><c>[indices, vertices, normals]</c> and optionally the colour/label array (any numeric dtypes; cast as upstream casts on write).</param>
    /// <exception cref="InvalidDataException">The arrays do not make a triangle mesh: fewer than 2 or more than 4 arrays, a vertex
    /// array not made of xyz triples, an index count not a multiple of 3, an index outside the vertices, or a colour/label
    /// array that is not 1, 3 or 4 values per vertex.</exception>
    public static ExportMesh FromArrays(IReadOnlyList<NdArray> arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        if (arrays.Count is < 2 or > 4)
            throw new InvalidDataException($"a mesh has 2 to 4 arrays (indices, vertices[, normals[, colours]]), got {arrays.Count}");
        var notes = new List<string>();
        uint[] indices = Numeric(arrays[0], "indices").ToArray<uint>(CastingRule.Unsafe);
        float[] vertices = Numeric(arrays[1], "vertices").ToArray<float>(CastingRule.Unsafe);
        if (vertices.Length % 3 != 0)
            throw new InvalidDataException($"the mesh has {vertices.Length} vertex values, not a multiple of 3 (xyz per vertex)");
        if (indices.Length % 3 != 0)
            throw new InvalidDataException($"the mesh has {indices.Length} indices, not a multiple of 3 (triangles)");
        long nVert = vertices.Length / 3;
        for (int i = 0; i < indices.Length; i++)
            if (indices[i] >= nVert)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"index {i} of the mesh is {indices[i]}, outside its {nVert} vertices"));

        float[]? normals = null;
        if (arrays.Count > 2 && arrays[2].Size > 0)
        {
            normals = Numeric(arrays[2], "normals").ToArray<float>(CastingRule.Unsafe);
            if (normals.Length != vertices.Length)
            {
                notes.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{normals.Length} normal values for {vertices.Length} vertex values: normals left out"));
                normals = null;
            }
        }

        byte[]? rgba = null, labels = null;
        var kind = MeshColourKind.None;
        if (arrays.Count > 3 && arrays[3].Size > 0)
        {
            var c = Numeric(arrays[3], "colours").ToArray<byte>(CastingRule.Unsafe);
            if (nVert > 0 && c.Length == nVert)
            {
                labels = c;
                kind = MeshColourKind.Labels;
            }
            else if (nVert > 0 && c.Length == nVert * 4)
            {
                rgba = c;
                kind = MeshColourKind.Rgba;
            }
            else if (nVert > 0 && c.Length == nVert * 3)
            {
                rgba = new byte[nVert * 4];
                for (long v = 0; v < nVert; v++)
                {
                    rgba[v * 4] = c[v * 3];
                    rgba[v * 4 + 1] = c[v * 3 + 1];
                    rgba[v * 4 + 2] = c[v * 3 + 2];
                    rgba[v * 4 + 3] = 255;
                }
                kind = MeshColourKind.Rgb;
            }
            else
            {
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"the mesh has {c.Length} colour/label values for {nVert} vertices (expected {nVert} labels, {nVert * 3} RGB or {nVert * 4} RGBA values)"));
            }
        }
        return new ExportMesh(indices, vertices, normals, rgba, labels, kind, notes);
    }

    /// <summary>A mesh from plain arrays (checked as <see cref="FromArrays"/> checks the store's arrays).</summary>
    /// <param name="indices">Triangle corners, three per face.</param>
    /// <param name="vertices">xyz per vertex.</param>
    /// <param name="normals">xyz per vertex, or null/empty.</param>
    /// <param name="colours">Labels (1 per vertex), RGB (3) or RGBA (4), or null/empty.</param>
    /// <inheritdoc cref="FromArrays" path="/exception"/>
    public static ExportMesh Create(uint[] indices, float[] vertices, float[]? normals = null, byte[]? colours = null) =>
        FromArrays([NdArray.Create(indices), NdArray.Create(vertices), NdArray.Create(normals ?? []), NdArray.Create(colours ?? [])]);

    private static NdArray Numeric(NdArray a, string what) =>
        a.Objects is null && a.DType.IsNumeric
            ? a
            : throw new InvalidDataException($"the mesh's {what} are an array of dtype {a.DType.Str}, not numbers");
}
