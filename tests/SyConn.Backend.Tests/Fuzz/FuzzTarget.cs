using SyConn.Backend.Tests.Infrastructure;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>One generated input: the bytes, and why it must be refused when the generator planted a known flaw (null otherwise).</summary>
internal sealed record FuzzInput(byte[] Data, string? MustRefuse = null);

/// <summary>
/// A reader under fuzzing: seeds (fixtures read in place and values built here), a generator (mutations of a seed, or
/// structure-aware inputs: valid containers with hostile contents), and the run of one input, which either returns
/// (a value) or throws one of the allowed exceptions with a message naming the input; anything else is a bug.
/// </summary>
internal abstract class FuzzTarget
{
    private List<byte[]>? _seeds;

    /// <summary>The harness name in <see cref="FuzzBudget"/>.</summary>
    public abstract string Name { get; }

    /// <summary>The name each input is read under; messages of refusals must contain it.</summary>
    public virtual string InputName => "fuzz-input";

    /// <summary>Seeds, loaded once from <paramref name="fixtures"/> (the shared fixtures folder) and built in code.</summary>
    protected abstract IEnumerable<byte[]> LoadSeeds(string fixtures);

    /// <summary>Prepares the target in the process that runs it (e.g. a scratch folder); <paramref name="fixtures"/> as for the seeds.</summary>
    public virtual void Setup(string fixtures, string scratch) => _seeds = LoadSeeds(fixtures).ToList();

    /// <summary>The seeds.</summary>
    public IReadOnlyList<byte[]> Seeds => _seeds ?? throw new InvalidOperationException("Setup first");

    /// <summary>Bytes worth planting for this format.</summary>
    protected virtual ReadOnlySpan<byte> Interesting => [0x00, 0xff, 0x7f, 0x80, 0x01];

    /// <summary>Input number <paramref name="index"/>: a pure function of the seeds, the run seed and the index, so that a crashing input can be regenerated.</summary>
    public FuzzInput Generate(int runSeed, long index)
    {
        var rng = new Random(unchecked((int)(runSeed * 1_000_003L + index * 7_919L)));
        return rng.Next(3) == 0 ? Structured(rng) : new FuzzInput(Mutate(Seeds[rng.Next(Seeds.Count)], rng));
    }

    /// <summary>A mutation of <paramref name="seed"/> (one to four byte mutations, sometimes repeated).</summary>
    protected virtual byte[] Mutate(byte[] seed, Random rng)
    {
        var d = ByteMutator.Mutate(seed, rng, Interesting);
        if (rng.Next(4) == 0) d = ByteMutator.Mutate(d, rng, Interesting);
        return d;
    }

    /// <summary>A structure-aware input: a valid container with hostile contents.</summary>
    protected abstract FuzzInput Structured(Random rng);

    /// <summary>Runs the reader on <paramref name="data"/>; returns true when a value was produced (after checking it).</summary>
    public abstract bool Run(byte[] data);

    /// <summary>Whether <paramref name="e"/> is an allowed refusal: a documented type with a message naming the input.</summary>
    public virtual string? Disallowed(Exception e)
    {
        if (e is not InvalidDataException && !ExtraAllowed(e))
            return $"{e.GetType().FullName} is not an allowed outcome";
        if (!e.Message.Contains(InputName, StringComparison.Ordinal))
            return $"the message does not name the input '{InputName}'";
        if (LooksBare(e.Message))
            return "the message is only a .NET exception text";
        return null;
    }

    /// <summary>Types besides InvalidDataException that this reader documents (e.g. NotSupportedException for remote datasets).</summary>
    protected virtual bool ExtraAllowed(Exception e) => false;

    private static readonly string[] BareTexts =
    [
        "Arithmetic operation resulted in an overflow", "Index was outside the bounds", "Object reference not set",
        "Specified argument was out of the range", "Unable to cast object",
    ];

    /// <summary>A message that is (mostly) a .NET runtime text, without what was wrong where.</summary>
    private static bool LooksBare(string message)
    {
        foreach (var t in BareTexts)
        {
            int at = message.IndexOf(t, StringComparison.Ordinal);
            if (at >= 0 && at < 40) return true;
        }
        return false;
    }
}
