using System;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class PortableNameTests
{
    [Theory]
    [InlineData("a/b", "path separator")]
    [InlineData("aux", "reserved device name")]
    [InlineData("", "empty")]
    public void StepNamesAreRejectedAsStepNamesNotRunIds(string name, string why)
    {
        var ex = Assert.Throws<RunToolsException>(() => PortableName.ValidateStepName(name));
        Assert.Equal(ErrorIds.InvalidStepName, ex.ErrorId);
        Assert.Contains("not a valid step name", ex.Message, StringComparison.Ordinal);
        Assert.Contains(why, ex.Message, StringComparison.Ordinal);
        Assert.Contains(PortableName.Rule, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RunIdsFollowThePortableNameRule()
    {
        foreach (string value in new[] { "r1", "a.b_c-d", "x.", "-x", "LPT1.txt", new string('a', 101) })
        {
            Assert.Equal(PortableName.Explain(value), RunId.Explain(value));
        }

        Assert.Equal(ErrorIds.InvalidRunId, Assert.Throws<RunToolsException>(() => RunId.Validate("a b")).ErrorId);
    }
}
