using System;
using System.Text;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// A joined worker's side of an attempt (Join-Run): it follows the run's log, waits for the owner's
/// steps and joins its items-only steps, and leaves without recording the run's end, which is the
/// owner's. Claims and the end-of-call wait are shared with the owner (RunAttempt.Workers.cs).
/// </summary>
public sealed partial class RunAttempt
{
    /// <summary>A worker leaves: its recorded events are made durable, nothing else is written (the run's end is the owner's).</summary>
    private RunState LeaveAsWorker(RunStatus end, string? reason, string logLine)
    {
        lock (_recorder.SyncRoot)
        {
            if (_finished)
            {
                return State;
            }

            _finished = true;
            _activeStep = null;
            lock (ClaimGate)
            {
                _running.Clear();
            }
        }

        try
        {
            _recorder.Flush();
        }
        catch (RunToolsException ex) when (!logLine.Contains(ex.Message))
        {
            logLine += $" (its last events could not be recorded: {ex.Message})";
        }
        catch (RunToolsException)
        {
            // The line says it already: the refused events are why the worker leaves.
        }

        WorkerEnd = end;
        WorkerEndReason = reason;
        Log(logLine);
        return State;
    }

    /// <summary>A worker follows the log at most every <see cref="s_workerPoll"/> between items: claims decide who runs what, the log only saves asking.</summary>
    private void FollowSometimes()
    {
        if (!_sincePoll.IsRunning || _sincePoll.Elapsed >= s_workerPoll)
        {
            _sincePoll.Restart();
            Follow();
        }
    }

    /// <summary>A worker: folds what the run's log gained since it last looked (the owner's steps, everyone's items).</summary>
    private void Follow()
    {
        if (_workers is null || !IsWorker)
        {
            return;
        }

        _followVisitor ??= new FollowVisitor(this, _workers.WorkerId);
        var scan = _workers.FollowLog(Interlocked.Read(ref _followed), _followVisitor);
        Interlocked.Exchange(ref _followed, scan.LastSequence);
    }

    /// <summary>
    /// A worker's step boundary: steps run on the owner. A step the owner completed is replayed; an
    /// items-only step (Invoke-RunItem -Step) the owner has started in this attempt is joined, its
    /// items claimed here too; any other waits until the owner completes it.
    /// </summary>
    private StepAction JoinStep(string name, bool itemsOnly)
    {
        while (true)
        {
            Follow();
            if (JoinedStep(name, itemsOnly) is { } joined)
            {
                return joined;
            }

            try
            {
                ThrowIfStopRequested();
            }
            catch (RunStoppedException)
            {
                // The owner may have completed the step and then the attempt since the last look.
                Follow();
                if (JoinedStep(name, itemsOnly) is { } last)
                {
                    return last;
                }

                throw;
            }

            Thread.Sleep(s_elsewherePoll + s_elsewherePoll);
        }
    }

    /// <summary>The step as joined now: Replay, Run (an items-only step of this attempt the owner has started), or null to wait.</summary>
    private StepAction? JoinedStep(string name, bool itemsOnly)
    {
        lock (_recorder.SyncRoot)
        {
            var step = State.FindStep(name);
            if (step is not null && step.Status == StepStatus.Completed)
            {
                Log($"Step '{name}' was completed by the owner; replaying its recorded output.");
                return StepAction.Replay;
            }

            if (itemsOnly && step is { Status: StepStatus.Running } && step.Attempt == Attempt)
            {
                _activeStep = name;
                _activeStepItemsOnly = true;
                Log($"Joined step '{name}': claiming its items.");
                return StepAction.Run;
            }
        }

        return null;
    }

    private FollowVisitor? _followVisitor;

    /// <summary>
    /// Feeds a followed event to the worker's recorder; remembers failures of this attempt for
    /// <see cref="AwaitItemsElsewhere"/>. The owner's copies of this worker's own events are left
    /// out: the worker folded each when it recorded it, and folding a late copy again would reopen
    /// a key it has since failed or finished (its next try would then find the key taken).
    /// </summary>
    private sealed class FollowVisitor : IJournalVisitor
    {
        private readonly RunAttempt _attempt;
        private readonly string? _self;

        public FollowVisitor(RunAttempt attempt, Guid? worker)
        {
            _attempt = attempt;
            _self = worker?.ToString("D");
        }

        public bool WantsTimestamp => false;

        public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
        {
            if (_self is not null && string.Equals(line.Worker, _self, StringComparison.OrdinalIgnoreCase))
            {
                return;
            }

            _attempt._recorder.Fold(in line, offset, raw);
            if (line.Type == JournalEventTypes.ItemFailed && line.Step is { } step && line.Key is { } key)
            {
                using var document = JsonDocument.Parse(raw.ToArray());
                lock (_attempt._recorder.SyncRoot)
                {
                    _attempt.NoteFailure(step, key, line.Type, document.RootElement);
                }
            }
        }
    }
}
