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
      Output: string }

/// A model the silos can run by name: its fit, with its registered settings.
[<NoEquality; NoComparison>]
type RegisteredModel = internal { Run: FitCall -> string }

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
    /// its posterior file is Fit.saveWithData's. Chains checkpoint per chain and resume from there.
    let mcmc (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (opts: McmcOptions) (r: ModelRegistry) : ModelRegistry =
        let run (c: FitCall) =
            let o = FitOptionsText.mcmc c.Options { opts with Seed = c.Seed }
            Mcmc.validate o
            let chainFiles = Array.init o.Chains (Checkpoint.chainPath c.Checkpoint.Path)
            let ctx = { c.Context with Checkpoint = Some c.Checkpoint }
            let resumed = chainFiles |> Array.exists File.Exists
            let p =
                if resumed then Fit.mcmcResume ctx o modelFn c.Data c.Checkpoint.Path
                else Fit.mcmcIn ctx o modelFn c.Data
            Fit.saveWithData c.Output c.Data p
            for f in chainFiles do (if File.Exists f then File.Delete f)
            if resumed then "resumed from its checkpoints" else ""
        add name { Run = run } r

    /// A model fitted by SVI (Fit.vi) with these settings (a fit's seed and Options override them);
    /// its posterior file is Fit.saveWithData's. The run checkpoints and resumes from there.
    let vi (name: string) (modelFn: Map<string, Tensor> -> Model<'T>) (opts: FitOptions) (r: ModelRegistry) : ModelRegistry =
        let run (c: FitCall) =
            let o = FitOptionsText.vi c.Options { opts with Seed = c.Seed }
            Fit.validate o
            let ctx = { c.Context with Checkpoint = Some c.Checkpoint }
            let resumed = File.Exists c.Checkpoint.Path
            let p, _ =
                if resumed then Fit.viResume ctx o modelFn c.Data c.Checkpoint.Path
                else Fit.viRunIn ctx o modelFn c.Data
            Fit.saveWithData c.Output c.Data p
            if File.Exists c.Checkpoint.Path then File.Delete c.Checkpoint.Path
            if resumed then "resumed from its checkpoint" else ""
        add name { Run = run } r

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

    /// The model a fit names, or an error naming the registered ones.
    let internal find (r: ModelRegistry) (name: string) : RegisteredModel =
        match r.Models.TryFind name with
        | Some m -> m
        | None -> invalidArg "Model" (sprintf "FitSpec.Model: no model '%s' in the registry (models: %s)." name (String.Join(", ", r.ModelNames)))

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

/// The silo's fit runner: resolves a fit's model and data in the registry, runs it (resuming from its
/// checkpoint in the shared folder), and writes its posterior file once: to a file of its own, then moved to
/// the result's name only if no result is there (an atomic no-overwrite rename), so a fit run twice (its silo
/// was thought dead, say) still has one result.
type FitRunner(registry: ModelRegistry, settings: FitRunnerSettings) =

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
                  Output = tmp }
            try
                let note = model.Run call
                try
                    File.Move(tmp, final, false)
                    note
                with :? IOException when File.Exists final ->
                    "another run wrote its result first; this run's is discarded"
            finally
                if File.Exists tmp then File.Delete tmp

    interface IFitRunner with
        member r.Run(fit, folder, onProgress, cancellation) = r.Run(fit, folder, onProgress, cancellation)

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
