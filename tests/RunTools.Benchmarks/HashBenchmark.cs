using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools.Benchmarks;

/// <summary>
/// Benchmark 5: Test-Run (RunDirectory.Test: journal, run.json, required files, and every
/// recorded file's size and SHA-256 on all cores) against `sha256sum` over the same files, once
/// for one large artifact and once for many small ones.
/// </summary>
internal static class HashBenchmark
{
    public static void Run(Report report, string work, long largeBytes, int smallFiles, int smallBytes, int rounds)
    {
        const string section = "Test-Run hashing";
        if (!Measure.OnPath("sha256sum"))
        {
            report.AddDetail(section, "sha256sum is not on PATH; skipped");
            return;
        }

        var root = new RunsRoot(Path.Combine(work, "hash"));
        var random = new Random(42);
        var large = CreateRun(root, "large", 1, (int)Math.Min(largeBytes, 1 << 30), random);
        double buildMany = Measure.Seconds(() => _ = CreateRun(root, "many", smallFiles, smallBytes, random));
        var many = root.OpenRun("many");
        report.AddDetail(section, $"runs: 1 artifact of {Measure.Number(largeBytes)} bytes; {Measure.Number(smallFiles)} artifacts of {Measure.Number(smallBytes)} bytes (recorded through the engine in {Measure.Time(buildMany)})");

        Compare(report, section, large, "5a. Test-Run on one large artifact", rounds, 0.9);
        Compare(report, section, many, $"5b. Test-Run on {Measure.Number(smallFiles)} small artifacts", rounds, 1.7);
    }

    private static void Compare(Report report, string section, RunDirectory run, string title, int rounds, double goal)
    {
        // Warm the page cache and the JIT for both sides, and check both see the same files.
        var result = run.Test();
        if (!result.IsValid || result.Problems.Count != 0)
        {
            throw new InvalidOperationException($"{run.RunId}: {string.Join("; ", result.Problems)}");
        }

        int listed = Sha256Sum(run.Path);
        if (listed != result.FilesChecked)
        {
            throw new InvalidOperationException($"{run.RunId}: sha256sum hashed {listed} files, Test-Run {result.FilesChecked}");
        }

        var ours = new List<double>();
        var theirs = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            Measure.Settle();
            ours.Add(Measure.Seconds(() => result = run.Test()));
            Measure.Settle();
            theirs.Add(Measure.Seconds(() => Sha256Sum(run.Path)));
        }

        double a = Measure.Median(ours);
        double b = Measure.Median(theirs);
        report.AddDetail(section, $"{run.RunId}: RunDirectory.Test() per round: {Measure.List(ours, Measure.Time)}; sha256sum: {Measure.List(theirs, Measure.Time)}; {Measure.Number(result.BytesChecked)} bytes in {Measure.Number(result.FilesChecked)} files");
        double speed = b / a;
        report.AddRow(new ResultRow(
            $"{title} ({Measure.Number(result.BytesChecked / (1 << 20))} MiB), median of {rounds}; ratio = speed against sha256sum",
            Measure.Time(a),
            Measure.Time(b) + " (sha256sum over the same files, one process)",
            speed,
            $"≥ {goal:0.00}× speed",
            speed >= goal));
    }

    /// <summary>Every recorded file through the engine: one item per file, copied under artifacts/.</summary>
    private static RunDirectory CreateRun(RunsRoot root, string id, int files, int bytesEach, Random random)
    {
        var run = root.CreateRun(new RunCreateOptions { Name = "hash", RunId = id, Script = Encoding.UTF8.GetBytes("# bench") });
        string source = Path.Combine(root.Path, id + ".source");
        var buffer = new byte[bytesEach];
        using (var attempt = run.BeginAttempt())
        {
            attempt.BeginStep("files");
            for (int i = 0; i < files; i++)
            {
                string key = "f" + i.ToString("D6", System.Globalization.CultureInfo.InvariantCulture);
                attempt.BeginItem("files", key);
                random.NextBytes(buffer);
                File.WriteAllBytes(source, buffer);
                attempt.AddArtifact(source, key + ".bin");
                attempt.CompleteItem("files", key, null);
            }

            attempt.CompleteStep("files", null);
            attempt.Complete();
        }

        File.Delete(source);
        return run;
    }

    /// <summary>sha256sum over the run's artifacts, as an operator would check them; returns the number of lines.</summary>
    private static int Sha256Sum(string runPath)
    {
        var start = new ProcessStartInfo("sh", "-c \"find artifacts -type f -print0 | xargs -0 sha256sum\"")
        {
            WorkingDirectory = runPath,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        using var process = Process.Start(start)!;
        int lines = 0;
        while (process.StandardOutput.ReadLine() is not null)
        {
            lines++;
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"sha256sum exited with {process.ExitCode}");
        }

        return lines;
    }
}
