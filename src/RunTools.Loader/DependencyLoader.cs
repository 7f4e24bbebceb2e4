using System;
using System.Collections.Generic;
using System.IO;
using System.Management.Automation;
using System.Reflection;
using System.Runtime.InteropServices;

namespace RunTools;

/// <summary>
/// Keeps RunTools' dependencies (RunTools.Core, YamlDotNet, and System.Text.Json where the host's
/// is older) in Dependencies/ and out of the host's way, so another module that loaded a
/// different YamlDotNet or System.Text.Json cannot clash with ours.
/// On PowerShell 7 they load into a private AssemblyLoadContext; on Windows PowerShell 5.1
/// (one AppDomain, no load contexts) they are resolved from Dependencies/ on demand.
/// RunTools.psd1 imports this assembly as a nested module, so OnImport runs before PowerShell
/// loads RunTools.dll (whose public types hold Core enums and so need Core to load).
/// </summary>
/// <remarks>
/// Runspaces import concurrently (ForEach-Object -Parallel, runspace pools), and every import
/// calls OnImport. The first one does the work under a lock; the others wait on that lock until
/// the resolve handler can answer, because PowerShell loads RunTools.dll as soon as OnImport
/// returns, and an unanswered reference to Core fails that runspace's import
/// (seen in 5 to 7 of 8 runspaces before this lock).
/// The handlers answer only requests that come from RunTools' own assemblies: another module
/// that asks for YamlDotNet or System.Text.Json gets whatever the host would give it without us.
/// </remarks>
public sealed class DependencyLoader : IModuleAssemblyInitializer
{
    // Always private: Core itself, and libraries hosts or other modules may carry in other versions.
    private static readonly HashSet<string> s_alwaysPrivate = new(StringComparer.OrdinalIgnoreCase) { "RunTools.Core", "YamlDotNet" };

    // Guards initialization, and on .NET Framework the assemblies loaded on demand.
    private static readonly object s_gate = new();

    // Set last, under s_gate, once the handler is registered and can answer.
    private static volatile bool s_initialized;

    // PowerShell 7: the private context's assemblies by name. Filled completely before it is published
    // and never changed afterwards, so ResolvePrivate reads it without a lock.
    private static volatile Dictionary<string, Assembly>? s_private;

    // Windows PowerShell 5.1: what ResolveFromFolder loaded so far (under s_gate).
    private static readonly Dictionary<string, Assembly> s_fromFolder = new(StringComparer.OrdinalIgnoreCase);

    private static readonly StringComparer s_pathComparer =
        RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    private static string s_moduleFolder = string.Empty;
    private static string s_folder = string.Empty;

    // Dependencies/PostgreSql: the PostgreSQL store and Npgsql, loaded into the private context only
    // when Core loads the store for a database root, never at import (see LoadOnDemand).
    private const string OnDemandFolderName = "PostgreSql";
    private static string s_onDemandFolder = string.Empty;
    private static object? s_context;
    private static MethodInfo? s_loadFromPath;
    private static readonly Dictionary<string, Assembly> s_onDemand = new(StringComparer.OrdinalIgnoreCase);

    public void OnImport() => Initialize();

    internal static void Initialize()
    {
        if (s_initialized)
        {
            return; // every later import (another runspace, Import-Module -Force) calls OnImport again; the handler stays registered once
        }

        lock (s_gate)
        {
            if (s_initialized)
            {
                return;
            }

            s_moduleFolder = Path.GetFullPath(Path.GetDirectoryName(typeof(DependencyLoader).Assembly.Location) ?? ".");
            s_folder = Path.Combine(s_moduleFolder, "Dependencies");
            s_onDemandFolder = Path.Combine(s_folder, OnDemandFolderName);
            // Without Dependencies/ (a flat test build) normal probing finds everything beside us.
            if (Directory.Exists(s_folder))
            {
                if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal))
                {
                    AppDomain.CurrentDomain.AssemblyResolve += ResolveFromFolder;
                }
                else
                {
                    s_private = LoadIntoPrivateContext();
                    AppDomain.CurrentDomain.AssemblyResolve += ResolvePrivate;
                }
            }

            s_initialized = true;
        }
    }

    private static Dictionary<string, Assembly> LoadIntoPrivateContext()
    {
        // netstandard2.0 cannot name AssemblyLoadContext; its .NET Core 3+ members are reached by reflection.
        var contextType = Type.GetType("System.Runtime.Loader.AssemblyLoadContext, System.Runtime.Loader", throwOnError: true)!;
        object context = contextType.GetConstructor(new[] { typeof(string), typeof(bool) })!.Invoke(new object[] { "RunTools", false });
        var loadFromPath = contextType.GetMethod("LoadFromAssemblyPath", new[] { typeof(string) })!;
        s_context = context;
        s_loadFromPath = loadFromPath;
        var platform = PlatformAssemblyPaths();
        var loaded = new Dictionary<string, Assembly>(StringComparer.OrdinalIgnoreCase);
        foreach (string file in Directory.GetFiles(s_folder, "*.dll"))
        {
            var name = AssemblyName.GetAssemblyName(file);
            if (s_alwaysPrivate.Contains(name.Name!) || !HostHasAtLeast(platform, name))
            {
                // Loaded up front: the private context then binds these names to its own copies first.
                loaded[name.Name!] = (Assembly)loadFromPath.Invoke(context, new object[] { file })!;
            }
        }

        return loaded;
    }

    /// <summary>
    /// The host's own assemblies (the trusted platform assemblies) by simple name. Only paths: reading
    /// every one's metadata (about 230 files in pwsh) cost most of the module's import time.
    /// </summary>
    private static Dictionary<string, string> PlatformAssemblyPaths()
    {
        var paths = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string list)
        {
            foreach (string path in list.Split(Path.PathSeparator))
            {
                // A platform assembly's file is named after it (System.Text.Json.dll is System.Text.Json).
                paths[Path.GetFileNameWithoutExtension(path)] = path;
            }
        }

        return paths;
    }

    /// <summary>Whether the host ships <paramref name="name"/> at its version or later; only that one file's metadata is read.</summary>
    private static bool HostHasAtLeast(Dictionary<string, string> platform, AssemblyName name)
    {
        if (!platform.TryGetValue(name.Name!, out string? path))
        {
            return false;
        }

        try
        {
            var host = AssemblyName.GetAssemblyName(path);
            return string.Equals(host.Name, name.Name, StringComparison.OrdinalIgnoreCase) && host.Version >= name.Version;
        }
        catch (Exception ex) when (ex is BadImageFormatException || ex is IOException)
        {
            return false;
        }
    }

    private static bool IsOwn(Assembly requester)
    {
        if (requester.IsDynamic)
        {
            return false; // emitted code (Add-Type, dynamic methods) has no file and is never ours
        }

        string location = requester.Location;
        if (location.Length == 0)
        {
            return false; // loaded from bytes: not one of our files
        }

        string? folder = Path.GetDirectoryName(Path.GetFullPath(location));
        return folder is not null
            && (s_pathComparer.Equals(folder, s_moduleFolder) || s_pathComparer.Equals(folder, s_folder) || s_pathComparer.Equals(folder, s_onDemandFolder));
    }

    private static Assembly? ResolvePrivate(object? sender, ResolveEventArgs args)
    {
        // A null RequestingAssembly is an anonymous request (seen on .NET 10 for
        // AssemblyLoadContext.LoadFromAssemblyName); our own assemblies' references always name
        // their requester, so it is declined: handing our private YamlDotNet or System.Text.Json to
        // an unknown caller is the clash the private context exists to prevent.
        if (args.RequestingAssembly is null || !IsOwn(args.RequestingAssembly))
        {
            return null;
        }

        string? name = new AssemblyName(args.Name).Name;
        var loaded = s_private;
        if (name is null || loaded is null)
        {
            return null;
        }

        return loaded.TryGetValue(name, out var assembly) ? assembly : LoadOnDemand(name);
    }

    /// <summary>
    /// A dependency of the PostgreSQL store (Npgsql and what it needs that the host lacks): asked for
    /// only once Core loaded the store into the private context, and loaded there on first request.
    /// </summary>
    private static Assembly? LoadOnDemand(string name)
    {
        string file = Path.Combine(s_onDemandFolder, name + ".dll");
        if (s_context is null || s_loadFromPath is null || !File.Exists(file))
        {
            return null;
        }

        lock (s_onDemand)
        {
            if (!s_onDemand.TryGetValue(name, out var assembly))
            {
                assembly = (Assembly)s_loadFromPath.Invoke(s_context, new object[] { file })!;
                s_onDemand[name] = assembly;
            }

            return assembly;
        }
    }

    private static Assembly? ResolveFromFolder(object? sender, ResolveEventArgs args)
    {
        // .NET Framework may not know the requester (RequestingAssembly null); those requests are
        // answered as before, since in one AppDomain our copies are visible by name to everyone anyway.
        // A requester that is known and not ours is declined, as on PowerShell 7.
        if (args.RequestingAssembly is not null && !IsOwn(args.RequestingAssembly))
        {
            return null;
        }

        string? name = new AssemblyName(args.Name).Name;
        if (name is null)
        {
            return null;
        }

        lock (s_gate)
        {
            if (s_fromFolder.TryGetValue(name, out var known))
            {
                return known;
            }

            string file = Path.Combine(s_folder, name + ".dll");
            if (!File.Exists(file))
            {
                return null;
            }

            var assembly = Assembly.LoadFrom(file);
            s_fromFolder[name] = assembly;
            return assembly;
        }
    }
}
