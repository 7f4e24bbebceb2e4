using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Threading;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>
/// The embedded default store: a run is a folder (docs/run-format.md). The journal is
/// journal.jsonl (<see cref="JournalWriter"/>, <see cref="JournalScanner"/>), the snapshot run.json,
/// ownership an OS lock on .lock (<see cref="RunLock"/>), blobs files under steps/ and artifacts/
/// named by run-relative path, a stop request the stop file.
/// </summary>
internal sealed class FileRunStore : IRunStore, IRunSnapshot
{
    private readonly RunDirectory _run;
    private readonly Action<string>? _crashPoint;

    /// <param name="crashPoint">Test seam (<see cref="AttemptOptions.CrashPoint"/>): "snapshot_unrenamed" once run.json's temp file is full.</param>
    public FileRunStore(RunDirectory run, Action<string>? crashPoint = null)
    {
        _run = run;
        _crashPoint = crashPoint;
        Blobs = new FileRunBlobs(run.Path);
    }

    public string RunId => _run.RunId;

    public string Location => _run.Path;

    public IRunSnapshot Snapshot => this;

    public IRunBlobs Blobs { get; }

    public long LogSizeHint => File.Exists(_run.JournalPath) ? new FileInfo(_run.JournalPath).Length : 0;

    bool IRunSnapshot.Exists => File.Exists(_run.StatePath) && new FileInfo(_run.StatePath).Length > 0;

    /// <summary>A recorder for a new run being assembled in <paramref name="folder"/> (an empty journal).</summary>
    public static RunRecorder CreateRecorder(string folder, string runId, Func<DateTimeOffset>? clock = null) =>
        new(new JournalWriter(Path.Combine(folder, RunFormat.JournalFile), 0, 0),
            new RunState { RunId = runId }, new ItemLedger(), (_, bytes) => DurableFile.WriteAtomic(Path.Combine(folder, RunFormat.StateFile), bytes), TimeSpan.MaxValue, clock);

    public IRunOwnership Acquire(DateTimeOffset now) => _run.AcquireLock(now);

    /// <summary>Removes the temp files of atomic writes a crash interrupted (a step's abandoned staging file among them).</summary>
    public void RemoveLeftovers()
    {
        string runPath = _run.Path;
        foreach (string folder in new[] { runPath }.Concat(new[] { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder, RunFormat.HistoryFolder }.Select(f => Path.Combine(runPath, f))))
        {
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (string file in Directory.EnumerateFiles(folder, "*" + DurableFile.TempMarker + "*", folder == runPath ? SearchOption.TopDirectoryOnly : SearchOption.AllDirectories))
            {
                if (Path.GetFileName(file).StartsWith(".", StringComparison.Ordinal))
                {
                    DurableFile.TryDelete(file);
                }
            }
        }
    }

    public JournalScanResult ScanLog(IJournalVisitor? visitor) => JournalScanner.Scan(_run.JournalPath, 0, 0, visitor);

    public IRunLog OpenLog(JournalScanResult scan, out string? keptTail)
    {
        keptTail = scan.TornTailLength > 0 ? BackUpTornTail(scan) : null;

        // The writer cuts the file back to the scan's valid length.
        return new JournalWriter(_run.JournalPath, scan.ValidLength, scan.LastSequence);
    }

    void IRunSnapshot.Replace(RunState state, byte[] serialized) =>
        DurableFile.WriteAtomic(_run.StatePath, serialized, _crashPoint is null ? null : () => _crashPoint("snapshot_unrenamed"));

    RunState IRunSnapshot.ReadStored() => _run.ReadStoredState(out _);

    public void EnsureOwnRunId(string recordedId, bool fromLog) =>
        _run.EnsureOwnRunId(recordedId, fromLog ? RunFormat.JournalFile : RunFormat.StateFile);

    /// <summary>
    /// How long a "no stop" answer is trusted: every item boundary asks (twice for a parallel item,
    /// on the pipeline thread and in its worker), and a stat per ask is a syscall per ask. A stop
    /// file another process writes is seen at the first boundary this much later at most.
    /// </summary>
    internal static readonly TimeSpan StopCheckInterval = TimeSpan.FromMilliseconds(10);

    private static readonly long s_stopCheckTicks = (long)(StopCheckInterval.TotalSeconds * Stopwatch.Frequency);

    // The last "no stop" answer: when it was asked, and how many stop files this process had written then. Null after a stop was seen.
    private NoStopAnswer? _noStop;

    /// <summary>The stop file's request. A stop requested in this process (Stop-Run in the run script, a time limit) is seen at the very next call.</summary>
    public StopRequest? ReadStopRequest()
    {
        if (Volatile.Read(ref _noStop) is { } known && known.Epoch == RunDirectory.StopFilesWritten && Stopwatch.GetTimestamp() - known.AskedAt < s_stopCheckTicks)
        {
            return null;
        }

        var asking = new NoStopAnswer(RunDirectory.StopFilesWritten, Stopwatch.GetTimestamp());
        var request = _run.ReadStopRequest();
        Volatile.Write(ref _noStop, request is null ? asking : null);
        return request;
    }

    private sealed class NoStopAnswer
    {
        public NoStopAnswer(long epoch, long askedAt)
        {
            Epoch = epoch;
            AskedAt = askedAt;
        }

        public long Epoch { get; }

        public long AskedAt { get; }
    }

    public void ClearStopRequest() => DurableFile.TryDelete(_run.StopPath);

    /// <summary>A folder's run has one process at a time (its OS lock): no workers.</summary>
    public IRunWorkers? Workers => null;

    /// <summary>Keeps a torn last line (a crash mid-append) in logs/ before the journal is cut back; returns its run-relative path.</summary>
    private string BackUpTornTail(JournalScanResult scan)
    {
        string relative = $"{RunFormat.LogsFolder}/journal-tail-{scan.LastSequence}-{DateTime.UtcNow:yyyyMMddHHmmss}.bin";
        byte[] tail;
        using (var stream = DurableFile.OpenRead(_run.JournalPath))
        {
            stream.Position = scan.ValidLength;
            tail = new byte[scan.TornTailLength];
            int read = 0;
            while (read < tail.Length)
            {
                int n = stream.Read(tail, read, tail.Length - read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }
        }

        DurableFile.CreateDirectory(Path.Combine(_run.Path, RunFormat.LogsFolder));
        DurableFile.WriteAtomic(Integrity.ResolvePath(_run.Path, relative), tail);
        return relative;
    }
}

/// <summary>
/// Blobs as files named by run-relative path: steps/&lt;step&gt;/output.&lt;format&gt; and
/// artifacts/&lt;name&gt;, a later copy of the same name in an attempt-N folder beside it (never over
/// an earlier file). Written to a temp file, hashed while streaming, fsynced, renamed, directory fsynced.
/// </summary>
internal sealed class FileRunBlobs : IRunBlobs
{
    private readonly string _runPath;

    // Names chosen by writes still in progress, so that concurrent units never pick the same one.
    private readonly HashSet<string> _reserved = new(StringComparer.Ordinal);

    public FileRunBlobs(string runPath) => _runPath = runPath;

    public StoredBlob WriteStepOutput(string step, int attempt, string? format, Stream content)
    {
        string folder = StepFolder(step);
        string fileName = "output" + (IsSafeExtension(format) ? "." + format : ".bin");
        string relative = $"{RunFormat.StepsFolder}/{step}/{fileName}";
        DurableFile.CreateDirectory(folder);

        // A step that runs again keeps the earlier attempt's output beside the new one, and never
        // writes where anything is (a damaged output may be a directory or a link by now).
        for (int n = 1; Occupied(relative); n++)
        {
            string attemptFolder = $"{RunFormat.StepsFolder}/{step}/{(n == 1 ? $"attempt-{attempt}" : $"attempt-{attempt}-{n}")}";
            string full = Integrity.ResolvePath(_runPath, attemptFolder);
            if (NativeFileType.Of(full, followLinks: false) is FileKind.Missing or FileKind.Directory)
            {
                DurableFile.CreateDirectory(full);
                relative = $"{attemptFolder}/{fileName}";
            }

            // Else something that is no folder holds that name: the next one is tried.
        }

        return Write(relative, content);
    }

    public StoredBlob WriteArtifact(string name, int attempt, Stream content)
    {
        string relative;
        lock (_reserved)
        {
            relative = FreeArtifactPath(name, attempt);
            _reserved.Add(relative);
        }

        try
        {
            DurableFile.CreateDirectory(Path.GetDirectoryName(Integrity.ResolvePath(_runPath, relative))!);
            return Write(relative, content);
        }
        finally
        {
            lock (_reserved)
            {
                _reserved.Remove(relative);
            }
        }
    }

    public string NewStagingFile(string step)
    {
        string folder = StepFolder(step);
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, ".output" + DurableFile.TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
    }

    public StoredBlob TakeStagingFile(string step, int attempt, string? format, string stagingFile)
    {
        // The step's folder is checked before the staging file is opened: a damaged run reads as RunDamaged, not as a failed write.
        StepFolder(step);
        return StagingFiles.Take(this, step, attempt, format, stagingFile);
    }

    public Stream OpenRead(string name) => DurableFile.OpenRead(LocalFile(name));

    public string LocalFile(string name) => Integrity.ResolvePath(_runPath, name);

    public bool Exists(string name) => File.Exists(LocalFile(name));

    public List<RunProblem> Verify(IReadOnlyList<RecordedFile> files, Action<long>? bytesDone = null, CancellationToken cancellation = default) =>
        Integrity.CheckAll(_runPath, files, bytesDone, cancellation);

    private static bool IsSafeExtension(string? format) =>
        format is { Length: > 0 and <= 16 } && format.All(c => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));

    /// <summary>steps/&lt;step&gt;; a folder of the format that is a file (or FIFO...) means the run directory is damaged: RunDamaged naming it.</summary>
    private string StepFolder(string step)
    {
        string steps = Path.Combine(_runPath, RunFormat.StepsFolder);
        string folder = Path.Combine(steps, step);
        RequireFolder(steps);
        RequireFolder(folder);
        return folder;
    }

    private void RequireFolder(string folder)
    {
        var kind = NativeFileType.Of(folder);
        if (kind is not (FileKind.Directory or FileKind.Missing))
        {
            string runId = Path.GetFileName(_runPath.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
            throw new RunToolsException(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
                $"Run '{runId}' is damaged: '{folder}' should be a folder but is {NativeFileType.Describe(kind)}. Move it aside, then resume the run (or restore the run from a backup or archive).", folder);
        }
    }

    private StoredBlob Write(string relative, Stream content)
    {
        string destination = Integrity.ResolvePath(_runPath, relative);
        long size = 0;
        string sha256 = string.Empty;
        DurableFile.WriteAtomicFrom(destination, stream =>
        {
            // Hashed as written: the bytes are read once, and the hash is of exactly what was stored.
            using var sha = SHA256.Create();
            byte[] buffer = new byte[81920];
            int read;
            while ((read = content.Read(buffer, 0, buffer.Length)) > 0)
            {
                sha.TransformBlock(buffer, 0, read, null, 0);
                stream.Write(buffer, 0, read);
                size += read;
            }

            sha.TransformFinalBlock(buffer, 0, 0);
            sha256 = Integrity.Hex(sha.Hash!);
        }, () => content is FileStream source ? $"Could not copy '{source.Name}' to '{destination}'" : $"Could not write '{destination}'");
        return new StoredBlob(relative, size, sha256);
    }

    private string FreeArtifactPath(string name, int attempt)
    {
        string candidate = $"{RunFormat.ArtifactsFolder}/{name}";
        if (IsFree(candidate))
        {
            return candidate;
        }

        // Never over an earlier file: later copies of a name go to a per-attempt folder.
        for (int n = 1; ; n++)
        {
            string folder = n == 1 ? $"attempt-{attempt}" : $"attempt-{attempt}-{n}";
            candidate = $"{RunFormat.ArtifactsFolder}/{folder}/{name}";
            if (IsFree(candidate))
            {
                return candidate;
            }
        }
    }

    private bool IsFree(string relative) => !_reserved.Contains(relative) && !Occupied(relative);

    /// <summary>Whether anything is at <paramref name="relative"/>: a file, a folder, a link (even a broken one).</summary>
    private bool Occupied(string relative) => NativeFileType.Of(Integrity.ResolvePath(_runPath, relative), followLinks: false) != FileKind.Missing;
}
