using System;
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
        tries.IsTransient = error => !_stopped && IsTransient(error);
        tries.Abandoned = () => _stopped;
        tries.RecordFailure = (error, tryNumber, wait) =>
        {
            bool timedOut = RunExecutor.Unwrap(error) is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };
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

    private bool IsTransient(Exception error) =>
        UnitErrors.IsTransient(_retryOn, error, sb =>
        {
            var shell = _shell!;
            shell.Commands.Clear();
            shell.AddCommand("ForEach-Object").AddParameter("InputObject", UnitErrors.RecordOf(error)).AddParameter("Process", sb);
            try
            {
                return shell.Invoke();
            }
            finally
            {
                shell.Commands.Clear();
            }
        });

    private void RunOnce(ParallelItemRunner call, RunAttempt engine, ScriptBlock body, ParallelItemRunner.Job job, ParallelItemRunner.Result result)
    {
        var shell = _shell!;
        ItemContext.ItemKey = job.Key;
        ItemContext.Failure = null;
        ItemContext.FailureCause = null;
        ItemContext.StopRequest = null;
        System.Collections.ObjectModel.Collection<PSObject>? output = null;
        int limit = call.Unit.TimeoutSec;
        Interlocked.Exchange(ref _timedOut, 0);
        using var timer = limit == 0 ? null : new Timer(_ =>
        {
            Interlocked.Exchange(ref _timedOut, 1);
            try
            {
                shell.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
            }
        }, null, TimeSpan.FromSeconds(limit), Timeout.InfiniteTimeSpan);
        try
        {
            shell.Commands.Clear();
            shell.AddCommand("ForEach-Object").AddParameter("InputObject", job.Input).AddParameter("Process", body);
            output = shell.Invoke();
            if (shell.InvocationStateInfo.State == PSInvocationState.Stopped)
            {
                if (Volatile.Read(ref _timedOut) == 1 && !_stopped)
                {
                    // Stopped by its time limit: a failure of this try (below), not an interruption.
                    throw new PipelineStoppedException();
                }

                // A stopped pipeline in a runspace on its own thread returns normally, with
                // what it had written so far: the item was cut off, its outcome is unknown.
                result.Abandoned = true;
                _cutOff = true;
                return;
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
        finally
        {
            ItemContext.ItemKey = null;
            result.Errors = shell.Streams.Error.ReadAll();
            result.Warnings = shell.Streams.Warning.ReadAll();
            result.Verbose = shell.Streams.Verbose.ReadAll();
            result.Information = shell.Streams.Information.ReadAll();
            shell.Streams.ClearStreams();
        }

        if (result.Error is not null)
        {
            return;
        }

        try
        {
            byte[]? recorded = output!.Count == 0 ? null : Conversion.Serialize(output);
            engine.CompleteItem(call.Step, job.Key, recorded, recorded is null ? null : "clixml");
            result.Output = Conversion.Deserialize(recorded).ToList();
        }
        catch (RunToolsException ex)
        {
            call.SetFatal(ex);
            result.Abandoned = true;
        }
    }
}
