using System.Buffers.Binary;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;

namespace SyConn.Backend.Formats.Lz4;

/// <summary>
/// SyConn's LZ4LIST: an array stored as a Python list of python-lz4 blocks
/// (<c>arrtolz4string_list</c> / <c>lz4string_listtoarr</c> of <c>syconn.handler.compression</c>, formats.md §4).
/// </summary>
/// <remarks>
/// Two upstream defects are fixed on write: an array with rows but no bytes (shape <c>(3, 0)</c>),
/// which upstream writes but cannot read, and a single row larger than the chunk limit, on which
/// upstream recurses forever; both are refused with an exception. Everything else follows upstream.
/// All members are pure functions and thread-safe.
/// </remarks>
public static class Lz4List
{
    /// <summary>
    /// Encodes <paramref name="array"/> like <c>arrtolz4string_list</c>: <c>[b""]</c> for an array of length 0,
    /// else the C-order bytes (in the array's own byte order) as one python-lz4 block, split in halves along
    /// axis 0, recursively, while a piece holds more than <paramref name="maxChunkBytes"/> bytes.
    /// </summary>
    /// <param name="array">The array (not 0-d, not an object array).</param>
    /// <param name="maxChunkBytes">The largest piece compressed as one block; upstream's limit is <see cref="PyLz4.MaxInputSize"/>.</param>
    /// <returns>A list of <see cref="PyBytes"/>, in array order.</returns>
    /// <exception cref="ArgumentException">The array is 0-d, an object array, has rows but no bytes, or <paramref name="maxChunkBytes"/> is out of range.</exception>
    /// <exception cref="Lz4InputTooLargeException">A single row is larger than <paramref name="maxChunkBytes"/>.</exception>
    public static PyList Encode(NdArray array, int maxChunkBytes = PyLz4.MaxInputSize)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (maxChunkBytes < 1 || maxChunkBytes > PyLz4.MaxInputSize)
            throw new ArgumentOutOfRangeException(nameof(maxChunkBytes), maxChunkBytes, $"the chunk limit must be 1 to {PyLz4.MaxInputSize} bytes");
        if (array.NDim == 0)
            throw new ArgumentException("a 0-d array cannot be stored as an LZ4 list (upstream needs len(array))", nameof(array));
        if (array.Objects is not null || array.DType.Kind == 'O')
            throw new ArgumentException("an object array has no raw bytes to compress", nameof(array));
        long rows = array.Shape[0];
        if (rows == 0) return new PyList(1) { PyBytes.Empty };
        if (array.NBytes == 0)
            throw new ArgumentException($"array of shape ({string.Join(", ", array.ShapeArray)}) has rows but no bytes; upstream would write it but could not read it back", nameof(array));

        ReadOnlyMemory<byte> bytes = array.IsCContiguous ? array.Data : array.ToCBytes();
        long rowBytes = array.NBytes / rows;
        var ranges = new List<(long Start, long Count)>();
        Split(0, rows, rowBytes, maxChunkBytes, ranges);

        var blocks = new object[ranges.Count];
        if (ranges.Count == 1)
        {
            blocks[0] = new PyBytes(PyLz4.Compress(bytes.Span));
        }
        else
        {
            Parallel.For(0, ranges.Count, i =>
            {
                var (start, count) = ranges[i];
                var piece = bytes.Span.Slice(checked((int)(start * rowBytes)), checked((int)(count * rowBytes)));
                blocks[i] = new PyBytes(PyLz4.Compress(piece));
            });
        }
        return new PyList(blocks);
    }

    private static void Split(long start, long count, long rowBytes, int limit, List<(long, long)> ranges)
    {
        if (count * rowBytes <= limit)
        {
            ranges.Add((start, count));
            return;
        }
        if (count == 1)
            throw new Lz4InputTooLargeException(rowBytes, limit, $"row {start} alone exceeds the chunk limit and cannot be split along axis 0");
        long half = count / 2;
        Split(start, half, rowBytes, limit, ranges);
        Split(start + half, count - half, rowBytes, limit, ranges);
    }

    /// <summary>
    /// Decodes an entry value like <c>lz4string_listtoarr</c>: an <see cref="NdArray"/> is returned unchanged
    /// (MeshStorage with <c>compress=False</c>), a list or tuple of blocks is decoded by
    /// <see cref="Decode(IReadOnlyList{object}, DType, long[], string)"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The value is neither an array nor a list of blocks, or a block is corrupt.</exception>
    public static NdArray Decode(object value, DType dtype, long[]? shape = null, string? where = null) => Decode(value, dtype, shape, where, null);

    /// <summary>As <see cref="Decode(object, DType, long[], string)"/> within <paramref name="limits"/> (null: <see cref="ReadLimits.Default"/>).</summary>
    /// <exception cref="InvalidDataException">The value is neither an array nor a list of blocks, a block is corrupt, or the decoded size exceeds a limit.</exception>
    public static NdArray Decode(object value, DType dtype, long[]? shape, string? where, ReadLimits? limits) => value switch
    {
        NdArray a => a,
        IReadOnlyList<object> list => Decode(list, dtype, shape, where, limits),
        _ => throw new InvalidDataException($"LZ4 list: expected a list of bytes or an ndarray, found {value?.GetType().Name ?? "None"}{Where(where)}"),
    };

    /// <summary>
    /// Decodes a list of python-lz4 blocks like <c>lz4string_listtoarr(chunks, dtype, shape)</c>: each block is
    /// decompressed, viewed as <paramref name="dtype"/>, reshaped to <paramref name="shape"/> (usually with <c>-1</c>
    /// first) and the pieces are concatenated along axis 0.
    /// </summary>
    /// <param name="chunks">Elements are <see cref="PyBytes"/>, <see cref="PyByteArray"/>, <c>byte[]</c>, or the legacy empty string.</param>
    /// <param name="dtype">The element type the data was written with.</param>
    /// <param name="shape">The shape of each piece (one entry may be -1); null for flat pieces.</param>
    /// <param name="where">Context for error messages, e.g. <c>key 5</c>.</param>
    /// <returns>
    /// A new C-ordered array in native byte order. As upstream: an empty list gives <c>zeros((0,), dtype)</c>
    /// (dtype kept as given); an empty element gives a <c>(0,)</c> piece whatever <paramref name="shape"/> says.
    /// </returns>
    /// <exception cref="InvalidDataException">A block is corrupt, its size is not a multiple of the item size, a piece cannot take
    /// <paramref name="shape"/>, or the pieces cannot be concatenated.</exception>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is an object or zero-size dtype.</exception>
    public static NdArray Decode(IReadOnlyList<object> chunks, DType dtype, long[]? shape = null, string? where = null) => Decode(chunks, dtype, shape, where, null);

    /// <summary>
    /// As <see cref="Decode(IReadOnlyList{object}, DType, long[], string)"/>, refusing before allocating a list whose blocks
    /// announce more than <see cref="ReadLimits.MaxEntryBytes"/> in all or more than <see cref="ReadLimits.MaxArrayBytes"/>
    /// (null <paramref name="limits"/>: <see cref="ReadLimits.Default"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">A block is corrupt, the pieces do not fit together, or a limit is exceeded.</exception>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is an object or zero-size dtype.</exception>
    public static NdArray Decode(IReadOnlyList<object> chunks, DType dtype, long[]? shape, string? where, ReadLimits? limits) =>
        Decode(chunks, dtype, shape, where, limits, null);

    /// <summary>
    /// As <see cref="Decode(IReadOnlyList{object}, DType, long[], string, ReadLimits)"/>; the list's declared size is also
    /// taken from <paramref name="budget"/> (the running total of a bulk read of a store) before anything is allocated.
    /// </summary>
    internal static NdArray Decode(IReadOnlyList<object> chunks, DType dtype, long[]? shape, string? where, ReadLimits? limits, Storage.DecodeBudget? budget)
    {
        limits ??= ReadLimits.Default;
        ArgumentNullException.ThrowIfNull(chunks);
        ArgumentNullException.ThrowIfNull(dtype);
        if (dtype.Kind == 'O' || dtype.ItemSize == 0)
            throw new ArgumentException($"dtype {dtype.Str} cannot be read from raw bytes", nameof(dtype));
        if (chunks.Count == 0) return NdArray.Zeros(dtype, 0);

        int item = dtype.ItemSize;
        var blocks = new ReadOnlyMemory<byte>[chunks.Count];
        var pieceShapes = new long[chunks.Count][];
        var offsets = new long[chunks.Count + 1];
        for (int i = 0; i < chunks.Count; i++)
        {
            string at = ChunkWhere(where, i, chunks.Count);
            blocks[i] = BlockOf(chunks[i], at);
            if (blocks[i].Length == 0)
            {
                pieceShapes[i] = [0];
                offsets[i + 1] = offsets[i];
                continue;
            }
            int n = PyLz4.DecompressedLength(blocks[i].Span, at);
            if (n % item != 0)
                throw new InvalidDataException($"LZ4 list: block holds {n} bytes, not a multiple of the item size {item} of {dtype.Str} ({at})");
            pieceShapes[i] = PieceShape(n / item, shape, at);
            offsets[i + 1] = offsets[i] + n;
        }

        long[] resultShape = ConcatShape(pieceShapes, where);
        long total = offsets[^1];
        if (total > limits.MaxEntryBytes)
            throw new InvalidDataException("LZ4 list: " + ReadLimits.Exceeds($"{chunks.Count} blocks announcing", total, limits.MaxEntryBytes, nameof(ReadLimits.MaxEntryBytes)) + Where(where));
        if (total > limits.MaxArrayBytes)
            throw new InvalidDataException("LZ4 list: " + ReadLimits.Exceeds($"the array of {chunks.Count} blocks", total, limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)) + Where(where));
        if (total > Array.MaxLength)
            throw new InvalidDataException($"LZ4 list: {total} bytes in total do not fit in one .NET array{Where(where)}");
        budget?.Take(total, where ?? "LZ4 list");
        byte[] buffer = total == 0 ? [] : PyLz4.NewOutput((int)total, PyLz4.Decoder);
        if (chunks.Count == 1 || total < 1 << 20)
        {
            for (int i = 0; i < blocks.Length; i++) DecodeInto(blocks[i], buffer, offsets, i, where, chunks.Count);
        }
        else
        {
            try
            {
                Parallel.For(0, blocks.Length, i => DecodeInto(blocks[i], buffer, offsets, i, where, chunks.Count));
            }
            catch (AggregateException e) when (e.InnerExceptions.FirstOrDefault(x => x is InvalidDataException) is { } first)
            {
                // The block that failed, as the sequential path reports it (not wrapped by the parallel loop).
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(first).Throw();
            }
        }
        if (!dtype.IsNativeByteOrder) SwapBytes(buffer, dtype);
        return new NdArray(dtype.ToNative(), resultShape, buffer);
    }

    private static void DecodeInto(ReadOnlyMemory<byte> block, byte[] buffer, long[] offsets, int i, string? where, int count)
    {
        if (block.Length == 0) return;
        int start = (int)offsets[i], length = (int)(offsets[i + 1] - offsets[i]);
        PyLz4.Decompress(block.Span, buffer.AsSpan(start, length), ChunkWhere(where, i, count));
    }

    private static void SwapBytes(byte[] buffer, DType dtype)
    {
        var span = buffer.AsSpan();
        switch (dtype.SwapUnit)
        {
            case 2:
                var s16 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(span);
                BinaryPrimitives.ReverseEndianness(s16, s16);
                break;
            case 4:
                var s32 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(span);
                BinaryPrimitives.ReverseEndianness(s32, s32);
                break;
            case 8:
                var s64 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(span);
                BinaryPrimitives.ReverseEndianness(s64, s64);
                break;
            default:
                NdArray.SwapBytes(span, dtype.SwapUnit);
                break;
        }
    }

    private static ReadOnlyMemory<byte> BlockOf(object? element, string at) => element switch
    {
        PyBytes b => b.Data,
        PyByteArray b => b.Data,
        byte[] b => b,
        ReadOnlyMemory<byte> m => m,
        Memory<byte> m => m,
        string { Length: 0 } => ReadOnlyMemory<byte>.Empty,
        string s => throw new InvalidDataException($"LZ4 list: element is a non-empty str of {s.Length} characters, expected bytes ({at})"),
        _ => throw new InvalidDataException($"LZ4 list: element is {element?.GetType().Name ?? "None"}, expected bytes ({at})"),
    };

    private static long[] PieceShape(long elements, long[]? shape, string at)
    {
        if (shape is null) return [elements];
        var result = (long[])shape.Clone();
        int unknown = -1;
        long known = 1;
        for (int d = 0; d < result.Length; d++)
        {
            if (result[d] == -1)
            {
                if (unknown >= 0) throw new InvalidDataException($"LZ4 list: shape ({Join(shape)}) has more than one -1 ({at})");
                unknown = d;
            }
            else if (result[d] < 0) throw new InvalidDataException($"LZ4 list: shape ({Join(shape)}) has a negative dimension ({at})");
            else if (result[d] != 0 && known > long.MaxValue / result[d])
                throw new InvalidDataException($"LZ4 list: shape ({Join(shape)}) has more elements than a 64-bit count holds ({at})");
            else known *= result[d];
        }
        if (unknown >= 0)
        {
            if (known == 0 || elements % known != 0)
                throw new InvalidDataException($"LZ4 list: cannot reshape a block of {elements} elements into ({Join(shape)}) ({at})");
            result[unknown] = elements / known;
        }
        else if (known != elements)
            throw new InvalidDataException($"LZ4 list: cannot reshape a block of {elements} elements into ({Join(shape)}) ({at})");
        return result;
    }

    private static long[] ConcatShape(long[][] pieces, string? where)
    {
        var first = pieces[0];
        if (first.Length == 0)
            throw new InvalidDataException($"LZ4 list: 0-d pieces cannot be concatenated{Where(where)}");
        var result = (long[])first.Clone();
        for (int i = 1; i < pieces.Length; i++)
        {
            var p = pieces[i];
            if (p.Length != first.Length)
                throw new InvalidDataException($"LZ4 list: piece {i} has {p.Length} dimension(s) but piece 0 has {first.Length}; they cannot be concatenated{Where(where)}");
            for (int d = 1; d < p.Length; d++)
                if (p[d] != first[d])
                    throw new InvalidDataException($"LZ4 list: piece {i} of shape ({Join(p)}) does not match piece 0 of shape ({Join(first)}) beyond axis 0{Where(where)}");
            result[0] = checked(result[0] + p[0]);
        }
        return result;
    }

    private static string Join(long[] shape) => string.Join(", ", shape);

    private static string ChunkWhere(string? where, int i, int count) =>
        string.IsNullOrEmpty(where) ? $"chunk {i} of {count}" : $"{where}, chunk {i} of {count}";

    private static string Where(string? where) => string.IsNullOrEmpty(where) ? "" : $" ({where})";
}
