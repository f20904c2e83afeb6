/// The models the test silos run (in-process and as child processes): a registry in this assembly.
module FunctionalBayes.Cluster.Tests.TestModels

open System
open System.IO
open System.Net
open System.Net.Sockets
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Cluster
open Microsoft.Extensions.DependencyInjection
open Microsoft.Extensions.Hosting
open Microsoft.Extensions.Logging
open Orleans.Hosting

/// Rows of y = 0.5 + 2x + noise simulated from `seed` (the same tensors on every silo).
let regressionData (seed: uint64) =
    let x = Rng.normal (Rng.key seed) [| 40 |]
    let y = 2.0 * x + 0.3 * Rng.normal (Rng.key (seed + 1000UL)) [| 40 |] + 0.5
    Map [ "x", x; "y", y ]

let regression (d: Map<string, Tensor>) = model {
    let! a = Model.sample "a" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
    let! b = Model.sample "b" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
    let! s = Model.sample "s" (HalfNormal (Tensor.scalar 1.0))
    return! Model.observe "y" (Normal (a + b * d.["x"], s)) (d.TryFind "y") }

/// A guide of the regression's own: a normal per latent (log-normal for the scale), its locations learned.
let userGuide =
    let site (name: string) (family: Tensor * Tensor -> Distribution) = model {
        let! loc = Model.param (name + "_loc") (Tensor.scalar 0.0) Constraint.Real
        return! Model.sample name (family (loc, Tensor.scalar 0.1)) }
    Guide.ofModel "regression guide" (model {
        let! _ = site "a" Normal
        let! _ = site "b" Normal
        do! site "s" LogNormal |> Model.map ignore })

let registry =
    ModelRegistry.empty
    |> ModelRegistry.mcmc "regression" regression { McmcOptions.Default with Chains = 2; Warmup = 100; Samples = 50; Parallel = false }
    |> ModelRegistry.vi "regression-vi" regression { FitOptions.Default with Run = { SviRunOptions.ForSteps 150 with BatchSize = Some 10 } }
    |> ModelRegistry.viWithGuide "regression-vi-guide" regression userGuide { FitOptions.Default with Run = SviRunOptions.ForSteps 60; LearningRate = 0.05 }
    |> ModelRegistry.data "regression" (fun arg -> regressionData (UInt64.Parse arg))
    // "SEED/K/S": shard K of S of regression:SEED, consecutive rows.
    |> ModelRegistry.data "regression-shard" (fun arg ->
        match arg.Split '/' |> Array.map int with
        | [| seed; k; s |] ->
            let d = regressionData (uint64 seed)
            let n = Tensor.toArray d.["x"] |> Array.length
            let lo, hi = k * n / s, (k + 1) * n / s
            d |> Map.map (fun _ t -> Tensor.create [| hi - lo |] (Tensor.toArray t).[lo .. hi - 1])
        | _ -> invalidArg "arg" (sprintf "regression-shard: SEED/K/S, got '%s'" arg))

/// Free loopback ports (bound and released at once; another process could take one, unlikely in a test).
let freePorts (n: int) =
    let ls = Array.init n (fun _ -> let l = new TcpListener(IPAddress.Loopback, 0) in l.Start(); l)
    let ports = ls |> Array.map (fun l -> (l.LocalEndpoint :?> IPEndPoint).Port)
    for l in ls do l.Stop()
    ports

/// The registry's runner, paced: each progress report (every 10 steps) waits `pause` before the run goes on.
/// The tests watch fits mid-run (progress, a kill while a fit runs); these fits take milliseconds on a fast
/// machine, so without a floor on their length a 200 ms poll may see none of them running. Pausing changes no
/// number a fit computes.
type PacedRunner(registry: ModelRegistry, settings: FitRunnerSettings, pause: TimeSpan) =
    let inner = FitRunner(registry, settings)
    interface IFitRunner with
        member _.Run(fit, folder, onProgress, cancellation) =
            let paced = Action<int, int>(fun step total -> onProgress.Invoke(step, total); Threading.Thread.Sleep pause)
            inner.Run(fit, folder, paced, cancellation)

/// Adds the registry's runner paced by `pause` to a silo (after AddFunctionalBayes: the last registration wins).
let addPacedRunner (silo: ISiloBuilder) (settings: FitRunnerSettings) (pause: TimeSpan) =
    ClusterSilo.AddFunctionalBayes(silo, registry, settings) |> ignore
    silo.ConfigureServices(fun services -> services.AddSingleton<IFitRunner>(PacedRunner(registry, settings, pause)) |> ignore) |> ignore

/// A silo child process: `--child silo SILOPORT GATEWAYPORT PRIMARYPORT CHECKPOINTSECONDS PAUSEMS`
/// (the runner is paced by PAUSEMS per progress report). It runs until its
/// standard input closes (the test ended or died) or for two minutes at most, so it never outlives a test run.
module Child =
    let main (args: string[]) : int =
        match args with
        | [| "silo"; siloPort; gatewayPort; primaryPort; every; pauseMs |] ->
            // ClusterSilo.StartLocalAsync's host, with the paced runner.
            let builder = Host.CreateApplicationBuilder()
            builder.Logging.SetMinimumLevel(LogLevel.Error) |> ignore
            builder.UseOrleans(fun silo ->
                let primary = if primaryPort = siloPort then null else IPEndPoint(IPAddress.Loopback, int primaryPort)
                silo.UseLocalhostClustering(int siloPort, int gatewayPort, primary) |> ignore
                addPacedRunner silo { CheckpointSeconds = float every } (TimeSpan.FromMilliseconds(float pauseMs))
                ClusterSilo.UseFastFailureDetection silo |> ignore)
            |> ignore
            let host = builder.Build()
            host.StartAsync().GetAwaiter().GetResult()
            Console.Out.WriteLine "silo started"
            Console.Out.Flush()
            let stdinClosed = Threading.Tasks.Task.Run(fun () -> Console.In.ReadToEnd() |> ignore)
            stdinClosed.Wait(TimeSpan.FromMinutes 2.0) |> ignore
            host.StopAsync().Wait(TimeSpan.FromSeconds 5.0) |> ignore
            0
        | _ -> eprintfn "usage: --child silo SILOPORT GATEWAYPORT PRIMARYPORT CHECKPOINTSECONDS PAUSEMS"; 2
