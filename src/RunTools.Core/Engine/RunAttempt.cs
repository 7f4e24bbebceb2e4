using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using RunTools.Core.Configuration;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// The owner of a run for one attempt: holds the lock, journals every unit before it counts,
/// keeps the snapshot fresh, and ends the attempt as Completed, Failed or Stopped. If the
/// process dies instead, the run reads as Interrupted and the next attempt picks it up.
/// </summary>
public sealed class RunAttempt : IDisposable
{
    private readonly RunDirectory _run;
    private readonly RunLock _lock;
    private readonly JournalWriter _journal;
    private readonly StateReducer _reducer;
    private readonly JournalLineParser _parser = new();
    private readonly ItemLedger _ledger;
    private readonly AttemptOptions _options;
    private readonly StreamWriter _log;
    private readonly Stopwatch _stepClock = new();
    private readonly Stopwatch _itemClock = new();
    private readonly Stopwatch _sinceSnapshot = Stopwatch.StartNew();
    private readonly List<string> _encountered = new();
    private string? _activeStep;
    private string? _activeItem;
    private bool _reachedFrom;
    private bool _passedTo;
    private bool _finished;
    private bool _faulted;
    private bool _logFailed;
    private (string Step, string? Key, RunToolsException Error)? _unitWriteFailure;
    private long _snapshotSequence;

    private RunAttempt(RunDirectory run, RunLock runLock, AttemptOptions options, DateTimeOffset now)
    {
        _run = run;
        _lock = runLock;
        _options = options;
        RemoveLeftoverTempFiles(run.Path);

        var planned = ResumePlanner.Plan(run, options.VerifyArtifacts);
        Plan = planned.Plan;
        var scan = Plan.Journal;
        _ledger = Plan.Ledger;
        _reducer = new StateReducer(Plan.State);
        if (scan.ValidLines == 0 && File.Exists(run.StatePath) && new FileInfo(run.StatePath).Length > 0)
        {
            throw new RunToolsException(ErrorIds.CorruptJournal, RunToolsErrorCategory.InvalidData,
                $"Run '{run.RunId}' has a state snapshot but its journal ({RunFormat.JournalFile}) is missing or unreadable, so finished work cannot be told apart safely. Restore the journal from a backup or archive before resuming.", run.RunId);
        }

        string? tailBackup = scan.TornTailLength > 0 ? BackUpTornTail(run, scan) : null;
        _journal = new JournalWriter(run.JournalPath, scan.ValidLength, scan.LastSequence);
        _snapshotSequence = -1;

        var state = State;
        var previousStatus = state.Status;
        PreviousStatus = previousStatus;
        Attempt = state.Attempt + 1;
        LogPath = Path.Combine(run.Path, RunFormat.LogsFolder, $"attempt-{Attempt}.log");
        try
        {
            DurableFile.CreateDirectory(Path.Combine(run.Path, RunFormat.LogsFolder));
            _log = new StreamWriter(new FileStream(LogPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete), new UTF8Encoding(false)) { AutoFlush = true };
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is RunToolsException)
        {
            _journal.Dispose();
            throw ex as RunToolsException ?? DurableFile.Failed($"Could not create the attempt log '{LogPath}'", LogPath, ex, "The attempt did not start; nothing was recorded.");
        }

        try
        {
            if (tailBackup is not null)
            {
                Append(JournalEventTypes.JournalRepaired, w =>
                {
                    w.WriteNumber("valid_length", scan.ValidLength);
                    w.WriteNumber("dropped_bytes", scan.TornTailLength);
                    w.WriteString("backup", tailBackup);
                });
                Warn($"The journal ended in {scan.TornTailLength} byte(s) of a write that never finished (a crash); they were cut off and kept in {tailBackup}.");
            }

            foreach (var defect in scan.CorruptLines)
            {
                Warn($"Journal line at offset {defect.Offset} is damaged ({defect.Reason}) and was skipped. Run Test-Run for details.");
            }

            bool damagedUnits = Plan.IntegrityProblems.Any(p => p.Step is not null);
            if (previousStatus == RunStatus.Completed && !damagedUnits)
            {
                throw new RunToolsException(ErrorIds.RunNotResumable, RunToolsErrorCategory.InvalidOperation,
                    $"Run '{run.RunId}' is already completed; there is nothing to resume. Start a new run to do the work again.", run.RunId);
            }

            var gate = options.Gate is { IsOpen: false } ? options.Gate : null;
            var drift = DetectDrift(out var configChanges);
            if (drift.Count > 0 && !options.Force)
            {
                Append(JournalEventTypes.ResumeRefused, w =>
                {
                    w.WriteString("reason", "drift");
                    w.WritePropertyName("drift");
                    JsonSerializer.Serialize(w, drift, RunFormat.CompactJsonOptions);
                });
                throw new DriftException(run.RunId, drift, configChanges);
            }

            if ((Plan.InDoubt.Count > 0 || Plan.InDoubtSteps.Count > 0) && options.InDoubt == InDoubtAction.Fail)
            {
                Append(JournalEventTypes.ResumeRefused, w =>
                {
                    w.WriteString("reason", "in_doubt");
                    w.WriteNumber("items", Plan.InDoubt.Count);
                    w.WriteNumber("steps", Plan.InDoubtSteps.Count);
                });
                throw new InDoubtItemsException(run.RunId, Plan.InDoubt, Plan.InDoubtSteps);
            }

            foreach (var problem in Plan.IntegrityProblems)
            {
                InvalidateUnit(problem);
            }

            var stop = run.ReadStopRequest();
            if (stop is not null)
            {
                Append(JournalEventTypes.StopCleared, w => WriteStop(w, stop));
                DurableFile.TryDelete(run.StopPath);
                Warn($"A stop request from {stop.RequestedBy} ({stop.RequestedAt:u}) was left over from an earlier attempt and was cleared.");
            }

            var owner = _lock.Owner;
            bool resumed = previousStatus != RunStatus.Created || state.Attempt > 0;
            string newConfigHash = options.Config?.Hash ?? state.Config.Hash;
            string newScriptHash = options.Script is null ? state.Script.Hash : Integrity.Sha256Hex(options.Script);
            Append(JournalEventTypes.AttemptStarted, w =>
            {
                w.WriteNumber("attempt", Attempt);
                w.WriteBoolean("resumed", resumed);
                w.WriteString("previous_status", RunFormat.EnumText(previousStatus));
                w.WritePropertyName("owner");
                JsonSerializer.Serialize(w, owner, RunFormat.CompactJsonOptions);
                w.WriteBoolean("forced", drift.Count > 0);
                w.WriteString("config_hash", newConfigHash);
                w.WriteString("script_hash", newScriptHash);
                if (gate is not null)
                {
                    w.WritePropertyName("gate");
                    JsonSerializer.Serialize(w, gate, RunFormat.CompactJsonOptions);
                }

                if (Plan.InDoubt.Count > 0)
                {
                    w.WritePropertyName("in_doubt");
                    JsonSerializer.Serialize(w, Plan.InDoubt, RunFormat.CompactJsonOptions);
                }

                if (Plan.InDoubtSteps.Count > 0)
                {
                    w.WritePropertyName("in_doubt_steps");
                    JsonSerializer.Serialize(w, Plan.InDoubtSteps, RunFormat.CompactJsonOptions);
                }
            });

            foreach (var record in drift)
            {
                AcceptDrift(record);
            }

            RepairStoredCopies();
            WriteSnapshot();

            Log(resumed
                ? $"Attempt {Attempt} resumed run {run.RunId} (was {previousStatus}); first unfinished step: {Plan.FirstUnfinishedStep ?? "(none recorded)"}; {Plan.CompletedItems} item(s) done, {Plan.InDoubt.Count} in doubt."
                : $"Attempt {Attempt} started run {run.RunId}.");
            foreach (var step in Plan.InDoubtSteps)
            {
                Warn($"Step '{step.Step}' is in doubt: it started in attempt {step.Attempt} and was never recorded as finished, so its work may or may not have happened. {(options.InDoubtDecidedPerItem ? "It is decided when the script meets it." : $"Policy: {options.InDoubt}.")}");
            }

            foreach (var item in Plan.InDoubt)
            {
                Warn($"Item '{item.Key}' of step '{item.Step}' is in doubt: its work started in an earlier attempt and was never recorded as finished. {(options.InDoubtDecidedPerItem ? "It is decided per item when the script meets it." : $"Policy: {options.InDoubt}.")}");
            }
        }
        catch
        {
            _log.Dispose();
            _journal.Dispose();
            throw;
        }
    }

    public RunDirectory Run => _run;

    /// <summary>This attempt's number (1 for the first).</summary>
    public int Attempt { get; }

    /// <summary>What the journal said when the attempt began (its State is the live state from then on).</summary>
    public ResumePlan Plan { get; }

    /// <summary>The stored status of the run before this attempt took it over.</summary>
    public RunStatus PreviousStatus { get; }

    /// <summary>The live state, as the snapshot would say it now.</summary>
    public RunState State => _reducer.State;

    /// <summary>logs/attempt-N.log: Core's own lines and whatever the host writes with <see cref="Log"/>.</summary>
    public string LogPath { get; }

    public bool IsFinished => _finished;

    public string? ActiveStep => _activeStep;

    public string? ActiveItem => _activeItem;

    internal static RunAttempt Begin(RunDirectory run, AttemptOptions options)
    {
        ValidateGate(options.Gate);
        var now = DateTimeOffset.UtcNow;
        var runLock = run.AcquireLock(now);

        try
        {
            return new RunAttempt(run, runLock, options, now);
        }
        catch
        {
            runLock.Dispose();
            throw;
        }
    }

    /// <summary>A stop boundary: throws <see cref="RunStoppedException"/> when a stop was requested or Ctrl+C pressed.</summary>
    public void ThrowIfStopRequested()
    {
        if (_options.Cancellation.IsCancellationRequested)
        {
            throw new RunStoppedException(_run.RunId, new StopRequest
            {
                RequestedAt = DateTimeOffset.UtcNow,
                RequestedBy = "Ctrl+C",
                Reason = "the pipeline was stopped",
            });
        }

        if (File.Exists(_run.StopPath))
        {
            throw new RunStoppedException(_run.RunId, _run.ReadStopRequest() ?? new StopRequest { RequestedBy = "unknown" });
        }
    }

    public StepAction BeginStep(string name) => BeginStep(name, null, itemsOnly: false);

    /// <summary>
    /// Decides a step: Replay (done earlier), GatedOut, Skip (in doubt, resolved as skip) or Run, in
    /// which case step_started is on disk before this returns. <paramref name="decideInDoubt"/>
    /// overrides the attempt's policy for a step in doubt. <paramref name="itemsOnly"/>: the step
    /// does nothing but run items (Invoke-RunItem -Step), so it is never in doubt itself.
    /// </summary>
    public StepAction BeginStep(string name, Func<StepRef, InDoubtAction>? decideInDoubt, bool itemsOnly = false)
    {
        EnsureUsable();
        RunId.Validate(name, "step name", ErrorIds.InvalidStepName);
        if (_activeStep is not null)
        {
            throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' was started inside step '{_activeStep}'. Steps do not nest: end '{_activeStep}' first, or use items inside it.", name);
        }

        ThrowIfStopRequested();
        if (!_encountered.Contains(name))
        {
            _encountered.Add(name);
        }

        var step = State.FindStep(name);
        if (step is not null && step.Status == StepStatus.Completed)
        {
            Log($"Step '{name}' completed earlier; replaying its recorded output.");
            return StepAction.Replay;
        }

        if (!InGate(name))
        {
            // Journaled so that the step is known (pending) and the run cannot read as complete.
            Append(JournalEventTypes.StepGated, w =>
            {
                w.WriteString("step", name);
                w.WriteNumber("attempt", Attempt);
            }, durable: false);
            Log($"Step '{name}' is outside the step gate; not run.");
            return StepAction.GatedOut;
        }

        string? previous = null;
        if (_ledger.OpenSteps.TryGetValue(name, out int startedIn) && startedIn != Attempt
            && Plan.InDoubtSteps.Any(s => s.Step == name))
        {
            var stepRef = new StepRef { Step = name, Attempt = startedIn };
            var action = decideInDoubt?.Invoke(stepRef) ?? _options.InDoubt;
            if (action == InDoubtAction.Fail)
            {
                throw new InDoubtItemsException(_run.RunId, Array.Empty<ItemRef>(), new[] { stepRef });
            }

            Append(JournalEventTypes.StepResolved, w =>
            {
                w.WriteString("step", name);
                w.WriteNumber("attempt", Attempt);
                w.WriteString("resolution", action == InDoubtAction.Skip ? "skip" : "retry");
            }, durable: action == InDoubtAction.Skip);
            if (action == InDoubtAction.Skip)
            {
                _ledger.OpenSteps.Remove(name);
                Log($"Step '{name}' was in doubt and is skipped (assumed done; it has no output to replay).");
                WriteSnapshot();
                return StepAction.Skip;
            }

            previous = "in_doubt";
            Log($"Step '{name}' was in doubt and is run again.");
        }

        // Durable: the intent is on disk before the step's work starts, so a crash inside the step
        // leaves it in doubt rather than silently unstarted.
        Append(JournalEventTypes.StepStarted, w =>
        {
            w.WriteString("step", name);
            w.WriteNumber("attempt", Attempt);
            if (itemsOnly)
            {
                w.WriteBoolean("items_only", true);
            }

            if (previous is not null)
            {
                w.WriteString("previous", previous);
            }
        });
        if (itemsOnly)
        {
            _ledger.OpenSteps.Remove(name);
        }
        else
        {
            _ledger.OpenSteps[name] = Attempt;
        }

        _activeStep = name;
        _unitWriteFailure = null;
        _stepClock.Restart();
        Log($"Step '{name}' started.");
        return StepAction.Run;
    }

    /// <summary>Records the step as completed; <paramref name="output"/> is kept under steps/&lt;name&gt;/ and replayed on resume.</summary>
    public void CompleteStep(string name, byte[]? output, string? outputFormat = null) => CompleteStep(name, output, null, outputFormat);

    /// <summary>
    /// A temp file in the step's folder that the step's output is streamed to while it runs, so
    /// that output of any volume never has to be held in memory; <see cref="CompleteStepFromFile"/>
    /// records it. After a crash the next owner removes it with the other temp files.
    /// </summary>
    public string NewStepOutputFile(string name)
    {
        EnsureActiveStep(name);
        string folder = Path.Combine(_run.Path, RunFormat.StepsFolder, name);
        RequireFolder(Path.Combine(_run.Path, RunFormat.StepsFolder));
        RequireFolder(folder);
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, ".output" + DurableFile.TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
    }

    /// <summary>As <see cref="CompleteStep(string, byte[], string)"/>, the output being the file <paramref name="outputFile"/> (from <see cref="NewStepOutputFile"/>), which is consumed.</summary>
    public void CompleteStepFromFile(string name, string outputFile, string? outputFormat) => CompleteStep(name, null, outputFile, outputFormat);

    /// <summary>The full path of a completed step's recorded output; null when it recorded none.</summary>
    public string? StepOutputFile(string name) =>
        State.FindStep(name)?.Output is { } output ? Integrity.ResolvePath(_run.Path, output.Path) : null;

    private void CompleteStep(string name, byte[]? output, string? outputFile, string? outputFormat)
    {
        ThrowIfUnitWriteFailed(name, null);
        EnsureActiveStep(name);
        var failedKeys = _ledger.For(name).Failed;
        if (failedKeys.Count > 0)
        {
            string error = $"{failedKeys.Count} item(s) failed: {string.Join(", ", failedKeys.Take(10))}{(failedKeys.Count > 10 ? ", ..." : string.Empty)}";
            FailStep(name, error);
            throw new RunToolsException(ErrorIds.ItemsFailed, RunToolsErrorCategory.InvalidResult,
                $"Step '{name}' did not complete: {error}. Resume the run to retry them.", name);
        }

        OutputRecord? record = null;
        if (output is not null || outputFile is not null)
        {
            string folder = Path.Combine(_run.Path, RunFormat.StepsFolder, name);
            RequireFolder(Path.Combine(_run.Path, RunFormat.StepsFolder));
            RequireFolder(folder);
            string fileName = "output" + (IsSafeExtension(outputFormat) ? "." + outputFormat : ".bin");
            string relative = $"{RunFormat.StepsFolder}/{name}/{fileName}";
            long size;
            string sha256;
            try
            {
                DurableFile.CreateDirectory(folder);
                if (File.Exists(Integrity.ResolvePath(_run.Path, relative)))
                {
                    // A step that runs again keeps the earlier attempt's output beside the new one.
                    relative = $"{RunFormat.StepsFolder}/{name}/attempt-{Attempt}/{fileName}";
                    DurableFile.CreateDirectory(Path.Combine(folder, $"attempt-{Attempt}"));
                }

                string destination = Integrity.ResolvePath(_run.Path, relative);
                if (outputFile is not null)
                {
                    DurableFile.CopyAtomic(outputFile, destination);
                    DurableFile.TryDelete(outputFile);
                    (size, sha256) = Integrity.HashFile(destination);
                }
                else
                {
                    DurableFile.WriteAtomic(destination, output!);
                    (size, sha256) = (output!.Length, Integrity.Sha256Hex(output));
                }
            }
            catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.WriteFailed)
            {
                FailUnitForWrite(ex);
                throw;
            }

            _options.CrashPoint?.Invoke("step_output_written");
            record = new OutputRecord
            {
                Path = relative,
                Size = size,
                Sha256 = sha256,
                Format = outputFormat,
            };
        }

        long duration = _stepClock.ElapsedMilliseconds;
        Append(JournalEventTypes.StepCompleted, w =>
        {
            w.WriteString("step", name);
            w.WriteNumber("attempt", Attempt);
            w.WriteNumber("duration_ms", duration);
            if (record is not null)
            {
                w.WritePropertyName("output");
                JsonSerializer.Serialize(w, record, RunFormat.CompactJsonOptions);
            }
        });
        _activeStep = null;
        _ledger.OpenSteps.Remove(name);
        if (_options.Gate?.To == name)
        {
            _passedTo = true;
        }

        Log($"Step '{name}' completed in {duration} ms.");
        WriteSnapshot();
    }

    public void FailStep(string name, string error)
    {
        EnsureActiveStep(name);
        long duration = _stepClock.ElapsedMilliseconds;
        Append(JournalEventTypes.StepFailed, w =>
        {
            w.WriteString("step", name);
            w.WriteNumber("attempt", Attempt);
            w.WriteNumber("duration_ms", duration);
            w.WriteString("error", error);
        });
        _activeStep = null;
        _ledger.OpenSteps.Remove(name);
        Log($"Step '{name}' failed: {error}");
        WriteSnapshot();
    }

    /// <summary>
    /// Decides an item: Replay (done earlier), Skip (in doubt, resolved as skip) or Run, in which
    /// case the intent is on disk before this returns. <paramref name="decideInDoubt"/> overrides
    /// the attempt's policy for an item in doubt.
    /// </summary>
    public ItemAction BeginItem(string step, string key, Func<ItemRef, InDoubtAction>? decideInDoubt = null)
    {
        EnsureUsable();
        ValidateKey(key);
        if (!string.Equals(_activeStep, step, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Item '{key}' names step '{step}', which is not the running step ({_activeStep ?? "none"}). Begin the step first.", key);
        }

        if (_activeItem is not null)
        {
            throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                $"Item '{key}' was started while item '{_activeItem}' is still running. Items of one run are processed one at a time.", key);
        }

        ThrowIfStopRequested();
        var ledger = _ledger.For(step);
        if (ledger.Completed.ContainsKey(key))
        {
            return ItemAction.Replay;
        }

        if (ledger.Skipped.Contains(key))
        {
            return ItemAction.Skip;
        }

        string? previous = ledger.Failed.Contains(key) ? "failed" : null;
        if (ledger.Open.TryGetValue(key, out int startedIn))
        {
            if (startedIn == Attempt)
            {
                throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                    $"Item '{key}' of step '{step}' was already started in this attempt and not finished.", key);
            }

            var itemRef = new ItemRef { Step = step, Key = key };
            var action = decideInDoubt?.Invoke(itemRef) ?? _options.InDoubt;
            if (action == InDoubtAction.Fail)
            {
                throw new InDoubtItemsException(_run.RunId, new[] { itemRef });
            }

            Append(JournalEventTypes.ItemResolved, w =>
            {
                w.WriteString("step", step);
                w.WriteString("key", key);
                w.WriteNumber("attempt", Attempt);
                w.WriteString("resolution", action == InDoubtAction.Skip ? "skip" : "retry");
            }, durable: action == InDoubtAction.Skip);
            if (action == InDoubtAction.Skip)
            {
                ledger.Open.Remove(key);
                ledger.Skipped.Add(key);
                Log($"Item '{key}' of step '{step}' was in doubt and is skipped (assumed done).");
                return ItemAction.Skip;
            }

            previous = "in_doubt";
            Log($"Item '{key}' of step '{step}' was in doubt and is retried.");
        }

        Append(JournalEventTypes.ItemStarted, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", Attempt);
            if (previous is not null)
            {
                w.WriteString("previous", previous);
            }
        });
        ledger.Open[key] = Attempt;
        ledger.Failed.Remove(key);
        _activeItem = key;
        _unitWriteFailure = null;
        _itemClock.Restart();
        return ItemAction.Run;
    }

    /// <summary>Records the item as completed; from here on it is never run again in this run.</summary>
    public void CompleteItem(string step, string key, byte[]? output, string? outputFormat = null)
    {
        ThrowIfUnitWriteFailed(step, key);
        EnsureActiveItem(step, key);
        long duration = _itemClock.ElapsedMilliseconds;
        long offset = Append(JournalEventTypes.ItemCompleted, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", Attempt);
            w.WriteNumber("duration_ms", duration);
            if (output is not null)
            {
                w.WriteBase64String("output", output);
                if (outputFormat is not null)
                {
                    w.WriteString("output_format", outputFormat);
                }
            }
        });
        var ledger = _ledger.For(step);
        ledger.Open.Remove(key);
        ledger.Completed[key] = new ItemLedger.CompletedItem(offset, Attempt);
        _activeItem = null;
        MaybeWriteSnapshot();
    }

    public void FailItem(string step, string key, string error)
    {
        EnsureActiveItem(step, key);
        long duration = _itemClock.ElapsedMilliseconds;
        Append(JournalEventTypes.ItemFailed, w =>
        {
            w.WriteString("step", step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", Attempt);
            w.WriteNumber("duration_ms", duration);
            w.WriteString("error", error);
        });
        var ledger = _ledger.For(step);
        ledger.Open.Remove(key);
        ledger.Failed.Add(key);
        _activeItem = null;
        Log($"Item '{key}' of step '{step}' failed: {error}");
        MaybeWriteSnapshot();
    }

    /// <summary>The output recorded for a completed step, or null when it recorded none.</summary>
    public byte[]? ReadStepOutput(string name)
    {
        var output = State.FindStep(name)?.Output;
        return output is null ? null : DurableFile.ReadAllBytes(Integrity.ResolvePath(_run.Path, output.Path));
    }

    public string? StepOutputFormat(string name) => State.FindStep(name)?.Output?.Format;

    /// <summary>The output recorded for a completed item, or null when it recorded none.</summary>
    public byte[]? ReadItemOutput(string step, string key)
    {
        if (!_ledger.For(step).Completed.TryGetValue(key, out var done))
        {
            return null;
        }

        var line = JournalScanner.ReadEventAt(_run.JournalPath, done.Offset);
        if (line is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(line.RawBytes.ToArray());
        return document.RootElement.TryGetProperty("output", out var output) && output.ValueKind == JsonValueKind.String
            ? output.GetBytesFromBase64()
            : null;
    }

    /// <summary>Whether an item is already done (completed or skipped) in this run.</summary>
    public bool IsItemDone(string step, string key)
    {
        var ledger = _ledger.For(step);
        return ledger.Completed.ContainsKey(key) || ledger.Skipped.Contains(key);
    }

    /// <summary>
    /// Records a file with its size and SHA-256: copied under artifacts/ (never over an earlier
    /// attempt's file) or referenced where it is. Inside a step or item it belongs to that unit.
    /// </summary>
    public ArtifactRecord AddArtifact(string sourcePath, string? name = null, ArtifactMode mode = ArtifactMode.Copy) =>
        AddArtifact(sourcePath, name, mode, relativeInRun: false);

    /// <summary>
    /// Verifies a step's declared outputs (paths or globs, relative to the run directory; see
    /// <see cref="Migration.OutputPatterns"/>) and records every matching file in place with its
    /// size and SHA-256, as artifacts of the step: on resume a completed step whose output is gone
    /// or changed runs again. Throws <see cref="ErrorIds.OutputNotFound"/> when a pattern matches nothing.
    /// </summary>
    public IReadOnlyList<ArtifactRecord> RecordStepOutputs(string step, IReadOnlyList<string> patterns)
    {
        EnsureActiveStep(step);
        var missing = new List<string>();
        var files = new List<string>();
        foreach (string pattern in patterns)
        {
            if (pattern.IndexOf('*') < 0 && pattern.IndexOf('?') < 0 && !string.IsNullOrWhiteSpace(pattern))
            {
                // A declared output that is a directory or FIFO is refused by name, not reported as missing.
                InputFile.RequireRegular(Path.GetFullPath(Path.Combine(_run.Path, pattern)), $"Output of step '{step}'", "Declare the files the step writes (a glob such as 'folder/**' records a folder's files).");
            }

            var found = Migration.OutputPatterns.Expand(_run.Path, pattern);
            if (found.Count == 0)
            {
                missing.Add(pattern);
            }

            files.AddRange(found);
        }

        if (missing.Count > 0)
        {
            throw new RunToolsException(ErrorIds.OutputNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"Step '{step}' declares the output(s) {string.Join(", ", missing)}, but nothing matches them in '{_run.Path}' (relative outputs are resolved against the run directory). Make the step write them, or correct -Output; the step is not completed.", step);
        }

        var records = new List<ArtifactRecord>();
        foreach (string file in files.Distinct(StringComparer.Ordinal))
        {
            string relative = Integrity.RelativeToRun(_run.Path, file) ?? Path.GetFileName(file);
            records.Add(AddArtifact(file, Migration.LegacyImport.ArtifactName(relative), ArtifactMode.Reference, relativeInRun: true));
        }

        return records;
    }

    private ArtifactRecord AddArtifact(string sourcePath, string? name, ArtifactMode mode, bool relativeInRun)
    {
        EnsureUsable();
        string full = Path.GetFullPath(sourcePath);
        InputFile.RequireRegular(full, relativeInRun ? $"Output of step '{_activeStep}'" : "Artifact file", "Record regular files only: write the data to a file first, then record that file.");
        if (!File.Exists(full))
        {
            throw new RunToolsException(ErrorIds.ArtifactNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"Artifact file '{full}' does not exist. Write the file before recording it.", sourcePath);
        }

        string artifactName = ValidateArtifactName(name ?? Path.GetFileName(full));
        string recordedPath;
        long size;
        string sha256;
        if (mode == ArtifactMode.Copy)
        {
            recordedPath = FreeArtifactPath(artifactName);
            string destination = Integrity.ResolvePath(_run.Path, recordedPath);
            try
            {
                DurableFile.CreateDirectory(Path.GetDirectoryName(destination)!);
                DurableFile.CopyAtomic(full, destination);
                (size, sha256) = Integrity.HashFile(destination);
            }
            catch (Exception ex) when (ex is RunToolsException { ErrorId: ErrorIds.WriteFailed } || ex is IOException)
            {
                var failure = ex as RunToolsException ?? DurableFile.Failed($"Could not read back the copy '{destination}'", destination, ex, "It does not count as recorded.");
                FailUnitForWrite(failure);
                throw failure;
            }
        }
        else
        {
            // A file inside the run directory is recorded relative to it, so the record moves with the run.
            recordedPath = relativeInRun ? Integrity.RelativeToRun(_run.Path, full) ?? full : full;
            (size, sha256) = Integrity.HashFile(full);
        }

        bool inUnit = _activeStep is not null;
        Append(JournalEventTypes.ArtifactAdded, w =>
        {
            w.WriteString("name", artifactName);
            w.WriteString("path", recordedPath);
            w.WriteString("mode", mode == ArtifactMode.Copy ? "copy" : "reference");
            w.WriteNumber("size", size);
            w.WriteString("sha256", sha256);
            if (_activeStep is not null)
            {
                w.WriteString("step", _activeStep);
            }

            if (_activeItem is not null)
            {
                w.WriteString("key", _activeItem);
            }

            w.WriteNumber("attempt", Attempt);
        }, durable: !inUnit); // inside a unit, the unit's own completion makes it durable
        return State.Artifacts[State.Artifacts.Count - 1];
    }

    /// <summary>Writes a line to this attempt's log (not durable; logs are for people).</summary>
    public void Log(string message)
    {
        try
        {
            FaultPoints.ThrowIfInjected(DurableOp.Write, LogPath);
            _log.WriteLine($"{JournalWriter.FormatTimestamp(DateTimeOffset.UtcNow)} {message}");
        }
        catch (IOException ex)
        {
            // The journal is the record; a log is for people. Say so once, and go on.
            if (!_logFailed)
            {
                _logFailed = true;
                _options.Observer?.Warning($"The attempt log '{LogPath}' could not be written ({ex.Message}); later lines are lost, the run's record (the journal) is not affected. Free disk space if the disk is full.");
            }
        }
    }

    /// <summary>Ends the attempt after the script returned: Completed, or Stopped when gated steps are left.</summary>
    public RunState Complete() => Complete(null);

    /// <summary>
    /// As <see cref="Complete()"/>; <paramref name="stepsInScript"/> are the steps the script names
    /// (read from its text). Those the run never met (a condition or an early <c>exit 0</c> passed
    /// them by) do not keep the run from completing, since that was the script's own decision, but
    /// they are named in a warning and in run_completed's <c>steps_not_met</c>.
    /// </summary>
    public RunState Complete(IReadOnlyCollection<string>? stepsInScript)
    {
        EnsureUsable();
        if (_activeStep is not null)
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"The run cannot complete while step '{_activeStep}' is running.", _activeStep);
        }

        var failed = State.Steps.Where(s => s.Status == StepStatus.Failed).Select(s => s.Name).ToList();
        if (failed.Count > 0)
        {
            return Fail($"step(s) failed: {string.Join(", ", failed)}");
        }

        var pending = State.DeclaredSteps.Concat(State.Steps.Select(s => s.Name)).Distinct(StringComparer.Ordinal)
            .Where(n => State.FindStep(n)?.Status != StepStatus.Completed).ToList();
        if (pending.Count > 0)
        {
            string reason = $"steps not run: {string.Join(", ", pending)}" + (_options.Gate is { IsOpen: false } ? " (outside the step gate)" : string.Empty);
            return Finish(JournalEventTypes.RunStopped, RunStatus.Stopped, w =>
            {
                w.WriteString("reason", reason);
                w.WriteString("requested_by", "step gate");
                w.WriteString("requested_at", JournalWriter.FormatTimestamp(DateTimeOffset.UtcNow));
            }, $"Attempt {Attempt} ended with {reason}.");
        }

        var leftInDoubt = State.Steps.SelectMany(s => s.ItemsOpen.Select(k => $"{s.Name}/{k}")).ToList();
        if (leftInDoubt.Count > 0)
        {
            Warn($"{leftInDoubt.Count} item(s) in doubt were not met again by the script and stay in doubt: {string.Join(", ", leftInDoubt.Take(10))}.");
        }

        var notMet = (stepsInScript ?? Array.Empty<string>()).Where(n => State.FindStep(n) is null).Distinct(StringComparer.Ordinal).ToList();
        if (notMet.Count > 0)
        {
            Warn($"The script names {notMet.Count} step(s) this run never reached: {string.Join(", ", notMet)} (a condition or an early 'exit 0' passed them by). The run is Completed because the script ended without an error; if those steps should have run, fix the script and start a new run.");
        }

        return Finish(JournalEventTypes.RunCompleted, RunStatus.Completed, notMet.Count == 0 ? null : w =>
        {
            w.WritePropertyName("steps_not_met");
            JsonSerializer.Serialize(w, notMet, RunFormat.CompactJsonOptions);
        }, $"Attempt {Attempt} completed the run.");
    }

    /// <summary>Ends the attempt as Failed; a running unit is recorded as failed with the same error.</summary>
    public RunState Fail(string error, bool unitInterrupted = false)
    {
        if (_finished)
        {
            return State;
        }

        try
        {
            if (_activeItem is not null && !unitInterrupted)
            {
                FailItem(_activeStep!, _activeItem, error);
            }

            // An interrupted item stays open (in doubt); only its step is recorded as failed.
            _activeItem = null;

            if (_activeStep is not null)
            {
                FailStep(_activeStep, error);
            }
        }
        catch (RunToolsException) when (_faulted)
        {
        }

        return Finish(JournalEventTypes.RunFailed, RunStatus.Failed, w => w.WriteString("error", error), $"Attempt {Attempt} failed: {error}");
    }

    /// <summary>
    /// Ends the attempt as Stopped. A unit interrupted mid-work (Ctrl+C) is left open, so the
    /// next attempt treats it as in doubt rather than guessing whether its work happened.
    /// </summary>
    public RunState Stop(StopRequest request)
    {
        if (_finished)
        {
            return State;
        }

        string? step = _activeStep;
        string? key = _activeItem;
        var result = Finish(JournalEventTypes.RunStopped, RunStatus.Stopped, w =>
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
        }, $"Attempt {Attempt} stopped as requested by {request.RequestedBy}{(request.Reason is null ? string.Empty : ": " + request.Reason)}.");
        DurableFile.TryDelete(_run.StopPath);
        return result;
    }

    /// <summary>Releases the lock. An attempt not ended by Complete/Fail/Stop stays Running, and reads as Interrupted.</summary>
    public void Dispose()
    {
        // The lock is released whatever fails before it: a lock kept by a failed flush would
        // refuse every later attempt of this process (RunLocked naming itself) until it exits.
        try
        {
            try
            {
                if (!_finished && !_faulted)
                {
                    _journal.Flush();
                }
            }
            catch (Exception ex) when (ex is IOException || ex is RunToolsException)
            {
            }

            try
            {
                _journal.Dispose();
            }
            finally
            {
                _options.CrashPoint?.Invoke("dispose_log");
                _log.Dispose();
            }
        }
        finally
        {
            _lock.Dispose();
        }
    }

    private RunState Finish(string type, RunStatus status, Action<Utf8JsonWriter>? payload, string logLine)
    {
        if (_finished)
        {
            return State;
        }

        Append(type, payload);
        _finished = true;
        _activeStep = null;
        _activeItem = null;
        Log(logLine);
        WriteSnapshot();
        return State;
    }

    private long Append(string type, Action<Utf8JsonWriter>? payload, bool durable = true)
    {
        var now = DateTimeOffset.UtcNow;
        (long sequence, long offset) result;
        try
        {
            result = _journal.Append(type, now, payload, durable);
        }
        catch (RunToolsException)
        {
            _faulted = true;
            throw;
        }

        // Fold the event exactly as a reader would, so the snapshot always equals a rebuild.
        if (_parser.TryParse(_journal.LastLine, true, out var parsed, out _))
        {
            _reducer.Visit(in parsed, result.offset, _journal.LastLine);
        }

        State.UpdatedAt = now;
        State.Journal = new JournalPosition { Sequence = _journal.LastSequence, Length = _journal.Length };
        return result.offset;
    }

    private void MaybeWriteSnapshot()
    {
        if (_sinceSnapshot.Elapsed >= _options.SnapshotInterval)
        {
            WriteSnapshot();
        }
    }

    private void WriteSnapshot()
    {
        if (_snapshotSequence == _journal.LastSequence)
        {
            return;
        }

        // A snapshot must never describe events that could still vanish in a power loss.
        try
        {
            _journal.Flush();
        }
        catch (RunToolsException)
        {
            _faulted = true;
            throw;
        }
        State.Journal = new JournalPosition { Sequence = _journal.LastSequence, Length = _journal.Length };
        var crashPoint = _options.CrashPoint;
        DurableFile.WriteAtomic(_run.StatePath, JsonSerializer.SerializeToUtf8Bytes(State, RunFormat.JsonOptions),
            crashPoint is null ? null : () => crashPoint("snapshot_unrenamed"));
        _snapshotSequence = _journal.LastSequence;
        _sinceSnapshot.Restart();
    }

    private List<DriftRecord> DetectDrift(out IReadOnlyList<ConfigChange> configChanges)
    {
        var drift = new List<DriftRecord>();
        configChanges = Array.Empty<ConfigChange>();
        var state = State;
        if (_options.Config is { } config && !string.Equals(config.Hash, state.Config.Hash, StringComparison.Ordinal))
        {
            var stored = _run.ReadConfig();
            configChanges = ConfigDiff.Compare(stored.Root, config.Root);
            drift.Add(new DriftRecord
            {
                Kind = "config",
                OldHash = state.Config.Hash,
                NewHash = config.Hash,
                Changes = configChanges.Select(c => new ConfigChangeRecord { Path = c.Path, Kind = c.Kind, OldValue = c.OldValue, NewValue = c.NewValue }).ToList(),
            });
        }

        if (_options.Script is { } script)
        {
            string hash = Integrity.Sha256Hex(script);
            if (!string.Equals(hash, state.Script.Hash, StringComparison.Ordinal))
            {
                drift.Add(new DriftRecord { Kind = "script", OldHash = state.Script.Hash, NewHash = hash });
            }
        }

        return drift;
    }

    private void AcceptDrift(DriftRecord record)
    {
        // Order: keep the old copies in history/ (idempotent), then journal the drift (the truth),
        // then write the new copies; RepairStoredCopies mends the last step after a crash.
        string history = $"{RunFormat.HistoryFolder}/attempt-{Attempt - 1}";
        string historyFolder = Path.Combine(_run.Path, RunFormat.HistoryFolder, $"attempt-{Attempt - 1}");
        DurableFile.CreateDirectory(historyFolder);
        var toKeep = record.Kind == "config"
            ? Directory.GetFiles(_run.Path, RunFormat.ConfigFile).Concat(Directory.GetFiles(_run.Path, RunFormat.ConfigSourcePrefix + ".*"))
            : Directory.GetFiles(_run.Path, RunFormat.ScriptFile);
        foreach (string file in toKeep)
        {
            string target = Path.Combine(historyFolder, Path.GetFileName(file));
            if (!File.Exists(target))
            {
                DurableFile.CopyAtomic(file, target);
            }
        }

        Append(JournalEventTypes.DriftAccepted, w =>
        {
            w.WriteNumber("attempt", Attempt);
            w.WriteString("kind", record.Kind);
            w.WriteString("old_hash", record.OldHash);
            w.WriteString("new_hash", record.NewHash);
            w.WritePropertyName("changes");
            JsonSerializer.Serialize(w, record.Changes, RunFormat.CompactJsonOptions);
            w.WriteString("history", history);
            if (record.Kind == "config")
            {
                w.WriteString("format", RunFormat.EnumText(_options.Config!.Format));
                if (_options.Config.SourcePath is { } source)
                {
                    w.WriteString("source_path", source);
                }
                else
                {
                    w.WriteNull("source_path");
                }
            }
            else if (_options.ScriptSourcePath is { } scriptSource)
            {
                w.WriteString("source_path", scriptSource);
            }
        });

        if (record.Kind == "config")
        {
            foreach (string file in Directory.GetFiles(_run.Path, RunFormat.ConfigSourcePrefix + ".*"))
            {
                try
                {
                    File.Delete(file);
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    throw DurableFile.Failed($"Could not replace the stored config source '{file}'", file, ex,
                        "The change is journaled; the next Resume-Run with the new config rewrites the stored copies.");
                }
            }

            RunsRoot.WriteConfigFiles(_run.Path, _options.Config!);
            Warn($"Config drift accepted with -Force: {ConfigDiff.Summarize(record.Changes.Select(c => new ConfigChange(c.Path, c.Kind, c.OldValue, c.NewValue)).ToList())}. The previous config is kept in {history}/.");
        }
        else
        {
            DurableFile.WriteAtomic(_run.ScriptPath, _options.Script!);
            Warn($"Script drift accepted with -Force; the previous script is kept in {history}/.");
        }
    }

    /// <summary>Makes config.json and script.ps1 match the journal's hashes when a crash left them behind.</summary>
    private void RepairStoredCopies()
    {
        if (_options.Config is { } config && config.Hash == State.Config.Hash && File.Exists(_run.ConfigPath)
            && Integrity.HashFile(_run.ConfigPath).Sha256 != config.Hash)
        {
            RunsRoot.WriteConfigFiles(_run.Path, config);
        }

        if (_options.Script is { } script && Integrity.Sha256Hex(script) == State.Script.Hash && File.Exists(_run.ScriptPath)
            && Integrity.HashFile(_run.ScriptPath).Sha256 != State.Script.Hash)
        {
            DurableFile.WriteAtomic(_run.ScriptPath, script);
        }
    }

    private void InvalidateUnit(RunProblem problem)
    {
        if (problem.Step is null)
        {
            Warn($"Run-level artifact {problem}; nothing is redone for it. Run Test-Run for details.");
            return;
        }

        if (problem.Key is null)
        {
            if (State.FindStep(problem.Step)?.Status != StepStatus.Completed)
            {
                return;
            }

            Append(JournalEventTypes.StepInvalidated, w =>
            {
                w.WriteString("step", problem.Step);
                w.WriteString("reason", problem.ToString());
            });
            Warn($"Step '{problem.Step}' completed earlier but its file is not intact ({problem}); it will run again. The old file is kept.");
            return;
        }

        var ledger = _ledger.For(problem.Step);
        if (!ledger.Completed.Remove(problem.Key))
        {
            return;
        }

        Append(JournalEventTypes.ItemInvalidated, w =>
        {
            w.WriteString("step", problem.Step);
            w.WriteString("key", problem.Key);
            w.WriteString("reason", problem.ToString());
            w.WriteString("was", "completed");
        });
        Warn($"Item '{problem.Key}' of step '{problem.Step}' completed earlier but its file is not intact ({problem}); it will run again. The old file is kept.");

        // The item can only run again inside its step: reopen the step too. Its other completed
        // items replay; only the damaged one is redone.
        if (State.FindStep(problem.Step)?.Status == StepStatus.Completed)
        {
            Append(JournalEventTypes.StepInvalidated, w =>
            {
                w.WriteString("step", problem.Step);
                w.WriteString("reason", $"item '{problem.Key}' must be redone");
            });
        }
    }

    private bool InGate(string name)
    {
        var gate = _options.Gate;
        if (gate is null || gate.IsOpen)
        {
            return true;
        }

        if (gate.Only is { Count: > 0 } only)
        {
            return only.Contains(name);
        }

        if (gate.From is not null && !_reachedFrom)
        {
            if (name != gate.From)
            {
                return false;
            }

            _reachedFrom = true;
        }

        return !_passedTo;
    }

    private static StepGate? ValidateGate(StepGate? gate)
    {
        if (gate is null || gate.IsOpen)
        {
            return null;
        }

        foreach (string name in (gate.Only ?? new List<string>()).Concat(new[] { gate.From, gate.To }.Where(n => n is not null))!)
        {
            RunId.Validate(name, "step name", ErrorIds.InvalidStepName);
        }

        return gate;
    }

    private string FreeArtifactPath(string name)
    {
        string candidate = $"{RunFormat.ArtifactsFolder}/{name}";
        if (!File.Exists(Integrity.ResolvePath(_run.Path, candidate)))
        {
            return candidate;
        }

        // Never over an earlier file: later copies of a name go to a per-attempt folder.
        for (int n = 1; ; n++)
        {
            string folder = n == 1 ? $"attempt-{Attempt}" : $"attempt-{Attempt}-{n}";
            candidate = $"{RunFormat.ArtifactsFolder}/{folder}/{name}";
            if (!File.Exists(Integrity.ResolvePath(_run.Path, candidate)))
            {
                return candidate;
            }
        }
    }

    internal static string ValidateArtifactName(string name)
    {
        string normalized = name.Replace('\\', '/');
        foreach (string segment in normalized.Split('/'))
        {
            string? why = RunId.Explain(segment);
            if (why is not null)
            {
                throw new RunToolsException(ErrorIds.InvalidArtifactName, RunToolsErrorCategory.InvalidArgument,
                    $"'{name}' is not a valid artifact name: segment '{segment}' is invalid because {why}. Use '/'-separated segments of {RunId.Rule}.", name);
            }
        }

        return normalized;
    }

    private static void ValidateKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Length > 1024)
        {
            throw new RunToolsException(ErrorIds.InvalidItemKey, RunToolsErrorCategory.InvalidArgument,
                $"Item key '{key}' is not valid: a key is 1 to 1024 characters. Derive keys from a stable, unique property of each item.", key);
        }
    }

    private static bool IsSafeExtension(string? format) =>
        format is { Length: > 0 and <= 16 } && format.All(c => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));

    /// <summary>
    /// A file of the running unit could not be written: the unit is recorded as failed with that
    /// error (when the journal still takes it), so it is retried on resume and never counts as done.
    /// </summary>
    private void FailUnitForWrite(RunToolsException error)
    {
        if (_activeStep is not { } step)
        {
            return;
        }

        string? key = _activeItem;
        _unitWriteFailure = (step, key, error);
        try
        {
            if (key is not null)
            {
                FailItem(step, key, error.Message);
            }
            else
            {
                FailStep(step, error.Message);
            }
        }
        catch (RunToolsException)
        {
            // The journal refused too (_faulted is set): the unit stays open, in doubt, and nothing more is recorded.
        }
    }

    private void ThrowIfUnitWriteFailed(string step, string? key)
    {
        if (_unitWriteFailure is { } failed && failed.Step == step && failed.Key == key)
        {
            string unit = key is null ? $"Step '{step}'" : $"Item '{key}' of step '{step}'";
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"{unit} cannot complete: a file of it could not be written, so it was recorded as failed. {failed.Error.Message}", failed.Error.Target, failed.Error);
        }
    }

    private void EnsureUsable()
    {
        if (_finished)
        {
            throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
                $"Attempt {Attempt} of run '{_run.RunId}' has ended; start a new attempt with Resume-Run.", _run.RunId);
        }

        if (_faulted)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"Attempt {Attempt} of run '{_run.RunId}' could not write its journal and cannot record more work. Fix the disk, then resume the run.", _run.RunId);
        }
    }

    /// <summary>A folder of the format that is a file (or FIFO...) means the run directory is damaged: CorruptState naming it.</summary>
    private void RequireFolder(string folder)
    {
        var kind = NativeFileType.Of(folder);
        if (kind is not (FileKind.Directory or FileKind.Missing))
        {
            throw new RunToolsException(ErrorIds.CorruptState, RunToolsErrorCategory.InvalidData,
                $"Run '{_run.RunId}' is damaged: '{folder}' should be a folder but is {NativeFileType.Describe(kind)}. Move it aside, then resume the run (or restore the run from a backup or archive).", folder);
        }
    }

    private void EnsureActiveStep(string name)
    {
        EnsureUsable();
        if (!string.Equals(_activeStep, name, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' is not running (running: {_activeStep ?? "none"}).", name);
        }

        if (_activeItem is not null)
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' cannot end while item '{_activeItem}' is running.", name);
        }
    }

    private void EnsureActiveItem(string step, string key)
    {
        EnsureUsable();
        if (!string.Equals(_activeStep, step, StringComparison.Ordinal) || !string.Equals(_activeItem, key, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Item '{key}' of step '{step}' is not running.", key);
        }
    }

    private void Warn(string message)
    {
        Log("WARNING: " + message);
        _options.Observer?.Warning(message);
    }

    private static void WriteStop(Utf8JsonWriter w, StopRequest request)
    {
        w.WriteString("requested_at", JournalWriter.FormatTimestamp(request.RequestedAt));
        w.WriteString("requested_by", request.RequestedBy);
        if (request.Reason is null)
        {
            w.WriteNull("reason");
        }
        else
        {
            w.WriteString("reason", request.Reason);
        }
    }

    private static string BackUpTornTail(RunDirectory run, JournalScanResult scan)
    {
        string relative = $"{RunFormat.LogsFolder}/journal-tail-{scan.LastSequence}-{DateTime.UtcNow:yyyyMMddHHmmss}.bin";
        byte[] tail;
        using (var stream = DurableFile.OpenRead(run.JournalPath))
        {
            stream.Position = scan.ValidLength;
            tail = new byte[scan.TornTailLength];
            int read = 0;
            while (read < tail.Length)
            {
                int n = stream.Read(tail, read, tail.Length - read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }
        }

        DurableFile.CreateDirectory(Path.Combine(run.Path, RunFormat.LogsFolder));
        DurableFile.WriteAtomic(Integrity.ResolvePath(run.Path, relative), tail);
        return relative;
    }

    private static void RemoveLeftoverTempFiles(string runPath)
    {
        foreach (string folder in new[] { runPath }.Concat(new[] { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder, RunFormat.HistoryFolder }.Select(f => Path.Combine(runPath, f))))
        {
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (string file in Directory.EnumerateFiles(folder, "*" + DurableFile.TempMarker + "*", folder == runPath ? SearchOption.TopDirectoryOnly : SearchOption.AllDirectories))
            {
                if (Path.GetFileName(file).StartsWith(".", StringComparison.Ordinal))
                {
                    DurableFile.TryDelete(file);
                }
            }
        }
    }
}
