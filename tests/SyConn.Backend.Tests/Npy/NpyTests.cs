using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Npy;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Tests.Infrastructure;
using SyConn.Backend.Tests.Lz4;
using NpyCodec = SyConn.Backend.Formats.Npy.Npy;
using PyRun = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Npy;

public class NpyTests
{
    /// <summary>Cases written by us and by numpy's <c>np.save</c>: dtype, shape, memory order.</summary>
    public static readonly (string Dtype, long[] Shape, string Order)[] Cases =
    [
        ("<i8", [30, 3], "C"),
        ("<u4", [5, 3], "C"),
        ("<i8", [0, 3], "C"),
        ("<i2", [1, 3], "C"),
        ("<u8", [], "C"),
        ("<f8", [5], "C"),
        ("|u1", [0], "C"),
        ("|b1", [7, 2], "C"),
        (">i4", [4, 3], "C"),
        (">f8", [2, 3], "F"),
        ("<f4", [3, 4, 2], "F"),
        ("<u2", [3, 1], "F"),
        ("<f2", [6], "C"),
        ("<c16", [2, 2], "C"),
        (">c8", [3], "C"),
        ("|S5", [3], "C"),
        ("<U3", [2, 2], "C"),
        ("<M8[s]", [3], "C"),
        ("|i1", [12345678901, 0], "C"),
        ("<i4", [0, 12345678901], "F"),
        ("<u8", [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], "C"),
    ];

    internal static NdArray Make(int i)
    {
        var (dtype, shape, order) = Cases[i];
        var c = Lz4ListTests.Pattern(dtype, shape, 1000 + i);
        return order == "F" ? new NdArray(c.DType, shape, FortranOf(c), ArrayOrder.F) : c;
    }

    /// <summary>Fortran-order bytes of a C-ordered array of any rank.</summary>
    internal static byte[] FortranOf(NdArray c)
    {
        var shape = c.ShapeArray;
        int nd = shape.Length, item = c.DType.ItemSize;
        var src = c.Data.Span;
        var dst = new byte[src.Length];
        var idx = new long[nd];
        for (long k = 0; k < c.Size; k++)
        {
            long f = 0, stride = 1;
            for (int d = 0; d < nd; d++) { f += idx[d] * stride; stride *= shape[d]; }
            src.Slice((int)(k * item), item).CopyTo(dst.AsSpan((int)(f * item), item));
            for (int d = nd - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
        }
        return dst;
    }

    private const string SaveScript = """
import sys, json, os, numpy as np
d = sys.argv[1]
for i, case in enumerate(json.loads(sys.stdin.read())):
    raw = open(os.path.join(d, '%d.bin' % i), 'rb').read()
    a = np.frombuffer(raw, dtype=case['dtype']).reshape(case['shape'])
    if case['order'] == 'F':
        a = np.asfortranarray(a)
    np.save(os.path.join(d, '%d.npy' % i), a)
    np.lib.format.write_array(open(os.path.join(d, '%d.v2.npy' % i), 'wb'), a, version=(2, 0))
    np.lib.format.write_array(open(os.path.join(d, '%d.v3.npy' % i), 'wb'), a, version=(3, 0))
print(np.__version__)
""";

    private const string LoadScript = """
import sys, json, os, hashlib, numpy as np
d = sys.argv[1]
out = []
for i in range(int(sys.argv[2])):
    a = np.load(os.path.join(d, '%d.ours.npy' % i))
    out.append([a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest(), bool(a.flags.f_contiguous and not a.flags.c_contiguous)])
print(json.dumps(out))
""";

    [SkippableFact]
    public void Our_npy_bytes_equal_numpy_save_and_we_read_numpys_files()
    {
        PyRun.Require("numpy");
        using var dir = new TempDir();
        var request = new JsonArray();
        for (int i = 0; i < Cases.Length; i++)
        {
            var (dtype, shape, order) = Cases[i];
            File.WriteAllBytes(dir.File($"{i}.bin"), Make(i).ToCBytes());
            request.Add(new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray(shape.Select(d => (JsonNode)d).ToArray()), ["order"] = order });
        }
        PyRun.RunChecked(SaveScript, [dir.Path], request.ToJsonString());
        for (int i = 0; i < Cases.Length; i++)
        {
            var a = Make(i);
            var numpyBytes = File.ReadAllBytes(dir.File($"{i}.npy"));
            var ours = NpyCodec.ToBytes(a);
            Assert.True(numpyBytes.AsSpan().SequenceEqual(ours),
                $"case {i} ({Cases[i].Dtype} {string.Join(",", Cases[i].Shape)} {Cases[i].Order}): header ours {Encoding.Latin1.GetString(ours, 10, Math.Min(ours.Length, 128) - 10)} numpy {Encoding.Latin1.GetString(numpyBytes, 10, Math.Min(numpyBytes.Length, 128) - 10)}");
            using (var ms = new MemoryStream())
            {
                NpyCodec.Write(ms, a);
                Assert.Equal(numpyBytes, ms.ToArray());
            }
            foreach (var variant in new[] { $"{i}.npy", $"{i}.v2.npy", $"{i}.v3.npy" })
            {
                var bytes = File.ReadAllBytes(dir.File(variant));
                AssertSameArray(a, NpyCodec.Read(bytes.AsSpan(), variant));
                AssertSameArray(a, NpyCodec.Read(bytes, variant));
                AssertSameArray(a, NpyFile.Read(dir.File(variant)));
                using var s = new MemoryStream(bytes);
                AssertSameArray(a, NpyCodec.Read(s, variant));
                Assert.Equal(bytes.Length, s.Position);
            }
            NpyFile.Write(dir.File($"{i}.ours.npy"), a);
        }
        // numpy loads what we wrote.
        var loaded = JsonNode.Parse(PyRun.RunChecked(LoadScript, [dir.Path, Cases.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!.AsArray();
        for (int i = 0; i < Cases.Length; i++)
        {
            var a = Make(i);
            var e = loaded[i]!.AsArray();
            Assert.Equal(a.DType.Str, (string)e[0]!);
            Assert.Equal(a.ShapeArray, e[1]!.AsArray().Select(n => (long)n!).ToArray());
            Assert.Equal(a.Sha256C(), (string)e[2]!);
            Assert.Equal(Cases[i].Order == "F" && !a.IsCContiguous, (bool)e[3]!);
        }
    }

    private static void AssertSameArray(NdArray expected, NdArray actual)
    {
        Assert.Equal(expected.DType.Str, actual.DType.Str);
        Assert.Equal(expected.ShapeArray, actual.ShapeArray);
        Assert.Equal(expected.Sha256C(), actual.Sha256C());
        if (!expected.IsCContiguous) Assert.Equal(ArrayOrder.F, actual.Order);
    }

    private static byte[] WithHeader(string header, int major = 1, byte[]? data = null)
    {
        var body = Encoding.Latin1.GetBytes(header);
        var ms = new MemoryStream();
        ms.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0]);
        if (major == 1) ms.Write(BitConverter.GetBytes((ushort)body.Length));
        else ms.Write(BitConverter.GetBytes((uint)body.Length));
        ms.Write(body);
        ms.Write(data ?? []);
        return ms.ToArray();
    }

    [Fact]
    public void Header_literal_is_parsed_not_matched_by_offset()
    {
        // Python 2 era numpy wrote long literals with an L suffix and keys in another order, no padding.
        var a = NpyCodec.Read(WithHeader("{'shape': (2L, 1L), \"fortran_order\": False, 'descr': '<u2'}\n", data: [1, 0, 2, 0]));
        Assert.Equal([2L, 1L], a.ShapeArray);
        Assert.Equal(new ushort[] { 1, 2 }, a.ToArray<ushort>());
        var scalar = NpyCodec.Read(WithHeader("{'descr':'>i4','fortran_order':True,'shape':()}", data: [0, 0, 1, 0]));
        Assert.Empty(scalar.ShapeArray);
        Assert.Equal(">i4", scalar.DType.Str);
        Assert.Equal(256L, scalar.GetItem(0));
    }

    [Theory]
    [InlineData("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }", "structured dtypes not supported")]
    [InlineData("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", "allow_pickle=False")]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': [1], }", "'shape' is not a tuple")]
    [InlineData("{'descr': '<i4', 'fortran_order': 0, 'shape': (1,), }", "'fortran_order' is not a bool")]
    [InlineData("{'descr': '<i4', 'shape': (1,), }", "lacks fortran_order")]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected key 'x'")]
    [InlineData("{'descr': '<x4', 'fortran_order': False, 'shape': (1,), }", "not a numpy type string")]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': (-1,), }", "non-negative")]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), ", "unexpected end")]
    [InlineData("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", "truncated")]
    public void Bad_headers_raise_InvalidDataException_saying_what(string header, string what)
    {
        var bytes = WithHeader(header, data: [1, 2, 3, 4]);
        var ex = Assert.Throws<InvalidDataException>(() => NpyCodec.Read(bytes.AsSpan(), "m.npy"));
        Assert.Contains(what, ex.Message);
        Assert.Contains("m.npy", ex.Message);
        Assert.Throws<InvalidDataException>(() => NpyCodec.Read(new MemoryStream(bytes), "m.npy"));
    }

    [Fact]
    public void Bad_magic_version_and_truncation_are_refused()
    {
        var good = NpyCodec.ToBytes(NdArray.Create(new long[] { 1, 2, 3 }));
        Assert.Throws<InvalidDataException>(() => NpyCodec.Read(good.AsSpan(0, 5)));
        var badMagic = (byte[])good.Clone(); badMagic[1] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => NpyCodec.Read(badMagic.AsSpan())).Message);
        var badVersion = (byte[])good.Clone(); badVersion[6] = 4;
        Assert.Contains("version 4.0", Assert.Throws<InvalidDataException>(() => NpyCodec.Read(badVersion.AsSpan())).Message);
        for (int cut = 0; cut < good.Length; cut += 7)
        {
            Assert.Throws<InvalidDataException>(() => NpyCodec.Read(good.AsSpan(0, cut)));
            Assert.Throws<InvalidDataException>(() => NpyCodec.Read(new MemoryStream(good, 0, cut)));
        }
    }

    [Fact]
    public void Object_arrays_are_refused_on_write()
    {
        Assert.Throws<ArgumentException>(() => NpyCodec.ToBytes(NdArray.FromObjects([1], ["x"])));
    }

    [Fact]
    public void Read_of_a_byte_array_shares_the_buffer()
    {
        var bytes = NpyCodec.ToBytes(NdArray.Create(new int[] { 1, 2, 3 }));
        var a = NpyCodec.Read(bytes);
        bytes[^4] = 9;
        Assert.Equal(9, a.AsSpan<int>()[2]);
    }

    // ---------------- npz ----------------

    [SkippableFact]
    public void Voxel_lazy_npz_reads_as_the_manifest_says()
    {
        var path = Shared.PyFixture("voxel_lazy.npz");
        Requires.That(File.Exists(path), path);
        var entry = Manifest.File_("voxel_lazy.npz");
        using var npz = NpzFile.OpenRead(path);
        var getters = entry["getter"]!.AsArray();
        var keys = getters.Single(g => (string)g!["call"]! == "list(keys())")!["returns"]!["items"]!.AsArray().Select(k => (string)k!["v"]!).ToList();
        Assert.Equal(keys, npz.Keys);
        foreach (var g in getters)
        {
            string call = (string)g!["call"]!;
            if (!call.StartsWith('[')) continue;
            string key = call[1..^1];
            Assert.True(npz.Contains(key));
            Assert.True(npz.Contains(key + ".npy"));
            TypedJsonAssert.Equal(g["returns"], TypedJson.ToJson(npz.Read(key)), $"voxel_lazy.npz[{key}]");
            TypedJsonAssert.Equal(g["returns"], TypedJson.ToJson(npz.Read(key + ".npy")), $"voxel_lazy.npz[{key}.npy]");
        }
        Assert.False(npz.Contains("11"));
        Assert.Throws<KeyNotFoundException>(() => npz.Read("11"));
        CheckEntries(path, entry["npz_entries"]!.AsArray());
    }

    [SkippableFact]
    public void Voxel_storage_dyn_npz_reads_as_the_manifest_says()
    {
        var path = Shared.PyFixture("voxel_storage_dyn.npz");
        Requires.That(File.Exists(path), path);
        var entry = Manifest.File_("voxel_storage_dyn.npz");
        var all = NpzFile.ReadAll(path);
        var arrays = entry["arrays"]!.AsObject();
        Assert.Equal(arrays.Select(kv => kv.Key), all.Keys);
        foreach (var (k, v) in arrays) TypedJsonAssert.Equal(v, TypedJson.ToJson(all[k]), $"voxel_storage_dyn.npz[{k}]");
        using var fs = File.OpenRead(path);
        Assert.Equal(all.Keys, Npz.ReadAll(fs, path).Keys);
        CheckEntries(path, entry["npz_entries"]!.AsArray());
    }

    /// <summary>Member names, methods and npy headers as recorded; our header for the array read back equals numpy's.</summary>
    private static void CheckEntries(string path, JsonArray expected)
    {
        using var zip = ZipFile.OpenRead(path);
        Assert.Equal(expected.Select(e => (string)e!["name"]!), zip.Entries.Select(e => e.FullName));
        using var npz = NpzFile.OpenRead(path);
        foreach (var e in expected)
        {
            var member = zip.GetEntry((string)e!["name"]!)!;
            using var ms = new MemoryStream();
            using (var s = member.Open()) s.CopyTo(ms);
            var bytes = ms.ToArray();
            Assert.Equal((long)e["file_size"]!, bytes.Length);
            Assert.Equal((int)e["npy_version"]![0]!, bytes[6]);
            int offset = (int)e["npy_data_offset"]!;
            Assert.Equal((string)e["npy_header"]!, Encoding.Latin1.GetString(bytes, 10, offset - 10));
            var arr = npz.Read(member.FullName);
            Assert.Equal(bytes, NpyCodec.ToBytes(arr));
        }
    }

    private const string NumpyNpzScript = """
import sys, numpy as np
d = sys.argv[1]
arrs = {'10': np.arange(90, dtype='<i8').reshape(30, 3), '0': np.arange(15, dtype='>u4').reshape(5, 3),
        '-3': np.asfortranarray(np.arange(12, dtype='<f4').reshape(3, 4)), 'e': np.zeros((0, 3), '<i8'),
        's': np.array(7, dtype='<u8'), 'big': np.arange(200000, dtype='<u8').reshape(-1, 2)}
np.savez(d + '/stored.npz', **arrs)
np.savez_compressed(d + '/deflated.npz', **arrs)
""";

    [SkippableFact]
    public void We_read_npz_written_by_numpy_savez_and_savez_compressed()
    {
        PyRun.Require("numpy");
        using var dir = new TempDir();
        PyRun.RunChecked(NumpyNpzScript, [dir.Path]);
        var expected = new (string Key, NdArray Array)[]
        {
            ("10", NdArray.Create(Enumerable.Range(0, 90).Select(i => (long)i).ToArray(), 30, 3)),
            ("0", NdArray.Create(Enumerable.Range(0, 15).Select(i => (uint)i).ToArray(), 5, 3).AsType(DType.Parse(">u4"))),
            ("-3", new NdArray(DType.Float32, [3, 4], FortranOf(NdArray.Create(Enumerable.Range(0, 12).Select(i => (float)i).ToArray(), 3, 4)), ArrayOrder.F)),
            ("e", NdArray.Zeros(DType.Int64, 0, 3)),
            ("s", new NdArray(DType.UInt64, [], BitConverter.GetBytes(7UL))),
            ("big", NdArray.Create(Enumerable.Range(0, 200000).Select(i => (ulong)i).ToArray(), 100000, 2)),
        };
        foreach (var file in new[] { "stored.npz", "deflated.npz" })
        {
            using var npz = NpzFile.OpenRead(dir.File(file));
            Assert.Equal(expected.Select(e => e.Key), npz.Keys);
            foreach (var (k, a) in expected)
            {
                var got = npz.Read(k);
                AssertSameArray(a, got);
            }
        }
    }

    private const string LoadNpzScript = """
import sys, json, hashlib, zipfile, numpy as np
path = sys.argv[1]
out = {'members': [], 'arrays': []}
with zipfile.ZipFile(path) as z:
    for info in z.infolist():
        out['members'].append([info.filename, info.compress_type])
with np.load(path) as f:
    for k in f.files:
        a = f[k]
        out['arrays'].append([k, a.dtype.str, list(a.shape), hashlib.sha256(a.tobytes()).hexdigest()])
print(json.dumps(out))
""";

    [SkippableTheory]
    [InlineData(true)]
    [InlineData(false)]
    public void Numpy_loads_the_npz_we_write(bool compress)
    {
        PyRun.Require("numpy");
        using var dir = new TempDir();
        var arrays = new OrderedDictionary<string, NdArray>();
        for (int i = 0; i < Cases.Length; i++)
            arrays[i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = Make(i);
        arrays["-3"] = Make(0);
        arrays["123456789012"] = NdArray.Zeros(DType.Int64, 0, 3);
        var path = dir.File("ours.npz");
        NpzFile.Write(path, arrays, compress);
        var result = JsonNode.Parse(PyRun.RunChecked(LoadNpzScript, [path]))!;
        var members = result["members"]!.AsArray();
        Assert.Equal(arrays.Keys.Select(k => k + ".npy"), members.Select(m => (string)m![0]!));
        Assert.All(members, m => Assert.Equal(compress ? 8 : 0, (int)m![1]!));
        var loaded = result["arrays"]!.AsArray();
        Assert.Equal(arrays.Count, loaded.Count);
        int j = 0;
        foreach (var (k, a) in arrays)
        {
            var e = loaded[j++]!.AsArray();
            Assert.Equal(k, (string)e[0]!);
            Assert.Equal(a.DType.Str, (string)e[1]!);
            Assert.Equal(a.ShapeArray, e[2]!.AsArray().Select(n => (long)n!).ToArray());
            Assert.Equal(a.Sha256C(), (string)e[3]!);
        }
        // And we read our own archive back.
        var back = NpzFile.ReadAll(path);
        foreach (var (k, a) in arrays) AssertSameArray(a, back[k]);
    }

    [Fact]
    public void Npz_round_trips_through_a_stream_and_rejects_duplicates_and_garbage()
    {
        using var ms = new MemoryStream();
        using (var w = new NpzWriter(ms, leaveOpen: true))
        {
            w.Add("a", NdArray.Create(new[] { 1.5, 2.5 }));
            Assert.Throws<ArgumentException>(() => w.Add("a", NdArray.Create(new[] { 1 })));
        }
        ms.Position = 0;
        using (var r = new NpzReader(ms, "mem", leaveOpen: true))
        {
            Assert.Equal(["a"], r.Keys);
            Assert.Equal(new[] { 1.5, 2.5 }, r.Read("a").ToArray<double>());
        }
        Assert.Throws<InvalidDataException>(() => new NpzReader(new MemoryStream(Encoding.ASCII.GetBytes("not a zip at all, just text")), "junk"));
    }

    [Fact]
    public void Npz_member_that_is_not_npy_is_reported()
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, true))
        {
            using var s = zip.CreateEntry("notes.txt").Open();
            s.Write("hello"u8);
        }
        ms.Position = 0;
        using var r = new NpzReader(ms, "mem.npz");
        Assert.Equal(["notes.txt"], r.Keys);
        var ex = Assert.Throws<InvalidDataException>(() => r.Read("notes.txt"));
        Assert.Contains("mem.npz member notes.txt", ex.Message);
    }
}
