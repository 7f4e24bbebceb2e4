using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>
/// Creates a run directory and executes the run script in it, in this process; with -Resume,
/// continues the newest unfinished run of the same name instead, when there is one (the
/// scheduled-task pattern).
/// </summary>
[Cmdlet(VerbsLifecycle.Start, "Run", SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Start-Run.md")]
[OutputType(typeof(RunInfo))]
[OutputType(typeof(Job))]
public sealed class StartRunCommand : RunExecutionCmdletBase
{
    /// <summary>Written as started_by in attempt_started when -Resume chose what to do.</summary>
    internal const string StartOrResume = "start-or-resume";

    [Parameter(Mandatory = true, Position = 0)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [ValidateNotNullOrEmpty]
    public string Name { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string ScriptPath { get; set; } = string.Empty;

    /// <summary>A .json, .yaml, .yml or .psd1 file, or a hashtable.</summary>
    [Parameter]
    public object? Config { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? RunId { get; set; }

    /// <summary>Continue the newest unfinished run with this name under the root, if there is one; start a new run only when there is none.</summary>
    [Parameter]
    public SwitchParameter Resume { get; set; }

    protected override void EndProcessing()
    {
        RefuseNested($"Start-Run of '{Name}'");
        RootLocation location;
        try
        {
            location = ResolveRootLocation(Root);
            if (location.Kind == RootKind.Folder)
            {
                RequireRootDirectory(location.FolderPath!);
            }
        }
        catch (RunToolsException ex)
        {
            SetExitCode(null);
            ThrowTerminatingError(ToErrorRecord(ex));
            return;
        }

        string root = location.Display;
        string script = ResolvePath(ScriptPath);
        RunStatus? outcome = null;
        try
        {
            RequireResumeForResumeOptions();
            if (AsJob)
            {
                if (ShouldProcess($"{Name} in {root}", Resume ? "Start or resume run as a job" : "Start run as a job"))
                {
                    // The job gets the root as given (a database URI keeps its password), a folder resolved here.
                    string rootArgument = location.Kind == RootKind.Folder ? location.FolderPath! : Root ?? Environment.GetEnvironmentVariable(RootVariable)!;
                    WriteObject(StartJob(Name, new Dictionary<string, object?> { [nameof(Root)] = rootArgument }));
                }

                return;
            }

            if (Resume && FindUnfinished(location) is { } unfinished)
            {
                var (run, state) = unfinished;
                if (!ShouldProcess($"{run.RunId} ({state.Status}) in {root}", "Resume run"))
                {
                    return;
                }

                WriteVerbose($"Resuming run {run.RunId} (was {state.Status} after attempt {state.Attempt}): the newest unfinished run named '{Name}' under {root}.");
                var resumed = ContinueRun(run, state, ScriptPath, Config, StartOrResume);
                outcome = resumed.RunStatus;
                WriteObject(resumed);
                return;
            }

            if (!ShouldProcess($"{Name} in {root}", "Start run"))
            {
                return;
            }

            if (Resume)
            {
                WriteVerbose($"No unfinished run named '{Name}' under {root}; starting a new run.");
            }

            var info = StartNew(location, script);
            outcome = info.RunStatus;
            WriteObject(info);
        }
        catch (RunToolsException ex)
        {
            SetExitCodeAfterError();
            ThrowTerminatingError(ToErrorRecord(ex));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            SetExitCodeAfterError();
            ThrowTerminatingError(IoErrorRecord(ex, script));
        }
        finally
        {
            if (outcome is not null)
            {
                SetExitCode(outcome);
            }

            Executor?.Dispose();
        }
    }

    private RunInfo StartNew(RootLocation root, string script)
    {
        RequireRegularScript(script);
        if (!File.Exists(script))
        {
            throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"Run script '{script}' does not exist. Check -ScriptPath.", script);
        }

        var (parameterConfig, rest) = SplitParameters();
        if (Config is not null && parameterConfig is not null)
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                "The config was given twice, with -Config and in -Parameters @{Config=...}; pass it once.", Name);
        }

        var config = LoadConfig(Config ?? parameterConfig);
        var parameters = rest is null ? null : SaveableParameters(rest);
        byte[] scriptBytes = File.ReadAllBytes(script);
        var create = new RunCreateOptions
        {
            Name = Name,
            RunId = RunId,
            Config = config,
            Parameters = parameters,
            Script = scriptBytes,
            ScriptSourcePath = script,
        };
        var run = root.Kind == RootKind.Folder ? new RunsRoot(root.FolderPath!).CreateRun(create) : RunCatalogs.Open(root).CreateRun(create);
        WriteVerbose(run.DatabaseRoot is { } database
            ? $"Created run {run.RunId} in {database} (local folder {run.Path})."
            : $"Created run {run.RunId} in {run.Path}.");
        Executor = new RunExecutor(this);
        var options = new AttemptOptions
        {
            Gate = Gate,
            StartedBy = Resume ? StartOrResume : null,
            Cancellation = Executor.Cancellation,
            Observer = new CmdletObserver(this),
        };
        RunState final;
        using (var attempt = run.BeginAttempt(options))
        {
            final = Executor.Execute(run, attempt, script, rest, null);
        }

        var info = RunInfo.From(run, run.ReadState());
        WriteFailureIfAny(this, info, final, Executor.FailureCause);
        return info;
    }

    /// <summary>
    /// The newest run named <see cref="Name"/> (with -RunId: that run) that is not Completed. A
    /// Running one is returned too: its attempt is then refused with RunLocked, as Resume-Run's.
    /// </summary>
    private (RunDirectory Run, RunState State)? FindUnfinished(RootLocation root)
    {
        string name = Name.Trim();
        IEnumerable<(RunDirectory Run, RunState? State)> runs;
        if (root.Kind == RootKind.Folder)
        {
            runs = new RunsRoot(root.FolderPath!).ListRuns(RunId is null ? null : id => string.Equals(id, RunId, StringComparison.Ordinal)).Select(l => (l.Run, l.State));
        }
        else
        {
            var filter = new RunFilter
            {
                NamePatterns = new[] { WildcardPattern.Escape(name) },
                RunIdPatterns = RunId is null ? Array.Empty<string>() : new[] { WildcardPattern.Escape(RunId) },
            };
            runs = RunCatalogs.Open(root).EnumerateRuns(filter, l => (l.Run, l.State)).ToList();
        }

        var candidates = runs
            .Where(l => l.State is { } s && string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase) && s.Status != RunStatus.Completed
                && (RunId is null || string.Equals(l.Run.RunId, RunId, StringComparison.Ordinal)))
            .OrderByDescending(l => l.State!.CreatedAt).ThenByDescending(l => l.Run.RunId, StringComparer.Ordinal)
            .ToList();
        return candidates.Count == 0 ? null : (candidates[0].Run, candidates[0].State!);
    }

    /// <summary>-Force, -InDoubt and -Failed decide how a run is resumed: without -Resume there is none.</summary>
    private void RequireResumeForResumeOptions()
    {
        if (Resume)
        {
            return;
        }

        foreach (string name in new[] { nameof(Force), nameof(InDoubt), nameof(Failed) })
        {
            if (MyInvocation.BoundParameters.ContainsKey(name))
            {
                throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                    $"-{name} decides how an existing run is resumed; Start-Run uses it only with -Resume.", name);
            }
        }
    }
}

/// <summary>Core's warnings and verbose lines, written on the pipeline thread.</summary>
internal sealed class CmdletObserver : IRunObserver
{
    private readonly PSCmdlet _cmdlet;

    public CmdletObserver(PSCmdlet cmdlet) => _cmdlet = cmdlet;

    public void Warning(string message) => _cmdlet.WriteWarning(message);

    public void Verbose(string message) => _cmdlet.WriteVerbose(message);
}
