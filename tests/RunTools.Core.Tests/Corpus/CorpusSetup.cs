using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.IO.Compression;
using System.Linq;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using RunTools.Core.Archive;
using RunTools.Core.Engine;

namespace RunTools.Core.Tests.Corpus;

/// <summary>
/// Builds a case's hostile input in its folder from the setup steps of the manifest. Every step
/// that cannot do what it says fails the case (a setup that silently does nothing would make the
/// case test a valid input). tests/corpus/CorpusSetup.psm1 is the same for Pester.
/// </summary>
internal sealed class CorpusSetup
{
    private readonly string _dir;
    private readonly TemplateRuns _templates;

    public CorpusSetup(string dir, TemplateRuns templates)
    {
        _dir = dir;
        _templates = templates;
    }

    /// <summary>FIFOs the setup made: a hung reader is released by opening them for writing.</summary>
    public List<string> Fifos { get; } = new();

    public string Expand(string text) => text.Replace("{dir}", _dir, StringComparison.Ordinal).Replace("{fixtures}", CorpusManifest.Fixtures, StringComparison.Ordinal);

    public string Full(string relative)
    {
        string expanded = Expand(relative);
        return Path.IsPathRooted(expanded) ? expanded : Path.Combine(_dir, expanded);
    }

    public void Apply(JsonArray steps)
    {
        foreach (var node in steps)
        {
            var step = node!.AsObject();
            string verb = step.First().Key;
            string target = Full((string)step[verb]!);
            switch (verb)
            {
                case "write":
                    Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                    File.WriteAllBytes(target, Content(step));
                    break;
                case "append":
                    using (var stream = new FileStream(target, FileMode.Append))
                    {
                        stream.Write(Content(step));
                    }

                    break;
                case "mkdir":
                    Directory.CreateDirectory(target);
                    break;
                case "delete":
                    Require(File.Exists(target) || Directory.Exists(target), $"nothing to delete at {target}");
                    if (Directory.Exists(target))
                    {
                        Directory.Delete(target, recursive: true);
                    }
                    else
                    {
                        File.Delete(target);
                    }

                    break;
                case "truncate":
                    Truncate(target, step);
                    break;
                case "replace":
                    Replace(target, (string)step["pattern"]!, Expand((string)step["with"]!));
                    break;
                case "lines":
                    EditLines(target, step);
                    break;
                case "forge":
                    Forge(target, step);
                    break;
                case "run":
                    _templates.CopyTo((string?)step["kind"] ?? "completed", target);
                    break;
                case "copyFixture":
                    CopyDirectory(Path.Combine(CorpusManifest.Fixtures, (string)step["copyFixture"]!), Full((string)step["to"]!));
                    break;
                case "export":
                    RunArchive.Export(RunDirectory.Open(Full((string)step["from"]!)), new ArchiveExportOptions { DestinationPath = target, Force = (bool?)step["force"] ?? false });
                    break;
                case "zipEdit":
                    ZipEdit(target, step);
                    break;
                case "fifo":
                    MakeFifo(target);
                    Fifos.Add(target);
                    break;
                case "symlink":
                    File.CreateSymbolicLink(target, Expand((string)step["target"]!));
                    break;
                default:
                    throw new InvalidDataException($"unknown setup step '{verb}'");
            }
        }
    }

    /// <summary>"text" (with {dir}) or "base64", optionally as "parts" each repeated "repeat" times, after an optional UTF-8 "bom".</summary>
    public byte[] Content(JsonObject step)
    {
        var buffer = new MemoryStream();
        if ((bool?)step["bom"] == true)
        {
            buffer.Write(new byte[] { 0xEF, 0xBB, 0xBF });
        }

        var parts = step["parts"] as JsonArray ?? new JsonArray(step.DeepClone());
        foreach (var part in parts)
        {
            byte[] unit = part!["base64"] is { } b64 ? Convert.FromBase64String((string)b64!) : Encoding.UTF8.GetBytes(Expand((string?)part["text"] ?? string.Empty));
            int repeat = (int?)part["repeat"] ?? 1;
            for (int i = 0; i < repeat; i++)
            {
                buffer.Write(unit);
            }
        }

        return buffer.ToArray();
    }

    private static void Require(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidDataException("corpus setup: " + what);
        }
    }

    private static void Truncate(string target, JsonObject step)
    {
        long length = new FileInfo(target).Length;
        long to = step["to"] is { } t ? (long)t : length - (long)step["drop"]!;
        Require(to >= 0 && to < length, $"cannot truncate {target} ({length} bytes) to {to}");
        using var stream = new FileStream(target, FileMode.Open);
        stream.SetLength(to);
    }

    private static void Replace(string target, string pattern, string replacement)
    {
        string text = File.ReadAllText(target);
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        Require(regex.IsMatch(text), $"/{pattern}/ does not occur in {target}");
        File.WriteAllText(target, regex.Replace(text, replacement, 1));
    }

    /// <summary>Journal surgery by line (0-based; negative counts from the end): drop, duplicate, swap, insert.</summary>
    private void EditLines(string target, JsonObject step)
    {
        var lines = File.ReadAllText(target).Split('\n').ToList();
        bool trailingNewline = lines.Count > 0 && lines[^1].Length == 0;
        if (trailingNewline)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        int Index(JsonNode? n)
        {
            int i = (int)n!;
            int index = i < 0 ? lines.Count + i : i;
            Require(index >= 0 && index < lines.Count, $"line {i} of {target} (it has {lines.Count})");
            return index;
        }

        if (step["duplicate"] is { } dup)
        {
            int i = Index(dup);
            lines.Insert(i + 1, lines[i]);
        }

        if (step["swap"] is JsonArray swap)
        {
            int a = Index(swap[0]), b = Index(swap[1]);
            (lines[a], lines[b]) = (lines[b], lines[a]);
        }

        if (step["insertAfter"] is { } after)
        {
            lines.Insert(Index(after) + 1, Expand((string)step["text"]!));
        }

        if (step["drop"] is { } drop)
        {
            lines.RemoveAt(Index(drop));
        }

        if (step["set"] is { } set)
        {
            int i = Index(set);
            var edited = new Regex((string)step["pattern"]!, RegexOptions.CultureInvariant);
            Require(edited.IsMatch(lines[i]), $"/{step["pattern"]}/ does not occur in line {i} of {target}");
            lines[i] = edited.Replace(lines[i], Expand((string)step["with"]!), 1);
        }

        if ((bool?)step["recrc"] == true)
        {
            lines = lines.Select(WithCrc).ToList();
        }

        File.WriteAllText(target, string.Join("\n", lines) + (trailingNewline ? "\n" : string.Empty));
    }

    /// <summary>A journal line with its "crc" member recomputed (CRC-32 of the line without it), as a forger would.</summary>
    internal static string WithCrc(string line)
    {
        var crcMember = new Regex(",\"crc\":\"[0-9a-f]{8}\"", RegexOptions.CultureInvariant);
        string body = crcMember.Replace(line, string.Empty);
        uint crc = Infrastructure.Crc32.Compute(Encoding.UTF8.GetBytes(body));
        return body.Substring(0, body.Length - 1) + ",\"crc\":\"" + crc.ToString("x8", System.Globalization.CultureInfo.InvariantCulture) + "\"}";
    }

    /// <summary>Appends a CRC-valid event of "type" after the last one (next seq, same timestamp).</summary>
    private static void Forge(string target, JsonObject step)
    {
        string last = File.ReadAllText(target).TrimEnd('\n').Split('\n')[^1];
        var node = JsonNode.Parse(last)!;
        long seq = (long)node["seq"]! + 1;
        string line = $"{{\"seq\":{seq.ToString(System.Globalization.CultureInfo.InvariantCulture)},\"ts\":\"{(string)node["ts"]!}\",\"type\":\"{(string)step["type"]!}\"}}";
        File.AppendAllText(target, WithCrc(line) + "\n");
    }

    /// <summary>Rewrites a zip entry by entry: remove, set (replace bytes), add (optionally as a symbolic link), flip, manifest edits.</summary>
    private void ZipEdit(string target, JsonObject step)
    {
        string source = Full((string)step["source"]!);
        var entries = new List<(string Name, byte[] Bytes, bool Link)>();
        using (var zip = ZipFile.OpenRead(source))
        {
            foreach (var entry in zip.Entries)
            {
                using var stream = entry.Open();
                var copy = new MemoryStream();
                stream.CopyTo(copy);
                entries.Add((entry.FullName, copy.ToArray(), false));
            }
        }

        foreach (var name in step["remove"] as JsonArray ?? new JsonArray())
        {
            Require(entries.RemoveAll(e => e.Name == (string)name!) > 0, $"no entry {name} to remove");
        }

        if (step["flip"] is { } flip)
        {
            int i = entries.FindIndex(e => e.Name == (string)flip!);
            Require(i >= 0, $"no entry {flip} to flip");
            entries[i].Bytes[0] ^= 0x20;
        }

        foreach (var edit in step["manifest"] as JsonArray ?? new JsonArray())
        {
            int i = entries.FindIndex(e => e.Name == RunArchive.ManifestName);
            Require(i >= 0, "no manifest to edit");
            var manifest = JsonNode.Parse(entries[i].Bytes)!;
            SetPath(manifest, (string)edit!["path"]!, edit["value"]?.DeepClone());
            entries[i] = (RunArchive.ManifestName, Encoding.UTF8.GetBytes(manifest.ToJsonString()), false);
        }

        foreach (var set in step["set"] as JsonArray ?? new JsonArray())
        {
            int i = entries.FindIndex(e => e.Name == (string)set!["name"]!);
            Require(i >= 0, $"no entry {set!["name"]} to set");
            entries[i] = (entries[i].Name, Content(set!.AsObject()), false);
        }

        foreach (var add in step["add"] as JsonArray ?? new JsonArray())
        {
            entries.Add(((string)add!["name"]!, Content(add.AsObject()), (bool?)add["link"] ?? false));
        }

        using var output = ZipFile.Open(target, ZipArchiveMode.Create);
        foreach (var (name, bytes, link) in entries)
        {
            var entry = output.CreateEntry(name);
            if (link)
            {
                entry.ExternalAttributes = unchecked((int)(0xA1FFu << 16)); // S_IFLNK | 0777
            }

            using var stream = entry.Open();
            stream.Write(bytes);
        }
    }

    /// <summary>Sets a dotted path ("run.run_id", "files.0.path") in a JSON document; "files.+" appends.</summary>
    private static void SetPath(JsonNode root, string path, JsonNode? value)
    {
        string[] parts = path.Split('.');
        JsonNode node = root;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            node = (node is JsonArray a ? a[int.Parse(parts[i], System.Globalization.CultureInfo.InvariantCulture)] : node[parts[i]])
                ?? throw new InvalidDataException($"corpus setup: no '{parts[i]}' in the manifest path {path}");
        }

        string last = parts[^1];
        if (node is JsonArray array)
        {
            if (last == "+")
            {
                array.Add(value);
            }
            else
            {
                array[int.Parse(last, System.Globalization.CultureInfo.InvariantCulture)] = value;
            }
        }
        else
        {
            node[last] = value;
        }
    }

    private static void MakeFifo(string target)
    {
        var info = new ProcessStartInfo("mkfifo") { UseShellExecute = false };
        info.ArgumentList.Add(target);
        using var process = Process.Start(info)!;
        Require(process.WaitForExit(10000) && process.ExitCode == 0, $"mkfifo {target}");
    }

    internal static void CopyDirectory(string source, string destination)
    {
        Require(Directory.Exists(source), $"no folder {source} to copy");
        Directory.CreateDirectory(destination);
        foreach (string folder in Directory.GetDirectories(source, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(destination, Path.GetRelativePath(source, folder)));
        }

        foreach (string file in Directory.GetFiles(source, "*", SearchOption.AllDirectories))
        {
            File.Copy(file, Path.Combine(destination, Path.GetRelativePath(source, file)));
        }
    }
}

/// <summary>
/// The valid runs cases start from, made once through Core (Pester makes the same shapes through
/// Start-Run): "completed" (steps prepare, work with items k0 and k1, report with one artifact),
/// "failed" (prepare done, work failed) and "created" (the first attempt failed before any step). All have the id r1.
/// </summary>
internal sealed class TemplateRuns : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly Dictionary<string, string> _paths = new();
    private readonly object _gate = new();

    public void CopyTo(string kind, string destination)
    {
        string source;
        lock (_gate)
        {
            if (!_paths.TryGetValue(kind, out source!))
            {
                source = Make(kind);
                _paths[kind] = source;
            }
        }

        CorpusSetup.CopyDirectory(source, destination);
    }

    public void Dispose() => _dir.Dispose();

    private string Make(string kind)
    {
        if (kind is not ("completed" or "failed" or "created"))
        {
            throw new InvalidDataException($"unknown template run kind '{kind}'");
        }

        var root = new RunsRoot(_dir.Combine(kind));
        var run = Runs.Create(root, "r1", new Dictionary<string, object?> { ["model"] = "v1" }, "Invoke-RunStep prepare { 'prepared' }\n");
        string artifact = _dir.Combine("a.txt");
        File.WriteAllText(artifact, "artifact");
        using var attempt = run.BeginAttempt();
        if (kind == "created")
        {
            attempt.Fail("failed before any step");
            return run.Path;
        }

        attempt.BeginStep("prepare");
        attempt.CompleteStep("prepare", Runs.Bytes("prepared"), "txt");
        attempt.BeginStep("work");
        if (kind == "failed")
        {
            attempt.FailStep("work", "boom");
            attempt.Fail("step 'work' failed: boom");
            return run.Path;
        }

        foreach (string key in new[] { "k0", "k1" })
        {
            attempt.BeginItem("work", key);
            attempt.CompleteItem("work", key, Runs.Bytes("out" + key));
        }

        attempt.CompleteStep("work", null);
        attempt.BeginStep("report");
        attempt.AddArtifact(artifact, "a.txt");
        attempt.CompleteStep("report", null);
        attempt.Complete();
        return run.Path;
    }
}
