namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// How a location-scale link gets its observation scale σ.
[<RequireQualifiedAccess>]
type LinkScale =
    /// σ is a site "{name}_sigma" with this prior (BLayers' default: Exponential(1)).
    | Sampled of prior: Distribution
    /// σ is fixed: a scalar or one value per row.
    | Fixed of scale: Tensor
    /// σ = softplus(u) for a given unconstrained u (for example a learned param); no site.
    | Untransformed of u: Tensor

/// Links: the observation model of a regression, given the linear predictor ŷ (n,) or (n, 1)
/// (or (n, K) for categorical) and the data y as a vector (n,) or a column (n, 1), or None to sample
/// predictions. Each gives one log density per row. The observed site is named after the data;
/// extra parameters are sites named "{name}_...". The mean function of each link is in its doc.
[<RequireQualifiedAccess>]
module Links =

    /// Normalizes ŷ and y to one value per row (n,) (or (n, u) with a row event), checks they agree:
    /// the same shape (a column (n, 1) counts as (n,)), or a predictor with one element (an intercept-only
    /// model) that is broadcast to y. Shapes that would only broadcast by accident, such as ŷ (n,)
    /// against y (n, n), are refused.
    let private rows (link: string) (yHat: Tensor) (y: Tensor option) =
        let squeezeCol (t: Tensor) = if t.Rank = 2 && t.Shape.[1] = 1 then Tensor.reshape [| t.Shape.[0] |] t else t
        let yh = squeezeCol yHat
        match y with
        | None -> yh, None
        | Some y ->
            let yv = squeezeCol y
            if Shape.equal yh.Shape yv.Shape then yh, Some yv
            elif yh.Size = 1 && yh.Rank <= yv.Rank then Tensor.broadcastTo yv.Shape yh, Some yv
            else
                invalidArg "y" (sprintf "%s: observation shape %s does not match the predictor's shape %s; pass y as (n,) or (n, 1) with one row per predictor row (shapes are not broadcast against each other, except a one-element predictor)." link (Shape.format y.Shape) (Shape.format yHat.Shape))

    /// Observes (or samples) one value per row: rows beyond the first axis form the event.
    let private observeRows (name: string) (d: Distribution) (y: Tensor option) =
        let d = if (Dist.batchShape d).Length > 1 then Dist.toEvent ((Dist.batchShape d).Length - 1) d else d
        Model.observe name d (y |> Option.map (Tensor.cast (Dist.dtype d)))

    let private sigmaOf (name: string) (scale: LinkScale) : Model<Tensor> =
        match scale with
        | LinkScale.Sampled prior -> Model.sample (name + "_sigma") prior
        | LinkScale.Fixed s -> Model.ret s
        | LinkScale.Untransformed u -> Model.ret (Tensor.softplus u)

    /// BLayers' observation scale of the location-scale links: σ ~ Exponential(1), a site "{name}_sigma".
    let defaultSigma = LinkScale.Sampled (Exponential (Tensor.scalar 1.0))

    let private locScale (link: string) (make: Tensor -> Tensor -> Distribution) (scale: LinkScale) (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows link yHat y
        model {
            let! sigma = sigmaOf name scale
            let sigma = if sigma.Rank = 2 && sigma.Shape.[1] = 1 then Tensor.reshape [| sigma.Shape.[0] |] sigma else sigma
            return! observeRows name (make yh sigma) yv
        }

    /// y ~ Normal(ŷ, σ) with the given scale option. Mean: ŷ.
    let gaussianWith (scale: LinkScale) (name: string) (yHat: Tensor) (y: Tensor option) =
        locScale "gaussian" (fun m s -> Normal (m, s)) scale name yHat y

    /// y ~ Normal(ŷ, σ), σ ~ Exponential(1) (site "{name}_sigma"). Mean: ŷ.
    let gaussian (name: string) (yHat: Tensor) (y: Tensor option) = gaussianWith defaultSigma name yHat y

    /// y ~ LogNormal(ŷ, σ), ŷ on the log scale. Mean: exp(ŷ + σ²/2).
    let lognormalWith (scale: LinkScale) (name: string) (yHat: Tensor) (y: Tensor option) =
        locScale "lognormal" (fun m s -> LogNormal (m, s)) scale name yHat y
    let lognormal (name: string) (yHat: Tensor) (y: Tensor option) = lognormalWith defaultSigma name yHat y

    /// y ~ StudentT(df, ŷ, σ). Mean: ŷ (for df > 1).
    let studentTWith (df: float) (scale: LinkScale) (name: string) (yHat: Tensor) (y: Tensor option) =
        if not (df > 0.0) then invalidArg "df" (sprintf "studentT link: df must be positive, got %g." df)
        locScale "studentT" (fun m s -> StudentT (Tensor.fullOf m.Dtype [||] df, m, s)) scale name yHat y
    /// StudentT with df = 4 (BLayers' default).
    let studentT (name: string) (yHat: Tensor) (y: Tensor option) = studentTWith 4.0 defaultSigma name yHat y

    /// y ~ Bernoulli(logits = ŷ). Mean: σ(ŷ).
    let logit (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "logit" yHat y
        observeRows name (BernoulliLogits yh) yv

    /// y ~ Poisson(exp ŷ). Mean: exp(ŷ).
    let poisson (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "poisson" yHat y
        observeRows name (Poisson (Tensor.exp yh)) yv

    /// y ~ NegativeBinomial(mean = ŷ, concentration φ), φ ~ Exponential(rate) (site "{name}_concentration").
    /// As in BLayers, the mean is ŷ itself (identity link): ŷ must be positive. Mean: ŷ; Var = ŷ + ŷ²/φ.
    let negativeBinomialWith (rate: float) (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "negativeBinomial" yHat y
        model {
            let! phi = Model.sample (name + "_concentration") (Exponential (Tensor.scalar rate))
            return! observeRows name (NegativeBinomial (yh, phi)) yv
        }
    let negativeBinomial (name: string) (yHat: Tensor) (y: Tensor option) = negativeBinomialWith 1.0 name yHat y

    /// Ordered categories 0..K-1: P(y ≤ k) = σ(c_k − ŷ) with cutpoints c₀ ~ Normal(0, 2) (site
    /// "{name}_c0") and gaps ~ Exponential(1) (site "{name}_gaps", K−2 of them). Mean: Σ_k k·P(y = k).
    let ordinal (numClasses: int) (name: string) (yHat: Tensor) (y: Tensor option) =
        if numClasses < 2 then invalidArg "numClasses" (sprintf "ordinal link: needs at least 2 classes, got %d." numClasses)
        let yh, yv = rows "ordinal" yHat y
        model {
            let! c0 = Model.sample (name + "_c0") (Normal (Tensor.scalar 0.0, Tensor.scalar 2.0))
            let! cuts =
                if numClasses = 2 then Model.ret (Tensor.reshape [| 1 |] c0)
                else
                    model {
                        let! gaps = Model.sample (name + "_gaps") (Dist.expand [| numClasses - 2 |] (Exponential (Tensor.scalar 1.0)))
                        return Tensor.concat 0 [ Tensor.reshape [| 1 |] c0; c0 + Tensor.cumsum 0 gaps ]
                    }
            return! observeRows name (OrderedLogistic (yh, cuts)) yv
        }

    /// Zero-inflated Poisson: gate ~ Beta(1, 10) (site "{name}_gate"), rate exp(ŷ). Mean: (1 − gate)·exp(ŷ).
    let zeroInflatedPoisson (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "zeroInflatedPoisson" yHat y
        model {
            let! gate = Model.sample (name + "_gate") (Beta (Tensor.scalar 1.0, Tensor.scalar 10.0))
            return! observeRows name (ZeroInflatedPoisson (gate, Tensor.exp yh)) yv
        }

    /// Zero-inflated negative binomial: mean exp(ŷ), concentration ~ Exponential(rate) (site
    /// "{name}_concentration"), gate ~ Beta(1, 10) (site "{name}_gate"). Mean: (1 − gate)·exp(ŷ).
    let zeroInflatedNegativeBinomialWith (rate: float) (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "zeroInflatedNegativeBinomial" yHat y
        model {
            let! phi = Model.sample (name + "_concentration") (Exponential (Tensor.scalar rate))
            let! gate = Model.sample (name + "_gate") (Beta (Tensor.scalar 1.0, Tensor.scalar 10.0))
            return! observeRows name (ZeroInflatedNegativeBinomial (gate, Tensor.exp yh, phi)) yv
        }
    let zeroInflatedNegativeBinomial (name: string) (yHat: Tensor) (y: Tensor option) = zeroInflatedNegativeBinomialWith 1.0 name yHat y

    /// y in (0, 1) ~ Beta(m·φ, (1 − m)·φ) with m = σ(ŷ) and φ ~ Exponential(1) (site "{name}_phi"). Mean: σ(ŷ).
    let beta (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "beta" yHat y
        model {
            let! phi = Model.sample (name + "_phi") (Exponential (Tensor.scalar 1.0))
            // 1 − σ(ŷ) as σ(−ŷ): no loss of the upper tail (1 − σ(ŷ) is 0 for ŷ ≥ 37)
            return! observeRows name (Beta (Tensor.sigmoid yh * phi, Tensor.sigmoid (-yh) * phi)) yv
        }

    /// y ~ Gamma(k, k / μ) with μ = exp(ŷ) and shape k ~ Exponential(rate) (site "{name}_shape"). Mean: exp(ŷ).
    let gammaWith (rate: float) (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "gamma" yHat y
        model {
            let! k = Model.sample (name + "_shape") (Exponential (Tensor.scalar rate))
            return! observeRows name (Gamma (k + Tensor.zerosLike yh, k / Tensor.exp yh)) yv
        }
    let gamma (name: string) (yHat: Tensor) (y: Tensor option) = gammaWith 1.0 name yHat y

    /// y ~ Exponential(rate = exp(−ŷ)). Mean: exp(ŷ).
    let exponential (name: string) (yHat: Tensor) (y: Tensor option) =
        let yh, yv = rows "exponential" yHat y
        observeRows name (Exponential (Tensor.exp (-yh))) yv

    /// y in 0..K−1 ~ Categorical(logits = ŷ) with ŷ of shape (n, K). Mean: softmax(ŷ) (class probabilities).
    let categorical (name: string) (yHat: Tensor) (y: Tensor option) =
        if yHat.Rank <> 2 then
            invalidArg "yHat" (sprintf "categorical link: the predictor must be logits (n, K), got shape %s." (Shape.format yHat.Shape))
        let yv =
            y |> Option.map (fun y ->
                let v = if y.Rank = 2 && y.Shape.[1] = 1 then Tensor.reshape [| y.Shape.[0] |] y else y
                if not (Shape.equal v.Shape [| yHat.Shape.[0] |]) then
                    invalidArg "y" (sprintf "categorical: observation shape %s does not match the predictor's shape %s; pass one class id per row." (Shape.format y.Shape) (Shape.format yHat.Shape))
                if not v.IsTracked then
                    let k = yHat.Shape.[1]
                    let labels = Tensor.toArray (Tensor.cast Float64 v)
                    match labels |> Array.tryFindIndex (fun c -> not (c >= 0.0 && c <= float (k - 1) && c = Math.Floor c)) with
                    | Some i ->
                        invalidArg "y" (sprintf "categorical link '%s': row %d has the label %g, but labels must be the integers 0..%d (0-based) for %d classes%s." name i labels.[i] (k - 1) k
                                            (if labels |> Array.forall (fun c -> c >= 1.0 && c <= float k) then "; these look 1-based: subtract 1" else ""))
                    | None -> ()
                v)
        Model.observe name (CategoricalLogits yHat) (yv |> Option.map (Tensor.cast yHat.Dtype))
