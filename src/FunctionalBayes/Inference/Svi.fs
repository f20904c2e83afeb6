namespace FunctionalBayes

open System
open System.Diagnostics
open FunctionalBayes.Tensors

/// Named data tensors whose first axis is the row (observation) axis.
[<RequireQualifiedAccess>]
module Data =

    /// The common row count; raises naming the tensors whose lengths differ.
    let rows (data: Map<string, Tensor>) : int =
        if data.IsEmpty then invalidArg "data" "Data.rows: the data is empty; pass at least one tensor with a row axis."
        let lens = data |> Map.toArray |> Array.map (fun (k, t) ->
            if t.Rank < 1 then invalidArg "data" (sprintf "Data: '%s' is a scalar; data tensors need a row axis (bind constants in the model function instead)." k)
            k, t.Shape.[0])
        let _, n0 = lens.[0]
        match lens |> Array.tryFind (fun (_, n) -> n <> n0) with
        | Some (k, n) -> invalidArg "data" (sprintf "Inconsistent data lengths: '%s' has %d rows but '%s' has %d." (fst lens.[0]) n0 k n)
        | None -> n0

    /// The rows at the given int32 indices.
    let take (idx: Tensor) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> Tensor.indexSelect 0 idx t)

    /// Rows start .. start+count-1.
    let slice (start: int) (count: int) (data: Map<string, Tensor>) = data |> Map.map (fun _ t -> Tensor.narrow 0 start count t)

    /// Steps per epoch for a batch size: ceil(N / B).
    let stepsPerEpoch (n: int) (batchSize: int) =
        if batchSize < 1 then invalidArg "batchSize" (sprintf "batch size must be at least 1, got %d." batchSize)
        (n + batchSize - 1) / batchSize

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

/// Progress of a run, reported every few steps.
type SviProgress = { Step: int; TotalSteps: int; Loss: float; Elapsed: TimeSpan; Eta: TimeSpan }

/// Stop when the loss plateaus: the median of the last `Window` losses has improved on the median of
/// the window before by less than `RelTol` (relative), `Patience` windows in a row. Medians make the
/// rule robust to the noise of stochastic ELBOs.
type EarlyStopping = { Window: int; RelTol: float; Patience: int }

/// How long to run and how to batch.
type SviRunOptions =
    { Steps: int option
      Epochs: int option
      /// Rows per step; None uses all rows each step (then one step is one epoch).
      BatchSize: int option
      /// Shuffle rows each epoch (a permutation from the run's key).
      Shuffle: bool
      EarlyStopping: EarlyStopping option
      OnProgress: (SviProgress -> unit) option
      /// Report progress every this many steps.
      ProgressEvery: int }

    static member ForSteps(steps: int) =
        { Steps = Some steps; Epochs = None; BatchSize = None; Shuffle = true; EarlyStopping = None; OnProgress = None; ProgressEvery = 100 }
    static member ForEpochs(epochs: int, batchSize: int) =
        { Steps = None; Epochs = Some epochs; BatchSize = Some batchSize; Shuffle = true; EarlyStopping = None; OnProgress = None; ProgressEvery = 100 }

/// The result of a run.
[<NoEquality; NoComparison>]
type SviResult =
    { State: SviState
      Losses: float[]
      StoppedEarly: bool }
    member r.Params = r.State.Params

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
        let _, gt = Model.run (Handlers.trace (Handlers.seed kg cfg.Guide.Program))
        let _, mt = Model.run (Handlers.trace (Handlers.seed km (Handlers.replay gt (cfg.Model data))))
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

    /// One step on a batch: the loss and its gradient, then an optimizer update. Raises
    /// SviDivergedException (holding this state) when the loss or a gradient is not finite.
    let step (cfg: SviConfig<'T>) (numObs: int) (batch: Map<string, Tensor>) (st: SviState) : SviState =
        let key, nextKey = Rng.split st.Key
        let rows = if batch.IsEmpty then numObs else Data.rows batch
        let modelBatch = cfg.Model batch
        let f (us: Tensor[]) =
            let g, m = split st us
            ElboEstimate.loss cfg.Elbo key g m { Model = modelBatch; Guide = cfg.Guide; NumObs = numObs; BatchRows = rows }
        let loss, grads = Autodiff.valueAndGradN f st.Unconstrained
        let l = Tensor.toScalar loss
        let finite = Double.IsFinite l && grads |> Array.forall (fun g -> Tensor.toArray g |> Array.forall Double.IsFinite)
        if not finite then
            let bad = if Double.IsFinite l then "a gradient" else sprintf "the loss (%g)" l
            raise (SviDivergedException(sprintf "SVI: %s is not finite at step %d. The state before this step is kept (LastFiniteState); try a smaller learning rate, gradient clipping (ClipNorm), or better initial values." bad st.Step, st))
        let grads = match cfg.ClipNorm with Some c -> Optim.clipByGlobalNorm c grads | None -> grads
        let ps, opt = Optim.update cfg.Optimizer st.Opt st.Unconstrained grads
        { st with Unconstrained = ps |> Array.map Tensor.detach; Opt = opt; Step = st.Step + 1; Key = nextKey; Loss = l }

    /// The total number of steps and the steps per epoch for the options and N rows.
    let schedule (opts: SviRunOptions) (n: int) : int * int =
        let perEpoch = match opts.BatchSize with Some b -> Data.stepsPerEpoch n b | None -> 1
        match opts.Steps, opts.Epochs with
        | Some s, None ->
            if s < 1 then invalidArg "opts" (sprintf "SVI: steps must be at least 1, got %d." s)
            s, perEpoch
        | None, Some e ->
            if e < 1 then invalidArg "opts" (sprintf "SVI: epochs must be at least 1, got %d." e)
            e * perEpoch, perEpoch
        | _ -> invalidArg "opts" "SVI: provide exactly one of Steps or Epochs."

    let private plateaued (es: EarlyStopping) (losses: ResizeArray<float>) =
        let w = es.Window
        if losses.Count < 2 * w then false
        else
            let median (a: float[]) = let s = Array.sort a in s.[s.Length / 2]
            let cur = median (losses.GetRange(losses.Count - w, w).ToArray())
            let prev = median (losses.GetRange(losses.Count - 2 * w, w).ToArray())
            (prev - cur) / max (abs prev) 1e-12 < es.RelTol

    /// Runs SVI: folds `step` over batches (epochs shuffled from the key), reports progress, and can
    /// stop early on a plateau.
    let run (cfg: SviConfig<'T>) (key: RngKey) (data: Map<string, Tensor>) (opts: SviRunOptions) : SviResult =
        let n = if data.IsEmpty then 1 else Data.rows data
        let total, perEpoch = schedule opts n
        let kInit, kData = Rng.split key
        let mutable st = init cfg kInit data
        let losses = ResizeArray<float>(total)
        let sw = Stopwatch.StartNew()
        let mutable perm = None
        let mutable stale = 0
        let mutable stopped = false
        let mutable i = 0
        let every = max 1 opts.ProgressEvery
        while i < total && not stopped do
            let batch =
                match opts.BatchSize with
                | None -> data
                | Some b ->
                    let epoch = i / perEpoch
                    let j = i % perEpoch
                    if j = 0 || perm.IsNone then
                        perm <- Some (if opts.Shuffle then Rng.permutation (Rng.foldIn kData epoch) n else Tensor.ofInts (Array.init n id))
                    let start = j * b
                    let count = min b (n - start)
                    Data.take (Tensor.narrow 0 start count perm.Value) data
            st <- step cfg n batch st
            losses.Add st.Loss
            i <- i + 1
            match opts.OnProgress with
            | Some report when i % every = 0 || i = total ->
                let el = sw.Elapsed
                report { Step = i; TotalSteps = total; Loss = st.Loss; Elapsed = el
                         Eta = TimeSpan.FromTicks(int64 (float el.Ticks / float i * float (total - i))) }
            | _ -> ()
            match opts.EarlyStopping with
            | Some es when i % es.Window = 0 ->
                if plateaued es losses then stale <- stale + 1 else stale <- 0
                if stale >= es.Patience then stopped <- true
            | _ -> ()
        { State = st; Losses = losses.ToArray(); StoppedEarly = stopped }
