namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// Stan's windowed adaptation schedule for a number of warmup iterations: an initial fast buffer (step
/// size only), slow windows that double in size (the metric is estimated from each), and a terminal fast
/// buffer. Defaults 75 / 25 / 50; when they do not fit, 15 % / 75 % / 10 %; below 20 warmup iterations
/// the metric is not adapted at all.
type WindowSchedule =
    { NumWarmup: int
      /// False below 20 warmup iterations (step size only).
      AdaptsMetric: bool
      InitBuffer: int
      TermBuffer: int
      /// The slow windows as (first iteration, length).
      Windows: (int * int)[] }

/// The role of one warmup iteration.
[<Struct>]
type AdaptationStage =
    { /// The position is fed to the metric estimator.
      Slow: bool
      /// The metric is updated after this iteration (and the step size search restarts).
      WindowEnd: bool }

[<RequireQualifiedAccess>]
module WindowSchedule =

    /// Stan's constants: initial buffer, first slow window, terminal buffer.
    [<Literal>]
    let InitBuffer = 75
    [<Literal>]
    let BaseWindow = 25
    [<Literal>]
    let TermBuffer = 50

    /// The schedule Stan's windowed_adaptation follows for numWarmup iterations.
    let build (numWarmup: int) : WindowSchedule =
        if numWarmup < 0 then invalidArg "numWarmup" (sprintf "WindowSchedule: the number of warmup iterations must be non-negative, got %d." numWarmup)
        if numWarmup < 20 then
            { NumWarmup = numWarmup; AdaptsMetric = false; InitBuffer = numWarmup; TermBuffer = 0; Windows = [||] }
        else
            let init, term, baseW =
                if InitBuffer + BaseWindow + TermBuffer > numWarmup then
                    let i = int (0.15 * float numWarmup)
                    let t = int (0.1 * float numWarmup)
                    i, t, numWarmup - (i + t)
                else InitBuffer, TermBuffer, BaseWindow
            let last = numWarmup - term - 1
            let windows = ResizeArray()
            let mutable size = baseW
            let mutable next = init + size - 1
            let mutable start = init
            let mutable fin = false
            while not fin do
                windows.Add((start, next - start + 1))
                start <- next + 1
                if next = last then fin <- true
                else
                    let counter = next
                    size <- 2 * size
                    next <- counter + size
                    if next <> last && next + 2 * size >= numWarmup - term then next <- last
            { NumWarmup = numWarmup; AdaptsMetric = true; InitBuffer = init; TermBuffer = term; Windows = windows.ToArray() }

    /// The stage of every warmup iteration.
    let stages (s: WindowSchedule) : AdaptationStage[] =
        let out = Array.create s.NumWarmup { Slow = false; WindowEnd = false }
        for (start, len) in s.Windows do
            for i in start .. start + len - 1 do
                out.[i] <- { Slow = true; WindowEnd = (i = start + len - 1) }
        out

/// Settings of Nesterov dual averaging of log step size (Hoffman & Gelman 2014, as Stan codes it).
type DualAveragingSettings =
    { /// Target accept statistic δ (Stan: 0.8).
      TargetAccept: float
      Gamma: float
      T0: float
      Kappa: float }

    /// Stan's constants: δ = 0.8, γ = 0.05, t0 = 10, κ = 0.75.
    static member Default = { TargetAccept = 0.8; Gamma = 0.05; T0 = 10.0; Kappa = 0.75 }

/// The state of dual averaging.
type DualAveragingState =
    { Counter: int
      SBar: float
      /// log of the current step size.
      X: float
      /// The weighted average of X; exp(XBar) is the adapted step size.
      XBar: float
      /// The shrinkage target: log(10 ε0).
      Mu: float }

[<RequireQualifiedAccess>]
module DualAveraging =

    /// Checks the settings; raises naming the bad one.
    let validate (s: DualAveragingSettings) =
        if not (s.TargetAccept > 0.0 && s.TargetAccept < 1.0) then
            invalidArg "settings" (sprintf "The target accept statistic must be in (0, 1), got %g." s.TargetAccept)
        if not (s.Gamma > 0.0) then invalidArg "settings" (sprintf "Dual averaging: gamma must be positive, got %g." s.Gamma)
        if not (s.T0 >= 0.0) then invalidArg "settings" (sprintf "Dual averaging: t0 must be non-negative, got %g." s.T0)
        if not (s.Kappa > 0.0 && s.Kappa <= 1.0) then invalidArg "settings" (sprintf "Dual averaging: kappa must be in (0, 1], got %g." s.Kappa)

    /// A (re)started state around step size ε0: μ = log(10 ε0), counters at zero.
    let init (stepSize: float) : DualAveragingState =
        { Counter = 0; SBar = 0.0; X = log stepSize; XBar = 0.0; Mu = log 10.0 + log stepSize }

    /// The state a run starts from, as Stan's services start it: the first transition uses the searched ε0,
    /// but μ = log(10 ε_user) comes from the step size the user gave (1 by default), not from the search. From
    /// a point far in the tails the search finds ε0 ≈ 1e-56; a μ near it anchors the averaging where a step
    /// changes the energy by less than its rounding, those steps count as divergent, and the chain never
    /// leaves (arma11 from Stan's inits). Anchored at 10 ε_user, ε comes down from above until moves are
    /// accepted and then grows as the chain descends.
    let start (searched: float) (userStepSize: float) : DualAveragingState =
        { init searched with Mu = log 10.0 + log userStepSize }

    /// One update with an accept statistic (clipped at 1).
    let update (s: DualAveragingSettings) (acceptStat: float) (st: DualAveragingState) : DualAveragingState =
        let a = if acceptStat > 1.0 then 1.0 else acceptStat
        let t = float (st.Counter + 1)
        let eta = 1.0 / (t + s.T0)
        let sBar = (1.0 - eta) * st.SBar + eta * (s.TargetAccept - a)
        let x = st.Mu - sBar * sqrt t / s.Gamma
        let xEta = t ** -s.Kappa
        let xBar = (1.0 - xEta) * st.XBar + xEta * x
        { Counter = st.Counter + 1; SBar = sBar; X = x; XBar = xBar; Mu = st.Mu }

    /// The current step size exp(X).
    let stepSize (st: DualAveragingState) = exp st.X

    /// The adapted step size exp(XBar).
    let final (st: DualAveragingState) = exp st.XBar

/// Welford's running mean and (co)variance of positions.
[<NoEquality; NoComparison>]
type WelfordState =
    { N: int
      Mean: float[]
      /// The sums of squared deviations: d entries (diagonal) or d×d row-major (dense).
      M2: float[]
      Dense: bool }

[<RequireQualifiedAccess>]
module Welford =

    /// An empty estimator of dimension d.
    let init (dense: bool) (d: int) : WelfordState =
        { N = 0; Mean = Array.zeroCreate d; M2 = Array.zeroCreate (if dense then d * d else d); Dense = dense }

    /// Adds one position.
    let add (x: float[]) (w: WelfordState) : WelfordState =
        let d = w.Mean.Length
        let n = w.N + 1
        let mean = Array.copy w.Mean
        let m2 = Array.copy w.M2
        let delta = Array.init d (fun i -> x.[i] - w.Mean.[i])
        for i in 0 .. d - 1 do mean.[i] <- mean.[i] + delta.[i] / float n
        if w.Dense then
            for i in 0 .. d - 1 do
                let di = x.[i] - mean.[i]
                for j in 0 .. d - 1 do m2.[i * d + j] <- m2.[i * d + j] + delta.[j] * di
        else
            for i in 0 .. d - 1 do m2.[i] <- m2.[i] + delta.[i] * (x.[i] - mean.[i])
        { w with N = n; Mean = mean; M2 = m2 }

    /// Stan's regularized metric from the samples: (n/(n+5))·Σ̂ + 1e-3·(5/(n+5))·I, Σ̂ = M2/(n−1).
    let metric (w: WelfordState) : Metric =
        if w.N < 2 then invalidOp (sprintf "Welford: the metric needs at least two samples, got %d." w.N)
        let n = float w.N
        let d = w.Mean.Length
        let a = n / (n + 5.0)
        let b = 1e-3 * (5.0 / (n + 5.0))
        let bad () = invalidOp "Warmup: the estimated metric is not finite; the chain produced non-finite positions (check the model's parameterization)."
        if w.Dense then
            let m = Array2D.init d d (fun i j -> a * w.M2.[i * d + j] / (n - 1.0) + (if i = j then b else 0.0))
            for i in 0 .. d - 1 do
                for j in 0 .. i - 1 do
                    let s = 0.5 * (m.[i, j] + m.[j, i])
                    m.[i, j] <- s; m.[j, i] <- s
            if m |> Seq.cast<float> |> Seq.exists (fun v -> not (Double.IsFinite v)) then bad ()
            Metric.dense m
        else
            let v = Array.init d (fun i -> a * w.M2.[i] / (n - 1.0) + b)
            if v |> Array.exists (fun x -> not (Double.IsFinite x)) then bad ()
            Metric.diagonal v

/// Settings of warmup (Stan's adaptation) for any tunable kernel; `WarmupSettings.Default` is Stan's.
type WarmupSettings =
    { NumWarmup: int
      DualAveraging: DualAveragingSettings
      /// Adapt a dense metric (else diagonal).
      DenseMetric: bool
      /// Run Stan's step-size heuristic at the start and after every metric update (else, as BlackJAX,
      /// start from InitialStepSize and keep the dual-averaging iterate).
      FindStepSize: bool
      InitialStepSize: float }

    static member Default =
        { NumWarmup = 1000; DualAveraging = DualAveragingSettings.Default; DenseMetric = false; FindStepSize = true; InitialStepSize = 1.0 }

/// What warmup tunes: the step size and the metric that the kernel is then run with.
[<NoEquality; NoComparison>]
type AdaptedParameters = { StepSize: float; Metric: Metric }

/// The state of the warmup fold: the chain, the current step size and metric, and the adaptation.
[<NoEquality; NoComparison>]
type WarmupState =
    { Chain: HmcState
      StepSize: float
      Metric: Metric
      DualAveraging: DualAveragingState
      Welford: WelfordState
      /// Warmup iterations done.
      Iteration: int }

/// Warmup as a fold over any tunable kernel (BlackJAX's window adaptation: the kernel gets the current
/// step size and metric on every call): `init`, then `step` once per warmup iteration, then `finish` gives
/// the adapted step size and metric.
[<RequireQualifiedAccess>]
module Warmup =

    /// Checks the settings; raises naming the bad one.
    let validate (s: WarmupSettings) =
        if s.NumWarmup < 0 then invalidArg "settings" (sprintf "Warmup: the number of warmup iterations must be non-negative, got %d." s.NumWarmup)
        DualAveraging.validate s.DualAveraging
        Dyn.checkStepSize "Warmup (InitialStepSize)" s.InitialStepSize

    /// The starting state: unit metric and, unless turned off, Stan's step-size heuristic from InitialStepSize.
    let init (s: WarmupSettings) (kernel: TunableKernel) (key: RngKey) (chain: HmcState) : WarmupState =
        validate s
        let d = kernel.Dim
        let metric = if s.DenseMetric then Metric.dense (Array2D.init d d (fun i j -> if i = j then 1.0 else 0.0)) else Metric.identity d
        let eps = if s.FindStepSize then Hmc.findStepSize kernel.Evaluator metric key chain s.InitialStepSize else s.InitialStepSize
        { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = DualAveraging.start eps s.InitialStepSize
          Welford = Welford.init s.DenseMetric d; Iteration = 0 }

    /// One warmup iteration: a transition with the current step size and metric, a dual-averaging update,
    /// and (per the stage) a metric sample and, at a window end, a new metric with a fresh step-size search
    /// and a restarted averaging.
    let step (s: WarmupSettings) (stages: AdaptationStage[]) (kernel: TunableKernel) (key: RngKey) (st: WarmupState) : WarmupState * TransitionInfo =
        if st.Iteration >= stages.Length then
            invalidOp (sprintf "Warmup.step: iteration %d is past the schedule's %d iterations." st.Iteration stages.Length)
        let kStep, kSearch = Rng.split key
        let chain, info = kernel.Step st.StepSize st.Metric kStep st.Chain
        let da = DualAveraging.update s.DualAveraging info.AcceptStat st.DualAveraging
        let eps = DualAveraging.stepSize da
        let stage = stages.[st.Iteration]
        let welford = if stage.Slow then Welford.add chain.Position st.Welford else st.Welford
        let next =
            if stage.WindowEnd then
                let metric = Welford.metric welford
                let eps = if s.FindStepSize then Hmc.findStepSize kernel.Evaluator metric kSearch chain eps else eps
                { Chain = chain; StepSize = eps; Metric = metric; DualAveraging = DualAveraging.init eps
                  Welford = Welford.init s.DenseMetric kernel.Dim; Iteration = st.Iteration + 1 }
            else
                { st with Chain = chain; StepSize = eps; DualAveraging = da; Welford = welford; Iteration = st.Iteration + 1 }
        next, info

    /// The adapted settings: step size exp(x̄) of the averaging (unchanged when no warmup ran), the metric.
    let finish (st: WarmupState) : AdaptedParameters =
        let eps = if st.DualAveraging.Counter > 0 then DualAveraging.final st.DualAveraging else st.StepSize
        { StepSize = eps; Metric = st.Metric }
