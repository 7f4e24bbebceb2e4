using System;

namespace RunTools.Core.Archive;

/// <summary>The archive errors raised in more than one place (export, verification, extraction, placement).</summary>
internal static class ArchiveErrors
{
    public static RunToolsException ArchiveExists(string target) => new(ErrorIds.ArchiveExists, RunToolsErrorCategory.ResourceExists,
        $"The archive '{target}' already exists. Use -Force to overwrite it, or choose another -DestinationPath.", target);

    public static RunToolsException RunExists(string id, string root, string archive) => new(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
        $"A run '{id}' already exists under '{root}'; '{archive}' was not imported. Use -Force to replace that run with the archived one, or import under another -Root.", id);

    /// <summary>For a database root: the same condition worded for a database rather than a folder.</summary>
    public static RunToolsException RunExistsInDatabase(string id, string root, string archive) => new(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
        $"A run '{id}' already exists in {root}; '{archive}' was not imported. Use -Force to replace that run with the archived one, or import under another -Root.", id);

    public static RunToolsException RunIdMismatch(string archive, string id, string found, string file) => new(ErrorIds.ArchiveRunIdMismatch, RunToolsErrorCategory.InvalidData,
        $"Archive '{archive}' says it holds run '{id}', but its {file} is of run '{found}'. Nothing was imported; the archive was altered: export the run again from its source.", archive);

    public static RunToolsException Corrupt(string archive, string detail, Exception? inner = null) => new(ErrorIds.ArchiveCorrupt, RunToolsErrorCategory.InvalidData,
        $"Archive '{archive}' is truncated or corrupt ({detail}). Nothing was imported; copy the archive again from its source, or export the run again.", archive, inner);

    public static RunToolsException InvalidManifest(string archive, string detail) => new(ErrorIds.ArchiveManifestInvalid, RunToolsErrorCategory.InvalidData,
        $"The {RunArchive.ManifestName} of archive '{archive}' is not usable: {detail}. Nothing was imported; export the run again with Export-RunArchive.", archive);

    public static RunToolsException Unexpected(string archive, string name) => new(ErrorIds.ArchiveUnexpectedEntry, RunToolsErrorCategory.InvalidData,
        $"Archive '{archive}' has an entry '{name}' that its manifest does not list, so it cannot be verified. Nothing was imported; the archive was altered: export the run again from its source.", archive);

    public static RunToolsException SizeMismatch(string archive, string name, long expected, string found) => new(ErrorIds.ArchiveSizeMismatch, RunToolsErrorCategory.InvalidData,
        $"Entry '{name}' of archive '{archive}' should be {expected} bytes per the manifest, but {found}. Nothing was imported; the archive was altered or damaged: use another copy or export the run again.", archive);
}
