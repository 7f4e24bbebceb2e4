using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// A workload that touches every durable write of the format (run creation, journal, snapshot,
/// step output, artifact copy, log, stop file, history), driven through Core as Start-Run and
/// Resume-Run drive it, and the checks every fault must pass.
/// </summary>
internal sealed class FaultWorkload
{
    public const int Items = 3;

    private static readonly string[] s_steps = { "prepare", "work", "report" };

    public FaultWorkload(string folder)
    {
        Folder = folder;
        Root = Path.Combine(folder, "root");
        Sources = Path.Combine(folder, "sources");
        Effects = Path.Combine(folder, "effects.txt");
        Directory.CreateDirectory(Sources);
        File.WriteAllBytes(Path.Combine(Sources, "prep.bin"), Filler(3000, 1));
        File.WriteAllBytes(Path.Combine(Sources, "summary.bin"), Filler(500, 2));
        for (int i = 0; i < Items; i++)
        {
            File.WriteAllBytes(Path.Combine(Sources, Key(i) + ".bin"), Filler(5000 + i, 10 + i));
        }

        File.WriteAllText(Path.Combine(Sources, "config1.json"), "{\"size\": 1}");
        File.WriteAllText(Path.Combine(Sources, "config2.json"), "{\"size\": 2}");
    }

    public string Folder { get; }

    public string Root { get; }

    public string Sources { get; }

    public string Effects { get; }

    public string RunPath => Path.Combine(Root, "run");

    public static string Key(int i) => "k" + i;

    /// <summary>
    /// Runs attempts until the run is Completed: the first stops itself after two items (the stop
    /// file), later ones change the config with -Force (history/). A write failure escapes as the
    /// attempt ends Failed, as it does under Start-Run.
    /// </summary>
    public void Drive()
    {
        var root = new RunsRoot(Root);
        var run = Directory.Exists(RunPath) ? root.OpenRun("run") : root.CreateRun(new RunCreateOptions
        {
            Name = "faults",
            RunId = "run",
            Config = EffectiveConfig.FromFile(Path.Combine(Sources, "config1.json")),
            Script = Encoding.UTF8.GetBytes("# the workload"),
            DeclaredSteps = s_steps,
        });

        for (int attempts = 0; attempts < 10; attempts++)
        {
            var state = run.ReadState();
            if (state.Status == RunStatus.Completed)
            {
                return;
            }

            bool first = state.Attempt == 0;
            using var attempt = run.BeginAttempt(new AttemptOptions
            {
                Config = EffectiveConfig.FromFile(Path.Combine(Sources, first ? "config1.json" : "config2.json")),
                Force = true,
                InDoubt = InDoubtAction.Retry,
                SnapshotInterval = TimeSpan.Zero,
            });
            try
            {
                Body(run, attempt, stopBefore: first ? 2 : -1);
                attempt.Complete();
            }
            catch (RunStoppedException stopped)
            {
                attempt.Stop(stopped.Request);
            }
            catch (RunToolsException ex) when (!attempt.IsFinished)
            {
                // What RunExecutor does with an error that escaped the script.
                attempt.Fail(ex.Message);
                throw;
            }
        }

        throw new InvalidOperationException("the workload did not complete in 10 attempts");
    }

    private void Body(RunDirectory run, RunAttempt attempt, int stopBefore)
    {
        if (attempt.BeginStep("prepare") == StepAction.Run)
        {
            attempt.AddArtifact(Path.Combine(Sources, "prep.bin"), "prep.bin");
            attempt.CompleteStep("prepare", Encoding.UTF8.GetBytes("prepared"), "txt");
        }

        if (attempt.BeginStep("work") == StepAction.Run)
        {
            for (int i = 0; i < Items; i++)
            {
                if (i == stopBefore)
                {
                    run.RequestStop("the workload stops itself", "fault test");
                }

                string key = Key(i);
                if (attempt.BeginItem("work", key) != ItemAction.Run)
                {
                    continue;
                }

                File.AppendAllText(Effects, key + "\n");
                attempt.AddArtifact(Path.Combine(Sources, key + ".bin"), "items/" + key + ".bin");
                attempt.CompleteItem("work", key, Encoding.UTF8.GetBytes("done " + key));
            }

            attempt.CompleteStep("work", null);
        }

        if (attempt.BeginStep("report") == StepAction.Run)
        {
            attempt.CompleteStep("report", Encoding.UTF8.GetBytes("report"), "txt");
        }
    }

    /// <summary>Which of the format's durable writes an operation belongs to.</summary>
    public string PointOf(string path)
    {
        string relative = path.StartsWith(RunPath + Path.DirectorySeparatorChar, StringComparison.Ordinal)
            ? path.Substring(RunPath.Length + 1).Replace(Path.DirectorySeparatorChar, '/')
            : path;
        return relative switch
        {
            _ when relative.Contains(RunFormat.StagingPrefix, StringComparison.Ordinal) || path == RunPath || path == Root => "run creation",
            RunFormat.JournalFile => "journal",
            RunFormat.StateFile => "snapshot",
            RunFormat.StopFile => "stop file",
            _ when relative.StartsWith("steps", StringComparison.Ordinal) => "step output",
            _ when relative.StartsWith("artifacts", StringComparison.Ordinal) => "artifact",
            _ when relative.StartsWith("logs", StringComparison.Ordinal) => "log",
            _ when relative.StartsWith("history", StringComparison.Ordinal) => "history",
            _ when relative.StartsWith("config", StringComparison.Ordinal) => "config",
            _ when relative.StartsWith(RunFormat.ScriptFile, StringComparison.Ordinal) => "script",
            _ => "other: " + relative,
        };
    }

    /// <summary>Every file outside the run folder with its SHA-256 (the side-effect log excluded).</summary>
    public Dictionary<string, string> Outside()
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string file in Directory.EnumerateFiles(Folder, "*", SearchOption.AllDirectories))
        {
            if (file.StartsWith(RunPath + Path.DirectorySeparatorChar, StringComparison.Ordinal) || file == Effects)
            {
                continue;
            }

            files[file] = Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(file)));
        }

        return files;
    }

    /// <summary>After a fault: no Completed run with a hole, Test-Run agrees with the state, nothing outside the run changed.</summary>
    public void CheckAfterFault(Dictionary<string, string> outsideBefore, string context)
    {
        var entries = Directory.Exists(Root) ? Directory.GetFileSystemEntries(Root) : Array.Empty<string>();
        Assert.True(entries.All(e => e == RunPath), $"{context}: the root holds more than the run: {string.Join(", ", entries)}");
        Assert.Equal(outsideBefore.OrderBy(p => p.Key), Outside().OrderBy(p => p.Key));
        if (!Directory.Exists(RunPath))
        {
            return;
        }

        var run = new RunsRoot(Root).OpenRun("run");
        var test = run.Test();
        Assert.True(test.IsValid, $"{context}: Test-Run: " + string.Join("; ", test.Problems.Select(p => p.ToString())));
        Assert.Equal(run.ReadState().Status, test.State!.Status);
        if (test.State.Status == RunStatus.Completed)
        {
            CheckComplete(run, context);
        }
    }

    /// <summary>A Completed run: every item done exactly once (a repeat only where the journal says why), every recorded file whole.</summary>
    public void CheckComplete(RunDirectory run, string context)
    {
        var state = run.ReadState();
        Assert.Equal(RunStatus.Completed, state.Status);
        Assert.All(s_steps, s => Assert.Equal(StepStatus.Completed, state.FindStep(s)?.Status));
        var events = run.ReadEvents().ToList();
        Assert.All(Enumerable.Range(0, Items).Select(Key), key =>
            Assert.Single(events, e => e.Type == JournalEventTypes.ItemCompleted && e.Key == key));

        // A repeated side effect only for an item the journal reports as failed or in doubt.
        var counts = File.ReadAllLines(Effects).GroupBy(l => l).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(Items, counts.Count);
        foreach (var (key, count) in counts)
        {
            int reported = events.Count(e => e.Key == key && (e.Type == JournalEventTypes.ItemFailed || e.Type == JournalEventTypes.ItemResolved));
            Assert.True(count - 1 <= reported, $"{context}: item {key} ran {count} times, reported failed or in doubt {reported} time(s)");
        }

        // Every artifact a completed item or step vouches for is there and whole.
        var test = run.Test();
        Assert.True(test.IsValid, $"{context}: Test-Run: " + string.Join("; ", test.Problems.Select(p => p.ToString())));
        foreach (string key in Enumerable.Range(0, Items).Select(Key))
        {
            var artifact = state.Artifacts.Last(a => a.Key == key);
            Assert.Equal(new FileInfo(Path.Combine(Sources, key + ".bin")).Length, new FileInfo(Integrity.ResolvePath(run.Path, artifact.Path)).Length);
        }
    }

    private static byte[] Filler(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>
/// The injected-failure tier: every durable write of the format fails in turn (once, and as a
/// disk that stays broken until freed), and after each the run is honest and resumes to Completed.
/// </summary>
public sealed class FaultInjectionTests
{
    /// <summary>
    /// The sweep repeats the workload once per durable operation; it tests what Core does when an
    /// operation fails, not the disk, so it runs in memory (tmpfs) where fsync costs nothing.
    /// </summary>
    private static string? FastBase => Directory.Exists("/dev/shm") ? "/dev/shm" : null;

    private static readonly string[] s_points = { "run creation", "journal", "snapshot", "step output", "artifact", "log", "stop file", "history" };

    [Fact]
    public void The_workload_reaches_every_durable_write_of_the_format()
    {
        using var dir = new TempDir();
        var workload = new FaultWorkload(dir.Path);
        using var injector = new FaultInjector(workload.Root);
        workload.Drive();
        workload.CheckComplete(new RunsRoot(workload.Root).OpenRun("run"), "no fault");

        var seen = injector.Seen.Select(s => (s.Op, Point: workload.PointOf(s.Path))).ToList();
        Assert.All(s_points, point => Assert.Contains(seen, s => s.Point == point));
        Assert.DoesNotContain(seen, s => s.Point.StartsWith("other", StringComparison.Ordinal));
        foreach (var op in new[] { DurableOp.Write, DurableOp.FileSync, DurableOp.Rename, DurableOp.DirectorySync, DurableOp.CreateDirectory })
        {
            Assert.Contains(seen, s => s.Op == op);
        }

        // Every folder the format creates has its parent flushed right after.
        var ops = injector.Seen;
        for (int i = 0; i < ops.Count; i++)
        {
            // (The root's own parent lies outside the injector's scope; staging folders are flushed once, before their rename.)
            if (ops[i].Op == DurableOp.CreateDirectory && ops[i].Path != workload.Root && !ops[i].Path.Contains(RunFormat.StagingPrefix, StringComparison.Ordinal))
            {
                Assert.True(i + 1 < ops.Count && ops[i + 1].Op == DurableOp.DirectorySync && ops[i + 1].Path == Path.GetDirectoryName(ops[i].Path),
                    $"folder {ops[i].Path} was created without its parent being flushed");
            }
        }
    }

    public static TheoryData<int, bool> Faults() => new()
    {
        { FaultInjector.EIO, false },
        { FaultInjector.ENOSPC, true },
    };

    [Theory]
    [MemberData(nameof(Faults))]
    public void A_failure_at_any_durable_write_loses_nothing_and_the_run_resumes_to_completed(int errno, bool sticky)
    {
        int operations;
        using (var dry = new TempDir(FastBase))
        {
            var workload = new FaultWorkload(dry.Path);
            using var counter = new FaultInjector(workload.Root);
            workload.Drive();
            operations = counter.Seen.Count;
        }

        var failures = new List<string>();
        for (int n = 1; n <= operations; n++)
        {
            using var dir = new TempDir(FastBase);
            var workload = new FaultWorkload(dir.Path);
            var outside = workload.Outside();
            using var injector = new FaultInjector(workload.Root) { Errno = errno, Sticky = sticky };
            int at = n;
            injector.FailWhen((index, _, _) => index == at);

            RunToolsException? error = null;
            try
            {
                workload.Drive();
            }
            catch (RunToolsException ex)
            {
                error = ex;
            }

            var (op, path) = injector.Seen[n - 1];
            string context = $"fault {n}/{operations}: {op} of {workload.PointOf(path)} ({path})";
            Assert.True(injector.Fired >= 1, context);
            if (error is not null)
            {
                // The error names what failed, the OS's reason and what to do.
                Assert.True(error.ErrorId == ErrorIds.WriteFailed, $"{context}: {error.ErrorId}: {error.Message}");
                Assert.Contains("injected by a test", error.Message, StringComparison.Ordinal);
                Assert.Contains(workload.Root, error.Message, StringComparison.Ordinal);
                Assert.Contains("Free disk space", error.Message, StringComparison.Ordinal);
            }
            else if (workload.PointOf(path) != "log")
            {
                failures.Add($"{context}: the failure was not reported");
            }

            injector.Clear();
            workload.CheckAfterFault(outside, context);

            // The fault is gone: the run resumes to Completed, each item done once or reported.
            workload.Drive();
            workload.CheckComplete(new RunsRoot(workload.Root).OpenRun("run"), context);
            workload.CheckAfterFault(outside, context);
        }

        Assert.Empty(failures);
    }

    [Fact]
    public void A_failed_fsync_of_the_journal_is_not_taken_as_durable()
    {
        using var dir = new TempDir();
        var run = Runs.Create(new RunsRoot(dir.Combine("root")));
        using var injector = new FaultInjector(dir.Path) { Errno = FaultInjector.EROFS };
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.BeginItem("s", "a");
        long before = new FileInfo(run.JournalPath).Length;
        injector.FailNth(1, DurableOp.FileSync, RunFormat.JournalFile);

        // A completion is made durable with the next item's intent (or by the deferred flush
        // shortly after): the failed fsync surfaces there, and nothing after it counts.
        attempt.CompleteItem("s", "a", null);
        var error = Assert.Throws<RunToolsException>(() => attempt.BeginItem("s", "b"));

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("Read-only file system", error.Message, StringComparison.Ordinal);
        Assert.Contains(run.JournalPath, error.Message, StringComparison.Ordinal);
        Assert.Equal(before, new FileInfo(run.JournalPath).Length); // the unacknowledged line was cut back off
        Assert.DoesNotContain(run.ReadEvents(), e => e.Type == JournalEventTypes.ItemCompleted);
        Assert.Equal(ErrorIds.WriteFailed, Assert.Throws<RunToolsException>(() => attempt.BeginItem("s", "c")).ErrorId);
        attempt.Dispose();

        // The item whose completion never became durable is in doubt, not silently done or lost.
        using var next = run.BeginAttempt();
        Assert.Equal("a", Assert.Single(next.Plan.InDoubt).Key);
    }

    [Fact]
    public void An_artifact_that_cannot_be_copied_fails_its_item_and_the_item_cannot_complete()
    {
        using var dir = new TempDir();
        var run = Runs.Create(new RunsRoot(dir.Combine("root")));
        File.WriteAllText(dir.Combine("a.txt"), "artifact");
        using var injector = new FaultInjector(dir.Combine("root"));
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.BeginItem("s", "a");
        injector.FailNth(1, DurableOp.Write, "artifacts");

        var error = Assert.Throws<RunToolsException>(() => attempt.AddArtifact(dir.Combine("a.txt")));
        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("No space left on device", error.Message, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(run.Path, "artifacts", "a.txt"), error.Message, StringComparison.Ordinal);

        var complete = Assert.Throws<RunToolsException>(() => attempt.CompleteItem("s", "a", null));
        Assert.Equal(ErrorIds.WriteFailed, complete.ErrorId);
        var failed = Assert.Single(run.ReadEvents(), e => e.Type == JournalEventTypes.ItemFailed);
        Assert.Equal("a", failed.Key);
        Assert.Empty(Directory.GetFiles(Path.Combine(run.Path, "artifacts"), "*", SearchOption.AllDirectories)); // no temp file left

        // The step goes on: the next item runs and completes.
        Assert.Equal(ItemAction.Run, attempt.BeginItem("s", "b"));
        attempt.CompleteItem("s", "b", null);
    }

    [Fact]
    public void A_failed_directory_flush_after_a_rename_is_an_error_that_says_the_file_is_not_recorded()
    {
        using var dir = new TempDir();
        var run = Runs.Create(new RunsRoot(dir.Combine("root")));
        using var injector = new FaultInjector(dir.Path) { Errno = FaultInjector.EIO };
        injector.FailNth(1, DurableOp.DirectorySync, run.Path);

        var error = Assert.Throws<RunToolsException>(() => run.RequestStop("test"));

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("could not be flushed", error.Message, StringComparison.Ordinal);
        Assert.Contains("Input/output error", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_new_folder_has_its_parent_flushed_and_a_failed_flush_is_an_error()
    {
        using var dir = new TempDir();
        using var injector = new FaultInjector(dir.Path);
        string folder = dir.Combine("a", "b");
        DurableFile.CreateDirectory(folder);
        Assert.Equal(
            new[] { (DurableOp.CreateDirectory, dir.Combine("a")), (DurableOp.DirectorySync, dir.Path), (DurableOp.CreateDirectory, folder), (DurableOp.DirectorySync, dir.Combine("a")) },
            injector.Seen.ToArray());

        injector.FailNth(1, DurableOp.DirectorySync);
        var error = Assert.Throws<RunToolsException>(() => DurableFile.CreateDirectory(dir.Combine("c")));
        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains(dir.Combine("c"), error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Real_fsync_and_directory_flush_succeed_on_an_ordinary_disk()
    {
        using var dir = new TempDir();
        string file = dir.Combine("f");
        using (var stream = new FileStream(file, FileMode.Create))
        {
            stream.Write(new byte[] { 1, 2, 3 });
            NativeMethods.FlushFile(stream, file);
        }

        NativeMethods.FlushDirectory(dir.Path);
        Assert.Equal(3, new FileInfo(file).Length);
        if (!NativeMethods.IsWindows)
        {
            var missing = Assert.Throws<IOException>(() => NativeMethods.FlushDirectory(dir.Combine("gone")));
            Assert.Contains("No such file or directory", missing.Message, StringComparison.Ordinal);
        }
    }
}
