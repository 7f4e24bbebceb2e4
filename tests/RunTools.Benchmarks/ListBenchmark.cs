using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Journal;
using RunTools.Core.State;

namespace RunTools.Benchmarks;

/// <summary>
/// Benchmark 3: listing many runs with their status (<see cref="RunsRoot.ListRuns"/>) against a
/// plain loop that reads every run.json raw.
/// </summary>
internal static class ListBenchmark
{
    public static void Run(Report report, string work, int runs, int tailEvery, int rounds)
    {
        const string section = "listing runs";
        var root = new RunsRoot(Path.Combine(work, "list"));
        int tails = 0;
        double create = Measure.Seconds(() => tails = CreateRuns(root, runs, tailEvery));
        report.AddDetail(section, $"created {Measure.Number(runs)} runs in {Measure.Time(create)} (CreateRun, 4 threads); {tails} of them with a journal tail after the snapshot (attempt_started, step_started, 2 items; a .lock file, no owner: they read as Interrupted)");

        // Warm the page cache and the JIT for both sides.
        Validate(root.ListRuns(), runs, tails);
        _ = RawRead(root.Path);

        var list = new List<double>();
        var raw = new List<double>();
        var gen2 = new List<double>();
        var allocated = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            Measure.Settle();
            IReadOnlyList<RunListing>? listings = null;
            int collections = GC.CollectionCount(2);
            long before = GC.GetTotalAllocatedBytes(precise: true);
            list.Add(Measure.Seconds(() => listings = root.ListRuns()));
            allocated.Add(GC.GetTotalAllocatedBytes(precise: true) - before);
            gen2.Add(GC.CollectionCount(2) - collections);
            Validate(listings!, runs, tails);
            listings = null;
            Measure.Settle();
            long bytes = 0;
            raw.Add(Measure.Seconds(() => bytes = RawRead(root.Path)));
            if (r == 0)
            {
                report.AddDetail(section, $"run.json total: {Measure.Number(bytes)} bytes ({bytes / runs} B per run)");
            }
        }

        double a = Measure.Median(list);
        double b = Measure.Median(raw);
        report.AddDetail(section, $"RunsRoot.ListRuns() per round: {Measure.List(list, Measure.Time)} (median {Measure.Time(a)})");
        report.AddDetail(section, $"per ListRuns: {Measure.Median(allocated) / 1e6:0} MB allocated, {Measure.Median(gen2):0} gen-2 collections (median)");
        report.AddDetail(section, $"EnumerateDirectories + File.ReadAllBytes(run.json) loop per round: {Measure.List(raw, Measure.Time)} (median {Measure.Time(b)})");

        Breakdown(report, section, root, tailEvery);

        report.AddRow(new ResultRow(
            $"3. List {Measure.Number(runs)} runs with status (RunsRoot.ListRuns, {tails} with a journal tail), median of {rounds}",
            Measure.Time(a),
            Measure.Time(b) + " (read every run.json raw, one thread)",
            a / b,
            "≤ 1.50×",
            a / b <= 1.5));
    }

    /// <summary>Creates the runs listed here and by the pwsh family's Get-Run benchmark; returns how many got a journal tail.</summary>
    public static int CreateRuns(RunsRoot root, int runs, int tailEvery)
    {
        var config = EffectiveConfig.FromDictionary(new Hashtable { ["source"] = "/data/in", ["target"] = "/data/out", ["retries"] = 3, ["dry_run"] = false });
        byte[] script = Encoding.UTF8.GetBytes("param($Config)\nInvoke-RunStep work { 'x' }\n");
        int tails = 0;
        Parallel.For(0, runs, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i =>
        {
            string id = "r-" + i.ToString("D5", System.Globalization.CultureInfo.InvariantCulture);
            var run = root.CreateRun(new RunCreateOptions { Name = "list", RunId = id, Config = config, Script = script });
            if (i % tailEvery == 0)
            {
                AppendTail(run);
                System.Threading.Interlocked.Increment(ref tails);
            }
        });
        return tails;
    }

    /// <summary>Events after the snapshot, as a crashed attempt leaves them.</summary>
    private static void AppendTail(RunDirectory run)
    {
        var stored = run.ReadState();
        long length = new FileInfo(run.JournalPath).Length;
        var ts = DateTimeOffset.UtcNow;
        File.WriteAllBytes(Path.Combine(run.Path, RunFormat.LockFile), Array.Empty<byte>());
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
            w.WriteString("step", "work");
            w.WriteNumber("attempt", 1);
        }, durable: false);
        for (int i = 0; i < 2; i++)
        {
            string key = CommitBenchmark.Key(i);
            journal.Append(JournalEventTypes.ItemStarted, ts, w =>
            {
                w.WriteString("step", "work");
                w.WriteString("key", key);
                w.WriteNumber("attempt", 1);
            }, durable: false);
            journal.Append(JournalEventTypes.ItemCompleted, ts, w =>
            {
                w.WriteString("step", "work");
                w.WriteString("key", key);
                w.WriteNumber("attempt", 1);
                w.WriteNumber("duration_ms", 0);
            }, durable: false);
        }

        journal.Flush();
    }

    private static long RawRead(string root)
    {
        long bytes = 0;
        foreach (string directory in Directory.EnumerateDirectories(root))
        {
            bytes += File.ReadAllBytes(Path.Combine(directory, "run.json")).Length;
        }

        return bytes;
    }

    private static void Validate(IReadOnlyList<RunListing> listings, int runs, int tails)
    {
        if (listings.Count != runs)
        {
            throw new InvalidOperationException($"ListRuns returned {listings.Count} runs, expected {runs}");
        }

        int withTail = 0;
        foreach (var listing in listings)
        {
            if (listing.State is null)
            {
                throw new InvalidOperationException($"run {listing.Run.RunId} could not be read: {listing.Error?.Message}");
            }

            if (listing.State.ItemsCompleted == 2 && listing.State.Status == RunStatus.Interrupted)
            {
                withTail++;
            }
        }

        if (withTail != tails)
        {
            throw new InvalidOperationException($"{withTail} runs show their journal tail, expected {tails}");
        }
    }

    /// <summary>Where ListRuns spends its time: enumeration, state reads on one thread, JSON deserialization.</summary>
    private static void Breakdown(Report report, string section, RunsRoot root, int tailEvery)
    {
        var ids = root.EnumerateRunIds();
        var tailIds = ids.Where((_, i) => i % tailEvery == 0).ToList();
        var plainIds = ids.Where((_, i) => i % tailEvery != 0).ToList();
        double enumerate = Median3(() => _ = root.EnumerateRunIds());
        double serial = Median3(() =>
        {
            foreach (string id in ids)
            {
                _ = root.OpenRun(id).ReadState();
            }
        });
        var contents = ids.Select(id => File.ReadAllBytes(Path.Combine(root.Path, id, RunFormat.StateFile))).ToList();
        double deserialize = Median3(() =>
        {
            foreach (byte[] bytes in contents)
            {
                _ = JsonSerializer.Deserialize<RunState>(bytes, RunFormat.JsonOptions);
            }
        });
        double plainRead = Median3(() =>
        {
            foreach (string id in plainIds)
            {
                _ = root.OpenRun(id).ReadState();
            }
        });
        double tailRead = Median3(() =>
        {
            foreach (string id in tailIds)
            {
                _ = root.OpenRun(id).ReadState();
            }
        });
        var offsets = tailIds.Select(id => (Path.Combine(root.Path, id, RunFormat.JournalFile), JsonSerializer.Deserialize<RunState>(File.ReadAllBytes(Path.Combine(root.Path, id, RunFormat.StateFile)), RunFormat.JsonOptions)!.Journal.Length)).ToList();
        double ReadTails(int chunk) => Median3(() =>
        {
            foreach (var (path, offset) in offsets)
            {
                using var reader = new JournalLineReader(path, offset, chunk);
                while (reader.MoveNext())
                {
                }
            }
        });
        double bigChunk = ReadTails(1 << 20);
        double smallChunk = ReadTails(4096);
        report.AddDetail(section, "breakdown (median of 3 each):");
        report.AddDetail(section, $"ReadState per run, one thread: {Measure.Micros(plainRead / plainIds.Count)} for a run without a tail ({plainIds.Count} runs), {Measure.Micros(tailRead / tailIds.Count)} for a run with a tail ({tailIds.Count} runs)");
        report.AddDetail(section, $"reading a 6-line tail with JournalLineReader: {Measure.Micros(bigChunk / tailIds.Count)} per run with a 1 MiB chunk size (what JournalScanner.Scan passes; the buffer is sized to the tail), {Measure.Micros(smallChunk / tailIds.Count)} with a 4 KiB chunk size");
        report.AddDetail(section, $"EnumerateRunIds (id check + File.Exists per directory, sorted): {Measure.Time(enumerate)}");
        report.AddDetail(section, $"OpenRun + ReadState for every run on one thread: {Measure.Time(serial)}");
        report.AddDetail(section, $"JsonSerializer.Deserialize<RunState> of every run.json already in memory, one thread: {Measure.Time(deserialize)}");
        report.AddDetail(section, $"ListRuns runs on {Environment.ProcessorCount} threads (Parallel.For)");
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
}
