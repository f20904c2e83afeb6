using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class SaveLoadTests
{
    [Theory]
    [InlineData(GuideKind.AutoDiagonalNormal)]
    [InlineData(GuideKind.AutoNormal)]
    [InlineData(GuideKind.AutoLaplaceApproximation)]
    public void SaveThenLoadGivesIdenticalPredictions(GuideKind kind)
    {
        var data = TestData.Linear(100);
        var fitter = new SviFitter(TestData.LinearModel, data).WithGuide(kind).ForSteps(200).WithSeed(7);
        var fitted = fitter.Fit();
        var path = Path.Combine(Path.GetTempPath(), $"fb-csharp-{Guid.NewGuid():N}.json");
        try
        {
            fitted.Save(path);
            var loaded = FittedModel.Load(path, fitter);
            Assert.Equal(fitted.Losses, loaded.Losses);
            Assert.Equal(fitted.GuideName, loaded.GuideName);
            Assert.Equal(fitted.Parameters.Keys, loaded.Parameters.Keys);
            foreach (var (k, v) in fitted.Parameters)
                Assert.Equal(v.ToArray(), loaded.Parameters[k].ToArray());

            var newData = new DataSet().Add("x", NdArray.FromMatrix(new double[,] { { -1 }, { 0.5 }, { 2 } }));
            var a = fitted.Predict(newData, samples: 30, seed: 9);
            var b = loaded.Predict(newData, samples: 30, seed: 9);
            Assert.Equal(a["y"].Mean, b["y"].Mean);
            Assert.Equal(a["y"].Std, b["y"].Std);
            Assert.Equal(fitted.Summary(100).Select(s => s.Mean), loaded.Summary(100).Select(s => s.Mean));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void LoadingIntoAnotherGuideIsRefused()
    {
        var data = TestData.Linear(50);
        var fitted = new SviFitter(TestData.LinearModel, data).WithGuide(GuideKind.AutoDiagonalNormal).ForSteps(5).Fit();
        var path = Path.Combine(Path.GetTempPath(), $"fb-csharp-{Guid.NewGuid():N}.json");
        try
        {
            fitted.Save(path);
            var ex = Assert.Throws<InvalidDataException>(() =>
                new SviFitter(TestData.LinearModel, data).WithGuide(GuideKind.AutoNormal).ForSteps(5).Load(path));
            Assert.Contains("AutoDiagonalNormal", ex.Message);
            Assert.Contains("AutoNormal", ex.Message);
            Assert.Throws<FileNotFoundException>(() => FittedModel.Load(path + ".missing", new SviFitter(TestData.LinearModel, data)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static BayesModel<NdArray> MeanModel(DataSet data) =>
        from m in Bayes.Sample("m", Prior.Normal(0, 10))
        from y in Bayes.Observe("y", Prior.Normal(m, 1).Expand(6), data.GetOrNull("y"))
        select y;

    [Fact]
    public void AGuideOfYourOwnFitsSavesAndLoadsThroughItsFitter()
    {
        var data = new DataSet().Add("y", NdArray.FromArray([0.3, 1.9, 1.1, 0.4, 1.6, 0.8]));
        var guide = from loc in Bayes.Param("loc", 0.0)
                    from m in Bayes.Sample("m", Prior.Normal(loc, 0.5))
                    select m;
        var fitter = new SviFitter(MeanModel, data).WithGuide(guide, "mine").ForSteps(40).WithSeed(3);
        var fitted = fitter.Fit();
        Assert.Equal("mine", fitted.GuideName);
        Assert.Equal(new[] { "loc" }, fitted.Parameters.Keys);
        var path = Path.Combine(Path.GetTempPath(), $"fb-csharp-{Guid.NewGuid():N}.json");
        try
        {
            fitted.Save(path);
            var loaded = FittedModel.Load(path, fitter);
            Assert.Equal("mine", loaded.GuideName);
            Assert.Equal(fitted.Losses, loaded.Losses);
            Assert.Equal(fitted.Parameters["loc"].ToArray(), loaded.Parameters["loc"].ToArray());
            // the file holds no guide: loading without one says how to give it
            var ex = Assert.Throws<ArgumentException>(() => FittedModel.Load(path, MeanModel, data));
            Assert.Contains(path, ex.Message);
            Assert.Contains("WithGuide", ex.Message);
        }
        finally
        {
            File.Delete(path);
        }
        // an autoguide replaces the guide of your own
        Assert.Equal("AutoNormal", fitter.WithGuide(GuideKind.AutoNormal).ForSteps(5).Fit().GuideName);
    }

    private static BayesModel<NdArray> ExtraObservation(DataSet data) =>
        from mu in Layer.Adaptive().Apply("x", data["x"])
        from b in Layer.Intercept().Apply("b")
        from y in Link.Gaussian("y", mu + b, data.GetOrNull("y"))
        from twice in Bayes.Observe("y_twice", Prior.Normal(mu + b, 1), data.GetOrNull("y"))
        select y;

    private static BayesModel<NdArray> ReadsZ(DataSet data) =>
        from mu in Layer.Adaptive().Apply("x", data["z"])
        from b in Layer.Intercept().Apply("b")
        from y in Link.Gaussian("y", mu + b, data.GetOrNull("y"))
        select y;

    /// <summary>Issue 23: Save records the observed sites and the data keys, whether the model was fitted by SVI or NUTS.</summary>
    [Fact]
    public void SavedFilesRefuseAnotherObservedSiteOrDataKey()
    {
        var data = TestData.Linear(50);
        var byZ = new DataSet().Add("z", data["x"]).Add("y", data["y"]);
        var fits = new[]
        {
            new SviFitter(TestData.LinearModel, data).ForSteps(5).Fit(),
            new NutsSampler(TestData.LinearModel, data).WithChains(1).WithWarmup(20).WithSamples(5).WithSeed(3).Sample(),
        };
        foreach (var fitted in fits)
        {
            var path = Path.Combine(Path.GetTempPath(), $"fb-csharp-{Guid.NewGuid():N}.json");
            try
            {
                fitted.Save(path);
                var obs = Assert.Throws<InvalidDataException>(() =>
                    fitted.IsSampled ? new NutsSampler(ExtraObservation, data).Load(path) : new SviFitter(ExtraObservation, data).Load(path));
                Assert.Contains(path, obs.Message);
                Assert.Contains("the model has the observed site 'y_twice'", obs.Message);
                var key = Assert.Throws<InvalidDataException>(() =>
                    fitted.IsSampled ? new NutsSampler(ReadsZ, byZ).Load(path) : new SviFitter(ReadsZ, byZ).Load(path));
                Assert.Contains("the data key 'x'", key.Message);
            }
            finally
            {
                File.Delete(path);
            }
        }
    }
}
