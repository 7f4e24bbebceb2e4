using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text.Json;
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// Reads and checks the manifest of an untrusted archive: well-formed, a version this RunTools reads,
/// a valid run id, safe and distinct paths, and an exact match with the zip's entries.
/// </summary>
internal static class ArchiveManifestReader
{
    private const long MaxManifestBytes = 256L << 20;

    /// <summary>The manifest, checked against itself and against the entries (already checked by <see cref="ArchiveReader"/>).</summary>
    public static ArchiveManifest Read(string archive, Dictionary<string, ZipArchiveEntry> entries)
    {
        if (!entries.TryGetValue(RunArchive.ManifestName, out var manifestEntry))
        {
            throw new RunToolsException(ErrorIds.ArchiveManifestMissing, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' has no {RunArchive.ManifestName}, so its content cannot be verified; it was not written by Export-RunArchive. Nothing was imported; export the run with Export-RunArchive.", archive);
        }

        ArchiveManifest? manifest;
        try
        {
            if (manifestEntry.Length > MaxManifestBytes)
            {
                throw InvalidManifest(archive, $"it declares {manifestEntry.Length} bytes");
            }

            using var stream = manifestEntry.Open();
            byte[] bytes = ReadCapped(stream, MaxManifestBytes);
            manifest = JsonSerializer.Deserialize<ArchiveManifest>(bytes, RunFormat.JsonOptions);
        }
        catch (JsonException ex)
        {
            // Also a manifest without 'run' or 'files' ([JsonRequired]), which the message names.
            throw InvalidManifest(archive, "it is not valid JSON with 'run' and 'files' (" + ex.Message + ")");
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(archive, ex.Message, ex);
        }

        if (manifest is null || manifest.Run is null || manifest.Files is null)
        {
            throw InvalidManifest(archive, "it lacks 'run' or 'files'");
        }

        if (manifest.ArchiveFormatVersion > RunArchive.FormatVersion)
        {
            throw new RunToolsException(ErrorIds.UnsupportedFormatVersion, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' uses archive format version {manifest.ArchiveFormatVersion}; this RunTools reads version {RunArchive.FormatVersion}. Update RunTools to import it.", archive);
        }

        if (manifest.ArchiveFormatVersion < 1)
        {
            throw InvalidManifest(archive, "'archive_format_version' is missing or not a positive number");
        }

        manifest.Directories ??= new List<string>();
        if (manifest.Files.Any(f => f is null || f.Path is null) || manifest.Directories.Any(d => d is null) || manifest.Run.RunId is null)
        {
            throw InvalidManifest(archive, "it has an empty file, directory or run id");
        }

        string? why = RunId.Explain(manifest.Run.RunId);
        if (why is not null)
        {
            throw new RunToolsException(ErrorIds.ArchiveInvalidRunId, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' names the run '{manifest.Run.RunId}', which is not a valid run id ({why}; a run id is {RunId.Rule}). Nothing was imported; the archive was not written by Export-RunArchive or was altered.", archive);
        }

        var listed = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (string path in manifest.Files.Select(f => f.Path).Concat(manifest.Directories))
        {
            string? unsafeWhy = ArchivePaths.ExplainUnsafe(path);
            string? reservedWhy = unsafeWhy is null ? ExplainReserved(path) : null;
            if (unsafeWhy is not null || reservedWhy is not null)
            {
                throw new RunToolsException(ErrorIds.ArchiveUnsafePath, RunToolsErrorCategory.InvalidData,
                    $"The manifest of archive '{archive}' lists a path '{path}' that {unsafeWhy ?? reservedWhy}; {(unsafeWhy is not null ? "it could write outside the run" : "imported, it would damage the run")}. Nothing was imported; do not use this archive.", archive);
            }

            if (!listed.Add(path) || path == RunArchive.ManifestName)
            {
                throw InvalidManifest(archive, $"it lists '{path}' twice (or in two letter cases, or as the manifest itself)");
            }
        }

        foreach (var file in manifest.Files)
        {
            if (file.Size < 0 || file.Sha256 is null || file.Sha256.Length != 64 || !file.Sha256.All(IsHexDigit))
            {
                throw InvalidManifest(archive, $"the entry for '{file.Path}' has no valid size and SHA-256");
            }
        }

        var files = manifest.Files.ToDictionary(f => f.Path, StringComparer.Ordinal);
        var directories = new HashSet<string>(manifest.Directories, StringComparer.Ordinal);
        foreach (var entry in entries.Values)
        {
            string name = entry.FullName;
            if (name == RunArchive.ManifestName)
            {
                continue;
            }

            if (name.EndsWith("/", StringComparison.Ordinal))
            {
                if (!directories.Contains(name.TrimEnd('/')))
                {
                    throw Unexpected(archive, name);
                }

                continue;
            }

            if (!files.TryGetValue(name, out var record))
            {
                throw Unexpected(archive, name);
            }

            if (entry.Length != record.Size)
            {
                throw SizeMismatch(archive, name, record.Size, $"the zip declares {entry.Length} bytes");
            }
        }

        foreach (var file in manifest.Files)
        {
            if (!entries.ContainsKey(file.Path))
            {
                throw new RunToolsException(ErrorIds.ArchiveMissingEntry, RunToolsErrorCategory.InvalidData,
                    $"The manifest of archive '{archive}' lists '{file.Path}' ({file.Size} bytes), but the archive has no such entry. Nothing was imported; the archive is incomplete: export the run again from its source.", archive);
            }
        }

        return manifest;
    }

    /// <summary>
    /// Why a listed path is a name the run keeps for itself and an export never writes (run-format
    /// §14.1, "Not archived"): imported, it would be taken for the run's lock (a folder there makes
    /// the run refuse every locking cmdlet) or for a temporary file. Null when it is not one.
    /// </summary>
    private static string? ExplainReserved(string path)
    {
        int slash = path.IndexOf('/');
        string top = slash < 0 ? path : path.Substring(0, slash);
        if (string.Equals(top, RunFormat.LockFile, StringComparison.OrdinalIgnoreCase))
        {
            return "is the run's lock, which is never archived";
        }

        string last = path.Substring(path.LastIndexOf('/') + 1);
        return ArchivePaths.IsTempFile(last) ? "is the name of a temporary file, which is never archived" : null;
    }

    private static byte[] ReadCapped(Stream stream, long cap)
    {
        using var memory = new MemoryStream();
        var buffer = new byte[RunArchive.BufferSize];
        int n;
        while ((n = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            memory.Write(buffer, 0, n);
            if (memory.Length > cap)
            {
                throw new InvalidDataException($"{RunArchive.ManifestName} is larger than {cap} bytes");
            }
        }

        return memory.ToArray();
    }

    private static bool IsHexDigit(char c) => (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
