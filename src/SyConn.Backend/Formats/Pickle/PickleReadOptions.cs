namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// Safety limits of <see cref="Pickle.Load(ReadOnlyMemory{byte}, PickleReadOptions?, string?)"/> and of what is done
/// with the values it returns. The defaults accept every SyConn store file while keeping a hostile file from
/// exhausting memory or the call stack.
/// </summary>
/// <remarks>
/// <para>This is the one place for the limits of pickled values: the reader checks each before it allocates, and
/// <see cref="Python.TypedJson.ToJson(object?, PickleReadOptions?)"/> (the <c>dump</c> command) takes
/// <see cref="MaxDepth"/> and <see cref="MaxExpandedNodes"/> from the same object. Limits of other formats
/// (<c>.npy</c>, <c>.npz</c>, KNOSSOS) live elsewhere.</para>
/// <para>Shared references and cycles: a pickle may hand out one object at several places (the memo), and a
/// container may hold itself, directly or further down (<c>l = []; l.append(l)</c>). Both load as Python loads
/// them: the result shares the object. Equality, hashing, repr, deep copies and the writer follow such
/// references without running forever; typed JSON writes a cycle's inner occurrence as a <c>ref</c> node and
/// other shared objects in full at each place, within <see cref="MaxExpandedNodes"/>.</para>
/// <para>Immutable after construction; safe to share between threads.</para>
/// </remarks>
public sealed record PickleReadOptions
{
    /// <summary>The defaults.</summary>
    public static readonly PickleReadOptions Default = new();

    /// <summary>
    /// Maximum nesting of containers and MARKs (default 1000, like Python's recursion limit). The reader checks the
    /// nesting of the value it returns, shared objects included (a cycle's way back to an enclosing container does
    /// not count), so that code walking the value never runs out of call stack; typed JSON refuses values nested
    /// deeper than this too. A deeper pickle is refused with an <see cref="InvalidDataException"/>, however deep.
    /// </summary>
    public int MaxDepth { get; init; } = 1000;

    /// <summary>Maximum number of memo entries (default 2^26).</summary>
    public int MaxMemoEntries { get; init; } = 1 << 26;

    /// <summary>Maximum number of items put into containers and array elements of zero-size dtypes, over the whole pickle (default 2^28).</summary>
    public long MaxTotalElements { get; init; } = 1L << 28;

    /// <summary>Maximum byte length of one LONG1/LONG4 integer (default 1 MiB).</summary>
    public int MaxIntBytes { get; init; } = 1 << 20;

    /// <summary>
    /// Maximum number of nodes that shared references add when a value is written out in full (typed JSON, the
    /// <c>dump</c> command), default 100 000. Writing a shared container a second time repeats all of its nodes: a
    /// pickle of a few hundred bytes can describe <c>x = [x0, x0]</c> nested 60 times, 2^60 nodes when written out.
    /// The size is computed before anything is written, and values beyond the limit are refused with an
    /// <see cref="InvalidDataException"/>. Nodes written for the first occurrence of each object do not count, so
    /// a value without shared containers is never refused by this limit (SyConn's files share only strings,
    /// dtypes and empty bytes, which are leaves). At the default, the <c>dump</c> text of the repeated nodes stays
    /// in the tens of megabytes (a node of an indented dump takes 250 bytes or more).
    /// </summary>
    public long MaxExpandedNodes { get; init; } = 100_000;

    /// <summary>
    /// When true, a short ASCII str (at most 32 bytes, as attribute names, dtype codes and module names are) is taken
    /// from a process-wide table of such strings, so that the strings that many small pickles repeat (every row of a BT
    /// store) are one object instead of one per pickle. Default false. Equal strings are then one object within a pickle
    /// too; written again, such a value may come out with the string once and fetched from the memo after that, which
    /// reads back as the same value.
    /// </summary>
    public bool ShareShortStrings { get; init; }
}
