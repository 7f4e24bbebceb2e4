using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Requests a cooperative stop: the run ends at its next step or item boundary with status Stopped.</summary>
[Cmdlet(VerbsLifecycle.Stop, "Run", DefaultParameterSetName = ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Stop-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class StopRunCommand : RunCmdletBase
{
    private const string ById = "ById";
    private const string ByName = "ByName";
    private const string ByInput = "ByInputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = ByName)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ByName)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    [Parameter]
    public string? Reason { get; set; }

    [Parameter]
    public SwitchParameter PassThru { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByName)
        {
            // Nothing running under a name is not an error: there is nothing to stop.
            foreach (var listing in RunsNamed(Name, Root, reportNoMatch: false))
            {
                if (listing.State!.Status is RunStatus.Running or RunStatus.Stopping)
                {
                    StopOne(listing.Run);
                }
            }

            return;
        }

        if (InputObject is not null)
        {
            StopOne(RunDirectory.Open(InputObject.Path));
            return;
        }

        foreach (string id in RunId)
        {
            try
            {
                StopOne(new RunsRoot(ResolveRoot(Root)).OpenRun(id));
            }
            catch (RunToolsException ex)
            {
                WriteError(ToErrorRecord(ex, id));
            }
        }
    }

    private void StopOne(RunDirectory run)
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
            WriteError(ToErrorRecord(ex, run.RunId));
        }
    }
}
