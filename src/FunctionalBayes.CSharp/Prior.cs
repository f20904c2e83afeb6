using Microsoft.FSharp.Collections;
using Microsoft.FSharp.Core;
using FDist = FunctionalBayes.Distribution;
using FTensor = FunctionalBayes.Tensors.Tensor;

namespace FunctionalBayes.Fluent;

/// <summary>
/// A probability distribution: the prior of a latent site, or the likelihood of an observed one.
/// Parameters are arrays that broadcast against each other (numbers convert to arrays implicitly);
/// the factories check them and throw <see cref="ArgumentException"/> naming the distribution and
/// the parameter, for example "Normal: parameter scale must be positive, got -1".
/// </summary>
public sealed class Prior
{
    private Prior(FDist value) => Value = value;

    internal FDist Value { get; }

    internal static Prior Wrap(FDist d) => new(d);

    private static FTensor A(NdArray? a, string name) =>
        (a ?? throw new ArgumentNullException(name, $"The distribution parameter '{name}' is null.")).Value;

    // ---- continuous -------------------------------------------------------------------------

    /// <summary>Normal(<paramref name="loc"/>, <paramref name="scale"/>), scale &gt; 0.</summary>
    /// <param name="loc">The mean.</param>
    /// <param name="scale">The standard deviation (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Normal(NdArray loc, NdArray scale) => new(Dist.normal(A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>HalfNormal(<paramref name="scale"/>) on [0, ∞).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The scale is not positive.</exception>
    public static Prior HalfNormal(NdArray scale) => new(Dist.halfNormal(A(scale, nameof(scale))));

    /// <summary>Cauchy(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Cauchy(NdArray loc, NdArray scale) => new(Dist.cauchy(A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>HalfCauchy(<paramref name="scale"/>) on [0, ∞).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The scale is not positive.</exception>
    public static Prior HalfCauchy(NdArray scale) => new(Dist.halfCauchy(A(scale, nameof(scale))));

    /// <summary>Student's t with <paramref name="df"/> degrees of freedom.</summary>
    /// <param name="df">Degrees of freedom (positive).</param>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior StudentT(NdArray df, NdArray loc, NdArray scale) =>
        new(Dist.studentT(A(df, nameof(df)), A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>Laplace(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Laplace(NdArray loc, NdArray scale) => new(Dist.laplace(A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>Logistic(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Logistic(NdArray loc, NdArray scale) => new(Dist.logistic(A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>LogNormal: exp of a Normal(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The mean of the logarithm.</param>
    /// <param name="scale">The standard deviation of the logarithm (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior LogNormal(NdArray loc, NdArray scale) => new(Dist.logNormal(A(loc, nameof(loc)), A(scale, nameof(scale))));

    /// <summary>Exponential with the given rate.</summary>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The rate is not positive.</exception>
    public static Prior Exponential(NdArray rate) => new(Dist.exponential(A(rate, nameof(rate))));

    /// <summary>Gamma with shape (concentration) and rate.</summary>
    /// <param name="concentration">The shape (positive).</param>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Gamma(NdArray concentration, NdArray rate) =>
        new(Dist.gamma(A(concentration, nameof(concentration)), A(rate, nameof(rate))));

    /// <summary>InverseGamma: the reciprocal of a Gamma(concentration, rate) draw.</summary>
    /// <param name="concentration">The shape (positive).</param>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior InverseGamma(NdArray concentration, NdArray rate) =>
        new(Dist.inverseGamma(A(concentration, nameof(concentration)), A(rate, nameof(rate))));

    /// <summary>Beta(<paramref name="alpha"/>, <paramref name="beta"/>) on (0, 1).</summary>
    /// <param name="alpha">The first shape (positive).</param>
    /// <param name="beta">The second shape (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Beta(NdArray alpha, NdArray beta) => new(Dist.beta(A(alpha, nameof(alpha)), A(beta, nameof(beta))));

    /// <summary>Uniform on [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound (greater than low).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The bounds are not finite or not increasing.</exception>
    public static Prior Uniform(NdArray low, NdArray high) => new(Dist.uniform(A(low, nameof(low)), A(high, nameof(high))));

    // ---- discrete ---------------------------------------------------------------------------

    /// <summary>Bernoulli on {0, 1} with P(1) = sigmoid(<paramref name="logits"/>).</summary>
    /// <param name="logits">Log-odds.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A logit is NaN.</exception>
    public static Prior BernoulliLogits(NdArray logits) => new(Dist.bernoulliLogits(A(logits, nameof(logits))));

    /// <summary>Bernoulli on {0, 1} with P(1) = <paramref name="probs"/>.</summary>
    /// <param name="probs">Probabilities in [0, 1].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A probability is outside [0, 1].</exception>
    public static Prior Bernoulli(NdArray probs) => new(Dist.bernoulliProbs(A(probs, nameof(probs))));

    /// <summary>Binomial(<paramref name="totalCount"/>, <paramref name="probs"/>).</summary>
    /// <param name="totalCount">Trials (non-negative integers).</param>
    /// <param name="probs">Success probabilities.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior Binomial(NdArray totalCount, NdArray probs) =>
        new(Dist.binomialProbs(A(totalCount, nameof(totalCount)), A(probs, nameof(probs))));

    /// <summary>Categorical over the last axis of unnormalized log-probabilities; values 0..K−1.</summary>
    /// <param name="logits">Logits [..., K].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The logits have no axis or hold NaN.</exception>
    public static Prior CategoricalLogits(NdArray logits) => new(Dist.categoricalLogits(A(logits, nameof(logits))));

    /// <summary>Categorical over the last axis of probabilities (summing to 1); values 0..K−1.</summary>
    /// <param name="probs">Probabilities [..., K].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The probabilities are invalid or do not sum to 1.</exception>
    public static Prior Categorical(NdArray probs) => new(Dist.categoricalProbs(A(probs, nameof(probs))));

    /// <summary>Poisson with the given rate.</summary>
    /// <param name="rate">The rate (non-negative).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A rate is negative.</exception>
    public static Prior Poisson(NdArray rate) => new(Dist.poisson(A(rate, nameof(rate))));

    /// <summary>Negative binomial with mean μ and concentration φ: Var = μ + μ²/φ.</summary>
    /// <param name="mean">The mean (positive).</param>
    /// <param name="concentration">The concentration (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior NegativeBinomial(NdArray mean, NdArray concentration) =>
        new(Dist.negativeBinomial(A(mean, nameof(mean)), A(concentration, nameof(concentration))));

    /// <summary>A Poisson with extra zeros: zero with probability <paramref name="gate"/>.</summary>
    /// <param name="gate">The probability of a structural zero.</param>
    /// <param name="rate">The Poisson rate.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior ZeroInflatedPoisson(NdArray gate, NdArray rate) =>
        new(Dist.zeroInflatedPoisson(A(gate, nameof(gate)), A(rate, nameof(rate))));

    /// <summary>A negative binomial with extra zeros: zero with probability <paramref name="gate"/>.</summary>
    /// <param name="gate">The probability of a structural zero.</param>
    /// <param name="mean">The mean (positive).</param>
    /// <param name="concentration">The concentration (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior ZeroInflatedNegativeBinomial(NdArray gate, NdArray mean, NdArray concentration) =>
        new(Dist.zeroInflatedNegativeBinomial(A(gate, nameof(gate)), A(mean, nameof(mean)), A(concentration, nameof(concentration))));

    /// <summary>Ordered categories: P(y ≤ k) = sigmoid(c_k − predictor) for increasing cutpoints c.</summary>
    /// <param name="predictor">The linear predictor.</param>
    /// <param name="cutpoints">Increasing cutpoints on the last axis (K − 1 of them).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The cutpoints do not increase or the shapes do not broadcast.</exception>
    public static Prior OrderedLogistic(NdArray predictor, NdArray cutpoints) =>
        new(Dist.orderedLogistic(A(predictor, nameof(predictor)), A(cutpoints, nameof(cutpoints))));

    // ---- multivariate and composite -----------------------------------------------------------

    /// <summary>Dirichlet over the last axis.</summary>
    /// <param name="concentration">Concentrations [..., K] (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A concentration is not positive.</exception>
    public static Prior Dirichlet(NdArray concentration) => new(Dist.dirichlet(A(concentration, nameof(concentration))));

    /// <summary>A multivariate normal from a mean and a covariance matrix (positive definite).</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="covariance">The covariance [..., n, n].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The covariance is not positive definite or the shapes differ.</exception>
    public static Prior MultivariateNormal(NdArray loc, NdArray covariance) =>
        new(Dist.multivariateNormalCov(A(loc, nameof(loc)), A(covariance, nameof(covariance))));

    /// <summary>A multivariate normal from a mean and a lower Cholesky factor L of the covariance L·Lᵀ.</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="scaleTril">The lower-triangular factor [..., n, n] with a positive diagonal.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The factor is not a Cholesky factor or the shapes differ.</exception>
    public static Prior MultivariateNormalCholesky(NdArray loc, NdArray scaleTril) =>
        new(Dist.multivariateNormal(A(loc, nameof(loc)), A(scaleTril, nameof(scaleTril))));

    /// <summary>A multivariate normal with covariance W·Wᵀ + diag(D).</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="covFactor">W [..., n, r].</param>
    /// <param name="covDiag">D [..., n] (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes differ.</exception>
    public static Prior LowRankMultivariateNormal(NdArray loc, NdArray covFactor, NdArray covDiag) =>
        new(Dist.lowRankMultivariateNormal(A(loc, nameof(loc)), A(covFactor, nameof(covFactor)), A(covDiag, nameof(covDiag))));

    /// <summary>A point mass at a value.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    public static Prior Delta(NdArray value) => new(Dist.delta(A(value, nameof(value))));

    /// <summary>A mixture Σ_k w_k p_k with w = softmax(<paramref name="mixingLogits"/>) over the last axis.</summary>
    /// <param name="mixingLogits">Logits [..., K], one per component.</param>
    /// <param name="components">K components with one event shape.</param>
    /// <exception cref="ArgumentNullException">A parameter or a component is null.</exception>
    /// <exception cref="ArgumentException">The number of logits and components differ, or the event shapes do.</exception>
    public static Prior Mixture(NdArray mixingLogits, params Prior[] components)
    {
        ArgumentNullException.ThrowIfNull(components);
        var cs = components.Select((c, i) => (c ?? throw new ArgumentNullException(nameof(components), $"Mixture: component {i} is null.")).Value);
        return new(Dist.mixture(A(mixingLogits, nameof(mixingLogits)), ListModule.OfSeq(cs)));
    }

    /// <summary>Poisson with log rate <paramref name="logRate"/> (a GLM's linear predictor), stable for any value.</summary>
    /// <param name="logRate">The log rate.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The log rate holds a NaN.</exception>
    public static Prior PoissonLog(NdArray logRate) => new(Dist.poissonLog(A(logRate, nameof(logRate))));

    /// <summary>Logistic regression's likelihood as one distribution over y [n] ∈ {0, 1}ⁿ (Stan's bernoulli_logit_glm):
    /// P(yᵢ = 1) = σ(xᵢ·β + α). Its log density is one fused operation: one pass over <paramref name="x"/> for value
    /// and gradient. Observe it with <see cref="Bayes.Observe(string, Prior, NdArray?)"/>.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercept: a scalar, or one offset per row [n].</param>
    /// <param name="beta">The coefficients [d].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    public static Prior BernoulliLogitGlm(NdArray x, NdArray alpha, NdArray beta) =>
        new(Dist.bernoulliLogitGlm(A(x, nameof(x)), A(alpha, nameof(alpha)), A(beta, nameof(beta))));

    /// <summary>Poisson regression's likelihood as one distribution over counts y [n] (Stan's poisson_log_glm):
    /// yᵢ ~ Poisson(exp(xᵢ·β + α)), one fused operation.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercept: a scalar, or one offset per row [n].</param>
    /// <param name="beta">The coefficients [d].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    public static Prior PoissonLogGlm(NdArray x, NdArray alpha, NdArray beta) =>
        new(Dist.poissonLogGlm(A(x, nameof(x)), A(alpha, nameof(alpha)), A(beta, nameof(beta))));

    /// <summary>Multinomial logistic regression's likelihood as one distribution over class labels y [n] (Stan's
    /// categorical_logit_glm): yᵢ ~ categorical(softmax(xᵢ·β + α)), labels 0 .. C − 1. Its log density is one fused
    /// operation: one pass over <paramref name="x"/> for value and gradient; a label outside 0 .. C − 1 scores −∞.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercepts [C], one per class.</param>
    /// <param name="beta">The coefficients [d, C], one column per class.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    public static Prior CategoricalLogitGlm(NdArray x, NdArray alpha, NdArray beta) =>
        new(Dist.categoricalLogitGlm(A(x, nameof(x)), A(alpha, nameof(alpha)), A(beta, nameof(beta))));

    /// <summary>Negative binomial with log mean <paramref name="logMean"/> and concentration φ (Stan's neg_binomial_2_log).</summary>
    /// <param name="logMean">The log mean.</param>
    /// <param name="concentration">The concentration φ (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    public static Prior NegativeBinomialLog(NdArray logMean, NdArray concentration) =>
        new(Dist.negativeBinomialLog(A(logMean, nameof(logMean)), A(concentration, nameof(concentration))));

    /// <summary>LKJ(η) on Cholesky factors of <paramref name="dimension"/>×<paramref name="dimension"/> correlation matrices.</summary>
    /// <param name="dimension">The matrix dimension (at least 2).</param>
    /// <param name="concentration">η (positive; 1 is uniform over correlation matrices).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The dimension is below 2 or η is not positive.</exception>
    public static Prior LkjCholesky(int dimension, NdArray concentration) =>
        new(Dist.lkjCholesky(dimension, A(concentration, nameof(concentration))));

    /// <summary>
    /// Wishart(ν, Σ) over p×p positive-definite matrices (Stan's <c>wishart</c>): mean νΣ. A value that is not
    /// symmetric positive definite has log density −∞.
    /// </summary>
    /// <param name="df">ν, greater than p − 1 (a scalar or one per batch element).</param>
    /// <param name="scale">Σ [..., p, p], symmetric positive definite.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">ν is at most p − 1, Σ is not positive definite, or the shapes differ.</exception>
    public static Prior Wishart(NdArray df, NdArray scale) =>
        new(Dist.wishartCov(A(df, nameof(df)), A(scale, nameof(scale))));

    /// <summary>
    /// Inverse-Wishart(ν, Ψ) over p×p positive-definite matrices (Stan's <c>inv_wishart</c>): mean Ψ/(ν − p − 1)
    /// for ν &gt; p + 1. A value that is not symmetric positive definite has log density −∞.
    /// </summary>
    /// <param name="df">ν, greater than p − 1 (a scalar or one per batch element).</param>
    /// <param name="scale">Ψ [..., p, p], symmetric positive definite.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">ν is at most p − 1, Ψ is not positive definite, or the shapes differ.</exception>
    public static Prior InverseWishart(NdArray df, NdArray scale) =>
        new(Dist.inverseWishartCov(A(df, nameof(df)), A(scale, nameof(scale))));

    /// <summary>
    /// A flat (improper) prior over a continuous <paramref name="support"/>: log density 0 there. Usable with
    /// NUTS, and with SVI given a guide; drawing from it throws.
    /// </summary>
    /// <param name="support">The support (for example <see cref="ParamConstraint.Positive"/>).</param>
    /// <param name="shape">The site's shape (the support's event axes last).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The support is discrete or the shape does not fit it.</exception>
    public static Prior ImproperUniform(ParamConstraint support, params int[] shape)
    {
        ArgumentNullException.ThrowIfNull(support);
        ArgumentNullException.ThrowIfNull(shape);
        return new(Dist.improperUniform(support.Value, shape));
    }

    // ---- transformations and queries --------------------------------------------------------

    /// <summary>The family's name, for example "Normal".</summary>
    public string Name => Dist.name(Value);

    /// <summary>The batch shape: the broadcast shape of the parameters.</summary>
    public IReadOnlyList<int> BatchShape => Array.AsReadOnly(Dist.batchShape(Value));

    /// <summary>The shape of one draw.</summary>
    public IReadOnlyList<int> EventShape => Array.AsReadOnly(Dist.eventShape(Value));

    /// <summary>The same distribution broadcast to a larger batch shape (independent draws).</summary>
    /// <param name="batchShape">The new batch shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="batchShape"/> is null.</exception>
    /// <exception cref="ArgumentException">The batch shape cannot be expanded to it.</exception>
    public Prior Expand(params int[] batchShape)
    {
        ArgumentNullException.ThrowIfNull(batchShape);
        return new(Dist.expand(batchShape, Value));
    }

    /// <summary>Treats the last <paramref name="dims"/> batch axes as one event (their log densities are summed).</summary>
    /// <param name="dims">How many batch axes to move.</param>
    /// <exception cref="ArgumentException">There are fewer batch axes.</exception>
    public Prior ToEvent(int dims) => new(Dist.toEvent(dims, Value));

    /// <summary>Zeroes the log density where the bool <paramref name="mask"/> is false.</summary>
    /// <param name="mask">A bool array (for example from a comparison).</param>
    /// <exception cref="ArgumentNullException"><paramref name="mask"/> is null.</exception>
    public Prior Mask(NdArray mask) => new(Dist.mask(A(mask, nameof(mask)), Value));

    /// <summary>
    /// This distribution on a constrained support (Stan's <c>real&lt;lower=0&gt; sigma; sigma ~ student_t(3, 0, 1)</c>):
    /// its log density there, not renormalized. Cannot be sampled; use <see cref="Truncated"/> for a renormalized one.
    /// </summary>
    /// <param name="support">The support.</param>
    /// <exception cref="ArgumentNullException"><paramref name="support"/> is null.</exception>
    /// <exception cref="ArgumentException">The support or this distribution is discrete, or their event axes differ.</exception>
    public Prior RestrictedTo(ParamConstraint support)
    {
        ArgumentNullException.ThrowIfNull(support);
        return new(Dist.restrict(support.Value, Value));
    }

    /// <summary>
    /// This distribution truncated to (<paramref name="lower"/>, <paramref name="upper"/>) and renormalized
    /// (Stan's <c>T[lower, upper]</c>); null leaves a side open. Families with a CDF: Normal, HalfNormal, Cauchy, HalfCauchy,
    /// StudentT, Logistic, Laplace, Exponential, Gamma, InverseGamma, LogNormal. A half Student-t (Stan's <c>real&lt;lower=0&gt; sigma;
    /// sigma ~ student_t(3, 0, 2.5)</c>) is <c>Prior.StudentT(3, 0, 2.5).Truncated(0.0, null)</c>.
    /// </summary>
    /// <param name="lower">The lower bound, or null.</param>
    /// <param name="upper">The upper bound, or null.</param>
    /// <exception cref="NotSupportedException">The family has no CDF here.</exception>
    /// <exception cref="ArgumentException">A lower bound is not below its upper bound.</exception>
    public Prior Truncated(NdArray? lower, NdArray? upper) =>
        new(Dist.truncated(lower is null ? null : FSharpOption<FTensor?>.Some(lower.Value), upper is null ? null : FSharpOption<FTensor?>.Some(upper.Value), Value));

    /// <summary>The log density (or mass) of a value, per batch element.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    public NdArray LogProb(NdArray value) => NdArray.Wrap(Dist.logProb(Value, A(value, nameof(value))));

    /// <summary>The mean, per batch element.</summary>
    public NdArray Mean() => NdArray.Wrap(Dist.mean(Value));

    /// <summary>The variance, per batch element.</summary>
    public NdArray Variance() => NdArray.Wrap(Dist.variance(Value));

    /// <summary>Draws values from a seed.</summary>
    /// <param name="seed">The seed (the same seed gives the same draws).</param>
    /// <param name="sampleShape">Leading axes of independent draws (none for one draw).</param>
    /// <exception cref="ArgumentNullException"><paramref name="sampleShape"/> is null.</exception>
    public NdArray Sample(ulong seed, params int[] sampleShape)
    {
        ArgumentNullException.ThrowIfNull(sampleShape);
        return NdArray.Wrap(Dist.sample(FunctionalBayes.Tensors.Rng.key(seed), sampleShape, Value));
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}(batch [{string.Join(", ", BatchShape)}], event [{string.Join(", ", EventShape)}])";
}
