/// Jobs on a cluster give the serial results bit for bit, each fit once: on Orleans' in-process test cluster
/// (3 silos) and on 3 silo processes on loopback, one of them killed (SIGKILL) mid-job.
module FunctionalBayes.Cluster.Tests.JobTests

open System
open System.Collections.Concurrent
open System.Diagnostics
open System.IO
open System.Threading
open System.Threading.Tasks
open Expecto
open Orleans.TestingHost
open FunctionalBayes.Cluster
open FunctionalBayes.Cluster.Tests.TestModels

let private tempFolder (name: string) =
    Path.Combine(Path.GetTempPath(), sprintf "fb-cluster-%s-%s" name (Guid.NewGuid().ToString "N"))

/// NUTS fits and (every third) SVI fits of the regression, each on its own simulated data and seed.
let private fits (n: int) (nutsOptions: string) =
    [ for i in 0 .. n - 1 ->
        if i % 3 = 2 then FitSpec(sprintf "fit%02d" i, "regression-vi", sprintf "regression:%d" i, "", uint64 (100 + i))
        else FitSpec(sprintf "fit%02d" i, "regression", sprintf "regression:%d" i, nutsOptions, uint64 (100 + i)) ]

/// A posterior file's contents without its wall-clock times ("seconds", "warmupSeconds", ...): doubles are written to round-trip,
/// so equal text is equal bits.
let private numbersOf (path: string) =
    let rec strip (n: Text.Json.Nodes.JsonNode | null) =
        match n with
        | :? Text.Json.Nodes.JsonObject as o ->
            for k in Seq.toArray o |> Array.map (fun kv -> kv.Key) do
                if k.EndsWith("econds", StringComparison.Ordinal) then o.Remove k |> ignore
            for kv in Seq.toArray o do strip kv.Value
        | :? Text.Json.Nodes.JsonArray as a -> for x in a do strip x
        | _ -> ()
    let n = Text.Json.Nodes.JsonNode.Parse(File.ReadAllText path)
    strip n
    (nonNull n).ToJsonString()

/// Every fit done once: the results folder holds exactly one posterior file per fit (no stray temporary
/// files) and each has the serial run's numbers bit for bit.
let private expectSerialResults (fits: FitSpec list) (folder: string) (r: JobResult) =
    for f in r.Fits do Expect.equal f.State FitState.Done (sprintf "fit %s: %s" f.FitId f.Message)
    Expect.sequenceEqual (r.Fits |> Array.map (fun f -> f.FitId)) (fits |> List.map (fun f -> f.Id)) "one result per fit, in order"
    let files = Directory.GetFiles(Path.Combine(folder, "results")) |> Array.map Path.GetFileName |> Array.sort
    Expect.sequenceEqual files (fits |> List.map (fun f -> f.Id + ".posterior.json") |> List.sort) "exactly the fits' posterior files"
    let serial = Serial.run registry (tempFolder "serial") fits
    for f, s in List.zip (List.ofArray r.Fits) (List.ofArray serial) do
        Expect.isTrue (numbersOf f.Path = numbersOf s) (sprintf "fit %s: the cluster's posterior file has the serial run's numbers (bits)" f.FitId)

/// A state's unconstrained parameters, flattened.
let private flatState (st: FunctionalBayes.SviState) = st.Unconstrained |> Array.collect FunctionalBayes.Tensors.Tensor.toArray

/// IProgress that calls back on the reporting thread (Progress<T> would post to a captured context).
let private syncProgress (f: 'T -> unit) = { new IProgress<'T> with member _.Report v = f v }

[<Tests>]
let tests =
    testSequenced <| testList "ClusterJobs" [

        testCase "3 in-process silos (TestingHost): results equal serial runs bit for bit, progress reported" <| fun () ->
            // The test cluster writes its log files under the current folder: keep them out of the repository.
            let cwd = Environment.CurrentDirectory
            Environment.CurrentDirectory <- Directory.CreateDirectory(tempFolder "logs").FullName
            let builder = InProcessTestClusterBuilder(3s)
            // Paced: each fit lasts at least 15 reports x 20 ms, so the 200 ms polls see it running on any machine.
            builder.ConfigureSilo(fun _ silo -> addPacedRunner silo FitRunnerSettings.Default (TimeSpan.FromMilliseconds 20.0)) |> ignore
            let cluster = builder.Build()
            cluster.DeployAsync().Wait()
            try
                let fits = fits 6 ""
                let folder = tempFolder "inproc"
                let seen = ConcurrentBag<FitStatus>()
                let job = ClusterJob.Submit(cluster.Client, fits, JobSettings.Create folder, syncProgress seen.Add)
                Expect.isTrue (job.Completion.Wait(TimeSpan.FromSeconds 60.0)) "the job ends within a minute"
                let r = job.Completion.Result
                expectSerialResults fits folder r
                Expect.isTrue (seen |> Seq.exists (fun s -> s.State = FitState.Running && s.Step > 0 && s.Step <= s.TotalSteps)) "running fits report their steps"
                Expect.isGreaterThan (r.Fits |> Array.map (fun f -> f.Silo) |> Array.distinct |> Array.length) 1 "the fits ran on more than one silo"
            finally
                cluster.DisposeAsync().AsTask().Wait()
                Environment.CurrentDirectory <- cwd

        testCase "a model registered with a guide of its own fits with that guide; its file loads with Fit.loadWithGuide" <| fun () ->
            let folder = tempFolder "userguide"
            try
                let path = (Serial.run registry folder [ FitSpec("g1", "regression-vi-guide", "regression:3", "steps=30", 5UL) ]).[0]
                let p = FunctionalBayes.Fit.loadWithGuide userGuide path regression (regressionData 3UL)
                let g = FunctionalBayes.Posterior.guidePart "test" p
                Expect.equal g.Guide.Name "regression guide" "the registered guide"
                Expect.equal (g.Params |> Map.keys |> Seq.sort |> List.ofSeq) [ "a_loc"; "b_loc"; "s_loc" ] "its parameters"
                let o = g.Options.Value
                Expect.equal (o.Seed, o.Run.Steps) (5UL, Some 30) "the fit's seed and Options"
                Expect.throwsT<ArgumentException> (fun () -> FunctionalBayes.Fit.load path regression (regressionData 3UL) None |> ignore) "the file needs the guide"
            finally
                if Directory.Exists folder then Directory.Delete(folder, true)

        testCase "data-parallel SVI, 3 shards each held by its own runner: the one-process fit within 1e-12 relative" <| fun () ->
            // One FitRunner per shard, as on three silos (each keeps its shard's rows); the coordinator sums.
            let runners = Array.init 3 (fun _ -> FitRunner registry)
            let gradient k r = Task.Run(fun () -> runners.[k].Gradient r)
            let shards = [| for k in 0 .. 2 -> sprintf "regression-shard:7/%d/3" k |]
            let r = (DataParallelSvi.runWith gradient registry "regression-vi" "steps=80" 7UL shards).Result
            let one = DataParallelSvi.serial registry "regression-vi" "steps=80" 7UL (regressionData 7UL)
            let flat (st: FunctionalBayes.SviState) = st.Unconstrained |> Array.collect FunctionalBayes.Tensors.Tensor.toArray
            let a, b = flat r.State, flat one
            Expect.equal a.Length b.Length "the same parameters"
            for x, y in Array.zip a b do
                Expect.isLessThanOrEqual (abs (x - y)) (1e-12 * max (abs y) 1.0) (sprintf "parameter %.17g vs one process %.17g" x y)
            Expect.isLessThanOrEqual (abs (r.Losses.[r.Losses.Length - 1] - one.Loss)) (1e-12 * abs one.Loss) "the last loss"
            Expect.equal r.State.Step one.Step "the same number of steps"
            Expect.notEqual a (flat (DataParallelSvi.serial registry "regression-vi" "steps=1" 7UL (regressionData 7UL))) "the fit moved the parameters"
            let onlyFirst = (DataParallelSvi.runWith gradient registry "regression-vi" "steps=80" 7UL shards.[0..0]).Result
            Expect.notEqual (flat onlyFirst.State) a "the other shards' rows count"

        testCase "data-parallel SVI, 3 shards on 3 silos (loopback, in this process): the one-process fit within 1e-12 relative" <| fun () ->
            let ports = freePorts 6
            let silo i =
                ClusterSilo.StartLocalAsync(registry, { LocalSiloSettings.Primary with SiloPort = ports.[i]; GatewayPort = ports.[3 + i]; PrimarySiloPort = ports.[0] })
            let silos = ResizeArray [ (silo 0).Result ]
            silos.AddRange([ silo 1; silo 2 ] |> Task.WhenAll |> fun t -> t.Result)
            try
                use client = (ClusterClient.ConnectLocalAsync ports.[3..5]).Result
                let shards = [| for k in 0 .. 2 -> sprintf "regression-shard:7/%d/3" k |]
                let r = (DataParallelSvi.run (ClusterClient.Of client) registry "regression-vi" "steps=40" 7UL shards).Result
                let one = DataParallelSvi.serial registry "regression-vi" "steps=40" 7UL (regressionData 7UL)
                let flat (st: FunctionalBayes.SviState) = st.Unconstrained |> Array.collect FunctionalBayes.Tensors.Tensor.toArray
                for x, y in Array.zip (flat r.State) (flat one) do
                    Expect.isLessThanOrEqual (abs (x - y)) (1e-12 * max (abs y) 1.0) (sprintf "parameter %.17g vs one process %.17g" x y)
            finally
                for s in Seq.rev silos do s.StopAsync().Wait(TimeSpan.FromSeconds 10.0) |> ignore; s.Dispose()

        testCase "data-parallel SVI with per-shard minibatches, 3 shards on 3 silos (loopback): the one-process fit with the same batches within 1e-12 relative" <| fun () ->
            let ports = freePorts 6
            let silo i =
                ClusterSilo.StartLocalAsync(registry, { LocalSiloSettings.Primary with SiloPort = ports.[i]; GatewayPort = ports.[3 + i]; PrimarySiloPort = ports.[0] })
            let silos = ResizeArray [ (silo 0).Result ]
            silos.AddRange([ silo 1; silo 2 ] |> Task.WhenAll |> fun t -> t.Result)
            try
                use client = (ClusterClient.ConnectLocalAsync ports.[3..5]).Result
                let shards = [| for k in 0 .. 2 -> sprintf "regression-shard:7/%d/3" k |] // 13, 13 and 14 rows
                let r = (DataParallelSvi.runBatched (ClusterClient.Of client) registry "regression-vi" "steps=40" 7UL 5 shards).Result
                let one = DataParallelSvi.serialBatched registry "regression-vi" "steps=40" 7UL 5 (shards |> Array.map (ModelRegistry.resolveData registry))
                let a, b = flatState r.State, flatState one
                Expect.equal a.Length b.Length "the same parameters"
                for x, y in Array.zip a b do
                    Expect.isLessThanOrEqual (abs (x - y)) (1e-12 * max (abs y) 1.0) (sprintf "parameter %.17g vs one process %.17g" x y)
                Expect.isLessThanOrEqual (abs (r.Losses.[r.Losses.Length - 1] - one.Loss)) (1e-12 * abs one.Loss) "the last loss"
                let every = DataParallelSvi.serial registry "regression-vi" "steps=40" 7UL (regressionData 7UL)
                Expect.isGreaterThan (Array.map2 (fun x y -> abs (x - y)) a (flatState every) |> Array.max) 1e-6 "minibatches are not every row"
            finally
                for s in Seq.rev silos do s.StopAsync().Wait(TimeSpan.FromSeconds 10.0) |> ignore; s.Dispose()

        testCase "per-shard minibatches: deterministic, a batch of every shard row gives the every-row fit, the other shards' batches count" <| fun () ->
            let runners = Array.init 4 (fun _ -> FitRunner registry)
            let gradient k r = Task.Run(fun () -> runners.[k].Gradient r)
            let shards = [| for k in 0 .. 3 -> sprintf "regression-shard:7/%d/4" k |] // 10 rows each
            let data = shards |> Array.map (ModelRegistry.resolveData registry)
            let run batch = (DataParallelSvi.runWithBatched gradient registry "regression-vi" "steps=60" 7UL batch shards).Result
            let r4, again = run 4, run 4
            Expect.equal (flatState r4.State) (flatState again.State) "the same batches, whatever order the shards answer in (bits)"
            Expect.equal (flatState r4.State) (flatState (DataParallelSvi.serialBatched registry "regression-vi" "steps=60" 7UL 4 data)) "the one-process fit with the same batches (bits: the same sum order)"
            // Batch = shard rows: every row each step (permuted), likelihood scale 10/10: the every-row fit to rounding.
            let all = flatState (DataParallelSvi.serialBatched registry "regression-vi" "steps=60" 7UL 10 data)
            let every = flatState (DataParallelSvi.serial registry "regression-vi" "steps=60" 7UL (regressionData 7UL))
            for x, y in Array.zip all every do
                Expect.isLessThanOrEqual (abs (x - y)) (1e-12 * max (abs y) 1.0) (sprintf "parameter %.17g vs every row %.17g" x y)
            let onlyFirst = DataParallelSvi.serialBatched registry "regression-vi" "steps=60" 7UL 4 data.[0..0]
            Expect.notEqual (flatState onlyFirst) (flatState r4.State) "the other shards' batches count"
            // The batches: distinct rows of the shard, drawn from the step key and the shard index only.
            let key = FunctionalBayes.Tensors.Rng.key 3UL
            let idx (k: int) = ShardBatch.indices key k 10 4 |> FunctionalBayes.Tensors.Tensor.toArray
            Expect.equal (idx 1) (idx 1) "the same key and shard: the same rows"
            Expect.equal (idx 1 |> Array.distinct |> Array.length) 4 "rows without replacement"
            Expect.isTrue (idx 1 |> Array.forall (fun i -> i >= 0.0 && i < 10.0)) "rows of the shard"
            Expect.notEqual (idx 1) (idx 2) "another shard: other rows"

        testCase "per-shard minibatches: a batch size below 1 or above a shard's rows is refused, naming the shard" <| fun () ->
            let runners = Array.init 3 (fun _ -> FitRunner registry)
            let gradient k r = Task.Run(fun () -> runners.[k].Gradient r)
            let shards = [| for k in [ 2; 0; 1 ] -> sprintf "regression-shard:7/%d/3" k |] // 14, 13, 13 rows
            let data = shards |> Array.map (ModelRegistry.resolveData registry)
            let refused (f: unit -> unit) (part: string) =
                let e = Expect.throwsC f id
                let e = match e with :? AggregateException as a -> nonNull a.InnerException | e -> e
                Expect.isTrue (e :? ArgumentOutOfRangeException) (sprintf "ArgumentOutOfRangeException, got %s" (e.GetType().Name))
                Expect.stringContains e.Message part "the message"
            refused (fun () -> DataParallelSvi.serialBatched registry "regression-vi" "steps=5" 7UL 0 data |> ignore) "at least 1"
            refused (fun () -> DataParallelSvi.serialBatched registry "regression-vi" "steps=5" 7UL 14 data |> ignore) "larger than shard 1's 13 rows"
            refused (fun () -> (DataParallelSvi.runWithBatched gradient registry "regression-vi" "steps=5" 7UL 0 shards).Wait()) "at least 1"
            refused (fun () -> (DataParallelSvi.runWithBatched gradient registry "regression-vi" "steps=5" 7UL 15 shards).Wait()) "larger than shard 0's 14 rows"
            refused (fun () -> (DataParallelSvi.runWithBatched gradient registry "regression-vi" "steps=5" 7UL 14 shards).Wait()) "larger than shard 1's 13 rows"

        testCase "3 silo processes, one killed mid-job: every fit completes once, equal to serial" <| fun () ->
            let ports = freePorts 6
            let dll = Reflection.Assembly.GetExecutingAssembly().Location
            let start (i: int) =
                // Paced 5 ms per 10 steps: a NUTS fit (2 chains x 2500 steps) lasts at least 2.5 s on any machine, so
                // the kill lands mid-fit even when the progress that picks the victim arrives late (with 2 ms, a
                // loaded CI once saw the victim's fit finish first: 1 attempt).
                let psi = ProcessStartInfo("dotnet", sprintf "\"%s\" --child silo %d %d %d 0.2 5" dll ports.[i] ports.[3 + i] ports.[0])
                psi.RedirectStandardInput <- true
                psi.RedirectStandardOutput <- true
                psi.UseShellExecute <- false
                let p = nonNull (Process.Start psi)
                p
            let waitStarted (p: Process) =
                // Orleans may log first; the child prints "silo started" once it is up.
                let started =
                    Task.Run(fun () ->
                        let mutable line = p.StandardOutput.ReadLine()
                        while not (isNull line || line = "silo started") do line <- p.StandardOutput.ReadLine()
                        not (isNull line))
                Expect.isTrue (started.Wait(TimeSpan.FromSeconds 60.0) && started.Result) "a silo process starts within a minute"
            let procs = ResizeArray<Process>()
            try
                procs.Add(start 0)
                waitStarted procs.[0]
                procs.Add(start 1)
                procs.Add(start 2)
                waitStarted procs.[1]
                waitStarted procs.[2]
                use host = (ClusterClient.ConnectLocalAsync ports.[3..5]).Result
                let fits = fits 9 "warmup=2000;samples=500"
                let folder = tempFolder "procs"
                let victim = sprintf ":%d" ports.[2]
                let victimFit = TaskCompletionSource<string>()
                let onProgress (s: FitStatus) =
                    // A NUTS fit (the longer ones), so the kill lands before its end.
                    let nuts = fits |> List.exists (fun f -> f.Id = s.FitId && f.Model = "regression")
                    if nuts && s.State = FitState.Running && s.Step > 20 && s.Silo.Contains victim then victimFit.TrySetResult s.FitId |> ignore
                let sw = Stopwatch.StartNew()
                let job = Job.submit (ClusterClient.Of host) (JobSettings.Create folder) onProgress fits
                Expect.isTrue (victimFit.Task.Wait(TimeSpan.FromSeconds 60.0)) "the silo to kill runs a fit"
                let killed = victimFit.Task.Result
                // Kill once the fit has a checkpoint in the shared folder (every 0.2 s), so its re-run resumes.
                let ckpt = JobFolder.checkpointPath folder killed + ".chain0"
                let until = DateTime.UtcNow.AddSeconds 30.0
                while not (File.Exists ckpt) && DateTime.UtcNow < until do Thread.Sleep 20
                procs.[2].Kill() // SIGKILL
                let killedAt = sw.Elapsed
                Expect.isTrue (job.Completion.Wait(TimeSpan.FromSeconds 90.0)) "the job ends within 90 s of the kill"
                printfn "cluster kill test: fit %s killed at %.1f s, job done at %.1f s" killed killedAt.TotalSeconds sw.Elapsed.TotalSeconds
                let r = job.Completion.Result
                expectSerialResults fits folder r
                let rerun = r.Fits |> Array.find (fun f -> f.FitId = killed)
                Expect.isGreaterThan rerun.Attempts 1 "the killed silo's fit ran again on another silo"
                Expect.stringContains rerun.Message "resumed" "the re-run resumed from the fit's checkpoint"
            finally
                for p in procs do
                    if not p.HasExited then
                        p.StandardInput.Close()
                        if not (p.WaitForExit 10000) then p.Kill()
                    p.Dispose()
    ]
