using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>What Test-Run found: the run's state as the journal tells it, and every problem.</summary>
public sealed class RunTestResult
{
    internal RunTestResult(RunDirectory run, RunState? state, List<RunProblem> problems, int filesChecked, long bytesChecked)
    {
        Run = run;
        State = state;
        Problems = problems;
        FilesChecked = filesChecked;
        BytesChecked = bytesChecked;
    }

    public RunDirectory Run { get; }

    /// <summary>The state as the journal (the source of truth) tells it; null when nothing is readable.</summary>
    public RunState? State { get; }

    public IReadOnlyList<RunProblem> Problems { get; }

    /// <summary>True when no problem is an error; warnings (a torn journal tail, damaged files of superseded work) do not count.</summary>
    public bool IsValid => Problems.All(p => p.Severity != RunProblemSeverity.Error);

    /// <summary>Recorded files whose presence, size and SHA-256 were checked.</summary>
    public int FilesChecked { get; }

    public long BytesChecked { get; }
}

/// <summary>
/// Test-Run's checks, in the order a reader depends on them: the format version, the files the
/// format requires, the journal, run.json against the journal, the stored config and script
/// against their recorded hashes, then every recorded file (in parallel).
/// </summary>
internal static partial class RunTester
{
    public static RunTestResult Test(RunDirectory run, Action<long, long>? bytesHashed, CancellationToken cancellation)
    {
        if (run.Database is { } database)
        {
            return TestInDatabase(run, database, bytesHashed, cancellation);
        }

        var problems = new List<RunProblem>();
        var journalKind = NativeFileType.Of(run.JournalPath);
        if (journalKind is not (FileKind.Regular or FileKind.Missing))
        {
            // Nothing can be judged without the journal, and opening a FIFO would block.
            problems.Add(new RunProblem(RunProblemKind.Unreadable, RunFormat.JournalFile, "a regular file", NativeFileType.Describe(journalKind), null, null,
                note: "The journal is the run's source of truth: move this aside and restore journal.jsonl from a backup or archive."));
            return new RunTestResult(run, null, problems, 0, 0);
        }

        try
        {
            return Test(run, problems, bytesHashed, cancellation);
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.UnsupportedFormatVersion)
        {
            // Nothing else can be judged by rules written for an older format.
            problems.Add(new RunProblem(RunProblemKind.UnsupportedFormatVersion, RunFormat.StateFile, $"format version {RunFormat.Version} or lower", "a newer version", null, null,
                note: ex.Message));
            return new RunTestResult(run, null, problems, 0, 0);
        }
    }

    private static RunTestResult Test(RunDirectory run, List<RunProblem> problems, Action<long, long>? bytesHashed, CancellationToken cancellation)
    {
        // A live owner only ever moves the snapshot forward, so for a running run the snapshot is
        // read before the journal: the journal then reaches at least as far as it says. A run
        // nobody owns does not change, and both are read at once.
        // A lock file that is a link, a directory or a FIFO is refused (LockFileInvalid), never
        // opened through; one that cannot be read counts as owned, so an in-flight tail is not called torn.
        var probe = run.ProbeLock();
        if (probe.State == LockProbeState.Invalid)
        {
            throw probe.InvalidError(run.RunId);
        }

        bool owned = probe.State == LockProbeState.Held || probe.State == LockProbeState.Unknown;
        string? snapshotFailure = null;
        var snapshotRead = owned
            ? System.Threading.Tasks.Task.FromResult(run.TryReadSnapshot(out snapshotFailure))
            : System.Threading.Tasks.Task.Run(() => run.TryReadSnapshot(out snapshotFailure), cancellation);
        bool journalExists = File.Exists(run.JournalPath);
        if (!journalExists)
        {
            problems.Add(Required(RunFormat.JournalFile, "The journal is the run's source of truth; restore it from a backup or archive."));
        }

        ResumePlan plan;
        try
        {
            plan = ResumePlanner.Plan(run, verifyArtifacts: false, checkRunId: false).Plan;
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.RunDamaged)
        {
            // Neither run.json nor the journal can be read: the problems above already say so.
            if (journalExists)
            {
                problems.Add(new RunProblem(RunProblemKind.CorruptJournal, RunFormat.JournalFile, "verified journal lines", "none", null, null, note: ex.Message));
            }

            return new RunTestResult(run, null, problems, 0, 0);
        }

        var snapshot = snapshotRead.GetAwaiter().GetResult();
        if (snapshotFailure == "missing")
        {
            problems.Add(Required(RunFormat.StateFile, journalExists
                ? "Readers rebuild the state from the journal; restore run.json from a backup or archive to stop paying for that."
                : null));
        }
        else if (snapshotFailure is not null)
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptState, RunFormat.StateFile, "a run.json readable as JSON", snapshotFailure, null, null,
                note: "Readers rebuild the state from the journal; restore run.json from a backup or archive."));
        }

        var state = plan.State;
        var journal = plan.Journal;
        CheckRunId(run, snapshot, journal.ValidLines > 0 ? state : null, problems);
        CheckJournal(journal, journalExists, owned, problems);
        if (snapshot is not null && journal.ValidLines > 0)
        {
            CheckSnapshot(snapshot, state, journal, (length, sequence, reducer) => JournalScanner.Scan(run.JournalPath, length, sequence, reducer), problems);
        }

        CheckCompletion(plan, problems);
        CheckRepeats(plan, problems);
        CheckStoredCopy(run, RunFormat.ConfigFile, state.Config.Hash, "the config the run recorded", LastDrift(state, "config"), problems);
        CheckStoredCopy(run, RunFormat.ScriptFile, state.Script.Hash, "the script the run recorded", LastDrift(state, "script"), problems);
        if (state.ParametersHash is { Length: > 0 } parametersHash)
        {
            CheckStoredCopy(run, RunFormat.ParametersFile, parametersHash, "the parameters the run saved", LastDrift(state, "parameters"), problems);
        }

        var files = ResumePlanner.RecordedFiles(state, plan.Ledger, unitsOnly: false);
        long total = files.Sum(f => f.Size);
        long done = 0;
        Action<long>? onFile = bytesHashed is null ? null : size => bytesHashed(Interlocked.Add(ref done, size), total);
        problems.AddRange(Integrity.CheckAll(run.Path, files, onFile, cancellation));

        state.Status = run.DeriveStatus(state.Status);
        return new RunTestResult(run, state, problems, files.Count, total);
    }

    /// <summary>A run directory is named by its run id; files naming another run belong elsewhere.</summary>
    private static void CheckRunId(RunDirectory run, RunState? snapshot, RunState? journalState, List<RunProblem> problems)
    {
        if (snapshot is not null && snapshot.RunId != run.RunId)
        {
            problems.Add(new RunProblem(RunProblemKind.RunIdMismatch, $"{RunFormat.StateFile}#/run_id", run.RunId, snapshot.RunId, null, null,
                note: "run.json belongs to another run. Readers and Resume-Run refuse this run (RunDamaged); rename the directory if it is that run, or restore this run's files from a backup or archive."));
        }

        if (journalState is not null && journalState.RunId != run.RunId)
        {
            problems.Add(new RunProblem(RunProblemKind.RunIdMismatch, $"{RunFormat.JournalFile}#run_created/run_id", run.RunId, journalState.RunId, null, null,
                note: "The journal belongs to another run. Readers and Resume-Run refuse this run (RunDamaged); rename the directory if it is that run, or restore this run's files from a backup or archive."));
        }
    }

    /// <summary>
    /// A run the journal calls Completed must have finished every step it knows (declared or met)
    /// and left no work open: a run_completed written over unfinished work is a forgery or a bug.
    /// </summary>
    private static void CheckCompletion(ResumePlan plan, List<RunProblem> problems)
    {
        var state = plan.State;
        if (state.Status != RunStatus.Completed)
        {
            return;
        }

        const string Note = "run_completed is recorded but this work never finished; the run is not really complete. Start a new run to do the work (a completed run is not resumed).";
        foreach (string name in state.DeclaredSteps.Concat(state.Steps.Select(s => s.Name)).Distinct(StringComparer.Ordinal))
        {
            var step = state.FindStep(name);
            if (step is null || step.Status != StepStatus.Completed)
            {
                problems.Add(new RunProblem(RunProblemKind.IncompleteRun, $"{RunFormat.JournalFile}#steps/{name}", "completed",
                    step is null ? "never started" : step.Status.ToString().ToLowerInvariant(), name, null, note: Note));
            }
        }

        // An item the completing attempt started and never finished cannot be left by Complete; one
        // left in doubt by an earlier attempt can (the script never met its key again): a warning.
        foreach (var step in plan.Ledger.Steps)
        {
            foreach (var open in step.Value.Open)
            {
                bool sameAttempt = open.Value >= state.Attempt;
                problems.Add(new RunProblem(RunProblemKind.IncompleteRun, $"{RunFormat.JournalFile}#steps/{step.Key}/items/{open.Key}", "completed, failed or skipped",
                    $"started in attempt {open.Value}, never finished", step.Key, open.Key,
                    sameAttempt ? RunProblemSeverity.Error : RunProblemSeverity.Warning,
                    sameAttempt ? Note : "The item stayed in doubt: the run completed without meeting its key again. Check whether its work happened."));
            }
        }
    }

    /// <summary>
    /// Events the journal holds twice (<see cref="ItemLedger.Repeats"/>): resume ignores them, so the
    /// run stays valid, but each is a copy RunTools promises not to write.
    /// </summary>
    private static void CheckRepeats(ResumePlan plan, List<RunProblem> problems)
    {
        foreach (var repeat in plan.Ledger.Repeats)
        {
            string where = repeat.Step is null ? $"{RunFormat.JournalFile}#seq/{repeat.Sequence}" : $"{RunFormat.JournalFile}#steps/{repeat.Step}/items/{repeat.Key}";
            problems.Add(new RunProblem(RunProblemKind.RepeatedEvent, where, $"one {repeat.Type}", $"a repeat at seq {repeat.Sequence}: {repeat.Why}", repeat.Step, repeat.Key,
                RunProblemSeverity.Warning, "Resume-Run ignores the repeat (no item is reopened or redone by it), but the run's counts and artifact list may include it. RunTools should never write one: report it."));
        }
    }

    private static RunProblem Required(string file, string? note) =>
        new(RunProblemKind.MissingFile, file, "a file the run-directory format requires", "no file", null, null, note: note);

    private static void CheckJournal(JournalScanResult journal, bool exists, bool owned, List<RunProblem> problems)
    {
        if (!exists)
        {
            return;
        }

        if (journal.ValidLines == 0)
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptJournal, RunFormat.JournalFile, "verified journal lines", "none", null, null,
                note: "No line of the journal passes its checksum; restore it from a backup or archive."));
            return;
        }

        foreach (var defect in journal.CorruptLines)
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptJournal, RunFormat.JournalFile, "a line that passes its checksum",
                $"offset {defect.Offset}, {defect.Length} bytes: {defect.Reason}", null, null,
                note: "Readers skip the line; the events in it are lost. Restore the journal from a backup or archive if they matter."));
        }

        foreach (string gap in journal.SequenceGaps)
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptJournal, RunFormat.JournalFile, "consecutive sequence numbers", gap, null, null,
                note: "Journal lines are missing; restore the journal from a backup or archive."));
        }

        // A live owner may be in the middle of an append; only a dead one leaves a torn tail.
        if (journal.TornTailLength > 0 && !owned)
        {
            problems.Add(new RunProblem(RunProblemKind.TornJournalTail, RunFormat.JournalFile, $"{journal.ValidLength} bytes of whole lines",
                $"{journal.TornTailLength} more bytes of a line that was never finished", null, null, RunProblemSeverity.Warning,
                "A crash cut a write short; nothing committed is lost. The next Resume-Run cuts it off and keeps a copy under logs/."));
        }
    }

    /// <summary>run.json plus the journal after it must tell the same story as the whole journal.</summary>
    private static void CheckSnapshot(RunState snapshot, RunState truth, JournalScanResult journal, Func<long, long, IJournalVisitor, JournalScanResult> scanFrom, List<RunProblem> problems)
    {
        var position = snapshot.Journal;
        if (position.Length > journal.ValidLength || position.Sequence > journal.LastSequence)
        {
            problems.Add(new RunProblem(RunProblemKind.JournalTruncated, RunFormat.JournalFile,
                $"at least {position.Length} bytes, up to sequence {position.Sequence} (as run.json says)",
                $"{journal.ValidLength} bytes, up to sequence {journal.LastSequence}", null, null,
                note: "Committed events are lost (a restore from an older copy, or a disk that lost writes). Restore the journal from a backup or archive."));
            return;
        }

        if (position.Length < journal.ValidLength)
        {
            // Folded only up to where the journal was read for the truth: a live owner may have
            // appended since, and events past that point would put the snapshot ahead of it.
            var reducer = new StateReducer(snapshot);
            var tail = scanFrom(position.Length, position.Sequence, new UpToSequence(reducer, journal.LastSequence));
            if (tail.SequenceGaps.Count > 0 || tail.CorruptLines.Count > journal.CorruptLines.Count)
            {
                problems.Add(Mismatch("journal", $"a line boundary at offset {position.Length} after sequence {position.Sequence}", "the journal does not continue there", null, null));
                return;
            }

            reducer.Finish(tail);
        }

        Compare("format_version", truth.FormatVersion, snapshot.FormatVersion);
        Compare("status", truth.Status, snapshot.Status);
        Compare("attempt", truth.Attempt, snapshot.Attempt);
        Compare("config/hash", truth.Config.Hash, snapshot.Config.Hash);
        Compare("script/hash", truth.Script.Hash, snapshot.Script.Hash);
        Compare("items_completed", truth.ItemsCompleted, snapshot.ItemsCompleted);
        foreach (var step in truth.Steps)
        {
            var stored = snapshot.FindStep(step.Name);
            if (stored is null)
            {
                problems.Add(Mismatch($"steps/{step.Name}", "present", "absent", step.Name, null));
                continue;
            }

            Compare($"steps/{step.Name}/status", step.Status, stored.Status, step.Name);
            Compare($"steps/{step.Name}/items_completed", step.ItemsCompleted, stored.ItemsCompleted, step.Name);
            Compare($"steps/{step.Name}/output/sha256", step.Output?.Sha256, stored.Output?.Sha256, step.Name);
        }

        foreach (var stored in snapshot.Steps.Where(s => truth.FindStep(s.Name) is null))
        {
            problems.Add(Mismatch($"steps/{stored.Name}", "absent", "present", stored.Name, null));
        }

        Compare("artifacts/count", truth.Artifacts.Count, snapshot.Artifacts.Count);
        for (int i = 0; i < Math.Min(truth.Artifacts.Count, snapshot.Artifacts.Count); i++)
        {
            var a = truth.Artifacts[i];
            var b = snapshot.Artifacts[i];
            Compare($"artifacts/{i}", $"{a.Name} {a.Path} {a.Size} {a.Sha256}", $"{b.Name} {b.Path} {b.Size} {b.Sha256}", a.Step, a.Key);
        }

        void Compare<T>(string field, T journalValue, T snapshotValue, string? step = null, string? key = null)
        {
            if (!EqualityComparer<T>.Default.Equals(journalValue, snapshotValue))
            {
                problems.Add(Mismatch(field, journalValue?.ToString() ?? "(none)", snapshotValue?.ToString() ?? "(none)", step, key));
            }
        }
    }

    private static RunProblem Mismatch(string field, string journalValue, string snapshotValue, string? step, string? key) =>
        new(RunProblemKind.StateMismatch, $"{RunFormat.StateFile}#/{field}", journalValue, snapshotValue, step, key,
            note: "run.json disagrees with the journal (expected is the journal's value). The journal wins: readers rebuild from it; restore run.json from a backup or delete it to have it rebuilt.");

    /// <summary>The last accepted drift of a kind: the hash the stored copy had before it.</summary>
    private static DriftRecord? LastDrift(RunState state, string kind) =>
        state.ResumeHistory.SelectMany(r => r.Drift).LastOrDefault(d => d.Kind == kind);

    private static void CheckStoredCopy(RunDirectory run, string file, string recordedHash, string what, DriftRecord? lastDrift, List<RunProblem> problems)
    {
        string path = Path.Combine(run.Path, file);
        if (!File.Exists(path))
        {
            problems.Add(Required(file, $"It is {what}; restore it from history/, a backup or an archive."));
            return;
        }

        if (recordedHash.Length == 0)
        {
            return;
        }

        try
        {
            var (_, actual) = Integrity.HashFile(path);
            if (!string.Equals(actual, recordedHash, StringComparison.OrdinalIgnoreCase)
                && lastDrift is not null && string.Equals(actual, lastDrift.OldHash, StringComparison.OrdinalIgnoreCase))
            {
                // The drift was journaled, then a crash or a write failure kept the new copy from replacing the old one.
                problems.Add(new RunProblem(RunProblemKind.HashMismatch, file, recordedHash, actual, null, null, RunProblemSeverity.Warning,
                    note: $"It is still the copy from before the change accepted with -Force (the rewrite was cut short). The next Resume-Run with the new {(file == RunFormat.ConfigFile ? "config" : file == RunFormat.ParametersFile ? "parameters" : "script")} rewrites it; the old copy is also kept under history/."));
            }
            else if (!string.Equals(actual, recordedHash, StringComparison.OrdinalIgnoreCase))
            {
                problems.Add(new RunProblem(RunProblemKind.HashMismatch, file, recordedHash, actual, null, null,
                    note: $"It is not {what}, so drift checks on resume compare against the wrong file. Restore it from history/, a backup or an archive."));
            }
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            problems.Add(new RunProblem(RunProblemKind.Unreadable, file, recordedHash, ex.Message, null, null, note: "Make it readable (its permissions, the disk), then run Test-Run again."));
        }
    }

    /// <summary>Passes on the lines up to a sequence number, and none after it.</summary>
    private sealed class UpToSequence : IJournalVisitor
    {
        private readonly IJournalVisitor _inner;
        private readonly long _last;

        public UpToSequence(IJournalVisitor inner, long last)
        {
            _inner = inner;
            _last = last;
        }

        public bool WantsTimestamp => _inner.WantsTimestamp;

        public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
        {
            if (line.Sequence <= _last)
            {
                _inner.Visit(in line, offset, raw);
            }
        }
    }
}
