/// Sample means and variances against the analytic ones, with tolerances from the Monte Carlo
/// standard error (fixed seeds, so deterministic), and the shapes of draws.
module FunctionalBayes.Tests.SampleTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private s (v: float) = Tensor.scalar v
let private draws = 40_000

/// Checks the sample mean within 5 standard errors and the sample variance within 5 standard
/// errors of the variance estimator, SE(s²) ≈ sqrt((m₄ − s⁴)/n) with the sample fourth moment.
let private momentsMatch (seed: uint64) (d: Distribution) =
    let x = Dist.sample (Rng.key seed) [| draws |] d |> Tensor.toArray
    let n = float x.Length
    let m = Array.average x
    let v = x |> Array.averageBy (fun xi -> (xi - m) ** 2.0)
    let m4 = x |> Array.averageBy (fun xi -> (xi - m) ** 4.0)
    let mu = Dist.mean d |> Tensor.toScalar
    let var = Dist.variance d |> Tensor.toScalar
    let seMean = sqrt (var / n)
    let seVar = sqrt ((m4 - v * v) / n)
    if abs (m - mu) > 5.0 * seMean then failwithf "%s: sample mean %g vs %g (5 SE = %g)" (Dist.name d) m mu (5.0 * seMean)
    if abs (v - var) > 5.0 * seVar then failwithf "%s: sample variance %g vs %g (5 SE = %g)" (Dist.name d) v var (5.0 * seVar)

let ``continuous families`` () =
    [ Dist.normal (s 1.5) (s 0.7)
      Dist.halfNormal (s 2.0)
      Dist.studentT (s 7.0) (s -1.0) (s 2.0)
      Dist.laplace (s 0.5) (s 1.5)
      Dist.logistic (s -0.3) (s 0.8)
      Dist.logNormal (s 0.2) (s 0.4)
      Dist.exponential (s 2.5)
      Dist.gamma (s 0.4) (s 2.0)
      Dist.gamma (s 3.0) (s 0.5)
      Dist.inverseGamma (s 6.0) (s 2.0)
      Dist.beta (s 0.5) (s 0.5)
      Dist.beta (s 2.0) (s 5.0)
      Dist.uniform (s -1.0) (s 3.0) ]
    |> List.iteri (fun i d -> momentsMatch (uint64 (100 + i)) d)

let ``discrete families`` () =
    [ Dist.bernoulliProbs (s 0.3)
      Dist.bernoulliLogits (s -1.2)
      Dist.binomialProbs (s 12.0) (s 0.35)
      Dist.binomialLogits (s 7.0) (s 0.4)
      Dist.poisson (s 3.5)
      Dist.poisson (s 250.0)
      Dist.negativeBinomial (s 4.0) (s 1.5)
      Dist.zeroInflatedPoisson (s 0.3) (s 4.0)
      Dist.zeroInflatedNegativeBinomial (s 0.2) (s 3.0) (s 2.0) ]
    |> List.iteri (fun i d -> momentsMatch (uint64 (200 + i)) d)

let ``heavy-tailed families by their quantiles`` () =
    // Cauchy(1, 2): median 1 and quartiles 1 ± 2; the sample quantile's SE is sqrt(p(1-p)/n)/f(q).
    let x = Dist.sample (Rng.key 7UL) [| draws |] (Dist.cauchy (s 1.0) (s 2.0)) |> Tensor.toArray |> Array.sort
    let q p = x.[int (p * float draws)]
    let f v = 1.0 / (Math.PI * 2.0 * (1.0 + ((v - 1.0) / 2.0) ** 2.0))
    for p, expected in [ 0.25, -1.0; 0.5, 1.0; 0.75, 3.0 ] do
        let se = sqrt (p * (1.0 - p) / float draws) / f expected
        Assert.True(abs (q p - expected) < 5.0 * se, sprintf "Cauchy quantile %g: %g vs %g" p (q p) expected)
    let h = Dist.sample (Rng.key 8UL) [| draws |] (Dist.halfCauchy (s 2.0)) |> Tensor.toArray |> Array.sort
    // HalfCauchy(2): median 2, density at the median 2/(π·2·2)
    let seMed = sqrt (0.25 / float draws) / (1.0 / (2.0 * Math.PI))
    Assert.True(abs (h.[draws / 2] - 2.0) < 5.0 * seMed)

let ``categorical and ordered logistic frequencies`` () =
    let probs = [| 0.1; 0.6; 0.3 |]
    let check (d: Distribution) (p: float[]) seed =
        let x = Dist.sample (Rng.key seed) [| draws |] d |> Tensor.toArray
        for k in 0 .. p.Length - 1 do
            let f = (x |> Array.filter (fun v -> v = float k) |> Array.length |> float) / float draws
            let se = sqrt (p.[k] * (1.0 - p.[k]) / float draws)
            Assert.True(abs (f - p.[k]) < 5.0 * se, sprintf "%s class %d: %g vs %g" (Dist.name d) k f p.[k])
    check (Dist.categoricalProbs (Tensor.ofArray probs)) probs 11UL
    check (Dist.categoricalLogits (Tensor.ofArray (probs |> Array.map log))) probs 12UL
    let cdf c = 1.0 / (1.0 + exp (-(c - 0.4)))
    let cuts = [| -1.0; 1.0 |]
    check (Dist.orderedLogistic (s 0.4) (Tensor.ofArray cuts)) [| cdf -1.0; cdf 1.0 - cdf -1.0; 1.0 - cdf 1.0 |] 13UL

let ``multivariate families: mean and covariance`` () =
    let checkCov (d: Distribution) (mu: float[]) (cov: float[,]) seed =
        let k = mu.Length
        let x = Dist.sample (Rng.key seed) [| draws |] d |> Tensor.toArray2D
        for i in 0 .. k - 1 do
            let mi = Seq.average (seq { for r in 0 .. draws - 1 -> x.[r, i] })
            Assert.True(abs (mi - mu.[i]) < 5.0 * sqrt (cov.[i, i] / float draws), sprintf "%s mean %d: %g vs %g" (Dist.name d) i mi mu.[i])
            for j in 0 .. k - 1 do
                let cij = Seq.average (seq { for r in 0 .. draws - 1 -> (x.[r, i] - mu.[i]) * (x.[r, j] - mu.[j]) })
                // SE of a Gaussian sample covariance: sqrt((Σii Σjj + Σij²)/n)
                let se = sqrt ((cov.[i, i] * cov.[j, j] + cov.[i, j] ** 2.0) / float draws)
                Assert.True(abs (cij - cov.[i, j]) < 5.0 * se, sprintf "%s cov %d,%d: %g vs %g" (Dist.name d) i j cij cov.[i, j])
    let cov = array2D [ [ 2.0; 0.6; -0.3 ]; [ 0.6; 1.0; 0.2 ]; [ -0.3; 0.2; 0.5 ] ]
    checkCov (Dist.multivariateNormalCov (Tensor.ofArray [| 1.0; -1.0; 0.5 |]) (Tensor.ofArray2D cov)) [| 1.0; -1.0; 0.5 |] cov 21UL
    // W Wᵀ + D with W = [1, 0; 0.5, 1; 0, -0.5], D = (0.5, 0.2, 0.3)
    let lr = array2D [ [ 1.5; 0.5; 0.0 ]; [ 0.5; 1.45; -0.5 ]; [ 0.0; -0.5; 0.55 ] ]
    checkCov (Dist.lowRankMultivariateNormal (Tensor.ofArray [| 0.0; 2.0; 0.0 |]) (Tensor.create [| 3; 2 |] [| 1.0; 0.0; 0.5; 1.0; 0.0; -0.5 |]) (Tensor.ofArray [| 0.5; 0.2; 0.3 |]))
        [| 0.0; 2.0; 0.0 |] lr 22UL
    // Dirichlet: means a/a0 and variances a(a0-a)/(a0²(a0+1)) per coordinate
    let a = [| 1.0; 2.0; 3.0 |]
    let x = Dist.sample (Rng.key 23UL) [| draws |] (Dist.dirichlet (Tensor.ofArray a)) |> Tensor.toArray2D
    let a0 = Array.sum a
    for i in 0 .. 2 do
        let col = Array.init draws (fun r -> x.[r, i])
        let m = Array.average col
        let var = a.[i] * (a0 - a.[i]) / (a0 * a0 * (a0 + 1.0))
        Assert.True(abs (m - a.[i] / a0) < 5.0 * sqrt (var / float draws))
    Assert.All(Array.init draws (fun r -> x.[r, 0] + x.[r, 1] + x.[r, 2]), fun v -> Assert.Equal(1.0, v, 12))

let ``mixture moments`` () =
    momentsMatch 31UL (Dist.mixture (Tensor.ofArray [| 0.0; log 3.0 |]) [ Dist.normal (s -2.0) (s 0.5); Dist.laplace (s 1.0) (s 1.0) ])

let ``shapes of draws, and reproducibility`` () =
    let d = Dist.normal (Tensor.zeros [| 3 |]) (Tensor.ones [| 2; 1 |])
    Assert.Equal<int[]>([| 4; 5; 2; 3 |], (Dist.sample (Rng.key 1UL) [| 4; 5 |] d).Shape)
    Assert.Equal<int[]>([| 4; 2; 3 |], (Dist.sample (Rng.key 1UL) [| 4 |] (Dist.toEvent 2 d)).Shape)
    Assert.Equal<int[]>([| 4; 6; 2; 3 |], (Dist.sample (Rng.key 1UL) [| 4 |] (Dist.expand [| 6; 2; 3 |] d)).Shape)
    let mvn = Dist.multivariateNormal (Tensor.zeros [| 3 |]) (Tensor.eye 3)
    Assert.Equal<int[]>([| 7; 3 |], (Dist.sample (Rng.key 1UL) [| 7 |] mvn).Shape)
    let a = Dist.sample (Rng.key 9UL) [| 10 |] d |> Tensor.toArray
    let b = Dist.sample (Rng.key 9UL) [| 10 |] d |> Tensor.toArray
    Assert.Equal<float[]>(a, b)
    // expanded singleton axes get independent draws
    let e = Dist.sample (Rng.key 2UL) [||] (Dist.expand [| 4 |] (Dist.normal (Tensor.zeros [| 1 |]) (Tensor.ones [| 1 |]))) |> Tensor.toArray
    Assert.Equal(4, Array.distinct e |> Array.length)

let ``rsample is differentiable where the family allows it`` () =
    // d/dσ E[x²] for Normal(0, σ) is 2σ: the reparameterized estimate with common random numbers is exact in expectation
    let g = Autodiff.grad (fun sigma -> Tensor.mean (Tensor.square (Dist.rsample (Rng.key 3UL) [| draws |] (Normal (s 0.0, sigma))))) (s 1.5)
    Assert.True(abs (Tensor.toScalar g - 3.0) < 5.0 * 3.0 * sqrt (2.0 / float draws))
    Assert.False(Dist.hasRsample (Dist.gamma (s 1.0) (s 1.0)))
    let ex = Assert.Throws<NotSupportedException>(fun () -> Dist.rsample (Rng.key 1UL) [| 2 |] (Dist.gamma (s 1.0) (s 1.0)) |> ignore)
    Assert.Contains("score-function", ex.Message)

[<Tests>]
let tests =
    testList "SampleTests" [
        testCase "continuous families" ``continuous families``
        testCase "discrete families" ``discrete families``
        testCase "heavy-tailed families by their quantiles" ``heavy-tailed families by their quantiles``
        testCase "categorical and ordered logistic frequencies" ``categorical and ordered logistic frequencies``
        testCase "multivariate families: mean and covariance" ``multivariate families: mean and covariance``
        testCase "mixture moments" ``mixture moments``
        testCase "shapes of draws, and reproducibility" ``shapes of draws, and reproducibility``
        testCase "rsample is differentiable where the family allows it" ``rsample is differentiable where the family allows it``
    ]
