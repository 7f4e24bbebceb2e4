using System;
using System.IO;
using System.Linq;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;

namespace RunTools.Core.Archive;

/// <summary>
/// A run folder as an archive's source: every file of the folder (docs/run-format.md §14.1), read
/// under the run's lock, which is held until disposed so that no attempt starts meanwhile.
/// </summary>
internal sealed class FolderArchiveSource : ArchiveSource
{
    private readonly RunDirectory _run;
    private readonly RunLock _lock;

    /// <summary>RunLocked, LockFileInvalid, RunReadOnly (a mounted backup), LockPermissionDenied, ...: see RunLock.Acquire.</summary>
    public FolderArchiveSource(RunDirectory run)
        : base(run.RunId)
    {
        _run = run;
        _lock = run.AcquireLock(DateTimeOffset.UtcNow);
        try
        {
            State = run.ReadStoredState(out _, checkJournal: true);
        }
        catch
        {
            _lock.Dispose();
            throw;
        }
    }

    public override void ListFiles() => Collect(this, new DirectoryInfo(_run.Path), string.Empty, topLevelFilter: null);

    public override void Dispose() => _lock.Dispose();

    /// <summary>
    /// Walks <paramref name="directory"/> without following any link: a symbolic link (or other
    /// reparse point) is skipped and reported, whether it points inside the run or out of it. The
    /// lock file, temp files of atomic writes and staging leftovers are not part of the run's
    /// content. <paramref name="topLevelFilter"/>, when given, picks the top-level names to walk
    /// (a database run's local folder holds only some of a run's files).
    /// </summary>
    internal static void Collect(ArchiveSource source, DirectoryInfo directory, string prefix, Func<string, bool>? topLevelFilter)
    {
        bool topLevel = prefix.Length == 0;
        foreach (var info in directory.EnumerateFileSystemInfos().OrderBy(i => i.Name, StringComparer.Ordinal))
        {
            if (topLevel && topLevelFilter is not null && !topLevelFilter(info.Name))
            {
                continue;
            }

            string relative = prefix + info.Name;
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0)
            {
                source.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "link" });
                source.Warnings.Add($"'{relative}' in run '{source.RunId}' is a link; links are never followed, so it is not in the archive.");
                continue;
            }

            if (info is DirectoryInfo sub)
            {
                if (topLevel && ArchivePaths.IsRootLeftover(info.Name))
                {
                    continue;
                }

                source.Directories.Add(relative);
                Collect(source, sub, relative + "/", null);
                continue;
            }

            if ((topLevel && info.Name == RunFormat.LockFile) || ArchivePaths.IsTempFile(info.Name))
            {
                continue;
            }

            if ((topLevel && info.Name == RunArchive.ManifestName) || ArchivePaths.ExplainUnsafe(relative) is not null)
            {
                source.Skipped.Add(new ArchiveSkipRecord { Path = relative, Reason = "reserved_name" });
                source.Warnings.Add($"'{relative}' in run '{source.RunId}' has a name an archive cannot hold safely; it is not in the archive.");
                continue;
            }

            var file = (FileInfo)info;
            string full = file.FullName;
            source.Files.Add(new ArchiveSourceFile(relative, file.Length, file.LastWriteTimeUtc, () => DurableFile.OpenRead(full, 1), localPath: full));
        }
    }
}
