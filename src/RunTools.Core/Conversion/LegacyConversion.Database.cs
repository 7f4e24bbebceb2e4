using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Archive;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Conversion;

/// <summary>Conversion into a database root: the legacy directory is only read.</summary>
public static partial class LegacyConversion
{
    /// <summary>
    /// Converts the legacy directory at <paramref name="path"/> into a run created in
    /// <paramref name="catalog"/> (a database), leaving the directory exactly as it was: no state
    /// file, no backup copy, no audit entry is written there. The run's state is assembled in a
    /// temporary folder and written by the store's import (the path Import-RunArchive takes), in one
    /// transaction: it appears whole or not at all. The legacy files that vouch for converted work
    /// are copied into the database as the run's artifacts (checked against the hashes read while
    /// converting), so Test-Run re-verifies them there and a resume on any machine keeps that work.
    /// </summary>
    public static ConversionResult ConvertInto(string path, ConversionOptions options, IRunCatalog catalog)
    {
        var (root, runId) = Prepare(path);
        if (catalog is not IRunImporter importer)
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"The runs root {catalog.Display} cannot take a converted run. Convert '{root}' in place (without -Root).", catalog.Display);
        }

        if (Directory.Exists(Path.Combine(root, StagingFolder)))
        {
            // An in-place conversion was interrupted here; finishing or undoing it would write to the directory.
            throw new RunToolsException(ErrorIds.RunDamaged, RunToolsErrorCategory.InvalidData,
                $"'{root}' holds an interrupted in-place conversion ({StagingFolder}). Run ConvertTo-Run on it without -Root to finish or undo that one; then export the run (Export-RunArchive) and import it into {catalog.Display}, or remove {StagingFolder} and convert into the database again.", root);
        }

        EnsureNotARun(root, catalog.Display);
        var plan = Read(root, options, legacyReadOnly: true);
        string staging = Path.Combine(Path.GetTempPath(), "runtools-convert-" + Guid.NewGuid().ToString("N"));
        try
        {
            var copies = new Dictionary<string, ConvertedArtifact>(StringComparer.Ordinal);
            try
            {
                DurableFile.CreateDirectory(staging);
                WriteRunState(staging, root, runId, plan, options, artifact => (BlobName(artifact, copies), ArtifactMode.Copy));
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                throw DurableFile.Failed($"Could not assemble the converted run of '{root}' in '{staging}'", staging, ex,
                    "Nothing was written to the database or the legacy directory; free space in the temporary folder ($env:TMPDIR) and convert again.");
            }

            Stage(plan, "staged");
            var run = Import(importer, new ConvertedRun(runId, root, staging, copies), root, catalog.Display);
            Stage(plan, "committed");
            return Result(run, plan);
        }
        finally
        {
            RunsRoot.TryDeleteDirectory(staging);
        }
    }

    /// <summary>A converted file's blob name: artifacts/&lt;name&gt;, or a per-attempt folder when two files got one name.</summary>
    private static string BlobName(ConvertedArtifact artifact, Dictionary<string, ConvertedArtifact> copies)
    {
        string candidate = $"{RunFormat.ArtifactsFolder}/{artifact.Name}";
        for (int n = 1; copies.TryGetValue(candidate, out var taken) && taken.Path != artifact.Path; n++)
        {
            candidate = $"{RunFormat.ArtifactsFolder}/{(n == 1 ? "attempt-0" : $"attempt-0-{n}")}/{artifact.Name}";
        }

        copies[candidate] = artifact;
        return candidate;
    }

    /// <summary>The store's import, with what it says in an archive's terms said in a conversion's.</summary>
    private static RunDirectory Import(IRunImporter importer, ConvertedRun run, string root, string display)
    {
        try
        {
            return importer.ImportRun(run, replace: false);
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.RunExists)
        {
            throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                $"A run '{run.RunId}' already exists in {display}; '{root}' was not converted. Remove that run (Remove-Run) or rename the legacy folder (its name is the run id), then convert again.", run.RunId, ex);
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.ArchiveSizeMismatch || ex.ErrorId == ErrorIds.ArchiveHashMismatch)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.InvalidData,
                $"A legacy file of '{root}' changed while it was converted: its bytes are no longer those read at first (size and SHA-256). Nothing was written to {display}; convert again when nothing writes to the directory.", root, ex);
        }
    }

    /// <summary>The converted run as the store's import reads it: the staged state files, and the legacy files under their blob names, each checked as it is read.</summary>
    private sealed class ConvertedRun : IArchivedRun
    {
        private readonly Dictionary<ArchiveFileRecord, string> _sources = new();

        public ConvertedRun(string runId, string root, string staging, Dictionary<string, ConvertedArtifact> copies)
        {
            RunId = runId;
            ArchivePath = root;
            var files = new List<ArchiveFileRecord>();
            foreach (string file in Directory.EnumerateFiles(staging).OrderBy(f => f, StringComparer.Ordinal))
            {
                var (size, sha256) = Integrity.HashFile(file);
                Add(files, new ArchiveFileRecord { Path = Path.GetFileName(file), Size = size, Sha256 = sha256 }, file);
            }

            foreach (var copy in copies)
            {
                Add(files, new ArchiveFileRecord { Path = copy.Key, Size = copy.Value.Size, Sha256 = copy.Value.Sha256 },
                    Path.Combine(root, copy.Value.Path.Replace('/', Path.DirectorySeparatorChar)));
            }

            Files = files;
        }

        public string RunId { get; }

        /// <summary>The legacy directory, for messages.</summary>
        public string ArchivePath { get; }

        public IReadOnlyList<ArchiveFileRecord> Files { get; }

        public Stream Open(ArchiveFileRecord file) =>
            new VerifiedEntryStream(ArchivePath, file, DurableFile.OpenRead(_sources[file], RunArchive.BufferSize), null);

        private void Add(List<ArchiveFileRecord> files, ArchiveFileRecord record, string source)
        {
            files.Add(record);
            _sources[record] = source;
        }
    }
}
