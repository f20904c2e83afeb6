using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

public class LinqTests
{
    [Fact]
    public void QuerySyntaxComposesLayersAndLinkIntoOneTrace()
    {
        var data = TestData.Linear(50);
        var x = data["x"];
        var yObs = data["y"];
        var model = from mu in Layer.Adaptive().Apply("x", x)
                    from b in Layer.Intercept().Apply("b")
                    from y in Link.Gaussian("y", mu + b, yObs)
                    select y;

        var trace = model.Trace(seed: 3);
        Assert.Equal(
            ["AdaptiveLayer_x_scale", "AdaptiveLayer_x_beta", "InterceptLayer_b_beta", "y_sigma", "y"],
            trace.Sites.Select(s => s.Name));
        Assert.Equal(SiteRole.Observed, trace["y"].Role);
        Assert.Equal(SiteRole.Latent, trace["AdaptiveLayer_x_beta"].Role);
        Assert.Contains("HalfNormal", trace["AdaptiveLayer_x_scale"].DistributionName);
        Assert.Equal([1, 1], trace["AdaptiveLayer_x_beta"].Value!.Shape);
        Assert.Equal(yObs.ToArray(), trace.Result.ToArray());
        Assert.True(double.IsFinite(trace.LogJoint));
        Assert.Equal(["AdaptiveLayer_x_scale", "AdaptiveLayer_x_beta", "InterceptLayer_b_beta", "y_sigma"], trace.LatentNames);
        var missing = Assert.Throws<KeyNotFoundException>(() => trace["nope"]);
        Assert.Contains("AdaptiveLayer_x_beta", missing.Message);
    }

    [Fact]
    public void SelectAndLetWorkAndPriorDrawsStack()
    {
        var x = NdArray.FromMatrix(new double[,] { { 1 }, { 2 }, { 3 } });
        var model = from w in Bayes.Sample("w", Prior.Normal(0, 1))
                    let scaled = w * 2.0
                    from mu in Bayes.Deterministic("mu", x * scaled)
                    from y in Bayes.Observe("y", Prior.Normal(mu.Flatten(), 0.5), null)
                    select new { w, y };

        var draws = model.SamplePrior(draws: 20, seed: 1);
        Assert.Equal(["mu", "w", "y"], draws.Keys.OrderBy(k => k));
        Assert.Equal([20], draws["w"].Shape);
        Assert.Equal([20, 3, 1], draws["mu"].Shape);
        Assert.Equal([20, 3], draws["y"].Shape);

        var t = model.Trace(seed: 4);
        Assert.Equal(SiteRole.Latent, t["y"].Role); // no data: a prediction
        Assert.Equal(t["w"].Value!.ToScalar(), t.Result.w.ToScalar());
        Assert.Contains("w", model.Describe());
    }

    [Fact]
    public void PlatesFactorsAndParamsCompose()
    {
        var model = from s in Bayes.Param("s", 1.0, ParamConstraint.Positive)
                    from m in Bayes.Sample("m", Prior.Normal(0, s))
                    from _ in Bayes.Factor("penalty", -0.5 * m * m)
                    from obs in Bayes.Plate("rows", 4, idx => Bayes.Observe("y", Prior.Normal(m, 1).Expand(4), NdArray.FromArray([0.1, 0.2, 0.3, 0.4])))
                    select obs;
        var t = model.Trace(seed: 1);
        Assert.Equal(SiteRole.Param, t["s"].Role);
        Assert.Equal(SiteRole.Factor, t["penalty"].Role);
        Assert.Equal(["rows"], t["y"].Plates);
        Assert.Contains(t.Sites, site => site.Role == SiteRole.Plate && site.Name == "rows");
    }

    [Fact]
    public void LinqComposedModelFitsAndPredicts()
    {
        var data = TestData.Linear(200);
        var fitted = SviFitter.Create(TestData.LinearModel, data)
            .WithGuide(GuideKind.AutoNormal)
            .WithLearningRate(0.05)
            .ForSteps(1500)
            .WithSeed(1)
            .Fit();
        var summary = fitted.Summary(samples: 400);
        Assert.Equal(2.0, summary.Single(s => s.Name == "AdaptiveLayer_x_beta").Mean[0], 1);
        Assert.Equal(1.0, summary.Single(s => s.Name == "InterceptLayer_b_beta").Mean[0], 1);
        Assert.Equal("AutoNormal", fitted.GuideName);

        var newX = NdArray.FromMatrix(new double[,] { { -1 }, { 0 }, { 1 } });
        var pred = fitted.Predict(new DataSet().Add("x", newX), samples: 200);
        Assert.Equal([3], pred["y"].Shape);
        Assert.Equal(-1.0, pred["y"].Mean[0], 0);
        Assert.Equal(3.0, pred["y"].Mean[2], 0);
        Assert.All(pred["y"].Std, s => Assert.InRange(s, 0.1, 1.0));
    }

    [Fact]
    public void AnonymousResultModelsFitThroughCreate()
    {
        var data = TestData.Linear(100);
        var fitted = SviFitter.Create(d =>
                from b in Layer.Intercept().Apply("b")
                from y in Link.Gaussian("y", b, d.GetOrNull("y"))
                select new { b, y }, data)
            .ForSteps(50)
            .Fit();
        Assert.Equal(50, fitted.Losses.Count);
    }
}
