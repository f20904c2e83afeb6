/// NUTS, static HMC and Stan's adaptation: the pieces against their formulas (window schedule, dual
/// averaging, step-size heuristic, U-turn checks, Welford shrinkage), the kernels against Gaussians with
/// known moments, divergences on a funnel, determinism, cancellation and bad input.
module FunctionalBayes.Tests.NutsTests

open System
open System.Threading
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.PosteriorDb

/// U(q) = ½ (q−m)ᵀ P (q−m) for a precision matrix P: a Gaussian N(m, P⁻¹), hand-coded.
let gaussianEvaluator (m: float[]) (prec: float[,]) =
    let d = m.Length
    { new IGradientEvaluator with
        member _.Dim = d
        member _.Evaluate(q, g) =
            let mutable u = 0.0
            for i in 0 .. d - 1 do
                let mutable s = 0.0
                for j in 0 .. d - 1 do s <- s + prec.[i, j] * (q.[j] - m.[j])
                g.[i] <- s
                u <- u + 0.5 * (q.[i] - m.[i]) * s
            u }

let gaussianSource (m: float[]) (prec: float[,]) : GradientSource =
    { Dim = m.Length; Kind = GradientKind.Custom "hand-coded Gaussian"; Create = fun () -> gaussianEvaluator m prec }

let private quiet = McmcOptions.Default

/// Neal's funnel: v ~ N(0, 3²), x_i | v ~ N(0, e^v), i = 1..n, on (v, x).
let private funnel (n: int) =
    { new IGradientEvaluator with
        member _.Dim = n + 1
        member _.Evaluate(q, g) =
            let v = q.[0]
            let mutable u = v * v / 18.0 + 0.5 * float n * v
            let mutable gv = v / 9.0 + 0.5 * float n
            for i in 1 .. n do
                let x = q.[i]
                u <- u + 0.5 * x * x * exp (-v)
                gv <- gv - 0.5 * x * x * exp (-v)
                g.[i] <- x * exp (-v)
            g.[0] <- gv
            u }

/// Mean and sample covariance of rows (n × d row-major).
let private moments (d: int) (rows: float[]) =
    let n = rows.Length / d
    let mean = Array.init d (fun j -> Seq.init n (fun i -> rows.[i * d + j]) |> Seq.average)
    let cov = Array2D.init d d (fun a b -> (Seq.init n (fun i -> (rows.[i * d + a] - mean.[a]) * (rows.[i * d + b] - mean.[b])) |> Seq.sum) / float (n - 1))
    mean, cov

let private throwsWith<'E when 'E :> exn> (fragments: string list) (f: unit -> unit) =
    let ex =
        try f (); failtest "expected an exception"
        with :? 'E as e -> e :> exn
    for s in fragments do Expect.stringContains ex.Message s "the message names the problem"

[<Tests>]
let scheduleTests =
    testList "Nuts.schedule" [
        // aevb_bnn.md C.3 and inference.md 1.4
        testCase "1000 warmup: fast 75, slow 25/50/100/200/500, fast 50" <| fun _ ->
            let s = WindowSchedule.build 1000
            Expect.isTrue s.AdaptsMetric "adapts"
            Expect.equal s.InitBuffer 75 "init"
            Expect.equal s.TermBuffer 50 "term"
            Expect.equal s.Windows [| 75, 25; 100, 50; 150, 100; 250, 200; 450, 500 |] "windows"
        testCase "500 warmup" <| fun _ ->
            let s = WindowSchedule.build 500
            Expect.equal (s.InitBuffer, s.TermBuffer) (75, 50) "buffers"
            Expect.equal s.Windows [| 75, 25; 100, 50; 150, 100; 250, 200 |] "windows"
        testCase "100 warmup falls back to 15 % / 75 % / 10 %" <| fun _ ->
            let s = WindowSchedule.build 100
            Expect.equal (s.InitBuffer, s.TermBuffer) (15, 10) "buffers"
            Expect.equal s.Windows [| 15, 75 |] "one window"
        testCase "150 warmup fits the defaults exactly: one window" <| fun _ ->
            let s = WindowSchedule.build 150
            Expect.equal (s.InitBuffer, s.TermBuffer) (75, 50) "buffers"
            Expect.equal s.Windows [| 75, 25 |] "windows"
        testCase "below 20 iterations no metric adaptation" <| fun _ ->
            let s = WindowSchedule.build 19
            Expect.isFalse s.AdaptsMetric "no metric"
            let st = WindowSchedule.stages s
            Expect.equal st.Length 19 "one stage per iteration"
            Expect.isTrue (st |> Array.forall (fun x -> not x.Slow && not x.WindowEnd)) "all fast"
        testCase "stages mark each window's iterations and its end" <| fun _ ->
            let st = WindowSchedule.stages (WindowSchedule.build 1000)
            Expect.equal (st |> Array.filter (fun x -> x.Slow) |> Array.length) 875 "75..949 are slow"
            Expect.equal ([| 0 .. 999 |] |> Array.filter (fun i -> st.[i].WindowEnd)) [| 99; 149; 249; 449; 949 |] "window ends"
        testCase "negative warmup is refused" <| fun _ ->
            throwsWith<ArgumentException> [ "non-negative"; "-1" ] (fun () -> WindowSchedule.build -1 |> ignore)
    ]

[<Tests>]
let dualAveragingTests =
    testList "Nuts.dualAveraging" [
        testCase "two updates follow Hoffman & Gelman's formulas (Stan's constants)" <| fun _ ->
            let s = DualAveragingSettings.Default
            let st0 = DualAveraging.init 0.5
            Expect.floatClose Accuracy.veryHigh st0.Mu (log 5.0) "mu = log(10 eps0)"
            let st1 = DualAveraging.update s 0.6 st0
            // t = 1: eta = 1/11, sbar = 0.2/11, x = mu - sbar*1/0.05, xbar = x (weight 1^-0.75 = 1)
            let sbar1 = 0.2 / 11.0
            let x1 = log 5.0 - sbar1 / 0.05
            Expect.floatClose Accuracy.veryHigh st1.SBar sbar1 "sbar1"
            Expect.floatClose Accuracy.veryHigh st1.X x1 "x1"
            Expect.floatClose Accuracy.veryHigh st1.XBar x1 "xbar1"
            // t = 2 with an accept statistic above 1 (clipped to 1)
            let st2 = DualAveraging.update s 1.7 st1
            let sbar2 = (1.0 - 1.0 / 12.0) * sbar1 + (1.0 / 12.0) * (0.8 - 1.0)
            let x2 = log 5.0 - sbar2 * sqrt 2.0 / 0.05
            let w = 2.0 ** -0.75
            Expect.floatClose Accuracy.veryHigh st2.X x2 "x2"
            Expect.floatClose Accuracy.veryHigh st2.XBar ((1.0 - w) * x1 + w * x2) "xbar2"
            Expect.floatClose Accuracy.veryHigh (DualAveraging.final st2) (exp ((1.0 - w) * x1 + w * x2)) "final = exp(xbar)"
        testCase "converges to the step size whose accept rate is the target" <| fun _ ->
            // accept(eps) = exp(-eps): the target 0.8 is reached at eps* = -log 0.8
            let s = DualAveragingSettings.Default
            let mutable st = DualAveraging.init 1.0
            for _ in 1 .. 3000 do st <- DualAveraging.update s (exp (-(DualAveraging.stepSize st))) st
            Expect.floatClose { absolute = 0.0; relative = 0.02 } (DualAveraging.final st) (-(log 0.8)) "eps*"
        testCase "bad settings are refused" <| fun _ ->
            throwsWith<ArgumentException> [ "target"; "1.5" ] (fun () -> DualAveraging.validate { DualAveragingSettings.Default with TargetAccept = 1.5 })
        testCase "a run starts as Stan's services start it: the searched ε0 first, μ = log(10 ε_user)" <| fun _ ->
            let st = DualAveraging.start 4e-56 1.0
            Expect.floatClose { absolute = 0.0; relative = 1e-12 } (DualAveraging.stepSize st) 4e-56 "the first transition's step size is the searched one"
            Expect.floatClose Accuracy.veryHigh st.Mu (log 10.0) "μ from the user's step size"
            // one accepted transition: x = μ − s̄/γ with s̄ = (δ − 1)/(1 + t0)
            let st1 = DualAveraging.update DualAveragingSettings.Default 1.0 st
            Expect.floatClose Accuracy.veryHigh (DualAveraging.stepSize st1) (10.0 * exp (0.2 / 11.0 / 0.05)) "ε after one update"
        testCase "Stan's warmup from a point far in the tails: the step sizes rstan 2.21.7 printed" <| fun _ ->
            // arma11 at mu -0.08, phi 0.124, theta 1.633, sigma 1 (U = 2e84): rstan's sampler output (seed 21,
            // save_warmup) gave stepsize__ 5.61e-45, 14.4, 2.43, 0.24, 0.0186 for warmup iterations 1-5; with μ at
            // log(10 ε0) the second was 8e-44 and chains from such points could stay there
            let m = Posteriors.arma11.Model (PosteriorData.load Posteriors.arma11.Name)
            let ev = (Compilation.auto (LogDensity.potential (Rng.key 1UL) m)).Create()
            let kernel = Nuts.tunable ev 10 1000.0
            let ws = WarmupSettings.Default
            let stages = WindowSchedule.stages (WindowSchedule.build ws.NumWarmup)
            let mutable st = Warmup.init ws kernel (Rng.key 2UL) (Hmc.init ev [| -0.080; 0.124; 1.633; 0.0 |])
            let eps = ResizeArray [ st.StepSize ]
            for i in 0 .. 3 do
                st <- fst (Warmup.step ws stages kernel (Rng.foldIn (Rng.key 3UL) i) st)
                eps.Add st.StepSize
            let stan = [ 5.61e-45; 14.4; 2.43; 0.24; 0.0186 ]
            List.iteri (fun i (e: float) -> Expect.floatClose { absolute = 0.0; relative = 0.005 } eps.[i] e (sprintf "iteration %d" (i + 1))) stan
    ]

[<Tests>]
let stepSizeTests =
    let d = 1000
    let ev = gaussianEvaluator (Array.zeroCreate d) (Array2D.init d d (fun i j -> if i = j then 1.0 else 0.0))
    let atZero = Hmc.init ev (Array.zeroCreate d)
    // From q = 0 on N(0, I), one leapfrog of size e changes H by -|p|²e⁴/8; with d = 1000, |p|² is within
    // 1000 ± 140 (> 4 sd) so the heuristic's threshold ΔH > log 0.8 holds exactly for e < (8·0.223/|p|²)^¼,
    // between 0.198 and 0.212.
    testList "Nuts.stepSizeHeuristic" [
        testCase "halves from 1 down to 0.125 on a 1000-d standard normal" <| fun _ ->
            let e = Hmc.findStepSize ev (Metric.identity d) (Rng.key 3UL) atZero 1.0
            Expect.equal e 0.125 "1 → 0.5 → 0.25 → 0.125"
        testCase "doubles from 0.01 up to 0.32" <| fun _ ->
            let e = Hmc.findStepSize ev (Metric.identity d) (Rng.key 4UL) atZero 0.01
            Expect.floatClose Accuracy.veryHigh e 0.32 "0.01 → … → 0.32, the first above the threshold"
        testCase "a flat potential is improper" <| fun _ ->
            let flat = { new IGradientEvaluator with
                            member _.Dim = 2
                            member _.Evaluate(_, g) = g.Clear(); 0.0 }
            throwsWith<InvalidOperationException> [ "improper" ] (fun () ->
                Hmc.findStepSize flat (Metric.identity 2) (Rng.key 1UL) (Hmc.init flat [| 0.0; 0.0 |]) 1.0 |> ignore)
    ]

[<Tests>]
let uturnTests =
    // one dimension, unit metric (p♯ = p); subtree A has momenta a0 (outer), a1 (inner), B has b0 (inner), b1 (outer)
    let check (a0: float) (a1: float) (b0: float) (b1: float) =
        NutsKernel.MergeCriterion([| a0 |], [| a1 |], [| a1 |], [| a0 + a1 |], [| b0 |], [| b0 |], [| b1 |], [| b0 + b1 |], [| 0.0 |])
    testList "Nuts.uturn" [
        testCase "criterion: both ends agree with the summed momentum" <| fun _ ->
            Expect.isTrue (NutsKernel.Criterion([| 1.0; 0.0 |], [| 0.5; 0.5 |], [| 2.0; 1.0 |])) "no U-turn"
            Expect.isFalse (NutsKernel.Criterion([| 1.0; 0.0 |], [| -3.0; 0.0 |], [| 2.0; 1.0 |])) "the plus end turned"
            Expect.isFalse (NutsKernel.Criterion([| -1.0; 0.0 |], [| 1.0; 0.0 |], [| 2.0; 1.0 |])) "the minus end turned"
        testCase "a straight trajectory merges" <| fun _ ->
            Expect.isTrue (check 1.0 1.0 1.0 1.0) "no U-turn"
        testCase "a U-turn across the whole tree" <| fun _ ->
            Expect.isFalse (check 1.0 1.0 -1.0 -2.0) "ρ = -1, a0·ρ < 0"
        testCase "a U-turn only the extra check of A extended by b0 sees" <| fun _ ->
            // whole: ρ = 1+1-3+5 = 4, a0·4 > 0 and b1·4 > 0: passes; A+b0: ρ = -1, a0·ρ < 0: U-turn
            Expect.isTrue (NutsKernel.Criterion([| 1.0 |], [| 5.0 |], [| 4.0 |])) "the whole-tree check alone passes"
            Expect.isFalse (check 1.0 1.0 -3.0 5.0) "Stan's extra check finds it"
        testCase "a U-turn only the extra check of B extended by a1 sees" <| fun _ ->
            // whole: ρ = 5-3+1+1 = 4 passes; B+a1: ρ = -3+1+1 = -1 with b1 = 1 > 0 → U-turn
            Expect.isTrue (NutsKernel.Criterion([| 5.0 |], [| 1.0 |], [| 4.0 |])) "the whole-tree check alone passes"
            Expect.isTrue (NutsKernel.Criterion([| 5.0 |], [| 1.0 |], [| 5.0 - 3.0 + 1.0 |])) "A + b0 passes"
            Expect.isFalse (check 5.0 -3.0 1.0 1.0) "Stan's extra check finds it"
    ]

[<Tests>]
let kernelTests =
    let m = [| 1.0; -2.0 |]
    let cov = array2D [ [ 1.0; 0.8 ]; [ 0.8; 2.0 ] ]
    let det = cov.[0, 0] * cov.[1, 1] - cov.[0, 1] * cov.[1, 0]
    let prec = array2D [ [ cov.[1, 1] / det; -cov.[0, 1] / det ]; [ -cov.[1, 0] / det; cov.[0, 0] / det ] ]
    let run (step: RngKey -> HmcState -> HmcState * TransitionInfo) (init: HmcState) (n: int) (seed: uint64) =
        let rows = Array.zeroCreate (n * 2)
        let mutable s = init
        let infos = Array.init n (fun i ->
            let next, info = step (Rng.foldIn (Rng.key seed) i) s
            s <- next
            Array.blit s.Position 0 rows (i * 2) 2
            info)
        rows, infos
    // moments of 4000 draws; NUTS draws of a 2-d Gaussian are near-independent, so the MCSE of a mean is
    // about sd/√4000 and that of a variance about var·√(2/4000); tolerances are 5 of those.
    let checkMoments (rows: float[]) =
        let mean, c = moments 2 rows
        for j in 0 .. 1 do
            Expect.isLessThan (abs (mean.[j] - m.[j])) (5.0 * sqrt cov.[j, j] / sqrt 4000.0) (sprintf "mean %d" j)
            Expect.isLessThan (abs (c.[j, j] - cov.[j, j])) (5.0 * cov.[j, j] * sqrt (2.0 / 4000.0)) (sprintf "variance %d" j)
        Expect.isLessThan (abs (c.[0, 1] - cov.[0, 1])) (5.0 * sqrt ((cov.[0, 0] * cov.[1, 1] + cov.[0, 1] ** 2.0) / 4000.0)) "covariance"
    testList "Nuts.kernels" [
        testCase "Rng.uniformAt and Rng.normalInto give Rng.uniform's and Rng.normal's numbers" <| fun _ ->
            let k = Rng.key 77UL
            let u = Rng.uniform k [| 300 |] |> Tensor.toArray
            for i in [ 0; 1; 17; 299 ] do Expect.equal (Rng.uniformAt k i) u.[i] (sprintf "uniform %d" i)
            let z = Array.zeroCreate 5000
            Rng.normalInto k (Span<float> z)
            Expect.equal z (Rng.normal k [| 5000 |] |> Tensor.toArray) "normals (ziggurat tails included)"
        testCase "NUTS (diagonal metric) samples a correlated Gaussian" <| fun _ ->
            let ev = gaussianEvaluator m prec
            let k = Nuts.kernel ev (NutsParameters.Create(0.6, Metric.identity 2))
            let rows, infos = run k.Step (k.Init [| 0.0; 0.0 |]) 4000 11UL
            checkMoments rows
            Expect.isFalse (infos |> Array.exists (fun i -> i.Divergent)) "no divergence"
            Expect.isTrue (infos |> Array.forall (fun i -> i.NumLeapfrog >= 1 && i.NumLeapfrog < (1 <<< (i.TreeDepth + 1)))) "leapfrogs < 2^(depth+1)"
        testCase "NUTS (dense metric = the covariance) samples a correlated Gaussian in short trees" <| fun _ ->
            let ev = gaussianEvaluator m prec
            let k = Nuts.kernel ev (NutsParameters.Create(0.9, Metric.dense cov))
            let rows, infos = run k.Step (k.Init [| 0.0; 0.0 |]) 4000 12UL
            checkMoments rows
            Expect.isLessThan (infos |> Array.averageBy (fun i -> float i.TreeDepth)) 2.5 "a well-conditioned geometry needs shallow trees"
        testCase "static HMC samples a correlated Gaussian" <| fun _ ->
            let ev = gaussianEvaluator m prec
            let k = Hmc.kernel ev { StepSize = 0.3; Metric = Metric.identity 2; NumSteps = 7; MaxDeltaH = 1000.0 }
            let rows, infos = run k.Step (k.Init [| 0.0; 0.0 |]) 4000 13UL
            let mean, c = moments 2 rows
            // static HMC draws are autocorrelated: allow 3x the iid errors
            for j in 0 .. 1 do
                Expect.isLessThan (abs (mean.[j] - m.[j])) (15.0 * sqrt cov.[j, j] / sqrt 4000.0) (sprintf "mean %d" j)
                Expect.isLessThan (abs (c.[j, j] - cov.[j, j])) (15.0 * cov.[j, j] * sqrt (2.0 / 4000.0)) (sprintf "variance %d" j)
            Expect.isTrue (infos |> Array.forall (fun i -> i.NumLeapfrog = 7 && i.TreeDepth = 0)) "fixed path"
        testCase "the step is a pure function of key and state" <| fun _ ->
            let k1 = Nuts.kernel (gaussianEvaluator m prec) (NutsParameters.Create(0.5, Metric.identity 2))
            let k2 = Nuts.kernel (gaussianEvaluator m prec) (NutsParameters.Create(0.5, Metric.identity 2))
            let s0 = k1.Init [| 0.3; 0.1 |]
            let a, ia = k1.Step (Rng.key 5UL) s0
            let _ = k1.Step (Rng.key 6UL) a
            let b, ib = k2.Step (Rng.key 5UL) s0
            Expect.equal a.Position b.Position "same position"
            Expect.equal ia ib "same info"
        testCase "divergences on Neal's funnel with a large step" <| fun _ ->
            let ev = funnel 9
            let k = Nuts.kernel ev (NutsParameters.Create(0.5, Metric.identity 10))
            // start in the neck (v = -4, x = 0.05): the curvature e^-v ≈ 55 makes 0.5 unstable there
            let start = Array.append [| -4.0 |] (Array.create 9 0.05)
            let _, infos = run (fun key s -> k.Step key s) (k.Init start) 200 21UL
            Expect.isTrue (infos |> Array.exists (fun i -> i.Divergent)) "divergent transitions flagged"
            let small = Nuts.kernel ev (NutsParameters.Create(0.01, Metric.identity 10))
            let _, infos2 = run small.Step (small.Init [| 0.0; 0.1; -0.1; 0.2; 0.0; 0.3; -0.2; 0.1; 0.0; 0.05 |]) 20 22UL
            Expect.isFalse (infos2 |> Array.exists (fun i -> i.Divergent)) "a small step in the mouth does not diverge"
        testCase "a NaN energy counts as divergent" <| fun _ ->
            let nanBeyond = { new IGradientEvaluator with
                                member _.Dim = 1
                                member _.Evaluate(q, g) =
                                    if abs q.[0] > 0.01 then g.[0] <- nan; nan else g.[0] <- q.[0]; 0.5 * q.[0] * q.[0] }
            let k = Nuts.kernel nanBeyond (NutsParameters.Create(2.0, Metric.identity 1))
            let _, info = k.Step (Rng.key 1UL) (k.Init [| 0.0 |])
            Expect.isTrue info.Divergent "NaN is divergent"
            Expect.equal info.NumLeapfrog 1 "stops at once"
        testCase "bad settings are refused naming them" <| fun _ ->
            let ev = gaussianEvaluator m prec
            throwsWith<ArgumentException> [ "step size"; "-1" ] (fun () -> Nuts.kernel ev (NutsParameters.Create(-1.0, Metric.identity 2)) |> ignore)
            throwsWith<ArgumentException> [ "dimension 3"; "2" ] (fun () -> Nuts.kernel ev (NutsParameters.Create(0.1, Metric.identity 3)) |> ignore)
            throwsWith<ArgumentException> [ "positive definite" ] (fun () -> Metric.dense (array2D [ [ 1.0; 2.0 ]; [ 2.0; 1.0 ] ]) |> ignore)
            throwsWith<ArgumentException> [ "entry 1" ] (fun () -> Metric.diagonal [| 1.0; 0.0 |] |> ignore)
    ]

[<Tests>]
let welfordTests =
    testList "Nuts.welford" [
        testCase "Stan's regularized variance (n/(n+5))·var + 1e-3·5/(n+5)" <| fun _ ->
            let xs = [| [| 1.0; 10.0 |]; [| 2.0; 14.0 |]; [| 4.0; 9.0 |]; [| 7.0; 11.0 |] |]
            let w = xs |> Array.fold (fun acc x -> Welford.add x acc) (Welford.init false 2)
            let var (col: float[]) = let mu = Array.average col in (col |> Array.sumBy (fun v -> (v - mu) ** 2.0)) / float (col.Length - 1)
            let expect j = (4.0 / 9.0) * var (xs |> Array.map (fun x -> x.[j])) + 1e-3 * 5.0 / 9.0
            match Welford.metric w with
            | DiagonalMetric v ->
                Expect.floatClose Accuracy.veryHigh v.[0] (expect 0) "var 0"
                Expect.floatClose Accuracy.veryHigh v.[1] (expect 1) "var 1"
            | DenseMetric _ | LowRankMetric _ -> failtest "diagonal expected"
            let wd = xs |> Array.fold (fun acc x -> Welford.add x acc) (Welford.init true 2)
            let c01 = (xs |> Array.sumBy (fun x -> (x.[0] - 3.5) * (x.[1] - 11.0))) / 3.0
            match Welford.metric wd with
            | DenseMetric (a, _) ->
                Expect.floatClose Accuracy.veryHigh a.[0, 0] (expect 0) "dense var 0"
                Expect.floatClose Accuracy.veryHigh a.[0, 1] ((4.0 / 9.0) * c01) "covariance shrunk, no ridge"
                Expect.floatClose Accuracy.veryHigh a.[1, 0] a.[0, 1] "symmetric"
            | DiagonalMetric _ | LowRankMetric _ -> failtest "dense expected"
    ]

/// A hand-coded potential for the determinism and cancellation tests (fast).
let private smallRunIn (ctx: RunContext) (o: McmcOptions) =
    let m = [| 0.5; -1.0; 2.0 |]
    let prec = array2D [ [ 2.0; 0.3; 0.0 ]; [ 0.3; 1.0; 0.2 ]; [ 0.0; 0.2; 0.5 ] ]
    Mcmc.sampleFlatIn ctx o (gaussianSource m prec) (Array.init o.Chains (fun k -> [| 0.1 * float k; 0.0; 0.0 |]))

let private smallRun (o: McmcOptions) = smallRunIn RunContext.Quiet o

[<Tests>]
let runTests =
    testList "Nuts.run" [
        testCase "parallel and serial runs are bit-identical; chains differ" <| fun _ ->
            let o = { quiet with Chains = 3; Warmup = 150; Samples = 100; Seed = 9UL }
            let a = smallRun { o with Parallel = true }
            let b = smallRun { o with Parallel = false }
            Expect.equal a.Positions b.Positions "positions"
            Expect.equal (a.Stats |> Array.map (fun s -> s.StepSize, s.NumLeapfrog, s.Energy)) (b.Stats |> Array.map (fun s -> s.StepSize, s.NumLeapfrog, s.Energy)) "stats"
            Expect.notEqual a.Positions.[0] a.Positions.[1] "chains are independent streams"
        testCase "chain k's draws depend only on the seed and k" <| fun _ ->
            let o = { quiet with Chains = 2; Warmup = 60; Samples = 40; Seed = 4UL; Parallel = false }
            let two = smallRun o
            let fourRun = smallRun { o with Chains = 4 }
            Expect.equal fourRun.Positions.[1] two.Positions.[1] "chain 1 is the same in a 2- and a 4-chain run"
        testCase "thinning keeps every Thin-th iteration" <| fun _ ->
            let o = { quiet with Chains = 1; Warmup = 30; Samples = 10; Seed = 4UL; Parallel = false }
            let full = smallRun { o with Samples = 30 }
            let thin = smallRun { o with Thin = 3 }
            Expect.equal thin.Positions.[0] (Array.init 30 (fun i -> full.Positions.[0].[(i / 3 * 3 + 2) * 3 + i % 3])) "every third draw"
        testCase "progress reports phases, and a cancelled run raises OperationCanceledException" <| fun _ ->
            use cts = new CancellationTokenSource()
            let seen = Collections.Concurrent.ConcurrentBag<RunProgress>()
            let report (p: RunProgress) =
                seen.Add p
                if p.Phase = RunPhase.Sampling then cts.Cancel()
            let o = { quiet with Chains = 2; Warmup = 40; Samples = 1000 }
            let ctx = { RunContext.Quiet with ProgressEvery = 10; OnProgress = Some report; Cancellation = cts.Token }
            Expect.throwsT<OperationCanceledException> (fun () -> smallRunIn ctx o |> ignore) "cancelled"
            Expect.isTrue (seen |> Seq.exists (fun p -> p.Phase = RunPhase.Warmup && p.Step = 40 && p.TotalSteps = 1040)) "warmup progress"
            Expect.isFalse (seen |> Seq.exists (fun p -> p.Step = 1040)) "stopped before the end"
        testCase "bad options are refused before any work" <| fun _ ->
            throwsWith<ArgumentException> [ "Chains"; "0" ] (fun () -> Mcmc.validate { quiet with Chains = 0 })
            throwsWith<ArgumentException> [ "TargetAccept"; "1" ] (fun () -> Mcmc.validate { quiet with TargetAccept = 1.0 })
            throwsWith<ArgumentException> [ "Thin" ] (fun () -> Mcmc.validate { quiet with Thin = 0 })
            throwsWith<ArgumentException> [ "2 starting positions for 3 chains" ] (fun () ->
                Mcmc.sampleFlatIn RunContext.Quiet { quiet with Chains = 3 } (gaussianSource [| 0.0 |] (array2D [ [ 1.0 ] ])) [| [| 0.0 |]; [| 0.0 |] |] |> ignore)
        testCase "discrete latent sites are refused, named" <| fun _ ->
            let m = model {
                let! k = Model.sample "k" (Poisson (Tensor.scalar 3.0))
                let! x = Model.sample "x" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
                return x + k }
            throwsWith<ArgumentException> [ "'k'"; "discrete" ] (fun () -> Mcmc.runIn RunContext.Quiet quiet m |> ignore)
        testCase "when every start fails, the error names the site" <| fun _ ->
            let m = model {
                let! x = Model.sample "x" (Normal (Tensor.scalar 0.0, Tensor.scalar 1.0))
                do! Model.factor "wall" (x * 0.0 + Double.NegativeInfinity)
                return x }
            throwsWith<InvalidOperationException> [ "'wall'"; "100 tries" ] (fun () -> Mcmc.runIn RunContext.Quiet { quiet with Chains = 1 } m |> ignore)
        testCase "constrained draws have shape [chains; draws; ...] and respect supports" <| fun _ ->
            let m = model {
                let! s = Model.sample "s" (HalfNormal (Tensor.scalar 1.0))
                let! b = Model.sample "b" (Independent (Normal (Tensor.zeros [| 2 |], Tensor.ones [| 2 |]), 1))
                return s, b }
            let r = Mcmc.runIn RunContext.Quiet { quiet with Chains = 2; Warmup = 50; Samples = 30; Seed = 3UL } m
            Expect.equal r.Draws.["s"].Shape [| 2; 30 |] "scalar site"
            Expect.equal r.Draws.["b"].Shape [| 2; 30; 2 |] "vector site"
            Expect.isTrue (Tensor.toArray r.Draws.["s"] |> Array.forall (fun v -> v > 0.0)) "positive"
            Expect.equal r.Flat.Stats.[1].Lp.Length 30 "stats per draw"
    ]
