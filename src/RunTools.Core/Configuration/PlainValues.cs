using System;
using System.Collections;
using System.Collections.Specialized;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

/// <summary>
/// JSON values as plain .NET values: ordered case-insensitive dictionaries, object arrays, strings,
/// booleans, longs and doubles. Hosts (the module) use these, so that no System.Text.Json type
/// crosses from Core's private dependencies into the host.
/// </summary>
public static class PlainValues
{
    public static object? From(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var dictionary = new OrderedDictionary(StringComparer.OrdinalIgnoreCase);
                foreach (var pair in obj)
                {
                    dictionary[pair.Key] = From(pair.Value);
                }

                return dictionary;
            case JsonArray array:
                var items = new object?[array.Count];
                for (int i = 0; i < array.Count; i++)
                {
                    items[i] = From(array[i]);
                }

                return items;
            case JsonValue value when value.TryGetValue(out JsonElement element):
                return element.ValueKind switch
                {
                    JsonValueKind.String => element.GetString(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Number => element.TryGetInt64(out long l) ? l : element.GetDouble(),
                    _ => null,
                };
            case JsonValue value when value.TryGetValue(out string? text):
                return text;
            case JsonValue value when value.TryGetValue(out bool flag):
                return flag;
            case JsonValue value when value.TryGetValue(out long whole):
                return whole;
            case JsonValue value when value.TryGetValue(out double number):
                return number == Math.Floor(number) && Math.Abs(number) < 9007199254740992d ? (object)(long)number : number;
            default:
                return node.ToJsonString();
        }
    }

    public static IDictionary FromObject(JsonObject obj) => (IDictionary)From(obj)!;
}
