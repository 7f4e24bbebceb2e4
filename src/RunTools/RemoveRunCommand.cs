using System;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Deletes a run directory; never a running run.</summary>
[Cmdlet(VerbsCommon.Remove, "Run", DefaultParameterSetName = ById, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High)]
[OutputType(typeof(void))]
public sealed class RemoveRunCommand : RunCmdletBase
{
    private const string ById = "ById";
    private const string ByInput = "ByInputObject";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    protected override void ProcessRecord()
    {
        if (InputObject is not null)
        {
            RemoveOne(() => RunDirectory.Open(InputObject.Path), InputObject.RunId);
            return;
        }

        foreach (string id in RunId)
        {
            RemoveOne(() => new RunsRoot(ResolveRoot(Root)).OpenRun(id), id);
        }
    }

    private void RemoveOne(Func<RunDirectory> find, string id)
    {
        try
        {
            var run = find();
            if (ShouldProcess(run.Path, "Delete run"))
            {
                run.Delete();
            }
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, id));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(new ErrorRecord(ex, ErrorIds.WriteFailed, ErrorCategory.WriteError, id));
        }
    }
}
