using System;
using System.IO;
using System.Linq;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;

namespace RunTools.Core.Engine;

/// <summary>The file-level repairs an owner makes before its first event (docs/run-format.md §5.3).</summary>
internal static class AttemptOpening
{
    /// <summary>Keeps a torn last line (a crash mid-append) in logs/ before the journal is cut back; returns its run-relative path.</summary>
    public static string BackUpTornTail(RunDirectory run, JournalScanResult scan)
    {
        string relative = $"{RunFormat.LogsFolder}/journal-tail-{scan.LastSequence}-{DateTime.UtcNow:yyyyMMddHHmmss}.bin";
        byte[] tail;
        using (var stream = DurableFile.OpenRead(run.JournalPath))
        {
            stream.Position = scan.ValidLength;
            tail = new byte[scan.TornTailLength];
            int read = 0;
            while (read < tail.Length)
            {
                int n = stream.Read(tail, read, tail.Length - read);
                if (n == 0)
                {
                    break;
                }

                read += n;
            }
        }

        DurableFile.CreateDirectory(Path.Combine(run.Path, RunFormat.LogsFolder));
        DurableFile.WriteAtomic(Integrity.ResolvePath(run.Path, relative), tail);
        return relative;
    }

    /// <summary>Removes the temp files of atomic writes a crash interrupted.</summary>
    public static void RemoveLeftoverTempFiles(string runPath)
    {
        foreach (string folder in new[] { runPath }.Concat(new[] { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder, RunFormat.HistoryFolder }.Select(f => Path.Combine(runPath, f))))
        {
            if (!Directory.Exists(folder))
            {
                continue;
            }

            foreach (string file in Directory.EnumerateFiles(folder, "*" + DurableFile.TempMarker + "*", folder == runPath ? SearchOption.TopDirectoryOnly : SearchOption.AllDirectories))
            {
                if (Path.GetFileName(file).StartsWith(".", StringComparison.Ordinal))
                {
                    DurableFile.TryDelete(file);
                }
            }
        }
    }
}
