/// The GLM likelihoods Dist.bernoulliLogitGlm, Dist.poissonLogGlm and Dist.categoricalLogitGlm (one fused op each): log density and
/// gradients against the unfused element-wise families and MathNet, float32, compiled = tape, rebinding
/// new x and y, shape errors, values outside the support, extreme linear predictors, draws.
module FunctionalBayes.Tests.GlmTests

open System
open Expecto
open MathNet.Numerics.Distributions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private evaluate = CompiledPotentialTests.evaluate

/// x [n, d] uniform in (−1, 1), and y drawn from the family at η = x·β + α on the host (fixed seed).
let private dataset (family: GlmFamily) (seed: int) (n: int) (d: int) (beta: float[]) (alpha: float) =
    let r = Random(seed)
    let xa = Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0)
    let eta i = alpha + Array.fold (+) 0.0 (Array.init d (fun j -> xa.[i * d + j] * beta.[j]))
    let y =
        Array.init n (fun i ->
            match family with
            | GlmFamily.BernoulliLogit -> if r.NextDouble() < 1.0 / (1.0 + exp (-(eta i))) then 1.0 else 0.0
            | GlmFamily.PoissonLog -> float (Poisson.Sample(r, exp (eta i))))
    Tensor.create [| n; d |] xa, Tensor.ofArray y

let private fused (family: GlmFamily) (x: Tensor) (alpha: Tensor) (beta: Tensor) =
    match family with
    | GlmFamily.BernoulliLogit -> Dist.bernoulliLogitGlm x alpha beta
    | GlmFamily.PoissonLog -> Dist.poissonLogGlm x alpha beta

/// The same likelihood written element-wise: BernoulliLogits or PoissonLog of x·β + α, summed over rows.
let private unfused (family: GlmFamily) (x: Tensor) (alpha: Tensor) (beta: Tensor) =
    let eta = Tensor.matmul x beta + alpha
    Dist.toEvent 1 (match family with
                    | GlmFamily.BernoulliLogit -> BernoulliLogits eta
                    | GlmFamily.PoissonLog -> PoissonLog eta)

/// Value and gradients in (α, β) of a log density.
let private valueAndGrads (make: Tensor -> Tensor -> Distribution) (y: Tensor) (alpha: Tensor) (beta: Tensor) =
    let v, g = Autodiff.valueAndGradN (fun ps -> Dist.logProb (make ps.[0] ps.[1]) y) [| alpha; beta |]
    Tensor.toScalar (Tensor.cast Float64 v), g |> Array.collect (Tensor.cast Float64 >> Tensor.toArray)

/// The value relative to its magnitude, each gradient component relative to the largest one.
let private expectSame (tol: float) (what: string) (v1: float, g1: float[]) (v2: float, g2: float[]) =
    if not (abs (v1 - v2) <= tol * max 1.0 (abs v2)) then failtestf "%s: value %.17g, expected %.17g." what v1 v2
    let scale = max 1.0 (g2 |> Array.map abs |> Array.max)
    Array.iteri2 (fun i a b -> if not (abs (a - b) <= tol * scale) then failtestf "%s: gradient %d is %.17g, expected %.17g." what i a b) g1 g2

let private families = [| GlmFamily.BernoulliLogit; GlmFamily.PoissonLog |]

let private betaOf (d: int) = Array.init d (fun j -> if j % 3 = 0 then 0.4 else -0.2)

let ``the fused log density and gradients equal the unfused formula to 1e-12, one α or one per row`` () =
    for family in families do
        for (n, d) in [ 203, 13; 5000, 20; 6, 4 ] do
            let x, y = dataset family (n + d) n d (betaOf d) 0.3
            let beta = randomTensor (n + 1) [| d |] -0.5 0.5
            for alpha in [ Tensor.scalar 0.25; randomTensor (n + 2) [| n |] -0.5 0.5 ] do
                let what = sprintf "%A, x %d×%d, alpha %s" family n d (Shape.format alpha.Shape)
                expectSame 1e-12 what (valueAndGrads (fused family x) y alpha beta) (valueAndGrads (unfused family x) y alpha beta)

let ``the log density equals MathNet's Bernoulli and Poisson mass summed over the rows`` () =
    for family in families do
        let n, d = 57, 6
        let x, y = dataset family 3 n d (betaOf d) -0.2
        let beta = randomTensor 4 [| d |] -0.5 0.5
        let xa, ya, ba = Tensor.toArray x, Tensor.toArray y, Tensor.toArray beta
        let expected =
            Array.init n (fun i ->
                let eta = 0.7 + Array.fold (+) 0.0 (Array.init d (fun j -> xa.[i * d + j] * ba.[j]))
                match family with
                | GlmFamily.BernoulliLogit -> Bernoulli.PMFLn(1.0 / (1.0 + exp (-eta)), int ya.[i])
                | GlmFamily.PoissonLog -> Poisson.PMFLn(exp eta, int ya.[i]))
            |> Array.sum
        let v = Dist.logProb (fused family x (Tensor.scalar 0.7) beta) y |> Tensor.toScalar
        close 1e-12 expected v (sprintf "%A against MathNet" family)

let ``float32: the fused log density and gradients near the float64 ones and the float32 unfused formula`` () =
    for family in families do
        let n, d = 301, 11
        let x, y = dataset family 5 n d (betaOf d) 0.1
        let beta = randomTensor 6 [| d |] -0.5 0.5
        let alpha = Tensor.scalar 0.1
        let f32 = Tensor.cast Float32
        let v64 = valueAndGrads (fused family x) y alpha beta
        let v32 = valueAndGrads (fused family (f32 x)) (f32 y) (f32 alpha) (f32 beta)
        let u32 = valueAndGrads (unfused family (f32 x)) (f32 y) (f32 alpha) (f32 beta)
        expectSame 1e-5 (sprintf "%A float32 against float64" family) v32 v64
        expectSame 1e-5 (sprintf "%A float32 fused against float32 unfused" family) v32 u32
        Expect.equal (Dist.logProb (fused family (f32 x) (f32 alpha) (f32 beta)) (f32 y)).Dtype Float32 "a float32 GLM scores in float32"

/// logistic or Poisson regression with an intercept, its data [x; y] as inputs.
let private glmModel (family: GlmFamily) (d: Tensor[]) = model {
    let p = d.[0].Shape.[1]
    let! alpha = Model.sample "alpha" (Dist.normal (Tensor.scalar 0.0) (Tensor.scalar 1.0))
    let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| p |]) (Tensor.ones [| p |]))
    return! Model.observe "y" (fused family d.[0] alpha beta) (Some d.[1])
}

let ``compiled = tape, and the program rebound to new x and new y gives the tape's value on them`` () =
    for family in families do
        let n, d = 203, 7
        let build (data: Tensor[]) = LogDensity.potential (Rng.key 1UL) (glmModel family data)
        let x1, y1 = dataset family 11 n d (betaOf d) 0.2
        let x2, y2 = dataset family 12 n d (betaOf d) -0.4
        let p1 = build [| x1; y1 |]
        let q = Array.init (FlatPosition.dim p1) (fun i -> 0.3 * float (i % 5) - 0.6)
        match Compilation.compileWithData build [| x1; y1 |] (FlatPosition.split p1 (ReadOnlySpan q)) with
        | FellBack (why, _) -> failtestf "%A: not compiled: %s" family why
        | Compiled cp ->
            Expect.stringContains cp.Listing "glmLogLikelihood" "the program runs the fused op"
            expectSame 1e-12 (sprintf "%A compiled" family) (evaluate cp.Source q) (evaluate (GradientSource.tape p1) q)
            for data in [ [| x2; y2 |]; [| x1; y2 |]; [| x2; y1 |] ] do
                let tape = evaluate (GradientSource.tape (build data)) q
                expectSame 1e-12 (sprintf "%A rebound" family) (evaluate (cp.Rebind data) q) tape
                Expect.isGreaterThan (abs (fst tape - fst (evaluate cp.Source q))) 1e-3 "new data give a new value"
            // a y outside the support after rebinding: −∞ (energy +∞), as on the tape, never NaN
            let bad = Tensor.toArray y1
            bad.[5] <- (match family with
                        | GlmFamily.BernoulliLogit -> 2.0
                        | GlmFamily.PoissonLog -> 1.5)
            let v, g = evaluate (cp.Rebind [| x1; Tensor.ofArray bad |]) q
            Expect.equal v Double.PositiveInfinity "the energy of a value outside the support"
            Expect.isTrue (Array.forall Double.IsFinite g) "finite gradients"
            let vt, gt = evaluate (GradientSource.tape (build [| x1; Tensor.ofArray bad |])) q
            Expect.equal vt Double.PositiveInfinity "the tape agrees"
            expectSame 1e-12 "gradient beside a value outside the support" (0.0, g) (0.0, gt)

let private expectArgumentError (f: unit -> unit) (fragments: string list) =
    let msg =
        try f (); failtest "expected an ArgumentException"
        with :? ArgumentException as ex -> ex.Message
    for fr in fragments do
        Expect.stringContains msg fr "the message says what is wrong and how to fix it"

let ``bad shapes and dtypes raise errors naming the argument, the shapes and the fix`` () =
    let x = Tensor.zeros [| 5; 3 |]
    let a = Tensor.scalar 0.0
    let b = Tensor.zeros [| 3 |]
    expectArgumentError (fun () -> ignore (Dist.bernoulliLogitGlm (Tensor.zeros [| 5 |]) a b)) [ "BernoulliLogitGlm"; "x"; "[5]"; "[n, d]"; "unsqueeze" ]
    expectArgumentError (fun () -> ignore (Dist.bernoulliLogitGlm x a (Tensor.zeros [| 4 |]))) [ "beta"; "[3]"; "[5, 3]"; "[4]" ]
    expectArgumentError (fun () -> ignore (Dist.poissonLogGlm x (Tensor.zeros [| 4 |]) b)) [ "PoissonLogGlm"; "alpha"; "[5]"; "[4]"; "scalar" ]
    expectArgumentError (fun () -> ignore (Dist.poissonLogGlm x a (Tensor.cast Float32 b))) [ "beta"; "float32"; "float64"; "Tensor.cast" ]
    expectArgumentError (fun () -> ignore (Dist.logProb (Dist.bernoulliLogitGlm x a b) (Tensor.zeros [| 4 |]))) [ "[4]"; "[5]" ]
    // the op's own shape rule, for direct callers
    let m = Tensor.createBool [| 5 |] (Array.create 5 true)
    expectArgumentError (fun () -> ignore (Tensor.glmLogLikelihood GlmFamily.BernoulliLogit x a b (Tensor.zeros [| 6 |]) m)) [ "glmLogLikelihood"; "y"; "[5]"; "[6]" ]

let ``y outside the support scores −∞, not NaN, with the finite gradient of the other rows`` () =
    let x = Tensor.create [| 6; 2 |] [| 0.5; -1.0; 1.0; 0.2; -0.3; 0.8; 0.9; 0.1; -0.7; -0.4; 0.3; 0.6 |]
    let outside = [ GlmFamily.BernoulliLogit, [ 0.5; -1.0; 2.0; nan ]; GlmFamily.PoissonLog, [ -1.0; 1.5; nan; infinity ] ]
    for family, bads in outside do
        for bad in bads do
            let y = [| 1.0; 0.0; 1.0; 1.0; 0.0; 1.0 |]
            y.[3] <- bad
            let v, g = valueAndGrads (fused family x) (Tensor.ofArray y) (Tensor.scalar 0.1) (Tensor.ofArray [| 0.3; -0.2 |])
            Expect.equal v Double.NegativeInfinity (sprintf "%A: y = %g scores −∞" family bad)
            Expect.isTrue (Array.forall Double.IsFinite g) (sprintf "%A: y = %g: finite gradients" family bad)
            // the unfused formula gives the same −∞ and gradients
            let vu, gu = valueAndGrads (unfused family x) (Tensor.ofArray y) (Tensor.scalar 0.1) (Tensor.ofArray [| 0.3; -0.2 |])
            Expect.equal vu v "the unfused formula agrees"
            expectSame 1e-12 "gradients" (0.0, g) (0.0, gu)
            // one observation's support, per event
            Expect.isFalse (Tensor.toBools (Dist.inSupport (fused family x (Tensor.scalar 0.1) (Tensor.ofArray [| 0.3; -0.2 |])) (Tensor.ofArray y))).[0] "outside the support"

let ``extreme linear predictors (η = ±800) give finite values and gradients, tape and compiled`` () =
    // rows at η = ±800 and ±40 with either label: the Bernoulli log density is finite (−800 at worst)
    let n = 9
    let x = Tensor.create [| n; 1 |] [| 800.0; -800.0; 800.0; -800.0; 40.0; -40.0; 0.5; -0.5; 1.0 |]
    let y = Tensor.ofArray [| 1.0; 0.0; 0.0; 1.0; 0.0; 1.0; 1.0; 0.0; 1.0 |]
    let beta = Tensor.ofArray [| 1.0 |]
    let v, g = valueAndGrads (fused GlmFamily.BernoulliLogit x) y (Tensor.scalar 0.0) beta
    Expect.isTrue (Double.IsFinite v && Array.forall Double.IsFinite g) "finite"
    expectSame 1e-12 "against the unfused formula" (v, g) (valueAndGrads (unfused GlmFamily.BernoulliLogit x) y (Tensor.scalar 0.0) beta)
    // the closed form: −800 twice, −40 twice, and the moderate rows
    // (softplus(40) = 40 + 4e-18: 40 in float64)
    let expected = -1600.0 - 2.0 * 40.0 - 2.0 * log (1.0 + exp -0.5) - log (1.0 + exp -1.0)
    close 1e-14 expected v "closed form"
    let build (d: Tensor[]) = LogDensity.potential (Rng.key 1UL) (model {
        let! b = Model.sample "beta" (Dist.normal (Tensor.zeros [| 1 |]) (Tensor.ones [| 1 |]))
        return! Model.observe "y" (Dist.bernoulliLogitGlm d.[0] (Tensor.scalar 0.0) b) (Some d.[1]) })
    match Compilation.compileWithData build [| x; y |] [| beta |] with
    | FellBack (why, _) -> failtestf "not compiled: %s" why
    | Compiled cp ->
        let vc, gc = evaluate cp.Source [| 1.0 |]
        Expect.isTrue (Double.IsFinite vc && Array.forall Double.IsFinite gc) "compiled: finite"
        expectSame 1e-12 "compiled = tape" (vc, gc) (evaluate (GradientSource.tape (build [| x; y |])) [| 1.0 |])
    // Poisson at η = −800 (rate 0): finite; y = 0 there scores 0
    let vp, gp = valueAndGrads (fused GlmFamily.PoissonLog (Tensor.create [| 2; 1 |] [| -800.0; 1.0 |])) (Tensor.ofArray [| 0.0; 2.0 |]) (Tensor.scalar 0.0) beta
    Expect.isTrue (Double.IsFinite vp && Array.forall Double.IsFinite gp) "Poisson at η = −800: finite"

let ``draws come from the implied Bernoulli and Poisson: shape [n], support, mean within 4 MCSE`` () =
    let x = Tensor.create [| 3; 2 |] [| 1.0; 0.0; 0.0; 1.0; -1.0; 1.0 |]
    let beta = Tensor.ofArray [| -1.0; 0.5 |]
    let alpha = Tensor.scalar 0.2
    let draws = 4000
    for family in families do
        let dist = fused family x alpha beta
        Expect.equal (Dist.sample (Rng.key 3UL) [||] dist).Shape [| 3 |] "one draw is one y [n]"
        let s = Dist.sample (Rng.key 4UL) [| draws |] dist
        Expect.equal s.Shape [| draws; 3 |] "draws × n"
        Expect.isTrue (Tensor.toBools (Dist.inSupport dist s) |> Array.forall id) "every draw in the support"
        let mean = Tensor.toArray (Tensor.meanAxes [| 0 |] false s)
        let expected = Tensor.toArray (Dist.mean dist)
        let eta = [| 0.2 - 1.0; 0.2 + 0.5; 0.2 + 1.0 + 0.5 |]
        for i in 0 .. 2 do
            let m, var =
                match family with
                | GlmFamily.BernoulliLogit -> let p = 1.0 / (1.0 + exp (-eta.[i])) in p, p * (1.0 - p)
                | GlmFamily.PoissonLog -> exp eta.[i], exp eta.[i]
            close 1e-12 m expected.[i] (sprintf "%A: Dist.mean of row %d" family i)
            let mcse = sqrt (var / float draws)
            Expect.isLessThan (abs (mean.[i] - m)) (4.0 * mcse) (sprintf "%A: row %d's mean %g against %g (MCSE %g)" family i mean.[i] m mcse)
        // the prior predictive: an unobserved GLM site draws y [n]
        let yDraw, _ = Traced.run (Rng.key 5UL) (Model.observe "y" dist None)
        Expect.equal yDraw.Shape [| 3 |] "prior predictive y"

// ---- the categorical-logit GLM (Dist.categoricalLogitGlm) ------------------------------------------

/// x [n, d] uniform in (−1, 1), alpha [C], beta [d, C], and labels drawn on the host from softmax(x·β + α)
/// (fixed seed), as int ids.
let private catData (seed: int) (n: int) (d: int) (c: int) =
    let r = Random(seed)
    let xa = Array.init (n * d) (fun _ -> r.NextDouble() * 2.0 - 1.0)
    let ba = Array.init (d * c) (fun _ -> r.NextDouble() * 1.6 - 0.8)
    let aa = Array.init c (fun _ -> r.NextDouble() - 0.5)
    let y =
        Array.init n (fun i ->
            let eta = Array.init c (fun k -> aa.[k] + Array.fold (+) 0.0 (Array.init d (fun j -> xa.[i * d + j] * ba.[j * c + k])))
            let w = eta |> Array.map (fun e -> exp (e - Array.max eta))
            let u = r.NextDouble() * Array.sum w
            let mutable k = 0
            let mutable acc = w.[0]
            while acc < u && k < c - 1 do
                k <- k + 1
                acc <- acc + w.[k]
            k)
    Tensor.create [| n; d |] xa, Tensor.create [| c |] aa, Tensor.create [| d; c |] ba, Tensor.ofInts y

/// The same likelihood unfused: Categorical(logits = x·β + α) per row, summed.
let private catUnfused (x: Tensor) (alpha: Tensor) (beta: Tensor) = Dist.toEvent 1 (Dist.categoricalLogits (Tensor.matmul x beta + alpha))

/// Value and gradients in (x, α, β).
let private valueAndGrads3 (make: Tensor -> Tensor -> Tensor -> Distribution) (y: Tensor) (x: Tensor) (alpha: Tensor) (beta: Tensor) =
    let v, g = Autodiff.valueAndGradN (fun ps -> Dist.logProb (make ps.[0] ps.[1] ps.[2]) y) [| x; alpha; beta |]
    Tensor.toScalar (Tensor.cast Float64 v), g |> Array.collect (Tensor.cast Float64 >> Tensor.toArray)

/// Σᵢ (ηᵢ[yᵢ] − logsumexp ηᵢ) on the host, written out here: η by loops, logsumexp with a max shift.
let private catByHand (xa: float[]) (aa: float[]) (ba: float[]) (y: int[]) (d: int) (c: int) =
    y |> Array.mapi (fun i yi ->
        let eta = Array.init c (fun k -> aa.[k] + Array.fold (+) 0.0 (Array.init d (fun j -> xa.[i * d + j] * ba.[j * c + k])))
        let m = Array.max eta
        eta.[yi] - (m + log (Array.sumBy (fun e -> exp (e - m)) eta)))
    |> Array.sum

let ``categorical GLM: the fused log density and gradients in x, α and β equal the unfused Categorical model to 1e-12`` () =
    // C = 1 and 2 edge cases; n not a multiple of the block (64 rows at d = 20, C = 5; 24 at d = 9, C = 37) nor of 4
    for (n, d, c) in [ 203, 13, 5; 5000, 20, 5; 6, 4, 3; 7, 3, 1; 10, 2, 2; 1, 1, 4; 67, 20, 5; 50, 9, 37 ] do
        let x, alpha, beta, y = catData (n + d + c) n d c
        for labels in [ y; Tensor.toFloat64 y ] do
            let what = sprintf "x %d×%d, %d classes, labels %O" n d c labels.Dtype
            expectSame 1e-12 what (valueAndGrads3 (fun x a b -> Dist.categoricalLogitGlm x a b) labels x alpha beta)
                (valueAndGrads3 catUnfused labels x alpha beta)

let ``categorical GLM: the log density equals the closed form by hand and MathNet's categorical mass, logits of ±800 included`` () =
    for (n, d, c) in [ 57, 6, 4; 9, 2, 1; 11, 3, 2 ] do
        let x, alpha, beta, y = catData (3 * n + c) n d c
        let expected = catByHand (Tensor.toArray x) (Tensor.toArray alpha) (Tensor.toArray beta) (Tensor.toInts y) d c
        let v = Dist.logProb (Dist.categoricalLogitGlm x alpha beta) y |> Tensor.toScalar
        close 1e-12 expected v (sprintf "%d×%d, %d classes, by hand" n d c)
        if c = 1 then Expect.equal v 0.0 "one class: every label has probability 1"
        // MathNet's categorical at each row's softmax probabilities
        let p = Tensor.toArray (Tensor.softmax -1 (Tensor.matmul x beta + alpha))
        let mn = Tensor.toInts y |> Array.mapi (fun i k -> Categorical.PMFLn(p.[i * c .. i * c + c - 1], k)) |> Array.sum
        close 1e-10 mn v (sprintf "%d×%d, %d classes, MathNet" n d c)
    // logits of ±800: η rows (800, 0, −800) and (−800, 0, 800), every label: finite
    let x = Tensor.create [| 6; 1 |] [| 800.0; 800.0; 800.0; -800.0; -800.0; 0.5 |]
    let beta = Tensor.create [| 1; 3 |] [| 1.0; 0.0; -1.0 |]
    let alpha = Tensor.zeros [| 3 |]
    let y = Tensor.ofInts [| 0; 1; 2; 0; 2; 1 |]
    let v, g = valueAndGrads3 (fun x a b -> Dist.categoricalLogitGlm x a b) y x alpha beta
    Expect.isTrue (Double.IsFinite v && Array.forall Double.IsFinite g) "finite at ±800"
    // log p: 0 (−e^−800 −e^−1600 rounds off), −800, −1600, −1600, 0, and the moderate row
    let moderate = 0.0 - log (exp 0.5 + 1.0 + exp -0.5)
    close 1e-14 (-800.0 - 1600.0 - 1600.0 + moderate) v "closed form at ±800"
    expectSame 1e-12 "against the unfused model at ±800" (v, g) (valueAndGrads3 catUnfused y x alpha beta)
    // two classes: the Bernoulli GLM with coefficients β₁ − β₀ and intercept α₁ − α₀
    let x2, a2, b2, y2 = catData 8 40 3 2
    let bd = Tensor.toArray b2
    let ad = Tensor.toArray a2
    let bern = Dist.logProb (Dist.bernoulliLogitGlm x2 (Tensor.scalar (ad.[1] - ad.[0])) (Tensor.ofArray (Array.init 3 (fun j -> bd.[j * 2 + 1] - bd.[j * 2])))) (Tensor.toFloat64 y2)
    close 1e-12 (Tensor.toScalar bern) (Tensor.toScalar (Dist.logProb (Dist.categoricalLogitGlm x2 a2 b2) y2)) "C = 2 is the Bernoulli GLM"

let ``categorical GLM: the VJP differentiates again: the Hessian in α is −Σᵢ (diag pᵢ − pᵢpᵢᵀ), in β the unfused model's`` () =
    let n, d, c = 23, 3, 3
    let x, alpha, beta, y = catData 9 n d c
    let fusedIn (a: Tensor) (b: Tensor) = Dist.logProb (Dist.categoricalLogitGlm x a b) y
    let h = Tensor.toArray (Autodiff.hessian (fun a -> fusedIn a beta) alpha)
    // by hand: p = softmax(η) per row
    let xa, aa, ba = Tensor.toArray x, Tensor.toArray alpha, Tensor.toArray beta
    let expected = Array.zeroCreate (c * c)
    for i in 0 .. n - 1 do
        let eta = Array.init c (fun k -> aa.[k] + Array.fold (+) 0.0 (Array.init d (fun j -> xa.[i * d + j] * ba.[j * c + k])))
        let z = eta |> Array.sumBy exp
        let p = eta |> Array.map (fun e -> exp e / z)
        for k in 0 .. c - 1 do
            for l in 0 .. c - 1 do
                expected.[k * c + l] <- expected.[k * c + l] - ((if k = l then p.[k] else 0.0) - p.[k] * p.[l])
    Array.iteri2 (fun i e v -> close 1e-12 e v (sprintf "Hessian in alpha, entry %d" i)) expected h
    // β flattened (the Hessian takes a vector)
    let flat = Tensor.reshape [| d * c |] beta
    let hb = Tensor.toArray (Autodiff.hessian (fun b -> fusedIn alpha (Tensor.reshape [| d; c |] b)) flat)
    let hu = Tensor.toArray (Autodiff.hessian (fun b -> Dist.logProb (catUnfused x alpha (Tensor.reshape [| d; c |] b)) y) flat)
    Expect.equal hb.Length (d * c * d * c) "the whole Hessian in beta"
    Array.iteri2 (fun i e v -> close 1e-12 e v (sprintf "Hessian in beta, entry %d" i)) hu hb

let ``categorical GLM: the first-order tape gradient (the kernel's pass) equals the primitive-op VJP that nested differentiation takes`` () =
    // first order, the VJP runs the kernel; under an outer tape (the inner gradient is itself differentiated)
    // it runs the primitive ops; the inner gradient's values are read there and compared element by element
    for (n, d, c, seed) in [ 203, 13, 5, 1; 7, 3, 1, 2; 67, 20, 5, 3; 6, 2, 2, 4 ] do
        let x, alpha, beta, y = catData seed n d c
        let bad = Tensor.toInts y
        bad.[n / 2] <- c // one row outside the support: R = 0 there on both paths
        for labels in [ y; Tensor.ofInts bad ] do
            for dt in [ Float64; Float32 ] do
                let ps = [| x; alpha; beta |] |> Array.map (Tensor.cast dt)
                let f (qs: Tensor[]) = Dist.logProb (Dist.categoricalLogitGlm qs.[0] qs.[1] qs.[2]) labels
                let first = Autodiff.gradN f ps |> Array.map (Tensor.cast Float64 >> Tensor.toArray)
                let mutable nested = [||]
                Autodiff.valueAndGradN (fun qs ->
                    let inner = Autodiff.gradN f qs
                    nested <- inner |> Array.map (Tensor.cast Float64 >> Tensor.toArray)
                    inner |> Array.map Tensor.sum |> Array.reduce (+)) ps |> ignore
                let tol = if dt = Float64 then 1e-12 else 1e-5
                Array.iteri2 (fun k (a: float[]) (b: float[]) ->
                    expectSame tol (sprintf "%d×%d, %d classes, %O, gradient %d" n d c dt k) (0.0, a) (0.0, b)) first nested

let ``categorical GLM float32: the fused log density and gradients near the float64 ones and the float32 unfused model`` () =
    let x, alpha, beta, y = catData 5 301 11 4
    let f32 = Tensor.cast Float32
    let fused x a b = Dist.categoricalLogitGlm x a b
    let v64 = valueAndGrads3 fused y x alpha beta
    let v32 = valueAndGrads3 fused y (f32 x) (f32 alpha) (f32 beta)
    expectSame 1e-5 "float32 against float64" v32 v64
    expectSame 1e-5 "float32 fused against float32 unfused" v32 (valueAndGrads3 catUnfused y (f32 x) (f32 alpha) (f32 beta))
    Expect.equal (Dist.logProb (fused (f32 x) (f32 alpha) (f32 beta)) y).Dtype Float32 "a float32 GLM scores in float32"

/// Multinomial logistic regression, its data [x; y] as inputs; x a latent too when `latentX`.
let private catModel (c: int) (d: Tensor[]) = model {
    let p = d.[0].Shape.[1]
    let! alpha = Model.sample "alpha" (Dist.normal (Tensor.zeros [| c |]) (Tensor.ones [| c |]))
    let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| p; c |]) (Tensor.ones [| p; c |]))
    return! Model.observe "y" (Dist.categoricalLogitGlm d.[0] alpha beta) (Some d.[1])
}

let ``categorical GLM: compiled = tape, rebound to new labels and new x, and to a label outside the support`` () =
    let n, d, c = 203, 7, 4
    let build (data: Tensor[]) = LogDensity.potential (Rng.key 1UL) (catModel c data)
    let x1, _, _, y1 = catData 11 n d c
    let x2, _, _, y2 = catData 12 n d c
    Expect.isGreaterThan (Array.map2 (fun a b -> if a <> b then 1 else 0) (Tensor.toInts y1) (Tensor.toInts y2) |> Array.sum) 50 "new labels differ"
    let p1 = build [| x1; y1 |]
    let q = Array.init (FlatPosition.dim p1) (fun i -> 0.3 * float (i % 5) - 0.6)
    match Compilation.compileWithData build [| x1; y1 |] (FlatPosition.split p1 (ReadOnlySpan q)) with
    | FellBack (why, _) -> failtestf "not compiled: %s" why
    | Compiled cp ->
        Expect.stringContains cp.Listing "categoricalGlmLogLikelihood" "the program runs the fused op"
        expectSame 1e-12 "compiled" (evaluate cp.Source q) (evaluate (GradientSource.tape p1) q)
        for data in [ [| x2; y2 |]; [| x1; y2 |]; [| x2; y1 |] ] do
            let tape = evaluate (GradientSource.tape (build data)) q
            expectSame 1e-12 "rebound" (evaluate (cp.Rebind data) q) tape
            Expect.isGreaterThan (abs (fst tape - fst (evaluate cp.Source q))) 1e-3 "new data give a new value"
        // a label outside 0 .. C − 1 after rebinding: −∞ (energy +∞), as on the tape, never NaN
        for badLabel in [ c; -1 ] do
            let bad = Tensor.toInts y1
            bad.[5] <- badLabel
            let v, g = evaluate (cp.Rebind [| x1; Tensor.ofInts bad |]) q
            Expect.equal v Double.PositiveInfinity "the energy of a label outside the support"
            Expect.isTrue (Array.forall Double.IsFinite g) "finite gradients"
            let vt, gt = evaluate (GradientSource.tape (build [| x1; Tensor.ofInts bad |])) q
            Expect.equal vt Double.PositiveInfinity "the tape agrees"
            expectSame 1e-12 "gradient beside a label outside the support" (0.0, g) (0.0, gt)
    // x a latent too (∂x through R βᵀ in the compiled kernel)
    let buildX (data: Tensor[]) = LogDensity.potential (Rng.key 1UL) (model {
        let! x = Model.sample "x" (Dist.normal (Tensor.zeros [| 9; 3 |]) (Tensor.ones [| 9; 3 |]))
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| 3; c |]) (Tensor.ones [| 3; c |]))
        return! Model.observe "y" (Dist.categoricalLogitGlm x (Tensor.create [| c |] [| 0.1; -0.2; 0.3; 0.0 |]) beta) (Some data.[0]) })
    let yx = Tensor.ofInts [| 0; 1; 2; 3; 3; 2; 1; 0; 2 |]
    let px = buildX [| yx |]
    let qx = Array.init (FlatPosition.dim px) (fun i -> 0.2 * float (i % 7) - 0.5)
    match Compilation.compileWithData buildX [| yx |] (FlatPosition.split px (ReadOnlySpan qx)) with
    | FellBack (why, _) -> failtestf "x latent: not compiled: %s" why
    | Compiled cp -> expectSame 1e-12 "x latent: compiled" (evaluate cp.Source qx) (evaluate (GradientSource.tape px) qx)

let ``categorical GLM: bad shapes and dtypes raise errors naming the argument, the shapes and the fix`` () =
    let x = Tensor.zeros [| 5; 3 |]
    let a = Tensor.zeros [| 4 |]
    let b = Tensor.zeros [| 3; 4 |]
    let cat = Dist.categoricalLogitGlm
    expectArgumentError (fun () -> ignore (cat (Tensor.zeros [| 5 |]) a b)) [ "CategoricalLogitGlm"; "x"; "[5]"; "[n, d]"; "unsqueeze" ]
    expectArgumentError (fun () -> ignore (cat x a (Tensor.zeros [| 3 |]))) [ "beta"; "[3, C]"; "[5, 3]"; "got [3]" ]
    expectArgumentError (fun () -> ignore (cat x a (Tensor.zeros [| 4; 4 |]))) [ "beta"; "[3, C]"; "[4, 4]" ]
    expectArgumentError (fun () -> ignore (cat x (Tensor.scalar 0.0) b)) [ "alpha"; "[4]"; "one intercept per class"; "got []"; "Tensor.zeros" ]
    expectArgumentError (fun () -> ignore (cat x (Tensor.zeros [| 5 |]) b)) [ "alpha"; "[4]"; "[3, 4]"; "[5]" ]
    expectArgumentError (fun () -> ignore (cat x a (Tensor.cast Float32 b))) [ "beta"; "float32"; "float64"; "Tensor.cast" ]
    expectArgumentError (fun () -> ignore (cat x a (Tensor.cast Int32 b))) [ "beta"; "int32"; "float64"; "Tensor.cast" ]
    expectArgumentError (fun () -> ignore (cat (Tensor.ofInts [| 1; 2 |] |> Tensor.reshape [| 2; 1 |]) a b)) [ "x"; "float" ]
    expectArgumentError (fun () -> ignore (Dist.logProb (cat x a b) (Tensor.ofInts [| 0; 1; 2; 3 |]))) [ "[4]"; "[5]" ]
    // the op's own shape rule, for direct callers
    let m = Tensor.createBool [| 5 |] (Array.create 5 true)
    expectArgumentError (fun () -> ignore (Tensor.categoricalGlmLogLikelihood x a b (Tensor.zeros [| 6 |]) m)) [ "categoricalGlmLogLikelihood"; "y"; "[5]"; "[6]" ]
    expectArgumentError (fun () -> ignore (Tensor.categoricalGlmLogLikelihood x (Tensor.zeros [| 3 |]) b (Tensor.zeros [| 5 |]) m)) [ "categoricalGlmLogLikelihood"; "alpha"; "[4]"; "[3]" ]

let ``categorical GLM: a label outside 0 .. C − 1 scores −∞, not NaN, with the finite gradient of the other rows`` () =
    let x = Tensor.create [| 6; 2 |] [| 0.5; -1.0; 1.0; 0.2; -0.3; 0.8; 0.9; 0.1; -0.7; -0.4; 0.3; 0.6 |]
    let alpha = Tensor.ofArray [| 0.1; -0.2; 0.0 |]
    let beta = Tensor.create [| 2; 3 |] [| 0.3; -0.2; 0.5; 0.1; 0.4; -0.6 |]
    let bads = [ Tensor.ofArray [| 0.0; 2.0; 1.0; 3.0; 0.0; 1.0 |]; Tensor.ofArray [| 0.0; 2.0; 1.0; -1.0; 0.0; 1.0 |]
                 Tensor.ofArray [| 0.0; 2.0; 1.0; 1.5; 0.0; 1.0 |]; Tensor.ofArray [| 0.0; 2.0; 1.0; nan; 0.0; 1.0 |]
                 Tensor.ofInts [| 0; 2; 1; 7; 0; 1 |] ]
    for y in bads do
        let v, g = valueAndGrads3 (fun x a b -> Dist.categoricalLogitGlm x a b) y x alpha beta
        Expect.equal v Double.NegativeInfinity (sprintf "%A scores −∞" (Tensor.toArray (Tensor.toFloat64 y)))
        Expect.isTrue (Array.forall Double.IsFinite g) "finite gradients"
        let vu, gu = valueAndGrads3 catUnfused y x alpha beta
        Expect.equal vu v "the unfused model agrees"
        expectSame 1e-12 "gradients" (0.0, g) (0.0, gu)
        Expect.isFalse (Tensor.toBools (Dist.inSupport (Dist.categoricalLogitGlm x alpha beta) y)).[0] "outside the support"

let ``categorical GLM draws: shape [n], support, class frequencies within 4 MCSE of softmax, class probabilities, mean and entropy`` () =
    let x = Tensor.create [| 3; 2 |] [| 1.0; 0.0; 0.0; 1.0; -1.0; 1.0 |]
    let beta = Tensor.create [| 2; 3 |] [| -1.0; 0.5; 0.0; 0.3; -0.4; 0.8 |]
    let alpha = Tensor.ofArray [| 0.2; 0.0; -0.1 |]
    let dist = Dist.categoricalLogitGlm x alpha beta
    // softmax by hand
    let xa, ba, aa = Tensor.toArray x, Tensor.toArray beta, Tensor.toArray alpha
    let probs =
        Array.init 3 (fun i ->
            let eta = Array.init 3 (fun k -> aa.[k] + xa.[i * 2] * ba.[k] + xa.[i * 2 + 1] * ba.[3 + k])
            let z = eta |> Array.sumBy exp
            eta |> Array.map (fun e -> exp e / z))
    let cp = Tensor.toArray (Dist.classProbs dist).Value
    Array.iteri (fun i (p: float[]) -> Array.iteri (fun k pk -> close 1e-14 pk cp.[i * 3 + k] (sprintf "class probability %d, %d" i k)) p) probs
    Expect.equal (Dist.classProbs dist).Value.Shape [| 3; 3 |] "class probabilities [n, C]"
    // the mean as Categorical's (none for a label), the entropy Σᵢ −Σₖ p log p
    Expect.equal (Dist.mean dist).Shape [| 3 |] "mean shape"
    Expect.isTrue (Tensor.toArray (Dist.mean dist) |> Array.forall Double.IsNaN) "a label has no mean, as Categorical"
    close 1e-14 (probs |> Array.sumBy (Array.sumBy (fun p -> -p * log p))) (Tensor.toScalar (Dist.entropy dist)) "entropy"
    Expect.equal (Dist.eventShape dist) [| 3 |] "event [n]"
    Expect.equal (Dist.batchShape dist) [||] "no batch"
    let draws = 4000
    Expect.equal (Dist.sample (Rng.key 3UL) [||] dist).Shape [| 3 |] "one draw is one y [n]"
    let s = Dist.sample (Rng.key 4UL) [| draws |] dist
    Expect.equal s.Shape [| draws; 3 |] "draws × n"
    Expect.isTrue (Tensor.toBools (Dist.inSupport dist s) |> Array.forall id) "every draw in the support"
    // values with sample axes score row by row, as the unfused model
    close 1e-12 (Tensor.toScalar (Tensor.sum (Dist.logProb (catUnfused x alpha beta) s))) (Tensor.toScalar (Tensor.sum (Dist.logProb dist s))) "draws scored"
    let sa = Tensor.toArray s
    for i in 0 .. 2 do
        for k in 0 .. 2 do
            let freq = float (Seq.init draws (fun t -> sa.[t * 3 + i]) |> Seq.filter (fun v -> v = float k) |> Seq.length) / float draws
            let p = probs.[i].[k]
            let mcse = sqrt (p * (1.0 - p) / float draws)
            Expect.isLessThan (abs (freq - p)) (4.0 * mcse) (sprintf "row %d class %d: frequency %g against %g (MCSE %g)" i k freq p mcse)
    let yDraw, _ = Traced.run (Rng.key 5UL) (Model.observe "y" dist None)
    Expect.equal yDraw.Shape [| 3 |] "prior predictive y"

let ``categorical GLM: NUTS recovers known coefficient contrasts within 4 posterior sd`` () =
    // n = 600 labels from β, α (class 0 the reference: only differences between classes are identified
    // by the likelihood, so the contrasts βₖ − β₀ and αₖ − α₀ are checked)
    let n, d, c = 600, 2, 3
    let trueBeta = [| 0.0; 1.0; -0.8; 0.0; -0.6; 1.2 |]
    let trueAlpha = [| 0.0; 0.5; -0.3 |]
    let r = Random(42)
    let xa = Array.init (n * d) (fun _ -> r.NextDouble() * 4.0 - 2.0)
    let y =
        Array.init n (fun i ->
            let eta = Array.init c (fun k -> trueAlpha.[k] + xa.[i * d] * trueBeta.[k] + xa.[i * d + 1] * trueBeta.[c + k])
            let w = eta |> Array.map exp
            let u = r.NextDouble() * Array.sum w
            if u < w.[0] then 0 elif u < w.[0] + w.[1] then 1 else 2)
    let m = model {
        let! alpha = Model.sample "alpha" (Dist.normal (Tensor.zeros [| c |]) (Tensor.full [| c |] 2.0))
        let! beta = Model.sample "beta" (Dist.normal (Tensor.zeros [| d; c |]) (Tensor.full [| d; c |] 2.0))
        return! Model.observe "y" (Dist.categoricalLogitGlm (Tensor.create [| n; d |] xa) alpha beta) (Some (Tensor.ofInts y)) }
    let fit = Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Chains = 2; Warmup = 400; Samples = 600; Seed = 7UL } m
    let draws (site: string) = fit.Draws.[site]
    let chains, s = (draws "alpha").Shape.[0], (draws "alpha").Shape.[1]
    let contrast (site: string) (width: int) (j: int) (k: int) =
        let a = Tensor.toArray (draws site)
        Array.init chains (fun ch -> Array.init s (fun t -> let o = (ch * s + t) * width + j * c in a.[o + k] - a.[o]))
    let check (name: string) (dr: float[][]) (truth: float) =
        let sm = Diagnostics.summarize name dr
        Expect.isLessThan sm.RHat 1.05 (sprintf "%s: R-hat %g" name sm.RHat)
        Expect.isLessThan sm.Sd 0.4 (sprintf "%s: the data inform it (sd %g)" name sm.Sd)
        let tol = 4.0 * sm.Sd + 4.0 * sm.McseMean
        Expect.isLessThan (abs (sm.Mean - truth)) tol (sprintf "%s: posterior mean %g, true %g (sd %g, MCSE %g)" name sm.Mean truth sm.Sd sm.McseMean)
    for k in 1 .. c - 1 do
        check (sprintf "alpha[%d] - alpha[0]" k) (contrast "alpha" c 0 k) (trueAlpha.[k] - trueAlpha.[0])
        for j in 0 .. d - 1 do
            check (sprintf "beta[%d,%d] - beta[%d,0]" j k j) (contrast "beta" (d * c) j k) (trueBeta.[j * c + k] - trueBeta.[j * c])

[<Tests>]
let tests =
    testList "GLM likelihoods" [
        testCase "the fused log density and gradients equal the unfused formula to 1e-12, one α or one per row" ``the fused log density and gradients equal the unfused formula to 1e-12, one α or one per row``
        testCase "the log density equals MathNet's Bernoulli and Poisson mass summed over the rows" ``the log density equals MathNet's Bernoulli and Poisson mass summed over the rows``
        testCase "float32: the fused log density and gradients near the float64 ones and the float32 unfused formula" ``float32: the fused log density and gradients near the float64 ones and the float32 unfused formula``
        testCase "compiled = tape, and the program rebound to new x and new y gives the tape's value on them" ``compiled = tape, and the program rebound to new x and new y gives the tape's value on them``
        testCase "bad shapes and dtypes raise errors naming the argument, the shapes and the fix" ``bad shapes and dtypes raise errors naming the argument, the shapes and the fix``
        testCase "y outside the support scores −∞, not NaN, with the finite gradient of the other rows" ``y outside the support scores −∞, not NaN, with the finite gradient of the other rows``
        testCase "extreme linear predictors (η = ±800) give finite values and gradients, tape and compiled" ``extreme linear predictors (η = ±800) give finite values and gradients, tape and compiled``
        testCase "draws come from the implied Bernoulli and Poisson: shape [n], support, mean within 4 MCSE" ``draws come from the implied Bernoulli and Poisson: shape [n], support, mean within 4 MCSE``
        testCase "categorical GLM: the fused log density and gradients in x, α and β equal the unfused Categorical model to 1e-12" ``categorical GLM: the fused log density and gradients in x, α and β equal the unfused Categorical model to 1e-12``
        testCase "categorical GLM: the log density equals the closed form by hand and MathNet's categorical mass, logits of ±800 included" ``categorical GLM: the log density equals the closed form by hand and MathNet's categorical mass, logits of ±800 included``
        testCase "categorical GLM: the VJP differentiates again: the Hessian in α is −Σᵢ (diag pᵢ − pᵢpᵢᵀ), in β the unfused model's" ``categorical GLM: the VJP differentiates again: the Hessian in α is −Σᵢ (diag pᵢ − pᵢpᵢᵀ), in β the unfused model's``
        testCase "categorical GLM: the first-order tape gradient (the kernel's pass) equals the primitive-op VJP that nested differentiation takes" ``categorical GLM: the first-order tape gradient (the kernel's pass) equals the primitive-op VJP that nested differentiation takes``
        testCase "categorical GLM float32: the fused log density and gradients near the float64 ones and the float32 unfused model" ``categorical GLM float32: the fused log density and gradients near the float64 ones and the float32 unfused model``
        testCase "categorical GLM: compiled = tape, rebound to new labels and new x, and to a label outside the support" ``categorical GLM: compiled = tape, rebound to new labels and new x, and to a label outside the support``
        testCase "categorical GLM: bad shapes and dtypes raise errors naming the argument, the shapes and the fix" ``categorical GLM: bad shapes and dtypes raise errors naming the argument, the shapes and the fix``
        testCase "categorical GLM: a label outside 0 .. C − 1 scores −∞, not NaN, with the finite gradient of the other rows" ``categorical GLM: a label outside 0 .. C − 1 scores −∞, not NaN, with the finite gradient of the other rows``
        testCase "categorical GLM draws: shape [n], support, class frequencies within 4 MCSE of softmax, class probabilities, mean and entropy" ``categorical GLM draws: shape [n], support, class frequencies within 4 MCSE of softmax, class probabilities, mean and entropy``
        testCase "categorical GLM: NUTS recovers known coefficient contrasts within 4 posterior sd" ``categorical GLM: NUTS recovers known coefficient contrasts within 4 posterior sd``
    ]
