using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>
/// One worker runspace of the pool, on a thread of its own (the runspace runs on it): serves one
/// call at a time, taking that call's items until the call has no more. Between attempts it may
/// wait, detached from any run, in <see cref="IdleItemWorkers"/> for the next attempt of this process.
/// </summary>
internal sealed partial class ItemWorker
{
    /// <summary>Its runspace's name while it serves an attempt; Get-Runspace shows it.</summary>
    internal const string BusyName = "RunToolsItemWorker";

    /// <summary>Its runspace's name while it waits, attached to no run, for the next attempt.</summary>
    internal const string IdleName = "RunToolsItemWorker(idle)";

    /// <summary>
    /// The worker's pipeline for one call: its items run inside the call of the delegate. Run in a
    /// scope of its own, so that its parameter is not a global variable (a global an item did not
    /// set would make the worker's state look changed, and cost a reset, see WorkerBaseline).
    /// </summary>
    private const string ServeScript = "param($__runtoolsServe) $__runtoolsServe.Invoke()";

    private readonly PSHost _host;
    private readonly IReadOnlyList<string> _initialModules;

    // The modules imported in the runspace, in the order imported: what makes it fit an attempt (see Fits).
    private readonly List<string> _imported = new();

    // What the item running now wrote to its streams, in order (see Collect).
    private readonly List<object> _messages = new();
    private readonly BlockingCollection<ParallelItemRunner> _assignments = new();
    private readonly Thread _thread;
    private readonly object _callGate = new();
    private ItemWorkerPool? _pool;
    private RunContext? _itemContext;
    private Runspace? _runspace;
    private PowerShell? _shell;

    // The nested pipeline of the item running now under -TimeoutSec; null when none.
    private volatile PowerShell? _timed;
    private object[]? _retryOn;
    private volatile Exception? _openFailure;
    private ParallelItemRunner? _call;
    private bool _used;
    private WorkerBaseline? _baseline;
    private volatile bool _stopped;
    private volatile bool _cutOff;
    private int _timedOut;

    public ItemWorker(ItemWorkerPool pool, PSHost host, IReadOnlyList<string> modules, RunContext itemContext)
    {
        _pool = pool;
        _host = host;
        _initialModules = modules;
        _itemContext = itemContext;
        _thread = new Thread(Loop) { IsBackground = true, Name = "RunTools item worker" };
        _thread.Start();
    }

    /// <summary>Its runspace could not be opened: it fails the call it is given, and is not reused.</summary>
    public bool Broken => _openFailure is not null;

    /// <summary>The run context of the items it runs now (attached to an attempt: it serves a call of it).</summary>
    private RunContext ItemContext => _itemContext ?? throw new InvalidOperationException("An item worker ran an item while attached to no attempt.");

    /// <summary>
    /// Whether this worker, waiting idle, can serve an attempt whose run script has
    /// <paramref name="modules"/> imported and writes to <paramref name="host"/>: the same host
    /// (Write-Host and prompts of items go to it) and exactly the same modules, imported in the
    /// same order (a module more or fewer would change which commands the items find).
    /// </summary>
    public bool Fits(PSHost host, IReadOnlyList<string> modules)
    {
        lock (_callGate)
        {
            return ReferenceEquals(_host, host) && _imported.SequenceEqual(modules, StringComparer.Ordinal);
        }
    }

    /// <summary>A worker waiting idle now serves <paramref name="pool"/>'s attempt, as the items of <paramref name="itemContext"/>.</summary>
    public void Attach(ItemWorkerPool pool, RunContext itemContext)
    {
        lock (_callGate)
        {
            _pool = pool;
            _itemContext = itemContext;
        }

        RunContext.Enter(_runspace!, itemContext);
        _runspace!.Name = BusyName;
    }

    /// <summary>
    /// The attempt has ended: lets go of its run, to wait for the next attempt. False when the
    /// worker must close instead: it is still serving a call, it was stopped or an item of it was
    /// cut off mid-work (its runspace's state is not known), or it could not open.
    /// </summary>
    public bool Detach()
    {
        lock (_callGate)
        {
            if (_call is not null || _stopped || _cutOff || Broken || _runspace is null || _assignments.IsAddingCompleted)
            {
                return false;
            }

            _pool = null;
            _itemContext = null;
        }

        RunContext.Leave(_runspace);
        _runspace.Name = IdleName;
        return true;
    }

    /// <summary>Gives the worker a call to serve (it is not serving another).</summary>
    public void Assign(ParallelItemRunner call) => _assignments.Add(call);

    /// <summary>Ctrl+C of <paramref name="call"/>: its item in flight is stopped mid-work, and no other is started.</summary>
    public void Stop(ParallelItemRunner call)
    {
        lock (_callGate)
        {
            if (!ReferenceEquals(_call, call))
            {
                return; // already done with that call, perhaps serving the next one
            }

            _stopped = true;
        }

        StopShell();
    }

    /// <summary>The attempt has ended: anything still running is stopped, then the runspace closes.</summary>
    public void Close()
    {
        lock (_callGate)
        {
            if (_call is not null)
            {
                _stopped = true;
                StopShell();
            }
        }

        _assignments.CompleteAdding();
    }

    public void Join(TimeSpan patience) => _thread.Join(patience);

    private void StopShell()
    {
        // The item's own pipeline first, when it runs under a time limit (nested in the worker's).
        foreach (var shell in new[] { _timed, _shell })
        {
            try
            {
                shell?.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
            }
        }
    }

    private void Loop()
    {
        try
        {
            Open();
        }
        catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException || ex is System.IO.IOException)
        {
            _openFailure = ex;
        }

        try
        {
            foreach (var call in _assignments.GetConsumingEnumerable())
            {
                ItemWorkerPool? pool;
                lock (_callGate)
                {
                    _call = call;
                    _stopped = false;
                    pool = _pool;
                }

                // Threads an item starts report a wrong use to this attempt, not to the one that opened the worker.
                RunContext.Adopt(call.Context.AttemptContext);
                try
                {
                    Serve(call);
                }
                finally
                {
                    lock (_callGate)
                    {
                        _call = null;
                    }

                    pool?.Return(this);
                    call.WorkerDone();
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
            _assignments.Dispose();
        }
    }

    private void Open()
    {
        var state = InitialSessionState.CreateDefault2();
        if (_initialModules.Count > 0)
        {
            state.ImportPSModule(_initialModules.ToArray());
        }

        var runspace = RunspaceFactory.CreateRunspace(new ItemWorkerHost(_host), state);
        runspace.ThreadOptions = PSThreadOptions.UseCurrentThread;
        runspace.Name = BusyName;
        runspace.Open();
        _imported.AddRange(_initialModules);
        Runspace.DefaultRunspace = runspace;
        lock (_callGate)
        {
            // Published under the gate: Detach reads it from the attempt's thread.
            _runspace = runspace;
            RunContext.Enter(runspace, _itemContext!);
        }

        _shell = PowerShell.Create();
        _shell.Runspace = _runspace;
        Collect(_shell.Streams);
    }

    /// <summary>Takes the call's items until it has no more; each is recorded, or abandoned (left pending or in doubt).</summary>
    private void Serve(ParallelItemRunner call)
    {
        ScriptBlock? body = null;
        try
        {
            if (_openFailure is { } failure)
            {
                throw failure;
            }

            body = Prepare(call);
        }
        catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException || ex is System.IO.IOException)
        {
            call.SetFatal(new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidOperation,
                $"A runspace for parallel items could not be opened: {ex.Message} Run the items without -ThrottleLimit, or fix the module that failed to import.", null, ex));
        }

        if (body is not null)
        {
            ServeInOnePipeline(call, body);
        }

        // Whatever is left (no body, or the pipeline could not run them) stays pending.
        TakeItems(call, null);
        Forget(call);
    }

    /// <summary>
    /// Runs the call's items inside one pipeline of the worker's runspace, started once for the
    /// call: each item is then one invocation of the body in that running pipeline, not a
    /// PowerShell instance, a pipeline and a ForEach-Object of its own (which cost several times
    /// the durable work per item). Ctrl+C stops this pipeline, and with it the item in flight.
    /// </summary>
    private void ServeInOnePipeline(ParallelItemRunner call, ScriptBlock body)
    {
        var shell = _shell!;
        bool ran = false;
        System.Runtime.ExceptionServices.ExceptionDispatchInfo? escaped = null;
        Action serve = () =>
        {
            ran = true;
            try
            {
                TakeItems(call, body);
            }
            catch (Exception ex)
            {
                // Not for the script to wrap in a MethodInvocationException: rethrown as it is below.
                escaped = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex);
            }
        };
        shell.Commands.Clear();
        shell.AddScript(ServeScript, useLocalScope: true).AddArgument(serve);
        try
        {
            shell.Invoke();
        }
        catch (RuntimeException) when (_stopped)
        {
            // Ctrl+C stopped the pipeline before or after its items: nothing of an item was lost.
        }
        finally
        {
            shell.Commands.Clear();
            shell.Streams.ClearStreams();
            _messages.Clear();
        }

        escaped?.Throw();
        if (!ran && !_stopped)
        {
            call.SetFatal(new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidOperation,
                "A worker runspace for parallel items ended its pipeline before running its items. Run the items without -ThrottleLimit, and report the problem.", null));
        }
    }

    /// <summary>
    /// Takes the call's items until it has no more; each is run with <paramref name="body"/> and
    /// recorded, or abandoned (left pending, or in doubt when cut off) when there is no body or
    /// items are no longer started.
    /// </summary>
    private void TakeItems(ParallelItemRunner call, ScriptBlock? body)
    {
        var engine = call.Context.Engine;
        while (call.HandOff.TryTake(out var job))
        {
            var result = new ParallelItemRunner.Result(job.Key, job.Input);
            try
            {
                if (_stopped || call.StopStarting || call.Fatal is not null || body is null)
                {
                    engine.ReleaseItem(job.Key);
                    result.Abandoned = true;
                    continue;
                }

                try
                {
                    engine.ThrowIfStopRequested();
                    engine.StartItem(call.Step, job.Key);
                }
                catch (RunToolsException ex)
                {
                    engine.ReleaseItem(job.Key);
                    call.SetFatal(ex);
                    result.Abandoned = true;
                    continue;
                }

                Run(call, engine, body, job, result);
            }
            finally
            {
                call.AddResult(result);
            }
        }
    }

    /// <summary>The call is done: its <c>$using:</c> values are not kept alive by a worker waiting for the next call or attempt.</summary>
    private void Forget(ParallelItemRunner call)
    {
        _retryOn = null;
        if (_runspace is null || _openFailure is not null)
        {
            return;
        }

        foreach (string name in call.UsingValues.Keys)
        {
            try
            {
                _runspace.SessionStateProxy.PSVariable.Remove(name);
            }
            catch (Exception ex) when (ex is RuntimeException || ex is InvalidOperationException)
            {
                // Removed by an item already, or the runspace is closing: nothing is kept either way.
            }
        }
    }

    /// <summary>
    /// Makes the runspace ready for <paramref name="call"/>: a clean variable table after an earlier
    /// call, any module the run imported since, the run's location, preferences and $using: values,
    /// and the body made in this runspace.
    /// </summary>
    private ScriptBlock Prepare(ParallelItemRunner call)
    {
        var runspace = _runspace!;
        if (_used && (_baseline is null || !_baseline.Holds(_shell!, runspace, SetPerCall) || call.Preferences.Values.Any(v => v is null)))
        {
            // As ForEach-Object -Parallel does when it reuses a runspace: nothing an earlier call's items set is seen.
            // Skipped when they left nothing (see WorkerBaseline): the reset's own location change is its dearest part.
            runspace.ResetRunspaceState();
        }

        // Until this call's baseline is taken, a failure here leaves the runspace to be reset next time.
        _baseline = null;
        _used = true;
        var missing = call.Modules.Where(m => !_imported.Contains(m, StringComparer.Ordinal)).ToArray();
        if (missing.Length > 0)
        {
            var shell = _shell!;
            shell.Commands.Clear();
            shell.AddCommand("Import-Module").AddParameter("Name", missing).AddParameter("ErrorAction", ActionPreference.Stop);
            try
            {
                shell.Invoke();
            }
            finally
            {
                shell.Commands.Clear();
                shell.Streams.ClearStreams();
                _messages.Clear();
            }

            lock (_callGate)
            {
                _imported.AddRange(missing);
            }
        }

        var variables = runspace.SessionStateProxy;
        foreach (var preference in call.Preferences.Where(p => p.Value is not null))
        {
            variables.SetVariable(preference.Key, preference.Value);
        }

        foreach (var pair in call.UsingValues)
        {
            variables.SetVariable(pair.Key, pair.Value);
        }

        if (call.Location is { Length: > 0 } location)
        {
            SetLocation(variables, location);
        }

        // Created inside the worker's runspace, so it runs there and not back in the caller's.
        var body = MakeScriptBlock(call.Script);
        _retryOn = call.RetryOn?.Select(r => r is ParallelItemRunner.ScriptText text ? MakeScriptBlock(text) : r).ToArray();
        _baseline = WorkerBaseline.Take(_shell!, runspace, SetPerCall);
        return body;
    }

    /// <summary>Variables every call sets anew: whatever an earlier call's items left in them does not reach the next call.</summary>
    private static bool SetPerCall(string name) =>
        name.StartsWith(ParallelItemRunner.UsingPrefix, StringComparison.OrdinalIgnoreCase) || string.Equals(name, "PWD", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Moves the runspace to the caller's location (a file system path, as the caller's
    /// CurrentFileSystemLocation gives it). Set-Location would check the path through the provider
    /// and fix its casing by listing every parent folder, tens of milliseconds under a large
    /// folder; the caller's path is already resolved and cased, so on the current drive this sets
    /// the drive's location and <c>$PWD</c> as Set-Location ends up doing.
    /// </summary>
    private static void SetLocation(SessionStateProxy state, string location)
    {
        if (string.Equals(state.Path.CurrentFileSystemLocation?.ProviderPath, location, StringComparison.Ordinal))
        {
            return;
        }

        var drive = state.Drive.Current;
        if (drive is { Provider.Name: "FileSystem" } && !string.IsNullOrEmpty(drive.Root)
            && string.Equals(System.IO.Path.GetPathRoot(location), drive.Root, StringComparison.OrdinalIgnoreCase) && System.IO.Directory.Exists(location))
        {
            drive.CurrentLocation = location.Substring(drive.Root.Length);
            state.PSVariable.Set("PWD", state.Path.CurrentLocation);
            return;
        }

        state.Path.SetLocation(WildcardPattern.Escape(location));
    }

    private ScriptBlock MakeScriptBlock(ParallelItemRunner.ScriptText script)
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
}
