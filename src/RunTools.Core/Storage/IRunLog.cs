using System;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>
/// The append side of one run's event log: the storage seam under <see cref="Engine.RunRecorder"/>.
/// The file store's implementation is <see cref="JournalWriter"/> (journal.jsonl); a database
/// store keys events by (run, seq). Nothing above this interface knows how events are laid out.
/// </summary>
internal interface IRunLog : IDisposable
{
    /// <summary>The sequence number of the last event appended (0 before the first).</summary>
    long LastSequence { get; }

    /// <summary>Where a reader of a snapshot taken now continues folding (recorded in run.json).</summary>
    JournalPosition Position { get; }

    /// <summary>The sequence number of the last event known to be durable.</summary>
    long DurableSequence { get; }

    /// <summary>The line the last <see cref="Append"/> wrote; valid until the next append. Callers serialize appends.</summary>
    ReadOnlySpan<byte> LastLine { get; }

    /// <summary>
    /// Appends one event, not yet durable: <see cref="MakeDurable"/> makes it so. Returns its
    /// sequence and a locator that <see cref="ReadEvent"/> takes. Appends must not overlap (the
    /// recorder serializes them); durability may be awaited from any thread meanwhile.
    /// </summary>
    (long Sequence, long Locator) Append(RunEvent runEvent, DateTimeOffset timestamp);

    /// <summary>
    /// Returns once every event up to <paramref name="sequence"/> is durable. Concurrent callers
    /// share one flush (group commit): a caller waits at most for the flush in progress and the
    /// one after it. A failed flush fails every later call (WriteFailed): what was not durable
    /// may be gone, so nothing after it may count as done.
    /// </summary>
    void MakeDurable(long sequence);

    /// <summary>The event at <paramref name="locator"/> (from <see cref="Append"/> or a scan), or null when it is not there.</summary>
    JournalEvent? ReadEvent(long locator);
}
