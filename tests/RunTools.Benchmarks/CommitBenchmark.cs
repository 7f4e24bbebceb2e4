using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Benchmarks;

/// <summary>
/// Benchmark 1: the durable commit of one unit (BeginItem + CompleteItem: two journal lines and
/// one flush, the completion riding on the next intent's) against a raw loop writing lines of
/// the same length with one fsync per unit.
/// </summary>
internal static class CommitBenchmark
{
    private const string Step = "work";

    public static void Run(Report report, string work, int units, int rounds)
    {
        const string section = "durable commit";
        var root = new RunsRoot(Path.Combine(work, "commit"));
        string[] keys = Enumerable.Range(0, units).Select(Key).ToArray();

        // Warm-up (not counted): JIT, and the byte lengths of the two journal lines a unit writes.
        string warmId = "commit-warmup";
        RunAttemptRound(root, warmId, keys.Take(Math.Min(200, units)).ToArray());
        var (startedLength, completedLength) = ItemLineLengths(Path.Combine(root.Path, warmId, RunFormat.JournalFile));
        RawRound(Path.Combine(work, "commit", "raw-warmup.jsonl"), Math.Min(200, units), startedLength, completedLength);
        WriterRound(Path.Combine(work, "commit", "writer-warmup.jsonl"), keys.Take(Math.Min(200, units)).ToArray());
        report.AddDetail(section, $"journal line lengths per unit: item_started {startedLength} B, item_completed {completedLength} B (the baseline writes lines of these lengths)");

        // Each round interleaves the three sides in blocks of units (A B C A B C ...), so a change
        // in the disk's fsync latency during the round hits all of them alike.
        var engine = new List<double>();
        var raw = new List<double>();
        var writer = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            Measure.Settle();
            var (e, w, x) = InterleavedRound(root, work, r, keys, startedLength, completedLength, blocks: 8);
            engine.Add(e / units);
            raw.Add(w / units);
            writer.Add(x / units);
        }

        double a = Measure.Median(engine);
        double b = Measure.Median(raw);
        double c = Measure.Median(writer);
        report.AddDetail(section, $"{units} units × {rounds} rounds, a fresh run per round, interleaved in 8 blocks per round; per-unit time per round:");
        report.AddDetail(section, $"RunAttempt BeginItem+CompleteItem: {Measure.List(engine, Measure.Micros)} (median {Measure.Micros(a)})");
        report.AddDetail(section, $"raw FileStream append ×2 + Flush(true) ×1: {Measure.List(raw, Measure.Micros)} (median {Measure.Micros(b)})");
        report.AddDetail(section, $"JournalWriter.Append(durable) ×2 alone: {Measure.List(writer, Measure.Micros)} (median {Measure.Micros(c)}, {Measure.Ratio(c / b)} of raw)");

        var pairRatios = engine.Zip(raw, (x, y) => x / y).ToList();
        report.AddDetail(section, $"RunAttempt / raw per round: {Measure.List(pairRatios, Measure.Ratio)} (median {Measure.Ratio(Measure.Median(pairRatios))})");
        CpuBreakdown(report, section, work, keys, startedLength, completedLength);

        report.AddRow(new ResultRow(
            $"1. Durable commit of one unit (BeginItem + CompleteItem, 1 fsync), {Measure.Number(units)} units × {rounds} rounds",
            Measure.Micros(a) + " / unit",
            Measure.Micros(b) + " / unit (raw append ×2 + fsync ×1)",
            a / b,
            "≤ 1.10×",
            a / b <= 1.10));
    }

    internal static string Key(int i) => "item-" + i.ToString("D7", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// One round: a fresh run (one attempt, one step), a fresh raw file and a fresh bare journal;
    /// the keys are split into blocks and each block is committed by all three sides in turn.
    /// Returns the seconds each side spent on its units.
    /// </summary>
    private static (double Engine, double Raw, double Writer) InterleavedRound(RunsRoot root, string work, int round, string[] keys, int startedLength, int completedLength, int blocks)
    {
        byte[] started = Line(startedLength);
        byte[] completed = Line(completedLength);
        var run = root.CreateRun(new RunCreateOptions { Name = "commit", RunId = $"commit-{round}", Config = EffectiveConfig.Empty, Script = Encoding.UTF8.GetBytes("# bench\n") });
        using var attempt = run.BeginAttempt(new AttemptOptions());
        if (attempt.BeginStep(Step) != StepAction.Run)
        {
            throw new InvalidOperationException("step did not run");
        }

        using var stream = new FileStream(Path.Combine(work, "commit", $"raw-{round}.jsonl"), FileMode.Append, FileAccess.Write, FileShare.Read);
        using var journal = new JournalWriter(Path.Combine(work, "commit", $"writer-{round}.jsonl"), 0, 0);
        double engineSeconds = 0;
        double rawSeconds = 0;
        double writerSeconds = 0;
        int size = (keys.Length + blocks - 1) / blocks;
        for (int from = 0; from < keys.Length; from += size)
        {
            int to = Math.Min(keys.Length, from + size);
            long t0 = Stopwatch.GetTimestamp();
            for (int i = from; i < to; i++)
            {
                if (attempt.BeginItem(Step, keys[i]) != ItemAction.Run)
                {
                    throw new InvalidOperationException($"item {keys[i]} did not run");
                }

                attempt.CompleteItem(Step, keys[i], null);
            }

            long t1 = Stopwatch.GetTimestamp();
            for (int i = from; i < to; i++)
            {
                stream.Write(started, 0, started.Length);
                stream.Flush(flushToDisk: true);
                stream.Write(completed, 0, completed.Length);
                stream.Flush(flushToDisk: true);
            }

            long t2 = Stopwatch.GetTimestamp();
            for (int i = from; i < to; i++)
            {
                AppendStarted(journal, keys[i], durable: true);
                AppendCompleted(journal, keys[i], durable: true);
            }

            long t3 = Stopwatch.GetTimestamp();
            engineSeconds += Stopwatch.GetElapsedTime(t0, t1).TotalSeconds;
            rawSeconds += Stopwatch.GetElapsedTime(t1, t2).TotalSeconds;
            writerSeconds += Stopwatch.GetElapsedTime(t2, t3).TotalSeconds;
        }

        attempt.CompleteStep(Step, null);
        attempt.Complete();
        return (engineSeconds, rawSeconds, writerSeconds);
    }

    /// <summary>A fresh run, one attempt, one step; times only the units. Returns seconds.</summary>
    private static double RunAttemptRound(RunsRoot root, string id, string[] keys)
    {
        var run = root.CreateRun(new RunCreateOptions { Name = "commit", RunId = id, Config = EffectiveConfig.Empty, Script = Encoding.UTF8.GetBytes("# bench\n") });
        using var attempt = run.BeginAttempt(new AttemptOptions());
        if (attempt.BeginStep(Step) != StepAction.Run)
        {
            throw new InvalidOperationException("step did not run");
        }

        var sw = Stopwatch.StartNew();
        foreach (string key in keys)
        {
            if (attempt.BeginItem(Step, key) != ItemAction.Run)
            {
                throw new InvalidOperationException($"item {key} did not run");
            }

            attempt.CompleteItem(Step, key, null);
        }

        sw.Stop();
        attempt.CompleteStep(Step, null);
        attempt.Complete();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>The baseline: a FileStream opened for append, two lines per unit, one flush to disk per unit.</summary>
    private static double RawRound(string path, int units, int startedLength, int completedLength)
    {
        byte[] started = Line(startedLength);
        byte[] completed = Line(completedLength);
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read);
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < units; i++)
        {
            stream.Write(started, 0, started.Length);
            stream.Flush(flushToDisk: true);
            stream.Write(completed, 0, completed.Length);
        }

        stream.Flush(flushToDisk: true);
        sw.Stop();
        return sw.Elapsed.TotalSeconds;
    }

    /// <summary>Diagnostic: the journal writer alone (same payloads, durable), without the engine around it.</summary>
    private static double WriterRound(string path, string[] keys)
    {
        using var journal = new JournalWriter(path, 0, 0);
        var sw = Stopwatch.StartNew();
        foreach (string key in keys)
        {
            AppendStarted(journal, key, durable: true);
            AppendCompleted(journal, key, durable: true);
        }

        sw.Stop();
        return sw.Elapsed.TotalSeconds;
    }

    private static void AppendStarted(JournalWriter journal, string key, bool durable) =>
        journal.Append(JournalEventTypes.ItemStarted, DateTimeOffset.UtcNow, w =>
        {
            w.WriteString("step", Step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", 1);
        }, durable);

    private static void AppendCompleted(JournalWriter journal, string key, bool durable) =>
        journal.Append(JournalEventTypes.ItemCompleted, DateTimeOffset.UtcNow, w =>
        {
            w.WriteString("step", Step);
            w.WriteString("key", key);
            w.WriteNumber("attempt", 1);
            w.WriteNumber("duration_ms", 0);
        }, durable);

    /// <summary>
    /// Where the non-fsync time of a unit goes: each piece of what RunAttempt does per unit,
    /// timed without flushing to disk (median of 5 passes over all keys).
    /// </summary>
    private static void CpuBreakdown(Report report, string section, string work, string[] keys, int startedLength, int completedLength)
    {
        string dir = Path.Combine(work, "commit", "cpu");
        Directory.CreateDirectory(dir);
        byte[] started = Line(startedLength);
        byte[] completed = Line(completedLength);
        var rawWrite = new List<double>();
        var writerAppend = new List<double>();
        var parseFold = new List<double>();
        var stopCheck = new List<double>();
        var lines = new List<byte[]>();
        using (var journal = new JournalWriter(Path.Combine(dir, "lines.jsonl"), 0, 0))
        {
            AppendStarted(journal, keys[0], durable: false);
            lines.Add(journal.LastLine.ToArray());
            AppendCompleted(journal, keys[0], durable: false);
            lines.Add(journal.LastLine.ToArray());
        }

        string stopPath = Path.Combine(dir, RunFormat.StopFile);
        for (int pass = 0; pass < 6; pass++)
        {
            string rawPath = Path.Combine(dir, $"raw-{pass}.jsonl");
            using (var stream = new FileStream(rawPath, FileMode.Append, FileAccess.Write, FileShare.Read, 1))
            {
                double s = Measure.Seconds(() =>
                {
                    foreach (string unused in keys)
                    {
                        stream.Write(started, 0, started.Length);
                        stream.Write(completed, 0, completed.Length);
                    }
                });
                if (pass > 0)
                {
                    rawWrite.Add(s / keys.Length);
                }
            }

            using (var journal = new JournalWriter(Path.Combine(dir, $"writer-{pass}.jsonl"), 0, 0))
            {
                double s = Measure.Seconds(() =>
                {
                    foreach (string key in keys)
                    {
                        AppendStarted(journal, key, durable: false);
                        AppendCompleted(journal, key, durable: false);
                    }
                });
                if (pass > 0)
                {
                    writerAppend.Add(s / keys.Length);
                }
            }

            // What RunAttempt.Append does after each write: re-parse the line it just wrote
            // (checksum + JSON) and fold it into the state and the item ledger.
            var parser = new JournalLineParser();
            var reducer = new StateReducer(new RunState { RunId = "cpu" });
            double fold = Measure.Seconds(() =>
            {
                foreach (string unused in keys)
                {
                    foreach (byte[] line in lines)
                    {
                        if (parser.TryParse(line, true, out var parsed, out _))
                        {
                            reducer.Visit(in parsed, 0, line);
                        }
                    }
                }
            });
            double stop = Measure.Seconds(() =>
            {
                foreach (string unused in keys)
                {
                    _ = File.Exists(stopPath);
                }
            });
            if (pass > 0)
            {
                parseFold.Add(fold / keys.Length);
                stopCheck.Add(stop / keys.Length);
            }

            File.Delete(rawPath);
        }

        report.AddDetail(section, "CPU breakdown per unit, no fsync (median of 5 passes):");
        report.AddDetail(section, $"raw write() of the two lines: {Measure.Micros(Measure.Median(rawWrite))}");
        report.AddDetail(section, $"JournalWriter.Append ×2 (serialize + CRC + write()): {Measure.Micros(Measure.Median(writerAppend))}");
        report.AddDetail(section, $"re-parse + fold of the two lines (JournalLineParser + StateReducer): {Measure.Micros(Measure.Median(parseFold))}");
        report.AddDetail(section, $"stop-file check (File.Exists, once per BeginItem): {Measure.Micros(Measure.Median(stopCheck))}");
    }

    private static byte[] Line(int length)
    {
        var line = new byte[length];
        line.AsSpan().Fill((byte)'x');
        line[length - 1] = (byte)'\n';
        return line;
    }

    private static (int Started, int Completed) ItemLineLengths(string journalPath)
    {
        int started = 0;
        int completed = 0;
        foreach (string line in File.ReadLines(journalPath))
        {
            int length = Encoding.UTF8.GetByteCount(line) + 1;
            if (started == 0 && line.Contains("\"type\":\"item_started\"", StringComparison.Ordinal))
            {
                started = length;
            }
            else if (completed == 0 && line.Contains("\"type\":\"item_completed\"", StringComparison.Ordinal))
            {
                completed = length;
            }
        }

        if (started == 0 || completed == 0)
        {
            throw new InvalidOperationException("the warm-up journal has no item lines");
        }

        return (started, completed);
    }
}
