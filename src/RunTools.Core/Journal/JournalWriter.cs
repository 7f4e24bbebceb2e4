using System;
using System.Globalization;
using System.IO;
using System.Text.Encodings.Web;
using System.Text.Json;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Journal;

/// <summary>
/// Appends events to journal.jsonl. Each line is one JSON object whose last member is
/// <c>"crc"</c>: CRC-32 of the line with that member removed. A durable append is flushed to
/// disk before it returns; a failed append is cut back off, so the journal never keeps half a line.
/// </summary>
internal sealed class JournalWriter : IDisposable
{
    internal const string CrcMember = ",\"crc\":\"";
    internal const int CrcSuffixLength = 18; // ,"crc":"xxxxxxxx"}

    private static readonly JsonWriterOptions s_writerOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
        SkipValidation = false,
    };

    private readonly FileStream _stream;
    private readonly MemoryStream _buffer = new(512);
    private readonly Utf8JsonWriter _json;
    private byte[] _line = new byte[1024];
    private long _length;
    private int _lastLineLength;

    public JournalWriter(string path, long validLength, long lastSequence)
    {
        Path = path;
        try
        {
            _stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete, 1, FileOptions.None);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            throw DurableFile.Failed($"Could not open the journal '{path}' for appending", path, ex, "Nothing was recorded.");
        }

        if (_stream.Length != validLength)
        {
            try
            {
                _stream.SetLength(validLength);
                DurableFile.Sync(_stream, path);
            }
            catch (IOException ex)
            {
                _stream.Dispose();
                throw DurableFile.Failed($"Could not cut the unfinished last line off the journal '{path}'", path, ex, "Nothing was recorded.");
            }
        }

        _stream.Position = validLength;
        _length = validLength;
        LastSequence = lastSequence;
        _json = new Utf8JsonWriter(_buffer, s_writerOptions);
    }

    public string Path { get; }

    public long LastSequence { get; private set; }

    public long Length => _length;

    /// <summary>The line the last Append wrote, without its newline.</summary>
    public ReadOnlySpan<byte> LastLine => new(_line, 0, _lastLineLength);

    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Appends one event; returns its sequence number and the offset of its line.</summary>
    public (long Sequence, long Offset) Append(string type, DateTimeOffset timestamp, Action<Utf8JsonWriter>? payload, bool durable = true)
    {
        long sequence = LastSequence + 1;
        _buffer.SetLength(0);
        _json.Reset(_buffer);
        _json.WriteStartObject();
        _json.WriteNumber("seq", sequence);
        _json.WriteString("ts", FormatTimestamp(timestamp));
        _json.WriteString("type", type);
        payload?.Invoke(_json);
        _json.WriteEndObject();
        _json.Flush();

        int objectLength = (int)_buffer.Length;
        byte[] objectBytes = _buffer.GetBuffer();
        uint crc = Crc32.Compute(new ReadOnlySpan<byte>(objectBytes, 0, objectLength));

        int lineLength = objectLength - 1 + CrcSuffixLength + 1;
        if (_line.Length < lineLength)
        {
            _line = new byte[Math.Max(lineLength, _line.Length * 2)];
        }

        Buffer.BlockCopy(objectBytes, 0, _line, 0, objectLength - 1);
        int at = objectLength - 1;
        foreach (char c in CrcMember)
        {
            _line[at++] = (byte)c;
        }

        WriteHex(crc, _line, at);
        at += 8;
        _line[at++] = (byte)'"';
        _line[at++] = (byte)'}';
        _line[at++] = (byte)'\n';

        long offset = _length;
        try
        {
            int injected = FaultPoints.Check(DurableOp.Write, Path);
            if (injected != 0)
            {
                // As a full disk does: part of the line lands, then the write fails.
                _stream.Write(_line, 0, at / 2);
                throw NativeMethods.ErrnoException(injected, $"write to '{Path}'", injected: true);
            }

            _stream.Write(_line, 0, at);
            if (durable)
            {
                DurableFile.Sync(_stream, Path);
            }
        }
        catch (IOException ex)
        {
            CutBack(offset);
            throw DurableFile.Failed($"Could not append a '{type}' event to the journal '{Path}'", Path, ex,
                "The event was not recorded, so its unit does not count as done.");
        }

        _length = offset + at;
        _lastLineLength = at - 1;
        LastSequence = sequence;
        return (sequence, offset);
    }

    /// <summary>Makes every earlier non-durable append durable; WriteFailed when the disk refuses.</summary>
    public void Flush()
    {
        try
        {
            DurableFile.Sync(_stream, Path);
        }
        catch (IOException ex)
        {
            throw DurableFile.Failed($"Could not flush the journal '{Path}' to disk", Path, ex,
                "Events appended since the last flush may be lost in a power loss, so nothing after them counts as done.");
        }
    }

    public void Dispose()
    {
        _json.Dispose();
        _stream.Dispose();
    }

    private void CutBack(long length)
    {
        try
        {
            _stream.SetLength(length);
            _stream.Position = length;
            DurableFile.Sync(_stream, Path);
        }
        catch (IOException)
        {
            // Still torn: readers ignore a bad tail and the next owner repairs it.
        }
    }

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
