using System;
using System.Runtime.InteropServices;

namespace RunTools.Core.Infrastructure;

/// <summary>
/// The one thing .NET cannot do portably: flush a directory entry (a rename) to disk on Unix.
/// Windows (NTFS) journals metadata itself, so there it is a no-op.
/// </summary>
internal static class NativeMethods
{
    private static readonly bool s_isLinux = RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
    private static readonly bool s_isWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);

    public static bool IsWindows => s_isWindows;

    public static void FlushDirectory(string directory)
    {
        if (s_isWindows)
        {
            return;
        }

        int fd = s_isLinux ? LinuxLibc.open(directory, 0) : Libc.open(directory, 0);
        if (fd < 0)
        {
            // A directory we cannot open for flushing is not worth failing a committed write over;
            // the rename itself has happened and the journal is the source of truth.
            return;
        }

        try
        {
            _ = s_isLinux ? LinuxLibc.fsync(fd) : Libc.fsync(fd);
        }
        finally
        {
            _ = s_isLinux ? LinuxLibc.close(fd) : Libc.close(fd);
        }
    }

    private static class LinuxLibc
    {
        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int close(int fd);
    }

    private static class Libc
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int fsync(int fd);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }
}
