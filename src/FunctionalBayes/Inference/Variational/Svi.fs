namespace FunctionalBayes

open System
open System.Diagnostics
open System.Text.Json
open FunctionalBayes.Tensors

/// What SVI needs: the model as a function of (batched) data, a guide, an optimizer and an ELBO.
[<NoEquality; NoComparison>]
type SviConfig<'T> =
    { Model: Map<string, Tensor> -> Model<'T>
      Guide: Guide
      Optimizer: Optimizer
      Elbo: Elbo
      /// Clip gradients to this global norm before each update.
      ClipNorm: float option }

/// The immutable state of SVI: unconstrained parameters, optimizer state, step and key.
[<NoEquality; NoComparison>]
type SviState =
    { Names: string[]
      Constraints: Constraint[]
      /// Whether each parameter belongs to the guide (else to the model).
      InGuide: bool[]
      Unconstrained: Tensor[]
      Opt: OptState
      Step: int
      Key: RngKey
      /// The loss of the last step (NaN before the first).
      Loss: float }

    /// The parameters on their constrained sets, by name.
    member s.Params : Map<string, Tensor> =
        Array.init s.Names.Length (fun i -> s.Names.[i], Bijector.forward (Constraint.bijector s.Constraints.[i]) s.Unconstrained.[i] |> Tensor.detach)
        |> Map.ofArray

/// Raised when the loss stops being finite; carries the last state whose loss was finite.
type SviDivergedException(message: string, lastFinite: SviState) =
    inherit Exception(message)
    member _.LastFiniteState = lastFinite

/// How long to run and how to batch: the loop settings of every SVI run (Svi.run, and Fit.vi through
/// FitOptions.Run), plain data. Progress, cancellation and checkpoints are the RunContext's. Start from
/// SviRunOptions.Default; SviRunOptions.Validate holds every rule.
type SviRunOptions =
    { /// Steps to run; with neither Steps nor Epochs, SviRunOptions.DefaultSteps steps.
      Steps: int option
      /// Passes over the data (BatchSize rows per step); not together with Steps.
      Epochs: int option
      /// Rows per step; None uses all rows each step (then one step is one epoch).
      BatchSize: int option
      /// Shuffle rows each epoch (a permutation from the run's key).
      Shuffle: bool
      EarlyStopping: EarlyStopping option }

    /// The steps a run takes when neither Steps nor Epochs is given (BLayers' default).
    static member DefaultSteps = 1000

    /// No length set (SviRunOptions.DefaultSteps steps), all rows per step, shuffled.
    static member Default =
        { Steps = None; Epochs = None; BatchSize = None; Shuffle = true; EarlyStopping = None }
    /// A run of `steps` steps on all rows.
    static member ForSteps(steps: int) = { SviRunOptions.Default with Steps = Some steps }
    /// A run of `epochs` passes in batches of `batchSize` rows.
    static member ForEpochs(epochs: int, batchSize: int) = { SviRunOptions.Default with Epochs = Some epochs; BatchSize = Some batchSize }

    /// Checks the settings (the one place their rules live): raises ArgumentOutOfRangeException naming the
    /// setting for a count below 1 or a bad early-stopping rule, and ArgumentException for Steps with Epochs.
    static member Validate(o: SviRunOptions) =
        let atLeastOne (name: string) (v: int option) =
            match v with
            | Some n when n < 1 -> raise (ArgumentOutOfRangeException(name, n, sprintf "SVI: %s must be at least 1, got %d." name n))
            | _ -> ()
        atLeastOne "Steps" o.Steps
        atLeastOne "Epochs" o.Epochs
        atLeastOne "BatchSize" o.BatchSize
        match o.Steps, o.Epochs with
        | Some s, Some e -> invalidArg "Steps" (sprintf "SVI: a run has Steps (%d) or Epochs (%d), not both; set the other to None." s e)
        | _ -> ()
        match o.EarlyStopping with
        | Some es -> EarlyStopping.Validate(es, "SVI")
        | None -> ()

/// How SVI computed the loss and gradient for one batch size (inspectable in SviResult.Gradients).
[<RequireQualifiedAccess>]
type SviGradient =
    /// A compiled program (the guide's standard-normal draws and the batch are its inputs).
    | CompiledProgram of batchRows: int * instructions: int * compileMilliseconds: float
    /// The tape, and why not compiled (compilation off, a guide without location-scale Normal draws,
    /// subsampled plates, an op graph that depends on the parameters' values, ...).
    | OnTape of batchRows: int * reason: string

/// The result of a run.
[<NoEquality; NoComparison>]
type SviResult =
    { State: SviState
      Losses: float[]
      StoppedEarly: bool
      /// How the loss and gradient were computed, one entry per batch size met (full and short batches).
      Gradients: SviGradient[] }
    member r.Params = r.State.Params

/// The SVI loss (minus the ELBO) and its gradient compiled for one batch size: the guide's
/// standard-normal draws and the batch's tensors are inputs of the program, so one program serves
/// every step with batches of this many rows.
[<NoEquality; NoComparison>]
type CompiledElbo =
    { /// The rows of the batches the program takes.
      BatchRows: int
      /// The number of primitive ops of the program.
      Instructions: int
      /// Wall-clock time of tracing (twice), checking and compiling, in milliseconds.
      CompileMilliseconds: float
      /// The loss and its gradient (one tensor per parameter, in the state's order) at a state's
      /// parameters on a batch of BatchRows rows, with the draws the tape would make from the key.
      Evaluate: SviState -> RngKey -> Map<string, Tensor> -> float * Tensor[] }

/// Where SVI's batches come from: the one seam between the run loop and the data. The loop asks the
/// source for its batches once per run and takes one per step; sources held in memory, streamed from files
/// or read from databases all fit it.
[<NoEquality; NoComparison>]
type BatchSource =
    { /// N, the rows of the whole data (the batched ELBO scales each batch by N / its rows).
      Rows: int
      /// Rows to initialise the parameters and build the guide from (the whole data when in memory, a first batch when streamed).
      Sample: Map<string, Tensor>
      /// The run's batches in order, epoch after epoch, from the run's data key and its options (BatchSize,
      /// Shuffle): all rows each step without a BatchSize, else ceil(N / BatchSize) batches per epoch. The run
      /// takes as many as it has steps and disposes the enumerator.
      Batches: RngKey -> SviRunOptions -> seq<Map<string, Tensor>>
      /// The vocabularies of categorical keys (id i is level i), by key: they travel with the fitted posterior.
      Levels: Map<string, string[]> }

/// Batch sources.
[<RequireQualifiedAccess>]
module BatchSource =

    /// Data held in memory: each epoch the rows in a permutation from the key and the epoch (or in order
    /// when Shuffle is off), BatchSize rows per batch, the last batch of an epoch short.
    let ofData (data: Map<string, Tensor>) : BatchSource =
        let n = if data.IsEmpty then 1 else Data.rows data
        let batches (kData: RngKey) (opts: SviRunOptions) =
            match opts.BatchSize with
            | None -> Seq.initInfinite (fun _ -> data)
            | Some b ->
                let perEpoch = Data.stepsPerEpoch n b
                Seq.initInfinite id
                |> Seq.collect (fun epoch ->
                    let perm = if opts.Shuffle then Rng.permutation (Rng.foldIn kData epoch) n else Tensor.ofInts (Array.init n id)
                    Seq.init perEpoch (fun j ->
                        let start = j * b
                        Data.take (Tensor.narrow 0 start (min b (n - start)) perm) data))
        { Rows = n; Sample = data; Batches = batches; Levels = Map.empty }

    /// Step i's batch, read in order from a source's batches (BatchSource: the one place rows are picked).
    /// A resumed run skips the batches of the steps it has already taken, so step i's batch is the same.
    let internal inOrder (who: string) (batches: Collections.Generic.IEnumerator<Map<string, Tensor>>) : int -> Map<string, Tensor> =
        let read = ref 0
        fun i ->
            if i < read.Value - 1 then invalidOp (sprintf "%s: batch %d was asked for after batch %d; a batch source is read in order." who i (read.Value - 1))
            while read.Value <= i do
                if not (batches.MoveNext()) then
                    invalidOp (sprintf "%s: the batch source ended after %d batches; a source must give a batch for every step (epochs re-read it)." who read.Value)
                read.Value <- read.Value + 1
            batches.Current

    /// The source with the vocabularies of its categorical keys (a table's, by key), for the fit's posterior.
    let withLevels (levels: Map<string, string[]>) (source: BatchSource) : BatchSource = { source with Levels = levels }

/// Stochastic variational inference as a fold: init → step → step → ...
[<RequireQualifiedAccess>]
module Svi =

    let private split (st: SviState) (values: Tensor[]) =
        let g = ResizeArray()
        let m = ResizeArray()
        for i in 0 .. st.Names.Length - 1 do
            let v = Bijector.forward (Constraint.bijector st.Constraints.[i]) values.[i]
            (if st.InGuide.[i] then g else m).Add((st.Names.[i], v))
        Map.ofSeq g, Map.ofSeq m

    /// The initial state: parameter sites and their initial values from one run of guide and model.
    let init (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) : SviState =
        let k0, kRun = Rng.split key
        let kg, km = Rng.split k0
        let _, gt = Traced.run kg cfg.Guide.Program
        let _, mt = Traced.run km (Handlers.replay gt (cfg.Model data))
        let ps = Array.append (Trace.parameters gt |> Array.map (fun s -> s, true)) (Trace.parameters mt |> Array.map (fun s -> s, false))
        let unconstrained = ps |> Array.map (fun (s, _) -> Bijector.inverse (Constraint.bijector s.Constraint) s.Value.Value |> Tensor.detach)
        { Names = ps |> Array.map (fun (s, _) -> s.Name)
          Constraints = ps |> Array.map (fun (s, _) -> s.Constraint)
          InGuide = ps |> Array.map snd
          Unconstrained = unconstrained
          Opt = Optim.init unconstrained
          Step = 0
          Key = kRun
          Loss = nan }

    /// The loss at the state's parameters on a batch, with a key (no update).
    let lossAt (cfg: SviConfig<'T>) (st: SviState) (key: RngKey) (numObs: int) (batch: Map<string, Tensor>) : Tensor =
        let g, m = split st st.Unconstrained
        let ctx = { Model = cfg.Model batch; Guide = cfg.Guide; NumObs = numObs; BatchRows = (if batch.IsEmpty then numObs else Data.rows batch) }
        ElboEstimate.loss cfg.Elbo key g m ctx

    /// The loss and its gradient on the tape at the state's parameters on a batch, with a key.
    let lossAndGradient (cfg: SviConfig<'T>) (numObs: int) (batch: Map<string, Tensor>) (st: SviState) (key: RngKey) : float * Tensor[] =
        let rows = if batch.IsEmpty then numObs else Data.rows batch
        let modelBatch = cfg.Model batch
        let f (us: Tensor[]) =
            let g, m = split st us
            ElboEstimate.loss cfg.Elbo key g m { Model = modelBatch; Guide = cfg.Guide; NumObs = numObs; BatchRows = rows }
        let loss, grads = Autodiff.valueAndGradN f st.Unconstrained
        Tensor.toScalar loss, grads

    /// The update from a loss and gradient: finiteness check, clipping, optimizer (public for runs that
    /// compute the gradient elsewhere: data-parallel SVI sums shards' gradients, then advances here).
    let advance (cfg: SviConfig<'T>) (st: SviState) (nextKey: RngKey) (l: float, grads: Tensor[]) : SviState =
        let finite = Double.IsFinite l && grads |> Array.forall (fun g -> Tensor.toArray g |> Array.forall Double.IsFinite)
        if not finite then
            let bad = if Double.IsFinite l then "a gradient" else sprintf "the loss (%g)" l
            raise (SviDivergedException(sprintf "SVI: %s is not finite at step %d. The state before this step is kept (LastFiniteState); try a smaller learning rate, gradient clipping (ClipNorm), or better initial values." bad st.Step, st))
        let grads = match cfg.ClipNorm with Some c -> Optim.clipByGlobalNorm c grads | None -> grads
        let ps, opt = Optim.update cfg.Optimizer st.Opt st.Unconstrained grads
        { st with Unconstrained = ps |> Array.map Tensor.detach; Opt = opt; Step = st.Step + 1; Key = nextKey; Loss = l }

    /// One step on a batch: the loss and its gradient, then an optimizer update. Raises
    /// SviDivergedException (holding this state) when the loss or a gradient is not finite.
    let step (cfg: SviConfig<'T>) (numObs: int) (batch: Map<string, Tensor>) (st: SviState) : SviState =
        let key, nextKey = Rng.split st.Key
        advance cfg st nextKey (lossAndGradient cfg numObs batch st key)

    /// A location-scale Normal under Independent/Expand wrappers: loc, scale and the rewrapping.
    let rec private normalParts (d: Distribution) : (Tensor * Tensor * (Distribution -> Distribution)) option =
        match d with
        | Independent (b, n) -> normalParts b |> Option.map (fun (l, s, rw) -> l, s, (fun x -> Independent (rw x, n)))
        | Expand (b, sh) -> normalParts b |> Option.map (fun (l, s, rw) -> l, s, (fun x -> Expand (rw x, sh)))
        | Normal (l, s) -> Some (l, s, id)
        | _ -> None

    /// Where a guide's noise comes from, per particle: each ε site's name, its place among the guide's
    /// keyed sites (Handlers.seed splits one key per such site, in site order) and its standard normal.
    type private NoisePlan = (string * int * Distribution)[][]

    /// The ε of each particle drawn from the plan, with the keys Handlers.seed would give the sites: the
    /// tape's draws, without running the guide.
    let private noiseOf (plan: NoisePlan) (key: RngKey) : (string * Tensor)[][] =
        plan |> Array.mapi (fun j sites ->
            let mutable k = fst (Rng.split (Rng.foldIn key j))
            let mutable at = 0
            sites |> Array.map (fun (name, index, standard) ->
                let mutable sub = k
                while at <= index do
                    let next, s = Rng.split k
                    k <- next
                    sub <- s
                    at <- at + 1
                name, Dist.rsample sub [||] standard))

    /// The standard-normal draws ε of the guide's sample sites, per particle, exactly as the tape's
    /// reparameterized draws loc + scale·ε make them from the key (name, ε in site order), and the plan
    /// that draws them again without the guide; Error when a site's draw is not location-scale Normal
    /// (or a Delta), or a plate subsamples.
    let private guideNoise (cfg: SviConfig<'T>) (st: SviState) (key: RngKey) : Result<(string * Tensor)[][] * NoisePlan, string> =
        let g, _ = split st st.Unconstrained
        let particles = cfg.Elbo.Particles
        if particles < 1 then Error (sprintf "the ELBO needs at least one particle, got %d" particles)
        else
        let out = Array.zeroCreate particles
        let plan = Array.zeroCreate particles
        let mutable err = None
        for j in 0 .. particles - 1 do
            if err.IsNone then
                let kg, _ = Rng.split (Rng.foldIn key j)
                let _, gt = Traced.atValues kg g cfg.Guide.Program
                let acc = ResizeArray()
                let sites = ResizeArray()
                let mutable keyed = 0
                for s in gt.Sites do
                    if err.IsNone then
                        match s.Kind with
                        | PlateSite ->
                            let size, sub = s.PlateSize
                            if sub < size then err <- Some (sprintf "the guide subsamples the plate '%s' (random indices)" s.Name)
                        | SampleSite when not s.IsObserved ->
                            match s.Dist with
                            | Some (Delta _) | None -> ()
                            | Some d ->
                                match normalParts d, s.Key with
                                | Some (l, sc, rw), Some k ->
                                    let standard = rw (Normal (Tensor.zerosLike l, Tensor.onesLike sc))
                                    acc.Add((s.Name, Dist.rsample k [||] standard))
                                    sites.Add((s.Name, keyed, standard))
                                | _ -> err <- Some (sprintf "the guide's site '%s' draws from %s, not a location-scale Normal; only reparameterized Normal draws become program inputs" s.Name (Dist.name d))
                        | SampleSite | ParamSite | DeterministicSite | FactorSite -> ()
                    if s.Key.IsSome then keyed <- keyed + 1
                out.[j] <- acc.ToArray()
                plan.[j] <- sites.ToArray()
        match err with
        | Some e -> Error e
        | None ->
            // the plan must give the guide's own draws (the keyed sites in trace order are the order
            // Handlers.seed splits in); where it does not, the run stops here rather than drift
            let again = noiseOf plan key
            let same =
                Array.forall2 (fun (a: (string * Tensor)[]) (b: (string * Tensor)[]) ->
                    Array.forall2 (fun (n1: string, t1: Tensor) (n2: string, t2: Tensor) -> n1 = n2 && Tensor.toArray t1 = Tensor.toArray t2) a b) out again
            if same then Ok (out, plan)
            else Error "the guide's keyed sites are not in the order its draws were keyed in; the compiled program needs the guide's draws from the key alone"

    /// Sets the listed sample sites' values to loc + scale·ε (ε given), as the reparameterized draw does.
    let private withNoise (eps: Map<string, Tensor>) (m: Model<'T>) : Model<'T> =
        Handlers.custom (fun s next ->
            match s.Kind, s.Value, s.Dist with
            | SampleSite, None, Some d ->
                match eps.TryFind s.Name, normalParts d with
                | Some e, Some (l, sc, _) -> next { s with Value = Some (l + sc * e) }
                | _ -> next s
            | _ -> next s) m

    /// A second point for the staticness check: every coordinate moves.
    let private nearby (point: Tensor[]) =
        point |> Array.mapi (fun i t ->
            Tensor.create t.Shape (Tensor.toArray t |> Array.mapi (fun j v -> 0.3 - 0.9 * v + 0.01 * float (i + j))))

    /// Compiles the loss and gradient for batches with as many rows as `batch` (all data when it is
    /// the whole data). Error: why it cannot be compiled (then use the tape: lossAndGradient).
    let compileElbo (cfg: SviConfig<'T>) (st: SviState) (key: RngKey) (numObs: int) (batch: Map<string, Tensor>) : Result<CompiledElbo, string> =
        let sw = Stopwatch.StartNew()
        let rows = if batch.IsEmpty then numObs else Data.rows batch
        match guideNoise cfg st key with
        | Error e -> Error e
        | Ok (noise, plan) ->
        let g, m = split st st.Unconstrained
        let planned =
            try
                let _, mt = ElboEstimate.traces key g m { Model = cfg.Model batch; Guide = cfg.Guide; NumObs = numObs; BatchRows = rows }
                match mt.Sites |> Array.tryFind (fun s -> s.Kind = PlateSite && (let size, sub = s.PlateSize in sub < size)) with
                | Some s -> Error (sprintf "the model subsamples the plate '%s' (random indices)" s.Name)
                | None -> Ok ()
            with ex -> Error (sprintf "running the model failed: %s" ex.Message)
        match planned with
        | Error e -> Error e
        | Ok () ->
        let names = batch |> Map.toArray |> Array.map fst
        let nP = st.Unconstrained.Length
        let nB = names.Length
        let layout = noise |> Array.map (Array.map fst)
        let offsets = layout |> Array.scan (fun o ns -> o + ns.Length) (nP + nB)
        let particles = cfg.Elbo.Particles
        let f (xs: Tensor[]) =
            let us = xs.[.. nP - 1]
            let b = Array.init nB (fun i -> names.[i], xs.[nP + i]) |> Map.ofArray
            let g, m = split st us
            let modelBatch = cfg.Model b
            let particle j =
                let eps = layout.[j] |> Array.mapi (fun i n -> n, xs.[offsets.[j] + i]) |> Map.ofArray
                let guide = { cfg.Guide with Program = withNoise eps cfg.Guide.Program }
                ElboEstimate.particle cfg.Elbo (Rng.foldIn key j) g m { Model = modelBatch; Guide = guide; NumObs = numObs; BatchRows = rows }
            let total = Seq.init particles particle |> Seq.reduce (+)
            -(total / float particles)
        let inputs (b: Map<string, Tensor>) (nz: (string * Tensor)[][]) =
            Array.append (names |> Array.map (fun k -> b.[k])) (nz |> Array.collect (Array.map snd))
        let result =
            try Compiler.compile f st.Unconstrained (nearby st.Unconstrained) (inputs batch noise)
            with ex -> Error (sprintf "tracing the ELBO failed: %s" ex.Message)
        match result with
        | Error e -> Error e
        | Ok cg ->
            let ms = sw.Elapsed.TotalMilliseconds
            let pool = Collections.Concurrent.ConcurrentBag<CompiledEvaluator>()
            let evaluate (s: SviState) (k: RngKey) (b: Map<string, Tensor>) =
                // the guide's sites and their keys are those it had when traced (a guide whose sites depended
                // on its parameters would have been refused by the staticness check)
                let nz = noiseOf plan k
                // an evaluator from the pool takes this batch and noise into its own buffers (no new ones per
                // step); the pool keeps concurrent callers (a silo's shards) apart
                let ev =
                    match pool.TryTake() with
                    | true, e -> e.Rebind(inputs b nz); e
                    | _ -> (cg.Bind (inputs b nz)).CreateEvaluator()
                let q = s.Unconstrained |> Array.collect Tensor.toArray
                let grad = Array.zeroCreate<float> ev.Dim
                let v =
                    try ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(grad))
                    finally pool.Add ev
                let mutable off = 0
                let grads =
                    s.Unconstrained |> Array.map (fun t ->
                        let n = t.Size
                        let part = Tensor.create t.Shape (Array.sub grad off n)
                        off <- off + n
                        part)
                v, grads
            // The staticness check moves the parameters, not the data: a model that reads data values on the host
            // (category ids into host arrays, say) would have this batch's values frozen into the program. So the
            // program must also reproduce the tape on the same rows in another order before it is used.
            let probe = if rows > 1 && not batch.IsEmpty then Data.take (Tensor.ofInts (Array.init rows (fun i -> rows - 1 - i))) batch else batch
            let vC, gC = evaluate st key probe
            let vT, gT = lossAndGradient cfg numObs probe st key
            let close (a: float) (b: float) (scale: float) = a = b || abs (a - b) <= 1e-9 * max scale 1.0
            let gScale = gT |> Array.collect Tensor.toArray |> Array.fold (fun m v -> max m (abs v)) 0.0
            let same =
                close vC vT (abs vT)
                && Array.forall2 (fun (a: Tensor) (b: Tensor) -> Array.forall2 (fun x y -> close x y gScale) (Tensor.toArray a) (Tensor.toArray b)) gC gT
            if not same then Error "the model reads data values on the host, which a compiled program would freeze (the program disagrees with the tape on reordered rows)"
            else Ok { BatchRows = rows; Instructions = cg.Instructions; CompileMilliseconds = ms; Evaluate = evaluate }

    /// As `step`, with the loss and gradient from a compiled program (same numbers as the tape).
    let stepCompiled (c: CompiledElbo) (cfg: SviConfig<'T>) (batch: Map<string, Tensor>) (st: SviState) : SviState =
        let key, nextKey = Rng.split st.Key
        advance cfg st nextKey (c.Evaluate st key batch)

    /// The total number of steps and the steps per epoch for the options and N rows.
    let schedule (opts: SviRunOptions) (n: int) : int * int =
        SviRunOptions.Validate opts
        let perEpoch = match opts.BatchSize with Some b -> Data.stepsPerEpoch n b | None -> 1
        match opts.Steps, opts.Epochs with
        | Some s, _ -> s, perEpoch
        | None, Some e -> e * perEpoch, perEpoch
        | None, None -> SviRunOptions.DefaultSteps, perEpoch

    /// The scratch of an SVI run: its first state, the compiled programs by batch rows, and how each was made.
    type private SviWorkspace =
        { First: SviState
          Programs: Collections.Generic.Dictionary<int, CompiledElbo option>
          Statuses: ResizeArray<SviGradient>
          Batch: int -> Map<string, Tensor> }

    let private sviKernel (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (sample: Map<string, Tensor>) (batch: int -> Map<string, Tensor>)
                          (opts: SviRunOptions) (n: int) (total: int) : RunKernel<SviWorkspace, SviState, float, SviState * SviGradient[]> =
        let kInit, _ = Rng.split key
        let step (w: SviWorkspace) (i: int) (st: SviState) =
            let batch = w.Batch i
            let stepKey, nextKey = Rng.split st.Key
            let rows = if batch.IsEmpty then n else Data.rows batch
            let compiled =
                match w.Programs.TryGetValue rows with
                | true, c -> c
                | false, _ ->
                    let c, status =
                        if not compile then None, SviGradient.OnTape (rows, "compilation is off")
                        else
                            match compileElbo cfg st stepKey n batch with
                            | Ok c -> Some c, SviGradient.CompiledProgram (rows, c.Instructions, c.CompileMilliseconds)
                            | Error why -> None, SviGradient.OnTape (rows, why)
                    w.Programs.[rows] <- c
                    w.Statuses.Add status
                    c
            let lg =
                match compiled with
                | Some c -> c.Evaluate st stepKey batch
                | None -> lossAndGradient cfg n batch st stepKey
            let next = advance cfg st nextKey lg
            next, next.Loss
        { Name = "svi"
          Identity = sprintf "key %O, %d steps, %d rows, batch %A, shuffle %b" key total n opts.BatchSize opts.Shuffle
          Workspace = fun () ->
            { First = init cfg kInit sample; Programs = Collections.Generic.Dictionary(); Statuses = ResizeArray()
              Batch = batch }
          Init = fun w -> w.First
          Step = step
          Finish = fun w st -> st, w.Statuses.ToArray()
          Loss = Some id
          Report = fun _ _ p -> p
          Save = fun st ->
            let o = Nodes.JsonObject()
            o.["unconstrained"] <- Checkpoint.tensors st.Unconstrained
            o.["optStep"] <- Nodes.JsonValue.Create st.Opt.Step
            o.["optFirst"] <- Checkpoint.tensors st.Opt.First
            o.["optSecond"] <- Checkpoint.tensors st.Opt.Second
            o.["step"] <- Nodes.JsonValue.Create st.Step
            o.["key"] <- Checkpoint.key st.Key
            o.["loss"] <- Checkpoint.scalar st.Loss
            o :> Nodes.JsonNode
          Load = fun w n ->
            let get (name: string) = nonNull n.[name]
            let us = Checkpoint.readTensors (get "unconstrained")
            if us.Length <> w.First.Unconstrained.Length then
                invalidOp (sprintf "%d parameters, but the model and guide have %d" us.Length w.First.Unconstrained.Length)
            { w.First with
                Unconstrained = us
                Opt = { Step = (get "optStep").GetValue<int>(); First = Checkpoint.readTensors (get "optFirst"); Second = Checkpoint.readTensors (get "optSecond") }
                Step = (get "step").GetValue<int>(); Key = Checkpoint.readKey (get "key"); Loss = Checkpoint.readScalar (get "loss") } }

    let private runFrom (ctx: RunContext) (resumeFrom: string option) (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (source: BatchSource) (opts: SviRunOptions) : SviResult =
        let n = source.Rows
        let total, _ = schedule opts n
        let _, kData = Rng.split key
        use batches = (source.Batches kData opts).GetEnumerator()
        let out = Run.fold ctx opts.EarlyStopping total resumeFrom (sviKernel compile cfg key source.Sample (BatchSource.inOrder "SVI" batches) opts n total)
        let st, statuses = out.Result
        { State = st; Losses = out.Losses; StoppedEarly = out.StoppedEarly; Gradients = statuses }

    /// Runs SVI under a run context (cancellation, progress, checkpoints): folds `step` over batches
    /// (epochs shuffled from the key) and can stop early on a plateau. With `compile`, the loss and
    /// gradient are compiled once per batch size when the model and guide allow it (see compileElbo), else
    /// the tape runs; the result's Gradients say which and why. Both give the same numbers.
    let runIn (ctx: RunContext) (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) (opts: SviRunOptions) : SviResult =
        runFrom ctx None compile cfg key (BatchSource.ofData data) opts

    /// runIn over the batches of a source (a table streamed from a file or a database, say).
    let runSourceIn (ctx: RunContext) (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (source: BatchSource) (opts: SviRunOptions) : SviResult =
        runFrom ctx None compile cfg key source opts

    /// resume over the batches of a source: the source must give the same batches again (epochs re-read it).
    let resumeSource (ctx: RunContext) (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (source: BatchSource) (opts: SviRunOptions) (path: string) : SviResult =
        runFrom ctx (Some path) compile cfg key source opts

    /// Continues the run that wrote the checkpoint at `path` (same settings, key and data): the result has
    /// the same bits as the uninterrupted run's.
    let resume (ctx: RunContext) (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) (opts: SviRunOptions) (path: string) : SviResult =
        runFrom ctx (Some path) compile cfg key (BatchSource.ofData data) opts

    /// Runs SVI without progress, cancellation or checkpoints (see runIn).
    let runWith (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) (opts: SviRunOptions) : SviResult =
        runIn RunContext.Quiet compile cfg key data opts

    /// Runs SVI over the batches of a source without progress, cancellation or checkpoints (see runSourceIn).
    let runSource (compile: bool) (cfg: SviConfig<'T>) (key: RngKey) (source: BatchSource) (opts: SviRunOptions) : SviResult =
        runSourceIn RunContext.Quiet compile cfg key source opts

    /// Runs SVI with compilation on (see runWith).
    let run (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) (opts: SviRunOptions) : SviResult =
        runWith true cfg key data opts
