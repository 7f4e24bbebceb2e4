using System;

namespace RunTools.Core.Configuration;

/// <summary>
/// A config that cannot be accepted. Carries the location separately from the message so the
/// cmdlets (and tests) can point at the offending spot without parsing text.
/// </summary>
public sealed class InvalidConfigException : RunToolsException
{
    public InvalidConfigException(string message, string? file = null, int? line = null, int? column = null, Exception? inner = null)
        : base(ErrorIds.InvalidConfig, RunToolsErrorCategory.InvalidData, message, file, inner)
    {
        File = file;
        Line = line;
        Column = column;
    }

    /// <summary>The config file (or source name); null for inline text and hashtables.</summary>
    public string? File { get; }

    /// <summary>1-based line of the problem, when it has a place in a text.</summary>
    public int? Line { get; }

    /// <summary>1-based column (in characters) of the problem, when it has a place in a text.</summary>
    public int? Column { get; }
}
