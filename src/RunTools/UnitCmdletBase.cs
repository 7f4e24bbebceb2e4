using System;
using System.Collections.ObjectModel;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>
/// Invoke-RunStep and Invoke-RunItem: the unit cmdlets, with the same retry and time-limit
/// parameters. A failed try is journaled (with its ErrorId, whether it timed out, and the wait
/// before the next try); only the last failure fails the unit.
/// </summary>
public abstract class UnitCmdletBase : InScriptCmdletBase
{
    private static readonly ThreadLocal<Random> s_jitter = new(() => new Random());
    private volatile bool _stopping;
    private PowerShell? _timed;

    /// <summary>Tries in all, the first included; 1 (the default) does not retry. ("Attempt" is one Start-Run or Resume-Run of the whole run.)</summary>
    [Parameter]
    [ValidateRange(1, 1000)]
    [Alias("MaxAttempts")]
    public int MaxTries { get; set; } = 1;

    /// <summary>The wait before the second try (a TimeSpan, or a number of seconds); doubled before each later try, at most 5 minutes, with jitter.</summary>
    [Parameter]
    [SecondsToTimeSpan]
    [ValidateRetryDelay]
    public TimeSpan RetryDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Which errors are worth another try: exception types (or their names) anywhere in the
    /// error's exception chain, or a script block that gets the ErrorRecord as $_ and answers
    /// $true. Without it every error is retried (up to -MaxTries).
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    [ValidateRetryRule]
    public object[]? RetryOn { get; set; }

    /// <summary>
    /// The longest -TimeoutSec: the timer that stops a try takes at most 2^32 - 2 milliseconds
    /// (49.7 days). A longer limit would fail the unit when it starts.
    /// </summary>
    internal const int MaxTimeoutSec = 4_294_967;

    /// <summary>Seconds one try may run; past it the try is stopped (as Ctrl+C stops a pipeline) and counts as a failure. 0 (the default): no limit.</summary>
    [Parameter]
    [ValidateRange(0, MaxTimeoutSec)]
    public int TimeoutSec { get; set; }

    internal RetryPolicy Retry => new() { MaxTries = MaxTries, Delay = RetryDelay };

    /// <summary>Ctrl+C: a retry wait ends at once, a timed try is stopped.</summary>
    protected override void StopProcessing()
    {
        _stopping = true;
        try
        {
            _timed?.BeginStop(null, null);
        }
        catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// The tries of a unit of this cmdlet under -MaxTries, -RetryDelay and -RetryOn (script blocks
    /// asked in this runspace): Ctrl+C ends a wait; the caller says how a try starts and how a
    /// failure is recorded.
    /// </summary>
    internal UnitTries NewTries(RunAttempt engine) =>
        new(engine, Retry, s_jitter.Value!)
        {
            IsTransient = error =>
            {
                if (_stopping)
                {
                    return false;
                }

                try
                {
                    return UnitErrors.IsTransient(RetryOn, error, sb => InvokeWithItem(sb, UnitErrors.RecordOf(error)));
                }
                catch (RuntimeException ruleError) when (ruleError is not PipelineStoppedException)
                {
                    // A rule that throws cannot decide: the unit's own error is final and keeps its
                    // place; the rule's error is said, not lost, and does not leave the unit open.
                    WriteWarning(UnitErrors.RuleFailed(ruleError, MyInvocation.ScriptName));
                    return false;
                }
            },
            Abandoned = () => _stopping,
        };

    /// <summary>
    /// Runs <paramref name="body"/> with $_ = <paramref name="input"/>; under -TimeoutSec in a nested
    /// pipeline of this runspace, which a timer stops at the limit. <paramref name="timedOut"/> says it did.
    /// </summary>
    internal Collection<PSObject> InvokeTimed(ScriptBlock body, object? input, out bool timedOut)
    {
        timedOut = false;
        if (TimeoutSec == 0)
        {
            return InvokeWithItem(body, input);
        }

        // The body runs with & in a scope of its own, as it does without -TimeoutSec: handed to
        // ForEach-Object directly it would be dot-sourced into the run script's scope.
        using var shell = PowerShell.Create(RunspaceMode.CurrentRunspace);
        shell.AddScript("param($RunToolsBody, $RunToolsItem) ForEach-Object -InputObject $RunToolsItem -Process { & $RunToolsBody }", useLocalScope: true)
            .AddArgument(body).AddArgument(input);
        return InvokeNested(shell, out timedOut);
    }

    /// <summary>Invokes a nested pipeline of this runspace under -TimeoutSec, forwarding its streams.</summary>
    internal Collection<PSObject> InvokeNested(PowerShell shell, out bool timedOut)
    {
        int fired = 0;
        _timed = shell;
        using var timer = new Timer(_ =>
        {
            Interlocked.Exchange(ref fired, 1);
            try
            {
                shell.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
            }
        }, null, TimeSpan.FromSeconds(TimeoutSec), Timeout.InfiniteTimeSpan);
        try
        {
            var output = shell.Invoke();
            bool stopped = shell.InvocationStateInfo.State == PSInvocationState.Stopped;
            timedOut = Volatile.Read(ref fired) == 1 && stopped;
            if (timedOut)
            {
                throw TimedOut();
            }

            if (stopped)
            {
                // Stopped, not by the timer: Ctrl+C or a forced stop of the run, or an in-script
                // cmdlet ending the run (a stop request met at an item boundary, a failure). The
                // nested pipeline ends quietly; the unit must end as it would without -TimeoutSec,
                // cut off (in doubt), never as if its body had returned.
                throw new PipelineStoppedException();
            }

            return output;
        }
        catch (RuntimeException) when (Volatile.Read(ref fired) == 1 && !_stopping)
        {
            timedOut = true;
            throw TimedOut();
        }
        finally
        {
            _timed = null;
            timer.Dispose();
            foreach (var record in shell.Streams.Warning)
            {
                WriteWarning(record.Message);
            }

            foreach (var record in shell.Streams.Verbose)
            {
                WriteVerbose(record.Message);
            }

            foreach (var record in shell.Streams.Information)
            {
                WriteInformation(record);
            }

            foreach (var record in shell.Streams.Error)
            {
                WriteError(record);
            }
        }
    }

    /// <summary>The failure of one try: <paramref name="message"/> (with the ErrorId and script line, see RunExecutor.Explain) and its facts.</summary>
    internal static UnitFailure Failure(string message, Exception error, bool timedOut, int tryNumber, TimeSpan? retryIn) =>
        new(message)
        {
            ErrorId = UnitErrors.IdOf(error),
            TimedOut = timedOut,
            Try = tryNumber,
            RetryIn = retryIn,
        };

    private RunToolsException TimedOut() =>
        new(ErrorIds.UnitTimedOut, RunToolsErrorCategory.OperationTimeout,
            $"It ran past its time limit of {TimeoutSec} s and was stopped. Raise -TimeoutSec, or make the work faster.");
}

/// <summary>What the unit cmdlets (and the parallel item workers) need to know about an error.</summary>
internal static class UnitErrors
{
    /// <summary>The warning when a -RetryOn script block throws: the unit's own error is not retried, and stays its failure.</summary>
    internal static string RuleFailed(Exception ruleError, string? scriptName) =>
        $"The -RetryOn script block failed ({RunExecutor.Explain(ruleError, scriptName)}), so the error is not retried. Fix the rule.";

    /// <summary>Whether <paramref name="retryOn"/> (types, type names, or script blocks asked through <paramref name="ask"/>) calls <paramref name="error"/> transient. Null: every error is.</summary>
    public static bool IsTransient(object[]? retryOn, Exception error, Func<ScriptBlock, Collection<PSObject>> ask)
    {
        if (retryOn is null || retryOn.Length == 0)
        {
            return true;
        }

        var chain = Chain(error).ToList();
        foreach (object? rule in retryOn.Select(r => r is PSObject p ? p.BaseObject : r))
        {
            switch (rule)
            {
                case Type type when chain.Any(type.IsInstanceOfType):
                    return true;
                case string name when chain.Any(e => IsNamed(e.GetType(), name)):
                    return true;
                case ScriptBlock decide when LanguagePrimitives.IsTrue(ask(decide).Select(o => o?.BaseObject).LastOrDefault()):
                    return true;
            }
        }

        return false;
    }

    /// <summary>The error record a script block sees as $_ (the error's own, or one made for it).</summary>
    public static ErrorRecord RecordOf(Exception error) =>
        error is IContainsErrorRecord { ErrorRecord: { } record } ? record : new ErrorRecord(error, IdOf(error) ?? "UnitFailed", ErrorCategory.NotSpecified, null);

    /// <summary>The error's ErrorId: a RunTools id, or PowerShell's FullyQualifiedErrorId.</summary>
    public static string? IdOf(Exception error)
    {
        var inner = RunExecutor.Unwrap(error);
        if (inner is RunToolsException core)
        {
            return core.ErrorId;
        }

        if (error is not IContainsErrorRecord { ErrorRecord: { } record })
        {
            return null;
        }

        // An item's failure raised again at its step (ItemFailed): the item's own error is the cause.
        return record.FullyQualifiedErrorId.StartsWith(ErrorIds.ItemFailed + ",", StringComparison.Ordinal)
            && record.Exception is IContainsErrorRecord { ErrorRecord: { } cause } && !ReferenceEquals(cause, record)
            ? cause.FullyQualifiedErrorId
            : record.FullyQualifiedErrorId;
    }

    private static System.Collections.Generic.IEnumerable<Exception> Chain(Exception error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            yield return e;
            if (e is IContainsErrorRecord { ErrorRecord.Exception: { } recorded } && !ReferenceEquals(recorded, e))
            {
                yield return recorded;
            }
        }
    }

    private static bool IsNamed(Type type, string name)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            if (string.Equals(t.FullName, name, StringComparison.OrdinalIgnoreCase) || string.Equals(t.Name, name, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}

/// <summary>Lets a TimeSpan parameter take a plain number as seconds (-RetryDelay 2), as -TimeoutSec does.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class SecondsToTimeSpanAttribute : ArgumentTransformationAttribute
{
    public override object Transform(EngineIntrinsics engineIntrinsics, object inputData)
    {
        object value = inputData is PSObject p ? p.BaseObject : inputData;
        return value switch
        {
            int seconds => TimeSpan.FromSeconds(seconds),
            long seconds => TimeSpan.FromSeconds(seconds),
            double seconds => TimeSpan.FromSeconds(seconds),
            decimal seconds => TimeSpan.FromSeconds((double)seconds),
            _ => inputData,
        };
    }
}

/// <summary>-RetryOn takes exception types, type names or script blocks; anything else could never match, so it is refused when bound.</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class ValidateRetryRuleAttribute : ValidateEnumeratedArgumentsAttribute
{
    protected override void ValidateElement(object element)
    {
        object value = element is PSObject p ? p.BaseObject : element;
        if (value is not (Type or ScriptBlock) && (value is not string name || string.IsNullOrWhiteSpace(name)))
        {
            throw new ValidationMetadataException(
                $"'{value}' ({value?.GetType().Name ?? "null"}) is not a rule -RetryOn takes: give exception types ([System.IO.IOException]), their names ('IOException'), or a script block that gets the error as $_ and answers $true.");
        }
    }
}

/// <summary>-RetryDelay is a wait: not negative, and at most a day (a longer wait is a schedule, not a retry).</summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
internal sealed class ValidateRetryDelayAttribute : ValidateArgumentsAttribute
{
    protected override void Validate(object arguments, EngineIntrinsics engineIntrinsics)
    {
        if (arguments is TimeSpan delay && (delay < TimeSpan.Zero || delay > TimeSpan.FromDays(1)))
        {
            throw new ValidationMetadataException($"-RetryDelay {delay} is out of range: give a wait from 0 to 1 day (a TimeSpan, or a number of seconds).");
        }
    }
}
