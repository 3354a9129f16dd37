using System.Globalization;

namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>
/// The fuzzing budget: <c>SYCONN_FUZZ_SECONDS</c> (default 10; <c>scripts/test.sh</c> sets 20, or 240 under
/// <c>CI=true</c>) is the total for all fuzz harnesses, shared out equally among the harnesses listed here.
/// </summary>
/// <remarks>Every harness must be listed, or <see cref="For"/> refuses its name: a harness added without its share
/// would silently make the total longer than the CI budget.</remarks>
internal static class FuzzBudget
{
    /// <summary>Every fuzz harness of the test suite.</summary>
    internal static readonly string[] Harnesses =
    [
        "pickle", "pickle-index", "bt-rows", "typed-entries",
        "npy", "npz", "lz4", "knossos-config", "knossos-cube", "hdf5",
    ];

    /// <summary>The total budget.</summary>
    public static double TotalSeconds =>
        double.TryParse(Environment.GetEnvironmentVariable("SYCONN_FUZZ_SECONDS"), NumberStyles.Float, CultureInfo.InvariantCulture, out var s) ? s : 10.0;

    /// <summary>The share of harness <paramref name="name"/>.</summary>
    public static TimeSpan For(string name)
    {
        if (!Harnesses.Contains(name)) throw new ArgumentException($"unknown fuzz harness '{name}'", nameof(name));
        return TimeSpan.FromSeconds(TotalSeconds / Harnesses.Length);
    }
}
