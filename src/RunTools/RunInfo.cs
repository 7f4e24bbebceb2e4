using System;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>A run as operators see it: what Get-Run, Start-Run and Resume-Run return.</summary>
public sealed class RunInfo
{
    internal RunInfo(RunState state, string root, string path)
    {
        RunId = state.RunId;
        Name = state.Name;
        Status = state.Status;
        Root = root;
        Path = path;
        CreatedAt = state.CreatedAt.LocalDateTime;
        UpdatedAt = state.UpdatedAt.LocalDateTime;
        StartedAt = state.StartedAt?.LocalDateTime;
        EndedAt = state.EndedAt?.LocalDateTime;
        Attempt = state.Attempt;
        StepsTotal = state.StepsTotal;
        StepsCompleted = state.StepsCompleted;
        ItemsCompleted = state.ItemsCompleted;
        ItemsSkipped = state.ItemsSkipped;
        CurrentStep = state.CurrentStep;
        ConfigHash = state.Config.Hash;
        ScriptHash = state.Script.Hash;
        Migrated = state.Migrated;
        SourceFormat = state.SourceFormat;
        Owner = state.Status is RunStatus.Running or RunStatus.Stopping ? state.Owner?.ToString() : null;
        FormatVersion = state.FormatVersion;
        Error = state.Error;
    }

    public string RunId { get; }

    public string Name { get; }

    public RunStatus Status { get; }

    /// <summary>The runs root the run lives under.</summary>
    public string Root { get; }

    /// <summary>The run directory.</summary>
    public string Path { get; }

    public DateTime CreatedAt { get; }

    public DateTime UpdatedAt { get; }

    public DateTime? StartedAt { get; }

    public DateTime? EndedAt { get; }

    public int Attempt { get; }

    public int StepsTotal { get; }

    public int StepsCompleted { get; }

    public long ItemsCompleted { get; }

    /// <summary>Items set aside (in doubt or failed, resolved as skip): not run in this run.</summary>
    public long ItemsSkipped { get; }

    public string? CurrentStep { get; }

    public string ConfigHash { get; }

    public string ScriptHash { get; }

    public bool Migrated { get; }

    public string? SourceFormat { get; }

    /// <summary>pid@host of the owning process while the run is Running or Stopping.</summary>
    public string? Owner { get; }

    public int FormatVersion { get; }

    /// <summary>Why the last attempt failed, when it did.</summary>
    public string? Error { get; }

    public override string ToString() => RunId;

    internal static RunInfo From(RunDirectory run, RunState state) =>
        new(state, System.IO.Path.GetDirectoryName(run.Path) ?? run.Path, run.Path);
}
