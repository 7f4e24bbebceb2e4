using System;
using System.Collections;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools;

/// <summary>One journal event, as Get-RunEvent returns it.</summary>
public sealed class RunEvent
{
    internal RunEvent(string runId, JournalEvent e)
    {
        RunId = runId;
        Sequence = e.Sequence;
        Timestamp = e.Timestamp.LocalDateTime;
        Type = e.Type;
        Step = e.Step;
        Key = e.Key;
        Attempt = e.Attempt;
        Data = e.DataDictionary;
    }

    public string RunId { get; }

    public long Sequence { get; }

    public DateTime Timestamp { get; }

    /// <summary>The event type (run_created, item_completed, ...; see docs/run-format.md).</summary>
    public string Type { get; }

    public string? Step { get; }

    public string? Key { get; }

    public int? Attempt { get; }

    /// <summary>Every other member of the journal line.</summary>
    public IDictionary Data { get; }

    public override string ToString() => $"{Sequence} {Type}";
}

/// <summary>A file recorded with Add-RunArtifact.</summary>
public sealed class RunArtifact
{
    internal RunArtifact(Core.RunDirectory run, ArtifactRecord record)
    {
        RunId = run.RunId;
        Name = record.Name;
        Path = run.ResolveRecordedPath(record.Path);
        RecordedPath = record.Path;
        Mode = record.Mode.ToString();
        Size = record.Size;
        Sha256 = record.Sha256;
        Step = record.Step;
        Key = record.Key;
        Attempt = record.Attempt;
        AddedAt = record.AddedAt.LocalDateTime;
    }

    public string RunId { get; }

    public string Name { get; }

    /// <summary>Full path of the file.</summary>
    public string Path { get; }

    /// <summary>The path as the journal records it (relative to the run directory when copied).</summary>
    public string RecordedPath { get; }

    /// <summary>The <see cref="ArtifactMode"/> name (Copy or Reference); a string so JSON and CSV get the name.</summary>
    public string Mode { get; }

    public long Size { get; }

    public string Sha256 { get; }

    public string? Step { get; }

    public string? Key { get; }

    public int Attempt { get; }

    public DateTime AddedAt { get; }

    public override string ToString() => Name;
}

/// <summary>What Test-Run returns for one run: <c>(Test-Run $id).IsValid | Should -BeTrue</c>.</summary>
public sealed class RunTestResult
{
    internal RunTestResult(Core.Engine.RunTestResult result)
    {
        RunId = result.Run.RunId;
        Root = result.Run.Root;
        Path = result.Run.DatabaseRoot is null ? result.Run.Path : null;
        Name = result.State?.Name;
        Status = result.State?.Status.ToString();
        IsValid = result.IsValid;
        var problems = new RunProblem[result.Problems.Count];
        for (int i = 0; i < problems.Length; i++)
        {
            problems[i] = new RunProblem(RunId, result.Problems[i]);
        }

        Problems = problems;
        FilesChecked = result.FilesChecked;
        BytesChecked = result.BytesChecked;
    }

    public string RunId { get; }

    public string? Name { get; }

    /// <summary>The <see cref="RunStatus"/> name as the journal tells it (a string, as RunInfo.Status); null when the run cannot be read.</summary>
    public string? Status { get; }

    /// <summary>The runs root, as RunInfo.Root: a folder, or a database's URI without its password.</summary>
    public string Root { get; }

    /// <summary>The run folder; null for a run held in a database (it has no folder that is the run).</summary>
    public string? Path { get; }

    /// <summary>True when no problem is an error (warnings do not count).</summary>
    public bool IsValid { get; }

    public RunProblem[] Problems { get; }

    public int Errors => Array.FindAll(Problems, p => p.SeverityValue == RunProblemSeverity.Error).Length;

    public int Warnings => Problems.Length - Errors;

    /// <summary>Recorded files whose presence, size and SHA-256 were checked.</summary>
    public int FilesChecked { get; }

    public long BytesChecked { get; }

    public override string ToString() => $"{RunId}: {(IsValid ? "valid" : "invalid")}, {Errors} error(s), {Warnings} warning(s)";
}

/// <summary>One thing Test-Run found wrong, tied to the unit (step, item key) a resume would redo.</summary>
public sealed class RunProblem
{
    internal RunProblem(string runId, Core.Engine.RunProblem problem)
    {
        RunId = runId;
        Kind = problem.Kind.ToString();
        SeverityValue = problem.Severity;
        Path = problem.Path;
        Expected = problem.Expected;
        Actual = problem.Actual;
        Step = problem.Step;
        Key = problem.Key;
        Note = problem.Note;
    }

    public string RunId { get; }

    /// <summary>The <see cref="RunProblemKind"/> name; a string so JSON and CSV get the name.</summary>
    public string Kind { get; }

    /// <summary>The <see cref="RunProblemSeverity"/> name (Error or Warning).</summary>
    public string Severity => SeverityValue.ToString();

    internal RunProblemSeverity SeverityValue { get; }

    /// <summary>The file, relative to the run directory ('/' separators), or absolute for a referenced artifact.</summary>
    public string Path { get; }

    public string Expected { get; }

    public string Actual { get; }

    public string? Step { get; }

    public string? Key { get; }

    /// <summary>The unit affected: step, step/key, or empty for run-level files.</summary>
    public string Unit => Step is null ? string.Empty : Key is null ? Step : $"{Step}/{Key}";

    /// <summary>Why it matters and what to do.</summary>
    public string? Note { get; }

    public override string ToString() => $"{Severity} {Kind} {Path}: expected {Expected}, found {Actual}";
}

/// <summary>One Compare-Run row, in the manner of Compare-Object.</summary>
public sealed class RunDifference
{
    internal RunDifference(string referenceRunId, string differenceRunId, Core.Engine.RunDifference row)
    {
        ReferenceRunId = referenceRunId;
        DifferenceRunId = differenceRunId;
        Property = row.Property.ToString();
        Name = row.Name;
        // Status and step rows hold enums; their names, as for Kind, so JSON and CSV do not get numbers.
        ReferenceValue = row.ReferenceValue is Enum r ? r.ToString() : row.ReferenceValue;
        DifferenceValue = row.DifferenceValue is Enum d ? d.ToString() : row.DifferenceValue;
        Kind = row.Kind.ToString();
        SideIndicator = row.SideIndicator;
    }

    public string ReferenceRunId { get; }

    public string DifferenceRunId { get; }

    /// <summary>The <see cref="RunComparisonProperty"/> name; a string so JSON and CSV get the name.</summary>
    public string Property { get; }

    /// <summary>A config key path, a step name, an artifact as step/key/name, or hash, status, format_version.</summary>
    public string Name { get; }

    public object? ReferenceValue { get; }

    public object? DifferenceValue { get; }

    /// <summary>The <see cref="RunDifferenceKind"/> name; a string so JSON and CSV get the name.</summary>
    public string Kind { get; }

    /// <summary>'&lt;=' only in the reference run, '=&gt;' only in the difference run, '&lt;&gt;' in both but different, '==' equal.</summary>
    public string SideIndicator { get; }

    public override string ToString() => $"{Property} {Name}: {ReferenceValue} {SideIndicator} {DifferenceValue}";
}
