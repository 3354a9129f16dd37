using System.Numerics;
using System.Text.Json.Nodes;
using CsCheck;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;
using PythonRunner = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// Round trips through real CPython + numpy: random trees written by us are loaded by Python, and
/// random trees pickled by Python are loaded by us; both sides compare typed JSON.
/// </summary>
public class PickleInteropTests
{
    /// <summary>Typed JSON in Python, following the MANIFEST conventions: <c>enc(value)</c>.</summary>
    internal const string PyTypedJson = Infrastructure.PyTypedJson.Source + "enc = tj\n";

    // ------------------------------------------------------------------ C# -> Python

    private static readonly Gen<object> GenHugeInt =
        Gen.Byte.Array[9, 300].Select(b => PyInt.From(new BigInteger(b)));

    private static readonly Gen<string> GenStr =
        Gen.Frequency(
            (4, Gen.Int[0x20, 0x7E].Array[0, 12].Select(cps => new string(cps.Select(c => (char)c).ToArray()))),
            (2, Gen.Int[0x20, 0x10FFFF].Where(c => c is < 0xD800 or > 0xDFFF).Array[0, 8]
                .Select(cps => string.Concat(cps.Select(char.ConvertFromUtf32)))),
            (1, Gen.Int[300, 1500].Select(n => new string('z', n))));

    private static readonly Gen<object> GenKey = Gen.OneOf(
        Gen.Long.Select(l => (object)l),
        Gen.Int[-5, 300].Select(i => (object)(long)i),
        GenStr.Select(s => (object)s),
        GenHugeInt,
        Gen.Select(Gen.Int[0, 9], GenStr, (i, s) => (object)new PyTuple((long)i, s)));

    private static readonly string[] ArrayDTypes = ["|u1", "<i2", "<u4", "<i8", ">i4", "<f4", "<f8", ">f8", "<c16", "|b1", "|S3", "|O"];
    private static readonly string[] ScalarDTypes = ["<u8", "<i8", "<f8", "<f4", "|b1", "|u1", "<i4"];

    private static readonly Gen<object> GenArray =
        Gen.Select(Gen.Int[0, ArrayDTypes.Length - 1], Gen.Int[0, 4].Array[0, 3], Gen.Bool, Gen.Int[0, int.MaxValue], (di, shape, fortran, seed) =>
        {
            var dt = DType.Parse(ArrayDTypes[di]);
            var shp = shape.Select(x => (long)x).ToArray();
            long size = shp.Aggregate(1L, (a, b) => a * b);
            var rnd = new Random(seed);
            if (dt.Kind == 'O')
                return (object)NdArray.FromObjects(shp, Enumerable.Range(0, (int)size).Select(i => (object)(i % 3 == 0 ? PyNone.Value : i % 3 == 1 ? (long)i : "o" + i)).ToArray());
            var data = new byte[size * dt.ItemSize];
            rnd.NextBytes(data);
            if (dt.Kind == 'b') for (int i = 0; i < data.Length; i++) data[i] &= 1;
            return new NdArray(dt, shp, data, fortran && shp.Length > 1 ? ArrayOrder.F : ArrayOrder.C);
        });

    private static readonly Gen<object> GenScalar =
        Gen.Select(Gen.Int[0, ScalarDTypes.Length - 1], Gen.Int[0, int.MaxValue], (di, seed) =>
        {
            var dt = DType.Parse(ScalarDTypes[di]);
            var raw = new byte[dt.ItemSize];
            new Random(seed).NextBytes(raw);
            if (dt.Kind == 'b') raw[0] &= 1;
            return (object)new NpScalar(dt, raw);
        });

    private static readonly Gen<object> GenLeaf = Gen.Frequency(
        (1, Gen.Const((object)PyNone.Value)),
        (1, Gen.Bool.Select(b => (object)b)),
        (2, Gen.Long.Select(l => (object)l)),
        (2, Gen.Int[-70000, 70000].Select(i => (object)(long)i)),
        (1, GenHugeInt),
        (2, Gen.Double.Select(d => (object)d)),
        (1, Gen.OneOf(double.NaN, -0.0, 0.0, double.PositiveInfinity, double.NegativeInfinity, 5e-324).Select(d => (object)d)),
        (1, Gen.Select(Gen.Double, Gen.Double, (a, b) => (object)new Complex(a, b))),
        (3, GenStr.Select(s => (object)s)),
        (2, Gen.Byte.Array[0, 300].Select(b => (object)new PyBytes(b))),
        (1, Gen.Byte.Array[0, 40].Select(b => (object)new PyByteArray(b))),
        (3, GenArray),
        (2, GenScalar),
        (1, Gen.OneOf("|u1", "<f8", ">i4", "|S5", "<U3", "|O", "<M8[s]", "<m8[5ms]").Select(s => (object)DType.Parse(s))));

    private static Gen<object> GenTree(int depth)
    {
        if (depth == 0) return GenLeaf;
        var child = GenTree(depth - 1);
        return Gen.Frequency(
            (4, GenLeaf),
            (2, child.List[0, 6].Select(l => (object)new PyList(l))),
            (1, child.Array[0, 5].Select(a => (object)new PyTuple(a))),
            (2, Gen.Select(GenKey.Array[0, 6], child.Array[6], (ks, vs) => { var d = new PyDict(); for (int i = 0; i < ks.Length; i++) d[ks[i]] = vs[i]; return (object)d; })),
            (1, Gen.Select(GenKey.Array[0, 5], Gen.Bool, (ks, frozen) => (object)new PySet(ks, frozen))),
            (1, Gen.Select(GenKey.Array[0, 5], child.Array[5], Gen.OneOf<string?>("int", "list", null), (ks, vs, f) =>
            {
                var d = new PyDefaultDict(f);
                for (int i = 0; i < ks.Length; i++) d[ks[i]] = vs[i];
                return (object)d;
            })));
    }

    [SkippableFact]
    public void Trees_written_by_us_load_in_CPython()
    {
        PythonRunner.Require("numpy");
        using var tmp = new TempDir();
        GenTree(3).Array[150].Sample(trees =>
        {
            // A few fixed values that exercise framing and long opcodes.
            var fixedValues = new object[]
            {
                new PyDict { ["big"] = NdArray.Create(Enumerable.Range(0, 20_000).Select(i => (double)i).ToArray()), ["s"] = new string('é', 40_000) },
                new PyList(Enumerable.Range(0, 2500).Select(i => (object)(long)i)),
                new PyDict(),
                BigInteger.Pow(2, 2100),
            };
            var all = fixedValues.Concat(trees).ToArray();
            int[] protos = [2, 4, 5];
            var expected = new List<(string Name, JsonNode Json)>();
            foreach (var p in protos)
                for (int i = 0; i < all.Length; i++)
                {
                    var bytes = P.Dump(all[i], p);
                    var name = $"t{i}_p{p}.pkl";
                    File.WriteAllBytes(tmp.File(name), bytes);
                    // What Python loads is what our own reader loads (non-native _reconstruct arrays become native)...
                    expected.Add((name, TypedJson.ToJson(P.Load(bytes))));
                    // ...and at protocol 5 that is the value itself.
                    if (p == 5) TypedJsonAssert.Equal(TypedJson.ToJson(all[i]), expected[^1].Json, $"{name} re-read by us");
                }
            var script = PyTypedJson + """

import os
d = sys.argv[1]
out = {}
for name in sorted(os.listdir(d)):
    with open(os.path.join(d, name), 'rb') as f:
        out[name] = enc(pickle.load(f))
print(json.dumps(out))
""";
            var result = (JsonObject)JsonNode.Parse(PythonRunner.RunChecked(script, [tmp.Path]))!;
            foreach (var (name, json) in expected)
                TypedJsonAssert.Equal(result[name], json, name + " as loaded by CPython");
        }, iter: 1, threads: 1);
    }

    // ------------------------------------------------------------------ Python -> C#

    [SkippableFact]
    public void Trees_pickled_by_CPython_load_here()
    {
        PythonRunner.Require("numpy");
        using var tmp = new TempDir();
        var script = PyTypedJson + """

import os, random
rnd = random.Random(int(sys.argv[2]))
DT = ['|u1', '<i2', '>i4', '<u8', '<f4', '>f8', '<c8', '|b1', '|S4', '<U3', '<M8[s]']

def rstr():
    k = rnd.random()
    if k < 0.5: return ''.join(chr(rnd.randint(32, 126)) for _ in range(rnd.randint(0, 10)))
    if k < 0.9: return ''.join(chr(rnd.choice([rnd.randint(0xa0, 0xd7ff), rnd.randint(0x10000, 0x10ffff)])) for _ in range(rnd.randint(0, 6)))
    return 'x' * rnd.randint(900, 1200)

def rarr():
    dt = np.dtype(rnd.choice(DT))
    shape = tuple(rnd.randint(0, 4) for _ in range(rnd.randint(0, 3)))
    n = int(np.prod(shape)) if shape else 1
    if dt.kind == 'U':
        a = np.array([rstr()[:3] for _ in range(n)], dtype=dt).reshape(shape)
    elif dt.kind == 'b':
        a = np.array([rnd.random() < 0.5 for _ in range(n)], dtype=dt).reshape(shape)
    else:
        a = np.frombuffer(bytes(rnd.getrandbits(8) for _ in range(n * dt.itemsize)), dtype=dt).reshape(shape)
        if dt.kind == 'f': a = np.nan_to_num(a)
    k = rnd.random()
    if k < 0.25 and a.ndim > 1: a = np.asfortranarray(a)
    elif k < 0.4 and a.ndim >= 1 and a.shape[0] > 1: a = a[::2]
    elif k < 0.55 and a.ndim > 1: a = a.transpose()
    elif k < 0.85: a = a.copy()
    # else: keep the read-only frombuffer array (pickled in-band as bytes at protocol 5)
    return a

def rscalar():
    c = rnd.randrange(6)
    if c == 0: return np.uint64(rnd.getrandbits(64))
    if c == 1: return np.int32(rnd.randint(-2**31, 2**31 - 1))
    if c == 2: return np.float64(rnd.uniform(-1e9, 1e9))
    if c == 3: return np.float32(rnd.uniform(-10, 10))
    if c == 4: return np.bool_(rnd.random() < 0.5)
    return np.str_(rstr()[:4])

def rkey():
    c = rnd.randrange(4)
    if c == 0: return rnd.randint(-2**70, 2**70)
    if c == 1: return rstr()
    if c == 2: return (rnd.randint(0, 9), rstr())
    return rnd.randint(0, 1000)

def rleaf():
    c = rnd.randrange(16)
    if c == 0: return None
    if c == 1: return rnd.random() < 0.5
    if c == 2: return rnd.randint(-2**40, 2**40)
    if c == 3: return rnd.randint(-2**3000, 2**3000)
    if c == 4: return rnd.choice([0.0, -0.0, float('nan'), float('inf'), -float('inf'), 1e-310, rnd.uniform(-1e300, 1e300)])
    if c == 5: return complex(rnd.uniform(-5, 5), rnd.uniform(-5, 5))
    if c == 6: return rstr()
    if c == 7: return bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 300)))
    if c == 8: return bytearray(rnd.getrandbits(8) for _ in range(rnd.randint(0, 30)))
    if c in (9, 10, 11): return rarr()
    if c in (12, 13): return rscalar()
    if c == 14: return np.dtype(rnd.choice(DT))
    return rnd.randint(0, 255)

def rtree(d):
    c = rnd.randrange(12)
    if d == 0 or c < 4: return rleaf()
    if c < 6: return [rtree(d - 1) for _ in range(rnd.randint(0, 6))]
    if c == 6: return tuple(rtree(d - 1) for _ in range(rnd.randint(0, 5)))
    if c < 9: return {rkey(): rtree(d - 1) for _ in range(rnd.randint(0, 6))}
    if c == 9: return (set if rnd.random() < 0.5 else frozenset)(rkey() for _ in range(rnd.randint(0, 5)))
    if c == 10:
        dd = collections.defaultdict(rnd.choice([int, list]))
        for _ in range(rnd.randint(0, 4)): dd[rkey()] = rtree(d - 1)
        return dd
    od = collections.OrderedDict()
    for _ in range(rnd.randint(0, 4)): od[rkey()] = rtree(d - 1)
    return od

out = {}
trees = [rtree(3) for _ in range(200)]
shared = [1, 2, 3]
trees.append({'shared': [shared, shared], 'big': np.arange(20000, dtype='<f8'), 'long': 'y' * 70000, 'items': list(range(2500))})
for i, t in enumerate(trees):
    for p in (2, 4, 5):
        data = pickle.dumps(t, protocol=p)
        name = 't%d_p%d.pkl' % (i, p)
        with open(os.path.join(sys.argv[1], name), 'wb') as f: f.write(data)
        out[name] = enc(pickle.loads(data))
print(json.dumps(out))
""";
        var expected = (JsonObject)JsonNode.Parse(PythonRunner.RunChecked(script, [tmp.Path, "4711"]))!;
        Assert.True(expected.Count >= 600, $"only {expected.Count} pickles");
        foreach (var (name, json) in expected)
        {
            var value = P.Load(File.ReadAllBytes(tmp.File(name)), sourceName: name);
            TypedJsonAssert.Equal(json, TypedJson.ToJson(value), name);
        }
    }
}
