using System;

namespace RunTools.Core;

/// <summary>
/// The portable file-name rule that run ids, step names and the segments of artifact names follow:
/// each names a file or folder, so it must be valid on every platform the run may be copied to.
/// </summary>
public static class PortableName
{
    public const int MaxLength = 100;

    public const string Rule = "1 to 100 characters: letters, digits, '.', '_' and '-', starting with a letter or digit and not ending with '.'";

    private static readonly string[] s_reservedWindowsNames =
    {
        "CON", "PRN", "AUX", "NUL",
        "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9",
        "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    };

    public static bool IsValid(string? value) => Explain(value) is null;

    /// <summary>Throws <see cref="ErrorIds.InvalidStepName"/> when the step name breaks the rule.</summary>
    public static string ValidateStepName(string? name) => Validate(name, "step name", ErrorIds.InvalidStepName);

    /// <summary>Why <paramref name="value"/> is not a portable name, or null when it is.</summary>
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

    /// <summary>Throws <paramref name="errorId"/> naming <paramref name="what"/> when the value breaks the rule.</summary>
    public static string Validate(string? value, string what, string errorId)
    {
        string? why = Explain(value);
        if (why is not null)
        {
            throw new RunToolsException(errorId, RunToolsErrorCategory.InvalidArgument,
                $"'{value}' is not a valid {what}: {why}. Use {Rule}.", value);
        }

        return value!;
    }

    private static bool IsAsciiLetterOrDigit(char c) => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');

    private static string Printable(char c) => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString();
}
