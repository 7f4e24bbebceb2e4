using System.IO;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// Which script an attempt runs when none is given (RunDirectory.ScriptToRun): Join-Run's worker
/// runs the recorded file only while its bytes equal the stored copy, Resume-Run runs the recorded
/// file while it exists (drift detection judges a change); both fall back to the copy the run
/// stored in the database, fetched to this machine when its local folder lacks it.
/// </summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlScriptChoiceTests : PostgreSqlTestBase
{
    private const string Script = "# the owner's script\n";

    public PostgreSqlScriptChoiceTests(PostgreSqlCluster cluster)
        : base(cluster)
    {
    }

    [Fact]
    public void A_worker_runs_the_recorded_file_while_it_is_unchanged_and_the_stored_copy_once_it_changed_or_is_gone()
    {
        var (run, source, _) = DatabaseRun("w1");

        Assert.Equal(source, run.ScriptToRun(run.ReadState(), sameBytes: true));

        File.WriteAllText(source, Script + "# edited after the start\n");
        Assert.Equal(run.ScriptPath, run.ScriptToRun(run.ReadState(), sameBytes: true));
        Assert.Equal(Script, File.ReadAllText(run.ScriptPath));

        File.Delete(source);
        Assert.Equal(run.ScriptPath, run.ScriptToRun(run.ReadState(), sameBytes: true));
    }

    [Fact]
    public void A_resume_runs_the_recorded_file_even_changed_and_the_stored_copy_once_it_is_gone()
    {
        var (run, source, _) = DatabaseRun("r1");

        Assert.Equal(source, run.ScriptToRun(run.ReadState(), sameBytes: false));

        File.WriteAllText(source, Script + "# edited after the start\n");
        Assert.Equal(source, run.ScriptToRun(run.ReadState(), sameBytes: false));

        File.Delete(source);
        Assert.Equal(run.ScriptPath, run.ScriptToRun(run.ReadState(), sameBytes: false));
    }

    [Fact]
    public void On_a_machine_without_the_file_or_the_local_copy_the_stored_copy_is_fetched_and_chosen()
    {
        var (created, source, schema) = DatabaseRun("m1");
        File.Delete(source);
        File.Delete(created.ScriptPath);

        var elsewhere = Catalog(schema).OpenRun("m1");
        Assert.Equal(elsewhere.ScriptPath, elsewhere.ScriptToRun(elsewhere.ReadState(), sameBytes: true));
        Assert.Equal(Script, File.ReadAllText(elsewhere.ScriptPath));
    }

    [Fact]
    public void A_folder_run_whose_file_is_gone_keeps_the_recorded_path_for_the_caller_to_refuse()
    {
        string source = Dir.Combine("job.ps1");
        File.WriteAllText(source, Script);
        var run = new RunsRoot(Dir.Combine("runs")).CreateRun(new RunCreateOptions { Name = "job", RunId = "f1", Script = Runs.Bytes(Script), ScriptSourcePath = source });

        File.Delete(source);
        Assert.Equal(source, run.ScriptToRun(run.ReadState(), sameBytes: false));
    }

    private (RunDirectory Run, string Source, string Schema) DatabaseRun(string runId)
    {
        string schema = Cluster.NewSchema("script");
        string source = Dir.Combine(runId + ".ps1");
        File.WriteAllText(source, Script);
        var run = Catalog(schema).CreateRun(new RunCreateOptions { Name = "job", RunId = runId, Script = Runs.Bytes(Script), ScriptSourcePath = source });
        return (run, source, schema);
    }
}
