using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>Continues a Created, Stopped, Interrupted or Failed run from the first unfinished step or item.</summary>
[Cmdlet(VerbsLifecycle.Resume, "Run", DefaultParameterSetName = ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Resume-Run.md")]
[OutputType(typeof(RunInfo))]
[OutputType(typeof(Job))]
public sealed class ResumeRunCommand : RunExecutionCmdletBase
{
    private const string ById = "ById";
    private const string ByInput = "ByInputObject";
    private const string ByPath = "ByPath";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string RunId { get; set; } = string.Empty;

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>With -Path on a directory without RunTools state: the legacy format to convert it from (it is converted first).</summary>
    [Parameter(ParameterSetName = ByPath)]
    [Alias("Format")]
    public LegacyFormat LegacyFormat { get; set; } = LegacyFormat.Auto;

    /// <summary>A config to use instead of re-reading the recorded source file.</summary>
    [Parameter]
    public object? Config { get; set; }

    /// <summary>The script to run instead of the recorded one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ScriptPath { get; set; }

    protected override void ProcessRecord()
    {
        RunDirectory run;
        try
        {
            if (Path is not null && !ConvertFirst())
            {
                return;
            }

            run = FindRun(RunId, Root, InputObject, Path);
        }
        catch (RunToolsException ex)
        {
            SetExitCode(null);
            WriteError(ToErrorRecord(ex, (object?)InputObject ?? Path ?? RunId));
            return;
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            SetExitCode(null);
            WriteError(IoErrorRecord(ex, Path));
            return;
        }

        if (AsJob)
        {
            if (ShouldProcess(run.RunId, "Resume run as a job"))
            {
                WriteObject(StartJob(run.RunId, new Dictionary<string, object?>()));
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
            SetExitCode(null);
            WriteError(ToErrorRecord(ex, run.RunId));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            SetExitCode(null);
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
    /// -WhatIf or a declined confirmation stopped the conversion.
    /// </summary>
    private bool ConvertFirst()
    {
        string path = ResolvePath(Path!);
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
}
