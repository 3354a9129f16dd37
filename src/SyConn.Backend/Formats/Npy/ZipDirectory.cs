using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using System.Text;

namespace SyConn.Backend.Formats.Npy;

/// <summary>
/// Positional reads of an archive's bytes that several threads may make at once (a file, opened by the Storage layer):
/// <see cref="ReadAt"/> fills as much of the buffer as it can from the offset on and returns how much (0 at the end).
/// </summary>
internal interface IPositionalSource
{
    int ReadAt(Span<byte> buffer, long offset);
}

/// <summary>One member of a zip archive as its central directory describes it.</summary>
internal sealed record ZipMember(int Index, string Name, int Method, uint Crc, long CompressedSize, long UncompressedSize, long LocalHeaderOffset, ushort Flags,
    int NameLength);

/// <summary>
/// A strict reader of zip archives (the containers of .npz files and KNOSSOS cubes): the central directory
/// (with ZIP64 records) is parsed and checked against the file's size, every member's local header must agree
/// with its central entry (name, method, CRC-32, sizes), members are stored or deflated and not encrypted, their
/// declared sizes stay within <see cref="ReadLimits"/> (checked when the archive is opened, before anything is
/// inflated), and the bytes handed out are verified: a member that inflates to more or fewer bytes than declared,
/// or whose CRC-32 differs, raises <see cref="InvalidDataException"/> before its last byte is returned.
/// </summary>
/// <remarks>Pure: works on any seekable stream. Not thread-safe (the stream is shared).</remarks>
internal sealed class ZipDirectory
{
    private const uint EocdSig = 0x06054b50, Zip64EocdSig = 0x06064b50, Zip64LocatorSig = 0x07064b50, CentralSig = 0x02014b50, LocalSig = 0x04034b50;
    private const int MaxCommentSearch = 22 + 0xFFFF;

    /// <summary>Deflate cannot expand more than 1032:1; a member declaring more is a bomb or damaged.</summary>
    private const long MaxDeflateRatio = 1032;

    private readonly Stream _stream;
    private readonly IPositionalSource? _positional;
    private readonly string _name;
    private readonly long _centralOffset;

    private ZipDirectory(Stream stream, string name, List<ZipMember> members, long centralOffset, IPositionalSource? positional)
    {
        _stream = stream;
        _positional = positional;
        _name = name;
        Members = members;
        _centralOffset = centralOffset;
    }

    /// <summary>True when the archive came with a positional source (a file), from which <see cref="ReadWhole"/> reads
    /// members: several threads may then call it at once.</summary>
    public bool ReadsConcurrently => _positional is not null;

    /// <summary>The members in central-directory order.</summary>
    public IReadOnlyList<ZipMember> Members { get; }

    /// <summary>Parses and checks the central directory of the archive in <paramref name="stream"/> (seekable).</summary>
    /// <param name="stream">The whole archive.</param>
    /// <param name="name">The file (or stream) name for error messages.</param>
    /// <param name="limits">Size limits for members and the whole archive.</param>
    /// <param name="check">Extra per-member check (member names), run before the sizes are summed.</param>
    /// <exception cref="InvalidDataException">The archive is damaged, not a zip, uses unsupported features or exceeds a limit.</exception>
    /// <param name="memberLimit">What the member limit is called in messages (the cube reader passes its own bound).</param>
    /// <param name="positional">The same bytes as <paramref name="stream"/>, for <see cref="ReadWhole"/> (null: none).</param>
    public static ZipDirectory Read(Stream stream, string name, ReadLimits limits, Action<ZipMember>? check = null, string memberLimit = "ReadLimits." + nameof(ReadLimits.MaxNpzMemberBytes),
        IPositionalSource? positional = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(limits);
        if (!stream.CanSeek) throw new ArgumentException("a zip archive is read from a seekable stream", nameof(stream));
        long length = stream.Length;
        if (length < 22) throw Bad(name, $"file of {length} bytes is too short for a zip archive (no end of central directory record)");
        int tailLen = (int)Math.Min(length, MaxCommentSearch);
        var tail = new byte[tailLen];
        ReadAt(stream, length - tailLen, tail, name, "the end of central directory record");
        int at = -1;
        for (int p = tailLen - 22; p >= 0; p--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(p)) == EocdSig
                && p + 22 + BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(p + 20)) <= tailLen)
            { at = p; break; }
        }
        if (at < 0) throw Bad(name, "no end of central directory record (not a zip archive, or truncated)");
        long eocdPos = length - tailLen + at;
        var e = tail.AsSpan(at);
        long disk = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]), cdDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
        long entriesHere = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]), entries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]), cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long endOfCentral = eocdPos;
        if (entries == 0xFFFF || entriesHere == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            if (eocdPos < 20 + 56) throw Bad(name, $"ZIP64 end of central directory locator missing before offset {eocdPos}");
            var loc = new byte[20];
            ReadAt(stream, eocdPos - 20, loc, name, "the ZIP64 locator");
            if (BinaryPrimitives.ReadUInt32LittleEndian(loc) != Zip64LocatorSig)
                throw Bad(name, $"ZIP64 end of central directory locator missing at offset {eocdPos - 20}");
            long z64 = (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(loc.AsSpan(8)), long.MaxValue);
            if (z64 > eocdPos - 20 - 56) throw Bad(name, $"ZIP64 end of central directory offset {z64} (at offset {eocdPos - 12}) is outside the file");
            var r = new byte[56];
            ReadAt(stream, z64, r, name, "the ZIP64 end of central directory record");
            if (BinaryPrimitives.ReadUInt32LittleEndian(r) != Zip64EocdSig)
                throw Bad(name, $"no ZIP64 end of central directory record at offset {z64}");
            disk = BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(16));
            cdDisk = BinaryPrimitives.ReadUInt32LittleEndian(r.AsSpan(20));
            entriesHere = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(24)));
            entries = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(32)));
            cdSize = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(40)));
            cdOffset = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(r.AsSpan(48)));
            endOfCentral = z64;
        }
        if (disk != 0 || cdDisk != 0 || entriesHere != entries)
            throw Bad(name, "multi-disk zip archives are not supported");
        if (cdOffset > endOfCentral || cdSize > endOfCentral - cdOffset)
            throw Bad(name, $"central directory (offset {cdOffset}, {cdSize} bytes) does not end before the end record at offset {endOfCentral}");
        if (entries > cdSize / 46)
            throw Bad(name, $"end record declares {entries} members, but a central directory of {cdSize} bytes holds at most {cdSize / 46}");
        var cd = new byte[cdSize];
        ReadAt(stream, cdOffset, cd, name, "the central directory");
        var members = new List<ZipMember>((int)entries);
        int pos = 0;
        long total = 0;
        var strictUtf8 = new UTF8Encoding(false, true);
        for (int i = 0; i < entries; i++)
        {
            long off = cdOffset + pos;
            if (cd.Length - pos < 46 || BinaryPrimitives.ReadUInt32LittleEndian(cd.AsSpan(pos)) != CentralSig)
                throw Bad(name, $"central directory entry {i} at offset {off} is damaged (no signature)");
            var c = cd.AsSpan(pos);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(c[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(c[10..]);
            uint crc = BinaryPrimitives.ReadUInt32LittleEndian(c[16..]);
            long csize = BinaryPrimitives.ReadUInt32LittleEndian(c[20..]);
            long usize = BinaryPrimitives.ReadUInt32LittleEndian(c[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(c[28..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(c[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(c[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(c[42..]);
            if (46L + nameLen + extraLen + commentLen > cd.Length - pos)
                throw Bad(name, $"central directory entry {i} at offset {off} runs past the end of the central directory");
            var nameBytes = c.Slice(46, nameLen);
            string memberName;
            try
            {
                memberName = (flags & 0x800) != 0 ? strictUtf8.GetString(nameBytes) : DecodeLegacyName(nameBytes);
            }
            catch (DecoderFallbackException)
            {
                throw Bad(name, $"central directory entry {i} at offset {off}: member name is flagged UTF-8 but is not valid UTF-8");
            }
            string where = $"member '{Printable(memberName)}' (central directory entry {i} at offset {off})";
            ParseZip64(c.Slice(46 + nameLen, extraLen), ref usize, ref csize, ref localOffset, name, where);
            if ((flags & 0x41) != 0) throw Bad(name, $"{where} is encrypted; not supported");
            if (method is not (0 or 8)) throw Bad(name, $"{where} uses compression method {method}; only 0 (stored) and 8 (deflate) are supported");
            if (method == 0 && csize != usize) throw Bad(name, $"{where} is stored but declares {csize} compressed and {usize} uncompressed bytes");
            if (method == 8 && usize > csize * MaxDeflateRatio + 1024)
                throw Bad(name, $"{where} declares {usize} inflated bytes from {csize} deflated ones, more than deflate can expand (a zip bomb or damage)");
            if (localOffset >= cdOffset || csize > cdOffset - localOffset)
                throw Bad(name, $"{where}: data at offset {localOffset} ({csize} bytes) is not before the central directory at offset {cdOffset}");
            if (usize > limits.MaxNpzMemberBytes)
                throw Bad(name, $"{where}: declared inflated size of {usize} bytes exceeds the limit of {limits.MaxNpzMemberBytes} bytes ({memberLimit})");
            var m = new ZipMember(i, memberName, method, crc, csize, usize, localOffset, flags, nameLen);
            check?.Invoke(m);
            total += usize;
            if (total > limits.MaxNpzTotalBytes)
                throw Bad(name, ReadLimits.Exceeds($"the members up to {where} declare inflated sizes that", total, limits.MaxNpzTotalBytes, nameof(ReadLimits.MaxNpzTotalBytes)));
            members.Add(m);
            pos += 46 + nameLen + extraLen + commentLen;
        }
        return new ZipDirectory(stream, name, members, cdOffset, positional);
    }

    private static long Clamp(ulong v) => v > long.MaxValue ? long.MaxValue : (long)v;

    /// <summary>Names without the UTF-8 flag: ASCII as is; other bytes as code page 437 would need an encoding provider, so they are read as Latin-1.</summary>
    private static string DecodeLegacyName(ReadOnlySpan<byte> bytes) => Encoding.Latin1.GetString(bytes);

    /// <summary>A member name for messages: control characters escaped, long names cut.</summary>
    internal static string Printable(string s)
    {
        var sb = new StringBuilder();
        foreach (char ch in s.Length > 120 ? s[..120] : s)
            if (char.IsControl(ch)) sb.Append($"\\x{(int)ch:x2}"); else sb.Append(ch);
        if (s.Length > 120) sb.Append("...");
        return sb.ToString();
    }

    private static void ParseZip64(ReadOnlySpan<byte> extra, ref long usize, ref long csize, ref long offset, string name, string where)
    {
        bool needU = usize == 0xFFFFFFFF, needC = csize == 0xFFFFFFFF, needO = offset == 0xFFFFFFFF;
        int p = 0;
        while (p + 4 <= extra.Length)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra[p..]);
            int len = BinaryPrimitives.ReadUInt16LittleEndian(extra[(p + 2)..]);
            if (p + 4 + len > extra.Length) throw Bad(name, $"{where}: extra field 0x{id:x4} runs past the end of the extra data");
            if (id == 1)
            {
                var d = extra.Slice(p + 4, len);
                int q = 0;
                if (needU) { usize = Next(d, ref q, "uncompressed size", name, where); needU = false; }
                if (needC) { csize = Next(d, ref q, "compressed size", name, where); needC = false; }
                if (needO) { offset = Next(d, ref q, "local header offset", name, where); needO = false; }
            }
            p += 4 + len;
        }
        if (needU || needC || needO) throw Bad(name, $"{where}: a size or offset is 0xFFFFFFFF but there is no ZIP64 extra field for it");
    }

    private static long Next(ReadOnlySpan<byte> d, ref int q, string field, string name, string where)
    {
        if (q + 8 > d.Length) throw Bad(name, $"{where}: ZIP64 extra field lacks the {field}");
        long v = Clamp(BinaryPrimitives.ReadUInt64LittleEndian(d[q..]));
        q += 8;
        return v;
    }

    /// <summary>
    /// Opens <paramref name="m"/> for reading: checks its local header against the central entry and returns a stream of
    /// exactly <see cref="ZipMember.UncompressedSize"/> verified bytes (length and CRC-32 are checked as the last byte is read).
    /// </summary>
    /// <exception cref="InvalidDataException">The local header disagrees with the central directory or the data is damaged.</exception>
    public Stream Open(ZipMember m)
    {
        string where = Where(m);
        var h = new byte[30];
        ReadAt(_stream, m.LocalHeaderOffset, h, _name, where);
        var rest = new byte[LocalRestLength(h, m, where)];
        ReadAt(_stream, m.LocalHeaderOffset + 30, rest, _name, where);
        long dataStart = CheckLocal(h, rest, m, where);
        Stream raw = new Window(_stream, dataStart, m.CompressedSize);
        if (m.Method == 8) raw = new DeflateStream(raw, CompressionMode.Decompress);
        return new Verified(raw, m, _name);
    }

    private static string Where(ZipMember m) => $"member '{Printable(m.Name)}' (local header at offset {m.LocalHeaderOffset})";

    // The length of the name and extra field after a local header h, checked against the central directory's end.
    private int LocalRestLength(ReadOnlySpan<byte> h, ZipMember m, string where)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalSig) throw Bad(_name, $"{where}: no local header signature");
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]);
        int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        long dataStart = m.LocalHeaderOffset + 30 + nameLen + extraLen;
        if (dataStart > _centralOffset || m.CompressedSize > _centralOffset - dataStart)
            throw Bad(_name, $"{where}: data ({m.CompressedSize} bytes after a {30 + nameLen + extraLen}-byte header) runs into the central directory at offset {_centralOffset}");
        return nameLen + extraLen;
    }

    // Checks the local header h and the name and extra field after it (rest) against the central entry m; returns
    // the offset of the member's data.
    private long CheckLocal(ReadOnlySpan<byte> h, ReadOnlySpan<byte> rest, ZipMember m, string where)
    {
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(h[6..]);
        int method = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
        uint crc = BinaryPrimitives.ReadUInt32LittleEndian(h[14..]);
        long csize = BinaryPrimitives.ReadUInt32LittleEndian(h[18..]);
        long usize = BinaryPrimitives.ReadUInt32LittleEndian(h[22..]);
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]);
        int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        if (method != m.Method) throw Disagree(where, "compression method", method, m.Method);
        if ((flags & 0x41) != (m.Flags & 0x41) || (flags & 0x8) != (m.Flags & 0x8)) throw Disagree(where, "flags", flags, m.Flags);
        if (nameLen != m.NameLength) throw Disagree(where, "name length", nameLen, m.NameLength);
        // A data descriptor (flag bit 3) leaves the local CRC and sizes zero; the central values are used then.
        if ((flags & 0x8) == 0)
        {
            long dummy = 0;
            ParseZip64(rest.Slice(nameLen, extraLen), ref usize, ref csize, ref dummy, _name, where);
            if (crc != m.Crc) throw Disagree(where, "CRC-32", crc, m.Crc);
            if (csize != m.CompressedSize) throw Disagree(where, "compressed size", csize, m.CompressedSize);
            if (usize != m.UncompressedSize) throw Disagree(where, "uncompressed size", usize, m.UncompressedSize);
        }
        var nameBytes = rest[..nameLen];
        var localName = (m.Flags & 0x800) != 0 ? Encoding.UTF8.GetString(nameBytes) : DecodeLegacyName(nameBytes);
        if (!string.Equals(localName, m.Name, StringComparison.Ordinal))
            throw Bad(_name, $"{where}: local header names '{Printable(localName)}', the central directory '{Printable(m.Name)}'");
        return m.LocalHeaderOffset + 30 + nameLen + extraLen;
    }

    // numpy's zipfile writes a 20-byte ZIP64 extra field into every local header; one read takes that much more.
    private const int ExtraGuess = 64;

    /// <summary>
    /// Reads the whole verified content of <paramref name="m"/> from the positional source (<see cref="ReadsConcurrently"/>):
    /// one positional read of the local header and the data, checks as <see cref="Open"/>, one-shot inflate (libdeflate
    /// where it is installed) into an array of exactly <see cref="ZipMember.UncompressedSize"/> bytes, CRC-32. Thread-safe.
    /// </summary>
    /// <exception cref="InvalidDataException">The local header disagrees with the central directory or the data is damaged.</exception>
    public byte[] ReadWhole(ZipMember m)
    {
        var file = _positional ?? throw new InvalidOperationException("ReadWhole reads archives with a positional source only");
        string where = Where(m);
        if (m.UncompressedSize > Array.MaxLength)
            throw Bad(_name, $"member '{Printable(m.Name)}' declares {m.UncompressedSize} bytes, more than one .NET array holds");
        long span = Math.Min(30 + m.NameLength + ExtraGuess + m.CompressedSize, _centralOffset - m.LocalHeaderOffset);
        if (span < 30)
            throw Bad(_name, $"{where}: the local header at offset {m.LocalHeaderOffset} lies outside the archive's {_centralOffset} bytes before its central directory");
        if (span > Array.MaxLength)
            throw Bad(_name, $"{where}: {m.CompressedSize} compressed bytes are more than one .NET array holds");
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)span);
        try
        {
            ReadAt(file, m.LocalHeaderOffset, buffer.AsSpan(0, (int)span), _name, where);
            int restLen = LocalRestLength(buffer, m, where); // also: the data ends before the central directory
            long need = 30 + restLen + m.CompressedSize;
            if (need > span)
            {
                // A longer extra field than guessed: read the rest.
                var grown = ArrayPool<byte>.Shared.Rent((int)need);
                buffer.AsSpan(0, (int)span).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = grown;
                ReadAt(file, m.LocalHeaderOffset + span, buffer.AsSpan((int)span, (int)(need - span)), _name, where);
            }
            long dataStart = CheckLocal(buffer.AsSpan(0, 30), buffer.AsSpan(30, restLen), m, where);
            var data = buffer.AsSpan((int)(dataStart - m.LocalHeaderOffset), (int)m.CompressedSize);
            var output = m.UncompressedSize == 0 ? [] : GC.AllocateUninitializedArray<byte>((int)m.UncompressedSize);
            if (m.Method == 0)
            {
                if (m.CompressedSize != m.UncompressedSize)
                    throw Bad(_name, $"{where}: a stored member of {m.CompressedSize} bytes declares {m.UncompressedSize} uncompressed bytes");
                data.CopyTo(output);
            }
            else if (Inflate(data, output, m)) return output; // the managed inflater checked the CRC-32 as it read
            uint crc = Crc32.HashToUInt32(output);
            if (crc != m.Crc)
                throw Bad(_name, $"member '{Printable(m.Name)}' fails its CRC-32 check (computed {crc:x8}, declared {m.Crc:x8}): the data is damaged");
            return output;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    // Inflates a member's data into output. False: libdeflate did it, and the CRC-32 is still to be checked; true: the
    // managed inflater did, through Verified, which checked the length and the CRC-32 (and raised if either is wrong).
    private bool Inflate(ReadOnlySpan<byte> data, byte[] output, ZipMember m)
    {
        if (LibDeflate.IsAvailable)
        {
            if (LibDeflate.DecompressExact(data, output)) return false;
            // Damaged, short or long: the managed inflater says which, at which byte.
        }
        unsafe
        {
            fixed (byte* p = data)
            {
                using var s = new Verified(new DeflateStream(new UnmanagedMemoryStream(p, data.Length), CompressionMode.Decompress), m, _name);
                s.ReadExactly(output);
                s.ReadByte(); // the end: more data than declared, or a wrong CRC-32, raises here
            }
        }
        return true;
    }

    /// <summary>Reads the whole verified content of <paramref name="m"/>.</summary>
    public byte[] ReadAll(ZipMember m)
    {
        if (m.UncompressedSize > Array.MaxLength)
            throw Bad(_name, $"member '{Printable(m.Name)}' declares {m.UncompressedSize} bytes, more than one .NET array holds");
        var data = GC.AllocateUninitializedArray<byte>((int)m.UncompressedSize);
        using var s = Open(m);
        s.ReadExactly(data);
        if (s.ReadByte() != -1) throw Bad(_name, $"member '{Printable(m.Name)}' holds more than its declared {m.UncompressedSize} bytes");
        return data;
    }

    private InvalidDataException Disagree(string where, string field, long local, long central) =>
        Bad(_name, $"{where}: local header {field} {local} disagrees with the central directory's {central}");

    private static InvalidDataException Bad(string name, string what) => new($"{name}: zip: {what}");

    private static void ReadAt(IPositionalSource source, long offset, Span<byte> buffer, string name, string what)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = source.ReadAt(buffer[total..], offset + total);
            if (n == 0) throw Bad(name, $"{what} at offset {offset}: file ends after {total} of {buffer.Length} bytes");
            total += n;
        }
    }

    private static void ReadAt(Stream s, long offset, Span<byte> buffer, string name, string what)
    {
        if (offset < 0 || offset > s.Length || buffer.Length > s.Length - offset)
            throw Bad(name, $"{what} at offset {offset} ({buffer.Length} bytes) lies outside the {s.Length}-byte file");
        s.Position = offset;
        int total = 0;
        while (total < buffer.Length)
        {
            int n = s.Read(buffer[total..]);
            if (n == 0) throw Bad(name, $"{what} at offset {offset}: file ends after {total} of {buffer.Length} bytes");
            total += n;
        }
    }

    /// <summary>A read-only window of a shared seekable stream (seeks before each read, so several windows may be used in turn).</summary>
    private sealed class Window(Stream inner, long start, long length) : Stream
    {
        private long _pos;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            long left = length - _pos;
            if (left <= 0 || buffer.Length == 0) return 0;
            if (buffer.Length > left) buffer = buffer[..(int)left];
            inner.Position = start + _pos;
            int n = inner.Read(buffer);
            _pos += n;
            return n;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    /// <summary>Hands out at most the declared size; checks the length, the end of the compressed data and the CRC-32 when the last byte is read.</summary>
    private sealed class Verified(Stream inner, ZipMember m, string name) : Stream
    {
        private readonly Crc32 _crc = new();
        private long _left = m.UncompressedSize;
        private bool _checked;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => m.UncompressedSize;
        public override long Position { get => m.UncompressedSize - _left; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            if (_left == 0) { Finish(); return 0; }
            if (buffer.Length == 0) return 0;
            if (buffer.Length > _left) buffer = buffer[..(int)_left];
            int n;
            try
            {
                n = inner.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{name}: zip: member '{Printable(m.Name)}': corrupt deflate data after {Position} bytes: {e.Message}", e);
            }
            if (n == 0)
                throw new InvalidDataException($"{name}: zip: member '{Printable(m.Name)}' ends after {Position} of its declared {m.UncompressedSize} bytes");
            _crc.Append(buffer[..n]);
            _left -= n;
            if (_left == 0) Finish();
            return n;
        }

        private void Finish()
        {
            if (_checked) return;
            _checked = true;
            Span<byte> one = stackalloc byte[1];
            int more;
            try { more = inner.Read(one); }
            catch (InvalidDataException e)
            {
                throw new InvalidDataException($"{name}: zip: member '{Printable(m.Name)}': corrupt deflate data at its end: {e.Message}", e);
            }
            if (more != 0)
                throw new InvalidDataException($"{name}: zip: member '{Printable(m.Name)}' holds more than its declared {m.UncompressedSize} bytes");
            uint crc = _crc.GetCurrentHashAsUInt32();
            if (crc != m.Crc)
                throw new InvalidDataException($"{name}: zip: member '{Printable(m.Name)}' fails its CRC-32 check (computed {crc:x8}, declared {m.Crc:x8}): the data is damaged");
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
