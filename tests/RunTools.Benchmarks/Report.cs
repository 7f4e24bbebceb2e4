using System;
using System.Collections.Generic;
using System.IO;
using System.Text;

namespace RunTools.Benchmarks;

/// <summary>One row of the results table.</summary>
internal sealed class ResultRow
{
    public ResultRow(string benchmark, string measured, string baseline, double? ratio, string goal, bool? met)
    {
        Benchmark = benchmark;
        Measured = measured;
        Baseline = baseline;
        Ratio = ratio;
        Goal = goal;
        Met = met;
    }

    public string Benchmark { get; }

    public string Measured { get; }

    public string Baseline { get; }

    public double? Ratio { get; }

    public string Goal { get; }

    /// <summary>Null for a figure that is reported only, with no goal.</summary>
    public bool? Met { get; }
}

/// <summary>Collects rows and raw figures; renders them as markdown.</summary>
internal sealed class Report
{
    public const string StartMarker = "<!-- results:start -->";
    public const string EndMarker = "<!-- results:end -->";

    /// <summary>The pwsh family's own block, so that one family's run leaves the other's results as they are.</summary>
    public const string PwshStartMarker = "<!-- pwsh-results:start -->";
    public const string PwshEndMarker = "<!-- pwsh-results:end -->";

    private readonly List<ResultRow> _rows = new();
    private readonly List<string> _facts = new();
    private readonly List<(string Section, string Line)> _details = new();

    public IReadOnlyList<ResultRow> Rows => _rows;

    public void AddFact(string fact) => _facts.Add(fact);

    public void AddRow(ResultRow row) => _rows.Add(row);

    /// <summary>A raw number or breakdown line, grouped under its benchmark.</summary>
    public void AddDetail(string section, string line)
    {
        _details.Add((section, line));
        Console.Error.WriteLine($"  [{section}] {line}");
    }

    public string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.AppendLine("Machine:");
        sb.AppendLine();
        foreach (string fact in _facts)
        {
            sb.Append("- ").AppendLine(fact);
        }

        sb.AppendLine();
        sb.AppendLine("| benchmark | measured | baseline | ratio | goal | met |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var row in _rows)
        {
            string ratio = row.Ratio is { } r ? Measure.Ratio(r) : "n/a";
            string met = row.Met is null ? "n/a" : row.Met.Value ? "yes" : "**no**";
            sb.AppendLine($"| {row.Benchmark} | {row.Measured} | {row.Baseline} | {ratio} | {row.Goal} | {met} |");
        }

        string? section = null;
        foreach (var (name, line) in _details)
        {
            if (name != section)
            {
                sb.AppendLine();
                sb.AppendLine($"Raw figures — {name}:");
                sb.AppendLine();
                section = name;
            }

            sb.Append("- ").AppendLine(line);
        }

        return sb.ToString();
    }

    /// <summary>Replaces the text between the result markers; the rest of the file is left as written.</summary>
    public static void WriteDoc(string path, string markdown) => WriteDoc(path, markdown, StartMarker, EndMarker, "Results");

    /// <summary>
    /// Replaces the text between <paramref name="startMarker"/> and <paramref name="endMarker"/>;
    /// without them, appends a section <paramref name="heading"/> that has them.
    /// </summary>
    public static void WriteDoc(string path, string markdown, string startMarker, string endMarker, string heading)
    {
        string block = startMarker + "\n" + markdown.Replace("\r\n", "\n", StringComparison.Ordinal).TrimEnd('\n') + "\n" + endMarker;
        string text = File.Exists(path) ? File.ReadAllText(path) : "# Performance\n";
        // Only markers on a line of their own count, so prose may mention them.
        int start = FindMarkerLine(text, startMarker, 0);
        int end = start < 0 ? -1 : FindMarkerLine(text, endMarker, start + startMarker.Length);
        if (start >= 0 && end > start)
        {
            text = text.Substring(0, start) + block + text.Substring(end + endMarker.Length);
        }
        else
        {
            text = text.TrimEnd('\n') + "\n\n## " + heading + "\n\n" + block + "\n";
        }

        File.WriteAllText(path, text, new UTF8Encoding(false));
    }

    private static int FindMarkerLine(string text, string marker, int from)
    {
        for (int at = text.IndexOf(marker, from, StringComparison.Ordinal); at >= 0; at = text.IndexOf(marker, at + 1, StringComparison.Ordinal))
        {
            bool lineStart = at == 0 || text[at - 1] == '\n';
            int after = at + marker.Length;
            bool lineEnd = after == text.Length || text[after] == '\n' || text[after] == '\r';
            if (lineStart && lineEnd)
            {
                return at;
            }
        }

        return -1;
    }
}
