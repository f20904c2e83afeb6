/// The benchmark suites: gemm, elementwise, grad.
module FunctionalBayes.Benchmarks.Suites

open System
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure

let private randomArray (seed: int) (n: int) =
    let r = Random(seed)
    Array.init n (fun _ -> r.NextDouble() * 2.0 - 1.0)

/// GFLOP/s of square matrix products through the public matmul.
let gemm () =
    // OpenBLAS through NumPy on this 2-core machine (issue 2).
    let openBlas = dict [ (Float64, 1024), 112.0; (Float32, 1024), 225.0 ]
    for dt in [ Float64; Float32 ] do
        for n in [ 256; 512; 1024 ] do
            let a = Tensor.create [| n; n |] (randomArray 1 (n * n)) |> Tensor.cast dt
            let b = Tensor.create [| n; n |] (randomArray 2 (n * n)) |> Tensor.cast dt
            let s = secondsPerCall 0.5 5 (fun () -> Tensor.matmul a b |> ignore)
            let gflops = 2.0 * float n ** 3.0 / s / 1e9
            let baseline =
                match openBlas.TryGetValue((dt, n)) with
                | true, v -> Some (v, "OpenBLAS via NumPy, same machine")
                | _ -> None
            report (sprintf "gemm_%O_%d" dt n) gflops "GFLOP/s" baseline

/// GB/s (bytes read + written) of element-wise ops over 10^6 float64 elements.
let elementwise () =
    let n = 1_000_000
    let x = Tensor.ofArray (randomArray 3 n)
    let y = Tensor.ofArray (randomArray 4 n)
    let gbps bytes s = float bytes / s / 1e9
    let s = secondsPerCall 0.5 5 (fun () -> Tensor.exp x |> ignore)
    report "elementwise_exp_1e6" (gbps (16 * n) s) "GB/s" None
    let s = secondsPerCall 0.5 5 (fun () -> Tensor.tanh x |> ignore)
    report "elementwise_tanh_1e6" (gbps (16 * n) s) "GB/s" None
    let s = secondsPerCall 0.5 5 (fun () -> (x + y) |> ignore)
    report "elementwise_add_1e6" (gbps (24 * n) s) "GB/s" None

/// Eight schools, non-centered (Stan's eight_schools_noncentered), on unconstrained space.
let private eightSchools () =
    let y = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    let logSigma = Tensor.log sigma
    let halfLog2Pi = 0.5 * log (2.0 * Math.PI)
    fun (ps: Tensor[]) ->
        let mu, logTau, eta = ps.[0], ps.[1], ps.[2]
        let tau = Tensor.exp logTau
        // mu ~ Normal(0, 5); tau ~ HalfCauchy(5) with the log-Jacobian of exp; eta ~ Normal(0, 1)
        let lpMu = -0.5 * Tensor.square (mu / 5.0) - (log 5.0 + halfLog2Pi)
        let lpTau = log (2.0 / (Math.PI * 5.0)) - Tensor.log1p (Tensor.square (tau / 5.0)) + logTau
        let lpEta = Tensor.sum (-0.5 * Tensor.square eta) - 8.0 * halfLog2Pi
        let theta = mu + tau * eta
        let z = (y - theta) / sigma
        let lpY = Tensor.sum (-0.5 * Tensor.square z - logSigma) - 8.0 * halfLog2Pi
        lpMu + lpTau + lpEta + lpY

/// Bayesian logistic regression with a standard normal prior: n = 5000, d = 20.
let private logisticRegression () =
    let n, d = 5000, 20
    let r = Random(5)
    let x = Tensor.create [| n; d |] (Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0))
    let beta = Array.init d (fun j -> if j % 3 = 0 then 0.5 else -0.25)
    let eta = Tensor.matmul x (Tensor.ofArray beta) |> Tensor.toArray
    let y = Tensor.ofArray (eta |> Array.map (fun e -> if r.NextDouble() < 1.0 / (1.0 + exp -e) then 1.0 else 0.0))
    fun (b: Tensor) ->
        let logits = Tensor.matmul x b
        Tensor.sum (y * logits - Tensor.softplus logits) - 0.5 * Tensor.sum (Tensor.square b)

/// Microseconds per value-and-gradient.
let grad () =
    let f = eightSchools ()
    let ps = [| Tensor.scalar 1.0; Tensor.scalar 0.5; Tensor.ofArray (randomArray 6 8) |]
    let s = secondsPerCall 0.5 7 (fun () -> Autodiff.valueAndGradN f ps |> ignore)
    report "grad_eight_schools" (s * 1e6) "us" (Some (1.5, "Stan, same machine"))
    let g = logisticRegression ()
    let b = Tensor.ofArray (randomArray 7 20)
    let s = secondsPerCall 0.5 7 (fun () -> Autodiff.valueAndGrad g b |> ignore)
    report "grad_logistic_n5000_d20" (s * 1e6) "us" (Some (310.0, "Stan 2.21, same machine"))

/// SVI steps per second: BLayers' "simple" process (N = 10^4, k = 2, batch 1000, AutoDiagonalNormal)
/// and an FM model (d = 10, rank 3), each step a minibatch ELBO gradient and an Adam update.
let svi () =
    let run (name: string) (modelFn: Map<string, Tensor> -> FunctionalBayes.Model<Tensor>) (data: Map<string, Tensor>) =
        let guide = FunctionalBayes.Guide.auto FunctionalBayes.AutoGuideKind.AutoDiagonalNormal (FunctionalBayes.InitUniform 2.0) (Rng.key 1UL) (modelFn data)
        let cfg : FunctionalBayes.SviConfig<Tensor> =
            { Model = modelFn; Guide = guide; Optimizer = FunctionalBayes.Optimizer.AdamDefault 0.01
              Elbo = FunctionalBayes.Elbo.Batched 1; ClipNorm = None }
        let n = FunctionalBayes.Data.rows data
        let batch = FunctionalBayes.Data.slice 0 1000 data
        let mutable st = FunctionalBayes.Svi.init cfg (Rng.key 2UL) data
        let s = secondsPerCall 0.5 5 (fun () -> st <- FunctionalBayes.Svi.step cfg n batch st)
        report name (1.0 / s) "steps/s" None
    let n = 10_000
    let x = Rng.normal (Rng.key 3UL) [| n; 2 |]
    let y = Tensor.matmul x (Tensor.ofArray [| 0.8; -1.3 |]) + 0.5 * Rng.normal (Rng.key 4UL) [| n |]
    let simple (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! mu = FunctionalBayes.Layers.adaptive "x" d.["x"]
        return! FunctionalBayes.Links.gaussian "y" mu (d.TryFind "y")
    }
    run "svi_simple_steps_per_s" simple (Map [ "x", x; "y", y ])
    let xf = Rng.normal (Rng.key 5UL) [| n; 10 |]
    let yf = Tensor.sumAxes [| 1 |] false xf + 0.5 * Rng.normal (Rng.key 6UL) [| n |]
    let fm (d: Map<string, Tensor>) = FunctionalBayes.ModelBuilderInstance.model {
        let! f = FunctionalBayes.Layers.fm "fm" d.["x"] 3
        return! FunctionalBayes.Links.gaussian "y" f (d.TryFind "y")
    }
    run "svi_fm_d10_rank3_steps_per_s" fm (Map [ "x", xf; "y", yf ])
