using System;
using RunTools.Core.Configuration;
using Xunit;

namespace RunTools.Core.Tests.Configuration;

/// <summary>YAML 1.2 core schema: how each scalar spelling becomes a JSON value.</summary>
public sealed class YamlResolutionTests
{
    [Theory]
    // null
    [InlineData("null", "null")]
    [InlineData("Null", "null")]
    [InlineData("NULL", "null")]
    [InlineData("~", "null")]
    [InlineData("", "null")]
    // booleans; YAML 1.1 spellings stay strings
    [InlineData("true", "true")]
    [InlineData("True", "true")]
    [InlineData("TRUE", "true")]
    [InlineData("false", "false")]
    [InlineData("False", "false")]
    [InlineData("FALSE", "false")]
    [InlineData("yes", "\"yes\"")]
    [InlineData("no", "\"no\"")]
    [InlineData("on", "\"on\"")]
    [InlineData("tRUE", "\"tRUE\"")]
    [InlineData("nULL", "\"nULL\"")]
    // integers
    [InlineData("0", "0")]
    [InlineData("-12", "-12")]
    [InlineData("+7", "7")]
    [InlineData("007", "7")]
    [InlineData("0x1F", "31")]
    [InlineData("0xff", "255")]
    [InlineData("0o17", "15")]
    [InlineData("0X1F", "\"0X1F\"")]
    [InlineData("0o8", "\"0o8\"")]
    [InlineData("0b101", "\"0b101\"")]
    [InlineData("1_000", "\"1_000\"")]
    [InlineData("9007199254740992", "9007199254740992")]
    // floats
    [InlineData("1.5", "1.5")]
    [InlineData("-.5", "-0.5")]
    [InlineData("+1.", "1")]
    [InlineData("1e3", "1000")]
    [InlineData("6.02E23", "6.02e+23")]
    [InlineData(".5e-3", "0.0005")]
    [InlineData("-0.0", "0")]
    [InlineData("1.2.3", "\"1.2.3\"")]
    [InlineData("1e", "\"1e\"")]
    [InlineData(".", "\".\"")]
    // other plain text
    [InlineData("hello world", "\"hello world\"")]
    [InlineData("12:30", "\"12:30\"")]
    [InlineData("2024-05-06", "\"2024-05-06\"")]
    [InlineData("inf", "\"inf\"")]
    [InlineData("nan", "\"nan\"")]
    // quoted and block scalars are always strings
    [InlineData("'123'", "\"123\"")]
    [InlineData("\"true\"", "\"true\"")]
    [InlineData("'null'", "\"null\"")]
    [InlineData("''", "\"\"")]
    [InlineData("\".inf\"", "\".inf\"")]
    [InlineData("|\n  123\n", "\"123\\n\"")]
    [InlineData(">-\n  a\n  b\n", "\"a b\"")]
    // explicit tags
    [InlineData("!!str 123", "\"123\"")]
    [InlineData("!!str true", "\"true\"")]
    [InlineData("!!str", "\"\"")]
    [InlineData("!!int '42'", "42")]
    [InlineData("!!int 0x10", "16")]
    [InlineData("!!float 3", "3")]
    [InlineData("!!float '2.5'", "2.5")]
    [InlineData("!!bool 'true'", "true")]
    [InlineData("!!null ''", "null")]
    [InlineData("!!null ~", "null")]
    [InlineData("! 12", "\"12\"")]
    [InlineData("!!seq [1]", "[1]")]
    [InlineData("!!map {a: 1}", "{\"a\":1}")]
    public void ResolvesScalars(string yaml, string expectedJson)
    {
        var config = EffectiveConfig.FromText("v: " + yaml + "\n", ConfigFormat.Yaml);
        Assert.Equal("{\"v\":" + expectedJson + "}", config.CanonicalJson);
    }

    [Theory]
    [InlineData(".inf")]
    [InlineData(".Inf")]
    [InlineData(".INF")]
    [InlineData("-.inf")]
    [InlineData("+.inf")]
    [InlineData(".nan")]
    [InlineData(".NaN")]
    [InlineData(".NAN")]
    [InlineData("1e400")]
    [InlineData("!!float .inf")]
    public void NonFiniteNumbersAreRejected(string yaml)
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("v: " + yaml + "\n", ConfigFormat.Yaml, "c.yaml"));
        Assert.Contains("'v'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("quote it", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, ex.Line);
        Assert.Equal(4, ex.Column);
    }

    [Theory]
    [InlineData("!!int abc")]
    [InlineData("!!int 1.5")]
    [InlineData("!!bool yes")]
    [InlineData("!!null x")]
    [InlineData("!!float abc")]
    [InlineData("!custom x")]
    [InlineData("!!timestamp 2024-01-01")]
    [InlineData("!!set {a}")]
    public void MismatchedOrUnknownTagsAreRejected(string yaml)
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("v: " + yaml + "\n", ConfigFormat.Yaml));
        Assert.Contains("'v'", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void KeysAreTheirTextInAnyStyle()
    {
        var config = EffectiveConfig.FromText("1: a\ntrue: b\nnull: c\n'x y': d\n", ConfigFormat.Yaml);
        Assert.Equal("{\"1\":\"a\",\"null\":\"c\",\"true\":\"b\",\"x y\":\"d\"}", config.CanonicalJson);
    }

    [Fact]
    public void ComplexKeysAreRejected()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("? [a, b]\n: c\n", ConfigFormat.Yaml));
        Assert.Contains("not a scalar", ex.Message, StringComparison.Ordinal);
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void AnchorsAndAliasesAreCopied()
    {
        var config = EffectiveConfig.FromText("base: &b {model: m1, t: 0.5}\nother: *b\nlist: [*b]\n", ConfigFormat.Yaml);
        Assert.Equal(
            "{\"base\":{\"model\":\"m1\",\"t\":0.5},\"list\":[{\"model\":\"m1\",\"t\":0.5}],\"other\":{\"model\":\"m1\",\"t\":0.5}}",
            config.CanonicalJson);
    }

    [Fact]
    public void AliasesThatExpandPastAMillionValuesAreRefusedBeforeAnyIsConverted()
    {
        // 9^12 values once expanded: counting them one by one (as converting does) would never end.
        var yaml = new System.Text.StringBuilder("l0: &l0 [x, x, x, x, x, x, x, x, x]\n");
        for (int level = 1; level <= 11; level++)
        {
            string alias = $"*l{level - 1}";
            yaml.Append($"l{level}: &l{level} [{string.Join(", ", System.Linq.Enumerable.Repeat(alias, 9))}]\n");
        }

        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(yaml.ToString(), ConfigFormat.Yaml));
        Assert.Contains("expands to more than 1000000 values", ex.Message, StringComparison.Ordinal);

        // Below the limit, shared nodes still expand in full.
        var small = EffectiveConfig.FromText("a: &a [1, 2]\nb: &b [*a, *a]\nc: [*b, *b]\n", ConfigFormat.Yaml);
        Assert.Equal("{\"a\":[1,2],\"b\":[[1,2],[1,2]],\"c\":[[[1,2],[1,2]],[[1,2],[1,2]]]}", small.CanonicalJson);
    }

    [Fact]
    public void MergeKeysMergeWithExplicitKeysWinning()
    {
        string yaml = """
            base: &base
              model: m1
              t: 0.5
            extra: &extra
              t: 0.9
              retries: 3
            job:
              t: 0.7
              <<: [*base, *extra]
            """;
        var config = EffectiveConfig.FromText(yaml, ConfigFormat.Yaml);
        Assert.Equal("{\"model\":\"m1\",\"retries\":3,\"t\":0.7}", JsonCanonicalizer.Canonicalize(config.Root["job"]));
    }

    [Fact]
    public void QuotedMergeKeyIsAnOrdinaryKey()
    {
        var config = EffectiveConfig.FromText("a: &a {x: 1}\nb:\n  '<<': *a\n", ConfigFormat.Yaml);
        Assert.Equal("{\"a\":{\"x\":1},\"b\":{\"<<\":{\"x\":1}}}", config.CanonicalJson);
    }

    [Fact]
    public void MergeOfAScalarIsRejected()
    {
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("a: &a 1\nb:\n  <<: *a\n", ConfigFormat.Yaml));
    }

    [Fact]
    public void SelfReferencingAliasHitsTheDepthLimit()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("x: &a [*a]\n", ConfigFormat.Yaml));
        Assert.Contains("64", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeepNestingIsRejectedBeforeItCanOverflowTheStack()
    {
        string yaml = "a: " + new string('[', 100_000) + new string(']', 100_000) + "\n";
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(yaml, ConfigFormat.Yaml));
        Assert.Equal(1, ex.Line);
        Assert.Equal(67, ex.Column);
        Assert.Contains("deeper than 64 levels", ex.Message, StringComparison.Ordinal);

        string ok = "a: " + new string('[', 63) + new string(']', 63) + "\n";
        Assert.StartsWith("{\"a\":[[[", EffectiveConfig.FromText(ok, ConfigFormat.Yaml).CanonicalJson, StringComparison.Ordinal);
    }

    [Fact]
    public void AliasBombIsRejected()
    {
        string yaml = """
            a: &a [x, x, x, x, x, x, x, x, x, x]
            b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
            c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
            d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
            e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
            f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
            g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
            """;
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(yaml, ConfigFormat.Yaml));
        Assert.Contains("more than", ex.Message, StringComparison.Ordinal);
    }
}
