using LoraMixer.Generation;

namespace LoraMixer.Tests.Generation;

public sealed class StopStringMatcherTests
{
    [Fact]
    public void Text_that_may_start_a_stop_string_is_held_back_until_decided()
    {
        var m = new StopStringMatcher(new[] { "\n\n" });
        Assert.Equal("Hello", m.Push("Hello\n"));
        Assert.Equal("\nworld", m.Push("world"));
        Assert.Equal("", m.Push("\n"));
        Assert.Equal("", m.Push("\nrest"));
        Assert.True(m.Stopped);
        Assert.Equal("", m.Flush());
    }

    [Fact]
    public void The_earliest_of_several_stop_strings_wins_and_unfinished_prefixes_are_flushed()
    {
        var m = new StopStringMatcher(new[] { "END", "ab" });
        Assert.Equal("xx", m.Push("xxa"));
        Assert.Equal("", m.Push("bEND"));
        Assert.True(m.Stopped);

        var n = new StopStringMatcher(new[] { "END" });
        Assert.Equal("abc", n.Push("abcEN"));
        Assert.Equal("EN", n.Flush());
        Assert.False(n.Stopped);
    }
}
