using System;
using System.IO;
using System.Linq;
using System.Text;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;

namespace RunTools.Benchmarks;

/// <summary>
/// Benchmark 4: the number of files in a run directory does not grow with the number of items.
/// Two runs go through the same steps with few and with many items.
/// </summary>
internal static class FileCountBenchmark
{
    private static readonly string[] s_steps = { "prepare", "work", "report" };

    public static void Run(Report report, string work, int fewItems, int manyItems)
    {
        const string section = "file count";
        var root = new RunsRoot(Path.Combine(work, "files"));
        string artifact = Path.Combine(work, "files-report.html");
        File.WriteAllText(artifact, "<html><body>report</body></html>\n");

        var (few, fewSeconds, fewNames) = Drive(root, "few", fewItems, artifact);
        var (many, manySeconds, manyNames) = Drive(root, "many", manyItems, artifact);
        report.AddDetail(section, $"{Measure.Number(fewItems)} items: {few} files, driven in {Measure.Time(fewSeconds)}");
        report.AddDetail(section, $"{Measure.Number(manyItems)} items: {many} files, driven in {Measure.Time(manySeconds)} ({Measure.Micros(manySeconds / manyItems)} per item incl. its 16-byte output)");
        report.AddDetail(section, $"files ({Measure.Number(manyItems)} items): {string.Join(", ", manyNames)}");
        if (!fewNames.SequenceEqual(manyNames))
        {
            report.AddDetail(section, $"files ({Measure.Number(fewItems)} items) differ: {string.Join(", ", fewNames)}");
        }

        report.AddRow(new ResultRow(
            $"4. Files in the run directory, {Measure.Number(manyItems)} vs {Measure.Number(fewItems)} items (same steps)",
            $"{many} files ({Measure.Number(manyItems)} items)",
            $"{few} files ({Measure.Number(fewItems)} items)",
            (double)many / few,
            "equal (1.00×)",
            many == few));
    }

    private static (int Count, double Seconds, string[] Names) Drive(RunsRoot root, string id, int items, string artifact)
    {
        var run = root.CreateRun(new RunCreateOptions
        {
            Name = "files",
            RunId = id,
            Config = EffectiveConfig.Empty,
            Script = Encoding.UTF8.GetBytes("# bench\n"),
            DeclaredSteps = s_steps,
        });
        byte[] output = new byte[16];
        double seconds = Measure.Seconds(() =>
        {
            using var attempt = run.BeginAttempt(new AttemptOptions());
            Expect(attempt.BeginStep("prepare"));
            attempt.CompleteStep("prepare", Encoding.UTF8.GetBytes("{\"files\":3}"), "json");
            Expect(attempt.BeginStep("work"));
            for (int i = 0; i < items; i++)
            {
                string key = CommitBenchmark.Key(i);
                if (attempt.BeginItem("work", key) != ItemAction.Run)
                {
                    throw new InvalidOperationException($"item {key} did not run");
                }

                attempt.CompleteItem("work", key, output);
            }

            attempt.CompleteStep("work", null);
            Expect(attempt.BeginStep("report"));
            attempt.AddArtifact(artifact, "report.html");
            attempt.CompleteStep("report", null);
            attempt.Complete();
        });
        string[] names = Directory.EnumerateFiles(run.Path, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(run.Path, f).Replace('\\', '/'))
            .OrderBy(f => f, StringComparer.Ordinal)
            .ToArray();
        return (names.Length, seconds, names);
    }

    private static void Expect(StepAction action)
    {
        if (action != StepAction.Run)
        {
            throw new InvalidOperationException($"step did not run ({action})");
        }
    }
}
