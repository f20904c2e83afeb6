/// Convergence diagnostics against the published formulas (Vehtari et al. 2021) on inputs whose answer is
/// known: AR(1) chains (ESS = S(1 − ρ)/(1 + ρ)), iid chains (R̂ → 1, ESS ≈ S), chains with shifted means
/// (R̂ from the population integral), the asymptotic quantile standard error, and exact small cases.
module FunctionalBayes.Tests.DiagnosticsTests

open System
open Expecto
open MathNet.Numerics.Statistics
open FunctionalBayes
open FunctionalBayes.Tensors

type private MNormal = MathNet.Numerics.Distributions.Normal
type private MBeta = MathNet.Numerics.Distributions.Beta

/// Standard normal draws, chains × n, from the project's RNG at a fixed seed.
let private normals (seed: uint64) (rep: int) (chains: int) (n: int) : float[][] =
    let a = Rng.normal (Rng.foldIn (Rng.key seed) rep) [| chains; n |] |> Tensor.toArray
    Array.init chains (fun c -> a.[c * n .. c * n + n - 1])

/// AR(1) chains x_t = ρ x_{t−1} + e_t (unit innovations), started in the stationary law N(0, 1/(1 − ρ²)).
let private ar1 (seed: uint64) (rep: int) (rho: float) (chains: int) (n: int) : float[][] =
    normals seed rep chains n
    |> Array.map (fun e ->
        let x = Array.zeroCreate n
        x.[0] <- e.[0] / sqrt (1.0 - rho * rho)
        for t in 1 .. n - 1 do
            x.[t] <- rho * x.[t - 1] + e.[t]
        x)

let private within (tol: float) (expected: float) (actual: float) (what: string) =
    if not (abs (actual - expected) <= tol) then
        failtestf "%s: expected %g ± %g, got %g" what expected tol actual

let private relWithin (rel: float) (expected: float) (actual: float) (what: string) =
    within (rel * abs expected) expected actual what

let private throwsWith (fragments: string list) (f: unit -> unit) =
    let ex = Expect.throwsC f id
    for s in fragments do
        Expect.stringContains ex.Message s "the message names the problem"

[<Tests>]
let tests =
    testList "Diagnostics" [

        testCase "autocovariance by FFT equals the direct biased sum at every lag" <| fun () ->
            for n in [ 5; 64; 100; 257 ] do
                let x = (normals 11UL n 1 n).[0] |> Array.map (fun v -> 3.0 + 2.0 * v)
                let m = Array.average x
                let direct =
                    Array.init n (fun t ->
                        let mutable s = 0.0
                        for i in 0 .. n - 1 - t do
                            s <- s + (x.[i] - m) * (x.[i + t] - m)
                        s / float n)
                let fft = Diagnostics.autocovariance x
                for t in 0 .. n - 1 do
                    within 1e-12 direct.[t] fft.[t] (sprintf "n = %d, lag %d" n t)

        testCase "split chains drop the middle draw of odd chains; rank normalization uses average ranks and Blom's 3/8" <| fun () ->
            let split = Diagnostics.splitChains [| [| 1.0; 2.0; 3.0; 4.0; 5.0 |]; [| 6.0; 7.0; 8.0; 9.0; 10.0 |] |]
            Expect.equal split [| [| 1.0; 2.0 |]; [| 4.0; 5.0 |]; [| 6.0; 7.0 |]; [| 9.0; 10.0 |] |] "halves"
            let z = Diagnostics.rankNormalize [| [| 3.0; 1.0 |]; [| 2.0; 2.0 |] |]
            // ranks 4, 1 | 2.5, 2.5 among S = 4: Φ⁻¹((r − 3/8)/(S + 1/4))
            let expected r = MNormal.InvCDF(0.0, 1.0, (r - 0.375) / 4.25)
            within 1e-13 (expected 4.0) z.[0].[0] "rank 4"
            within 1e-13 (expected 1.0) z.[0].[1] "rank 1"
            within 1e-13 (expected 2.5) z.[1].[0] "tied rank 2.5"
            within 1e-13 (expected 2.5) z.[1].[1] "tied rank 2.5"

        testCase "basic R̂ is √((B/W + n − 1)/n) on a hand-computed case" <| fun () ->
            // chain means 2 and 5, variances 1 and 1 (n = 3): B = 3·4.5 = 13.5, W = 1
            let r = Diagnostics.rhatBasic [| [| 1.0; 2.0; 3.0 |]; [| 4.0; 5.0; 6.0 |] |]
            within 1e-14 (sqrt ((13.5 + 2.0) / 3.0)) r "R̂"

        testCase "iid chains: R̂ within 0.01 of 1, bulk, tail and mean ESS near S" <| fun () ->
            // 4 × 1000 iid N(0,1), 20 replications. R̂² − 1 ≈ (B/W − 1)/n with B/W ~ χ²₇/7 and n = 500 split draws:
            // R̂ > 1.01 would need χ²₇ > 77 (p < 1e-13). Over 200 replications (measured), the bulk ESS and the
            // ESS of the mean had relative sd 6 % and no visible bias: the mean of 20 has ≈ 1.4 %, tolerance 6 %.
            // The tail ESS had sd 4.2 % and a bias of −4 % (the indicator's quantile is estimated from the same
            // draws): tolerance 10 % (bias + 6 sd of the mean of 20).
            let reps = 20
            let s = 4000.0
            let results =
                [| for r in 0 .. reps - 1 ->
                    let d = normals 21UL r 4 1000
                    let rh = Diagnostics.rhat d
                    within 0.01 1.0 rh (sprintf "R̂ of replication %d" r)
                    Diagnostics.essBulk d, Diagnostics.essTail d, Diagnostics.essMean d |]
            relWithin 0.06 s (results |> Array.averageBy (fun (b, _, _) -> b)) "mean bulk ESS"
            relWithin 0.10 s (results |> Array.averageBy (fun (_, t, _) -> t)) "mean tail ESS"
            relWithin 0.06 s (results |> Array.averageBy (fun (_, _, m) -> m)) "mean ESS of the mean"

        testCase "AR(1) chains: ESS of the mean and bulk ESS equal S(1 − ρ)/(1 + ρ)" <| fun () ->
            // 4 chains × 2000, 20 replications per ρ. Per-replication relative sd of the ESS estimate (measured
            // over 200 replications): 6.3 % at ρ = 0.5, 5.1 % at ρ = −0.3; the mean of 20 has ≤ 1.4 %, and the
            // bias was below 1 %: tolerance 8 % (> 5 sd).
            for rho in [ 0.5; -0.3 ] do
                let s = 8000.0
                let exact = s * (1.0 - rho) / (1.0 + rho)
                let est = [| for r in 0 .. 19 -> let d = ar1 31UL r rho 4 2000 in Diagnostics.essMean d, Diagnostics.essBulk d |]
                relWithin 0.08 exact (est |> Array.averageBy fst) (sprintf "ESS of the mean, ρ = %g" rho)
                relWithin 0.08 exact (est |> Array.averageBy snd) (sprintf "bulk ESS, ρ = %g" rho)

        testCase "ESS is capped at S·log10(S) for strongly antithetic chains" <| fun () ->
            let d = Array.init 4 (fun c -> Array.init 200 (fun i -> (if i % 2 = 0 then 1.0 else -1.0) + 0.001 * float (c + i % 7)))
            let s = 800.0
            Expect.isLessThanOrEqual (Diagnostics.essMean d) (s * log10 s * (1.0 + 1e-12)) "capped"

        testCase "AR(1): MCSE of the mean is σ√((1 + ρ)/((1 − ρ)S))" <| fun () ->
            // ρ = 0.5, unit innovations: σ² = 4/3, so MCSE = 2/√S. The MCSE is √(var/ESS); with ESS's 6.3 %
            // relative sd, MCSE's is ≈ 3.2 % per replication, ≈ 1 % for the mean of 10: tolerance 5 % (5 sd).
            let rho = 0.5
            let s = 8000.0
            let exact = sqrt ((1.0 / (1.0 - rho * rho)) * (1.0 + rho) / ((1.0 - rho) * s))
            let m = [| for r in 0 .. 9 -> Diagnostics.mcseMean (ar1 41UL r rho 4 2000) |] |> Array.average
            relWithin 0.05 exact m "MCSE of the mean"

        testCase "iid: MCSE of the sd is σ/√(2S)" <| fun () ->
            // Kenney–Keeping for a normal: var(var) = 2σ⁴/S, so MCSE(sd) = σ/√(2S). σ = 2, 4 × 1000, mean of 10
            // replications: over 200 replications (measured) the ratio had mean 1.010 and sd 0.038, so the mean
            // of 10 has sd 1.2 %: tolerance 7 % (bias + 5 sd).
            let s = 4000.0
            let m = [| for r in 0 .. 9 -> Diagnostics.mcseSd (normals 51UL r 4 1000 |> Array.map (Array.map ((*) 2.0))) |] |> Array.average
            relWithin 0.07 (2.0 / sqrt (2.0 * s)) m "MCSE of the sd"

        testCase "quantile MCSE: order statistics at the Beta(ess·p + 1, ess·(1 − p) + 1) ±1σ quantiles, halved" <| fun () ->
            let d = ar1 61UL 0 0.3 4 500
            let sorted = Array.concat d |> Array.sort
            let s = sorted.Length
            for p in [ 0.05; 0.5; 0.95 ] do
                let ess = Diagnostics.essQuantile p d
                let beta = MBeta(ess * p + 1.0, ess * (1.0 - p) + 1.0)
                let a1 = beta.InverseCumulativeDistribution 0.1586553
                let a2 = beta.InverseCumulativeDistribution 0.8413447
                let th1 = sorted.[max (int (floor (a1 * float s))) 1 - 1]
                let th2 = sorted.[min (int (ceil (a2 * float s))) s - 1]
                within 1e-12 ((th2 - th1) / 2.0) (Diagnostics.mcseQuantile p d) (sprintf "p = %g" p)

        testCase "iid: quantile MCSE matches the asymptotic √(p(1 − p)/S)/φ(Φ⁻¹(p))" <| fun () ->
            // 4 × 10000 draws. The estimate is half a spacing of ≈ 2√(p(1−p)S) order statistics, so it is noisy:
            // over 100 replications (measured) its ratio to the formula had mean 1.027 and sd 0.112 at p = 0.05,
            // mean 1.006 and sd 0.076 at p = 0.5. The mean of 10 has sd ≤ 3.5 %: tolerance 15 % (bias + 3.5 sd).
            let s = 40000.0
            for p in [ 0.05; 0.5 ] do
                let exact = sqrt (p * (1.0 - p) / s) / MNormal.PDF(0.0, 1.0, MNormal.InvCDF(0.0, 1.0, p))
                let m = [| for r in 0 .. 9 -> Diagnostics.mcseQuantile p (normals 71UL r 4 10000) |] |> Array.average
                relWithin 0.15 exact m (sprintf "quantile MCSE at p = %g" p)

        testCase "shifted chain: bulk R̂ equals its population value; R̂ is the larger of bulk and folded" <| fun () ->
            // Chain 0 of 4 is shifted by δ = 1. Rank-normalized draws are z = Φ⁻¹(F(x)) with F the mixture
            // ¾Φ(x) + ¼Φ(x − 1); split gives 8 chains, 2 shifted, so R̂² → 1 + s²/W with s² the variance of the
            // 8 chain means of z (denominator 7) and W the mean within-chain variance of z, both by quadrature.
            // Chain-mean noise (sd ≈ 0.03 for n = 1000) moves R̂ by ≈ 0.005: tolerance 0.02.
            let delta = 1.0
            let f x = 0.75 * MNormal.CDF(0.0, 1.0, x) + 0.25 * MNormal.CDF(0.0, 1.0, x - delta)
            let moments shift =
                let h = 0.001
                let mutable m1 = 0.0
                let mutable m2 = 0.0
                for i in -8000 .. 8000 do // ±8 sd: the weight beyond is below 1e-15
                    let x = shift + float i * h
                    let z = MNormal.InvCDF(0.0, 1.0, f x)
                    let w = MNormal.PDF(shift, 1.0, x) * h
                    if Double.IsFinite z then
                        m1 <- m1 + z * w
                        m2 <- m2 + z * z * w
                m1, m2 - m1 * m1
            let mu0, v0 = moments 0.0
            let mu1, v1 = moments delta
            let grand = (6.0 * mu0 + 2.0 * mu1) / 8.0
            let s2 = (6.0 * (mu0 - grand) ** 2.0 + 2.0 * (mu1 - grand) ** 2.0) / 7.0
            let w = (6.0 * v0 + 2.0 * v1) / 8.0
            let population = sqrt (1.0 + s2 / w)
            let d = normals 81UL 0 4 2000 |> Array.mapi (fun c ch -> if c = 0 then ch |> Array.map ((+) delta) else ch)
            let bulk = Diagnostics.rhatBulk d
            within 0.02 population bulk "bulk R̂"
            Expect.isGreaterThan bulk 1.05 "a shift of one sd is flagged"
            Expect.equal (Diagnostics.rhat d) (max bulk (Diagnostics.rhatTail d)) "R̂ = max(bulk, folded)"

        testCase "a chain with a larger scale is caught by the folded R̂, not by the bulk R̂" <| fun () ->
            let d = normals 91UL 0 4 2000 |> Array.mapi (fun c ch -> if c = 0 then ch |> Array.map ((*) 2.0) else ch)
            Expect.isLessThan (Diagnostics.rhatBulk d) 1.01 "bulk R̂ sees no location difference"
            Expect.isGreaterThan (Diagnostics.rhatTail d) 1.05 "folded R̂ sees the scale difference"
            Expect.isGreaterThan (Diagnostics.rhat d) 1.05 "reported R̂"

        testCase "E-BFMI: exact small case, iid energies give 2, AR(1) energies give 2(1 − ρ)" <| fun () ->
            within 1e-15 4.0 (Diagnostics.ebfmi [| 0.0; 1.0; 0.0; 1.0 |]) "mean diff² 1 over variance 1/4"
            // E[(E_t − E_{t−1})²] = 2σ²(1 − ρ). With 100000 draws the variance in the denominator has a relative
            // sd of √(2τ/S): 0.5 % for iid, 1.9 % for ρ = 0.9 (τ = 19); the numerator less: tolerance 8 %.
            relWithin 0.08 2.0 (Diagnostics.ebfmi (normals 101UL 0 1 100000).[0]) "iid"
            relWithin 0.08 0.2 (Diagnostics.ebfmi (ar1 102UL 0 0.9 1 100000).[0]) "AR(1), ρ = 0.9"

        testCase "summarize: mean, sd and type-7 quantiles equal MathNet's; the diagnostics equal the single functions" <| fun () ->
            let d = ar1 111UL 0 0.4 3 300
            let flat = Array.concat d
            let s = Diagnostics.summarize "x" d
            within 1e-12 (Statistics.Mean flat) s.Mean "mean"
            within 1e-12 (Statistics.StandardDeviation flat) s.Sd "sd"
            within 1e-12 (Statistics.QuantileCustom(flat, 0.05, QuantileDefinition.R7)) s.Q5 "5 %"
            within 1e-12 (Statistics.QuantileCustom(flat, 0.5, QuantileDefinition.R7)) s.Q50 "50 %"
            within 1e-12 (Statistics.QuantileCustom(flat, 0.95, QuantileDefinition.R7)) s.Q95 "95 %"
            Expect.equal s.EssBulk (Diagnostics.essBulk d) "bulk ESS"
            Expect.equal s.EssTail (Diagnostics.essTail d) "tail ESS"
            Expect.equal s.RHat (Diagnostics.rhat d) "R̂"
            Expect.equal s.McseMean (Diagnostics.mcseMean d) "MCSE mean"
            Expect.equal s.McseSd (Diagnostics.mcseSd d) "MCSE sd"

        testCase "a constant quantity has NaN diagnostics (as posterior's NA), not an exception" <| fun () ->
            let s = Diagnostics.summarize "c" (Array.init 2 (fun _ -> Array.create 10 1.5))
            Expect.equal s.Mean 1.5 "mean"
            Expect.equal s.Sd 0.0 "sd"
            Expect.isTrue (Double.IsNaN s.RHat && Double.IsNaN s.EssBulk && Double.IsNaN s.EssTail) "undefined diagnostics"

        testCase "summarizeSites: one summary per scalar element, named site[i] / site[i,j], in row-major order" <| fun () ->
            let chains, n = 2, 8
            let theta = Tensor.create [| chains; n; 3 |] (Array.concat (normals 121UL 0 1 (chains * n * 3)))
            let w = Tensor.create [| chains; n; 2; 2 |] (Array.concat (normals 122UL 0 1 (chains * n * 4)))
            let mu = Tensor.create [| chains; n |] (Array.concat (normals 123UL 0 1 (chains * n)))
            let sums = Diagnostics.summarizeSites (Map.ofList [ "theta", theta; "w", w; "mu", mu ])
            Expect.equal (sums |> Array.map (fun s -> s.Name))
                [| "mu"; "theta[0]"; "theta[1]"; "theta[2]"; "w[0,0]"; "w[0,1]"; "w[1,0]"; "w[1,1]" |] "names"
            let data = Tensor.toArray theta
            let theta1 = Array.init chains (fun c -> Array.init n (fun i -> data.[(c * n + i) * 3 + 1]))
            Expect.equal sums.[2] (Diagnostics.summarize "theta[1]" theta1) "theta[1] from its own draws"

        testCase "bad draws are refused before any work, naming the site, chain and the fix" <| fun () ->
            throwsWith [ "theta"; "[8]"; "[chains; draws" ] (fun () ->
                Diagnostics.summarizeSites (Map.ofList [ "theta", Tensor.ofArray (Array.zeroCreate 8) ]) |> ignore)
            throwsWith [ "chain 1"; "3 draws"; "same number" ] (fun () ->
                Diagnostics.summarize "x" [| [| 1.0; 2.0; 3.0; 4.0 |]; [| 1.0; 2.0; 3.0 |] |] |> ignore)
            throwsWith [ "draw 2 of chain 0"; "NaN"; "finite" ] (fun () ->
                Diagnostics.rhat [| [| 1.0; 2.0; nan; 4.0; 5.0 |] |] |> ignore)
            throwsWith [ "at least 4" ] (fun () -> Diagnostics.essBulk [| [| 1.0; 2.0 |] |] |> ignore)

        testCase "warnings: Stan's texts from the numbers, none when all is well" <| fun () ->
            let good name = { Name = name; Mean = 0.0; Sd = 1.0; McseMean = 0.01; McseSd = 0.01; Q5 = -1.6; Q50 = 0.0
                              Q95 = 1.6; EssBulk = 1000.0; EssTail = 900.0; RHat = 1.001 }
            let health c = { Chain = c; Draws = 1000; Divergences = 0; TreeDepthHits = 0; Ebfmi = 0.9 }
            let input = { Chains = 4; MaxTreeDepth = 10; TargetAccept = 0.8; Health = Array.init 4 health
                          Summaries = [| good "a"; good "b" |] }
            Expect.isEmpty (Diagnostics.warnings input) "a clean run"
            let bad =
                { input with
                    Health = [| { health 0 with Divergences = 3 }; { health 1 with Divergences = 2; TreeDepthHits = 7 }
                                { health 2 with Ebfmi = 0.21 }; health 3 |]
                    Summaries = [| { good "a" with RHat = 1.02 }; { good "b" with RHat = 1.5; EssBulk = 399.0 }
                                   { good "c" with EssTail = 120.0 }; { good "d" with RHat = nan; EssBulk = nan } |] }
            let ws = Diagnostics.warnings bad
            Expect.equal ws
                [ DiagnosticWarning.Divergences (5, 0.8); DiagnosticWarning.TreeDepth (7, 10)
                  DiagnosticWarning.LowEbfmi [| 2, 0.21 |]; DiagnosticWarning.HighRHat (1.5, [| "a"; "b" |])
                  DiagnosticWarning.LowEssBulk (400.0, [| "b" |]); DiagnosticWarning.LowEssTail (400.0, [| "c" |]) ]
                "every kind, in Stan's order"
            let texts = Diagnostics.warningMessages bad
            Expect.stringContains texts.[0] "There were 5 divergent transitions after warmup" "divergences"
            Expect.stringContains texts.[1] "There were 7 transitions after warmup that exceeded the maximum treedepth. Increase max_treedepth above 10" "tree depth"
            Expect.stringContains texts.[2] "There were 1 chains where the estimated Bayesian Fraction of Missing Information was low" "E-BFMI"
            Expect.stringContains texts.[3] "The largest R-hat is 1.50, indicating chains have not mixed" "R̂"
            Expect.stringContains texts.[4] "Bulk Effective Samples Size (ESS) is too low" "bulk ESS"
            Expect.stringContains texts.[5] "Tail Effective Samples Size (ESS) is too low" "tail ESS"

        testCase "chainHealth counts divergences and tree-depth hits and computes E-BFMI" <| fun () ->
            let h = Diagnostics.chainHealth 2 10 [| true; false; true; false |] [| 3; 10; 10; 9 |] [| 0.0; 1.0; 0.0; 1.0 |]
            Expect.equal h { Chain = 2; Draws = 4; Divergences = 2; TreeDepthHits = 2; Ebfmi = 4.0 } "health"
    ]
