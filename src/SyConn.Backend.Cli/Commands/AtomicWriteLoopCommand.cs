using System.CommandLine;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Cli.Commands;

/// <summary>
/// Hidden <c>syconn-store _atomic-write-loop FILE</c>: writes version B, A, B, A, ... of a few MB to FILE
/// with <see cref="AtomicFile"/> until killed; prints <c>ready</c> once it starts writing. Used by the
/// crash test that SIGKILLs it at random moments and checks FILE is always exactly A or B.
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
        var max = new Option<long>("--max") { Description = "Stop after this many writes (0 = never).", DefaultValueFactory = _ => 0 };
        var cmd = new Command("_atomic-write-loop", "Test helper: rewrite FILE with alternating versions until killed.")
        {
            file, noSync, max,
        };
        cmd.Hidden = true;
        cmd.SetAction((ParseResult r) =>
        {
            string path = r.GetValue(file)!;
            bool durable = !r.GetValue(noSync);
            long limit = r.GetValue(max);
            byte[] a = Version(false), b = Version(true);
            r.InvocationConfiguration.Output.WriteLine("ready");
            r.InvocationConfiguration.Output.Flush();
            for (long i = 0; limit == 0 || i < limit; i++)
                AtomicFile.Write(path, (i & 1) == 0 ? b : a, durable);
            return 0;
        });
        return cmd;
    }
}
