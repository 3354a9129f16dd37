using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace SyConn.Backend.Arrays;

/// <summary>Memory order of an array's raw bytes.</summary>
public enum ArrayOrder
{
    /// <summary>Row-major (numpy 'C'): the last index varies fastest.</summary>
    C,
    /// <summary>Column-major (numpy 'F'): the first index varies fastest.</summary>
    F,
}

/// <summary>
/// An n-dimensional numpy array: a <see cref="DType"/>, a shape and the raw element bytes, kept
/// exactly as numpy had them (byte order and memory order included) so that writing them back
/// reproduces the original content.
/// </summary>
/// <remarks>
/// <para>The bytes are referenced, not copied: an array created over a buffer (for example a slice
/// of a file read by a store) shares it. Mutating <see cref="Data"/> mutates the array.</para>
/// <para>Object arrays (<c>|O</c>) keep their elements in <see cref="Objects"/> instead of bytes.</para>
/// <para>Thread-safety: instances may be read from several threads at once; writes to the data
/// must be synchronised by the caller.</para>
/// </remarks>
public sealed class NdArray : IEquatable<NdArray>, Python.IPickleMarked
{
    private long _pickleMark;
    ref long Python.IPickleMarked.PickleMark => ref _pickleMark;

    private readonly long[] _shape;

    /// <summary>The element type, byte order included.</summary>
    public DType DType { get; }

    /// <summary>The raw element bytes in <see cref="Order"/> and in the dtype's byte order. Empty for object arrays.</summary>
    public Memory<byte> Data { get; }

    /// <summary>The elements of an object array (<c>|O</c>) in C order; null for other arrays.</summary>
    public IReadOnlyList<object?>? Objects { get; }

    /// <summary>The memory order of <see cref="Data"/>.</summary>
    public ArrayOrder Order { get; }

    /// <summary>The dimensions (a copy is not made: do not modify).</summary>
    public ReadOnlySpan<long> Shape => _shape;

    /// <summary>The dimensions as a new array.</summary>
    public long[] ShapeArray => (long[])_shape.Clone();

    /// <summary>Number of dimensions (0 for a 0-d array).</summary>
    public int NDim => _shape.Length;

    /// <summary>Number of elements.</summary>
    public long Size { get; }

    /// <summary>Number of bytes of the elements (numpy's <c>nbytes</c>).</summary>
    public long NBytes => Size * DType.ItemSize;

    /// <summary>numpy's <c>len(a)</c>: the first dimension; a 0-d array has none.</summary>
    /// <exception cref="InvalidOperationException">The array is 0-d.</exception>
    public long Length => _shape.Length == 0 ? throw new InvalidOperationException("len() of a 0-d array") : _shape[0];

    /// <summary>Creates an array over <paramref name="data"/> (not copied).</summary>
    /// <exception cref="ArgumentException">The data length does not match shape and dtype, or a dimension is negative.</exception>
    public NdArray(DType dtype, ReadOnlySpan<long> shape, Memory<byte> data, ArrayOrder order = ArrayOrder.C)
    {
        ArgumentNullException.ThrowIfNull(dtype);
        DType = dtype;
        _shape = SharedShape(shape);
        Size = CheckedSize(_shape);
        if (dtype.Kind == 'O')
            throw new ArgumentException("object arrays are created with NdArray.FromObjects");
        long expect = checked(Size * dtype.ItemSize);
        if (data.Length != expect)
            throw new ArgumentException($"array data holds {data.Length} bytes; dtype {dtype.Str} and shape ({string.Join(", ", _shape)}) need {expect}");
        Data = data;
        Order = order;
    }

    // The shapes of the small arrays that fill attribute dicts ((3,), (2, 3), ...) are shared by every array of that
    // shape (the shape array is never written), so millions of such arrays do not carry one shape array each.
    private static readonly long[][] Shapes1 = new long[64][];
    private static readonly long[][] Shapes2 = new long[16 * 16][];

    private static long[] SharedShape(ReadOnlySpan<long> shape)
    {
        if (shape.Length == 1 && (ulong)shape[0] < 64)
            return Volatile.Read(ref Shapes1[shape[0]]) ?? Interlocked.CompareExchange(ref Shapes1[shape[0]], shape.ToArray(), null) ?? Shapes1[shape[0]];
        if (shape.Length == 2 && (ulong)shape[0] < 16 && (ulong)shape[1] < 16)
        {
            int k = (int)(shape[0] * 16 + shape[1]);
            return Volatile.Read(ref Shapes2[k]) ?? Interlocked.CompareExchange(ref Shapes2[k], shape.ToArray(), null) ?? Shapes2[k];
        }
        return shape.Length == 0 ? [] : shape.ToArray();
    }

    /// <summary>The element array of an object array, for readers that fill or patch it before the array is handed out.</summary>
    internal object?[]? ObjectItems { get; }

    private NdArray(DType dtype, long[] shape, object?[] objects)
    {
        ObjectItems = objects;
        DType = dtype;
        _shape = shape;
        Size = CheckedSize(shape);
        if (objects.Length != Size)
            throw new ArgumentException($"object array of shape ({string.Join(", ", shape)}) needs {Size} elements, got {objects.Length}");
        Objects = objects;
        Data = Memory<byte>.Empty;
        Order = ArrayOrder.C;
    }

    /// <summary>Creates an object array (<c>|O</c>) from elements in C order.</summary>
    public static NdArray FromObjects(ReadOnlySpan<long> shape, object?[] items) =>
        new(new DType('|', 'O', 8), shape.ToArray(), items);

    private static long CheckedSize(long[] shape)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension {d} in shape ({string.Join(", ", shape)})");
            n = checked(n * d);
        }
        return n;
    }

    /// <summary>Creates a C-ordered array holding a copy of <paramref name="values"/>.</summary>
    public static NdArray Create<T>(ReadOnlySpan<T> values, params long[] shape) where T : unmanaged
    {
        if (shape.Length == 0) shape = [values.Length];
        var bytes = MemoryMarshal.AsBytes(values).ToArray();
        return new NdArray(DType.Of<T>(), shape, bytes);
    }

    /// <summary>Creates a C-ordered array holding a copy of <paramref name="values"/>.</summary>
    public static NdArray Create<T>(T[] values, params long[] shape) where T : unmanaged => Create((ReadOnlySpan<T>)values, shape);

    /// <summary>Wraps <paramref name="values"/> without copying (C order, native byte order).</summary>
    public static NdArray Wrap<T>(T[] values, params long[] shape) where T : unmanaged
    {
        if (shape.Length == 0) shape = [values.Length];
        return new NdArray(DType.Of<T>(), shape, new CastMemoryManager<T>(values).Memory);
    }

    /// <summary>An array of zeros.</summary>
    public static NdArray Zeros(DType dtype, params long[] shape)
    {
        long n = CheckedSize(shape);
        if (dtype.Kind == 'O') return FromObjects(shape, new object?[n]);
        return new NdArray(dtype, shape, new byte[checked(n * dtype.ItemSize)]);
    }

    /// <summary>
    /// A typed view of the raw data in its memory order. Requires a dtype of the same size and kind as
    /// <typeparamref name="T"/> in native byte order (use <see cref="ToNativeC"/> first otherwise).
    /// </summary>
    /// <exception cref="InvalidOperationException">The dtype does not match <typeparamref name="T"/> or is not in native byte order.</exception>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        if (!DType.Matches<T>())
            throw new InvalidOperationException($"array of dtype {DType.Str} cannot be viewed as {typeof(T).Name}");
        if (!DType.IsNativeByteOrder)
            throw new InvalidOperationException($"array of dtype {DType.Str} is not in native byte order; call ToNativeC() first");
        return MemoryMarshal.Cast<byte, T>(Data.Span);
    }

    /// <summary>
    /// The elements in C order and native byte order, converted to <typeparamref name="T"/> if the dtype differs.
    /// By default only conversions numpy's <c>astype(casting='safe')</c> allows are made (uint32 to long, float32 to
    /// double, ...); others (uint64 to long, float64 to float, any float to an integer) need
    /// <paramref name="casting"/> <see cref="CastingRule.SameKind"/> or <see cref="CastingRule.Unsafe"/>.
    /// </summary>
    /// <param name="casting">Which conversions are allowed (numpy's <c>casting</c>).</param>
    /// <exception cref="InvalidCastException">The conversion is not allowed by <paramref name="casting"/>, or the array is not numeric.</exception>
    public T[] ToArray<T>(CastingRule casting = CastingRule.Safe) where T : unmanaged
    {
        var a = DType.Matches<T>() ? ToNativeC() : AsType(DType.Of<T>(), casting);
        return MemoryMarshal.Cast<byte, T>(a.Data.Span).ToArray();
    }

    /// <summary>
    /// This array with element type <typeparamref name="T"/>, shape kept, in C order and native byte order (the array
    /// itself when it already is): <see cref="AsSpan{T}"/> then works on the result. Conversions as <see cref="ToArray{T}"/>.
    /// </summary>
    /// <param name="casting">Which conversions are allowed (numpy's <c>casting</c>).</param>
    /// <exception cref="InvalidCastException">The conversion is not allowed by <paramref name="casting"/>, or the array is not numeric.</exception>
    public NdArray As<T>(CastingRule casting = CastingRule.Safe) where T : unmanaged =>
        DType.Matches<T>() ? ToNativeC() : AsType(DType.Of<T>(), casting);

    /// <summary>
    /// Converts to another numeric dtype if <paramref name="casting"/> allows it (numpy's <c>astype(dtype, casting=...)</c>);
    /// the same instance when the dtype already matches. The result is C-ordered.
    /// </summary>
    /// <exception cref="InvalidCastException">The conversion is not allowed by <paramref name="casting"/>, or a dtype is not numeric.</exception>
    public NdArray AsType(DType target, CastingRule casting)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (target.Str == DType.Str) return this;
        if (!DType.IsNumeric || !target.IsNumeric)
            throw new InvalidCastException($"an array of dtype {DType.Str} cannot be converted to {target.Str}: only numeric arrays convert");
        if (!Casting.CanCast(DType, target, casting))
            throw new InvalidCastException(
                $"an array of dtype {DType.Str} ({DType.Name}) does not convert to {target.Str} ({target.Name}) under {Casting.Name(casting)} casting, " +
                $"as numpy's astype(casting='{Casting.Name(casting)}') refuses it (values could change); pass CastingRule.Unsafe to convert anyway (integers wrap, floats truncate toward zero)");
        return AsType(target);
    }

    /// <summary>The element at C index <paramref name="index"/> (one index per dimension) as <typeparamref name="T"/>, converted as <see cref="ToArray{T}"/>.</summary>
    /// <exception cref="ArgumentException">The number of indices is not <see cref="NDim"/>.</exception>
    /// <exception cref="IndexOutOfRangeException">An index is outside its dimension.</exception>
    /// <exception cref="InvalidCastException">The conversion is not safe.</exception>
    public T GetValue<T>(params long[] index) where T : unmanaged
    {
        ArgumentNullException.ThrowIfNull(index);
        if (index.Length != NDim) throw new ArgumentException($"an array of shape {ShapeText()} takes {NDim} indices, got {index.Length}", nameof(index));
        long flat = 0;
        for (int d = 0; d < NDim; d++)
        {
            if ((ulong)index[d] >= (ulong)_shape[d])
                throw new IndexOutOfRangeException($"index {index[d]} is out of bounds for axis {d} with size {_shape[d]}");
            flat = flat * _shape[d] + index[d];
        }
        var one = Objects is not null ? throw new InvalidCastException("an object array has no typed values") : ElementAt(flat);
        return one.As<T>().AsSpan<T>()[0];
    }

    private NdArray ElementAt(long flat)
    {
        var c = ToNativeC();
        int item = DType.ItemSize;
        return new NdArray(c.DType, [], c.Data.Slice((int)(flat * item), item));
    }

    /// <summary>True if the data is C-contiguous (C order, or at most one dimension larger than 1).</summary>
    public bool IsCContiguous => Order == ArrayOrder.C || CountNonTrivialDims() <= 1;

    /// <summary>True if the data is Fortran-contiguous.</summary>
    public bool IsFContiguous => Order == ArrayOrder.F || CountNonTrivialDims() <= 1;

    private int CountNonTrivialDims()
    {
        int n = 0;
        foreach (var d in _shape) if (d != 1) n++;
        return Size == 0 ? 0 : n;
    }

    /// <summary>
    /// This array in C order and native byte order: the array itself when it already is, else a copy.
    /// This is what SyConn's store getters return.
    /// </summary>
    public NdArray ToNativeC()
    {
        if (Objects is not null) return this;
        bool native = DType.IsNativeByteOrder;
        if (native && IsCContiguous)
            return Order == ArrayOrder.C ? this : new NdArray(DType, _shape, Data, ArrayOrder.C);
        var bytes = ToCBytes();
        if (!native) SwapBytes(bytes, DType.SwapUnit);
        return new NdArray(DType.ToNative(), _shape, bytes);
    }

    /// <summary>The raw elements in C order, in the dtype's own byte order (numpy's <c>tobytes()</c>). A new array unless already C-ordered.</summary>
    public byte[] ToCBytes()
    {
        if (Objects is not null) throw new InvalidOperationException("an object array has no raw bytes");
        if (IsCContiguous) return Data.ToArray();
        var src = Data.Span;
        var dst = new byte[src.Length];
        int item = DType.ItemSize;
        int nd = _shape.Length;
        // Fortran order: element with C index i is at F offset computed from its multi-index.
        var idx = new long[nd];
        var fStride = new long[nd];
        long s = 1;
        for (int d = 0; d < nd; d++) { fStride[d] = s; s *= _shape[d]; }
        for (long c = 0; c < Size; c++)
        {
            long f = 0;
            for (int d = 0; d < nd; d++) f += idx[d] * fStride[d];
            src.Slice((int)(f * item), item).CopyTo(dst.AsSpan((int)(c * item), item));
            for (int d = nd - 1; d >= 0; d--)
            {
                if (++idx[d] < _shape[d]) break;
                idx[d] = 0;
            }
        }
        return dst;
    }

    /// <summary>The same data with another shape of the same size (C order; the result shares the bytes when the array is C-ordered).</summary>
    public NdArray Reshape(params long[] shape)
    {
        int unknown = Array.IndexOf(shape, -1L);
        if (unknown >= 0)
        {
            long known = 1;
            for (int i = 0; i < shape.Length; i++) if (i != unknown) known = checked(known * shape[i]);
            if (known == 0 || Size % known != 0)
                throw new ArgumentException($"cannot reshape array of size {Size} into shape ({string.Join(", ", shape)})");
            shape = (long[])shape.Clone();
            shape[unknown] = Size / known;
        }
        if (CheckedSize(shape) != Size)
            throw new ArgumentException($"cannot reshape array of size {Size} into shape ({string.Join(", ", shape)})");
        if (Objects is not null) return new NdArray(DType, shape, Objects.ToArray());
        var c = IsCContiguous ? this : new NdArray(DType, _shape, ToCBytes());
        return new NdArray(DType, shape, c.Data);
    }

    /// <summary>
    /// Converts to another numeric dtype like numpy's <c>astype</c> (C-style casts: integers wrap,
    /// floats truncate toward zero). Returns the same instance when the dtype already matches.
    /// The result is C-ordered.
    /// </summary>
    /// <exception cref="NotSupportedException">A non-numeric dtype is involved.</exception>
    public NdArray AsType(DType target)
    {
        if (target.Str == DType.Str) return this;
        if (!DType.IsNumeric || !target.IsNumeric)
            throw new NotSupportedException($"astype from {DType.Str} to {target.Str} is not supported");
        var src = ToNativeC();
        var dt = target.ToNative();
        var dst = new byte[checked(Size * dt.ItemSize)];
        if (src.DType.Kind == dt.Kind && src.DType.ItemSize == dt.ItemSize)
            src.Data.Span.CopyTo(dst);
        else
            ElementConvert.Convert(src.DType, src.Data.Span, dt, dst, Size);
        if (!target.IsNativeByteOrder) SwapBytes(dst, target.SwapUnit);
        return new NdArray(target, _shape, dst);
    }

    /// <summary>The element at flat C index <paramref name="index"/> as a .NET value (bool, long, ulong, double, Complex, byte[] or string).</summary>
    public object? GetItem(long index)
    {
        if ((ulong)index >= (ulong)Size) throw new ArgumentOutOfRangeException(nameof(index));
        if (Objects is not null) return Objects[(int)index];
        var c = ToNativeC();
        var span = c.Data.Span.Slice((int)(index * DType.ItemSize), DType.ItemSize);
        return ElementConvert.Read(c.DType, span);
    }

    internal static void SwapBytes(Span<byte> data, int unit)
    {
        if (unit <= 1) return;
        for (int i = 0; i + unit <= data.Length; i += unit) data.Slice(i, unit).Reverse();
    }

    /// <summary>SHA-256 of the C-order raw bytes in the array's own byte order (the fixtures' <c>sha256_c</c>), lower-case hex.</summary>
    public string Sha256C() => Convert.ToHexStringLower(SHA256.HashData(IsCContiguous ? Data.Span : ToCBytes()));

    /// <summary>Arrays are equal when dtype, shape and C-order content are equal (byte for byte; NaNs with equal bits compare equal).</summary>
    public bool Equals(NdArray? other)
    {
        if (other is null) return false;
        if (ReferenceEquals(this, other)) return true;
        if (DType != other.DType || !Shape.SequenceEqual(other.Shape)) return false;
        if (Objects is not null || other.Objects is not null)
        {
            if (Objects is null || other.Objects is null) return false;
            // Element-wise with one set of compared pairs, so that an array holding itself compares in finite time.
            return Python.PyEquality.AreEqual(this, other);
        }
        if (Order == other.Order) return Data.Span.SequenceEqual(other.Data.Span);
        return ToCBytes().AsSpan().SequenceEqual(other.ToCBytes());
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is NdArray a && Equals(a);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(DType, Size);

    /// <summary>How many leading values <see cref="ToString"/> shows.</summary>
    public const int ToStringValues = 8;

    /// <summary>
    /// The dtype, the shape and the first <see cref="ToStringValues"/> values in C order, e.g.
    /// <c>ndarray(dtype=&lt;u4, shape=(6, 3), [0, 1, 2, 3, 4, 5, 6, 7, ...])</c>.
    /// </summary>
    public override string ToString()
    {
        // Object elements may be containers, or this array itself: written with the cycle handling of PyRepr.
        if (Objects is not null && Size > 0) return Python.PyRepr.Repr(this);
        var sb = new System.Text.StringBuilder();
        sb.Append("ndarray(dtype=").Append(DType.Str).Append(", shape=").Append(ShapeText());
        if (Size > 0 && (Objects is not null || DType.Kind is 'b' or 'i' or 'u' or 'f' or 'c' or 'U' or 'S'))
        {
            sb.Append(", [");
            long n = Math.Min(Size, ToStringValues);
            for (long i = 0; i < n; i++)
            {
                if (i > 0) sb.Append(", ");
                sb.Append(ValueText(GetItem(i)));
            }
            if (Size > n) sb.Append(", ...");
            sb.Append(']');
        }
        return sb.Append(')').ToString();
    }

    private static string ValueText(object? v) => v switch
    {
        bool b => b ? "True" : "False",
        double d => Python.PyRepr.Repr(d),
        Complex c => Python.PyRepr.Repr(c),
        byte[] bytes => Python.PyRepr.Repr(new Python.PyBytes(bytes)),
        string s => Python.PyRepr.Repr(s),
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => Python.PyRepr.Repr(v),
    };

    internal string ShapeText() => "(" + string.Join(", ", _shape) + (_shape.Length == 1 ? ",)" : ")");

    private sealed class CastMemoryManager<T>(T[] array) : System.Buffers.MemoryManager<byte> where T : unmanaged
    {
        public override Span<byte> GetSpan() => MemoryMarshal.AsBytes(array.AsSpan());

        // Each pin owns its handle and the MemoryHandle frees it when disposed, so pins nest, run concurrently
        // and never keep the array alive past their use.
        public override unsafe System.Buffers.MemoryHandle Pin(int elementIndex = 0)
        {
            var handle = GCHandle.Alloc(array, GCHandleType.Pinned);
            return new System.Buffers.MemoryHandle((byte*)handle.AddrOfPinnedObject() + elementIndex, handle);
        }

        public override void Unpin() { }

        protected override void Dispose(bool disposing) { }
    }
}

/// <summary>Element reads and numeric conversions between numpy dtypes (native byte order).</summary>
internal static class ElementConvert
{
    public static object Read(DType dt, ReadOnlySpan<byte> s) => (dt.Kind, dt.ItemSize) switch
    {
        ('b', _) => s[0] != 0,
        ('i', 1) => (long)(sbyte)s[0],
        ('i', 2) => (long)BinaryPrimitives.ReadInt16LittleEndian(s),
        ('i', 4) => (long)BinaryPrimitives.ReadInt32LittleEndian(s),
        ('i', 8) => BinaryPrimitives.ReadInt64LittleEndian(s),
        ('u', 1) => (ulong)s[0],
        ('u', 2) => (ulong)BinaryPrimitives.ReadUInt16LittleEndian(s),
        ('u', 4) => (ulong)BinaryPrimitives.ReadUInt32LittleEndian(s),
        ('u', 8) => BinaryPrimitives.ReadUInt64LittleEndian(s),
        ('f', 2) => (double)BinaryPrimitives.ReadHalfLittleEndian(s),
        ('f', 4) => (double)BinaryPrimitives.ReadSingleLittleEndian(s),
        ('f', 8) => BinaryPrimitives.ReadDoubleLittleEndian(s),
        ('c', 8) => new Complex(BinaryPrimitives.ReadSingleLittleEndian(s), BinaryPrimitives.ReadSingleLittleEndian(s[4..])),
        ('c', 16) => new Complex(BinaryPrimitives.ReadDoubleLittleEndian(s), BinaryPrimitives.ReadDoubleLittleEndian(s[8..])),
        ('S', _) => s.ToArray(),
        ('U', _) => ReadUnicode(s),
        _ => s.ToArray(),
    };

    private static string ReadUnicode(ReadOnlySpan<byte> s)
    {
        var sb = new System.Text.StringBuilder();
        for (int i = 0; i + 4 <= s.Length; i += 4)
        {
            int cp = BinaryPrimitives.ReadInt32LittleEndian(s[i..]);
            if (cp == 0) break;
            sb.Append(char.ConvertFromUtf32(cp));
        }
        return sb.ToString();
    }

    public static void Convert(DType from, ReadOnlySpan<byte> src, DType to, Span<byte> dst, long count)
    {
        int si = from.ItemSize, di = to.ItemSize;
        for (long i = 0; i < count; i++)
        {
            var s = src.Slice((int)(i * si), si);
            var d = dst.Slice((int)(i * di), di);
            switch (from.Kind)
            {
                case 'f':
                    WriteFloat(to, d, from.ItemSize switch { 2 => (double)BinaryPrimitives.ReadHalfLittleEndian(s), 4 => BinaryPrimitives.ReadSingleLittleEndian(s), _ => BinaryPrimitives.ReadDoubleLittleEndian(s) });
                    break;
                case 'c':
                    WriteFloat(to, d, from.ItemSize == 8 ? BinaryPrimitives.ReadSingleLittleEndian(s) : BinaryPrimitives.ReadDoubleLittleEndian(s),
                        from.ItemSize == 8 ? BinaryPrimitives.ReadSingleLittleEndian(s[4..]) : BinaryPrimitives.ReadDoubleLittleEndian(s[8..]));
                    break;
                default:
                    Int128 v = Read(from, s) switch { bool b => b ? 1 : 0, long l => l, ulong u => u, _ => 0 };
                    WriteInt(to, d, v);
                    break;
            }
        }
    }

    private static void WriteInt(DType to, Span<byte> d, Int128 v)
    {
        switch (to.Kind)
        {
            case 'b': d[0] = v != 0 ? (byte)1 : (byte)0; return;
            case 'f': WriteFloat(to, d, (double)v); return;
            case 'c': WriteFloat(to, d, (double)v); return;
        }
        ulong bits = (ulong)(v & ulong.MaxValue);
        switch (to.ItemSize)
        {
            case 1: d[0] = (byte)bits; break;
            case 2: BinaryPrimitives.WriteUInt16LittleEndian(d, (ushort)bits); break;
            case 4: BinaryPrimitives.WriteUInt32LittleEndian(d, (uint)bits); break;
            default: BinaryPrimitives.WriteUInt64LittleEndian(d, bits); break;
        }
    }

    private static void WriteFloat(DType to, Span<byte> d, double re, double im = 0)
    {
        switch (to.Kind, to.ItemSize)
        {
            case ('b', _): d[0] = re != 0 || im != 0 ? (byte)1 : (byte)0; break;
            case ('f', 2): BinaryPrimitives.WriteHalfLittleEndian(d, (Half)re); break;
            case ('f', 4): BinaryPrimitives.WriteSingleLittleEndian(d, (float)re); break;
            case ('f', 8): BinaryPrimitives.WriteDoubleLittleEndian(d, re); break;
            case ('c', 8): BinaryPrimitives.WriteSingleLittleEndian(d, (float)re); BinaryPrimitives.WriteSingleLittleEndian(d[4..], (float)im); break;
            case ('c', 16): BinaryPrimitives.WriteDoubleLittleEndian(d, re); BinaryPrimitives.WriteDoubleLittleEndian(d[8..], im); break;
            default:
                // float -> int: C cast truncates toward zero; out of range wraps through a 64-bit integer like x86 numpy.
                Int128 v = double.IsNaN(re) || double.IsInfinity(re) ? (to.Kind == 'u' ? 0 : long.MinValue)
                    : re >= 0 ? (Int128)(ulong)Math.Min(Math.Truncate(re), 18446744073709551615.0) : (Int128)(long)Math.Max(Math.Truncate(re), -9223372036854775808.0);
                WriteInt(to, d, v);
                break;
        }
    }
}
