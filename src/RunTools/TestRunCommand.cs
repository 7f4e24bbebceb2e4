using System;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;

namespace RunTools;

/// <summary>Verifies runs: state against journal, every recorded file's size and SHA-256, the files the format requires.</summary>
[Cmdlet(VerbsDiagnostic.Test, "Run", DefaultParameterSetName = RunSelectionSets.ById, HelpUri = HelpLinks.Pages + "Test-Run.md")]
[OutputType(typeof(RunTestResult))]
[OutputType(typeof(bool))]
public sealed class TestRunCommand : RunSelectionCmdletBase
{
    private readonly CancellationTokenSource _stopping = new();

    /// <summary>Returns only $true or $false per run (IsValid).</summary>
    [Parameter]
    public SwitchParameter Quiet { get; set; }

    protected override void ProcessRecord()
    {
        foreach (var selected in SelectRuns())
        {
            var (run, target) = (selected.Run, selected.Target);
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
}
