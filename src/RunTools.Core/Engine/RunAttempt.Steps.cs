using System;
using System.Diagnostics;
using System.IO;
using System.Linq;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>Steps: one at a time, journaled before they run, their output kept as a blob of the run's store (steps/&lt;name&gt;/ in a folder).</summary>
public sealed partial class RunAttempt
{
    private readonly Stopwatch _stepClock = new();
    private volatile string? _activeStep;

    public string? ActiveStep => _activeStep;

    public StepAction BeginStep(string name) => BeginStep(name, null, itemsOnly: false);

    /// <summary>
    /// Decides a step: Replay (done earlier), GatedOut, Skip (in doubt, resolved as skip) or Run, in
    /// which case step_started is on disk before this returns. <paramref name="decideInDoubt"/>
    /// overrides the attempt's policy for a step in doubt. <paramref name="itemsOnly"/>: the step
    /// does nothing but run items (Invoke-RunItem -Step), so it is never in doubt itself.
    /// </summary>
    public StepAction BeginStep(string name, Func<StepRef, InDoubtAction>? decideInDoubt, bool itemsOnly = false) => BeginStep(name, decideInDoubt, itemsOnly, 1);

    /// <summary>As <see cref="BeginStep(string, Func{StepRef, InDoubtAction}, bool)"/>, for try <paramref name="tryNumber"/> of a retried step.</summary>
    public StepAction BeginStep(string name, Func<StepRef, InDoubtAction>? decideInDoubt, bool itemsOnly, int tryNumber)
    {
        EnsureUsable();
        PortableName.ValidateStepName(name);
        if (_activeStep is not null)
        {
            throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' was started inside step '{_activeStep}'. Steps do not nest: end '{_activeStep}' first, or use items inside it.", name);
        }

        ThrowIfStopRequested();
        if (IsWorker)
        {
            return JoinStep(name, itemsOnly);
        }

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

        if (!_gate.Admits(name))
        {
            // Journaled so that the step is known (pending) and the run cannot read as complete.
            Record(RunEvent.StepGated(name, Attempt), Durability.Lazy);
            Log($"Step '{name}' is outside the step gate; not run.");
            return StepAction.GatedOut;
        }

        string? previous = null;
        if (Ledger.OpenSteps.TryGetValue(name, out int startedIn) && startedIn != Attempt
            && Plan.InDoubtSteps.Any(s => s.Step == name))
        {
            var stepRef = new StepRef { Step = name, Attempt = startedIn };
            var action = decideInDoubt?.Invoke(stepRef) ?? _options.InDoubt;
            if (action == InDoubtAction.Fail)
            {
                throw new InDoubtItemsException(_run.RunId, Array.Empty<ItemRef>(), new[] { stepRef });
            }

            bool skip = action == InDoubtAction.Skip;
            Record(RunEvent.StepResolved(name, Attempt, skip), skip ? Durability.Durable : Durability.Lazy);
            if (skip)
            {
                Log($"Step '{name}' was in doubt and is skipped (assumed done; it has no output to replay).");
                _recorder.Snapshot();
                return StepAction.Skip;
            }

            previous = "in_doubt";
            Log($"Step '{name}' was in doubt and is run again.");
        }

        // Durable: the intent is on disk before the step's work starts, so a crash inside the step
        // leaves it in doubt rather than silently unstarted.
        Record(RunEvent.StepStarted(name, Attempt, itemsOnly, previous, tryNumber));
        _activeStep = name;
        _activeStepItemsOnly = itemsOnly;
        ClearWriteFailures();
        _stepClock.Restart();
        Log($"Step '{name}' started.");
        return StepAction.Run;
    }

    /// <summary>Records the step as completed; <paramref name="output"/> is kept under steps/&lt;name&gt;/ and replayed on resume.</summary>
    public void CompleteStep(string name, byte[]? output, string? outputFormat = null) => CompleteStep(name, output, null, outputFormat);

    /// <summary>
    /// A local file that the step's output is streamed to while it runs, so that output of any
    /// volume never has to be held in memory; <see cref="CompleteStepFromFile"/> records it. After
    /// a crash the next owner removes it with the store's other leftovers.
    /// </summary>
    public string NewStepOutputFile(string name)
    {
        EnsureActiveStep(name);
        return _store.Blobs.NewStagingFile(name);
    }

    /// <summary>As <see cref="CompleteStep(string, byte[], string)"/>, the output being the file <paramref name="outputFile"/> (from <see cref="NewStepOutputFile"/>), which is consumed.</summary>
    public void CompleteStepFromFile(string name, string outputFile, string? outputFormat) => CompleteStep(name, null, outputFile, outputFormat);

    /// <summary>A local file holding a completed step's recorded output (for hosts that read by path); null when it recorded none.</summary>
    public string? StepOutputFile(string name) =>
        State.FindStep(name)?.Output is { } output ? _store.Blobs.LocalFile(output.Path) : null;

    /// <summary>The output recorded for a completed step, or null when it recorded none.</summary>
    public byte[]? ReadStepOutput(string name)
    {
        var output = State.FindStep(name)?.Output;
        if (output is null)
        {
            return null;
        }

        using var stream = _store.Blobs.OpenRead(output.Path);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    public string? StepOutputFormat(string name) => State.FindStep(name)?.Output?.Format;

    public void FailStep(string name, string error) => FailStep(name, new UnitFailure(error));

    /// <summary>Records one failed try of the step; with <see cref="UnitFailure.RetryIn"/> set the caller begins it again after that wait.</summary>
    public void FailStep(string name, UnitFailure failure)
    {
        if (failure.TimedOut && string.Equals(_activeStep, name, StringComparison.Ordinal))
        {
            // The step's time limit stopped it while one of its items ran on this thread: that
            // item was stopped with it, a failure its next try runs again (items claimed but not
            // started stay pending).
            foreach (var (key, started, thread) in RunningItemStates())
            {
                if (!started)
                {
                    ReleaseItem(key);
                }
                else if (thread == Environment.CurrentManagedThreadId)
                {
                    FailItem(name, key, new UnitFailure($"Step '{name}' ran past its time limit while this item ran, and the item was stopped with it.") { TimedOut = true, ErrorId = ErrorIds.UnitTimedOut });
                }
            }
        }

        EnsureActiveStep(name);
        if (IsWorker)
        {
            // The owner records the step's end; this worker only leaves it.
            _activeStep = null;
            Log($"Left step '{name}': {failure.Error}");
            return;
        }

        long duration = _stepClock.ElapsedMilliseconds;
        Record(RunEvent.StepFailed(name, Attempt, duration, failure));
        _activeStep = null;
        Log($"Step '{name}' failed{TryText(failure)}: {failure.Error}");
        _recorder.Snapshot();
    }

    private static string TryText(UnitFailure failure) =>
        (failure.Try > 1 ? $" (try {failure.Try})" : string.Empty)
        + (failure.TimedOut ? " by running past its time limit" : string.Empty)
        + (failure.RetryIn is { } wait ? $"; trying again in {wait.TotalSeconds:0.###} s" : string.Empty);

    private void CompleteStep(string name, byte[]? output, string? outputFile, string? outputFormat)
    {
        ThrowIfUnitWriteFailed(name, null);
        EnsureActiveStep(name);
        var failedKeys = Ledger.For(name).Failed;
        if (failedKeys.Count > 0)
        {
            string error = $"{failedKeys.Count} item(s) failed: {string.Join(", ", failedKeys.Take(10))}{(failedKeys.Count > 10 ? ", ..." : string.Empty)}";
            FailStep(name, error);
            throw new RunToolsException(ErrorIds.ItemsFailed, RunToolsErrorCategory.InvalidResult,
                $"Step '{name}' did not complete: {error}. Resume the run to retry them.", name);
        }

        if (IsWorker)
        {
            // Its items are all done (here or elsewhere); the owner records the step's completion.
            _activeStep = null;
            Log($"Left step '{name}': its items are done.");
            return;
        }

        OutputRecord? record = null;
        if (output is not null || outputFile is not null)
        {
            record = WriteStepOutput(name, output, outputFile, outputFormat);
        }

        long duration = _stepClock.ElapsedMilliseconds;
        Record(RunEvent.StepCompleted(name, Attempt, duration, record));
        _activeStep = null;
        _gate.Completed(name);
        Log($"Step '{name}' completed in {duration} ms.");
        _recorder.Snapshot();
    }

    private OutputRecord WriteStepOutput(string name, byte[]? output, string? outputFile, string? outputFormat)
    {
        StoredBlob blob;
        try
        {
            if (outputFile is not null)
            {
                blob = _store.Blobs.TakeStagingFile(name, Attempt, outputFormat, outputFile);
            }
            else
            {
                using var buffer = new MemoryStream(output!, writable: false);
                blob = _store.Blobs.WriteStepOutput(name, Attempt, outputFormat, buffer);
            }
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.WriteFailed)
        {
            FailUnitForWrite(name, null, ex);
            throw;
        }

        _options.CrashPoint?.Invoke("step_output_written");
        return new OutputRecord
        {
            Path = blob.Name,
            Size = blob.Size,
            Sha256 = blob.Sha256,
            Format = outputFormat,
        };
    }

    private void EnsureActiveStep(string name)
    {
        EnsureUsable();
        if (!string.Equals(_activeStep, name, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' is not running (running: {_activeStep ?? "none"}).", name);
        }

        var running = RunningItems();
        if (running.Count > 0)
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Step '{name}' cannot end while item '{running[0]}' is running.", name);
        }
    }
}
