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
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// Turns a run into a zip: compresses every file its <see cref="ArchiveSource"/> offers while the
/// other cores hash those that are local files (the rest are hashed as they are compressed), and
/// ends the zip with the manifest. Which runs may be exported, holding the run and the error
/// wording are <see cref="RunArchive.Export"/>'s; which store the files come from is the source's.
/// </summary>
internal sealed class ArchiveWriter
{
    private readonly string _runId;
    private readonly List<ArchiveSourceFile> _files;

    /// <summary>Lists what the archive will hold; the manifest gets its file records as they are written.</summary>
    public ArchiveWriter(ArchiveSource source, RunStatus status)
    {
        _runId = source.RunId;
        _files = source.Files;
        Manifest = new ArchiveManifest
        {
            CreatedAt = DateTimeOffset.UtcNow,
            CreatedBy = "RunTools " + ToolVersion(),
            Forced = status != RunStatus.Completed,
            Run = Summarize(source.State, status),
        };
        Manifest.Directories.AddRange(source.Directories);
        Manifest.Skipped.AddRange(source.Skipped);
        Warnings.AddRange(source.Warnings);
        foreach (var artifact in source.State.Artifacts.Where(a => a.Mode == ArtifactMode.Reference))
        {
            Manifest.ReferencedArtifacts.Add(new ArchiveReferenceRecord { Name = artifact.Name, Path = artifact.Path, Size = artifact.Size, Sha256 = artifact.Sha256 });
            Warnings.Add($"Artifact '{artifact.Name}' of run '{source.RunId}' is recorded by reference at '{artifact.Path}' and is not in the archive; the manifest lists it with its size and SHA-256.");
        }
    }

    public ArchiveManifest Manifest { get; }

    /// <summary>What the archive does not hold and why.</summary>
    public List<string> Warnings { get; } = new();

    /// <summary>
    /// Compresses on this thread while the other cores hash the same files (from the page cache)
    /// when they are local files, else hashes them as they are compressed; the manifest is the
    /// last entry, written once every hash is known.
    /// </summary>
    public void Write(string temp, ArchiveExportOptions options)
    {
        var cancel = options.Cancellation;
        var files = _files;
        var hashes = new (long Size, string Sha256)[files.Count];
        int[] local = Enumerable.Range(0, files.Count).Where(i => files[i].LocalPath is not null).ToArray();
        using var hashCancel = CancellationTokenSource.CreateLinkedTokenSource(cancel);
        var hashing = Task.Run(() => Parallel.For(0, local.Length,
            new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount - 1), CancellationToken = hashCancel.Token },
            j => hashes[local[j]] = Integrity.HashFile(files[local[j]].LocalPath!)));
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
                    using var sha = file.LocalPath is null ? SHA256.Create() : null;
                    using (var input = file.Open())
                    using (var entryStream = entry.Open())
                    {
                        int n;
                        while ((n = input.Read(buffer, 0, buffer.Length)) > 0)
                        {
                            entryStream.Write(buffer, 0, n);
                            sha?.TransformBlock(buffer, 0, n, null, 0);
                            copied[i] += n;
                            progress.Add(n);
                        }
                    }

                    if (sha is not null)
                    {
                        sha.TransformFinalBlock(buffer, 0, 0);
                        hashes[i] = (copied[i], Integrity.Hex(sha.Hash!));
                        CheckAgainstStore(file, copied[i], hashes[i].Sha256);
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

    /// <summary>Bytes a store offers with a recorded size and hash must be exactly those: anything else is damage in the store.</summary>
    private void CheckAgainstStore(ArchiveSourceFile file, long size, string sha256)
    {
        if (size != file.Size || (file.ExpectedSha256 is { } expected && !string.Equals(expected, sha256, StringComparison.OrdinalIgnoreCase)))
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.InvalidData,
                $"'{file.Relative}' of run '{_runId}' read back as {size} bytes with SHA-256 {sha256}, but the store recorded {file.Size} bytes" + (file.ExpectedSha256 is null ? string.Empty : $" with SHA-256 {file.ExpectedSha256}")
                + ". Nothing was written; check the run with Test-Run, and export again when nothing writes to it.", _runId);
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
}
