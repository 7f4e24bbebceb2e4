using System;
using System.Collections.Generic;
using RunTools.Core.Journal;

namespace RunTools.Core.Engine;

/// <summary>
/// Per step, which item keys are completed (with the locator of their completion event, so the
/// recorded output is read only when asked for), skipped, failed, or open. Built by one scan of
/// the journal at resume and kept current by <see cref="RunRecorder"/> with the same rules; the
/// run directory itself holds no file per item.
/// </summary>
internal sealed class ItemLedger : IJournalVisitor
{
    private readonly Dictionary<string, StepLedger> _steps = new(StringComparer.Ordinal);
    private int _capacityHint;

    /// <summary>An estimate of completed items (from the journal size) spares the first step's table its regrowths.</summary>
    public ItemLedger(int capacityHint = 0) => _capacityHint = capacityHint;

    public bool WantsTimestamp => false;

    public IEnumerable<KeyValuePair<string, StepLedger>> Steps => _steps;

    /// <summary>
    /// Held (inside the recorder's SyncRoot) while a live attempt folds an event into this ledger, and
    /// while a step's ledger is created: a reader holding it sees a consistent ledger without waiting
    /// for an append's write, which runs under SyncRoot alone. A scan, with one thread, never takes it.
    /// </summary>
    public object Gate { get; } = new();

    public StepLedger For(string step)
    {
        if (!_steps.TryGetValue(step, out var ledger))
        {
            ledger = new StepLedger(_capacityHint);
            _capacityHint = 0;
            lock (Gate)
            {
                _steps.Add(step, ledger);
            }
        }

        return ledger;
    }

    /// <summary>The step's ledger, or null when nothing of it was recorded; unlike <see cref="For"/> it never adds one (for readers holding only <see cref="Gate"/>).</summary>
    public StepLedger? Find(string step) => _steps.TryGetValue(step, out var ledger) ? ledger : null;

    /// <summary>
    /// Steps whose latest step_started was never ended (completed, failed, invalidated or resolved
    /// as skip), with the attempt that started them. Items-only steps are not here: their work is
    /// all in their items, whose doubt is kept per key.
    /// </summary>
    public Dictionary<string, int> OpenSteps { get; } = new(StringComparer.Ordinal);

    /// <summary>Whether any item of <paramref name="step"/> was ever started, completed, failed or skipped.</summary>
    public bool HasItems(string step) =>
        _steps.TryGetValue(step, out var ledger)
        && (ledger.Completed.Count > 0 || ledger.Open.Count > 0 || ledger.Failed.Count > 0 || ledger.Skipped.Count > 0);

    // The highest worker_seq of each worker's events transcribed into the journal, by worker id.
    private readonly Dictionary<string, long> _transcribedUpTo = new(StringComparer.Ordinal);

    /// <summary>Whether the journal already holds the worker's event <paramref name="workerSequence"/> (a worker's events are transcribed in its order).</summary>
    public bool IsTranscribed(string worker, long workerSequence) =>
        _transcribedUpTo.TryGetValue(worker, out long upTo) && workerSequence <= upTo;

    /// <summary>
    /// Events the journal holds twice: a worker event transcribed again, or an item started again
    /// in the attempt that has it running with no failure, retry or resolution between. A repeated
    /// transcription changes nothing here (an item it would reopen stays as it was); Test-Run
    /// reports them. Empty for any journal RunTools wrote as intended.
    /// </summary>
    public List<RepeatedEvent> Repeats { get; } = new();

    public void Visit(in ParsedLine line, long locator, ReadOnlySpan<byte> raw)
    {
        if (line.Worker is { } worker && line.WorkerSequence > 0 && !NoteTranscribed(worker, in line))
        {
            return;
        }

        if (line.Key is null)
        {
            VisitStep(in line);
            return;
        }

        switch (line.Type)
        {
            case JournalEventTypes.ItemStarted:
            {
                var ledger = For(line.Step ?? string.Empty);
                if (line.Previous is null && ledger.Open.TryGetValue(line.Key, out int startedIn) && startedIn == (line.Attempt ?? 0))
                {
                    Repeats.Add(new RepeatedEvent(line.Sequence, line.Type, line.Step, line.Key, $"item '{line.Key}' is already running in attempt {startedIn}"));
                }

                ledger.Open[line.Key] = line.Attempt ?? 0;
                ledger.Failed.Remove(line.Key);
                break;
            }

            case JournalEventTypes.ItemCompleted:
            {
                var ledger = For(line.Step ?? string.Empty);
                ledger.Open.Remove(line.Key);
                ledger.Completed[line.Key] = new CompletedItem(locator, line.Attempt ?? 0, line.HasOutput);
                break;
            }

            case JournalEventTypes.ItemFailed:
            {
                var ledger = For(line.Step ?? string.Empty);
                ledger.Open.Remove(line.Key);
                ledger.Failed.Add(line.Key);
                break;
            }

            case JournalEventTypes.ItemResolved:
                // Only "skip" changes the ledger; "retry" is followed by a new item_started.
                if (line.ResolvedAsSkip)
                {
                    var ledger = For(line.Step ?? string.Empty);
                    ledger.Open.Remove(line.Key);
                    ledger.Failed.Remove(line.Key);
                    ledger.Skipped.Add(line.Key);
                }

                break;

            case JournalEventTypes.ItemInvalidated:
            {
                var ledger = For(line.Step ?? string.Empty);
                ledger.Completed.Remove(line.Key);
                ledger.Skipped.Remove(line.Key);
                break;
            }
        }
    }

    /// <summary>Raises the worker's watermark; false (and a repeat noted) for an event at or below it, which changes nothing.</summary>
    private bool NoteTranscribed(string worker, in ParsedLine line)
    {
        if (_transcribedUpTo.TryGetValue(worker, out long upTo) && line.WorkerSequence <= upTo)
        {
            Repeats.Add(new RepeatedEvent(line.Sequence, line.Type, line.Step, line.Key, $"worker {worker}'s event {line.WorkerSequence} was transcribed before"));
            return false;
        }

        _transcribedUpTo[worker] = line.WorkerSequence;
        return true;
    }

    private void VisitStep(in ParsedLine line)
    {
        if (line.Step is null)
        {
            return;
        }

        switch (line.Type)
        {
            case JournalEventTypes.StepStarted:
                if (line.ItemsOnly)
                {
                    OpenSteps.Remove(line.Step);
                }
                else
                {
                    OpenSteps[line.Step] = line.Attempt ?? 0;
                }

                break;

            case JournalEventTypes.StepCompleted:
            case JournalEventTypes.StepFailed:
            case JournalEventTypes.StepInvalidated:
                OpenSteps.Remove(line.Step);
                break;

            case JournalEventTypes.StepResolved:
                // "retry" is followed by a new step_started, which reopens the step in its attempt.
                if (line.ResolvedAsSkip)
                {
                    OpenSteps.Remove(line.Step);
                }

                break;
        }
    }

    internal sealed class StepLedger
    {
        public StepLedger(int capacity = 0) => Completed = new Dictionary<string, CompletedItem>(capacity, StringComparer.Ordinal);

        public Dictionary<string, CompletedItem> Completed { get; }

        public HashSet<string> Skipped { get; } = new(StringComparer.Ordinal);

        public HashSet<string> Failed { get; } = new(StringComparer.Ordinal);

        /// <summary>Started, not finished: the attempt that started each. From an earlier attempt, they are in doubt.</summary>
        public Dictionary<string, int> Open { get; } = new(StringComparer.Ordinal);
    }

    internal readonly struct CompletedItem
    {
        public CompletedItem(long locator, int attempt, bool hasOutput)
        {
            Locator = locator;
            Attempt = attempt;
            HasOutput = hasOutput;
        }

        /// <summary>Whether the completion recorded an output: a replay of an item without one reads nothing.</summary>
        public bool HasOutput { get; }

        /// <summary>Where the run log finds the completion event again (<see cref="Storage.IRunLog.ReadEvent"/>).</summary>
        public long Locator { get; }

        public int Attempt { get; }
    }
}

/// <summary>An event the journal holds twice (<see cref="ItemLedger.Repeats"/>): where, and why it is a repeat.</summary>
internal sealed record RepeatedEvent(long Sequence, string Type, string? Step, string? Key, string Why);

/// <summary>Feeds one scan to several visitors.</summary>
internal sealed class CompositeVisitor : IJournalVisitor
{
    private readonly IJournalVisitor[] _visitors;

    public CompositeVisitor(params IJournalVisitor[] visitors) => _visitors = visitors;

    public bool WantsTimestamp => Array.Exists(_visitors, v => v.WantsTimestamp);

    public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
    {
        foreach (var visitor in _visitors)
        {
            visitor.Visit(in line, offset, raw);
        }
    }
}
