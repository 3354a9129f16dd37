using System.CommandLine;
using System.Globalization;
using SyConn.Backend.Python;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _bt-worker ADDRESS N MODE CONNSTRING</c>: a test and benchmark worker on one AttributeDict
/// counter (<c>store[0]["n"]</c>). MODE <c>locked</c> does N locked read-modify-write increments, <c>optimistic</c>
/// does them with optimistic pushes retried until they commit, and <c>hold</c> takes the store's lock, prints
/// <c>locked</c> and waits until it is killed (for the dead-holder tests). Prints <c>done N</c> at the end.
/// </summary>
public static class BtWorkerCommand
{
    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var address = new Argument<string>("address") { Description = "The counter store (bt:IDENTIFIER or a path)." };
        var count = new Argument<int>("n") { Description = "How many increments." };
        var mode = new Argument<string>("mode") { Description = "locked, optimistic or hold." };
        var conn = new Argument<string>("connstring") { Description = "The BT database." };
        var cmd = new Command("_bt-worker", "Test helper: counter increments on a BT store.") { address, count, mode, conn };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            string addr = r.GetValue(address)!;
            int n = r.GetValue(count);
            var options = new StoreOptions { ReadOnly = false, ConnectionString = r.GetValue(conn), Timeout = 300 };
            var output = r.InvocationConfiguration.Output;
            switch (r.GetValue(mode))
            {
                case "locked":
                    for (int i = 0; i < n; i++)
                    {
                        // A locked push conflicts only when the store's partition moved to another shard and someone
                        // pushed there first: redo the increment on fresh content, as a real client would.
                        while (true)
                        {
                            using var ad = AttributeDict.Open(addr, options);
                            Increment(ad);
                            try
                            {
                                ad.Push();
                                break;
                            }
                            catch (StoreConflictException)
                            {
                            }
                        }
                    }
                    break;
                case "optimistic":
                    var optimistic = options with { Optimistic = true };
                    for (int i = 0; i < n; i++)
                        OptimisticRetry.Run(() => AttributeDict.Open(addr, optimistic), Increment);
                    break;
                case "hold":
                    using (var held = AttributeDict.Open(addr, options))
                    {
                        output.WriteLine("locked");
                        output.Flush();
                        Thread.Sleep(Timeout.Infinite);
                    }
                    break;
                default:
                    throw new UsageException("mode must be locked, optimistic or hold", "mode");
            }
            output.WriteLine("done " + n.ToString(CultureInfo.InvariantCulture));
            return 0;
        });
        return cmd;
    }

    private static void Increment(AttributeDict ad)
    {
        var d = (PyDict)ad[0];
        d["n"] = (d.TryGetValue("n", out var v) ? (long)v : 0L) + 1;
    }
}
