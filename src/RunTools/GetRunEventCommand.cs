using System;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>Reads a run's journal as typed events.</summary>
[Cmdlet(VerbsCommon.Get, "RunEvent", DefaultParameterSetName = RunSelectionSets.ById, HelpUri = HelpLinks.Pages + "Get-RunEvent.md")]
[OutputType(typeof(RunEvent))]
public sealed class GetRunEventCommand : RunSelectionCmdletBase, IDisposable
{
    private readonly System.Threading.ManualResetEvent _stopping = new(false);

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

    /// <summary>After the events so far, follow the journal (like Get-Content -Wait) until the run is no longer Running, or Ctrl+C.</summary>
    [Parameter]
    public SwitchParameter Wait { get; set; }

    protected override void ProcessRecord()
    {
        System.Collections.Generic.List<WildcardPattern> patterns;
        try
        {
            patterns = WildcardPatterns(Type, nameof(Type));
        }
        catch (RunToolsException ex)
        {
            // No run's events can be filtered with a pattern that does not parse.
            WriteError(ToErrorRecord(ex));
            return;
        }

        // Each run's events in turn, each event naming its run (RunEvent.RunId); -Last and -Wait are per run.
        foreach (var selected in SelectRuns())
        {
            if (_stopping.WaitOne(0))
            {
                return;
            }

            try
            {
                WriteEvents(selected.Run, patterns);
            }
            catch (RunToolsException ex)
            {
                WriteError(ToErrorRecord(ex, selected.Target));
            }
        }
    }

    private void WriteEvents(RunDirectory run, System.Collections.Generic.List<WildcardPattern> patterns)
    {
        long lastSequence = 0;
        long lastOffset = 0;
        var all = run.ReadEvents().Select(e =>
        {
            // Every event read moves the position -Wait follows from, matching or not.
            (lastSequence, lastOffset) = (e.Sequence, e.Offset);
            return e;
        });
        var events = all.Where(e => (patterns.Count == 0 || patterns.Any(p => p.IsMatch(e.Type))) && (Step is null || e.Step == Step));
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

        if (lastSequence == 0)
        {
            // Every run has at least its run_created event: none at all is a damaged run, not an empty answer.
            throw new RunToolsException(ErrorIds.JournalUnreadable, RunToolsErrorCategory.ReadError,
                $"Run '{run.RunId}' has no readable journal event (its {RunFormat.JournalFile} is missing, empty or damaged throughout), so it has no events to list. Run Test-Run on it to see what is damaged, and restore the run from a backup or archive.",
                run.RunId);
        }

        if (Wait)
        {
            Follow(run, patterns, lastSequence, lastOffset);
        }
    }

    /// <summary>
    /// Reads the journal again from the last event read, until a read made after the run stopped
    /// running has returned what was left.
    /// </summary>
    private void Follow(RunDirectory run, System.Collections.Generic.List<WildcardPattern> patterns, long lastSequence, long lastOffset)
    {
        while (!_stopping.WaitOne(WaitRunCommand.PollInterval))
        {
            // Status first: events written before the run ended are then certain to be read below.
            bool running = run.ReadState().Status is RunStatus.Running or RunStatus.Stopping;
            foreach (var e in run.ReadEvents(lastOffset))
            {
                if (e.Sequence <= lastSequence)
                {
                    continue;
                }

                (lastSequence, lastOffset) = (e.Sequence, e.Offset);
                if ((patterns.Count == 0 || patterns.Any(p => p.IsMatch(e.Type))) && (Step is null || e.Step == Step))
                {
                    WriteObject(new RunEvent(run.RunId, e));
                }
            }

            if (!running)
            {
                return;
            }
        }
    }

    protected override void StopProcessing() => _stopping.Set();

    public void Dispose() => _stopping.Dispose();
}
