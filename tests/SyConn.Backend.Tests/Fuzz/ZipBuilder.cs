using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>One member for <see cref="ZipBuilder"/>, with fields that may lie.</summary>
internal sealed class ZipPart
{
    public required string Name { get; init; }
    public required byte[] Content { get; init; }
    public bool Deflate { get; init; } = true;
    /// <summary>Overrides of what the central directory declares (null: the truth).</summary>
    public uint? Crc { get; set; }
    public long? CompressedSize { get; set; }
    public long? UncompressedSize { get; set; }
    /// <summary>Overrides of the local header only.</summary>
    public uint? LocalCrc { get; set; }
    public long? LocalUncompressedSize { get; set; }
    public string? LocalName { get; set; }
    public int? LocalMethod { get; set; }
    /// <summary>Write numpy's ZIP64 extra field in the local header.</summary>
    public bool Zip64Local { get; init; }
    /// <summary>Replaces the compressed bytes (after the sizes were taken from the real ones).</summary>
    public byte[]? RawData { get; set; }
}

/// <summary>Writes zip archives byte by byte, so that tests can build valid containers and containers whose fields disagree.</summary>
internal static class ZipBuilder
{
    public static byte[] Deflate(byte[] content)
    {
        using var ms = new MemoryStream();
        using (var d = new DeflateStream(ms, CompressionLevel.Fastest, leaveOpen: true)) d.Write(content);
        return ms.ToArray();
    }

    public static byte[] Build(IReadOnlyList<ZipPart> parts, long? declaredEntries = null, long? cdOffsetOverride = null)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        var central = new List<(ZipPart P, long Offset, byte[] Data, uint Crc)>();
        foreach (var p in parts)
        {
            byte[] data = p.Deflate ? Deflate(p.Content) : p.Content;
            uint crc = Crc32.HashToUInt32(p.Content);
            long offset = ms.Position;
            byte[] name = Encoding.UTF8.GetBytes(p.LocalName ?? p.Name);
            byte[] extra = [];
            long lu = p.LocalUncompressedSize ?? p.UncompressedSize ?? p.Content.Length;
            long lc = p.CompressedSize ?? data.Length;
            if (p.Zip64Local)
            {
                extra = new byte[20];
                BinaryPrimitives.WriteUInt16LittleEndian(extra, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(extra.AsSpan(2), 16);
                BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(4), lu);
                BinaryPrimitives.WriteInt64LittleEndian(extra.AsSpan(12), lc);
            }
            w.Write(0x04034b50u);
            w.Write((ushort)20);
            w.Write((ushort)0x800);
            w.Write((ushort)(p.LocalMethod ?? (p.Deflate ? 8 : 0)));
            w.Write((ushort)0);
            w.Write((ushort)0x21);
            w.Write(p.LocalCrc ?? p.Crc ?? crc);
            w.Write((uint)Math.Min(lc, uint.MaxValue));
            w.Write((uint)Math.Min(lu, uint.MaxValue));
            w.Write((ushort)name.Length);
            w.Write((ushort)extra.Length);
            w.Write(name);
            w.Write(extra);
            w.Write(p.RawData ?? data);
            central.Add((p, offset, data, crc));
        }
        long cdStart = ms.Position;
        foreach (var (p, offset, data, crc) in central)
        {
            byte[] name = Encoding.UTF8.GetBytes(p.Name);
            w.Write(0x02014b50u);
            w.Write((ushort)20);
            w.Write((ushort)20);
            w.Write((ushort)0x800);
            w.Write((ushort)(p.Deflate ? 8 : 0));
            w.Write((ushort)0);
            w.Write((ushort)0x21);
            w.Write(p.Crc ?? crc);
            w.Write((uint)Math.Min(p.CompressedSize ?? data.Length, uint.MaxValue));
            w.Write((uint)Math.Min(p.UncompressedSize ?? p.Content.Length, uint.MaxValue));
            w.Write((ushort)name.Length);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write((ushort)0);
            w.Write(0u);
            w.Write((uint)offset);
            w.Write(name);
        }
        long cdEnd = ms.Position;
        w.Write(0x06054b50u);
        w.Write((ushort)0);
        w.Write((ushort)0);
        ushort n = (ushort)Math.Min(declaredEntries ?? parts.Count, ushort.MaxValue);
        w.Write(n);
        w.Write(n);
        w.Write((uint)(cdEnd - cdStart));
        w.Write((uint)(cdOffsetOverride ?? cdStart));
        w.Write((ushort)0);
        w.Flush();
        return ms.ToArray();
    }
}
