using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>Continues a Created, Stopped, Interrupted or Failed run from the first unfinished step or item.</summary>
[Cmdlet(VerbsLifecycle.Resume, "Run", DefaultParameterSetName = RunSelectionSets.ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Resume-Run.md")]
[OutputType(typeof(RunInfo))]
[OutputType(typeof(Job))]
public sealed class ResumeRunCommand : RunExecutionCmdletBase
{
    // The run selection of RunSelectionCmdletBase, declared again because this cmdlet derives from
    // Start-Run's base; the convention tests (tests/Selection.Tests.ps1) hold both to one shape.
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = RunSelectionSets.ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByName)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = RunSelectionSets.ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = RunSelectionSets.ByName, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByInputObject, ValueFromPipeline = true)]
    public RunInfo[] InputObject { get; set; } = Array.Empty<RunInfo>();

    /// <summary>Run directories; one without RunTools state is converted first (see -LegacyFormat).</summary>
    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByPath)]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>With -Path on a directory without RunTools state: the legacy format to convert it from (it is converted first).</summary>
    [Parameter(ParameterSetName = RunSelectionSets.ByPath)]
    [Alias("Format")]
    public LegacyFormat LegacyFormat { get; set; } = LegacyFormat.Auto;

    /// <summary>A config to use instead of re-reading the recorded source file.</summary>
    [Parameter]
    public object? Config { get; set; }

    /// <summary>The script to run instead of the recorded one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ScriptPath { get; set; }

    /// <summary>Each selected run in turn; $LASTEXITCODE says how the last one ended.</summary>
    protected override void ProcessRecord()
    {
        RefuseNested("Resume-Run");
        foreach (var selected in Selected())
        {
            ResumeOne(selected.Run);
        }
    }

    /// <summary>The runs the bound set names; by path, each directory without RunTools state is converted first.</summary>
    private IEnumerable<SelectedRun> Selected() =>
        ParameterSetName != RunSelectionSets.ByPath
            ? SelectRuns(ParameterSetName, RunId, Name, Root, InputObject, Path)
            : Path.Where(Converted).SelectMany(path => SelectRuns(RunSelectionSets.ByPath, RunId, Name, Root, InputObject, new[] { path }));

    /// <summary>A bad selection is no attempt: "refused" in $LASTEXITCODE, as for any other refusal.</summary>
    private protected override void WriteSelectionError(ErrorRecord error)
    {
        SetExitCode(null);
        base.WriteSelectionError(error);
    }

    private void ResumeOne(RunDirectory run)
    {
        if (AsJob)
        {
            if (ShouldProcess(run.RunId, "Resume run as a job"))
            {
                // One job per run, each selecting its run by path (a path always names exactly one run);
                // a run in a database by its RunInfo, which holds the opened run (the job runs in this process).
                bool inDatabase = run.DatabaseRoot is not null;
                WriteObject(StartJob(run.RunId, new Dictionary<string, object?>
                {
                    [nameof(Path)] = inDatabase ? null : new[] { run.Path },
                    [nameof(RunId)] = null,
                    [nameof(Name)] = null,
                    [nameof(Root)] = null,
                    [nameof(InputObject)] = inDatabase ? new[] { RunInfo.From(run, run.ReadState()) } : null,
                }));
            }

            return;
        }

        try
        {
            var state = run.ReadState();
            if (state.Status == RunStatus.Completed && run.Plan().IntegrityProblems.Count == 0)
            {
                WriteWarning($"Run '{run.RunId}' is already completed; nothing was done.");
                SetExitCode(RunStatus.Completed);
                WriteObject(RunInfo.From(run, state));
                return;
            }

            if (!ShouldProcess(run.RunId, "Resume run"))
            {
                return;
            }

            var info = ContinueRun(run, state, ScriptPath, Config, null);
            SetExitCode(info.RunStatus);
            WriteObject(info);
        }
        catch (RunToolsException ex)
        {
            SetExitCodeAfterError();
            WriteError(ToErrorRecord(ex, run.RunId));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            SetExitCodeAfterError();
            WriteError(IoErrorRecord(ex, run.RunId));
        }
        finally
        {
            Executor?.Dispose();
            Executor = null;
        }
    }

    /// <summary>
    /// Resume-Run -Path on a directory an earlier tool wrote (no RunTools state): it is converted
    /// first, with -ScriptPath, -Config and -LegacyFormat, exactly as ConvertTo-Run would. False when
    /// -WhatIf or a declined confirmation stopped the conversion, or it failed (one error written).
    /// </summary>
    private bool Converted(string given)
    {
        try
        {
            string path = ResolvePath(given);
            if (!Directory.Exists(path) || RunDirectory.IsRunDirectory(path))
            {
                return true;
            }

            if (ScriptPath is null)
            {
                throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.InvalidArgument,
                    $"'{path}' has no RunTools state, so Resume-Run converts it first, and that needs the run script that continues it: pass -ScriptPath (and -Config, -LegacyFormat if needed), or convert it with ConvertTo-Run.", path);
            }

            var result = ConvertLegacyDirectory(path, LegacyFormat, null, ResolvePath(ScriptPath), Config);
            if (result is null)
            {
                return false;
            }

            WriteVerbose($"Converted '{path}' from {result.LegacyFormatName}: {result.ItemsCompleted} item(s) recorded as completed; resuming it.");
            return true;
        }
        catch (RunToolsException ex)
        {
            WriteSelectionError(ToErrorRecord(ex, given));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteSelectionError(IoErrorRecord(ex, given));
        }

        return false;
    }
}
