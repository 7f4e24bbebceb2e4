using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Archive;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Conversion;

namespace RunTools.Core.Tests.Corpus;

/// <summary>
/// The Core calls a case's "core" object can name. Each returns a short, stable summary of what
/// it accepted ("status=Completed", "valid=False"), which the case's "accept" must equal.
/// </summary>
internal static class CorpusOperations
{
    public static string Invoke(CorpusSetup setup, JsonObject op)
    {
        string Arg(string name) => setup.Expand((string?)op[name] ?? throw new InvalidDataException($"operation {op["op"]} needs \"{name}\""));
        string PathArg(string name) => setup.Full(Arg(name));
        string? Optional(string name) => op[name] is { } v ? setup.Expand((string)v!) : null;

        switch ((string)op["op"]!)
        {
            case "config.file":
                return Summary(EffectiveConfig.FromFile(PathArg("path")));
            case "config.text":
                return Summary(EffectiveConfig.FromText(Arg("text"), Enum.Parse<ConfigFormat>(Arg("format"))));
            case "config.stored":
                return Summary(RunDirectory.Open(PathArg("path")).ReadConfig());
            case "id.run":
                return RunId.Validate(Arg("value"));
            case "id.step":
                return PortableName.ValidateStepName(Arg("value"));
            case "id.name":
                return RunsRoot.ValidateName(Arg("value"));
            case "root.new":
                return new RunsRoot(Arg("path")).Path.Length > 0 ? "root" : "none";
            case "root.open":
                return "opened=" + new RunsRoot(PathArg("root")).OpenRun(Arg("id")).RunId;
            case "root.list":
                return ListSummary(new RunsRoot(PathArg("root")).ListRuns());
            case "root.create":
                return "created=" + new RunsRoot(PathArg("root")).CreateRun(new RunCreateOptions
                {
                    Name = Optional("name") ?? "corpus",
                    RunId = Optional("id"),
                    Script = Encoding.UTF8.GetBytes("# corpus"),
                    DeclaredSteps = (op["steps"] as JsonArray)?.Select(s => (string)s!).ToList(),
                }).RunId;
            case "run.open":
                return "opened=" + RunDirectory.Open(PathArg("path")).RunId;
            case "run.state":
                var state = RunDirectory.Open(PathArg("path")).ReadState();
                return $"status={state.Status}";
            case "run.test":
                var test = RunDirectory.Open(PathArg("path")).Test();
                return $"valid={test.IsValid}";
            case "run.events":
                return "events=" + RunDirectory.Open(PathArg("path")).ReadEvents().Count().ToString(CultureInfo.InvariantCulture);
            case "run.scan":
                var scan = RunDirectory.Open(PathArg("path")).ScanJournal();
                return $"lines={scan.ValidLines} corrupt={scan.CorruptLines.Count} gaps={scan.SequenceGaps.Count} torn={scan.TornTailLength > 0}";
            case "run.plan":
                var plan = RunDirectory.Open(PathArg("path")).Plan();
                return $"next={plan.FirstUnfinishedStep ?? "-"} indoubt={plan.InDoubt.Count} problems={plan.IntegrityProblems.Count}";
            case "run.resume":
                return Resume(RunDirectory.Open(PathArg("path")), op, setup);
            case "run.stop":
                RunDirectory.Open(PathArg("path")).RequestStop("corpus");
                return "stop requested";
            case "run.delete":
                RunDirectory.Open(PathArg("path")).Delete();
                return "deleted";
            case "run.compare":
                return "differences=" + RunComparer.Compare(RunDirectory.Open(PathArg("path")), RunDirectory.Open(PathArg("other"))).Count.ToString(CultureInfo.InvariantCulture);
            case "archive.export":
                var export = RunArchive.Export(RunDirectory.Open(PathArg("path")), new ArchiveExportOptions { DestinationPath = PathArg("destination"), Force = (bool?)op["force"] ?? false });
                return "exported=" + Path.GetFileName(export.Path);
            case "archive.import":
                return "imported=" + RunArchive.Import(PathArg("path"), new RunsRoot(PathArg("root")), new ArchiveImportOptions { Force = (bool?)op["force"] ?? false }).RunId;
            case "legacy.convert":
                var result = LegacyConversion.Convert(PathArg("path"), new ConversionOptions
                {
                    Format = Enum.Parse<LegacyFormat>(Optional("format") ?? "Auto"),
                    Steps = (op["steps"] as JsonArray)?.Select(s => new DeclaredStep((string)s!, Array.Empty<string>())).ToList(),
                });
                return $"converted={result.Run.RunId} format={LegacyConversion.LegacyFormatName(result.Format)}";
            default:
                throw new InvalidDataException($"unknown core operation '{op["op"]}'");
        }
    }

    private static string Summary(EffectiveConfig config) => "keys=" + config.Root.Count.ToString(CultureInfo.InvariantCulture);

    private static string ListSummary(IReadOnlyList<RunListing> listings) =>
        "runs=" + listings.Count.ToString(CultureInfo.InvariantCulture)
        + " errors=" + string.Join(",", listings.Where(l => l.Error is not null).Select(l => l.Error!.ErrorId));

    /// <summary>
    /// A resume as the module does it: an attempt on the run, then the units the case names
    /// ("units": [{"step": "s"}, {"step": "s", "item": "k"}, {"step": "s", "artifact": "name", "source": "file"}]),
    /// then completion.
    /// </summary>
    private static string Resume(RunDirectory run, JsonObject op, CorpusSetup setup)
    {
        using var attempt = run.BeginAttempt();
        var begun = new HashSet<string>(StringComparer.Ordinal);
        foreach (var node in op["units"] as JsonArray ?? new JsonArray())
        {
            string step = setup.Expand((string)node!["step"]!);
            if (begun.Add(step))
            {
                attempt.BeginStep(step);
            }

            if (node["item"] is { } item)
            {
                string key = setup.Expand((string)item!);
                attempt.BeginItem(step, key);
                attempt.CompleteItem(step, key, null);
            }

            if (node["artifact"] is { } artifact)
            {
                attempt.AddArtifact(setup.Full((string)node["source"]!), setup.Expand((string)artifact!));
            }
        }

        foreach (string step in begun)
        {
            attempt.CompleteStep(step, null);
        }

        return "status=" + attempt.Complete().Status;
    }
}
