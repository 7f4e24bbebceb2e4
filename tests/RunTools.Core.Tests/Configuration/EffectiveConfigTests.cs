using System;
using System.Collections;
using System.Collections.Generic;
using System.Collections.Specialized;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using Xunit;

namespace RunTools.Core.Tests.Configuration;

public sealed class EffectiveConfigTests : IDisposable
{
    private const string SampleCanonical =
        "{\"enabled\":true,\"generator\":{\"model\":\"m1\",\"seeds\":[1,2,3],\"temperature\":0.7},\"name\":null,\"tags\":[\"a\",\"b\"]}";

    private readonly string _dir;

    public EffectiveConfigTests()
    {
        _dir = Path.Combine(Path.GetTempPath(), "runtools-config-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            foreach (string file in Directory.GetFiles(_dir))
            {
                File.SetAttributes(file, FileAttributes.Normal);
                if (!OperatingSystem.IsWindows())
                {
                    File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
                }
            }

            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public void SameConfigAsJsonYamlAndDictionaryHasOneHash()
    {
        string jsonPath = Write("run.json", """
            {
              "generator": { "model": "m1", "temperature": 0.7, "seeds": [1, 2, 3] },
              "enabled": true,
              "name": null,
              "tags": ["a", "b"]
            }
            """);
        string yamlPath = Write("run.yaml", """
            # comment
            generator:
              model: m1
              temperature: 0.7
              seeds: [1, 2, 3]
            enabled: true
            name: ~
            tags:
              - a
              - "b"
            """);
        var dictionary = new Hashtable
        {
            ["generator"] = new OrderedDictionary { ["model"] = "m1", ["temperature"] = 0.7, ["seeds"] = new object[] { 1, 2L, (byte)3 } },
            ["enabled"] = true,
            ["name"] = null,
            ["tags"] = new List<string> { "a", "b" },
        };

        var json = EffectiveConfig.FromFile(jsonPath);
        var yaml = EffectiveConfig.FromFile(yamlPath);
        var dict = EffectiveConfig.FromDictionary(dictionary);

        Assert.Equal(SampleCanonical, json.CanonicalJson);
        Assert.Equal(SampleCanonical, yaml.CanonicalJson);
        Assert.Equal(SampleCanonical, dict.CanonicalJson);
        Assert.Equal(Sha256(SampleCanonical), json.Hash);
        Assert.Equal(json.Hash, yaml.Hash);
        Assert.Equal(json.Hash, dict.Hash);
        Assert.Equal(ConfigFormat.Json, json.Format);
        Assert.Equal(ConfigFormat.Yaml, yaml.Format);
        Assert.Equal(ConfigFormat.Dictionary, dict.Format);
        Assert.Equal(Path.GetFullPath(jsonPath), json.SourcePath);
        Assert.Null(dict.SourcePath);
        Assert.Matches("^[0-9a-f]{64}$", json.Hash);
    }

    [Fact]
    public void KeyOrderAndWhitespaceDoNotChangeTheHash()
    {
        var a = EffectiveConfig.FromText("{\"b\":1,\"a\":{\"y\":[1,2],\"x\":\"s\"}}", ConfigFormat.Json);
        var b = EffectiveConfig.FromText("{\n  \"a\" : { \"x\" : \"s\" ,\n \"y\" : [ 1 , 2.0 ] } ,\r\n  \"b\" : 1e0\n}\n", ConfigFormat.Json);
        Assert.Equal(a.CanonicalJson, b.CanonicalJson);
        Assert.Equal(a.Hash, b.Hash);
    }

    [Fact]
    public void EmptyConfigIsTheEmptyObject()
    {
        Assert.Equal("{}", EffectiveConfig.Empty.CanonicalJson);
        Assert.Equal(Sha256("{}"), EffectiveConfig.Empty.Hash);
        Assert.Equal(ConfigFormat.None, EffectiveConfig.Empty.Format);
        Assert.Same(EffectiveConfig.Empty, EffectiveConfig.FromDictionary(null));
        Assert.Equal("{}", EffectiveConfig.FromFile(Write("empty.yaml", string.Empty)).CanonicalJson);
        Assert.Equal("{}", EffectiveConfig.FromText("# nothing but a comment\n", ConfigFormat.Yaml).CanonicalJson);
        Assert.Equal("{}", EffectiveConfig.FromText("---\n", ConfigFormat.Yaml).CanonicalJson);
        Assert.Equal("{}", EffectiveConfig.FromDictionary(new Hashtable()).CanonicalJson);
    }

    [Fact]
    public void RootIsADeepCloneThatCannotMakeTheHashStale()
    {
        var config = EffectiveConfig.FromText("{\"a\":{\"b\":1}}", ConfigFormat.Json);
        var root = config.Root;
        root["a"]!["b"] = 2;
        root["c"] = true;
        Assert.Equal("{\"a\":{\"b\":1}}", config.CanonicalJson);
        Assert.Equal(1, config.Root["a"]!["b"]!.GetValue<long>());
    }

    [Fact]
    public void JsonFileWithBomIsAccepted()
    {
        string path = Path.Combine(_dir, "bom.json");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("{\"a\":\"\u00e9\"}")]);
        Assert.Equal("{\"a\":\"\u00e9\"}", EffectiveConfig.FromFile(path).CanonicalJson);
        Assert.Equal("{\"a\":1}", EffectiveConfig.FromText("\uFEFF{\"a\":1}", ConfigFormat.Json).CanonicalJson);
        Assert.Equal("{\"a\":1}", EffectiveConfig.FromText("\uFEFFa: 1\n", ConfigFormat.Yaml).CanonicalJson);
    }

    [Fact]
    public void MalformedJsonReportsOneBasedLineAndColumn()
    {
        string path = Write("bad.json", "{\n  \"a\": 1,\n  \"b\": }\n");
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        string full = Path.GetFullPath(path);
        Assert.Equal(full, ex.File);
        Assert.Equal(3, ex.Line);
        Assert.Equal(8, ex.Column);
        Assert.StartsWith($"Config file '{full}' is not valid JSON at line 3, column 8: ", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith("Fix the file and try again.", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("LineNumber", ex.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorIds.InvalidConfig, ex.ErrorId);
        Assert.Equal(RunToolsErrorCategory.InvalidData, ex.Category);
    }

    [Fact]
    public void MalformedJsonColumnCountsCharactersNotBytes()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("{\"\u00e9\u00e9\": x}", ConfigFormat.Json));
        Assert.Equal(1, ex.Line);
        Assert.Equal(8, ex.Column);
        Assert.Null(ex.File);
        Assert.StartsWith("Config '<text>' is not valid JSON at line 1, column 8: ", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"a\": 1, // note\n}")]
    [InlineData("{\"a\": 1,}")]
    [InlineData("{'a': 1}")]
    [InlineData("{\"a\": 1} {}")]
    [InlineData("{\"a\": NaN}")]
    [InlineData("")]
    [InlineData("{\"a\": \"\\ud800\"}")]
    public void JsonIsStrict(string text)
    {
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(text, ConfigFormat.Json));
    }

    [Fact]
    public void JsonTextWithUnpairedSurrogateIsRejected()
    {
        string text = "{\n\"a\": \"x" + (char)0xD800 + "\"}";
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(text, ConfigFormat.Json));
        Assert.Equal(2, ex.Line);
        Assert.Equal(8, ex.Column);
    }

    [Fact]
    public void DeepJsonIsRejected()
    {
        string json = "{\"a\":" + new string('[', 100) + new string(']', 100) + "}";
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(json, ConfigFormat.Json));
        Assert.Equal(1, ex.Line);
    }

    [Fact]
    public void MalformedYamlReportsOneBasedLineAndColumn()
    {
        string path = Write("bad.yaml", "name: x\nsteps:\n  a: b\n    c: d\n");
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        string full = Path.GetFullPath(path);
        Assert.Equal(4, ex.Line);
        Assert.Equal(6, ex.Column);
        Assert.StartsWith($"Config file '{full}' is not valid YAML at line 4, column 6: ", ex.Message, StringComparison.Ordinal);
        Assert.EndsWith(". Fix the file and try again.", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void YamlWithUnclosedFlowSequenceIsInvalidConfig()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("a: [1, 2\nb: 3\n", ConfigFormat.Yaml));
        Assert.NotNull(ex.Line);
        Assert.Contains("is not valid YAML at line", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DuplicateJsonKeyIsReportedWithPosition()
    {
        string path = Write("dup.json", "{\n  \"outer\": {\n    \"a\": 1,\n    \"a\": 2\n  }\n}\n");
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(4, ex.Line);
        Assert.Equal(5, ex.Column);
        Assert.Equal(
            $"Config file '{Path.GetFullPath(path)}' has a duplicate key 'a' in 'outer' at line 4, column 5. Each key may appear only once in a mapping; remove or rename one of them.",
            ex.Message);
    }

    [Theory]
    [InlineData("a: 1\nb: 2\na: 3\n", "a", 3, 1)]
    [InlineData("x:\n  k: 1\n  'k': 2\n", "k", 3, 3)]
    [InlineData("a: 1\n!!str a: 2\n", "a", 2, 1)]
    [InlineData("t: 1\ntrue: 2\n\"true\": 3\n", "true", 3, 1)]
    public void DuplicateYamlKeyIsReportedWithPosition(string yaml, string key, int line, int column)
    {
        string path = Write("dup.yaml", yaml);
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        Assert.Contains($"duplicate key '{key}'", ex.Message, StringComparison.Ordinal);
        Assert.Contains(Path.GetFullPath(path), ex.Message, StringComparison.Ordinal);
        Assert.Equal(line, ex.Line);
        Assert.Equal(column, ex.Column);
    }

    [Theory]
    [InlineData("[1, 2]", ConfigFormat.Json, "an array")]
    [InlineData("\"text\"", ConfigFormat.Json, "a string")]
    [InlineData("null", ConfigFormat.Json, "null")]
    [InlineData("- a\n- b\n", ConfigFormat.Yaml, "an array")]
    [InlineData("just text\n", ConfigFormat.Yaml, "a string")]
    [InlineData("42\n", ConfigFormat.Yaml, "a number")]
    public void TopLevelMustBeAMapping(string text, ConfigFormat format, string what)
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(text, format, "/x/run.cfg"));
        Assert.Contains("'/x/run.cfg'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("top level, but it contains " + what + ".", ex.Message, StringComparison.Ordinal);
        Assert.Equal("/x/run.cfg", ex.File);
    }

    [Fact]
    public void MoreThanOneYamlDocumentIsRejected()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText("a: 1\n---\nb: 2\n", ConfigFormat.Yaml));
        Assert.Contains("more than one YAML document", ex.Message, StringComparison.Ordinal);
        Assert.Equal(3, ex.Line);
    }

    [Fact]
    public void InfinityInYamlIsRejectedWithAdviceToQuote()
    {
        string path = Write("inf.yaml", "limits:\n  max: .inf\n");
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        Assert.Contains("'limits.max'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("quote it", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, ex.Line);
        Assert.Equal(8, ex.Column);
        Assert.Equal("{\"limits\":{\"max\":\".inf\"}}", EffectiveConfig.FromText("limits:\n  max: '.inf'\n", ConfigFormat.Yaml).CanonicalJson);
    }

    [Theory]
    [InlineData("{\"a\": {\"b\": 9007199254740993}}", ConfigFormat.Json)]
    [InlineData("{\"a\": {\"b\": -9007199254740993}}", ConfigFormat.Json)]
    [InlineData("{\"a\": {\"b\": 123456789012345678901234567890}}", ConfigFormat.Json)]
    [InlineData("a:\n  b: 9007199254740993\n", ConfigFormat.Yaml)]
    [InlineData("a:\n  b: 0x20000000000001\n", ConfigFormat.Yaml)]
    public void IntegerBeyondTwoToThe53IsRejectedWithPath(string text, ConfigFormat format)
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromText(text, format));
        Assert.Contains("'a.b'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("2^53", ex.Message, StringComparison.Ordinal);
        Assert.Contains("quote it", ex.Message, StringComparison.Ordinal);
        Assert.NotNull(ex.Line);
    }

    [Fact]
    public void IntegerBeyondTwoToThe53FromDictionaryIsRejectedWithPath()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["a"] = new Hashtable { ["b"] = 9007199254740993L } }));
        Assert.Contains("'a.b'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("9007199254740993", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["a"] = ulong.MaxValue }));
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["a"] = 12345678901234567890m }));
    }

    [Fact]
    public void IntegersUpToTwoToThe53AreExact()
    {
        var config = EffectiveConfig.FromText("{\"max\": 9007199254740992, \"min\": -9007199254740992}", ConfigFormat.Json);
        Assert.Equal("{\"max\":9007199254740992,\"min\":-9007199254740992}", config.CanonicalJson);
        Assert.Equal(9007199254740992L, config.Root["max"]!.GetValue<long>());
    }

    [Fact]
    public void LargeDoublesSurviveTheStoredCanonicalForm()
    {
        var original = EffectiveConfig.FromText("big: 1.5e20\nsmall: 1e-9\n", ConfigFormat.Yaml);
        Assert.Equal("{\"big\":150000000000000000000,\"small\":1e-9}", original.CanonicalJson);

        var reloaded = EffectiveConfig.FromCanonicalJson(original.CanonicalJson);
        Assert.Equal(original.CanonicalJson, reloaded.CanonicalJson);
        Assert.Equal(original.Hash, reloaded.Hash);
        Assert.Equal(ConfigFormat.Json, reloaded.Format);
    }

    [Fact]
    public void FromCanonicalJsonStillRejectsBrokenText()
    {
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromCanonicalJson("{\"a\":1,\"a\":2}"));
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromCanonicalJson("[]"));
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromCanonicalJson("{\"a\":"));
    }

    [Fact]
    public void UnsupportedExtensionIsRejected()
    {
        string path = Write("x.toml", "a = 1\n");
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(
            $"Config file '{Path.GetFullPath(path)}' has an unsupported extension; use .json, .yaml or .yml (or, from PowerShell, .psd1), or pass a hashtable.",
            ex.Message);
        Assert.Equal(ErrorIds.InvalidConfig, ex.ErrorId);
    }

    [Fact]
    public void ADirectoryIsNotARegularFileWhateverItsName()
    {
        string folder = Path.Combine(Path.GetDirectoryName(Write("probe.json", "{}"))!, "settings");
        Directory.CreateDirectory(folder);
        var ex = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(folder));
        Assert.Equal(ErrorIds.NotRegularFile, ex.ErrorId);
    }

    [Fact]
    public void ExtensionsAreCaseInsensitiveAndYmlIsYaml()
    {
        Assert.Equal(ConfigFormat.Yaml, EffectiveConfig.FromFile(Write("a.yml", "a: 1\n")).Format);
        Assert.Equal(ConfigFormat.Json, EffectiveConfig.FromFile(Write("b.JSON", "{}")).Format);
        Assert.Equal(ConfigFormat.Yaml, EffectiveConfig.FromFile(Write("c.YAML", "a: 1\n")).Format);
    }

    [Fact]
    public void MissingFileIsObjectNotFound()
    {
        string path = Path.Combine(_dir, "nope.yaml");
        var ex = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(ErrorIds.InvalidConfig, ex.ErrorId);
        Assert.Equal(RunToolsErrorCategory.ObjectNotFound, ex.Category);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);

        var inMissingDir = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(Path.Combine(_dir, "no-dir", "run.json")));
        Assert.Equal(RunToolsErrorCategory.ObjectNotFound, inMissingDir.Category);
    }

    [Fact]
    public void UnreadableFileIsFileUnreadable()
    {
        string path = Write("locked.json", "{}");
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("Uses Unix file modes.");
        }
        else
        {
            File.SetUnixFileMode(path, UnixFileMode.None);
        }

        if (CanRead(path))
        {
            Assert.Skip("Running with privileges (e.g. root) that ignore file permissions.");
        }

        var ex = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(ErrorIds.FileUnreadable, ex.ErrorId);
        Assert.Equal(RunToolsErrorCategory.ReadError, ex.Category);
        Assert.Contains(path, ex.Message, StringComparison.Ordinal);
        Assert.IsType<UnauthorizedAccessException>(ex.InnerException);
    }

    [Fact]
    public void DirectoryInsteadOfFileIsNotRegularFile()
    {
        string path = Path.Combine(_dir, "dir.json");
        Directory.CreateDirectory(path);
        var ex = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(path));
        Assert.Equal(ErrorIds.NotRegularFile, ex.ErrorId);
        Assert.Equal(RunToolsErrorCategory.InvalidArgument, ex.Category);
    }

    [Fact]
    public void InvalidUtf8IsReported()
    {
        string json = Path.Combine(_dir, "bad-utf8.json");
        File.WriteAllBytes(json, [.. Encoding.ASCII.GetBytes("{\n\"a\": \""), 0xFF, .. Encoding.ASCII.GetBytes("\"}")]);
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(json));
        Assert.Contains("UTF-8", ex.Message, StringComparison.Ordinal);
        Assert.Equal(2, ex.Line);

        string yaml = Path.Combine(_dir, "bad-utf8.yaml");
        File.WriteAllBytes(yaml, [.. Encoding.ASCII.GetBytes("a: "), 0xC3, 0x28]);
        Assert.Contains("UTF-8", Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromFile(yaml)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DictionaryValuesOfCommonTypesAreStored()
    {
        var when = new DateTime(2024, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        var dictionary = new OrderedDictionary
        {
            ["char"] = 'x',
            ["sbyte"] = (sbyte)-1,
            ["ushort"] = (ushort)2,
            ["uint"] = 3u,
            ["ulong"] = 4ul,
            ["float"] = 1.1f,
            ["decimal"] = 2.5m,
            ["wholeDecimal"] = 10m,
            ["date"] = when,
            ["offset"] = new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.FromHours(2)),
            ["guid"] = new Guid("0f8fad5b-d9cb-469f-a165-70867728950e"),
            ["enum"] = DayOfWeek.Tuesday,
            ["uri"] = new Uri("https://example.com/a b"),
            ["node"] = JsonNode.Parse("{\"z\":[1,2.5]}"),
            ["nested"] = new Dictionary<string, object?> { ["list"] = new ArrayList { 1, "two", null } },
        };
        dictionary.Add(42, "int key"); // the int indexer of OrderedDictionary is positional

        var config = EffectiveConfig.FromDictionary(dictionary);
        Assert.Equal(
            "{\"42\":\"int key\",\"char\":\"x\",\"date\":\"2024-05-06T07:08:09.0000000Z\",\"decimal\":2.5,\"enum\":\"Tuesday\",\"float\":1.1,"
            + "\"guid\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"nested\":{\"list\":[1,\"two\",null]},\"node\":{\"z\":[1,2.5]},"
            + "\"offset\":\"2024-05-06T07:08:09.0000000+02:00\",\"sbyte\":-1,\"uint\":3,\"ulong\":4,\"uri\":\"https://example.com/a b\",\"ushort\":2,\"wholeDecimal\":10}",
            config.CanonicalJson);
    }

    [Fact]
    public void DictionaryValueOfUnsupportedTypeNamesPathAndType()
    {
        using var process = System.Diagnostics.Process.GetCurrentProcess();
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["a"] = new Hashtable { ["b"] = process } }));
        Assert.Equal(
            "Config value at 'a.b' has type System.Diagnostics.Process, which cannot be stored; use strings, numbers, booleans, arrays and hashtables.",
            ex.Message);

        var inList = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["items"] = new object[] { 1, new object() } }));
        Assert.Contains("'items[1]'", inList.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DictionaryCyclesAreRefusedAsSelfReferences()
    {
        var self = new Hashtable();
        self["self"] = self;
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(self));
        Assert.Contains("'self' contains itself", ex.Message, StringComparison.Ordinal);

        var list = new ArrayList();
        list.Add(list);
        Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["l"] = list }));
    }

    [Fact]
    public void DictionaryKeysThatCollideAsTextAreRejected()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { [1] = "a", ["1"] = "b" }));
        Assert.Contains("'1'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DictionaryNonFiniteNumbersAreRejected()
    {
        var ex = Assert.Throws<InvalidConfigException>(() => EffectiveConfig.FromDictionary(new Hashtable { ["x"] = double.NaN }));
        Assert.Contains("'x'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FromTextRejectsFormatsThatAreNotText()
    {
        Assert.Throws<ArgumentException>(() => EffectiveConfig.FromText("{}", ConfigFormat.Dictionary));
        Assert.Same(EffectiveConfig.Empty, EffectiveConfig.FromText("  ", ConfigFormat.None));
    }

    private static string Sha256(string text) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text))).ToLowerInvariant();

    private static bool CanRead(string path)
    {
        try
        {
            File.ReadAllBytes(path);
            return true;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }

    private string Write(string name, string content)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, content, new UTF8Encoding(false));
        return path;
    }
}
