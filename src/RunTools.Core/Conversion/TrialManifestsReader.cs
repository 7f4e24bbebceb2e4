using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Conversion;

/// <summary>
/// Seed 003: <c>run_state.json</c> (<c>run_id</c>, <c>config_hash</c>, <c>phases</c> with a
/// status each), <c>effective_config.yaml</c>, and per-trial directories
/// (<c>trials/&lt;trial&gt;/manifest.json</c> + artifacts). Phases become steps; each trial with a
/// completed manifest and intact artifacts becomes a completed item of its phase, key = trial id.
/// Without run_state.json the phase statuses are inferred (and warned about).
/// </summary>
internal static class TrialManifestsReader
{
    public const string RunStateFile = "run_state.json";
    public const string EffectiveConfigFile = "effective_config.yaml";
    public const string TrialsFolder = "trials";
    public const string ManifestFile = "manifest.json";

    /// <summary>The step of trials whose manifest names no phase (and no single phase is evident).</summary>
    public const string DefaultTrialStep = "trials";

    private static readonly string[] s_doneStatuses = { "completed", "complete", "done", "succeeded", "success" };

    public static bool Matches(string root) =>
        File.Exists(Path.Combine(root, RunStateFile)) || File.Exists(Path.Combine(root, EffectiveConfigFile))
        || TrialDirectories(root).Any(d => File.Exists(Path.Combine(d, ManifestFile)));

    /// <summary>The subfolders of trials/, or else the run directory's subfolders named trial*.</summary>
    internal static IEnumerable<string> TrialDirectories(string root)
    {
        string trials = Path.Combine(root, TrialsFolder);
        var found = Directory.Exists(trials)
            ? Directory.EnumerateDirectories(trials)
            : Directory.EnumerateDirectories(root).Where(d => Path.GetFileName(d).StartsWith("trial", StringComparison.OrdinalIgnoreCase));
        return found.OrderBy(d => d, StringComparer.Ordinal).ToList();
    }

    public static void Read(ConversionPlan plan)
    {
        bool haveState = File.Exists(plan.Full(RunStateFile));
        var state = LegacyConversion.ReadLegacyJson(plan, RunStateFile, "corrupt_run_state", "phases whose status could not be read are inferred from the trials.", out bool stateComplete);
        plan.LegacyRunId = LenientJson.Str(state, "run_id");
        plan.Legacy["run_state"] = haveState ? (stateComplete ? "intact" : "damaged") : "absent";
        plan.Legacy["config_hash"] = LenientJson.Str(state, "config_hash");
        plan.Legacy["status"] = LenientJson.Str(state, "status", "run_status");
        var renamed = new Dictionary<string, string>(StringComparer.Ordinal);
        var phases = ReadPhases(plan, state, renamed);

        ReadConfig(plan);

        var trials = ReadTrials(plan, renamed, out var missingManifests);
        var knownPhases = trials.Where(t => t.Phase is not null).Select(t => t.Phase!).Distinct(StringComparer.Ordinal).ToList();
        string orphanStep = knownPhases.Count == 1 ? knownPhases[0] : DefaultTrialStep;
        foreach (string directory in missingManifests)
        {
            string relative = plan.Relative(directory);
            string id = Path.GetFileName(directory);
            plan.Warn("missing_manifest", $"{relative}/ has no {ManifestFile}.",
                $"trial {id} is not completed; it is counted under step '{orphanStep}', which is left pending so that resume runs the trial again.",
                "Nothing to do: Resume-Run redoes it. If the trial did finish, write its manifest and convert again.", relative);
            trials.Add(new Trial(id, orphanStep, completed: false));
        }

        foreach (var trial in trials.Where(t => t.Phase is null))
        {
            trial.Phase = orphanStep;
        }

        var order = phases.Select(p => p.Step).Concat(trials.Select(t => t.Phase!)).Distinct(StringComparer.Ordinal).ToList();
        var versions = trials.Where(t => t.SchemaVersion is not null).Select(t => t.SchemaVersion!).Distinct(StringComparer.Ordinal).OrderBy(v => v, StringComparer.Ordinal).ToList();
        plan.Legacy["manifest_schema_versions"] = new JsonArray(versions.Select(v => (JsonNode)JsonValue.Create(v)!).ToArray());
        if (versions.Count > 1)
        {
            plan.Warn("mixed_manifest_versions", $"The trial manifests use {versions.Count} schema versions ({string.Join(", ", versions)}).",
                "all were read by the same rules (status, phase, artifacts).", "Check that the older manifests mean the same by 'completed'.", TrialsFolder);
        }

        foreach (string name in order)
        {
            var step = plan.Step(name);
            // Phases whose names become the same step (a renamed one meeting another): the step is
            // done only when every one of them is; the one that is not explains why.
            var merged = phases.Where(p => p.Step == name).ToList();
            var phase = merged.FirstOrDefault(p => !IsDone(p.Status)) ?? merged.FirstOrDefault();
            var done = trials.Where(t => t.Phase == name && t.Completed).ToList();
            var notDone = trials.Where(t => t.Phase == name && !t.Completed).ToList();
            foreach (var trial in done)
            {
                step.Item(trial.Id).Artifacts.AddRange(trial.Artifacts);
            }

            if (merged.Count > 1)
            {
                plan.Warn("phases_merged", $"Phases {string.Join(", ", merged.Select(p => $"'{LegacyConversion.Shorten(p.Name, 60)}' ({p.Status})"))} all become step '{name}'.",
                    merged.All(p => IsDone(p.Status)) ? $"step '{name}' is completed only as all of them are." : $"step '{name}' is not completed, since phase '{LegacyConversion.Shorten(phase!.Name, 60)}' is {phase.Status}.",
                    "Check that these phases are one step of the run script; if they are not, rename them in run_state.json to valid, distinct step names and convert again.", RunStateFile);
            }

            if (phase is not null)
            {
                bool phaseDone = IsDone(phase.Status);
                if (phaseDone && notDone.Count == 0)
                {
                    step.Completed = true;
                    step.Reason = $"run_state.json: {phase.Status}" + (done.Count > 0 ? $"; {done.Count} trial(s) recorded as completed items" : string.Empty);
                }
                else if (phaseDone)
                {
                    step.Reason = $"run_state.json says {phase.Status}, but {notDone.Count} trial(s) are not intact";
                    plan.Warn("phase_downgraded", $"run_state.json says phase '{phase.Name}' is {phase.Status}, but {notDone.Count} of its trial(s) are not completed and intact ({string.Join(", ", notDone.Select(t => LegacyConversion.Shorten(t.Id, 40)).Take(10))}).",
                        $"step '{name}' is left pending: resume runs it again, replays its {done.Count} intact trial(s) and redoes the others.",
                        "Nothing to do; note that any work of the step besides its trials runs again too.", RunStateFile);
                }
                else
                {
                    step.Reason = $"run_state.json: {phase.Status}" + (done.Count > 0 ? $"; {done.Count} trial(s) recorded as completed items" : string.Empty);
                }

                continue;
            }

            // No recorded status: inferred from the trials, and said so.
            step.Reason = $"status inferred from the trial manifests: {done.Count} trial(s) completed, {notDone.Count} not";
            plan.Warn("inferred_status", $"No phase status for '{name}' ({(haveState ? "run_state.json is damaged or does not list it" : "there is no run_state.json")}); {done.Count} of its trial(s) have a completed manifest with intact artifacts, {notDone.Count} do not.",
                $"step '{name}' is pending; its {done.Count} completed trial(s) are completed items and are not redone.",
                "Check that this matches what ran: resume runs the step and redoes only the other trials (and any work of the step besides its trials).", haveState ? RunStateFile : null);
        }
    }

    private static bool IsDone(string status) => s_doneStatuses.Contains(status.ToLowerInvariant());

    private static List<Phase> ReadPhases(ConversionPlan plan, JsonObject? state, Dictionary<string, string> renamed)
    {
        var phases = new List<Phase>();
        var node = state?["phases"] ?? state?["steps"];
        IEnumerable<(string Name, string? Status)> entries = node switch
        {
            JsonObject obj => obj.Select(p => (p.Key, p.Value is JsonObject o ? LenientJson.Str(o, "status") : p.Value is JsonValue v && v.TryGetValue(out string? s) ? s : null)),
            JsonArray array => array.OfType<JsonObject>().Select(o => (LenientJson.Str(o, "name", "phase", "step") ?? string.Empty, LenientJson.Str(o, "status"))),
            _ => Enumerable.Empty<(string, string?)>(),
        };
        var statuses = new JsonObject();
        foreach (var (name, status) in entries)
        {
            if (name.Length == 0 || status is null)
            {
                continue; // a phase cut off by damage: its status is inferred
            }

            string step = StepName(plan, name, renamed);
            phases.Add(new Phase(name, step, status));
            statuses[name] = status;
        }

        plan.Legacy["phases"] = statuses;
        return phases;
    }

    /// <summary>
    /// A phase name as a step name; one that breaks the step-name rule is adapted, with one warning
    /// per phase (not per trial naming it), kept in <paramref name="renamed"/>.
    /// </summary>
    private static string StepName(ConversionPlan plan, string phase, Dictionary<string, string> renamed)
    {
        if (PortableName.IsValid(phase))
        {
            return phase;
        }

        if (renamed.TryGetValue(phase, out string? known))
        {
            return known;
        }

        string step = ConversionPlan.ArtifactName(phase.Replace('/', '_'));
        renamed[phase] = step;
        plan.Warn("phase_renamed", $"Phase '{LegacyConversion.Shorten(phase)}' is not a valid step name.", $"it is step '{step}'.", $"Use the step name '{step}' in the run script.", RunStateFile);
        return step;
    }

    private static void ReadConfig(ConversionPlan plan)
    {
        string path = plan.Full(EffectiveConfigFile);
        if (!File.Exists(path))
        {
            return;
        }

        try
        {
            plan.Config = EffectiveConfig.FromFile(path);
            plan.Legacy["effective_config_hash"] = plan.Config.Hash;
        }
        catch (Exception ex) when (ex is InvalidConfigException || ex is RunToolsException)
        {
            string kept = plan.KeepDamaged(path);
            plan.Warn("corrupt_effective_config", $"{EffectiveConfigFile} cannot be read as a config ({LegacyConversion.Shorten(ex.Message)}); {kept}.",
                "the run gets no config from it (an empty config unless -Config is given).",
                "Pass the config the run used with -Config (ConvertTo-Run or Resume-Run) so that drift is checked against it.", EffectiveConfigFile);
        }
    }

    private static List<Trial> ReadTrials(ConversionPlan plan, Dictionary<string, string> renamed, out List<string> missingManifests)
    {
        var trials = new List<Trial>();
        missingManifests = new List<string>();
        foreach (string directory in TrialDirectories(plan.Root))
        {
            string manifestPath = Path.Combine(directory, ManifestFile);
            if (!File.Exists(manifestPath))
            {
                missingManifests.Add(directory);
                continue;
            }

            string relative = plan.Relative(manifestPath);
            var manifest = LegacyConversion.ReadLegacyJson(plan, relative, "corrupt_manifest", "the trial is not completed and will run again on resume.", out bool complete);
            string? declared = LenientJson.Str(manifest, "trial_id", "id");
            string id = declared is null || declared.Trim().Length == 0 ? Path.GetFileName(directory) : declared;
            if (declared is not null && declared.Trim().Length == 0)
            {
                plan.Warn("empty_trial_id", $"{relative} has an empty trial_id.", $"the trial's directory name '{id}' is its key.",
                    "Nothing to do, unless the run script keys this trial by something else: then its work runs again.", relative);
            }

            if (id.Length > 1024)
            {
                plan.Warn("invalid_trial_id", $"{relative} has a trial_id of {id.Length} characters ({LegacyConversion.Shorten(id, 40)}), longer than an item key may be (1024).",
                    "the trial cannot be a completed item: it is not completed, and its step is left pending.", "Nothing to do: Resume-Run redoes the trial under the key the run script gives it.", relative);
            }

            string? phase = LenientJson.Str(manifest, "phase", "step");
            var trial = new Trial(id, phase is null ? null : StepName(plan, phase, renamed), completed: false)
            {
                SchemaVersion = LenientJson.Str(manifest, "schema_version", "manifest_version", "version"),
            };
            trials.Add(trial);
            if (!complete || id.Length > 1024)
            {
                continue;
            }

            string? status = LenientJson.Str(manifest, "status");
            if (status is null || !s_doneStatuses.Contains(status.ToLowerInvariant()))
            {
                plan.Verbose($"Trial {id}: manifest status '{status ?? "(none)"}', not completed.");
                continue;
            }

            trial.Completed = CollectArtifacts(plan, directory, manifest!, id, trial.Artifacts);
        }

        return trials;
    }

    /// <summary>The manifest's artifacts (or, when it lists none, every other file of the trial), each verified.</summary>
    private static bool CollectArtifacts(ConversionPlan plan, string directory, JsonObject manifest, string id, List<ConvertedArtifact> artifacts)
    {
        var listed = new List<(string Path, string? Sha256, long? Size)>();
        if (manifest["artifacts"] is JsonArray array)
        {
            foreach (var entry in array)
            {
                if (entry is JsonValue value && value.TryGetValue(out string? p))
                {
                    listed.Add((p, null, null));
                }
                else if (entry is JsonObject obj && LenientJson.Str(obj, "path", "file", "name") is { } path)
                {
                    listed.Add((path, LenientJson.Str(obj, "sha256", "hash"), LenientJson.Long(obj, "size")));
                }
            }
        }
        else
        {
            foreach (string file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal))
            {
                string name = Path.GetFileName(file);
                if (name != ManifestFile && !name.Contains(".bak"))
                {
                    listed.Add((file.Substring(directory.Length + 1), null, null));
                }
            }
        }

        bool intact = true;
        foreach (var (path, sha256, size) in listed)
        {
            string full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(directory, path));
            string relative = plan.Relative(full);
            if (!File.Exists(full))
            {
                intact = false;
                plan.Warn("missing_artifact", $"Trial {id} lists artifact {relative}, which does not exist.",
                    $"trial {id} is not completed; it will run again on resume.", "Nothing to do: Resume-Run redoes it. If the file was moved, put it back and convert again.", relative);
                continue;
            }

            var artifact = plan.Artifact(full);
            if ((sha256 is not null && !string.Equals(sha256, artifact.Sha256, StringComparison.OrdinalIgnoreCase)) || (size is not null && size != artifact.Size))
            {
                intact = false;
                plan.Warn("artifact_mismatch", $"Trial {id}'s artifact {relative} does not match its manifest ({(sha256 is not null ? $"SHA-256 {sha256}" : $"{size} bytes")} recorded, {artifact.Sha256.Substring(0, 12)}... / {artifact.Size} bytes found).",
                    $"trial {id} is not completed; it will run again on resume.", "Nothing to do: Resume-Run redoes it.", relative);
                continue;
            }

            artifacts.Add(artifact);
        }

        return intact;
    }

    private sealed class Phase
    {
        public Phase(string name, string step, string status)
        {
            Name = name;
            Step = step;
            Status = status;
        }

        public string Name { get; }

        public string Step { get; }

        public string Status { get; }
    }

    private sealed class Trial
    {
        public Trial(string id, string? phase, bool completed)
        {
            Id = id;
            Phase = phase;
            Completed = completed;
        }

        public string Id { get; }

        public string? Phase { get; set; }

        public bool Completed { get; set; }

        public string? SchemaVersion { get; set; }

        public List<ConvertedArtifact> Artifacts { get; } = new();
    }
}
