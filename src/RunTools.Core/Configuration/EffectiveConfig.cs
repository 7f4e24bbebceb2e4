using System;
using System.Collections;
using System.IO;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Configuration;

/// <summary>
/// The config a run was started with, reduced to one canonical JSON text and its hash so that
/// JSON, YAML and hashtable spellings of the same settings are recognised as the same config.
/// </summary>
public sealed class EffectiveConfig
{
    /// <summary>How deep a config may nest (objects and arrays); deeper input is InvalidConfig.</summary>
    public const int MaxDepth = JsonConfigParser.MaxDepth;

    private static readonly UTF8Encoding _utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly JsonObject _root;

    private EffectiveConfig(JsonObject root, ConfigFormat format, string? sourcePath)
    {
        _root = root;
        Format = format;
        SourcePath = sourcePath;
        CanonicalJson = JsonCanonicalizer.Canonicalize(root);
        Hash = Sha256Hex(CanonicalJson);
    }

    /// <summary>No config: the empty object.</summary>
    public static EffectiveConfig Empty { get; } = new(new JsonObject(), ConfigFormat.None, null);

    /// <summary>
    /// A deep clone of the config object. Each access returns a fresh copy, so callers cannot make
    /// <see cref="CanonicalJson"/> and <see cref="Hash"/> stale by editing it.
    /// </summary>
    public JsonObject Root => (JsonObject)_root.DeepClone();

    /// <summary>RFC 8785 canonical text of <see cref="Root"/>.</summary>
    public string CanonicalJson { get; }

    /// <summary>Lowercase hex SHA-256 of the UTF-8 bytes of <see cref="CanonicalJson"/>.</summary>
    public string Hash { get; }

    public ConfigFormat Format { get; }

    /// <summary>Full path of the file the config was read from (or the source name given to <see cref="FromText"/>); otherwise null.</summary>
    public string? SourcePath { get; }

    /// <summary>Reads a .json, .yaml or .yml file.</summary>
    /// <exception cref="InvalidConfigException">Unsupported extension, or the content is not an acceptable config.</exception>
    /// <exception cref="RunToolsException">The file is missing (InvalidConfig, ObjectNotFound) or unreadable (FileUnreadable).</exception>
    public static EffectiveConfig FromFile(string path)
    {
        if (path is null)
        {
            throw new ArgumentNullException(nameof(path));
        }

        if (path.Trim().Length == 0)
        {
            throw new ArgumentException("The config path is empty.", nameof(path));
        }

        string fullPath = Path.GetFullPath(path);

        // What the path is comes first: a directory is NotRegularFile whatever its name.
        CheckFile(fullPath);
        ConfigFormat format = Path.GetExtension(fullPath).ToLowerInvariant() switch
        {
            ".json" => ConfigFormat.Json,
            ".yaml" or ".yml" => ConfigFormat.Yaml,
            _ => throw new InvalidConfigException(
                $"Config file '{fullPath}' has an unsupported extension; use .json, .yaml or .yml (or, from PowerShell, .psd1), or pass a hashtable.",
                fullPath),
        };

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(fullPath);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new RunToolsException(
                ErrorIds.InvalidConfig,
                RunToolsErrorCategory.ObjectNotFound,
                $"Config file '{fullPath}' was not found. Check the path and try again.",
                fullPath,
                ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new RunToolsException(
                ErrorIds.FileUnreadable,
                RunToolsErrorCategory.ReadError,
                $"Config file '{fullPath}' could not be read: {ex.Message} Check that it is a readable file and try again.",
                fullPath,
                ex);
        }

        return FromBytes(bytes, format, ConfigSource.For(fullPath), fullPath);
    }

    /// <summary>
    /// The largest config file read (16 MiB). A config is settings, not data: parsing and
    /// canonicalising take many times the file's size in memory, so a larger file is refused before
    /// it is read. Put bulk data in a file of its own and name it in the config.
    /// </summary>
    public const long MaxFileSize = 16L * 1024 * 1024;

    /// <summary>
    /// Checks a config file before anything reads it (any format, .psd1 included): it must be a
    /// regular file (NotRegularFile: a FIFO would block for ever) of at most <see cref="MaxFileSize"/>
    /// bytes (ConfigTooLarge). A missing file passes; the reader reports it.
    /// </summary>
    public static void CheckFile(string fullPath)
    {
        InputFile.RequireRegular(fullPath, "Config file", "Pass the path of a .json, .yaml, .yml or .psd1 file, or a hashtable.");
        long length;
        try
        {
            length = new FileInfo(fullPath).Length;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return;
        }

        if (length > MaxFileSize)
        {
            throw new RunToolsException(
                ErrorIds.ConfigTooLarge,
                RunToolsErrorCategory.InvalidArgument,
                $"Config file '{fullPath}' is {length:N0} bytes; configs are limited to {MaxFileSize:N0} bytes (16 MiB) because parsing takes many times that in memory. Keep settings in the config and put bulk data in a file of its own that the config names.",
                fullPath);
        }
    }

    /// <summary>
    /// Parses config text. <paramref name="sourceName"/> names the input in error messages
    /// (and becomes <see cref="SourcePath"/>); without it messages say "&lt;text&gt;".
    /// </summary>
    public static EffectiveConfig FromText(string text, ConfigFormat format, string? sourceName = null)
    {
        if (text is null)
        {
            throw new ArgumentNullException(nameof(text));
        }

        var source = ConfigSource.For(sourceName);
        switch (format)
        {
            case ConfigFormat.Json:
                string json = text.Length > 0 && text[0] == '\uFEFF' ? text.Substring(1) : text;
                return FromJsonBytes(EncodeStrict(json, source), ConfigFormat.Json, source, sourceName, allowLargeIntegers: false);
            case ConfigFormat.Yaml:
                return new EffectiveConfig(YamlConfigParser.Parse(text, source), ConfigFormat.Yaml, sourceName);
            case ConfigFormat.None when text.Trim().Length == 0:
                return Empty;
            default:
                throw new ArgumentException($"FromText reads JSON or YAML text, not {format}.", nameof(format));
        }
    }

    /// <summary>
    /// Converts a hashtable-shaped dictionary (keys by ToString(); values: scalars, lists, nested
    /// dictionaries, JsonNode). Null means no config.
    /// </summary>
    public static EffectiveConfig FromDictionary(IDictionary? dictionary) =>
        dictionary is null
            ? Empty
            : new EffectiveConfig(DictionaryConfigConverter.Convert(dictionary), ConfigFormat.Dictionary, null);

    /// <summary>
    /// A dictionary read from a file Core cannot parse itself (a .psd1, read by the module): the
    /// file is recorded as the source, so a resume reads it again and the run keeps a copy.
    /// </summary>
    public static EffectiveConfig FromDictionary(IDictionary dictionary, string sourcePath, ConfigFormat format) =>
        new(DictionaryConfigConverter.Convert(dictionary), format, System.IO.Path.GetFullPath(sourcePath));

    /// <summary>The config as nested ordered, case-insensitive dictionaries (what a run script sees as $Config).</summary>
    public IDictionary ToDictionary() => PlainValues.FromObject(Root);

    /// <summary>
    /// Reloads a stored config.json. Large integers are accepted here because canonical text
    /// spells big doubles (1.5e20) as plain digits; the hash is recomputed from the parsed value.
    /// </summary>
    public static EffectiveConfig FromCanonicalJson(string canonicalJson)
    {
        if (canonicalJson is null)
        {
            throw new ArgumentNullException(nameof(canonicalJson));
        }

        var source = ConfigSource.For(null);
        return FromJsonBytes(EncodeStrict(canonicalJson, source), ConfigFormat.Json, source, null, allowLargeIntegers: true);
    }

    private static EffectiveConfig FromBytes(byte[] bytes, ConfigFormat format, ConfigSource source, string sourcePath)
    {
        if (format == ConfigFormat.Json)
        {
            return FromJsonBytes(bytes, format, source, sourcePath, allowLargeIntegers: false);
        }

        string text;
        try
        {
            text = _utf8.GetString(bytes);
        }
        catch (DecoderFallbackException ex)
        {
            var (line, column) = JsonConfigParser.Locate(bytes, 0, Math.Max(0, ex.Index));
            throw source.Syntax("YAML", line, column, "the file is not valid UTF-8", ex);
        }

        return new EffectiveConfig(YamlConfigParser.Parse(text, source), format, sourcePath);
    }

    private static EffectiveConfig FromJsonBytes(byte[] bytes, ConfigFormat format, ConfigSource source, string? sourcePath, bool allowLargeIntegers)
    {
        var root = JsonConfigParser.Parse(bytes, source, allowLargeIntegers);
        if (root is not JsonObject obj)
        {
            throw source.NotAMapping(root);
        }

        return new EffectiveConfig(obj, format, sourcePath);
    }

    /// <summary>UTF-8 bytes of <paramref name="text"/>; an unpaired surrogate is an error rather than a silent U+FFFD.</summary>
    private static byte[] EncodeStrict(string text, ConfigSource source)
    {
        try
        {
            return _utf8.GetBytes(text);
        }
        catch (EncoderFallbackException ex)
        {
            string before = text.Substring(0, Math.Max(0, Math.Min(ex.Index, text.Length)));
            int line = before.Split('\n').Length;
            int column = before.Length - (before.LastIndexOf('\n') + 1) + 1;
            throw source.Syntax("JSON", line, column, "the text contains an unpaired surrogate, which is not valid Unicode", ex);
        }
    }

    private static string Sha256Hex(string text)
    {
        using var sha = SHA256.Create();
        byte[] digest = sha.ComputeHash(Encoding.UTF8.GetBytes(text));
        var sb = new StringBuilder(digest.Length * 2);
        foreach (byte b in digest)
        {
            sb.Append(b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}
