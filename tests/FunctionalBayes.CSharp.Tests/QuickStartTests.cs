using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class QuickStartTests
{
    [Fact]
    public void QuickStartRecoversCoefficientsAndSigma()
    {
        var data = TestData.QuickStart(2000);
        var fitted = new SviFitter(TestData.QuickStartModel, data)
            .WithLearningRate(0.05, LearningRateSchedule.WarmupCosine)
            .ForEpochs(300, batchSize: 200)
            .WithSeed(0)
            .Fit();

        Assert.Equal(3000, fitted.Losses.Count);
        Assert.All(fitted.Losses, l => Assert.True(double.IsFinite(l)));
        var summary = fitted.Summary(samples: 500, seed: 2);
        IReadOnlyList<double> Est(string name) => summary.Single(s => s.Name == name).Mean;

        var truth = new[] { TestData.Bias }.Concat(TestData.Beta1).Concat(TestData.Beta2).ToArray();
        var est = Est("InterceptLayer_b_beta").Concat(Est("AdaptiveLayer_x_beta")).Concat(Est("AdaptiveLayer_x2_beta")).ToArray();
        var rmse = Math.Sqrt(truth.Zip(est, (a, b) => (a - b) * (a - b)).Average());
        Assert.True(rmse < 0.15, $"RMSE of the linear and quadratic coefficients and the intercept: {rmse}");
        var sigmaHat = Est("y_sigma")[0];
        Assert.True(Math.Abs(sigmaHat - TestData.Sigma) < 0.05, $"sigma {sigmaHat}, true {TestData.Sigma}");

        // posterior predictive on the training x: close to y
        var pred = fitted.Predict(data.Without("y"), samples: 50);
        var y = data["y"].ToArray();
        var predRmse = Math.Sqrt(pred["y"].Mean.Zip(y, (a, b) => (a - b) * (a - b)).Average());
        Assert.Equal([2000], pred["y"].Shape);
        Assert.True(predRmse < 0.8, $"predictive RMSE {predRmse}");
    }
}
