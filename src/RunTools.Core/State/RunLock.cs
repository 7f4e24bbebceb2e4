using System;
using System.Diagnostics;
using System.IO;
using System.Text;
using System.Threading;

namespace RunTools.Core.State;

/// <summary>
/// The owner's OS lock on .lock: opened with FileShare.None, which .NET maps to an exclusive
/// flock() on Unix and a sharing lock on Windows. The OS drops it when the process dies, so a
/// lock is never stale. pid/host/start are written into the file for diagnostics only.
/// </summary>
internal sealed class RunLock : IDisposable
{
    // A reader probing the lock holds it for microseconds; an owner that meets a probe retries
    // this long before deciding that another owner really holds the run.
    private static readonly TimeSpan s_probeGrace = TimeSpan.FromMilliseconds(150);

    private readonly FileStream _stream;

    private RunLock(FileStream stream, OwnerRecord owner)
    {
        _stream = stream;
        Owner = owner;
    }

    public OwnerRecord Owner { get; }

    public static OwnerRecord CurrentProcessOwner(DateTimeOffset now)
    {
        using var process = Process.GetCurrentProcess();
        return new OwnerRecord { ProcessId = process.Id, Host = Environment.MachineName, StartedAt = now };
    }

    /// <summary>Takes the lock or returns null at once when another process holds it.</summary>
    public static RunLock? TryAcquire(string runPath, DateTimeOffset now)
    {
        string path = Path.Combine(runPath, RunFormat.LockFile);
        var deadline = DateTime.UtcNow + s_probeGrace;
        while (true)
        {
            try
            {
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1, FileOptions.None);
                var owner = CurrentProcessOwner(now);
                try
                {
                    byte[] text = Encoding.UTF8.GetBytes($"{{\"pid\":{owner.ProcessId},\"host\":\"{JsonEscape(owner.Host)}\",\"started_at\":\"{Journal.JournalWriter.FormatTimestamp(now)}\"}}\n");
                    stream.SetLength(0);
                    stream.Write(text, 0, text.Length);
                    stream.Flush();
                }
                catch (IOException)
                {
                    // Diagnostics only; the lock itself is what counts.
                }

                return new RunLock(stream, owner);
            }
            catch (IOException) when (DateTime.UtcNow < deadline)
            {
                Thread.Sleep(10);
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>
    /// Whether some process holds the lock. Readers take no lock: this opens the file for an
    /// instant only, and an owner starting at that instant retries (see s_probeGrace).
    /// </summary>
    public static bool IsHeld(string runPath)
    {
        string path = Path.Combine(runPath, RunFormat.LockFile);
        if (!File.Exists(path))
        {
            return false;
        }

        try
        {
            using var probe = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.None, 1, FileOptions.None);
            return false;
        }
        catch (FileNotFoundException)
        {
            return false;
        }
        catch (DirectoryNotFoundException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public void Dispose() => _stream.Dispose();

    private static string JsonEscape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"");
}
