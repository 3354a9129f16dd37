using SyConn.Backend.Arrays;
using SyConn.Backend.Export;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using static SyConn.Backend.Tests.Export.ExportCli;

namespace SyConn.Backend.Tests.Export;

/// <summary>
/// <c>export-skeleton</c>: the SWC read back line by line by a reader of the tests' own, against the stored skeleton:
/// as many samples as nodes, one root per connected component, every parent before its children, every parent link a
/// stored edge, coordinates scaled, radius = diameter / 2.
/// </summary>
public class SkeletonExportTests
{
    private sealed record StoredSkeleton(double[] Nodes, float[] Diameters, (int A, int B)[] Edges)
    {
        public int Count => Diameters.Length;
    }

    private static StoredSkeleton Stored(Skeleton s)
    {
        var e = s.Edges.ToArray<long>();
        return new StoredSkeleton(s.Nodes.ToArray<double>(), s.Diameters.ToArray<float>(),
            Enumerable.Range(0, e.Length / 2).Select(i => ((int)e[2 * i], (int)e[2 * i + 1])).ToArray());
    }

    /// <summary>
    /// Checks the SWC text against the skeleton; returns, per sample in file order, the node it is (told by its
    /// coordinates, which the skeletons here keep distinct).
    /// </summary>
    private static int[] AssertSwcMatches(string text, StoredSkeleton s, (double X, double Y, double Z) scale, string what)
    {
        var samples = SwcText.ParseAndCheck(text, what);
        Assert.True(samples.Count == s.Count, $"{what}: {samples.Count} samples for {s.Count} nodes");
        var byCoords = new Dictionary<(double, double, double), int>();
        for (int i = 0; i < s.Count; i++)
            byCoords[(s.Nodes[3 * i] * scale.X, s.Nodes[3 * i + 1] * scale.Y, s.Nodes[3 * i + 2] * scale.Z)] = i;
        var nodeOf = new Dictionary<long, int>();
        var order = new int[samples.Count];
        for (int k = 0; k < samples.Count; k++)
        {
            var x = samples[k];
            Assert.True(byCoords.TryGetValue((x.X, x.Y, x.Z), out int node), $"{what}: sample {x.N} at ({x.X}, {x.Y}, {x.Z}) is no scaled node");
            Assert.False(nodeOf.ContainsValue(node), $"{what}: node {node} written twice");
            nodeOf[x.N] = node;
            order[k] = node;
            Assert.True(s.Diameters[node] / 2 == (float)x.R, $"{what}: radius {x.R} of node {node}, diameter {s.Diameters[node]}");
        }
        var edges = new HashSet<(int, int)>(s.Edges.SelectMany(e => new[] { (e.A, e.B), (e.B, e.A) }));
        foreach (var x in samples.Where(x => x.P != -1))
            Assert.True(edges.Contains((nodeOf[x.N], nodeOf[x.P])), $"{what}: parent link {x.N} -> {x.P} is no stored edge");
        int roots = samples.Count(x => x.P == -1);
        int components = SwcText.Components(s.Count, s.Edges);
        Assert.True(roots == components, $"{what}: {roots} roots for {components} connected components");
        return order;
    }

    [SkippableFact]
    public void Fixture_skeletons_export_as_swc_one_root_per_component_parents_first()
    {
        using var dir = new TempDir();
        var path = Shared.PyFixture("skeleton_storage.pkl");
        Dictionary<string, StoredSkeleton> stored;
        using (var ss = new SkeletonStorage(path))
            stored = ss.Keys.ToDictionary(k => k.ToString(), k => Stored(ss[k]));
        Assert.Equal(["1", "2", "3"], stored.Keys);
        Assert.Equal(6, stored["1"].Count);

        var outDir = dir.File("swc");
        var (o, e) = Ok("export-skeleton", path, "--all", "--format", "swc", "-o", outDir);
        Assert.Contains("exported 3 skeletons to " + outDir, o, StringComparison.Ordinal);
        Assert.Equal("", e);
        Assert.Equal(3, Directory.GetFiles(outDir).Length);
        foreach (var (key, s) in stored)
            AssertSwcMatches(File.ReadAllText(Path.Combine(outDir, key + ".swc")), s, (1, 1, 1), $"skeleton {key}");

        // --scale multiplies the coordinates (voxels to nm), not the radii.
        var scaled = dir.File("one.swc");
        (o, _) = Ok("export-skeleton", path, "1", "--format", "swc", "--scale", "10,10,25", "-o", scaled);
        Assert.Equal($"wrote skeleton 1 (6 nodes, 1 root) to {scaled}", o.TrimEnd('\n'));
        var order = AssertSwcMatches(File.ReadAllText(scaled), stored["1"], (10, 10, 25), "scaled skeleton 1");
        Assert.Equal(0, order[0]);
        Ok("export-skeleton", path, "1", "--format=swc", "--scale=0.5,0.5,2", "-o", scaled);
        AssertSwcMatches(File.ReadAllText(scaled), stored["1"], (0.5, 0.5, 2), "skeleton 1 scaled by 0.5,0.5,2");
    }

    [Fact]
    public void A_forest_with_cycles_gets_one_root_per_component_and_the_closing_edges_are_dropped_and_counted()
    {
        using var dir = new TempDir();
        var path = dir.File("skeleton_forest.pkl");
        const int n = 10;
        var nodes = new uint[n * 3];
        for (uint i = 0; i < n; i++) { nodes[3 * i] = 100 + i; nodes[3 * i + 1] = 200 + 2 * i; nodes[3 * i + 2] = 300 + 3 * i; }
        var diameters = Enumerable.Range(0, n).Select(i => 1.5f + i).ToArray();
        // Components {0,1,2,3} with the cycle 0-1-2, {4,5,6} with a cycle and a repeated edge, {7} with a self-loop,
        // {8,9} listed child-first; 10 edges on 10 nodes in 4 components: 4 of them close a cycle.
        uint[] edges = [1, 0, 1, 2, 2, 0, 2, 3, 5, 4, 6, 5, 4, 6, 4, 5, 7, 7, 9, 8];
        using (var ss = new SkeletonStorage(path, StoreOptions.Writable))
        {
            ss[42] = new Skeleton(NdArray.Create(nodes, n, 3), NdArray.Create(diameters), NdArray.Create(edges, edges.Length / 2, 2));
            ss.Push();
        }
        StoredSkeleton stored;
        using (var back = new SkeletonStorage(path))
            stored = Stored(back[42]);
        Assert.Equal(4, SwcText.Components(n, stored.Edges));

        var swc = dir.File("forest.swc");
        var (o, e) = Ok("export-skeleton", path, "42", "--format", "swc", "-o", swc);
        Assert.Equal($"wrote skeleton 42 (10 nodes, 4 roots) to {swc}", o.TrimEnd('\n'));
        Assert.Equal($"syconn-store: note: 4 edges closing a cycle dropped (SWC holds trees): skeleton 42 in {path}", e.TrimEnd('\n'));
        var text = File.ReadAllText(swc);
        var order = AssertSwcMatches(text, stored, (1, 1, 1), "forest");
        // Each component is oriented outward from its first node, and components come in that order.
        var samples = SwcText.ParseAndCheck(text, "forest");
        var rootNodes = samples.Select((x, i) => (x, i)).Where(t => t.x.P == -1).Select(t => order[t.i]).ToArray();
        Assert.Equal([0, 4, 7, 8], rootNodes);
        Assert.Equal(Enumerable.Range(1, n).Select(i => (long)i), samples.Select(x => x.N));
        Assert.Contains("# 10 nodes, 4 connected components (one root each), 4 edges dropped that closed a cycle", text, StringComparison.Ordinal);
    }

    [Fact]
    public void A_long_chain_and_a_star_build_without_recursion()
    {
        const int n = 200_000;
        var nodes = new uint[3 * n];
        for (uint i = 0; i < n; i++) nodes[3 * i] = i;
        var chain = new uint[2 * (n - 1)];
        for (uint i = 0; i < n - 1; i++) { chain[2 * i] = n - 1 - i; chain[2 * i + 1] = n - 2 - i; }
        var tree = SwcWriter.Build(new Skeleton(NdArray.Create(nodes), NdArray.Zeros(DType.Float32, n), NdArray.Create(chain)));
        Assert.Equal(1, tree.Components);
        Assert.Equal(0, tree.DroppedEdges);
        Assert.Equal(-1, tree.Samples[0].Parent);
        Assert.Equal(0, tree.Samples[0].Node);
        for (int i = 1; i < n; i++) Assert.Equal(i, tree.Samples[i].Parent);

        var star = new uint[2 * (n - 1)];
        for (uint i = 1; i < n; i++) { star[2 * (i - 1)] = i; star[2 * (i - 1) + 1] = 0; }
        var s = SwcWriter.Build(new Skeleton(NdArray.Create(nodes), NdArray.Zeros(DType.Float32, n), NdArray.Create(star)));
        Assert.Equal(1, s.Components);
        Assert.All(s.Samples.Skip(1), x => Assert.Equal(1, x.Parent));
    }

    [SkippableFact]
    public void Bad_skeletons_and_usage_are_refused_with_one_line()
    {
        using var dir = new TempDir();
        var path = dir.File("skeleton_bad.pkl");
        using (var ss = new SkeletonStorage(path, StoreOptions.Writable))
        {
            ss[1] = new Skeleton(NdArray.Create(new uint[] { 0, 0, 0, 1, 1, 1 }), NdArray.Create(new float[] { 1, 1 }), NdArray.Create(new uint[] { 0, 5 }));
            ss[2] = new Skeleton(NdArray.Create(new uint[] { 0, 0, 0, 1, 1, 1 }), NdArray.Create(new float[] { 1 }), NdArray.Create(new uint[] { 0, 1 }));
            ss.Push();
        }
        var f = dir.File("x.swc");
        Assert.Contains("names node 5, outside its 2 nodes", Fails(1, "export-skeleton", path, "1", "--format", "swc", "-o", f), StringComparison.Ordinal);
        Assert.Contains("2 nodes but 1 diameters", Fails(1, "export-skeleton", path, "2", "--format", "swc", "-o", f), StringComparison.Ordinal);
        Assert.Contains("not a SkeletonStorage entry", Fails(1, "export-skeleton", Shared.PyFixture("mesh_storage_raw.pkl"), "1", "--format", "swc", "-o", f), StringComparison.Ordinal);
        Assert.Contains("not a SkeletonStorage entry", Fails(1, "export-skeleton", Shared.PyFixture("mesh_storage_lz4.pkl"), "1", "--format", "swc", "-o", f), StringComparison.Ordinal);
        Fails(1, "export-skeleton", Shared.PyFixture("skeleton_storage.pkl"), "--format", "swc", "-o", f, "--", "-7");
        Fails(2, "export-skeleton", path, "1", "--format", "ply", "-o", f);
        Fails(2, "export-skeleton", path, "1", "--format", "swc", "--scale", "1,2", "-o", f);
        Fails(2, "export-skeleton", path, "1", "--format", "swc", "--scale", "1,0,1", "-o", f);
        Fails(2, "export-skeleton", path, "1", "--format", "swc", "--scale", "a,b,c", "-o", f);
        Assert.False(File.Exists(f));
    }
}
