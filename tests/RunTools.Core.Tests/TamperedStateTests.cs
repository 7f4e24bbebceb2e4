using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// State files changed by something other than RunTools, whole and well-formed but not as written:
/// a run.json member set to null or out of range, a journal event with a valid checksum and a
/// mistyped member, a recorded output path leading out of the run. Each is refused with a clear
/// error or read around (never an exception from deep inside), and never lets a run read a file
/// outside itself.
/// </summary>
public sealed class TamperedStateTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private RunsRoot Root => new(_dir.Path);

    /// <summary>A run whose step 'a' completed with an output, and attempt 1 completed.</summary>
    private RunDirectory CompletedRun(string id)
    {
        var run = Runs.Create(Root, id);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("a");
        attempt.CompleteStep("a", Runs.Bytes("output of a"));
        attempt.Complete();
        return run;
    }

    private static void EditSnapshot(RunDirectory run, Action<JsonObject> edit)
    {
        var snapshot = JsonNode.Parse(File.ReadAllText(run.StatePath))!.AsObject();
        edit(snapshot);
        File.WriteAllText(run.StatePath, snapshot.ToJsonString());
    }

    /// <summary>Rewrites the journal's events of one type, each line sealed again with a valid checksum.</summary>
    private static void EditEvents(RunDirectory run, string type, Action<JsonObject> edit)
    {
        var lines = File.ReadAllLines(run.JournalPath).Select(line =>
        {
            var e = JsonNode.Parse(line)!.AsObject();
            if ((string?)e["type"] != type)
            {
                return line + "\n";
            }

            e.Remove("crc");
            edit(e);
            return Journals.WithChecksum(e.ToJsonString());
        });
        File.WriteAllText(run.JournalPath, string.Concat(lines));
    }

    public static TheoryData<string> SnapshotDefects => new()
    {
        "steps null", "a step null", "journal length negative", "config null", "declared steps holding null", "artifacts null",
        "output path absolute", "output path with ..", "output size negative", "run_id null",
    };

    [Theory]
    [MemberData(nameof(SnapshotDefects))]
    public void ASnapshotWithANullOrOutOfRangeMemberIsSetAsideAndTheRunReadFromItsJournal(string defect)
    {
        var good = CompletedRun("good");
        var run = CompletedRun("tampered");
        string recordedOutput = run.ReadState().FindStep("a")!.Output!.Path;
        EditSnapshot(run, s =>
        {
            switch (defect)
            {
                case "steps null": s["steps"] = null; break;
                case "a step null": s["steps"]!.AsArray().Add(null); break;
                case "journal length negative": s["journal"]!["length"] = -1; break;
                case "config null": s["config"] = null; break;
                case "declared steps holding null": s["declared_steps"] = new JsonArray((JsonNode?)null); break;
                case "artifacts null": s["artifacts"] = null; break;
                case "output path absolute": s["steps"]![0]!["output"]!["path"] = "/etc/hostname"; break;
                case "output path with ..": s["steps"]![0]!["output"]!["path"] = "steps/../../../etc/hostname"; break;
                case "output size negative": s["steps"]![0]!["output"]!["size"] = -5; break;
                case "run_id null": s["run_id"] = null; break;
            }
        });

        // The journal is the truth: the state folded from it, with the output it recorded.
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.Equal(recordedOutput, state.FindStep("a")!.Output!.Path);
        Assert.Equal("output of a", Runs.Text(File.ReadAllBytes(Path.Combine(run.Path, recordedOutput))));

        // A listing shows both runs, neither as an error.
        var listed = Root.ListRuns();
        Assert.Equal(new[] { "good", "tampered" }, listed.Select(l => l.Run.RunId));
        Assert.All(listed, l => Assert.Null(l.Error));
        Assert.Equal(good.ReadState().StepsCompleted, listed[1].State!.StepsCompleted);
    }

    public static TheoryData<string, string> JournalDefects => new()
    {
        { "step_completed", "output size a string" },
        { "step_completed", "output path absolute" },
        { "step_completed", "output path with .." },
        { "step_completed", "output sha256 a number" },
    };

    [Theory]
    [MemberData(nameof(JournalDefects))]
    public void AJournalEventWithAValidChecksumThatCannotBeUsedMakesTheRunDamagedAndOnlyThatRun(string type, string defect)
    {
        CompletedRun("good");
        var run = CompletedRun("tampered");
        EditEvents(run, type, e =>
        {
            switch (defect)
            {
                case "output size a string": e["output"]!["size"] = "big"; break;
                case "output path absolute": e["output"]!["path"] = "/etc/hostname"; break;
                case "output path with ..": e["output"]!["path"] = "../../etc/hostname"; break;
                case "output sha256 a number": e["output"]!["sha256"] = 42; break;
            }
        });
        File.Delete(run.StatePath); // read from the journal alone

        var ex = Assert.Throws<RunToolsException>(() => run.ReadState());
        Assert.Equal(ErrorIds.RunDamaged, ex.ErrorId);
        Assert.Contains($"({type})", ex.Message, StringComparison.Ordinal);
        Assert.Contains("restore the run from a backup or archive", ex.Message, StringComparison.Ordinal);

        // Resuming it is refused the same way, and nothing of it is changed.
        long journalLength = new FileInfo(run.JournalPath).Length;
        var resume = Assert.Throws<RunToolsException>(() => run.BeginAttempt().Dispose());
        Assert.Equal(ErrorIds.RunDamaged, resume.ErrorId);
        Assert.Equal(journalLength, new FileInfo(run.JournalPath).Length);

        // A listing shows the good run and this one as an error, in order.
        var listed = Root.ListRuns();
        Assert.Equal(new[] { "good", "tampered" }, listed.Select(l => l.Run.RunId));
        Assert.Null(listed[0].Error);
        Assert.Equal(ErrorIds.RunDamaged, listed[1].Error!.ErrorId);
    }

    [Theory]
    [InlineData("script")]
    [InlineData("config")]
    public void AResumeGivenTheRecordedScriptAndConfigWritesBackACopyThatWasDeleted(string deleted)
    {
        var config = EffectiveConfig.FromDictionary(new System.Collections.Hashtable { ["k"] = 1 });
        byte[] script = Runs.Bytes("Invoke-RunStep a { 1 }\n");
        var run = Root.CreateRun(new RunCreateOptions { Name = "test", RunId = "r1", Config = config, Script = script });
        File.Delete(deleted == "script" ? run.ScriptPath : run.ConfigPath);
        Assert.False(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);

        using (var attempt = run.BeginAttempt(new AttemptOptions { Config = config, Script = script }))
        {
            attempt.BeginStep("a");
            attempt.CompleteStep("a", null);
            attempt.Complete();
        }

        Assert.Equal(script, File.ReadAllBytes(run.ScriptPath));
        Assert.True(File.Exists(run.ConfigPath));
        Assert.True(run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
    }

    [Fact]
    public void DeletingARunThroughALinkToItIsRefusedAndDeletesNothing()
    {
        var run = CompletedRun("r1");
        string elsewhere = Path.Combine(_dir.Path, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        string link = Path.Combine(elsewhere, "r1");
        Directory.CreateSymbolicLink(link, run.Path);

        var ex = Assert.Throws<RunToolsException>(() => new RunsRoot(elsewhere).OpenRun("r1").Delete());
        Assert.Equal(ErrorIds.InvalidArgument, ex.ErrorId);
        Assert.Contains("is a link to a run directory", ex.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(link));
        Assert.Equal(RunStatus.Completed, run.ReadState().Status);

        // The run itself is deleted by its own directory.
        Root.OpenRun("r1").Delete();
        Assert.False(Directory.Exists(run.Path));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("//")]
    public void ARunOpenedByAPathWithATrailingSeparatorIsDeletedAsWithout(string trailing)
    {
        var run = CompletedRun("r2");
        var opened = RunDirectory.Open(run.Path + trailing);
        Assert.Equal(("r2", run.Path), (opened.RunId, opened.Path));

        opened.Delete();

        Assert.False(Directory.Exists(run.Path));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Root.Path));
    }
}
