using System;
using System.Collections;
using System.Linq;
using System.Management.Automation;
using RunTools.Core.State;

namespace RunTools;

/// <summary>What Start-Run and Resume-Run share: the script's parameters, the step gate, and Ctrl+C.</summary>
public abstract class RunExecutionCmdletBase : RunCmdletBase
{
    /// <summary>Parameters passed to the run script (splatted).</summary>
    [Parameter]
    public Hashtable? Parameters { get; set; }

    /// <summary>Run only these steps.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string[] Step { get; set; } = Array.Empty<string>();

    /// <summary>Run from this step on (steps before it are replayed or skipped).</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? FromStep { get; set; }

    /// <summary>Run up to and including this step.</summary>
    [Parameter]
    [ValidateNotNullOrEmpty]
    public string? ToStep { get; set; }

    /// <summary>
    /// Seconds this attempt may run; at the limit the run is asked to stop, as Stop-Run asks
    /// (at the next step or item boundary, or after a grace period by stopping the unit in
    /// flight), and ends Stopped: resume it later. 0 (the default): no limit.
    /// </summary>
    [Parameter]
    [ValidateRange(0, int.MaxValue)]
    public int TimeoutSec { get; set; }

    private RunExecutor? _executor;

    internal RunExecutor? Executor
    {
        get => _executor;
        set
        {
            _executor = value;
            if (value is not null && TimeoutSec > 0)
            {
                value.TimeLimit = TimeSpan.FromSeconds(TimeoutSec);
            }
        }
    }

    internal StepGate? Gate =>
        Step.Length == 0 && FromStep is null && ToStep is null ? null : new StepGate { Only = Step.Length == 0 ? null : Step.ToList(), From = FromStep, To = ToStep };

    /// <summary>Ctrl+C: honoured at the next boundary, and the run script's pipeline is stopped.</summary>
    protected override void StopProcessing() => Executor?.Stop();
}
