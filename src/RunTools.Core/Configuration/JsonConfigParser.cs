using System;
using System.Collections.Generic;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

/// <summary>
/// Strict RFC 8259 reader built on Utf8JsonReader, so that duplicate keys are caught (JsonNode.Parse
/// would keep one silently or fail without a location) and every error carries line and column.
/// </summary>
internal static class JsonConfigParser
{
    public const int MaxDepth = 64;

    private static readonly UTF8Encoding _strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Parses UTF-8 JSON (an optional BOM is skipped) and returns the root, whatever its kind.</summary>
    public static JsonNode? Parse(byte[] bytes, ConfigSource source, bool allowLargeIntegers)
    {
        int start = HasBom(bytes) ? 3 : 0;
        CheckUtf8(bytes, start, source);
        var span = new ReadOnlySpan<byte>(bytes, start, bytes.Length - start);
        var reader = new Utf8JsonReader(span, new JsonReaderOptions
        {
            AllowTrailingCommas = false,
            CommentHandling = JsonCommentHandling.Disallow,
            MaxDepth = MaxDepth,
        });

        var stack = new Stack<Frame>();
        JsonNode? root = null;
        try
        {
            while (reader.Read())
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.PropertyName:
                    {
                        var frame = stack.Peek();
                        string name = ReadString(ref reader, bytes, start, source);
                        if (((JsonObject)frame.Container).ContainsKey(name))
                        {
                            var (line, column) = Locate(bytes, start, reader.TokenStartIndex);
                            throw source.DuplicateKey(name, frame.Path, line, column);
                        }

                        frame.PendingName = name;
                        break;
                    }

                    case JsonTokenType.StartObject:
                    case JsonTokenType.StartArray:
                    {
                        JsonNode container = reader.TokenType == JsonTokenType.StartObject ? new JsonObject() : new JsonArray();
                        string path = stack.Count == 0 ? string.Empty : ChildPath(stack.Peek());
                        Attach(stack, container, ref root);
                        stack.Push(new Frame(container, path));
                        break;
                    }

                    case JsonTokenType.EndObject:
                    case JsonTokenType.EndArray:
                        stack.Pop();
                        break;
                    case JsonTokenType.String:
                        Attach(stack, JsonValue.Create(ReadString(ref reader, bytes, start, source)), ref root);
                        break;
                    case JsonTokenType.Number:
                    {
                        string literal = Encoding.UTF8.GetString(reader.ValueSpan.ToArray());
                        var issue = ConfigNumbers.FromJsonLiteral(literal, allowLargeIntegers, out var number);
                        if (issue != NumberIssue.None)
                        {
                            string path = stack.Count == 0 ? string.Empty : ChildPath(stack.Peek());
                            var (line, column) = Locate(bytes, start, reader.TokenStartIndex);
                            throw issue == NumberIssue.IntegerTooLarge
                                ? source.IntegerTooLarge(path, literal, line, column)
                                : source.NotFinite(path, literal, line, column);
                        }

                        Attach(stack, number, ref root);
                        break;
                    }

                    case JsonTokenType.True:
                        Attach(stack, JsonValue.Create(true), ref root);
                        break;
                    case JsonTokenType.False:
                        Attach(stack, JsonValue.Create(false), ref root);
                        break;
                    case JsonTokenType.Null:
                        Attach(stack, null, ref root);
                        break;
                }
            }
        }
        catch (JsonException ex)
        {
            throw Syntax(ex, bytes, start, source);
        }

        return root;
    }

    /// <summary>1-based line and column (in characters) of a byte offset into the text after the BOM.</summary>
    internal static (int Line, int Column) Locate(byte[] bytes, int start, long offset)
    {
        int line = 1;
        int lineStart = start;
        long end = Math.Min(bytes.Length, start + offset);
        for (int i = start; i < end; i++)
        {
            if (bytes[i] == (byte)'\n')
            {
                line++;
                lineStart = i + 1;
            }
        }

        return (line, CountChars(bytes, lineStart, end) + 1);
    }

    private static int CountChars(byte[] bytes, int from, long to)
    {
        int count = 0;
        for (long i = from; i < to; i++)
        {
            if ((bytes[i] & 0xC0) != 0x80)
            {
                count++; // count UTF-8 lead bytes, i.e. characters, not bytes
            }
        }

        return count;
    }

    private static InvalidConfigException Syntax(JsonException ex, byte[] bytes, int start, ConfigSource source)
    {
        // The reader reports a 0-based line and a 0-based byte offset within that line.
        int line = (int)(ex.LineNumber ?? 0) + 1;
        long bytePos = ex.BytePositionInLine ?? 0;
        int lineStart = start;
        for (int i = start, seen = 1; i < bytes.Length && seen < line; i++)
        {
            if (bytes[i] == (byte)'\n')
            {
                seen++;
                lineStart = i + 1;
            }
        }

        int column = CountChars(bytes, lineStart, Math.Min(bytes.Length, lineStart + bytePos)) + 1;
        string reason = ex.Message;
        int cut = reason.IndexOf(" LineNumber:", StringComparison.Ordinal);
        if (cut < 0)
        {
            cut = reason.IndexOf(" Path:", StringComparison.Ordinal);
        }

        if (cut >= 0)
        {
            reason = reason.Substring(0, cut);
        }

        // Drop advice aimed at programmers rather than at whoever edits the file.
        reason = reason
            .Replace(" Change the reader options.", string.Empty)
            .Replace(", when isFinalBlock is true", string.Empty);
        return source.Syntax("JSON", line, column, reason, ex);
    }

    private static string ReadString(ref Utf8JsonReader reader, byte[] bytes, int start, ConfigSource source)
    {
        try
        {
            return reader.GetString() ?? string.Empty;
        }
        catch (InvalidOperationException ex)
        {
            // Escapes such as "\ud800" that decode to an unpaired surrogate.
            var (line, column) = Locate(bytes, start, reader.TokenStartIndex);
            throw source.Syntax("JSON", line, column, "the string is not valid Unicode (" + ex.Message.TrimEnd('.') + ")", ex);
        }
    }

    private static void CheckUtf8(byte[] bytes, int start, ConfigSource source)
    {
        try
        {
            _ = _strictUtf8.GetCharCount(bytes, start, bytes.Length - start);
        }
        catch (DecoderFallbackException ex)
        {
            var (line, column) = Locate(bytes, start, Math.Max(0, ex.Index));
            throw source.Syntax("JSON", line, column, "the file is not valid UTF-8", ex);
        }
    }

    private static bool HasBom(byte[] bytes) =>
        bytes.Length >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF;

    private static string ChildPath(Frame frame) =>
        frame.Container is JsonObject
            ? ConfigPath.Key(frame.Path, frame.PendingName ?? string.Empty)
            : ConfigPath.Index(frame.Path, ((JsonArray)frame.Container).Count);

    private static void Attach(Stack<Frame> stack, JsonNode? value, ref JsonNode? root)
    {
        if (stack.Count == 0)
        {
            root = value;
            return;
        }

        var frame = stack.Peek();
        if (frame.Container is JsonObject obj)
        {
            obj.Add(frame.PendingName!, value);
            frame.PendingName = null;
        }
        else
        {
            ((JsonArray)frame.Container).Add(value);
        }
    }

    private sealed class Frame
    {
        public Frame(JsonNode container, string path)
        {
            Container = container;
            Path = path;
        }

        public JsonNode Container { get; }

        public string Path { get; }

        public string? PendingName { get; set; }
    }
}
