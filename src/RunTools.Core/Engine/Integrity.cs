using System;
using System.Collections.Generic;
using System.IO;
using System.Security.Cryptography;
using System.Threading.Tasks;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

public enum IntegrityProblemKind
{
    MissingFile,
    SizeMismatch,
    HashMismatch,
    Unreadable,
}

/// <summary>A recorded file that is not what the journal says it is.</summary>
public sealed class IntegrityProblem
{
    public IntegrityProblem(IntegrityProblemKind kind, string path, string expected, string actual, string? step, string? key)
    {
        Kind = kind;
        Path = path;
        Expected = expected;
        Actual = actual;
        Step = step;
        Key = key;
    }

    public IntegrityProblemKind Kind { get; }

    public string Path { get; }

    public string Expected { get; }

    public string Actual { get; }

    /// <summary>The unit the file belongs to (null for run-level artifacts).</summary>
    public string? Step { get; }

    public string? Key { get; }

    public override string ToString() => $"{Kind} {Path} (expected {Expected}, found {Actual})";
}

internal static class Integrity
{
    public static string Sha256Hex(byte[] data)
    {
        using var sha = SHA256.Create();
        return Hex(sha.ComputeHash(data));
    }

    public static (long Size, string Sha256) HashFile(string path)
    {
        using var sha = SHA256.Create();
        using var stream = Infrastructure.DurableFile.OpenRead(path, 1 << 16);
        byte[] hash = sha.ComputeHash(stream);
        return (stream.Length, Hex(hash));
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

    /// <summary>Checks one recorded file: presence, then size (cheap), then SHA-256.</summary>
    public static IntegrityProblem? Check(string runPath, string recordedPath, long size, string sha256, string? step, string? key)
    {
        string full = ResolvePath(runPath, recordedPath);
        try
        {
            var info = new FileInfo(full);
            if (!info.Exists)
            {
                return new IntegrityProblem(IntegrityProblemKind.MissingFile, recordedPath, $"{size} bytes", "no file", step, key);
            }

            if (info.Length != size)
            {
                return new IntegrityProblem(IntegrityProblemKind.SizeMismatch, recordedPath, $"{size} bytes", $"{info.Length} bytes", step, key);
            }

            var (_, actual) = HashFile(full);
            return string.Equals(actual, sha256, StringComparison.OrdinalIgnoreCase)
                ? null
                : new IntegrityProblem(IntegrityProblemKind.HashMismatch, recordedPath, sha256, actual, step, key);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return new IntegrityProblem(IntegrityProblemKind.Unreadable, recordedPath, sha256, ex.Message, step, key);
        }
    }

    /// <summary>Checks many files on all cores; results keep the input order.</summary>
    public static List<IntegrityProblem> CheckAll(string runPath, IReadOnlyList<(string Path, long Size, string Sha256, string? Step, string? Key)> files)
    {
        var results = new IntegrityProblem?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, i =>
        {
            var f = files[i];
            results[i] = Check(runPath, f.Path, f.Size, f.Sha256, f.Step, f.Key);
        });
        var problems = new List<IntegrityProblem>();
        foreach (var p in results)
        {
            if (p is not null)
            {
                problems.Add(p);
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
