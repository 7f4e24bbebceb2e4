using System;
using System.IO;
using System.Runtime.InteropServices;

namespace RunTools.Core.Infrastructure;

/// <summary>
/// Whole-file reads through the runtime's native shim, for the listing's hot path: Get-Run reads
/// every run's run.json, and a FileStream per file (the stream, its strategy and a finalizable
/// handle) was a tenth of what a listing allocated and kept the garbage collector busy.
/// </summary>
internal static partial class NativeFileType
{
    // The PAL's open flags (src/native/libs/System.Native/pal_io.h).
    private const int OpenReadOnly = 0x0000;
    private const int OpenCloseOnExec = 0x0010;

    /// <summary>
    /// Reads the regular file at <paramref name="path"/> whole into the array <paramref name="bufferFor"/>
    /// gives for its length. False when the native shim cannot be used or the file cannot be opened:
    /// the caller then reads through a FileStream, which reports a missing or unreadable file as .NET does.
    /// </summary>
    public static bool TryReadWhole(string path, Func<long, byte[]> bufferFor, out ArraySegment<byte> bytes)
    {
        bytes = default;
        if (s_nativeUnavailable)
        {
            return false;
        }

        // Stat before open: opening a FIFO blocks until a writer appears.
        var kind = Of(path, followLinks: true, out _);
        if (kind == FileKind.Missing || s_nativeUnavailable)
        {
            return false;
        }

        if (kind != FileKind.Regular)
        {
            throw new NotRegularFileException(path, kind);
        }

        IntPtr fd;
        try
        {
            fd = SystemNative.Open(NullTerminated(path), OpenReadOnly | OpenCloseOnExec, 0);
        }
        catch (Exception ex) when (ex is DllNotFoundException || ex is EntryPointNotFoundException)
        {
            s_nativeUnavailable = true;
            return false;
        }

        if (fd == new IntPtr(-1))
        {
            return false;
        }

        try
        {
            // The length of what was opened, not of what the stat saw: run.json is replaced by rename.
            var status = t_status ??= new byte[StatusBufferSize];
            if (SystemNative.FStat(fd, status) != 0)
            {
                throw new IOException($"Could not read '{path}': fstat failed (error {Marshal.GetLastWin32Error()}).");
            }

            if ((BitConverter.ToInt32(status, ModeOffset) & TypeMask) != TypeRegular)
            {
                throw new NotRegularFileException(path, FileKind.Other);
            }

            long length = BitConverter.ToInt64(status, SizeOffset);
            byte[] buffer = bufferFor(length);
            int read = 0;
            while (read < length)
            {
                int n = SystemNative.Read(fd, ref buffer[read], (int)length - read);
                if (n < 0)
                {
                    throw new IOException($"Could not read '{path}' (error {Marshal.GetLastWin32Error()}).");
                }

                if (n == 0)
                {
                    break; // shortened meanwhile: what is there is what a FileStream would have read
                }

                read += n;
            }

            bytes = new ArraySegment<byte>(buffer, 0, read);
            return true;
        }
        finally
        {
            SystemNative.Close(fd);
        }
    }

    private static partial class SystemNative
    {
        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Open", SetLastError = true)]
        public static extern IntPtr Open(byte[] path, int flags, int mode);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_FStat", SetLastError = true)]
        public static extern int FStat(IntPtr fd, [Out] byte[] output);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Read", SetLastError = true)]
        public static extern int Read(IntPtr fd, ref byte buffer, int count);

        [DllImport("libSystem.Native", EntryPoint = "SystemNative_Close", SetLastError = true)]
        public static extern int Close(IntPtr fd);
    }
}
