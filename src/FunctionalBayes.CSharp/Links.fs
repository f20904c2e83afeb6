namespace FunctionalBayes.Fluent

open System
open System.Runtime.InteropServices
open FunctionalBayes
open FunctionalBayes.Tensors

/// <summary>
/// Gaussian-process covariance functions as Stan writes them, differentiable in the inputs and the
/// hyperparameters (use them inside a model). Inputs are [N] (one feature) or [N, D]; the result is the
/// [N1, N2] cross-covariance. With <see cref="Prior.MultivariateNormal"/>, or <see cref="NdArray.Cholesky"/> and
/// <see cref="Prior.MultivariateNormalCholesky"/>, they give a GP prior.
/// </summary>
[<AbstractClass; Sealed>]
type GaussianProcess =
    static member private A(a: NdArray, name: string) : Tensor =
        (Arg.getMsg name $"The Gaussian-process argument '{name}' is null." a).Value

    /// <summary>Exponentiated quadratic α² exp(−d²/(2ρ²)) (Stan's gp_exp_quad_cov).</summary>
    /// <param name="alpha">The marginal standard deviation α.</param>
    /// <param name="rho">The length scale ρ.</param>
    /// <param name="x1">Inputs [N1] or [N1, D].</param>
    /// <param name="x2">Inputs [N2] or [N2, D].</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    static member ExpQuad(alpha: NdArray, rho: NdArray, x1: NdArray, x2: NdArray) =
        NdArray.Wrap(Gp.expQuad (GaussianProcess.A(alpha, "alpha")) (GaussianProcess.A(rho, "rho")) (GaussianProcess.A(x1, "x1")) (GaussianProcess.A(x2, "x2")))

    /// <summary>Matérn 3/2: α² (1 + √3 d/ρ) exp(−√3 d/ρ) (Stan's gp_matern32_cov).</summary>
    /// <inheritdoc cref="ExpQuad" path="/param"/>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    static member Matern32(alpha: NdArray, rho: NdArray, x1: NdArray, x2: NdArray) =
        NdArray.Wrap(Gp.matern32 (GaussianProcess.A(alpha, "alpha")) (GaussianProcess.A(rho, "rho")) (GaussianProcess.A(x1, "x1")) (GaussianProcess.A(x2, "x2")))

    /// <summary>Matérn 5/2: α² (1 + √5 d/ρ + 5d²/(3ρ²)) exp(−√5 d/ρ) (Stan's gp_matern52_cov).</summary>
    /// <inheritdoc cref="ExpQuad" path="/param"/>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    static member Matern52(alpha: NdArray, rho: NdArray, x1: NdArray, x2: NdArray) =
        NdArray.Wrap(Gp.matern52 (GaussianProcess.A(alpha, "alpha")) (GaussianProcess.A(rho, "rho")) (GaussianProcess.A(x1, "x1")) (GaussianProcess.A(x2, "x2")))

    /// <summary>Periodic: α² exp(−2 sin²(π d/p)/ℓ²) (Stan's gp_periodic_cov).</summary>
    /// <param name="alpha">The marginal standard deviation α.</param>
    /// <param name="lengthScale">The length scale ℓ.</param>
    /// <param name="period">The period p.</param>
    /// <param name="x1">Inputs [N1] or [N1, D].</param>
    /// <param name="x2">Inputs [N2] or [N2, D].</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The inputs are not [N] or [N, D], or their feature counts differ.</exception>
    static member Periodic(alpha: NdArray, lengthScale: NdArray, period: NdArray, x1: NdArray, x2: NdArray) =
        NdArray.Wrap(
            Gp.periodic (GaussianProcess.A(alpha, "alpha")) (GaussianProcess.A(lengthScale, "lengthScale")) (GaussianProcess.A(period, "period"))
                (GaussianProcess.A(x1, "x1")) (GaussianProcess.A(x2, "x2")))

    /// <summary>K + δ·I: jitter or a noise variance on the diagonal of a square covariance.</summary>
    /// <param name="covariance">A square covariance [N, N].</param>
    /// <param name="delta">δ (a number or a broadcastable array).</param>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException">The covariance is not square.</exception>
    static member AddDiagonal(covariance: NdArray, delta: NdArray) =
        NdArray.Wrap(Gp.addDiagonal (GaussianProcess.A(delta, "delta")) (GaussianProcess.A(covariance, "covariance")))

/// <summary>
/// How a location-scale link (Gaussian, LogNormal, StudentT) gets its observation scale σ.
/// </summary>
[<Sealed; AllowNullLiteral>]
type ObservationScale private (value: LinkScale) =
    member internal _.Value = value

    /// <summary>σ is a latent site "{name}_sigma" with this prior (on positive values).</summary>
    /// <param name="prior">The prior; BLayers' default is <c>Prior.Exponential(1)</c>.</param>
    /// <exception cref="ArgumentNullException"><paramref name="prior"/> is null.</exception>
    /// <exception cref="ArgumentException">The prior is not on positive values.</exception>
    static member Sampled(prior: Prior) =
        Arg.notNull "prior" prior
        let support = Dist.support prior.Value
        if not (support.IsPositive || support.IsGreaterThan) then
            invalidArg "prior" $"ObservationScale.Sampled: the prior of sigma must be on positive values, got {prior.Name} with support {support}."
        ObservationScale(LinkScale.Sampled prior.Value)

    /// <summary>σ is fixed: a number or one value per row (no site).</summary>
    /// <param name="scale">The scale (positive).</param>
    /// <exception cref="ArgumentNullException"><paramref name="scale"/> is null.</exception>
    /// <exception cref="ArgumentException">A value is not positive.</exception>
    static member Fixed(scale: NdArray) =
        Arg.notNull "scale" scale
        if scale.ToArray() |> Array.exists (fun v -> not (v > 0.0) || Double.IsInfinity v) then
            invalidArg "scale" $"ObservationScale.Fixed: the scale must be positive and finite, got {scale}."
        ObservationScale(LinkScale.Fixed scale.Value)

    /// <summary>σ = softplus(u) for a given unconstrained u (for example a value from <see cref="Bayes.Param"/>).</summary>
    /// <param name="unconstrained">u.</param>
    /// <exception cref="ArgumentNullException"><paramref name="unconstrained"/> is null.</exception>
    static member Softplus(unconstrained: NdArray) = ObservationScale(LinkScale.Untransformed (Arg.get "unconstrained" unconstrained).Value)

/// <summary>
/// Links: the observation model of a regression, given the linear predictor ŷ ((n,) or (n, 1); (n, K) for
/// <see cref="Categorical"/>) and the observations y ((n,) or (n, 1)), or null for y to predict. The
/// observed site is named <c>name</c>; extra parameters are sites named <c>{name}_…</c>. A y whose rows
/// differ from ŷ's throws <see cref="ArgumentException"/> naming both shapes.
/// </summary>
[<AbstractClass; Sealed>]
type Link =
    static member private Y(yHat: NdArray) : Tensor = (Arg.get "yHat" yHat).Value

    // the observed site's name is checked, then the core's link builds the site
    static member private Of(name: string, make: string -> Model<Tensor>) =
        Bayes.CheckName(name, "name")
        Bayes.Wrap(make name)

    /// <summary>y ~ Normal(ŷ, σ); σ ~ Exponential(1) (site "{name}_sigma") unless <paramref name="scale"/> says otherwise. Mean: ŷ.</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="scale">How σ is given; null for the default.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Gaussian(name: string, yHat: NdArray, y: NdArray, [<Optional>] scale: ObservationScale) =
        let s = if isNull scale then Links.defaultSigma else scale.Value
        Link.Of(name, fun n -> Links.gaussianWith s n (Link.Y yHat) (Convert.Option y))

    /// <summary>y ~ LogNormal(ŷ, σ) with ŷ on the log scale. Mean: exp(ŷ + σ²/2).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="scale">How σ is given; null for σ ~ Exponential(1).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member LogNormal(name: string, yHat: NdArray, y: NdArray, [<Optional>] scale: ObservationScale) =
        let s = if isNull scale then Links.defaultSigma else scale.Value
        Link.Of(name, fun n -> Links.lognormalWith s n (Link.Y yHat) (Convert.Option y))

    /// <summary>y ~ StudentT(df, ŷ, σ). Mean: ŷ (for df &gt; 1).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="degreesOfFreedom">df (positive; BLayers' default 4).</param>
    /// <param name="scale">How σ is given; null for σ ~ Exponential(1).</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">df is not positive, or the shapes of y and ŷ do not match.</exception>
    static member StudentT(name: string, yHat: NdArray, y: NdArray, [<Optional; DefaultParameterValue(4.0)>] degreesOfFreedom: float,
                           [<Optional>] scale: ObservationScale) =
        let s = if isNull scale then Links.defaultSigma else scale.Value
        Link.Of(name, fun n -> Links.studentTWith degreesOfFreedom s n (Link.Y yHat) (Convert.Option y))

    /// <summary>Binary y ~ Bernoulli(logits = ŷ). Mean: sigmoid(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log-odds).</param>
    /// <param name="y">The 0/1 observations, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Logit(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.logit n (Link.Y yHat) (Convert.Option y))

    /// <summary>Counts y ~ Poisson(exp ŷ). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log rate).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Poisson(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.poisson n (Link.Y yHat) (Convert.Option y))

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
    static member NegativeBinomial(name: string, yHat: NdArray, y: NdArray, [<Optional; DefaultParameterValue(1.0)>] concentrationRate: float) =
        Link.Of(name, fun n -> Links.negativeBinomialWith concentrationRate n (Link.Y yHat) (Convert.Option y))

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
    static member Ordinal(name: string, yHat: NdArray, y: NdArray, numClasses: int) =
        Link.Of(name, fun n -> Links.ordinal numClasses n (Link.Y yHat) (Convert.Option y))

    /// <summary>Zero-inflated Poisson: gate ~ Beta(1, 10) (site "{name}_gate"), rate exp(ŷ). Mean: (1 − gate)·exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log rate).</param>
    /// <param name="y">The counts, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member ZeroInflatedPoisson(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.zeroInflatedPoisson n (Link.Y yHat) (Convert.Option y))

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
    static member ZeroInflatedNegativeBinomial(name: string, yHat: NdArray, y: NdArray, [<Optional; DefaultParameterValue(1.0)>] concentrationRate: float) =
        Link.Of(name, fun n -> Links.zeroInflatedNegativeBinomialWith concentrationRate n (Link.Y yHat) (Convert.Option y))

    /// <summary>y in (0, 1) ~ Beta(m·φ, (1 − m)·φ) with m = sigmoid(ŷ), φ ~ Exponential(1) (site "{name}_phi"). Mean: sigmoid(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor.</param>
    /// <param name="y">The proportions, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Beta(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.beta n (Link.Y yHat) (Convert.Option y))

    /// <summary>Positive y ~ Gamma(k, k / exp ŷ), shape k ~ Exponential(rate) (site "{name}_shape"). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log mean).</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <param name="shapeRate">The rate of k's Exponential prior.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Gamma(name: string, yHat: NdArray, y: NdArray, [<Optional; DefaultParameterValue(1.0)>] shapeRate: float) =
        Link.Of(name, fun n -> Links.gammaWith shapeRate n (Link.Y yHat) (Convert.Option y))

    /// <summary>Positive y ~ Exponential(rate exp(−ŷ)). Mean: exp(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">The linear predictor (log mean).</param>
    /// <param name="y">The observations, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">The shapes of y and ŷ do not match.</exception>
    static member Exponential(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.exponential n (Link.Y yHat) (Convert.Option y))

    /// <summary>Classes y in 0..K−1 ~ Categorical(logits ŷ) with ŷ of shape (n, K). Mean: softmax(ŷ).</summary>
    /// <param name="name">The observed site's name.</param>
    /// <param name="yHat">Logits (n, K).</param>
    /// <param name="y">One class id per row, or null to predict.</param>
    /// <exception cref="ArgumentNullException"><paramref name="name"/> or <paramref name="yHat"/> is null.</exception>
    /// <exception cref="ArgumentException">ŷ is not (n, K), or y does not have one id per row.</exception>
    static member Categorical(name: string, yHat: NdArray, y: NdArray) =
        Link.Of(name, fun n -> Links.categorical n (Link.Y yHat) (Convert.Option y))
