namespace FunctionalBayes

open System
open System.Diagnostics
open System.Threading
open System.Threading.Tasks
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

/// How MCMC computes the potential's value and gradient.
[<RequireQualifiedAccess>]
type McmcGradient =
    /// The compiled program when the model's graph is static, else the autodiff tape (`Compilation.auto`).
    | Auto
    /// The autodiff tape (`GradientSource.tape`): no compiling.
    | Tape

/// Settings of `Mcmc.run` / `Fit.mcmc` (NUTS with Stan's adaptation), plain data with structural equality:
/// progress, messages, cancellation and checkpoints are the RunContext's. Start from McmcOptions.Default;
/// Mcmc.validate holds every rule.
type McmcOptions =
    { Chains: int
      /// Warmup (adaptation) iterations per chain; they are not kept.
      Warmup: int
      /// Kept draws per chain (after thinning).
      Samples: int
      /// Keep every Thin-th sampling iteration (Samples·Thin iterations are run).
      Thin: int
      Seed: uint64
      /// Target accept statistic of the step-size adaptation (Stan's adapt_delta, 0.8).
      TargetAccept: float
      MaxTreeDepth: int
      /// An energy error above this is a divergence (Stan: 1000).
      MaxDeltaH: float
      /// How warmup estimates the metric: Stan's (default), dense, or nutpie's Fisher diagonal or low rank.
      Adaptation: MetricAdaptation
      /// Stan's step-size heuristic at the start and after each metric window (BlackJAX: false).
      FindInitialStepSize: bool
      InitialStepSize: float
      /// The starting point of each chain; up to 100 tries when the potential or gradient is not finite.
      Init: InitStrategy
      /// Run chains in parallel (the draws are the same either way).
      Parallel: bool
      /// How the potential's value and gradient are computed (the same numbers either way).
      Gradient: McmcGradient }

    /// Stan's defaults: 4 chains of 1000 warmup and 1000 draws, δ = 0.8, depth 10, diagonal metric.
    static member Default =
        { Chains = 4; Warmup = 1000; Samples = 1000; Thin = 1; Seed = 0UL; TargetAccept = 0.8; MaxTreeDepth = 10
          MaxDeltaH = NutsParameters.DefaultMaxDeltaH; Adaptation = MetricAdaptation.Stan; FindInitialStepSize = true; InitialStepSize = 1.0
          Init = InitUniform 2.0; Parallel = true; Gradient = McmcGradient.Auto }

/// The sampler parameters of every kept draw of one chain (CmdStan's `__` columns), and its adaptation.
[<NoEquality; NoComparison>]
type ChainStats =
    { StepSize: float[]
      TreeDepth: int[]
      NumLeapfrog: int[]
      Divergent: bool[]
      Energy: float[]
      AcceptStat: float[]
      /// The log density (−U) on unconstrained space, Jacobian included.
      Lp: float[]
      /// The adapted step size and metric.
      AdaptedStepSize: float
      Metric: Metric
      WarmupDivergences: int
      WarmupSeconds: float
      SamplingSeconds: float }

/// The draws of a flat (unconstrained) run: per chain, Samples × Dim positions row-major.
[<NoEquality; NoComparison>]
type FlatMcmcRun =
    { Dim: int
      Positions: float[][]
      Stats: ChainStats[] }

/// The result of `Mcmc.run`: constrained draws per latent site with shape [chains; draws; ...site shape],
/// the unconstrained positions and the sampler parameters per chain.
[<NoEquality; NoComparison>]
type McmcResult =
    { Sites: LatentSite[]
      Draws: Map<string, Tensor>
      /// The model's deterministic sites (Model.deterministic) at every draw, shape [chains; draws; ...site shape].
      Deterministic: Map<string, Tensor>
      Flat: FlatMcmcRun
      /// How the gradient source computed.
      GradientKind: GradientKind
      MaxTreeDepth: int
      /// The target accept statistic of the adaptation.
      TargetAccept: float
      Seconds: float
      /// The settings of the run (None for a file written before they were saved).
      Options: McmcOptions option }

    member r.Chains = r.Flat.Stats.Length
    member r.NumDraws = if r.Flat.Stats.Length = 0 then 0 else r.Flat.Stats.[0].StepSize.Length

/// NUTS with Stan's windowed adaptation over chains that run in parallel; chain k's draws depend only on
/// the seed and k.
[<RequireQualifiedAccess>]
module Mcmc =

    /// Checks the options (the one place their rules live); raises ArgumentOutOfRangeException naming the
    /// bad option and the fix.
    let validate (o: McmcOptions) =
        let bad (name: string) (value: obj) (msg: string) = raise (ArgumentOutOfRangeException(name, value, "MCMC: " + msg))
        if o.Chains < 1 then bad "Chains" o.Chains (sprintf "Chains must be at least 1, got %d." o.Chains)
        if o.Warmup < 0 then bad "Warmup" o.Warmup (sprintf "Warmup must be non-negative, got %d." o.Warmup)
        if o.Samples < 1 then bad "Samples" o.Samples (sprintf "Samples must be at least 1, got %d." o.Samples)
        if o.Thin < 1 then bad "Thin" o.Thin (sprintf "Thin must be at least 1, got %d." o.Thin)
        if not (o.TargetAccept > 0.0 && o.TargetAccept < 1.0) then
            bad "TargetAccept" o.TargetAccept (sprintf "TargetAccept must be in (0, 1), got %g (Stan's default is 0.8; use 0.9-0.99 for hard geometry)." o.TargetAccept)
        Dyn.checkMaxTreeDepth "MCMC" o.MaxTreeDepth
        Dyn.checkMaxDeltaH "MCMC" o.MaxDeltaH
        if not (Double.IsFinite o.InitialStepSize && o.InitialStepSize > 0.0) then
            bad "InitialStepSize" o.InitialStepSize (sprintf "InitialStepSize must be finite and positive, got %g." o.InitialStepSize)
        InitStrategy.Validate(o.Init, "MCMC")
        match o.Adaptation with
        | MetricAdaptation.FisherLowRank s ->
            if not (Double.IsFinite s.Gamma && s.Gamma > 0.0) then
                bad "Adaptation" s.Gamma (sprintf "the low-rank ridge Gamma must be finite and positive, got %g (nutpie's default is 1e-5)." s.Gamma)
            if not (Double.IsFinite s.Cutoff && s.Cutoff > 1.0) then
                bad "Adaptation" s.Cutoff (sprintf "the low-rank eigenvalue Cutoff must be finite and above 1, got %g (nutpie's default is 2)." s.Cutoff)
        | MetricAdaptation.Stan | MetricAdaptation.Dense | MetricAdaptation.FisherDiagonal -> ()

    let internal warmupSettings (o: McmcOptions) : WarmupSettings =
        { NumWarmup = o.Warmup
          DualAveraging = { DualAveragingSettings.Default with TargetAccept = o.TargetAccept }
          DenseMetric = (match o.Adaptation with
                         | MetricAdaptation.Dense -> true
                         | MetricAdaptation.Stan | MetricAdaptation.FisherDiagonal | MetricAdaptation.FisherLowRank _ -> false)
          FindStepSize = o.FindInitialStepSize; InitialStepSize = o.InitialStepSize }

    /// The warmup fold an adapter runs: Stan's windows or nuts-rs's Fisher schedule.
    [<NoEquality; NoComparison>]
    type internal WarmupFold =
        | StanWarmup of WarmupState
        | FisherWarmupFold of FisherWarmupState

        member w.Chain = match w with StanWarmup s -> s.Chain | FisherWarmupFold s -> s.Chain
        member w.StepSize = match w with StanWarmup s -> s.StepSize | FisherWarmupFold s -> s.StepSize
        member w.WithChain(c: HmcState) =
            match w with
            | StanWarmup s -> StanWarmup { s with Chain = c }
            | FisherWarmupFold s -> FisherWarmupFold { s with Chain = c }

    /// The key of chain k for a seed.
    let internal chainKey (seed: uint64) (k: int) = Rng.foldIn (snd (Rng.split (Rng.key seed))) k

    /// The state of one chain's run: the warmup fold (whose Chain is the current state also after warmup),
    /// the adapted settings once warmup is over, the counts and the kept draws so far.
    [<NoEquality; NoComparison>]
    type private ChainRun =
        { Warm: WarmupFold
          Adapted: AdaptedParameters option
          Divergences: int
          WarmupDivergences: int
          WarmupSeconds: float
          Positions: float[]
          StepSize: float[]
          Depth: int[]
          NLeap: int[]
          Div: bool[]
          Energy: float[]
          Accept: float[]
          Lp: float[] }

    let private metricNode (m: Metric) : JsonNode =
        let o = JsonObject()
        match m with
        | DiagonalMetric v -> o.["diagonal"] <- Checkpoint.floats v
        | DenseMetric (a, _) ->
            o.["dim"] <- JsonValue.Create (Array2D.length1 a)
            o.["dense"] <- Checkpoint.floats (Seq.cast<float> a |> Seq.toArray)
        | LowRankMetric (sc, u, lam) ->
            o.["scale"] <- Checkpoint.floats sc
            o.["vectors"] <- Checkpoint.floats u
            o.["values"] <- Checkpoint.floats lam
        o :> JsonNode

    let private readMetric (n: JsonNode) : Metric =
        match n.["diagonal"], n.["scale"] with
        | null, null ->
            let d = (nonNull n.["dim"]).GetValue<int>()
            let v = Checkpoint.readFloats (nonNull n.["dense"])
            Metric.dense (Array2D.init d d (fun i j -> v.[i * d + j]))
        | null, sc -> Metric.lowRank (Checkpoint.readFloats (nonNull sc)) (Checkpoint.readFloats (nonNull n.["vectors"])) (Checkpoint.readFloats (nonNull n.["values"]))
        | diag, _ -> Metric.diagonal (Checkpoint.readFloats diag)

    let private drawsNode (e: EstimatorDraws) : JsonNode =
        let o = JsonObject()
        o.["count"] <- JsonValue.Create e.Count
        o.["positions"] <- Checkpoint.floats (Array.concat e.Positions)
        o.["gradients"] <- Checkpoint.floats (Array.concat e.Gradients)
        o :> JsonNode

    let private readDraws (n: JsonNode) : EstimatorDraws =
        let count = (nonNull n.["count"]).GetValue<int>()
        let split (v: float[]) = if count = 0 then [||] else Array.chunkBySize (v.Length / count) v
        { Positions = split (Checkpoint.readFloats (nonNull n.["positions"])); Gradients = split (Checkpoint.readFloats (nonNull n.["gradients"])) }

    let private daNode (o: JsonObject) (da: DualAveragingState) =
        o.["da"] <- Checkpoint.floats [| da.SBar; da.X; da.XBar; da.Mu |]
        o.["daCounter"] <- JsonValue.Create da.Counter

    let private readDa (n: JsonNode) : DualAveragingState =
        let da = Checkpoint.readFloats (nonNull n.["da"])
        { Counter = (nonNull n.["daCounter"]).GetValue<int>(); SBar = da.[0]; X = da.[1]; XBar = da.[2]; Mu = da.[3] }

    let private chainNode (o: JsonObject) (c: HmcState) =
        o.["position"] <- Checkpoint.floats c.Position
        o.["potential"] <- Checkpoint.scalar c.PotentialEnergy
        o.["gradient"] <- Checkpoint.floats c.Gradient

    let private readChainState (n: JsonNode) : HmcState =
        { Position = Checkpoint.readFloats (nonNull n.["position"]); PotentialEnergy = Checkpoint.readScalar (nonNull n.["potential"])
          Gradient = Checkpoint.readFloats (nonNull n.["gradient"]) }

    let private saveChain (r: ChainRun) : JsonNode =
        let o = JsonObject()
        match r.Warm with
        | StanWarmup w ->
            chainNode o w.Chain
            o.["stepSize"] <- Checkpoint.scalar w.StepSize
            o.["metric"] <- metricNode w.Metric
            daNode o w.DualAveraging
            o.["welfordN"] <- JsonValue.Create w.Welford.N
            o.["welfordMean"] <- Checkpoint.floats w.Welford.Mean
            o.["welfordM2"] <- Checkpoint.floats w.Welford.M2
            o.["welfordDense"] <- JsonValue.Create w.Welford.Dense
            o.["iteration"] <- JsonValue.Create w.Iteration
        | FisherWarmupFold w ->
            chainNode o w.Chain
            o.["stepSize"] <- Checkpoint.scalar w.StepSize
            o.["metric"] <- metricNode w.Metric
            daNode o w.DualAveraging
            o.["foreground"] <- drawsNode w.Foreground
            o.["background"] <- drawsNode w.Background
            o.["window"] <- JsonValue.Create w.Window
            o.["lastUpdate"] <- JsonValue.Create w.LastUpdate
            o.["initialMetric"] <- JsonValue.Create w.InitialMetric
            o.["searches"] <- JsonValue.Create w.Searches
            o.["lateDraws"] <- JsonValue.Create w.LateDraws
            o.["lateDivergences"] <- JsonValue.Create w.LateDivergences
            o.["iteration"] <- JsonValue.Create w.Iteration
        match r.Adapted with
        | Some a ->
            o.["adaptedStepSize"] <- Checkpoint.scalar a.StepSize
            o.["adaptedMetric"] <- metricNode a.Metric
        | None -> ()
        o.["divergences"] <- JsonValue.Create r.Divergences
        o.["warmupDivergences"] <- JsonValue.Create r.WarmupDivergences
        o.["warmupSeconds"] <- Checkpoint.scalar r.WarmupSeconds
        o.["positions"] <- Checkpoint.floats r.Positions
        o.["stepSizes"] <- Checkpoint.floats r.StepSize
        o.["depth"] <- Checkpoint.ints r.Depth
        o.["nLeap"] <- Checkpoint.ints r.NLeap
        o.["div"] <- Checkpoint.ints (r.Div |> Array.map (fun b -> if b then 1 else 0))
        o.["energy"] <- Checkpoint.floats r.Energy
        o.["accept"] <- Checkpoint.floats r.Accept
        o.["lp"] <- Checkpoint.floats r.Lp
        o :> JsonNode

    let private loadChain (n: JsonNode) : ChainRun =
        let get (name: string) = nonNull n.[name]
        let fl name = Checkpoint.readFloats (get name)
        { Warm =
            match n.["foreground"] with
            | null ->
                StanWarmup
                    { Chain = readChainState n
                      StepSize = Checkpoint.readScalar (get "stepSize"); Metric = readMetric (get "metric"); DualAveraging = readDa n
                      Welford = { N = (get "welfordN").GetValue<int>(); Mean = fl "welfordMean"; M2 = fl "welfordM2"; Dense = (get "welfordDense").GetValue<bool>() }
                      Iteration = (get "iteration").GetValue<int>() }
            | fg ->
                FisherWarmupFold
                    { Chain = readChainState n
                      StepSize = Checkpoint.readScalar (get "stepSize"); Metric = readMetric (get "metric"); DualAveraging = readDa n
                      Foreground = readDraws fg; Background = readDraws (get "background"); Window = (get "window").GetValue<int>()
                      LastUpdate = (get "lastUpdate").GetValue<int>(); InitialMetric = (get "initialMetric").GetValue<bool>()
                      Searches = (get "searches").GetValue<int>(); Iteration = (get "iteration").GetValue<int>()
                      // a checkpoint written before the counts were kept: none counted
                      LateDraws = (match n.["lateDraws"] with null -> 0 | v -> v.GetValue<int>())
                      LateDivergences = (match n.["lateDivergences"] with null -> 0 | v -> v.GetValue<int>()) }
          Adapted =
            match n.["adaptedStepSize"] with
            | null -> None
            | eps -> Some { StepSize = Checkpoint.readScalar eps; Metric = readMetric (get "adaptedMetric") }
          Divergences = (get "divergences").GetValue<int>(); WarmupDivergences = (get "warmupDivergences").GetValue<int>()
          WarmupSeconds = Checkpoint.readScalar (get "warmupSeconds")
          Positions = fl "positions"; StepSize = fl "stepSizes"; Depth = Checkpoint.readInts (get "depth"); NLeap = Checkpoint.readInts (get "nLeap")
          Div = Checkpoint.readInts (get "div") |> Array.map (fun v -> v <> 0); Energy = fl "energy"; Accept = fl "accept"; Lp = fl "lp" }

    /// One chain as a run kernel: warmup iterations 0 .. Warmup-1, then sampling; step i's keys derive from
    /// the seed, the chain and i alone.
    let private chainKernel (o: McmcOptions) (ev: IGradientEvaluator) (k: int) (first: HmcState)
                            : RunKernel<TunableKernel * Stopwatch, ChainRun, TransitionInfo, float[] * ChainStats> =
        let ws = warmupSettings o
        let ks = Rng.splitN (chainKey o.Seed k) 4
        let kAdaptInit, kWarm, kSample = ks.[1], ks.[2], ks.[3]
        let stages = WindowSchedule.stages (WindowSchedule.build o.Warmup)
        let fisher =
            match o.Adaptation with
            | MetricAdaptation.Stan | MetricAdaptation.Dense -> None
            | MetricAdaptation.FisherDiagonal | MetricAdaptation.FisherLowRank _ ->
                Some (FisherWarmup.settings o.Adaptation o.Warmup ws.DualAveraging ws.FindStepSize ws.InitialStepSize)
        let warmInit kernel =
            match fisher with
            | None -> StanWarmup (Warmup.init ws kernel kAdaptInit first)
            | Some fs -> FisherWarmupFold (FisherWarmup.init fs kernel kAdaptInit first)
        let warmStep kernel key warm =
            match warm, fisher with
            | StanWarmup w, None -> let w, info = Warmup.step ws stages kernel key w in StanWarmup w, info
            | FisherWarmupFold w, Some fs -> let w, info = FisherWarmup.step fs kernel key w in FisherWarmupFold w, info
            | StanWarmup _, Some _ | FisherWarmupFold _, None -> invalidOp "MCMC: the checkpoint's warmup state is not the adapter's."
        let warmFinish warm = match warm with StanWarmup w -> Warmup.finish w | FisherWarmupFold w -> FisherWarmup.finish w
        let n = o.Samples
        let d = ev.Dim
        let finishWarmup (w: Stopwatch) (r: ChainRun) =
            { r with Adapted = Some (warmFinish r.Warm); WarmupDivergences = r.Divergences; WarmupSeconds = w.Elapsed.TotalSeconds }
        let step (kernel: TunableKernel, w: Stopwatch) (i: int) (r: ChainRun) =
            if i < o.Warmup then
                let next, info = warmStep kernel (Rng.foldIn kWarm i) r.Warm
                let r = { r with Warm = next; Divergences = r.Divergences + (if info.Divergent then 1 else 0) }
                (if i = o.Warmup - 1 then finishWarmup w r else r), info
            else
                let s = i - o.Warmup
                let p = r.Adapted.Value
                let st, info = kernel.Step p.StepSize p.Metric (Rng.foldIn kSample s) r.Warm.Chain
                if (s + 1) % o.Thin = 0 then
                    let j = s / o.Thin
                    Array.blit st.Position 0 r.Positions (j * d) d
                    r.StepSize.[j] <- info.StepSize
                    r.Depth.[j] <- info.TreeDepth
                    r.NLeap.[j] <- info.NumLeapfrog
                    r.Div.[j] <- info.Divergent
                    r.Energy.[j] <- info.Energy
                    r.Accept.[j] <- info.AcceptStat
                    r.Lp.[j] <- -st.PotentialEnergy
                { r with Warm = r.Warm.WithChain st; Divergences = r.Divergences + (if info.Divergent then 1 else 0) }, info
        { Name = "nuts"
          // explicit fields: "%A" of the whole record costs milliseconds of reflection per chain
          Identity =
            let init = match o.Init with InitUniform r -> sprintf "uniform %g" r | InitMedian m -> sprintf "median %d" m | InitFeasible -> "feasible" | InitValues _ -> "values"
            let gradient = match o.Gradient with McmcGradient.Auto -> "auto" | McmcGradient.Tape -> "tape"
            sprintf "chain %d, dim %d, seed %d, warmup %d, samples %d, thin %d, target %g, depth %d, maxDeltaH %g, metric %s, find %b, eps0 %g, init %s, gradient %s"
                k d o.Seed o.Warmup o.Samples o.Thin o.TargetAccept o.MaxTreeDepth o.MaxDeltaH o.Adaptation.Text o.FindInitialStepSize o.InitialStepSize init gradient
          Workspace = fun () -> Nuts.tunable ev o.MaxTreeDepth o.MaxDeltaH, Stopwatch.StartNew()
          Init = fun (kernel, w) ->
            let r =
                { Warm = warmInit kernel; Adapted = None; Divergences = 0; WarmupDivergences = 0; WarmupSeconds = 0.0
                  Positions = Array.zeroCreate (n * d); StepSize = Array.zeroCreate n; Depth = Array.zeroCreate n; NLeap = Array.zeroCreate n
                  Div = Array.zeroCreate n; Energy = Array.zeroCreate n; Accept = Array.zeroCreate n; Lp = Array.zeroCreate n }
            if o.Warmup = 0 then finishWarmup w r else r
          Step = step
          Finish = fun (_, w) r ->
            let p = r.Adapted.Value
            r.Positions,
            { StepSize = r.StepSize; TreeDepth = r.Depth; NumLeapfrog = r.NLeap; Divergent = r.Div; Energy = r.Energy; AcceptStat = r.Accept
              Lp = r.Lp; AdaptedStepSize = p.StepSize; Metric = p.Metric; WarmupDivergences = r.WarmupDivergences
              WarmupSeconds = r.WarmupSeconds; SamplingSeconds = max 0.0 (w.Elapsed.TotalSeconds - r.WarmupSeconds) }
          Loss = None
          Report = fun r _ p ->
            let warm = p.Step <= o.Warmup
            { p with Chain = k; Phase = (if warm then RunPhase.Warmup else RunPhase.Sampling); Divergences = r.Divergences
                     StepSize = (match r.Adapted with Some a when not warm -> a.StepSize | _ -> r.Warm.StepSize) }
          Save = saveChain
          Load = fun _ n -> loadChain n }

    /// Runs f 0 .. n-1, in parallel or not; a cancellation surfaces as OperationCanceledException and
    /// any other failure as itself.
    let private forChains (parallelRun: bool) (ct: CancellationToken) (n: int) (f: int -> 'R) : 'R[] =
        if not parallelRun then Array.init n f
        else
            let tasks = Array.init n (fun k -> Task.Run(fun () -> f k))
            try
                Task.WaitAll(tasks |> Array.map (fun t -> t :> Task))
                tasks |> Array.map (fun t -> t.Result)
            with :? AggregateException as ae ->
                let inner = ae.Flatten().InnerExceptions
                match inner |> Seq.tryFind (fun e -> e :? OperationCanceledException) with
                | Some _ -> raise (OperationCanceledException("MCMC: the run was cancelled.", ct))
                | None -> Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(inner.[0]).Throw(); Unchecked.defaultof<_>

    /// Times the gradient at a position and logs Stan's cost estimate.
    let private logCost (ctx: RunContext) (ev: IGradientEvaluator) (q: float[]) =
        let g = Array.zeroCreate ev.Dim
        ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore
        let reps = 10
        let sw = Stopwatch.StartNew()
        for _ in 1 .. reps do ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore
        let sec = sw.Elapsed.TotalSeconds / float reps
        ctx.Log (sprintf "Gradient evaluation took %.3g µs; 1000 transitions of 10 leapfrog steps would take %.3g s." (sec * 1e6) (sec * 1e4))

    /// The per-chain checkpoint to resume from: chain k's file when it exists (a chain that wrote none
    /// starts afresh, which is what it would have done).
    let private chainResume (resumeFrom: string option) (chains: int) =
        match resumeFrom with
        | None -> fun _ -> None
        | Some path ->
            let files = Array.init chains (Checkpoint.chainPath path)
            if files |> Array.forall (fun f -> not (IO.File.Exists f)) then
                raise (IO.FileNotFoundException(sprintf "MCMC: no chain checkpoints %s to resume from." (Checkpoint.chainPath path 0), Checkpoint.chainPath path 0))
            fun k -> if IO.File.Exists files.[k] then Some files.[k] else None

    let private sampleFlatFrom (ctx: RunContext) (resumeFrom: string option) (o: McmcOptions) (source: GradientSource) (inits: float[][]) : FlatMcmcRun =
        validate o
        RunContext.Validate ctx
        if inits.Length <> o.Chains then
            invalidArg "inits" (sprintf "MCMC: %d starting positions for %d chains; give one per chain." inits.Length o.Chains)
        let evs = Array.init o.Chains (fun _ -> source.Create())
        let firsts =
            inits |> Array.mapi (fun k q ->
                let s = Dyn.init evs.[k] q
                if not (Double.IsFinite s.PotentialEnergy) || s.Gradient |> Array.exists (fun v -> not (Double.IsFinite v)) then
                    invalidArg "inits" (sprintf "MCMC: the potential or its gradient is not finite at the starting position of chain %d." k)
                s)
        logCost ctx evs.[0] firsts.[0].Position
        let resumeOf = chainResume resumeFrom o.Chains
        let total = o.Warmup + o.Samples * o.Thin
        let results =
            forChains o.Parallel ctx.Cancellation o.Chains (fun k ->
                let chainCtx = { ctx with Checkpoint = ctx.Checkpoint |> Option.map (fun p -> { p with Path = Checkpoint.chainPath p.Path k }) }
                (Run.fold chainCtx None total (resumeOf k) (chainKernel o evs.[k] k firsts.[k])).Result)
        { Dim = source.Dim; Positions = results |> Array.map fst; Stats = results |> Array.map snd }

    /// Samples a flat potential (any user log density) under a run context: one starting position per
    /// chain (positions are checked for a finite potential and gradient).
    let sampleFlatIn (ctx: RunContext) (o: McmcOptions) (source: GradientSource) (inits: float[][]) : FlatMcmcRun =
        sampleFlatFrom ctx None o source inits

    /// sampleFlatIn with RunContext.Default.
    let sampleFlat (o: McmcOptions) (source: GradientSource) (inits: float[][]) : FlatMcmcRun =
        sampleFlatIn RunContext.Default o source inits

    /// Which site made the potential non-finite at these unconstrained values (for messages).
    let private badSite (m: Model<'T>) (p: Potential) (us: Tensor[]) (grad: float[]) (u: float) : string =
        let mutable off = 0
        let gradSite =
            p.Latents |> Array.tryPick (fun l ->
                let n = Shape.size l.UnconstrainedShape
                let bad = Seq.init n (fun j -> grad.[off + j]) |> Seq.exists (fun v -> not (Double.IsFinite v))
                off <- off + n
                if bad then Some l.Name else None)
        let densitySite () =
            try
                let _, tr = LogDensity.traceWith (p.Constrain us) None m
                tr.Sites
                |> Array.filter (fun s -> s.Kind = SampleSite || s.Kind = FactorSite)
                |> Array.tryPick (fun s ->
                    let v = Tensor.toScalar (Tensor.sum (Site.logDensity s))
                    if Double.IsFinite v then None else Some s.Name)
            with _ -> None
        if not (Double.IsFinite u) then
            match densitySite () with
            | Some s -> sprintf "the log density of site '%s' is not finite (potential %g)" s u
            | None -> sprintf "the potential is %g" u
        else
            match gradSite with
            | Some s -> sprintf "the gradient with respect to site '%s' is not finite" s
            | None -> "the gradient is not finite"

    /// Where the potential raised at these unconstrained values (for messages): the site whose log
    /// density raised, or the last site the model reached before it raised, with the op's message.
    let private raisingSite (m: Model<'T>) (p: Potential) (us: Tensor[]) (e: exn) : string =
        let reached = Collections.Generic.List<string>()
        let recorded = Handlers.custom (fun s next -> reached.Add s.Name; next s) m
        try
            let _, tr = LogDensity.traceWith (p.Constrain us) None recorded
            tr.Sites
            |> Array.filter (fun s -> s.Kind = SampleSite || s.Kind = FactorSite)
            |> Array.tryPick (fun s -> try Site.logDensity s |> ignore; None with ex -> Some (sprintf "the log density of site '%s' raised: %s" s.Name ex.Message))
            |> Option.defaultValue (sprintf "the potential raised: %s" e.Message)
        with ex ->
            if reached.Count = 0 then sprintf "the model raised before its first site: %s" ex.Message
            else sprintf "the model raised after site '%s' (the last site it reached): %s" reached.[reached.Count - 1] ex.Message

    /// A finite starting position for chain k by the strategy, with up to 100 tries.
    let internal initPosition (o: McmcOptions) (m: Model<'T>) (p: Potential) (ev: IGradientEvaluator) (k: int) : float[] =
        let kInit = (Rng.splitN (chainKey o.Seed k) 4).[0]
        let g = Array.zeroCreate ev.Dim
        let mutable result = None
        let mutable last = ""
        let mutable attempt = 0
        while result.IsNone && attempt < 100 do
            let us = LogDensity.init o.Init (Rng.foldIn kInit attempt) m p
            let q = FlatPosition.join p us
            // an exception inside the potential is a failed try, as a non-finite value is (Stan's retry)
            match (try Ok (ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g))) with :? OperationCanceledException -> reraise () | e -> Error e) with
            | Ok u when Double.IsFinite u && g |> Array.forall Double.IsFinite -> result <- Some q
            | Ok u -> last <- badSite m p us g u
            | Error e -> last <- raisingSite m p us e
            attempt <- attempt + 1
        match result with
        | Some q -> q
        | None ->
            invalidOp (sprintf "MCMC: chain %d found no starting point with a finite potential and gradient in 100 tries (%A); at the last try %s. Check that site's prior and support, or give starting values (Init = InitValues ...)." k o.Init last)

    /// The discrete latent sites of a model (from one prior draw).
    let internal discreteLatents (key: RngKey) (m: Model<'T>) : string[] =
        let _, tr = Traced.probe key m
        Trace.latents tr |> Array.filter (fun s -> (Dist.support s.Dist.Value).IsDiscrete) |> Array.map (fun s -> s.Name)

    /// Per-scalar summaries of the draws (mean, sd, MCSE, 5/50/95 % quantiles, bulk and tail ESS, R̂),
    /// scalars named site, site[i], site[i,j] (0-based) as Diagnostics names them.
    let summary (r: McmcResult) : ScalarSummary[] = Diagnostics.summarizeSites r.Draws

    /// Per chain: divergences, tree-depth hits and E-BFMI of the kept draws.
    let health (r: McmcResult) : ChainHealth[] =
        r.Flat.Stats |> Array.mapi (fun k s -> Diagnostics.chainHealth k r.MaxTreeDepth s.Divergent s.TreeDepth s.Energy)

    /// What Stan's warnings are computed from.
    let warningInput (r: McmcResult) : WarningInput =
        { Chains = r.Chains; MaxTreeDepth = r.MaxTreeDepth; TargetAccept = r.TargetAccept; Health = health r; Summaries = summary r }

    /// Stan's warnings for a run (divergences, tree depth, E-BFMI, R̂ > 1.01, ESS below 100 per chain); empty when all is well.
    /// With fewer than 4 draws per chain there are no split-chain diagnostics, and so no warnings.
    let warnings (r: McmcResult) : DiagnosticWarning list =
        if r.NumDraws < 4 then [] else Diagnostics.warnings (warningInput r)

    /// The model's deterministic sites at every draw: one model run per draw with the latents substituted
    /// (chains in parallel); empty when the model has none.
    let private deterministicDraws (ctx: RunContext) (o: McmcOptions) (m: Model<'T>) (draws: Map<string, Tensor>) : Map<string, Tensor> =
        let kRun = Rng.key o.Seed
        let _, proto = Traced.probe kRun m
        let names = proto.Sites |> Array.filter (fun s -> s.Kind = DeterministicSite) |> Array.map (fun s -> s.Name)
        if names.Length = 0 then Map.empty
        else
            let n = o.Samples
            let merged = Draws.mergeChains draws
            let perChain =
                forChains o.Parallel ctx.Cancellation o.Chains (fun k ->
                    Array.init n (fun j ->
                        ctx.Cancellation.ThrowIfCancellationRequested()
                        let tr = Draws.rerunAt kRun m merged (k * n + j)
                        names |> Array.map (fun name -> Tensor.toFloat64 (Tensor.detach (tr.Value name)))))
            names |> Array.mapi (fun i name ->
                let shape = perChain.[0].[0].[i].Shape
                let data = perChain |> Array.collect (fun c -> c |> Array.collect (fun vs ->
                    if vs.[i].Shape <> shape then
                        invalidOp (sprintf "MCMC: deterministic site '%s' changed shape between draws (%s, then %s)." name (Shape.format shape) (Shape.format vs.[i].Shape))
                    Tensor.toArray vs.[i]))
                name, Tensor.create (Array.append [| o.Chains; n |] shape) data)
            |> Map.ofArray

    /// Samples a model's latent sites by NUTS with Stan's adaptation: chains in parallel, constrained
    /// draws per site with shape [chains; draws; ...site shape].
    let private runFrom (ctx: RunContext) (resumeFrom: string option) (o: McmcOptions) (gradient: Potential -> GradientSource) (m: Model<'T>) : McmcResult =
        validate o
        RunContext.Validate ctx
        let sw = Stopwatch.StartNew()
        let kProto = fst (Rng.split (Rng.key o.Seed))
        match discreteLatents kProto m with
        | [||] -> ()
        | names ->
            invalidArg "m" (sprintf "MCMC: the latent sites %s are discrete; NUTS needs continuous latent sites. Marginalize them out (sum over their values with a factor) or observe them." (String.Join(", ", names |> Array.map (sprintf "'%s'"))))
        let p = LogDensity.potential kProto m
        if p.Latents.Length = 0 then invalidArg "m" "MCMC: the model has no latent sites to sample."
        let source = gradient p
        if source.Dim <> FlatPosition.dim p then
            invalidArg "options" (sprintf "MCMC: the gradient source has dimension %d but the model's latents have %d." source.Dim (FlatPosition.dim p))
        ctx.Log (sprintf "Gradient: %s." source.Kind.Text)
        let probe = source.Create()
        let inits = Array.init o.Chains (fun k -> initPosition o m p probe k)
        let flat = sampleFlatFrom ctx resumeFrom o source inits
        // constrained draws per site
        let n = o.Samples
        let perChain =
            forChains o.Parallel ctx.Cancellation o.Chains (fun k ->
                let pos = flat.Positions.[k]
                let acc = p.Latents |> Array.map (fun l -> Array.zeroCreate<float> (n * Shape.size l.Shape))
                for j in 0 .. n - 1 do
                    ctx.Cancellation.ThrowIfCancellationRequested()
                    let us = FlatPosition.split p (ReadOnlySpan<float>(pos, j * flat.Dim, flat.Dim))
                    let values = p.Constrain us
                    p.Latents |> Array.iteri (fun i l ->
                        let v = Tensor.toArray (Tensor.toFloat64 values.[l.Name])
                        Array.blit v 0 acc.[i] (j * v.Length) v.Length)
                acc)
        let draws =
            p.Latents |> Array.mapi (fun i l ->
                let data = Array.concat (perChain |> Array.map (fun a -> a.[i]))
                l.Name, Tensor.create (Array.append [| o.Chains; n |] l.Shape) data)
            |> Map.ofArray
        let deterministic = deterministicDraws ctx o m draws
        let result =
            { Sites = p.Latents; Draws = draws; Deterministic = deterministic; Flat = flat; GradientKind = source.Kind; MaxTreeDepth = o.MaxTreeDepth
              TargetAccept = o.TargetAccept; Seconds = sw.Elapsed.TotalSeconds; Options = Some o }
        // the split-chain diagnostics need 4 draws per chain; a shorter run is returned without them
        if o.Samples >= 4 then
            for w in warnings result do ctx.Log ("Warning: " + w.Text)
        else
            ctx.Log (sprintf "Note: %d draws per chain are too few for the convergence diagnostics (they need at least 4)." o.Samples)
        result

    /// The gradient source an option names.
    let gradientSource (g: McmcGradient) : Potential -> GradientSource =
        match g with
        | McmcGradient.Auto -> Compilation.auto
        | McmcGradient.Tape -> GradientSource.tape

    /// Samples a model's latent sites by NUTS with Stan's adaptation under a run context (cancellation,
    /// progress per chain, messages, a checkpoint file per chain): chains in parallel, constrained draws per
    /// site with shape [chains; draws; ...site shape].
    let runIn (ctx: RunContext) (o: McmcOptions) (m: Model<'T>) : McmcResult =
        runFrom ctx None o (gradientSource o.Gradient) m

    /// As runIn, with a gradient source of your own (an instrumented or custom evaluator) in place of o.Gradient.
    let runWithSource (ctx: RunContext) (o: McmcOptions) (source: Potential -> GradientSource) (m: Model<'T>) : McmcResult =
        runFrom ctx None o source m

    /// Continues the run (same options and model) whose chains wrote checkpoints at `path`
    /// (Checkpoint.chainPath path k): the draws have the same bits as the uninterrupted run's, also when
    /// it was stopped in warmup.
    let resume (ctx: RunContext) (o: McmcOptions) (m: Model<'T>) (path: string) : McmcResult =
        runFrom ctx (Some path) o (gradientSource o.Gradient) m

    /// runIn with RunContext.Default (messages to the console).
    let run (o: McmcOptions) (m: Model<'T>) : McmcResult = runIn RunContext.Default o m

    /// The draws with chains merged: shape [chains·draws; ...site shape] (for Fit.predictFromDraws).
    let merged (r: McmcResult) : Map<string, Tensor> = Draws.mergeChains r.Draws
