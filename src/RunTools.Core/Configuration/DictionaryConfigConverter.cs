using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.Numerics;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

/// <summary>
/// Turns a hashtable-shaped object graph (PowerShell's Hashtable / OrderedDictionary, already
/// unwrapped from PSObject by the cmdlets) into JSON nodes, refusing anything that would not
/// survive a round trip through config.json.
/// </summary>
internal static class DictionaryConfigConverter
{
    private const string Allowed = "use strings, numbers, booleans, arrays and hashtables";

    public static JsonObject Convert(IDictionary dictionary) =>
        ConvertDictionary(dictionary, string.Empty, 1, new HashSet<object>(ByReference.Instance));

    /// <summary>Converts one value; exposed for JsonNode validation, where the path is already known.</summary>
    public static JsonNode? ConvertValue(object? value, string path, int depth) => ConvertValue(value, path, depth, new HashSet<object>(ByReference.Instance));

    /// <param name="ancestors">The dictionaries and lists being converted around this value: meeting one again is a cycle.</param>
    private static JsonNode? ConvertValue(object? value, string path, int depth, HashSet<object> ancestors)
    {
        switch (value)
        {
            case null:
            case DBNull:
                return null;
            case string s:
                return JsonValue.Create(s);
            case char c:
                return JsonValue.Create(c.ToString());
            case bool b:
                return JsonValue.Create(b);
            case sbyte or byte or short or ushort or int or uint or long:
                return Integer(System.Convert.ToInt64(value, CultureInfo.InvariantCulture), value, path);
            case ulong ul:
                return Integer(ul, value, path);
            case BigInteger big:
                return Integer(big, value, path);
            case float f:
                // Through the shortest text, so 1.1f becomes 1.1 rather than 1.100000023841858.
                return Double(double.Parse(f.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture), value, path);
            case double d:
                return Double(d, value, path);
            case decimal m:
                // Whole decimals are integers to the user (PowerShell types 12345678901234567890 as
                // decimal), so the 2^53 rule applies; fractions convert to double as RFC 8785 does.
                return decimal.Truncate(m) == m
                    ? Integer(new BigInteger(m), value, path)
                    : Double((double)m, value, path);
            case DateTime dt:
                return JsonValue.Create(dt.ToString("o", CultureInfo.InvariantCulture));
            case DateTimeOffset dto:
                return JsonValue.Create(dto.ToString("o", CultureInfo.InvariantCulture));
            case TimeSpan ts:
                return JsonValue.Create(ts.ToString("c", CultureInfo.InvariantCulture));
            case Guid g:
                return JsonValue.Create(g.ToString("D", CultureInfo.InvariantCulture));
            case Uri uri:
                return JsonValue.Create(uri.OriginalString); // what the user wrote, not the escaped form
            case Enum e:
                return JsonValue.Create(e.ToString());
            case JsonNode node:
                return FromJsonNode(node, path, depth);
            case JsonElement element:
                return FromJsonElement(element, path, depth);
            case IDictionary nested:
                return ConvertDictionary(nested, path, depth, ancestors);
            case IEnumerable sequence:
            {
                CheckDepth(path, depth);
                Enter(sequence, path, ancestors);
                var array = new JsonArray();
                foreach (object? item in sequence)
                {
                    array.Add(ConvertValue(item, ConfigPath.Index(path, array.Count), depth + 1, ancestors));
                }

                ancestors.Remove(sequence);
                return array;
            }

            default:
                throw new InvalidConfigException(
                    $"Config value at '{ConfigPath.Display(path)}' has type {value.GetType().FullName}, which cannot be stored; {Allowed}.");
        }
    }

    private static JsonObject ConvertDictionary(IDictionary dictionary, string path, int depth, HashSet<object> ancestors)
    {
        CheckDepth(path, depth);
        Enter(dictionary, path, ancestors);
        var obj = new JsonObject();
        var entries = dictionary.GetEnumerator();
        while (entries.MoveNext())
        {
            object? rawKey = entries.Key;
            string? key = rawKey?.ToString();
            if (key is null)
            {
                throw new InvalidConfigException(
                    $"Config hashtable at '{ConfigPath.Display(path)}' has a null key; every key must be a non-null string.");
            }

            if (obj.ContainsKey(key))
            {
                // e.g. the keys 1 and "1", which are distinct in a hashtable but one JSON name.
                throw new InvalidConfigException(
                    $"Config hashtable at '{ConfigPath.Display(path)}' has two keys that both read '{key}'; make the keys distinct strings.");
            }

            obj.Add(key, ConvertValue(entries.Value, ConfigPath.Key(path, key), depth + 1, ancestors));
        }

        ancestors.Remove(dictionary);
        return obj;
    }

    private static JsonNode? FromJsonNode(JsonNode node, string path, int depth)
    {
        switch (node)
        {
            case JsonObject obj:
            {
                CheckDepth(path, depth);
                var copy = new JsonObject();
                foreach (var member in obj)
                {
                    copy.Add(member.Key, member.Value is null ? null : FromJsonNode(member.Value, ConfigPath.Key(path, member.Key), depth + 1));
                }

                return copy;
            }

            case JsonArray array:
            {
                CheckDepth(path, depth);
                var copy = new JsonArray();
                for (int i = 0; i < array.Count; i++)
                {
                    copy.Add(array[i] is { } item ? FromJsonNode(item, ConfigPath.Index(path, i), depth + 1) : null);
                }

                return copy;
            }

            default:
                if (node.GetValueKind() == JsonValueKind.Number)
                {
                    // Validate numbers the same way as parsed JSON text (2^53, finiteness).
                    return Number(node.ToJsonString(), node, path);
                }

                return node.DeepClone();
        }
    }

    private static JsonNode? FromJsonElement(JsonElement element, string path, int depth) =>
        element.ValueKind switch
        {
            JsonValueKind.Undefined or JsonValueKind.Null => null,
            _ => FromJsonNode(JsonNode.Parse(element.GetRawText())!, path, depth),
        };

    private static JsonValue Number(string literal, object original, string path)
    {
        var issue = ConfigNumbers.FromJsonLiteral(literal, allowLargeIntegers: false, out var node);
        return issue switch
        {
            NumberIssue.None => node!,
            NumberIssue.IntegerTooLarge => throw TooLarge(original, path),
            _ => throw NotFinite(original, path),
        };
    }

    private static JsonValue Integer(BigInteger value, object original, string path) =>
        ConfigNumbers.FromInteger(value, out var node) == NumberIssue.None ? node! : throw TooLarge(original, path);

    private static JsonValue Double(double value, object original, string path) =>
        ConfigNumbers.FromDouble(value, out var node) == NumberIssue.None ? node! : throw NotFinite(original, path);

    private static InvalidConfigException TooLarge(object original, string path) =>
        new($"Config value at '{ConfigPath.Display(path)}' is the integer {Text(original)}, which is larger than 2^53 (9007199254740992) and cannot be stored exactly; pass it as a string instead.");

    private static InvalidConfigException NotFinite(object original, string path) =>
        new($"Config value at '{ConfigPath.Display(path)}' is {Text(original)}, which JSON cannot hold; pass a finite number or a string instead.");

    private static string Text(object value) => value is IFormattable f ? f.ToString(null, CultureInfo.InvariantCulture) : value.ToString() ?? string.Empty;

    private static string Shorten(string path) => path.Length <= 100 ? path : path.Substring(0, 100) + "...";

    private static void Enter(object container, string path, HashSet<object> ancestors)
    {
        if (!ancestors.Add(container))
        {
            throw new InvalidConfigException(
                $"Config value at '{Shorten(ConfigPath.Display(path))}' contains itself (a hashtable or list that holds a reference to one of its parents), so it cannot be stored as JSON; pass a config without self-references.");
        }
    }

    private static void CheckDepth(string path, int depth)
    {
        if (depth > JsonConfigParser.MaxDepth)
        {
            throw new InvalidConfigException(
                $"Config value at '{Shorten(ConfigPath.Display(path))}' is nested more than {JsonConfigParser.MaxDepth} levels deep; a hashtable or list probably contains itself.");
        }
    }

    private sealed class ByReference : IEqualityComparer<object>
    {
        public static readonly ByReference Instance = new();

        public new bool Equals(object? x, object? y) => ReferenceEquals(x, y);

        public int GetHashCode(object obj) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
    }
}
