using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using Xunit;

namespace RunTools.Core.Tests.Configuration;

public sealed class ConfigDiffTests
{
    [Fact]
    public void EqualConfigsHaveNoChanges()
    {
        var changes = ConfigDiff.Compare(Parse("{\"a\":1.0,\"b\":[1,{\"c\":2}]}"), Parse("{ \"b\": [1, {\"c\": 2}], \"a\": 1 }"));
        Assert.Empty(changes);
        Assert.Equal("no changes", ConfigDiff.Summarize(changes));
        Assert.Empty(ConfigDiff.Compare(null, null));
    }

    [Fact]
    public void ReportsNestedChangesAddsAndRemovesSortedByPath()
    {
        var reference = Parse("""
            {"generator": {"model": "a", "t": 1},
             "x": 1,
             "auditor": {"thresholds": {"identity_min": 0.5}}}
            """);
        var difference = Parse("""
            {"generator": {"model": "b", "t": 1},
             "auditor": {"thresholds": {"identity_min": 0.6}, "retries": 3}}
            """);

        var changes = ConfigDiff.Compare(reference, difference);

        Assert.Collection(
            changes,
            c => AssertChange(c, "auditor.retries", ConfigChangeKind.Added, null, "3"),
            c => AssertChange(c, "auditor.thresholds.identity_min", ConfigChangeKind.Changed, "0.5", "0.6"),
            c => AssertChange(c, "generator.model", ConfigChangeKind.Changed, "\"a\"", "\"b\""),
            c => AssertChange(c, "x", ConfigChangeKind.Removed, "1", null));
        Assert.Equal(
            "Changed: auditor.thresholds.identity_min, generator.model; Added: auditor.retries; Removed: x",
            ConfigDiff.Summarize(changes));
    }

    [Fact]
    public void SummaryOmitsEmptyGroups()
    {
        Assert.Equal("Added: b", ConfigDiff.Summarize(ConfigDiff.Compare(Parse("{}"), Parse("{\"b\":1}"))));
        Assert.Equal("Removed: a, b", ConfigDiff.Summarize(ConfigDiff.Compare(Parse("{\"a\":1,\"b\":2}"), Parse("{}"))));
        Assert.Equal(
            "Changed: generator.model; Added: auditor.retries",
            ConfigDiff.Summarize(ConfigDiff.Compare(
                Parse("{\"generator\":{\"model\":\"x\"},\"auditor\":{}}"),
                Parse("{\"generator\":{\"model\":\"y\"},\"auditor\":{\"retries\":2}}"))));
    }

    [Fact]
    public void WholeObjectsAddedOrRemovedAreOneChange()
    {
        var changes = ConfigDiff.Compare(Parse("{\"a\":{\"b\":{\"c\":1}}}"), Parse("{\"a\":{\"d\":{\"e\":[1]}}}"));
        Assert.Collection(
            changes,
            c => AssertChange(c, "a.b", ConfigChangeKind.Removed, "{\"c\":1}", null),
            c => AssertChange(c, "a.d", ConfigChangeKind.Added, null, "{\"e\":[1]}"));
    }

    [Fact]
    public void KeysThatNeedQuotingAreBracketed()
    {
        var changes = ConfigDiff.Compare(
            Parse("{\"a.b\":1,\"\":1,\"it's\":1,\"with space\":1,\"x[0]\":1,\"o\":{\"k.j\":1}}"),
            Parse("{\"a.b\":2,\"\":2,\"it's\":2,\"with space\":2,\"x[0]\":2,\"o\":{\"k.j\":2}}"));
        Assert.Equal(
            "Changed: [''], ['a.b'], ['it\\'s'], ['with space'], ['x[0]'], o['k.j']",
            ConfigDiff.Summarize(changes));
    }

    [Fact]
    public void EqualLengthArraysAreComparedElementWise()
    {
        var changes = ConfigDiff.Compare(
            Parse("{\"items\":[1,2,3],\"objs\":[{\"a\":1},{\"a\":2}]}"),
            Parse("{\"items\":[1,5,3],\"objs\":[{\"a\":1},{\"a\":3,\"b\":true}]}"));
        Assert.Collection(
            changes,
            c => AssertChange(c, "items[1]", ConfigChangeKind.Changed, "2", "5"),
            c => AssertChange(c, "objs[1].a", ConfigChangeKind.Changed, "2", "3"),
            c => AssertChange(c, "objs[1].b", ConfigChangeKind.Added, null, "true"));
    }

    [Fact]
    public void ArraysOfDifferentLengthChangeAsAWhole()
    {
        var changes = ConfigDiff.Compare(Parse("{\"items\":[1,2,3]}"), Parse("{\"items\":[1,2]}"));
        var change = Assert.Single(changes);
        AssertChange(change, "items", ConfigChangeKind.Changed, "[1,2,3]", "[1,2]");
    }

    [Fact]
    public void TypeChangesAndNullsAreChanges()
    {
        var changes = ConfigDiff.Compare(
            Parse("{\"a\":{\"b\":1},\"n\":null,\"s\":\"1\",\"gone\":null}"),
            Parse("{\"a\":[1],\"n\":0,\"s\":1}"));
        Assert.Collection(
            changes,
            c => AssertChange(c, "a", ConfigChangeKind.Changed, "{\"b\":1}", "[1]"),
            c => AssertChange(c, "gone", ConfigChangeKind.Removed, "null", null),
            c => AssertChange(c, "n", ConfigChangeKind.Changed, "null", "0"),
            c => AssertChange(c, "s", ConfigChangeKind.Changed, "\"1\"", "1"));
    }

    [Fact]
    public void RootLevelChangeHasEmptyPath()
    {
        var change = Assert.Single(ConfigDiff.Compare(Parse("{}"), null));
        AssertChange(change, string.Empty, ConfigChangeKind.Changed, "{}", "null");
        Assert.Equal("Changed: (root)", ConfigDiff.Summarize([change]));
    }

    [Fact]
    public void WorksOnEffectiveConfigRoots()
    {
        var stored = EffectiveConfig.FromText("generator:\n  model: m1\nauditor: {}\n", ConfigFormat.Yaml);
        var current = EffectiveConfig.FromText("{\"generator\":{\"model\":\"m2\"},\"auditor\":{\"retries\":2}}", ConfigFormat.Json);
        Assert.Equal(
            "Changed: generator.model; Added: auditor.retries",
            ConfigDiff.Summarize(ConfigDiff.Compare(stored.Root, current.Root)));
    }

    private static JsonNode? Parse(string json) => JsonNode.Parse(json);

    private static void AssertChange(ConfigChange change, string path, ConfigChangeKind kind, string? oldValue, string? newValue)
    {
        Assert.Equal(path, change.Path);
        Assert.Equal(kind, change.Kind);
        Assert.Equal(oldValue, change.OldValue);
        Assert.Equal(newValue, change.NewValue);
    }
}
