namespace FunctionalBayes

open System
open System.IO
open System.Text.Json
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

/// What an AEVB file records of the engine and run that trained its networks (plain data): a file loads
/// only into an engine with the same sizes, families, prior and dtype.
type AevbSignature =
    { LatentDim: int
      DataDim: int
      /// The encoder's distribution over the latent (the variational family), by name.
      Variational: string
      /// The decoder's distribution over the data (the observation family), by name.
      Observation: string
      /// The prior over the latent, in words ("unit normal", "log density 'name'", ...).
      Prior: string
      /// The dtype of the latents and the networks ("float64", "float32").
      Dtype: string
      /// Each network's parameters with their shapes, "encoder/..." and "decoder/..." (the network sizes).
      Parameters: (string * int[])[]
      /// The settings of the run that trained them (None for networks saved untrained).
      Options: AevbRunOptions option }

/// The posterior file format (JSON, doubles round-trip exactly): every key it reads and writes is in the
/// one table `Keys`; every malformed part is an InvalidDataException naming the file and what is wrong.
[<RequireQualifiedAccess>]
module PosteriorFile =

    /// The format names and JSON keys: the one table both the writer and the reader use.
    module internal Keys =
        let [<Literal>] PosteriorFormat = "FunctionalBayes.posterior/2"
        let [<Literal>] ParamsFormat = "FunctionalBayes.params/1"
        let [<Literal>] AevbFormat = "FunctionalBayes.aevb/1"
        let [<Literal>] Engine = "engine"
        let [<Literal>] LatentDim = "latentDim"
        let [<Literal>] DataDim = "dataDim"
        let [<Literal>] Variational = "variational"
        let [<Literal>] Observation = "observation"
        let [<Literal>] Prior = "prior"
        let [<Literal>] Parameters = "parameters"
        let [<Literal>] Epochs = "epochs"
        let [<Literal>] BatchSize = "batchSize"
        let [<Literal>] Shuffle = "shuffle"
        let [<Literal>] EarlyStopping = "earlyStopping"
        let [<Literal>] Format = "format"
        let [<Literal>] Kind = "kind"
        let [<Literal>] KindGuide = "guide"
        let [<Literal>] KindSamples = "samples"
        let [<Literal>] Guide = "guide"
        let [<Literal>] Rank = "rank"
        let [<Literal>] Params = "params"
        let [<Literal>] Losses = "losses"
        let [<Literal>] StoppedEarly = "stoppedEarly"
        let [<Literal>] Draws = "draws"
        let [<Literal>] Deterministic = "deterministic"
        let [<Literal>] Dim = "dim"
        let [<Literal>] GradientKind = "gradientKind"
        let [<Literal>] MaxTreeDepth = "maxTreeDepth"
        let [<Literal>] TargetAccept = "targetAccept"
        let [<Literal>] Seconds = "seconds"
        let [<Literal>] Chains = "chains"
        let [<Literal>] Positions = "positions"
        let [<Literal>] StepSize = "stepSize"
        let [<Literal>] TreeDepth = "treeDepth"
        let [<Literal>] NumLeapfrog = "numLeapfrog"
        let [<Literal>] Divergent = "divergent"
        let [<Literal>] Energy = "energy"
        let [<Literal>] AcceptStat = "acceptStat"
        let [<Literal>] Lp = "lp"
        let [<Literal>] AdaptedStepSize = "adaptedStepSize"
        let [<Literal>] MetricDiagonal = "metricDiagonal"
        let [<Literal>] MetricDense = "metricDense"
        let [<Literal>] MetricLowRank = "metricLowRank"
        let [<Literal>] WarmupDivergences = "warmupDivergences"
        let [<Literal>] WarmupSeconds = "warmupSeconds"
        let [<Literal>] SamplingSeconds = "samplingSeconds"
        let [<Literal>] Signature = "signature"
        let [<Literal>] Latents = "latents"
        let [<Literal>] Observed = "observed"
        let [<Literal>] Data = "data"
        let [<Literal>] Name = "name"
        let [<Literal>] Shape = "shape"
        let [<Literal>] Support = "support"
        let [<Literal>] Dtype = "dtype"
        let [<Literal>] Offset = "offset"
        let [<Literal>] Length = "length"
        let [<Literal>] Key = "key"
        let [<Literal>] Values = "data"
        /// A categorical data key's vocabulary (absent for other keys).
        let [<Literal>] Levels = "levels"
        /// The settings the posterior was made with (FitOptions, McmcOptions); absent when it was not fitted here.
        let [<Literal>] Options = "options"
        // the settings' fields (FitOptions, SviRunOptions, McmcOptions)
        let [<Literal>] OptAutoGuide = "autoGuide"
        let [<Literal>] OptChains = "chains"
        let [<Literal>] OptClipNorm = "clipNorm"
        let [<Literal>] OptCutoff = "cutoff"
        let [<Literal>] OptDenseMetric = "denseMetric"
        let [<Literal>] OptFindInitialStepSize = "findInitialStepSize"
        let [<Literal>] OptGamma = "gamma"
        let [<Literal>] OptGradient = "gradient"
        let [<Literal>] OptInit = "init"
        let [<Literal>] OptInitialStepSize = "initialStepSize"
        let [<Literal>] OptLearningRate = "learningRate"
        let [<Literal>] OptMaxDeltaH = "maxDeltaH"
        let [<Literal>] OptMaxTreeDepth = "maxTreeDepth"
        let [<Literal>] OptMetricAdaptation = "metricAdaptation"
        let [<Literal>] OptOptimizer = "optimizer"
        let [<Literal>] OptParallel = "parallel"
        let [<Literal>] OptParticles = "particles"
        let [<Literal>] OptRun = "run"
        let [<Literal>] OptSamples = "samples"
        let [<Literal>] OptSchedule = "schedule"
        let [<Literal>] OptSeed = "seed"
        let [<Literal>] OptSteps = "steps"
        let [<Literal>] OptTargetAccept = "targetAccept"
        let [<Literal>] OptThin = "thin"
        let [<Literal>] OptWarmup = "warmup"

    // ---- writing ------------------------------------------------------------------------------

    let private tensorNode (t: Tensor) : JsonNode =
        let o = JsonObject()
        o.[Keys.Shape] <- JsonArray(t.Shape |> Array.map (fun d -> JsonValue.Create d :> JsonNode))
        o.[Keys.Dtype] <- JsonValue.Create (string t.Dtype)
        o.[Keys.Values] <- JsonArray(Tensor.toArray t |> Array.map (fun v -> JsonValue.Create v :> JsonNode))
        o

    let private tensorsNode (ts: Map<string, Tensor>) : JsonNode =
        let items = JsonObject()
        for KeyValue (k, t) in ts do items.[k] <- tensorNode t
        items

    let private numbersNode (xs: seq<'a>) (f: 'a -> JsonNode) = JsonArray(xs |> Seq.map f |> Seq.toArray) :> JsonNode
    let private intsNode (xs: int[]) = numbersNode xs (fun v -> JsonValue.Create v)
    let private floatsNode (xs: float[]) = numbersNode xs (fun v -> JsonValue.Create v)

    let private sitesNode (sites: SiteSignature[]) =
        numbersNode sites (fun s ->
            let o = JsonObject()
            o.[Keys.Name] <- JsonValue.Create s.Name
            o.[Keys.Kind] <- JsonValue.Create s.Kind
            o.[Keys.Shape] <- intsNode s.Shape
            o.[Keys.Support] <- JsonValue.Create s.Support
            o.[Keys.Dtype] <- JsonValue.Create s.Dtype
            o.[Keys.Offset] <- JsonValue.Create s.Offset
            o.[Keys.Length] <- JsonValue.Create s.Length
            o :> JsonNode)

    let private signatureNode (sg: ModelSignature) : JsonNode =
        let o = JsonObject()
        sg.Latents |> Option.iter (fun l -> o.[Keys.Latents] <- sitesNode l)
        sg.Observed |> Option.iter (fun l -> o.[Keys.Observed] <- sitesNode l)
        sg.Data
        |> Option.iter (fun d ->
            o.[Keys.Data] <- numbersNode d (fun d ->
                let x = JsonObject()
                x.[Keys.Key] <- JsonValue.Create d.Key
                x.[Keys.Shape] <- intsNode d.Shape
                x.[Keys.Dtype] <- JsonValue.Create d.Dtype
                d.Levels |> Option.iter (fun l -> x.[Keys.Levels] <- numbersNode l (fun v -> nonNull (JsonValue.Create v) :> JsonNode))
                x :> JsonNode))
        o

    let private write (path: string) (root: JsonObject) =
        File.WriteAllText(path, root.ToJsonString(JsonSerializerOptions(WriteIndented = false)))

    /// Writes named tensors as JSON; doubles round-trip exactly.
    let saveParams (path: string) (ps: Map<string, Tensor>) =
        let root = JsonObject()
        root.[Keys.Format] <- JsonValue.Create Keys.ParamsFormat
        root.[Keys.Params] <- tensorsNode ps
        write path root

    let internal autoKindName (k: AutoGuideKind) =
        match k with
        | AutoGuideKind.AutoNormal -> "AutoNormal", None
        | AutoGuideKind.AutoDiagonalNormal -> "AutoDiagonalNormal", None
        | AutoGuideKind.AutoMultivariateNormal -> "AutoMultivariateNormal", None
        | AutoGuideKind.AutoLowRankMultivariateNormal rank -> "AutoLowRankMultivariateNormal", rank
        | AutoGuideKind.AutoDelta -> "AutoDelta", None
        | AutoGuideKind.AutoLaplaceApproximation -> "AutoLaplaceApproximation", None

    /// The autoguide kind a file names (None for an unknown name).
    let internal autoKindOf (name: string) (rank: int option) : AutoGuideKind option =
        match name with
        | "AutoNormal" -> Some AutoGuideKind.AutoNormal
        | "AutoDiagonalNormal" -> Some AutoGuideKind.AutoDiagonalNormal
        | "AutoMultivariateNormal" -> Some AutoGuideKind.AutoMultivariateNormal
        | "AutoLowRankMultivariateNormal" -> Some (AutoGuideKind.AutoLowRankMultivariateNormal rank)
        | "AutoDelta" -> Some AutoGuideKind.AutoDelta
        | "AutoLaplaceApproximation" -> Some AutoGuideKind.AutoLaplaceApproximation
        | _ -> None

    // ---- reading ------------------------------------------------------------------------------

    /// A posterior file's contents, before they are bound to a model.
    [<RequireQualifiedAccess; NoEquality; NoComparison>]
    type internal Contents =
        | Guide of guide: string * rank: int option * ps: Map<string, Tensor> * losses: float[] * stoppedEarly: bool * options: FitOptions option
        /// The sampler's run; its Sites are the model's, filled in by the loader.
        | Samples of McmcResult

    /// Raises the InvalidDataException of a malformed or mismatched file.
    let internal bad (path: string) (what: string) : 'a =
        raise (InvalidDataException(sprintf "%s is not a FunctionalBayes file of the expected kind, or not for this model: %s." path what))

    /// Reads the JSON files this module writes; every malformed part is an InvalidDataException naming the file.
    type private Reader(path: string) =
        member _.Bad(what: string) : 'a = bad path what
        member r.Field (name: string) (n: JsonNode | null) : JsonNode =
            match n with
            | null -> r.Bad "missing node"
            | n ->
                match n.[name] with
                | null -> r.Bad (sprintf "no '%s'" name)
                | v -> v
        member r.Array (name: string) (n: JsonNode) (read: JsonNode -> 'a) : 'a[] =
            (r.Field name n).AsArray() |> Seq.map (fun x -> match x with null -> r.Bad (sprintf "a null in '%s'" name) | x -> read x) |> Seq.toArray
        member r.Int (name: string) (n: JsonNode) = (r.Field name n).GetValue<int>()
        member r.Float (name: string) (n: JsonNode) = (r.Field name n).GetValue<float>()
        member r.String (name: string) (n: JsonNode) = (r.Field name n).GetValue<string>()
        member r.Floats (name: string) (n: JsonNode) = r.Array name n (fun x -> x.GetValue<float>())
        member r.Ints (name: string) (n: JsonNode) = r.Array name n (fun x -> x.GetValue<int>())
        member r.Tensor(o: JsonNode) : Tensor =
            let shape = r.Ints Keys.Shape o
            let data = r.Floats Keys.Values o
            if shape |> Array.exists (fun d -> d < 0) || Shape.size shape <> data.Length then
                r.Bad (sprintf "a tensor of shape %s holds %d values" (Shape.format shape) data.Length)
            let t = Tensor.create shape data
            match r.String Keys.Dtype o with
            | "float64" -> t
            | "float32" -> Tensor.toFloat32 t
            | "int32" -> Tensor.cast Int32 t
            | "bool" -> Tensor.cast Bool t
            | other -> r.Bad (sprintf "a tensor of unknown dtype '%s'" other)
        member r.Tensors(o: JsonNode) : Map<string, Tensor> =
            o.AsObject() |> Seq.map (fun kv -> kv.Key, r.Tensor (match kv.Value with null -> r.Bad (sprintf "the tensor '%s' is null" kv.Key) | v -> v)) |> Map.ofSeq
        member r.Root(format: string) : JsonNode =
            let text = File.ReadAllText path
            if String.IsNullOrWhiteSpace text then r.Bad "the file is empty"
            match JsonNode.Parse text with
            | null -> r.Bad "the file holds no JSON object"
            | root ->
                match r.String Keys.Format root with
                | f when f = format -> root
                | f -> r.Bad (sprintf "its format is '%s', not %s" f format)
        member r.Sites(n: JsonNode) : SiteSignature[] =
            n.AsArray()
            |> Seq.map (fun s ->
                match s with
                | null -> r.Bad "a null site in the signature"
                | s ->
                    { Name = r.String Keys.Name s; Kind = r.String Keys.Kind s; Shape = r.Ints Keys.Shape s; Support = r.String Keys.Support s
                      Dtype = r.String Keys.Dtype s; Offset = r.Int Keys.Offset s; Length = r.Int Keys.Length s })
            |> Seq.toArray
        member r.Signature(root: JsonNode) : ModelSignature =
            let sg = r.Field Keys.Signature root
            let opt (name: string) (f: JsonNode -> 'a) : 'a option = match sg.[name] with null -> None | n -> Some (f n)
            { Latents = opt Keys.Latents r.Sites
              Observed = opt Keys.Observed r.Sites
              Data = opt Keys.Data (fun _ -> r.Array Keys.Data sg (fun d ->
                { Key = r.String Keys.Key d; Shape = r.Ints Keys.Shape d; Dtype = r.String Keys.Dtype d
                  Levels = match d.[Keys.Levels] with null -> None | _ -> Some (r.Array Keys.Levels d (fun l -> l.GetValue<string>())) })) }

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

    let private earlyStoppingNode (es: EarlyStopping) : JsonNode =
        JsonArray(JsonValue.Create es.Window, num es.RelTol, JsonValue.Create es.Patience)

    let private earlyStoppingOf (r: Reader) (n: JsonNode) : EarlyStopping =
        let a = n.AsArray()
        let at (i: int) : JsonNode = match a.[i] with null -> r.Bad "a null early-stopping setting" | v -> v
        { Window = (at 0).GetValue<int>(); RelTol = (at 1).GetValue<float>(); Patience = (at 2).GetValue<int>() }

    // the tags of the settings' unions: written by these functions, read by comparing with them
    let private scheduleTag (s: LrSchedule) =
        match s with
        | LrSchedule.Cosine -> "cosine"
        | LrSchedule.WarmupCosine -> "warmupCosine"
        | LrSchedule.Constant -> "constant"

    let private gradientTag (g: McmcGradient) =
        match g with
        | McmcGradient.Auto -> "auto"
        | McmcGradient.Tape -> "tape"

    let private adaptationTag (a: MetricAdaptation) =
        match a with
        | MetricAdaptation.Stan -> "stan"
        | MetricAdaptation.Dense -> "dense"
        | MetricAdaptation.FisherDiagonal -> "fisherDiagonal"
        | MetricAdaptation.FisherLowRank _ -> "fisherLowRank"

    let private fitOptionsNode (o: FitOptions) : JsonNode =
        let j = JsonObject()
        let guide, rank = autoKindName o.AutoGuide
        j.[Keys.OptAutoGuide] <- JsonValue.Create guide
        match rank with Some k -> j.[Keys.Rank] <- JsonValue.Create k | None -> ()
        j.[Keys.OptLearningRate] <- num o.LearningRate
        j.[Keys.OptSchedule] <- JsonValue.Create (scheduleTag o.Schedule)
        match o.Optimizer with Some opt -> j.[Keys.OptOptimizer] <- optimizerNode opt | None -> ()
        j.[Keys.OptParticles] <- JsonValue.Create o.Particles
        j.[Keys.OptSeed] <- JsonValue.Create o.Seed
        j.[Keys.OptInit] <- initNode o.Init
        match o.ClipNorm with Some c -> j.[Keys.OptClipNorm] <- num c | None -> ()
        let run = JsonObject()
        match o.Run.Steps with Some s -> run.[Keys.OptSteps] <- JsonValue.Create s | None -> ()
        match o.Run.Epochs with Some e -> run.[Keys.Epochs] <- JsonValue.Create e | None -> ()
        match o.Run.BatchSize with Some b -> run.[Keys.BatchSize] <- JsonValue.Create b | None -> ()
        run.[Keys.Shuffle] <- JsonValue.Create o.Run.Shuffle
        match o.Run.EarlyStopping with
        | Some es -> run.[Keys.EarlyStopping] <- earlyStoppingNode es
        | None -> ()
        j.[Keys.OptRun] <- run
        j :> JsonNode

    /// The settings a file holds (a user guide is no setting: Fit.loadWithGuide takes it).
    let private fitOptionsOf (r: Reader) (j: JsonNode) : FitOptions =
        let intOf (name: string) (n: JsonNode) = (r.Field name n).GetValue<int>()
        let run = r.Field Keys.OptRun j
        { AutoGuide = (let name = (r.Field Keys.OptAutoGuide j).GetValue<string>() in match autoKindOf name (optional j.[Keys.Rank] (fun n -> n.GetValue<int>())) with Some k -> k | None -> r.Bad (sprintf "unknown autoguide '%s'" name))
          LearningRate = (r.Field Keys.OptLearningRate j).GetValue<float>()
          Schedule =
            let tag = (r.Field Keys.OptSchedule j).GetValue<string>()
            match UnionCases.nullary<LrSchedule> () |> Array.tryFind (fun c -> scheduleTag c = tag) with
            | Some c -> c
            | None -> r.Bad (sprintf "unknown learning-rate schedule '%s'" tag)
          Optimizer = optional j.[Keys.OptOptimizer] (optimizerOf r)
          Particles = intOf Keys.OptParticles j
          Seed = (r.Field Keys.OptSeed j).GetValue<uint64>()
          Init = initOf r (r.Field Keys.OptInit j)
          ClipNorm = optional j.[Keys.OptClipNorm] (fun n -> n.GetValue<float>())
          Run =
            { Steps = optional run.[Keys.OptSteps] (fun n -> n.GetValue<int>())
              Epochs = optional run.[Keys.Epochs] (fun n -> n.GetValue<int>())
              BatchSize = optional run.[Keys.BatchSize] (fun n -> n.GetValue<int>())
              Shuffle = (r.Field Keys.Shuffle run).GetValue<bool>()
              EarlyStopping = optional run.[Keys.EarlyStopping] (earlyStoppingOf r) } }

    let private mcmcOptionsNode (o: McmcOptions) : JsonNode =
        let j = JsonObject()
        j.[Keys.OptChains] <- JsonValue.Create o.Chains
        j.[Keys.OptWarmup] <- JsonValue.Create o.Warmup
        j.[Keys.OptSamples] <- JsonValue.Create o.Samples
        j.[Keys.OptThin] <- JsonValue.Create o.Thin
        j.[Keys.OptSeed] <- JsonValue.Create o.Seed
        j.[Keys.OptTargetAccept] <- num o.TargetAccept
        j.[Keys.OptMaxTreeDepth] <- JsonValue.Create o.MaxTreeDepth
        j.[Keys.OptMaxDeltaH] <- num o.MaxDeltaH
        j.[Keys.OptMetricAdaptation] <-
            (let a = JsonObject()
             a.[Keys.Kind] <- JsonValue.Create (adaptationTag o.Adaptation)
             match o.Adaptation with
             | MetricAdaptation.Stan | MetricAdaptation.Dense | MetricAdaptation.FisherDiagonal -> ()
             | MetricAdaptation.FisherLowRank s ->
                a.[Keys.OptGamma] <- num s.Gamma
                a.[Keys.OptCutoff] <- num s.Cutoff
             a :> JsonNode)
        j.[Keys.OptFindInitialStepSize] <- JsonValue.Create o.FindInitialStepSize
        j.[Keys.OptInitialStepSize] <- num o.InitialStepSize
        j.[Keys.OptInit] <- initNode o.Init
        j.[Keys.OptParallel] <- JsonValue.Create o.Parallel
        j.[Keys.OptGradient] <- JsonValue.Create (gradientTag o.Gradient)
        j :> JsonNode

    let private mcmcOptionsOf (r: Reader) (j: JsonNode) : McmcOptions =
        let get (name: string) = r.Field name j
        { Chains = (get Keys.OptChains).GetValue<int>(); Warmup = (get Keys.OptWarmup).GetValue<int>(); Samples = (get Keys.OptSamples).GetValue<int>()
          Thin = (get Keys.OptThin).GetValue<int>(); Seed = (get Keys.OptSeed).GetValue<uint64>(); TargetAccept = (get Keys.OptTargetAccept).GetValue<float>()
          MaxTreeDepth = (get Keys.OptMaxTreeDepth).GetValue<int>(); MaxDeltaH = (get Keys.OptMaxDeltaH).GetValue<float>()
          Adaptation =
            match j.[Keys.OptMetricAdaptation] with
            // files written before the adapters had a dense flag
            | null -> if (get Keys.OptDenseMetric).GetValue<bool>() then MetricAdaptation.Dense else MetricAdaptation.Stan
            | a ->
                let tag = (r.Field Keys.Kind a).GetValue<string>()
                match [ MetricAdaptation.Stan; MetricAdaptation.Dense; MetricAdaptation.FisherDiagonal ] |> List.tryFind (fun c -> adaptationTag c = tag) with
                | Some c -> c
                | None when tag = adaptationTag (MetricAdaptation.FisherLowRank LowRankSettings.Default) ->
                    MetricAdaptation.FisherLowRank { Gamma = (r.Field Keys.OptGamma a).GetValue<float>(); Cutoff = (r.Field Keys.OptCutoff a).GetValue<float>() }
                | None -> r.Bad (sprintf "unknown metric adaptation '%s'" tag)
          FindInitialStepSize = (get Keys.OptFindInitialStepSize).GetValue<bool>()
          InitialStepSize = (get Keys.OptInitialStepSize).GetValue<float>(); Init = initOf r (get Keys.OptInit); Parallel = (get Keys.OptParallel).GetValue<bool>()
          Gradient =
            let tag = (get Keys.OptGradient).GetValue<string>()
            match UnionCases.nullary<McmcGradient> () |> Array.tryFind (fun c -> gradientTag c = tag) with
            | Some c -> c
            | None -> r.Bad (sprintf "unknown gradient '%s'" tag) }

    /// Writes a posterior with its model signature (p.Signature: the model on the data it was fitted to,
    /// with any vocabularies of categorical keys): a guide's parameters, kind and loss history, or a sampler's draws,
    /// deterministic sites, unconstrained positions and statistics per chain.
    let save (path: string) (p: Posterior<'T>) =
        let root = JsonObject()
        root.[Keys.Format] <- JsonValue.Create Keys.PosteriorFormat
        root.[Keys.Signature] <- signatureNode p.Signature
        match p.Source with
        | PosteriorSource.Guide g ->
            root.[Keys.Kind] <- JsonValue.Create Keys.KindGuide
            let origin, rank =
                match g.Guide.Origin with
                | GuideOrigin.Auto k -> autoKindName k
                | GuideOrigin.Laplace -> "AutoLaplaceApproximation", None
                | GuideOrigin.User -> "user", None
            root.[Keys.Guide] <- JsonValue.Create origin
            match rank with Some r -> root.[Keys.Rank] <- JsonValue.Create r | None -> ()
            root.[Keys.Params] <- tensorsNode g.Params
            root.[Keys.Losses] <- floatsNode g.Losses
            root.[Keys.StoppedEarly] <- JsonValue.Create g.StoppedEarly
            match g.Options with Some o -> root.[Keys.Options] <- fitOptionsNode o | None -> ()
        | PosteriorSource.Samples r ->
            root.[Keys.Kind] <- JsonValue.Create Keys.KindSamples
            root.[Keys.Draws] <- tensorsNode r.Draws
            root.[Keys.Deterministic] <- tensorsNode r.Deterministic
            root.[Keys.Dim] <- JsonValue.Create r.Flat.Dim
            root.[Keys.GradientKind] <- GradientKind.toJson r.GradientKind
            match r.Options with Some o -> root.[Keys.Options] <- mcmcOptionsNode o | None -> ()
            root.[Keys.MaxTreeDepth] <- JsonValue.Create r.MaxTreeDepth
            root.[Keys.TargetAccept] <- JsonValue.Create r.TargetAccept
            root.[Keys.Seconds] <- JsonValue.Create r.Seconds
            let chains = JsonArray()
            for k in 0 .. r.Chains - 1 do
                let s = r.Flat.Stats.[k]
                let c = JsonObject()
                c.[Keys.Positions] <- floatsNode r.Flat.Positions.[k]
                c.[Keys.StepSize] <- floatsNode s.StepSize
                c.[Keys.TreeDepth] <- intsNode s.TreeDepth
                c.[Keys.NumLeapfrog] <- intsNode s.NumLeapfrog
                c.[Keys.Divergent] <- numbersNode s.Divergent (fun v -> JsonValue.Create v)
                c.[Keys.Energy] <- floatsNode s.Energy
                c.[Keys.AcceptStat] <- floatsNode s.AcceptStat
                c.[Keys.Lp] <- floatsNode s.Lp
                c.[Keys.AdaptedStepSize] <- JsonValue.Create s.AdaptedStepSize
                match s.Metric with
                | DiagonalMetric v -> c.[Keys.MetricDiagonal] <- floatsNode v
                | DenseMetric (a, _) ->
                    c.[Keys.MetricDense] <- numbersNode [ for i in 0 .. Array2D.length1 a - 1 -> floatsNode [| for j in 0 .. Array2D.length2 a - 1 -> a.[i, j] |] ] id
                | LowRankMetric (sc, u, lam) ->
                    let o = JsonObject()
                    o.["scale"] <- floatsNode sc
                    o.["vectors"] <- floatsNode u
                    o.["values"] <- floatsNode lam
                    c.[Keys.MetricLowRank] <- o
                c.[Keys.WarmupDivergences] <- JsonValue.Create s.WarmupDivergences
                c.[Keys.WarmupSeconds] <- JsonValue.Create s.WarmupSeconds
                c.[Keys.SamplingSeconds] <- JsonValue.Create s.SamplingSeconds
                chains.Add(c :> JsonNode)
            root.[Keys.Chains] <- chains
        write path root

    /// Runs a read, turning what the JSON reader throws on a malformed file into an InvalidDataException
    /// that names the file.
    let private guarded (path: string) (read: unit -> 'a) : 'a =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "no FunctionalBayes file at %s." path, path))
        try read ()
        with
        | :? InvalidDataException -> reraise ()
        | :? JsonException as e -> bad path (sprintf "malformed or truncated JSON (%s)" e.Message)
        | :? InvalidOperationException as e -> bad path (sprintf "a value of the wrong type (%s)" e.Message)
        | :? FormatException as e -> bad path (sprintf "a value of the wrong type (%s)" e.Message)
        | :? OverflowException as e -> bad path (sprintf "a number out of range (%s)" e.Message)

    /// Reads named tensors written by saveParams.
    let loadParams (path: string) : Map<string, Tensor> =
        guarded path (fun () ->
            let r = Reader path
            r.Tensors (r.Field Keys.Params (r.Root Keys.ParamsFormat)))

    /// Reads a posterior file: its model signature and contents (not yet bound to a model).
    let internal read (path: string) : ModelSignature * Contents =
        guarded path (fun () ->
            let r = Reader path
            let root = r.Root Keys.PosteriorFormat
            let signature = r.Signature root
            match r.String Keys.Kind root with
            | Keys.KindGuide ->
                let rank = match root.[Keys.Rank] with null -> None | n -> Some (n.GetValue<int>())
                signature,
                Contents.Guide (r.String Keys.Guide root, rank, r.Tensors (r.Field Keys.Params root), r.Floats Keys.Losses root,
                                (r.Field Keys.StoppedEarly root).GetValue<bool>(), optional root.[Keys.Options] (fitOptionsOf r))
            | Keys.KindSamples ->
                let stats, positions =
                    (r.Field Keys.Chains root).AsArray()
                    |> Seq.map (fun c ->
                        let c = match c with null -> r.Bad "a null chain" | c -> c
                        let metric =
                            match c.[Keys.MetricDiagonal], c.[Keys.MetricLowRank] with
                            | null, null ->
                                let rows = r.Array Keys.MetricDense c (fun row -> row.AsArray() |> Seq.map (fun x -> match x with null -> r.Bad "a null number" | x -> x.GetValue<float>()) |> Seq.toArray)
                                if rows |> Array.exists (fun row -> row.Length <> rows.Length) then r.Bad "a dense metric that is not square"
                                Metric.dense (Array2D.init rows.Length rows.Length (fun i j -> rows.[i].[j]))
                            | null, lr -> let lr = nonNull lr in Metric.lowRank (r.Floats "scale" lr) (r.Floats "vectors" lr) (r.Floats "values" lr)
                            | _ -> Metric.diagonal (r.Floats Keys.MetricDiagonal c)
                        { StepSize = r.Floats Keys.StepSize c; TreeDepth = r.Ints Keys.TreeDepth c
                          NumLeapfrog = r.Ints Keys.NumLeapfrog c; Divergent = r.Array Keys.Divergent c (fun x -> x.GetValue<bool>())
                          Energy = r.Floats Keys.Energy c; AcceptStat = r.Floats Keys.AcceptStat c; Lp = r.Floats Keys.Lp c
                          AdaptedStepSize = r.Float Keys.AdaptedStepSize c; Metric = metric
                          WarmupDivergences = r.Int Keys.WarmupDivergences c
                          WarmupSeconds = r.Float Keys.WarmupSeconds c; SamplingSeconds = r.Float Keys.SamplingSeconds c },
                        r.Floats Keys.Positions c)
                    |> Seq.toArray
                    |> Array.unzip
                signature,
                Contents.Samples
                    { Sites = [||]; Draws = r.Tensors (r.Field Keys.Draws root); Deterministic = r.Tensors (r.Field Keys.Deterministic root)
                      Flat = { Dim = r.Int Keys.Dim root; Positions = positions; Stats = stats }
                      GradientKind = (match GradientKind.ofJson (r.Field Keys.GradientKind root) with Ok k -> k | Error why -> r.Bad why); MaxTreeDepth = r.Int Keys.MaxTreeDepth root
                      TargetAccept = r.Float Keys.TargetAccept root; Seconds = r.Float Keys.Seconds root
                      Options = optional root.[Keys.Options] (mcmcOptionsOf r) }
            | other -> r.Bad (sprintf "unknown kind '%s'" other))

    // ---- AEVB files ---------------------------------------------------------------------------

    let private aevbOptionsNode (o: AevbRunOptions) : JsonNode =
        let j = JsonObject()
        j.[Keys.Epochs] <- JsonValue.Create o.Epochs
        j.[Keys.BatchSize] <- JsonValue.Create o.BatchSize
        j.[Keys.Shuffle] <- JsonValue.Create o.Shuffle
        match o.EarlyStopping with Some es -> j.[Keys.EarlyStopping] <- earlyStoppingNode es | None -> ()
        j :> JsonNode

    let private aevbOptionsOf (r: Reader) (j: JsonNode) : AevbRunOptions =
        { Epochs = r.Int Keys.Epochs j; BatchSize = r.Int Keys.BatchSize j; Shuffle = (r.Field Keys.Shuffle j).GetValue<bool>()
          EarlyStopping = optional j.[Keys.EarlyStopping] (earlyStoppingOf r) }

    /// Writes an AEVB engine's trained networks (named tensors) with the engine's signature and run settings.
    let saveAevb (path: string) (signature: AevbSignature) (tensors: Map<string, Tensor>) =
        let root = JsonObject()
        root.[Keys.Format] <- JsonValue.Create Keys.AevbFormat
        let e = JsonObject()
        e.[Keys.LatentDim] <- JsonValue.Create signature.LatentDim
        e.[Keys.DataDim] <- JsonValue.Create signature.DataDim
        e.[Keys.Variational] <- JsonValue.Create signature.Variational
        e.[Keys.Observation] <- JsonValue.Create signature.Observation
        e.[Keys.Prior] <- JsonValue.Create signature.Prior
        e.[Keys.Dtype] <- JsonValue.Create signature.Dtype
        let ps = JsonObject()
        for name, shape in signature.Parameters do ps.[name] <- intsNode shape
        e.[Keys.Parameters] <- ps
        root.[Keys.Engine] <- e
        match signature.Options with Some o -> root.[Keys.Options] <- aevbOptionsNode o | None -> ()
        root.[Keys.Params] <- tensorsNode tensors
        write path root

    /// Reads an AEVB file written by saveAevb: the engine's signature and the networks' tensors.
    let readAevb (path: string) : AevbSignature * Map<string, Tensor> =
        guarded path (fun () ->
            let r = Reader path
            let root = r.Root Keys.AevbFormat
            let e = r.Field Keys.Engine root
            let psNode = r.Field Keys.Parameters e
            let ps = psNode.AsObject() |> Seq.map (fun kv -> kv.Key, r.Ints kv.Key psNode) |> Seq.toArray
            { LatentDim = r.Int Keys.LatentDim e; DataDim = r.Int Keys.DataDim e
              Variational = r.String Keys.Variational e; Observation = r.String Keys.Observation e
              Prior = r.String Keys.Prior e; Dtype = r.String Keys.Dtype e; Parameters = ps
              Options = optional root.[Keys.Options] (aevbOptionsOf r) },
            r.Tensors (r.Field Keys.Params root))

    /// The first difference between an engine's AEVB signature and a file's (the run options aside), as a
    /// sentence: "the decoder's family is 'bernoulli' in the engine and 'normal' in the file".
    let aevbDifference (inEngine: AevbSignature) (inFile: AevbSignature) : string option =
        let scalar (what: string) (a: 'a) (b: 'a) = if a = b then None else Some (sprintf "%s is %O in the engine and %O in the file" what a b)
        let fromEngine = Map.ofArray inEngine.Parameters
        let fromFile = Map.ofArray inFile.Parameters
        let parameters () =
            inEngine.Parameters
            |> Array.tryPick (fun (k, shape) ->
                match fromFile.TryFind k with
                | None -> Some (sprintf "the engine has the parameter '%s' (shape %s) but the file has none; it was saved from another network" k (Shape.format shape))
                | Some f when f <> shape -> Some (sprintf "the parameter '%s' has shape %s in the engine and %s in the file (another network size)" k (Shape.format shape) (Shape.format f))
                | Some _ -> None)
            |> Option.orElse (
                inFile.Parameters |> Array.tryFind (fun (k, _) -> not (fromEngine.ContainsKey k))
                |> Option.map (fun (k, shape) -> sprintf "the file has the parameter '%s' (shape %s) but the engine has none" k (Shape.format shape)))
        scalar "the latent size" inEngine.LatentDim inFile.LatentDim
        |> Option.orElse (scalar "the data size" inEngine.DataDim inFile.DataDim)
        |> Option.orElse (scalar "the encoder's (variational) family" (sprintf "'%s'" inEngine.Variational) (sprintf "'%s'" inFile.Variational))
        |> Option.orElse (scalar "the decoder's (observation) family" (sprintf "'%s'" inEngine.Observation) (sprintf "'%s'" inFile.Observation))
        |> Option.orElse (scalar "the prior" inEngine.Prior inFile.Prior)
        |> Option.orElse (scalar "the latents' and networks' dtype" inEngine.Dtype inFile.Dtype)
        |> Option.orElse (parameters ())

    /// Raises InvalidDataException naming the first difference between the model's signature and the file's.
    let check (path: string) (inModel: ModelSignature) (inFile: ModelSignature) : unit =
        match ModelSignature.firstDifference inModel inFile with
        | Some d -> raise (InvalidDataException(sprintf "%s was written for another model: %s." path d))
        | None -> ()
