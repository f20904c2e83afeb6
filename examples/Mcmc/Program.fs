/// Mcmc: NUTS with Stan's adaptation on eight schools (non-centered) and on the QuickStart's regression;
/// prints the summary tables (R-hat, ESS), the sampler parameters and Stan's warnings (Mcmc.run logs them),
/// and ends with one JSON line of figures.
module Mcmc.Program

open System
open System.Diagnostics
open System.Globalization
open FunctionalBayes
open FunctionalBayes.Tensors

/// Eight schools, non-centered (posteriordb eight_schools_noncentered).
let eightSchools (data: Map<string, Tensor>) = model {
    let y = data.["y"]
    let sigma = data.["sigma"]
    let j = y.Shape.[0]
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    let! thetaTrans = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| j |], Tensor.ones [| j |]), 1))
    let theta = mu + tau * thetaTrans
    let! _ = Model.deterministic "theta" theta
    return! Model.observe "y" (Independent (Normal (theta, sigma), 1)) (Some y)
}

/// The QuickStart's model (BLayers' README): intercept + adaptive(x) + adaptive(x²) + FM(x, rank 3).
let regression (data: Map<string, Tensor>) = model {
    let x = data.["x"]
    let! b = Layers.intercept "b"
    let! lin = Layers.adaptive "x" x
    let! quad = Layers.adaptive "x2" (Tensor.square x)
    let! fm = Layers.fm "fm" x 3
    return! Links.gaussian "y" (b + lin + quad + fm) (data.TryFind "y")
}

/// Simulated data for the regression (as the QuickStart, on fewer rows: NUTS evaluates the full-data
/// gradient at every leapfrog step).
let regressionData (n: int) =
    let d = 5
    let beta1 = [| 1.5; -2.0; 0.5; 0.0; 1.0 |]
    let beta2 = [| 0.3; 0.0; -0.4; 0.2; 0.0 |]
    let kx, kn = Rng.split (Rng.key 20261121UL)
    let x = Rng.normal kx [| n; d |]
    let mean = 0.7 + Tensor.matmul x (Tensor.ofArray beta1) + Tensor.matmul (Tensor.square x) (Tensor.ofArray beta2)
    Map [ "x", x; "y", mean + 0.5 * Rng.normal kn [| n |] ]

let private inv (v: float) = v.ToString("R", CultureInfo.InvariantCulture)

let private printSummary (p: Posterior<'T>) =
    printfn "%-28s %9s %9s %9s %9s %9s %9s %9s %9s %7s" "parameter" "mean" "sd" "mcse" "5%" "50%" "95%" "ess_bulk" "ess_tail" "r_hat"
    for s in Posterior.summary p (Rng.key 0UL) 1000 do
        printfn "%-28s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f %9.0f %9.0f %7.3f" s.Name s.Mean s.Sd s.McseMean s.Q5 s.Q50 s.Q95 s.EssBulk s.EssTail s.RHat

let private printSampler (p: Posterior<'T>) =
    let r = Posterior.samplesPart "printSampler" p
    for k in 0 .. r.Chains - 1 do
        let s = r.Flat.Stats.[k]
        printfn "chain %d: step size %.3f, mean tree depth %.2f, leapfrogs %d, divergences %d, mean accept %.3f, warmup %.1fs, sampling %.1fs"
            k s.AdaptedStepSize (s.TreeDepth |> Array.averageBy float) (Array.sum s.NumLeapfrog)
            (s.Divergent |> Array.filter id |> Array.length) (Array.average s.AcceptStat) s.WarmupSeconds s.SamplingSeconds

[<EntryPoint>]
let main _ =
    let data =
        Map [ "y", Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
              "sigma", Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |] ]
    let sw = Stopwatch.StartNew()
    let r = Fit.mcmc { McmcOptions.Default with Seed = 1UL; TargetAccept = 0.95 } eightSchools data
    printfn "Eight schools (non-centered), 4 chains x 1000 draws after 1000 warmup:"
    printSummary r
    printSampler r
    let divergences = (Posterior.samplesPart "divergences" r).Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length)
    FunctionalBayes.Reporting.Report.save "report.html" r data
    printfn "Report: %s" (IO.Path.GetFullPath "report.html")
    let rd = regressionData 200
    let rr = Fit.mcmc { McmcOptions.Default with Seed = 2UL; Warmup = 500; Samples = 500 } regression rd
    printfn ""
    printfn "QuickStart regression (N = 200, d = 5), 4 chains x 500 draws after 500 warmup:"
    printSummary rr
    printSampler rr
    let seconds = sw.Elapsed.TotalSeconds
    let es = Posterior.summary r (Rng.key 0UL) 1000
    let maxRhat = es |> Array.map (fun s -> s.RHat) |> Array.max
    let minEss = es |> Array.map (fun s -> s.EssBulk) |> Array.min
    printfn "{\"eight_schools_max_rhat\":%s,\"eight_schools_min_ess_bulk\":%s,\"divergences\":%d,\"seconds\":%s}" (inv maxRhat) (inv minEss) divergences (inv seconds)
    0
