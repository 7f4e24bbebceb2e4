namespace RunTools.Core.Journal;

/// <summary>Every event type of journal format version 1 (documented in docs/run-format.md).</summary>
public static class JournalEventTypes
{
    public const string RunCreated = "run_created";
    public const string AttemptStarted = "attempt_started";
    public const string DriftAccepted = "drift_accepted";

    /// <summary>
    /// Drift of the run script's parameters accepted with Force: drift_accepted's members, under a
    /// type of its own so that a reader that takes any non-config drift_accepted for script drift
    /// does not misread it.
    /// </summary>
    public const string ParametersDriftAccepted = "parameters_drift_accepted";
    public const string ResumeRefused = "resume_refused";
    public const string StopCleared = "stop_cleared";
    public const string StepStarted = "step_started";
    public const string StepCompleted = "step_completed";
    public const string StepFailed = "step_failed";
    public const string StepInvalidated = "step_invalidated";
    public const string StepGated = "step_gated";
    public const string ItemStarted = "item_started";
    public const string ItemCompleted = "item_completed";
    public const string ItemFailed = "item_failed";
    public const string ItemResolved = "item_resolved";

    /// <summary>A step in doubt (started in an earlier attempt, never ended) was resolved: skip or retry.</summary>
    public const string StepResolved = "step_resolved";
    public const string ItemInvalidated = "item_invalidated";
    public const string ArtifactAdded = "artifact_added";
    public const string RunStopped = "run_stopped";
    public const string RunCompleted = "run_completed";
    public const string RunFailed = "run_failed";
    public const string JournalRepaired = "journal_repaired";
    public const string Warning = "warning";

    /// <summary>A legacy directory was adopted: source format, legacy facts, per-step decisions, warnings, backups.</summary>
    public const string RunMigrated = "run_migrated";

    // Item events first: they are nearly every line, and the parser matches in this order.
    internal static readonly string[] All =
    {
        ItemStarted, ItemCompleted, RunCreated, AttemptStarted, DriftAccepted, ParametersDriftAccepted, ResumeRefused, StopCleared,
        StepStarted, StepCompleted, StepFailed, StepInvalidated, StepGated, StepResolved,
        ItemFailed, ItemResolved, ItemInvalidated,
        ArtifactAdded, RunStopped, RunCompleted, RunFailed, JournalRepaired, Warning, RunMigrated,
    };
}
