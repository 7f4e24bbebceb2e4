using System;
using System.IO;
using System.Runtime.InteropServices;

namespace RunTools.Core.Infrastructure;

/// <summary>
/// fsync with its result checked, for files and directories. .NET's FileStream.Flush(true) on
/// Unix ignores EROFS, EINVAL and ENOTSUP from fsync (FileStreamHelpers.Unix FlushToDisk treats
/// them as "a special file"), so a write the disk refused would be taken as durable; and .NET has
/// no way to flush a directory entry at all. Windows: FlushFileBuffers through .NET (whose errors
/// .NET does raise); NTFS journals directory entries itself, so a directory flush is a no-op there.
/// </summary>
internal static class NativeMethods
{
    private const int EINTR = 4;
    private const int EINVAL = 22;
    private const int LinuxENOTSUP = 95;
    private const int MacENOTSUP = 45;
    private const int MacEOPNOTSUPP = 102;
    private const int LinuxOCloexec = 0x80000;
    private const int MacOCloexec = 0x1000000;
    private const int MacFFullFsync = 51;

    private static readonly bool s_isLinux = RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
    private static readonly bool s_isWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);
    private static readonly bool s_isMac = RuntimeInformation.IsOSPlatform(OSPlatform.OSX);

    public static bool IsWindows => s_isWindows;

    /// <summary>Pushes the stream's buffer to the OS, then fsyncs the file; throws IOException with the OS error when the disk refuses.</summary>
    public static void FlushFile(FileStream stream, string path)
    {
        stream.Flush(flushToDisk: false);
        int injected = FaultPoints.Check(DurableOp.FileSync, path);
        if (injected != 0)
        {
            throw ErrnoException(injected, $"fsync of '{path}'", injected: true);
        }

        if (s_isWindows)
        {
            stream.Flush(flushToDisk: true);
            return;
        }

        var handle = stream.SafeFileHandle;
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int errno = Sync(fd);
            if (errno != 0 && !IsUnsupported(errno))
            {
                throw ErrnoException(errno, $"fsync of '{path}'", injected: false);
            }
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    /// <summary>
    /// Flushes a directory, so that a rename or a new entry in it survives a power loss. Failures
    /// throw IOException, except EINVAL/ENOTSUP from fsync: the file system cannot sync a
    /// directory at all (some network and FUSE file systems), and there is nothing more to do.
    /// </summary>
    public static void FlushDirectory(string directory)
    {
        int injected = FaultPoints.Check(DurableOp.DirectorySync, directory);
        if (injected != 0)
        {
            throw ErrnoException(injected, $"fsync of the folder '{directory}'", injected: true);
        }

        if (s_isWindows)
        {
            return;
        }

        int fd = s_isLinux ? LinuxLibc.open(directory, LinuxOCloexec) : Libc.open(directory, s_isMac ? MacOCloexec : 0);
        if (fd < 0)
        {
            throw ErrnoException(Marshal.GetLastWin32Error(), $"opening the folder '{directory}' to flush it", injected: false);
        }

        try
        {
            int errno = Sync(fd);
            if (errno != 0 && !IsUnsupported(errno))
            {
                throw ErrnoException(errno, $"fsync of the folder '{directory}'", injected: false);
            }
        }
        finally
        {
            _ = s_isLinux ? LinuxLibc.close(fd) : Libc.close(fd);
        }
    }

    /// <summary>An IOException whose message is the OS's text for <paramref name="errno"/>, e.g. "No space left on device".</summary>
    public static IOException ErrnoException(int errno, string during, bool injected) =>
        new($"{Describe(errno)} (errno {errno}, {during}{(injected ? ", injected by a test" : string.Empty)}).", errno);

    private static int Sync(int fd)
    {
        if (s_isMac && Libc.fcntl(fd, MacFFullFsync, 0) == 0)
        {
            // fsync on macOS does not reach the platter; F_FULLFSYNC does, where the file system supports it.
            return 0;
        }

        while (true)
        {
            int result = s_isLinux ? LinuxLibc.fsync(fd) : Libc.fsync(fd);
            if (result == 0)
            {
                return 0;
            }

            int errno = Marshal.GetLastWin32Error();
            if (errno != EINTR)
            {
                return errno;
            }
        }
    }

    private static bool IsUnsupported(int errno) =>
        errno == EINVAL || (s_isLinux ? errno == LinuxENOTSUP : errno == MacENOTSUP || errno == MacEOPNOTSUPP);

    private static string Describe(int errno)
    {
        if (!s_isWindows)
        {
            try
            {
                IntPtr text = s_isLinux ? LinuxLibc.strerror(errno) : Libc.strerror(errno);
                if (text != IntPtr.Zero && Marshal.PtrToStringAnsi(text) is { Length: > 0 } message)
                {
                    return message;
                }
            }
            catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
            {
            }
        }

        return errno switch
        {
            FaultInjector.ENOSPC => "No space left on device",
            FaultInjector.EROFS => "Read-only file system",
            FaultInjector.EIO => "Input/output error",
            _ => "I/O error",
        };
    }

    private static class LinuxLibc
    {
        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int close(int fd);

        [DllImport("libc.so.6")]
        public static extern IntPtr strerror(int errnum);
    }

    private static class Libc
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int fcntl(int fd, int command, int argument);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);

        [DllImport("libc")]
        public static extern IntPtr strerror(int errnum);
    }
}
