using System;
using System.Collections;
using System.IO;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>Creates a run directory and executes the run script in it, in this process.</summary>
[Cmdlet(VerbsLifecycle.Start, "Run", SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Start-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class StartRunCommand : RunExecutionCmdletBase
{

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

    protected override void EndProcessing()
    {
        string root = ResolveRoot(Root);
        string script = ResolvePath(ScriptPath);
        if (!ShouldProcess($"{Name} in {root}", "Start run"))
        {
            return;
        }

        try
        {
            RequireRegularScript(script);
            if (!File.Exists(script))
            {
                throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"Run script '{script}' does not exist. Check -ScriptPath.", script);
            }

            RequireRootDirectory(root);
            var config = LoadConfig(Config);
            byte[] scriptBytes = File.ReadAllBytes(script);
            var run = new RunsRoot(root).CreateRun(new RunCreateOptions
            {
                Name = Name,
                RunId = RunId,
                Config = config,
                Script = scriptBytes,
                ScriptSourcePath = script,
            });
            WriteVerbose($"Created run {run.RunId} in {run.Path}.");
            Executor = new RunExecutor(this);
            var options = new AttemptOptions
            {
                Gate = Gate,
                Cancellation = Executor.Cancellation,
                Observer = new CmdletObserver(this),
            };
            RunState final;
            using (var attempt = run.BeginAttempt(options))
            {
                final = Executor.Execute(run, attempt, script, Parameters, null);
            }

            var info = RunInfo.From(run, run.ReadState());
            WriteFailureIfAny(this, info, final, Executor.FailureCause);
            WriteObject(info);
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            ThrowTerminatingError(IoErrorRecord(ex, script));
        }
        finally
        {
            Executor?.Dispose();
        }
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
}

/// <summary>Core's warnings and verbose lines, written on the pipeline thread.</summary>
internal sealed class CmdletObserver : IRunObserver
{
    private readonly PSCmdlet _cmdlet;

    public CmdletObserver(PSCmdlet cmdlet) => _cmdlet = cmdlet;

    public void Warning(string message) => _cmdlet.WriteWarning(message);

    public void Verbose(string message) => _cmdlet.WriteVerbose(message);
}
