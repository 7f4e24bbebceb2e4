using System;
using System.IO;
using System.Linq;
using System.Text;

namespace RunTools.Core.Storage;

/// <summary>
/// Where a run held in a database keeps its local folder on this machine (attempt logs, staging
/// files, local copies of blobs and of the stored config, parameters and script):
/// <c>$env:RUNTOOLS_LOCAL</c>, else the user's local application data folder's <c>RunTools</c>
/// (<c>~/.local/share/RunTools</c>, <c>%LOCALAPPDATA%\RunTools</c>), then one folder per
/// database and schema, then the run id. Nothing there is needed to resume: it is rebuilt from the
/// database.
/// </summary>
internal static class LocalFolders
{
    internal const string Variable = "RUNTOOLS_LOCAL";

    public static string Base
    {
        get
        {
            if (Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } chosen)
            {
                return Path.GetFullPath(chosen);
            }

            string data = Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.DoNotVerify);
            return Path.Combine(data.Length > 0 ? data : Path.GetTempPath(), "RunTools");
        }
    }

    /// <summary>The local folder of run <paramref name="runId"/> of the database root <paramref name="root"/> (not created).</summary>
    public static string ForRun(RootLocation root, string runId) => Path.Combine(ForStore(root), runId);

    /// <summary>The folder holding the local folders of every run of the database root <paramref name="root"/> (not created).</summary>
    public static string ForStore(RootLocation root) => Path.Combine(Base, StoreFolderName(root));

    /// <summary>
    /// A readable, portable folder name for a database and schema (host, port, database, schema),
    /// with a short hash of them so that two stores never share a folder. The user and the lease
    /// are not part of it: every root naming the store reaches the same local folders.
    /// </summary>
    internal static string StoreFolderName(RootLocation root)
    {
        string identity = root.StoreIdentity ?? root.Display;
        string hash = Engine.Integrity.Sha256Hex(Encoding.UTF8.GetBytes(identity)).Substring(0, 10);
        var readable = new StringBuilder();
        foreach (char c in identity.Take(60))
        {
            readable.Append(char.IsLetterOrDigit(c) || c is '-' or '.' ? c : '_');
        }

        return $"pg-{readable.ToString().Trim('_', '.')}-{hash}";
    }
}
