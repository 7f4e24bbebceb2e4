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

    [Fact]
    public void ALineWithAValidChecksumButMistypedMembersIsReportedNotThrown()
    {
        string path = WriteLines(1);
        string body = "{\"seq\":\"two\",\"ts\":\"2026-01-01T00:00:00Z\",\"type\":\"warning\"}";
        uint crc = Crc32.Compute(Encoding.UTF8.GetBytes(body));
        File.AppendAllText(path, body.Substring(0, body.Length - 1) + ",\"crc\":\"" + crc.ToString("x8") + "\"}\n");
        var scan = JournalScanner.Scan(path, 0, 0, null);
        Assert.Equal(1, scan.ValidLines);
        Assert.Equal(scan.FileLength - scan.ValidLength, scan.TornTailLength);
    }
}
