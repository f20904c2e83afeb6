using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>
/// Bad data named as such through the facade (issue 15): non-finite inputs and observations outside their
/// site's support are refused before fitting, predicting or exporting, with the key or site, the row and the
/// value; predicting with the training data predicts the observed site; a fitter without a run length uses
/// the core's default.
/// </summary>
public class EdgeTests
{
    private static BayesModel<NdArray> Counts(DataSet d) =>
        from mu in Layer.Adaptive().Apply("x", d["x"])
        from y in Link.Poisson("y", mu, d.GetOrNull("y"))
        select y;

    private static BayesModel<NdArray> Classes(DataSet d) =>
        from b in Bayes.Sample("w", Prior.Normal(NdArray.Zeros(3), 1))
        from y in Link.Categorical("y", d["x"] * b, d.GetOrNull("y"))
        select y;

    [Fact]
    public void ANaNInTheDataIsNamedBeforeFitting()
    {
        var data = TestData.Linear(10);
        var x = data["x"].ToArray();
        x[3] = double.NaN;
        var bad = new DataSet().Add("x", NdArray.Create([10, 1], x)).Add("y", data["y"]);
        var ex = Assert.Throws<ArgumentException>(() => new SviFitter(TestData.LinearModel, bad).ForSteps(5).Fit());
        Assert.Contains("'x'", ex.Message);
        Assert.Contains("row 3, column 0", ex.Message);
        Assert.Contains("NaN", ex.Message);
    }

    [Fact]
    public void ObservationsOutsideTheirSupportAreNamedBeforeFitting()
    {
        var data = new DataSet()
            .Add("x", NdArray.Create([4, 1], [0.1, 0.2, 0.3, 0.4]))
            .Add("y", NdArray.FromArray([1.0, 0.0, -1.0, 2.0]));
        var ex = Assert.Throws<ArgumentException>(() => new SviFitter(Counts, data).ForSteps(5).Fit());
        Assert.Contains("'y'", ex.Message);
        Assert.Contains("Poisson", ex.Message);
        Assert.Contains("row 2", ex.Message);
        Assert.Contains("-1", ex.Message);
        Assert.Contains("non-negative integer", ex.Message);

        // 1-based class labels for a categorical
        var labels = new DataSet()
            .Add("x", NdArray.Create([3, 1], [0.1, 0.2, 0.3]))
            .Add("y", NdArray.FromArray([1.0, 2.0, 3.0]));
        var ex2 = Assert.Throws<ArgumentException>(() => new SviFitter(Classes, labels).ForSteps(5).Fit());
        Assert.Contains("'y'", ex2.Message);
        Assert.Contains("row 2", ex2.Message);
        Assert.Contains("1-based", ex2.Message);
    }

    [Fact]
    public void PredictingWithTheTrainingDataPredictsTheObservedSite()
    {
        var data = TestData.Linear(20);
        var fitted = new SviFitter(TestData.LinearModel, data).WithLearningRate(0.05).ForSteps(200).Fit();
        var withY = fitted.Predict(data, samples: 100, seed: 3);
        var withoutY = fitted.Predict(data.Without("y"), samples: 100, seed: 3);
        Assert.True(withY.ContainsKey("y"));
        Assert.Equal(withoutY["y"].Mean, withY["y"].Mean);
        Assert.Equal(withoutY["y"].Std, withY["y"].Std);

        // and non-finite inputs are refused in prediction and export
        var x = data["x"].ToArray();
        x[0] = double.PositiveInfinity;
        var bad = new DataSet().Add("x", NdArray.Create([20, 1], x));
        var ex = Assert.Throws<ArgumentException>(() => fitted.Predict(bad));
        Assert.Contains("'x'", ex.Message);
        Assert.Contains("row 0", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => fitted.ExportOnnx(bad));
        Assert.Contains("'x'", ex2.Message);
        Assert.Throws<ArgumentException>(() => fitted.PredictPosteriorMean(bad));
    }

    [Fact]
    public void WithoutARunLengthTheCoreDefaultIsUsed()
    {
        var fitter = new SviFitter(TestData.LinearModel, TestData.Linear(8));
        Assert.Equal(SviRunOptions.DefaultSteps, fitter.TotalSteps);
        var fitted = fitter.Fit();
        Assert.Equal(SviRunOptions.DefaultSteps, fitted.Losses.Count);
        // an explicit length still wins
        Assert.Equal(7, fitter.ForSteps(7).TotalSteps);
    }
}
