using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using RunTools.Core.Tests.Corpus;
using Xunit;

namespace RunTools.Core.Tests;

/// <summary>
/// The bad-input corpus through Core (issue 11, Proof): every case of tests/corpus/cases/*.json
/// that has a "core" operation, each on its own thread under a timeout. A case passes when the
/// operation ends within the timeout with exactly the expected RunToolsException (stable ErrorId,
/// a message with a next step) or with the expected accepted result, and nothing else escapes.
/// A case marked "knownFailing" that still fails is reported as skipped "known bug: ..."; once it
/// passes it counts as passed (and says its marker can go).
/// </summary>
public sealed class CorpusTests : IClassFixture<CorpusTests.Templates>
{
    private readonly TemplateRuns _templates;

    public CorpusTests(Templates templates) => _templates = templates.Runs;

    public static TheoryData<string> CoreCases()
    {
        var data = new TheoryData<string>();
        foreach (var c in CorpusCase.LoadAll().Where(c => c.Core is not null))
        {
            data.Add(c.Id);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(CoreCases))]
    public void Case(string id)
    {
        var c = CorpusCase.LoadAll().Single(x => x.Id == id);
        if (c.KnownFailing is { } symptom && c.Unsafe)
        {
            Assert.Skip($"known bug: {symptom} (not run in-process: it would take the test host down)");
        }

        string? failure = Judge(c, Execute(c));
        if (c.KnownFailing is { } known)
        {
            if (failure is not null)
            {
                Assert.Skip($"known bug: {known} (now: {failure})");
            }

            TestContext.Current.SendDiagnosticMessage($"corpus case {id} passes: its knownFailing marker can be removed");
            return;
        }

        Assert.True(failure is null, $"{id}: {failure}");
    }

    [Fact]
    public void TheCorpusHasEnoughUniqueCasesInEveryRequiredFamily()
    {
        var manifest = CorpusManifest.Load();
        var cases = CorpusCase.LoadAll();
        Assert.True(cases.Count >= manifest.MinimumCases, $"{cases.Count} cases, at least {manifest.MinimumCases} wanted");
        var duplicates = cases.GroupBy(c => c.Id).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.Empty(duplicates);
        Assert.Empty(manifest.RequiredFamilies.Except(cases.Select(c => c.Family)));
        Assert.All(cases, c => Assert.True(c.Core is not null || c.Node["ps"] is not null, $"{c.Id} has neither a core nor a ps operation"));
    }

    [Fact]
    public void EveryExpectedErrorIdExistsUnlessTheCaseWaitsForIt()
    {
        // A case may expect an ErrorId another part of issue 11 is adding; it must then be marked known failing.
        var ids = typeof(ErrorIds).GetFields(BindingFlags.Public | BindingFlags.Static).Select(f => (string)f.GetValue(null)!).ToHashSet();
        ids.Add("ParameterArgumentValidationError"); // PowerShell's own, for an empty mandatory parameter
        var missing = CorpusCase.LoadAll()
            .SelectMany(c => new[] { ("core", c.Node["coreExpect"] ?? c.Node["expect"], c.KnownFailing), ("ps", c.Node["psExpect"] ?? c.Node["expect"], (string?)c.Node["knownFailing"]?["ps"]) }
                .Select(t => (c.Id, t.Item1, Error: (string?)t.Item2?["error"], t.Item3)))
            .Where(t => t.Error is not null && !ids.Contains(t.Error) && t.Item4 is null)
            .Select(t => $"{t.Id} ({t.Item2}): {t.Error}")
            .ToList();
        Assert.Empty(missing);
    }

    [Theory]
    [InlineData("Run 'x' is already completed; there is nothing to resume. Start a new run to do the work again.", true)]
    [InlineData("'a b' is not a valid run id: it contains ' '. Use 1 to 100 characters.", true)]
    [InlineData("No run 'x' under '/r'. List the runs there with Get-Run, or pass the right -Root.", true)]
    [InlineData("Config file '/c.json' is not valid JSON at line 1, column 2: bad. Fix the file and try again.", true)]
    [InlineData("Run 'x' could not be read: Access to the path is denied.", false)]
    [InlineData("The archive is corrupt.", false)]
    [InlineData("Value cannot be null. (Parameter 'path')", false)]
    public void TheNextStepHeuristicTellsAdviceFromAMereReport(string message, bool hasNextStep) =>
        Assert.Equal(hasNextStep, CorpusManifest.Load().NextStep.IsMatch(message));

    private sealed record Outcome(string? Result, Exception? Error, bool Hung, TimeSpan Timeout);

    private Outcome Execute(CorpusCase c)
    {
        using var dir = new TempDir();
        var setup = new CorpusSetup(dir.Path, _templates);
        setup.Apply(c.Setup);

        string? result = null;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = CorpusOperations.Invoke(setup, c.Core!);
            }
#pragma warning disable CA1031 // the corpus records whatever escapes, to name it
            catch (Exception ex)
#pragma warning restore CA1031
            {
                error = ex;
            }
        })
        { IsBackground = true, Name = "corpus " + c.Id };
        thread.Start();
        if (thread.Join(c.Timeout))
        {
            return new Outcome(result, error, false, c.Timeout);
        }

        // A reader blocked on a FIFO is released by a writer; anything else stays a background thread.
        foreach (string fifo in setup.Fifos)
        {
            var release = new Thread(() =>
            {
                try
                {
                    using var writer = new FileStream(fifo, FileMode.Open, FileAccess.Write);
                }
                catch (IOException)
                {
                }
            })
            { IsBackground = true };
            release.Start();
            release.Join(TimeSpan.FromSeconds(2));
        }

        thread.Join(TimeSpan.FromSeconds(2));
        return new Outcome(null, null, true, c.Timeout);
    }

    /// <summary>Null when the outcome is the expected one; otherwise what went wrong, exactly.</summary>
    private static string? Judge(CorpusCase c, Outcome outcome)
    {
        if (outcome.Hung)
        {
            return $"hang: the operation did not finish within {outcome.Timeout.TotalSeconds:0.#} s";
        }

        var expect = c.Expect;
        if (outcome.Error is { } error and not RunToolsException)
        {
            return $"unhandled {error.GetType().FullName}: {error.Message}";
        }

        var rejected = outcome.Error as RunToolsException;
        if ((string?)expect["error"] is { } expectedId)
        {
            if (rejected is null)
            {
                return $"accepted ({outcome.Result}) where {expectedId} was expected";
            }

            if (rejected.ErrorId != expectedId)
            {
                return $"ErrorId {rejected.ErrorId} where {expectedId} was expected: {rejected.Message}";
            }

            return CorpusManifest.Load().NextStep.IsMatch(rejected.Message) ? null : $"the {rejected.ErrorId} message has no next step: {rejected.Message}";
        }

        string accepted = (string?)expect["accept"] ?? throw new InvalidDataException($"{c.Id}: expect needs \"error\" or \"accept\"");
        if (rejected is not null)
        {
            return $"rejected with {rejected.ErrorId} where '{accepted}' was expected: {rejected.Message}";
        }

        return outcome.Result == accepted ? null : $"accepted with '{outcome.Result}' where '{accepted}' was expected";
    }

    /// <summary>The template runs, made once for all cases.</summary>
    public sealed class Templates : IDisposable
    {
        internal TemplateRuns Runs { get; } = new();

        public void Dispose() => Runs.Dispose();
    }
}
