/// Gradients of every distribution's log-density in its parameters (and value, where continuous)
/// against finite differences.
module FunctionalBayes.Tests.GradientTests

open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private t (a: float[]) = Tensor.ofArray a
let private lp (d: Distribution) (x: float[]) = Dist.logProb d (t x)

let ``continuous scalar families, in parameters and value`` () =
    let x = [| 0.3; 1.7; 0.9 |]
    let cases : (Tensor[] -> Tensor) list =
        [ fun p -> Dist.logProb (Normal (p.[0], p.[1])) p.[2]
          fun p -> Dist.logProb (HalfNormal p.[1]) p.[2]
          fun p -> Dist.logProb (Cauchy (p.[0], p.[1])) p.[2]
          fun p -> Dist.logProb (HalfCauchy p.[1]) p.[2]
          fun p -> Dist.logProb (StudentT (p.[1] * 3.0, p.[0], p.[1])) p.[2]
          fun p -> Dist.logProb (Laplace (p.[0] + 5.0, p.[1])) p.[2]
          fun p -> Dist.logProb (Logistic (p.[0], p.[1])) p.[2]
          fun p -> Dist.logProb (LogNormal (p.[0], p.[1])) p.[2]
          fun p -> Dist.logProb (Exponential p.[1]) p.[2]
          fun p -> Dist.logProb (Gamma (p.[1] * 2.0, p.[1] + p.[0])) p.[2]
          fun p -> Dist.logProb (InverseGamma (p.[1] * 2.0, p.[1] + p.[0])) p.[2]
          fun p -> Dist.logProb (Beta (p.[1], p.[1] + p.[0])) (p.[2] / 2.0)
          fun p -> Dist.logProb (Uniform (p.[0] - 5.0, p.[1] + 5.0)) p.[2] ]
    for f in cases do
        gradCheck f [| t [| 0.2; -0.4; 0.1 |] |> Tensor.abs; t [| 0.8; 1.3; 0.6 |]; t x |]

let ``discrete families, in parameters`` () =
    let k = t [| 0.0; 3.0; 1.0 |]
    let cases : (Tensor[] -> Tensor) list =
        [ fun p -> Dist.logProb (BernoulliLogits p.[0]) (t [| 0.0; 1.0; 1.0 |])
          fun p -> Dist.logProb (BernoulliProbs (Tensor.sigmoid p.[0])) (t [| 0.0; 1.0; 1.0 |])
          fun p -> Dist.logProb (BinomialLogits (t [| 5.0; 5.0; 5.0 |], p.[0])) k
          fun p -> Dist.logProb (BinomialProbs (t [| 5.0; 5.0; 5.0 |], Tensor.sigmoid p.[0])) k
          fun p -> Dist.logProb (Poisson p.[1]) k
          fun p -> Dist.logProb (NegativeBinomial (p.[1], p.[1] * 2.0 + 0.1)) k
          fun p -> Dist.logProb (ZeroInflatedPoisson (Tensor.sigmoid p.[0], p.[1])) k
          fun p -> Dist.logProb (ZeroInflatedNegativeBinomial (Tensor.sigmoid p.[0], p.[1], p.[1] + 0.5)) k
          fun p -> Dist.logProb (OrderedLogistic (p.[0], t [| -1.0; 0.5; 1.5 |])) k
          fun p -> Dist.logProb (CategoricalLogits (Tensor.reshape [| 1; 3 |] p.[0])) (t [| 2.0 |])
          fun p -> Dist.logProb (CategoricalProbs (Tensor.softmax -1 (Tensor.reshape [| 1; 3 |] p.[0]))) (t [| 2.0 |]) ]
    for f in cases do
        gradCheck f [| t [| 0.2; -0.4; 0.1 |]; t [| 0.8; 1.3; 0.6 |] |]

let ``multivariate families, in parameters and value`` () =
    let l0 = Tensor.create [| 3; 3 |] [| 1.2; 0.0; 0.0; 0.3; 0.9; 0.0; -0.2; 0.4; 1.1 |]
    gradCheck (fun p -> Dist.logProb (MultivariateNormal (p.[0], Tensor.tril p.[1])) p.[2])
        [| t [| 0.1; -0.2; 0.3 |]; l0; Tensor.create [| 2; 3 |] [| 0.5; 0.0; -1.0; 1.0; 1.0; 0.2 |] |]
    gradCheck (fun p -> Dist.logProb (LowRankMultivariateNormal (p.[0], p.[1], p.[2])) p.[3])
        [| t [| 0.1; -0.2; 0.3 |]; Tensor.create [| 3; 2 |] [| 0.5; 0.1; -0.3; 0.7; 0.2; 0.2 |]; t [| 0.5; 0.8; 1.2 |]; t [| 0.4; 0.1; -0.9 |] |]
    gradCheck (fun p -> Dist.logProb (Dirichlet p.[0]) (t [| 0.2; 0.5; 0.3 |])) [| t [| 0.7; 2.0; 1.3 |] |]
    // In the value: a finite difference of one coordinate leaves the simplex (log density -inf, or not, by the
    // rounding of the sum against the support's 1e-6 tolerance), so the reference is the closed form (α_i - 1)/x_i.
    let g = Autodiff.grad (fun x -> Dist.logProb (Dirichlet (t [| 0.7; 2.0; 1.3 |])) x) (t [| 0.2; 0.5; 0.3 |])
    assertClose 1e-12 [| (0.7 - 1.0) / 0.2; (2.0 - 1.0) / 0.5; (1.3 - 1.0) / 0.3 |] (Tensor.toArray g)
    gradCheck (fun p -> Dist.logProb (Mixture (p.[0], [ Normal (p.[1], Tensor.scalar 1.0); Laplace (Tensor.scalar 0.5, Tensor.abs p.[1] + 0.5) ])) (t [| 0.3; -1.0 |]))
        [| t [| 0.2; -0.1 |]; Tensor.scalar 0.4 |]

let ``mixtures of normals, in logits, locations, scales and value`` () =
    // 3 components (element-wise log-sum-exp) and 10 (stacked), on a batch of values
    for k in [ 3; 10 ] do
        let f (p: Tensor[]) = Dist.logProb (Mixture (p.[0], [ for j in 0 .. k - 1 -> Normal (Tensor.select 0 j p.[1], Tensor.select 0 j p.[2]) ])) p.[3]
        let r = System.Random k
        let draw lo hi = t (Array.init k (fun _ -> lo + (hi - lo) * r.NextDouble()))
        gradCheck f [| draw -1.0 1.0; draw -2.0 2.0; draw 0.5 2.0; t [| 0.3; -1.0; 2.0; 0.9 |] |]
    // a weight of 0 (logit −∞): finite gradients, 0 for that logit
    let f (p: Tensor[]) = Dist.logProb (Mixture (p.[0], [ Normal (Tensor.select 0 0 p.[1], Tensor.scalar 1.0); Normal (Tensor.select 0 1 p.[1], Tensor.scalar 2.0) ])) (t [| 0.3; -1.0 |])
    gradCheck f [| t [| System.Double.NegativeInfinity; 0.4 |]; t [| 0.2; -0.5 |] |]

[<Tests>]
let tests =
    testList "GradientTests" [
        testCase "continuous scalar families, in parameters and value" ``continuous scalar families, in parameters and value``
        testCase "discrete families, in parameters" ``discrete families, in parameters``
        testCase "multivariate families, in parameters and value" ``multivariate families, in parameters and value``
        testCase "mixtures of normals, in logits, locations, scales and value" ``mixtures of normals, in logits, locations, scales and value``
    ]
