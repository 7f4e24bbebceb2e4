using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace RunTools.Core.Tests.Corpus;

/// <summary>
/// One case of the bad-input corpus (tests/corpus/cases/*.json; the format is in tests/corpus/README.md).
/// The same entries drive xUnit (the "core" operation) and Pester (the "ps" command).
/// </summary>
internal sealed class CorpusCase
{
    private CorpusCase(string family, string name, JsonObject node)
    {
        Family = family;
        Name = name;
        Node = node;
    }

    public string Family { get; }

    public string Name { get; }

    public string Id => Family + "/" + Name;

    public JsonObject Node { get; }

    public JsonArray Setup => Node["setup"] as JsonArray ?? new JsonArray();

    /// <summary>The Core operation, or null when the case is for the module only.</summary>
    public JsonObject? Core => Node["core"] as JsonObject;

    /// <summary>What xUnit expects: "coreExpect" when the tiers differ, else "expect".</summary>
    public JsonObject Expect => (Node["coreExpect"] ?? Node["expect"]) as JsonObject
        ?? throw new InvalidDataException($"corpus case {Id} has no \"expect\"");

    /// <summary>The symptom of a known bug in Core, or null.</summary>
    public string? KnownFailing => (string?)Node["knownFailing"]?["core"];

    /// <summary>A known bug that would take the test process down with it (a stack overflow, an endless hang): not run in-process.</summary>
    public bool Unsafe => Node["unsafe"] is JsonArray tiers && tiers.Any(t => (string?)t == "core");

    public TimeSpan Timeout => TimeSpan.FromSeconds((double?)Node["timeoutSeconds"] ?? CorpusManifest.Load().TimeoutSeconds);

    public override string ToString() => Id;

    public static IReadOnlyList<CorpusCase> LoadAll()
    {
        var cases = new List<CorpusCase>();
        foreach (string file in Directory.GetFiles(Path.Combine(CorpusManifest.Folder, "cases"), "*.json").OrderBy(f => f, StringComparer.Ordinal))
        {
            var root = JsonNode.Parse(File.ReadAllText(file), documentOptions: new System.Text.Json.JsonDocumentOptions { CommentHandling = System.Text.Json.JsonCommentHandling.Skip })!.AsObject();
            string family = (string)root["family"]!;
            foreach (var node in root["cases"]!.AsArray())
            {
                var obj = node!.AsObject();
                cases.Add(new CorpusCase((string?)obj["family"] ?? family, (string)obj["name"]!, obj));
            }
        }

        return cases;
    }
}

/// <summary>tests/corpus/corpus.json: the settings both tiers share (timeout, the next-step heuristic).</summary>
internal sealed class CorpusManifest
{
    private static readonly Lazy<CorpusManifest> s_instance = new(() => new CorpusManifest());

    private CorpusManifest()
    {
        var root = JsonNode.Parse(File.ReadAllText(Path.Combine(Folder, "corpus.json")))!;
        TimeoutSeconds = (double)root["timeoutSeconds"]!;
        NextStep = new Regex((string)root["nextStepPattern"]!, RegexOptions.CultureInvariant);
        RequiredFamilies = root["requiredFamilies"]!.AsArray().Select(f => (string)f!).ToList();
        MinimumCases = (int)root["minimumCases"]!;
    }

    public static string Folder { get; } = FindFolder();

    public static string Fixtures => Path.Combine(Path.GetDirectoryName(Folder)!, "fixtures");

    public double TimeoutSeconds { get; }

    /// <summary>A message "has a next step" when this matches it (see tests/corpus/README.md for why this shape).</summary>
    public Regex NextStep { get; }

    public IReadOnlyList<string> RequiredFamilies { get; }

    public int MinimumCases { get; }

    public static CorpusManifest Load() => s_instance.Value;

    private static string FindFolder()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "tests", "corpus");
            if (File.Exists(Path.Combine(candidate, "corpus.json")))
            {
                return candidate;
            }
        }

        throw new DirectoryNotFoundException("tests/corpus/corpus.json not found above " + AppContext.BaseDirectory);
    }
}
