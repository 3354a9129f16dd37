namespace SyConn.Backend.Storage;

/// <summary>
/// Reading ahead of a caller that reads items 0 .. n-1 of a store one after the other: after <see cref="After"/> reads
/// in order, a thread-pool worker on another core reads the items that follow, from <see cref="Lead"/> past the
/// caller's item (so the two rarely read the same one), up to a window past it: at most <c>maxItems</c> items and, when
/// a distance is given, at most <c>maxDistance</c> of it (bytes of the store's file, say). A worker that filled the
/// window is started again only once the caller has used up a sixteenth of it. The pickle index of file stores and
/// the rows of BT stores use it.
/// </summary>
/// <remarks>
/// The read action must keep what it reads as if the caller had read it, and must be safe beside the caller's own
/// reads. If it throws (a damaged item, a limit), reading ahead ends for good and the item is left for the caller,
/// whose own read reports it. Thread-safe: <see cref="Noted"/> from any thread (a heuristic: reads from several threads
/// at once only start the worker less often).
/// </remarks>
internal sealed class ReadAhead
{
    /// <summary>Reads in order before the worker starts.</summary>
    public const int After = 16;

    /// <summary>How far past the caller's item the worker starts.</summary>
    public const int Lead = 4;

    private readonly int _count, _maxItems;
    private readonly long _maxDistance;
    private readonly Func<int, int, long>? _distance;
    private readonly Action<int> _read;
    private int _last = -2, _run, _next, _busy;
    private volatile bool _off;

    /// <param name="count">Number of items.</param>
    /// <param name="read">Reads and keeps item i.</param>
    /// <param name="maxItems">The most items the worker reads past the caller's.</param>
    /// <param name="distance">The distance from the caller's item to item i (optional), with <paramref name="maxDistance"/> its most.</param>
    /// <param name="maxDistance">The most distance the worker reads past the caller's item.</param>
    public ReadAhead(int count, Action<int> read, int maxItems, Func<int, int, long>? distance = null, long maxDistance = long.MaxValue)
    {
        _count = count;
        _read = read;
        _maxItems = maxItems;
        _distance = distance;
        _maxDistance = maxDistance;
    }

    /// <summary>Whether no worker is reading ahead (for tests).</summary>
    public bool Idle => Volatile.Read(ref _busy) == 0;

    /// <summary>The caller read item <paramref name="index"/> (negative: an item outside the order, ignored).</summary>
    public void Noted(int index)
    {
        if (index < 0) return;
        if (index == Volatile.Read(ref _last) + 1)
        {
            if (++_run >= After && !_off) Start(index);
        }
        else _run = 0;
        Volatile.Write(ref _last, index);
    }

    /// <summary>Ends reading ahead for good; a worker under way stops after the item it is reading.</summary>
    public void Stop() => _off = true;

    private void Start(int cursor)
    {
        if (Environment.ProcessorCount < 2 || Done(cursor, _maxItems - _maxItems / 16, _maxDistance - _maxDistance / 16)
            || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static ahead => ahead.Work(), this, preferLocal: false);
    }

    private bool Done(int cursor) => Done(cursor, _maxItems, _maxDistance);

    private bool Done(int cursor, int items, long distance)
    {
        int next = Math.Max(Volatile.Read(ref _next), cursor + Lead);
        return next >= _count || next - cursor > items || (_distance is { } d && d(cursor, next) > distance);
    }

    private void Work()
    {
        while (true)
        {
            try
            {
                while (!_off)
                {
                    int cursor = Volatile.Read(ref _last);
                    if (cursor < 0 || Done(cursor)) break;
                    int next = Math.Max(Volatile.Read(ref _next), cursor + Lead);
                    _read(next);
                    Volatile.Write(ref _next, next + 1);
                }
            }
            catch (Exception)
            {
                // Whatever went wrong, the caller's own read of that item reports it; an exception must not leave
                // this thread-pool item, which would end the process.
                _off = true;
            }
            Volatile.Write(ref _busy, 0);
            // A caller that moved on while the worker was stopping found it busy: look again.
            int c = Volatile.Read(ref _last);
            if (_off || c < 0 || Done(c) || Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return;
        }
    }
}
