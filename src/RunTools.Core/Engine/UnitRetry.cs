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
