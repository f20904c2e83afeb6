/// Writing posteriordb models directly (issue 26): flat priors, constrained sites, truncation, GLM-form
/// likelihoods, LKJ, GP kernels, and rejections instead of crashes. Reference values are closed forms,
/// MathNet.Numerics or numerical integrals, written independently of the library.
module FunctionalBayes.Tests.ModelingTests

open System
open Expecto
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil
open FunctionalBayes.PosteriorDb

type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefPoisson = MathNet.Numerics.Distributions.Poisson
type private RefNegBin = MathNet.Numerics.Distributions.NegativeBinomial
type private RefLaplace = MathNet.Numerics.Distributions.Laplace
type private RefExponential = MathNet.Numerics.Distributions.Exponential
type private RefCauchy = MathNet.Numerics.Distributions.Cauchy
type private RefStudentT = MathNet.Numerics.Distributions.StudentT
type private RefGamma = MathNet.Numerics.Distributions.Gamma
type private RefInvGamma = MathNet.Numerics.Distributions.InverseGamma
type private RefLogNormal = MathNet.Numerics.Distributions.LogNormal
type private SF = MathNet.Numerics.SpecialFunctions

let private s (v: float) = Tensor.scalar v
let private t (v: float[]) = Tensor.ofArray v
let private scalarOf (x: Tensor) = Tensor.toScalar x

/// Cheap NUTS: 2 chains × 1000 draws after 400 warmup.
let private nuts (seed: uint64) (m: Model<'T>) =
    Mcmc.runIn RunContext.Quiet { McmcOptions.Default with Chains = 2; Warmup = 400; Samples = 1000; Seed = seed } m

/// The posterior mean of a scalar (Stan's name) within 4 MCSE (plus a 1e-3 floor) of the expected value.
let private meanIs (fit: McmcResult) (name: string) (f: float -> float) (expected: float) =
    let d = (PosteriorData.scalars fit.Draws).[name] |> Array.map (Array.map f)
    let sm = Diagnostics.summarize name d
    let tol = 4.0 * sqrt (sm.McseMean ** 2.0 + 1e-6)
    Expect.isLessThan (abs (sm.Mean - expected)) tol (sprintf "%s: E = %g, expected %g (MCSE %g)" name sm.Mean expected sm.McseMean)

let private divergences (fit: McmcResult) = fit.Flat.Stats |> Array.sumBy (fun c -> c.Divergent |> Array.filter id |> Array.length)

// E[max] of two iid standard normals is 1/√π.
let private orderedNormalMean = 1.0 / sqrt Math.PI

let private flatTests =
    testList "improper uniform" [
        testCase "log density 0 on the support, −∞ outside" <| fun () ->
            let d = Dist.improperUniform Constraint.Positive [| 3 |]
            Expect.equal (Dist.logProb d (t [| 0.5; 2.0; 1e9 |]) |> Tensor.toArray) [| 0.0; 0.0; 0.0 |] "flat inside"
            Expect.equal (Dist.logProb d (t [| -0.5; 2.0; 1.0 |]) |> Tensor.toArray) [| -infinity; 0.0; 0.0 |] "−∞ outside"
            let o = Dist.improperUniform Constraint.OrderedVector [| 2; 3 |]
            Expect.equal (Dist.batchShape o) [| 2 |] "batch shape"
            Expect.equal (Dist.eventShape o) [| 3 |] "event shape"
        testCase "sampling and prior predictive are refused, naming the family" <| fun () ->
            let d = Dist.improperUniform Constraint.Real [||]
            let ex = Expect.throwsC (fun () -> Dist.sample (Rng.key 1UL) [||] d |> ignore) id
            Expect.stringContains ex.Message "ImproperUniform cannot be sampled" "message"
            let m = model { let! mu = Model.sample "mu" d in return mu }
            Expect.throwsT<NotSupportedException> (fun () -> Traced.run (Rng.key 1UL) m |> ignore) "prior predictive draw"
            Expect.throwsT<ArgumentException> (fun () -> Dist.improperUniform Constraint.NonNegativeInteger [| 2 |] |> ignore) "discrete support"
        testCase "NUTS: a flat prior on a normal mean gives N(ȳ, 1/n)" <| fun () ->
            let y = t [| 1.0; 2.5; 0.5; 3.0 |]
            let m = model {
                let! mu = Model.sample "mu" (Dist.improperUniform Constraint.Real [||])
                return! Model.observe "y" (Expand (Normal (mu, s 1.0), [| 4 |])) (Some y) }
            let fit = nuts 11UL m
            meanIs fit "mu" id 1.75
            meanIs fit "mu" (fun v -> (v - 1.75) ** 2.0) 0.25
        testCase "SVI with an autoguide: a flat prior on a positive scale" <| fun () ->
            // y_i ~ N(0, σ), flat on σ > 0: p(σ | y) ∝ σ^(−n) exp(−S/(2σ²)); its mode is √(S/n)
            let ys = [| -1.2; 0.4; 2.0; -0.7; 1.1; 0.3; -1.8; 0.9 |]
            let m (d: Map<string, Tensor>) = model {
                let! sigma = Model.sample "sigma" (Dist.improperUniform Constraint.Positive [||])
                return! Model.observe "y" (Expand (Normal (s 0.0, sigma), [| ys.Length |])) (Some d.["y"]) }
            let opts = { FitOptions.Default with AutoGuide = AutoGuideKind.AutoDelta; Run.Steps = Some 1500; LearningRate = 0.02; Schedule = LrSchedule.Constant }
            let f = Fit.vi opts m (Map [ "y", t ys ])
            let sigma = (Posterior.mean f (Rng.key 2UL) 1).["sigma"] |> scalarOf
            let mode = sqrt ((ys |> Array.sumBy (fun v -> v * v)) / float ys.Length)
            close 2e-3 mode sigma "MAP of σ under a flat prior"
    ]

/// a, b iid N(0, 1) restricted to b > a (b < a): (a, b) is the ordered pair (reversed).
let private boundTests =
    [ for name, bound, sign, seed in [ "lower", Constraint.LowerBound, 1.0, 15UL; "upper", Constraint.UpperBound, -1.0, 16UL ] ->
        testCase (sprintf "NUTS: a %s bound that is another site's value" name) <| fun () ->
            let m = model {
                let! a = Model.sample "a" (Normal (s 0.0, s 1.0))
                let! b = Model.sample "b" (Dist.restrict (bound a) (Normal (s 0.0, s 1.0)))
                return b }
            let fit = nuts seed m
            meanIs fit "a" id (-sign * orderedNormalMean)
            meanIs fit "b" id (sign * orderedNormalMean)
    ]

let private constrainedTests =
    testList "constrained sites" (boundTests @ [
        testCase "restrict: the base's density inside, −∞ outside" <| fun () ->
            let d = Dist.restrict Constraint.OrderedVector (Normal (Tensor.zeros [| 3 |], Tensor.ones [| 3 |]))
            Expect.equal (Dist.eventShape d) [| 3 |] "an element-wise base becomes one ordered event"
            let inside = t [| -1.0; 0.2; 0.3 |]
            close 1e-12 ([| -1.0; 0.2; 0.3 |] |> Array.sumBy (fun v -> RefNormal.PDFLn(0.0, 1.0, v))) (Dist.logProb d inside |> scalarOf) "ordered"
            Expect.equal (Dist.logProb d (t [| 0.5; 0.2; 0.3 |]) |> scalarOf) -infinity "not ordered"
            Expect.throwsT<NotSupportedException> (fun () -> Dist.sample (Rng.key 1UL) [||] d |> ignore) "no draws"
        testCase "NUTS: an ordered pair of standard normals (Jacobian of the ordered map)" <| fun () ->
            let m = model { let! x = Model.sample "x" (Dist.restrict Constraint.OrderedVector (Normal (Tensor.zeros [| 2 |], Tensor.ones [| 2 |]))) in return x }
            let fit = nuts 12UL m
            meanIs fit "x[1]" id -orderedNormalMean
            meanIs fit "x[2]" id orderedNormalMean
        testCase "NUTS: a positive-ordered pair of Exp(1) (order statistics 1/2 and 3/2)" <| fun () ->
            let m = model { let! x = Model.sample "x" (Dist.restrict Constraint.PositiveOrderedVector (Exponential (Tensor.ones [| 2 |]))) in return x }
            let fit = nuts 13UL m
            meanIs fit "x[1]" id 0.5
            meanIs fit "x[2]" id 1.5
        testCase "NUTS: a flat unit vector in R³ is uniform on the sphere" <| fun () ->
            let m = model { let! x = Model.sample "x" (Dist.improperUniform Constraint.UnitVector [| 3 |]) in return x }
            let fit = nuts 14UL m
            for i in 1 .. 3 do
                meanIs fit (sprintf "x[%d]" i) id 0.0
                meanIs fit (sprintf "x[%d]" i) (fun v -> v * v) (1.0 / 3.0)
        testCase "bijectors: forward ∘ inverse, and log|det J| against finite differences" <| fun () ->
            for b, x in [ Bijector.PositiveOrdered, t [| -0.3; 0.5; 1.2 |]
                          Bijector.ExpAbove (s 2.0), t [| -0.3; 0.5; 1.2 |]
                          Bijector.ExpBelow (s -1.0), t [| -0.3; 0.5; 1.2 |] ] do
                let y = Bijector.forward b x
                assertClose 1e-12 (Tensor.toArray x) (Tensor.toArray (Bijector.inverse b y))
                // log|det J| by central differences of the forward map (a full Jacobian, 3×3)
                let h = 1e-6
                let jac = Array2D.init 3 3 (fun i j ->
                    let e = Array.init 3 (fun k -> if k = j then h else 0.0)
                    let up = Bijector.forward b (x + t e) |> Tensor.toArray
                    let dn = Bijector.forward b (x - t e) |> Tensor.toArray
                    (up.[i] - dn.[i]) / (2.0 * h))
                let det = MathNet.Numerics.LinearAlgebra.Double.DenseMatrix.OfArray(jac).Determinant()
                close 1e-6 (log (abs det)) (Bijector.logAbsDetJacobian b x |> Tensor.sum |> scalarOf) (sprintf "%A" b)
    ])

/// Truncated-normal density from MathNet (tails through erfc, which keeps its relative accuracy).
let private refTruncNormal (mu: float) (sigma: float) (lo: float) (hi: float) (x: float) =
    let upper z = 0.5 * SF.Erfc(z / sqrt 2.0)
    let a, b = (lo - mu) / sigma, (hi - mu) / sigma
    let z = if a > 0.0 then upper a - upper b else RefNormal.CDF(0.0, 1.0, b) - RefNormal.CDF(0.0, 1.0, a)
    RefNormal.PDFLn(mu, sigma, x) - log z

let private truncationTests =
    testList "truncation" [
        testCase "log Φ against MathNet from −37 to 8, and the asymptotic side below −30" <| fun () ->
            for z in [ -37.0; -30.5; -30.0; -29.9; -20.0; -5.0; -1.0; 0.0; 3.0; 8.0 ] do
                let expected = log (0.5 * SF.Erfc(-z / sqrt 2.0))
                close 1e-12 expected (Dist.normalLogCdf (s z) |> scalarOf) (sprintf "log Φ(%g)" z)
            // far below, where Φ underflows: Mills' ratio, −z²/2 − log(−z) − ½ log 2π + log(1 − 1/z² + 3/z⁴) to O(1/z⁶)
            for z in [ -100.0; -1e4; -1e100 ] do
                let r = 1.0 / (z * z)
                close 1e-12 (-0.5 * z * z - log (-z) - 0.5 * log (2.0 * Math.PI) + log (1.0 - r + 3.0 * r * r)) (Dist.normalLogCdf (s z) |> scalarOf) (sprintf "log Φ(%g)" z)
        testCase "truncated normal: density against MathNet, bounds deep in a tail included" <| fun () ->
            for mu, sigma, lo, hi, x in [ 0.0, 1.0, -1.0, 2.0, 0.3
                                          1.0, 2.0, 0.0, 3.0, 2.9
                                          0.0, 1.0, 10.0, 12.0, 10.5
                                          0.0, 1.0, -12.0, -10.0, -10.2
                                          3.0, 0.5, 0.0, 1e300, 3.1 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Normal (s mu, s sigma))
                close 1e-9 (refTruncNormal mu sigma lo hi x) (Dist.logProb d (s x) |> scalarOf) (sprintf "N(%g, %g) on (%g, %g) at %g" mu sigma lo hi x)
            let d = Dist.truncated (Some (s 0.0)) (Some (s 1.0)) (Normal (s 0.0, s 1.0))
            Expect.equal (Dist.logProb d (s 1.5) |> scalarOf) -infinity "outside the bounds"
        testCase "truncated densities integrate to one (Laplace, logistic, exponential, half-normal)" <| fun () ->
            for name, d, lo, hi in [ "Laplace", Dist.truncated (Some (s -1.0)) (Some (s 4.0)) (Laplace (s 0.5, s 2.0)), -1.0, 4.0
                                     "logistic", Dist.truncated (Some (s 2.0)) None (Logistic (s 0.0, s 1.0)), 2.0, 80.0
                                     "exponential", Dist.truncated None (Some (s 3.0)) (Exponential (s 0.7)), 0.0, 3.0
                                     "half-normal upper", Dist.truncated (Some (s 1.0)) (Some (s 2.0)) (HalfNormal (s 1.5)), 1.0, 2.0 ] do
                let n = 20000
                let h = (hi - lo) / float n
                let xs = Array.init n (fun i -> lo + (float i + 0.5) * h)
                let integral = Dist.logProb d (t xs) |> Tensor.toArray |> Array.sumBy (fun lp -> exp lp * h)
                close 1e-6 1.0 integral (sprintf "%s integrates to one" name)
        testCase "truncated Laplace and exponential against MathNet's CDFs" <| fun () ->
            let lap = Dist.truncated (Some (s -1.0)) (Some (s 4.0)) (Laplace (s 0.5, s 2.0))
            let z = RefLaplace.CDF(0.5, 2.0, 4.0) - RefLaplace.CDF(0.5, 2.0, -1.0)
            close 1e-12 (RefLaplace.PDFLn(0.5, 2.0, 1.0) - log z) (Dist.logProb lap (s 1.0) |> scalarOf) "Laplace"
            let ex = Dist.truncated (Some (s 50.0)) None (Exponential (s 2.0))
            // memoryless: Exp(2) above 50 is 50 + Exp(2)
            close 1e-12 (RefExponential.PDFLn(2.0, 1.0)) (Dist.logProb ex (s 51.0) |> scalarOf) "exponential far in its tail"
        testCase "half normal as the truncated normal, and draws inside the bounds with the right mean" <| fun () ->
            let h = Dist.half (Normal (s 0.0, s 2.0))
            close 1e-12 (Dist.logProb (HalfNormal (s 2.0)) (s 1.3) |> scalarOf) (Dist.logProb h (s 1.3) |> scalarOf) "half normal"
            let lo, hi = 0.5, 3.0
            let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Normal (s 1.0, s 1.0))
            let xs = Dist.sample (Rng.key 7UL) [| 20000 |] d |> Tensor.toArray
            Expect.isTrue (xs |> Array.forall (fun x -> x >= lo && x <= hi)) "draws inside"
            let a, b = lo - 1.0, hi - 1.0
            let zc = RefNormal.CDF(0.0, 1.0, b) - RefNormal.CDF(0.0, 1.0, a)
            let mean = 1.0 + (RefNormal.PDF(0.0, 1.0, a) - RefNormal.PDF(0.0, 1.0, b)) / zc
            let sd = sqrt (1.0 + (a * RefNormal.PDF(0.0, 1.0, a) - b * RefNormal.PDF(0.0, 1.0, b)) / zc - ((RefNormal.PDF(0.0, 1.0, a) - RefNormal.PDF(0.0, 1.0, b)) / zc) ** 2.0)
            Expect.isLessThan (abs (Array.average xs - mean)) (4.0 * sd / sqrt 20000.0) "mean of the draws"
        testCase "gradients of truncated log densities in the parameters and bounds" <| fun () ->
            gradCheck (fun p -> Dist.logProb (Truncated (Normal (p.[0], p.[1]), Some p.[2], Some (p.[2] + 3.0))) (t [| 0.5; 1.0 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| -0.5; 0.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Normal (p.[0], p.[1]), Some p.[2], None)) (t [| 10.5; 11.0 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| 10.0; 10.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Laplace (p.[0], p.[1]), Some (s -1.0), Some (s 2.0))) (t [| 0.5; 1.5 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Logistic (p.[0], p.[1]), None, Some (s 2.0))) (t [| 0.5; 1.5 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Exponential p.[1], Some (s 0.5), Some (s 2.0))) (t [| 0.7; 1.5 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |] |]
        testCase "truncated Cauchy and half-Cauchy against MathNet and closed forms, far tails included" <| fun () ->
            for loc, scale, lo, hi, x in [ 0.0, 1.0, -1.0, 2.0, 0.3
                                           1.0, 2.0, 3.0, 40.0, 7.0
                                           0.0, 1.0, -5.0, -2.0, -4.5 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Cauchy (s loc, s scale))
                let z = RefCauchy.CDF(loc, scale, hi) - RefCauchy.CDF(loc, scale, lo)
                close 1e-10 (RefCauchy.PDFLn(loc, scale, x) - log z) (Dist.logProb d (s x) |> scalarOf) (sprintf "C(%g, %g) on (%g, %g) at %g" loc scale lo hi x)
            // far in a tail, where ½ + atan(z)/π cancels: P(X > a) = atan(1/a)/π
            for a in [ 1e8; 1e150 ] do
                let d = Dist.truncated (Some (s a)) None (Cauchy (s 0.0, s 1.0))
                let x = 2.0 * a
                close 1e-10 (-(log Math.PI) - log (1.0 + x * x) - log (atan (1.0 / a) / Math.PI)) (Dist.logProb d (s x) |> scalarOf) (sprintf "above %g" a)
                let d = Dist.truncated None (Some (s -a)) (Cauchy (s 0.0, s 1.0))
                close 1e-10 (-(log Math.PI) - log (1.0 + x * x) - log (atan (1.0 / a) / Math.PI)) (Dist.logProb d (s -x) |> scalarOf) (sprintf "below %g" -a)
            // half-Cauchy(2) on (1, 3): 2/(πs(1 + (x/s)²)) over (2/π)(atan(3/2) − atan(1/2))
            let hc = Dist.truncated (Some (s 1.0)) (Some (s 3.0)) (HalfCauchy (s 2.0))
            close 1e-12 (log (2.0 / (Math.PI * 2.0 * (1.0 + 0.25 * 1.5 * 1.5))) - log (2.0 / Math.PI * (atan 1.5 - atan 0.5))) (Dist.logProb hc (s 1.5) |> scalarOf) "half-Cauchy"
            Expect.equal (Dist.logProb hc (s 3.5) |> scalarOf) -infinity "outside the bounds"
            close 1e-12 (Dist.logProb (HalfCauchy (s 2.0)) (s 0.7) |> scalarOf) (Dist.logProb (Dist.half (Cauchy (s 0.0, s 2.0))) (s 0.7) |> scalarOf) "half of a Cauchy"
            for name, d, lo, hi in [ "Cauchy", Dist.truncated (Some (s -2.0)) (Some (s 5.0)) (Cauchy (s 1.0, s 0.5)), -2.0, 5.0
                                     "half-Cauchy", Dist.truncated None (Some (s 4.0)) (HalfCauchy (s 1.0)), 0.0, 4.0 ] do
                let n = 40000
                let h = (hi - lo) / float n
                let integral = Dist.logProb d (t (Array.init n (fun i -> lo + (float i + 0.5) * h))) |> Tensor.toArray |> Array.sumBy (fun lp -> exp lp * h)
                close 1e-6 1.0 integral (sprintf "%s integrates to one" name)
            gradCheck (fun p -> Dist.logProb (Truncated (Cauchy (p.[0], p.[1]), Some p.[2], Some (p.[2] + 3.0))) (t [| 0.5; 1.0 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| -0.5; 0.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (HalfCauchy p.[1], Some (s 0.5), Some p.[2])) (t [| 0.7; 1.5 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| 2.0; 2.5 |] |]
        testCase "truncated Cauchy draws: inside the bounds, median where the CDF is one half" <| fun () ->
            let lo, hi = -1.0, 2.0
            let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Cauchy (s 0.0, s 1.0))
            let n = 20000
            let xs = Dist.sample (Rng.key 9UL) [| n |] d |> Tensor.toArray |> Array.sort
            Expect.isTrue (xs |> Array.forall (fun x -> x >= lo && x <= hi)) "draws inside"
            // the median m solves F(m) = (F(lo) + F(hi))/2; the sample median's sd is 1/(2 f(m) √n)
            let f v = 0.5 + atan v / Math.PI
            let m = tan (Math.PI * (0.5 * (f lo + f hi) - 0.5))
            let density = 1.0 / (Math.PI * (1.0 + m * m)) / (f hi - f lo)
            Expect.isLessThan (abs (xs.[n / 2] - m)) (4.0 / (2.0 * density * sqrt (float n))) "median of the draws"
        testCase "families without a CDF here are refused, naming those that have one" <| fun () ->
            let ex = Expect.throwsC (fun () -> Dist.truncated (Some (s 0.1)) None (Beta (s 3.0, s 2.0)) |> ignore) id
            Expect.stringContains ex.Message "Dist.restrict" "points to restrict"
            Expect.stringContains ex.Message "Beta has no CDF here" "names the base"
            Expect.stringContains ex.Message "StudentT, Logistic, Laplace, Exponential, Gamma, InverseGamma or LogNormal" "names the bases that have one"
        testCase "truncated Student-t against MathNet, tiny and huge df, and a half Student-t" <| fun () ->
            for df, loc, scale, lo, hi, x in [ 3.0, 0.0, 1.0, -1.0, 2.0, 0.3
                                               0.05, 1.0, 2.0, -3.0, 40.0, 7.0
                                               7.5, -2.0, 0.5, -10.0, -2.5, -4.0
                                               30.0, 0.0, 1.0, 2.0, 6.0, 2.5
                                               1.0, 0.0, 1.0, -5.0, -2.0, -4.5 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Dist.studentT (s df) (s loc) (s scale))
                let z = RefStudentT.CDF(loc, scale, df, hi) - RefStudentT.CDF(loc, scale, df, lo)
                close 1e-10 (RefStudentT.PDFLn(loc, scale, df, x) - log z) (Dist.logProb d (s x) |> scalarOf) (sprintf "t%g(%g, %g) on (%g, %g) at %g" df loc scale lo hi x)
            // huge df: the normalizer is the normal's to O(1/ν) (1e−10 here); compared apart from the base density,
            // whose lgamma((ν+1)/2) − lgamma(ν/2) loses ~1e−6 at ν = 1e10
            let baseT = Dist.studentT (s 1e10) (s 0.0) (s 1.0)
            let big = Dist.truncated (Some (s -1.0)) (Some (s 2.0)) baseT
            let logZ = log (RefNormal.CDF(0.0, 1.0, 2.0) - RefNormal.CDF(0.0, 1.0, -1.0))
            close 1e-9 -logZ ((Dist.logProb big (s 0.5) - Dist.logProb baseT (s 0.5)) |> scalarOf) "df = 1e10: the normal's normalizer"
            // Stan's real<lower=0> sigma; sigma ~ student_t(3, 0, 2.5): twice the t density
            let half = Dist.half (Dist.studentT (s 3.0) (s 0.0) (s 2.5))
            for x in [ 0.0; 0.7; 25.0; 1e6 ] do
                close 1e-12 (log 2.0 + RefStudentT.PDFLn(0.0, 2.5, 3.0, x)) (Dist.logProb half (s x) |> scalarOf) (sprintf "half t at %g" x)
            Expect.equal (Dist.logProb half (s -0.1) |> scalarOf) -infinity "below zero"
            Expect.equal (Dist.logProb (Dist.truncated (Some (s -1.0)) (Some (s 2.0)) (Dist.studentT (s 3.0) (s 0.0) (s 1.0))) (s 2.5) |> scalarOf) -infinity "above the upper bound"
        testCase "truncated Student-t far in a tail: the closed forms of 1 and 2 df, |z| up to 1e150" <| fun () ->
            // 2 df: f(x) = (2 + x²)^(−3/2), P(X > a) = 1/(√(2+a²)(√(2+a²) + a)); 1 df: the Cauchy
            for a in [ 1e3; 1e6; 1e12; 1e150 ] do
                let x = 1.5 * a
                let r = sqrt (2.0 + a * a)
                let t2 = Dist.truncated (Some (s a)) None (Dist.studentT (s 2.0) (s 0.0) (s 1.0))
                let expected = -1.5 * (2.0 * log x + Math.Log(1.0 + 2.0 / (x * x))) + log r + log (r + a)
                close 1e-12 expected (Dist.logProb t2 (s x) |> scalarOf) (sprintf "t2 above %g" a)
                let t2lo = Dist.truncated None (Some (s -a)) (Dist.studentT (s 2.0) (s 0.0) (s 1.0))
                close 1e-12 expected (Dist.logProb t2lo (s -x) |> scalarOf) (sprintf "t2 below %g" -a)
                let t1 = Dist.truncated (Some (s a)) (Some (s (2.0 * a))) (Dist.studentT (s 1.0) (s 0.0) (s 1.0))
                let zc = atan (1.0 / a) / Math.PI - atan (1.0 / (2.0 * a)) / Math.PI
                close 1e-10 (-(log Math.PI) - 2.0 * log x - Math.Log(1.0 + 1.0 / (x * x)) - log zc) (Dist.logProb t1 (s x) |> scalarOf) (sprintf "t1 on (%g, %g)" a (2.0 * a))
        testCase "truncated gamma against MathNet, tiny and huge shape, and far in the upper tail" <| fun () ->
            for shape, rate, lo, hi, x in [ 2.5, 1.5, 0.5, 3.0, 1.2
                                            0.01, 1.0, 1e-6, 0.5, 1e-3
                                            0.4, 2.0, 0.0, 1.0, 0.2
                                            40.0, 0.5, 60.0, 120.0, 90.0
                                            1e4, 1.0, 9800.0, 10050.0, 9990.0 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Dist.gamma (s shape) (s rate))
                let z = RefGamma.CDF(shape, rate, hi) - RefGamma.CDF(shape, rate, lo)
                close 1e-9 (RefGamma.PDFLn(shape, rate, x) - log z) (Dist.logProb d (s x) |> scalarOf) (sprintf "Gamma(%g, %g) on (%g, %g) at %g" shape rate lo hi x)
            // shape 1 is the exponential, memoryless: above 800 (Q = e^{−1600}, far below the smallest double)
            let far = Dist.truncated (Some (s 800.0)) None (Dist.gamma (s 1.0) (s 2.0))
            close 1e-12 (log 2.0 - 2.0 * 1.5) (Dist.logProb far (s 801.5) |> scalarOf) "exponential-shaped gamma above 800"
            // the lower end defaults to 0 for a positive base; only an upper bound: P(X ≤ 2) of Gamma(3, 1) = 1 − 5e⁻²
            let upper = Dist.truncated None (Some (s 2.0)) (Dist.gamma (s 3.0) (s 1.0))
            close 1e-12 (RefGamma.PDFLn(3.0, 1.0, 0.5) - log (1.0 - 5.0 * exp -2.0)) (Dist.logProb upper (s 0.5) |> scalarOf) "below 2"
            Expect.equal (Dist.logProb upper (s 2.5) |> scalarOf) -infinity "above the upper bound"
            Expect.equal (Dist.logProb upper (s -0.5) |> scalarOf) -infinity "below zero"
        testCase "truncated Student-t and gamma densities integrate to one" <| fun () ->
            for name, d, lo, hi in [ "t3", Dist.truncated (Some (s -2.0)) (Some (s 5.0)) (Dist.studentT (s 3.0) (s 1.0) (s 0.5)), -2.0, 5.0
                                     "t0.5 upper tail", Dist.truncated (Some (s 3.0)) (Some (s 9.0)) (Dist.studentT (s 0.5) (s 0.0) (s 1.0)), 3.0, 9.0
                                     "gamma", Dist.truncated (Some (s 0.5)) (Some (s 4.0)) (Dist.gamma (s 2.5) (s 1.5)), 0.5, 4.0
                                     "gamma lower part", Dist.truncated None (Some (s 1.0)) (Dist.gamma (s 1.7) (s 0.3)), 0.0, 1.0 ] do
                let n = 40000
                let h = (hi - lo) / float n
                let integral = Dist.logProb d (t (Array.init n (fun i -> lo + (float i + 0.5) * h))) |> Tensor.toArray |> Array.sumBy (fun lp -> exp lp * h)
                close 1e-6 1.0 integral (sprintf "%s integrates to one" name)
        testCase "gradients of truncated Student-t and gamma log densities in df, shape, loc, scale, rate and bounds" <| fun () ->
            gradCheck (fun p -> Dist.logProb (Truncated (StudentT (p.[0], p.[1], p.[2]), Some p.[3], Some (p.[3] + 3.0))) (t [| 0.5; 1.0 |]))
                [| t [| 3.0; 0.7 |]; t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| -0.5; 0.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (StudentT (p.[0], p.[1], p.[2]), Some p.[3], None)) (t [| 30.5; 41.0 |]))
                [| t [| 2.5; 12.0 |]; t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| 30.0; 40.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Gamma (p.[0], p.[1]), Some p.[2], Some (p.[2] + 2.0))) (t [| 1.5; 2.0 |]))
                [| t [| 2.5; 0.6 |]; t [| 1.3; 0.8 |]; t [| 0.9; 1.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (Gamma (p.[0], p.[1]), None, Some p.[2])) (t [| 0.5; 0.01 |]))
                [| t [| 2.5; 0.6 |]; t [| 1.3; 0.8 |]; t [| 0.9; 1.1 |] |]
        testCase "truncated Student-t and gamma in float32 agree with float64" <| fun () ->
            let f32 (v: float) = Tensor.scalar v |> Tensor.cast Float32
            for d64, d32, x in [ Dist.truncated (Some (s -1.0)) (Some (s 2.0)) (StudentT (s 3.0, s 0.2, s 1.5)),
                                 Dist.truncated (Some (f32 -1.0)) (Some (f32 2.0)) (StudentT (f32 3.0, f32 0.2, f32 1.5)), 0.4
                                 Dist.truncated (Some (s 0.5)) None (Gamma (s 2.5, s 1.5)), Dist.truncated (Some (f32 0.5)) None (Gamma (f32 2.5, f32 1.5)), 1.7 ] do
                let v64 = Dist.logProb d64 (s x) |> scalarOf
                let v32 = Dist.logProb d32 (f32 x)
                Expect.equal v32.Dtype Float32 "a float32 density"
                close 1e-6 v64 (v32 |> Tensor.cast Float64 |> scalarOf) (Dist.name d64)
                let g64 = Autodiff.grad (fun p -> Dist.logProb d64 p) (s x) |> scalarOf
                let g32 = Autodiff.grad (fun p -> Dist.logProb d32 p) (f32 x) |> Tensor.cast Float64 |> scalarOf
                close 1e-5 g64 g32 (Dist.name d64 + " gradient")
        testCase "truncated inverse-gamma and lognormal against MathNet, integrals, gradients and draws" <| fun () ->
            // MathNet's InverseGamma(shape, scale) is ours with rate = scale
            for shape, rate, lo, hi, x in [ 2.5, 1.5, 0.2, 3.0, 0.9; 0.7, 2.0, 5.0, 1e3, 40.0; 30.0, 60.0, 1.5, 2.5, 2.1 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Dist.inverseGamma (s shape) (s rate))
                let z = RefInvGamma.CDF(shape, rate, hi) - RefInvGamma.CDF(shape, rate, lo)
                close 1e-9 (RefInvGamma.PDFLn(shape, rate, x) - log z) (Dist.logProb d (s x) |> scalarOf) (sprintf "InverseGamma(%g, %g) on (%g, %g) at %g" shape rate lo hi x)
            for loc, scale, lo, hi, x in [ 0.0, 1.0, 0.5, 3.0, 1.2; 1.0, 0.3, 10.0, 1e6, 12.0; -2.0, 2.0, 1e-9, 1e-3, 1e-5 ] do
                let d = Dist.truncated (Some (s lo)) (Some (s hi)) (Dist.logNormal (s loc) (s scale))
                let z = 0.5 * (SF.Erfc(-(log hi - loc) / (scale * sqrt 2.0)) - SF.Erfc(-(log lo - loc) / (scale * sqrt 2.0)))
                let z = if log lo - loc > 0.0 then 0.5 * (SF.Erfc((log lo - loc) / (scale * sqrt 2.0)) - SF.Erfc((log hi - loc) / (scale * sqrt 2.0))) else z
                close 1e-9 (RefLogNormal.PDFLn(loc, scale, x) - log z) (Dist.logProb d (s x) |> scalarOf) (sprintf "LogNormal(%g, %g) on (%g, %g) at %g" loc scale lo hi x)
            let ig = Dist.truncated None (Some (s 2.0)) (Dist.inverseGamma (s 3.0) (s 1.0))
            Expect.equal (Dist.logProb ig (s -1.0) |> scalarOf) -infinity "below zero"
            Expect.equal (Dist.logProb ig (s 2.5) |> scalarOf) -infinity "above the upper bound"
            for name, d, lo, hi in [ "inverse gamma", Dist.truncated (Some (s 0.2)) (Some (s 3.0)) (Dist.inverseGamma (s 2.5) (s 1.5)), 0.2, 3.0
                                     "lognormal", Dist.truncated None (Some (s 2.0)) (Dist.logNormal (s 0.3) (s 0.8)), 0.0, 2.0 ] do
                let n = 40000
                let h = (hi - lo) / float n
                let integral = Dist.logProb d (t (Array.init n (fun i -> lo + (float i + 0.5) * h))) |> Tensor.toArray |> Array.sumBy (fun lp -> exp lp * h)
                close 1e-6 1.0 integral (sprintf "%s integrates to one" name)
            gradCheck (fun p -> Dist.logProb (Truncated (InverseGamma (p.[0], p.[1]), Some p.[2], Some (p.[2] + 2.0))) (t [| 1.5; 2.0 |]))
                [| t [| 2.5; 0.6 |]; t [| 1.3; 0.8 |]; t [| 0.9; 1.1 |] |]
            gradCheck (fun p -> Dist.logProb (Truncated (LogNormal (p.[0], p.[1]), Some p.[2], None)) (t [| 1.5; 2.0 |]))
                [| t [| 0.2; -0.3 |]; t [| 1.1; 0.8 |]; t [| 0.9; 1.1 |] |]
            let n = 20000
            let glo, ghi = 0.2, 3.0
            let xs = Dist.sample (Rng.key 13UL) [| n |] (Dist.truncated (Some (s glo)) (Some (s ghi)) (Dist.inverseGamma (s 2.5) (s 1.5))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (xs |> Array.forall (fun x -> x >= glo && x <= ghi)) "inverse-gamma draws inside"
            let zc = RefInvGamma.CDF(2.5, 1.5, ghi) - RefInvGamma.CDF(2.5, 1.5, glo)
            // the median solves F(m) = F(lo) + zc/2: bisection on MathNet's CDF
            let mutable a, b = glo, ghi
            for _ in 1 .. 100 do
                let c = 0.5 * (a + b)
                if RefInvGamma.CDF(2.5, 1.5, c) < RefInvGamma.CDF(2.5, 1.5, glo) + 0.5 * zc then a <- c else b <- c
            let m = 0.5 * (a + b)
            Expect.isLessThan (abs (xs.[n / 2] - m)) (4.0 / (2.0 * (RefInvGamma.PDF(2.5, 1.5, m) / zc) * sqrt (float n))) "inverse-gamma median of the draws"
            let ls = Dist.sample (Rng.key 14UL) [| n |] (Dist.truncated (Some (s 1.0)) None (Dist.logNormal (s 0.0) (s 1.0))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (ls |> Array.forall (fun x -> x >= 1.0)) "lognormal draws above 1"
            // LogNormal(0, 1) above 1 is exp of a half normal: the median is exp(Φ⁻¹(3/4))
            let lm = exp (RefNormal.InvCDF(0.0, 1.0, 0.75))
            Expect.isLessThan (abs (ls.[n / 2] - lm)) (4.0 / (2.0 * (2.0 * RefLogNormal.PDF(0.0, 1.0, lm)) * sqrt (float n))) "lognormal median of the draws"
        testCase "truncated Student-t and gamma draws: inside the bounds, median where the CDF is one half" <| fun () ->
            let n = 20000
            let medianIs (what: string) (xs: float[]) (m: float) (density: float) =
                // the sample median's sd is 1/(2 f(m) √n)
                Expect.isLessThan (abs (xs.[n / 2] - m)) (4.0 / (2.0 * density * sqrt (float n))) (what + ": median of the draws")
            let lo, hi = -1.0, 2.0
            let xs = Dist.sample (Rng.key 9UL) [| n |] (Dist.truncated (Some (s lo)) (Some (s hi)) (Dist.studentT (s 3.0) (s 0.0) (s 1.0))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (xs |> Array.forall (fun x -> x >= lo && x <= hi)) "t draws inside"
            let pm = 0.5 * (RefStudentT.CDF(0.0, 1.0, 3.0, lo) + RefStudentT.CDF(0.0, 1.0, 3.0, hi))
            let m = RefStudentT.InvCDF(0.0, 1.0, 3.0, pm)
            medianIs "t3 on (−1, 2)" xs m (RefStudentT.PDF(0.0, 1.0, 3.0, m) / (RefStudentT.CDF(0.0, 1.0, 3.0, hi) - RefStudentT.CDF(0.0, 1.0, 3.0, lo)))
            // half Student-t(3, 0, 2.5): the median is 2.5 times the t3 quantile at 3/4
            let hs = Dist.sample (Rng.key 10UL) [| n |] (Dist.half (Dist.studentT (s 3.0) (s 0.0) (s 2.5))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (hs |> Array.forall (fun x -> x >= 0.0)) "half-t draws nonnegative"
            let hm = 2.5 * RefStudentT.InvCDF(0.0, 1.0, 3.0, 0.75)
            medianIs "half t3" hs hm (2.0 * RefStudentT.PDF(0.0, 2.5, 3.0, hm))
            // far in the tail of t2 above a = 1e6: P(X > x | X > a) = S(x)/S(a), S(x) ≈ 1/(2x²): median a√2 (to 1e−12)
            let a = 1e6
            let ts = Dist.sample (Rng.key 11UL) [| n |] (Dist.truncated (Some (s a)) None (Dist.studentT (s 2.0) (s 0.0) (s 1.0))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (ts |> Array.forall (fun x -> x >= a)) "tail draws above the bound"
            medianIs "t2 above 1e6" ts (a * sqrt 2.0) ((a * sqrt 2.0) ** -3.0 / (1.0 / (2.0 * a * a)))
            // gamma(2.5, 1.5) on (0.5, 3)
            let glo, ghi = 0.5, 3.0
            let gs = Dist.sample (Rng.key 12UL) [| n |] (Dist.truncated (Some (s glo)) (Some (s ghi)) (Dist.gamma (s 2.5) (s 1.5))) |> Tensor.toArray |> Array.sort
            Expect.isTrue (gs |> Array.forall (fun x -> x >= glo && x <= ghi)) "gamma draws inside"
            let zc = RefGamma.CDF(2.5, 1.5, ghi) - RefGamma.CDF(2.5, 1.5, glo)
            let gm = RefGamma.InvCDF(2.5, 1.5, RefGamma.CDF(2.5, 1.5, glo) + 0.5 * zc)
            medianIs "gamma on (0.5, 3)" gs gm (RefGamma.PDF(2.5, 1.5, gm) / zc)
    ]

let private glmTests =
    testList "GLM-form likelihoods" [
        testCase "Poisson log-rate against MathNet, extreme rates and outside the support" <| fun () ->
            for eta in [ -30.0; -2.0; 0.0; 3.0; 20.0 ] do
                for k in [ 0; 1; 7; 150 ] do
                    close 1e-12 (RefPoisson.PMFLn(exp eta, k)) (Dist.logProb (Dist.poissonLog (s eta)) (s (float k)) |> scalarOf) (sprintf "η = %g, k = %d" eta k)
            // e^η overflows only where the mass is 0 anyway
            Expect.equal (Dist.logProb (Dist.poissonLog (s 800.0)) (s 3.0) |> scalarOf) -infinity "η = 800"
            for bad in [ -1.0; 1.5 ] do
                Expect.equal (Dist.logProb (Dist.poissonLog (s 0.3)) (s bad) |> scalarOf) -infinity (sprintf "k = %g" bad)
        testCase "negative binomial log-mean against MathNet, extreme means" <| fun () ->
            for eta in [ -20.0; 0.0; 4.0; 15.0 ] do
                for phi in [ 0.5; 3.0; 1e4 ] do
                    for k in [ 0; 2; 40 ] do
                        let mu = exp eta
                        // MathNet's PMFLn(φ, p) loses log(1 − p) when p = φ/(φ+μ) rounds near 1; where it
                        // does not (μ/φ > 1e-6) it is the reference, else the closed form in logs
                        let expected =
                            if mu / phi > 1e-6 then RefNegBin.PMFLn(phi, phi / (phi + mu), k)
                            else SF.GammaLn(float k + phi) - SF.GammaLn phi - SF.GammaLn(float k + 1.0) - phi * (mu / phi) + float k * (eta - log (phi + mu))
                        close 1e-9 expected (Dist.logProb (Dist.negativeBinomialLog (s eta) (s phi)) (s (float k)) |> scalarOf) (sprintf "η = %g, φ = %g, k = %d" eta phi k)
            // η = 800: e^η overflows a double, the log form does not
            let v = Dist.logProb (NegativeBinomialLog (s 800.0, s 2.0)) (s 0.0) |> scalarOf
            close 1e-12 (-2.0 * (800.0 - log 2.0)) v "P(0) = (φ/(φ+μ))^φ at η = 800"
            Expect.equal (Dist.logProb (NegativeBinomialLog (s 0.0, s 2.0)) (s -2.0) |> scalarOf) -infinity "k = −2"
        testCase "Bernoulli and binomial logits and categorical logits at extreme linear predictors" <| fun () ->
            close 1e-12 -1000.0 (Dist.logProb (BernoulliLogits (s -1000.0)) (s 1.0) |> scalarOf) "log σ(−1000)"
            close 1e-12 (SF.BinomialLn(10, 3) - 3.0 * 40.0 - 10.0 * exp -40.0) (Dist.logProb (BinomialLogits (s 10.0, s -40.0)) (s 3.0) |> scalarOf) "binomial at logit −40"
            close 1e-12 -2000.0 (Dist.logProb (CategoricalLogits (t [| 1000.0; -1000.0; 0.0 |])) (s 1.0) |> scalarOf |> fun v -> v - 0.0) "categorical far logit"
        testCase "gradients of the GLM forms in η and φ" <| fun () ->
            gradCheck (fun p -> Dist.logProb (PoissonLog p.[0]) (t [| 0.0; 3.0; 12.0 |])) [| t [| -1.0; 0.5; 2.0 |] |]
            gradCheck (fun p -> Dist.logProb (NegativeBinomialLog (p.[0], Tensor.exp p.[1])) (t [| 0.0; 3.0; 12.0 |]))
                [| t [| -1.0; 0.5; 2.0 |]; t [| 0.3; -0.2; 1.5 |] |]
    ]

let private lkjTests =
    testList "LKJ and GP kernels" [
        testCase "LKJ on 2×2: the correlation has density B(½, η)⁻¹(1 − r²)^(η−1)" <| fun () ->
            for eta in [ 0.5; 1.0; 2.0; 7.5 ] do
                for r in [ -0.9; 0.0; 0.4 ] do
                    let l = Tensor.create [| 2; 2 |] [| 1.0; 0.0; r; sqrt (1.0 - r * r) |]
                    let expected = (eta - 1.0) * log (1.0 - r * r) - (SF.GammaLn 0.5 + SF.GammaLn eta - SF.GammaLn (eta + 0.5))
                    close 1e-12 expected (Dist.logProb (Dist.lkjCholesky 2 (s eta)) l |> scalarOf) (sprintf "η = %g, r = %g" eta r)
        testCase "LKJ on 3×3 integrates to one over the unconstrained space (the CorrCholesky Jacobian)" <| fun () ->
            for eta in [ 1.0; 2.5 ] do
                let n, lim = 72, 7.2
                let h = 2.0 * lim / float n
                let grid = Array.init n (fun i -> -lim + (float i + 0.5) * h)
                let xs = [| for a in grid do for b in grid do for c in grid do yield! [| a; b; c |] |]
                let x = Tensor.create [| n * n * n; 3 |] xs
                let d = Dist.lkjCholesky 3 (s eta)
                let lp = Dist.logProb d (Bijector.forward Bijector.CorrCholesky x) + Bijector.logAbsDetJacobian Bijector.CorrCholesky x
                let integral = lp |> Tensor.toArray |> Array.sumBy (fun v -> exp v * h * h * h)
                close 2e-3 1.0 integral (sprintf "η = %g" eta)
        testCase "NUTS: LKJ(2) on 2×2, E[r²] = 1/(2η + 1)" <| fun () ->
            let m = model { let! l = Model.sample "L" (Dist.lkjCholesky 2 (s 2.0)) in return l }
            let fit = nuts 17UL m
            meanIs fit "L[2,1]" id 0.0
            meanIs fit "L[2,1]" (fun v -> v * v) 0.2
        testCase "GP kernels against their closed forms, finite gradients at zero distance" <| fun () ->
            let x = t [| 0.0; 0.5; 2.0 |]
            let a, rho = 1.3, 0.7
            let k f = f (s a) (s rho) x x |> Tensor.toArray
            let d = [| for i in [ 0.0; 0.5; 2.0 ] do for j in [ 0.0; 0.5; 2.0 ] -> abs (i - j) |]
            assertClose 1e-12 (d |> Array.map (fun r -> a * a * exp (-r * r / (2.0 * rho * rho)))) (k Gp.expQuad)
            assertClose 1e-12 (d |> Array.map (fun r -> let u = sqrt 3.0 * r / rho in a * a * (1.0 + u) * exp (-u))) (k Gp.matern32)
            assertClose 1e-12 (d |> Array.map (fun r -> let u = sqrt 5.0 * r / rho in a * a * (1.0 + u + u * u / 3.0) * exp (-u))) (k Gp.matern52)
            let x2 = Tensor.create [| 2; 2 |] [| 0.0; 1.0; 3.0; -1.0 |]
            close 1e-12 (a * a * exp (-(9.0 + 4.0) / (2.0 * rho * rho))) ((Gp.expQuad (s a) (s rho) x2 x2 |> Tensor.toArray).[1]) "two features"
            for kernel in [ Gp.expQuad; Gp.matern32; Gp.matern52 ] do
                gradCheck (fun p -> Gp.addDiagonal (s 1e-6) (kernel p.[0] p.[1] p.[2] p.[2])) [| s 1.3; s 0.7; x |]
        testCase "periodic GP kernel against its closed form, period and finite gradients at zero distance" <| fun () ->
            let xs = [| 0.0; 0.5; 2.0; 3.5 |]
            let a, ell, per = 1.3, 0.7, 1.5
            let k = Gp.periodic (s a) (s ell) (s per) (t xs) (t xs) |> Tensor.toArray
            let closed r = a * a * exp (-2.0 * (sin (Math.PI * r / per)) ** 2.0 / (ell * ell))
            assertClose 1e-12 [| for i in xs do for j in xs -> closed (abs (i - j)) |] k
            // one period apart (0.5 and 2.0): the same covariance as at distance zero
            close 1e-12 (a * a) k.[1 * 4 + 2] "a whole period apart"
            let x2 = Tensor.create [| 2; 2 |] [| 0.0; 1.0; 3.0; -1.0 |]
            close 1e-12 (closed (sqrt 13.0)) ((Gp.periodic (s a) (s ell) (s per) x2 x2 |> Tensor.toArray).[1]) "two features: Euclidean distance"
            gradCheck (fun p -> Gp.addDiagonal (s 1e-6) (Gp.periodic p.[0] p.[1] p.[2] p.[3] p.[3])) [| s 1.3; s 0.7; s 1.5; t xs |]
    ]

// Φ(c) − Φ(−c) and the variance of N(0, 1) truncated to (−c, c): 1 − 2cφ(c)/(2Φ(c) − 1).
let private truncatedVariance (c: float) = 1.0 - 2.0 * c * RefNormal.PDF(0.0, 1.0, c) / (2.0 * RefNormal.CDF(0.0, 1.0, c) - 1.0)

let private rejectionTests =
    testList "rejections" [
        testCase "NUTS: a Cholesky that throws outside |x| < √1.5 is a rejection, counted as a divergence" <| fun () ->
            // x ~ N(0, 1); the model takes the Cholesky factor of the 1×1 'covariance' 1.5 − x², which
            // raises where it is not positive: the posterior is N(0, 1) truncated to (−√1.5, √1.5)
            let m = model {
                let! x = Model.sample "x" (Normal (s 0.0, s 1.0))
                let l = Tensor.cholesky (Tensor.reshape [| 1; 1 |] (1.5 - x * x))
                do! Model.factor "gp_like" (0.0 * Tensor.sum l)
                return x }
            let fit = nuts 18UL m
            let c = sqrt 1.5
            meanIs fit "x" id 0.0
            meanIs fit "x" (fun v -> v * v) (truncatedVariance c)
            let perChain = fit.Flat.Stats |> Array.map (fun st -> st.Divergent |> Array.filter id |> Array.length)
            Expect.isGreaterThan (Array.sum perChain) 0 (sprintf "the rejections are counted as divergences per chain (%A)" perChain)
            Expect.isTrue (Mcmc.warnings fit |> List.isEmpty |> not) "and reported among the warnings"
        testCase "a potential that raises at every init try names the site and the op" <| fun () ->
            let m = model {
                let! x = Model.sample "x" (Normal (s 0.0, s 1.0))
                // positive definite at x = 0 only (where the model is probed), never at an init try
                let l = Tensor.cholesky (Tensor.reshape [| 1; 1 |] (1e-300 - x * x))
                do! Model.factor "gp_like" (Tensor.sum l)
                return x }
            let ex = Expect.throwsC (fun () -> nuts 19UL m |> ignore) id
            Expect.stringContains ex.Message "after site 'x'" "names the last site reached"
            Expect.stringContains ex.Message "cholesky" "names the op"
    ]

[<Tests>]
let modelingTests =
    testList "Modeling" [ flatTests; constrainedTests; truncationTests; glmTests; lkjTests; rejectionTests ]
