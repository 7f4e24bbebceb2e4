using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text.Json;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// Items of the running step, keyed. Several may run at once: one thread decides and claims each
/// key (<see cref="ClaimItem"/>: the pipeline's), any thread starts, completes or fails a claimed
/// one. Every intent (item_started) is durable before the item's work begins, and concurrent
/// intents share one flush; a completion is made durable with the next intent or within
/// <see cref="RunRecorder.DeferredFlushDelay"/>, so one flush per item is enough when they run one by one.
/// </summary>
public sealed partial class RunAttempt
{
    // Guarded by ClaimGate.
    private readonly Dictionary<string, RunningItem> _running = new(StringComparer.Ordinal);

    /// <summary>
    /// Guards the running set; the recorder holds it while it folds an event into the ledger, but
    /// not while it writes one. A claim decides under it alone, so the pipeline thread never waits
    /// for a worker's append. Taken inside <see cref="RunRecorder.SyncRoot"/> when both are needed.
    /// </summary>
    private object ClaimGate => Ledger.Gate;

    /// <summary>The item running in this attempt when exactly one is; null when none or several are.</summary>
    public string? ActiveItem
    {
        get
        {
            lock (ClaimGate)
            {
                return _running.Count == 1 ? _running.Keys.First() : null;
            }
        }
    }

    /// <summary>The keys claimed or running in this attempt.</summary>
    public IReadOnlyList<string> RunningItems()
    {
        lock (ClaimGate)
        {
            return _running.Keys.ToList();
        }
    }

    /// <summary>Each claimed or running item: whether it started, and on which thread.</summary>
    private List<(string Key, bool Started, int Thread)> RunningItemStates()
    {
        lock (ClaimGate)
        {
            return _running.Select(p => (p.Key, p.Value.Started != 0, p.Value.Thread)).ToList();
        }
    }

    /// <summary>
    /// Decides an item: Replay (done earlier), Skip (in doubt, resolved as skip) or Run, in which
    /// case the intent is on disk before this returns. <paramref name="decideInDoubt"/> overrides
    /// the attempt's policy for an item in doubt.
    /// </summary>
    public ItemAction BeginItem(string step, string key, Func<ItemRef, InDoubtAction>? decideInDoubt = null) => BeginItem(step, key, decideInDoubt, 1);

    /// <summary>As <see cref="BeginItem(string, string, Func{ItemRef, InDoubtAction})"/>, for try <paramref name="tryNumber"/> of a retried item.</summary>
    public ItemAction BeginItem(string step, string key, Func<ItemRef, InDoubtAction>? decideInDoubt, int tryNumber)
    {
        var action = ClaimItem(step, key, decideInDoubt);
        if (action == ItemAction.Run)
        {
            StartItem(step, key, tryNumber);
        }

        return action;
    }

    /// <summary>
    /// Decides an item as <see cref="BeginItem"/> does, but for Run only reserves the key: nothing
    /// of its work is on disk until <see cref="StartItem"/> (from any thread). A claimed item that
    /// never starts is released with <see cref="ReleaseItem"/> and stays pending.
    /// </summary>
    public ItemAction ClaimItem(string step, string key, Func<ItemRef, InDoubtAction>? decideInDoubt = null)
    {
        EnsureUsable();
        ValidateKey(key);
        if (!string.Equals(_activeStep, step, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"Item '{key}' names step '{step}', which is not the running step ({_activeStep ?? "none"}). Begin the step first.", key);
        }

        string? previous;
        if (IsWorker)
        {
            FollowSometimes();
        }
        else
        {
            PollWorkers();
        }

        lock (ClaimGate)
        {
            ThrowIfRunning(step, key);
            var ledger = Ledger.Find(step);
            if (ledger is not null && ledger.Completed.ContainsKey(key))
            {
                return ItemAction.Replay;
            }

            if (ledger is not null && ledger.Skipped.Contains(key))
            {
                return ItemAction.Skip;
            }
        }

        // A stop boundary before new work (not before a replay, which does none).
        ThrowIfStopRequested();
        if (ClaimsItems && !ClaimHere(step, key))
        {
            return ItemAction.Elsewhere;
        }

        lock (ClaimGate)
        {
            ThrowIfRunning(step, key);
            var ledger = Ledger.Find(step);

            previous = ledger is not null && ledger.Failed.Contains(key) ? "failed" : null;
            if (ledger is null || !ledger.Open.TryGetValue(key, out int startedIn))
            {
                _running[key] = new RunningItem(previous);
                return ItemAction.Run;
            }

            // Started in this attempt by a worker that died: in doubt, decided below.
            if (startedIn == Attempt && !_takenOver.Remove(key))
            {
                throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                    $"Item '{key}' of step '{step}' was already started in this attempt and not finished.", key);
            }
        }

        // In doubt: decided outside the lock, since the decision may run the caller's code.
        var itemRef = new ItemRef { Step = step, Key = key };
        var action = decideInDoubt?.Invoke(itemRef) ?? _options.InDoubt;
        if (action == InDoubtAction.Fail)
        {
            throw new InDoubtItemsException(_run.RunId, new[] { itemRef });
        }

        bool skip = action == InDoubtAction.Skip;
        Record(RunEvent.ItemResolved(step, key, Attempt, skip), skip ? Durability.Durable : Durability.Lazy);
        if (skip)
        {
            Log($"Item '{key}' of step '{step}' was in doubt and is skipped (assumed done).");
            return ItemAction.Skip;
        }

        Log($"Item '{key}' of step '{step}' was in doubt and is retried.");
        lock (ClaimGate)
        {
            ThrowIfRunning(step, key);
            _running[key] = new RunningItem("in_doubt");
        }

        return ItemAction.Run;
    }

    /// <summary>Journals a claimed item's intent and returns once it is durable (sharing the flush with concurrent starts). Any thread.</summary>
    public void StartItem(string step, string key, int tryNumber = 1)
    {
        long sequence;
        lock (_recorder.SyncRoot)
        {
            EnsureUsable();
            RunningItem item;
            lock (ClaimGate)
            {
                item = Running(step, key, started: false);
            }

            sequence = _recorder.Append(RunEvent.ItemStarted(step, key, Attempt, item.Previous, tryNumber)).Sequence;
            lock (ClaimGate)
            {
                item.Started = Stopwatch.GetTimestamp();
                item.Thread = Environment.CurrentManagedThreadId;
            }
        }

        ClearWriteFailure(step, key);
        _recorder.WaitDurable(sequence);
    }

    /// <summary>Gives up a claim that never started: the item stays pending, not in doubt.</summary>
    public void ReleaseItem(string key)
    {
        lock (_recorder.SyncRoot)
        {
            lock (ClaimGate)
            {
                if (_running.TryGetValue(key, out var item) && item.Started == 0)
                {
                    _running.Remove(key);
                }
            }
        }
    }

    /// <summary>Records the item as completed; from here on it is never run again in this run. Any thread.</summary>
    public void CompleteItem(string step, string key, byte[]? output, string? outputFormat = null)
    {
        ThrowIfUnitWriteFailed(step, key);
        lock (_recorder.SyncRoot)
        {
            EnsureUsable();
            RunningItem item;
            lock (ClaimGate)
            {
                item = Running(step, key, started: true);
            }

            // Recorded before the key leaves the running set, so a claim sees it running or done.
            _recorder.Append(RunEvent.ItemCompleted(step, key, Attempt, item.ElapsedMilliseconds, output, outputFormat));
            lock (ClaimGate)
            {
                _running.Remove(key);
            }
        }

        _recorder.FlushSoon();
        _recorder.MaybeSnapshot();
    }

    /// <summary>Records the item as failed (durable); a resume runs it again. Any thread.</summary>
    public void FailItem(string step, string key, string error) => FailItem(step, key, new UnitFailure(error));

    /// <summary>
    /// Records one failed try of the item (durable). With <see cref="UnitFailure.RetryIn"/> set, the
    /// caller begins it again after that wait (a crash meanwhile leaves it failed: a resume retries it).
    /// </summary>
    public void FailItem(string step, string key, UnitFailure failure)
    {
        long sequence;
        lock (_recorder.SyncRoot)
        {
            EnsureUsable();
            RunningItem item;
            lock (ClaimGate)
            {
                item = Running(step, key, started: true);
            }

            sequence = _recorder.Append(RunEvent.ItemFailed(step, key, Attempt, item.ElapsedMilliseconds, failure)).Sequence;
            lock (ClaimGate)
            {
                _running.Remove(key);
            }
        }

        Log($"Item '{key}' of step '{step}' failed{TryText(failure)}: {failure.Error}");
        _recorder.WaitDurable(sequence);
        _recorder.MaybeSnapshot();
    }

    /// <summary>The output recorded for a completed item, or null when it recorded none.</summary>
    public byte[]? ReadItemOutput(string step, string key)
    {
        ItemLedger.CompletedItem done;
        lock (_recorder.SyncRoot)
        {
            if (!Ledger.For(step).Completed.TryGetValue(key, out done) || !done.HasOutput)
            {
                return null;
            }
        }

        var completion = _recorder.ReadEvent(done.Locator);
        if (completion is null)
        {
            return null;
        }

        using var document = JsonDocument.Parse(completion.RawBytes.ToArray());
        return document.RootElement.TryGetProperty("output", out var output) && output.ValueKind == JsonValueKind.String
            ? output.GetBytesFromBase64()
            : null;
    }

    /// <summary>Whether an item is already done (completed or skipped) in this run.</summary>
    public bool IsItemDone(string step, string key)
    {
        lock (_recorder.SyncRoot)
        {
            var ledger = Ledger.For(step);
            return ledger.Completed.ContainsKey(key) || ledger.Skipped.Contains(key);
        }
    }

    /// <summary>Drops a running item from this attempt without a record: interrupted mid-work, it stays open, in doubt.</summary>
    private void ForgetItem(string key)
    {
        lock (ClaimGate)
        {
            _running.Remove(key);
        }
    }

    private RunningItem Running(string step, string key, bool started)
    {
        if (!string.Equals(_activeStep, step, StringComparison.Ordinal) || !_running.TryGetValue(key, out var item) || (item.Started != 0) != started)
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                started ? $"Item '{key}' of step '{step}' is not running." : $"Item '{key}' of step '{step}' was not claimed, or has started already.", key);
        }

        return item;
    }

    private void ThrowIfRunning(string step, string key)
    {
        if (_running.ContainsKey(key))
        {
            throw new RunToolsException(ErrorIds.StepNested, RunToolsErrorCategory.InvalidOperation,
                $"Item '{key}' of step '{step}' is already running in this attempt. Give each item a unique key.", key);
        }
    }

    /// <summary>
    /// Resume-Run -Failed Skip, at attempt start: every item whose latest outcome is a failure is
    /// journaled as skipped (who decided, and why) and is not run again in this run.
    /// </summary>
    private void SkipFailedItems()
    {
        var failed = Ledger.Steps.SelectMany(s => s.Value.Failed.Select(key => (Step: s.Key, Key: key)))
            .OrderBy(i => i.Step, StringComparer.Ordinal).ThenBy(i => i.Key, StringComparer.Ordinal).ToList();
        string by = _options.DecidedBy ?? "unknown";
        foreach (var (step, key) in failed)
        {
            Record(RunEvent.FailedItemSkipped(step, key, Attempt, by, "Resume-Run -Failed Skip"));
            Warn($"Item '{key}' of step '{step}' failed earlier and is set aside (-Failed Skip, decided by {by}): it is not run again in this run.");
        }
    }

    private static void ValidateKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Length > 1024)
        {
            throw new RunToolsException(ErrorIds.InvalidItemKey, RunToolsErrorCategory.InvalidArgument,
                $"Item key '{key}' is not valid: a key is 1 to 1024 characters. Derive keys from a stable, unique property of each item.", key);
        }
    }

    private sealed class RunningItem
    {
        public RunningItem(string? previous) => Previous = previous;

        /// <summary>Why it runs again ("failed", "in_doubt"), recorded in item_started.</summary>
        public string? Previous { get; }

        /// <summary>Stopwatch timestamp of item_started; 0 while only claimed.</summary>
        public long Started { get; set; }

        /// <summary>The thread that started it: only that thread's failure of the attempt knows the item failed.</summary>
        public int Thread { get; set; }

        public long ElapsedMilliseconds => (Stopwatch.GetTimestamp() - Started) * 1000 / Stopwatch.Frequency;
    }
}
