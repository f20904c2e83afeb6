namespace FunctionalBayes.Fluent

open System
open System.Collections.Generic
open FunctionalBayes
open FunctionalBayes.Tensors

/// <summary>The set a learnable parameter lives on.</summary>
[<Sealed; AllowNullLiteral>]
type ParamConstraint private (value: Constraint) =
    static let real = ParamConstraint(Constraint.Real)
    static let positive = ParamConstraint(Constraint.Positive)
    static let unitInterval = ParamConstraint(Constraint.UnitInterval)
    static let simplex = ParamConstraint(Constraint.Simplex)
    static let orderedVector = ParamConstraint(Constraint.OrderedVector)
    static let lowerCholesky = ParamConstraint(Constraint.LowerCholesky)
    static let positiveDefinite = ParamConstraint(Constraint.PositiveDefinite)

    member internal _.Value = value

    /// <summary>All real numbers.</summary>
    static member Real = real
    /// <summary>Positive numbers.</summary>
    static member Positive = positive
    /// <summary>Numbers in (0, 1).</summary>
    static member UnitInterval = unitInterval
    /// <summary>Vectors of non-negative numbers that sum to 1 (last axis).</summary>
    static member Simplex = simplex
    /// <summary>Increasing vectors (last axis).</summary>
    static member OrderedVector = orderedVector
    /// <summary>Lower-triangular matrices with a positive diagonal.</summary>
    static member LowerCholesky = lowerCholesky
    /// <summary>Symmetric positive-definite matrices.</summary>
    static member PositiveDefinite = positiveDefinite
    /// <summary>Numbers greater than <paramref name="lowerBound"/>.</summary>
    /// <param name="lowerBound">The bound.</param>
    static member GreaterThan(lowerBound: float) = ParamConstraint(Constraint.GreaterThan lowerBound)
    /// <summary>Numbers in (<paramref name="lowerBound"/>, <paramref name="upperBound"/>).</summary>
    /// <param name="lowerBound">The lower bound.</param>
    /// <param name="upperBound">The upper bound (greater).</param>
    /// <exception cref="ArgumentException">The bounds are not increasing.</exception>
    static member Interval(lowerBound: float, upperBound: float) =
        if not (upperBound > lowerBound) then
            invalidArg "upperBound" $"ParamConstraint.Interval: the upper bound {upperBound} must exceed the lower bound {lowerBound}."
        ParamConstraint(Constraint.Interval(lowerBound, upperBound))

    /// <inheritdoc />
    override _.ToString() = value.ToString()

/// <summary>
/// A probability distribution: the prior of a latent site, or the likelihood of an observed one.
/// Parameters are arrays that broadcast against each other (numbers convert to arrays implicitly);
/// the factories check them and throw <see cref="ArgumentException"/> naming the distribution and
/// the parameter, for example "Normal: parameter scale must be positive, got -1".
/// </summary>
[<Sealed; AllowNullLiteral>]
type Prior private (dist: Distribution) =
    static let a (name: string) (x: NdArray) : Tensor =
        (Arg.getMsg name $"The distribution parameter '{name}' is null." x).Value

    member internal _.Value = dist
    static member internal Wrap(d: Distribution) = Prior(d)

    // ---- continuous -------------------------------------------------------------------------

    /// <summary>Normal(<paramref name="loc"/>, <paramref name="scale"/>), scale &gt; 0.</summary>
    /// <param name="loc">The mean.</param>
    /// <param name="scale">The standard deviation (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Normal(loc: NdArray, scale: NdArray) = Prior(Dist.normal (a "loc" loc) (a "scale" scale))
    /// <summary>HalfNormal(<paramref name="scale"/>) on [0, ∞).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The scale is not positive.</exception>
    static member HalfNormal(scale: NdArray) = Prior(Dist.halfNormal (a "scale" scale))
    /// <summary>Cauchy(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Cauchy(loc: NdArray, scale: NdArray) = Prior(Dist.cauchy (a "loc" loc) (a "scale" scale))
    /// <summary>HalfCauchy(<paramref name="scale"/>) on [0, ∞).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The scale is not positive.</exception>
    static member HalfCauchy(scale: NdArray) = Prior(Dist.halfCauchy (a "scale" scale))
    /// <summary>Student's t with <paramref name="df"/> degrees of freedom.</summary>
    /// <param name="df">Degrees of freedom (positive).</param>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member StudentT(df: NdArray, loc: NdArray, scale: NdArray) = Prior(Dist.studentT (a "df" df) (a "loc" loc) (a "scale" scale))
    /// <summary>Laplace(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Laplace(loc: NdArray, scale: NdArray) = Prior(Dist.laplace (a "loc" loc) (a "scale" scale))
    /// <summary>Logistic(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The location.</param>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Logistic(loc: NdArray, scale: NdArray) = Prior(Dist.logistic (a "loc" loc) (a "scale" scale))
    /// <summary>LogNormal: exp of a Normal(<paramref name="loc"/>, <paramref name="scale"/>).</summary>
    /// <param name="loc">The mean of the logarithm.</param>
    /// <param name="scale">The standard deviation of the logarithm (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member LogNormal(loc: NdArray, scale: NdArray) = Prior(Dist.logNormal (a "loc" loc) (a "scale" scale))
    /// <summary>Exponential with the given rate.</summary>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The rate is not positive.</exception>
    static member Exponential(rate: NdArray) = Prior(Dist.exponential (a "rate" rate))
    /// <summary>Gamma with shape (concentration) and rate.</summary>
    /// <param name="concentration">The shape (positive).</param>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Gamma(concentration: NdArray, rate: NdArray) = Prior(Dist.gamma (a "concentration" concentration) (a "rate" rate))
    /// <summary>InverseGamma: the reciprocal of a Gamma(concentration, rate) draw.</summary>
    /// <param name="concentration">The shape (positive).</param>
    /// <param name="rate">The rate (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member InverseGamma(concentration: NdArray, rate: NdArray) =
        Prior(Dist.inverseGamma (a "concentration" concentration) (a "rate" rate))
    /// <summary>Beta(<paramref name="alpha"/>, <paramref name="beta"/>) on (0, 1).</summary>
    /// <param name="alpha">The first shape (positive).</param>
    /// <param name="beta">The second shape (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Beta(alpha: NdArray, beta: NdArray) = Prior(Dist.beta (a "alpha" alpha) (a "beta" beta))
    /// <summary>Uniform on [<paramref name="low"/>, <paramref name="high"/>].</summary>
    /// <param name="low">The lower bound.</param>
    /// <param name="high">The upper bound (greater than low).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The bounds are not finite or not increasing.</exception>
    static member Uniform(low: NdArray, high: NdArray) = Prior(Dist.uniform (a "low" low) (a "high" high))

    // ---- discrete ---------------------------------------------------------------------------

    /// <summary>Bernoulli on {0, 1} with P(1) = sigmoid(<paramref name="logits"/>).</summary>
    /// <param name="logits">Log-odds.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A logit is NaN.</exception>
    static member BernoulliLogits(logits: NdArray) = Prior(Dist.bernoulliLogits (a "logits" logits))
    /// <summary>Bernoulli on {0, 1} with P(1) = <paramref name="probs"/>.</summary>
    /// <param name="probs">Probabilities in [0, 1].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A probability is outside [0, 1].</exception>
    static member Bernoulli(probs: NdArray) = Prior(Dist.bernoulliProbs (a "probs" probs))
    /// <summary>Binomial(<paramref name="totalCount"/>, <paramref name="probs"/>).</summary>
    /// <param name="totalCount">Trials (non-negative integers).</param>
    /// <param name="probs">Success probabilities.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member Binomial(totalCount: NdArray, probs: NdArray) = Prior(Dist.binomialProbs (a "totalCount" totalCount) (a "probs" probs))
    /// <summary>Categorical over the last axis of unnormalized log-probabilities; values 0..K−1.</summary>
    /// <param name="logits">Logits [..., K].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The logits have no axis or hold NaN.</exception>
    static member CategoricalLogits(logits: NdArray) = Prior(Dist.categoricalLogits (a "logits" logits))
    /// <summary>Categorical over the last axis of probabilities (summing to 1); values 0..K−1.</summary>
    /// <param name="probs">Probabilities [..., K].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The probabilities are invalid or do not sum to 1.</exception>
    static member Categorical(probs: NdArray) = Prior(Dist.categoricalProbs (a "probs" probs))
    /// <summary>Poisson with the given rate.</summary>
    /// <param name="rate">The rate (non-negative).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A rate is negative.</exception>
    static member Poisson(rate: NdArray) = Prior(Dist.poisson (a "rate" rate))
    /// <summary>Negative binomial with mean μ and concentration φ: Var = μ + μ²/φ.</summary>
    /// <param name="mean">The mean (positive).</param>
    /// <param name="concentration">The concentration (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member NegativeBinomial(mean: NdArray, concentration: NdArray) =
        Prior(Dist.negativeBinomial (a "mean" mean) (a "concentration" concentration))
    /// <summary>A Poisson with extra zeros: zero with probability <paramref name="gate"/>.</summary>
    /// <param name="gate">The probability of a structural zero.</param>
    /// <param name="rate">The Poisson rate.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member ZeroInflatedPoisson(gate: NdArray, rate: NdArray) = Prior(Dist.zeroInflatedPoisson (a "gate" gate) (a "rate" rate))
    /// <summary>A negative binomial with extra zeros: zero with probability <paramref name="gate"/>.</summary>
    /// <param name="gate">The probability of a structural zero.</param>
    /// <param name="mean">The mean (positive).</param>
    /// <param name="concentration">The concentration (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member ZeroInflatedNegativeBinomial(gate: NdArray, mean: NdArray, concentration: NdArray) =
        Prior(Dist.zeroInflatedNegativeBinomial (a "gate" gate) (a "mean" mean) (a "concentration" concentration))
    /// <summary>Ordered categories: P(y ≤ k) = sigmoid(c_k − predictor) for increasing cutpoints c.</summary>
    /// <param name="predictor">The linear predictor.</param>
    /// <param name="cutpoints">Increasing cutpoints on the last axis (K − 1 of them).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The cutpoints do not increase or the shapes do not broadcast.</exception>
    static member OrderedLogistic(predictor: NdArray, cutpoints: NdArray) =
        Prior(Dist.orderedLogistic (a "predictor" predictor) (a "cutpoints" cutpoints))

    // ---- multivariate and composite -----------------------------------------------------------

    /// <summary>Dirichlet over the last axis.</summary>
    /// <param name="concentration">Concentrations [..., K] (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A concentration is not positive.</exception>
    static member Dirichlet(concentration: NdArray) = Prior(Dist.dirichlet (a "concentration" concentration))
    /// <summary>A multivariate normal from a mean and a covariance matrix (positive definite).</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="covariance">The covariance [..., n, n].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The covariance is not positive definite or the shapes differ.</exception>
    static member MultivariateNormal(loc: NdArray, covariance: NdArray) =
        Prior(Dist.multivariateNormalCov (a "loc" loc) (a "covariance" covariance))
    /// <summary>A multivariate normal from a mean and a lower Cholesky factor L of the covariance L·Lᵀ.</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="scaleTril">The lower-triangular factor [..., n, n] with a positive diagonal.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The factor is not a Cholesky factor or the shapes differ.</exception>
    static member MultivariateNormalCholesky(loc: NdArray, scaleTril: NdArray) =
        Prior(Dist.multivariateNormal (a "loc" loc) (a "scaleTril" scaleTril))
    /// <summary>A multivariate normal with covariance W·Wᵀ + diag(D).</summary>
    /// <param name="loc">The mean [..., n].</param>
    /// <param name="covFactor">W [..., n, r].</param>
    /// <param name="covDiag">D [..., n] (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes differ.</exception>
    static member LowRankMultivariateNormal(loc: NdArray, covFactor: NdArray, covDiag: NdArray) =
        Prior(Dist.lowRankMultivariateNormal (a "loc" loc) (a "covFactor" covFactor) (a "covDiag" covDiag))
    /// <summary>A point mass at a value.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    static member Delta(value: NdArray) = Prior(Dist.delta (a "value" value))
    /// <summary>A mixture Σ_k w_k p_k with w = softmax(<paramref name="mixingLogits"/>) over the last axis.</summary>
    /// <param name="mixingLogits">Logits [..., K], one per component.</param>
    /// <param name="components">K components with one event shape.</param>
    /// <exception cref="ArgumentNullException">A parameter or a component is null.</exception>
    /// <exception cref="ArgumentException">The number of logits and components differ, or the event shapes do.</exception>
    static member Mixture(mixingLogits: NdArray, [<ParamArray>] components: Prior[]) =
        let cs =
            Arg.get "components" components
            |> Array.mapi (fun i c -> (Arg.getMsg "components" $"Mixture: component {i} is null." c).Value)
        Prior(Dist.mixture (a "mixingLogits" mixingLogits) (List.ofArray cs))
    /// <summary>Poisson with log rate <paramref name="logRate"/> (a GLM's linear predictor), stable for any value.</summary>
    /// <param name="logRate">The log rate.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The log rate holds a NaN.</exception>
    static member PoissonLog(logRate: NdArray) = Prior(Dist.poissonLog (a "logRate" logRate))
    /// <summary>Logistic regression's likelihood as one distribution over y [n] ∈ {0, 1}ⁿ (Stan's bernoulli_logit_glm):
    /// P(yᵢ = 1) = σ(xᵢ·β + α). Its log density is one fused operation: one pass over <paramref name="x"/> for value
    /// and gradient. Observe it with <see cref="Bayes.Observe(string, Prior, NdArray?)"/>.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercept: a scalar, or one offset per row [n].</param>
    /// <param name="beta">The coefficients [d].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    static member BernoulliLogitGlm(x: NdArray, alpha: NdArray, beta: NdArray) =
        Prior(Dist.bernoulliLogitGlm (a "x" x) (a "alpha" alpha) (a "beta" beta))
    /// <summary>Poisson regression's likelihood as one distribution over counts y [n] (Stan's poisson_log_glm):
    /// yᵢ ~ Poisson(exp(xᵢ·β + α)), one fused operation.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercept: a scalar, or one offset per row [n].</param>
    /// <param name="beta">The coefficients [d].</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    static member PoissonLogGlm(x: NdArray, alpha: NdArray, beta: NdArray) =
        Prior(Dist.poissonLogGlm (a "x" x) (a "alpha" alpha) (a "beta" beta))
    /// <summary>Multinomial logistic regression's likelihood as one distribution over class labels y [n] (Stan's
    /// categorical_logit_glm): yᵢ ~ categorical(softmax(xᵢ·β + α)), labels 0 .. C − 1. Its log density is one fused
    /// operation: one pass over <paramref name="x"/> for value and gradient; a label outside 0 .. C − 1 scores −∞.</summary>
    /// <param name="x">The predictors [n, d], one row per observation.</param>
    /// <param name="alpha">The intercepts [C], one per class.</param>
    /// <param name="beta">The coefficients [d, C], one column per class.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A shape or dtype does not fit (the message names the argument, the shapes and the fix).</exception>
    static member CategoricalLogitGlm(x: NdArray, alpha: NdArray, beta: NdArray) =
        Prior(Dist.categoricalLogitGlm (a "x" x) (a "alpha" alpha) (a "beta" beta))
    /// <summary>Negative binomial with log mean <paramref name="logMean"/> and concentration φ (Stan's neg_binomial_2_log).</summary>
    /// <param name="logMean">The log mean.</param>
    /// <param name="concentration">The concentration φ (positive).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">A parameter is out of range or the shapes do not broadcast.</exception>
    static member NegativeBinomialLog(logMean: NdArray, concentration: NdArray) =
        Prior(Dist.negativeBinomialLog (a "logMean" logMean) (a "concentration" concentration))
    /// <summary>LKJ(η) on Cholesky factors of <paramref name="dimension"/>×<paramref name="dimension"/> correlation matrices.</summary>
    /// <param name="dimension">The matrix dimension (at least 2).</param>
    /// <param name="concentration">η (positive; 1 is uniform over correlation matrices).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The dimension is below 2 or η is not positive.</exception>
    static member LkjCholesky(dimension: int, concentration: NdArray) =
        Prior(Dist.lkjCholesky dimension (a "concentration" concentration))
    /// <summary>
    /// Wishart(ν, Σ) over p×p positive-definite matrices (Stan's <c>wishart</c>): mean νΣ. A value that is not
    /// symmetric positive definite has log density −∞.
    /// </summary>
    /// <param name="df">ν, greater than p − 1 (a scalar or one per batch element).</param>
    /// <param name="scale">Σ [..., p, p], symmetric positive definite.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">ν is at most p − 1, Σ is not positive definite, or the shapes differ.</exception>
    static member Wishart(df: NdArray, scale: NdArray) = Prior(Dist.wishartCov (a "df" df) (a "scale" scale))
    /// <summary>
    /// Inverse-Wishart(ν, Ψ) over p×p positive-definite matrices (Stan's <c>inv_wishart</c>): mean Ψ/(ν − p − 1)
    /// for ν &gt; p + 1. A value that is not symmetric positive definite has log density −∞.
    /// </summary>
    /// <param name="df">ν, greater than p − 1 (a scalar or one per batch element).</param>
    /// <param name="scale">Ψ [..., p, p], symmetric positive definite.</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">ν is at most p − 1, Ψ is not positive definite, or the shapes differ.</exception>
    static member InverseWishart(df: NdArray, scale: NdArray) = Prior(Dist.inverseWishartCov (a "df" df) (a "scale" scale))
    /// <summary>
    /// A flat (improper) prior over a continuous <paramref name="support"/>: log density 0 there. Usable with
    /// NUTS, and with SVI given a guide; drawing from it throws.
    /// </summary>
    /// <param name="support">The support (for example <see cref="ParamConstraint.Positive"/>).</param>
    /// <param name="shape">The site's shape (the support's event axes last).</param>
    /// <exception cref="ArgumentNullException">A parameter is null.</exception>
    /// <exception cref="ArgumentException">The support is discrete or the shape does not fit it.</exception>
    static member ImproperUniform(support: ParamConstraint, [<ParamArray>] shape: int[]) =
        Arg.notNull "support" support
        Prior(Dist.improperUniform support.Value (Arg.get "shape" shape))

    // ---- transformations and queries --------------------------------------------------------

    /// <summary>The family's name, for example "Normal".</summary>
    member _.Name: string = Dist.name dist
    /// <summary>The batch shape: the broadcast shape of the parameters.</summary>
    member _.BatchShape: IReadOnlyList<int> = Arg.readOnly (Dist.batchShape dist)
    /// <summary>The shape of one draw.</summary>
    member _.EventShape: IReadOnlyList<int> = Arg.readOnly (Dist.eventShape dist)
    /// <summary>The same distribution broadcast to a larger batch shape (independent draws).</summary>
    /// <param name="batchShape">The new batch shape.</param>
    /// <exception cref="ArgumentNullException"><paramref name="batchShape"/> is null.</exception>
    /// <exception cref="ArgumentException">The batch shape cannot be expanded to it.</exception>
    member _.Expand([<ParamArray>] batchShape: int[]) = Prior(Dist.expand (Arg.get "batchShape" batchShape) dist)
    /// <summary>Treats the last <paramref name="dims"/> batch axes as one event (their log densities are summed).</summary>
    /// <param name="dims">How many batch axes to move.</param>
    /// <exception cref="ArgumentException">There are fewer batch axes.</exception>
    member _.ToEvent(dims: int) = Prior(Dist.toEvent dims dist)
    /// <summary>Zeroes the log density where the bool <paramref name="mask"/> is false.</summary>
    /// <param name="mask">A bool array (for example from a comparison).</param>
    /// <exception cref="ArgumentNullException"><paramref name="mask"/> is null.</exception>
    member _.Mask(mask: NdArray) = Prior(Dist.mask (a "mask" mask) dist)
    /// <summary>
    /// This distribution on a constrained support (Stan's <c>real&lt;lower=0&gt; sigma; sigma ~ student_t(3, 0, 1)</c>):
    /// its log density there, not renormalized. Cannot be sampled; use <see cref="Truncated"/> for a renormalized one.
    /// </summary>
    /// <param name="support">The support.</param>
    /// <exception cref="ArgumentNullException"><paramref name="support"/> is null.</exception>
    /// <exception cref="ArgumentException">The support or this distribution is discrete, or their event axes differ.</exception>
    member _.RestrictedTo(support: ParamConstraint) = Prior(Dist.restrict (Arg.get "support" support).Value dist)
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
    member _.Truncated(lower: NdArray, upper: NdArray) =
        let t (x: NdArray) = Arg.opt x |> Option.map (fun x -> x.Value)
        Prior(Dist.truncated (t lower) (t upper) dist)
    /// <summary>The log density (or mass) of a value, per batch element.</summary>
    /// <param name="value">The value.</param>
    /// <exception cref="ArgumentNullException"><paramref name="value"/> is null.</exception>
    member _.LogProb(value: NdArray) = NdArray.Wrap(Dist.logProb dist (a "value" value))
    /// <summary>The mean, per batch element.</summary>
    member _.Mean() = NdArray.Wrap(Dist.mean dist)
    /// <summary>The variance, per batch element.</summary>
    member _.Variance() = NdArray.Wrap(Dist.variance dist)
    /// <summary>Draws values from a seed.</summary>
    /// <param name="seed">The seed (the same seed gives the same draws).</param>
    /// <param name="sampleShape">Leading axes of independent draws (none for one draw).</param>
    /// <exception cref="ArgumentNullException"><paramref name="sampleShape"/> is null.</exception>
    member _.Sample(seed: uint64, [<ParamArray>] sampleShape: int[]) =
        NdArray.Wrap(Dist.sample (Rng.key seed) (Arg.get "sampleShape" sampleShape) dist)

    /// <inheritdoc />
    override this.ToString() =
        let j (xs: int[]) = String.Join(", ", Array.map string xs)
        $"{this.Name}(batch [{j (Dist.batchShape dist)}], event [{j (Dist.eventShape dist)}])"

/// <summary>
/// A family of coefficient priors that takes a scale: a layer builds its coefficients' prior from the
/// family and its (sampled) scale, for example Normal(0, scale) or Laplace(0, scale).
/// </summary>
[<Sealed; AllowNullLiteral>]
type CoefficientFamily private (value: ScaleFamily) =
    member internal _.Value = value
    static member internal Wrap(f: ScaleFamily) = CoefficientFamily(f)

    /// <summary>Normal(<paramref name="loc"/>, scale): BLayers' default.</summary>
    /// <param name="loc">The location.</param>
    static member Normal([<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(0.0)>] loc: float) =
        CoefficientFamily(ScaleFamily.Normal loc)
    /// <summary>Laplace(<paramref name="loc"/>, scale): a sparser, lasso-like prior.</summary>
    /// <param name="loc">The location.</param>
    static member Laplace([<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(0.0)>] loc: float) =
        CoefficientFamily(ScaleFamily.Laplace loc)
    /// <summary>Cauchy(<paramref name="loc"/>, scale): heavy tails.</summary>
    /// <param name="loc">The location.</param>
    static member Cauchy([<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(0.0)>] loc: float) =
        CoefficientFamily(ScaleFamily.Cauchy loc)
    /// <summary>StudentT(<paramref name="df"/>, <paramref name="loc"/>, scale).</summary>
    /// <param name="df">Degrees of freedom (positive).</param>
    /// <param name="loc">The location.</param>
    static member StudentT(df: float, [<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(0.0)>] loc: float) =
        CoefficientFamily(ScaleFamily.StudentT(df, loc))
    /// <summary>Logistic(<paramref name="loc"/>, scale).</summary>
    /// <param name="loc">The location.</param>
    static member Logistic([<Runtime.InteropServices.Optional; Runtime.InteropServices.DefaultParameterValue(0.0)>] loc: float) =
        CoefficientFamily(ScaleFamily.Logistic loc)
    /// <summary>Any family: a function from the scale array to a prior.</summary>
    /// <param name="name">A name for messages.</param>
    /// <param name="make">Builds the prior at a scale.</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    static member Custom(name: string, make: Func<NdArray, Prior>) =
        Arg.notNull "name" name
        Arg.notNull "make" make
        CoefficientFamily(
            ScaleFamily.Custom(
                name,
                fun s ->
                    let p = make.Invoke(NdArray.Wrap s)
                    if isNull p then invalidOp $"CoefficientFamily '{name}' returned a null prior."
                    p.Value))
    /// <summary>The family's prior at a given scale (validated).</summary>
    /// <param name="scale">The scale.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scale"/> is null.</exception>
    member _.AtScale(scale: NdArray) = Prior.Wrap(value.WithScale((Arg.get "scale" scale).Value))

    /// <inheritdoc />
    override _.ToString() =
        match value with
        | ScaleFamily.Custom(name, _) -> name
        | other -> other.ToString()
