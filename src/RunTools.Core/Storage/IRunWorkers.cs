using System;
using System.Collections.Generic;
using RunTools.Core.Journal;

namespace RunTools.Core.Storage;

/// <summary>
/// Several processes draining one running attempt (Join-Run, docs/multi-machine.md): the owner
/// (the attempt holding the run) and its workers claim each item of an items-only step before
/// running it, so that exactly one runs it. Workers record their units' events beside the run's
/// log, never in it; the owner transcribes them into the log (one writer per event). Only a
/// database store has it; the folder store's <see cref="IRunStore.Workers"/> is null.
/// </summary>
internal interface IRunWorkers
{
    /// <summary>True for a joined worker's store, false for the owner's.</summary>
    bool IsWorker { get; }

    /// <summary>A worker's id: the <c>worker</c> member of its events once the owner transcribed them. Null for the owner.</summary>
    Guid? WorkerId { get; }

    /// <summary>
    /// The attempt's claims mode is on once a worker was admitted: every item of an items-only
    /// step is claimed before it runs. Claims by this process are held under its own id (the
    /// owner's lease session, or the worker's id).
    /// </summary>
    /// <returns>True when the claim is this process's now (new, or already its own).</returns>
    bool TryClaim(string step, string key, int attempt);

    // ---- the owner ----------------------------------------------------------------------------

    /// <summary>
    /// The run's live workers: waiting to be admitted, and admitted. Registrations are the running
    /// attempt's (the owner removes them when an attempt ends or after a crash), so a worker that
    /// registered just before an attempt began is admitted into it.
    /// </summary>
    (int Waiting, int Admitted) Census();

    /// <summary>
    /// Publishes <paramref name="running"/> (the owner's items in flight, by step and key) as the
    /// owner's claims, then admits the waiting workers into <paramref name="attempt"/>. The caller
    /// made its log durable first, so an admitted worker reading it sees every completed item.
    /// </summary>
    void Admit(int attempt, IReadOnlyCollection<(string Step, string Key)> running);

    /// <summary>Workers' recorded events not yet transcribed, in each worker's order.</summary>
    IReadOnlyList<WorkerEvent> ReadWorkerEvents();

    /// <summary>Removes worker events once their transcription is durable in the run's log.</summary>
    void DeleteWorkerEvents(IReadOnlyList<WorkerEvent> transcribed);

    /// <summary>
    /// Of <paramref name="keys"/> of <paramref name="step"/>, those claimed by a worker whose
    /// registration expired (it died, or lost the database): the owner takes each claim over (a
    /// late event of that worker is then refused) and returns its key.
    /// </summary>
    IReadOnlyList<string> TakeOverAbandoned(string step, IReadOnlyCollection<string> keys, int attempt);

    /// <summary>
    /// Ends the attempt's claims: every claim and worker registration of the run is removed (the
    /// caller transcribed what they recorded first). A worker still running sees the attempt end
    /// and stops; an event it records afterwards is refused.
    /// </summary>
    void Clear();

    // ---- a worker -----------------------------------------------------------------------------

    /// <summary>The run's events after <paramref name="afterSequence"/>, fed to <paramref name="visitor"/> in order (locators are seqs).</summary>
    JournalScanResult FollowLog(long afterSequence, IJournalVisitor visitor);
}

/// <summary>One event a worker recorded: its own journal line (its own seq), to be transcribed into the run's log.</summary>
internal sealed record WorkerEvent(Guid Worker, long WorkerSequence, string Step, string Key, byte[] Line);
