using System;
using System.Collections.Generic;
using System.IO;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>
/// A run held in a database rather than a folder: what readers and the cmdlets need of it beyond
/// one attempt's <see cref="IRunStore"/>. Its <see cref="RunDirectory"/> is the run's local folder
/// on this machine (attempt logs, staging files, local copies of the stored config and script);
/// every record that counts is the database's. Implemented by a store assembly.
/// </summary>
internal interface IDatabaseRun
{
    /// <summary>The root as messages name it (a URI without its password).</summary>
    string RootDisplay { get; }

    /// <summary>The run's store for one attempt or one plan (<see cref="RunStores"/>).</summary>
    IRunStore OpenStore(Action<string>? crashPoint);

    /// <summary>The run's store for a worker joining its running attempt (Join-Run): <see cref="IRunStore.Workers"/> says so.</summary>
    IRunStore OpenWorkerStore();

    /// <summary>The state as stored (snapshot plus the events after it, or a rebuild); status not derived.</summary>
    RunState ReadStoredState();

    /// <summary>The snapshot row as stored, or null with why it cannot be used (Test-Run compares it with the log).</summary>
    RunState? TryReadSnapshot(out string? failure);

    /// <summary>Feeds the verified events after <paramref name="afterSequence"/> to <paramref name="visitor"/> (lengths continue from <paramref name="startLength"/>).</summary>
    JournalScanResult ScanTail(long afterSequence, long startLength, IJournalVisitor? visitor);

    /// <summary>Every verified event after <paramref name="afterSequence"/>, streamed in order; each event's offset is its seq − 1.</summary>
    IEnumerable<JournalEvent> ReadEvents(long afterSequence);

    /// <summary>The live holder of the run (its lease has not expired by the database's clock), or null.</summary>
    OwnerRecord? ReadHolder();

    StopRequest? ReadStopRequest();

    /// <summary>Stop-Run: every attempt working on the run sees it at its next boundary.</summary>
    void RequestStop(StopRequest request);

    /// <summary>
    /// A stored copy of the run's config, parameters or script by its SHA-256 (what the run's
    /// state records), or null when the database has none.
    /// </summary>
    byte[]? ReadStoredCopy(string sha256);

    /// <summary>Stores a copy by content (idempotent): the run's config, parameters or script as recorded.</summary>
    void WriteStoredCopy(byte[] content);

    /// <summary>The snapshot row's document as stored (run.json's bytes), or null when the run has none.</summary>
    byte[]? ReadSnapshotDocument();

    /// <summary>
    /// The event log as journal.jsonl would hold it (every row's line and a newline, in seq
    /// order), through the last event stored when called, streamed a page of rows at a time;
    /// <paramref name="length"/> is its size in bytes.
    /// </summary>
    Stream OpenJournal(out long length);

    /// <summary>The run's step outputs and copied artifacts (not the stored copies), by name, with the size and SHA-256 the store holds.</summary>
    IReadOnlyList<StoredBlob> ListBlobs();

    /// <summary>A stored copy by its SHA-256, streamed, or null when the database has none.</summary>
    Stream? OpenStoredCopy(string sha256, out long size);

    /// <summary>
    /// Deletes every record of the run in one transaction, after taking its ownership (RunLocked
    /// naming the live holder otherwise). Contents other runs share are kept.
    /// </summary>
    void Delete();
}
