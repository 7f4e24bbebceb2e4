using System.Linq;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>The start of an attempt, in the order of docs/run-format.md §5.3.</summary>
public sealed partial class RunAttempt
{
    private void Open(JournalScanResult scan, string? tailBackup, RunStatus previousStatus)
    {
        var run = _run;
        var options = _options;
        var state = State;
        if (tailBackup is not null)
        {
            Record(RunEvent.JournalRepaired(scan.ValidLength, scan.TornTailLength, tailBackup));
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

        var drift = AttemptDrift.Detect(run, options, state, out var configChanges);
        if (drift.Count > 0 && !options.Force)
        {
            Record(RunEvent.ResumeRefusedForDrift(drift));
            throw new DriftException(run.RunId, drift, configChanges);
        }

        if ((Plan.InDoubt.Count > 0 || Plan.InDoubtSteps.Count > 0) && options.InDoubt == InDoubtAction.Fail)
        {
            Record(RunEvent.ResumeRefusedInDoubt(Plan.InDoubt.Count, Plan.InDoubtSteps.Count));
            throw new InDoubtItemsException(run.RunId, Plan.InDoubt, Plan.InDoubtSteps);
        }

        foreach (var problem in Plan.IntegrityProblems)
        {
            InvalidateUnit(problem);
        }

        var stop = _store.ReadStopRequest();
        if (stop is not null)
        {
            Record(RunEvent.StopCleared(stop));
            _store.ClearStopRequest();
            Warn($"A stop request from {stop.RequestedBy} ({stop.RequestedAt:u}) was left over from an earlier attempt and was cleared.");
        }

        bool resumed = previousStatus != RunStatus.Created || state.Attempt > 0;
        string newConfigHash = options.Config?.Hash ?? state.Config.Hash;
        string newScriptHash = options.Script is null ? state.Script.Hash : Integrity.Sha256Hex(options.Script);
        Record(RunEvent.AttemptStarted(Attempt, resumed, previousStatus, _ownership.Holder, drift.Count > 0, newConfigHash, newScriptHash,
            _gate.Gate, Plan.InDoubt, Plan.InDoubtSteps, options.Parameters?.Hash ?? state.ParametersHash, options.StartedBy));

        foreach (var record in drift)
        {
            AttemptDrift.Accept(run, options, _recorder, Attempt, record, Warn);
        }

        AttemptDrift.RepairStoredCopies(run, options, State);

        // A run in a database: its copies as now recorded are stored there, for any machine to fetch.
        run.SaveStoredCopies(State);
        if (options.FailedItems == FailedItemAction.Skip)
        {
            SkipFailedItems();
        }

        _recorder.Snapshot();

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

    /// <summary>A completed unit whose file is not intact is reopened (journaled), so it runs again.</summary>
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

            Record(RunEvent.StepInvalidated(problem.Step, problem.ToString()));
            Warn($"Step '{problem.Step}' completed earlier but its file is not intact ({problem}); it will run again. The old file is kept.");
            return;
        }

        if (!Ledger.For(problem.Step).Completed.ContainsKey(problem.Key))
        {
            return;
        }

        Record(RunEvent.ItemInvalidated(problem.Step, problem.Key, problem.ToString()));
        Warn($"Item '{problem.Key}' of step '{problem.Step}' completed earlier but its file is not intact ({problem}); it will run again. The old file is kept.");

        // The item can only run again inside its step: reopen the step too. Its other completed
        // items replay; only the damaged one is redone.
        if (State.FindStep(problem.Step)?.Status == StepStatus.Completed)
        {
            Record(RunEvent.StepInvalidated(problem.Step, $"item '{problem.Key}' must be redone"));
        }
    }
}
