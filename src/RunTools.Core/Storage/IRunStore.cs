using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>
/// One run's storage, the only way the engine (<see cref="RunAttempt"/>, <see cref="ResumePlanner"/>)
/// reaches a run's journal, snapshot, ownership, recorded files and stop requests. The folder store
/// (<see cref="FileRunStore"/>) keeps docs/run-format.md; a database store keys the same records by
/// run. <see cref="RunStores"/> picks the store, so nothing above this knows which one it talks to.
/// Not covered (still the run folder, see docs/run-format.md "Storage seam"): the attempt logs,
/// the stored config and script, and the files a step declares with -Output.
/// </summary>
internal interface IRunStore
{
    string RunId { get; }

    /// <summary>Where the run lives, for messages only (a folder, a database and run id).</summary>
    string Location { get; }

    /// <summary>
    /// Takes ownership of the run for one attempt. Throws <see cref="RunLockedException"/> naming
    /// the holder when a live owner has it; store-specific errors (RunNotFound, RunReadOnly, ...)
    /// otherwise. Dispose the handle to release it.
    /// </summary>
    IRunOwnership Acquire(DateTimeOffset now);

    /// <summary>
    /// Removes what writes a crash interrupted left behind (temp files, unfinished blobs), so that
    /// nothing a reader could mistake for recorded data survives into the next attempt. Owner only.
    /// </summary>
    void RemoveLeftovers();

    /// <summary>The stored events' approximate size in bytes as journal lines: sizes the item ledger before a scan.</summary>
    long LogSizeHint { get; }

    /// <summary>
    /// Feeds every verified event, in order, to <paramref name="visitor"/>. The result's positions
    /// are the store's own locators; a store that cannot tear a write reports no torn tail.
    /// </summary>
    JournalScanResult ScanLog(IJournalVisitor? visitor);

    /// <summary>
    /// Opens the log for appending after <paramref name="scan"/>'s last verified event. Owner only.
    /// A torn tail (a crash mid-append) is cut off first; <paramref name="keptTail"/> says where its
    /// bytes were kept (recorded in journal_repaired), null when there was none.
    /// </summary>
    IRunLog OpenLog(JournalScanResult scan, out string? keptTail);

    IRunSnapshot Snapshot { get; }

    IRunBlobs Blobs { get; }

    /// <summary>
    /// Refuses (RunDamaged) records that name another run: <paramref name="fromLog"/> says whether
    /// the id came from the log or the snapshot. A store whose records are keyed by run never refuses.
    /// </summary>
    void EnsureOwnRunId(string recordedId, bool fromLog);

    /// <summary>The pending stop request (Stop-Run), or null. Read at every unit boundary, so it must be cheap when there is none.</summary>
    StopRequest? ReadStopRequest();

    /// <summary>Withdraws the stop request once it was honoured or found left over. Owner only.</summary>
    void ClearStopRequest();

    /// <summary>Workers joining the running attempt (Join-Run), or null when the store has none (a folder).</summary>
    IRunWorkers? Workers { get; }
}

/// <summary>
/// Ownership of a run for one attempt. An OS lock is released by the OS when the process dies; a
/// lease row expires unless heartbeated. Either way only one holder at a time, and a reader can
/// tell whether the holder is alive (that is what makes a run Interrupted).
/// </summary>
internal interface IRunOwnership : IDisposable
{
    /// <summary>Who holds the run (recorded in attempt_started; named to anyone refused).</summary>
    OwnerRecord Holder { get; }

    /// <summary>
    /// Throws (NotOwner) when ownership was lost meanwhile, so that a paused or partitioned owner
    /// never records work another owner may be doing now. An OS lock cannot be lost while the
    /// process lives; a lease can expire.
    /// </summary>
    void ThrowIfLost();
}

/// <summary>
/// The run's state snapshot: a cache of the log folded up to a position, so that readers need not
/// fold the whole log. Losing it loses nothing (it is rebuilt from the log).
/// </summary>
internal interface IRunSnapshot
{
    /// <summary>Whether a non-empty snapshot is stored (a snapshot without any log means the log was lost).</summary>
    bool Exists { get; }

    /// <summary>
    /// Replaces the snapshot atomically: a reader sees the old one or the new one. The state comes
    /// too, so a database store can keep queryable columns (status, name) beside the document.
    /// </summary>
    void Replace(RunState state, byte[] serialized);

    /// <summary>The state as a reader would get it without folding the whole log (snapshot plus tail, or a rebuild); RunDamaged when neither is readable.</summary>
    RunState ReadStored();
}

/// <summary>
/// Step outputs and copied artifacts: immutable byte streams, each recorded in the journal by a
/// name the store chose (a run-relative path in the folder store), its size and SHA-256. A write is
/// durable and complete under its name before it returns, or absent: never half-visible. Earlier
/// blobs are never overwritten; a second write for the same unit gets a new name.
/// </summary>
internal interface IRunBlobs
{
    /// <summary>Stores a step's output from <paramref name="content"/>, hashing while streaming. <paramref name="format"/> is the output's serialization (clixml, json), null when unknown. WriteFailed when it could not be stored.</summary>
    StoredBlob WriteStepOutput(string step, int attempt, string? format, Stream content);

    /// <summary>Stores a copy of an artifact named <paramref name="name"/> ('/'-separated, validated). Safe to call from concurrent units: each gets its own name. WriteFailed when it could not be stored.</summary>
    StoredBlob WriteArtifact(string name, int attempt, Stream content);

    /// <summary>A local file a running step streams its output to (output of any volume never sits in memory); <see cref="TakeStagingFile"/> stores it afterwards. An abandoned one is removed by <see cref="IRunStore.RemoveLeftovers"/>.</summary>
    string NewStagingFile(string step);

    /// <summary>As <see cref="WriteStepOutput"/>, the content being <paramref name="stagingFile"/> (from <see cref="NewStagingFile"/>), which is removed once stored.</summary>
    StoredBlob TakeStagingFile(string step, int attempt, string? format, string stagingFile);

    /// <summary>Reads a stored blob; FileNotFoundException when it is not there.</summary>
    Stream OpenRead(string name);

    /// <summary>
    /// A local file holding the blob, for hosts that can only read by path (Import-Clixml replays a
    /// step's output from it). The folder store returns its own file; a remote store a local copy.
    /// </summary>
    string LocalFile(string name);

    bool Exists(string name);

    /// <summary>
    /// Checks recorded files (presence, size, SHA-256), on all cores; results keep the input order.
    /// Names that are absolute paths are references to files outside the store, checked where they are.
    /// </summary>
    List<RunProblem> Verify(IReadOnlyList<RecordedFile> files, Action<long>? bytesDone = null, CancellationToken cancellation = default);
}

/// <summary>A blob as the journal records it.</summary>
internal readonly struct StoredBlob
{
    public StoredBlob(string name, long size, string sha256)
    {
        Name = name;
        Size = size;
        Sha256 = sha256;
    }

    /// <summary>The name the journal records (the path member of step outputs and artifacts).</summary>
    public string Name { get; }

    public long Size { get; }

    public string Sha256 { get; }
}
