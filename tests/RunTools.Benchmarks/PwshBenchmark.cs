using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text;
using System.Text.Json;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Journal;
using RunTools.Tools;

namespace RunTools.Benchmarks;

/// <summary>
/// The pwsh family: the module as a user runs it, in the pinned PowerShell, each beside its
/// baseline in the same pwsh process. One child pwsh per benchmark runs a script from Pwsh/
/// that times both sides with a Stopwatch and prints one 'RTBENCH {json}' line; this side turns
/// it into rows and raw figures. P7 (module import) times whole child processes from here.
/// </summary>
internal sealed partial class PwshBenchmark
{
    private const string ResultPrefix = "RTBENCH ";
    private static readonly TimeSpan ChildTimeout = TimeSpan.FromMinutes(30);

    private readonly Report _report;
    private readonly PwshLocator _pwsh;
    private readonly string _module;
    private readonly string _work;
    private readonly string _scripts;
    private readonly bool _quick;
    private int _children;

    private PwshBenchmark(Report report, PwshLocator pwsh, string module, string work, bool quick)
    {
        _report = report;
        _pwsh = pwsh;
        _module = module;
        _work = Path.Combine(work, "pwsh");
        _scripts = Path.Combine(_work, "scripts");
        _quick = quick;
        Directory.CreateDirectory(_scripts);
        foreach (string name in typeof(PwshBenchmark).Assembly.GetManifestResourceNames().Where(n => n.StartsWith("Pwsh.", StringComparison.Ordinal)))
        {
            File.WriteAllBytes(Path.Combine(_scripts, name.Substring("Pwsh.".Length)), Resource(name));
        }
    }

    /// <summary>The directory holding the built module (RunTools.psd1); null with the reason when it is missing.</summary>
    public static string? FindModule(string repositoryRoot, out string reason)
    {
        string module = Path.Combine(repositoryRoot, "out", "RunTools");
        if (!File.Exists(Path.Combine(module, "RunTools.psd1")) || !File.Exists(Path.Combine(module, "RunTools.dll")))
        {
            reason = $"The pwsh benchmarks measure the built module, and {module} has none. `dotnet run -c Release --project tests/RunTools.Benchmarks` builds it (the harness references src/RunTools); with --no-build, run `dotnet build -c Release src/RunTools` first.";
            return null;
        }

        reason = string.Empty;
        return module;
    }

    /// <summary>Runs the family, or only the benchmarks named in <paramref name="selection"/> (P1..P7, D1..D3).</summary>
    public static void Run(Report report, string work, bool quick, string repositoryRoot, string module, string[]? selection)
    {
        bool Selected(string id) => selection is null || selection.Contains(id, StringComparer.OrdinalIgnoreCase);
        var pwsh = PwshLocator.Find(repositoryRoot, Console.Error.WriteLine);
        var bench = new PwshBenchmark(report, pwsh, module, work, quick);
        bench.Facts(repositoryRoot);
        int scale = quick ? 10 : 1;

        double? p1 = null;
        if (Selected("P1"))
        {
            Console.Error.WriteLine("P1/7 durable item, sequential ...");
            p1 = bench.Items("P1", items: 2000 / scale, rounds: quick ? 3 : 7, throttle: 0, baselineFromP1: null);
        }

        if (Selected("P2"))
        {
            Console.Error.WriteLine("P2/7 durable item, 8 concurrent completers ...");
            bench.Items("P2", items: 2000 / scale, rounds: quick ? 3 : 7, throttle: 8, baselineFromP1: p1);
        }

        if (Selected("P3"))
        {
            Console.Error.WriteLine("P3/7 I/O-bound fan-out ...");
            bench.FanOut(items: 1000 / (quick ? 5 : 1), sequentialItems: 200 / (quick ? 5 : 1), rounds: 3);
        }

        if (Selected("P4"))
        {
            Console.Error.WriteLine("P4/7 per-step cost vs Invoke-Build ...");
            bench.Steps(steps: quick ? 50 : 200, rounds: quick ? 3 : 5);
        }

        if (Selected("P5"))
        {
            Console.Error.WriteLine("P5/7 resume after a kill ...");
            bench.Resume(items: 100_000 / scale, rounds: 3);
        }

        if (Selected("P6"))
        {
            Console.Error.WriteLine("P6/7 Get-Run over many runs ...");
            bench.List(runs: 10_000 / scale, rounds: quick ? 3 : 5);
        }

        if (Selected("D1") || Selected("D2") || Selected("D3"))
        {
            bench.Database(repositoryRoot, Selected("D1"), Selected("D2"), Selected("D3"), scale);
        }

        if (Selected("P7"))
        {
            Console.Error.WriteLine("P7/7 module import ...");
            bench.Import(pairs: quick ? 4 : 10);
        }
    }

    private void Facts(string repositoryRoot)
    {
        _report.AddFact($"pwsh: {_pwsh.FileName} {_pwsh.Dll} (PowerShell pinned in .config/dotnet-tools.json)");
        string built = Path.Combine(repositoryRoot, "src", "RunTools", "bin", "Release", "netstandard2.0", "RunTools.dll");
        bool release = File.Exists(built) && File.ReadAllBytes(built).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(_module, "RunTools.dll")));
        _report.AddFact($"module: {_module} ({(release ? "the Release build" : "**not** the Release build of src/RunTools: figures may not be representative")})");
        _report.AddFact($"load average (1, 5, 15 min) at the start: {LoadAverage()}");
    }

    /// <summary>P1 and P2. Returns the per-item baseline seconds (for P2's row when it cannot run).</summary>
    private double? Items(string id, int items, int rounds, int throttle, double? baselineFromP1)
    {
        string section = id == "P1" ? "P1 durable item, sequential" : "P2 durable item, 8 concurrent completers";
        string name = id == "P1"
            ? $"P1. Durable item, sequential: Invoke-RunItem (empty body) in a Start-Run script, {Measure.Number(items)} items × {rounds} rounds"
            : $"P2. Durable item, Invoke-RunItem -ThrottleLimit {throttle} (empty body), {Measure.Number(items)} items × {rounds} rounds";
        string goal = id == "P1" ? "≤ 1.10×" : "≤ 0.35×";
        var json = Child(section, "Items.ps1", ("Work", Dir(id)), ("Items", items), ("Rounds", rounds), ("Throttle", throttle));
        Note(section, json);
        if (!json.GetProperty("available").GetBoolean())
        {
            _report.AddDetail(section, "Invoke-RunItem has no -ThrottleLimit parameter in this build of the module ((Get-Command Invoke-RunItem).Parameters.ContainsKey('ThrottleLimit') is false): not measured");
            _report.AddRow(new ResultRow(name, "not available (no -ThrottleLimit yet)",
                baselineFromP1 is { } b ? $"{Measure.Micros(b)} / item (raw append + fsync, from P1)" : "raw append + fsync", null, goal, null));
            return null;
        }

        int bytes = json.GetProperty("bytes_per_item").GetInt32();
        double[] measured = PerItem(Samples(json, "measured"), items);
        double[] totals = PerItem(Samples(json, "start_run_total"), items);
        double[] baseline = PerItem(Samples(json, "baseline"), items);
        double a = Measure.Median(measured);
        double bl = Measure.Median(baseline);
        _report.AddDetail(section, $"journal per item: {json.GetProperty("lines_per_item").GetDouble():0.##} lines, {bytes} B in all (the raw loop appends one line of {bytes} B per item)");
        _report.AddDetail(section, $"Invoke-RunItem per item, timed inside the run script: {Measure.List(measured, Measure.Micros)} (median {Measure.Micros(a)}, {1 / a:0} items/s)");
        _report.AddDetail(section, $"Start-Run per item, whole call (run creation and attempt included): {Measure.List(totals, Measure.Micros)} (median {Measure.Micros(Measure.Median(totals))})");
        _report.AddDetail(section, $"raw FileStream append + Flush(true), one per item: {Measure.List(baseline, Measure.Micros)} (median {Measure.Micros(bl)})");
        double[] two = PerItem(Samples(json, "baseline_two_flushes"), items);
        if (two.Length > 0)
        {
            double t = Measure.Median(two);
            _report.AddDetail(section, $"raw append + Flush(true) twice per item (the journal's two lines, each flushed, as today): {Measure.List(two, Measure.Micros)} (median {Measure.Micros(t)}, {t / bl:0.00}× the one-flush loop; Invoke-RunItem is {a / t:0.00}× it)");
        }

        _report.AddDetail(section, $"Invoke-RunItem / raw per round: {string.Join(", ", measured.Zip(baseline, (m, r) => Measure.Ratio(m / r)))}");
        _report.AddRow(new ResultRow(name, $"{Measure.Micros(a)} / item", $"{Measure.Micros(bl)} / item (raw append {bytes} B + Flush(true), same pwsh)", a / bl, goal,
            a / bl <= (id == "P1" ? 1.10 : 0.35)));
        return bl;
    }

    private void FanOut(int items, int sequentialItems, int rounds)
    {
        const string section = "P3 I/O-bound fan-out";
        var json = Child(section, "FanOut.ps1", ("Work", Dir("P3")), ("Items", items), ("SequentialItems", sequentialItems), ("Rounds", rounds), ("Throttle", 8), ("SleepMs", 50));
        Note(section, json);
        bool available = json.GetProperty("available").GetBoolean();
        double[] seq = Samples(json, "sequential");
        double[] fe = Samples(json, "foreach_parallel");
        double seqRate = sequentialItems / Measure.Median(seq);
        double feRate = items / Measure.Median(fe);
        _report.AddDetail(section, $"sequential Invoke-RunItem, {Measure.Number(sequentialItems)} items (fewer than the parallel sides, to keep the run short; throughput is per item): {Measure.List(seq, Measure.Time)} (median {Rate(seqRate)})");
        _report.AddDetail(section, $"ForEach-Object -Parallel -ThrottleLimit 8, {Measure.Number(items)} items: {Measure.List(fe, Measure.Time)} (median {Rate(feRate)}; the ideal is {8000.0 / 50:0} items/s)");
        _report.AddDetail(section, $"CPU time of the pwsh process per item (2 cores): sequential {Measure.List(PerItem(Samples(json, "sequential_cpu"), sequentialItems), Measure.Time)}; ForEach-Object -Parallel {Measure.List(PerItem(Samples(json, "foreach_parallel_cpu"), items), Measure.Time)}"
            + (available ? $"; -ThrottleLimit 8 {Measure.List(PerItem(Samples(json, "parallel_cpu"), items), Measure.Time)}" : string.Empty));
        string nameSeq = $"P3a. I/O-bound fan-out: {Measure.Number(items)} items of Start-Sleep 50 ms, Invoke-RunItem -ThrottleLimit 8 vs sequential; ratio = throughput, {rounds} rounds";
        string nameFe = $"P3b. The same vs ForEach-Object -Parallel -ThrottleLimit 8 (no durability); ratio = throughput";
        if (!available)
        {
            _report.AddDetail(section, "Invoke-RunItem has no -ThrottleLimit parameter in this build of the module: the parallel side is not measured, its baselines are");
            _report.AddRow(new ResultRow(nameSeq, "not available (no -ThrottleLimit yet)", $"{Rate(seqRate)} (sequential Invoke-RunItem, {Measure.Number(sequentialItems)} items)", null, "≥ 7× throughput", null));
            _report.AddRow(new ResultRow(nameFe, "not available (no -ThrottleLimit yet)", $"{Rate(feRate)} (ForEach-Object -Parallel)", null, "≥ 0.90× throughput", null));
            return;
        }

        double[] par = Samples(json, "parallel");
        double parRate = items / Measure.Median(par);
        _report.AddDetail(section, $"Invoke-RunItem -ThrottleLimit 8, {Measure.Number(items)} items, timed inside the run script: {Measure.List(par, Measure.Time)} (median {Rate(parRate)}); Start-Run whole: {Measure.List(Samples(json, "parallel_start_run_total"), Measure.Time)}");
        _report.AddRow(new ResultRow(nameSeq, Rate(parRate), $"{Rate(seqRate)} (sequential Invoke-RunItem, {Measure.Number(sequentialItems)} items)", parRate / seqRate, "≥ 7× throughput", parRate / seqRate >= 7));
        _report.AddRow(new ResultRow(nameFe, Rate(parRate), $"{Rate(feRate)} (ForEach-Object -Parallel)", parRate / feRate, "≥ 0.90× throughput", parRate / feRate >= 0.9));
    }

    private void Steps(int steps, int rounds)
    {
        const string section = "P4 per-step cost";
        string invokeBuild = Metadata("InvokeBuild");
        if (!File.Exists(Path.Combine(invokeBuild, "Build-Checkpoint.ps1")))
        {
            throw new InvalidOperationException($"Invoke-Build {Metadata("InvokeBuildVersion")} is not in NuGet's package folder ({invokeBuild}); the harness's PackageDownload restores it: build the harness again.");
        }

        var json = Child(section, "Steps.ps1", ("Work", Dir("P4")), ("InvokeBuild", invokeBuild), ("Steps", steps), ("Rounds", rounds));
        Note(section, json);
        double[] measured = PerItem(Samples(json, "measured"), steps);
        double[] inside = PerItem(Samples(json, "measured_inside"), steps);
        double[] baseline = PerItem(Samples(json, "baseline"), steps);
        double[] plain = PerItem(Samples(json, "invoke_build_plain"), steps);
        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        string version = json.GetProperty("invoke_build_version").GetString() ?? "?";
        _report.AddDetail(section, $"Start-Run of a script with {steps} empty Invoke-RunStep calls, whole call ÷ {steps}: {Measure.List(measured, Measure.Time)} (median {Measure.Time(a)})");
        _report.AddDetail(section, $"the same timed inside the run script (steps only): {Measure.List(inside, Measure.Time)} (median {Measure.Time(Measure.Median(inside))})");
        _report.AddDetail(section, $"Build-Checkpoint (Invoke-Build {version}) of {steps} empty tasks + one task running them, whole call ÷ {steps}: {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)})");
        _report.AddDetail(section, $"Invoke-Build without a checkpoint, the same build ÷ {steps}: {Measure.List(plain, Measure.Time)} (median {Measure.Time(Measure.Median(plain))})");
        _report.AddRow(new ResultRow($"P4. Per-step cost: Start-Run of {steps} empty Invoke-RunStep ÷ {steps}, {rounds} rounds", $"{Measure.Time(a)} / step",
            $"{Measure.Time(b)} / task (Invoke-Build {version} Build-Checkpoint, {steps} empty tasks)", a / b, "≤ 0.20×", a / b <= 0.2));
    }

    private void Resume(int items, int rounds)
    {
        const string section = "P5 resume after a kill";
        const string runId = "resume-run";
        string dir = Dir("P5");
        // Recorded as Start-Run records it: its bytes, and its path, which Resume-Run reads again.
        string scriptPath = Path.Combine(_scripts, "ResumeRun.ps1");
        byte[] script = File.ReadAllBytes(scriptPath);
        var sw = Stopwatch.StartNew();
        long journalBytes = 0;
        SynthesizeKilledRun(Path.Combine(dir, "warm"), runId, scriptPath, script, 1000);
        for (int r = 0; r < rounds; r++)
        {
            journalBytes = SynthesizeKilledRun(Path.Combine(dir, "r" + r.ToString(CultureInfo.InvariantCulture)), runId, scriptPath, script, items);
        }

        _report.AddDetail(section, $"set-up: {rounds} identical runs (one per round, as the resume completes it), each created with CreateRun, its journal then extended with attempt_started, step_started 'work' and {Measure.Number(items)} items started and completed, written with JournalWriter(durable: false); the attempt never ends and a .lock file no process holds is left, as after a kill, so run.json (from CreateRun) is stale; {Measure.Number(journalBytes)} B of journal each; made in {Measure.Time(sw.Elapsed.TotalSeconds)}");
        _report.AddDetail(section, $"the recorded script runs Invoke-RunStep work {{ 1..(N + 8) | Invoke-RunItem -Key {{ $_ }} {{ ... }} }}: the {Measure.Number(items)} done keys are skipped, the first new item's body stores a Stopwatch timestamp");
        var json = Child(section, "Resume.ps1", ("Work", dir), ("RunId", runId), ("Items", items), ("WarmItems", 1000), ("Rounds", rounds));
        Note(section, json);
        double[] first = Samples(json, "measured");
        double[] totals = Samples(json, "resume_total");
        double[] plan = Samples(json, "baseline");
        double a = Measure.Median(first);
        double b = Measure.Median(plan);
        _report.AddDetail(section, $"Resume-Run until the first new item's body starts: {Measure.List(first, Measure.Time)} (median {Measure.Time(a)}; {Measure.Micros(a / items)} per completed item)");
        _report.AddDetail(section, $"Resume-Run whole call (8 new items, step and run completed, snapshot written): {Measure.List(totals, Measure.Time)} (median {Measure.Time(Measure.Median(totals))})");
        _report.AddDetail(section, $"RunTools.Core RunDirectory.Plan(true) of the same run, called by reflection in the same pwsh before each resume: {Measure.List(plan, Measure.Time)} (median {Measure.Time(b)})");
        _report.AddRow(new ResultRow($"P5. Resume-Run of a killed run with {Measure.Number(items)} completed items and a stale run.json, until the first new item starts, {rounds} rounds",
            Measure.Time(a), $"{Measure.Time(b)} (Core Plan of the same run, same pwsh)", a / b, "≤ 0.5 s", a <= 0.5));
    }

    private void List(int runs, int rounds)
    {
        const string section = "P6 Get-Run over many runs";
        string root = Path.Combine(Dir("P6"), "runs");
        var sw = Stopwatch.StartNew();
        int tails = ListBenchmark.CreateRuns(new RunsRoot(root), runs, tailEvery: 33);
        _report.AddDetail(section, $"set-up: {Measure.Number(runs)} runs made as for Core benchmark 3 (CreateRun, {tails} with a journal tail after the snapshot, reading as Interrupted) in {Measure.Time(sw.Elapsed.TotalSeconds)}");
        var json = Child(section, "List.ps1", ("Root", root), ("Runs", runs), ("Rounds", rounds));
        Note(section, json);
        double[] measured = Samples(json, "measured");
        double[] baseline = Samples(json, "baseline");
        double[] core = Samples(json, "core_list");
        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        _report.AddDetail(section, $"@(Get-Run -Root <root>): {Measure.List(measured, Measure.Time)} (median {Measure.Time(a)}, {Measure.Micros(a / runs)} per run)");
        _report.AddDetail(section, $"foreach over [IO.Directory]::EnumerateDirectories + [IO.File]::ReadAllBytes(run.json) in pwsh: {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)})");
        double c = Measure.Median(core);
        _report.AddDetail(section, $"RunTools.Core RunsRoot.ListRuns() alone, called by reflection in the same pwsh: {Measure.List(core, Measure.Time)} (median {Measure.Time(c)}); the cmdlet adds {Measure.Time(a - c)} (RunInfo objects, filtering, the pipeline)");
        LaterRoundsDetail(section, json, "Get-Run", "the raw reads");
        _report.AddRow(new ResultRow($"P6. Get-Run over {Measure.Number(runs)} runs ({tails} with a journal tail), {rounds} rounds", Measure.Time(a),
            $"{Measure.Time(b)} (ReadAllBytes of every run.json, same pwsh)", a / b, "≤ 1.50×", a / b <= 1.5));
    }

    /// <summary>
    /// The rounds a listing script ran after those of the ratio: further into the runtime's
    /// tiered-compilation warm-up, which dominates the first rounds after one warm-up call
    /// (performance.md, stop 23). Reported beside the ratio, never in place of it.
    /// </summary>
    private void LaterRoundsDetail(string section, JsonElement json, string measuredName, string baselineName)
    {
        double[] measured = Samples(json, "later_measured");
        double[] baseline = Samples(json, "later_baseline");
        if (measured.Length == 0 || baseline.Length == 0)
        {
            return;
        }

        double a = Measure.Median(measured);
        double b = Measure.Median(baseline);
        _report.AddDetail(section, $"the next {measured.Length} rounds in the same pwsh, later in the runtime's tiered-compilation warm-up (not in the ratio): {measuredName} {Measure.List(measured, Measure.Time)} (median {Measure.Time(a)}), {baselineName} {Measure.List(baseline, Measure.Time)} (median {Measure.Time(b)}): {a / b:0.00}×");
    }

    private void Import(int pairs)
    {
        const string section = "P7 module import";
        string dir = Dir("P7");
        string emptyRoot = Path.Combine(dir, "empty");
        Directory.CreateDirectory(emptyRoot);
        string quoted = "'" + _module.Replace("'", "''", StringComparison.Ordinal) + "'";
        string[] bare = { "-NoProfile", "-Command", "$null" };
        string[] import = { "-NoProfile", "-Command", "Import-Module " + quoted };
        string[] firstUse = { "-NoProfile", "-Command", $"Import-Module {quoted}; $null = Get-Run -Root '{emptyRoot.Replace("'", "''", StringComparison.Ordinal)}'" };
        string load0 = LoadAverage();

        // Warm-up, untimed: the file cache for pwsh, the module and the runtime.
        _ = ProcessSeconds(bare, dir);
        _ = ProcessSeconds(firstUse, dir);
        var a = new List<double>();
        var b = new List<double>();
        var c = new List<double>();
        for (int i = 0; i < pairs; i++)
        {
            b.Add(ProcessSeconds(bare, dir));
            a.Add(ProcessSeconds(import, dir));
            c.Add(ProcessSeconds(firstUse, dir));
        }

        double ma = Measure.Median(a);
        double mb = Measure.Median(b);
        double mc = Measure.Median(c);
        _report.AddDetail(section, $"load average before: {load0}; after: {LoadAverage()}");
        _report.AddDetail(section, $"each a real process, `{Path.GetFileName(_pwsh.FileName)} {_pwsh.Dll} <arguments>`, timed from Process.Start to exit; {pairs} rounds, interleaved");
        _report.AddDetail(section, $"pwsh -NoProfile -Command '$null': {Measure.List(b, Measure.Time)} (median {Measure.Time(mb)})");
        _report.AddDetail(section, $"pwsh -NoProfile -Command 'Import-Module <out/RunTools>': {Measure.List(a, Measure.Time)} (median {Measure.Time(ma)}, +{Measure.Time(ma - mb)})");
        _report.AddDetail(section, $"the same, then a first Get-Run on an empty root (loads RunTools.Core and its dependencies): {Measure.List(c, Measure.Time)} (median {Measure.Time(mc)}, +{Measure.Time(mc - mb)} over the bare start)");
        _report.AddRow(new ResultRow($"P7. Module import: pwsh -NoProfile -Command 'Import-Module out/RunTools', start to exit, median of {pairs}",
            $"{Measure.Time(ma)} (+{Measure.Time(ma - mb)})", $"{Measure.Time(mb)} (pwsh -NoProfile -Command '$null')", ma / mb, "≤ +150 ms over the bare start", ma - mb <= 0.150));
    }

    /// <summary>Runs one benchmark script in a fresh child pwsh and returns its result object.</summary>
    private JsonElement Child(string section, string script, params (string Name, object Value)[] parameters)
    {
        var arguments = new List<string> { "-NoProfile", "-NonInteractive", "-File", Path.Combine(_scripts, script), "-Module", _module };
        foreach (var (name, value) in parameters)
        {
            arguments.Add("-" + name);
            arguments.Add(Convert.ToString(value, CultureInfo.InvariantCulture)!);
        }

        string load0 = LoadAverage();
        var sw = Stopwatch.StartNew();
        var result = _pwsh.Run(arguments, ChildTimeout, _work, new Dictionary<string, string> { ["NO_COLOR"] = "1" },
            line => Console.Error.WriteLine(line.StartsWith(ResultPrefix, StringComparison.Ordinal) ? "  (result received)" : "  pwsh> " + line));
        string? line = result.StandardOutput.Split('\n').Select(l => l.TrimEnd('\r')).LastOrDefault(l => l.StartsWith(ResultPrefix, StringComparison.Ordinal));
        if (result.ExitCode != 0 || line is null)
        {
            throw new InvalidOperationException($"{script} failed in pwsh (exit code {result.ExitCode}). It printed:\n{result.Output}");
        }

        _children++;
        _report.AddDetail(section, $"load average (1, 5, 15 min) before: {load0}; after: {LoadAverage()}; child pwsh ran {Measure.Time(sw.Elapsed.TotalSeconds)}");
        using var doc = JsonDocument.Parse(line.Substring(ResultPrefix.Length));
        return doc.RootElement.Clone();
    }

    private void Note(string section, JsonElement json)
    {
        if (_children == 1)
        {
            _report.AddFact($"PowerShell {json.GetProperty("pwsh_version").GetString()} on {json.GetProperty("pwsh_runtime").GetString()}; Invoke-RunItem -ThrottleLimit: {(json.GetProperty("throttle_limit_available").GetBoolean() ? "present" : "not in this build")}");
        }
    }

    private double ProcessSeconds(string[] arguments, string workingDirectory)
    {
        // Output is read by PwshLocator as on every other child; the cost is the same for each variant.
        long start = Stopwatch.GetTimestamp();
        var result = _pwsh.Run(arguments, TimeSpan.FromMinutes(2), workingDirectory);
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        if (result.ExitCode != 0)
        {
            throw new InvalidOperationException($"pwsh {string.Join(" ", arguments)} exited with {result.ExitCode}. It printed:\n{result.Output}");
        }

        return seconds;
    }

    /// <summary>A run as a kill leaves it: an attempt that completed <paramref name="items"/> items (keys "1".."N") mid-step, and a stale run.json.</summary>
    private static long SynthesizeKilledRun(string rootPath, string runId, string scriptPath, byte[] script, int items)
    {
        var run = new RunsRoot(rootPath).CreateRun(new RunCreateOptions { Name = "resume", RunId = runId, Config = EffectiveConfig.Empty, Script = script, ScriptSourcePath = scriptPath });
        var stored = run.ReadState();
        long length = new FileInfo(run.JournalPath).Length;
        var ts = DateTimeOffset.UtcNow;
        using (var journal = new JournalWriter(run.JournalPath, length, stored.Journal.Sequence))
        {
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
            for (int i = 1; i <= items; i++)
            {
                string key = i.ToString(CultureInfo.InvariantCulture);
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

        File.WriteAllBytes(Path.Combine(run.Path, RunFormat.LockFile), Array.Empty<byte>());
        return new FileInfo(run.JournalPath).Length;
    }

    private string Dir(string id)
    {
        string dir = Path.Combine(_work, id);
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static double[] Samples(JsonElement json, string name)
    {
        // ConvertTo-Json writes a one-element array as a bare number.
        var value = json.GetProperty(name);
        return value.ValueKind == JsonValueKind.Array ? value.EnumerateArray().Select(v => v.GetDouble()).ToArray()
            : value.ValueKind == JsonValueKind.Number ? new[] { value.GetDouble() }
            : Array.Empty<double>();
    }

    private static double[] PerItem(double[] seconds, int count) => seconds.Select(s => s / count).ToArray();

    private static string Rate(double perSecond) => perSecond.ToString("0.0", CultureInfo.InvariantCulture) + " items/s";

    private static string LoadAverage()
    {
        try
        {
            string[] parts = File.ReadAllText("/proc/loadavg").Split(' ');
            return string.Join(", ", parts.Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static byte[] Resource(string name)
    {
        using var stream = typeof(PwshBenchmark).Assembly.GetManifestResourceStream(name) ?? throw new InvalidOperationException($"resource {name} is missing");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string Metadata(string key) =>
        typeof(PwshBenchmark).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().FirstOrDefault(a => a.Key == key)?.Value
        ?? throw new InvalidOperationException($"assembly metadata {key} is missing");
}
