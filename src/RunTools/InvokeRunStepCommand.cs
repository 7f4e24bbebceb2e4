using System;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>Inside a run script: runs a named step once per run; on resume a completed step is skipped and its recorded output emitted again.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "RunStep")]
[OutputType(typeof(object))]
public sealed class InvokeRunStepCommand : InScriptCmdletBase
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
    [ValidateNotNull]
    public string[] Output { get; set; } = Array.Empty<string>();

    protected override void EndProcessing()
    {
        var context = RequireContext();
        var engine = context.Engine;
        StepAction action = StepAction.GatedOut;
        try
        {
            action = engine.BeginStep(Name);
        }
        catch (RunToolsException ex)
        {
            Terminate(context, ex, Name);
        }

        switch (action)
        {
            case StepAction.Replay:
                WriteVerbose($"Step '{Name}' completed earlier; emitting its recorded output.");
                foreach (object? value in Conversion.Deserialize(engine.ReadStepOutput(Name)))
                {
                    WriteObject(value);
                }

                return;
            case StepAction.GatedOut:
                WriteVerbose($"Step '{Name}' is outside the step gate (-Step/-FromStep/-ToStep); it was not run.");
                return;
        }

        System.Collections.ObjectModel.Collection<PSObject> output;
        try
        {
            output = ScriptBlock.Invoke();
        }
        catch (Exception ex) when (ex is RuntimeException && RunExecutor.Unwrap(ex) is RunStoppedException stopped)
        {
            // A stop met at an item boundary inside this step: the step stays pending.
            Terminate(context, stopped, Name);
            return;
        }
        catch (Exception ex) when (ex is RuntimeException && ex is not PipelineStoppedException)
        {
            string message = $"step '{Name}' failed: {ex.Message}{RunExecutor.Position(ex)}";
            if (engine.ActiveStep == Name)
            {
                engine.FailStep(Name, message);
            }

            Fail(context, message, ex);
            return;
        }

        if (Output.Length > 0)
        {
            try
            {
                engine.RecordStepOutputs(Name, Output);
            }
            catch (RunToolsException ex) when (ex.ErrorId is ErrorIds.OutputNotFound or ErrorIds.NotRegularFile)
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
            byte[] recorded = Conversion.Serialize(output);
            engine.CompleteStep(Name, recorded, "clixml");

            // Emit what was recorded, so a first run and a replay give later steps the same values.
            foreach (object? value in Conversion.Deserialize(recorded))
            {
                WriteObject(value);
            }
        }
        catch (RunToolsException ex)
        {
            Terminate(context, ex, Name);
        }
    }
}
