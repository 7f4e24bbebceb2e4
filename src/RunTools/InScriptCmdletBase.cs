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
    /// A Core error ends the script: a stop request is remembered (so the run records Stopped even
    /// if the script catches the error) and rethrown as a terminating error.
    /// </summary>
    protected void Terminate(RunContext context, RunToolsException ex, object? target)
    {
        if (ex is RunStoppedException stopped)
        {
            context.StopRequest = stopped.Request;
        }

        ThrowTerminatingError(ToErrorRecord(ex, target));
    }

    /// <summary>Runs a script block with $_ set to <paramref name="item"/>, collecting its output.</summary>
    protected static System.Collections.ObjectModel.Collection<PSObject> InvokeWithItem(ScriptBlock block, object? item) =>
        block.InvokeWithContext(null, new System.Collections.Generic.List<PSVariable> { new("_", item) }, item);
}
