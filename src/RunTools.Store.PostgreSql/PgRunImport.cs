using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using RunTools.Core;
using RunTools.Core.Archive;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Writes an archived run (Import-RunArchive) into the database in one transaction: its events as
/// rows (each archived journal line verified and kept byte for byte, with its seq), its snapshot
/// row (run.json as archived; the folded events when it is missing or unusable), its step outputs
/// and artifacts as blobs under their recorded names, and config.json, parameters.json and
/// script.ps1 as stored copies, every file checked against the manifest as it is streamed in.
/// What the database store keeps in a run's local folder (attempt logs, history copies, the
/// config's source copy) goes there, before the commit. A failure or a kill before the commit
/// leaves nothing in the database: the run appears whole or not at all.
/// </summary>
internal sealed class PgRunImport
{
    private const int EventBatch = 1000;

    // A longer line cannot be a journal event; refusing it keeps a hostile archive from filling memory.
    private const int MaxLineBytes = 64 << 20;

    private static readonly HashSet<string> s_storedCopies = new(StringComparer.Ordinal) { RunFormat.ConfigFile, RunFormat.ParametersFile, RunFormat.ScriptFile };

    private readonly PostgreSqlStore _owner;
    private readonly string _runId;
    private readonly string _localFolder;

    public PgRunImport(PostgreSqlStore owner, string runId, string localFolder)
    {
        _owner = owner;
        _runId = runId;
        _localFolder = localFolder;
    }

    /// <summary>
    /// Test seam: called with the connection at "import_events" (after each batch of event rows),
    /// "import_blob" (after each file) and "import_commit", and at the blob writes' own points. Per
    /// thread (an import runs on its caller's), so parallel tests do not see it.
    /// </summary>
    [ThreadStatic]
    internal static Action<string, NpgsqlConnection>? FaultPoint;

    private PgDatabase Db => _owner.Db;

    private string S => _owner.S;

    /// <summary>Whether a file of a run folder is kept in the database (else in the run's local folder).</summary>
    internal static bool InDatabase(string path) =>
        path == RunFormat.StateFile || path == RunFormat.JournalFile || s_storedCopies.Contains(path)
        || path.StartsWith(RunFormat.StepsFolder + "/", StringComparison.Ordinal) || path.StartsWith(RunFormat.ArtifactsFolder + "/", StringComparison.Ordinal);

    /// <summary>
    /// RunExists when the id is taken (nothing changed) unless <paramref name="replace"/>, which
    /// takes the run's lease first (RunLocked naming a live holder) and replaces its rows in the
    /// same transaction. StoreUnavailable when the connection drops: never retried, nothing kept.
    /// </summary>
    public void Write(IArchivedRun run, bool replace, string rootDisplay)
    {
        var journal = run.Files.FirstOrDefault(f => f.Path == RunFormat.JournalFile)
            ?? throw ArchiveErrors.InvalidManifest(run.ArchivePath, $"it holds no {RunFormat.JournalFile}, and a run in a database is its events. Import it under a folder root");
        var store = new PostgreSqlRunStore(_owner, _runId, _localFolder) { FaultPoint = FaultPoint };
        var blobs = (PgBlobs)store.Blobs;
        bool localExisted = Directory.Exists(_localFolder);
        using var lease = replace ? (PgLease)store.Acquire(DateTimeOffset.UtcNow) : null;
        try
        {
            long[] replaced = Db.Run("import the run", idempotent: false, connection =>
            {
                using var transaction = connection.BeginTransaction();
                long[] previous = Array.Empty<long>();
                if (Exists(connection, transaction))
                {
                    if (lease is null)
                    {
                        throw ArchiveErrors.RunExistsInDatabase(_runId, rootDisplay, run.ArchivePath);
                    }

                    previous = PgDatabaseRun.DeleteRows(_owner, connection, transaction, _runId, lease.Session, "replaced", keepLease: true);
                }

                RunState folded;
                long lastSeq;
                try
                {
                    (folded, lastSeq) = InsertEvents(connection, transaction, run, journal);
                }
                catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
                {
                    // Another import or Start-Run of the same id committed first.
                    throw ArchiveErrors.RunExistsInDatabase(_runId, rootDisplay, run.ArchivePath);
                }

                InsertSnapshot(connection, transaction, run, folded, lastSeq);
                foreach (var file in run.Files.Where(f => InDatabase(f.Path) && f.Path != RunFormat.JournalFile && f.Path != RunFormat.StateFile))
                {
                    using (var content = run.Open(file))
                    {
                        var (contentId, _, sha256) = blobs.WriteContent(connection, transaction, content);
                        string name = s_storedCopies.Contains(file.Path) ? PgBlobs.StoredCopyName(Integrity.Hex(sha256)) : file.Path;
                        using var claim = Db.Command(connection, $"INSERT INTO {S}.blobs (run_id, name, content_id) VALUES (@run, @name, @id) ON CONFLICT (run_id, name) DO NOTHING", transaction);
                        claim.Parameters.AddWithValue("run", _runId);
                        claim.Parameters.AddWithValue("name", name);
                        claim.Parameters.AddWithValue("id", contentId);
                        claim.ExecuteNonQuery(); // a stored copy named by content may be there twice (config.json equal to the parameters): one row
                    }

                    FaultPoint?.Invoke("import_blob", connection);
                }

                WriteLocalFiles(run);
                FaultPoint?.Invoke("import_commit", connection);
                transaction.Commit();
                return previous;
            });

            PgDatabaseRun.DropUnnamedContents(_owner, replaced);
        }
        catch
        {
            if (!localExisted)
            {
                RunsRoot.TryDeleteDirectory(_localFolder);
            }

            throw;
        }
    }

    private bool Exists(NpgsqlConnection connection, NpgsqlTransaction transaction)
    {
        using var command = Db.Command(connection, $"""
            SELECT EXISTS (SELECT 1 FROM {S}.events WHERE run_id = @run) OR EXISTS (SELECT 1 FROM {S}.runs WHERE run_id = @run)
                OR EXISTS (SELECT 1 FROM {S}.blobs WHERE run_id = @run)
            """, transaction);
        command.Parameters.AddWithValue("run", _runId);
        return command.ExecuteScalar() is true;
    }

    /// <summary>
    /// The archived journal's lines as event rows, in batches, each verified (seq, crc) and folded
    /// as it goes. A torn last line (no newline, not a whole event) was never a recorded event and
    /// is left out; a damaged line before it refuses the import (RunDamaged), since a database
    /// keeps only whole events.
    /// </summary>
    private (RunState State, long LastSeq) InsertEvents(NpgsqlConnection connection, NpgsqlTransaction transaction, IArchivedRun run, ArchiveFileRecord journal)
    {
        var state = new RunState { RunId = _runId };
        var reducer = new StateReducer(state);
        var types = new TypeRecorder(reducer);
        var scan = new PgEventScan(0, 0, types);
        var batch = new List<(long Seq, string Type, byte[] Line)>(EventBatch);
        long lastSeq = 0;
        int lineNumber = 0;
        using (var content = run.Open(journal))
        {
            foreach (var (line, terminated) in Lines(content, run.ArchivePath))
            {
                lineNumber++;
                if (scan.AddLine(line) is { } damage)
                {
                    if (!terminated)
                    {
                        break; // a torn tail: the write that a crash cut short
                    }

                    throw Damaged(run.ArchivePath, $"line {lineNumber} is damaged ({damage})");
                }

                if (types.Sequence <= lastSeq)
                {
                    throw Damaged(run.ArchivePath, $"line {lineNumber} has seq {types.Sequence}, not after seq {lastSeq}");
                }

                lastSeq = types.Sequence;
                batch.Add((types.Sequence, types.Type, line));
                if (batch.Count == EventBatch)
                {
                    InsertBatch(connection, transaction, batch);
                }
            }
        }

        InsertBatch(connection, transaction, batch);
        var result = scan.Finish();
        if (result.ValidLines == 0)
        {
            throw ArchiveErrors.InvalidManifest(run.ArchivePath, $"its {RunFormat.JournalFile} holds no event, so it is not a run");
        }

        reducer.Finish(result);
        if (!string.Equals(state.RunId, _runId, StringComparison.Ordinal))
        {
            throw ArchiveErrors.RunIdMismatch(run.ArchivePath, _runId, state.RunId, RunFormat.JournalFile);
        }

        RunDirectory.EnsureSupportedVersion(_runId, state.FormatVersion);
        return (state, lastSeq);
    }

    private void InsertBatch(NpgsqlConnection connection, NpgsqlTransaction transaction, List<(long Seq, string Type, byte[] Line)> batch)
    {
        if (batch.Count == 0)
        {
            return;
        }

        using var command = Db.Command(connection, $"""
            INSERT INTO {S}.events (run_id, seq, type, line)
            SELECT @run, u.seq, u.type, u.line FROM unnest(@seqs, @types, @lines) AS u(seq, type, line)
            """, transaction);
        command.Parameters.AddWithValue("run", _runId);
        command.Parameters.AddWithValue("seqs", batch.Select(b => b.Seq).ToArray());
        command.Parameters.AddWithValue("types", batch.Select(b => b.Type).ToArray());
        command.Parameters.Add(new NpgsqlParameter("lines", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = batch.Select(b => b.Line).ToArray() });
        command.ExecuteNonQuery();
        batch.Clear();
        FaultPoint?.Invoke("import_events", connection);
    }

    /// <summary>
    /// run.json as archived when it is this run's and not ahead of the events; otherwise (missing,
    /// unreadable, ahead after a torn tail was left out) the folded events, as a reader would rebuild them.
    /// </summary>
    private void InsertSnapshot(NpgsqlConnection connection, NpgsqlTransaction transaction, IArchivedRun run, RunState folded, long lastSeq)
    {
        byte[]? document = null;
        RunState? snapshot = null;
        if (run.Files.FirstOrDefault(f => f.Path == RunFormat.StateFile) is { } stateFile)
        {
            using var content = run.Open(stateFile);
            using var copy = new MemoryStream();
            content.CopyTo(copy);
            document = copy.ToArray();
            try
            {
                snapshot = JsonSerializer.Deserialize<RunState>(document, RunFormat.JsonOptions);
            }
            catch (JsonException)
            {
                // Unreadable: kept as archived, and the folded events fill the columns.
            }

            if (snapshot is { RunId.Length: > 0 } && !string.Equals(snapshot.RunId, _runId, StringComparison.Ordinal))
            {
                throw ArchiveErrors.RunIdMismatch(run.ArchivePath, _runId, snapshot.RunId, RunFormat.StateFile);
            }
        }

        if (snapshot is null || snapshot.FindDefect() is not null || snapshot.RunId.Length == 0 || snapshot.Journal.Sequence > lastSeq)
        {
            snapshot = folded;
            document = JsonSerializer.SerializeToUtf8Bytes(folded, RunFormat.JsonOptions);
        }

        using var command = Db.Command(connection,
            $"INSERT INTO {S}.runs (run_id, name, status, journal_seq, snapshot, updated_at) VALUES (@run, @name, @status, @seq, @snapshot, now())", transaction);
        command.Parameters.AddWithValue("run", _runId);
        // The columns Get-Run filters on in SQL are the run's state as its events fold, not as an
        // archived snapshot that may be behind them (a crash between a journal write and run.json's).
        command.Parameters.AddWithValue("name", folded.Name);
        command.Parameters.AddWithValue("status", RunFormat.EnumText(folded.Status));
        command.Parameters.AddWithValue("seq", snapshot.Journal.Sequence);
        command.Parameters.AddWithValue("snapshot", document!);
        command.ExecuteNonQuery();
    }

    /// <summary>The files the database store keeps in the run's local folder on this machine, verified as they are copied.</summary>
    private void WriteLocalFiles(IArchivedRun run)
    {
        foreach (var file in run.Files.Where(f => !InDatabase(f.Path)))
        {
            string path = Path.Combine(_localFolder, file.Path.Replace('/', Path.DirectorySeparatorChar));
            DurableFile.CreateDirectory(Path.GetDirectoryName(path)!);
            using var content = run.Open(file);
            DurableFile.WriteAtomicFrom(path, stream => content.CopyTo(stream, RunArchive.BufferSize), () => $"Could not write '{file.Path}' of run '{_runId}' to its local folder '{_localFolder}'");
        }
    }

    private static RunToolsException Damaged(string archive, string detail) => new(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
        $"The {RunFormat.JournalFile} of archive '{archive}' cannot be a run's events: {detail}. A database keeps only whole, verified events, so nothing was imported. Import the archive under a folder root, where Test-Run shows the damage.", archive);

    /// <summary>
    /// The journal's lines without their newlines, each with whether a newline ended it (only the
    /// last may lack one). A line longer than any event is refused rather than held in memory.
    /// </summary>
    private static IEnumerable<(byte[] Line, bool Terminated)> Lines(Stream content, string archive)
    {
        var buffer = new byte[RunArchive.BufferSize];
        var line = new MemoryStream();
        int n;
        while ((n = content.Read(buffer, 0, buffer.Length)) > 0)
        {
            int start = 0;
            for (int i = 0; i < n; i++)
            {
                if (buffer[i] != (byte)'\n')
                {
                    continue;
                }

                line.Write(buffer, start, i - start);
                yield return (line.ToArray(), true);
                line.SetLength(0);
                start = i + 1;
            }

            line.Write(buffer, start, n - start);
            if (line.Length > MaxLineBytes)
            {
                throw Damaged(archive, $"a line is longer than {MaxLineBytes >> 20} MiB");
            }
        }

        if (line.Length > 0)
        {
            yield return (line.ToArray(), false);
        }
    }

    /// <summary>Passes every verified event on to the reducer, keeping its seq and type for the row.</summary>
    private sealed class TypeRecorder : IJournalVisitor
    {
        private readonly IJournalVisitor _inner;

        public TypeRecorder(IJournalVisitor inner) => _inner = inner;

        public long Sequence { get; private set; }

        public string Type { get; private set; } = string.Empty;

        public bool WantsTimestamp => _inner.WantsTimestamp;

        public void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw)
        {
            Sequence = line.Sequence;
            Type = line.Type;
            _inner.Visit(in line, offset, raw);
        }
    }
}
