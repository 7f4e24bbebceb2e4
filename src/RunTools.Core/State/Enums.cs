// The enums operators filter on live in the RunTools namespace so that the module, Core and any
// embedding program share one type: `Get-Run | Where-Object Status -eq Stopped` compares RunTools.RunStatus.
namespace RunTools;

/// <summary>Status of a run. Interrupted and Stopping are derived by readers, never stored.</summary>
public enum RunStatus
{
    Created,
    Running,
    Stopping,
    Stopped,
    Completed,
    Failed,
    Interrupted,
}

public enum StepStatus
{
    Pending,
    Running,
    Completed,
    Failed,
}

/// <summary>How an artifact's file is kept.</summary>
public enum ArtifactMode
{
    /// <summary>Copied under the run's artifacts/ folder.</summary>
    Copy,

    /// <summary>Recorded where it is; verified there.</summary>
    Reference,
}

/// <summary>What to do with an item whose work started but was never recorded as completed.</summary>
public enum InDoubtAction
{
    /// <summary>Run it again (at-least-once).</summary>
    Retry,

    /// <summary>Assume it happened; record it as skipped and do not run it.</summary>
    Skip,

    /// <summary>Refuse to resume while any item is in doubt.</summary>
    Fail,
}
