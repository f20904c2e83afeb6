/// QuickStart: BLayers' README model, intercept + adaptive(x) + adaptive(x²) + FM(x, rank 3) with a
/// Gaussian link, fitted by SVI with the minibatch ELBO to simulated data (N = 10 000, d = 5).
module QuickStart.Program

open System
open System.Diagnostics
open System.Globalization
open System.IO
open FunctionalBayes
open FunctionalBayes.Onnx
open FunctionalBayes.OnnxRuntime
open FunctionalBayes.Tensors

type private Options = { Out: string; Epochs: int; Seed: uint64 }

let private parse (argv: string[]) =
    let rec go i o =
        if i >= argv.Length then o
        else
            match argv.[i] with
            | "--out" when i + 1 < argv.Length -> go (i + 2) { o with Out = argv.[i + 1] }
            | "--epochs" when i + 1 < argv.Length -> go (i + 2) { o with Epochs = int argv.[i + 1] }
            | "--seed" when i + 1 < argv.Length -> go (i + 2) { o with Seed = uint64 argv.[i + 1] }
            | a -> failwithf "unknown argument %s (use --out DIR, --epochs N, --seed S)" a
    go 0 { Out = "."; Epochs = 300; Seed = 0UL }

/// The model, as in BLayers' README.
let model (data: Map<string, Tensor>) = model {
    let x = data.["x"]
    let! b = Layers.intercept "b"
    let! lin = Layers.adaptive "x" x
    let! quad = Layers.adaptive "x2" (Tensor.square x)
    let! fm = Layers.fm "fm" x 3
    return! Links.gaussian "y" (b + lin + quad + fm) (data.TryFind "y")
}

let private inv (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

/// The FM's pairwise weights ⟨θ_i, θ_j⟩, i < j, from a (d, l, 1) factor tensor.
let private pairWeights (theta: Tensor) =
    let d = theta.Shape.[0]
    let v = Tensor.reshape [| d; -1 |] theta
    let g = Tensor.matmul v (Tensor.transpose v) |> Tensor.toArray
    [| for i in 0 .. d - 2 do for j in i + 1 .. d - 1 -> g.[i * d + j] |]

[<EntryPoint>]
let main argv =
    let opts = parse argv
    let n, d = 10_000, 5
    // the truth
    let bias = 0.7
    let beta1 = [| 1.5; -2.0; 0.5; 0.0; 1.0 |]
    let beta2 = [| 0.3; 0.0; -0.4; 0.2; 0.0 |]
    let theta = Tensor.create [| d; 3; 1 |] [| 0.6; -0.2; 0.1; 0.3; 0.5; -0.4; -0.5; 0.1; 0.2; 0.2; -0.3; 0.4; 0.1; 0.2; -0.6 |]
    let sigma = 0.5
    let kx, kn = Rng.split (Rng.key 20261121UL)
    let x = Rng.normal kx [| n; d |]
    let fmTrue, _ =
        Model.run (Handlers.trace (Handlers.substitute (Map [ "FMLayer_fm_scale", Tensor.ones [| 1 |]; "FMLayer_fm_theta", theta ]) (Layers.fm "fm" x 3)))
    let mean = bias + Tensor.matmul x (Tensor.ofArray beta1) + Tensor.matmul (Tensor.square x) (Tensor.ofArray beta2) + Tensor.flatten fmTrue
    let y = mean + sigma * Rng.normal kn [| n |]
    let data = Map [ "x", x; "y", y ]

    let batch = 1000
    let steps = opts.Epochs * Data.stepsPerEpoch n batch
    printfn "Fitting intercept + adaptive(x) + adaptive(x²) + FM(x, rank 3), N = %d, d = %d: %d epochs of batch %d (%d steps)" n d opts.Epochs batch steps
    let width = 40
    let progress (p: RunProgress) =
        let filled = width * p.Step / p.TotalSteps
        Console.Write(sprintf "\r[%s%s] %5d/%d  loss %12.2f  eta %4.1fs " (String('#', filled)) (String('.', width - filled)) p.Step p.TotalSteps p.Loss p.Eta.TotalSeconds)
        if p.Step = p.TotalSteps then Console.WriteLine()
    let sw = Stopwatch.StartNew()
    let fitted =
        Fit.viRunIn { RunContext.Quiet with OnProgress = Some progress }
                    { FitOptions.Default with
                        Run.Epochs = Some opts.Epochs; Run.BatchSize = Some batch; LearningRate = 0.05
                        Schedule = LrSchedule.WarmupCosine; Seed = opts.Seed } model data
        |> fst
    let seconds = sw.Elapsed.TotalSeconds

    let summary = Posterior.summary fitted (Rng.key 2UL) 1000
    printfn ""
    printfn "%-26s %10s %10s %10s %10s %8s" "scalar" "mean" "sd" "5%" "95%" "ess_bulk"
    for s in summary do
        printfn "%-26s %10.4f %10.4f %10.4f %10.4f %8.0f" s.Name s.Mean s.Sd s.Q5 s.Q95 s.EssBulk

    let means = Posterior.mean fitted (Rng.key 2UL) 1000
    let est (name: string) = means.[name]
    let truth = Array.concat [ [| bias |]; beta1; beta2; pairWeights theta ]
    let estimate =
        Array.concat [ Tensor.toArray (est "InterceptLayer_b_beta"); Tensor.toArray (est "AdaptiveLayer_x_beta")
                       Tensor.toArray (est "AdaptiveLayer_x2_beta"); pairWeights (est "FMLayer_fm_theta") ]
    let rmse = sqrt (Array.average (Array.map2 (fun a b -> (a - b) ** 2.0) truth estimate))
    let sigmaHat = Tensor.toScalar (est "y_sigma")
    printfn ""
    printfn "Recovered %d coefficients (intercept, linear, quadratic, FM pairs): RMSE %.4f; sigma %.4f (true %.2f)" truth.Length rmse sigmaHat sigma

    Directory.CreateDirectory opts.Out |> ignore
    Fit.save (Path.Combine(opts.Out, "quickstart-posterior.json")) fitted

    // Export the posterior-mean predictor, then check ONNX Runtime against the in-process predictor
    // on 256 held-out rows.
    let heldOut = Map [ "x", Rng.normal (Rng.key 7UL) [| 256; d |] ]
    let points = Posterior.mean fitted (Rng.key 3UL) 1000
    let onnxPath = Path.Combine(opts.Out, "quickstart.onnx")
    Export.toModel ExportOptions.Default model points heldOut |> Export.toFile onnxPath
    let inProcess = Export.predict model points heldOut |> Array.find (fun (site, _) -> site = "y") |> snd |> Tensor.toArray
    let xs = Tensor.toArray2D heldOut.["x"]
    File.WriteAllLines(
        Path.Combine(opts.Out, "quickstart-inputs.csv"),
        Array.append [| "x0,x1,x2,x3,x4" |] (Array.init 256 (fun i -> String.Join(",", Array.init d (fun j -> inv xs.[i, j])))))
    File.WriteAllLines(Path.Combine(opts.Out, "quickstart-predictions.csv"), Array.append [| "y_mean" |] (inProcess |> Array.map inv))
    use predictor = OnnxPredictor.Load(onnxPath)
    let fromOnnx, _outShape = predictor.Run("x", Tensor.toArrayF32 heldOut.["x"], [| 256L; int64 d |])
    let maxDiff = Array.map2 (fun (a: float32) b -> abs (float a - b)) fromOnnx inProcess |> Array.max
    printfn "Exported %s (%s); ONNX Runtime %s agrees with the in-process predictor to %.2g on 256 held-out rows."
        onnxPath (String.Join(", ", predictor.Inputs |> Seq.map string)) predictor.RuntimeVersion maxDiff

    printfn """{"coef_rmse":%s,"sigma_abs_err":%s,"fit_seconds":%s,"steps":%d,"onnx_max_abs_diff":%s}"""
        (inv rmse) (inv (abs (sigmaHat - sigma))) (inv seconds) (Posterior.losses fitted).Length (inv maxDiff)
    0
