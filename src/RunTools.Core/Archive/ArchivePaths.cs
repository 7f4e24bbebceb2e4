using System;
using System.IO;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Archive;

/// <summary>Path rules of archives: where an archive is written, which names of a run it holds, and which entry paths are safe.</summary>
internal static class ArchivePaths
{
    /// <summary>The archive path for a run: inside the destination when it is a folder, else the destination itself.</summary>
    public static string ResolveDestination(string runId, string destination)
    {
        string full = Path.GetFullPath(destination);
        bool isFile = !Directory.Exists(full)
            && !EndsWithSeparator(destination)
            && string.Equals(Path.GetExtension(full), ".zip", StringComparison.OrdinalIgnoreCase);
        return isFile ? full : Path.Combine(full, runId + ".zip");
    }

    /// <summary>Whether <paramref name="path"/> lies below <paramref name="folder"/> (letter case ignored on Windows only).</summary>
    public static bool IsInside(string path, string folder)
    {
        string prefix = folder.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return path.StartsWith(prefix, NativeMethods.IsWindows ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal);
    }

    /// <summary>Folders at the top of a run that the root's own renames leave behind (staging, deletion, replacement): not the run's content.</summary>
    public static bool IsRootLeftover(string name) =>
        name.StartsWith(RunFormat.StagingPrefix, StringComparison.Ordinal)
        || name.StartsWith(RunFormat.DeletingPrefix, StringComparison.Ordinal)
        || name.StartsWith(RunFormat.ReplacedPrefix, StringComparison.Ordinal);

    /// <summary>The temp file of an atomic write (<see cref="DurableFile"/>): not the run's content.</summary>
    public static bool IsTempFile(string name) => name.StartsWith(".", StringComparison.Ordinal) && name.Contains(DurableFile.TempMarker);

    /// <summary>Why a relative archive path is unsafe, or null: absolute, drive letter, backslash, '.' or '..' segments, empty segments, control characters.</summary>
    public static string? ExplainUnsafe(string path)
    {
        if (path.Length == 0)
        {
            return "is empty";
        }

        if (path[0] == '/')
        {
            return "is absolute";
        }

        if (path.IndexOf(':') >= 0)
        {
            return path.Length >= 2 && path[1] == ':' ? "starts with a drive letter" : "contains ':'";
        }

        if (path.IndexOf('\\') >= 0)
        {
            return "contains a backslash";
        }

        foreach (char c in path)
        {
            if (char.IsControl(c))
            {
                return "contains a control character";
            }
        }

        foreach (string segment in path.Split('/'))
        {
            if (segment.Length == 0)
            {
                return "has an empty segment";
            }

            if (segment == "." || segment == "..")
            {
                return $"has a '{segment}' segment";
            }
        }

        return null;
    }

    private static bool EndsWithSeparator(string path) => path.EndsWith("/", StringComparison.Ordinal) || path.EndsWith(Path.DirectorySeparatorChar.ToString(), StringComparison.Ordinal);
}
