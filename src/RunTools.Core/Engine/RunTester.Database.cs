using System;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>Test-Run of a run held in a database: the same checks on its rows and blobs.</summary>
internal static partial class RunTester
{
    /// <summary>
    /// A run held in a database: its event rows (checksums, consecutive seqs), its snapshot row
    /// against them, completion, the stored copies of its config and script, and every blob
    /// re-read and re-hashed from the database. Rows cannot tear and are keyed by run, so there
    /// is no torn tail and no foreign run id to look for. Problems name the tables' journal and
    /// run.json counterparts, as an exported archive would hold them.
    /// </summary>
    private static RunTestResult TestInDatabase(RunDirectory run, IDatabaseRun database, Action<long, long>? bytesHashed, CancellationToken cancellation)
    {
        var problems = new List<RunProblem>();
        var store = database.OpenStore(null);
        var snapshot = database.TryReadSnapshot(out string? snapshotFailure);
        ResumePlan plan;
        try
        {
            plan = ResumePlanner.Plan(store, verifyArtifacts: false, checkRunId: false).Plan;
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.RunDamaged)
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptJournal, RunFormat.JournalFile, "verified events", "none", null, null, note: ex.Message));
            return new RunTestResult(run, null, problems, 0, 0);
        }

        if (snapshotFailure is not null && snapshotFailure != "missing")
        {
            problems.Add(new RunProblem(RunProblemKind.CorruptState, RunFormat.StateFile, "a snapshot readable as JSON", snapshotFailure, null, null,
                note: "Readers rebuild the state from the events; the next attempt writes a new snapshot."));
        }

        var state = plan.State;
        var journal = plan.Journal;
        CheckJournal(journal, exists: true, owned: true, problems);
        if (snapshot is not null && journal.ValidLines > 0)
        {
            CheckSnapshot(snapshot, state, journal, (length, sequence, reducer) => database.ScanTail(sequence, length, reducer), problems);
        }

        CheckCompletion(plan, problems);
        CheckRepeats(plan, problems);
        CheckStoredCopyInDatabase(database, RunFormat.ConfigFile, state.Config.Hash, "the config the run recorded", problems);
        CheckStoredCopyInDatabase(database, RunFormat.ScriptFile, state.Script.Hash, "the script the run recorded", problems);
        if (state.ParametersHash is { Length: > 0 } parametersHash)
        {
            CheckStoredCopyInDatabase(database, RunFormat.ParametersFile, parametersHash, "the parameters the run saved", problems);
        }

        var files = ResumePlanner.RecordedFiles(state, plan.Ledger, unitsOnly: false);
        long total = files.Sum(f => f.Size);
        long done = 0;
        Action<long>? onFile = bytesHashed is null ? null : size => bytesHashed(Interlocked.Add(ref done, size), total);
        problems.AddRange(store.Blobs.Verify(files, onFile, cancellation));

        state.Status = run.DeriveStatus(state.Status);
        return new RunTestResult(run, state, problems, files.Count, total);
    }

    private static void CheckStoredCopyInDatabase(IDatabaseRun database, string file, string recordedHash, string what, List<RunProblem> problems)
    {
        if (recordedHash.Length == 0)
        {
            return;
        }

        var content = database.ReadStoredCopy(recordedHash);
        if (content is null)
        {
            problems.Add(new RunProblem(RunProblemKind.MissingFile, file, $"a stored copy with SHA-256 {recordedHash}", "none in the database", null, null,
                note: $"It is {what}: Resume-Run on another machine cannot fetch it. Resume the run once with -ScriptPath (and -Config) from a machine that has them; they are stored again."));
        }
        else if (!string.Equals(Integrity.Sha256Hex(content), recordedHash, StringComparison.OrdinalIgnoreCase))
        {
            problems.Add(new RunProblem(RunProblemKind.HashMismatch, file, recordedHash, Integrity.Sha256Hex(content), null, null,
                note: $"The database's copy of {what} is damaged; resume the run with -ScriptPath (and -Config) to store it again."));
        }
    }
}
