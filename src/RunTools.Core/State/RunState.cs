using System;
using System.Collections.Generic;
using System.Linq;
using System.Text.Json.Serialization;
using RunTools.Core.Configuration;

namespace RunTools.Core.State;

/// <summary>
/// The state snapshot (run.json): everything a reader needs about a run without reading the
/// journal, plus the journal position it reflects. Item keys are not here (they would make the
/// snapshot grow with the run); only counts and the few keys in doubt.
/// </summary>
public sealed class RunState
{
    [JsonPropertyName("format_version")]
    public int FormatVersion { get; set; } = RunFormat.Version;

    [JsonPropertyName("run_id")]
    public string RunId { get; set; } = string.Empty;

    [JsonPropertyName("name")]
    [JsonConverter(typeof(RepeatedStringConverter))]
    public string Name { get; set; } = string.Empty;

    /// <summary>The stored status; see <see cref="RunDirectory.ReadState"/> for the derived one.</summary>
    [JsonPropertyName("status")]
    public RunStatus Status { get; set; } = RunStatus.Created;

    [JsonPropertyName("created_at")]
    public DateTimeOffset CreatedAt { get; set; }

    [JsonPropertyName("updated_at")]
    public DateTimeOffset UpdatedAt { get; set; }

    /// <summary>When the latest attempt started.</summary>
    [JsonPropertyName("started_at")]
    public DateTimeOffset? StartedAt { get; set; }

    /// <summary>When the latest attempt ended (null while running or never run).</summary>
    [JsonPropertyName("ended_at")]
    public DateTimeOffset? EndedAt { get; set; }

    [JsonPropertyName("attempt")]
    public int Attempt { get; set; }

    [JsonPropertyName("config")]
    public ConfigRecord Config { get; set; } = new();

    [JsonPropertyName("script")]
    public ScriptRecord Script { get; set; } = new();

    /// <summary>SHA-256 of parameters.json; null for a run that saved no parameters (created before they were saved).</summary>
    [JsonPropertyName("parameters_hash")]
    public string? ParametersHash { get; set; }

    [JsonPropertyName("migrated")]
    public bool Migrated { get; set; }

    [JsonPropertyName("source_format")]
    public string? SourceFormat { get; set; }

    /// <summary>The process of the latest attempt; it owns the run while it holds the lock.</summary>
    [JsonPropertyName("owner")]
    public OwnerRecord? Owner { get; set; }

    [JsonPropertyName("current_step")]
    public string? CurrentStep { get; set; }

    /// <summary>Steps named at creation (may be empty: steps are also learned as the script runs).</summary>
    [JsonPropertyName("declared_steps")]
    public List<string> DeclaredSteps { get; set; } = new();

    [JsonPropertyName("error")]
    public string? Error { get; set; }

    /// <summary>The most recent step, item or run error of any attempt (kept when a later attempt succeeds).</summary>
    [JsonPropertyName("last_error")]
    public string? LastError { get; set; }

    [JsonPropertyName("stop")]
    public StopRequest? Stop { get; set; }

    [JsonPropertyName("items_completed")]
    public long ItemsCompleted { get; set; }

    /// <summary>Items set aside over all steps (in doubt or failed, resolved as skip); the sum of the steps' counts, not stored.</summary>
    [JsonIgnore]
    public long ItemsSkipped => Steps.Sum(s => s.ItemsSkipped);

    [JsonPropertyName("steps")]
    public List<StepRecord> Steps { get; set; } = new();

    [JsonPropertyName("artifacts")]
    public List<ArtifactRecord> Artifacts { get; set; } = new();

    [JsonPropertyName("resume_history")]
    public List<ResumeRecord> ResumeHistory { get; set; } = new();

    [JsonPropertyName("journal")]
    public JournalPosition Journal { get; set; } = new();

    [JsonIgnore]
    public int StepsTotal => Math.Max(Steps.Count, DeclaredSteps.Count + Steps.FindAll(s => !DeclaredSteps.Contains(s.Name)).Count);

    [JsonIgnore]
    public int StepsCompleted => Steps.FindAll(s => s.Status == StepStatus.Completed).Count;

    /// <summary>Items whose last try failed, over all steps.</summary>
    [JsonIgnore]
    public long ItemsFailed => Sum(s => s.ItemsFailed);

    /// <summary>Items started and not recorded as finished (in flight, or in doubt when no attempt runs), over all steps.</summary>
    [JsonIgnore]
    public long ItemsOpen => Sum(s => s.ItemsOpen.Count);

    private long Sum(Func<StepRecord, long> count)
    {
        long total = 0;
        foreach (var step in Steps)
        {
            total += count(step);
        }

        return total;
    }

    public StepRecord? FindStep(string name) => Steps.Find(s => string.Equals(s.Name, name, StringComparison.Ordinal));

    /// <summary>
    /// What makes this state unusable, or null. The JSON reader fills a member that a document
    /// sets to null or to a number out of range as it is given: a hand-edited or hostile run.json
    /// (or snapshot row) must be refused here, not met later as a NullReferenceException, and a
    /// recorded file must never lead outside the run.
    /// </summary>
    internal string? FindDefect()
    {
        if (RunId is null || Name is null || Config?.Hash is null || Script?.Hash is null || Journal is null)
        {
            return "a required member (run_id, name, config, script or journal) is null";
        }

        if (Journal.Length < 0 || Journal.Sequence < 0 || Attempt < 0 || ItemsCompleted < 0)
        {
            return "a count or journal position is negative";
        }

        if (DeclaredSteps is null || DeclaredSteps.Contains(null!) || Steps is null || Artifacts is null || ResumeHistory is null)
        {
            return "a list (declared_steps, steps, artifacts or resume_history) is null or holds null";
        }

        foreach (var step in Steps)
        {
            if (step?.Name is null || step.ItemsOpen is null || step.ItemsOpen.Contains(null!))
            {
                return "a step, its name or its items_open is null";
            }

            if (step.Attempt < 0 || step.ItemsCompleted < 0 || step.ItemsFailed < 0 || step.ItemsSkipped < 0)
            {
                return $"step '{step.Name}' has a negative count";
            }

            if (step.Output is { } output && OutputRecord.FindDefect(output) is { } outputDefect)
            {
                return $"the output of step '{step.Name}': {outputDefect}";
            }
        }

        foreach (var artifact in Artifacts)
        {
            if (artifact?.Name is null || artifact.Path is null || artifact.Sha256 is null)
            {
                return "an artifact, or its name, path or sha256, is null";
            }

            if (artifact.Mode == ArtifactMode.Copy && Archive.ArchivePaths.ExplainUnsafe(artifact.Path) is { } unsafePath)
            {
                return $"the path '{artifact.Path}' of copied artifact '{artifact.Name}' {unsafePath}";
            }
        }

        foreach (var resume in ResumeHistory)
        {
            if (resume?.ConfigHash is null || resume.ScriptHash is null || resume.Drift is null || resume.Drift.Contains(null!))
            {
                return "a resume_history entry, or one of its members, is null";
            }
        }

        return null;
    }

    internal StepRecord GetOrAddStep(string name)
    {
        var step = FindStep(name);
        if (step is null)
        {
            step = new StepRecord { Name = name };
            Steps.Add(step);
        }

        return step;
    }
}

public sealed class ConfigRecord
{
    /// <summary>SHA-256 (lower-case hex) of config.json, the RFC 8785 canonical form.</summary>
    [JsonPropertyName("hash")]
    [JsonConverter(typeof(RepeatedStringConverter))]
    public string Hash { get; set; } = string.Empty;

    [JsonPropertyName("format")]
    public ConfigFormat Format { get; set; }

    /// <summary>Where the config was read from (absolute); resume reads it again from there.</summary>
    [JsonPropertyName("source_path")]
    public string? SourcePath { get; set; }
}

public sealed class ScriptRecord
{
    /// <summary>SHA-256 (lower-case hex) of script.ps1's bytes.</summary>
    [JsonPropertyName("hash")]
    [JsonConverter(typeof(RepeatedStringConverter))]
    public string Hash { get; set; } = string.Empty;

    [JsonPropertyName("source_path")]
    public string? SourcePath { get; set; }
}

public sealed class OwnerRecord
{
    [JsonPropertyName("pid")]
    public int ProcessId { get; set; }

    [JsonPropertyName("host")]
    public string Host { get; set; } = string.Empty;

    [JsonPropertyName("started_at")]
    public DateTimeOffset StartedAt { get; set; }

    public override string ToString() => $"{ProcessId}@{Host}";
}

public sealed class StopRequest
{
    [JsonPropertyName("requested_at")]
    public DateTimeOffset RequestedAt { get; set; }

    [JsonPropertyName("requested_by")]
    public string RequestedBy { get; set; } = string.Empty;

    [JsonPropertyName("reason")]
    public string? Reason { get; set; }
}

public sealed class StepRecord
{
    [JsonPropertyName("name")]
    public string Name { get; set; } = string.Empty;

    [JsonPropertyName("status")]
    public StepStatus Status { get; set; }

    /// <summary>The attempt that last started the step.</summary>
    [JsonPropertyName("attempt")]
    public int Attempt { get; set; }

    [JsonPropertyName("started_at")]
    public DateTimeOffset? StartedAt { get; set; }

    [JsonPropertyName("ended_at")]
    public DateTimeOffset? EndedAt { get; set; }

    [JsonPropertyName("duration_ms")]
    public long? DurationMs { get; set; }

    [JsonPropertyName("output")]
    public OutputRecord? Output { get; set; }

    [JsonPropertyName("error")]
    public string? Error { get; set; }

    [JsonPropertyName("items_completed")]
    public long ItemsCompleted { get; set; }

    [JsonPropertyName("items_failed")]
    public long ItemsFailed { get; set; }

    [JsonPropertyName("items_skipped")]
    public long ItemsSkipped { get; set; }

    /// <summary>Keys whose work started and was not recorded as finished, in journal order.</summary>
    [JsonPropertyName("items_open")]
    public List<string> ItemsOpen { get; set; } = new();

    /// <summary>True when the step was in doubt and resolved as skip: completed on the policy's word, with no output.</summary>
    [JsonPropertyName("skipped")]
    public bool Skipped { get; set; }
}

/// <summary>A recorded step output: a file under steps/&lt;name&gt;/.</summary>
public sealed class OutputRecord
{
    /// <summary>What makes a recorded output unusable, or null: its file is read back for replay, so its path must stay inside the run.</summary>
    internal static string? FindDefect(OutputRecord output)
    {
        if (output.Path is null || output.Sha256 is null)
        {
            return "its path or sha256 is null";
        }

        if (output.Size < 0)
        {
            return "its size is negative";
        }

        return Archive.ArchivePaths.ExplainUnsafe(output.Path) is { } unsafePath ? $"its path '{output.Path}' {unsafePath}" : null;
    }

    /// <summary>Path relative to the run directory, with '/' separators.</summary>
    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    [JsonPropertyName("size")]
    public long Size { get; set; }

    [JsonPropertyName("sha256")]
    public string Sha256 { get; set; } = string.Empty;

    /// <summary>How the bytes are encoded, as the writer declared it (the module writes "clixml").</summary>
    [JsonPropertyName("format")]
    public string? Format { get; set; }
}

public sealed class ArtifactRecord
{
    [JsonPropertyName("name")]
    public string Name { get; set; } = string.Empty;

    /// <summary>Relative to the run directory ('/' separators) when copied; absolute when referenced.</summary>
    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    [JsonPropertyName("mode")]
    public ArtifactMode Mode { get; set; }

    [JsonPropertyName("size")]
    public long Size { get; set; }

    [JsonPropertyName("sha256")]
    public string Sha256 { get; set; } = string.Empty;

    [JsonPropertyName("step")]
    public string? Step { get; set; }

    [JsonPropertyName("key")]
    public string? Key { get; set; }

    [JsonPropertyName("attempt")]
    public int Attempt { get; set; }

    [JsonPropertyName("added_at")]
    public DateTimeOffset AddedAt { get; set; }
}

public sealed class ResumeRecord
{
    [JsonPropertyName("attempt")]
    public int Attempt { get; set; }

    [JsonPropertyName("resumed_at")]
    public DateTimeOffset ResumedAt { get; set; }

    [JsonPropertyName("previous_status")]
    public RunStatus PreviousStatus { get; set; }

    [JsonPropertyName("owner")]
    public OwnerRecord? Owner { get; set; }

    [JsonPropertyName("forced")]
    public bool Forced { get; set; }

    [JsonPropertyName("config_hash")]
    public string ConfigHash { get; set; } = string.Empty;

    [JsonPropertyName("script_hash")]
    public string ScriptHash { get; set; } = string.Empty;

    [JsonPropertyName("gate")]
    public StepGate? Gate { get; set; }

    [JsonPropertyName("drift")]
    public List<DriftRecord> Drift { get; set; } = new();

    [JsonPropertyName("in_doubt")]
    public List<ItemRef> InDoubt { get; set; } = new();

    /// <summary>Steps in doubt when the attempt began (started earlier, never ended).</summary>
    [JsonPropertyName("in_doubt_steps")]
    public List<StepRef> InDoubtSteps { get; set; } = new();
}

public sealed class DriftRecord
{
    /// <summary>"config" or "script".</summary>
    [JsonPropertyName("kind")]
    public string Kind { get; set; } = string.Empty;

    [JsonPropertyName("old_hash")]
    public string OldHash { get; set; } = string.Empty;

    [JsonPropertyName("new_hash")]
    public string NewHash { get; set; } = string.Empty;

    [JsonPropertyName("changes")]
    public List<ConfigChangeRecord> Changes { get; set; } = new();
}

public sealed class ConfigChangeRecord
{
    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    [JsonPropertyName("kind")]
    public ConfigChangeKind Kind { get; set; }

    [JsonPropertyName("old")]
    public string? OldValue { get; set; }

    [JsonPropertyName("new")]
    public string? NewValue { get; set; }
}

public sealed class ItemRef
{
    [JsonPropertyName("step")]
    public string Step { get; set; } = string.Empty;

    [JsonPropertyName("key")]
    public string Key { get; set; } = string.Empty;

    public override string ToString() => $"{Step}/{Key}";
}

/// <summary>
/// A step in doubt: started in an earlier attempt and never recorded as completed or failed. It is
/// what an -InDoubt script block gets as $_ for a step (items get their input object).
/// </summary>
public sealed class StepRef
{
    [JsonPropertyName("step")]
    public string Step { get; set; } = string.Empty;

    /// <summary>The attempt that started the step and died (or stopped) inside it.</summary>
    [JsonPropertyName("attempt")]
    public int Attempt { get; set; }

    /// <summary>Always "Step": lets an -InDoubt script block tell a step from an item's input object.</summary>
    [JsonIgnore]
    public string Kind => "Step";

    public override string ToString() => Step;
}

/// <summary>Which steps an attempt may run (the seeds' --only_step/--from_step/--to_step).</summary>
public sealed class StepGate
{
    [JsonPropertyName("only")]
    public List<string>? Only { get; set; }

    [JsonPropertyName("from")]
    public string? From { get; set; }

    [JsonPropertyName("to")]
    public string? To { get; set; }

    [JsonIgnore]
    public bool IsOpen => (Only is null || Only.Count == 0) && From is null && To is null;
}

public sealed class JournalPosition
{
    [JsonPropertyName("seq")]
    public long Sequence { get; set; }

    /// <summary>Byte length of journal.jsonl that this snapshot reflects.</summary>
    [JsonPropertyName("length")]
    public long Length { get; set; }
}
