using System;
using System.Collections;
using System.Collections.Specialized;
using System.Management.Automation;
using System.Text;

namespace RunTools;

/// <summary>Between PowerShell values and what Core stores.</summary>
internal static class Conversion
{
    /// <summary>The serialization depth of recorded step and item output (CliXml).</summary>
    public const int OutputDepth = 4;

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
