using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// How a location-scale link (Gaussian, LogNormal, StudentT) gets its observation scale σ.
/// </summary>
public sealed class ObservationScale
{
    private ObservationScale(LinkScale value) => Value = value;

    internal LinkScale Value { get; }

    /// <summary>σ is a latent site "{name}_sigma" with this prior (on positive values).</summary>
    /// <param name="prior">The prior; BLayers' default is <c>Prior.Exponential(1)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    public static ObservationScale Sampled(Prior prior)
    {
        ArgumentNullException.ThrowIfNull(prior);
        var support = Dist.support(prior.Value);
        if (!(support.IsPositive || support.IsGreaterThan))
            throw new ArgumentException($"ObservationScale.Sampled: the prior of sigma must be on positive values, got {prior.Name} with support {support}.", nameof(prior));
        return new(LinkScale.NewSampled(prior.Value));
    }

    /// <summary>σ is fixed: a number or one value per row (no site).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException"><paramref name="scale"/> is null.</exception>
    /// <exception cref="ArgumentException">A value is not positive.</exception>
    public static ObservationScale Fixed(NdArray scale)
    {
        ArgumentNullException.ThrowIfNull(scale);
        if (scale.ToArray().Any(v => !(v > 0.0) || double.IsInfinity(v)))
            throw new ArgumentException($"ObservationScale.Fixed: the scale must be positive and finite, got {scale}.", nameof(scale));
        return new(LinkScale.NewFixed(scale.Value));
    }

    /// <summary>σ = softplus(u) for a given unconstrained u (for example a value from <see cref="Bayes.Param"/>).</summary>
    /// <param name="unconstrained">u.</param>
    /// <exception cref="ArgumentNullException"><paramref name="unconstrained"/> is null.</exception>
    public static ObservationScale Softplus(NdArray unconstrained)
    {
        ArgumentNullException.ThrowIfNull(unconstrained);
        return new(LinkScale.NewUntransformed(unconstrained.Value));
    }
}

/// <summary>
/// Links: the observation model of a regression, given the linear predictor ŷ ((n,) or (n, 1); (n, K) for
/// <see cref="Categorical"/>) and the observations y ((n,) or (n, 1)), or null for y to predict. The
/// observed site is named <c>name</c>; extra parameters are sites named <c>{name}_…</c>. A y whose rows
/// differ from ŷ's throws <see cref="ArgumentException"/> naming both shapes.
/// </summary>
public static class Link
{
    private static FTensor Y(NdArray? yHat) => (yHat ?? throw new ArgumentNullException(nameof(yHat))).Value;

    /// <summary>y ~ Normal(ŷ, σ); σ ~ Exponential(1) (site "{name}_sigma") unless <paramref name="scale"/> says otherwise. Mean: ŷ.</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="scale">How σ is given; null for the default.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Gaussian(string name, NdArray yHat, NdArray? y, ObservationScale? scale = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(scale is null
            ? Links.gaussian(name, Y(yHat), Convert.Option(y))
            : Links.gaussianWith(scale.Value, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>y ~ LogNormal(ŷ, σ) with ŷ on the log scale. Mean: exp(ŷ + σ²/2).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="scale">How σ is given; null for σ ~ Exponential(1).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> LogNormal(string name, NdArray yHat, NdArray? y, ObservationScale? scale = null)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(scale is null
            ? Links.lognormal(name, Y(yHat), Convert.Option(y))
            : Links.lognormalWith(scale.Value, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>y ~ StudentT(df, ŷ, σ). Mean: ŷ (for df &gt; 1).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="degreesOfFreedom">df (positive; BLayers' default 4).</param>
    /// <param name="scale">How σ is given; null for σ ~ Exponential(1).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">df is not positive, or the shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> StudentT(string name, NdArray yHat, NdArray? y, double degreesOfFreedom = 4.0, ObservationScale? scale = null)
    {
        Bayes.CheckName(name);
        var s = scale?.Value ?? LinkScale.NewSampled(Distribution.NewExponential(FunctionalBayes.Tensors.TensorModule.scalar(1.0)));
        return Bayes.Wrap(Links.studentTWith(degreesOfFreedom, s, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Binary y ~ Bernoulli(logits = ŷ). Mean: sigmoid(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log-odds).</param>
    /// <param name="y">The 0/1 observations, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Logit(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.logit(name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Counts y ~ Poisson(exp ŷ). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log rate).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Poisson(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.poisson(name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>
    /// Counts y ~ NegativeBinomial(mean ŷ, concentration φ), φ ~ Exponential(rate) (site "{name}_concentration").
    /// As in BLayers the mean is ŷ itself, which must be positive. Mean: ŷ.
    /// </summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The mean (positive).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <param name="concentrationRate">The rate of φ's Exponential prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> NegativeBinomial(string name, NdArray yHat, NdArray? y, double concentrationRate = 1.0)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.negativeBinomialWith(concentrationRate, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>
    /// Ordered classes 0..K−1: P(y ≤ k) = sigmoid(c_k − ŷ) with cutpoints c₀ ~ Normal(0, 2) (site "{name}_c0")
    /// and gaps ~ Exponential(1) (site "{name}_gaps").
    /// </summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The classes, or null to predict.</param>
    /// <param name="numClasses">K (at least 2).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">K is less than 2, or the shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Ordinal(string name, NdArray yHat, NdArray? y, int numClasses)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.ordinal(numClasses, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Zero-inflated Poisson: gate ~ Beta(1, 10) (site "{name}_gate"), rate exp(ŷ). Mean: (1 − gate)·exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log rate).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> ZeroInflatedPoisson(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.zeroInflatedPoisson(name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>
    /// Zero-inflated negative binomial: mean exp(ŷ), concentration ~ Exponential(rate) (site "{name}_concentration"),
    /// gate ~ Beta(1, 10) (site "{name}_gate"). Mean: (1 − gate)·exp(ŷ).
    /// </summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log mean).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <param name="concentrationRate">The rate of the concentration's Exponential prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> ZeroInflatedNegativeBinomial(string name, NdArray yHat, NdArray? y, double concentrationRate = 1.0)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.zeroInflatedNegativeBinomialWith(concentrationRate, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>y in (0, 1) ~ Beta(m·φ, (1 − m)·φ) with m = sigmoid(ŷ), φ ~ Exponential(1) (site "{name}_phi"). Mean: sigmoid(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The proportions, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Beta(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.beta(name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Positive y ~ Gamma(k, k / exp ŷ), shape k ~ Exponential(rate) (site "{name}_shape"). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log mean).</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="shapeRate">The rate of k's Exponential prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Gamma(string name, NdArray yHat, NdArray? y, double shapeRate = 1.0)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.gammaWith(shapeRate, name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Positive y ~ Exponential(rate exp(−ŷ)). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log mean).</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    public static BayesModel<NdArray> Exponential(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.exponential(name, Y(yHat), Convert.Option(y)));
    }

    /// <summary>Classes y in 0..K−1 ~ Categorical(logits ŷ) with ŷ of shape (n, K). Mean: softmax(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">Logits (n, K).</param>
    /// <param name="y">One class id per row, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">ŷ is not (n, K), or y does not have one id per row.</exception>
    public static BayesModel<NdArray> Categorical(string name, NdArray yHat, NdArray? y)
    {
        Bayes.CheckName(name);
        return Bayes.Wrap(Links.categorical(name, Y(yHat), Convert.Option(y)));
    }
}
