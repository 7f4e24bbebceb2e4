using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>
/// The owner of a run for one attempt: holds its ownership, journals every unit before it counts
/// (through its <see cref="RunRecorder"/>), and ends the attempt as Completed, Failed or
/// Stopped. If the process dies instead, the run reads as Interrupted and the next attempt picks
/// it up. One step runs at a time; the items of the running step may run concurrently, from any
/// thread (RunAttempt.Items.cs). The run's journal, snapshot, ownership, recorded files and stop
/// requests are reached only through its <see cref="IRunStore"/>.
/// </summary>
public sealed partial class RunAttempt : IDisposable
{
    private readonly RunDirectory _run;
    private readonly IRunStore _store;
    private readonly IRunOwnership _ownership;
    private readonly RunRecorder _recorder;
    private readonly AttemptOptions _options;
    private readonly StepGateTracker _gate;
    private readonly StreamWriter _log;
    private readonly object _logLock = new();
    private readonly List<string> _encountered = new();
    private volatile bool _finished;
    private bool _logFailed;

    private RunAttempt(RunDirectory run, IRunStore store, IRunOwnership ownership, AttemptOptions options, StepGateTracker gate)
    {
        _run = run;
        _store = store;
        _ownership = ownership;
        _options = options;
        _gate = gate;
        _workers = store.Workers;
        IsWorker = _workers?.IsWorker == true;
        store.RemoveLeftovers();

        var planned = ResumePlanner.Plan(store, options.VerifyArtifacts);
        Plan = planned.Plan;
        var scan = Plan.Journal;
        if (scan.ValidLines == 0 && store.Snapshot.Exists)
        {
            throw new RunToolsException(ErrorIds.JournalUnreadable, RunToolsErrorCategory.InvalidData,
                $"Run '{run.RunId}' has a state snapshot but its journal ({RunFormat.JournalFile}) is missing or unreadable, so finished work cannot be told apart safely. Restore the journal from a backup or archive before resuming.", run.RunId);
        }

        var log = store.OpenLog(scan, out string? tailBackup);
        _recorder = new RunRecorder(log, Plan.State, Plan.Ledger, store.Snapshot.Replace, options.SnapshotInterval, crashPoint: options.CrashPoint);

        var state = State;
        var previousStatus = state.Status;
        PreviousStatus = previousStatus;

        // A worker works in the attempt it joined; an owner begins the next one.
        Attempt = IsWorker ? state.Attempt : state.Attempt + 1;
        _followed = scan.LastSequence;

        // Attempt logs are for people, not part of the record: they stay files in the run folder
        // whatever the store (a database store keeps a local run folder for them).
        string logName = IsWorker ? $"attempt-{Attempt}-worker-{_ownership.Holder.ProcessId}" : $"attempt-{Attempt}";
        LogPath = Path.Combine(run.Path, RunFormat.LogsFolder, logName + ".log");
        try
        {
            DurableFile.CreateDirectory(Path.Combine(run.Path, RunFormat.LogsFolder));
            _log = new StreamWriter(NewLog(Path.Combine(run.Path, RunFormat.LogsFolder), logName), new UTF8Encoding(false)) { AutoFlush = true };
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is RunToolsException)
        {
            _recorder.Dispose();
            throw ex as RunToolsException ?? DurableFile.Failed($"Could not create the attempt log '{LogPath}'", LogPath, ex, "The attempt did not start; nothing was recorded.");
        }

        try
        {
            if (IsWorker)
            {
                Log($"Joined attempt {Attempt} of run '{run.RunId}' as a worker ({Environment.MachineName}, process {_ownership.Holder.ProcessId}).");
            }
            else
            {
                // What workers of a crashed attempt recorded is the run's before anything new is.
                EndClaims();
                Open(scan, tailBackup, previousStatus);
            }
        }
        catch
        {
            _log.Dispose();
            _recorder.Dispose();
            throw;
        }
    }

    public RunDirectory Run => _run;

    /// <summary>This attempt's number (1 for the first).</summary>
    public int Attempt { get; }

    /// <summary>What the journal said when the attempt began (its State is the live state from then on).</summary>
    public ResumePlan Plan { get; }

    /// <summary>The stored status of the run before this attempt took it over.</summary>
    public RunStatus PreviousStatus { get; }

    /// <summary>The live state, as the snapshot would say it now.</summary>
    public RunState State => _recorder.State;

    /// <summary>logs/attempt-N.log: Core's own lines and whatever the host writes with <see cref="Log"/>.</summary>
    public string LogPath { get; private set; }

    public bool IsFinished => _finished;

    private ItemLedger Ledger => _recorder.Ledger;

    internal static RunAttempt Begin(RunDirectory run, AttemptOptions options) =>
        Begin(run, options.Join ? RunStores.OpenWorker(run) : RunStores.Open(run, options.CrashPoint), options);

    /// <summary>
    /// An attempt on <paramref name="store"/>, which holds the run's record; <paramref name="run"/> is
    /// the local folder for what is not behind the seam yet (attempt logs, stored config and script).
    /// </summary>
    internal static RunAttempt Begin(RunDirectory run, IRunStore store, AttemptOptions options)
    {
        var gate = new StepGateTracker(options.Gate);
        var ownership = store.Acquire(DateTimeOffset.UtcNow);

        try
        {
            return new RunAttempt(run, store, ownership, options, gate);
        }
        catch
        {
            ownership.Dispose();
            throw;
        }
    }

    /// <summary>A stop boundary: throws <see cref="RunStoppedException"/> when a stop was requested or Ctrl+C pressed.</summary>
    public void ThrowIfStopRequested()
    {
        if (_options.Cancellation.IsCancellationRequested)
        {
            throw new RunStoppedException(_run.RunId, new StopRequest
            {
                RequestedAt = DateTimeOffset.UtcNow,
                RequestedBy = "Ctrl+C",
                Reason = "the pipeline was stopped",
            });
        }

        if (_store.ReadStopRequest() is { } stop)
        {
            throw new RunStoppedException(_run.RunId, stop);
        }
    }

    /// <summary>
    /// Waits <paramref name="delay"/> before a unit's next try, in short slices: returns false at
    /// once when <paramref name="abandoned"/> says the caller gave up (Ctrl+C), and throws
    /// <see cref="RunStoppedException"/> when a stop is requested. The failed try is already
    /// journaled, so a wait cut short leaves the unit failed and a resume retries it.
    /// </summary>
    public bool WaitBeforeRetry(TimeSpan delay, Func<bool> abandoned)
    {
        var slice = TimeSpan.FromMilliseconds(50);
        var until = DateTime.UtcNow + delay;
        while (true)
        {
            if (abandoned())
            {
                return false;
            }

            ThrowIfStopRequested();
            var left = until - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                return true;
            }

            System.Threading.Thread.Sleep(left < slice ? left : slice);
        }
    }

    /// <summary>Writes a line to this attempt's log (not durable; logs are for people). Any thread.</summary>
    public void Log(string message)
    {
        lock (_logLock)
        {
            try
            {
                FaultPoints.ThrowIfInjected(DurableOp.Write, LogPath);
                _log.WriteLine($"{JournalWriter.FormatTimestamp(DateTimeOffset.UtcNow)} {message}");
            }
            catch (IOException ex)
            {
                // The journal is the record; a log is for people. Say so once, and go on.
                if (!_logFailed)
                {
                    _logFailed = true;
                    _options.Observer?.Warning($"The attempt log '{LogPath}' could not be written ({ex.Message}); later lines are lost, the run's record (the journal) is not affected. Free disk space if the disk is full.");
                }
            }
            catch (ObjectDisposedException)
            {
                // A late line from a unit that outlived its attempt: the attempt's record is closed.
            }
        }
    }

    /// <summary>Ends the attempt after the script returned: Completed, or Stopped when gated steps are left.</summary>
    public RunState Complete() => Complete(null);

    /// <summary>
    /// As <see cref="Complete()"/>; <paramref name="stepsInScript"/> are the steps the script names
    /// (read from its text). Those the run never met (a condition or an early <c>exit 0</c> passed
    /// them by) do not keep the run from completing, since that was the script's own decision, but
    /// they are named in a warning and in run_completed's <c>steps_not_met</c>.
    /// </summary>
    public RunState Complete(IReadOnlyCollection<string>? stepsInScript)
    {
        EnsureUsable();
        if (IsWorker)
        {
            return LeaveAsWorker(RunStatus.Completed, null, $"The run script ended; worker leaves attempt {Attempt}.");
        }

        if (_activeStep is not null)
        {
            throw new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                $"The run cannot complete while step '{_activeStep}' is running.", _activeStep);
        }

        var failed = State.Steps.Where(s => s.Status == StepStatus.Failed).Select(s => s.Name).ToList();
        if (failed.Count > 0)
        {
            return Fail($"step(s) failed: {string.Join(", ", failed)}");
        }

        var pending = State.DeclaredSteps.Concat(State.Steps.Select(s => s.Name)).Distinct(StringComparer.Ordinal)
            .Where(n => State.FindStep(n)?.Status != StepStatus.Completed).ToList();
        if (pending.Count > 0)
        {
            string reason = $"steps not run: {string.Join(", ", pending)}" + (_options.Gate is { IsOpen: false } ? " (outside the step gate)" : string.Empty);
            var request = new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "step gate", Reason = reason };
            return Finish(RunEvent.RunStopped(request), $"Attempt {Attempt} ended with {reason}.");
        }

        var leftInDoubt = State.Steps.SelectMany(s => s.ItemsOpen.Select(k => $"{s.Name}/{k}")).ToList();
        if (leftInDoubt.Count > 0)
        {
            Warn($"{leftInDoubt.Count} item(s) in doubt were not met again by the script and stay in doubt: {string.Join(", ", leftInDoubt.Take(10))}.");
        }

        var notMet = (stepsInScript ?? Array.Empty<string>()).Where(n => State.FindStep(n) is null).Distinct(StringComparer.Ordinal).ToList();
        if (notMet.Count > 0)
        {
            Warn($"The script names {notMet.Count} step(s) this run never reached: {string.Join(", ", notMet)} (a condition or an early 'exit 0' passed them by). The run is Completed because the script ended without an error; if those steps should have run, fix the script and start a new run.");
        }

        return Finish(RunEvent.RunCompleted(notMet), $"Attempt {Attempt} completed the run.");
    }

    /// <summary>
    /// Ends the attempt as Failed; the item running on the calling thread is recorded as failed
    /// with the same error. Items started on other threads (parallel items still in flight) have
    /// an unknown outcome and stay open, in doubt; items only claimed stay pending.
    /// <paramref name="unitInterrupted"/>: the running units were cut off mid-work (their outcome
    /// is unknown), so every item stays open (in doubt) and only the step is recorded as failed.
    /// A worker that lost its place in the attempt leaves and throws NotOwner.
    /// <paramref name="errorId"/>: the failing error's ErrorId, recorded with the item and step.
    /// </summary>
    public RunState Fail(string error, bool unitInterrupted = false, string? errorId = null)
    {
        if (_finished)
        {
            return State;
        }

        RunToolsException? refused = null;
        try
        {
            foreach (var (key, started, thread) in RunningItemStates())
            {
                if (!started)
                {
                    ReleaseItem(key);
                }
                else if (unitInterrupted || thread != Environment.CurrentManagedThreadId)
                {
                    ForgetItem(key);
                }
                else
                {
                    FailItem(_activeStep!, key, new UnitFailure(error) { ErrorId = errorId });
                }
            }

            if (_activeStep is not null)
            {
                FailStep(_activeStep, new UnitFailure(error) { ErrorId = errorId });
            }
        }
        catch (RunToolsException ex) when (_recorder.IsFaulted || (IsWorker && ex.ErrorId == ErrorIds.NotOwner))
        {
            refused = ex;
        }

        if (IsWorker)
        {
            // A worker that lost its place (its registration expired, or the attempt ended) leaves
            // with NotOwner however it found out: at a boundary, or by its event insert being refused
            // by the claim fence (a pause between an append and its commit).
            var lost = refused?.ErrorId == ErrorIds.NotOwner ? refused : _recorder.Fault is { ErrorId: ErrorIds.NotOwner } fault ? fault : null;
            if (lost is not null)
            {
                LeaveAsWorker(RunStatus.Failed, lost.Message, $"Worker leaves attempt {Attempt}, whose owner no longer counts its work: {lost.Message}");
                throw lost;
            }

            return LeaveAsWorker(RunStatus.Failed, error, $"Worker failed and leaves attempt {Attempt}: {error}");
        }

        return Finish(RunEvent.RunFailed(error), $"Attempt {Attempt} failed: {error}");
    }

    /// <summary>
    /// Ends the attempt as Stopped. Units interrupted mid-work (Ctrl+C) are left open, so the
    /// next attempt treats them as in doubt rather than guessing whether their work happened.
    /// </summary>
    public RunState Stop(StopRequest request)
    {
        if (_finished)
        {
            return State;
        }

        string? step = _activeStep;
        var running = RunningItems();
        foreach (string key in running)
        {
            ForgetItem(key);
        }

        if (IsWorker)
        {
            return LeaveAsWorker(RunStatus.Stopped, request.Reason, $"Worker stopped as requested by {request.RequestedBy}{(request.Reason is null ? string.Empty : ": " + request.Reason)}"
                + (running.Count > 0 ? $"; {running.Count} item(s) it was running are left in doubt: {string.Join(", ", running.Take(10))}." : "."));
        }

        var result = Finish(RunEvent.RunStopped(request, step, running.Count == 1 ? running[0] : null),
            $"Attempt {Attempt} stopped as requested by {request.RequestedBy}{(request.Reason is null ? string.Empty : ": " + request.Reason)}"
            + (running.Count > 1 ? $"; {running.Count} items were running and are left in doubt: {string.Join(", ", running.Take(10))}." : "."));
        _store.ClearStopRequest();
        return result;
    }

    /// <summary>Releases ownership. An attempt not ended by Complete/Fail/Stop stays Running, and reads as Interrupted.</summary>
    public void Dispose()
    {
        // Ownership is released whatever fails before it: a lock kept by a failed flush would
        // refuse every later attempt of this process (RunLocked naming itself) until it exits.
        try
        {
            StopTranscriber();
            try
            {
                if (!_finished && !_recorder.IsFaulted)
                {
                    _recorder.Flush();
                }
            }
            catch (Exception ex) when (ex is IOException || ex is RunToolsException)
            {
            }

            try
            {
                _recorder.Dispose();
            }
            finally
            {
                _options.CrashPoint?.Invoke("dispose_log");
                lock (_logLock)
                {
                    _log.Dispose();
                }
            }
        }
        finally
        {
            _ownership.Dispose();
        }
    }

    /// <summary>Appends an event (durable unless said otherwise); a failure marks the attempt faulted.</summary>
    private long Record(RunEvent runEvent, Durability durability = Durability.Durable) => _recorder.Record(runEvent, durability);

    private RunState Finish(RunEvent end, string logLine)
    {
        try
        {
            // Workers stop with the attempt; what they recorded is the run's before its end.
            EndClaims();
        }
        catch (RunToolsException ex) when (!_recorder.IsFaulted)
        {
            Warn($"The attempt's workers could not be ended cleanly ({ex.Message}); the next attempt transcribes what they recorded.");
        }
        catch (RunToolsException)
        {
        }

        long sequence;
        lock (_recorder.SyncRoot)
        {
            if (_finished)
            {
                return State;
            }

            // Under the lock: no unit's event can land after the end of the attempt.
            sequence = _recorder.Append(end).Sequence;
            _finished = true;
            _activeStep = null;
            lock (ClaimGate)
            {
                _running.Clear();
            }
        }

        _recorder.WaitDurable(sequence);
        Log(logLine);
        _recorder.Snapshot();
        return State;
    }

    private void EnsureUsable()
    {
        if (_finished)
        {
            throw new RunToolsException(ErrorIds.NotOwner, RunToolsErrorCategory.InvalidOperation,
                $"Attempt {Attempt} of run '{_run.RunId}' has ended; start a new attempt with Resume-Run.", _run.RunId);
        }

        if (_recorder.IsFaulted)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"Attempt {Attempt} of run '{_run.RunId}' could not write its journal and cannot record more work. Fix the disk, then resume the run.", _run.RunId);
        }

        _ownership.ThrowIfLost();
    }

    private void Warn(string message)
    {
        Log("WARNING: " + message);
        _options.Observer?.Warning(message);
    }

    /// <summary>
    /// A new attempt log: <c>logs/NAME.log</c>, or <c>NAME-2.log</c> and on when that file exists
    /// (a converted run's legacy file, or the log of an attempt whose start a crash cut short).
    /// A log never writes into a file it did not create. Sets <see cref="LogPath"/>.
    /// </summary>
    private FileStream NewLog(string folder, string name)
    {
        for (int n = 1; ; n++)
        {
            string path = Path.Combine(folder, n == 1 ? name + ".log" : $"{name}-{n}.log");
            try
            {
                var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
                LogPath = path;
                return stream;
            }
            catch (IOException) when (n < 1000 && NativeFileType.Of(path, followLinks: false) != FileKind.Missing)
            {
                // Taken: the next name.
            }
        }
    }
}
