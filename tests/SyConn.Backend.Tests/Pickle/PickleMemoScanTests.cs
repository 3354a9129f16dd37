using System.Buffers.Binary;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// The pre-pass that finds which memo entries are read back: it must pick the plain case, fall back to
/// keeping every memo entry for anything else, and never change what a load returns or which error it raises.
/// </summary>
public class PickleMemoScanTests
{
    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }

    private static PyDict SharedValue()
    {
        var shared = new PyList { 1L, "x" };
        var d = new PyDict();
        for (long i = 0; i < 300; i++) d[i] = new PyList { shared, "k" + (i % 7), new PyTuple(i, i + 1) };
        d["again"] = shared;
        return d;
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Our_own_pickles_take_the_filtered_path_and_keep_sharing(int protocol)
    {
        var bytes = P.Dump(SharedValue(), protocol);
        var scan = PickleMemoScan.Scan(bytes, PickleReadOptions.Default.MaxMemoEntries);
        Assert.NotNull(scan);
        // Only the shared list and the 7 repeated strings (plus nothing per entry) are read back.
        Assert.InRange(scan.Count, 1, 20);
        var d = (PyDict)P.Load(bytes);
        var shared = ((PyList)d[0L])[0];
        for (long i = 1; i < 300; i++) Assert.Same(shared, ((PyList)d[i])[0]);
        Assert.Same(shared, d["again"]);
        Assert.Equal(bytes, P.Dump(d, protocol));
    }

    [Fact]
    public void Out_of_order_binput_falls_back_and_still_loads()
    {
        // [] BINPUT 7, BINGET 7, TUPLE2: a tuple of two references to one list, memoized out of order.
        byte[] data = [0x80, 2, (byte)']', (byte)'q', 7, (byte)'h', 7, 0x86, (byte)'.'];
        Assert.Null(PickleMemoScan.Scan(data, 1000));
        var t = (PyTuple)P.Load(data);
        Assert.Same(t[0], t[1]);
    }

    [Fact]
    public void Sequential_long_binput_is_filtered()
    {
        byte[] data = [0x80, 2, (byte)']', (byte)'r', .. U32(0), (byte)']', (byte)'r', .. U32(1), (byte)'j', .. U32(0), 0x87, (byte)'.'];
        var scan = PickleMemoScan.Scan(data, 1000);
        Assert.NotNull(scan);
        Assert.Equal(1, scan.Count);
        Assert.Equal(0, scan.Slot(0));
        Assert.Equal(-1, scan.Slot(1));
        var t = (PyTuple)P.Load(data);
        Assert.Same(t[0], t[2]);
        Assert.NotSame(t[0], t[1]);
    }

    [Fact]
    public void Text_memo_opcodes_fall_back()
    {
        byte[] data = "((lp0\ng0\nt."u8.ToArray();
        Assert.Null(PickleMemoScan.Scan(data, 1000));
        var t = (PyTuple)P.Load(data);
        Assert.Same(t[0], t[1]);
    }

    [Fact]
    public void Forward_references_and_missing_stop_fall_back_and_fail_in_the_run()
    {
        byte[] forward = [0x80, 4, (byte)'h', 0, (byte)']', 0x94, (byte)'.'];
        Assert.Null(PickleMemoScan.Scan(forward, 1000));
        var e = Assert.Throws<InvalidDataException>(() => P.Load(forward));
        Assert.Contains("memo index 0 is not defined", e.Message);
        byte[] noStop = [0x80, 4, (byte)']', 0x94, (byte)'h', 0];
        Assert.Null(PickleMemoScan.Scan(noStop, 1000));
        Assert.Throws<InvalidDataException>(() => P.Load(noStop));
        byte[] badLength = [0x80, 4, 0x8c, 200, (byte)'a', (byte)'.'];
        Assert.Null(PickleMemoScan.Scan(badLength, 1000));
        e = Assert.Throws<InvalidDataException>(() => P.Load(badLength));
        Assert.Contains("SHORT_BINUNICODE", e.Message);
    }

    [Fact]
    public void The_memo_limit_is_enforced_on_the_filtered_path()
    {
        var bytes = P.Dump(new PyList { new PyList(), new PyList(), new PyList(), new PyList() }, 5);
        Assert.NotNull(PickleMemoScan.Scan(bytes, 1 << 20));
        var e = Assert.Throws<InvalidDataException>(() => P.Load(bytes, new PickleReadOptions { MaxMemoEntries = 3 }));
        Assert.Contains("MaxMemoEntries", e.Message);
        Assert.IsType<PyList>(P.Load(bytes, new PickleReadOptions { MaxMemoEntries = 5 }));
    }

    [Fact]
    public void Memo_reads_beyond_the_filter_report_the_index()
    {
        // Index 1 is put but never read back; a forged BINGET 3 of an index never put is an error either way.
        byte[] data = [0x80, 4, (byte)']', 0x94, (byte)']', 0x94, (byte)'h', 0, (byte)'h', 3, (byte)'.'];
        var e = Assert.Throws<InvalidDataException>(() => P.Load(data));
        Assert.Contains("memo index 3 is not defined", e.Message);
    }

    [Fact]
    public void A_pickled_int_is_read_without_a_reader_as_the_reader_reads_it()
    {
        var values = new List<long> { 0, 1, 255, 256, 65535, 65536, -1, -256, int.MaxValue, int.MinValue, (long)int.MaxValue + 1, long.MaxValue, long.MinValue, 1L << 40 };
        foreach (int protocol in new[] { 2, 3, 4, 5 })
            foreach (long v in values)
            {
                var bytes = P.Dump(v, protocol);
                Assert.True(PickleReader.TryReadPlainInt(bytes, out var fast), $"{v} at protocol {protocol}: {Convert.ToHexString(bytes)}");
                Assert.Equal(P.Load(bytes), fast);
                Assert.IsType<long>(fast);
            }
        // Ints beyond 8 bytes, other values, and anything the reader would refuse or read differently take the reader.
        Assert.False(PickleReader.TryReadPlainInt(P.Dump(System.Numerics.BigInteger.Pow(2, 70)), out _));
        Assert.False(PickleReader.TryReadPlainInt(P.Dump("5"), out _));
        Assert.False(PickleReader.TryReadPlainInt([0x80, 6, (byte)'K', 5, (byte)'.'], out _)); // protocol 6
        Assert.False(PickleReader.TryReadPlainInt([0x80, 4, 0x95, 100, 0, 0, 0, 0, 0, 0, 0, (byte)'K', 5, (byte)'.'], out _)); // frame past the end
        Assert.False(PickleReader.TryReadPlainInt([0x80, 2, (byte)'K', 5, (byte)'.', (byte)'.'], out _)); // bytes after the STOP
        Assert.False(PickleReader.TryReadPlainInt([0x80, 2, (byte)'K', 5], out _)); // no STOP
        Assert.False(PickleReader.TryReadPlainInt([0x80, 2, 0x8a, 2, 1, (byte)'.'], out _)); // LONG1 shorter than it says
        Assert.True(PickleReader.TryReadPlainInt([(byte)'J', 1, 0, 0, 0, (byte)'.'], out var noProto)); // protocol 1: no PROTO
        Assert.Equal(1L, noProto);
    }
}
