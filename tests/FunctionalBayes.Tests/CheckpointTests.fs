/// Checkpoint and resume: a run stopped (cancelled in this process, or killed with SIGKILL in a child
/// process) and resumed from its checkpoint gives the same bits as the uninterrupted run, for SVI, AEVB
/// and NUTS (stopped in warmup).
module FunctionalBayes.Tests.CheckpointTests

open System
open System.Diagnostics
open System.IO
open System.Threading
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors

/// The runs under test, shared by the tests and the child process.
module Runs =

    let data =
        let x = Rng.normal (Rng.key 1UL) [| 60 |]
        let y = 2.0 * x + 0.3 * Rng.normal (Rng.key 2UL) [| 60 |] + 0.5
        Map [ "x", x; "y", y ]

    let regression (d: Map<string, Tensor>) = model {
        let! a = Model.sample "a" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
        let! b = Model.sample "b" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
        let! s = Model.sample "s" (HalfNormal (Tensor.scalar 1.0))
        return! Model.observe "y" (Normal (a + b * d.["x"], s)) (d.TryFind "y") }

    let sviOpts = { FitOptions.Default with Seed = 4UL; Run = { SviRunOptions.ForSteps 240 with BatchSize = Some 16 } }

    let bits (xs: float[]) = xs |> Array.map BitConverter.DoubleToInt64Bits

    /// The losses and final parameters of the SVI fit, as bits.
    let svi (ctx: RunContext) (resumeFrom: string option) =
        let _, r =
            match resumeFrom with
            | None -> Fit.viRunIn ctx sviOpts regression data
            | Some p -> Fit.viResume ctx sviOpts regression data p
        bits (Array.append r.Losses (r.State.Unconstrained |> Array.collect Tensor.toArray))

    let mcmcOpts = { McmcOptions.Default with Chains = 2; Warmup = 60; Samples = 20; Seed = 6UL; Parallel = false }

    /// Every chain's draws, adapted step size and metric and sampler statistics, as bits.
    let nutsWith (o: McmcOptions) (ctx: RunContext) (resumeFrom: string option) =
        let p =
            match resumeFrom with
            | None -> Fit.mcmcIn ctx o regression data
            | Some path -> Fit.mcmcResume ctx o regression data path
        let r = Posterior.samplesPart "nuts" p
        r.Flat.Stats
        |> Array.mapi (fun k s ->
            let metric =
                match s.Metric with
                | DiagonalMetric v -> v
                | DenseMetric (a, _) -> Seq.cast<float> a |> Seq.toArray
                | LowRankMetric (sc, u, lam) -> Array.concat [ sc; u; lam ]
            Array.concat [ r.Flat.Positions.[k]; [| s.AdaptedStepSize |]; metric; s.StepSize; s.Energy; s.AcceptStat; s.Lp; Array.map float s.TreeDepth ])
        |> Array.concat
        |> bits

    let nuts = nutsWith mcmcOpts

    /// The low-rank Fisher adapter: its checkpoint holds the foreground and background draws.
    let nutsFisher = nutsWith { mcmcOpts with Adaptation = MetricAdaptation.FisherLowRank LowRankSettings.Default }

    let engine () =
        Aevb.create 2 6 (Aevb.mlpFor Family.normal 6 [ 5 ] 2 Float64) (Aevb.mlpFor Family.bernoulli 2 [ 5 ] 6 Float64)
                    AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-2) 1 1.0

    let images = Tensor.cast Float64 (Tensor.gtScalar (Rng.uniform (Rng.key 2UL) [| 64; 6 |]) 0.5)

    /// The losses and final network parameters of a small VAE, as bits.
    let aevb (ctx: RunContext) (resumeFrom: string option) =
        let e = engine ()
        let st0 = Aevb.init e (Rng.key 8UL)
        let opts = AevbRunOptions.Create(12, 16)
        let r =
            match resumeFrom with
            | None -> Aevb.runIn ctx ignore e (Rng.key 9UL) st0 images opts
            | Some p -> Aevb.resume ctx ignore e (Rng.key 9UL) st0 images opts p
        let ps (m: Map<string, Tensor>) = m |> Map.toArray |> Array.collect (snd >> Tensor.toArray)
        bits (Array.concat [ r.Losses; ps r.State.EncParams; ps r.State.DecParams ])

    let byName (name: string) =
        match name with
        | "svi" -> svi
        | "nuts" -> nuts
        | "nutsFisher" -> nutsFisher
        | "aevb" -> aevb
        | other -> failwithf "unknown run '%s'" other

/// The child process: runs `name` with a checkpoint at `path` every few steps, slowed down so that the
/// parent can kill it in mid-run. Started as `<test assembly> --child name path` (see Common/Main.fs).
module Child =

    let main (args: string[]) : int =
        let name, path = args.[0], args.[1]
        let ctx =
            { RunContext.Quiet with
                Checkpoint = Some (CheckpointPolicy.Every(path, 10))
                ProgressEvery = 1
                OnProgress = Some (fun _ -> Thread.Sleep 20) }
        Runs.byName name ctx None |> ignore
        0

let private tempPath (what: string) = Path.Combine(Path.GetTempPath(), sprintf "fb-%s-%d.ckpt" what (Random.Shared.Next()))

let private deleteAll (path: string) =
    for f in Directory.GetFiles(nonNull (Path.GetDirectoryName path), nonNull (Path.GetFileName path) + "*") do File.Delete f

/// Cancels the run in this process once `stopAt` steps are done (of chain 0), with the checkpoint
/// written on cancelling, then resumes it.
let private cancelAndResume (name: string) (stopAt: int) =
    let run = Runs.byName name
    let straight = run RunContext.Quiet None
    let path = tempPath name
    use cts = new CancellationTokenSource()
    let ctx =
        { RunContext.Quiet with
            Cancellation = cts.Token
            ProgressEvery = 1
            Checkpoint = Some (CheckpointPolicy.Every(path, 100000))
            OnProgress = Some (fun p -> if p.Chain = 0 && p.Step = stopAt then cts.Cancel()) }
    Expect.throwsT<OperationCanceledException> (fun () -> run ctx None |> ignore) "the run is cancelled"
    let resumed = run { RunContext.Quiet with Checkpoint = ctx.Checkpoint } (Some path)
    deleteAll path
    Expect.equal resumed straight (sprintf "%s: resumed after step %d gives the same bits" name stopAt)

/// Starts the run in a child process, kills it (SIGKILL) once it has written a checkpoint, and resumes.
let private killAndResume (name: string) (checkpointFile: string -> string) =
    let path = tempPath name
    let self = Reflection.Assembly.GetExecutingAssembly().Location
    let host = match Process.GetCurrentProcess().MainModule with null -> "dotnet" | m -> m.FileName
    let psi = ProcessStartInfo(host, UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true)
    // under `dotnet X.dll` the host is dotnet and the assembly its argument; an apphost runs the assembly itself
    if Path.GetFileNameWithoutExtension host = "dotnet" then psi.ArgumentList.Add self
    for a in [ "--child"; name; path ] do psi.ArgumentList.Add a
    use child = nonNull (Process.Start psi)
    let sw = Stopwatch.StartNew()
    while not (File.Exists (checkpointFile path)) && not child.HasExited && sw.Elapsed.TotalSeconds < 60.0 do Thread.Sleep 20
    Expect.isFalse child.HasExited (sprintf "the child was still running when its first checkpoint appeared (%s)" (child.StandardError.ReadToEnd()))
    child.Kill()   // SIGKILL on Unix
    child.WaitForExit()
    let o = Checkpoint.read (checkpointFile path)
    let step = (nonNull o.["step"]).GetValue<int>()
    Expect.isGreaterThan step 0 "the checkpoint is from the middle of the run"
    let resumed = Runs.byName name RunContext.Quiet (Some path)
    let straight = Runs.byName name RunContext.Quiet None
    deleteAll path
    Expect.equal resumed straight (sprintf "%s: killed at step %d and resumed gives the same bits" name step)

[<Tests>]
let tests =
    testList "Checkpoint" [
        testCase "SVI cancelled mid-run resumes to the same bits" <| fun () -> cancelAndResume "svi" 37
        testCase "AEVB cancelled mid-epoch resumes to the same bits" <| fun () -> cancelAndResume "aevb" 21
        testCase "NUTS cancelled in warmup resumes to the same bits" <| fun () -> cancelAndResume "nuts" 25
        testCase "SVI killed (SIGKILL) in a child process resumes to the same bits" <| fun () -> killAndResume "svi" id
        testCase "AEVB killed (SIGKILL) in a child process resumes to the same bits" <| fun () -> killAndResume "aevb" id
        testCase "NUTS killed (SIGKILL) in warmup in a child process resumes to the same bits" <| fun () ->
            killAndResume "nuts" (fun p -> Checkpoint.chainPath p 0)
        testCase "NUTS with the Fisher low-rank adapter cancelled in warmup resumes to the same bits" <| fun () -> cancelAndResume "nutsFisher" 25
        testCase "NUTS with the Fisher low-rank adapter killed (SIGKILL) in warmup resumes to the same bits" <| fun () ->
            killAndResume "nutsFisher" (fun p -> Checkpoint.chainPath p 0)
        testCase "a damaged checkpoint is refused, naming the file" <| fun () ->
            let path = tempPath "damaged"
            use cts = new CancellationTokenSource()
            let ctx = { RunContext.Quiet with Cancellation = cts.Token; ProgressEvery = 1; Checkpoint = Some (CheckpointPolicy.Every(path, 5))
                                              OnProgress = Some (fun p -> if p.Step = 12 then cts.Cancel()) }
            Expect.throwsT<OperationCanceledException> (fun () -> Runs.svi ctx None |> ignore) "cancelled"
            let text = File.ReadAllText path
            let i = text.IndexOf "\"step\":12"
            Expect.isGreaterThan i 0 "the checkpoint holds the step"
            File.WriteAllText(path, text.Replace("\"step\":12", "\"step\":13"))
            let ex = Expect.throwsC (fun () -> Runs.svi RunContext.Quiet (Some path) |> ignore) id
            Expect.isTrue (ex :? InvalidDataException) (sprintf "InvalidDataException, got %s" (ex.GetType().Name))
            Expect.stringContains ex.Message path "names the file"
            Expect.stringContains ex.Message "checksum" "says why"
            File.WriteAllText(path, "not a checkpoint")
            let ex = Expect.throwsC (fun () -> Runs.svi RunContext.Quiet (Some path) |> ignore) id
            Expect.stringContains ex.Message path "names the file"
            File.Delete path
        testCase "a checkpoint of other settings is refused" <| fun () ->
            let path = tempPath "other"
            use cts = new CancellationTokenSource()
            let ctx = { RunContext.Quiet with Cancellation = cts.Token; ProgressEvery = 1; Checkpoint = Some (CheckpointPolicy.Every(path, 5))
                                              OnProgress = Some (fun p -> if p.Step = 7 then cts.Cancel()) }
            Expect.throwsT<OperationCanceledException> (fun () -> Fit.viRunIn ctx Runs.sviOpts Runs.regression Runs.data |> ignore) "cancelled"
            let other = { Runs.sviOpts with Run = { Runs.sviOpts.Run with BatchSize = Some 8 } }
            let ex = Assert.Throws<InvalidDataException>(fun () -> Fit.viResume RunContext.Quiet other Runs.regression Runs.data path |> ignore)
            Expect.stringContains ex.Message path "names the file"
            File.Delete path
        testCase "run settings are plain data with structural equality" <| fun () ->
            Expect.equal { McmcOptions.Default with Seed = 3UL; MaxDeltaH = 500.0 } { McmcOptions.Default with Seed = 3UL; MaxDeltaH = 500.0 } "MCMC"
            Expect.notEqual { McmcOptions.Default with Gradient = McmcGradient.Tape } McmcOptions.Default "MCMC gradient"
            Expect.equal (SviRunOptions.ForEpochs(3, 10)) (SviRunOptions.ForEpochs(3, 10)) "SVI"
            Expect.equal (AevbRunOptions.Create(3, 10)) (AevbRunOptions.Create(3, 10)) "AEVB"
            Expect.equal { FitOptions.Default with Seed = 2UL } { FitOptions.Default with Seed = 2UL } "Fit"
        testCase "options are saved in the posterior file and load as an equal record" <| fun () ->
            let path = tempPath "posterior"
            let o =
                { Runs.sviOpts with
                    Run = { Runs.sviOpts.Run with Steps = Some 20; EarlyStopping = Some { Window = 5; RelTol = 1e-3; Patience = 2 } }
                    Optimizer = Some (Optimizer.AdamW (Schedule.CosineDecay (0.02, 20, 0.1), 0.9, 0.99, 1e-8, 1e-4))
                    ClipNorm = Some 5.0; Init = InitUniform 1.5; Particles = 2 }
            Fit.save path (Fit.vi o Runs.regression Runs.data)
            let q = Fit.load path Runs.regression Runs.data None
            Expect.equal (Posterior.guidePart "test" q).Options (Some o) "FitOptions round-trip"
            let mo = { Runs.mcmcOpts with Warmup = 20; Samples = 5; MaxDeltaH = 800.0; Gradient = McmcGradient.Tape; Init = InitFeasible; Adaptation = MetricAdaptation.Dense }
            for a in [ MetricAdaptation.Stan; MetricAdaptation.FisherDiagonal; MetricAdaptation.FisherLowRank { Gamma = 1e-4; Cutoff = 3.0 } ] do
                let mo = { mo with Adaptation = a }
                Fit.save path (Fit.mcmcIn RunContext.Quiet mo Runs.regression Runs.data)
                let q = Posterior.samplesPart "test" (Fit.load path Runs.regression Runs.data None)
                Expect.equal q.Options (Some mo) (sprintf "McmcOptions round-trip with %s" a.Text)
            Fit.save path (Fit.mcmcIn RunContext.Quiet mo Runs.regression Runs.data)
            let qm = Fit.load path Runs.regression Runs.data None
            Expect.equal (Posterior.samplesPart "test" qm).Options (Some mo) "McmcOptions round-trip"
            File.Delete path
        testCase "given init values compare by value, so options holding them are equal records" <| fun () ->
            let values (a: float) = InitValues (Map [ "a", Tensor.scalar a; "s", Tensor.ofArray [| 0.5; 2.0 |] ])
            Expect.equal (values 1.0) (values 1.0) "the same values in other tensors"
            Expect.equal (hash (values 1.0)) (hash (values 1.0)) "and the same hash"
            Expect.notEqual (values 1.0) (values 1.5) "another value"
            Expect.notEqual (InitValues (Map [ "a", Tensor.scalar 1.0 ])) (InitValues (Map [ "a", Tensor.toFloat32 (Tensor.scalar 1.0) ])) "another dtype"
            Expect.notEqual (InitValues (Map [ "a", Tensor.ofArray [| 1.0; 2.0 |] ])) (InitValues (Map [ "a", Tensor.create [| 2; 1 |] [| 1.0; 2.0 |] ])) "another shape"
            Expect.notEqual (InitValues (Map [ "a", Tensor.scalar 1.0 ])) (InitValues (Map [ "b", Tensor.scalar 1.0 ])) "another site"
            Expect.notEqual (InitUniform 2.0) InitFeasible "another strategy"
            Expect.equal { FitOptions.Default with Init = values 1.0 } { FitOptions.Default with Init = values 1.0 } "FitOptions"
            Expect.equal { McmcOptions.Default with Init = values 1.0 } { McmcOptions.Default with Init = values 1.0 } "McmcOptions"
        testCase "FitOptions with every setting changed load from the posterior file as an equal record" <| fun () ->
            let path = tempPath "allfit"
            let d = FitOptions.Default
            let o: FitOptions =
                { AutoGuide = AutoGuideKind.AutoLowRankMultivariateNormal (Some 2)
                  LearningRate = 0.1 + 0.2 // 0.30000000000000004: every bit must come back
                  Schedule = LrSchedule.WarmupCosine
                  Optimizer = Some (Optimizer.ClippedAdam (Schedule.WarmupCosine (0.03, 8, 0.25, 10.0, 1.0 / 3.0), 0.85, 0.995, 1e-7, 3.5, 0.999))
                  Particles = 2
                  Seed = UInt64.MaxValue - 5UL // above 2^53: no trip through a double
                  Init = InitValues (Map [ "a", Tensor.scalar 0.25; "s", Tensor.scalar (1.0 / 7.0) ])
                  ClipNorm = Some (1.0 / 3.0)
                  Run = { SviRunOptions.Steps = None; Epochs = Some 2; BatchSize = Some 16; Shuffle = false; EarlyStopping = Some { Window = 3; RelTol = 1e-3 / 7.0; Patience = 4 } } }
            // the test covers every field: each differs from the default (but Steps, which excludes Epochs: the
            // user-guide test below saves a Steps)
            Expect.isTrue
                (o.AutoGuide <> d.AutoGuide && o.LearningRate <> d.LearningRate && o.Schedule <> d.Schedule && o.Optimizer <> d.Optimizer
                 && o.Particles <> d.Particles && o.Seed <> d.Seed && o.Init <> d.Init && o.ClipNorm <> d.ClipNorm
                 && o.Run.Epochs <> d.Run.Epochs && o.Run.BatchSize <> d.Run.BatchSize
                 && o.Run.Shuffle <> d.Run.Shuffle && o.Run.EarlyStopping <> d.Run.EarlyStopping) "every setting changed"
            let p = Fit.vi o Runs.regression Runs.data
            Expect.equal (Posterior.guidePart "fit" p).Options (Some o) "the fit records its options"
            Fit.save path p
            for given in [ None; Some o ] do
                let q = Fit.load path Runs.regression Runs.data given
                Expect.equal (Posterior.guidePart "test" q).Options (Some o) "an equal record"
                Expect.notEqual (Posterior.guidePart "test" q).Options (Some { o with Seed = o.Seed - 1UL }) "not equal to another"
            File.Delete path
        testCase "a user guide is an argument of the fit: its options round-trip, and loading asks for the guide" <| fun () ->
            let path = tempPath "userguide"
            let guide =
                Guide.ofModel "mine" (model {
                    let! la = Model.param "a_loc" (Tensor.scalar 0.0) Constraint.Real
                    let! lb = Model.param "b_loc" (Tensor.scalar 0.0) Constraint.Real
                    let! ls = Model.param "s_loc" (Tensor.scalar 0.0) Constraint.Real
                    let! _ = Model.sample "a" (Normal (la, Tensor.scalar 0.1))
                    let! _ = Model.sample "b" (Normal (lb, Tensor.scalar 0.1))
                    do! Model.sample "s" (LogNormal (ls, Tensor.scalar 0.1)) |> Model.map ignore })
            let o = { FitOptions.Default with Run = SviRunOptions.ForSteps 30; LearningRate = 0.05; Seed = 9UL; Init = InitFeasible; Particles = 2 }
            let p = Fit.viWithGuide guide o Runs.regression Runs.data
            let g = Posterior.guidePart "fit" p
            Expect.equal g.Guide.Origin GuideOrigin.User "the user's guide is fitted"
            Expect.equal g.Options (Some o) "with these options"
            Fit.save path p
            let ex = Assert.Throws<ArgumentException>(fun () -> Fit.load path Runs.regression Runs.data (Some o) |> ignore)
            Expect.stringContains ex.Message path "names the file"
            Expect.stringContains ex.Message "Fit.loadWithGuide" "says what to call"
            let q = Posterior.guidePart "test" (Fit.loadWithGuide guide path Runs.regression Runs.data)
            Expect.equal q.Options (Some o) "an equal record"
            Expect.equal q.Guide.Name "mine" "the given guide"
            Expect.sequenceEqual (Map.keys q.Params) (Map.keys g.Params) "the guide's parameters"
            for KeyValue (k, v) in g.Params do Expect.sequenceEqual (Tensor.toArray q.Params.[k]) (Tensor.toArray v) k
            Expect.sequenceEqual q.Losses g.Losses "the losses"
            // another guide's parameters are refused, naming the file
            let other = Guide.ofModel "other" (model {
                let! l = Model.param "other_loc" (Tensor.scalar 0.0) Constraint.Real
                let! _ = Model.sample "a" (Normal (l, Tensor.scalar 0.1))
                let! _ = Model.sample "b" (Normal (l, Tensor.scalar 0.1))
                do! Model.sample "s" (LogNormal (l, Tensor.scalar 0.1)) |> Model.map ignore })
            let bad = Assert.Throws<InvalidDataException>(fun () -> Fit.loadWithGuide other path Runs.regression Runs.data |> ignore)
            Expect.stringContains bad.Message path "names the file"
            Expect.stringContains bad.Message "other_loc" "names the missing parameter"
            File.Delete path
        testCase "McmcOptions with every setting changed load from the posterior file as an equal record" <| fun () ->
            let path = tempPath "allmcmc"
            let d = McmcOptions.Default
            let o: McmcOptions =
                { Chains = 2; Warmup = 20; Samples = 5; Thin = 2; Seed = UInt64.MaxValue - 3UL; TargetAccept = 0.1 + 0.8; MaxTreeDepth = 7
                  MaxDeltaH = 1000.0 / 3.0; Adaptation = MetricAdaptation.FisherLowRank { Gamma = 1e-4 / 3.0; Cutoff = 2.5 }
                  FindInitialStepSize = false; InitialStepSize = 0.3; Init = InitValues (Map [ "b", Tensor.scalar 1.5 ]); Parallel = false
                  Gradient = McmcGradient.Tape }
            Expect.isTrue
                (o.Chains <> d.Chains && o.Warmup <> d.Warmup && o.Samples <> d.Samples && o.Thin <> d.Thin && o.Seed <> d.Seed
                 && o.TargetAccept <> d.TargetAccept && o.MaxTreeDepth <> d.MaxTreeDepth && o.MaxDeltaH <> d.MaxDeltaH
                 && o.Adaptation <> d.Adaptation && o.FindInitialStepSize <> d.FindInitialStepSize && o.InitialStepSize <> d.InitialStepSize
                 && o.Init <> d.Init && o.Parallel <> d.Parallel && o.Gradient <> d.Gradient) "every setting changed"
            Fit.save path (Fit.mcmcIn RunContext.Quiet o Runs.regression Runs.data)
            let q = Posterior.samplesPart "test" (Fit.load path Runs.regression Runs.data None)
            Expect.equal q.Options (Some o) "an equal record"
            File.Delete path
        testCase "one row rule: arrays agree on their rows, scalars are constants of every row" <| fun () ->
            let d = Map [ "x", Tensor.ofArray [| 1.0; 2.0; 3.0 |]; "c", Tensor.scalar 2.0 ]
            Expect.equal (Data.rows d) 3 "the arrays' rows"
            Expect.equal (Data.rows (Map [ "c", Tensor.scalar 2.0 ])) 1 "scalars only: one row"
            Expect.equal (Tensor.toScalar (Data.take (Tensor.ofInts [| 2; 0 |]) d).["c"]) 2.0 "take keeps a scalar"
            let ex = Assert.Throws<ArgumentException>(fun () -> Data.rows (Map [ "x", Tensor.zeros [| 3; 2 |]; "y", Tensor.zeros [| 4 |] ]) |> ignore)
            Expect.stringContains ex.Message "[3, 2]" "names one shape"
            Expect.stringContains ex.Message "[4]" "names the other"
        testCase "warmup is generic over the kernel: static HMC is tuned by the same fold" <| fun () ->
            let p = LogDensity.potential (Rng.key 0UL) (Runs.regression Runs.data)
            let ev = (GradientSource.tape p).Create()
            let kernel = Hmc.tunable ev 8 NutsParameters.DefaultMaxDeltaH
            let ws = { WarmupSettings.Default with NumWarmup = 60 }
            let stages = WindowSchedule.stages (WindowSchedule.build 60)
            let mutable st = Warmup.init ws kernel (Rng.key 1UL) (Hmc.init ev (Array.zeroCreate ev.Dim))
            for i in 0 .. 59 do st <- fst (Warmup.step ws stages kernel (Rng.foldIn (Rng.key 2UL) i) st)
            let a = Warmup.finish st
            Expect.equal st.Iteration 60 "every warmup iteration ran"
            Expect.isTrue (Double.IsFinite a.StepSize && a.StepSize > 0.0) "an adapted step size"
            match a.Metric with
            | DiagonalMetric v -> Expect.isTrue (v |> Array.exists (fun x -> x <> 1.0)) "the metric was estimated from the draws"
            | DenseMetric _ | LowRankMetric _ -> failtest "diagonal expected"
        testCase "MaxDeltaH is an option: a tiny threshold turns transitions divergent" <| fun () ->
            let divergences (maxDeltaH: float) =
                let o = { Runs.mcmcOpts with MaxDeltaH = maxDeltaH; Warmup = 10; Samples = 10; FindInitialStepSize = false }
                let r = Posterior.samplesPart "nuts" (Fit.mcmcIn RunContext.Quiet o Runs.regression Runs.data)
                r.Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length)
            // any rise of the energy along a trajectory is a divergence at 1e-12; Stan's 1000 sees none here
            Expect.isGreaterThan (divergences 1e-12) (divergences NutsParameters.DefaultMaxDeltaH) "the threshold is used"
            let ex = Assert.Throws<ArgumentOutOfRangeException>(fun () -> Mcmc.validate { McmcOptions.Default with MaxDeltaH = 0.0 })
            Expect.equal ex.ParamName "MaxDeltaH" "named"
    ]
