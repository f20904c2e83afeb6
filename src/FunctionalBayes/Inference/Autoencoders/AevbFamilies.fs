namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// How draws of a family carry gradients to its parameters.
[<RequireQualifiedAccess>]
type GradientEstimator =
    /// loc + scale·ε with parameter-free noise ε.
    | LocationScale
    /// The quantile function at a uniform draw, differentiated in the parameters.
    | InverseCdf
    /// A reparameterized base distribution pushed through a bijector.
    | Composed
    /// The library distribution's reparameterized sampler (Dist.rsample).
    | Pathwise
    /// No reparameterization: the score function (REINFORCE) with a moving-average baseline.
    | Reinforce

/// A parametric family for AEVB's observation and variational distributions, as a function of named
/// parameter tensors: the encoder's (or decoder's) outputs must be exactly `Params`.
[<NoEquality; NoComparison>]
type Family =
    { Name: string
      /// The parameter names the network must return.
      Params: string list
      /// Element-wise log-density of x (parameters and x broadcast).
      LogProb: Map<string, Tensor> -> Tensor -> Tensor
      /// Draws of shape sampleShape @ (broadcast parameter shape); differentiable in the parameters
      /// unless the estimator is Reinforce.
      Sample: RngKey -> int[] -> Map<string, Tensor> -> Tensor
      /// The mean (the observation mean the decoder exports, the encoder's point estimate).
      Mean: Map<string, Tensor> -> Tensor
      /// The gradient estimator for these parameter values (selected from the distribution).
      Estimator: Map<string, Tensor> -> GradientEstimator
      /// The library distribution, when there is one, so the KL registry can find a closed form.
      ToDistribution: (Map<string, Tensor> -> Distribution) option
      /// Why the family cannot be a variational (latent) family, if it cannot.
      NotLatent: string option }

/// The built-in families and the ways to make more (inverse CDF, composition through a bijector, any
/// library Distribution).
[<RequireQualifiedAccess>]
module Family =

    /// A parameter by name; a clear error when the network did not return it.
    let param (family: string) (ps: Map<string, Tensor>) (name: string) =
        match ps.TryFind name with
        | Some t -> t
        | None ->
            invalidArg "params" (sprintf "%s: parameter '%s' is missing; given keys [%s]." family name (String.Join(", ", ps |> Map.keys)))

    let private outShape (sampleShape: int[]) (ts: Tensor list) =
        Array.append sampleShape (ts |> List.map (fun t -> t.Shape) |> List.reduce (Shape.broadcast "Family.sample"))

    let private clampOpen (dt: Dtype) (t: Tensor) =
        let e = if dt = Float32 then 1e-6 else 1e-12
        Tensor.clamp e (1.0 - e) t

    let private constantEstimator (e: GradientEstimator) = fun (_: Map<string, Tensor>) -> e

    /// Standard noise from uniforms mapped by a float64 function.
    let private viaUniform (f: float -> float) = fun (key: RngKey) (shape: int[]) -> Rng.uniform key shape |> Tensor.toArray |> Array.map f |> Tensor.create shape

    let private lgammaF (x: float) = Tensor.lgamma (Tensor.scalar x) |> Tensor.toScalar

    let private locScale (name: string) (std: RngKey -> int[] -> Tensor) (logStd: Tensor -> Tensor) (toDist: (Tensor -> Tensor -> Distribution) option) : Family =
        let p = param name
        { Name = name
          Params = [ "loc"; "scale" ]
          LogProb = fun ps x ->
            let loc = p ps "loc"
            let scale = p ps "scale"
            logStd ((x - loc) / scale) - Tensor.log scale
          Sample = fun key sampleShape ps ->
            let loc = p ps "loc"
            let scale = p ps "scale"
            loc + scale * (std key (outShape sampleShape [ loc; scale ]) |> Tensor.cast loc.Dtype)
          Mean = fun ps -> p ps "loc" + Tensor.zerosLike (p ps "scale")
          Estimator = constantEstimator GradientEstimator.LocationScale
          ToDistribution = toDist |> Option.map (fun f -> fun ps -> f (p ps "loc") (p ps "scale"))
          NotLatent = None }

    let private halfLog2Pi = 0.5 * log (2.0 * Math.PI)

    /// Normal(loc, scale): parameters "loc", "scale".
    let normal : Family =
        locScale "Normal" Rng.normal
                 (fun z -> -0.5 * z * z - halfLog2Pi) (Some (fun l s -> Normal (l, s)))

    /// Laplace(loc, scale): parameters "loc", "scale".
    let laplace : Family =
        locScale "Laplace" (viaUniform <| fun u -> let v = u - 0.5 in -(float (sign v)) * log (1.0 - 2.0 * abs v))
                 (fun z -> -(Tensor.abs z) - log 2.0) (Some (fun l s -> Laplace (l, s)))

    /// Logistic(loc, scale): parameters "loc", "scale".
    let logistic : Family =
        locScale "Logistic" (viaUniform <| fun u -> log u - log (1.0 - u))
                 (fun z -> -z - 2.0 * Tensor.softplus (-z)) (Some (fun l s -> Logistic (l, s)))

    /// Cauchy(loc, scale) by its quantile loc + scale·tan(π(u − ½)): parameters "loc", "scale".
    let cauchy : Family =
        { locScale "Cauchy" (viaUniform <| fun u -> tan (Math.PI * (u - 0.5))) (fun z -> -(Tensor.log1p (z * z)) - log Math.PI)
                   (Some (fun l s -> Cauchy (l, s)))
            with Estimator = constantEstimator GradientEstimator.InverseCdf
                 Mean = fun ps -> Tensor.fullLike (param "Cauchy" ps "loc" + param "Cauchy" ps "scale") Double.NaN }

    /// Student's t with fixed degrees of freedom: parameters "loc", "scale" (location-scale draws).
    let studentTFixedDf (df: float) : Family =
        if not (df > 0.0) then invalidArg "df" (sprintf "Family.studentTFixedDf: df must be positive, got %g." df)
        let c = lgammaF ((df + 1.0) / 2.0) - lgammaF (df / 2.0) - 0.5 * log (df * Math.PI)
        // t = ε / √(χ²_df / df) with χ²_df = 2·Gamma(df/2): parameter-free noise.
        let std (key: RngKey) (shape: int[]) =
            let k1, k2 = Rng.split key
            let chi2 = 2.0 * Rng.gamma k2 (Tensor.full shape (df / 2.0))
            Rng.normal k1 shape / Tensor.sqrt (chi2 / df)
        let f = locScale (sprintf "StudentT(df=%g)" df) std
                         (fun z -> c - (df + 1.0) * 0.5 * Tensor.log1p (z * z / df)) None
        { f with
            ToDistribution = Some (fun ps -> let l = param f.Name ps "loc" in StudentT (Tensor.fullLike l df, l, param f.Name ps "scale"))
            Mean = fun ps -> if df > 1.0 then f.Mean ps else Tensor.fullLike (f.Mean ps) Double.NaN }

    /// Student's t with the degrees of freedom as a network output: parameters "df", "loc", "scale".
    /// An observation family (its df has no reparameterized sampler; for a latent use studentTFixedDf).
    let studentT : Family =
        let p = param "StudentT"
        let dist ps = StudentT (p ps "df", p ps "loc", p ps "scale")
        { Name = "StudentT"
          Params = [ "df"; "loc"; "scale" ]
          LogProb = fun ps x -> Dist.logProb (dist ps) x
          Sample = fun key sampleShape ps -> Dist.sample key sampleShape (dist ps)
          Mean = fun ps -> Dist.mean (dist ps)
          Estimator = constantEstimator GradientEstimator.Pathwise
          ToDistribution = Some dist
          NotLatent = Some "StudentT with a learned df has no reparameterized sampler in df; use Family.studentTFixedDf for a latent." }

    /// Bernoulli with logits, for binary or [0, 1] data (the cross-entropy x·l − softplus(l)):
    /// parameter "logits". As a latent it uses REINFORCE.
    let bernoulli : Family =
        let p = param "Bernoulli"
        { Name = "Bernoulli"
          Params = [ "logits" ]
          LogProb = fun ps x -> let l = p ps "logits" in x * l - Tensor.softplus l
          Sample = fun key sampleShape ps ->
            let l = p ps "logits"
            let s = outShape sampleShape [ l ]
            Tensor.lt (Rng.uniform key s |> Tensor.cast l.Dtype) (Tensor.sigmoid (Tensor.detach l)) |> Tensor.cast l.Dtype
          Mean = fun ps -> Tensor.sigmoid (p ps "logits")
          Estimator = constantEstimator GradientEstimator.Reinforce
          ToDistribution = Some (fun ps -> BernoulliLogits (p ps "logits"))
          NotLatent = None }

    /// A categorical latent with logits over the last axis, drawn as one-hot vectors (so a decoder can
    /// read them): parameter "logits". REINFORCE.
    let categorical : Family =
        let p = param "Categorical"
        { Name = "Categorical"
          Params = [ "logits" ]
          LogProb = fun ps x -> x * Tensor.logSoftmax -1 (p ps "logits")
          Sample = fun key sampleShape ps ->
            let l = Tensor.detach (p ps "logits")
            let k = l.Shape.[l.Rank - 1]
            let lb = Tensor.broadcastTo (Array.append sampleShape l.Shape) l
            let idx = Rng.categorical key lb |> Tensor.toInts
            let oh = Array.zeroCreate (idx.Length * k)
            idx |> Array.iteri (fun i c -> oh.[i * k + c] <- 1.0)
            Tensor.create lb.Shape oh |> Tensor.cast l.Dtype
          Mean = fun ps -> Tensor.softmax -1 (p ps "logits")
          Estimator = constantEstimator GradientEstimator.Reinforce
          ToDistribution = Some (fun ps -> CategoricalLogits (p ps "logits"))
          NotLatent = None }

    /// A family from its quantile function Q(u; params) (differentiable in the parameters) and its
    /// log-density: inverse-CDF reparameterization. `quantile` gets u ∈ (0, 1) in the parameters' dtype.
    let inverseCdf (name: string) (paramNames: string list) (quantile: Map<string, Tensor> -> Tensor -> Tensor)
                   (logProb: Map<string, Tensor> -> Tensor -> Tensor) (mean: Map<string, Tensor> -> Tensor) : Family =
        { Name = name
          Params = paramNames
          LogProb = logProb
          Sample = fun key sampleShape ps ->
            let ts = paramNames |> List.map (param name ps)
            let dt = ts.Head.Dtype
            let u = Rng.uniform key (outShape sampleShape ts) |> Tensor.cast dt |> clampOpen dt
            quantile ps u
          Mean = mean
          Estimator = constantEstimator GradientEstimator.InverseCdf
          ToDistribution = None
          NotLatent = None }

    /// Exponential(rate) by its quantile −log(1 − u)/rate: parameter "rate".
    let exponential : Family =
        let p = param "Exponential"
        { inverseCdf "Exponential" [ "rate" ] (fun ps u -> -(Tensor.log1p (-u)) / p ps "rate")
                     (fun ps x -> let r = p ps "rate" in Tensor.log r - r * x) (fun ps -> 1.0 / p ps "rate")
            with ToDistribution = Some (fun ps -> Exponential (p ps "rate")) }

    /// Gumbel(loc, scale) by its quantile loc − scale·log(−log u): parameters "loc", "scale".
    let gumbel : Family =
        let p = param "Gumbel"
        inverseCdf "Gumbel" [ "loc"; "scale" ]
            (fun ps u -> p ps "loc" - p ps "scale" * Tensor.log (-(Tensor.log u)))
            (fun ps x ->
                let s = p ps "scale"
                let z = (x - p ps "loc") / s
                -(z + Tensor.exp (-z)) - Tensor.log s)
            (fun ps -> p ps "loc" + 0.5772156649015329 * p ps "scale")

    /// Weibull(scale λ, concentration k) by its quantile λ·(−log(1 − u))^(1/k): parameters "scale",
    /// "concentration".
    let weibull : Family =
        let p = param "Weibull"
        inverseCdf "Weibull" [ "scale"; "concentration" ]
            (fun ps u -> p ps "scale" * Tensor.pow (-(Tensor.log1p (-u))) (1.0 / p ps "concentration"))
            (fun ps x ->
                let lam = p ps "scale"
                let k = p ps "concentration"
                let pos = Tensor.gtScalar x 0.0
                let safe = Tensor.where pos x (Tensor.onesLike x)
                let lp = Tensor.log k - Tensor.log lam + (k - 1.0) * (Tensor.log safe - Tensor.log lam) - Tensor.pow (safe / lam) k
                Tensor.where pos lp (Tensor.fullLike lp Double.NegativeInfinity))
            (fun ps -> p ps "scale" * Tensor.exp (Tensor.lgamma (1.0 + 1.0 / p ps "concentration")))

    /// Kumaraswamy(a, b) on (0, 1) by its quantile (1 − (1 − u)^(1/b))^(1/a): parameters "a", "b".
    let kumaraswamy : Family =
        let p = param "Kumaraswamy"
        inverseCdf "Kumaraswamy" [ "a"; "b" ]
            (fun ps u ->
                let dt = u.Dtype
                Tensor.pow (1.0 - Tensor.pow (1.0 - u) (1.0 / p ps "b")) (1.0 / p ps "a") |> clampOpen dt)
            (fun ps x ->
                let a = p ps "a"
                let b = p ps "b"
                Tensor.log a + Tensor.log b + (a - 1.0) * Tensor.log x + (b - 1.0) * Tensor.log1p (-(Tensor.pow x a)))
            (fun ps ->
                // E[X] = b·B(1 + 1/a, b)
                let a = p ps "a"
                let b = p ps "b"
                let ia = 1.0 + 1.0 / a
                b * Tensor.exp (Tensor.lgamma ia + Tensor.lgamma b - Tensor.lgamma (ia + b)))

    /// A base family pushed through a bijector (y = f(x)): log q(y) = log q_base(f⁻¹ y) − log|f'(f⁻¹ y)|.
    /// Reparameterized when the base is; its mean is a Monte Carlo average of 512 draws from a fixed key.
    let transformed (name: string) (baseFamily: Family) (bijector: Bijector) : Family =
        { Name = name
          Params = baseFamily.Params
          LogProb = fun ps y ->
            let x = Bijector.inverse bijector y
            baseFamily.LogProb ps x - Bijector.logAbsDetJacobian bijector x
          Sample = fun key sampleShape ps -> Bijector.forward bijector (baseFamily.Sample key sampleShape ps)
          Mean = fun ps ->
            Tensor.meanAxes [| 0 |] false (Bijector.forward bijector (baseFamily.Sample (Rng.key 0x5EEDUL) [| 512 |] ps))
          Estimator = fun ps ->
            match baseFamily.Estimator ps with
            | GradientEstimator.Reinforce -> GradientEstimator.Reinforce
            | GradientEstimator.LocationScale | GradientEstimator.InverseCdf | GradientEstimator.Composed
            | GradientEstimator.Pathwise -> GradientEstimator.Composed
          ToDistribution = None
          NotLatent = baseFamily.NotLatent }

    /// LogNormal = exp(Normal(loc, scale)): parameters "loc", "scale" (KL with a LogNormal prior is analytic).
    let logNormal : Family =
        let f = transformed "LogNormal" normal Bijector.Exp
        let p = param "LogNormal"
        { f with
            Mean = fun ps -> let s = p ps "scale" in Tensor.exp (p ps "loc" + 0.5 * s * s)
            ToDistribution = Some (fun ps -> LogNormal (p ps "loc", p ps "scale")) }

    /// The logit-normal on (0, 1) = sigmoid(Normal(loc, scale)): parameters "loc", "scale".
    let logitNormal : Family = transformed "LogitNormal" normal (Bijector.Sigmoid (0.0, 1.0))

    /// Any library distribution built from the named parameters. The estimator is selected from the
    /// distribution: its reparameterized sampler where it has one (Dist.hasRsample), REINFORCE otherwise.
    let ofDistribution (name: string) (paramNames: string list) (build: Map<string, Tensor> -> Distribution) : Family =
        { Name = name
          Params = paramNames
          LogProb = fun ps x -> Dist.logProb (build ps) x
          Sample = fun key sampleShape ps ->
            let d = build ps
            if Dist.hasRsample d then Dist.rsample key sampleShape d else Dist.sample key sampleShape d
          Mean = fun ps -> Dist.mean (build ps)
          Estimator = fun ps -> if Dist.hasRsample (build ps) then GradientEstimator.Pathwise else GradientEstimator.Reinforce
          ToDistribution = Some build
          NotLatent = None }
