using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using RunTools.Core;

namespace RunTools;

/// <summary>
/// Completes run ids (and, with <see cref="RunNameCompleter"/>, names) from the root the command
/// line names: a runs folder, or a database (one query, given up after <see cref="DatabaseTimeout"/>).
/// A Tab never throws, never prompts for a password and never waits longer than that.
/// </summary>
public class RunIdCompleter : IArgumentCompleter
{
    /// <summary>The most a Tab waits on a database: loading the store, connecting and the query.</summary>
    internal static readonly TimeSpan DatabaseTimeout = TimeSpan.FromSeconds(2);

    private static readonly char[] s_needsQuotes = { ' ', '\'', '"', '$', '`', '(', ')', ';', ',', '{', '}', '@', '&' };

    public IEnumerable<CompletionResult> CompleteArgument(string commandName, string parameterName, string wordToComplete, CommandAst commandAst, IDictionary fakeBoundParameters)
    {
        string typed = (wordToComplete ?? string.Empty).Trim('\'', '"');
        var pattern = new WildcardPattern(typed + "*", WildcardOptions.IgnoreCase);
        try
        {
            pattern.IsMatch(string.Empty);
        }
        catch (WildcardPatternException)
        {
            // A half-typed bracket ('[a') completes as literal text rather than failing.
            pattern = new WildcardPattern(WildcardPattern.Escape(typed) + "*", WildcardOptions.IgnoreCase);
        }

        string root = fakeBoundParameters["Root"] is { } given ? (given is IEnumerable e and not string ? e.Cast<object>().First().ToString()! : given.ToString()!)
            : Environment.GetEnvironmentVariable(RunCmdletBase.RootVariable) is { Length: > 0 } env ? env : "runs";

        List<string> values;
        try
        {
            values = Core.Storage.RootLocation.IsStoreUri(root)
                ? DatabaseValues(Core.Storage.RootLocation.Parse(root, Path.GetFullPath))
                : Values(new RunsRoot(ResolveAgainstLocation(root))).ToList();
        }
        catch (Exception)
        {
            // A completer has no one to report to: a root it cannot read (malformed, missing, no rights) completes nothing.
            yield break;
        }

        foreach (string value in values.Where(v => pattern.IsMatch(v)).Distinct(StringComparer.OrdinalIgnoreCase))
        {
            // -RunId and -Name take wildcards: a name with [ ] * ? or ` is completed escaped, so
            // that the completed text selects that run and no other.
            string literal = WildcardPattern.Escape(value);
            string text = literal.IndexOfAny(s_needsQuotes) >= 0 ? "'" + literal.Replace("'", "''") + "'" : literal;
            yield return new CompletionResult(text, value, CompletionResultType.ParameterValue, value);
        }
    }

    /// <summary>A relative root means relative to the PowerShell location, not the process directory.</summary>
    private static string ResolveAgainstLocation(string root)
    {
        string? location = null;
        try
        {
            // Completion runs on the pipeline thread, so a nested pipeline can ask for the location.
            using var ps = PowerShell.Create(RunspaceMode.CurrentRunspace);
            location = ps.AddCommand("Get-Location").AddParameter("PSProvider", "FileSystem").Invoke<PathInfo>().FirstOrDefault()?.ProviderPath;
        }
        catch (Exception ex) when (ex is PSInvalidOperationException || ex is RuntimeException)
        {
            // No usable runspace: fall back to the process directory.
        }

        return Path.IsPathRooted(root) || location is null ? Path.GetFullPath(root) : Path.GetFullPath(Path.Combine(location, root));
    }

    protected virtual IEnumerable<string> Values(RunsRoot root) => root.EnumerateRunIds().Reverse();

    /// <summary>What to complete from a database's runs (newest id first): their ids, in that order, as from a folder.</summary>
    private protected virtual IEnumerable<string> Values(IReadOnlyList<(string RunId, string Name)> newestFirst) => newestFirst.Select(r => r.RunId);

    private List<string> DatabaseValues(Core.Storage.RootLocation root) =>
        Values(Core.Storage.RunCatalogs.TryListRunNames(root, DatabaseTimeout)).Where(v => v.Length > 0).ToList();
}

public sealed class RunNameCompleter : RunIdCompleter
{
    protected override IEnumerable<string> Values(RunsRoot root) =>
        root.ListRuns().Where(l => l.State is not null).Select(l => l.State!.Name);

    // In run id order, as from a folder (a run whose creation was cut short has no name yet: skipped).
    private protected override IEnumerable<string> Values(IReadOnlyList<(string RunId, string Name)> newestFirst) => newestFirst.Reverse().Select(r => r.Name);
}
