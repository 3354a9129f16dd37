using System.Buffers.Binary;
using System.Text;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// Flaws planted in a valid BinarySearchStore file at known structure offsets (from <see cref="Hdf5Map"/>), with the
/// checksum of the damaged block recomputed where there is one, so that the flaw itself must be caught: each one leaves
/// a file BinarySearchStore must refuse (declared sizes beyond the end of the file or beyond the limits, sizes that do not
/// agree with each other, truncation at a structure boundary, ids that are not strictly ascending, attributes whose
/// length differs from their ids', bucket ranges or dtypes that do not match the data, a damaged checksum).
/// </summary>
internal static class Hdf5Flaws
{
    /// <summary>The kinds, by index (the argument of <see cref="Plant"/>).</summary>
    internal static readonly string[] Kinds =
    [
        "gheap-collection-size", "gheap-object-size", "header-chunk-size", "message-size", "dataset-dims-huge", "dataset-dims-vs-data",
        "attribute-dims", "data-address", "data-size", "truncated", "truncated-eof-updated", "ids-unsorted", "attribute-rows",
        "bucket-range", "dtype-string", "shape-trailing", "checksum",
    ];

    private static void U64(byte[] d, int at, ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(d.AsSpan(at), v);

    private static ulong U64(byte[] d, int at) => BinaryPrimitives.ReadUInt64LittleEndian(d.AsSpan(at));

    private static T Pick<T>(IReadOnlyList<T> list, Random rng) => list[rng.Next(list.Count)];

    /// <summary>Offset of dimension 0 in a dataspace message at <paramref name="at"/>; -1 for a scalar.</summary>
    private static int Dim0(byte[] d, int at) => d[at + 1] == 0 ? -1 : at + (d[at] == 1 ? 8 : 4);

    /// <summary>Plants flaw <paramref name="kind"/> in a copy of <paramref name="data"/>; null when the file has no structure for it.</summary>
    public static FuzzInput? Plant(byte[] data, Hdf5Map map, Random rng, int kind)
    {
        var d = (byte[])data.Clone();
        string? why = Kinds[kind] switch
        {
            "gheap-collection-size" => GlobalHeapSize(d, map, rng),
            "gheap-object-size" => GlobalHeapObject(d, map, rng),
            "header-chunk-size" => HeaderChunkSize(d, map, rng),
            "message-size" => MessageSize(d, map, rng),
            "dataset-dims-huge" => DatasetDims(d, map, rng, huge: true),
            "dataset-dims-vs-data" => DatasetDims(d, map, rng, huge: false),
            "attribute-dims" => AttributeDims(d, map, rng),
            "data-address" => DataAddress(d, map, rng),
            "data-size" => DataSize(d, map, rng),
            "truncated" => null,
            "truncated-eof-updated" => null,
            "ids-unsorted" => IdsUnsorted(d, map, rng),
            "attribute-rows" => AttributeRows(d, map, rng),
            "bucket-range" => BucketRange(d, map, rng),
            "dtype-string" => DtypeString(d, map, rng),
            "shape-trailing" => ShapeTrailing(d, map, rng),
            "checksum" => Checksum(d, map, rng),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        if (Kinds[kind].StartsWith("truncated", StringComparison.Ordinal))
        {
            var cuts = map.Boundaries.Where(b => b > 0 && b < data.Length).ToList();
            if (cuts.Count == 0) return null;
            int cut = Pick(cuts, rng);
            var t = data.AsSpan(0, cut).ToArray();
            if (Kinds[kind] == "truncated-eof-updated")
            {
                U64(t, 28, (ulong)cut);
                Hdf5Map.FixSuperblock(t);
            }
            return new FuzzInput(t, $"{Kinds[kind]}: the file cut to {cut} of {data.Length} bytes at a structure boundary");
        }
        return why is null ? null : new FuzzInput(d, $"{Kinds[kind]}: {why}");
    }

    private static string? GlobalHeapSize(byte[] d, Hdf5Map map, Random rng)
    {
        if (map.GlobalHeaps.Count == 0) return null;
        var g = Pick(map.GlobalHeaps, rng);
        ulong v = rng.Next(4) switch
        {
            0 => (ulong)(d.Length - g.At) + 1 + (ulong)rng.Next(1 << 20),
            1 => 0x7ff0_0000,
            2 => ulong.MaxValue / 2,
            _ => (ulong)rng.Next(16),
        };
        U64(d, g.At + 8, v);
        return $"collection at {g.At} declares {v} bytes";
    }

    private static string? GlobalHeapObject(byte[] d, Hdf5Map map, Random rng)
    {
        var objs = map.GlobalHeaps.SelectMany(g => g.Objects.Select(o => (g, o))).ToList();
        if (objs.Count == 0) return null;
        var (g, o) = Pick(objs, rng);
        ulong v = rng.Next(2) == 0 ? (ulong)(g.At + g.Size - o.At) + (ulong)rng.Next(1, 1 << 20) : 0x7ff0_0000UL + (ulong)rng.Next(1 << 16);
        U64(d, o.At + 8, v);
        return $"object {o.Index} of the collection at {g.At} declares {v} bytes";
    }

    private static string? HeaderChunkSize(byte[] d, Hdf5Map map, Random rng)
    {
        var first = map.Blocks.Where(b => d[b.Start] == (byte)'O' && d[b.Start + 1] == (byte)'H').ToList();
        if (first.Count == 0) return null;
        var b = Pick(first, rng);
        int flags = d[b.Start + 5];
        int at = b.Start + 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
        int width = 1 << (flags & 3);
        ulong max = width == 8 ? ulong.MaxValue : (1UL << (8 * width)) - 1;
        ulong old = 0;
        for (int i = width - 1; i >= 0; i--) old = (old << 8) | d[at + i];
        ulong v = Math.Min(max, rng.Next(2) == 0 ? (ulong)(d.Length - b.Start) + (ulong)rng.Next(1 << 20) : 0x7ff0_0000);
        if (v == old) v = old - 1;
        for (int i = 0; i < width; i++) d[at + i] = (byte)(v >> (8 * i));
        return $"object header of {b.Owner} at {b.Start}: chunk 0 of {old} bytes declares {v}";
    }

    private static string? MessageSize(byte[] d, Hdf5Map map, Random rng)
    {
        var m = Pick(map.Messages, rng);
        int room = m.Chunk.ChecksumAt - m.DataAt;
        int v = Math.Min(0xffff, room + 1 + rng.Next(1000));
        if (v <= room) return null;
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(m.SizeAt), (ushort)v);
        Hdf5Map.Fix(d, m.Chunk);
        return $"message of type {m.Type} in {m.Owner} declares {v} bytes, {room} remain in its chunk";
    }

    private static string? DatasetDims(byte[] d, Hdf5Map map, Random rng, bool huge)
    {
        if (map.Datasets.Count == 0) return null;
        var ds = Pick(map.Datasets, rng);
        int at = Dim0(d, ds.Space.DataAt);
        if (at < 0) return null;
        ulong old = U64(d, at);
        ulong v = huge ? (1UL << 40) + (ulong)rng.Next(1 << 20) : old > 1 && rng.Next(2) == 0 ? old - 1 : old + 1 + (ulong)rng.Next(3);
        U64(d, at, v);
        if ((d[ds.Space.DataAt + 2] & 1) != 0) U64(d, at + 8 * d[ds.Space.DataAt + 1], v); // keep the maximum dimension in step
        Hdf5Map.Fix(d, ds.Space.Chunk);
        return $"{ds.Name}: dimension 0 of {old} became {v}, its data left as it was";
    }

    private static string? AttributeDims(byte[] d, Hdf5Map map, Random rng)
    {
        var attrs = map.Attributes.Where(a => d[a.SpaceAt + 1] > 0).ToList();
        if (attrs.Count == 0) return null;
        var a = Pick(attrs, rng);
        int at = Dim0(d, a.SpaceAt);
        ulong old = U64(d, at);
        ulong v = rng.Next(2) == 0 ? (1UL << 28) + (ulong)rng.Next(1 << 20) : old + 1 + (ulong)rng.Next(1000);
        U64(d, at, v);
        Hdf5Map.Fix(d, a.Message.Chunk);
        return $"attribute '{a.Name}' of {a.Owner}: dimension 0 of {old} became {v}, its data left as it was";
    }

    private static string? DataAddress(byte[] d, Hdf5Map map, Random rng)
    {
        var cont = map.Datasets.Where(x => x.LayoutClass == 1 && x.DataAt >= 0 && x.DataSize > 0).ToList();
        if (cont.Count == 0) return null;
        var ds = Pick(cont, rng);
        ulong v = (ulong)(d.Length - ds.DataSize) + 1 + (ulong)rng.Next(1 << 16);
        U64(d, ds.Layout.DataAt + 2, v);
        Hdf5Map.Fix(d, ds.Layout.Chunk);
        return $"{ds.Name}: contiguous data of {ds.DataSize} bytes placed at {v}, past the end";
    }

    private static string? DataSize(byte[] d, Hdf5Map map, Random rng)
    {
        var any = map.Datasets.Where(x => x.DataSize > 0).ToList();
        if (any.Count == 0) return null;
        var ds = Pick(any, rng);
        if (ds.LayoutClass == 1)
        {
            ulong v = rng.Next(2) == 0 ? 0x7ff0_0000UL : (ulong)ds.DataSize + (ulong)rng.Next(1, 64);
            U64(d, ds.SizeFieldAt, v);
            Hdf5Map.Fix(d, ds.Layout.Chunk);
            return $"{ds.Name}: contiguous size {ds.DataSize} became {v}";
        }
        int w = ds.DataSize - 1 - rng.Next(Math.Min(ds.DataSize, 8));
        BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(ds.SizeFieldAt), (ushort)w);
        Hdf5Map.Fix(d, ds.Layout.Chunk);
        return $"{ds.Name}: compact size {ds.DataSize} became {w}";
    }

    private static string? IdsUnsorted(byte[] d, Hdf5Map map, Random rng)
    {
        var ids = map.Datasets.Where(x => x.Name.StartsWith("/ids/", StringComparison.Ordinal) && x.DataAt >= 0 && x.DataSize >= 24).ToList();
        if (ids.Count == 0) return null;
        var ds = Pick(ids, rng);
        int n = ds.DataSize / 8;
        string what;
        if (n >= 4 && rng.Next(2) == 0)
        {
            int i = 1 + rng.Next(n - 3), j = i + 1 + rng.Next(n - 2 - i);
            ulong a = U64(d, ds.DataAt + 8 * i), b = U64(d, ds.DataAt + 8 * j);
            U64(d, ds.DataAt + 8 * i, b);
            U64(d, ds.DataAt + 8 * j, a);
            what = $"ids {i} and {j} swapped";
        }
        else
        {
            int k = 1 + rng.Next(n - 2);
            U64(d, ds.DataAt + 8 * k, U64(d, ds.DataAt + 8 * (k - 1)));
            what = $"id {k} repeats id {k - 1}";
        }
        if (ds.LayoutClass == 0) Hdf5Map.Fix(d, ds.Layout.Chunk);
        return $"{ds.Name}: {what} (first and last kept)";
    }

    private static string? AttributeRows(byte[] d, Hdf5Map map, Random rng)
    {
        var cands = map.Datasets.Where(x => x.DataSize > 0 && Dim0(d, x.Space.DataAt) >= 0 && U64(d, Dim0(d, x.Space.DataAt)) >= 2).ToList();
        if (cands.Count == 0) return null;
        var ds = Pick(cands, rng);
        int at = Dim0(d, ds.Space.DataAt);
        ulong rows = U64(d, at);
        int rowBytes = (int)((ulong)ds.DataSize / rows);
        U64(d, at, rows - 1);
        if (ds.LayoutClass == 1) U64(d, ds.SizeFieldAt, (ulong)(ds.DataSize - rowBytes));
        else BinaryPrimitives.WriteUInt16LittleEndian(d.AsSpan(ds.SizeFieldAt), (ushort)(ds.DataSize - rowBytes));
        Hdf5Map.Fix(d, ds.Space.Chunk);
        if (ds.Layout.Chunk != ds.Space.Chunk) Hdf5Map.Fix(d, ds.Layout.Chunk);
        return $"{ds.Name}: one row dropped ({rows} -> {rows - 1}), consistently in the HDF5 structures, so it no longer matches the other shards of its index";
    }

    private static string? BucketRange(byte[] d, Hdf5Map map, Random rng)
    {
        var br = map.Attributes.FirstOrDefault(a => a.Owner == "/" && a.Name == "bucket_ranges");
        if (br is null) return null;
        int at = Dim0(d, br.SpaceAt);
        int values = (int)U64(d, at) * 2;
        int k = rng.Next(values);
        ulong old = U64(d, br.DataAt + 8 * k);
        ulong v = rng.Next(2) == 0 ? old + 1 : old - 1;
        U64(d, br.DataAt + 8 * k, v);
        Hdf5Map.Fix(d, br.Message.Chunk);
        return $"bucket_ranges value {k} of {old} became {v}";
    }

    private static string? DtypeString(byte[] d, Hdf5Map map, Random rng)
    {
        var dts = map.Attributes.Where(a => a.Name == "dtype").ToList();
        if (dts.Count == 0 || map.GlobalHeaps.Count == 0) return null;
        var a = Pick(dts, rng);
        int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(a.DataAt));
        int heap = (int)U64(d, a.DataAt + 4);
        int index = (int)BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan(a.DataAt + 12));
        var g = map.GlobalHeaps.FirstOrDefault(x => x.At == heap);
        var obj = g?.Objects.FirstOrDefault(o => o.Index == index);
        if (obj is null || len != 3) return null;
        int textAt = obj.Value.At + 16;
        string old = Encoding.ASCII.GetString(d, textAt, 3);
        string[] others = old[1] switch
        {
            'f' => [old[..2] + (old[2] == '4' ? "8" : "4"), "<i" + old[2]],
            'b' => ["<u2", "<i4"],
            'i' or 'u' => [.. new[] { '1', '2', '4', '8' }.Where(c => c != old[2]).Select(c => "<" + old[1] + c), old[2] is '4' or '8' ? "<f" + old[2] : "<f8"],
            _ => [],
        };
        if (others.Length == 0) return null;
        string v = Pick(others, rng);
        Encoding.ASCII.GetBytes(v).CopyTo(d, textAt);
        return $"dtype attribute of {a.Owner}: '{old}' became '{v}', its datasets left as they were";
    }

    private static string? ShapeTrailing(byte[] d, Hdf5Map map, Random rng)
    {
        var shapes = map.Attributes.Where(a => a.Name == "shape" && d[a.SpaceAt + 1] == 1 && U64(d, Dim0(d, a.SpaceAt)) >= 2).ToList();
        if (shapes.Count == 0) return null;
        var a = Pick(shapes, rng);
        int rank = (int)U64(d, Dim0(d, a.SpaceAt));
        int k = 1 + rng.Next(rank - 1);
        ulong old = U64(d, a.DataAt + 8 * k);
        ulong v = old + 1 + (ulong)rng.Next(3);
        U64(d, a.DataAt + 8 * k, v);
        Hdf5Map.Fix(d, a.Message.Chunk);
        return $"shape attribute of {a.Owner}: dimension {k} of {old} became {v}";
    }

    private static string? Checksum(byte[] d, Hdf5Map map, Random rng)
    {
        var b = Pick(map.Blocks, rng);
        int at = b.Start + rng.Next(b.ChecksumAt + 4 - b.Start);
        d[at] ^= (byte)(1 << rng.Next(8));
        return $"bit flipped at {at} in the checksummed block of {b.Owner} at {b.Start}";
    }
}
