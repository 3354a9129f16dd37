using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// Writes a zip archive member by member, compressing batches of members in parallel and writing them in
/// order: the layout Python's <c>zipfile</c> (and so numpy's <c>savez</c>/<c>savez_compressed</c>) writes —
/// local headers without data descriptors, a central directory, ZIP64 records only when sizes, offsets or
/// the member count need them.
/// </summary>
/// <remarks>Not thread-safe: one writer per thread. The stream need not be seekable.</remarks>
internal sealed class ZipMemberWriter : IDisposable
{
    private const uint Max32 = 0xFFFFFFFF;

    private readonly Stream _out;
    private readonly bool _leaveOpen;
    private readonly CompressionLevel _level;
    private readonly bool _deflate;
    private readonly List<CentralEntry> _central = [];
    private readonly List<(string Name, Func<byte[]> Content)> _batch = [];
    private readonly int _batchSize;
    private readonly ushort _dosTime, _dosDate;
    private long _offset;
    private bool _finished;

    private readonly record struct CentralEntry(byte[] Name, uint Crc, long Compressed, long Uncompressed, long Offset);

    private sealed record Prepared(byte[] Name, uint Crc, long Uncompressed, byte[] Payload);

    public ZipMemberWriter(Stream output, bool deflate, CompressionLevel level, bool leaveOpen, int batchSize = 64)
    {
        _out = output;
        _deflate = deflate;
        _level = deflate ? level : CompressionLevel.NoCompression;
        _leaveOpen = leaveOpen;
        _batchSize = Math.Max(1, batchSize);
        var now = DateTime.Now;
        int year = Math.Clamp(now.Year, 1980, 2107);
        _dosTime = (ushort)((now.Hour << 11) | (now.Minute << 5) | (now.Second / 2));
        _dosDate = (ushort)(((year - 1980) << 9) | (now.Month << 5) | now.Day);
    }

    /// <summary>Queues a member; its content is produced (and compressed) when the batch is flushed.</summary>
    public void Add(string name, Func<byte[]> content)
    {
        _batch.Add((name, content));
        if (_batch.Count >= _batchSize) Flush();
    }

    private void Flush()
    {
        if (_batch.Count == 0) return;
        var prepared = new Prepared[_batch.Count];
        Parallel.For(0, _batch.Count, i => prepared[i] = Prepare(_batch[i].Name, _batch[i].Content()));
        _batch.Clear();
        foreach (var p in prepared) WriteLocal(p);
    }

    private Prepared Prepare(string name, byte[] raw)
    {
        uint crc = Crc32.HashToUInt32(raw);
        byte[] payload = raw;
        if (_deflate)
        {
            var ms = new MemoryStream(raw.Length / 2 + 64);
            using (var d = new DeflateStream(ms, _level, leaveOpen: true)) d.Write(raw);
            payload = ms.ToArray();
        }
        return new Prepared(Encoding.UTF8.GetBytes(name), crc, raw.Length, payload);
    }

    private void WriteLocal(Prepared p)
    {
        bool zip64 = p.Uncompressed >= Max32 || p.Payload.LongLength >= Max32;
        var h = new byte[30 + p.Name.Length + (zip64 ? 20 : 0)];
        var s = h.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(s, 0x04034b50);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (ushort)(zip64 ? 45 : 20));
        BinaryPrimitives.WriteUInt16LittleEndian(s[6..], Flags(p.Name));
        BinaryPrimitives.WriteUInt16LittleEndian(s[8..], (ushort)(_deflate ? 8 : 0));
        BinaryPrimitives.WriteUInt16LittleEndian(s[10..], _dosTime);
        BinaryPrimitives.WriteUInt16LittleEndian(s[12..], _dosDate);
        BinaryPrimitives.WriteUInt32LittleEndian(s[14..], p.Crc);
        BinaryPrimitives.WriteUInt32LittleEndian(s[18..], zip64 ? Max32 : (uint)p.Payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[22..], zip64 ? Max32 : (uint)p.Uncompressed);
        BinaryPrimitives.WriteUInt16LittleEndian(s[26..], (ushort)p.Name.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)(zip64 ? 20 : 0));
        p.Name.CopyTo(s[30..]);
        if (zip64)
        {
            var e = s[(30 + p.Name.Length)..];
            BinaryPrimitives.WriteUInt16LittleEndian(e, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(e[2..], 16);
            BinaryPrimitives.WriteInt64LittleEndian(e[4..], p.Uncompressed);
            BinaryPrimitives.WriteInt64LittleEndian(e[12..], p.Payload.LongLength);
        }
        _central.Add(new CentralEntry(p.Name, p.Crc, p.Payload.LongLength, p.Uncompressed, _offset));
        _out.Write(h);
        _out.Write(p.Payload);
        _offset += h.Length + p.Payload.LongLength;
    }

    private static ushort Flags(byte[] name)
    {
        foreach (var b in name) if (b >= 0x80) return 0x800; // UTF-8 file name
        return 0;
    }

    /// <summary>Writes the remaining members and the central directory.</summary>
    public void Finish()
    {
        if (_finished) return;
        Flush();
        long cdStart = _offset;
        foreach (var c in _central)
        {
            bool big = c.Uncompressed >= Max32 || c.Compressed >= Max32 || c.Offset >= Max32;
            int extra = big ? 4 + 24 : 0;
            var h = new byte[46 + c.Name.Length + extra];
            var s = h.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x02014b50);
            BinaryPrimitives.WriteUInt16LittleEndian(s[4..], (ushort)((3 << 8) | (big ? 45 : 20)));
            BinaryPrimitives.WriteUInt16LittleEndian(s[6..], (ushort)(big ? 45 : 20));
            BinaryPrimitives.WriteUInt16LittleEndian(s[8..], Flags(c.Name));
            BinaryPrimitives.WriteUInt16LittleEndian(s[10..], (ushort)(_deflate ? 8 : 0));
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], _dosTime);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], _dosDate);
            BinaryPrimitives.WriteUInt32LittleEndian(s[16..], c.Crc);
            BinaryPrimitives.WriteUInt32LittleEndian(s[20..], big ? Max32 : (uint)c.Compressed);
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], big ? Max32 : (uint)c.Uncompressed);
            BinaryPrimitives.WriteUInt16LittleEndian(s[28..], (ushort)c.Name.Length);
            BinaryPrimitives.WriteUInt16LittleEndian(s[30..], (ushort)extra);
            BinaryPrimitives.WriteUInt32LittleEndian(s[38..], 0x180u << 16); // -rw------- as Python's zipfile
            BinaryPrimitives.WriteUInt32LittleEndian(s[42..], big ? Max32 : (uint)c.Offset);
            c.Name.CopyTo(s[46..]);
            if (big)
            {
                var e = s[(46 + c.Name.Length)..];
                BinaryPrimitives.WriteUInt16LittleEndian(e, 1);
                BinaryPrimitives.WriteUInt16LittleEndian(e[2..], 24);
                BinaryPrimitives.WriteInt64LittleEndian(e[4..], c.Uncompressed);
                BinaryPrimitives.WriteInt64LittleEndian(e[12..], c.Compressed);
                BinaryPrimitives.WriteInt64LittleEndian(e[20..], c.Offset);
            }
            _out.Write(h);
            _offset += h.Length;
        }
        long cdSize = _offset - cdStart;
        bool zip64End = _central.Count >= 0xFFFF || cdStart >= Max32 || cdSize >= Max32;
        if (zip64End)
        {
            var z = new byte[56 + 20];
            var s = z.AsSpan();
            BinaryPrimitives.WriteUInt32LittleEndian(s, 0x06064b50);
            BinaryPrimitives.WriteInt64LittleEndian(s[4..], 44);
            BinaryPrimitives.WriteUInt16LittleEndian(s[12..], (3 << 8) | 45);
            BinaryPrimitives.WriteUInt16LittleEndian(s[14..], 45);
            BinaryPrimitives.WriteInt64LittleEndian(s[24..], _central.Count);
            BinaryPrimitives.WriteInt64LittleEndian(s[32..], _central.Count);
            BinaryPrimitives.WriteInt64LittleEndian(s[40..], cdSize);
            BinaryPrimitives.WriteInt64LittleEndian(s[48..], cdStart);
            BinaryPrimitives.WriteUInt32LittleEndian(s[56..], 0x07064b50);
            BinaryPrimitives.WriteInt64LittleEndian(s[64..], _offset);
            BinaryPrimitives.WriteUInt32LittleEndian(s[72..], 1);
            _out.Write(z);
            _offset += z.Length;
        }
        var eocd = new byte[22];
        var t = eocd.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(t, 0x06054b50);
        ushort count = (ushort)Math.Min(_central.Count, 0xFFFF);
        BinaryPrimitives.WriteUInt16LittleEndian(t[8..], count);
        BinaryPrimitives.WriteUInt16LittleEndian(t[10..], count);
        BinaryPrimitives.WriteUInt32LittleEndian(t[12..], cdSize >= Max32 ? Max32 : (uint)cdSize);
        BinaryPrimitives.WriteUInt32LittleEndian(t[16..], cdStart >= Max32 ? Max32 : (uint)cdStart);
        _out.Write(eocd);
        _out.Flush();
        _finished = true;
    }

    public void Dispose()
    {
        Finish();
        if (!_leaveOpen) _out.Dispose();
    }
}
