using System.Buffers.Binary;
using System.Text;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>Hostile and corrupt inputs: each is refused with an InvalidDataException that says what and where, without big allocations.</summary>
public class PickleHostileTests
{
    private static byte[] B(params object[] parts)
    {
        var ms = new MemoryStream();
        foreach (var p in parts)
        {
            switch (p)
            {
                case byte b: ms.WriteByte(b); break;
                case int i: ms.WriteByte((byte)i); break;
                case char c: ms.WriteByte((byte)c); break;
                case string s: ms.Write(Encoding.UTF8.GetBytes(s)); break;
                case byte[] a: ms.Write(a); break;
                default: throw new ArgumentException(p.GetType().Name);
            }
        }
        return ms.ToArray();
    }

    private static byte[] U64(ulong v) { var b = new byte[8]; BinaryPrimitives.WriteUInt64LittleEndian(b, v); return b; }
    private static byte[] U32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(b, v); return b; }

    private static InvalidDataException Refused(byte[] data, params string[] mentions)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var e = Assert.Throws<InvalidDataException>(() => P.Load(data, sourceName: "hostile.pkl"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains("hostile.pkl", e.Message);
        Assert.Contains("offset", e.Message);
        foreach (var m in mentions) Assert.Contains(m, e.Message);
        Assert.True(allocated < 64L << 20, $"refusing {data.Length} bytes allocated {allocated} bytes");
        return e;
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("__builtin__", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("posix", "system")]
    [InlineData("numpy", "load")]
    [InlineData("copyreg", "_reconstructor")]
    public void Globals_outside_the_allowlist_are_refused(string module, string name)
    {
        // GLOBAL (protocol 2) form: PROTO 2, GLOBAL at offset 2.
        var g = B(0x80, 2, 'c', module + "\n" + name + "\n", ')', 'R', '.');
        Refused(g, $"'{module}.{name}'", "offset 2", "GLOBAL");
        // STACK_GLOBAL form.
        var sg = B(0x80, 4, 0x8c, module.Length, module, 0x8c, name.Length, name, 0x93, ')', 'R', '.');
        int at = 2 + 2 + module.Length + 2 + name.Length;
        Refused(sg, $"'{module}.{name}'", $"offset {at}", "STACK_GLOBAL");
    }

    [Theory]
    [InlineData(0x8d, "BINUNICODE8")]
    [InlineData(0x8e, "BINBYTES8")]
    [InlineData(0x96, "BYTEARRAY8")]
    public void Huge_declared_lengths_fail_before_allocating(int op, string name)
    {
        Refused(B(0x80, 5, op, U64(4UL << 30), "abc"), "truncated", name);
        Refused(B(0x80, 5, op, U64(ulong.MaxValue), "abc"), "truncated", name);
    }

    [Fact]
    public void Huge_32_bit_lengths_fail_before_allocating()
    {
        Refused(B(0x80, 2, 'X', U32(uint.MaxValue), "ab"), "truncated", "BINUNICODE");
        Refused(B(0x80, 3, 'B', U32(0x80000000), "ab"), "truncated", "BINBYTES");
        Refused(B(0x80, 2, 'T', U32(0x7FFFFFFF), "ab"), "truncated", "BINSTRING");
        Refused(B(0x80, 2, 0x8b, U32(0x7FFFFFFF), "ab"), "LONG4");
        Refused(B(0x80, 2, 0x8b, U32(1000), "ab"), "truncated", "LONG4");
        Refused(B(0x80, 5, 0x95, U64(1UL << 40), "N."), "truncated", "FRAME");
    }

    [Fact]
    public void Deep_nesting_through_the_stack_is_refused()
    {
        var lists = new byte[2 + 100_000 * 2 + 1];
        lists[0] = 0x80; lists[1] = 4;
        for (int i = 0; i < 100_000; i++) lists[2 + i] = (byte)']';
        for (int i = 0; i < 100_000; i++) lists[2 + 100_000 + i] = (byte)'a';
        lists[^1] = (byte)'.';
        Refused(lists, "deeper than 1000");

        var marks = new byte[2 + 100_000 + 1];
        marks[0] = 0x80; marks[1] = 4;
        marks.AsSpan(2, 100_000).Fill((byte)'(');
        marks[^1] = (byte)'.';
        Refused(marks, "MARK");
    }

    [Fact]
    public void Deep_nesting_through_the_memo_is_refused()
    {
        // [] memo0; then repeatedly: new list, fetch the previous one, append it, memoize, pop.
        var ms = new MemoryStream();
        ms.Write([0x80, 4, (byte)']', 0x94, (byte)'0']);
        for (uint i = 0; i < 5000; i++)
        {
            ms.WriteByte((byte)']');
            ms.WriteByte((byte)'j');
            ms.Write(U32(i));
            ms.Write([(byte)'a', 0x94, (byte)'0']);
        }
        ms.WriteByte((byte)'j');
        ms.Write(U32(5000));
        ms.WriteByte((byte)'.');
        var e = Assert.Throws<InvalidDataException>(() => P.Load(ms.ToArray()));
        Assert.Contains("deeper than 1000", e.Message);
        // The same chain of 500 loads fine: the limit is about depth, not about sharing.
        var ok = new MemoryStream();
        ok.Write([0x80, 4, (byte)']', 0x94, (byte)'0']);
        for (uint i = 0; i < 500; i++)
        {
            ok.WriteByte((byte)']');
            ok.WriteByte((byte)'j');
            ok.Write(U32(i));
            ok.Write([(byte)'a', 0x94, (byte)'0']);
        }
        ok.WriteByte((byte)'j');
        ok.Write(U32(500));
        ok.WriteByte((byte)'.');
        Assert.IsType<PyList>(P.Load(ok.ToArray()));
    }

    [Fact]
    public void Self_references_load_as_in_python()
    {
        // PROTO 4, EMPTY_LIST, MEMOIZE, BINGET 0, APPEND: l = []; l.append(l).
        var l = Assert.IsType<PyList>(P.Load(B(0x80, 4, ']', 0x94, 'h', 0, 'a', '.')));
        Assert.Same(l, Assert.Single(l));
        // DUP instead of the memo: the same list twice on the stack.
        l = Assert.IsType<PyList>(P.Load(B(0x80, 4, ']', '2', 'a', '.')));
        Assert.Same(l, Assert.Single(l));
    }

    [Fact]
    public void Memo_and_stack_errors_name_the_offset_and_opcode()
    {
        Refused(B(0x80, 2, 'h', 5, '.'), "memo index 5", "offset 2", "BINGET");
        Refused(B(0x80, 2, 'j', U32(0xFFFFFFF0), '.'), "memo index", "LONG_BINGET");
        Refused(B(0x80, 2, 'N', 'r', U32(0xFFFFFFF0), '.'), "memo index", "LONG_BINPUT");
        Refused(B(0x80, 2, 'a', '.'), "underflow", "APPEND");
        Refused(B(0x80, 2, '.'), "underflow", "STOP");
        Refused(B(0x80, 2, '(', 'K', 1, 's', '.'), "underflow", "SETITEM");
        Refused(B(0x80, 2, 'u', '.'), "MARK", "SETITEMS");
        Refused(B(0x80, 2, 'K', 1, 'K', 2, 'a', '.'), "APPEND onto a int");
        Refused(B(0x80, 2, '}', ']', 'K', 1, 's', '.'), "unhashable");
        Refused(B(0x80, 2, 0xff, '.'), "unknown opcode", "offset 2");
        Refused(B(0x80, 9, '.'), "protocol 9");
        Refused(B(0x80, 2, 'N'), "truncated at offset 3");
    }

    [Fact]
    public void Build_on_wrong_types_is_refused()
    {
        Refused(B(0x80, 2, ']', 'N', 'b', '.'), "BUILD on a list");
        Refused(B(0x80, 2, '}', '}', 'b', '.'), "BUILD on a dict");
        // A dtype whose state is not a tuple.
        Refused(B(0x80, 4, 0x8c, 5, "numpy", 0x8c, 5, "dtype", 0x93, 0x8c, 2, "u1", 0x89, 0x88, 0x87, 'R', 'N', 'b', '.'), "numpy.dtype state");
        // A global used as a value.
        Refused(B(0x80, 4, ']', 0x8c, 8, "builtins", 0x8c, 3, "int", 0x93, 'a', '.'), "cannot be used as a value");
    }

    [Theory]
    [InlineData(0x97, "NEXT_BUFFER")]
    [InlineData(0x98, "READONLY_BUFFER")]
    [InlineData((int)'Q', "BINPERSID")]
    [InlineData(0x82, "EXT1")]
    public void Out_of_band_and_external_references_are_refused(int op, string name)
    {
        Refused(B(0x80, 5, 'N', op, 0, '.'), name, "offset 3");
    }

    [Fact]
    public void Numpy_arrays_with_inconsistent_sizes_are_refused()
    {
        // _frombuffer(bytearray(3 bytes), dtype u2, (2,), 'C')
        var fb = B(0x80, 5, 0x8c, 18, "numpy.core.numeric", 0x8c, 11, "_frombuffer", 0x93,
            '(', 0x96, U64(3), "abc",
            0x8c, 5, "numpy", 0x8c, 5, "dtype", 0x93, 0x8c, 2, "u2", 0x89, 0x88, 0x87, 'R',
            '(', 'K', 3, 0x8c, 1, "<", 'N', 'N', 'N', 'J', U32(0xFFFFFFFF), 'J', U32(0xFFFFFFFF), 'K', 0, 't', 'b',
            'K', 2, 0x85, 0x8c, 1, "C", 't', 'R', '.');
        Refused(fb, "buffer of 3 bytes");
        // A shape claiming 2^40 * 2^40 elements.
        var big = B(0x80, 5, 0x8c, 18, "numpy.core.numeric", 0x8c, 11, "_frombuffer", 0x93,
            '(', 0x96, U64(0),
            0x8c, 5, "numpy", 0x8c, 5, "dtype", 0x93, 0x8c, 2, "u2", 0x89, 0x88, 0x87, 'R',
            '(', 'K', 3, 0x8c, 1, "<", 'N', 'N', 'N', 'J', U32(0xFFFFFFFF), 'J', U32(0xFFFFFFFF), 'K', 0, 't', 'b',
            0x8a, 6, new byte[] { 0, 0, 0, 0, 0, 1 }, 0x8a, 6, new byte[] { 0, 0, 0, 0, 0, 1 }, 'K', 0, 0x87, 0x8c, 1, "C", 't', 'R', '.');
        Refused(big, "elements");
    }

    [Fact]
    public void Protocol_0_text_opcodes_load()
    {
        var v = P.Load(Encoding.ASCII.GetBytes("(lp0\nI42\naL12345678901234567890L\naF1.5\naVh\\u00e9\naS'a\\nb'\na(dp1\nI1\nI01\nsa."));
        var l = Assert.IsType<PyList>(v);
        Assert.Equal(42L, l[0]);
        Assert.Equal(System.Numerics.BigInteger.Parse("12345678901234567890"), l[1]);
        Assert.Equal(1.5, l[2]);
        Assert.Equal("hé", l[3]);
        Assert.Equal("a\nb"u8.ToArray(), ((PyBytes)l[4]).Data.ToArray());
        Assert.Equal(true, ((PyDict)l[5])[1L]);
    }

    [Fact]
    public void Limits_are_configurable()
    {
        var data = P.Dump(new PyList(Enumerable.Range(0, 100).Select(i => (object)(long)i)));
        Assert.IsType<PyList>(P.Load(data));
        var e = Assert.Throws<InvalidDataException>(() => P.Load(data, new PickleReadOptions { MaxTotalElements = 50 }));
        Assert.Contains("MaxTotalElements", e.Message);
        var nested = P.Dump(new PyList { new PyList { new PyList { new PyList() } } });
        Assert.Throws<InvalidDataException>(() => P.Load(nested, new PickleReadOptions { MaxDepth = 2 }));
        Assert.IsType<PyList>(P.Load(nested, new PickleReadOptions { MaxDepth = 4 }));
    }
}
