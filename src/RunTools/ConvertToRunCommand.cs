using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Converts a directory written by an earlier tool into a run, in place, so that Resume-Run continues it without redoing finished work.</summary>
[Cmdlet(VerbsData.ConvertTo, "Run", SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "ConvertTo-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class ConvertToRunCommand : RunCmdletBase
{
    /// <summary>The legacy directory; it becomes the run directory and its name the run id.</summary>
    [Parameter(Mandatory = true, Position = 0, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>The run's name; default: the legacy run id when the files name one, else the folder name.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>The run script that will continue the run; its steps (and -OutputFile declarations) are read without running it.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ScriptPath { get; set; }

    /// <summary>A .json, .yaml, .yml or .psd1 file, or a hashtable; default: the legacy effective config when the format has one.</summary>
    [Parameter]
    public object? Config { get; set; }

    [Parameter]
    [Alias("Format")]
    public LegacyFormat LegacyFormat { get; set; } = LegacyFormat.Auto;

    protected override void ProcessRecord()
    {
        string path = ResolvePath(Path);
        try
        {
            var result = ConvertLegacyDirectory(path, LegacyFormat, Name, ScriptPath is null ? null : ResolvePath(ScriptPath), Config);
            if (result is null)
            {
                return;
            }

            WriteVerbose($"Converted '{path}' ({result.LegacyFormatName}): {result.ItemsCompleted} item(s) and {result.Steps.Count(s => s.Status == StepStatus.Completed)} step(s) recorded as completed, {result.Warnings.Count} warning(s), {result.Backups.Count} backup(s).");
            WriteObject(RunInfo.From(result.Run, result.Run.ReadState()));
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, path));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(IoErrorRecord(ex, path));
        }
    }
}
