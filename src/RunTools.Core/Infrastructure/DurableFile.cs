using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace RunTools.Core.Infrastructure;

/// <summary>Crash-safe file writes: a reader sees the old file or the new one, never a mix.</summary>
internal static class DurableFile
{
    /// <summary>Prefix of temp files; a crash can leave one behind, the next owner removes it.</summary>
    public const string TempMarker = ".tmp-";

    /// <summary>Write to a temp file beside the target, flush it to disk, rename over the target, flush the directory.</summary>
    public static void WriteAtomic(string path, byte[] content) => WriteAtomic(path, content, 0, content.Length);

    /// <summary>As WriteAtomic; <paramref name="beforeRename"/> (a crash-test seam) runs once the temp file is full and not yet renamed.</summary>
    public static void WriteAtomic(string path, byte[] content, Action? beforeRename) =>
        ReplaceAtomic(path, stream =>
        {
            stream.Write(content, 0, content.Length);
            if (beforeRename is not null)
            {
                NativeMethods.FlushFile(stream, path);
                beforeRename();
            }
        }, () => $"Could not write '{path}'");

    public static void WriteAtomic(string path, byte[] content, int offset, int count) =>
        ReplaceAtomic(path, stream => stream.Write(content, offset, count), () => $"Could not write '{path}'");

    /// <summary>Copy a file durably: the copy is complete on disk under its final name or absent.</summary>
    public static void CopyAtomic(string source, string destination) =>
        ReplaceAtomic(destination, stream =>
        {
            using var input = OpenRead(source);
            input.CopyTo(stream, 81920);
        }, () => $"Could not copy '{source}' to '{destination}'");

    /// <summary>As WriteAtomic, the bytes written by <paramref name="fill"/>: content of any size, streamed. <paramref name="describe"/> names the write in a WriteFailed error.</summary>
    public static void WriteAtomicFrom(string path, Action<FileStream> fill, Func<string> describe) => ReplaceAtomic(path, fill, describe);

    /// <summary>Pushes a stream's bytes to the OS and fsyncs them, the result checked (see <see cref="NativeMethods.FlushFile"/>).</summary>
    public static void Sync(FileStream stream, string path) => NativeMethods.FlushFile(stream, path);

    /// <summary>
    /// Creates a folder and its missing parents, flushing the parent of each folder it creates, so
    /// that the new entry survives a power loss as surely as the files later written into it.
    /// </summary>
    public static void CreateDirectory(string path)
    {
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            return;
        }

        var missing = new Stack<string>();
        for (string? folder = full; folder is not null && !Directory.Exists(folder); folder = Path.GetDirectoryName(folder))
        {
            missing.Push(folder);
        }

        try
        {
            while (missing.Count > 0)
            {
                string folder = missing.Pop();
                FaultPoints.ThrowIfInjected(DurableOp.CreateDirectory, folder);
                Directory.CreateDirectory(folder);
                NativeMethods.FlushDirectory(Path.GetDirectoryName(folder)!);
            }
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            throw Failed($"Could not create the folder '{full}'", full, ex, "No file was written into it.");
        }
    }

    /// <summary>
    /// The WriteFailed error: what could not be written, the OS's reason, what it means for the
    /// data, and what to do (the disk is full, read-only or failing until someone acts).
    /// </summary>
    public static RunToolsException Failed(string what, string path, Exception cause, string consequence) =>
        new(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
            $"{what}: {cause.Message} {consequence} Free disk space, remount the file system read-write or fix its permissions, then try again (Resume-Run continues a run that was running; finished work is not redone).",
            path, cause);

    /// <summary>The one write path: fill a temp file beside the target, fsync, rename over, fsync the directory.</summary>
    private static void ReplaceAtomic(string path, Action<FileStream> fill, Func<string> describe)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(directory, "." + Path.GetFileName(path) + TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.None))
            {
                FaultPoints.ThrowIfInjected(DurableOp.Write, path);
                fill(stream);
                NativeMethods.FlushFile(stream, path);
            }

            FaultPoints.ThrowIfInjected(DurableOp.Rename, path);
            ReplaceWithRetry(temp, path);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw Failed(describe(), path, ex, "Nothing was changed.");
        }

        try
        {
            NativeMethods.FlushDirectory(directory);
        }
        catch (IOException ex)
        {
            throw Failed($"'{path}' was written, but its folder could not be flushed to disk", path, ex,
                "The new file is in place, but a power loss could still undo it, so it does not count as recorded.");
        }
    }

    /// <summary>Readers open with every share mode so that an owner can replace or append meanwhile.
    /// A FIFO, device or directory is refused before opening (opening a FIFO blocks until a writer comes).</summary>
    public static FileStream OpenRead(string path, int bufferSize = 4096)
    {
        var kind = NativeFileType.Of(path);
        if (kind is not (FileKind.Regular or FileKind.Missing))
        {
            throw new NotRegularFileException(path, kind);
        }

        return new(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize, FileOptions.None);
    }

    public static byte[] ReadAllBytes(string path)
    {
        using var stream = OpenRead(path, 1);
        var buffer = new byte[stream.Length];
        int read = ReadUpTo(stream, buffer, buffer.Length);
        if (read < buffer.Length)
        {
            Array.Resize(ref buffer, read);
        }

        return buffer;
    }

    /// <summary>
    /// The file's bytes in a buffer of this thread, valid until its next call on this thread: for a
    /// reader that parses them at once. A listing reads every run's run.json; a fresh array for each
    /// was a fifth of what it allocated. Files past <see cref="SharedReadLimit"/> get their own array.
    /// </summary>
    internal static ArraySegment<byte> ReadShared(string path)
    {
        if (NativeFileType.TryReadWhole(path, SharedBuffer, out var bytes))
        {
            return bytes;
        }

        using var stream = OpenRead(path, 1);
        long length = stream.Length; // once: a file growing meanwhile must not outgrow the buffer
        byte[] buffer = SharedBuffer(length);
        return new ArraySegment<byte>(buffer, 0, ReadUpTo(stream, buffer, (int)length));
    }

    private static readonly Func<long, byte[]> SharedBuffer = SharedBufferFor;

    private static byte[] SharedBufferFor(long length)
    {
        if (length > SharedReadLimit)
        {
            return new byte[length];
        }

        if (t_readBuffer is { } kept && kept.Length >= length)
        {
            return kept;
        }

        return t_readBuffer = new byte[Math.Max(4096, length * 2)];
    }

    private const long SharedReadLimit = 256 * 1024;

    [ThreadStatic]
    private static byte[]? t_readBuffer;

    /// <summary>Reads up to <paramref name="count"/> bytes (fewer when the file ends first); returns how many.</summary>
    private static int ReadUpTo(Stream stream, byte[] buffer, int count)
    {
        int read = 0;
        while (read < count)
        {
            int n = stream.Read(buffer, read, count - read);
            if (n == 0)
            {
                break;
            }

            read += n;
        }

        return read;
    }

    public static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void ReplaceWithRetry(string temp, string target)
    {
        // Unix rename() is atomic and never blocked by readers. Windows can refuse while a reader
        // holds the target without FILE_SHARE_DELETE (another tool), so it gets a short retry.
        for (int attempt = 0; ; attempt++)
        {
            try
            {
                if (File.Exists(target))
                {
                    File.Replace(temp, target, null, ignoreMetadataErrors: true);
                }
                else
                {
                    File.Move(temp, target);
                }

                return;
            }
            catch (Exception ex) when (NativeMethods.IsWindows && attempt < 20 && (ex is IOException || ex is UnauthorizedAccessException))
            {
                Thread.Sleep(25);
            }
        }
    }
}
