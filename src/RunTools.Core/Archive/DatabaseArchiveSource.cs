using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json;
using RunTools.Core.Storage;

namespace RunTools.Core.Archive;

/// <summary>
/// A run held in a database as an archive's source, giving the files a run folder of the same run
/// would hold: run.json is the snapshot row (the folded state when there is none), journal.jsonl
/// the event rows' lines, config.json, parameters.json and script.ps1 the stored copies the state
/// records, the step outputs and artifacts the blobs under their recorded names; the attempt logs,
/// history copies and the config's source copy come from the run's local folder on this machine,
/// where the database store keeps them. The run's lease is held until disposed (RunLocked when a
/// live owner holds it), so no attempt writes while it is read.
/// </summary>
internal sealed class DatabaseArchiveSource : ArchiveSource
{
    private static readonly string[] s_runFolders = { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder, RunFormat.HistoryFolder };

    private readonly RunDirectory _run;
    private readonly IDatabaseRun _database;
    private readonly IRunStore _store;
    private readonly IRunOwnership _ownership;

    public DatabaseArchiveSource(RunDirectory run, IDatabaseRun database)
        : base(run.RunId)
    {
        _run = run;
        _database = database;
        _store = database.OpenStore(null);
        _ownership = _store.Acquire(DateTimeOffset.UtcNow);
        try
        {
            State = database.ReadStoredState();
        }
        catch
        {
            _ownership.Dispose();
            throw;
        }
    }

    public override void ListFiles()
    {
        var files = Files;
        DateTime when = State.UpdatedAt.UtcDateTime;

        // The snapshot as stored, byte for byte; a run whose creation stopped before its first snapshot gets the folded state.
        byte[] snapshot = _database.ReadSnapshotDocument() is { Length: > 0 } stored ? stored : JsonSerializer.SerializeToUtf8Bytes(State, RunFormat.JsonOptions);
        files.Add(new ArchiveSourceFile(RunFormat.StateFile, snapshot.Length, when, () => new MemoryStream(snapshot, writable: false)));

        var journal = _database.OpenJournal(out long journalLength);
        files.Add(new ArchiveSourceFile(RunFormat.JournalFile, journalLength, when, () => journal));

        AddStoredCopy(files, RunFormat.ConfigFile, State.Config.Hash, when);
        AddStoredCopy(files, RunFormat.ParametersFile, State.ParametersHash, when);
        AddStoredCopy(files, RunFormat.ScriptFile, State.Script.Hash, when);

        foreach (var blob in _database.ListBlobs())
        {
            if (ArchivePaths.ExplainUnsafe(blob.Name) is not null)
            {
                Skipped.Add(new ArchiveSkipRecord { Path = blob.Name, Reason = "reserved_name" });
                Warnings.Add($"'{blob.Name}' in run '{RunId}' has a name an archive cannot hold safely; it is not in the archive.");
                continue;
            }

            string name = blob.Name;
            files.Add(new ArchiveSourceFile(name, blob.Size, when, () => _store.Blobs.OpenRead(name), expectedSha256: blob.Sha256));
        }

        // What the database store keeps in the local folder rather than the database.
        if (Directory.Exists(_run.Path))
        {
            FolderArchiveSource.Collect(this, new DirectoryInfo(_run.Path), string.Empty,
                name => name == RunFormat.LogsFolder || name == RunFormat.HistoryFolder || name.StartsWith(RunFormat.ConfigSourcePrefix, StringComparison.Ordinal));
        }

        Files.Sort((a, b) => string.CompareOrdinal(a.Relative, b.Relative));
        var directories = new SortedSet<string>(s_runFolders.Concat(Directories), StringComparer.Ordinal);
        foreach (var file in Files)
        {
            for (int slash = file.Relative.LastIndexOf('/'); slash > 0; slash = file.Relative.LastIndexOf('/', slash - 1))
            {
                directories.Add(file.Relative.Substring(0, slash));
            }
        }

        Directories.Clear();
        Directories.AddRange(directories);
    }

    public override void Dispose() => _ownership.Dispose();

    private void AddStoredCopy(List<ArchiveSourceFile> files, string name, string? sha256, DateTime when)
    {
        if (string.IsNullOrEmpty(sha256))
        {
            return;
        }

        var copy = _database.OpenStoredCopy(sha256!, out long size);
        if (copy is null)
        {
            Warnings.Add($"Run '{RunId}' records {name} with SHA-256 {sha256}, but {_database.RootDisplay} holds no copy of it, so it is not in the archive (Test-Run reports it). Resume the run once with its script and config to store them again.");
            return;
        }

        files.Add(new ArchiveSourceFile(name, size, when, () => copy, expectedSha256: sha256));
    }
}
