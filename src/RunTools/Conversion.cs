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

    /// <summary>
    /// Strips PSObject wrappers so Core sees plain dictionaries, lists and scalars. A dictionary or
    /// list that contains itself, or nesting deeper than a config may be, is InvalidConfig (without
    /// this, a self-referencing hashtable overflowed the stack and killed the process).
    /// </summary>
    public static IDictionary UnwrapDictionary(IDictionary source) =>
        UnwrapDictionary(source, new System.Collections.Generic.HashSet<object>(ByReference.Instance), "$", 1);

    private static IDictionary UnwrapDictionary(IDictionary source, System.Collections.Generic.HashSet<object> ancestors, string path, int depth)
    {
        Enter(source, ancestors, path, depth);
        var result = new OrderedDictionary();
        foreach (DictionaryEntry entry in source)
        {
            object key = Unwrap(entry.Key)!;
            result[key] = UnwrapValue(entry.Value, ancestors, path + "." + key, depth + 1);
        }

        ancestors.Remove(source);
        return result;
    }

    private static object? UnwrapValue(object? value, System.Collections.Generic.HashSet<object> ancestors, string path, int depth)
    {
        value = Unwrap(value);
        return value switch
        {
            IDictionary dictionary => UnwrapDictionary(dictionary, ancestors, path, depth),
            string s => s,
            IEnumerable list => UnwrapList(list, ancestors, path, depth),
            _ => value,
        };
    }

    private static object?[] UnwrapList(IEnumerable list, System.Collections.Generic.HashSet<object> ancestors, string path, int depth)
    {
        Enter(list, ancestors, path, depth);
        var items = new System.Collections.Generic.List<object?>();
        foreach (object? item in list)
        {
            items.Add(UnwrapValue(item, ancestors, $"{path}[{items.Count}]", depth + 1));
        }

        ancestors.Remove(list);
        return items.ToArray();
    }

    private static void Enter(object container, System.Collections.Generic.HashSet<object> ancestors, string path, int depth)
    {
        if (!ancestors.Add(container))
        {
            throw new RunTools.Core.Configuration.InvalidConfigException(
                $"The config at '{Shorten(path)}' contains itself (a hashtable or list that holds a reference to one of its parents), so it cannot be stored as JSON. Pass a config without self-references.");
        }

        if (depth > RunTools.Core.Configuration.EffectiveConfig.MaxDepth)
        {
            throw new RunTools.Core.Configuration.InvalidConfigException(
                $"The config at '{Shorten(path)}' is nested more than {RunTools.Core.Configuration.EffectiveConfig.MaxDepth} levels deep; flatten it.");
        }
    }

    private sealed class ByReference : System.Collections.Generic.IEqualityComparer<object>
    {
        public static readonly ByReference Instance = new();

        public new bool Equals(object? x, object? y) => ReferenceEquals(x, y);

        public int GetHashCode(object obj) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
    }

    private static string Shorten(string path) => path.Length <= 100 ? path : path.Substring(0, 100) + "...";

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
