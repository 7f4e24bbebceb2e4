using System;
using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Threading;
using RunTools;
using RunTools.Core;
using RunTools.Core.Archive;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;

namespace RunTools.TestDriver;

// A child process for the crash and lock tests. It drives runs through RunTools.Core exactly as an
// embedding program would, and prints one line per milestone so the parent knows when to kill it.
//
//   drive <root> <runId> <items> <sideEffectFile> [inDoubt] [killPoint] [parallel=N]
//                                                             create (or resume) and run to the end; at
//                                                             killPoint (see CrashWorkload) say AT and hang;
//                                                             parallel=N runs up to N work items at once
//   hold <runPath> <milliseconds>                             own a run, say OWNER, wait, exit without finishing
//   race <runPath> <goFile>                                   wait for goFile, try to own the run, print OWNER or LOCKED
//   convert <legacyDir> <stage>                               convert a legacy directory; print STAGE lines, hang at <stage>
//   export <runPath> <destination>                            export with Force; after the first file say EXPORTING and stall
//   import <archive> <root>                                   import with Force; after the first file say IMPORTING and stall
//   contend <resume|remove|status> <runPath> <goFile|-> <ms>  (after goFile appears) own the run for ms and say OWNER <pid>,
//                                                             or delete it (REMOVED <pid>), or print STATUS <derived status>;
//                                                             a refusal says LOCKED <holder pid|none> or ERROR <id>
internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            // parallel=N may trail any drive command line; the positional arguments keep their places.
            int parallel = 1;
            if (args[0] == "drive" && args[^1].StartsWith("parallel=", StringComparison.Ordinal))
            {
                parallel = int.Parse(args[^1].Substring("parallel=".Length), System.Globalization.CultureInfo.InvariantCulture);
                args = args[..^1];
            }

            return args[0] switch
            {
                "drive" => CrashWorkload.Drive(args[1], args[2], int.Parse(args[3]), args[4], args.Length > 5 ? Enum.Parse<InDoubtAction>(args[5]) : InDoubtAction.Retry, Console.Out, args.Length > 6 && args[6].Length > 0 ? args[6] : null, parallel),
                "hold" => Hold(args[1], int.Parse(args[2])),
                "race" => Race(args[1], args[2]),
                "convert" => Convert(args[1], args[2]),
                "export" => Export(args[1], args[2]),
                "import" => Import(args[1], args[2]),
                "contend" => Contend(args[1], args[2], args[3], int.Parse(args[4])),
                _ => 64,
            };
        }
        catch (RunToolsException ex)
        {
            Console.Out.WriteLine($"ERROR {ex.ErrorId} {ex.Message}");
            Console.Out.Flush();
            return 3;
        }
    }

    private static int Hold(string runPath, int milliseconds)
    {
        var run = RunDirectory.Open(runPath);
        using var attempt = run.BeginAttempt();
        Console.Out.WriteLine("OWNER " + Environment.ProcessId);
        Console.Out.Flush();
        Thread.Sleep(milliseconds);
        return 0;
    }

    private static int Convert(string legacyDir, string hangAt)
    {
        var result = RunTools.Core.Conversion.LegacyConversion.Convert(legacyDir, new RunTools.Core.Conversion.ConversionOptions { Observer = new StageObserver(hangAt) });
        Console.Out.WriteLine($"DONE {result.ItemsCompleted}");
        return 0;
    }

    // The progress callback runs on the exporting thread, so stalling in it freezes the export
    // midway: the parent's kill then lands with a partial temp archive / staging folder on disk.
    private static int Export(string runPath, string destination)
    {
        RunArchive.Export(RunDirectory.Open(runPath), new ArchiveExportOptions { DestinationPath = destination, Force = true, Progress = StallAfterFirstFile("EXPORTING") });
        Console.Out.WriteLine("DONE");
        return 0;
    }

    private static int Import(string archive, string root)
    {
        RunArchive.Import(archive, new RunsRoot(root), new ArchiveImportOptions { Force = true, Progress = StallAfterFirstFile("IMPORTING") });
        Console.Out.WriteLine("DONE");
        return 0;
    }

    private static Action<ArchiveProgress> StallAfterFirstFile(string milestone) => progress =>
    {
        if (progress.FilesDone >= 1 && progress.CurrentFile is not null)
        {
            Console.Out.WriteLine(milestone + " " + progress.FilesDone);
            Console.Out.Flush();
            Thread.Sleep(Timeout.Infinite);
        }
    };

    private static int Contend(string operation, string runPath, string goFile, int milliseconds)
    {
        while (goFile != "-" && !File.Exists(goFile))
        {
            Thread.Sleep(1);
        }

        try
        {
            var run = RunDirectory.Open(runPath);
            switch (operation)
            {
                case "resume":
                    using (run.BeginAttempt())
                    {
                        Console.Out.WriteLine("OWNER " + Environment.ProcessId);
                        Console.Out.Flush();
                        Thread.Sleep(milliseconds);
                    }

                    break;
                case "remove":
                    run.Delete();
                    Console.Out.WriteLine("REMOVED " + Environment.ProcessId);
                    break;
                default:
                    Console.Out.WriteLine("STATUS " + run.ReadState().Status);
                    break;
            }
        }
        catch (RunLockedException ex)
        {
            Console.Out.WriteLine("LOCKED " + (ex.Owner is null ? "none" : ex.Owner.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        Console.Out.Flush();
        return 0;
    }

    private static int Race(string runPath, string goFile)
    {
        var run = RunDirectory.Open(runPath);
        while (!File.Exists(goFile))
        {
            Thread.Sleep(1);
        }

        try
        {
            using var attempt = run.BeginAttempt();
            Console.Out.WriteLine("OWNER");
            Console.Out.Flush();
            Thread.Sleep(1500);
            return 0;
        }
        catch (RunLockedException)
        {
            Console.Out.WriteLine("LOCKED");
            return 0;
        }
    }
}

/// <summary>
/// The crash test's workload: a step with output, a step of items whose side effect is a durable
/// append to a file, and a last step. Public so the tests can also finish a run in-process.
/// </summary>
public static class CrashWorkload
{
    /// <summary>
    /// Where a driver can be told to stop dead (say "AT point" and hang until the parent kills it).
    /// The item points take the item's index after a colon: "item_started:7".
    /// </summary>
    public static class KillPoints
    {
        /// <summary>BeginItem returned Run: item_started is durable, the side effect has not happened.</summary>
        public const string ItemStarted = "item_started";

        /// <summary>The side effect is durable, item_completed is not written.</summary>
        public const string ItemEffect = "item_effect";

        /// <summary>CompleteItem returned: item_completed is written (a kill cannot take it back; fsync follows with the next intent).</summary>
        public const string ItemCompleted = "item_completed";

        /// <summary>Inside CompleteStep("prepare"): the output file is written, step_completed is not.</summary>
        public const string StepOutput = "step_output";

        /// <summary>Inside the final snapshot: run_completed is durable, state.json's temp file is full and not renamed.</summary>
        public const string FinalSnapshot = "final_snapshot";

        // The step points take the step's name after a colon ("step_effect:finish"); the plain
        // steps are prepare and finish (work is items-only).

        /// <summary>BeginStep returned Run: step_started is durable, the step's side effect has not happened.</summary>
        public const string StepStarted = "step_started";

        /// <summary>The step's side effect is durable, CompleteStep has not been called.</summary>
        public const string StepEffect = "step_effect";

        /// <summary>CompleteStep returned: step_completed is durable.</summary>
        public const string StepCompleted = "step_completed";

        /// <summary>
        /// Parallel mode only, "journal_flush:N": the N-th wait for an intent's flush in the work step
        /// (a StartItem on a worker, whose item_started is written and shares a group flush with the
        /// other workers' intents). The kill lands before that flush returns: the item's side effect has not happened.
        /// </summary>
        public const string JournalFlush = "journal_flush";

        /// <summary>
        /// "retry_wait:N": item N fails its first try before its side effect (item_failed with a
        /// retry wait is durable) and the driver then sits in RunAttempt.WaitBeforeRetry when the
        /// kill lands. The item is failed, not in doubt: a resume tries it again under any policy.
        /// </summary>
        public const string RetryWait = "retry_wait";
    }

    /// <summary>The wait a retry_wait item asks for: longer than any test waits to kill it.</summary>
    public static readonly TimeSpan RetryWaitDelay = TimeSpan.FromSeconds(120);

    /// <summary>Where a driver records the side effects of its plain steps (one line per run of a step).</summary>
    public static string StepEffectsFile(string sideEffectFile) => sideEffectFile + ".steps";

    /// <param name="parallel">How many work items run at once: 1 runs them one by one on this thread; more claims each key here and runs the item on one of that many worker threads.</param>
    public static int Drive(string root, string runId, int items, string sideEffectFile, InDoubtAction inDoubt, TextWriter output, string? killPoint = null, int parallel = 1)
    {
        if (parallel > 1)
        {
            output = TextWriter.Synchronized(output);
        }

        // Once one thread stopped dead at the kill point, the other workers stop at their next
        // milestone too, so the kill finds every item in flight at a known place.
        int frozen = 0;

        void StopDeadAt(string point)
        {
            Volatile.Write(ref frozen, 1);
            output.WriteLine("AT " + point);
            output.Flush();
            Thread.Sleep(Timeout.Infinite);
        }

        void At(string point, int index)
        {
            if (killPoint == point + ":" + index.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                StopDeadAt(killPoint);
            }

            FreezeIfStopped();
        }

        void FreezeIfStopped()
        {
            if (parallel > 1 && Volatile.Read(ref frozen) == 1)
            {
                Thread.Sleep(Timeout.Infinite);
            }
        }

        // retry_wait:N: the item's first try fails (before its side effect), the failure is recorded
        // with the wait before the next try, and the kill lands inside that wait.
        void FailFirstTryAndWait(RunAttempt attempt, string key, int index)
        {
            if (killPoint != KillPoints.RetryWait + ":" + index.ToString(System.Globalization.CultureInfo.InvariantCulture))
            {
                return;
            }

            attempt.FailItem("work", key, new UnitFailure("transient failure (driver)") { ErrorId = "DriverTransient", Try = 1, RetryIn = RetryWaitDelay });
            Volatile.Write(ref frozen, 1);

            // Said from the wait's second poll, so the kill lands inside WaitBeforeRetry itself.
            int polls = 0;
            attempt.WaitBeforeRetry(RetryWaitDelay, () =>
            {
                if (++polls == 2)
                {
                    output.WriteLine("AT " + killPoint);
                    output.Flush();
                }

                return false;
            });
            Thread.Sleep(Timeout.Infinite);
        }

        // The key whose StartItem runs on this thread (parallel mode), to count intent flushes.
        var starting = new ThreadLocal<string?>();
        int intentFlushes = 0;

        var runs = new RunsRoot(root);
        RunDirectory run;
        try
        {
            run = runs.OpenRun(runId);
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.RunNotFound)
        {
            var config = EffectiveConfig.FromDictionary(new Dictionary<string, object?> { ["items"] = items });
            run = runs.CreateRun(new RunCreateOptions { Name = "crash", RunId = runId, Config = config, Script = Encoding.UTF8.GetBytes("# driver") });
        }

        if (run.ReadState().Status == RunStatus.Completed)
        {
            output.WriteLine("DONE");
            return 0;
        }

        RunAttempt? current = null;
        var options = new AttemptOptions { InDoubt = inDoubt };
        if (killPoint is not null)
        {
            // Points inside Core that no public call separates come through the internal seam.
            options.CrashPoint = name =>
            {
                if ((name == "step_output_written" && killPoint == KillPoints.StepOutput && current?.ActiveStep == "prepare")
                    || (name == "snapshot_unrenamed" && killPoint == KillPoints.FinalSnapshot && current?.IsFinished == true))
                {
                    StopDeadAt(killPoint);
                }

                if (name == "journal_flush" && starting.Value is { } key)
                {
                    int n = Interlocked.Increment(ref intentFlushes);
                    if (killPoint == KillPoints.JournalFlush + ":" + n.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    {
                        output.WriteLine("FLUSH " + key);
                        StopDeadAt(killPoint);
                    }

                    FreezeIfStopped();
                }
            };
        }

        using var attempt = run.BeginAttempt(options);
        current = attempt;
        output.WriteLine("READY");
        output.Flush();

        // A plain step: its work is the step itself, so a kill inside it leaves it in doubt.
        void PlainStep(string name, byte[]? output)
        {
            if (attempt.BeginStep(name) != StepAction.Run)
            {
                return;
            }

            AtStep(KillPoints.StepStarted, name);
            AppendLine(StepEffectsFile(sideEffectFile), name);
            AtStep(KillPoints.StepEffect, name);
            attempt.CompleteStep(name, output, output is null ? null : "txt");
            AtStep(KillPoints.StepCompleted, name);
        }

        void AtStep(string point, string step)
        {
            if (killPoint == point + ":" + step)
            {
                StopDeadAt(killPoint);
            }
        }

        PlainStep("prepare", Encoding.UTF8.GetBytes("prepared"));

        // Items only: the step's work is its items, whose doubt is kept per key.
        var work = attempt.BeginStep("work", null, itemsOnly: true);
        if (work == StepAction.Run && parallel > 1)
        {
            RunItemsInParallel();
            attempt.CompleteStep("work", null);
        }
        else if (work == StepAction.Run)
        {
            for (int i = 0; i < items; i++)
            {
                string key = "k" + i.ToString("D3");
                if (attempt.BeginItem("work", key) != ItemAction.Run)
                {
                    continue;
                }

                // Tells the parent which item is under way, so that random kills can aim at the work step.
                output.WriteLine("ITEM " + key);
                output.Flush();
                FailFirstTryAndWait(attempt, key, i);
                At(KillPoints.ItemStarted, i);

                // The side effect: durable, like an order sent or a file uploaded.
                AppendLine(sideEffectFile, key);

                At(KillPoints.ItemEffect, i);
                attempt.CompleteItem("work", key, Encoding.UTF8.GetBytes("out-" + key));
                At(KillPoints.ItemCompleted, i);
            }

            attempt.CompleteStep("work", null);
        }

        // The work step with up to `parallel` items in flight: keys are decided and claimed here, in
        // order, and each item's intent, side effect and completion happen on a worker thread.
        void RunItemsInParallel()
        {
            using var slots = new SemaphoreSlim(parallel);
            var workers = new List<Thread>();
            for (int i = 0; i < items; i++)
            {
                string key = "k" + i.ToString("D3");
                int index = i;
                slots.Wait();
                if (attempt.ClaimItem("work", key) != ItemAction.Run)
                {
                    slots.Release();
                    continue;
                }

                var worker = new Thread(() =>
                {
                    FreezeIfStopped();
                    starting.Value = key;
                    attempt.StartItem("work", key);
                    starting.Value = null;
                    output.WriteLine("ITEM " + key);
                    output.Flush();
                    FailFirstTryAndWait(attempt, key, index);
                    At(KillPoints.ItemStarted, index);
                    AppendLine(sideEffectFile, key);
                    At(KillPoints.ItemEffect, index);
                    attempt.CompleteItem("work", key, Encoding.UTF8.GetBytes("out-" + key));
                    At(KillPoints.ItemCompleted, index);
                    slots.Release();
                })
                { IsBackground = true, Name = "item " + key };
                workers.Add(worker);
                worker.Start();
            }

            foreach (var worker in workers)
            {
                worker.Join();
            }
        }

        PlainStep("finish", null);

        attempt.Complete();
        output.WriteLine("DONE");
        return 0;
    }

    // FileMode.Append seeks to the end and writes there (no O_APPEND), so concurrent workers
    // would overwrite each other's lines: one append at a time.
    private static readonly object s_appendGate = new();

    private static void AppendLine(string path, string text)
    {
        lock (s_appendGate)
        {
            using var effect = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            byte[] line = Encoding.UTF8.GetBytes(text + "\n");
            effect.Write(line, 0, line.Length);
            effect.Flush(true);
        }
    }
}

/// <summary>Prints each conversion stage; at the chosen one it hangs so that the parent can kill the process there.</summary>
internal sealed class StageObserver : IRunObserver
{
    private const string Prefix = "Conversion stage: ";
    private readonly string _hangAt;

    public StageObserver(string hangAt) => _hangAt = hangAt;

    public void Warning(string message)
    {
    }

    public void Verbose(string message)
    {
        if (!message.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return;
        }

        string stage = message.Substring(Prefix.Length);
        Console.Out.WriteLine("STAGE " + stage);
        Console.Out.Flush();
        if (stage == _hangAt)
        {
            Thread.Sleep(Timeout.Infinite);
        }
    }
}
