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

/// <summary>What Test-Run found wrong with a run.</summary>
public enum RunProblemKind
{
    /// <summary>A file the format requires, or a recorded file, is not there.</summary>
    MissingFile,

    /// <summary>A recorded file has another size than recorded.</summary>
    SizeMismatch,

    /// <summary>A recorded file (or config.json, script.ps1) has another SHA-256 than recorded.</summary>
    HashMismatch,

    /// <summary>A file is there but cannot be read.</summary>
    Unreadable,

    /// <summary>run.json cannot be parsed; readers rebuild the state from the journal.</summary>
    CorruptState,

    /// <summary>run.json disagrees with what the journal says.</summary>
    StateMismatch,

    /// <summary>The journal is shorter than run.json says it was: committed events are lost.</summary>
    JournalTruncated,

    /// <summary>A journal line in the middle is damaged or sequence numbers are missing.</summary>
    CorruptJournal,

    /// <summary>The journal ends in a half-written line (a crash); the next owner cuts it off.</summary>
    TornJournalTail,

    /// <summary>The run uses a newer run-directory format than this RunTools reads.</summary>
    UnsupportedFormatVersion,

    /// <summary>run.json or the journal's run_created names another run than the directory's name.</summary>
    RunIdMismatch,

    /// <summary>The run reads Completed, but a step is not completed or work is still open (in doubt).</summary>
    IncompleteRun,

    /// <summary>The journal holds an event twice (a worker's event transcribed again, an item started again while running); a warning.</summary>
    RepeatedEvent,
}

/// <summary>Whether a problem makes the run invalid (Error) or is only worth knowing (Warning).</summary>
public enum RunProblemSeverity
{
    Error,
    Warning,
}

/// <summary>What Compare-Run compares; <c>-Property</c> narrows to some of these.</summary>
public enum RunComparisonProperty
{
    /// <summary>The config hash and every changed key path with both values.</summary>
    Config,

    /// <summary>The script hash.</summary>
    Script,

    /// <summary>Run-directory format versions; a mismatch is flagged as incompatible.</summary>
    FormatVersion,

    /// <summary>The runs' statuses.</summary>
    Status,

    /// <summary>Each step's status.</summary>
    Steps,

    /// <summary>Each step's duration.</summary>
    Durations,

    /// <summary>Items completed, per step and in all.</summary>
    Items,

    /// <summary>Artifacts by step, key and name, compared by SHA-256.</summary>
    Artifacts,
}

/// <summary>How a compared value differs between the reference and the difference run.</summary>
public enum RunDifferenceKind
{
    Equal,
    Changed,

    /// <summary>Only in the difference run.</summary>
    Added,

    /// <summary>Only in the reference run.</summary>
    Removed,

    /// <summary>The runs cannot be compared like for like (format versions differ).</summary>
    Incompatible,
}
