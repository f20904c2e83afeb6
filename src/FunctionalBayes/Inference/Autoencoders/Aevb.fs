namespace FunctionalBayes

open System
open System.Diagnostics
open System.Text.Json.Nodes
open FunctionalBayes.Tensors

/// The prior over the latent z.
[<RequireQualifiedAccess; NoEquality; NoComparison>]
type AevbPrior =
    /// N(0, I) (aevb's "unit_normal").
    | UnitNormal
    /// Any library distribution whose draws broadcast against z of shape (S, B, latent).
    | OfDistribution of Distribution
    /// A user log-density of z (S, B, latent) that keeps the two leading axes (its other axes are
    /// summed), and optionally a sampler of n latent vectors (n, latent) for `generate`.
    | LogDensity of name: string * logDensity: (Tensor -> Tensor) * sample: (RngKey -> int -> Tensor) option

/// An AEVB engine (aevb's `Aevb(...)`): networks, distributions, optimizer and loss settings.
[<NoEquality; NoComparison>]
type AevbEngine =
    { LatentDim: int
      DataDim: int
      /// x (B, data) → the variational family's parameters.
      Encoder: NnModule
      /// z → the observation family's parameters; it gets z as (S·B, latent), S draws of B rows
      /// flattened, and outputs with S·B rows are given the shape (S, B, …) back.
      Decoder: NnModule
      Prior: AevbPrior
      Observation: Family
      Variational: Family
      Optimizer: Optimizer
      /// Latent draws per datum and step.
      NSamples: int
      /// loss = nll + KlScale·kl.
      KlScale: float
      /// The REINFORCE baseline's moving-average decay (used only by families without a reparameterization).
      BaselineDecay: float }

/// The state of training: both networks' parameters and states, the optimizer's state, the step and the
/// REINFORCE baseline. A value: `step` returns a new one.
[<NoEquality; NoComparison>]
type AevbState =
    { EncParams: Map<string, Tensor>
      EncState: Map<string, Tensor>
      DecParams: Map<string, Tensor>
      DecState: Map<string, Tensor>
      Opt: OptState
      Step: int
      /// Moving average of the per-datum learning signal (REINFORCE); NaN before the first step.
      Baseline: float }

/// What a step reports (aevb's AevbInfo): loss = nll + klScale·kl, each summed over the batch.
type AevbInfo = { Loss: float; Nll: float; Kl: float }

/// The end of one epoch of a run.
[<NoEquality; NoComparison>]
type AevbEpoch = { Epoch: int; State: AevbState; MeanLoss: float; Seconds: float }

/// The result of a run.
[<NoEquality; NoComparison>]
type AevbResult = { State: AevbState; Losses: float[]; StoppedEarly: bool }

/// Raised when the loss stops being finite; carries the state before the failing step.
type AevbDivergedException(message: string, lastFinite: AevbState) =
    inherit Exception(message)
    member _.LastFiniteState = lastFinite

/// Auto-Encoding Variational Bayes as a fold: create → init → step → step → ...
[<RequireQualifiedAccess>]
module Aevb =

    let private keysOf (m: Map<string, Tensor>) = String.Join(", ", m |> Map.keys)

    /// Builds an engine, checking the settings (aevb's `Aevb(...)`).
    let create (latentDim: int) (dataDim: int) (encoder: NnModule) (decoder: NnModule) (prior: AevbPrior)
               (observation: Family) (variational: Family) (optimizer: Optimizer) (nSamples: int) (klScale: float) : AevbEngine =
        if latentDim < 1 then invalidArg "latentDim" (sprintf "Aevb.create: latentDim must be at least 1, got %d." latentDim)
        if dataDim < 1 then invalidArg "dataDim" (sprintf "Aevb.create: dataDim must be at least 1, got %d." dataDim)
        if nSamples < 1 then invalidArg "nSamples" (sprintf "Aevb.create: nSamples must be at least 1, got %d." nSamples)
        if not (klScale >= 0.0 && Double.IsFinite klScale) then
            invalidArg "klScale" (sprintf "Aevb.create: klScale must be finite and non-negative, got %g." klScale)
        match variational.NotLatent with
        | Some why -> invalidArg "variational" (sprintf "Aevb.create: %s cannot be the variational family: %s" variational.Name why)
        | None -> ()
        { LatentDim = latentDim; DataDim = dataDim; Encoder = encoder; Decoder = decoder; Prior = prior
          Observation = observation; Variational = variational; Optimizer = optimizer; NSamples = nSamples
          KlScale = klScale; BaselineDecay = 0.9 }

    /// The transform of an MLP head for a family parameter: exp(x/2) for "scale" (a standard deviation
    /// from a log-variance), softplus for the other positive parameters ("rate", "df", "a", "b",
    /// "concentration"), the identity otherwise ("loc", "logits").
    let headTransform (paramName: string) : Activation =
        match paramName with
        | "scale" -> Activations.halfExp
        | "rate" | "df" | "a" | "b" | "concentration" -> Activations.softplus
        | _ -> Activations.identity

    /// An MLP (ReLU, He-normal) from input to one head per parameter of the family, each of size outDim:
    /// the built-in encoder (family = the variational one, outDim = latent) or decoder (the observation
    /// family, outDim = data).
    let mlpFor (family: Family) (input: int) (hidden: int list) (outDim: int) (dtype: Dtype) : NnModule =
        Nn.mlp { MlpSpec.Create(input, hidden, family.Params |> List.map (fun p -> Nn.head p outDim (headTransform p))) with Dtype = dtype }

    let private paramDtype (ps: Map<string, Tensor>) =
        ps |> Seq.map (fun (KeyValue (_, t)) -> t.Dtype) |> Seq.tryFind (fun d -> d.IsFloat) |> Option.defaultValue Float64

    /// The dtype the networks compute in (their first float parameter's; float64 without parameters).
    let dtypeOf (st: AevbState) = paramDtype (Map.fold (fun m k v -> Map.add k v m) st.DecParams st.EncParams)

    let private checkKeys (what: string) (net: string) (family: Family) (outs: Map<string, Tensor>) =
        let given = outs |> Map.keys |> Set.ofSeq
        let expected = Set.ofList family.Params
        if given <> expected then
            invalidArg net (sprintf "Aevb.init: the %s returns keys [%s] but the %s family %s expects [%s]; make the network's output names the family's parameter names."
                                net (String.Join(", ", given)) what family.Name (String.Join(", ", family.Params)))

    let private checkLast (net: string) (dim: int) (dimName: string) (outs: Map<string, Tensor>) =
        for KeyValue (k, t) in outs do
            let last = if t.Rank = 0 then 1 else t.Shape.[t.Rank - 1]
            if last <> dim && last <> 1 then
                invalidArg net (sprintf "Aevb.init: the %s's output '%s' has shape %s; its last axis must be %s = %d (or 1)." net k (Shape.format t.Shape) dimName dim)

    /// The decoder on z (…, latent) flattened to (rows, latent), its outputs given z's leading axes back:
    /// the decoder sees a 2-D batch, as the encoder does, whatever the number of samples.
    let private applyDecoder (e: AevbEngine) (decP: Map<string, Tensor>) (decS: Map<string, Tensor>) (z: Tensor) (train: bool) =
        if z.Rank <= 2 then e.Decoder.Apply decP decS z train
        else
            let lead = z.Shape.[.. z.Rank - 2]
            let rows = Shape.size lead
            let outs, s' = e.Decoder.Apply decP decS (Tensor.reshape [| rows; z.Shape.[z.Rank - 1] |] z) train
            outs |> Map.map (fun _ t -> if t.Rank >= 1 && t.Shape.[0] = rows then Tensor.reshape (Array.append lead t.Shape.[1..]) t else t), s'

    /// Runs the networks once on a probe batch and checks their output names and sizes; returns the
    /// observation family's parameters for the probe.
    let private probe (e: AevbEngine) (st: AevbState) =
        let dt = dtypeOf st
        let probe = Tensor.fullOf dt [| 1; e.DataDim |] 1.0
        let zParams, _ = e.Encoder.Apply st.EncParams st.EncState probe false
        checkKeys "variational" "encoder" e.Variational zParams
        checkLast "encoder" e.LatentDim "latentDim" zParams
        let z = e.Variational.Sample (Rng.key 0UL) [| 1 |] zParams |> Tensor.detach
        let xParams, _ = applyDecoder e st.DecParams st.DecState z false
        checkKeys "observation" "decoder" e.Observation xParams
        checkLast "decoder" e.DataDim "dataDim" xParams
        xParams

    let private validate (e: AevbEngine) (st: AevbState) = probe e st |> ignore

    /// Refuses data that the observation family cannot have made, before any work: a value that is not
    /// finite, or outside the support of the family's distribution (a Bernoulli's is [0, 1], the grey
    /// levels it is documented for), naming the row, the column and the value.
    let private checkData (e: AevbEngine) (st: AevbState) (what: string) (x: Tensor) =
        let values = Tensor.toArray x
        let cols = if x.Rank >= 2 then x.Shape.[1] else 1
        let at (i: int) = sprintf "row %d, column %d" (i / cols) (i % cols)
        match values |> Array.tryFindIndex (fun v -> not (Double.IsFinite v)) with
        | Some i -> invalidArg "data" (sprintf "Aevb.%s: the data at %s is %g; data must be finite (drop or impute that row)." what (at i) values.[i])
        | None -> ()
        match e.Observation.ToDistribution with
        | None -> ()
        | Some toDist ->
            let support = Dist.support (toDist (probe e st))
            let ok, described =
                match support with
                | Constraint.Boolean -> Array.map (fun v -> v >= 0.0 && v <= 1.0) values, "a number in [0, 1]"
                | c ->
                    let mask = Constraint.check c x |> Tensor.toBools
                    // vector constraints give one flag per row
                    let perElement = if mask.Length = values.Length then mask else Array.init values.Length (fun i -> mask.[i / cols])
                    perElement, Check.describe c
            match ok |> Array.tryFindIndex not with
            | Some i ->
                invalidArg "data" (sprintf "Aevb.%s: the data at %s is %g, outside the support of the %s observation family (%s)." what (at i) values.[i] e.Observation.Name described)
            | None -> ()

    /// Initial parameters and state from a key (split for the encoder and the decoder), checked: the
    /// encoder's output names must be the variational family's parameters and the decoder's the
    /// observation family's, or this raises naming the expected and the given keys.
    let init (e: AevbEngine) (key: RngKey) : AevbState =
        let ke, kd = Rng.split key
        let ep, es = e.Encoder.Init ke
        let dp, ds = e.Decoder.Init kd
        let flat = Array.append (ep |> Map.toArray |> Array.map snd) (dp |> Map.toArray |> Array.map snd)
        let st = { EncParams = ep; EncState = es; DecParams = dp; DecState = ds; Opt = Optim.init flat; Step = 0; Baseline = nan }
        validate e st
        st

    // ---- the loss -------------------------------------------------------------------------------

    /// Sums every axis after the first two: per (sample, datum) values.
    let private perDraw (what: string) (t: Tensor) =
        if t.Rank < 2 then
            invalidArg "logDensity" (sprintf "Aevb: %s returned shape %s; it must keep the sample and batch axes (S, B, ...)." what (Shape.format t.Shape))
        if t.Rank = 2 then t else Tensor.sumAxes (Array.init (t.Rank - 2) (fun i -> i + 2)) false t

    let private halfLog2Pi = 0.5 * log (2.0 * Math.PI)

    /// log p(z) per (sample, datum).
    let private priorLogProb (e: AevbEngine) (z: Tensor) =
        match e.Prior with
        | AevbPrior.UnitNormal -> perDraw "the prior" (-0.5 * z * z - halfLog2Pi)
        | AevbPrior.OfDistribution d -> perDraw "the prior" (Dist.logProb d z)
        | AevbPrior.LogDensity (name, f, _) -> perDraw (sprintf "the prior '%s'" name) (f z)

    let private priorDistribution (e: AevbEngine) (dt: Dtype) =
        match e.Prior with
        | AevbPrior.UnitNormal -> Some (Normal (Tensor.fullOf dt [||] 0.0, Tensor.fullOf dt [||] 1.0))
        | AevbPrior.OfDistribution d -> Some d
        | AevbPrior.LogDensity _ -> None

    /// The analytic KL(q ‖ prior) summed over batch and latent, when the KL registry has the pair.
    let private analyticKl (e: AevbEngine) (zParams: Map<string, Tensor>) (dt: Dtype) =
        match e.Variational.ToDistribution, priorDistribution e dt with
        | Some toDist, Some p -> Kl.tryAnalytic (toDist zParams) p |> Option.map Tensor.sum
        | _ -> None

    /// Whether the KL term is analytic for this engine (decided from the encoder's outputs).
    let klIsAnalytic (e: AevbEngine) (st: AevbState) (x: Tensor) =
        let zParams, _ = e.Encoder.Apply st.EncParams st.EncState (Tensor.cast (dtypeOf st) x) false
        (analyticKl e zParams (dtypeOf st)).IsSome

    type private Terms = { Loss: Tensor; Nll: Tensor; Kl: Tensor; Signal: Tensor option; EncState: Map<string, Tensor>; DecState: Map<string, Tensor> }

    /// The loss on a batch (aevb's semantics) and, for REINFORCE, the surrogate whose gradient is unbiased.
    let private terms (e: AevbEngine) (key: RngKey) (encP: Map<string, Tensor>) (encS: Map<string, Tensor>)
                      (decP: Map<string, Tensor>) (decS: Map<string, Tensor>) (baseline: float) (x: Tensor) (train: bool) =
        let s = float e.NSamples
        let zParams, encS' = e.Encoder.Apply encP encS x train
        let est = e.Variational.Estimator zParams
        let reinforce = (est = GradientEstimator.Reinforce)
        let z = e.Variational.Sample key [| e.NSamples |] zParams
        let z = if reinforce then Tensor.detach z else z
        let xParams, decS' = applyDecoder e decP decS z train
        let lpx = perDraw "the observation log-density" (e.Observation.LogProb xParams x)   // (S, B)
        let nll = -(Tensor.sum lpx) / s
        let dt = lpx.Dtype
        let kl, mcKlPerDraw =
            match analyticKl e zParams dt with
            | Some k -> k, None
            | None ->
                let d = perDraw "the variational log-density" (e.Variational.LogProb zParams z) - priorLogProb e z
                Tensor.sum d / s, Some d
        let loss = nll + e.KlScale * kl
        let surrogate, signal =
            if not reinforce then loss, None
            else
                // cost per (sample, datum); its score-function term has value zero
                let cost = -lpx + (match mcKlPerDraw with Some d -> e.KlScale * d | None -> Tensor.zerosLike lpx)
                let b = if Double.IsNaN baseline then 0.0 else baseline
                let logq = perDraw "the variational log-density" (e.Variational.LogProb zParams z)
                let centered = Tensor.detach cost - b
                loss + Tensor.sum (centered * (logq - Tensor.detach logq)) / s, Some (Tensor.detach cost)
        surrogate, { Loss = loss; Nll = nll; Kl = kl; Signal = signal; EncState = encS'; DecState = decS' }

    let private checkBatch (e: AevbEngine) (what: string) (x: Tensor) =
        if x.Rank <> 2 || x.Shape.[1] <> e.DataDim then
            invalidArg "x" (sprintf "Aevb.%s: the data must have shape (batch, %d), got %s." what e.DataDim (Shape.format x.Shape))

    /// One optimization step on a batch x (batch, dataDim): aevb's step. The key is used as given.
    let step (e: AevbEngine) (key: RngKey) (st: AevbState) (x: Tensor) : AevbState * AevbInfo =
        checkBatch e "step" x
        let x = Tensor.cast (dtypeOf st) x
        let encKeys = st.EncParams |> Map.toArray |> Array.map fst
        let decKeys = st.DecParams |> Map.toArray |> Array.map fst
        let flat = Array.append (encKeys |> Array.map (fun k -> st.EncParams.[k])) (decKeys |> Array.map (fun k -> st.DecParams.[k]))
        let nEnc = encKeys.Length
        let toMaps (ts: Tensor[]) =
            Array.init nEnc (fun i -> encKeys.[i], ts.[i]) |> Map.ofArray,
            Array.init decKeys.Length (fun i -> decKeys.[i], ts.[nEnc + i]) |> Map.ofArray
        let mutable out = None
        let f (ts: Tensor[]) =
            let ep, dp = toMaps ts
            let sur, t = terms e key ep st.EncState dp st.DecState st.Baseline x true
            out <- Some t
            sur
        let _, grads = Autodiff.valueAndGradN f flat
        let t = out.Value
        let loss = Tensor.toScalar (Tensor.detach t.Loss)
        if not (Double.IsFinite loss) then
            raise (AevbDivergedException(sprintf "Aevb: the loss is not finite (%g) at step %d; the state before this step is kept (LastFiniteState). Try a smaller learning rate." loss st.Step, st))
        let ps, opt = Optim.update e.Optimizer st.Opt flat grads
        let ps = ps |> Array.map Tensor.detach
        let ep, dp = toMaps ps
        let detachAll (m: Map<string, Tensor>) = m |> Map.map (fun _ v -> Tensor.detach v)
        let baseline =
            match t.Signal with
            | None -> st.Baseline
            | Some c ->
                let m = Tensor.toScalar (Tensor.mean c)
                if Double.IsNaN st.Baseline then m else e.BaselineDecay * st.Baseline + (1.0 - e.BaselineDecay) * m
        { EncParams = ep; EncState = detachAll t.EncState; DecParams = dp; DecState = detachAll t.DecState
          Opt = opt; Step = st.Step + 1; Baseline = baseline },
        { Loss = loss; Nll = Tensor.toScalar (Tensor.detach t.Nll); Kl = Tensor.toScalar (Tensor.detach t.Kl) }

    /// The loss terms on a batch at the state's parameters (train mode off; no update).
    let lossAt (e: AevbEngine) (key: RngKey) (st: AevbState) (x: Tensor) : AevbInfo =
        checkBatch e "lossAt" x
        let _, t = terms e key st.EncParams st.EncState st.DecParams st.DecState st.Baseline (Tensor.cast (dtypeOf st) x) false
        { Loss = Tensor.toScalar t.Loss; Nll = Tensor.toScalar t.Nll; Kl = Tensor.toScalar t.Kl }

    /// The per-step gradient of the surrogate loss (the one `step` follows) for the encoder and the
    /// decoder parameters, without an update: for checking estimators.
    let gradient (e: AevbEngine) (key: RngKey) (st: AevbState) (x: Tensor) : Map<string, Tensor> * Map<string, Tensor> =
        checkBatch e "gradient" x
        let x = Tensor.cast (dtypeOf st) x
        let gEnc = Autodiff.gradMap (fun ep -> fst (terms e key ep st.EncState st.DecParams st.DecState st.Baseline x true)) st.EncParams
        let gDec = Autodiff.gradMap (fun dp -> fst (terms e key st.EncParams st.EncState dp st.DecState st.Baseline x true)) st.DecParams
        gEnc, gDec

    /// The run's state between steps: the networks' state and the running sum of the epoch's losses.
    type private AevbRun = { St: AevbState; EpochSum: float; EpochSteps: int }

    let private saveState (r: AevbRun) : JsonNode =
        let o = JsonObject()
        o.["encParams"] <- Checkpoint.tensorMap r.St.EncParams
        o.["encState"] <- Checkpoint.tensorMap r.St.EncState
        o.["decParams"] <- Checkpoint.tensorMap r.St.DecParams
        o.["decState"] <- Checkpoint.tensorMap r.St.DecState
        o.["optStep"] <- JsonValue.Create r.St.Opt.Step
        o.["optFirst"] <- Checkpoint.tensors r.St.Opt.First
        o.["optSecond"] <- Checkpoint.tensors r.St.Opt.Second
        o.["step"] <- JsonValue.Create r.St.Step
        o.["baseline"] <- Checkpoint.scalar r.St.Baseline
        o.["epochSum"] <- Checkpoint.scalar r.EpochSum
        o.["epochSteps"] <- JsonValue.Create r.EpochSteps
        o :> JsonNode

    let private loadState (n: JsonNode) : AevbRun =
        let get (name: string) = nonNull n.[name]
        { St = { EncParams = Checkpoint.readTensorMap (get "encParams"); EncState = Checkpoint.readTensorMap (get "encState")
                 DecParams = Checkpoint.readTensorMap (get "decParams"); DecState = Checkpoint.readTensorMap (get "decState")
                 Opt = { Step = (get "optStep").GetValue<int>(); First = Checkpoint.readTensors (get "optFirst"); Second = Checkpoint.readTensors (get "optSecond") }
                 Step = (get "step").GetValue<int>(); Baseline = Checkpoint.readScalar (get "baseline") }
          EpochSum = Checkpoint.readScalar (get "epochSum"); EpochSteps = (get "epochSteps").GetValue<int>() }

    /// Trains on the batches of a source (its `column` tensor, rows × dataDim): in memory, the rows are
    /// checked before any work; streamed (the source's Sample fewer rows than its Rows), the sample is
    /// checked first and each batch as it is read.
    let private train (ctx: RunContext) (resumeFrom: string option) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (st0: AevbState)
                      (source: BatchSource) (column: string) (opts: AevbRunOptions) : AevbResult =
        AevbRunOptions.Validate opts
        let columnOf (what: string) (batch: Map<string, Tensor>) =
            match batch.TryFind column with
            | Some x -> x
            | None -> invalidArg "source" (sprintf "Aevb.%s: the batches have no '%s' (they have %s)." what column (keysOf batch))
        let sample = columnOf "run" source.Sample
        checkBatch e "run" sample
        if source.Rows = 0 || sample.Shape.[0] = 0 then invalidArg "data" "Aevb.run: the data have 0 rows; there is nothing to train on."
        checkData e st0 "run" sample
        let streamed = sample.Shape.[0] < source.Rows
        let dt = dtypeOf st0
        let n = source.Rows
        let perEpoch = Data.stepsPerEpoch n opts.BatchSize
        let total = perEpoch * opts.Epochs
        let kData, kSteps = Rng.split key
        use batches = (source.Batches kData { SviRunOptions.Default with BatchSize = Some opts.BatchSize; Shuffle = opts.Shuffle }).GetEnumerator()
        let read = BatchSource.inOrder "Aevb.run" batches
        let batchAt (i: int) =
            let x = columnOf "run" (read i)
            if streamed then
                checkBatch e "run" x
                checkData e st0 "run" x
            Tensor.cast dt x
        let epochWatch = Stopwatch()
        let endEpoch (epoch: int) (r: AevbRun) =
            if r.EpochSteps > 0 then
                onEpoch { Epoch = epoch; State = r.St; MeanLoss = r.EpochSum / float r.EpochSteps; Seconds = epochWatch.Elapsed.TotalSeconds }
        let kernel : RunKernel<int -> Tensor, AevbRun, AevbInfo, AevbRun> =
            { Name = "aevb"
              Identity = sprintf "key %O, %d epochs of batch %d, %d rows, shuffle %b, start step %d" key opts.Epochs opts.BatchSize n opts.Shuffle st0.Step
              Workspace = fun () -> batchAt
              Init = fun _ -> { St = st0; EpochSum = 0.0; EpochSteps = 0 }
              Step = fun batchAt i r ->
                if r.EpochSteps = 0 || not epochWatch.IsRunning then epochWatch.Restart()
                let st, info = step e (Rng.foldIn kSteps i) r.St (batchAt i)
                let r = { St = st; EpochSum = r.EpochSum + info.Loss; EpochSteps = r.EpochSteps + 1 }
                if r.EpochSteps = perEpoch then
                    endEpoch (i / perEpoch) r
                    { r with EpochSum = 0.0; EpochSteps = 0 }, info
                else r, info
              Finish = fun _ r -> r
              Loss = Some (fun info -> info.Loss)
              Report = fun _ _ p -> { p with Epoch = (p.Step - 1) / perEpoch }
              Save = saveState
              Load = fun _ n -> loadState n }
        let out = Run.fold ctx opts.EarlyStopping total resumeFrom kernel
        // an early stop ends the epoch it is in
        endEpoch ((out.Steps - 1) / perEpoch) out.Result
        { State = out.Result.St; Losses = out.Losses; StoppedEarly = out.StoppedEarly }

    /// Rows held in memory as the one-column source train reads (cast once to the networks' dtype).
    let private inMemory (st0: AevbState) (data: Tensor) : BatchSource =
        BatchSource.ofData (Map [ "x", Tensor.cast (dtypeOf st0) data ])

    /// A run's step losses per row, the scale of `elbo` (a step's loss is summed over its batch): step i's loss
    /// over the rows of its batch (an epoch's last batch may be short), for a run from step 0 on `rows` rows.
    let lossesPerRow (rows: int) (opts: AevbRunOptions) (losses: float[]) : float[] =
        let perEpoch = Data.stepsPerEpoch rows opts.BatchSize
        losses |> Array.mapi (fun i l -> l / float (min opts.BatchSize (rows - (i % perEpoch) * opts.BatchSize)))

    /// Trains from `st0` under a run context: epochs of shuffled minibatches of the rows of data (N, dataDim),
    /// step i with the key folded with i; reports progress, stops early on a plateau (EarlyStopping), calls
    /// `onEpoch` after each epoch (its seconds exclude the call), writes checkpoints, and raises
    /// OperationCanceledException after the current step when cancelled.
    let runIn (ctx: RunContext) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (st0: AevbState) (data: Tensor) (opts: AevbRunOptions) : AevbResult =
        train ctx None onEpoch e key st0 (inMemory st0 data) "x" opts

    /// Continues the run (same engine, key, start state, data and options) that wrote the checkpoint at
    /// `path`: the result has the same bits as the uninterrupted run's.
    let resume (ctx: RunContext) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (st0: AevbState) (data: Tensor) (opts: AevbRunOptions) (path: string) : AevbResult =
        train ctx (Some path) onEpoch e key st0 (inMemory st0 data) "x" opts

    /// runIn without progress, epoch reports, cancellation or checkpoints.
    let runFrom (e: AevbEngine) (key: RngKey) (st0: AevbState) (data: Tensor) (opts: AevbRunOptions) : AevbResult =
        runIn RunContext.Quiet ignore e key st0 data opts

    /// `init` from one half of the key, then `runIn` with the other.
    let trainIn (ctx: RunContext) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (data: Tensor) (opts: AevbRunOptions) : AevbResult =
        let kInit, kRun = Rng.split key
        runIn ctx onEpoch e kRun (init e kInit) data opts

    /// `init` from the key, then `runFrom`.
    let run (e: AevbEngine) (key: RngKey) (data: Tensor) (opts: AevbRunOptions) : AevbResult =
        trainIn RunContext.Quiet ignore e key data opts

    /// runIn on the batches of a source (a table streamed from a Parquet or CSV file or a query, say): its
    /// `column` tensor (rows × dataDim; Table.stream's Matrices stack columns into one). Run.BatchSize and
    /// Shuffle come from `opts`; the source picks the rows (BatchSource.ofData: the same batches as runIn), so
    /// a fit is deterministic given the key, and a streamed source keeps only its buffer in memory.
    let runSourceIn (ctx: RunContext) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (st0: AevbState) (source: BatchSource) (column: string) (opts: AevbRunOptions) : AevbResult =
        train ctx None onEpoch e key st0 source column opts

    /// `init` from one half of the key, then runSourceIn with the other (trainIn for a source).
    let trainSourceIn (ctx: RunContext) (onEpoch: AevbEpoch -> unit) (e: AevbEngine) (key: RngKey) (source: BatchSource) (column: string) (opts: AevbRunOptions) : AevbResult =
        let kInit, kRun = Rng.split key
        runSourceIn ctx onEpoch e kRun (init e kInit) source column opts

    /// trainSourceIn without progress, epoch reports, cancellation or checkpoints.
    let runSource (e: AevbEngine) (key: RngKey) (source: BatchSource) (column: string) (opts: AevbRunOptions) : AevbResult =
        trainSourceIn RunContext.Quiet ignore e key source column opts

    // ---- using a trained model ----------------------------------------------------------------

    /// The variational family's parameters for x (eval mode).
    let encodeParams (e: AevbEngine) (st: AevbState) (x: Tensor) : Map<string, Tensor> =
        checkBatch e "encodeParams" x
        fst (e.Encoder.Apply st.EncParams st.EncState (Tensor.cast (dtypeOf st) x) false) |> Map.map (fun _ t -> Tensor.detach t)

    /// n draws of z ~ q(z | x) per row of x: shape (n, B, latent).
    let encode (e: AevbEngine) (key: RngKey) (st: AevbState) (x: Tensor) (n: int) : Tensor =
        if n < 1 then invalidArg "n" (sprintf "Aevb.encode: n must be at least 1, got %d." n)
        e.Variational.Sample key [| n |] (encodeParams e st x) |> Tensor.detach

    /// The mean of q(z | x): shape (B, latent).
    let encodeMean (e: AevbEngine) (st: AevbState) (x: Tensor) : Tensor =
        e.Variational.Mean (encodeParams e st x) |> Tensor.detach

    let private checkLatent (e: AevbEngine) (what: string) (z: Tensor) =
        if z.Rank < 1 || z.Shape.[z.Rank - 1] <> e.LatentDim then
            invalidArg "z" (sprintf "Aevb.%s: z must end with the latent dimension %d, got shape %s." what e.LatentDim (Shape.format z.Shape))

    /// The observation family's parameters for z (…, latent) (eval mode).
    let decodeParams (e: AevbEngine) (st: AevbState) (z: Tensor) : Map<string, Tensor> =
        checkLatent e "decodeParams" z
        fst (applyDecoder e st.DecParams st.DecState (Tensor.cast (dtypeOf st) z) false) |> Map.map (fun _ t -> Tensor.detach t)

    /// The observation mean E[x | z] for z (…, latent): shape (…, dataDim).
    let decode (e: AevbEngine) (st: AevbState) (z: Tensor) : Tensor =
        let ps = decodeParams e st z
        let m = e.Observation.Mean ps
        Tensor.broadcastTo (Array.append z.Shape.[.. z.Rank - 2] [| e.DataDim |]) m |> Tensor.detach

    /// Draws x ~ p(x | z), independent per element (not one shared noise value): shape (…, dataDim).
    let decodeSample (e: AevbEngine) (key: RngKey) (st: AevbState) (z: Tensor) : Tensor =
        let ps = decodeParams e st z
        let ps = ps |> Map.map (fun _ t -> Tensor.broadcastTo (Array.append z.Shape.[.. z.Rank - 2] [| if t.Rank = 0 then 1 else t.Shape.[t.Rank - 1] |]) t)
        e.Observation.Sample key [||] ps |> Tensor.detach

    /// x ↦ decode(mean of q(z | x)): the reconstruction, shape (B, dataDim).
    let reconstruct (e: AevbEngine) (st: AevbState) (x: Tensor) : Tensor = decode e st (encodeMean e st x)

    /// n latent vectors from the configured prior: (n, latent).
    let samplePrior (e: AevbEngine) (key: RngKey) (st: AevbState) (n: int) : Tensor =
        if n < 1 then invalidArg "n" (sprintf "Aevb.samplePrior: n must be at least 1, got %d." n)
        let z =
            match e.Prior with
            | AevbPrior.UnitNormal -> Rng.normal key [| n; e.LatentDim |]
            | AevbPrior.OfDistribution d ->
                let bs = Dist.batchShape d
                let ev = Dist.eventShape d
                if bs.Length = 0 && ev.Length = 0 then Dist.sample key [| n; e.LatentDim |] d else Dist.sample key [| n |] d
            | AevbPrior.LogDensity (_, _, Some sample) -> sample key n
            | AevbPrior.LogDensity (name, _, None) ->
                invalidOp (sprintf "Aevb.generate: the prior '%s' is a log-density without a sampler; give AevbPrior.LogDensity a sampler." name)
        if not (Shape.equal z.Shape [| n; e.LatentDim |]) then
            invalidOp (sprintf "Aevb.samplePrior: the prior gave draws of shape %s, expected (%d, %d)." (Shape.format z.Shape) n e.LatentDim)
        Tensor.cast (dtypeOf st) z

    /// n new data points: z from the prior, then the observation mean (mean = true) or a draw of x.
    let generate (e: AevbEngine) (key: RngKey) (st: AevbState) (n: int) (mean: bool) : Tensor =
        let kz, kx = Rng.split key
        let z = samplePrior e kz st n
        if mean then decode e st z else decodeSample e kx st z

    /// The ELBO per datum on held-out x (B, dataDim), averaged over the rows (eval mode). With k = 1:
    /// E_q[log p(x|z)] − KL (analytic where the registry has the pair, one draw otherwise); with k > 1
    /// the importance-weighted bound log (1/k) Σ p(x, zᵢ)/q(zᵢ | x) (Burda et al.), which is tighter.
    /// Rows are processed in chunks of batchSize.
    let elbo (e: AevbEngine) (key: RngKey) (st: AevbState) (x: Tensor) (k: int) (batchSize: int) : float =
        checkBatch e "elbo" x
        if k < 1 then invalidArg "k" (sprintf "Aevb.elbo: k must be at least 1, got %d." k)
        if batchSize < 1 then invalidArg "batchSize" (sprintf "Aevb.elbo: batchSize must be at least 1, got %d." batchSize)
        let x = Tensor.cast (dtypeOf st) x
        let n = x.Shape.[0]
        let mutable total = 0.0
        let mutable start = 0
        let mutable chunk = 0
        while start < n do
            let count = min batchSize (n - start)
            let xb = Tensor.narrow 0 start count x
            let kc = Rng.foldIn key chunk
            let zParams, _ = e.Encoder.Apply st.EncParams st.EncState xb false
            let z = e.Variational.Sample kc [| k |] zParams |> Tensor.detach
            let xParams, _ = applyDecoder e st.DecParams st.DecState z false
            let lpx = perDraw "the observation log-density" (e.Observation.LogProb xParams xb)   // (k, B)
            let value =
                if k = 1 then
                    let kl =
                        match analyticKl e zParams lpx.Dtype with
                        | Some kl -> kl
                        | None -> Tensor.sum (perDraw "the variational log-density" (e.Variational.LogProb zParams z) - priorLogProb e z)
                    Tensor.toScalar (Tensor.sum lpx) - Tensor.toScalar kl
                else
                    let lw = lpx + priorLogProb e z - perDraw "the variational log-density" (e.Variational.LogProb zParams z)
                    let lw = Tensor.toFloat64 lw
                    Tensor.toScalar (Tensor.sum (Tensor.logsumexpAxes [| 0 |] false lw)) - float count * log (float k)
            total <- total + value
            start <- start + count
            chunk <- chunk + 1
        total / float n

    // ---- save / load --------------------------------------------------------------------------

    let private priorName (p: AevbPrior) =
        match p with
        | AevbPrior.UnitNormal -> "unit normal"
        | AevbPrior.OfDistribution d -> sprintf "the distribution %s" (d.GetType().Name)
        | AevbPrior.LogDensity (name, _, _) -> sprintf "the log density '%s'" name

    /// The engine's signature with the networks' parameters given (their dtype the latents').
    let private signatureOf (e: AevbEngine) (opts: AevbRunOptions option) (encParams: Map<string, Tensor>) (decParams: Map<string, Tensor>) : AevbSignature =
        let shapes (pre: string) (m: Map<string, Tensor>) = m |> Map.toArray |> Array.map (fun (k, t) -> pre + k, t.Shape)
        { LatentDim = e.LatentDim; DataDim = e.DataDim; Variational = e.Variational.Name; Observation = e.Observation.Name
          Prior = priorName e.Prior
          Dtype = string (paramDtype (Map.fold (fun m k v -> Map.add k v m) decParams encParams))
          Parameters = Array.append (shapes "encoder/" encParams) (shapes "decoder/" decParams)
          Options = opts }

    /// Writes the networks' parameters and states (not the optimizer's moments) as JSON, with the engine's
    /// signature (latent and data sizes, the encoder's and decoder's families, the prior, the dtype, each
    /// parameter's shape) and the settings of the run that trained them (`opts`; None for untrained networks).
    let save (path: string) (e: AevbEngine) (opts: AevbRunOptions option) (st: AevbState) =
        let add (pre: string) (m: Map<string, Tensor>) acc = m |> Map.fold (fun a k v -> Map.add (pre + k) (Tensor.detach v) a) acc
        Map.empty |> add "enc.params/" st.EncParams |> add "enc.state/" st.EncState
        |> add "dec.params/" st.DecParams |> add "dec.state/" st.DecState
        |> PosteriorFile.saveAevb path (signatureOf e opts st.EncParams st.DecParams)

    /// The settings of the run that trained the networks in a file written by `save` (None when untrained).
    let savedOptions (path: string) : AevbRunOptions option = (fst (PosteriorFile.readAevb path)).Options

    /// Reads a state written by `save` for this engine; the optimizer restarts. The file's signature must be
    /// the engine's (latent and data sizes, families, prior, dtype, each parameter's name and shape, which
    /// carry the network sizes), or an InvalidDataException names the first difference; a malformed,
    /// truncated or empty file is an InvalidDataException naming the file.
    let load (e: AevbEngine) (path: string) : AevbState =
        let inFile, all = PosteriorFile.readAevb path
        let part (pre: string) =
            all |> Seq.choose (fun (KeyValue (k, v)) -> if k.StartsWith(pre, StringComparison.Ordinal) then Some (k.Substring pre.Length, v) else None)
            |> Map.ofSeq
        let ep = part "enc.params/"
        let dp = part "dec.params/"
        // the file's networks must be this engine's, or the weights would be used silently
        let ke, kd = Rng.split (Rng.key 0UL)
        let expectEnc, _ = e.Encoder.Init ke
        let expectDec, _ = e.Decoder.Init kd
        match PosteriorFile.aevbDifference (signatureOf e None expectEnc expectDec) inFile with
        | Some d -> raise (IO.InvalidDataException(sprintf "%s was written for another engine: %s." path d))
        | None -> ()
        // and its tensors what its signature says
        match PosteriorFile.aevbDifference inFile (signatureOf e None ep dp) with
        | Some d -> PosteriorFile.bad path (sprintf "its tensors disagree with its own signature: %s" d)
        | None -> ()
        let flat = Array.append (ep |> Map.toArray |> Array.map snd) (dp |> Map.toArray |> Array.map snd)
        let st = { EncParams = ep; EncState = part "enc.state/"; DecParams = dp; DecState = part "dec.state/"
                   Opt = Optim.init flat; Step = 0; Baseline = nan }
        validate e st
        st
