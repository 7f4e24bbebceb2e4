using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;

namespace RunTools;

/// <summary>Verifies runs: state against journal, every recorded file's size and SHA-256, the files the format requires.</summary>
[Cmdlet(VerbsDiagnostic.Test, "Run", DefaultParameterSetName = ById, HelpUri = HelpLinks.Pages + "Test-Run.md")]
[OutputType(typeof(RunTestResult))]
[OutputType(typeof(bool))]
public sealed class TestRunCommand : RunCmdletBase
{
    private const string ById = "ById";
    private const string ByName = "ByName";
    private const string ByInput = "ByInputObject";
    private const string ByPath = "ByPath";
    private readonly CancellationTokenSource _stopping = new();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    /// <summary>Tests every run whose name matches (wildcards).</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByName)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = ByName)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>Returns only $true or $false per run (IsValid).</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var (run, target) in Runs())
        {
            try
            {
                var result = ProgressRunner.Run(this, 1, $"Test-Run {run.RunId}",
                    report => run.Test(report, _stopping.Token), _stopping.Token);
                WriteObject(Quiet ? result.IsValid : new RunTestResult(result));
            }
            catch (RunToolsException ex)
            {
                WriteError(ToErrorRecord(ex, target));
            }
            catch (Exception ex) when (IsIoError(ex))
            {
                // One unreadable run is one error; the runs after it are still tested.
                WriteError(IoErrorRecord(ex, target));
            }
        }
    }

    protected override void StopProcessing() => _stopping.Cancel();

    protected override void EndProcessing() => _stopping.Dispose();

    private IEnumerable<(RunDirectory Run, object Target)> Runs()
    {
        if (ParameterSetName == ByName)
        {
            foreach (var listing in RunsNamed(Name, Root, reportNoMatch: true))
            {
                yield return (listing.Run, listing.Run.RunId);
            }

            yield break;
        }

        var ids = ParameterSetName == ById ? RunId : new string[] { string.Empty };
        foreach (string id in ids)
        {
            RunDirectory? run = null;
            try
            {
                run = FindRun(id, Root, InputObject, Path);
            }
            catch (RunToolsException ex)
            {
                WriteError(ToErrorRecord(ex, (object?)InputObject ?? Path ?? id));
            }

            if (run is not null)
            {
                yield return (run, (object?)InputObject ?? run.RunId);
            }
        }
    }
}
