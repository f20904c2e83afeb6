namespace FunctionalBayes.Tensors

/// Random tensors from explicit keys (JAX-style): a key is split, never mutated, and the same key
/// gives the same numbers on any thread and with any number of threads.
[<RequireQualifiedAccess>]
module Rng =

    let private f64 (shape: int[]) (a: float[]) = Tensor(RawTensor(Array.copy shape, F64 a), null, null)

    let private checkShape (what: string) (shape: int[]) =
        if shape |> Array.exists (fun d -> d < 0) then
            invalidArg "shape" (sprintf "Rng.%s: shape %s has a negative dimension." what (Shape.format shape))

    /// A key from a seed.
    let key (seed: uint64) : RngKey = RngCore.key seed
    /// Two independent keys from one.
    let split (k: RngKey) : RngKey * RngKey = RngCore.split k
    /// n independent keys from one.
    let splitN (k: RngKey) (n: int) : RngKey[] = RngCore.splitN k n
    /// A key derived from a key and an integer (for example a step or chain number).
    let foldIn (k: RngKey) (data: int) : RngKey = RngCore.foldIn k data

    /// Uniform draws in the open interval (0, 1), float64.
    let uniform (k: RngKey) (shape: int[]) : Tensor =
        checkShape "uniform" shape
        f64 shape (RngCore.uniform k (Shape.size shape))

    /// Standard normal draws, float64.
    let normal (k: RngKey) (shape: int[]) : Tensor =
        checkShape "normal" shape
        f64 shape (RngCore.normal k (Shape.size shape))

    /// Element i of the uniform draws `uniform k [| n |]` (any n > i), without allocating: for
    /// samplers that need a few uniforms per step from one key.
    let uniformAt (k: RngKey) (i: int) : float = RngCore.uniformAt k i

    /// Writes the draws of `normal k [| dest.Length |]` into dest, without allocating.
    let normalInto (k: RngKey) (dest: System.Span<float>) : unit = RngCore.normalInto k dest

    /// Gamma(concentration, rate 1) draws, one per element of the concentration tensor.
    let gamma (k: RngKey) (concentration: Tensor) : Tensor =
        f64 concentration.Shape (RngCore.gamma k (Tensor.toArray concentration))

    /// Beta(a, b) draws, one per element of the broadcast of a and b.
    let beta (k: RngKey) (a: Tensor) (b: Tensor) : Tensor =
        let s = Shape.broadcast "Rng.beta" a.Shape b.Shape
        f64 s (RngCore.beta k (Tensor.toArray (Tensor.broadcastTo s a)) (Tensor.toArray (Tensor.broadcastTo s b)))

    /// Poisson(rate) draws as float64 counts, one per element of the rate tensor.
    let poisson (k: RngKey) (rate: Tensor) : Tensor =
        f64 rate.Shape (RngCore.poisson k (Tensor.toArray rate) |> Array.map float)

    /// One category index per row of logits [..., K] (unnormalized log-probabilities): int32 [...].
    let categorical (k: RngKey) (logits: Tensor) : Tensor =
        if logits.Rank < 1 then invalidArg "logits" "Rng.categorical: logits need a last axis of categories."
        let kk = logits.Shape.[logits.Rank - 1]
        let rows = if kk = 0 then 0 else logits.Size / kk
        let idx = RngCore.categorical k (Tensor.toArray logits) rows kk
        Tensor.createI32 logits.Shape.[.. logits.Rank - 2] idx

    /// A uniformly random permutation of 0 .. n-1, int32.
    let permutation (k: RngKey) (n: int) : Tensor = Tensor.ofInts (RngCore.permutation k n)
