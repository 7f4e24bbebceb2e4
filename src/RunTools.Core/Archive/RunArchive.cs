using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;

namespace RunTools.Core.Archive;

public enum ArchivePhase
{
    /// <summary>Export: files are compressed into the archive (hashing runs beside it on the other cores).</summary>
    Compressing,

    /// <summary>Import: entries are extracted into a staging folder and verified.</summary>
    Extracting,
}

/// <summary>How far an export or import is. Reported on the caller's thread only.</summary>
public sealed class ArchiveProgress
{
    internal ArchiveProgress(ArchivePhase phase, string runId, int filesDone, int filesTotal, long bytesDone, long bytesTotal, string? currentFile)
    {
        Phase = phase;
        RunId = runId;
        FilesDone = filesDone;
        FilesTotal = filesTotal;
        BytesDone = bytesDone;
        BytesTotal = bytesTotal;
        CurrentFile = currentFile;
    }

    public ArchivePhase Phase { get; }

    public string RunId { get; }

    public int FilesDone { get; }

    public int FilesTotal { get; }

    public long BytesDone { get; }

    public long BytesTotal { get; }

    /// <summary>The relative path being worked on, or null at the end.</summary>
    public string? CurrentFile { get; }
}

public sealed class ArchiveExportOptions
{
    /// <summary>A folder (the archive becomes &lt;run-id&gt;.zip inside it) or a file path ending in .zip.</summary>
    public string DestinationPath { get; set; } = ".";

    /// <summary>Export a run that is not Completed (the manifest says forced), and overwrite an existing archive.</summary>
    public bool Force { get; set; }

    public Action<ArchiveProgress>? Progress { get; set; }

    public CancellationToken Cancellation { get; set; }

    /// <summary>Deflate level of the file entries (the benchmark compares levels).</summary>
    internal CompressionLevel CompressionLevel { get; set; } = CompressionLevel.Optimal;
}

public sealed class ArchiveExportResult
{
    internal ArchiveExportResult(string path, ArchiveManifest manifest, IReadOnlyList<string> warnings)
    {
        Path = path;
        Manifest = manifest;
        Warnings = warnings;
    }

    /// <summary>The archive's full path.</summary>
    public string Path { get; }

    public ArchiveManifest Manifest { get; }

    /// <summary>What the archive does not hold and why (links skipped, referenced artifacts not copied).</summary>
    public IReadOnlyList<string> Warnings { get; }
}

public sealed class ArchiveImportOptions
{
    /// <summary>Replace an existing run with the same id (never one that a live process owns).</summary>
    public bool Force { get; set; }

    public Action<ArchiveProgress>? Progress { get; set; }

    public CancellationToken Cancellation { get; set; }

    /// <summary>The most bytes an import extracts (the sum of the files' sizes); larger archives are refused before extraction (ArchiveTooLarge).</summary>
    public long MaximumSize { get; set; } = DefaultMaximumSize;

    /// <summary>The most entries an archive may hold; more are refused before anything is read (ArchiveTooManyEntries).</summary>
    public int MaximumEntryCount { get; set; } = DefaultMaximumEntryCount;

    /// <summary>16 GiB: above most honest runs; a larger one is imported with a raised -MaximumSize.</summary>
    public const long DefaultMaximumSize = 16L << 30;

    /// <summary>1,000,000 entries.</summary>
    public const int DefaultMaximumEntryCount = 1_000_000;
}

/// <summary>
/// A run as one .zip: every file of the run directory plus archive_manifest.json, which lists each
/// file with its size and SHA-256. Export writes a temp file and renames it into place; import
/// verifies every entry against the manifest in a staging folder and renames that into place,
/// so neither leaves a partial archive or run under its final name.
/// </summary>
public static class RunArchive
{
    public const string ManifestName = "archive_manifest.json";
    public const int FormatVersion = 1;

    private const int BufferSize = 1 << 16;
    private const long ProgressEveryBytes = 4L << 20;
    private const long MaxManifestBytes = 256L << 20;
    private const int UnixFileTypeMask = 0xF000;
    private const int UnixSymbolicLink = 0xA000;

    // ZipArchiveEntry.ExternalAttributes is not in netstandard2.0's surface, but every host RunTools
    // supports (.NET Framework 4.7.2+, .NET 6+) has it.
    private static readonly PropertyInfo? s_externalAttributes = typeof(ZipArchiveEntry).GetProperty("ExternalAttributes");

    /// <summary>The archive path for a run: inside the destination when it is a folder, else the destination itself.</summary>
    public static string ResolveDestination(string runId, string destination)
    {
        string full = Path.GetFullPath(destination);
        bool isFile = !Directory.Exists(full)
            && !EndsWithSeparator(destination)
            && string.Equals(Path.GetExtension(full), ".zip", StringComparison.OrdinalIgnoreCase);
        return isFile ? full : Path.Combine(full, runId + ".zip");
    }

    /// <summary>
    /// Writes the run to a .zip. Only a Completed run unless Force; never a run a live process owns
    /// (the run's lock is held for the whole export, so no attempt can start meanwhile).
    /// </summary>
    public static ArchiveExportResult Export(RunDirectory run, ArchiveExportOptions options)
    {
        var cancel = options.Cancellation;
        string target = ResolveDestination(run.RunId, options.DestinationPath);
        string runPrefix = run.Path.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
        if (target.StartsWith(runPrefix, NativeMethods.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"The archive '{target}' would be inside the run directory it archives. Choose a -DestinationPath outside '{run.Path}'.", target);
        }

        if (Directory.Exists(target))
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"'{target}' is a folder, not an archive file. Pass the folder itself as -DestinationPath, or another file name.", target);
        }

        if (File.Exists(target) && !options.Force)
        {
            throw ArchiveExists(target);
        }

        using var runLock = LockForExport(run);
        var state = run.ReadStoredState(out _, checkJournal: true);

        // The lock is ours, so a state that says running has no live owner: it was interrupted.
        var status = state.Status == RunStatus.Running ? RunStatus.Interrupted : state.Status;
        if (status != RunStatus.Completed && !options.Force)
        {
            throw new RunToolsException(ErrorIds.ArchiveRunNotCompleted, RunToolsErrorCategory.InvalidOperation,
                $"Run '{run.RunId}' is {status}, not Completed; only completed runs are archived. Finish it with Resume-Run, or pass -Force to archive it as it is (the manifest then says forced).", run.RunId);
        }

        var warnings = new List<string>();
        var manifest = new ArchiveManifest
        {
            CreatedAt = DateTimeOffset.UtcNow,
            CreatedBy = "RunTools " + ToolVersion(),
            Forced = status != RunStatus.Completed,
            Run = Summarize(state, status),
        };
        var files = new List<SourceFile>();
        Collect(new DirectoryInfo(run.Path), string.Empty, files, manifest, warnings);
        foreach (var artifact in state.Artifacts.Where(a => a.Mode == ArtifactMode.Reference))
        {
            manifest.ReferencedArtifacts.Add(new ArchiveReferenceRecord { Name = artifact.Name, Path = artifact.Path, Size = artifact.Size, Sha256 = artifact.Sha256 });
            warnings.Add($"Artifact '{artifact.Name}' of run '{run.RunId}' is recorded by reference at '{artifact.Path}' and is not in the archive; the manifest lists it with its size and SHA-256.");
        }

        string folder = Path.GetDirectoryName(target)!;
        string temp = Path.Combine(folder, "." + Path.GetFileName(target) + DurableFile.TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
        bool done = false;
        try
        {
            Directory.CreateDirectory(folder); // a destination that cannot be created is a write failure
            WriteArchive(temp, run.RunId, files, manifest, options, cancel);
            MoveIntoPlace(temp, target, options.Force);
            done = true;
        }
        catch (IOException ex)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"Could not export run '{run.RunId}' to '{target}': {ex.Message.TrimEnd().TrimEnd('.')}. Nothing was written under that name. Free disk space there, remount it read-write or fix its permissions, then export again, or pass another -DestinationPath.", target, ex);
        }
        catch (UnauthorizedAccessException ex)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.PermissionDenied,
                $"Could not export run '{run.RunId}' to '{target}': {ex.Message.TrimEnd().TrimEnd('.')}. Fix the permissions and try again, or pass another -DestinationPath.", target, ex);
        }
        finally
        {
            if (!done)
            {
                DurableFile.TryDelete(temp);
            }
        }

        NativeMethods.FlushDirectory(folder);
        return new ArchiveExportResult(target, manifest, warnings);
    }

    /// <summary>
    /// Restores a run from an archive under <paramref name="root"/>. Every entry is checked against
    /// the manifest before anything lands under the run's final name; any failure leaves the root as it was.
    /// </summary>
    public static RunDirectory Import(string archivePath, RunsRoot root, ArchiveImportOptions? options = null)
    {
        options ??= new ArchiveImportOptions();
        string full = Path.GetFullPath(archivePath);
        if (!File.Exists(full))
        {
            throw new RunToolsException(ErrorIds.ArchiveNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No archive at '{full}'. Check the path; archives are written by Export-RunArchive.", archivePath);
        }

        using var stream = DurableFile.OpenRead(full, BufferSize);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(full, ex.Message, ex);
        }

        using (zip)
        {
            Dictionary<string, ZipArchiveEntry> entries;
            try
            {
                CheckEntryCount(full, zip, options);
                entries = CheckEntries(full, zip);
            }
            catch (InvalidDataException ex)
            {
                throw Corrupt(full, ex.Message, ex);
            }

            var manifest = ReadManifest(full, entries);
            long extractedSize = CheckExtractedSize(full, manifest, options);
            string id = manifest.Run.RunId;
            string target = Path.Combine(root.Path, id);
            if (Directory.Exists(target))
            {
                if (!options.Force)
                {
                    throw RunExists(id, root.Path, full);
                }

                if (!RunDirectory.IsRunDirectory(target))
                {
                    // Force replaces a run, never some other folder that happens to have the name.
                    throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                        $"'{target}' exists and is not a run directory, so -Force does not replace it; '{full}' was not imported. Move that folder away, or import under another -Root.", id);
                }

                RunLock.ThrowIfHeld(target, id);
            }

            try
            {
                Directory.CreateDirectory(root.Path);
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw ImportWriteFailed(full, root.Path, ex);
            }

            CheckFreeSpace(full, root.Path, extractedSize);
            root.RemoveAbandonedStaging();
            string staging = Path.Combine(root.Path, RunFormat.StagingPrefix + id + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));
            try
            {
                // Inside the try: a root that cannot take the staging folder (read-only, full) is a write failure.
                Directory.CreateDirectory(staging);
                Extract(full, entries, manifest, staging, options);
                CheckStagedRun(full, staging, id);
                PlaceRun(root, staging, target, id, options.Force, full);
            }
            catch (Exception ex)
            {
                TryDeleteDirectory(staging);
                if (ex is IOException || ex is UnauthorizedAccessException)
                {
                    throw ImportWriteFailed(full, root.Path, ex);
                }

                throw;
            }

            return new RunDirectory(target, id);
        }
    }

    private static RunToolsException ImportWriteFailed(string archive, string root, Exception ex) =>
        new(ErrorIds.WriteFailed, ex is UnauthorizedAccessException ? RunToolsErrorCategory.PermissionDenied : RunToolsErrorCategory.WriteError,
            $"Could not import '{archive}' under '{root}': {ex.Message.TrimEnd().TrimEnd('.')}. Nothing was left behind. Free disk space there, remount it read-write or fix its permissions, then import again, or import under another -Root.", archive, ex);

    // ---------------------------------------------------------------- export

    private sealed class SourceFile
    {
        public SourceFile(string relative, string full, long size, DateTime lastWriteUtc)
        {
            Relative = relative;
            Full = full;
            Size = size;
            LastWriteUtc = lastWriteUtc;
        }

        public string Relative { get; }

        public string Full { get; }

        public long Size { get; }

        public DateTime LastWriteUtc { get; }
    }

    // RunLocked, LockFileInvalid, RunReadOnly (a mounted backup), LockPermissionDenied, ...: see RunLock.Acquire.
    private static RunLock LockForExport(RunDirectory run) => run.AcquireLock(DateTimeOffset.UtcNow);

    private static ArchiveRunSummary Summarize(RunState state, RunStatus status) => new()
    {
        RunId = state.RunId,
        Name = state.Name,
        Status = status,
        FormatVersion = state.FormatVersion,
        ConfigHash = state.Config.Hash,
        ScriptHash = state.Script.Hash,
        StepsTotal = state.StepsTotal,
        StepsCompleted = state.StepsCompleted,
        ItemsCompleted = state.ItemsCompleted,
        Migrated = state.Migrated,
        SourceFormat = state.SourceFormat,
    };

    /// <summary>
    /// Walks the run directory without following any link: a symbolic link (or other reparse point)
    /// is skipped and reported, whether it points inside the run or out of it. The lock file, temp
    /// files of atomic writes and staging leftovers are not part of the run's content.
    /// </summary>
    private static void Collect(DirectoryInfo directory, string prefix, List<SourceFile> files, ArchiveManifest manifest, List<string> warnings)
    {
        foreach (var info in directory.EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            string relative = prefix + info.Name;
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                manifest.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "link" });
                warnings.Add($"'{relative}' in run '{manifest.Run.RunId}' is a link; links are never followed, so it is not in the archive.");
                continue;
            }

            bool topLevel = prefix.Length == 0;
            if (info is DirectoryInfo sub)
            {
                if (topLevel && (info.Name.StartsWith(RunFormat.StagingPrefix, StringComparison.Ordinal) || info.Name.StartsWith(RunFormat.DeletingPrefix, StringComparison.Ordinal) || info.Name.StartsWith(RunFormat.ReplacedPrefix, StringComparison.Ordinal)))
                {
                    continue;
                }

                manifest.Directories.Add(relative);
                Collect(sub, relative + "/", files, manifest, warnings);
                continue;
            }

            if ((topLevel && info.Name == RunFormat.LockFile) || IsTempFile(info.Name))
            {
                continue;
            }

            if ((topLevel && info.Name == ManifestName) || ExplainUnsafe(relative) is not null)
            {
                manifest.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "reserved_name" });
                warnings.Add($"'{relative}' in run '{manifest.Run.RunId}' has a name an archive cannot hold safely; it is not in the archive.");
                continue;
            }

            var file = (FileInfo)info;
            files.Add(new SourceFile(relative, file.FullName, file.Length, file.LastWriteTimeUtc));
        }
    }

    private static bool IsTempFile(string name) => name.StartsWith(".", StringComparison.Ordinal) && name.Contains(DurableFile.TempMarker);

    /// <summary>
    /// Compresses on this thread while the other cores hash the same files (from the page cache);
    /// the manifest is the last entry, written once every hash is known.
    /// </summary>
    private static void WriteArchive(string temp, string runId, List<SourceFile> files, ArchiveManifest manifest, ArchiveExportOptions options, CancellationToken cancel)
    {
        var hashes = new (long Size, string Sha256)[files.Count];
        using var hashCancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var hashing = Task.Run(() => Parallel.For(0, files.Count,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount - 1), CancellationToken = hashCancel.Token },
            i => hashes[i] = Integrity.HashFile(files[i].Full)));
        long bytesTotal = files.Sum(f => f.Size);
        var copied = new long[files.Count];
        try
        {
            using var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.None);
            using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            {
                var buffer = new byte[BufferSize];
                long bytesDone = 0;
                long nextReport = ProgressEveryBytes;
                for (int i = 0; i < files.Count; i++)
                {
                    cancel.ThrowIfCancellationRequested();
                    var file = files[i];
                    options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Compressing, runId, i, files.Count, bytesDone, bytesTotal, file.Relative));
                    var entry = zip.CreateEntry(file.Relative, options.CompressionLevel);
                    entry.LastWriteTime = ZipTime(file.LastWriteUtc);
                    using (var input = DurableFile.OpenRead(file.Full, 1))
                    using (var entryStream = entry.Open())
                    {
                        int n;
                        while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
                        {
                            entryStream.Write(buffer, 0, n);
                            copied[i] += n;
                            bytesDone += n;
                            if (bytesDone >= nextReport)
                            {
                                cancel.ThrowIfCancellationRequested();
                                options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Compressing, runId, i, files.Count, bytesDone, bytesTotal, file.Relative));
                                nextReport = bytesDone + ProgressEveryBytes;
                            }
                        }
                    }
                }

                WaitForHashes(hashing);
                for (int i = 0; i < files.Count; i++)
                {
                    if (hashes[i].Size != copied[i])
                    {
                        throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.InvalidData,
                            $"'{files[i].Relative}' of run '{runId}' changed while it was exported ({copied[i]} bytes archived, {hashes[i].Size} hashed). Nothing was written; export again when nothing writes to the run.", runId);
                    }

                    manifest.Files.Add(new ArchiveFileRecord { Path = files[i].Relative, Size = copied[i], Sha256 = hashes[i].Sha256 });
                }

                var manifestEntry = zip.CreateEntry(ManifestName, CompressionLevel.Optimal);
                manifestEntry.LastWriteTime = ZipTime(manifest.CreatedAt.UtcDateTime);
                using (var manifestStream = manifestEntry.Open())
                {
                    byte[] json = JsonSerializer.SerializeToUtf8Bytes(manifest, RunFormat.JsonOptions);
                    manifestStream.Write(json, 0, json.Length);
                }
            }

            output.Flush(flushToDisk: true);
            options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Compressing, runId, files.Count, files.Count, bytesTotal, bytesTotal, null));
        }
        catch
        {
            hashCancel.Cancel();
            try
            {
                hashing.Wait(CancellationToken.None);
            }
            catch (AggregateException)
            {
                // The first failure is the one that counts; the hashing only stopped because of it.
            }

            throw;
        }
    }

    private static void WaitForHashes(Task hashing)
    {
        try
        {
            hashing.Wait();
        }
        catch (AggregateException ex)
        {
            var inner = ex.Flatten().InnerExceptions.FirstOrDefault(e => e is not OperationCanceledException) ?? ex.Flatten().InnerExceptions[0];
            if (inner is OperationCanceledException canceled)
            {
                throw canceled;
            }

            if (inner is IOException || inner is UnauthorizedAccessException)
            {
                throw new RunToolsException(ErrorIds.FileUnreadable, RunToolsErrorCategory.ReadError,
                    $"A file of the run could not be read for hashing: {inner.Message} Nothing was written; fix the cause and try again.", null, inner);
            }

            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.NotSpecified, inner.Message, null, inner);
        }
    }

    private static void MoveIntoPlace(string temp, string target, bool force)
    {
        if (File.Exists(target))
        {
            if (!force)
            {
                throw ArchiveExists(target);
            }

            File.Replace(temp, target, null, ignoreMetadataErrors: true);
            return;
        }

        try
        {
            File.Move(temp, target);
        }
        catch (IOException) when (File.Exists(target) && !force)
        {
            throw ArchiveExists(target);
        }
    }

    /// <summary>Zip timestamps cover 1980-2107 in local time; anything else is clamped.</summary>
    private static DateTimeOffset ZipTime(DateTime utc)
    {
        var local = new DateTimeOffset(DateTime.SpecifyKind(utc, DateTimeKind.Utc)).ToLocalTime();
        if (local.Year < 1980)
        {
            return new DateTimeOffset(1980, 1, 2, 0, 0, 0, local.Offset);
        }

        return local.Year > 2107 ? new DateTimeOffset(2107, 12, 30, 0, 0, 0, local.Offset) : local;
    }

    private static string ToolVersion()
    {
        var assembly = typeof(RunArchive).Assembly;
        string? version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion;
        version ??= assembly.GetName().Version?.ToString() ?? "unknown";
        int plus = version.IndexOf('+');
        return plus < 0 ? version : version.Substring(0, plus);
    }

    // ---------------------------------------------------------------- import

    /// <summary>Entry names: safe relative paths, no links, no duplicates (also none differing only in case).</summary>
    /// <summary>Test seam: the free bytes under a root (a full disk cannot be made on every test machine); per thread, so parallel tests do not see it.</summary>
    [ThreadStatic]
    internal static Func<string, long>? FreeSpaceProbe;

    private static void CheckEntryCount(string archive, ZipArchive zip, ArchiveImportOptions options)
    {
        int count = zip.Entries.Count;
        if (count > options.MaximumEntryCount)
        {
            throw new RunToolsException(ErrorIds.ArchiveTooManyEntries, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' has {count:N0} entries, more than the limit of {options.MaximumEntryCount:N0}; nothing was imported. If you trust the archive, raise the limit with -MaximumEntryCount.", archive);
        }
    }

    /// <summary>The bytes an import will write (every listed file's size, which extraction enforces); refused above the limit.</summary>
    private static long CheckExtractedSize(string archive, ArchiveManifest manifest, ArchiveImportOptions options)
    {
        long total = 0;
        foreach (var file in manifest.Files)
        {
            // Saturating: sizes from a hostile manifest must not wrap around to a small total.
            total = file.Size > long.MaxValue - total ? long.MaxValue : total + file.Size;
        }

        if (total > options.MaximumSize)
        {
            throw new RunToolsException(ErrorIds.ArchiveTooLarge, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' would extract {total:N0} bytes, more than the limit of {options.MaximumSize:N0} bytes; nothing was imported. If you trust the archive, raise the limit with -MaximumSize.", archive);
        }

        return total;
    }

    /// <summary>Refuses an import that cannot fit: better than filling the disk and failing half-way.</summary>
    private static void CheckFreeSpace(string archive, string rootPath, long needed)
    {
        long available;
        try
        {
            available = FreeSpaceProbe?.Invoke(rootPath) ?? new DriveInfo(rootPath).AvailableFreeSpace;
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is ArgumentException || ex is PlatformNotSupportedException)
        {
            return; // no way to tell: extraction still stops cleanly if the disk fills
        }

        // The run's folders and the file system's own blocks take a little more than the files.
        long margin = Math.Max(1L << 20, needed / 100);
        if (available < needed + margin)
        {
            throw new RunToolsException(ErrorIds.InsufficientSpace, RunToolsErrorCategory.WriteError,
                $"Importing archive '{archive}' needs about {needed + margin:N0} bytes under '{rootPath}', but only {available:N0} are free; nothing was imported. Free space there, or import under another -Root.", rootPath);
        }
    }

    private static Dictionary<string, ZipArchiveEntry> CheckEntries(string archive, ZipArchive zip)
    {
        var byName = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        var byFoldedName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in zip.Entries)
        {
            string name = entry.FullName;
            string? unsafeWhy = ExplainUnsafe(name.EndsWith("/", StringComparison.Ordinal) ? name.Substring(0, name.Length - 1) : name);
            if (unsafeWhy is not null)
            {
                throw new RunToolsException(ErrorIds.ArchiveUnsafePath, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has an entry '{name}' whose path {unsafeWhy}; it could write outside the run. Nothing was imported; do not use this archive, export the run again from its source.", archive);
            }

            if (IsLink(entry))
            {
                throw new RunToolsException(ErrorIds.ArchiveLinkEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has an entry '{name}' that is a symbolic link; run archives never hold links. Nothing was imported; do not use this archive, export the run again from its source.", archive);
            }

            if (byName.ContainsKey(name))
            {
                throw new RunToolsException(ErrorIds.ArchiveDuplicateEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has the entry '{name}' more than once, so which bytes are meant is ambiguous. Nothing was imported; export the run again from its source.", archive);
            }

            string folded = name.TrimEnd('/');
            if (byFoldedName.TryGetValue(folded, out string? other))
            {
                throw new RunToolsException(ErrorIds.ArchiveDuplicateEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has entries '{other}' and '{name}' that differ only in letter case; they would overwrite each other on Windows and macOS. Nothing was imported; export the run again from its source.", archive);
            }

            byName.Add(name, entry);
            byFoldedName.Add(folded, name);
        }

        return byName;
    }

    private static bool IsLink(ZipArchiveEntry entry)
    {
        if (s_externalAttributes?.GetValue(entry) is not int attributes)
        {
            return false;
        }

        // Unix mode in the high 16 bits (zip "version made by" Unix; other hosts leave them 0).
        return ((attributes >> 16) & UnixFileTypeMask) == UnixSymbolicLink;
    }

    /// <summary>Why a relative archive path is unsafe, or null: absolute, drive letter, backslash, '.' or '..' segments, empty segments, control characters.</summary>
    internal static string? ExplainUnsafe(string path)
    {
        if (path.Length == 0)
        {
            return "is empty";
        }

        if (path[0] == '/')
        {
            return "is absolute";
        }

        if (path.IndexOf(':') >= 0)
        {
            return path.Length >= 2 && path[1] == ':' ? "starts with a drive letter" : "contains ':'";
        }

        if (path.IndexOf('\\') >= 0)
        {
            return "contains a backslash";
        }

        foreach (char c in path)
        {
            if (char.IsControl(c))
            {
                return "contains a control character";
            }
        }

        foreach (string segment in path.Split('/'))
        {
            if (segment.Length == 0)
            {
                return "has an empty segment";
            }

            if (segment == "." || segment == "..")
            {
                return $"has a '{segment}' segment";
            }
        }

        return null;
    }

    private static ArchiveManifest ReadManifest(string archive, Dictionary<string, ZipArchiveEntry> entries)
    {
        if (!entries.TryGetValue(ManifestName, out var manifestEntry))
        {
            throw new RunToolsException(ErrorIds.ArchiveManifestMissing, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' has no {ManifestName}, so its content cannot be verified; it was not written by Export-RunArchive. Nothing was imported; export the run with Export-RunArchive.", archive);
        }

        ArchiveManifest? manifest;
        try
        {
            if (manifestEntry.Length > MaxManifestBytes)
            {
                throw InvalidManifest(archive, $"it declares {manifestEntry.Length} bytes");
            }

            using var stream = manifestEntry.Open();
            byte[] bytes = ReadCapped(stream, MaxManifestBytes);
            manifest = JsonSerializer.Deserialize<ArchiveManifest>(bytes, RunFormat.JsonOptions);
        }
        catch (JsonException ex)
        {
            throw InvalidManifest(archive, "it is not valid JSON (" + ex.Message + ")");
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(archive, ex.Message, ex);
        }

        if (manifest is null || manifest.Run is null || manifest.Files is null)
        {
            throw InvalidManifest(archive, "it lacks 'run' or 'files'");
        }

        if (manifest.ArchiveFormatVersion > FormatVersion)
        {
            throw new RunToolsException(ErrorIds.UnsupportedFormatVersion, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' uses archive format version {manifest.ArchiveFormatVersion}; this RunTools reads version {FormatVersion}. Update RunTools to import it.", archive);
        }

        if (manifest.ArchiveFormatVersion < 1)
        {
            throw InvalidManifest(archive, "'archive_format_version' is missing or not a positive number");
        }

        manifest.Directories ??= new List<string>();
        if (manifest.Files.Any(f => f is null || f.Path is null) || manifest.Directories.Any(d => d is null) || manifest.Run.RunId is null)
        {
            throw InvalidManifest(archive, "it has an empty file, directory or run id");
        }

        string? why = RunId.Explain(manifest.Run.RunId);
        if (why is not null)
        {
            throw new RunToolsException(ErrorIds.ArchiveInvalidRunId, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' names the run '{manifest.Run.RunId}', which is not a valid run id ({why}; a run id is {RunId.Rule}). Nothing was imported; the archive was not written by Export-RunArchive or was altered.", archive);
        }

        var listed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string path in manifest.Files.Select(f => f.Path).Concat(manifest.Directories))
        {
            string? unsafeWhy = ExplainUnsafe(path);
            if (unsafeWhy is not null)
            {
                throw new RunToolsException(ErrorIds.ArchiveUnsafePath, RunToolsErrorCategory.InvalidData,
                    $"The manifest of archive '{archive}' lists a path '{path}' that {unsafeWhy}; it could write outside the run. Nothing was imported; do not use this archive.", archive);
            }

            if (!listed.Add(path) || path == ManifestName)
            {
                throw InvalidManifest(archive, $"it lists '{path}' twice (or in two letter cases, or as the manifest itself)");
            }
        }

        foreach (var file in manifest.Files)
        {
            if (file.Size < 0 || file.Sha256 is null || file.Sha256.Length != 64 || !file.Sha256.All(IsHexDigit))
            {
                throw InvalidManifest(archive, $"the entry for '{file.Path}' has no valid size and SHA-256");
            }
        }

        var files = manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var directories = new HashSet<string>(manifest.Directories, StringComparer.Ordinal);
        foreach (var entry in entries.Values)
        {
            string name = entry.FullName;
            if (name == ManifestName)
            {
                continue;
            }

            if (name.EndsWith("/", StringComparison.Ordinal))
            {
                if (!directories.Contains(name.TrimEnd('/')))
                {
                    throw Unexpected(archive, name);
                }

                continue;
            }

            if (!files.TryGetValue(name, out var record))
            {
                throw Unexpected(archive, name);
            }

            if (entry.Length != record.Size)
            {
                throw SizeMismatch(archive, name, record.Size, $"the zip declares {entry.Length} bytes");
            }
        }

        foreach (var file in manifest.Files)
        {
            if (!entries.ContainsKey(file.Path))
            {
                throw new RunToolsException(ErrorIds.ArchiveMissingEntry, RunToolsErrorCategory.InvalidData,
                    $"The manifest of archive '{archive}' lists '{file.Path}' ({file.Size} bytes), but the archive has no such entry. Nothing was imported; the archive is incomplete: export the run again from its source.", archive);
            }
        }

        return manifest;
    }

    /// <summary>Extracts every listed file into the staging folder, verifying size (reading at most size + 1 bytes) and SHA-256.</summary>
    private static void Extract(string archive, Dictionary<string, ZipArchiveEntry> entries, ArchiveManifest manifest, string staging, ArchiveImportOptions options)
    {
        var cancel = options.Cancellation;
        foreach (string directory in manifest.Directories)
        {
            Directory.CreateDirectory(Path.Combine(staging, directory.Replace('/', Path.DirectorySeparatorChar)));
        }

        long bytesTotal = manifest.Files.Sum(f => f.Size);
        long bytesDone = 0;
        long nextReport = ProgressEveryBytes;
        var buffer = new byte[BufferSize];
        var folders = new HashSet<string>(StringComparer.Ordinal) { staging };
        for (int i = 0; i < manifest.Files.Count; i++)
        {
            cancel.ThrowIfCancellationRequested();
            var record = manifest.Files[i];
            var entry = entries[record.Path];
            options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Extracting, manifest.Run.RunId, i, manifest.Files.Count, bytesDone, bytesTotal, record.Path));
            string destination = Path.Combine(staging, record.Path.Replace('/', Path.DirectorySeparatorChar));
            string folder = Path.GetDirectoryName(destination)!;
            if (folders.Add(folder))
            {
                Directory.CreateDirectory(folder);
            }

            long total = 0;
            string actual;
            try
            {
                using var sha = SHA256.Create();
                using (var input = entry.Open())
                using (var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferSize, FileOptions.None))
                {
                    while (true)
                    {
                        // A zip bomb cannot fill the disk: never more than one byte past the declared size is read.
                        int want = (int)Math.Min(buffer.Length, record.Size + 1 - total);
                        int n = want <= 0 ? 0 : input.Read(buffer, 0, want);
                        if (n == 0)
                        {
                            break;
                        }

                        total += n;
                        if (total > record.Size)
                        {
                            throw SizeMismatch(archive, record.Path, record.Size, "it decompresses to more");
                        }

                        sha.TransformBlock(buffer, 0, n, null, 0);
                        output.Write(buffer, 0, n);
                        bytesDone += n;
                        if (bytesDone >= nextReport)
                        {
                            cancel.ThrowIfCancellationRequested();
                            options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Extracting, manifest.Run.RunId, i, manifest.Files.Count, bytesDone, bytesTotal, record.Path));
                            nextReport = bytesDone + ProgressEveryBytes;
                        }
                    }

                    output.Flush(flushToDisk: true);
                }

                sha.TransformFinalBlock(buffer, 0, 0);
                actual = Integrity.Hex(sha.Hash!);
            }
            catch (InvalidDataException ex)
            {
                throw Corrupt(archive, $"entry '{record.Path}' cannot be decompressed: {ex.Message}", ex);
            }
            catch (NotSupportedException ex)
            {
                throw Corrupt(archive, $"entry '{record.Path}' uses a compression method this RunTools cannot read: {ex.Message}", ex);
            }

            if (total != record.Size)
            {
                throw SizeMismatch(archive, record.Path, record.Size, $"it decompresses to {total} bytes");
            }

            if (!string.Equals(actual, record.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                throw new RunToolsException(ErrorIds.ArchiveHashMismatch, RunToolsErrorCategory.InvalidData,
                    $"Entry '{record.Path}' of archive '{archive}' has SHA-256 {actual}, but the manifest says {record.Sha256}: its bytes were altered or damaged. Nothing was imported; use another copy of the archive or export the run again.", archive);
            }

            try
            {
                File.SetLastWriteTimeUtc(destination, entry.LastWriteTime.UtcDateTime);
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        }

        // Every file was flushed as it was written; now the directory entries, deepest first.
        foreach (string folder in folders.Concat(manifest.Directories.Select(d => Path.Combine(staging, d.Replace('/', Path.DirectorySeparatorChar)))).Distinct().OrderByDescending(f => f.Length))
        {
            NativeMethods.FlushDirectory(folder);
        }

        options.Progress?.Invoke(new ArchiveProgress(ArchivePhase.Extracting, manifest.Run.RunId, manifest.Files.Count, manifest.Files.Count, bytesTotal, bytesTotal, null));
    }

    /// <summary>The staged files must be a run, and the run must be the one the manifest names.</summary>
    private static void CheckStagedRun(string archive, string staging, string id)
    {
        if (!RunDirectory.IsRunDirectory(staging))
        {
            throw InvalidManifest(archive, $"the archive holds neither {RunFormat.StateFile} nor {RunFormat.JournalFile}, so it is not a run");
        }

        var state = new RunDirectory(staging, id).ReadStoredStateUnchecked(out _);
        if (!string.Equals(state.RunId, id, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.ArchiveRunIdMismatch, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' says it holds run '{id}', but its {RunFormat.StateFile} is of run '{state.RunId}'. Nothing was imported; the archive was altered: export the run again from its source.", archive);
        }
    }

    /// <summary>
    /// Renames the staged run into place. With Force an existing run is first renamed aside (under
    /// its lock, so never a running one) and deleted only after the new one is in place.
    /// </summary>
    private static void PlaceRun(RunsRoot root, string staging, string target, string id, bool force, string archive)
    {
        NativeMethods.FlushDirectory(staging);
        if (!Directory.Exists(target))
        {
            try
            {
                Directory.Move(staging, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                throw RunExists(id, root.Path, archive);
            }

            NativeMethods.FlushDirectory(root.Path);
            return;
        }

        if (!force)
        {
            throw RunExists(id, root.Path, archive);
        }

        // Set aside, not doomed: if a crash comes before the new run is in place, the next reader
        // of this root (RunsRoot.RecoverReplaced) puts the old run back.
        string doomed = Path.Combine(root.Path, RunFormat.ReplacedPrefix + id + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        var runLock = new RunDirectory(target, id).AcquireLock(DateTimeOffset.UtcNow);

        try
        {
            if (NativeMethods.IsWindows)
            {
                // Windows cannot rename a folder holding an open file; the window is a few microseconds.
                runLock.Dispose();
            }

            Directory.Move(target, doomed);
        }
        finally
        {
            runLock.Dispose();
        }

        try
        {
            Directory.Move(staging, target);
        }
        catch
        {
            try
            {
                Directory.Move(doomed, target);
            }
            catch (IOException)
            {
            }

            throw;
        }

        NativeMethods.FlushDirectory(root.Path);
        TryDeleteDirectory(doomed);
    }

    private static byte[] ReadCapped(Stream stream, long cap)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[BufferSize];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            memory.Write(buffer, 0, n);
            if (memory.Length > cap)
            {
                throw new InvalidDataException($"{ManifestName} is larger than {cap} bytes");
            }
        }

        return memory.ToArray();
    }

    private static bool IsHexDigit(char c) => (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');

    private static bool EndsWithSeparator(string path) => path.EndsWith("/", StringComparison.Ordinal) || path.EndsWith(Path.DirectorySeparatorChar.ToString(), StringComparison.Ordinal);

    private static RunToolsException ArchiveExists(string target) => new(ErrorIds.ArchiveExists, RunToolsErrorCategory.ResourceExists,
        $"The archive '{target}' already exists. Use -Force to overwrite it, or choose another -DestinationPath.", target);

    private static RunToolsException RunExists(string id, string root, string archive) => new(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
        $"A run '{id}' already exists under '{root}'; '{archive}' was not imported. Use -Force to replace that run with the archived one, or import under another -Root.", id);

    private static RunToolsException Corrupt(string archive, string detail, Exception? inner = null) => new(ErrorIds.ArchiveCorrupt, RunToolsErrorCategory.InvalidData,
        $"Archive '{archive}' is truncated or corrupt ({detail}). Nothing was imported; copy the archive again from its source, or export the run again.", archive, inner);

    private static RunToolsException InvalidManifest(string archive, string detail) => new(ErrorIds.ArchiveManifestInvalid, RunToolsErrorCategory.InvalidData,
        $"The {ManifestName} of archive '{archive}' is not usable: {detail}. Nothing was imported; export the run again with Export-RunArchive.", archive);

    private static RunToolsException Unexpected(string archive, string name) => new(ErrorIds.ArchiveUnexpectedEntry, RunToolsErrorCategory.InvalidData,
        $"Archive '{archive}' has an entry '{name}' that its manifest does not list, so it cannot be verified. Nothing was imported; the archive was altered: export the run again from its source.", archive);

    private static RunToolsException SizeMismatch(string archive, string name, long expected, string found) => new(ErrorIds.ArchiveSizeMismatch, RunToolsErrorCategory.InvalidData,
        $"Entry '{name}' of archive '{archive}' should be {expected} bytes per the manifest, but {found}. Nothing was imported; the archive was altered or damaged: use another copy or export the run again.", archive);

    private static void TryDeleteDirectory(string path)
    {
        try
        {
            if (Directory.Exists(path))
            {
                Directory.Delete(path, recursive: true);
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
