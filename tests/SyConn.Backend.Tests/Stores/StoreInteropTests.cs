using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Stores;

/// <summary>Stores written by us are read by Python with SyConn's getter semantics, and the reverse.</summary>
public class StoreInteropTests
{
    private static NdArray RandomArray(Random rng, DType dt, params long[] shape)
    {
        long n = 1;
        foreach (var d in shape) n *= d;
        var bytes = new byte[n * dt.ItemSize];
        rng.NextBytes(bytes);
        if (dt.Kind == 'b') for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        if (dt.Kind == 'f') // keep floats finite and comparable
        {
            var a = NdArray.Create(Enumerable.Range(0, (int)n).Select(_ => rng.NextDouble() * 1000 - 500).ToArray(), shape);
            return a.AsType(dt);
        }
        return new NdArray(dt, shape, bytes);
    }

    [SkippableFact]
    public void Python_reads_every_store_kind_we_write()
    {
        Infrastructure.Python.Require("numpy", "lz4");
        using var dir = new TempDir();
        var rng = new Random(42);
        var expected = new JsonObject();
        void Expect(string store, StoreKey key, object value) =>
            (expected[store] ??= new JsonArray()).AsArray().Add(new JsonArray(key.ToString(), TypedJson.ToJson(value)));

        using (var cs = new CompressedStorage(dir.File("cs.pkl"), StoreOptions.Writable))
        {
            foreach (var (k, dt, shape) in new (ulong, string, long[])[] { (1, "<u8", [50, 3]), (ulong.MaxValue, "<i4", [4, 2, 3]), (3, "<f4", [7]), (4, "|b1", [6]), (5, ">i4", [3]), (6, "<f8", [0, 3]) })
            {
                var a = RandomArray(rng, DType.Parse(dt), shape);
                cs[k] = a;
                Expect("cs", k, cs[k]);
            }
            cs.Push();
        }
        foreach (var compress in new[] { false, true })
        {
            var name = compress ? "mesh_lz4.pkl" : "mesh_raw.pkl";
            using var ms = new MeshStorage(dir.File(name), StoreOptions.Writable, loadColArr: true, compress: compress);
            ms[1] = [RandomArray(rng, DType.UInt32, 30), RandomArray(rng, DType.Float32, 30), RandomArray(rng, DType.Float32, 30), RandomArray(rng, DType.UInt8, 30)];
            ms[2] = [RandomArray(rng, DType.Int64, 9), RandomArray(rng, DType.Float64, 9)];
            foreach (var k in new StoreKey[] { 1, 2 }) Expect(name, k, new PyList(ms[k]));
            ms.Push();
        }
        using (var ss = new SkeletonStorage(dir.File("skel.pkl"), StoreOptions.Writable))
        {
            ss[9] = new Skeleton(RandomArray(rng, DType.UInt32, 10, 3), RandomArray(rng, DType.Float32, 10), RandomArray(rng, DType.UInt32, 9, 2),
                new PyDict { ["axoness"] = RandomArray(rng, DType.Int64, 10), ["meta"] = new PyDict { ["n"] = 3L } });
            ss[10] = new Skeleton(NdArray.Zeros(DType.UInt32, 0, 3), NdArray.Zeros(DType.Float32, 0), NdArray.Zeros(DType.UInt32, 0, 2));
            foreach (var k in new StoreKey[] { 9, 10 }) Expect("skel", k, ss[k].ToPython());
            ss.Push();
        }
        using (var vl = new VoxelStorageL(dir.File("vl.pkl"), StoreOptions.Writable))
        {
            vl[3] = new VoxelMasks([RandomArray(rng, DType.Bool, 4, 3, 2), RandomArray(rng, DType.Bool, 2, 5, 1)], [new long[] { 1, 2, 3 }, new long[] { 4, 5, 6 }]);
            vl.Append(3, NdArray.Zeros(DType.Bool, 0), [7, 8, 9]);
            var m = vl[3];
            Expect("vl", 3, new PyTuple(new PyList(m.Masks), m.Offsets));
            vl.Push();
        }
        using (var ad = new AttributeDict(dir.File("attr_dict.pkl"), StoreOptions.Writable))
        {
            ad[ulong.MaxValue - 1] = new PyDict { ["size"] = 5L, ["rc"] = RandomArray(rng, DType.Int64, 3), ["ssv"] = NpScalar.UInt64(ulong.MaxValue), ["r"] = NpScalar.Float64(1.5), ["t"] = "sj" };
            Expect("ad", ulong.MaxValue - 1, ad[ulong.MaxValue - 1]);
            ad.Push();
        }

        string script = PyTypedJson.Source + PyTypedJson.UpstreamGetters + """

import sys, os
d = sys.argv[1]
def load(n):
    with open(os.path.join(d, n), 'rb') as f: return pickle.load(f)
def key(s):
    return s[4:] if s.startswith('str:') else int(s)
exp = json.loads(sys.stdin.read())
out = {}
getters = {'cs': lambda D, k: cs_get(D, k), 'mesh_raw.pkl': lambda D, k: mesh_get(D, k, True), 'mesh_lz4.pkl': lambda D, k: mesh_get(D, k, True),
           'skel': skel_get, 'vl': vl_get, 'ad': lambda D, k: D[k]}
files = {'cs': 'cs.pkl', 'mesh_raw.pkl': 'mesh_raw.pkl', 'mesh_lz4.pkl': 'mesh_lz4.pkl', 'skel': 'skel.pkl', 'vl': 'vl.pkl', 'ad': 'attr_dict.pkl'}
for store, items in exp.items():
    D = load(files[store])
    assert type(D) is dict
    out[store] = [[k, tj(getters[store](D, key(k)))] for k, _ in items]
print(json.dumps(out))
""";
        var stdout = Infrastructure.Python.RunChecked(script, [dir.Path], expected.ToJsonString());
        var actual = JsonNode.Parse(stdout)!.AsObject();
        foreach (var (store, items) in expected)
        {
            var a = actual[store]!.AsArray();
            var e = items!.AsArray();
            Assert.Equal(e.Count, a.Count);
            for (int i = 0; i < e.Count; i++)
                TypedJsonAssert.Equal(a[i]![1], e[i]![1], $"{store} key {e[i]![0]} (python's view vs ours)");
        }
    }

    [SkippableFact]
    public void We_read_stores_python_writes()
    {
        Infrastructure.Python.Require("numpy", "lz4");
        using var dir = new TempDir();
        string script = PyTypedJson.Source + PyTypedJson.UpstreamGetters + """

import sys, os
d = sys.argv[1]
rng = np.random.default_rng(7)
def dump(n, D, proto):
    with open(os.path.join(d, n), 'wb') as f: pickle.dump(D, f, protocol=proto)
out = {}
for proto in (2, 4, 5):
    cs = {}
    cs[np.uint64(2**64 - 2)] = {'arr': arr_to_lz4_list(rng.integers(0, 2**63, (40, 3), dtype=np.uint64)), 'sh': (-1, 3), 'dt': '<u8'}
    a = rng.random((5, 4)).astype('>f8')
    cs['s'] = {'arr': arr_to_lz4_list(a), 'sh': (-1, 4), 'dt': a.dtype.str}
    cs[-7] = {'arr': [b""], 'sh': (-1, 3), 'dt': '<i4'}
    dump('cs%d.pkl' % proto, cs, proto)
    out['cs%d.pkl' % proto] = [['18446744073709551614', tj(cs_get(cs, 2**64 - 2))], ['str:s', tj(cs_get(cs, 's'))], ['-7', tj(cs_get(cs, -7))]]
    ms = {1: [np.arange(9, dtype=np.uint32), rng.random(9).astype(np.float32), np.zeros(0, np.float32), np.zeros(0, np.uint8)],
          2: [arr_to_lz4_list(np.arange(6, dtype=np.uint32)), arr_to_lz4_list(rng.random(6).astype(np.float32))]}
    dump('mesh%d.pkl' % proto, ms, proto)
    out['mesh%d.pkl' % proto] = [[str(k), tj(mesh_get(ms, k, True))] for k in ms]
    sk = {3: [arr_to_lz4_list(np.arange(6, dtype=np.uint32)), arr_to_lz4_list(np.ones(2, np.float32)), arr_to_lz4_list(np.array([0, 1], np.uint32)), {'axoness': np.array([1, 2])}]}
    dump('skeletons%d.pkl' % proto, sk, proto)
    out['skeletons%d.pkl' % proto] = [['3', tj(skel_get(sk, 3))]]
    vl = {5: {'arr': [arr_to_lz4_list(np.ones((1, 1, 2), np.uint8)), arr_to_lz4_list(np.zeros((2, 1, 1), np.uint8))], 'sh': [[-1, 1, 2], [-1, 1, 1]], 'dt': np.dtype('u1'), 'off': [np.array([7, 8, 9]), np.array([1, 1, 1])]}}
    dump('vl%d.pkl' % proto, vl, proto)
    out['vl%d.pkl' % proto] = [['5', tj(vl_get(vl, 5))]]
print(json.dumps(out))
""";
        var expected = JsonNode.Parse(Infrastructure.Python.RunChecked(script, [dir.Path]))!.AsObject();
        foreach (var (file, items) in expected)
        {
            var cls = file.StartsWith("cs", StringComparison.Ordinal) ? StoreClass.CompressedStorage
                : file.StartsWith("mesh", StringComparison.Ordinal) ? StoreClass.MeshStorage
                : file.StartsWith("skel", StringComparison.Ordinal) ? StoreClass.SkeletonStorage : StoreClass.VoxelStorageL;
            using var store = StoreFactory.OpenPickleStore(Path.Combine(dir.Path, file), cls, loadColArr: true);
            foreach (var item in items!.AsArray())
            {
                var key = StoreKey.Parse((string)item![0]!);
                TypedJsonAssert.Equal(item[1], TypedJson.ToJson(StoreFactory.GetAsPython(store, key)), $"{file} key {key}");
            }
        }
    }
}
