using FunctionalBayes.Fluent;

namespace FunctionalBayes.CSharp.Tests;

/// <summary>The Bayesian neural-network builders: site names, shapes, the forward pass recomputed from the
/// traced weights, and clear errors.</summary>
public class BayesianNetTests
{
    private static readonly NdArray X = RandomKey.FromSeed(3).Normal(6, 3);

    private static void AssertClose(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 12);
    }

    [Fact]
    public void DenseComputesActivationOfXwPlusB()
    {
        var trace = BayesianNet.Dense().Apply("l", X, units: 4, activation: Activation.Tanh).Trace(seed: 5);
        var w = trace["BayesianDenseLayer_l_w"].Value!;
        var b = trace["BayesianDenseLayer_l_b"].Value!;
        Assert.Equal([3, 4], w.Shape);
        Assert.Equal([4], b.Shape);
        Assert.Equal([6, 4], trace.Result.Shape);
        AssertClose((X.MatMul(w) + b).Tanh().ToArray(), trace.Result.ToArray());
    }

    [Fact]
    public void DenseWithoutBiasHasOnlyWeights()
    {
        var layer = BayesianNet.Dense().WithPriors(Prior.Laplace(0, 2), null);
        Assert.Null(layer.BiasPrior);
        Assert.Contains("Laplace", layer.WeightPrior.Name);
        var trace = layer.Apply("l", X, units: 2).Trace(seed: 5);
        Assert.False(trace.Contains("BayesianDenseLayer_l_b"));
        AssertClose(X.MatMul(trace["BayesianDenseLayer_l_w"].Value!).ToArray(), trace.Result.ToArray());
    }

    [Fact]
    public void MlpNamesLayersByIndex()
    {
        var trace = BayesianNet.Mlp().Apply("net", X, [5, 5, 1]).Trace(seed: 7);
        foreach (var i in new[] { 0, 1, 2 })
        {
            Assert.True(trace.Contains($"BayesianDenseLayer_net{i}_w"));
            Assert.True(trace.Contains($"BayesianDenseLayer_net{i}_b"));
        }
        Assert.Equal([6, 1], trace.Result.Shape);
        NdArray V(string s) => trace[s].Value!;
        var h = (X.MatMul(V("BayesianDenseLayer_net0_w")) + V("BayesianDenseLayer_net0_b")).Tanh();
        h = (h.MatMul(V("BayesianDenseLayer_net1_w")) + V("BayesianDenseLayer_net1_b")).Tanh();
        AssertClose((h.MatMul(V("BayesianDenseLayer_net2_w")) + V("BayesianDenseLayer_net2_b")).ToArray(), trace.Result.ToArray());
    }

    [Fact]
    public void HierarchicalDenseIsNonCenteredByDefault()
    {
        var trace = BayesianNet.HierarchicalDense().Apply("h", X, groups: 4, units: 2).Trace(seed: 9);
        var mu = trace["HierarchicalDenseLayer_h_mu"].Value!;
        var scale = trace["HierarchicalDenseLayer_h_scale"].Value!;
        var eps = trace["HierarchicalDenseLayer_h_eps"].Value!;
        Assert.Equal([3, 2], mu.Shape);
        Assert.Equal([1], scale.Shape);
        Assert.Equal([4, 3, 2], eps.Shape);
        Assert.Contains("HalfNormal", trace["HierarchicalDenseLayer_h_scale"].DistributionName);
        Assert.Equal([4, 6, 2], trace.Result.Shape);
        AssertClose(X.MatMul(mu + scale * eps).ToArray(), trace.Result.ToArray());
    }

    [Fact]
    public void HierarchicalDenseCenteredWithBias()
    {
        var layer = BayesianNet.HierarchicalDense().WithParameterization(WeightParameterization.Centered).WithBias();
        Assert.Equal(WeightParameterization.Centered, layer.Parameterization);
        Assert.True(layer.HasBias);
        var trace = layer.Apply("h", X, groups: 4, units: 2).Trace(seed: 9);
        Assert.False(trace.Contains("HierarchicalDenseLayer_h_eps"));
        var w = trace["HierarchicalDenseLayer_h_w"].Value!;
        var b = trace["HierarchicalDenseLayer_h_bias"].Value!;
        Assert.Equal([4, 3, 2], w.Shape);
        Assert.Equal([4, 1, 2], b.Shape);
        Assert.True(trace.Contains("HierarchicalDenseLayer_h_bias_mu"));
        AssertClose((X.MatMul(w) + b).ToArray(), trace.Result.ToArray());
    }

    [Fact]
    public void HierarchicalMlpPoolsTheChosenLayers()
    {
        var trace = BayesianNet.HierarchicalMlp().Apply("net", X, groups: 4, widths: [5, 5, 1], hierarchicalLayers: [0, 1]).Trace(seed: 13);
        Assert.True(trace.Contains("HierarchicalDenseLayer_net0_eps"));
        Assert.True(trace.Contains("HierarchicalDenseLayer_net1_eps"));
        Assert.True(trace.Contains("BayesianDenseLayer_net2_w"));
        Assert.True(trace.Contains("BayesianDenseLayer_net2_b"));
        Assert.False(trace.Contains("BayesianDenseLayer_net0_w"));
        Assert.Equal([4, 6, 1], trace.Result.Shape);
        Assert.All(trace.Result.ToArray(), v => Assert.True(double.IsFinite(v)));
    }

    [Fact]
    public void InvalidSettingsThrowNamingTheLayer()
    {
        var discrete = Assert.Throws<ArgumentException>(() => BayesianNet.Dense().WithPriors(Prior.Poisson(2), null));
        Assert.Contains("BayesianDenseLayer", discrete.Message);
        var scale = Assert.Throws<ArgumentException>(() => BayesianNet.HierarchicalDense().WithPriors(Prior.Normal(0, 1), Prior.Normal(0, 1)));
        Assert.Contains("HierarchicalDenseLayer", scale.Message);
        var index = Assert.Throws<ArgumentException>(() => BayesianNet.HierarchicalMlp().Apply("net", X, groups: 2, widths: [5, 1], hierarchicalLayers: [2]));
        Assert.Contains("outside", index.Message);
        var groups = Assert.Throws<ArgumentException>(() => BayesianNet.HierarchicalDense().Apply("h", X.Reshape(2, 3, 3), groups: 4, units: 2));
        Assert.Contains("groups", groups.Message);
        Assert.Throws<ArgumentNullException>(() => BayesianNet.Mlp().Apply("net", X, null!));
    }
}
