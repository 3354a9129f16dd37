using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace SyConn.Backend.Storage;

/// <summary>
/// Walks the metadata of an HDF5 file before a third-party reader (PureHDF) sees it, and refuses with an
/// <see cref="InvalidDataException"/> naming the file, the structure and its byte offset any declared size that
/// points past the end of the file, exceeds <see cref="ReadLimits"/> or <see cref="MaxMetadataBlock"/>, or does not
/// agree with the structure that holds it. PureHDF trusts such sizes and allocates them (a damaged local heap size
/// made it allocate 2 GiB), so every size it would allocate from is checked here first.
/// </summary>
/// <remarks>
/// <para>Covered: superblocks 0 to 3 (and the superblock extension), object headers versions 1 and 2 with their
/// continuation chunks and checksums, the messages PureHDF decodes (dataspace, datatype, fill value, data layout 1
/// to 4, filter pipeline, attribute, link, link info, attribute info, symbol table, continuation), old-style groups
/// (version 1 B-trees, symbol table nodes, local heaps), new-style dense groups and dense attributes (fractal heaps
/// with their direct blocks, version 2 B-trees, the links and attributes stored in them), global heap collections
/// (the variable-length strings h5py writes) and the chunk indexes of version 3 and 4 layouts (version 1 B-trees,
/// single chunk, implicit, fixed array, extensible array header, version 2 B-tree nodes). Every object reachable
/// from the root is visited once (a cycle of links or B-tree nodes is not followed again).</para>
/// <para>Not followed (bounded by the file and the block limit, but not interpreted): objects in nested indirect
/// blocks of a fractal heap (groups with tens of thousands of links), huge fractal heap objects, the data blocks of
/// extensible arrays and paged fixed arrays, shared (committed) datatypes and shared messages, virtual dataset
/// mappings.</para>
/// <para>Memory: no read is larger than <see cref="MaxMetadataBlock"/>; the walker keeps one set of visited
/// addresses. Not thread-safe; <see cref="Check"/> is static and opens the file itself.</para>
/// </remarks>
internal sealed class Hdf5Precheck
{
    /// <summary>The largest metadata block (object header chunk, heap block or collection, B-tree node) accepted: 64 MiB.
    /// The HDF5 library writes them in KiB (a global heap collection holding one large variable-length value is the only
    /// exception, and BinarySearchStore files hold only short strings there).</summary>
    internal const long MaxMetadataBlock = 64L << 20;

    /// <summary>The most metadata structures one file may make the walk visit.</summary>
    private const int MaxStructures = 1 << 20;

    private const int MaxRank = 32;
    private const int MaxBTreeDepth = 64;

    private static ReadOnlySpan<byte> Signature => [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];

    private readonly SafeFileHandle _file;
    private readonly long _length;
    private readonly string _path;
    private readonly ReadLimits _limits;
    private int _so = 8;
    private int _sl = 8;
    private long _base;
    private int _structures;
    private int _objects;
    private int _datasets;
    private readonly HashSet<long> _headers = [];
    private readonly HashSet<long> _nodes = [];
    private readonly Dictionary<long, Dictionary<int, long>> _globalHeaps = [];
    private readonly Dictionary<long, LocalHeap> _localHeaps = [];
    private readonly Dictionary<long, FractalHeap> _fractalHeaps = [];
    private readonly Queue<(long Address, string Name)> _pending = new();

    private sealed record LocalHeap(long DataAddress, long DataSize);

    private Hdf5Precheck(SafeFileHandle file, string path, ReadLimits limits)
    {
        _file = file;
        _length = RandomAccess.GetLength(file);
        _path = path;
        _limits = limits;
    }

    /// <summary>What a walk visited.</summary>
    /// <param name="ObjectHeaders">Object headers (groups, datasets, the superblock extension), continuation chunks not counted.</param>
    /// <param name="Nodes">B-tree nodes and symbol table nodes.</param>
    /// <param name="GlobalHeaps">Global heap collections.</param>
    /// <param name="LocalHeaps">Local heaps.</param>
    /// <param name="FractalHeaps">Fractal heaps.</param>
    /// <param name="Datasets">Object headers with a data layout.</param>
    internal sealed record Summary(int ObjectHeaders, int Nodes, int GlobalHeaps, int LocalHeaps, int FractalHeaps, int Datasets);

    /// <summary>Checks the file at <paramref name="path"/>; returns when every structure reachable from the root is consistent.</summary>
    /// <exception cref="InvalidDataException">A structure is damaged or declares a size beyond the file or the limits.</exception>
    public static Summary Check(string path, ReadLimits limits)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var walk = new Hdf5Precheck(handle, path, limits);
        walk.Walk();
        return new Summary(walk._objects, walk._nodes.Count, walk._globalHeaps.Count, walk._localHeaps.Count, walk._fractalHeaps.Count, walk._datasets);
    }

    // ------------------------------------------------------------------ reading

    private InvalidDataException Fail(string structure, long offset, string what) =>
        new($"{_path}: {structure} at offset {offset}: {what} (damaged HDF5 metadata, refused before the HDF5 reader runs)");

    private bool IsUndefined(ulong address) => _so == 8 ? address == ulong.MaxValue : address == (1UL << (8 * _so)) - 1;

    /// <summary>The file offset of <paramref name="address"/> (relative to the base address), checked to lie inside the file with room for <paramref name="size"/> bytes.</summary>
    private long At(ulong address, long size, string structure, long from)
    {
        if (IsUndefined(address)) throw Fail(structure, from, "an address is undefined where one is required");
        if (address > (ulong)_length || (ulong)_base + address > (ulong)_length)
            throw Fail(structure, (long)Math.Min(address, long.MaxValue), $"address {address} lies beyond the end of the {_length}-byte file");
        long at = _base + (long)address;
        if (size < 0 || size > _length - at)
            throw Fail(structure, at, $"a declared size of {(ulong)size} bytes runs past the end of the {_length}-byte file (truncated or damaged)");
        return at;
    }

    /// <summary>Reads <paramref name="size"/> bytes of metadata at file offset <paramref name="at"/> (already checked by <see cref="At"/>).</summary>
    private Cursor Read(long at, long size, string structure)
    {
        if (size > MaxMetadataBlock)
            throw Fail(structure, at, $"declares a block of {size} bytes, more than the {MaxMetadataBlock}-byte limit for one metadata block");
        if (size > _length - at) throw Fail(structure, at, $"a block of {size} bytes runs past the end of the {_length}-byte file");
        if (++_structures > MaxStructures) throw Fail(structure, at, $"the file makes the metadata walk visit more than {MaxStructures} structures");
        var buf = new byte[size];
        int n = RandomAccess.Read(_file, buf, at);
        while (n < size)
        {
            int m = RandomAccess.Read(_file, buf.AsSpan(n), at + n);
            if (m == 0) throw Fail(structure, at, "the file ends early");
            n += m;
        }
        return new Cursor(this, buf, at, structure);
    }

    private Cursor ReadAddress(ulong address, long size, string structure, long from) => Read(At(address, size, structure, from), size, structure);

    /// <summary>A bounded little-endian reader over one metadata block; reading past its end is refused as damage.</summary>
    private sealed class Cursor(Hdf5Precheck owner, byte[] data, long fileOffset, string structure)
    {
        public int Pos;
        public readonly byte[] Data = data;
        public readonly long FileOffset = fileOffset;
        public readonly string Structure = structure;
        public int Remaining => Data.Length - Pos;
        public long Here => FileOffset + Pos;

        private void Need(long n, string what)
        {
            if (n < 0 || n > Remaining)
                throw owner.Fail(Structure, FileOffset, $"{what} at byte {Pos} needs {n} bytes but only {Remaining} remain in the {Data.Length}-byte structure");
        }

        public byte U8(string what = "a field") { Need(1, what); return Data[Pos++]; }

        public ushort U16(string what = "a field") { Need(2, what); var v = BinaryPrimitives.ReadUInt16LittleEndian(Data.AsSpan(Pos)); Pos += 2; return v; }

        public uint U32(string what = "a field") { Need(4, what); var v = BinaryPrimitives.ReadUInt32LittleEndian(Data.AsSpan(Pos)); Pos += 4; return v; }

        public ulong UN(int width, string what = "a field")
        {
            Need(width, what);
            ulong v = 0;
            for (int i = width - 1; i >= 0; i--) v = (v << 8) | Data[Pos + i];
            Pos += width;
            return v;
        }

        public ulong Offset(string what = "an address") => UN(owner._so, what);

        public ulong Length(string what = "a length") => UN(owner._sl, what);

        public ReadOnlySpan<byte> Bytes(long n, string what) { Need(n, what); var s = Data.AsSpan(Pos, (int)n); Pos += (int)n; return s; }

        public void Skip(long n, string what) { Need(n, what); Pos += (int)n; }

        public bool Sig(string sig) => Remaining >= 4 && Encoding.ASCII.GetString(Data, Pos, 4) == sig;

        public Cursor Sub(int length, string structure)
        {
            Need(length, structure);
            var c = new Cursor(owner, Data.AsSpan(Pos, length).ToArray(), FileOffset + Pos, structure);
            Pos += length;
            return c;
        }

        public InvalidDataException Fail(string what) => owner.Fail(Structure, FileOffset, what);
    }

    /// <summary>Checks the Jenkins lookup3 checksum in the 4 bytes after <paramref name="length"/> bytes of <paramref name="c"/>.</summary>
    private static void VerifyChecksum(Cursor c, int length)
    {
        if (length + 4 > c.Data.Length) throw c.Fail($"the checksum after byte {length} lies beyond the {c.Data.Length}-byte structure");
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(c.Data.AsSpan(length));
        uint computed = Lookup3(c.Data.AsSpan(0, length));
        if (stored != computed) throw c.Fail($"checksum mismatch (stored 0x{stored:x8}, computed 0x{computed:x8})");
    }

    /// <summary>Bob Jenkins' lookup3 <c>hashlittle</c> with initial value 0, the checksum of HDF5 metadata.</summary>
    internal static uint Lookup3(ReadOnlySpan<byte> k)
    {
        uint a, b, c;
        a = b = c = 0xdeadbeef + (uint)k.Length;
        int i = 0, len = k.Length;
        while (len > 12)
        {
            a += BinaryPrimitives.ReadUInt32LittleEndian(k[i..]);
            b += BinaryPrimitives.ReadUInt32LittleEndian(k[(i + 4)..]);
            c += BinaryPrimitives.ReadUInt32LittleEndian(k[(i + 8)..]);
            a -= c; a ^= uint.RotateLeft(c, 4); c += b;
            b -= a; b ^= uint.RotateLeft(a, 6); a += c;
            c -= b; c ^= uint.RotateLeft(b, 8); b += a;
            a -= c; a ^= uint.RotateLeft(c, 16); c += b;
            b -= a; b ^= uint.RotateLeft(a, 19); a += c;
            c -= b; c ^= uint.RotateLeft(b, 4); b += a;
            len -= 12;
            i += 12;
        }
        if (len == 0) return c;
        Span<byte> tail = stackalloc byte[12];
        tail.Clear();
        k[i..].CopyTo(tail);
        a += BinaryPrimitives.ReadUInt32LittleEndian(tail);
        b += BinaryPrimitives.ReadUInt32LittleEndian(tail[4..]);
        c += BinaryPrimitives.ReadUInt32LittleEndian(tail[8..]);
        c ^= b; c -= uint.RotateLeft(b, 14);
        a ^= c; a -= uint.RotateLeft(c, 11);
        b ^= a; b -= uint.RotateLeft(a, 25);
        c ^= b; c -= uint.RotateLeft(b, 16);
        a ^= c; a -= uint.RotateLeft(c, 4);
        b ^= a; b -= uint.RotateLeft(a, 14);
        c ^= b; c -= uint.RotateLeft(b, 24);
        return c;
    }

    // ------------------------------------------------------------------ superblock

    private void Walk()
    {
        if (_length < 48) throw Fail("superblock", 0, $"the {_length}-byte file is too short for an HDF5 superblock");
        var sb = Read(0, Math.Min(_length, 256), "superblock");
        if (!sb.Bytes(8, "the signature").SequenceEqual(Signature)) throw sb.Fail("no HDF5 signature");
        int version = sb.U8();
        ulong root, eof;
        if (version is 0 or 1)
        {
            sb.Skip(4, "version fields");
            _so = sb.U8("the size of offsets");
            _sl = sb.U8("the size of lengths");
            CheckWidths(sb);
            sb.Skip(1, "a reserved byte");
            sb.Skip(4, "the group B-tree K values");
            sb.Skip(4, "the consistency flags");
            if (version == 1) sb.Skip(4, "the chunk B-tree K value");
            _base = (long)Math.Min(sb.Offset("the base address"), (ulong)long.MaxValue);
            sb.Offset("the free-space address");
            eof = sb.Offset("the end-of-file address");
            sb.Offset("the driver information address");
            sb.Offset("the root link name offset");
            root = sb.Offset("the root object header address");
        }
        else if (version is 2 or 3)
        {
            _so = sb.U8("the size of offsets");
            _sl = sb.U8("the size of lengths");
            CheckWidths(sb);
            sb.Skip(1, "the consistency flags");
            _base = (long)Math.Min(sb.Offset("the base address"), (ulong)long.MaxValue);
            ulong ext = sb.Offset("the superblock extension address");
            eof = sb.Offset("the end-of-file address");
            root = sb.Offset("the root object header address");
            VerifyChecksum(sb, sb.Pos);
            if (!IsUndefined(ext)) _pending.Enqueue((At(ext, 4, "superblock extension", 8), "(superblock extension)"));
        }
        else
        {
            throw sb.Fail($"superblock version {version} is unknown (0 to 3 are)");
        }
        if (_base < 0 || _base > _length) throw sb.Fail($"base address {_base} lies beyond the end of the {_length}-byte file");
        if (!IsUndefined(eof) && (ulong)_base + eof > (ulong)_length)
            throw sb.Fail($"the end-of-file address {eof} is beyond the {_length}-byte file (the file is truncated)");
        _pending.Enqueue((At(root, 4, "superblock", 0), "/"));
        while (_pending.Count > 0)
        {
            var (at, name) = _pending.Dequeue();
            ObjectHeader(at, name);
        }
    }

    private void CheckWidths(Cursor sb)
    {
        if (_so is not (2 or 4 or 8) || _sl is not (2 or 4 or 8))
            throw sb.Fail($"sizes of offsets ({_so}) and lengths ({_sl}) must be 2, 4 or 8");
    }

    // ------------------------------------------------------------------ object headers

    /// <summary>What an object header declares about a dataset.</summary>
    private sealed class ObjectInfo
    {
        public ulong[]? Dims;
        public bool HasSpace;
        public long ElementSize = -1;
        public bool TypeShared;
        public Cursor? Layout;
    }

    private void ObjectHeader(long at, string name)
    {
        if (!_headers.Add(at)) return;
        _objects++;
        string what = $"object header of {name}";
        var info = new ObjectInfo();
        var probe = Read(at, Math.Min(16, _length - at), what);
        var chunks = new Queue<(long At, long Size)>();
        if (probe.Sig("OHDR"))
        {
            probe.Skip(4, "the signature");
            int version = probe.U8();
            if (version != 2) throw probe.Fail($"version {version} object header with an OHDR signature (2 expected)");
            int flags = probe.U8();
            if ((flags & 0xc0) != 0) throw probe.Fail($"unknown flags 0x{flags:x2}");
            int prefix = 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
            int width = 1 << (flags & 3);
            var head = Read(at, Math.Min(prefix + width, _length - at), what);
            head.Skip(prefix, "the header prefix");
            ulong size = head.UN(width, "the size of chunk 0");
            long total = prefix + width + (long)Math.Min(size, (ulong)long.MaxValue / 2) + 4;
            At((ulong)(at - _base), total, what, at);
            var chunk = Read(at, total, what);
            VerifyChecksum(chunk, (int)(total - 4));
            chunk.Pos = prefix + width;
            Messages(chunk, (int)(total - 4), 2, (flags & 0x04) != 0, name, info, chunks);
            while (chunks.Count > 0)
            {
                var (cAt, cSize) = chunks.Dequeue();
                if (!_headers.Add(cAt)) throw Fail($"continuation chunk of {name}", cAt, "is used twice (a cycle of continuation messages)");
                var c = Read(cAt, cSize, $"continuation chunk of {name}");
                if (cSize < 8 || !c.Sig("OCHK")) throw c.Fail("no OCHK signature");
                VerifyChecksum(c, (int)(cSize - 4));
                c.Pos = 4;
                Messages(c, (int)(cSize - 4), 2, (flags & 0x04) != 0, name, info, chunks);
            }
        }
        else
        {
            int version = probe.U8("the version");
            if (version != 1) throw probe.Fail($"object header version {version} is unknown (1, or 2 with an OHDR signature)");
            probe.Skip(1, "a reserved byte");
            probe.U16("the number of messages");
            probe.U32("the reference count");
            uint size = probe.U32("the header size");
            long first = at + 16;
            At((ulong)(first - _base), size, what, at);
            chunks.Enqueue((first, size));
            bool firstChunk = true;
            while (chunks.Count > 0)
            {
                var (cAt, cSize) = chunks.Dequeue();
                if (!firstChunk && !_headers.Add(cAt)) throw Fail($"continuation chunk of {name}", cAt, "is used twice (a cycle of continuation messages)");
                var c = Read(cAt, cSize, firstChunk ? what : $"continuation chunk of {name}");
                firstChunk = false;
                Messages(c, (int)cSize, 1, false, name, info, chunks);
            }
        }
        if (info.Layout is null) return;
        _datasets++;
        CheckDataset(name, info);
    }

    private void Messages(Cursor c, int end, int version, bool creationOrder, string name, ObjectInfo info, Queue<(long, long)> chunks)
    {
        int headerSize = version == 1 ? 8 : 4 + (creationOrder ? 2 : 0);
        while (end - c.Pos >= headerSize)
        {
            long msgAt = c.Here;
            int type = version == 1 ? c.U16() : c.U8();
            int size = c.U16();
            int flags = c.U8();
            c.Skip(headerSize - (version == 1 ? 5 : 4), "the message header");
            if (size > end - c.Pos)
                throw Fail($"object header of {name}", msgAt, $"message of type {type} declares {size} bytes; only {end - c.Pos} remain in its chunk");
            var m = c.Sub(size, $"message of type {type} in the object header of {name}");
            if ((flags & 0x02) != 0)
            {
                if (type == 3) info.TypeShared = true;
                continue; // a shared message: a reference, not the message itself
            }
            Message(type, m, name, info, chunks);
        }
        if (c.Pos != end && version == 1) throw c.Fail($"{end - c.Pos} bytes after the last message do not hold a message header");
    }

    private void Message(int type, Cursor m, string name, ObjectInfo info, Queue<(long, long)> chunks)
    {
        switch (type)
        {
            case 0x00: case 0x07: case 0x09: case 0x0a: case 0x0d: case 0x0e: case 0x0f: case 0x12: case 0x13: case 0x14: case 0x16: case 0x17: case 0x18:
                break; // NIL, external files, bogus, group info, comment, times, shared message table, B-tree K values, driver info,
                       // reference count, file space info: bounded by the message size, nothing allocated from their fields
            case 0x01:
                info.HasSpace = true;
                info.Dims = Dataspace(m);
                break;
            case 0x03:
                info.ElementSize = Datatype(m, out _, out _);
                break;
            case 0x04:
            {
                uint n = m.U32("the fill value size");
                m.Skip(n, "the fill value");
                break;
            }
            case 0x05:
                FillValue(m);
                break;
            case 0x06:
                Link(m, name);
                break;
            case 0x02:
                LinkInfo(m, name);
                break;
            case 0x08:
                info.Layout = m;
                break;
            case 0x0b:
                FilterPipeline(m);
                break;
            case 0x0c:
                Attribute(m, name);
                break;
            case 0x10:
            {
                ulong addr = m.Offset("the continuation address");
                ulong len = m.Length("the continuation length");
                long at = At(addr, (long)Math.Min(len, (ulong)long.MaxValue), m.Structure, m.FileOffset);
                if (len > (ulong)MaxMetadataBlock) throw m.Fail($"a continuation chunk of {len} bytes exceeds the {MaxMetadataBlock}-byte limit for one metadata block");
                chunks.Enqueue((at, (long)len));
                break;
            }
            case 0x11:
                SymbolTable(m, name);
                break;
            case 0x15:
                AttributeInfo(m, name);
                break;
            default:
                throw m.Fail($"unknown object header message type {type}");
        }
    }

    // ------------------------------------------------------------------ dataspace, datatype, fill value, filters

    /// <summary>The dimensions of a dataspace message (empty for a scalar, null for a null dataspace), each checked against the limit.</summary>
    private ulong[]? Dataspace(Cursor m)
    {
        int version = m.U8("the dataspace version");
        int rank = m.U8("the rank");
        int flags = m.U8("the dataspace flags");
        int kind = 1;
        if (version == 1)
        {
            m.Skip(5, "reserved bytes");
        }
        else if (version == 2)
        {
            kind = m.U8("the dataspace type");
            if (kind > 2) throw m.Fail($"dataspace type {kind} is unknown (0 scalar, 1 simple, 2 null)");
        }
        else
        {
            throw m.Fail($"dataspace version {version} is unknown (1 or 2)");
        }
        if (rank > MaxRank) throw m.Fail($"rank {rank} exceeds HDF5's maximum of {MaxRank}");
        var dims = new ulong[rank];
        for (int i = 0; i < rank; i++) dims[i] = m.Length("a dimension");
        if ((flags & 1) != 0)
        {
            for (int i = 0; i < rank; i++)
            {
                ulong max = m.Length("a maximum dimension");
                if (max < dims[i] && !IsUnlimited(max)) throw m.Fail($"dimension {i} of size {dims[i]} exceeds its maximum {max}");
            }
        }
        if (version == 1 && (flags & 2) != 0) m.Skip(rank * (long)_sl, "the permutation");
        return version == 2 && kind == 2 ? null : dims;
    }

    private bool IsUnlimited(ulong v) => _sl == 8 ? v == ulong.MaxValue : v == (1UL << (8 * _sl)) - 1;

    /// <summary>The element size of a datatype message (checked against the limit); <paramref name="cls"/> is its class, <paramref name="baseSize"/> the base element size of a variable-length type.</summary>
    private long Datatype(Cursor m, out int cls, out long baseSize)
    {
        int head = m.U8("the datatype class");
        cls = head & 0x0f;
        int version = head >> 4;
        if (version is < 1 or > 5) throw m.Fail($"datatype version {version} is unknown");
        if (cls > 10) throw m.Fail($"datatype class {cls} is unknown");
        m.Skip(3, "the class bit field");
        uint size = m.U32("the datatype size");
        if (size == 0 && cls != 9) throw m.Fail("datatype of size 0");
        if (size > _limits.MaxArrayBytes)
            throw m.Fail(ReadLimits.Exceeds("an element type", size, _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)));
        baseSize = 0;
        if (cls == 9 && m.Remaining >= 8)
        {
            var inner = new Cursor(this, m.Data, m.FileOffset, m.Structure) { Pos = m.Pos };
            baseSize = Datatype(inner, out _, out _);
        }
        return size;
    }

    private void FillValue(Cursor m)
    {
        int version = m.U8("the fill value version");
        if (version is 1 or 2)
        {
            m.Skip(2, "the allocation and write times");
            int defined = m.U8("the fill-value-defined flag");
            if (version == 1 || defined != 0)
            {
                uint n = m.U32("the fill value size");
                m.Skip(n, "the fill value");
            }
        }
        else if (version == 3)
        {
            int flags = m.U8("the fill value flags");
            if ((flags & 0x20) != 0)
            {
                uint n = m.U32("the fill value size");
                m.Skip(n, "the fill value");
            }
        }
        else
        {
            throw m.Fail($"fill value version {version} is unknown (1 to 3)");
        }
    }

    private static void FilterPipeline(Cursor m)
    {
        int version = m.U8("the filter pipeline version");
        int n = m.U8("the number of filters");
        if (version == 1) m.Skip(6, "reserved bytes");
        else if (version != 2) throw m.Fail($"filter pipeline version {version} is unknown (1 or 2)");
        if (n > 32) throw m.Fail($"{n} filters; HDF5 allows at most 32");
        for (int i = 0; i < n; i++)
        {
            int id = m.U16("a filter id");
            int nameLength = version == 1 || id >= 256 ? m.U16("a filter name length") : 0;
            m.U16("the filter flags");
            int values = m.U16("the number of filter values");
            if (version == 1) nameLength = (nameLength + 7) & ~7;
            m.Skip(nameLength, "the filter name");
            m.Skip(4L * values, "the filter values");
            if (version == 1 && values % 2 == 1) m.Skip(4, "padding");
        }
    }

    private static ulong Product(ulong[] dims, ulong itemSize, out bool overflow)
    {
        overflow = false;
        ulong bytes = itemSize;
        foreach (var d in dims)
        {
            if (d == 0) return 0;
            if (bytes > ulong.MaxValue / d) overflow = true;
            bytes = unchecked(bytes * d);
        }
        return bytes;
    }

    private void CheckArrayBytes(Cursor at, string what, ulong[] dims, ulong itemSize)
    {
        ulong bytes = Product(dims, itemSize, out bool overflow);
        if (overflow || bytes > (ulong)_limits.MaxArrayBytes)
            throw at.Fail(ReadLimits.Exceeds($"{what} ({string.Join(", ", dims)}) of {itemSize}-byte elements", overflow ? long.MaxValue : (long)bytes,
                _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)) + (overflow ? " (the product overflows 64 bits)" : ""));
    }

    // ------------------------------------------------------------------ datasets: layout and chunk indexes

    private void CheckDataset(string name, ObjectInfo info)
    {
        var m = info.Layout!;
        m.Pos = 0;
        if (!info.HasSpace) throw m.Fail($"dataset {name} has a data layout but no dataspace message");
        if (info.ElementSize < 0 && !info.TypeShared) throw m.Fail($"dataset {name} has a data layout but no datatype message");
        var dims = info.Dims ?? [];
        long elem = info.TypeShared ? -1 : info.ElementSize;
        if (elem > 0 && info.Dims is not null) CheckArrayBytes(m, $"dataset {name}: declared shape", dims, (ulong)elem);
        ulong bytes = elem > 0 ? (info.Dims is null ? 0 : Product(dims, (ulong)elem, out _)) : 0;
        int version = m.U8("the layout version");
        if (version is 1 or 2)
        {
            int ndims = m.U8("the layout rank");
            int cls = m.U8("the layout class");
            m.Skip(5, "reserved bytes");
            ulong addr = cls != 0 ? m.Offset("the data address") : 0;
            var cdims = new ulong[ndims];
            for (int i = 0; i < ndims; i++) cdims[i] = m.U32("a layout dimension");
            if (cls == 0)
            {
                uint n = m.U32("the compact data size");
                m.Skip(n, "the compact data");
            }
            else if (cls == 1 && !IsUndefined(addr))
            {
                At(addr, (long)Math.Min(bytes, (ulong)long.MaxValue), m.Structure, m.FileOffset);
            }
            else if (cls == 2)
            {
                CheckArrayBytes(m, $"dataset {name}: chunk shape", cdims, 1);
                if (!IsUndefined(addr)) ChunkBTree(addr, ndims, name);
            }
            return;
        }
        if (version is not (3 or 4)) throw m.Fail($"data layout version {version} is unknown (1 to 4)");
        int layoutClass = m.U8("the layout class");
        switch (layoutClass)
        {
            case 0:
            {
                int n = m.U16("the compact data size");
                m.Skip(n, "the compact data");
                if (info.Dims is not null && elem > 0 && (ulong)n != bytes)
                    throw m.Fail($"dataset {name}: compact data of {n} bytes; its shape ({string.Join(", ", dims)}) of {elem}-byte elements needs {bytes}");
                break;
            }
            case 1:
            {
                long sizeAt = m.Here;
                ulong addr = m.Offset("the data address");
                ulong size = m.Length("the data size");
                if (info.Dims is not null && elem > 0 && size != bytes)
                    throw Fail(m.Structure, sizeAt, $"dataset {name}: contiguous data of {size} bytes; its shape ({string.Join(", ", dims)}) of {elem}-byte elements needs {bytes}");
                if (!IsUndefined(addr)) At(addr, (long)Math.Min(size, (ulong)long.MaxValue), $"data of dataset {name}", m.FileOffset);
                break;
            }
            case 2:
                Chunked(m, version, name, dims, elem);
                break;
            case 3:
            {
                ulong heap = m.Offset("the virtual dataset heap address");
                m.U32("the virtual dataset heap index");
                if (!IsUndefined(heap)) GlobalHeap(heap, m.Structure, m.FileOffset);
                break;
            }
            default:
                throw m.Fail($"layout class {layoutClass} is unknown (0 compact, 1 contiguous, 2 chunked, 3 virtual)");
        }
    }

    private void Chunked(Cursor m, int version, string name, ulong[] dims, long elem)
    {
        int flags = version == 4 ? m.U8("the chunk flags") : 0;
        int ndims = m.U8("the chunk rank");
        if (ndims < 1 || ndims > MaxRank + 1) throw m.Fail($"chunk rank {ndims} is not 1 to {MaxRank + 1}");
        ulong addr = version == 3 ? m.Offset("the chunk index address") : 0;
        int width = version == 4 ? m.U8("the chunk dimension width") : 4;
        if (width is < 1 or > 8) throw m.Fail($"chunk dimension width {width} is not 1 to 8");
        var cdims = new ulong[ndims];
        for (int i = 0; i < ndims; i++)
        {
            cdims[i] = m.UN(width, "a chunk dimension");
            if (cdims[i] == 0) throw m.Fail($"dataset {name}: chunk dimension {i} is 0");
        }
        CheckArrayBytes(m, $"dataset {name}: chunk shape", cdims, 1);
        if (ndims != dims.Length + 1) throw m.Fail($"dataset {name}: chunks of rank {ndims - 1} for a dataset of rank {dims.Length}");
        if (elem > 0 && cdims[^1] != (ulong)elem) throw m.Fail($"dataset {name}: chunk element size {cdims[^1]} differs from the datatype's {elem}");
        ulong chunkBytes = Product(cdims, 1, out _);
        if (version == 3)
        {
            if (!IsUndefined(addr)) ChunkBTree(addr, ndims, name);
            return;
        }
        int index = m.U8("the chunk index type");
        switch (index)
        {
            case 1:
            {
                ulong filtered = chunkBytes;
                if ((flags & 0x02) != 0)
                {
                    filtered = m.Length("the filtered chunk size");
                    m.U32("the filter mask");
                }
                addr = m.Offset("the chunk address");
                if (!IsUndefined(addr)) At(addr, (long)Math.Min(filtered, (ulong)long.MaxValue), $"chunk of dataset {name}", m.FileOffset);
                break;
            }
            case 2:
                addr = m.Offset("the chunk address");
                if (!IsUndefined(addr)) At(addr, (long)Math.Min(chunkBytes, (ulong)long.MaxValue), $"chunks of dataset {name}", m.FileOffset);
                break;
            case 3:
                m.U8("the fixed array page bits");
                addr = m.Offset("the fixed array address");
                if (!IsUndefined(addr)) FixedArray(addr, name);
                break;
            case 4:
                m.Skip(5, "the extensible array parameters");
                addr = m.Offset("the extensible array address");
                if (!IsUndefined(addr)) ExtensibleArray(addr, name);
                break;
            case 5:
                m.Skip(6, "the B-tree parameters");
                addr = m.Offset("the B-tree address");
                if (!IsUndefined(addr)) BTree2(addr, $"chunk index of {name}", null);
                break;
            default:
                throw m.Fail($"chunk index type {index} is unknown (1 to 5)");
        }
    }

    /// <summary>A version 1 B-tree of chunks (node type 1) with keys of <paramref name="ndims"/> offsets.</summary>
    private void ChunkBTree(ulong root, int ndims, string name)
    {
        var stack = new Stack<(ulong Address, int Level)>();
        stack.Push((root, -1));
        while (stack.Count > 0)
        {
            var (address, expected) = stack.Pop();
            string what = $"chunk B-tree node of {name}";
            long at = At(address, 24, what, 0);
            if (!_nodes.Add(at)) throw Fail(what, at, "is reached twice (a cycle in the B-tree)");
            var head = Read(at, Math.Min(8, _length - at), what);
            if (!head.Sig("TREE")) throw head.Fail("no TREE signature");
            head.Skip(4, "the signature");
            int type = head.U8();
            int level = head.U8();
            int entries = head.U16();
            if (type != 1) throw head.Fail($"node type {type} in a chunk B-tree (1 expected)");
            if (expected >= 0 && level != expected) throw head.Fail($"node level {level} below a node of level {expected + 1}");
            if (level >= MaxBTreeDepth) throw head.Fail($"node level {level} exceeds {MaxBTreeDepth}");
            int key = 8 + 8 * ndims;
            long size = 8 + 2L * _so + (long)entries * (key + _so) + key;
            var node = Read(At(address, size, what, at), size, what);
            node.Skip(8 + 2L * _so, "the node header");
            for (int i = 0; i < entries; i++)
            {
                uint chunkSize = node.U32("a chunk size");
                node.Skip(key - 4, "a chunk key");
                ulong child = node.Offset("a child address");
                if (level == 0) At(child, chunkSize, $"chunk of dataset {name}", node.FileOffset);
                else stack.Push((child, level - 1));
            }
        }
    }

    private void FixedArray(ulong address, string name)
    {
        string what = $"fixed array header of {name}";
        long size = 4 + 1 + 1 + 1 + 1 + _sl + _so + 4;
        var h = ReadAddress(address, size, what, 0);
        if (!h.Sig("FAHD")) throw h.Fail("no FAHD signature");
        VerifyChecksum(h, (int)size - 4);
        h.Skip(6, "the header");
        int entrySize = h.U8("the entry size");
        int pageBits = h.U8("the page bits");
        ulong entries = h.Length("the number of entries");
        ulong block = h.Offset("the data block address");
        if (entrySize < _so || entrySize > _so + 8 + 4) throw h.Fail($"entry size {entrySize} is not a chunk address (and size and filter mask)");
        if (pageBits > 32) throw h.Fail($"page bits {pageBits} exceed 32");
        if (entries > (ulong)_length / (ulong)entrySize) throw h.Fail($"{entries} entries of {entrySize} bytes cannot fit the {_length}-byte file");
        if (IsUndefined(block)) return;
        bool paged = entries > (1UL << pageBits);
        string bw = $"fixed array data block of {name}";
        long prefix = 4 + 1 + 1 + _so;
        if (paged)
        {
            ReadAddress(block, prefix, bw, h.FileOffset); // the paged pages are bounded by the file, not followed
            return;
        }
        long bsize = prefix + (long)entries * entrySize + 4;
        var b = ReadAddress(block, bsize, bw, h.FileOffset);
        if (!b.Sig("FADB")) throw b.Fail("no FADB signature");
        VerifyChecksum(b, (int)bsize - 4);
        b.Pos = (int)prefix;
        for (ulong i = 0; i < entries; i++)
        {
            ulong addr = b.Offset("a chunk address");
            ulong chunk = entrySize > _so ? b.UN(entrySize - _so - 4, "a chunk size") : 0;
            if (entrySize > _so) b.U32("a filter mask");
            if (!IsUndefined(addr)) At(addr, (long)Math.Min(chunk, (ulong)long.MaxValue), $"chunk of dataset {name}", b.FileOffset);
        }
    }

    private void ExtensibleArray(ulong address, string name)
    {
        string what = $"extensible array header of {name}";
        long size = 4 + 1 + 1 + 6 + 6L * _sl + _so + 4;
        var h = ReadAddress(address, size, what, 0);
        if (!h.Sig("EAHD")) throw h.Fail("no EAHD signature");
        VerifyChecksum(h, (int)size - 4);
        h.Skip(6, "the header");
        int elementSize = h.U8("the element size");
        int maxBits = h.U8("the maximum number of elements bits");
        h.Skip(4, "the block parameters");
        if (elementSize < _so || elementSize > _so + 12) throw h.Fail($"element size {elementSize} is not a chunk address (and size and filter mask)");
        if (maxBits is 0 or > 64) throw h.Fail($"maximum number of elements bits {maxBits} is not 1 to 64");
        h.Skip(6L * _sl, "the statistics");
        ulong index = h.Offset("the index block address");
        if (IsUndefined(index)) return;
        var ib = ReadAddress(index, 4 + 1 + 1 + _so, $"extensible array index block of {name}", h.FileOffset);
        if (!ib.Sig("EAIB")) throw ib.Fail("no EAIB signature");
    }

    // ------------------------------------------------------------------ attributes and global heaps

    private void Attribute(Cursor m, string name)
    {
        int version = m.U8("the attribute version");
        if (version is < 1 or > 3) throw m.Fail($"attribute message version {version} is unknown (1 to 3)");
        int flags = m.U8("the attribute flags");
        int nameSize = m.U16("the attribute name size");
        int typeSize = m.U16("the attribute datatype size");
        int spaceSize = m.U16("the attribute dataspace size");
        if (version == 3) m.U8("the name encoding");
        int Pad(int n) => version == 1 ? (n + 7) & ~7 : n;
        if (nameSize == 0) throw m.Fail("attribute with an empty name");
        var nameBytes = m.Bytes(Pad(nameSize), "the attribute name");
        string attr = Encoding.UTF8.GetString(nameBytes[..nameSize]).TrimEnd('\0');
        string where = $"attribute '{attr}' of {name}";
        var type = m.Sub(Pad(typeSize), $"datatype of {where}");
        var space = m.Sub(Pad(spaceSize), $"dataspace of {where}");
        if ((flags & 0x03) != 0) return; // a shared datatype or dataspace: the sizes are not here
        long elem = Datatype(type, out int cls, out long baseSize);
        var dims = Dataspace(space) ?? [];
        CheckArrayBytes(space, $"{where}: declared shape", dims, (ulong)elem);
        ulong bytes = Product(dims, (ulong)elem, out _);
        if (bytes > (ulong)m.Remaining)
            throw m.Fail($"{where}: its shape ({string.Join(", ", dims)}) of {elem}-byte elements needs {bytes} bytes; the message holds {m.Remaining}");
        if (cls != 9) return;
        // Variable-length values: (length, global heap collection, object index) per element.
        int count = (int)(bytes / (ulong)elem);
        for (int i = 0; i < count; i++)
        {
            var e = m.Sub((int)elem, $"value {i} of {where}");
            uint length = e.U32("a variable-length size");
            ulong heap = e.Offset("a global heap address");
            uint index = e.U32("a global heap index");
            if (length == 0 && (heap == 0 || IsUndefined(heap))) continue;
            var objects = GlobalHeap(heap, e.Structure, e.FileOffset);
            if (!objects.TryGetValue((int)Math.Min(index, int.MaxValue), out long objSize))
                throw e.Fail($"{where}: global heap object {index} does not exist in the collection at address {heap}");
            if ((ulong)length * (ulong)Math.Max(1, baseSize) > (ulong)objSize)
                throw e.Fail($"{where}: a variable-length value of {length} elements is longer than its {objSize}-byte global heap object");
        }
    }

    /// <summary>The objects (index → size) of the global heap collection at <paramref name="address"/>, each size checked against the collection.</summary>
    private Dictionary<int, long> GlobalHeap(ulong address, string from, long fromOffset)
    {
        long at = At(address, 16, $"global heap collection referenced by {from}", fromOffset);
        if (_globalHeaps.TryGetValue(at, out var known)) return known;
        string what = "global heap collection";
        var h = Read(at, 8 + _sl, what);
        if (!h.Sig("GCOL")) throw h.Fail("no GCOL signature");
        h.Skip(4, "the signature");
        int version = h.U8();
        if (version != 1) throw h.Fail($"global heap version {version} is unknown (1)");
        h.Skip(3, "reserved bytes");
        ulong size = h.Length("the collection size");
        if (size < (ulong)(8 + _sl)) throw h.Fail($"collection size {size} is smaller than its header");
        if (size > (ulong)(_length - at))
            throw h.Fail($"collection size {size} runs past the end of the {_length}-byte file");
        if (size > (ulong)_limits.MaxArrayBytes)
            throw h.Fail(ReadLimits.Exceeds("the collection", (long)size, _limits.MaxArrayBytes, nameof(ReadLimits.MaxArrayBytes)));
        var c = Read(at, (long)size, what);
        c.Pos = 8 + _sl;
        var objects = new Dictionary<int, long>();
        int objHeader = 8 + _sl;
        while (c.Remaining >= objHeader)
        {
            long objAt = c.Here;
            int index = c.U16();
            c.U16();
            c.U32();
            ulong objSize = c.Length();
            if (index == 0)
            {
                if (objSize > (ulong)(c.Remaining + objHeader)) throw Fail(what, objAt, $"the free space object's size {objSize} exceeds the {c.Remaining + objHeader} bytes left in the collection");
                break;
            }
            ulong padded = (objSize + 7) & ~7UL;
            if (objSize > (ulong)c.Remaining)
                throw Fail(what, objAt, $"object {index} declares {objSize} bytes; only {c.Remaining} remain in the {size}-byte collection");
            if (!objects.TryAdd(index, (long)objSize)) throw Fail(what, objAt, $"object index {index} occurs twice");
            c.Skip((long)Math.Min(padded, (ulong)c.Remaining), "an object");
        }
        _globalHeaps[at] = objects;
        return objects;
    }

    // ------------------------------------------------------------------ links, old-style and dense groups

    private void Link(Cursor m, string parent)
    {
        int version = m.U8("the link version");
        if (version != 1) throw m.Fail($"link message version {version} is unknown (1)");
        int flags = m.U8("the link flags");
        if ((flags & 0xe0) != 0) throw m.Fail($"unknown link flags 0x{flags:x2}");
        int type = (flags & 0x08) != 0 ? m.U8("the link type") : 0;
        if ((flags & 0x04) != 0) m.Skip(8, "the creation order");
        if ((flags & 0x10) != 0) m.U8("the character set");
        ulong nameLength = m.UN(1 << (flags & 3), "the link name length");
        if (nameLength == 0) throw m.Fail("link with an empty name");
        if (nameLength > (ulong)m.Remaining) throw m.Fail($"link name of {nameLength} bytes; only {m.Remaining} remain in the message");
        string linkName = Encoding.UTF8.GetString(m.Bytes((long)nameLength, "the link name"));
        string child = (parent == "/" ? "/" : parent + "/") + linkName;
        if (type == 0)
        {
            ulong addr = m.Offset("the link's object header address");
            _pending.Enqueue((At(addr, 4, $"link {child}", m.FileOffset), child));
        }
        else
        {
            int len = m.U16("the link value length");
            m.Skip(len, "the link value");
        }
    }

    private void LinkInfo(Cursor m, string name)
    {
        int version = m.U8("the link info version");
        if (version != 0) throw m.Fail($"link info version {version} is unknown (0)");
        int flags = m.U8("the link info flags");
        if ((flags & 1) != 0) m.Skip(8, "the maximum creation index");
        ulong heap = m.Offset("the fractal heap address");
        ulong names = m.Offset("the name index address");
        if (IsUndefined(heap)) return;
        var fh = Heap(heap, $"link heap of {name}", m.FileOffset);
        if (IsUndefined(names)) throw m.Fail($"group {name} has a link heap but no name index");
        foreach (var id in BTree2(names, $"link name index of {name}", 5))
        {
            var obj = fh.Object(id, $"link of {name}");
            if (obj is not null) Link(obj, name);
        }
    }

    private void AttributeInfo(Cursor m, string name)
    {
        int version = m.U8("the attribute info version");
        if (version != 0) throw m.Fail($"attribute info version {version} is unknown (0)");
        int flags = m.U8("the attribute info flags");
        if ((flags & 1) != 0) m.Skip(2, "the maximum creation index");
        ulong heap = m.Offset("the fractal heap address");
        ulong names = m.Offset("the name index address");
        if (IsUndefined(heap)) return;
        var fh = Heap(heap, $"attribute heap of {name}", m.FileOffset);
        if (IsUndefined(names)) throw m.Fail($"object {name} has an attribute heap but no name index");
        foreach (var id in BTree2(names, $"attribute name index of {name}", 8))
        {
            var obj = fh.Object(id, $"attribute of {name}");
            if (obj is not null) Attribute(obj, name);
        }
    }

    private void SymbolTable(Cursor m, string name)
    {
        ulong tree = m.Offset("the B-tree address");
        ulong heapAddr = m.Offset("the local heap address");
        var heap = Local(heapAddr, name, m.FileOffset);
        var stack = new Stack<(ulong Address, int Level)>();
        stack.Push((tree, -1));
        while (stack.Count > 0)
        {
            var (address, expected) = stack.Pop();
            string what = $"group B-tree node of {name}";
            long at = At(address, 8, what, m.FileOffset);
            if (!_nodes.Add(at)) throw Fail(what, at, "is reached twice (a cycle in the B-tree)");
            var head = Read(at, 8, what);
            if (!head.Sig("TREE")) throw head.Fail("no TREE signature");
            head.Skip(4, "the signature");
            int type = head.U8();
            int level = head.U8();
            int entries = head.U16();
            if (type != 0) throw head.Fail($"node type {type} in a group B-tree (0 expected)");
            if (expected >= 0 && level != expected) throw head.Fail($"node level {level} below a node of level {expected + 1}");
            if (level >= MaxBTreeDepth) throw head.Fail($"node level {level} exceeds {MaxBTreeDepth}");
            long size = 8 + 2L * _so + (long)entries * (_sl + _so) + _sl;
            var node = Read(At(address, size, what, at), size, what);
            node.Skip(8 + 2L * _so, "the node header");
            for (int i = 0; i < entries; i++)
            {
                node.Length("a key");
                ulong child = node.Offset("a child address");
                if (level > 0) stack.Push((child, level - 1));
                else SymbolNode(child, heap, name);
            }
        }
    }

    private LocalHeap Local(ulong address, string name, long from)
    {
        string what = $"local heap of {name}";
        long at = At(address, 8 + 2L * _sl + _so, what, from);
        if (_localHeaps.TryGetValue(at, out var known)) return known;
        var h = Read(at, 8 + 2L * _sl + _so, what);
        if (!h.Sig("HEAP")) throw h.Fail("no HEAP signature");
        h.Skip(4, "the signature");
        int version = h.U8();
        if (version != 0) throw h.Fail($"local heap version {version} is unknown (0)");
        h.Skip(3, "reserved bytes");
        ulong size = h.Length("the data segment size");
        ulong free = h.Length("the free list offset");
        ulong data = h.Offset("the data segment address");
        if (size > (ulong)MaxMetadataBlock) throw h.Fail($"data segment size {size} exceeds the {MaxMetadataBlock}-byte limit for one metadata block");
        long dataAt = At(data, (long)size, what, at);
        if (free != 1 && !IsUnlimited(free) && free >= size) throw h.Fail($"free list offset {free} lies outside the {size}-byte data segment");
        var heap = new LocalHeap(dataAt, (long)size);
        _localHeaps[at] = heap;
        return heap;
    }

    private void SymbolNode(ulong address, LocalHeap heap, string name)
    {
        string what = $"symbol table node of {name}";
        long at = At(address, 8, what, 0);
        if (!_nodes.Add(at)) throw Fail(what, at, "is reached twice");
        var head = Read(at, 8, what);
        if (!head.Sig("SNOD")) throw head.Fail("no SNOD signature");
        head.Skip(4, "the signature");
        int version = head.U8();
        if (version != 1) throw head.Fail($"symbol table node version {version} is unknown (1)");
        head.U8();
        int count = head.U16("the number of symbols");
        long entry = 2L * _so + 24;
        var node = Read(At(address, 8 + count * entry, what, at), 8 + count * entry, what);
        node.Pos = 8;
        for (int i = 0; i < count; i++)
        {
            ulong nameOffset = node.Offset("a link name offset");
            ulong header = node.Offset("an object header address");
            node.Skip(24, "the cache fields");
            if (nameOffset >= (ulong)heap.DataSize) throw node.Fail($"link name offset {nameOffset} lies outside the {heap.DataSize}-byte local heap");
            string linkName = HeapString(heap, (long)nameOffset, what);
            string child = (name == "/" ? "/" : name + "/") + linkName;
            _pending.Enqueue((At(header, 4, $"link {child}", node.FileOffset), child));
        }
    }

    private string HeapString(LocalHeap heap, long offset, string what)
    {
        long max = Math.Min(heap.DataSize - offset, 4096);
        var c = Read(heap.DataAddress + offset, max, $"local heap name of {what}");
        int end = Array.IndexOf(c.Data, (byte)0);
        if (end < 0) throw c.Fail("a link name is not NUL-terminated within the local heap");
        if (end == 0) throw c.Fail("an empty link name");
        return Encoding.UTF8.GetString(c.Data, 0, end);
    }

    // ------------------------------------------------------------------ version 2 B-trees

    /// <summary>
    /// Walks the version 2 B-tree at <paramref name="address"/> (header, internal and leaf nodes, checksums and record counts);
    /// for <paramref name="recordType"/> 5 (link names) or 8 (attribute names) returns the heap IDs of its records.
    /// </summary>
    private List<byte[]> BTree2(ulong address, string name, int? recordType)
    {
        string what = $"B-tree header of {name}";
        long size = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + _so + 2 + _sl + 4;
        var h = ReadAddress(address, size, what, 0);
        if (!h.Sig("BTHD")) throw h.Fail("no BTHD signature");
        VerifyChecksum(h, (int)size - 4);
        h.Skip(4, "the signature");
        int version = h.U8();
        if (version != 0) throw h.Fail($"B-tree version {version} is unknown (0)");
        int type = h.U8("the record type");
        uint nodeSize = h.U32("the node size");
        int recordSize = h.U16("the record size");
        int depth = h.U16("the depth");
        h.Skip(2, "the split and merge percentages");
        ulong root = h.Offset("the root node address");
        int rootRecords = h.U16("the number of records in the root");
        ulong total = h.Length("the number of records");
        if (recordType is not null && type != recordType) throw h.Fail($"record type {type} where {recordType} is expected");
        if (nodeSize < 16 || nodeSize > MaxMetadataBlock) throw h.Fail($"node size {nodeSize} is not 16 to {MaxMetadataBlock} bytes");
        if (recordSize == 0 || recordSize > nodeSize) throw h.Fail($"record size {recordSize} does not fit a {nodeSize}-byte node");
        if (depth > MaxBTreeDepth) throw h.Fail($"depth {depth} exceeds {MaxBTreeDepth}");
        if (total > (ulong)_length) throw h.Fail($"{total} records cannot fit the {_length}-byte file");
        var ids = new List<byte[]>();
        if (IsUndefined(root) || total == 0) return ids;
        // Per depth: most records in a node, and the byte widths of the record counts in the pointers to it (as the HDF5 library computes them).
        var maxRec = new ulong[depth + 1];
        var recWidth = new int[depth + 1];
        var cumMax = new ulong[depth + 1];
        var cumWidth = new int[depth + 1];
        const int Prefix = 10;
        maxRec[0] = (nodeSize - Prefix) / (uint)recordSize;
        recWidth[0] = EncWidth(maxRec[0]);
        cumMax[0] = maxRec[0];
        cumWidth[0] = 0;
        for (int d = 1; d <= depth; d++)
        {
            long pointer = _so + recWidth[0] + (d > 1 ? cumWidth[d - 1] : 0);
            long room = nodeSize - (Prefix + pointer);
            maxRec[d] = room <= 0 ? 0 : (ulong)(room / (recordSize + pointer));
            recWidth[d] = EncWidth(maxRec[d]);
            ulong cm = cumMax[d - 1] > ulong.MaxValue / (maxRec[d] + 2) ? ulong.MaxValue : (maxRec[d] + 1) * cumMax[d - 1] + maxRec[d];
            cumMax[d] = cm;
            cumWidth[d] = EncWidth(cm);
        }
        var stack = new Stack<(ulong Address, int Records, int Depth)>();
        stack.Push((root, rootRecords, depth));
        while (stack.Count > 0)
        {
            var (node, records, d) = stack.Pop();
            if ((ulong)records > maxRec[d]) throw h.Fail($"a node at depth {d} holds {records} records; a {nodeSize}-byte node holds at most {maxRec[d]}");
            string nw = $"B-tree node of {name}";
            long pointer = d > 0 ? _so + recWidth[0] + (d > 1 ? cumWidth[d - 1] : 0) : 0;
            long used = 6 + (long)records * recordSize + (d > 0 ? (records + 1) * pointer : 0);
            long at = At(node, used + 4, nw, h.FileOffset);
            if (!_nodes.Add(at)) throw Fail(nw, at, "is reached twice (a cycle in the B-tree)");
            var n = Read(at, used + 4, nw);
            if (!n.Sig(d > 0 ? "BTIN" : "BTLF")) throw n.Fail($"no {(d > 0 ? "BTIN" : "BTLF")} signature");
            VerifyChecksum(n, (int)used);
            n.Skip(4, "the signature");
            if (n.U8() != 0) throw n.Fail("node version is not 0");
            if (n.U8() != type) throw n.Fail("node record type differs from the header's");
            for (int i = 0; i < records; i++)
            {
                var r = n.Bytes(recordSize, "a record");
                if (type == 5 && recordSize > 4) ids.Add(r[4..].ToArray());
                else if (type == 8 && recordSize > 9) ids.Add(r[..(recordSize - 9)].ToArray());
            }
            if (d == 0) continue;
            for (int i = 0; i <= records; i++)
            {
                ulong child = n.Offset("a child address");
                ulong count = n.UN(recWidth[0], "a child's record count");
                if (d > 1) n.UN(cumWidth[d - 1], "a child's total record count");
                if (count > maxRec[d - 1]) throw n.Fail($"child {i} holds {count} records; a node at depth {d - 1} holds at most {maxRec[d - 1]}");
                stack.Push((child, (int)count, d - 1));
            }
        }
        return ids;
    }

    /// <summary>Bytes needed to store values up to <paramref name="v"/> (HDF5's <c>H5VM_limit_enc_size</c>).</summary>
    private static int EncWidth(ulong v) => (v == 0 ? 0 : 63 - System.Numerics.BitOperations.LeadingZeroCount(v)) / 8 + 1;

    // ------------------------------------------------------------------ fractal heaps

    private FractalHeap Heap(ulong address, string name, long from)
    {
        string what = $"fractal heap header of {name}";
        long at = At(address, 22, what, from);
        if (_fractalHeaps.TryGetValue(at, out var known)) return known;
        var probe = Read(at, 22, what);
        if (!probe.Sig("FRHP")) throw probe.Fail("no FRHP signature");
        probe.Skip(4, "the signature");
        if (probe.U8() != 0) throw probe.Fail("fractal heap version is not 0");
        int idLength = probe.U16("the heap ID length");
        int filterLength = probe.U16("the I/O filter length");
        long size = 4 + 1 + 2 + 2 + 1 + 4 + _sl + _so + _sl + _so + 8L * _sl + 2 + _sl + _sl + 2 + 2 + _so + 2
            + (filterLength > 0 ? _sl + 4 + filterLength : 0) + 4;
        var h = Read(At(address, size, what, from), size, what);
        VerifyChecksum(h, (int)size - 4);
        h.Pos = 9;
        int flags = h.U8("the heap flags");
        uint maxManaged = h.U32("the maximum managed object size");
        h.Length(); h.Offset(); h.Length(); h.Offset();
        h.Skip(8L * _sl, "the heap statistics");
        int width = h.U16("the table width");
        ulong start = h.Length("the starting block size");
        ulong maxDirect = h.Length("the maximum direct block size");
        int maxHeapBits = h.U16("the maximum heap size");
        h.U16("the starting number of rows");
        ulong root = h.Offset("the root block address");
        int rows = h.U16("the current number of rows");
        if (width == 0 || width > 65536 || (width & (width - 1)) != 0) throw h.Fail($"table width {width} is not a power of two");
        if (start == 0 || (start & (start - 1)) != 0) throw h.Fail($"starting block size {start} is not a power of two");
        if (maxDirect < start || (maxDirect & (maxDirect - 1)) != 0 || maxDirect > (ulong)MaxMetadataBlock)
            throw h.Fail($"maximum direct block size {maxDirect} is not a power of two from the starting block size {start} to {MaxMetadataBlock}");
        if (maxHeapBits is 0 or > 64) throw h.Fail($"maximum heap size of {maxHeapBits} bits is not 1 to 64");
        if (maxManaged > maxDirect) throw h.Fail($"maximum managed object size {maxManaged} exceeds the maximum direct block size {maxDirect}");
        if (idLength < 1 || idLength > 4096) throw h.Fail($"heap ID length {idLength} is not 1 to 4096");
        int maxDirectRows = System.Numerics.BitOperations.Log2(maxDirect) - System.Numerics.BitOperations.Log2(start) + 2;
        if (rows > maxDirectRows + 64) throw h.Fail($"{rows} rows in the root block exceed what the heap's sizes allow");
        var heap = new FractalHeap(this, name, (maxHeapBits + 7) / 8, Math.Min(EncLength(maxDirect), EncWidth(maxManaged)), (flags & 0x02) != 0, filterLength > 0);
        if (!IsUndefined(root))
        {
            if (rows == 0)
            {
                heap.AddDirect(root, 0, (long)start, h.FileOffset);
            }
            else
            {
                // The root indirect block: direct blocks of the first min(rows, maxDirectRows) rows (deeper ones are bounded, not followed).
                int direct = Math.Min(rows, maxDirectRows);
                long ibSize = 4 + 1 + _so + heap.OffsetBytes + (long)direct * width * (_so + (filterLength > 0 ? _sl + 4 : 0))
                    + (long)(rows - direct) * width * _so + 4;
                var ib = ReadAddress(root, ibSize, $"fractal heap indirect block of {name}", h.FileOffset);
                if (!ib.Sig("FHIB")) throw ib.Fail("no FHIB signature");
                VerifyChecksum(ib, (int)ibSize - 4);
                ib.Pos = 5 + _so + heap.OffsetBytes;
                ulong offset = 0;
                for (int r = 0; r < direct; r++)
                {
                    ulong blockSize = r < 2 ? start : start << (r - 1);
                    for (int c = 0; c < width; c++)
                    {
                        ulong child = ib.Offset("a direct block address");
                        if (filterLength > 0) { ib.Length(); ib.U32(); }
                        if (!IsUndefined(child)) heap.AddDirect(child, offset, (long)blockSize, ib.FileOffset);
                        offset += blockSize;
                    }
                }
            }
        }
        _fractalHeaps[at] = heap;
        return heap;
    }

    /// <summary>Bytes for offsets within a block of <paramref name="maxDirect"/> bytes (HDF5's <c>H5HF_SIZEOF_OFFSET_LEN</c>).</summary>
    private static int EncLength(ulong maxDirect) => (System.Numerics.BitOperations.Log2(maxDirect) + 7) / 8;

    private sealed class FractalHeap(Hdf5Precheck owner, string name, int offsetBytes, int lengthBytes, bool checksummed, bool filtered)
    {
        private readonly List<(ulong Offset, long Size, long At)> _blocks = [];

        public int OffsetBytes => offsetBytes;

        public void AddDirect(ulong address, ulong heapOffset, long size, long from)
        {
            string what = $"fractal heap direct block of {name}";
            long at = owner.At(address, filtered ? 4 : size, what, from);
            if (!filtered)
            {
                var b = owner.Read(at, Math.Min(size, 5 + owner._so + offsetBytes + 4), what);
                if (!b.Sig("FHDB")) throw b.Fail("no FHDB signature");
                if (checksummed)
                {
                    var whole = owner.Read(at, size, what);
                    int sumAt = 5 + owner._so + offsetBytes;
                    uint stored = BinaryPrimitives.ReadUInt32LittleEndian(whole.Data.AsSpan(sumAt));
                    whole.Data.AsSpan(sumAt, 4).Clear();
                    uint computed = Lookup3(whole.Data);
                    if (stored != computed) throw whole.Fail($"checksum mismatch (stored 0x{stored:x8}, computed 0x{computed:x8})");
                }
            }
            _blocks.Add((heapOffset, size, at));
        }

        /// <summary>The managed object a heap ID names, as a cursor; null for huge objects and objects in blocks not followed.</summary>
        public Cursor? Object(byte[] id, string what)
        {
            int kind = (id[0] >> 4) & 3;
            if ((id[0] >> 6) != 0) throw owner.Fail($"heap ID of {what}", 0, $"heap ID version {id[0] >> 6} is unknown (0)");
            if (kind == 2)
            {
                int len = (id[0] & 0x0f) + 1;
                if (len > id.Length - 1) throw owner.Fail($"heap ID of {what}", 0, $"a tiny object of {len} bytes in a {id.Length}-byte heap ID");
                return new Cursor(owner, id.AsSpan(1, len).ToArray(), 0, what);
            }
            if (kind != 0) return null;
            if (1 + offsetBytes + lengthBytes > id.Length) throw owner.Fail($"heap ID of {what}", 0, $"a {id.Length}-byte heap ID is too short for its offset and length");
            ulong offset = 0, length = 0;
            for (int i = offsetBytes - 1; i >= 0; i--) offset = (offset << 8) | id[1 + i];
            for (int i = lengthBytes - 1; i >= 0; i--) length = (length << 8) | id[1 + offsetBytes + i];
            foreach (var (start, size, at) in _blocks)
            {
                if (offset < start || offset >= start + (ulong)size) continue;
                ulong inBlock = offset - start;
                if (filtered) return null;
                if (length == 0 || inBlock + length > (ulong)size)
                    throw owner.Fail($"fractal heap direct block of {name}", at, $"{what}: a heap object of {length} bytes at heap offset {offset} runs past the {size}-byte block");
                return owner.Read(at + (long)inBlock, (long)length, what);
            }
            return null;
        }
    }
}
