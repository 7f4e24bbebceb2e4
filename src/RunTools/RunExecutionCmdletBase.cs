using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// What Start-Run and Resume-Run share: the script's parameters, the step gate, Ctrl+C, the resume
/// of an existing run (Resume-Run, Start-Run -Resume) and the exit code they leave in $LASTEXITCODE.
/// </summary>
public abstract class RunExecutionCmdletBase : RunCmdletBase
{
    /// <summary>$LASTEXITCODE after a run that completed.</summary>
    internal const int ExitCompleted = 0;

    /// <summary>$LASTEXITCODE after a run that failed.</summary>
    internal const int ExitFailed = 1;

    /// <summary>$LASTEXITCODE after a run that stopped (Stop-Run, -TimeoutSec, the step gate): resumable.</summary>
    internal const int ExitStopped = 3;

    /// <summary>$LASTEXITCODE when no attempt ran: the run is locked by another process, drift, a bad argument...</summary>
    internal const int ExitRefused = 4;

    /// <summary>
    /// Parameters passed to the run script (splatted). They are saved with the run and used again
    /// by a resume that passes none; a Config entry is the run's config.
    /// </summary>
    [Parameter]
    public Hashtable? Parameters { get; set; }

    /// <summary>Run only these steps.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] Step { get; set; } = Array.Empty<string>();

    /// <summary>Run from this step on (steps before it are replayed or skipped).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? FromStep { get; set; }

    /// <summary>Run up to and including this step.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ToStep { get; set; }

    /// <summary>
    /// Seconds this attempt may run; at the limit the run is asked to stop, as Stop-Run asks
    /// (at the next step or item boundary, or after a grace period by stopping the unit in
    /// flight), and ends Stopped: resume it later. 0 (the default): no limit.
    /// </summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int TimeoutSec { get; set; }

    /// <summary>On a resume: continue despite config, parameter or script drift; the drift is journaled.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>On a resume: Retry, Skip, Fail, or a script block that gets the item as $_ and answers Retry/Skip/Fail ($true = it happened, skip it).</summary>
    [Parameter]
    [ValidateNotNull]
    public object InDoubt { get; set; } = InDoubtAction.Retry;

    /// <summary>On a resume: Retry (default) runs items that failed earlier again; Skip sets them aside for good (journaled per key).</summary>
    [Parameter]
    public FailedItemAction Failed { get; set; } = FailedItemAction.Retry;

    /// <summary>
    /// Runs the attempt as a job (in this process, in a runspace of its own) and returns the job at
    /// once; the job's output is the RunInfo, its errors the run's, Stop-Job stops the run as
    /// Stop-Run does. $LASTEXITCODE is not set: the job's State says how the run ended.
    /// </summary>
    [Parameter]
    public SwitchParameter AsJob { get; set; }

    // Not passed on to the cmdlet inside the job: the job itself, what was decided here (ShouldProcess),
    // and what would act on the job's streams rather than on the caller's.
    private static readonly string[] s_notForwarded =
    {
        nameof(AsJob), "WhatIf", "Confirm", "ErrorAction", "WarningAction", "InformationAction", "ProgressAction",
        "ErrorVariable", "WarningVariable", "InformationVariable", "OutVariable", "OutBuffer", "PipelineVariable",
    };

    private RunExecutor? _executor;

    internal RunExecutor? Executor
    {
        get => _executor;
        set
        {
            _executor = value;
            if (value is not null && TimeoutSec > 0)
            {
                value.TimeLimit = TimeSpan.FromSeconds(TimeoutSec);
            }
        }
    }

    internal StepGate? Gate =>
        Step.Length == 0 && FromStep is null && ToStep is null ? null : new StepGate { Only = Step.Length == 0 ? null : Step.ToList(), From = FromStep, To = ToStep };

    /// <summary>Ctrl+C: honoured at the next boundary, and the run script's pipeline is stopped.</summary>
    protected override void StopProcessing() => Executor?.Stop();

    /// <summary>
    /// Called from inside a run script (not as a job, whose runspace is its own): refused before
    /// any run is created, resumed or converted, so a refusal leaves nothing behind (a run created
    /// and failed at once would then be what the next Start-Run -Resume resumes).
    /// </summary>
    private protected void RefuseNested(string what)
    {
        if (AsJob || RunContext.Current is not { } outer)
        {
            return;
        }

        SetExitCode(null);
        ThrowTerminatingError(ToErrorRecord(new RunToolsException(ErrorIds.RunNested, RunToolsErrorCategory.InvalidOperation,
            $"{what} cannot run from inside run '{outer.RunId}': nothing was created or changed. Start it from a separate PowerShell process, or with -AsJob.", outer.RunId)));
    }

    /// <summary>
    /// -AsJob: this cmdlet, with the parameters it was given (<paramref name="overrides"/> win), runs
    /// in a <see cref="RunJob"/> started here and registered for Get-Job, Wait-Job and Receive-Job.
    /// ShouldProcess has been asked by the caller, so the job does not ask again.
    /// </summary>
    internal Job StartJob(string name, IDictionary<string, object?> overrides)
    {
        var parameters = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in MyInvocation.BoundParameters)
        {
            if (!s_notForwarded.Contains(pair.Key, StringComparer.OrdinalIgnoreCase))
            {
                parameters[pair.Key] = (pair.Value is PSObject wrapped ? wrapped.BaseObject : pair.Value) is ScriptBlock block
                    ? UnboundCopy(block)
                    : pair.Value;
            }
        }

        foreach (var pair in overrides)
        {
            // A null override drops the parameter (Resume-Run's job selects its one run by path).
            if (pair.Value is null)
            {
                parameters.Remove(pair.Key);
            }
            else
            {
                parameters[pair.Key] = pair.Value;
            }
        }

        parameters["Confirm"] = new SwitchParameter(false);
        string cmdlet = MyInvocation.MyCommand.Name;
        var job = new RunJob($"{cmdlet} {name}", name, cmdlet, parameters, SessionState.Path.CurrentFileSystemLocation.ProviderPath);
        JobRepository.Add(job);
        job.Start();
        return job;
    }

    /// <summary>
    /// A script block given to a job (-InDoubt), made anew from its text so that it runs in the
    /// job's runspace, as Start-ThreadJob runs its script block: one made here belongs to this
    /// runspace, and invoked from the job's thread it would use this runspace's variables and host
    /// while this pipeline runs (Write-Host in it then hung the job for ever).
    /// </summary>
    private static ScriptBlock UnboundCopy(ScriptBlock block) => ScriptBlock.Create(block.ToString());

    /// <summary>
    /// -Parameters split in two: a Config entry (the run's config, checked as -Config is) and the
    /// rest, which is saved with the run. Null rest: no parameters were given.
    /// </summary>
    internal (object? Config, Hashtable? Others) SplitParameters()
    {
        if (Parameters is null)
        {
            return (null, null);
        }

        object? config = null;
        var rest = new Hashtable(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in Parameters)
        {
            string key = Conversion.Unwrap(entry.Key)?.ToString() ?? string.Empty;
            if (string.Equals(key, "Config", StringComparison.OrdinalIgnoreCase))
            {
                config = entry.Value;
            }
            else
            {
                rest[key] = entry.Value;
            }
        }

        return (config, rest.Count == 0 ? null : rest);
    }

    /// <summary>
    /// The parameters in the form saved with the run (canonical JSON, hashed like the config). A
    /// value that JSON cannot carry back (a script block, a live object) is refused, because a
    /// resume could not pass it again.
    /// </summary>
    internal static EffectiveConfig SaveableParameters(Hashtable parameters)
    {
        var plain = new Hashtable(StringComparer.OrdinalIgnoreCase);
        foreach (DictionaryEntry entry in parameters)
        {
            object? value = Conversion.Unwrap(entry.Value);
            plain[entry.Key] = value is SwitchParameter flag ? flag.IsPresent : entry.Value;
        }

        try
        {
            return EffectiveConfig.FromDictionary(Conversion.UnwrapDictionary(plain));
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.InvalidConfig)
        {
            throw new RunToolsException(ErrorIds.InvalidParameters, RunToolsErrorCategory.InvalidArgument,
                $"-Parameters cannot be saved with the run, so a resume could not pass them again: {ex.Message.Replace("Config value at", "the value of")} Pass plain values (a path rather than a file object) and build live objects inside the run script.", parameters, ex);
        }
    }

    /// <summary>
    /// One attempt on an existing run (Resume-Run, Start-Run -Resume): the script and config as
    /// recorded unless given, the parameters as saved unless given (both drift-checked), -InDoubt
    /// and -Failed as given. Returns the run's final RunInfo (RunFailed is written for a failure).
    /// </summary>
    internal RunInfo ContinueRun(RunDirectory run, RunState state, string? scriptPath, object? configArgument, string? startedBy)
    {
        Executor = null; // this run's own: an earlier run of the pipeline must not decide its exit code
        string script = scriptPath is not null ? ResolvePath(scriptPath) : run.ScriptToRun(state, sameBytes: false);
        if (scriptPath is null && script == run.ScriptPath && state.Script.SourcePath != run.ScriptPath)
        {
            // Another machine, or the file moved: a run in a database resumes with the script it stored.
            WriteVerbose($"Run '{run.RunId}': its script '{state.Script.SourcePath}' is not on this machine; the copy stored in the database is used ({run.ScriptPath}).");
        }

        RequireRegularScript(script);
        if (!File.Exists(script))
        {
            // Name the recorded copy only when there is one to use; else say it is gone too.
            string copy = script != run.ScriptPath && File.Exists(run.ScriptPath)
                ? $" (its recorded copy is {run.ScriptPath})"
                : run.DatabaseRoot is null
                    ? $"; its recorded copy {run.ScriptPath} is missing too (Test-Run reports it)"
                    : "; the database holds no stored copy of it either (Test-Run reports it)";
            throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"The run script of '{run.RunId}' ('{script}') no longer exists. Pass -ScriptPath with the run's script{copy}.", run.RunId);
        }

        object inDoubt = NormalizeInDoubt(InDoubt);
        var (parameterConfig, rest) = SplitParameters();
        configArgument ??= parameterConfig;
        EffectiveConfig? config = configArgument is not null ? LoadConfig(configArgument)
            : state.Config.SourcePath is { } source && (run.DatabaseRoot is null || File.Exists(source)) ? LoadRecordedConfig(run.RunId, source)
            : null; // a hashtable config has only its snapshot; a run in a database without its config file here uses the stored one
        EffectiveConfig? parameters = rest is null ? null : SaveableParameters(rest);
        IDictionary? arguments = rest;
        if (rest is null && run.ReadParameters() is { } saved)
        {
            arguments = saved.ToDictionary();
            WriteVerbose($"Run '{run.RunId}': the run script gets the parameters saved at its start ({string.Join(", ", arguments.Keys.Cast<object>())}).");
        }

        Executor = new RunExecutor(this);
        var options = new AttemptOptions
        {
            Config = config,
            Parameters = parameters,
            Script = File.ReadAllBytes(script),
            ScriptSourcePath = script,
            Force = Force,
            InDoubt = inDoubt is InDoubtAction action ? action : InDoubtAction.Retry,
            InDoubtDecidedPerItem = inDoubt is ScriptBlock,
            FailedItems = Failed,
            DecidedBy = Failed == FailedItemAction.Skip ? DecidedBy() : null,
            StartedBy = startedBy,
            Gate = Gate,
            Cancellation = Executor.Cancellation,
            Observer = new CmdletObserver(this),
        };
        RunState final;
        using (var attempt = run.BeginAttempt(options))
        {
            final = Executor.Execute(run, attempt, script, arguments, inDoubt);
        }

        var info = RunInfo.From(run, run.ReadState());
        WriteFailureIfAny(this, info, final, Executor.FailureCause);
        return info;
    }

    /// <summary>
    /// The exit-code contract (about_RunTools): $global:LASTEXITCODE says how the run ended, so a
    /// job script run by <c>pwsh -File</c> ends with <c>exit $LASTEXITCODE</c>.
    /// </summary>
    /// <summary>
    /// After an error: refused (4) when no attempt ran; failed (1) when one ran and then could not go
    /// on (its store became unavailable, its writes failed, it lost its place).
    /// </summary>
    internal void SetExitCodeAfterError() => SetExitCode(Executor?.Executed == true ? RunStatus.Failed : null);

    internal void SetExitCode(RunStatus? status)
    {
        int code = status switch
        {
            RunStatus.Completed => ExitCompleted,
            RunStatus.Failed => ExitFailed,
            RunStatus.Stopped or RunStatus.Stopping => ExitStopped,
            _ => ExitRefused,
        };
        SessionState.PSVariable.Set("global:LASTEXITCODE", code);
    }

    /// <summary>
    /// A failed run also writes RunFailed so that scheduled tasks see a failure; the error that
    /// failed it (with its own ErrorId, when it is RunTools') is the inner exception.
    /// </summary>
    internal static void WriteFailureIfAny(PSCmdlet cmdlet, RunInfo info, RunState final, Exception? cause)
    {
        if (final.Status == RunStatus.Failed)
        {
            var error = new RunToolsException(ErrorIds.RunFailed, RunToolsErrorCategory.NotSpecified,
                $"Run '{info.RunId}' failed in attempt {info.Attempt}: {RunExecutor.Sentence(final.Error ?? "no reason recorded")} Fix the cause, then resume it with Resume-Run -RunId {info.RunId}; finished work is not redone.", info, cause);
            cmdlet.WriteError(new ErrorRecord(error, ErrorIds.RunFailed, ErrorCategory.NotSpecified, info));
        }
    }

    private static string DecidedBy() => $"{Environment.UserName}@{Environment.MachineName}";

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
