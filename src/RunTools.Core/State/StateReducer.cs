using System;
using System.Text.Json;
using RunTools.Core.Configuration;
using RunTools.Core.Journal;

namespace RunTools.Core.State;

/// <summary>
/// Folds journal events into a <see cref="RunState"/>. The same code rebuilds a lost snapshot
/// and applies the journal tail a snapshot does not yet reflect, so both always agree.
/// Item events use only the members the scanner already parsed, so a million items fold fast.
/// </summary>
internal sealed class StateReducer : IJournalVisitor
{
    public StateReducer(RunState state) => State = state;

    public RunState State { get; }

    public bool WantsTimestamp => true;

    public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
    {
        try
        {
            Fold(in line, raw);
        }
        catch (Exception ex) when (ex is JsonException || ex is InvalidOperationException || ex is FormatException || ex is OverflowException || ex is ArgumentException)
        {
            // The checksum held, so the line was written whole, but not as RunTools writes it (a
            // member of the wrong type): the run cannot be folded from it.
            throw Damaged(in line, ex.Message);
        }
    }

    private RunToolsException Damaged(in ParsedLine line, string reason) => new(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
        $"Run '{State.RunId}' cannot be read: journal event {line.Sequence} ({line.Type}) has a valid checksum but cannot be used ({reason}). The journal was changed by something other than RunTools; restore the run from a backup or archive.",
        State.RunId);

    private void Fold(in ParsedLine line, ReadOnlySpan<byte> raw)
    {
        var state = State;
        switch (line.Type)
        {
            case JournalEventTypes.ItemStarted:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                if (line.Previous == "failed" && step.ItemsFailed > 0)
                {
                    step.ItemsFailed--;
                }

                if (line.Key is not null && !step.ItemsOpen.Contains(line.Key))
                {
                    step.ItemsOpen.Add(line.Key);
                }

                return;
            }

            case JournalEventTypes.ItemCompleted:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                RemoveOpen(step, line.Key);
                step.ItemsCompleted++;
                state.ItemsCompleted++;
                return;
            }

            case JournalEventTypes.ItemFailed:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                RemoveOpen(step, line.Key);
                step.ItemsFailed++;

                // Failures are rare enough to parse the line for the message.
                using var failed = JsonDocument.Parse(raw.ToArray());
                state.LastError = Str(failed.RootElement, "error") ?? state.LastError;
                return;
            }
        }

        // The rarer events carry more members; parse the line.
        using var document = JsonDocument.Parse(raw.ToArray());
        var e = document.RootElement;
        var ts = JournalEvent.ParseTimestamp(line.TimestampText(raw));
        switch (line.Type)
        {
            case JournalEventTypes.RunCreated:
                state.RunId = Str(e, "run_id") ?? state.RunId;
                state.Name = Str(e, "name") ?? state.Name;
                state.FormatVersion = Int(e, "format_version") ?? RunFormat.Version;
                state.CreatedAt = ts;
                state.Status = RunStatus.Created;
                if (e.TryGetProperty("config", out var config))
                {
                    state.Config = new ConfigRecord
                    {
                        Hash = Str(config, "hash") ?? string.Empty,
                        Format = ParseEnum(Str(config, "format"), ConfigFormat.None),
                        SourcePath = Str(config, "source_path"),
                    };
                }

                if (e.TryGetProperty("script", out var script))
                {
                    state.Script = new ScriptRecord { Hash = Str(script, "hash") ?? string.Empty, SourcePath = Str(script, "source_path") };
                }

                state.ParametersHash = Str(e, "parameters_hash");
                state.Migrated = Bool(e, "migrated") ?? false;
                state.SourceFormat = Str(e, "source_format");
                if (e.TryGetProperty("declared_steps", out var declared) && declared.ValueKind == JsonValueKind.Array)
                {
                    state.DeclaredSteps.Clear();
                    foreach (var s in declared.EnumerateArray())
                    {
                        state.DeclaredSteps.Add(s.GetString() ?? string.Empty);
                    }
                }

                break;

            case JournalEventTypes.AttemptStarted:
            {
                var previous = state.Status;
                state.Attempt = line.Attempt ?? state.Attempt + 1;
                state.Status = RunStatus.Running;
                state.StartedAt = ts;
                state.EndedAt = null;
                state.Error = null;
                state.Stop = null;
                state.CurrentStep = null;
                state.Owner = e.TryGetProperty("owner", out var owner) ? ReadOwner(owner) : null;
                if (Bool(e, "resumed") == true)
                {
                    var record = new ResumeRecord
                    {
                        Attempt = state.Attempt,
                        ResumedAt = ts,
                        PreviousStatus = ParseEnum(Str(e, "previous_status"), previous),
                        Owner = state.Owner,
                        Forced = Bool(e, "forced") ?? false,
                        ConfigHash = Str(e, "config_hash") ?? state.Config.Hash,
                        ScriptHash = Str(e, "script_hash") ?? state.Script.Hash,
                    };
                    if (e.TryGetProperty("gate", out var gate) && gate.ValueKind == JsonValueKind.Object)
                    {
                        record.Gate = JsonSerializer.Deserialize<StepGate>(gate.GetRawText(), RunFormat.JsonOptions);
                    }

                    if (e.TryGetProperty("in_doubt", out var inDoubt) && inDoubt.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var item in inDoubt.EnumerateArray())
                        {
                            record.InDoubt.Add(new ItemRef { Step = Str(item, "step") ?? string.Empty, Key = Str(item, "key") ?? string.Empty });
                        }
                    }

                    if (e.TryGetProperty("in_doubt_steps", out var inDoubtSteps) && inDoubtSteps.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var item in inDoubtSteps.EnumerateArray())
                        {
                            record.InDoubtSteps.Add(new StepRef { Step = Str(item, "step") ?? string.Empty, Attempt = Int(item, "attempt") ?? 0 });
                        }
                    }

                    state.ResumeHistory.Add(record);
                }

                break;
            }

            case JournalEventTypes.DriftAccepted:
            case JournalEventTypes.ParametersDriftAccepted:
            {
                var drift = JsonSerializer.Deserialize<DriftRecord>(e.GetRawText(), RunFormat.JsonOptions)!;
                if (drift.Kind == "config")
                {
                    state.Config.Hash = drift.NewHash;
                    if (e.TryGetProperty("source_path", out var sourcePath))
                    {
                        state.Config.SourcePath = sourcePath.ValueKind == JsonValueKind.String ? sourcePath.GetString() : null;
                        state.Config.Format = ParseEnum(Str(e, "format"), state.Config.Format);
                    }
                }
                else if (line.Type == JournalEventTypes.ParametersDriftAccepted)
                {
                    state.ParametersHash = drift.NewHash;
                }
                else
                {
                    state.Script.Hash = drift.NewHash;
                    if (Str(e, "source_path") is { } scriptPath)
                    {
                        state.Script.SourcePath = scriptPath;
                    }
                }

                if (state.ResumeHistory.Count > 0 && state.ResumeHistory[state.ResumeHistory.Count - 1].Attempt == (Int(e, "attempt") ?? state.Attempt))
                {
                    state.ResumeHistory[state.ResumeHistory.Count - 1].Drift.Add(drift);
                }

                break;
            }

            case JournalEventTypes.StepStarted:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                step.Status = StepStatus.Running;
                step.Attempt = line.Attempt ?? state.Attempt;
                step.StartedAt = ts;
                step.EndedAt = null;
                step.DurationMs = null;
                step.Error = null;
                step.Skipped = false;
                state.CurrentStep = step.Name;
                break;
            }

            case JournalEventTypes.StepResolved:
            {
                // "retry" changes nothing: a step_started follows.
                if (Str(e, "resolution") == "skip")
                {
                    var step = state.GetOrAddStep(line.Step ?? string.Empty);
                    step.Status = StepStatus.Completed;
                    step.Skipped = true;
                    step.EndedAt = ts;
                    step.DurationMs = null;
                    step.Output = null;
                    step.Error = null;
                    if (state.CurrentStep == step.Name)
                    {
                        state.CurrentStep = null;
                    }
                }

                break;
            }

            case JournalEventTypes.StepCompleted:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                step.Status = StepStatus.Completed;
                step.EndedAt = ts;
                step.DurationMs = Long(e, "duration_ms");
                step.Output = e.TryGetProperty("output", out var output) && output.ValueKind == JsonValueKind.Object
                    ? JsonSerializer.Deserialize<OutputRecord>(output.GetRawText(), RunFormat.JsonOptions)
                    : null;
                if (step.Output is { } recorded && OutputRecord.FindDefect(recorded) is { } defect)
                {
                    throw Damaged(in line, $"its output: {defect}");
                }

                step.Error = null;
                if (state.CurrentStep == step.Name)
                {
                    state.CurrentStep = null;
                }

                break;
            }

            case JournalEventTypes.StepFailed:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                step.Status = StepStatus.Failed;
                step.EndedAt = ts;
                step.DurationMs = Long(e, "duration_ms");
                step.Error = Str(e, "error");
                state.LastError = step.Error ?? state.LastError;
                if (state.CurrentStep == step.Name)
                {
                    state.CurrentStep = null;
                }

                break;
            }

            case JournalEventTypes.StepGated:
                state.GetOrAddStep(line.Step ?? string.Empty);
                break;

            case JournalEventTypes.StepInvalidated:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                step.Status = StepStatus.Pending;
                step.Skipped = false;
                step.Error = Str(e, "reason");
                break;
            }

            case JournalEventTypes.ItemResolved:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                if (Str(e, "resolution") == "skip")
                {
                    RemoveOpen(step, line.Key);
                    step.ItemsSkipped++;
                    if (Str(e, "previous") == "failed")
                    {
                        // A failed item set aside by the operator counts once, as skipped.
                        step.ItemsFailed = Math.Max(0, step.ItemsFailed - 1);
                    }
                }

                break;
            }

            case JournalEventTypes.ItemInvalidated:
            {
                var step = state.GetOrAddStep(line.Step ?? string.Empty);
                if (Str(e, "was") == "skipped")
                {
                    step.ItemsSkipped = Math.Max(0, step.ItemsSkipped - 1);
                }
                else
                {
                    step.ItemsCompleted = Math.Max(0, step.ItemsCompleted - 1);
                    state.ItemsCompleted = Math.Max(0, state.ItemsCompleted - 1);
                }

                break;
            }

            case JournalEventTypes.ArtifactAdded:
                if (ParseEnum(Str(e, "mode"), ArtifactMode.Copy) == ArtifactMode.Copy && Archive.ArchivePaths.ExplainUnsafe(Str(e, "path") ?? string.Empty) is { } unsafePath)
                {
                    throw Damaged(in line, $"the copied artifact's path {unsafePath}");
                }

                state.Artifacts.Add(new ArtifactRecord
                {
                    Name = Str(e, "name") ?? string.Empty,
                    Path = Str(e, "path") ?? string.Empty,
                    Mode = ParseEnum(Str(e, "mode"), ArtifactMode.Copy),
                    Size = Long(e, "size") ?? 0,
                    Sha256 = Str(e, "sha256") ?? string.Empty,
                    Step = line.Step,
                    Key = line.Key,
                    Attempt = line.Attempt ?? state.Attempt,
                    AddedAt = ts,
                });
                break;

            case JournalEventTypes.RunStopped:
                state.Status = RunStatus.Stopped;
                state.EndedAt = ts;
                state.Stop = new StopRequest
                {
                    Reason = Str(e, "reason"),
                    RequestedBy = Str(e, "requested_by") ?? string.Empty,
                    RequestedAt = JournalEvent.ParseTimestamp(Str(e, "requested_at")),
                };
                MarkRunningStepsPending(state);
                state.CurrentStep = null;
                break;

            case JournalEventTypes.RunCompleted:
                state.Status = RunStatus.Completed;
                state.EndedAt = ts;
                state.CurrentStep = null;
                break;

            case JournalEventTypes.RunFailed:
                state.Status = RunStatus.Failed;
                state.EndedAt = ts;
                state.Error = Str(e, "error");
                if (!state.Steps.Exists(s => s.Status == StepStatus.Failed && s.Error is not null))
                {
                    // A failed step's own error says more than the run's summary of it.
                    state.LastError = state.Error ?? state.LastError;
                }

                MarkRunningStepsPending(state);
                state.CurrentStep = null;
                break;
        }
    }

    /// <summary>Sets the position and the time of the last event after a scan.</summary>
    public void Finish(JournalScanResult scan)
    {
        State.Journal = new JournalPosition { Sequence = scan.LastSequence, Length = scan.ValidLength };
        if (scan.LastTimestamp is { } last && last > State.UpdatedAt)
        {
            State.UpdatedAt = last;
        }
    }

    private static void MarkRunningStepsPending(RunState state)
    {
        // A step that was running when the attempt ended did not finish: it is pending again.
        foreach (var step in state.Steps)
        {
            if (step.Status == StepStatus.Running)
            {
                step.Status = StepStatus.Pending;
            }
        }
    }

    private static void RemoveOpen(StepRecord step, string? key)
    {
        if (key is null || step.ItemsOpen.Count == 0)
        {
            return;
        }

        // Open keys are few (the one in flight plus any left in doubt); search from the end.
        for (int i = step.ItemsOpen.Count - 1; i >= 0; i--)
        {
            if (string.Equals(step.ItemsOpen[i], key, StringComparison.Ordinal))
            {
                step.ItemsOpen.RemoveAt(i);
                return;
            }
        }
    }

    private static OwnerRecord ReadOwner(JsonElement owner) => new()
    {
        ProcessId = Int(owner, "pid") ?? 0,
        Host = Str(owner, "host") ?? string.Empty,
        StartedAt = JournalEvent.ParseTimestamp(Str(owner, "started_at")),
    };

    internal static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    internal static int? Int(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : null;

    internal static long? Long(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long i) ? i : null;

    internal static bool? Bool(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out var v) && (v.ValueKind == JsonValueKind.True || v.ValueKind == JsonValueKind.False) ? v.GetBoolean() : null;

    internal static T ParseEnum<T>(string? text, T fallback)
        where T : struct
    {
        if (text is null)
        {
            return fallback;
        }

        string pascal = string.Concat(Array.ConvertAll(text.Split('_'), p => p.Length == 0 ? p : char.ToUpperInvariant(p[0]) + p.Substring(1)));
        return Enum.TryParse(pascal, ignoreCase: true, out T value) ? value : fallback;
    }
}
