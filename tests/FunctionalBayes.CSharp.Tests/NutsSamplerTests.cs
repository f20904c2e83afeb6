using System.Collections.Concurrent;
using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class NutsSamplerTests
{
    private static readonly DataSet Data = TestData.Linear(100);

    private static NutsSampler Sampler() =>
        new NutsSampler(TestData.LinearModel, Data).WithChains(2).WithWarmup(200).WithSamples(200).WithSeed(4);

    private static readonly Lazy<FittedModel> Sampled = new(() => Sampler().Sample());

    [Fact]
    public void SamplingGivesTheSameFittedModelTypeWithRHatAndEss()
    {
        var fitted = Sampled.Value;
        Assert.True(fitted.IsSampled);
        Assert.Equal("NUTS", fitted.Method);
        Assert.Equal(2, fitted.Chains);
        Assert.Null(fitted.GuideName);
        Assert.Empty(fitted.Losses);
        var beta = fitted.Summary().Single(s => s.Name == "AdaptiveLayer_x_beta");
        // y = 1 + 2x + N(0, 0.3²) on 100 rows: the slope's posterior sd is about 0.03
        Assert.InRange(beta.Mean[0], 1.85, 2.15);
        Assert.True(beta.RHat[0] < 1.05, $"R-hat {beta.RHat[0]}");
        Assert.True(beta.EssBulk[0] > 50, $"bulk ESS {beta.EssBulk[0]}");
        Assert.True(beta.Q5[0] < beta.Q50[0] && beta.Q50[0] < beta.Q95[0]);
        Assert.Equal(400, fitted.Posterior()["AdaptiveLayer_x_beta"].Shape[0]);
        var pred = fitted.Predict(new DataSet().Add("x", NdArray.FromMatrix(new double[,] { { 0 }, { 1 } })), samples: 100);
        Assert.InRange(pred["y"].Mean[1] - pred["y"].Mean[0], 1.7, 2.3);
    }

    [Theory]
    [InlineData(NutsMetric.Dense)]
    [InlineData(NutsMetric.FisherDiagonal)]
    [InlineData(NutsMetric.FisherLowRank)]
    public void EveryMetricFindsTheSlope(NutsMetric metric)
    {
        var fitted = Sampler().WithMetric(metric).Sample();
        var beta = fitted.Summary().Single(s => s.Name == "AdaptiveLayer_x_beta");
        // the slope's posterior sd is about 0.03 (see above): ±0.15 is 5 sd
        Assert.InRange(beta.Mean[0], 1.85, 2.15);
        Assert.True(beta.RHat[0] < 1.05, $"{metric}: R-hat {beta.RHat[0]}");
        // another warmup: other draws than Stan's diagonal metric gives
        Assert.NotEqual(Sampled.Value.Posterior()["AdaptiveLayer_x_beta"].ToArray(), fitted.Posterior()["AdaptiveLayer_x_beta"].ToArray());
    }

    [Fact]
    public void AnUndefinedMetricIsRefused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Sampler().WithMetric((NutsMetric)99));

    [Fact]
    public void ParallelAndSerialChainsGiveTheSameDraws()
    {
        var serial = Sampler().WithParallelChains(false).Sample();
        Assert.Equal(Sampled.Value.Posterior()["AdaptiveLayer_x_beta"].ToArray(), serial.Posterior()["AdaptiveLayer_x_beta"].ToArray());
    }

    [Fact]
    public void ProgressArrivesPerChainAndCancellationStops()
    {
        var reports = new ConcurrentBag<SamplingProgress>();
        var progress = new SyncProgress<SamplingProgress>(reports.Add);
        new NutsSampler(TestData.LinearModel, Data).WithChains(2).WithWarmup(50).WithSamples(50).WithProgressEvery(25).Sample(progress);
        Assert.Equal([0, 1], reports.Select(r => r.Chain).Distinct().Order());
        Assert.Contains(reports, r => r.Phase == SamplingPhase.Warmup);
        Assert.Contains(reports, r => r.Phase == SamplingPhase.Sampling && r.Iteration == r.TotalIterations);

        using var cts = new CancellationTokenSource();
        var cancelling = new SyncProgress<SamplingProgress>(p => { if (p.Iteration >= 10) cts.Cancel(); });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            new NutsSampler(TestData.LinearModel, Data).WithWarmup(5000).WithProgressEvery(1).Sample(cancelling, cts.Token));
        Assert.Throws<OperationCanceledException>(() => Sampler().Sample(null, new CancellationToken(true)));
    }

    [Fact]
    public async Task SampleAsyncRunsOnThePool()
    {
        var fitted = await new NutsSampler(TestData.LinearModel, Data).WithChains(1).WithWarmup(50).WithSamples(20).SampleAsync();
        Assert.Equal(20, fitted.Posterior()["InterceptLayer_b_beta"].Shape[0]);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Sampler().SampleAsync(null, new CancellationToken(true)));
    }

    [Fact]
    public void SettingsAreCheckedByTheCoreAndNameTheSetting()
    {
        var s = new NutsSampler(TestData.LinearModel, Data);
        Assert.Equal("Chains", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithChains(0)).ParamName);
        Assert.Equal("TargetAccept", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithTargetAcceptance(1.5)).ParamName);
        Assert.Equal("Thin", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithSamples(10, thin: 0)).ParamName);
        Assert.Equal("MaxTreeDepth", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithMaxTreeDepth(0)).ParamName);
        Assert.Equal("InitialStepSize", Assert.Throws<ArgumentOutOfRangeException>(() => s.WithInitialStepSize(-1)).ParamName);
        Assert.Throws<ArgumentNullException>(() => new NutsSampler(null!, Data));
        var bad = new DataSet().Add("x", NdArray.FromMatrix(new double[,] { { 1 }, { double.NaN } })).Add("y", NdArray.FromArray([1.0, 2.0]));
        var ex = Assert.Throws<ArgumentException>(() => new NutsSampler(TestData.LinearModel, bad).Sample());
        Assert.Contains("x", ex.Message);
    }

    [Fact]
    public void ASampledPosteriorSurvivesSaveAndLoadAndWritesItsReport()
    {
        var fitted = Sampled.Value;
        var dir = Path.Combine(Path.GetTempPath(), $"fb-nuts-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "posterior.json");
            fitted.Save(path);
            var loaded = Sampler().Load(path);
            Assert.True(loaded.IsSampled);
            Assert.Equal(fitted.Posterior()["AdaptiveLayer_x_beta"].ToArray(), loaded.Posterior()["AdaptiveLayer_x_beta"].ToArray());
            Assert.Equal(fitted.Summary().Select(s => s.RHat), loaded.Summary().Select(s => s.RHat));

            var report = Path.Combine(dir, "report.html");
            fitted.SaveReport(report, Data);
            var html = File.ReadAllText(report);
            Assert.Contains("id=\"chart-trace\"", html);
            Assert.Contains("id=\"chart-energy\"", html);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}

/// <summary>An IProgress that runs its action on the reporting thread (Progress&lt;T&gt; posts asynchronously).</summary>
internal sealed class SyncProgress<T>(Action<T> onReport) : IProgress<T>
{
    public void Report(T value) => onReport(value);
}
