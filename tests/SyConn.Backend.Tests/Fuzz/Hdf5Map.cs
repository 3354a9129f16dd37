using System.Buffers.Binary;
using System.Text;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// Where the structures of an HDF5 file with version 2 object headers and compact links are (BinarySearchStore files as our
/// writer and h5py with <c>libver='latest'</c> write them): object header chunks with their checksums, messages, datasets
/// (dataspace, layout, raw data), attributes and global heap collections. The planted-flaw generator uses it to damage one
/// field at a known offset and to make the checksum right again, so that the flaw itself, not a checksum, must be caught.
/// </summary>
internal sealed class Hdf5Map
{
    /// <summary>A checksummed block: bytes [Start, ChecksumAt) hashed, the checksum at ChecksumAt.</summary>
    internal sealed record Block(int Start, int ChecksumAt, string Owner);

    internal sealed record Message(int Type, int SizeAt, int DataAt, int Size, Block Chunk, string Owner);

    internal sealed record Dataset(string Name, Message Space, Message Layout, int DataAt, int DataSize, int LayoutClass, int SizeFieldAt);

    internal sealed record Attr(string Owner, string Name, Message Message, int SpaceAt, int DataAt);

    internal sealed record GlobalHeap(int At, long Size, List<(int At, int Index, long Size)> Objects);

    public List<Block> Blocks { get; } = [];

    public List<Message> Messages { get; } = [];

    public List<Dataset> Datasets { get; } = [];

    public List<Attr> Attributes { get; } = [];

    public List<GlobalHeap> GlobalHeaps { get; } = [];

    /// <summary>Start offsets of the structures (headers, chunks, collections), for truncation at a boundary.</summary>
    public SortedSet<int> Boundaries { get; } = [];

    public int RootHeader { get; private set; }

    private readonly byte[] _d;

    private Hdf5Map(byte[] d) => _d = d;

    /// <summary>Maps <paramref name="data"/>; null when the file is not of the supported kind (superblock 2/3, v2 headers, compact links).</summary>
    public static Hdf5Map? TryParse(byte[] data)
    {
        try
        {
            var m = new Hdf5Map(data);
            return m.Parse() ? m : null;
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or IndexOutOfRangeException or InvalidOperationException or ArgumentException)
        {
            return null;
        }
    }

    private ulong U64(int at) => BinaryPrimitives.ReadUInt64LittleEndian(_d.AsSpan(at));

    private bool Parse()
    {
        if (_d.Length < 48 || _d[8] is not (2 or 3) || _d[9] != 8 || _d[10] != 8) return false;
        Boundaries.Add(0);
        RootHeader = checked((int)U64(36));
        var pending = new Queue<(int At, string Name)>();
        var seen = new HashSet<int>();
        pending.Enqueue((RootHeader, "/"));
        var heaps = new HashSet<int>();
        while (pending.Count > 0)
        {
            var (at, name) = pending.Dequeue();
            if (!seen.Add(at)) continue;
            if (Encoding.ASCII.GetString(_d, at, 4) != "OHDR" || _d[at + 4] != 2) return false;
            Boundaries.Add(at);
            int flags = _d[at + 5];
            int prefix = 6 + ((flags & 0x20) != 0 ? 16 : 0) + ((flags & 0x10) != 0 ? 4 : 0);
            int width = 1 << (flags & 3);
            ulong size = 0;
            for (int i = width - 1; i >= 0; i--) size = (size << 8) | _d[at + prefix + i];
            int crt = (flags & 0x04) != 0 ? 2 : 0;
            var chunks = new Queue<(int Start, int MsgStart, int End)>();
            chunks.Enqueue((at, at + prefix + width, checked(at + prefix + width + (int)size)));
            Message? space = null, layout = null;
            while (chunks.Count > 0)
            {
                var (start, p, end) = chunks.Dequeue();
                var block = new Block(start, end, name);
                Blocks.Add(block);
                while (end - p >= 4 + crt)
                {
                    int type = _d[p];
                    int msize = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(p + 1));
                    var msg = new Message(type, p + 1, p + 4 + crt, msize, block, name);
                    Messages.Add(msg);
                    int q = msg.DataAt;
                    switch (type)
                    {
                        case 0x01: space = msg; break;
                        case 0x08: layout = msg; break;
                        case 0x10:
                        {
                            int ca = checked((int)U64(q)), cl = checked((int)U64(q + 8));
                            if (Encoding.ASCII.GetString(_d, ca, 4) != "OCHK") return false;
                            Boundaries.Add(ca);
                            chunks.Enqueue((ca, ca + 4, ca + cl - 4));
                            break;
                        }
                        case 0x06:
                        {
                            int lf = _d[q + 1];
                            int r = q + 2;
                            int ltype = 0;
                            if ((lf & 0x08) != 0) ltype = _d[r++];
                            if ((lf & 0x04) != 0) r += 8;
                            if ((lf & 0x10) != 0) r++;
                            int lw = 1 << (lf & 3);
                            int len = 0;
                            for (int i = lw - 1; i >= 0; i--) len = (len << 8) | _d[r + i];
                            r += lw;
                            string child = (name == "/" ? "/" : name + "/") + Encoding.UTF8.GetString(_d, r, len);
                            r += len;
                            if (ltype == 0) pending.Enqueue((checked((int)U64(r)), child));
                            break;
                        }
                        case 0x02:
                        {
                            int r = q + 2 + ((_d[q + 1] & 1) != 0 ? 8 : 0);
                            if (U64(r) != ulong.MaxValue) return false; // dense links: not mapped
                            break;
                        }
                        case 0x0c:
                            MapAttribute(msg, name, heaps);
                            break;
                    }
                    p = msg.DataAt + msize;
                }
            }
            if (layout is not null && space is not null) MapDataset(name, space, layout);
        }
        foreach (var h in heaps) MapGlobalHeap(h);
        return true;
    }

    private void MapAttribute(Message msg, string owner, HashSet<int> heaps)
    {
        int q = msg.DataAt;
        int version = _d[q];
        int nameSize = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(q + 2));
        int typeSize = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(q + 4));
        int spaceSize = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(q + 6));
        int r = q + 8 + (version == 3 ? 1 : 0);
        string name = Encoding.UTF8.GetString(_d, r, nameSize).TrimEnd('\0');
        int typeAt = r + nameSize;
        int spaceAt = typeAt + typeSize;
        int dataAt = spaceAt + spaceSize;
        Attributes.Add(new Attr(owner, name, msg, spaceAt, dataAt));
        if ((_d[typeAt] & 0x0f) == 9) heaps.Add(checked((int)U64(dataAt + 4)));
    }

    private void MapDataset(string name, Message space, Message layout)
    {
        int q = layout.DataAt;
        if (_d[q] is not (3 or 4)) return;
        int cls = _d[q + 1];
        if (cls == 0)
        {
            int n = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(q + 2));
            Datasets.Add(new Dataset(name, space, layout, q + 4, n, 0, q + 2));
        }
        else if (cls == 1)
        {
            ulong addr = U64(q + 2);
            long size = (long)U64(q + 10);
            int at = addr == ulong.MaxValue ? -1 : checked((int)addr);
            if (at >= 0) Boundaries.Add(at);
            Datasets.Add(new Dataset(name, space, layout, at, checked((int)size), 1, q + 10));
        }
    }

    private void MapGlobalHeap(int at)
    {
        if (Encoding.ASCII.GetString(_d, at, 4) != "GCOL") return;
        Boundaries.Add(at);
        long size = (long)U64(at + 8);
        var objects = new List<(int, int, long)>();
        int p = at + 16;
        while (p + 16 <= at + size)
        {
            int index = BinaryPrimitives.ReadUInt16LittleEndian(_d.AsSpan(p));
            long osize = (long)U64(p + 8);
            if (index == 0) break;
            objects.Add((p, index, osize));
            p += 16 + (int)((osize + 7) & ~7L);
        }
        GlobalHeaps.Add(new GlobalHeap(at, size, objects));
    }

    /// <summary>Recomputes the checksum of <paramref name="block"/> in <paramref name="data"/>.</summary>
    public static void Fix(byte[] data, Block block) =>
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(block.ChecksumAt), Hdf5Precheck.Lookup3(data.AsSpan(block.Start, block.ChecksumAt - block.Start)));

    /// <summary>Recomputes the superblock's checksum (after its end-of-file address changed).</summary>
    public static void FixSuperblock(byte[] data) =>
        BinaryPrimitives.WriteUInt32LittleEndian(data.AsSpan(44), Hdf5Precheck.Lookup3(data.AsSpan(0, 44)));
}
