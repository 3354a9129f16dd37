using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using SyConn.Backend.Arrays;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Py = SyConn.Backend.Tests.Infrastructure.Python;

namespace SyConn.Backend.Tests.BinarySearchStores;

/// <summary>Stores we write are read by h5py the way SyConn reads them, and stores h5py writes the way SyConn writes them are read by us.</summary>
public class BinarySearchStoreInteropTests
{
    /// <summary>
    /// A reader following formats.md §5.8 and upstream's get_attributes: bucket_ranges per shard,
    /// searchsorted in the shard's ids, result of dtype attrs['dtype'] and shape [n] + shape[1:].
    /// It also checks the types h5py sees. Query on stdin (JSON list); prints one JSON object.
    /// </summary>
    private const string PyChecker = """
import sys, json, hashlib
import h5py, numpy as np
path = sys.argv[1]
query = np.array(json.loads(sys.stdin.read()), dtype=np.uint64)
out = {"keys": {}}
with h5py.File(path, "r") as f:
    br = f.attrs["bucket_ranges"]
    assert br.dtype == np.uint64 and br.ndim == 2 and br.shape[1] == 2, (br.dtype, br.shape)
    out["n_shards"] = int(len(br))
    out["bucket_ranges"] = [[int(a), int(b)] for a, b in br]
    shards = [f["ids"][str(i)][()] for i in range(len(br))]
    assert all(s.dtype == np.uint64 for s in shards)
    out["shard_sizes"] = [int(len(s)) for s in shards]
    ids = np.concatenate(shards)
    out["id_array_sha256"] = hashlib.sha256(ids.tobytes()).hexdigest()
    for key in f:
        if key == "ids":
            continue
        grp = f[key]
        dt = grp.attrs["dtype"]
        assert type(dt) is str, ("dtype attribute is not str", type(dt))
        shape = grp.attrs["shape"]
        assert shape.dtype == np.int64, shape.dtype
        res = np.zeros((len(query),) + tuple(shape[1:]), dtype=dt)
        found = np.zeros(len(query), dtype=bool)
        for i, (lo, hi) in enumerate(br):
            mask = (query >= lo) & (query <= hi)
            if not mask.any():
                continue
            ixs = np.searchsorted(shards[i], query[mask])
            res[mask] = grp[str(i)][()][ixs]
            found |= mask
        assert found.all()
        ds_dtypes = sorted({str(grp[str(i)].dtype) for i in range(len(br))})
        out["keys"][key] = {"dtype": dt, "dataset_dtypes": ds_dtypes, "shape": list(res.shape),
                            "sha256": hashlib.sha256(np.ascontiguousarray(res).tobytes()).hexdigest(),
                            "full_shape": [int(x) for x in shape]}
print(json.dumps(out))
""";

    /// <summary>Builds a store exactly as upstream's constructor does (argsort, array_split, libver='latest').</summary>
    private const string PyBuilder = """
import sys, json, hashlib
import h5py, numpy as np
path, n, n_shards, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(seed)
id_array = rng.choice(10**11, size=n, replace=False).astype(np.uint64)
attr_arrays = {
    "ssv_ids": rng.integers(0, 2**63, size=n, dtype=np.uint64),
    "probs": rng.random(n, dtype=np.float32),
    "flags": rng.random(n) < 0.5,
    "coords": rng.integers(-2**31, 2**31, size=(n, 3), dtype=np.int32),
    "big_endian": rng.integers(-1000, 1000, size=n).astype(">i4"),
    "f8_2x2": rng.random((n, 2, 2)),
    "small": rng.integers(0, 60000, size=n).astype(np.uint16),
}
# --- upstream BinarySearchStore.__init__ (build branch) ---
ixs = np.argsort(id_array)
ids_sorted = id_array[ixs]
with h5py.File(path, "w", libver="latest", rdcc_nbytes=5 * 2**20) as f:
    grp = f.create_group("ids")
    bucket_ranges = []
    for ii, sh in enumerate(np.array_split(ids_sorted, n_shards)):
        grp.create_dataset(str(ii), data=sh)
        bucket_ranges.append((sh[0], sh[-1]))
    for k, arr in attr_arrays.items():
        g = f.create_group(k)
        g.attrs["shape"] = arr.shape
        g.attrs["dtype"] = arr.dtype.str
        arr = arr[ixs]
        for ii, sh in enumerate(np.array_split(arr, n_shards)):
            g.create_dataset(str(ii), data=sh)
    f.attrs["bucket_ranges"] = np.array(bucket_ranges, dtype=ids_sorted.dtype)
# --- queries and the answers, looked up directly in the unsorted input ---
qpos = rng.integers(0, n, size=3 * n)
out = {"query": [int(x) for x in id_array[qpos]], "ids_sorted_sha256": hashlib.sha256(ids_sorted.tobytes()).hexdigest(),
       "missing": [int(x) for x in np.setdiff1d(np.array([0, 1, 10**11 + 7] + [int(v) + 1 for v in ids_sorted[:20]], dtype=np.uint64), id_array)],
       "expected": {}}
for k, arr in attr_arrays.items():
    r = arr[qpos]
    r = r.astype(r.dtype.newbyteorder("="))
    out["expected"][k] = {"dtype": r.dtype.str, "shape": list(r.shape), "sha256": hashlib.sha256(np.ascontiguousarray(r).tobytes()).hexdigest()}
print(json.dumps(out))
""";

    private static string Sha(NdArray a) => Convert.ToHexStringLower(SHA256.HashData(a.ToNativeC().Data.Span));

    [SkippableFact]
    public void H5py_reads_a_store_we_built_like_SyConn_and_gets_our_answers()
    {
        Py.Require("h5py", "numpy");
        using var tmp = new TempDir();
        var rng = new Random(11);
        int n = 4001;
        var ids = BinarySearchStoreTests.UniqueIds(rng, n);
        var attrs = new Dictionary<string, NdArray>
        {
            ["flags"] = NdArray.Create(Enumerable.Range(0, n).Select(_ => rng.Next(2) == 0).ToArray()),
            ["probs"] = NdArray.Create(Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray()),
            ["ssv_ids"] = NdArray.Create(Enumerable.Range(0, n).Select(_ => (ulong)rng.NextInt64() * 2 + 1).ToArray()),
            ["coords"] = NdArray.Create(Enumerable.Range(0, 3 * n).Select(_ => rng.Next()).ToArray(), n, 3),
            ["tiny"] = NdArray.Create(Enumerable.Range(0, n).Select(_ => (sbyte)rng.Next(-128, 128)).ToArray()),
        };
        var path = tmp.File("ours.h5");
        using var store = BinarySearchStore.Create(path, ids, attrs, 4);
        var query = Enumerable.Range(0, 2000).Select(_ => ids[rng.Next(n)]).ToArray();

        var stdout = Py.RunChecked(PyChecker, [path], new JsonArray(query.Select(q => (JsonNode)JsonValue.Create(q)).ToArray()).ToJsonString());
        var py = JsonNode.Parse(stdout)!;
        Assert.Equal(4, (int)py["n_shards"]!);
        Assert.Equal(new[] { 1001, 1000, 1000, 1000 }, ((JsonArray)py["shard_sizes"]!).Select(x => (int)x!));
        Assert.Equal(store.BucketRanges.Select(r => $"{r.First},{r.Last}"),
            ((JsonArray)py["bucket_ranges"]!).Select(r => $"{(ulong)r![0]!},{(ulong)r[1]!}"));
        Assert.Equal(Sha(NdArray.Wrap(store.IdArray)), (string)py["id_array_sha256"]!);
        var keys = (JsonObject)py["keys"]!;
        Assert.Equal(attrs.Keys.Order(), keys.Select(k => k.Key).Order());
        Assert.Equal("[\"bool\"]", keys["flags"]!["dataset_dtypes"]!.ToJsonString());
        foreach (var (key, arr) in attrs)
        {
            var ours = store.GetAttributes(query, key);
            var k = keys[key]!;
            Assert.Equal(arr.DType.Str, (string)k["dtype"]!);
            Assert.Equal(arr.ShapeArray, ((JsonArray)k["full_shape"]!).Select(x => (long)x!));
            Assert.Equal(ours.ShapeArray, ((JsonArray)k["shape"]!).Select(x => (long)x!));
            Assert.Equal(Sha(ours), (string)k["sha256"]!);
        }
    }

    [SkippableFact]
    public void We_read_a_store_built_by_SyConns_constructor_logic_with_h5py()
    {
        Py.Require("h5py", "numpy");
        using var tmp = new TempDir();
        var path = tmp.File("upstream.h5");
        var py = JsonNode.Parse(Py.RunChecked(PyBuilder, [path, "3001", "5", "3"]))!;
        var query = ((JsonArray)py["query"]!).Select(x => ulong.Parse(x!.ToJsonString(), CultureInfo.InvariantCulture)).ToArray();

        using var store = new BinarySearchStore(path);
        Assert.Equal(5, store.NShards);
        Assert.Equal((string)py["ids_sorted_sha256"]!, Sha(NdArray.Wrap(store.IdArray)));
        var expected = (JsonObject)py["expected"]!;
        Assert.Equal(expected.Select(e => e.Key).Order(), store.AttributeNames.Order());
        Assert.Equal(">i4", store.GetAttributeDType("big_endian").Str);
        foreach (var (key, exp) in expected)
        {
            foreach (var got in new[] { store.GetAttributes(query, key), BinarySearchStore.GetAttributesParallel(store, query, key, 2) })
            {
                Assert.Equal((string)exp!["dtype"]!, got.DType.Str);
                Assert.Equal(((JsonArray)exp["shape"]!).Select(x => (long)x!), got.ShapeArray);
                Assert.Equal((string)exp["sha256"]!, Sha(got));
            }
        }
        var missing = ((JsonArray)py["missing"]!).Select(x => ulong.Parse(x!.ToJsonString(), CultureInfo.InvariantCulture)).ToArray();
        Assert.NotEmpty(missing);
        var e = Assert.Throws<KeyNotFoundException>(() => store.GetAttributes(missing, "probs"));
        Assert.Contains(missing[0].ToString(CultureInfo.InvariantCulture), e.Message);
        store.TryGetAttributes(missing, "probs", out var found);
        Assert.DoesNotContain(true, found);
    }
}
