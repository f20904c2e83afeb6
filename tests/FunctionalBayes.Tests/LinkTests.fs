/// Links: one log density per row, y as a vector or a column, against MathNet.Numerics or closed forms.
module FunctionalBayes.Tests.LinkTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

// MathNet.Numerics references, renamed apart from our union cases
type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefLogNormal = MathNet.Numerics.Distributions.LogNormal
type private RefStudentT = MathNet.Numerics.Distributions.StudentT
type private RefBernoulli = MathNet.Numerics.Distributions.Bernoulli
type private RefPoisson = MathNet.Numerics.Distributions.Poisson
type private RefNegativeBinomial = MathNet.Numerics.Distributions.NegativeBinomial
type private RefBeta = MathNet.Numerics.Distributions.Beta
type private RefGamma = MathNet.Numerics.Distributions.Gamma
type private RefExponential = MathNet.Numerics.Distributions.Exponential
type private RefCategorical = MathNet.Numerics.Distributions.Categorical

let private s (v: float) = Tensor.scalar v

/// The per-row log densities of the observed site "y", with the link's other sites substituted.
let private rowLogProbs (link: string -> Tensor -> Tensor option -> Model<Tensor>) (values: Map<string, Tensor>) (yHat: Tensor) (y: Tensor) =
    let _, tr = Model.run (Handlers.trace (Handlers.substitute values (link "y" yHat (Some y))))
    let site = tr.["y"]
    Assert.True(site.IsObserved)
    Site.logDensity site

/// For n = 1 and n = 4, ŷ as a column, y as a vector and as a column: per-row densities match.
let private check (link: string -> Tensor -> Tensor option -> Model<Tensor>) (values: Map<string, Tensor>) (ys: float[]) (reference: float -> float -> float) =
    for n in [ 1; 4 ] do
        let mu = Array.init n (fun i -> if n = 1 then 0.2 else 0.2 + 0.6 * float i / float (n - 1))
        let y = ys.[.. n - 1]
        let yHat = Tensor.create [| n; 1 |] mu
        let expected = Array.map2 reference mu y
        for yT in [ Tensor.ofArray y; Tensor.create [| n; 1 |] y ] do
            let lp = rowLogProbs link values yHat yT
            Assert.Equal<int[]>([| n |], lp.Shape)
            assertClose 1e-10 expected (Tensor.toArray lp)

let private ysReal = [| 0.3; -1.2; 0.9; 2.0 |]
let private ysPos = [| 0.3; 1.2; 0.9; 2.0 |]
let private ysCount = [| 0.0; 3.0; 1.0; 7.0 |]

let ``gaussian: sampled, fixed and untransformed scale`` () =
    check Links.gaussian (Map [ "y_sigma", s 0.7 ]) ysReal (fun m y -> RefNormal.PDFLn(m, 0.7, y))
    check (Links.gaussianWith (LinkScale.Fixed (s 0.5))) Map.empty ysReal (fun m y -> RefNormal.PDFLn(m, 0.5, y))
    check (Links.gaussianWith (LinkScale.Untransformed (s 0.3))) Map.empty ysReal (fun m y -> RefNormal.PDFLn(m, log (1.0 + exp 0.3), y))
    // a swapped sigma prior is used for the sigma site
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (Links.gaussianWith (LinkScale.Sampled (HalfNormal (s 1.0))) "y" (Tensor.zeros [| 3 |]) None)))
    Assert.Equal("HalfNormal", Dist.name tr.["y_sigma"].Dist.Value)
    // fixed scale: no sigma site
    let _, tr2 = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (Links.gaussianWith (LinkScale.Fixed (s 0.5)) "y" (Tensor.zeros [| 3 |]) None)))
    Assert.True((Trace.tryFind "y_sigma" tr2).IsNone)

let ``lognormal and student-t`` () =
    check Links.lognormal (Map [ "y_sigma", s 0.7 ]) ysPos (fun m y -> RefLogNormal.PDFLn(m, 0.7, y))
    check Links.studentT (Map [ "y_sigma", s 0.7 ]) ysReal (fun m y -> RefStudentT.PDFLn(m, 0.7, 4.0, y))
    check (Links.studentTWith 1.0 (LinkScale.Fixed (s 2.0))) Map.empty ysReal (fun m y -> RefStudentT.PDFLn(m, 2.0, 1.0, y))

let ``logit and poisson`` () =
    check Links.logit Map.empty [| 1.0; 0.0; 1.0; 1.0 |] (fun m y -> RefBernoulli.PMFLn(1.0 / (1.0 + exp -m), int y))
    check Links.poisson Map.empty ysCount (fun m y -> RefPoisson.PMFLn(exp m, int y))

let ``negative binomial with the identity mean`` () =
    check Links.negativeBinomial (Map [ "y_concentration", s 2.5 ]) ysCount (fun m y -> RefNegativeBinomial.PMFLn(2.5, 2.5 / (2.5 + m), int y))

let ``ordinal is an ordered logistic`` () =
    let cdf c m = 1.0 / (1.0 + exp (-(c - m)))
    let cuts = [| -0.5; 0.3; 1.1 |]
    let reference m y =
        let k = int y
        let hi = if k = 3 then 1.0 else cdf cuts.[k] m
        let lo = if k = 0 then 0.0 else cdf cuts.[k - 1] m
        log (hi - lo)
    check (Links.ordinal 4) (Map [ "y_c0", s -0.5; "y_gaps", Tensor.ofArray [| 0.8; 0.8 |] ]) [| 0.0; 3.0; 1.0; 2.0 |] reference
    // two classes: one cutpoint, no gaps site
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 2UL) (Links.ordinal 2 "y" (Tensor.zeros [| 5 |]) None)))
    Assert.True((Trace.tryFind "y_gaps" tr).IsNone)
    Assert.All(Tensor.toArray (tr.Value "y"), fun v -> Assert.True(v = 0.0 || v = 1.0))

let ``zero-inflated poisson and negative binomial`` () =
    let g = 0.3
    check Links.zeroInflatedPoisson (Map [ "y_gate", s g ]) ysCount (fun m y ->
        if y = 0.0 then log (g + (1.0 - g) * exp (-(exp m))) else log (1.0 - g) + RefPoisson.PMFLn(exp m, int y))
    let phi = 1.7
    let nb m y = RefNegativeBinomial.PMFLn(phi, phi / (phi + exp m), y)
    check Links.zeroInflatedNegativeBinomial (Map [ "y_gate", s g; "y_concentration", s phi ]) ysCount (fun m y ->
        if y = 0.0 then log (g + (1.0 - g) * exp (nb m 0)) else log (1.0 - g) + nb m (int y))

let ``beta, gamma and exponential`` () =
    check Links.beta (Map [ "y_phi", s 6.0 ]) [| 0.3; 0.8; 0.45; 0.1 |] (fun m y ->
        let p = 1.0 / (1.0 + exp -m)
        RefBeta.PDFLn(p * 6.0, (1.0 - p) * 6.0, y))
    check Links.gamma (Map [ "y_shape", s 2.2 ]) ysPos (fun m y -> RefGamma.PDFLn(2.2, 2.2 / exp m, y))
    check Links.exponential Map.empty ysPos (fun m y -> RefExponential.PDFLn(exp -m, y))

let ``categorical takes logits (n, K)`` () =
    let logits = Tensor.create [| 2; 3 |] [| 0.1; 0.5; -0.3; 1.0; 0.0; 0.2 |]
    let probs row = let e = Array.init 3 (fun j -> exp (Tensor.toArray logits).[row * 3 + j]) in e |> Array.map (fun v -> v / Array.sum e)
    for y in [ Tensor.ofArray [| 2.0; 0.0 |]; Tensor.create [| 2; 1 |] [| 2.0; 0.0 |] ] do
        let lp = rowLogProbs Links.categorical Map.empty logits y |> Tensor.toArray
        assertClose 1e-12 [| RefCategorical.PMFLn(probs 0, 2); RefCategorical.PMFLn(probs 1, 0) |] lp

let ``an incompatible y names both shapes`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Model.run (Handlers.seed (Rng.key 3UL) (Links.gaussian "y" (Tensor.zeros [| 4; 1 |]) (Some (Tensor.zeros [| 3 |])))) |> ignore)
    Assert.Contains("[3]", ex.Message)
    Assert.Contains("[4, 1]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Model.run (Handlers.seed (Rng.key 3UL) (Links.categorical "y" (Tensor.zeros [| 4; 3 |]) (Some (Tensor.zeros [| 4; 3 |])))) |> ignore)
    Assert.Contains("[4, 3]", ex.Message)

let ``without y the link samples one value per row`` () =
    let y, _ = Model.run (Handlers.trace (Handlers.seed (Rng.key 4UL) (Links.poisson "y" (Tensor.zeros [| 5; 1 |]) None)))
    Assert.Equal<int[]>([| 5 |], y.Shape)

[<Tests>]
let tests =
    testList "LinkTests" [
        testCase "gaussian: sampled, fixed and untransformed scale" ``gaussian: sampled, fixed and untransformed scale``
        testCase "lognormal and student-t" ``lognormal and student-t``
        testCase "logit and poisson" ``logit and poisson``
        testCase "negative binomial with the identity mean" ``negative binomial with the identity mean``
        testCase "ordinal is an ordered logistic" ``ordinal is an ordered logistic``
        testCase "zero-inflated poisson and negative binomial" ``zero-inflated poisson and negative binomial``
        testCase "beta, gamma and exponential" ``beta, gamma and exponential``
        testCase "categorical takes logits (n, K)" ``categorical takes logits (n, K)``
        testCase "an incompatible y names both shapes" ``an incompatible y names both shapes``
        testCase "without y the link samples one value per row" ``without y the link samples one value per row``
    ]
