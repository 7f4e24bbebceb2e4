using System;
using System.Collections.Generic;
using System.IO;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core;

/// <summary>
/// One run: a run folder, or a run held in a database (<see cref="Database"/>), whose
/// <see cref="Path"/> is then its local folder on this machine (attempt logs, staging files, local
/// copies of the stored config, parameters and script) while every record that counts is the
/// database's. Everything here reads without taking ownership; driving the run
/// (<see cref="BeginAttempt"/>) takes it.
/// </summary>
public sealed partial class RunDirectory
{
    private bool _localCopiesReady;

    internal RunDirectory(string path, string runId)
    {
        Path = path;
        RunId = runId;
    }

    internal RunDirectory(string localFolder, string runId, IDatabaseRun database)
        : this(localFolder, runId)
    {
        Database = database;
    }

    /// <summary>The run folder; for a run in a database, its local folder on this machine.</summary>
    public string Path { get; }

    /// <summary>The database root (its URI without password) of a run held in a database; null for a run folder.</summary>
    public string? DatabaseRoot => Database?.RootDisplay;

    /// <summary>The root the run is in, as listings name it: the database root, or the folder that holds the run folder.</summary>
    public string Root => DatabaseRoot ?? System.IO.Path.GetDirectoryName(Path) ?? Path;

    /// <summary>The database record of a run held in one; null for a run folder.</summary>
    internal IDatabaseRun? Database { get; }

    public string RunId { get; }

    public string StatePath => Combine(RunFormat.StateFile);

    public string JournalPath => Combine(RunFormat.JournalFile);

    public string ConfigPath => Combine(RunFormat.ConfigFile);

    public string ScriptPath => Combine(RunFormat.ScriptFile);

    public string StopPath => Combine(RunFormat.StopFile);

    /// <summary>Opens an existing run directory by path.</summary>
    public static RunDirectory Open(string path)
    {
        // Without a trailing separator: the run's parent and name are taken from its path ("runs/id/" would be its own parent).
        string full = System.IO.Path.GetFullPath(path);
        string trimmed = full.TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar);
        full = trimmed.Length == 0 || trimmed.EndsWith(":", StringComparison.Ordinal) ? full : trimmed;
        if (!Directory.Exists(full))
        {
            throw new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No run directory at '{full}'. Check the path, or list runs with Get-Run.", path);
        }

        if (!IsRunDirectory(full))
        {
            throw new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"'{full}' has no RunTools state ({RunFormat.StateFile} or {RunFormat.JournalFile}). If it was written by an earlier tool, convert it with ConvertTo-Run.", path);
        }

        return new RunDirectory(full, System.IO.Path.GetFileName(full));
    }

    public static bool IsRunDirectory(string path) =>
        File.Exists(System.IO.Path.Combine(path, RunFormat.StateFile)) || File.Exists(System.IO.Path.Combine(path, RunFormat.JournalFile));

    /// <summary>
    /// The run's state: the snapshot plus any journal events after it, or a rebuild from the
    /// journal when the snapshot is missing or unreadable. The status is derived: Running with
    /// no live owner is <see cref="RunStatus.Interrupted"/>; with a stop pending, Stopping.
    /// </summary>
    public RunState ReadState()
    {
        var state = Database is { } database ? database.ReadStoredState() : ReadStoredState(out _);
        state.Status = DeriveStatus(state.Status);
        return state;
    }

    /// <summary>The full path of a recorded path (relative to the run with '/' separators, or absolute for references).</summary>
    public string ResolveRecordedPath(string recordedPath) => Engine.Integrity.ResolvePath(Path, recordedPath);

    /// <summary>Whether a live process owns the run (holds its lock).</summary>
    public bool IsOwned => Database is { } database ? database.ReadHolder() is not null : RunLock.Probe(Path).State == LockProbeState.Held;

    /// <summary>Whether a stop was requested (Stop-Run) and not yet honoured: one stat, or one indexed lookup in a database.</summary>
    public bool StopRequested => Database is { } database ? database.ReadStopRequest() is not null : File.Exists(StopPath);

    /// <summary>A reader's look at the lock: held, free, not a regular file, or not readable.</summary>
    internal LockProbe ProbeLock() => RunLock.Probe(Path);

    public StopRequest? ReadStopRequest()
    {
        if (Database is { } database)
        {
            return database.ReadStopRequest();
        }

        try
        {
            if (!File.Exists(StopPath))
            {
                return null;
            }

            byte[] bytes = DurableFile.ReadAllBytes(StopPath);
            return JsonSerializer.Deserialize<StopRequest>(bytes, RunFormat.JsonOptions) ?? new StopRequest();
        }
        catch (Exception ex) when (ex is JsonException || ex is IOException)
        {
            // A stop file that cannot be read is still a stop request.
            return new StopRequest { RequestedBy = "unknown", Reason = "stop file unreadable: " + ex.Message };
        }
    }

    // Bumped by every stop file written in this process (see FileRunStore.ReadStopRequest's trust in a "no stop" answer).
    private static long s_stopFilesWritten;

    /// <summary>How many stop files this process has written: a "no stop" answer read before the last one is stale.</summary>
    internal static long StopFilesWritten => Interlocked.Read(ref s_stopFilesWritten);

    /// <summary>Writes the stop token; the owner stops at its next step or item boundary.</summary>
    public StopRequest RequestStop(string? reason, string? requestedBy = null)
    {
        var request = new StopRequest
        {
            RequestedAt = DateTimeOffset.UtcNow,
            RequestedBy = requestedBy ?? $"{Environment.UserName}@{Environment.MachineName} pid {RunLock.CurrentProcessOwner(DateTimeOffset.UtcNow).ProcessId}",
            Reason = reason,
        };
        if (Database is { } database)
        {
            database.RequestStop(request);
        }
        else
        {
            DurableFile.WriteAtomic(StopPath, JsonSerializer.SerializeToUtf8Bytes(request, RunFormat.JsonOptions));
            Interlocked.Increment(ref s_stopFilesWritten);
        }

        return request;
    }

    /// <summary>
    /// Every verified journal event from <paramref name="offset"/> on (see <see cref="JournalEvent.Offset"/>:
    /// a byte offset in journal.jsonl, or for a run in a database its seq − 1), streamed in order.
    /// </summary>
    public IEnumerable<JournalEvent> ReadEvents(long offset = 0) =>
        Database is { } database ? database.ReadEvents(offset) : JournalScanner.ReadEvents(JournalPath, offset);

    /// <summary>Verifies every journal line; reports torn tails, damaged lines and sequence gaps.</summary>
    public JournalScanResult ScanJournal() =>
        Database is { } database ? database.ScanTail(0, 0, null) : JournalScanner.Scan(JournalPath, 0, 0, null);

    /// <summary>The effective config as stored (config.json).</summary>
    public EffectiveConfig ReadConfig()
    {
        EnsureLocalCopies();
        return File.Exists(ConfigPath)
            ? EffectiveConfig.FromCanonicalJson(System.Text.Encoding.UTF8.GetString(DurableFile.ReadAllBytes(ConfigPath)))
            : EffectiveConfig.Empty;
    }

    public string ParametersPath => Combine(RunFormat.ParametersFile);

    /// <summary>The saved parameters of the run script; null for a run that saved none (created before they were saved).</summary>
    public EffectiveConfig? ReadParameters()
    {
        EnsureLocalCopies();
        if (!File.Exists(ParametersPath))
        {
            return null;
        }

        try
        {
            return EffectiveConfig.FromCanonicalJson(System.Text.Encoding.UTF8.GetString(DurableFile.ReadAllBytes(ParametersPath)));
        }
        catch (InvalidConfigException ex)
        {
            // Not the config's fault: name the file, and the way on that needs no repair by hand.
            throw new RunToolsException(ErrorIds.InvalidParameters, RunToolsErrorCategory.InvalidData,
                $"Run '{RunId}' cannot read the parameters it saved ({ParametersPath} is damaged: {ex.Message}). Pass the run's parameters again with -Parameters; when they are the ones it saved, the file is written again.", RunId, ex);
        }
    }

    public byte[] ReadScript()
    {
        EnsureLocalCopies();
        return File.Exists(ScriptPath) ? DurableFile.ReadAllBytes(ScriptPath) : Array.Empty<byte>();
    }

    /// <summary>Plans a resume without taking the lock: what is done, what is in doubt, what must be redone.</summary>
    public ResumePlan Plan(bool verifyArtifacts = true) => ResumePlanner.Plan(this, verifyArtifacts).Plan;

    /// <summary>Throws JoinNotSupported unless workers of several processes can join the run (a run in a database).</summary>
    public void EnsureJoinable()
    {
        if (Database is null)
        {
            throw Storage.RunStores.NotJoinable(this);
        }
    }

    /// <summary>Takes ownership and starts a new attempt. Throws RunLocked when another process owns the run.</summary>
    public RunAttempt BeginAttempt(AttemptOptions? options = null)
    {
        EnsureLocalCopies(again: true);
        return RunAttempt.Begin(this, options ?? new AttemptOptions());
    }

    /// <summary>
    /// Verifies the run: state against journal, every recorded file's presence, size and SHA-256,
    /// and the files the format requires. Hashing uses all cores; <paramref name="bytesHashed"/>
    /// is called from worker threads with (bytes hashed so far, bytes to hash).
    /// </summary>
    public RunTestResult Test(Action<long, long>? bytesHashed = null, CancellationToken cancellation = default) =>
        RunTester.Test(this, bytesHashed, cancellation);

    /// <summary>
    /// Deletes the run. Never a running one: the lock is taken first (RunLocked otherwise). The
    /// directory is renamed out of sight before it is emptied, so a crash midway leaves no half run.
    /// </summary>
    private static bool IsLink(string path)
    {
        try
        {
            return (File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0;
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return false; // what cannot be read is not taken for a link; the deletion itself reports it
        }
    }

    public void Delete()
    {
        if (Database is { } database)
        {
            database.Delete();
            try
            {
                if (Directory.Exists(Path))
                {
                    Directory.Delete(Path, recursive: true);
                }
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                // The run is gone from the database; its local folder holds only logs and copies.
            }

            return;
        }

        if (IsLink(Path))
        {
            // Renaming and deleting a link would remove the link and leave the run it points to.
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"'{Path}' is a link to a run directory, not the run directory itself: nothing was deleted. Remove the run by its own directory (or by -RunId under its runs root), and the link with Remove-Item.", RunId);
        }

        string parent = System.IO.Path.GetDirectoryName(Path)!;
        string doomed = System.IO.Path.Combine(parent, RunFormat.DeletingPrefix + RunId + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        var runLock = AcquireLock(DateTimeOffset.UtcNow);

        try
        {
            if (NativeMethods.IsWindows)
            {
                // Windows cannot rename a folder holding an open file; the window is a few microseconds.
                runLock.Dispose();
            }

            Directory.Move(Path, doomed);
            NativeMethods.FlushDirectory(parent);
        }
        finally
        {
            runLock.Dispose();
        }

        Directory.Delete(doomed, recursive: true);
    }

    /// <summary>
    /// Takes the owner lock, or throws: RunLocked naming the live holder from the lock file,
    /// LockFileInvalid, RunNotFound, RunReadOnly, LockPermissionDenied or LockFailed.
    /// </summary>
    internal RunLock AcquireLock(DateTimeOffset now) => RunLock.Acquire(Path, RunId, now);

    internal RunStatus DeriveStatus(RunStatus stored)
    {
        if (stored != RunStatus.Running)
        {
            return stored;
        }

        if (Database is { } database)
        {
            return database.ReadHolder() is null ? RunStatus.Interrupted
                : database.ReadStopRequest() is not null ? RunStatus.Stopping
                : RunStatus.Running;
        }

        // A lock file that cannot be read (Unknown) leaves the status as recorded: Interrupted
        // would be a guess. One that is not a regular file cannot be held by any owner.
        var probe = RunLock.Probe(Path).State;
        if (probe == LockProbeState.Free || probe == LockProbeState.Invalid)
        {
            return RunStatus.Interrupted;
        }

        return File.Exists(StopPath) ? RunStatus.Stopping : RunStatus.Running;
    }

    private string Combine(string name) => System.IO.Path.Combine(Path, name);
}
