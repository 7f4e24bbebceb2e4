using System;
using System.IO;
using System.Linq;
using RunTools.Core.Conversion;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// A legacy directory converted into a database (LegacyConversion.ConvertInto) on the real cluster,
/// with failures injected into the store's import: nothing is left in the database, the directory
/// is not touched, the temporary state folder is removed, and converting again succeeds.
/// </summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlConversionTests : PostgreSqlTestBase
{
    public PostgreSqlConversionTests(PostgreSqlCluster cluster)
        : base(cluster)
    {
    }

    [Fact]
    public void A_conversion_that_fails_before_its_commit_leaves_nothing_anywhere_and_converts_again()
    {
        string schema = Cluster.NewSchema("conv");
        var catalog = Catalog(schema);
        string legacy = ConversionTests.CopyFixture(Dir, "frame-generator/20260118_blaze_idle");
        var before = ConversionTests.Snapshot(legacy);
        var staging = StagingFolders();

        PgRunImport.FaultPoint = (at, _) =>
        {
            if (at == "import_commit")
            {
                throw new IOException("injected at " + at);
            }
        };
        Assert.Throws<IOException>(() => LegacyConversion.ConvertInto(legacy, new ConversionOptions(), catalog));
        PgRunImport.FaultPoint = null;

        AssertNothingStored(schema);
        AssertSame(before, ConversionTests.Snapshot(legacy));
        Assert.Equal(staging, StagingFolders());

        var result = LegacyConversion.ConvertInto(legacy, new ConversionOptions(), catalog);
        Assert.Equal(3, result.ItemsCompleted);
        Assert.True(result.Run.Test(cancellation: TestContext.Current.CancellationToken).IsValid);
        AssertSame(before, ConversionTests.Snapshot(legacy));
    }

    [Fact]
    public void A_legacy_file_that_changes_while_it_is_converted_fails_the_conversion_with_WriteFailed_and_keeps_nothing()
    {
        string schema = Cluster.NewSchema("conv");
        var catalog = Catalog(schema);
        string legacy = ConversionTests.CopyFixture(Dir, "frame-generator/20260118_blaze_idle");
        string frame = Path.Combine(legacy, "approved", "frame_0002.png");

        // After the first file is in (a stored copy, before any frame), the legacy tool rewrites a frame.
        PgRunImport.FaultPoint = (at, _) =>
        {
            if (at == "import_blob")
            {
                File.WriteAllBytes(frame, new byte[] { 1, 2, 3 });
            }
        };
        var error = Assert.Throws<RunToolsException>(() => LegacyConversion.ConvertInto(legacy, new ConversionOptions(), catalog));
        PgRunImport.FaultPoint = null;

        Assert.Equal(ErrorIds.WriteFailed, error.ErrorId);
        Assert.Contains("changed while it was converted", error.Message, StringComparison.Ordinal);
        Assert.Contains(legacy, error.Message, StringComparison.Ordinal);
        AssertNothingStored(schema);
    }

    [Fact]
    public void A_run_id_taken_in_the_database_is_RunExists_in_the_words_of_a_conversion_and_changes_nothing()
    {
        string schema = Cluster.NewSchema("conv");
        var catalog = Catalog(schema);
        string first = ConversionTests.CopyFixture(Dir, "checkpoint/run_42_10");
        string second = ConversionTests.CopyFixture(Dir, "checkpoint/run_42_10");
        LegacyConversion.ConvertInto(first, new ConversionOptions(), catalog);
        string events = Cluster.AdminScalar($"SELECT count(*) FROM {schema}.events")!.ToString()!;

        var error = Assert.Throws<RunToolsException>(() => LegacyConversion.ConvertInto(second, new ConversionOptions(), catalog));

        Assert.Equal(ErrorIds.RunExists, error.ErrorId);
        Assert.Contains($"'{second}' was not converted", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("-Force", error.Message, StringComparison.Ordinal);
        Assert.Equal(events, Cluster.AdminScalar($"SELECT count(*) FROM {schema}.events")!.ToString());
    }

    [Fact]
    public void A_directory_with_an_interrupted_in_place_conversion_is_refused_and_left_to_finish_in_place()
    {
        string schema = Cluster.NewSchema("conv");
        var catalog = Catalog(schema);
        string legacy = ConversionTests.CopyFixture(Dir, "checkpoint/run_42_10");
        Directory.CreateDirectory(Path.Combine(legacy, LegacyConversion.StagingFolder));
        var before = ConversionTests.Snapshot(legacy);

        var error = Assert.Throws<RunToolsException>(() => LegacyConversion.ConvertInto(legacy, new ConversionOptions(), catalog));

        Assert.Equal(ErrorIds.RunDamaged, error.ErrorId);
        Assert.Contains("without -Root", error.Message, StringComparison.Ordinal);
        Assert.True(Directory.Exists(Path.Combine(legacy, LegacyConversion.StagingFolder)));
        AssertSame(before, ConversionTests.Snapshot(legacy));
        AssertNothingStored(schema);
    }

    private static string[] StagingFolders() =>
        Directory.EnumerateDirectories(Path.GetTempPath(), "runtools-convert-*").OrderBy(f => f, StringComparer.Ordinal).ToArray();

    private static void AssertSame(System.Collections.Generic.Dictionary<string, byte[]> expected, System.Collections.Generic.Dictionary<string, byte[]> actual)
    {
        Assert.Equal(expected.Keys.OrderBy(k => k, StringComparer.Ordinal), actual.Keys.OrderBy(k => k, StringComparer.Ordinal));
        foreach (var file in expected)
        {
            Assert.Equal(file.Value, actual[file.Key]);
        }
    }
}
