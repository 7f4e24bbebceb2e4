using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>RunComparer (Compare-Run): rows in the manner of Compare-Object.</summary>
public sealed class CompareRunTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;

    public CompareRunTests() => _root = new RunsRoot(_dir.Combine("runs"));

    public void Dispose() => _dir.Dispose();

    private RunDirectory Run(string id, Dictionary<string, object?> config, string script, int frames, bool finish = true, string pixels = "pixels")
    {
        var run = Runs.Create(_root, id, config, script);
        string source = _dir.Combine($"{id}.bin");
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("plan");
        attempt.CompleteStep("plan", Runs.Bytes("<Objs/>"), "clixml");
        attempt.BeginStep("frames");
        for (int i = 0; i < frames; i++)
        {
            string key = $"frame_{i}";
            attempt.BeginItem("frames", key);
            File.WriteAllText(source, $"{pixels} {i}");
            attempt.AddArtifact(source, $"{key}.png");
            attempt.CompleteItem("frames", key, null);
        }

        if (finish)
        {
            attempt.CompleteStep("frames", null);
            attempt.Complete();
        }
        else
        {
            attempt.FailStep("frames", "generator down");
            attempt.Fail("generator down");
        }

        return run;
    }

    private static Dictionary<string, object?> Config(string model) => new() { ["model"] = model, ["retries"] = 2 };

    private static IReadOnlyList<RunDifference> Compare(RunDirectory a, RunDirectory b, bool includeEqual = false, params RunComparisonProperty[] properties) =>
        RunComparer.Compare(a, b, properties, includeEqual);

    [Fact]
    public void ARunWithAStepCutOffComparedWithItselfHasNoDifferences()
    {
        // A step cut off by a kill has no duration on either side: that is no difference.
        var run = Runs.Create(_root, "cut", Config("m1"), "script");
        var attempt = run.BeginAttempt();
        attempt.BeginStep("frames");
        attempt.BeginItem("frames", "frame_0");
        attempt.CompleteItem("frames", "frame_0", null);
        attempt.Dispose(); // as a kill leaves it (the lock released as the OS would): the step started, never ended
        Assert.Null(run.ReadState().FindStep("frames")!.DurationMs);

        Assert.Empty(Compare(run, run));
        var durations = Assert.Single(Compare(run, run, includeEqual: true, RunComparisonProperty.Durations));
        Assert.Equal(RunDifferenceKind.Equal, durations.Kind);
    }

    [Fact]
    public void ARunComparedWithItselfHasNoDifferencesAndIncludeEqualListsEverything()
    {
        var run = Run("a", Config("m1"), "# s", 2);
        Assert.Empty(Compare(run, run));
        var all = Compare(run, run, includeEqual: true);
        Assert.All(all, d => Assert.Equal("==", d.SideIndicator));
        Assert.Equal(
            new[] { "Artifacts", "Config", "Durations", "FormatVersion", "Items", "Script", "Status", "Steps" },
            all.Select(d => d.Property.ToString()).Distinct().OrderBy(p => p, StringComparer.Ordinal));
    }

    [Fact]
    public void ConfigDifferencesNameEveryChangedKeyWithBothValues()
    {
        var a = Run("a", Config("m1"), "# s", 1);
        var config = Config("m2");
        config["auditor"] = new Dictionary<string, object?> { ["retries"] = 3 };
        var b = Run("b", config, "# s", 1);

        var rows = Compare(a, b, false, RunComparisonProperty.Config);
        var hash = Assert.Single(rows, r => r.Name == "hash");
        Assert.Equal(a.ReadState().Config.Hash, hash.ReferenceValue);
        Assert.Equal(b.ReadState().Config.Hash, hash.DifferenceValue);
        var model = Assert.Single(rows, r => r.Name == "model");
        Assert.Equal(("\"m1\"", "\"m2\"", "<>"), ((string?)model.ReferenceValue, (string?)model.DifferenceValue, model.SideIndicator));
        var added = Assert.Single(rows, r => r.Name == "auditor");
        Assert.Equal(RunDifferenceKind.Added, added.Kind);
        Assert.Equal("=>", added.SideIndicator);
        Assert.Null(added.ReferenceValue);
        Assert.Equal(3, rows.Count);

        var reverse = Compare(b, a, false, RunComparisonProperty.Config);
        Assert.Equal("<=", Assert.Single(reverse, r => r.Name == "auditor").SideIndicator);
    }

    [Fact]
    public void StepsItemsArtifactsAndScriptAreCompared()
    {
        var a = Run("a", Config("m1"), "# s1", 3);
        var b = Run("b", Config("m1"), "# s2", 2, finish: false, pixels: "PIXELS");

        var rows = Compare(a, b);
        Assert.DoesNotContain(rows, r => r.Property == RunComparisonProperty.Config);
        Assert.Single(rows, r => r.Property == RunComparisonProperty.Script && r.Name == "hash");
        var status = Assert.Single(rows, r => r.Property == RunComparisonProperty.Status);
        Assert.Equal((RunStatus.Completed, RunStatus.Failed), ((RunStatus)status.ReferenceValue!, (RunStatus)status.DifferenceValue!));
        var frames = Assert.Single(rows, r => r.Property == RunComparisonProperty.Steps);
        Assert.Equal(("frames", StepStatus.Completed, StepStatus.Failed), (frames.Name, (StepStatus)frames.ReferenceValue!, (StepStatus)frames.DifferenceValue!));
        Assert.Contains(rows, r => r.Property == RunComparisonProperty.Items && r.Name == "frames" && (long)r.ReferenceValue! == 3 && (long)r.DifferenceValue! == 2);
        Assert.Contains(rows, r => r.Property == RunComparisonProperty.Items && r.Name == "(all steps)");

        var artifacts = rows.Where(r => r.Property == RunComparisonProperty.Artifacts).ToDictionary(r => r.Name);
        Assert.Equal(3, artifacts.Count);
        Assert.Equal(RunDifferenceKind.Changed, artifacts["frames/frame_0/frame_0.png"].Kind);
        Assert.Equal(RunDifferenceKind.Removed, artifacts["frames/frame_2/frame_2.png"].Kind);
        Assert.Equal(Integrity.Sha256Hex(Runs.Bytes("pixels 2")), artifacts["frames/frame_2/frame_2.png"].ReferenceValue);

        // Durations: one row per step with both recorded durations (equal rows included, since two
        // runs may take the same milliseconds); a row is Changed exactly when the durations differ.
        var durations = Compare(a, b, true, RunComparisonProperty.Durations);
        Assert.Equal(new[] { "frames", "plan" }, durations.Select(r => r.Name).OrderBy(n => n, StringComparer.Ordinal));
        foreach (var row in durations)
        {
            var step = a.ReadState().FindStep(row.Name)!;
            Assert.Equal(TimeSpan.FromMilliseconds(step.DurationMs!.Value), Assert.IsType<TimeSpan>(row.ReferenceValue));
            Assert.Equal(TimeSpan.FromMilliseconds(b.ReadState().FindStep(row.Name)!.DurationMs!.Value), Assert.IsType<TimeSpan>(row.DifferenceValue));
            Assert.Equal(Equals(row.ReferenceValue, row.DifferenceValue) ? RunDifferenceKind.Equal : RunDifferenceKind.Changed, row.Kind);
        }

        // Asking for some properties gives rows of those properties only.
        Assert.Equal(
            new[] { (RunComparisonProperty.Script, "hash"), (RunComparisonProperty.Steps, "frames") },
            Compare(a, b, false, RunComparisonProperty.Steps, RunComparisonProperty.Script).Select(r => (r.Property, r.Name)).OrderBy(r => r.Property.ToString(), StringComparer.Ordinal));
    }

    [Fact]
    public void DifferentFormatVersionsAreFlaggedIncompatible()
    {
        var a = Run("a", Config("m1"), "# s", 1);
        var b = Run("b", Config("m1"), "# s", 1);
        RewriteFirstJournalLine(b, line => line.Replace("\"format_version\":1", "\"format_version\":0"));
        File.Delete(b.StatePath); // rebuilt from the journal

        var row = Assert.Single(Compare(a, b, false, RunComparisonProperty.FormatVersion));
        Assert.Equal(RunDifferenceKind.Incompatible, row.Kind);
        Assert.Equal((1, 0), ((int)row.ReferenceValue!, (int)row.DifferenceValue!));
        Assert.Empty(Compare(a, a, false, RunComparisonProperty.FormatVersion));
    }

    /// <summary>Edits a journal line and gives it a valid checksum again, as a writer of another version would have.</summary>
    private static void RewriteFirstJournalLine(RunDirectory run, Func<string, string> edit)
    {
        var lines = File.ReadAllLines(run.JournalPath);
        string edited = edit(lines[0]);
        Assert.NotEqual(lines[0], edited);
        string withoutCrc = edited.Substring(0, edited.LastIndexOf(",\"crc\":\"", StringComparison.Ordinal)) + "}";
        uint crc = Crc32.Compute(Encoding.UTF8.GetBytes(withoutCrc));
        lines[0] = withoutCrc.Substring(0, withoutCrc.Length - 1) + ",\"crc\":\"" + crc.ToString("x8", CultureInfo.InvariantCulture) + "\"}";
        File.WriteAllText(run.JournalPath, string.Join("\n", lines) + "\n");
    }
}
