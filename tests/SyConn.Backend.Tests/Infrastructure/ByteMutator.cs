namespace SyConn.Backend.Tests.Infrastructure;

/// <summary>Random mutations of a byte string for the fuzz harnesses: bit flips, random bytes, truncation, insertion, deletion.</summary>
internal static class ByteMutator
{
    /// <summary>A copy of <paramref name="original"/> with one to four mutations; <paramref name="interesting"/> bytes, when given, are planted too.</summary>
    public static byte[] Mutate(byte[] original, Random rng, ReadOnlySpan<byte> interesting = default)
    {
        var d = new List<byte>(original);
        int n = 1 + rng.Next(4);
        for (int k = 0; k < n && d.Count > 0; k++)
        {
            int at = rng.Next(d.Count);
            switch (rng.Next(interesting.IsEmpty ? 5 : 6))
            {
                case 0: d[at] ^= (byte)(1 << rng.Next(8)); break;
                case 1: d[at] = (byte)rng.Next(256); break;
                case 2: d.RemoveRange(at, d.Count - at); break;
                case 3: d.Insert(at, (byte)rng.Next(256)); break;
                case 4: d.RemoveAt(at); break;
                default: d[at] = interesting[rng.Next(interesting.Length)]; break;
            }
        }
        return d.ToArray();
    }
}
