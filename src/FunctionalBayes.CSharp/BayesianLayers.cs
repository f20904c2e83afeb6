using Microsoft.FSharp.Core;
using FDist = FunctionalBayes.Distribution;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>How a hierarchical layer writes its per-group weights.</summary>
public enum WeightParameterization
{
    /// <summary>w_g = μ + σ·ε_g with ε_g ~ Normal(0, 1) (the default; samples well when groups have little data).</summary>
    NonCentered,
    /// <summary>w_g ~ Normal(μ, σ) (better when every group has much data).</summary>
    Centered,
}

/// <summary>The usual activations of neural-network layers, as functions of arrays.</summary>
public static class Activation
{
    private static Func<NdArray, NdArray> Of(FSharpFunc<FTensor?, FTensor?> f) => x =>
        NdArray.Wrap(f.Invoke((x ?? throw new ArgumentNullException(nameof(x))).Value));

    /// <summary>The identity.</summary>
    public static Func<NdArray, NdArray> Identity { get; } = Of(FunctionalBayes.Activations.identity);
    /// <summary>tanh.</summary>
    public static Func<NdArray, NdArray> Tanh { get; } = Of(FunctionalBayes.Activations.tanh);
    /// <summary>max(x, 0).</summary>
    public static Func<NdArray, NdArray> Relu { get; } = Of(FunctionalBayes.Activations.relu);
    /// <summary>1 / (1 + exp(−x)).</summary>
    public static Func<NdArray, NdArray> Sigmoid { get; } = Of(FunctionalBayes.Activations.sigmoid);
    /// <summary>log(1 + exp(x)).</summary>
    public static Func<NdArray, NdArray> Softplus { get; } = Of(FunctionalBayes.Activations.softplus);
}

/// <summary>
/// Bayesian neural-network layers as fluent builders: dense layers whose weights are sample sites, multilayer
/// perceptrons built from them, and their hierarchical forms over groups (per-group weights pooled around shared
/// means). Sites are named <c>{Layer}_{name}_{suffix}</c>, for example <c>BayesianDenseLayer_net0_w</c>.
/// <code>
/// var logits = BayesianNet.HierarchicalMlp().Apply("net", x, groups: 18, widths: [5, 5, 1], hierarchicalLayers: [0, 1]);
/// </code>
/// </summary>
public static class BayesianNet
{
    /// <summary>A dense layer, w ~ Normal(0, 1) and b ~ Normal(0, 1): output activation(x·w + b).</summary>
    public static BayesianDenseBuilder Dense() => new(BayesianDenseLayer.Default);
    /// <summary>A multilayer perceptron of dense layers with Normal(0, 1) weights and biases.</summary>
    public static BayesianMlpBuilder Mlp() => new(BayesianDenseLayer.Default);
    /// <summary>A hierarchical dense layer: μ ~ Normal(0, 1), σ ~ HalfNormal(1), w_g = μ + σ·ε_g, no bias.</summary>
    public static HierarchicalDenseBuilder HierarchicalDense() => new(HierarchicalDenseLayer.Default);
    /// <summary>A multilayer perceptron over groups whose chosen layers are hierarchical, the others shared.</summary>
    public static HierarchicalMlpBuilder HierarchicalMlp() => new(global::FunctionalBayes.HierarchicalMlp.Default);

    internal static FSharpOption<FDist>? Bias(Prior? p) => p is null ? null : FSharpOption<FDist>.Some(p.Value);

    internal static int[] Widths(int[]? widths) =>
        (widths ?? throw new ArgumentNullException(nameof(widths))).ToArray();

    internal static FunctionalBayes.Parameterization Param(WeightParameterization p) => p switch
    {
        WeightParameterization.NonCentered => FunctionalBayes.Parameterization.NonCentered,
        WeightParameterization.Centered => FunctionalBayes.Parameterization.Centered,
        _ => throw new ArgumentOutOfRangeException(nameof(p), p, "Unknown parameterization."),
    };
}

/// <summary>A Bayesian dense layer: w (d, units) ~ a weight prior, b (units) ~ a bias prior (optional); out = activation(x·w + b).</summary>
public sealed class BayesianDenseBuilder
{
    internal BayesianDenseLayer Layer { get; }
    internal BayesianDenseBuilder(BayesianDenseLayer layer) => Layer = layer;

    /// <summary>The weights' prior.</summary>
    public Prior WeightPrior => Prior.Wrap(Layer.WeightPrior);

    /// <summary>The biases' prior, or null for a layer without bias.</summary>
    public Prior? BiasPrior => Layer.BiasPrior is { } b ? Prior.Wrap(b.Value) : null;

    /// <summary>A builder with other priors (continuous scalar distributions).</summary>
    /// <param name="weightPrior">The weights' prior.</param>
    /// <param name="biasPrior">The biases' prior; null for a layer without bias.</param>
    /// <exception cref="ArgumentNullException"><paramref name="weightPrior"/> is null.</exception>
    /// <exception cref="ArgumentException">A prior is discrete or not scalar; the message names the layer.</exception>
    public BayesianDenseBuilder WithPriors(Prior weightPrior, Prior? biasPrior) =>
        new(BayesianDenseLayer.Create(global::FunctionalBayes.Fluent.Layer.P(weightPrior, nameof(weightPrior)), BayesianNet.Bias(biasPrior)));

    /// <summary>Calls the layer on x (…, n, d) (a vector is one column): output (…, n, units).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="units">Output units.</param>
    /// <param name="activation">Applied to the output; null for the identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is a scalar or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Layer.Call(name, global::FunctionalBayes.Fluent.Layer.X(x, nameof(x)), units, Convert.Activation(activation)));
    }
}

/// <summary>A multilayer perceptron of Bayesian dense layers with the same priors; layer i is named <c>{name}{i}</c>.</summary>
public sealed class BayesianMlpBuilder
{
    private readonly BayesianDenseLayer layer;
    internal BayesianMlpBuilder(BayesianDenseLayer layer) => this.layer = layer;

    /// <summary>The priors of every layer.</summary>
    public BayesianDenseBuilder Layer => new(layer);

    /// <summary>A builder whose layers have the priors of <paramref name="layer"/>.</summary>
    /// <param name="layer">A dense-layer builder, for example <c>BayesianNet.Dense().WithPriors(Prior.Normal(0, 2), null)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    public BayesianMlpBuilder WithLayer(BayesianDenseBuilder layer) => new((layer ?? throw new ArgumentNullException(nameof(layer))).Layer);

    /// <summary>Calls the network on x (…, n, d): output (…, n, widths[^1]).</summary>
    /// <param name="name">The network's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="widths">Every layer's units, the output layer last (BlackJAX's notebook: [5, 5, 1]).</param>
    /// <param name="activation">The hidden layers' activation; null for tanh.</param>
    /// <param name="outputActivation">The output layer's activation; null for the identity (logits).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/>, <paramref name="x"/> or <paramref name="widths"/> is null.</exception>
    /// <exception cref="ArgumentException">widths is empty or holds a width below 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int[] widths, Func<NdArray, NdArray>? activation = null, Func<NdArray, NdArray>? outputActivation = null)
    {
        Bayes.CheckName(name);
        var mlp = new BayesianMlp(layer);
        return Bayes.Wrap(mlp.Call(name, global::FunctionalBayes.Fluent.Layer.X(x, nameof(x)), BayesianNet.Widths(widths), Convert.Activation(activation), Convert.Activation(outputActivation)));
    }
}

/// <summary>
/// A hierarchical dense layer over groups: μ (d, units) ~ a mean prior, σ ~ a scale prior (one per layer, sampled on
/// the log scale), per-group weights w_g = μ + σ·ε_g (non-centered) or w_g ~ Normal(μ, σ) (centered); optionally a
/// pooled bias. Output (G, n, units).
/// </summary>
public sealed class HierarchicalDenseBuilder
{
    internal HierarchicalDenseLayer Layer { get; }
    internal HierarchicalDenseBuilder(HierarchicalDenseLayer layer) => Layer = layer;

    /// <summary>The prior of the shared means μ.</summary>
    public Prior MeanPrior => Prior.Wrap(Layer.MeanPrior);
    /// <summary>The prior of the layer's scale σ.</summary>
    public Prior ScalePrior => Prior.Wrap(Layer.ScalePrior);
    /// <summary>How the per-group weights are written.</summary>
    public WeightParameterization Parameterization => Layer.Parameterization.IsCentered ? WeightParameterization.Centered : WeightParameterization.NonCentered;
    /// <summary>Whether the layer has a pooled bias.</summary>
    public bool HasBias => Layer.Bias;

    /// <summary>A builder with other priors.</summary>
    /// <param name="meanPrior">The prior of every mean (a continuous scalar distribution).</param>
    /// <param name="scalePrior">The prior of the scale (a scalar distribution on positive values).</param>
    /// <exception cref="ArgumentNullException">A prior is null.</exception>
    /// <exception cref="ArgumentException">A prior is invalid; the message names the layer.</exception>
    public HierarchicalDenseBuilder WithPriors(Prior meanPrior, Prior scalePrior) =>
        new(HierarchicalDenseLayer.Create(global::FunctionalBayes.Fluent.Layer.P(meanPrior, nameof(meanPrior)), global::FunctionalBayes.Fluent.Layer.P(scalePrior, nameof(scalePrior)), Layer.Parameterization, Layer.Bias));

    /// <summary>A builder with another parameterization of the per-group weights.</summary>
    /// <param name="parameterization">Non-centered or centered.</param>
    public HierarchicalDenseBuilder WithParameterization(WeightParameterization parameterization) =>
        new(HierarchicalDenseLayer.Create(Layer.MeanPrior, Layer.ScalePrior, BayesianNet.Param(parameterization), Layer.Bias));

    /// <summary>A builder with or without a pooled bias.</summary>
    /// <param name="bias">Whether the layer has a bias.</param>
    public HierarchicalDenseBuilder WithBias(bool bias = true) =>
        new(HierarchicalDenseLayer.Create(Layer.MeanPrior, Layer.ScalePrior, Layer.Parameterization, bias));

    /// <summary>Calls the layer for <paramref name="groups"/> groups on x: (n, d) shared by every group or (G, n, d). Output (G, n, units).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="groups">The number of groups G.</param>
    /// <param name="units">Output units.</param>
    /// <param name="activation">Applied to the output; null for the identity.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">groups or units is less than 1, or x's group axis does not have G entries.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int groups, int units, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Layer.Call(name, global::FunctionalBayes.Fluent.Layer.X(x, nameof(x)), groups, units, Convert.Activation(activation)));
    }
}

/// <summary>A multilayer perceptron over groups: the chosen layers hierarchical, the others shared dense layers.</summary>
public sealed class HierarchicalMlpBuilder
{
    private readonly HierarchicalMlp mlp;
    internal HierarchicalMlpBuilder(HierarchicalMlp mlp) => this.mlp = mlp;

    /// <summary>The priors of the hierarchical layers.</summary>
    public HierarchicalDenseBuilder Hierarchical => new(mlp.Hierarchical);
    /// <summary>The priors of the shared layers.</summary>
    public BayesianDenseBuilder Shared => new(mlp.Shared);

    /// <summary>A builder with other hierarchical layers.</summary>
    /// <param name="layer">For example <c>BayesianNet.HierarchicalDense().WithParameterization(WeightParameterization.Centered)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    public HierarchicalMlpBuilder WithHierarchical(HierarchicalDenseBuilder layer) =>
        new(new HierarchicalMlp((layer ?? throw new ArgumentNullException(nameof(layer))).Layer, mlp.Shared));

    /// <summary>A builder with other shared layers.</summary>
    /// <param name="layer">For example <c>BayesianNet.Dense().WithPriors(Prior.Normal(0, 1), null)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="layer"/> is null.</exception>
    public HierarchicalMlpBuilder WithShared(BayesianDenseBuilder layer) =>
        new(new HierarchicalMlp(mlp.Hierarchical, (layer ?? throw new ArgumentNullException(nameof(layer))).Layer));

    /// <summary>Calls the network for <paramref name="groups"/> groups on x ((n, d) shared or (G, n, d)): output (G, n, widths[^1]).</summary>
    /// <param name="name">The network's name.</param>
    /// <param name="x">The inputs.</param>
    /// <param name="groups">The number of groups G.</param>
    /// <param name="widths">Every layer's units, the output layer last.</param>
    /// <param name="hierarchicalLayers">The indices of the per-group layers (at least one; the notebook: [0, 1]).</param>
    /// <param name="activation">The hidden layers' activation; null for tanh.</param>
    /// <param name="outputActivation">The output layer's activation; null for the identity (logits).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">widths is empty, a width is below 1, or a layer index is outside the network.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int groups, int[] widths, int[] hierarchicalLayers, Func<NdArray, NdArray>? activation = null, Func<NdArray, NdArray>? outputActivation = null)
    {
        Bayes.CheckName(name);
        ArgumentNullException.ThrowIfNull(hierarchicalLayers);
        return Bayes.Wrap(mlp.Call(name, global::FunctionalBayes.Fluent.Layer.X(x, nameof(x)), groups, BayesianNet.Widths(widths), hierarchicalLayers.ToArray(), Convert.Activation(activation), Convert.Activation(outputActivation)));
    }
}
