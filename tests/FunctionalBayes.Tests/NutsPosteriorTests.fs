/// NUTS against posteriordb reference posteriors (10 000 Stan draws each) and simulation-based
/// calibration on two conjugate models.
module FunctionalBayes.Tests.NutsPosteriorTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.PosteriorDb

let private quiet = McmcOptions.Default

/// Divergent transitions a posterior may show in 4 × 1000 draws. gp_pois_regr (jitter 1e-10 under a latent
/// Cholesky) diverges in Stan too at these settings: rstan 2.21, adapt_delta 0.8, 4 × (1000 + 1000), seeds 1–4
/// gave 3, 21, 6 and 9 (benchmarks/peers/rstan_nuts.R); ours 3 to 13 over seeds. A sampler that breaks on
/// it diverges in hundreds of transitions.
let private divergenceAllowance = Map [ "gp_pois_regr-gp_pois_regr", 40 ]

/// The issue's acceptance rule for every reference parameter: |mean − ref| < 4·√(MCSE² + (ref sd/100)²),
/// sd within 10 %, R̂ < 1.01; and no divergent transition (posteriordb's reference runs had none), but
/// where Stan's own sampler diverges too (divergenceAllowance).
let internal compare (name: string) (r: McmcResult) (extra: Map<string, float[][]>) (reference: PosteriorData) =
    let all = Map.fold (fun acc k v -> Map.add k v acc) (PosteriorData.scalars r.Draws) extra
    let rows =
        reference.Reference |> Map.toArray |> Array.map (fun (p, (refMean, refSd)) ->
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
    match divergenceAllowance.TryFind name with
    | Some allowed -> Expect.isLessThanOrEqual divergences allowed (sprintf "%s: divergent transitions (Stan's own sampler diverges here too)" name)
    | None -> Expect.equal divergences 0 (sprintf "%s: divergent transitions" name)

/// Stan's 4 chains × 1000 draws after 1000 warmup, with the catalogue's settings for the posterior.
let internal optionsFor (p: Posterior) (seed: uint64) =
    { quiet with
        Seed = seed
        TargetAccept = p.Settings.TargetAccept
        Adaptation = if p.Settings.DenseMetric then MetricAdaptation.Dense else MetricAdaptation.Stan }

/// Runs a catalogue posterior with the given options and checks it against its reference (compare).
let internal checkWith (p: Posterior) (o: McmcOptions) =
    let data = PosteriorData.load p.Name
    let fit = Mcmc.runIn RunContext.Quiet o (p.Model data)
    let derived = Map.fold (fun acc k v -> Map.add k v acc) (PosteriorData.scalars fit.Deterministic) (p.Derived (PosteriorData.scalars fit.Draws))
    compare p.Name fit derived data

let private check (p: Posterior) (seed: uint64) = checkWith p (optionsFor p seed)

/// The five posteriors of ../shared/posteriordb.
let internal shared =
    [ Posteriors.eightSchoolsNoncentered; Posteriors.arK; Posteriors.logearnHeight; Posteriors.kidscoreMomiq; Posteriors.blr ]

[<Tests>]
let posteriordbTests =
    testList "NutsPosterior.posteriordb" [
        testCase "eight_schools_noncentered" <| fun _ -> check Posteriors.eightSchoolsNoncentered 1UL
        testCase "arK" <| fun _ -> check Posteriors.arK 2UL
        testCase "earnings-logearn_height (dense metric)" <| fun _ -> check Posteriors.logearnHeight 3UL
        testCase "kidiq-kidscore_momiq (dense metric)" <| fun _ -> check Posteriors.kidscoreMomiq 4UL
        testCase "sblrc-blr" <| fun _ -> check Posteriors.blr 5UL
    ]

/// The rest of the catalogue (issue 26: flat priors, constrained sites, GLM forms, GPs, a mixture),
/// each against its posteriordb reference by the same rule and Stan's settings, one seed per posterior.
[<Tests>]
let catalogueTests =
    let shared = shared |> List.map (fun p -> p.Name) |> set
    testList "NutsPosterior.catalogue" [
        for i, p in Posteriors.all |> List.filter (fun p -> not (shared.Contains p.Name)) |> List.indexed ->
            testCase p.Name <| fun _ -> check p (uint64 (100 + i))
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
