using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.IO;
using System.Text;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Configuration;

namespace RunTools.Core.Tests;

/// <summary>A real temporary folder per test, removed afterwards.</summary>
public sealed class TempDir : IDisposable
{
    /// <param name="baseFolder">Where to make it (default: the temp folder).</param>
    public TempDir(string? baseFolder = null)
    {
        Path = System.IO.Path.Combine(baseFolder ?? System.IO.Path.GetTempPath(), "runtools-tests", Guid.NewGuid().ToString("N").Substring(0, 12));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine(Path, System.IO.Path.Combine(parts));

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Runs
{
    public static RunDirectory Create(RunsRoot root, string id = "r1", IDictionary<string, object?>? config = null, string script = "# script")
    {
        return root.CreateRun(new RunCreateOptions
        {
            Name = "test",
            RunId = id,
            Config = config is null ? EffectiveConfig.Empty : EffectiveConfig.FromDictionary(new System.Collections.Hashtable(new Dictionary<string, object?>(config))),
            Script = Encoding.UTF8.GetBytes(script),
        });
    }

    public static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    public static string Text(byte[]? bytes) => bytes is null ? "<null>" : Encoding.UTF8.GetString(bytes);
}

/// <summary>
/// Runs tests/RunTools.TestDriver as a child process (its dll is copied beside the tests). Every
/// wait is bounded and fails with what the child printed.
/// </summary>
internal sealed class Driver : IDisposable
{
    private static readonly TimeSpan s_drain = TimeSpan.FromSeconds(10);
    private readonly Process _process;
    private readonly List<string> _lines = new();
    private readonly object _gate = new();
    private readonly CountdownEvent _streamsOpen = new(2);

    public Driver(params string[] args)
    {
        string dll = System.IO.Path.Combine(AppContext.BaseDirectory, "RunTools.TestDriver.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(dll);
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Receive(e.Data, null);
        _process.ErrorDataReceived += (_, e) => Receive(e.Data, "STDERR ");
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public string Describe() => (_process.HasExited ? $"exited {_process.ExitCode}: " : "running: ") + string.Join(" | ", Lines);

    public IReadOnlyList<string> Lines
    {
        get
        {
            lock (_gate)
            {
                return _lines.ToArray();
            }
        }
    }

    /// <summary>Waits for a line starting with <paramref name="prefix"/>; false on exit or timeout.</summary>
    public bool WaitFor(string prefix, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            lock (_gate)
            {
                if (_lines.Exists(l => l.StartsWith(prefix, StringComparison.Ordinal)))
                {
                    return true;
                }
            }

            if (_process.HasExited)
            {
                DrainOutput();
                lock (_gate)
                {
                    return _lines.Exists(l => l.StartsWith(prefix, StringComparison.Ordinal));
                }
            }

            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }

            lock (_gate)
            {
                Monitor.Wait(_gate, 20);
            }
        }
    }

    /// <summary>Waits for a line starting with <paramref name="prefix"/> and returns it; fails with the child's output otherwise.</summary>
    public string Expect(string prefix, TimeSpan timeout)
    {
        if (!WaitFor(prefix, timeout))
        {
            throw new Xunit.Sdk.XunitException($"the driver did not print '{prefix}' within {timeout.TotalSeconds:0} s; {Describe()}");
        }

        return Lines.First(l => l.StartsWith(prefix, StringComparison.Ordinal));
    }

    /// <summary>SIGKILL on Unix: no finally blocks, no flushes, like a power cut for the process.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill();
        }
        catch (InvalidOperationException)
        {
        }

        if (!_process.WaitForExit(30000))
        {
            throw new TimeoutException("driver did not die within 30 s of SIGKILL: " + Describe());
        }

        DrainOutput();
    }

    public int WaitForExit(TimeSpan timeout)
    {
        if (!_process.WaitForExit((int)timeout.TotalMilliseconds))
        {
            Kill();
            throw new TimeoutException($"driver did not exit within {timeout.TotalSeconds:0} s: " + string.Join(" | ", Lines));
        }

        DrainOutput();
        return _process.ExitCode;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            Kill();
        }

        _process.Dispose();
        _streamsOpen.Dispose();
    }

    private void Receive(string? line, string? prefix)
    {
        if (line is null)
        {
            _streamsOpen.Signal(); // end of that stream
            return;
        }

        lock (_gate)
        {
            _lines.Add(prefix + line);
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>After exit, waits (bounded) until both output streams reached their end, so Lines is complete.</summary>
    private void DrainOutput()
    {
        if (!_streamsOpen.Wait(s_drain))
        {
            throw new TimeoutException($"the driver exited but its output did not end within {s_drain.TotalSeconds:0} s: " + Describe());
        }
    }
}

internal sealed class RecordingObserver : RunTools.Core.Engine.IRunObserver
{
    public List<string> Warnings { get; } = new();

    public List<string> VerboseLines { get; } = new();

    public void Warning(string message) => Warnings.Add(message);

    public void Verbose(string message) => VerboseLines.Add(message);
}

internal static class Journals
{
    /// <summary>A journal line as the writer would frame it: the crc member holds the CRC-32 of the object without it.</summary>
    public static string WithChecksum(string body)
    {
        uint crc = RunTools.Core.Infrastructure.Crc32.Compute(Encoding.UTF8.GetBytes(body));
        return body.Substring(0, body.Length - 1) + ",\"crc\":\"" + crc.ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + "\"}\n";
    }
}
