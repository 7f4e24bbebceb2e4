using System;
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

    /// <summary>With -Path on a directory without RunTools state: the legacy layout to import it as (it is converted first).</summary>
    [Parameter(ParameterSetName = ByPath)]
    public LegacyFormat Format { get; set; } = LegacyFormat.Auto;

    /// <summary>A config to use instead of re-reading the recorded source file.</summary>
    [Parameter]
    public object? Config { get; set; }

    /// <summary>The script to run instead of the recorded one.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ScriptPath { get; set; }

    /// <summary>Continue despite config or script drift; the drift is journaled.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>Retry, Skip, Fail, or a script block that gets the item as $_ and answers Retry/Skip/Fail ($true = it happened, skip it).</summary>
    [Parameter]
    [ValidateNotNull]
    public object InDoubt { get; set; } = InDoubtAction.Retry;

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
            WriteError(ToErrorRecord(ex, (object?)InputObject ?? Path ?? RunId));
            return;
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(IoErrorRecord(ex, Path));
            return;
        }

        try
        {
            var state = run.ReadState();
            if (state.Status == RunStatus.Completed && run.Plan().IntegrityProblems.Count == 0)
            {
                WriteWarning($"Run '{run.RunId}' is already completed; nothing was done.");
                WriteObject(RunInfo.From(run, state));
                return;
            }

            if (!ShouldProcess(run.RunId, "Resume run"))
            {
                return;
            }

            string script = ScriptPath is not null ? ResolvePath(ScriptPath) : state.Script.SourcePath ?? string.Empty;
            RequireRegularScript(script);
            if (!File.Exists(script))
            {
                throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"The run script of '{run.RunId}' ('{script}') no longer exists. Pass -ScriptPath (its recorded copy is {run.ScriptPath}).", run.RunId);
            }

            object inDoubt = NormalizeInDoubt(InDoubt);
            EffectiveConfig? config = Config is not null ? LoadConfig(Config)
                : state.Config.SourcePath is { } source ? LoadRecordedConfig(run.RunId, source)
                : null; // a hashtable config has only its snapshot
            Executor = new RunExecutor(this);
            var options = new AttemptOptions
            {
                Config = config,
                Script = File.ReadAllBytes(script),
                ScriptSourcePath = script,
                Force = Force,
                InDoubt = inDoubt is InDoubtAction action ? action : InDoubtAction.Retry,
                InDoubtDecidedPerItem = inDoubt is ScriptBlock,
                Gate = Gate,
                Cancellation = Executor.Cancellation,
                Observer = new CmdletObserver(this),
            };
            RunState final;
            using (var attempt = run.BeginAttempt(options))
            {
                final = Executor.Execute(run, attempt, script, Parameters, inDoubt);
            }

            var info = RunInfo.From(run, run.ReadState());
            StartRunCommand.WriteFailureIfAny(this, info, final, Executor.FailureCause);
            WriteObject(info);
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, run.RunId));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
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
    /// first, with -ScriptPath, -Config and -Format, exactly as ConvertTo-Run would. False when
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
                $"'{path}' has no RunTools state, so Resume-Run converts it first, and that needs the run script that continues it: pass -ScriptPath (and -Config, -Format if needed), or convert it with ConvertTo-Run.", path);
        }

        var result = ConvertLegacyDirectory(path, Format, null, ResolvePath(ScriptPath), Config);
        if (result is null)
        {
            return false;
        }

        WriteVerbose($"Converted '{path}' from {result.SourceFormat}: {result.ItemsCompleted} item(s) imported as completed; resuming it.");
        return true;
    }

    /// <summary>-InDoubt as typed: Retry/Skip/Fail (any case) or a script block.</summary>
    private static object NormalizeInDoubt(object value)
    {
        value = Conversion.Unwrap(value) ?? InDoubtAction.Retry;
        return value switch
        {
            InDoubtAction or ScriptBlock => value,
            string text when Enum.TryParse(text, ignoreCase: true, out InDoubtAction parsed) && Enum.IsDefined(typeof(InDoubtAction), parsed) => parsed,
            _ => throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"-InDoubt takes Retry, Skip, Fail or a script block that decides per item; it was given '{value}'.", value),
        };
    }

    private EffectiveConfig LoadRecordedConfig(string runId, string source)
    {
        if (!File.Exists(source))
        {
            throw new InvalidConfigException(
                $"The config file of run '{runId}' ('{source}') no longer exists, so drift cannot be checked. Pass -Config with the config to use.", source);
        }

        return LoadConfigFile(source);
    }
}
