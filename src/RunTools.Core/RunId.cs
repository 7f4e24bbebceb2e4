using System;
using System.Security.Cryptography;
using System.Text;

namespace RunTools.Core;

/// <summary>
/// Run ids name directories, so they are restricted to a portable file-name alphabet.
/// Generated ids sort by creation time: <c>yyyyMMdd-HHmmss-&lt;name&gt;-&lt;4 random&gt;</c>.
/// </summary>
public static class RunId
{
    public const int MaxLength = 100;

    /// <summary>Also used for step names and artifact names: the same portable file-name rule.</summary>
    public const string Rule = "1 to 100 characters: letters, digits, '.', '_' and '-', starting with a letter or digit and not ending with '.'";

    private const string RandomAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    private static readonly string[] s_reservedWindowsNames =
    {
        "CON", "PRN", "AUX", "NUL",
        "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    };

    public static bool IsValid(string? value) => Explain(value) is null;

    /// <summary>Why <paramref name="value"/> is not a valid id, or null when it is.</summary>
    public static string? Explain(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return "it is empty";
        }

        if (value!.Length > MaxLength)
        {
            return $"it is {value.Length} characters long";
        }

        if (!IsAsciiLetterOrDigit(value[0]))
        {
            return $"it starts with '{value[0]}'";
        }

        foreach (char c in value)
        {
            if (!(IsAsciiLetterOrDigit(c) || c == '.' || c == '_' || c == '-'))
            {
                return c == '/' || c == '\\' ? "it contains a path separator" : $"it contains '{Printable(c)}'";
            }
        }

        if (value[value.Length - 1] == '.')
        {
            return "it ends with '.'";
        }

        int dot = value.IndexOf('.');
        string stem = dot < 0 ? value : value.Substring(0, dot);
        foreach (string reserved in s_reservedWindowsNames)
        {
            if (string.Equals(stem, reserved, StringComparison.OrdinalIgnoreCase))
            {
                return $"'{stem}' is a reserved device name on Windows";
            }
        }

        return null;
    }

    /// <summary>Throws <see cref="ErrorIds.InvalidRunId"/> (or the given id) when the value breaks the rule.</summary>
    public static string Validate(string? value, string what = "run id", string errorId = ErrorIds.InvalidRunId)
    {
        string? why = Explain(value);
        if (why is not null)
        {
            throw new RunToolsException(errorId, RunToolsErrorCategory.InvalidArgument,
                $"'{value}' is not a valid {what}: {why}. Use {Rule}.", value);
        }

        return value!;
    }

    public static string Generate(string name, DateTimeOffset now) => Generate(name, now, FillRandom);

    /// <summary>Fills the buffer from the system's cryptographic random source.</summary>
    internal static void FillRandom(byte[] buffer)
    {
        using var rng = RandomNumberGenerator.Create();
        rng.GetBytes(buffer);
    }

    /// <summary>The random source is a seam so that tests can force collisions.</summary>
    internal static string Generate(string name, DateTimeOffset now, Action<byte[]> fillRandom)
    {
        var builder = new StringBuilder(MaxLength);
        builder.Append(now.UtcDateTime.ToString("yyyyMMdd-HHmmss", System.Globalization.CultureInfo.InvariantCulture));
        string slug = Slug(name);
        if (slug.Length > 0)
        {
            builder.Append('-').Append(slug);
        }

        builder.Append('-');
        var random = new byte[4];
        fillRandom(random);

        foreach (byte b in random)
        {
            builder.Append(RandomAlphabet[b & 31]);
        }

        return builder.ToString();
    }

    /// <summary>Lower-case letters and digits of the name, other runs of characters as one '-', at most 40.</summary>
    public static string Slug(string name)
    {
        var builder = new StringBuilder(40);
        bool pendingDash = false;
        foreach (char c in name)
        {
            if (IsAsciiLetterOrDigit(c))
            {
                if (pendingDash && builder.Length > 0)
                {
                    builder.Append('-');
                }

                pendingDash = false;
                builder.Append(char.ToLowerInvariant(c));
                if (builder.Length >= 40)
                {
                    break;
                }
            }
            else
            {
                pendingDash = true;
            }
        }

        return builder.ToString();
    }

    private static bool IsAsciiLetterOrDigit(char c) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

    private static string Printable(char c) => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString();
}
