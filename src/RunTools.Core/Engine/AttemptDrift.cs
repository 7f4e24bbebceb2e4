using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using RunTools.Core.Configuration;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// Config and script drift at the start of an attempt: found by hash, refused unless forced,
/// and when forced, journaled with the old copies kept in history/.
/// </summary>
internal static class AttemptDrift
{
    /// <summary>What differs between the run's recorded config and script and the ones this attempt was given.</summary>
    public static List<DriftRecord> Detect(RunDirectory run, AttemptOptions options, RunState state, out IReadOnlyList<ConfigChange> configChanges)
    {
        var drift = new List<DriftRecord>();
        configChanges = Array.Empty<ConfigChange>();
        if (options.Config is { } config && !string.Equals(config.Hash, state.Config.Hash, StringComparison.Ordinal))
        {
            var stored = run.ReadConfig();
            configChanges = ConfigDiff.Compare(stored.Root, config.Root);
            drift.Add(new DriftRecord
            {
                Kind = "config",
                OldHash = state.Config.Hash,
                NewHash = config.Hash,
                Changes = configChanges.Select(c => new ConfigChangeRecord { Path = c.Path, Kind = c.Kind, OldValue = c.OldValue, NewValue = c.NewValue }).ToList(),
            });
        }

        // A run that saved no parameters (created before they were saved) has nothing to compare with.
        if (options.Parameters is { } parameters && state.ParametersHash is { } savedHash
            && !string.Equals(parameters.Hash, savedHash, StringComparison.Ordinal))
        {
            var saved = run.ReadParameters() ?? EffectiveConfig.Empty;
            var changes = ConfigDiff.Compare(saved.Root, parameters.Root);
            drift.Add(new DriftRecord
            {
                Kind = "parameters",
                OldHash = savedHash,
                NewHash = parameters.Hash,
                Changes = changes.Select(c => new ConfigChangeRecord { Path = c.Path, Kind = c.Kind, OldValue = c.OldValue, NewValue = c.NewValue }).ToList(),
            });
        }

        if (options.Script is { } script)
        {
            string hash = Integrity.Sha256Hex(script);
            if (!string.Equals(hash, state.Script.Hash, StringComparison.Ordinal))
            {
                drift.Add(new DriftRecord { Kind = "script", OldHash = state.Script.Hash, NewHash = hash });
            }
        }

        return drift;
    }

    /// <summary>
    /// Order: keep the old copies in history/ (idempotent), then journal the drift (the truth),
    /// then write the new copies; <see cref="RepairStoredCopies"/> mends the last step after a crash.
    /// </summary>
    public static void Accept(RunDirectory run, AttemptOptions options, RunRecorder recorder, int attempt, DriftRecord record, Action<string> warn)
    {
        string history = $"{RunFormat.HistoryFolder}/attempt-{attempt - 1}";
        string historyFolder = Path.Combine(run.Path, RunFormat.HistoryFolder, $"attempt-{attempt - 1}");
        DurableFile.CreateDirectory(historyFolder);
        var toKeep = record.Kind switch
        {
            "config" => Directory.GetFiles(run.Path, RunFormat.ConfigFile).Concat(Directory.GetFiles(run.Path, RunFormat.ConfigSourcePrefix + ".*")),
            "parameters" => Directory.GetFiles(run.Path, RunFormat.ParametersFile),
            _ => Directory.GetFiles(run.Path, RunFormat.ScriptFile),
        };
        foreach (string file in toKeep)
        {
            string target = Path.Combine(historyFolder, Path.GetFileName(file));
            if (!File.Exists(target))
            {
                DurableFile.CopyAtomic(file, target);
            }
        }

        var config = options.Config is { } c ? new EffectiveConfigSource(c.Format, c.SourcePath) : (EffectiveConfigSource?)null;
        recorder.Record(RunEvent.DriftAccepted(attempt, record, history, config, options.ScriptSourcePath));

        if (record.Kind == "config")
        {
            foreach (string file in Directory.GetFiles(run.Path, RunFormat.ConfigSourcePrefix + ".*"))
            {
                try
                {
                    File.Delete(file);
                }
                catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
                {
                    throw DurableFile.Failed($"Could not replace the stored config source '{file}'", file, ex,
                        "The change is journaled; the next Resume-Run with the new config rewrites the stored copies.");
                }
            }

            RunsRoot.WriteConfigFiles(run.Path, options.Config!);
            warn($"Config drift accepted with -Force: {ConfigDiff.Summarize(record.Changes.Select(ch => new ConfigChange(ch.Path, ch.Kind, ch.OldValue, ch.NewValue)).ToList())}. The previous config is kept in {history}/.");
        }
        else if (record.Kind == "parameters")
        {
            RunsRoot.WriteParametersFile(run.Path, options.Parameters!);
            warn($"Parameter drift accepted with -Force: {ConfigDiff.Summarize(record.Changes.Select(ch => new ConfigChange(ch.Path, ch.Kind, ch.OldValue, ch.NewValue)).ToList())}. The previous parameters are kept in {history}/.");
        }
        else
        {
            DurableFile.WriteAtomic(run.ScriptPath, options.Script!);
            warn($"Script drift accepted with -Force; the previous script is kept in {history}/.");
        }
    }

    /// <summary>
    /// Makes config.json, parameters.json and script.ps1 match the journal's hashes when a crash
    /// left them behind, or when one was damaged or deleted since (run-format §5.3, step 14).
    /// </summary>
    public static void RepairStoredCopies(RunDirectory run, AttemptOptions options, RunState state)
    {
        if (options.Config is { } config && config.Hash == state.Config.Hash
            && (!File.Exists(run.ConfigPath) || Integrity.HashFile(run.ConfigPath).Sha256 != config.Hash))
        {
            RunsRoot.WriteConfigFiles(run.Path, config);
        }

        if (options.Parameters is { } parameters && parameters.Hash == state.ParametersHash
            && (!File.Exists(run.ParametersPath) || Integrity.HashFile(run.ParametersPath).Sha256 != parameters.Hash))
        {
            RunsRoot.WriteParametersFile(run.Path, parameters);
        }

        if (options.Script is { } script && Integrity.Sha256Hex(script) == state.Script.Hash
            && (!File.Exists(run.ScriptPath) || Integrity.HashFile(run.ScriptPath).Sha256 != state.Script.Hash))
        {
            DurableFile.WriteAtomic(run.ScriptPath, script);
        }
    }
}
