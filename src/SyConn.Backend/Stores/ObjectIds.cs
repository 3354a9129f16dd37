using SyConn.Backend.Arrays;

namespace SyConn.Backend.Stores;

/// <summary>SyConn's object IDs (supervoxel and cell IDs: unsigned 64-bit) from arrays of any integer dtype.</summary>
public static class ObjectIds
{
    /// <summary>
    /// The IDs in <paramref name="array"/> (flattened in C order) as <c>ulong</c>: any integer dtype and byte
    /// order; signed values must not be negative.
    /// </summary>
    /// <param name="array">The IDs, e.g. read from a <c>.npy</c> file.</param>
    /// <param name="source">What the array is (a file name), for error messages.</param>
    /// <exception cref="InvalidDataException">Not an integer array, or a negative ID (the message gives its index).</exception>
    public static ulong[] FromArray(NdArray array, string source)
    {
        ArgumentNullException.ThrowIfNull(array);
        if (array.Objects is not null || !array.DType.IsInteger)
            throw new InvalidDataException($"{source}: IDs must be an integer array, got dtype {array.DType.Str}");
        var native = array.ToNativeC();
        if (array.DType.Kind == 'u') return native.AsType(DType.UInt64).ToArray<ulong>();
        var signed = native.AsType(DType.Int64).ToArray<long>();
        int negative = Array.FindIndex(signed, v => v < 0);
        if (negative >= 0) throw new InvalidDataException($"{source}: the ID at index {negative} is negative ({signed[negative]})");
        return Array.ConvertAll(signed, v => (ulong)v);
    }
}
