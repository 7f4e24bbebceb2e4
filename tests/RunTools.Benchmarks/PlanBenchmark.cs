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
/// Benchmark 2: resume planning (<see cref="RunDirectory.Plan"/>) for a run whose journal holds
/// a million completed items, against reading the journal raw and counting its lines.
/// </summary>
internal static class PlanBenchmark
{
    private const string Step = "work";

    public static void Run(Report report, string work, int items, int rounds)
    {
        const string section = "resume planning";
        var root = new RunsRoot(Path.Combine(work, "plan"));
        var run = root.CreateRun(new RunCreateOptions { Name = "plan", RunId = "plan-run", Config = EffectiveConfig.Empty, Script = Encoding.UTF8.GetBytes("# bench\n") });
        double synth = Measure.Seconds(() => Synthesize(run, items));
        long journalBytes = new FileInfo(run.JournalPath).Length;
        report.AddDetail(section, $"synthesized {Measure.Number(items)} items (attempt_started, step_started, item_started + item_completed per item, step_completed) in {Measure.Time(synth)} with JournalWriter(durable: false)");
        report.AddDetail(section, $"journal.jsonl: {Measure.Number(journalBytes)} bytes, {(double)journalBytes / items:0.0} bytes per item");

        // Warm the page cache and the JIT.
        _ = RawCount(run.JournalPath);
        var warm = run.Plan(true);
        if (warm.CompletedItems != items || warm.InDoubt.Count != 0 || warm.IntegrityProblems.Count != 0)
        {
            throw new InvalidOperationException($"plan found {warm.CompletedItems} completed items, {warm.InDoubt.Count} in doubt, {warm.IntegrityProblems.Count} problems");
        }

        warm = null;
        var plan = new List<double>();
        var raw = new List<double>();
        var allocated = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            Measure.Settle();
            long before = GC.GetAllocatedBytesForCurrentThread();
            ResumePlan? p = null;
            plan.Add(Measure.Seconds(() => p = run.Plan(true)));
            allocated.Add(GC.GetAllocatedBytesForCurrentThread() - before);
            if (p!.CompletedItems != items)
            {
                throw new InvalidOperationException("plan lost items");
            }

            p = null;
            Measure.Settle();
            long lines = 0;
            raw.Add(Measure.Seconds(() => lines = RawCount(run.JournalPath)));
            if (lines != (2L * items) + 4)
            {
                throw new InvalidOperationException($"journal has {lines} lines");
            }
        }

        double a = Measure.Median(plan);
        double b = Measure.Median(raw);
        report.AddDetail(section, $"run.Plan(true) per round: {Measure.List(plan, Measure.Time)} (median {Measure.Time(a)}); allocated {Measure.Median(allocated) / 1e6:0} MB per plan");
        report.AddDetail(section, $"File.ReadAllBytes + count newlines per round: {Measure.List(raw, Measure.Time)} (median {Measure.Time(b)})");

        Breakdown(report, section, run);

        // Reading the state with a stale snapshot folds the whole journal tail (what Get-Run pays for such a run).
        Measure.Settle();
        double staleRead = Measure.Seconds(() => _ = run.ReadState());

        Measure.Settle();
        double begin = Measure.Seconds(() =>
        {
            using var attempt = run.BeginAttempt(new AttemptOptions());
            if (attempt.Plan.CompletedItems != items)
            {
                throw new InvalidOperationException("attempt plan lost items");
            }
        });
        long runJsonBytes = new FileInfo(run.StatePath).Length;
        Measure.Settle();
        double freshRead = Measure.Seconds(() => _ = run.ReadState());
        report.AddDetail(section, $"BeginAttempt (plan + repair + attempt_started + snapshot rewrite) + Dispose, once: {Measure.Time(begin)}; run.json afterwards {Measure.Number(runJsonBytes)} bytes");
        report.AddDetail(section, $"ReadState with the stale snapshot (folds the {Measure.Number(items)}-item tail): {Measure.Time(staleRead)}; after BeginAttempt refreshed it: {Measure.Time(freshRead)}");

        report.AddRow(new ResultRow(
            $"2. Resume planning, run.Plan(true), {Measure.Number(items)} completed items ({journalBytes / 1e6:0.0} MB journal, {(double)journalBytes / items:0} B/item), median of {rounds}",
            Measure.Time(a),
            Measure.Time(b) + " (ReadAllBytes + count newlines)",
            a / b,
            "≤ 1 s",
            a <= 1.0));
        report.AddRow(new ResultRow(
            $"2b. BeginAttempt on that run (plan + repair + snapshot rewrite), once",
            Measure.Time(begin),
            Measure.Time(a) + " (Plan median)",
            begin / a,
            "report only",
            null));
    }

    /// <summary>Writes the journal of one attempt that completed <paramref name="items"/> items and then died.</summary>
    private static void Synthesize(RunDirectory run, int items)
    {
        var stored = run.ReadState();
        long length = new FileInfo(run.JournalPath).Length;
        var ts = new DateTimeOffset(2026, 11, 21, 0, 0, 0, TimeSpan.Zero);
        using var journal = new JournalWriter(run.JournalPath, length, stored.Journal.Sequence);
        journal.Append(JournalEventTypes.AttemptStarted, ts, w =>
        {
            w.WriteNumber("attempt", 1);
            w.WriteBoolean("resumed", false);
            w.WriteString("previous_status", "created");
            w.WriteStartObject("owner");
            w.WriteNumber("pid", 4242);
            w.WriteString("host", "bench");
            w.WriteString("started_at", JournalWriter.FormatTimestamp(ts));
            w.WriteEndObject();
            w.WriteBoolean("forced", false);
            w.WriteString("config_hash", stored.Config.Hash);
            w.WriteString("script_hash", stored.Script.Hash);
        }, durable: false);
        journal.Append(JournalEventTypes.StepStarted, ts, w =>
        {
            w.WriteString("step", Step);
            w.WriteNumber("attempt", 1);
        }, durable: false);
        for (int i = 0; i < items; i++)
        {
            string key = CommitBenchmark.Key(i);
            var at = ts.AddTicks(i * 10L * TimeSpan.TicksPerMicrosecond);
            journal.Append(JournalEventTypes.ItemStarted, at, w =>
            {
                w.WriteString("step", Step);
                w.WriteString("key", key);
                w.WriteNumber("attempt", 1);
            }, durable: false);
            journal.Append(JournalEventTypes.ItemCompleted, at, w =>
            {
                w.WriteString("step", Step);
                w.WriteString("key", key);
                w.WriteNumber("attempt", 1);
                w.WriteNumber("duration_ms", 0);
            }, durable: false);
        }

        journal.Append(JournalEventTypes.StepCompleted, ts.AddSeconds(items / 100_000.0 + 1), w =>
        {
            w.WriteString("step", Step);
            w.WriteNumber("attempt", 1);
            w.WriteNumber("duration_ms", items / 100);
        }, durable: false);
        journal.Flush();
    }

    private static double Median3(Action action)
    {
        var samples = new List<double>();
        for (int i = 0; i < 3; i++)
        {
            Measure.Settle();
            samples.Add(Measure.Seconds(action));
        }

        return Measure.Median(samples);
    }

    private static long RawCount(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        return bytes.AsSpan().Count((byte)'\n');
    }

    /// <summary>Which part of the plan costs what: the bare scan, then each visitor added.</summary>
    private static void Breakdown(Report report, string section, RunDirectory run)
    {
        double Time(Func<IJournalVisitor?> visitor)
        {
            var samples = new List<double>();
            for (int i = 0; i < 3; i++)
            {
                Measure.Settle();
                var v = visitor();
                samples.Add(Measure.Seconds(() => JournalScanner.Scan(run.JournalPath, 0, 0, v)));
            }

            return Measure.Median(samples);
        }

        double lineReader = Median3(() =>
        {
            using var reader = new JournalLineReader(run.JournalPath, 0);
            while (reader.MoveNext())
            {
            }
        });
        double checksum = Median3(() =>
        {
            using var reader = new JournalLineReader(run.JournalPath, 0);
            while (reader.MoveNext())
            {
                _ = JournalLineParser.HasValidChecksum(reader.Line, out _);
            }
        });
        double ParseAll(bool wantTimestamp) => Median3(() =>
        {
            var parser = new JournalLineParser();
            using var reader = new JournalLineReader(run.JournalPath, 0);
            while (reader.MoveNext())
            {
                _ = parser.TryParse(reader.Line, wantTimestamp, out _, out _);
            }
        });
        double withTs = ParseAll(true);
        double withoutTs = ParseAll(false);
        double bare = Time(() => null);
        double reducer = Time(() => new StateReducer(new RunState { RunId = run.RunId }));
        double ledger = Time(() => new ItemLedger());
        double both = Time(() => new CompositeVisitor(new StateReducer(new RunState { RunId = run.RunId }), new ItemLedger()));
        report.AddDetail(section, "breakdown (median of 3 each):");
        report.AddDetail(section, $"JournalLineReader, split lines only: {Measure.Time(lineReader)}");
        report.AddDetail(section, $"+ CRC-32 check of every line: {Measure.Time(checksum)}");
        report.AddDetail(section, $"CRC + JSON member parse of every line: {Measure.Time(withTs)} with the ts string (as Scan always asks), {Measure.Time(withoutTs)} without it");
        report.AddDetail(section, $"JournalScanner.Scan, no visitor (CRC + JSON member parse, incl. key and ts strings): {Measure.Time(bare)}");
        report.AddDetail(section, $"Scan + StateReducer: {Measure.Time(reducer)}");
        report.AddDetail(section, $"Scan + ItemLedger: {Measure.Time(ledger)}");
        report.AddDetail(section, $"Scan + StateReducer + ItemLedger (what Plan does before the artifact checks): {Measure.Time(both)}");
    }
}
