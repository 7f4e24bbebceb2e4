using System;
using System.Diagnostics;
using System.IO;
using Xunit;

namespace RunTools.Module.Tests;

/// <summary>
/// Runs tests/*.Tests.ps1 with Pester 5 in a fresh pwsh against out/RunTools. Where pwsh or Pester
/// is missing the tier is reported as skipped, never as passed. .ci/run replaces this one result
/// with the Pester counts from TestResults/pester.xml.
/// </summary>
public sealed class PesterTier
{
    [Fact]
    public void PesterTestsPassAgainstTheBuiltModule()
    {
        string? pwsh = FindOnPath(OperatingSystem.IsWindows() ? "pwsh.exe" : "pwsh");
        if (pwsh is null)
        {
            Assert.Skip("pwsh was not found on PATH: the Pester tier was skipped.");
        }

        var (pesterCheck, _) = Run(pwsh, "-NoProfile", "-NonInteractive", "-Command", "if (Get-Module -ListAvailable Pester | Where-Object Version -ge '5.0') { exit 0 } else { exit 3 }");
        if (pesterCheck != 0)
        {
            Assert.Skip("Pester 5 was not found by pwsh: the Pester tier was skipped.");
        }

        string repo = FindRepositoryRoot();
        string results = Path.Combine(repo, "TestResults");
        Directory.CreateDirectory(results);
        string resultFile = Path.Combine(results, "pester.xml");
        File.Delete(resultFile);
        var (exit, output) = Run(pwsh, "-NoProfile", "-NonInteractive", "-File", Path.Combine(repo, "tests", "Invoke-PesterTier.ps1"),
            "-ModulePath", Path.Combine(repo, "out", "RunTools"), "-ResultPath", resultFile);
        TestContext.Current.SendDiagnosticMessage(output);
        Assert.True(exit == 0, "Pester reported failures:\n" + output);
        Assert.True(File.Exists(resultFile), "Pester wrote no result file:\n" + output);
    }

    private static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        info.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        foreach (var metadata in typeof(PesterTier).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false))
        {
            if (metadata is System.Reflection.AssemblyMetadataAttribute { Key: "OtherYamlDotNet" } other)
            {
                info.Environment["RUNTOOLS_TEST_OTHER_YAMLDOTNET"] = other.Value;
            }
        }

        info.Environment["POWERSHELL_UPDATECHECK"] = "Off";
        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }

    private static string? FindOnPath(string name)
    {
        foreach (string folder in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            if (folder.Length > 0 && File.Exists(Path.Combine(folder, name)))
            {
                return Path.Combine(folder, name);
            }
        }

        return null;
    }

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
