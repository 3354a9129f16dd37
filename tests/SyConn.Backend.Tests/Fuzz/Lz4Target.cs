using System.Buffers.Binary;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// python-lz4 blocks and LZ4 chunk lists. An input is a small container: dtype index, shape form, chunk count (u16),
/// then each chunk as a u32 length and its bytes; mutating it gives hostile chunk counts and sizes, and the generator
/// writes blocks whose size prefix lies and lists whose blocks announce more than the limits allow.
/// </summary>
internal sealed class Lz4Target : FuzzTarget
{
    private static readonly DType[] DTypes = [DType.UInt8, DType.Int32, DType.UInt64, DType.Float32, DType.Parse(">i4"), DType.Parse("<c16"), DType.Parse("|S3")];

    private static readonly long[]?[] Shapes = [null, [-1], [-1, 3], [-1, -1], [1L << 62, 4], [-1, 0], [-5], [-1, 1L << 40, 1L << 40], [-1, 2, 2]];

    public override string Name => "lz4";

    public override string InputName => "fuzz-lz4";

    protected override IEnumerable<byte[]> LoadSeeds(string shared)
    {
        foreach (var f in new[] { "compressed_storage.pkl", "compressed_storage_multichunk.pkl", "compressed_storage_large_block.pkl", "mesh_storage_lz4.pkl", "skeleton_storage.pkl" })
        {
            var path = Path.Combine(shared, "fixtures", "py", f);
            if (!File.Exists(path)) continue;
            foreach (var list in BlockLists(P.Load(File.ReadAllBytes(path))).Take(20))
                yield return Pack(0, 2, list);
        }
        var rng = new Random(5);
        var data = new int[3000];
        for (int i = 0; i < data.Length; i++) data[i] = rng.Next(10);
        var arr = NdArray.Create(data, 1000, 3);
        foreach (int chunk in new[] { 1200, 5000, PyLz4.MaxInputSize })
            yield return Pack(1, 2, Lz4List.Encode(arr, chunk).Select(o => ((PyBytes)o).Data.ToArray()).ToList());
    }

    /// <summary>Every list of bytes in a loaded pickle whose elements all parse as python-lz4 blocks.</summary>
    private static IEnumerable<List<byte[]>> BlockLists(object? v)
    {
        switch (v)
        {
            case PyList l when l.Count > 0 && l.All(x => x is PyBytes b && (b.Length == 0 || Parses(b))):
                yield return l.Select(x => ((PyBytes)x!).Data.ToArray()).ToList();
                break;
            case PyList l: foreach (var x in l) foreach (var r in BlockLists(x)) yield return r; break;
            case PyTuple t: foreach (var x in t) foreach (var r in BlockLists(x)) yield return r; break;
            case PyDict d: foreach (var kv in d) foreach (var r in BlockLists(kv.Value)) yield return r; break;
        }
    }

    private static bool Parses(PyBytes b)
    {
        try { PyLz4.Decompress(b.Data.Span); return true; }
        catch (InvalidDataException) { return false; }
    }

    internal static byte[] Pack(int dtype, int shape, IReadOnlyList<byte[]> chunks, int? declaredCount = null)
    {
        var ms = new MemoryStream();
        ms.WriteByte((byte)dtype);
        ms.WriteByte((byte)shape);
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt16LittleEndian(b, (ushort)(declaredCount ?? chunks.Count));
        ms.Write(b[..2]);
        foreach (var c in chunks)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)c.Length);
            ms.Write(b);
            ms.Write(c);
        }
        return ms.ToArray();
    }

    /// <summary>The container back as (dtype, shape, chunks); lengths past the end are cut, a count past the end stops.</summary>
    internal static (DType DType, long[]? Shape, List<object> Chunks) Unpack(byte[] data)
    {
        var dt = data.Length > 0 ? DTypes[data[0] % DTypes.Length] : DType.UInt8;
        var sh = data.Length > 1 ? Shapes[data[1] % Shapes.Length] : null;
        int count = data.Length >= 4 ? BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(2)) : 0;
        var chunks = new List<object>();
        int p = 4;
        for (int i = 0; i < count && p + 4 <= data.Length; i++)
        {
            long len = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(p));
            p += 4;
            int take = (int)Math.Min(len, data.Length - p);
            // Some chunks are handed over as bytearray or as the legacy empty str.
            var bytes = data.AsSpan(p, take).ToArray();
            chunks.Add(take == 0 && i % 3 == 1 ? "" : i % 4 == 3 ? new PyByteArray(bytes) : new PyBytes(bytes));
            p += take;
        }
        return (dt, sh, chunks);
    }

    protected override FuzzInput Structured(Random rng)
    {
        var seed = Unpack(Seeds[rng.Next(Seeds.Count)]);
        var chunks = seed.Chunks.Select(c => c switch { PyBytes b => b.Data.ToArray(), PyByteArray b => b.Data.ToArray(), _ => Array.Empty<byte>() }).ToList();
        string? flaw = null;
        switch (rng.Next(6))
        {
            case 0:
                // A size prefix that lies: one byte more, one less, huge, negative, or zero for a block with data.
                var c = chunks.Where(x => x.Length > 4).DefaultIfEmpty(PyLz4.Compress(new byte[64])).First();
                int real = BinaryPrimitives.ReadInt32LittleEndian(c);
                int[] lies = [real + 1, real - 1, int.MaxValue, -1, 0, (c.Length - 4) * 255 + 1];
                int lie = lies[rng.Next(lies.Length)];
                var copy = (byte[])c.Clone();
                BinaryPrimitives.WriteInt32LittleEndian(copy, lie);
                chunks = [copy];
                flaw = $"size prefix {lie} where the block holds {real}";
                break;
            case 1:
                // Many blocks, each announcing as much as its data could produce: together above the entry limit.
                var big = new byte[4 + 300_000];
                BinaryPrimitives.WriteInt32LittleEndian(big, 300_000 * 255);
                chunks = Enumerable.Repeat(big, 2 + rng.Next(3)).ToList();
                flaw = "the blocks announce more than the read limits";
                break;
            case 2:
                chunks = Enumerable.Range(0, 1 + rng.Next(20000)).Select(_ => rng.Next(3) == 0 ? Array.Empty<byte>() : new byte[] { 1, 0, 0, 0, 0x10, 7 }).ToList();
                break;
            case 3:
                return new FuzzInput(Pack(rng.Next(DTypes.Length), rng.Next(Shapes.Length), chunks, rng.Next(65536)));
            default:
                if (chunks.Count > 0) chunks[rng.Next(chunks.Count)] = ByteMutator(chunks[rng.Next(chunks.Count)], rng);
                break;
        }
        return new FuzzInput(Pack(rng.Next(DTypes.Length), rng.Next(Shapes.Length), chunks), flaw);
    }

    private static byte[] ByteMutator(byte[] b, Random rng) => Infrastructure.ByteMutator.Mutate(b, rng, [0xff, 0x00, 0xf0, 0x0f]);

    public override bool Run(byte[] data)
    {
        var (dt, sh, chunks) = Unpack(data);
        foreach (var c in chunks)
        {
            if (c is not PyBytes { Length: > 0 } b) continue;
            byte[]? native = null, managed;
            if (NativeLz4.IsAvailable)
            {
                try { native = PyLz4.Decompress(b.Data.Span, Lz4Impl.Native, InputName); }
                catch (InvalidDataException) { native = null; }
            }
            try { managed = PyLz4.Decompress(b.Data.Span, Lz4Impl.Managed, InputName); }
            catch (InvalidDataException) { managed = null; }
            byte[]? builtin;
            try { builtin = PyLz4.Decompress(b.Data.Span, Lz4Impl.Builtin, InputName); }
            catch (InvalidDataException) { builtin = null; }
            string head = Convert.ToHexString(b.Data.Span[..Math.Min(b.Length, 64)]);
            if (NativeLz4.IsAvailable && native is not null && managed is not null)
                Assert.True(native.AsSpan().SequenceEqual(managed), $"liblz4 and K4os decode a block differently: {head}");
            // Our decoder accepts what K4os accepts (and liblz4, which the codec tests hold to the same), to the same bytes.
            Assert.True((builtin is null) == (managed is null), $"our decoder {(builtin is null ? "refuses" : "decodes")} a block K4os {(managed is null ? "refuses" : "decodes")}: {head}");
            if (builtin is not null && managed is not null)
                Assert.True(builtin.AsSpan().SequenceEqual(managed), $"our decoder and K4os decode a block differently: {head}");
        }
        var a = Lz4List.Decode(chunks, dt, sh, InputName);
        Assert.Equal(a.Size * a.DType.ItemSize, a.Data.Length);
        Assert.True(chunks.Count == 0 || a.DType.IsNativeByteOrder, $"a {a.DType.Str} result from {chunks.Count} blocks");
        return true;
    }
}
