using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;

namespace RunTools.Benchmarks;

/// <summary>Timing and formatting helpers.</summary>
internal static class Measure
{
    public static double Median(IReadOnlyList<double> values)
    {
        if (values.Count == 0)
        {
            return double.NaN;
        }

        var sorted = values.OrderBy(v => v).ToArray();
        int mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    /// <summary>Runs <paramref name="action"/> and returns its wall time in seconds.</summary>
    public static double Seconds(Action action)
    {
        var sw = Stopwatch.StartNew();
        action();
        sw.Stop();
        return sw.Elapsed.TotalSeconds;
    }

    public static string Time(double seconds)
    {
        if (double.IsNaN(seconds))
        {
            return "n/a";
        }

        if (seconds >= 1)
        {
            return seconds.ToString("0.000", CultureInfo.InvariantCulture) + " s";
        }

        if (seconds >= 1e-3)
        {
            return (seconds * 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " ms";
        }

        return (seconds * 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " µs";
    }

    public static string Micros(double seconds) => (seconds * 1e6).ToString("0.0", CultureInfo.InvariantCulture) + " µs";

    public static string Ratio(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture) + "×";

    public static string Number(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    public static string List(IEnumerable<double> seconds, Func<double, string> format) => string.Join(", ", seconds.Select(format));

    /// <summary>Median latency of a small append followed by fsync, on the work directory's file system.</summary>
    public static double FsyncLatency(string directory, int count)
    {
        string path = Path.Combine(directory, "fsync-probe.bin");
        var line = new byte[64];
        line[63] = (byte)'\n';
        var samples = new List<double>(count);
        using (var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read))
        {
            for (int i = 0; i < count + 10; i++)
            {
                long start = Stopwatch.GetTimestamp();
                stream.Write(line, 0, line.Length);
                stream.Flush(flushToDisk: true);
                double s = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (i >= 10)
                {
                    samples.Add(s);
                }
            }
        }

        File.Delete(path);
        return Median(samples);
    }

    /// <summary>Forces a full collection so one measurement does not pay for another's garbage.</summary>
    public static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    /// <summary>Whether a baseline tool is installed.</summary>
    public static bool OnPath(string tool)
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(Path.PathSeparator))
        {
            if (dir.Length > 0 && File.Exists(Path.Combine(dir, tool)))
            {
                return true;
            }
        }

        return false;
    }
}
