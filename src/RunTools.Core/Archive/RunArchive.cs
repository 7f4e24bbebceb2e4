using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;
using RunTools.Core.Storage;
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// A run as one .zip: every file of the run directory plus archive_manifest.json, which lists each
/// file with its size and SHA-256. Export writes a temp file and renames it into place; import
/// verifies every entry against the manifest in a staging folder and renames that into place,
/// so neither leaves a partial archive or run under its final name. This class holds the policy
/// (which runs, where, locks, errors); <see cref="ArchiveWriter"/> and <see cref="ArchiveReader"/> the zip work.
/// </summary>
public static class RunArchive
{
    public const string ManifestName = "archive_manifest.json";
    public const int FormatVersion = 1;

    internal const int BufferSize = 1 << 16;

    /// <summary>Test seam: the free bytes under a root (a full disk cannot be made on every test machine); per thread, so parallel tests do not see it.</summary>
    [ThreadStatic]
    internal static Func<string, long>? FreeSpaceProbe;

    /// <summary>The archive path for a run: inside the destination when it is a folder, else the destination itself.</summary>
    public static string ResolveDestination(string runId, string destination) => ArchivePaths.ResolveDestination(runId, destination);

    /// <summary>
    /// Writes the run to a .zip, from a run folder or a run in a database alike. Only a Completed
    /// run unless Force; never a run a live process owns (the run's lock, or its lease in a
    /// database, is held for the whole export, so no attempt can start meanwhile).
    /// </summary>
    public static ArchiveExportResult Export(RunDirectory run, ArchiveExportOptions options)
    {
        string target = ResolveDestination(run.RunId, options.DestinationPath);
        if (run.Database is null && ArchivePaths.IsInside(target, run.Path))
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

        // A file where the archive's folder should be would fail the write with advice about disk space.
        for (string? parent = Path.GetDirectoryName(target); !string.IsNullOrEmpty(parent); parent = Path.GetDirectoryName(parent))
        {
            var kind = NativeFileType.Of(parent);
            if (kind == FileKind.Directory)
            {
                break;
            }

            if (kind != FileKind.Missing)
            {
                throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                    $"'{parent}' is {NativeFileType.Describe(kind)}, not a folder, so the archive '{target}' cannot be written there. Pass a folder (or a path that does not exist yet) as -DestinationPath, or a file name ending in .zip.", target);
            }
        }

        using var source = ArchiveSource.Open(run);

        // The run is held, so a state that says running has no live owner: it was interrupted.
        var status = source.State.Status == RunStatus.Running ? RunStatus.Interrupted : source.State.Status;
        if (status != RunStatus.Completed && !options.Force)
        {
            throw new RunToolsException(ErrorIds.ArchiveRunNotCompleted, RunToolsErrorCategory.InvalidOperation,
                $"Run '{run.RunId}' is {status}, not Completed; only completed runs are archived. Finish it with Resume-Run, or pass -Force to archive it as it is (the manifest then says forced).", run.RunId);
        }

        source.ListFiles();
        var writer = new ArchiveWriter(source, status);
        string folder = Path.GetDirectoryName(target)!;
        string temp = Path.Combine(folder, "." + Path.GetFileName(target) + DurableFile.TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
        bool done = false;
        try
        {
            Directory.CreateDirectory(folder); // a destination that cannot be created is a write failure
            writer.Write(temp, options);
            ArchiveWriter.MoveIntoPlace(temp, target, options.Force);
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
        return new ArchiveExportResult(target, writer.Manifest, writer.Warnings);
    }

    /// <summary>
    /// Restores a run from an archive under <paramref name="root"/>. Every entry is checked against
    /// the manifest before anything lands under the run's final name; any failure leaves the root as it was.
    /// </summary>
    public static RunDirectory Import(string archivePath, RunsRoot root, ArchiveImportOptions? options = null)
    {
        options ??= new ArchiveImportOptions();
        root.RequireDirectory();
        string full = FindArchive(archivePath);
        using var archive = ArchiveReader.Open(full, options);
        string id = archive.Manifest.Run.RunId;
        string target = Path.Combine(root.Path, id);
        var existing = NativeFileType.Of(target, followLinks: false);
        if (existing != FileKind.Missing)
        {
            if (existing != FileKind.Directory || !RunDirectory.IsRunDirectory(target))
            {
                // Force replaces a run, never some other folder, file or link that happens to have the name.
                throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                    $"'{target}' exists and is {(existing == FileKind.Directory ? "a folder that is not a run" : NativeFileType.Describe(existing))}, so it is not replaced, even with -Force; '{full}' was not imported. Move it away, or import under another -Root.", id);
            }

            if (!options.Force)
            {
                throw RunExists(id, root.Path, full);
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

        CheckFreeSpace(full, root.Path, archive.ExtractedSize);
        root.RemoveAbandonedStaging();
        string staging = root.NewStagingPath(id);
        try
        {
            // Inside the try: a root that cannot take the staging folder (read-only, full) is a write failure.
            Directory.CreateDirectory(staging);
            archive.ExtractTo(staging, options);
            PlaceRun(root, staging, target, id, options.Force, full);
        }
        catch (Exception ex)
        {
            RunsRoot.TryDeleteDirectory(staging);
            if (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw ImportWriteFailed(full, root.Path, ex);
            }

            throw;
        }

        return new RunDirectory(target, id);
    }

    /// <summary>
    /// Restores a run from an archive into a database root's <paramref name="catalog"/>. The archive
    /// is verified as for a folder root before anything is written; the store then writes the run
    /// in one transaction (every file checked as it is streamed in), so it appears whole or not at all.
    /// </summary>
    public static RunDirectory Import(string archivePath, IRunCatalog catalog, ArchiveImportOptions? options = null)
    {
        options ??= new ArchiveImportOptions();
        string full = FindArchive(archivePath);
        if (catalog is not IRunImporter importer)
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"The runs root {catalog.Display} cannot take an archived run. Import '{full}' under a folder root.", catalog.Display);
        }

        using var archive = ArchiveReader.Open(full, options);
        var progress = new ArchiveProgressReporter(ArchivePhase.Extracting, archive.Manifest.Run.RunId, archive.Manifest.Files.Count,
            archive.Manifest.Files.Sum(f => f.Size), options.Progress, options.Cancellation);
        var run = importer.ImportRun(new ArchivedRun(full, archive, progress), options.Force);
        progress.Finish();
        return run;
    }

    private static string FindArchive(string archivePath)
    {
        string full = Path.GetFullPath(archivePath);
        if (!File.Exists(full))
        {
            throw new RunToolsException(ErrorIds.ArchiveNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No archive at '{full}'. Check the path; archives are written by Export-RunArchive.", archivePath);
        }

        return full;
    }

    private static RunToolsException ImportWriteFailed(string archive, string root, Exception ex) =>
        new(ErrorIds.WriteFailed, ex is UnauthorizedAccessException ? RunToolsErrorCategory.PermissionDenied : RunToolsErrorCategory.WriteError,
            $"Could not import '{archive}' under '{root}': {ex.Message.TrimEnd().TrimEnd('.')}. Nothing was left behind. Free disk space there, remount it read-write or fix its permissions, then import again, or import under another -Root.", archive, ex);

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

    /// <summary>
    /// Renames the staged run into place. With Force an existing run is replaced through
    /// <see cref="RunReplacement"/>, which a crash half-way cannot leave without a run.
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

        RunReplacement.Replace(root.Path, staging, target, id);
    }

    /// <summary>A verified archive as a store reads it: each file streamed through its check, progress reported as each starts.</summary>
    private sealed class ArchivedRun : IArchivedRun
    {
        private readonly ArchiveReader _reader;
        private readonly ArchiveProgressReporter _progress;
        private readonly Dictionary<ArchiveFileRecord, int> _index = new();

        public ArchivedRun(string archivePath, ArchiveReader reader, ArchiveProgressReporter progress)
        {
            ArchivePath = archivePath;
            _reader = reader;
            _progress = progress;
            for (int i = 0; i < reader.Manifest.Files.Count; i++)
            {
                _index[reader.Manifest.Files[i]] = i;
            }
        }

        public string RunId => _reader.Manifest.Run.RunId;

        public string ArchivePath { get; }

        public IReadOnlyList<ArchiveFileRecord> Files => _reader.Manifest.Files;

        public Stream Open(ArchiveFileRecord file)
        {
            _progress.StartFile(_index[file], file.Path);
            return _reader.OpenVerified(file, _progress);
        }
    }
}
