using System.Security.Cryptography;
using System.Runtime.InteropServices;

namespace SyConn.Backend.Formats.Knossos;

/// <summary>
/// Checksums and label counts of a [z][y][x] uint64 segmentation box, as recorded in the KNOSSOS
/// fixtures' <c>EXPECTED.json</c>: <see cref="Sha256Zyx"/> = sha256 of the C-order little-endian bytes
/// (x fastest); <see cref="Sha256Xyz"/> = the same after swapping axes 0 and 2 (z fastest). Thread-safe
/// as long as <see cref="Counts"/> is not mutated.
/// </summary>
/// <param name="ShapeZyx">The box shape (z, y, x).</param>
/// <param name="Sha256Zyx">Lower-case hex sha256 of the array in [z][y][x] order.</param>
/// <param name="Sha256Xyz">Lower-case hex sha256 of the array in [x][y][z] order.</param>
/// <param name="Nonzero">Number of non-zero voxels.</param>
/// <param name="Counts">Voxel count per ID (0 included), ascending by ID.</param>
public sealed record SegmentationSummary(long[] ShapeZyx, string Sha256Zyx, string Sha256Xyz, long Nonzero, SortedDictionary<ulong, long> Counts)
{
    /// <summary>Summarises <paramref name="values"/> of shape <paramref name="size"/> (x, y, z), stored [z][y][x].</summary>
    /// <exception cref="ArgumentException">The value count does not match the size.</exception>
    public static SegmentationSummary Compute(ReadOnlySpan<ulong> values, Xyz size)
    {
        if (size.Product != values.Length) throw new ArgumentException($"{values.Length} values do not fill a box of size {size}", nameof(values));
        int sx = (int)size.X, sy = (int)size.Y, sz = (int)size.Z;
        string zyx = HashLittleEndian(values);
        // [x][y][z] order: stream one z-run at a time.
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var run = new ulong[sz];
        for (int x = 0; x < sx; x++)
            for (int y = 0; y < sy; y++)
            {
                for (int z = 0; z < sz; z++) run[z] = values[(z * sy + y) * sx + x];
                AppendLittleEndian(h, run);
            }
        string xyz = Convert.ToHexStringLower(h.GetHashAndReset());
        var counts = new SortedDictionary<ulong, long>();
        long nonzero = 0;
        int i = 0;
        while (i < values.Length)
        {
            ulong v = values[i];
            int j = i + 1;
            while (j < values.Length && values[j] == v) j++;
            counts[v] = counts.GetValueOrDefault(v) + (j - i);
            if (v != 0) nonzero += j - i;
            i = j;
        }
        return new SegmentationSummary([size.Z, size.Y, size.X], zyx, xyz, nonzero, counts);
    }

    private static string HashLittleEndian(ReadOnlySpan<ulong> values)
    {
        if (BitConverter.IsLittleEndian) return Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(values)));
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        AppendLittleEndian(h, values);
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    private static void AppendLittleEndian(IncrementalHash h, ReadOnlySpan<ulong> values)
    {
        if (BitConverter.IsLittleEndian) { h.AppendData(MemoryMarshal.AsBytes(values)); return; }
        Span<byte> b = stackalloc byte[8];
        foreach (var v in values) { System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(b, v); h.AppendData(b); }
    }
}
