using System;
using System.Collections.Generic;
using System.Text.Json.Serialization;

namespace RunTools.Core.Archive;

/// <summary>
/// archive_manifest.json: what a run archive holds. Import trusts nothing in the zip that this
/// manifest does not list with its size and SHA-256 (docs/run-format.md, "Archive format").
/// </summary>
public sealed class ArchiveManifest
{
    [JsonPropertyName("archive_format_version")]
    public int ArchiveFormatVersion { get; set; } = RunArchive.FormatVersion;

    [JsonPropertyName("created_at")]
    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>"RunTools &lt;version&gt;" of the exporting program.</summary>
    [JsonPropertyName("created_by")]
    public string CreatedBy { get; set; } = string.Empty;

    /// <summary>True when a run that was not Completed was exported with Force.</summary>
    [JsonPropertyName("forced")]
    public bool Forced { get; set; }

    // Required: an archive without them cannot be verified (ArchiveManifestInvalid, not a default run or an empty list).
    [JsonPropertyName("run")]
    [JsonRequired]
    public ArchiveRunSummary Run { get; set; } = new();

    /// <summary>Every file in the archive except the manifest, in archive order.</summary>
    [JsonPropertyName("files")]
    [JsonRequired]
    public List<ArchiveFileRecord> Files { get; set; } = new();

    /// <summary>Every directory of the run (so empty ones such as artifacts/ come back on import).</summary>
    [JsonPropertyName("directories")]
    public List<string> Directories { get; set; } = new();

    /// <summary>Artifacts recorded by reference (absolute paths outside the run): listed, not archived.</summary>
    [JsonPropertyName("referenced_artifacts")]
    public List<ArchiveReferenceRecord> ReferencedArtifacts { get; set; } = new();

    /// <summary>Entries of the run directory that were left out (links, reserved names), with the reason.</summary>
    [JsonPropertyName("skipped")]
    public List<ArchiveSkipRecord> Skipped { get; set; } = new();
}

/// <summary>The run as it was when exported.</summary>
public sealed class ArchiveRunSummary
{
    [JsonPropertyName("run_id")]
    public string RunId { get; set; } = string.Empty;

    [JsonPropertyName("name")]
    public string Name { get; set; } = string.Empty;

    /// <summary>The derived status at export (a run with no live owner that says running is interrupted).</summary>
    [JsonPropertyName("status")]
    public RunStatus Status { get; set; }

    [JsonPropertyName("format_version")]
    public int FormatVersion { get; set; }

    [JsonPropertyName("config_hash")]
    public string ConfigHash { get; set; } = string.Empty;

    [JsonPropertyName("script_hash")]
    public string ScriptHash { get; set; } = string.Empty;

    [JsonPropertyName("steps_total")]
    public int StepsTotal { get; set; }

    [JsonPropertyName("steps_completed")]
    public int StepsCompleted { get; set; }

    [JsonPropertyName("items_completed")]
    public long ItemsCompleted { get; set; }

    [JsonPropertyName("migrated")]
    public bool Migrated { get; set; }

    [JsonPropertyName("source_format")]
    public string? SourceFormat { get; set; }
}

public sealed class ArchiveFileRecord
{
    /// <summary>Relative to the run directory, '/' separators; the zip entry has the same name.</summary>
    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    [JsonPropertyName("size")]
    public long Size { get; set; }

    [JsonPropertyName("sha256")]
    public string Sha256 { get; set; } = string.Empty;
}

public sealed class ArchiveReferenceRecord
{
    [JsonPropertyName("name")]
    public string Name { get; set; } = string.Empty;

    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    [JsonPropertyName("size")]
    public long Size { get; set; }

    [JsonPropertyName("sha256")]
    public string Sha256 { get; set; } = string.Empty;
}

public sealed class ArchiveSkipRecord
{
    [JsonPropertyName("path")]
    public string Path { get; set; } = string.Empty;

    /// <summary>"link" (a symbolic link or other reparse point) or "reserved_name".</summary>
    [JsonPropertyName("reason")]
    public string Reason { get; set; } = string.Empty;
}
