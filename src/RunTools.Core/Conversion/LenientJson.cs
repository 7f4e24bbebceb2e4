using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Conversion;

/// <summary>
/// Reads legacy JSON that may be damaged. A truncated document (the writer died mid-write) is
/// rebuilt from every token that could be read: complete members are kept, the member being
/// written when the text ended is dropped.
/// </summary>
internal static class LenientJson
{
    /// <summary>The parsed object; <paramref name="complete"/> is false when the text was damaged and only a prefix was recovered.</summary>
    public static JsonObject? ParseObject(byte[] bytes, out bool complete, out string? problem)
    {
        complete = false;
        problem = null;
        int start = bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF ? 3 : 0;
        var span = new ReadOnlySpan<byte>(bytes, start, bytes.Length - start);
        try
        {
            var node = JsonNode.Parse(span.ToArray());
            if (node is JsonObject obj)
            {
                complete = true;
                return obj;
            }

            problem = "it is not a JSON object";
            return null;
        }
        catch (JsonException ex)
        {
            problem = ex.Message;
        }

        return Recover(span);
    }

    /// <summary>Rebuilds what precedes the damage: a token-by-token walk that stops at the first error.</summary>
    private static JsonObject? Recover(ReadOnlySpan<byte> span)
    {
        var reader = new Utf8JsonReader(span, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        var stack = new Stack<(JsonNode Node, string? PendingName)>();
        JsonNode? root = null;
        string? pendingName = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                        pendingName = reader.GetString();
                        continue;
                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                    {
                        JsonNode container = reader.TokenType == JsonTokenType.StartObject ? new JsonObject() : new JsonArray();
                        if (root is null)
                        {
                            root = container;
                        }
                        else
                        {
                            Add(stack.Peek().Node, pendingName, container);
                        }

                        stack.Push((container, null));
                        pendingName = null;
                        continue;
                    }

                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        stack.Pop();
                        continue;
                    default:
                        if (stack.Count == 0)
                        {
                            return null;
                        }

                        Add(stack.Peek().Node, pendingName, Scalar(ref reader));
                        pendingName = null;
                        continue;
                }
            }
        }
        catch (JsonException)
        {
            // The damage: everything read so far is kept.
        }

        return root as JsonObject;
    }

    private static void Add(JsonNode parent, string? name, JsonNode? value)
    {
        if (parent is JsonObject obj && name is not null)
        {
            obj[name] = value;
        }
        else if (parent is JsonArray array)
        {
            array.Add(value);
        }
    }

    private static JsonNode? Scalar(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => JsonValue.Create(reader.GetString()),
        JsonTokenType.Number => reader.TryGetInt64(out long l) ? JsonValue.Create(l) : JsonValue.Create(reader.GetDouble()),
        JsonTokenType.True => JsonValue.Create(true),
        JsonTokenType.False => JsonValue.Create(false),
        _ => null,
    };

    public static string? Str(JsonObject? obj, params string[] names)
    {
        foreach (string name in names)
        {
            if (obj is not null && obj.TryGetPropertyValue(name, out var node) && node is JsonValue value)
            {
                if (value.TryGetValue(out string? s))
                {
                    return s;
                }

                if (value.TryGetValue(out long l))
                {
                    return l.ToString(System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }

        return null;
    }

    public static long? Long(JsonObject? obj, string name) =>
        obj is not null && obj.TryGetPropertyValue(name, out var node) && node is JsonValue value && value.TryGetValue(out long l) ? l : null;

    /// <summary>The lines of a JSONL file, with their 1-based numbers; a last line without newline is flagged.</summary>
    public static IEnumerable<(int Number, string Text, bool Terminated)> Lines(byte[] bytes)
    {
        int number = 0;
        int start = 0;
        for (int i = 0; i <= bytes.Length; i++)
        {
            if (i == bytes.Length || bytes[i] == (byte)'\n')
            {
                number++;
                if (i == bytes.Length && start == i)
                {
                    yield break;
                }

                string text = Encoding.UTF8.GetString(bytes, start, i - start).TrimEnd('\r');
                yield return (number, text, i < bytes.Length);
                start = i + 1;
            }
        }
    }
}
