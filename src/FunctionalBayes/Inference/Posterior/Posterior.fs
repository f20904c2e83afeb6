namespace FunctionalBayes

open System
open FunctionalBayes.Tensors

/// BLayers' learning-rate schedules for fit.
[<RequireQualifiedAccess>]
type LrSchedule =
    /// Cosine decay from lr to zero over the run (BLayers' default).
    | Cosine
    /// One cycle: warm up to lr over 10 % of the run, then cosine down (div factor 25).
    | WarmupCosine
    | Constant

/// Settings of `Fit.vi` (BLayers' fit(method="vi")): plain data with structural equality, saved in the
/// posterior file; start from FitOptions.Default. A guide of your own is no setting: pass it to
/// `Fit.viWithGuide`. The loop settings (steps or epochs, batch size, early stopping) are SVI's own record,
/// `Run`: `{ FitOptions.Default with Run.Steps = Some 2000; Seed = 1UL }`. `Fit.validate` holds every rule.
type FitOptions =
    { /// The autoguide Fit.vi builds (Fit.viWithGuide uses the guide it is given instead).
      AutoGuide: AutoGuideKind
      /// Adam's (peak) learning rate.
      LearningRate: float
      Schedule: LrSchedule
      /// An optimizer that overrides LearningRate and Schedule.
      Optimizer: Optimizer option
      /// ELBO particles per step.
      Particles: int
      Seed: uint64
      Init: InitStrategy
      /// Clip gradients to this global norm before each update.
      ClipNorm: float option
      /// How long to run, how to batch and early stopping (with neither Steps nor Epochs,
      /// SviRunOptions.DefaultSteps steps; with a BatchSize, the batched ELBO is used).
      Run: SviRunOptions }

    /// The defaults (BLayers' settings): AutoDiagonalNormal, Adam at 0.01 with cosine decay, one particle,
    /// seed 0, uniform(−2, 2) initialization, and SviRunOptions.DefaultSteps steps on all rows.
    static member Default =
        { AutoGuide = AutoGuideKind.AutoDiagonalNormal; LearningRate = 0.01; Schedule = LrSchedule.Cosine
          Optimizer = None; Particles = 1; Seed = 0UL; Init = InitUniform 2.0; ClipNorm = None; Run = SviRunOptions.Default }

/// A variational posterior: the fitted guide, its parameters and the run's loss history.
[<NoEquality; NoComparison>]
type GuidePosterior =
    { Guide: Guide
      /// The fitted parameters (the guide's and the model's own param sites) on their constrained sets.
      Params: Map<string, Tensor>
      /// The loss (negative ELBO) of every step; empty for a loaded posterior.
      Losses: float[]
      /// True when early stopping ended the run before its last step.
      StoppedEarly: bool
      /// The settings of the fit that made it (None for a guide given its parameters by hand); with a
      /// user guide (Guide.Origin = User) their AutoGuide was not used.
      Options: FitOptions option }

/// Where a posterior's draws come from.
[<RequireQualifiedAccess; NoEquality; NoComparison>]
type PosteriorSource =
    /// A fitted guide (SVI): draws are made on demand, independent of each other.
    | Guide of GuidePosterior
    /// A sampler's kept draws per chain (NUTS), with its statistics.
    | Samples of McmcResult

/// The posterior of a model given data, from SVI or MCMC alike: what summary, predict, ONNX export,
/// save/load, the report and the C# facade take. The model is a function of the named data.
[<NoEquality; NoComparison>]
type Posterior<'T> =
    { Model: Map<string, Tensor> -> Model<'T>
      Source: PosteriorSource
      /// The model's signature on the data it was fitted to (latent and observed sites, data keys with
      /// their shapes and any vocabularies): what Fit.save records and Fit.load checks.
      Signature: ModelSignature }

/// Predictions for one site: mean and standard deviation over draws (and the draws, when kept).
[<NoEquality; NoComparison>]
type Prediction = { Mean: Tensor; Std: Tensor; Samples: Tensor option }

/// The summary rows of one site, element by element (row-major), with the site's shape.
[<NoEquality; NoComparison>]
type SiteSummary = { Name: string; Shape: int[]; Elements: ScalarSummary[] }

/// Questions asked of a posterior, whichever inference made it.
[<RequireQualifiedAccess>]
module Posterior =

    /// A posterior from an MCMC run of `model` on `data` (as Mcmc.run returns it).
    let ofMcmc (model: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (result: McmcResult) : Posterior<'T> =
        { Model = model; Source = PosteriorSource.Samples result; Signature = ModelSignature.ofModel (model data) data }

    /// A posterior from a guide and its parameters for `model` on `data` (for example parameters fitted
    /// elsewhere, or none for a guide without params).
    let ofGuide (model: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (guide: Guide) (ps: Map<string, Tensor>) : Posterior<'T> =
        { Model = model; Source = PosteriorSource.Guide { Guide = guide; Params = ps; Losses = [||]; StoppedEarly = false; Options = None }
          Signature = ModelSignature.ofModel (model data) data }

    /// The posterior with the vocabularies of its categorical data keys (a table's, by key): they are saved
    /// with it and checked on loading, used to read tables for prediction and written into ONNX exports.
    let withLevels (levels: Map<string, string[]>) (p: Posterior<'T>) : Posterior<'T> =
        { p with Signature = ModelSignature.withLevels levels p.Signature }

    /// The guide posterior, or an error naming the operation that needs one.
    let guidePart (what: string) (p: Posterior<'T>) : GuidePosterior =
        match p.Source with
        | PosteriorSource.Guide g -> g
        | PosteriorSource.Samples _ -> invalidArg "p" (sprintf "%s: this posterior holds MCMC draws, not a fitted guide." what)

    /// The sampler's run of a sampled posterior, or an error naming the operation that needs one.
    let samplesPart (what: string) (p: Posterior<'T>) : McmcResult =
        match p.Source with
        | PosteriorSource.Samples r -> r
        | PosteriorSource.Guide g -> invalidArg "p" (sprintf "%s: this posterior is a fitted guide (%s), not MCMC draws." what g.Guide.Name)

    /// The fitted parameters of a guide posterior (an error for a sampled one).
    let parameters (p: Posterior<'T>) : Map<string, Tensor> = (guidePart "Posterior.parameters" p).Params

    /// The loss history of a guide posterior (empty for a sampled one).
    let losses (p: Posterior<'T>) : float[] =
        match p.Source with
        | PosteriorSource.Guide g -> g.Losses
        | PosteriorSource.Samples _ -> [||]

    /// The inference that made the posterior, for messages and reports ("SVI (AutoNormal)", "NUTS").
    let methodName (p: Posterior<'T>) : string =
        match p.Source with
        | PosteriorSource.Guide g -> sprintf "SVI (%s)" g.Guide.Name
        | PosteriorSource.Samples _ -> "NUTS"

    /// One run of the fitted guide, with the fitted values of the params it has.
    let private guideTrace (g: GuidePosterior) (key: RngKey) =
        let program = g.Guide.Program
        let _, proto = Traced.run key program
        let guideParams = Trace.parameters proto |> Array.choose (fun s -> g.Params.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
        Traced.atValues key guideParams program |> snd

    let private guideDraws (g: GuidePosterior) (key: RngKey) (n: int) : Map<string, Tensor> =
        let traces = Array.init n (fun i -> guideTrace g (Rng.foldIn key i))
        let latentNames =
            traces.[0].Sites |> Array.filter (fun s -> s.Kind = SampleSite && s.Role <> GuideRole.Auxiliary) |> Array.map (fun s -> s.Name)
        latentNames |> Array.map (fun name -> name, traces |> Array.map (fun t -> Tensor.detach (t.Value name)) |> Tensor.stack 0) |> Map.ofArray

    let private checkDraws (what: string) (n: int) =
        if n < 1 then invalidArg "n" (sprintf "%s: needs at least one draw, got %d." what n)

    /// Draws of every latent site per chain, shape [chains; draws; ...site shape]: a guide's `n`
    /// independent draws as one chain, or a sampler's kept draws (`n` applies to guides only). With
    /// `deterministic`, a sampler's deterministic sites are included.
    let chains (p: Posterior<'T>) (key: RngKey) (n: int) (deterministic: bool) : Map<string, Tensor> =
        match p.Source with
        | PosteriorSource.Guide g ->
            checkDraws "Posterior.chains" n
            guideDraws g key n |> Map.map (fun _ t -> Tensor.reshape (Array.append [| 1 |] t.Shape) t)
        | PosteriorSource.Samples r ->
            if deterministic then Map.fold (fun acc k v -> Map.add k v acc) r.Draws r.Deterministic else r.Draws

    /// Draws of every latent site stacked on one first axis: `n` guide draws, or a sampler's kept draws
    /// with chains merged ([chains·draws; ...]; `n` applies to guides only).
    let draws (p: Posterior<'T>) (key: RngKey) (n: int) : Map<string, Tensor> =
        chains p key n false |> Draws.mergeChains

    /// The element-wise posterior mean of every latent site (from `n` draws of a guide, or all of a sampler's).
    let mean (p: Posterior<'T>) (key: RngKey) (n: int) : Map<string, Tensor> =
        draws p key n |> Map.map (fun _ d -> Tensor.meanAxes [| 0 |] false d)

    /// The summary table, one row per scalar (mean, sd, MCSE, 5/50/95 % quantiles, bulk and tail ESS,
    /// R̂; Vehtari et al. 2021): over a sampler's chains (deterministic sites included), or over `n`
    /// independent guide draws taken as one chain (then ESS ≈ n and R̂ ≈ 1 measure the Monte Carlo
    /// error of the table itself).
    let summary (p: Posterior<'T>) (key: RngKey) (n: int) : ScalarSummary[] =
        Diagnostics.summarizeSites (chains p key n true)

    /// The summary grouped by site, each with its shape and its elements' rows (row-major).
    let summaryBySite (p: Posterior<'T>) (key: RngKey) (n: int) : SiteSummary[] =
        chains p key n true
        |> Map.toArray
        |> Array.map (fun (name, t) ->
            { Name = name; Shape = t.Shape.[2..]; Elements = Diagnostics.summarizeSites (Map.ofList [ name, t ]) })

    /// Stan's warnings for a sampled posterior (divergences, tree depth, E-BFMI, R̂, ESS); none for a guide.
    let warnings (p: Posterior<'T>) : DiagnosticWarning list =
        match p.Source with
        | PosteriorSource.Guide _ -> []
        | PosteriorSource.Samples r -> Mcmc.warnings r

    /// Accumulates the mean and sd of every predicted site over n runs; `run i` gives the trace of the
    /// i-th run and the names of the sites that came from the posterior (not predictions). Welford's
    /// updates (mean and sum of squared deviations), so a large mean does not cancel the sd away as
    /// E[x²] − E[x]² does.
    let private accumulate (n: int) (keepSamples: bool) (run: int -> Trace * Set<string>) : Map<string, Prediction> =
        let stats = Collections.Generic.Dictionary<string, int * float[] * float[] * int[]>()
        let kept = Collections.Generic.Dictionary<string, ResizeArray<Tensor>>()
        for i in 0 .. n - 1 do
            let mt, covered = run i
            for s in mt.Sites do
                if s.Kind = SampleSite && not s.IsObserved && not (covered.Contains s.Name) then
                    let v = Tensor.detach s.Value.Value |> Tensor.toFloat64
                    let x = Tensor.toArray v
                    match stats.TryGetValue s.Name with
                    | true, (count, mean, m2, shape) ->
                        if x.Length <> mean.Length then
                            invalidOp (sprintf "Posterior.predict: site '%s' changed shape between draws (%s, then %s)." s.Name (Shape.format shape) (Shape.format v.Shape))
                        let k = count + 1
                        for j in 0 .. x.Length - 1 do
                            let d = x.[j] - mean.[j]
                            mean.[j] <- mean.[j] + d / float k
                            m2.[j] <- m2.[j] + d * (x.[j] - mean.[j])
                        stats.[s.Name] <- (k, mean, m2, shape)
                    | _ -> stats.[s.Name] <- (1, Array.copy x, Array.zeroCreate x.Length, v.Shape)
                    if keepSamples then
                        match kept.TryGetValue s.Name with
                        | true, l -> l.Add v
                        | _ -> kept.[s.Name] <- ResizeArray [ v ]
        stats
        |> Seq.map (fun kv ->
            let count, mean, m2, shape = kv.Value
            let sd = m2 |> Array.map (fun q -> sqrt (max 0.0 q / float count))
            let samples = if keepSamples then Some (Tensor.stack 0 kept.[kv.Key]) else None
            kv.Key, { Mean = Tensor.create shape mean; Std = Tensor.create shape sd; Samples = samples })
        |> Map.ofSeq

    /// Observed sites become predictions: their given values are ignored and they are drawn.
    let private unobserve (m: Model<'T>) : Model<'T> =
        Handlers.custom (fun s next ->
            if s.Kind = SampleSite && s.IsObserved then next { s with Value = None; IsObserved = false } else next s) m

    /// The posterior predictive from posterior draws (stacked on the first axis by site name): one
    /// model run per draw.
    let predictFromDraws (modelFn: Map<string, Tensor> -> Model<'T>) (draws: Map<string, Tensor>) (key: RngKey) (keepSamples: bool) (data: Map<string, Tensor>) : Map<string, Prediction> =
        if draws.IsEmpty then invalidArg "draws" "Posterior.predictFromDraws: no draws given."
        let n = (draws |> Seq.head).Value.Shape.[0]
        for KeyValue (k, v) in draws do
            if v.Rank < 1 || v.Shape.[0] <> n then
                invalidArg "draws" (sprintf "Posterior.predictFromDraws: site '%s' has %s draws (shape %s) but the first site has %d." k (if v.Rank < 1 then "no" else string v.Shape.[0]) (Shape.format v.Shape) n)
        let covered = draws |> Map.keys |> Set.ofSeq
        Check.finiteData data
        let m = unobserve (modelFn data)
        accumulate n keepSamples (fun i -> Draws.rerunAt key m draws i, covered)

    /// The posterior predictive on new data: for every site the model samples that the posterior does
    /// not cover, the mean and sd over `n` posterior draws (a guide's fresh draws, or `n` of a sampler's
    /// kept draws evenly spaced over its chains; all of them when it kept fewer). Observed sites are
    /// predicted too: when the data still hold the observations (the training data, say), their values
    /// are ignored and the site is drawn, as a prediction at those rows means. Draws are processed one
    /// at a time, so memory stays bounded unless keepSamples asks for them. Non-finite data are refused.
    let predict (p: Posterior<'T>) (key: RngKey) (n: int) (keepSamples: bool) (data: Map<string, Tensor>) : Map<string, Prediction> =
        checkDraws "Posterior.predict" n
        match p.Source with
        | PosteriorSource.Guide g ->
            Check.finiteData data
            let m = unobserve (p.Model data)
            accumulate n keepSamples (fun i ->
                let kg, km = Rng.split (Rng.foldIn key i)
                let gt = guideTrace g kg
                let covered = gt.Sites |> Array.map (fun s -> s.Name) |> Set.ofArray
                let _, probe = Traced.run km (Handlers.replay gt m)
                let mp = Trace.parameters probe |> Array.choose (fun s -> g.Params.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
                let _, mt = Traced.run km (Handlers.replay gt (Handlers.substitute mp m))
                mt, covered)
        | PosteriorSource.Samples _ ->
            let all = draws p key 1
            let total = (Seq.head all).Value.Shape.[0]
            let picked =
                if n >= total then all
                else
                    let idx = Draws.evenlySpaced total n
                    all |> Map.map (fun _ t -> idx |> Array.map (fun j -> Tensor.select 0 j t) |> Tensor.stack 0)
            predictFromDraws p.Model picked key keepSamples data
