using System;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>The cmdlets used inside run scripts: they need the current run, and turn a stop request into a clean unwind.</summary>
public abstract class InScriptCmdletBase : RunCmdletBase
{
    /// <summary>
    /// The run this script executes in. Where there is none the call fails with a terminating error
    /// that says why: NotInRun outside any run, WrongRunspace in another runspace of a running
    /// attempt (which then fails too), RunEnded after the attempt it belongs to has ended. In the
    /// run script's own runspace, a wrong use met meanwhile ends the script here, at this boundary.
    /// </summary>
    protected RunContext RequireContext()
    {
        string command = MyInvocation.MyCommand.Name;
        var context = RunContext.Current;
        if (context is not null)
        {
            if (context.AttemptContext == context && context.ItemKey is null && context.Failure is null && context.Misuse is { } misuse)
            {
                Fail(context, misuse.Message, misuse);
            }

            return context;
        }

        if (RunContext.Origin is { } origin)
        {
            if (origin.ReportMisuse(WrongRunspace(command, origin)))
            {
                ThrowTerminatingError(new ErrorRecord(WrongRunspace(command, origin), ErrorIds.WrongRunspace, ErrorCategory.InvalidOperation, origin.RunId));
            }

            ThrowTerminatingError(new ErrorRecord(RunEnded(command, origin), ErrorIds.RunEnded, ErrorCategory.InvalidOperation, origin.RunId));
        }

        if (RunContext.EndedHere is { } ended && string.Equals(MyInvocation.ScriptName, ended.ScriptPath, StringComparison.Ordinal))
        {
            // A line of the run script after its attempt ended: a script block kept from the run, or the script run again without Start-Run.
            ThrowTerminatingError(new ErrorRecord(RunEnded(command, ended), ErrorIds.RunEnded, ErrorCategory.InvalidOperation, ended.RunId));
        }

        ThrowTerminatingError(new ErrorRecord(
            new InvalidOperationException($"{command} works only inside a run script started by Start-Run or Resume-Run. A job started with Start-Job runs in another process, where no run exists: call {command} from the run script itself, and use Invoke-RunItem -ThrottleLimit to run items at once."),
            ErrorIds.NotInRun, ErrorCategory.InvalidOperation, null));
        return null!;
    }

    private static RunToolsException WrongRunspace(string command, RunContext run) =>
        new(ErrorIds.WrongRunspace, RunToolsErrorCategory.InvalidOperation,
            $"{command} was called from another runspace than the script of run '{run.RunId}' (ForEach-Object -Parallel, a thread job, or a runspace the script opened), where it cannot record its work, so the run fails. To run items at once use Invoke-RunItem -ThrottleLimit instead of ForEach-Object -Parallel; call Invoke-RunStep, Add-RunArtifact and Get-RunContext in the run script itself. Then resume the run.",
            run.RunId);

    private static RunToolsException RunEnded(string command, RunContext run) =>
        new(ErrorIds.RunEnded, RunToolsErrorCategory.InvalidOperation,
            $"{command} was called after attempt {run.Attempt} of run '{run.RunId}' ended ({run.EndedAt:u}); nothing was recorded. In-script cmdlets record only while Start-Run or Resume-Run runs the script: call them there, not from a script block or a job that outlives the run.",
            run.RunId);

    /// <summary>
    /// Ends the whole run script, not just the statement: a cmdlet's terminating error would let
    /// the script go on to its next step. The reason is left on the context, where the executor
    /// reads it (Stopped for a stop request, Failed otherwise), and the pipeline is stopped, which
    /// no try/catch in the script can swallow.
    /// </summary>
    protected static void Terminate(RunContext context, RunToolsException ex, object? target)
    {
        _ = target;
        if (ex is RunStoppedException stopped)
        {
            context.StopRequest ??= stopped.Request;
        }
        else if (context.Failure is null)
        {
            context.Failure = ex.Message;
            context.FailureCause = ex;
        }

        throw new PipelineStoppedException();
    }

    /// <summary>Ends the run script because a step failed with <paramref name="message"/>, caused by <paramref name="cause"/>.</summary>
    protected static void Fail(RunContext context, string message, Exception cause)
    {
        if (context.Failure is null)
        {
            context.Failure = message;
            context.FailureCause = RunExecutor.Unwrap(cause);
        }

        throw new PipelineStoppedException();
    }

    /// <summary>Runs a script block with $_ set to <paramref name="item"/>, collecting its output.</summary>
    protected static System.Collections.ObjectModel.Collection<PSObject> InvokeWithItem(ScriptBlock block, object? item) =>
        block.InvokeWithContext(null, new System.Collections.Generic.List<PSVariable> { new("_", item) }, item);
}
