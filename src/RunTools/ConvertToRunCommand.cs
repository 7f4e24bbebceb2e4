using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>
/// Converts a directory written by an earlier tool into a run, so that Resume-Run continues it
/// without redoing finished work: in place (the directory becomes the run directory), or with a
/// database root created in the database, the directory left as it was.
/// </summary>
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

    /// <summary>
    /// Where the run is created: a database (postgresql://...) creates it there and leaves the
    /// directory as it was; a folder must be the directory's parent (a folder conversion is in
    /// place). Default: $env:RUNTOOLS_ROOT when it names a database, else in place.
    /// </summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    private RootLocation? _database;
    private IRunCatalog? _catalog;
    private string? _folderRoot;

    protected override void BeginProcessing()
    {
        // A malformed root stops the command: every directory would fail the same way.
        try
        {
            var location = !string.IsNullOrEmpty(Root) || RootLocation.IsStoreUri(Environment.GetEnvironmentVariable(RootVariable)) ? ResolveRootLocation(Root) : null;
            if (location is { Kind: not RootKind.Folder })
            {
                _database = location;
            }
            else if (location is not null)
            {
                _folderRoot = location.FolderPath;
            }
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
        }
    }

    protected override void ProcessRecord()
    {
        string path = ResolvePath(Path);
        try
        {
            if (_folderRoot is not null)
            {
                RequireParentRoot(path, _folderRoot);
            }

            // A database root loads the PostgreSQL store here, the first time one is used in the session.
            var catalog = _database is null ? null : _catalog ??= RunCatalogs.Open(_database);
            var result = ConvertLegacyDirectory(path, LegacyFormat, Name, ScriptPath is null ? null : ResolvePath(ScriptPath), Config, catalog);
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

        /// <summary>A folder conversion is in place: its run lives under the directory's parent, so a folder -Root must be that parent.</summary>
    private static void RequireParentRoot(string path, string folderRoot)
    {
        string parent = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path).TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar)) ?? string.Empty;
        string root = System.IO.Path.GetFullPath(folderRoot).TrimEnd(System.IO.Path.DirectorySeparatorChar, System.IO.Path.AltDirectorySeparatorChar);
        if (!string.Equals(parent, root, StringComparison.Ordinal))
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"-Root '{root}' is a folder, and a conversion into a folder is in place: the run stays at '{path}', under '{parent}'. Omit -Root (or pass '{parent}'), move the directory under '{root}' first, or pass a database root to create the run there.", path);
        }
    }
}
