using System.Numerics;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Stores;

/// <summary>
/// A triangle mesh with shaped arrays: <see cref="Indices"/> (T, 3) uint32, <see cref="Vertices"/> (V, 3) float32,
/// <see cref="Normals"/> (V, 3) float32 or (0, 3), and optional <see cref="Colours"/> (V, C) uint8 (RGBA, or one
/// label per vertex with C = 1).
/// </summary>
/// <remarks>
/// <para>SyConn's <c>MeshStorage</c> keeps a mesh flat: <c>[indices (3T,), vertices (3V,), normals (3V,) or (0,),
/// colours (C·V,) or (0,)]</c>. <see cref="FromFlat"/> and <see cref="ToFlat"/> convert between the two exactly (the
/// same values in the same order); <see cref="MeshStorage.GetMesh"/> and <see cref="MeshStorage.SetMesh"/> use them.</para>
/// <para>The constructor takes flat or shaped arrays of any numeric dtype and converts them to SyConn's dtypes:
/// indices and colours by value (an index must be in [0, 2^32), a colour in [0, 255], integers only), vertices and
/// normals to float32 as SyConn does (numpy's <c>astype(np.float32)</c>, same-kind casting: rounding float64,
/// never from complex).</para>
/// Immutable as a record; the arrays are shared, not copied, when they already have the target dtype.
/// </remarks>
public sealed record Mesh
{
    /// <summary>Creates a mesh, converting the arrays to SyConn's dtypes and shapes (see <see cref="Mesh"/>).</summary>
    /// <param name="indices">Vertex indices of the triangles: (T, 3) or flat (3T,); integers in [0, 2^32).</param>
    /// <param name="vertices">Vertex coordinates: (V, 3) or flat (3V,).</param>
    /// <param name="normals">Vertex normals: (V, 3), flat (3V,), or null or empty for none.</param>
    /// <param name="colours">Per-vertex colours or labels: (V, C), flat (C·V,), or null or empty for none; integers in [0, 255].</param>
    /// <exception cref="ArgumentException">A size that is not a multiple of 3, normals or colours that do not match the vertex count.</exception>
    /// <exception cref="InvalidCastException">A dtype that does not convert (floats as indices, complex vertices).</exception>
    /// <exception cref="OverflowException">An index or colour outside its type's range.</exception>
    public Mesh(NdArray indices, NdArray vertices, NdArray? normals = null, NdArray? colours = null)
    {
        ArgumentNullException.ThrowIfNull(indices);
        ArgumentNullException.ThrowIfNull(vertices);
        Indices = Rows(IntegersAs(indices, DType.UInt32, uint.MaxValue, "indices"), 3, "indices");
        Vertices = Rows(vertices.AsType(DType.Float32, CastingRule.SameKind).ToNativeC(), 3, "vertices");
        long v = Vertices.Shape[0];
        if (normals is null || normals.Size == 0) Normals = NdArray.Zeros(DType.Float32, 0, 3);
        else
        {
            Normals = Rows(normals.AsType(DType.Float32, CastingRule.SameKind).ToNativeC(), 3, "normals");
            if (Normals.Shape[0] != v)
                throw new ArgumentException($"a mesh with {v} vertices has {Normals.Shape[0]} normals; give one per vertex or none");
        }
        if (colours is not null && colours.Size > 0)
        {
            var c = IntegersAs(colours, DType.UInt8, byte.MaxValue, "colours");
            if (c.NDim == 2 && c.Shape[0] == v) Colours = c;
            else if (v > 0 && c.Size % v == 0) Colours = c.Reshape(v, -1);
            else throw new ArgumentException($"a mesh with {v} vertices has {c.Size} colour values, which is not a whole number per vertex");
        }
    }

    /// <summary>Vertex indices of the triangles, (T, 3) uint32.</summary>
    public NdArray Indices { get; }

    /// <summary>Vertex coordinates, (V, 3) float32.</summary>
    public NdArray Vertices { get; }

    /// <summary>Vertex normals, (V, 3) float32, or (0, 3) when the mesh has none.</summary>
    public NdArray Normals { get; }

    /// <summary>Per-vertex colours (V, 4 or 3) or labels (V, 1), uint8; null when the mesh has none.</summary>
    public NdArray? Colours { get; }

    /// <summary>Number of triangles (T).</summary>
    public long TriangleCount => Indices.Shape[0];

    /// <summary>Number of vertices (V).</summary>
    public long VertexCount => Vertices.Shape[0];

    /// <summary>True when the mesh has one normal per vertex.</summary>
    public bool HasNormals => Normals.Size > 0;

    /// <summary>
    /// SyConn's flat layout: <c>[indices (3T,) uint32, vertices (3V,) float32, normals (3V,) or (0,) float32,
    /// colours (C·V,) or (0,) uint8]</c>, what <see cref="MeshStorage"/> stores (sharing the data).
    /// </summary>
    public NdArray[] ToFlat() =>
    [
        Indices.Reshape(-1),
        Vertices.Reshape(-1),
        Normals.Reshape(-1),
        Colours?.Reshape(-1) ?? NdArray.Zeros(DType.UInt8, 0),
    ];

    /// <summary>
    /// A mesh from SyConn's flat layout (2 to 4 arrays: indices, vertices, normals, colours; what
    /// <see cref="MeshStorage"/>'s indexer returns). Empty normals or colours mean none.
    /// </summary>
    /// <exception cref="ArgumentException">Fewer than 2 or more than 4 arrays, or sizes that do not fit (see the constructor).</exception>
    /// <inheritdoc cref="Mesh(NdArray, NdArray, NdArray?, NdArray?)" path="/exception"/>
    public static Mesh FromFlat(IReadOnlyList<NdArray> arrays)
    {
        ArgumentNullException.ThrowIfNull(arrays);
        if (arrays.Count is < 2 or > 4)
            throw new ArgumentException($"a mesh in SyConn's layout has 2 to 4 arrays (indices, vertices[, normals[, colours]]), got {arrays.Count}", nameof(arrays));
        return new Mesh(arrays[0], arrays[1], arrays.Count > 2 ? arrays[2] : null, arrays.Count > 3 ? arrays[3] : null);
    }

    /// <summary>Arrays are compared by dtype, shape and content.</summary>
    public bool Equals(Mesh? other) =>
        other is not null && Indices.Equals(other.Indices) && Vertices.Equals(other.Vertices) && Normals.Equals(other.Normals)
        && (Colours is null ? other.Colours is null : Colours.Equals(other.Colours));

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Indices.Size, Vertices.Size, Normals.Size, Colours?.Size);

    /// <summary>A summary: counts and which optional arrays are there.</summary>
    public override string ToString() =>
        $"Mesh({TriangleCount} triangles, {VertexCount} vertices{(HasNormals ? ", normals" : "")}{(Colours is null ? "" : $", colours ({Colours.Shape[1]} per vertex)")})";

    private static NdArray Rows(NdArray a, int width, string what)
    {
        if (a.NDim == 2 && a.Shape[1] == width) return a;
        if (a.Size % width != 0)
            throw new ArgumentException($"mesh {what} hold {a.Size} values (shape {string.Join(", ", a.ShapeArray)}), not a multiple of {width}");
        return a.Reshape(-1, width);
    }

    private static NdArray IntegersAs(NdArray a, DType target, ulong max, string what)
    {
        if (a.DType == target || (a.DType.Kind == target.Kind && a.DType.ItemSize == target.ItemSize)) return a.ToNativeC();
        if (!a.DType.IsInteger && a.DType.Kind != 'b')
            throw new InvalidCastException($"mesh {what} are an array of dtype {a.DType.Str} ({a.DType.Name}); they must be integers");
        if (a.DType.Kind == 'u' ? a.DType.ItemSize > target.ItemSize : a.DType.Kind == 'i')
        {
            var wide = a.AsType(DType.Int64, CastingRule.Unsafe).AsSpan<long>();
            bool unsigned = a.DType.Kind == 'u';
            for (int i = 0; i < wide.Length; i++)
            {
                BigInteger value = unsigned ? (ulong)wide[i] : wide[i];
                if (value < 0 || value > max)
                    throw new OverflowException($"mesh {what} value {value} at flat index {i} is outside [0, {max}]");
            }
        }
        return a.AsType(target, CastingRule.Unsafe);
    }
}
