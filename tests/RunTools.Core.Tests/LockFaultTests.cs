using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Tasks;
using RunTools.Core.Archive;
using RunTools.Core.Engine;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Issue 11, item 3: the lock file is never opened through a link or into anything but a regular
/// file; RunLocked is said only for a live holder, named from the lock file; every other failure
/// has its own id; Dispose always releases the lock.
/// </summary>
public sealed class LockFaultTests : IDisposable
{
    private const string PreciousText = "precious: must never be written through .lock\n";
    private static readonly TimeSpan s_bounded = TimeSpan.FromSeconds(20);
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;

    public LockFaultTests()
    {
        _root = new RunsRoot(_dir.Combine("root"));
    }

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> LockTakingOperations => new() { "begin", "delete", "export", "import-force", "test" };

    [Theory]
    [MemberData(nameof(LockTakingOperations))]
    public void ASymlinkedLockIsRefusedAndNothingIsWrittenThroughIt(string operation)
    {
        var run = InterruptedRun("r1");
        string precious = PlantPrecious();
        ReplaceLock(run, l => File.CreateSymbolicLink(l, "../precious.txt"));
        string archive = operation == "import-force" ? ArchiveOfACompletedRun("r1") : string.Empty;
        var before = File.GetLastWriteTimeUtc(precious);

        var ex = Assert.ThrowsAny<RunToolsException>(() => Do(operation, run, archive));

        Assert.Equal(ErrorIds.LockFileInvalid, ex.ErrorId);
        Assert.Contains(Path.Combine(run.Path, ".lock"), ex.Message, StringComparison.Ordinal);
        Assert.Contains("a symbolic link", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Delete", ex.Message, StringComparison.Ordinal);
        Assert.Equal(PreciousText, File.ReadAllText(precious));
        Assert.Equal(before, File.GetLastWriteTimeUtc(precious));
        Assert.True(Directory.Exists(run.Path), "the run must still be there");
        Assert.NotNull(new FileInfo(run.Path + "/.lock").LinkTarget);
        Assert.Equal(1, run.ReadState().Attempt);
    }

    [Fact]
    public void ReadersNeitherFollowASymlinkedLockNorCallTheRunOwned()
    {
        var run = InterruptedRun("r1");
        string precious = PlantPrecious();
        ReplaceLock(run, l => File.CreateSymbolicLink(l, "../precious.txt"));

        // No owner can hold a run through a lock file every owner refuses.
        Assert.False(run.IsOwned);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        Assert.Single(_root.ListRuns(), l => l.Run.RunId == "r1");
        Assert.Equal(PreciousText, File.ReadAllText(precious));
    }

    [Fact]
    public void ADanglingLockLinkDoesNotCreateItsTarget()
    {
        var run = InterruptedRun("r1");
        ReplaceLock(run, l => File.CreateSymbolicLink(l, "../created-through-the-link"));

        var ex = Assert.ThrowsAny<RunToolsException>(() => run.BeginAttempt());

        Assert.Equal(ErrorIds.LockFileInvalid, ex.ErrorId);
        Assert.False(File.Exists(_dir.Combine("root", "created-through-the-link")));
    }

    [Theory]
    [InlineData("directory", "a directory")]
    [InlineData("fifo", "a FIFO")]
    public void ALockThatIsADirectoryOrAFifoIsRefusedWithoutBlocking(string kind, string described)
    {
        var run = InterruptedRun("r1");
        ReplaceLock(run, l =>
        {
            if (kind == "directory")
            {
                Directory.CreateDirectory(l);
            }
            else
            {
                Mkfifo(l);
            }
        });

        // Each call under a bound: a FIFO opened for reading without O_NONBLOCK would wait for a writer for ever.
        var begin = Bounded(() => Assert.ThrowsAny<RunToolsException>(() => run.BeginAttempt()));
        var test = Bounded(() => Assert.ThrowsAny<RunToolsException>(() => run.Test(cancellation: TestContext.Current.CancellationToken)));
        var status = Bounded(() => run.ReadState().Status);

        Assert.Equal(ErrorIds.LockFileInvalid, begin.ErrorId);
        Assert.Contains(described, begin.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorIds.LockFileInvalid, test.ErrorId);
        Assert.Equal(RunStatus.Interrupted, status);
    }

    [Fact]
    public void RunLockedNamesTheHolderFromTheLockFileNotFromRunJson()
    {
        var run = InterruptedRun("r1");
        using var holder = new Driver("hold", run.Path, "60000");
        holder.Expect("OWNER", TimeSpan.FromSeconds(30));
        PlantOwnerInRunJson(run, 424242);
        Assert.Equal(424242, run.ReadState().Owner!.ProcessId);
        string archive = ArchiveOfACompletedRun("r1");

        foreach (string operation in new[] { "begin", "delete", "export", "import-force" })
        {
            var ex = Assert.Throws<RunLockedException>(() => Do(operation, run, archive));
            Assert.Equal(holder.Id, ex.Owner!.ProcessId);
            Assert.Contains($"process {holder.Id}@{Environment.MachineName}", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain("424242", ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal(RunStatus.Running, run.ReadState().Status);
    }

    [Fact]
    public void ALockFileNamingADeadOrReusedPidIsNeverNamedAsTheHolder()
    {
        var run = InterruptedRun("r1");
        using var holder = new Driver("hold", run.Path, "60000");
        holder.Expect("OWNER", TimeSpan.FromSeconds(30));
        int dead = DeadPid();
        string lockPath = Path.Combine(run.Path, ".lock");

        // flock is advisory: the record can be rewritten under the holder, as a stale one would read.
        foreach (string record in new[]
        {
            $"{{\"pid\":{dead},\"host\":\"{Environment.MachineName}\",\"started_at\":\"2020-01-01T00:00:00Z\"}}\n",
            $"{{\"pid\":{Environment.ProcessId},\"host\":\"{Environment.MachineName}\",\"started_at\":\"2000-01-01T00:00:00Z\"}}\n",
            "not json\n",
        })
        {
            OverwriteUnderTheLock(lockPath, record);
            var started = Stopwatch.StartNew();
            var ex = Assert.Throws<RunLockedException>(() => run.BeginAttempt());
            Assert.Null(ex.Owner);
            Assert.Contains("another live process", ex.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(dead.ToString(System.Globalization.CultureInfo.InvariantCulture), ex.Message, StringComparison.Ordinal);
            Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(15));
        }
    }

    [Fact]
    public void RaceLosersNameTheLiveWinnerByItsOwnPid()
    {
        // One run across rounds: from the second round on, run.json names the previous, dead
        // winner until the new one writes its snapshot — the stale name losers used to give.
        var run = InterruptedRun("race");
        for (int round = 0; round < 4; round++)
        {
            string go = _dir.Combine("go" + round);
            var drivers = Enumerable.Range(0, 4).Select(_ => new Driver("contend", "resume", run.Path, go, "1500")).ToList();
            try
            {
                System.Threading.Thread.Sleep(1500); // let every child start and wait for the go file
                File.WriteAllText(go, "go");
                foreach (var d in drivers)
                {
                    d.WaitForExit(TimeSpan.FromSeconds(60));
                }

                var answers = drivers.Select(d => (d.Id, Line: d.Lines.FirstOrDefault(l => l.StartsWith("OWNER ", StringComparison.Ordinal) || l.StartsWith("LOCKED ", StringComparison.Ordinal)))).ToList();
                string all = string.Join(" | ", drivers.Select(d => d.Id + ": " + d.Describe()));
                var winners = answers.Where(a => a.Line == "OWNER " + a.Id).ToList();
                Assert.True(winners.Count == 1, "one owner per round: " + all);
                Assert.True(answers.Count(a => a.Line == "LOCKED " + winners[0].Id) == 3, "every loser names the winner's pid " + winners[0].Id + ": " + all);
            }
            finally
            {
                drivers.ForEach(d => d.Dispose());
            }
        }
    }

    [Fact]
    public void ARemoveRacingResumesNamesOnlyALiveWinnerOrSaysTheRunIsGone()
    {
        for (int round = 0; round < 3; round++)
        {
            var run = InterruptedRun("gone" + round);
            string go = _dir.Combine("go-remove" + round);
            var drivers = new List<Driver> { new("contend", "remove", run.Path, go, "0") };
            drivers.AddRange(Enumerable.Range(0, 3).Select(_ => new Driver("contend", "resume", run.Path, go, "1500")));
            try
            {
                System.Threading.Thread.Sleep(1500);
                File.WriteAllText(go, "go");
                foreach (var d in drivers)
                {
                    d.WaitForExit(TimeSpan.FromSeconds(60));
                }

                string all = string.Join(" | ", drivers.Select(d => d.Id + ": " + d.Describe()));
                var lines = drivers.Select(d => d.Lines.FirstOrDefault(l => l.Length > 0 && !l.StartsWith("STDERR", StringComparison.Ordinal)) ?? "<nothing>").ToList();
                var holders = drivers.Where((d, i) => lines[i] == "OWNER " + d.Id || lines[i] == "REMOVED " + d.Id).Select(d => d.Id).ToList();
                Assert.True(holders.Count == 1, "exactly one process got the lock: " + all);
                bool removed = lines[0] == "REMOVED " + drivers[0].Id;
                Assert.Equal(removed, !Directory.Exists(run.Path));
                foreach (string line in lines.Where(l => !l.StartsWith("OWNER ", StringComparison.Ordinal) && !l.StartsWith("REMOVED ", StringComparison.Ordinal)))
                {
                    // A loser names the one live holder, or (after a removal) says the run is gone.
                    bool namesHolder = line == "LOCKED " + holders[0];
                    bool gone = removed && line.StartsWith("ERROR RunNotFound ", StringComparison.Ordinal);
                    Assert.True(namesHolder || gone, $"unexpected answer '{line}': {all}");
                }
            }
            finally
            {
                drivers.ForEach(d => d.Dispose());
            }
        }
    }

    [Fact]
    public void ALockTakenOnARunRemovedMeanwhileIsGivenUpAsRunNotFound()
    {
        var run = InterruptedRun("r1");
        // Under another root but keeping its name: a run's directory is named by its run id.
        Directory.CreateDirectory(_dir.Combine("elsewhere"));
        string movedTo = _dir.Combine("elsewhere", "r1");
        RunLock.AfterLockTaken = _ =>
        {
            RunLock.AfterLockTaken = null;
            Directory.Move(run.Path, movedTo); // what a racing Remove-Run does under its own lock
        };
        try
        {
            var ex = Assert.ThrowsAny<RunToolsException>(() => run.BeginAttempt());
            Assert.Equal(ErrorIds.RunNotFound, ex.ErrorId);
            Assert.Contains(run.Path, ex.Message, StringComparison.Ordinal);
        }
        finally
        {
            RunLock.AfterLockTaken = null;
        }

        // The lock taken on the moved file was let go.
        using var attempt = RunDirectory.Open(movedTo).BeginAttempt();
        Assert.Equal(2, attempt.Attempt);
    }

    [Fact]
    public void DisposeReleasesTheLockWhenWhatComesBeforeItFails()
    {
        var run = InterruptedRun("r1");
        var options = new AttemptOptions
        {
            CrashPoint = name =>
            {
                if (name == "dispose_log")
                {
                    throw new IOException("injected: the attempt log cannot be flushed");
                }
            },
        };
        var attempt = run.BeginAttempt(options);
        attempt.BeginStep("s");

        var ex = Assert.Throws<IOException>(() => attempt.Dispose());
        Assert.Contains("injected", ex.Message, StringComparison.Ordinal);

        // The same process resumes at once: no RunLocked naming itself.
        WaitUntilFree(run);
        Assert.False(run.IsOwned);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        using var next = run.BeginAttempt();
        Assert.Equal(3, next.Attempt);
    }

    [Fact]
    public void OnAReadOnlyRootTheLockIsRefusedAsReadOnlyUnlessALiveProcessReallyHoldsIt()
    {
        var interrupted = InterruptedRun("r1");
        var completed = CompletedRun("done");
        var held = InterruptedRun("held");
        using var holder = new Driver("hold", held.Path, "60000");
        holder.Expect("OWNER", TimeSpan.FromSeconds(30));
        using var mount = ReadOnlyBindMount.Over(_root.Path);

        Assert.Throws<IOException>(() => File.WriteAllText(Path.Combine(_root.Path, "probe"), "x"));
        foreach (var (operation, run) in new[] { ("begin", interrupted), ("delete", interrupted), ("export", completed) })
        {
            var ex = Assert.ThrowsAny<RunToolsException>(() => Do(operation, run, string.Empty));
            Assert.True(ex.ErrorId == ErrorIds.RunReadOnly, $"{operation}: {ex.ErrorId} {ex.Message}");
            Assert.Contains("read-only file system", ex.Message, StringComparison.Ordinal);
            Assert.Contains(Path.Combine(run.Path, ".lock"), ex.Message, StringComparison.Ordinal);
        }

        // Readers probe read-only: the truth on both sides.
        Assert.Equal(RunStatus.Interrupted, interrupted.ReadState().Status);
        Assert.Equal(RunStatus.Running, held.ReadState().Status);
        Assert.True(completed.Test(cancellation: TestContext.Current.CancellationToken).IsValid);

        // A run held through another mount is really held: that is what the refusal says.
        var locked = Assert.Throws<RunLockedException>(() => held.BeginAttempt());
        Assert.Equal(holder.Id, locked.Owner!.ProcessId);
    }

    [Fact]
    public void AProcessThatCannotReadTheLockLeavesTheStatusAsRecordedAndSaysPermissionDenied()
    {
        var run = InterruptedRun("r1");
        string lockPath = Path.Combine(run.Path, ".lock");
        if (!OperatingSystem.IsLinux())
        {
            Assert.Skip("setpriv is Linux only");
        }
        else
        {
            File.SetUnixFileMode(lockPath, UnixFileMode.None);
        }

        // As root every file is readable; a child without CAP_DAC_OVERRIDE is held to the file mode.
        string status = RunWithoutFileOverride("contend", "status", run.Path, "-", "0");
        string resume = RunWithoutFileOverride("contend", "resume", run.Path, "-", "0");

        Assert.Equal("STATUS Running", status); // not Interrupted: whether an owner lives cannot be told
        Assert.StartsWith("ERROR LockPermissionDenied ", resume, StringComparison.Ordinal);
        Assert.Contains(lockPath, resume, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status); // this process can read it
    }

    // ------------------------------------------------------------------ helpers

    private static void Do(string operation, RunDirectory run, string archive)
    {
        switch (operation)
        {
            case "begin":
                run.BeginAttempt().Dispose();
                break;
            case "delete":
                run.Delete();
                break;
            case "export":
                RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = Path.Combine(Path.GetTempPath(), "runtools-lock-" + Guid.NewGuid().ToString("N") + ".zip"), Force = true });
                break;
            case "import-force":
                RunArchive.Import(archive, new RunsRoot(Path.GetDirectoryName(run.Path)!), new ArchiveImportOptions { Force = true });
                break;
            case "test":
                run.Test();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(operation));
        }
    }

    /// <summary>Stored Running, no owner: an attempt that ended without finishing (Dispose flushes and lets go).</summary>
    private RunDirectory InterruptedRun(string id)
    {
        var run = Runs.Create(_root, id);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("s");
        }

        WaitUntilFree(run);
        Assert.Equal(RunStatus.Interrupted, run.ReadState().Status);
        return run;
    }

    /// <summary>
    /// A child process forked by another test at the instant a lock is released shares the lock's
    /// open file until it execs (flock semantics): allow for that instant, boundedly.
    /// </summary>
    private static void WaitUntilFree(RunDirectory run)
    {
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (run.IsOwned && DateTime.UtcNow < deadline)
        {
            System.Threading.Thread.Sleep(10);
        }
    }

    private RunDirectory CompletedRun(string id)
    {
        var run = Runs.Create(_root, id);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.CompleteStep("s", null);
        attempt.Complete();
        return run;
    }

    private string ArchiveOfACompletedRun(string id)
    {
        var elsewhere = new RunsRoot(_dir.Combine("elsewhere-" + Guid.NewGuid().ToString("N").Substring(0, 6)));
        var run = Runs.Create(elsewhere, id);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("s");
            attempt.CompleteStep("s", null);
            attempt.Complete();
        }

        string archive = _dir.Combine(id + "-" + Guid.NewGuid().ToString("N").Substring(0, 6) + ".zip");
        RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = archive });
        return archive;
    }

    private string PlantPrecious()
    {
        string precious = _dir.Combine("root", "precious.txt");
        File.WriteAllText(precious, PreciousText);
        return precious;
    }

    private static void ReplaceLock(RunDirectory run, Action<string> plant)
    {
        string lockPath = Path.Combine(run.Path, ".lock");
        File.Delete(lockPath);
        plant(lockPath);
    }

    private static void PlantOwnerInRunJson(RunDirectory run, int pid)
    {
        var json = JsonNode.Parse(File.ReadAllText(run.StatePath))!;
        json["owner"]!["pid"] = pid;
        File.WriteAllText(run.StatePath, json.ToJsonString());
    }

    /// <summary>.NET's own FileStream takes a shared flock even to write, so a shell writes the record.</summary>
    private static void OverwriteUnderTheLock(string path, string content)
    {
        var info = new ProcessStartInfo("sh") { UseShellExecute = false };
        foreach (string a in new[] { "-c", "printf '%s' \"$1\" > \"$2\"", "sh", content, path })
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        Assert.True(process.WaitForExit(10000) && process.ExitCode == 0, "could not overwrite " + path);
    }

    private static int DeadPid()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        Assert.True(process.WaitForExit(10000));
        return process.Id;
    }

    private static void Mkfifo(string path)
    {
        using var process = Process.Start(new ProcessStartInfo("mkfifo", path) { UseShellExecute = false })!;
        Assert.True(process.WaitForExit(10000) && process.ExitCode == 0, "mkfifo failed");
    }

    private static T Bounded<T>(Func<T> action)
    {
        var task = Task.Run(action);
        Assert.True(task.Wait(s_bounded), $"did not return within {s_bounded.TotalSeconds:0} s");
        return task.Result;
    }

    /// <summary>Runs the test driver once as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH; returns its first line.</summary>
    private static string RunWithoutFileOverride(params string[] args)
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root")
        {
            Assert.Skip("needs Linux and root: as another user, chmod alone makes .lock unreadable, which other tests already cover as root cannot");
        }

        var info = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in new[] { "--bounding-set", "-dac_override,-dac_read_search", "--", "dotnet", Path.Combine(AppContext.BaseDirectory, "RunTools.TestDriver.dll") }.Concat(args))
        {
            info.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            Assert.Skip("setpriv is not available: " + ex.Message);
            throw;
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(60000))
            {
                process.Kill();
                throw new TimeoutException("the driver under setpriv did not exit within 60 s");
            }

            string output = stdout.Result.Trim();
            if (output.Length == 0 && stderr.Result.Contains("setpriv", StringComparison.Ordinal))
            {
                Assert.Skip("setpriv cannot drop capabilities here: " + stderr.Result);
            }

            return output.Split('\n')[0];
        }
    }

    /// <summary>A read-only bind mount of a folder over itself; unmounted on dispose. Skips the test where mounting is impossible.</summary>
    private sealed class ReadOnlyBindMount : IDisposable
    {
        private readonly string _path;

        private ReadOnlyBindMount(string path) => _path = path;

        public static ReadOnlyBindMount Over(string path)
        {
            if (!OperatingSystem.IsLinux())
            {
                Assert.Skip("bind mounts are a Linux feature");
            }

            string? failure = Mount("--bind", path, path);
            if (failure is not null)
            {
                Assert.Skip("cannot bind-mount here (needs root or CAP_SYS_ADMIN): " + failure);
            }

            var mount = new ReadOnlyBindMount(path);
            failure = Mount("-o", "remount,ro,bind", path);
            if (failure is not null)
            {
                mount.Dispose();
                Assert.Skip("cannot remount read-only here: " + failure);
            }

            return mount;
        }

        public void Dispose()
        {
            for (int i = 0; i < 50; i++)
            {
                if (Run("umount", _path) is null)
                {
                    return;
                }

                System.Threading.Thread.Sleep(100);
            }

            throw new InvalidOperationException("could not unmount " + _path);
        }

        private static string? Mount(params string[] args) => Run("mount", args);

        private static string? Run(string command, params string[] args)
        {
            var info = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
            foreach (string a in args)
            {
                info.ArgumentList.Add(a);
            }

            try
            {
                using var process = Process.Start(info)!;
                var error = process.StandardError.ReadToEndAsync();
                if (!process.WaitForExit(30000))
                {
                    process.Kill();
                    return command + " timed out";
                }

                return process.ExitCode == 0 ? null : error.Result.Trim();
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                return ex.Message;
            }
        }
    }
}
