using System;
using System.Collections.Generic;
using System.IO;
using RunTools.Core.State;

namespace RunTools.Core.Archive;

/// <summary>
/// What an archive is written from: a run folder (<see cref="FolderArchiveSource"/>) or a run held
/// in a database (<see cref="DatabaseArchiveSource"/>). It holds the run still (its lock or its
/// lease) from opening until disposed, so the state and the files it offers are one consistent
/// picture; <see cref="ArchiveWriter"/> reads the run only through it and knows no store.
/// </summary>
internal abstract class ArchiveSource : IDisposable
{
    protected ArchiveSource(string runId)
    {
        RunId = runId;
    }

    public string RunId { get; }

    /// <summary>The state as stored (status not derived), read while the run is held.</summary>
    public RunState State { get; protected set; } = new();

    /// <summary>The files the archive holds, in archive order, with run-relative '/' paths.</summary>
    public List<ArchiveSourceFile> Files { get; } = new();

    /// <summary>Every directory of the run, relative, so that empty ones are restored.</summary>
    public List<string> Directories { get; } = new();

    /// <summary>What the run holds that the archive leaves out, and why.</summary>
    public List<ArchiveSkipRecord> Skipped { get; } = new();

    /// <summary>What the archive does not hold, for the person exporting.</summary>
    public List<string> Warnings { get; } = new();

    /// <summary>
    /// Takes the run (RunLocked when a live process owns it) and reads its state. The files are
    /// listed by <see cref="ListFiles"/>, after the caller decided the run may be exported.
    /// </summary>
    public static ArchiveSource Open(RunDirectory run) =>
        run.Database is { } database ? new DatabaseArchiveSource(run, database) : new FolderArchiveSource(run);

    /// <summary>Fills <see cref="Files"/>, <see cref="Directories"/>, <see cref="Skipped"/> and <see cref="Warnings"/>.</summary>
    public abstract void ListFiles();

    public abstract void Dispose();
}

/// <summary>One file an archive will hold, as its source offers it.</summary>
internal sealed class ArchiveSourceFile
{
    private readonly Func<Stream> _open;

    public ArchiveSourceFile(string relative, long size, DateTime lastWriteUtc, Func<Stream> open, string? localPath = null, string? expectedSha256 = null)
    {
        Relative = relative;
        Size = size;
        LastWriteUtc = lastWriteUtc;
        _open = open;
        LocalPath = localPath;
        ExpectedSha256 = expectedSha256;
    }

    /// <summary>The entry name: the run-relative path with '/' separators.</summary>
    public string Relative { get; }

    /// <summary>The bytes the source says it holds; the archived bytes must be exactly these many.</summary>
    public long Size { get; }

    public DateTime LastWriteUtc { get; }

    /// <summary>
    /// A local file with the same bytes, which the writer hashes on the other cores while it
    /// compresses (from the page cache); null when the bytes are hashed as they are archived.
    /// </summary>
    public string? LocalPath { get; }

    /// <summary>The SHA-256 the store recorded for the bytes, which the archived bytes must have; null when it keeps none.</summary>
    public string? ExpectedSha256 { get; }

    public Stream Open() => _open();
}
