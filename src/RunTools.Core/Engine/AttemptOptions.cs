using System;
using System.Threading;
using RunTools.Core.Configuration;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>Receives what Core has to say while it works; the cmdlets turn it into PowerShell streams.</summary>
public interface IRunObserver
{
    void Warning(string message);

    void Verbose(string message);
}

public sealed class AttemptOptions
{
    /// <summary>The config as it is now; compared with the run's hash. Null: the recorded config is used as is.</summary>
    public EffectiveConfig? Config { get; set; }

    /// <summary>
    /// The run script's parameters as given now; compared with the run's saved ones (a run that
    /// saved none is not checked). Null: the saved parameters are used as they are.
    /// </summary>
    public EffectiveConfig? Parameters { get; set; }

    /// <summary>Who started the attempt, when it was not a plain resume (e.g. "start-or-resume"); journaled in attempt_started.</summary>
    public string? StartedBy { get; set; }

    /// <summary>What to do with items that failed in earlier attempts: run them again (default) or set them aside.</summary>
    public FailedItemAction FailedItems { get; set; } = FailedItemAction.Retry;

    /// <summary>Who decided <see cref="FailedItems"/> (user@host), journaled with each skipped key.</summary>
    public string? DecidedBy { get; set; }

    /// <summary>The script's bytes as they are now; compared with the run's hash. Null: no script check.</summary>
    public byte[]? Script { get; set; }

    /// <summary>Where the current script was read from (recorded when drift is accepted).</summary>
    public string? ScriptSourcePath { get; set; }

    /// <summary>Continue despite config or script drift; the drift is journaled.</summary>
    public bool Force { get; set; }

    /// <summary>
    /// Join-Run: join the running attempt as a worker (a run in a database only) rather than take
    /// the run over. A worker runs the same script, claims items of items-only steps, waits for the
    /// owner's steps, and records only its items' events, which the owner transcribes.
    /// </summary>
    public bool Join { get; set; }

    public InDoubtAction InDoubt { get; set; } = InDoubtAction.Retry;

    /// <summary>The host decides each in-doubt item itself (BeginItem's decider); only for messages.</summary>
    public bool InDoubtDecidedPerItem { get; set; }

    public StepGate? Gate { get; set; }

    /// <summary>Check the SHA-256 of every completed unit's files before resuming (default on).</summary>
    public bool VerifyArtifacts { get; set; } = true;

    /// <summary>Cancelled by Ctrl+C: honoured at the next boundary like a stop request.</summary>
    public CancellationToken Cancellation { get; set; }

    public IRunObserver? Observer { get; set; }

    /// <summary>
    /// Test seam for the crash driver: called by name at points no public call separates
    /// ("step_output_written", "snapshot_unrenamed", "transcribed"), so that a kill can land
    /// exactly there. Unset, it is <see cref="ProcessCrashPoint"/>.
    /// </summary>
    internal Action<string>? CrashPoint
    {
        get => _crashPoint ?? ProcessCrashPoint;
        set => _crashPoint = value;
    }

    private Action<string>? _crashPoint;

    /// <summary>
    /// The same seam for every attempt of the process: a test sets it by reflection inside a pwsh
    /// that runs the module (the cmdlets make their own options), to kill that process at a named point.
    /// </summary>
    internal static Action<string>? ProcessCrashPoint { get; set; }

    /// <summary>How often the snapshot is refreshed while items flow (it is always refreshed at step ends).</summary>
    public TimeSpan SnapshotInterval { get; set; } = TimeSpan.FromSeconds(2);
}

/// <summary>What a resume does with items that failed in earlier attempts.</summary>
public enum FailedItemAction
{
    /// <summary>Run them again (at-least-once, the default).</summary>
    Retry,

    /// <summary>Set them aside: each is journaled as skipped (item_resolved, previous "failed") and not run again in this run.</summary>
    Skip,
}

/// <summary>What to do with a step.</summary>
public enum StepAction
{
    /// <summary>Run it now; then call CompleteStep or FailStep.</summary>
    Run,

    /// <summary>Completed earlier: do not run; emit the recorded output.</summary>
    Replay,

    /// <summary>Outside the step gate: do not run.</summary>
    GatedOut,

    /// <summary>In doubt and resolved as Skip: do not run; it is completed with no output, so nothing is emitted.</summary>
    Skip,
}

/// <summary>What to do with an item.</summary>
public enum ItemAction
{
    Run,

    /// <summary>Completed earlier: do not run; emit the recorded output.</summary>
    Replay,

    /// <summary>In doubt and resolved as Skip: do not run; there is no recorded output.</summary>
    Skip,

    /// <summary>
    /// Claimed by another process working on the attempt (a joined worker, or the owner): do not
    /// run it here; <see cref="RunAttempt.AwaitItemsElsewhere"/> reports its outcome at the end of the call.
    /// </summary>
    Elsewhere,
}

/// <summary>What became of an item another process of the attempt held (<see cref="RunAttempt.AwaitItemsElsewhere"/>).</summary>
public enum ElsewhereOutcome
{
    /// <summary>Completed: emit its recorded output (<see cref="RunAttempt.ReadItemOutput"/>).</summary>
    Completed,

    /// <summary>Done as skipped (in doubt and resolved as skip): no output.</summary>
    Skipped,

    /// <summary>Its last try failed where it ran.</summary>
    Failed,

    /// <summary>Its holder died: this process took the claim over and runs the item itself (claim it again).</summary>
    RunHere,
}
