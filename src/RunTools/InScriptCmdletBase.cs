using System;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>The cmdlets used inside run scripts: they need the current run, and turn a stop request into a clean unwind.</summary>
public abstract class InScriptCmdletBase : RunCmdletBase
{
    /// <summary>The run this script executes in; a terminating NotInRun error outside Start-Run/Resume-Run.</summary>
    protected RunContext RequireContext()
    {
        var context = RunContext.Current;
        if (context is null)
        {
            ThrowTerminatingError(new ErrorRecord(
                new InvalidOperationException($"{MyInvocation.MyCommand.Name} works only inside a run script started by Start-Run or Resume-Run."),
                ErrorIds.NotInRun, ErrorCategory.InvalidOperation, null));
        }

        return context!;
    }

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
