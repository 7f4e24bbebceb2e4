using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Reads a run's journal as typed events.</summary>
[Cmdlet(VerbsCommon.Get, "RunEvent", DefaultParameterSetName = ById)]
[OutputType(typeof(RunEvent))]
public sealed class GetRunEventCommand : RunCmdletBase
{
    private const string ById = "ById";
    private const string ByInput = "ByInputObject";
    private const string ByPath = "ByPath";

    [Parameter(Mandatory = true, Position = 0, ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [ValidateNotNullOrEmpty]
    public string RunId { get; set; } = string.Empty;

    [Parameter(ParameterSetName = ById, ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string? Root { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByInput, ValueFromPipeline = true)]
    public RunInfo? InputObject { get; set; }

    [Parameter(Mandatory = true, ParameterSetName = ByPath)]
    [ValidateNotNullOrEmpty]
    public string? Path { get; set; }

    /// <summary>Event types to return (wildcards): item_*, run_completed, ...</summary>
    [Parameter]
    [SupportsWildcards]
    public string[] Type { get; set; } = Array.Empty<string>();

    [Parameter]
    public string? Step { get; set; }

    /// <summary>Only the last N matching events.</summary>
    [Parameter]
    [ValidateRange(1, int.MaxValue)]
    public int Last { get; set; }

    protected override void ProcessRecord()
    {
        try
        {
            var run = FindRun(RunId, Root, InputObject, Path);
            var patterns = WildcardPatterns(Type, nameof(Type));
            var events = run.ReadEvents().Where(e => (patterns.Count == 0 || patterns.Any(p => p.IsMatch(e.Type))) && (Step is null || e.Step == Step));
            if (Last > 0)
            {
                var window = new System.Collections.Generic.Queue<Core.Journal.JournalEvent>(Last);
                foreach (var e in events)
                {
                    if (window.Count == Last)
                    {
                        window.Dequeue();
                    }

                    window.Enqueue(e);
                }

                events = window;
            }

            foreach (var e in events)
            {
                WriteObject(new RunEvent(run.RunId, e));
            }
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, (object?)InputObject ?? RunId));
        }
    }
}
