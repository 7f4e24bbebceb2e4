using System;
using System.Collections.Generic;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>Compares two runs' recorded state in the manner of Compare-Object.</summary>
[Cmdlet(VerbsData.Compare, "Run", DefaultParameterSetName = ById, HelpUri = HelpLinks.Pages + "Compare-Run.md")]
[OutputType(typeof(RunDifference))]
public sealed class CompareRunCommand : RunCmdletBase
{
    // Two runs, not a selection: its own Reference/Difference sets, each side opened by FindRun.
    private const string ById = RunSelectionSets.ById;
    private const string ByInput = RunSelectionSets.ByInputObject;
    private const string ByPath = RunSelectionSets.ByPath;
    private readonly List<RunInfo> _piped = new();

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string ReferenceRunId { get; set; } = string.Empty;

    [Parameter(Mandatory = true, Position = 1, ParameterSetName = ById)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string DifferenceRunId { get; set; } = string.Empty;

    [Parameter(ParameterSetName = ById)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    /// <summary>Exactly two runs from the pipeline: the first is the reference, the second the difference.</summary>
    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string? ReferencePath { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string? DifferencePath { get; set; }

    /// <summary>Compares only these (Config, Script, FormatVersion, Status, Steps, Durations, Items, Artifacts).</summary>
    [Parameter]
    public RunComparisonProperty[] Property { get; set; } = Array.Empty<RunComparisonProperty>();

    /// <summary>Also returns the values that are equal (SideIndicator '==').</summary>
    [Parameter]
    public SwitchParameter IncludeEqual { get; set; }

    protected override void ProcessRecord()
    {
        if (ParameterSetName == ByInput)
        {
            _piped.Add(InputObject!);
        }
    }

    protected override void EndProcessing()
    {
        RunDirectory reference;
        RunDirectory difference;
        try
        {
            switch (ParameterSetName)
            {
                case ByInput when _piped.Count != 2:
                    ThrowTerminatingError(ToErrorRecord(new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                        $"Compare-Run compares two runs; the pipeline gave it {_piped.Count}. Pipe exactly two (the reference first), or use -ReferenceRunId and -DifferenceRunId.", _piped)));
                    return;
                case ByInput:
                    reference = FindRun(null, null, _piped[0], null);
                    difference = FindRun(null, null, _piped[1], null);
                    break;
                case ByPath:
                    reference = FindRun(null, null, null, ReferencePath);
                    difference = FindRun(null, null, null, DifferencePath);
                    break;
                default:
                    reference = FindRun(ReferenceRunId, Root, null, null);
                    difference = FindRun(DifferenceRunId, Root, null, null);
                    break;
            }

            foreach (var row in RunComparer.Compare(reference, difference, Property, IncludeEqual))
            {
                WriteObject(new RunDifference(reference.RunId, difference.RunId, row));
            }
        }
        catch (RunToolsException ex)
        {
            // Nothing can be compared without both runs.
            ThrowTerminatingError(ToErrorRecord(ex));
        }
    }
}
