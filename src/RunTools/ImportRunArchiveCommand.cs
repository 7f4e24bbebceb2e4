using System;
using System.Collections.Generic;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Archive;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>Verifies run archives against their manifests and restores the runs under a root: a folder or a database.</summary>
[Cmdlet(VerbsData.Import, "RunArchive", DefaultParameterSetName = ByPath, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Import-RunArchive.md")]
[OutputType(typeof(RunInfo))]
public sealed class ImportRunArchiveCommand : RunCmdletBase, IDisposable
{
    private const string ByPath = "ByPath";
    private const string ByLiteralPath = "ByLiteralPath";

    private readonly CancellationTokenSource _cancel = new();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ByPath, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    [Parameter(Mandatory = true, ParameterSetName = ByLiteralPath, ValueFromPipelineByPropertyName = true)]
    [Alias("PSPath", "LP", "FullName")]
    [ValidateNotNullOrEmpty]
    public string[] LiteralPath { get; set; } = Array.Empty<string>();

    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    /// <summary>Replace an existing run with the same id (never a running one).</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    /// <summary>The most bytes one import extracts; a larger archive is refused (ArchiveTooLarge) before anything is written.</summary>
    [Parameter]
    [ValidateRange(1, long.MaxValue)]
    public long MaximumSize { get; set; } = ArchiveImportOptions.DefaultMaximumSize;

    /// <summary>The most entries an archive may hold; more is refused (ArchiveTooManyEntries) before anything is read.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int MaximumEntryCount { get; set; } = ArchiveImportOptions.DefaultMaximumEntryCount;

    public void Dispose() => _cancel.Dispose();

    protected override void ProcessRecord()
    {
        foreach (string file in ResolveArchives())
        {
            ImportOne(file);
        }
    }

    protected override void StopProcessing() => _cancel.Cancel();

    private List<string> ResolveArchives()
    {
        var files = new List<string>();
        if (ParameterSetName == ByLiteralPath)
        {
            foreach (string literal in LiteralPath)
            {
                files.Add(ResolvePath(literal));
            }

            return files;
        }

        foreach (string pattern in Path)
        {
            try
            {
                var resolved = SessionState.Path.GetResolvedProviderPathFromPSPath(pattern, out var provider);
                if (provider.ImplementingType != typeof(Microsoft.PowerShell.Commands.FileSystemProvider))
                {
                    WriteError(new ErrorRecord(new RunToolsException(ErrorIds.ArchiveNotFound, RunToolsErrorCategory.InvalidArgument,
                        $"'{pattern}' is not a file system path; archives are .zip files.", pattern), ErrorIds.ArchiveNotFound, ErrorCategory.InvalidArgument, pattern));
                    continue;
                }

                if (resolved.Count == 0)
                {
                    WriteError(NotFound(pattern));
                }

                files.AddRange(resolved);
            }
            catch (ItemNotFoundException)
            {
                WriteError(NotFound(pattern));
            }
            catch (WildcardPatternException ex)
            {
                WriteError(ToErrorRecord(new RunToolsException(ErrorIds.InvalidWildcardPattern, RunToolsErrorCategory.InvalidArgument,
                    $"-Path '{pattern}' is not a valid wildcard pattern ({ex.Message.TrimEnd('.')}). Escape '[' and ']' as '[[]' and '[]]', or pass the path with -LiteralPath.", pattern, ex)));
            }
        }

        return files;
    }

    private void ImportOne(string file)
    {
        var progress = new ArchiveProgressWriter(this, "Import-RunArchive");
        try
        {
            var location = ResolveTargetRoot();
            if (!ShouldProcess(file, $"Import run archive into '{location.Display}'"))
            {
                return;
            }

            var options = new ArchiveImportOptions
            {
                Force = Force,
                MaximumSize = MaximumSize,
                MaximumEntryCount = MaximumEntryCount,
                Progress = progress.Report,
                Cancellation = _cancel.Token,
            };

            // A database root loads the PostgreSQL store here, the first time one is used in the session.
            var run = location.Kind == RootKind.Folder
                ? RunArchive.Import(file, new RunsRoot(location.FolderPath!), options)
                : RunArchive.Import(file, RunCatalogs.Open(location), options);
            WriteObject(RunInfo.From(run, run.ReadState()));
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, file));
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the staging folder is already removed; the pipeline is stopping.
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(IoErrorRecord(ex, file));
        }
        finally
        {
            progress.Complete();
        }
    }

    /// <summary>-Root, else $env:RUNTOOLS_ROOT, else ./runs: a folder or a database. A malformed root stops the command (every archive would fail the same way).</summary>
    private RootLocation ResolveTargetRoot()
    {
        try
        {
            return ResolveRootLocation(Root);
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            throw; // not reached: ThrowTerminatingError always throws
        }
    }

    private static ErrorRecord NotFound(string pattern) =>
        ToErrorRecord(new RunToolsException(ErrorIds.ArchiveNotFound, RunToolsErrorCategory.ObjectNotFound,
            $"No archive matches '{pattern}'. Check the path; archives are written by Export-RunArchive.", pattern));
}
