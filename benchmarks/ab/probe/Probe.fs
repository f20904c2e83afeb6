/// The workloads of the A/B comparison (benchmarks/ab/run.sh): `Make name` builds one and returns a function
/// from a count of units (gradients, steps, fits) to the seconds they took. Built once against each side's
/// assemblies; OLDAPI marks the few calls whose names changed with the run loop (before 902feeb).
namespace AbProbe
open System
open FunctionalBayes
open FunctionalBayes.Tensors

type Probe() =
    static let eightSchools (y: Tensor) (sigma: Tensor) = model {
        let! mu = Model.sample "mu" (Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 5.0))
        let! tau = Model.sample "tau" (Dist.halfCauchy (Tensor.scalar 5.0))
        let! eta = Model.sample "theta_tilde" (Dist.normal (Tensor.zeros [| 8 |]) (Tensor.ones [| 8 |]))
        return! Model.observe "y" (Dist.normal (mu + tau * eta) sigma) (Some y) }
    static let logistic (x: Tensor) (y: Tensor) = model {
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| x.Shape.[1] |]) (Tensor.ones [| x.Shape.[1] |]))
        return! Model.observe "y" (BernoulliLogits (Tensor.matmul x beta)) (Some y) }
    static let esData () =
        Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |], Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    static let logData () =
        let n, d = 5000, 20
        let r = Random(5)
        let x = Tensor.create [| n; d |] (Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0))
        let y = Tensor.ofArray (Array.init n (fun i -> if r.NextDouble() < 0.5 then 1.0 else 0.0))
        x, y
    static let gradLoop (ev: IGradientEvaluator) =
        let q = Array.init ev.Dim (fun i -> 0.1 * float (i % 7) - 0.3)
        let g = Array.zeroCreate ev.Dim
        fun (n: int) ->
            let sw = Diagnostics.Stopwatch.StartNew()
            for _ in 1 .. n do ev.Evaluate(ReadOnlySpan q, Span g) |> ignore
            sw.Elapsed.TotalSeconds
    static let compiledOf (build: Tensor[] -> Potential) data point =
        match Compilation.compileWithData build data point with
        | Compiled cp -> cp.Source.Create()
        | _ -> failwith "not compiled"
    static member Make(name: string) : Func<int, float> =
        let f : int -> float =
            match name with
            | "es_tape" | "es_compiled" ->
                let y, s = esData ()
                let p = LogDensity.potential (Rng.key 1UL) (eightSchools y s)
                if name = "es_tape" then gradLoop ((GradientSource.tape p).Create())
                else
                    let build (d: Tensor[]) = LogDensity.potential (Rng.key 1UL) (eightSchools d.[0] d.[1])
                    let point = [| Tensor.scalar 0.1; Tensor.scalar 0.2; Tensor.zeros [| 8 |] |]
                    gradLoop (compiledOf build [| y; s |] point)
            | "log_tape" | "log_compiled" ->
                let x, y = logData ()
                let p = LogDensity.potential (Rng.key 1UL) (logistic x y)
                if name = "log_tape" then gradLoop ((GradientSource.tape p).Create())
                else
                    let build (d: Tensor[]) = LogDensity.potential (Rng.key 1UL) (logistic d.[0] d.[1])
                    gradLoop (compiledOf build [| x; y |] [| Tensor.zeros [| 20 |] |])
            | "es_raw" ->
                let y, sigma = esData ()
                let logSigma = Tensor.log sigma
                let halfLog2Pi = 0.5 * log (2.0 * Math.PI)
                let f (ps: Tensor[]) =
                    let mu, logTau, eta = ps.[0], ps.[1], ps.[2]
                    let tau = Tensor.exp logTau
                    let lpMu = -0.5 * Tensor.square (mu / 5.0) - (log 5.0 + halfLog2Pi)
                    let lpTau = log (2.0 / (Math.PI * 5.0)) - Tensor.log1p (Tensor.square (tau / 5.0)) + logTau
                    let lpEta = Tensor.sum (-0.5 * Tensor.square eta) - 8.0 * halfLog2Pi
                    let theta = mu + tau * eta
                    let z = (y - theta) / sigma
                    let lpY = Tensor.sum (-0.5 * Tensor.square z - logSigma) - 8.0 * halfLog2Pi
                    lpMu + lpTau + lpEta + lpY
                let ps = [| Tensor.scalar 1.0; Tensor.scalar 0.5; Tensor.ofArray (Array.init 8 (fun i -> 0.1 * float i)) |]
                fun k -> let sw = Diagnostics.Stopwatch.StartNew() in (for _ in 1 .. k do Autodiff.valueAndGradN f ps |> ignore); sw.Elapsed.TotalSeconds
            | "nuts_es" ->
                let y, s = esData ()
                let m = eightSchools y s
                fun n ->
                    let sw = Diagnostics.Stopwatch.StartNew()
                    for i in 1 .. n do
#if OLDAPI
                        Mcmc.run { McmcOptions.Default with Seed = uint64 i; Log = ignore; Parallel = false } m |> ignore
#else
                        Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Seed = uint64 i; Parallel = false } m |> ignore
#endif
                    sw.Elapsed.TotalSeconds
            | "svi_simple" | "svi_simple_c" ->
                let n = 10_000
                let x = Rng.normal (Rng.key 3UL) [| n; 2 |]
                let y = Tensor.matmul x (Tensor.ofArray [| 0.8; -1.3 |]) + 0.5 * Rng.normal (Rng.key 4UL) [| n |]
                let modelFn (d: Map<string, Tensor>) = model {
                    let! mu = Layers.adaptive "x" d.["x"]
                    return! Links.gaussian "y" mu (d.TryFind "y") }
                let data = Map [ "x", x; "y", y ]
                let guide = Guide.auto AutoGuideKind.AutoDiagonalNormal (InitUniform 2.0) (Rng.key 1UL) (modelFn data)
                let cfg : SviConfig<Tensor> = { Model = modelFn; Guide = guide; Optimizer = Optimizer.AdamDefault 0.01; Elbo = Elbo.Batched 1; ClipNorm = None }
                let batch = Data.slice 0 1000 data
                let mutable st = Svi.init cfg (Rng.key 2UL) data
                if name = "svi_simple" then
                    fun k -> let sw = Diagnostics.Stopwatch.StartNew() in (for _ in 1 .. k do st <- Svi.step cfg n batch st); sw.Elapsed.TotalSeconds
                else
                    match Svi.compileElbo cfg st (Rng.key 3UL) n batch with
                    | Ok c -> fun k -> let sw = Diagnostics.Stopwatch.StartNew() in (for _ in 1 .. k do st <- Svi.stepCompiled c cfg batch st); sw.Elapsed.TotalSeconds
                    | Error why -> failwith why
            | "aevb_loss" ->
                let encoder = Nn.mlp { MlpSpec.Create(784, [ 400 ], [ Nn.head "loc" 20 Activations.identity; Nn.head "scale" 20 Activations.halfExp ]) with Init = WeightInit.FanInUniform }
                let decoder = Nn.mlp { MlpSpec.Create(20, [ 400 ], [ Nn.head "logits" 784 Activations.identity ]) with Init = WeightInit.FanInUniform }
                let e = Aevb.create 20 784 encoder decoder AevbPrior.UnitNormal Family.bernoulli Family.normal (Optimizer.AdamDefault 1e-3) 1 1.0
                let st = Aevb.init e (Rng.key 1UL)
                let r = Random(3)
                let x = Tensor.cast Float32 (Tensor.create [| 128; 784 |] (Array.init (128 * 784) (fun _ -> if r.NextDouble() < 0.3 then 1.0 else 0.0)))
                fun k -> let sw = Diagnostics.Stopwatch.StartNew() in (for _ in 1 .. k do Aevb.lossAt e (Rng.key 5UL) st x |> ignore); sw.Elapsed.TotalSeconds
            | "hbnn_tape" | "hbnn_compiled" ->
                let tasks = 18
                let classifier (data: Map<string, Tensor>) = model {
                    let! logits = HierarchicalMlp.Default.Call("net", data.["x"], tasks, [| 5; 5; 1 |], [| 0; 1 |], Activations.tanh)
                    return! Model.observe "y" (BernoulliLogits (Tensor.squeeze -1 logits)) (data.TryFind "y") }
                let d = Datasets.multiTaskMoons (Rng.key 0UL) tasks 100 50 0.3
                let p = LogDensity.potential (Rng.key 1UL) (classifier (Map [ "x", d.XTrain; "y", d.YTrain ]))
                if name = "hbnn_tape" then gradLoop ((GradientSource.tape p).Create())
                else
                    gradLoop ((Compilation.auto p).Create())
            | _ -> failwithf "unknown workload %s" name
        Func<int, float>(f)
