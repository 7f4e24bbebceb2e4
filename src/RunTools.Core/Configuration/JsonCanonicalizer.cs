using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

/// <summary>
/// RFC 8785 JSON Canonicalization Scheme. The config hash is taken over this text, so it must be
/// byte-for-byte stable across machines, runtimes and input formats.
/// </summary>
public static class JsonCanonicalizer
{
    /// <summary>Canonical text of <paramref name="node"/>; a null node is JSON <c>null</c>.</summary>
    /// <exception cref="InvalidConfigException">A number is NaN or infinite, or a string holds an unpaired surrogate.</exception>
    public static string Canonicalize(JsonNode? node)
    {
        var sb = new StringBuilder();
        Write(sb, node, string.Empty);
        return sb.ToString();
    }

    /// <summary>ECMAScript Number.prototype.toString of <paramref name="value"/>, as RFC 8785 requires.</summary>
    internal static string FormatNumber(double value, string path = "")
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            throw new InvalidConfigException(
                $"Config value at '{ConfigPath.Display(path)}' is {value.ToString(CultureInfo.InvariantCulture)}, which JSON cannot hold; use a finite number or a string.");
        }

        if (value == 0)
        {
            return "0"; // covers -0, which ECMAScript prints as "0"
        }

        string text = ShortestRoundTrip(value);
        bool negative = text[0] == '-';
        if (negative)
        {
            text = text.Substring(1);
        }

        int exponent = 0;
        int e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text.Substring(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text.Substring(0, e);
        }

        int dot = text.IndexOf('.');
        string integral = dot < 0 ? text : text.Substring(0, dot);
        string fraction = dot < 0 ? string.Empty : text.Substring(dot + 1);

        // Normalize to value = 0.d1d2...dk × 10^n (the ECMAScript spec's k and n).
        string digits = integral + fraction;
        int n = integral.Length + exponent;
        int lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
        }

        digits = digits.Substring(lead).TrimEnd('0');
        n -= lead;
        int k = digits.Length;

        var sb = new StringBuilder(32);
        if (negative)
        {
            sb.Append('-');
        }

        if (k <= n && n <= 21)
        {
            sb.Append(digits).Append('0', n - k);
        }
        else if (0 < n && n <= 21)
        {
            sb.Append(digits, 0, n).Append('.').Append(digits, n, k - n);
        }
        else if (-6 < n && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(digits);
        }
        else
        {
            int shown = n - 1;
            sb.Append(digits[0]);
            if (k > 1)
            {
                sb.Append('.').Append(digits, 1, k - 1);
            }

            sb.Append('e').Append(shown < 0 ? '-' : '+').Append(Math.Abs(shown).ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    private static string ShortestRoundTrip(double value)
    {
        // On .NET Core 3.0+ "R" is the shortest round-trip form. On .NET Framework "R" falls back
        // from 15 to 17 significant digits, skipping a shorter 16-digit form; try that one too.
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        if (SignificantDigits(text) >= 17)
        {
            string g16 = value.ToString("G16", CultureInfo.InvariantCulture);
            if (SignificantDigits(g16) < 17
                && double.Parse(g16, NumberStyles.Float, CultureInfo.InvariantCulture).Equals(value))
            {
                text = g16;
            }
        }

        return text;
    }

    private static int SignificantDigits(string text)
    {
        int e = text.IndexOfAny(['E', 'e']);
        string mantissa = (e < 0 ? text : text.Substring(0, e)).Replace("-", string.Empty).Replace(".", string.Empty);
        return mantissa.Trim('0').Length;
    }

    private static void Write(StringBuilder sb, JsonNode? node, string path)
    {
        switch (node)
        {
            case null:
                sb.Append("null");
                break;
            case JsonObject obj:
                var members = new List<KeyValuePair<string, JsonNode?>>(obj.Count);
                foreach (var member in obj)
                {
                    members.Add(member);
                }

                // RFC 8785 3.2.3: sort by UTF-16 code units, which is exactly ordinal comparison.
                members.Sort((a, b) => string.CompareOrdinal(a.Key, b.Key));
                sb.Append('{');
                for (int i = 0; i < members.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    string childPath = ConfigPath.Key(path, members[i].Key);
                    WriteString(sb, members[i].Key, childPath);
                    sb.Append(':');
                    Write(sb, members[i].Value, childPath);
                }

                sb.Append('}');
                break;
            case JsonArray array:
                sb.Append('[');
                for (int i = 0; i < array.Count; i++)
                {
                    if (i > 0)
                    {
                        sb.Append(',');
                    }

                    Write(sb, array[i], ConfigPath.Index(path, i));
                }

                sb.Append(']');
                break;
            case JsonValue value:
                WriteValue(sb, value, path);
                break;
            default:
                throw new InvalidOperationException("Unknown JsonNode type " + node.GetType().FullName);
        }
    }

    private static void WriteValue(StringBuilder sb, JsonValue value, string path)
    {
        switch (value.GetValueKind())
        {
            case JsonValueKind.Null:
            case JsonValueKind.Undefined:
                sb.Append("null");
                break;
            case JsonValueKind.True:
                sb.Append("true");
                break;
            case JsonValueKind.False:
                sb.Append("false");
                break;
            case JsonValueKind.String:
                WriteString(sb, GetString(value), path);
                break;
            case JsonValueKind.Number:
                sb.Append(FormatNumber(GetDouble(value, path), path));
                break;
            default:
                throw new InvalidOperationException("Unexpected JSON value kind " + value.GetValueKind());
        }
    }

    private static string GetString(JsonValue value)
    {
        if (value.TryGetValue(out string? s) && s is not null)
        {
            return s;
        }

        // char, Guid, DateTime and similar: take the text System.Text.Json would write.
        using var doc = JsonDocument.Parse(value.ToJsonString());
        return doc.RootElement.GetString() ?? string.Empty;
    }

    private static double GetDouble(JsonValue value, string path)
    {
        // The CLR type behind a JsonValue varies; RFC 8785 reads every number as an IEEE-754 double.
        if (value.TryGetValue(out double d))
        {
            return d;
        }

        if (value.TryGetValue(out long l))
        {
            return l;
        }

        if (value.TryGetValue(out int i))
        {
            return i;
        }

        if (value.TryGetValue(out float f))
        {
            return double.Parse(f.ToString("R", CultureInfo.InvariantCulture), NumberStyles.Float, CultureInfo.InvariantCulture);
        }

        if (value.TryGetValue(out decimal m))
        {
            return (double)m;
        }

        string text = value.ToJsonString();
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out d))
        {
            return d;
        }

        throw new InvalidConfigException($"Config value at '{ConfigPath.Display(path)}' is the number {text}, which cannot be read as a double.");
    }

    private static void WriteString(StringBuilder sb, string s, string path)
    {
        sb.Append('"');
        for (int i = 0; i < s.Length; i++)
        {
            char c = s[i];
            switch (c)
            {
                case '"':
                    sb.Append("\\\"");
                    break;
                case '\\':
                    sb.Append("\\\\");
                    break;
                case '\b':
                    sb.Append("\\b");
                    break;
                case '\f':
                    sb.Append("\\f");
                    break;
                case '\n':
                    sb.Append("\\n");
                    break;
                case '\r':
                    sb.Append("\\r");
                    break;
                case '\t':
                    sb.Append("\\t");
                    break;
                default:
                    if (c < 0x20)
                    {
                        sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
                    {
                        sb.Append(c).Append(s[i + 1]);
                        i++;
                    }
                    else if (char.IsSurrogate(c))
                    {
                        // A lone surrogate has no UTF-8 encoding, so no stable hash.
                        throw new InvalidConfigException(
                            $"Config value at '{ConfigPath.Display(path)}' contains an unpaired surrogate (U+{((int)c).ToString("X4", CultureInfo.InvariantCulture)}), which is not valid Unicode; fix the text.");
                    }
                    else
                    {
                        sb.Append(c);
                    }

                    break;
            }
        }

        sb.Append('"');
    }
}
