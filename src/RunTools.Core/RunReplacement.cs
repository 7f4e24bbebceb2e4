using System;
using System.IO;
using RunTools.Core.Infrastructure;

namespace RunTools.Core;

/// <summary>
/// Replacing the run under an id with another (a forced archive import): the old run is renamed
/// aside (<c>.replaced-&lt;id&gt;-&lt;8 hex&gt;</c>), the new one renamed in, and the old one deleted only
/// then. A crash between the two renames leaves the old run aside; <see cref="Recover"/>, run by every
/// reader of the root, puts it back or deletes it, so an id never ends up with no run.
/// </summary>
internal static class RunReplacement
{
    /// <summary>
    /// Puts the folder <paramref name="replacement"/> (complete and flushed, under the same root) in
    /// place of the run at <paramref name="target"/>. The old run is set aside under its lock, so
    /// never while a live process owns it (RunLocked).
    /// </summary>
    public static void Replace(string rootPath, string replacement, string target, string id)
    {
        // Set aside, not doomed: if a crash comes before the new run is in place, Recover puts the old run back.
        string aside = Path.Combine(rootPath, RunFormat.ReplacedPrefix + id + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));
        var runLock = new RunDirectory(target, id).AcquireLock(DateTimeOffset.UtcNow);

        try
        {
            if (NativeMethods.IsWindows)
            {
                // Windows cannot rename a folder holding an open file; the window is a few microseconds.
                runLock.Dispose();
            }

            Directory.Move(target, aside);
        }
        finally
        {
            runLock.Dispose();
        }

        try
        {
            Directory.Move(replacement, target);
        }
        catch
        {
            try
            {
                Directory.Move(aside, target);
            }
            catch (IOException)
            {
            }

            throw;
        }

        NativeMethods.FlushDirectory(rootPath);
        RunsRoot.TryDeleteDirectory(aside);
    }

    /// <summary>
    /// Finishes a replacement a crash cut short: a run set aside goes back under its id when nothing
    /// took its place, and is deleted when something did.
    /// </summary>
    public static void Recover(string rootPath)
    {
        if (!Directory.Exists(rootPath))
        {
            return;
        }

        foreach (string folder in Directory.EnumerateDirectories(rootPath, RunFormat.ReplacedPrefix + "*"))
        {
            string name = Path.GetFileName(folder);
            int dash = name.LastIndexOf('-');
            if (dash <= RunFormat.ReplacedPrefix.Length)
            {
                continue;
            }

            string id = name.Substring(RunFormat.ReplacedPrefix.Length, dash - RunFormat.ReplacedPrefix.Length);
            string target = Path.Combine(rootPath, id);
            if (Directory.Exists(target))
            {
                RunsRoot.TryDeleteDirectory(folder);
                continue;
            }

            try
            {
                Directory.Move(folder, target);
                NativeMethods.FlushDirectory(rootPath);
            }
            catch (IOException)
            {
                // Another process restored it, or took the id, at the same moment.
            }
        }
    }
}
