using System.Diagnostics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;
using P = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// Fuzzing of the by-key index of store pickles (<see cref="PickleDictIndex"/>), differentially against the
/// whole-pickle reader: mutated store files either are not indexed, or fail with an InvalidDataException naming the
/// file, or give values, items and a whole dict equal to what the whole-pickle reader gives; when one reader accepts
/// an input the other refuses, that is a bug (except a refusal by a limit, which the two count differently). Budget:
/// this harness's share of SYCONN_FUZZ_SECONDS (<see cref="FuzzBudget"/>).
/// </summary>
public class PickleDictIndexFuzzTests(ITestOutputHelper output)
{
    private const string Source = "fuzz-store.pkl";

    [SkippableFact]
    public void Mutated_store_files_read_by_key_as_the_whole_pickle_reader_reads_them()
    {
        var seconds = FuzzBudget.For("pickle-index").TotalSeconds;
        var seeds = PickleDictIndexTests.SyConnStoreFixtureNames.Select(PickleFixtureTests.Read).Append(OwnStore()).ToArray();
        var rng = new Random(20261201);
        long runs = 0, indexed = 0, equal = 0;
        var sw = Stopwatch.StartNew();
        while (sw.Elapsed.TotalSeconds < seconds || runs < seeds.Length)
        {
            var data = ByteMutator.Mutate(seeds[runs % seeds.Length], rng, Interesting);
            if (rng.Next(3) == 0) data = ByteMutator.Mutate(data, rng, Interesting);
            runs++;
            string? failure;
            try
            {
                failure = Check(data, ref indexed, ref equal);
            }
            catch (Exception e)
            {
                failure = $"{e.GetType().Name}: {e}";
            }
            if (failure is not null)
            {
                var saved = Path.Combine(Path.GetTempPath(), $"pickle-index-fuzz-{runs}.pkl");
                File.WriteAllBytes(saved, data);
                Assert.Fail($"input {runs} (saved to {saved}): {failure}");
            }
        }
        output.WriteLine($"{runs} mutated store files in {sw.Elapsed.TotalSeconds:0} s: {indexed} indexed, {equal} read whole by both readers and equal");
        Console.WriteLine($"pickle-index fuzz: {runs} inputs, {indexed} indexed, {equal} equal to the whole-pickle read");
        Assert.True(indexed > 0, "no mutated input was indexed");
    }

    /// <summary>The failure for one input, or null when its outcomes are allowed.</summary>
    private static string? Check(byte[] data, ref long indexed, ref long equal)
    {
        object? whole = null;
        string? wholeError = null;
        try
        {
            whole = P.Load(data, sourceName: Source);
        }
        catch (InvalidDataException e)
        {
            wholeError = e.Message;
        }
        PickleDictIndex? index;
        try
        {
            index = PickleDictIndex.TryBuild(data, PickleReadOptions.Default, Source);
        }
        catch (InvalidDataException e)
        {
            if (!e.Message.Contains(Source, StringComparison.Ordinal)) return $"the refusal does not name the file: {e.Message}";
            return whole is null || IsLimit(e.Message) ? null : $"indexing refused what the whole reader reads: {e.Message}";
        }
        if (index is null) return null;
        indexed++;
        var values = new List<KeyValuePair<object, object>>();
        string? lazyError = null;
        foreach (var k in index.Keys.ToList())
        {
            try
            {
                Assert.True(index.TryGetValue(k, out var v));
                values.Add(KeyValuePair.Create(k, v));
                // Every str item of a dict value, read alone, equals the item of the value read whole.
                if (v is PyDict d)
                {
                    foreach (var (ik, iv) in d)
                    {
                        if (ik is not string name) continue;
                        var got = index.ReadAttributeTransient(k, name, out var item);
                        if (got != PickleDictIndex.AttributeRead.Found || !Same(iv, item))
                            return $"key {PyRepr.Repr(k)}, item '{name}' read alone gives {got} {Show(item)}, in the value {Show(iv)}";
                    }
                }
            }
            catch (InvalidDataException e)
            {
                if (!e.Message.Contains(Source, StringComparison.Ordinal) || !e.Message.Contains("key", StringComparison.Ordinal))
                    return $"the refusal does not name the file and key: {e.Message}";
                lazyError = e.Message;
            }
        }
        if (whole is null)
            return lazyError is not null || IsLimit(wholeError!) ? null : $"every value read by key, but the whole reader refuses: {wholeError}";
        if (lazyError is not null)
            return IsLimit(lazyError) ? null : $"the whole reader reads it, but by key: {lazyError}";
        var lazy = new PyDict();
        foreach (var (k, v) in values) lazy[k] = v;
        if (!Same(whole, lazy)) return $"values differ: whole {Show(whole)}, by key {Show(lazy)}";
        equal++;
        return null;
    }

    /// <summary>Equal as typed JSON (NaN equals NaN there, unlike Python's ==).</summary>
    private static bool Same(object? a, object? b) => TypedJson.ToJson(a).ToJsonString() == TypedJson.ToJson(b).ToJsonString();

    private static bool IsLimit(string message) => message.Contains("PickleReadOptions", StringComparison.Ordinal) || message.Contains("limit", StringComparison.Ordinal);

    private static string Show(object? v)
    {
        var s = v is null ? "null" : PyRepr.Repr(v);
        return s.Length > 300 ? s[..300] + "..." : s;
    }

    /// <summary>An attribute-dict store file as the library writes it (memo references across values, numpy scalars).</summary>
    private static byte[] OwnStore()
    {
        var root = new PyDict();
        for (int i = 0; i < 12; i++)
        {
            root[(long)(i * 7919)] = new PyDict
            {
                ["size"] = (long)i,
                ["rep_coord"] = NdArray.Create(new long[] { i, i + 1, i + 2 }),
                ["bb"] = NdArray.Create(new[] { 1f * i, 2, 3, 4, 5, 6 }, 2, 3),
                ["r"] = NpScalar.Float64(i / 3.0),
                ["type"] = i % 2 == 0 ? "sv" : "syn_ssv",
                ["ids"] = new PyList { (long)i, 1L << 40 },
            };
        }
        return P.Dump(root);
    }

    /// <summary>Opcodes that change the stack shape or the memo, and large lengths.</summary>
    private static readonly byte[] Interesting = [0x28, 0x2e, 0x30, 0x61, 0x62, 0x68, 0x6a, 0x71, 0x52, 0x73, 0x75, 0x93, 0x94, 0x95, 0x7d, 0xff, 0x7f, 0x80, 0x00];
}
