using System;
using System.Collections.Generic;
using System.Linq;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>What a resume will find: finished work, work in doubt, and work that must be redone.</summary>
public sealed class ResumePlan
{
    internal ResumePlan(RunState state, JournalScanResult journal, ItemLedger ledger, List<RunProblem> problems, List<ItemRef> inDoubt, List<StepRef> inDoubtSteps)
    {
        InDoubtSteps = inDoubtSteps;
        State = state;
        Journal = journal;
        Ledger = ledger;
        IntegrityProblems = problems;
        InDoubt = inDoubt;
    }

    public RunState State { get; }

    public JournalScanResult Journal { get; }

    /// <summary>Items whose work started in an earlier attempt and was never recorded as finished.</summary>
    public IReadOnlyList<ItemRef> InDoubt { get; }

    /// <summary>
    /// Steps whose work started in an earlier attempt and was never recorded as finished (a crash,
    /// a kill, Ctrl+C inside the step). A step that records items is not here: its items carry the
    /// doubt, and its body runs again to reach them. Items-only steps (Invoke-RunItem -Step) never are.
    /// </summary>
    public IReadOnlyList<StepRef> InDoubtSteps { get; }

    /// <summary>Recorded files that are missing or corrupt; their units are redone.</summary>
    public IReadOnlyList<RunProblem> IntegrityProblems { get; }

    public long CompletedItems => Ledger.Steps.Sum(s => (long)s.Value.Completed.Count);

    public IReadOnlyList<string> CompletedSteps =>
        State.Steps.Where(s => s.Status == StepStatus.Completed && !IsInvalidated(s.Name, null)).Select(s => s.Name).ToList();

    /// <summary>The first step (in the order steps were declared or first ran) that is not completed; null when all are.</summary>
    public string? FirstUnfinishedStep
    {
        get
        {
            foreach (string name in State.DeclaredSteps.Concat(State.Steps.Select(s => s.Name)).Distinct(StringComparer.Ordinal))
            {
                var step = State.FindStep(name);
                if (step is null || step.Status != StepStatus.Completed || IsInvalidated(name, null))
                {
                    return name;
                }
            }

            return null;
        }
    }

    internal ItemLedger Ledger { get; }

    public bool IsItemCompleted(string step, string key) =>
        Ledger.For(step).Completed.ContainsKey(key) && !IsInvalidated(step, key);

    internal bool IsInvalidated(string step, string? key) =>
        IntegrityProblems.Any(p => p.Step == step && (key is null ? p.Key is null : p.Key == key));
}

internal static class ResumePlanner
{
    internal sealed class Result
    {
        public Result(ResumePlan plan) => Plan = plan;

        public ResumePlan Plan { get; }
    }

    /// <inheritdoc cref="Plan(IRunStore, bool, bool)"/>
    public static Result Plan(RunDirectory run, bool verifyArtifacts, bool checkRunId = true) =>
        Plan(RunStores.Open(run), verifyArtifacts, checkRunId);

    /// <summary>One full journal scan (state + ledger), then integrity checks of completed units.</summary>
    /// <param name="checkRunId">Refuse (RunDamaged) a journal whose run_created names another run; Test-Run reports it instead.</param>
    public static Result Plan(IRunStore store, bool verifyArtifacts, bool checkRunId = true)
    {
        var state = new RunState { RunId = store.RunId };
        var reducer = new StateReducer(state);
        var ledger = new ItemLedger((int)Math.Min(store.LogSizeHint / 300, 16_000_000)); // ~300 bytes per completed item
        var scan = store.ScanLog(new CompositeVisitor(reducer, ledger));
        if (scan.ValidLines == 0)
        {
            // No journal: fall back to the snapshot alone (throws RunDamaged when that is gone too).
            state = store.Snapshot.ReadStored();
        }
        else
        {
            reducer.Finish(scan);
        }

        RunDirectory.EnsureSupportedVersion(store.RunId, state.FormatVersion);
        if (checkRunId)
        {
            store.EnsureOwnRunId(state.RunId, fromLog: scan.ValidLines > 0);
        }

        var inDoubt = new List<ItemRef>();
        foreach (var step in ledger.Steps)
        {
            foreach (var open in step.Value.Open)
            {
                inDoubt.Add(new ItemRef { Step = step.Key, Key = open.Key });
            }
        }

        var inDoubtSteps = new List<StepRef>();
        foreach (var step in state.Steps)
        {
            if (ledger.OpenSteps.TryGetValue(step.Name, out int startedIn) && !ledger.HasItems(step.Name)
                && step.Status is StepStatus.Running or StepStatus.Pending)
            {
                inDoubtSteps.Add(new StepRef { Step = step.Name, Attempt = startedIn });
            }
        }

        var problems = verifyArtifacts ? store.Blobs.Verify(RecordedFiles(state, ledger, unitsOnly: true)) : new List<RunProblem>();
        return new Result(new ResumePlan(state, scan, ledger, problems, inDoubt, inDoubtSteps));
    }

    /// <summary>
    /// The files the journal recorded. With <paramref name="unitsOnly"/>, only those that vouch for a
    /// completed unit (what a resume verifies); otherwise every step output and artifact, marked
    /// with whether it vouches (what Test-Run verifies).
    /// </summary>
    internal static List<RecordedFile> RecordedFiles(RunState state, ItemLedger ledger, bool unitsOnly)
    {
        var files = new List<RecordedFile>();
        foreach (var step in state.Steps)
        {
            if (step.Status == StepStatus.Completed && step.Output is { } output)
            {
                files.Add(new RecordedFile(output.Path, output.Size, output.Sha256, step.Name, null));
            }
        }

        // Only the artifacts of the attempt that completed a unit vouch for it; later copies of
        // the same name are newer units' files, older ones belong to superseded work.
        var latest = new Dictionary<(string?, string?, string), ArtifactRecord>();
        foreach (var artifact in state.Artifacts)
        {
            if (artifact.Step is null)
            {
                continue;
            }

            int completingAttempt;
            if (artifact.Key is null)
            {
                var step = state.FindStep(artifact.Step);
                if (step is null || step.Status != StepStatus.Completed)
                {
                    continue;
                }

                completingAttempt = step.Attempt;
            }
            else
            {
                if (!ledger.For(artifact.Step).Completed.TryGetValue(artifact.Key, out var done))
                {
                    continue;
                }

                completingAttempt = done.Attempt;
            }

            if (artifact.Attempt == completingAttempt)
            {
                latest[(artifact.Step, artifact.Key, artifact.Name)] = artifact;
            }
        }

        var vouching = new HashSet<ArtifactRecord>(latest.Values);
        foreach (var artifact in state.Artifacts)
        {
            bool runLevel = artifact.Step is null;
            if (vouching.Contains(artifact))
            {
                files.Add(new RecordedFile(artifact.Path, artifact.Size, artifact.Sha256, artifact.Step, artifact.Key));
            }
            else if (!unitsOnly)
            {
                files.Add(new RecordedFile(artifact.Path, artifact.Size, artifact.Sha256, artifact.Step, artifact.Key, vouches: runLevel,
                    note: runLevel ? null : $"Recorded in attempt {artifact.Attempt} for work that was redone or never finished; it vouches for nothing and is kept for reference."));
            }
        }

        return files;
    }
}
