using System;
using System.Collections.Generic;
using System.Text.Json;
using RunTools.Core.Conversion;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools.Core.Journal;

/// <summary>
/// One journal event to record: its type and the writer of its members. The factories below are
/// the single home of the journal schema (docs/run-format.md §4 follows them): nothing else in
/// the code base writes an event's members. The envelope (<c>seq</c>, <c>ts</c>, <c>type</c>,
/// <c>crc</c>) is the run log's.
/// </summary>
internal readonly struct RunEvent
{
    private RunEvent(string type, Action<Utf8JsonWriter>? members)
    {
        Type = type;
        Members = members;
    }

    public string Type { get; }

    public Action<Utf8JsonWriter>? Members { get; }

    // ---- run ----------------------------------------------------------------------------------

    public static RunEvent RunCreated(string runId, string name, RunCreateOptions options, string scriptHash, string? scriptSource, IReadOnlyList<string> declared) =>
        new(JournalEventTypes.RunCreated, w =>
        {
            w.WriteString("run_id", runId);
            w.WriteString("name", name);
            w.WriteNumber("format_version", RunFormat.Version);
            w.WriteStartObject("config");
            w.WriteString("hash", options.Config.Hash);
            w.WriteString("format", RunFormat.EnumText(options.Config.Format));
            WriteNullable(w, "source_path", options.Config.SourcePath);
            w.WriteEndObject();
            w.WriteStartObject("script");
            w.WriteString("hash", scriptHash);
            WriteNullable(w, "source_path", scriptSource);
            w.WriteEndObject();
            if (options.Parameters is { } parameters)
            {
                w.WriteString("parameters_hash", parameters.Hash);
            }

            w.WriteBoolean("migrated", options.Migrated);
            if (options.SourceFormat is not null)
            {
                w.WriteString("source_format", options.SourceFormat);
            }

            w.WriteStartArray("declared_steps");
            foreach (string step in declared)
            {
                w.WriteStringValue(step);
            }

            w.WriteEndArray();
        });

    /// <summary>A legacy directory was converted (event type run_migrated, the format's older word): legacy format, legacy facts, per-step decisions, warnings, backups.</summary>
    public static RunEvent RunMigrated(string root, ConversionPlan plan) =>
        new(JournalEventTypes.RunMigrated, w =>
        {
            w.WriteString("source_format", LegacyConversion.LegacyFormatName(plan.Format));
            w.WriteString("source_path", root);
            WriteNullable(w, "legacy_run_id", plan.LegacyRunId);
            w.WritePropertyName("legacy");
            plan.Legacy.WriteTo(w);
            w.WriteStartArray("steps");
            foreach (var step in plan.Steps)
            {
                w.WriteStartObject();
                w.WriteString("step", step.Name);
                w.WriteString("status", step.Completed ? "completed" : "pending");
                w.WriteNumber("items_completed", step.Items.Count);
                w.WriteString("reason", step.Reason);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("warnings");
            foreach (var warning in plan.Warnings)
            {
                w.WriteStartObject();
                w.WriteString("code", warning.Code);
                w.WriteString("found", warning.Found);
                w.WriteString("assumed", warning.Assumed);
                w.WriteString("action", warning.Action);
                WriteNullable(w, "path", warning.Path);
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteStartArray("backups");
            foreach (var backup in plan.Backups)
            {
                w.WriteStartObject();
                w.WriteString("path", backup.Path);
                w.WriteString("backup", backup.Backup);
                w.WriteEndObject();
            }

            w.WriteEndArray();
        });

    public static RunEvent RunCompleted(IReadOnlyList<string> stepsNotMet) =>
        new(JournalEventTypes.RunCompleted, stepsNotMet.Count == 0 ? null : w =>
        {
            w.WritePropertyName("steps_not_met");
            JsonSerializer.Serialize(w, stepsNotMet, RunFormat.CompactJsonOptions);
        });

    public static RunEvent RunFailed(string error) =>
        new(JournalEventTypes.RunFailed, w => w.WriteString("error", error));

    /// <summary>The attempt ended Stopped: by a request (Stop-Run, Ctrl+C) with the unit it interrupted, or by the step gate.</summary>
    public static RunEvent RunStopped(StopRequest request, string? step = null, string? key = null) =>
        new(JournalEventTypes.RunStopped, w =>
        {
            WriteStop(w, request);
            if (step is not null)
            {
                w.WriteString("step", step);
            }

            if (key is not null)
            {
                w.WriteString("key", key);
            }
        });

    // ---- attempt ------------------------------------------------------------------------------

    public static RunEvent AttemptStarted(int attempt, bool resumed, RunStatus previousStatus, OwnerRecord owner, bool forced,
        string configHash, string scriptHash, StepGate? gate, IReadOnlyList<ItemRef> inDoubt, IReadOnlyList<StepRef> inDoubtSteps,
        string? parametersHash = null, string? startedBy = null) =>
        new(JournalEventTypes.AttemptStarted, w =>
        {
            w.WriteNumber("attempt", attempt);
            w.WriteBoolean("resumed", resumed);
            w.WriteString("previous_status", RunFormat.EnumText(previousStatus));
            w.WritePropertyName("owner");
            JsonSerializer.Serialize(w, owner, RunFormat.CompactJsonOptions);
            w.WriteBoolean("forced", forced);
            w.WriteString("config_hash", configHash);
            w.WriteString("script_hash", scriptHash);
            if (parametersHash is not null)
            {
                w.WriteString("parameters_hash", parametersHash);
            }

            if (startedBy is not null)
            {
                w.WriteString("started_by", startedBy);
            }

            if (gate is not null)
            {
                w.WritePropertyName("gate");
                JsonSerializer.Serialize(w, gate, RunFormat.CompactJsonOptions);
            }

            if (inDoubt.Count > 0)
            {
                w.WritePropertyName("in_doubt");
                JsonSerializer.Serialize(w, inDoubt, RunFormat.CompactJsonOptions);
            }

            if (inDoubtSteps.Count > 0)
            {
                w.WritePropertyName("in_doubt_steps");
                JsonSerializer.Serialize(w, inDoubtSteps, RunFormat.CompactJsonOptions);
            }
        });

    public static RunEvent ResumeRefusedForDrift(IReadOnlyList<DriftRecord> drift) =>
        new(JournalEventTypes.ResumeRefused, w =>
        {
            w.WriteString("reason", "drift");
            w.WritePropertyName("drift");
            JsonSerializer.Serialize(w, drift, RunFormat.CompactJsonOptions);
        });

    public static RunEvent ResumeRefusedInDoubt(int items, int steps) =>
        new(JournalEventTypes.ResumeRefused, w =>
        {
            w.WriteString("reason", "in_doubt");
            w.WriteNumber("items", items);
            w.WriteNumber("steps", steps);
        });

    public static RunEvent DriftAccepted(int attempt, DriftRecord record, string history, EffectiveConfigSource? config, string? scriptSource) =>
        new(record.Kind == "parameters" ? JournalEventTypes.ParametersDriftAccepted : JournalEventTypes.DriftAccepted, w =>
        {
            w.WriteNumber("attempt", attempt);
            w.WriteString("kind", record.Kind);
            w.WriteString("old_hash", record.OldHash);
            w.WriteString("new_hash", record.NewHash);
            w.WritePropertyName("changes");
            JsonSerializer.Serialize(w, record.Changes, RunFormat.CompactJsonOptions);
            w.WriteString("history", history);
            if (record.Kind == "config" && config is { } source)
            {
                w.WriteString("format", RunFormat.EnumText(source.Format));
                WriteNullable(w, "source_path", source.SourcePath);
            }
            else if (record.Kind == "script" && scriptSource is not null)
            {
                w.WriteString("source_path", scriptSource);
            }
        });

    public static RunEvent StopCleared(StopRequest request) =>
        new(JournalEventTypes.StopCleared, w => WriteStop(w, request));

    /// <summary>A torn last line (a crash mid-append) was cut off and kept in <paramref name="backup"/>.</summary>
    public static RunEvent JournalRepaired(long validLength, long droppedBytes, string backup) =>
        new(JournalEventTypes.JournalRepaired, w =>
        {
            w.WriteNumber("valid_length", validLength);
            w.WriteNumber("dropped_bytes", droppedBytes);
            w.WriteString("backup", backup);
        });

    // ---- steps --------------------------------------------------------------------------------

    /// <summary><paramref name="itemsOnly"/>: the step only runs items, so it is never in doubt itself.</summary>
    public static RunEvent StepStarted(string step, int attempt, bool itemsOnly, string? previous, int tryNumber = 1) =>
        new(JournalEventTypes.StepStarted, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", attempt);
            WriteTry(w, tryNumber);
            if (itemsOnly)
            {
                w.WriteBoolean("items_only", true);
            }

            if (previous is not null)
            {
                w.WriteString("previous", previous);
            }
        });

    public static RunEvent StepCompleted(string step, int attempt, long durationMs, OutputRecord? output) =>
        new(JournalEventTypes.StepCompleted, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", attempt);
            w.WriteNumber("duration_ms", durationMs);
            if (output is not null)
            {
                w.WritePropertyName("output");
                JsonSerializer.Serialize(w, output, RunFormat.CompactJsonOptions);
            }
        });

    /// <summary>A step converted from a legacy directory as completed.</summary>
    public static RunEvent StepMigrated(string step) =>
        new(JournalEventTypes.StepCompleted, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", 0);
            w.WriteBoolean("migrated", true);
        });

    public static RunEvent StepFailed(string step, int attempt, long durationMs, UnitFailure failure) =>
        new(JournalEventTypes.StepFailed, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", attempt);
            w.WriteNumber("duration_ms", durationMs);
            WriteFailure(w, failure);
        });

    public static RunEvent StepGated(string step, int attempt) =>
        new(JournalEventTypes.StepGated, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", attempt);
        });

    public static RunEvent StepResolved(string step, int attempt, bool skip) =>
        new(JournalEventTypes.StepResolved, w =>
        {
            w.WriteString("step", step);
            w.WriteNumber("attempt", attempt);
            w.WriteString("resolution", skip ? "skip" : "retry");
        });

    public static RunEvent StepInvalidated(string step, string reason) =>
        new(JournalEventTypes.StepInvalidated, w =>
        {
            w.WriteString("step", step);
            w.WriteString("reason", reason);
        });

    // ---- items --------------------------------------------------------------------------------

    public static RunEvent ItemStarted(string step, string key, int attempt, string? previous, int tryNumber = 1) =>
        new(JournalEventTypes.ItemStarted, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", attempt);
            WriteTry(w, tryNumber);
            if (previous is not null)
            {
                w.WriteString("previous", previous);
            }
        });

    public static RunEvent ItemCompleted(string step, string key, int attempt, long durationMs, byte[]? output, string? outputFormat) =>
        new(JournalEventTypes.ItemCompleted, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", attempt);
            w.WriteNumber("duration_ms", durationMs);
            if (output is not null)
            {
                w.WriteBase64String("output", output);
                if (outputFormat is not null)
                {
                    w.WriteString("output_format", outputFormat);
                }
            }
        });

    /// <summary>
    /// An event a joined worker recorded (item_started, item_completed, item_failed,
    /// artifact_added), copied into the run's log by the owner: the worker's members as it wrote
    /// them, <c>worker</c> (the worker's id) and <c>worker_seq</c> (its own sequence number, which
    /// makes a second copy of the same event recognisable). The worker's envelope (its seq, ts, crc) is not copied.
    /// </summary>
    public static RunEvent Transcribed(string type, JsonElement recorded, string worker, long workerSequence) =>
        new(type, w =>
        {
            foreach (var member in recorded.EnumerateObject())
            {
                if (member.Name is not ("seq" or "ts" or "type" or "crc" or "worker" or "worker_seq"))
                {
                    member.WriteTo(w);
                }
            }

            w.WriteString("worker", worker);
            w.WriteNumber("worker_seq", workerSequence);
        });

    /// <summary>An item converted from a legacy directory as completed.</summary>
    public static RunEvent ItemMigrated(string step, string key) =>
        new(JournalEventTypes.ItemCompleted, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", 0);
            w.WriteBoolean("migrated", true);
        });

    public static RunEvent ItemFailed(string step, string key, int attempt, long durationMs, UnitFailure failure) =>
        new(JournalEventTypes.ItemFailed, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", attempt);
            w.WriteNumber("duration_ms", durationMs);
            WriteFailure(w, failure);
        });

    public static RunEvent ItemResolved(string step, string key, int attempt, bool skip) =>
        new(JournalEventTypes.ItemResolved, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", attempt);
            w.WriteString("resolution", skip ? "skip" : "retry");
        });

    /// <summary>A failed item set aside by the operator (Resume-Run -Failed Skip): not run again in this run.</summary>
    public static RunEvent FailedItemSkipped(string step, string key, int attempt, string decidedBy, string reason) =>
        new(JournalEventTypes.ItemResolved, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", attempt);
            w.WriteString("resolution", "skip");
            w.WriteString("previous", "failed");
            w.WriteString("decided_by", decidedBy);
            w.WriteString("reason", reason);
        });

    public static RunEvent ItemInvalidated(string step, string key, string reason) =>
        new(JournalEventTypes.ItemInvalidated, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteString("reason", reason);
            w.WriteString("was", "completed");
        });

    // ---- artifacts ----------------------------------------------------------------------------

    public static RunEvent ArtifactAdded(string name, string path, ArtifactMode mode, long size, string sha256, string? step, string? key, int attempt) =>
        new(JournalEventTypes.ArtifactAdded, w =>
        {
            w.WriteString("name", name);
            w.WriteString("path", path);
            w.WriteString("mode", RunFormat.EnumText(mode));
            w.WriteNumber("size", size);
            w.WriteString("sha256", sha256);
            if (step is not null)
            {
                w.WriteString("step", step);
            }

            if (key is not null)
            {
                w.WriteString("key", key);
            }

            w.WriteNumber("attempt", attempt);
        });

    /// <summary>"try" only from the second try on: a first try is what every unit has.</summary>
    private static void WriteTry(Utf8JsonWriter w, int tryNumber)
    {
        if (tryNumber > 1)
        {
            w.WriteNumber("try", tryNumber);
        }
    }

    private static void WriteFailure(Utf8JsonWriter w, UnitFailure failure)
    {
        w.WriteString("error", failure.Error);
        if (failure.ErrorId is not null)
        {
            w.WriteString("error_id", failure.ErrorId);
        }

        if (failure.TimedOut)
        {
            w.WriteBoolean("timed_out", true);
        }

        WriteTry(w, failure.Try);
        if (failure.RetryIn is { } retryIn)
        {
            w.WriteNumber("retry_in_ms", (long)retryIn.TotalMilliseconds);
        }
    }

    private static void WriteStop(Utf8JsonWriter w, StopRequest request)
    {
        w.WriteString("requested_at", JournalWriter.FormatTimestamp(request.RequestedAt));
        w.WriteString("requested_by", request.RequestedBy);
        WriteNullable(w, "reason", request.Reason);
    }

    private static void WriteNullable(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null)
        {
            w.WriteNull(name);
        }
        else
        {
            w.WriteString(name, value);
        }
    }
}

/// <summary>The format and source of a config, as drift_accepted records them.</summary>
internal readonly record struct EffectiveConfigSource(Configuration.ConfigFormat Format, string? SourcePath);
