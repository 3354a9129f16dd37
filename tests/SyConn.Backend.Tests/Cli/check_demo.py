#!/usr/bin/python3
"""Checks a `syconn-store demo` working directory the way SyConn would read it.

Usage: check_demo.py DIR

Reads every store that DIR/syconn-demo.json lists with the getter rules of spec/formats.md (those of
syconn.backend.storage: CompressedStorage's LZ4 lists, MeshStorage's and SkeletonStorage's getters,
VoxelStorageDyn's helper keys and .npz voxel cache, BinarySearchStore's shards), using only numpy, lz4,
h5py and (for the KNOSSOS cubes) snappy, not SyConn itself. It checks that

* each store's digest (the form DemoDigest.cs describes) and entry count match the manifest;
* every key sits in the storage folder that SyConn's subfold_from_ix (new scheme) gives for it;
* the stores of a folder agree on their keys, sizes agree between attr_dict.pkl and voxel.pkl;
* the supervoxel-to-cell BinarySearchStore answers for every supervoxel, as the manifest's samples say;
* voxel.pkl's boxes, read from the KNOSSOS segmentation as voxel mode does, hold `size` voxels of the
  object, and each voxel cache lists exactly those voxels.

Prints a JSON summary on stdout; exits 1 with one line per failure on stderr.
"""
import hashlib
import json
import os
import pickle
import struct
import sys
import zipfile

import h5py
import lz4.block
import numpy as np

try:
    import snappy
except ImportError:  # the KNOSSOS check needs it; everything else does not
    snappy = None

FAILURES = []


def fail(msg):
    FAILURES.append(msg)


# ---------------------------------------------------------------- upstream getter rules (spec/formats.md §4, §5)

def lz4_list_to_arr(lst, dtype, shape=None):
    """lz4string_listtoarr: an ndarray passes unchanged; empty elements are (0,) arrays ignoring the shape."""
    if isinstance(lst, np.ndarray):
        return lst
    if len(lst) == 0:
        return np.zeros((0,), dtype)
    parts = []
    for elem in lst:
        if len(elem) == 0:
            parts.append(np.zeros((0,), dtype))
            continue
        a = np.frombuffer(lz4.block.decompress(elem), dtype)
        parts.append(a.reshape(shape) if shape is not None else a)
    return np.concatenate(parts).astype(np.dtype(dtype).newbyteorder('='), copy=False)


def compressed_entry(v):
    return lz4_list_to_arr(v['arr'], np.dtype(v['dt']), v['sh'])


def load_pkl(path):
    with open(path, 'rb') as f:
        return pickle.load(f)


def object_keys(d):
    """VoxelStorageDyn.keys(): non-str keys and str keys made of digits (the helper keys are str)."""
    return [k for k in d if not isinstance(k, str) or k.isdigit()]


def mesh_get(v):
    """MeshStorage getter with load_colarr=False: indices uint32, vertices and normals float32, flat."""
    v = list(v)
    while len(v) < 4:
        v.append([""])
    return [lz4_list_to_arr(v[0], np.uint32), lz4_list_to_arr(v[1], np.float32), lz4_list_to_arr(v[2], np.float32)]


def skeleton_get(v):
    d = {'nodes': lz4_list_to_arr(v[0], np.uint32), 'diameters': lz4_list_to_arr(v[1], np.float32),
         'edges': lz4_list_to_arr(v[2], np.uint32)}
    if len(v) > 3:
        d.update(v[3])
    return d


def bss_get_attributes(f, ids, key):
    """BinarySearchStore.get_attributes: shard by bucket_ranges (last match wins), searchsorted inside it."""
    ranges = f.attrs['bucket_ranges']
    grp = f[key]
    shape = list(grp.attrs['shape'])
    dtype = grp.attrs['dtype']
    dtype = dtype.decode() if isinstance(dtype, bytes) else dtype
    out = np.zeros([len(ids)] + shape[1:], dtype=np.dtype(dtype))
    shard_ids = [f['ids'][str(i)][()] for i in range(len(ranges))]
    shard_attr = [grp[str(i)][()] for i in range(len(ranges))]
    for qi, q in enumerate(ids):
        shard = None
        for i, (lo, hi) in enumerate(ranges):
            if lo <= q <= hi:
                shard = i
        if shard is None:
            raise ValueError(f'id {q} is in no shard')
        out[qi] = shard_attr[shard][np.searchsorted(shard_ids[shard], q)]
    return out


def subfold_from_ix_new(ix, n_folders):
    """syconn.reps.rep_helper.subfold_from_ix_new (use_new_subfold=True), without the slashes around it."""
    order = int(np.log10(n_folders))
    ix = int(ix // 1e3 % n_folders)
    id_str = '{num:0{w}d}'.format(num=ix, w=order)
    return '/'.join(id_str[i:i + 2] for i in range(0, order, 2))


# ---------------------------------------------------------------- the digest form (DemoDigest.cs)

def feed(h, v):
    if isinstance(v, np.ndarray):
        if v.dtype.hasobject:
            raise TypeError('object array')
        h.update(('A%s;%s;' % (v.dtype.str, ','.join(str(s) for s in v.shape))).encode())
        h.update(np.ascontiguousarray(v).tobytes())
    elif isinstance(v, np.generic):
        h.update(('A%s;;' % v.dtype.str).encode())
        h.update(v.tobytes())
    elif v is None:
        h.update(b'N;')
    elif isinstance(v, bool):
        h.update(b'B1;' if v else b'B0;')
    elif isinstance(v, int):
        h.update(b'I%d;' % v)
    elif isinstance(v, float):
        h.update(b'F' + struct.pack('<d', v))
    elif isinstance(v, str):
        b = v.encode()
        h.update(b'S%d;' % len(b) + b)
    elif isinstance(v, bytes):
        h.update(b'Y%d;' % len(v) + v)
    elif isinstance(v, dict):
        h.update(b'D%d;' % len(v))
        for k in sorted(v):
            feed(h, k)
            feed(h, v[k])
    elif isinstance(v, tuple):
        h.update(b'T%d;' % len(v))
        for x in v:
            feed(h, x)
    elif isinstance(v, list):
        h.update(b'L%d;' % len(v))
        for x in v:
            feed(h, x)
    else:
        raise TypeError(type(v).__name__)


def digest(items):
    h = hashlib.sha256()
    for k, v in sorted(items, key=lambda kv: int(kv[0])):
        h.update(b'K%d;' % int(k))
        feed(h, v)
    return h.hexdigest()


# ---------------------------------------------------------------- KNOSSOS cubes

def load_segmentation(root, name, boundary, edge):
    """The mag-1 segmentation as one uint64 array [z][y][x]; cubes are zips of one raw-snappy member."""
    bx, by, bz = boundary
    vol = np.zeros((bz, by, bx), np.uint64)
    mag = os.path.join(root, 'mag1')
    for dirpath, _, files in os.walk(mag):
        for fn in files:
            if not fn.endswith('.seg.sz.zip'):
                continue
            parts = fn[:-len('.seg.sz.zip')].split('_')
            i, j, k = (int(p[1:]) for p in parts[-3:])
            with zipfile.ZipFile(os.path.join(dirpath, fn)) as z:
                raw = snappy.uncompress(z.read(fn[:-len('.zip')]))
            cube = np.frombuffer(raw, np.uint64).reshape(edge, edge, edge)
            x0, y0, z0 = i * edge, j * edge, k * edge
            sz, sy, sx = min(edge, bz - z0), min(edge, by - y0), min(edge, bx - x0)
            vol[z0:z0 + sz, y0:y0 + sy, x0:x0 + sx] = cube[:sz, :sy, :sx]
    return vol


# ---------------------------------------------------------------- the check

def main(wd):
    with open(os.path.join(wd, 'syconn-demo.json')) as f:
        m = json.load(f)
    if m.get('syconn_store_demo') != 1 or not m.get('complete'):
        fail('manifest: not a complete demo manifest')
        return {}
    n_folders = m['n_folders_fs']
    so_storage = m['so_storage']
    if so_storage != 'sv_0/so_storage_%d' % n_folders:
        fail(f'manifest: so_storage {so_storage} is not sv_0/so_storage_{n_folders}')
    for rel in m['files']:
        if not os.path.isfile(os.path.join(wd, rel)):
            fail(f'{rel}: listed in the manifest but missing')

    by_folder = {}
    stores = {s['path']: s for s in m['stores']}
    for path in stores:
        folder, _, name = path.rpartition('/')
        by_folder.setdefault(folder, {})[name] = os.path.join(wd, path)

    def check_store(path, items):
        s = stores[path]
        if len(items) != s['entries']:
            fail(f'{path}: {len(items)} entries, manifest says {s["entries"]}')
        d = digest(items)
        if d != s['sha256']:
            fail(f'{path}: digest {d} differs from the manifest\'s {s["sha256"]}')

    all_ids = []
    sizes = {}
    boxes = {}
    caches = {}
    kd_path = os.path.realpath(os.path.join(wd, m['knossos']['path']))
    for folder, files in sorted(by_folder.items()):
        if folder.startswith('ssv_0'):
            continue
        if not folder.startswith(so_storage + '/'):
            fail(f'{folder}: not below {so_storage}')
            continue
        sub = folder[len(so_storage) + 1:]
        ad = load_pkl(files['attr_dict.pkl'])
        check_store(folder + '/attr_dict.pkl', list(ad.items()))
        keys = sorted(int(k) for k in ad)
        for k in keys:
            if subfold_from_ix_new(k, n_folders) != sub:
                fail(f'{folder}: key {k} belongs in {so_storage}/{subfold_from_ix_new(k, n_folders)}')
        all_ids.extend(keys)
        mesh = load_pkl(files['mesh.pkl'])
        check_store(folder + '/mesh.pkl', [(k, mesh_get(v)) for k, v in mesh.items()])
        skel = load_pkl(files['skeletons.pkl'])
        check_store(folder + '/skeletons.pkl', [(k, skeleton_get(v)) for k, v in skel.items()])
        if sorted(mesh) != keys or sorted(skel) != keys:
            fail(f'{folder}: attr_dict, mesh and skeletons hold different keys')
        if 'voxel.pkl' in files:
            vx = load_pkl(files['voxel.pkl'])
            vkeys = object_keys(vx)
            for helper in ('meta', 'size', 'rep_coord', 'voxel_cache'):
                if helper not in vx:
                    fail(f'{folder}/voxel.pkl: helper key {helper!r} missing')
            vdp = vx['meta']['voxeldata_path']
            if not vdp or os.path.realpath(vdp) != kd_path:
                fail(f'{folder}/voxel.pkl: voxeldata_path {vdp!r} is not the demo\'s segmentation {kd_path}')
            check_store(folder + '/voxel.pkl',
                        [(k, [compressed_entry(vx[k]), vx['size'][k], vx['rep_coord'][k]]) for k in vkeys])
            for k in vkeys:
                if k not in ad:
                    fail(f'{folder}/voxel.pkl: key {k} has no attr_dict entry')
                elif ad[k]['size'] != vx['size'][k]:
                    fail(f'{folder}: size of {k} is {ad[k]["size"]} in attr_dict.pkl, {vx["size"][k]} in voxel.pkl')
                bb = compressed_entry(vx[k])
                if bb.ndim != 3 or bb.shape[1:] != (2, 3):
                    fail(f'{folder}/voxel.pkl: boxes of {k} have shape {bb.shape}')
                sizes[int(k)] = vx['size'][k]
                boxes[int(k)] = bb
            if 'voxel.npz' in files:
                with np.load(files['voxel.npz']) as z:
                    cache = [(int(name), z[name]) for name in z.files]
                check_store(folder + '/voxel.npz', cache)
                for k, c in cache:
                    if k not in vx:
                        fail(f'{folder}/voxel.npz: key {k} has no voxel.pkl entry')
                    caches[k] = c

    if len(all_ids) != m['objects']:
        fail(f'{len(all_ids)} objects in the attribute dicts, manifest says {m["objects"]}')

    # The supervoxel-to-cell lookup.
    mapping = next(s for s in m['stores'] if s['class'] == 'BinarySearchStore')
    with h5py.File(os.path.join(wd, mapping['path']), 'r') as f:
        ids = np.concatenate([f['ids'][str(i)][()] for i in range(len(f.attrs['bucket_ranges']))])
        if len(f.attrs['bucket_ranges']) != mapping['n_shards']:
            fail(f'{mapping["path"]}: {len(f.attrs["bucket_ranges"])} shards, manifest says {mapping["n_shards"]}')
        if sorted(int(i) for i in ids) != sorted(all_ids):
            fail(f'{mapping["path"]}: its IDs are not the supervoxels of the attribute dicts')
        cells = bss_get_attributes(f, ids, mapping['attribute'])
        h = hashlib.sha256()
        feed(h, ids)
        feed(h, cells)
        if h.hexdigest() != mapping['sha256']:
            fail(f'{mapping["path"]}: digest differs from the manifest\'s')
        cell_of = dict(zip((int(i) for i in ids), (int(c) for c in cells)))
        if len(set(cell_of.values())) != m['cells']:
            fail(f'{mapping["path"]}: {len(set(cell_of.values()))} cells, manifest says {m["cells"]}')
    for s in m['samples']:
        if cell_of.get(s['id']) != s['ssv_id']:
            fail(f'sample {s["id"]}: cell {cell_of.get(s["id"])}, expected {s["ssv_id"]}')
        if subfold_from_ix_new(s['id'], n_folders) != s['folder'][len(so_storage) + 1:]:
            fail(f'sample {s["id"]}: folder {s["folder"]} is not subfold_from_ix\'s')
        ad = load_pkl(os.path.join(wd, s['folder'], 'attr_dict.pkl'))
        if ad[s['id']]['size'] != s['size'] or list(ad[s['id']]['rep_coord']) != s['rep_coord']:
            fail(f'sample {s["id"]}: attributes {ad[s["id"]]} differ from the manifest')
        if s['voxel_cache'] != (s['id'] in caches):
            fail(f'sample {s["id"]}: voxel cache {"missing" if s["voxel_cache"] else "unexpected"}')

    # Voxel mode on the KNOSSOS segmentation.
    kd = m['knossos']
    if len(sizes) != kd['objects']:
        fail(f'{len(sizes)} objects in the voxel stores, manifest says {kd["objects"]} in the segmentation')
    checked_voxels = 0
    if snappy is not None:
        name = os.path.basename(kd['config'])[:-len('.pyk.conf')]
        vol = load_segmentation(os.path.join(wd, kd['path']), name, kd['boundary'], kd['cube_edge'])
        ids_in_vol, counts = np.unique(vol[vol != 0], return_counts=True)
        in_vol = dict(zip((int(i) for i in ids_in_vol), (int(c) for c in counts)))
        if sorted(in_vol) != sorted(sizes):
            fail('the segmentation holds other objects than the voxel stores')
        for k, size in sizes.items():
            n = 0
            for lo, hi in boxes[k]:  # get_voxelmask_offset: load_seg(box) == id, per box
                n += int(np.count_nonzero(vol[lo[2]:hi[2], lo[1]:hi[1], lo[0]:hi[0]] == np.uint64(k)))
            if n != size or in_vol.get(k) != size:
                fail(f'object {k}: {n} voxels in its boxes, {in_vol.get(k)} in the segmentation, size {size}')
            checked_voxels += n
        for k, c in caches.items():
            if c.dtype != np.uint32 or c.ndim != 2 or c.shape[1] != 3 or len(c) != sizes.get(k):
                fail(f'voxel cache of {k}: {c.dtype} {c.shape}, size {sizes.get(k)}')
            elif not np.all(vol[c[:, 2], c[:, 1], c[:, 0]] == np.uint64(k)):
                fail(f'voxel cache of {k}: coordinates outside the object')
        if sum(sizes.values()) != kd['voxels']:
            fail(f'{sum(sizes.values())} voxels in the voxel stores, manifest says {kd["voxels"]}')
    else:
        fail('python module snappy is missing: cannot read the KNOSSOS cubes (apt-get install python3-snappy)')

    return {'ok': not FAILURES, 'objects': len(all_ids), 'stores': len(m['stores']), 'voxel_objects': len(sizes),
            'voxel_caches': len(caches), 'segmentation_voxels': checked_voxels, 'cells': m['cells']}


if __name__ == '__main__':
    if len(sys.argv) != 2:
        sys.exit('usage: check_demo.py DIR')
    summary = main(sys.argv[1])
    for line in FAILURES[:50]:
        print('check_demo: ' + line, file=sys.stderr)
    if len(FAILURES) > 50:
        print(f'check_demo: ... and {len(FAILURES) - 50} more', file=sys.stderr)
    print(json.dumps(summary))
    sys.exit(1 if FAILURES else 0)
