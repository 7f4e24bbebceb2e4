using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using RunTools;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Tools;

// The example job, two ways. README's first command runs the first; `-- --core` the second.
//   Through the module (default): the PowerShell pinned in .config/dotnet-tools.json is restored
//     from NuGet and runs examples/run-example.ps1 against out/RunTools: Start-Run in a child pwsh
//     that is SIGKILLed, Interrupted, Resume-Run stopped by Stop-Run, the operator pipeline, the
//     journal, Test-Run and an archive round trip.
//   Through RunTools.Core (--core), a nightly upload job embedded in a .NET program:
//     1. a child process starts the run and is killed (SIGKILL) in the middle of an upload;
//     2. the run reads as Interrupted; resuming it retries the one upload in doubt, and a stop
//        request ends that attempt cleanly at an item boundary;
//     3. a last resume finishes the run; every file was uploaded, finished work was never redone.
// Usage: dotnet run --project examples/RunTools.Example [-- [--core] [--root DIR]]
internal static class Program
{
    private static int Main(string[] args)
    {
        string root = Path.GetFullPath(ArgAfter(args, "--root") ?? "runs");
        string config = Path.GetFullPath(ArgAfter(args, "--config") ?? Path.Combine(AppContext.BaseDirectory, "nightly.yaml"));
        if (ArgAfter(args, "--child-run") is { } childRun)
        {
            return Job.Run(root, childRun, config, crashAfter: int.Parse(ArgAfter(args, "--crash-after")!), stopAfter: null);
        }

        return args.Contains("--core") ? RunCoreExample(root, config) : RunPowerShellExample(root);
    }

    private static int RunCoreExample(string root, string config)
    {
        var runs = new RunsRoot(root);
        var run = runs.CreateRun(new RunCreateOptions
        {
            Name = "nightly",
            Config = EffectiveConfig.FromFile(config),
            Script = Encoding.UTF8.GetBytes(File.ReadAllText(typeof(Program).Assembly.Location + ".job.txt")),
            ScriptSourcePath = null,
            DeclaredSteps = new[] { "extract", "upload", "report" },
        });
        Console.WriteLine($"Created run {run.RunId} under {root}");

        Console.WriteLine("\n1. Start it in a child process that is killed during its 6th upload:");
        var child = Process.Start(new ProcessStartInfo("dotnet", $"\"{typeof(Program).Assembly.Location}\" --root \"{root}\" --config \"{config}\" --child-run {run.RunId} --crash-after 5") { UseShellExecute = false })!;
        child.WaitForExit();
        Console.WriteLine($"   child exited with code {child.ExitCode}{(child.ExitCode == 137 ? " (SIGKILL)" : string.Empty)}");
        Show(run);

        Console.WriteLine("\n2. Resume; a stop is requested after 3 more uploads (as Stop-Run would):");
        Job.Run(root, run.RunId, config, crashAfter: null, stopAfter: 3);
        Show(run);

        Console.WriteLine("\n3. Resume again to the end:");
        Job.Run(root, run.RunId, config, crashAfter: null, stopAfter: null);
        Show(run);

        var uploads = Directory.GetFiles(Job.UploadFolder(root, run.RunId));
        var events = run.ReadEvents().GroupBy(e => e.Type).ToDictionary(g => g.Key, g => g.Count());
        Console.WriteLine($"\n{uploads.Length} files uploaded; {events.GetValueOrDefault("item_completed")} item completions recorded, " +
                          $"{events.GetValueOrDefault("item_resolved")} in-doubt item retried, {events.GetValueOrDefault("attempt_started")} attempts.");
        Console.WriteLine("\nAll runs under the root:");
        foreach (var listing in runs.ListRuns())
        {
            var s = listing.State;
            Console.WriteLine(s is null
                ? $"  {listing.Run.RunId,-40} unreadable: {listing.Error!.Message}"
                : $"  {s.RunId,-40} {s.Status,-11} steps {s.StepsCompleted}/{s.StepsTotal}  items {s.ItemsCompleted,4}  attempt {s.Attempt}");
        }

        return run.ReadState().Status == RunStatus.Completed ? 0 : 1;
    }

    /// <summary>The job through the module, in the pinned pwsh: examples/run-example.ps1.</summary>
    private static int RunPowerShellExample(string root)
    {
        string repo = RepositoryRoot();
        PwshLocator pwsh;
        try
        {
            pwsh = PwshLocator.Find(repo, Console.WriteLine);
        }
        catch (InvalidOperationException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 1;
        }

        Console.WriteLine($"Running examples/run-example.ps1 in PowerShell ({pwsh.Home}) against out/RunTools");
        string script = Path.Combine(repo, "examples", "run-example.ps1");
        try
        {
            // Colour codes only where a terminal shows them, not in a CI log.
            var environment = Console.IsOutputRedirected ? new Dictionary<string, string> { ["NO_COLOR"] = "1" } : null;
            var result = pwsh.Run(new[] { "-NoProfile", "-NonInteractive", "-File", script, "-Root", root }, TimeSpan.FromMinutes(5), environment: environment, echo: Console.WriteLine);
            if (result.ExitCode != 0)
            {
                Console.Error.WriteLine($"examples/run-example.ps1 failed with exit code {result.ExitCode}.");
            }

            return result.ExitCode;
        }
        catch (TimeoutException ex)
        {
            Console.Error.WriteLine(ex.Message);
            return 1;
        }
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

    private static void Show(RunDirectory run)
    {
        var s = run.ReadState();
        Console.WriteLine($"   {s.RunId}: {s.Status}, attempt {s.Attempt}, steps {s.StepsCompleted}/{s.StepsTotal}, items {s.ItemsCompleted}" +
                          (s.Steps.Sum(x => x.ItemsOpen.Count) > 0 ? $", in doubt: {string.Join(", ", s.Steps.SelectMany(x => x.ItemsOpen))}" : string.Empty));
    }

    private static string? ArgAfter(string[] args, string name)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }
}

/// <summary>The job itself: extract a file list, upload each file once (keyed), write a report.</summary>
internal static class Job
{
    public static string UploadFolder(string root, string runId) => Path.Combine(root, "..", "example-uploads", runId);

    public static int Run(string root, string runId, string configPath, int? crashAfter, int? stopAfter)
    {
        var run = new RunsRoot(root).OpenRun(runId);
        var config = EffectiveConfig.FromFile(configPath);
        int fileCount = (int)config.Root["source"]!["files"]!.GetValue<long>();
        string uploads = UploadFolder(root, runId);
        Directory.CreateDirectory(uploads);
        using var attempt = run.BeginAttempt(new AttemptOptions { Config = config, Observer = new ConsoleObserver() });
        try
        {
            string[] files;
            if (attempt.BeginStep("extract") == StepAction.Run)
            {
                files = Enumerable.Range(1, fileCount).Select(i => $"file-{i:D2}.csv").ToArray();
                attempt.CompleteStep("extract", Encoding.UTF8.GetBytes(string.Join("\n", files)), "txt");
            }
            else
            {
                files = Encoding.UTF8.GetString(attempt.ReadStepOutput("extract")!).Split('\n'); // replayed, not recomputed
            }

            int uploaded = 0;
            if (attempt.BeginStep("upload") == StepAction.Run)
            {
                foreach (string file in files)
                {
                    if (attempt.BeginItem("upload", file) != ItemAction.Run)
                    {
                        continue;
                    }

                    File.WriteAllText(Path.Combine(uploads, file), $"uploaded {file} in attempt {attempt.Attempt}\n"); // the side effect
                    if (crashAfter == uploaded)
                    {
                        Process.GetCurrentProcess().Kill(); // dies after the upload, before recording it: in doubt
                    }

                    attempt.CompleteItem("upload", file, null);
                    Thread.Sleep(20);
                    if (++uploaded == stopAfter)
                    {
                        run.RequestStop("example: maintenance window", "example");
                    }
                }

                attempt.CompleteStep("upload", null);
            }

            if (attempt.BeginStep("report") == StepAction.Run)
            {
                string report = Path.Combine(Path.GetTempPath(), $"report-{runId}.txt");
                File.WriteAllText(report, $"{config.Root["report"]!["title"]}: {Directory.GetFiles(uploads).Length} files\n");
                attempt.AddArtifact(report, "report.txt");
                attempt.CompleteStep("report", null);
            }

            attempt.Complete();
        }
        catch (RunStoppedException stop)
        {
            attempt.Stop(stop.Request);
        }

        return 0;
    }

    private sealed class ConsoleObserver : IRunObserver
    {
        public void Warning(string message) => Console.WriteLine("   WARNING: " + message);

        public void Verbose(string message)
        {
        }
    }
}
