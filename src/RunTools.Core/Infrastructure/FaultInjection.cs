using System;
using System.Collections.Generic;
using System.IO;
using System.Threading;

namespace RunTools.Core.Infrastructure;

/// <summary>The durable operations the write primitives perform, each of which the disk can refuse.</summary>
internal enum DurableOp
{
    /// <summary>Writing bytes to a file (a temp file, a journal line, a log line).</summary>
    Write,

    /// <summary>fsync of a file.</summary>
    FileSync,

    /// <summary>Renaming a temp file over its target.</summary>
    Rename,

    /// <summary>fsync of a directory (after a rename or a new entry).</summary>
    DirectorySync,

    /// <summary>Creating a folder.</summary>
    CreateDirectory,
}

/// <summary>
/// Test-only seam (reached through InternalsVisibleTo): the durable-write primitives ask it before
/// each operation whether to fail, and fail exactly as the OS would, with an errno. With no
/// injector registered, a check is one read of a static field.
/// </summary>
internal static class FaultPoints
{
    private static FaultInjector[] s_injectors = Array.Empty<FaultInjector>();
    private static readonly object s_gate = new();

    /// <summary>The errno the operation must fail with, or 0.</summary>
    public static int Check(DurableOp op, string path)
    {
        var injectors = Volatile.Read(ref s_injectors);
        if (injectors.Length == 0)
        {
            return 0;
        }

        foreach (var injector in injectors)
        {
            int errno = injector.Decide(op, path);
            if (errno != 0)
            {
                return errno;
            }
        }

        return 0;
    }

    /// <summary>Throws the IOException the OS would have caused when an injector fails this operation.</summary>
    public static void ThrowIfInjected(DurableOp op, string path)
    {
        int errno = Check(op, path);
        if (errno != 0)
        {
            throw NativeMethods.ErrnoException(errno, $"{op} of '{path}'", injected: true);
        }
    }

    internal static void Register(FaultInjector injector)
    {
        lock (s_gate)
        {
            var list = new List<FaultInjector>(s_injectors) { injector };
            Volatile.Write(ref s_injectors, list.ToArray());
        }
    }

    internal static void Unregister(FaultInjector injector)
    {
        lock (s_gate)
        {
            var list = new List<FaultInjector>(s_injectors);
            list.Remove(injector);
            Volatile.Write(ref s_injectors, list.ToArray());
        }
    }
}

/// <summary>
/// One test's faults: sees only operations on paths under <see cref="Scope"/> (so tests running in
/// parallel do not disturb each other), records every one, and fails those its rule selects.
/// Dispose to remove it.
/// </summary>
internal sealed class FaultInjector : IDisposable
{
    public const int ENOSPC = 28;
    public const int EIO = 5;
    public const int EROFS = 30;

    private readonly object _gate = new();
    private readonly List<(DurableOp Op, string Path)> _seen = new();
    private Func<int, DurableOp, string, bool>? _rule;
    private bool _tripped;

    public FaultInjector(string scope)
    {
        Scope = Path.GetFullPath(scope).TrimEnd(Path.DirectorySeparatorChar) + Path.DirectorySeparatorChar;
        FaultPoints.Register(this);
    }

    public string Scope { get; }

    /// <summary>The errno injected failures carry (ENOSPC unless set).</summary>
    public int Errno { get; set; } = ENOSPC;

    /// <summary>Once a failure was injected, fail every later operation too (a disk that stays full or read-only).</summary>
    public bool Sticky { get; set; }

    /// <summary>How many failures were injected.</summary>
    public int Fired { get; private set; }

    /// <summary>Every operation seen, in order, with its 1-based index as the position in this list.</summary>
    public IReadOnlyList<(DurableOp Op, string Path)> Seen
    {
        get
        {
            lock (_gate)
            {
                return _seen.ToArray();
            }
        }
    }

    /// <summary>Fails the operations <paramref name="rule"/> selects: (1-based index among those seen, op, path).</summary>
    public void FailWhen(Func<int, DurableOp, string, bool> rule)
    {
        lock (_gate)
        {
            _rule = rule;
            _tripped = false;
        }
    }

    /// <summary>Fails the <paramref name="n"/>th operation (1-based) from now on that matches.</summary>
    public void FailNth(int n, DurableOp? op = null, string? pathContains = null)
    {
        int matched = 0;
        FailWhen((_, o, p) => (op is null || o == op) && (pathContains is null || p.Contains(pathContains)) && ++matched == n);
    }

    /// <summary>The fault is gone: nothing fails any more (the disk was freed or remounted).</summary>
    public void Clear()
    {
        lock (_gate)
        {
            _rule = null;
            _tripped = false;
        }
    }

    public void Dispose() => FaultPoints.Unregister(this);

    internal int Decide(DurableOp op, string path)
    {
        if (!path.StartsWith(Scope, StringComparison.Ordinal) && !string.Equals(path + Path.DirectorySeparatorChar, Scope, StringComparison.Ordinal))
        {
            return 0;
        }

        lock (_gate)
        {
            _seen.Add((op, path));
            if (_rule is null)
            {
                return 0;
            }

            if ((Sticky && _tripped) || _rule(_seen.Count, op, path))
            {
                _tripped = true;
                Fired++;
                if (!Sticky)
                {
                    _rule = null;
                }

                return Errno;
            }

            return 0;
        }
    }
}
