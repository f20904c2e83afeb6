namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// The shared body of the embedding, random-effects and random-walk layers.
[<RequireQualifiedAccess>]
module internal CategoryTable =
    /// scale () ~ scalePrior; theta (c, width) ~ coef(scale); returns transform(theta)[ids], (n, width).
    let lookup (layer: string) (name: string) (scalePrior: Distribution) (coef: ScaleFamily) (x: Tensor) (numCategories: int) (width: int) (transform: Tensor -> Tensor) : Model<Tensor> =
        LayerCommon.positiveInt layer "numCategories" numCategories
        LayerCommon.positiveInt layer "embeddingDim" width
        let ids = LayerCommon.asIndices layer "ids" numCategories x
        model {
            let! scale = Model.sample (LayerCommon.site layer name "scale") (LayerCommon.expandTo [||] scalePrior)
            let! theta = Model.sample (LayerCommon.site layer name "theta") (Dist.expand [| numCategories; width |] (coef.WithScaleUnchecked scale))
            return Tensor.indexSelect 0 ids (transform theta)
        }

/// EmbeddingLayer: a table of embeddings for category ids. scale () ~ scalePrior; theta (c, m) ~ coef(scale);
/// out = theta[ids], (n, m).
type EmbeddingLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), theta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "EmbeddingLayer" scalePrior
        coef.Validate "EmbeddingLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Looks up the embeddings of the ids x ((n,) or (n, 1), integers in 0..numCategories−1): output (n, embeddingDim).
    member l.Call(name: string, x: Tensor, numCategories: int, embeddingDim: int) : Model<Tensor> =
        CategoryTable.lookup "EmbeddingLayer" name l.ScalePrior l.Coef x numCategories embeddingDim id

/// RandomEffectsLayer: one effect per category (an embedding of size 1). scale () ~ scalePrior;
/// theta (c, 1) ~ coef(scale); out = theta[ids], (n, 1).
type RandomEffectsLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), theta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "RandomEffectsLayer" scalePrior
        coef.Validate "RandomEffectsLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Looks up the effects of the ids x ((n,) or (n, 1), integers in 0..numCategories−1): output (n, 1).
    member l.Call(name: string, x: Tensor, numCategories: int) : Model<Tensor> =
        CategoryTable.lookup "RandomEffectsLayer" name l.ScalePrior l.Coef x numCategories 1 id

/// RandomWalkLayer: m Gaussian random walks over ordered categories. scale () ~ scalePrior;
/// theta (c, m) ~ coef(scale) are the increments; out = cumsum(theta, axis 0)[ids], (n, m).
type RandomWalkLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), increments ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "RandomWalkLayer" scalePrior
        coef.Validate "RandomWalkLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Looks up the walk positions of the ids x ((n,) or (n, 1), integers in 0..numCategories−1): output (n, embeddingDim).
    member l.Call(name: string, x: Tensor, numCategories: int, embeddingDim: int) : Model<Tensor> =
        CategoryTable.lookup "RandomWalkLayer" name l.ScalePrior l.Coef x numCategories embeddingDim (Tensor.cumsum 0)

/// RandomSlopesLayer: partially pooled group-specific slopes. scale (d, u) ~ scalePrior;
/// beta (c, d, u) ~ Normal(0, scale); out[n, u] = activation(Σ_d x_nd · beta[g_n, d, u]), (n, u).
type RandomSlopesLayer =
    { ScalePrior: Distribution }

    /// BLayers' default: scale ~ HalfNormal(1).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0) }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution) =
        LayerCommon.checkScalePrior "RandomSlopesLayer" scalePrior
        { ScalePrior = scalePrior }

    /// Calls the layer on x (n, d) (a vector is one column) and group ids ((n,) or (n, 1), integers in
    /// 0..numCategories−1): output (n, units).
    member l.Call(name: string, x: Tensor, groups: Tensor, numCategories: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "RandomSlopesLayer"
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt layer "units" units
        LayerCommon.positiveInt layer "numCategories" numCategories
        let x = LayerCommon.asMatrix layer "x" x
        let ids = LayerCommon.asIndices layer "groups" numCategories groups
        if ids.Size <> x.Shape.[0] then
            invalidArg "groups" (sprintf "%s: groups must hold one id per row of x, got shapes %s (groups) and %s (x)." layer (Shape.format groups.Shape) (Shape.format x.Shape))
        let d = x.Shape.[1]
        model {
            let! scale = Model.sample (LayerCommon.site layer name "scale") (LayerCommon.expandTo [| d; units |] l.ScalePrior)
            let! beta = Model.sample (LayerCommon.site layer name "beta") (Dist.expand [| numCategories; d; units |] (Normal (Tensor.fullOf scale.Dtype [||] 0.0, scale)))
            let rowBeta = Tensor.indexSelect 0 ids beta // (n, d, u)
            return act (Tensor.sumAxes [| 1 |] false (Tensor.unsqueeze 2 x * rowBeta))
        }

/// AR1Layer: stationary zero-mean AR(1) states over equally spaced time slots, independently per unit.
/// rho_raw (u) ~ Beta(a, a), rho = 2·rho_raw − 1 (a deterministic site); scale σ (u) ~ scalePrior;
/// θ₀ ~ N(0, σ/√(1−ρ²)), θ_t = ρθ_{t−1} + σε_t, so Cov(θ_t, θ_s) = σ²ρ^|t−s|/(1−ρ²); out = activation(θ[ids]), (n, u).
/// Centered (default): the states are one site theta ~ MultivariateNormal(0, L) over time, of shape (u, c)
/// (the event axis is time, so the site is the transpose of the (c, u) state table), with the exact
/// Cholesky factor L[t, s] = ρ^(t−s)·s_s (t ≥ s), s_0 = σ/√(1−ρ²), s_s = σ. Noncentered: z (c, u) ~ N(0, 1)
/// and θ₀ = s_0·z₀, θ_t = ρθ_{t−1} + σz_t.
type AR1Layer =
    { ScalePrior: Distribution
      RhoConcentration: float
      Noncentered: bool }

    /// BLayers' defaults: σ ~ HalfNormal(1), a = 2, centered states.
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); RhoConcentration = 2.0; Noncentered = false }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, ?rhoConcentration: float, ?noncentered: bool) =
        let a = defaultArg rhoConcentration 2.0
        LayerCommon.checkScalePrior "AR1Layer" scalePrior
        if Double.IsNaN a || Double.IsInfinity a || a <= 0.0 then
            invalidArg "rhoConcentration" (sprintf "AR1Layer: rhoConcentration must be finite and positive, got %g." a)
        { ScalePrior = scalePrior; RhoConcentration = a; Noncentered = defaultArg noncentered false }

    /// The Cholesky factor (u, c, c) of the AR(1) covariance over c slots, from rho (u), σ (u) and s_0 (u).
    static member internal CholeskyFactor(c: int, rho: Tensor, scale: Tensor, initialScale: Tensor) : Tensor =
        let u = rho.Shape.[0]
        // powers ρ^k for k = 0..c−1: (c, u)
        let powers =
            let ps = Array.zeroCreate<Tensor> c
            ps.[0] <- Tensor.onesLike rho
            for k in 1 .. c - 1 do
                ps.[k] <- ps.[k - 1] * rho
            Tensor.stack 0 ps
        let lags = Tensor.ofInts [| for t in 0 .. c - 1 do for s in 0 .. c - 1 -> max (t - s) 0 |]
        let lower = Tensor.create [| c; c; 1 |] [| for t in 0 .. c - 1 do for s in 0 .. c - 1 -> if t >= s then 1.0 else 0.0 |]
        let colScales =
            if c = 1 then Tensor.unsqueeze 0 initialScale
            else Tensor.concat 0 [ Tensor.unsqueeze 0 initialScale; Tensor.broadcastTo [| c - 1; u |] (Tensor.unsqueeze 0 scale) ]
        let l3 = (Tensor.indexSelect 0 lags powers |> Tensor.reshape [| c; c; u |]) * lower * Tensor.unsqueeze 0 colScales
        Tensor.permute [| 2; 0; 1 |] l3

    /// Looks up the states of the time slots x ((n,) or (n, 1), integers in 0..numCategories−1): output (n, units).
    member l.Call(name: string, x: Tensor, numCategories: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "AR1Layer"
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt layer "units" units
        LayerCommon.positiveInt layer "numCategories" numCategories
        let ids = LayerCommon.asIndices layer "ids" numCategories x
        let c = numCategories
        let a = Tensor.scalar l.RhoConcentration
        model {
            let! raw = Model.sample (LayerCommon.site layer name "rho_raw") (Dist.expand [| units |] (Beta (a, a)))
            let! rho = Model.deterministic (LayerCommon.site layer name "rho") (2.0 * raw - 1.0)
            let! scale = Model.sample (LayerCommon.site layer name "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let initialScale = scale / Tensor.sqrt ((1.0 - rho) * (1.0 + rho))
            let! states =
                if l.Noncentered then
                    model {
                        let! z = Model.sample (LayerCommon.site layer name "z") (Dist.expand [| c; units |] (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)))
                        let th = Array.zeroCreate<Tensor> c
                        th.[0] <- initialScale * Tensor.select 0 0 z
                        for t in 1 .. c - 1 do
                            th.[t] <- rho * th.[t - 1] + scale * Tensor.select 0 t z
                        return Tensor.stack 0 th
                    }
                else
                    model {
                        let chol = AR1Layer.CholeskyFactor(c, rho, scale, initialScale)
                        let! theta = Model.sample (LayerCommon.site layer name "theta") (MultivariateNormal (Tensor.zeros [| units; c |] |> Tensor.cast chol.Dtype, chol))
                        return Tensor.transpose theta
                    }
            return act (Tensor.indexSelect 0 ids states)
        }

/// FixedEffectsLayer: one coefficient per category with a fixed prior (no pooling). theta (c, 1) ~ coef;
/// out = theta[ids], (n, 1).
type FixedEffectsLayer =
    { Coef: Distribution }

    /// BLayers' default: theta ~ Normal(0, 1).
    static member Default = { Coef = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0) }

    /// Checks the prior: a distribution of scalars; raises with the layer's name.
    static member Create(coef: Distribution) =
        if Dist.eventShape coef <> [||] then
            invalidArg "coef" (sprintf "FixedEffectsLayer: the coefficient prior must have scalar events, got %s with event shape %s." (Dist.name coef) (Shape.format (Dist.eventShape coef)))
        { Coef = coef }

    /// Looks up the effects of the ids x ((n,) or (n, 1), integers in 0..numCategories−1): output (n, 1).
    member l.Call(name: string, x: Tensor, numCategories: int) : Model<Tensor> =
        let layer = "FixedEffectsLayer"
        LayerCommon.positiveInt layer "numCategories" numCategories
        let ids = LayerCommon.asIndices layer "ids" numCategories x
        model {
            let! theta = Model.sample (LayerCommon.site layer name "theta") (Dist.expand [| numCategories; 1 |] l.Coef)
            return Tensor.indexSelect 0 ids theta
        }
