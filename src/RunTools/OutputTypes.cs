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
        Mode = record.Mode;
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

    public ArtifactMode Mode { get; }

    public long Size { get; }

    public string Sha256 { get; }

    public string? Step { get; }

    public string? Key { get; }

    public int Attempt { get; }

    public DateTime AddedAt { get; }

    public override string ToString() => Name;
}
