using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Runspaces;
using System.Text;

namespace RunTools.Cmdlets.Tests;

/// <summary>
/// One runspace with RunTools imported, its location in a fresh temp folder (so the default root
/// ./runs is private to the test), removed on dispose.
/// </summary>
/// <remarks>
/// The module is imported from this test project's own output folder: RunTools.psd1, format/type
/// data and help are copied there from out/RunTools by the build, beside RunTools.dll,
/// RunTools.Loader.dll and RunTools.Core.dll, which the project references. That is the loader's
/// flat layout (no Dependencies/ folder), so Core loads by normal probing into the default load
/// context from this folder. These are the copies coverlet instruments, so both the cmdlet assembly
/// and Core are measured, and the tests can use the module's types (RunInfo, RunEvent, ...) directly,
/// because the module and the tests share one copy of each assembly. Importing out/RunTools instead
/// would put Core into the loader's private context from Dependencies/: uninstrumented copies, and
/// types the tests could not name. The isolated layout itself is covered by the Pester tier.
/// </remarks>
internal sealed class ModuleSession : IDisposable
{
    private static readonly Lazy<InitialSessionState> s_state = new(() =>
    {
        var state = InitialSessionState.CreateDefault();
        state.ImportPSModule(ModuleManifest);
        state.ThrowOnRunspaceOpenError = true;
        return state;
    });

    private readonly Runspace _runspace;

    public ModuleSession()
    {
        Folder = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "runtools-cmdlet-tests", Guid.NewGuid().ToString("N").Substring(0, 12));
        Directory.CreateDirectory(Folder);
        Host = new TestHost();
        _runspace = RunspaceFactory.CreateRunspace(Host, s_state.Value);
        _runspace.Open();
        _runspace.SessionStateProxy.Path.SetLocation(WildcardPattern.Escape(Folder));
    }

    public static string ModuleManifest => System.IO.Path.Combine(AppContext.BaseDirectory, "RunTools.psd1");

    /// <summary>The test's folder; also the runspace's location, so ./runs is the default root.</summary>
    public string Folder { get; }

    public string Runs => Combine("runs");

    public TestHost Host { get; }

    public Runspace Runspace => _runspace;

    public string Combine(params string[] parts) => System.IO.Path.Combine(Folder, System.IO.Path.Combine(parts));

    /// <summary>Writes a file under the test folder (folders created) and returns its full path.</summary>
    public string Write(string relative, string text)
    {
        string path = Combine(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text.Replace("\r\n", "\n"), new UTF8Encoding(false));
        return path;
    }

    /// <summary>Runs PowerShell script text; $args[0..] are <paramref name="args"/>. Terminating errors are captured, not thrown.</summary>
    public Result Run(string script, params object?[] args)
    {
        using var ps = PowerShell.Create();
        ps.Runspace = _runspace;
        ps.AddScript(script);
        foreach (object? arg in args)
        {
            ps.AddArgument(arg);
        }

        Collection<PSObject> output;
        Exception? terminating = null;
        try
        {
            output = ps.Invoke();
        }
        catch (RuntimeException ex)
        {
            output = new Collection<PSObject>();
            terminating = ex;
        }

        return new Result(
            output,
            ps.Streams.Error.ToList(),
            ps.Streams.Warning.Select(w => w.Message).ToList(),
            ps.Streams.Verbose.Select(v => v.Message).ToList(),
            terminating);
    }

    /// <summary>
    /// Runs one statement where a terminating error (ThrowTerminatingError) ends the script and so
    /// lands in <see cref="Result.Terminating"/>; a non-terminating error lets 'continued' through.
    /// </summary>
    public Result RunStatement(string statement, params object?[] args) =>
        Run("try { " + statement + "; 'continued' } catch { throw }", args);

    /// <summary>Runs the script and fails the test on any error.</summary>
    public Collection<PSObject> Ok(string script, params object?[] args)
    {
        var result = Run(script, args);
        result.AssertNoErrors();
        return result.Output;
    }

    /// <summary>A run script file under the test folder.</summary>
    public string Script(string body, string name = "run.ps1") => Write(name, body);

    /// <summary>Start-Run of a script body (in ./runs) that must complete; returns its RunInfo.</summary>
    public RunInfo StartCompleted(string body, string name = "job", string? runId = null, string scriptName = "run.ps1")
    {
        string script = Script(body, scriptName);
        var output = Ok("param($n, $s, $id) if ($id) { Start-Run $n $s -RunId $id } else { Start-Run $n $s }", name, script, runId);
        var info = Assert.IsType<RunInfo>(Assert.Single(output).BaseObject);
        Assert.Equal(nameof(RunStatus.Completed), info.Status);
        return info;
    }

    public void Dispose()
    {
        _runspace.Dispose();
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    internal sealed record Result(Collection<PSObject> Output, List<ErrorRecord> Errors, List<string> Warnings, List<string> Verbose, Exception? Terminating)
    {
        /// <summary>Every error: non-terminating ones and a terminating one.</summary>
        public IEnumerable<ErrorRecord> AllErrors =>
            Terminating is IContainsErrorRecord { ErrorRecord: { } record } ? Errors.Append(record) : Errors;

        public IReadOnlyList<string> ErrorIds => AllErrors.Select(e => e.FullyQualifiedErrorId).ToList();

        public IEnumerable<object> Objects => Output.Select(o => o.BaseObject);

        public T Single<T>() => Assert.IsType<T>(Assert.Single(Output).BaseObject);

        public void AssertNoErrors()
        {
            if (Terminating is not null || Errors.Count > 0)
            {
                Assert.Fail("Unexpected errors: " + string.Join(" | ", AllErrors.Select(e => $"{e.FullyQualifiedErrorId}: {e}")) + (Terminating is null ? string.Empty : " | " + Terminating));
            }
        }

        /// <summary>Exactly one error, with this id (FullyQualifiedErrorId starts with it: cmdlet errors append ",RunTools.XCommand").</summary>
        public ErrorRecord SingleError(string errorId)
        {
            var errors = AllErrors.ToList();
            Assert.True(errors.Count == 1, $"expected one {errorId}, got: {string.Join(" | ", errors.Select(e => $"{e.FullyQualifiedErrorId}: {e}"))}");
            Assert.StartsWith(errorId + ",", errors[0].FullyQualifiedErrorId + ",", StringComparison.Ordinal);
            return errors[0];
        }
    }
}

/// <summary>Runs built with Core directly, for states a cmdlet cannot produce without a crash.</summary>
internal static class CoreRuns
{
    /// <summary>
    /// A run whose attempt ended without Complete/Fail/Stop while <paramref name="key"/> of
    /// <paramref name="step"/> was in flight: the lock is released, so it reads as Interrupted with the
    /// item in doubt, exactly as after a crash (the kill itself is the Pester tier's business).
    /// </summary>
    public static RunDirectory Interrupted(ModuleSession session, string script, string runId, string step, string key)
    {
        var run = new RunsRoot(session.Runs).CreateRun(new RunCreateOptions
        {
            Name = "job",
            RunId = runId,
            Script = File.ReadAllBytes(script),
            ScriptSourcePath = script,
        });
        using (var attempt = run.BeginAttempt(new RunTools.Core.Engine.AttemptOptions()))
        {
            attempt.BeginStep(step);
            attempt.BeginItem(step, key);
        }

        return run;
    }

    /// <summary>A path under tests/fixtures.</summary>
    public static string Fixture(string relative) =>
        System.IO.Path.Combine(
            typeof(CoreRuns).Assembly.GetCustomAttributes(typeof(System.Reflection.AssemblyMetadataAttribute), false)
                .Cast<System.Reflection.AssemblyMetadataAttribute>().Single(a => a.Key == "Fixtures").Value!,
            relative);

    /// <summary>A legacy fixture copied under the test folder (fixtures are never converted in place).</summary>
    public static string CopyFixture(ModuleSession session, string relative)
    {
        string source = Fixture(relative);
        string target = session.Combine("legacy", System.IO.Path.GetFileName(relative.TrimEnd('/')));
        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            string to = System.IO.Path.Combine(target, System.IO.Path.GetRelativePath(source, file));
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }

        return target;
    }
}
