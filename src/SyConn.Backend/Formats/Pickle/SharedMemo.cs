namespace SyConn.Backend.Formats.Pickle;

/// <summary>
/// The memo entries that values of an indexed pickle fetch from one another (<see cref="PickleDictIndex"/>): the
/// attribute-name strings, dtypes and numpy globals of a SyConn file. Every value read looks some of them up (a W2
/// attribute dict about fifteen), so the low indices, where a pickler puts what it meets first, are held in an
/// array; higher ones in a dictionary.
/// </summary>
/// <remarks>Filled by one thread while the index is built, then only read, from any number of threads.</remarks>
internal sealed class SharedMemo
{
    private const int DenseLimit = 4096;
    private (object? Value, int Height)[] _dense = [];
    private Dictionary<long, (object Value, int Height)>? _sparse;

    /// <summary>Sets entry <paramref name="index"/> (a memo index of the whole pickle, never negative).</summary>
    public void Set(long index, (object Value, int Height) entry)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        if (index < DenseLimit)
        {
            if (index >= _dense.Length) Array.Resize(ref _dense, (int)Math.Min(DenseLimit, Math.Max(16, 2 * (index + 1))));
            _dense[index] = entry;
            return;
        }
        (_sparse ??= [])[index] = entry;
    }

    /// <summary>Entry <paramref name="index"/>, if set.</summary>
    public bool TryGetValue(long index, out (object Value, int Height) entry)
    {
        var dense = _dense;
        if ((ulong)index < (ulong)dense.Length)
        {
            var (v, h) = dense[index];
            entry = (v!, h);
            return v is not null;
        }
        if (_sparse is { } sparse && index >= DenseLimit) return sparse.TryGetValue(index, out entry);
        entry = default;
        return false;
    }

    /// <summary>The objects held.</summary>
    public IEnumerable<object> Values
    {
        get
        {
            foreach (var (v, _) in _dense)
                if (v is not null) yield return v;
            if (_sparse is not null)
                foreach (var (v, _) in _sparse.Values) yield return v;
        }
    }
}
