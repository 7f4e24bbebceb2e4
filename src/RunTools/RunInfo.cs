using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>A run as operators see it: what Get-Run, Start-Run and Resume-Run return.</summary>
public sealed class RunInfo
{
    internal RunInfo(RunState state, string root, string? path, RunDirectory run)
    {
        Run = run;
        RunId = state.RunId;
        Name = state.Name;
        RunStatus = state.Status;
        Status = state.Status.ToString();
        Root = root;
        Path = path;
        CreatedAt = state.CreatedAt.LocalDateTime;
        UpdatedAt = state.UpdatedAt.LocalDateTime;
        StartedAt = state.StartedAt?.LocalDateTime;
        EndedAt = state.EndedAt?.LocalDateTime;
        Attempt = state.Attempt;
        var shape = ReadScriptShape(state, run);
        StepsTotal = CountSteps(state, shape);
        StepsCompleted = state.StepsCompleted;
        ItemsCompleted = state.ItemsCompleted;
        ItemsSkipped = state.ItemsSkipped;
        ItemsFailed = state.ItemsFailed;
        ItemsInDoubt = CountInDoubt(state);

        ItemsTotal = CountItems(state, shape);
        Percent = state.Status == RunStatus.Completed ? 100
            : StepsTotal is > 0 and int total ? (int)(100L * StepsCompleted / total)
            : null;
        Duration = state.StartedAt is not { } started ? null
            : state.EndedAt is { } ended ? ended - started
            : state.Status is RunStatus.Running or RunStatus.Stopping ? DateTimeOffset.UtcNow - started
            : state.UpdatedAt - started; // Interrupted: up to the last sign of life
        LastError = state.LastError;
        CurrentStep = state.CurrentStep;
        ConfigHash = state.Config.Hash;
        ScriptHash = state.Script.Hash;
        Converted = state.Migrated;
        LegacyFormat = state.SourceFormat;
        Owner = state.Status is RunStatus.Running or RunStatus.Stopping ? state.Owner?.ToString() : null;
        FormatVersion = state.FormatVersion;
        Error = state.Error;
    }

    public string RunId { get; }

    public string Name { get; }

    /// <summary>The run this was read from, to act on it again in this session (a run in a database has no path to reopen it by).</summary>
    internal RunDirectory? Run { get; }

    /// <summary>
    /// The <see cref="RunStatus"/> name (Created, Running, Stopping, Stopped, Completed, Failed, Interrupted).
    /// A string, not the enum, so ConvertTo-Json and Export-Csv write the name, not a number;
    /// <c>Where-Object Status -eq Stopped</c> and comparisons with [RunTools.RunStatus] still work.
    /// </summary>
    public string Status { get; }

    /// <summary><see cref="Status"/> as the enum, for the module's own decisions (exit codes, job states).</summary>
    internal RunStatus RunStatus { get; }

    /// <summary>The runs root the run lives under: a folder, or a PostgreSQL URI without its password.</summary>
    public string Root { get; }

    /// <summary>The run directory; null for a run in a database, which has no folder (<see cref="Root"/> and <see cref="RunId"/> name it).</summary>
    public string? Path { get; }

    public DateTime CreatedAt { get; }

    public DateTime UpdatedAt { get; }

    public DateTime? StartedAt { get; }

    public DateTime? EndedAt { get; }

    public int Attempt { get; }

    /// <summary>
    /// The steps the run has: those its script names literally (read from script.ps1's syntax tree)
    /// and those it recorded. Null when the script names a step by a computed value, so the
    /// total cannot be known before the script runs.
    /// </summary>
    public int? StepsTotal { get; }

    public int StepsCompleted { get; }

    /// <summary>
    /// All items the run's steps were given. Items arrive one by one through the pipeline, so the
    /// total is known once every step that runs items has completed — which steps those are is
    /// read from the script's text — or once the run is Completed; null before.
    /// </summary>
    public long? ItemsTotal { get; }

    public long ItemsCompleted { get; }

    /// <summary>Items set aside (in doubt or failed, resolved as skip): not run in this run.</summary>
    public long ItemsSkipped { get; }

    /// <summary>Items whose last try failed.</summary>
    public long ItemsFailed { get; }

    /// <summary>Items started and not recorded as finished by an attempt that is no longer running: the work may or may not have happened.</summary>
    public long ItemsInDoubt { get; }

    /// <summary>Completed steps as a percentage of <see cref="StepsTotal"/> (100 when Completed); null when the total is unknown.</summary>
    public int? Percent { get; }

    /// <summary>How long the latest attempt ran (so far, while Running; up to its last event when Interrupted); null when no attempt started.</summary>
    public TimeSpan? Duration { get; }

    /// <summary>The most recent step, item or run error of any attempt; it stays after a later attempt succeeds.</summary>
    public string? LastError { get; }

    public string? CurrentStep { get; }

    public string ConfigHash { get; }

    public string ScriptHash { get; }

    /// <summary>True for a run made by converting a legacy directory (run.json <c>migrated</c>); alias Migrated.</summary>
    public bool Converted { get; }

    /// <summary>The legacy format a converted run came from (its stored name, such as <c>checkpoint</c>); alias SourceFormat.</summary>
    public string? LegacyFormat { get; }

    /// <summary>pid@host of the owning process while the run is Running or Stopping.</summary>
    public string? Owner { get; }

    public int FormatVersion { get; }

    /// <summary>Why the last attempt failed, when it did.</summary>
    public string? Error { get; }

    public override string ToString() => RunId;

    /// <summary>What a run script's text says about its steps: their names (all of them only when Complete), and the steps that run items (null when that cannot be told).</summary>
    private sealed class ScriptShape
    {
        public ScriptShape(string[] steps, bool complete, IReadOnlyCollection<string>? itemSteps)
        {
            StepSet = new HashSet<string>(steps, StringComparer.Ordinal);
            Steps = StepSet.ToArray();
            Complete = complete;
            ItemSteps = itemSteps;
        }

        /// <summary>The step names, each once.</summary>
        public string[] Steps { get; }

        public HashSet<string> StepSet { get; }

        public bool Complete { get; }

        public IReadOnlyCollection<string>? ItemSteps { get; }
    }

    // Parsing a script costs about a millisecond; Get-Run over many runs of one script parses it once.
    private static readonly ConcurrentDictionary<string, ScriptShape> s_scriptShapes = new(StringComparer.Ordinal);

    /// <summary>
    /// The shape of the script the run recorded (its run folder's script.ps1, or the copy a run in a
    /// database stored there); null for a finished run (its state says it all), a run without a
    /// script (an adopted legacy directory) or a script that cannot be read.
    /// </summary>
    private static ScriptShape? ReadScriptShape(RunState state, RunDirectory run)
    {
        if (state.Status == RunStatus.Completed || state.Script.Hash.Length == 0)
        {
            return null;
        }

        if (s_scriptShapes.TryGetValue(state.Script.Hash, out var shape))
        {
            return shape;
        }

        // Only a script not seen yet is read: Get-Run over 10,000 runs of one script reads and parses it once.
        byte[]? content;
        try
        {
            content = run.ReadRecordedScript(state.Script.Hash);
        }
        catch (Exception ex) when (ex is System.IO.IOException || ex is UnauthorizedAccessException || ex is RunToolsException)
        {
            return null;
        }

        if (content is null)
        {
            return null;
        }

        string text = new System.IO.StreamReader(new System.IO.MemoryStream(content), System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true).ReadToEnd();
        var ast = System.Management.Automation.Language.Parser.ParseInput(text, run.ScriptPath, out _, out var errors);
        var steps = ScriptSteps.Read(ast, errors, out List<string> _, out bool complete);
        return s_scriptShapes.GetOrAdd(state.Script.Hash, new ScriptShape(steps.Select(s => s.Name).ToArray(), complete, ScriptSteps.ReadItemSteps(ast, errors)));
    }

    private static int? CountSteps(RunState state, ScriptShape? shape)
    {
        if (state.Status == RunStatus.Completed)
        {
            // Every step the run has was recorded; a step the script skipped by a condition is not one.
            return state.StepsTotal;
        }

        if (shape is null)
        {
            // No script to read (an adopted legacy directory): the steps declared at creation are all there is.
            return state.DeclaredSteps.Count > 0 ? state.StepsTotal : null;
        }

        if (!shape.Complete)
        {
            return null;
        }

        // The union of the script's, the declared and the recorded step names, counted without
        // allocating: Get-Run does this for every run, and LINQ's Union was a fifth of what it allocated.
        int count = shape.Steps.Length;
        for (int i = 0; i < state.DeclaredSteps.Count; i++)
        {
            string name = state.DeclaredSteps[i];
            if (!shape.StepSet.Contains(name) && state.DeclaredSteps.IndexOf(name) == i)
            {
                count++;
            }
        }

        for (int i = 0; i < state.Steps.Count; i++)
        {
            string name = state.Steps[i].Name;
            if (!shape.StepSet.Contains(name) && !state.DeclaredSteps.Contains(name) && ReferenceEquals(state.FindStep(name), state.Steps[i]))
            {
                count++;
            }
        }

        return count;
    }

    private static long? CountItems(RunState state, ScriptShape? shape)
    {
        long recorded = state.ItemsCompleted + state.ItemsSkipped + state.ItemsFailed + state.ItemsOpen;
        if (state.Status == RunStatus.Completed)
        {
            return recorded;
        }

        if (shape?.ItemSteps is not { } itemSteps)
        {
            return null;
        }

        // A completed step has seen all its input. A failed one may not have (a failing item ends
        // the step before the rest arrive), nor one set aside as skipped.
        foreach (string name in itemSteps)
        {
            var step = state.Steps.Find(s => string.Equals(s.Name, name, StringComparison.Ordinal));
            if (step is null || step.Status != StepStatus.Completed || step.Skipped)
            {
                return null;
            }
        }

        return recorded;
    }

    private static long CountInDoubt(RunState state)
    {
        if (state.Status is not (RunStatus.Running or RunStatus.Stopping))
        {
            return state.ItemsOpen;
        }

        // While an attempt runs, its open items are in flight; only those left by an earlier attempt are in doubt.
        var resumed = state.ResumeHistory.LastOrDefault(r => r.Attempt == state.Attempt);
        if (resumed is null || resumed.InDoubt.Count == 0)
        {
            return 0;
        }

        return state.Steps.Sum(s => (long)s.ItemsOpen.Count(k => resumed.InDoubt.Exists(d => d.Step == s.Name && d.Key == k)));
    }

    /// <summary>
    /// A run as listed or after an attempt. A run held in a database has its root's URI (without
    /// password) as Root and no Path: its folder here is only a local copy, not where the run lives.
    /// </summary>
    internal static RunInfo From(RunDirectory run, RunState state) => From(run, state, run.Root);

    /// <summary>As <see cref="From(RunDirectory, RunState)"/> with the root given: a listing names it once for all its runs.</summary>
    internal static RunInfo From(RunDirectory run, RunState state, string root) =>
        new(state, root, run.DatabaseRoot is null ? run.Path : null, run);
}
