namespace FunctionalBayes.Tensors
// TEMPORARY placeholder until the accurate implementation lands.
open System
[<RequireQualifiedAccess>]
module internal Special =
    let log1p (x: float) = Math.Log(1.0 + x)
    let expm1 (x: float) = Math.Exp x - 1.0
    let lgamma (x: float) = Double.NaN + 0.0 * x
    let digamma (x: float) = Double.NaN + 0.0 * x
    let trigamma (x: float) = Double.NaN + 0.0 * x
    let erf (x: float) = Double.NaN + 0.0 * x
    let erfc (x: float) = Double.NaN + 0.0 * x
    let normalCdf (x: float) = Double.NaN + 0.0 * x
    let softplus (x: float) = Math.Max(x, 0.0) + Math.Log(1.0 + Math.Exp(-Math.Abs x))
    let sigmoid (x: float) = 1.0 / (1.0 + Math.Exp(-x))
