using System;
using System.Collections;
using System.IO;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// Joins a running run in a database as one more worker: runs the run's own script here, claiming
/// the items of its Invoke-RunItem -Step calls alongside the owner and the other workers, waiting
/// for the owner's steps, until the script ends or the attempt does (docs/multi-machine.md).
/// </summary>
[Cmdlet(VerbsCommon.Join, "Run", DefaultParameterSetName = RunSelectionSets.ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Join-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class JoinRunCommand : RunSelectionCmdletBase
{
    private RunExecutor? _executor;

    /// <summary>Each selected run in turn; $LASTEXITCODE says how this worker's part of the last one ended.</summary>
    protected override void ProcessRecord()
    {
        foreach (var selected in SelectRuns())
        {
            JoinOne(selected.Run, selected.Target);
        }
    }

    /// <summary>Ctrl+C: the worker stops at its next boundary; items it was running are left to the owner.</summary>
    protected override void StopProcessing() => _executor?.Stop();

    private void JoinOne(RunDirectory run, object target)
    {
        try
        {
            if (!ShouldProcess(run.RunId, "Join run as a worker"))
            {
                return;
            }

            run.EnsureJoinable();
            var state = run.ReadState();
            if (state.Status is not (RunStatus.Running or RunStatus.Stopping))
            {
                throw new RunToolsException(ErrorIds.RunNotRunning, RunToolsErrorCategory.InvalidOperation,
                    $"Run '{run.RunId}' is {state.Status}, not running, so there is no attempt to join. Start or resume it on one machine (Resume-Run), then run Join-Run on the others.", run.RunId);
            }

            // Every worker runs exactly the owner's script: the recorded file only while it is unchanged.
            string script = run.ScriptToRun(state, sameBytes: true);
            if (run.ReadScript().Length == 0 || !File.Exists(script))
            {
                throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"Run '{run.RunId}' has no stored copy of its script to run here ({run.ScriptPath}).", run.RunId);
            }

            IDictionary? arguments = run.ReadParameters()?.ToDictionary();
            _executor = new RunExecutor(this);
            var options = new AttemptOptions
            {
                Join = true,
                Script = File.ReadAllBytes(script),
                ScriptSourcePath = script,
                Cancellation = _executor.Cancellation,
                Observer = new CmdletObserver(this),
            };
            RunStatus? end;
            string? reason;
            using (var attempt = run.BeginAttempt(options))
            {
                WriteVerbose($"Joined attempt {attempt.Attempt} of run '{run.RunId}' as a worker; running {script}.");
                _executor.Execute(run, attempt, script, arguments, InDoubtAction.Retry);
                end = attempt.WorkerEnd;
                reason = attempt.WorkerEndReason;
            }

            SetExitCode(end);
            var info = RunInfo.From(run, run.ReadState());
            if (end == RunStatus.Failed)
            {
                var error = new RunToolsException(ErrorIds.RunFailed, RunToolsErrorCategory.NotSpecified,
                    $"This worker of run '{run.RunId}' failed: {RunExecutor.Sentence(reason ?? "no reason recorded")} The run's owner decides how the run goes on; a failed item is retried when the run is resumed.", info, _executor.FailureCause);
                WriteError(new ErrorRecord(error, ErrorIds.RunFailed, ErrorCategory.NotSpecified, info));
            }

            WriteObject(info);
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.StopRequested)
        {
            // The owner ended the attempt (or a stop was asked) while this worker waited, not at a
            // boundary of its script: its part stopped (3, as documented), it did not fail to join.
            SetExitCode(RunStatus.Stopped);
            WriteWarning(ex.Message);
        }
        catch (RunToolsException ex)
        {
            SetExitCode(null);
            WriteError(ToErrorRecord(ex, target));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            SetExitCode(null);
            WriteError(IoErrorRecord(ex, target));
        }
        finally
        {
            _executor?.Dispose();
            _executor = null;
        }
    }

    /// <summary>$LASTEXITCODE as Start-Run and Resume-Run set it, for this worker's part: 0 its script ended, 1 it failed, 3 it stopped, 4 it could not join.</summary>
    private void SetExitCode(RunStatus? end)
    {
        int code = end switch
        {
            RunStatus.Completed => RunExecutionCmdletBase.ExitCompleted,
            RunStatus.Failed => RunExecutionCmdletBase.ExitFailed,
            RunStatus.Stopped => RunExecutionCmdletBase.ExitStopped,
            _ => RunExecutionCmdletBase.ExitRefused,
        };
        SessionState.PSVariable.Set("global:LASTEXITCODE", code);
    }
}
