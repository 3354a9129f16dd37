using System.Numerics;
using SyConn.Backend.Storage;

namespace SyConn.Backend.Tests.EntryStores;

public class NpzMemberNameTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("10", 10L)]
    [InlineData("-3", -3L)]
    [InlineData("123456789012345678", 123456789012345678L)]
    [InlineData("-9223372036854775808", long.MinValue)]
    public void Python_spellings_of_ints_are_int_keys(string name, long value)
    {
        Assert.Equal(value, NpzEntryStore.KeyOfMember(name));
        Assert.Equal(name, NpzEntryStore.MemberName(StoreKey.FromPython(value)));
    }

    [Fact]
    public void Ints_beyond_64_bits_stay_exact()
    {
        var big = BigInteger.Parse("18446744073709551616", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(big, NpzEntryStore.KeyOfMember("18446744073709551616"));
        Assert.Equal(ulong.MaxValue, StoreKey.FromPython(NpzEntryStore.KeyOfMember("18446744073709551615")).ToUInt64());
    }

    [Theory]
    [InlineData("007")]
    [InlineData("-0")]
    [InlineData("+5")]
    [InlineData("-")]
    [InlineData("")]
    [InlineData("1e3")]
    [InlineData(" 5")]
    [InlineData("abc")]
    public void Other_names_are_str_keys(string name) => Assert.Equal(name, NpzEntryStore.KeyOfMember(name));
}
