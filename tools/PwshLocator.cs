using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Text;

namespace RunTools.Tools;

/// <summary>
/// Finds and starts the PowerShell pinned in .config/dotnet-tools.json (restored from NuGet with
/// `dotnet tool restore`), for the test tiers and the example. Compiled into those projects, never
/// shipped. The tool's `pwsh` command is a shim that forks `dotnet &lt;PSHOME&gt;/pwsh.dll`, so the
/// child is started as `dotnet &lt;PSHOME&gt;/pwsh.dll` itself: its pid is the real pwsh, and a kill
/// reaches it. RUNTOOLS_PWSH (a pwsh executable or a pwsh.dll) overrides the pinned one.
/// </summary>
internal sealed class PwshLocator
{
    private static readonly string[] RestoreArguments = { "tool", "restore" };
    private static readonly string[] HomeArguments = { "tool", "run", "pwsh", "-NoProfile", "-NonInteractive", "-Command", "[Console]::Out.Write($PSHOME)" };

    private PwshLocator(string fileName, string? dll, string home)
    {
        FileName = fileName;
        Dll = dll;
        Home = home;
    }

    /// <summary>The program to start: the dotnet host, or a pwsh executable.</summary>
    public string FileName { get; }

    /// <summary>pwsh.dll when <see cref="FileName"/> is the dotnet host.</summary>
    public string? Dll { get; }

    /// <summary>$PSHOME of that PowerShell.</summary>
    public string Home { get; }

    /// <summary>
    /// The pinned PowerShell, restored first when needed. <paramref name="say"/> gets one line
    /// before the restore, so a first run shows why it waits.
    /// </summary>
    public static PwshLocator Find(string repositoryRoot, Action<string>? say = null)
    {
        string? overridden = Environment.GetEnvironmentVariable("RUNTOOLS_PWSH");
        if (!string.IsNullOrEmpty(overridden))
        {
            if (!File.Exists(overridden))
            {
                throw new InvalidOperationException($"RUNTOOLS_PWSH names '{overridden}', which does not exist. Unset it to use the PowerShell pinned in .config/dotnet-tools.json.");
            }

            return overridden.EndsWith(".dll", StringComparison.OrdinalIgnoreCase)
                ? new PwshLocator(DotnetHost(), overridden, Path.GetDirectoryName(overridden)!)
                : new PwshLocator(overridden, null, Path.GetDirectoryName(overridden)!);
        }

        say?.Invoke("Restoring the PowerShell pinned in .config/dotnet-tools.json (dotnet tool restore)...");
        var restore = Run(DotnetHost(), RestoreArguments, repositoryRoot, TimeSpan.FromMinutes(5));
        if (restore.ExitCode != 0)
        {
            throw new InvalidOperationException("`dotnet tool restore` could not restore the pinned PowerShell from NuGet (exit code " +
                restore.ExitCode + "). Check that NuGet is reachable, then run it again. It printed:\n" + restore.Output);
        }

        var home = Run(DotnetHost(), HomeArguments,
            repositoryRoot, TimeSpan.FromMinutes(2));
        string psHome = home.StandardOutput.Trim();
        string dll = Path.Combine(psHome, "pwsh.dll");
        if (home.ExitCode != 0 || !File.Exists(dll))
        {
            throw new InvalidOperationException("The pinned PowerShell was restored but did not start (exit code " + home.ExitCode +
                "), or has no pwsh.dll under its $PSHOME ('" + psHome + "'). It printed:\n" + home.Output);
        }

        return new PwshLocator(DotnetHost(), dll, psHome);
    }

    /// <summary>Start information for pwsh with <paramref name="arguments"/>; output redirected.</summary>
    public ProcessStartInfo StartInfo(IEnumerable<string> arguments, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(FileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        if (Dll is not null)
        {
            info.ArgumentList.Add(Dll);
        }

        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        info.Environment["POWERSHELL_UPDATECHECK"] = "Off";
        return info;
    }

    /// <summary>Runs pwsh to the end; after <paramref name="timeout"/> it is killed and this throws with what it printed.</summary>
    public ChildResult Run(IEnumerable<string> arguments, TimeSpan timeout, string? workingDirectory = null, IDictionary<string, string>? environment = null, Action<string>? echo = null)
    {
        var info = StartInfo(arguments, workingDirectory);
        if (environment is not null)
        {
            foreach (var pair in environment)
            {
                info.Environment[pair.Key] = pair.Value;
            }
        }

        return Wait(info, timeout, echo);
    }

    private static ChildResult Run(string fileName, IEnumerable<string> arguments, string workingDirectory, TimeSpan timeout)
    {
        var info = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = workingDirectory,
        };
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["DOTNET_NOLOGO"] = "1";
        info.Environment["POWERSHELL_TELEMETRY_OPTOUT"] = "1";
        return Wait(info, timeout, echo: null);
    }

    private static ChildResult Wait(ProcessStartInfo info, TimeSpan timeout, Action<string>? echo)
    {
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        using var process = new Process { StartInfo = info };
        process.OutputDataReceived += (_, e) => Collect(stdout, e.Data, echo);
        process.ErrorDataReceived += (_, e) => Collect(stderr, e.Data, echo);
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit((int)timeout.TotalMilliseconds))
        {
            try
            {
                process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // it exited just now
            }

            process.WaitForExit(10_000);
            throw new TimeoutException($"{info.FileName} {string.Join(" ", info.ArgumentList)} did not exit within {timeout.TotalSeconds:0} s and was killed. It printed:\n{Text(stdout)}{Text(stderr)}");
        }

        process.WaitForExit(); // drains the redirected output
        return new ChildResult(process.ExitCode, Text(stdout), Text(stderr));
    }

    private static void Collect(StringBuilder buffer, string? line, Action<string>? echo)
    {
        if (line is null)
        {
            return;
        }

        lock (buffer)
        {
            buffer.AppendLine(line);
        }

        echo?.Invoke(line);
    }

    private static string Text(StringBuilder buffer)
    {
        lock (buffer)
        {
            return buffer.ToString();
        }
    }

    /// <summary>The dotnet host running this process, else `dotnet` from PATH.</summary>
    private static string DotnetHost()
    {
        string? self = Environment.ProcessPath;
        return self is not null && Path.GetFileNameWithoutExtension(self).Equals("dotnet", StringComparison.OrdinalIgnoreCase) ? self : "dotnet";
    }
}

/// <summary>How a child ended and what it printed.</summary>
internal sealed record ChildResult(int ExitCode, string StandardOutput, string StandardError)
{
    public string Output => StandardOutput + StandardError;
}
