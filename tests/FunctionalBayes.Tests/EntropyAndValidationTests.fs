/// Closed-form entropies against MathNet.Numerics, moments of the multivariate families, and the
/// errors users see for bad parameters.
module FunctionalBayes.Tests.EntropyAndValidationTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
// MathNet.Numerics references, renamed apart from our union cases
type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefCauchy = MathNet.Numerics.Distributions.Cauchy
type private RefLaplace = MathNet.Numerics.Distributions.Laplace
type private RefLogNormal = MathNet.Numerics.Distributions.LogNormal
type private RefExponential = MathNet.Numerics.Distributions.Exponential
type private RefGamma = MathNet.Numerics.Distributions.Gamma
type private RefBeta = MathNet.Numerics.Distributions.Beta
type private RefContinuousUniform = MathNet.Numerics.Distributions.ContinuousUniform
type private RefBernoulli = MathNet.Numerics.Distributions.Bernoulli
type private RefCategorical = MathNet.Numerics.Distributions.Categorical

let private s (v: float) = Tensor.scalar v
let private t (a: float[]) = Tensor.ofArray a
let private h d = Dist.entropy d |> Tensor.toScalar

let ``entropies against MathNet`` () =
    Assert.Equal(RefNormal(0.5, 1.7).Entropy, h (Dist.normal (s 0.5) (s 1.7)), 12)
    Assert.Equal(RefCauchy(0.5, 1.7).Entropy, h (Dist.cauchy (s 0.5) (s 1.7)), 12)
    Assert.Equal(RefLaplace(0.5, 1.7).Entropy, h (Dist.laplace (s 0.5) (s 1.7)), 12)
    Assert.Equal(RefLogNormal(0.5, 0.7).Entropy, h (Dist.logNormal (s 0.5) (s 0.7)), 12)
    Assert.Equal(RefExponential(2.5).Entropy, h (Dist.exponential (s 2.5)), 12)
    Assert.Equal(RefGamma(2.5, 1.5).Entropy, h (Dist.gamma (s 2.5) (s 1.5)), 11)
    Assert.Equal(RefBeta(2.5, 1.5).Entropy, h (Dist.beta (s 2.5) (s 1.5)), 11)
    Assert.Equal(RefContinuousUniform(-1.0, 2.0).Entropy, h (Dist.uniform (s -1.0) (s 2.0)), 12)
    Assert.Equal(RefBernoulli(0.3).Entropy, h (Dist.bernoulliProbs (s 0.3)), 12)
    Assert.Equal(RefCategorical([| 0.2; 0.5; 0.3 |]).Entropy, h (Dist.categoricalProbs (t [| 0.2; 0.5; 0.3 |])), 12)

let ``entropies without a MathNet reference, by Monte Carlo`` () =
    let mc (seed: uint64) d =
        let n = 100_000
        let lp = Dist.logProb d (Dist.sample (Rng.key seed) [| n |] d)
        let lp = if lp.Rank > 1 then Tensor.sumAxes [| 1 |] false lp else lp
        let v = Tensor.toArray lp
        let m = Array.average v
        -m, sqrt (v |> Array.averageBy (fun x -> (x - m) ** 2.0)) / sqrt (float n)
    for i, d in List.indexed [ Dist.studentT (s 5.0) (s 0.0) (s 2.0); Dist.halfNormal (s 1.3); Dist.halfCauchy (s 0.8); Dist.logistic (s 0.0) (s 1.4)
                               Dist.inverseGamma (s 3.0) (s 2.0); Dist.dirichlet (t [| 1.5; 0.8; 2.0 |])
                               Dist.multivariateNormalCov (t [| 0.0; 0.0 |]) (Tensor.create [| 2; 2 |] [| 2.0; 0.5; 0.5; 1.0 |])
                               Dist.lowRankMultivariateNormal (t [| 0.0; 0.0 |]) (Tensor.create [| 2; 1 |] [| 1.0; 0.5 |]) (t [| 0.5; 0.3 |]) ] do
        let est, se = mc (uint64 (40 + i)) d
        let exact = h d
        Assert.True(abs (est - exact) < 5.0 * se, sprintf "%s entropy %g, Monte Carlo %g ± %g" (Dist.name d) exact est se)

let ``invalid parameters name the distribution, the parameter and the value`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.normal (s 0.0) (s -1.0) |> ignore)
    Assert.Contains("Normal", ex.Message)
    Assert.Contains("scale", ex.Message)
    Assert.Contains("-1", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.bernoulliProbs (t [| 0.5; 1.5 |]) |> ignore)
    Assert.Contains("Bernoulli", ex.Message)
    Assert.Contains("probs", ex.Message)
    Assert.Contains("1.5", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.normal (t [| 0.0; 1.0 |]) (t [| 1.0; 1.0; 1.0 |]) |> ignore)
    Assert.Contains("[2]", ex.Message)
    Assert.Contains("[3]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.multivariateNormalCov (t [| 0.0; 0.0 |]) (Tensor.create [| 2; 2 |] [| 1.0; 2.0; 2.0; 1.0 |]) |> ignore)
    Assert.Contains("positive definite", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.categoricalProbs (t [| 0.5; 0.6 |]) |> ignore)
    Assert.Contains("sum to 1", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.gamma (s Double.NaN) (s 1.0) |> ignore)
    Assert.Contains("concentration", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.uniform (s 2.0) (s 1.0) |> ignore)
    Assert.Contains("high", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.orderedLogistic (s 0.0) (t [| 1.0; 0.0 |]) |> ignore)
    Assert.Contains("cutpoints", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Dist.logProb (Dist.normal (t [| 0.0; 1.0 |]) (s 1.0)) (t [| 1.0; 2.0; 3.0 |]) |> ignore)
    Assert.Contains("[3]", ex.Message)
    Assert.Contains("[2]", ex.Message)

let ``the union cases skip validation, for hot loops`` () =
    // no exception at construction; the density is then NaN, which is what validation is for
    let d = Distribution.Normal (s 0.0, s -1.0)
    Assert.True(Double.IsNaN(Dist.logProb d (s 0.5) |> Tensor.toScalar))

let ``shapes and supports`` () =
    let d = Dist.normal (Tensor.zeros [| 3 |]) (Tensor.ones [| 2; 1 |])
    Assert.Equal<int[]>([| 2; 3 |], Dist.batchShape d)
    Assert.Equal<int[]>([||], Dist.eventShape d)
    let i = Dist.toEvent 1 d
    Assert.Equal<int[]>([| 2 |], Dist.batchShape i)
    Assert.Equal<int[]>([| 3 |], Dist.eventShape i)
    let mvn = Dist.multivariateNormal (Tensor.zeros [| 4; 3 |]) (Tensor.eye 3)
    Assert.Equal<int[]>([| 4 |], Dist.batchShape mvn)
    Assert.Equal<int[]>([| 3 |], Dist.eventShape mvn)
    Assert.Equal(Constraint.Positive, Dist.support (Dist.gamma (s 1.0) (s 1.0)))
    Assert.Equal(Constraint.Simplex, Dist.support (Dist.dirichlet (t [| 1.0; 1.0 |])))
    Assert.Equal(Constraint.IntegerInterval (0, 2), Dist.support (Dist.categoricalLogits (t [| 0.0; 0.0; 0.0 |])))
    Assert.Equal(Bijector.Sigmoid (0.0, 1.0), Constraint.bijector (Dist.support (Dist.beta (s 1.0) (s 1.0))))

[<Tests>]
let tests =
    testList "EntropyAndValidationTests" [
        testCase "entropies against MathNet" ``entropies against MathNet``
        testCase "entropies without a MathNet reference, by Monte Carlo" ``entropies without a MathNet reference, by Monte Carlo``
        testCase "invalid parameters name the distribution, the parameter and the value" ``invalid parameters name the distribution, the parameter and the value``
        testCase "the union cases skip validation, for hot loops" ``the union cases skip validation, for hot loops``
        testCase "shapes and supports" ``shapes and supports``
    ]
