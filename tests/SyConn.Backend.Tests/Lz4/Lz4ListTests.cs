using System.Text.Json.Nodes;
using CsCheck;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Lz4;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Lz4;

public class Lz4ListTests
{
    /// <summary>An array of <paramref name="dtype"/> whose bytes are a deterministic pseudo-random pattern.</summary>
    internal static NdArray Pattern(string dtype, long[] shape, int seed, ArrayOrder order = ArrayOrder.C)
    {
        var dt = DType.Parse(dtype);
        long n = 1;
        foreach (var d in shape) n *= d;
        var bytes = new byte[n * dt.ItemSize];
        var rng = new Random(seed);
        rng.NextBytes(bytes);
        if (dt.Kind == 'b') for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        if (dt.Kind is 'f' or 'c') for (int i = dt.ItemSize - 1; i < bytes.Length; i += dt.ItemSize) bytes[i] &= 0x3f; // finite values
        return new NdArray(dt, shape, bytes, order);
    }

    private static List<byte[]> Blocks(PyList list) => list.Select(o => ((PyBytes)o).Data.ToArray()).ToList();

    private static long[] Rest(NdArray a) => [-1, .. a.ShapeArray.Skip(1)];

    [Theory]
    [InlineData("|u1", new long[] { 1000 }, "C")]
    [InlineData("|b1", new long[] { 17, 3 }, "C")]
    [InlineData("|i1", new long[] { 4, 5, 6 }, "F")]
    [InlineData("<i2", new long[] { 9, 2 }, "C")]
    [InlineData(">u2", new long[] { 9, 2 }, "F")]
    [InlineData(">i4", new long[] { 33, 3 }, "C")]
    [InlineData("<u4", new long[] { 5, 3 }, "F")]
    [InlineData("<u8", new long[] { 300, 3 }, "C")]
    [InlineData(">i8", new long[] { 2, 2, 2 }, "C")]
    [InlineData("<f2", new long[] { 10 }, "C")]
    [InlineData("<f4", new long[] { 10, 3 }, "F")]
    [InlineData(">f8", new long[] { 7, 3 }, "C")]
    [InlineData("<c8", new long[] { 6 }, "C")]
    [InlineData(">c16", new long[] { 4, 2 }, "F")]
    [InlineData("|S5", new long[] { 4 }, "C")]
    [InlineData("<U3", new long[] { 4 }, "C")]
    [InlineData(">U2", new long[] { 3, 2 }, "C")]
    [InlineData("<M8[s]", new long[] { 4 }, "C")]
    [InlineData("<i8", new long[] { 1, 1 }, "F")]
    public void Round_trip_gives_the_native_C_array(string dtype, long[] shape, string order)
    {
        var a = Pattern(dtype, shape, dtype.GetHashCode(StringComparison.Ordinal), order == "F" ? ArrayOrder.F : ArrayOrder.C);
        var list = Lz4List.Encode(a);
        Assert.Single(list);
        // The block holds numpy's tobytes(): C order, the array's own byte order.
        Assert.Equal(a.ToCBytes(), PyLz4.Decompress(((PyBytes)list[0]).Data.Span));
        var back = Lz4List.Decode(list, a.DType, Rest(a));
        var expected = a.ToNativeC();
        Assert.Equal(expected.DType, back.DType);
        Assert.True(back.DType.IsNativeByteOrder);
        Assert.Equal(ArrayOrder.C, back.Order);
        Assert.Equal(expected.ShapeArray, back.ShapeArray);
        Assert.Equal(expected.ToCBytes(), back.ToCBytes());
        // Without a shape the pieces are flat.
        Assert.Equal([a.Size], Lz4List.Decode(list, a.DType).ShapeArray);
    }

    [Fact]
    public void Random_arrays_round_trip_with_any_chunk_limit()
    {
        var gen = Gen.Select(Gen.Int[1, 200], Gen.Int[1, 5], Gen.Int[1, 4000], Gen.OneOf("<u8", ">i4", "|u1", "<f8", ">c8"), Gen.Int);
        gen.Sample(CheckRoundTrip, iter: 300);
    }

    private static void CheckRoundTrip(int rows, int cols, int limit, string dtype, int seed)
    {
            var a = Pattern(dtype, [rows, cols], seed);
            long rowBytes = (long)cols * a.DType.ItemSize;
            if (rowBytes > limit)
            {
                Assert.Throws<Lz4InputTooLargeException>(() => Lz4List.Encode(a, limit));
                return;
            }
            var list = Lz4List.Encode(a, limit);
            long sum = 0;
            foreach (var b in Blocks(list))
            {
                int n = PyLz4.DecompressedLength(b);
                Assert.True(n <= limit && n > 0 && n % rowBytes == 0);
                sum += n;
            }
            Assert.Equal(a.NBytes, sum);
            var back = Lz4List.Decode(list, a.DType, [-1, cols]);
            Assert.Equal(a.ToNativeC().ToCBytes(), back.ToCBytes());
    }

    [Fact]
    public void Empty_array_is_stored_as_one_empty_bytes_and_read_back_as_shape_0()
    {
        var a = NdArray.Zeros(DType.UInt64, 0, 3);
        var list = Lz4List.Encode(a);
        Assert.Single(list);
        Assert.Same(PyBytes.Empty, list[0]);
        var back = Lz4List.Decode(list, DType.UInt64, [-1, 3]);
        Assert.Equal([0L], back.ShapeArray);
        Assert.Equal(DType.UInt64, back.DType);
        // Legacy str "" and bytearray elements are empty too.
        Assert.Equal([0L], Lz4List.Decode(new PyList { "" }, DType.Int32, [-1, 3]).ShapeArray);
        Assert.Equal([0L], Lz4List.Decode(new PyList { new PyByteArray(Array.Empty<byte>()) }, DType.Int32).ShapeArray);
    }

    [Fact]
    public void Empty_list_gives_zeros_of_the_given_dtype()
    {
        var back = Lz4List.Decode(new PyList(), DType.Parse(">i4"), [-1, 3]);
        Assert.Equal([0L], back.ShapeArray);
        Assert.Equal(">i4", back.DType.Str);
    }

    [Fact]
    public void Rows_without_bytes_and_0d_arrays_are_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => Lz4List.Encode(NdArray.Zeros(DType.Int64, 3, 0)));
        Assert.Contains("(3, 0)", ex.Message);
        Assert.Throws<ArgumentException>(() => Lz4List.Encode(NdArray.Zeros(DType.Int64)));
        Assert.Throws<ArgumentException>(() => Lz4List.Encode(NdArray.FromObjects([2], ["a", "b"])));
        Assert.Throws<ArgumentOutOfRangeException>(() => Lz4List.Encode(NdArray.Zeros(DType.Int64, 3), 0));
    }

    [Fact]
    public void What_upstream_writes_for_shape_3_0_is_reported_as_corrupt()
    {
        // Upstream stores compress(b"") with sh (-1, 0); numpy cannot reshape it.
        var list = new PyList { new PyBytes(PyLz4.Compress([])) };
        var ex = Assert.Throws<InvalidDataException>(() => Lz4List.Decode(list, DType.Int64, [-1, 0], "key 7"));
        Assert.Contains("key 7", ex.Message);
        // Without a shape it is simply empty.
        Assert.Equal([0L], Lz4List.Decode(list, DType.Int64).ShapeArray);
    }

    [Fact]
    public void A_single_row_over_the_limit_raises_instead_of_recursing()
    {
        var a = Pattern("<u8", [4, 10], 1);
        var ex = Assert.Throws<Lz4InputTooLargeException>(() => Lz4List.Encode(a, 79));
        Assert.Equal(80, ex.InputLength);
        Assert.Equal(2, Lz4List.Encode(a, 160).Count);
    }

    [Fact]
    public void Decode_returns_an_ndarray_value_unchanged_and_rejects_other_values()
    {
        var a = Pattern("<f4", [3, 3], 5);
        Assert.Same(a, Lz4List.Decode((object)a, DType.Float32));
        var tuple = new PyTuple(new PyBytes(PyLz4.Compress(a.Data.Span)));
        Assert.Equal(a.Data.ToArray(), Lz4List.Decode((object)tuple, DType.Float32, [-1, 3]).Data.ToArray());
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode((object)42L, DType.Float32));
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { "abc" }, DType.Float32));
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { 5L }, DType.Float32));
    }

    [Fact]
    public void Corrupt_or_mismatching_chunks_name_the_chunk()
    {
        var good = new PyBytes(PyLz4.Compress(new byte[24]));
        var bad = new PyBytes(Convert.FromHexString("0800000010"));
        var ex = Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { good, bad }, DType.Int64, [-1, 3], "key 5"));
        Assert.Contains("key 5, chunk 1 of 2", ex.Message);
        // 24 bytes are not a multiple of 16-byte complex items.
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { new PyBytes(PyLz4.Compress(new byte[20])) }, DType.Int64));
        // An empty piece (shape (0,)) cannot be concatenated with 2-d pieces, as in numpy.
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { good, PyBytes.Empty }, DType.Int64, [-1, 3]));
        // Without a shape all pieces are 1-d and concatenate.
        Assert.Equal([3L], Lz4List.Decode(new PyList { good, PyBytes.Empty }, DType.Int64).ShapeArray);
        // A shape that does not divide the block.
        Assert.Throws<InvalidDataException>(() => Lz4List.Decode(new PyList { good }, DType.Int64, [-1, 2]));
    }

    [Fact]
    public void Multichunk_decode_fills_one_buffer_in_order()
    {
        var a = Pattern("<u8", [3000, 3], 9);
        var list = Lz4List.Encode(a, 10_000);
        Assert.True(list.Count >= 8);
        var back = Lz4List.Decode(list, DType.UInt64, [-1, 3]);
        Assert.Equal(a.Data.ToArray(), back.Data.ToArray());
        // A large multichunk list (decoded in parallel) too.
        var big = Pattern(">i4", [300_000, 3], 3);
        var bigList = Lz4List.Encode(big, 1 << 20);
        Assert.Equal(4, bigList.Count); // 3.6 MB halves twice to 900 kB pieces
        Assert.Equal(big.ToNativeC().Data.ToArray(), Lz4List.Decode(bigList, big.DType, [-1, 3]).Data.ToArray());
    }

    private const string UpstreamScript = """
import sys, json, numpy as np, lz4.block

def arrtolz4string_list(arr, limit):
    # syconn.handler.compression.arrtolz4string_list with the block limit lowered to `limit`
    if len(arr) == 0:
        return [b""]
    try:
        if arr.nbytes > limit:
            raise lz4.block.LZ4BlockError("Compression failed")
        str_lst = [lz4.block.compress(arr.tobytes())]
    except (OverflowError, ValueError, lz4.block.LZ4BlockError):
        half_ix = len(arr) // 2
        str_lst = arrtolz4string_list(arr[:half_ix], limit) + arrtolz4string_list(arr[half_ix:], limit)
    return str_lst

out = []
for case in json.loads(sys.stdin.read()):
    raw = open(case['file'], 'rb').read()
    arr = np.frombuffer(raw, dtype=case['dtype']).reshape(case['shape'])
    if case['order'] == 'F':
        arr = np.asfortranarray(arr)
    chunks = arrtolz4string_list(arr, case['limit'])
    out.append([c.hex() for c in chunks])
print(json.dumps(out))
""";

    [SkippableFact]
    public void Chunks_match_upstream_split_with_a_lowered_limit()
    {
        PyRun.Require("numpy", "lz4");
        var cases = new (string Dtype, long[] Shape, string Order, int Limit)[]
        {
            ("<i8", [30, 3], "C", 700),
            ("|u1", [1000], "C", 300),
            ("<f4", [100, 3], "C", 128),
            (">i4", [77, 2], "C", 100),
            ("<u8", [40, 3], "F", 500),
            ("<u2", [5, 4, 3], "C", 50),
            ("<u8", [1, 3], "C", 24),
            ("<i8", [0, 3], "C", 8),
        };
        using var dir = new TempDir();
        var request = new JsonArray();
        var arrays = new List<NdArray>();
        for (int i = 0; i < cases.Length; i++)
        {
            var (dtype, shape, order, limit) = cases[i];
            var a = Pattern(dtype, shape, 100 + i);
            string file = dir.File($"{i}.bin");
            File.WriteAllBytes(file, a.ToCBytes());
            if (order == "F") a = new NdArray(a.DType, shape, FortranBytes(a), ArrayOrder.F);
            arrays.Add(a);
            request.Add(new JsonObject { ["file"] = file, ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["order"] = order, ["limit"] = limit });
        }
        var result = JsonNode.Parse(PyRun.RunChecked(UpstreamScript, stdin: request.ToJsonString()))!.AsArray();
        for (int i = 0; i < cases.Length; i++)
        {
            var theirs = result[i]!.AsArray().Select(h => Convert.FromHexString((string)h!)).ToList();
            var ours = Blocks(Lz4List.Encode(arrays[i], cases[i].Limit));
            Assert.Equal(theirs.Count, ours.Count);
            for (int c = 0; c < ours.Count; c++)
            {
                Assert.Equal(theirs[c].Length == 0, ours[c].Length == 0);
                if (ours[c].Length == 0) continue;
                Assert.Equal(PyLz4.DecompressedLength(theirs[c]), PyLz4.DecompressedLength(ours[c]));
                Assert.Equal(PyLz4.Decompress(theirs[c]), PyLz4.Decompress(ours[c]));
            }
            // Their list decodes with our decoder to the same array.
            var pyList = new PyList(theirs.Select(b => (object)new PyBytes(b)));
            Assert.Equal(arrays[i].ToNativeC().ToCBytes(), Lz4List.Decode(pyList, arrays[i].DType, [-1, .. cases[i].Shape.Skip(1)]).ToCBytes());
        }
    }

    /// <summary>The Fortran-order bytes of a C-ordered 2-d array.</summary>
    private static byte[] FortranBytes(NdArray c)
    {
        long rows = c.Shape[0], cols = c.Shape[1];
        int item = c.DType.ItemSize;
        var src = c.Data.Span;
        var dst = new byte[src.Length];
        for (long r = 0; r < rows; r++)
            for (long k = 0; k < cols; k++)
                src.Slice((int)((r * cols + k) * item), item).CopyTo(dst.AsSpan((int)((k * rows + r) * item), item));
        return dst;
    }
}
