/// The nuts suite: NUTS with Stan's adaptation on eight schools (non-centered) and a logistic regression
/// (n = 5000, d = 20), both written with model { } and sampled through LogDensity.potential.
module FunctionalBayes.Benchmarks.NutsSuite

open System
open System.Diagnostics
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Benchmarks.Measure

/// Eight schools, non-centered, as a user writes it (also the firstcall suite's first model).
let eightSchools = model {
    let y = Tensor.ofArray [| 28.0; 8.0; -3.0; 7.0; -1.0; 1.0; 18.0; 12.0 |]
    let sigma = Tensor.ofArray [| 15.0; 10.0; 16.0; 11.0; 9.0; 11.0; 10.0; 18.0 |]
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    let! eta = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| 8 |], Tensor.ones [| 8 |]), 1))
    return! Model.observe "y" (Independent (Normal (mu + tau * eta, sigma), 1)) (Some y)
}

let private logistic =
    let x, y = Suites.logisticData ()
    Suites.logisticModel x y

let private bench (name: string) (m: Model<Tensor>) =
    let p = LogDensity.potential (Rng.key 1UL) m
    let q = Array.init (FlatPosition.dim p) (fun i -> 0.1 * float (i % 5) - 0.2)
    let g = Array.zeroCreate q.Length
    // µs per value and gradient on the tape and compiled (what Mcmc.run uses by default when the graph is static)
    for kind, source in [ "tape", GradientSource.tape p; "compiled", Compilation.auto p ] do
        let ev = source.Create()
        let t = batchTimes 0.3 11 (fun () -> ev.Evaluate(ReadOnlySpan<float>(q), Span<float>(g)) |> ignore)
        report (sprintf "nuts_%s_grad_%s" name kind) (t.[t.Length / 2] * 1e6) "us" None
    let sw = Stopwatch.StartNew()
    let r = Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Seed = 1UL } m
    let wall = sw.Elapsed.TotalSeconds
    let leapfrogs = r.Flat.Stats |> Array.sumBy (fun s -> s.NumLeapfrog |> Array.sum)
    let samplingSeconds = r.Flat.Stats |> Array.sumBy (fun s -> s.SamplingSeconds)
    report (sprintf "nuts_%s_leapfrogs_per_s" name) (float leapfrogs / samplingSeconds) "1/s" None
    report (sprintf "nuts_%s_wall_4x(1000+1000)" name) wall "s" None
    let minEss = Mcmc.summary r |> Array.map (fun s -> s.EssBulk) |> Array.min
    report (sprintf "nuts_%s_min_ess_bulk_per_s" name) (minEss / wall) "1/s" None
    report (sprintf "nuts_%s_divergences" name) (r.Flat.Stats |> Array.sumBy (fun s -> s.Divergent |> Array.filter id |> Array.length) |> float) "count" None
    r, wall

/// µs per gradient of the model's potential, leapfrogs per second of sampling (per chain-second),
/// wall time of 4 chains × (1000 warmup + 1000 draws), and min bulk ESS over the parameters per second of wall time.
let run () =
    reportIsa "nuts"
    bench "eight_schools" eightSchools |> ignore
    bench "logistic_n5000_d20" logistic |> ignore
