using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Threading;
using Microsoft.Win32.SafeHandles;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.State;

/// <summary>
/// The owner's OS lock on .lock: an exclusive flock() on Unix, a sharing lock on Windows, taken
/// on a regular file opened without following links (<see cref="NativeLock"/>). The OS drops it
/// when the process dies, so a lock is never stale. The holder writes its pid/host/start into the
/// file; a process that finds the lock held names the holder from there, never from run.json.
/// </summary>
internal sealed class RunLock : Storage.IRunOwnership
{
    // A reader probing the lock holds it for microseconds; an owner that meets a probe retries
    // this long before deciding that another owner really holds the run.
    private static readonly TimeSpan s_probeGrace = TimeSpan.FromMilliseconds(150);

    // A new holder writes its record just after locking; until then the file still names the
    // previous (usually dead) holder. A loser waits this long at most for the real name.
    private static readonly TimeSpan s_recordGrace = TimeSpan.FromSeconds(2);

    private readonly SafeFileHandle _handle;

    private RunLock(SafeFileHandle handle, OwnerRecord owner)
    {
        _handle = handle;
        Owner = owner;
    }

    public OwnerRecord Owner { get; }

    OwnerRecord Storage.IRunOwnership.Holder => Owner;

    /// <summary>Never lost: the OS holds the lock for as long as this process keeps the file open.</summary>
    void Storage.IRunOwnership.ThrowIfLost()
    {
    }

    /// <summary>Test seam (this thread only): called with the lock file's path between an owner's open-and-lock and its check that the name still is that file.</summary>
    [ThreadStatic]
    internal static Action<string>? AfterLockTaken;

    public static OwnerRecord CurrentProcessOwner(DateTimeOffset now)
    {
        using var process = Process.GetCurrentProcess();
        return new OwnerRecord { ProcessId = process.Id, Host = Environment.MachineName, StartedAt = now };
    }

    /// <summary>
    /// Takes the lock. Throws RunLocked only when a live process holds it (named from the lock
    /// file), LockFileInvalid when .lock is not a regular file, RunNotFound when the run is gone,
    /// RunReadOnly / LockPermissionDenied when it cannot be opened for writing, LockFailed otherwise.
    /// </summary>
    public static RunLock Acquire(string runPath, string runId, DateTimeOffset now)
    {
        string path = Path.Combine(runPath, RunFormat.LockFile);
        var started = DateTime.UtcNow;
        while (true)
        {
            var open = NativeLock.OpenForOwner(path);
            switch (open.Outcome)
            {
                case LockOutcome.Locked:
                    AfterLockTaken?.Invoke(path);
                    if (!NativeLock.StillNames(path, open.Handle!))
                    {
                        // Locked a file that was renamed away meanwhile (a racing Remove-Run): look again.
                        open.Handle!.Dispose();
                        if (!Directory.Exists(runPath))
                        {
                            throw Vanished(runId, runPath);
                        }

                        continue;
                    }

                    return Take(open.Handle!, now);

                case LockOutcome.Busy:
                    var holder = PlausibleHolder(NativeLock.ReadRecord(path, open.Handle));
                    open.Handle?.Dispose();
                    var waited = DateTime.UtcNow - started;
                    if (waited >= s_probeGrace && (holder is not null || waited >= s_probeGrace + s_recordGrace))
                    {
                        throw new RunLockedException(runId, holder);
                    }

                    Thread.Sleep(10);
                    continue;

                case LockOutcome.Missing:
                    throw Vanished(runId, runPath);

                case LockOutcome.NotRegular:
                    throw Invalid(runId, path, open.Detail);

                case LockOutcome.ReadOnly:
                case LockOutcome.AccessDenied:
                    // This process cannot take the lock, but another (through a writable mount, or
                    // another user) may hold it: that is worth saying first.
                    ThrowIfHeld(runPath, runId);
                    throw open.Outcome == LockOutcome.ReadOnly
                        ? new RunToolsException(ErrorIds.RunReadOnly, RunToolsErrorCategory.PermissionDenied,
                            $"Run '{runId}' cannot be locked: '{path}' is on a read-only file system ({open.Detail}). No process holds it, but resuming, removing, exporting or replacing a run needs its directory writable: remount it read-write, or copy the run directory to a writable root and work there.", runId)
                        : new RunToolsException(ErrorIds.LockPermissionDenied, RunToolsErrorCategory.PermissionDenied,
                            $"Run '{runId}' cannot be locked: permission to open '{path}' for writing was denied ({open.Detail}). Run the command as a user who may write to '{runPath}', or fix the permissions of the run directory and its .lock.", runId);

                default:
                    throw new RunToolsException(ErrorIds.LockFailed, RunToolsErrorCategory.WriteError,
                        $"Run '{runId}' cannot be locked: opening or locking '{path}' failed ({open.Detail}). Check the file system (disk errors, a network share without lock support) and try again.", runId);
            }
        }
    }

    /// <summary>
    /// Whether some process holds the lock, without taking it or writing anything. A probe opens
    /// the file read-only for an instant with a shared lock (so it works on a read-only file system);
    /// an owner starting at that instant retries (see s_probeGrace).
    /// </summary>
    public static LockProbe Probe(string runPath)
    {
        string path = Path.Combine(runPath, RunFormat.LockFile);
        var open = NativeLock.OpenForProbe(path);
        switch (open.Outcome)
        {
            case LockOutcome.Locked:
                open.Handle?.Dispose();
                return new LockProbe(LockProbeState.Free, path);
            case LockOutcome.Busy:
                byte[]? record = NativeLock.ReadRecord(path, open.Handle);
                open.Handle?.Dispose();
                return new LockProbe(LockProbeState.Held, path, ParseRecord(record));
            case LockOutcome.Missing:
                return new LockProbe(LockProbeState.Free, path);
            case LockOutcome.NotRegular:
                return new LockProbe(LockProbeState.Invalid, path, detail: open.Detail);
            default:
                return new LockProbe(LockProbeState.Unknown, path, detail: open.Detail);
        }
    }

    /// <summary>Throws RunLocked (naming the holder from its record) when a live process holds the lock, LockFileInvalid when .lock is not a regular file.</summary>
    public static void ThrowIfHeld(string runPath, string runId)
    {
        var deadline = DateTime.UtcNow + s_recordGrace;
        while (true)
        {
            var probe = Probe(runPath);
            if (probe.State == LockProbeState.Invalid)
            {
                throw probe.InvalidError(runId);
            }

            if (probe.State != LockProbeState.Held)
            {
                return;
            }

            var holder = probe.Owner is not null && IsPlausible(probe.Owner) ? probe.Owner : null;
            if (holder is not null || DateTime.UtcNow >= deadline)
            {
                throw new RunLockedException(runId, holder);
            }

            Thread.Sleep(10);
        }
    }

    internal static RunToolsException Invalid(string runId, string path, string? what) =>
        new(ErrorIds.LockFileInvalid, RunToolsErrorCategory.InvalidData,
            $"Run '{runId}' cannot be locked: its lock file '{path}' is {what ?? "not a regular file"}, not a regular file. RunTools never opens a lock through a link or into a directory, FIFO or device, so nothing was written through it. Delete '{path}' (only the name itself; RunTools creates a new lock file) and try again.", runId);

    /// <summary>
    /// Releases the lock (closing the file is what releases it). Idempotent. The record is
    /// emptied first, so the file never names a live process that no longer holds it: only a
    /// holder that died leaves its record, and a dead pid is never named.
    /// </summary>
    public void Dispose()
    {
        if (_handle.IsClosed)
        {
            return;
        }

        try
        {
            NativeLock.WriteRecord(_handle, Array.Empty<byte>());
        }
        catch (IOException)
        {
        }
        finally
        {
            _handle.Dispose();
        }
    }

    private static RunLock Take(SafeFileHandle handle, DateTimeOffset now)
    {
        var owner = CurrentProcessOwner(now);
        try
        {
            byte[] text = Encoding.UTF8.GetBytes($"{{\"pid\":{owner.ProcessId},\"host\":\"{JsonEscape(owner.Host)}\",\"started_at\":\"{Journal.JournalWriter.FormatTimestamp(now)}\"}}\n");
            NativeLock.WriteRecord(handle, text);
        }
        catch (IOException)
        {
            // The record only names the holder to others; the lock itself is what counts.
        }

        return new RunLock(handle, owner);
    }

    private static RunToolsException Vanished(string runId, string runPath) =>
        new(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
            $"Run '{runId}' is gone: '{runPath}' no longer exists (it was removed or moved while this command ran). List the runs with Get-Run.", runId);

    /// <summary>The holder's record when it names a process that can be the holder: alive (on this host) and started before it wrote the record.</summary>
    private static OwnerRecord? PlausibleHolder(byte[]? record)
    {
        var owner = ParseRecord(record);
        return owner is not null && IsPlausible(owner) ? owner : null;
    }

    private static bool IsPlausible(OwnerRecord owner)
    {
        if (!string.Equals(owner.Host, Environment.MachineName, StringComparison.OrdinalIgnoreCase))
        {
            return true; // another machine's process cannot be checked from here
        }

        try
        {
            using var process = Process.GetProcessById(owner.ProcessId);
            if (process.HasExited)
            {
                return false;
            }

            // A pid reused since: that process started after the record was written.
            return process.StartTime.ToUniversalTime() <= owner.StartedAt.UtcDateTime.AddSeconds(5);
        }
        catch (ArgumentException)
        {
            return false; // no such process: a dead holder's record
        }
        catch (InvalidOperationException)
        {
            return false;
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception || ex is NotSupportedException)
        {
            return true;
        }
    }

    internal static OwnerRecord? ParseRecord(byte[]? record)
    {
        if (record is null)
        {
            return null;
        }

        int end = Array.IndexOf(record, (byte)'\n');
        if (end <= 0)
        {
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(new ReadOnlyMemory<byte>(record, 0, end));
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object
                || !root.TryGetProperty("pid", out var pid) || !pid.TryGetInt32(out int id) || id <= 0
                || !root.TryGetProperty("host", out var host) || host.ValueKind != JsonValueKind.String
                || !root.TryGetProperty("started_at", out var startedAt) || startedAt.ValueKind != JsonValueKind.String
                || !DateTimeOffset.TryParse(startedAt.GetString(), CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind, out var started))
            {
                return null;
            }

            return new OwnerRecord { ProcessId = id, Host = host.GetString()!, StartedAt = started };
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string JsonEscape(string value) => value.Replace("\\", "\\\\").Replace("\"", "\\\"");
}

internal enum LockProbeState
{
    /// <summary>No process holds the lock (or there is no .lock: nobody ever owned the run).</summary>
    Free,

    /// <summary>A live process holds the lock.</summary>
    Held,

    /// <summary>.lock is a link, a directory, a FIFO or a device: no owner can hold the run through it.</summary>
    Invalid,

    /// <summary>.lock could not be opened for reading (permissions, I/O error): whether an owner is alive cannot be told.</summary>
    Unknown,
}

/// <summary>What a reader's probe of .lock found.</summary>
internal sealed class LockProbe
{
    public LockProbe(LockProbeState state, string path, OwnerRecord? owner = null, string? detail = null)
    {
        State = state;
        Path = path;
        Owner = owner;
        Detail = detail;
    }

    public LockProbeState State { get; }

    public string Path { get; }

    /// <summary>For Held, the record in the lock file (it may still name the previous holder for an instant).</summary>
    public OwnerRecord? Owner { get; }

    public string? Detail { get; }

    public RunToolsException InvalidError(string runId) => RunLock.Invalid(runId, Path, Detail);
}
