namespace FunctionalBayes.Cluster

open System
open System.Collections.Generic
open System.IO
open System.Threading
open System.Threading.Tasks
open Orleans
open Orleans.Runtime

/// How a job runs on the cluster.
type JobSettings =
    { /// The shared folder every silo reads and writes: results/ and checkpoints/.
      Folder: string
      /// Fits run at once on one silo (its cores, less what else runs there).
      SlotsPerSilo: int
      /// How often the client polls the fits' status and the cluster's silos.
      PollInterval: TimeSpan
      /// A call to a silo that takes longer is treated as unanswered (the silo may have died); tried again later.
      CallTimeout: TimeSpan
      /// Attempts per fit before the job gives it up (a fit's silo died this many times).
      MaxAttempts: int }

    /// One fit per silo at once, polls every 200 ms, calls time out after 15 s, 5 attempts per fit.
    static member Create(folder: string) =
        { Folder = folder; SlotsPerSilo = 1; PollInterval = TimeSpan.FromMilliseconds 200.0; CallTimeout = TimeSpan.FromSeconds 15.0; MaxAttempts = 5 }

    /// These settings with `n` fits at once per silo.
    member s.WithSlotsPerSilo(n: int) = { s with SlotsPerSilo = n }

    /// These settings polling every `interval`.
    member s.WithPollInterval(interval: TimeSpan) = { s with PollInterval = interval }

    /// These settings with calls to silos timing out after `timeout`.
    member s.WithCallTimeout(timeout: TimeSpan) = { s with CallTimeout = timeout }

    /// These settings with `n` attempts per fit.
    member s.WithMaxAttempts(n: int) = { s with MaxAttempts = n }

    /// Checks the settings (the one place their rules live).
    static member Validate(s: JobSettings) =
        if String.IsNullOrWhiteSpace s.Folder then invalidArg "Folder" "JobSettings: the shared folder is empty."
        if s.SlotsPerSilo < 1 then raise (ArgumentOutOfRangeException("SlotsPerSilo", s.SlotsPerSilo, "JobSettings: SlotsPerSilo must be at least 1."))
        if s.MaxAttempts < 1 then raise (ArgumentOutOfRangeException("MaxAttempts", s.MaxAttempts, "JobSettings: MaxAttempts must be at least 1."))
        if not (s.PollInterval > TimeSpan.Zero) then raise (ArgumentOutOfRangeException("PollInterval", s.PollInterval, "JobSettings: PollInterval must be positive."))
        if not (s.CallTimeout > TimeSpan.Zero) then raise (ArgumentOutOfRangeException("CallTimeout", s.CallTimeout, "JobSettings: CallTimeout must be positive."))

/// The end of one fit of a job.
type FitResult =
    { FitId: string
      /// Done, Failed or Cancelled.
      State: FitState
      /// Its posterior file (Done), to read with Fit.load.
      Path: string
      /// Attempts it took (more than 1 when a silo running it died).
      Attempts: int
      /// The silo that finished it.
      Silo: string
      Message: string }

/// The end of a job: one result per fit, in the order the fits were given.
type JobResult =
    { Fits: FitResult[] }

    /// Whether every fit is done.
    member r.AllDone = r.Fits |> Array.forall (fun f -> f.State = FitState.Done)

/// One fit as the client follows it (mutated by the job's loop only).
type private Tracked =
    { Spec: FitSpec
      mutable Attempt: int
      mutable Grain: IFitGrain option
      mutable Silo: SiloAddress option
      mutable Last: FitStatus
      mutable Result: FitResult option }

/// A job running on a cluster: its fits are placed on the silos (SlotsPerSilo at a time on each), polled
/// for progress, and re-run on another silo (a new attempt, from its checkpoint) when theirs leaves the
/// cluster or forgets them. Results go to the shared folder once each (FitRunner).
[<Sealed>]
type ClusterJob private (id: string, completion: Task<JobResult>, cancel: CancellationTokenSource, snapshot: unit -> FitStatus[]) =

    static let hintKey = "PlacementHintKey" // IPlacementDirector.PlacementHintKey: place an activation on this silo

    static let tryCall (timeout: TimeSpan) (call: unit -> Task<'T>) : Task<'T option> =
        task {
            try
                let! v = call().WaitAsync(timeout)
                return Some v
            with _ -> return None
        }

    /// The job's id (it names the fits' grains).
    member _.Id = id

    /// The last status of every fit, in the order given.
    member _.Snapshot() : FitStatus[] = snapshot ()

    /// Asks every running fit to stop after its current step (each writes a checkpoint, so a new job with
    /// the same fits and folder resumes them); the job then ends with the unfinished fits Cancelled.
    member _.Cancel() = cancel.Cancel()

    /// Completes when every fit is done, failed or cancelled.
    member _.Completion: Task<JobResult> = completion

    /// Waits for the job's end and returns its results.
    member _.CollectAsync() : Task<JobResult> = completion

    /// Submits fits to the cluster the client is connected to. Fits whose result is in the folder already
    /// are not run again. `progress` (may be null) hears each fit's status when it changes.
    static member Submit(client: IClusterClient, fits: IEnumerable<FitSpec>, settings: JobSettings, progress: IProgress<FitStatus> | null) : ClusterJob =
        JobSettings.Validate settings
        let specs = Seq.toArray fits
        for f in specs do JobFolder.checkId f.Id
        match specs |> Array.countBy (fun f -> f.Id) |> Array.tryFind (fun (_, n) -> n > 1) with
        | Some (dup, _) -> invalidArg "fits" (sprintf "ClusterJob.Submit: the fit id '%s' is given twice; ids name result files and must be unique." dup)
        | None -> ()
        let folder = Path.GetFullPath settings.Folder
        Directory.CreateDirectory folder |> ignore
        let id = Guid.NewGuid().ToString "N"
        let cts = new CancellationTokenSource()
        let tracked =
            specs |> Array.map (fun s -> { Spec = s; Attempt = 1; Grain = None; Silo = None; Last = FitStatus(s.Id, FitState.Pending, 0, 0, "", ""); Result = None })
        let gate = obj ()
        let report (t: Tracked) (s: FitStatus) =
            let changed = lock gate (fun () -> let c = t.Last <> s in t.Last <- s; c)
            if changed then (match progress with null -> () | p -> p.Report s)
        let finish (t: Tracked) (state: FitState) (silo: string) (message: string) =
            t.Result <- Some { FitId = t.Spec.Id; State = state; Path = JobFolder.resultPath folder t.Spec.Id; Attempts = t.Attempt; Silo = silo; Message = message }
            t.Grain <- None
            report t (FitStatus(t.Spec.Id, state, t.Last.TotalSteps, t.Last.TotalSteps, silo, message))
        let lose (t: Tracked) (why: string) =
            // Best effort: an attempt thought lost but still running stops (its result would be discarded anyway).
            match t.Grain with
            | Some g -> g.Cancel().ContinueWith(fun (_: Task) -> ()) |> ignore
            | None -> ()
            t.Grain <- None
            t.Silo <- None
            t.Attempt <- t.Attempt + 1
            if t.Attempt > settings.MaxAttempts then
                t.Attempt <- settings.MaxAttempts
                finish t FitState.Failed "" (sprintf "given up after %d attempts; the last: %s" settings.MaxAttempts why)
            else report t (FitStatus(t.Spec.Id, FitState.Pending, t.Last.Step, t.Last.TotalSteps, "", why))
        let mgmt = client.GetGrain<IManagementGrain>(0L)
        let loop () : Task<JobResult> =
            task {
                for t in tracked do
                    if File.Exists(JobFolder.resultPath folder t.Spec.Id) then finish t FitState.Done "" "its result was written already"
                while tracked |> Array.exists (fun t -> t.Result.IsNone) do
                    if cts.IsCancellationRequested then
                        for t in tracked do
                            match t.Result, t.Grain with
                            | None, Some g -> let! _ = tryCall settings.CallTimeout (fun () -> task { do! g.Cancel() }) in ()
                            | _ -> ()
                        for t in tracked do
                            if t.Result.IsNone then finish t FitState.Cancelled "" "the job was cancelled"
                    else
                        match! tryCall settings.CallTimeout (fun () -> mgmt.GetHosts(true)) with
                        | None -> ()
                        | Some hosts ->
                            let active = hosts.Keys |> Seq.toArray |> Array.sortBy (fun s -> s.ToParsableString())
                            // Poll the running fits together.
                            let running = tracked |> Array.filter (fun t -> t.Result.IsNone && t.Grain.IsSome)
                            let! statuses = running |> Array.map (fun t -> tryCall settings.CallTimeout (fun () -> t.Grain.Value.Status())) |> Task.WhenAll
                            for t, s in Array.zip running statuses do
                                let silo = t.Silo.Value
                                if not (Array.contains silo active) then lose t (sprintf "its silo %s left the cluster" (silo.ToString()))
                                else
                                    match s with
                                    | None -> () // no answer in time: asked again at the next poll, or lost when the silo is declared dead
                                    | Some s ->
                                        match s.State with
                                        | FitState.Pending -> lose t "its activation was lost"
                                        | FitState.Running -> report t s
                                        | FitState.Done when File.Exists(JobFolder.resultPath folder t.Spec.Id) -> finish t FitState.Done s.Silo s.Message
                                        | FitState.Done -> finish t FitState.Failed s.Silo "the silo reported it done, but its result file is not in the shared folder (is the folder shared by every silo?)"
                                        | FitState.Failed -> finish t FitState.Failed s.Silo s.Message
                                        | FitState.Cancelled -> finish t FitState.Cancelled s.Silo s.Message
                                        | other -> finish t FitState.Failed s.Silo (sprintf "unknown state %A" other)
                            // Start waiting fits on the silos with free slots, least loaded first.
                            let load = Dictionary<SiloAddress, int>()
                            for s in active do load.[s] <- 0
                            for t in tracked do
                                match t.Result, t.Silo with
                                | None, Some s when load.ContainsKey s -> load.[s] <- load.[s] + 1
                                | _ -> ()
                            for t in tracked do
                                if t.Result.IsNone && t.Grain.IsNone then
                                    match active |> Array.filter (fun s -> load.[s] < settings.SlotsPerSilo) |> Array.sortBy (fun s -> load.[s]) |> Array.tryHead with
                                    | None -> ()
                                    | Some silo ->
                                        let g = client.GetGrain<IFitGrain>(sprintf "%s/%s/%d" id t.Spec.Id t.Attempt)
                                        RequestContext.Set(hintKey, silo)
                                        let! started = tryCall settings.CallTimeout (fun () -> g.Start(t.Spec, folder))
                                        RequestContext.Remove hintKey |> ignore
                                        // Unanswered in time, the start may still have happened: the polls tell
                                        // (Pending: it did not, and the fit is lost and re-run), not a second start.
                                        t.Grain <- Some g
                                        t.Silo <- Some silo
                                        load.[silo] <- load.[silo] + 1
                                        match started with
                                        | Some s -> report t s
                                        | None -> ()
                        do! Task.Delay settings.PollInterval
                return { Fits = tracked |> Array.map (fun t -> t.Result.Value) }
            }
        let snapshot () = lock gate (fun () -> tracked |> Array.map (fun t -> t.Last))
        new ClusterJob(id, Task.Run<JobResult>(Func<Task<JobResult>>(loop)), cts, snapshot)

/// Jobs from F#: submit, watch, cancel, collect.
[<RequireQualifiedAccess>]
module Job =

    /// Submits fits to the cluster; `onProgress` hears each fit's status when it changes (from the job's thread).
    let submit (client: IClusterClient) (settings: JobSettings) (onProgress: FitStatus -> unit) (fits: FitSpec seq) : ClusterJob =
        ClusterJob.Submit(client, fits, settings, { new IProgress<FitStatus> with member _.Report s = onProgress s })

    /// The last status of every fit.
    let watch (job: ClusterJob) : FitStatus[] = job.Snapshot()

    /// Stops the job's running fits after their current step (checkpointed).
    let cancel (job: ClusterJob) = job.Cancel()

    /// Waits for the job's end.
    let collect (job: ClusterJob) : Async<JobResult> = Async.AwaitTask job.Completion
