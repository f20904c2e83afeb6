namespace FunctionalBayes.Cluster

open System
open System.IO
open System.Threading
open FunctionalBayes
open FunctionalBayes.Tensors

/// What a registered model is asked to do: fit these data with these settings, checkpointing at
/// `Checkpoint`, and write its posterior file at `Output`.
[<NoEquality; NoComparison>]
type internal FitCall =
    { FitId: string
      Data: Map<string, Tensor>
      Options: string
      Seed: uint64
      Context: RunContext
      Checkpoint: CheckpointPolicy
      /// Resume from the checkpoint (the runner saw one).
      Resume: bool
      Output: string }

/// Per-shard minibatches of data-parallel SVI: the one place their rule lives. Each step every shard draws its
/// own batch of its rows from the step's key and the shard's index alone (so the draw does not depend on which
/// silo computes it, or when), and its likelihood is scaled by shard rows / batch rows: the sum over shards is
/// an unbiased estimate of the full-data ELBO and its gradient.
[<RequireQualifiedAccess>]
module ShardBatch =

    // Separates the batch draws' keys from the ELBO's (which uses the step key itself).
    let private tag = 0x62617463 // "batc"

    /// Refuses a batch size below 1 (before any work).
    let checkSize (batch: int) =
        if batch < 1 then
            raise (ArgumentOutOfRangeException("batchSize", batch, sprintf "Data-parallel SVI: the batch size must be at least 1 row per shard, got %d." batch))

    /// Refuses a batch size larger than shard `shard`'s rows.
    let checkShard (shard: int) (rows: int) (batch: int) =
        checkSize batch
        if batch > rows then
            raise (ArgumentOutOfRangeException("batchSize", batch, sprintf "Data-parallel SVI: the batch size %d is larger than shard %d's %d rows; give at most the smallest shard's rows." batch shard rows))

    /// The rows shard `shard` uses in the step with key `stepKey`: `batch` of its `rows`, without replacement.
    let indices (stepKey: RngKey) (shard: int) (rows: int) (batch: int) : Tensor =
        checkShard shard rows batch
        Rng.permutation (Rng.foldIn (Rng.foldIn stepKey tag) shard) rows |> Tensor.narrow 0 0 batch

/// One shard's part of a data-parallel SVI step: which shard (0 carries the prior and guide terms) and its
/// batch size (None: every row).
[<Struct>]
type internal ShardStep = { Shard: int; BatchSize: int option }

/// The pieces of data-parallel SVI for one fit (model, settings, seed): every step each shard uses all its
/// rows, or a minibatch of them (ShardBatch); shard 0 carries the prior and guide terms, the others their
/// likelihood only.
[<NoEquality; NoComparison>]
type internal SviParts =
    { /// The first state, from (a shard's) data: parameter names, shapes and the optimizer's start.
      Init: Map<string, Tensor> -> SviState
      /// A shard's part of the loss and its gradient: (shard rows, then the shard's step) at a state with a step key.
      Gradient: Map<string, Tensor> -> (ShardStep -> SviState -> RngKey -> float * Tensor[])
      /// The optimizer update from the summed loss and gradient (the guide built on these rows).
      Advance: Map<string, Tensor> -> (SviState -> RngKey -> float * Tensor[] -> SviState)
      /// The same fit in one process on all rows (the reference).
      Serial: Map<string, Tensor> -> SviState
      Steps: int }

/// A model the silos can run by name: its fit, with its registered settings.
[<NoEquality; NoComparison>]
type RegisteredModel = internal { Run: FitCall -> string; Svi: (string -> uint64 -> SviParts) option }

/// Models and data sets by name: a job names them, since functions and tensors do not travel to silos.
/// Build one in the assembly that holds the models and give it to every silo (ClusterSilo) and to serial runs.
[<NoEquality; NoComparison>]
type ModelRegistry =
    internal
        { Models: Map<string, RegisteredModel>
          DataSets: Map<string, string -> Map<string, Tensor>> }

    /// The names of the registered models.
    member r.ModelNames: string[] = r.Models |> Map.keys |> Seq.toArray

    /// The names of the registered data sets.
    member r.DataSetNames: string[] = r.DataSets |> Map.keys |> Seq.toArray

/// The settings a fit's Options string overrides ("key=value;key=value"): the one place their keys live.
[<RequireQualifiedAccess>]
module FitOptionsText =

    let private parse (who: string) (allowed: string list) (text: string) : (string * string) list =
        if String.IsNullOrWhiteSpace text then []
        else
            text.Split(';', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
            |> Array.toList
            |> List.map (fun kv ->
                match kv.Split('=', 2, StringSplitOptions.TrimEntries) with
                | [| k; v |] when List.contains (k.ToLowerInvariant()) allowed -> k.ToLowerInvariant(), v
                | [| k; _ |] -> invalidArg "Options" (sprintf "%s: unknown setting '%s' in \"%s\"; the settings are %s." who k text (String.Join(", ", allowed)))
                | _ -> invalidArg "Options" (sprintf "%s: '%s' in \"%s\" is not key=value." who kv text))

    let private int (who: string) (k: string) (v: string) =
        match Int32.TryParse(v, Globalization.NumberStyles.Integer, Globalization.CultureInfo.InvariantCulture) with
        | true, n -> n
        | _ -> invalidArg "Options" (sprintf "%s: setting '%s' must be an integer, got '%s'." who k v)

    let private float (who: string) (k: string) (v: string) =
        match Double.TryParse(v, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
        | true, x -> x
        | _ -> invalidArg "Options" (sprintf "%s: setting '%s' must be a number, got '%s'." who k v)

    /// NUTS settings: chains, warmup, samples, thin, targetaccept, maxtreedepth.
    let mcmc (text: string) (o: McmcOptions) : McmcOptions =
        let who = "FitSpec.Options (NUTS)"
        parse who [ "chains"; "warmup"; "samples"; "thin"; "targetaccept"; "maxtreedepth" ] text
        |> List.fold (fun (o: McmcOptions) (k, v) ->
            match k with
            | "chains" -> { o with Chains = int who k v }
            | "warmup" -> { o with Warmup = int who k v }
            | "samples" -> { o with Samples = int who k v }
            | "thin" -> { o with Thin = int who k v }
            | "targetaccept" -> { o with TargetAccept = float who k v }
            | _ -> { o with MaxTreeDepth = int who k v }) o

    /// SVI settings: steps, lr, particles, batch.
    let vi (text: string) (o: FitOptions) : FitOptions =
        let who = "FitSpec.Options (SVI)"
        parse who [ "steps"; "lr"; "particles"; "batch" ] text
        |> List.fold (fun (o: FitOptions) (k, v) ->
            match k with
            | "steps" -> { o with Run = { o.Run with Steps = Some (int who k v); Epochs = None } }
            | "lr" -> { o with LearningRate = float who k v }
            | "particles" -> { o with Particles = int who k v }
            | _ -> { o with Run = { o.Run with BatchSize = Some (int who k v) } }) o

/// Building a registry.
[<RequireQualifiedAccess>]
module ModelRegistry =

    /// No models, no data sets.
    let empty = { Models = Map.empty; DataSets = Map.empty }

    let private add (name: string) (m: RegisteredModel) (r: ModelRegistry) =
        if String.IsNullOrWhiteSpace name then invalidArg "name" "ModelRegistry: a model needs a name."
        if r.Models.ContainsKey name then invalidArg "name" (sprintf "ModelRegistry: a model named '%s' is registered already." name)
        { r with Models = r.Models.Add(name, m) }

    /// A model fitted by NUTS (Fit.mcmc) with these settings (a fit's seed and Options override them);
    /// its posterior file is Fit.save's (the signature records the data). Chains checkpoint per chain and resume from there.
    let mcmc (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (opts: McmcOptions) (r: ModelRegistry) : ModelRegistry =
        let run (c: FitCall) =
            let o = FitOptionsText.mcmc c.Options { opts with Seed = c.Seed }
            Mcmc.validate o
            let chainFiles = Array.init o.Chains (Checkpoint.chainPath c.Checkpoint.Path)
            let ctx = { c.Context with Checkpoint = Some c.Checkpoint }
            let resumed = c.Resume
            let p =
                if resumed then Fit.mcmcResume ctx o modelFn c.Data c.Checkpoint.Path
                else Fit.mcmcIn ctx o modelFn c.Data
            Fit.save c.Output p
            for f in chainFiles do (if File.Exists f then File.Delete f)
            if resumed then "resumed from its checkpoints" else ""
        add name { Run = run; Svi = None } r

    /// A model fitted by SVI with a user guide or the options' autoguide.
    let private viOf (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (user: Guide option) (opts: FitOptions) (r: ModelRegistry) : ModelRegistry =
        let run (c: FitCall) =
            let o = FitOptionsText.vi c.Options { opts with Seed = c.Seed }
            Fit.validate o
            let ctx = { c.Context with Checkpoint = Some c.Checkpoint }
            let resumed = c.Resume
            let p, _ =
                match user with
                | None -> if resumed then Fit.viResume ctx o modelFn c.Data c.Checkpoint.Path else Fit.viRunIn ctx o modelFn c.Data
                | Some g ->
                    if resumed then Fit.viResumeWithGuide ctx g o modelFn c.Data c.Checkpoint.Path
                    else Fit.viWithGuideIn ctx g o modelFn (BatchSource.ofData c.Data)
            Fit.save c.Output p
            if File.Exists c.Checkpoint.Path then File.Delete c.Checkpoint.Path
            if resumed then "resumed from its checkpoint" else ""
        let parts (text: string) (seed: uint64) : SviParts =
            let o = FitOptionsText.vi text { opts with Seed = seed }
            Fit.validate o
            let steps = defaultArg o.Run.Steps SviRunOptions.DefaultSteps
            let kGuide, kRun = Rng.split (Rng.key o.Seed)
            let schedule =
                match o.Schedule with
                | LrSchedule.Cosine -> Schedule.CosineDecay (o.LearningRate, steps, 0.0)
                | LrSchedule.WarmupCosine -> Schedule.OneCycle(o.LearningRate, steps)
                | LrSchedule.Constant -> Schedule.Constant o.LearningRate
            let config (data: Map<string, Tensor>) : SviConfig<'T> =
                { Model = modelFn
                  Guide = (match user with Some g -> g | None -> Guide.auto o.AutoGuide o.Init kGuide (modelFn data))
                  Optimizer = defaultArg o.Optimizer (Optimizer.AdamWith schedule)
                  Elbo = Elbo.Batched o.Particles
                  ClipNorm = o.ClipNorm }
            let kInit, _ = Rng.split kRun // as the run loop's SVI kernel
            { Init = fun data -> Svi.init (config data) kInit data
              Gradient = fun data ->
                let cfg = config data
                let rows = Data.rows data
                fun step st key ->
                    let batch =
                        match step.BatchSize with
                        | None -> data
                        | Some b -> Data.take (ShardBatch.indices key step.Shard rows b) data
                    // numObs = rows: the batched ELBO's N/B is rows / batch rows (1 on every row), the shard's scaled
                    // log-likelihood plus the prior and guide terms; numObs = 0 leaves the latter alone, taken off
                    // every shard but the first.
                    let l, g = Svi.lossAndGradient cfg rows batch st key
                    if step.Shard = 0 then l, g
                    else
                        let l0, g0 = Svi.lossAndGradient cfg 0 batch st key
                        l - l0, Array.map2 (-) g g0
              Advance = fun data -> let cfg = config data in fun st nextKey lg -> Svi.advance cfg st nextKey lg
              Serial = fun data ->
                  (Svi.runWith false (config data) kRun data { SviRunOptions.ForSteps steps with Shuffle = false }).State
              Steps = steps }
        add name { Run = run; Svi = Some parts } r

    /// A model fitted by SVI (Fit.vi) with these settings (a fit's seed and Options override them);
    /// its posterior file is Fit.save's (the signature records the data). The run checkpoints and resumes from there.
    let vi (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (opts: FitOptions) (r: ModelRegistry) : ModelRegistry =
        viOf name modelFn None opts r

    /// ModelRegistry.vi with a guide of your own (Fit.viWithGuide); read its posterior files with Fit.loadWithGuide.
    let viWithGuide (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (guide: Guide) (opts: FitOptions) (r: ModelRegistry) : ModelRegistry =
        viOf name modelFn (Some guide) opts r

    /// A data set by name: `load argument` gives the data of a fit whose Data is "name:argument" ("" for "name").
    /// It must give the same tensors for the same argument on every silo (read a file, or simulate from a seed).
    let data (name: string) (load: string -> Map<string, Tensor>) (r: ModelRegistry) : ModelRegistry =
        if String.IsNullOrWhiteSpace name || name.Contains ':' then invalidArg "name" (sprintf "ModelRegistry: a data set needs a name without ':', got '%s'." name)
        if name = "file" then invalidArg "name" "ModelRegistry: 'file' is taken (Data = \"file:PATH\" reads a tensor file)."
        if r.DataSets.ContainsKey name then invalidArg "name" (sprintf "ModelRegistry: a data set named '%s' is registered already." name)
        { r with DataSets = r.DataSets.Add(name, load) }

    /// The data a fit's Data names: "file:PATH" (a tensor file of Fit.saveParams) or a registered data set.
    let resolveData (r: ModelRegistry) (source: string) : Map<string, Tensor> =
        let name, arg =
            match source.IndexOf ':' with
            | -1 -> source, ""
            | i -> source.Substring(0, i), source.Substring(i + 1)
        if name = "file" then Fit.loadParams arg
        else
            match r.DataSets.TryFind name with
            | Some load -> load arg
            | None ->
                invalidArg "Data" (sprintf "FitSpec.Data: no data set '%s' in the registry (data sets: %s); or use \"file:PATH\"." name (String.Join(", ", r.DataSetNames)))

    /// The data-parallel SVI pieces of a registered SVI model, for these settings and seed.
    let internal sviParts (r: ModelRegistry) (name: string) (options: string) (seed: uint64) : SviParts =
        match r.Models.TryFind name with
        | Some { Svi = Some parts } -> parts options seed
        | Some _ -> invalidArg "Model" (sprintf "Data-parallel SVI: the model '%s' is not registered for SVI (ModelRegistry.vi)." name)
        | None -> invalidArg "Model" (sprintf "Data-parallel SVI: no model '%s' in the registry (models: %s)." name (String.Join(", ", r.ModelNames)))

    /// The model a fit names, or an error naming the registered ones.
    let internal find (r: ModelRegistry) (name: string) : RegisteredModel =
        match r.Models.TryFind name with
        | Some m -> m
        | None -> invalidArg "Model" (sprintf "FitSpec.Model: no model '%s' in the registry (models: %s)." name (String.Join(", ", r.ModelNames)))

/// Parameters as one flat array on the wire, in the state's order.
[<RequireQualifiedAccess>]
module internal Flat =

    let flatten (ts: Tensor[]) : float[] = ts |> Array.collect Tensor.toArray

    /// Tensors shaped as `like`, from a flat array of exactly their sizes.
    let unflatten (like: Tensor[]) (values: float[]) : Tensor[] =
        let total = like |> Array.sumBy (fun t -> Array.fold (*) 1 t.Shape)
        if values.Length <> total then
            invalidArg "Parameters" (sprintf "Data-parallel SVI: %d parameter values for a state of %d (another model or settings?)." values.Length total)
        let mutable at = 0
        like |> Array.map (fun t ->
            let n = Array.fold (*) 1 t.Shape
            let v = Tensor.create t.Shape values.[at .. at + n - 1]
            at <- at + n
            v)

/// Where a job's files live in its shared folder: results/{id}.posterior.json and checkpoints/{id}.
[<RequireQualifiedAccess>]
module JobFolder =

    /// The posterior file of a fit.
    let resultPath (folder: string) (fitId: string) = Path.Combine(folder, "results", fitId + ".posterior.json")

    /// The checkpoint path of a fit (MCMC adds ".chainK").
    let checkpointPath (folder: string) (fitId: string) = Path.Combine(folder, "checkpoints", fitId)

    /// Refuses an id that is not a plain file name (it names files in the shared folder).
    let checkId (fitId: string) =
        if String.IsNullOrWhiteSpace fitId || fitId.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || fitId.Contains '/' || fitId.StartsWith '.' then
            invalidArg "Id" (sprintf "FitSpec.Id: '%s' must be a plain file name (letters, digits, '-', '_'), unique in its job." fitId)

/// How a silo runs fits: checkpoints every CheckpointSeconds (and on cancellation).
type FitRunnerSettings =
    { CheckpointSeconds: float }

    /// A checkpoint every 2 seconds.
    static member Default = { CheckpointSeconds = 2.0 }

    /// These settings with a checkpoint every `seconds` (positive and finite).
    member s.WithCheckpointSeconds(seconds: float) =
        if not (seconds > 0.0 && Double.IsFinite seconds) then
            raise (ArgumentOutOfRangeException("CheckpointSeconds", seconds, "FitRunnerSettings: CheckpointSeconds must be positive and finite."))
        { s with CheckpointSeconds = seconds }

/// The silo's fit runner: resolves a fit's model and data in the registry, runs it (resuming from its
/// checkpoint in the shared folder), and writes its posterior file once: to a file of its own, then moved to
/// the result's name only if no result is there (an atomic no-overwrite rename), so a fit run twice (its silo
/// was thought dead, say) still has one result.
type FitRunner(registry: ModelRegistry, settings: FitRunnerSettings) =

    // Data-parallel SVI: a silo keeps each shard's rows and first state once read.
    let data = Collections.Concurrent.ConcurrentDictionary<string, Map<string, Tensor>>()
    let parts = Collections.Concurrent.ConcurrentDictionary<struct (string * string * uint64), SviParts>()
    let firsts = Collections.Concurrent.ConcurrentDictionary<struct (string * string * uint64 * string), SviState * (ShardStep -> SviState -> RngKey -> float * Tensor[])>()

    /// A runner with FitRunnerSettings.Default.
    new(registry: ModelRegistry) = FitRunner(registry, FitRunnerSettings.Default)

    /// Runs one fit in this process (what a silo does); returns a note.
    member _.Run(fit: FitSpec, folder: string, onProgress: Action<int, int>, cancellation: CancellationToken) : string =
        JobFolder.checkId fit.Id
        let final = JobFolder.resultPath folder fit.Id
        if File.Exists final then "its result was written already"
        else
            let model = ModelRegistry.find registry fit.Model
            let data = ModelRegistry.resolveData registry fit.Data
            Directory.CreateDirectory(Path.GetDirectoryName final |> nonNull) |> ignore
            Directory.CreateDirectory(Path.Combine(folder, "checkpoints")) |> ignore
            let tmp = sprintf "%s.%s.tmp" final (Guid.NewGuid().ToString "N")
            // Steps per chain, summed over chains (MCMC reports each chain; SVI has chain 0 only).
            let steps = Collections.Concurrent.ConcurrentDictionary<int, int * int>()
            let report (p: RunProgress) =
                steps.[p.Chain] <- (p.Step, p.TotalSteps)
                let d, t = steps.Values |> Seq.fold (fun (a, b) (s, n) -> a + s, b + n) (0, 0)
                onProgress.Invoke(d, t)
            let call =
                { FitId = fit.Id; Data = data; Options = fit.Options; Seed = fit.Seed
                  Context = { RunContext.Quiet with Cancellation = cancellation; OnProgress = Some report; ProgressEvery = 10 }
                  Checkpoint = { Path = JobFolder.checkpointPath folder fit.Id; EverySteps = None; EverySeconds = Some settings.CheckpointSeconds }
                  Resume = false
                  Output = tmp }
            let ckpt = call.Checkpoint.Path
            let hasCheckpoint () = File.Exists ckpt || Directory.GetFiles(nonNull (Path.GetDirectoryName ckpt), nonNull (Path.GetFileName ckpt) + ".chain*").Length > 0
            try
                let ran =
                    if hasCheckpoint () then
                        // Another run of this fit (one thought lost) may finish and remove the checkpoint meanwhile.
                        try Some (model.Run { call with Resume = true })
                        with :? FileNotFoundException | :? InvalidDataException ->
                            if File.Exists final then None else Some (model.Run call)
                    else Some (model.Run call)
                match ran with
                | None -> "another run wrote its result first"
                | Some note ->
                    try
                        File.Move(tmp, final, false)
                        note
                    with :? IOException when File.Exists final ->
                        "another run wrote its result first; this run's is discarded"
            finally
                if File.Exists tmp then File.Delete tmp

    /// A shard's part of a data-parallel SVI step (what a silo's ShardGrain computes).
    member _.Gradient(r: ShardRequest) : ShardGradient =
        let p = parts.GetOrAdd(struct (r.Model, r.Options, r.Seed), fun _ -> ModelRegistry.sviParts registry r.Model r.Options r.Seed)
        let rows = data.GetOrAdd(r.Data, ModelRegistry.resolveData registry)
        let first, gradient = firsts.GetOrAdd(struct (r.Model, r.Options, r.Seed, r.Data), fun _ -> p.Init rows, p.Gradient rows)
        let st = { first with Unconstrained = Flat.unflatten first.Unconstrained r.Parameters }
        let step = { Shard = r.Shard; BatchSize = (if r.BatchSize = 0 then None else Some r.BatchSize) }
        let loss, grads = gradient step st (RngKey(r.KeyK0, r.KeyK1))
        ShardGradient(loss, Flat.flatten grads)

    interface IFitRunner with
        member r.Run(fit, folder, onProgress, cancellation) = r.Run(fit, folder, onProgress, cancellation)

    interface IShardRunner with
        member r.Gradient request = r.Gradient request

/// Fits run here, one after another: the reference a cluster's results are compared with.
[<RequireQualifiedAccess>]
module Serial =

    /// Runs the fits in this process, in order, writing their posterior files under `folder` as a cluster
    /// does; returns the result paths.
    let run (registry: ModelRegistry) (folder: string) (fits: FitSpec seq) : string[] =
        let runner = FitRunner(registry)
        [| for f in fits do
               runner.Run(f, folder, Action<int, int>(fun _ _ -> ()), CancellationToken.None) |> ignore
               JobFolder.resultPath folder f.Id |]
