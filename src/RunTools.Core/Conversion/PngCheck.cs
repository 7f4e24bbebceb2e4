using System;
using System.IO;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Conversion;

/// <summary>
/// Whether a file decodes as PNG far enough to trust it, without an image library: the
/// signature, an IHDR first chunk of 13 bytes, every chunk's CRC-32, at least one IDAT, and IEND.
/// </summary>
internal static class PngCheck
{
    private static readonly byte[] s_signature = { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A };

    /// <summary>Null when the file is a whole PNG; otherwise what is wrong with it.</summary>
    public static string? Problem(string path)
    {
        byte[] bytes;
        try
        {
            bytes = DurableFile.ReadAllBytes(path);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return "unreadable: " + ex.Message;
        }

        return Problem(bytes);
    }

    public static string? Problem(byte[] bytes)
    {
        if (bytes.Length < s_signature.Length || !new ReadOnlySpan<byte>(bytes, 0, s_signature.Length).SequenceEqual(s_signature))
        {
            return "no PNG signature";
        }

        int position = s_signature.Length;
        bool first = true;
        bool sawData = false;
        while (position + 12 <= bytes.Length)
        {
            long length = ((long)bytes[position] << 24) | ((long)bytes[position + 1] << 16) | ((long)bytes[position + 2] << 8) | bytes[position + 3];
            string type = System.Text.Encoding.ASCII.GetString(bytes, position + 4, 4);
            if (length > bytes.Length - position - 12)
            {
                return $"chunk {type} at offset {position} is truncated";
            }

            int dataEnd = position + 8 + (int)length;
            uint stored = ((uint)bytes[dataEnd] << 24) | ((uint)bytes[dataEnd + 1] << 16) | ((uint)bytes[dataEnd + 2] << 8) | bytes[dataEnd + 3];
            uint actual = Crc32.Compute(new ReadOnlySpan<byte>(bytes, position + 4, 4 + (int)length));
            if (stored != actual)
            {
                return $"chunk {type} at offset {position} fails its CRC";
            }

            if (first && (type != "IHDR" || length != 13))
            {
                return "the first chunk is not a 13-byte IHDR";
            }

            first = false;
            sawData |= type == "IDAT";
            if (type == "IEND")
            {
                return sawData ? null : "no IDAT chunk (no image data)";
            }

            position = dataEnd + 4;
        }

        return "no IEND chunk (the file is truncated)";
    }
}
