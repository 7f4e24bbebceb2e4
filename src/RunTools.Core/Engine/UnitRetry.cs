using System;

namespace RunTools.Core.Engine;

/// <summary>
/// How a step or item that fails is tried again within the same attempt: up to
/// <see cref="MaxTries"/> tries, waiting <see cref="Delay"/> before the second, then twice as long
/// before each next one (at most <see cref="MaxDelay"/>), with jitter so that many units failing
/// together do not retry in lockstep. A "try" is one run of a unit's body; an "attempt" is one
/// Start-Run or Resume-Run of the whole run.
/// </summary>
public sealed class RetryPolicy
{
    public static readonly RetryPolicy None = new();

    /// <summary>Tries in all, the first included (1: no retry).</summary>
    public int MaxTries { get; set; } = 1;

    /// <summary>The wait before the second try; doubled before each later one.</summary>
    public TimeSpan Delay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest wait between two tries.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// The wait before try <paramref name="nextTry"/> (2 or more): Delay × 2^(nextTry−2), capped,
    /// then "equal jitter" — half of it fixed, the other half random — so waits never collapse to 0.
    /// </summary>
    public TimeSpan DelayBefore(int nextTry, Random random)
    {
        double baseMs = Delay.TotalMilliseconds * Math.Pow(2, Math.Max(0, nextTry - 2));
        baseMs = Math.Min(baseMs, MaxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds((baseMs / 2) + (random.NextDouble() * baseMs / 2));
    }
}

/// <summary>Why one try of a unit failed, as item_failed / step_failed record it.</summary>
public sealed class UnitFailure
{
    public UnitFailure(string error) => Error = error;

    /// <summary>The message, with the script position when known.</summary>
    public string Error { get; }

    /// <summary>The original error's ErrorId (FullyQualifiedErrorId), when it had one.</summary>
    public string? ErrorId { get; set; }

    /// <summary>The try was stopped because it ran past its -TimeoutSec.</summary>
    public bool TimedOut { get; set; }

    /// <summary>Which try failed (1 for the first).</summary>
    public int Try { get; set; } = 1;

    /// <summary>Set when the unit will be tried again after this wait; null when this failure is final.</summary>
    public TimeSpan? RetryIn { get; set; }
}

/// <summary>
/// The tries of one step or item under a <see cref="RetryPolicy"/>, written once for the three
/// places that run units (a step, an item in the run script's runspace, an item in a worker):
/// run a try; on a failure decide whether another follows and record the failure with the wait
/// before it; wait (<see cref="RunAttempt.WaitBeforeRetry"/>: a stop request ends the wait, as
/// does <see cref="Abandoned"/>); start the next try; until a try succeeds or a failure is final.
/// </summary>
public sealed class UnitTries
{
    private readonly RunAttempt _attempt;
    private readonly RetryPolicy _policy;
    private readonly Random _jitter;

    public UnitTries(RunAttempt attempt, RetryPolicy policy, Random jitter)
    {
        _attempt = attempt;
        _policy = policy;
        _jitter = jitter;
    }

    /// <summary>Before each try after the first (its number given): journals its start; false when the unit is not to be tried again.</summary>
    public Func<int, bool> BeginTry { get; set; } = _ => true;

    /// <summary>Whether an error is worth another try (-RetryOn's rules); asked only while tries are left.</summary>
    public Func<Exception, bool> IsTransient { get; set; } = _ => true;

    /// <summary>
    /// Records a failed try: the error, the try's number, and the wait before the next try (null
    /// when this failure is final). False ends the unit at once (no wait, no further try).
    /// </summary>
    public Func<Exception, int, TimeSpan?, bool> RecordFailure { get; set; } = (_, _, _) => true;

    /// <summary>Told before each wait (for -Verbose): the error, the try that failed, the wait.</summary>
    public Action<Exception, int, TimeSpan>? Waiting { get; set; }

    /// <summary>Polled during a wait: true (Ctrl+C) ends it, and the unit stays failed.</summary>
    public Func<bool> Abandoned { get; set; } = () => false;

    /// <summary>
    /// Runs the tries. <paramref name="tryOnce"/> gets the try's number and returns the error that
    /// failed it, or null when it needs no retry decision (it succeeded, or it was cut off).
    /// Anything it throws goes to the caller.
    /// </summary>
    public UnitTriesOutcome Run(Func<int, Exception?> tryOnce)
    {
        for (int tryNumber = 1; ; tryNumber++)
        {
            if (tryNumber > 1 && !BeginTry(tryNumber))
            {
                return new UnitTriesOutcome(UnitTriesEnd.NotTried, null, tryNumber - 1);
            }

            var error = tryOnce(tryNumber);
            if (error is null)
            {
                return new UnitTriesOutcome(UnitTriesEnd.Done, null, tryNumber);
            }

            TimeSpan? wait = tryNumber < _policy.MaxTries && IsTransient(error) ? _policy.DelayBefore(tryNumber + 1, _jitter) : null;
            if (!RecordFailure(error, tryNumber, wait))
            {
                return new UnitTriesOutcome(UnitTriesEnd.Ended, error, tryNumber);
            }

            if (wait is not { } delay)
            {
                return new UnitTriesOutcome(UnitTriesEnd.Failed, error, tryNumber);
            }

            Waiting?.Invoke(error, tryNumber, delay);
            try
            {
                if (!_attempt.WaitBeforeRetry(delay, Abandoned))
                {
                    return new UnitTriesOutcome(UnitTriesEnd.Interrupted, error, tryNumber);
                }
            }
            catch (RunToolsException stop)
            {
                // A stop request during the wait: the unit stays failed (recorded), and a resume tries it again.
                return new UnitTriesOutcome(UnitTriesEnd.Stopped, stop, tryNumber);
            }
        }
    }
}

/// <summary>How a unit's tries ended.</summary>
public enum UnitTriesEnd
{
    /// <summary>The last try needed no retry decision: it succeeded, or it was cut off.</summary>
    Done,

    /// <summary>The last try failed and no other follows (no tries left, or the error is not transient).</summary>
    Failed,

    /// <summary>Recording the failure ended the unit (the record failed, or the run is ending).</summary>
    Ended,

    /// <summary>The wait before the next try was abandoned (Ctrl+C).</summary>
    Interrupted,

    /// <summary>A stop request (Stop-Run, the attempt's time limit) ended the wait; the error is the stop.</summary>
    Stopped,

    /// <summary>The next try was not started (<see cref="UnitTries.BeginTry"/> said no).</summary>
    NotTried,
}

/// <summary>The end of a unit's tries: how, the last error (or the stop), and how many tries ran.</summary>
public sealed class UnitTriesOutcome
{
    public UnitTriesOutcome(UnitTriesEnd end, Exception? error, int tries)
    {
        End = end;
        Error = error;
        Tries = tries;
    }

    public UnitTriesEnd End { get; }

    /// <summary>The error of the last failed try; for <see cref="UnitTriesEnd.Stopped"/>, the stop request's error.</summary>
    public Exception? Error { get; }

    public int Tries { get; }
}
