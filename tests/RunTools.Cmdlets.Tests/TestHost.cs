using System;
using System.Collections.Generic;
using System.Collections.ObjectModel;
using System.Globalization;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Security;

namespace RunTools.Cmdlets.Tests;

/// <summary>
/// A host that records what is written to it (a run script's output goes to the host, not the
/// pipeline) and answers -Confirm prompts from a queue; a prompt with no queued answer fails the test.
/// </summary>
internal sealed class TestHost : PSHost
{
    private readonly TestHostUI _ui = new();

    public override CultureInfo CurrentCulture => CultureInfo.InvariantCulture;

    public override CultureInfo CurrentUICulture => CultureInfo.InvariantCulture;

    public override Guid InstanceId { get; } = Guid.NewGuid();

    public override string Name => "RunTools.Cmdlets.Tests";

    public override PSHostUserInterface UI => _ui;

    public override Version Version => new(1, 0);

    /// <summary>Everything written to the host, one entry per line or call.</summary>
    public IReadOnlyList<string> Lines => _ui.Lines;

    /// <summary>The captions of the confirmation prompts shown.</summary>
    public IReadOnlyList<string> Prompts => _ui.Prompts;

    /// <summary>The next -Confirm answer: 0 = Yes, 1 = Yes to All, 2 = No, 3 = No to All.</summary>
    public void Answer(params int[] choices)
    {
        foreach (int choice in choices)
        {
            _ui.Answers.Enqueue(choice);
        }
    }

    public override void EnterNestedPrompt() => throw new NotSupportedException();

    public override void ExitNestedPrompt() => throw new NotSupportedException();

    public override void NotifyBeginApplication()
    {
    }

    public override void NotifyEndApplication()
    {
    }

    public override void SetShouldExit(int exitCode)
    {
    }

    private sealed class TestHostUI : PSHostUserInterface
    {
        private readonly List<string> _lines = new();

        public Queue<int> Answers { get; } = new();

        public List<string> Prompts { get; } = new();

        public IReadOnlyList<string> Lines
        {
            get
            {
                lock (_lines)
                {
                    return _lines.ToArray();
                }
            }
        }

        public override PSHostRawUserInterface? RawUI => null;

        public override int PromptForChoice(string caption, string message, Collection<ChoiceDescription> choices, int defaultChoice)
        {
            Prompts.Add(caption + ": " + message);
            if (Answers.Count == 0)
            {
                throw new InvalidOperationException($"Unexpected prompt: {caption}: {message}");
            }

            return Answers.Dequeue();
        }

        public override void Write(string value) => Add(value);

        public override void Write(ConsoleColor foregroundColor, ConsoleColor backgroundColor, string value) => Add(value);

        public override void WriteLine(string value) => Add(value);

        public override void WriteErrorLine(string value) => Add("ERROR: " + value);

        public override void WriteWarningLine(string message) => Add("WARNING: " + message);

        public override void WriteVerboseLine(string message) => Add("VERBOSE: " + message);

        public override void WriteDebugLine(string message) => Add("DEBUG: " + message);

        public override void WriteProgress(long sourceId, ProgressRecord record)
        {
        }

        public override Dictionary<string, PSObject> Prompt(string caption, string message, Collection<FieldDescription> descriptions) =>
            throw new InvalidOperationException($"Unexpected prompt: {caption}: {message}");

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName) =>
            throw new NotSupportedException();

        public override PSCredential PromptForCredential(string caption, string message, string userName, string targetName, PSCredentialTypes allowedCredentialTypes, PSCredentialUIOptions options) =>
            throw new NotSupportedException();

        public override string ReadLine() => throw new InvalidOperationException("Unexpected read from the host.");

        public override SecureString ReadLineAsSecureString() => throw new NotSupportedException();

        private void Add(string value)
        {
            lock (_lines)
            {
                _lines.Add(value);
            }
        }
    }
}
