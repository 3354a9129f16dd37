namespace SyConn.Backend.Python;

/// <summary>
/// A value the pickler can mark as written in the pickle it is writing (the memo index it got, with the stamp of that
/// pickler run), so that finding it again costs no lookup in a table of every object written.
/// </summary>
internal interface IPickleMarked
{
    /// <summary>The mark: stamp and memo index, owned by the run whose stamp it holds while that run lasts.</summary>
    ref long PickleMark { get; }
}
