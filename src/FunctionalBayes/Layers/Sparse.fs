namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Shared pieces of the sparse (horseshoe) layers.
[<RequireQualifiedAccess>]
module internal SparseCommon =

    let private positiveFinite (layer: string) (what: string) (v: float) =
        if not (v > 0.0) || Double.IsInfinity v then
            invalidArg what (sprintf "%s: %s must be positive and finite, got %g." layer what v)

    /// Checks a horseshoe's settings, naming the layer.
    let checkHorseshoe (layer: string) (slabScale: float option) (slabDf: float) (tau0: float) (coef: ScaleFamily) =
        slabScale |> Option.iter (positiveFinite layer "slabScale")
        positiveFinite layer "slabDf" slabDf
        positiveFinite layer "tau0" tau0
        coef.Validate layer

    /// The horseshoe over a design matrix z (n, d): tau (u), scale (d, u), c2 () with a slab, beta (d, u); z·beta.
    let horseshoe (layer: string) (name: string) (slabScale: float option) (slabDf: float) (tau0: float)
                  (coef: ScaleFamily) (z: Tensor) (units: int) (act: Activation) : Model<Tensor> =
        let d = z.Shape.[1]
        let site = LayerCommon.site layer name
        model {
            let! tau = Model.sample (site "tau") (Dist.expand [| units |] (HalfCauchy (Tensor.scalar tau0)))
            let! lam = Model.sample (site "scale") (Dist.expand [| d; units |] (HalfCauchy (Tensor.scalar 1.0)))
            let! s =
                match slabScale with
                | None -> Model.ret (tau * lam)
                | Some ss ->
                    model {
                        let half = 0.5 * slabDf
                        let! c2 = Model.sample (site "c2") (InverseGamma (Tensor.scalar half, Tensor.scalar (half * ss * ss)))
                        let lam2 = lam * lam
                        return tau * Tensor.sqrt (c2 * lam2 / (c2 + tau * tau * lam2))
                    }
            let! beta = Model.sample (site "beta") (LayerCommon.expandTo [| d; units |] (coef.WithScaleUnchecked s))
            return act (Tensor.matmul z beta)
        }

/// HorseshoeLayer: a (regularized) horseshoe prior. tau (u) ~ HalfCauchy(tau0); scale λ (d, u) ~ HalfCauchy(1);
/// with a slab, c2 () ~ InverseGamma(df/2, df/2·slab²) and s = τ·sqrt(c2λ²/(c2 + τ²λ²)), else s = τ·λ;
/// beta (d, u) ~ coef(s); out = activation(x·beta), (n, u).
type HorseshoeLayer =
    { /// The slab scale of the regularized horseshoe; None for the plain horseshoe.
      SlabScale: float option
      /// The slab's degrees of freedom.
      SlabDf: float
      /// The scale of tau's HalfCauchy prior (the global shrinkage).
      Tau0: float
      /// The coefficient family, taken at the effective scale s.
      Coef: ScaleFamily }

    /// BLayers' defaults: no slab, slab df 4, tau0 1, beta ~ Normal(0, s).
    static member Default = { SlabScale = None; SlabDf = 4.0; Tau0 = 1.0; Coef = ScaleFamily.Normal 0.0 }

    /// Checks the settings (positive slab scale, df and tau0; a valid coefficient family); raises with the layer's name.
    static member Create(?slabScale: float, ?slabDf: float, ?tau0: float, ?coef: ScaleFamily) =
        let d = HorseshoeLayer.Default
        let l = { SlabScale = slabScale; SlabDf = defaultArg slabDf d.SlabDf; Tau0 = defaultArg tau0 d.Tau0; Coef = defaultArg coef d.Coef }
        SparseCommon.checkHorseshoe "HorseshoeLayer" l.SlabScale l.SlabDf l.Tau0 l.Coef
        l

    /// Calls the layer on data x (n, d) (a vector is one column): output (n, units).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "HorseshoeLayer" "units" units
        let x = LayerCommon.asMatrix "HorseshoeLayer" "x" x
        SparseCommon.horseshoe "HorseshoeLayer" name l.SlabScale l.SlabDf l.Tau0 l.Coef x units act

/// SpikeAndSlabLayer: a continuous spike-and-slab. z (d, u) ~ Beta(α, β); beta (d, u) ~ coef;
/// out = activation(x·(z ⊙ beta)), (n, u).
type SpikeAndSlabLayer =
    { /// The gate's Beta prior: first shape parameter.
      Alpha: float
      /// The gate's Beta prior: second shape parameter.
      Beta: float
      /// The fixed coefficient prior (scalar batch and event shape).
      Coef: Distribution }

    /// BLayers' defaults: z ~ Beta(0.5, 0.5), beta ~ Normal(0, 1).
    static member Default = { Alpha = 0.5; Beta = 0.5; Coef = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0) }

    /// Checks the settings (positive α and β; a scalar coefficient prior); raises with the layer's name.
    static member Create(?alpha: float, ?beta: float, ?coef: Distribution) =
        let d = SpikeAndSlabLayer.Default
        let l = { Alpha = defaultArg alpha d.Alpha; Beta = defaultArg beta d.Beta; Coef = defaultArg coef d.Coef }
        for what, v in [ "alpha", l.Alpha; "beta", l.Beta ] do
            if not (v > 0.0) || Double.IsInfinity v then
                invalidArg what (sprintf "SpikeAndSlabLayer: %s must be positive and finite, got %g." what v)
        if (Dist.batchShape l.Coef).Length > 0 || (Dist.eventShape l.Coef).Length > 0 then
            invalidArg "coef" (sprintf "SpikeAndSlabLayer: the coefficient prior must be scalar, got %s with batch shape %s and event shape %s."
                                 (Dist.name l.Coef) (Shape.format (Dist.batchShape l.Coef)) (Shape.format (Dist.eventShape l.Coef)))
        l

    /// Calls the layer on data x (n, d) (a vector is one column): output (n, units).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "SpikeAndSlabLayer" "units" units
        let x = LayerCommon.asMatrix "SpikeAndSlabLayer" "x" x
        let shape = [| x.Shape.[1]; units |]
        let site = LayerCommon.site "SpikeAndSlabLayer" name
        model {
            let! z = Model.sample (site "z") (Dist.expand shape (Beta (Tensor.scalar l.Alpha, Tensor.scalar l.Beta)))
            let! beta = Model.sample (site "beta") (Dist.expand shape l.Coef)
            return act (Tensor.matmul x (z * beta))
        }

/// HorseshoeInteractionLayer: a horseshoe over the pairwise products x_i·x_j, i &lt; j (row-major upper
/// triangle, p = d(d-1)/2 columns). tau (u), scale (p, u), c2 () with a slab, beta (p, u); output (n, u).
type HorseshoeInteractionLayer =
    { /// The slab scale of the regularized horseshoe; None for the plain horseshoe.
      SlabScale: float option
      /// The slab's degrees of freedom.
      SlabDf: float
      /// The scale of tau's HalfCauchy prior.
      Tau0: float
      /// The coefficient family, taken at the effective scale s.
      Coef: ScaleFamily }

    /// BLayers' defaults: no slab, slab df 4, tau0 1, beta ~ Normal(0, s).
    static member Default = { SlabScale = None; SlabDf = 4.0; Tau0 = 1.0; Coef = ScaleFamily.Normal 0.0 }

    /// Checks the settings (positive slab scale, df and tau0; a valid coefficient family); raises with the layer's name.
    static member Create(?slabScale: float, ?slabDf: float, ?tau0: float, ?coef: ScaleFamily) =
        let d = HorseshoeInteractionLayer.Default
        let l = { SlabScale = slabScale; SlabDf = defaultArg slabDf d.SlabDf; Tau0 = defaultArg tau0 d.Tau0; Coef = defaultArg coef d.Coef }
        SparseCommon.checkHorseshoe "HorseshoeInteractionLayer" l.SlabScale l.SlabDf l.Tau0 l.Coef
        l

    /// Calls the layer on data x (n, d), d ≥ 2: output (n, units).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "HorseshoeInteractionLayer" "units" units
        let x = LayerCommon.asMatrix "HorseshoeInteractionLayer" "x" x
        if x.Shape.[1] < 2 then
            invalidArg "x" (sprintf "HorseshoeInteractionLayer: x needs at least 2 columns to form pairs, got shape %s." (Shape.format x.Shape))
        SparseCommon.horseshoe "HorseshoeInteractionLayer" name l.SlabScale l.SlabDf l.Tau0 l.Coef (Interactions.pairwiseUpper x) units act
