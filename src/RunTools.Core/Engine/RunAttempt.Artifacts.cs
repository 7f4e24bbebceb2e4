using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>Artifacts: files recorded with their size and SHA-256, copied into the run's store (artifacts/ in a folder) or referenced in place.</summary>
public sealed partial class RunAttempt
{
    // Units whose file could not be written: they were recorded as failed and cannot complete. Guarded by _recorder.SyncRoot.
    private readonly Dictionary<(string Step, string? Key), RunToolsException> _writeFailures = new();

    /// <summary>
    /// Records a file with its size and SHA-256: copied under artifacts/ (never over an earlier
    /// attempt's file) or referenced where it is. Inside a step or item it belongs to that unit.
    /// </summary>
    public ArtifactRecord AddArtifact(string sourcePath, string? name = null, ArtifactMode mode = ArtifactMode.Copy) =>
        AddArtifact(sourcePath, name, mode, ActiveItem, relativeInRun: false);

    /// <summary>As <see cref="AddArtifact(string, string, ArtifactMode)"/>, for the running item <paramref name="itemKey"/> (when several run at once). Any thread.</summary>
    public ArtifactRecord AddItemArtifact(string itemKey, string sourcePath, string? name = null, ArtifactMode mode = ArtifactMode.Copy) =>
        AddArtifact(sourcePath, name, mode, itemKey, relativeInRun: false);

    /// <summary>
    /// Verifies a step's declared output files (paths or globs, relative to the run directory; see
    /// <see cref="Conversion.OutputFilePatterns"/>) and records every matching file in place with its
    /// size and SHA-256, as artifacts of the step: on resume a completed step whose output file is gone
    /// or changed runs again. Throws <see cref="ErrorIds.OutputFileNotFound"/> when a pattern matches nothing.
    /// </summary>
    public IReadOnlyList<ArtifactRecord> RecordOutputFiles(string step, IReadOnlyList<string> patterns)
    {
        EnsureActiveStep(step);
        var missing = new List<string>();
        var files = new List<string>();
        foreach (string pattern in patterns)
        {
            if (pattern.IndexOf('*') < 0 && pattern.IndexOf('?') < 0 && !string.IsNullOrWhiteSpace(pattern))
            {
                // A declared output file that is a directory or FIFO is refused by name, not reported as missing.
                InputFile.RequireRegular(Path.GetFullPath(Path.Combine(_run.Path, pattern)), $"Output file of step '{step}'", "Declare the files the step writes (a glob such as 'folder/**' records a folder's files).");
            }

            var found = Conversion.OutputFilePatterns.Expand(_run.Path, pattern);
            if (found.Count == 0)
            {
                missing.Add(pattern);
            }

            files.AddRange(found);
        }

        if (missing.Count > 0)
        {
            throw new RunToolsException(ErrorIds.OutputFileNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"Step '{step}' declares the output file(s) {string.Join(", ", missing)}, but nothing matches them in '{_run.Path}' (relative paths are resolved against the run directory). Make the step write them, or correct -OutputFile; the step is not completed.", step);
        }

        var records = new List<ArtifactRecord>();
        foreach (string file in files.Distinct(StringComparer.Ordinal))
        {
            string relative = Integrity.RelativeToRun(_run.Path, file) ?? Path.GetFileName(file);
            records.Add(AddArtifact(file, Conversion.ConversionPlan.ArtifactName(relative), ArtifactMode.Reference, null, relativeInRun: true));
        }

        return records;
    }

    internal static string ValidateArtifactName(string name)
    {
        string normalized = name.Replace('\\', '/');
        foreach (string segment in normalized.Split('/'))
        {
            string? why = PortableName.Explain(segment);
            if (why is not null)
            {
                throw new RunToolsException(ErrorIds.InvalidArtifactName, RunToolsErrorCategory.InvalidArgument,
                    $"'{name}' is not a valid artifact name: segment '{segment}' is invalid because {why}. Use '/'-separated segments of {PortableName.Rule}.", name);
            }
        }

        return normalized;
    }

    private ArtifactRecord AddArtifact(string sourcePath, string? name, ArtifactMode mode, string? itemKey, bool relativeInRun)
    {
        EnsureUsable();
        string? step = _activeStep;
        string full = Path.GetFullPath(sourcePath);
        InputFile.RequireRegular(full, relativeInRun ? $"Output file of step '{step}'" : "Artifact file", "Record regular files only: write the data to a file first, then record that file.");
        if (!File.Exists(full))
        {
            throw new RunToolsException(ErrorIds.ArtifactNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"Artifact file '{full}' does not exist. Write the file before recording it.", sourcePath);
        }

        string artifactName = ValidateArtifactName(name ?? Path.GetFileName(full));
        string recordedPath;
        long size;
        string sha256;
        if (mode == ArtifactMode.Copy)
        {
            try
            {
                StoredBlob blob;
                using (var source = OpenArtifactSource(full))
                {
                    blob = _store.Blobs.WriteArtifact(artifactName, Attempt, source);
                }

                (recordedPath, size, sha256) = (blob.Name, blob.Size, blob.Sha256);
            }
            catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.WriteFailed)
            {
                if (step is not null)
                {
                    FailUnitForWrite(step, itemKey, ex);
                }

                throw;
            }
        }
        else
        {
            // A file inside the run directory is recorded relative to it, so the record moves with the run.
            recordedPath = relativeInRun ? Integrity.RelativeToRun(_run.Path, full) ?? full : full;
            (size, sha256) = Integrity.HashFile(full);
        }

        bool inUnit = step is not null;
        var added = RunEvent.ArtifactAdded(artifactName, recordedPath, mode, size, sha256, step, itemKey, Attempt);
        lock (_recorder.SyncRoot)
        {
            // Inside a unit, the unit's own completion makes it durable.
            Record(added, inUnit ? Durability.Lazy : Durability.Durable);
            return State.Artifacts[State.Artifacts.Count - 1];
        }
    }

    /// <summary>The file to copy; one that cannot be opened fails the copy like a write would (WriteFailed), so its unit is failed, not left running.</summary>
    private static FileStream OpenArtifactSource(string path)
    {
        try
        {
            return DurableFile.OpenRead(path, 1);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            throw DurableFile.Failed($"Could not read the artifact file '{path}'", path, ex, "It was not recorded.");
        }
    }

    /// <summary>
    /// A file of a running unit could not be written: the unit is recorded as failed with that
    /// error (when the journal still takes it), so it is retried on resume and never counts as done.
    /// </summary>
    private void FailUnitForWrite(string step, string? key, RunToolsException error)
    {
        lock (_recorder.SyncRoot)
        {
            _writeFailures[(step, key)] = error;
        }

        try
        {
            if (key is not null)
            {
                FailItem(step, key, error.Message);
            }
            else
            {
                FailStep(step, error.Message);
            }
        }
        catch (RunToolsException)
        {
            // The journal refused too (the recorder is faulted): the unit stays open, in doubt, and nothing more is recorded.
        }
    }

    private void ThrowIfUnitWriteFailed(string step, string? key)
    {
        RunToolsException? error;
        lock (_recorder.SyncRoot)
        {
            _writeFailures.TryGetValue((step, key), out error);
        }

        if (error is not null)
        {
            string unit = key is null ? $"Step '{step}'" : $"Item '{key}' of step '{step}'";
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"{unit} cannot complete: a file of it could not be written, so it was recorded as failed. {error.Message}", error.Target, error);
        }
    }

    private void ClearWriteFailure(string step, string? key)
    {
        lock (_recorder.SyncRoot)
        {
            _writeFailures.Remove((step, key));
        }
    }

    private void ClearWriteFailures()
    {
        lock (_recorder.SyncRoot)
        {
            _writeFailures.Clear();
        }
    }
}
