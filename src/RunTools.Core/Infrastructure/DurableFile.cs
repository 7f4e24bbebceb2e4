using System;
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
                stream.Flush(flushToDisk: true);
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

    /// <summary>The one write path: fill a temp file beside the target, fsync, rename over, fsync the directory.</summary>
    private static void ReplaceAtomic(string path, Action<FileStream> fill, Func<string> describe)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        string temp = Path.Combine(directory, "." + Path.GetFileName(path) + TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, FileOptions.None))
            {
                fill(stream);
                stream.Flush(flushToDisk: true);
            }

            ReplaceWithRetry(temp, path);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"{describe()}: {ex.Message} Nothing was changed; free disk space or fix permissions, then try again.", path, ex);
        }

        NativeMethods.FlushDirectory(directory);
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
        long length = stream.Length;
        var buffer = new byte[length];
        int read = 0;
        while (read < length)
        {
            int n = stream.Read(buffer, read, (int)(length - read));
            if (n == 0)
            {
                Array.Resize(ref buffer, read);
                break;
            }

            read += n;
        }

        return buffer;
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
