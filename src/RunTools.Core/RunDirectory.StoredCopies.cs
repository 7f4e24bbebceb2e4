using System;
using System.IO;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;

namespace RunTools.Core;

/// <summary>A run held in a database: the local copies of its stored config, parameters and script, and which script an attempt runs.</summary>
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
    /// The script an attempt runs when none is given: the file the run recorded (its source path)
    /// while it is on this machine, else, for a run in a database, the local copy of the script the
    /// run stored (<see cref="ScriptPath"/>). With <paramref name="sameBytes"/> (a worker, which must
    /// run exactly the owner's script) the recorded file only while its bytes equal the stored copy;
    /// without it (a resume) a changed file is still chosen, and drift detection judges it. A folder
    /// run whose recorded file is gone gets that path: the caller reports ScriptNotFound.
    /// </summary>
    public string ScriptToRun(RunState state, bool sameBytes)
    {
        string? source = state.Script.SourcePath;
        if (source is not null && File.Exists(source))
        {
            return !sameBytes || File.ReadAllBytes(source).AsSpan().SequenceEqual(ReadScript()) ? source : ScriptPath;
        }

        return Database is not null && ReadScript().Length > 0 ? ScriptPath : source ?? string.Empty;
    }

    /// <summary>
    /// The script with SHA-256 <paramref name="sha256"/> as the run keeps it, read without writing
    /// anything: a run folder's script.ps1 when it still has that content, or the copy a run in a
    /// database stored there (not the local folder's, which may not be fetched yet). Null when
    /// there is none.
    /// </summary>
    public byte[]? ReadRecordedScript(string sha256)
    {
        if (Database is { } database)
        {
            return database.ReadStoredCopy(sha256);
        }

        if (!File.Exists(ScriptPath))
        {
            return null;
        }

        byte[] content = DurableFile.ReadAllBytes(ScriptPath);
        return string.Equals(Integrity.Sha256Hex(content), sha256, StringComparison.OrdinalIgnoreCase) ? content : null;
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
