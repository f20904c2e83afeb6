namespace FunctionalBayes

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

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
        InitStrategy.Validate(opts.Init, "Fit.vi")
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

    let private viFrom (ctx: RunContext) (resumeFrom: string option) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        validate opts
        let n = Data.rows data
        Check.observedData (modelFn data) data
        let total, _ = Svi.schedule opts.Run n
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
        let r =
            match resumeFrom with
            | None -> Svi.runIn ctx true cfg kRun data opts.Run
            | Some path -> Svi.resume ctx true cfg kRun data opts.Run path
        let ps = r.Params
        let guide = finishGuide modelFn data kGuide guide ps
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = guide; Params = ps; Losses = r.Losses; StoppedEarly = r.StoppedEarly; Options = Some opts } }, r

    /// viRun under a run context: progress, cancellation (OperationCanceledException after the current
    /// step) and checkpoints.
    let viRunIn (ctx: RunContext) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        viFrom ctx None opts modelFn data

    /// Continues the fit (same options, model and data) that wrote the checkpoint at `path`; the result
    /// has the same bits as the uninterrupted fit's.
    let viResume (ctx: RunContext) (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (path: string) : Posterior<'T> * SviResult =
        viFrom ctx (Some path) opts modelFn data

    /// Fits a model to data by SVI, and returns the run's result too (losses, whether it stopped early,
    /// how the gradients were computed). The options are checked first (Fit.validate), then the data
    /// (Check.observedData): non-finite values and observations outside their sites' supports are
    /// refused, naming the key or site, the row and the value.
    let viRun (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> * SviResult =
        viRunIn RunContext.Quiet opts modelFn data

    /// Fits a model to data by SVI. The model is a function of the named data (rows on the first axis);
    /// data given to predict later may leave out the observations.
    let vi (opts: FitOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        fst (viRun opts modelFn data)

    /// Samples the posterior of a model given data by NUTS with Stan's adaptation (Mcmc.run): draws per
    /// latent site with shape [chains; draws; ...site shape], the deterministic sites at every draw and
    /// the sampler's statistics per chain. The data are checked first, as for Fit.vi.
    let private mcmcFrom (ctx: RunContext) (resumeFrom: string option) (opts: McmcOptions) (source: Potential -> GradientSource) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        Mcmc.validate opts
        if not data.IsEmpty then Data.rows data |> ignore
        let m = modelFn data
        Check.observedData m data
        let r =
            match resumeFrom with
            | None -> Mcmc.runWithSource ctx opts source m
            | Some path -> Mcmc.resume ctx opts m path
        Posterior.ofMcmc modelFn r

    /// Fit.mcmc under a run context: progress per chain, messages, cancellation, a checkpoint per chain.
    let mcmcIn (ctx: RunContext) (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcFrom ctx None opts (Mcmc.gradientSource opts.Gradient) modelFn data

    /// Fit.mcmcIn with a gradient source of your own (an instrumented evaluator, say) in place of opts.Gradient.
    let mcmcWithSource (ctx: RunContext) (opts: McmcOptions) (source: Potential -> GradientSource) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcFrom ctx None opts source modelFn data

    /// Continues the sampling (same options, model and data) whose chains wrote checkpoints at `path`.
    let mcmcResume (ctx: RunContext) (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) (path: string) : Posterior<'T> =
        mcmcFrom ctx (Some path) opts (Mcmc.gradientSource opts.Gradient) modelFn data

    /// Fit.mcmcIn with RunContext.Default (messages to the console).
    let mcmc (opts: McmcOptions) (modelFn: Map<string, Tensor> -> Model<'T>) (data: Map<string, Tensor>) : Posterior<'T> =
        mcmcIn RunContext.Default opts modelFn data

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
        { Model = modelFn; Source = PosteriorSource.Guide { Guide = finishGuide modelFn data kGuide guide ps; Params = ps; Losses = [||]; StoppedEarly = false; Options = Some opts } }

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

    // ---- the settings in a posterior file: each record's writer and reader side by side ----

    let private num (v: float) = JsonValue.Create v :> JsonNode

    /// A union case as [tag, fields...].
    let private tagged (tag: string) (fields: JsonNode list) : JsonNode =
        JsonArray(Array.ofList ((nonNull (JsonValue.Create tag) :> JsonNode) :: fields)) :> JsonNode

    let private cases (r: Reader) (n: JsonNode) : string * (int -> JsonNode) =
        let a = n.AsArray()
        if a.Count = 0 then r.Bad "an empty setting"
        let field i = match a.[i + 1] with null -> r.Bad "a null setting" | v -> v
        (match a.[0] with null -> r.Bad "a null tag" | t -> t.GetValue<string>()), field

    let private optional (n: JsonNode | null) (read: JsonNode -> 'a) : 'a option = match n with null -> None | v -> Some (read v)

    let private scheduleNode (s: Schedule) =
        match s with
        | Schedule.Constant lr -> tagged "constant" [ num lr ]
        | Schedule.CosineDecay (lr, n, a) -> tagged "cosineDecay" [ num lr; num (float n); num a ]
        | Schedule.WarmupCosine (p, n, pct, d, f) -> tagged "warmupCosine" [ num p; num (float n); num pct; num d; num f ]
        | Schedule.ExponentialDecay (lr, rate, k) -> tagged "exponentialDecay" [ num lr; num rate; num (float k) ]

    let private scheduleOf (r: Reader) (n: JsonNode) =
        let tag, f = cases r n
        let x i = (f i).GetValue<float>()
        match tag with
        | "constant" -> Schedule.Constant (x 0)
        | "cosineDecay" -> Schedule.CosineDecay (x 0, int (x 1), x 2)
        | "warmupCosine" -> Schedule.WarmupCosine (x 0, int (x 1), x 2, x 3, x 4)
        | "exponentialDecay" -> Schedule.ExponentialDecay (x 0, x 1, int (x 2))
        | other -> r.Bad (sprintf "unknown schedule '%s'" other)

    let private optimizerNode (o: Optimizer) =
        match o with
        | Optimizer.Sgd (s, m) -> tagged "sgd" [ scheduleNode s; num m ]
        | Optimizer.Adam (s, b1, b2, eps) -> tagged "adam" [ scheduleNode s; num b1; num b2; num eps ]
        | Optimizer.AdamW (s, b1, b2, eps, wd) -> tagged "adamW" [ scheduleNode s; num b1; num b2; num eps; num wd ]
        | Optimizer.ClippedAdam (s, b1, b2, eps, c, lrd) -> tagged "clippedAdam" [ scheduleNode s; num b1; num b2; num eps; num c; num lrd ]
        | Optimizer.Adagrad (s, eps) -> tagged "adagrad" [ scheduleNode s; num eps ]
        | Optimizer.RmsProp (s, decay, eps) -> tagged "rmsProp" [ scheduleNode s; num decay; num eps ]

    let private optimizerOf (r: Reader) (n: JsonNode) =
        let tag, f = cases r n
        let s = scheduleOf r (f 0)
        let x i = (f i).GetValue<float>()
        match tag with
        | "sgd" -> Optimizer.Sgd (s, x 1)
        | "adam" -> Optimizer.Adam (s, x 1, x 2, x 3)
        | "adamW" -> Optimizer.AdamW (s, x 1, x 2, x 3, x 4)
        | "clippedAdam" -> Optimizer.ClippedAdam (s, x 1, x 2, x 3, x 4, x 5)
        | "adagrad" -> Optimizer.Adagrad (s, x 1)
        | "rmsProp" -> Optimizer.RmsProp (s, x 1, x 2)
        | other -> r.Bad (sprintf "unknown optimizer '%s'" other)

    let private initNode (i: InitStrategy) =
        match i with
        | InitUniform radius -> tagged "uniform" [ num radius ]
        | InitMedian n -> tagged "median" [ num (float n) ]
        | InitFeasible -> tagged "feasible" []
        | InitValues vs -> tagged "values" [ tensorsNode vs ]

    let private initOf (r: Reader) (n: JsonNode) =
        let tag, f = cases r n
        match tag with
        | "uniform" -> InitUniform ((f 0).GetValue<float>())
        | "median" -> InitMedian (int ((f 0).GetValue<float>()))
        | "feasible" -> InitFeasible
        | "values" -> InitValues (r.Tensors (f 0))
        | other -> r.Bad (sprintf "unknown init strategy '%s'" other)

    let private fitOptionsNode (o: FitOptions) : JsonNode =
        let j = JsonObject()
        let guide, rank = autoKindName o.AutoGuide
        j.["autoGuide"] <- JsonValue.Create guide
        match rank with Some k -> j.["rank"] <- JsonValue.Create k | None -> ()
        j.["learningRate"] <- num o.LearningRate
        j.["schedule"] <- JsonValue.Create (match o.Schedule with LrSchedule.Cosine -> "cosine" | LrSchedule.WarmupCosine -> "warmupCosine" | LrSchedule.Constant -> "constant")
        match o.Optimizer with Some opt -> j.["optimizer"] <- optimizerNode opt | None -> ()
        j.["particles"] <- JsonValue.Create o.Particles
        j.["seed"] <- JsonValue.Create o.Seed
        j.["init"] <- initNode o.Init
        match o.ClipNorm with Some c -> j.["clipNorm"] <- num c | None -> ()
        let run = JsonObject()
        match o.Run.Steps with Some s -> run.["steps"] <- JsonValue.Create s | None -> ()
        match o.Run.Epochs with Some e -> run.["epochs"] <- JsonValue.Create e | None -> ()
        match o.Run.BatchSize with Some b -> run.["batchSize"] <- JsonValue.Create b | None -> ()
        run.["shuffle"] <- JsonValue.Create o.Run.Shuffle
        match o.Run.EarlyStopping with
        | Some es -> run.["earlyStopping"] <- JsonArray(JsonValue.Create es.Window, num es.RelTol, JsonValue.Create es.Patience)
        | None -> ()
        j.["run"] <- run
        j :> JsonNode

    /// The settings a file holds; a user guide is not saved, so `guide` (the caller's) is put back.
    let private fitOptionsOf (r: Reader) (guide: Guide option) (j: JsonNode) : FitOptions =
        let intOf (name: string) (n: JsonNode) = (r.Field name n).GetValue<int>()
        let run = r.Field "run" j
        { AutoGuide = autoKindOf r ((r.Field "autoGuide" j).GetValue<string>()) (optional j.["rank"] (fun n -> n.GetValue<int>()))
          Guide = guide
          LearningRate = (r.Field "learningRate" j).GetValue<float>()
          Schedule =
            match (r.Field "schedule" j).GetValue<string>() with
            | "cosine" -> LrSchedule.Cosine
            | "warmupCosine" -> LrSchedule.WarmupCosine
            | "constant" -> LrSchedule.Constant
            | other -> r.Bad (sprintf "unknown learning-rate schedule '%s'" other)
          Optimizer = optional j.["optimizer"] (optimizerOf r)
          Particles = intOf "particles" j
          Seed = (r.Field "seed" j).GetValue<uint64>()
          Init = initOf r (r.Field "init" j)
          ClipNorm = optional j.["clipNorm"] (fun n -> n.GetValue<float>())
          Run =
            { Steps = optional run.["steps"] (fun n -> n.GetValue<int>())
              Epochs = optional run.["epochs"] (fun n -> n.GetValue<int>())
              BatchSize = optional run.["batchSize"] (fun n -> n.GetValue<int>())
              Shuffle = (r.Field "shuffle" run).GetValue<bool>()
              EarlyStopping =
                optional run.["earlyStopping"] (fun n ->
                    let a = n.AsArray()
                    let at (i: int) : JsonNode = match a.[i] with null -> r.Bad "a null early-stopping setting" | v -> v
                    { Window = (at 0).GetValue<int>(); RelTol = (at 1).GetValue<float>(); Patience = (at 2).GetValue<int>() }) } }

    let private mcmcOptionsNode (o: McmcOptions) : JsonNode =
        let j = JsonObject()
        j.["chains"] <- JsonValue.Create o.Chains
        j.["warmup"] <- JsonValue.Create o.Warmup
        j.["samples"] <- JsonValue.Create o.Samples
        j.["thin"] <- JsonValue.Create o.Thin
        j.["seed"] <- JsonValue.Create o.Seed
        j.["targetAccept"] <- num o.TargetAccept
        j.["maxTreeDepth"] <- JsonValue.Create o.MaxTreeDepth
        j.["maxDeltaH"] <- num o.MaxDeltaH
        j.["denseMetric"] <- JsonValue.Create o.DenseMetric
        j.["findInitialStepSize"] <- JsonValue.Create o.FindInitialStepSize
        j.["initialStepSize"] <- num o.InitialStepSize
        j.["init"] <- initNode o.Init
        j.["parallel"] <- JsonValue.Create o.Parallel
        j.["gradient"] <- JsonValue.Create (match o.Gradient with McmcGradient.Auto -> "auto" | McmcGradient.Tape -> "tape")
        j :> JsonNode

    let private mcmcOptionsOf (r: Reader) (j: JsonNode) : McmcOptions =
        let get (name: string) = r.Field name j
        { Chains = (get "chains").GetValue<int>(); Warmup = (get "warmup").GetValue<int>(); Samples = (get "samples").GetValue<int>()
          Thin = (get "thin").GetValue<int>(); Seed = (get "seed").GetValue<uint64>(); TargetAccept = (get "targetAccept").GetValue<float>()
          MaxTreeDepth = (get "maxTreeDepth").GetValue<int>(); MaxDeltaH = (get "maxDeltaH").GetValue<float>()
          DenseMetric = (get "denseMetric").GetValue<bool>(); FindInitialStepSize = (get "findInitialStepSize").GetValue<bool>()
          InitialStepSize = (get "initialStepSize").GetValue<float>(); Init = initOf r (get "init"); Parallel = (get "parallel").GetValue<bool>()
          Gradient =
            match (get "gradient").GetValue<string>() with
            | "auto" -> McmcGradient.Auto
            | "tape" -> McmcGradient.Tape
            | other -> r.Bad (sprintf "unknown gradient '%s'" other) }

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
            match g.Options with Some o -> root.["options"] <- fitOptionsNode o | None -> ()
        | PosteriorSource.Samples r ->
            root.["kind"] <- JsonValue.Create "samples"
            root.["draws"] <- tensorsNode r.Draws
            root.["deterministic"] <- tensorsNode r.Deterministic
            root.["dim"] <- JsonValue.Create r.Flat.Dim
            root.["gradientKind"] <- JsonValue.Create r.GradientKind
            match r.Options with Some o -> root.["options"] <- mcmcOptionsNode o | None -> ()
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
            let saved = optional root.["options"] (fitOptionsOf r opts.Guide)
            { p with Source = PosteriorSource.Guide { g with Losses = losses; StoppedEarly = (r.Field "stoppedEarly" root).GetValue<bool>(); Options = saved } }
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
                  TargetAccept = (r.Field "targetAccept" root).GetValue<float>(); Seconds = (r.Field "seconds" root).GetValue<float>()
                  Options = optional root.["options"] (mcmcOptionsOf r) }
            Posterior.ofMcmc modelFn result
        | other -> r.Bad (sprintf "unknown kind '%s'" other)
