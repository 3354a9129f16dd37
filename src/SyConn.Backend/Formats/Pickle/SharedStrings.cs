namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// A process-wide table of short ASCII strings read from pickles (<see cref="PickleReadOptions.ShareShortStrings"/>), so
/// that the attribute names, dtype codes and module names that every row of a store repeats are allocated once.
/// </summary>
/// <remarks>
/// A fixed table of <see cref="Slots"/> slots, each holding the last string that hashed to it: a lookup compares the
/// bytes with the slot's string and makes a new string (replacing the slot's) when they differ, so the table never
/// grows and a string that misses costs what it did without the table. Thread-safe without locks: a slot holds a
/// reference to an immutable string, and a reader sees either the old or the new one.
/// </remarks>
internal static class SharedStrings
{
    /// <summary>The longest string (in bytes) the table holds.</summary>
    public const int MaxBytes = 32;

    private const int Slots = 4096;

    private static readonly string?[] Table = new string?[Slots];

    /// <summary>The string of <paramref name="utf8"/> when it is ASCII (null otherwise: the caller decodes it).</summary>
    public static string? Get(ReadOnlySpan<byte> utf8)
    {
        if (utf8.Length == 0) return "";
        if (utf8.Length > MaxBytes || !System.Text.Ascii.IsValid(utf8)) return null;
        uint h = 2166136261;
        foreach (byte b in utf8) h = (h ^ b) * 16777619;
        ref string? slot = ref Table[h & (Slots - 1)];
        var s = slot;
        if (s is not null && s.Length == utf8.Length && System.Text.Ascii.Equals(utf8, s)) return s;
        s = System.Text.Encoding.ASCII.GetString(utf8);
        slot = s;
        return s;
    }
}
