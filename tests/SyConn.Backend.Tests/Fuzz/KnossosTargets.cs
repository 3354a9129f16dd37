using System.Globalization;
using System.Text;
using Snappier;
using SyConn.Backend.Formats.Knossos;
using SyConn.Backend.Storage.Knossos;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// KNOSSOS configs of all three kinds (<c>.pyk.conf</c>, <c>.k.toml</c>, legacy <c>knossos.conf</c>): an input is one
/// kind byte and the text. Hostile experiment names, numbers, cube shapes, URLs and deep TOML nesting are generated;
/// an accepted config must name cube files inside its root and stay within the cube limit.
/// </summary>
internal sealed class KnossosConfigTarget : FuzzTarget
{
    internal const string Root = "/fuzz-knossos/ds";
    private static readonly string[] Files = ["kfixA.pyk.conf", "kfixA.k.toml", "mag1/knossos.conf"];

    public override string Name => "knossos-config";

    public override string InputName => Root;

    protected override ReadOnlySpan<byte> Interesting => "=[]\"';,.-/\n 0123456789"u8;

    protected override IEnumerable<byte[]> LoadSeeds(string shared)
    {
        string ds = Path.Combine(shared, "fixtures", "knossos", "ds1");
        for (int k = 0; k < Files.Length; k++)
            yield return [(byte)k, .. File.ReadAllBytes(Path.Combine(ds, Files[k]))];
    }

    private static readonly string[] Names = ["../../escape", "a/b", "..", ".", "x\\y", "nul\0", "/abs", " ", "kfixA", "ctl\u0001", "ok-name.1"];

    private static readonly string[] Numbers = ["0", "-128", "1e300", "4611686018427387904", "9007199254740993", "nan", "128.5", "2147483647", "1099511627776", "3"];

    protected override FuzzInput Structured(Random rng)
    {
        int kind = rng.Next(3);
        string name = Names[rng.Next(Names.Length)];
        string N() => Numbers[rng.Next(Numbers.Length)];
        string? flaw = name.IndexOfAny(['/', '\\', '\0']) >= 0 || name is "." or ".." ? "the experiment name would build paths outside the dataset" : null;
        string text;
        switch (kind)
        {
            case 0:
                text = $"[Dataset]\n_BaseName = {name}\n_ServerFormat = pyknossos\n_DataScale = {N()},{N()},{N()}\n_Extent = {N()},{N()},{N()}\n_BaseExt = .seg.sz.zip\n_CubeSize = {N()},{N()},{N()}\n"
                    + (rng.Next(4) == 0 ? $"_BaseURL = {new[] { "file:///tmp/x", "http://h/x", "rel/dir", "file://", "ftp://x" }[rng.Next(5)]}\n" : "");
                break;
            case 1:
                string nest = rng.Next(5) == 0 ? "Deep = " + new string('[', 1 + rng.Next(200_000)) + "\n" : "";
                text = $"[[Layer]]\nName = '{name.Replace("'", "", StringComparison.Ordinal)}'\nServerFormat = 'knossos'\nFileExtension = ['.seg.sz.zip']\n"
                    + $"Extent_px = [{N()}, {N()}, {N()}]\nVoxelSize_nm = [[{N()}, 10.0, 25.0]]\nCubeShape_px = [{N()}, {N()}, {N()}]\n" + nest
                    + (rng.Next(4) == 0 ? $"URL = '{new[] { "file:///tmp/x", "http://h/x", "rel/dir", "info" }[rng.Next(4)]}'\n" : "");
                break;
            default:
                text = $"experiment name \"{name}_mag1\";\nboundary x {N()};\nboundary y {N()};\nboundary z {N()};\nscale x {N()};\nscale y 10.00;\nscale z 25.00;\nmagnification 1;\n";
                // The legacy grammar takes only [A-Za-z0-9._/-] in the quoted name; others leave the key unparsed.
                break;
        }
        if (rng.Next(6) == 0) text = new string('\n', rng.Next(100_000)) + text;
        return new FuzzInput([(byte)kind, .. Encoding.UTF8.GetBytes(text)], flaw);
    }

    protected override bool ExtraAllowed(Exception e) => e is NotSupportedException;

    public override bool Run(byte[] data)
    {
        if (data.Length == 0) return false;
        string confPath = Root + "/" + Files[data[0] % Files.Length];
        string text = Encoding.UTF8.GetString(data, 1, data.Length - 1);
        var c = KnossosConfig.Parse(text, confPath);
        string root = Path.GetFullPath(c.Root);
        foreach (var (i, j, k) in new[] { (0L, 0L, 0L), (12345L, 1L, 99999L), (long.MaxValue / 2, 0L, 0L) })
        {
            string cube = Path.GetFullPath(c.CubePath(i, j, k));
            Assert.True(cube.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal), $"cube path {cube} is outside the root {root}");
            Assert.Equal(5, Path.GetRelativePath(root, cube).Split('/').Length);
        }
        Assert.True(c.CubeShape.Product * 8 <= ReadLimits.Default.MaxCubeBytes, $"cube shape {c.CubeShape} exceeds the cube limit");
        using var dsObj = new KnossosDataset(c, new KnossosDatasetOptions { CacheBytes = 0 });
        return true;
    }
}

/// <summary>
/// KNOSSOS cube files: an input is one edge byte (even: the fixtures' 128³, odd: 16³) and the zip. Besides mutations
/// of the fixture cubes, valid zips are built around hostile Snappy payloads (wrong varint length, truncated, random),
/// with stored and deflated members, several or no members, and lying zip fields.
/// </summary>
internal sealed class KnossosCubeTarget : FuzzTarget
{
    private readonly ulong[] _big = new ulong[128 * 128 * 128];
    private readonly ulong[] _small = new ulong[16 * 16 * 16];

    public override string Name => "knossos-cube";

    public override string InputName => "fuzz-cube.seg.sz.zip";

    protected override IEnumerable<byte[]> LoadSeeds(string shared)
    {
        foreach (var f in Directory.GetFiles(Path.Combine(shared, "fixtures", "knossos", "ds1", "mag1"), "*.seg.sz.zip", SearchOption.AllDirectories).Order(StringComparer.Ordinal).Take(4))
            yield return [0, .. File.ReadAllBytes(f)];
        var small = new ulong[16 * 16 * 16];
        for (int i = 0; i < small.Length; i++) small[i] = i % 7 == 0 ? ulong.MaxValue - (ulong)i : (ulong)(i / 100);
        yield return [1, .. KnossosCubeCodec.EncodeToArray(small, "fuzz_mag1_x0000_y0000_z0000.seg.sz")];
    }

    protected override FuzzInput Structured(Random rng)
    {
        var values = new ulong[16 * 16 * 16];
        for (int i = 0; i < values.Length; i++) values[i] = rng.Next(4) == 0 ? (ulong)rng.NextInt64() : 0;
        byte[] raw = new byte[values.Length * 8];
        Buffer.BlockCopy(values, 0, raw, 0, raw.Length);
        byte[] snappy = Snappy.CompressToArray(raw);
        string? flaw = null;
        switch (rng.Next(6))
        {
            case 0: snappy = Snappy.CompressToArray(raw.AsSpan(0, rng.Next(raw.Length))); flaw = "the cube is shorter than 16³ values"; break;
            case 1: snappy = snappy.AsSpan(0, rng.Next(snappy.Length)).ToArray(); flaw = "the Snappy payload is truncated"; break;
            case 2: snappy = [0xff, 0xff, 0xff, 0xff, 0x0f, .. snappy.AsSpan(3)]; flaw = "the Snappy length varint is huge"; break;
            case 3: snappy = Infrastructure.ByteMutator.Mutate(snappy, rng, [0x00, 0xff, 0x01, 0xfe]); break;
            default: break;
        }
        var parts = new List<ZipPart> { new() { Name = "m.seg.sz", Content = snappy, Deflate = rng.Next(2) == 0 } };
        int extra = rng.Next(8);
        if (extra == 0) parts.Clear();
        if (extra == 1) parts.Add(new ZipPart { Name = "second", Content = [1, 2, 3] });
        if (extra == 2) { parts[0].Crc = 0x12345678; flaw = "its CRC-32 is wrong"; }
        if (extra == 3) { parts[0].UncompressedSize = snappy.Length + 100; flaw = "the declared size is larger than the data"; }
        if (parts.Count == 0) flaw = "the zip has no member";
        return new FuzzInput([1, .. ZipBuilder.Build(parts)], flaw);
    }

    public override bool Run(byte[] data)
    {
        if (data.Length == 0) return false;
        var dest = data[0] % 2 == 0 ? _big : _small;
        KnossosCubeCodec.Decode(new MemoryStream(data, 1, data.Length - 1), dest, InputName);
        return true;
    }
}
