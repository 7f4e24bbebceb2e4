using System;
using System.IO;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;

namespace RunTools.Core;

/// <summary>A run held in a database: the local copies of its stored config, parameters and script.</summary>
public sealed partial class RunDirectory
{
    /// <summary>
    /// For a run in a database: makes the local folder's config.json, parameters.json and script.ps1
    /// the copies the run's state records (by SHA-256), fetched from the database where missing or
    /// different, so that everything reading them by path works on any machine. Once per instance
    /// unless <paramref name="again"/>. A run folder holds its own copies: nothing to do.
    /// </summary>
    internal void EnsureLocalCopies(bool again = false)
    {
        if (Database is not { } database || (_localCopiesReady && !again))
        {
            return;
        }

        var state = database.ReadStoredState();
        DurableFile.CreateDirectory(Path);
        Fetch(ConfigPath, state.Config.Hash);
        Fetch(ParametersPath, state.ParametersHash);
        Fetch(ScriptPath, state.Script.Hash);
        _localCopiesReady = true;

        void Fetch(string path, string? sha256)
        {
            if (string.IsNullOrEmpty(sha256) || (File.Exists(path) && string.Equals(Integrity.HashFile(path).Sha256, sha256, StringComparison.OrdinalIgnoreCase)))
            {
                return;
            }

            if (database.ReadStoredCopy(sha256!) is { } content)
            {
                DurableFile.WriteAtomic(path, content);
            }
        }
    }

    /// <summary>
    /// For a run in a database: stores the local copies that match what the state records (after
    /// a creation or an accepted drift), so that another machine can fetch them. Idempotent.
    /// </summary>
    internal void SaveStoredCopies(RunState state)
    {
        if (Database is not { } database)
        {
            return;
        }

        Save(ConfigPath, state.Config.Hash);
        Save(ParametersPath, state.ParametersHash);
        Save(ScriptPath, state.Script.Hash);

        void Save(string path, string? sha256)
        {
            if (!string.IsNullOrEmpty(sha256) && File.Exists(path))
            {
                byte[] content = DurableFile.ReadAllBytes(path);
                if (string.Equals(Integrity.Sha256Hex(content), sha256, StringComparison.OrdinalIgnoreCase))
                {
                    database.WriteStoredCopy(content);
                }
            }
        }
    }
}
