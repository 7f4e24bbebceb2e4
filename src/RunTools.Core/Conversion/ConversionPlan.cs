using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Conversion;

/// <summary>What a format reader found in a legacy directory, before anything is written.</summary>
internal sealed class ConversionPlan
{
    private static readonly char[] s_separator = { '/' };
    private readonly IRunObserver? _observer;

    public ConversionPlan(LegacyFormat format, string root, IRunObserver? observer, bool legacyReadOnly = false)
    {
        Format = format;
        Root = root;
        _observer = observer;
        LegacyReadOnly = legacyReadOnly;
    }

    /// <summary>
    /// The run is written elsewhere (a database): nothing in the legacy directory may change, so
    /// no backup copy is made there and <see cref="BeforeCommit"/> is not run.
    /// </summary>
    public bool LegacyReadOnly { get; }

    public LegacyFormat Format { get; }

    /// <summary>The legacy directory (becomes the run directory, unless the run is written into a database).</summary>
    public string Root { get; }

    /// <summary>The id the earlier tool gave the run, when its files name one.</summary>
    public string? LegacyRunId { get; set; }

    /// <summary>The effective config the legacy files carry (seed 003's effective_config.yaml).</summary>
    public EffectiveConfig? Config { get; set; }

    public List<ConvertedStep> Steps { get; } = new();

    public List<ConversionWarning> Warnings { get; } = new();

    public List<LegacyBackup> Backups { get; } = new();

    /// <summary>Facts from the legacy files kept in the run_migrated event (hashes, positions, counts).</summary>
    public JsonObject Legacy { get; } = new();

    /// <summary>Work on legacy files that must happen once, just before the conversion commits (idempotent).</summary>
    public Action? BeforeCommit { get; set; }

    public ConvertedStep Step(string name)
    {
        var step = Steps.Find(s => s.Name == name);
        if (step is null)
        {
            step = new ConvertedStep(name);
            Steps.Add(step);
        }

        return step;
    }

    public void Warn(string code, string found, string assumed, string action, string? path = null)
    {
        var warning = new ConversionWarning(code, found, assumed, action, path);
        Warnings.Add(warning);
        _observer?.Warning(warning.Message);
    }

    public void Verbose(string message) => _observer?.Verbose(message);

    /// <summary>A path inside the legacy directory as the run records it: relative, '/' separators.</summary>
    public string Relative(string fullPath)
    {
        string root = Root.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar) + Path.DirectorySeparatorChar;
        return fullPath.StartsWith(root, StringComparison.Ordinal)
            ? fullPath.Substring(root.Length).Replace(Path.DirectorySeparatorChar, '/')
            : fullPath;
    }

    public string Full(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    /// <summary>Records a legacy file in place with its size and SHA-256.</summary>
    public ConvertedArtifact Artifact(string fullPath)
    {
        var (size, sha256) = Integrity.HashFile(fullPath);
        string relative = Relative(fullPath);
        return new ConvertedArtifact(ArtifactName(relative), relative, size, sha256);
    }

    /// <summary>
    /// What became of a corrupt legacy file, for a warning: "a copy was kept as &lt;file&gt;.bak"
    /// (<see cref="BackUp"/>), or with <see cref="LegacyReadOnly"/> that it was left as it is.
    /// </summary>
    public string KeepDamaged(string fullPath) => LegacyReadOnly
        ? "the file was left as it is (a conversion into a database changes nothing in the legacy directory)"
        : $"a copy was kept as {BackUp(fullPath)}";

    /// <summary>
    /// Copies a corrupt legacy file to <c>&lt;file&gt;.bak</c> before anything is read from it.
    /// Never over an existing file: the next free <c>.bak.N</c> is used, except that a backup with
    /// the same bytes (left by an interrupted conversion) is reused.
    /// </summary>
    public string BackUp(string fullPath)
    {
        string relative = Relative(fullPath);
        var existing = Backups.Find(b => b.Path == relative);
        if (existing is not null)
        {
            return existing.Backup;
        }

        var (size, sha256) = Integrity.HashFile(fullPath);
        for (int n = 0; ; n++)
        {
            string candidate = n == 0 ? fullPath + ".bak" : $"{fullPath}.bak.{n}";
            if (File.Exists(candidate) || Directory.Exists(candidate))
            {
                if (File.Exists(candidate) && Integrity.HashFile(candidate) == (size, sha256))
                {
                    return Add(candidate);
                }

                continue;
            }

            DurableFile.CopyAtomic(fullPath, candidate);
            return Add(candidate);
        }

        string Add(string backup)
        {
            string recorded = Relative(backup);
            Backups.Add(new LegacyBackup(relative, recorded));
            Verbose($"Backed up corrupt legacy file {relative} to {recorded}.");
            return recorded;
        }
    }

    /// <summary>An artifact name from a relative path: each segment made to follow the portable-name rule.</summary>
    internal static string ArtifactName(string relativePath)
    {
        var segments = relativePath.Replace('\\', '/').Split(s_separator, StringSplitOptions.RemoveEmptyEntries)
            .Select(segment =>
            {
                if (PortableName.IsValid(segment))
                {
                    return segment;
                }

                var chars = segment.Select(c => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' ? c : '_').ToArray();
                string fixedSegment = new string(chars).TrimEnd('.');
                if (fixedSegment.Length == 0 || !char.IsLetterOrDigit(fixedSegment[0]))
                {
                    fixedSegment = "f" + fixedSegment;
                }

                fixedSegment = fixedSegment.Length > PortableName.MaxLength ? fixedSegment.Substring(0, PortableName.MaxLength) : fixedSegment;
                return PortableName.IsValid(fixedSegment) ? fixedSegment : "f_" + fixedSegment.Substring(0, Math.Min(fixedSegment.Length, PortableName.MaxLength - 2));
            });
        return string.Join("/", segments);
    }
}

internal sealed class ConvertedStep
{
    public ConvertedStep(string name) => Name = name;

    public string Name { get; }

    public bool Completed { get; set; }

    /// <summary>Why the step got its status (listed per step in the result and the journal).</summary>
    public string Reason { get; set; } = string.Empty;

    public List<ConvertedItem> Items { get; } = new();

    /// <summary>Files that vouch for the step itself (generic conversion's declared output files).</summary>
    public List<ConvertedArtifact> Artifacts { get; } = new();

    public ConvertedItem Item(string key)
    {
        var item = Items.Find(i => i.Key == key);
        if (item is null)
        {
            item = new ConvertedItem(key);
            Items.Add(item);
        }

        return item;
    }
}

internal sealed class ConvertedItem
{
    public ConvertedItem(string key) => Key = key;

    public string Key { get; }

    public List<ConvertedArtifact> Artifacts { get; } = new();
}

internal sealed class ConvertedArtifact
{
    public ConvertedArtifact(string name, string path, long size, string sha256)
    {
        Name = name;
        Path = path;
        Size = size;
        Sha256 = sha256;
    }

    public string Name { get; }

    /// <summary>Relative to the run directory: the legacy file is referenced where it is.</summary>
    public string Path { get; }

    public long Size { get; }

    public string Sha256 { get; }
}
