/// NUTS against posteriordb reference posteriors (10 000 Stan draws each) and simulation-based
/// calibration on two conjugate models.
module FunctionalBayes.Tests.NutsPosteriorTests

open System
open System.IO
open System.Text.Json
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors

let private quiet = McmcOptions.Default

/// ../shared/posteriordb beside the repository root (the folder holding FunctionalBayes.sln).
let internal posteriordbDir () =
    let rec up (d: DirectoryInfo | null) =
        match d with
        | null -> None
        | d when File.Exists(Path.Combine(d.FullName, "FunctionalBayes.sln")) -> Some d.FullName
        | d -> up d.Parent
    match up (DirectoryInfo AppContext.BaseDirectory) |> Option.orElse (up (DirectoryInfo __SOURCE_DIRECTORY__)) with
    | Some root -> Path.GetFullPath(Path.Combine(root, "..", "shared", "posteriordb"))
    | None -> failwith "posteriordb: FunctionalBayes.sln not found above the test binaries or the test sources."

type internal Reference = { Data: JsonElement; Moments: Map<string, float * float> }

let internal load (name: string) : Reference =
    let doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(posteriordbDir (), name + ".json")))
    let root = doc.RootElement
    let moments =
        root.GetProperty("reference").EnumerateObject()
        |> Seq.map (fun p -> p.Name, (p.Value.GetProperty("mean").GetDouble(), p.Value.GetProperty("sd").GetDouble()))
        |> Map.ofSeq
    { Data = root.GetProperty("data").Clone(); Moments = moments }

let internal vector (e: JsonElement) = e.EnumerateArray() |> Seq.map (fun v -> v.GetDouble()) |> Seq.toArray
let internal matrix (e: JsonElement) =
    let rows = e.EnumerateArray() |> Seq.map vector |> Seq.toArray
    Tensor.create [| rows.Length; rows.[0].Length |] (Array.concat rows)

/// Per scalar, draws.[chain].[draw], named as Stan does (1-based: beta[1]).
let internal scalars (draws: Map<string, Tensor>) : Map<string, float[][]> =
    draws
    |> Map.toSeq
    |> Seq.collect (fun (site, t) ->
        let chains, n = t.Shape.[0], t.Shape.[1]
        let k = Shape.size t.Shape.[2..]
        let data = Tensor.toArray t
        Seq.init k (fun e ->
            (if t.Rank = 2 then site else sprintf "%s[%d]" site (e + 1)),
            Array.init chains (fun c -> Array.init n (fun i -> data.[(c * n + i) * k + e]))))
    |> Map.ofSeq

/// The issue's acceptance rule for every reference parameter: |mean − ref| < 4·√(MCSE² + (ref sd/100)²),
/// sd within 10 %, R̂ < 1.01; and no divergent transition (posteriordb's reference runs had none).
let internal compare (name: string) (r: McmcResult) (extra: Map<string, float[][]>) (reference: Reference) =
    let all = Map.fold (fun acc k v -> Map.add k v acc) (scalars r.Draws) extra
    let rows =
        reference.Moments |> Map.toArray |> Array.map (fun (p, (refMean, refSd)) ->
            let d =
                match all.TryFind p with
                | Some d -> d
                | None -> failtestf "%s: no draws for reference parameter %s (have %s)" name p (String.Join(", ", all.Keys))
            let s = Diagnostics.summarize p d
            let tol = 4.0 * sqrt (s.McseMean ** 2.0 + (refSd / 100.0) ** 2.0)
            p, refMean, s.Mean, (s.Mean - refMean) / sqrt (s.McseMean ** 2.0 + (refSd / 100.0) ** 2.0), tol, refSd, s)
    for (p, refMean, mean, z, _, refSd, s) in rows do
        printfn "%s %-14s ref %10.4f  ours %10.4f  z %6.2f  sd %8.4f / %8.4f  rhat %.4f  ess_bulk %.0f" name p refMean mean z refSd s.Sd s.RHat s.EssBulk
    for (p, refMean, mean, _, tol, refSd, s) in rows do
        Expect.isLessThan (abs (mean - refMean)) tol (sprintf "%s %s mean %g vs reference %g (MCSE %g)" name p mean refMean s.McseMean)
        Expect.isLessThan (abs (s.Sd - refSd)) (0.1 * refSd) (sprintf "%s %s sd %g vs reference %g" name p s.Sd refSd)
        Expect.isLessThan s.RHat 1.01 (sprintf "%s %s R-hat" name p)
    let divergences = r.Flat.Stats |> Array.sumBy (fun c -> c.Divergent |> Array.filter id |> Array.length)
    Expect.equal divergences 0 (sprintf "%s: divergent transitions" name)

/// Stan's 4 chains × 1000 draws after 1000 warmup.
let internal opts seed = { quiet with Seed = seed }

// Flat (improper) priors in the Stan programs are written as Normal(0, 1000) / HalfNormal(1000): at the
// posterior's scale (sd ≤ 6, means ≤ 26) they shift a mean by under 1e-4 sd, far inside the tolerance.

let internal eightSchools (d: JsonElement) = model {
    let y = Tensor.ofArray (vector (d.GetProperty "y"))
    let sigma = Tensor.ofArray (vector (d.GetProperty "sigma"))
    let j = y.Shape.[0]
    let! thetaTrans = Model.sample "theta_trans" (Independent (Normal (Tensor.zeros [| j |], Tensor.ones [| j |]), 1))
    let! mu = Model.sample "mu" (Normal (Tensor.scalar 0.0, Tensor.scalar 5.0))
    let! tau = Model.sample "tau" (HalfCauchy (Tensor.scalar 5.0))
    return! Model.observe "y" (Independent (Normal (thetaTrans * tau + mu, sigma), 1)) (Some y)
}

let internal arK (d: JsonElement) = model {
    let k = d.GetProperty("K").GetInt32()
    let y = vector (d.GetProperty "y")
    let t = y.Length
    // lagged design: row t-K-1 holds y[t-1], ..., y[t-K] for t = K+1 .. T (1-based)
    let lags = Tensor.create [| t - k; k |] [| for s in k .. t - 1 do for l in 1 .. k -> y.[s - l] |]
    let target = Tensor.ofArray y.[k ..]
    let! alpha = Model.sample "alpha" (Normal (Tensor.scalar 0.0, Tensor.scalar 10.0))
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| k |], Tensor.create [| k |] (Array.create k 10.0)), 1))
    let! sigma = Model.sample "sigma" (HalfCauchy (Tensor.scalar 2.5))
    return! Model.observe "y" (Independent (Normal (alpha + Tensor.matmul lags beta, sigma), 1)) (Some target)
}

let internal regression2 (x: float[]) (y: float[]) (sigmaPrior: Distribution) = model {
    let x = Tensor.ofArray x
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| 2 |], Tensor.create [| 2 |] [| 1000.0; 1000.0 |]), 1))
    let! sigma = Model.sample "sigma" sigmaPrior
    let mu = Tensor.select 0 0 beta + Tensor.select 0 1 beta * x
    return! Model.observe "y" (Independent (Normal (mu, sigma), 1)) (Some (Tensor.ofArray y))
}

let internal blr (d: JsonElement) = model {
    let x = matrix (d.GetProperty "X")
    let y = Tensor.ofArray (vector (d.GetProperty "y"))
    let dim = x.Shape.[1]
    let! beta = Model.sample "beta" (Independent (Normal (Tensor.zeros [| dim |], Tensor.create [| dim |] (Array.create dim 10.0)), 1))
    let! sigma = Model.sample "sigma" (HalfNormal (Tensor.scalar 10.0))
    return! Model.observe "y" (Independent (Normal (Tensor.matmul x beta, sigma), 1)) (Some y)
}

/// Runs one shared posterior with the given options and checks it against the reference (compare).
let internal eightSchoolsCheck (o: McmcOptions) =
    let r = load "eight_schools-eight_schools_noncentered"
    let fit = Mcmc.runIn RunContext.Quiet o (eightSchools r.Data)
    let s = scalars fit.Draws
    let theta = Map.ofSeq (seq {
        for j in 1 .. 8 ->
            let tt = s.[sprintf "theta_trans[%d]" j]
            sprintf "theta[%d]" j, Array.map3 (fun (a: float[]) (m: float[]) (t: float[]) -> Array.map3 (fun a m t -> a * t + m) a m t) tt s.["mu"] s.["tau"] })
    compare "eight_schools" fit theta r

let internal arKCheck (o: McmcOptions) =
    let r = load "arK-arK"
    compare "arK" (Mcmc.runIn RunContext.Quiet o (arK r.Data)) Map.empty r

let internal earningsCheck (o: McmcOptions) =
    let r = load "earnings-logearn_height"
    let logEarn = vector (r.Data.GetProperty "earn") |> Array.map log
    let m = regression2 (vector (r.Data.GetProperty "height")) logEarn (HalfNormal (Tensor.scalar 1000.0))
    compare "earnings" (Mcmc.runIn RunContext.Quiet o m) Map.empty r

let internal kidiqCheck (o: McmcOptions) =
    let r = load "kidiq-kidscore_momiq"
    let m = regression2 (vector (r.Data.GetProperty "mom_iq")) (vector (r.Data.GetProperty "kid_score")) (HalfCauchy (Tensor.scalar 2.5))
    compare "kidiq" (Mcmc.runIn RunContext.Quiet o m) Map.empty r

let internal blrCheck (o: McmcOptions) =
    let r = load "sblrc-blr"
    compare "blr" (Mcmc.runIn RunContext.Quiet o (blr r.Data)) Map.empty r

[<Tests>]
let posteriordbTests =
    testList "NutsPosterior.posteriordb" [
        // posteriordb ran this posterior with adapt_delta = 0.95
        testCase "eight_schools_noncentered" <| fun _ -> eightSchoolsCheck { opts 1UL with TargetAccept = 0.95 }
        testCase "arK" <| fun _ -> arKCheck (opts 2UL)
        testCase "earnings-logearn_height (dense metric)" <| fun _ -> earningsCheck { opts 3UL with Adaptation = MetricAdaptation.Dense }
        testCase "kidiq-kidscore_momiq (dense metric)" <| fun _ -> kidiqCheck { opts 4UL with Adaptation = MetricAdaptation.Dense }
        testCase "sblrc-blr" <| fun _ -> blrCheck (opts 5UL)
    ]

/// Rank of the truth among L draws, for R replications, binned in B equal bins of the L+1 ranks, and the
/// chi-square statistic of the bin counts against uniform.
let private sbcChiSquare (reps: int) (bins: int) (draws: int) (rank: int -> int) =
    let counts = Array.zeroCreate bins
    for r in 0 .. reps - 1 do
        let k = rank r
        counts.[k * bins / (draws + 1)] <- counts.[k * bins / (draws + 1)] + 1
    let e = float reps / float bins
    counts |> Array.sumBy (fun c -> (float c - e) ** 2.0 / e), counts

/// One SBC replication: truth from the prior, data from the likelihood, 19 draws thinned by 5 from one
/// chain (NUTS draws on these 1-d posteriors are near-independent at that lag), rank of the truth.
let private sbcRank (seed: uint64) (r: int) (prior: Distribution) (likelihood: Tensor -> Distribution) (n: int) =
    let kTruth, kData = Rng.split (Rng.foldIn (Rng.key seed) r)
    let truth, _ = LogDensity.traceWith Map.empty (Some kTruth) (Model.sample "theta" prior)
    let y, _ = LogDensity.traceWith Map.empty (Some kData) (Model.sample "y" (Expand (likelihood truth, [| n |])))
    let m = model {
        let! theta = Model.sample "theta" prior
        return! Model.observe "y" (Expand (likelihood theta, [| n |])) (Some y) }
    let fit = Mcmc.runIn RunContext.Quiet { quiet with Chains = 1; Warmup = 150; Samples = 19; Thin = 5; Seed = uint64 (1000 + r); Parallel = false } m
    let t = Tensor.toScalar truth
    Tensor.toArray fit.Draws.["theta"] |> Array.filter (fun v -> v < t) |> Array.length

// 100 replications, ranks 0..19 in 10 bins of 2 (expected 10 per bin): under uniformity the statistic is
// χ² with 9 degrees of freedom; 27.88 is its 0.999 quantile, so a correct sampler fails this fixed-seed
// test with probability 0.001, while a miscalibrated one (e.g. a sd off by 30 %) puts far more mass in
// the end bins and exceeds it.
[<Tests>]
let sbcTests =
    testList "NutsPosterior.sbc" [
        testCase "normal mean with known variance" <| fun _ ->
            let stat, counts =
                sbcChiSquare 100 10 19 (fun r ->
                    sbcRank 31UL r (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0)) (fun mu -> Normal (mu, Tensor.scalar 1.0)) 4)
            printfn "SBC normal: chi2 %.2f counts %A" stat counts
            Expect.isLessThan stat 27.88 (sprintf "rank histogram %A is uniform" counts)
        testCase "Poisson-Gamma" <| fun _ ->
            let stat, counts =
                sbcChiSquare 100 10 19 (fun r ->
                    sbcRank 32UL r (Gamma (Tensor.scalar 3.0, Tensor.scalar 1.0)) (fun l -> Poisson l) 5)
            printfn "SBC Poisson-Gamma: chi2 %.2f counts %A" stat counts
            Expect.isLessThan stat 27.88 (sprintf "rank histogram %A is uniform" counts)
    ]
