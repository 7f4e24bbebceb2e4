using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;

namespace RunTools.Core.Conversion;

/// <summary>
/// A step's declared output files (Invoke-RunStep -OutputFile): paths or globs (<c>*</c> and <c>?</c> within a segment, <c>**</c> for
/// any depth), relative to the run directory or absolute. '/' and '\' both separate segments.
/// </summary>
public static class OutputFilePatterns
{
    private static readonly char[] s_wildcards = { '*', '?' };

    /// <summary>The existing files a pattern names, sorted; empty when none exist.</summary>
    public static IReadOnlyList<string> Expand(string runPath, string pattern)
    {
        if (string.IsNullOrWhiteSpace(pattern))
        {
            return Array.Empty<string>();
        }

        string normalized = pattern.Replace('\\', '/');
        string full = Path.IsPathRooted(pattern) ? normalized : runPath.Replace('\\', '/').TrimEnd('/') + "/" + normalized;
        if (full.IndexOfAny(s_wildcards) < 0)
        {
            string file = Path.GetFullPath(full);
            return File.Exists(file) ? new[] { file } : Array.Empty<string>();
        }

        // The fixed prefix (no wildcard) is the folder the walk starts in.
        var segments = full.Split('/');
        int firstWild = Array.FindIndex(segments, s => s.IndexOfAny(s_wildcards) >= 0);
        string baseDirectory = string.Join("/", segments.Take(firstWild));
        if (baseDirectory.Length == 0)
        {
            baseDirectory = "/";
        }

        baseDirectory = Path.GetFullPath(baseDirectory);
        if (!Directory.Exists(baseDirectory))
        {
            return Array.Empty<string>();
        }

        var regex = new Regex("^" + ToRegex(segments.Skip(firstWild)) + "$", RegexOptions.CultureInvariant);
        var matches = new List<string>();
        foreach (string file in Directory.EnumerateFiles(baseDirectory, "*", SearchOption.AllDirectories))
        {
            string relative = file.Substring(baseDirectory.Length).TrimStart(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar).Replace('\\', '/');
            if (regex.IsMatch(relative))
            {
                matches.Add(file);
            }
        }

        matches.Sort(StringComparer.Ordinal);
        return matches;
    }

    private static string ToRegex(IEnumerable<string> segments)
    {
        string tail = string.Join("/", segments);
        var builder = new StringBuilder();
        for (int i = 0; i < tail.Length; i++)
        {
            char c = tail[i];
            if (c == '*' && i + 1 < tail.Length && tail[i + 1] == '*')
            {
                bool slashAfter = i + 2 < tail.Length && tail[i + 2] == '/';
                builder.Append(slashAfter ? "(?:[^/]+/)*" : ".*"); // "**/" any folders (or none); a final "**" anything
                i += slashAfter ? 2 : 1;
                continue;
            }

            builder.Append(c switch
            {
                '*' => "[^/]*",
                '?' => "[^/]",
                _ => Regex.Escape(c.ToString()),
            });
        }

        return builder.ToString();
    }
}
