using System.CommandLine;
using SyConn.Backend.Arrays;
using SyConn.Backend.Storage;
using SyConn.Backend.Stores;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _atomic-write-loop FILE</c>: writes version B, A, B, A, ... of a few MB to FILE
/// with <see cref="AtomicFile"/> until killed; prints <c>ready</c> once it starts writing. Used by the
/// crash test that SIGKILLs it at random moments and checks FILE is always exactly A or B. With
/// <c>--store</c>, FILE is a CompressedStorage whose key 1 holds A or B, rewritten by open-set-push cycles.
/// </summary>
public static class AtomicWriteLoopCommand
{
    private static readonly Lazy<byte[]> A = new(() => Make(1_500_000, seed: 11));
    private static readonly Lazy<byte[]> B = new(() => Make(3_200_000, seed: 23));

    /// <summary>Version A (false) or B (true) of the content: deterministic pseudo-random bytes of different lengths.</summary>
    public static byte[] Version(bool b) => b ? B.Value : A.Value;

    private static byte[] Make(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>Creates the command.</summary>
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The file to rewrite." };
        var noSync = new Option<bool>("--no-sync") { Description = "Do not fsync (durable: false)." };
        var defer = new Option<bool>("--defer-write-back") { Description = "With --no-sync: replace the file by swapping names (deferWriteBack: true)." };
        var max = new Option<long>("--max") { Description = "Stop after this many writes (0 = never).", DefaultValueFactory = _ => 0 };
        var store = new Option<bool>("--store") { Description = "Rewrite FILE as a CompressedStorage through pull/set/push cycles." };
        var cmd = new Command("_atomic-write-loop", "Test helper: rewrite FILE with alternating versions until killed.")
        {
            file, noSync, defer, max, store,
        };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            string path = r.GetValue(file)!;
            bool durable = !r.GetValue(noSync);
            bool deferWriteBack = r.GetValue(defer);
            long limit = r.GetValue(max);
            byte[] a = Version(false), b = Version(true);
            bool asStore = r.GetValue(store);
            void Ready()
            {
                r.InvocationConfiguration.Output.WriteLine("ready");
                r.InvocationConfiguration.Output.Flush();
            }
            // The store loop announces itself after its first cycle, when its code paths are warm, so that
            // kills land inside later pull/set/push cycles rather than during start-up.
            if (!asStore) Ready();
            var options = StoreOptions.Writable with { Durable = durable, DeferWriteBack = deferWriteBack };
            for (long i = 0; limit == 0 || i < limit; i++)
            {
                var version = (i & 1) == 0 ? b : a;
                if (!asStore)
                {
                    AtomicFile.Write(path, version, durable, deferWriteBack: deferWriteBack);
                    continue;
                }
                using var cs = new CompressedStorage(path, options);
                cs[1] = NdArray.Wrap(version);
                cs.Push();
                if (i == 0) Ready();
            }
            return 0;
        });
        return cmd;
    }
}
