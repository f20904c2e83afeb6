namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Settings of nutpie's low-rank metric: the ridge γ of the projected covariances and the eigenvalue
/// cut-off c (directions with λ > c or λ < 1/c are kept).
type LowRankSettings =
    { Gamma: float
      Cutoff: float }

    /// nuts-rs's defaults: γ = 1e-5, c = 2.
    static member Default = { Gamma = 1e-5; Cutoff = 2.0 }

/// How warmup estimates the metric.
[<RequireQualifiedAccess>]
type MetricAdaptation =
    /// Stan's: a diagonal metric from the windowed sample variance with Stan's shrinkage, Stan's schedule.
    | Stan
    /// Stan's schedule with a dense metric from the windowed sample covariance.
    | Dense
    /// nutpie's: σ² = sqrt(Var(x)/Var(∇log p)) per coordinate (minimises the sample Fisher divergence),
    /// nuts-rs's schedule.
    | FisherDiagonal
    /// nutpie's: the Fisher diagonal, then a low-rank correction from the draws' and gradients' spans,
    /// nuts-rs's schedule.
    | FisherLowRank of LowRankSettings

    /// The name written in files and messages.
    member a.Text =
        match a with
        | Stan -> "stan"
        | Dense -> "dense"
        | FisherDiagonal -> "fisherDiagonal"
        | FisherLowRank s -> sprintf "fisherLowRank(gamma %g, cutoff %g)" s.Gamma s.Cutoff

/// Small dense linear algebra for the low-rank estimator (row-major square matrices; internal).
[<RequireQualifiedAccess>]
module internal SmallLinalg =

    /// Eigenvalues and eigenvectors of a symmetric matrix by cyclic Jacobi rotations: (values, V) with
    /// A = V diag(values) Vᵀ, column j of V (V.[i, j]) the j-th eigenvector.
    let symmetricEigen (a: float[,]) : float[] * float[,] =
        let n = Array2D.length1 a
        let m = Array2D.copy a
        let v = Array2D.init n n (fun i j -> if i = j then 1.0 else 0.0)
        let offNorm () =
            let mutable s = 0.0
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do
                    if i <> j then s <- s + m.[i, j] * m.[i, j]
            s
        let scale =
            let mutable s = 0.0
            for i in 0 .. n - 1 do
                for j in 0 .. n - 1 do s <- s + m.[i, j] * m.[i, j]
            s
        let mutable sweep = 0
        while sweep < 100 && offNorm () > 1e-30 * scale do
            for p in 0 .. n - 2 do
                for q in p + 1 .. n - 1 do
                    let apq = m.[p, q]
                    if apq <> 0.0 then
                        let theta = (m.[q, q] - m.[p, p]) / (2.0 * apq)
                        let t = (if theta >= 0.0 then 1.0 else -1.0) / (abs theta + sqrt (theta * theta + 1.0))
                        let c = 1.0 / sqrt (t * t + 1.0)
                        let s = t * c
                        for k in 0 .. n - 1 do
                            let mkp = m.[k, p]
                            let mkq = m.[k, q]
                            m.[k, p] <- c * mkp - s * mkq
                            m.[k, q] <- s * mkp + c * mkq
                        for k in 0 .. n - 1 do
                            let mpk = m.[p, k]
                            let mqk = m.[q, k]
                            m.[p, k] <- c * mpk - s * mqk
                            m.[q, k] <- s * mpk + c * mqk
                        for k in 0 .. n - 1 do
                            let vkp = v.[k, p]
                            let vkq = v.[k, q]
                            v.[k, p] <- c * vkp - s * vkq
                            v.[k, q] <- s * vkp + c * vkq
            sweep <- sweep + 1
        Array.init n (fun i -> m.[i, i]), v

    /// V diag(f(values)) Vᵀ.
    let mapEigen (f: float -> float) (values: float[], v: float[,]) : float[,] =
        let n = values.Length
        let fv = values |> Array.map f
        Array2D.init n n (fun i j ->
            let mutable s = 0.0
            for k in 0 .. n - 1 do s <- s + v.[i, k] * fv.[k] * v.[j, k]
            s)

    let mul (a: float[,]) (b: float[,]) : float[,] =
        let n = Array2D.length1 a
        let m = Array2D.length2 b
        let inner = Array2D.length2 a
        Array2D.init n m (fun i j ->
            let mutable s = 0.0
            for k in 0 .. inner - 1 do s <- s + a.[i, k] * b.[k, j]
            s)

    let symmetrize (a: float[,]) =
        let n = Array2D.length1 a
        Array2D.init n n (fun i j -> 0.5 * (a.[i, j] + a.[j, i]))

    /// The SPD geometric mean Σ of cz and ch: the solution of Σ ch Σ = cz,
    /// Σ = ch^{-1/2} (ch^{1/2} cz ch^{1/2})^{1/2} ch^{-1/2}.
    let spdMean (cz: float[,]) (ch: float[,]) : float[,] =
        let eh = symmetricEigen ch
        let hHalf = mapEigen sqrt eh
        let hInvHalf = mapEigen (fun x -> 1.0 / sqrt x) eh
        let inner = symmetrize (mul (mul hHalf cz) hHalf)
        let root = mapEigen (fun x -> sqrt (max x 0.0)) (symmetricEigen inner)
        symmetrize (mul (mul hInvHalf root) hInvHalf)

    /// An orthonormal basis of the span of the columns (vectors of length d), by Gram-Schmidt with column
    /// pivoting (largest remaining norm first) and re-orthogonalisation; columns whose remaining norm falls
    /// below 1e-10 of the largest column's norm are dropped.
    let orthonormalBasis (d: int) (columns: float[][]) : float[][] =
        let work = columns |> Array.map Array.copy
        let norm2 (x: float[]) = Array.sumBy (fun v -> v * v) x
        let largest = if work.Length = 0 then 0.0 else work |> Array.map norm2 |> Array.max
        let tol = 1e-20 * largest
        let basis = ResizeArray<float[]>()
        let remaining = Collections.Generic.HashSet<int>(seq { 0 .. work.Length - 1 })
        let project (q: float[]) (x: float[]) =
            let mutable c = 0.0
            for i in 0 .. d - 1 do c <- c + q.[i] * x.[i]
            for i in 0 .. d - 1 do x.[i] <- x.[i] - c * q.[i]
        let mutable fin = largest = 0.0
        while not fin && basis.Count < d && remaining.Count > 0 do
            let best = remaining |> Seq.maxBy (fun j -> norm2 work.[j])
            if norm2 work.[best] <= tol then fin <- true
            else
                remaining.Remove best |> ignore
                let q = work.[best]
                for b in basis do project b q
                let n = sqrt (norm2 q)
                if n * n <= tol then fin <- true
                else
                    for i in 0 .. d - 1 do q.[i] <- q.[i] / n
                    basis.Add q
                    for j in remaining do project q work.[j]
        basis.ToArray()

/// nutpie's metric estimators from draws x and their gradients g = ∇log p(x) (pure; internal).
[<RequireQualifiedAccess>]
module internal FisherEstimate =

    /// The clamp nuts-rs puts on σ².
    let [<Literal>] MinVariance = 1e-20
    let [<Literal>] MaxVariance = 1e20

    /// The metric nuts-rs starts from: σ² = 1/|g₀| (clamped; a non-finite value becomes 1).
    let initial (g0: float[]) : Metric =
        g0 |> Array.map (fun g ->
            let v = 1.0 / abs g
            if Double.IsFinite v then min MaxVariance (max MinVariance v) else 1.0)
        |> Metric.diagonal

    /// Per coordinate, σ² = sqrt(Var(x)/Var(g)) clamped to [1e-20, 1e20]; a coordinate whose ratio is
    /// not finite or 0 keeps `previous`.
    let diagonal (xs: float[][]) (gs: float[][]) (previous: float[]) : float[] =
        let n = xs.Length
        let d = previous.Length
        Array.init d (fun j ->
            let mutable mx = 0.0
            let mutable mg = 0.0
            for i in 0 .. n - 1 do
                mx <- mx + xs.[i].[j]
                mg <- mg + gs.[i].[j]
            mx <- mx / float n
            mg <- mg / float n
            let mutable vx = 0.0
            let mutable vg = 0.0
            for i in 0 .. n - 1 do
                let a = xs.[i].[j] - mx
                let b = gs.[i].[j] - mg
                vx <- vx + a * a
                vg <- vg + b * b
            let s = sqrt (vx / vg)
            if Double.IsFinite s && s > 0.0 then min MaxVariance (max MinVariance s) else previous.[j])

    /// nutpie's low-rank metric: the Fisher diagonal D = diag(σ), then, in the whitened coordinates
    /// z = x/σ and h = g·σ (centred), the geometric mean of the regularised projected covariances on the
    /// joint span of z and h, keeping the eigen-directions with λ > c or λ < 1/c. A diagonal metric when
    /// none is kept.
    let lowRank (s: LowRankSettings) (xs: float[][]) (gs: float[][]) (previous: float[]) : Metric =
        let n = xs.Length
        let d = previous.Length
        let var = diagonal xs gs previous
        let sigma = var |> Array.map sqrt
        let centred (rows: float[][]) (f: int -> float -> float) =
            let mean = Array.init d (fun j -> (rows |> Array.sumBy (fun r -> f j r.[j])) / float n)
            rows |> Array.map (fun r -> Array.init d (fun j -> f j r.[j] - mean.[j]))
        let z = centred xs (fun j v -> v / sigma.[j])
        let h = centred gs (fun j v -> v * sigma.[j])
        let q = SmallLinalg.orthonormalBasis d (Array.append z h)
        let r = q.Length
        if r = 0 then Metric.diagonal var
        else
            let dot (a: float[]) (b: float[]) =
                let mutable t = 0.0
                for i in 0 .. d - 1 do t <- t + a.[i] * b.[i]
                t
            let cov (cols: float[][]) =
                let p = cols |> Array.map (fun c -> Array.init r (fun k -> dot q.[k] c))
                Array2D.init r r (fun a b ->
                    let mutable t = 0.0
                    for c in p do t <- t + c.[a] * c.[b]
                    t / s.Gamma + (if a = b then 1.0 else 0.0))
            let sigmaR = SmallLinalg.spdMean (cov z) (cov h)
            let lam, w = SmallLinalg.symmetricEigen sigmaR
            // rounding can leave an eigenvalue of an ill-conditioned Σ_r at or below 0: such a direction is
            // not estimated (the diagonal stays there)
            let kept = [| for k in 0 .. r - 1 do if Double.IsFinite lam.[k] && lam.[k] > 0.0 && (lam.[k] > s.Cutoff || lam.[k] < 1.0 / s.Cutoff) then yield k |]
            if kept.Length = 0 then Metric.diagonal var
            else
                let vectors = Array.zeroCreate (kept.Length * d)
                kept |> Array.iteri (fun out k ->
                    for a in 0 .. r - 1 do
                        let c = w.[a, k]
                        for i in 0 .. d - 1 do vectors.[out * d + i] <- vectors.[out * d + i] + c * q.[a].[i]
                    // re-normalise against rounding in Q·W
                    let nrm = sqrt (Array.sumBy (fun v -> v * v) vectors.[out * d .. out * d + d - 1])
                    for i in 0 .. d - 1 do vectors.[out * d + i] <- vectors.[out * d + i] / nrm)
                Metric.lowRank sigma vectors (kept |> Array.map (fun k -> lam.[k]))

/// nuts-rs's warmup schedule for the Fisher adapters: an early phase (the first 30 %) whose estimates
/// switch every 10 draws, a main phase whose windows start at 80 draws and grow by 1.5, and a final
/// step-size-only phase (the last 15 %). Each draw that passes the filter enters a foreground and a
/// background estimate; at a switch the background replaces the foreground (so an estimate uses the
/// last w to 2w draws); the metric comes from the foreground every `UpdateEvery` draws and at switches.
type FisherSchedule =
    { NumWarmup: int
      /// Draws before this are in the early phase.
      EarlyEnd: int
      /// From this draw on only the step size is adapted.
      FinalWindowStart: int
      /// The metric is recomputed every this many draws between switches (diagonal 1, low rank 20).
      UpdateEvery: int }

[<RequireQualifiedAccess>]
module FisherSchedule =

    /// nuts-rs's constants.
    let [<Literal>] EarlyFraction = 0.3
    let [<Literal>] StepSizeFraction = 0.15
    let [<Literal>] EarlySwitch = 10
    let [<Literal>] FirstWindow = 80
    let [<Literal>] WindowGrowth = 1.5
    let [<Literal>] DiagonalUpdateEvery = 1
    let [<Literal>] LowRankUpdateEvery = 20

    /// The schedule for numWarmup draws.
    let build (numWarmup: int) (updateEvery: int) : FisherSchedule =
        if numWarmup < 0 then invalidArg "numWarmup" (sprintf "FisherSchedule: the number of warmup iterations must be non-negative, got %d." numWarmup)
        if updateEvery < 1 then invalidArg "updateEvery" (sprintf "FisherSchedule: updateEvery must be at least 1, got %d." updateEvery)
        { NumWarmup = numWarmup
          EarlyEnd = int (float numWarmup * EarlyFraction)
          FinalWindowStart = int (float numWarmup * (1.0 - StepSizeFraction))
          UpdateEvery = updateEvery }

    /// The next main-phase window after a switch.
    let grow (w: int) = max (w + 1) (int (Math.Round(WindowGrowth * float w)))

    /// Whether a transition's draw enters the estimates (nuts-rs): the chain moved, and a divergent
    /// trajectory's draw only when it is more than 4 leapfrogs from the start.
    let accepts (info: TransitionInfo) =
        info.SampleIndex <> 0 && (not info.Divergent || abs info.SampleIndex > 4)

/// Draws and gradients kept for an estimate (oldest first).
[<NoEquality; NoComparison>]
type EstimatorDraws =
    { Positions: float[][]
      Gradients: float[][] }

    static member Empty = { Positions = [||]; Gradients = [||] }
    member e.Count = e.Positions.Length
    member e.Add(x: float[], g: float[]) = { Positions = Array.append e.Positions [| x |]; Gradients = Array.append e.Gradients [| g |] }

/// The state of the Fisher warmup fold.
[<NoEquality; NoComparison>]
type FisherWarmupState =
    { Chain: HmcState
      StepSize: float
      Metric: Metric
      DualAveraging: DualAveragingState
      Foreground: EstimatorDraws
      Background: EstimatorDraws
      /// The current main-phase window (draws in the background before a switch).
      Window: int
      /// The draw at which the metric last changed.
      LastUpdate: int
      /// Still on the metric from the first gradient (its first change restarts the step size).
      InitialMetric: bool
      /// Step-size searches run so far (nuts-rs: one at the start, one at the first metric change).
      Searches: int
      Iteration: int }

/// Settings of the Fisher warmup.
type FisherWarmupSettings =
    { Schedule: FisherSchedule
      DualAveraging: DualAveragingSettings
      /// None: the diagonal estimator.
      LowRank: LowRankSettings option
      FindStepSize: bool
      InitialStepSize: float }

/// Warmup with nutpie's Fisher estimators and nuts-rs's schedule, as a fold over any tunable kernel:
/// the metric starts from the first gradient; the step size is searched at the start and once more at
/// the first metric change, then dual averaging runs over every warmup draw.
[<RequireQualifiedAccess>]
module FisherWarmup =

    /// Settings for an adapter (Stan's and Dense are not Fisher adapters).
    let settings (adaptation: MetricAdaptation) (numWarmup: int) (da: DualAveragingSettings) (findStepSize: bool) (initialStepSize: float) : FisherWarmupSettings =
        let lowRank, every =
            match adaptation with
            | MetricAdaptation.FisherDiagonal -> None, FisherSchedule.DiagonalUpdateEvery
            | MetricAdaptation.FisherLowRank s -> Some s, FisherSchedule.LowRankUpdateEvery
            | MetricAdaptation.Stan | MetricAdaptation.Dense -> invalidArg "adaptation" (sprintf "FisherWarmup: %s is not a Fisher adapter." adaptation.Text)
        { Schedule = FisherSchedule.build numWarmup every; DualAveraging = da; LowRank = lowRank
          FindStepSize = findStepSize; InitialStepSize = initialStepSize }

    let private search (s: FisherWarmupSettings) (kernel: TunableKernel) (metric: Metric) (key: RngKey) (chain: HmcState) (eps: float) =
        if s.FindStepSize then Hmc.findStepSize kernel.Evaluator metric key chain eps else eps

    /// The starting state: the metric from the first gradient (g = −∇U), the starting point in both
    /// estimates, a step-size search.
    let init (s: FisherWarmupSettings) (kernel: TunableKernel) (key: RngKey) (chain: HmcState) : FisherWarmupState =
        DualAveraging.validate s.DualAveraging
        Dyn.checkStepSize "Warmup (InitialStepSize)" s.InitialStepSize
        let g = chain.Gradient |> Array.map (fun v -> -v)
        let metric = FisherEstimate.initial g
        let eps = search s kernel metric key chain s.InitialStepSize
        let first = EstimatorDraws.Empty.Add(chain.Position, g)
        { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = DualAveraging.init eps
          Foreground = first; Background = first; Window = FisherSchedule.FirstWindow; LastUpdate = 0
          InitialMetric = true; Searches = (if s.FindStepSize then 1 else 0); Iteration = 0 }

    let private estimate (s: FisherWarmupSettings) (e: EstimatorDraws) (current: Metric) : Metric option =
        if e.Count < 3 then None
        else
            let previous = Metric.inverseMassDiagonal current
            match s.LowRank with
            | None -> Some (Metric.diagonal (FisherEstimate.diagonal e.Positions e.Gradients previous))
            | Some lr -> Some (FisherEstimate.lowRank lr e.Positions e.Gradients previous)

    /// One warmup draw: a transition, a dual-averaging update, and before the final window the draw
    /// into the estimates (if it passes the filter), a switch when due, and a metric update when due.
    let step (s: FisherWarmupSettings) (kernel: TunableKernel) (key: RngKey) (st: FisherWarmupState) : FisherWarmupState * TransitionInfo =
        let sch = s.Schedule
        let i = st.Iteration
        if i >= sch.NumWarmup then
            invalidOp (sprintf "FisherWarmup.step: iteration %d is past the schedule's %d iterations." i sch.NumWarmup)
        let kStep, kSearch = Rng.split key
        let chain, info = kernel.Step st.StepSize st.Metric kStep st.Chain
        let da = DualAveraging.update s.DualAveraging info.AcceptStat st.DualAveraging
        if i >= sch.FinalWindowStart then
            { st with Chain = chain; StepSize = DualAveraging.stepSize da; DualAveraging = da; Iteration = i + 1 }, info
        else
            let isEarly = i < sch.EarlyEnd
            let fg, bg =
                if FisherSchedule.accepts info then
                    let g = chain.Gradient |> Array.map (fun v -> -v)
                    st.Foreground.Add(chain.Position, g), st.Background.Add(chain.Position, g)
                else st.Foreground, st.Background
            let window = if i = sch.EarlyEnd then max FisherSchedule.FirstWindow bg.Count else st.Window
            let switchEvery = if isEarly then FisherSchedule.EarlySwitch else window
            let switched = bg.Count >= switchEvery && switchEvery + i <= sch.FinalWindowStart
            let fg, bg = if switched then bg, EstimatorDraws.Empty else fg, bg
            let window = if switched && not isEarly then FisherSchedule.grow window else window
            let updated = if switched || i - st.LastUpdate >= sch.UpdateEvery then estimate s fg st.Metric else None
            let metric, lastUpdate = match updated with Some m -> m, i | None -> st.Metric, st.LastUpdate
            let eps, da, initial, searches =
                match updated with
                | Some _ when st.InitialMetric ->
                    let eps = search s kernel metric kSearch chain (DualAveraging.stepSize da)
                    eps, DualAveraging.init eps, false, st.Searches + (if s.FindStepSize then 1 else 0)
                | Some _ | None -> DualAveraging.stepSize da, da, st.InitialMetric, st.Searches
            { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = da; Foreground = fg; Background = bg
              Window = window; LastUpdate = lastUpdate; InitialMetric = initial; Searches = searches; Iteration = i + 1 }, info

    /// The adapted step size exp(x̄) and metric.
    let finish (st: FisherWarmupState) : AdaptedParameters =
        let eps = if st.DualAveraging.Counter > 0 then DualAveraging.final st.DualAveraging else st.StepSize
        { StepSize = eps; Metric = st.Metric }
