using SyConn.Backend.Formats.Pickle;
using SyConn.Backend.Python;
using PickleApi = SyConn.Backend.Formats.Pickle.Pickle;

namespace SyConn.Backend.Tests.Pickle;

/// <summary>
/// <see cref="PickleReadOptions.ShareShortStrings"/>: equal short ASCII strings of separate pickles are one object,
/// and every string still reads as it was written (longer ones, non-ASCII ones, empty ones, and colliding ones).
/// </summary>
public class SharedStringsTests
{
    private static readonly PickleReadOptions Sharing = PickleReadOptions.Default with { ShareShortStrings = true };

    private static PyDict Row(long n, string extra) => new() { ["size"] = n, ["rep_coord"] = "i8", ["name"] = extra };

    [Fact]
    public void Equal_short_ascii_strings_of_separate_pickles_are_one_object_only_when_asked_for()
    {
        var a = (PyDict)PickleApi.Load(PickleApi.Dump(Row(1, "x")), Sharing);
        var b = (PyDict)PickleApi.Load(PickleApi.Dump(Row(2, "y")), Sharing);
        var keyA = a.Keys.OfType<string>().Single(k => k == "rep_coord");
        var keyB = b.Keys.OfType<string>().Single(k => k == "rep_coord");
        Assert.Same(keyA, keyB);
        Assert.Same(a["rep_coord"], b["rep_coord"]);
        var c = (PyDict)PickleApi.Load(PickleApi.Dump(Row(3, "z")));
        Assert.NotSame(keyA, c.Keys.OfType<string>().Single(k => k == "rep_coord"));
    }

    [Fact]
    public void Every_string_reads_back_as_written_with_sharing_on()
    {
        var strings = new List<string> { "", "a", "size", new string('q', 32), new string('r', 33), "grüße", "日本", "\u007f", "mesh_bb" };
        // Many distinct short strings, so that table slots are taken over by others between the reads.
        for (int i = 0; i < 10_000; i++) strings.Add("k" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var list = new PyList();
        foreach (var s in strings) list.Add(s);
        for (int round = 0; round < 2; round++)
        {
            var back = (PyList)PickleApi.Load(PickleApi.Dump(list), Sharing);
            Assert.Equal(strings.Count, back.Count);
            for (int i = 0; i < strings.Count; i++) Assert.Equal(strings[i], (string)back[i]!);
        }
    }
}
