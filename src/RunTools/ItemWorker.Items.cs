using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>Running one item in the worker's runspace: its tries, its time limit, how its end is recorded.</summary>
internal sealed partial class ItemWorker
{
    /// <summary>Tries the item up to -MaxTries times: each try journaled, a wait with jitter between them.</summary>
    private void Run(ParallelItemRunner call, RunAttempt engine, ScriptBlock body, ParallelItemRunner.Job job, ParallelItemRunner.Result result)
    {
        var tries = call.Unit.NewTries(engine);
        tries.BeginTry = tryNumber =>
        {
            try
            {
                engine.ThrowIfStopRequested();
                if (_stopped || engine.ClaimItem(call.Step, job.Key) != ItemAction.Run)
                {
                    return false;
                }

                engine.StartItem(call.Step, job.Key, tryNumber);
                return true;
            }
            catch (RunToolsException ex)
            {
                // A stop during the wait: the item stays failed (recorded), and a resume retries it.
                engine.ReleaseItem(job.Key);
                call.SetFatal(ex);
                return false;
            }
        };

        // -RetryOn's script blocks run here, in the worker; Ctrl+C of the call is this worker's stop.
        // A rule that throws cannot decide: as for a sequential item, the item's own error is final
        // and keeps its place, and the rule's error is said in a warning among the item's messages.
        tries.IsTransient = error =>
        {
            try
            {
                return !_stopped && IsTransient(error);
            }
            catch (RuntimeException ruleError) when (ruleError is not PipelineStoppedException)
            {
                result.Messages = result.Messages.Append(new WarningRecord(UnitErrors.RuleFailed(ruleError, call.ScriptName))).ToArray();
                return false;
            }
        };
        tries.Abandoned = () => _stopped;
        tries.RecordFailure = (error, tryNumber, wait) =>
        {
            bool timedOut = RunExecutor.Unwrap(error) is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };
            if (wait is null)
            {
                // The item's last try: under 'Stop' no item starts after this failure is recorded.
                call.ItemFailedFinally();
            }

            try
            {
                engine.FailItem(call.Step, job.Key, UnitCmdletBase.Failure(RunExecutor.Explain(error, call.ScriptName), error, timedOut, tryNumber, wait));
            }
            catch (RunToolsException ex)
            {
                call.SetFatal(ex);
                result.Abandoned = true;
                return false;
            }

            if (ItemContext.Failure is not null)
            {
                // An in-script cmdlet ended the run (as it would the run script): stop starting items.
                call.SetFatal(error as RunToolsException ?? new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidOperation, ItemContext.Failure, job.Key, error));
                return false;
            }

            return true;
        };
        var outcome = tries.Run(_ =>
        {
            result.Error = null;
            RunOnce(call, engine, body, job, result);
            return result.Error is null || result.Abandoned || call.Fatal is not null ? null : result.Error;
        });
        switch (outcome.End)
        {
            case UnitTriesEnd.Failed:
                result.FailedTries = outcome.Tries;
                break;
            case UnitTriesEnd.Stopped:
                // A stop during the wait: the item stays failed (recorded), and a resume retries it.
                call.SetFatal((RunToolsException)outcome.Error!);
                break;
        }
    }

    // -RetryOn's script blocks are asked inside the worker's running pipeline, as the body runs.
    private bool IsTransient(Exception error) =>
        UnitErrors.IsTransient(_retryOn, error, sb => sb.InvokeWithContext(null, DollarUnder(UnitErrors.RecordOf(error))));

    /// <summary>The variables a script block invoked for an item gets: <c>$_</c> (and <c>$PSItem</c>) set to <paramref name="input"/>.</summary>
    private static List<PSVariable> DollarUnder(object? input) => new(1) { new PSVariable("_", input) };

    /// <summary>
    /// One try of the item. Without a time limit the body is invoked in the worker's running
    /// pipeline (a scope of its own, <c>$_</c> the item); under -TimeoutSec in a pipeline nested
    /// in it, which the timer stops at the limit without ending the worker's.
    /// </summary>
    private void RunOnce(ParallelItemRunner call, RunAttempt engine, ScriptBlock body, ParallelItemRunner.Job job, ParallelItemRunner.Result result)
    {
        ItemContext.ItemKey = job.Key;
        ItemContext.Failure = null;
        ItemContext.FailureCause = null;
        ItemContext.StopRequest = null;
        Collection<PSObject>? output = null;
        int limit = call.Unit.TimeoutSec;
        var timed = limit == 0 ? null : PowerShell.Create(RunspaceMode.CurrentRunspace);
        var streams = (timed ?? _shell!).Streams;
        if (timed is not null)
        {
            Collect(streams);
        }

        Interlocked.Exchange(ref _timedOut, 0);
        using var timer = timed is null ? null : new Timer(_ =>
        {
            Interlocked.Exchange(ref _timedOut, 1);
            try
            {
                timed.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
            }
        }, null, TimeSpan.FromSeconds(limit), Timeout.InfiniteTimeSpan);
        try
        {
            if (timed is null)
            {
                output = body.InvokeWithContext(null, DollarUnder(job.Input));
            }
            else
            {
                _timed = timed;
                if (_stopped)
                {
                    // Ctrl+C came before this pipeline could be stopped with the worker's.
                    throw new PipelineStoppedException();
                }

                // & gives the body a scope of its own, as without -TimeoutSec (ForEach-Object alone would dot-source it).
                timed.AddScript("param($RunToolsBody, $RunToolsItem) ForEach-Object -InputObject $RunToolsItem -Process { & $RunToolsBody }", useLocalScope: true)
                    .AddArgument(body).AddArgument(job.Input);
                output = timed.Invoke();
                if (timed.InvocationStateInfo.State == PSInvocationState.Stopped)
                {
                    if (Volatile.Read(ref _timedOut) == 1 && !_stopped)
                    {
                        // Stopped by its time limit: a failure of this try (below), not an interruption.
                        throw new PipelineStoppedException();
                    }

                    // A stopped pipeline returns normally, with what it had written so far: the
                    // item was cut off, its outcome is unknown.
                    result.Abandoned = true;
                    _cutOff = true;
                    return;
                }
            }
        }
        catch (Exception ex) when ((ex is RuntimeException || ex is InvalidOperationException) && Volatile.Read(ref _timedOut) == 1 && !_stopped)
        {
            // Stopped wherever it was: whatever it left in the runspace is not known, so the worker is not kept after the attempt.
            _cutOff = true;
            result.Error = new RunToolsException(ErrorIds.UnitTimedOut, RunToolsErrorCategory.OperationTimeout,
                $"It ran past its time limit of {limit} s and was stopped. Raise -TimeoutSec, or make the work faster.", job.Key);
        }
        catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException)
        {
            if (ItemContext.StopRequest is not null || _stopped || (ex is PipelineStoppedException && ItemContext.Failure is null) || RunExecutor.Unwrap(ex) is RunStoppedException)
            {
                // Cut off mid-work: its outcome is unknown, so it stays open, in doubt.
                result.Abandoned = true;
                _cutOff = true;
                if (ItemContext.StopRequest is { } request)
                {
                    // An in-script cmdlet of the item met the stop request: the run script ends Stopped.
                    call.Context.StopRequest ??= request;
                    call.SetFatal(new RunToolsException(ErrorIds.StopRequested, RunToolsErrorCategory.OperationStopped,
                        $"Run '{engine.Run.RunId}' was asked to stop by {request.RequestedBy}.", engine.Run.RunId));
                }

                return;
            }

            result.Error = ItemContext.FailureCause ?? ex;
        }
        catch (FlowControlException)
        {
            // break, continue or exit outside a loop ends the body, as it ends a ForEach-Object pipeline: without an error.
            output ??= new Collection<PSObject>();
        }
        finally
        {
            ItemContext.ItemKey = null;
            _timed = null;
            TakeMessages(streams, result);
            timed?.Dispose();
        }

        if (result.Error is not null)
        {
            return;
        }

        try
        {
            byte[]? recorded = output!.Count == 0 ? null : Conversion.Serialize(output);
            engine.CompleteItem(call.Step, job.Key, recorded, recorded is null ? null : "clixml");
            if (recorded is not null)
            {
                result.Output = Conversion.Deserialize(recorded).ToList();
            }
        }
        catch (RunToolsException ex)
        {
            call.SetFatal(ex);
            result.Abandoned = true;
        }
    }

    /// <summary>
    /// Keeps what the item writes to <paramref name="streams"/>' error, warning, verbose, debug and
    /// information streams in <see cref="_messages"/>, in the order written (the streams are
    /// separate collections, so their order is only seen as records are added).
    /// </summary>
    private void Collect(PSDataStreams streams)
    {
        streams.Error.DataAdded += (_, e) => _messages.Add(streams.Error[e.Index]);
        streams.Warning.DataAdded += (_, e) => _messages.Add(streams.Warning[e.Index]);
        streams.Verbose.DataAdded += (_, e) => _messages.Add(streams.Verbose[e.Index]);
        streams.Debug.DataAdded += (_, e) => _messages.Add(streams.Debug[e.Index]);
        streams.Information.DataAdded += (_, e) => _messages.Add(streams.Information[e.Index]);
    }

    /// <summary>Moves the try's messages to <paramref name="result"/> (the last try's, as before a retry), and empties <paramref name="streams"/>.</summary>
    private void TakeMessages(PSDataStreams streams, ParallelItemRunner.Result result)
    {
        result.Messages = _messages.Count == 0 ? Array.Empty<object>() : _messages.ToArray();
        _messages.Clear();
        streams.ClearStreams();
    }
}
