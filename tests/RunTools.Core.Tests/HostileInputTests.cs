using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using RunTools.Core.Archive;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// Issue 11, items 6-8 (part D): FIFOs, devices and directories where a file is expected are
/// refused before any read, never a hang; oversized configs and archives are refused with their
/// own ids; a damaged run directory is named as damaged.
/// </summary>
public sealed class HostileInputTests : IDisposable
{
    // Every call that could block on a FIFO runs under this bound: a hang fails the test instead of the suite.
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(20);
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;

    public HostileInputTests() => _root = new RunsRoot(_dir.Combine("runs"));

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void FileKindsAreToldApartWithoutOpening()
    {
        SkipOnWindows();
        string file = _dir.Combine("plain.txt");
        File.WriteAllText(file, "x");
        string fifo = MakeFifo("pipe");
        string link = _dir.Combine("link-to-pipe");
        File.CreateSymbolicLink(link, fifo);

        Assert.Equal(FileKind.Regular, InputFile.KindOf(file));
        Assert.Equal(FileKind.Directory, InputFile.KindOf(_dir.Path));
        Assert.Equal(FileKind.Fifo, InputFile.KindOf(fifo));
        Assert.Equal(FileKind.Fifo, InputFile.KindOf(link)); // a link is judged by its target
        Assert.Equal(FileKind.SymbolicLink, NativeFileType.Of(link, followLinks: false));
        Assert.Equal(FileKind.CharacterDevice, InputFile.KindOf("/dev/null"));
        Assert.Equal(FileKind.Missing, InputFile.KindOf(_dir.Combine("absent")));
    }

    [Fact]
    public void TheStatGivesARegularFilesLengthAndZeroForAnythingElse()
    {
        SkipOnWindows();
        string big = _dir.Combine("big.bin");
        File.WriteAllBytes(big, new byte[5_000_123]);
        string link = _dir.Combine("link-to-big");
        File.CreateSymbolicLink(link, big);
        string fifo = MakeFifo("pipe-length");

        // A long, non-ASCII path: the name buffer reused per thread must grow and be terminated each time.
        string deep = _dir.Combine(new string('é', 100) + "-" + new string('x', 40));
        File.WriteAllText(deep, "12345");
        Assert.Equal(FileKind.Regular, NativeFileType.Of(deep, followLinks: true, out long deepLength));
        Assert.Equal(5, deepLength);

        Assert.Equal(FileKind.Regular, NativeFileType.Of(big, followLinks: true, out long length));
        Assert.Equal(5_000_123, length);
        Assert.Equal(FileKind.Regular, NativeFileType.Of(link, followLinks: true, out long linked));
        Assert.Equal(5_000_123, linked);
        Assert.Equal(FileKind.SymbolicLink, NativeFileType.Of(link, followLinks: false, out long unfollowed));
        Assert.Equal(0, unfollowed);
        Assert.Equal(FileKind.Fifo, NativeFileType.Of(fifo, followLinks: true, out long fifoLength));
        Assert.Equal(0, fifoLength);
        Assert.Equal(FileKind.Directory, NativeFileType.Of(_dir.Path, followLinks: true, out long directoryLength));
        Assert.Equal(0, directoryLength);
        Assert.Equal(FileKind.Missing, NativeFileType.Of(_dir.Combine("absent"), followLinks: true, out long missingLength));
        Assert.Equal(0, missingLength);

        // A shorter name after a longer one on the same thread: the terminator, not the old tail, ends it.
        Assert.Equal(FileKind.Regular, NativeFileType.Of(big, followLinks: true, out long again));
        Assert.Equal(5_000_123, again);
    }

    [Fact]
    public void SharedReadsGiveEachFilesOwnBytesWhateverCameBefore()
    {
        string longer = _dir.Combine("longer.json");
        string shorter = _dir.Combine("shorter.json");
        string huge = _dir.Combine("huge.json");
        File.WriteAllText(longer, new string('a', 3000));
        File.WriteAllText(shorter, "{\"b\":1}");
        File.WriteAllBytes(huge, Enumerable.Repeat((byte)'c', 300_000).ToArray());

        Assert.Equal(3000, DurableFile.ReadShared(longer).Count);
        var read = DurableFile.ReadShared(shorter);
        Assert.Equal("{\"b\":1}", System.Text.Encoding.UTF8.GetString(read.Array!, read.Offset, read.Count));
        var large = DurableFile.ReadShared(huge);
        Assert.Equal(300_000, large.Count);
        Assert.All(large, b => Assert.Equal((byte)'c', b));
        Assert.Equal(7, DurableFile.ReadShared(shorter).Count);

        // A FIFO is refused before it is opened, as by every reader.
        if (!OperatingSystem.IsWindows())
        {
            string fifo = MakeFifo("state-fifo.json");
            Assert.Throws<NotRegularFileException>(() => DurableFile.ReadShared(fifo));
        }
    }

    [Fact]
    public void AConfigThatIsAFifoOrADirectoryIsRefusedBeforeAnyRead()
    {
        SkipOnWindows();
        string fifo = MakeFifo("config.json");
        var ex = Bounded(() => EffectiveConfig.FromFile(fifo));
        Assert.Equal(ErrorIds.NotRegularFile, ex.ErrorId);
        Assert.Equal(RunToolsErrorCategory.InvalidArgument, ex.Category);
        Assert.Contains("FIFO", ex.Message, StringComparison.Ordinal);
        Assert.Contains(fifo, ex.Message, StringComparison.Ordinal);

        string folder = _dir.Combine("folder.yaml");
        Directory.CreateDirectory(folder);
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => EffectiveConfig.FromFile(folder)).ErrorId);
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => EffectiveConfig.CheckFile("/dev/zero")).ErrorId);
    }

    [Fact]
    public void AConfigAboveTheLimitIsRefusedBeforeParsingAndOneAtTheLimitIsRead()
    {
        string large = _dir.Combine("large.json");
        using (var stream = File.Create(large))
        {
            stream.SetLength(EffectiveConfig.MaxFileSize + 1); // sparse: no 16 MiB written
        }

        var ex = Assert.Throws<RunToolsException>(() => EffectiveConfig.FromFile(large));
        Assert.Equal(ErrorIds.ConfigTooLarge, ex.ErrorId);
        Assert.Contains("16 MiB", ex.Message, StringComparison.Ordinal);

        // At the limit the file is parsed: a JSON object padded with spaces to exactly 16 MiB.
        string atLimit = _dir.Combine("limit.json");
        var text = new char[EffectiveConfig.MaxFileSize];
        Array.Fill(text, ' ');
        "{\"a\":1}".CopyTo(0, text, 0, 7);
        File.WriteAllText(atLimit, new string(text));
        Assert.Equal(16L * 1024 * 1024, new FileInfo(atLimit).Length);
        Assert.Equal("{\"a\":1}", EffectiveConfig.FromFile(atLimit).CanonicalJson);
    }

    [Fact]
    public void AnArtifactOrDeclaredOutputThatIsAFifoOrDirectoryIsRefused()
    {
        SkipOnWindows();
        var run = Runs.Create(_root);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        string fifo = MakeFifo("artifact.bin");
        var ex = Bounded(() => attempt.AddArtifact(fifo));
        Assert.Equal(ErrorIds.NotRegularFile, ex.ErrorId);
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => attempt.AddArtifact(_dir.Path, "dir")).ErrorId);

        MakeFifo(Path.Combine(run.Path, "out.fifo"));
        Directory.CreateDirectory(Path.Combine(run.Path, "outdir"));
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => attempt.RecordOutputFiles("s", new[] { "out.fifo" })).ErrorId);
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => attempt.RecordOutputFiles("s", new[] { "outdir" })).ErrorId);
        Assert.Equal(ErrorIds.NotRegularFile, Bounded(() => attempt.RecordOutputFiles("s", new[] { "*.fifo" })).ErrorId);
        Assert.Empty(attempt.State.Artifacts);
    }

    [Fact]
    public void ReadersNeverOpenAFifo()
    {
        SkipOnWindows();
        string fifo = MakeFifo("journal.jsonl");
        var ex = Assert.IsType<NotRegularFileException>(BoundedException(() => DurableFile.OpenRead(fifo).Dispose()));
        Assert.Equal(FileKind.Fifo, ex.Kind);
    }

    [Theory]
    [InlineData("directory")]
    [InlineData("fifo")]
    public void TestRunReportsAJournalThatIsNotAFileAsAProblemOfThatRun(string kind)
    {
        SkipOnWindows();
        var run = CompletedRun();
        File.Delete(run.JournalPath);
        if (kind == "directory")
        {
            Directory.CreateDirectory(run.JournalPath);
        }
        else
        {
            MakeFifo(run.JournalPath);
        }

        var result = BoundedResult(() => run.Test(null, TestContext.Current.CancellationToken));
        Assert.False(result.IsValid);
        var problem = Assert.Single(result.Problems);
        Assert.Equal(RunProblemKind.Unreadable, problem.Kind);
        Assert.Equal(RunFormat.JournalFile, problem.Path);
        Assert.Contains(kind == "fifo" ? "FIFO" : "directory", problem.Actual, StringComparison.Ordinal);
    }

    [Fact]
    public void TestRunReportsARunJsonOrRecordedFileThatIsAFifoWithoutBlocking()
    {
        SkipOnWindows();
        var run = CompletedRun();
        File.Delete(run.StatePath);
        MakeFifo(run.StatePath);
        string artifact = Path.Combine(run.Path, "artifacts", "a.txt");
        File.Delete(artifact);
        MakeFifo(artifact);

        var result = BoundedResult(() => run.Test(null, TestContext.Current.CancellationToken));
        Assert.False(result.IsValid);
        Assert.Contains(result.Problems, p => p.Kind == RunProblemKind.CorruptState && p.Path == RunFormat.StateFile && p.Actual.Contains("FIFO", StringComparison.Ordinal));
        Assert.Contains(result.Problems, p => p.Kind == RunProblemKind.Unreadable && p.Path == "artifacts/a.txt" && p.Actual.Contains("FIFO", StringComparison.Ordinal));
    }

    [Fact]
    public void AStepsFolderThatIsAFileIsRunDamagedNamingIt()
    {
        var run = Runs.Create(_root);
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        string steps = Path.Combine(run.Path, RunFormat.StepsFolder);
        if (Directory.Exists(steps))
        {
            Directory.Delete(steps, recursive: true);
        }

        File.WriteAllText(steps, "not a folder");
        var ex = Assert.Throws<RunToolsException>(() => attempt.CompleteStep("s", Runs.Bytes("out"), "txt"));
        Assert.Equal(ErrorIds.RunDamaged, ex.ErrorId);
        Assert.Contains(steps, ex.Message, StringComparison.Ordinal);
        Assert.Contains("damaged", ex.Message, StringComparison.Ordinal);
        Assert.Equal(ErrorIds.RunDamaged, Assert.Throws<RunToolsException>(() => attempt.NewStepOutputFile("s")).ErrorId);
    }

    [Fact]
    public void AStreamedStepOutputIsRecordedWithItsSizeAndHashAndItsTempFileIsGone()
    {
        var run = Runs.Create(_root);
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("s");
            string temp = attempt.NewStepOutputFile("s");
            Assert.StartsWith(".", Path.GetFileName(temp), StringComparison.Ordinal);
            Assert.Contains(DurableFile.TempMarker, temp, StringComparison.Ordinal);
            byte[] content = Runs.Bytes(new string('z', 300_000));
            File.WriteAllBytes(temp, content);
            attempt.CompleteStepFromFile("s", temp, "clixml");
            Assert.False(File.Exists(temp));

            var output = attempt.State.FindStep("s")!.Output!;
            Assert.Equal(content.Length, output.Size);
            Assert.Equal(Integrity.Sha256Hex(content), output.Sha256);
            Assert.Equal(content, File.ReadAllBytes(attempt.StepOutputFile("s")!));
            attempt.Complete();
        }

        Assert.True(run.Test(null, TestContext.Current.CancellationToken).IsValid);
    }

    [Fact]
    public void AnArchiveAboveTheSizeLimitIsRefusedBeforeAnythingIsWritten()
    {
        string archive = ExportedArchive();
        var target = new RunsRoot(_dir.Combine("restored"));
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, target, new ArchiveImportOptions { MaximumSize = 10 }));
        Assert.Equal(ErrorIds.ArchiveTooLarge, ex.ErrorId);
        Assert.Contains("-MaximumSize", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target.Path) && Directory.EnumerateFileSystemEntries(target.Path).Any());

        // The default and a raised limit import the same archive.
        Assert.Equal("r1", RunArchive.Import(archive, target).RunId);
    }

    [Fact]
    public void AnArchiveWithMoreEntriesThanTheLimitIsRefused()
    {
        string archive = ExportedArchive();
        var target = new RunsRoot(_dir.Combine("restored"));
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, target, new ArchiveImportOptions { MaximumEntryCount = 3 }));
        Assert.Equal(ErrorIds.ArchiveTooManyEntries, ex.ErrorId);
        Assert.Contains("-MaximumEntryCount", ex.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(target.Path) && Directory.EnumerateFileSystemEntries(target.Path).Any());
    }

    [Fact]
    public void AnArchiveThatDoesNotFitInTheFreeSpaceIsRefusedAndLeavesNothing()
    {
        string archive = ExportedArchive();
        var target = new RunsRoot(_dir.Combine("restored"));
        RunArchive.FreeSpaceProbe = _ => 1000;
        try
        {
            var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, target));
            Assert.Equal(ErrorIds.InsufficientSpace, ex.ErrorId);
            Assert.Contains("1,000", ex.Message, StringComparison.Ordinal);
            Assert.Empty(Directory.EnumerateFileSystemEntries(target.Path));
        }
        finally
        {
            RunArchive.FreeSpaceProbe = null;
        }

        // The real free space of the test disk is enough.
        Assert.Equal("r1", RunArchive.Import(archive, target).RunId);
    }

    private string ExportedArchive() =>
        RunArchive.Export(CompletedRun(), new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }).Path;

    private RunDirectory CompletedRun()
    {
        var run = Runs.Create(_root);
        string source = _dir.Combine("a.txt");
        File.WriteAllText(source, "artifact");
        using var attempt = run.BeginAttempt();
        attempt.BeginStep("s");
        attempt.AddArtifact(source);
        attempt.CompleteStep("s", Runs.Bytes("<Objs/>"), "clixml");
        attempt.Complete();
        return run;
    }

    private string MakeFifo(string name)
    {
        string path = Path.IsPathRooted(name) ? name : _dir.Combine(name);
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", path) { UseShellExecute = false })!;
        Assert.True(mkfifo.WaitForExit(10_000));
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    private static void SkipOnWindows()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("FIFOs and devices in the file system are a Unix thing.");
        }
    }

    private static RunToolsException Bounded(Action action) => Assert.IsType<RunToolsException>(BoundedException(action), exactMatch: false);

    private static Exception? BoundedException(Action action)
    {
        var task = Task.Run(action);
        Assert.True(Task.WaitAny(new Task[] { task }, s_bound) == 0, "the call blocked (it must not open a FIFO)");
        return task.Exception?.InnerException;
    }

    private static T BoundedResult<T>(Func<T> func)
    {
        var task = Task.Run(func);
        Assert.True(task.Wait(s_bound), "the call blocked (it must not open a FIFO)");
        return task.Result;
    }
}
