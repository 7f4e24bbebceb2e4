using System;
using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// The run a run script is executing in: what Get-RunContext returns, and what Invoke-RunStep,
/// Invoke-RunItem and Add-RunArtifact use. One per runspace (jobs and runspaces do not share it).
/// </summary>
/// <remarks>
/// An in-script cmdlet called in a runspace without a context must still reach the run it belongs
/// to, so that the run fails instead of completing without that work. The attempt is also kept in
/// an AsyncLocal set on the thread that runs the script: .NET copies it to every thread started
/// from there (ForEach-Object -Parallel, Start-ThreadJob, a runspace the script opens), so such a
/// call finds exactly its own attempt, even with several runs in one process (-AsJob), and an
/// attempt that has ended. A Start-Job process has no link to the run: its call fails alone.
/// </remarks>
public sealed class RunContext
{
    private static readonly ConditionalWeakTable<Runspace, RunContext> s_current = new();

    // Runspaces whose run script has ended, with the attempt they ran last: a later call there is told so.
    private static readonly ConditionalWeakTable<Runspace, RunContext> s_ended = new();

    private static readonly AsyncLocal<RunContext?> s_origin = new();

    private readonly object _gate = new();
    private bool _closed;
    private RunToolsException? _misuse;

    internal RunContext(RunDirectory run, RunAttempt engine, IDictionary config, object? inDoubt, string scriptPath, RunContext? root = null)
    {
        Run = run;
        Engine = engine;
        Config = config;
        InDoubt = inDoubt;
        ScriptPath = scriptPath;
        AttemptContext = root ?? this;
    }

    public string RunId => Run.RunId;

    public string Name => Engine.State.Name;

    public string Path => Run.Path;

    /// <summary>
    /// The root the run is in, as <c>RunInfo.Root</c> names it: the folder that holds the run
    /// folder, or the database root (its URI without the password). A script passes it to the
    /// cmdlets that act on its own run, e.g. <c>Stop-Run -RunId $ctx.RunId -Root $ctx.Root</c>.
    /// </summary>
    public string Root => Run.Root;

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

    /// <summary>The run script as executed (its source path): calls from its lines after the attempt ended are told so.</summary>
    internal string ScriptPath { get; }

    /// <summary>The context of the run script's own runspace; a parallel item worker's context points to it.</summary>
    internal RunContext AttemptContext { get; }

    /// <summary>An in-script cmdlet was called from another runspace of this attempt: the run fails with this error.</summary>
    internal RunToolsException? Misuse
    {
        get
        {
            lock (AttemptContext._gate)
            {
                return AttemptContext._misuse;
            }
        }
    }

    /// <summary>When the attempt's script ended (then nothing more can be recorded); null while it runs.</summary>
    internal DateTimeOffset? EndedAt { get; private set; }

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

    /// <summary>The run <paramref name="runspace"/>'s script is executing in, if any (a run job asks it to stop).</summary>
    internal static RunContext? For(Runspace runspace) => s_current.TryGetValue(runspace, out var context) ? context : null;

    /// <summary>The attempt whose script started the thread this call runs on, if any (it may have ended).</summary>
    internal static RunContext? Origin => s_origin.Value;

    /// <summary>The attempt that ran last in this runspace, once it has ended.</summary>
    internal static RunContext? EndedHere => Runspace.DefaultRunspace is { } runspace && s_ended.TryGetValue(runspace, out var context) ? context : null;

    /// <summary>Makes <paramref name="context"/> the run of this runspace and of every thread started from this one; returns what to pass to <see cref="Leave"/>.</summary>
    internal static RunContext? Enter(RunContext context)
    {
        s_current.Remove(Runspace.DefaultRunspace);
        s_current.Add(Runspace.DefaultRunspace, context);
        var previous = s_origin.Value;
        s_origin.Value = context;
        return previous;
    }

    internal static void Leave(RunContext context, RunContext? previousOrigin)
    {
        context.Close();
        s_current.Remove(Runspace.DefaultRunspace);
        s_ended.Remove(Runspace.DefaultRunspace);
        s_ended.Add(Runspace.DefaultRunspace, context);
        s_origin.Value = previousOrigin;
    }

    internal static void Enter(Runspace runspace, RunContext context)
    {
        s_current.Remove(runspace);
        s_current.Add(runspace, context);
    }

    internal static void Leave(Runspace runspace) => s_current.Remove(runspace);

    /// <summary>
    /// A pooled worker thread serves an attempt other than the one that started it: threads started
    /// from it from now on (ForEach-Object -Parallel inside an item) belong to <paramref name="context"/>.
    /// </summary>
    internal static void Adopt(RunContext context) => s_origin.Value = context;

    /// <summary>The same run for a worker runspace of parallel items, with its own current item and outcome.</summary>
    internal RunContext ForParallelItems() => new(Run, Engine, Config, InDoubt, ScriptPath, AttemptContext);

    /// <summary>
    /// From another runspace: records that an in-script cmdlet was called where it cannot record,
    /// so that the attempt ends Failed. False when the attempt's script has already ended.
    /// </summary>
    internal bool ReportMisuse(RunToolsException error)
    {
        lock (AttemptContext._gate)
        {
            if (AttemptContext._closed)
            {
                return false;
            }

            AttemptContext._misuse ??= error;
            return true;
        }
    }

    /// <summary>The script has ended: from now on a misuse can no longer change how the attempt ends.</summary>
    internal void Close()
    {
        lock (AttemptContext._gate)
        {
            if (!AttemptContext._closed)
            {
                AttemptContext._closed = true;
                AttemptContext.EndedAt = DateTimeOffset.UtcNow;
            }
        }
    }
}
