using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime;
using System.Runtime.InteropServices;

namespace RunTools.Benchmarks;

/// <summary>
/// A plain benchmark harness for the run directory. Every measurement runs beside its baseline in
/// the same process, interleaved over several rounds; medians and ratios are reported.
/// Usage: dotnet run -c Release --project tests/RunTools.Benchmarks -- [--quick] [--write-doc docs/performance.md] [--work-dir DIR]
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        bool quick = false;
        string? doc = null;
        string? workDir = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    quick = true;
                    break;
                case "--write-doc" when i + 1 < args.Length:
                    doc = Path.GetFullPath(args[++i]);
                    break;
                case "--work-dir" when i + 1 < args.Length:
                    workDir = args[++i];
                    break;
                case "-h":
                case "--help":
                    Console.WriteLine("usage: RunTools.Benchmarks [--quick] [--write-doc docs/performance.md] [--work-dir DIR]");
                    return 0;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'; see --help");
                    return 2;
            }
        }

        int scale = quick ? 10 : 1;
        string work = Path.GetFullPath(Path.Combine(workDir ?? Path.GetTempPath(), "runtools-bench-" + Guid.NewGuid().ToString("N")));
        Directory.CreateDirectory(work);
        var total = Stopwatch.StartNew();
        var report = new Report();
        try
        {
            Console.Error.WriteLine($"RunTools benchmarks{(quick ? " (quick)" : string.Empty)}; work directory {work}");
            double fsync = Measure.FsyncLatency(work, quick ? 100 : 500);
            report.AddFact($"date: {DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}; mode: {(quick ? "--quick (sizes ÷10, not for the record)" : "full")}; build: {BuildConfiguration()}");
            report.AddFact($"OS: {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})");
            report.AddFact($"CPU: {CpuModel()}; Environment.ProcessorCount = {Environment.ProcessorCount}");
            report.AddFact($".NET: {RuntimeInformation.FrameworkDescription}; GC: {(GCSettings.IsServerGC ? "server" : "workstation")}");
            report.AddFact($"fsync latency (64-byte append + Flush(flushToDisk: true), median of {(quick ? 100 : 500)}): {Measure.Micros(fsync)}");

            Console.Error.WriteLine("1/6 durable commit ...");
            CommitBenchmark.Run(report, work, units: 2000 / scale, rounds: 5);
            Console.Error.WriteLine("2/6 resume planning ...");
            PlanBenchmark.Run(report, work, items: 1_000_000 / scale, rounds: 3);
            Console.Error.WriteLine("3/6 listing runs ...");
            ListBenchmark.Run(report, work, runs: 10_000 / scale, tailEvery: 33, rounds: 5);
            Console.Error.WriteLine("4/6 file count ...");
            FileCountBenchmark.Run(report, work, fewItems: 10, manyItems: 10_000 / scale);
            Console.Error.WriteLine("5/6 Test-Run hashing vs sha256sum ...");
            HashBenchmark.Run(report, work, largeBytes: (1L << 30) / scale, smallFiles: 10_000 / scale, smallBytes: 4096, rounds: 3);
            Console.Error.WriteLine("6/6 archive export vs zip -r ...");
            ArchiveBenchmark.Run(report, work, manyFiles: 5_000 / scale, largeBytes: (256L << 20) / scale, rounds: 3);
        }
        finally
        {
            try
            {
                Directory.Delete(work, recursive: true);
            }
            catch (IOException ex)
            {
                Console.Error.WriteLine($"could not delete {work}: {ex.Message}");
            }
        }

        report.AddFact($"harness wall time: {Measure.Time(total.Elapsed.TotalSeconds)}");
        string markdown = report.ToMarkdown();
        Console.WriteLine();
        Console.WriteLine(markdown);
        if (doc is not null)
        {
            Report.WriteDoc(doc, markdown);
            Console.Error.WriteLine($"results written to {doc}");
        }

        int missed = report.Rows.Count(r => r.Met == false);
        Console.Error.WriteLine(missed == 0 ? "all goals met" : $"{missed} goal(s) missed");
        return 0;
    }

    private static string BuildConfiguration()
    {
#if DEBUG
        return "Debug (figures not representative)";
#else
        return "Release";
#endif
    }

    private static string CpuModel()
    {
        try
        {
            if (File.Exists("/proc/cpuinfo"))
            {
                string? line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
                if (line is not null)
                {
                    return line.Substring(line.IndexOf(':', StringComparison.Ordinal) + 1).Trim();
                }
            }
        }
        catch (IOException)
        {
        }

        return RuntimeInformation.ProcessArchitecture.ToString();
    }
}
