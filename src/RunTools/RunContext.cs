using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// The run a run script is executing in: what Get-RunContext returns, and what Invoke-RunStep,
/// Invoke-RunItem and Add-RunArtifact use. One per runspace (jobs and runspaces do not share it).
/// </summary>
public sealed class RunContext
{
    private static readonly ConditionalWeakTable<Runspace, RunContext> s_current = new();

    internal RunContext(RunDirectory run, RunAttempt engine, IDictionary config, object? inDoubt)
    {
        Run = run;
        Engine = engine;
        Config = config;
        InDoubt = inDoubt;
    }

    public string RunId => Run.RunId;

    public string Name => Engine.State.Name;

    public string Path => Run.Path;

    /// <summary>This attempt's number (1 for the first).</summary>
    public int Attempt => Engine.Attempt;

    /// <summary>True when this attempt continues earlier ones.</summary>
    public bool IsResume => Engine.Attempt > 1;

    /// <summary>The effective config (as stored in config.json), as an ordered, case-insensitive dictionary.</summary>
    public IDictionary Config { get; }

    public string? CurrentStep => Engine.ActiveStep;

    public string? CurrentItem => ItemKey ?? Engine.ActiveItem;

    /// <summary>logs/attempt-N.log of this attempt.</summary>
    public string LogPath => Engine.LogPath;

    /// <summary>Item keys in doubt when the attempt began (step/key).</summary>
    public IReadOnlyList<ItemRef> InDoubtItems => Engine.Plan.InDoubt;

    /// <summary>Steps in doubt when the attempt began (started in an earlier attempt, never recorded as finished).</summary>
    public IReadOnlyList<StepRef> InDoubtSteps => Engine.Plan.InDoubtSteps;

    internal RunDirectory Run { get; }

    internal RunAttempt Engine { get; }

    /// <summary>Resume-Run's -InDoubt: an InDoubtAction or a script block that decides per item.</summary>
    internal object? InDoubt { get; }

    /// <summary>In a worker runspace of Invoke-RunItem -ThrottleLimit: the key of the item it runs now.</summary>
    internal string? ItemKey { get; set; }

    /// <summary>Set by an in-script cmdlet that met a stop request; the executor records Stopped.</summary>
    internal StopRequest? StopRequest { get; set; }

    /// <summary>Set by an in-script cmdlet whose step failed; the executor records Failed with this error.</summary>
    internal string? Failure { get; set; }

    /// <summary>The error behind <see cref="Failure"/>: RunFailed carries it as its inner exception, with its ErrorId.</summary>
    internal Exception? FailureCause { get; set; }

    public override string ToString() => RunId;

    internal static RunContext? Current => Runspace.DefaultRunspace is { } runspace && s_current.TryGetValue(runspace, out var context) ? context : null;

    internal static void Enter(RunContext context)
    {
        s_current.Remove(Runspace.DefaultRunspace);
        s_current.Add(Runspace.DefaultRunspace, context);
    }

    internal static void Leave() => s_current.Remove(Runspace.DefaultRunspace);

    internal static void Enter(Runspace runspace, RunContext context)
    {
        s_current.Remove(runspace);
        s_current.Add(runspace, context);
    }

    internal static void Leave(Runspace runspace) => s_current.Remove(runspace);

    /// <summary>The same run for a worker runspace of parallel items, with its own current item and outcome.</summary>
    internal RunContext ForParallelItems() => new(Run, Engine, Config, InDoubt);
}
