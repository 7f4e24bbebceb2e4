using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Numerics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.RepresentationModel;

namespace RunTools.Core.Configuration;

/// <summary>
/// Reads YAML into JSON nodes with YAML 1.2 core-schema scalar resolution. YamlDotNet's
/// representation model leaves every scalar as text, so resolution (and its refusals) lives here.
/// </summary>
/// <remarks>
/// Merge keys (<c>&lt;&lt;: *base</c>) are supported although they are a YAML 1.1 feature: config
/// files commonly rely on them, and the representation model already resolves the aliases, so
/// merging is a few lines. Keys written explicitly in a mapping win over merged ones; among
/// several merged mappings the first wins.
/// </remarks>
internal sealed class YamlConfigParser
{
    private const string TagPrefix = "tag:yaml.org,2002:";
    private const int MaxValues = 1_000_000; // alias expansion ("billion laughs") must not exhaust memory

    private static readonly Regex _null = new(@"\A(?:null|Null|NULL|~|)\z", RegexOptions.CultureInvariant);
    private static readonly Regex _bool = new(@"\A(?:true|True|TRUE|false|False|FALSE)\z", RegexOptions.CultureInvariant);
    private static readonly Regex _decimalInt = new(@"\A[-+]?[0-9]+\z", RegexOptions.CultureInvariant);
    private static readonly Regex _octalInt = new(@"\A0o([0-7]+)\z", RegexOptions.CultureInvariant);
    private static readonly Regex _hexInt = new(@"\A0x([0-9a-fA-F]+)\z", RegexOptions.CultureInvariant);
    private static readonly Regex _float = new(@"\A[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\z", RegexOptions.CultureInvariant);
    private static readonly Regex _special = new(@"\A(?:[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\z", RegexOptions.CultureInvariant);

    private readonly ConfigSource _source;
    private int _values;

    private YamlConfigParser(ConfigSource source) => _source = source;

    /// <summary>Parses a YAML stream of at most one document; an empty stream or empty document is an empty object.</summary>
    public static JsonObject Parse(string text, ConfigSource source)
    {
        if (text.Length > 0 && text[0] == '\uFEFF')
        {
            text = text.Substring(1);
        }

        var stream = new YamlStream();
        var parser = new Parser(new StringReader(text));
        try
        {
            // YamlStream.Load recurses per nesting level, so deep input would overflow the stack
            // (uncatchable); the event parser is iterative, so check the depth with it first.
            CheckNesting(parser, source);
            parser = new Parser(new StringReader(text));
            stream.Load(parser);
        }
        catch (YamlException ex)
        {
            const string duplicate = "Duplicate key";
            if (ex.Message.StartsWith(duplicate, StringComparison.Ordinal))
            {
                string key = ex.Message.Substring(duplicate.Length).Trim();
                throw source.DuplicateKey(key, string.Empty, ToInt(ex.Start.Line), ToInt(ex.Start.Column));
            }

            throw source.Syntax("YAML", ToInt(ex.Start.Line), ToInt(ex.Start.Column), Reason(ex), ex);
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or OverflowException)
        {
            // YamlDotNet occasionally fails without a YamlException; point at the last event it read.
            var mark = parser.Current?.End;
            throw source.Syntax("YAML", ToInt(mark?.Line ?? 1), ToInt(mark?.Column ?? 1), "the parser could not continue after this point (look for an unclosed bracket, brace or quote)", ex);
        }

        if (stream.Documents.Count == 0)
        {
            return new JsonObject();
        }

        if (stream.Documents.Count > 1)
        {
            var second = stream.Documents[1].RootNode.Start;
            throw source.At("contains more than one YAML document; a config must be a single document", ToInt(second.Line), ToInt(second.Column));
        }

        var rootNode = stream.Documents[0].RootNode;
        var self = new YamlConfigParser(source);
        self.CheckExpandedSize(rootNode);
        var root = self.Convert(rootNode, string.Empty, 1);
        return root switch
        {
            JsonObject obj => obj,
            null => new JsonObject(), // a document holding only "---" or "~"
            _ => throw source.NotAMapping(root, ToInt(rootNode.Start.Line), ToInt(rootNode.Start.Column)),
        };
    }

    private static void CheckNesting(Parser parser, ConfigSource source)
    {
        int depth = 0;
        while (parser.MoveNext())
        {
            switch (parser.Current)
            {
                case SequenceStart or MappingStart:
                    if (++depth > JsonConfigParser.MaxDepth)
                    {
                        var start = parser.Current.Start;
                        throw source.At($"nests deeper than {JsonConfigParser.MaxDepth} levels", ToInt(start.Line), ToInt(start.Column));
                    }

                    break;
                case SequenceEnd or MappingEnd:
                    depth--;
                    break;
            }
        }
    }

    /// <summary>
    /// Refuses a document whose aliases expand past <see cref="MaxValues"/> before converting it.
    /// An alias is the same node object wherever it is used, so sizes are counted once per node:
    /// a "billion laughs" file is refused in microseconds instead of after a million conversions
    /// (seconds on a busy machine). A node that refers to its own parent is left to
    /// <see cref="Convert"/>, which reports the nesting.
    /// </summary>
    private void CheckExpandedSize(YamlNode root)
    {
        var sizes = new Dictionary<YamlNode, long>(ByReference.Instance);
        var inProgress = new HashSet<YamlNode>(ByReference.Instance);
        long Size(YamlNode node)
        {
            if (sizes.TryGetValue(node, out long known))
            {
                return known;
            }

            if (!inProgress.Add(node))
            {
                return 0;
            }

            long size = 1;
            IEnumerable<YamlNode> children = node switch
            {
                YamlSequenceNode sequence => sequence.Children,
                YamlMappingNode mapping => mapping.Children.Select(pair => pair.Value),
                _ => Enumerable.Empty<YamlNode>(),
            };
            foreach (var child in children)
            {
                size = Math.Min(size + Size(child), MaxValues + 1L);
            }

            inProgress.Remove(node);
            sizes[node] = size;
            return size;
        }

        if (Size(root) > MaxValues)
        {
            throw Error(root, $"expands to more than {MaxValues} values (check its aliases)");
        }
    }

    /// <summary>Node identity: YamlNode's own Equals and GetHashCode compare (and hash) whole subtrees.</summary>
    private sealed class ByReference : IEqualityComparer<YamlNode>
    {
        public static readonly ByReference Instance = new();

        public bool Equals(YamlNode? x, YamlNode? y) => ReferenceEquals(x, y);

        public int GetHashCode(YamlNode obj) => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj);
    }

    private static int ToInt(long value) => value > int.MaxValue ? int.MaxValue : (int)value;

    private static string Reason(YamlException ex)
    {
        // Some YamlDotNet versions prefix the message with "(Line: 3, Col: 5, Idx: 20) - (...): ".
        string message = ex.Message;
        if (message.StartsWith("(Line:", StringComparison.Ordinal))
        {
            int cut = message.IndexOf("): ", StringComparison.Ordinal);
            if (cut >= 0)
            {
                message = message.Substring(cut + 3);
            }
        }

        return message;
    }

    private static bool IsTag(YamlNode node, string name) => node.Tag.Value == TagPrefix + name;

    private static bool IsUntagged(YamlNode node) => node.Tag.IsEmpty || node.Tag.IsNonSpecific;

    private static bool IsMergeKey(YamlNode key) =>
        key is YamlScalarNode { Style: ScalarStyle.Plain, Value: "<<" } && (key.Tag.IsEmpty || IsTag(key, "merge"));

    private InvalidConfigException Error(YamlNode node, string message) =>
        _source.At(message, ToInt(node.Start.Line), ToInt(node.Start.Column));

    private JsonNode? Convert(YamlNode node, string path, int depth)
    {
        if (depth > JsonConfigParser.MaxDepth)
        {
            throw Error(node, $"nests deeper than {JsonConfigParser.MaxDepth} levels at '{ConfigPath.Display(path)}' (an alias may refer to its own parent)");
        }

        if (++_values > MaxValues)
        {
            throw Error(node, $"expands to more than {MaxValues} values (check its aliases)");
        }

        switch (node)
        {
            case YamlScalarNode scalar:
                return Scalar(scalar, path);
            case YamlSequenceNode sequence:
            {
                if (!IsUntagged(sequence) && !IsTag(sequence, "seq"))
                {
                    throw Error(sequence, $"has the unsupported tag '{sequence.Tag.Value}' on a list at '{ConfigPath.Display(path)}'");
                }

                var array = new JsonArray();
                for (int i = 0; i < sequence.Children.Count; i++)
                {
                    array.Add(Convert(sequence.Children[i], ConfigPath.Index(path, i), depth + 1));
                }

                return array;
            }

            case YamlMappingNode mapping:
                return Mapping(mapping, path, depth);
            default:
                throw Error(node, $"has an unresolved alias at '{ConfigPath.Display(path)}'");
        }
    }

    private JsonObject Mapping(YamlMappingNode mapping, string path, int depth)
    {
        if (depth > JsonConfigParser.MaxDepth)
        {
            throw Error(mapping, $"nests deeper than {JsonConfigParser.MaxDepth} levels at '{ConfigPath.Display(path)}' (a merge key may refer to its own parent)");
        }

        if (!IsUntagged(mapping) && !IsTag(mapping, "map"))
        {
            throw Error(mapping, $"has the unsupported tag '{mapping.Tag.Value}' on a mapping at '{ConfigPath.Display(path)}'");
        }

        // Explicit keys first: they decide duplicates and win over merged keys wherever they appear.
        var explicitKeys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in mapping.Children)
        {
            if (IsMergeKey(entry.Key))
            {
                continue;
            }

            if (entry.Key is not YamlScalarNode keyNode)
            {
                throw Error(entry.Key, $"has a mapping key at '{ConfigPath.Display(path)}' that is not a scalar; keys must be plain strings");
            }

            // The key's text is the JSON key (so `1`, `"1"` and `true`/"true" each name one key).
            string key = keyNode.Value ?? string.Empty;
            if (!explicitKeys.Add(key))
            {
                throw _source.DuplicateKey(key, path, ToInt(keyNode.Start.Line), ToInt(keyNode.Start.Column));
            }
        }

        var obj = new JsonObject();
        foreach (var entry in mapping.Children)
        {
            if (IsMergeKey(entry.Key))
            {
                foreach (var merged in MergeSources(entry.Value, path))
                {
                    var source = Mapping(merged, path, depth + 1);
                    foreach (var member in source)
                    {
                        if (!explicitKeys.Contains(member.Key) && !obj.ContainsKey(member.Key))
                        {
                            obj.Add(member.Key, member.Value?.DeepClone());
                        }
                    }
                }

                continue;
            }

            string key = ((YamlScalarNode)entry.Key).Value ?? string.Empty;
            obj[key] = Convert(entry.Value, ConfigPath.Key(path, key), depth + 1);
        }

        return obj;
    }

    private IEnumerable<YamlMappingNode> MergeSources(YamlNode value, string path)
    {
        if (value is YamlMappingNode single)
        {
            return [single];
        }

        var list = new List<YamlMappingNode>();
        if (value is YamlSequenceNode sequence)
        {
            foreach (var item in sequence.Children)
            {
                if (item is not YamlMappingNode m)
                {
                    throw Error(item, $"has a merge key '<<' at '{ConfigPath.Display(path)}' whose list holds something other than mappings");
                }

                list.Add(m);
            }

            return list;
        }

        throw Error(value, $"has a merge key '<<' at '{ConfigPath.Display(path)}' that refers to neither a mapping nor a list of mappings");
    }

    private JsonNode? Scalar(YamlScalarNode scalar, string path)
    {
        string text = scalar.Value ?? string.Empty;
        if (scalar.Tag.IsEmpty)
        {
            // Only plain scalars are resolved; quoted, literal and folded scalars are strings.
            return scalar.Style == ScalarStyle.Plain ? ResolvePlain(scalar, text, path) : JsonValue.Create(text);
        }

        if (scalar.Tag.IsNonSpecific)
        {
            return JsonValue.Create(text); // "! value" asks for a string
        }

        switch (scalar.Tag.Value)
        {
            case TagPrefix + "str":
                return JsonValue.Create(text);
            case TagPrefix + "null":
                return _null.IsMatch(text) ? null : throw TagMismatch(scalar, "!!null", text, path);
            case TagPrefix + "bool":
                return _bool.IsMatch(text) ? JsonValue.Create(text[0] is 't' or 'T') : throw TagMismatch(scalar, "!!bool", text, path);
            case TagPrefix + "int":
                return Integer(scalar, text, path) ?? throw TagMismatch(scalar, "!!int", text, path);
            case TagPrefix + "float":
                return Integer(scalar, text, path) ?? Float(scalar, text, path) ?? throw TagMismatch(scalar, "!!float", text, path);
            default:
                throw Error(scalar, $"has the unsupported tag '{scalar.Tag.Value}' at '{ConfigPath.Display(path)}'; use plain values or !!str, !!int, !!float, !!bool, !!null");
        }
    }

    private JsonNode? ResolvePlain(YamlScalarNode scalar, string text, string path)
    {
        if (_null.IsMatch(text))
        {
            return null;
        }

        if (_bool.IsMatch(text))
        {
            return JsonValue.Create(text[0] is 't' or 'T');
        }

        return Integer(scalar, text, path) ?? Float(scalar, text, path) ?? JsonValue.Create(text);
    }

    private JsonValue? Integer(YamlScalarNode scalar, string text, string path)
    {
        BigInteger value;
        Match m;
        if (_decimalInt.IsMatch(text))
        {
            value = BigInteger.Parse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        else if ((m = _hexInt.Match(text)).Success)
        {
            value = BigInteger.Parse("0" + m.Groups[1].Value, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        }
        else if ((m = _octalInt.Match(text)).Success)
        {
            value = BigInteger.Zero;
            foreach (char c in m.Groups[1].Value)
            {
                value = (value * 8) + (c - '0');
            }
        }
        else
        {
            return null;
        }

        if (ConfigNumbers.FromInteger(value, out var node) != NumberIssue.None)
        {
            throw _source.IntegerTooLarge(path, text, ToInt(scalar.Start.Line), ToInt(scalar.Start.Column));
        }

        return node;
    }

    private JsonValue? Float(YamlScalarNode scalar, string text, string path)
    {
        if (_special.IsMatch(text))
        {
            throw _source.NotFinite(path, text, ToInt(scalar.Start.Line), ToInt(scalar.Start.Column));
        }

        if (!_float.IsMatch(text))
        {
            return null;
        }

        double d;
        try
        {
            d = double.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        catch (OverflowException)
        {
            d = double.PositiveInfinity;
        }

        if (ConfigNumbers.FromDouble(d, out var node) != NumberIssue.None)
        {
            throw _source.NotFinite(path, text, ToInt(scalar.Start.Line), ToInt(scalar.Start.Column));
        }

        return node;
    }

    private InvalidConfigException TagMismatch(YamlScalarNode scalar, string tag, string text, string path) =>
        Error(scalar, $"has the value '{text}' tagged {tag} at '{ConfigPath.Display(path)}', but it is not a valid {tag.Substring(2)}");
}
