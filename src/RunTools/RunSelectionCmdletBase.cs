using System;
using System.Collections.Generic;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>The parameter sets that select runs, named once for every cmdlet that takes runs.</summary>
internal static class RunSelectionSets
{
    /// <summary>-RunId (and -Root): the default set.</summary>
    public const string ById = "ById";

    /// <summary>-Name with wildcards (and -Root).</summary>
    public const string ByName = "ByName";

    /// <summary>RunInfo from the pipeline (Get-Run | ...).</summary>
    public const string ByInputObject = "ByInputObject";

    /// <summary>-Path: run directories, wherever they are.</summary>
    public const string ByPath = "ByPath";
}

/// <summary>A run a selection named, with what to name it by in an error about it.</summary>
internal sealed class SelectedRun
{
    internal SelectedRun(RunDirectory run, object target, RunState? state = null)
    {
        Run = run;
        Target = target;
        State = state;
    }

    public RunDirectory Run { get; }

    /// <summary>The id, RunInfo or path that selected the run: the target of an ErrorRecord about it.</summary>
    public object Target { get; }

    /// <summary>The state read while selecting (by name), else null: read it when needed.</summary>
    public RunState? State { get; }
}

/// <summary>
/// A cmdlet that takes runs: -RunId (with -Root), -Name (wildcards, with -Root), RunInfo from the
/// pipeline, or -Path, declared here once so every such cmdlet binds alike; <see cref="SelectRuns()"/>
/// turns whichever set was bound into runs, with one error per bad selection.
/// Resume-Run cannot derive from this (it shares Start-Run's base), so it declares the same
/// parameters itself; the convention tests hold the two to one shape.
/// </summary>
public abstract class RunSelectionCmdletBase : RunCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ParameterSetName = RunSelectionSets.ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    /// <summary>Runs whose name matches (wildcards).</summary>
    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByName)]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    /// <summary>Virtual so that a cmdlet with a set of its own (Remove-Run's filters) can take -Root there too.</summary>
    [Parameter(ParameterSetName = RunSelectionSets.ById, ValueFromPipelineByPropertyName = true)]
    [Parameter(ParameterSetName = RunSelectionSets.ByName, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public virtual string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByInputObject, ValueFromPipeline = true)]
    public RunInfo[] InputObject { get; set; } = Array.Empty<RunInfo>();

    /// <summary>Run directories, wherever they are.</summary>
    [Parameter(Mandatory = true, ParameterSetName = RunSelectionSets.ByPath)]
    [ValidateNotNullOrEmpty]
    public string[] Path { get; set; } = Array.Empty<string>();

    /// <summary>The runs the bound set names; each bad selection has been written as one error.</summary>
    private protected IEnumerable<SelectedRun> SelectRuns() => SelectRuns(ParameterSetName, RunId, Name, Root, InputObject, Path);
}
