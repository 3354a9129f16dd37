namespace SyConn.Backend.Arrays;

/// <summary>Which conversions between numeric dtypes are allowed (numpy's <c>casting</c> argument).</summary>
public enum CastingRule
{
    /// <summary>
    /// Only conversions that keep every value (numpy's <c>'safe'</c>): to a wider integer of the same signedness,
    /// unsigned to a wider signed, integers to a float that numpy deems wide enough (int64 and uint64 to float64,
    /// as numpy), float to a wider float or complex, bool to anything numeric. The default of the typed accessors.
    /// </summary>
    Safe,

    /// <summary>
    /// Safe conversions plus narrowing within a kind order bool, unsigned, signed, float, complex (numpy's
    /// <c>'same_kind'</c>): float64 to float32, int64 to int8, uint64 to int64; never float to integer.
    /// </summary>
    SameKind,

    /// <summary>Any numeric conversion, as C casts do (numpy's <c>'unsafe'</c>, <c>astype</c>'s default): integers wrap, floats truncate toward zero.</summary>
    Unsafe,
}

/// <summary>numpy's casting table for the numeric dtypes.</summary>
public static class Casting
{
    /// <summary>True if numpy's <c>can_cast(from, to, casting)</c> is true for these numeric dtypes (byte order does not matter).</summary>
    /// <exception cref="ArgumentNullException">A dtype is null.</exception>
    public static bool CanCast(DType from, DType to, CastingRule casting)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(to);
        if (!from.IsNumeric || !to.IsNumeric) return from.Kind == to.Kind && from.ItemSize == to.ItemSize;
        if (casting == CastingRule.Unsafe) return true;
        if (IsSafe(from, to)) return true;
        return casting == CastingRule.SameKind && KindOrder(from.Kind) <= KindOrder(to.Kind);
    }

    private static bool IsSafe(DType from, DType to)
    {
        int fs = from.ItemSize, ts = to.ItemSize;
        return from.Kind switch
        {
            'b' => true,
            'u' => to.Kind switch
            {
                'u' => ts >= fs,
                'i' => ts > fs,
                'f' => ts >= FloatSizeFor(fs),
                'c' => ts >= 2 * FloatSizeFor(fs),
                _ => false,
            },
            'i' => to.Kind switch
            {
                'i' => ts >= fs,
                'f' => ts >= FloatSizeFor(fs),
                'c' => ts >= 2 * FloatSizeFor(fs),
                _ => false,
            },
            'f' => to.Kind switch
            {
                'f' => ts >= fs,
                'c' => ts >= 2 * fs,
                _ => false,
            },
            'c' => to.Kind == 'c' && ts >= fs,
            _ => false,
        };
    }

    // The smallest float numpy casts an integer of this size to safely (int64 and uint64 go to float64 although it rounds them).
    private static int FloatSizeFor(int intSize) => intSize switch { 1 => 2, 2 => 4, _ => 8 };

    private static int KindOrder(char kind) => kind switch { 'b' => 0, 'u' => 1, 'i' => 2, 'f' => 3, _ => 4 };

    /// <summary>numpy's spelling of the rule (<c>safe</c>, <c>same_kind</c>, <c>unsafe</c>).</summary>
    public static string Name(CastingRule casting) => casting switch
    {
        CastingRule.Safe => "safe",
        CastingRule.SameKind => "same_kind",
        _ => "unsafe",
    };
}
