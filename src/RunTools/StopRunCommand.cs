using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Requests a cooperative stop: the run ends at its next step or item boundary with status Stopped.</summary>
[Cmdlet(VerbsLifecycle.Stop, "Run", DefaultParameterSetName = RunSelectionSets.ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Stop-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class StopRunCommand : RunSelectionCmdletBase
{
    [Parameter]
    public string? Reason { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var selected in SelectRuns())
        {
            // By name, a run that is not running is not an error: there is nothing to stop.
            if (selected.State is { Status: not (RunStatus.Running or RunStatus.Stopping) } state)
            {
                WriteVerbose($"Run '{selected.Run.RunId}' is {state.Status}, not running; it is left as it is.");
                continue;
            }

            StopOne(selected.Run, selected.Target);
        }
    }

    private void StopOne(RunDirectory run, object target)
    {
        try
        {
            var state = run.ReadState();
            if (state.Status is not (RunStatus.Running or RunStatus.Stopping))
            {
                WriteError(ToErrorRecord(new RunToolsException(ErrorIds.RunNotRunning, RunToolsErrorCategory.InvalidOperation,
                    $"Run '{run.RunId}' is {state.Status}, not running; there is nothing to stop.", run.RunId)));
                return;
            }

            if (ShouldProcess(run.RunId, "Request stop"))
            {
                var request = run.RequestStop(Reason);
                WriteVerbose($"Stop requested for {run.RunId} by {request.RequestedBy}; it stops at its next step or item boundary.");
            }

            if (PassThru)
            {
                WriteObject(RunInfo.From(run, run.ReadState()));
            }
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, target));
        }
    }
}
