namespace RunTools.Core.Configuration;

/// <summary>Where an <see cref="EffectiveConfig"/> came from.</summary>
public enum ConfigFormat
{
    /// <summary>No config was given; the effective config is the empty object.</summary>
    None,
    Json,
    Yaml,
    Dictionary,

    /// <summary>A PowerShell data file (.psd1), read by the module and handed over as a dictionary.</summary>
    PowerShellData,
}
