using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;

namespace RunTools;

/// <summary>
/// The global state a worker runspace's items started from: each global variable (the variable
/// and its value, and the count of a collection such as <c>$Error</c> or
/// <c>$PSDefaultParameterValues</c>) and its event subscriptions. A worker whose state still
/// matches it when the next call comes has nothing of the earlier items to forget, so it can skip
/// <see cref="Runspace.ResetRunspaceState"/>, which sets the location again with a walk of every
/// parent folder of the process's current directory (tens of milliseconds under a large folder).
/// </summary>
/// <remarks>
/// What the reset does that this does not see: a debugger breakpoint or Set-PSDebug set by an
/// item, and a change made in place inside a built-in object that is not a collection. The
/// items' own variables live in their scope, which ends with each item; only <c>$global:</c>
/// assignments, errors and subscriptions reach the global state.
/// </remarks>
internal sealed class WorkerBaseline
{
    private readonly Dictionary<string, Entry> _variables;
    private readonly int _subscribers;
    private readonly int _events;

    private WorkerBaseline(Dictionary<string, Entry> variables, int subscribers, int events)
    {
        _variables = variables;
        _subscribers = subscribers;
        _events = events;
    }

    /// <summary>The state now, leaving out the variables <paramref name="ignore"/> names (the ones set for every call anyway).</summary>
    public static WorkerBaseline Take(PowerShell shell, Runspace runspace, Func<string, bool> ignore)
    {
        var variables = new Dictionary<string, Entry>(StringComparer.OrdinalIgnoreCase);
        foreach (var variable in GlobalVariables(shell))
        {
            if (!ignore(variable.Name))
            {
                variables[variable.Name] = new Entry(variable);
            }
        }

        return new WorkerBaseline(variables, runspace.Events.Subscribers.Count, runspace.Events.ReceivedEvents.Count);
    }

    /// <summary>Whether the state is still the one taken: no global variable added, removed, replaced or changed, no error, no subscription.</summary>
    public bool Holds(PowerShell shell, Runspace runspace, Func<string, bool> ignore)
    {
        if (runspace.Events.Subscribers.Count != _subscribers || runspace.Events.ReceivedEvents.Count != _events)
        {
            return false;
        }

        int seen = 0;
        foreach (var variable in GlobalVariables(shell))
        {
            if (ignore(variable.Name))
            {
                continue;
            }

            if (!_variables.TryGetValue(variable.Name, out var entry) || !entry.Matches(variable))
            {
                return false;
            }

            seen++;
        }

        return seen == _variables.Count;
    }

    private static IEnumerable<PSVariable> GlobalVariables(PowerShell shell)
    {
        shell.Commands.Clear();
        shell.AddCommand("Get-Variable").AddParameter("Scope", "Global");
        try
        {
            foreach (var found in shell.Invoke())
            {
                if (found?.BaseObject is PSVariable variable)
                {
                    yield return variable;
                }
            }
        }
        finally
        {
            shell.Commands.Clear();
            shell.Streams.ClearStreams();
        }
    }

    private readonly struct Entry
    {
        private readonly PSVariable _variable;
        private readonly object? _value;
        private readonly int _count;

        public Entry(PSVariable variable)
        {
            _variable = variable;
            _value = variable.Value;
            _count = _value is ICollection collection ? collection.Count : -1;
        }

        public bool Matches(PSVariable variable)
        {
            object? value = variable.Value;
            return ReferenceEquals(_variable, variable)
                && Equals(_value, value)
                && _count == (value is ICollection collection ? collection.Count : -1);
        }
    }
}
