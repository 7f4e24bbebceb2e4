using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Language;
using System.Threading;
using RunTools.Core;

namespace RunTools;

/// <summary>
/// Invoke-RunItem -ThrottleLimit: up to N items of the running step at once, each in one of N
/// worker runspaces leased from the attempt's <see cref="ItemWorkerPool"/> (with the modules of the
/// run's runspace imported, <c>$using:</c> values copied in, <c>$_</c> the item), as
/// ForEach-Object -Parallel does. The pipeline thread decides and claims each key (in-doubt
/// decisions run there); workers journal the intent, run the body and record the outcome, and
/// their intents share flushes (group commit). Output and streams come back to the pipeline
/// thread in completion order.
/// </summary>
internal sealed class ParallelItemRunner : IDisposable
{
    private readonly ItemHandOff<Job, Result> _handOff;
    private readonly IReadOnlyList<ItemWorker> _workers;
    private readonly CountdownEvent _workersDone;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<string, object?> _preferences = new(StringComparer.OrdinalIgnoreCase);
    private RunToolsException? _fatal;
    private volatile bool _stopStarting;
    // Pipeline thread only: items queued whose result it has not written yet.
    private int _inFlight;

    /// <summary>How the variables holding the <c>$using:</c> values in a worker begin.</summary>
    internal const string UsingPrefix = "__runtools_using_";

    private readonly Action<Result> _writeMessages;

    /// <param name="writeMessages">Writes a finished item's messages alone: for the items that finish after an error stopped the run script.</param>
    public ParallelItemRunner(UnitCmdletBase cmdlet, RunContext context, string step, ScriptBlock body, int throttleLimit, Action<Result> writeMessages)
    {
        _writeMessages = writeMessages;
        Unit = cmdlet;
        ScriptName = cmdlet.MyInvocation.ScriptName;
        Context = context;
        Step = step;
        _handOff = new ItemHandOff<Job, Result>(throttleLimit);
        foreach (string preference in new[] { "ErrorActionPreference", "WarningPreference", "VerbosePreference", "InformationPreference", "DebugPreference", "ProgressPreference" })
        {
            // The run script's error rule and stream preferences hold in its items too.
            _preferences[preference] = cmdlet.SessionState.PSVariable.GetValue(preference);
        }

        Script = WithUsingVariables(body, cmdlet, out var usingValues);
        UsingValues = usingValues;

        // Script blocks of -RetryOn are made again in each worker, like the body, so they run there;
        // their $using: values are set in the worker with the body's.
        RetryOn = cmdlet.RetryOn?.Select(r => r is PSObject p ? p.BaseObject : r)!
            .Select(r => r is ScriptBlock sb ? WithUsingVariables(sb, cmdlet, out _, usingValues) : r).ToArray();

        // Under 'Stop' an item's final failure ends the step: once one is recorded, no worker starts
        // another item, even before the pipeline thread writes that failure.
        object? action = cmdlet.MyInvocation.BoundParameters.TryGetValue("ErrorAction", out var bound) ? bound : _preferences["ErrorActionPreference"];
        FailureStops = LanguagePrimitives.TryConvertTo(action, out ActionPreference errorAction) && errorAction == ActionPreference.Stop;
        Modules = LoadedModulePaths(cmdlet);

        // As ForEach-Object -Parallel: items run where the run script is (its file system location).
        Location = cmdlet.SessionState.Path.CurrentFileSystemLocation?.ProviderPath;
        _workers = ItemWorkerPool.For(context).Lease(throttleLimit, cmdlet.Host, Modules);
        _workersDone = new CountdownEvent(_workers.Count);
        foreach (var worker in _workers)
        {
            worker.Assign(this);
        }
    }

    /// <summary>The first failure that ends the attempt (a journal write, a stop request): no more items are started.</summary>
    public RunToolsException? Fatal => Volatile.Read(ref _fatal);

    internal UnitCmdletBase Unit { get; }

    internal string? ScriptName { get; }

    internal RunContext Context { get; }

    internal string Step { get; }

    /// <summary>The body, with its <c>$using:</c> references renamed to the variables in <see cref="UsingValues"/>.</summary>
    internal ScriptText Script { get; }

    internal IReadOnlyDictionary<string, object?> UsingValues { get; }

    /// <summary>-RetryOn's rules: types and names as given, script blocks as <see cref="ScriptText"/>.</summary>
    internal object[]? RetryOn { get; }

    internal IReadOnlyList<string> Modules { get; }

    internal string? Location { get; }

    internal IReadOnlyDictionary<string, object?> Preferences => _preferences;

    /// <summary>The queue of claimed items the workers take from, and their results.</summary>
    internal ItemHandOff<Job, Result> HandOff => _handOff;

    /// <summary>Set when an item's error stops the run script: items not started yet stay pending.</summary>
    internal bool StopStarting => _stopStarting;

    /// <summary>Whether an item's final failure stops the run script ('Stop', the default in runs).</summary>
    internal bool FailureStops { get; }

    /// <summary>A worker recorded an item's final failure: under 'Stop' no other item starts.</summary>
    internal void ItemFailedFinally()
    {
        if (FailureStops)
        {
            _stopStarting = true;
        }
    }

    /// <summary>Hands a claimed item to a free worker; blocks while all are busy, writing what finished meanwhile.</summary>
    public void Enqueue(string key, object? input, Action<Result> write)
    {
        var job = new Job(key, input);
        var finished = new List<Result>();
        bool queued = false;
        try
        {
            while (!queued)
            {
                finished.Clear();
                queued = _handOff.AddOrTakeResults(job, finished, _stopping.Token);
                if (queued)
                {
                    _inFlight++;
                    _handOff.TakeResults(finished, wait: false);
                }

                Write(finished, write);
            }
        }
        catch (Exception ex) when (!queued && ex is RuntimeException)
        {
            // Writing an earlier item stopped the run script before this one was queued: it never started, it stays pending.
            Context.Engine.ReleaseItem(key);
            throw;
        }
    }

    /// <summary>Writes finished items' output and streams; with <paramref name="wait"/>, until no item is left in flight.</summary>
    public void Drain(Action<Result> write, bool wait)
    {
        var finished = new List<Result>();
        do
        {
            finished.Clear();
            _handOff.TakeResults(finished, wait && _inFlight > 0);
            Write(finished, write);
        }
        while (wait && _inFlight > 0);
    }

    /// <summary>No more items: lets the workers finish what they hold and go back to the pool.</summary>
    public void Complete() => _handOff.Complete();

    /// <summary>Ctrl+C: items in flight are stopped mid-work and left in doubt; items not started stay pending.</summary>
    public void Stop()
    {
        _stopping.Cancel();
        foreach (var worker in _workers)
        {
            worker.Stop(this);
        }
    }

    public void Dispose()
    {
        _handOff.Complete();

        // The workers stay open in the pool for the attempt's next call; this call is done when each has let go of it.
        bool done = _workersDone.Wait(TimeSpan.FromSeconds(30));
        Drain(_ => { }, wait: false);
        if (done)
        {
            // Not while a worker that did not let go in time may still add a result.
            _stopping.Dispose();
            _handOff.Dispose();
            _workersDone.Dispose();
        }
    }

    /// <summary>A worker has finished with this call (every item it took is in <see cref="AddResult"/>).</summary>
    internal void WorkerDone() => _workersDone.Signal();

    internal void AddResult(Result result) => _handOff.AddResult(result);

    /// <summary>Writes <paramref name="finished"/> in order (pipeline thread); an error that stops the run script lets the items in flight finish first.</summary>
    private void Write(List<Result> finished, Action<Result> write)
    {
        for (int i = 0; i < finished.Count; i++)
        {
            _inFlight--;
            try
            {
                write(finished[i]);
            }
            catch (Exception ex) when (ex is RuntimeException)
            {
                // Writing made the run script stop (an item's error under 'Stop'): no new item
                // starts, the ones in flight finish and are recorded, then the error goes on. Their
                // output is not written (the run script is ending), their messages are: they ran.
                _stopStarting = true;
                for (int j = i + 1; j < finished.Count; j++)
                {
                    WriteMessagesOf(finished[j]);
                }

                _inFlight -= finished.Count - i - 1;
                Drain(WriteMessagesOf, wait: true);
                throw;
            }
        }
    }

    private void WriteMessagesOf(Result result)
    {
        try
        {
            _writeMessages(result);
        }
        catch (Exception ex) when (ex is RuntimeException)
        {
            // The run script is already ending with an error; a message that cannot be written is not another one.
        }
    }

    internal void SetFatal(RunToolsException error) => Interlocked.CompareExchange(ref _fatal, error, null);

    /// <summary>
    /// The body's text with each <c>$using:x</c> replaced by a variable set in the worker, and the
    /// values taken from the caller's scope now, as ForEach-Object -Parallel copies them. The text
    /// is padded to its place in its file (no replacement adds a line), so that an error inside a
    /// parallel item names the run script's file and line, as it does in a sequential one.
    /// </summary>
    private static ScriptText WithUsingVariables(ScriptBlock body, PSCmdlet cmdlet, out Dictionary<string, object?> values, Dictionary<string, object?>? into = null)
    {
        values = into ?? new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase);
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
            string name = UsingPrefix + variable.VariablePath.UserPath.Replace(':', '_');
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

        /// <summary>
        /// What the item's last try wrote to its error, warning, verbose, debug and information
        /// streams (ErrorRecord, WarningRecord, VerboseRecord, DebugRecord, InformationRecord), in
        /// the order written.
        /// </summary>
        public IReadOnlyList<object> Messages { get; set; } = Array.Empty<object>();
    }
}
