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

/// The R̂ a sampler that mixes well stays below with probability 0.999. For M split chains whose means
/// each average ESS/M effective draws, split R̂ ≈ 1 + ½·(M/ESS)·χ²₍M−1₎/(M−1) (the spread of the chain means
/// over the within-chain variance). The issue's R̂ < 1.01 needs a bulk ESS of about 1400 (M = 8) to hold
/// that often, so where the ESS is smaller the bound is the χ² quantile's; chains stuck in different modes
/// give R̂ far above either, and a bulk ESS that collapses (mixingChecks asks for 50 per chain, so that a
/// stuck sampler cannot widen its own bound).
let internal rhatBound (chains: int) (essBulk: float) =
    let m = 2 * chains
    let q = MathNet.Numerics.Distributions.ChiSquared.InvCDF(float (m - 1), 0.999) / float (m - 1)
    max 1.01 (1.0 + 0.5 * float m / essBulk * q)

/// Why the draws of one parameter do not look mixed (None when they do): a bulk ESS under 50 per chain, or
/// R̂ above rhatBound.
let internal mixingProblem (chains: int) (rhat: float) (essBulk: float) =
    if not (essBulk >= 50.0 * float chains) then Some (sprintf "bulk ESS %.0f is under 50 per chain" essBulk)
    elif not (rhat < rhatBound chains essBulk) then Some (sprintf "R-hat %.4f is above %.4f (bulk ESS %.0f)" rhat (rhatBound chains essBulk) essBulk)
    else None

/// The issue's acceptance rule for every reference parameter: |mean − ref| < 4·√(MCSE² + (ref sd/100)²),
/// sd within 10 %, R̂ < 1.01 (rhatBound where the ESS is too small to resolve it); and no divergent
/// transition (posteriordb's reference runs had none), but where Stan's own sampler diverges too
/// (divergenceAllowance).
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
        match mixingProblem r.Chains s.RHat s.EssBulk with
        | Some why -> failtestf "%s %s: %s" name p why
        | None -> ()
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

/// The R̂ bound: 1.01 where the ESS resolves it; above it, well-mixed chains pass and chains in two modes fail.
[<Tests>]
let rhatBoundTests =
    testList "NutsPosterior.rhatBound" [
        testCase "the issue's 1.01 at large ESS, the χ² bound at small ESS" <| fun _ ->
            Expect.equal (rhatBound 4 1e6) 1.01 "large ESS"
            // χ²₇'s 0.999 quantile is 24.322 (tables): 1 + ½·(8/368)·24.322/7
            Expect.floatClose { absolute = 1e-5; relative = 1e-5 } (rhatBound 4 368.0) (1.0 + 0.5 * 8.0 / 368.0 * 24.322 / 7.0) "ESS 368"
        testCase "iid chains pass at small ESS; one chain shifted by one sd fails (its ESS collapses)" <| fun _ ->
            let r = Random 17
            let normal () = sqrt (-2.0 * log (1.0 - r.NextDouble())) * cos (2.0 * Math.PI * r.NextDouble())
            for rep in 1 .. 20 do
                let chains = Array.init 4 (fun _ -> Array.init 100 (fun _ -> normal ()))
                let s = Diagnostics.summarize "x" chains
                Expect.isNone (mixingProblem 4 s.RHat s.EssBulk) (sprintf "iid draws, rep %d: R-hat %g, ESS %g" rep s.RHat s.EssBulk)
                let shifted = chains |> Array.mapi (fun c d -> if c = 0 then d |> Array.map ((+) 1.0) else d)
                let t = Diagnostics.summarize "x" shifted
                Expect.isSome (mixingProblem 4 t.RHat t.EssBulk) (sprintf "one chain shifted, rep %d: R-hat %g, ESS %g" rep t.RHat t.EssBulk)
    ]

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
