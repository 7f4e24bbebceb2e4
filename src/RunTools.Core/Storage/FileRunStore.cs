using System;
using System.IO;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>
/// The embedded default store: a run is a folder (docs/run-format.md). This is where the
/// recorder's log and snapshot are bound to journal.jsonl and run.json.
/// </summary>
internal static class FileRunStore
{
    /// <summary>A recorder for a run folder whose journal is valid up to <paramref name="scan"/>'s end.</summary>
    public static RunRecorder OpenRecorder(string runPath, JournalScanResult scan, RunState state, ItemLedger ledger, TimeSpan snapshotInterval, Action<string>? crashPoint = null) =>
        new(new JournalWriter(Path.Combine(runPath, RunFormat.JournalFile), scan.ValidLength, scan.LastSequence),
            state, ledger, SnapshotWriter(Path.Combine(runPath, RunFormat.StateFile), crashPoint), snapshotInterval, crashPoint: crashPoint);

    /// <summary>A recorder for a new run being assembled in <paramref name="folder"/> (an empty journal).</summary>
    public static RunRecorder CreateRecorder(string folder, string runId, Func<DateTimeOffset>? clock = null) =>
        new(new JournalWriter(Path.Combine(folder, RunFormat.JournalFile), 0, 0),
            new RunState { RunId = runId }, new ItemLedger(), SnapshotWriter(Path.Combine(folder, RunFormat.StateFile), null), TimeSpan.MaxValue, clock);

    private static Action<RunState, byte[]> SnapshotWriter(string statePath, Action<string>? crashPoint) =>
        (_, bytes) => DurableFile.WriteAtomic(statePath, bytes, crashPoint is null ? null : () => crashPoint("snapshot_unrenamed"));
}
