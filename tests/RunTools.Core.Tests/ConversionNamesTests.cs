using System;
using System.IO;
using System.Linq;
using RunTools.Core.Conversion;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Legacy names and keys that do not fit RunTools' rules (a phase name that is no step name, an
/// empty or too long key or trial id): converted without marking done anything not proven done,
/// and said once, in a warning of readable length.
/// </summary>
public sealed class ConversionNamesTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void APendingPhaseRenamedOntoACompletedStepLeavesTheStepPending(bool completedFirst)
    {
        string completed = "\"train_model\": { \"status\": \"completed\" }";
        string pending = "\"train model\": { \"status\": \"pending\" }";
        string legacy = Legacy("merged", $"{{ \"run_id\": \"m\", \"phases\": {{ {(completedFirst ? completed : pending)}, {(completedFirst ? pending : completed)} }} }}");

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.TrialManifests });

        var step = Assert.Single(result.Steps);
        Assert.Equal(("train_model", StepStatus.Pending), (step.Step, step.Status));
        var merged = Assert.Single(result.Warnings, w => w.Code == "phases_merged");
        Assert.Contains("'train model' (pending)", merged.Found, StringComparison.Ordinal);
        Assert.Contains("not completed", merged.Assumed, StringComparison.Ordinal);
        Assert.Single(result.Warnings, w => w.Code == "phase_renamed");
    }

    [Fact]
    public void ARenamedPhaseIsWarnedAboutOnceHoweverManyTrialsNameIt()
    {
        string legacy = Legacy("many", "{ \"run_id\": \"many\", \"phases\": { \"train model\": { \"status\": \"completed\" } } }");
        for (int i = 1; i <= 20; i++)
        {
            Trial(legacy, $"t{i:00}", $"\"trial_id\": \"t{i:00}\", \"phase\": \"train model\", \"status\": \"completed\"");
        }

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.TrialManifests });

        Assert.Single(result.Warnings, w => w.Code == "phase_renamed");
        var step = Assert.Single(result.Steps);
        Assert.Equal(("train_model", StepStatus.Completed, 20L), (step.Step, step.Status, step.ItemsCompleted));
    }

    [Fact]
    public void AnEmptyTrialIdFallsBackToTheDirectoryNameAndATooLongOneIsNotCompleted()
    {
        string longId = new('x', 1500);
        string legacy = Legacy("ids", "{ \"run_id\": \"ids\", \"phases\": { \"train\": { \"status\": \"completed\" } } }");
        Trial(legacy, "t1", "\"trial_id\": \"t1\", \"phase\": \"train\", \"status\": \"completed\"");
        Trial(legacy, "t2", "\"trial_id\": \"\", \"phase\": \"train\", \"status\": \"completed\"");
        Trial(legacy, "t3", $"\"trial_id\": \"{longId}\", \"phase\": \"train\", \"status\": \"completed\"");

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.TrialManifests });

        var state = result.Run.ReadState();
        var step = Assert.Single(result.Steps);
        Assert.Equal(("train", StepStatus.Pending, 2L), (step.Step, step.Status, step.ItemsCompleted));
        Assert.Contains("trials/t2/manifest.json has an empty trial_id", Assert.Single(result.Warnings, w => w.Code == "empty_trial_id").Found, StringComparison.Ordinal);
        var tooLong = Assert.Single(result.Warnings, w => w.Code == "invalid_trial_id");
        Assert.Contains("1500 characters", tooLong.Found, StringComparison.Ordinal);
        Assert.All(result.Warnings, w => Assert.True(w.Message.Length < 600, $"A warning quotes a long id whole: {w.Message.Length} characters"));
        Assert.Equal(2, state.ItemsCompleted);
    }

    [Fact]
    public void AnEmptyOrTooLongIdempotencyKeyIsABadLineNotACompletedItem()
    {
        string legacy = _dir.Combine("keys", "run_1");
        Directory.CreateDirectory(legacy);
        File.WriteAllText(Path.Combine(legacy, CheckpointReader.CheckpointFile), "{ \"run_id\": \"run_1\", \"processed_count\": 3 }");
        File.WriteAllText(Path.Combine(legacy, CheckpointReader.KeysFile), $"{{\"key\": \"good\"}}\n{{\"key\": \"\"}}\n{{\"key\": \"{new string('k', 1500)}\"}}\n");

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.Checkpoint });

        var step = Assert.Single(result.Steps);
        Assert.Equal(1L, step.ItemsCompleted);
        var bad = result.Warnings.Where(w => w.Code == "bad_key_line").ToList();
        Assert.Equal(2, bad.Count);
        Assert.Contains("an empty key", bad[0].Found, StringComparison.Ordinal);
        Assert.Contains("1500 characters", bad[1].Found, StringComparison.Ordinal);
        Assert.DoesNotContain("\"key\":null", File.ReadAllText(Path.Combine(legacy, "journal.jsonl")), StringComparison.Ordinal);
    }

    [Fact]
    public void ALegacyFileNamedLikeAnAttemptLogIsNeverWrittenInto()
    {
        string legacy = _dir.Combine("logs", "run_1");
        Directory.CreateDirectory(Path.Combine(legacy, "logs"));
        File.WriteAllText(Path.Combine(legacy, CheckpointReader.CheckpointFile), "{ \"run_id\": \"run_1\", \"processed_count\": 0 }");
        File.WriteAllText(Path.Combine(legacy, CheckpointReader.KeysFile), string.Empty);
        string legacyLog = Path.Combine(legacy, "logs", "attempt-1.log");
        File.WriteAllText(legacyLog, "LEGACY LOG LINE\n");

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.Checkpoint });
        using (var attempt = result.Run.BeginAttempt())
        {
            Assert.Equal(Path.Combine(legacy, "logs", "attempt-1-2.log"), attempt.LogPath);
            attempt.Complete();
        }

        Assert.Equal("LEGACY LOG LINE\n", File.ReadAllText(legacyLog));
        Assert.Contains("Attempt 1", File.ReadAllText(Path.Combine(legacy, "logs", "attempt-1-2.log")), StringComparison.Ordinal);
    }

    private string Legacy(string name, string runState)
    {
        string legacy = _dir.Combine(name, "run");
        Directory.CreateDirectory(Path.Combine(legacy, TrialManifestsReader.TrialsFolder));
        File.WriteAllText(Path.Combine(legacy, TrialManifestsReader.RunStateFile), runState);
        return legacy;
    }

    private static void Trial(string legacy, string directory, string members)
    {
        string folder = Path.Combine(legacy, TrialManifestsReader.TrialsFolder, directory);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, TrialManifestsReader.ManifestFile), $"{{ \"schema_version\": 2, {members}, \"artifacts\": [] }}");
    }
}
