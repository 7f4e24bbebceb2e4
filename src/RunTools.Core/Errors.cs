using System;

namespace RunTools.Core;

/// <summary>
/// Mirrors the names of System.Management.Automation.ErrorCategory so the cmdlets can map
/// a Core error to a PowerShell ErrorRecord by name, without Core referencing PowerShell.
/// </summary>
public enum RunToolsErrorCategory
{
    NotSpecified,
    InvalidArgument,
    InvalidData,
    InvalidOperation,
    ObjectNotFound,
    ResourceBusy,
    ResourceExists,
    ReadError,
    WriteError,
    OperationStopped,
    PermissionDenied,
    InvalidResult,
    OperationTimeout,
}

/// <summary>Stable error identifiers; the cmdlets use them as FullyQualifiedErrorId.</summary>
public static class ErrorIds
{
    public const string InvalidRunId = "InvalidRunId";
    public const string InvalidStepName = "InvalidStepName";
    public const string InvalidItemKey = "InvalidItemKey";
    public const string InvalidRunName = "InvalidRunName";
    public const string InvalidConfig = "InvalidConfig";

    /// <summary>On resume, the run script's parameters differ from the ones saved with the run (use -Force).</summary>
    public const string ParametersDrift = "ParametersDrift";

    /// <summary>A -Parameters value that cannot be saved with the run (a script block, a live object).</summary>
    public const string InvalidParameters = "InvalidParameters";
    public const string RunNotFound = "RunNotFound";
    public const string RunExists = "RunExists";
    public const string RunLocked = "RunLocked";

    // The run lock could not be taken for a reason other than a live holder; see docs/run-format.md §5.1.
    public const string LockFileInvalid = "LockFileInvalid";
    public const string RunReadOnly = "RunReadOnly";
    public const string LockPermissionDenied = "LockPermissionDenied";
    public const string LockFailed = "LockFailed";
    public const string RunNotResumable = "RunNotResumable";
    public const string ConfigDrift = "ConfigDrift";
    public const string ScriptDrift = "ScriptDrift";

    /// <summary>A resume found run.json but no readable journal event, or Get-RunEvent found none (not Test-Run's CorruptJournal problem kind).</summary>
    public const string JournalUnreadable = "JournalUnreadable";

    /// <summary>
    /// The run cannot be used: neither run.json nor the journal can be read, its files name another
    /// run, or a folder of the format is something else (not Test-Run's CorruptState problem kind).
    /// </summary>
    public const string RunDamaged = "RunDamaged";
    public const string UnsupportedFormatVersion = "UnsupportedFormatVersion";
    public const string InDoubtItems = "InDoubtItems";
    public const string StopRequested = "StopRequested";
    public const string StepNested = "StepNested";
    public const string StepNotRunning = "StepNotRunning";
    public const string NotOwner = "NotOwner";
    public const string ArtifactNotFound = "ArtifactNotFound";
    public const string InvalidArtifactName = "InvalidArtifactName";
    public const string ScriptNotFound = "ScriptNotFound";
    public const string RootNotFound = "RootNotFound";
    public const string FileUnreadable = "FileUnreadable";
    public const string WriteFailed = "WriteFailed";
    public const string ItemsFailed = "ItemsFailed";
    public const string InvalidArgument = "InvalidArgument";
    public const string NotInRun = "NotInRun";

    /// <summary>An in-script cmdlet was called from another runspace of a running attempt (ForEach-Object -Parallel, a thread job); the run fails.</summary>
    public const string WrongRunspace = "WrongRunspace";

    /// <summary>An in-script cmdlet was called after the attempt it belongs to ended; nothing was recorded.</summary>
    public const string RunEnded = "RunEnded";
    public const string RunFailed = "RunFailed";
    public const string RunNotRunning = "RunNotRunning";

    /// <summary>Join-Run on a run in a folder: only a run in a database can have workers on several processes.</summary>
    public const string JoinNotSupported = "JoinNotSupported";

    /// <summary>A joined worker was asked to record what only the owner records (a step, an artifact outside an item).</summary>
    public const string WorkerCannotRecord = "WorkerCannotRecord";
    public const string RunNested = "RunNested";
    public const string ItemFailed = "ItemFailed";

    /// <summary>A step or item ran past its -TimeoutSec and was stopped; it counts as a failure (retried if allowed).</summary>
    public const string UnitTimedOut = "UnitTimedOut";

    /// <summary>A directory matches no known legacy format (or not the one forced with -LegacyFormat).</summary>
    public const string UnknownLegacyFormat = "UnknownLegacyFormat";
    public const string LegacyFileConflict = "LegacyFileConflict";

    /// <summary>A step's declared output file (Invoke-RunStep -OutputFile) matches no file when the step ends.</summary>
    public const string OutputFileNotFound = "OutputFileNotFound";

    /// <summary>The run script ended with a non-zero exit code (exit N); the attempt failed.</summary>
    public const string RunScriptExited = "RunScriptExited";

    // Run archives (Export-RunArchive / Import-RunArchive); see docs/run-format.md, "Archive format".
    public const string ArchiveExists = "ArchiveExists";
    public const string ArchiveRunNotCompleted = "ArchiveRunNotCompleted";
    public const string ArchiveNotFound = "ArchiveNotFound";
    public const string ArchiveCorrupt = "ArchiveCorrupt";
    public const string ArchiveManifestMissing = "ArchiveManifestMissing";
    public const string ArchiveManifestInvalid = "ArchiveManifestInvalid";
    public const string ArchiveUnsafePath = "ArchiveUnsafePath";
    public const string ArchiveDuplicateEntry = "ArchiveDuplicateEntry";
    public const string ArchiveLinkEntry = "ArchiveLinkEntry";
    public const string ArchiveUnexpectedEntry = "ArchiveUnexpectedEntry";
    public const string ArchiveMissingEntry = "ArchiveMissingEntry";
    public const string ArchiveSizeMismatch = "ArchiveSizeMismatch";
    public const string ArchiveHashMismatch = "ArchiveHashMismatch";
    public const string ArchiveInvalidRunId = "ArchiveInvalidRunId";
    public const string ArchiveRunIdMismatch = "ArchiveRunIdMismatch";

    // Hostile or oversized input (issue 11, items 6-8); see docs/run-format.md, "Error ids".
    public const string NotRegularFile = "NotRegularFile";
    public const string InvalidWildcardPattern = "InvalidWildcardPattern";
    public const string RootNotDirectory = "RootNotDirectory";
    public const string ConfigTooLarge = "ConfigTooLarge";
    public const string ArchiveTooLarge = "ArchiveTooLarge";
    public const string ArchiveTooManyEntries = "ArchiveTooManyEntries";
    public const string InsufficientSpace = "InsufficientSpace";

    // A run store in a database (issue 13): it cannot be reached, or its schema cannot be used.
    public const string StoreUnavailable = "StoreUnavailable";
    public const string StoreSchemaUnusable = "StoreSchemaUnusable";
}

/// <summary>
/// Every error Core raises on purpose. <see cref="ErrorId"/> is stable and documented;
/// the message says what happened and what to do next.
/// </summary>
public class RunToolsException : Exception
{
    public RunToolsException(string errorId, RunToolsErrorCategory category, string message, object? target = null, Exception? inner = null)
        : base(message, inner)
    {
        ErrorId = errorId;
        Category = category;
        Target = target;
    }

    public string ErrorId { get; }

    public RunToolsErrorCategory Category { get; }

    /// <summary>The object the error is about (a run id, a path, a key); becomes the ErrorRecord's TargetObject.</summary>
    public object? Target { get; }
}
