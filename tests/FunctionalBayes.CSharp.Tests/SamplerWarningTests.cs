using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>Sampler warnings reach C# as typed values: a kind and Stan's text.</summary>
public class SamplerWarningTests
{
    [Fact]
    public void TooFewDrawsWarnOfLowEssWithKindAndText()
    {
        // 2 chains of 10 draws: below the ESS threshold of 100 per chain, so the ESS warnings are certain
        var fitted = new NutsSampler(TestData.LinearModel, TestData.Linear(50)).WithChains(2).WithWarmup(60).WithSamples(10).WithSeed(3).Sample();
        var bulk = Assert.Single(fitted.Warnings, w => w.Kind == SamplerWarningKind.LowBulkEss);
        Assert.StartsWith("Bulk Effective Samples Size (ESS) is too low (below 200 for ", bulk.Text);
        Assert.Equal(bulk.Text, bulk.ToString());
        Assert.Contains(fitted.Warnings, w => w.Kind == SamplerWarningKind.LowTailEss && w.Text.StartsWith("Tail Effective Samples Size"));
    }
}
