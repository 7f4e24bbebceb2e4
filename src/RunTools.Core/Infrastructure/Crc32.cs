using System;

namespace RunTools.Core.Infrastructure;

/// <summary>
/// CRC-32 (IEEE 802.3, the zlib/PNG polynomial), so any language can check a journal line
/// with its standard library (Python: zlib.crc32). Slicing-by-8 keeps it far below fsync cost.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] s_table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Continues a CRC over more bytes: Append(Append(0, a), b) == Compute(a + b).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        var table = s_table;
        uint c = ~crc;
        int i = 0;
        while (data.Length - i >= 8)
        {
            uint one = c ^ (uint)(data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24);
            uint two = (uint)(data[i + 4] | data[i + 5] << 8 | data[i + 6] << 16 | data[i + 7] << 24);
            c = table[(7 * 256) + (one & 0xFF)] ^ table[(6 * 256) + ((one >> 8) & 0xFF)]
              ^ table[(5 * 256) + ((one >> 16) & 0xFF)] ^ table[(4 * 256) + (one >> 24)]
              ^ table[(3 * 256) + (two & 0xFF)] ^ table[(2 * 256) + ((two >> 8) & 0xFF)]
              ^ table[(1 * 256) + ((two >> 16) & 0xFF)] ^ table[two >> 24];
            i += 8;
        }

        for (; i < data.Length; i++)
        {
            c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
        }

        return ~c;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[8 * 256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            }

            table[n] = c;
        }

        for (int slice = 1; slice < 8; slice++)
        {
            for (int n = 0; n < 256; n++)
            {
                uint prev = table[((slice - 1) * 256) + n];
                table[(slice * 256) + n] = (prev >> 8) ^ table[prev & 0xFF];
            }
        }

        return table;
    }
}
