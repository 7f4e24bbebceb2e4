using System;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RunTools.Core.Infrastructure;

/// <summary>One timestamp form everywhere on disk: UTC, microseconds, 'Z' (what the journal writes).</summary>
internal sealed class TimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        // The form this converter writes ('Z', UTC) parsed by the reader's own ISO 8601 parser, with no
        // string: a listing reads two to four per run. Anything else (an offset, no zone) as before.
        if (reader.TokenType == JsonTokenType.String && !reader.HasValueSequence && !reader.ValueIsEscaped
            && reader.ValueSpan is { Length: > 0 } text && text[text.Length - 1] == (byte)'Z'
            && reader.TryGetDateTimeOffset(out var value))
        {
            return value;
        }

        return Journal.JournalEvent.ParseTimestamp(reader.GetString());
    }

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Journal.JournalWriter.FormatTimestamp(value));
}
