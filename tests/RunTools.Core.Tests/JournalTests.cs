using System;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using Xunit;

namespace RunTools.Core.Tests;

public sealed class JournalTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        // The CRC-32/ISO-HDLC check value, as zlib.crc32(b"123456789") returns it.
        Assert.Equal(0xCBF43926u, Crc32.Compute(Encoding.ASCII.GetBytes("123456789")));
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(Crc32.Compute(data), Crc32.Append(Crc32.Compute(data.AsSpan(0, 333)), data.AsSpan(333)));
    }

    [Fact]
    public void AppendedEventsReadBackInOrderWithTheirMembers()
    {
        string path = _dir.Combine("journal.jsonl");
        using (var writer = new JournalWriter(path, 0, 0))
        {
            writer.Append("item_started", DateTimeOffset.UtcNow, w => { w.WriteString("step", "s"); w.WriteString("key", "ключ \"quoted\" ✓"); w.WriteNumber("attempt", 3); });
            writer.Append("warning", DateTimeOffset.UtcNow, w => w.WriteString("message", "hello"));
        }

        var events = JournalScanner.ReadEvents(path).ToList();
        Assert.Equal(new long[] { 1, 2 }, events.Select(e => e.Sequence));
        Assert.Equal("ключ \"quoted\" ✓", events[0].Key);
        Assert.Equal(3, events[0].Attempt);
        Assert.Equal("hello", events[1].Data["message"]!.GetValue<string>());
        Assert.False(events[1].Data.ContainsKey("crc"));
        Assert.EndsWith("\"}", events[1].RawLine, StringComparison.Ordinal);
    }

    [Fact]
    public void AFlippedByteMakesTheLineCorruptAndReadersSkipIt()
    {
        string path = WriteLines(3);
        byte[] bytes = File.ReadAllBytes(path);
        int secondLine = Array.IndexOf(bytes, (byte)'\n') + 1;
        int target = Array.IndexOf(bytes, (byte)'w', secondLine); // inside "warning"
        bytes[target] = (byte)'W';
        File.WriteAllBytes(path, bytes);

        var scan = JournalScanner.Scan(path, 0, 0, null);
        Assert.Equal(2, scan.ValidLines);
        var defect = Assert.Single(scan.CorruptLines);
        Assert.Equal(secondLine, defect.Offset);
        Assert.Contains("checksum mismatch", defect.Reason, StringComparison.Ordinal);
        Assert.Single(scan.SequenceGaps);
        Assert.Equal(new long[] { 1, 3 }, JournalScanner.ReadEvents(path).Select(e => e.Sequence));
    }

    [Theory]
    [InlineData("{\"seq\":4,\"ts\":\"2026-")]
    [InlineData("\0\0\0\0\0\0\0\0")]
    [InlineData("{\"seq\":4,\"ts\":\"x\",\"type\":\"warning\",\"crc\":\"00000000\"}\n")]
    public void ATornTailIsIgnoredByReaders(string tail)
    {
        string path = WriteLines(3);
        long valid = new FileInfo(path).Length;
        File.AppendAllText(path, tail);

        var scan = JournalScanner.Scan(path, 0, 0, null);
        Assert.Equal(3, scan.ValidLines);
        Assert.Equal(valid, scan.ValidLength);
        Assert.Equal(Encoding.UTF8.GetByteCount(tail), scan.TornTailLength);
        Assert.Empty(scan.CorruptLines);
    }

    [Fact]
    public void TheNextOwnerCutsOffATornTailKeepsItAndJournalsTheRepair()
    {
        var root = new RunsRoot(_dir.Path);
        var run = Runs.Create(root);
        File.AppendAllText(run.JournalPath, "{\"seq\":3,\"ts\":\"2026-11-21T00:00:00Z\",\"type\":\"item_sta");
        var observer = new RecordingObserver();
        using (var attempt = run.BeginAttempt(new AttemptOptions { Observer = observer }))
        {
            attempt.Complete();
        }

        var scan = run.ScanJournal();
        Assert.Equal(0, scan.TornTailLength);
        Assert.Empty(scan.CorruptLines);
        var repaired = Assert.Single(run.ReadEvents(), e => e.Type == JournalEventTypes.JournalRepaired);
        string backup = repaired.Data["backup"]!.GetValue<string>();
        Assert.Equal("{\"seq\":3,\"ts\":\"2026-11-21T00:00:00Z\",\"type\":\"item_sta", File.ReadAllText(Path.Combine(run.Path, backup)));
        Assert.Contains(observer.Warnings, w => w.Contains("cut off", StringComparison.Ordinal));
        Assert.Equal(RunStatus.Completed, run.ReadState().Status);
    }

    [Fact]
    public void AFailedAppendLeavesNoHalfLine()
    {
        // A value the writer refuses mid-line stands in for a write that fails part-way.
        string path = _dir.Combine("journal.jsonl");
        using var writer = new JournalWriter(path, 0, 0);
        writer.Append("warning", DateTimeOffset.UtcNow, w => w.WriteString("message", "one"));
        long length = writer.Length;
        Assert.ThrowsAny<InvalidOperationException>(() => writer.Append("warning", DateTimeOffset.UtcNow, w => w.WriteEndObject()));
        writer.Append("warning", DateTimeOffset.UtcNow, w => w.WriteString("message", "two"));
        var scan = JournalScanner.Scan(path, 0, 0, null);
        Assert.Equal(2, scan.ValidLines);
        Assert.Empty(scan.SequenceGaps);
        Assert.True(new FileInfo(path).Length > length);
    }

    private string WriteLines(int count)
    {
        string path = _dir.Combine("journal.jsonl");
        using var writer = new JournalWriter(path, 0, 0);
        for (int i = 0; i < count; i++)
        {
            writer.Append("warning", DateTimeOffset.UtcNow, w => w.WriteString("message", "m" + i));
        }

        return path;
    }

    [Theory]
    [InlineData("{\"seq\":\"two\",\"ts\":\"2026-01-01T00:00:00Z\",\"type\":\"warning\"}")]
    [InlineData("{\"seq\":2,\"ts\":\"2026-01-01T00:00:00Z\",\"type\":7}")]
    public void ALineWithAValidChecksumButMistypedMembersIsReportedNotThrown(string body)
    {
        string path = WriteLines(1);
        long offset = new FileInfo(path).Length;
        string mistyped = WithChecksum(body);
        File.AppendAllText(path, mistyped);

        // As the last line it is a write that cannot be trusted: a torn tail of exactly its bytes.
        var atEnd = JournalScanner.Scan(path, 0, 0, null);
        Assert.Equal(1, atEnd.ValidLines);
        Assert.Equal(offset, atEnd.ValidLength);
        Assert.Equal(Encoding.UTF8.GetByteCount(mistyped), atEnd.TornTailLength);
        Assert.Empty(atEnd.CorruptLines);

        // Followed by a verified line it is damage inside the file: reported at its offset and skipped.
        File.AppendAllText(path, WithChecksum("{\"seq\":2,\"ts\":\"2026-01-01T00:00:01Z\",\"type\":\"warning\",\"message\":\"after\"}"));
        var scan = JournalScanner.Scan(path, 0, 0, null);
        var defect = Assert.Single(scan.CorruptLines);
        Assert.Equal(offset, defect.Offset);
        Assert.Equal(Encoding.UTF8.GetByteCount(mistyped), defect.Length);
        Assert.StartsWith("a member has the wrong type", defect.Reason, StringComparison.Ordinal);
        Assert.Equal(2, scan.ValidLines);
        Assert.Equal(2, scan.LastSequence);
        Assert.Equal(0, scan.TornTailLength);
        Assert.Empty(scan.SequenceGaps);
        var events = JournalScanner.ReadEvents(path).ToList();
        Assert.Equal(new long[] { 1, 2 }, events.Select(e => e.Sequence));
        Assert.Equal("after", events[1].Data["message"]!.GetValue<string>());
    }

    [Fact]
    public void AnOwnerWarnsAboutAMistypedLineInsideTheJournalKeepsItAndCarriesOn()
    {
        var run = Runs.Create(new RunsRoot(_dir.Path));
        long offset = new FileInfo(run.JournalPath).Length;
        string mistyped = WithChecksum("{\"seq\":\"two\",\"ts\":\"2026-01-01T00:00:00Z\",\"type\":\"warning\"}");
        File.AppendAllText(run.JournalPath, mistyped + WithChecksum("{\"seq\":2,\"ts\":\"2026-01-01T00:00:01Z\",\"type\":\"warning\",\"message\":\"after\"}"));

        var observer = new RecordingObserver();
        using (var attempt = run.BeginAttempt(new AttemptOptions { Observer = observer }))
        {
            Assert.Equal(1, attempt.Attempt);
            attempt.BeginStep("s");
            attempt.CompleteStep("s", null);
            attempt.Complete();
        }

        var warning = Assert.Single(observer.Warnings);
        Assert.Contains($"offset {offset} is damaged (a member has the wrong type", warning, StringComparison.Ordinal);
        Assert.Equal(RunStatus.Completed, run.ReadState().Status);

        // The damaged line stays where it was (evidence for Test-Run); the owner appended after the last verified line.
        Assert.Equal(mistyped, Encoding.UTF8.GetString(File.ReadAllBytes(run.JournalPath), (int)offset, Encoding.UTF8.GetByteCount(mistyped)));
        var scan = run.ScanJournal();
        Assert.Equal(offset, Assert.Single(scan.CorruptLines).Offset);
        Assert.Empty(scan.SequenceGaps);
        Assert.Equal(0, scan.TornTailLength);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5, 6 }, run.ReadEvents().Select(e => e.Sequence));
    }

    private static string WithChecksum(string body) => Journals.WithChecksum(body);
}
