using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>
/// Several processes on one attempt (Join-Run, docs/multi-machine.md). The owner admits workers
/// at an item boundary; from then on every item of an items-only step is claimed (one process
/// runs it) before it runs. A worker records its items' events beside the run's log and the owner
/// transcribes them into it, so each event still has one writer. A worker follows the run's log
/// to see the owner's steps and everyone's items; an item held elsewhere is awaited at the end of
/// its Invoke-RunItem call (<see cref="AwaitItemsElsewhere"/>), where the owner also takes over
/// the items of workers that died and applies the run's in-doubt policy to them. This file holds
/// what both sides share and the owner's side; the worker's own is RunAttempt.Worker.cs.
/// </summary>
public sealed partial class RunAttempt
{
    /// <summary>How often the owner looks for workers waiting to join (a query, not one per item).</summary>
    private static readonly TimeSpan s_workerPoll = TimeSpan.FromMilliseconds(250);

    /// <summary>How long a wait for items elsewhere, or for the owner's step, sleeps between looks.</summary>
    private static readonly TimeSpan s_elsewherePoll = TimeSpan.FromMilliseconds(50);

    private readonly IRunWorkers? _workers;
    private readonly Stopwatch _sincePoll = new();
    private readonly object _transcribeLock = new();

    // Keys the owner took over from a worker that died after starting them: in doubt in this attempt. Guarded by ClaimGate.
    private readonly HashSet<string> _takenOver = new(StringComparer.Ordinal);

    // The last seq of the run's log a worker has folded.
    private long _followed;
    private volatile bool _claimsOn;
    private Timer? _transcriber;
    private readonly object _transcriberTick = new();
    private RunToolsException? _transcriberFault;

    /// <summary>True when this process joined the attempt as a worker (Join-Run) rather than owning it.</summary>
    public bool IsWorker { get; }

    /// <summary>How a worker's part ended (Completed: its script ended; Failed; Stopped), null while it works or for an owner.</summary>
    public RunStatus? WorkerEnd { get; private set; }

    /// <summary>Why a worker's part failed or stopped.</summary>
    public string? WorkerEndReason { get; private set; }

    // The running step only runs items (Invoke-RunItem -Step): the kind whose items workers share.
    private volatile bool _activeStepItemsOnly;

    /// <summary>Whether items of the running step are claimed in the store before they run.</summary>
    private bool ClaimsItems => _workers is not null && (IsWorker || _claimsOn) && _activeStepItemsOnly;

    /// <summary>
    /// The owner, at an item boundary: admits waiting workers (its items in flight become its
    /// claims first, and its log is made durable, so a worker sees every completed item), and
    /// transcribes what workers recorded. A query at most every <see cref="s_workerPoll"/>.
    /// </summary>
    private void PollWorkers(bool now = false)
    {
        if (_workers is null || IsWorker || (!now && _sincePoll.IsRunning && _sincePoll.Elapsed < s_workerPoll))
        {
            return;
        }

        _sincePoll.Restart();
        var (waiting, admitted) = _workers.Census();
        if (waiting > 0)
        {
            List<(string Step, string Key)> running;
            lock (_recorder.SyncRoot)
            {
                _claimsOn = true;
                string? step = _activeStep;
                lock (ClaimGate)
                {
                    running = step is null ? new() : _running.Keys.Select(k => (step, k)).ToList();
                }
            }

            _recorder.Flush();
            _workers.Admit(Attempt, running);
            Log($"Admitted {waiting} worker(s) to attempt {Attempt}; items are claimed from now on.");
        }
        else if (admitted > 0)
        {
            _claimsOn = true;
        }

        if (_claimsOn)
        {
            StartTranscriber();
        }

        // A transcription that failed in the background fails the attempt here, at a boundary.
        if (Volatile.Read(ref _transcriberFault) is { } fault)
        {
            throw fault;
        }
    }

    /// <summary>
    /// Copies workers' recorded events into the run's log, then removes them. Idempotent: each copy
    /// carries its worker's id and own sequence number, so an event whose rows a crash (or a failed
    /// removal) left behind after its copy was committed is recognised and not copied twice.
    /// </summary>
    private void Transcribe()
    {
        if (_workers is null || IsWorker)
        {
            return;
        }

        lock (_transcribeLock)
        {
            var events = _workers.ReadWorkerEvents();
            if (events.Count == 0)
            {
                return;
            }

            long last = -1;
            int repeated = 0;
            foreach (var recorded in events)
            {
                string worker = recorded.Worker.ToString("D");
                lock (_recorder.SyncRoot)
                {
                    bool copied;
                    lock (ClaimGate)
                    {
                        copied = Ledger.IsTranscribed(worker, recorded.WorkerSequence);
                    }

                    if (copied)
                    {
                        repeated++;
                        continue;
                    }

                    using var document = JsonDocument.Parse(recorded.Line);
                    var root = document.RootElement;
                    string type = root.GetProperty("type").GetString() ?? string.Empty;
                    last = _recorder.Append(RunEvent.Transcribed(type, root, worker, recorded.WorkerSequence)).Sequence;
                    NoteFailure(recorded.Step, recorded.Key, type, root);
                }
            }

            if (last >= 0)
            {
                _recorder.WaitDurable(last);
                _options.CrashPoint?.Invoke("transcribed");
            }

            if (repeated > 0)
            {
                Log($"{repeated} worker event(s) were in the journal already (an earlier transcription was cut off before removing them); not copied again.");
            }

            _workers.DeleteWorkerEvents(events);
            _recorder.MaybeSnapshot();
        }
    }

    /// <summary>
    /// Ends the attempt's claims (owner): workers still running see the attempt end, and a late
    /// event of theirs is refused; then everything they recorded is transcribed. Also at the start
    /// of an attempt, for the workers of one that crashed: their started items become in doubt.
    /// </summary>
    private void EndClaims()
    {
        if (_workers is null || IsWorker)
        {
            return;
        }

        StopTranscriber();
        _workers.Clear();
        Transcribe();
        _claimsOn = false;
    }

    /// <summary>
    /// Claims an item before deciding to run it, when workers share the step. A worker leaves an
    /// item that is open in the log (started and not finished: another process has it, or it is in
    /// doubt from an earlier attempt, which is the owner's to decide) to the others.
    /// </summary>
    private bool ClaimHere(string step, string key)
    {
        if (IsWorker)
        {
            lock (ClaimGate)
            {
                if (Ledger.Find(step) is { } ledger && ledger.Open.ContainsKey(key))
                {
                    return false;
                }
            }
        }

        return _workers!.TryClaim(step, key, Attempt);
    }

    /// <summary>
    /// While workers take part, the owner transcribes their events every <see cref="s_workerPoll"/>
    /// on a timer, so that the pipeline thread (which claims and starts the owner's own items)
    /// does not pay for the workers' records.
    /// </summary>
    private void StartTranscriber()
    {
        if (_transcriber is not null)
        {
            return;
        }

        _transcriber = new Timer(_ =>
        {
            if (_finished || Volatile.Read(ref _transcriberFault) is not null || !Monitor.TryEnter(_transcriberTick))
            {
                return;
            }

            try
            {
                Transcribe();
            }
            catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.StoreUnavailable && !_recorder.IsFaulted)
            {
                // The workers' events wait in the store; the next tick (or the end of the call) copies them.
                Log($"Transcribing workers' events waits for the store: {ex.Message}");
            }
            catch (RunToolsException ex)
            {
                Volatile.Write(ref _transcriberFault, ex);
            }
            catch (ObjectDisposedException)
            {
                // The attempt ended meanwhile; its end transcribed what was left.
            }
            finally
            {
                Monitor.Exit(_transcriberTick);
            }
        }, null, s_workerPoll, s_workerPoll);
    }

    private void StopTranscriber()
    {
        var timer = Interlocked.Exchange(ref _transcriber, null);
        if (timer is null)
        {
            return;
        }

        using var stopped = new ManualResetEvent(false);
        if (timer.Dispose(stopped))
        {
            stopped.WaitOne(TimeSpan.FromSeconds(30));
        }
    }

    /// <summary>
    /// The end of an Invoke-RunItem call, for the keys this process met but another held: waits
    /// until each has an outcome it can act on, and returns those outcomes (at least one, unless
    /// <paramref name="keys"/> is empty). The owner transcribes meanwhile, and takes over the keys
    /// of workers that are gone (RunHere: claim the key again and run it; a key the dead worker had
    /// started is in doubt and gets the run's in-doubt policy then). Stop requests are honoured.
    /// </summary>
    public IReadOnlyList<(string Key, ElsewhereOutcome Outcome, string? Error)> AwaitItemsElsewhere(string step, IReadOnlyCollection<string> keys)
    {
        var outcomes = new List<(string, ElsewhereOutcome, string?)>();
        if (keys.Count == 0)
        {
            return outcomes;
        }

        while (true)
        {
            EnsureUsable();
            ThrowIfStopRequested();
            if (IsWorker)
            {
                Follow();
            }
            else
            {
                PollWorkers(now: true);
                var taken = _workers?.TakeOverAbandoned(step, keys, Attempt) ?? Array.Empty<string>();

                // Not left to the transcriber's next tick: the call's end waits on exactly these copies.
                Transcribe();
                if (taken.Count > 0)
                {
                    lock (ClaimGate)
                    {
                        var ledger = Ledger.Find(step);
                        foreach (string key in taken)
                        {
                            if (ledger is not null && ledger.Open.TryGetValue(key, out int startedIn) && startedIn == Attempt)
                            {
                                _takenOver.Add(key);
                            }
                        }
                    }

                    Log($"Took over {taken.Count} item(s) of step '{step}' from worker(s) that are gone: {string.Join(", ", taken.Take(10))}.");
                }

                foreach (string key in taken)
                {
                    // A key whose last try failed on the worker is reported failed below, as if it
                    // had failed here: the worker used its tries, its leaving does not earn another.
                    if (!IsItemDone(step, key) && !FailedFinallyElsewhere(step, key))
                    {
                        outcomes.Add((key, ElsewhereOutcome.RunHere, null));
                    }
                }
            }

            lock (_recorder.SyncRoot)
            lock (ClaimGate)
            {
                var ledger = Ledger.For(step);
                foreach (string key in keys)
                {
                    if (outcomes.Any(o => o.Item1 == key))
                    {
                        continue;
                    }

                    if (ledger.Completed.ContainsKey(key))
                    {
                        outcomes.Add((key, ElsewhereOutcome.Completed, null));
                    }
                    else if (ledger.Skipped.Contains(key))
                    {
                        outcomes.Add((key, ElsewhereOutcome.Skipped, null));
                    }
                    else if (ledger.Failed.Contains(key) && !ledger.Open.ContainsKey(key) && FailedInThisAttempt(step, key) is { } error)
                    {
                        outcomes.Add((key, ElsewhereOutcome.Failed, error));
                    }
                }
            }

            if (outcomes.Count > 0)
            {
                return outcomes;
            }

            Thread.Sleep(s_elsewherePoll);
        }
    }

    /// <summary>Whether the key's last try failed in another process in this attempt, with no try after it.</summary>
    private bool FailedFinallyElsewhere(string step, string key)
    {
        lock (_recorder.SyncRoot)
        lock (ClaimGate)
        {
            return Ledger.Find(step) is { } ledger && ledger.Failed.Contains(key) && !ledger.Open.ContainsKey(key) && FailedInThisAttempt(step, key) is not null;
        }
    }

    /// <summary>The error of the key's last failed try, when it failed elsewhere in this attempt; null otherwise. Under SyncRoot.</summary>
    private string? FailedInThisAttempt(string step, string key) => _failedElsewhere.TryGetValue((step, key), out var error) ? error : null;

    // Items of this attempt whose last try failed in another process (from item_failed without retry_in_ms). Guarded by SyncRoot.
    private readonly Dictionary<(string, string), string> _failedElsewhere = new();

    /// <summary>Remembers an item_failed of this attempt that ends the item's tries, with its error.</summary>
    private void NoteFailure(string step, string key, string type, JsonElement root)
    {
        if (type == JournalEventTypes.ItemFailed && !root.TryGetProperty("retry_in_ms", out _)
            && root.TryGetProperty("attempt", out var attempt) && attempt.TryGetInt32(out int number) && number == Attempt)
        {
            _failedElsewhere[(step, key)] = root.TryGetProperty("error", out var error) ? error.GetString() ?? "failed" : "failed";
        }
    }
}
