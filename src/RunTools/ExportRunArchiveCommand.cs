using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Archive;

namespace RunTools;

/// <summary>Writes runs (from a folder or a database root alike) to .zip archives holding archive_manifest.json (every file with size and SHA-256).</summary>
[Cmdlet(VerbsData.Export, "RunArchive", DefaultParameterSetName = RunSelectionSets.ById, SupportsShouldProcess = true, HelpUri = HelpLinks.Pages + "Export-RunArchive.md")]
[OutputType(typeof(FileInfo))]
public sealed class ExportRunArchiveCommand : RunSelectionCmdletBase, IDisposable
{
    private readonly CancellationTokenSource _cancel = new();

    // Archive paths written by this pipeline: a second run must not silently replace the first.
    private readonly HashSet<string> _written = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A folder (each run becomes &lt;run-id&gt;.zip in it; created if missing) or a file path ending in .zip.</summary>
    [Parameter(Mandatory = true, Position = 1)]
    [ValidateNotNullOrEmpty]
    public string DestinationPath { get; set; } = string.Empty;

    /// <summary>Also archive a run that is not Completed (the manifest says forced), and overwrite an existing archive.</summary>
    [Parameter]
    public SwitchParameter Force { get; set; }

    public void Dispose() => _cancel.Dispose();

    protected override void ProcessRecord()
    {
        foreach (var selected in SelectRuns())
        {
            ExportOne(selected.Run, selected.Target);
        }
    }

    protected override void StopProcessing() => _cancel.Cancel();

    private void ExportOne(RunDirectory run, object target)
    {
        var progress = new ArchiveProgressWriter(this, "Export-RunArchive");
        try
        {
            string archive = RunArchive.ResolveDestination(run.RunId, ResolvePath(DestinationPath));
            if (!_written.Add(archive))
            {
                throw new RunToolsException(ErrorIds.ArchiveExists, RunToolsErrorCategory.ResourceExists,
                    $"Run '{run.RunId}' would be written to '{archive}', which this command already wrote for another run. Pass a folder as -DestinationPath to export several runs.", archive);
            }

            if (!ShouldProcess(archive, $"Export run '{run.RunId}'"))
            {
                return;
            }

            var result = RunArchive.Export(run, new ArchiveExportOptions
            {
                DestinationPath = archive,
                Force = Force,
                Progress = progress.Report,
                Cancellation = _cancel.Token,
            });
            foreach (string warning in result.Warnings)
            {
                WriteWarning(warning);
            }

            // Through the provider, so the FileInfo carries PSPath and the usual file table view.
            var items = InvokeProvider.Item.Get(new[] { result.Path }, false, true);
            WriteObject(items.Count == 1 ? items[0] : new FileInfo(result.Path));
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, target));
        }
        catch (OperationCanceledException)
        {
            // Ctrl+C: the temp archive is already removed; the pipeline is stopping.
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteError(IoErrorRecord(ex, target));
        }
        finally
        {
            progress.Complete();
        }
    }
}
