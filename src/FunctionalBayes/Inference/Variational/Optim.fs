namespace FunctionalBayes

open System
open System.Numerics
open FunctionalBayes.Tensors

/// A learning rate as a function of the step (0-based).
[<RequireQualifiedAccess>]
type Schedule =
    | Constant of lr: float
    /// lr · (α + (1 − α)·½(1 + cos(π·min(t, T)/T))): optax's cosine_decay_schedule (α = 0 decays to zero).
    | CosineDecay of lr: float * steps: int * alpha: float
    /// One cycle (optax's cosine_onecycle_schedule): from peak/divFactor up to peak over pctStart·T steps
    /// by a cosine, then down to peak/(divFactor·finalDivFactor) by a cosine.
    | WarmupCosine of peak: float * steps: int * pctStart: float * divFactor: float * finalDivFactor: float
    /// lr · rate^(t / transitionSteps).
    | ExponentialDecay of lr: float * rate: float * transitionSteps: int

    /// BLayers' "warmup_cosine": one cycle with pct_start 0.1 and div_factor 25.
    static member OneCycle(peak: float, steps: int) = WarmupCosine (peak, steps, 0.1, 25.0, 1e4)

    /// The learning rate at a step.
    member s.At(step: int) : float =
        let t = float step
        match s with
        | Constant lr -> lr
        | CosineDecay (lr, n, alpha) ->
            let p = min t (float n) / float (max n 1)
            lr * (alpha + (1.0 - alpha) * 0.5 * (1.0 + cos (Math.PI * p)))
        | WarmupCosine (peak, n, pct, div, finalDiv) ->
            let up = max 1.0 (pct * float n)
            let start = peak / div
            let final = start / finalDiv
            let cosine (a: float) (b: float) (frac: float) = b + (a - b) * 0.5 * (1.0 + cos (Math.PI * min 1.0 frac))
            if t < up then cosine start peak (t / up)
            else cosine peak final ((t - up) / max 1.0 (float n - up))
        | ExponentialDecay (lr, rate, k) -> lr * Math.Pow(rate, t / float (max k 1))

/// An optimizer: how parameters move given their gradients. Its state is a value (OptState).
[<RequireQualifiedAccess>]
type Optimizer =
    /// SGD with (heavy-ball) momentum.
    | Sgd of lr: Schedule * momentum: float
    /// Adam (Kingma and Ba): b1 0.9, b2 0.999, eps 1e-8 by default.
    | Adam of lr: Schedule * b1: float * b2: float * eps: float
    /// Adam with decoupled weight decay (Loshchilov and Hutter).
    | AdamW of lr: Schedule * b1: float * b2: float * eps: float * weightDecay: float
    /// Pyro's ClippedAdam: gradients clipped element-wise to ±clipNorm, learning rate decayed by lrd per step.
    | ClippedAdam of lr: Schedule * b1: float * b2: float * eps: float * clipNorm: float * lrd: float
    | Adagrad of lr: Schedule * eps: float
    /// RMSProp: v = ρ·v + (1−ρ)·g², step = lr·g/(√v + eps).
    | RmsProp of lr: Schedule * decay: float * eps: float

    static member AdamDefault(lr: float) = Adam (Schedule.Constant lr, 0.9, 0.999, 1e-8)
    static member AdamWith(lr: Schedule) = Adam (lr, 0.9, 0.999, 1e-8)
    static member ClippedAdamDefault(lr: float) = ClippedAdam (Schedule.Constant lr, 0.9, 0.999, 1e-8, 10.0, 1.0)

/// An optimizer's state: the step count and its per-parameter slots.
[<NoEquality; NoComparison>]
type OptState = { Step: int; First: Tensor[]; Second: Tensor[] }

// Adam's loops over every parameter element run once a step: optimised from the first step, since a fit of a
// few seconds otherwise spends much of itself in their tier-0/OSR code.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module Optim =

    /// Starting state for these parameters.
    let init (ps: Tensor[]) : OptState =
        { Step = 0; First = ps |> Array.map (Tensor.detach >> Tensor.zerosLike); Second = ps |> Array.map (Tensor.detach >> Tensor.zerosLike) }

    /// The global L2 norm of a set of gradients.
    let globalNorm (gs: Tensor[]) =
        sqrt (gs |> Array.sumBy (fun g -> Tensor.toScalar (Tensor.sum (g * g))))

    /// Scales gradients down so their global norm is at most maxNorm.
    let clipByGlobalNorm (maxNorm: float) (gs: Tensor[]) =
        if not (maxNorm > 0.0) then invalidArg "maxNorm" (sprintf "Optim.clipByGlobalNorm: maxNorm must be positive, got %g." maxNorm)
        let n = globalNorm gs
        if n <= maxNorm then gs else gs |> Array.map (fun g -> g * (maxNorm / n))

    let private adamMoments (b1: float) (b2: float) (st: OptState) (gs: Tensor[]) =
        let m = Array.map2 (fun (m: Tensor) g -> b1 * m + (1.0 - b1) * g) st.First gs
        let v = Array.map2 (fun (v: Tensor) (g: Tensor) -> b2 * v + (1.0 - b2) * g * g) st.Second gs
        m, v

    /// The float32 Adam update of fusedAdam on SIMD vectors over elements [lo, hi) (hi − lo a multiple of
    /// the vector width), widened to float64 lanes: the same IEEE operations in the same order as the
    /// scalar loop, so bit-identical results.
    let private adamF32SimdRange (lr: float) (b1: float) (b2: float) (eps: float) (c1: float) (c2: float)
                                 (p: float32[]) (g: float32[]) (m: float32[]) (v: float32[])
                                 (p': float32[]) (m': float32[]) (v': float32[]) (lo: int) (hi: int) =
        let w = Vector<float32>.Count
        let vb1 = Vector<float>(b1)
        let vb1c = Vector<float>(1.0 - b1)
        let vb2 = Vector<float>(b2)
        let vb2c = Vector<float>(1.0 - b2)
        let vc1 = Vector<float>(c1)
        let vc2 = Vector<float>(c2)
        let veps = Vector<float>(eps)
        let vlr = Vector<float>(lr)
        let inline half (gk: Vector<float>) (mk0: Vector<float>) (vk0: Vector<float>) (pk0: Vector<float>) =
            let mk = vb1 * mk0 + vb1c * gk
            let vk = vb2 * vk0 + vb2c * gk * gk
            mk, vk, pk0 - (mk / vc1) / (Vector.SquareRoot(vk / vc2) + veps) * vlr
        let mutable k = lo
        while k < hi do
            let mutable gLo = Vector<float>.Zero
            let mutable gHi = Vector<float>.Zero
            let mutable mLo = Vector<float>.Zero
            let mutable mHi = Vector<float>.Zero
            let mutable vLo = Vector<float>.Zero
            let mutable vHi = Vector<float>.Zero
            let mutable pLo = Vector<float>.Zero
            let mutable pHi = Vector<float>.Zero
            Vector.Widen(Vector<float32>(g, k), &gLo, &gHi)
            Vector.Widen(Vector<float32>(m, k), &mLo, &mHi)
            Vector.Widen(Vector<float32>(v, k), &vLo, &vHi)
            Vector.Widen(Vector<float32>(p, k), &pLo, &pHi)
            let m1, v1, p1 = half gLo mLo vLo pLo
            let m2, v2, p2 = half gHi mHi vHi pHi
            Vector.Narrow(m1, m2).CopyTo(m', k)
            Vector.Narrow(v1, v2).CopyTo(v', k)
            Vector.Narrow(p1, p2).CopyTo(p', k)
            k <- k + w

    /// adamF32SimdRange over the leading multiple of the vector width, in blocks of 32,768 elements run in
    /// parallel for large parameters (each element is independent: the same bits for any thread count).
    /// Returns how many leading elements it did; the scalar loop does the rest.
    let private adamF32Simd (lr: float) (b1: float) (b2: float) (eps: float) (c1: float) (c2: float)
                            (p: float32[]) (g: float32[]) (m: float32[]) (v: float32[])
                            (p': float32[]) (m': float32[]) (v': float32[]) : int =
        let w = Vector<float32>.Count
        if not Vector.IsHardwareAccelerated || p.Length < w then 0
        else
            let last = p.Length - p.Length % w
            let block = 32768
            let blocks = (last + block - 1) / block
            if blocks <= 2 then adamF32SimdRange lr b1 b2 eps c1 c2 p g m v p' m' v' 0 last
            else
                Threading.Tasks.Parallel.For(0, blocks, fun i ->
                    adamF32SimdRange lr b1 b2 eps c1 c2 p g m v p' m' v' (i * block) (min last ((i + 1) * block)))
                |> ignore
            last

    /// Adam over host arrays in one pass per parameter (no intermediate tensors): the same formula as the
    /// tensor path, evaluated per element in float64. None when any tensor is tracked, on a device, or
    /// of another dtype or size, and then the tensor path runs.
    let private fusedAdam (lr: float) (b1: float) (b2: float) (eps: float) (t: int) (st: OptState) (ps: Tensor[]) (gs: Tensor[]) =
        let c1 = 1.0 - Math.Pow(b1, float t)
        let c2 = 1.0 - Math.Pow(b2, float t)
        let plain (x: Tensor) = not x.IsTracked
        let sameF32 i =
            match ps.[i].Storage, gs.[i].Storage, st.First.[i].Storage, st.Second.[i].Storage with
            | F32 p, F32 g, F32 m, F32 v -> p.Length = g.Length && m.Length = p.Length && v.Length = p.Length
            | _ -> false
        let sameF64 i =
            match ps.[i].Storage, gs.[i].Storage, st.First.[i].Storage, st.Second.[i].Storage with
            | F64 p, F64 g, F64 m, F64 v -> p.Length = g.Length && m.Length = p.Length && v.Length = p.Length
            | _ -> false
        let ok =
            st.First.Length = ps.Length && st.Second.Length = ps.Length
            && Array.forall plain ps && Array.forall plain gs
            && Array.forall (fun i -> Shape.equal ps.[i].Shape gs.[i].Shape && (sameF32 i || sameF64 i)) [| 0 .. ps.Length - 1 |]
        if not ok then None
        else
            let make (like: Tensor) (s: Storage) = Tensor.ofRaw (RawTensor(like.Shape, s))
            let out =
                Array.init ps.Length (fun i ->
                    match ps.[i].Storage, gs.[i].Storage, st.First.[i].Storage, st.Second.[i].Storage with
                    | F32 p, F32 g, F32 m, F32 v ->
                        let n = p.Length
                        let p' = GC.AllocateUninitializedArray<float32> n
                        let m' = GC.AllocateUninitializedArray<float32> n
                        let v' = GC.AllocateUninitializedArray<float32> n
                        let start = adamF32Simd lr b1 b2 eps c1 c2 p g m v p' m' v'
                        for k in start .. n - 1 do
                            let gk = float g.[k]
                            let mk = b1 * float m.[k] + (1.0 - b1) * gk
                            let vk = b2 * float v.[k] + (1.0 - b2) * gk * gk
                            m'.[k] <- float32 mk
                            v'.[k] <- float32 vk
                            p'.[k] <- float32 (float p.[k] - (mk / c1) / (sqrt (vk / c2) + eps) * lr)
                        make ps.[i] (F32 p'), make ps.[i] (F32 m'), make ps.[i] (F32 v')
                    | F64 p, F64 g, F64 m, F64 v ->
                        let n = p.Length
                        let p' = Array.zeroCreate<float> n
                        let m' = Array.zeroCreate<float> n
                        let v' = Array.zeroCreate<float> n
                        for k in 0 .. n - 1 do
                            let gk = g.[k]
                            let mk = b1 * m.[k] + (1.0 - b1) * gk
                            let vk = b2 * v.[k] + (1.0 - b2) * gk * gk
                            m'.[k] <- mk
                            v'.[k] <- vk
                            p'.[k] <- p.[k] - (mk / c1) / (sqrt (vk / c2) + eps) * lr
                        make ps.[i] (F64 p'), make ps.[i] (F64 m'), make ps.[i] (F64 v')
                    | _ -> invalidOp "Optim: fused Adam on mixed storage (checked above).")
            Some (out |> Array.map (fun (p, _, _) -> p), out |> Array.map (fun (_, m, _) -> m), out |> Array.map (fun (_, _, v) -> v))

    /// One update: new parameters and state. Gradients are of a loss to minimize.
    let update (opt: Optimizer) (st: OptState) (ps: Tensor[]) (gs: Tensor[]) : Tensor[] * OptState =
        if ps.Length <> gs.Length then invalidArg "gs" (sprintf "Optim.update: %d parameters but %d gradients." ps.Length gs.Length)
        let t = st.Step + 1
        let next (newPs: Tensor[]) (first: Tensor[]) (second: Tensor[]) = newPs, { Step = t; First = first; Second = second }
        let adamStep (lr: float) (b1: float) (b2: float) (eps: float) (gs: Tensor[]) =
            let m, v = adamMoments b1 b2 st gs
            let c1 = 1.0 - Math.Pow(b1, float t)
            let c2 = 1.0 - Math.Pow(b2, float t)
            let step = Array.map2 (fun (m: Tensor) (v: Tensor) -> (m / c1) / (Tensor.sqrt (v / c2) + eps) * lr) m v
            step, m, v
        match opt with
        | Optimizer.Sgd (lr, mu) ->
            let vel = Array.map2 (fun (v: Tensor) g -> mu * v + g) st.First gs
            next (Array.map2 (fun (p: Tensor) v -> p - lr.At st.Step * v) ps vel) vel st.Second
        | Optimizer.Adam (lr, b1, b2, eps) ->
            match fusedAdam (lr.At st.Step) b1 b2 eps t st ps gs with
            | Some (newPs, m, v) -> next newPs m v
            | None ->
                let step, m, v = adamStep (lr.At st.Step) b1 b2 eps gs
                next (Array.map2 (-) ps step) m v
        | Optimizer.AdamW (lr, b1, b2, eps, wd) ->
            let a = lr.At st.Step
            let step, m, v = adamStep a b1 b2 eps gs
            next (Array.map2 (fun (p: Tensor) s -> p - s - a * wd * p) ps step) m v
        | Optimizer.ClippedAdam (lr, b1, b2, eps, clip, lrd) ->
            let gs = gs |> Array.map (Tensor.clamp -clip clip)
            let a = lr.At st.Step * Math.Pow(lrd, float st.Step)
            let step, m, v = adamStep a b1 b2 eps gs
            next (Array.map2 (-) ps step) m v
        | Optimizer.Adagrad (lr, eps) ->
            let acc = Array.map2 (fun (a: Tensor) (g: Tensor) -> a + g * g) st.Second gs
            next (Array.map3 (fun (p: Tensor) g a -> p - lr.At st.Step * g / (Tensor.sqrt a + eps)) ps gs acc) st.First acc
        | Optimizer.RmsProp (lr, rho, eps) ->
            let v = Array.map2 (fun (v: Tensor) (g: Tensor) -> rho * v + (1.0 - rho) * g * g) st.Second gs
            next (Array.map3 (fun (p: Tensor) g v -> p - lr.At st.Step * g / (Tensor.sqrt v + eps)) ps gs v) st.First v
