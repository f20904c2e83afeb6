using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The facade is F# (issue 25): what C# records and initializers gave stays, and its defaults and rules are
/// the core's.</summary>
public class FSharpFacadeTests
{
    [Fact]
    public void FormerRecordsKeepValueEqualityAndDeconstruction()
    {
        var a = new AevbTrainingProgress(3, 10, 1, 0.25, TimeSpan.FromSeconds(2));
        var b = new AevbTrainingProgress(3, 10, 1, 0.25, TimeSpan.FromSeconds(2));
        Assert.Equal(a, b);
        Assert.True(a == b);
        Assert.False(a != b);
        Assert.Equal(a.GetHashCode(), b.GetHashCode());
        Assert.NotEqual(a, new AevbTrainingProgress(4, 10, 1, 0.25, TimeSpan.FromSeconds(2)));
        var (step, total, epoch, loss, elapsed) = a;
        Assert.Equal((3, 10, 1, 0.25, TimeSpan.FromSeconds(2)), (step, total, epoch, loss, elapsed));
    }

    [Fact]
    public void DataSetInitializersAddAndCheckRows()
    {
        var x = NdArray.FromArray([1.0, 2.0, 3.0]);
        var byIndex = new DataSet { ["x"] = x };
        var byAdd = new DataSet { { "x", x }, { "y", new[] { 1.0, 2.0, 3.0 } } };
        Assert.Equal(3, byIndex.Rows);
        Assert.Equal(["x", "y"], byAdd.Keys);
        Assert.Throws<ArgumentException>(() => new DataSet { ["x"] = x, ["x"] = x });
    }

    [Fact]
    public void StudentTLinkTakesTheCoresDefaultScale()
    {
        // the observation scale's default is the core's Links.defaultSigma: a site "{name}_sigma" ~ Exponential(1)
        var trace = Link.StudentT("y", NdArray.Zeros(4), null).Trace(seed: 1);
        Assert.Equal("Exponential", trace["y_sigma"].DistributionName);
        Assert.Equal(SiteRole.Latent, trace["y_sigma"].Role);
    }

    [Fact]
    public void AevbEpochsAreCheckedByTheCoresRunOptionsRule()
    {
        var ex = Assert.ThrowsAny<ArgumentException>(() => new AevbTrainer(dataDim: 4, latentDim: 2).ForEpochs(0));
        Assert.Contains("Epochs must be at least 1, got 0", ex.Message);
        Assert.ThrowsAny<ArgumentException>(() => new AevbTrainer(dataDim: 4, latentDim: 2).ForEpochs(2, batchSize: 0));
    }
}
