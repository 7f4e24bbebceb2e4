using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

public enum ConfigChangeKind
{
    Added,
    Removed,
    Changed,
}

/// <summary>One difference between two configs; values are canonical JSON text, null when absent.</summary>
public sealed class ConfigChange
{
    public ConfigChange(string path, ConfigChangeKind kind, string? oldValue, string? newValue)
    {
        Path = path;
        Kind = kind;
        OldValue = oldValue;
        NewValue = newValue;
    }

    /// <summary>Key path such as <c>generator.model</c>, <c>items[2]</c> or <c>['a.b']</c>; empty for the root itself.</summary>
    public string Path { get; }

    public ConfigChangeKind Kind { get; }

    public string? OldValue { get; }

    public string? NewValue { get; }

    public override string ToString() => $"{Kind} {(Path.Length == 0 ? "(root)" : Path)}: {OldValue ?? "-"} -> {NewValue ?? "-"}";
}

/// <summary>Names the keys that differ between two configs, for drift errors and the resume history.</summary>
public static class ConfigDiff
{
    /// <summary>
    /// Differences from <paramref name="reference"/> (the stored config) to <paramref name="difference"/>
    /// (the new one), sorted by path (ordinal). Equal values, compared canonically, give an empty list.
    /// </summary>
    public static IReadOnlyList<ConfigChange> Compare(JsonNode? reference, JsonNode? difference)
    {
        var changes = new List<ConfigChange>();
        CompareNodes(reference, difference, string.Empty, changes);
        changes.Sort((a, b) => string.CompareOrdinal(a.Path, b.Path));
        return changes;
    }

    /// <summary>E.g. <c>Changed: a, b; Added: c; Removed: d</c>; <c>no changes</c> when empty.</summary>
    public static string Summarize(IReadOnlyList<ConfigChange> changes)
    {
        if (changes is null || changes.Count == 0)
        {
            return "no changes";
        }

        var sb = new StringBuilder();
        foreach (var kind in new[] { ConfigChangeKind.Changed, ConfigChangeKind.Added, ConfigChangeKind.Removed })
        {
            var paths = changes.Where(c => c.Kind == kind).Select(c => ConfigPath.Display(c.Path)).ToList();
            if (paths.Count == 0)
            {
                continue;
            }

            if (sb.Length > 0)
            {
                sb.Append("; ");
            }

            sb.Append(kind).Append(": ").Append(string.Join(", ", paths));
        }

        return sb.ToString();
    }

    private static void CompareNodes(JsonNode? oldNode, JsonNode? newNode, string path, List<ConfigChange> changes)
    {
        string oldText = JsonCanonicalizer.Canonicalize(oldNode);
        string newText = JsonCanonicalizer.Canonicalize(newNode);
        if (string.Equals(oldText, newText, StringComparison.Ordinal))
        {
            return;
        }

        if (oldNode is JsonObject oldObj && newNode is JsonObject newObj)
        {
            foreach (var member in oldObj)
            {
                string childPath = ConfigPath.Key(path, member.Key);
                if (newObj.TryGetPropertyValue(member.Key, out var newValue))
                {
                    CompareNodes(member.Value, newValue, childPath, changes);
                }
                else
                {
                    changes.Add(new ConfigChange(childPath, ConfigChangeKind.Removed, JsonCanonicalizer.Canonicalize(member.Value), null));
                }
            }

            foreach (var member in newObj)
            {
                if (!oldObj.ContainsKey(member.Key))
                {
                    changes.Add(new ConfigChange(ConfigPath.Key(path, member.Key), ConfigChangeKind.Added, null, JsonCanonicalizer.Canonicalize(member.Value)));
                }
            }

            return;
        }

        // Equal-length arrays are compared element by element; otherwise the array changed as a whole
        // (an insertion would make every later index look changed).
        if (oldNode is JsonArray oldArray && newNode is JsonArray newArray && oldArray.Count == newArray.Count)
        {
            for (int i = 0; i < oldArray.Count; i++)
            {
                CompareNodes(oldArray[i], newArray[i], ConfigPath.Index(path, i), changes);
            }

            return;
        }

        changes.Add(new ConfigChange(path, ConfigChangeKind.Changed, oldText, newText));
    }
}
