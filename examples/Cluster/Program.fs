/// Simulation-based calibration of eight schools on an Orleans cluster: the refits run on 2 silo processes
/// (this program started again as `silo`), then once more in this process, one after another; the program
/// prints the throughput ratio and writes the rank histograms (PNG).
///   dotnet run --project examples/Cluster -- [--refits 200] [--small] [--out DIR]
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

let registry =
    ModelRegistry.empty
    |> ModelRegistry.mcmc "eight-schools" eightSchools { McmcOptions.Default with Chains = 1; Warmup = 300; Samples = 100; Parallel = false }
    |> ModelRegistry.data "sbc" (fun arg -> let _, _, d = truth (int arg) in d)

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

let main (argv: string[]) =
    let arg (name: string) = argv |> Array.tryFindIndex ((=) name) |> Option.map (fun i -> argv.[i + 1])
    let refits = if Array.contains "--small" argv then 20 else defaultArg (arg "--refits" |> Option.map int) 200
    let out = defaultArg (arg "--out") (Path.Combine(Path.GetTempPath(), "fb-cluster-sbc"))
    if Directory.Exists out then Directory.Delete(out, true)
    let fits = [ for i in 0 .. refits - 1 -> FitSpec(sprintf "sbc%03d" i, "eight-schools", sprintf "sbc:%d" i, "", uint64 i) ]
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
    let clusterSeconds, result =
        try
            use host = (ClusterClient.ConnectLocalAsync ports.[2..3]).Result
            // Two fits queued per silo (no idle core between a fit's end and the next poll), polled every 50 ms.
            let settings = { JobSettings.Create(Path.Combine(out, "cluster")) with SlotsPerSilo = 2; PollInterval = TimeSpan.FromMilliseconds 50.0 }
            // Warm-up (JIT in the silo processes), not timed; the one-process run below gets one too.
            let warm = [ for i in 0 .. 3 -> FitSpec(sprintf "warm%d" i, "eight-schools", sprintf "sbc:%d" (10000 + i), "", 7UL) ]
            (Job.submit (ClusterClient.Of host) { settings with Folder = Path.Combine(out, "warm") } ignore warm).Completion.Wait()
            let sw = Stopwatch.StartNew()
            let job = Job.submit (ClusterClient.Of host) settings ignore fits
            let r = job.Completion.Result
            sw.Elapsed.TotalSeconds, r
        finally
            for p in silos do p.StandardInput.Close(); p.WaitForExit 10000 |> ignore
    let failed = result.Fits |> Array.filter (fun f -> f.State <> FitState.Done)
    if failed.Length > 0 then failwithf "%d refits failed; the first: %s" failed.Length failed.[0].Message
    Serial.run registry (Path.Combine(out, "warm-serial")) [ FitSpec("warm", "eight-schools", "sbc:10000", "", 7UL) ] |> ignore
    let sw = Stopwatch.StartNew()
    Serial.run registry (Path.Combine(out, "serial")) fits |> ignore
    let serialSeconds = sw.Elapsed.TotalSeconds
    printfn "SBC of eight schools, %d NUTS refits: one process %.1f s, 2 silo processes %.1f s, throughput ratio %.2fx" refits serialSeconds clusterSeconds (serialSeconds / clusterSeconds)
    printfn "{\"name\":\"cluster_sbc_throughput_ratio_2_silos\",\"value\":%.3f,\"unit\":\"x\"}" (serialSeconds / clusterSeconds)
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
