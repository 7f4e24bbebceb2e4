using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime;
using System.Runtime.InteropServices;

namespace RunTools.Benchmarks;

/// <summary>
/// A plain benchmark harness. Every measurement runs beside its baseline in the same process,
/// interleaved over several rounds; medians and ratios are reported. Two families: "core"
/// measures RunTools.Core in this process; "pwsh" measures the built module in the pinned pwsh,
/// each benchmark in a child pwsh beside a baseline taken in that same pwsh.
/// Usage: dotnet run -c Release --project tests/RunTools.Benchmarks -- [--quick] [--only core|pwsh|pwsh:P1,P5] [--write-doc docs/performance.md] [--work-dir DIR]
/// </summary>
internal static class Program
{
    private const string Usage = "usage: RunTools.Benchmarks [--quick] [--only core|pwsh|pwsh:P1,P5] [--write-doc docs/performance.md] [--work-dir DIR]";

    public static int Main(string[] args)
    {
        bool quick = false;
        string? doc = null;
        string? workDir = null;
        string? only = null;
        string[]? pwshSelection = null;
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
                case "--only" when i + 1 < args.Length && (args[i + 1] is "core" or "pwsh" || args[i + 1].StartsWith("pwsh:", StringComparison.Ordinal)):
                    only = args[++i];
                    if (only.StartsWith("pwsh:", StringComparison.Ordinal))
                    {
                        // pwsh:P4,P5 runs only those pwsh benchmarks.
                        pwshSelection = only.Substring(5).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                        only = "pwsh";
                    }

                    break;
                case "--only":
                    Console.Error.WriteLine("--only takes core, pwsh, or pwsh: and a list of pwsh benchmarks (pwsh:P1,P5)");
                    return 2;
                case "-h":
                case "--help":
                    Console.WriteLine(Usage);
                    return 0;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'; see --help");
                    return 2;
            }
        }

        bool core = only is null or "core";
        bool pwsh = only is null or "pwsh";
        string repo = RepositoryRoot();
        string? module = null;
        if (pwsh)
        {
            // Fail before the long Core family runs, not after it.
            module = PwshBenchmark.FindModule(repo, out string reason);
            if (module is null)
            {
                Console.Error.WriteLine(reason);
                return 1;
            }
        }

        string work = Path.GetFullPath(Path.Combine(workDir ?? Path.GetTempPath(), "runtools-bench-" + Guid.NewGuid().ToString("N")));
        Directory.CreateDirectory(work);
        var total = Stopwatch.StartNew();
        var coreReport = new Report();
        var pwshReport = new Report();
        try
        {
            Console.Error.WriteLine($"RunTools benchmarks{(quick ? " (quick)" : string.Empty)}, {(only is null ? "both families" : "only " + only)}; work directory {work}");
            double fsync = Measure.FsyncLatency(work, quick ? 100 : 500);
            foreach (var report in new[] { coreReport, pwshReport })
            {
                string shrunk = report == coreReport ? "sizes ÷10" : "sizes ÷4 to ÷10";
                report.AddFact($"date: {DateTime.UtcNow.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture)}; mode: {(quick ? $"--quick ({shrunk}, not for the record)" : "full")}; build: {BuildConfiguration()}");
                report.AddFact($"OS: {RuntimeInformation.OSDescription} ({RuntimeInformation.OSArchitecture})");
                report.AddFact($"CPU: {CpuModel()}; Environment.ProcessorCount = {Environment.ProcessorCount}");
                report.AddFact($".NET: {RuntimeInformation.FrameworkDescription}; GC: {(GCSettings.IsServerGC ? "server" : "workstation")}");
                report.AddFact($"fsync latency (64-byte append + Flush(flushToDisk: true), median of {(quick ? 100 : 500)}): {Measure.Micros(fsync)}");
            }

            if (core)
            {
                var family = Stopwatch.StartNew();
                RunCore(coreReport, work, quick);
                coreReport.AddFact($"harness wall time (Core family): {Measure.Time(family.Elapsed.TotalSeconds)}");
            }

            if (pwsh)
            {
                var family = Stopwatch.StartNew();
                try
                {
                    PwshBenchmark.Run(pwshReport, work, quick, repo, module!, pwshSelection);
                }
                catch (InvalidOperationException ex)
                {
                    Console.Error.WriteLine("The pwsh benchmarks could not run: " + ex.Message);
                    return 1;
                }

                pwshReport.AddFact($"harness wall time (pwsh family): {Measure.Time(family.Elapsed.TotalSeconds)}");
            }
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

        int missed = 0;
        if (core)
        {
            string markdown = coreReport.ToMarkdown();
            Console.WriteLine();
            Console.WriteLine(markdown);
            if (doc is not null)
            {
                Report.WriteDoc(doc, markdown);
                Console.Error.WriteLine($"Core results written to {doc}");
            }

            missed += coreReport.Rows.Count(r => r.Met == false);
        }

        if (pwsh)
        {
            string markdown = pwshReport.ToMarkdown();
            Console.WriteLine();
            Console.WriteLine(markdown);
            if (doc is not null)
            {
                Report.WriteDoc(doc, markdown, Report.PwshStartMarker, Report.PwshEndMarker, "Results: through the module under pwsh");
                Console.Error.WriteLine($"pwsh results written to {doc}");
            }

            missed += pwshReport.Rows.Count(r => r.Met == false);
        }

        Console.Error.WriteLine($"done in {Measure.Time(total.Elapsed.TotalSeconds)}; " + (missed == 0 ? "all goals met" : $"{missed} goal(s) missed"));
        return 0;
    }

    private static void RunCore(Report report, string work, bool quick)
    {
        int scale = quick ? 10 : 1;
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

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RunTools.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("RunTools.sln not found above " + AppContext.BaseDirectory);
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
