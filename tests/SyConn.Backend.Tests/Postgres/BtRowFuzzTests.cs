using System.Diagnostics;
using SyConn.Backend.Arrays;
using SyConn.Backend.Postgres;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;
using SyConn.Backend.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Postgres;

/// <summary>
/// Fuzzing of the BT row reader: rows whose pickled entry or pickled key is mutated in the database either load into a
/// consistent store whose every value reads, or fail the pull or the read of the damaged key with an
/// <see cref="InvalidDataException"/> naming the store; nothing else may escape, and nothing is written by a failure. Budget: this harness's share of <c>SYCONN_FUZZ_SECONDS</c>.
/// </summary>
public sealed class BtRowFuzzTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Mutated_rows_load_consistently_or_fail_with_InvalidDataException_naming_the_store()
    {
        string id = BtTestDatabase.NewPrefix() + "fuzz";
        string address = "bt:" + id;
        using (var ad = AttributeDict.Open(address, BtTestDatabase.Options(StoreOptions.Writable)))
        {
            for (int i = 0; i < 4; i++)
                ad[(ulong)i * 1_000_003UL] = new PyDict { ["size"] = (long)i, ["rep"] = NdArray.Create(new long[] { i, 2 * i, 3 * i }), ["t"] = "sv" };
            ad[StoreKey.FromPython(new PyTuple(1L, "x"))] = new PyDict { ["list"] = new PyList { 1L, "x" } };
            ad.Push();
        }
        var originals = BtTestDatabase.Rows("SELECT key, pkey, entry FROM syconn.entries WHERE identifier = $1", id)
            .Select(r => (Key: (byte[])r[0]!, PKey: (byte[])r[1]!, Entry: (byte[])r[2]!)).ToList();
        using var db = Npgsql.NpgsqlDataSource.Create(BtTestDatabase.ConnectionString);
        void SetColumn(bool key, byte[] canonical, byte[] value)
        {
            using var cmd = db.CreateCommand($"UPDATE syconn.entries SET {(key ? "pkey" : "entry")} = $3 WHERE identifier = $1 AND key = $2");
            cmd.Parameters.Add(new() { Value = id });
            cmd.Parameters.Add(new() { Value = canonical });
            cmd.Parameters.Add(new() { Value = value });
            Assert.Equal(1, cmd.ExecuteNonQuery());
        }
        var rng = new Random(20261201);
        var budget = FuzzBudget.For("bt-rows");
        var sw = Stopwatch.StartNew();
        long runs = 0, loaded = 0;
        while (sw.Elapsed < budget || runs < 20)
        {
            var (key, pkey, entry) = originals[rng.Next(originals.Count)];
            bool mutateKey = rng.Next(3) == 0;
            var mutated = ByteMutator.Mutate(mutateKey ? pkey : entry, rng);
            SetColumn(mutateKey, key, mutated);
            runs++;
            try
            {
                using var ad = AttributeDict.Open(address, BtTestDatabase.Options());
                Assert.Equal(originals.Count, ad.Count);
                foreach (var k in ad.Keys) Assert.True(ad.ContainsKey(k), $"listed key {k} cannot be found");
                foreach (var k in ad.Keys) _ = ad.TryGetValue(k, out _);
                loaded++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(address, e.Message, StringComparison.Ordinal);
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"a mutated {(mutateKey ? "pickled key" : "entry")} raised {e.GetType().Name}: {e.Message}\nbytes: {Convert.ToHexString(mutated)}");
            }
            finally
            {
                SetColumn(mutateKey, key, mutateKey ? pkey : entry);
            }
        }
        output.WriteLine($"{runs} mutated rows: {loaded} loaded, {runs - loaded} refused with InvalidDataException");
        Assert.True(runs - loaded > 0, "no mutated row was refused");
        Assert.Equal(1L, BtTestDatabase.Scalar("SELECT generation FROM syconn.stores WHERE identifier = $1", id));
    }
}
