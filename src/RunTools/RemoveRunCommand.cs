using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// Deletes run directories, by id, by RunInfo, or by name, status and age (retention:
/// <c>Remove-Run -Status Completed -Before (Get-Date).AddDays(-30)</c>); never a running run.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "Run", DefaultParameterSetName = ById, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "Remove-Run.md")]
[OutputType(typeof(void))]
public sealed class RemoveRunCommand : RunCmdletBase
{
    private const string ById = "ById";
    private const string ByInput = "ByInputObject";
    private const string ByFilter = "ByFilter";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    /// <summary>Runs whose name matches (wildcards); with -Status and -Before, runs matching all that are given.</summary>
    [Parameter(ParameterSetName = ByFilter)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = ByFilter)]
    [ValidateNotNullOrEmpty]
    public RunStatus[] Status { get; set; } = Array.Empty<RunStatus>();

    /// <summary>Runs last updated before this time.</summary>
    [Parameter(ParameterSetName = ByFilter)]
    public DateTime? Before { get; set; }

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ByFilter)]
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

        if (ParameterSetName == ByFilter)
        {
            RemoveMatching();
            return;
        }

        foreach (string id in RunId)
        {
            RemoveOne(() => new RunsRoot(ResolveRoot(Root)).OpenRun(id), id);
        }
    }

    private void RemoveMatching()
    {
        if (Name.Length == 0 && Status.Length == 0 && Before is null)
        {
            // Without any filter the set would be every run under the root: too easy to type by mistake.
            ThrowTerminatingError(new ErrorRecord(
                new PSArgumentException("Remove-Run needs -RunId, a RunInfo from the pipeline, or at least one of -Name, -Status and -Before. To remove every run, say so: Get-Run | Remove-Run."),
                ErrorIds.InvalidArgument, ErrorCategory.InvalidArgument, null));
            return;
        }

        var listings = Name.Length > 0
            ? RunsNamed(Name, Root, reportNoMatch: false)
            : ListUnder(Root);
        foreach (var listing in listings.ToList())
        {
            if (listing.Error is not null)
            {
                WriteError(ToErrorRecord(listing.Error));
                continue;
            }

            var state = listing.State!;
            if ((Status.Length > 0 && Array.IndexOf(Status, state.Status) < 0) || !GetRunCommand.UpdatedBefore(state, Before))
            {
                continue;
            }

            RemoveOne(() => listing.Run, listing.Run.RunId);
        }
    }

    private System.Collections.Generic.IEnumerable<RunListing> ListUnder(string? root)
    {
        string rootPath = ResolveRoot(root);
        try
        {
            RequireRootDirectory(rootPath);
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
        }

        return new RunsRoot(rootPath).ListRuns();
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
