using System.Globalization;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

/// <summary>Names the input in error messages: a file path, a caller-given name, or "&lt;text&gt;".</summary>
internal sealed class ConfigSource
{
    private ConfigSource(string? name) => Name = name;

    /// <summary>The file or source name; null for anonymous text.</summary>
    public string? Name { get; }

    /// <summary>The sentence subject, e.g. <c>Config file '/x/run.yaml'</c>.</summary>
    public string Subject => Name is null ? "Config '<text>'" : $"Config file '{Name}'";

    public string FixHint => Name is null ? "Fix the config and try again." : "Fix the file and try again.";

    public static ConfigSource For(string? name) => new(name);

    public InvalidConfigException Syntax(string language, int line, int column, string reason, System.Exception? inner = null)
    {
        reason = reason.Trim().TrimEnd('.');
        return new InvalidConfigException(
            $"{Subject} is not valid {language} at line {N(line)}, column {N(column)}: {reason}. {FixHint}",
            Name,
            line,
            column,
            inner);
    }

    public InvalidConfigException DuplicateKey(string key, string parentPath, int line, int column)
    {
        string where = parentPath.Length == 0 ? string.Empty : $" in '{parentPath}'";
        return new InvalidConfigException(
            $"{Subject} has a duplicate key '{key}'{where} at line {N(line)}, column {N(column)}. Each key may appear only once in a mapping; remove or rename one of them.",
            Name,
            line,
            column);
    }

    public InvalidConfigException IntegerTooLarge(string path, string literal, int line, int column) =>
        new(
            $"{Subject} has the integer {literal} at '{ConfigPath.Display(path)}' (line {N(line)}, column {N(column)}), which is larger than 2^53 (9007199254740992) and cannot be stored exactly; quote it to keep it as a string.",
            Name,
            line,
            column);

    public InvalidConfigException NotFinite(string path, string literal, int line, int column) =>
        new(
            $"{Subject} has the number {literal} at '{ConfigPath.Display(path)}' (line {N(line)}, column {N(column)}), which JSON cannot hold (no infinity, NaN or out-of-range numbers); quote it to keep it as a string.",
            Name,
            line,
            column);

    public InvalidConfigException NotAMapping(JsonNode? root, int? line = null, int? column = null)
    {
        string what = root switch
        {
            null => "null",
            JsonArray => "an array",
            JsonObject => "an object",
            JsonValue v => v.GetValueKind() switch
            {
                System.Text.Json.JsonValueKind.String => "a string",
                System.Text.Json.JsonValueKind.Number => "a number",
                System.Text.Json.JsonValueKind.True or System.Text.Json.JsonValueKind.False => "a boolean",
                _ => "null",
            },
            _ => "a value",
        };
        return new InvalidConfigException(
            $"{Subject} must contain a mapping (an object of keys and values) at the top level, but it contains {what}. {FixHint}",
            Name,
            line,
            column);
    }

    public InvalidConfigException At(string message, int line, int column) =>
        new($"{Subject} {message} (line {N(line)}, column {N(column)}). {FixHint}", Name, line, column);

    private static string N(int value) => value.ToString(CultureInfo.InvariantCulture);
}
