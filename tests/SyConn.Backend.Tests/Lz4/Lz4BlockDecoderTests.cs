using System.Buffers.Binary;
using SyConn.Backend.Formats.Lz4;
using Xunit.Abstractions;

namespace SyConn.Backend.Tests.Lz4;

/// <summary>
/// Our own LZ4 decoder (<see cref="Lz4BlockDecoder"/>, <see cref="Lz4Impl.Builtin"/>): the bytes every encoder
/// writes, for every match distance and near both ends of the buffers, and random token streams built to probe the
/// block format's end rules, against liblz4 (the library python-lz4 links).
/// </summary>
public sealed class Lz4BlockDecoderTests(ITestOutputHelper output)
{
    /// <summary>Data whose matches have distance <paramref name="period"/>: random bytes, then a repeating pattern, then random bytes.</summary>
    private static byte[] Periodic(int period, int length, int head, int tail, int seed)
    {
        var rng = new Random(seed);
        var data = new byte[head + length + tail];
        rng.NextBytes(data);
        for (int i = head + period; i < head + length; i++) data[i] = data[i - period];
        return data;
    }

    [Fact]
    public void Decodes_what_both_encoders_write_for_every_distance_and_length()
    {
        var encoders = NativeLz4.IsAvailable ? new[] { Lz4Impl.Managed, Lz4Impl.Native } : [Lz4Impl.Managed];
        int blocks = 0;
        foreach (int period in Enumerable.Range(1, 40).Concat([63, 64, 65, 255, 256, 4000, 65535]))
            foreach (int length in new[] { 0, 5, 12, 13, 17, 19, 20, 31, 33, 64, 100, 270, 271, 530, 5000, 70_000 })
                foreach (int tail in new[] { 0, 3, 5, 11, 12, 13, 40 })
                {
                    var data = Periodic(period, length, head: Math.Min(period, 70_000), tail, seed: period * 1000 + length + tail);
                    foreach (var enc in encoders)
                    {
                        var block = PyLz4.Compress(data, enc);
                        Assert.Equal(data, PyLz4.Decompress(block, Lz4Impl.Builtin));
                        blocks++;
                    }
                }
        // Every kind of the codec comparison's inputs, at lengths around the ends' rules.
        for (int kind = 0; kind < 6; kind++)
            foreach (int n in Enumerable.Range(0, 80).Concat([255, 256, 4095, 4096, 65_535, 65_536, 65_537, 300_000]))
                foreach (var enc in encoders)
                {
                    var data = NativeLz4Tests.Structured(kind, n, n * 7 + kind);
                    Assert.Equal(data, PyLz4.Decompress(PyLz4.Compress(data, enc), Lz4Impl.Builtin));
                    blocks++;
                }
        output.WriteLine($"{blocks} blocks decoded to their data");
    }

    /// <summary>
    /// A random token stream: sequences of literals and matches of every length class (with length bytes of 255),
    /// distances from 0 to past the output's start, ending with literals, close to the ends more often than not; its
    /// size prefix the output's true size most of the time, off by a little otherwise.
    /// </summary>
    private static byte[] RandomBlock(Random rng)
    {
        var body = new List<byte>();
        long produced = 0;
        int sequences = rng.Next(0, 6);
        int Length(int max) => rng.Next(4) switch { 0 => rng.Next(0, 15), 1 => 15 + rng.Next(0, 3), 2 => 15 + 255 + rng.Next(0, 3), _ => rng.Next(0, max) };
        void Extra(int n)
        {
            int rest = n - 15;
            while (rest >= 255) { body.Add(255); rest -= 255; }
            body.Add((byte)rest);
        }
        for (int s = 0; s < sequences; s++)
        {
            int literals = Length(20), match = Length(40);
            body.Add((byte)((Math.Min(literals, 15) << 4) | Math.Min(match, 15)));
            if (literals >= 15) Extra(literals);
            for (int i = 0; i < literals; i++) body.Add((byte)rng.Next(256));
            produced += literals;
            int distance = rng.Next(5) switch { 0 => 0, 1 => (int)produced + 1, 2 => rng.Next(1, 8), _ => rng.Next(1, (int)Math.Max(2, produced + 1)) };
            body.Add((byte)distance);
            body.Add((byte)(distance >> 8));
            if (match >= 15) Extra(match);
            produced += match + 4;
        }
        int last = rng.Next(3) == 0 ? rng.Next(0, 5) : Length(30);
        body.Add((byte)(Math.Min(last, 15) << 4));
        if (last >= 15) Extra(last);
        for (int i = 0; i < last; i++) body.Add((byte)rng.Next(256));
        produced += last;
        // Now and then a byte too many or too few at the end.
        if (rng.Next(8) == 0) body.Add((byte)rng.Next(256));
        if (rng.Next(8) == 0 && body.Count > 1) body.RemoveAt(body.Count - 1);
        long size = rng.Next(6) == 0 ? produced + rng.Next(-3, 4) : produced;
        var block = new byte[4 + body.Count];
        BinaryPrimitives.WriteInt32LittleEndian(block, (int)Math.Clamp(size, 0, int.MaxValue));
        body.CopyTo(block, 4);
        return block;
    }

    [SkippableFact]
    public void Random_token_streams_are_refused_or_decoded_as_liblz4_does_and_never_write_past_the_size()
    {
        NativeLz4Tests.RequireNative();
        var rng = new Random(20261202);
        int decoded = 0, refused = 0, zero = 0;
        for (int iter = 0; iter < 60_000; iter++)
        {
            var block = RandomBlock(rng);
            int size;
            try { size = PyLz4.DecompressedLength(block); }
            catch (InvalidDataException) { continue; }
            const int Slack = 40;
            byte[]? ours = null, theirs = null;
            string? ourError = null, theirError = null;
            foreach (var impl in new[] { Lz4Impl.Builtin, Lz4Impl.Native })
            {
                // The output sits between sentinels: nothing may be written outside it.
                var buffer = new byte[Slack + size + Slack];
                buffer.AsSpan().Fill(0x5A);
                string? error = null;
                try { Assert.Equal(size, PyLz4.Decompress(block, buffer.AsSpan(Slack, size), impl)); }
                catch (InvalidDataException e) { error = e.Message; }
                Assert.True(buffer.AsSpan(0, Slack).IndexOfAnyExcept((byte)0x5A) < 0, $"{impl} wrote before the output: {Convert.ToHexString(block)}");
                Assert.True(buffer.AsSpan(Slack + size).IndexOfAnyExcept((byte)0x5A) < 0, $"{impl} wrote past the output: {Convert.ToHexString(block)}");
                if (impl == Lz4Impl.Builtin) (ours, ourError) = (buffer[Slack..^Slack], error);
                else (theirs, theirError) = (buffer[Slack..^Slack], error);
            }
            Assert.True((ourError is null) == (theirError is null), $"ours {ourError ?? "decodes"}, liblz4 {theirError ?? "decodes"}: {Convert.ToHexString(block)}");
            if (ourError is not null)
            {
                refused++;
                if (ourError.Contains("distance 0")) zero++;
                continue;
            }
            Assert.True(ours.AsSpan().SequenceEqual(theirs), $"decoded differently from liblz4: {Convert.ToHexString(block)}");
            decoded++;
        }
        output.WriteLine($"{decoded} decoded alike, {refused} refused by both ({zero} for a match at distance 0)");
        Assert.True(decoded > 5000 && refused > 5000 && zero > 500, $"{decoded} decoded, {refused} refused, {zero} at distance 0");
    }

    [Fact]
    public void A_distance_0_is_found_where_it_is()
    {
        // 16 literals, then a match at distance 0 (its offset field at byte 17 of the block), then 80 literals.
        var body = Convert.FromHexString("fc01" + "6162636465666768696a6b6c6d6e6f70" + "0000" + "f041" + Convert.ToHexString(new byte[80]));
        Assert.Equal(Lz4BlockDecoder.ZeroDistance, Lz4BlockDecoder.Decode(body, new byte[112], out int at));
        Assert.Equal(18, at);
        Assert.Equal(PyLz4.ZeroOffsetAt(body), at);
        // The same block with distance 1 decodes.
        body[18] = 1;
        var outBytes = new byte[112];
        Assert.Equal(112, Lz4BlockDecoder.Decode(body, outBytes, out at));
        Assert.Equal(-1, at);
        Assert.All(outBytes[16..32], b => Assert.Equal((byte)'p', b));
    }
}
