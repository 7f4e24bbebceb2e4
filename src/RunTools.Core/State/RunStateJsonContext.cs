using System.Text.Json.Serialization;

namespace RunTools.Core.State;

/// <summary>
/// Source-generated (de)serialization of run.json: listing 10,000 runs reads 10,000 snapshots,
/// and reflection-based deserialization was a measurable share of that. It is the type-info resolver
/// of <see cref="RunFormat.JsonOptions"/>, so those options' converters and encoder still apply.
/// </summary>
[JsonSerializable(typeof(RunState))]
internal sealed partial class RunStateJsonContext : JsonSerializerContext
{
}
