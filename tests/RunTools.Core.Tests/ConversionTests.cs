using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.Conversion;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Legacy directories (tests/fixtures, written from the seeds' descriptions) converted in place:
/// faithful import, legacy files byte-identical, backups of corrupt files, specific warnings,
/// then a real resume through the engine that skips the imported work and redoes the rest.
/// </summary>
public sealed class ConversionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    internal static string FixturesPath
    {
        get
        {
            for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
            {
                string candidate = Path.Combine(directory.FullName, "tests", "fixtures");
                if (Directory.Exists(candidate))
                {
                    return candidate;
                }
            }

            throw new DirectoryNotFoundException("tests/fixtures not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>A copy of a fixture directory in a temp folder (fixtures are never converted themselves).</summary>
    internal static string CopyFixture(TempDir dir, string relative)
    {
        string source = Path.Combine(FixturesPath, relative.Replace('/', Path.DirectorySeparatorChar));
        string target = dir.Combine(Guid.NewGuid().ToString("N").Substring(0, 6), Path.GetFileName(source));
        foreach (string file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            string destination = Path.Combine(target, file.Substring(source.Length + 1));
            Directory.CreateDirectory(Path.GetDirectoryName(destination)!);
            File.Copy(file, destination);
        }

        return target;
    }

    internal static Dictionary<string, byte[]> Snapshot(string root) =>
        Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .ToDictionary(f => f.Substring(root.Length + 1).Replace('\\', '/'), File.ReadAllBytes);

    /// <summary>Every legacy file is still there with the same bytes; an append-only log may only have grown.</summary>
    internal static void AssertLegacyUntouched(Dictionary<string, byte[]> before, string root, params string[] appendOnly)
    {
        foreach (var file in before)
        {
            string path = Path.Combine(root, file.Key);
            Assert.True(File.Exists(path), $"legacy file {file.Key} is gone");
            byte[] now = File.ReadAllBytes(path);
            if (appendOnly.Contains(file.Key))
            {
                Assert.True(now.Length >= file.Value.Length && now.AsSpan(0, file.Value.Length).SequenceEqual(file.Value), $"{file.Key} was rewritten, not appended to");
            }
            else
            {
                Assert.True(now.AsSpan().SequenceEqual(file.Value), $"legacy file {file.Key} changed");
            }
        }
    }

    private static string Sha256(string path)
    {
        using var sha = SHA256.Create();
        return Convert.ToHexString(sha.ComputeHash(File.ReadAllBytes(path))).ToLowerInvariant();
    }

    private static JsonObject MigratedEvent(RunDirectory run) => run.ReadEvents().Single(e => e.Type == JournalEventTypes.RunMigrated).Data;

    private static string[] Codes(ConversionResult result) => result.Warnings.Select(w => w.Code).ToArray();

    [Fact]
    public void CheckpointKeysBecomeCompletedItemsAndThePositionIsCheckedAgainstThem()
    {
        string legacy = CopyFixture(_dir, "checkpoint/run_42_10");
        var before = Snapshot(legacy);
        var observer = new RecordingObserver();

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Observer = observer });

        Assert.Equal(LegacyFormat.Checkpoint, result.Format);
        Assert.Equal("checkpoint", result.LegacyFormatName);
        var state = result.Run.ReadState();
        Assert.True(state.Migrated);
        Assert.Equal("checkpoint", state.SourceFormat);
        Assert.Equal("run_42_10", state.RunId);
        Assert.Equal("run_42_10", state.Name);
        Assert.Equal(RunStatus.Created, state.Status);
        Assert.Equal(4, state.ItemsCompleted);
        var step = Assert.Single(result.Steps);
        Assert.Equal(("process", StepStatus.Pending, 4L), (step.Step, step.Status, step.ItemsCompleted));

        // The checkpoint (processed_count 0, written at start only) disagrees with the 4 keys: the keys win, said so.
        var disagreement = Assert.Single(result.Warnings, w => w.Code == "checkpoint_disagrees");
        Assert.Contains("processed_count 0", disagreement.Found, StringComparison.Ordinal);
        Assert.Contains("4 distinct key(s)", disagreement.Found, StringComparison.Ordinal);
        Assert.Contains("keys are the truth", disagreement.Assumed, StringComparison.Ordinal);
        var bad = Assert.Single(result.Warnings, w => w.Code == "bad_key_line");
        Assert.Contains("Line 5", bad.Found, StringComparison.Ordinal);
        Assert.Contains("order-0004", Assert.Single(result.Warnings, w => w.Code == "recovered_key_line").Found, StringComparison.Ordinal);
        Assert.Equal(result.Warnings.Select(w => w.Message), observer.Warnings);

        // The damaged keys file was copied to .bak first; nothing legacy changed.
        var backup = Assert.Single(result.Backups);
        Assert.Equal(("idempotency_keys.jsonl", "idempotency_keys.jsonl.bak"), (backup.Path, backup.Backup));
        Assert.Equal(before["idempotency_keys.jsonl"], File.ReadAllBytes(Path.Combine(legacy, "idempotency_keys.jsonl.bak")));
        AssertLegacyUntouched(before, legacy);

        var migrated = MigratedEvent(result.Run);
        Assert.Equal("checkpoint", migrated["source_format"]!.GetValue<string>());
        Assert.Equal("run_42_10", migrated["legacy_run_id"]!.GetValue<string>());
        Assert.Equal(0, migrated["legacy"]!["checkpoint"]!["processed_count"]!.GetValue<long>());
        Assert.Equal(Codes(result), migrated["warnings"]!.AsArray().Select(w => w!["code"]!.GetValue<string>()));

        // A real resume: the four keys are replayed, a new one runs.
        using var attempt = result.Run.BeginAttempt();
        Assert.Equal(StepAction.Run, attempt.BeginStep("process"));
        foreach (string key in new[] { "order-0001", "order-0002", "order-0003", "order-0004" })
        {
            Assert.Equal(ItemAction.Replay, attempt.BeginItem("process", key));
        }

        Assert.Equal(ItemAction.Run, attempt.BeginItem("process", "order-0005"));
        attempt.CompleteItem("process", "order-0005", null);
        attempt.CompleteStep("process", null);
        Assert.Equal(RunStatus.Completed, attempt.Complete().Status);
        Assert.Equal(5, result.Run.ReadState().ItemsCompleted);
        AssertLegacyUntouched(before, legacy);
    }

    [Fact]
    public void ATruncatedCheckpointIsBackedUpAndReadAsFarAsItGoes()
    {
        string legacy = CopyFixture(_dir, "checkpoint/run_7_truncated");
        var before = Snapshot(legacy);

        var result = LegacyConversion.Convert(legacy, new ConversionOptions());

        var warning = Assert.Single(result.Warnings);
        Assert.Equal("corrupt_checkpoint", warning.Code);
        Assert.Contains("run_id, last_processed_idx", warning.Assumed, StringComparison.Ordinal);
        Assert.Equal(before["checkpoint.json"], File.ReadAllBytes(Path.Combine(legacy, "checkpoint.json.bak")));
        Assert.Equal("run_7", result.Run.ReadState().Name);
        Assert.Equal(3, result.ItemsCompleted);
        AssertLegacyUntouched(before, legacy);
    }

    [Fact]
    public void TrialManifestsWithRunStateConvertPhasesToStepsAndIntactTrialsToItems()
    {
        string legacy = CopyFixture(_dir, "trial-manifests/run_exp1");
        var before = Snapshot(legacy);

        var result = LegacyConversion.Convert(legacy, new ConversionOptions());

        Assert.Equal(LegacyFormat.TrialManifests, result.Format);
        Assert.Equal(
            new[] { ("prepare", StepStatus.Completed, 0L), ("train", StepStatus.Pending, 1L), ("evaluate", StepStatus.Pending, 0L) },
            result.Steps.Select(s => (s.Step, s.Status, s.ItemsCompleted)));
        Assert.Equal(new[] { "corrupt_manifest", "missing_manifest", "phase_downgraded" }, Codes(result));
        var downgraded = result.Warnings.Single(w => w.Code == "phase_downgraded");
        Assert.Contains("t002, t003", downgraded.Found, StringComparison.Ordinal);
        Assert.Contains("trials/t003/ has no manifest.json", result.Warnings.Single(w => w.Code == "missing_manifest").Found, StringComparison.Ordinal);
        Assert.Equal("trials/t002/manifest.json.bak", Assert.Single(result.Backups).Backup);

        // The effective config is the canonicalized effective_config.yaml; the legacy hash is kept in the journal.
        var state = result.Run.ReadState();
        var config = EffectiveConfig.FromFile(Path.Combine(legacy, "effective_config.yaml"));
        Assert.Equal(config.Hash, state.Config.Hash);
        Assert.Equal(config.CanonicalJson, File.ReadAllText(Path.Combine(legacy, "config.json")));
        Assert.Equal("exp1", state.Name);
        var migrated = MigratedEvent(result.Run);
        Assert.Equal("9c2f0d6f1b7e4a11c8a3f5d2e6b7a8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f", migrated["legacy"]!["config_hash"]!.GetValue<string>());
        Assert.Equal("completed", migrated["steps"]![0]!["status"]!.GetValue<string>());

        // t001's artifacts are referenced in place with size and SHA-256.
        var artifacts = state.Artifacts.Where(a => a.Key == "t001").OrderBy(a => a.Path).ToList();
        Assert.Equal(new[] { "trials/t001/metrics.json", "trials/t001/model.bin" }, artifacts.Select(a => a.Path));
        Assert.All(artifacts, a => Assert.Equal((ArtifactMode.Reference, "train", 0), (a.Mode, a.Step, a.Attempt)));
        Assert.Equal(Sha256(Path.Combine(legacy, "trials/t001/model.bin")), artifacts[1].Sha256);
        AssertLegacyUntouched(before, legacy);

        using var attempt = result.Run.BeginAttempt(new AttemptOptions { Config = config });
        Assert.Equal("train", attempt.Plan.FirstUnfinishedStep);
        Assert.Equal(StepAction.Replay, attempt.BeginStep("prepare"));
        Assert.Equal(StepAction.Run, attempt.BeginStep("train"));
        Assert.Equal(ItemAction.Replay, attempt.BeginItem("train", "t001"));
        foreach (string redo in new[] { "t002", "t003" })
        {
            Assert.Equal(ItemAction.Run, attempt.BeginItem("train", redo));
            attempt.CompleteItem("train", redo, null);
        }

        attempt.CompleteStep("train", null);
        Assert.Equal(StepAction.Run, attempt.BeginStep("evaluate"));
        attempt.CompleteStep("evaluate", null);
        Assert.Equal(RunStatus.Completed, attempt.Complete().Status);
    }

    [Fact]
    public void TrialManifestsWithoutRunStateInferStatusesAndSaySo()
    {
        string legacy = CopyFixture(_dir, "trial-manifests/run_exp2");
        var before = Snapshot(legacy);

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Format = LegacyFormat.TrialManifests });

        var step = Assert.Single(result.Steps);
        Assert.Equal(("train", StepStatus.Pending, 2L), (step.Step, step.Status, step.ItemsCompleted));
        var inferred = Assert.Single(result.Warnings);
        Assert.Equal("inferred_status", inferred.Code);
        Assert.Contains("there is no run_state.json", inferred.Found, StringComparison.Ordinal);
        Assert.Contains("2 of its trial(s)", inferred.Found, StringComparison.Ordinal);
        Assert.Equal("run_exp2", result.Run.ReadState().Name);
        Assert.Equal("absent", MigratedEvent(result.Run)["legacy"]!["run_state"]!.GetValue<string>());
        var plan = result.Run.Plan();
        Assert.True(plan.IsItemCompleted("train", "t001"));
        Assert.False(plan.IsItemCompleted("train", "t002"));
        Assert.True(plan.IsItemCompleted("train", "t003"));
        AssertLegacyUntouched(before, legacy);
    }

    [Fact]
    public void ApprovedFramesBecomeItemsACorruptFrameIsRegeneratedAndTheAuditLogIsContinued()
    {
        string legacy = CopyFixture(_dir, "frame-generator/20260118_blaze_idle");
        var before = Snapshot(legacy);

        var result = LegacyConversion.Convert(legacy, new ConversionOptions());

        Assert.Equal(LegacyFormat.FrameGenerator, result.Format);
        var state = result.Run.ReadState();
        Assert.Equal(("frame_generator", "abc123", 3L), (state.SourceFormat, state.Name, state.ItemsCompleted));
        var corrupt = Assert.Single(result.Warnings);
        Assert.Equal("corrupt_frame", corrupt.Code);
        Assert.Contains("approved/frame_0003.png does not decode as PNG (chunk IDAT", corrupt.Found, StringComparison.Ordinal);
        Assert.Contains("generated again on resume", corrupt.Assumed, StringComparison.Ordinal);
        Assert.Equal(before["approved/frame_0003.png"], File.ReadAllBytes(Path.Combine(legacy, "approved/frame_0003.png.bak")));
        var frames = state.Artifacts.OrderBy(a => a.Key).ToList();
        Assert.Equal(new[] { "0", "1", "2" }, frames.Select(a => a.Key));
        Assert.Equal(Sha256(Path.Combine(legacy, "approved/frame_0001.png")), frames[1].Sha256);
        Assert.Equal("approved/frame_0001.png", frames[1].Path);
        var migrated = MigratedEvent(result.Run);
        Assert.Equal("a1b2c3d4e5f6a7b8", migrated["legacy"]!["manifest_hash"]!.GetValue<string>());
        Assert.Equal(2, migrated["legacy"]!["candidates"]!.GetValue<int>());

        // The audit log keeps every byte and gets one entry in its own style.
        AssertLegacyUntouched(before, legacy, "audit_log.jsonl");
        var added = File.ReadAllLines(Path.Combine(legacy, "audit_log.jsonl")).Skip(4).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var entry = Assert.Single(added);
        Assert.Equal("runtools_migration", entry["event"]!.GetValue<string>());
        Assert.True(entry.ContainsKey("timestamp"));
        Assert.Equal(3, entry["frames_to_regenerate"]![0]!.GetValue<int>());

        using var attempt = result.Run.BeginAttempt();
        Assert.Equal(StepAction.Run, attempt.BeginStep("frames"));
        foreach (int frame in Enumerable.Range(0, 5))
        {
            var action = attempt.BeginItem("frames", frame.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Assert.Equal(frame < 3 ? ItemAction.Replay : ItemAction.Run, action);
            if (action == ItemAction.Run)
            {
                attempt.CompleteItem("frames", frame.ToString(System.Globalization.CultureInfo.InvariantCulture), null);
            }
        }

        attempt.CompleteStep("frames", null);
        Assert.Equal(RunStatus.Completed, attempt.Complete().Status);
    }

    [Fact]
    public void AnApprovedFrameDamagedAfterConversionIsRedoneOnResume()
    {
        string legacy = CopyFixture(_dir, "frame-generator/20260118_blaze_idle");
        var result = LegacyConversion.Convert(legacy, new ConversionOptions());
        File.WriteAllBytes(Path.Combine(legacy, "approved/frame_0001.png"), new byte[] { 1, 2, 3 });

        var observer = new RecordingObserver();
        using var attempt = result.Run.BeginAttempt(new AttemptOptions { Observer = observer });
        Assert.Contains(observer.Warnings, w => w.Contains("Item '1' of step 'frames'", StringComparison.Ordinal));
        attempt.BeginStep("frames");
        Assert.Equal(ItemAction.Replay, attempt.BeginItem("frames", "0"));
        Assert.Equal(ItemAction.Run, attempt.BeginItem("frames", "1"));
    }

    [Fact]
    public void GenericAdoptionCompletesTheStepsWhoseDeclaredOutputsExist()
    {
        string legacy = CopyFixture(_dir, "generic/nightly");
        var before = Snapshot(legacy);
        var steps = new[]
        {
            new DeclaredStep("extract", new[] { "data/*.csv" }),
            new DeclaredStep("transform", new[] { "data/clean/**" }),
            new DeclaredStep("report", new[] { "report/summary.txt", "report/partial.txt" }),
            new DeclaredStep("notify"),
        };

        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Steps = steps, Script = Runs.Bytes("# nightly") });

        Assert.Equal(LegacyFormat.Generic, result.Format);
        Assert.Equal(
            new[] { ("extract", StepStatus.Completed), ("transform", StepStatus.Pending), ("report", StepStatus.Pending), ("notify", StepStatus.Pending) },
            result.Steps.Select(s => (s.Step, s.Status)));
        Assert.Contains("not found: data/clean/**", result.Steps[1].Reason, StringComparison.Ordinal);
        Assert.Equal(new[] { "partial_outputs", "no_declared_outputs" }, Codes(result));
        var state = result.Run.ReadState();
        Assert.Equal(("generic", "nightly", 1, 4), (state.SourceFormat, state.Name, state.StepsCompleted, state.StepsTotal));
        Assert.Equal(new[] { "data/customers.csv", "data/orders.csv" }, state.Artifacts.Select(a => a.Path));
        Assert.All(state.Artifacts, a => Assert.Equal("extract", a.Step));
        AssertLegacyUntouched(before, legacy);

        using var attempt = result.Run.BeginAttempt();
        Assert.Equal(StepAction.Replay, attempt.BeginStep("extract"));
        Assert.Equal(StepAction.Run, attempt.BeginStep("transform"));
    }

    [Fact]
    public void ConversionRefusesWhatItCannotAdoptAndWritesNothing()
    {
        string empty = _dir.Combine("x", "empty");
        Directory.CreateDirectory(empty);
        var unknown = Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(empty, new ConversionOptions()));
        Assert.Equal(ErrorIds.UnknownLegacyFormat, unknown.ErrorId);
        Assert.Contains("-LegacyFormat", unknown.Message, StringComparison.Ordinal);
        Assert.Contains("-ScriptPath", unknown.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorIds.UnknownLegacyFormat, Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(empty, new ConversionOptions { Format = LegacyFormat.Generic })).ErrorId);
        var wrong = Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(CopyFixture(_dir, "checkpoint/run_42_10"), new ConversionOptions { Format = LegacyFormat.FrameGenerator }));
        Assert.Contains("looks like Checkpoint", wrong.Message, StringComparison.Ordinal);

        string conflicting = CopyFixture(_dir, "checkpoint/run_42_10");
        File.WriteAllText(Path.Combine(conflicting, "config.json"), "{\"legacy\": true}");
        var before = Snapshot(conflicting);
        Assert.Equal(ErrorIds.LegacyFileConflict, Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(conflicting, new ConversionOptions())).ErrorId);
        Assert.Equal(before.Keys.OrderBy(k => k), Snapshot(conflicting).Keys.OrderBy(k => k));

        string badName = _dir.Combine("y", "my run (old)");
        Directory.CreateDirectory(badName);
        File.WriteAllText(Path.Combine(badName, "checkpoint.json"), "{}");
        var invalid = Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(badName, new ConversionOptions()));
        Assert.Equal(ErrorIds.InvalidRunId, invalid.ErrorId);
        Assert.Contains("'my-run-old'", invalid.Message, StringComparison.Ordinal);

        string twice = CopyFixture(_dir, "checkpoint/run_7_truncated");
        LegacyConversion.Convert(twice, new ConversionOptions());
        Assert.Equal(ErrorIds.RunExists, Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(twice, new ConversionOptions())).ErrorId);
    }

    [Fact]
    public void ABackupNeverOverwritesAnExistingBak()
    {
        string legacy = CopyFixture(_dir, "checkpoint/run_7_truncated");
        File.WriteAllText(Path.Combine(legacy, "checkpoint.json.bak"), "an older backup the operator made");

        var result = LegacyConversion.Convert(legacy, new ConversionOptions());

        Assert.Equal("checkpoint.json.bak.1", Assert.Single(result.Backups).Backup);
        Assert.Equal("an older backup the operator made", File.ReadAllText(Path.Combine(legacy, "checkpoint.json.bak")));
    }

    [Fact]
    public void TheScriptsStepNamesAreCheckedAgainstTheConvertedOnes()
    {
        string legacy = CopyFixture(_dir, "frame-generator/20260118_blaze_idle");
        var result = LegacyConversion.Convert(legacy, new ConversionOptions { Steps = new[] { new DeclaredStep("render") } });
        var warning = Assert.Single(result.Warnings, w => w.Code == "step_not_in_script");
        Assert.Contains("step 'frames'", warning.Found, StringComparison.Ordinal);
        Assert.Equal(new[] { "render" }, result.Run.ReadState().DeclaredSteps);
    }

    [Theory]
    [InlineData("valid", null)]
    [InlineData("signature", "no PNG signature")]
    [InlineData("truncated", "truncated")]
    [InlineData("crc", "fails its CRC")]
    [InlineData("noiend", "no IEND")]
    public void PngCheckValidatesSignatureChunksCrcsAndIend(string damage, string? expected)
    {
        byte[] png = File.ReadAllBytes(Path.Combine(FixturesPath, "frame-generator/20260118_blaze_idle/approved/frame_0000.png"));
        byte[] bytes = damage switch
        {
            "signature" => png.Select((b, i) => i == 1 ? (byte)'X' : b).ToArray(),
            "truncated" => png.Take(png.Length - 20).ToArray(),
            "crc" => png.Select((b, i) => i == 20 ? (byte)(b ^ 1) : b).ToArray(),
            "noiend" => png.Take(png.Length - 12).ToArray(),
            _ => png,
        };

        string? problem = PngCheck.Problem(bytes);
        if (expected is null)
        {
            Assert.Null(problem);
        }
        else
        {
            Assert.Contains(expected, problem, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void OutputFilePatternsExpandGlobsRelativeToTheRun()
    {
        string root = _dir.Combine("globs");
        foreach (string file in new[] { "a.csv", "b.txt", "x/c.csv", "x/y/d.csv" })
        {
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(root, file))!);
            File.WriteAllText(Path.Combine(root, file), file);
        }

        string[] Rel(string pattern) => OutputFilePatterns.Expand(root, pattern).Select(f => f.Substring(root.Length + 1).Replace('\\', '/')).ToArray();
        Assert.Equal(new[] { "a.csv" }, Rel("*.csv"));
        Assert.Equal(new[] { "a.csv", "x/c.csv", "x/y/d.csv" }, Rel("**/*.csv"));
        Assert.Equal(new[] { "x/c.csv", "x/y/d.csv" }, Rel("x/**"));
        Assert.Equal(new[] { "b.txt" }, Rel("b.txt"));
        Assert.Equal(new[] { "b.txt" }, Rel(Path.Combine(root, "?.txt")));
        Assert.Empty(Rel("missing/*.csv"));
    }

    [Fact]
    public void DeclaredOutputsAreVerifiedAndRecordedWhenAStepCompletes()
    {
        var run = Runs.Create(new RunsRoot(_dir.Combine("runs")));
        Directory.CreateDirectory(Path.Combine(run.Path, "out"));
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("write");
            File.WriteAllText(Path.Combine(run.Path, "out", "a.txt"), "a");
            var missing = Assert.Throws<RunToolsException>(() => attempt.RecordOutputFiles("write", new[] { "out/*.txt", "out/b.csv" }));
            Assert.Equal(ErrorIds.OutputFileNotFound, missing.ErrorId);
            Assert.Contains("out/b.csv", missing.Message, StringComparison.Ordinal);
            var recorded = Assert.Single(attempt.RecordOutputFiles("write", new[] { "out/*.txt" }));
            Assert.Equal(("out/a.txt", ArtifactMode.Reference, "write"), (recorded.Path, recorded.Mode, recorded.Step));
            attempt.CompleteStep("write", null);
            attempt.Complete();
        }

        File.WriteAllText(Path.Combine(run.Path, "out", "a.txt"), "changed");
        using var resumed = run.BeginAttempt();
        Assert.Equal(StepAction.Run, resumed.BeginStep("write"));
    }

    /// <summary>
    /// A child process converts and is SIGKILLed at each stage of the commit. Before the journal is
    /// in place the directory must still be a legacy directory that converts again; after, a run.
    /// Legacy files are untouched either way, and the audit log gets exactly one entry.
    /// </summary>
    [Theory]
    [InlineData("staged", false)]
    [InlineData("moved config.json", false)]
    [InlineData("moved script.ps1", false)]
    [InlineData("legacy updated", false)]
    [InlineData("committed", true)]
    [InlineData("snapshot", true)]
    public void AKillMidConversionLeavesTheDirectoryConvertibleAndTheLegacyFilesUntouched(string stage, bool committed)
    {
        string legacy = CopyFixture(_dir, "frame-generator/20260118_blaze_idle");
        var before = Snapshot(legacy);
        using (var child = new Driver("convert", legacy, stage))
        {
            Assert.True(child.WaitFor("STAGE " + stage, TimeSpan.FromSeconds(60)), child.Describe());
            child.Kill();
        }

        AssertLegacyUntouched(before, legacy, "audit_log.jsonl");
        Assert.Equal(committed, RunDirectory.IsRunDirectory(legacy));
        if (committed)
        {
            var run = RunDirectory.Open(legacy);
            Assert.Equal((true, 3L), (run.ReadState().Migrated, run.ReadState().ItemsCompleted));
            Assert.Equal(ErrorIds.RunExists, Assert.Throws<RunToolsException>(() => LegacyConversion.Convert(legacy, new ConversionOptions())).ErrorId);
        }
        else
        {
            var result = LegacyConversion.Convert(legacy, new ConversionOptions());
            Assert.Equal(3, result.Run.ReadState().ItemsCompleted);
            Assert.Equal(3, result.Run.Plan().CompletedItems);
        }

        Assert.False(Directory.Exists(Path.Combine(legacy, LegacyConversion.StagingFolder)));
        AssertLegacyUntouched(before, legacy, "audit_log.jsonl");
        Assert.Single(File.ReadAllLines(Path.Combine(legacy, "audit_log.jsonl")), l => l.Contains("runtools_migration", StringComparison.Ordinal));
        Assert.Single(Directory.GetFiles(Path.Combine(legacy, "approved"), "*.bak"));
    }
}
