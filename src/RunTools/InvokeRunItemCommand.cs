using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>Inside a run script: for each input object runs the script block once per key per run; completed keys are skipped and their output emitted again.</summary>
[Cmdlet(VerbsLifecycle.Invoke, "RunItem", HelpUri = HelpLinks.Pages + "Invoke-RunItem.md")]
[OutputType(typeof(object))]
public sealed class InvokeRunItemCommand : UnitCmdletBase, IDisposable
{
    private ParallelItemRunner? _parallel;
    private ItemKeyReader? _keyReader;
    private RunContext? _context;
    private string _step = string.Empty;
    private bool _ownsStep;
    private StepAction _stepAction;
    private long _processed;
    private long _lastProgress;
    private bool _verbose;

    // Keys another process of the attempt held when met (Join-Run), with their input objects.
    private readonly Dictionary<string, object?> _elsewhere = new(StringComparer.Ordinal);

    [Parameter(Mandatory = true, ValueFromPipeline = true)]
    [AllowNull]
    public object? InputObject { get; set; }

    /// <summary>A script block computing the key from $_, or the name of a property of the input object.</summary>
    [Parameter(Mandatory = true)]
    [ValidateNotNull]
    public object Key { get; set; } = null!;

    /// <summary>The step the items belong to; defaults to the enclosing Invoke-RunStep.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Step { get; set; }

    [Parameter(Mandatory = true, Position = 0)]
    public ScriptBlock ScriptBlock { get; set; } = null!;

    /// <summary>How many items run at once, each in its own runspace (as ForEach-Object -Parallel); 1, the default, runs them one by one in the script's runspace.</summary>
    [Parameter]
    [ValidateRange(1, 64)]
    public int ThrottleLimit { get; set; } = 1;

    protected override void BeginProcessing()
    {
        // Read once: a resume may pass 100,000 finished keys, and a message per key costs only when asked for.
        _verbose = GetVariableValue("VerbosePreference") is ActionPreference.Continue
            || (MyInvocation.BoundParameters.TryGetValue("Verbose", out object? flag) && flag is SwitchParameter { IsPresent: true });
        _context = RequireContext();
        var engine = _context.Engine;
        if (Key is not System.Management.Automation.ScriptBlock && Key is not string)
        {
            Terminate(_context, new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                "-Key takes a script block that computes the key from $_, or the name of a property."), Key);
        }

        if (Step is null || Step == engine.ActiveStep)
        {
            if (engine.ActiveStep is null)
            {
                Terminate(_context, new RunToolsException(ErrorIds.StepNotRunning, RunToolsErrorCategory.InvalidOperation,
                    "Invoke-RunItem needs a step: pass -Step, or call it inside Invoke-RunStep."), null);
            }

            _step = engine.ActiveStep!;
            _stepAction = StepAction.Run;
            return;
        }

        try
        {
            _step = Step;
            _ownsStep = true;
            WriteProgress(RunProgress.ForStep(_context, Step));
            _stepAction = engine.BeginStep(Step, null, itemsOnly: true);
        }
        catch (RunToolsException ex)
        {
            Terminate(_context, ex, Step);
        }
    }

    protected override void ProcessRecord()
    {
        var context = _context!;
        var engine = context.Engine;
        if (_stepAction is StepAction.GatedOut or StepAction.Skip)
        {
            return;
        }

        string key = ComputeKey();
        _processed++;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_processed == 1 || now - _lastProgress > System.Diagnostics.Stopwatch.Frequency / 5)
        {
            // At most five progress records a second: a resume passing 100,000 finished keys must not pay for 100,000.
            _lastProgress = now;
            WriteProgress(RunProgress.ForItems(_step, $"{_processed} item(s); current: {key}"));
        }
        ItemAction action = ItemAction.Skip;
        try
        {
            action = _stepAction == StepAction.Replay
                ? (engine.IsItemDone(_step, key) ? ItemAction.Replay : ItemAction.Skip)
                : ThrottleLimit > 1 ? engine.ClaimItem(_step, key, item => Decide(context, item)) : engine.BeginItem(_step, key, item => Decide(context, item));
        }
        catch (RunToolsException ex)
        {
            if (_parallel is { } parallel)
            {
                // Items in flight finish (or are stopped) before the run script ends.
                parallel.Complete();
                parallel.Drain(WriteResult, wait: true);
            }

            Terminate(context, ex, InputObject);
        }

        if (action == ItemAction.Replay)
        {
            if (_verbose)
            {
                WriteVerbose($"Item '{key}' of step '{_step}' completed earlier; emitting its recorded output.");
            }

            foreach (object? value in Conversion.Deserialize(engine.ReadItemOutput(_step, key)))
            {
                WriteObject(value);
            }

            return;
        }

        if (action == ItemAction.Skip)
        {
            WriteVerbose($"Item '{key}' was in doubt and is skipped as done.");
            return;
        }

        if (action == ItemAction.Elsewhere)
        {
            // Another process of the attempt (a joined worker, or the owner) has it: awaited at the end of the call.
            _elsewhere[key] = InputObject;
            return;
        }

        if (ThrottleLimit > 1)
        {
            RunInParallel(context, key);
            return;
        }

        System.Collections.ObjectModel.Collection<PSObject>? output = null;
        var tries = NewTries(engine);
        tries.BeginTry = tryNumber =>
        {
            try
            {
                engine.BeginItem(_step, key, null, tryNumber);
            }
            catch (RunToolsException ex)
            {
                Terminate(context, ex, InputObject);
            }

            return true;
        };
        tries.RecordFailure = (ex, tryNumber, wait) =>
        {
            bool timedOut = RunExecutor.Unwrap(ex) is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };
            engine.FailItem(_step, key, Failure(RunExecutor.Explain(ex, MyInvocation.ScriptName), ex, timedOut, tryNumber, wait));
            return true;
        };
        tries.Waiting = (ex, tryNumber, delay) =>
            WriteVerbose($"Item '{key}' failed on try {tryNumber} of {MaxTries} ({ex.Message}); trying again in {delay.TotalSeconds:0.###} s.");
        var outcome = tries.Run(tryNumber =>
        {
            try
            {
                output = InvokeTimed(ScriptBlock, InputObject, out _);
                return null;
            }
            catch (Exception ex) when (IsUnitFailure(ex))
            {
                return ex;
            }
        });
        switch (outcome.End)
        {
            case UnitTriesEnd.Stopped:
                Terminate(context, (RunToolsException)outcome.Error!, InputObject);
                break;
            case UnitTriesEnd.Interrupted:
                throw new PipelineStoppedException();
            case UnitTriesEnd.Failed:
                // Under the run's default 'Stop' this error ends the step (-ErrorAction Continue lets the other items run).
                WriteError(ItemFailedRecord(outcome.Error!, key, InputObject, outcome.Tries));
                return;
        }

        if (context.Misuse is { } misuse)
        {
            // A call from another runspace during the body could not record its work: the item is not done.
            engine.FailItem(_step, key, Failure(misuse.Message, misuse, false, 1, null));
            Fail(context, $"item '{key}' of step '{_step}' failed: {misuse.Message}", misuse);
        }

        try
        {
            byte[]? recorded = output!.Count == 0 ? null : Conversion.Serialize(output);
            engine.CompleteItem(_step, key, recorded, recorded is null ? null : "clixml");
            foreach (object? value in Conversion.Deserialize(recorded))
            {
                WriteObject(value);
            }
        }
        catch (RunToolsException ex)
        {
            Terminate(context, ex, InputObject);
        }
    }

    protected override void EndProcessing()
    {
        if (_parallel is { } parallel)
        {
            parallel.Complete();
            parallel.Drain(WriteResult, wait: true);
            if (parallel.Fatal is { } fatal)
            {
                Terminate(_context!, fatal, _step);
            }
        }

        AwaitItemsElsewhere();
        var done = RunProgress.ForItems(_step, "done");
        done.RecordType = ProgressRecordType.Completed;
        WriteProgress(done);
        if (_ownsStep && _stepAction == StepAction.Run)
        {
            try
            {
                _context!.Engine.CompleteStep(_step, null);
            }
            catch (RunToolsException ex)
            {
                Terminate(_context!, ex, _step);
            }
        }
    }

    /// <summary>
    /// The items other processes of the attempt held (Join-Run): waits for each, emits the output
    /// of those completed elsewhere (as a resume replays it), writes ItemFailed for those that
    /// failed elsewhere, and runs here those whose worker died (the owner took them over).
    /// </summary>
    private void AwaitItemsElsewhere()
    {
        var context = _context!;
        var engine = context.Engine;
        while (_elsewhere.Count > 0)
        {
            // The call's own parallel items are drained; an item taken over gets a runner of its own.
            _parallel?.Dispose();
            _parallel = null;
            WriteProgress(RunProgress.ForItems(_step, $"waiting for {_elsewhere.Count} item(s) held by other workers of the run"));
            IReadOnlyList<(string Key, ElsewhereOutcome Outcome, string? Error)> outcomes = Array.Empty<(string, ElsewhereOutcome, string?)>();
            try
            {
                outcomes = engine.AwaitItemsElsewhere(_step, _elsewhere.Keys.ToList());
            }
            catch (RunToolsException ex)
            {
                Terminate(context, ex, _step);
            }

            foreach (var (key, outcome, error) in outcomes)
            {
                object? input = _elsewhere[key];
                _elsewhere.Remove(key);
                switch (outcome)
                {
                    case ElsewhereOutcome.Completed:
                        foreach (object? value in Conversion.Deserialize(engine.ReadItemOutput(_step, key)))
                        {
                            WriteObject(value);
                        }

                        break;
                    case ElsewhereOutcome.Failed:
                        WriteError(new ErrorRecord(
                            new RunToolsException(ErrorIds.ItemFailed, RunToolsErrorCategory.InvalidResult, $"Item '{key}' of step '{_step}' failed in another worker of the run: {RunExecutor.Sentence(error ?? "no reason recorded")} It is retried when the run is resumed.", key),
                            ErrorIds.ItemFailed, ErrorCategory.InvalidResult, input));
                        break;
                    case ElsewhereOutcome.RunHere:
                        WriteVerbose($"Item '{key}' was held by a worker that is gone; it runs here.");
                        InputObject = input;
                        ProcessRecord();
                        break;
                }
            }

            if (_parallel is { } parallel)
            {
                parallel.Complete();
                parallel.Drain(WriteResult, wait: true);
                if (parallel.Fatal is { } fatal)
                {
                    Terminate(context, fatal, _step);
                }
            }
        }
    }

    /// <summary>Ctrl+C: parallel items in flight are stopped mid-work (left in doubt); those not started stay pending.</summary>
    protected override void StopProcessing()
    {
        base.StopProcessing();
        _parallel?.Stop();
    }

    /// <summary>An error of the item's own work (not a stop): it fails the try.</summary>
    internal static bool IsUnitFailure(Exception ex) =>
        (ex is RuntimeException && ex is not PipelineStoppedException && RunExecutor.Unwrap(ex) is not RunStoppedException)
        || ex is RunToolsException { ErrorId: ErrorIds.UnitTimedOut };

    public void Dispose()
    {
        _parallel?.Dispose();
        _parallel = null;
    }

    private void RunInParallel(RunContext context, string key)
    {
        try
        {
            _parallel ??= new ParallelItemRunner(this, context, _step, ScriptBlock, ThrottleLimit, WriteMessages);
            _parallel.Enqueue(key, InputObject, WriteResult);
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C while waiting for a free worker: the claimed item never started, so it stays
            // pending and is not reported as the item the stop interrupted.
            context.Engine.ReleaseItem(key);
            throw new PipelineStoppedException();
        }

        if (_parallel.Fatal is { } fatal)
        {
            // A stop request or a journal failure: let the items in flight finish, then end the run script.
            _parallel.Complete();
            _parallel.Drain(WriteResult, wait: true);
            Terminate(context, fatal, key);
        }
    }

    private static readonly ScriptBlock s_forwardError = ScriptBlock.Create("param($Record) Write-Error -ErrorRecord $Record -ErrorAction Continue");

    private void WriteResult(ParallelItemRunner.Result result)
    {
        WriteMessages(result);
        if (result.Error is { } error)
        {
            if (_parallel?.Fatal is RunStoppedException)
            {
                // The run is stopping (a stop during this item's retry wait, or elsewhere): the
                // failure is recorded and a resume tries the item again. Written as an error, it
                // would end the run as Failed under 'Stop' before the stop is honoured.
                WriteWarning(ItemFailedRecord(error, result.Key, result.Input, result.FailedTries).ErrorDetails.Message);
                return;
            }

            WriteError(ItemFailedRecord(error, result.Key, result.Input, result.FailedTries));
            return;
        }

        foreach (object? value in result.Output)
        {
            WriteObject(value);
        }
    }

    /// <summary>What a parallel item wrote to its error, warning, verbose, debug and information streams, in its order.</summary>
    private void WriteMessages(ParallelItemRunner.Result result)
    {
        foreach (object message in result.Messages)
        {
            switch (message)
            {
                case ErrorRecord record:
                    // The item already let this error pass (its own -ErrorAction or preference);
                    // written here through this cmdlet it would meet its 'Stop' again and end the
                    // run. Written by Write-Error -ErrorAction Continue, it reaches the error
                    // stream as it would have from a sequential item.
                    s_forwardError.InvokeReturnAsIs(record);
                    break;
                case WarningRecord record:
                    WriteWarning(record.Message);
                    break;
                case VerboseRecord record:
                    WriteVerbose(record.Message);
                    break;
                case DebugRecord record:
                    WriteDebug(record.Message);
                    break;
                case InformationRecord record:
                    WriteInformation(record);
                    break;
            }
        }
    }

    /// <summary>ItemFailed for an item whose last try failed: the real error (its ErrorId, category and line) inside, a message that says what happens next.</summary>
    private ErrorRecord ItemFailedRecord(Exception ex, string key, object? input, int tries)
    {
        string reason = RunExecutor.Explain(ex, MyInvocation.ScriptName);
        var cause = RunExecutor.Cause(ex, MyInvocation.ScriptName);
        var category = cause is RunToolsException core ? MapCategory(core.Category)
            : (cause as IContainsErrorRecord)?.ErrorRecord.CategoryInfo.Category ?? ErrorCategory.NotSpecified;
        return new ErrorRecord(cause, ErrorIds.ItemFailed, category, input)
        {
            ErrorDetails = new ErrorDetails($"Item '{key}' of step '{_step}' failed{(tries > 1 ? $" on all {tries} tries" : string.Empty)}: {RunExecutor.Sentence(reason)} It is retried when the run is resumed."),
        };
    }

    private string ComputeKey()
    {
        _keyReader ??= new ItemKeyReader(Key);
        object? value = _keyReader.Read(InputObject, InvokeWithItem);
        string? key = value?.ToString();
        if (string.IsNullOrEmpty(key))
        {
            Terminate(_context!, new RunToolsException(ErrorIds.InvalidItemKey, RunToolsErrorCategory.InvalidArgument,
                $"The key of item '{InputObject}' is empty. -Key must give each item a stable, unique, non-empty key."), InputObject);
        }

        return key!;
    }

    private InDoubtAction Decide(RunContext context, ItemRef item)
    {
        if (context.InDoubt is not System.Management.Automation.ScriptBlock decider)
        {
            return context.InDoubt is InDoubtAction action ? action : InDoubtAction.Retry;
        }

        return ReadAnswer(InvokeWithItem(decider, InputObject), $"item '{item.Key}'", item.Key);
    }

    /// <summary>What an -InDoubt script block answered, for an item or a step.</summary>
    internal static InDoubtAction ReadAnswer(System.Collections.ObjectModel.Collection<PSObject> output, string what, object target)
    {
        var answer = output.Select(o => o?.BaseObject).LastOrDefault();
        return answer switch
        {
            bool done => done ? InDoubtAction.Skip : InDoubtAction.Retry,
            InDoubtAction a => a,
            string s when Enum.TryParse(s, true, out InDoubtAction parsed) => parsed,
            _ => throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"The -InDoubt script block answered '{answer}' for {what}; it must answer Retry, Skip, Fail, $true (it happened) or $false.", target),
        };
    }
}
