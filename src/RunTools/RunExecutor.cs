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

    /// <summary>Whether an attempt began running the script: a failure after that is a failed run (exit 1), not a refusal (exit 4).</summary>
    public bool Executed { get; private set; }

    public RunState Execute(RunDirectory run, RunAttempt attempt, string scriptPath, IDictionary? parameters, object? inDoubt)
    {
        Executed = true;
        if (RunContext.Current is { } outer)
        {
            attempt.Fail("a run cannot start inside another run");
            throw new RunToolsException(ErrorIds.RunNested, RunToolsErrorCategory.InvalidOperation,
                $"Run '{run.RunId}' cannot be started from inside run '{outer.RunId}'. Start it from a separate PowerShell process or job.", run.RunId);
        }

        var config = run.ReadConfig().ToDictionary();
        _cmdlet.WriteVerbose(DescribePlan(run, attempt));
        var context = new RunContext(run, attempt, config, inDoubt, scriptPath);
        var previousOrigin = RunContext.Enter(context);
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
            ItemWorkerPool.Close(context);
            RunContext.Leave(context, previousOrigin);
        }
    }

    /// <summary>What -Verbose says before the script runs: the attempt, and what it will replay, skip and decide.</summary>
    private static string DescribePlan(RunDirectory run, RunAttempt attempt)
    {
        var plan = attempt.Plan;
        if (attempt.Attempt == 1)
        {
            return $"Attempt 1 of run {run.RunId}: a new run; every step and item runs.";
        }

        var done = plan.CompletedSteps;
        string steps = done.Count == 0 ? "no step completed yet" : $"{done.Count} completed step(s) replay their recorded output ({string.Join(", ", done)})";
        string doubt = plan.InDoubt.Count + plan.InDoubtSteps.Count == 0 ? "nothing in doubt"
            : $"{plan.InDoubtSteps.Count} step(s) and {plan.InDoubt.Count} item(s) in doubt";
        string redo = plan.IntegrityProblems.Count == 0 ? string.Empty : $"; {plan.IntegrityProblems.Count} recorded file(s) missing or changed, their units run again";
        return $"Attempt {attempt.Attempt} of run {run.RunId} (was {attempt.PreviousStatus}): {steps}; {plan.CompletedItems} completed item(s) are skipped; {doubt}{redo}; "
            + $"first unfinished step: {plan.FirstUnfinishedStep ?? "(none)"}.";
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
        bool forwardVerbose = IsVerbose(_cmdlet);
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
                    if (forwardVerbose)
                    {
                        // Start-Run -Verbose: through the cmdlet's own stream, so 4>&1 and Streams.Verbose capture it.
                        _cmdlet.WriteVerbose(verbose.Message);
                    }
                    else
                    {
                        host.WriteVerboseLine(verbose.Message); // the script turned verbose on for itself
                    }

                    break;
                case InformationRecord information:
                    LogScript(attempt, "INFO: " + information.MessageData);
                    if (information.Tags.Contains("PSHOST"))
                    {
                        WriteHostMessage(host, information.MessageData); // Write-Host; Write-Information stays quiet
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
        using (new ScriptPreference(_cmdlet.SessionState, "ErrorActionPreference", ActionPreference.Stop))
        using (forwardVerbose ? new ScriptPreference(_cmdlet.SessionState, "VerbosePreference", ActionPreference.Continue) : null)
        {
            try
            {
                _pipeline.Invoke(null, output);
            }
            catch (Exception ex) when (ex is RuntimeException || ex is RunToolsException)
            {
                error = ex;
            }
            finally
            {
                // From here a call from another runspace is told that the attempt ended; before, it fails the run.
                context.Close();

                // The parallel items' runspaces live as long as the attempt's script, however it ended.
                ItemWorkerPool.Close(context);
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

        if (context.Failure is null && context.Misuse is { } misuse)
        {
            // An in-script cmdlet called from another runspace could not record its work: whatever
            // else happened, the run must not end Completed (nor Stopped, which reads as resumable as is).
            FailureCause = misuse;
            return attempt.Fail(misuse.Message, unitInterrupted: true);
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
            FailureCause = Cause(error, scriptPath);
            return attempt.Fail(Explain(error, scriptPath), errorId: UnitErrors.IdOf(FailureCause));
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

    /// <summary>Shows what Write-Host wrote as Write-Host shows it: in its colours, with or without a line end.</summary>
    private static void WriteHostMessage(System.Management.Automation.Host.PSHostUserInterface host, object? data)
    {
        if (data is not HostInformationMessage message)
        {
            host.WriteLine(data?.ToString() ?? string.Empty);
            return;
        }

        string text = message.Message ?? string.Empty;
        bool newLine = message.NoNewLine != true;
        if (message.ForegroundColor is null && message.BackgroundColor is null)
        {
            if (newLine)
            {
                host.WriteLine(text);
            }
            else
            {
                host.Write(text);
            }

            return;
        }

        // As Write-Host does when only one colour is given.
        var foreground = message.ForegroundColor ?? ConsoleColor.Gray;
        var background = message.BackgroundColor ?? ConsoleColor.Black;
        if (newLine)
        {
            host.WriteLine(foreground, background, text);
        }
        else
        {
            host.Write(foreground, background, text);
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
            if (_deadline is { } deadline && DateTimeOffset.UtcNow >= deadline && Volatile.Read(ref _forcedStop) is null && !run.StopRequested)
            {
                // The attempt's time limit: a stop request like Stop-Run's, honoured the same way.
                _deadline = null;
                run.RequestStop($"the attempt's time limit of {TimeLimit!.Value.TotalSeconds:0} s was reached", "time limit");
            }

            if (Volatile.Read(ref _forcedStop) is not null || !run.StopRequested)
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

    /// <summary>
    /// A preference variable set for the run script, which inherits it from the caller's scope
    /// where the nested pipeline runs: $ErrorActionPreference = 'Stop' (Invoke-Build's rule, so
    /// that a non-terminating error inside a step or item fails that unit instead of being recorded
    /// as done), and $VerbosePreference = 'Continue' under Start-Run -Verbose (so the in-script
    /// cmdlets report replayed and skipped units). The script's own assignment (its scope) and a
    /// command's -ErrorAction/-Verbose still win. The caller's scope is put back exactly as it
    /// was, with or without a local variable of that name.
    /// </summary>
    private sealed class ScriptPreference : IDisposable
    {
        private readonly string _local;
        private readonly PSVariableIntrinsics _variables;
        private readonly PSVariable? _saved;
        private readonly object? _savedValue;
        private readonly object? _inherited;

        public ScriptPreference(SessionState state, string name, ActionPreference value)
        {
            _local = "local:" + name;
            _variables = state.PSVariable;
            _saved = _variables.Get(_local);
            _savedValue = _saved?.Value;
            _inherited = _variables.GetValue(name);
            if (_saved is null)
            {
                _variables.Set(_local, value);
            }
            else
            {
                _saved.Value = value;
            }
        }

        public void Dispose()
        {
            if (_saved is null)
            {
                try
                {
                    _variables.Remove(_local);
                }
                catch (SessionStateException)
                {
                    // A script's compiled scope (Start-Run in a job script run with '&') cannot lose
                    // a variable once it has one: it keeps the value it saw before instead.
                    _variables.Set(_local, _inherited);
                }
            }
            else
            {
                _saved.Value = _savedValue;
            }
        }
    }

    /// <summary>Whether the cmdlet writes verbose records: -Verbose, or $VerbosePreference = 'Continue' where it was called.</summary>
    private static bool IsVerbose(PSCmdlet cmdlet) =>
        cmdlet.MyInvocation.BoundParameters.TryGetValue("Verbose", out object? flag)
            ? flag is SwitchParameter { IsPresent: true } || flag is true
            : cmdlet.SessionState.PSVariable.GetValue("VerbosePreference") is ActionPreference.Continue;

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

    private static string Describe(Exception ex) => Explain(ex, null);

    /// <summary>
    /// What a script error says, under which ErrorId and where: "message (ErrorId: id; at
    /// run.ps1:12)". For an error made terminating by 'Stop' this is the original record's, not
    /// "The running command stopped because...". A thrown string is its own ErrorId, so it is not
    /// repeated. When the failing command is outside the run script (a module function), the
    /// run script's line that led to it is added from the script stack trace.
    /// </summary>
    internal static string Explain(Exception ex, string? scriptPath)
    {
        var core = Unwrap(ex) as RunToolsException;
        var record = (ex as IContainsErrorRecord)?.ErrorRecord;
        string message = (record?.ErrorDetails?.Message is { Length: > 0 } details ? details : null)
            ?? core?.Message ?? record?.Exception?.Message ?? ex.Message;
        if (record is null)
        {
            return message;
        }

        string id = record.FullyQualifiedErrorId ?? string.Empty;
        if (record.ErrorDetails?.Message is { Length: > 0 } && (record.Exception is ScriptErrorException || id.StartsWith(ErrorIds.ItemFailed + ",", StringComparison.Ordinal)))
        {
            // An item's failure raised again at its step (ItemFailed): the item's own ErrorId and
            // line are the cause, and ItemFailed's would only hide them. A script error's message
            // already names them; a RunTools error's (UnitTimedOut, say) is named here.
            if (record.Exception is not RunToolsException cause)
            {
                return message;
            }

            id = cause.ErrorId;
        }

        var parts = new List<string>();
        if (id.Length > 0 && id != message && id != ex.GetType().FullName)
        {
            parts.Add("ErrorId: " + id);
        }

        if (Where(record, scriptPath) is { } where)
        {
            parts.Add(where);
        }

        return parts.Count == 0 ? message : $"{message} ({string.Join("; ", parts)})";
    }

    /// <summary>
    /// The error that failed a unit or the run, as RunFailed's (and ItemFailed's) exception: a
    /// RunTools error as it is; any other error as a <see cref="ScriptErrorException"/> whose
    /// message is <see cref="Explain"/>'s and whose ErrorRecord is the original one (its
    /// FullyQualifiedErrorId, InvocationInfo and ScriptStackTrace), the original exception inside.
    /// </summary>
    internal static Exception Cause(Exception ex, string? scriptPath)
    {
        if (Unwrap(ex) is RunToolsException core)
        {
            return core;
        }

        var record = (ex as IContainsErrorRecord)?.ErrorRecord;
        if (record is null)
        {
            return ex;
        }

        // An item's failure raised again at its step by 'Stop' (ItemFailed): the item's error is the cause.
        // A record made from its own exception holds a ParentContainsErrorRecordException stand-in; the real one is ex.
        return record.Exception as ScriptErrorException
            ?? new ScriptErrorException(Explain(ex, scriptPath), record, record.Exception is ParentContainsErrorRecordException ? ex : record.Exception);
    }

    /// <summary>
    /// "at file:line" of the failing command, and the run script's line that led to it when the
    /// command was elsewhere (a module function). The innermost frame of the script stack trace is
    /// preferred to InvocationInfo, which for Write-Error names the line that called the script.
    /// </summary>
    private static string? Where(ErrorRecord record, string? scriptPath)
    {
        var frames = new List<(string File, int Line)>();
        foreach (string frame in (record.ScriptStackTrace ?? string.Empty).Split('\n'))
        {
            // "at <name>, <file>: line <n>"; a frame without a file reads "<No file>".
            int comma = frame.IndexOf(", ", StringComparison.Ordinal);
            int line = frame.LastIndexOf(": line ", StringComparison.Ordinal);
            if (comma > 0 && line > comma + 2 && int.TryParse(frame.Substring(line + 7).Trim(), out int number))
            {
                frames.Add((frame.Substring(comma + 2, line - comma - 2), number));
            }
        }

        var info = record.InvocationInfo;
        (string? File, int Line) failing = frames.Count > 0 ? frames[0]
            : info?.ScriptName is { Length: > 0 } name ? (name, info.ScriptLineNumber)
            : (null, 0);
        if (failing.File is null)
        {
            return null;
        }

        string where = $"at {failing.File}:{failing.Line}";
        if (scriptPath is null || string.Equals(failing.File, scriptPath, StringComparison.Ordinal))
        {
            return where;
        }

        foreach (var frame in frames)
        {
            if (string.Equals(frame.File, scriptPath, StringComparison.Ordinal))
            {
                return $"{where}, called from {scriptPath}:{frame.Line}";
            }
        }

        return where;
    }

    /// <summary>Ends <paramref name="text"/> as a sentence, so that the next one does not run into it.</summary>
    internal static string Sentence(string text)
    {
        string trimmed = text.TrimEnd();
        return trimmed.Length == 0 || trimmed[trimmed.Length - 1] is '.' or '!' or '?' ? trimmed : trimmed + ".";
    }
}

/// <summary>
/// A PowerShell error that failed a step, an item or the run: the message says what, under which
/// ErrorId and where; <see cref="RuntimeException.ErrorRecord"/> is the original record, and the
/// original exception is the inner one.
/// </summary>
internal sealed class ScriptErrorException : RuntimeException
{
    public ScriptErrorException(string message, ErrorRecord original, Exception inner)
        : base(message, inner, original)
    {
    }
}
