using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RunTools.Core;

/// <summary>Names of the run-directory format (version 1, specified in docs/run-format.md).</summary>
public static class RunFormat
{
    public const int Version = 1;

    public const string StateFile = "run.json";
    public const string JournalFile = "journal.jsonl";
    public const string ConfigFile = "config.json";
    public const string ConfigSourcePrefix = "config.source";
    public const string ScriptFile = "script.ps1";

    /// <summary>The run script's parameters (Start-Run -Parameters), RFC 8785 canonical JSON like config.json.</summary>
    public const string ParametersFile = "parameters.json";
    public const string StepsFolder = "steps";
    public const string ArtifactsFolder = "artifacts";
    public const string LogsFolder = "logs";
    public const string HistoryFolder = "history";
    public const string StopFile = "stop";
    public const string LockFile = ".lock";

    /// <summary>Prefix of a directory a run is assembled in before it is renamed into place.</summary>
    public const string StagingPrefix = ".staging-";

    /// <summary>Prefix a run directory is renamed to before it is deleted.</summary>
    public const string DeletingPrefix = ".deleting-";

    /// <summary>
    /// A run set aside while an imported run replaces it: restored when the replacement never
    /// arrived (a crash between the two renames), deleted once it has.
    /// </summary>
    public const string ReplacedPrefix = ".replaced-";

    internal static readonly JsonSerializerOptions JsonOptions = CreateOptions(indented: true);

    /// <summary>An enum value as the format spells it everywhere (run.json and journal): lower-case snake_case.</summary>
    internal static string EnumText<T>(T value)
        where T : struct, System.Enum => JsonNamingPolicy.SnakeCaseLower.ConvertName(value.ToString());

    internal static readonly JsonSerializerOptions CompactJsonOptions = CreateOptions(indented: false);

    private static JsonSerializerOptions CreateOptions(bool indented)
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = indented,
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            DefaultIgnoreCondition = JsonIgnoreCondition.Never,
            PropertyNameCaseInsensitive = false,
            ReadCommentHandling = JsonCommentHandling.Disallow,

            // Generated metadata for run.json (read 10,000 times by a listing); reflection for the rest.
            TypeInfoResolver = System.Text.Json.Serialization.Metadata.JsonTypeInfoResolver.Combine(
                State.RunStateJsonContext.Default, new System.Text.Json.Serialization.Metadata.DefaultJsonTypeInfoResolver()),
        };
        options.Converters.Add(new Infrastructure.TimestampConverter());
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
        return options;
    }
}
