namespace FunctionalBayes

open System
open System.Runtime.InteropServices
open FunctionalBayes.Tensors

/// The inverse mass matrix M⁻¹ of Hamiltonian Monte Carlo (kinetic energy ½ pᵀM⁻¹p, momentum p ~ N(0, M)).
/// Build one with `Metric.diagonal`, `Metric.dense`, `Metric.lowRank` or `Metric.identity`, which validate it.
[<NoEquality; NoComparison>]
type Metric =
    /// M⁻¹ = diag(inverseMass).
    | DiagonalMetric of inverseMass: float[]
    /// A dense M⁻¹ and its lower Cholesky factor L (M⁻¹ = L Lᵀ).
    | DenseMetric of inverseMass: float[,] * cholesky: float[,]
    /// Diagonal plus low rank (nutpie): M⁻¹ = D (I + U(Λ − I)Uᵀ) D with D = diag(scale), U the k orthonormal
    /// vectors (vector j at [j·d, (j+1)·d)) and Λ = diag(values); applied in O(d·k).
    | LowRankMetric of scale: float[] * vectors: float[] * values: float[]

[<RequireQualifiedAccess>]
module Metric =

    /// The flat dimension the metric acts on.
    let dim (m: Metric) =
        match m with
        | DiagonalMetric v -> v.Length
        | DenseMetric (a, _) -> Array2D.length1 a
        | LowRankMetric (s, _, _) -> s.Length

    /// The identity metric of dimension d (diagonal).
    let identity (d: int) : Metric =
        if d < 1 then invalidArg "d" (sprintf "Metric.identity: the dimension must be positive, got %d." d)
        DiagonalMetric (Array.create d 1.0)

    /// A diagonal metric from the diagonal of M⁻¹ (every entry finite and positive).
    let diagonal (inverseMass: float[]) : Metric =
        if inverseMass.Length = 0 then invalidArg "inverseMass" "Metric.diagonal: the inverse mass diagonal is empty."
        match inverseMass |> Array.tryFindIndex (fun v -> not (Double.IsFinite v && v > 0.0)) with
        | Some i -> invalidArg "inverseMass" (sprintf "Metric.diagonal: entry %d of the inverse mass diagonal is %g; every entry must be finite and positive." i inverseMass.[i])
        | None -> DiagonalMetric (Array.copy inverseMass)

    /// A diagonal-plus-low-rank metric M⁻¹ = D (I + U(Λ − I)Uᵀ) D: scale D (finite, positive), k orthonormal
    /// vectors of length d laid end to end, their k values Λ (finite, positive).
    let lowRank (scale: float[]) (vectors: float[]) (values: float[]) : Metric =
        let d = scale.Length
        if d = 0 then invalidArg "scale" "Metric.lowRank: the scale is empty."
        match scale |> Array.tryFindIndex (fun v -> not (Double.IsFinite v && v > 0.0)) with
        | Some i -> invalidArg "scale" (sprintf "Metric.lowRank: entry %d of the scale is %g; every entry must be finite and positive." i scale.[i])
        | None -> ()
        if values.Length > d || vectors.Length <> values.Length * d then
            invalidArg "vectors" (sprintf "Metric.lowRank: %d values need %d·%d vector entries (at most d of them), got %d." values.Length values.Length d vectors.Length)
        match values |> Array.tryFindIndex (fun v -> not (Double.IsFinite v && v > 0.0)) with
        | Some i -> invalidArg "values" (sprintf "Metric.lowRank: value %d is %g; every value must be finite and positive." i values.[i])
        | None -> ()
        if vectors |> Array.exists (fun v -> not (Double.IsFinite v)) then invalidArg "vectors" "Metric.lowRank: the vectors are not finite."
        LowRankMetric (Array.copy scale, Array.copy vectors, Array.copy values)

    /// M⁻¹ as a dense matrix (for tests and reports; O(d²) memory), exactly symmetric (so Metric.dense takes it).
    let inverseMassMatrix (m: Metric) : float[,] =
        match m with
        | DiagonalMetric v -> Array2D.init v.Length v.Length (fun i j -> if i = j then v.[i] else 0.0)
        | DenseMetric (a, _) -> Array2D.copy a
        | LowRankMetric (s, u, lam) ->
            let d = s.Length
            // every product in an order symmetric in i and j
            Array2D.init d d (fun i j ->
                let mutable c = if i = j then 1.0 else 0.0
                for k in 0 .. lam.Length - 1 do c <- c + (u.[k * d + i] * u.[k * d + j]) * (lam.[k] - 1.0)
                c * (s.[i] * s.[j]))

    /// The diagonal of M⁻¹.
    let inverseMassDiagonal (m: Metric) : float[] =
        match m with
        | DiagonalMetric v -> Array.copy v
        | DenseMetric (a, _) -> Array.init (Array2D.length1 a) (fun i -> a.[i, i])
        | LowRankMetric (s, u, lam) ->
            let d = s.Length
            Array.init d (fun i ->
                let mutable c = 1.0
                for k in 0 .. lam.Length - 1 do c <- c + u.[k * d + i] * u.[k * d + i] * (lam.[k] - 1.0)
                s.[i] * s.[i] * c)

    /// The lower Cholesky factor of a symmetric positive definite matrix, or None when it is not one.
    let internal cholesky (a: float[,]) : float[,] option =
        let n = Array2D.length1 a
        let l = Array2D.zeroCreate n n
        let mutable ok = true
        let mutable j = 0
        while ok && j < n do
            let mutable s = a.[j, j]
            for k in 0 .. j - 1 do s <- s - l.[j, k] * l.[j, k]
            if not (s > 0.0) || not (Double.IsFinite s) then ok <- false
            else
                let d = sqrt s
                l.[j, j] <- d
                for i in j + 1 .. n - 1 do
                    let mutable t = a.[i, j]
                    for k in 0 .. j - 1 do t <- t - l.[i, k] * l.[j, k]
                    l.[i, j] <- t / d
            j <- j + 1
        if ok then Some l else None

    /// A dense metric from M⁻¹ (symmetric positive definite).
    let dense (inverseMass: float[,]) : Metric =
        let n = Array2D.length1 inverseMass
        if n = 0 || Array2D.length2 inverseMass <> n then
            invalidArg "inverseMass" (sprintf "Metric.dense: M⁻¹ must be a non-empty square matrix, got %dx%d." n (Array2D.length2 inverseMass))
        for i in 0 .. n - 1 do
            for j in 0 .. i - 1 do
                if abs (inverseMass.[i, j] - inverseMass.[j, i]) > 1e-12 * (abs inverseMass.[i, j] + abs inverseMass.[j, i]) then
                    invalidArg "inverseMass" (sprintf "Metric.dense: M⁻¹ is not symmetric at (%d, %d): %g vs %g." i j inverseMass.[i, j] inverseMass.[j, i])
        match cholesky inverseMass with
        | Some l -> DenseMetric (Array2D.copy inverseMass, l)
        | None -> invalidArg "inverseMass" "Metric.dense: M⁻¹ is not positive definite (its Cholesky factorization failed)."

/// The state of an HMC-family chain: a position on unconstrained space with its potential energy
/// U = −log density and ∇U. The arrays are never changed after the state is made.
[<NoEquality; NoComparison>]
type HmcState =
    { Position: float[]
      PotentialEnergy: float
      Gradient: float[] }

/// What one transition did (Stan's sampler parameters).
type TransitionInfo =
    { /// The step size used.
      StepSize: float
      /// The tree depth reached (0 for static HMC).
      TreeDepth: int
      /// The number of leapfrog steps (gradient evaluations).
      NumLeapfrog: int
      /// Whether the trajectory diverged (energy error above the threshold, or NaN).
      Divergent: bool
      /// The Hamiltonian at the selected point.
      Energy: float
      /// Stan's accept statistic: the mean over leapfrogs of min(1, exp(H0 − h)).
      AcceptStat: float
      /// nuts-rs's symmetric accept statistic: the mean over leapfrogs of 2/(1 + exp|H0 − h|), which counts an
      /// energy error in either direction against the step size (0 for a divergent leapfrog).
      AcceptStatSymmetric: float
      /// Signed leapfrog steps from the start to the selected point (0: the chain did not move).
      SampleIndex: int }

/// Settings of the static HMC kernel.
type HmcParameters =
    { StepSize: float
      Metric: Metric
      /// Leapfrog steps per transition.
      NumSteps: int
      /// An energy error above this is a divergence (Stan: 1000).
      MaxDeltaH: float }

/// Settings of the NUTS kernel.
type NutsParameters =
    { StepSize: float
      Metric: Metric
      /// The most doublings of a trajectory (Stan: 10, so up to 1023 leapfrogs).
      MaxTreeDepth: int
      /// An energy error above this is a divergence (Stan: 1000).
      MaxDeltaH: float }

    /// Stan's divergence threshold: an energy error above 1000 is a divergence.
    static member DefaultMaxDeltaH = 1000.0

    /// Stan's defaults with the given step size and metric.
    static member Create(stepSize: float, metric: Metric) =
        { StepSize = stepSize; Metric = metric; MaxTreeDepth = 10; MaxDeltaH = NutsParameters.DefaultMaxDeltaH }

/// A sampling algorithm as a pair of pure functions (BlackJAX's shape): `Init` evaluates the potential at
/// a position; `Step` is one transition from a key and a state.
[<NoEquality; NoComparison>]
type SamplingAlgorithm =
    { Init: float[] -> HmcState
      Step: RngKey -> HmcState -> HmcState * TransitionInfo }

/// An HMC-family transition whose step size and metric are passed in on every call (BlackJAX's
/// build_kernel shape), so one warmup (Warmup) tunes any such kernel: static HMC or NUTS. It owns scratch
/// buffers: one per chain.
[<NoEquality; NoComparison>]
type TunableKernel =
    { Dim: int
      /// The evaluator the kernel calls (for Stan's step-size search).
      Evaluator: IGradientEvaluator
      /// One transition with a step size and a metric, from a key and a state.
      Step: float -> Metric -> RngKey -> HmcState -> HmcState * TransitionInfo }

/// A point in phase space with its potential and gradient (scratch; internal). It also carries V = M⁻¹P
/// (the velocity, Stan's sharp momentum) and, under a metric whose product is costly (dense, low rank),
/// W = M⁻¹G: M⁻¹ is linear, so a leapfrog updates V by the same steps as P and applies the metric once
/// (to the new gradient). Only `Dynamics` sets P, G or Q, and it keeps V and W consistent with them.
[<AllowNullLiteral>]
type internal PhasePoint(dim: int) =
    member val Q: float[] = Array.zeroCreate dim
    member val P: float[] = Array.zeroCreate dim
    member val G: float[] = Array.zeroCreate dim
    /// M⁻¹P, up to rounding.
    member val V: float[] = Array.zeroCreate dim
    /// M⁻¹G, up to rounding (kept only when the dynamics carry the velocity).
    member val W: float[] = Array.zeroCreate dim
    member val U = 0.0 with get, set
    /// Signed leapfrog steps from the trajectory's start.
    member val Index = 0 with get, set
    member this.CopyFrom(o: PhasePoint) =
        // span copies (a memmove): Array.blit goes through Array.Copy's untyped overload, with its type checks,
        // and the tree copies points at every leapfrog
        o.Q.AsSpan(0, dim).CopyTo(this.Q.AsSpan())
        o.P.AsSpan(0, dim).CopyTo(this.P.AsSpan())
        o.G.AsSpan(0, dim).CopyTo(this.G.AsSpan())
        o.V.AsSpan(0, dim).CopyTo(this.V.AsSpan())
        o.W.AsSpan(0, dim).CopyTo(this.W.AsSpan())
        this.U <- o.U
        this.Index <- o.Index

/// Hamiltonian dynamics for one chain: momentum draws, kinetic energy, leapfrog. Owns scratch buffers,
/// so one per chain (internal).
/// The velocity V = M⁻¹P is carried (updated as V ← V − ε/2·M⁻¹G alongside P ← P − ε/2·G: one metric
/// product per leapfrog instead of two) for the dense and low-rank metrics, whose product costs O(d²) or
/// O(d·k). A diagonal metric recomputes V = m⊙P: that multiply costs what carrying's update would, and it
/// keeps diagonal trajectories bit for bit as they were.
[<OptimizeFromFirstCall>]
type internal Dynamics(ev: IGradientEvaluator) =
    let dim = ev.Dim
    let u = Array.zeroCreate<float> dim
    let mutable metric = Metric.identity (max 1 dim)
    let mutable carry = false
    // the k coefficients of a low-rank metric (grown when the metric is set, never per leapfrog)
    let mutable coef = Array.zeroCreate<float> 0
    member _.Metric
        with get () = metric
        and set (m: Metric) =
            metric <- m
            match m with
            | DiagonalMetric _ -> carry <- false
            | DenseMetric _ -> carry <- true
            | LowRankMetric (_, _, lam) ->
                carry <- true
                if lam.Length > coef.Length then coef <- Array.zeroCreate lam.Length
    member _.Dim = dim
    member _.Evaluator = ev
    /// Whether the velocity is carried through leapfrogs (dense and low-rank metrics) rather than recomputed.
    member _.CarriesVelocity = carry

    /// dest ← M⁻¹ p (Stan's dtau_dp, the "sharp" momentum).
    member this.Velocity(p: float[], dest: float[]) =
        match this.Metric with
        | DiagonalMetric m -> Simd.Multiply(ReadOnlySpan m, ReadOnlySpan p, Span dest)
        | DenseMetric (a, _) ->
            // row i of the row-major matrix is contiguous
            let flat = MemoryMarshal.CreateReadOnlySpan(&a.[0, 0], dim * dim)
            for i in 0 .. dim - 1 do dest.[i] <- Simd.Dot(flat.Slice(i * dim, dim), ReadOnlySpan p)
        | LowRankMetric (sc, vecs, lam) ->
            // D (I + U(Λ − I)Uᵀ) D p in O(d·k)
            Simd.Multiply(ReadOnlySpan sc, ReadOnlySpan p, Span dest)
            for k in 0 .. lam.Length - 1 do
                coef.[k] <- (lam.[k] - 1.0) * Simd.Dot(ReadOnlySpan(vecs, k * dim, dim), ReadOnlySpan dest)
            for k in 0 .. lam.Length - 1 do
                Simd.MultiplyAdd(ReadOnlySpan(vecs, k * dim, dim), coef.[k], ReadOnlySpan dest, Span dest)
            Simd.Multiply(ReadOnlySpan dest, ReadOnlySpan sc, Span dest)

    /// The Hamiltonian U + ½ PᵀV at z (V = M⁻¹P, kept by the dynamics), with NaN mapped to +∞ (Stan).
    member _.H(z: PhasePoint) =
        let h = z.U + 0.5 * Simd.Dot(ReadOnlySpan z.P, ReadOnlySpan z.V)
        if Double.IsNaN h then Double.PositiveInfinity else h

    /// z.P ~ N(0, M) and z.V = M⁻¹ z.P: p = L⁻ᵀ u with M⁻¹ = L Lᵀ (dense), p = u / √m (diagonal),
    /// p = D⁻¹ (u + U(Λ^{-1/2} − I)Uᵀu) (low rank).
    member this.SampleMomentum(key: RngKey, z: PhasePoint) =
        let p = z.P
        Rng.normalInto key (Span<float>(u))
        match this.Metric with
        | DiagonalMetric m -> for i in 0 .. dim - 1 do p.[i] <- u.[i] / sqrt m.[i]
        | DenseMetric (_, l) ->
            // solve Lᵀ p = u (Lᵀ upper triangular) by back substitution
            for i in dim - 1 .. -1 .. 0 do
                let mutable s = u.[i]
                for k in i + 1 .. dim - 1 do s <- s - l.[k, i] * p.[k]
                p.[i] <- s / l.[i, i]
        | LowRankMetric (sc, vecs, lam) ->
            u.AsSpan(0, dim).CopyTo(p.AsSpan())
            for k in 0 .. lam.Length - 1 do
                coef.[k] <- (1.0 / sqrt lam.[k] - 1.0) * Simd.Dot(ReadOnlySpan(vecs, k * dim, dim), ReadOnlySpan u)
            for k in 0 .. lam.Length - 1 do
                Simd.MultiplyAdd(ReadOnlySpan(vecs, k * dim, dim), coef.[k], ReadOnlySpan p, Span p)
            Simd.Divide(ReadOnlySpan p, ReadOnlySpan sc, Span p)
        this.Velocity(p, z.V)

    /// Evaluates U and ∇U at z.Q (and W = M⁻¹∇U when the velocity is carried). An exception inside the
    /// potential (a Cholesky of a covariance that is not numerically positive definite at an extreme
    /// proposal) is an infinite energy, as in Stan: the proposal is rejected (a divergence inside a tree,
    /// counted per chain) and sampling goes on.
    member this.Evaluate(z: PhasePoint) =
        z.U <-
            try ev.Evaluate(ReadOnlySpan<float>(z.Q), Span<float>(z.G))
            with
            | :? OperationCanceledException -> reraise ()
            | _ ->
                Array.Clear z.G
                Double.PositiveInfinity
        if carry then this.Velocity(z.G, z.W)

    /// P ← P + c·G, and V with it (V ← V + c·W carried, or V = M⁻¹P recomputed).
    member private this.Kick(z: PhasePoint, c: float) =
        Simd.MultiplyAdd(ReadOnlySpan z.G, c, ReadOnlySpan z.P, Span z.P)
        if carry then Simd.MultiplyAdd(ReadOnlySpan z.W, c, ReadOnlySpan z.V, Span z.V)
        else this.Velocity(z.P, z.V)

    /// One velocity-Verlet (leapfrog) step of size eps, in place; z.V is M⁻¹P at the end.
    member this.Leapfrog(z: PhasePoint, eps: float) =
        let half = -0.5 * eps
        this.Kick(z, half)
        Simd.MultiplyAdd(ReadOnlySpan z.V, eps, ReadOnlySpan z.Q, Span z.Q)
        this.Evaluate z
        this.Kick(z, half)

    /// Loads a state into z (position, energy, gradient, and W under the current metric); a momentum
    /// draw (SampleMomentum) completes it.
    member this.Load(s: HmcState, z: PhasePoint) =
        s.Position.AsSpan(0, dim).CopyTo(z.Q.AsSpan())
        s.Gradient.AsSpan(0, dim).CopyTo(z.G.AsSpan())
        z.U <- s.PotentialEnergy
        z.Index <- 0
        if carry then this.Velocity(z.G, z.W)

    /// A new immutable state from z.
    member _.ToState(z: PhasePoint) : HmcState =
        { Position = Array.copy z.Q; PotentialEnergy = z.U; Gradient = Array.copy z.G }

[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Dyn =

    let checkState (what: string) (dim: int) (s: HmcState) =
        if s.Position.Length <> dim || s.Gradient.Length <> dim then
            invalidArg "state" (sprintf "%s: the state has %d coordinates (gradient %d) but the potential has %d." what s.Position.Length s.Gradient.Length dim)

    let checkMetric (what: string) (dim: int) (m: Metric) =
        if Metric.dim m <> dim then
            invalidArg "parameters" (sprintf "%s: the metric has dimension %d but the potential has %d." what (Metric.dim m) dim)

    let checkStepSize (what: string) (eps: float) =
        if not (Double.IsFinite eps && eps > 0.0) then
            invalidArg "parameters" (sprintf "%s: the step size must be finite and positive, got %g." what eps)

    /// The tree-depth rule (1..30), the one place it lives.
    let checkMaxTreeDepth (what: string) (depth: int) =
        if depth < 1 || depth > 30 then
            raise (ArgumentOutOfRangeException("MaxTreeDepth", depth, sprintf "%s: MaxTreeDepth must be in 1..30, got %d." what depth))

    /// The divergence threshold rule (positive), the one place it lives.
    let checkMaxDeltaH (what: string) (maxDeltaH: float) =
        if not (maxDeltaH > 0.0) then
            raise (ArgumentOutOfRangeException("MaxDeltaH", maxDeltaH, sprintf "%s: MaxDeltaH must be positive, got %g." what maxDeltaH))

    /// nuts-rs's symmetric accept statistic of one leapfrog, 2·min(1, e^Δ)/(1 + e^Δ) = 2/(1 + e^|Δ|) with
    /// Δ = H0 − h: 1 without energy error, 0 for a NaN or infinite h.
    let symmetricAccept (h0: float) (h: float) =
        let d = abs (h0 - h)
        if Double.IsNaN d then 0.0 else 2.0 / (1.0 + exp d)

    let logSumExp (a: float) (b: float) =
        if Double.IsNegativeInfinity a then b
        elif Double.IsNegativeInfinity b then a
        elif a > b then a + Math.Log(1.0 + exp (b - a))
        else b + Math.Log(1.0 + exp (a - b))

    let init (ev: IGradientEvaluator) (position: float[]) : HmcState =
        if position.Length <> ev.Dim then
            invalidArg "position" (sprintf "init: the position has %d coordinates but the potential has %d." position.Length ev.Dim)
        let g = Array.zeroCreate ev.Dim
        let u = ev.Evaluate(ReadOnlySpan<float>(position), Span<float>(g))
        { Position = Array.copy position; PotentialEnergy = u; Gradient = g }

/// Static Hamiltonian Monte Carlo (fixed number of leapfrog steps, Metropolis correction), and Stan's
/// initial step-size heuristic.
[<RequireQualifiedAccess>]
module Hmc =

    /// Checks HMC settings; raises naming the bad one.
    let validate (dim: int) (p: HmcParameters) =
        Dyn.checkStepSize "Hmc" p.StepSize
        Dyn.checkMetric "Hmc" dim p.Metric
        if p.NumSteps < 1 then invalidArg "parameters" (sprintf "Hmc: NumSteps must be at least 1, got %d." p.NumSteps)
        Dyn.checkMaxDeltaH "Hmc" p.MaxDeltaH

    /// Evaluates the potential at a position: the chain's first state.
    let init (ev: IGradientEvaluator) (position: float[]) : HmcState = Dyn.init ev position

    /// Static HMC with a step size and metric given on each call (not thread-safe: one per chain). Step:
    /// fresh momentum, numSteps leapfrogs, accept with probability min(1, exp(H0 − h)); NaN energies reject.
    let tunable (ev: IGradientEvaluator) (numSteps: int) (maxDeltaH: float) : TunableKernel =
        if numSteps < 1 then invalidArg "numSteps" (sprintf "Hmc: NumSteps must be at least 1, got %d." numSteps)
        Dyn.checkMaxDeltaH "Hmc" maxDeltaH
        let dyn = Dynamics(ev)
        let z = PhasePoint(ev.Dim)
        let step (eps: float) (metric: Metric) (key: RngKey) (s: HmcState) =
            Dyn.checkState "Hmc.step" ev.Dim s
            dyn.Metric <- metric
            let kMom, kAcc = Rng.split key
            dyn.Load(s, z)
            dyn.SampleMomentum(kMom, z)
            let h0 = dyn.H z
            for _ in 1 .. numSteps do dyn.Leapfrog(z, eps)
            let h = dyn.H z
            let acceptProb = if h0 - h > 0.0 then 1.0 else exp (h0 - h)
            let divergent = h - h0 > maxDeltaH
            let symmetric = if divergent then 0.0 else Dyn.symmetricAccept h0 h
            let accepted = Rng.uniformAt kAcc 0 < acceptProb
            let next = if accepted then dyn.ToState z else s
            let energy = if accepted then h else h0
            next,
            { StepSize = eps; TreeDepth = 0; NumLeapfrog = numSteps; Divergent = divergent
              Energy = energy; AcceptStat = acceptProb; AcceptStatSymmetric = symmetric; SampleIndex = (if accepted then numSteps else 0) }
        { Dim = ev.Dim; Evaluator = ev; Step = step }

    /// A static HMC kernel with fixed settings over an evaluator (not thread-safe: one per chain).
    let kernel (ev: IGradientEvaluator) (p: HmcParameters) : SamplingAlgorithm =
        validate ev.Dim p
        let t = tunable ev p.NumSteps p.MaxDeltaH
        { Init = init ev; Step = fun key s -> t.Step p.StepSize p.Metric key s }

    /// Stan's initial step-size heuristic (base_hmc::init_stepsize): from `stepSize`, one leapfrog with a
    /// fresh momentum; if the energy change ΔH = H0 − h exceeds log 0.8, double the step size until it no
    /// longer does, else halve it until it does (fresh momentum each try). Raises when the step size
    /// passes 1e7 ("improper posterior") or reaches 0.
    let findStepSize (ev: IGradientEvaluator) (metric: Metric) (key: RngKey) (state: HmcState) (stepSize: float) : float =
        Dyn.checkState "Hmc.findStepSize" ev.Dim state
        Dyn.checkMetric "Hmc.findStepSize" ev.Dim metric
        if stepSize = 0.0 || stepSize > 1e7 || Double.IsNaN stepSize then stepSize
        else
            let dyn = Dynamics(ev, Metric = metric)
            let z = PhasePoint(ev.Dim)
            let deltaH (i: int) (eps: float) =
                dyn.Load(state, z)
                dyn.SampleMomentum(Rng.foldIn key i, z)
                let h0 = dyn.H z
                dyn.Leapfrog(z, eps)
                h0 - dyn.H z
            let target = log 0.8
            let direction = if deltaH 0 stepSize > target then 1 else -1
            let mutable eps = stepSize
            let mutable i = 1
            let mutable fin = false
            while not fin do
                let dh = deltaH i eps
                i <- i + 1
                if direction = 1 && not (dh > target) then fin <- true
                elif direction = -1 && not (dh < target) then fin <- true
                else
                    eps <- if direction = 1 then 2.0 * eps else 0.5 * eps
                    if eps > 1e7 then
                        invalidOp "The step-size search passed 1e7: the posterior is improper (it does not concentrate). Please check your model (priors on every latent site?)."
                    if eps = 0.0 then
                        invalidOp "No acceptably small step size could be found: perhaps the posterior is not continuous."
            eps
