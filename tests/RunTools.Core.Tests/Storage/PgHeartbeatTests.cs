using System;
using System.Threading;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// The heartbeat a lease and a worker's registration share, with its renewal statement replaced:
/// when it asks the database itself, that loss and end are final, that a slow renewal does not
/// pile up ticks, and that nothing renews after Stop. (The rows themselves: PostgreSqlStoreTests.)
/// </summary>
public sealed class PgHeartbeatTests
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public void Check_asks_the_database_only_once_a_whole_lease_passed_without_renewal()
    {
        int renewals = 0;
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMilliseconds(300), Timeout.InfiniteTimeSpan), () =>
        {
            Interlocked.Increment(ref renewals);
            return PgRenewal.Renewed;
        });

        Assert.Equal(PgRenewal.Renewed, heartbeat.Check());
        Assert.Equal(0, renewals);

        Thread.Sleep(TimeSpan.FromMilliseconds(400));
        Assert.Equal(PgRenewal.Renewed, heartbeat.Check());
        Assert.Equal(1, renewals);

        // Renewed just now: the next boundary trusts it.
        Assert.Equal(PgRenewal.Renewed, heartbeat.Check());
        Assert.Equal(1, renewals);
    }

    [Fact]
    public void Check_throws_when_the_database_stays_unreachable()
    {
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMilliseconds(100), Timeout.InfiniteTimeSpan),
            () => throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ResourceBusy, "unreachable", null));

        Thread.Sleep(TimeSpan.FromMilliseconds(200));
        Assert.Equal(ErrorIds.StoreUnavailable, Assert.Throws<RunToolsException>(() => heartbeat.Check()).ErrorId);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_lost_or_ended_row_stays_so(bool lost)
    {
        var found = lost ? PgRenewal.Lost : PgRenewal.Ended;
        var answer = found;
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMilliseconds(100), Timeout.InfiniteTimeSpan), () => answer);

        Thread.Sleep(TimeSpan.FromMilliseconds(200));
        Assert.Equal(found, heartbeat.Check());

        // A later answer cannot give it back (another holder may have worked meanwhile).
        answer = PgRenewal.Renewed;
        Thread.Sleep(TimeSpan.FromMilliseconds(200));
        Assert.Equal(found, heartbeat.Check());
    }

    [Fact]
    public void The_timer_renews_and_a_failed_renewal_does_not_stop_it()
    {
        int renewals = 0;
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(10)), () =>
        {
            if (Interlocked.Increment(ref renewals) == 1)
            {
                throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ResourceBusy, "unreachable", null);
            }

            return PgRenewal.Renewed;
        });

        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) >= 3, s_wait));
        Assert.Equal(PgRenewal.Renewed, heartbeat.Check());
    }

    [Fact]
    public void A_renewal_waiting_out_an_outage_does_not_pile_up_ticks()
    {
        int running = 0;
        int mostAtOnce = 0;
        int renewals = 0;
        using var outage = new ManualResetEventSlim(false);
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(5)), () =>
        {
            int now = Interlocked.Increment(ref running);
            InterlockedMax(ref mostAtOnce, now);
            Interlocked.Increment(ref renewals);
            outage.Wait(s_wait);
            Interlocked.Decrement(ref running);
            return PgRenewal.Renewed;
        });

        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) >= 1, s_wait));
        Thread.Sleep(TimeSpan.FromMilliseconds(200));
        Assert.Equal(1, Volatile.Read(ref renewals));
        outage.Set();
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) >= 3, s_wait));
        Assert.True(heartbeat.Stop());
        Assert.Equal(1, mostAtOnce);
    }

    [Fact]
    public void Nothing_renews_after_Stop_and_Stop_is_true_once()
    {
        int renewals = 0;
        var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(5)), () =>
        {
            Interlocked.Increment(ref renewals);
            return PgRenewal.Renewed;
        });
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) >= 2, s_wait));

        Assert.True(heartbeat.Stop());
        int stoppedAt = Volatile.Read(ref renewals);
        Thread.Sleep(TimeSpan.FromMilliseconds(100));
        Assert.Equal(stoppedAt, Volatile.Read(ref renewals));
        Assert.False(heartbeat.Stop());
        heartbeat.Dispose();
    }

    [Fact]
    public void A_paused_heartbeat_renews_no_more()
    {
        int renewals = 0;
        using var heartbeat = new PgHeartbeat(Options(TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(5)), () =>
        {
            Interlocked.Increment(ref renewals);
            return PgRenewal.Renewed;
        });
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref renewals) >= 2, s_wait));

        heartbeat.Pause();
        Thread.Sleep(TimeSpan.FromMilliseconds(50)); // a tick already past the pause check may still finish
        int pausedAt = Volatile.Read(ref renewals);
        Thread.Sleep(TimeSpan.FromMilliseconds(100));
        Assert.Equal(pausedAt, Volatile.Read(ref renewals));
    }

    private static PostgreSqlStoreOptions Options(TimeSpan lease, TimeSpan heartbeat) => new() { LeaseDuration = lease, HeartbeatInterval = heartbeat };

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }
}
