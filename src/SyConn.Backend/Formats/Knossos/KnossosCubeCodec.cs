using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;
using Snappier;
using SyConn.Backend.Formats.Npy;

namespace SyConn.Backend.Formats.Knossos;

/// <summary>
/// Encodes and decodes one KNOSSOS segmentation cube file (<c>*.seg.sz.zip</c>): a ZIP archive whose
/// first member holds the Snappy <b>raw block</b> compression (not the framing format) of
/// <c>cx*cy*cz</c> little-endian uint64 values, x varying fastest, then y, then z (a C-order
/// <c>(cz, cy, cx)</c> array). Pure functions over streams and spans; thread-safe.
/// </summary>
public static class KnossosCubeCodec
{
    /// <summary>
    /// Decodes a cube file into <paramref name="destination"/>, which must hold exactly the cube's voxel
    /// count. The first ZIP member is read, whatever its name; stored and deflated members are accepted.
    /// </summary>
    /// <param name="zip">A readable, seekable stream over the whole ZIP file.</param>
    /// <param name="destination">Receives <c>cx*cy*cz</c> values in file order (x fastest).</param>
    /// <param name="source">The file name used in error messages.</param>
    /// <returns>The length of the Snappy payload in bytes.</returns>
    /// <exception cref="InvalidDataException">The ZIP is corrupt or empty, the Snappy data is corrupt, or it
    /// does not decompress to exactly <c>8*destination.Length</c> bytes. The message names <paramref name="source"/>.</exception>
    public static int Decode(Stream zip, Span<ulong> destination, string source) => Decode(zip, destination, source, null);

    /// <summary>As <see cref="Decode(Stream, Span{ulong}, string)"/>, refusing cubes above <see cref="ReadLimits.MaxCubeBytes"/> of <paramref name="limits"/> (null: <see cref="ReadLimits.Default"/>).</summary>
    /// <exception cref="InvalidDataException">The ZIP or Snappy data is corrupt or of the wrong size, or the cube exceeds the limit.</exception>
    public static int Decode(Stream zip, Span<ulong> destination, string source, ReadLimits? limits)
    {
        ArgumentNullException.ThrowIfNull(zip);
        long expectBytes = (long)destination.Length * sizeof(ulong);
        byte[]? rented = null;
        try
        {
            int snappyLen;
            limits ??= ReadLimits.Default;
            if (expectBytes > limits.MaxCubeBytes)
                throw new InvalidDataException($"{source}: " + ReadLimits.Exceeds("a decoded cube", expectBytes, limits.MaxCubeBytes, nameof(ReadLimits.MaxCubeBytes)));
            long maxSnappy = Snappy.GetMaxCompressedLength((int)Math.Min(expectBytes, int.MaxValue));
            // The zip layer checks names, sizes, the local headers and the CRC-32; a member may not declare more
            // than a Snappy cube of this size can take.
            var zipLimits = limits with { MaxNpzMemberBytes = maxSnappy, MaxNpzTotalBytes = long.MaxValue };
            var dir = ZipDirectory.Read(zip, source, zipLimits, null, $"the largest Snappy encoding of a {expectBytes}-byte cube");
            if (dir.Members.Count == 0)
                throw new InvalidDataException($"{source}: the cube ZIP archive has no member; expected one Snappy member");
            var entry = dir.Members[0];
            snappyLen = (int)entry.UncompressedSize;
            rented = ArrayPool<byte>.Shared.Rent(Math.Max(snappyLen, 1));
            using (var s = dir.Open(entry))
            {
                s.ReadExactly(rented, 0, snappyLen);
                if (s.ReadByte() != -1)
                    throw new InvalidDataException($"{source}: ZIP member '{entry.Name}' holds more than its declared {snappyLen} bytes");
            }
            var payload = rented.AsSpan(0, snappyLen);
            DecodeSnappy(payload, destination, source);
            return snappyLen;
        }
        finally
        {
            if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Decompresses a raw Snappy payload (a <c>.seg.sz</c> member) into <paramref name="destination"/>;
    /// the payload must decompress to exactly <c>8*destination.Length</c> bytes.
    /// </summary>
    /// <exception cref="InvalidDataException">The payload is corrupt or has the wrong length.</exception>
    public static void DecodeSnappy(ReadOnlySpan<byte> payload, Span<ulong> destination, string source)
    {
        long expectBytes = (long)destination.Length * sizeof(ulong);
        int rawLen;
        try
        {
            rawLen = Snappy.GetUncompressedLength(payload);
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or IndexOutOfRangeException)
        {
            throw new InvalidDataException($"{source}: corrupt Snappy header in cube: {e.Message}", e);
        }
        if (rawLen != expectBytes)
            throw new InvalidDataException($"{source}: cube decompresses to {rawLen} bytes; expected exactly {expectBytes} (= 8 * {destination.Length} voxels)");
        try
        {
            int n = Snappy.Decompress(payload, MemoryMarshal.AsBytes(destination));
            if (n != expectBytes)
                throw new InvalidDataException($"{source}: cube decompressed to {n} bytes; expected {expectBytes}");
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException
            || (e is InvalidDataException && !e.Message.StartsWith(source, StringComparison.Ordinal)))
        {
            throw new InvalidDataException($"{source}: corrupt Snappy data in cube: {e.Message}", e);
        }
        if (!BitConverter.IsLittleEndian) BinaryPrimitives.ReverseEndianness(destination, destination);
    }

    /// <summary>
    /// Encodes a cube as knossos_utils writes it: a ZIP with one deflated member named
    /// <paramref name="memberName"/> (the file name minus <c>.zip</c>) holding raw Snappy of the values as
    /// little-endian uint64.
    /// </summary>
    /// <param name="cube">The cube's values, x fastest (C-order <c>(cz, cy, cx)</c>).</param>
    /// <param name="memberName">The ZIP member name, e.g. <c>kfixA_mag1_x0000_y0000_z0000.seg.sz</c>.</param>
    /// <param name="destination">Receives the ZIP bytes.</param>
    /// <param name="level">The deflate level (default: zlib's default).</param>
    public static void Encode(ReadOnlySpan<ulong> cube, string memberName, Stream destination, CompressionLevel level = CompressionLevel.Optimal)
    {
        ArgumentException.ThrowIfNullOrEmpty(memberName);
        ArgumentNullException.ThrowIfNull(destination);
        ReadOnlySpan<byte> raw = MemoryMarshal.AsBytes(cube);
        ulong[]? swapped = null;
        if (!BitConverter.IsLittleEndian)
        {
            swapped = new ulong[cube.Length];
            BinaryPrimitives.ReverseEndianness(cube, swapped);
            raw = MemoryMarshal.AsBytes(swapped.AsSpan());
        }
        byte[] buf = ArrayPool<byte>.Shared.Rent(Snappy.GetMaxCompressedLength(raw.Length));
        try
        {
            int n = Snappy.Compress(raw, buf);
            using var archive = new ZipArchive(destination, ZipArchiveMode.Create, leaveOpen: true);
            var entry = archive.CreateEntry(memberName, level);
            using var s = entry.Open();
            s.Write(buf, 0, n);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
    }

    /// <summary>Encodes a cube into a new byte array (see <see cref="Encode(ReadOnlySpan{ulong}, string, Stream, CompressionLevel)"/>).</summary>
    public static byte[] EncodeToArray(ReadOnlySpan<ulong> cube, string memberName, CompressionLevel level = CompressionLevel.Optimal)
    {
        using var ms = new MemoryStream();
        Encode(cube, memberName, ms, level);
        return ms.ToArray();
    }
}
