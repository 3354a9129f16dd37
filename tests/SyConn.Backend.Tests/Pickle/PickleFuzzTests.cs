using System.Diagnostics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// Mutation fuzzing of the fixtures: a mutated pickle either loads into a clean value tree or is refused
/// with an InvalidDataException; any other exception is a bug. Budget: this harness's share of SYCONN_FUZZ_SECONDS (<see cref="FuzzBudget"/>).
/// </summary>
public class PickleFuzzTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [SkippableFact]
    public void Mutated_fixtures_load_or_fail_with_InvalidDataException()
    {
        var seconds = FuzzBudget.For("pickle").TotalSeconds;
        var fixtures = PickleFixtureTests.PickleFixtures.Select(n => (Name: n, Data: PickleFixtureTests.Read(n))).ToArray();
        var perFixture = TimeSpan.FromSeconds(seconds / fixtures.Length);
        var rng = new Random(20240611);
        long runs = 0, loaded = 0;
        foreach (var (name, original) in fixtures)
        {
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < perFixture)
            {
                var data = Mutate(original, rng);
                runs++;
                object value;
                try
                {
                    value = P.Load(data);
                }
                catch (InvalidDataException)
                {
                    continue;
                }
                catch (Exception e)
                {
                    File.WriteAllBytes(Path.Combine(Path.GetTempPath(), "pickle-fuzz-crash.pkl"), data);
                    Assert.Fail($"{name}: mutated input raised {e.GetType().Name} (saved to pickle-fuzz-crash.pkl): {e}");
                    return;
                }
                loaded++;
                AssertValueModel(value, 0);
                // What the library does with loaded values terminates on them too (mutations make shared references and cycles).
                try
                {
                    _ = PyRepr.Repr(value);
                    _ = PyEquality.AreEqual(value, PyCopy.Deep(value));
                    _ = PyEquality.Comparer.GetHashCode(value);
                    _ = TypedJson.ToJson(value);
                    _ = P.Dump(value);
                }
                catch (Exception e) when (e is InvalidDataException or ArgumentException)
                {
                }
            }
        }
        output.WriteLine($"{runs} mutated inputs in {seconds:0} s: {loaded} loaded, {runs - loaded} refused with InvalidDataException");
        Console.WriteLine($"pickle fuzz: {runs} mutated inputs, {loaded} loaded, {runs - loaded} refused");
        Assert.True(runs > fixtures.Length, $"only {runs} runs");
        Assert.True(loaded > 0, "no mutated input loaded at all");
    }

    /// <summary>Interesting bytes: opcodes that change the stack shape, and large lengths.</summary>
    private static readonly byte[] Interesting = [0x28, 0x2e, 0x30, 0x31, 0x32, 0x61, 0x62, 0x68, 0x52, 0x93, 0x94, 0xff, 0x7f, 0x80, 0x00];

    private static byte[] Mutate(byte[] original, Random rng) => ByteMutator.Mutate(original, rng, Interesting);

    /// <summary>Every node of a loaded tree is a value-model type (no reader-internal object escaped); each object is visited once.</summary>
    private static void AssertValueModel(object? v, int depth) => AssertValueModel(v, depth, new HashSet<object>(ReferenceEqualityComparer.Instance));

    private static void AssertValueModel(object? v, int depth, HashSet<object> seen)
    {
        Assert.True(depth < 2000, "tree deeper than the reader's limit");
        if (v is PyTuple or PyList or PySet or PyDict or NpScalar or NdArray && !seen.Add(v!)) return;
        switch (v)
        {
            case PyNone or bool or long or System.Numerics.BigInteger or double or System.Numerics.Complex or string
                or PyBytes or PyByteArray or DType:
                return;
            case PyTuple t: foreach (var x in t) AssertValueModel(x, depth + 1, seen); return;
            case PyList l: foreach (var x in l) AssertValueModel(x, depth + 1, seen); return;
            case PySet st: foreach (var x in st) AssertValueModel(x, depth + 1, seen); return;
            case PyDict dd: foreach (var kv in dd) { AssertValueModel(kv.Key, depth + 1, seen); AssertValueModel(kv.Value, depth + 1, seen); } return;
            case NpScalar sc: if (sc.ObjectValue is not null) AssertValueModel(sc.ObjectValue, depth + 1, seen); return;
            case NdArray a:
                if (a.Objects is not null) foreach (var x in a.Objects) AssertValueModel(x, depth + 1, seen);
                else Assert.Equal(a.Size * a.DType.ItemSize, a.Data.Length);
                return;
            default: Assert.Fail($"a {v?.GetType().FullName ?? "null"} escaped the reader"); return;
        }
    }
}
