using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SyConn.Backend.Formats.Lz4;

/// <summary>
/// Our own decoder of raw LZ4 blocks (the LZ4 block format, no frame, no dictionary), in one pass that also refuses a
/// match at distance 0. liblz4 and K4os accept such a match (invalid LZ4) and produce bytes that depend on what the
/// destination held; walking a block's sequences once to look for one costs as much as decoding it (W1's 5,000
/// arrays hold 27 million sequences of about 11 bytes), so the check belongs inside the decoder.
/// </summary>
/// <remarks>
/// <para>
/// It accepts exactly what liblz4's <c>LZ4_decompress_safe</c> (1.9.x, whose rules K4os follows) accepts for a whole
/// block, and writes the same bytes, except that a match at distance 0 is refused. Those rules are the block
/// format's end rules (the last sequence is literals only and ends the input exactly; other sequences leave 8 bytes
/// of input after their literals and start their match 12 bytes before the output's end; a match ends 5 bytes
/// before it; a match's length bytes leave 4 bytes of input, a literal run's 15) as liblz4 applies them: not at all
/// to the sequences it takes on its fast paths, far enough from both ends (64 bytes of output and 17 of input for
/// its first loop, 32 and 16 for its shortcut). The tests hold this decoder to liblz4 on random token streams built
/// around those limits and on mutated blocks.
/// </para>
/// <para>
/// Memory safety: every read of the input and every write of the output is preceded by a check that keeps it
/// inside the spans given; wide copies (16 or 8 bytes at a time) run only where the spans have that much room, and
/// may write past the end of the current sequence (bytes the next sequence overwrites), never past the output
/// span. Bytes read while copying a match come from output this call wrote, never from what the destination held.
/// Pure function, thread-safe.
/// </para>
/// </remarks>
internal static class Lz4BlockDecoder
{
    /// <summary><see cref="Decode"/>'s result for a malformed block.</summary>
    public const int Malformed = -1;

    /// <summary><see cref="Decode"/>'s result for a block with a match at distance 0 (its offset field in <c>at</c>).</summary>
    public const int ZeroDistance = -2;

    private const int MinMatch = 4;
    private const int LastLiterals = 5;
    private const int MatchFromEnd = 12;
    private const int FarFromEnd = 64;

    /// <summary>
    /// Decodes <paramref name="source"/> (a raw block, without python-lz4's size prefix) into <paramref name="destination"/>.
    /// </summary>
    /// <param name="source">The raw block.</param>
    /// <param name="destination">Receives the decoded bytes; nothing is written past it.</param>
    /// <returns>The number of bytes written, <see cref="Malformed"/>, or <see cref="ZeroDistance"/>.</returns>
    /// <param name="at">For <see cref="ZeroDistance"/>: the position in <paramref name="source"/> of the zero offset; else -1.</param>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination, out int at)
    {
        at = -1;
        nint iend = source.Length, oend = destination.Length;
        if (oend == 0) return iend == 1 && source[0] == 0 ? 0 : Malformed;
        if (iend == 0) return Malformed;
        ref byte src = ref MemoryMarshal.GetReference(source);
        ref byte dst = ref MemoryMarshal.GetReference(destination);
        nint ip = 0, op = 0;
        // Far from the output's end (liblz4's fast loop): entered only if the output has 64 bytes, left for good at the
        // first sequence that comes near an end.
        bool far = oend >= FarFromEnd;
        while (true)
        {
            // Invariant: ip < iend.
            uint token = Unsafe.Add(ref src, ip++);
            nint literals = (nint)(token >> 4);
            nint offset, length;
            if (far)
            {
                if (literals == 15)
                {
                    if (!LiteralLength(ref src, ref ip, iend, ref literals)) return Malformed;
                    if (literals > oend - op - 32 || literals > iend - ip - 32)
                    {
                        far = false;
                        goto Literals;
                    }
                    Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref dst, op), ref Unsafe.Add(ref src, ip), (uint)literals);
                }
                else
                {
                    if (ip > iend - 17)
                    {
                        far = false;
                        goto Literals;
                    }
                    // op <= oend - 64 and at least 17 bytes of input: the 16-byte copy is inside both.
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, op), Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref src, ip)));
                }
                ip += literals;
                op += literals;
                offset = Offset(ref src, ip);
                if (offset == 0) goto ZeroOffset;
                ip += 2;
                length = (nint)(token & 15);
                if (length == 15 && !MatchLength(ref src, ref ip, iend, ref length)) return Malformed;
                length += MinMatch;
                // Both ways check the offset (CheckedMatch does): liblz4 refuses one past the start on either path.
                if (length >= oend - op - FarFromEnd)
                {
                    far = false;
                    goto CheckedMatch;
                }
                if (offset > op) return Malformed;
                if (offset >= 8 && length <= 18)
                    CopyShortMatch(ref dst, op, offset); // the common sequence; 64 bytes of room are left
                else
                {
                    CopyMatch(ref dst, op, offset, length, oend);
                }
                op += length;
                continue;
            }

            // Near an end (liblz4's careful loop). Its shortcut first: short literals and a short match from at least 8
            // back, with 16 bytes of input and 32 of output left, need no further check.
            if (literals != 15 && ip < iend - 16 && op <= oend - 32)
            {
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, op), Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref src, ip)));
                ip += literals;
                op += literals;
                offset = Offset(ref src, ip);
                if (offset == 0) goto ZeroOffset;
                ip += 2;
                length = (nint)(token & 15);
                if (length != 15 && offset >= 8 && offset <= op)
                {
                    CopyShortMatch(ref dst, op, offset); // op <= oend - 18 here
                    op += length + MinMatch;
                    continue;
                }
                goto Match;
            }
            if (literals == 15 && !LiteralLength(ref src, ref ip, iend, ref literals)) return Malformed;

        Literals:
            if (literals > oend - op - MatchFromEnd || literals > iend - ip - 8)
            {
                // Only the last sequence comes this near an end: its literals end the input exactly. (A zero offset
                // right after them is reported as such, as the walk that guards the other decoders would.)
                if (literals != iend - ip)
                {
                    if (literals <= iend - ip - 2 && Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref src, ip + literals)) == 0)
                    {
                        ip += literals;
                        goto ZeroOffset;
                    }
                    return Malformed;
                }
                if (literals > oend - op) return Malformed;
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref dst, op), ref Unsafe.Add(ref src, ip), (uint)literals);
                return (int)(op + literals);
            }
            if (literals <= 16 && iend - ip >= 16 && oend - op >= 16)
                Unsafe.WriteUnaligned(ref Unsafe.Add(ref dst, op), Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref src, ip)));
            else
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref dst, op), ref Unsafe.Add(ref src, ip), (uint)literals);
            ip += literals;
            op += literals;
            // At least 8 bytes of input are left: the offset can be read.
            offset = Offset(ref src, ip);
            if (offset == 0) goto ZeroOffset;
            ip += 2;
            length = (nint)(token & 15);

        Match:
            if (length == 15 && !MatchLength(ref src, ref ip, iend, ref length)) return Malformed;
            length += MinMatch;

        CheckedMatch:
            if (offset > op || length > oend - op - LastLiterals) return Malformed;
            CopyMatch(ref dst, op, offset, length, oend);
            op += length;
            continue;

        ZeroOffset:
            at = (int)ip;
            return ZeroDistance;
        }
    }

    /// <summary>The little-endian 16-bit match offset at <paramref name="ip"/> (the caller has checked it is inside the input).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nint Offset(ref byte src, nint ip)
    {
        ushort v = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref src, ip));
        return BitConverter.IsLittleEndian ? v : System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(v);
    }

    /// <summary>Adds a literal run's length bytes; each must leave 15 bytes of input (liblz4's limit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool LiteralLength(ref byte src, ref nint ip, nint iend, ref nint literals)
    {
        if (ip >= iend - 15) return false;
        uint b;
        do
        {
            b = Unsafe.Add(ref src, ip++);
            literals += (nint)b;
            if (ip > iend - 15) return false;
        }
        while (b == 255);
        return true;
    }

    /// <summary>Adds a match's length bytes; each must leave 4 bytes of input (liblz4's limit).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool MatchLength(ref byte src, ref nint ip, nint iend, ref nint length)
    {
        uint b;
        do
        {
            if (ip > iend - LastLiterals) return false;
            b = Unsafe.Add(ref src, ip++);
            length += (nint)b;
        }
        while (b == 255);
        return true;
    }

    /// <summary>Row p (2 to 7): the indices 0, 1, ..., p - 1, 0, 1, ... of a 16-byte shuffle that repeats a period of p bytes.</summary>
    private static ReadOnlySpan<byte> PeriodIndices =>
    [
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,
        0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0,
        0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
        0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0,
        0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3,
        0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1,
    ];

    /// <summary>
    /// A match of at most 18 bytes from at least 8 back, as 18 bytes (8 + 8 + 2): each read covers only bytes already
    /// written, and 8-byte reads forward from the stores before them (see <see cref="CopyMatch"/>). Needs 18 bytes of room.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyShortMatch(ref byte dst, nint op, nint offset)
    {
        ref byte to = ref Unsafe.Add(ref dst, op);
        ref byte from = ref Unsafe.Subtract(ref to, offset);
        Unsafe.WriteUnaligned(ref to, Unsafe.ReadUnaligned<ulong>(ref from));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 8), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, 8)));
        Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, 16), Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref from, 16)));
    }

    /// <summary>Copies <paramref name="length"/> bytes from <paramref name="offset"/> back, overlapping as LZ4 means it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CopyMatch(ref byte dst, nint op, nint offset, nint length, nint oend)
    {
        ref byte to = ref Unsafe.Add(ref dst, op);
        ref byte from = ref Unsafe.Subtract(ref to, offset);
        if (offset >= 32)
        {
            // Each 16-byte read ends at or before the start of its write: it sees only bytes already final (or
            // written by this copy). The last write may pass the match's end by up to 15 bytes, if there is room.
            if (oend - op >= length + 15)
            {
                nint k = 0;
                do
                {
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, k), Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref from, k)));
                    k += 16;
                }
                while (k < length);
                return;
            }
        }
        else if (offset >= 8)
        {
            // 8 bytes at a time: a 16-byte read of bytes written a moment ago by two 8- or 16-byte writes stalls (the
            // store cannot be forwarded), which made this decoder a third slower than liblz4 on W1's coordinates.
            if (oend - op >= length + 7)
            {
                nint k = 0;
                do
                {
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, k), Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref from, k)));
                    k += 8;
                }
                while (k < length);
                return;
            }
        }
        else if (offset == 1)
        {
            Unsafe.InitBlockUnaligned(ref to, from, (uint)length);
            return;
        }
        else
        {
            if (Ssse3.IsSupported && oend - op >= length + 15)
            {
                // A period of 2 to 7 bytes (W5's masks put most of their bytes here): the period spread over a
                // register once, then stored every `step` bytes, the largest multiple of the period up to 16, so each
                // store starts at the pattern's phase 0. Nothing is read back from the output. The 16-byte load may
                // take bytes past the match's start, which the shuffle never picks (indices below the period only).
                var indices = Unsafe.ReadUnaligned<Vector128<byte>>(ref Unsafe.Add(ref MemoryMarshal.GetReference(PeriodIndices), (int)offset * 16));
                var pattern = Ssse3.Shuffle(Unsafe.ReadUnaligned<Vector128<byte>>(ref from), indices);
                nint step = 16 - 16 % offset;
                nint k = 0;
                do
                {
                    Unsafe.WriteUnaligned(ref Unsafe.Add(ref to, k), pattern);
                    k += step;
                }
                while (k < length);
                return;
            }
            // Elsewhere: the period copied once, then twice as much each time (each copy reads only what is final).
            nint done = 0, period = offset;
            while (done < length)
            {
                nint n = Math.Min(period, length - done);
                Unsafe.CopyBlockUnaligned(ref Unsafe.Add(ref to, done), ref Unsafe.Subtract(ref Unsafe.Add(ref to, done), period), (uint)n);
                done += n;
                period += period;
            }
            return;
        }
        // Near the end of the output: byte by byte (the source may overlap the destination).
        for (nint k = 0; k < length; k++) Unsafe.Add(ref to, k) = Unsafe.Add(ref from, k);
    }
}
