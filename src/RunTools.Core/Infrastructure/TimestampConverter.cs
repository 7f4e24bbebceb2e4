using System;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RunTools.Core.Infrastructure;

/// <summary>One timestamp form everywhere on disk: UTC, microseconds, 'Z' (what the journal writes).</summary>
internal sealed class TimestampConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        Journal.JournalEvent.ParseTimestamp(reader.GetString());

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) =>
        writer.WriteStringValue(Journal.JournalWriter.FormatTimestamp(value));
}
