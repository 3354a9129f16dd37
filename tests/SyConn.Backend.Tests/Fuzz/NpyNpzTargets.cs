using System.Globalization;
using System.IO.Compression;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Storage;
using NpyCodec = SyConn.Backend.Formats.Npy.Npy;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>.npy images: fixture members, arrays written here, and headers with hostile dicts, shapes, dtypes, versions and lengths.</summary>
internal sealed class NpyTarget : FuzzTarget
{
    public override string Name => "npy";

    protected override ReadOnlySpan<byte> Interesting => "(),:'[]{}-9LTF\n\0\xff"u8;

    /// <summary>The raw members of the fixture archives (the .npy files numpy wrote).</summary>
    internal static IEnumerable<byte[]> FixtureMembers(string shared)
    {
        foreach (var f in new[] { "voxel_lazy.npz", "voxel_storage_dyn.npz" })
        {
            using var zip = ZipFile.OpenRead(Path.Combine(shared, "fixtures", "py", f));
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var ms = new MemoryStream();
                s.CopyTo(ms);
                yield return ms.ToArray();
            }
        }
    }

    internal static IEnumerable<NdArray> BuiltArrays()
    {
        yield return NdArray.Create(new long[] { 1, -2, 3, 4, 5, 6 }, 2, 3);
        yield return NdArray.Create(new float[] { 1.5f, 2.5f }, 2);
        yield return new NdArray(DType.UInt8, [2, 2], new byte[] { 1, 2, 3, 4 }, ArrayOrder.F);
        yield return NdArray.Create(new ulong[] { ulong.MaxValue }, 1);
        yield return NdArray.Create(new int[] { 7 });
        yield return NdArray.Zeros(DType.Int32, 0, 3);
        yield return NdArray.Zeros(DType.Parse(">i2"), 4);
        yield return NdArray.Zeros(DType.Parse("<c16"), 2);
    }

    protected override IEnumerable<byte[]> LoadSeeds(string shared) =>
        FixtureMembers(shared).Concat(BuiltArrays().Select(NpyCodec.ToBytes));

    private static readonly string[] Descrs =
    [
        "<i8", "<f4", "|u1", ">i2", "<c16", "|b1", "<U5", "|S3", "|O", "|V8", "<M8[ns]", "<i99999999999", "", "<f0", "x", "<u8", ">f8",
    ];

    private static readonly string[] Dims =
    [
        "0", "1", "3", "2147483648", "4611686018427387904", "-1", "1" + new string('0', 30), "(2,)", "'a'", "True", "3L", "1_0", "0x10", "9223372036854775807",
    ];

    /// <summary>A header dict with hostile parts; the data after it may be too short or too long.</summary>
    internal static FuzzInput HostileNpy(Random rng)
    {
        var sb = new StringBuilder("{");
        string? flaw = null;
        int kind = rng.Next(12);
        if (kind == 0)
        {
            int depth = 30 + rng.Next(5000);
            sb.Append("'shape': ").Append(new string('(', depth)).Append(new string(')', rng.Next(depth + 1)));
            flaw = $"shape nested {depth} deep";
        }
        else
        {
            string descr = rng.Next(8) == 0 ? "[('a', '<i4')]" : "'" + Descrs[rng.Next(Descrs.Length)] + "'";
            string fortran = rng.Next(6) == 0 ? new[] { "1", "None", "'x'", "()" }[rng.Next(4)] : rng.Next(2) == 0 ? "True" : "False";
            int nd = rng.Next(10) == 0 ? rng.Next(200) : rng.Next(4);
            var dims = Enumerable.Range(0, nd).Select(_ => rng.Next(3) == 0 ? Dims[rng.Next(Dims.Length)] : rng.Next(5).ToString(CultureInfo.InvariantCulture)).ToList();
            if (dims.Contains("-1")) flaw = "negative dimension";
            string shape = "(" + string.Join(", ", dims) + (nd == 1 ? ",)" : ")");
            var items = new List<string> { $"'descr': {descr}", $"'fortran_order': {fortran}", $"'shape': {shape}" };
            if (rng.Next(8) == 0) items.Add("'extra': 1");
            if (rng.Next(8) == 0) items.RemoveAt(rng.Next(items.Count));
            if (rng.Next(8) == 0) items.Add(items[rng.Next(items.Count)]);
            sb.Append(string.Join(", ", items.OrderBy(_ => rng.Next())));
            if (rng.Next(2) == 0) sb.Append(", ");
        }
        sb.Append('}');
        if (rng.Next(10) == 0) sb.Append(new string(' ', rng.Next(70000)));
        sb.Append('\n');
        int major = rng.Next(6) == 0 ? rng.Next(5) : 1 + rng.Next(3);
        byte[] header = major == 3 ? Encoding.UTF8.GetBytes(sb.ToString()) : Encoding.Latin1.GetBytes(sb.ToString());
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        long hlen = rng.Next(10) == 0 ? rng.NextInt64(uint.MaxValue) : header.Length;
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)hlen)); else ms.Write(BitConverter.GetBytes((uint)hlen));
        ms.Write(header);
        var data = new byte[rng.Next(4) == 0 ? rng.Next(4096) : rng.Next(64)];
        rng.NextBytes(data);
        ms.Write(data);
        return new FuzzInput(ms.ToArray(), flaw);
    }

    protected override FuzzInput Structured(Random rng) => HostileNpy(rng);

    public override bool Run(byte[] data)
    {
        var a = NpyCodec.Read(data, InputName);
        Check(a);
        var b = NpyCodec.Read(new MemoryStream(data), InputName, null, data.Length);
        Check(b);
        Assert.Equal(a.ShapeArray, b.ShapeArray);
        Check(NpyCodec.Read(new MemoryStream(data), InputName));
        return true;
    }

    internal static void Check(NdArray a)
    {
        Assert.Null(a.Objects);
        Assert.Equal(a.Size * a.DType.ItemSize, a.Data.Length);
    }
}

/// <summary>.npz archives: the fixtures, archives written here, and zips built byte by byte with lying fields, damaged data,
/// hostile member names and bombs.</summary>
internal sealed class NpzTarget : FuzzTarget
{
    private static readonly Lazy<byte[]> Zeros = new(() => new byte[100 << 20]);
    private static readonly Lazy<byte[]> DeflatedZeros = new(() => ZipBuilder.Deflate(Zeros.Value));
    private List<byte[]> _members = [];

    public override string Name => "npz";

    public override string InputName => "fuzz.npz";

    protected override ReadOnlySpan<byte> Interesting => [0x50, 0x4b, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0xff, 0x00, 0x08];

    protected override IEnumerable<byte[]> LoadSeeds(string shared)
    {
        _members = NpyTarget.FixtureMembers(shared).Concat(NpyTarget.BuiltArrays().Select(NpyCodec.ToBytes)).ToList();
        yield return File.ReadAllBytes(Path.Combine(shared, "fixtures", "py", "voxel_lazy.npz"));
        yield return File.ReadAllBytes(Path.Combine(shared, "fixtures", "py", "voxel_storage_dyn.npz"));
        foreach (bool compress in new[] { true, false })
        {
            var ms = new MemoryStream();
            Npz.Write(ms, NpyTarget.BuiltArrays().Select((a, i) => KeyValuePair.Create(i.ToString(CultureInfo.InvariantCulture), a)), compress,
                timestamp: new DateTime(2024, 1, 1));
            yield return ms.ToArray();
        }
    }

    private static readonly string[] HostileNames =
    [
        "../../escape.npy", "/etc/passwd.npy", "a/b.npy", "..\\x.npy", "nul\0byte.npy", "..npy", ".npy", "", "C:\\x.npy", "..", "./5.npy",
        "ctl\u0007.npy",
    ];

    protected override FuzzInput Structured(Random rng)
    {
        int n = 1 + rng.Next(3);
        var parts = new List<ZipPart>();
        for (int i = 0; i < n; i++)
        {
            byte[] content = rng.Next(3) == 0 ? NpyTarget.HostileNpy(rng).Data : _members[rng.Next(_members.Count)];
            parts.Add(new ZipPart { Name = $"{i}.npy", Content = content, Deflate = rng.Next(2) == 0, Zip64Local = rng.Next(2) == 0 });
        }
        var p = parts[rng.Next(parts.Count)];
        string? flaw = null;
        long? entries = null;
        switch (rng.Next(12))
        {
            case 0: p.Crc = ~(p.Crc ?? 0) ^ System.IO.Hashing.Crc32.HashToUInt32(p.Content); flaw = "its CRC-32 is wrong"; break;
            case 1:
                if (!p.Deflate && p.Content.Length > 0)
                {
                    var raw = (byte[])p.Content.Clone();
                    raw[rng.Next(raw.Length)] ^= (byte)(1 + rng.Next(255));
                    p.RawData = raw;
                    flaw = "a stored byte is damaged";
                }
                break;
            case 2: p.LocalCrc = 0xdeadbeef; flaw = "local and central CRC-32 disagree"; break;
            case 3: p.LocalName = p.Name + "x"; flaw = "local and central names disagree"; break;
            case 4: p.LocalUncompressedSize = p.Content.Length + 1; flaw = "local and central sizes disagree"; break;
            case 5: p.UncompressedSize = p.Content.Length + 1 + rng.Next(1 << 20); flaw = "the declared size is larger than the data"; break;
            case 6:
                parts[parts.IndexOf(p)] = new ZipPart { Name = HostileNames[rng.Next(HostileNames.Length)], Content = p.Content, Deflate = p.Deflate };
                flaw = "a member name is a path";
                break;
            case 7:
                // A bomb: 100 MiB of zeros, declared truthfully (refused by the member limit) or as a small member.
                var bomb = new ZipPart { Name = "bomb.npy", Content = Zeros.Value, Deflate = true, RawData = null };
                if (rng.Next(2) == 0) bomb.UncompressedSize = 1000;
                parts.Add(bomb);
                flaw = "a zip bomb";
                break;
            case 8: entries = parts.Count + 1 + rng.Next(70000); break;
            case 9:
                for (int k = 0; k < 50; k++) parts.Add(new ZipPart { Name = $"d{k}.npy", Content = p.Content, Deflate = p.Deflate });
                break;
            default: break;
        }
        byte[] zip = BuildWithBomb(parts, entries);
        return new FuzzInput(zip, flaw);
    }

    /// <summary><see cref="ZipBuilder.Build"/>, deflating the shared zero block once.</summary>
    private static byte[] BuildWithBomb(List<ZipPart> parts, long? entries)
    {
        foreach (var p in parts)
            if (ReferenceEquals(p.Content, Zeros.Value)) p.RawData = DeflatedZeros.Value;
        // The builder deflates Content to measure it; for the bomb the cached stream stands in.
        var measured = parts.Select(p => ReferenceEquals(p.Content, Zeros.Value)
            ? new ZipPart
            {
                Name = p.Name, Content = [], Deflate = true, RawData = p.RawData, Crc = System.IO.Hashing.Crc32.HashToUInt32(Zeros.Value),
                CompressedSize = DeflatedZeros.Value.Length, UncompressedSize = p.UncompressedSize ?? Zeros.Value.Length,
            }
            : p).ToList();
        return ZipBuilder.Build(measured, entries);
    }

    private string? _file;

    public override void Setup(string shared, string scratch)
    {
        _file = Path.Combine(scratch, InputName);
        base.Setup(shared, scratch);
    }

    // Every member read as a stream's reader does (one at a time, through streams) or a file's (positional reads, a
    // one-shot inflate): the array, or the exception that refused it; the archive's own refusal ends the list.
    private static List<(string Key, NdArray? Array, Exception? Error)> ReadEach(Func<NpzReader> open)
    {
        var outcomes = new List<(string, NdArray?, Exception?)>();
        NpzReader r;
        try
        {
            r = open();
        }
        catch (Exception e)
        {
            outcomes.Add(("(archive)", null, e));
            return outcomes;
        }
        using (r)
        {
            foreach (var k in r.Keys)
            {
                Assert.False(k.Contains('/') || k.Contains('\\') || k.Contains('\0') || k is "." or "..", $"member key '{k}' could name a path");
                try
                {
                    var a = r.Read(k);
                    NpyTarget.Check(a);
                    outcomes.Add((k, a, null));
                }
                catch (InvalidDataException e)
                {
                    outcomes.Add((k, null, e));
                }
            }
        }
        return outcomes;
    }

    public override bool Run(byte[] data)
    {
        var streamed = ReadEach(() => new NpzReader(new MemoryStream(data), InputName, leaveOpen: false, null));
        File.WriteAllBytes(_file!, data);
        var fromFile = ReadEach(() => NpzFile.OpenRead(_file!));
        // The two ways agree: the same members read to the same arrays, the same ones are refused.
        Assert.Equal(streamed.Select(o => o.Key), fromFile.Select(o => o.Key));
        for (int i = 0; i < streamed.Count; i++)
        {
            var (key, a, ea) = streamed[i];
            var (_, b, eb) = fromFile[i];
            Assert.True((ea is null) == (eb is null), $"member '{key}': the stream's reader {(ea is null ? "read it" : "refused it: " + ea.Message)}, the file's {(eb is null ? "read it" : "refused it: " + eb.Message)}");
            if (a is null || b is null) continue;
            Assert.Equal(a.DType, b.DType);
            Assert.Equal(a.ShapeArray, b.ShapeArray);
            Assert.Equal(a.Order, b.Order);
            Assert.True(a.Data.Span.SequenceEqual(b.Data.Span), $"member '{key}': the file's reader gives other bytes");
        }
        var refusal = fromFile.FirstOrDefault(o => o.Error is not null).Error;
        if (refusal is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(refusal);
        return true;
    }
}
