using System;
using System.Collections;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>
/// Invoke-RunItem -ThrottleLimit: up to N items of the running step at once, each in one of N
/// worker runspaces (with the modules of the run's runspace imported, <c>$using:</c> values
/// copied in, <c>$_</c> the item), as ForEach-Object -Parallel does. The pipeline thread
/// decides and claims each key (in-doubt decisions run there); workers journal the intent,
/// run the body and record the outcome, and their intents share flushes (group commit). Output
/// and streams come back to the pipeline thread in completion order.
/// </summary>
internal sealed class ParallelItemRunner : IDisposable
{
    private readonly RunContext _context;
    private readonly string _step;
    private readonly BlockingCollection<Job> _queue;
    private readonly BlockingCollection<Result> _results = new();
    private readonly List<Worker> _workers = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly object[]? _retryOn;
    private readonly Dictionary<string, object?> _preferences = new(StringComparer.OrdinalIgnoreCase);
    private RunToolsException? _fatal;
    private volatile bool _stopStarting;
    private int _inFlight;

    private readonly UnitCmdletBase _unit;
    private readonly string? _scriptName;

    public ParallelItemRunner(UnitCmdletBase cmdlet, RunContext context, string step, ScriptBlock body, int throttleLimit)
    {
        _unit = cmdlet;
        _scriptName = cmdlet.MyInvocation.ScriptName;
        _context = context;
        _step = step;
        _queue = new BlockingCollection<Job>(throttleLimit);
        foreach (string preference in new[] { "ErrorActionPreference", "WarningPreference", "VerbosePreference", "InformationPreference", "DebugPreference", "ProgressPreference" })
        {
            // The run script's error rule and stream preferences hold in its items too.
            _preferences[preference] = cmdlet.SessionState.PSVariable.GetValue(preference);
        }

        var script = WithUsingVariables(body, cmdlet, out var usingValues);

        // Script blocks of -RetryOn are made again in each worker, like the body, so they run there.
        _retryOn = cmdlet.RetryOn?.Select(r => r is PSObject p ? p.BaseObject : r)!
            .Select(r => r is ScriptBlock sb ? WithUsingVariables(sb, cmdlet, out _) : r).ToArray();
        var modules = LoadedModulePaths(cmdlet);
        for (int i = 0; i < throttleLimit; i++)
        {
            _workers.Add(new Worker(this, cmdlet.Host, modules, script, usingValues));
        }
    }

    /// <summary>The first failure that ends the attempt (a journal write, a stop request): no more items are started.</summary>
    public RunToolsException? Fatal => Volatile.Read(ref _fatal);

    /// <summary>Hands a claimed item to a free worker; blocks while all are busy, writing what finished meanwhile.</summary>
    public void Enqueue(string key, object? input, Action<Result> write)
    {
        Interlocked.Increment(ref _inFlight);
        var job = new Job(key, input);
        while (!_queue.TryAdd(job, 50, _stopping.Token))
        {
            Drain(write, wait: false);
        }

        Drain(write, wait: false);
    }

    /// <summary>Writes finished items' output and streams; with <paramref name="wait"/>, until no item is left in flight.</summary>
    public void Drain(Action<Result> write, bool wait)
    {
        while (true)
        {
            if (_results.TryTake(out var result, wait && Volatile.Read(ref _inFlight) > 0 ? 50 : 0))
            {
                Interlocked.Decrement(ref _inFlight);
                try
                {
                    write(result);
                }
                catch (Exception ex) when (ex is RuntimeException)
                {
                    // Writing made the run script stop (an item's error under 'Stop'): no new item
                    // starts, the ones in flight finish and are recorded, then the error goes on.
                    _stopStarting = true;
                    Drain(_ => { }, wait: true);
                    throw;
                }

                continue;
            }

            if (!wait || Volatile.Read(ref _inFlight) == 0)
            {
                return;
            }
        }
    }

    /// <summary>No more items: lets the workers finish what they hold and end.</summary>
    public void Complete() => _queue.CompleteAdding();

    /// <summary>Ctrl+C: items in flight are stopped mid-work and left in doubt; items not started stay pending.</summary>
    public void Stop()
    {
        _stopping.Cancel();
        foreach (var worker in _workers)
        {
            worker.Stop();
        }
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        foreach (var worker in _workers)
        {
            worker.Dispose();
        }

        Drain(_ => { }, wait: false);
        _stopping.Dispose();
        _queue.Dispose();
        _results.Dispose();
    }

    private void SetFatal(RunToolsException error) => Interlocked.CompareExchange(ref _fatal, error, null);

    /// <summary>
    /// The body's text with each <c>$using:x</c> replaced by a variable set in the worker, and the
    /// values taken from the caller's scope now, as ForEach-Object -Parallel copies them. The text
    /// is padded to its place in its file (no replacement adds a line), so that an error inside a
    /// parallel item names the run script's file and line, as it does in a sequential one.
    /// </summary>
    private static ScriptText WithUsingVariables(ScriptBlock body, PSCmdlet cmdlet, out Dictionary<string, object?> values)
    {
        values = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
        var ast = body.Ast;
        string text = ast.Extent.Text;
        int baseOffset = ast.Extent.StartOffset;
        int column = ast.Extent.StartColumnNumber - 1;
        if (ast is ScriptBlockAst { Parent: ScriptBlockExpressionAst } || text.StartsWith("{", StringComparison.Ordinal))
        {
            // The body is written as { ... }: drop the braces.
            text = text.Substring(1, text.Length - 2);
            baseOffset++;
            column++;
        }

        var usings = ast.FindAll(a => a is UsingExpressionAst, searchNestedScriptBlocks: true).Cast<UsingExpressionAst>()
            .OrderByDescending(u => u.Extent.StartOffset).ToList();
        foreach (var usingAst in usings)
        {
            var variable = UsingExpressionAst.ExtractUsingVariable(usingAst);
            string name = "__runtools_using_" + variable.VariablePath.UserPath.Replace(':', '_');
            values[name] = cmdlet.SessionState.PSVariable.GetValue(variable.VariablePath.UserPath);
            int start = usingAst.Extent.StartOffset - baseOffset;
            int length = usingAst.Extent.EndOffset - usingAst.Extent.StartOffset;
            string replacement = usingAst.SubExpression is VariableExpressionAst ? "$" + name : usingAst.Extent.Text.Replace("$using:" + variable.VariablePath.UserPath, "$" + name);
            text = text.Substring(0, start) + replacement + text.Substring(start + length);
        }

        return ast.Extent.File is { Length: > 0 } file
            ? new ScriptText(new string('\n', ast.Extent.StartLineNumber - 1) + new string(' ', column) + text, file)
            : new ScriptText(text, null);
    }

    private static List<string> LoadedModulePaths(PSCmdlet cmdlet)
    {
        var paths = new List<string>();
        foreach (var module in cmdlet.InvokeCommand.InvokeScript("Get-Module"))
        {
            if (module?.BaseObject is PSModuleInfo { Name: "RunTools" } own && own.ModuleBase == System.IO.Path.GetDirectoryName(typeof(ParallelItemRunner).Assembly.Location))
            {
                // This module: its cmdlet assembly alone. Workers output nothing to format, and its
                // loader already runs in this process, so the manifest's format and type data (a
                // rebuild of the formatting database per worker) would only slow every worker's start.
                paths.Add(typeof(ParallelItemRunner).Assembly.Location);
                continue;
            }

            if (module?.BaseObject is PSModuleInfo info && !string.IsNullOrEmpty(info.Path) && System.IO.File.Exists(info.Path))
            {
                // The manifest when there is one, so that nested modules load as they did in the run's runspace.
                string manifest = System.IO.Path.Combine(info.ModuleBase, info.Name + ".psd1");
                paths.Add(System.IO.File.Exists(manifest) ? manifest : info.Path);
            }
        }

        return paths.Distinct(StringComparer.Ordinal).ToList();
    }

    /// <summary>A script block's text (the body, a -RetryOn rule) and its file, made into a script block again inside each worker.</summary>
    internal sealed class ScriptText
    {
        public ScriptText(string text, string? file)
        {
            Text = text;
            File = file;
        }

        public string Text { get; }

        /// <summary>The file the text was written in, at the same lines; null for a script block made from a string.</summary>
        public string? File { get; }
    }

    internal sealed class Job
    {
        public Job(string key, object? input)
        {
            Key = key;
            Input = input;
        }

        public string Key { get; }

        public object? Input { get; }
    }

    /// <summary>One finished (or abandoned) item, for the pipeline thread to write.</summary>
    internal sealed class Result
    {
        public Result(string key, object? input)
        {
            Key = key;
            Input = input;
        }

        public string Key { get; }

        public object? Input { get; }

        /// <summary>The recorded output, deserialized as a replay would give it.</summary>
        public IList<object?> Output { get; set; } = Array.Empty<object?>();

        /// <summary>The error that failed the item (recorded as item_failed); null when it completed.</summary>
        public Exception? Error { get; set; }

        /// <summary>How many tries failed, the last with <see cref="Error"/>.</summary>
        public int FailedTries { get; set; } = 1;

        /// <summary>The item did not run (a stop or a fatal error came first) or was cut off mid-work.</summary>
        public bool Abandoned { get; set; }

        public IList<ErrorRecord> Errors { get; set; } = Array.Empty<ErrorRecord>();

        public IList<WarningRecord> Warnings { get; set; } = Array.Empty<WarningRecord>();

        public IList<VerboseRecord> Verbose { get; set; } = Array.Empty<VerboseRecord>();

        public IList<InformationRecord> Information { get; set; } = Array.Empty<InformationRecord>();
    }

    private sealed class Worker : IDisposable
    {
        private readonly ParallelItemRunner _owner;
        private readonly PSHost _host;
        private readonly IReadOnlyList<string> _modules;
        private readonly ScriptText _script;
        private readonly Dictionary<string, object?> _usingValues;
        private readonly RunContext _itemContext;
        private readonly Thread _thread;
        private Runspace? _runspace;
        private PowerShell? _shell;
        private object[]? _retryOn;
        private volatile bool _stopped;
        private int _timedOut;

        public Worker(ParallelItemRunner owner, PSHost host, IReadOnlyList<string> modules, ScriptText script, Dictionary<string, object?> usingValues)
        {
            _owner = owner;
            _host = host;
            _modules = modules;
            _script = script;
            _usingValues = usingValues;
            _itemContext = owner._context.ForParallelItems();
            _thread = new Thread(Loop) { IsBackground = true, Name = "RunTools item worker" };
            _thread.Start();
        }

        public void Stop()
        {
            _stopped = true;
            try
            {
                _shell?.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
            }
        }

        public void Dispose()
        {
            _thread.Join(TimeSpan.FromSeconds(30));
        }

        private void Loop()
        {
            ScriptBlock body;
            try
            {
                body = Open();
            }
            catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException || ex is System.IO.IOException)
            {
                _owner.SetFatal(new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidOperation,
                    $"A runspace for parallel items could not be opened: {ex.Message} Run the items without -ThrottleLimit, or fix the module that failed to import.", null, ex));
                body = null!;
            }

            try
            {
                var engine = _owner._context.Engine;
                foreach (var job in _owner._queue.GetConsumingEnumerable())
                {
                    var result = new Result(job.Key, job.Input);
                    try
                    {
                        if (_stopped || _owner._stopStarting || _owner.Fatal is not null)
                        {
                            engine.ReleaseItem(job.Key);
                            result.Abandoned = true;
                            continue;
                        }

                        try
                        {
                            engine.ThrowIfStopRequested();
                            engine.StartItem(_owner._step, job.Key);
                        }
                        catch (RunToolsException ex)
                        {
                            engine.ReleaseItem(job.Key);
                            _owner.SetFatal(ex);
                            result.Abandoned = true;
                            continue;
                        }

                        Run(engine, body, job, result);
                    }
                    finally
                    {
                        _owner._results.Add(result);
                    }
                }
            }
            finally
            {
                if (_runspace is not null)
                {
                    RunContext.Leave(_runspace);
                }

                _shell?.Dispose();
                _runspace?.Dispose();
            }
        }

        private ScriptBlock Open()
        {
            var state = InitialSessionState.CreateDefault2();
            if (_modules.Count > 0)
            {
                state.ImportPSModule(_modules.ToArray());
            }

            foreach (var pair in _usingValues)
            {
                state.Variables.Add(new SessionStateVariableEntry(pair.Key, pair.Value, "A $using: value copied from the run script."));
            }

            foreach (var preference in _owner._preferences.Where(p => p.Value is not null))
            {
                state.Variables.Add(new SessionStateVariableEntry(preference.Key, preference.Value, "As in the run script."));
            }
            _runspace = RunspaceFactory.CreateRunspace(_host, state);
            _runspace.ThreadOptions = PSThreadOptions.UseCurrentThread;
            _runspace.Open();
            Runspace.DefaultRunspace = _runspace;
            RunContext.Enter(_runspace, _itemContext);
            _shell = PowerShell.Create();
            _shell.Runspace = _runspace;

            // Created inside the worker's runspace, so it runs there and not back in the caller's.
            var body = MakeScriptBlock(_script);
            _retryOn = _owner._retryOn?.Select(r => r is ScriptText text ? MakeScriptBlock(text) : r).ToArray();
            return body;
        }

        private ScriptBlock MakeScriptBlock(ScriptText script)
        {
            var shell = _shell!;
            shell.Commands.Clear();

            // Parsed under its file's name, so positions in errors and $PSCommandPath read as in the run script.
            const string Make = "param($text, $file) if (-not $file) { return [scriptblock]::Create($text) }; $t = $e = $null; "
                + "[System.Management.Automation.Language.Parser]::ParseInput($text, $file, [ref]$t, [ref]$e).GetScriptBlock()";
            var block = (ScriptBlock)shell.AddScript(Make).AddArgument(script.Text).AddArgument(script.File).Invoke()[0].BaseObject;
            shell.Commands.Clear();
            return block;
        }

        /// <summary>Tries the item up to -MaxTries times: each try journaled, a wait with jitter between them.</summary>
        private void Run(RunAttempt engine, ScriptBlock body, Job job, Result result)
        {
            var unit = _owner._unit;
            for (int tryNumber = 1; ; tryNumber++)
            {
                if (tryNumber > 1)
                {
                    try
                    {
                        engine.ThrowIfStopRequested();
                        if (_stopped || engine.ClaimItem(_owner._step, job.Key) != ItemAction.Run)
                        {
                            return;
                        }

                        engine.StartItem(_owner._step, job.Key, tryNumber);
                    }
                    catch (RunToolsException ex)
                    {
                        // A stop during the wait: the item stays failed (recorded), and a resume retries it.
                        engine.ReleaseItem(job.Key);
                        _owner.SetFatal(ex);
                        return;
                    }
                }

                result.Error = null;
                RunOnce(engine, body, job, result);
                if (result.Error is null || result.Abandoned || _owner.Fatal is not null)
                {
                    return;
                }

                bool retry = tryNumber < unit.MaxTries && !_stopped && IsTransient(result.Error);
                TimeSpan? wait = retry ? unit.DelayBefore(tryNumber + 1) : null;
                bool timedOut = RunExecutor.Unwrap(result.Error) is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };
                try
                {
                    engine.FailItem(_owner._step, job.Key, UnitCmdletBase.Failure(RunExecutor.Explain(result.Error, _owner._scriptName), result.Error, timedOut, tryNumber, wait));
                }
                catch (RunToolsException ex)
                {
                    _owner.SetFatal(ex);
                    result.Abandoned = true;
                    return;
                }

                if (_itemContext.Failure is not null)
                {
                    // An in-script cmdlet ended the run (as it would the run script): stop starting items.
                    _owner.SetFatal(result.Error as RunToolsException ?? new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidOperation, _itemContext.Failure, job.Key, result.Error));
                    return;
                }

                if (wait is not { } delay)
                {
                    result.FailedTries = tryNumber;
                    return;
                }

                try
                {
                    if (!engine.WaitBeforeRetry(delay, () => _stopped))
                    {
                        return;
                    }
                }
                catch (RunToolsException ex)
                {
                    // A stop during the wait: the item stays failed (recorded), and a resume retries it.
                    _owner.SetFatal(ex);
                    return;
                }
            }
        }

        private bool IsTransient(Exception error) =>
            UnitErrors.IsTransient(_retryOn, error, sb =>
            {
                var shell = _shell!;
                shell.Commands.Clear();
                shell.AddCommand("ForEach-Object").AddParameter("InputObject", UnitErrors.RecordOf(error)).AddParameter("Process", sb);
                try
                {
                    return shell.Invoke();
                }
                finally
                {
                    shell.Commands.Clear();
                }
            });

        private void RunOnce(RunAttempt engine, ScriptBlock body, Job job, Result result)
        {
            var shell = _shell!;
            _itemContext.ItemKey = job.Key;
            _itemContext.Failure = null;
            _itemContext.FailureCause = null;
            _itemContext.StopRequest = null;
            System.Collections.ObjectModel.Collection<PSObject>? output = null;
            int limit = _owner._unit.TimeoutSec;
            Interlocked.Exchange(ref _timedOut, 0);
            using var timer = limit == 0 ? null : new Timer(_ =>
            {
                Interlocked.Exchange(ref _timedOut, 1);
                try
                {
                    shell.BeginStop(null, null);
                }
                catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
                {
                }
            }, null, TimeSpan.FromSeconds(limit), Timeout.InfiniteTimeSpan);
            try
            {
                shell.Commands.Clear();
                shell.AddCommand("ForEach-Object").AddParameter("InputObject", job.Input).AddParameter("Process", body);
                output = shell.Invoke();
                if (shell.InvocationStateInfo.State == PSInvocationState.Stopped)
                {
                    if (Volatile.Read(ref _timedOut) == 1 && !_stopped)
                    {
                        // Stopped by its time limit: a failure of this try (below), not an interruption.
                        throw new PipelineStoppedException();
                    }

                    // A stopped pipeline in a runspace on its own thread returns normally, with
                    // what it had written so far: the item was cut off, its outcome is unknown.
                    result.Abandoned = true;
                    return;
                }
            }
            catch (Exception ex) when ((ex is RuntimeException || ex is InvalidOperationException) && Volatile.Read(ref _timedOut) == 1 && !_stopped)
            {
                result.Error = new RunToolsException(ErrorIds.UnitTimedOut, RunToolsErrorCategory.OperationTimeout,
                    $"It ran past its time limit of {limit} s and was stopped. Raise -TimeoutSec, or make the work faster.", job.Key);
            }
            catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException)
            {
                if (_itemContext.StopRequest is not null || _stopped || (ex is PipelineStoppedException && _itemContext.Failure is null) || RunExecutor.Unwrap(ex) is RunStoppedException)
                {
                    // Cut off mid-work: its outcome is unknown, so it stays open, in doubt.
                    result.Abandoned = true;
                    if (_itemContext.StopRequest is { } request)
                    {
                        // An in-script cmdlet of the item met the stop request: the run script ends Stopped.
                        _owner._context.StopRequest ??= request;
                        _owner.SetFatal(new RunToolsException(ErrorIds.StopRequested, RunToolsErrorCategory.OperationStopped,
                            $"Run '{engine.Run.RunId}' was asked to stop by {request.RequestedBy}.", engine.Run.RunId));
                    }

                    return;
                }

                result.Error = _itemContext.FailureCause ?? ex;
            }
            finally
            {
                _itemContext.ItemKey = null;
                result.Errors = shell.Streams.Error.ReadAll();
                result.Warnings = shell.Streams.Warning.ReadAll();
                result.Verbose = shell.Streams.Verbose.ReadAll();
                result.Information = shell.Streams.Information.ReadAll();
                shell.Streams.ClearStreams();
            }

            if (result.Error is not null)
            {
                return;
            }

            try
            {
                byte[]? recorded = output!.Count == 0 ? null : Conversion.Serialize(output);
                engine.CompleteItem(_owner._step, job.Key, recorded, recorded is null ? null : "clixml");
                result.Output = Conversion.Deserialize(recorded).ToList();
            }
            catch (RunToolsException ex)
            {
                _owner.SetFatal(ex);
                result.Abandoned = true;
            }
        }
    }
}
