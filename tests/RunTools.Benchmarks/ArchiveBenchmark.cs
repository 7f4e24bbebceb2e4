using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using RunTools.Core;
using RunTools.Core.Archive;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;

namespace RunTools.Benchmarks;

/// <summary>
/// Benchmark 5: Export-RunArchive (<see cref="RunArchive.Export"/>: zip + SHA-256 of every file +
/// manifest, temp file, fsync, rename) against `zip -r -q` (Info-ZIP, deflate level 6, no hashing)
/// over the same run directory, interleaved in the same process. Two runs: many small artifacts,
/// and one large artifact. Log-like content, so both sides really compress.
/// </summary>
internal static class ArchiveBenchmark
{
    public static void Run(Report report, string work, int manyFiles, long largeBytes, int rounds)
    {
        const string section = "archive export";
        var root = new RunsRoot(Path.Combine(work, "archive"));
        string source = Path.Combine(work, "archive-source");
        Directory.CreateDirectory(source);
        string? zip = FindZip();
        if (zip is null)
        {
            report.AddDetail(section, "`zip` is not on PATH: no baseline, export times only");
        }

        var many = Drive(root, "many", source, Enumerable.Range(0, manyFiles).Select(i => (Name: $"frames/f{i:D5}.txt", Bytes: (long)(2048 + (i * 37 % 4096)))).ToList());
        var large = Drive(root, "large", source, new List<(string Name, long Bytes)> { ("data/large.log", largeBytes) });
        foreach (var (run, label) in new[] { (many, $"{Measure.Number(manyFiles)} small files"), (large, $"one {largeBytes / (1 << 20)} MiB file") })
        {
            long runBytes = Directory.EnumerateFiles(run.Path, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            int runFiles = Directory.EnumerateFiles(run.Path, "*", SearchOption.AllDirectories).Count();
            string exportTo = Path.Combine(work, "archive-out", run.RunId + ".zip");
            string fastTo = Path.Combine(work, "archive-out", run.RunId + "-fastest.zip");
            string zipTo = Path.Combine(work, "archive-out", run.RunId + "-zip.zip");
            Directory.CreateDirectory(Path.GetDirectoryName(exportTo)!);

            // Warm-up: page cache, JIT, and a first zip run.
            Export(run, exportTo, CompressionLevel.Optimal);
            if (zip is not null)
            {
                Zip(zip, run.Path, zipTo);
            }

            var export = new List<double>();
            var fastest = new List<double>();
            var baseline = new List<double>();
            var import = new List<double>();
            for (int r = 0; r < rounds; r++)
            {
                Measure.Settle();
                export.Add(Measure.Seconds(() => Export(run, exportTo, CompressionLevel.Optimal)));
                if (zip is not null)
                {
                    Measure.Settle();
                    baseline.Add(Measure.Seconds(() => Zip(zip, run.Path, zipTo)));
                }

                Measure.Settle();
                fastest.Add(Measure.Seconds(() => Export(run, fastTo, CompressionLevel.Fastest)));
                var restoreRoot = new RunsRoot(Path.Combine(work, "archive-restore-" + r));
                Measure.Settle();
                import.Add(Measure.Seconds(() => RunArchive.Import(exportTo, restoreRoot)));
                Directory.Delete(restoreRoot.Path, recursive: true);
            }

            double a = Measure.Median(export);
            double b = zip is null ? double.NaN : Measure.Median(baseline);
            report.AddDetail(section, $"{label}: run directory {runFiles} files, {Measure.Number(runBytes)} bytes");
            report.AddDetail(section, $"{label}: RunArchive.Export (Optimal) per round: {Measure.List(export, Measure.Time)} (median {Measure.Time(a)}); archive {Measure.Number(new FileInfo(exportTo).Length)} bytes");
            if (zip is not null)
            {
                report.AddDetail(section, $"{label}: zip -r -q per round: {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)}); archive {Measure.Number(new FileInfo(zipTo).Length)} bytes");
            }

            report.AddDetail(section, $"{label}: RunArchive.Export (Fastest, not the default) per round: {Measure.List(fastest, Measure.Time)} (median {Measure.Time(Measure.Median(fastest))}); archive {Measure.Number(new FileInfo(fastTo).Length)} bytes");
            report.AddDetail(section, $"{label}: RunArchive.Import (verify + extract + fsync each file + rename) per round: {Measure.List(import, Measure.Time)} (median {Measure.Time(Measure.Median(import))})");
            report.AddDetail(section, $"{label}: SHA-256 of every file alone, one thread: {Measure.Time(Measure.Seconds(() => HashAll(run.Path)))}");
            report.AddRow(new ResultRow(
                $"6. Export-RunArchive (RunArchive.Export: zip + SHA-256 manifest + fsync), {label}, median of {rounds}",
                Measure.Time(a),
                zip is null ? "n/a (no zip on PATH)" : $"{Measure.Time(b)} (zip -r -q, Info-ZIP 3.0)",
                zip is null ? null : a / b,
                "report only",
                null));
        }
    }

    private static void Export(RunDirectory run, string destination, CompressionLevel level) =>
        RunArchive.Export(run, new ArchiveExportOptions { DestinationPath = destination, Force = true, CompressionLevel = level });

    private static void Zip(string zip, string directory, string destination)
    {
        // zip updates an existing archive; the baseline always writes a new one, as Export does.
        File.Delete(destination);
        var info = new ProcessStartInfo(zip) { WorkingDirectory = directory, UseShellExecute = false, RedirectStandardOutput = true };
        foreach (string arg in new[] { "-r", "-q", destination, "." })
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"zip exited {process.ExitCode}");
        }
    }

    private static void HashAll(string directory)
    {
        foreach (string file in Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            Integrity.HashFile(file);
        }
    }

    private static RunDirectory Drive(RunsRoot root, string id, string source, List<(string Name, long Bytes)> artifacts)
    {
        var run = root.CreateRun(new RunCreateOptions { Name = "archive", RunId = id, Config = EffectiveConfig.Empty, Script = Encoding.UTF8.GetBytes("# bench\n") });
        using var attempt = run.BeginAttempt(new AttemptOptions());
        attempt.BeginStep("render");
        var random = new Random(42);
        string file = Path.Combine(source, id + ".tmp");
        foreach (var (name, bytes) in artifacts)
        {
            WriteLogLike(file, bytes, random);
            attempt.AddArtifact(file, name);
        }

        attempt.CompleteStep("render", null);
        attempt.Complete();
        return run;
    }

    /// <summary>Lines like a render log: compressible about 3-4×, as real run output is.</summary>
    private static void WriteLogLike(string path, long bytes, Random random)
    {
        using var writer = new StreamWriter(path, false, new UTF8Encoding(false), 1 << 16);
        long written = 0;
        string[] states = { "ok", "retry", "skipped", "ok", "ok" };
        var line = new StringBuilder(96);
        for (long n = 0; written < bytes; n++)
        {
            line.Clear();
            line.Append("2026-11-21T13:").Append((n / 60 % 60).ToString("D2", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" frame ").Append(n.ToString("D6", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" value ").Append(random.NextDouble().ToString("F5", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" seed ").Append(random.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture))
                .Append(" status ").Append(states[random.Next(states.Length)]).Append('\n');
            string text = line.Length <= bytes - written ? line.ToString() : line.ToString(0, (int)(bytes - written));
            writer.Write(text);
            written += text.Length;
        }
    }

    private static string? FindZip()
    {
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            string candidate = Path.Combine(folder, "zip");
            if (folder.Length > 0 && File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
