/// The GLM likelihoods Dist.bernoulliLogitGlm and Dist.poissonLogGlm (one fused op): log density and
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
    ]
