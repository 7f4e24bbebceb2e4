using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using System.Threading;
using System.Threading.Tasks;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// Something wrong with a run: a recorded file that is not what the journal says it is, or a
/// disagreement between the run's files. <see cref="Step"/> and <see cref="Key"/> name the unit
/// a resume would redo.
/// </summary>
public sealed class RunProblem
{
    public RunProblem(RunProblemKind kind, string path, string expected, string actual, string? step, string? key, RunProblemSeverity severity = RunProblemSeverity.Error, string? note = null)
    {
        Kind = kind;
        Path = path;
        Expected = expected;
        Actual = actual;
        Step = step;
        Key = key;
        Severity = severity;
        Note = note;
    }

    public RunProblemKind Kind { get; }

    public RunProblemSeverity Severity { get; }

    /// <summary>The file, relative to the run ('/' separators), or absolute for a referenced artifact.</summary>
    public string Path { get; }

    public string Expected { get; }

    public string Actual { get; }

    /// <summary>The unit the file belongs to (null for run-level files).</summary>
    public string? Step { get; }

    public string? Key { get; }

    /// <summary>Why it matters and what to do, when that is not obvious from the kind.</summary>
    public string? Note { get; }

    internal RunProblem WithSeverity(RunProblemSeverity severity, string? note) =>
        new(Kind, Path, Expected, Actual, Step, Key, severity, note);

    public override string ToString() => $"{Kind} {Path} (expected {Expected}, found {Actual})";
}

internal static class Integrity
{
    public static string Sha256Hex(byte[] data)
    {
        using var sha = SHA256.Create();
        return Hex(sha.ComputeHash(data));
    }

    // One hasher and buffer per thread: Test-Run hashes thousands of small files on all cores,
    // where creating them per file costs more than hashing 4 KiB.
    [ThreadStatic]
    private static SHA256? t_sha;

    [ThreadStatic]
    private static byte[]? t_buffer;

    public static (long Size, string Sha256) HashFile(string path)
    {
        using var stream = OpenUnbuffered(path, long.MaxValue);
        return (stream.Length, Hash(stream));
    }

    /// <summary>
    /// Reads with one pooled buffer; the FileStream's own buffer would only add a copy. Read-ahead
    /// advice pays for large files only: for small ones it is one more system call per file.
    /// </summary>
    private static FileStream OpenUnbuffered(string path, long expectedSize) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1,
            expectedSize >= 1 << 20 ? FileOptions.SequentialScan : FileOptions.None);

    private static string Hash(Stream stream)
    {
        var sha = t_sha ??= SHA256.Create();
        var buffer = t_buffer ??= new byte[1 << 17];
        sha.Initialize();
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            sha.TransformBlock(buffer, 0, read, null, 0);
        }

        sha.TransformFinalBlock(buffer, 0, 0);
        return Hex(sha.Hash!);
    }

    public static string Hex(byte[] hash)
    {
        var chars = new char[hash.Length * 2];
        const string digits = "0123456789abcdef";
        for (int i = 0; i < hash.Length; i++)
        {
            chars[2 * i] = digits[hash[i] >> 4];
            chars[(2 * i) + 1] = digits[hash[i] & 0xF];
        }

        return new string(chars);
    }

    /// <summary>What to do about a recorded file that is not intact: the unit that wrote it is redone by a resume; a run-level artifact by none.</summary>
    internal static string WhatToDo(string? step, string? key) =>
        step is null ? "It was added outside any step, so no resume redoes it: restore it from a backup or an archive of the run (Import-RunArchive)."
        : key is null ? $"Resume-Run runs step '{step}' again, which writes it anew (the damaged file is kept); or restore it from a backup or an archive of the run."
        : $"Resume-Run runs item '{key}' of step '{step}' again, which writes it anew (the damaged file is kept); or restore it from a backup or an archive of the run.";

    /// <summary>Checks one recorded file: presence, then size (cheap), then SHA-256.</summary>
    public static RunProblem? Check(string runPath, string recordedPath, long size, string sha256, string? step, string? key)
    {
        string full = ResolvePath(runPath, recordedPath);
        var kind = NativeFileType.Of(full);
        if (kind is not (FileKind.Regular or FileKind.Missing))
        {
            // Never opened: a FIFO would block Test-Run for ever.
            return new RunProblem(RunProblemKind.Unreadable, recordedPath, sha256, NativeFileType.Describe(kind) + ", not a regular file", step, key, note: WhatToDo(step, key));
        }

        try
        {
            // Open first and take the size from the handle: one call fewer than stat + open.
            using var stream = OpenUnbuffered(full, size);
            long length = stream.Length;
            if (length != size)
            {
                return new RunProblem(RunProblemKind.SizeMismatch, recordedPath, $"{size} bytes", $"{length} bytes", step, key, note: WhatToDo(step, key));
            }

            string actual = Hash(stream);
            return string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase)
                ? null
                : new RunProblem(RunProblemKind.HashMismatch, recordedPath, sha256, actual, step, key, note: WhatToDo(step, key));
        }
        catch (Exception ex) when (ex is FileNotFoundException || ex is DirectoryNotFoundException)
        {
            return new RunProblem(RunProblemKind.MissingFile, recordedPath, $"{size} bytes", "no file", step, key, note: WhatToDo(step, key));
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return new RunProblem(RunProblemKind.Unreadable, recordedPath, sha256, ex.Message, step, key, note: WhatToDo(step, key));
        }
    }

    /// <summary>Checks many files on all cores; results keep the input order.</summary>
    public static List<RunProblem> CheckAll(string runPath, IReadOnlyList<RecordedFile> files, Action<long>? bytesDone = null, CancellationToken cancellation = default)
    {
        var results = new RunProblem?[files.Count];
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount, CancellationToken = cancellation };
        try
        {
            Parallel.For(0, files.Count, options, i =>
            {
                var f = files[i];
                results[i] = Check(runPath, f.Path, f.Size, f.Sha256, f.Step, f.Key);
                bytesDone?.Invoke(f.Size);
            });
        }
        catch (AggregateException ex) when (ex.InnerException is OperationCanceledException)
        {
            throw ex.InnerException;
        }

        var problems = new List<RunProblem>();
        for (int i = 0; i < results.Length; i++)
        {
            if (results[i] is { } p)
            {
                problems.Add(files[i].Vouches ? p : p.WithSeverity(RunProblemSeverity.Warning, files[i].Note));
            }
        }

        return problems;
    }

    /// <summary>The path of a file inside the run directory as a run records it ('/' separators), or null when it lies outside.</summary>
    public static string? RelativeToRun(string runPath, string fullPath)
    {
        string root = Path.GetFullPath(runPath).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
        string full = Path.GetFullPath(fullPath);
        return full.StartsWith(root, StringComparison.Ordinal) ? full.Substring(root.Length).Replace(Path.DirectorySeparatorChar, '/') : null;
    }

    /// <summary>Recorded paths are relative ('/' separators) inside the run, or absolute for references.</summary>
    public static string ResolvePath(string runPath, string recordedPath) =>
        Path.IsPathRooted(recordedPath) ? recordedPath : Path.Combine(runPath, recordedPath.Replace('/', Path.DirectorySeparatorChar));
}

/// <summary>
/// A file the journal recorded with size and SHA-256. Only files that vouch for a completed unit
/// (or for the run) make it invalid when damaged; the others belong to superseded or unfinished
/// work and are kept for reference.
/// </summary>
internal readonly struct RecordedFile
{
    public RecordedFile(string path, long size, string sha256, string? step, string? key, bool vouches = true, string? note = null)
    {
        Path = path;
        Size = size;
        Sha256 = sha256;
        Step = step;
        Key = key;
        Vouches = vouches;
        Note = note;
    }

    public string Path { get; }

    public long Size { get; }

    public string Sha256 { get; }

    public string? Step { get; }

    public string? Key { get; }

    public bool Vouches { get; }

    public string? Note { get; }
}
