using System.Collections.Generic;
using System.Linq;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>
/// Which steps an attempt runs under a step gate (-Step / -From / -To): steps outside it are
/// journaled as gated and not run. Tracks the script's progress through From and To.
/// </summary>
internal sealed class StepGateTracker
{
    private readonly StepGate? _gate;
    private bool _reachedFrom;
    private bool _passedTo;

    /// <summary>Validates the gate's step names (InvalidStepName) before the attempt takes the run.</summary>
    public StepGateTracker(StepGate? gate)
    {
        if (gate is not null && !gate.IsOpen)
        {
            foreach (string name in (gate.Only ?? new List<string>()).Concat(new[] { gate.From, gate.To }.Where(n => n is not null))!)
            {
                PortableName.ValidateStepName(name);
            }

            _gate = gate;
        }
    }

    /// <summary>The gate when it limits anything, else null.</summary>
    public StepGate? Gate => _gate;

    public bool Admits(string name)
    {
        if (_gate is null)
        {
            return true;
        }

        if (_gate.Only is { Count: > 0 } only)
        {
            return only.Contains(name);
        }

        if (_gate.From is not null && !_reachedFrom)
        {
            if (name != _gate.From)
            {
                return false;
            }

            _reachedFrom = true;
        }

        return !_passedTo;
    }

    /// <summary>A step completed: after the gate's To step, later steps are outside it.</summary>
    public void Completed(string name)
    {
        if (_gate?.To == name)
        {
            _passedTo = true;
        }
    }
}
