using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Conversion;

/// <summary>
/// Converts a directory written by an earlier tool into a run: the directory itself becomes the run
/// directory, RunTools state is written beside the legacy files, and no legacy file is deleted
/// or rewritten (or, into a database, the run is created there and the directory is not touched:
/// LegacyConversion.Database.cs). The converted work is journaled as completed units (attempt 0),
/// so a resume continues without redoing it.
/// </summary>
public static partial class LegacyConversion
{
    /// <summary>
    /// Where the state files are assembled inside the legacy directory before they are moved into
    /// place. Its <see cref="MovesFile"/> lists what has been moved, so an interrupted conversion
    /// can be undone; the journal is moved last but one and is the commit point.
    /// </summary>
    public const string StagingFolder = ".runtools-converting";

    internal const string MovesFile = "moves.json";

    private static readonly string[] s_reservedFiles =
    {
        RunFormat.StateFile, RunFormat.JournalFile, RunFormat.ConfigFile, RunFormat.ScriptFile, RunFormat.StopFile, RunFormat.LockFile,
    };

    private static readonly string[] s_reservedFolders = { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder, RunFormat.HistoryFolder };

    /// <summary>The stored name of a format: <c>checkpoint</c>, <c>trial_manifests</c>, <c>frame_generator</c>, <c>generic</c>.</summary>
    public static string LegacyFormatName(LegacyFormat format) => RunFormat.EnumText(format);

    /// <summary>The known legacy formats a directory matches, most specific first (empty: only generic conversion fits).</summary>
    public static IReadOnlyList<LegacyFormat> Detect(string path)
    {
        string root = Path.GetFullPath(path);
        var found = new List<LegacyFormat>();
        if (CheckpointReader.Matches(root))
        {
            found.Add(LegacyFormat.Checkpoint);
        }

        if (FrameGeneratorReader.Matches(root))
        {
            found.Add(LegacyFormat.FrameGenerator);
        }

        if (TrialManifestsReader.Matches(root))
        {
            found.Add(LegacyFormat.TrialManifests);
        }

        return found;
    }

    /// <summary>
    /// Which format a conversion would use (Auto resolved), without writing anything. Throws
    /// <see cref="ErrorIds.UnknownLegacyFormat"/> when no format fits.
    /// </summary>
    /// <param name="database">The database root the run is to be created in (as messages name it), or null for a conversion in place.</param>
    public static LegacyFormat Resolve(string path, LegacyFormat format, bool haveSteps, string? database = null)
    {
        string root = Path.GetFullPath(path);
        RequireDirectory(root, path);
        EnsureNotARun(root, database);
        var found = Detect(root);
        if (format == LegacyFormat.Auto)
        {
            if (found.Count > 0)
            {
                return found[0];
            }

            if (haveSteps)
            {
                return LegacyFormat.Generic;
            }

            throw new RunToolsException(ErrorIds.UnknownLegacyFormat, RunToolsErrorCategory.InvalidData,
                $"'{root}' matches no known legacy format (checkpoint.json + idempotency_keys.jsonl; run_state.json or per-trial manifests; state.json + approved/ frames). " +
                "Pass -LegacyFormat to force one, or -ScriptPath with a script whose Invoke-RunStep -OutputFile declarations tell which steps are done (generic conversion).", root);
        }

        if (format == LegacyFormat.Generic)
        {
            if (!haveSteps)
            {
                throw new RunToolsException(ErrorIds.UnknownLegacyFormat, RunToolsErrorCategory.InvalidArgument,
                    $"Generic conversion of '{root}' needs the run script's steps: pass -ScriptPath with a script that declares its output files (Invoke-RunStep <name> -OutputFile <paths>).", root);
            }

            return format;
        }

        if (!found.Contains(format))
        {
            throw new RunToolsException(ErrorIds.UnknownLegacyFormat, RunToolsErrorCategory.InvalidData,
                $"'{root}' does not have the files of the {format} legacy format ({Describe(format)}). " +
                (found.Count > 0 ? $"It looks like {string.Join(" or ", found)}: pass that -LegacyFormat, or -LegacyFormat Auto." : "Check the path, or convert it generically with -LegacyFormat Generic -ScriptPath."), root);
        }

        return format;
    }

    private static void RequireDirectory(string root, string path)
    {
        if (!Directory.Exists(root))
        {
            throw new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"There is no directory '{root}' to convert. Check the path.", path);
        }
    }

    /// <summary>Converts the legacy directory at <paramref name="path"/> into a run, in place.</summary>
    public static ConversionResult Convert(string path, ConversionOptions options)
    {
        var (root, runId) = Prepare(path);
        RecoverInterrupted(root);
        EnsureNotARun(root);
        var plan = Read(root, options, legacyReadOnly: false);

        try
        {
            Commit(root, runId, plan, options);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            // The legacy files were read; this is the RunTools state that could not be written beside them.
            throw DurableFile.Failed($"Could not write the RunTools state of '{root}'", root, ex,
                "It is not a run yet: nothing counts as converted until its journal is in place, and converting again finishes or undoes what was started.");
        }

        return Result(RunDirectory.Open(root), plan);
    }

    /// <summary>The legacy directory's full path and the run id it gives (its name); RunNotFound, InvalidRunId.</summary>
    private static (string Root, string RunId) Prepare(string path)
    {
        string root = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        RequireDirectory(root, path);

        string runId = Path.GetFileName(root);
        if (RunId.Explain(runId) is { } why)
        {
            // The run id is the directory name (run-format.md §8); the folder is not renamed behind the operator's back.
            string suggestion = RunId.Slug(runId);
            throw new RunToolsException(ErrorIds.InvalidRunId, RunToolsErrorCategory.InvalidArgument,
                $"'{runId}' cannot be a run id ({why}): a converted directory keeps its name as its run id. Rename the folder{(suggestion.Length > 0 ? $" (for example to '{suggestion}')" : string.Empty)} and convert again; the legacy files inside are not affected.", runId);
        }

        return (root, runId);
    }

    /// <summary>Reads the legacy files with the format's reader: what is done, what is assumed, what the run is to be.</summary>
    private static ConversionPlan Read(string root, ConversionOptions options, bool legacyReadOnly)
    {
        var steps = options.Steps ?? Array.Empty<DeclaredStep>();
        foreach (var step in steps)
        {
            PortableName.ValidateStepName(step.Name);
        }

        var format = Resolve(root, options.Format, steps.Count > 0);
        if (!legacyReadOnly)
        {
            CheckNameConflicts(root);
        }

        var plan = new ConversionPlan(format, root, options.Observer, legacyReadOnly);
        if (options.Format == LegacyFormat.Auto && Detect(root) is { Count: > 1 } several)
        {
            string undo = legacyReadOnly
                ? "remove the converted run from the database (Remove-Run)"
                : "remove the run state this conversion wrote (run.json, journal.jsonl, config.json, script.ps1)";
            plan.Warn("ambiguous_layout", $"The directory has the files of several legacy formats: {string.Join(", ", several)}.",
                $"it was converted as {format}.", $"If that is wrong, {undo} and convert again with -LegacyFormat.");
        }

        plan.Verbose($"Converting '{root}' as {format}{(legacyReadOnly ? " into a database (the directory is only read)" : string.Empty)}.");
        switch (format)
        {
            case LegacyFormat.Checkpoint:
                CheckpointReader.Read(plan);
                break;
            case LegacyFormat.TrialManifests:
                TrialManifestsReader.Read(plan);
                break;
            case LegacyFormat.FrameGenerator:
                FrameGeneratorReader.Read(plan);
                break;
            default:
                GenericReader.Read(plan, steps);
                break;
        }

        if (format != LegacyFormat.Generic && steps.Count > 0)
        {
            CheckStepsAgainstScript(plan, steps, options.ScriptSourcePath);
        }

        foreach (var step in plan.Steps)
        {
            plan.Verbose($"Step '{step.Name}': {(step.Completed ? "completed" : "pending")}, {step.Items.Count} item(s) completed; {step.Reason}");
        }

        return plan;
    }

    private static ConversionResult Result(RunDirectory run, ConversionPlan plan)
    {
        var decisions = plan.Steps.Select(s => new StepDecision(s.Name, s.Completed ? StepStatus.Completed : StepStatus.Pending, s.Items.Count, s.Reason)).ToList();
        int artifacts = plan.Steps.Sum(s => s.Artifacts.Count + s.Items.Sum(i => i.Artifacts.Count));
        return new ConversionResult(run, plan.Format, plan.Warnings, decisions, plan.Backups, decisions.Sum(d => d.ItemsCompleted), artifacts);
    }

    private static void EnsureNotARun(string root, string? database = null)
    {
        if (RunDirectory.IsRunDirectory(root))
        {
            string next = database is null
                ? $"Resume it with Resume-Run -Path '{root}'."
                : $"Move it into {database} with Export-RunArchive and Import-RunArchive -Root.";
            throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                $"'{root}' is already a RunTools run ({RunFormat.JournalFile} exists); there is nothing to convert. {next}", root);
        }
    }

    private static string Describe(LegacyFormat format) => format switch
    {
        LegacyFormat.Checkpoint => $"{CheckpointReader.CheckpointFile} or {CheckpointReader.KeysFile}",
        LegacyFormat.TrialManifests => $"{TrialManifestsReader.RunStateFile}, {TrialManifestsReader.EffectiveConfigFile} or trial directories with {TrialManifestsReader.ManifestFile}",
        LegacyFormat.FrameGenerator => $"{FrameGeneratorReader.StateFile} with {FrameGeneratorReader.LockFile} or {FrameGeneratorReader.ApprovedFolder}/frame_NNNN.png",
        _ => "declared output files",
    };

    /// <summary>A legacy file under a name RunTools writes would be overwritten: refuse.</summary>
    private static void CheckNameConflicts(string root)
    {
        var conflicts = new List<string>();
        foreach (string name in s_reservedFiles.Concat(s_reservedFolders))
        {
            string full = Path.Combine(root, name);
            bool folderName = s_reservedFolders.Contains(name);
            if (File.Exists(full) || (!folderName && Directory.Exists(full)))
            {
                conflicts.Add(name);
            }
        }

        conflicts.AddRange(Directory.EnumerateFileSystemEntries(root, RunFormat.ConfigSourcePrefix + ".*").Select(Path.GetFileName)!);
        if (conflicts.Count > 0)
        {
            throw new RunToolsException(ErrorIds.LegacyFileConflict, RunToolsErrorCategory.ResourceExists,
                $"'{root}' holds legacy files under names RunTools writes in a run directory ({string.Join(", ", conflicts)}); converting would overwrite them. " +
                "Move the directory's content into a subfolder (or rename those files) and convert again.", root);
        }
    }

    private static void CheckStepsAgainstScript(ConversionPlan plan, IReadOnlyList<DeclaredStep> steps, string? scriptPath)
    {
        var names = new HashSet<string>(steps.Select(s => s.Name), StringComparer.Ordinal);
        foreach (var step in plan.Steps.Where(s => (s.Completed || s.Items.Count > 0) && !names.Contains(s.Name)))
        {
            plan.Warn("step_not_in_script", $"The converted work is recorded under step '{step.Name}', but the run script{(scriptPath is null ? string.Empty : $" '{scriptPath}'")} names no such step.",
                $"the converted work counts only when the script runs step '{step.Name}' with the same item keys.",
                $"Use the step name '{step.Name}' in the script (Invoke-RunStep {step.Name} or Invoke-RunItem -Step {step.Name}) before resuming, or that work is done again.");
        }
    }

    /// <summary>
    /// Finishes or undoes a conversion a crash interrupted. Before the journal is in place nothing
    /// counts: the entries already moved (listed in moves.json) are removed. After, only the
    /// snapshot may be missing; it is moved in (or rebuilt from the journal by any reader).
    /// </summary>
    internal static void RecoverInterrupted(string root)
    {
        string staging = Path.Combine(root, StagingFolder);
        if (!Directory.Exists(staging))
        {
            return;
        }

        if (!File.Exists(Path.Combine(root, RunFormat.JournalFile)))
        {
            string moves = Path.Combine(staging, MovesFile);
            if (File.Exists(moves))
            {
                foreach (string name in ReadMoves(moves))
                {
                    string moved = Path.Combine(root, name);
                    if (!File.Exists(Path.Combine(staging, name)) && File.Exists(moved))
                    {
                        File.Delete(moved);
                    }
                }

                NativeMethods.FlushDirectory(root);
            }
        }
        else if (File.Exists(Path.Combine(staging, RunFormat.StateFile)) && !File.Exists(Path.Combine(root, RunFormat.StateFile)))
        {
            File.Move(Path.Combine(staging, RunFormat.StateFile), Path.Combine(root, RunFormat.StateFile));
            NativeMethods.FlushDirectory(root);
        }

        Directory.Delete(staging, recursive: true);
    }

    private static IEnumerable<string> ReadMoves(string path)
    {
        try
        {
            return JsonSerializer.Deserialize<List<string>>(DurableFile.ReadAllBytes(path)) ?? new List<string>();
        }
        catch (JsonException)
        {
            return Array.Empty<string>();
        }
    }

    private static void Commit(string root, string runId, ConversionPlan plan, ConversionOptions options)
    {
        string staging = Path.Combine(root, StagingFolder);
        Directory.CreateDirectory(staging);
        var moves = new List<string> { RunFormat.ConfigFile, RunFormat.ScriptFile };
        // Legacy files are referenced where they are: the directory is the run directory.
        WriteRunState(staging, root, runId, plan, options, artifact => (artifact.Path, ArtifactMode.Reference));
        moves.AddRange(Directory.EnumerateFiles(staging, RunFormat.ConfigSourcePrefix + ".*").Select(Path.GetFileName)!);

        DurableFile.WriteAtomic(Path.Combine(staging, MovesFile), JsonSerializer.SerializeToUtf8Bytes(moves));
        NativeMethods.FlushDirectory(staging);
        Stage(plan, "staged");

        foreach (string entry in moves)
        {
            File.Move(Path.Combine(staging, entry), Path.Combine(root, entry));
            NativeMethods.FlushDirectory(root);
            Stage(plan, "moved " + entry);
        }

        plan.BeforeCommit?.Invoke();
        Stage(plan, "legacy updated");

        // The commit point: with the journal in place the directory is a run.
        File.Move(Path.Combine(staging, RunFormat.JournalFile), Path.Combine(root, RunFormat.JournalFile));
        NativeMethods.FlushDirectory(root);
        Stage(plan, "committed");
        File.Move(Path.Combine(staging, RunFormat.StateFile), Path.Combine(root, RunFormat.StateFile));
        NativeMethods.FlushDirectory(root);
        Stage(plan, "snapshot");
        Directory.Delete(staging, recursive: true);
        Stage(plan, "done");
    }

    /// <summary>
    /// Writes the converted run's state into <paramref name="folder"/>: config.json (and its source
    /// copy), script.ps1, and the journal (run_created, run_migrated, the converted units as
    /// completed in attempt 0, each with its files as <paramref name="recordArtifact"/> records
    /// them) with its snapshot, flushed once at the end.
    /// </summary>
    private static void WriteRunState(string folder, string root, string runId, ConversionPlan plan, ConversionOptions options,
        Func<ConvertedArtifact, (string Path, ArtifactMode Mode)> recordArtifact)
    {
        var config = options.Config ?? plan.Config ?? EffectiveConfig.Empty;
        string name = PickName(options.Name, plan.LegacyRunId, runId);
        byte[] script = options.Script ?? Array.Empty<byte>();
        string? scriptSource = options.ScriptSourcePath is null ? null : Path.GetFullPath(options.ScriptSourcePath);
        var scriptSteps = options.Steps ?? Array.Empty<DeclaredStep>();
        var declared = scriptSteps.Count > 0 ? scriptSteps.Select(s => s.Name).Distinct(StringComparer.Ordinal).ToList() : plan.Steps.Select(s => s.Name).ToList();
        var create = new RunCreateOptions
        {
            Name = name,
            RunId = runId,
            Config = config,
            Script = script,
            ScriptSourcePath = scriptSource,
            DeclaredSteps = declared,
            Migrated = true,
            SourceFormat = LegacyFormatName(plan.Format),
        };

        RunsRoot.WriteConfigFiles(folder, config);
        DurableFile.WriteAtomic(Path.Combine(folder, RunFormat.ScriptFile), script);
        using var recorder = FileRunStore.CreateRecorder(folder, runId);
        // One flush at the end: until the journal is in place (or imported), nothing here is a run.
        recorder.Record(RunEvent.RunCreated(runId, name, create, Integrity.Sha256Hex(script), scriptSource, declared), Durability.Lazy);
        recorder.Record(RunEvent.RunMigrated(root, plan), Durability.Lazy);
        foreach (var step in plan.Steps)
        {
            foreach (var item in step.Items)
            {
                foreach (var artifact in item.Artifacts)
                {
                    recorder.Record(MigratedArtifact(artifact, recordArtifact(artifact), step.Name, item.Key), Durability.Lazy);
                }

                recorder.Record(RunEvent.ItemMigrated(step.Name, item.Key), Durability.Lazy);
            }

            foreach (var artifact in step.Artifacts)
            {
                recorder.Record(MigratedArtifact(artifact, recordArtifact(artifact), step.Name, null), Durability.Lazy);
            }

            if (step.Completed)
            {
                recorder.Record(RunEvent.StepMigrated(step.Name), Durability.Lazy);
            }
        }

        recorder.Snapshot();
    }

    private static void Stage(ConversionPlan plan, string stage) => plan.Verbose("Conversion stage: " + stage);

    private static string PickName(string? chosen, string? legacyRunId, string folder)
    {
        foreach (string? candidate in new[] { chosen, legacyRunId, folder })
        {
            if (candidate is null)
            {
                continue;
            }

            if (candidate == chosen)
            {
                return RunsRoot.ValidateName(candidate);
            }

            if (!string.IsNullOrWhiteSpace(candidate) && candidate.Length <= 200 && !candidate.Any(char.IsControl))
            {
                return candidate.Trim();
            }
        }

        return folder;
    }

    private static RunEvent MigratedArtifact(ConvertedArtifact artifact, (string Path, ArtifactMode Mode) recorded, string step, string? key) =>
        RunEvent.ArtifactAdded(artifact.Name, recorded.Path, recorded.Mode, artifact.Size, artifact.Sha256, step, key, attempt: 0);

    /// <summary>Reads a legacy JSON object; a damaged one is backed up, rebuilt as far as possible and warned about.</summary>
    internal static JsonObject? ReadLegacyJson(ConversionPlan plan, string relative, string code, string consequence, out bool complete)
    {
        complete = false;
        string full = plan.Full(relative);
        if (!File.Exists(full))
        {
            return null;
        }

        var obj = LenientJson.ParseObject(DurableFile.ReadAllBytes(full), out complete, out string? problem);
        if (!complete)
        {
            string kept = plan.KeepDamaged(full);
            var recovered = obj?.Select(p => p.Key).ToList() ?? new List<string>();
            plan.Warn(code, $"{relative} is damaged ({Shorten(problem)}); {kept}.",
                recovered.Count > 0 ? $"only what could be read was used ({string.Join(", ", recovered)}); {consequence}" : $"nothing could be read from it; {consequence}",
                $"Check the warnings that follow; if you have an intact copy of {relative}, restore it, {(plan.LegacyReadOnly ? "remove the converted run from the database (Remove-Run)" : "remove this run's state files")} and convert again.", relative);
        }

        return obj;
    }

    internal static string Shorten(string? text, int max = 120) =>
        text is null ? string.Empty : text.Length <= max ? text : text.Substring(0, max) + "...";
}
