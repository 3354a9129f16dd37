using System.Diagnostics;
using System.Globalization;

namespace SyConn.Backend.Cli;

/// <summary>
/// Progress of one long phase on stderr: a bar redrawn in place when stderr is a terminal, plain lines
/// (<c>LABEL N/TOTAL UNIT</c>) about once a second and at the end otherwise. A null writer reports nothing.
/// Thread-safe: <see cref="Add"/> may be called from several workers.
/// </summary>
public sealed class ProgressBar : IDisposable
{
    private static readonly TimeSpan LineInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan BarInterval = TimeSpan.FromMilliseconds(100);
    private readonly TextWriter? _output;
    private readonly string _label;
    private readonly string _unit;
    private readonly bool _terminal;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Lock _gate = new();
    private long _done;
    private long _total;
    private TimeSpan _next;
    private bool _finished;
    private int _lastWidth;

    /// <summary>Starts a phase of <paramref name="total"/> items (0 or less: unknown).</summary>
    /// <param name="output">Where to report (normally stderr); null for silence.</param>
    /// <param name="label">What the phase does, e.g. <c>verify</c>.</param>
    /// <param name="total">How many items the phase has, if known.</param>
    /// <param name="unit">What an item is, e.g. <c>entries</c>.</param>
    /// <param name="terminal">Draw a bar (null: when <paramref name="output"/> is the console's stderr and that is a terminal).</param>
    public ProgressBar(TextWriter? output, string label, long total, string unit = "entries", bool? terminal = null)
    {
        _output = output;
        _label = label;
        _total = total;
        _unit = unit;
        _terminal = terminal ?? (output is not null && ReferenceEquals(output, Console.Error) && !Console.IsErrorRedirected);
        _next = _terminal ? BarInterval : LineInterval;
    }

    /// <summary>Items done so far.</summary>
    public long Done => Interlocked.Read(ref _done);

    /// <summary>Changes the total (e.g. once it is known).</summary>
    public void SetTotal(long total) => Interlocked.Exchange(ref _total, total);

    /// <summary>Counts <paramref name="n"/> more items done and reports when it is time to.</summary>
    public void Add(long n = 1)
    {
        long done = Interlocked.Add(ref _done, n);
        if (_output is null || _clock.Elapsed < _next) return;
        lock (_gate)
        {
            if (_finished || _clock.Elapsed < _next) return;
            Report(done, final: false);
            _next = _clock.Elapsed + (_terminal ? BarInterval : LineInterval);
        }
    }

    /// <summary>Counts the items of <paramref name="items"/> as they are enumerated.</summary>
    public IEnumerable<T> Count<T>(IEnumerable<T> items)
    {
        foreach (var item in items)
        {
            Add();
            yield return item;
        }
    }

    /// <summary>Reports the final count once (also done by <see cref="Dispose"/>).</summary>
    public void Finish()
    {
        if (_output is null) return;
        lock (_gate)
        {
            if (_finished) return;
            _finished = true;
            Report(Done, final: true);
        }
    }

    /// <inheritdoc cref="Finish"/>
    public void Dispose() => Finish();

    private void Report(long done, bool final)
    {
        long total = Interlocked.Read(ref _total);
        string counts = total > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{done}/{total} {_unit}")
            : string.Create(CultureInfo.InvariantCulture, $"{done} {_unit}");
        string time = string.Create(CultureInfo.InvariantCulture, $"{_clock.Elapsed.TotalSeconds:0.0} s");
        if (!_terminal)
        {
            _output!.WriteLine($"{_label} {counts}{(final ? $" in {time}" : "")}");
            return;
        }
        const int width = 30;
        int filled = total > 0 ? (int)Math.Clamp(done * width / total, 0, width) : (int)(done / 64 % (width + 1));
        string bar = total > 0 ? new string('#', filled) + new string('-', width - filled) : new string('-', filled) + "#" + new string('-', width - filled);
        string line = $"{_label} [{bar}] {counts} {time}";
        string pad = line.Length < _lastWidth ? new string(' ', _lastWidth - line.Length) : "";
        _lastWidth = line.Length;
        _output!.Write("\r" + line + pad);
        if (final) _output.WriteLine();
        _output.Flush();
    }
}
