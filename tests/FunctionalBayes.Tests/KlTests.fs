/// Every analytic KL divergence against a Monte Carlo estimate, within 5 Monte Carlo standard errors.
module FunctionalBayes.Tests.KlTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors

let private s (v: float) = Tensor.scalar v
let private t (a: float[]) = Tensor.ofArray a
let private n = 60_000

let private agrees (seed: uint64) (p: Distribution) (q: Distribution) =
    let exact = Kl.analytic p q |> Tensor.toArray |> Array.sum
    let x = Dist.sample (Rng.key seed) [| n |] p
    let diffs = Dist.logProb p x - Dist.logProb q x
    let perDraw = (if diffs.Rank > 1 then Tensor.sumAxes (Array.init (diffs.Rank - 1) (fun i -> i + 1)) false diffs else diffs) |> Tensor.toArray
    let m = Array.average perDraw
    let sd = sqrt (perDraw |> Array.averageBy (fun v -> (v - m) ** 2.0))
    let se = sd / sqrt (float n)
    if abs (m - exact) > 5.0 * se + 1e-12 then
        failwithf "KL(%s ‖ %s): analytic %g, Monte Carlo %g ± %g" (Dist.name p) (Dist.name q) exact m se

let ``scalar families`` () =
    agrees 1UL (Dist.normal (s 0.5) (s 1.2)) (Dist.normal (s -0.3) (s 0.8))
    agrees 2UL (Dist.logNormal (s 0.1) (s 0.5)) (Dist.logNormal (s 0.4) (s 0.9))
    agrees 3UL (Dist.gamma (s 2.0) (s 1.5)) (Dist.gamma (s 3.5) (s 2.5))
    agrees 4UL (Dist.beta (s 2.0) (s 3.0)) (Dist.beta (s 1.2) (s 0.8))
    agrees 5UL (Dist.exponential (s 2.0)) (Dist.exponential (s 0.7))
    agrees 6UL (Dist.laplace (s 0.2) (s 1.0)) (Dist.laplace (s -0.5) (s 1.7))
    agrees 7UL (Dist.bernoulliLogits (s 0.3)) (Dist.bernoulliLogits (s -1.1))
    agrees 8UL (Dist.bernoulliProbs (s 0.3)) (Dist.bernoulliProbs (s 0.6))

let ``vector families and wrappers`` () =
    agrees 11UL (Dist.categoricalLogits (t [| 0.1; 1.0; -0.5 |])) (Dist.categoricalProbs (t [| 0.2; 0.3; 0.5 |]))
    agrees 12UL (Dist.dirichlet (t [| 1.5; 2.0; 0.7 |])) (Dist.dirichlet (t [| 1.0; 1.0; 3.0 |]))
    let l1 = Tensor.create [| 2; 2 |] [| 1.0; 0.0; 0.4; 0.8 |]
    let l2 = Tensor.create [| 2; 2 |] [| 1.5; 0.0; -0.3; 0.6 |]
    agrees 13UL (Dist.multivariateNormal (t [| 0.0; 1.0 |]) l1) (Dist.multivariateNormal (t [| 0.5; 0.2 |]) l2)
    agrees 14UL (Dist.toEvent 1 (Dist.normal (t [| 0.0; 1.0 |]) (t [| 1.0; 2.0 |]))) (Dist.toEvent 1 (Dist.normal (t [| 0.3; 0.0 |]) (t [| 1.5; 1.0 |])))

let ``pairs without a closed form fall back to Monte Carlo, and say so when asked for one`` () =
    let p = Dist.normal (s 0.0) (s 1.0)
    let q = Dist.studentT (s 3.0) (s 0.0) (s 1.0)
    Assert.False(Kl.isAnalytic p q)
    let ex = Assert.Throws<ArgumentException>(fun () -> Kl.analytic p q |> ignore)
    Assert.Contains("Normal", ex.Message)
    Assert.Contains("StudentT", ex.Message)
    let est = Kl.divergence (Rng.key 5UL) 20_000 p q |> Tensor.toScalar
    Assert.True(est > 0.0 && est < 0.1)

let ``analytic KL is differentiable`` () =
    // d/dμ₁ KL(N(μ₁,1) ‖ N(0,1)) = μ₁
    let g = Autodiff.grad (fun m -> Kl.analytic (Normal (m, s 1.0)) (Normal (s 0.0, s 1.0))) (s 0.7)
    Assert.Equal(0.7, Tensor.toScalar g, 14)

[<Tests>]
let tests =
    testList "KlTests" [
        testCase "scalar families" ``scalar families``
        testCase "vector families and wrappers" ``vector families and wrappers``
        testCase "pairs without a closed form fall back to Monte Carlo, and say so when asked for one" ``pairs without a closed form fall back to Monte Carlo, and say so when asked for one``
        testCase "analytic KL is differentiable" ``analytic KL is differentiable``
    ]
