using System;
using System.IO;
using System.Text.Json;
using System.Text.Json.Nodes;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core;

/// <summary>How a run folder's state is read: run.json plus the journal after it, or a rebuild from the journal.</summary>
public sealed partial class RunDirectory
{
    /// <summary>
    /// Snapshot + tail (or a rebuild); the status is as stored. RunDamaged when run.json (or, for
    /// a rebuild, the journal) names another run. With <paramref name="checkJournal"/> the journal's
    /// run_created is read too when the snapshot is used as is: listing does not pay that extra
    /// read per run (it doubled Get-Run's cost); attempts fold the whole journal and Test-Run
    /// reports the mismatch, so a journal copied in from another run is still refused there.
    /// </summary>
    internal RunState ReadStoredState(out bool rebuilt, bool checkJournal = false)
    {
        var state = ReadStoredStateUnchecked(out rebuilt, out var snapshotRunId);
        if (snapshotRunId is not null)
        {
            EnsureOwnRunId(snapshotRunId, RunFormat.StateFile);
        }

        EnsureOwnRunId(state.RunId, rebuilt ? RunFormat.JournalFile : RunFormat.StateFile);
        if (checkJournal && !rebuilt && File.Exists(JournalPath)
            && JournalScanner.ReadEventAt(JournalPath, 0) is { Type: JournalEventTypes.RunCreated } created
            && created.Data["run_id"] is JsonValue createdId && createdId.TryGetValue(out string? journalRunId))
        {
            // The snapshot was used as is: the journal's own first event must name this run too.
            EnsureOwnRunId(journalRunId, RunFormat.JournalFile);
        }

        return state;
    }

    /// <summary>
    /// A run directory is named by its run id: run.json and the journal's run_created must say the
    /// same id, or the files belong to another run (copied or moved in) and cannot be trusted here.
    /// </summary>
    internal void EnsureOwnRunId(string recordedId, string file)
    {
        if (recordedId.Length > 0 && !string.Equals(recordedId, RunId, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
                $"Run directory '{Path}' holds the files of run '{recordedId}' ({file} says so), not of run '{RunId}': a run's directory must be named by its run id. Rename the directory to '{recordedId}' if it is that run, or restore this run's files from a backup or archive.", RunId);
        }
    }

    /// <summary>As ReadStoredState without the run id check, for callers that report a foreign id themselves (archive import).</summary>
    internal RunState ReadStoredStateUnchecked(out bool rebuilt) => ReadStoredStateUnchecked(out rebuilt, out _);

    private RunState ReadStoredStateUnchecked(out bool rebuilt, out string? snapshotRunId)
    {
        snapshotRunId = null;
        rebuilt = false;
        RunState? snapshot = TryReadSnapshot();
        snapshotRunId = snapshot?.RunId;
        // A stat, not a FileInfo: a listing does this for every run. Anything but a regular file counts as empty.
        NativeFileType.Of(JournalPath, followLinks: true, out long journalLength);
        if (snapshot is not null)
        {
            if (journalLength == snapshot.Journal.Length)
            {
                return snapshot;
            }

            if (journalLength > snapshot.Journal.Length)
            {
                var reducer = new StateReducer(snapshot);
                var tail = JournalScanner.Scan(JournalPath, snapshot.Journal.Length, snapshot.Journal.Sequence, reducer);
                if (tail.SequenceGaps.Count == 0 || tail.ValidLines == 0)
                {
                    reducer.Finish(tail);
                    return snapshot;
                }
            }
        }

        rebuilt = true;
        if (snapshot is not null)
        {
            // The journal is shorter than the snapshot says (lost after a power cut) or has gaps:
            // it is the truth when it has events at all; with none left, the snapshot is all there is.
            return TryRebuild() ?? snapshot;
        }

        return Rebuild();
    }

    internal RunState Rebuild() => TryRebuild() ?? throw Damaged();

    private RunState? TryRebuild()
    {
        var state = new RunState { RunId = RunId };
        var reducer = new StateReducer(state);
        var scan = JournalScanner.Scan(JournalPath, 0, 0, reducer);
        if (scan.ValidLines == 0)
        {
            return null;
        }

        reducer.Finish(scan);
        EnsureSupportedVersion(RunId, state.FormatVersion);
        return state;
    }

    internal static void EnsureSupportedVersion(string runId, int version)
    {
        if (version > RunFormat.Version)
        {
            throw new RunToolsException(ErrorIds.UnsupportedFormatVersion, RunToolsErrorCategory.InvalidData,
                $"Run '{runId}' uses run-directory format version {version}; this RunTools reads version {RunFormat.Version}. Update RunTools to work with it.", runId);
        }
    }

    private RunToolsException Damaged() => new(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
        $"Run '{RunId}' cannot be read: {RunFormat.StateFile} is missing or corrupt and {RunFormat.JournalFile} has no readable events. Restore the run directory from a backup or archive.", RunId);

    private RunState? TryReadSnapshot() => TryReadSnapshot(out _);

    /// <summary>The snapshot as stored, or null with the reason it cannot be used.</summary>
    internal RunState? TryReadSnapshot(out string? failure)
    {
        failure = null;
        ArraySegment<byte> bytes;
        try
        {
            // Parsed at once, nothing keeps it: the thread's shared buffer.
            bytes = DurableFile.ReadShared(StatePath);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            failure = ex is FileNotFoundException ? "missing" : ex.Message;
            return null;
        }

        try
        {
            EnsureSupportedVersion(RunId, PeekFormatVersion(bytes.AsSpan()));

            var state = JsonSerializer.Deserialize<RunState>(bytes.AsSpan(), RunFormat.JsonOptions);
            if (state?.FindDefect() is { } defect)
            {
                failure = defect;
                return null;
            }

            if (state is null || state.RunId.Length == 0)
            {
                failure = "no run_id";
                return null;
            }

            return state;
        }
        catch (JsonException ex)
        {
            failure = ex.Message;
            return null;
        }
    }

    private static int PeekFormatVersion(ReadOnlySpan<byte> bytes)
    {
        var reader = new Utf8JsonReader(bytes);
        int depth = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.StartObject || reader.TokenType == JsonTokenType.StartArray)
            {
                depth++;
            }
            else if (reader.TokenType == JsonTokenType.EndObject || reader.TokenType == JsonTokenType.EndArray)
            {
                depth--;
            }
            else if (depth == 1 && reader.TokenType == JsonTokenType.PropertyName && reader.ValueTextEquals("format_version"u8))
            {
                reader.Read();
                return reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int v) ? v : 0;
            }
        }

        return 0;
    }
}
