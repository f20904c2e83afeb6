namespace FunctionalBayes

open FunctionalBayes.Tensors

/// Helpers shared by the interaction layers: data checks and contractions written as reshape + matmul.
[<RequireQualifiedAccess>]
module internal InteractionOps =

    /// Two designs must have the same number of rows.
    let sameRows (layer: string) (x: Tensor) (z: Tensor) =
        if x.Shape.[0] <> z.Shape.[0] then
            invalidArg "z" (sprintf "%s: x and z must have the same number of rows, got shapes %s and %s." layer (Shape.format x.Shape) (Shape.format z.Shape))

    /// einsum "ni,ilu->nlu": x (n, d) times theta (d, l, u) gives (n, l, u).
    let project (x: Tensor) (theta: Tensor) =
        let s = theta.Shape
        Tensor.matmul x (Tensor.reshape [| s.[0]; s.[1] * s.[2] |] theta)
        |> Tensor.reshape [| x.Shape.[0]; s.[1]; s.[2] |]

    /// The shared frame of the two low-rank layers: checks the arguments, lets `factors` sample the
    /// (d1, l, u) and (d2, l, u) factors, and returns activation(Σ_l (x·θ1)_l (z·θ2)_l), (n, u).
    let lowRank (layer: string) (x: Tensor) (z: Tensor) (lowRankDim: int) (units: int option) (activation: (Tensor -> Tensor) option)
                (factors: int[] -> int[] -> Model<Tensor * Tensor>) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt layer "units" units
        LayerCommon.positiveInt layer "lowRankDim" lowRankDim
        let x = LayerCommon.asMatrix layer "x" x
        let z = LayerCommon.asMatrix layer "z" z
        sameRows layer x z
        model {
            let! t1, t2 = factors [| x.Shape.[1]; lowRankDim; units |] [| z.Shape.[1]; lowRankDim; units |]
            return act (Tensor.sumAxes [| 1 |] false (project x t1 * project z t2))
        }

    /// The row-major flat positions i·d + j of the pairs i < j (numpy's triu_indices(d, 1) order).
    let upperPairs (d: int) =
        [| for i in 0 .. d - 1 do
             for j in i + 1 .. d - 1 -> i * d + j |]

/// Interaction designs (BLayers' pairwise_interactions and its upper-triangle variant).
[<RequireQualifiedAccess>]
module Interactions =

    /// All products x_i·z_j per row: x (n, d1), z (n, d2) (vectors are columns) give (n, d1·d2),
    /// column k = i·d2 + j (row-major).
    let pairwise (x: Tensor) (z: Tensor) : Tensor =
        let x = LayerCommon.asMatrix "Interactions.pairwise" "x" x
        let z = LayerCommon.asMatrix "Interactions.pairwise" "z" z
        InteractionOps.sameRows "Interactions.pairwise" x z
        let n, d1, d2 = x.Shape.[0], x.Shape.[1], z.Shape.[1]
        Tensor.unsqueeze 2 x * Tensor.unsqueeze 1 z |> Tensor.reshape [| n; d1 * d2 |]

    /// The products x_i·x_j for i &lt; j per row, in triu_indices(d, 1) order (row-major upper
    /// triangle): x (n, d) with d ≥ 2 gives (n, d(d−1)/2).
    let pairwiseUpper (x: Tensor) : Tensor =
        let x = LayerCommon.asMatrix "Interactions.pairwiseUpper" "x" x
        let d = x.Shape.[1]
        if d < 2 then
            invalidArg "x" (sprintf "Interactions.pairwiseUpper: x needs at least 2 columns to have pairs, got shape %s." (Shape.format x.Shape))
        pairwise x x |> Tensor.indexSelect 1 (Tensor.ofInts (InteractionOps.upperPairs d))

/// FMLayer: a factorization machine (Rendle 2010). scale (u) ~ scalePrior; theta (d, l, u) ~ coef(scale);
/// out = activation(0.5·Σ_l[(x·θ_l)² − (x²)·(θ_l²)]) = Σ_{i&lt;j} ⟨θ_i, θ_j⟩ x_i x_j, (n, u).
type FMLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), theta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "FMLayer" scalePrior
        coef.Validate "FMLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d) (a vector is one column) with factors of rank lowRankDim: output (n, units).
    member l.Call(name: string, x: Tensor, lowRankDim: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "FMLayer" "units" units
        LayerCommon.positiveInt "FMLayer" "lowRankDim" lowRankDim
        let x = LayerCommon.asMatrix "FMLayer" "x" x
        let d = x.Shape.[1]
        model {
            let! scale = Model.sample (LayerCommon.site "FMLayer" name "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! theta = Model.sample (LayerCommon.site "FMLayer" name "theta") (Dist.expand [| d; lowRankDim; units |] (l.Coef.WithScaleUnchecked scale))
            let p1 = InteractionOps.project x theta
            let p2 = InteractionOps.project (x * x) (theta * theta)
            return act (0.5 * Tensor.sumAxes [| 1 |] false (p1 * p1 - p2))
        }

/// FM3Layer: a third-order factorization machine (Blondel et al. 2016). scale (u) ~ scalePrior;
/// theta (d, l, u) ~ coef(scale); with p_k = Σ_i x_i^k θ_i^k (per l, u),
/// out = activation(Σ_l (p1³ − 3·p2·p1 + 2·p3)/6) = Σ_{i&lt;j&lt;k} Σ_l θ_il θ_jl θ_kl x_i x_j x_k, (n, u).
type FM3Layer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), theta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "FM3Layer" scalePrior
        coef.Validate "FM3Layer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d) (a vector is one column) with factors of rank lowRankDim: output (n, units).
    member l.Call(name: string, x: Tensor, lowRankDim: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "FM3Layer" "units" units
        LayerCommon.positiveInt "FM3Layer" "lowRankDim" lowRankDim
        let x = LayerCommon.asMatrix "FM3Layer" "x" x
        let d = x.Shape.[1]
        model {
            let! scale = Model.sample (LayerCommon.site "FM3Layer" name "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! theta = Model.sample (LayerCommon.site "FM3Layer" name "theta") (Dist.expand [| d; lowRankDim; units |] (l.Coef.WithScaleUnchecked scale))
            let x2 = x * x
            let t2 = theta * theta
            let p1 = InteractionOps.project x theta
            let p2 = InteractionOps.project x2 t2
            let p3 = InteractionOps.project (x2 * x) (t2 * theta)
            let terms = p1 * p1 * p1 - 3.0 * p2 * p1 + 2.0 * p3
            return act (Tensor.sumAxes [| 1 |] false terms / 6.0)
        }

/// LowRankInteractionLayer: a rank-l interaction of two designs. scale1 (u), theta1 (d1, l, u) ~ coef(scale1);
/// scale2 (u), theta2 (d2, l, u) ~ coef(scale2); out = activation(Σ_l (x·θ1)_l (z·θ2)_l) = xᵀθ1θ2ᵀz per unit, (n, u).
type LowRankInteractionLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scales ~ HalfNormal(1), thetas ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "LowRankInteractionLayer" scalePrior
        coef.Validate "LowRankInteractionLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d1) and z (n, d2) (vectors are columns): output (n, units).
    member l.Call(name: string, x: Tensor, z: Tensor, lowRankDim: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "LowRankInteractionLayer"
        InteractionOps.lowRank layer x z lowRankDim units activation (fun s1 s2 ->
            let units = [| s1.[2] |]
            model {
                let! scale1 = Model.sample (LayerCommon.site layer name "scale1") (LayerCommon.expandTo units l.ScalePrior)
                let! theta1 = Model.sample (LayerCommon.site layer name "theta1") (Dist.expand s1 (l.Coef.WithScaleUnchecked scale1))
                let! scale2 = Model.sample (LayerCommon.site layer name "scale2") (LayerCommon.expandTo units l.ScalePrior)
                let! theta2 = Model.sample (LayerCommon.site layer name "theta2") (Dist.expand s2 (l.Coef.WithScaleUnchecked scale2))
                return theta1, theta2
            })

/// InteractionLayer: explicit pairwise interactions. scale1 (u) ~ scalePrior; beta1 (D, u) ~ coef(scale1);
/// out = activation(design·beta1), (n, u), where design = Interactions.pairwise x z (D = d1·d2, column
/// k = i·d2 + j) or, with no z, Interactions.pairwiseUpper x (D = d(d−1)/2, pairs i &lt; j in row-major order).
type InteractionLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), beta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "InteractionLayer" scalePrior
        coef.Validate "InteractionLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d1) and optionally z (n, d2) (vectors are columns): output (n, units).
    member l.Call(name: string, x: Tensor, ?z: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "InteractionLayer"
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt layer "units" units
        let x = LayerCommon.asMatrix layer "x" x
        let design =
            match z with
            | Some z ->
                let z = LayerCommon.asMatrix layer "z" z
                InteractionOps.sameRows layer x z
                Interactions.pairwise x z
            | None ->
                if x.Shape.[1] < 2 then
                    invalidArg "x" (sprintf "%s: without z, x needs at least 2 columns to have pairs, got shape %s." layer (Shape.format x.Shape))
                Interactions.pairwiseUpper x
        model {
            let! scale = Model.sample (LayerCommon.site layer name "scale1") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! beta = Model.sample (LayerCommon.site layer name "beta1") (Dist.expand [| design.Shape.[1]; units |] (l.Coef.WithScaleUnchecked scale))
            return act (Tensor.matmul design beta)
        }

/// BilinearLayer: a full bilinear form. scale (u) ~ scalePrior; W (d1, d2, u) ~ coef(scale);
/// out[n, u] = activation(Σ_ij x_ni W_iju z_nj), (n, u).
type BilinearLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), W ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "BilinearLayer" scalePrior
        coef.Validate "BilinearLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d1) and z (n, d2) (vectors are columns): output (n, units).
    member l.Call(name: string, x: Tensor, z: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "BilinearLayer"
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt layer "units" units
        let x = LayerCommon.asMatrix layer "x" x
        let z = LayerCommon.asMatrix layer "z" z
        InteractionOps.sameRows layer x z
        let n, d1, d2 = x.Shape.[0], x.Shape.[1], z.Shape.[1]
        model {
            let! scale = Model.sample (LayerCommon.site layer name "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! w = Model.sample (LayerCommon.site layer name "W") (Dist.expand [| d1; d2; units |] (l.Coef.WithScaleUnchecked scale))
            // (x·W)[n, j, u] = Σ_i x_ni W_iju, then Σ_j (·) z_nj
            let xw = Tensor.matmul x (Tensor.reshape [| d1; d2 * units |] w) |> Tensor.reshape [| n; d2; units |]
            return act (Tensor.sumAxes [| 1 |] false (xw * Tensor.unsqueeze 2 z))
        }

/// LowRankBilinearLayer: a bilinear form with W = A·Bᵀ of rank l. scale (u) ~ scalePrior (shared);
/// A (d1, l, u), B (d2, l, u) ~ coef(scale); out = activation(Σ_l (x·A)_l (z·B)_l), (n, u).
type LowRankBilinearLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), A and B ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "LowRankBilinearLayer" scalePrior
        coef.Validate "LowRankBilinearLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on x (n, d1) and z (n, d2) (vectors are columns) with rank lowRankDim: output (n, units).
    member l.Call(name: string, x: Tensor, z: Tensor, lowRankDim: int, ?units: int, ?activation: Activation) : Model<Tensor> =
        let layer = "LowRankBilinearLayer"
        InteractionOps.lowRank layer x z lowRankDim units activation (fun s1 s2 ->
            model {
                let! scale = Model.sample (LayerCommon.site layer name "scale") (LayerCommon.expandTo [| s1.[2] |] l.ScalePrior)
                let coef = l.Coef.WithScaleUnchecked scale
                let! a = Model.sample (LayerCommon.site layer name "A") (Dist.expand s1 coef)
                let! b = Model.sample (LayerCommon.site layer name "B") (Dist.expand s2 coef)
                return a, b
            })
