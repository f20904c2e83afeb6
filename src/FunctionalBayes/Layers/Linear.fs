namespace FunctionalBayes

open FunctionalBayes.Tensors

/// AdaptiveLayer: coefficients with a learned scale. scale (u) ~ scalePrior; beta (d, u) ~ coef(scale); out = activation(x·beta), (n, u).
type AdaptiveLayer =
    { ScalePrior: Distribution
      Coef: ScaleFamily }

    /// BLayers' defaults: scale ~ HalfNormal(1), beta ~ Normal(0, scale).
    static member Default = { ScalePrior = HalfNormal (Tensor.scalar 1.0); Coef = ScaleFamily.Normal 0.0 }

    /// Checks the prior settings; raises with the layer's name.
    static member Create(scalePrior: Distribution, coef: ScaleFamily) =
        LayerCommon.checkScalePrior "AdaptiveLayer" scalePrior
        coef.Validate "AdaptiveLayer"
        { ScalePrior = scalePrior; Coef = coef }

    /// Calls the layer on data x (n, d) (a vector is one column): output (n, units).
    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "AdaptiveLayer" "units" units
        let x = LayerCommon.asMatrix "AdaptiveLayer" "x" x
        let d = x.Shape.[1]
        model {
            let! scale = Model.sample (LayerCommon.site "AdaptiveLayer" name "scale") (LayerCommon.expandTo [| units |] l.ScalePrior)
            let! beta = Model.sample (LayerCommon.site "AdaptiveLayer" name "beta") (Dist.expand [| d; units |] (l.Coef.WithScaleUnchecked scale))
            return act (Tensor.matmul x beta)
        }

/// FixedPriorLayer: coefficients with a fixed prior. beta (d, u) ~ coef; out = activation(x·beta).
type FixedPriorLayer =
    { Coef: Distribution }

    /// BLayers' default: beta ~ Normal(0, 1).
    static member Default = { Coef = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0) }

    member l.Call(name: string, x: Tensor, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "FixedPriorLayer" "units" units
        let x = LayerCommon.asMatrix "FixedPriorLayer" "x" x
        model {
            let! beta = Model.sample (LayerCommon.site "FixedPriorLayer" name "beta") (Dist.expand [| x.Shape.[1]; units |] l.Coef)
            return act (Tensor.matmul x beta)
        }

/// InterceptLayer: beta (1, u) ~ coef; out = activation(beta), (1, u), which broadcasts over rows.
type InterceptLayer =
    { Coef: Distribution }

    /// BLayers' default: beta ~ Normal(0, 1).
    static member Default = { Coef = Normal (Tensor.scalar 0.0, Tensor.scalar 1.0) }

    member l.Call(name: string, ?units: int, ?activation: Activation) : Model<Tensor> =
        let units = defaultArg units 1
        let act = defaultArg activation id
        LayerCommon.positiveInt "InterceptLayer" "units" units
        model {
            let! beta = Model.sample (LayerCommon.site "InterceptLayer" name "beta") (Dist.expand [| 1; units |] l.Coef)
            return act beta
        }
