using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Reflection;
using System.Security.Cryptography;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// An archive opened for import, trusted in nothing. Before anything is extracted: the entry count is
/// capped, every entry name must be a safe relative path (no links, no name twice in any letter case),
/// the manifest must match the entries exactly, and the extracted size is capped. Extraction then
/// checks each file's size and SHA-256 and that the result is the run the manifest names.
/// </summary>
internal sealed class ArchiveReader : IDisposable
{
    private const int UnixFileTypeMask = 0xF000;
    private const int UnixSymbolicLink = 0xA000;

    // ZipArchiveEntry.ExternalAttributes is not in netstandard2.0's surface, but every host RunTools
    // supports (.NET Framework 4.7.2+, .NET 6+) has it.
    private static readonly PropertyInfo? s_externalAttributes = typeof(ZipArchiveEntry).GetProperty("ExternalAttributes");

    private readonly string _archive;
    private readonly Stream _stream;
    private readonly ZipArchive _zip;
    private readonly Dictionary<string, ZipArchiveEntry> _entries;

    private ArchiveReader(string archive, Stream stream, ZipArchive zip, Dictionary<string, ZipArchiveEntry> entries, ArchiveManifest manifest, long extractedSize)
    {
        _archive = archive;
        _stream = stream;
        _zip = zip;
        _entries = entries;
        Manifest = manifest;
        ExtractedSize = extractedSize;
    }

    public ArchiveManifest Manifest { get; }

    /// <summary>The bytes extraction will write: every listed file's size, which extraction enforces.</summary>
    public long ExtractedSize { get; }

    /// <summary>Opens the archive at <paramref name="archive"/> (a full path) and checks everything that can be checked without extracting.</summary>
    public static ArchiveReader Open(string archive, ArchiveImportOptions options)
    {
        var stream = DurableFile.OpenRead(archive, RunArchive.BufferSize);
        ZipArchive? zip = null;
        try
        {
            try
            {
                zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            }
            catch (InvalidDataException ex)
            {
                throw Corrupt(archive, ex.Message, ex);
            }

            Dictionary<string, ZipArchiveEntry> entries;
            try
            {
                CheckEntryCount(archive, zip, options);
                entries = CheckEntries(archive, zip);
            }
            catch (InvalidDataException ex)
            {
                throw Corrupt(archive, ex.Message, ex);
            }

            var manifest = ArchiveManifestReader.Read(archive, entries);
            long extractedSize = CheckExtractedSize(archive, manifest, options);
            return new ArchiveReader(archive, stream, zip, entries, manifest, extractedSize);
        }
        catch
        {
            zip?.Dispose();
            stream.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _zip.Dispose();
        _stream.Dispose();
    }

    /// <summary>
    /// Extracts every listed file into <paramref name="staging"/>, verifying size (reading at most
    /// size + 1 bytes) and SHA-256, then checks that the staged files are the run the manifest names.
    /// </summary>
    public void ExtractTo(string staging, ArchiveImportOptions options)
    {
        Extract(staging, options);
        CheckStagedRun(staging);
    }

    private void Extract(string staging, ArchiveImportOptions options)
    {
        var manifest = Manifest;
        foreach (string directory in manifest.Directories)
        {
            Directory.CreateDirectory(Path.Combine(staging, directory.Replace('/', Path.DirectorySeparatorChar)));
        }

        var progress = new ArchiveProgressReporter(ArchivePhase.Extracting, manifest.Run.RunId, manifest.Files.Count, manifest.Files.Sum(f => f.Size), options.Progress, options.Cancellation);
        var folders = new HashSet<string>(StringComparer.Ordinal) { staging };
        for (int i = 0; i < manifest.Files.Count; i++)
        {
            var record = manifest.Files[i];
            progress.StartFile(i, record.Path);
            var entry = _entries[record.Path];
            string destination = Path.Combine(staging, record.Path.Replace('/', Path.DirectorySeparatorChar));
            string folder = Path.GetDirectoryName(destination)!;
            if (folders.Add(folder))
            {
                Directory.CreateDirectory(folder);
            }

            using (var input = OpenVerified(record, progress))
            using (var output = new FileStream(destination, FileMode.CreateNew, FileAccess.Write, FileShare.None, RunArchive.BufferSize, FileOptions.None))
            {
                input.CopyTo(output, RunArchive.BufferSize);
                output.Flush(flushToDisk: true);
            }

            try
            {
                File.SetLastWriteTimeUtc(destination, entry.LastWriteTime.UtcDateTime);
            }
            catch (ArgumentOutOfRangeException)
            {
            }
        }

        // Every file was flushed as it was written; now the directory entries, deepest first.
        foreach (string folder in folders.Concat(manifest.Directories.Select(d => Path.Combine(staging, d.Replace('/', Path.DirectorySeparatorChar)))).Distinct().OrderByDescending(f => f.Length))
        {
            NativeMethods.FlushDirectory(folder);
        }

        progress.Finish();
    }

    /// <summary>A listed file's bytes, checked against the manifest as they are read (see <see cref="VerifiedEntryStream"/>).</summary>
    public Stream OpenVerified(ArchiveFileRecord record, ArchiveProgressReporter? progress)
    {
        Stream entry;
        try
        {
            entry = _entries[record.Path].Open();
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(_archive, $"entry '{record.Path}' cannot be decompressed: {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            throw Corrupt(_archive, $"entry '{record.Path}' uses a compression method this RunTools cannot read: {ex.Message}", ex);
        }

        return new VerifiedEntryStream(_archive, record, entry, progress);
    }

    /// <summary>The staged files must be a run, and the run must be the one the manifest names.</summary>
    private void CheckStagedRun(string staging)
    {
        string archive = _archive;
        string id = Manifest.Run.RunId;
        if (!RunDirectory.IsRunDirectory(staging))
        {
            throw InvalidManifest(archive, $"the archive holds neither {RunFormat.StateFile} nor {RunFormat.JournalFile}, so it is not a run");
        }

        var state = new RunDirectory(staging, id).ReadStoredStateUnchecked(out _);
        if (!string.Equals(state.RunId, id, StringComparison.Ordinal))
        {
            throw RunIdMismatch(archive, id, state.RunId, RunFormat.StateFile);
        }
    }

    private static void CheckEntryCount(string archive, ZipArchive zip, ArchiveImportOptions options)
    {
        int count = zip.Entries.Count;
        if (count > options.MaximumEntryCount)
        {
            throw new RunToolsException(ErrorIds.ArchiveTooManyEntries, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' has {count:N0} entries, more than the limit of {options.MaximumEntryCount:N0}; nothing was imported. If you trust the archive, raise the limit with -MaximumEntryCount.", archive);
        }
    }

    /// <summary>The bytes an import will write (every listed file's size, which extraction enforces); refused above the limit.</summary>
    private static long CheckExtractedSize(string archive, ArchiveManifest manifest, ArchiveImportOptions options)
    {
        long total = 0;
        foreach (var file in manifest.Files)
        {
            // Saturating: sizes from a hostile manifest must not wrap around to a small total.
            total = file.Size > long.MaxValue - total ? long.MaxValue : total + file.Size;
        }

        if (total > options.MaximumSize)
        {
            throw new RunToolsException(ErrorIds.ArchiveTooLarge, RunToolsErrorCategory.InvalidData,
                $"Archive '{archive}' would extract {total:N0} bytes, more than the limit of {options.MaximumSize:N0} bytes; nothing was imported. If you trust the archive, raise the limit with -MaximumSize.", archive);
        }

        return total;
    }

    /// <summary>Entry names: safe relative paths, no links, no duplicates (also none differing only in case).</summary>
    private static Dictionary<string, ZipArchiveEntry> CheckEntries(string archive, ZipArchive zip)
    {
        var byName = new Dictionary<string, ZipArchiveEntry>(StringComparer.Ordinal);
        var byFoldedName = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in zip.Entries)
        {
            string name = entry.FullName;
            string? unsafeWhy = ArchivePaths.ExplainUnsafe(name.EndsWith("/", StringComparison.Ordinal) ? name.Substring(0, name.Length - 1) : name);
            if (unsafeWhy is not null)
            {
                throw new RunToolsException(ErrorIds.ArchiveUnsafePath, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has an entry '{name}' whose path {unsafeWhy}; it could write outside the run. Nothing was imported; do not use this archive, export the run again from its source.", archive);
            }

            if (IsLink(entry))
            {
                throw new RunToolsException(ErrorIds.ArchiveLinkEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has an entry '{name}' that is a symbolic link; run archives never hold links. Nothing was imported; do not use this archive, export the run again from its source.", archive);
            }

            if (byName.ContainsKey(name))
            {
                throw new RunToolsException(ErrorIds.ArchiveDuplicateEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has the entry '{name}' more than once, so which bytes are meant is ambiguous. Nothing was imported; export the run again from its source.", archive);
            }

            string folded = name.TrimEnd('/');
            if (byFoldedName.TryGetValue(folded, out string? other))
            {
                throw new RunToolsException(ErrorIds.ArchiveDuplicateEntry, RunToolsErrorCategory.InvalidData,
                    $"Archive '{archive}' has entries '{other}' and '{name}' that differ only in letter case; they would overwrite each other on Windows and macOS. Nothing was imported; export the run again from its source.", archive);
            }

            byName.Add(name, entry);
            byFoldedName.Add(folded, name);
        }

        return byName;
    }

    private static bool IsLink(ZipArchiveEntry entry)
    {
        if (s_externalAttributes?.GetValue(entry) is not int attributes)
        {
            return false;
        }

        // Unix mode in the high 16 bits (zip "version made by" Unix; other hosts leave them 0).
        return ((attributes >> 16) & UnixFileTypeMask) == UnixSymbolicLink;
    }
}
