namespace FunctionalBayes

open FunctionalBayes.Tensors

/// Every layer at BLayers' defaults, one unit, no activation: `let! mu = Layers.adaptive "x" x`.
/// For other priors, units or activations use the layer's record: `{ AdaptiveLayer.Default with ... }.Call(...)`.
[<RequireQualifiedAccess>]
module Layers =
    /// x·beta with beta ~ Normal(0, scale), scale ~ HalfNormal(1): (n, 1).
    let adaptive (name: string) (x: Tensor) = AdaptiveLayer.Default.Call(name, x)
    /// x·beta with beta ~ Normal(0, 1): (n, 1).
    let fixedPrior (name: string) (x: Tensor) = FixedPriorLayer.Default.Call(name, x)
    /// beta ~ Normal(0, 1): (1, 1), broadcasting over rows.
    let intercept (name: string) = InterceptLayer.Default.Call(name)
