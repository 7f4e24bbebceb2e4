using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>
/// Deletes run directories, by id, name, RunInfo or path, or by status and age (retention:
/// <c>Remove-Run -Status Completed -Before (Get-Date).AddDays(-30)</c>); never a running run.
/// </summary>
[Cmdlet(VerbsCommon.Remove, "Run", DefaultParameterSetName = RunSelectionSets.ById, SupportsShouldProcess = true, ConfirmImpact = ConfirmImpact.High, HelpUri = HelpLinks.Pages + "Remove-Run.md")]
[OutputType(typeof(void))]
public sealed class RemoveRunCommand : RunSelectionCmdletBase
{
    /// <summary>-Status and -Before without -Name: every run under the root that matches them.</summary>
    private const string ByFilter = "ByFilter";

    /// <summary>With -Name, only the named runs in these states; without, every run under the root in them.</summary>
    [Parameter(ParameterSetName = RunSelectionSets.ByName)]
    [Parameter(ParameterSetName = ByFilter)]
    [ValidateNotNullOrEmpty]
    public RunStatus[] Status { get; set; } = Array.Empty<RunStatus>();

    /// <summary>Runs last updated before this time.</summary>
    [Parameter(ParameterSetName = RunSelectionSets.ByName)]
    [Parameter(ParameterSetName = ByFilter)]
    public DateTime? Before { get; set; }

    /// <summary>The base's -Root, also in the filter set (declared again because an attribute cannot be added to an inherited property).</summary>
    [Parameter(ParameterSetName = RunSelectionSets.ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = RunSelectionSets.ByName, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ByFilter)]
    [ValidateNotNullOrEmpty]
    public override string? Root { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByFilter)
        {
            RemoveMatching();
            return;
        }

        foreach (var selected in SelectRuns())
        {
            // -Status and -Before narrow a selection by name; what they leave out is not an error.
            if (selected.State is { } state && !Matches(state))
            {
                continue;
            }

            RemoveOne(selected.Run, selected.Target);
        }
    }

    private bool Matches(RunState state) =>
        (Status.Length == 0 || Array.IndexOf(Status, state.Status) >= 0) && GetRunCommand.UpdatedBefore(state, Before);

    private void RemoveMatching()
    {
        if (Status.Length == 0 && Before is null)
        {
            // Without any filter the set would be every run under the root: too easy to type by mistake.
            ThrowTerminatingError(new ErrorRecord(
                new PSArgumentException("Remove-Run needs -RunId, -Name, -Path, a RunInfo from the pipeline, or at least one of -Status and -Before. To remove every run, say so: Get-Run | Remove-Run."),
                ErrorIds.InvalidArgument, ErrorCategory.InvalidArgument, null));
            return;
        }

        List<(RunDirectory Run, RunState? State, RunToolsException? Error)> listings;
        try
        {
            var location = ResolveRootLocation(Root);
            if (location.Kind == RootKind.Folder)
            {
                RequireRootDirectory(location.FolderPath!);
                listings = new RunsRoot(location.FolderPath!).ListRuns().Select(l => (l.Run, l.State, l.Error)).ToList();
            }
            else
            {
                // The status filter runs in SQL; every run is matched again below.
                listings = RunCatalogs.Open(location).EnumerateRuns(new RunFilter { Statuses = Status }, l => (l.Run, l.State, l.Error)).ToList();
            }
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            return;
        }

        foreach (var (run, state, error) in listings)
        {
            if (error is not null)
            {
                WriteError(ToErrorRecord(error));
                continue;
            }

            if (Matches(state!))
            {
                RemoveOne(run, run.RunId);
            }
        }
    }

    private void RemoveOne(RunDirectory run, object target)
    {
        try
        {
            if (ShouldProcess(run.DatabaseRoot is { } database ? $"{run.RunId} in {database}" : run.Path, "Delete run"))
            {
                run.Delete();
            }
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, target));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(new ErrorRecord(ex, ErrorIds.WriteFailed, ErrorCategory.WriteError, target));
        }
    }
}
