namespace FunctionalBayes

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

/// BLayers' learning-rate schedules for fit.
[<RequireQualifiedAccess>]
type LrSchedule =
    /// Cosine decay from lr to zero over the run (BLayers' default).
    | Cosine
    /// One cycle: warm up to lr over 10 % of the run, then cosine down (div factor 25).
    | WarmupCosine
    | Constant

/// Settings of `Fit.vi` (BLayers' fit(method="vi")); start from FitOptions.Default.
[<NoEquality; NoComparison>]
type FitOptions =
    { /// The autoguide, unless Guide is given.
      AutoGuide: AutoGuideKind
      /// A guide to use as it is.
      Guide: Guide option
      LearningRate: float
      Schedule: LrSchedule
      /// An optimizer that overrides LearningRate and Schedule.
      Optimizer: Optimizer option
      Steps: int option
      Epochs: int option
      /// Rows per step; with one, the batched ELBO is used.
      BatchSize: int option
      Particles: int
      Seed: uint64
      Init: InitStrategy
      ClipNorm: float option
      EarlyStopping: EarlyStopping option
      OnProgress: (SviProgress -> unit) option
      /// Call OnProgress every this many steps (1 lets a caller cancel between any two steps).
      ProgressEvery: int }

    static member Default =
        { AutoGuide = AutoGuideKind.AutoDiagonalNormal; Guide = None; LearningRate = 0.01; Schedule = LrSchedule.Cosine
          Optimizer = None; Steps = None; Epochs = None; BatchSize = None; Particles = 1; Seed = 0UL
          Init = InitUniform 2.0; ClipNorm = None; EarlyStopping = None; OnProgress = None; ProgressEvery = 100 }

/// A fitted model: the model, its guide, the fitted parameters and the loss history.
[<NoEquality; NoComparison>]
type Fitted<'T> =
    { Model: Map<string, Tensor> -> Model<'T>
      Guide: Guide
      Params: Map<string, Tensor>
      Losses: float[] }

/// Predictions for one site: mean and standard deviation over draws (and the draws, when kept).
[<NoEquality; NoComparison>]
type Prediction = { Mean: Tensor; Std: Tensor; Samples: Tensor option }

/// The posterior of one site: mean, sd and the 2.5 % and 97.5 % quantiles, element-wise.
[<NoEquality; NoComparison>]
type SiteSummary = { Name: string; Mean: Tensor; Sd: Tensor; Q025: Tensor; Q975: Tensor; Shape: int[] }

[<RequireQualifiedAccess>]
module Fit =

    /// Fits a model to data by SVI, and returns the run's result too (losses, whether it stopped early).
    let viRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Fitted<'T> * SviResult =
        match opts.Steps, opts.Epochs with
        | Some _, None | None, Some _ -> ()
        | _ -> invalidArg "opts" "Fit.vi: provide exactly one of Steps or Epochs."
        if not (opts.LearningRate > 0.0) then invalidArg "opts" (sprintf "Fit.vi: the learning rate must be positive, got %g." opts.LearningRate)
        let n = Data.rows data
        let runOpts =
            { SviRunOptions.ForSteps 1 with
                Steps = opts.Steps; Epochs = opts.Epochs; BatchSize = opts.BatchSize
                EarlyStopping = opts.EarlyStopping; OnProgress = opts.OnProgress; ProgressEvery = opts.ProgressEvery }
        let total, _ = Svi.schedule runOpts n
        let key = Rng.key opts.Seed
        let kGuide, kRun = Rng.split key
        let guide =
            match opts.Guide with
            | Some g -> g
            | None -> Guide.auto opts.AutoGuide opts.Init kGuide (modelFn data)
        let schedule =
            match opts.Schedule with
            | LrSchedule.Cosine -> Schedule.CosineDecay (opts.LearningRate, total, 0.0)
            | LrSchedule.WarmupCosine -> Schedule.OneCycle(opts.LearningRate, total)
            | LrSchedule.Constant -> Schedule.Constant opts.LearningRate
        let cfg =
            { Model = modelFn
              Guide = guide
              Optimizer = defaultArg opts.Optimizer (Optimizer.AdamWith schedule)
              Elbo = (match opts.BatchSize with Some _ -> Elbo.Batched opts.Particles | None -> Elbo.Trace opts.Particles)
              ClipNorm = opts.ClipNorm }
        let r = Svi.run cfg kRun data runOpts
        let ps = r.Params
        let guide =
            if guide.Name = "AutoLaplaceApproximation" then
                Guide.laplace (LogDensity.potential kGuide (modelFn data)) guide.Latents ps.["auto_loc"]
            else guide
        { Model = modelFn; Guide = guide; Params = ps; Losses = r.Losses }, r

    /// Fits a model to data by SVI. The model is a function of the named data (rows on the first axis);
    /// data given to predict later may leave out the observations.
    let vi (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Fitted<'T> =
        fst (viRun opts modelFn data)

    /// One run of the fitted guide, with the fitted values of the params it has.
    let private guideTrace (f: Fitted<'T>) (key: RngKey) =
        let program = f.Guide.Program
        let _, proto = Model.run (Handlers.trace (Handlers.seed key program))
        let guideParams = Trace.parameters proto |> Array.choose (fun s -> f.Params.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
        Model.run (Handlers.trace (Handlers.seed key (Handlers.substitute guideParams program))) |> snd

    /// n draws of every latent site from the fitted guide, stacked on a new first axis.
    let posterior (f: Fitted<'T>) (key: RngKey) (n: int) : Map<string, Tensor> =
        if n < 1 then invalidArg "n" (sprintf "Fit.posterior: needs at least one draw, got %d." n)
        let traces = Array.init n (fun i -> guideTrace f (Rng.foldIn key i))
        let latentNames =
            traces.[0].Sites |> Array.filter (fun s -> s.Kind = SampleSite && not (s.Name.StartsWith "_auto") && not (s.Name.EndsWith "_auto_unconstrained")) |> Array.map (fun s -> s.Name)
        latentNames |> Array.map (fun name -> name, traces |> Array.map (fun t -> Tensor.detach (t.Value name)) |> Tensor.stack 0) |> Map.ofArray

    /// Accumulates the mean and sd of every predicted site over n runs; `run i` gives the trace of the
    /// i-th run and the names of the sites that came from the posterior (not predictions).
    let private accumulate (n: int) (keepSamples: bool) (run: int -> Trace * Set<string>) : Map<string, Prediction> =
        let sums = Collections.Generic.Dictionary<string, Tensor * Tensor>()
        let kept = Collections.Generic.Dictionary<string, ResizeArray<Tensor>>()
        for i in 0 .. n - 1 do
            let mt, covered = run i
            for s in mt.Sites do
                if s.Kind = SampleSite && not s.IsObserved && not (covered.Contains s.Name) then
                    let v = Tensor.detach s.Value.Value |> Tensor.toFloat64
                    match sums.TryGetValue s.Name with
                    | true, (a, b) -> sums.[s.Name] <- (a + v, b + v * v)
                    | _ -> sums.[s.Name] <- (v, v * v)
                    if keepSamples then
                        match kept.TryGetValue s.Name with
                        | true, l -> l.Add v
                        | _ -> kept.[s.Name] <- ResizeArray [ v ]
        sums
        |> Seq.map (fun kv ->
            let s1, s2 = kv.Value
            let mean = s1 / float n
            let var = Tensor.relu (s2 / float n - mean * mean)
            let samples = if keepSamples then Some (Tensor.stack 0 kept.[kv.Key]) else None
            kv.Key, { Mean = mean; Std = Tensor.sqrt var; Samples = samples })
        |> Map.ofSeq

    /// The posterior predictive on new data (leave out the observations to predict them): for every
    /// site the model samples that the guide does not cover, the mean and sd over n draws. Draws are
    /// processed one at a time, so memory stays bounded unless keepSamples asks for them.
    let predict (f: Fitted<'T>) (key: RngKey) (n: int) (keepSamples: bool) (data: Map<string, Tensor>) : Map<string, Prediction> =
        if n < 1 then invalidArg "n" (sprintf "Fit.predict: needs at least one draw, got %d." n)
        let m = f.Model data
        accumulate n keepSamples (fun i ->
            let kg, km = Rng.split (Rng.foldIn key i)
            let gt = guideTrace f kg
            let covered = gt.Sites |> Array.map (fun s -> s.Name) |> Set.ofArray
            let _, probe = Model.run (Handlers.trace (Handlers.seed km (Handlers.replay gt m)))
            let mp = Trace.parameters probe |> Array.choose (fun s -> f.Params.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
            let _, mt = Model.run (Handlers.trace (Handlers.seed km (Handlers.replay gt (Handlers.substitute mp m))))
            mt, covered)

    /// The posterior predictive from posterior draws (stacked on the first axis by site name, as
    /// Fit.posterior or a sampler gives them): one model run per draw.
    let predictFromDraws (modelFn: Map<string, Tensor> -> Model<'T>) (draws: Map<string, Tensor>) (key: RngKey) (keepSamples: bool) (data: Map<string, Tensor>) : Map<string, Prediction> =
        if draws.IsEmpty then invalidArg "draws" "Fit.predictFromDraws: no draws given."
        let n = (draws |> Seq.head).Value.Shape.[0]
        for KeyValue (k, v) in draws do
            if v.Rank < 1 || v.Shape.[0] <> n then
                invalidArg "draws" (sprintf "Fit.predictFromDraws: site '%s' has %s draws (shape %s) but the first site has %d." k (if v.Rank < 1 then "no" else string v.Shape.[0]) (Shape.format v.Shape) n)
        let covered = draws |> Map.keys |> Set.ofSeq
        let m = modelFn data
        accumulate n keepSamples (fun i ->
            let values = draws |> Map.map (fun _ d -> Tensor.select 0 i d)
            let _, mt = Model.run (Handlers.trace (Handlers.seed (Rng.foldIn key i) (Handlers.substitute values m)))
            mt, covered)

    /// Posterior summaries of every latent site from n guide draws.
    let summary (f: Fitted<'T>) (key: RngKey) (n: int) : SiteSummary[] =
        let draws = posterior f key n
        draws
        |> Map.toArray
        |> Array.map (fun (name, d) ->
            let shape = d.Shape.[1..]
            let size = Shape.size shape
            let v = Tensor.toArray d
            let col j = Array.init n (fun i -> v.[i * size + j]) |> Array.sort
            let q (p: float) (c: float[]) =
                // linear interpolation between order statistics (NumPy's default)
                let h = p * float (c.Length - 1)
                let lo = int (floor h)
                let hi = min (lo + 1) (c.Length - 1)
                c.[lo] + (h - float lo) * (c.[hi] - c.[lo])
            let cols = Array.init size col
            let mk (f: float[] -> float) = Tensor.create shape (cols |> Array.map f)
            { Name = name
              Mean = mk Array.average
              Sd = mk (fun c -> let m = Array.average c in sqrt (c |> Array.averageBy (fun x -> (x - m) ** 2.0)))
              Q025 = mk (q 0.025)
              Q975 = mk (q 0.975)
              Shape = shape })

    /// Writes parameters as JSON; doubles round-trip exactly.
    let saveParams (path: string) (ps: Map<string, Tensor>) =
        let root = JsonObject()
        root.["format"] <- JsonValue.Create "FunctionalBayes.params/1"
        let items = JsonObject()
        for KeyValue (k, t) in ps do
            let o = JsonObject()
            o.["shape"] <- JsonArray(t.Shape |> Array.map (fun d -> JsonValue.Create d :> JsonNode))
            o.["dtype"] <- JsonValue.Create (string t.Dtype)
            o.["data"] <- JsonArray(Tensor.toArray t |> Array.map (fun v -> JsonValue.Create v :> JsonNode))
            items.[k] <- o
        root.["params"] <- items
        File.WriteAllText(path, root.ToJsonString(JsonSerializerOptions(WriteIndented = true)))

    /// Reads parameters written by saveParams.
    let loadParams (path: string) : Map<string, Tensor> =
        let root = JsonNode.Parse(File.ReadAllText path)
        if isNull root || root.["format"] |> isNull || root.["format"].GetValue<string>() <> "FunctionalBayes.params/1" then
            raise (InvalidDataException(sprintf "Fit.loadParams: %s is not a FunctionalBayes parameter file." path))
        let items = root.["params"].AsObject()
        items
        |> Seq.map (fun kv ->
            let o = kv.Value
            let shape = o.["shape"].AsArray() |> Seq.map (fun n -> n.GetValue<int>()) |> Seq.toArray
            let data = o.["data"].AsArray() |> Seq.map (fun n -> n.GetValue<float>()) |> Seq.toArray
            let t = Tensor.create shape data
            let t = if o.["dtype"].GetValue<string>() = "float32" then Tensor.toFloat32 t else t
            kv.Key, t)
        |> Map.ofSeq

    /// A fitted model with parameters loaded from a file (the guide must be built the same way).
    let withParams (ps: Map<string, Tensor>) (f: Fitted<'T>) = { f with Params = ps }

    /// Samples the posterior of a model given data by NUTS with Stan's adaptation (Mcmc.run): draws per
    /// latent site with shape [chains; draws; ...site shape] and the sampler parameters per chain.
    let mcmc (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : McmcResult =
        if not data.IsEmpty then Data.rows data |> ignore
        Mcmc.run opts (modelFn data)
