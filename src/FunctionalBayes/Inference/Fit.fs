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

/// Settings of `Fit.vi` (BLayers' fit(method="vi")); start from FitOptions.Default. The loop settings
/// (steps or epochs, batch size, early stopping, progress) are SVI's own record, `Run`:
/// `{ FitOptions.Default with Run.Steps = Some 2000; Seed = 1UL }`. `Fit.validate` holds every rule.
[<NoEquality; NoComparison>]
type FitOptions =
    { /// The autoguide, unless Guide is given.
      AutoGuide: AutoGuideKind
      /// A guide to use as it is.
      Guide: Guide option
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
      /// How long to run, how to batch, early stopping and progress (with neither Steps nor Epochs,
      /// SviRunOptions.DefaultSteps steps; with a BatchSize, the batched ELBO is used).
      Run: SviRunOptions }

    /// The defaults (BLayers' settings): AutoDiagonalNormal, Adam at 0.01 with cosine decay, one particle,
    /// seed 0, uniform(−2, 2) initialization, and SviRunOptions.DefaultSteps steps on all rows.
    static member Default =
        { AutoGuide = AutoGuideKind.AutoDiagonalNormal; Guide = None; LearningRate = 0.01; Schedule = LrSchedule.Cosine
          Optimizer = None; Particles = 1; Seed = 0UL; Init = InitUniform 2.0; ClipNorm = None; Run = SviRunOptions.Default }

[<RequireQualifiedAccess>]
module Fit =

    /// Checks the settings (the one place their rules live; SviRunOptions.Validate for the loop):
    /// raises ArgumentOutOfRangeException naming the setting and the fix.
    let validate (opts: FitOptions) =
        let bad (name: string) (value: obj) (msg: string) = raise (ArgumentOutOfRangeException(name, value, "Fit.vi: " + msg))
        if not (opts.LearningRate > 0.0 && Double.IsFinite opts.LearningRate) then
            bad "LearningRate" opts.LearningRate (sprintf "the learning rate must be positive and finite, got %g." opts.LearningRate)
        if opts.Particles < 1 then bad "Particles" opts.Particles (sprintf "particles must be at least 1, got %d." opts.Particles)
        match opts.ClipNorm with
        | Some c when not (c > 0.0) -> bad "ClipNorm" c (sprintf "the clip norm must be positive, got %g." c)
        | _ -> ()
        match opts.Init with
        | InitUniform r when not (r > 0.0 && Double.IsFinite r) -> bad "Init" r (sprintf "the init radius must be positive and finite, got %g." r)
        | _ -> ()
        match opts.AutoGuide with
        | AutoGuideKind.AutoLowRankMultivariateNormal (Some r) when r < 1 -> bad "AutoGuide" r (sprintf "the rank of AutoLowRankMultivariateNormal must be at least 1, got %d." r)
        | _ -> ()
        SviRunOptions.Validate opts.Run

    /// The total number of steps a fit with these options runs on `rows` rows (before any early stop).
    let totalSteps (opts: FitOptions) (rows: int) : int = validate opts; fst (Svi.schedule opts.Run rows)

    /// The model with the fitted values of its own param sites (Model.param in the model, not the
    /// guide) substituted: what a Laplace approximation or a potential at the fit must use.
    let private atFittedParams (key: RngKey) (ps: Map<string, Tensor>) (m: Model<'T>) : Model<'T> =
        let _, proto = Model.run (Handlers.trace (Handlers.seed key m))
        let mp = Trace.parameters proto |> Array.choose (fun s -> ps.TryFind s.Name |> Option.map (fun v -> s.Name, v)) |> Map.ofArray
        if mp.IsEmpty then m else Handlers.substitute mp m

    /// The guide a fit ends with: for an AutoLaplaceApproximation guide, the Laplace approximation at
    /// the fitted MAP point ("auto_loc"), with the Hessian of the potential at the fitted values of the
    /// model's params; any other guide as it is. `kGuide` is the key the guide was built with.
    let finishGuide (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (kGuide: RngKey) (guide: Guide) (ps: Map<string, Tensor>) : Guide =
        match guide.Origin with
        | GuideOrigin.Auto AutoGuideKind.AutoLaplaceApproximation ->
            match ps.TryFind "auto_loc" with
            | Some loc -> Guide.laplace (atFittedParams kGuide ps (modelFn data)) kGuide guide.Latents loc
            | None -> invalidArg "ps" "Fit: the parameters have no 'auto_loc'; they do not belong to an AutoLaplaceApproximation guide."
        | GuideOrigin.Auto _ | GuideOrigin.User | GuideOrigin.Laplace -> guide

    /// The guide a fit with these options starts from, and the keys of the guide and the run.
    let private startGuide (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) =
        let kGuide, kRun = Rng.split (Rng.key opts.Seed)
        let guide =
            match opts.Guide with
            | Some g -> g
            | None -> Guide.auto opts.AutoGuide opts.Init kGuide (modelFn data)
        guide, kGuide, kRun

    /// Fits a model by SVI on the batches of a source (Svi.runSource), and returns the run's result too. A
    /// streamed source (its Sample fewer rows than its Rows) needs Run.BatchSize, and its rows are checked
    /// by the source as it reads them; the Sample is checked here as Fit.vi checks data.
    let viSourceRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> * SviResult =
        validate opts
        let data = source.Sample
        let streamed = not data.IsEmpty && Data.rows data < source.Rows
        if streamed then
            if opts.Run.BatchSize.IsNone then
                invalidArg "opts" (sprintf "Fit.vi: the data are streamed (%d rows, not held in memory); set Run.BatchSize to fit in minibatches." source.Rows)
            if opts.AutoGuide = AutoGuideKind.AutoLaplaceApproximation && opts.Guide.IsNone then
                invalidArg "opts" "Fit.vi: AutoLaplaceApproximation needs every row at once for its Hessian; load the rows in memory, or choose another autoguide for streamed data."
        Check.observedData (modelFn data) data
        let total, _ = Svi.schedule opts.Run source.Rows
        let guide, kGuide, kRun = startGuide opts modelFn data
        let schedule =
            match opts.Schedule with
            | LrSchedule.Cosine -> Schedule.CosineDecay (opts.LearningRate, total, 0.0)
            | LrSchedule.WarmupCosine -> Schedule.OneCycle(opts.LearningRate, total)
            | LrSchedule.Constant -> Schedule.Constant opts.LearningRate
        let cfg =
            { Model = modelFn
              Guide = guide
              Optimizer = defaultArg opts.Optimizer (Optimizer.AdamWith schedule)
              Elbo = (match opts.Run.BatchSize with Some _ -> Elbo.Batched opts.Particles | None -> Elbo.Trace opts.Particles)
              ClipNorm = opts.ClipNorm }
        let r = Svi.runSource true cfg kRun source opts.Run
        let ps = r.Params
        let guide = finishGuide modelFn data kGuide guide ps
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = guide; Params = ps; Losses = r.Losses; StoppedEarly = r.StoppedEarly } }, r

    /// Fits a model to data by SVI, and returns the run's result too (losses, whether it stopped early,
    /// how the gradients were computed). The options are checked first (Fit.validate), then the data
    /// (Check.observedData): non-finite values and observations outside their sites' supports are
    /// refused, naming the key or site, the row and the value.
    let viRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        validate opts
        Data.rows data |> ignore
        viSourceRun opts modelFn (BatchSource.ofData data)

    /// Fits a model by SVI on the batches of a source: data streamed from a table larger than memory, say.
    let viSource (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (source: BatchSource) : Posterior<'T> =
        fst (viSourceRun opts modelFn source)

    /// Fits a model to data by SVI. The model is a function of the named data (rows on the first axis);
    /// data given to predict later may leave out the observations.
    let vi (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        fst (viRun opts modelFn data)

    /// Samples the posterior of a model given data by NUTS with Stan's adaptation (Mcmc.run): draws per
    /// latent site with shape [chains; draws; ...site shape], the deterministic sites at every draw and
    /// the sampler's statistics per chain. The data are checked first, as for Fit.vi.
    let mcmc (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        Mcmc.validate opts
        // scalars are fine here (no batches are cut), but arrays must agree on their rows
        let arrays = data |> Map.filter (fun _ t -> t.Rank >= 1)
        if not arrays.IsEmpty then Data.rows arrays |> ignore
        let m = modelFn data
        Check.observedData m data
        Posterior.ofMcmc modelFn (Mcmc.run opts m)

    /// A guide posterior with the given parameters, without fitting: the guide is built as Fit.vi builds it
    /// for these options (same model, data, guide and seed), then checked against the parameters and finished.
    let withParams (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (ps: Map<string, Tensor>) : Posterior<'T> =
        validate opts
        let guide, kGuide, _ = startGuide opts modelFn data
        let _, proto = Model.run (Handlers.trace (Handlers.seed kGuide guide.Program))
        match Trace.parameters proto |> Array.map (fun s -> s.Name) |> Array.filter (fun name -> not (ps.ContainsKey name)) with
        | [||] -> ()
        | missing ->
            raise (IO.InvalidDataException(sprintf "Fit.withParams: no values for the guide's parameters %s; they come from a fit with another model or guide (given: %s)." (String.Join(", ", missing)) (String.Join(", ", ps.Keys))))
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = finishGuide modelFn data kGuide guide ps; Params = ps; Losses = [||]; StoppedEarly = false } }

    // ---- files ------------------------------------------------------------------------------

    let private tensorNode (t: Tensor) : JsonNode =
        let o = JsonObject()
        o.["shape"] <- JsonArray(t.Shape |> Array.map (fun d -> JsonValue.Create d :> JsonNode))
        o.["dtype"] <- JsonValue.Create (string t.Dtype)
        o.["data"] <- JsonArray(Tensor.toArray t |> Array.map (fun v -> JsonValue.Create v :> JsonNode))
        o

    let private tensorsNode (ts: Map<string, Tensor>) : JsonNode =
        let items = JsonObject()
        for KeyValue (k, t) in ts do items.[k] <- tensorNode t
        items

    let private numbersNode (xs: seq<'a>) (f: 'a -> JsonNode) = JsonArray(xs |> Seq.map f |> Seq.toArray) :> JsonNode

    /// Reads the JSON files this module writes; every malformed part is an InvalidDataException naming the file.
    type private Reader(path: string) =
        member _.Bad(what: string) : 'a =
            raise (IO.InvalidDataException(sprintf "Fit: %s is not a FunctionalBayes file of the expected kind (%s)." path what))
        member r.Field (name: string) (n: JsonNode | null) : JsonNode =
            match n with
            | null -> r.Bad "missing node"
            | n ->
                match n.[name] with
                | null -> r.Bad (sprintf "no '%s'" name)
                | v -> v
        member r.Array (name: string) (n: JsonNode) (read: JsonNode -> 'a) : 'a[] =
            (r.Field name n).AsArray() |> Seq.map (fun x -> match x with null -> r.Bad "a null number" | x -> read x) |> Seq.toArray
        member r.Tensor(o: JsonNode) : Tensor =
            let shape = r.Array "shape" o (fun n -> n.GetValue<int>())
            let t = Tensor.create shape (r.Array "data" o (fun n -> n.GetValue<float>()))
            if (r.Field "dtype" o).GetValue<string>() = "float32" then Tensor.toFloat32 t else t
        member r.Tensors(o: JsonNode) : Map<string, Tensor> =
            o.AsObject() |> Seq.map (fun kv -> kv.Key, r.Tensor (match kv.Value with null -> r.Bad "a null tensor" | v -> v)) |> Map.ofSeq
        member r.Root(format: string) : JsonNode =
            let root = JsonNode.Parse(File.ReadAllText path)
            if (r.Field "format" root).GetValue<string>() <> format then r.Bad (sprintf "not format %s" format)
            match root with null -> r.Bad "empty" | root -> root

    let private write (path: string) (root: JsonObject) =
        File.WriteAllText(path, root.ToJsonString(JsonSerializerOptions(WriteIndented = false)))

    /// Writes parameters as JSON; doubles round-trip exactly.
    let saveParams (path: string) (ps: Map<string, Tensor>) =
        let root = JsonObject()
        root.["format"] <- JsonValue.Create "FunctionalBayes.params/1"
        root.["params"] <- tensorsNode ps
        write path root

    /// Reads parameters written by saveParams.
    let loadParams (path: string) : Map<string, Tensor> =
        let r = Reader path
        r.Tensors (r.Field "params" (r.Root "FunctionalBayes.params/1"))

    let private autoKindName (k: AutoGuideKind) =
        match k with
        | AutoGuideKind.AutoNormal -> "AutoNormal", None
        | AutoGuideKind.AutoDiagonalNormal -> "AutoDiagonalNormal", None
        | AutoGuideKind.AutoMultivariateNormal -> "AutoMultivariateNormal", None
        | AutoGuideKind.AutoLowRankMultivariateNormal rank -> "AutoLowRankMultivariateNormal", rank
        | AutoGuideKind.AutoDelta -> "AutoDelta", None
        | AutoGuideKind.AutoLaplaceApproximation -> "AutoLaplaceApproximation", None

    let private autoKindOf (r: Reader) (name: string) (rank: int option) =
        match name with
        | "AutoNormal" -> AutoGuideKind.AutoNormal
        | "AutoDiagonalNormal" -> AutoGuideKind.AutoDiagonalNormal
        | "AutoMultivariateNormal" -> AutoGuideKind.AutoMultivariateNormal
        | "AutoLowRankMultivariateNormal" -> AutoGuideKind.AutoLowRankMultivariateNormal rank
        | "AutoDelta" -> AutoGuideKind.AutoDelta
        | "AutoLaplaceApproximation" -> AutoGuideKind.AutoLaplaceApproximation
        | other -> r.Bad (sprintf "unknown autoguide '%s'" other)

    /// Writes a posterior as JSON (doubles round-trip exactly): a guide's parameters, kind and loss
    /// history, or a sampler's draws, deterministic sites, unconstrained positions and statistics per chain.
    /// Read it back with Fit.load.
    let save (path: string) (p: Posterior<'T>) =
        let root = JsonObject()
        root.["format"] <- JsonValue.Create "FunctionalBayes.posterior/1"
        match p.Source with
        | PosteriorSource.Guide g ->
            root.["kind"] <- JsonValue.Create "guide"
            let origin, rank =
                match g.Guide.Origin with
                | GuideOrigin.Auto k -> autoKindName k
                | GuideOrigin.Laplace -> "AutoLaplaceApproximation", None
                | GuideOrigin.User -> "user", None
            root.["guide"] <- JsonValue.Create origin
            match rank with Some r -> root.["rank"] <- JsonValue.Create r | None -> ()
            root.["params"] <- tensorsNode g.Params
            root.["losses"] <- numbersNode g.Losses (fun v -> JsonValue.Create v)
            root.["stoppedEarly"] <- JsonValue.Create g.StoppedEarly
        | PosteriorSource.Samples r ->
            root.["kind"] <- JsonValue.Create "samples"
            root.["draws"] <- tensorsNode r.Draws
            root.["deterministic"] <- tensorsNode r.Deterministic
            root.["dim"] <- JsonValue.Create r.Flat.Dim
            root.["gradientKind"] <- JsonValue.Create r.GradientKind
            root.["maxTreeDepth"] <- JsonValue.Create r.MaxTreeDepth
            root.["targetAccept"] <- JsonValue.Create r.TargetAccept
            root.["seconds"] <- JsonValue.Create r.Seconds
            let chains = JsonArray()
            for k in 0 .. r.Chains - 1 do
                let s = r.Flat.Stats.[k]
                let c = JsonObject()
                let floats (xs: float[]) = numbersNode xs (fun v -> JsonValue.Create v)
                c.["positions"] <- floats r.Flat.Positions.[k]
                c.["stepSize"] <- floats s.StepSize
                c.["treeDepth"] <- numbersNode s.TreeDepth (fun v -> JsonValue.Create v)
                c.["numLeapfrog"] <- numbersNode s.NumLeapfrog (fun v -> JsonValue.Create v)
                c.["divergent"] <- numbersNode s.Divergent (fun v -> JsonValue.Create v)
                c.["energy"] <- floats s.Energy
                c.["acceptStat"] <- floats s.AcceptStat
                c.["lp"] <- floats s.Lp
                c.["adaptedStepSize"] <- JsonValue.Create s.AdaptedStepSize
                match s.Metric with
                | DiagonalMetric v -> c.["metricDiagonal"] <- floats v
                | DenseMetric (a, _) ->
                    c.["metricDense"] <- numbersNode [ for i in 0 .. Array2D.length1 a - 1 -> numbersNode [ for j in 0 .. Array2D.length2 a - 1 -> a.[i, j] ] (fun v -> JsonValue.Create v) ] id
                c.["warmupDivergences"] <- JsonValue.Create s.WarmupDivergences
                c.["warmupSeconds"] <- JsonValue.Create s.WarmupSeconds
                c.["samplingSeconds"] <- JsonValue.Create s.SamplingSeconds
                chains.Add(c :> JsonNode)
            root.["chains"] <- chains
        write path root

    /// Reads a posterior written by Fit.save, for the model `modelFn` on `data` (the data it was fitted to:
    /// guides and latent sites are rebuilt from them). A guide posterior is rebuilt from the autoguide kind
    /// the file names; with `opts`, the fit's settings are checked against the file (their autoguide kind
    /// must be the file's) and their user guide, if any, is used as it is. Raises InvalidDataException when
    /// the file is not a posterior or does not belong to this model and guide.
    let load (path: string) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (opts: FitOptions option) : Posterior<'T> =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "Fit.load: no posterior file at %s." path, path))
        let r = Reader path
        let root = r.Root "FunctionalBayes.posterior/1"
        match (r.Field "kind" root).GetValue<string>() with
        | "guide" ->
            let ps = r.Tensors (r.Field "params" root)
            let name = (r.Field "guide" root).GetValue<string>()
            let rank = match root.["rank"] with null -> None | n -> Some (n.GetValue<int>())
            let opts =
                match opts |> Option.bind (fun o -> o.Guide), name with
                | Some g, _ -> { FitOptions.Default with Guide = Some g }
                | None, "user" -> invalidArg "opts" (sprintf "Fit.load: %s holds the parameters of a user guide; pass that guide in the options (Guide) to load it." path)
                | None, name ->
                    let kind = autoKindOf r name rank
                    match opts with
                    | Some o when fst (autoKindName o.AutoGuide) <> name ->
                        r.Bad (sprintf "it holds an %s posterior, but the fit's guide is %s" name (fst (autoKindName o.AutoGuide)))
                    | _ -> ()
                    { FitOptions.Default with AutoGuide = kind }
            let p = withParams opts modelFn data ps
            let g = Posterior.guidePart "Fit.load" p
            let losses = r.Array "losses" root (fun n -> n.GetValue<float>())
            { p with Source = PosteriorSource.Guide { g with Losses = losses; StoppedEarly = (r.Field "stoppedEarly" root).GetValue<bool>() } }
        | "samples" ->
            let draws = r.Tensors (r.Field "draws" root)
            let pot = LogDensity.potential (Rng.key 0UL) (modelFn data)
            let names = pot.Latents |> Array.map (fun l -> l.Name) |> Set.ofArray
            if names <> (draws |> Map.keys |> Set.ofSeq) then
                r.Bad (sprintf "its draws are of %s but the model's latent sites are %s" (String.Join(", ", Map.keys draws)) (String.Join(", ", names)))
            let floats name n = r.Array name n (fun x -> x.GetValue<float>())
            let stats, positions =
                (r.Field "chains" root).AsArray()
                |> Seq.map (fun c ->
                    let c = match c with null -> r.Bad "a null chain" | c -> c
                    let metric =
                        match c.["metricDiagonal"] with
                        | null ->
                            let rows = r.Array "metricDense" c (fun row -> row.AsArray() |> Seq.map (fun x -> match x with null -> r.Bad "a null number" | x -> x.GetValue<float>()) |> Seq.toArray)
                            Metric.dense (Array2D.init rows.Length rows.Length (fun i j -> rows.[i].[j]))
                        | _ -> Metric.diagonal (floats "metricDiagonal" c)
                    { StepSize = floats "stepSize" c; TreeDepth = r.Array "treeDepth" c (fun x -> x.GetValue<int>())
                      NumLeapfrog = r.Array "numLeapfrog" c (fun x -> x.GetValue<int>()); Divergent = r.Array "divergent" c (fun x -> x.GetValue<bool>())
                      Energy = floats "energy" c; AcceptStat = floats "acceptStat" c; Lp = floats "lp" c
                      AdaptedStepSize = (r.Field "adaptedStepSize" c).GetValue<float>(); Metric = metric
                      WarmupDivergences = (r.Field "warmupDivergences" c).GetValue<int>()
                      WarmupSeconds = (r.Field "warmupSeconds" c).GetValue<float>(); SamplingSeconds = (r.Field "samplingSeconds" c).GetValue<float>() },
                    floats "positions" c)
                |> Seq.toArray
                |> Array.unzip
            let result =
                { Sites = pot.Latents; Draws = draws; Deterministic = r.Tensors (r.Field "deterministic" root)
                  Flat = { Dim = (r.Field "dim" root).GetValue<int>(); Positions = positions; Stats = stats }
                  GradientKind = (r.Field "gradientKind" root).GetValue<string>(); MaxTreeDepth = (r.Field "maxTreeDepth" root).GetValue<int>()
                  TargetAccept = (r.Field "targetAccept" root).GetValue<float>(); Seconds = (r.Field "seconds" root).GetValue<float>() }
            Posterior.ofMcmc modelFn result
        | other -> r.Bad (sprintf "unknown kind '%s'" other)
