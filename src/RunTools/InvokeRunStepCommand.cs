using System;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>Inside a run script: runs a named step once per run; on resume a completed step is skipped and its recorded output emitted again.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "RunStep", HelpUri = HelpLinks.Pages + "Invoke-RunStep.md")]
[OutputType(typeof(object))]
public sealed class InvokeRunStepCommand : UnitCmdletBase
{
    [Parameter(Mandatory = true, Position = 0)]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    /// <summary>
    /// Files the step writes (paths or globs, relative to the run directory): checked and recorded
    /// when the step completes, and read by ConvertTo-Run to tell whether the step already ran.
    /// </summary>
    [Parameter]
    [Alias("Output")]
    [ValidateNotNull]
    public string[] OutputFile { get; set; } = Array.Empty<string>();

    protected override void EndProcessing()
    {
        var context = RequireContext();
        var engine = context.Engine;
        StepAction action = StepAction.GatedOut;
        WriteProgress(RunProgress.ForStep(context, Name));
        try
        {
            action = engine.BeginStep(Name, step => DecideInDoubt(context, step));
        }
        catch (RunToolsException ex)
        {
            Terminate(context, ex, Name);
        }

        switch (action)
        {
            case StepAction.Replay:
                WriteVerbose($"Step '{Name}' completed earlier; emitting its recorded output.");
                try
                {
                    EmitRecorded(engine.StepOutputFile(Name));
                }
                catch (Exception ex) when (IsIoError(ex))
                {
                    Terminate(context, new RunToolsException(ErrorIds.FileUnreadable, RunToolsErrorCategory.ReadError,
                        $"The recorded output of step '{Name}' could not be read: {ex.Message} Run Test-Run on the run; resuming with -Force after restoring the file replays it.", Name, ex), Name);
                }

                return;
            case StepAction.GatedOut:
                WriteVerbose($"Step '{Name}' is outside the step gate (-Step/-FromStep/-ToStep); it was not run.");
                return;
            case StepAction.Skip:
                WriteVerbose($"Step '{Name}' was in doubt and is skipped as done; it has no recorded output, so nothing is emitted.");
                return;
        }

        string outputFile = string.Empty;
        var tries = NewTries(engine);
        tries.BeginTry = tryNumber =>
        {
            try
            {
                return engine.BeginStep(Name, null, itemsOnly: false, tryNumber) == StepAction.Run;
            }
            catch (RunToolsException ex)
            {
                Terminate(context, ex, Name);
                return false;
            }
        };
        var transient = tries.IsTransient;

        // A step an inner failure has already closed (not the active step any more) is not retried.
        tries.IsTransient = ex => engine.ActiveStep == Name && transient(ex);
        tries.RecordFailure = (ex, tryNumber, wait) =>
        {
            bool timedOut = RunExecutor.Unwrap(ex) is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };
            if (engine.ActiveStep == Name)
            {
                engine.FailStep(Name, Failure(StepFailed(ex), ex, timedOut, tryNumber, wait));
            }

            return true;
        };
        tries.Waiting = (ex, tryNumber, delay) =>
            WriteVerbose($"Step '{Name}' failed on try {tryNumber} of {MaxTries} ({ex.Message}); trying again in {delay.TotalSeconds:0.###} s.");
        var outcome = tries.Run(_ =>
        {
            try
            {
                outputFile = engine.NewStepOutputFile(Name);
            }
            catch (Exception ex) when (ex is RunToolsException || IsIoError(ex))
            {
                Terminate(context, ex as RunToolsException ?? new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                    $"Step '{Name}' could not create its output file: {ex.Message} Free disk space or fix permissions, then resume the run.", Name, ex), Name);
            }

            try
            {
                RunStreamed(outputFile);
                return null;
            }
            catch (Exception ex) when (ex is RuntimeException && RunExecutor.Unwrap(ex) is RunStoppedException stopped)
            {
                // A stop met at an item boundary inside this step: the step stays pending.
                Terminate(context, stopped, Name);
                return null;
            }
            catch (Exception ex) when (InvokeRunItemCommand.IsUnitFailure(ex))
            {
                TryDelete(outputFile);
                return ex;
            }
        });
        switch (outcome.End)
        {
            case UnitTriesEnd.NotTried:
                return;
            case UnitTriesEnd.Stopped:
                Terminate(context, (RunToolsException)outcome.Error!, Name);
                return;
            case UnitTriesEnd.Interrupted:
                throw new PipelineStoppedException();
            case UnitTriesEnd.Failed:
                Fail(context, StepFailed(outcome.Error!), RunExecutor.Cause(outcome.Error!, MyInvocation.ScriptName));
                return;
        }

        if (context.Misuse is { } misuse)
        {
            // A call from another runspace during the body could not record its work: the step is not done.
            TryDelete(outputFile);
            string message = $"step '{Name}' failed: {misuse.Message}";
            engine.FailStep(Name, message);
            Fail(context, message, misuse);
            return;
        }

        if (OutputFile.Length > 0)
        {
            try
            {
                engine.RecordOutputFiles(Name, OutputFile);
            }
            catch (RunToolsException ex) when (ex.ErrorId is ErrorIds.OutputFileNotFound or ErrorIds.NotRegularFile)
            {
                string message = $"step '{Name}' failed: {ex.Message}";
                engine.FailStep(Name, message);
                Fail(context, message, ex);
                return;
            }
            catch (RunToolsException ex)
            {
                Terminate(context, ex, Name);
            }
        }

        try
        {
            if (IsEmptyOutput(outputFile))
            {
                // A step that wrote nothing records no output file: no copy, hash and flushes for it.
                TryDelete(outputFile);
                engine.CompleteStep(Name, null);
            }
            else
            {
                engine.CompleteStepFromFile(Name, outputFile, "clixml");
            }
        }
        catch (RunToolsException ex)
        {
            TryDelete(outputFile);
            Terminate(context, ex, Name);
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            // Ends the run here: left to the script, the next step would only report "Steps do not nest".
            TryDelete(outputFile);
            Terminate(context, new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"Step '{Name}' could not record its output: {ex.Message} Free disk space or fix permissions, then resume the run; the step runs again.", Name, ex), Name);
        }

        // Emit what was recorded, so a first run and a replay give later steps the same values.
        try
        {
            EmitRecorded(engine.StepOutputFile(Name));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            Terminate(context, new RunToolsException(ErrorIds.FileUnreadable, RunToolsErrorCategory.ReadError,
                $"The recorded output of step '{Name}' could not be read back: {ex.Message} The step is recorded as completed; run Test-Run on the run.", Name, ex), Name);
        }
    }

    // The step's output goes straight to its file as CliXml (Export-Clixml streams), so memory does
    // not grow with the volume of output; the module-qualified name cannot be shadowed by a function.
    private const string StreamToFile = (
        "param($__runToolsBody, $__runToolsPath, $__runToolsDepth) & $__runToolsBody | Microsoft.PowerShell.Utility\\Export-Clixml -LiteralPath $__runToolsPath -Depth $__runToolsDepth -Encoding utf8NoBOM");

    private const string ReadFile = (
        "param($__runToolsPath, $__runToolsSink) Microsoft.PowerShell.Utility\\Import-Clixml -LiteralPath $__runToolsPath | ForEach-Object { $__runToolsSink.Invoke($_) }");

    /// <summary>Whether Export-Clixml wrote a document of no objects (&lt;Objs ... /&gt;).</summary>
    private static bool IsEmptyOutput(string path)
    {
        var info = new System.IO.FileInfo(path);
        if (!info.Exists || info.Length > 256)
        {
            return false;
        }

        string text = System.IO.File.ReadAllText(path).Trim();
        return text.Length == 0 || (text.StartsWith("<Objs ", StringComparison.Ordinal) && text.EndsWith("/>", StringComparison.Ordinal) && text.IndexOf('<', 1) < 0);
    }

    private static void TryDelete(string path)
    {
        try
        {
            System.IO.File.Delete(path);
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            // Left for the next owner, which removes temp files when it begins.
        }
    }

    private void RunStreamed(string outputFile)
    {
        if (TimeoutSec == 0)
        {
            ScriptBlock.Create(StreamToFile).Invoke(ScriptBlock, outputFile, Conversion.OutputDepth);
            return;
        }

        using var shell = PowerShell.Create(RunspaceMode.CurrentRunspace);
        shell.AddScript(StreamToFile).AddArgument(ScriptBlock).AddArgument(outputFile).AddArgument(Conversion.OutputDepth);
        InvokeNested(shell, out _);
    }

    /// <summary>
    /// Emits a recorded output file one object at a time. Each top-level object is one output;
    /// a file holding a single list (the format before outputs were streamed, and a step whose
    /// one output is a list) emits the list's elements, as replays always have.
    /// </summary>
    private void EmitRecorded(string? path)
    {
        if (path is null)
        {
            return;
        }

        int count = 0;
        object? first = null;
        ScriptBlock.Create(ReadFile).Invoke(path, new Action<object?>(value =>
        {
            count++;
            if (count == 1)
            {
                first = value;
                return;
            }

            if (count == 2)
            {
                WriteObject(first);
            }

            WriteObject(value);
        }));

        if (count == 1)
        {
            if (first is PSObject { BaseObject: System.Collections.ArrayList list })
            {
                foreach (object? item in list)
                {
                    WriteObject(item);
                }
            }
            else
            {
                WriteObject(first);
            }
        }
    }

    /// <summary>-InDoubt for a step: the policy, or the script block with $_ = the step (a StepRef: Step, Attempt, Kind = 'Step').</summary>
    private static InDoubtAction DecideInDoubt(RunContext context, Core.State.StepRef step)
    {
        if (context.InDoubt is not System.Management.Automation.ScriptBlock decider)
        {
            return context.InDoubt is InDoubtAction action ? action : InDoubtAction.Retry;
        }

        var answer = InvokeWithItem(decider, step);
        return InvokeRunItemCommand.ReadAnswer(answer, $"step '{step.Step}'", step.Step);
    }

    /// <summary>What step_failed and RunFailed say for a failed try of this step.</summary>
    private string StepFailed(Exception ex) => $"step '{Name}' failed: {RunExecutor.Explain(ex, MyInvocation.ScriptName)}";
}
