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
}
