using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Management.Automation;
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
public sealed class DependencyLoader : IModuleAssemblyInitializer
{
    // Always private: Core itself, and libraries hosts or other modules may carry in other versions.
    private static readonly HashSet<string> s_alwaysPrivate = new(StringComparer.OrdinalIgnoreCase) { "RunTools.Core", "YamlDotNet" };
    private static readonly Dictionary<string, Assembly> s_loaded = new(StringComparer.OrdinalIgnoreCase);
    private static string s_folder = string.Empty;

    private static bool s_initialized;

    public void OnImport() => Initialize();

    internal static void Initialize()
    {
        lock (s_loaded)
        {
            if (s_initialized)
            {
                return; // Import-Module -Force imports again; the handlers stay registered once
            }

            s_initialized = true;
        }

        s_folder = Path.Combine(Path.GetDirectoryName(typeof(DependencyLoader).Assembly.Location) ?? ".", "Dependencies");
        if (!Directory.Exists(s_folder))
        {
            return; // a flat layout (a test build): normal probing finds everything beside us
        }

        if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal))
        {
            AppDomain.CurrentDomain.AssemblyResolve += ResolveFromFolder;
            return;
        }

        LoadIntoPrivateContext();
        AppDomain.CurrentDomain.AssemblyResolve += ResolvePrivate;
    }

    private static void LoadIntoPrivateContext()
    {
        // netstandard2.0 cannot name AssemblyLoadContext; its .NET Core 3+ members are reached by reflection.
        var contextType = Type.GetType("System.Runtime.Loader.AssemblyLoadContext, System.Runtime.Loader", throwOnError: true)!;
        object context = contextType.GetConstructor(new[] { typeof(string), typeof(bool) })!.Invoke(new object[] { "RunTools", false });
        var loadFromPath = contextType.GetMethod("LoadFromAssemblyPath", new[] { typeof(string) })!;
        var platform = PlatformVersions();
        foreach (string file in Directory.GetFiles(s_folder, "*.dll"))
        {
            var name = AssemblyName.GetAssemblyName(file);
            bool hostHasIt = platform.TryGetValue(name.Name!, out var hostVersion) && hostVersion >= name.Version;
            if (s_alwaysPrivate.Contains(name.Name!) || !hostHasIt)
            {
                // Loaded up front: the private context then binds these names to its own copies first.
                s_loaded[name.Name!] = (Assembly)loadFromPath.Invoke(context, new object[] { file })!;
            }
        }
    }

    /// <summary>The host's own assemblies (the trusted platform assemblies) and their versions.</summary>
    private static Dictionary<string, Version> PlatformVersions()
    {
        var versions = new Dictionary<string, Version>(StringComparer.OrdinalIgnoreCase);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string list)
        {
            foreach (string path in list.Split(Path.PathSeparator))
            {
                try
                {
                    var name = AssemblyName.GetAssemblyName(path);
                    versions[name.Name!] = name.Version!;
                }
                catch (Exception ex) when (ex is BadImageFormatException || ex is IOException)
                {
                }
            }
        }

        return versions;
    }

    private static Assembly? ResolvePrivate(object? sender, ResolveEventArgs args)
    {
        string? name = new AssemblyName(args.Name).Name;
        return name is not null && s_loaded.TryGetValue(name, out var assembly) ? assembly : null;
    }

    private static Assembly? ResolveFromFolder(object? sender, ResolveEventArgs args)
    {
        string? name = new AssemblyName(args.Name).Name;
        if (name is null)
        {
            return null;
        }

        lock (s_loaded)
        {
            if (s_loaded.TryGetValue(name, out var known))
            {
                return known;
            }

            string file = Path.Combine(s_folder, name + ".dll");
            if (!File.Exists(file))
            {
                return null;
            }

            var assembly = Assembly.LoadFrom(file);
            s_loaded[name] = assembly;
            return assembly;
        }
    }
}
