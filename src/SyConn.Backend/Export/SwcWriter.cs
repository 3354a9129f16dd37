using System.Globalization;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Export;

/// <summary>One SWC sample line: <c>n T x y z R P</c>.</summary>
/// <param name="Id">The sample number <c>n</c>, 1-based, in file order.</param>
/// <param name="Type">The structure type <c>T</c> (0: undefined).</param>
/// <param name="X">x, scaled.</param>
/// <param name="Y">y, scaled.</param>
/// <param name="Z">z, scaled.</param>
/// <param name="Radius">Half the stored diameter.</param>
/// <param name="Parent">The parent's sample number, or -1 for a root.</param>
/// <param name="Node">The skeleton's node index this sample comes from (0-based).</param>
public readonly record struct SwcSample(int Id, int Type, double X, double Y, double Z, float Radius, int Parent, int Node);

/// <summary>A skeleton turned into SWC trees.</summary>
/// <param name="Samples">The samples in file order: each component's root first, every parent before its children.</param>
/// <param name="Components">The number of connected components (= roots).</param>
/// <param name="DroppedEdges">Edges left out because they close a cycle (self-loops and repeated edges included).</param>
public sealed record SwcTree(IReadOnlyList<SwcSample> Samples, int Components, int DroppedEdges);

/// <summary>
/// Standard SWC from a SyConn skeleton (<c>nodes</c> (N,3), <c>diameters</c> (N,), undirected <c>edges</c> (M,2)).
/// </summary>
/// <remarks>
/// A skeleton may be a forest: each connected component gets one root (parent -1), its node of lowest index, and is
/// oriented outward from it by a depth-first walk; components come in the order of their lowest node, samples are
/// numbered 1..N in file order, so every parent comes before its children. Edges that would close a cycle are
/// dropped and counted. Coordinates are multiplied by the scale (default 1,1,1: voxels); radius = diameter / 2,
/// not scaled. The structure type is 0 (undefined): SyConn's skeleton does not say. Thread-safe.
/// </remarks>
public static class SwcWriter
{
    /// <summary>The file extension, without the dot.</summary>
    public const string Extension = "swc";

    /// <summary>Builds the SWC trees of <paramref name="skeleton"/>.</summary>
    /// <param name="skeleton">The skeleton as <see cref="SkeletonStorage"/>'s getter returns it (flat arrays).</param>
    /// <param name="scale">Multiplies x, y and z (e.g. the voxel size in nm); null: 1,1,1.</param>
    /// <exception cref="InvalidDataException">The node array is not xyz triples, the diameters are not one per node,
    /// the edge array is not pairs, or an edge names a node that does not exist.</exception>
    public static SwcTree Build(Skeleton skeleton, (double X, double Y, double Z)? scale = null)
    {
        ArgumentNullException.ThrowIfNull(skeleton);
        var (sx, sy, sz) = scale ?? (1, 1, 1);
        var nodes = Numeric(skeleton.Nodes, "nodes").ToArray<double>(Arrays.CastingRule.Unsafe);
        var diameters = Numeric(skeleton.Diameters, "diameters").ToArray<float>(Arrays.CastingRule.Unsafe);
        var edges = Numeric(skeleton.Edges, "edges").ToArray<long>(Arrays.CastingRule.Unsafe);
        if (nodes.Length % 3 != 0)
            throw new InvalidDataException($"the skeleton has {nodes.Length} node coordinates, not a multiple of 3 (xyz per node)");
        int n = nodes.Length / 3;
        if (diameters.Length != n)
            throw new InvalidDataException($"the skeleton has {n} nodes but {diameters.Length} diameters");
        if (edges.Length % 2 != 0)
            throw new InvalidDataException($"the skeleton has {edges.Length} edge values, not a multiple of 2 (node pairs)");
        for (int i = 0; i < edges.Length; i++)
            if (edges[i] < 0 || edges[i] >= n)
                throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture,
                    $"edge {i / 2} of the skeleton names node {edges[i]}, outside its {n} nodes"));

        // Adjacency in CSR form, neighbours in edge order.
        var degree = new int[n + 1];
        for (int i = 0; i < edges.Length; i++) degree[edges[i] + 1]++;
        for (int i = 0; i < n; i++) degree[i + 1] += degree[i];
        var start = (int[])degree.Clone();
        var fill = (int[])degree.Clone();
        var adj = new int[edges.Length];
        for (int e = 0; e < edges.Length; e += 2)
        {
            int a = (int)edges[e], b = (int)edges[e + 1];
            adj[fill[a]++] = b;
            adj[fill[b]++] = a;
        }

        var id = new int[n];          // sample number of each node, 0 = not reached yet
        var samples = new List<SwcSample>(n);
        var stack = new Stack<(int Node, int ParentNode)>();
        int components = 0;
        for (int root = 0; root < n; root++)
        {
            if (id[root] != 0) continue;
            components++;
            stack.Push((root, -1));
            while (stack.Count > 0)
            {
                var (v, p) = stack.Pop();
                if (id[v] != 0) continue;
                id[v] = samples.Count + 1;
                samples.Add(new SwcSample(id[v], 0, nodes[v * 3] * sx, nodes[v * 3 + 1] * sy, nodes[v * 3 + 2] * sz,
                    diameters[v] / 2, p < 0 ? -1 : id[p], v));
                // Push in reverse so the first-listed neighbour is walked first.
                for (int k = start[v + 1] - 1; k >= start[v]; k--)
                    if (id[adj[k]] == 0) stack.Push((adj[k], v));
            }
        }
        // A spanning forest of n nodes in c components uses n - c edges; every other edge closes a cycle.
        int dropped = edges.Length / 2 - (n - components);
        return new SwcTree(samples, components, dropped);
    }

    /// <summary>Writes <paramref name="tree"/> as SWC text: <paramref name="header"/> as <c>#</c> comment lines, then one sample per line.</summary>
    public static void Write(SwcTree tree, TextWriter output, IEnumerable<string>? header = null)
    {
        ArgumentNullException.ThrowIfNull(tree);
        ArgumentNullException.ThrowIfNull(output);
        foreach (var line in header ?? [])
            foreach (var part in line.ReplaceLineEndings("\n").Split('\n'))
                output.Write("# " + part + "\n");
        output.Write("# n T x y z R P\n");
        var inv = CultureInfo.InvariantCulture;
        foreach (var s in tree.Samples)
            output.Write(string.Create(inv, $"{s.Id} {s.Type} {D(s.X)} {D(s.Y)} {D(s.Z)} {s.Radius.ToString("R", inv)} {s.Parent}\n"));
    }

    /// <summary>Writes <paramref name="tree"/> as UTF-8 SWC text to <paramref name="output"/> (left open).</summary>
    public static void Write(SwcTree tree, Stream output, IEnumerable<string>? header = null)
    {
        ArgumentNullException.ThrowIfNull(output);
        using var w = new StreamWriter(output, new System.Text.UTF8Encoding(false), 1 << 16, leaveOpen: true);
        Write(tree, w, header);
        w.Flush();
    }

    private static string D(double x) => x.ToString("R", CultureInfo.InvariantCulture);

    private static Arrays.NdArray Numeric(Arrays.NdArray a, string what) =>
        a.Objects is null && a.DType.IsNumeric
            ? a
            : throw new InvalidDataException($"the skeleton's {what} are an array of dtype {a.DType.Str}, not numbers");
}
