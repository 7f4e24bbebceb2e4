using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Security;
using System.Text;
using System.Threading;
using RunTools.Core.State;

namespace RunTools;

/// <summary>
/// Start-Run -AsJob, Resume-Run -AsJob: the cmdlet runs in a runspace of its own on a thread of its
/// own, in this process (as a thread job does; Start-Job would need a new process and a new import).
/// The job's output is the RunInfo, its errors the run's ErrorRecords. Its state follows the run:
/// Completed, Failed (also when no attempt ran: RunLocked, drift), Stopped (Stop-Job, Stop-Run,
/// -TimeoutSec, a step gate). Stop-Job asks the run to stop as Stop-Run does.
/// </summary>
internal sealed class RunJob : Job
{
    /// <summary>How long Stop-Job waits beyond the stop grace before it stops the run as Ctrl+C does.</summary>
    private static readonly TimeSpan s_stopWait = RunExecutor.StopGrace + TimeSpan.FromSeconds(10);

    private readonly string _cmdlet;
    private readonly Dictionary<string, object?> _parameters;
    private readonly string _location;
    private readonly ManualResetEventSlim _done = new(false);
    private readonly object _gate = new();
    private Runspace? _runspace;
    private PowerShell? _shell;
    private volatile bool _stopRequested;
    private string _statusMessage = string.Empty;

    internal RunJob(string command, string name, string cmdlet, Dictionary<string, object?> parameters, string location)
        : base(command, name)
    {
        _cmdlet = cmdlet;
        _parameters = parameters;
        _location = location;
        PSJobTypeName = "RunToolsJob";
    }

    public override string StatusMessage => _statusMessage;

    public override bool HasMoreData =>
        Output.Count > 0 || Error.Count > 0 || Warning.Count > 0 || Verbose.Count > 0 || Debug.Count > 0 || Progress.Count > 0 || Information.Count > 0;

    public override string Location => "localhost";

    /// <summary>The module to import in the job's runspace: the one this assembly was loaded from, so that both share its types and state.</summary>
    private static string ModulePath
    {
        get
        {
            string folder = Path.GetDirectoryName(typeof(RunJob).Assembly.Location) ?? ".";
            string manifest = Path.Combine(folder, "RunTools.psd1");
            return File.Exists(manifest) ? manifest : typeof(RunJob).Assembly.Location;
        }
    }

    internal void Start()
    {
        SetJobState(JobState.Running);
        var thread = new Thread(Run) { IsBackground = true, Name = "RunTools job " + Name };

        // The job is no part of a run its caller may be running: the caller's run context must not flow into it.
        using (ExecutionContext.SuppressFlow())
        {
            thread.Start();
        }
    }

    /// <summary>
    /// Stop-Job: the run is asked to stop as Stop-Run asks (the unit in flight finishes, the run
    /// ends Stopped and resumable, the RunInfo is output); if it meets no boundary in time, it is
    /// stopped as Ctrl+C stops it. Returns once the job has ended, or after a bounded wait.
    /// </summary>
    public override void StopJob()
    {
        _stopRequested = true;
        var deadline = DateTime.UtcNow + s_stopWait;
        bool asked = false;
        while (!_done.Wait(50))
        {
            if (!asked && _runspace is { } runspace && RunContext.For(runspace) is { } context)
            {
                context.Run.RequestStop("Stop-Job was called on the run's job", "Stop-Job");
                asked = true;
            }

            if (DateTime.UtcNow > deadline)
            {
                StopShell();
                _done.Wait(TimeSpan.FromSeconds(30));
                return;
            }
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing && _done.IsSet)
        {
            _shell?.Dispose();
            _runspace?.Dispose();
            _done.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Run()
    {
        JobState final = JobState.Failed;
        try
        {
            var state = InitialSessionState.CreateDefault2();
            state.ImportPSModule(new[] { ModulePath });
            var runspace = RunspaceFactory.CreateRunspace(new JobHost(this), state);
            runspace.Open();
            var shell = PowerShell.Create();
            shell.Runspace = runspace;
            // Warnings, verbose, debug and progress records reach the job through its host (JobHost),
            // which gets them too: taking the streams as well would show each one twice.
            shell.Streams.Error = Error;
            lock (_gate)
            {
                _runspace = runspace;
                _shell = shell;
            }

            if (_stopRequested)
            {
                final = JobState.Stopped; // stopped before the run began: nothing ran
                return;
            }

            runspace.SessionStateProxy.Path.SetLocation(WildcardPattern.Escape(_location));
            shell.AddCommand(_cmdlet).AddParameters(_parameters);
            var output = new PSDataCollection<PSObject>();
            output.DataAdded += (_, e) => Output.Add(output[e.Index]);
            shell.Invoke(null, output);
            var info = output.Select(o => o?.BaseObject).OfType<RunInfo>().LastOrDefault();
            final = info?.RunStatus switch
            {
                RunStatus.Completed => JobState.Completed,
                RunStatus.Stopped or RunStatus.Stopping => JobState.Stopped,
                _ when shell.InvocationStateInfo.State == PSInvocationState.Stopped => JobState.Stopped,
                _ => JobState.Failed,
            };
            _statusMessage = info is null ? string.Empty : $"{info.RunId}: {info.Status}";
        }
        catch (Exception ex) when (ex is PipelineStoppedException)
        {
            final = JobState.Stopped;
        }
        catch (Exception ex)
        {
            // Whatever kept the cmdlet from running (the module's import, the runspace) is the job's error.
            var record = (ex as IContainsErrorRecord)?.ErrorRecord ?? new ErrorRecord(ex, "RunJobFailed", ErrorCategory.NotSpecified, Name);
            Error.Add(record);
            final = JobState.Failed;
        }
        finally
        {
            _done.Set();
            SetJobState(final);
        }
    }

    private void StopShell()
    {
        lock (_gate)
        {
            try
            {
                _shell?.BeginStop(null, null);
            }
            catch (Exception ex) when (ex is InvalidOperationException || ex is ObjectDisposedException)
            {
                // Ended meanwhile.
            }
        }
    }

    /// <summary>Whether <paramref name="host"/> is a job's own host, which ends with the job.</summary>
    internal static bool IsJobHost(PSHost host) => host is JobHost || host.Name == JobHost.HostName; // a cmdlet sees it wrapped, with its name

    /// <summary>
    /// The job runspace's host: what the run script writes to the host (its output, Write-Host,
    /// error lines) becomes the job's information records, as Write-Host's do in a thread job;
    /// warnings, verbose and debug lines go to those streams. A job cannot prompt.
    /// </summary>
    private sealed class JobHost : PSHost
    {
        private readonly JobUI _ui;

        public JobHost(RunJob job) => _ui = new JobUI(job);

        public const string HostName = "RunToolsJobHost";

        public override string Name => HostName;

        public override Version Version => typeof(RunJob).Assembly.GetName().Version ?? new Version(0, 0);

        public override Guid InstanceId { get; } = Guid.NewGuid();

        public override PSHostUserInterface UI => _ui;

        public override CultureInfo CurrentCulture => CultureInfo.CurrentCulture;

        public override CultureInfo CurrentUICulture => CultureInfo.CurrentUICulture;

        public override void EnterNestedPrompt() => throw NoPrompt();

        public override void ExitNestedPrompt() => throw NoPrompt();

        public override void NotifyBeginApplication()
        {
        }

        public override void NotifyEndApplication()
        {
        }

        public override void SetShouldExit(int exitCode)
        {
        }
    }

    private sealed class JobUI : PSHostUserInterface
    {
        private readonly RunJob _job;
        private readonly StringBuilder _line = new();

        public JobUI(RunJob job) => _job = job;

        public override PSHostRawUserInterface? RawUI => null;

        public override void Write(string value)
        {
            lock (_line)
            {
                _line.Append(value);
            }
        }

        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Write(value);

        public override void WriteLine(string value)
        {
            string text;
            lock (_line)
            {
                text = _line.Append(value).ToString();
                _line.Clear();
            }

            _job.Information.Add(new InformationRecord(new HostInformationMessage { Message = text }, "RunTools job") { Tags = { "PSHOST" } });
        }

        public override void WriteErrorLine(string value) => WriteLine(value);

        public override void WriteDebugLine(string message) => _job.Debug.Add(new DebugRecord(message));

        public override void WriteVerboseLine(string message) => _job.Verbose.Add(new VerboseRecord(message));

        public override void WriteWarningLine(string message) => _job.Warning.Add(new WarningRecord(message));

        public override void WriteProgress(long sourceId, ProgressRecord record) => _job.Progress.Add(record);

        public override string ReadLine() => throw NoPrompt();

        public override SecureString ReadLineAsSecureString() => throw NoPrompt();

        public override Dictionary<string, PSObject> Prompt(string caption, string message, System.Collections.ObjectModel.Collection<FieldDescription> descriptions) => throw NoPrompt();

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) => throw NoPrompt();

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) => throw NoPrompt();

        public override int PromptForChoice(string caption, string message, System.Collections.ObjectModel.Collection<ChoiceDescription> choices, int defaultChoice) => throw NoPrompt();
    }

    private static PSInvalidOperationException NoPrompt() =>
        new("A run started with -AsJob cannot prompt: pass what it needs as parameters (use -Confirm:$false or -Force where a prompt would come).");
}
