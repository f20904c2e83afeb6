using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FDist = FunctionalBayes.Distribution;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// BLayers' Bayesian layers as fluent builders. Each factory gives a builder at BLayers' defaults; the
/// <c>With…</c> methods return a new builder with a changed prior (checked at once: an invalid prior throws
/// <see cref="ArgumentException"/> naming the layer), and <c>Apply</c> calls the layer on data, giving a
/// <see cref="BayesModel{T}"/> of its output. Sites are named <c>{Layer}_{name}_{suffix}</c> as in BLayers,
/// for example <c>AdaptiveLayer_x_beta</c>.
/// <code>
/// var mu = Layer.Adaptive().WithCoefficients(CoefficientFamily.Laplace()).Apply("x", x);
/// </code>
/// </summary>
public static class Layer
{
    /// <summary>x·β with β ~ coef(scale), scale ~ HalfNormal(1): output (n, units).</summary>
    public static AdaptiveLayerBuilder Adaptive() => new(AdaptiveLayer.Default.ScalePrior, AdaptiveLayer.Default.Coef);
    /// <summary>x·β with a fixed prior β ~ Normal(0, 1): output (n, units).</summary>
    public static FixedPriorLayerBuilder FixedPrior() => new(FixedPriorLayer.Default.Coef);
    /// <summary>An intercept β ~ Normal(0, 1) of shape (1, units), which broadcasts over rows.</summary>
    public static InterceptLayerBuilder Intercept() => new(InterceptLayer.Default.Coef);
    /// <summary>A factorization machine: Σ_{i&lt;j} ⟨θ_i, θ_j⟩ x_i x_j, output (n, units).</summary>
    public static FMLayerBuilder FM() => new(FMLayer.Default.ScalePrior, FMLayer.Default.Coef);
    /// <summary>A third-order factorization machine: Σ_{i&lt;j&lt;k}, output (n, units).</summary>
    public static FM3LayerBuilder FM3() => new(FM3Layer.Default.ScalePrior, FM3Layer.Default.Coef);
    /// <summary>A low-rank interaction xᵀθ₁θ₂ᵀz of two designs, output (n, units).</summary>
    public static LowRankInteractionLayerBuilder LowRankInteraction() => new(LowRankInteractionLayer.Default.ScalePrior, LowRankInteractionLayer.Default.Coef);
    /// <summary>All pairwise products x_i z_j (or x_i x_j, i &lt; j) with their own coefficients, output (n, units).</summary>
    public static InteractionLayerBuilder Interaction() => new(InteractionLayer.Default.ScalePrior, InteractionLayer.Default.Coef);
    /// <summary>A full bilinear form Σ_ij x_i W_ij z_j, output (n, units).</summary>
    public static BilinearLayerBuilder Bilinear() => new(BilinearLayer.Default.ScalePrior, BilinearLayer.Default.Coef);
    /// <summary>A bilinear form with W = A·Bᵀ of low rank, output (n, units).</summary>
    public static LowRankBilinearLayerBuilder LowRankBilinear() => new(LowRankBilinearLayer.Default.ScalePrior, LowRankBilinearLayer.Default.Coef);
    /// <summary>An embedding table looked up by integer ids, output (n, embeddingDim).</summary>
    public static EmbeddingLayerBuilder Embedding() => new(EmbeddingLayer.Default.ScalePrior, EmbeddingLayer.Default.Coef);
    /// <summary>One partially pooled effect per category, output (n, 1).</summary>
    public static RandomEffectsLayerBuilder RandomEffects() => new(RandomEffectsLayer.Default.ScalePrior, RandomEffectsLayer.Default.Coef);
    /// <summary>Gaussian random walks over ordered categories, output (n, embeddingDim).</summary>
    public static RandomWalkLayerBuilder RandomWalk() => new(RandomWalkLayer.Default.ScalePrior, RandomWalkLayer.Default.Coef);
    /// <summary>Partially pooled group-specific slopes for x, output (n, units).</summary>
    public static RandomSlopesLayerBuilder RandomSlopes() => new(RandomSlopesLayer.Default);
    /// <summary>A stationary AR(1) process over ordered time slots, output (n, units).</summary>
    public static AR1LayerBuilder AR1() => new(AR1Layer.Default);
    /// <summary>One coefficient per category with a fixed prior (no pooling), output (n, 1).</summary>
    public static FixedEffectsLayerBuilder FixedEffects() => new(FixedEffectsLayer.Default);
    /// <summary>Horseshoe-prior regression (optionally regularized with a slab), output (n, units).</summary>
    public static HorseshoeLayerBuilder Horseshoe() => new(HorseshoeLayer.Default);
    /// <summary>Spike-and-slab regression with a continuous Beta gate, output (n, units).</summary>
    public static SpikeAndSlabLayerBuilder SpikeAndSlab() => new(SpikeAndSlabLayer.Default);
    /// <summary>A horseshoe over the pairwise products x_i x_j, i &lt; j, output (n, units).</summary>
    public static HorseshoeInteractionLayerBuilder HorseshoeInteraction() => new(HorseshoeInteractionLayer.Default);
    /// <summary>A penalized B-spline of one variable, output (n, units).</summary>
    public static PSplineLayerBuilder PSpline() => new(PSplineLayer.Default);
    /// <summary>A Hilbert-space Gaussian-process approximation in one variable, output (n, units).</summary>
    public static HsgpLayerBuilder Hsgp() => new(HSGPLayer.Default);
    /// <summary>Bayesian self-attention over the features of x, output (n, units).</summary>
    public static AttentionLayerBuilder Attention() => new(AttentionLayer.Default);
    /// <summary>Regression with a mixture prior (Normal and Laplace by default) on the coefficients, output (n, units).</summary>
    public static MixtureLayerBuilder Mixture() => new(MixtureLayer.Default);

    /// <summary>Spline knots at quantiles of x: degree + 1 copies of each end and <paramref name="numKnots"/> inner knots.</summary>
    /// <param name="x">The variable's values.</param>
    /// <param name="numKnots">Inner knots (at least 0).</param>
    /// <param name="degree">The spline degree.</param>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is empty or not finite, or a count is negative.</exception>
    public static double[] MakeKnots(double[] x, int numKnots, int degree = 3)
    {
        ArgumentNullException.ThrowIfNull(x);
        return Splines.makeKnots(x, numKnots, degree);
    }

    /// <summary>The HSGP boundary L = c · max |x|.</summary>
    /// <param name="x">The variable's values.</param>
    /// <param name="c">The expansion factor (positive; 1.5 is common).</param>
    /// <exception cref="ArgumentNullException"><paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is empty or c is not positive.</exception>
    public static double HsgpBoundary(double[] x, double c = 1.5)
    {
        ArgumentNullException.ThrowIfNull(x);
        return HSGP.boundary(x, c);
    }

    internal static FTensor X(NdArray? x, string name) => (x ?? throw new ArgumentNullException(name)).Value;
    internal static FSharpOption<int> Some(int v) => FSharpOption<int>.Some(v);
    internal static FSharpOption<double> Some(double v) => FSharpOption<double>.Some(v);
    internal static FDist P(Prior? p, string name) => (p ?? throw new ArgumentNullException(name)).Value;
    internal static ScaleFamily C(CoefficientFamily? c, string name) => (c ?? throw new ArgumentNullException(name)).Value;
}

/// <summary>The shared settings of layers with a sampled scale and a coefficient family.</summary>
/// <typeparam name="TSelf">The concrete builder.</typeparam>
public abstract class ScaledLayerBuilder<TSelf> where TSelf : ScaledLayerBuilder<TSelf>
{
    private protected ScaledLayerBuilder(FDist scalePrior, ScaleFamily coefficients)
    {
        ScalePriorValue = scalePrior;
        CoefficientsValue = coefficients;
    }

    private protected FDist ScalePriorValue { get; }
    private protected ScaleFamily CoefficientsValue { get; }

    private protected abstract TSelf With(FDist scalePrior, ScaleFamily coefficients);

    /// <summary>The prior of the scale (on positive values).</summary>
    public Prior ScalePrior => Prior.Wrap(ScalePriorValue);

    /// <summary>The coefficients' family.</summary>
    public CoefficientFamily Coefficients => CoefficientFamily.Wrap(CoefficientsValue);

    /// <summary>A builder with another scale prior, which must be on positive values.</summary>
    /// <param name="scalePrior">The prior, for example <c>Prior.HalfCauchy(1)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values; the message names the layer.</exception>
    public TSelf WithScalePrior(Prior scalePrior) => With(Layer.P(scalePrior, nameof(scalePrior)), CoefficientsValue);

    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family, for example <c>CoefficientFamily.Laplace()</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    /// <exception cref="ArgumentException">The family is invalid; the message names the layer.</exception>
    public TSelf WithCoefficients(CoefficientFamily family) => With(ScalePriorValue, Layer.C(family, nameof(family)));
}

/// <summary>BLayers' AdaptiveLayer: scale (u) ~ scale prior; β (d, u) ~ coef(scale); out = activation(x·β).</summary>
public sealed class AdaptiveLayerBuilder : ScaledLayerBuilder<AdaptiveLayerBuilder>
{
    private readonly AdaptiveLayer layer;
    internal AdaptiveLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = AdaptiveLayer.Create(s, c);
    private protected override AdaptiveLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d) (a vector is one column): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name (part of its site names).</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>BLayers' FixedPriorLayer: β (d, u) ~ a fixed prior; out = activation(x·β).</summary>
public sealed class FixedPriorLayerBuilder
{
    private readonly FixedPriorLayer layer;
    internal FixedPriorLayerBuilder(FDist coef) => layer = new FixedPriorLayer(coef);

    /// <summary>The coefficients' prior.</summary>
    public Prior Prior => Prior.Wrap(layer.Coef);

    /// <summary>A builder with another coefficient prior (a scalar distribution, for example <c>Prior.Laplace(0, 2)</c>).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    public FixedPriorLayerBuilder WithPrior(Prior prior) => new(Scalar.Check(Layer.P(prior, nameof(prior)), "FixedPriorLayer"));

    /// <summary>Calls the layer on x (n, d) (a vector is one column): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}

internal static class Scalar
{
    internal static FDist Check(FDist d, string layer)
    {
        if (Dist.batchShape(d).Length > 0 || Dist.eventShape(d).Length > 0)
            throw new ArgumentException(
                $"{layer}: the coefficient prior must be a scalar distribution, got {Dist.name(d)} with batch shape {DataSet.Format(Dist.batchShape(d))} and event shape {DataSet.Format(Dist.eventShape(d))}.",
                "prior");
        return d;
    }
}

/// <summary>BLayers' InterceptLayer: β (1, u) ~ a fixed prior; out = activation(β), which broadcasts over rows.</summary>
public sealed class InterceptLayerBuilder
{
    private readonly InterceptLayer layer;
    internal InterceptLayerBuilder(FDist coef) => layer = new InterceptLayer(coef);

    /// <summary>The intercept's prior.</summary>
    public Prior Prior => Prior.Wrap(layer.Coef);

    /// <summary>A builder with another prior for the intercept (a scalar distribution).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    public InterceptLayerBuilder WithPrior(Prior prior) => new(Scalar.Check(Layer.P(prior, nameof(prior)), "InterceptLayer"));

    /// <summary>The intercept: output (1, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> is null.</exception>
    /// <exception cref="ArgumentException">units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>BLayers' FMLayer (factorization machine): scale (u); θ (d, l, u) ~ coef(scale).</summary>
public sealed class FMLayerBuilder : ScaledLayerBuilder<FMLayerBuilder>
{
    private readonly FMLayer layer;
    internal FMLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = FMLayer.Create(s, c);
    private protected override FMLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d) with factors of rank <paramref name="lowRankDim"/>: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="lowRankDim">The factors' rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A shape or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int lowRankDim, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), lowRankDim, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A third-order factorization machine: scale (u); θ (d, l, u) ~ coef(scale).</summary>
public sealed class FM3LayerBuilder : ScaledLayerBuilder<FM3LayerBuilder>
{
    private readonly FM3Layer layer;
    internal FM3LayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = FM3Layer.Create(s, c);
    private protected override FM3LayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d) with factors of rank <paramref name="lowRankDim"/>: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="lowRankDim">The factors' rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A shape or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int lowRankDim, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), lowRankDim, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A low-rank interaction of two designs: θ₁ (d1, l, u), θ₂ (d2, l, u) ~ coef(scale).</summary>
public sealed class LowRankInteractionLayerBuilder : ScaledLayerBuilder<LowRankInteractionLayerBuilder>
{
    private readonly LowRankInteractionLayer layer;
    internal LowRankInteractionLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = LowRankInteractionLayer.Create(s, c);
    private protected override LowRankInteractionLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="lowRankDim">The interaction's rank.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ (the message names both shapes), or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, NdArray z, int lowRankDim, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.X(z, nameof(z)), lowRankDim, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>Explicit pairwise interactions with their own coefficients: β (D, u) ~ coef(scale).</summary>
public sealed class InteractionLayerBuilder : ScaledLayerBuilder<InteractionLayerBuilder>
{
    private readonly InteractionLayer layer;
    internal InteractionLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = InteractionLayer.Create(s, c);
    private protected override InteractionLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>
    /// Calls the layer on the products x_i z_j, or, with no z, on x_i x_j for i &lt; j: output (n, <paramref name="units"/>).
    /// </summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows), or null for the pairs within x.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ, or x has fewer than 2 columns with no z.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, NdArray? z = null, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Convert.Option(z), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A full bilinear form: W (d1, d2, u) ~ coef(scale).</summary>
public sealed class BilinearLayerBuilder : ScaledLayerBuilder<BilinearLayerBuilder>
{
    private readonly BilinearLayer layer;
    internal BilinearLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = BilinearLayer.Create(s, c);
    private protected override BilinearLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ (the message names both shapes).</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, NdArray z, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.X(z, nameof(z)), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A low-rank bilinear form W = A·Bᵀ: A (d1, l, u), B (d2, l, u) ~ coef(scale).</summary>
public sealed class LowRankBilinearLayerBuilder : ScaledLayerBuilder<LowRankBilinearLayerBuilder>
{
    private readonly LowRankBilinearLayer layer;
    internal LowRankBilinearLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = LowRankBilinearLayer.Create(s, c);
    private protected override LowRankBilinearLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Calls the layer on x (n, d1) and z (n, d2): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The first design.</param>
    /// <param name="z">The second design (same rows).</param>
    /// <param name="lowRankDim">The rank of W.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The designs' rows differ, or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, NdArray z, int lowRankDim, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.X(z, nameof(z)), lowRankDim, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>An embedding table: θ (c, m) ~ coef(scale), looked up by ids.</summary>
public sealed class EmbeddingLayerBuilder : ScaledLayerBuilder<EmbeddingLayerBuilder>
{
    private readonly EmbeddingLayer layer;
    internal EmbeddingLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = EmbeddingLayer.Create(s, c);
    private protected override EmbeddingLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Looks up the embeddings of integer ids in 0..numCategories−1: output (n, <paramref name="embeddingDim"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <param name="embeddingDim">The embedding's size.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer, or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray ids, int numCategories, int embeddingDim)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(ids, nameof(ids)), numCategories, embeddingDim));
    }
}

/// <summary>Random effects: θ (c, 1) ~ coef(scale), one per category.</summary>
public sealed class RandomEffectsLayerBuilder : ScaledLayerBuilder<RandomEffectsLayerBuilder>
{
    private readonly RandomEffectsLayer layer;
    internal RandomEffectsLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = RandomEffectsLayer.Create(s, c);
    private protected override RandomEffectsLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Looks up the effects of integer ids in 0..numCategories−1: output (n, 1).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray ids, int numCategories)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(ids, nameof(ids)), numCategories));
    }
}

/// <summary>Gaussian random walks over ordered categories: increments θ (c, m) ~ coef(scale).</summary>
public sealed class RandomWalkLayerBuilder : ScaledLayerBuilder<RandomWalkLayerBuilder>
{
    private readonly RandomWalkLayer layer;
    internal RandomWalkLayerBuilder(FDist s, ScaleFamily c) : base(s, c) => layer = RandomWalkLayer.Create(s, c);
    private protected override RandomWalkLayerBuilder With(FDist s, ScaleFamily c) => new(s, c);

    /// <summary>Looks up the walk positions of integer ids in 0..numCategories−1: output (n, <paramref name="embeddingDim"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <param name="embeddingDim">How many walks.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer, or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray ids, int numCategories, int embeddingDim = 1)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(ids, nameof(ids)), numCategories, embeddingDim));
    }
}

/// <summary>Random slopes: scale (d, u) ~ scale prior; β (c, d, u) ~ Normal(0, scale) per group.</summary>
public sealed class RandomSlopesLayerBuilder
{
    private readonly RandomSlopesLayer layer;
    internal RandomSlopesLayerBuilder(RandomSlopesLayer layer) => this.layer = layer;

    /// <summary>The prior of the slopes' scale.</summary>
    public Prior ScalePrior => Prior.Wrap(layer.ScalePrior);

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    public RandomSlopesLayerBuilder WithScalePrior(Prior scalePrior) => new(RandomSlopesLayer.Create(Layer.P(scalePrior, nameof(scalePrior))));

    /// <summary>Calls the layer on x (n, d) and group ids in 0..numCategories−1: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="groups">One group id per row.</param>
    /// <param name="numCategories">The number of groups.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The ids are invalid or their number differs from x's rows.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, NdArray groups, int numCategories, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.X(groups, nameof(groups)), numCategories, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A stationary AR(1) process: ρ = 2·Beta(a, a) − 1, σ ~ scale prior.</summary>
public sealed class AR1LayerBuilder
{
    private readonly AR1Layer layer;
    internal AR1LayerBuilder(AR1Layer layer) => this.layer = layer;

    /// <summary>The prior of the innovations' scale σ.</summary>
    public Prior ScalePrior => Prior.Wrap(layer.ScalePrior);
    /// <summary>The concentration a of ρ's Beta(a, a) prior.</summary>
    public double RhoConcentration => layer.RhoConcentration;
    /// <summary>Whether the states are sampled noncentered.</summary>
    public bool Noncentered => layer.Noncentered;

    private AR1LayerBuilder With(FDist s, double a, bool nc) =>
        new(AR1Layer.Create(s, Layer.Some(a), FSharpOption<bool>.Some(nc)));

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    public AR1LayerBuilder WithScalePrior(Prior scalePrior) => With(Layer.P(scalePrior, nameof(scalePrior)), layer.RhoConcentration, layer.Noncentered);

    /// <summary>A builder with another concentration of ρ's prior.</summary>
    /// <param name="concentration">Positive and finite.</param>
    /// <exception cref="ArgumentException">The concentration is not positive and finite.</exception>
    public AR1LayerBuilder WithRhoConcentration(double concentration) => With(layer.ScalePrior, concentration, layer.Noncentered);

    /// <summary>A builder that samples the states noncentered (better for weakly informed states).</summary>
    /// <param name="noncentered">True for noncentered.</param>
    public AR1LayerBuilder WithNoncentered(bool noncentered = true) => With(layer.ScalePrior, layer.RhoConcentration, noncentered);

    /// <summary>Looks up the states of time slots in 0..numCategories−1: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Time slot ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of slots.</param>
    /// <param name="units">Independent processes.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range, or a count is invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray ids, int numCategories, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(ids, nameof(ids)), numCategories, Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>Fixed effects: θ (c, 1) ~ a fixed prior, one per category.</summary>
public sealed class FixedEffectsLayerBuilder
{
    private readonly FixedEffectsLayer layer;
    internal FixedEffectsLayerBuilder(FixedEffectsLayer layer) => this.layer = layer;

    /// <summary>The effects' prior.</summary>
    public Prior Prior => Prior.Wrap(layer.Coef);

    /// <summary>A builder with another prior (scalar events).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior does not have scalar events.</exception>
    public FixedEffectsLayerBuilder WithPrior(Prior prior) => new(FixedEffectsLayer.Create(Layer.P(prior, nameof(prior))));

    /// <summary>Looks up the effects of integer ids in 0..numCategories−1: output (n, 1).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="ids">Ids (n,) or (n, 1).</param>
    /// <param name="numCategories">The number of categories.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentException">An id is out of range or not an integer.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray ids, int numCategories)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(ids, nameof(ids)), numCategories));
    }
}

/// <summary>Horseshoe regression: τ ~ HalfCauchy(τ₀), λ ~ HalfCauchy(1), β ~ coef(τλ) (regularized with a slab when a slab scale is set).</summary>
public sealed class HorseshoeLayerBuilder
{
    private readonly HorseshoeLayer layer;
    internal HorseshoeLayerBuilder(HorseshoeLayer layer) => this.layer = layer;

    internal static FSharpOption<double>? Slab(FSharpOption<double>? s) => s;

    /// <summary>The slab scale of the regularized horseshoe, or null for the plain horseshoe.</summary>
    public double? SlabScale => layer.SlabScale is { } s ? s.Value : null;
    /// <summary>The slab's degrees of freedom.</summary>
    public double SlabDf => layer.SlabDf;
    /// <summary>The scale τ₀ of the global shrinkage's HalfCauchy prior.</summary>
    public double Tau0 => layer.Tau0;

    private HorseshoeLayerBuilder With(double? slab, double df, double tau0, ScaleFamily coef) =>
        new(HorseshoeLayer.Create(Convert.Option(slab), Layer.Some(df), Layer.Some(tau0), FSharpOption<ScaleFamily>.Some(coef)));

    /// <summary>A regularized horseshoe with a Student-t slab.</summary>
    /// <param name="slabScale">The slab's scale (positive), or null for the plain horseshoe.</param>
    /// <param name="slabDf">The slab's degrees of freedom (positive).</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    public HorseshoeLayerBuilder WithSlab(double? slabScale, double slabDf = 4.0) => With(slabScale, slabDf, layer.Tau0, layer.Coef);

    /// <summary>A builder with another global scale τ₀.</summary>
    /// <param name="tau0">Positive and finite.</param>
    /// <exception cref="ArgumentException">τ₀ is not positive and finite.</exception>
    public HorseshoeLayerBuilder WithTau0(double tau0) => With(SlabScale, layer.SlabDf, tau0, layer.Coef);

    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    public HorseshoeLayerBuilder WithCoefficients(CoefficientFamily family) => With(SlabScale, layer.SlabDf, layer.Tau0, Layer.C(family, nameof(family)));

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>Spike and slab: a gate z ~ Beta(α, β) times β ~ a fixed prior.</summary>
public sealed class SpikeAndSlabLayerBuilder
{
    private readonly SpikeAndSlabLayer layer;
    internal SpikeAndSlabLayerBuilder(SpikeAndSlabLayer layer) => this.layer = layer;

    /// <summary>The gate's first Beta parameter.</summary>
    public double Alpha => layer.Alpha;
    /// <summary>The gate's second Beta parameter.</summary>
    public double Beta => layer.Beta;
    /// <summary>The slab's prior.</summary>
    public Prior Prior => Prior.Wrap(layer.Coef);

    /// <summary>A builder with another Beta prior of the gate.</summary>
    /// <param name="alpha">Positive and finite.</param>
    /// <param name="beta">Positive and finite.</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    public SpikeAndSlabLayerBuilder WithGate(double alpha, double beta) =>
        new(SpikeAndSlabLayer.Create(Layer.Some(alpha), Layer.Some(beta), FSharpOption<FDist>.Some(layer.Coef)));

    /// <summary>A builder with another slab prior (a scalar distribution).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar.</exception>
    public SpikeAndSlabLayerBuilder WithPrior(Prior prior) =>
        new(SpikeAndSlabLayer.Create(Layer.Some(layer.Alpha), Layer.Some(layer.Beta), FSharpOption<FDist>.Some(Layer.P(prior, nameof(prior)))));

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A horseshoe over the pairwise products x_i x_j, i &lt; j.</summary>
public sealed class HorseshoeInteractionLayerBuilder
{
    private readonly HorseshoeInteractionLayer layer;
    internal HorseshoeInteractionLayerBuilder(HorseshoeInteractionLayer layer) => this.layer = layer;

    /// <summary>The slab scale of the regularized horseshoe, or null for the plain horseshoe.</summary>
    public double? SlabScale => layer.SlabScale is { } s ? s.Value : null;
    /// <summary>The slab's degrees of freedom.</summary>
    public double SlabDf => layer.SlabDf;
    /// <summary>The scale τ₀ of the global shrinkage's HalfCauchy prior.</summary>
    public double Tau0 => layer.Tau0;

    private HorseshoeInteractionLayerBuilder With(double? slab, double df, double tau0, ScaleFamily coef) =>
        new(HorseshoeInteractionLayer.Create(Convert.Option(slab), Layer.Some(df), Layer.Some(tau0), FSharpOption<ScaleFamily>.Some(coef)));

    /// <summary>A regularized horseshoe with a Student-t slab.</summary>
    /// <param name="slabScale">The slab's scale (positive), or null for the plain horseshoe.</param>
    /// <param name="slabDf">The slab's degrees of freedom (positive).</param>
    /// <exception cref="ArgumentException">A value is not positive and finite.</exception>
    public HorseshoeInteractionLayerBuilder WithSlab(double? slabScale, double slabDf = 4.0) => With(slabScale, slabDf, layer.Tau0, layer.Coef);

    /// <summary>A builder with another global scale τ₀.</summary>
    /// <param name="tau0">Positive and finite.</param>
    /// <exception cref="ArgumentException">τ₀ is not positive and finite.</exception>
    public HorseshoeInteractionLayerBuilder WithTau0(double tau0) => With(SlabScale, layer.SlabDf, tau0, layer.Coef);

    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    public HorseshoeInteractionLayerBuilder WithCoefficients(CoefficientFamily family) => With(SlabScale, layer.SlabDf, layer.Tau0, Layer.C(family, nameof(family)));

    /// <summary>Calls the layer on x (n, d), d ≥ 2: output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x has fewer than 2 columns, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}

/// <summary>A penalized B-spline: second differences ~ Normal(0, scale), a linear trend ~ Normal(0, trend scale).</summary>
public sealed class PSplineLayerBuilder
{
    private readonly PSplineLayer layer;
    internal PSplineLayerBuilder(PSplineLayer layer) => this.layer = layer;

    /// <summary>The prior of the differences' scale.</summary>
    public Prior ScalePrior => Prior.Wrap(layer.ScalePrior);
    /// <summary>The trend's prior scale.</summary>
    public double TrendScale => layer.TrendScale;
    /// <summary>The spline degree.</summary>
    public int Degree => layer.Degree;

    private PSplineLayerBuilder With(FDist s, double trend, int degree) =>
        new(PSplineLayer.Create(FSharpOption<FDist>.Some(s), Layer.Some(trend), Layer.Some(degree)));

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    public PSplineLayerBuilder WithScalePrior(Prior scalePrior) => With(Layer.P(scalePrior, nameof(scalePrior)), layer.TrendScale, layer.Degree);

    /// <summary>A builder with another trend scale.</summary>
    /// <param name="trendScale">Positive and finite.</param>
    /// <exception cref="ArgumentException">The scale is not positive and finite.</exception>
    public PSplineLayerBuilder WithTrendScale(double trendScale) => With(layer.ScalePrior, trendScale, layer.Degree);

    /// <summary>A builder with another spline degree.</summary>
    /// <param name="degree">At least 0.</param>
    /// <exception cref="ArgumentException">The degree is negative.</exception>
    public PSplineLayerBuilder WithDegree(int degree) => With(layer.ScalePrior, layer.TrendScale, degree);

    /// <summary>Calls the layer on a variable x (n,) or (n, 1) with knots (see <see cref="Layer.MakeKnots"/>): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The variable.</param>
    /// <param name="knots">Non-decreasing knots.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="reference">Where the curve is zero; null for the middle of the knot range.</param>
    /// <exception cref="ArgumentNullException">A required argument is null.</exception>
    /// <exception cref="ArgumentException">The knots or x are invalid.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, double[] knots, int units = 1, double? reference = null)
    {
        Bayes.CheckName(name);
        ArgumentNullException.ThrowIfNull(knots);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), knots, Layer.Some(units), Convert.Option(reference)));
    }
}

/// <summary>A Hilbert-space GP approximation: lengthscale and amplitude priors, m basis functions on [−L, L].</summary>
public sealed class HsgpLayerBuilder
{
    private readonly HSGPLayer layer;
    internal HsgpLayerBuilder(HSGPLayer layer) => this.layer = layer;

    /// <summary>The lengthscale's prior.</summary>
    public Prior LengthscalePrior => Prior.Wrap(layer.LengthscalePrior);
    /// <summary>The amplitude's prior.</summary>
    public Prior SigmaPrior => Prior.Wrap(layer.SigmaPrior);

    /// <summary>A builder with another lengthscale prior (scalar, on positive values).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar or not on positive values.</exception>
    public HsgpLayerBuilder WithLengthscalePrior(Prior prior) =>
        new(HSGPLayer.Create(FSharpOption<FDist>.Some(Layer.P(prior, nameof(prior))), FSharpOption<FDist>.Some(layer.SigmaPrior)));

    /// <summary>A builder with another amplitude prior (scalar, on positive values).</summary>
    /// <param name="prior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not scalar or not on positive values.</exception>
    public HsgpLayerBuilder WithSigmaPrior(Prior prior) =>
        new(HSGPLayer.Create(FSharpOption<FDist>.Some(layer.LengthscalePrior), FSharpOption<FDist>.Some(Layer.P(prior, nameof(prior)))));

    /// <summary>Calls the layer on a variable x (n,) or (n, 1): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The variable.</param>
    /// <param name="boundary">L: the basis lives on [−L, L] (see <see cref="Layer.HsgpBoundary"/>).</param>
    /// <param name="basisFunctions">m, the number of basis functions.</param>
    /// <param name="units">Output columns.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">A value is out of range.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, double boundary, int basisFunctions, int units = 1)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), boundary, basisFunctions, Layer.Some(units)));
    }
}

/// <summary>Bayesian self-attention over features: embedding, query/key/value and output weights ~ coef(scale).</summary>
public sealed class AttentionLayerBuilder
{
    private readonly AttentionLayer layer;
    internal AttentionLayerBuilder(AttentionLayer layer) => this.layer = layer;

    /// <summary>The prior of every scale site.</summary>
    public Prior ScalePrior => Prior.Wrap(layer.ScalePrior);
    /// <summary>The size of each head.</summary>
    public int HeadDim => layer.HeadDim;
    /// <summary>The number of heads.</summary>
    public int NumHeads => layer.NumHeads;

    private AttentionLayerBuilder With(FDist s, ScaleFamily c, int headDim, int numHeads) =>
        new(AttentionLayer.Create(FSharpOption<FDist>.Some(s), FSharpOption<ScaleFamily>.Some(c), Layer.Some(headDim), Layer.Some(numHeads)));

    /// <summary>A builder with another scale prior (on positive values).</summary>
    /// <param name="scalePrior">The prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scalePrior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    public AttentionLayerBuilder WithScalePrior(Prior scalePrior) => With(Layer.P(scalePrior, nameof(scalePrior)), layer.Coef, layer.HeadDim, layer.NumHeads);

    /// <summary>A builder with another coefficient family.</summary>
    /// <param name="family">The family.</param>
    /// <exception cref="ArgumentNullException"><paramref name="family"/> is null.</exception>
    public AttentionLayerBuilder WithCoefficients(CoefficientFamily family) => With(layer.ScalePrior, Layer.C(family, nameof(family)), layer.HeadDim, layer.NumHeads);

    /// <summary>A builder with other head settings.</summary>
    /// <param name="headDim">The size of each head (at least 1).</param>
    /// <param name="numHeads">The number of heads (at least 1).</param>
    /// <exception cref="ArgumentException">A count is less than 1.</exception>
    public AttentionLayerBuilder WithHeads(int headDim, int numHeads = 1) => With(layer.ScalePrior, layer.Coef, headDim, numHeads);

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation), null, null));
    }
}

/// <summary>Regression with a mixture prior on the coefficients: β ~ Σ_k w_k p_k, weights learned or fixed.</summary>
public sealed class MixtureLayerBuilder
{
    private readonly MixtureLayer layer;
    internal MixtureLayerBuilder(MixtureLayer layer) => this.layer = layer;

    /// <summary>The component priors.</summary>
    public IReadOnlyList<Prior> Components => layer.Components.Select(Prior.Wrap).ToArray();
    /// <summary>The scale of the Normal prior of the mixing logits (when the weights are learned).</summary>
    public double WeightScale => layer.WeightScale;
    /// <summary>Fixed mixing weights, or null when they are learned.</summary>
    public IReadOnlyList<double>? Weights => layer.Weights is { } w ? w.Value : null;

    private MixtureLayerBuilder With(IEnumerable<FDist> cs, double scale, double[]? weights) =>
        new(MixtureLayer.Create(FSharpOption<FSharpList<FDist>>.Some(ListModule.OfSeq(cs)), Layer.Some(scale), Convert.OptionRef(weights)));

    /// <summary>A builder with other components (scalar distributions).</summary>
    /// <param name="components">At least one component.</param>
    /// <exception cref="ArgumentNullException"><paramref name="components"/> or a component is null.</exception>
    /// <exception cref="ArgumentException">There are no components, one is not scalar, or fixed weights no longer match.</exception>
    public MixtureLayerBuilder WithComponents(params Prior[] components)
    {
        ArgumentNullException.ThrowIfNull(components);
        var cs = components.Select((c, i) => (c ?? throw new ArgumentNullException(nameof(components), $"MixtureLayer: component {i} is null.")).Value).ToArray();
        return With(cs, layer.WeightScale, layer.Weights?.Value);
    }

    /// <summary>A builder with fixed mixing weights (non-negative, summing to 1, one per component), or learned ones when null.</summary>
    /// <param name="weights">The weights, or null.</param>
    /// <exception cref="ArgumentException">The weights are invalid.</exception>
    public MixtureLayerBuilder WithWeights(double[]? weights) => With(layer.Components, layer.WeightScale, weights);

    /// <summary>A builder with another scale of the mixing logits' prior.</summary>
    /// <param name="weightScale">Positive and finite.</param>
    /// <exception cref="ArgumentException">The scale is not positive and finite.</exception>
    public MixtureLayerBuilder WithWeightScale(double weightScale) => With(layer.Components, weightScale, layer.Weights?.Value);

    /// <summary>Calls the layer on x (n, d): output (n, <paramref name="units"/>).</summary>
    /// <param name="name">The layer's name.</param>
    /// <param name="x">The design.</param>
    /// <param name="units">Output columns.</param>
    /// <param name="activation">Applied to the output; null for none.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="x"/> is null.</exception>
    /// <exception cref="ArgumentException">x is not a vector or a matrix, or units is less than 1.</exception>
    public BayesModel<NdArray> Apply(string name, NdArray x, int units = 1, Func<NdArray, NdArray>? activation = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(layer.Call(name, Layer.X(x, nameof(x)), Layer.Some(units), Convert.Activation(activation)));
    }
}
