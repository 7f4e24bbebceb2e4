using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;

namespace RunTools;

/// <summary>
/// The host of an item worker's runspace. An item's messages (warnings, verbose and debug lines,
/// Write-Host) are left to its streams, which the pipeline thread writes through Invoke-RunItem
/// once the item ends, as ForEach-Object -Parallel writes its tasks' streams: so each message is
/// shown once, obeys the run script's redirections and reaches the attempt log. What is not a
/// message reaches the run's host as it comes: progress bars, prompts, the raw console, and text
/// written to the host itself (Out-Host).
/// </summary>
/// <remarks>
/// Each worker runspace needs a host object of its own: a runspace made on the caller's host
/// shares that host's message buffers with every other runspace made on it, and one item's
/// messages then end up in another item's streams.
/// </remarks>
internal sealed class ItemWorkerHost : PSHost
{
    private readonly PSHost _runHost;
    private readonly WorkerUI _ui;

    public ItemWorkerHost(PSHost runHost)
    {
        _runHost = runHost;
        _ui = new WorkerUI(runHost.UI);
    }

    public override string Name => _runHost.Name;

    public override Version Version => _runHost.Version;

    public override Guid InstanceId { get; } = Guid.NewGuid();

    public override PSHostUserInterface UI => _ui;

    public override CultureInfo CurrentCulture => _runHost.CurrentCulture;

    public override CultureInfo CurrentUICulture => _runHost.CurrentUICulture;

    public override void EnterNestedPrompt() =>
        throw new NotSupportedException("A parallel item cannot enter a nested prompt. Debug the item without -ThrottleLimit.");

    public override void ExitNestedPrompt() =>
        throw new NotSupportedException("A parallel item has no nested prompt to exit.");

    public override void NotifyBeginApplication()
    {
    }

    public override void NotifyEndApplication()
    {
    }

    // 'exit' in an item ends the item (see ItemWorker.RunOnce), never the process that runs the attempt.
    public override void SetShouldExit(int exitCode)
    {
    }

    private sealed class WorkerUI : PSHostUserInterface
    {
        private readonly PSHostUserInterface? _runUI;

        // The text of the information record just handed over, which the runspace writes next (see WriteInformation).
        private string? _echo;

        public WorkerUI(PSHostUserInterface? runUI) => _runUI = runUI;

        public override PSHostRawUserInterface? RawUI => _runUI?.RawUI;

        // Warnings, verbose and debug lines: the runspace keeps each in the item's streams before
        // it gets here (also when written through $Host.UI); written once, by the pipeline thread.
        public override void WriteWarningLine(string message)
        {
        }

        public override void WriteVerboseLine(string message)
        {
        }

        public override void WriteDebugLine(string message)
        {
        }

        // Write-Host (and Write-Information under 'Continue'): the runspace keeps the record in the
        // item's streams and hands it here, then writes its text as a line. That one line is
        // dropped; other text (Out-Host, $Host.UI.WriteLine) reaches the run's host as it comes.
        public override void WriteInformation(InformationRecord record) =>
            _echo = record.MessageData is HostInformationMessage message ? message.Message : record.ToString();

        public override void Write(string value)
        {
            if (!IsEcho(value))
            {
                _runUI?.Write(value);
            }
        }

        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value)
        {
            if (!IsEcho(value))
            {
                _runUI?.Write(foregroundColor, backgroundColor, value);
            }
        }

        public override void WriteLine()
        {
            _echo = null;
            _runUI?.WriteLine();
        }

        public override void WriteLine(string value)
        {
            if (!IsEcho(value))
            {
                _runUI?.WriteLine(value);
            }
        }

        public override void WriteLine(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value)
        {
            if (!IsEcho(value))
            {
                _runUI?.WriteLine(foregroundColor, backgroundColor, value);
            }
        }

        public override void WriteErrorLine(string value)
        {
            _echo = null;
            _runUI?.WriteErrorLine(value);
        }

        // Progress is about the item while it runs: shown now, not when the item has ended.
        public override void WriteProgress(long sourceId, ProgressRecord record) => _runUI?.WriteProgress(sourceId, record);

        public override string ReadLine() => RunUI.ReadLine();

        public override SecureString ReadLineAsSecureString() => RunUI.ReadLineAsSecureString();

        public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) =>
            RunUI.Prompt(caption, message, descriptions);

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) =>
            RunUI.PromptForCredential(caption, message, userName, targetName);

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) =>
            RunUI.PromptForCredential(caption, message, userName, targetName, allowedCredentialTypes, options);

        public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice) =>
            RunUI.PromptForChoice(caption, message, choices, defaultChoice);

        private bool IsEcho(string value)
        {
            bool echo = _echo is not null && string.Equals(_echo, value, StringComparison.Ordinal);
            _echo = null;
            return echo;
        }

        private PSHostUserInterface RunUI => _runUI ?? throw new NotSupportedException("The run's host cannot prompt: it has no user interface.");
    }
}
