using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class ErrorTests
{
    [Fact]
    public void NullArgumentsNameTheParameter()
    {
        var x = NdArray.Zeros(3, 2);
        Assert.Equal("loc", Assert.Throws<ArgumentNullException>(() => Prior.Normal(null!, 1)).ParamName);
        Assert.Equal("name", Assert.Throws<ArgumentNullException>(() => Layer.Adaptive().Apply(null!, x)).ParamName);
        Assert.Equal("x", Assert.Throws<ArgumentNullException>(() => Layer.Adaptive().Apply("x", null!)).ParamName);
        Assert.Equal("scalePrior", Assert.Throws<ArgumentNullException>(() => Layer.Adaptive().WithScalePrior(null!)).ParamName);
        Assert.Equal("yHat", Assert.Throws<ArgumentNullException>(() => Link.Gaussian("y", null!, null)).ParamName);
        Assert.Equal("prior", Assert.Throws<ArgumentNullException>(() => Bayes.Sample("w", null!)).ParamName);
        Assert.Equal("selector", Assert.Throws<ArgumentNullException>(() => Bayes.Return(1).Select<int>(null!)).ParamName);
        Assert.Equal("model", Assert.Throws<ArgumentNullException>(() => new SviFitter(null!, TestData.Linear(10))).ParamName);
        Assert.Equal("data", Assert.Throws<ArgumentNullException>(() => new SviFitter(TestData.LinearModel, null!)).ParamName);
        Assert.Equal("values", Assert.Throws<ArgumentNullException>(() => NdArray.FromArray((double[])null!)).ParamName);
        Assert.Equal("newData", Assert.Throws<ArgumentNullException>(() =>
            new SviFitter(TestData.LinearModel, TestData.Linear(10)).ForSteps(1).Fit().Predict(null!)).ParamName);
    }

    [Fact]
    public void MismatchedRowsNameBothShapes()
    {
        var x = NdArray.Zeros(100, 5);
        var y = NdArray.Zeros(90);
        var ex = Assert.Throws<ArgumentException>(() => new DataSet().Add("x", x).Add("y", y));
        Assert.Contains("[90]", ex.Message);
        Assert.Contains("[100, 5]", ex.Message);

        // the link checks too, when a model is built from arrays directly
        var model = from mu in Layer.Adaptive().Apply("x", x)
                    from obs in Link.Gaussian("y", mu, y)
                    select obs;
        var ex2 = Assert.Throws<ArgumentException>(() => model.Trace());
        Assert.Contains("[90]", ex2.Message);
        Assert.Contains("[100, 1]", ex2.Message);

        var ex3 = Assert.Throws<ArgumentException>(() => x.MatMul(NdArray.Zeros(4, 1)));
        Assert.Contains("[100, 5]", ex3.Message);
        Assert.Contains("[4, 1]", ex3.Message);
    }

    [Fact]
    public void InvalidPriorsNameTheDistributionAndParameter()
    {
        var ex = Assert.Throws<ArgumentException>(() => Prior.Normal(0, -1));
        Assert.Equal("scale", ex.ParamName);
        Assert.Contains("Normal", ex.Message);
        Assert.Contains("positive", ex.Message);

        var ex2 = Assert.Throws<ArgumentException>(() => Prior.HalfCauchy(NdArray.FromArray([1.0, -2.0])));
        Assert.Contains("HalfCauchy", ex2.Message);

        // a scale prior that is not on positive values, refused when the builder is made
        var ex3 = Assert.Throws<ArgumentException>(() => Layer.Adaptive().WithScalePrior(Prior.Normal(0, 1)));
        Assert.Contains("AdaptiveLayer", ex3.Message);
        Assert.Contains("Normal", ex3.Message);

        var ex4 = Assert.Throws<ArgumentException>(() => Layer.FM().WithCoefficients(CoefficientFamily.StudentT(-3)));
        Assert.Contains("FMLayer", ex4.Message);

        Assert.Throws<ArgumentException>(() => Layer.Horseshoe().WithTau0(-1));
        Assert.Throws<ArgumentException>(() => Layer.Intercept().WithPrior(Prior.Normal(NdArray.Zeros(3), 1)));
        Assert.Throws<ArgumentException>(() => ObservationScale.Sampled(Prior.Normal(0, 1)));
    }

    [Fact]
    public void StepsAndEpochsReplaceEachOtherAndBadValuesAreRefused()
    {
        var f = new SviFitter(TestData.LinearModel, TestData.Linear(10));
        // a fit runs for steps or for epochs: the later call wins
        Assert.Equal(6, f.ForSteps(100).ForEpochs(3, 5).TotalSteps);
        Assert.Equal(100, f.ForEpochs(3, 5).ForSteps(100).TotalSteps);
        Assert.Equal("Steps", Assert.Throws<ArgumentOutOfRangeException>(() => f.ForSteps(0)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => f.WithLearningRate(double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => f.WithEarlyStopping(relativeTolerance: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => f.ForSteps(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => f.ForEpochs(1, 0));
        Assert.Throws<ArgumentException>(() => f.WithGuide(GuideKind.AutoNormal, rank: 2));
        Assert.Throws<ArgumentException>(() => new SviFitter(TestData.LinearModel, new DataSet()));
    }

    [Fact]
    public void MissingDataEntriesListWhatThereIs()
    {
        var ex = Assert.Throws<KeyNotFoundException>(() => TestData.Linear(10)["z"]);
        Assert.Contains("x, y", ex.Message);
    }

    [Fact]
    public void DivergenceSurfacesAsAFacadeException()
    {
        var data = TestData.Linear(50);
        var f = new SviFitter(TestData.LinearModel, data).WithOptimizer(SviOptimizer.Sgd(1e6)).ForSteps(50);
        var ex = Assert.Throws<FitDivergedException>(() => f.Fit());
        Assert.Contains("not finite", ex.Message);
        Assert.NotEmpty(ex.LastFiniteParameters);
    }
}
