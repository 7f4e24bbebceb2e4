using System;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// How run.json is read on the listing's hot path: shared strings for repeated values, timestamps
/// without a string, and whole-file reads through the native shim. Each must read exactly what the
/// general path reads.
/// </summary>
public sealed class SnapshotReadingTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Snapshot(string runId, string name, string configHash, string scriptHash, string createdAt = "2026-11-28T20:17:27.950526Z")
    {
        var state = new RunState { RunId = runId, Name = name, CreatedAt = DateTimeOffset.UnixEpoch, UpdatedAt = DateTimeOffset.UnixEpoch };
        state.Config.Hash = configHash;
        state.Script.Hash = scriptHash;
        string json = JsonSerializer.Serialize(state, RunFormat.JsonOptions);
        return json.Replace("\"created_at\": \"1970-01-01T00:00:00.000000Z\"", $"\"created_at\": \"{createdAt}\"", StringComparison.Ordinal);
    }

    private static RunState Read(string json) => JsonSerializer.Deserialize<RunState>(json, RunFormat.JsonOptions)!;

    [Fact]
    public void RunsOfOneJobShareTheirNameAndHashStringsAndReadThemExactly()
    {
        string config = new string('a', 64);
        string script = new string('b', 64);
        var first = Read(Snapshot("r-1", "nightly", config, script));
        var second = Read(Snapshot("r-2", "nightly", config, script));

        Assert.Equal("nightly", second.Name);
        Assert.Equal(config, second.Config.Hash);
        Assert.Equal(script, second.Script.Hash);
        Assert.Same(first.Name, second.Name);
        Assert.Same(first.Config.Hash, second.Config.Hash);
        Assert.Same(first.Script.Hash, second.Script.Hash);
        Assert.NotSame(first.RunId, second.RunId);
    }

    [Fact]
    public void ManyDifferentValuesEachReadAsWritten()
    {
        // More distinct values than the converter keeps, interleaved and repeated: each reads as its own.
        var names = Enumerable.Range(0, 20).Select(i => "job-" + i).ToArray();
        for (int round = 0; round < 3; round++)
        {
            foreach (string name in names.Concat(names.Reverse()))
            {
                string hash = name.PadRight(64, 'f');
                var state = Read(Snapshot("r-x", name, hash, hash.ToUpperInvariant()));
                Assert.Equal(name, state.Name);
                Assert.Equal(hash, state.Config.Hash);
                Assert.Equal(hash.ToUpperInvariant(), state.Script.Hash);
            }
        }

        // A value that is a prefix of a kept one is not taken for it.
        Assert.Equal("job-1", Read(Snapshot("r-y", "job-1", "h", "h")).Name);
        Assert.Equal("job-10", Read(Snapshot("r-y", "job-10", "h", "h")).Name);
        Assert.Equal("job-1", Read(Snapshot("r-y", "job-1", "h", "h")).Name);
    }

    [Fact]
    public void EscapedAndNonAsciiNamesReadAsTheirText()
    {
        string json = Snapshot("r-1", "PLACEHOLDER", "h", "h");
        Assert.Equal("cafe", Read(json.Replace("PLACEHOLDER", "\\u0063afe", StringComparison.Ordinal)).Name);
        Assert.Equal("café ✓", Read(json.Replace("PLACEHOLDER", "café ✓", StringComparison.Ordinal)).Name);
        Assert.Equal("a\"b", Read(json.Replace("PLACEHOLDER", "a\\\"b", StringComparison.Ordinal)).Name);
        Assert.Throws<JsonException>(() => Read(json.Replace("\"PLACEHOLDER\"", "42", StringComparison.Ordinal)));
    }

    [Fact]
    public void ASnapshotWritesTheSameBytesAfterItWasRead()
    {
        string json = Snapshot("r-1", "nightly", new string('c', 64), new string('d', 64));
        Assert.Equal(json, JsonSerializer.Serialize(Read(json), RunFormat.JsonOptions));
    }

    [Theory]
    [InlineData("2026-11-28T20:17:27.950526Z")]
    [InlineData("2026-11-28T20:17:27Z")]
    [InlineData("2026-11-28T22:17:27.950526+02:00")]
    [InlineData("2026-11-28T20:17:27.950526")]
    [InlineData("2026-11-28T20:17:27.9505261Z")]
    [InlineData("not a time")]
    [InlineData("Z")]
    public void TimestampsReadAsTheGeneralParserReadsThem(string text)
    {
        var state = Read(Snapshot("r-1", "n", "h", "h", text));
        var expected = JournalEvent.ParseTimestamp(text);
        Assert.Equal(expected, state.CreatedAt);
        Assert.Equal(expected.Offset, state.CreatedAt.Offset);
        Assert.Equal(TimeSpan.Zero, state.CreatedAt.Offset);
    }

    [Fact]
    public void TheNativeReadGivesAFilesBytesAndLeavesMissingFilesToTheStream()
    {
        if (OperatingSystem.IsWindows())
        {
            Assert.Skip("The native shim is the Unix path; Windows reads through a FileStream.");
        }

        var content = new byte[200_000];
        new Random(7).NextBytes(content);
        string file = _dir.Combine("data.bin");
        File.WriteAllBytes(file, content);
        Assert.True(NativeFileType.TryReadWhole(file, n => new byte[n], out var bytes));
        Assert.Equal(content, bytes.ToArray());

        string empty = _dir.Combine("empty.json");
        File.WriteAllBytes(empty, Array.Empty<byte>());
        Assert.True(NativeFileType.TryReadWhole(empty, n => new byte[n], out var none));
        Assert.Equal(0, none.Count);

        string link = _dir.Combine("link.bin");
        File.CreateSymbolicLink(link, file);
        Assert.True(NativeFileType.TryReadWhole(link, n => new byte[n], out var viaLink));
        Assert.Equal(content.Length, viaLink.Count);

        // Missing: not read here, so that DurableFile's FileStream reports it as .NET does.
        string missing = _dir.Combine("missing.json");
        Assert.False(NativeFileType.TryReadWhole(missing, n => new byte[n], out _));
        Assert.Throws<FileNotFoundException>(() => DurableFile.ReadShared(missing));

        string folder = _dir.Combine("folder.json");
        Directory.CreateDirectory(folder);
        Assert.Throws<NotRegularFileException>(() => NativeFileType.TryReadWhole(folder, n => new byte[n], out _));
    }

    [Fact]
    public void AListingOfRunsOfTwoJobsReadsEveryRunAsItsOwn()
    {
        var root = new RunsRoot(_dir.Combine("runs"));
        for (int i = 0; i < 40; i++)
        {
            root.CreateRun(new RunCreateOptions
            {
                Name = i % 2 == 0 ? "even" : "odd",
                RunId = $"job-{i:D2}",
                Config = RunTools.Core.Configuration.EffectiveConfig.Empty,
                Script = Encoding.UTF8.GetBytes(i % 2 == 0 ? "# even" : "# odd"),
            });
        }

        var listed = root.ListRuns();
        Assert.Equal(40, listed.Count);
        for (int i = 0; i < 40; i++)
        {
            var state = listed[i].State!;
            var alone = root.OpenRun($"job-{i:D2}").ReadState();
            Assert.Equal($"job-{i:D2}", state.RunId);
            Assert.Equal(i % 2 == 0 ? "even" : "odd", state.Name);
            Assert.Equal(alone.Script.Hash, state.Script.Hash);
            Assert.Equal(alone.Config.Hash, state.Config.Hash);
            Assert.Equal(alone.CreatedAt, state.CreatedAt);
            Assert.Equal(alone.Status, state.Status);
        }

        Assert.NotEqual(listed[0].State!.Script.Hash, listed[1].State!.Script.Hash);
    }
}
