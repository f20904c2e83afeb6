namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Gaussian-process covariance functions as Stan writes them (gp_exp_quad_cov, gp_matern32_cov,
/// gp_matern52_cov, gp_periodic_cov): differentiable in the inputs and the hyperparameters, for models written with
/// model { }. Inputs are [N] (one feature) or [N, D]; the result is the [N1, N2] cross-covariance.
[<RequireQualifiedAccess>]
module Gp =

    let private features (what: string) (x: Tensor) =
        match x.Rank with
        | 1 -> Tensor.unsqueeze -1 x
        | 2 -> x
        | r -> invalidArg "x" (sprintf "Gp.%s: inputs must be [N] or [N, D], got rank %d (shape %s)." what r (Shape.format x.Shape))

    /// Squared Euclidean distances between the rows of x1 [N1(, D)] and x2 [N2(, D)]: [N1, N2].
    let squaredDistances (x1: Tensor) (x2: Tensor) : Tensor =
        let a = features "squaredDistances" x1
        let b = features "squaredDistances" x2
        if a.Shape.[1] <> b.Shape.[1] then
            invalidArg "x2" (sprintf "Gp.squaredDistances: inputs have %d and %d features." a.Shape.[1] b.Shape.[1])
        let diff = Tensor.unsqueeze 1 a - Tensor.unsqueeze 0 b
        Tensor.sumAxes [| -1 |] false (diff * diff)

    /// √d² with a zero gradient at d² = 0 (where the square root's derivative is infinite): Matérn
    /// kernels are differentiable there (their derivative in d vanishes at 0).
    let private distance (d2: Tensor) =
        let zero = Tensor.leScalar d2 0.0
        Tensor.where zero (Tensor.zerosLike d2) (Tensor.sqrt (Tensor.where zero (Tensor.onesLike d2) d2))

    /// α² exp(−d²/(2ρ²)) (gp_exp_quad_cov).
    let expQuad (alpha: Tensor) (rho: Tensor) (x1: Tensor) (x2: Tensor) : Tensor =
        alpha * alpha * Tensor.exp (-0.5 * squaredDistances x1 x2 / (rho * rho))

    /// α² (1 + √3 d/ρ) exp(−√3 d/ρ) (gp_matern32_cov).
    let matern32 (alpha: Tensor) (rho: Tensor) (x1: Tensor) (x2: Tensor) : Tensor =
        let r = sqrt 3.0 * distance (squaredDistances x1 x2) / rho
        alpha * alpha * (1.0 + r) * Tensor.exp (-r)

    /// α² (1 + √5 d/ρ + 5d²/(3ρ²)) exp(−√5 d/ρ) (gp_matern52_cov).
    let matern52 (alpha: Tensor) (rho: Tensor) (x1: Tensor) (x2: Tensor) : Tensor =
        let r = sqrt 5.0 * distance (squaredDistances x1 x2) / rho
        alpha * alpha * (1.0 + r + r * r / 3.0) * Tensor.exp (-r)

    /// α² exp(−2 sin²(π d/p)/ℓ²) (gp_periodic_cov: magnitude α, length scale ℓ, period p).
    let periodic (alpha: Tensor) (lengthScale: Tensor) (period: Tensor) (x1: Tensor) (x2: Tensor) : Tensor =
        let s = Tensor.sin (Math.PI * distance (squaredDistances x1 x2) / period)
        alpha * alpha * Tensor.exp (-2.0 * s * s / (lengthScale * lengthScale))

    /// K + δ·I (the jitter or noise variance on the diagonal of a square covariance).
    let addDiagonal (delta: Tensor) (k: Tensor) : Tensor =
        if k.Rank <> 2 || k.Shape.[0] <> k.Shape.[1] then
            invalidArg "k" (sprintf "Gp.addDiagonal: the covariance must be square [N, N], got %s." (Shape.format k.Shape))
        k + delta * (Tensor.eye k.Shape.[0] |> Tensor.cast k.Dtype)
