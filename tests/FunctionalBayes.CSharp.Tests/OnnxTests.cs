using FunctionalBayes.Fluent;
using FunctionalBayes.OnnxRuntime;
using Xunit;

namespace FunctionalBayes.CSharp.Tests;

public class OnnxTests
{
    [Fact]
    public void ExportedPredictorAgreesWithThePosteriorMeanPredictionInProcess()
    {
        var data = TestData.QuickStart(1000);
        var fitted = new SviFitter(TestData.QuickStartModel, data)
            .WithLearningRate(0.05, LearningRateSchedule.WarmupCosine)
            .ForEpochs(30, batchSize: 250)
            .WithSeed(1)
            .Fit();
        var heldOut = new DataSet().Add("x", RandomKey.FromSeed(9).Normal(37, 5));
        var path = Path.Combine(Path.GetTempPath(), $"facade-{Guid.NewGuid():N}.onnx");
        fitted.ExportOnnx(path, heldOut);

        using var predictor = OnnxModels.Load(path);
        Assert.Equal("x", predictor.Inputs[0].Name);
        Assert.Equal("y_mean", predictor.Outputs[0].Name);
        var x = heldOut["x"];
        var onnx = predictor.Run("x", x.ToArray().Select(v => (float)v).ToArray(), [37, 5], out var shape);
        Assert.Equal(new long[] { 37 }, shape);

        var expected = fitted.PredictPosteriorMean(heldOut)["y_mean"].ToArray();
        for (var i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(onnx[i] - expected[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"row {i}: {onnx[i]} vs {expected[i]}");
        File.Delete(path);
    }

    [Fact]
    public void ExportArgumentsAreChecked()
    {
        var data = TestData.Linear();
        var fitted = new SviFitter(d => from mu in Layer.Adaptive().Apply("x", d["x"])
                                         from y in Link.Gaussian("y", mu, d.GetOrNull("y"))
                                         select y, data).ForSteps(5).Fit();
        Assert.Throws<ArgumentNullException>(() => fitted.ExportOnnx((DataSet)null!));
        Assert.Throws<ArgumentOutOfRangeException>(() => fitted.ExportOnnx(data.Without("y"), new OnnxExportSettings { PosteriorDraws = 0 }));
    }
}
