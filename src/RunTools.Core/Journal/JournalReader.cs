using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Journal;

/// <summary>Reads journal.jsonl line by line in large chunks; a line is complete only with its newline.</summary>
internal sealed class JournalLineReader : IDisposable
{
    private readonly FileStream? _stream;
    private byte[] _buffer;
    private int _start;
    private int _filled;
    private long _bufferOffset;
    private bool _eof;

    public JournalLineReader(string path, long startOffset, int chunkSize = 1 << 20)
    {
        try
        {
            _stream = DurableFile.OpenRead(path, 1);
        }
        catch (Exception ex) when (ex is FileNotFoundException || ex is DirectoryNotFoundException)
        {
            _buffer = Array.Empty<byte>();
            _eof = true;
            return;
        }

        long length = _stream.Length;
        if (startOffset > length)
        {
            startOffset = length;
        }

        // A short tail (the common case when listing runs) must not cost a 1 MiB buffer per run.
        _buffer = new byte[(int)Math.Max(256, Math.Min(chunkSize, length - startOffset + 1))];

        _stream.Position = startOffset;
        _bufferOffset = startOffset;
    }

    public long LineOffset { get; private set; }

    public int LineStart { get; private set; }

    public int LineLength { get; private set; }

    /// <summary>Bytes after the last newline when the end was reached (a torn write, or one in progress).</summary>
    public long TailLength { get; private set; }

    public long EndOffset => _bufferOffset + _filled;

    public ReadOnlySpan<byte> Line => new(_buffer, LineStart, LineLength);

    public bool MoveNext()
    {
        while (true)
        {
            int newline = Array.IndexOf(_buffer, (byte)'\n', _start, _filled - _start);
            if (newline >= 0)
            {
                LineStart = _start;
                LineLength = newline - _start;
                LineOffset = _bufferOffset + _start;
                _start = newline + 1;
                return true;
            }

            if (_eof || _stream is null)
            {
                TailLength = _filled - _start;
                return false;
            }

            Refill();
        }
    }

    public void Dispose() => _stream?.Dispose();

    private void Refill()
    {
        int remaining = _filled - _start;
        if (_start > 0)
        {
            Buffer.BlockCopy(_buffer, _start, _buffer, 0, remaining);
            _bufferOffset += _start;
            _start = 0;
            _filled = remaining;
        }
        if (_filled == _buffer.Length)
        {
            Array.Resize(ref _buffer, _buffer.Length * 2);
        }

        int read = _stream!.Read(_buffer, _filled, _buffer.Length - _filled);
        if (read == 0)
        {
            _eof = true;
        }

        _filled += read;
    }
}

/// <summary>The members of a line that readers need without building a DOM.</summary>
internal struct ParsedLine
{
    public long Sequence;
    public string Type;
    public string? Step;
    public string? Key;
    public int? Attempt;
    public string? Previous;

    /// <summary>A transcribed worker event (run-format §5.5): the worker's id and its own sequence number; null and 0 otherwise.</summary>
    public string? Worker;
    public long WorkerSequence;

    /// <summary>item_resolved / step_resolved: the in-doubt unit was resolved as skip (not retry).</summary>
    public bool ResolvedAsSkip;

    /// <summary>step_started: the step only runs items, so it is never in doubt itself.</summary>
    public bool ItemsOnly;

    /// <summary>item_completed: the line carries a recorded output (read only when a replay asks for it).</summary>
    public bool HasOutput;

    /// <summary>Where the ts value lies in the line (no string is made unless asked for).</summary>
    public int TimestampStart;
    public int TimestampLength;
    public string? EscapedTimestamp;

    public readonly string? TimestampText(ReadOnlySpan<byte> raw) =>
        EscapedTimestamp ?? (TimestampLength > 0 ? System.Text.Encoding.UTF8.GetString(raw.Slice(TimestampStart, TimestampLength).ToArray()) : null);
}

/// <summary>Verifies a line's checksum and pulls out its well-known members.</summary>
internal sealed class JournalLineParser
{
    private static readonly byte[][] s_typeBytes = Array.ConvertAll(JournalEventTypes.All, Encoding.UTF8.GetBytes);
    private static readonly byte[] s_crcMember = Encoding.ASCII.GetBytes(JournalWriter.CrcMember);
    private string? _lastStep;
    private string? _lastKey;

    public bool TryParse(ReadOnlySpan<byte> line, bool wantTimestamp, out ParsedLine parsed, out string? error)
    {
        parsed = default;
        if (!HasValidChecksum(line, out error))
        {
            return false;
        }

        try
        {
            var reader = new Utf8JsonReader(line, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                error = "not a JSON object";
                return false;
            }

            bool haveSequence = false;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("seq"u8))
                {
                    reader.Read();
                    haveSequence = reader.TryGetInt64(out parsed.Sequence);
                }
                else if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    parsed.Type = InternType(ref reader);
                }
                else if (reader.ValueTextEquals("step"u8))
                {
                    reader.Read();
                    parsed.Step = InternStep(ref reader);
                }
                else if (reader.ValueTextEquals("key"u8))
                {
                    reader.Read();
                    parsed.Key = InternKey(ref reader);
                }
                else if (reader.ValueTextEquals("attempt"u8))
                {
                    reader.Read();
                    parsed.Attempt = reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out int attempt) ? attempt : null;
                }
                else if (reader.ValueTextEquals("previous"u8))
                {
                    reader.Read();
                    parsed.Previous = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("resolution"u8))
                {
                    reader.Read();
                    parsed.ResolvedAsSkip = reader.TokenType == JsonTokenType.String && reader.ValueTextEquals("skip"u8);
                }
                else if (reader.ValueTextEquals("output"u8))
                {
                    parsed.HasOutput = true;
                    reader.Read();
                    reader.Skip();
                }
                else if (reader.ValueTextEquals("worker"u8))
                {
                    reader.Read();
                    parsed.Worker = reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                }
                else if (reader.ValueTextEquals("worker_seq"u8))
                {
                    reader.Read();
                    parsed.WorkerSequence = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out long workerSequence) ? workerSequence : 0;
                }
                else if (reader.ValueTextEquals("items_only"u8))
                {
                    reader.Read();
                    parsed.ItemsOnly = reader.TokenType == JsonTokenType.True;
                }
                else if (wantTimestamp && reader.ValueTextEquals("ts"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.String)
                    {
                        if (reader.ValueIsEscaped)
                        {
                            parsed.EscapedTimestamp = reader.GetString();
                        }
                        else
                        {
                            parsed.TimestampStart = (int)reader.TokenStartIndex + 1;
                            parsed.TimestampLength = reader.ValueSpan.Length;
                        }
                    }
                }
                else
                {
                    reader.Read();
                    reader.Skip();
                }
            }

            if (!haveSequence || parsed.Type is null)
            {
                error = "missing seq or type";
                return false;
            }

            return true;
        }
        catch (JsonException ex)
        {
            error = "not valid JSON: " + ex.Message;
            return false;
        }
        catch (InvalidOperationException ex)
        {
            // A member of the wrong JSON type (seq as a string, ...): not a line this format writes.
            error = "a member has the wrong type: " + ex.Message;
            return false;
        }
    }

    internal static bool HasValidChecksum(ReadOnlySpan<byte> line, out string? error)
    {
        error = null;
        int suffix = JournalWriter.CrcSuffixLength;
        if (line.Length < suffix + 2 || line[line.Length - 1] != (byte)'}' || line[line.Length - 2] != (byte)'"'
            || !line.Slice(line.Length - suffix, s_crcMember.Length).SequenceEqual(s_crcMember))
        {
            error = "no checksum member at the end of the line";
            return false;
        }

        if (!TryParseHex(line.Slice(line.Length - 10, 8), out uint expected))
        {
            error = "checksum is not 8 hex digits";
            return false;
        }

        uint actual = Crc32.Append(Crc32.Compute(line.Slice(0, line.Length - suffix)), "}"u8);
        if (actual != expected)
        {
            error = $"checksum mismatch (line says {expected:x8}, content is {actual:x8})";
            return false;
        }

        return true;
    }

    private static bool TryParseHex(ReadOnlySpan<byte> hex, out uint value)
    {
        value = 0;
        foreach (byte b in hex)
        {
            int digit = b >= '0' && b <= '9' ? b - '0' : b >= 'a' && b <= 'f' ? b - 'a' + 10 : -1;
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | (uint)digit;
        }

        return true;
    }

    private static string InternType(ref Utf8JsonReader reader)
    {
        for (int i = 0; i < s_typeBytes.Length; i++)
        {
            if (reader.ValueTextEquals(s_typeBytes[i]))
            {
                return JournalEventTypes.All[i];
            }
        }

        return reader.GetString() ?? string.Empty;
    }

    // An item's started and completed lines name the same key; reuse the string.
    private string? InternKey(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            return null;
        }

        if (_lastKey is not null && reader.ValueTextEquals(_lastKey))
        {
            return _lastKey;
        }

        _lastKey = reader.GetString();
        return _lastKey;
    }

    private string? InternStep(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            return null;
        }

        if (_lastStep is not null && reader.ValueTextEquals(_lastStep))
        {
            return _lastStep;
        }

        _lastStep = reader.GetString();
        return _lastStep;
    }
}

/// <summary>A line that failed verification.</summary>
public sealed class JournalDefect
{
    internal JournalDefect(long offset, long length, string reason)
    {
        Offset = offset;
        Length = length;
        Reason = reason;
    }

    public long Offset { get; }

    public long Length { get; }

    public string Reason { get; }
}

/// <summary>What a scan of the journal found besides its events.</summary>
public sealed class JournalScanResult
{
    /// <summary>Offset just past the last verified line: where the next owner appends.</summary>
    public long ValidLength { get; internal set; }

    public long LastSequence { get; internal set; }

    public long FileLength { get; internal set; }

    public int ValidLines { get; internal set; }

    /// <summary>Bytes after the last verified line (a torn write); ignored, and cut off by the next owner.</summary>
    public long TornTailLength => FileLength - ValidLength;

    /// <summary>Unverifiable lines followed by verified ones: damage inside the file, skipped by readers.</summary>
    public List<JournalDefect> CorruptLines { get; } = new();

    /// <summary>Places where seq does not follow the previous line by one.</summary>
    public List<string> SequenceGaps { get; } = new();

    public DateTimeOffset? LastTimestamp { get; internal set; }
}

internal interface IJournalVisitor
{
    /// <summary>Whether the visitor needs the ts member of this kind of line.</summary>
    bool WantsTimestamp { get; }

    void Visit(in ParsedLine line, long offset, ReadOnlySpan<byte> raw);
}

internal static class JournalScanner
{
    public static JournalScanResult Scan(string path, long startOffset, long startSequence, IJournalVisitor? visitor)
    {
        var result = new JournalScanResult { ValidLength = startOffset, LastSequence = startSequence };
        var parser = new JournalLineParser();
        var pending = new List<JournalDefect>();
        // The last line's ts, copied into one reused buffer: no string per line.
        byte[] lastTimestamp = new byte[64];
        int lastTimestampLength = 0;
        string? lastEscapedTimestamp = null;
        using (var reader = new JournalLineReader(path, startOffset))
        {
            while (reader.MoveNext())
            {
                var line = reader.Line;
                if (parser.TryParse(line, wantTimestamp: true, out var parsed, out string? error))
                {
                    if (parsed.Sequence != result.LastSequence + 1)
                    {
                        result.SequenceGaps.Add($"seq {parsed.Sequence} follows seq {result.LastSequence} at offset {reader.LineOffset}");
                    }

                    result.CorruptLines.AddRange(pending);
                    pending.Clear();
                    result.LastSequence = parsed.Sequence;
                    result.ValidLength = reader.LineOffset + reader.LineLength + 1;
                    result.ValidLines++;
                    lastEscapedTimestamp = parsed.EscapedTimestamp;
                    lastTimestampLength = parsed.TimestampLength;
                    if (lastTimestampLength > lastTimestamp.Length)
                    {
                        lastTimestamp = new byte[lastTimestampLength];
                    }

                    line.Slice(parsed.TimestampStart, lastTimestampLength).CopyTo(lastTimestamp);
                    visitor?.Visit(in parsed, reader.LineOffset, line);
                }
                else
                {
                    pending.Add(new JournalDefect(reader.LineOffset, reader.LineLength + 1, error ?? "unreadable"));
                }
            }

            result.FileLength = reader.EndOffset;
        }

        if (result.ValidLines > 0)
        {
            result.LastTimestamp = JournalEvent.ParseTimestamp(lastEscapedTimestamp ?? Encoding.UTF8.GetString(lastTimestamp, 0, lastTimestampLength));
        }

        return result;
    }

    /// <summary>Every verified event from <paramref name="startOffset"/>, streamed.</summary>
    public static IEnumerable<JournalEvent> ReadEvents(string path, long startOffset = 0)
    {
        var parser = new JournalLineParser();
        using var reader = new JournalLineReader(path, startOffset);
        while (reader.MoveNext())
        {
            if (parser.TryParse(reader.Line, wantTimestamp: true, out var parsed, out _))
            {
                byte[] raw = reader.Line.ToArray();
                yield return new JournalEvent(parsed.Sequence, JournalEvent.ParseTimestamp(parsed.TimestampText(raw)), parsed.Type,
                    parsed.Step, parsed.Key, parsed.Attempt, reader.LineOffset, raw);
            }
        }
    }

    /// <summary>The verified line at <paramref name="offset"/>, or null.</summary>
    public static JournalEvent? ReadEventAt(string path, long offset)
    {
        var parser = new JournalLineParser();
        using var reader = new JournalLineReader(path, offset, 64 * 1024);
        return reader.MoveNext() && reader.LineOffset == offset ? ParseEvent(parser, reader.Line, offset) : null;
    }

    /// <summary>One verified line (without its newline) as an event, or null when it does not verify.</summary>
    public static JournalEvent? ParseEvent(JournalLineParser parser, ReadOnlySpan<byte> line, long offset)
    {
        if (!parser.TryParse(line, true, out var parsed, out _))
        {
            return null;
        }

        byte[] raw = line.ToArray();
        return new JournalEvent(parsed.Sequence, JournalEvent.ParseTimestamp(parsed.TimestampText(raw)), parsed.Type,
            parsed.Step, parsed.Key, parsed.Attempt, offset, raw);
    }
}
