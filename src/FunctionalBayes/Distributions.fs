namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// A probability distribution with tensor parameters that broadcast against each other.
/// Its batch shape is the broadcast shape of its parameters; its event shape is the shape of one draw.
/// Construct with the checked functions of the Dist module (Dist.normal, ...); building a case
/// directly skips validation, which is what hot loops want.
type Distribution =
    | Normal of loc: Tensor * scale: Tensor
    | HalfNormal of scale: Tensor
    | Cauchy of loc: Tensor * scale: Tensor
    | HalfCauchy of scale: Tensor
    | StudentT of df: Tensor * loc: Tensor * scale: Tensor
    | Laplace of loc: Tensor * scale: Tensor
    | Logistic of loc: Tensor * scale: Tensor
    | LogNormal of loc: Tensor * scale: Tensor
    | Exponential of rate: Tensor
    /// Shape (concentration) and rate.
    | Gamma of concentration: Tensor * rate: Tensor
    /// Shape (concentration) and rate: the reciprocal of a Gamma(concentration, rate) draw.
    | InverseGamma of concentration: Tensor * rate: Tensor
    | Beta of alpha: Tensor * beta: Tensor
    | Uniform of low: Tensor * high: Tensor
    | BernoulliLogits of logits: Tensor
    | BernoulliProbs of probs: Tensor
    | BinomialLogits of totalCount: Tensor * logits: Tensor
    | BinomialProbs of totalCount: Tensor * probs: Tensor
    /// Unnormalized log-probabilities over the last axis.
    | CategoricalLogits of logits: Tensor
    /// Probabilities over the last axis.
    | CategoricalProbs of probs: Tensor
    | Poisson of rate: Tensor
    /// Mean μ and concentration φ (NumPyro's NegativeBinomial2): Var = μ + μ²/φ.
    | NegativeBinomial of mean: Tensor * concentration: Tensor
    | ZeroInflatedPoisson of gate: Tensor * rate: Tensor
    | ZeroInflatedNegativeBinomial of gate: Tensor * mean: Tensor * concentration: Tensor
    /// P(y ≤ k) = σ(c_k − η) for increasing cutpoints c (last axis, K−1 of them): values 0..K−1.
    | OrderedLogistic of predictor: Tensor * cutpoints: Tensor
    | Dirichlet of concentration: Tensor
    /// Mean and lower-Cholesky scale: Σ = L Lᵀ.
    | MultivariateNormal of loc: Tensor * scaleTril: Tensor
    /// Σ = W Wᵀ + diag(D).
    | LowRankMultivariateNormal of loc: Tensor * covFactor: Tensor * covDiag: Tensor
    /// A point mass at `value` whose last `eventDims` axes form one event, with a given log-density.
    | Delta of value: Tensor * logDensity: Tensor * eventDims: int
    /// Σ_k w_k p_k with w = softmax(mixingLogits) over the last axis; components of one shape.
    | Mixture of mixingLogits: Tensor * components: Distribution list
    /// The last `reinterpretedBatchDims` batch axes of the base become event axes.
    | Independent of baseDist: Distribution * reinterpretedBatchDims: int
    /// The base broadcast to a larger batch shape (with independent draws).
    | Expand of baseDist: Distribution * batchShape: int[]
    /// Log-densities where the mask is false are zero.
    | Masked of baseDist: Distribution * mask: Tensor
    /// Log density 0 on the support (an improper flat prior, Stan's parameter without a prior); `shape`
    /// is batch @ event (the support's event axes last). A prior for NUTS and for SVI with a guide; it
    /// cannot be sampled.
    | ImproperUniform of support: Constraint * shape: int[]
    /// The base's log density on a narrower support, not renormalized: a constrained site as Stan writes
    /// it (`real<lower=0> sigma; sigma ~ student_t(3, 0, 1)`, `ordered[K] mu; mu ~ normal(0, 10)`), exact
    /// up to a constant when the base's parameters are constants. It cannot be sampled.
    | Restricted of baseDist: Distribution * support: Constraint
    /// The base truncated to (low, high) and renormalized by its CDF (None: that side open); element-wise
    /// bases with a CDF here (those Dist.truncated lists).
    | Truncated of baseDist: Distribution * low: Tensor option * high: Tensor option
    /// Poisson with log rate η (Stan's poisson_log): log p(k) = kη − e^η − log k!.
    | PoissonLog of logRate: Tensor
    /// NegativeBinomial with log mean η and concentration φ (Stan's neg_binomial_2_log).
    | NegativeBinomialLog of logMean: Tensor * concentration: Tensor
    /// LKJ(η) on the Cholesky factors of `dimension`×`dimension` correlation matrices (Stan's lkj_corr_cholesky).
    | LkjCholesky of dimension: int * concentration: Tensor
    /// Wishart(ν, Σ) on p×p positive-definite matrices, Σ = L Lᵀ from its lower-Cholesky scale (Stan's
    /// wishart, NumPyro's Wishart with scale_tril); ν > p − 1. Mean νΣ.
    | Wishart of df: Tensor * scaleTril: Tensor
    /// Inverse-Wishart(ν, Ψ) on p×p positive-definite matrices, Ψ = L Lᵀ from its lower-Cholesky scale
    /// (Stan's inv_wishart): X⁻¹ ~ Wishart(ν, Ψ⁻¹); ν > p − 1. Mean Ψ/(ν − p − 1) for ν > p + 1.
    | InverseWishart of df: Tensor * scaleTril: Tensor
    /// The n observations of a GLM with the family's canonical link as one event of shape [n] (Stan's
    /// bernoulli_logit_glm, poisson_log_glm): yᵢ ~ family(ηᵢ), η = x·β + α, x [n, d], α a scalar or [n],
    /// β [d]. Its log density is one fused op (Tensor.glmLogLikelihood): one pass over x for value and
    /// gradient. Build it with Dist.bernoulliLogitGlm or Dist.poissonLogGlm.
    | Glm of family: GlmFamily * x: Tensor * alpha: Tensor * beta: Tensor
    /// The n class labels of a categorical-logit GLM as one event of shape [n] (Stan's
    /// categorical_logit_glm): yᵢ ~ categorical(softmax(ηᵢ)), η = x·β + α, x [n, d], α [C], β [d, C], yᵢ ∈
    /// 0 .. C − 1. Its log density is one fused op (Tensor.categoricalGlmLogLikelihood): one pass over x for
    /// value and gradient. Build it with Dist.categoricalLogitGlm.
    | CategoricalLogitGlm of x: Tensor * alpha: Tensor * beta: Tensor

[<RequireQualifiedAccess>]
module Dist =

    let private log2Pi = log (2.0 * Math.PI)
    // a fresh array (callers may keep it), with no list or copy per parameter: shapes are taken per log density
    let private bshape (what: string) (ts: Tensor list) =
        match ts with
        | [] -> invalidArg "ts" "Dist.bshape: no parameters."
        | t :: rest -> rest |> List.fold (fun (s: int[]) (u: Tensor) -> Shape.broadcast what s u.ShapeRef) (Array.copy t.ShapeRef)
    let private lastAxisDropped (t: Tensor) = t.Shape.[.. t.Rank - 2]
    let private lastTwoDropped (t: Tensor) = t.Shape.[.. t.Rank - 3]

    /// The family's name, for messages.
    let rec name (d: Distribution) =
        match d with
        | Normal _ -> "Normal" | HalfNormal _ -> "HalfNormal" | Cauchy _ -> "Cauchy" | HalfCauchy _ -> "HalfCauchy"
        | StudentT _ -> "StudentT" | Laplace _ -> "Laplace" | Logistic _ -> "Logistic" | LogNormal _ -> "LogNormal"
        | Exponential _ -> "Exponential" | Gamma _ -> "Gamma" | InverseGamma _ -> "InverseGamma" | Beta _ -> "Beta"
        | Uniform _ -> "Uniform" | BernoulliLogits _ | BernoulliProbs _ -> "Bernoulli"
        | BinomialLogits _ | BinomialProbs _ -> "Binomial" | CategoricalLogits _ | CategoricalProbs _ -> "Categorical"
        | Poisson _ -> "Poisson" | NegativeBinomial _ -> "NegativeBinomial" | ZeroInflatedPoisson _ -> "ZeroInflatedPoisson"
        | ZeroInflatedNegativeBinomial _ -> "ZeroInflatedNegativeBinomial" | OrderedLogistic _ -> "OrderedLogistic"
        | Dirichlet _ -> "Dirichlet" | MultivariateNormal _ -> "MultivariateNormal"
        | LowRankMultivariateNormal _ -> "LowRankMultivariateNormal" | Delta _ -> "Delta"
        | Mixture _ -> "Mixture" | Independent (b, _) -> sprintf "Independent(%s)" (name b)
        | Expand (b, _) -> sprintf "Expand(%s)" (name b) | Masked (b, _) -> sprintf "Masked(%s)" (name b)
        | ImproperUniform _ -> "ImproperUniform" | Restricted (b, _) -> sprintf "Restricted(%s)" (name b)
        | Truncated (b, _, _) -> sprintf "Truncated(%s)" (name b) | PoissonLog _ -> "PoissonLog"
        | NegativeBinomialLog _ -> "NegativeBinomialLog" | LkjCholesky _ -> "LKJCholesky"
        | Wishart _ -> "Wishart" | InverseWishart _ -> "InverseWishart"
        | Glm (GlmFamily.BernoulliLogit, _, _, _) -> "BernoulliLogitGlm" | Glm (GlmFamily.PoissonLog, _, _, _) -> "PoissonLogGlm"
        | CategoricalLogitGlm _ -> "CategoricalLogitGlm"

    // ---- shapes -------------------------------------------------------------------------------

    /// The shape of one draw.
    let rec eventShape (d: Distribution) : int[] =
        match d with
        | Dirichlet c -> [| c.Shape.[c.Rank - 1] |]
        | MultivariateNormal (loc, l) -> [| max (if loc.Rank > 0 then loc.Shape.[loc.Rank - 1] else 1) l.Shape.[l.Rank - 1] |]
        | LowRankMultivariateNormal (loc, _, diag) -> [| max (if loc.Rank > 0 then loc.Shape.[loc.Rank - 1] else 1) diag.Shape.[diag.Rank - 1] |]
        | Delta (v, _, k) -> v.Shape.[v.Rank - k ..]
        | Mixture (_, c :: _) -> eventShape c
        | Independent (b, n) ->
            let bs = batchShapeOf b
            Array.append bs.[bs.Length - n ..] (eventShape b)
        | Expand (b, _) | Masked (b, _) | Restricted (b, _) | Truncated (b, _, _) -> eventShape b
        | ImproperUniform (c, shape) -> shape.[shape.Length - c.EventDims ..]
        | LkjCholesky (k, _) -> [| k; k |]
        | Wishart (_, l) | InverseWishart (_, l) -> l.Shape.[l.Rank - 2 ..]
        | Glm (_, x, _, _) | CategoricalLogitGlm (x, _, _) -> [| x.Shape.[0] |]
        | Mixture (_, []) -> [||]
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _
        | Exponential _ | Gamma _ | InverseGamma _ | Beta _ | Uniform _ | BernoulliLogits _ | BernoulliProbs _
        | BinomialLogits _ | BinomialProbs _ | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _
        | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | PoissonLog _ | NegativeBinomialLog _ -> [||]

    /// The broadcast shape of the parameters: independent, non-identical distributions.
    and batchShapeOf (d: Distribution) : int[] =
        let n = name d
        match d with
        | Normal (a, b) | Cauchy (a, b) | Laplace (a, b) | Logistic (a, b) | LogNormal (a, b)
        | Gamma (a, b) | InverseGamma (a, b) | Beta (a, b) | Uniform (a, b)
        | BinomialLogits (a, b) | BinomialProbs (a, b) | NegativeBinomial (a, b) | ZeroInflatedPoisson (a, b)
        | NegativeBinomialLog (a, b) -> bshape n [ a; b ]
        | HalfNormal a | HalfCauchy a | Exponential a | BernoulliLogits a | BernoulliProbs a | Poisson a | PoissonLog a
        | LkjCholesky (_, a) -> a.Shape
        | StudentT (a, b, c) | ZeroInflatedNegativeBinomial (a, b, c) -> bshape n [ a; b; c ]
        | CategoricalLogits l | CategoricalProbs l -> lastAxisDropped l
        | OrderedLogistic (eta, c) -> Shape.broadcast n eta.Shape (lastAxisDropped c)
        | Dirichlet c -> lastAxisDropped c
        | MultivariateNormal (loc, l) ->
            Shape.broadcast n (if loc.Rank > 0 then lastAxisDropped loc else [||]) (lastTwoDropped l)
        | LowRankMultivariateNormal (loc, w, diag) ->
            Shape.broadcast n (Shape.broadcast n (if loc.Rank > 0 then lastAxisDropped loc else [||]) (lastTwoDropped w)) (lastAxisDropped diag)
        | Delta (v, _, k) -> v.Shape.[.. v.Rank - k - 1]
        | Mixture (w, cs) ->
            let cb = cs |> List.map batchShapeOf |> List.reduce (Shape.broadcast n)
            Shape.broadcast n cb (lastAxisDropped w)
        | Independent (b, k) ->
            let bs = batchShapeOf b
            bs.[.. bs.Length - k - 1]
        | Expand (_, s) -> s
        | Masked (b, m) -> Shape.broadcast n (batchShapeOf b) m.Shape
        | Restricted (b, _) -> batchShapeOf b
        | Truncated (b, lo, hi) ->
            [ lo; hi ] |> List.choose id |> List.fold (fun acc t -> Shape.broadcast n acc t.Shape) (batchShapeOf b)
        | ImproperUniform (c, shape) -> shape.[.. shape.Length - c.EventDims - 1]
        | Wishart (df, l) | InverseWishart (df, l) -> Shape.broadcast n df.Shape (lastTwoDropped l)
        | Glm _ | CategoricalLogitGlm _ -> [||]

    let batchShape d = batchShapeOf d

    /// The dtype of the distribution's values.
    let rec dtype (d: Distribution) : Dtype =
        match d with
        | Normal (a, _) | HalfNormal a | Cauchy (a, _) | HalfCauchy a | StudentT (_, a, _) | Laplace (a, _)
        | Logistic (a, _) | LogNormal (a, _) | Exponential a | Gamma (a, _) | InverseGamma (a, _) | Beta (a, _)
        | Uniform (a, _) | BernoulliLogits a | BernoulliProbs a | BinomialLogits (_, a) | BinomialProbs (_, a)
        | CategoricalLogits a | CategoricalProbs a | Poisson a | NegativeBinomial (a, _) | ZeroInflatedPoisson (_, a)
        | ZeroInflatedNegativeBinomial (_, a, _) | OrderedLogistic (a, _) | Dirichlet a | MultivariateNormal (a, _)
        | LowRankMultivariateNormal (a, _, _) | Delta (a, _, _) | PoissonLog a | NegativeBinomialLog (a, _)
        | LkjCholesky (_, a) | Wishart (_, a) | InverseWishart (_, a) | Glm (_, a, _, _) | CategoricalLogitGlm (a, _, _) -> a.Dtype
        | Mixture (_, c :: _) -> dtype c
        | Mixture (w, []) -> w.Dtype
        | ImproperUniform _ -> Float64
        | Independent (b, _) | Expand (b, _) | Masked (b, _) | Restricted (b, _) | Truncated (b, _, _) -> dtype b

    // ---- support ------------------------------------------------------------------------------

    /// The set the values lie in.
    let rec support (d: Distribution) : Constraint =
        match d with
        | Normal _ | Cauchy _ | StudentT _ | Laplace _ | Logistic _ -> Constraint.Real
        | HalfNormal _ | HalfCauchy _ | LogNormal _ | Exponential _ | Gamma _ | InverseGamma _ -> Constraint.Positive
        | Beta _ -> Constraint.UnitInterval
        // element-wise, and re-derived at each evaluation: the bounds may be batched or other sites' values
        | Uniform (lo, hi) -> Constraint.Between (lo, hi)
        | BernoulliLogits _ | BernoulliProbs _ -> Constraint.Boolean
        | BinomialLogits (n, _) | BinomialProbs (n, _) -> Constraint.IntegerInterval (0, int (Tensor.toArray n |> Array.max))
        | CategoricalLogits l | CategoricalProbs l -> Constraint.IntegerInterval (0, l.Shape.[l.Rank - 1] - 1)
        | OrderedLogistic (_, c) -> Constraint.IntegerInterval (0, c.Shape.[c.Rank - 1])
        | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _ -> Constraint.NonNegativeInteger
        | Dirichlet _ -> Constraint.Simplex
        | MultivariateNormal _ | LowRankMultivariateNormal _ -> Constraint.RealVector
        | Delta _ -> Constraint.Real
        | Mixture (_, c :: _) -> support c
        | Mixture (_, []) -> Constraint.Real
        | Independent (b, _) | Expand (b, _) | Masked (b, _) -> support b
        | ImproperUniform (c, _) | Restricted (_, c) -> c
        | PoissonLog _ | NegativeBinomialLog _ -> Constraint.NonNegativeInteger
        | LkjCholesky _ -> Constraint.CorrCholesky
        | Wishart _ | InverseWishart _ -> Constraint.PositiveDefinite
        | Glm (GlmFamily.BernoulliLogit, _, _, _) -> Constraint.Boolean
        | Glm (GlmFamily.PoissonLog, _, _, _) -> Constraint.NonNegativeInteger
        | CategoricalLogitGlm (_, _, beta) -> Constraint.IntegerInterval (0, beta.Shape.[1] - 1)
        | Truncated (b, lo, hi) ->
            // a positive base's lower end is 0 when none is given
            let lo = match lo, support b with
                     | None, Constraint.Positive -> Some (Tensor.zeros [||] |> Tensor.cast (dtype b))
                     | lo, _ -> lo
            match lo, hi with
            | Some l, Some h -> Constraint.Between (l, h)
            | Some l, None -> Constraint.LowerBound l
            | None, Some h -> Constraint.UpperBound h
            | None, None -> support b

    /// Whether rsample gives draws that are differentiable in the parameters.
    /// Gamma, InverseGamma, Beta and Dirichlet do not (their rejection samplers have no
    /// reparameterization here); the ELBOs add score-function (REINFORCE) terms for such guide sites.
    /// StudentT reparameterizes its location and scale but not its degrees of freedom: the ELBOs add a
    /// score-function term for the degrees of freedom (see scoreLogProb).
    let rec hasRsample (d: Distribution) =
        match d with
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _
        | Exponential _ | Uniform _ | MultivariateNormal _ | LowRankMultivariateNormal _ | Delta _ -> true
        | Independent (b, _) | Expand (b, _) | Masked (b, _) -> hasRsample b
        | Gamma _ | InverseGamma _ | Beta _ | BernoulliLogits _ | BernoulliProbs _ | BinomialLogits _ | BinomialProbs _
        | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _
        | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Dirichlet _ | Mixture _ | ImproperUniform _ | Restricted _ | Truncated _ | PoissonLog _ | NegativeBinomialLog _ | LkjCholesky _
        | Wishart _ | InverseWishart _ -> false
        | Glm _ | CategoricalLogitGlm _ -> false

    /// Whether draws can be made (Dist.sample): false for improper and restricted (unnormalized) priors;
    /// such latent sites get a feasible value where a model is only probed for its sites (Traced.probe).
    let rec canSample (d: Distribution) =
        match d with
        | ImproperUniform _ | Restricted _ -> false
        | Independent (b, _) | Expand (b, _) | Masked (b, _) | Truncated (b, _, _) -> canSample b
        | Mixture (_, cs) -> cs |> List.forall canSample
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _
        | Exponential _ | Gamma _ | InverseGamma _ | Beta _ | Uniform _ | BernoulliLogits _ | BernoulliProbs _
        | BinomialLogits _ | BinomialProbs _ | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _
        | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Dirichlet _ | MultivariateNormal _
        | LowRankMultivariateNormal _ | Delta _ | PoissonLog _ | NegativeBinomialLog _ | Wishart _ | InverseWishart _
        | LkjCholesky _ | Glm _ | CategoricalLogitGlm _ -> true

    // ---- log-density --------------------------------------------------------------------------

    let private negInf (like: Tensor) = Tensor.fullLike like Double.NegativeInfinity
    /// Mixtures of at most this many components take the log-sum-exp over their components element-wise
    /// (Tensor.logsumexpOf: about 4K passes over the batch); larger ones stack the components' log densities.
    [<Literal>]
    let private MixtureTermsLimit = 8

    /// log p where the condition holds, -inf elsewhere (values outside the support).
    let private within (ok: Tensor) (lp: Tensor) = Tensor.where ok lp (negInf lp)
    let private asFloat (dt: Dtype) (x: Tensor) = if x.Dtype = dt then x else Tensor.cast dt x
    let private lbeta (a: Tensor) (b: Tensor) = Tensor.lgamma a + Tensor.lgamma b - Tensor.lgamma (a + b)

    /// x·log y with 0·log y = 0 where x = 0 (also for log y = −∞), given log y: the limit, and a finite
    /// gradient (the log is replaced by 0 where x = 0 before the product).
    let internal xlogy (x: Tensor) (logy: Tensor) =
        let zero = Tensor.eqScalar x 0.0
        let shape = Shape.broadcast "xlogy" zero.Shape logy.Shape
        x * Tensor.where (Tensor.broadcastTo shape zero) (Tensor.zeros shape |> Tensor.cast logy.Dtype) (Tensor.broadcastTo shape logy)

    /// log(eᵃ + eᵇ) element-wise, finite when one side is −∞.
    let internal logAddExp (a: Tensor) (b: Tensor) =
        Tensor.logsumexpOf [ a; b ]

    /// lgamma(φ + k) − lgamma(φ) without the cancellation of the plain difference for large φ (its
    /// error is 0.18 at φ = 1e14): Stirling's series with three correction terms above φ = 100.
    let internal lgammaShift (phi: Tensor) (k: Tensor) =
        let corr (x: Tensor) =
            let r = 1.0 / x
            let r2 = r * r
            r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0)))
        let stirling = (phi - 0.5) * Tensor.log1p (k / phi) + k * Tensor.log (phi + k) - k + corr (phi + k) - corr phi
        let direct = Tensor.lgamma (phi + k) - Tensor.lgamma phi
        let big = Tensor.gtScalar phi 100.0
        let shape = Shape.broadcast "lgammaShift" stirling.Shape big.Shape
        Tensor.where (Tensor.broadcastTo shape big) (Tensor.broadcastTo shape stirling) (Tensor.broadcastTo shape direct)

    let private normalLp (loc: Tensor) (scale: Tensor) (x: Tensor) =
        let z = (x - loc) / scale
        -0.5 * z * z - Tensor.log scale - 0.5 * log2Pi

    let private poissonLp (rate: Tensor) (k: Tensor) =
        // k·log λ with 0·log 0 = 0
        xlogy k (Tensor.log rate) - rate - Tensor.lgamma (k + 1.0)

    /// log P(k = 0) of NegativeBinomial(μ, φ): φ·log(φ/(φ+μ)) = −φ·log1p(μ/φ), exact for large φ.
    let private nbLogP0 (mu: Tensor) (phi: Tensor) = -(phi * Tensor.log1p (mu / phi))

    let private nbLp (mu: Tensor) (phi: Tensor) (k: Tensor) =
        let kTerm = xlogy k (Tensor.log mu - Tensor.log (phi + mu))
        lgammaShift phi k - Tensor.lgamma (k + 1.0) + nbLogP0 mu phi + kTerm

    /// One-hot of integer-valued x (any float or int dtype) over k classes, as floats.
    let private oneHot (dt: Dtype) (k: int) (x: Tensor) =
        Tensor.eq (Tensor.unsqueeze -1 (asFloat Float64 x)) (Tensor.arange k) |> Tensor.cast dt

    /// log P(y = k) of OrderedLogistic over the last axis, in log space: the first class is log σ(c₀ − η),
    /// the last log σ(η − c_last), a middle one log(σ(b) − σ(a)) = log σ(b) + log σ(−a) + log(−expm1(a − b))
    /// (a < b the neighbouring cutpoints minus η), so no tail is lost to 1 − σ or to a difference of sigmoids.
    let private orderedLogProbs (eta: Tensor) (cut: Tensor) =
        let k1 = cut.Shape.[cut.Rank - 1]
        let d = cut - Tensor.unsqueeze -1 eta
        let d = Tensor.broadcastTo (Array.append (Shape.broadcast "OrderedLogistic" eta.Shape (lastAxisDropped cut)) [| k1 |]) d
        let first = Tensor.logSigmoid (Tensor.narrow -1 0 1 d)
        let last = Tensor.logSigmoid (-(Tensor.narrow -1 (k1 - 1) 1 d))
        if k1 = 1 then Tensor.concat -1 [ first; last ]
        else
            let a = Tensor.narrow -1 0 (k1 - 1) d
            let b = Tensor.narrow -1 1 (k1 - 1) d
            let mid = Tensor.logSigmoid b + Tensor.logSigmoid (-a) + Tensor.log (-(Tensor.expm1 (a - b)))
            Tensor.concat -1 [ first; mid; last ]

    /// P(y = k) of OrderedLogistic (for class probabilities, sampling and the exported predictive mean):
    /// in probability space an absolute error of one ulp is harmless, so plain sigmoids serve (the ops
    /// every ONNX runtime has); the top class is σ(η − c), not 1 − σ(c − η). Log densities use orderedLogProbs.
    let private orderedProbs (eta: Tensor) (cut: Tensor) =
        let k1 = cut.Shape.[cut.Rank - 1]
        let d = cut - Tensor.unsqueeze -1 eta
        let d = Tensor.broadcastTo (Array.append (Shape.broadcast "OrderedLogistic" eta.Shape (lastAxisDropped cut)) [| k1 |]) d
        let first = Tensor.sigmoid (Tensor.narrow -1 0 1 d)
        let last = Tensor.sigmoid (-(Tensor.narrow -1 (k1 - 1) 1 d))
        if k1 = 1 then Tensor.concat -1 [ first; last ]
        else
            let cum = Tensor.sigmoid d
            Tensor.concat -1 [ first; Tensor.narrow -1 1 (k1 - 1) cum - Tensor.narrow -1 0 (k1 - 1) cum; last ]

    /// The entry of log-probabilities lp (last axis) at integer label x; labels outside 0..K−1 read 0
    /// (callers mask them to −∞). A −∞ entry at another label does not leak in (no 0·(−∞)).
    let private pick (lp: Tensor) (x: Tensor) =
        let k = lp.Shape.[lp.Rank - 1]
        let hit = Tensor.eq (Tensor.unsqueeze -1 (asFloat Float64 x)) (Tensor.arange k)
        let shape = Shape.broadcast "pick" hit.Shape lp.Shape
        Tensor.sumAxes [| -1 |] false (Tensor.where (Tensor.broadcastTo shape hit) (Tensor.broadcastTo shape lp) (Tensor.zeros shape |> Tensor.cast lp.Dtype))

    /// A GLM's rows as the element-wise family over η = x·β + α (batch shape [n]): the unfused form, for
    /// draws, moments and values with sample axes.
    let private glmRows (family: GlmFamily) (x: Tensor) (alpha: Tensor) (beta: Tensor) =
        let eta = Tensor.matmul x beta + alpha
        match family with
        | GlmFamily.BernoulliLogit -> BernoulliLogits eta
        | GlmFamily.PoissonLog -> PoissonLog eta

    /// A categorical-logit GLM's rows as CategoricalLogits of η = x·β + α (batch shape [n]): the unfused form,
    /// for draws, moments and values with sample axes.
    let private categoricalGlmRows (x: Tensor) (alpha: Tensor) (beta: Tensor) = CategoricalLogits (Tensor.matmul x beta + alpha)

    /// Whether each value lies in the support of the distribution: a bool mask, one entry per value
    /// (per event for vector and matrix families). Discrete families check integrality and range
    /// element-wise (a Binomial against its own total count), Uniform its own bounds (closed).
    let rec inSupport (d: Distribution) (x: Tensor) : Tensor =
        let xf = asFloat Float64 x
        let isInt = Tensor.eq xf (Tensor.cast Float64 (Tensor.cast Int32 xf))
        let allTrue (shape: int[]) = Tensor.geScalar (Tensor.zeros shape) 0.0
        let both (a: Tensor) (b: Tensor) =
            let shape = Shape.broadcast "inSupport" a.Shape b.Shape
            let a = Tensor.broadcastTo shape a
            Tensor.where a (Tensor.broadcastTo shape b) a
        match d with
        | BinomialLogits (n, _) | BinomialProbs (n, _) ->
            both (both (Tensor.geScalar xf 0.0) (Tensor.le xf (asFloat Float64 n))) isInt
        | Uniform (lo, hi) -> both (Tensor.ge x lo) (Tensor.le x hi)
        | HalfNormal _ | HalfCauchy _ | Exponential _ -> both (Tensor.geScalar x 0.0) (Tensor.ltScalar x Double.PositiveInfinity)
        | Independent (b, k) ->
            let ok = inSupport b x
            if k = 0 then ok else Tensor.gtScalar (Tensor.minAxes (Array.init k (fun i -> -(i + 1))) false (Tensor.cast Float64 ok)) 0.5
        | Expand (b, _) -> inSupport b x
        | Masked (b, m) ->
            // masked-out values are not scored, so any value is accepted there
            let ok = inSupport b x
            let shape = Shape.broadcast "inSupport" ok.Shape m.Shape
            let ok = Tensor.broadcastTo shape ok
            Tensor.where (Tensor.broadcastTo shape m) ok (allTrue shape)
        | Mixture (_, cs) ->
            cs |> List.map (fun c -> Tensor.cast Float64 (inSupport c x)) |> List.reduce Tensor.maximum |> fun t -> Tensor.gtScalar t 0.5
        | Delta (_, _, k) -> allTrue x.Shape.[.. x.Rank - k - 1]
        | Glm _ | CategoricalLogitGlm _ -> Tensor.gtScalar (Tensor.minAxes [| -1 |] false (Tensor.cast Float64 (Constraint.check (support d) x))) 0.5
        | ImproperUniform _ | Restricted _ | Truncated _ | PoissonLog _ | NegativeBinomialLog _ | LkjCholesky _
        | Normal _ | Cauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _ | Gamma _ | InverseGamma _ | Beta _
        | BernoulliLogits _ | BernoulliProbs _ | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _
        | ZeroInflatedPoisson _ | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Dirichlet _ | MultivariateNormal _
        | LowRankMultivariateNormal _ | Wishart _ | InverseWishart _ -> Constraint.check (support d) x

    /// log Γ((ν + 1)/2) − log Γ(ν/2) − ½ log(νπ), the Student-t's log normaliser. For ν ≥ 100 the lgamma
    /// difference is the asymptotic series ½ log a − 1/(8a) + 1/(192a³) − 1/(640a⁵) + 17/(14336a⁷) (a = ν/2,
    /// next term below 1e-15 there): the two lgamma values cancel, losing ~1e-5 at ν = 1e10. Each branch
    /// sees only arguments where it is finite.
    let private studentTLogNorm (df: Tensor) =
        let a = 0.5 * df
        let large = Tensor.geScalar a 50.0
        let aL = Tensor.where large a (Tensor.fullLike a 50.0)
        let aS = Tensor.where large (Tensor.fullLike a 1.0) a
        let inv = 1.0 / aL
        let inv2 = inv * inv
        let series = 0.5 * Tensor.log aL - inv * (0.125 - inv2 * (1.0 / 192.0 - inv2 * (1.0 / 640.0 - inv2 * (17.0 / 14336.0))))
        let direct = Tensor.lgamma (aS + 0.5) - Tensor.lgamma aS
        Tensor.where large series direct - 0.5 * Tensor.log (df * Math.PI)

    /// log Γ_p(a), the multivariate log-gamma function: p(p−1)/4·log π + Σ_{j<p} log Γ(a − j/2).
    let private mvlgamma (a: Tensor) (p: int) =
        let terms = List.init p (fun j -> Tensor.lgamma (a - 0.5 * float j)) |> List.reduce (+)
        terms + float p * float (p - 1) / 4.0 * log Math.PI

    /// log(1 − eᵃ) for a ≤ 0, accurate on both sides of −log 2 (Mächler's log1mexp).
    let internal log1mexp (a: Tensor) =
        let near = Tensor.gtScalar a (-(log 2.0))
        // each branch sees an argument where it is finite, so that the unused one has a finite gradient
        let aNear = Tensor.where near a (Tensor.fullLike a -1.0)
        let aFar = Tensor.where near (Tensor.fullLike a -1.0) a
        Tensor.where near (Tensor.log (-(Tensor.expm1 aNear))) (Tensor.log1p (-(Tensor.exp aFar)))

    /// log Φ(z), finite down to z ≈ −1e154: log of the CDF above −30, below it the asymptotic series
    /// log Φ(z) = −z²/2 − log(−z) − ½ log 2π + log(1 − 1/z² + 3/z⁴ − 15/z⁶ + 105/z⁸) (relative error
    /// under 1e−12 there), each branch fed only arguments where it is finite.
    let normalLogCdf (z: Tensor) : Tensor =
        let far = Tensor.ltScalar z -30.0
        let zNear = Tensor.where far (Tensor.fullLike z -30.0) z
        let zFar = Tensor.where far z (Tensor.fullLike z -30.0)
        let r = 1.0 / (zFar * zFar)
        let series = 1.0 - r * (1.0 - r * (3.0 - r * (15.0 - r * 105.0)))
        let asym = -0.5 * zFar * zFar - Tensor.log (-zFar) - 0.5 * log2Pi + Tensor.log series
        Tensor.where far asym (Tensor.log (Tensor.normalCdf zNear))

    /// The element-wise bases with a CDF here (Dist.truncated), by name: the one list that `truncated`
    /// checks and its message names.
    let private cdfBases =
        [ "Normal"; "HalfNormal"; "Cauchy"; "HalfCauchy"; "StudentT"; "Logistic"; "Laplace"; "Exponential"; "Gamma"; "InverseGamma"; "LogNormal" ]

    /// Raises, naming the bases that can be truncated, unless d is one of them.
    let private requireCdf (d: Distribution) =
        if not (List.contains (name d) cdfBases) then
            let names = String.Join(", ", cdfBases.[.. cdfBases.Length - 2]) + " or " + List.last cdfBases
            raise (NotSupportedException(sprintf "Dist.truncated: %s has no CDF here; truncate a %s, or use Dist.restrict for a constrained site (Stan's <lower=..> without the CDF term)." (name d) names))

    /// log F(x) and log(1 − F(x)) of an element-wise base, stable in both tails.
    let internal logCdfs (d: Distribution) (x: Tensor) : Tensor * Tensor =
        requireCdf d
        // the Cauchy tail beyond |z|, atan(1/|z|)/π, as ½ − atan|z|/π where |z| ≤ 1 (no cancellation either
        // side); each branch fed only arguments where it is finite
        let cauchyTail (a: Tensor) =
            let small = Tensor.leScalar a 1.0
            let aS = Tensor.where small a (Tensor.zerosLike a)
            let aL = Tensor.where small (Tensor.fullLike a 2.0) a
            Tensor.where small (0.5 - Tensor.atan aS / Math.PI) (Tensor.atan (1.0 / aL) / Math.PI)
        match d with
        | Normal (loc, scale) ->
            let z = (x - loc) / scale
            normalLogCdf z, normalLogCdf (-z)
        | HalfNormal scale ->
            // F = 2Φ(z) − 1 = 1 − 2Φ(−z) for z ≥ 0
            let z = Tensor.relu x / scale
            let logSf = log 2.0 + normalLogCdf (-z)
            log1mexp (Tensor.minimum logSf (Tensor.zerosLike logSf)), logSf
        | Logistic (loc, scale) ->
            let z = (x - loc) / scale
            Tensor.logSigmoid z, Tensor.logSigmoid (-z)
        | Cauchy (loc, scale) ->
            let z = (x - loc) / scale
            let logTail = Tensor.log (cauchyTail (Tensor.abs z))
            let logBody = Tensor.log1p (-(Tensor.exp logTail))
            let neg = Tensor.ltScalar z 0.0
            Tensor.where neg logTail logBody, Tensor.where neg logBody logTail
        | HalfCauchy scale ->
            // 1 − F = 2·(the Cauchy tail beyond z) for z ≥ 0
            let logSf = log 2.0 + Tensor.log (cauchyTail (Tensor.relu x / scale))
            log1mexp (Tensor.minimum logSf (Tensor.zerosLike logSf)), logSf
        | Laplace (loc, scale) ->
            // F = ½e^z (z < 0), 1 − ½e^(−z) (z ≥ 0); each side from the tail it is small in
            let z = (x - loc) / scale
            let lowTail = log 0.5 - Tensor.abs z
            let neg = Tensor.ltScalar z 0.0
            Tensor.where neg lowTail (log1mexp lowTail), Tensor.where neg (log1mexp lowTail) lowTail
        | Exponential rate ->
            let a = -(rate * Tensor.relu x)
            log1mexp (Tensor.minimum a (Tensor.fullLike a -1e-300)), a
        | StudentT (df, loc, scale) ->
            let z = (x - loc) / scale
            Tensor.studentTLogCdf z df, Tensor.studentTLogCdf (-z) df
        | Gamma (shape, rate) ->
            let u = rate * x
            Tensor.gammaLogP u shape, Tensor.gammaLogQ u shape
        | InverseGamma (shape, rate) ->
            // F(x) = Q(shape, rate/x), 1 − F(x) = P(shape, rate/x); below the support (x ≤ 0) F = 0, fed a safe 1
            let pos = Tensor.gtScalar x 0.0
            let u = rate / Tensor.where pos x (Tensor.fullLike x 1.0)
            Tensor.where pos (Tensor.gammaLogQ u shape) (Tensor.fullLike u -infinity), Tensor.where pos (Tensor.gammaLogP u shape) (Tensor.zerosLike u)
        | LogNormal (loc, scale) ->
            // F(x) = Φ((log x − loc)/scale); x ≤ 0 as above
            let pos = Tensor.gtScalar x 0.0
            let z = (Tensor.log (Tensor.where pos x (Tensor.fullLike x 1.0)) - loc) / scale
            Tensor.where pos (normalLogCdf z) (Tensor.fullLike z -infinity), Tensor.where pos (normalLogCdf (-z)) (Tensor.zerosLike z)
        | _ -> invalidOp (sprintf "logCdfs: %s is listed as having a CDF but has none." (name d))

    let private checkValueShape (d: Distribution) (x: Tensor) =
        let ev = eventShape d
        let bs = batchShapeOf d
        let full = Array.append bs ev
        try
            Shape.broadcast "logProb" x.Shape full |> ignore
        with :? ArgumentException ->
            invalidArg "x" (sprintf "%s.logProb: a value of shape %s does not broadcast with batch shape %s and event shape %s."
                                (name d) (Shape.format x.Shape) (Shape.format bs) (Shape.format ev))
        if ev.Length > 0 && (x.Rank < ev.Length || not (Shape.equal x.Shape.[x.Rank - ev.Length ..] ev)) then
            invalidArg "x" (sprintf "%s.logProb: a value of shape %s must end with the event shape %s." (name d) (Shape.format x.Shape) (Shape.format ev))

    /// The log-density (or log-mass) of x, one value per batch element (and per sample row of x).
    let rec logProb (d: Distribution) (x: Tensor) : Tensor =
        checkValueShape d x
        let x = asFloat (dtype d) x
        match d with
        | Normal (loc, scale) -> normalLp loc scale x
        | HalfNormal scale -> within (Tensor.geScalar x 0.0) (log 2.0 + normalLp (Tensor.zerosLike scale) scale x)
        | Cauchy (loc, scale) ->
            let z = (x - loc) / scale
            -(log Math.PI) - Tensor.log scale - Tensor.log1p (z * z)
        | HalfCauchy scale ->
            let z = x / scale
            within (Tensor.geScalar x 0.0) (log 2.0 - log Math.PI - Tensor.log scale - Tensor.log1p (z * z))
        | StudentT (df, loc, scale) ->
            let z = (x - loc) / scale
            studentTLogNorm df - Tensor.log scale - (df + 1.0) * 0.5 * Tensor.log1p (z * z / df)
        | Laplace (loc, scale) -> -(Tensor.log (2.0 * scale)) - Tensor.abs (x - loc) / scale
        | Logistic (loc, scale) ->
            let z = (x - loc) / scale
            -z - Tensor.log scale - 2.0 * Tensor.softplus (-z)
        | LogNormal (loc, scale) ->
            let pos = Tensor.gtScalar x 0.0
            let safe = Tensor.where pos x (Tensor.onesLike x)
            within pos (normalLp loc scale (Tensor.log safe) - Tensor.log safe)
        | Exponential rate -> within (Tensor.geScalar x 0.0) (Tensor.log rate - rate * x)
        | Gamma (a, b) ->
            let pos = Tensor.gtScalar x 0.0
            let safe = Tensor.where pos x (Tensor.onesLike x)
            within pos (a * Tensor.log b + (a - 1.0) * Tensor.log safe - b * safe - Tensor.lgamma a)
        | InverseGamma (a, b) ->
            let pos = Tensor.gtScalar x 0.0
            let safe = Tensor.where pos x (Tensor.onesLike x)
            within pos (a * Tensor.log b - Tensor.lgamma a - (a + 1.0) * Tensor.log safe - b / safe)
        | Beta (a, b) ->
            let inside = Tensor.where (Tensor.gtScalar x 0.0) (Tensor.ltScalar x 1.0) (Tensor.gtScalar x 0.0)
            let safe = Tensor.where inside x (Tensor.fullLike x 0.5)
            within inside ((a - 1.0) * Tensor.log safe + (b - 1.0) * Tensor.log1p (-safe) - lbeta a b)
        | Uniform (lo, hi) ->
            let inside = Tensor.where (Tensor.ge x lo) (Tensor.le x hi) (Tensor.ge x lo)
            within inside (-(Tensor.log (hi - lo)) + Tensor.zerosLike x)
        // discrete families: values outside the support (not an integer, out of range) have log p = −∞
        | BernoulliLogits l ->
            // log σ(l) at x = 1 and log σ(−l) at x = 0, as −softplus((1 − 2x)·l): one softplus per element
            // (multiplying by ±1 is exact, so the value is the same as choosing between the two)
            // (x outside {0, 1} or NaN reads as 0 there, so that its −∞ stays clear of NaN in the gradient)
            let inside = inSupport d x
            let xf = Tensor.cast l.Dtype x
            within inside (-(Tensor.softplus ((1.0 - 2.0 * Tensor.where inside xf (Tensor.zerosLike xf)) * l)))
        | BernoulliProbs p ->
            within (inSupport d x)
                (Tensor.where (Tensor.eqScalar x 1.0) (Tensor.log p + Tensor.zerosLike x) (Tensor.log1p (-p) + Tensor.zerosLike x))
        | BinomialLogits (n, l) ->
            let safe = Tensor.where (inSupport d x) x (Tensor.zerosLike x)
            within (inSupport d x)
                (Tensor.lgamma (n + 1.0) - Tensor.lgamma (safe + 1.0) - Tensor.lgamma (n - safe + 1.0)
                 + xlogy safe (Tensor.logSigmoid l) + xlogy (n - safe) (Tensor.logSigmoid (-l)))
        | BinomialProbs (n, p) ->
            let safe = Tensor.where (inSupport d x) x (Tensor.zerosLike x)
            let rest = n - safe
            within (inSupport d x)
                (Tensor.lgamma (n + 1.0) - Tensor.lgamma (safe + 1.0) - Tensor.lgamma (rest + 1.0) + xlogy safe (Tensor.log p) + xlogy rest (Tensor.log1p (-p)))
        | CategoricalLogits l -> within (inSupport d x) (pick (Tensor.logSoftmax -1 l) x)
        | CategoricalProbs p -> within (inSupport d x) (pick (Tensor.log p) x)
        | Poisson rate -> within (inSupport d x) (poissonLp rate x)
        | NegativeBinomial (mu, phi) -> within (inSupport d x) (nbLp mu phi x)
        | ZeroInflatedPoisson (gate, rate) ->
            // log(g + (1 − g)e^(−λ)) as a log-sum-exp: −λ, not −∞, for g = 0 and large λ
            let zero = logAddExp (Tensor.log gate) (Tensor.log1p (-gate) - rate)
            within (inSupport d x)
                (Tensor.where (Tensor.eqScalar x 0.0) (zero + Tensor.zerosLike x) (Tensor.log1p (-gate) + poissonLp rate x))
        | ZeroInflatedNegativeBinomial (gate, mu, phi) ->
            let zero = logAddExp (Tensor.log gate) (Tensor.log1p (-gate) + nbLogP0 mu phi)
            within (inSupport d x)
                (Tensor.where (Tensor.eqScalar x 0.0) (zero + Tensor.zerosLike x) (Tensor.log1p (-gate) + nbLp mu phi x))
        | OrderedLogistic (eta, cut) -> within (inSupport d x) (pick (orderedLogProbs eta cut) x)
        | Dirichlet c ->
            // (α − 1)·log x with 0·log 0 = 0 (α = 1 at a boundary point); off the simplex: −∞
            let inside = inSupport d x
            let safe = Tensor.where (Tensor.unsqueeze -1 inside) x (Tensor.onesLike x)
            within inside
                (Tensor.sumAxes [| -1 |] false (xlogy (c - 1.0) (Tensor.log safe))
                 + Tensor.lgamma (Tensor.sumAxes [| -1 |] false c) - Tensor.sumAxes [| -1 |] false (Tensor.lgamma c))
        | MultivariateNormal (loc, l) ->
            let n = l.Shape.[l.Rank - 1]
            let diff = x - loc
            let batch = Shape.broadcast "MultivariateNormal" (lastAxisDropped diff) (lastTwoDropped l)
            let lB = Tensor.broadcastTo (Array.append batch [| n; n |]) l
            let dB = Tensor.broadcastTo (Array.append batch [| n |]) diff |> Tensor.unsqueeze -1
            let z = Tensor.triangularSolve true false lB dB |> Tensor.squeeze -1
            -0.5 * Tensor.sumAxes [| -1 |] false (z * z) - Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal l)) - 0.5 * float n * log2Pi
        | LowRankMultivariateNormal (loc, w, diag) ->
            // Woodbury and the matrix determinant lemma through the capacitance C = I + Wᵀ D⁻¹ W.
            let n = diag.Shape.[diag.Rank - 1]
            let r = w.Shape.[w.Rank - 1]
            let diff = x - loc
            let wtDinv = Tensor.transpose (w / Tensor.unsqueeze -1 diag)
            let cap = Tensor.eye r + Tensor.matmul wtDinv w
            let lc = Tensor.cholesky cap
            let u = Tensor.matmul wtDinv (Tensor.unsqueeze -1 diff)
            let batch = Shape.broadcast "LowRankMultivariateNormal" (lastTwoDropped lc) (lastTwoDropped u)
            let y = Tensor.triangularSolve true false (Tensor.broadcastTo (Array.append batch [| r; r |]) lc) (Tensor.broadcastTo (Array.append batch [| r; 1 |]) u)
            let mahal = Tensor.sumAxes [| -1 |] false (diff * diff / diag) - Tensor.sumAxes [| -2; -1 |] false (y * y)
            let logDet = 2.0 * Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal lc)) + Tensor.sumAxes [| -1 |] false (Tensor.log diag)
            -0.5 * (mahal + logDet + float n * log2Pi)
        | Delta (v, ld, k) ->
            let axes = Array.init k (fun i -> -(i + 1))
            let same = Tensor.eq x v
            let all = if k = 0 then same else Tensor.gtScalar (Tensor.minAxes axes false (Tensor.cast Float64 same)) 0.5
            within all (ld + Tensor.zerosLike (if k = 0 then x else Tensor.sumAxes axes false x))
        | Mixture (w, cs) ->
            let lw = Tensor.logSoftmax -1 w
            if cs.Length <= MixtureTermsLimit then
                // element-wise over the components: no [batch, K] tensor whose short last axis the
                // broadcasts and reductions would walk element by element
                cs |> List.mapi (fun k c -> logProb c x + Tensor.select -1 k lw) |> Tensor.logsumexpOf
            else
                let lps = cs |> List.map (fun c -> logProb c x) |> Tensor.stack -1
                Tensor.logsumexpAxes [| -1 |] false (lps + lw)
        | Independent (b, k) ->
            let lp = logProb b x
            Tensor.sumAxes (Array.init k (fun i -> -(i + 1))) false lp
        | Expand (b, s) ->
            let lp = logProb b x
            // axes of x in front of the expanded batch shape are sample axes
            let sampleDims = x.Shape.[.. x.Rank - (eventShape b).Length - s.Length - 1]
            Tensor.broadcastTo (Array.append sampleDims s) lp
        | Masked (b, m) ->
            let lp = logProb b x
            Tensor.where m lp (Tensor.zerosLike lp)
        | ImproperUniform (c, _) ->
            let ok = Constraint.check c x
            within ok (Tensor.zeros ok.Shape |> Tensor.cast (dtype d))
        | Restricted (b, c) -> within (Constraint.check c x) (logProb b x)
        | Truncated (b, lo, hi) ->
            // log Z = log(F(hi) − F(lo)): from the lower tail when the interval lies below the median
            // (F(hi) ≤ ½), else from the upper tail, so that neither difference cancels
            let logZ =
                match lo, hi with
                | None, None -> Tensor.zeros [||]
                | Some l, None -> snd (logCdfs b l)
                | None, Some h -> fst (logCdfs b h)
                | Some l, Some h ->
                    let lfL, lsL = logCdfs b l
                    let lfH, lsH = logCdfs b h
                    let below = Tensor.ltScalar lfH (log 0.5)
                    let fromLower = lfH + log1mexp (Tensor.minimum (lfL - lfH) (Tensor.fullLike lfH -1e-300))
                    let fromUpper = lsL + log1mexp (Tensor.minimum (lsH - lsL) (Tensor.fullLike lsL -1e-300))
                    Tensor.where below fromLower fromUpper
            let inside =
                let sup = support d
                match sup with
                | Constraint.Between (l, h) ->
                    let shape = Shape.broadcast "Truncated" x.Shape (Shape.broadcast "Truncated" l.Shape h.Shape)
                    let above = Tensor.broadcastTo shape (Tensor.ge x l)
                    Tensor.where above (Tensor.broadcastTo shape (Tensor.le x h)) above
                | Constraint.LowerBound l -> Tensor.broadcastTo (Shape.broadcast "Truncated" x.Shape l.Shape) (Tensor.ge x l)
                | Constraint.UpperBound h -> Tensor.broadcastTo (Shape.broadcast "Truncated" x.Shape h.Shape) (Tensor.le x h)
                | _ -> inSupport b x
            within inside (logProb b x - logZ)
        | PoissonLog eta ->
            let inside = inSupport d x
            let k = Tensor.where inside x (Tensor.zerosLike x)
            within inside (k * eta - Tensor.exp eta - Tensor.lgamma (k + 1.0))
        | NegativeBinomialLog (eta, phi) ->
            // log μ/(φ+μ) = −softplus(log φ − η) and φ log(1 + μ/φ) = φ softplus(η − log φ): no exp(η) overflow
            let inside = inSupport d x
            let k = Tensor.where inside x (Tensor.zerosLike x)
            let logPhi = Tensor.log phi
            within inside
                (lgammaShift phi k - Tensor.lgamma (k + 1.0) - phi * Tensor.softplus (eta - logPhi) - k * Tensor.softplus (logPhi - eta))
        | LkjCholesky (k, eta) ->
            // Σ_{i=2..K} (K − i + 2η − 2) log L_ii (1-based i) minus the log normalizer (LKJ 2009, as NumPyro)
            let inside = inSupport d x
            let diag = Tensor.diagonal x
            let safe = Tensor.where (Tensor.unsqueeze -1 inside) diag (Tensor.onesLike diag)
            let logD = Tensor.log (Tensor.narrow -1 1 (k - 1) safe)
            let coef = Tensor.ofArray (Array.init (k - 1) (fun j -> float (k - (j + 1) - 3))) |> Tensor.cast eta.Dtype
            let unnorm = Tensor.sumAxes [| -1 |] false ((coef + 2.0 * Tensor.unsqueeze -1 eta) * logD)
            let dm1 = float (k - 1)
            let alpha = eta + 0.5 * dm1
            let logNorm = 0.5 * dm1 * log Math.PI + mvlgamma (alpha - 0.5) (k - 1) - dm1 * Tensor.lgamma alpha
            within inside (unnorm - logNorm)
        | Wishart (df, l) | InverseWishart (df, l) ->
            // through the value's Cholesky factor C (X = C Cᵀ; an identity stands in off the support, so the
            // factorization cannot fail): log|X| = 2 Σ log C_ii, tr(Σ⁻¹X) = ‖L⁻¹C‖², tr(ΨX⁻¹) = ‖C⁻¹L‖²
            let p = l.Shape.[l.Rank - 1]
            let inside = inSupport d x
            let eye = Tensor.eye p |> Tensor.cast x.Dtype
            let c = Tensor.cholesky (Tensor.where (Tensor.unsqueeze -1 (Tensor.unsqueeze -1 inside)) x eye)
            let logDetX = 2.0 * Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal c))
            let logDetS = 2.0 * Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal l))
            let half = 0.5 * df
            let logZ = half * (float p * log 2.0) + mvlgamma half p
            let frob (a: Tensor) (b: Tensor) = Tensor.sumAxes [| -2; -1 |] false (Tensor.square (Tensor.triangularSolve true false a b))
            match d with
            | Wishart _ -> within inside (0.5 * (df - float (p + 1)) * logDetX - 0.5 * frob l c - half * logDetS - logZ)
            | _ -> within inside (half * logDetS - 0.5 * (df + float (p + 1)) * logDetX - 0.5 * frob c l - logZ)
        | Glm (family, xm, alpha, beta) ->
            if x.Rank = 1 then
                // the support mask: graph ops over the data, so a compiled program rebound to new y stays exact
                let inside = Constraint.check (support d) x
                let fused = Tensor.glmLogLikelihood family xm alpha beta x inside
                match family with
                | GlmFamily.BernoulliLogit -> fused
                | GlmFamily.PoissonLog ->
                    // −Σ log y! depends on the data only (a compiled program computes it once per binding)
                    let k = Tensor.where inside x (Tensor.zerosLike x)
                    fused - Tensor.sum (Tensor.lgamma (k + 1.0))
            else
                // values with sample axes: row by row
                logProb (Independent (glmRows family xm alpha beta, 1)) x
        | CategoricalLogitGlm (xm, alpha, beta) ->
            if x.Rank = 1 then
                // the support mask and the labels as x's dtype (0 off the support, where the op does not read
                // them): graph ops over the data, so a compiled program rebound to new y stays exact
                let inside = Constraint.check (support d) x
                let labels = Tensor.cast xm.Dtype x
                Tensor.categoricalGlmLogLikelihood xm alpha beta (Tensor.where inside labels (Tensor.zerosLike labels)) inside
            else
                // values with sample axes: row by row
                logProb (Independent (categoricalGlmRows xm alpha beta, 1)) x

    // ---- sampling -----------------------------------------------------------------------------

    let private std (key: RngKey) (dt: Dtype) (shape: int[]) = Rng.normal key shape |> Tensor.cast dt
    let private unif (key: RngKey) (dt: Dtype) (shape: int[]) = Rng.uniform key shape |> Tensor.cast dt

    /// Draws of shape outShape @ eventShape, where outShape = sample shape @ batch shape; differentiable
    /// in the parameters for the reparameterizable families.
    /// The base's quantile at lower-tail probability p (1 − p = q, given separately for the upper tail).
    let private quantile (d: Distribution) (p: Tensor) (q: Tensor) : Tensor =
        let host (f: float -> float -> float) =
            let shape = Shape.broadcast "quantile" p.Shape q.Shape
            let pa = Tensor.toArray (Tensor.broadcastTo shape p)
            let qa = Tensor.toArray (Tensor.broadcastTo shape q)
            Tensor.create shape (Array.map2 f pa qa)
        // the same with the base's shape parameter (df, shape) as a third argument, element by element
        let hostWith (s: Tensor) (f: float -> float -> float -> float) =
            let shape = Shape.broadcast "quantile" (Shape.broadcast "quantile" p.Shape q.Shape) s.Shape
            let at (t: Tensor) = Tensor.toArray (Tensor.broadcastTo shape (Tensor.cast Float64 (Tensor.detach t)))
            let pa, qa, sa = at p, at q, at s
            Tensor.create shape (Array.init pa.Length (fun i -> f pa.[i] qa.[i] sa.[i]))
        let normalQuantile p q = if p < 0.5 then Special.normalIcdf p else -(Special.normalIcdf q)
        match d with
        | Normal (loc, scale) -> loc + scale * host normalQuantile
        | HalfNormal scale -> scale * host (fun _ q -> -(Special.normalIcdf (0.5 * q)))
        | Cauchy (loc, scale) -> loc + scale * host (fun p q -> if p < 0.5 then -1.0 / tan (Math.PI * p) else 1.0 / tan (Math.PI * q))
        | HalfCauchy scale -> scale * host (fun p q -> if p < 0.5 then tan (0.5 * Math.PI * p) else 1.0 / tan (0.5 * Math.PI * q))
        | Logistic (loc, scale) -> loc + scale * host (fun p q -> log p - log q)
        | Laplace (loc, scale) -> loc + scale * host (fun p q -> if p < 0.5 then log (2.0 * p) else -(log (2.0 * q)))
        | Exponential rate -> host (fun p q -> if p < 0.5 then -(Special.log1p (-p)) else -(log q)) / rate
        | StudentT (df, loc, scale) -> loc + scale * hostWith df Special.studentTQuantile
        | Gamma (shape, rate) -> hostWith shape Special.gammaQuantile / rate
        // X = rate/Y with Y ~ Gamma(shape, 1): X's lower tail is Y's upper one
        | InverseGamma (shape, rate) -> rate / hostWith shape (fun p q a -> Special.gammaQuantile q p a)
        | LogNormal (loc, scale) -> Tensor.exp (loc + scale * host normalQuantile)
        | _ -> requireCdf d; invalidOp (sprintf "quantile: %s has a CDF but no quantile." (name d))

    let rec private draw (key: RngKey) (outShape: int[]) (d: Distribution) : Tensor =
        let dt = dtype d
        let bcast (t: Tensor) = Tensor.broadcastTo outShape t
        match d with
        | Normal (loc, scale) -> loc + scale * std key dt outShape
        | HalfNormal scale -> scale * Tensor.abs (std key dt outShape)
        | Cauchy (loc, scale) ->
            let k1, k2 = Rng.split key
            loc + scale * std k1 dt outShape / std k2 dt outShape
        | HalfCauchy scale ->
            let k1, k2 = Rng.split key
            scale * Tensor.abs (std k1 dt outShape / std k2 dt outShape)
        | StudentT (df, loc, scale) ->
            let k1, k2 = Rng.split key
            let chi2 = 2.0 * Rng.gamma k2 (bcast (Tensor.detach df) * 0.5) |> Tensor.cast dt
            loc + scale * std k1 dt outShape / Tensor.sqrt (chi2 / Tensor.detach df)
        | Laplace (loc, scale) ->
            let u = unif key dt outShape - 0.5
            loc - scale * Tensor.sign u * Tensor.log1p (-2.0 * Tensor.abs u)
        | Logistic (loc, scale) ->
            let u = unif key dt outShape
            loc + scale * (Tensor.log u - Tensor.log1p (-u))
        | LogNormal (loc, scale) -> Tensor.exp (loc + scale * std key dt outShape)
        | Exponential rate -> -(Tensor.log (unif key dt outShape)) / rate
        | Gamma (a, b) -> Rng.gamma key (bcast (Tensor.detach a)) |> Tensor.cast dt |> fun g -> g / Tensor.detach b
        | InverseGamma (a, b) -> Tensor.detach b / (Rng.gamma key (bcast (Tensor.detach a)) |> Tensor.cast dt)
        | Beta (a, b) -> Rng.beta key (bcast (Tensor.detach a)) (bcast (Tensor.detach b)) |> Tensor.cast dt
        | Uniform (lo, hi) -> lo + (hi - lo) * unif key dt outShape
        | BernoulliLogits l -> Tensor.lt (unif key dt outShape) (Tensor.sigmoid (Tensor.detach l)) |> Tensor.cast dt
        | BernoulliProbs p -> Tensor.lt (unif key dt outShape) (Tensor.detach p) |> Tensor.cast dt
        | BinomialLogits (n, l) -> draw key outShape (BinomialProbs (n, Tensor.sigmoid l))
        | BinomialProbs (n, p) ->
            let nMax = int (Tensor.toArray n |> Array.fold max 0.0)
            let u = unif key dt (Array.append outShape [| nMax |])
            let idx = Tensor.arange nMax
            let active = Tensor.lt idx (Tensor.unsqueeze -1 (bcast (Tensor.detach n))) |> Tensor.cast dt
            let hit = Tensor.lt u (Tensor.unsqueeze -1 (bcast (Tensor.detach p))) |> Tensor.cast dt
            Tensor.sumAxes [| -1 |] false (hit * active)
        | CategoricalLogits l ->
            let k = l.Shape.[l.Rank - 1]
            Rng.categorical key (Tensor.broadcastTo (Array.append outShape [| k |]) (Tensor.detach l)) |> Tensor.cast dt
        | CategoricalProbs p -> draw key outShape (CategoricalLogits (Tensor.log p))
        | Poisson rate -> Rng.poisson key (bcast (Tensor.detach rate)) |> Tensor.cast dt
        | NegativeBinomial (mu, phi) ->
            let k1, k2 = Rng.split key
            let phi = bcast (Tensor.detach phi)
            let g = Rng.gamma k1 phi / phi |> Tensor.cast dt
            Rng.poisson k2 (Tensor.detach mu * g) |> Tensor.cast dt
        | ZeroInflatedPoisson (gate, rate) ->
            let k1, k2 = Rng.split key
            let counts = draw k2 outShape (Poisson rate)
            Tensor.where (Tensor.lt (unif k1 dt outShape) (Tensor.detach gate)) (Tensor.zerosLike counts) counts
        | ZeroInflatedNegativeBinomial (gate, mu, phi) ->
            let k1, k2 = Rng.split key
            let counts = draw k2 outShape (NegativeBinomial (mu, phi))
            Tensor.where (Tensor.lt (unif k1 dt outShape) (Tensor.detach gate)) (Tensor.zerosLike counts) counts
        | OrderedLogistic (eta, cut) -> draw key outShape (CategoricalProbs (orderedProbs (Tensor.detach eta) (Tensor.detach cut)))
        | Dirichlet c ->
            let k = c.Shape.[c.Rank - 1]
            let g = Rng.gamma key (Tensor.broadcastTo (Array.append outShape [| k |]) (Tensor.detach c)) |> Tensor.cast dt
            g / Tensor.sumAxes [| -1 |] true g
        | MultivariateNormal (loc, l) ->
            let n = l.Shape.[l.Rank - 1]
            let eps = std key dt (Array.append outShape [| n; 1 |])
            loc + Tensor.squeeze -1 (Tensor.matmul l eps)
        | LowRankMultivariateNormal (loc, w, diag) ->
            let k1, k2 = Rng.split key
            let n = diag.Shape.[diag.Rank - 1]
            let r = w.Shape.[w.Rank - 1]
            let er = std k1 dt (Array.append outShape [| r; 1 |])
            loc + Tensor.squeeze -1 (Tensor.matmul w er) + Tensor.sqrt diag * std k2 dt (Array.append outShape [| n |])
        | Delta (v, _, k) -> Tensor.broadcastTo (Array.append outShape v.Shape.[v.Rank - k ..]) v
        | Mixture (w, cs) ->
            let keys = Rng.splitN key (cs.Length + 1)
            let ev = eventShape d
            let draws = cs |> List.mapi (fun i c -> draw keys.[i + 1] outShape c) |> Tensor.stack outShape.Length
            let which = draw keys.[0] outShape (CategoricalLogits w)
            let oh = oneHot dt cs.Length which
            let oh = Tensor.reshape (Array.concat [ outShape; [| cs.Length |]; Array.create ev.Length 1 ]) oh
            Tensor.sumAxes [| outShape.Length |] false (draws * oh)
        | Independent (b, k) ->
            let bs = batchShapeOf b
            let moved = bs.[bs.Length - k ..]
            draw key (Array.append outShape moved) b
        | Expand (b, _) -> draw key outShape b
        | Masked (b, _) -> draw key outShape b
        | PoissonLog eta -> draw key outShape (Poisson (Tensor.exp eta))
        | NegativeBinomialLog (eta, phi) -> draw key outShape (NegativeBinomial (Tensor.exp eta, phi))
        | Glm (family, x, alpha, beta) -> draw key outShape (Independent (glmRows family x alpha beta, 1))
        | CategoricalLogitGlm (x, alpha, beta) -> draw key outShape (Independent (categoricalGlmRows x alpha beta, 1))
        | Truncated (b, lo, hi) ->
            // inverse CDF between F(lo) and F(hi), in the tail where the interval lies (no gradient)
            let u = unif key Float64 outShape
            let lfL, lsL = match lo with Some l -> logCdfs b (Tensor.detach l) | None -> Tensor.scalar (-infinity), Tensor.scalar 0.0
            let lfH, lsH = match hi with Some h -> logCdfs b (Tensor.detach h) | None -> Tensor.scalar 0.0, Tensor.scalar (-infinity)
            // the lower-tail probability p = F(lo) + u (F(hi) − F(lo)), and q = 1 − p from the upper tail
            let fL, fH = Tensor.exp lfL, Tensor.exp lfH
            let sL, sH = Tensor.exp lsL, Tensor.exp lsH
            let p = fL + u * (fH - fL)
            let q = sL - u * (sL - sH)
            quantile b p q |> Tensor.cast dt
        | Wishart (df, l) | InverseWishart (df, l) ->
            // Bartlett: A lower triangular with A_ii² ~ χ²(ν − i) and N(0, 1) below the diagonal, so that
            // A Aᵀ ~ Wishart(ν, I); then L A (Wishart) or L A⁻ᵀ (its inverse, with Ψ⁻¹ = L⁻ᵀL⁻¹), times its transpose
            let p = l.Shape.[l.Rank - 1]
            let k1, k2 = Rng.split key
            let nu = Tensor.broadcastTo outShape (Tensor.detach df) |> Tensor.cast Float64 |> Tensor.unsqueeze -1
            let chi2 = 2.0 * Rng.gamma k1 (0.5 * (nu - Tensor.arange p))
            let lowerMask = Tensor.create [| p; p |] (Array.init (p * p) (fun e -> if e / p > e % p then 1.0 else 0.0))
            let a = (std k2 Float64 (Array.append outShape [| p; p |]) * lowerMask + Tensor.diagEmbed (Tensor.sqrt chi2)) |> Tensor.cast dt
            let lB = Tensor.detach l
            let m =
                match d with
                | Wishart _ -> Tensor.matmul lB a
                | _ ->
                    let eyes = Tensor.broadcastTo a.Shape (Tensor.eye p |> Tensor.cast dt)
                    Tensor.matmul lB (Tensor.triangularSolve true true a eyes)
            Tensor.matmul m (Tensor.transpose m)
        | LkjCholesky (k, eta) ->
            // C-vine (Lewandowski, Kurowicka & Joe 2009): the canonical partial correlations that the
            // CorrCholesky bijector maps to L are independent, the one in column j (0-based) distributed as
            // 2·Beta(β, β) − 1 with β = η + (K − 2 − j)/2; atanh of them is the bijector's preimage
            let cols = [| for i in 0 .. k - 1 do for j in 0 .. i - 1 -> float (k - 2 - j) / 2.0 |]
            let conc = Tensor.unsqueeze -1 (Tensor.broadcastTo outShape (Tensor.detach eta) |> Tensor.cast Float64) + Tensor.ofArray cols
            let u = Rng.beta key conc conc
            let x = 0.5 * (Tensor.log u - Tensor.log1p (-u))
            Bijector.forward Bijector.CorrCholesky x |> Tensor.cast dt
        | ImproperUniform _ | Restricted _ ->
            raise (NotSupportedException(sprintf "%s cannot be sampled: it is an improper or unnormalized prior (or has no sampler here), usable for NUTS and for SVI with a guide, not for prior predictive draws or a guide. Give the site a proper prior to draw from it." (name d)))

    /// Reparameterized draws of shape sampleShape @ batchShape @ eventShape: differentiable in the
    /// parameters. Raises for families without a reparameterization (see hasRsample).
    let rsample (key: RngKey) (sampleShape: int[]) (d: Distribution) : Tensor =
        if not (hasRsample d) then
            raise (NotSupportedException(sprintf "%s has no reparameterized sampler; use Dist.sample (no gradient) and a score-function estimator." (name d)))
        draw key (Array.append sampleShape (batchShapeOf d)) d

    /// Draws of shape sampleShape @ batchShape @ eventShape (no gradient flows to the parameters).
    let sample (key: RngKey) (sampleShape: int[]) (d: Distribution) : Tensor =
        draw key (Array.append sampleShape (batchShapeOf d)) d |> Tensor.detach

    /// The log density of the part of a draw x that carries no pathwise gradient, as a function of the
    /// parameters it depends on; its gradient is the score-function (REINFORCE) term that a Monte Carlo
    /// objective needs besides the pathwise one. None when x is fully reparameterized (or the
    /// non-reparameterized parameters are constants). For families without rsample it is logProb; for
    /// StudentT it is the standard t density of (x − loc)/scale in the degrees of freedom only, since
    /// loc and scale are reparameterized and df is not.
    let rec scoreLogProb (d: Distribution) (x: Tensor) : Tensor option =
        // stopGradient, not detach: the same values and gradients, and a traced program recomputes x
        let x = Tensor.stopGradient x
        match d with
        | StudentT (df, loc, scale) ->
            if not df.IsTracked then None
            else
                let t = (x - Tensor.stopGradient loc) / Tensor.stopGradient scale
                let z = t * t / df
                Some (studentTLogNorm df - (df + 1.0) * 0.5 * Tensor.log1p z)
        | Independent (b, k) ->
            scoreLogProb b x |> Option.map (fun lp -> if k = 0 then lp else Tensor.sumAxes (Array.init k (fun i -> -(i + 1))) false lp)
        | Expand (b, _) -> scoreLogProb b x
        | Masked (b, m) -> scoreLogProb b x |> Option.map (fun lp -> Tensor.where m lp (Tensor.zerosLike lp))
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | Laplace _ | Logistic _ | LogNormal _ | Exponential _
        | Uniform _ | MultivariateNormal _ | LowRankMultivariateNormal _ | Delta _ | ImproperUniform _ -> None
        | Gamma _ | InverseGamma _ | Beta _ | BernoulliLogits _ | BernoulliProbs _ | BinomialLogits _ | BinomialProbs _
        | CategoricalLogits _ | CategoricalProbs _ | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _
        | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Dirichlet _ | Mixture _ | Restricted _ | Truncated _
        | PoissonLog _ | NegativeBinomialLog _ | LkjCholesky _ | Wishart _ | InverseWishart _ | Glm _ | CategoricalLogitGlm _ -> Some (logProb d x)

    // ---- moments and entropy ------------------------------------------------------------------

    let private nanLike (t: Tensor) = Tensor.fullLike t Double.NaN
    /// A batch parameter as [..., 1, 1], to scale a batch of matrices.
    let private matrixOf (t: Tensor) = Tensor.unsqueeze -1 (Tensor.unsqueeze -1 t)
    let private full (d: Distribution) (t: Tensor) = Tensor.broadcastTo (Array.append (batchShapeOf d) (eventShape d)) t

    /// The mean (NaN where undefined, +inf where infinite).
    let rec mean (d: Distribution) : Tensor =
        full d <|
        match d with
        | Normal (loc, scale) | Laplace (loc, scale) | Logistic (loc, scale) -> loc + Tensor.zerosLike scale
        | HalfNormal s -> s * sqrt (2.0 / Math.PI)
        | Cauchy (loc, s) -> nanLike (loc + s)
        | HalfCauchy s -> Tensor.fullLike s Double.PositiveInfinity
        | StudentT (df, loc, s) -> Tensor.where (Tensor.gtScalar df 1.0) (loc + Tensor.zerosLike (df + s)) (nanLike (loc + df + s))
        | LogNormal (loc, s) -> Tensor.exp (loc + 0.5 * s * s)
        | Exponential r -> 1.0 / r
        | Gamma (a, b) -> a / b
        | InverseGamma (a, b) -> Tensor.where (Tensor.gtScalar a 1.0) (b / (a - 1.0)) (Tensor.fullLike (a + b) Double.PositiveInfinity)
        | Beta (a, b) -> a / (a + b)
        | Uniform (lo, hi) -> (lo + hi) * 0.5
        | BernoulliLogits l -> Tensor.sigmoid l
        | BernoulliProbs p -> p
        | BinomialLogits (n, l) -> n * Tensor.sigmoid l
        | BinomialProbs (n, p) -> n * p
        | CategoricalLogits l | CategoricalProbs l -> nanLike (Tensor.sumAxes [| -1 |] false l)
        | Poisson r -> r
        | NegativeBinomial (mu, phi) -> mu + Tensor.zerosLike phi
        | ZeroInflatedPoisson (g, r) -> (1.0 - g) * r
        | ZeroInflatedNegativeBinomial (g, mu, phi) -> (1.0 - g) * mu + Tensor.zerosLike phi
        | OrderedLogistic (eta, c) -> nanLike (eta + Tensor.sumAxes [| -1 |] false c)
        | Dirichlet c -> c / Tensor.sumAxes [| -1 |] true c
        | MultivariateNormal (loc, l) -> loc + Tensor.zerosLike (Tensor.diagonal l)
        | LowRankMultivariateNormal (loc, _, diag) -> loc + Tensor.zerosLike diag
        | Delta (v, _, _) -> v
        | Mixture (w, cs) ->
            let wts = Tensor.softmax -1 w
            let ev = (eventShape d).Length
            let ms = cs |> List.map mean |> Tensor.stack -(ev + 1)
            Tensor.sumAxes [| -(ev + 1) |] false (ms * Tensor.reshape (Array.append wts.Shape (Array.create ev 1)) wts)
        | Independent (b, _) | Expand (b, _) | Masked (b, _) -> mean b
        | PoissonLog eta -> Tensor.exp eta
        | NegativeBinomialLog (eta, phi) -> Tensor.exp eta + Tensor.zerosLike phi
        | Glm (family, x, alpha, beta) -> mean (glmRows family x alpha beta)
        // as Categorical's: a class label has no mean (Dist.classProbs gives the probabilities)
        | CategoricalLogitGlm (x, alpha, beta) -> mean (Independent (categoricalGlmRows x alpha beta, 1))
        // no closed form here (undefined for improper ones)
        | ImproperUniform _ -> Tensor.fullLike (Tensor.zeros [||]) Double.NaN
        | Restricted (b, _) | Truncated (b, _, _) -> nanLike (mean b)
        | LkjCholesky (k, eta) -> nanLike (Tensor.zeros (Array.append eta.Shape [| k; k |]) + Tensor.unsqueeze -1 (Tensor.unsqueeze -1 eta))
        | Wishart (df, l) -> matrixOf df * Tensor.matmul l (Tensor.transpose l)
        | InverseWishart (df, l) ->
            let p = float l.Shape.[l.Rank - 1]
            let nu = matrixOf df
            let m = Tensor.matmul l (Tensor.transpose l) / (nu - (p + 1.0))
            Tensor.where (Tensor.gtScalar nu (p + 1.0)) m (nanLike m)

    /// Class probabilities over the last axis for Categorical and OrderedLogistic; None for other families.
    let rec classProbs (d: Distribution) : Tensor option =
        match d with
        | CategoricalLogits l -> Some (Tensor.softmax -1 l)
        | CategoricalProbs p -> Some p
        | OrderedLogistic (eta, cut) -> Some (orderedProbs eta cut)
        | Independent (b, _) | Masked (b, _) -> classProbs b
        | CategoricalLogitGlm (x, alpha, beta) -> classProbs (categoricalGlmRows x alpha beta)
        | Normal _ | HalfNormal _ | Cauchy _ | HalfCauchy _ | StudentT _ | Laplace _ | Logistic _ | LogNormal _
        | Exponential _ | Gamma _ | InverseGamma _ | Beta _ | Uniform _ | BernoulliLogits _ | BernoulliProbs _
        | BinomialLogits _ | BinomialProbs _ | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _
        | ZeroInflatedNegativeBinomial _ | Dirichlet _ | MultivariateNormal _ | LowRankMultivariateNormal _ | Delta _
        | Mixture _ | Expand _ | ImproperUniform _ | Restricted _ | Truncated _ | PoissonLog _ | NegativeBinomialLog _
        | LkjCholesky _ | Wishart _ | InverseWishart _ | Glm _ -> None

    /// The variance (per element of the event; NaN where undefined, +inf where infinite).
    let rec variance (d: Distribution) : Tensor =
        full d <|
        match d with
        | Normal (loc, s) -> s * s + Tensor.zerosLike loc
        | HalfNormal s -> s * s * (1.0 - 2.0 / Math.PI)
        | Cauchy (loc, s) -> nanLike (loc + s)
        | HalfCauchy s -> Tensor.fullLike s Double.PositiveInfinity
        | StudentT (df, loc, s) ->
            let v = s * s * df / (df - 2.0) + Tensor.zerosLike loc
            let inf = Tensor.fullLike v Double.PositiveInfinity
            Tensor.where (Tensor.gtScalar df 2.0) v (Tensor.where (Tensor.gtScalar df 1.0) inf (nanLike v))
        | Laplace (loc, s) -> 2.0 * s * s + Tensor.zerosLike loc
        | Logistic (loc, s) -> s * s * (Math.PI * Math.PI / 3.0) + Tensor.zerosLike loc
        | LogNormal (loc, s) -> Tensor.expm1 (s * s) * Tensor.exp (2.0 * loc + s * s)
        | Exponential r -> 1.0 / (r * r)
        | Gamma (a, b) -> a / (b * b)
        | InverseGamma (a, b) ->
            let v = b * b / ((a - 1.0) * (a - 1.0) * (a - 2.0))
            Tensor.where (Tensor.gtScalar a 2.0) v (Tensor.fullLike v Double.PositiveInfinity)
        | Beta (a, b) -> a * b / ((a + b) * (a + b) * (a + b + 1.0))
        | Uniform (lo, hi) -> (hi - lo) * (hi - lo) / 12.0
        // σ(l)σ(−l), not σ(l)(1 − σ(l)), which is 0 once σ(l) rounds to 1 (l ≥ 37)
        | BernoulliLogits l -> Tensor.sigmoid l * Tensor.sigmoid (-l)
        | BernoulliProbs p -> p * (1.0 - p)
        | BinomialLogits (n, l) -> n * Tensor.sigmoid l * Tensor.sigmoid (-l)
        | BinomialProbs (n, p) -> n * p * (1.0 - p)
        | CategoricalLogits l | CategoricalProbs l -> nanLike (Tensor.sumAxes [| -1 |] false l)
        | Poisson r -> r
        | NegativeBinomial (mu, phi) -> mu + mu * mu / phi
        | ZeroInflatedPoisson (g, r) -> (1.0 - g) * r * (1.0 + g * r)
        | ZeroInflatedNegativeBinomial (g, mu, phi) -> (1.0 - g) * (mu + mu * mu / phi) + g * (1.0 - g) * mu * mu
        | OrderedLogistic (eta, c) -> nanLike (eta + Tensor.sumAxes [| -1 |] false c)
        | Dirichlet c ->
            let a0 = Tensor.sumAxes [| -1 |] true c
            c * (a0 - c) / (a0 * a0 * (a0 + 1.0))
        | MultivariateNormal (_, l) -> Tensor.sumAxes [| -1 |] false (l * l)
        | LowRankMultivariateNormal (_, w, diag) -> Tensor.sumAxes [| -1 |] false (w * w) + diag
        | Delta (v, _, _) -> Tensor.zerosLike v
        | Mixture (w, cs) ->
            let wts = Tensor.softmax -1 w
            let ev = (eventShape d).Length
            let wb = Tensor.reshape (Array.append wts.Shape (Array.create ev 1)) wts
            let ms = cs |> List.map mean |> Tensor.stack -(ev + 1)
            let vs = cs |> List.map variance |> Tensor.stack -(ev + 1)
            let m = Tensor.sumAxes [| -(ev + 1) |] true (ms * wb)
            // Σ w_k (v_k + (m_k − m)²): no E[x²] − E[x]² cancellation for means far from zero
            let dev = ms - m
            Tensor.sumAxes [| -(ev + 1) |] false ((vs + dev * dev) * wb)
        | Independent (b, _) | Expand (b, _) | Masked (b, _) -> variance b
        | PoissonLog eta -> Tensor.exp eta
        | NegativeBinomialLog (eta, phi) -> Tensor.exp eta + Tensor.exp (2.0 * eta) / phi
        | Glm (family, x, alpha, beta) -> variance (glmRows family x alpha beta)
        | CategoricalLogitGlm (x, alpha, beta) -> variance (Independent (categoricalGlmRows x alpha beta, 1))
        | ImproperUniform _ -> Tensor.fullLike (Tensor.zeros [||]) Double.NaN
        | Restricted (b, _) | Truncated (b, _, _) -> nanLike (variance b)
        | LkjCholesky (k, eta) -> nanLike (Tensor.zeros (Array.append eta.Shape [| k; k |]) + Tensor.unsqueeze -1 (Tensor.unsqueeze -1 eta))
        | Wishart (df, l) | InverseWishart (df, l) ->
            // Var X_ij: ν(S_ij² + S_ii S_jj) (Wishart); ((ν−p+1)S_ij² + (ν−p−1)S_ii S_jj) / ((ν−p)(ν−p−1)²(ν−p−3)),
            // finite for ν > p + 3 (inverse-Wishart)
            let s = Tensor.matmul l (Tensor.transpose l)
            let sd = Tensor.diagonal s
            let prod = Tensor.unsqueeze -1 sd * Tensor.unsqueeze -2 sd
            let nu = matrixOf df
            match d with
            | Wishart _ -> nu * (s * s + prod)
            | _ ->
                let p = float l.Shape.[l.Rank - 1]
                let v = ((nu - p + 1.0) * s * s + (nu - p - 1.0) * prod) / ((nu - p) * Tensor.square (nu - p - 1.0) * (nu - p - 3.0))
                Tensor.where (Tensor.gtScalar nu (p + 3.0)) v (nanLike v)

    /// The differential (or Shannon) entropy, per batch element. Raises where no closed form exists.
    let rec entropy (d: Distribution) : Tensor =
        let bs = batchShapeOf d
        let b (t: Tensor) = Tensor.broadcastTo bs t
        match d with
        | Normal (loc, s) -> b (0.5 + 0.5 * log2Pi + Tensor.log s + Tensor.zerosLike loc)
        | HalfNormal s -> b (0.5 * Tensor.log (s * s * (Math.PI / 2.0)) + 0.5)
        | Cauchy (loc, s) -> b (Tensor.log (4.0 * Math.PI * s) + Tensor.zerosLike loc)
        | HalfCauchy s -> b (Tensor.log (2.0 * Math.PI * s))
        | StudentT (df, loc, s) ->
            let h = (df + 1.0) * 0.5 * (Tensor.digamma ((df + 1.0) * 0.5) - Tensor.digamma (df * 0.5))
                    + 0.5 * Tensor.log df + lbeta (df * 0.5) (Tensor.fullLike df 0.5)
            b (h + Tensor.log s + Tensor.zerosLike loc)
        | Laplace (loc, s) -> b (1.0 + Tensor.log (2.0 * s) + Tensor.zerosLike loc)
        | Logistic (loc, s) -> b (Tensor.log s + 2.0 + Tensor.zerosLike loc)
        | LogNormal (loc, s) -> b (loc + 0.5 + 0.5 * log2Pi + Tensor.log s)
        | Exponential r -> b (1.0 - Tensor.log r)
        | Gamma (a, r) -> b (a - Tensor.log r + Tensor.lgamma a + (1.0 - a) * Tensor.digamma a)
        | InverseGamma (a, r) -> b (a + Tensor.log r + Tensor.lgamma a - (1.0 + a) * Tensor.digamma a)
        | Beta (a, c) ->
            b (lbeta a c - (a - 1.0) * Tensor.digamma a - (c - 1.0) * Tensor.digamma c + (a + c - 2.0) * Tensor.digamma (a + c))
        | Uniform (lo, hi) -> b (Tensor.log (hi - lo))
        // xlogy: 0·log 0 = 0 at p ∈ {0, 1} and at −∞ logits
        | BernoulliLogits l -> b (-(xlogy (Tensor.sigmoid l) (Tensor.logSigmoid l) + xlogy (Tensor.sigmoid (-l)) (Tensor.logSigmoid (-l))))
        | BernoulliProbs p -> b (-(xlogy p (Tensor.log p) + xlogy (1.0 - p) (Tensor.log1p (-p))))
        | CategoricalLogits l ->
            let lp = Tensor.logSoftmax -1 l
            b (-(Tensor.sumAxes [| -1 |] false (xlogy (Tensor.exp lp) lp)))
        | CategoricalProbs p -> b (-(Tensor.sumAxes [| -1 |] false (xlogy p (Tensor.log p))))
        | Dirichlet c ->
            let k = float c.Shape.[c.Rank - 1]
            let a0 = Tensor.sumAxes [| -1 |] false c
            let lB = Tensor.sumAxes [| -1 |] false (Tensor.lgamma c) - Tensor.lgamma a0
            b (lB + (a0 - k) * Tensor.digamma a0 - Tensor.sumAxes [| -1 |] false ((c - 1.0) * Tensor.digamma c))
        | MultivariateNormal (_, l) ->
            let n = float l.Shape.[l.Rank - 1]
            b (0.5 * n * (1.0 + log2Pi) + Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal l)))
        | LowRankMultivariateNormal (_, w, diag) ->
            let n = diag.Shape.[diag.Rank - 1]
            let r = w.Shape.[w.Rank - 1]
            let cap = Tensor.eye r + Tensor.matmul (Tensor.transpose (w / Tensor.unsqueeze -1 diag)) w
            let logDet = 2.0 * Tensor.sumAxes [| -1 |] false (Tensor.log (Tensor.diagonal (Tensor.cholesky cap))) + Tensor.sumAxes [| -1 |] false (Tensor.log diag)
            b (0.5 * float n * (1.0 + log2Pi) + 0.5 * logDet)
        | Independent (bd, k) -> Tensor.sumAxes (Array.init k (fun i -> -(i + 1))) false (entropy bd)
        | Expand (bd, s) -> Tensor.broadcastTo s (entropy bd)
        | Glm (family, x, alpha, beta) -> Tensor.sumAxes [| -1 |] false (entropy (glmRows family x alpha beta))
        | CategoricalLogitGlm (x, alpha, beta) -> Tensor.sumAxes [| -1 |] false (entropy (categoricalGlmRows x alpha beta))
        | BinomialLogits _ | BinomialProbs _ | Poisson _ | NegativeBinomial _ | ZeroInflatedPoisson _
        | ZeroInflatedNegativeBinomial _ | OrderedLogistic _ | Delta _ | Mixture _ | Masked _ | ImproperUniform _
        | Restricted _ | Truncated _ | PoissonLog _ | NegativeBinomialLog _ | LkjCholesky _ | Wishart _ | InverseWishart _ ->
            raise (NotSupportedException(sprintf "%s has no closed-form entropy here; estimate it by Monte Carlo (-mean of logProb of draws)." (name d)))

    // ---- checked constructors -----------------------------------------------------------------

    let private fail (dist: string) (param: string) (msg: string) =
        invalidArg param (sprintf "%s: parameter %s %s" dist param msg)

    // The checks run each time a model builds a distribution (every gradient): no closures or copies per call.
    let private requireAll (dist: string) (param: string) (what: string) (ok: float -> bool) (t: Tensor) =
        let v = Tensor.valuesForCheck t
        let mutable i = 0
        while i < v.Length && ok v.[i] do i <- i + 1
        if i < v.Length then fail dist param (sprintf "must be %s, got %g (element %d of shape %s)." what v.[i] i (Shape.format t.Shape))

    let private isPositive: float -> bool = fun v -> v > 0.0
    let private isFinite: float -> bool = fun v -> not (Double.IsNaN v || Double.IsInfinity v)
    let private isProb: float -> bool = fun v -> v >= 0.0 && v <= 1.0
    let private isNumber: float -> bool = fun v -> not (Double.IsNaN v)
    let private positive dist param t = requireAll dist param "positive" isPositive t
    let private finite dist param t = requireAll dist param "finite" isFinite t
    let private prob dist param t = requireAll dist param "a probability in [0, 1]" isProb t
    let private notNaN dist param t = requireAll dist param "a number" isNumber t

    /// Checks that the parameters broadcast, naming the distribution and all shapes.
    let private shapes (dist: string) (ps: (string * Tensor) list) =
        let rec go (s: int[]) (rest: (string * Tensor) list) =
            match rest with
            | [] -> ()
            | (_, t) :: tail -> go (if Shape.equal s t.ShapeRef then s else Shape.broadcast dist s t.ShapeRef) tail
        try
            match ps with
            | [] -> ()
            | (_, t) :: tail -> go t.ShapeRef tail
        with :? ArgumentException ->
            let desc = ps |> List.map (fun (n, t) -> sprintf "%s %s" n (Shape.format t.Shape)) |> String.concat ", "
            invalidArg "shape" (sprintf "%s: parameter shapes do not broadcast: %s." dist desc)

    let private atLeast1 (dist: string) (param: string) (t: Tensor) =
        if t.Rank < 1 then fail dist param (sprintf "must have at least one axis (the categories), got shape %s." (Shape.format t.Shape))

    /// Normal(loc, scale), scale > 0.
    let normal (loc: Tensor) (scale: Tensor) =
        finite "Normal" "loc" loc; positive "Normal" "scale" scale; shapes "Normal" [ "loc", loc; "scale", scale ]
        Normal (loc, scale)
    let halfNormal (scale: Tensor) = positive "HalfNormal" "scale" scale; HalfNormal scale
    let cauchy (loc: Tensor) (scale: Tensor) =
        finite "Cauchy" "loc" loc; positive "Cauchy" "scale" scale; shapes "Cauchy" [ "loc", loc; "scale", scale ]
        Cauchy (loc, scale)
    let halfCauchy (scale: Tensor) = positive "HalfCauchy" "scale" scale; HalfCauchy scale
    let studentT (df: Tensor) (loc: Tensor) (scale: Tensor) =
        positive "StudentT" "df" df; finite "StudentT" "loc" loc; positive "StudentT" "scale" scale
        shapes "StudentT" [ "df", df; "loc", loc; "scale", scale ]
        StudentT (df, loc, scale)
    let laplace (loc: Tensor) (scale: Tensor) =
        finite "Laplace" "loc" loc; positive "Laplace" "scale" scale; shapes "Laplace" [ "loc", loc; "scale", scale ]
        Laplace (loc, scale)
    let logistic (loc: Tensor) (scale: Tensor) =
        finite "Logistic" "loc" loc; positive "Logistic" "scale" scale; shapes "Logistic" [ "loc", loc; "scale", scale ]
        Logistic (loc, scale)
    let logNormal (loc: Tensor) (scale: Tensor) =
        finite "LogNormal" "loc" loc; positive "LogNormal" "scale" scale; shapes "LogNormal" [ "loc", loc; "scale", scale ]
        LogNormal (loc, scale)
    let exponential (rate: Tensor) = positive "Exponential" "rate" rate; Exponential rate
    let gamma (concentration: Tensor) (rate: Tensor) =
        positive "Gamma" "concentration" concentration; positive "Gamma" "rate" rate
        shapes "Gamma" [ "concentration", concentration; "rate", rate ]
        Gamma (concentration, rate)
    let inverseGamma (concentration: Tensor) (rate: Tensor) =
        positive "InverseGamma" "concentration" concentration; positive "InverseGamma" "rate" rate
        shapes "InverseGamma" [ "concentration", concentration; "rate", rate ]
        InverseGamma (concentration, rate)
    let beta (alpha: Tensor) (beta: Tensor) =
        positive "Beta" "alpha" alpha; positive "Beta" "beta" beta; shapes "Beta" [ "alpha", alpha; "beta", beta ]
        Beta (alpha, beta)
    let uniform (low: Tensor) (high: Tensor) =
        finite "Uniform" "low" low; finite "Uniform" "high" high; shapes "Uniform" [ "low", low; "high", high ]
        let lo = Tensor.toArray (Tensor.broadcastTo (Shape.broadcast "Uniform" low.Shape high.Shape) low)
        let hi = Tensor.toArray (Tensor.broadcastTo (Shape.broadcast "Uniform" low.Shape high.Shape) high)
        match Array.zip lo hi |> Array.tryFindIndex (fun (l, h) -> not (l < h)) with
        | Some i -> fail "Uniform" "high" (sprintf "must exceed low, got low %g and high %g (element %d)." lo.[i] hi.[i] i)
        | None -> Uniform (low, high)
    let bernoulliLogits (logits: Tensor) = notNaN "Bernoulli" "logits" logits; BernoulliLogits logits
    let bernoulliProbs (probs: Tensor) = prob "Bernoulli" "probs" probs; BernoulliProbs probs
    let private countOk dist (n: Tensor) = requireAll dist "totalCount" "a non-negative integer" (fun v -> v >= 0.0 && v = Math.Floor v) n
    let binomialLogits (totalCount: Tensor) (logits: Tensor) =
        countOk "Binomial" totalCount; notNaN "Binomial" "logits" logits; shapes "Binomial" [ "totalCount", totalCount; "logits", logits ]
        BinomialLogits (totalCount, logits)
    let binomialProbs (totalCount: Tensor) (probs: Tensor) =
        countOk "Binomial" totalCount; prob "Binomial" "probs" probs; shapes "Binomial" [ "totalCount", totalCount; "probs", probs ]
        BinomialProbs (totalCount, probs)
    let categoricalLogits (logits: Tensor) =
        atLeast1 "Categorical" "logits" logits; notNaN "Categorical" "logits" logits; CategoricalLogits logits
    let categoricalProbs (probs: Tensor) =
        atLeast1 "Categorical" "probs" probs; prob "Categorical" "probs" probs
        let sums = Tensor.valuesForCheck (Tensor.sumAxes [| -1 |] false probs)
        match sums |> Array.tryFindIndex (fun s -> abs (s - 1.0) > 1e-6) with
        | Some i -> fail "Categorical" "probs" (sprintf "must sum to 1 over the last axis, got %g (row %d of shape %s)." sums.[i] i (Shape.format probs.Shape))
        | None -> CategoricalProbs probs
    let poisson (rate: Tensor) = requireAll "Poisson" "rate" "non-negative" (fun v -> v >= 0.0) rate; Poisson rate
    let negativeBinomial (mean: Tensor) (concentration: Tensor) =
        positive "NegativeBinomial" "mean" mean; positive "NegativeBinomial" "concentration" concentration
        shapes "NegativeBinomial" [ "mean", mean; "concentration", concentration ]
        NegativeBinomial (mean, concentration)
    let zeroInflatedPoisson (gate: Tensor) (rate: Tensor) =
        prob "ZeroInflatedPoisson" "gate" gate; requireAll "ZeroInflatedPoisson" "rate" "non-negative" (fun v -> v >= 0.0) rate
        shapes "ZeroInflatedPoisson" [ "gate", gate; "rate", rate ]
        ZeroInflatedPoisson (gate, rate)
    let zeroInflatedNegativeBinomial (gate: Tensor) (mean: Tensor) (concentration: Tensor) =
        prob "ZeroInflatedNegativeBinomial" "gate" gate; positive "ZeroInflatedNegativeBinomial" "mean" mean
        positive "ZeroInflatedNegativeBinomial" "concentration" concentration
        shapes "ZeroInflatedNegativeBinomial" [ "gate", gate; "mean", mean; "concentration", concentration ]
        ZeroInflatedNegativeBinomial (gate, mean, concentration)
    let orderedLogistic (predictor: Tensor) (cutpoints: Tensor) =
        finite "OrderedLogistic" "predictor" predictor; atLeast1 "OrderedLogistic" "cutpoints" cutpoints
        let ok = Constraint.check Constraint.OrderedVector cutpoints |> Tensor.toBools
        if not (Array.forall id ok) then
            fail "OrderedLogistic" "cutpoints" (sprintf "must increase along the last axis, got %O." cutpoints)
        shapes "OrderedLogistic" [ "predictor", predictor; "cutpoints (batch)", Tensor.zeros (lastAxisDropped cutpoints) ]
        OrderedLogistic (predictor, cutpoints)
    let dirichlet (concentration: Tensor) =
        atLeast1 "Dirichlet" "concentration" concentration; positive "Dirichlet" "concentration" concentration
        Dirichlet concentration
    /// The rule for a lower-Cholesky scale parameter: a (batch of) square matrix, lower triangular with a
    /// positive diagonal.
    let private scaleTrilParam (dist: string) (scaleTril: Tensor) =
        if scaleTril.Rank < 2 || scaleTril.Shape.[scaleTril.Rank - 1] <> scaleTril.Shape.[scaleTril.Rank - 2] then
            fail dist "scaleTril" (sprintf "must be a (batch of) square matrix, got shape %s." (Shape.format scaleTril.Shape))
        if not (Array.forall id (Tensor.toBools (Constraint.check Constraint.LowerCholesky scaleTril))) then
            fail dist "scaleTril" "must be lower triangular with a positive diagonal (a Cholesky factor); use Tensor.cholesky on a covariance matrix."
    /// The Cholesky factor of a covariance-like parameter, refused with the distribution's name when it is
    /// not positive definite.
    let private choleskyParam (dist: string) (param: string) (m: Tensor) =
        try Tensor.cholesky m
        with :? ArgumentException as e -> fail dist param (sprintf "is not positive definite (%s)" e.Message)
    let multivariateNormal (loc: Tensor) (scaleTril: Tensor) =
        finite "MultivariateNormal" "loc" loc
        scaleTrilParam "MultivariateNormal" scaleTril
        let n = scaleTril.Shape.[scaleTril.Rank - 1]
        if loc.Rank > 0 && loc.Shape.[loc.Rank - 1] <> n && loc.Shape.[loc.Rank - 1] <> 1 then
            invalidArg "loc" (sprintf "MultivariateNormal: loc of shape %s does not match scaleTril of shape %s." (Shape.format loc.Shape) (Shape.format scaleTril.Shape))
        MultivariateNormal (loc, scaleTril)
    /// A multivariate normal from a covariance matrix (its Cholesky factor is taken; a matrix that is
    /// not positive definite is refused).
    let multivariateNormalCov (loc: Tensor) (covariance: Tensor) =
        multivariateNormal loc (choleskyParam "MultivariateNormal" "covariance" covariance)
    let private wishartLike (dist: string) (df: Tensor) (scaleTril: Tensor) =
        scaleTrilParam dist scaleTril
        let p = scaleTril.Shape.[scaleTril.Rank - 1]
        requireAll dist "df" (sprintf "finite and greater than p − 1 = %d (p = %d, the matrices' size)" (p - 1) p)
            (fun v -> Double.IsFinite v && v > float (p - 1)) df
        try Shape.broadcast dist df.Shape scaleTril.Shape.[.. scaleTril.Rank - 3] |> ignore
        with :? ArgumentException ->
            invalidArg "df" (sprintf "%s: df of shape %s does not broadcast against the batch of scaleTril (shape %s)." dist (Shape.format df.Shape) (Shape.format scaleTril.Shape))
    /// Wishart(ν, Σ = L Lᵀ) on p×p positive-definite matrices from the lower-Cholesky scale L; ν > p − 1
    /// (Stan's wishart). A value that is not symmetric positive definite has log density −∞.
    let wishart (df: Tensor) (scaleTril: Tensor) =
        wishartLike "Wishart" df scaleTril
        Wishart (df, scaleTril)
    /// Wishart(ν, Σ) from the scale matrix Σ (its Cholesky factor is taken; one that is not positive
    /// definite is refused).
    let wishartCov (df: Tensor) (scale: Tensor) = wishart df (choleskyParam "Wishart" "scale" scale)
    /// Inverse-Wishart(ν, Ψ = L Lᵀ) on p×p positive-definite matrices from the lower-Cholesky scale L;
    /// ν > p − 1 (Stan's inv_wishart). A value that is not symmetric positive definite has log density −∞.
    let inverseWishart (df: Tensor) (scaleTril: Tensor) =
        wishartLike "InverseWishart" df scaleTril
        InverseWishart (df, scaleTril)
    /// Inverse-Wishart(ν, Ψ) from the scale matrix Ψ (its Cholesky factor is taken; one that is not
    /// positive definite is refused).
    let inverseWishartCov (df: Tensor) (scale: Tensor) = inverseWishart df (choleskyParam "InverseWishart" "scale" scale)
    let lowRankMultivariateNormal (loc: Tensor) (covFactor: Tensor) (covDiag: Tensor) =
        finite "LowRankMultivariateNormal" "loc" loc; finite "LowRankMultivariateNormal" "covFactor" covFactor
        positive "LowRankMultivariateNormal" "covDiag" covDiag
        if covFactor.Rank < 2 || covFactor.Shape.[covFactor.Rank - 2] <> covDiag.Shape.[covDiag.Rank - 1] then
            invalidArg "covFactor" (sprintf "LowRankMultivariateNormal: covFactor of shape %s must be [..., n, r] with n = %d from covDiag of shape %s." (Shape.format covFactor.Shape) covDiag.Shape.[covDiag.Rank - 1] (Shape.format covDiag.Shape))
        LowRankMultivariateNormal (loc, covFactor, covDiag)
    /// A point mass at value (log-density 0), scalar events.
    let delta (value: Tensor) = Delta (value, Tensor.zerosLike value, 0)
    let mixture (mixingLogits: Tensor) (components: Distribution list) =
        if components.IsEmpty then invalidArg "components" "Mixture: needs at least one component."
        atLeast1 "Mixture" "mixingLogits" mixingLogits
        let k = mixingLogits.Shape.[mixingLogits.Rank - 1]
        if k <> components.Length then
            invalidArg "mixingLogits" (sprintf "Mixture: %d mixing logits (shape %s) for %d components." k (Shape.format mixingLogits.Shape) components.Length)
        let ev = eventShape components.Head
        for c in components do
            if not (Shape.equal (eventShape c) ev) then
                invalidArg "components" (sprintf "Mixture: components have event shapes %s and %s; they must share one." (Shape.format ev) (Shape.format (eventShape c)))
        Mixture (mixingLogits, components)

    /// Reinterprets the last n batch axes as event axes (log-densities are summed over them).
    let toEvent (n: int) (d: Distribution) =
        let bs = batchShapeOf d
        if n < 0 || n > bs.Length then
            invalidArg "n" (sprintf "%s.toEvent: cannot move %d axes of batch shape %s to the event." (name d) n (Shape.format bs))
        if n = 0 then d else Independent (d, n)

    /// Broadcasts to a larger batch shape.
    let expand (batchShape: int[]) (d: Distribution) =
        let bs = batchShapeOf d
        let b = try Shape.broadcast "expand" bs batchShape with :? ArgumentException -> [||]
        if not (Shape.equal b batchShape) then
            invalidArg "batchShape" (sprintf "%s.expand: batch shape %s cannot be expanded to %s." (name d) (Shape.format bs) (Shape.format batchShape))
        if Shape.equal bs batchShape then d else Expand (d, Array.copy batchShape)

    /// Zeroes the log-density where the bool mask is false.
    let mask (m: Tensor) (d: Distribution) =
        if m.Dtype <> Bool then invalidArg "m" (sprintf "%s.mask: the mask must be bool, got %O." (name d) m.Dtype)
        Masked (d, m)

    /// A flat (improper) prior over any continuous support: log density 0 there, −∞ outside. `shape` is
    /// batch @ event, the support's event axes last ([K] for an ordered or simplex vector, [K; K] for a
    /// Cholesky factor). Usable for NUTS and for SVI with a guide; drawing from it raises.
    let improperUniform (support: Constraint) (shape: int[]) =
        if support.IsDiscrete then
            invalidArg "support" (sprintf "ImproperUniform: the support %A is discrete; a flat prior needs a continuous support." support)
        if shape.Length < support.EventDims then
            invalidArg "shape" (sprintf "ImproperUniform: the support %A spans %d trailing axes but the shape %s has %d." support support.EventDims (Shape.format shape) shape.Length)
        if shape |> Array.exists (fun n -> n < 1) then
            invalidArg "shape" (sprintf "ImproperUniform: every axis must be positive, got %s." (Shape.format shape))
        ImproperUniform (support, Array.copy shape)

    /// A constrained site (Stan's `real<lower=0> sigma; sigma ~ student_t(3, 0, 1)`, `ordered[K] mu;
    /// mu ~ normal(0, 10)`): the base's log density on the support, not renormalized (exact up to a
    /// constant when the base's parameters are constants, as in Stan). An element-wise base is made
    /// Independent over the support's event axes (an ordered vector of Normals). Cannot be sampled; use
    /// Dist.truncated for a renormalized density that can.
    let restrict (c: Constraint) (d: Distribution) =
        if c.IsDiscrete then
            invalidArg "support" (sprintf "Restricted(%s): the support %A is discrete; restrict continuous sites only." (name d) c)
        if (support d).IsDiscrete then
            invalidArg "d" (sprintf "Restricted(%s): the base is discrete." (name d))
        let ev = (eventShape d).Length
        let d =
            if ev >= c.EventDims then d
            else
                let bs = batchShapeOf d
                let n = c.EventDims - ev
                if bs.Length < n then
                    invalidArg "d" (sprintf "Restricted(%s): the support %A spans %d axes but the base has batch shape %s and event shape %s." (name d) c c.EventDims (Shape.format bs) (Shape.format (eventShape d)))
                Independent (d, n)
        if (eventShape d).Length <> c.EventDims then
            invalidArg "support" (sprintf "Restricted(%s): the support %A spans %d axes but the base's event has %d." (name d) c c.EventDims (eventShape d).Length)
        Restricted (d, c)

    /// The base truncated to (low, high) and renormalized (Stan's T[low, high]); None leaves a side open.
    /// Element-wise bases with a CDF here: Normal, HalfNormal, Cauchy, HalfCauchy, StudentT, Logistic, Laplace,
    /// Exponential, Gamma, InverseGamma, LogNormal (the others raise NotSupportedException, naming these). StudentT's df and Gamma's
    /// shape may be parameters: the CDF's derivative in them is a sixth-order central difference (~1e−10).
    let truncated (low: Tensor option) (high: Tensor option) (d: Distribution) =
        requireCdf d
        match low, high with
        | Some l, Some h ->
            let lv, hv = Tensor.valuesForCheck l, Tensor.valuesForCheck h
            if lv.Length = hv.Length && Array.exists2 (fun a b -> not (a < b)) lv hv then
                invalidArg "low" (sprintf "Truncated(%s): every lower bound must be below its upper bound." (name d))
        | _ -> ()
        Truncated (d, low, high)

    /// The half (x ≥ 0) of a distribution symmetric about 0, renormalized: Dist.truncated (Some 0) None.
    let half (d: Distribution) = truncated (Some (Tensor.scalar 0.0)) None d

    /// Poisson with log rate η (a GLM's linear predictor), stable for any η.
    let poissonLog (logRate: Tensor) = notNaN "PoissonLog" "logRate" logRate; PoissonLog logRate

    /// A GLM's x, alpha and beta checked (shapes and dtypes, naming the argument, the shapes and the fix).
    let private glm (dist: string) (family: GlmFamily) (x: Tensor) (alpha: Tensor) (beta: Tensor) =
        if x.Rank <> 2 then
            fail dist "x" (sprintf "must be a matrix [n, d] (one row per observation, one column per predictor), got shape %s; make a single predictor a column with Tensor.unsqueeze -1." (Shape.format x.Shape))
        if not x.Dtype.IsFloat then fail dist "x" (sprintf "must be float, got %O; convert it (Tensor.toFloat64)." x.Dtype)
        let n, d = x.Shape.[0], x.Shape.[1]
        if beta.Rank <> 1 || beta.Shape.[0] <> d then
            fail dist "beta" (sprintf "must have shape [%d] (one coefficient per column of x, shape %s), got %s." d (Shape.format x.Shape) (Shape.format beta.Shape))
        if not (alpha.Rank = 0 || (alpha.Rank = 1 && (alpha.Shape.[0] = 1 || alpha.Shape.[0] = n))) then
            fail dist "alpha" (sprintf "must be a scalar (one intercept) or have shape [%d] (one offset per row of x, shape %s), got %s; use Tensor.scalar 0.0 for no intercept." n (Shape.format x.Shape) (Shape.format alpha.Shape))
        for (name, t) in [ "alpha", alpha; "beta", beta ] do
            if t.Dtype <> x.Dtype then fail dist name (sprintf "is %O but x is %O; convert one of them (Tensor.cast)." t.Dtype x.Dtype)
        Glm (family, x, alpha, beta)

    /// Logistic regression's likelihood as one distribution over y [n] ∈ {0, 1}ⁿ (Stan's
    /// bernoulli_logit_glm): P(yᵢ = 1) = σ(xᵢ·β + α), x [n, d], alpha a scalar or [n], beta [d]. Its log
    /// density is one fused op, one pass over x for value and gradient; y outside {0, 1} scores −∞.
    let bernoulliLogitGlm (x: Tensor) (alpha: Tensor) (beta: Tensor) = glm "BernoulliLogitGlm" GlmFamily.BernoulliLogit x alpha beta

    /// Poisson regression's likelihood as one distribution over counts y [n] (Stan's poisson_log_glm):
    /// yᵢ ~ Poisson(exp(xᵢ·β + α)), x [n, d], alpha a scalar or [n], beta [d]. Its log density is one fused
    /// op, one pass over x for value and gradient; y not a non-negative integer scores −∞.
    let poissonLogGlm (x: Tensor) (alpha: Tensor) (beta: Tensor) = glm "PoissonLogGlm" GlmFamily.PoissonLog x alpha beta

    /// Multinomial logistic regression's likelihood as one distribution over class labels y [n] (Stan's
    /// categorical_logit_glm): yᵢ ~ categorical(softmax(xᵢ·β + α)), x [n, d], alpha [C] (one intercept per
    /// class), beta [d, C]. Its log density is one fused op, one pass over x for value and gradient; labels
    /// are int or float class ids 0 .. C − 1 (as Dist.categoricalLogits takes them), others score −∞.
    /// Dist.classProbs gives softmax(x·β + α) [n, C].
    let categoricalLogitGlm (x: Tensor) (alpha: Tensor) (beta: Tensor) =
        let dist = "CategoricalLogitGlm"
        if x.Rank <> 2 then
            fail dist "x" (sprintf "must be a matrix [n, d] (one row per observation, one column per predictor), got shape %s; make a single predictor a column with Tensor.unsqueeze -1." (Shape.format x.Shape))
        if not x.Dtype.IsFloat then fail dist "x" (sprintf "must be float, got %O; convert it (Tensor.toFloat64)." x.Dtype)
        let d = x.Shape.[1]
        if beta.Rank <> 2 || beta.Shape.[0] <> d || beta.Shape.[1] < 1 then
            fail dist "beta" (sprintf "must have shape [%d, C] (one row per column of x, shape %s; one column per class, C >= 1), got %s." d (Shape.format x.Shape) (Shape.format beta.Shape))
        let c = beta.Shape.[1]
        if alpha.Rank <> 1 || alpha.Shape.[0] <> c then
            fail dist "alpha" (sprintf "must have shape [%d] (one intercept per class, as beta %s has columns), got %s; use Tensor.zeros [| %d |] for no intercept." c (Shape.format beta.Shape) (Shape.format alpha.Shape) c)
        for (name, t) in [ "alpha", alpha; "beta", beta ] do
            if t.Dtype <> x.Dtype then fail dist name (sprintf "is %O but x is %O; convert one of them (Tensor.cast)." t.Dtype x.Dtype)
        CategoricalLogitGlm (x, alpha, beta)

    /// NegativeBinomial with log mean η and concentration φ (Stan's neg_binomial_2_log).
    let negativeBinomialLog (logMean: Tensor) (concentration: Tensor) =
        notNaN "NegativeBinomialLog" "logMean" logMean
        positive "NegativeBinomialLog" "concentration" concentration
        shapes "NegativeBinomialLog" [ "logMean", logMean; "concentration", concentration ]
        NegativeBinomialLog (logMean, concentration)

    /// LKJ(η) on Cholesky factors of dimension×dimension correlation matrices (dimension ≥ 2, η > 0).
    let lkjCholesky (dimension: int) (concentration: Tensor) =
        if dimension < 2 then invalidArg "dimension" (sprintf "LKJCholesky: the dimension must be at least 2, got %d." dimension)
        positive "LKJCholesky" "concentration" concentration
        LkjCholesky (dimension, concentration)

    /// A point of the support, the image of unconstrained zeros (1 for a positive site, the identity for a
    /// Cholesky factor): the value a site that cannot be sampled gets where a model is only probed.
    let feasible (d: Distribution) : Tensor =
        let b = Constraint.bijector (support d)
        let shape = Array.append (batchShapeOf d) (eventShape d)
        Bijector.forward b (Tensor.zeros (Bijector.unconstrainedShape b shape) |> Tensor.cast (dtype d))
        |> Tensor.broadcastTo shape
