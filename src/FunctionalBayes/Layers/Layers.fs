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
    /// Factorization machine of rank l: Σ_{i<j} ⟨θ_i, θ_j⟩ x_i x_j, (n, 1).
    let fm (name: string) (x: Tensor) (lowRankDim: int) = FMLayer.Default.Call(name, x, lowRankDim)
    /// Third-order factorization machine: Σ_{i<j<k}, (n, 1).
    let fm3 (name: string) (x: Tensor) (lowRankDim: int) = FM3Layer.Default.Call(name, x, lowRankDim)
    /// xᵀ θ1 θ2ᵀ z, (n, 1).
    let lowRankInteraction (name: string) (x: Tensor) (z: Tensor) (lowRankDim: int) = LowRankInteractionLayer.Default.Call(name, x, z, lowRankDim)
    /// All pairwise products x_i z_j with their own coefficients, (n, 1).
    let interaction (name: string) (x: Tensor) (z: Tensor) = InteractionLayer.Default.Call(name, x, z)
    /// Σ_ij x_i W_ij z_j, (n, 1).
    let bilinear (name: string) (x: Tensor) (z: Tensor) = BilinearLayer.Default.Call(name, x, z)
    /// Σ_l (xA)_l (zB)_l, (n, 1).
    let lowRankBilinear (name: string) (x: Tensor) (z: Tensor) (lowRankDim: int) = LowRankBilinearLayer.Default.Call(name, x, z, lowRankDim)
    /// Rows of an embedding table for integer ids, (n, embeddingDim).
    let embedding (name: string) (ids: Tensor) (numCategories: int) (embeddingDim: int) = EmbeddingLayer.Default.Call(name, ids, numCategories, embeddingDim)
    /// One random effect per category, (n, 1).
    let randomEffects (name: string) (ids: Tensor) (numCategories: int) = RandomEffectsLayer.Default.Call(name, ids, numCategories)
    /// A Gaussian random walk over ordered categories, (n, embeddingDim).
    let randomWalk (name: string) (ids: Tensor) (numCategories: int) (embeddingDim: int) = RandomWalkLayer.Default.Call(name, ids, numCategories, embeddingDim)
    /// Per-group slopes for x, (n, 1).
    let randomSlopes (name: string) (x: Tensor) (groups: Tensor) (numCategories: int) = RandomSlopesLayer.Default.Call(name, x, groups, numCategories)
    /// An AR(1) process over ordered categories, (n, 1).
    let ar1 (name: string) (ids: Tensor) (numCategories: int) = AR1Layer.Default.Call(name, ids, numCategories)
    /// Fixed-prior effects per category, (n, 1).
    let fixedEffects (name: string) (ids: Tensor) (numCategories: int) = FixedEffectsLayer.Default.Call(name, ids, numCategories)
    /// Horseshoe-prior regression (no slab), (n, 1).
    let horseshoe (name: string) (x: Tensor) = HorseshoeLayer.Default.Call(name, x)
    /// Spike-and-slab regression with a continuous Beta gate, (n, 1).
    let spikeAndSlab (name: string) (x: Tensor) = SpikeAndSlabLayer.Default.Call(name, x)
    /// A horseshoe over the pairwise products x_i x_j, i < j, (n, 1).
    let horseshoeInteraction (name: string) (x: Tensor) = HorseshoeInteractionLayer.Default.Call(name, x)
    /// A penalized B-spline of x with the given knots, (n, 1).
    let pspline (name: string) (x: Tensor) (knots: float[]) = PSplineLayer.Default.Call(name, x, knots)
    /// A Hilbert-space Gaussian-process approximation with m basis functions on [-L, L], (n, 1).
    let hsgp (name: string) (x: Tensor) (L: float) (m: int) = HSGPLayer.Default.Call(name, x, L, m)
    /// Self-attention over the features of x, (n, 1).
    let attention (name: string) (x: Tensor) = AttentionLayer.Default.Call(name, x)
    /// Regression with a mixture prior (Normal and Laplace) on the coefficients, (n, 1).
    let mixture (name: string) (x: Tensor) = MixtureLayer.Default.Call(name, x)
