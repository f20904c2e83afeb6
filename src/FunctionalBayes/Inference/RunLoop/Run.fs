namespace FunctionalBayes

open System
open System.Diagnostics
open System.IO
open System.Runtime.InteropServices
open System.Security.Cryptography
open System.Text
open System.Text.Json
open System.Text.Json.Nodes
open System.Threading
open FunctionalBayes.Tensors

/// Stop when the loss plateaus: the median of the last `Window` losses has improved on the median of
/// the window before by less than `RelTol` (relative), `Patience` windows in a row. Medians make the
/// rule robust to the noise of stochastic ELBOs.
type EarlyStopping =
    { Window: int; RelTol: float; Patience: int }

    /// Checks the rule (the one place its checks live); `who` starts the message ("SVI", "Aevb.run").
    static member Validate(es: EarlyStopping, who: string) =
        if es.Window < 1 then raise (ArgumentOutOfRangeException("EarlyStopping.Window", es.Window, sprintf "%s: EarlyStopping.Window must be at least 1, got %d." who es.Window))
        if es.Patience < 1 then raise (ArgumentOutOfRangeException("EarlyStopping.Patience", es.Patience, sprintf "%s: EarlyStopping.Patience must be at least 1, got %d." who es.Patience))
        if not (es.RelTol >= 0.0 && Double.IsFinite es.RelTol) then
            raise (ArgumentOutOfRangeException("EarlyStopping.RelTol", es.RelTol, sprintf "%s: the early-stopping tolerance must be finite and non-negative, got %g." who es.RelTol))

/// How an AEVB run goes (Aevb.run): epochs of shuffled minibatches (plain data, saved with the trained
/// networks; progress, cancellation and checkpoints are
/// the RunContext's). AevbRunOptions.Validate holds every rule.
type AevbRunOptions =
    { Epochs: int
      BatchSize: int
      Shuffle: bool
      EarlyStopping: EarlyStopping option }

    static member Create(epochs: int, batchSize: int) =
        { Epochs = epochs; BatchSize = batchSize; Shuffle = true; EarlyStopping = None }

    /// Checks the settings: raises ArgumentException naming the bad one.
    static member Validate(o: AevbRunOptions) =
        if o.Epochs < 1 then invalidArg "opts" (sprintf "Aevb.run: Epochs must be at least 1, got %d." o.Epochs)
        if o.BatchSize < 1 then invalidArg "opts" (sprintf "Aevb.run: BatchSize must be at least 1, got %d." o.BatchSize)
        match o.EarlyStopping with
        | Some es -> EarlyStopping.Validate(es, "Aevb.run")
        | None -> ()

/// What a run is doing at a progress report.
[<RequireQualifiedAccess>]
type RunPhase =
    /// Optimizing a loss (SVI, AEVB).
    | Training
    /// MCMC adaptation (not kept).
    | Warmup
    /// MCMC draws (kept after thinning).
    | Sampling

/// Progress of a run (of one chain, for MCMC), reported every RunContext.ProgressEvery steps and at the last.
type RunProgress =
    { /// The chain (0 for SVI and AEVB).
      Chain: int
      /// Steps done (MCMC: iterations, warmup included).
      Step: int
      TotalSteps: int
      Phase: RunPhase
      /// The loss of the last step (SVI, AEVB); NaN for MCMC.
      Loss: float
      /// The epoch of the last step (AEVB); 0 otherwise.
      Epoch: int
      /// The current step size (MCMC); NaN otherwise.
      StepSize: float
      /// Divergent transitions so far, warmup and sampling (MCMC); 0 otherwise.
      Divergences: int
      /// Time since this process started (or resumed) the run.
      Elapsed: TimeSpan
      /// Estimated time to the end, from the steps this process ran.
      Eta: TimeSpan }

/// When a run writes its checkpoint: every `EverySteps` steps, or when `EverySeconds` have passed since the
/// last write, whichever comes first (at least one of them), and when it is cancelled. The file is written
/// atomically (a temporary file in the same folder, then a rename). MCMC writes one file per chain,
/// `Checkpoint.chainPath Path k`.
type CheckpointPolicy =
    { Path: string
      EverySteps: int option
      EverySeconds: float option }

    /// A checkpoint at `path` every `steps` steps.
    static member Every(path: string, steps: int) = { Path = path; EverySteps = Some steps; EverySeconds = None }

/// The machinery of a run, apart from its settings: cancellation, progress, messages and checkpoints.
/// Runs take it beside their (plain-data) options; `RunContext.Default` cancels never, reports nothing and
/// writes messages to the console.
[<NoEquality; NoComparison>]
type RunContext =
    { /// Checked before every step: a cancelled run raises OperationCanceledException after its current step
      /// (with a checkpoint written first when Checkpoint is set).
      Cancellation: CancellationToken
      /// Called every ProgressEvery steps and at the last (MCMC: from the chains' threads, concurrently when parallel).
      OnProgress: (RunProgress -> unit) option
      ProgressEvery: int
      /// Where messages go (MCMC's cost estimate and warnings).
      Log: string -> unit
      Checkpoint: CheckpointPolicy option }

    /// No cancellation, no progress (every 100 steps when OnProgress is set), messages to the console, no checkpoints.
    static member Default =
        { Cancellation = CancellationToken.None; OnProgress = None; ProgressEvery = 100; Log = (fun s -> Console.WriteLine s); Checkpoint = None }

    /// As Default, but writing no messages.
    static member Quiet = { RunContext.Default with Log = ignore }

    /// Checks the context (the one place its rules live): raises ArgumentOutOfRangeException naming the setting.
    static member Validate(c: RunContext) =
        if c.ProgressEvery < 1 then
            raise (ArgumentOutOfRangeException("ProgressEvery", c.ProgressEvery, sprintf "Run: ProgressEvery must be at least 1, got %d." c.ProgressEvery))
        match c.Checkpoint with
        | Some p ->
            if String.IsNullOrWhiteSpace p.Path then invalidArg "Checkpoint" "Run: the checkpoint path is empty."
            match p.EverySteps, p.EverySeconds with
            | None, None -> invalidArg "Checkpoint" "Run: a checkpoint policy needs EverySteps or EverySeconds."
            | Some n, _ when n < 1 -> raise (ArgumentOutOfRangeException("Checkpoint.EverySteps", n, sprintf "Run: Checkpoint.EverySteps must be at least 1, got %d." n))
            | _, Some s when not (s > 0.0) -> raise (ArgumentOutOfRangeException("Checkpoint.EverySeconds", s, sprintf "Run: Checkpoint.EverySeconds must be positive, got %g." s))
            | _ -> ()
        | None -> ()

/// A run as a fold: `Init` makes the first state, `Step` goes from step i to i+1 (a function of i and the
/// state only, so a resumed run repeats it bit for bit), `Finish` makes the result. `Workspace` is the
/// run's scratch (buffers, caches), made once and never saved; `Save`/`Load` write and read a state in a
/// checkpoint. What a step reports (`'I`) is not carried forward.
[<NoEquality; NoComparison>]
type RunKernel<'W, 'S, 'I, 'R> =
    { /// The kind of run in messages and checkpoints ("svi", "aevb", "nuts").
      Name: string
      /// The settings that make the run what it is; a checkpoint of another run is refused.
      Identity: string
      Workspace: unit -> 'W
      Init: 'W -> 'S
      Step: 'W -> int -> 'S -> 'S * 'I
      Finish: 'W -> 'S -> 'R
      /// The loss of a step, for early stopping and progress (None: the run has no loss).
      Loss: ('I -> float) option
      /// Fills in the algorithm's part of a progress report.
      Report: 'S -> 'I -> RunProgress -> RunProgress
      Save: 'S -> JsonNode
      Load: 'W -> JsonNode -> 'S }

/// The end of a run: the kernel's result, the loss of every step (resumed runs included), whether early
/// stopping ended it, and the steps done.
[<NoEquality; NoComparison>]
type RunOutcome<'R> = { Result: 'R; Losses: float[]; StoppedEarly: bool; Steps: int }

/// Checkpoint files: a header line with the format and the SHA-256 of the rest, then the JSON payload.
/// Numbers are stored as their bits (base64), so a resumed run continues from exactly the saved state.
[<RequireQualifiedAccess>]
module Checkpoint =

    [<Literal>]
    let Format = "FunctionalBayes.checkpoint/1"

    /// The file of chain k for a checkpoint path.
    let chainPath (path: string) (k: int) = sprintf "%s.chain%d" path k

    let internal bad (path: string) (what: string) : 'a =
        raise (InvalidDataException(sprintf "Checkpoint %s cannot be read: %s. Delete it to start the run afresh." path what))

    /// Doubles by their bits.
    let floats (a: float[]) : JsonNode = nonNull (JsonValue.Create(Convert.ToBase64String(MemoryMarshal.AsBytes(ReadOnlySpan<float>(a))))) :> JsonNode

    let readFloats (n: JsonNode) : float[] =
        let bytes = Convert.FromBase64String(n.GetValue<string>())
        if bytes.Length % 8 <> 0 then invalidOp "a float array of the wrong length"
        MemoryMarshal.Cast<byte, float>(ReadOnlySpan<byte>(bytes)).ToArray()

    /// One double by its bits.
    let scalar (v: float) : JsonNode = JsonValue.Create(BitConverter.DoubleToInt64Bits v) :> JsonNode

    let readScalar (n: JsonNode) : float = BitConverter.Int64BitsToDouble(n.GetValue<int64>())

    let ints (a: int[]) : JsonNode = JsonArray(a |> Array.map (fun v -> JsonValue.Create v :> JsonNode)) :> JsonNode

    let readInts (n: JsonNode) : int[] = n.AsArray() |> Seq.map (fun x -> (nonNull x).GetValue<int>()) |> Seq.toArray

    let key (k: RngKey) : JsonNode = JsonArray(JsonValue.Create k.K0, JsonValue.Create k.K1) :> JsonNode

    let readKey (n: JsonNode) : RngKey =
        let a = n.AsArray()
        RngKey((nonNull a.[0]).GetValue<uint32>(), (nonNull a.[1]).GetValue<uint32>())

    let tensor (t: Tensor) : JsonNode =
        let o = JsonObject()
        o.["dtype"] <- JsonValue.Create(match t.Dtype with Float64 -> "f64" | Float32 -> "f32" | Dtype.Int32 -> "i32" | Bool -> "bool")
        o.["shape"] <- ints t.Shape
        o.["data"] <- floats (Tensor.toArray (Tensor.detach t))
        o :> JsonNode

    let readTensor (n: JsonNode) : Tensor =
        let t = Tensor.create (readInts (nonNull n.["shape"])) (readFloats (nonNull n.["data"]))
        match (nonNull n.["dtype"]).GetValue<string>() with
        | "f64" -> t
        | "f32" -> Tensor.cast Float32 t
        | "i32" -> Tensor.cast Dtype.Int32 t
        | "bool" -> Tensor.cast Bool t
        | other -> invalidOp (sprintf "unknown dtype '%s'" other)

    let tensors (ts: Tensor[]) : JsonNode = JsonArray(ts |> Array.map tensor) :> JsonNode

    let readTensors (n: JsonNode) : Tensor[] = n.AsArray() |> Seq.map (fun x -> readTensor (nonNull x)) |> Seq.toArray

    let tensorMap (m: Map<string, Tensor>) : JsonNode =
        let o = JsonObject()
        for KeyValue (k, v) in m do o.[k] <- tensor v
        o :> JsonNode

    let readTensorMap (n: JsonNode) : Map<string, Tensor> =
        n.AsObject() |> Seq.map (fun kv -> kv.Key, readTensor (nonNull kv.Value)) |> Map.ofSeq

    let private sha256 (s: string) = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes s))

    /// Writes a payload atomically: a temporary file beside the target, flushed to disk, then renamed over it.
    let write (path: string) (payload: JsonObject) =
        let text = payload.ToJsonString(JsonSerializerOptions(WriteIndented = false))
        let full = Path.GetFullPath path
        match Path.GetDirectoryName full with
        | null | "" -> ()
        | dir -> Directory.CreateDirectory dir |> ignore
        let tmp = full + ".tmp"
        do
            use fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None)
            let bytes = Encoding.UTF8.GetBytes(sprintf "%s sha256=%s\n%s" Format (sha256 text) text)
            fs.Write(bytes, 0, bytes.Length)
            fs.Flush true
        File.Move(tmp, full, true)

    /// Reads a payload written by `write`; raises InvalidDataException naming the file when it is not a
    /// checkpoint, is of another format or does not match its checksum (a torn or edited file).
    let read (path: string) : JsonObject =
        if not (File.Exists path) then raise (FileNotFoundException(sprintf "Checkpoint: no checkpoint file at %s." path, path))
        let all = File.ReadAllText path
        let nl = all.IndexOf '\n'
        if nl < 0 then bad path "it has no header line"
        let header = all.Substring(0, nl)
        let text = all.Substring(nl + 1)
        let prefix = Format + " sha256="
        if not (header.StartsWith(prefix, StringComparison.Ordinal)) then bad path (sprintf "it is not a %s file" Format)
        if header.Substring prefix.Length <> sha256 text then bad path "its checksum does not match its contents (the file is damaged)"
        try
            match JsonNode.Parse text with
            | :? JsonObject as o -> o
            | _ -> bad path "its payload is not a JSON object"
        with :? JsonException as e -> bad path (sprintf "its payload is not JSON (%s)" e.Message)

/// The one run loop: every algorithm (SVI, AEVB, each MCMC chain) is a RunKernel folded here.
[<RequireQualifiedAccess>]
module Run =

    /// The plateau rule of EarlyStopping over the losses so far.
    let plateaued (es: EarlyStopping) (losses: ResizeArray<float>) =
        let w = es.Window
        if losses.Count < 2 * w then false
        else
            let median (a: float[]) = let s = Array.sort a in s.[s.Length / 2]
            let cur = median (losses.GetRange(losses.Count - w, w).ToArray())
            let prev = median (losses.GetRange(losses.Count - 2 * w, w).ToArray())
            (prev - cur) / max (abs prev) 1e-12 < es.RelTol

    /// The estimated time left after `done` of `total` steps in `elapsed` (of the steps run in this process).
    let eta (elapsed: TimeSpan) (doneHere: int) (left: int) =
        if doneHere <= 0 then TimeSpan.Zero else TimeSpan.FromTicks(int64 (float elapsed.Ticks / float doneHere * float left))

    let private writeCheckpoint (path: string) (k: RunKernel<'W, 'S, 'I, 'R>) (step: int) (stale: int) (losses: ResizeArray<float>) (st: 'S) =
        let o = JsonObject()
        o.["kernel"] <- JsonValue.Create k.Name
        o.["identity"] <- JsonValue.Create k.Identity
        o.["step"] <- JsonValue.Create step
        o.["stale"] <- JsonValue.Create stale
        o.["losses"] <- Checkpoint.floats (losses.ToArray())
        o.["state"] <- k.Save st
        Checkpoint.write path o

    /// Folds the kernel for `total` steps under the context: from Init, or from the checkpoint at
    /// `resumeFrom`. Cancellation raises OperationCanceledException before the next step (after writing a
    /// checkpoint when the context has a policy); early stopping ends the run at a window's end.
    let fold (ctx: RunContext) (earlyStopping: EarlyStopping option) (total: int) (resumeFrom: string option) (k: RunKernel<'W, 'S, 'I, 'R>) : RunOutcome<'R> =
        RunContext.Validate ctx
        let ct = ctx.Cancellation
        ct.ThrowIfCancellationRequested()
        let w = k.Workspace()
        let losses = ResizeArray<float>()
        let mutable st = Unchecked.defaultof<'S>
        let mutable i = 0
        let mutable stale = 0
        match resumeFrom with
        | None -> st <- k.Init w
        | Some path ->
            let o = Checkpoint.read path
            let field (name: string) = match o.[name] with null -> Checkpoint.bad path (sprintf "it has no '%s'" name) | v -> v
            try
                let name = (field "kernel").GetValue<string>()
                if name <> k.Name then Checkpoint.bad path (sprintf "it is a checkpoint of a %s run, not of a %s run" name k.Name)
                if (field "identity").GetValue<string>() <> k.Identity then
                    Checkpoint.bad path (sprintf "it was written by a %s run with other settings or data (%s); resume with the settings it was made with" k.Name ((field "identity").GetValue<string>()))
                i <- (field "step").GetValue<int>()
                stale <- (field "stale").GetValue<int>()
                losses.AddRange(Checkpoint.readFloats (field "losses"))
                if i < 0 || i > total then Checkpoint.bad path (sprintf "its step %d is outside the run's 0..%d" i total)
                st <- k.Load w (field "state")
            with
            | :? InvalidDataException -> reraise ()
            | e -> Checkpoint.bad path (sprintf "its state does not decode (%s)" e.Message)
        let start = i
        let sw = Stopwatch.StartNew()
        let mutable lastWrite = sw.Elapsed.TotalSeconds
        let mutable stopped = false
        let checkpoint () =
            match ctx.Checkpoint with
            | Some p ->
                writeCheckpoint p.Path k i stale losses st
                lastWrite <- sw.Elapsed.TotalSeconds
            | None -> ()
        let every = ctx.ProgressEvery
        while i < total && not stopped do
            if ct.IsCancellationRequested then
                checkpoint ()
                raise (OperationCanceledException(sprintf "%s: the run was cancelled after step %d of %d." k.Name i total, ct))
            let next, info = k.Step w i st
            st <- next
            i <- i + 1
            let loss = match k.Loss with Some f -> (let l = f info in losses.Add l; l) | None -> nan
            match ctx.OnProgress with
            | Some report when i % every = 0 || i = total ->
                let el = sw.Elapsed
                report (k.Report st info
                            { Chain = 0; Step = i; TotalSteps = total; Phase = RunPhase.Training; Loss = loss; Epoch = 0; StepSize = nan
                              Divergences = 0; Elapsed = el; Eta = eta el (i - start) (total - i) })
            | _ -> ()
            match earlyStopping with
            | Some es when k.Loss.IsSome && i % es.Window = 0 ->
                if plateaued es losses then stale <- stale + 1 else stale <- 0
                if stale >= es.Patience then stopped <- true
            | _ -> ()
            match ctx.Checkpoint with
            | Some p when i < total && not stopped ->
                let dueSteps = match p.EverySteps with Some n -> i % n = 0 | None -> false
                let dueTime = match p.EverySeconds with Some s -> sw.Elapsed.TotalSeconds - lastWrite >= s | None -> false
                if dueSteps || dueTime then checkpoint ()
            | _ -> ()
        { Result = k.Finish w st; Losses = losses.ToArray(); StoppedEarly = stopped; Steps = i }
