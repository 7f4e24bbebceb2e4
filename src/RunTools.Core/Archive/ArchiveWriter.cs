using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// Turns a run directory into a zip: walks the run (never following a link), compresses every file
/// while the other cores hash it, and ends the zip with the manifest. Which runs may be exported, the
/// run's lock and the error wording are <see cref="RunArchive.Export"/>'s.
/// </summary>
internal sealed class ArchiveWriter
{
    private readonly string _runId;
    private readonly List<SourceFile> _files = new();

    /// <summary>Lists what the archive will hold; the manifest gets its file records as they are written.</summary>
    public ArchiveWriter(RunDirectory run, RunState state, RunStatus status)
    {
        _runId = run.RunId;
        Manifest = new ArchiveManifest
        {
            CreatedAt = DateTimeOffset.UtcNow,
            CreatedBy = "RunTools " + ToolVersion(),
            Forced = status != RunStatus.Completed,
            Run = Summarize(state, status),
        };
        Collect(new DirectoryInfo(run.Path), string.Empty);
        foreach (var artifact in state.Artifacts.Where(a => a.Mode == ArtifactMode.Reference))
        {
            Manifest.ReferencedArtifacts.Add(new ArchiveReferenceRecord { Name = artifact.Name, Path = artifact.Path, Size = artifact.Size, Sha256 = artifact.Sha256 });
            Warnings.Add($"Artifact '{artifact.Name}' of run '{run.RunId}' is recorded by reference at '{artifact.Path}' and is not in the archive; the manifest lists it with its size and SHA-256.");
        }
    }

    public ArchiveManifest Manifest { get; }

    /// <summary>What the archive does not hold and why.</summary>
    public List<string> Warnings { get; } = new();

    /// <summary>
    /// Compresses on this thread while the other cores hash the same files (from the page cache);
    /// the manifest is the last entry, written once every hash is known.
    /// </summary>
    public void Write(string temp, ArchiveExportOptions options)
    {
        var cancel = options.Cancellation;
        var files = _files;
        var hashes = new (long Size, string Sha256)[files.Count];
        using var hashCancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var hashing = Task.Run(() => Parallel.For(0, files.Count,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount - 1), CancellationToken = hashCancel.Token },
            i => hashes[i] = Integrity.HashFile(files[i].Full)));
        var progress = new ArchiveProgressReporter(ArchivePhase.Compressing, _runId, files.Count, files.Sum(f => f.Size), options.Progress, cancel);
        var copied = new long[files.Count];
        try
        {
            using var output = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, RunArchive.BufferSize, FileOptions.None);
            using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
            {
                var buffer = new byte[RunArchive.BufferSize];
                for (int i = 0; i < files.Count; i++)
                {
                    var file = files[i];
                    progress.StartFile(i, file.Relative);
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
                            progress.Add(n);
                        }
                    }
                }

                WaitForHashes(hashing);
                for (int i = 0; i < files.Count; i++)
                {
                    if (hashes[i].Size != copied[i])
                    {
                        throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.InvalidData,
                            $"'{files[i].Relative}' of run '{_runId}' changed while it was exported ({copied[i]} bytes archived, {hashes[i].Size} hashed). Nothing was written; export again when nothing writes to the run.", _runId);
                    }

                    Manifest.Files.Add(new ArchiveFileRecord { Path = files[i].Relative, Size = copied[i], Sha256 = hashes[i].Sha256 });
                }

                var manifestEntry = zip.CreateEntry(RunArchive.ManifestName, CompressionLevel.Optimal);
                manifestEntry.LastWriteTime = ZipTime(Manifest.CreatedAt.UtcDateTime);
                using (var manifestStream = manifestEntry.Open())
                {
                    byte[] json = JsonSerializer.SerializeToUtf8Bytes(Manifest, RunFormat.JsonOptions);
                    manifestStream.Write(json, 0, json.Length);
                }
            }

            output.Flush(flushToDisk: true);
            progress.Finish();
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

    /// <summary>Renames the finished temp file to the archive's name; an existing archive is replaced only with force.</summary>
    public static void MoveIntoPlace(string temp, string target, bool force)
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
    private void Collect(DirectoryInfo directory, string prefix)
    {
        foreach (var info in directory.EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            string relative = prefix + info.Name;
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                Manifest.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "link" });
                Warnings.Add($"'{relative}' in run '{Manifest.Run.RunId}' is a link; links are never followed, so it is not in the archive.");
                continue;
            }

            bool topLevel = prefix.Length == 0;
            if (info is DirectoryInfo sub)
            {
                if (topLevel && ArchivePaths.IsRootLeftover(info.Name))
                {
                    continue;
                }

                Manifest.Directories.Add(relative);
                Collect(sub, relative + "/");
                continue;
            }

            if ((topLevel && info.Name == RunFormat.LockFile) || ArchivePaths.IsTempFile(info.Name))
            {
                continue;
            }

            if ((topLevel && info.Name == RunArchive.ManifestName) || ArchivePaths.ExplainUnsafe(relative) is not null)
            {
                Manifest.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "reserved_name" });
                Warnings.Add($"'{relative}' in run '{Manifest.Run.RunId}' has a name an archive cannot hold safely; it is not in the archive.");
                continue;
            }

            var file = (FileInfo)info;
            _files.Add(new SourceFile(relative, file.FullName, file.Length, file.LastWriteTimeUtc));
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
}
