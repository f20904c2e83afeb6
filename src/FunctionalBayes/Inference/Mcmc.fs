namespace FunctionalBayes

open System
open System.Diagnostics
open System.Threading
open System.Threading.Tasks
open FunctionalBayes.Tensors

/// The phase of an MCMC iteration.
[<RequireQualifiedAccess>]
type McmcPhase =
    | Warmup
    | Sampling

/// Progress of one chain (reported from the chain's thread).
type McmcProgress =
    { Chain: int
      /// Iterations done in this chain, warmup included.
      Iteration: int
      TotalIterations: int
      Phase: McmcPhase
      StepSize: float
      /// Divergent transitions so far (warmup and sampling).
      Divergences: int
      Elapsed: TimeSpan
      Eta: TimeSpan }

/// Settings of `Mcmc.run` / `Fit.mcmc` (NUTS with Stan's adaptation); start from McmcOptions.Default.
[<NoEquality; NoComparison>]
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
      /// Adapt a dense metric (else diagonal).
      DenseMetric: bool
      /// Stan's step-size heuristic at the start and after each metric window (BlackJAX: false).
      FindInitialStepSize: bool
      InitialStepSize: float
      /// The starting point of each chain; up to 100 tries when the potential or gradient is not finite.
      Init: InitStrategy
      /// Run chains in parallel (the draws are the same either way).
      Parallel: bool
      /// How the potential's value and gradient are computed: by default the compiled program when the model's
      /// graph is static, else the autodiff tape (`Compilation.auto`); `GradientSource.tape` turns compiling off.
      Gradient: Potential -> GradientSource
      /// Called from the chains' threads (concurrently when Parallel).
      OnProgress: (McmcProgress -> unit) option
      ProgressEvery: int
      /// Where the cost estimate and messages go (default: the console).
      Log: string -> unit
      CancellationToken: CancellationToken }

    /// Stan's defaults: 4 chains of 1000 warmup and 1000 draws, δ = 0.8, depth 10, diagonal metric.
    static member Default =
        { Chains = 4; Warmup = 1000; Samples = 1000; Thin = 1; Seed = 0UL; TargetAccept = 0.8; MaxTreeDepth = 10
          DenseMetric = false; FindInitialStepSize = true; InitialStepSize = 1.0; Init = InitUniform 2.0
          Parallel = true; Gradient = Compilation.auto; OnProgress = None; ProgressEvery = 100
          Log = (fun s -> Console.WriteLine s); CancellationToken = CancellationToken.None }

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
      Seconds: float }

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
        if o.MaxTreeDepth < 1 || o.MaxTreeDepth > 30 then bad "MaxTreeDepth" o.MaxTreeDepth (sprintf "MaxTreeDepth must be in 1..30, got %d." o.MaxTreeDepth)
        if not (Double.IsFinite o.InitialStepSize && o.InitialStepSize > 0.0) then
            bad "InitialStepSize" o.InitialStepSize (sprintf "InitialStepSize must be finite and positive, got %g." o.InitialStepSize)
        if o.ProgressEvery < 1 then bad "ProgressEvery" o.ProgressEvery (sprintf "ProgressEvery must be at least 1, got %d." o.ProgressEvery)
        match o.Init with
        | InitUniform r when not (r > 0.0 && Double.IsFinite r) -> bad "Init" r (sprintf "the init radius must be positive and finite, got %g." r)
        | _ -> ()

    let internal warmupSettings (o: McmcOptions) : WarmupSettings =
        { NumWarmup = o.Warmup
          DualAveraging = { DualAveragingSettings.Default with TargetAccept = o.TargetAccept }
          DenseMetric = o.DenseMetric; FindStepSize = o.FindInitialStepSize; InitialStepSize = o.InitialStepSize
          MaxTreeDepth = o.MaxTreeDepth; MaxDeltaH = 1000.0 }

    /// The key of chain k for a seed.
    let internal chainKey (seed: uint64) (k: int) = Rng.foldIn (snd (Rng.split (Rng.key seed))) k

    /// One chain: warmup fold then sampling fold, from a first state.
    let private runChain (o: McmcOptions) (ev: IGradientEvaluator) (k: int) (first: HmcState) : float[] * ChainStats =
        let ws = warmupSettings o
        let key = chainKey o.Seed k
        let ks = Rng.splitN key 4
        let kAdaptInit, kWarm, kSample = ks.[1], ks.[2], ks.[3]
        let ct = o.CancellationToken
        let sampler = Nuts.sampler ev o.MaxTreeDepth
        let total = o.Warmup + o.Samples * o.Thin
        let sw = Stopwatch.StartNew()
        let mutable divergences = 0
        let report (iter: int) (phase: McmcPhase) (eps: float) =
            match o.OnProgress with
            | Some f when iter % o.ProgressEvery = 0 || iter = total ->
                let el = sw.Elapsed
                f { Chain = k; Iteration = iter; TotalIterations = total; Phase = phase; StepSize = eps; Divergences = divergences
                    Elapsed = el; Eta = TimeSpan.FromTicks(int64 (float el.Ticks / float iter * float (total - iter))) }
            | _ -> ()
        // warmup
        ct.ThrowIfCancellationRequested()
        let stages = WindowSchedule.stages (WindowSchedule.build o.Warmup)
        let mutable wst = Warmup.init ws sampler kAdaptInit first
        for i in 0 .. o.Warmup - 1 do
            ct.ThrowIfCancellationRequested()
            let next, info = Warmup.step ws stages sampler (Rng.foldIn kWarm i) wst
            if info.Divergent then divergences <- divergences + 1
            wst <- next
            report (i + 1) McmcPhase.Warmup wst.StepSize
        let warmupDivergences = divergences
        let warmupSeconds = sw.Elapsed.TotalSeconds
        let p = Warmup.finish ws wst
        // sampling
        let n = o.Samples
        let d = ev.Dim
        let positions = Array.zeroCreate (n * d)
        let stepSize = Array.zeroCreate n
        let depth = Array.zeroCreate n
        let nLeap = Array.zeroCreate n
        let div = Array.zeroCreate n
        let energy = Array.zeroCreate n
        let accept = Array.zeroCreate n
        let lp = Array.zeroCreate n
        let mutable st = wst.Chain
        let sampleStart = sw.Elapsed.TotalSeconds
        for i in 0 .. n * o.Thin - 1 do
            ct.ThrowIfCancellationRequested()
            let next, info = sampler.Step(p, Rng.foldIn kSample i, st)
            st <- next
            if info.Divergent then divergences <- divergences + 1
            if (i + 1) % o.Thin = 0 then
                let j = i / o.Thin
                Array.blit st.Position 0 positions (j * d) d
                stepSize.[j] <- info.StepSize
                depth.[j] <- info.TreeDepth
                nLeap.[j] <- info.NumLeapfrog
                div.[j] <- info.Divergent
                energy.[j] <- info.Energy
                accept.[j] <- info.AcceptStat
                lp.[j] <- -st.PotentialEnergy
            report (o.Warmup + i + 1) McmcPhase.Sampling p.StepSize
        positions,
        { StepSize = stepSize; TreeDepth = depth; NumLeapfrog = nLeap; Divergent = div; Energy = energy; AcceptStat = accept
          Lp = lp; AdaptedStepSize = p.StepSize; Metric = p.Metric; WarmupDivergences = warmupDivergences
          WarmupSeconds = warmupSeconds; SamplingSeconds = sw.Elapsed.TotalSeconds - sampleStart }

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
    let private logCost (o: McmcOptions) (ev: IGradientEvaluator) (q: float[]) =
        let g = Array.zeroCreate ev.Dim
        ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore
        let reps = 10
        let sw = Stopwatch.StartNew()
        for _ in 1 .. reps do ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore
        let sec = sw.Elapsed.TotalSeconds / float reps
        o.Log (sprintf "Gradient evaluation took %.3g µs; 1000 transitions of 10 leapfrog steps would take %.3g s." (sec * 1e6) (sec * 1e4))

    /// Samples a flat potential (any user log density): one starting position per chain (positions are
    /// checked for a finite potential and gradient).
    let sampleFlat (o: McmcOptions) (source: GradientSource) (inits: float[][]) : FlatMcmcRun =
        validate o
        if inits.Length <> o.Chains then
            invalidArg "inits" (sprintf "MCMC: %d starting positions for %d chains; give one per chain." inits.Length o.Chains)
        let evs = Array.init o.Chains (fun _ -> source.Create())
        let firsts =
            inits |> Array.mapi (fun k q ->
                let s = Dyn.init evs.[k] q
                if not (Double.IsFinite s.PotentialEnergy) || s.Gradient |> Array.exists (fun v -> not (Double.IsFinite v)) then
                    invalidArg "inits" (sprintf "MCMC: the potential or its gradient is not finite at the starting position of chain %d." k)
                s)
        logCost o evs.[0] firsts.[0].Position
        let results = forChains o.Parallel o.CancellationToken o.Chains (fun k -> runChain o evs.[k] k firsts.[k])
        { Dim = source.Dim; Positions = results |> Array.map fst; Stats = results |> Array.map snd }

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
            let u = ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g))
            if Double.IsFinite u && g |> Array.forall Double.IsFinite then result <- Some q
            else last <- badSite m p us g u
            attempt <- attempt + 1
        match result with
        | Some q -> q
        | None ->
            invalidOp (sprintf "MCMC: chain %d found no starting point with a finite potential and gradient in 100 tries (%A); at the last try %s. Check that site's prior and support, or give starting values (Init = InitValues ...)." k o.Init last)

    /// The discrete latent sites of a model (from one prior draw).
    let internal discreteLatents (key: RngKey) (m: Model<'T>) : string[] =
        let _, tr = Traced.run key m
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
    let private deterministicDraws (o: McmcOptions) (m: Model<'T>) (draws: Map<string, Tensor>) : Map<string, Tensor> =
        let kRun = Rng.key o.Seed
        let _, proto = Traced.run kRun m
        let names = proto.Sites |> Array.filter (fun s -> s.Kind = DeterministicSite) |> Array.map (fun s -> s.Name)
        if names.Length = 0 then Map.empty
        else
            let n = o.Samples
            let merged = Draws.mergeChains draws
            let perChain =
                forChains o.Parallel o.CancellationToken o.Chains (fun k ->
                    Array.init n (fun j ->
                        o.CancellationToken.ThrowIfCancellationRequested()
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
    let run (o: McmcOptions) (m: Model<'T>) : McmcResult =
        validate o
        let sw = Stopwatch.StartNew()
        let kProto = fst (Rng.split (Rng.key o.Seed))
        match discreteLatents kProto m with
        | [||] -> ()
        | names ->
            invalidArg "m" (sprintf "MCMC: the latent sites %s are discrete; NUTS needs continuous latent sites. Marginalize them out (sum over their values with a factor) or observe them." (String.Join(", ", names |> Array.map (sprintf "'%s'"))))
        let p = LogDensity.potential kProto m
        if p.Latents.Length = 0 then invalidArg "m" "MCMC: the model has no latent sites to sample."
        let source = o.Gradient p
        if source.Dim <> FlatPosition.dim p then
            invalidArg "options" (sprintf "MCMC: the gradient source has dimension %d but the model's latents have %d." source.Dim (FlatPosition.dim p))
        o.Log (sprintf "Gradient: %s." source.Kind.Text)
        let probe = source.Create()
        let inits = Array.init o.Chains (fun k -> initPosition o m p probe k)
        let flat = sampleFlat o source inits
        // constrained draws per site
        let n = o.Samples
        let perChain =
            forChains o.Parallel o.CancellationToken o.Chains (fun k ->
                let pos = flat.Positions.[k]
                let acc = p.Latents |> Array.map (fun l -> Array.zeroCreate<float> (n * Shape.size l.Shape))
                for j in 0 .. n - 1 do
                    o.CancellationToken.ThrowIfCancellationRequested()
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
        let deterministic = deterministicDraws o m draws
        let result =
            { Sites = p.Latents; Draws = draws; Deterministic = deterministic; Flat = flat; GradientKind = source.Kind; MaxTreeDepth = o.MaxTreeDepth
              TargetAccept = o.TargetAccept; Seconds = sw.Elapsed.TotalSeconds }
        // the split-chain diagnostics need 4 draws per chain; a shorter run is returned without them
        if o.Samples >= 4 then
            for w in warnings result do o.Log ("Warning: " + w.Text)
        else
            o.Log (sprintf "Note: %d draws per chain are too few for the convergence diagnostics (they need at least 4)." o.Samples)
        result

    /// The draws with chains merged: shape [chains·draws; ...site shape] (for Fit.predictFromDraws).
    let merged (r: McmcResult) : Map<string, Tensor> = Draws.mergeChains r.Draws
