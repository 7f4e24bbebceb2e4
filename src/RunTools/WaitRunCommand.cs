using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Threading;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// Waits until runs are no longer Running (or Stopping), like Wait-Job: returns their RunInfo then;
/// on -Timeout returns nothing and writes nothing. Readers take no lock, so this never disturbs the owner.
/// </summary>
[Cmdlet(VerbsLifecycle.Wait, "Run", DefaultParameterSetName = RunSelectionSets.ById, HelpUri = HelpLinks.Pages + "Wait-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class WaitRunCommand : RunSelectionCmdletBase, IDisposable
{
    /// <summary>How often the run's state is read again; reading run.json and the journal tail is cheap.</summary>
    internal static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(200);

    private readonly List<RunDirectory> _runs = new();
    private readonly ManualResetEvent _stopping = new(false);

    /// <summary>Seconds to wait; -1 (the default) waits for ever.</summary>
    [Parameter]
    [Alias("TimeoutSec")]
    [ValidateRange(-1, int.MaxValue)]
    public int Timeout { get; set; } = -1;

    /// <summary>Return as soon as one of the runs is no longer running.</summary>
    [Parameter]
    public SwitchParameter Any { get; set; }

    protected override void ProcessRecord() => _runs.AddRange(SelectRuns().Select(s => s.Run));

    protected override void EndProcessing()
    {
        var pending = _runs.GroupBy(r => r.Path, StringComparer.Ordinal).Select(g => g.First()).ToList();
        if (pending.Count == 0)
        {
            return;
        }

        var done = new List<RunInfo>();
        DateTime? deadline = Timeout < 0 ? null : DateTime.UtcNow.AddSeconds(Timeout);
        while (true)
        {
            for (int i = pending.Count - 1; i >= 0; i--)
            {
                RunState state;
                try
                {
                    state = pending[i].ReadState();
                }
                catch (RunToolsException ex)
                {
                    // A run removed or broken while we waited is reported and no longer waited for.
                    WriteError(ToErrorRecord(ex, pending[i].RunId));
                    pending.RemoveAt(i);
                    continue;
                }

                if (state.Status is not (RunStatus.Running or RunStatus.Stopping))
                {
                    done.Add(RunInfo.From(pending[i], state));
                    pending.RemoveAt(i);
                }
            }

            if (pending.Count == 0 || (Any && done.Count > 0))
            {
                break;
            }

            var wait = PollInterval;
            if (deadline is { } end)
            {
                var left = end - DateTime.UtcNow;
                if (left <= TimeSpan.Zero)
                {
                    // Like Wait-Job: a timeout returns nothing, not the runs that happened to finish.
                    return;
                }

                wait = left < wait ? left : wait;
            }

            if (_stopping.WaitOne(wait))
            {
                return;
            }
        }

        // Input order, as Wait-Job returns jobs; with -Any only the runs that ended.
        foreach (var info in done.OrderBy(d => _runs.FindIndex(r => r.Path == d.Path)))
        {
            WriteObject(info);
        }
    }

    protected override void StopProcessing() => _stopping.Set();

    public void Dispose() => _stopping.Dispose();
}
