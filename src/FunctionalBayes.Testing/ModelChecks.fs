namespace FunctionalBayes.Testing

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

/// Fits a model to data and returns posterior draws per latent site, stacked on a new first axis (as
/// `Posterior.draws` gives them): the model function, the data (inputs and observations) and a key.
type Fitter<'T> = (Map<string, Tensor> -> Model<'T>) -> Map<string, Tensor> -> RngKey -> Map<string, Tensor>

/// Settings of `ModelChecks.gradient`; start from `GradientCheck.Default`.
type GradientCheck =
    { /// Random unconstrained points to check at.
      Points: int
      /// The points are uniform in (−Radius, Radius) on unconstrained space (Stan's initialization box).
      Radius: float
      /// The central-difference step h.
      Step: float
      /// Allowed |autodiff − finite difference| relative to the larger magnitude of the two.
      RelTol: float
      /// Allowed |autodiff − finite difference| per unit of (1 + |U|): the rounding error of a central
      /// difference is about ε·|U|/h (2e-11·|U| at h = 1e-5), its truncation error h²·|U'''|/6.
      AbsTol: float
      Seed: uint64 }

    /// 5 points in (−2, 2), h = 1e-5, relative tolerance 1e-5, absolute tolerance 1e-6·(1 + |U|).
    static member Default = { Points = 5; Radius = 2.0; Step = 1e-5; RelTol = 1e-5; AbsTol = 1e-6; Seed = 0UL }

/// Settings of `ModelChecks.priorPredictive`; start from `PriorPredictiveCheck.Default`.
type PriorPredictiveCheck =
    { /// Prior predictive draws to check.
      Draws: int
      /// The support each observed site promises, by site name; a site left out is checked against the
      /// support of its own distribution.
      Supports: Map<string, Constraint>
      Seed: uint64 }

    /// 20 draws, each site against its distribution's support.
    static member Default = { Draws = 20; Supports = Map.empty; Seed = 0UL }

/// Settings of `ModelChecks.calibration`; start from `CalibrationCheck.Default`.
type CalibrationCheck =
    { /// Simulated data sets (each one prior draw of the parameters and one fit).
      Replications: int
      /// The central interval's probability (0.95: the 2.5 % and 97.5 % quantiles).
      Level: float
      /// The test fails when the number of intervals that hold the truth lies in either tail of
      /// Binomial(trials, Level) with probability below Alpha / 2 (0.001: a calibrated fit fails one
      /// run in a thousand). The trials count every scalar of every checked site in every replication.
      Alpha: float
      /// The latent sites to check; empty checks every latent site the model draws.
      Sites: string list
      Seed: uint64 }

    /// 20 replications, the central 95 % interval, α = 0.001, every latent site.
    static member Default = { Replications = 20; Level = 0.95; Alpha = 0.001; Sites = []; Seed = 0UL }

/// A reference posterior for one site: element-wise means and sds, in row-major order of the site's shape.
type ReferenceMoments = { Mean: float[]; Sd: float[] }

/// Expecto tests for a user's own model: each function returns a `Test` to drop into a suite. The work
/// happens when the test runs, not when it is built.
[<RequireQualifiedAccess>]
module ModelChecks =

    let private fail (msg: string) : unit = raise (AssertException msg)

    let private sampleSites (t: Trace) = t.Sites |> Array.filter (fun s -> s.Kind = SampleSite)

    /// The model's potential gradient (`LogDensity.potential`, differentiated by the tape) against central
    /// finite differences of the potential energy, in every unconstrained coordinate, at random points.
    let gradient (name: string) (opts: GradientCheck) (m: Model<'T>) : Test =
        testCase name (fun () ->
            if opts.Points < 1 then invalidArg "opts" (sprintf "ModelChecks.gradient: Points must be at least 1, got %d." opts.Points)
            if not (opts.Step > 0.0) then invalidArg "opts" (sprintf "ModelChecks.gradient: Step must be positive, got %g." opts.Step)
            let key = Rng.key opts.Seed
            let kModel, kPoints = Rng.split key
            let p = LogDensity.potential kModel m
            let source = GradientSource.tape p
            let ev = source.Create()
            let dim = source.Dim
            if dim = 0 then fail (sprintf "%s: the model has no latent site, so there is no gradient to check." name)
            let names =
                p.Latents |> Array.collect (fun l ->
                    let n = Shape.size l.UnconstrainedShape
                    Array.init n (fun j -> if n = 1 then l.Name else sprintf "%s[%d]" l.Name j))
            let grad = Array.zeroCreate dim
            let scratch = Array.zeroCreate dim
            let energy (q: float[]) = ev.Evaluate(ReadOnlySpan q, Span scratch)
            let failures = ResizeArray<string>()
            for point in 0 .. opts.Points - 1 do
                let q = Rng.uniform (Rng.foldIn kPoints point) [| dim |] |> Tensor.toArray |> Array.map (fun u -> (2.0 * u - 1.0) * opts.Radius)
                let u = ev.Evaluate(ReadOnlySpan q, Span grad)
                if not (Double.IsFinite u) then
                    failures.Add(sprintf "point %d: the potential energy is %g" point u)
                for j in 0 .. dim - 1 do
                    let qp = Array.copy q
                    let qm = Array.copy q
                    qp.[j] <- q.[j] + opts.Step
                    qm.[j] <- q.[j] - opts.Step
                    let fd = (energy qp - energy qm) / (2.0 * opts.Step)
                    let err = abs (grad.[j] - fd)
                    let tol = opts.AbsTol * (1.0 + abs u) + opts.RelTol * max (abs grad.[j]) (abs fd)
                    if not (err <= tol) then
                        failures.Add(sprintf "point %d, %s: autodiff %.10g, finite difference %.10g (|diff| %.3g > tolerance %.3g)" point names.[j] grad.[j] fd err tol)
            if failures.Count > 0 then
                fail (sprintf "%s: the potential's gradient disagrees with central finite differences (h = %g) in %d of %d checks:\n%s"
                        name opts.Step failures.Count (opts.Points * dim) (String.Join("\n", Seq.truncate 10 failures))))

    /// Prior predictive draws: for every site observed in `data`, draws of the model run without that
    /// site's observation have the shape the observation has in the model and lie in the promised support
    /// (opts.Supports, else the site's distribution's support), with finite values.
    let priorPredictive (name: string) (opts: PriorPredictiveCheck) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Test =
        testCase name (fun () ->
            if opts.Draws < 1 then invalidArg "opts" (sprintf "ModelChecks.priorPredictive: Draws must be at least 1, got %d." opts.Draws)
            let key = Rng.key opts.Seed
            let _, conditioned = Traced.run key (modelFn data)
            let observed = Trace.observed conditioned
            if observed.Length = 0 then
                fail (sprintf "%s: no site of the model is observed with the data given (keys %s); pass the observations in data." name (String.Join(", ", data |> Map.keys)))
            for KeyValue (site, _) in opts.Supports do
                if not (observed |> Array.exists (fun s -> s.Name = site)) then
                    invalidArg "opts" (sprintf "ModelChecks.priorPredictive: Supports names site '%s', but the observed sites are %s." site (String.Join(", ", observed |> Array.map (fun s -> s.Name))))
            let inputs = observed |> Array.fold (fun (d: Map<string, Tensor>) s -> d.Remove s.Name) data
            let failures = ResizeArray<string>()
            for i in 0 .. opts.Draws - 1 do
                let _, t = Traced.run (Rng.foldIn key (i + 1)) (modelFn inputs)
                for o in observed do
                    match Trace.tryFind o.Name t with
                    | None -> failures.Add(sprintf "draw %d: the model run without the observation has no site '%s'" i o.Name)
                    | Some s ->
                        let v = s.Value.Value
                        let expectShape = o.Value.Value.Shape
                        let support = match opts.Supports.TryFind o.Name with Some c -> c | None -> Dist.support s.Dist.Value
                        if not (Shape.equal v.Shape expectShape) then
                            failures.Add(sprintf "draw %d, site '%s': shape %s, but the observation has shape %s" i o.Name (Shape.format v.Shape) (Shape.format expectShape))
                        let values = Tensor.toArray v
                        let nonFinite = values |> Array.tryFindIndex (Double.IsFinite >> not)
                        match nonFinite with
                        | Some j -> failures.Add(sprintf "draw %d, site '%s': element %d is %g" i o.Name j values.[j])
                        | None ->
                            let ok = Constraint.check support v |> Tensor.toArray
                            match ok |> Array.tryFindIndex (fun b -> b = 0.0) with
                            | Some j ->
                                let shown = if support.EventDims = 0 then sprintf "%g" values.[j] else sprintf "event %d" j
                                failures.Add(sprintf "draw %d, site '%s': %s is outside the support %A (%d of %d values or events)" i o.Name shown support (ok |> Array.filter (fun b -> b = 0.0) |> Array.length) ok.Length)
                            | None -> ()
            if failures.Count > 0 then
                fail (sprintf "%s: prior predictive draws break what the observation model promises (%d problems):\n%s" name failures.Count (String.Join("\n", Seq.truncate 10 failures))))

    /// log P(X = k) for X ~ Binomial(n, p), 0 < p < 1.
    let internal binomialLogPmf (n: int) (p: float) : float[] =
        // log C(n, k) by the recursion C(n, k + 1) = C(n, k)·(n − k)/(k + 1)
        let logC = Array.zeroCreate (n + 1)
        for k in 0 .. n - 1 do logC.[k + 1] <- logC.[k] + log (float (n - k)) - log (float (k + 1))
        Array.init (n + 1) (fun k -> logC.[k] + float k * log p + float (n - k) * log (1.0 - p))

    /// P(X ≤ k) and P(X ≥ k) for X ~ Binomial(n, p).
    let internal binomialTails (n: int) (p: float) (k: int) : float * float =
        let pmf = binomialLogPmf n p |> Array.map exp
        Array.sum pmf.[.. k], Array.sum pmf.[k ..]

    /// Simulation-based calibration, small: for each replication, draws parameters and data from the
    /// prior predictive (the model run on `inputs`, which leave out the observations named in
    /// `observed`), fits the simulated data with `fit`, and counts how often the truth of each checked
    /// scalar lies in the central `Level` interval of the posterior draws. The count must not lie in
    /// either α/2 tail of Binomial(trials, Level).
    let calibration (name: string) (opts: CalibrationCheck) (modelFn: Map<string, Tensor> -> Model<'T>) (inputs: Map<string, Tensor>) (observed: string list) (fit: Fitter<'T>) : Test =
        testCase name (fun () ->
            if opts.Replications < 1 then invalidArg "opts" (sprintf "ModelChecks.calibration: Replications must be at least 1, got %d." opts.Replications)
            if not (opts.Level > 0.0 && opts.Level < 1.0) then invalidArg "opts" (sprintf "ModelChecks.calibration: Level must lie in (0, 1), got %g." opts.Level)
            if not (opts.Alpha > 0.0 && opts.Alpha < 1.0) then invalidArg "opts" (sprintf "ModelChecks.calibration: Alpha must lie in (0, 1), got %g." opts.Alpha)
            if observed.IsEmpty then invalidArg "observed" "ModelChecks.calibration: name at least one observed site to simulate."
            for o in observed do
                if inputs.ContainsKey o then
                    invalidArg "inputs" (sprintf "ModelChecks.calibration: inputs hold '%s', which is named as observed; leave the observations out, they are simulated." o)
            let key = Rng.key opts.Seed
            let lo, hi = (1.0 - opts.Level) / 2.0, 1.0 - (1.0 - opts.Level) / 2.0
            let hits = Collections.Generic.Dictionary<string, int * int>()
            let misses = ResizeArray<string>()
            for r in 0 .. opts.Replications - 1 do
                let kSim, kFit = Rng.split (Rng.foldIn key r)
                let _, t = Traced.run kSim (modelFn inputs)
                let sites = sampleSites t |> Array.filter (fun s -> not s.IsObserved)
                let simulated =
                    observed |> List.map (fun o ->
                        match sites |> Array.tryFind (fun s -> s.Name = o) with
                        | Some s -> o, Tensor.detach s.Value.Value
                        | None -> invalidArg "observed" (sprintf "ModelChecks.calibration: the model has no sample site '%s' to simulate; its sample sites are %s." o (String.Join(", ", sites |> Array.map (fun s -> s.Name)))))
                let truths = sites |> Array.filter (fun s -> not (List.contains s.Name observed))
                let checkedSites =
                    if opts.Sites.IsEmpty then truths
                    else
                        opts.Sites |> List.map (fun n ->
                            match truths |> Array.tryFind (fun s -> s.Name = n) with
                            | Some s -> s
                            | None -> invalidArg "opts" (sprintf "ModelChecks.calibration: Sites names '%s', which is not a latent site of the model (%s)." n (String.Join(", ", truths |> Array.map (fun s -> s.Name)))))
                        |> List.toArray
                let data = simulated |> List.fold (fun (d: Map<string, Tensor>) (k, v) -> d.Add(k, v)) inputs
                let draws = fit modelFn data kFit
                for s in checkedSites do
                    match draws.TryFind s.Name with
                    | None -> fail (sprintf "%s: the fit function returned no draws of latent site '%s' (it returned %s)." name s.Name (String.Join(", ", draws |> Map.keys)))
                    | Some d ->
                        let truth = Tensor.toArray (Tensor.detach s.Value.Value)
                        if d.Rank < 1 || d.Shape.[0] < 2 || Shape.size d.Shape.[1..] <> truth.Length then
                            fail (sprintf "%s: draws of '%s' have shape %s; expected [draws; %s] with at least 2 draws." name s.Name (Shape.format d.Shape) (String.Join("; ", s.Value.Value.Shape)))
                        let n = d.Shape.[0]
                        let v = Tensor.toArray d
                        for j in 0 .. truth.Length - 1 do
                            let col = Array.init n (fun i -> v.[i * truth.Length + j])
                            let a, b = Diagnostics.quantile lo col, Diagnostics.quantile hi col
                            let inside = truth.[j] >= a && truth.[j] <= b
                            let key' = if truth.Length = 1 then s.Name else sprintf "%s[%d]" s.Name j
                            let h, tot = match hits.TryGetValue key' with | true, x -> x | _ -> 0, 0
                            hits.[key'] <- ((if inside then h + 1 else h), tot + 1)
                            if not inside && misses.Count < 10 then
                                misses.Add(sprintf "replication %d, %s: truth %.4g outside [%.4g, %.4g]" r key' truth.[j] a b)
            let total = hits.Values |> Seq.sumBy snd
            let inside = hits.Values |> Seq.sumBy fst
            if total = 0 then fail (sprintf "%s: no latent scalar to check." name)
            let pLow, pHigh = binomialTails total opts.Level inside
            if pLow < opts.Alpha / 2.0 || pHigh < opts.Alpha / 2.0 then
                let perSite = hits |> Seq.map (fun kv -> sprintf "%s %d/%d" kv.Key (fst kv.Value) (snd kv.Value)) |> Seq.truncate 20
                fail (sprintf "%s: the central %g %% intervals hold the truth %d times in %d (expected %.1f; P(X ≤ %d) = %.3g, P(X ≥ %d) = %.3g under Binomial(%d, %g), α = %g).\nPer scalar: %s\nFirst misses:\n%s"
                        name (100.0 * opts.Level) inside total (float total * opts.Level) inside pLow inside pHigh total opts.Level opts.Alpha
                        (String.Join(", ", perSite)) (String.Join("\n", misses))))

    /// Posterior draws against reference means and sds: every element's mean within `k` Monte Carlo
    /// standard errors of the mean, and its sd within `k` MCSEs of the sd, the MCSEs from the draws'
    /// effective sample size (`Diagnostics`: sd/√ESS and the Kenney–Keeping sd error). `draws` runs when
    /// the test runs and gives draws per site stacked [draws; ...] (one chain, or independent draws).
    let posterior (name: string) (k: float) (reference: Map<string, ReferenceMoments>) (draws: unit -> Map<string, Tensor>) : Test =
        testCase name (fun () ->
            if not (k > 0.0) then invalidArg "k" (sprintf "ModelChecks.posterior: k must be positive, got %g." k)
            let d = draws ()
            let failures = ResizeArray<string>()
            for KeyValue (site, ref) in reference do
                if ref.Mean.Length <> ref.Sd.Length then
                    invalidArg "reference" (sprintf "ModelChecks.posterior: site '%s' has %d reference means but %d sds." site ref.Mean.Length ref.Sd.Length)
                match d.TryFind site with
                | None -> fail (sprintf "%s: no draws of site '%s' (the draws hold %s)." name site (String.Join(", ", d |> Map.keys)))
                | Some t ->
                    let size = if t.Rank < 1 then 0 else Shape.size t.Shape.[1..]
                    if size <> ref.Mean.Length then
                        fail (sprintf "%s: site '%s' has draws of shape %s (%d scalars) but %d reference values." name site (Shape.format t.Shape) size ref.Mean.Length)
                    let summaries = Diagnostics.summarizeSites (Map [ site, Tensor.unsqueeze 0 (Tensor.detach t) ])
                    summaries |> Array.iteri (fun j s ->
                        let dm, ds = abs (s.Mean - ref.Mean.[j]), abs (s.Sd - ref.Sd.[j])
                        if not (dm <= k * s.McseMean) then
                            failures.Add(sprintf "%s: mean %.5g, reference %.5g, |diff| = %.2f MCSE (MCSE %.3g, ESS %.0f)" s.Name s.Mean ref.Mean.[j] (dm / s.McseMean) s.McseMean s.EssBulk)
                        if not (ds <= k * s.McseSd) then
                            failures.Add(sprintf "%s: sd %.5g, reference %.5g, |diff| = %.2f MCSE (MCSE %.3g)" s.Name s.Sd ref.Sd.[j] (ds / s.McseSd) s.McseSd))
            if failures.Count > 0 then
                fail (sprintf "%s: the posterior is more than %g Monte Carlo standard errors from the reference:\n%s" name k (String.Join("\n", Seq.truncate 10 failures))))

/// Fit functions for `ModelChecks.calibration`.
[<RequireQualifiedAccess>]
module Fitters =

    /// SVI with `Fit.vi` and the given options, then `draws` draws of every latent site from the guide.
    let vi (opts: FitOptions) (draws: int) : Fitter<'T> =
        fun modelFn data key -> Posterior.draws (Fit.vi opts modelFn data) key draws

    /// NUTS with `Fit.mcmc` and the given options, quietly, its kept draws with chains merged; each
    /// replication's seed is the options' seed plus one drawn from the replication's key.
    let nuts (opts: McmcOptions) : Fitter<'T> =
        fun modelFn data key ->
            let seed = opts.Seed + uint64 (Rng.uniformAt key 0 * 9007199254740992.0)
            Posterior.draws (Fit.mcmcIn RunContext.Quiet { opts with Seed = seed } modelFn data) key 1
