using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// Runs a run script in the caller's runspace for one attempt (Start-Run, Resume-Run): the
/// script's output and streams go to the attempt log and to the host, never to the pipeline; the
/// attempt ends Completed, Failed or Stopped according to what happened.
/// </summary>
internal sealed class RunExecutor : IDisposable
{
    /// <summary>
    /// How long a Stop-Run request waits for the next step or item boundary before the owner
    /// stops the unit in flight as Ctrl+C does (documented in Stop-Run's help).
    /// </summary>
    internal static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The most script output (output, error, warning, verbose and information lines) one attempt
    /// log takes: 64 MiB; beyond it, lines still reach the host but the log says once that it stops
    /// recording them (documented in docs/run-format.md).
    /// </summary>
    internal const long MaxScriptLogBytes = 64L * 1024 * 1024;

    private static readonly TimeSpan s_stopPoll = TimeSpan.FromMilliseconds(250);

    private readonly PSCmdlet _cmdlet;
    private readonly CancellationTokenSource _cancel = new();
    private PowerShell? _pipeline;
    private long _scriptLogBytes;
    private StopRequest? _forcedStop;
    private DateTimeOffset? _stopSeenAt;

    private DateTimeOffset? _deadline;

    public RunExecutor(PSCmdlet cmdlet) => _cmdlet = cmdlet;

    /// <summary>How long the attempt may run (Start-Run/Resume-Run -TimeoutSec); at the limit the run is asked to stop.</summary>
    public TimeSpan? TimeLimit { get; set; }

    public CancellationToken Cancellation => _cancel.Token;

    /// <summary>Why the attempt failed, when it did: the error of the failed step or item, or the one that escaped the script.</summary>
    public Exception? FailureCause { get; private set; }

    /// <summary>Called from StopProcessing (Ctrl+C): honoured at the next boundary, and the nested pipeline is stopped.</summary>
    public void Stop()
    {
        _cancel.Cancel();
        _pipeline?.BeginStop(null, null);
    }

    public RunState Execute(RunDirectory run, RunAttempt attempt, string scriptPath, IDictionary? parameters, object? inDoubt)
    {
        if (RunContext.Current is { } outer)
        {
            attempt.Fail("a run cannot start inside another run");
            throw new RunToolsException(ErrorIds.RunNested, RunToolsErrorCategory.InvalidOperation,
                $"Run '{run.RunId}' cannot be started from inside run '{outer.RunId}'. Start it from a separate PowerShell process or job.", run.RunId);
        }

        var config = run.ReadConfig().ToDictionary();
        var context = new RunContext(run, attempt, config, inDoubt);
        RunContext.Enter(context);
        try
        {
            return Run(context, attempt, scriptPath, parameters);
        }
        catch (Exception ex) when (ex is not PipelineStoppedException && !attempt.IsFinished)
        {
            // Whatever went wrong, the run must not be left looking as if its process had died.
            attempt.Fail(Describe(ex));
            throw;
        }
        finally
        {
            RunContext.Leave();
        }
    }

    public void Dispose()
    {
        _pipeline?.Dispose();
        _cancel.Dispose();
    }

    private RunState Run(RunContext context, RunAttempt attempt, string scriptPath, IDictionary? parameters)
    {
        var arguments = new Hashtable(StringComparer.OrdinalIgnoreCase);
        if (parameters is not null)
        {
            foreach (DictionaryEntry entry in parameters)
            {
                arguments[entry.Key.ToString()!] = entry.Value;
            }
        }

        var command = _cmdlet.InvokeCommand.GetCommand(scriptPath, CommandTypes.ExternalScript) as ExternalScriptInfo;
        if (command is not null && command.Parameters.ContainsKey("Config") && !arguments.ContainsKey("Config"))
        {
            arguments["Config"] = context.Config;
        }

        _pipeline = PowerShell.Create(RunspaceMode.CurrentRunspace);
        _pipeline.AddCommand(scriptPath).AddParameters(arguments);

        // A nested pipeline writes warnings, verbose and information records straight to the host,
        // never to its Streams, so they are merged into the output to reach the attempt log too.
        foreach (var stream in new[] { PipelineResultTypes.Warning, PipelineResultTypes.Verbose, PipelineResultTypes.Information })
        {
            _pipeline.Commands.Commands[0].MergeMyResults(stream, PipelineResultTypes.Output);
        }

        var output = new PSDataCollection<PSObject>();
        var host = _cmdlet.Host.UI;
        int errors = 0;

        // Each record is taken out of its collection once handled: the collections would otherwise
        // hold everything a script ever wrote, and an endless writer would exhaust memory.
        output.DataAdded += (_, e) =>
        {
            var item = output[e.Index];
            output.RemoveAt(e.Index);
            switch (item?.BaseObject)
            {
                case WarningRecord warning:
                    LogScript(attempt, "WARNING: " + warning.Message);
                    host.WriteWarningLine(warning.Message);
                    break;
                case VerboseRecord verbose:
                    LogScript(attempt, "VERBOSE: " + verbose.Message);
                    host.WriteVerboseLine(verbose.Message);
                    break;
                case InformationRecord information:
                    LogScript(attempt, "INFO: " + information.MessageData);
                    if (information.Tags.Contains("PSHOST"))
                    {
                        host.WriteLine(information.MessageData?.ToString() ?? string.Empty); // Write-Host; Write-Information stays quiet
                    }

                    break;
                default:
                    string text = item?.ToString() ?? string.Empty;
                    LogScript(attempt, "OUTPUT: " + text);
                    host.WriteLine(text);
                    break;
            }
        };
        _pipeline.Streams.Error.DataAdded += (_, e) =>
        {
            var record = _pipeline.Streams.Error[e.Index];
            _pipeline.Streams.Error.RemoveAt(e.Index);
            errors++;
            LogScript(attempt, "ERROR: " + record);
            host.WriteErrorLine(record.ToString());
        };

        // $LASTEXITCODE is cleared first, so that a value left by the caller's session is not
        // mistaken for the script's own exit code.
        _cmdlet.SessionState.PSVariable.Set("global:LASTEXITCODE", null);
        Exception? error = null;
        _deadline = TimeLimit is { } limit ? DateTimeOffset.UtcNow + limit : null;
        using (new Timer(_ => WatchStop(context.Run), null, s_stopPoll, s_stopPoll))
        {
            try
            {
                _pipeline.Invoke(null, output);
            }
            catch (Exception ex) when (ex is RuntimeException || ex is RunToolsException)
            {
                error = ex;
            }
        }

        bool pipelineStopped = error is PipelineStoppedException || _pipeline.InvocationStateInfo.State == PSInvocationState.Stopped;
        if (pipelineStopped && Volatile.Read(ref _forcedStop) is { } forced && context.StopRequest is null && context.Failure is null)
        {
            // Stop-Run found no boundary within the grace period: the unit in flight was stopped
            // like Ctrl+C and is left open (in doubt), but the run ends as Stop-Run asked.
            attempt.Log($"Stop-Run's request met no step or item boundary within {StopGrace.TotalSeconds:0} s; the unit in flight was stopped.");
            return attempt.Stop(forced);
        }

        // One place decides how the attempt ends: a stop request met at a boundary, a failed step,
        // Ctrl+C (the unit in flight stays in doubt), an error that escaped the script, or success.
        var request = context.StopRequest ?? (error is null ? null : (Unwrap(error) as RunStoppedException)?.Request);
        if (request is not null)
        {
            return attempt.Stop(request);
        }

        if (context.Failure is { } failure)
        {
            FailureCause = context.FailureCause;
            return attempt.Fail(failure, unitInterrupted: true);
        }

        if (_cancel.IsCancellationRequested || error is PipelineStoppedException || _pipeline.InvocationStateInfo.State == PSInvocationState.Stopped)
        {
            attempt.Stop(new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "Ctrl+C", Reason = "the pipeline was stopped" });
            throw new PipelineStoppedException();
        }

        if (error is not null)
        {
            FailureCause = Unwrap(error);
            return attempt.Fail(Describe(error));
        }

        if (errors > 0)
        {
            attempt.Log($"The script wrote {errors} non-terminating error(s).");
        }

        int? exitCode = ExitCode(scriptPath);
        if (attempt.ActiveStep is { } open)
        {
            // The script ended inside a step (an error it swallowed, or an exit inside the step): the step did not complete.
            return attempt.Fail($"the script ended while step '{open}' was still running{(exitCode is { } code ? $" (it exited with code {code})" : string.Empty)}", unitInterrupted: true);
        }

        if (exitCode is { } failedWith)
        {
            string reason = $"the run script exited with code {failedWith}";
            FailureCause = new RunToolsException(ErrorIds.RunScriptExited, RunToolsErrorCategory.InvalidResult,
                $"Run '{context.RunId}': {reason} (an 'exit {failedWith}' in '{scriptPath}'); the steps after that point did not run. Fix what made the script exit, then resume the run.", context.RunId);
            return attempt.Fail(reason);
        }

        return attempt.Complete(ScriptStepNames(scriptPath));
    }

    /// <summary>
    /// The script's non-zero exit code, when it ended with <c>exit N</c>. PowerShell catches an exit
    /// at the script file, sets $LASTEXITCODE and marks the invocation failed for a non-zero code; a
    /// failing native command at the script's top level does the same, so the code counts only when
    /// the script's text has an exit statement at all.
    /// </summary>
    private int? ExitCode(string scriptPath)
    {
        if (_pipeline is null || !_pipeline.HadErrors)
        {
            return null;
        }

        object? value = Conversion.Unwrap(_cmdlet.SessionState.PSVariable.GetValue("global:LASTEXITCODE"));
        if (value is not int code || code == 0)
        {
            return null;
        }

        var ast = System.Management.Automation.Language.Parser.ParseFile(scriptPath, out _, out _);
        return ast.Find(a => a is System.Management.Automation.Language.ExitStatementAst, searchNestedScriptBlocks: true) is null ? null : code;
    }

    private static IReadOnlyCollection<string> ScriptStepNames(string scriptPath)
    {
        try
        {
            return ScriptSteps.Read(scriptPath, out _).Select(s => s.Name).ToList();
        }
        catch (Exception ex) when (ex is System.IO.IOException || ex is UnauthorizedAccessException)
        {
            return Array.Empty<string>();
        }
    }

    /// <summary>Script output into the attempt log, up to <see cref="MaxScriptLogBytes"/>.</summary>
    private void LogScript(RunAttempt attempt, string line)
    {
        long before = _scriptLogBytes;
        if (before > MaxScriptLogBytes)
        {
            return;
        }

        _scriptLogBytes += line.Length + 32; // with the timestamp the log adds
        if (_scriptLogBytes > MaxScriptLogBytes)
        {
            attempt.Log($"The script's output passed {MaxScriptLogBytes / (1024 * 1024)} MiB; further output is shown but not logged in this attempt.");
            return;
        }

        attempt.Log(line);
    }

    /// <summary>
    /// On a timer while the script runs: a Stop-Run request (the stop file) is honoured at the next
    /// boundary by the in-script cmdlets; one that meets no boundary within <see cref="StopGrace"/>
    /// stops the nested pipeline, as Ctrl+C does.
    /// </summary>
    private void WatchStop(RunDirectory run)
    {
        try
        {
            if (_deadline is { } deadline && DateTimeOffset.UtcNow >= deadline && Volatile.Read(ref _forcedStop) is null && !File.Exists(run.StopPath))
            {
                // The attempt's time limit: a stop request like Stop-Run's, honoured the same way.
                _deadline = null;
                run.RequestStop($"the attempt's time limit of {TimeLimit!.Value.TotalSeconds:0} s was reached", "time limit");
            }

            if (Volatile.Read(ref _forcedStop) is not null || !File.Exists(run.StopPath))
            {
                _stopSeenAt = null;
                return;
            }

            var now = DateTimeOffset.UtcNow;
            _stopSeenAt ??= now;
            if (now - _stopSeenAt.Value < StopGrace)
            {
                return;
            }

            var request = run.ReadStopRequest() ?? new StopRequest { RequestedAt = now, RequestedBy = "unknown" };
            Volatile.Write(ref _forcedStop, request);
            _pipeline?.BeginStop(null, null);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is RunToolsException || ex is InvalidOperationException || ex is ObjectDisposedException)
        {
            // A request that cannot be read now is looked at again on the next tick.
        }
    }

    internal static Exception Unwrap(Exception ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            if (e is RunToolsException)
            {
                return e;
            }

            if (e is IContainsErrorRecord { ErrorRecord.Exception: RunToolsException inner })
            {
                return inner;
            }
        }

        return ex;
    }

    private static string Describe(Exception ex)
    {
        var inner = Unwrap(ex);
        if (inner is RunToolsException core)
        {
            return core.Message;
        }

        return ex.Message + Position(ex);
    }

    /// <summary>" (at script.ps1:12)" when the error knows where it happened.</summary>
    internal static string Position(Exception ex) =>
        ex is IContainsErrorRecord { ErrorRecord.InvocationInfo: { } info } && info.ScriptName is { Length: > 0 }
            ? $" (at {info.ScriptName}:{info.ScriptLineNumber})"
            : string.Empty;
}
