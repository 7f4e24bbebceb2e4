using System;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Journal;

/// <summary>One verified journal line, as readers see it.</summary>
public sealed class JournalEvent
{
    private readonly byte[] _raw;
    private JsonObject? _data;

    internal JournalEvent(long sequence, DateTimeOffset timestamp, string type, string? step, string? key, int? attempt, long offset, byte[] raw)
    {
        Sequence = sequence;
        Timestamp = timestamp;
        Type = type;
        Step = step;
        Key = key;
        Attempt = attempt;
        Offset = offset;
        _raw = raw;
    }

    public long Sequence { get; }

    public DateTimeOffset Timestamp { get; }

    public string Type { get; }

    public string? Step { get; }

    public string? Key { get; }

    public int? Attempt { get; }

    /// <summary>
    /// Where the event is read from again: the byte offset of its line in journal.jsonl; for a run
    /// held in a database, its seq − 1 (that store reads the events after a seq).
    /// </summary>
    public long Offset { get; }

    /// <summary>The line as written, without its newline.</summary>
    public string RawLine => System.Text.Encoding.UTF8.GetString(_raw);

    /// <summary>All members of the line except seq, ts, type and crc.</summary>
    public JsonObject Data => _data ??= ParseData();

    /// <summary><see cref="Data"/> as ordered dictionaries and plain values.</summary>
    public System.Collections.IDictionary DataDictionary => Configuration.PlainValues.FromObject(Data);

    internal ReadOnlySpan<byte> RawBytes => _raw;

    private JsonObject ParseData()
    {
        var node = JsonNode.Parse(_raw) as JsonObject ?? new JsonObject();
        node.Remove("seq");
        node.Remove("ts");
        node.Remove("type");
        node.Remove("crc");
        return node;
    }

    internal static DateTimeOffset ParseTimestamp(string? text) =>
        text is not null && DateTimeOffset.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal | System.Globalization.DateTimeStyles.AdjustToUniversal, out var value)
            ? value
            : default;

    internal JsonElement ParseElement()
    {
        using var document = JsonDocument.Parse(_raw);
        return document.RootElement.Clone();
    }
}
