using System;
using System.Collections.Generic;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;

namespace RunTools.Core.Conversion;

/// <summary>A step of the run script and the output files it declares (<c>Invoke-RunStep -OutputFile</c>).</summary>
public sealed class DeclaredStep
{
    public DeclaredStep(string name, IReadOnlyList<string>? outputFiles = null, bool unreadableOutputFiles = false)
    {
        Name = name;
        OutputFiles = outputFiles ?? Array.Empty<string>();
        UnreadableOutputFiles = unreadableOutputFiles;
    }

    public string Name { get; }

    /// <summary>Paths or globs (<c>*</c>, <c>?</c>, <c>**</c>), relative to the run directory or absolute.</summary>
    public IReadOnlyList<string> OutputFiles { get; }

    /// <summary>The script gives the step an -OutputFile that is not made of constant strings (a variable, an expression): conversion cannot read it.</summary>
    public bool UnreadableOutputFiles { get; }
}

/// <summary>What a conversion starts from besides the legacy directory.</summary>
public sealed class ConversionOptions
{
    public LegacyFormat Format { get; set; } = LegacyFormat.Auto;

    /// <summary>The run's name; default: the legacy run id when the files name one, else the folder name.</summary>
    public string? Name { get; set; }

    /// <summary>The effective config; default: the legacy effective config when the format has one, else empty.</summary>
    public EffectiveConfig? Config { get; set; }

    /// <summary>The run script's bytes (kept as script.ps1); empty when none is given.</summary>
    public byte[]? Script { get; set; }

    public string? ScriptSourcePath { get; set; }

    /// <summary>
    /// The script's steps in order, with their declared outputs (the module reads them from the
    /// script's syntax tree). Generic conversion needs them; the other formats use them to check
    /// that the converted step names are the ones the script will use.
    /// </summary>
    public IReadOnlyList<DeclaredStep>? Steps { get; set; }

    /// <summary>Receives the warnings as they are found, and a verbose line per decision and stage.</summary>
    public IRunObserver? Observer { get; set; }
}

/// <summary>
/// An uncertain decision made while converting: what was found, what was assumed, what the
/// operator can do. Returned to the caller and journaled in <c>run_migrated</c>.
/// </summary>
public sealed class ConversionWarning
{
    public ConversionWarning(string code, string found, string assumed, string action, string? path = null)
    {
        Code = code;
        Found = found;
        Assumed = assumed;
        Action = action;
        Path = path;
    }

    /// <summary>A stable snake_case identifier of the kind of problem (documented in docs/conversion.md).</summary>
    public string Code { get; }

    public string Found { get; }

    public string Assumed { get; }

    public string Action { get; }

    /// <summary>The legacy file or folder concerned, relative to the run directory ('/' separators), if any.</summary>
    public string? Path { get; }

    public string Message => $"{Found} Assumed: {Assumed} {Action}";

    public override string ToString() => Message;
}

/// <summary>How one step was converted.</summary>
public sealed class StepDecision
{
    public StepDecision(string step, StepStatus status, long itemsCompleted, string reason)
    {
        Step = step;
        Status = status;
        ItemsCompleted = itemsCompleted;
        Reason = reason;
    }

    public string Step { get; }

    /// <summary>Completed or Pending.</summary>
    public StepStatus Status { get; }

    public long ItemsCompleted { get; }

    public string Reason { get; }

    public override string ToString() => $"{Step}: {Status.ToString().ToLowerInvariant()}, {ItemsCompleted} item(s) completed; {Reason}";
}

/// <summary>A corrupt legacy file and the copy kept of it before anything was read from it.</summary>
public sealed class LegacyBackup
{
    public LegacyBackup(string path, string backup)
    {
        Path = path;
        Backup = backup;
    }

    /// <summary>Relative to the run directory.</summary>
    public string Path { get; }

    public string Backup { get; }
}

/// <summary>The outcome of a conversion.</summary>
public sealed class ConversionResult
{
    internal ConversionResult(RunDirectory run, LegacyFormat format, IReadOnlyList<ConversionWarning> warnings, IReadOnlyList<StepDecision> steps, IReadOnlyList<LegacyBackup> backups, long items, int artifacts)
    {
        Run = run;
        Format = format;
        Warnings = warnings;
        Steps = steps;
        Backups = backups;
        ItemsCompleted = items;
        Artifacts = artifacts;
    }

    public RunDirectory Run { get; }

    public LegacyFormat Format { get; }

    /// <summary>The stored name of the legacy format (<c>source_format</c> on disk).</summary>
    public string LegacyFormatName => LegacyConversion.LegacyFormatName(Format);

    public IReadOnlyList<ConversionWarning> Warnings { get; }

    public IReadOnlyList<StepDecision> Steps { get; }

    public IReadOnlyList<LegacyBackup> Backups { get; }

    public long ItemsCompleted { get; }

    public int Artifacts { get; }
}
