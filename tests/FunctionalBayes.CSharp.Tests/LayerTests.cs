using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>Every layer builder applies, with BLayers' site names and the documented output shape.</summary>
public class LayerTests
{
    private static readonly NdArray X = RandomKey.FromSeed(1).Normal(6, 3);
    private static readonly NdArray Z = RandomKey.FromSeed(2).Normal(6, 2);
    private static readonly NdArray Ids = NdArray.FromArray([0, 1, 2, 0, 1, 3]);
    private static readonly NdArray T = NdArray.FromArray([0.1, 0.5, -0.3, 0.9, -0.8, 0.0]);

    public static TheoryData<string, string, int[]> Cases() => new()
    {
        { "Adaptive", "AdaptiveLayer_l_beta", [6, 2] },
        { "FixedPrior", "FixedPriorLayer_l_beta", [6, 1] },
        { "Intercept", "InterceptLayer_l_beta", [1, 1] },
        { "FM", "FMLayer_l_theta", [6, 1] },
        { "FM3", "FM3Layer_l_theta", [6, 1] },
        { "LowRankInteraction", "LowRankInteractionLayer_l_theta2", [6, 1] },
        { "Interaction", "InteractionLayer_l_beta1", [6, 1] },
        { "Bilinear", "BilinearLayer_l_W", [6, 1] },
        { "LowRankBilinear", "LowRankBilinearLayer_l_B", [6, 1] },
        { "Embedding", "EmbeddingLayer_l_theta", [6, 2] },
        { "RandomEffects", "RandomEffectsLayer_l_theta", [6, 1] },
        { "RandomWalk", "RandomWalkLayer_l_theta", [6, 1] },
        { "RandomSlopes", "RandomSlopesLayer_l_beta", [6, 1] },
        { "AR1", "AR1Layer_l_rho", [6, 1] },
        { "FixedEffects", "FixedEffectsLayer_l_theta", [6, 1] },
        { "Horseshoe", "HorseshoeLayer_l_c2", [6, 1] },
        { "SpikeAndSlab", "SpikeAndSlabLayer_l_z", [6, 1] },
        { "HorseshoeInteraction", "HorseshoeInteractionLayer_l_tau", [6, 1] },
        { "PSpline", "PSplineLayer_l_differences", [6, 1] },
        { "Hsgp", "HSGPLayer_l_lengthscale", [6, 1] },
        { "Attention", "AttentionLayer_l_W_Q", [6, 1] },
        { "Mixture", "MixtureLayer_l_beta", [6, 1] },
    };

    private static BayesModel<NdArray> Build(string layer) => layer switch
    {
        "Adaptive" => Layer.Adaptive().WithScalePrior(Prior.HalfCauchy(1)).WithCoefficients(CoefficientFamily.Laplace()).Apply("l", X, units: 2),
        "FixedPrior" => Layer.FixedPrior().WithPrior(Prior.Laplace(0, 2)).Apply("l", X, activation: v => v.Tanh()),
        "Intercept" => Layer.Intercept().WithPrior(Prior.Normal(0, 5)).Apply("l"),
        "FM" => Layer.FM().WithCoefficients(CoefficientFamily.Cauchy()).Apply("l", X, lowRankDim: 2),
        "FM3" => Layer.FM3().Apply("l", X, lowRankDim: 2),
        "LowRankInteraction" => Layer.LowRankInteraction().Apply("l", X, Z, lowRankDim: 2),
        "Interaction" => Layer.Interaction().Apply("l", X, Z),
        "Bilinear" => Layer.Bilinear().Apply("l", X, Z),
        "LowRankBilinear" => Layer.LowRankBilinear().Apply("l", X, Z, lowRankDim: 1),
        "Embedding" => Layer.Embedding().Apply("l", Ids, numCategories: 4, embeddingDim: 2),
        "RandomEffects" => Layer.RandomEffects().WithScalePrior(Prior.Exponential(2)).Apply("l", Ids, numCategories: 4),
        "RandomWalk" => Layer.RandomWalk().Apply("l", Ids, numCategories: 4),
        "RandomSlopes" => Layer.RandomSlopes().WithScalePrior(Prior.HalfNormal(0.5)).Apply("l", X, Ids, numCategories: 4),
        "AR1" => Layer.AR1().WithRhoConcentration(3).WithNoncentered().Apply("l", Ids, numCategories: 4),
        "FixedEffects" => Layer.FixedEffects().WithPrior(Prior.StudentT(3, 0, 1)).Apply("l", Ids, numCategories: 4),
        "Horseshoe" => Layer.Horseshoe().WithSlab(2.0).WithTau0(0.5).Apply("l", X),
        "SpikeAndSlab" => Layer.SpikeAndSlab().WithGate(1, 1).Apply("l", X),
        "HorseshoeInteraction" => Layer.HorseshoeInteraction().Apply("l", X),
        "PSpline" => Layer.PSpline().WithDegree(3).Apply("l", T, Layer.MakeKnots(T.ToArray(), numKnots: 3)),
        "Hsgp" => Layer.Hsgp().WithSigmaPrior(Prior.HalfNormal(2)).Apply("l", T, Layer.HsgpBoundary(T.ToArray()), basisFunctions: 8),
        "Attention" => Layer.Attention().WithHeads(headDim: 2, numHeads: 2).Apply("l", X),
        "Mixture" => Layer.Mixture().WithComponents(Prior.Normal(0, 1), Prior.Laplace(0, 0.1)).WithWeights([0.5, 0.5]).Apply("l", X),
        _ => throw new ArgumentException(layer),
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void LayerAppliesWithBLayersSiteNames(string layer, string site, int[] outShape)
    {
        var trace = Build(layer).Trace(seed: 11);
        Assert.True(trace.Contains(site), $"{layer}: sites are {string.Join(", ", trace.Sites.Select(s => s.Name))}");
        Assert.Equal(outShape, trace.Result.Shape);
        Assert.All(trace.Result.ToArray(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void BuildersAreImmutable()
    {
        var a = Layer.Adaptive();
        var b = a.WithScalePrior(Prior.HalfCauchy(2));
        Assert.Contains("HalfNormal", a.ScalePrior.Name);
        Assert.Contains("HalfCauchy", b.ScalePrior.Name);
    }
}
