using System;
using System.ComponentModel;
using System.IO;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RunTools.Core.Infrastructure;

/// <summary>What opening and locking <c>.lock</c> came to.</summary>
internal enum LockOutcome
{
    /// <summary>Opened a regular file and locked it; <see cref="LockOpen.Handle"/> holds the lock.</summary>
    Locked,

    /// <summary>Another open file description holds the lock (a live process: the OS drops locks of dead ones).</summary>
    Busy,

    /// <summary>No such file (a probe), or the run directory itself is gone (an owner).</summary>
    Missing,

    /// <summary>The name is a symbolic link, a directory, a FIFO, a device or a socket; nothing was opened through it.</summary>
    NotRegular,

    /// <summary>EROFS: the file cannot be created or opened for writing.</summary>
    ReadOnly,

    /// <summary>EACCES/EPERM.</summary>
    AccessDenied,

    /// <summary>Any other OS failure (EIO, ENOLCK, ENOSPC, ...).</summary>
    Failed,
}

internal sealed class LockOpen
{
    public LockOpen(LockOutcome outcome, SafeFileHandle? handle = null, string? detail = null)
    {
        Outcome = outcome;
        Handle = handle;
        Detail = detail;
    }

    public LockOutcome Outcome { get; }

    /// <summary>The locked file (Locked), or the open but unlocked file (Busy, Unix only: the holder's record is read through it).</summary>
    public SafeFileHandle? Handle { get; }

    /// <summary>For NotRegular, what the name is ("a symbolic link"); otherwise the OS error text.</summary>
    public string? Detail { get; }
}

/// <summary>
/// Opening the run lock without ever following a link or opening anything but a regular file.
/// Unix: open(2) with O_NOFOLLOW|O_NONBLOCK (a FIFO cannot block), the type checked on the open
/// descriptor, then flock(2) — the same lock .NET's FileShare.None takes, so older RunTools
/// versions and other tools interoperate. Windows: CreateFileW with FILE_FLAG_OPEN_REPARSE_POINT
/// (the link itself is opened and then refused), the sharing mode being the lock.
/// </summary>
internal static class NativeLock
{
    private static readonly bool s_isWindows = RuntimeInformation.IsOSPlatform(OSPlatform.Windows);
    private static readonly bool s_isLinux = RuntimeInformation.IsOSPlatform(OSPlatform.Linux);
    private static readonly bool s_isMac = RuntimeInformation.IsOSPlatform(OSPlatform.OSX);

    /// <summary>
    /// An owner's open: read-write, created when missing, exclusive lock. Busy returns the open
    /// handle so that the holder's record can be read; the caller disposes it.
    /// </summary>
    public static LockOpen OpenForOwner(string path) => s_isWindows ? Windows.Open(path, owner: true) : Unix.Open(path, owner: true);

    /// <summary>
    /// A reader's probe: read-only, never created, a shared lock (readers do not exclude one
    /// another, an owner excludes them all). Works on a read-only file system.
    /// </summary>
    public static LockOpen OpenForProbe(string path) => s_isWindows ? Windows.Open(path, owner: false) : Unix.Open(path, owner: false);

    /// <summary>The first bytes of the lock file as the holder wrote them, without disturbing its lock; null when unreadable.</summary>
    public static byte[]? ReadRecord(string path, SafeFileHandle? openHandle)
    {
        try
        {
            if (!s_isWindows && openHandle is not null && !openHandle.IsInvalid && !openHandle.IsClosed)
            {
                // Through the descriptor already open (not owned by the stream): the file it names, not whatever the name is now.
                using var stream = new FileStream(new SafeFileHandle(openHandle.DangerousGetHandle(), ownsHandle: false), FileAccess.Read, 1);
                stream.Position = 0;
                return ReadUpTo(stream, 4096);
            }

            var reading = s_isWindows ? Windows.OpenForReading(path) : Unix.OpenForReading(path);
            if (reading is null)
            {
                return null;
            }

            using (var stream = new FileStream(reading, FileAccess.Read, 1))
            {
                return ReadUpTo(stream, 4096);
            }
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Replaces the record in the locked file: written over the old one, then cut to length, so a reader never sees it empty.</summary>
    public static void WriteRecord(SafeFileHandle locked, byte[] record)
    {
        using var stream = new FileStream(new SafeFileHandle(locked.DangerousGetHandle(), ownsHandle: false), FileAccess.ReadWrite, 1);
        stream.Position = 0;
        stream.Write(record, 0, record.Length);
        stream.SetLength(record.Length);
        stream.Flush();
    }

    /// <summary>
    /// Whether <paramref name="path"/> still names the file <paramref name="locked"/> has open: a
    /// lock taken on a file that was renamed away (the run removed meanwhile) locks nothing.
    /// </summary>
    public static bool StillNames(string path, SafeFileHandle locked)
    {
        if (s_isWindows)
        {
            // An open file's folder cannot be renamed on Windows, so the name cannot have moved.
            return true;
        }

        return Unix.StillNames(path, locked);
    }

    private static byte[] ReadUpTo(Stream stream, int max)
    {
        var buffer = new byte[max];
        int total = 0;
        int read;
        while (total < max && (read = stream.Read(buffer, total, max - total)) > 0)
        {
            total += read;
        }

        Array.Resize(ref buffer, total);
        return buffer;
    }

    private static class Unix
    {
        private const int ORdOnly = 0;
        private const int ORdWr = 2;
        private const int LockSh = 1;
        private const int LockEx = 2;
        private const int LockNb = 4;
        private const int SIfMt = 0xF000;
        private const int SIfReg = 0x8000;
        private const int EPerm = 1;
        private const int ENoEnt = 2;
        private const int EIntr = 4;
        private const int ENxio = 6;
        private const int EAcces = 13;
        private const int EExist = 17;
        private const int ENotDir = 20;
        private const int EIsDir = 21;
        private const int ERoFs = 30;
        private const int EMLink = 31; // FreeBSD's answer to O_NOFOLLOW on a link
        private const int ENoSys = 38;

        private static readonly int s_oCreat = s_isMac ? 0x200 : 0x40;
        private static readonly int s_oExcl = s_isMac ? 0x800 : 0x80;
        private static readonly int s_oNonBlock = s_isMac ? 0x4 : 0x800;
        private static readonly int s_oCloExec = s_isMac ? 0x1000000 : 0x80000;
        private static readonly int s_oNoFollow = s_isMac ? 0x100 : LinuxNoFollow();
        private static readonly int s_eWouldBlock = s_isMac ? 35 : 11;
        private static readonly int s_eLoop = s_isMac ? 62 : 40;
        private static bool s_statxMissing = !s_isLinux;

        public static LockOpen Open(string path, bool owner)
        {
            int flags = (owner ? ORdWr : ORdOnly) | s_oNoFollow | s_oNonBlock | s_oCloExec;
            while (true)
            {
                int fd = open(path, flags);
                if (fd < 0)
                {
                    int errno = Marshal.GetLastWin32Error();
                    if (errno == EIntr)
                    {
                        continue;
                    }

                    if (errno == ENoEnt && owner)
                    {
                        int created = CreateExclusive(path);
                        if (created == 0 || created == EExist)
                        {
                            continue; // now open it like any existing lock file (a racing creator is fine)
                        }

                        errno = created;
                    }

                    return Failure(path, errno);
                }

                var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
                string? notRegular = DescribeIfNotRegular(handle);
                if (notRegular is not null)
                {
                    handle.Dispose();
                    return new LockOpen(LockOutcome.NotRegular, detail: notRegular);
                }

                while (true)
                {
                    if (flock(fd, (owner ? LockEx : LockSh) | LockNb) == 0)
                    {
                        return new LockOpen(LockOutcome.Locked, handle);
                    }

                    int errno = Marshal.GetLastWin32Error();
                    if (errno == EIntr)
                    {
                        continue;
                    }

                    if (errno == s_eWouldBlock)
                    {
                        return new LockOpen(LockOutcome.Busy, handle);
                    }

                    handle.Dispose();
                    return new LockOpen(LockOutcome.Failed, detail: Text(errno));
                }
            }
        }

        public static SafeFileHandle? OpenForReading(string path)
        {
            int fd = open(path, ORdOnly | s_oNoFollow | s_oNonBlock | s_oCloExec);
            if (fd < 0)
            {
                return null;
            }

            var handle = new SafeFileHandle((IntPtr)fd, ownsHandle: true);
            if (DescribeIfNotRegular(handle) is not null)
            {
                handle.Dispose();
                return null;
            }

            return handle;
        }

        public static bool StillNames(string path, SafeFileHandle locked)
        {
            using var current = OpenForReading(path);
            if (current is null)
            {
                return false;
            }

            var a = Identify(locked);
            var b = Identify(current);
            return a is null || b is null || (a.Value.Device == b.Value.Device && a.Value.Inode == b.Value.Inode);
        }

        private static LockOpen Failure(string path, int errno)
        {
            if (errno == s_eLoop || errno == EMLink)
            {
                return new LockOpen(LockOutcome.NotRegular, detail: "a symbolic link");
            }

            if (errno == EIsDir)
            {
                return new LockOpen(LockOutcome.NotRegular, detail: "a directory");
            }

            if (errno == ENxio)
            {
                return new LockOpen(LockOutcome.NotRegular, detail: "a socket or device");
            }

            if (errno == ENoEnt || errno == ENotDir)
            {
                return new LockOpen(LockOutcome.Missing, detail: Text(errno));
            }

            if (errno == ERoFs)
            {
                return new LockOpen(LockOutcome.ReadOnly, detail: Text(errno));
            }

            if (errno == EAcces || errno == EPerm)
            {
                // A link in a sticky world-writable folder owned by someone else is refused with EACCES
                // (protected_symlinks) before O_NOFOLLOW is looked at: still a link, not a permission problem.
                return IsSymbolicLink(path)
                    ? new LockOpen(LockOutcome.NotRegular, detail: "a symbolic link")
                    : new LockOpen(LockOutcome.AccessDenied, detail: Text(errno));
            }

            return new LockOpen(LockOutcome.Failed, detail: Text(errno));
        }

        private static bool IsSymbolicLink(string path)
        {
            try
            {
                return (File.GetAttributes(path) & FileAttributes.ReparsePoint) != 0;
            }
            catch (IOException)
            {
                return false;
            }
            catch (UnauthorizedAccessException)
            {
                return false;
            }
        }

        /// <summary>O_CREAT|O_EXCL never follows a link (a dangling one included): 0 or the errno.</summary>
        private static int CreateExclusive(string path)
        {
            if (s_isLinux)
            {
                int fd = open(path, ORdWr | s_oCreat | s_oExcl | s_oNoFollow | s_oNonBlock | s_oCloExec, Convert.ToInt32("666", 8));
                if (fd < 0)
                {
                    return Marshal.GetLastWin32Error();
                }

                _ = close(fd);
                return 0;
            }

            // open(2) is variadic, and on Apple arm64 a variadic mode cannot be passed through
            // P/Invoke; .NET's CreateNew is O_CREAT|O_EXCL too.
            try
            {
                new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete, 1).Dispose();
                return 0;
            }
            catch (DirectoryNotFoundException)
            {
                return ENoEnt;
            }
            catch (UnauthorizedAccessException)
            {
                return EAcces;
            }
            catch (IOException) when (IsSymbolicLink(path) || File.Exists(path) || Directory.Exists(path))
            {
                return EExist;
            }
            catch (IOException)
            {
                return ERoFs;
            }
        }

        private static string? DescribeIfNotRegular(SafeFileHandle handle)
        {
            int? mode = Identify(handle)?.Mode;
            if (mode is null)
            {
                return null; // the type cannot be read here; the open refused links and directories already
            }

            return (mode.Value & SIfMt) switch
            {
                SIfReg => null,
                0x1000 => "a FIFO",
                0x2000 => "a character device",
                0x4000 => "a directory",
                0x6000 => "a block device",
                0xA000 => "a symbolic link",
                0xC000 => "a socket",
                _ => "not a regular file",
            };
        }

        private static (int Mode, ulong Device, ulong Inode)? Identify(SafeFileHandle handle)
        {
            int fd = (int)handle.DangerousGetHandle();
            if (!s_statxMissing)
            {
                try
                {
                    // statx's layout is the same on every Linux architecture, unlike struct stat.
                    var buffer = new byte[256];
                    const int atEmptyPath = 0x1000;
                    const uint statxTypeAndInode = 0x1 | 0x100;
                    if (statx(fd, string.Empty, atEmptyPath, statxTypeAndInode, buffer) == 0)
                    {
                        int mode = BitConverter.ToUInt16(buffer, 28);
                        ulong inode = BitConverter.ToUInt64(buffer, 32);
                        ulong device = ((ulong)BitConverter.ToUInt32(buffer, 136) << 32) | BitConverter.ToUInt32(buffer, 140);
                        return (mode, device, inode);
                    }

                    if (Marshal.GetLastWin32Error() == ENoSys)
                    {
                        s_statxMissing = true;
                    }
                }
                catch (EntryPointNotFoundException)
                {
                    s_statxMissing = true;
                }
            }

            try
            {
                // The runtime's own fstat shim: its FileStatus starts with Flags, Mode on every platform.
                var status = new byte[256];
                if (SystemNative_FStat(handle, status) == 0)
                {
                    return (BitConverter.ToInt32(status, 4), 0, 0);
                }
            }
            catch (EntryPointNotFoundException)
            {
            }
            catch (DllNotFoundException)
            {
            }

            return null;
        }

        // O_NOFOLLOW is 0x8000 on the ARM and PowerPC Linux ABIs, 0x20000 elsewhere.
        private static int LinuxNoFollow()
        {
            string arch = RuntimeInformation.ProcessArchitecture.ToString();
            return arch.StartsWith("Arm", StringComparison.OrdinalIgnoreCase) || arch.StartsWith("Ppc", StringComparison.OrdinalIgnoreCase) ? 0x8000 : 0x20000;
        }

        private static string Text(int errno) => new Win32Exception(errno).Message + " (errno " + errno.ToString(System.Globalization.CultureInfo.InvariantCulture) + ")";

        private static int open(string path, int flags) => s_isLinux ? LinuxLibc.open(path, flags) : Libc.open(path, flags);

        private static int open(string path, int flags, int mode) => LinuxLibc.open(path, flags, mode);

        private static int flock(int fd, int operation) => s_isLinux ? LinuxLibc.flock(fd, operation) : Libc.flock(fd, operation);

        private static int close(int fd) => s_isLinux ? LinuxLibc.close(fd) : Libc.close(fd);

        private static int statx(int dirfd, string path, int flags, uint mask, byte[] buffer) => LinuxLibc.statx(dirfd, path, flags, mask, buffer);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat", SetLastError = true)]
        private static extern int SystemNative_FStat(SafeFileHandle fd, [Out] byte[] status);
    }

    private static class LinuxLibc
    {
        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags, int mode);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int flock(int fd, int operation);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int close(int fd);

        [DllImport("libc.so.6", SetLastError = true)]
        public static extern int statx(int dirfd, [MarshalAs(UnmanagedType.LPStr)] string path, int flags, uint mask, [Out] byte[] buffer);
    }

    private static class Libc
    {
        [DllImport("libc", SetLastError = true)]
        public static extern int open([MarshalAs(UnmanagedType.LPStr)] string path, int flags);

        [DllImport("libc", SetLastError = true)]
        public static extern int flock(int fd, int operation);

        [DllImport("libc", SetLastError = true)]
        public static extern int close(int fd);
    }

    private static class Windows
    {
        private const uint GenericRead = 0x80000000;
        private const uint GenericWrite = 0x40000000;
        private const uint FileShareRead = 0x1;
        private const uint FileShareWrite = 0x2;
        private const uint FileShareDelete = 0x4;
        private const uint OpenExisting = 3;
        private const uint OpenAlways = 4;
        private const uint FileFlagOpenReparsePoint = 0x00200000;
        private const uint FileAttributeDirectory = 0x10;
        private const uint FileAttributeReparsePoint = 0x400;
        private const int FileTypeDisk = 1;
        private const int ErrorFileNotFound = 2;
        private const int ErrorPathNotFound = 3;
        private const int ErrorAccessDenied = 5;
        private const int ErrorWriteProtect = 19;
        private const int ErrorSharingViolation = 32;
        private const int ErrorLockViolation = 33;

        // The holder shares reading only: a second owner (which wants to write) and a probe (which
        // does not share writing) both meet a sharing violation, while ReadRecord (which shares
        // everything) can still read who holds it.
        public static LockOpen Open(string path, bool owner)
        {
            var handle = owner
                ? CreateFileW(path, GenericRead | GenericWrite, FileShareRead, IntPtr.Zero, OpenAlways, FileFlagOpenReparsePoint, IntPtr.Zero)
                : CreateFileW(path, GenericRead, FileShareRead, IntPtr.Zero, OpenExisting, FileFlagOpenReparsePoint, IntPtr.Zero);
            if (handle.IsInvalid)
            {
                int error = Marshal.GetLastWin32Error();
                handle.Dispose();
                return error switch
                {
                    ErrorSharingViolation or ErrorLockViolation => new LockOpen(LockOutcome.Busy),
                    ErrorFileNotFound or ErrorPathNotFound => new LockOpen(LockOutcome.Missing, detail: new Win32Exception(error).Message),
                    ErrorWriteProtect => new LockOpen(LockOutcome.ReadOnly, detail: new Win32Exception(error).Message),

                    // A directory cannot be opened without FILE_FLAG_BACKUP_SEMANTICS: access denied.
                    ErrorAccessDenied when Directory.Exists(path) => new LockOpen(LockOutcome.NotRegular, detail: "a directory"),
                    ErrorAccessDenied => new LockOpen(LockOutcome.AccessDenied, detail: new Win32Exception(error).Message),
                    _ => new LockOpen(LockOutcome.Failed, detail: new Win32Exception(error).Message),
                };
            }

            string? notRegular = DescribeIfNotRegular(handle);
            if (notRegular is not null)
            {
                handle.Dispose();
                return new LockOpen(LockOutcome.NotRegular, detail: notRegular);
            }

            if (!owner)
            {
                // The open itself was the probe.
                handle.Dispose();
            }

            return new LockOpen(LockOutcome.Locked, owner ? handle : null);
        }

        public static SafeFileHandle? OpenForReading(string path)
        {
            var handle = CreateFileW(path, GenericRead, FileShareRead | FileShareWrite | FileShareDelete, IntPtr.Zero, OpenExisting, FileFlagOpenReparsePoint, IntPtr.Zero);
            if (handle.IsInvalid || DescribeIfNotRegular(handle) is not null)
            {
                handle.Dispose();
                return null;
            }

            return handle;
        }

        private static string? DescribeIfNotRegular(SafeFileHandle handle)
        {
            if (GetFileType(handle) != FileTypeDisk)
            {
                return "not a regular file";
            }

            if (!GetFileInformationByHandle(handle, out var info))
            {
                return null;
            }

            return (info.FileAttributes & FileAttributeReparsePoint) != 0 ? "a symbolic link or junction"
                : (info.FileAttributes & FileAttributeDirectory) != 0 ? "a directory"
                : null;
        }

        [DllImport("kernel32.dll", CharSet = CharSet.Unicode, SetLastError = true)]
        private static extern SafeFileHandle CreateFileW(string path, uint access, uint share, IntPtr security, uint creation, uint flags, IntPtr template);

        [DllImport("kernel32.dll", SetLastError = true)]
        private static extern int GetFileType(SafeFileHandle handle);

        [DllImport("kernel32.dll", SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        private static extern bool GetFileInformationByHandle(SafeFileHandle handle, out ByHandleFileInformation info);

        [StructLayout(LayoutKind.Sequential)]
        private struct ByHandleFileInformation
        {
            // FILETIMEs are pairs of DWORDs: 4-byte aligned, so no long here.
            public uint FileAttributes;
            public uint CreationTimeLow;
            public uint CreationTimeHigh;
            public uint LastAccessTimeLow;
            public uint LastAccessTimeHigh;
            public uint LastWriteTimeLow;
            public uint LastWriteTimeHigh;
            public uint VolumeSerialNumber;
            public uint FileSizeHigh;
            public uint FileSizeLow;
            public uint NumberOfLinks;
            public uint FileIndexHigh;
            public uint FileIndexLow;
        }
    }
}
