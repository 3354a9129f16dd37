using System.Buffers;
using System.Buffers.Binary;
using K4os.Compression.LZ4;

namespace SyConn.Backend.Formats.Lz4;

/// <summary>
/// python-lz4's block framing (<c>lz4.block.compress</c> / <c>decompress</c> with their defaults):
/// a 4-byte little-endian uncompressed size followed by one raw LZ4 block (formats.md §3).
/// </summary>
/// <remarks>
/// <para>
/// Compression uses the fast LZ4 level with acceleration 1: the reference <c>LZ4_compress_default</c> that
/// python-lz4 calls, or its managed equivalent. Decompression checks the size prefix the way python-lz4 does
/// and requires the block to produce exactly that many bytes.
/// </para>
/// <para>
/// Compression is done by the native liblz4 (<c>liblz4.so.1</c>, <see cref="NativeLz4"/>) when it is installed,
/// and by the managed K4os.Compression.LZ4 otherwise; decompression by our own decoder
/// (<see cref="Lz4BlockDecoder"/>), which also refuses a match at distance 0 in the same pass. Which codec serves
/// each direction is chosen once per process (<see cref="Encoder"/>, <see cref="Decoder"/>); the environment
/// variable <c>SYCONN_LZ4</c> overrides it: <c>managed</c> uses K4os for both directions, <c>native</c> uses
/// liblz4 for both where it is available, anything else (or unset) the defaults. Decoded bytes are the same with
/// every codec; compressed blocks may differ between them but are valid python-lz4 blocks either way.
/// </para>
/// All members are pure functions and thread-safe.
/// </remarks>
public static class PyLz4
{
    /// <summary>The environment variable that forces a codec (<c>managed</c> or <c>native</c>).</summary>
    internal const string SwitchVariable = "SYCONN_LZ4";

    /// <summary>
    /// The codec that compresses when liblz4 is available and <c>SYCONN_LZ4</c> is not set: liblz4, 1.35-1.5x
    /// K4os on W3 meshes and 1.15-1.3x on W5 masks in every round, 1.06-1.13x on W1 (docs/benchmarks.md), and its
    /// blocks are byte-identical to python-lz4's.
    /// </summary>
    internal const Lz4Impl DefaultEncoder = Lz4Impl.Native;

    /// <summary>
    /// The codec that decompresses when <c>SYCONN_LZ4</c> is not set: our own decoder. liblz4 and K4os need a
    /// separate walk over the block to refuse a match at distance 0, which costs as much as the decode on W1's
    /// coordinates (docs/benchmarks.md, "LZ4: our decoder").
    /// </summary>
    internal const Lz4Impl DefaultDecoder = Lz4Impl.Builtin;

    /// <summary>The codec <see cref="Compress(ReadOnlySpan{byte})"/> and its overload use in this process.</summary>
    internal static Lz4Impl Encoder { get; } = Choose(DefaultEncoder);

    /// <summary>The codec <see cref="Decompress(ReadOnlySpan{byte}, string)"/> and its overload use in this process.</summary>
    internal static Lz4Impl Decoder { get; } = Choose(DefaultDecoder);

    /// <summary>Which codec serves each direction, e.g. <c>encode: K4os, decode: liblz4 1.9.4</c>, for reports.</summary>
    internal static string Implementation => $"encode: {Name(Encoder)}, decode: {Name(Decoder)}";

    /// <summary>The name of a codec for reports.</summary>
    internal static string Name(Lz4Impl impl) => impl switch
    {
        Lz4Impl.Native => $"liblz4 {NativeLz4.VersionText}",
        Lz4Impl.Builtin => "SyConn.Backend",
        _ => "K4os",
    };

    private static Lz4Impl Choose(Lz4Impl preferred) =>
        Choose(preferred, Environment.GetEnvironmentVariable(SwitchVariable), () => NativeLz4.IsAvailable);

    /// <summary>
    /// The codec for one direction: <paramref name="forced"/> (the switch's value) over <paramref name="preferred"/>,
    /// native only when <paramref name="nativeAvailable"/> (asked only then); without it, <paramref name="preferred"/>
    /// if that is not native, else K4os.
    /// </summary>
    internal static Lz4Impl Choose(Lz4Impl preferred, string? forced, Func<bool> nativeAvailable)
    {
        var want = forced?.Trim().ToLowerInvariant() switch
        {
            "managed" => Lz4Impl.Managed,
            "native" => Lz4Impl.Native,
            _ => preferred,
        };
        if (want != Lz4Impl.Native) return want;
        if (nativeAvailable()) return Lz4Impl.Native;
        return preferred == Lz4Impl.Native ? Lz4Impl.Managed : preferred;
    }

    /// <summary>
    /// No LZ4 block produces more than 255 bytes per byte of its data: a match of <c>19 + 255 k</c> bytes
    /// costs at least <c>3 + k</c> bytes (token, offset, length bytes), a literal one byte. A size prefix above
    /// this bound is corrupt, and is refused before the output is allocated.
    /// </summary>
    private const long MaxExpansion = 255;

    /// <summary>The largest input LZ4 can compress in one block (<c>LZ4_MAX_INPUT_SIZE</c>, 0x7E000000 bytes).</summary>
    public const int MaxInputSize = 0x7E000000;

    /// <summary>Length of the size prefix python-lz4 stores before the block.</summary>
    public const int PrefixLength = 4;

    /// <summary>Outputs up to this size are compressed into a stack buffer; above it a pooled buffer is used.</summary>
    private const int StackLimit = 1024;

    /// <summary>The largest number of bytes <see cref="Compress(ReadOnlySpan{byte}, Span{byte})"/> can write for <paramref name="n"/> input bytes (prefix included).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="n"/> is negative or above <see cref="MaxInputSize"/>.</exception>
    public static int MaxCompressedLength(int n)
    {
        if ((uint)n > MaxInputSize)
            throw new ArgumentOutOfRangeException(nameof(n), n, $"LZ4 blocks hold 0 to {MaxInputSize} bytes");
        return PrefixLength + LZ4Codec.MaximumOutputSize(n);
    }

    /// <summary>Compresses <paramref name="data"/> like python-lz4's <c>lz4.block.compress(data)</c>.</summary>
    /// <returns>The size prefix and the block; <c>00 00 00 00 00</c> for empty input.</returns>
    /// <exception cref="Lz4InputTooLargeException"><paramref name="data"/> is longer than <see cref="MaxInputSize"/>.</exception>
    public static byte[] Compress(ReadOnlySpan<byte> data) => Compress(data, Encoder);

    /// <summary><see cref="Compress(ReadOnlySpan{byte})"/> with the given codec.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="impl"/> is native and liblz4 is not available.</exception>
    internal static byte[] Compress(ReadOnlySpan<byte> data, Lz4Impl impl)
    {
        CheckInput(data.Length);
        int bound = MaxCompressedLength(data.Length);
        if (bound <= StackLimit)
        {
            Span<byte> tmp = stackalloc byte[bound];
            int n = CompressCore(data, tmp, impl);
            return tmp[..n].ToArray();
        }
        byte[] rented = ArrayPool<byte>.Shared.Rent(bound);
        try
        {
            int n = CompressCore(data, rented, impl);
            return rented.AsSpan(0, n).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Compresses <paramref name="data"/> into <paramref name="destination"/> (prefix and block).</summary>
    /// <returns>The number of bytes written.</returns>
    /// <exception cref="Lz4InputTooLargeException"><paramref name="data"/> is longer than <see cref="MaxInputSize"/>.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than <see cref="MaxCompressedLength"/> of the input.</exception>
    public static int Compress(ReadOnlySpan<byte> data, Span<byte> destination) => Compress(data, destination, Encoder);

    /// <summary><see cref="Compress(ReadOnlySpan{byte}, Span{byte})"/> with the given codec.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="impl"/> is native and liblz4 is not available.</exception>
    internal static int Compress(ReadOnlySpan<byte> data, Span<byte> destination, Lz4Impl impl)
    {
        CheckInput(data.Length);
        int bound = MaxCompressedLength(data.Length);
        if (destination.Length < bound)
            throw new ArgumentException($"destination holds {destination.Length} bytes; compressing {data.Length} bytes may need {bound}", nameof(destination));
        return CompressCore(data, destination, impl);
    }

    private static int CompressCore(ReadOnlySpan<byte> data, Span<byte> destination, Lz4Impl impl)
    {
        BinaryPrimitives.WriteInt32LittleEndian(destination, data.Length);
        if (data.Length == 0)
        {
            // What LZ4_compress_default emits for empty input: one token without literals or match.
            destination[PrefixLength] = 0;
            return PrefixLength + 1;
        }
        // The destination holds at least LZ4_compressBound(data.Length) bytes after the prefix, so neither
        // encoder can fail for want of room.
        var body = destination[PrefixLength..];
        int n = impl == Lz4Impl.Native ? NativeLz4.Compress(data, body) : LZ4Codec.Encode(data, body, LZ4Level.L00_FAST);
        if (n <= 0)
            throw new InvalidOperationException($"LZ4 compression of {data.Length} bytes failed (encoder returned {n})");
        return PrefixLength + n;
    }

    private static void CheckInput(int length)
    {
        if (length > MaxInputSize)
            throw new Lz4InputTooLargeException(length, MaxInputSize);
    }

    /// <summary>Reads the uncompressed size from the prefix of a python-lz4 block.</summary>
    /// <param name="block">The prefixed block.</param>
    /// <param name="where">Optional context for error messages, e.g. <c>key 5, chunk 0</c>.</param>
    /// <exception cref="InvalidDataException">The input is shorter than the prefix, the size is negative (above <see cref="int.MaxValue"/>),
    /// or it is more than the LZ4 data after the prefix could produce (255 bytes per byte).</exception>
    public static int DecompressedLength(ReadOnlySpan<byte> block, string? where = null)
    {
        if (block.Length < PrefixLength)
            throw Corrupt($"input of {block.Length} bytes is shorter than the 4-byte size prefix", where);
        int size = BinaryPrimitives.ReadInt32LittleEndian(block);
        if (size < 0)
            throw Corrupt($"size prefix {(uint)size} is above the largest allowed size {int.MaxValue}", where);
        long data = block.Length - PrefixLength;
        // A prefix without data is reported by the decoder ("no LZ4 data").
        if (data > 0 && size > data * MaxExpansion)
            throw Corrupt($"size prefix {size} is more than {data} bytes of LZ4 data can produce (at most {data * MaxExpansion})", where);
        return size;
    }

    /// <summary>Decompresses a python-lz4 block (<c>lz4.block.decompress(block)</c>).</summary>
    /// <param name="block">The prefixed block.</param>
    /// <param name="where">Optional context for error messages, e.g. <c>key 5, chunk 0</c>.</param>
    /// <exception cref="InvalidDataException">The prefix is missing or invalid, the LZ4 data is corrupt, or it does not produce exactly the announced number of bytes.</exception>
    public static byte[] Decompress(ReadOnlySpan<byte> block, string? where = null) => Decompress(block, Decoder, where);

    /// <summary><see cref="Decompress(ReadOnlySpan{byte}, string)"/> with the given codec.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="impl"/> is native and liblz4 is not available.</exception>
    internal static byte[] Decompress(ReadOnlySpan<byte> block, Lz4Impl impl, string? where = null)
    {
        int size = DecompressedLength(block, where);
        long limit = ReadLimits.Default.MaxArrayBytes;
        if (size > limit)
            throw Corrupt(ReadLimits.Exceeds("size prefix announcing a block", size, limit, nameof(ReadLimits.MaxArrayBytes)), where);
        byte[] result = size == 0 ? [] : NewOutput(size, impl);
        DecodeExact(block, result, size, where, impl);
        return result;
    }

    /// <summary>Decompresses a python-lz4 block into <paramref name="destination"/>.</summary>
    /// <param name="block">The prefixed block.</param>
    /// <param name="destination">Receives the data; must hold at least <see cref="DecompressedLength"/> bytes.</param>
    /// <param name="where">Optional context for error messages, e.g. <c>key 5, chunk 0</c>.</param>
    /// <returns>The number of bytes written (the size in the prefix).</returns>
    /// <exception cref="InvalidDataException">The prefix is missing or invalid, the LZ4 data is corrupt, or it does not produce exactly the announced number of bytes.</exception>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is too short.</exception>
    public static int Decompress(ReadOnlySpan<byte> block, Span<byte> destination, string? where = null) => Decompress(block, destination, Decoder, where);

    /// <summary><see cref="Decompress(ReadOnlySpan{byte}, Span{byte}, string)"/> with the given codec.</summary>
    /// <exception cref="InvalidOperationException"><paramref name="impl"/> is native and liblz4 is not available.</exception>
    internal static int Decompress(ReadOnlySpan<byte> block, Span<byte> destination, Lz4Impl impl, string? where = null)
    {
        int size = DecompressedLength(block, where);
        if (destination.Length < size)
            throw new ArgumentException($"destination holds {destination.Length} bytes; the block announces {size}{Where(where)}", nameof(destination));
        DecodeExact(block, destination[..size], size, where, impl);
        return size;
    }

    /// <summary>
    /// A fresh output buffer for <paramref name="impl"/>. A malformed block with a match at offset 0 (invalid, but
    /// accepted by both decoders) makes K4os leave bytes of its destination unwritten, where liblz4 writes zeros; K4os
    /// therefore gets a zeroed buffer, so that such a block cannot hand back stale memory.
    /// </summary>
    internal static byte[] NewOutput(int size, Lz4Impl impl) =>
        impl != Lz4Impl.Managed ? GC.AllocateUninitializedArray<byte>(size) : new byte[size];

    /// <summary>Decodes into exactly <paramref name="size"/> bytes: neither codec can write past <paramref name="destination"/>.</summary>
    private static void DecodeExact(ReadOnlySpan<byte> block, Span<byte> destination, int size, string? where, Lz4Impl impl)
    {
        var body = block[PrefixLength..];
        if (body.Length == 0)
            throw Corrupt($"no LZ4 data after the size prefix (expected a block producing {size} bytes)", where);
        if (size == 0)
        {
            // liblz4 accepts exactly one zero token for an empty output.
            if (body.Length != 1 || body[0] != 0)
                throw Corrupt($"LZ4 block of {body.Length} bytes for an empty output is not the single empty token", where);
            return;
        }
        int n;
        if (impl == Lz4Impl.Builtin)
        {
            n = Lz4BlockDecoder.Decode(body, destination, out int zero);
            if (n == Lz4BlockDecoder.ZeroDistance) throw ZeroDistance(body.Length, zero, where);
        }
        else
        {
            if (ZeroOffsetAt(body) is int bad and >= 0) throw ZeroDistance(body.Length, bad, where);
            n = impl == Lz4Impl.Native ? NativeLz4.Decompress(body, destination) : LZ4Codec.Decode(body, destination);
        }
        if (n < 0)
            throw Corrupt($"corrupt LZ4 block of {body.Length} bytes (expected to produce {size} bytes)", where);
        if (n != size)
            throw Corrupt($"LZ4 block produced {n} bytes, but its size prefix announces {size}", where);
    }

    /// <summary>
    /// The position in <paramref name="body"/> of the first match whose distance is 0, or -1. Such a block is invalid LZ4, but both
    /// decoders accept it and produce different bytes (liblz4 leaves what the destination held before), so it is refused. Walks the
    /// sequence tokens only (no output is produced); a block that ends inside a sequence is left for the decoder to refuse.
    /// </summary>
    internal static int ZeroOffsetAt(ReadOnlySpan<byte> body)
    {
        int i = 0;
        while (i < body.Length)
        {
            int token = body[i++];
            long literals = token >> 4;
            if (literals == 15)
            {
                while (i < body.Length)
                {
                    byte x = body[i++];
                    literals += x;
                    if (x != 255) break;
                }
            }
            if (literals > body.Length - i) return -1;
            i += (int)literals;
            if (i >= body.Length) return -1; // the last sequence has literals only
            if (i + 1 >= body.Length) return -1;
            int at = i;
            int offset = body[i] | (body[i + 1] << 8);
            i += 2;
            if (offset == 0) return at;
            if ((token & 15) == 15)
            {
                while (i < body.Length && body[i++] == 255) { }
            }
        }
        return -1;
    }

    private static string Where(string? where) => string.IsNullOrEmpty(where) ? "" : $" ({where})";

    private static InvalidDataException ZeroDistance(int bodyLength, int at, string? where) =>
        Corrupt($"corrupt LZ4 block of {bodyLength} bytes: the match at offset {PrefixLength + at} has distance 0, which the LZ4 format forbids "
            + "(liblz4 would copy the destination's previous bytes, K4os would skip them)", where);

    private static InvalidDataException Corrupt(string what, string? where) =>
        new($"python-lz4 block: {what}{Where(where)}");
}

/// <summary>The LZ4 codecs behind <see cref="PyLz4"/>.</summary>
internal enum Lz4Impl
{
    /// <summary>K4os.Compression.LZ4, always available.</summary>
    Managed,

    /// <summary>liblz4 through P/Invoke (<see cref="NativeLz4"/>), when installed.</summary>
    Native,

    /// <summary>Our own decoder (<see cref="Lz4BlockDecoder"/>): decompression only, always available.</summary>
    Builtin,
}

/// <summary>The input of an LZ4 block is larger than LZ4 can compress (<see cref="PyLz4.MaxInputSize"/>).</summary>
public sealed class Lz4InputTooLargeException : ArgumentException
{
    /// <summary>The size of the rejected input in bytes.</summary>
    public long InputLength { get; }

    /// <summary>The largest accepted input in bytes.</summary>
    public long Limit { get; }

    /// <summary>Creates the exception for an input of <paramref name="inputLength"/> bytes over <paramref name="limit"/>.</summary>
    public Lz4InputTooLargeException(long inputLength, long limit, string? detail = null)
        : base($"{inputLength} bytes are too large for one LZ4 block (limit {limit} bytes){(detail is null ? "" : ": " + detail)}")
    {
        InputLength = inputLength;
        Limit = limit;
    }
}
