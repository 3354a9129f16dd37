namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// A Python typed-JSON encoder following the MANIFEST conventions, for interop scripts: prepend
/// <see cref="Source"/> to a script and call <c>tj(value)</c> to get the JSON-ready tree.
/// </summary>
public static class PyTypedJson
{
    /// <summary>Python source defining <c>tj(obj)</c>.</summary>
    public const string Source = """
import sys, hashlib, json, math, pickle, collections
import numpy as np

def _fv(x):
    if math.isnan(x): return 'nan'
    if math.isinf(x): return 'inf' if x > 0 else '-inf'
    return x

def tj(o):
    if o is None: return {'t': 'None'}
    if isinstance(o, np.ndarray):
        r = {'t': 'ndarray', 'dtype': o.dtype.str, 'shape': list(o.shape)}
        if o.dtype.kind == 'O':
            r['values'] = [tj(x) for x in o.ravel(order='C').tolist()]
        else:
            r['sha256_c'] = hashlib.sha256(o.tobytes(order='C')).hexdigest()
        return r
    if isinstance(o, np.generic):
        return {'t': 'npscalar', 'dtype': o.dtype.str, 'raw_hex': o.tobytes().hex()}
    if isinstance(o, np.dtype): return {'t': 'dtype', 'str': o.str}
    if isinstance(o, bool): return {'t': 'bool', 'v': o}
    if isinstance(o, int): return {'t': 'int', 'v': str(o)}
    if isinstance(o, float): return {'t': 'float', 'v': _fv(o), 'hex': o.hex()}
    if isinstance(o, complex): return {'t': 'complex', 'v': [_fv(o.real), _fv(o.imag)]}
    if isinstance(o, str):
        if len(o) > 1000:
            return {'t': 'str', 'len': len(o), 'utf8_sha256': hashlib.sha256(o.encode('utf-8', 'surrogatepass')).hexdigest()}
        return {'t': 'str', 'v': o}
    if isinstance(o, (bytes, bytearray)):
        return {'t': 'bytearray' if isinstance(o, bytearray) else 'bytes', 'len': len(o), 'sha256': hashlib.sha256(o).hexdigest()}
    if isinstance(o, tuple): return {'t': 'tuple', 'items': [tj(x) for x in o]}
    if isinstance(o, list): return {'t': 'list', 'items': [tj(x) for x in o]}
    if isinstance(o, frozenset): return {'t': 'frozenset', 'items': [tj(x) for x in o]}
    if isinstance(o, set): return {'t': 'set', 'items': [tj(x) for x in o]}
    if isinstance(o, collections.defaultdict):
        f = o.default_factory
        return {'t': 'defaultdict', 'default_factory': f.__name__ if f is not None else 'None', 'items': [[tj(k), tj(v)] for k, v in o.items()]}
    if isinstance(o, dict): return {'t': 'dict', 'items': [[tj(k), tj(v)] for k, v in o.items()]}
    raise TypeError('no typed JSON for %r' % type(o))

""";

    /// <summary>
    /// Python source of SyConn's storage getters as the spec describes them (formats.md §4–§5), for reading
    /// stores we write: <c>lz4_list_to_arr</c>, <c>cs_get</c>, <c>mesh_get</c>, <c>skel_get</c>, <c>vl_get</c>,
    /// <c>arr_to_lz4_list</c>.
    /// </summary>
    public const string UpstreamGetters = """
import pickle, lz4.block

def lz4_list_to_arr(lst, dtype, shape=None):
    if isinstance(lst, np.ndarray): return lst
    if len(lst) == 0: return np.zeros((0,), dtype)
    parts = []
    for e in lst:
        if len(e) == 0:
            parts.append(np.zeros((0,), dtype)); continue
        a = np.frombuffer(lz4.block.decompress(e), dtype)
        if shape is not None: a = a.reshape(shape)
        parts.append(a)
    return np.concatenate(parts)

def arr_to_lz4_list(arr):
    if len(arr) == 0: return [b""]
    return [lz4.block.compress(arr.tobytes())]

def cs_get(d, k): e = d[k]; return lz4_list_to_arr(e['arr'], np.dtype(e['dt']), e['sh'])
def mesh_get(d, k, load_colarr=False):
    e = list(d[k])
    while len(e) < 4: e.append([""])
    types = [np.uint32, np.float32, np.float32, np.uint8]
    return [lz4_list_to_arr(e[i], types[i]) for i in range(4 if load_colarr else 3)]
def skel_get(d, k):
    e = d[k]
    r = {'nodes': lz4_list_to_arr(e[0], np.uint32), 'diameters': lz4_list_to_arr(e[1], np.float32), 'edges': lz4_list_to_arr(e[2], np.uint32)}
    if len(e) > 3: r.update(e[3])
    return r
def vl_get(d, k):
    e = d[k]
    return ([lz4_list_to_arr(a, np.dtype(e['dt']), sh) for a, sh in zip(e['arr'], e['sh'])], e['off'])
""";
}
