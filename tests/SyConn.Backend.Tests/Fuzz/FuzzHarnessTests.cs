using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Fuzz;

/// <summary>
/// The fuzz harnesses of the non-pickle readers, each run in a child process for its share of
/// <c>SYCONN_FUZZ_SECONDS</c> (<see cref="Infrastructure.FuzzBudget"/>): every input must give a value or an
/// InvalidDataException (NotSupportedException for remote KNOSSOS datasets) whose message names the input; inputs
/// with a planted flaw (damaged data, a lying zip field, a path as a name, a zip bomb) must be refused.
/// </summary>
public class FuzzHarnessTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Npy_headers_shapes_dtypes_and_truncation() => FuzzHost.Run("npy", output);

    [SkippableFact]
    public void Npz_zip_structure_names_sizes_crc_and_bombs() => FuzzHost.Run("npz", output);

    [SkippableFact]
    public void Lz4_blocks_and_chunk_lists() => FuzzHost.Run("lz4", output);

    [SkippableFact]
    public void Knossos_configs_of_all_three_kinds() => FuzzHost.Run("knossos-config", output);

    [SkippableFact]
    public void Knossos_cubes_zip_and_snappy() => FuzzHost.Run("knossos-cube", output);

    [SkippableFact]
    public void Hdf5_binary_search_stores_open_and_query() => FuzzHost.Run("hdf5", output);

    /// <summary>The harness machinery itself: a reader that overflows the stack kills only the child, and the test names the input.</summary>
    [Fact]
    public void A_stack_overflow_in_the_child_is_reported_with_the_input_not_fatal()
    {
        var e = Assert.ThrowsAny<Xunit.Sdk.XunitException>(() => FuzzHost.Run("selftest-crash", TimeSpan.FromSeconds(5), output));
        Assert.Contains("the fuzz child died", e.Message);
        Assert.Contains("crash-", e.Message);
        Assert.Contains("Stack overflow", e.Message);
    }
}
