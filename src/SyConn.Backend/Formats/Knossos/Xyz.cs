namespace SyConn.Backend.Formats.Knossos;

/// <summary>
/// An integer triple in KNOSSOS order (x, y, z): voxel coordinates, box sizes, dataset boundaries and
/// cube shapes. Immutable; thread-safe.
/// </summary>
/// <param name="X">The x component (fastest-varying axis in cube files).</param>
/// <param name="Y">The y component.</param>
/// <param name="Z">The z component (slowest-varying axis in cube files).</param>
public readonly record struct Xyz(long X, long Y, long Z)
{
    /// <summary>Component by axis index: 0 = x, 1 = y, 2 = z.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The axis is not 0, 1 or 2.</exception>
    public long this[int axis] => axis switch
    {
        0 => X,
        1 => Y,
        2 => Z,
        _ => throw new ArgumentOutOfRangeException(nameof(axis), axis, "axis must be 0 (x), 1 (y) or 2 (z)"),
    };

    /// <summary>Creates a triple from exactly three values in x, y, z order.</summary>
    /// <exception cref="ArgumentException"><paramref name="xyz"/> does not hold exactly three values.</exception>
    public static Xyz From(ReadOnlySpan<long> xyz)
    {
        if (xyz.Length != 3) throw new ArgumentException($"expected 3 values (x, y, z), got {xyz.Length}", nameof(xyz));
        return new Xyz(xyz[0], xyz[1], xyz[2]);
    }

    /// <summary>The product X*Y*Z (checked).</summary>
    public long Product => checked(X * Y * Z);

    /// <summary>The components as a new array <c>[x, y, z]</c>.</summary>
    public long[] ToArray() => [X, Y, Z];

    /// <inheritdoc/>
    public override string ToString() => $"({X}, {Y}, {Z})";
}
