using System.Collections.Generic;
using System.IO;
using RunTools.Core.Archive;

namespace RunTools.Core.Storage;

/// <summary>
/// A run as a verified archive holds it (Import-RunArchive), for a store that writes a whole run
/// at once: every file is the manifest's, and its bytes are checked (size, SHA-256) as they are read.
/// </summary>
internal interface IArchivedRun
{
    string RunId { get; }

    /// <summary>The archive's full path, for messages.</summary>
    string ArchivePath { get; }

    /// <summary>The archived files (run-relative '/' paths, sizes), in archive order.</summary>
    IReadOnlyList<ArchiveFileRecord> Files { get; }

    /// <summary>
    /// A file's bytes; ArchiveSizeMismatch, ArchiveHashMismatch or ArchiveCorrupt when the end is
    /// read and they are not the manifest's, so a store must read each file to its end before it
    /// keeps anything of it. Progress and cancellation are reported while it is read.
    /// </summary>
    Stream Open(ArchiveFileRecord file);
}

/// <summary>A store that takes a whole run from an archive (a database; a runs folder has its own staging, RunArchive.Import).</summary>
internal interface IRunImporter
{
    /// <summary>
    /// Writes the run so that it appears whole or not at all: a failure or a kill midway leaves
    /// nothing visible. RunExists when the id is taken and <paramref name="replace"/> is false
    /// (nothing is changed); with it, the existing run is replaced in the same transaction
    /// (RunLocked when a live owner holds it).
    /// </summary>
    RunDirectory ImportRun(IArchivedRun run, bool replace);
}
