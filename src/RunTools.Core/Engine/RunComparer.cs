using System;
using System.Collections.Generic;
using System.Linq;
using RunTools.Core.Configuration;
using RunTools.Core.State;

namespace RunTools.Core.Engine;

/// <summary>One compared value, in the manner of a Compare-Object row.</summary>
public sealed class RunDifference
{
    internal RunDifference(RunComparisonProperty property, string name, object? referenceValue, object? differenceValue, RunDifferenceKind kind)
    {
        Property = property;
        Name = name;
        ReferenceValue = referenceValue;
        DifferenceValue = differenceValue;
        Kind = kind;
    }

    public RunComparisonProperty Property { get; }

    /// <summary>What is compared within the property: a config key path, a step name, an artifact's step/key/name.</summary>
    public string Name { get; }

    public object? ReferenceValue { get; }

    public object? DifferenceValue { get; }

    public RunDifferenceKind Kind { get; }

    /// <summary>Compare-Object's arrows: '&lt;=' only in the reference run, '=&gt;' only in the difference run, '&lt;&gt;' both but different, '==' equal.</summary>
    public string SideIndicator => Kind switch
    {
        RunDifferenceKind.Equal => "==",
        RunDifferenceKind.Added => "=>",
        RunDifferenceKind.Removed => "<=",
        _ => "<>",
    };

    public override string ToString() => $"{Property} {Name}: {ReferenceValue} {SideIndicator} {DifferenceValue}";
}

/// <summary>Compares two runs' recorded state (not their files: Test-Run verifies those).</summary>
public static class RunComparer
{
    /// <param name="properties">What to compare; null or empty for everything.</param>
    /// <param name="includeEqual">Also return the values that are equal (SideIndicator '==').</param>
    public static IReadOnlyList<RunDifference> Compare(RunDirectory reference, RunDirectory difference, IReadOnlyCollection<RunComparisonProperty>? properties = null, bool includeEqual = false)
    {
        var wanted = properties is { Count: > 0 } ? new HashSet<RunComparisonProperty>(properties) : null;
        bool Wants(RunComparisonProperty p) => wanted is null || wanted.Contains(p);

        var refPlan = reference.Plan(verifyArtifacts: false);
        var difPlan = difference.Plan(verifyArtifacts: false);
        var a = refPlan.State;
        var b = difPlan.State;
        var rows = new List<RunDifference>();
        void Add(RunComparisonProperty property, string name, object? x, object? y, RunDifferenceKind? kind = null)
        {
            // Both sides without a value (a step cut off on both, so no duration) are equal, not added.
            var k = kind ?? (Equals(x, y) ? RunDifferenceKind.Equal : x is null ? RunDifferenceKind.Added : y is null ? RunDifferenceKind.Removed : RunDifferenceKind.Changed);
            if (k != RunDifferenceKind.Equal || includeEqual)
            {
                rows.Add(new RunDifference(property, name, x, y, k));
            }
        }

        if (Wants(RunComparisonProperty.FormatVersion))
        {
            Add(RunComparisonProperty.FormatVersion, "format_version", a.FormatVersion, b.FormatVersion,
                a.FormatVersion == b.FormatVersion ? RunDifferenceKind.Equal : RunDifferenceKind.Incompatible);
        }

        if (Wants(RunComparisonProperty.Status))
        {
            Add(RunComparisonProperty.Status, "status", reference.DeriveStatus(a.Status), difference.DeriveStatus(b.Status));
        }

        if (Wants(RunComparisonProperty.Config))
        {
            Add(RunComparisonProperty.Config, "hash", a.Config.Hash, b.Config.Hash);
            if (!string.Equals(a.Config.Hash, b.Config.Hash, StringComparison.Ordinal))
            {
                foreach (var change in ConfigDiff.Compare(reference.ReadConfig().Root, difference.ReadConfig().Root))
                {
                    var kind = change.Kind switch
                    {
                        ConfigChangeKind.Added => RunDifferenceKind.Added,
                        ConfigChangeKind.Removed => RunDifferenceKind.Removed,
                        _ => RunDifferenceKind.Changed,
                    };
                    Add(RunComparisonProperty.Config, change.Path.Length == 0 ? "(root)" : change.Path, change.OldValue, change.NewValue, kind);
                }
            }
        }

        if (Wants(RunComparisonProperty.Script))
        {
            Add(RunComparisonProperty.Script, "hash", a.Script.Hash, b.Script.Hash);
        }

        var stepNames = StepOrder(a).Concat(StepOrder(b)).Distinct(StringComparer.Ordinal).ToList();
        if (Wants(RunComparisonProperty.Steps))
        {
            foreach (string name in stepNames)
            {
                Add(RunComparisonProperty.Steps, name, StepStatusOf(a, name), StepStatusOf(b, name));
            }
        }

        if (Wants(RunComparisonProperty.Durations))
        {
            foreach (string name in stepNames)
            {
                Add(RunComparisonProperty.Durations, name, DurationOf(a, name), DurationOf(b, name));
            }
        }

        if (Wants(RunComparisonProperty.Items))
        {
            foreach (string name in stepNames)
            {
                long? x = a.FindStep(name) is null ? null : Completed(refPlan, name);
                long? y = b.FindStep(name) is null ? null : Completed(difPlan, name);
                if (x.GetValueOrDefault() != 0 || y.GetValueOrDefault() != 0)
                {
                    Add(RunComparisonProperty.Items, name, x, y);
                }
            }

            Add(RunComparisonProperty.Items, "(all steps)", refPlan.CompletedItems, difPlan.CompletedItems);
        }

        if (Wants(RunComparisonProperty.Artifacts))
        {
            var x = LatestArtifacts(a);
            var y = LatestArtifacts(b);
            foreach (var key in x.Keys.Concat(y.Keys).Distinct())
            {
                x.TryGetValue(key, out string? hx);
                y.TryGetValue(key, out string? hy);
                Add(RunComparisonProperty.Artifacts, key, hx, hy);
            }
        }

        return rows;
    }

    private static IEnumerable<string> StepOrder(RunState state) =>
        state.DeclaredSteps.Concat(state.Steps.Select(s => s.Name));

    /// <summary>A declared step that never ran is Pending; a step the run does not know is absent (null).</summary>
    private static StepStatus? StepStatusOf(RunState state, string name) =>
        state.FindStep(name)?.Status ?? (state.DeclaredSteps.Contains(name) ? StepStatus.Pending : null);

    private static TimeSpan? DurationOf(RunState state, string name) =>
        state.FindStep(name)?.DurationMs is long ms ? TimeSpan.FromMilliseconds(ms) : null;

    private static long Completed(ResumePlan plan, string step) => plan.Ledger.For(step).Completed.Count;

    /// <summary>Each artifact identity (step/key/name) with the SHA-256 of its latest record.</summary>
    private static Dictionary<string, string> LatestArtifacts(RunState state)
    {
        var latest = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var artifact in state.Artifacts)
        {
            string id = artifact.Step is null ? artifact.Name : artifact.Key is null ? $"{artifact.Step}/{artifact.Name}" : $"{artifact.Step}/{artifact.Key}/{artifact.Name}";
            latest[id] = artifact.Sha256;
        }

        return latest;
    }
}
