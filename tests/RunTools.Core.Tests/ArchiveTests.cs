using System;
using System.Collections.Generic;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RunTools.Core.Archive;
using RunTools.Core.Engine;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class ArchiveTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RunsRoot _root;
    private readonly RunsRoot _other;

    public ArchiveTests()
    {
        _root = new RunsRoot(_dir.Combine("runs"));
        _other = new RunsRoot(_dir.Combine("restored"));
    }

    public void Dispose() => _dir.Dispose();

    // ------------------------------------------------------------ round trip

    [Fact]
    public void ARoundTripRestoresEveryFileByteForByteAndTheSameState()
    {
        var run = CompletedRun("r1", artifacts: 3);
        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") });
        Assert.Equal(_dir.Combine("out", "r1.zip"), result.Path);
        Assert.False(result.Manifest.Forced);
        Assert.Equal(RunStatus.Completed, result.Manifest.Run.Status);
        Assert.Empty(result.Warnings);

        var imported = RunArchive.Import(result.Path, _other);
        Assert.Equal(Path.Combine(_other.Path, "r1"), imported.Path);
        AssertSameFiles(run.Path, imported.Path);
        Assert.Equal(StateJson(run), StateJson(imported));
        Assert.Equal(RunStatus.Completed, imported.ReadState().Status);
        Assert.Empty(imported.Plan().IntegrityProblems);
        Assert.True(Directory.Exists(Path.Combine(imported.Path, RunFormat.LogsFolder)));
        Assert.Equal(new[] { "r1" }, Directory.GetFileSystemEntries(_other.Path).Select(Path.GetFileName));

        // The issue's round trip: the restored run tests valid and compares equal to the original.
        var test = imported.Test(cancellation: TestContext.Current.CancellationToken);
        Assert.True(test.IsValid, string.Join("; ", test.Problems));
        Assert.Empty(test.Problems);
        Assert.Equal(run.Test(cancellation: TestContext.Current.CancellationToken).FilesChecked, test.FilesChecked);
        Assert.Empty(RunComparer.Compare(run, imported));
        Assert.NotEmpty(RunComparer.Compare(run, imported, includeEqual: true));
    }

    [Fact]
    public void ARunSetAsideByAnInterruptedReplacementIsRestoredWhenNothingTookItsPlace()
    {
        // What a kill between the two renames of a forced import leaves: the old run set aside, no run under its id.
        var run = CompletedRun("r1", artifacts: 1);
        string aside = Path.Combine(_root.Path, RunFormat.ReplacedPrefix + "r1-0123abcd");
        Directory.Move(run.Path, aside);

        Assert.Equal(new[] { "r1" }, _root.EnumerateRunIds());
        Assert.False(Directory.Exists(aside));
        Assert.True(_root.OpenRun("r1").Test(cancellation: TestContext.Current.CancellationToken).IsValid);

        // Also through OpenRun alone.
        Directory.Move(run.Path, aside);
        Assert.Equal(RunStatus.Completed, _root.OpenRun("r1").ReadState().Status);

        // And through the listing Get-Run reads, with and without an id filter.
        foreach (Func<string, bool>? filter in new Func<string, bool>?[] { null, id => id == "r1" })
        {
            Directory.Move(run.Path, aside);
            var listed = Assert.Single(_root.ListRuns(filter));
            Assert.Equal(("r1", RunStatus.Completed), (listed.Run.RunId, listed.State!.Status));
            Assert.False(Directory.Exists(aside));
        }
    }

    [Fact]
    public void ARunSetAsideIsDeletedOnceItsReplacementIsInPlace()
    {
        var old = CompletedRun("r1", artifacts: 1);
        var archive = RunArchive.Export(old, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }).Path;
        string aside = Path.Combine(_root.Path, RunFormat.ReplacedPrefix + "r1-0123abcd");
        CopyDirectory(old.Path, aside); // as if the kill came after the new run was renamed in
        Assert.Equal(new[] { "r1" }, _root.EnumerateRunIds());
        Assert.False(Directory.Exists(aside));
        Assert.Equal("r1", RunArchive.Import(archive, _root, new ArchiveImportOptions { Force = true }).RunId);
        Assert.DoesNotContain(Directory.GetDirectories(_root.Path), d => Path.GetFileName(d).StartsWith(".", StringComparison.Ordinal));
    }

    private static void CopyDirectory(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(destination, Path.GetRelativePath(source, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }

    [Fact]
    public void TheManifestListsEveryFileWithSizeAndHashAndTheRunSummary()
    {
        var run = CompletedRun("r1", artifacts: 2);
        File.WriteAllText(Path.Combine(run.Path, ".run.json" + ".tmp-0123456789ab"), "leftover");
        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("r1-copy.zip") });
        Assert.Equal(_dir.Combine("r1-copy.zip"), result.Path);

        using var zip = ZipFile.OpenRead(result.Path);
        var names = zip.Entries.Select(e => e.FullName).ToList();
        Assert.Contains(RunArchive.ManifestName, names);
        Assert.DoesNotContain(RunFormat.LockFile, names);
        Assert.DoesNotContain(names, n => n.Contains(".tmp-", StringComparison.Ordinal));
        var manifest = JsonNode.Parse(zip.GetEntry(RunArchive.ManifestName)!.Open())!;
        Assert.Equal(1, (int)manifest["archive_format_version"]!);
        Assert.False((bool)manifest["forced"]!);
        Assert.StartsWith("RunTools ", (string)manifest["created_by"]!, StringComparison.Ordinal);
        Assert.Equal("r1", (string)manifest["run"]!["run_id"]!);
        Assert.Equal("completed", (string)manifest["run"]!["status"]!);
        Assert.Equal(run.ReadState().Config.Hash, (string)manifest["run"]!["config_hash"]!);
        Assert.Equal(5, (long)manifest["run"]!["items_completed"]!);
        var files = manifest["files"]!.AsArray();
        Assert.Equal(names.Count - 1, files.Count);
        foreach (var file in files)
        {
            string path = (string)file!["path"]!;
            var (size, sha) = Integrity.HashFile(Path.Combine(run.Path, path));
            Assert.Equal(size, (long)file["size"]!);
            Assert.Equal(sha, (string)file["sha256"]!);
        }

        Assert.Contains("artifacts", manifest["directories"]!.AsArray().Select(d => (string)d!));
    }

    [Fact]
    public void AForcedExportOfAnUnfinishedRunSaysSoAndImports()
    {
        var run = Runs.Create(_root, "r1");
        var refused = Assert.Throws<RunToolsException>(() => RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }));
        Assert.Equal(ErrorIds.ArchiveRunNotCompleted, refused.ErrorId);
        Assert.Contains("-Force", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(_dir.Combine("out")) && Directory.EnumerateFileSystemEntries(_dir.Combine("out")).Any());

        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out"), Force = true });
        Assert.True(result.Manifest.Forced);
        Assert.Equal(RunStatus.Created, result.Manifest.Run.Status);
        Assert.Equal(RunStatus.Created, RunArchive.Import(result.Path, _other).ReadState().Status);
    }

    [Fact]
    public void ARunningRunIsNeverExportedEvenWithForce()
    {
        var run = Runs.Create(_root, "r1");
        using var holder = new Driver("hold", run.Path, "60000");
        Assert.True(holder.WaitFor("OWNER", TimeSpan.FromSeconds(30)), holder.Describe());
        var ex = Assert.Throws<RunLockedException>(() => RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out"), Force = true }));
        Assert.Equal(ErrorIds.RunLocked, ex.ErrorId);
        Assert.Contains($"process {holder.Id}@", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(_dir.Combine("out", "r1.zip")));
    }

    [Fact]
    public void AnExistingArchiveIsOverwrittenOnlyWithForce()
    {
        var run = CompletedRun("r1");
        string target = _dir.Combine("out", "r1.zip");
        Directory.CreateDirectory(_dir.Combine("out"));
        File.WriteAllText(target, "older archive");
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }));
        Assert.Equal(ErrorIds.ArchiveExists, ex.ErrorId);
        Assert.Contains("-Force", ex.Message, StringComparison.Ordinal);
        Assert.Equal("older archive", File.ReadAllText(target));

        RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out"), Force = true });
        using var zip = ZipFile.OpenRead(target);
        Assert.NotNull(zip.GetEntry(RunArchive.ManifestName));
        Assert.Single(Directory.GetFiles(_dir.Combine("out")));
    }

    [Fact]
    public void LinksAreSkippedWithAWarningAndReferencedArtifactsAreListedNotCopied()
    {
        string outside = _dir.Combine("secret.txt");
        File.WriteAllText(outside, "outside the run");
        var run = CompletedRun("r1", reference: outside);
        File.CreateSymbolicLink(Path.Combine(run.Path, "artifacts", "escape.txt"), outside);
        Directory.CreateSymbolicLink(Path.Combine(run.Path, "up"), _dir.Path);

        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") });
        Assert.Contains(result.Warnings, w => w.Contains("artifacts/escape.txt", StringComparison.Ordinal) && w.Contains("link", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains("'up'", StringComparison.Ordinal));
        Assert.Contains(result.Warnings, w => w.Contains(outside, StringComparison.Ordinal) && w.Contains("reference", StringComparison.Ordinal));
        Assert.Equal(new[] { "artifacts/escape.txt", "up" }, result.Manifest.Skipped.Select(s => s.Path).OrderBy(p => p, StringComparer.Ordinal));
        Assert.Equal(outside, Assert.Single(result.Manifest.ReferencedArtifacts).Path);

        using var zip = ZipFile.OpenRead(result.Path);
        Assert.DoesNotContain(zip.Entries, e => e.FullName.StartsWith("up", StringComparison.Ordinal) || e.FullName.Contains("escape", StringComparison.Ordinal));
        Assert.DoesNotContain(zip.Entries, e => e.Length == new FileInfo(outside).Length && ReadEntry(e) == "outside the run");
    }

    [Fact]
    public void ARunWithThousandsOfArtifactsExportsAndImportsIntact()
    {
        var run = CompletedRun("big", artifacts: 3000);
        var progress = new List<ArchiveProgress>();
        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out"), Progress = progress.Add });
        Assert.True(result.Manifest.Files.Count > 3000);
        Assert.Equal(result.Manifest.Files.Count, progress[progress.Count - 1].FilesDone);
        Assert.Equal(progress[progress.Count - 1].BytesTotal, progress[progress.Count - 1].BytesDone);

        var imported = RunArchive.Import(result.Path, _other);
        AssertSameFiles(run.Path, imported.Path);
        Assert.Equal(3000, imported.ReadState().Artifacts.Count);
        Assert.Empty(imported.Plan().IntegrityProblems);
    }

    [Fact]
    public void AFileWhereAFolderShouldBeIsABadArgumentNotAFailedWrite()
    {
        var run = CompletedRun("r1", artifacts: 1);
        string file = _dir.Combine("notes.txt");
        File.WriteAllText(file, "a regular file");

        // Export into a "folder" that is a file.
        var export = Assert.Throws<RunToolsException>(() => RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = file }));
        Assert.Equal(ErrorIds.InvalidArgument, export.ErrorId);
        Assert.Contains("not a folder", export.Message, StringComparison.Ordinal);

        // Import under a root that is a file.
        string archive = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }).Path;
        Assert.Equal(ErrorIds.RootNotDirectory, Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, new RunsRoot(file))).ErrorId);

        // Import where a file has the run's id, with and without -Force: never replaced.
        var other = new RunsRoot(_dir.Combine("other"));
        Directory.CreateDirectory(other.Path);
        File.WriteAllText(Path.Combine(other.Path, "r1"), "a file named like the run");
        foreach (bool force in new[] { false, true })
        {
            var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, other, new ArchiveImportOptions { Force = force }));
            Assert.Equal(ErrorIds.RunExists, ex.ErrorId);
            Assert.Contains("so it is not replaced", ex.Message, StringComparison.Ordinal);
        }

        Assert.Equal("a file named like the run", File.ReadAllText(Path.Combine(other.Path, "r1")));
        Assert.Equal(new[] { "r1" }, Directory.EnumerateFileSystemEntries(other.Path).Select(Path.GetFileName));
    }

    // ------------------------------------------------------------ hostile archives

    [Fact]
    public void ZipSlipIsRejected() =>
        AssertRejected(ErrorIds.ArchiveUnsafePath, entries => entries.Add(("../x", Runs.Bytes("escaped"))));

    [Theory]
    [InlineData("/etc/x")]
    [InlineData("C:/x")]
    [InlineData("artifacts\\..\\..\\x")]
    [InlineData("artifacts/./x")]
    [InlineData("artifacts//x")]
    public void AbsoluteAndOddPathsAreRejected(string name) =>
        AssertRejected(ErrorIds.ArchiveUnsafePath, entries => entries.Add((name, Runs.Bytes("x"))));

    [Fact]
    public void AManifestListingAnUnsafePathIsRejected() =>
        AssertRejected(ErrorIds.ArchiveUnsafePath, entries => EditManifest(entries, m => m["files"]![0]!["path"] = "../run.json"));

    [Fact]
    public void ASymbolicLinkEntryIsRejected()
    {
        var source = ValidArchive();
        string hostile = _dir.Combine("hostile.zip");
        using (var zip = ZipFile.Open(hostile, ZipArchiveMode.Create))
        {
            foreach (var (name, bytes) in ReadEntries(source))
            {
                WriteEntry(zip, name, bytes);
            }

            var link = zip.CreateEntry("artifacts/link");
            link.ExternalAttributes = unchecked((int)(0xA1FFu << 16));
            using var stream = link.Open();
            stream.Write(Runs.Bytes("/etc/passwd"));
        }

        AssertImportFails(hostile, ErrorIds.ArchiveLinkEntry);
    }

    [Fact]
    public void TamperedBytesWithTheManifestUnchangedAreRejected() =>
        AssertRejected(ErrorIds.ArchiveHashMismatch, entries =>
        {
            int i = entries.FindIndex(e => e.Name == RunFormat.ScriptFile);
            var bytes = (byte[])entries[i].Bytes.Clone();
            bytes[0] ^= 0x20;
            entries[i] = (entries[i].Name, bytes);
        });

    [Fact]
    public void FlippedBytesInTheCompressedDataAreRejectedAsCorrupt()
    {
        var source = ValidArchive();
        byte[] bytes = File.ReadAllBytes(source);
        // Inside the journal's compressed data: after its local header (30 bytes + name + extra field).
        long compressed;
        using (var zip = ZipFile.OpenRead(source))
        {
            compressed = zip.GetEntry(RunFormat.JournalFile)!.CompressedLength;
        }

        byte[] name = Encoding.UTF8.GetBytes(RunFormat.JournalFile);
        int at = bytes.AsSpan().IndexOf(name);
        int extra = bytes[at - 2] | (bytes[at - 1] << 8);
        bytes[at + name.Length + extra + (int)(compressed / 2)] ^= 0xFF;
        string hostile = _dir.Combine("flipped.zip");
        File.WriteAllBytes(hostile, bytes);
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(hostile, _other));
        Assert.Contains(ex.ErrorId, new[] { ErrorIds.ArchiveCorrupt, ErrorIds.ArchiveHashMismatch, ErrorIds.ArchiveSizeMismatch, ErrorIds.ArchiveManifestInvalid });
        AssertNothingLanded(_other);
    }

    [Fact]
    public void ATruncatedZipIsRejected()
    {
        var source = ValidArchive();
        byte[] bytes = File.ReadAllBytes(source);
        string hostile = _dir.Combine("truncated.zip");
        File.WriteAllBytes(hostile, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        AssertImportFails(hostile, ErrorIds.ArchiveCorrupt);
    }

    [Fact]
    public void AManifestWithAWrongSizeIsRejected() =>
        AssertRejected(ErrorIds.ArchiveSizeMismatch, entries => EditManifest(entries, m => FileRecord(m, RunFormat.ScriptFile)["size"] = 3));

    [Fact]
    public void AManifestWithAWrongHashIsRejected() =>
        AssertRejected(ErrorIds.ArchiveHashMismatch, entries => EditManifest(entries, m => FileRecord(m, RunFormat.ScriptFile)["sha256"] = new string('0', 64)));

    [Fact]
    public void AManifestListingAFileNotInTheArchiveIsRejected() =>
        AssertRejected(ErrorIds.ArchiveMissingEntry, entries => EditManifest(entries, m => m["files"]!.AsArray().Add(new JsonObject
        {
            ["path"] = "artifacts/ghost.bin",
            ["size"] = 4,
            ["sha256"] = new string('a', 64),
        })));

    [Fact]
    public void AnEntryTheManifestDoesNotListIsRejected() =>
        AssertRejected(ErrorIds.ArchiveUnexpectedEntry, entries => entries.Add(("artifacts/extra.bin", Runs.Bytes("unlisted"))));

    [Fact]
    public void ADuplicateEntryIsRejected() =>
        AssertRejected(ErrorIds.ArchiveDuplicateEntry, entries => entries.Add((RunFormat.ScriptFile, Runs.Bytes("# other script"))));

    [Fact]
    public void EntriesThatDifferOnlyInCaseAreRejected() =>
        AssertRejected(ErrorIds.ArchiveDuplicateEntry, entries => entries.Add(("Script.PS1", Runs.Bytes("# other script"))));

    [Fact]
    public void AMissingManifestIsRejected() =>
        AssertRejected(ErrorIds.ArchiveManifestMissing, entries => entries.RemoveAll(e => e.Name == RunArchive.ManifestName));

    [Fact]
    public void AManifestThatIsNotJsonIsRejected() =>
        AssertRejected(ErrorIds.ArchiveManifestInvalid, entries =>
        {
            int i = entries.FindIndex(e => e.Name == RunArchive.ManifestName);
            entries[i] = (RunArchive.ManifestName, Runs.Bytes("{ not json"));
        });

    [Theory]
    [InlineData("run")]
    [InlineData("files")]
    public void AManifestWithoutRunOrFilesIsRejectedAsInvalid(string member) =>
        AssertRejected(ErrorIds.ArchiveManifestInvalid, entries => EditManifest(entries, m => m.AsObject().Remove(member)));

    [Theory]
    [InlineData("directories", ".lock")]
    [InlineData("files", ".lock")]
    [InlineData("directories", ".LOCK/inside")]
    [InlineData("files", "artifacts/.x.tmp-1234")]
    public void AManifestListingTheLockOrATempFileIsRejected(string list, string path) =>
        AssertRejected(ErrorIds.ArchiveUnsafePath, entries => EditManifest(entries, m =>
        {
            if (list == "files")
            {
                m["files"]![0]!["path"] = path;
            }
            else
            {
                m["directories"]!.AsArray().Add(path);
            }
        }));

    [Theory]
    [InlineData("../evil")]
    [InlineData("bad id")]
    [InlineData("CON")]
    public void ARunIdThatBreaksTheRuleIsRejected(string id) =>
        AssertRejected(ErrorIds.ArchiveInvalidRunId, entries => EditManifest(entries, m => m["run"]!["run_id"] = id));

    [Fact]
    public void ARunJsonOfAnotherRunIsRejected() =>
        AssertRejected(ErrorIds.ArchiveRunIdMismatch, entries => EditManifest(entries, m => m["run"]!["run_id"] = "someone-else"));

    [Fact]
    public void AnExistingRunIsKeptUnlessForceReplacesIt()
    {
        string archive = ValidArchive();
        var first = RunArchive.Import(archive, _other);
        string marker = Path.Combine(first.Path, "local-note.txt");
        File.WriteAllText(marker, "only in the existing run");

        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, _other));
        Assert.Equal(ErrorIds.RunExists, ex.ErrorId);
        Assert.Contains("-Force", ex.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(marker));
        Assert.Equal(new[] { "r1" }, Directory.GetFileSystemEntries(_other.Path).Select(Path.GetFileName));

        var replaced = RunArchive.Import(archive, _other, new ArchiveImportOptions { Force = true });
        Assert.False(File.Exists(marker));
        AssertSameFiles(Path.Combine(_root.Path, "r1"), replaced.Path);
        Assert.Equal(new[] { "r1" }, Directory.GetFileSystemEntries(_other.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ForceNeverReplacesAFolderThatIsNotARun()
    {
        string archive = ValidArchive();
        string folder = Path.Combine(_other.Path, "r1");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "notes.txt"), "not a run");
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, _other, new ArchiveImportOptions { Force = true }));
        Assert.Equal(ErrorIds.RunExists, ex.ErrorId);
        Assert.Equal("not a run", File.ReadAllText(Path.Combine(folder, "notes.txt")));
        Assert.Equal(new[] { "r1" }, Directory.GetFileSystemEntries(_other.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void ForceNeverReplacesARunningRun()
    {
        // A run that can still be resumed (a Created one, exported with Force), imported and then driven.
        string archive = RunArchive.Export(Runs.Create(_root, "r1"), new ArchiveExportOptions { DestinationPath = _dir.Combine("out"), Force = true }).Path;
        var existing = RunArchive.Import(archive, _other);
        using var holder = new Driver("hold", existing.Path, "60000");
        Assert.True(holder.WaitFor("OWNER", TimeSpan.FromSeconds(30)), holder.Describe());
        var ex = Assert.Throws<RunLockedException>(() => RunArchive.Import(archive, _other, new ArchiveImportOptions { Force = true }));
        Assert.Equal(ErrorIds.RunLocked, ex.ErrorId);
        Assert.Equal(new[] { "r1" }, Directory.GetFileSystemEntries(_other.Path).Select(Path.GetFileName));
        Assert.Equal(RunStatus.Running, existing.ReadState().Status);
    }

    [Fact]
    public void AMissingArchiveFileIsReported()
    {
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(_dir.Combine("nope.zip"), _other));
        Assert.Equal(ErrorIds.ArchiveNotFound, ex.ErrorId);
    }

    // ------------------------------------------------------------ crashes

    [Fact]
    public void AKillMidExportLeavesNoArchiveUnderItsNameAndARetrySucceeds()
    {
        var run = CompletedRun("r1", artifacts: 20);
        string folder = _dir.Combine("out");
        using (var child = new Driver("export", run.Path, folder))
        {
            Assert.True(child.WaitFor("EXPORTING", TimeSpan.FromSeconds(60)), child.Describe());
            Assert.NotEmpty(Directory.GetFiles(folder, ".r1.zip.tmp-*"));
            child.Kill();
        }

        Assert.False(File.Exists(Path.Combine(folder, "r1.zip")));
        Assert.False(run.IsOwned);
        var result = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = folder });
        AssertSameFiles(run.Path, RunArchive.Import(result.Path, _other).Path);
    }

    [Fact]
    public void AKillMidImportLeavesNoRunAndARetrySucceeds()
    {
        var run = CompletedRun("r1", artifacts: 20);
        string archive = RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("out") }).Path;
        using (var child = new Driver("import", archive, _other.Path))
        {
            Assert.True(child.WaitFor("IMPORTING", TimeSpan.FromSeconds(60)), child.Describe());
            child.Kill();
        }

        Assert.False(Directory.Exists(Path.Combine(_other.Path, "r1")));
        Assert.Empty(_other.ListRuns());
        var staged = Assert.Single(Directory.GetDirectories(_other.Path));
        Assert.StartsWith(RunFormat.StagingPrefix, Path.GetFileName(staged), StringComparison.Ordinal);

        AssertSameFiles(run.Path, RunArchive.Import(archive, _other).Path);
    }

    // ------------------------------------------------------------ helpers

    private RunDirectory CompletedRun(string id, int artifacts = 1, string? reference = null)
    {
        var run = Runs.Create(_root, id, new Dictionary<string, object?> { ["model"] = "v1" });
        string source = _dir.Combine("artifact-source-" + id);
        Directory.CreateDirectory(source);
        using (var attempt = run.BeginAttempt())
        {
            Assert.Equal(StepAction.Run, attempt.BeginStep("prepare"));
            attempt.CompleteStep("prepare", Runs.Bytes("prepared"), "txt");
            Assert.Equal(StepAction.Run, attempt.BeginStep("work"));
            for (int i = 0; i < 5; i++)
            {
                attempt.BeginItem("work", "k" + i);
                attempt.CompleteItem("work", "k" + i, Runs.Bytes("out" + i));
            }

            attempt.CompleteStep("work", null);
            Assert.Equal(StepAction.Run, attempt.BeginStep("report"));
            for (int i = 0; i < artifacts; i++)
            {
                string file = Path.Combine(source, $"a{i:D4}.txt");
                File.WriteAllText(file, $"artifact {i} " + new string('x', i % 97));
                attempt.AddArtifact(file, $"frames/a{i:D4}.txt");
            }

            if (reference is not null)
            {
                attempt.AddArtifact(reference, "outside.txt", ArtifactMode.Reference);
            }

            attempt.CompleteStep("report", null);
            attempt.Complete();
        }

        return run;
    }

    private string ValidArchive()
    {
        var run = Directory.Exists(Path.Combine(_root.Path, "r1")) ? _root.OpenRun("r1") : CompletedRun("r1", artifacts: 2);
        return RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = _dir.Combine("valid"), Force = true }).Path;
    }

    /// <summary>Builds a hostile variant of a valid archive and asserts that importing it fails with the id and leaves nothing.</summary>
    private void AssertRejected(string errorId, Action<List<(string Name, byte[] Bytes)>> edit)
    {
        var entries = ReadEntries(ValidArchive());
        edit(entries);
        string hostile = _dir.Combine("hostile-" + Guid.NewGuid().ToString("N").Substring(0, 6) + ".zip");
        using (var zip = ZipFile.Open(hostile, ZipArchiveMode.Create))
        {
            foreach (var (name, bytes) in entries)
            {
                WriteEntry(zip, name, bytes);
            }
        }

        AssertImportFails(hostile, errorId);
    }

    private void AssertImportFails(string archive, string errorId)
    {
        var ex = Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, _other));
        Assert.Equal(errorId, ex.ErrorId);
        Assert.Contains(archive, ex.Message, StringComparison.Ordinal);
        AssertNothingLanded(_other);

        // Force changes nothing about verification.
        Assert.Equal(errorId, Assert.Throws<RunToolsException>(() => RunArchive.Import(archive, _other, new ArchiveImportOptions { Force = true })).ErrorId);
        AssertNothingLanded(_other);
        Assert.False(File.Exists(_dir.Combine("x")));
    }

    private static void AssertNothingLanded(RunsRoot root)
    {
        if (Directory.Exists(root.Path))
        {
            Assert.Empty(Directory.GetFileSystemEntries(root.Path));
        }
    }

    private static List<(string Name, byte[] Bytes)> ReadEntries(string archive)
    {
        using var zip = ZipFile.OpenRead(archive);
        return zip.Entries.Select(e =>
        {
            using var stream = e.Open();
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            return (e.FullName, memory.ToArray());
        }).ToList();
    }

    private static void WriteEntry(ZipArchive zip, string name, byte[] bytes)
    {
        using var stream = zip.CreateEntry(name).Open();
        stream.Write(bytes);
    }

    private static string ReadEntry(ZipArchiveEntry entry)
    {
        using var reader = new StreamReader(entry.Open());
        return reader.ReadToEnd();
    }

    private static void EditManifest(List<(string Name, byte[] Bytes)> entries, Action<JsonNode> edit)
    {
        int i = entries.FindIndex(e => e.Name == RunArchive.ManifestName);
        var manifest = JsonNode.Parse(entries[i].Bytes)!;
        edit(manifest);
        entries[i] = (RunArchive.ManifestName, Encoding.UTF8.GetBytes(manifest.ToJsonString()));
    }

    private static JsonNode FileRecord(JsonNode manifest, string path) =>
        manifest["files"]!.AsArray().First(f => (string)f!["path"]! == path)!;

    private static string StateJson(RunDirectory run) => JsonSerializer.Serialize(run.ReadState(), RunFormat.JsonOptions);

    private static void AssertSameFiles(string expectedRun, string actualRun)
    {
        var expected = RelativeFiles(expectedRun);
        var actual = RelativeFiles(actualRun);
        Assert.Contains(RunFormat.JournalFile, expected); // a comparison of two empty folders proves nothing
        Assert.Equal(expected, actual);
        foreach (string file in expected)
        {
            Assert.True(
                File.ReadAllBytes(Path.Combine(expectedRun, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(actualRun, file))),
                $"{file} differs");
        }
    }

    private static List<string> RelativeFiles(string run) =>
        Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(run, f).Replace('\\', '/'))
            .Where(f => f != RunFormat.LockFile && !f.Contains(".tmp-", StringComparison.Ordinal))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToList();
}
