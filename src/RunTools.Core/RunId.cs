using System;
using System.Security.Cryptography;
using System.Text;

namespace RunTools.Core;

/// <summary>
/// Run ids: validated as <see cref="PortableName"/>s (they name directories) and generated so that
/// they sort by creation time: <c>yyyyMMdd-HHmmss-&lt;name&gt;-&lt;4 random&gt;</c>.
/// </summary>
public static class RunId
{
    public const int MaxLength = PortableName.MaxLength;

    /// <summary>The run-id rule: run ids are portable names.</summary>
    public const string Rule = PortableName.Rule;

    private const string RandomAlphabet = "0123456789abcdefghjkmnpqrstvwxyz";

    public static bool IsValid(string? value) => PortableName.IsValid(value);

    /// <summary>Why <paramref name="value"/> is not a valid run id, or null when it is.</summary>
    public static string? Explain(string? value) => PortableName.Explain(value);

    /// <summary>Throws <see cref="ErrorIds.InvalidRunId"/> when the value is not a valid run id.</summary>
    public static string Validate(string? value) => PortableName.Validate(value, "run id", ErrorIds.InvalidRunId);

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
}
