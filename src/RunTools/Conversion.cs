using System;
using System.Collections;
using System.Collections.Specialized;
using System.Management.Automation;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools;

/// <summary>Between PowerShell values and what Core stores.</summary>
internal static class Conversion
{
    /// <summary>The serialization depth of recorded step and item output (CliXml).</summary>
    public const int OutputDepth = 4;

    /// <summary>JSON config to the nested ordered dictionaries a script reads as $Config.a.b.</summary>
    public static object? ToPowerShell(JsonNode? node)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj:
                var dictionary = new OrderedDictionary(StringComparer.OrdinalIgnoreCase);
                foreach (var pair in obj)
                {
                    dictionary[pair.Key] = ToPowerShell(pair.Value);
                }

                return dictionary;
            case JsonArray array:
                var items = new object?[array.Count];
                for (int i = 0; i < array.Count; i++)
                {
                    items[i] = ToPowerShell(array[i]);
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

    /// <summary>Strips PSObject wrappers so Core sees plain dictionaries, lists and scalars.</summary>
    public static IDictionary UnwrapDictionary(IDictionary source)
    {
        var result = new OrderedDictionary();
        foreach (DictionaryEntry entry in source)
        {
            result[Unwrap(entry.Key)!] = UnwrapValue(entry.Value);
        }

        return result;
    }

    private static object? UnwrapValue(object? value)
    {
        value = Unwrap(value);
        return value switch
        {
            IDictionary dictionary => UnwrapDictionary(dictionary),
            string s => s,
            IEnumerable list => UnwrapList(list),
            _ => value,
        };
    }

    private static object?[] UnwrapList(IEnumerable list)
    {
        var items = new System.Collections.Generic.List<object?>();
        foreach (object? item in list)
        {
            items.Add(UnwrapValue(item));
        }

        return items.ToArray();
    }

    public static object? Unwrap(object? value) => value is PSObject ps && ps.BaseObject is not PSCustomObject ? ps.BaseObject : value;

    /// <summary>Recorded output is CliXml, so a replay gives the same (deserialized) objects as the first run.</summary>
    public static byte[] Serialize(System.Collections.Generic.IList<PSObject> output) =>
        Encoding.UTF8.GetBytes(PSSerializer.Serialize(output.Count == 1 ? output[0] : (object)output, OutputDepth));

    public static System.Collections.Generic.List<object?> Deserialize(byte[]? bytes)
    {
        var result = new System.Collections.Generic.List<object?>();
        if (bytes is null || bytes.Length == 0)
        {
            return result;
        }

        object value = PSSerializer.Deserialize(Encoding.UTF8.GetString(bytes));
        if (value is PSObject { BaseObject: ArrayList list })
        {
            foreach (object? item in list)
            {
                result.Add(item);
            }
        }
        else
        {
            result.Add(value);
        }

        return result;
    }
}
