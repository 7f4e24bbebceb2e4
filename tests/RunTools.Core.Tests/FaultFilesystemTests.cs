using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Small real file systems made by the test as root: a size-limited tmpfs (ENOSPC) and a
/// loop-mounted ext4 that is forced read-only (EROFS). Always unmounted in Dispose.
/// </summary>
internal sealed class TestMount : IDisposable
{
    private readonly string? _image;

    private TestMount(string path, string? image)
    {
        Path = path;
        _image = image;
    }

    public string Path { get; }

    /// <summary>Why this machine cannot mount (not Linux, not root, no permission), or null when it can.</summary>
    public static string? WhyNot()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "mounting a test file system needs Linux";
        }

        if (Environment.UserName != "root")
        {
            return $"mounting a test file system needs root (running as {Environment.UserName})";
        }

        string probe = Directory.CreateTempSubdirectory("runtools-mount-probe-").FullName;
        try
        {
            var (code, output) = Run("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe);
            if (code != 0)
            {
                return "mount is not permitted here: " + output.Trim();
            }

            Run("umount", probe);
            return null;
        }
        finally
        {
            Directory.Delete(probe);
        }
    }

    public static TestMount Tmpfs(string size)
    {
        string path = Directory.CreateTempSubdirectory("runtools-tmpfs-").FullName;
        Check(Run("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", path), "mount tmpfs");
        return new TestMount(path, null);
    }

    /// <summary>An ext4 image on a loop device; on a file-system error the kernel makes it read-only (errors=remount-ro).</summary>
    public static TestMount Ext4(int megabytes)
    {
        string image = System.IO.Path.GetTempFileName();
        using (var file = new FileStream(image, FileMode.Create))
        {
            file.SetLength(megabytes * 1024L * 1024L);
        }

        string path = Directory.CreateTempSubdirectory("runtools-ext4-").FullName;
        try
        {
            Check(Run("mkfs.ext4", "-q", "-F", image), "mkfs.ext4");
            Check(Run("mount", "-o", "loop,errors=remount-ro", image, path), "mount ext4");
        }
        catch
        {
            Directory.Delete(path);
            File.Delete(image);
            throw;
        }

        return new TestMount(path, image);
    }

    public void Resize(string size) => Check(Run("mount", "-o", "remount,size=" + size, Path), "remount tmpfs");

    /// <summary>
    /// Makes the ext4 read-only while the run holds files open for writing, as the kernel does on a
    /// disk error. (`mount -o remount,ro` is refused with EBUSY while any file is open for writing.)
    /// </summary>
    public void ForceReadOnly()
    {
        var (_, source) = Run("findmnt", "-n", "-o", "SOURCE", Path);
        string device = System.IO.Path.GetFileName(source.Trim());
        File.WriteAllText($"/sys/fs/ext4/{device}/trigger_fs_error", "1");
        if (!File.Exists(System.IO.Path.Combine(Path, "probe")) && TryTouch())
        {
            throw new InvalidOperationException("the ext4 file system did not become read-only");
        }
    }

    /// <summary>Unmounts (dropping whatever the kernel still held in memory), repairs and mounts it again read-write.</summary>
    public void RemountAfterRepair()
    {
        Check(Run("umount", Path), "umount ext4");
        Run("e2fsck", "-f", "-y", _image!);
        Check(Run("mount", "-o", "loop,errors=remount-ro", _image!, Path), "mount ext4 again");
    }

    public void Dispose()
    {
        // Bounded retries: a file still closing makes umount fail with EBUSY for a moment.
        for (int i = 0; i < 20 && IsMounted(); i++)
        {
            if (Run("umount", Path).Code != 0)
            {
                System.Threading.Thread.Sleep(100);
            }
        }

        if (IsMounted())
        {
            Run("umount", "-l", Path);
        }

        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }

        if (_image is not null)
        {
            File.Delete(_image);
        }
    }

    private bool TryTouch()
    {
        try
        {
            File.WriteAllText(System.IO.Path.Combine(Path, "probe"), "x");
            return true;
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return false;
        }
    }

    private bool IsMounted() => Run("mountpoint", "-q", Path).Code == 0;

    private static void Check((int Code, string Output) result, string what)
    {
        if (result.Code != 0)
        {
            throw new InvalidOperationException($"{what} failed ({result.Code}): {result.Output}");
        }
    }

    private static (int Code, string Output) Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(60000))
        {
            process.Kill();
            throw new TimeoutException($"{command} {string.Join(' ', args)} did not finish within 60 s");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}

/// <summary>
/// The real-filesystem fault tier: ENOSPC on a 4 MiB tmpfs and EROFS on an ext4 forced read-only
/// mid-run. Skipped, with the reason, only where this machine cannot mount.
/// </summary>
public sealed class FaultFilesystemTests
{
    private const int ArtifactSize = 256 * 1024;

    private static void RequireMount()
    {
        if (TestMount.WhyNot() is { } reason)
        {
            Assert.Skip(reason);
        }
    }

    /// <summary>One step of <paramref name="items"/> items, each copying its own artifact; a write failure fails the attempt.</summary>
    private static RunState DriveItems(RunDirectory run, string sources, int items, Action<RunAttempt, int>? during = null)
    {
        using var attempt = run.BeginAttempt(new AttemptOptions { SnapshotInterval = TimeSpan.Zero });
        try
        {
            if (attempt.BeginStep("copy") == StepAction.Run)
            {
                for (int i = 0; i < items; i++)
                {
                    string key = "item" + i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture);
                    if (attempt.BeginItem("copy", key) != ItemAction.Run)
                    {
                        continue;
                    }

                    during?.Invoke(attempt, i);
                    attempt.AddArtifact(Path.Combine(sources, key + ".bin"), key + ".bin");
                    attempt.CompleteItem("copy", key, null);
                }

                attempt.CompleteStep("copy", null);
            }

            return attempt.Complete();
        }
        catch (RunToolsException ex) when (!attempt.IsFinished)
        {
            try
            {
                attempt.Fail(ex.Message);
            }
            catch (RunToolsException)
            {
                // The journal refuses too (a read-only disk): the run reads as interrupted.
            }

            throw;
        }
    }

    private static string MakeSources(TempDir dir, int items)
    {
        string sources = dir.Combine("sources");
        Directory.CreateDirectory(sources);
        var random = new Random(7);
        for (int i = 0; i < items; i++)
        {
            var bytes = new byte[ArtifactSize];
            random.NextBytes(bytes);
            File.WriteAllBytes(Path.Combine(sources, "item" + i.ToString("D2", System.Globalization.CultureInfo.InvariantCulture) + ".bin"), bytes);
        }

        return sources;
    }

    /// <summary>No completed item without its whole artifact, Test-Run valid, and not Completed unless all is there.</summary>
    private static void AssertNoHole(RunDirectory run, int items)
    {
        var test = run.Test();
        Assert.True(test.IsValid, "Test-Run: " + string.Join("; ", test.Problems.Select(p => p.ToString())));
        var state = run.ReadState();
        var completed = run.ReadEvents().Where(e => e.Type == JournalEventTypes.ItemCompleted).Select(e => e.Key!).ToList();
        foreach (string key in completed)
        {
            var artifact = state.Artifacts.Last(a => a.Key == key);
            Assert.Equal(ArtifactSize, new FileInfo(Path.Combine(run.Path, artifact.Path)).Length);
        }

        if (state.Status == RunStatus.Completed)
        {
            Assert.Equal(items, completed.Distinct().Count());
        }
    }

    [Fact]
    public void A_full_disk_fails_the_run_loudly_instead_of_losing_artifacts_and_it_resumes_once_space_is_freed()
    {
        RequireMount();
        const int items = 40;
        using var dir = new TempDir();
        string sources = MakeSources(dir, items);
        using var mount = TestMount.Tmpfs("4m");
        var run = Runs.Create(new RunsRoot(Path.Combine(mount.Path, "runs")));

        // The scenario: 40 × 256 KiB onto 4 MiB. It used to end Completed with 25 artifacts lost.
        var error = Assert.Throws<RunToolsException>(() => DriveItems(run, sources, items));

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("No space left on device", error.Message, StringComparison.Ordinal);
        Assert.Contains(mount.Path, error.Message, StringComparison.Ordinal);
        Assert.Contains("Free disk space", error.Message, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Failed, run.ReadState().Status);
        AssertNoHole(run, items);
        var failed = Assert.Single(run.ReadEvents(), e => e.Type == JournalEventTypes.ItemFailed);
        Assert.Contains("No space left on device", failed.Data["error"]!.ToString(), StringComparison.Ordinal);

        // Space is freed: the run resumes to Completed, each item completed exactly once.
        mount.Resize("16m");
        var final = DriveItems(run, sources, items);
        Assert.Equal(RunStatus.Completed, final.Status);
        AssertNoHole(run, items);
        var completions = run.ReadEvents().Where(e => e.Type == JournalEventTypes.ItemCompleted).GroupBy(e => e.Key).ToList();
        Assert.Equal(items, completions.Count);
        Assert.All(completions, g => Assert.Single(g));
    }

    [Fact]
    public void A_disk_that_turns_read_only_mid_run_fails_the_run_and_loses_nothing_it_acknowledged()
    {
        RequireMount();
        const int items = 20;
        using var dir = new TempDir();
        string sources = MakeSources(dir, items);
        using var mount = TestMount.Ext4(32);
        var run = Runs.Create(new RunsRoot(Path.Combine(mount.Path, "runs")));

        var error = Assert.Throws<RunToolsException>(() => DriveItems(run, sources, items, (_, i) =>
        {
            if (i == 8)
            {
                mount.ForceReadOnly();
            }
        }));

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("Read-only file system", error.Message, StringComparison.Ordinal);
        Assert.Contains("remount", error.Message, StringComparison.Ordinal);

        // Whatever the kernel still held in memory and never wrote is gone now, as after a power loss.
        mount.RemountAfterRepair();
        run = new RunsRoot(Path.Combine(mount.Path, "runs")).OpenRun(run.RunId);
        Assert.NotEqual(RunStatus.Completed, run.ReadState().Status);
        AssertNoHole(run, items);
        Assert.True(run.ReadEvents().Count(e => e.Type == JournalEventTypes.ItemCompleted) >= 8, "items acknowledged before the disk turned read-only were lost");

        var final = DriveItems(run, sources, items);
        Assert.Equal(RunStatus.Completed, final.Status);
        AssertNoHole(run, items);
    }

    [Fact]
    public void An_fsync_that_fails_with_EROFS_after_the_write_landed_is_not_taken_as_durable()
    {
        // The case .NET's FileStream.Flush(true) ignores: the bytes reached the page cache, then the
        // file system turned read-only and fsync said EROFS.
        RequireMount();
        using var mount = TestMount.Ext4(16);
        var run = Runs.Create(new RunsRoot(Path.Combine(mount.Path, "runs")));
        using var injector = new FaultInjector(mount.Path);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.BeginItem("s", "a");
        injector.FailWhen((_, op, path) =>
        {
            if (op == DurableOp.FileSync && path == run.JournalPath)
            {
                mount.ForceReadOnly(); // a real fault, not an injected one: the real fsync meets it
            }

            return false;
        });

        // FailItem is durable before it returns (a completion waits for the next flush).
        var error = Assert.Throws<RunToolsException>(() => attempt.FailItem("s", "a", "boom"));

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("Read-only file system", error.Message, StringComparison.Ordinal);
        Assert.Contains("fsync", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("injected", error.Message, StringComparison.Ordinal);
    }
}
