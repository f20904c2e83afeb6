/// Two jobs on an Orleans cluster of 2 silo processes (this program started again as `silo`), each run again in
/// this process, one fit after another, for the throughput ratio:
/// - simulation-based calibration of eight schools (NUTS refits; writes the rank histograms, PNG);
/// - a per-segment BLayers fit: one SVI fit of intercept + adaptive(x) per customer segment, each on its own rows.
///   dotnet run --project examples/Cluster -- [--refits 200] [--segments 50] [--small] [--out DIR]
module FunctionalBayes.Examples.Cluster

open System
open System.Diagnostics
open System.IO
open System.Net
open System.Net.Sockets
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Cluster
open FunctionalBayes.Reporting

let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]

/// Eight schools, non-centred (tau half-normal so that every prior draw is a fit NUTS can do).
let eightSchools (d: Map<string, Tensor>) = model {
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfNormal (Tensor.scalar 5.0))
    let! z = Model.sample "theta_tilde" (Normal (Tensor.zeros [| 8 |], Tensor.ones [| 8 |]))
    return! Model.observe "y" (Normal (mu + tau * z, d.["sigma"])) (d.TryFind "y") }

/// Refit i's truth, drawn from the prior with seed i, and its data.
let truth (i: int) =
    let k = Rng.key (uint64 (1000 + i))
    let k1, k2 = Rng.split k
    let k3, k4 = Rng.split k2
    let mu = 5.0 * Tensor.toScalar (Rng.normal k1 [||])
    let tau = abs (5.0 * Tensor.toScalar (Rng.normal k3 [||]))
    let z = Rng.normal k4 [| 8 |]
    let y = Tensor.scalar mu + Tensor.scalar tau * z + sigma * Rng.normal (Rng.key (uint64 (5000 + i))) [| 8 |]
    mu, tau, Map [ "sigma", sigma; "y", y ]

/// A segment's BLayers model: intercept + adaptive(x) with a Gaussian link.
let segmentModel (d: Map<string, Tensor>) = model {
    let! b = Layers.intercept "b"
    let! lin = Layers.adaptive "x" d.["x"]
    return! Links.gaussian "y" (b + lin) (d.TryFind "y") }

/// Segment s's true coefficients (5 features) and its 2,000 rows, simulated from s.
let segmentTruth (s: int) =
    let k1, k2 = Rng.split (Rng.key (uint64 (70000 + s)))
    let beta = Rng.normal k1 [| 5 |]
    let kx, kn = Rng.split k2
    let x = Rng.normal kx [| 2000; 5 |]
    beta, Map [ "x", x; "y", 0.5 + Tensor.matmul x beta + 0.3 * Rng.normal kn [| 2000 |] ]

let registry =
    ModelRegistry.empty
    |> ModelRegistry.mcmc "eight-schools" eightSchools { McmcOptions.Default with Chains = 1; Warmup = 300; Samples = 100; Parallel = false }
    |> ModelRegistry.data "sbc" (fun arg -> let _, _, d = truth (int arg) in d)
    // Adam at 0.05: at the default 0.01, 1,500 steps leave coefficients up to ~0.1 from the truth.
    |> ModelRegistry.vi "segment" segmentModel { FitOptions.Default with LearningRate = 0.05; Run = { SviRunOptions.ForSteps 1500 with BatchSize = Some 256 } }
    |> ModelRegistry.data "segment" (fun arg -> snd (segmentTruth (int arg)))

let freePorts (n: int) =
    let ls = Array.init n (fun _ -> let l = new TcpListener(IPAddress.Loopback, 0) in l.Start(); l)
    let ports = ls |> Array.map (fun l -> (l.LocalEndpoint :?> IPEndPoint).Port)
    for l in ls do l.Stop()
    ports

/// `silo SILOPORT GATEWAYPORT PRIMARYPORT`: a silo with this registry until standard input closes.
let runSilo (args: string[]) =
    let s = { LocalSiloSettings.Primary with SiloPort = int args.[0]; GatewayPort = int args.[1]; PrimarySiloPort = int args.[2] }
    let host = (ClusterSilo.StartLocalAsync(registry, s)).Result
    Console.Out.WriteLine "silo started"
    Console.Out.Flush()
    Console.In.ReadToEnd() |> ignore
    host.StopAsync().Wait(TimeSpan.FromSeconds 5.0) |> ignore
    0

/// The rank of the truth among the draws of a site (0 .. draws).
let rankOf (path: string) (data: Map<string, Tensor>) (site: string) (value: float) =
    let p = Fit.load path eightSchools data None
    let draws = (Posterior.samplesPart "sbc" p).Draws.[site] |> Tensor.toArray
    draws |> Array.filter (fun d -> d < value) |> Array.length, draws.Length

/// Runs the fits on the cluster (after an untimed warm-up job of `warm`), then one after another in this process
/// (after a warm-up fit); returns the job's result and the two times in seconds.
let timeJob (client: Orleans.IClusterClient) (out: string) (name: string) (warm: FitSpec list) (fits: FitSpec list) =
    // Two fits queued per silo (no idle core between a fit's end and the next poll), polled every 50 ms.
    let settings = { JobSettings.Create(Path.Combine(out, name, "cluster")) with SlotsPerSilo = 2; PollInterval = TimeSpan.FromMilliseconds 50.0 }
    // Warm-up (JIT in the silo processes), not timed; the one-process run below gets one too.
    (Job.submit client { settings with Folder = Path.Combine(out, name, "warm") } ignore warm).Completion.Wait()
    let sw = Stopwatch.StartNew()
    let result = (Job.submit client settings ignore fits).Completion.Result
    let clusterSeconds = sw.Elapsed.TotalSeconds
    let failed = result.Fits |> Array.filter (fun f -> f.State <> FitState.Done)
    if failed.Length > 0 then failwithf "%s: %d fits failed; the first: %s" name failed.Length failed.[0].Message
    Serial.run registry (Path.Combine(out, name, "warm-serial")) [ List.head warm ] |> ignore
    let cpu0 = Process.GetCurrentProcess().TotalProcessorTime
    let sw = Stopwatch.StartNew()
    Serial.run registry (Path.Combine(out, name, "serial")) fits |> ignore
    let wall = sw.Elapsed.TotalSeconds
    // how many cores the one-process run keeps busy: the ceiling on what more processes on this machine can add
    let cores = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds / wall
    printfn "%s, one process: %.1f s wall, %.2f cores busy (CPU time / wall time) of %d" name wall cores Environment.ProcessorCount
    printfn "{\"name\":\"cluster_%s_one_process_cores_busy\",\"value\":%.3f,\"unit\":\"cores\"}" name cores
    result, clusterSeconds, wall

let main (argv: string[]) =
    let arg (name: string) = argv |> Array.tryFindIndex ((=) name) |> Option.map (fun i -> argv.[i + 1])
    let small = Array.contains "--small" argv
    let refits = if small then 20 else defaultArg (arg "--refits" |> Option.map int) 200
    let segments = if small then 10 else defaultArg (arg "--segments" |> Option.map int) 50
    let out = defaultArg (arg "--out") (Path.Combine(Path.GetTempPath(), "fb-cluster-sbc"))
    if Directory.Exists out then Directory.Delete(out, true)
    let fits = [ for i in 0 .. refits - 1 -> FitSpec(sprintf "sbc%03d" i, "eight-schools", sprintf "sbc:%d" i, "", uint64 i) ]
    let segmentFits = [ for s in 0 .. segments - 1 -> FitSpec(sprintf "segment%02d" s, "segment", sprintf "segment:%d" s, "", uint64 s) ]
    // Two silo processes on loopback (this program as `silo`).
    let ports = freePorts 4
    let dll = Reflection.Assembly.GetExecutingAssembly().Location
    let start i =
        let psi = ProcessStartInfo("dotnet", sprintf "\"%s\" silo %d %d %d" dll ports.[i] ports.[2 + i] ports.[0], RedirectStandardInput = true, RedirectStandardOutput = true, UseShellExecute = false)
        let p = nonNull (Process.Start psi)
        let mutable line = p.StandardOutput.ReadLine()
        while not (isNull line || line = "silo started") do line <- p.StandardOutput.ReadLine()
        p
    let silos = [ start 0; start 1 ]
    let (result, clusterSeconds, serialSeconds), (segmentResult, segClusterSeconds, segSerialSeconds) =
        try
            let host = (ClusterClient.ConnectLocalAsync ports.[2..3]).Result
            try
                let client = ClusterClient.Of host
                let warmSbc = [ for i in 0 .. 3 -> FitSpec(sprintf "warm%d" i, "eight-schools", sprintf "sbc:%d" (10000 + i), "", 7UL) ]
                let warmSegments = [ for i in 0 .. 3 -> FitSpec(sprintf "warm%d" i, "segment", sprintf "segment:%d" (10000 + i), "", 7UL) ]
                timeJob client out "sbc" warmSbc fits, timeJob client out "segments" warmSegments segmentFits
            finally
                // stop the client before disposing it: a disposed, still-connected client logs the gateways'
                // last messages as failures
                host.StopAsync().Wait(TimeSpan.FromSeconds 5.0) |> ignore
                host.Dispose()
        finally
            for p in silos do p.StandardInput.Close(); p.WaitForExit 10000 |> ignore
    printfn "SBC of eight schools, %d NUTS refits: one process %.1f s, 2 silo processes %.1f s, throughput ratio %.2fx" refits serialSeconds clusterSeconds (serialSeconds / clusterSeconds)
    printfn "{\"name\":\"cluster_sbc_throughput_ratio_2_silos\",\"value\":%.3f,\"unit\":\"x\"}" (serialSeconds / clusterSeconds)
    printfn "Per-segment BLayers fit, %d segments (SVI, 1500 steps of 256 rows each): one process %.1f s, 2 silo processes %.1f s, throughput ratio %.2fx" segments segSerialSeconds segClusterSeconds (segSerialSeconds / segClusterSeconds)
    printfn "{\"name\":\"cluster_segments_throughput_ratio_2_silos\",\"value\":%.3f,\"unit\":\"x\"}" (segSerialSeconds / segClusterSeconds)
    // Each segment's fitted coefficients against its truth (the posterior mean of the adaptive layer's weights).
    let worst =
        segmentResult.Fits
        |> Array.mapi (fun s f ->
            let beta, d = segmentTruth s
            let p = Fit.load f.Path segmentModel d None
            let w = (Posterior.mean p (Rng.key 1UL) 500).["AdaptiveLayer_x_beta"] |> Tensor.toArray
            Array.map2 (fun a b -> abs (a - b)) w (Tensor.toArray beta) |> Array.max)
        |> Array.max
    printfn "per-segment fits: the largest |posterior mean - true coefficient| over %d segments is %.3f" segments worst
    // Rank histograms: uniform when the sampler is calibrated.
    let ranks site pick =
        result.Fits |> Array.mapi (fun i f -> let mu, tau, d = truth i in rankOf f.Path d site (pick (mu, tau)))
    let bins = 10
    let panelOf site (rs: (int * int)[]) =
        let draws = snd rs.[0]
        let counts = Array.zeroCreate bins
        for r, _ in rs do counts.[min (bins - 1) (r * bins / (draws + 1))] <- counts.[min (bins - 1) (r * bins / (draws + 1))] + 1.0
        let xs = Array.init bins (fun b -> (float b + 0.5) / float bins)
        { Title = sprintf "rank of the true %s" site; XLabel = "rank / (draws + 1)"; YLabel = "refits"; LogY = false; YTicks = [||]
          Series = [ Series.Bars (site, xs, counts, 0.9 / float bins, "#1f77b4")
                     Series.Line ("uniform", [| 0.0; 1.0 |], [| float refits / float bins; float refits / float bins |], "#555555", 1.0) ] }
    let chart =
        { Id = "sbc-ranks"; Title = sprintf "SBC rank histograms, eight schools, %d refits" refits; Columns = 2
          Panels = [ panelOf "mu" (ranks "mu" fst); panelOf "tau" (ranks "tau" snd) ]; Note = None }
    let png = Path.Combine(out, "sbc-ranks.png")
    File.WriteAllBytes(png, Pictures.png chart)
    printfn "rank histograms: %s" png
    0

[<EntryPoint>]
let entry argv = if argv.Length > 0 && argv.[0] = "silo" then runSilo argv.[1..] else main argv
