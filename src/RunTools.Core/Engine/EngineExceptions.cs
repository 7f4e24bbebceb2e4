using System;
using System.Collections.Generic;
using System.Linq;
using RunTools.Core.Configuration;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>The config or the script changed since the run's recorded hashes.</summary>
public sealed class DriftException : RunToolsException
{
    internal DriftException(string runId, IReadOnlyList<DriftRecord> drift, IReadOnlyList<ConfigChange> configChanges)
        : base(drift.Any(d => d.Kind == "config") ? ErrorIds.ConfigDrift : drift.Any(d => d.Kind == "parameters") ? ErrorIds.ParametersDrift : ErrorIds.ScriptDrift,
              RunToolsErrorCategory.InvalidData, BuildMessage(runId, drift, configChanges), runId)
    {
        Drift = drift;
        ConfigChanges = configChanges;
    }

    public IReadOnlyList<DriftRecord> Drift { get; }

    public IReadOnlyList<ConfigChange> ConfigChanges { get; }

    public bool ScriptChanged => Drift.Any(d => d.Kind == "script");

    private static string BuildMessage(string runId, IReadOnlyList<DriftRecord> drift, IReadOnlyList<ConfigChange> changes)
    {
        var parts = new List<string>();
        var config = drift.FirstOrDefault(d => d.Kind == "config");
        if (config is not null)
        {
            parts.Add($"its config changed (hash {Short(config.OldHash)} -> {Short(config.NewHash)}; {ConfigDiff.Summarize(changes)})");
        }

        var parameters = drift.FirstOrDefault(d => d.Kind == "parameters");
        if (parameters is not null)
        {
            var changed = parameters.Changes.Select(ch => new ConfigChange(ch.Path, ch.Kind, ch.OldValue, ch.NewValue)).ToList();
            parts.Add($"its parameters changed (hash {Short(parameters.OldHash)} -> {Short(parameters.NewHash)}; {ConfigDiff.Summarize(changed)})");
        }

        var script = drift.FirstOrDefault(d => d.Kind == "script");
        if (script is not null)
        {
            parts.Add($"its script changed (hash {Short(script.OldHash)} -> {Short(script.NewHash)})");
        }

        return $"Run '{runId}' was not resumed: {string.Join(" and ", parts)}. Restore the original, or resume with -Force to continue under the new version (the drift is recorded in the journal).";
    }

    private static string Short(string hash) => hash.Length > 12 ? hash.Substring(0, 12) : hash;
}

/// <summary>
/// Items or steps are in doubt and the policy is Fail. One ErrorId (InDoubtItems) for both: the
/// condition and the operator's next step are the same, whatever the unit.
/// </summary>
public sealed class InDoubtItemsException : RunToolsException
{
    internal InDoubtItemsException(string runId, IReadOnlyList<ItemRef> items)
        : this(runId, items, Array.Empty<StepRef>())
    {
    }

    internal InDoubtItemsException(string runId, IReadOnlyList<ItemRef> items, IReadOnlyList<StepRef> steps)
        : base(ErrorIds.InDoubtItems, RunToolsErrorCategory.InvalidOperation, BuildMessage(runId, items, steps), runId)
    {
        Items = items;
        Steps = steps;
    }

    public IReadOnlyList<ItemRef> Items { get; }

    /// <summary>Steps in doubt (started, never recorded as finished).</summary>
    public IReadOnlyList<StepRef> Steps { get; }

    private static string BuildMessage(string runId, IReadOnlyList<ItemRef> items, IReadOnlyList<StepRef> steps)
    {
        var parts = new List<string>();
        if (steps.Count > 0)
        {
            parts.Add($"{steps.Count} step(s) ({string.Join(", ", steps.Take(10).Select(s => $"'{s.Step}', started in attempt {s.Attempt}"))}{(steps.Count > 10 ? ", ..." : string.Empty)})");
        }

        if (items.Count > 0 || steps.Count == 0)
        {
            parts.Add($"{items.Count} item(s) ({string.Join(", ", items.Take(10))}{(items.Count > 10 ? ", ..." : string.Empty)})");
        }

        return $"Run '{runId}' has {string.Join(" and ", parts)} whose work started but was never recorded as finished. Check whether that work happened, then resume with -InDoubt Retry (do it again), -InDoubt Skip (it happened), or a script block that decides per item or step.";
    }
}

/// <summary>Another live process owns the run.</summary>
public sealed class RunLockedException : RunToolsException
{
    internal RunLockedException(string runId, OwnerRecord? owner)
        : base(ErrorIds.RunLocked, RunToolsErrorCategory.ResourceBusy,
              owner is null
                  ? $"Run '{runId}' is owned by another live process. Wait for it to finish, or ask it to stop with Stop-Run."
                  : $"Run '{runId}' is owned by process {owner} (attempt started {owner.StartedAt:u}). Wait for it to finish, or ask it to stop with Stop-Run.",
              runId)
    {
        Owner = owner;
    }

    public OwnerRecord? Owner { get; }
}

/// <summary>Thrown at a step or item boundary when a stop was requested (Stop-Run or Ctrl+C).</summary>
public sealed class RunStoppedException : RunToolsException
{
    internal RunStoppedException(string runId, StopRequest request)
        : base(ErrorIds.StopRequested, RunToolsErrorCategory.OperationStopped,
              $"Run '{runId}' stopped at a step or item boundary as requested by {request.RequestedBy}{(request.Reason is null ? string.Empty : ": " + request.Reason)}. Resume it with Resume-Run.",
              runId)
    {
        Request = request;
    }

    public StopRequest Request { get; }
}
