using System;
using System.IO;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Storage;

/// <summary>How every store takes a step's staged output: streamed into the store, then the local file removed.</summary>
internal static class StagingFiles
{
    /// <summary>Stores <paramref name="stagingFile"/> as the step's output through <paramref name="blobs"/> and removes it; WriteFailed when it cannot be read.</summary>
    public static StoredBlob Take(IRunBlobs blobs, string step, int attempt, string? format, string stagingFile)
    {
        FileStream staged;
        try
        {
            staged = DurableFile.OpenRead(stagingFile, 1);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            throw DurableFile.Failed($"Could not read the output of step '{step}' from '{stagingFile}'", stagingFile, ex, "Nothing was recorded.");
        }

        StoredBlob blob;
        using (staged)
        {
            blob = blobs.WriteStepOutput(step, attempt, format, staged);
        }

        DurableFile.TryDelete(stagingFile);
        return blob;
    }
}
