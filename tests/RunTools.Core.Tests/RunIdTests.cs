using System;
using System.Collections.Generic;
using System.Linq;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class RunIdTests
{
    [Theory]
    [InlineData("r1")]
    [InlineData("20261121-131544-nightly-k3f9")]
    [InlineData("A.b_c-d")]
    [InlineData("x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789x123456789")]
    public void AcceptsPortableNames(string id) => Assert.Null(RunId.Explain(id));

    [Theory]
    [InlineData("", "empty")]
    [InlineData(".", "starts with '.'")]
    [InlineData("..", "starts with '.'")]
    [InlineData("a/b", "path separator")]
    [InlineData("a\\b", "path separator")]
    [InlineData("-x", "starts with '-'")]
    [InlineData("run.", "ends with '.'")]
    [InlineData("a b", "contains ' '")]
    [InlineData("naïve", "contains 'ï'")]
    [InlineData("con", "reserved device name")]
    [InlineData("LPT1.txt", "reserved device name")]
    [InlineData("a\u0001", "\\u0001")]
    public void RejectsWithAReason(string id, string why)
    {
        var ex = Assert.Throws<RunToolsException>(() => RunId.Validate(id));
        Assert.Equal(ErrorIds.InvalidRunId, ex.ErrorId);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Contains("1 to 100 characters", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RejectsOverlongIds()
    {
        var ex = Assert.Throws<RunToolsException>(() => RunId.Validate(new string('a', 101)));
        Assert.Contains("101 characters", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GeneratedIdsAreValidReadableAndSortByTime()
    {
        var earlier = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);
        string a = RunId.Generate("Nightly ETL (prod)", earlier);
        string b = RunId.Generate("another", earlier.AddSeconds(1));
        Assert.True(RunId.IsValid(a), a);
        Assert.StartsWith("20260102-030405-nightly-etl-prod-", a, StringComparison.Ordinal);
        Assert.True(string.CompareOrdinal(a, b) < 0);
    }

    [Fact]
    public void GeneratedIdsAreUniqueWithinOneSecond()
    {
        var now = DateTimeOffset.UtcNow;
        var ids = new HashSet<string>(Enumerable.Range(0, 2000).Select(_ => RunId.Generate("n", now)));
        // 4 random characters give 1,048,576 suffixes per second and name; CreateRun redraws on a collision.
        Assert.True(ids.Count >= 1990, $"only {ids.Count} distinct ids out of 2000");
    }

    [Fact]
    public void NamesWithoutLettersStillGiveValidIds()
    {
        string id = RunId.Generate("***", DateTimeOffset.UtcNow);
        Assert.True(RunId.IsValid(id), id);
    }
}
