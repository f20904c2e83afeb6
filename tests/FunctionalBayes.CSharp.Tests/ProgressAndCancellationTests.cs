using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class ProgressAndCancellationTests
{
    private static SviFitter Fitter(int steps) =>
        new SviFitter(TestData.LinearModel, TestData.Linear(100)).ForSteps(steps).WithSeed(3);

    [Fact]
    public void ProgressArrivesWithIncreasingStepsAndFiniteLosses()
    {
        var rec = new Recorder();
        var fitted = Fitter(250).WithProgressEvery(50).Fit(rec);
        Assert.Equal([50, 100, 150, 200, 250], rec.Reports.Select(r => r.Step));
        Assert.All(rec.Reports, r =>
        {
            Assert.Equal(250, r.TotalSteps);
            Assert.True(double.IsFinite(r.Loss));
            Assert.True(r.Elapsed >= TimeSpan.Zero);
        });
        Assert.Equal(fitted.Losses[^1], rec.Reports[^1].Loss);
        Assert.Equal(fitted.Losses[99], rec.Reports[1].Loss);
    }

    [Fact]
    public void LastStepIsAlwaysReported()
    {
        var rec = new Recorder();
        Fitter(130).WithProgressEvery(100).Fit(rec);
        Assert.Equal([100, 130], rec.Reports.Select(r => r.Step));
    }

    [Fact]
    public void CancellingFromAProgressReportStopsWithinOneStep()
    {
        using var cts = new CancellationTokenSource();
        var rec = new Recorder(p => { if (p.Step == 20) cts.Cancel(); });
        Assert.Throws<OperationCanceledException>(() => Fitter(10_000).WithProgressEvery(1).Fit(rec, cts.Token));
        Assert.Equal(20, rec.Reports[^1].Step);
    }

    [Fact]
    public void APreCancelledTokenStopsBeforeAnyStep()
    {
        var rec = new Recorder();
        Assert.Throws<OperationCanceledException>(() => Fitter(100).Fit(rec, new CancellationToken(true)));
        Assert.Empty(rec.Reports);
    }

    [Fact]
    public async Task FitAsyncRunsAndHonoursCancellation()
    {
        var fitted = await Fitter(40).FitAsync();
        Assert.Equal(40, fitted.Losses.Count);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Fitter(40).FitAsync(null, new CancellationToken(true)));

        using var cts = new CancellationTokenSource();
        var rec = new Recorder(p => { if (p.Step == 5) cts.Cancel(); });
        var task = Fitter(100_000).WithProgressEvery(1).FitAsync(rec, cts.Token);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.True(task.IsCanceled || task.IsFaulted);
    }
}
