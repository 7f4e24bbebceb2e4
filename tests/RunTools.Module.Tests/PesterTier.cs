using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Threading;
using RunTools.Tools;
using Xunit;

namespace RunTools.Module.Tests;

/// <summary>
/// Runs tests/*.Tests.ps1 with Pester in the pinned pwsh against out/RunTools. It runs on every
/// machine: a pwsh or Pester that cannot be had fails this test with the reason, never skips it.
/// .ci/run replaces this one result with the Pester counts from TestResults/pester-&lt;major&gt;.xml.
/// Pester 5 by default; RUNTOOLS_PESTER=6 runs the same tier under Pester 6.
/// </summary>
public sealed class PesterTier
{
    private static readonly TimeSpan TierTimeout = TimeSpan.FromMinutes(30);

    [Fact]
    public void PesterTestsPassAgainstTheBuiltModule()
    {
        string repo = FindRepositoryRoot();
        var pwsh = PwshLocator.Find(repo);
        string major = Environment.GetEnvironmentVariable("RUNTOOLS_PESTER") switch
        {
            null or "" or "5" => "5",
            "6" => "6",
            var other => throw new InvalidOperationException($"RUNTOOLS_PESTER is '{other}'; use 5 or 6."),
        };
        string pesterKey = "Pester" + major;
        string pester = Metadata(pesterKey);
        Assert.True(File.Exists(pester), $"{pesterKey} was not restored from NuGet: {pester} is missing. Run `dotnet restore RunTools.sln`.");

        string results = Path.Combine(repo, "TestResults");
        Directory.CreateDirectory(results);
        string resultFile = Path.Combine(results, $"pester-{major}.xml");
        File.Delete(resultFile);
        var environment = new Dictionary<string, string> { ["RUNTOOLS_TEST_OTHER_YAMLDOTNET"] = Metadata("OtherYamlDotNet") };

        // xUnit's VSTest adapter (3.1.5) calls a test process "crashed" when it exits more than 5 s
        // after the last message the adapter read, unless the assembly's finished message was read
        // first: it measures its grace period from that last message, not from the exit. This one
        // test runs for minutes in silence, so a heartbeat keeps messages flowing to the end
        // ("Test process crashed with exit code 0" after every Pester test had passed, twice).
        var testOutput = TestContext.Current.TestOutputHelper;
        var started = DateTime.UtcNow;
        string? lastLine = null;
        using var heartbeat = new System.Threading.Timer(
            _ =>
            {
                try
                {
                    testOutput?.WriteLine($"[{(DateTime.UtcNow - started).TotalSeconds:0} s] {Volatile.Read(ref lastLine) ?? "starting Pester"}");
                }
                catch (InvalidOperationException)
                {
                    // a tick that raced the end of the test: nothing left to keep alive
                }
            },
            null,
            TimeSpan.FromSeconds(2),
            TimeSpan.FromSeconds(2));
        void Echo(string line)
        {
            if (line.Trim().Length > 0)
            {
                Volatile.Write(ref lastLine, line.Length > 200 ? line.Substring(0, 200) : line);
            }
        }

        var arguments = new List<string>
        {
            "-NoProfile", "-NonInteractive", "-File", Path.Combine(repo, "tests", "Invoke-PesterTier.ps1"),
            "-ModulePath", Path.Combine(repo, "out", "RunTools"), "-ResultPath", resultFile, "-PesterPath", pester,
        };
        if (Environment.GetEnvironmentVariable("RUNTOOLS_PESTER_EXCLUDE_TAG") is { Length: > 0 } excluded)
        {
            // .ci/run's second tier: tests tagged so (the slow multi-process ones) ran in the first.
            arguments.Add("-ExcludeTag");
            arguments.Add(excluded);
        }

        var result = pwsh.Run(
            arguments,
            TierTimeout,
            repo,
            environment,
            Echo);
        // Only the summary: the whole tier's output (hundreds of KB) as one diagnostic message is the
        // suspect of a test process that ended before reporting (a "crash" with exit code 0, once).
        // A failure carries the whole output in its assertion message below.
        string output = result.Output;
        TestContext.Current.SendDiagnosticMessage(output.Length <= 4000 ? output : "..." + output.Substring(output.Length - 4000));
        Assert.True(result.ExitCode == 0, "Pester reported failures:\n" + result.Output);
        Assert.True(File.Exists(resultFile), "Pester wrote no result file:\n" + result.Output);
    }

    private static string Metadata(string key) =>
        typeof(PesterTier).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    private static string FindRepositoryRoot()
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
}
