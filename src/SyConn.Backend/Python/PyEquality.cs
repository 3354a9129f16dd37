using System.Numerics;
using System.Runtime.CompilerServices;
using SyConn.Backend.Arrays;

namespace SyConn.Backend.Python;

/// <summary>
/// Python's <c>==</c> and <c>hash()</c> on the value model: numbers compare by value across
/// bool, int, float, complex and numpy scalars; bytes and bytearray by content; tuples, lists and
/// dicts element-wise; sets regardless of order; ndarrays by dtype, shape and content (object arrays element-wise,
/// as containers).
/// </summary>
public static class PyEquality
{
    /// <summary>An equality comparer with Python's dict-key semantics (thread-safe, stateless).</summary>
    public static readonly IEqualityComparer<object> Comparer = new KeyComparer();

    /// <summary>Nesting beyond which <see cref="AreEqual(object?, object?)"/> gives up (Python's recursion limit is 1000 too).</summary>
    public const int MaxDepth = 1000;

    /// <summary>
    /// Python's <c>a == b</c> (ndarrays: whole-array equality). Shared references and cycles are followed once:
    /// a pair of containers already being compared (or found equal) counts as equal, so a list that holds itself
    /// equals another that holds itself the same way (where Python raises RecursionError), and two values of
    /// <c>[x, x]</c> nested n times compare in time linear in n, not 2^n.
    /// </summary>
    /// <exception cref="InvalidOperationException">The values nest deeper than <see cref="MaxDepth"/> levels or than the call stack allows.</exception>
    public static bool AreEqual(object? a, object? b)
    {
        PairSet? pairs = null;
        return AreEqual(a, b, 0, ref pairs);
    }

    private static bool AreEqual(object? a, object? b, int depth, ref PairSet? pairs)
    {
        if (ReferenceEquals(a, b)) return true;
        a ??= PyNone.Value;
        b ??= PyNone.Value;
        if (a is NpScalar sa && sa.DType.Kind != 'V') a = sa.ToObject();
        if (b is NpScalar sb && sb.DType.Kind != 'V') b = sb.ToObject();
        if (IsNumber(a) && IsNumber(b)) return NumbersEqual(a, b);
        switch (a)
        {
            case string s: return b is string t && string.Equals(s, t, StringComparison.Ordinal);
            case PyNone: return b is PyNone;
            case PyBytes ba: return BytesOf(b) is { } bb && ba.Data.Span.SequenceEqual(bb.Span);
            case PyByteArray bra: return BytesOf(b) is { } bb2 && bra.Data.Span.SequenceEqual(bb2.Span);
            case PyTuple ta:
                if (b is not PyTuple tb || ta.Count != tb.Count) return false;
                if (!Enter(a, b, depth, ref pairs)) return true;
                for (int i = 0; i < ta.Count; i++) if (!AreEqual(ta[i], tb[i], depth + 1, ref pairs)) return false;
                return true;
            case PyList la:
                if (b is not PyList lb || la.Count != lb.Count) return false;
                if (!Enter(a, b, depth, ref pairs)) return true;
                for (int i = 0; i < la.Count; i++) if (!AreEqual(la[i], lb[i], depth + 1, ref pairs)) return false;
                return true;
            case PyDict da:
                if (b is not PyDict db || da.Count != db.Count) return false;
                if (!Enter(a, b, depth, ref pairs)) return true;
                foreach (var kv in da)
                    if (!db.TryGetValue(kv.Key, out var v) || !AreEqual(kv.Value, v, depth + 1, ref pairs)) return false;
                return true;
            case PySet seta:
                return b is PySet setb && seta.SetEquals(setb);
            case NdArray { Objects: { } oa } na:
                // Object arrays are containers: an array that holds itself is compared as a cycle, like a list.
                if (b is not NdArray { Objects: { } ob } other || na.DType != other.DType || !na.Shape.SequenceEqual(other.Shape)) return false;
                if (!Enter(a, b, depth, ref pairs)) return true;
                for (int i = 0; i < oa.Count; i++) if (!AreEqual(oa[i], ob[i], depth + 1, ref pairs)) return false;
                return true;
            case NdArray na: return b is NdArray nb && na.Equals(nb);
            case DType dta: return b is DType dtb && dta.Equals(dtb);
            default: return a.Equals(b);
        }
    }

    /// <summary>
    /// Notes that containers <paramref name="a"/> and <paramref name="b"/> are compared; false when that pair is
    /// already being compared further up or was found equal (the answer then is "equal": one comparison is a
    /// conjunction, so a pair that turns out unequal makes the whole result false anyway).
    /// </summary>
    private static bool Enter(object a, object b, int depth, ref PairSet? pairs)
    {
        if (depth >= MaxDepth) throw new InvalidOperationException($"structure too deep to compare (more than {MaxDepth} levels)");
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
            throw new InvalidOperationException($"structure too deep to compare ({depth} levels exhaust the call stack)");
        // The two outermost levels need no pair bookkeeping (what they share is met again further down, where
        // pairs are kept), so comparing ordinary keys and entries allocates nothing.
        if (depth < 2 && pairs is null) return true;
        pairs ??= new PairSet();
        return pairs.Add((a, b));
    }

    /// <summary>Pairs of objects by identity.</summary>
    private sealed class PairSet() : HashSet<(object, object)>(PairComparer.Instance);

    private sealed class PairComparer : IEqualityComparer<(object, object)>
    {
        public static readonly PairComparer Instance = new();
        public bool Equals((object, object) x, (object, object) y) => ReferenceEquals(x.Item1, y.Item1) && ReferenceEquals(x.Item2, y.Item2);
        public int GetHashCode((object, object) p) => HashCode.Combine(RuntimeHelpers.GetHashCode(p.Item1), RuntimeHelpers.GetHashCode(p.Item2));
    }

    // The null arm must be typed: a bare null would convert to an empty ReadOnlyMemory, making b'' equal to anything.
    private static ReadOnlyMemory<byte>? BytesOf(object o) => o switch
    {
        PyBytes b => b.Data,
        PyByteArray ba => (ReadOnlyMemory<byte>)ba.Data,
        _ => (ReadOnlyMemory<byte>?)null,
    };

    private static bool IsNumber(object o) => o is bool or long or int or ulong or BigInteger or double or float or Complex;

    private static bool NumbersEqual(object a, object b)
    {
        if (PyInt.TryGetBigInteger(a, out var ia) && PyInt.TryGetBigInteger(b, out var ib)) return ia == ib;
        var ca = ToComplex(a);
        var cb = ToComplex(b);
        if (ca.Imaginary != cb.Imaginary) return false;
        // Exact comparison of an integer with a float, as Python does.
        if (PyInt.TryGetBigInteger(a, out ia)) return IntEqualsFloat(ia, cb.Real);
        if (PyInt.TryGetBigInteger(b, out ib)) return IntEqualsFloat(ib, ca.Real);
        return ca.Real == cb.Real;
    }

    private static bool IntEqualsFloat(BigInteger i, double d) =>
        !double.IsNaN(d) && !double.IsInfinity(d) && Math.Truncate(d) == d && new BigInteger(d) == i;

    private static Complex ToComplex(object o) => o switch
    {
        Complex c => c,
        double d => d,
        float f => f,
        _ => PyInt.TryGetBigInteger(o, out var b) ? (double)b : double.NaN,
    };

    private sealed class KeyComparer : IEqualityComparer<object>
    {
        // Most store keys are ints and most attribute-dict keys are str: those compare and hash without the general
        // walk (a str equals only a str or a numpy str_ scalar, which takes the walk).
        public new bool Equals(object? x, object? y) =>
            x is long a && y is long b ? a == b
            : x is string s && y is string t ? string.Equals(s, t, StringComparison.Ordinal)
            : AreEqual(x, y);

        public int GetHashCode(object obj)
        {
            if (obj is long l) return l.GetHashCode();
            if (obj is string s) return string.GetHashCode(s, StringComparison.Ordinal);
            Dictionary<object, int>? memo = null;
            return Hash(obj, 0, ref memo);
        }

        // Tuples and frozensets nested in one another are hashed once each (memo by identity, started three levels
        // down, so that ordinary tuple keys allocate nothing): a tuple of (x, x) nested n times takes n steps, not 2^n. Mutable containers hash by identity
        // (they are unhashable in Python), so no cycle can be met here.
        private static int Hash(object? obj, int depth, ref Dictionary<object, int>? memo)
        {
            if (depth > 100) return 0;
            switch (obj)
            {
                case null or PyNone: return 0x5a5a;
                case long l: return l.GetHashCode();
                case string s: return string.GetHashCode(s, StringComparison.Ordinal);
                case bool b: return (b ? 1L : 0L).GetHashCode();
                case int i: return ((long)i).GetHashCode();
                case BigInteger bi: return bi >= long.MinValue && bi <= long.MaxValue ? ((long)bi).GetHashCode() : bi.GetHashCode();
                case ulong u: return u <= long.MaxValue ? ((long)u).GetHashCode() : new BigInteger(u).GetHashCode();
                case double d: return HashFloat(d);
                case float f: return HashFloat(f);
                case Complex c: return c.Imaginary == 0 ? HashFloat(c.Real) : c.GetHashCode();
                case NpScalar s: return s.DType.Kind == 'V' ? s.Raw.Length : Hash(s.ToObject(), depth + 1, ref memo);
                case PyBytes pb: return pb.GetHashCode();
                case PyTuple t:
                {
                    if (memo is not null && memo.TryGetValue(t, out int known)) return known;
                    var h = new HashCode();
                    h.Add(t.Count);
                    foreach (var item in t)
                    {
                        if (depth >= 2 && item is PyTuple or PySet) memo ??= new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
                        h.Add(Hash(item, depth + 1, ref memo));
                    }
                    int r = h.ToHashCode();
                    memo?.TryAdd(t, r);
                    return r;
                }
                case PySet set:
                {
                    if (memo is not null && memo.TryGetValue(set, out int known)) return known;
                    int h = set.Count;
                    foreach (var item in set)
                    {
                        if (depth >= 2 && item is PyTuple or PySet) memo ??= new Dictionary<object, int>(ReferenceEqualityComparer.Instance);
                        h ^= Hash(item, depth + 1, ref memo);
                    }
                    memo?.TryAdd(set, h);
                    return h;
                }
                case DType dt: return dt.GetHashCode();
                default: return RuntimeHelpers.GetHashCode(obj);
            }
        }

        private static int HashFloat(double d)
        {
            if (Math.Truncate(d) == d && !double.IsInfinity(d))
            {
                if (d >= -9.2233720368547758E18 && d < 9.2233720368547758E18) return ((long)d).GetHashCode();
                var bi = new BigInteger(d);
                return bi.GetHashCode();
            }
            return d.GetHashCode();
        }
    }
}
