using System;
using System.Collections.Generic;
using System.IO.Compression;
using System.Threading;

namespace RunTools.Core.Archive;

public enum ArchivePhase
{
    /// <summary>Export: files are compressed into the archive (hashing runs beside it on the other cores).</summary>
    Compressing,

    /// <summary>Import: entries are extracted into a staging folder and verified.</summary>
    Extracting,
}

/// <summary>How far an export or import is. Reported on the caller's thread only.</summary>
public sealed class ArchiveProgress
{
    internal ArchiveProgress(ArchivePhase phase, string runId, int filesDone, int filesTotal, long bytesDone, long bytesTotal, string? currentFile)
    {
        Phase = phase;
        RunId = runId;
        FilesDone = filesDone;
        FilesTotal = filesTotal;
        BytesDone = bytesDone;
        BytesTotal = bytesTotal;
        CurrentFile = currentFile;
    }

    public ArchivePhase Phase { get; }

    public string RunId { get; }

    public int FilesDone { get; }

    public int FilesTotal { get; }

    public long BytesDone { get; }

    public long BytesTotal { get; }

    /// <summary>The relative path being worked on, or null at the end.</summary>
    public string? CurrentFile { get; }
}

public sealed class ArchiveExportOptions
{
    /// <summary>A folder (the archive becomes &lt;run-id&gt;.zip inside it) or a file path ending in .zip.</summary>
    public string DestinationPath { get; set; } = ".";

    /// <summary>Export a run that is not Completed (the manifest says forced), and overwrite an existing archive.</summary>
    public bool Force { get; set; }

    public Action<ArchiveProgress>? Progress { get; set; }

    public CancellationToken Cancellation { get; set; }

    /// <summary>Deflate level of the file entries (the benchmark compares levels).</summary>
    internal CompressionLevel CompressionLevel { get; set; } = CompressionLevel.Optimal;
}

public sealed class ArchiveExportResult
{
    internal ArchiveExportResult(string path, ArchiveManifest manifest, IReadOnlyList<string> warnings)
    {
        Path = path;
        Manifest = manifest;
        Warnings = warnings;
    }

    /// <summary>The archive's full path.</summary>
    public string Path { get; }

    public ArchiveManifest Manifest { get; }

    /// <summary>What the archive does not hold and why (links skipped, referenced artifacts not copied).</summary>
    public IReadOnlyList<string> Warnings { get; }
}

public sealed class ArchiveImportOptions
{
    /// <summary>Replace an existing run with the same id (never one that a live process owns).</summary>
    public bool Force { get; set; }

    public Action<ArchiveProgress>? Progress { get; set; }

    public CancellationToken Cancellation { get; set; }

    /// <summary>The most bytes an import extracts (the sum of the files' sizes); larger archives are refused before extraction (ArchiveTooLarge).</summary>
    public long MaximumSize { get; set; } = DefaultMaximumSize;

    /// <summary>The most entries an archive may hold; more are refused before anything is read (ArchiveTooManyEntries).</summary>
    public int MaximumEntryCount { get; set; } = DefaultMaximumEntryCount;

    /// <summary>16 GiB: above most honest runs; a larger one is imported with a raised -MaximumSize.</summary>
    public const long DefaultMaximumSize = 16L << 30;

    /// <summary>1,000,000 entries.</summary>
    public const int DefaultMaximumEntryCount = 1_000_000;
}
