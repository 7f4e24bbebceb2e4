using System;
using System.IO;
using System.Runtime.InteropServices;

namespace RunTools.Core.Infrastructure;

/// <summary>What kind of file system entry a path names.</summary>
public enum FileKind
{
    Missing,
    Regular,
    Directory,
    Fifo,
    CharacterDevice,
    BlockDevice,
    Socket,
    SymbolicLink,
    Other,
}

/// <summary>
/// Tells a regular file from a FIFO, device, socket or directory without opening it: opening a
/// FIFO for reading blocks until a writer appears, and reading a device may never end, so every
/// input path is checked first. .NET has no portable API for the file type on Unix, so this asks
/// the runtime's own native shim (libSystem.Native, present wherever .NET runs on Unix); where that
/// is unavailable it falls back to what File attributes can tell (directory or not).
/// </summary>
internal static partial class NativeFileType
{
    // The PAL's S_IF* values (src/native/libs/System.Native/pal_io.h), the same on every Unix.
    private const int TypeMask = 0xF000;
    private const int TypeFifo = 0x1000;
    private const int TypeCharacter = 0x2000;
    private const int TypeDirectory = 0x4000;
    private const int TypeBlock = 0x6000;
    private const int TypeRegular = 0x8000;
    private const int TypeLink = 0xA000;
    private const int TypeSocket = 0xC000;

    // FileStatus starts { int32 Flags; int32 Mode; uint32 Uid; uint32 Gid; int64 Size; ... }; the
    // buffer is larger than any version of the struct.
    private const int StatusBufferSize = 512;
    private const int ModeOffset = 4;
    private const int SizeOffset = 16;

    private static bool s_nativeUnavailable = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

    // Per thread, reused: a listing stats every run, and two fresh buffers a call were a sixth of what it allocated.
    [ThreadStatic]
    private static byte[]? t_status;
    [ThreadStatic]
    private static byte[]? t_name;

    /// <summary>The kind of entry at <paramref name="path"/>; links are followed unless <paramref name="followLinks"/> is false.</summary>
    public static FileKind Of(string path, bool followLinks = true) => Of(path, followLinks, out _);

    /// <summary>As <see cref="Of(string, bool)"/>, with the length of a regular file (0 for any other kind).</summary>
    public static FileKind Of(string path, bool followLinks, out long length)
    {
        length = 0;
        if (!s_nativeUnavailable)
        {
            try
            {
                var buffer = t_status ??= new byte[StatusBufferSize];
                int result = followLinks ? SystemNative.Stat(NullTerminated(path), buffer) : SystemNative.LStat(NullTerminated(path), buffer);
                if (result != 0)
                {
                    return FileKind.Missing;
                }

                var kind = (BitConverter.ToInt32(buffer, ModeOffset) & TypeMask) switch
                {
                    TypeRegular => FileKind.Regular,
                    TypeDirectory => FileKind.Directory,
                    TypeFifo => FileKind.Fifo,
                    TypeCharacter => FileKind.CharacterDevice,
                    TypeBlock => FileKind.BlockDevice,
                    TypeSocket => FileKind.Socket,
                    TypeLink => FileKind.SymbolicLink,
                    _ => FileKind.Other,
                };
                if (kind == FileKind.Regular)
                {
                    length = BitConverter.ToInt64(buffer, SizeOffset);
                }

                return kind;
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
                s_nativeUnavailable = true;
            }
        }

        var fallback = FromAttributes(path, followLinks);
        if (fallback == FileKind.Regular)
        {
            try
            {
                length = new FileInfo(path).Length;
            }
            catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
            {
                return FileKind.Missing;
            }
        }

        return fallback;
    }

    /// <summary>The path as a NUL-terminated UTF-8 string in this thread's buffer (netstandard2.0 has no UTF-8 string marshalling).</summary>
    private static byte[] NullTerminated(string path)
    {
        var encoding = System.Text.Encoding.UTF8;
        int most = encoding.GetMaxByteCount(path.Length) + 1;
        var name = t_name;
        if (name is null || name.Length < most)
        {
            t_name = name = new byte[Math.Max(most, 256)];
        }

        int count = encoding.GetBytes(path, 0, path.Length, name, 0);
        name[count] = 0;
        return name;
    }

    /// <summary>A word for the kind, for messages ("a FIFO (named pipe)").</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Directory => "a directory",
        FileKind.Fifo => "a FIFO (named pipe)",
        FileKind.CharacterDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Socket => "a socket",
        FileKind.SymbolicLink => "a symbolic link",
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        _ => "not a regular file",
    };

    private static FileKind FromAttributes(string path, bool followLinks)
    {
        try
        {
            var attributes = File.GetAttributes(path);
            if (!followLinks && (attributes & FileAttributes.ReparsePoint) != 0)
            {
                return FileKind.SymbolicLink;
            }

            if ((attributes & FileAttributes.Directory) != 0)
            {
                return FileKind.Directory;
            }

            return (attributes & FileAttributes.Device) != 0 ? FileKind.CharacterDevice : FileKind.Regular;
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException || ex is ArgumentException || ex is NotSupportedException)
        {
            return FileKind.Missing;
        }
    }

    private static partial class SystemNative
    {
        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", SetLastError = true)]
        public static extern int Stat(byte[] path, [Out] byte[] output);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_LStat", SetLastError = true)]
        public static extern int LStat(byte[] path, [Out] byte[] output);
    }
}

/// <summary>
/// A file the format reads (journal, run.json, a stop request) is a directory, FIFO, device or
/// socket. An IOException, so every reader that already reports unreadable files reports this one
/// too, instead of blocking on a FIFO.
/// </summary>
public sealed class NotRegularFileException : IOException
{
    public NotRegularFileException(string path, FileKind kind)
        : base($"'{path}' is {NativeFileType.Describe(kind)}, not a regular file; it was not opened. Move it aside and restore the file from a backup or archive.")
    {
        Path = path;
        Kind = kind;
    }

    public string Path { get; }

    public FileKind Kind { get; }
}

/// <summary>The one check every input path goes through before it is opened.</summary>
public static class InputFile
{
    /// <summary>
    /// Throws <see cref="ErrorIds.NotRegularFile"/> when <paramref name="path"/> exists but is not a
    /// regular file (a directory, FIFO, device or socket; a link is judged by its target). A missing
    /// path passes: the caller reports it with its own not-found id.
    /// </summary>
    /// <param name="what">The subject of the message, e.g. "Config file" or "Run script".</param>
    /// <param name="next">What to do instead, a full sentence.</param>
    public static void RequireRegular(string path, string what, string next, RunToolsErrorCategory category = RunToolsErrorCategory.InvalidArgument)
    {
        var kind = NativeFileType.Of(path);
        if (kind is FileKind.Missing or FileKind.Regular)
        {
            return;
        }

        throw new RunToolsException(ErrorIds.NotRegularFile, category,
            $"{what} '{path}' is {NativeFileType.Describe(kind)}, not a regular file, so it is not read (reading it could block or never end). {next}", path);
    }

    /// <summary>The kind of entry at a path (links followed).</summary>
    public static FileKind KindOf(string path) => NativeFileType.Of(path);

    /// <summary>"a directory", "a FIFO (named pipe)"..., for messages.</summary>
    public static string Describe(FileKind kind) => NativeFileType.Describe(kind);
}
