using System;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Journal;

/// <summary>
/// Formats one journal line (docs/run-format.md §3): a JSON object with seq, ts and type first and
/// <c>"crc"</c> last, ending in a newline. Every run log writes lines through it, so a database
/// store's rows are byte for byte the lines journal.jsonl would hold. Not thread-safe.
/// </summary>
internal sealed class JournalLineFormatter : IDisposable
{
    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = false,
    };

    private readonly MemoryStream _buffer = new(512);
    private readonly Utf8JsonWriter _json;
    private byte[] _line = new byte[1024];

    public JournalLineFormatter() => _json = new Utf8JsonWriter(_buffer, s_writerOptions);

    /// <summary>The last formatted line with its newline (<see cref="Length"/> bytes).</summary>
    public byte[] Buffer => _line;

    /// <summary>Bytes of the last formatted line, its newline included.</summary>
    public int Length { get; private set; }

    /// <summary>The last formatted line without its newline.</summary>
    public ReadOnlySpan<byte> Line => new(_line, 0, Math.Max(0, Length - 1));

    public void Format(long sequence, DateTimeOffset timestamp, string type, Action<Utf8JsonWriter>? payload)
    {
        _buffer.SetLength(0);
        _json.Reset(_buffer);
        _json.WriteStartObject();
        _json.WriteNumber("seq", sequence);
        _json.WriteString("ts", JournalWriter.FormatTimestamp(timestamp));
        _json.WriteString("type", type);
        payload?.Invoke(_json);
        _json.WriteEndObject();
        _json.Flush();

        int objectLength = (int)_buffer.Length;
        byte[] objectBytes = _buffer.GetBuffer();
        uint crc = Crc32.Compute(new ReadOnlySpan<byte>(objectBytes, 0, objectLength));

        int lineLength = objectLength - 1 + JournalWriter.CrcSuffixLength + 1;
        if (_line.Length < lineLength)
        {
            _line = new byte[Math.Max(lineLength, _line.Length * 2)];
        }

        System.Buffer.BlockCopy(objectBytes, 0, _line, 0, objectLength - 1);
        int at = objectLength - 1;
        foreach (char c in JournalWriter.CrcMember)
        {
            _line[at++] = (byte)c;
        }

        WriteHex(crc, _line, at);
        at += 8;
        _line[at++] = (byte)'"';
        _line[at++] = (byte)'}';
        _line[at++] = (byte)'\n';
        Length = at;
    }

    public void Dispose() => _json.Dispose();

    private static void WriteHex(uint value, byte[] target, int at)
    {
        const string digits = "0123456789abcdef";
        for (int i = 7; i >= 0; i--)
        {
            target[at + i] = (byte)digits[(int)(value & 0xF)];
            value >>= 4;
        }
    }
}
