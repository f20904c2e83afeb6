/// Every distribution's log-density against MathNet.Numerics or a closed form, at random parameters
/// and values drawn by FsCheck.
module FunctionalBayes.Tests.LogProbTests

open System
open FsCheck
open FsCheck.FSharp
open Expecto
open FunctionalBayes.TestAssertions
open MathNet.Numerics
open MathNet.Numerics.LinearAlgebra
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil
// MathNet.Numerics references, renamed apart from our union cases
type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefCauchy = MathNet.Numerics.Distributions.Cauchy
type private RefStudentT = MathNet.Numerics.Distributions.StudentT
type private RefLaplace = MathNet.Numerics.Distributions.Laplace
type private RefLogNormal = MathNet.Numerics.Distributions.LogNormal
type private RefExponential = MathNet.Numerics.Distributions.Exponential
type private RefGamma = MathNet.Numerics.Distributions.Gamma
type private RefInverseGamma = MathNet.Numerics.Distributions.InverseGamma
type private RefBeta = MathNet.Numerics.Distributions.Beta
type private RefContinuousUniform = MathNet.Numerics.Distributions.ContinuousUniform
type private RefBernoulli = MathNet.Numerics.Distributions.Bernoulli
type private RefBinomial = MathNet.Numerics.Distributions.Binomial
type private RefCategorical = MathNet.Numerics.Distributions.Categorical
type private RefPoisson = MathNet.Numerics.Distributions.Poisson
type private RefNegativeBinomial = MathNet.Numerics.Distributions.NegativeBinomial
type private RefDirichlet = MathNet.Numerics.Distributions.Dirichlet

let private n = 6
/// n uniform values in [lo, hi] from a seeded generator.
let private u (r: Random) lo hi = Array.init n (fun _ -> lo + (hi - lo) * r.NextDouble())
let private ints (r: Random) lo hi = Array.init n (fun _ -> float (r.Next(lo, hi + 1)))
let private t (a: float[]) = Tensor.ofArray a

/// A property: for each random seed, the log-density of n values equals the reference, elementwise.
let private agree (tol: float) (case: Random -> Distribution * float[] * float[]) =
    Prop.forAll (Arb.fromGen (Gen.choose (0, 1_000_000))) (fun seed ->
        let d, x, expected = case (Random seed)
        assertClose tol expected (Tensor.toArray (Dist.logProb d (t x))))
    |> check 30

let ``Normal`` () =
    agree 1e-12 (fun r ->
        let m, s, x = u r -3.0 3.0, u r 0.1 3.0, u r -5.0 5.0
        Dist.normal (t m) (t s), x, Array.init n (fun i -> RefNormal.PDFLn(m.[i], s.[i], x.[i])))

let ``HalfNormal`` () =
    agree 1e-12 (fun r ->
        let s, x = u r 0.1 3.0, u r 0.0 5.0
        Dist.halfNormal (t s), x, Array.init n (fun i -> log 2.0 + RefNormal.PDFLn(0.0, s.[i], x.[i])))

let ``Cauchy`` () =
    agree 1e-12 (fun r ->
        let m, s, x = u r -3.0 3.0, u r 0.1 3.0, u r -9.0 9.0
        Dist.cauchy (t m) (t s), x, Array.init n (fun i -> RefCauchy.PDFLn(m.[i], s.[i], x.[i])))

let ``HalfCauchy`` () =
    agree 1e-12 (fun r ->
        let s, x = u r 0.1 3.0, u r 0.0 9.0
        Dist.halfCauchy (t s), x, Array.init n (fun i -> log 2.0 + RefCauchy.PDFLn(0.0, s.[i], x.[i])))

let ``StudentT`` () =
    agree 1e-11 (fun r ->
        let df, m, s, x = u r 0.5 30.0, u r -3.0 3.0, u r 0.1 3.0, u r -9.0 9.0
        Dist.studentT (t df) (t m) (t s), x, Array.init n (fun i -> RefStudentT.PDFLn(m.[i], s.[i], df.[i], x.[i])))

let ``StudentT at large df: MathNet where it is accurate, the normal limit beyond, and the df gradient`` () =
    let lp (df: float) (x: float) = Dist.logProb (Dist.studentT (Tensor.scalar df) (Tensor.scalar 0.3) (Tensor.scalar 1.7)) (Tensor.scalar x) |> Tensor.toScalar
    for df in [ 60.0; 99.0; 100.0; 101.0; 300.0; 2000.0 ] do
        for x in [ -4.0; 0.3; 1.0; 7.0 ] do
            assertClose 1e-11 [| RefStudentT.PDFLn(0.3, 1.7, df, x) |] [| lp df x |]
    // log t − log N = ((z⁴ − 2z²) − 1)/(4ν)·… is below (z⁴ + 2z² + 1)/(2ν); MathNet's own lgamma difference
    // loses 1e-5 at ν = 1e10, as this code did
    for df in [ 1e8; 1e10; 1e14; 1e300 ] do
        for x in [ -4.0; 0.3; 1.0; 7.0 ] do
            let z = (x - 0.3) / 1.7
            let bound = (z ** 4.0 + 2.0 * z * z + 1.0) / (2.0 * df) + 1e-13
            let d = lp df x - RefNormal.PDFLn(0.3, 1.7, x)
            Assert.True(abs d <= bound, sprintf "ν = %g, x = %g: log t − log N = %g, bound %g" df x d bound)
    // ∂/∂ν log p = ½(ψ((ν+1)/2) − ψ(ν/2)) − 1/(2ν) − ½ log1p(z²/ν) + (ν+1)z²/(2ν²(1 + z²/ν)), both branches
    for df in [ 60.0; 150.0; 1e6 ] do
        let x, z = 1.0, (1.0 - 0.3) / 1.7
        let g = Autodiff.gradN (fun ps -> Dist.logProb (Dist.studentT ps.[0] (Tensor.scalar 0.3) (Tensor.scalar 1.7)) (Tensor.scalar x)) [| Tensor.scalar df |]
        let expected =
            0.5 * (SpecialFunctions.DiGamma((df + 1.0) / 2.0) - SpecialFunctions.DiGamma(df / 2.0)) - 0.5 / df
            - 0.5 * Math.Log(1.0 + z * z / df) + (df + 1.0) * z * z / (2.0 * df * df * (1.0 + z * z / df))
        assertClose 1e-9 [| expected |] [| Tensor.toScalar g.[0] |]

let ``Laplace`` () =
    agree 1e-12 (fun r ->
        let m, s, x = u r -3.0 3.0, u r 0.1 3.0, u r -9.0 9.0
        Dist.laplace (t m) (t s), x, Array.init n (fun i -> RefLaplace.PDFLn(m.[i], s.[i], x.[i])))

let ``Logistic`` () =
    agree 1e-12 (fun r ->
        let m, s, x = u r -3.0 3.0, u r 0.1 3.0, u r -9.0 9.0
        // pdf = e^{-z} / (s (1 + e^{-z})²)
        Dist.logistic (t m) (t s), x,
        Array.init n (fun i -> let z = (x.[i] - m.[i]) / s.[i] in -z - log s.[i] - 2.0 * log (1.0 + exp -z)))

let ``LogNormal`` () =
    agree 1e-12 (fun r ->
        let m, s, x = u r -1.0 1.0, u r 0.1 2.0, u r 0.01 9.0
        Dist.logNormal (t m) (t s), x, Array.init n (fun i -> RefLogNormal.PDFLn(m.[i], s.[i], x.[i])))

let ``Exponential`` () =
    agree 1e-12 (fun r ->
        let l, x = u r 0.1 5.0, u r 0.0 5.0
        Dist.exponential (t l) , x, Array.init n (fun i -> RefExponential.PDFLn(l.[i], x.[i])))

let ``Gamma`` () =
    agree 1e-11 (fun r ->
        let a, b, x = u r 0.2 10.0, u r 0.1 5.0, u r 0.01 9.0
        Dist.gamma (t a) (t b), x, Array.init n (fun i -> RefGamma.PDFLn(a.[i], b.[i], x.[i])))

let ``InverseGamma`` () =
    agree 1e-11 (fun r ->
        let a, b, x = u r 0.2 10.0, u r 0.1 5.0, u r 0.05 9.0
        Dist.inverseGamma (t a) (t b), x, Array.init n (fun i -> RefInverseGamma.PDFLn(a.[i], b.[i], x.[i])))

let ``Beta`` () =
    agree 1e-11 (fun r ->
        let a, b, x = u r 0.2 10.0, u r 0.2 10.0, u r 0.01 0.99
        Dist.beta (t a) (t b), x, Array.init n (fun i -> RefBeta.PDFLn(a.[i], b.[i], x.[i])))

let ``Uniform`` () =
    agree 1e-12 (fun r ->
        let lo = u r -3.0 0.0
        let hi = lo |> Array.map (fun l -> l + 0.5 + r.NextDouble() * 3.0)
        let x = Array.init n (fun i -> lo.[i] + (hi.[i] - lo.[i]) * r.NextDouble())
        Dist.uniform (t lo) (t hi), x, Array.init n (fun i -> RefContinuousUniform.PDFLn(lo.[i], hi.[i], x.[i])))

let ``Bernoulli, logits and probs`` () =
    checkNow <| agree 1e-12 (fun r ->
        let p, x = u r 0.01 0.99, ints r 0 1
        Dist.bernoulliProbs (t p), x, Array.init n (fun i -> RefBernoulli.PMFLn(p.[i], int x.[i])))
    agree 1e-12 (fun r ->
        let p, x = u r 0.01 0.99, ints r 0 1
        Dist.bernoulliLogits (t (p |> Array.map (fun p -> log (p / (1.0 - p))))), x, Array.init n (fun i -> RefBernoulli.PMFLn(p.[i], int x.[i])))

let ``Binomial, logits and probs`` () =
    checkNow <| agree 1e-11 (fun r ->
        let p, nn = u r 0.01 0.99, ints r 1 30
        let x = nn |> Array.map (fun m -> float (r.Next(0, int m + 1)))
        Dist.binomialProbs (t nn) (t p), x, Array.init n (fun i -> RefBinomial.PMFLn(p.[i], int nn.[i], int x.[i])))
    agree 1e-11 (fun r ->
        let p, nn = u r 0.01 0.99, ints r 1 30
        let x = nn |> Array.map (fun m -> float (r.Next(0, int m + 1)))
        Dist.binomialLogits (t nn) (t (p |> Array.map (fun p -> log (p / (1.0 - p))))), x, Array.init n (fun i -> RefBinomial.PMFLn(p.[i], int nn.[i], int x.[i])))

let ``Categorical, logits and probs`` () =
    checkNow <| agree 1e-12 (fun r ->
        let k = 4
        let logits = Array.init (n * k) (fun _ -> r.NextDouble() * 4.0 - 2.0)
        let probs = Array.init n (fun i -> let e = Array.init k (fun j -> exp logits.[i * k + j]) in e |> Array.map (fun v -> v / Array.sum e))
        let x = ints r 0 (k - 1)
        Dist.categoricalLogits (Tensor.create [| n; k |] logits), x,
        Array.init n (fun i -> RefCategorical.PMFLn(probs.[i], int x.[i])))
    agree 1e-12 (fun r ->
        let k = 3
        let probs = Array.init n (fun _ -> let e = Array.init k (fun _ -> 0.1 + r.NextDouble()) in e |> Array.map (fun v -> v / Array.sum e))
        let x = ints r 0 (k - 1)
        Dist.categoricalProbs (Tensor.create [| n; k |] (Array.concat probs)), x,
        Array.init n (fun i -> RefCategorical.PMFLn(probs.[i], int x.[i])))

let ``Poisson`` () =
    agree 1e-11 (fun r ->
        let l, x = u r 0.1 20.0, ints r 0 30
        Dist.poisson (t l), x, Array.init n (fun i -> RefPoisson.PMFLn(l.[i], int x.[i])))

let private nb2 (mu: float) (phi: float) (k: int) = RefNegativeBinomial.PMFLn(phi, phi / (phi + mu), k)

let ``NegativeBinomial (mean, concentration)`` () =
    agree 1e-10 (fun r ->
        let mu, phi, x = u r 0.1 20.0, u r 0.2 10.0, ints r 0 30
        Dist.negativeBinomial (t mu) (t phi), x, Array.init n (fun i -> nb2 mu.[i] phi.[i] (int x.[i])))

let ``ZeroInflatedPoisson`` () =
    agree 1e-11 (fun r ->
        let g, l, x = u r 0.0 0.9, u r 0.1 10.0, ints r 0 5
        Dist.zeroInflatedPoisson (t g) (t l), x,
        Array.init n (fun i ->
            if x.[i] = 0.0 then log (g.[i] + (1.0 - g.[i]) * RefPoisson.PMF(l.[i], 0))
            else log (1.0 - g.[i]) + RefPoisson.PMFLn(l.[i], int x.[i])))

let ``ZeroInflatedNegativeBinomial`` () =
    agree 1e-10 (fun r ->
        let g, mu, phi, x = u r 0.0 0.9, u r 0.1 10.0, u r 0.3 5.0, ints r 0 5
        Dist.zeroInflatedNegativeBinomial (t g) (t mu) (t phi), x,
        Array.init n (fun i ->
            if x.[i] = 0.0 then log (g.[i] + (1.0 - g.[i]) * exp (nb2 mu.[i] phi.[i] 0))
            else log (1.0 - g.[i]) + nb2 mu.[i] phi.[i] (int x.[i])))

let ``OrderedLogistic`` () =
    agree 1e-12 (fun r ->
        let eta = u r -2.0 2.0
        let cuts = [| -1.5; -0.2; 0.4; 1.7 |]
        let x = ints r 0 4
        let cdf (c: float) (e: float) = 1.0 / (1.0 + exp (-(c - e)))
        Dist.orderedLogistic (t eta) (t cuts), x,
        Array.init n (fun i ->
            let k = int x.[i]
            let hi = if k = 4 then 1.0 else cdf cuts.[k] eta.[i]
            let lo = if k = 0 then 0.0 else cdf cuts.[k - 1] eta.[i]
            log (hi - lo)))

let ``Dirichlet`` () =
    Prop.forAll (Arb.fromGen (Gen.choose (0, 1_000_000))) (fun seed ->
        let r = Random seed
        let a = Array.init 4 (fun _ -> 0.3 + 3.0 * r.NextDouble())
        let x = let e = Array.init 4 (fun _ -> 0.05 + r.NextDouble()) in e |> Array.map (fun v -> v / Array.sum e)
        let expected = RefDirichlet(a).DensityLn(x)
        assertClose 1e-11 [| expected |] (Tensor.toArray (Dist.logProb (Dist.dirichlet (t a)) (t x))))
    |> check 30

/// log N(x | μ, Σ) by MathNet's dense linear algebra.
let private mvnRef (mu: float[]) (cov: Matrix<float>) (x: float[]) =
    let d = Vector<float>.Build.DenseOfArray x - Vector<float>.Build.DenseOfArray mu
    -0.5 * (d * cov.Inverse() * d) - 0.5 * log (cov.Determinant()) - 0.5 * float mu.Length * log (2.0 * Math.PI)

let ``MultivariateNormal`` () =
    Prop.forAll (Arb.fromGen (Gen.choose (0, 1_000_000))) (fun seed ->
        let r = Random seed
        let k = 3
        let a = Matrix<float>.Build.Dense(k, k, fun _ _ -> r.NextDouble() - 0.5)
        let cov = a * a.Transpose() + Matrix<float>.Build.DenseIdentity(k) * 0.5
        let mu = Array.init k (fun _ -> r.NextDouble() * 2.0 - 1.0)
        let xs = Array.init 2 (fun _ -> Array.init k (fun _ -> r.NextDouble() * 4.0 - 2.0))
        let d = Dist.multivariateNormalCov (t mu) (Tensor.ofArray2D (cov.ToArray()))
        let got = Dist.logProb d (Tensor.create [| 2; k |] (Array.concat xs)) |> Tensor.toArray
        assertClose 1e-11 (xs |> Array.map (mvnRef mu cov)) got)
    |> check 30

let ``LowRankMultivariateNormal`` () =
    Prop.forAll (Arb.fromGen (Gen.choose (0, 1_000_000))) (fun seed ->
        let r = Random seed
        let k, rank = 4, 2
        let w = Array.init (k * rank) (fun _ -> r.NextDouble() - 0.5)
        let dg = Array.init k (fun _ -> 0.2 + r.NextDouble())
        let wm = Matrix<float>.Build.DenseOfRowMajor(k, rank, w)
        let cov = wm * wm.Transpose() + Matrix<float>.Build.DenseOfDiagonalArray dg
        let mu = Array.init k (fun _ -> r.NextDouble())
        let x = Array.init k (fun _ -> r.NextDouble() * 3.0 - 1.5)
        let d = Dist.lowRankMultivariateNormal (t mu) (Tensor.create [| k; rank |] w) (t dg)
        assertClose 1e-11 [| mvnRef mu cov x |] (Tensor.toArray (Dist.logProb d (t x))))
    |> check 30

let ``Delta, Mixture and the wrappers`` () =
    let v = t [| 1.0; 2.0 |]
    let dd = Dist.delta v
    assertClose 0.0 [| 0.0; Double.NegativeInfinity |] (Tensor.toArray (Dist.logProb dd (t [| 1.0; 2.5 |])))
    checkNow <| agree 1e-12 (fun r ->
        let w = u r -1.0 1.0 |> Array.take 2
        let x = u r -4.0 4.0
        let p = let e = w |> Array.map exp in e |> Array.map (fun v -> v / Array.sum e)
        Dist.mixture (t w) [ Dist.normal (Tensor.scalar 0.5) (Tensor.scalar 1.2); Dist.laplace (Tensor.scalar -1.0) (Tensor.scalar 0.7) ], x,
        x |> Array.map (fun xi -> log (p.[0] * RefNormal.PDF(0.5, 1.2, xi) + p.[1] * RefLaplace.PDF(-1.0, 0.7, xi))))
    // Independent sums the reinterpreted axes; Expand broadcasts; Masked zeroes
    let bd = Dist.normal (t [| 0.0; 1.0 |]) (t [| 1.0; 2.0 |])
    let x = t [| 0.3; -0.4 |]
    let each = Dist.logProb bd x |> Tensor.toArray
    Assert.Equal(Array.sum each, Dist.logProb (Dist.toEvent 1 bd) x |> Tensor.toScalar, 14)
    Assert.Equal<int[]>([| 3; 2 |], (Dist.logProb (Dist.expand [| 3; 2 |] bd) x).Shape)
    assertClose 0.0 [| each.[0]; 0.0 |] (Tensor.toArray (Dist.logProb (Dist.mask (Tensor.ofBools [| true; false |]) bd) x))

/// log Σ exp of the terms on the host, shifted by their max; −∞ where every term is −∞.
let private hostLogSumExp (terms: float[]) =
    let m = Array.max terms
    if Double.IsNegativeInfinity m then m else m + log (terms |> Array.sumBy (fun v -> exp (v - m)))

/// A mixture of normals' log density at x on the host: MathNet's log densities plus the log weights.
let private normalMixtureRef (logits: float[]) (locs: float[]) (scales: float[]) (x: float) =
    let lse = hostLogSumExp logits
    hostLogSumExp (Array.init logits.Length (fun k -> logits.[k] - lse + RefNormal.PDFLn(locs.[k], scales.[k], x)))

let private normalMixture (logits: float[]) (locs: float[]) (scales: float[]) =
    Dist.mixture (t logits) [ for k in 0 .. logits.Length - 1 -> Dist.normal (Tensor.scalar locs.[k]) (Tensor.scalar scales.[k]) ]

let ``Mixture of normals against MathNet: 2 to 10 components, a spike, far points, a weight of 0`` () =
    // up to 8 components the log-sum-exp runs element-wise over the components, above that over a stacked axis
    checkNow (
        Prop.forAll (Arb.fromGen (Gen.zip (Gen.choose (2, 10)) (Gen.choose (0, 1_000_000)))) (fun (k, seed) ->
            let r = Random seed
            let logits = Array.init k (fun _ -> -2.0 + 4.0 * r.NextDouble())
            let locs = Array.init k (fun _ -> -3.0 + 6.0 * r.NextDouble())
            let scales = Array.init k (fun _ -> 0.1 + 3.0 * r.NextDouble())
            let x = u r -6.0 6.0
            assertClose 1e-12 (x |> Array.map (normalMixtureRef logits locs scales)) (Tensor.toArray (Dist.logProb (normalMixture logits locs scales) (t x))))
        |> check 40)
    let extreme (logits: float[]) (locs: float[]) (scales: float[]) (x: float[]) =
        let got = Tensor.toArray (Dist.logProb (normalMixture logits locs scales) (t x))
        assertClose 1e-12 (x |> Array.map (normalMixtureRef logits locs scales)) got
    // a spike (scale 1e-8) beside a broad component: at the spike, next to it, and 1e6 away from both
    extreme [| 0.3; -0.2 |] [| 1.0; 0.0 |] [| 1e-8; 2.0 |] [| 1.0; 1.0 + 3e-8; 0.5; 1e6; -1e6 |]
    extreme [| 0.3; -0.2; 1.0 |] [| 1.0; 0.0; -1e6 |] [| 1e-8; 2.0; 1e-8 |] [| 1.0; -1e6; 1e6 |]
    // a component of weight 0 (logit −∞) adds nothing
    let ninf = Double.NegativeInfinity
    extreme [| ninf; 0.0 |] [| 0.0; 5.0 |] [| 1.0; 1.0 |] [| 0.0; 5.0; 1e6 |]
    // outside every component's support: −∞, not NaN
    let exps = Dist.mixture (t [| 0.0; 0.0 |]) [ Dist.exponential (Tensor.scalar 1.0); Dist.exponential (Tensor.scalar 2.0) ]
    assertClose 1e-15 [| ninf; log (0.5 * exp -1.0 + 0.5 * 2.0 * exp -2.0) |] (Tensor.toArray (Dist.logProb exps (t [| -1.0; 1.0 |])))

let ``values outside the support have log-density -inf`` () =
    let ninf = Double.NegativeInfinity
    let at d v = Dist.logProb d (Tensor.scalar v) |> Tensor.toScalar
    let one = Tensor.scalar 1.0
    Assert.Equal(ninf, at (Dist.halfNormal one) -0.1)
    Assert.Equal(ninf, at (Dist.exponential one) -0.1)
    Assert.Equal(ninf, at (Dist.gamma one one) -0.1)
    Assert.Equal(ninf, at (Dist.beta one one) 1.5)
    Assert.Equal(ninf, at (Dist.logNormal one one) 0.0)
    Assert.Equal(ninf, at (Dist.uniform (Tensor.scalar 0.0) one) 2.0)

let ``float32 parameters give float32 log-densities`` () =
    let d = Dist.normal (Tensor.scalarF32 0.5f) (Tensor.scalarF32 2.0f)
    let lp = Dist.logProb d (Tensor.ofArrayF32 [| 1.0f |])
    Assert.Equal(Float32, lp.Dtype)
    Assert.Equal(RefNormal.PDFLn(0.5, 2.0, 1.0), float (Tensor.toArrayF32 lp).[0], 5)

let ``Expand gives one log density per expanded element, with or without sample axes`` () =
    // base batch [1] expanded to [2, 1]: a value of shape [2, 1] has two densities, not four
    let d = Dist.expand [| 2; 1 |] (Dist.normal (Tensor.scalar 0.0) (Tensor.ofArray [| 0.8 |]))
    let x = Tensor.create [| 2; 1 |] [| 0.6; -0.4 |]
    let lp = Dist.logProb d x
    Assert.Equal<int[]>([| 2; 1 |], lp.Shape)
    assertClose 1e-14 [| RefNormal.PDFLn(0.0, 0.8, 0.6); RefNormal.PDFLn(0.0, 0.8, -0.4) |] (Tensor.toArray lp)
    let xs = Tensor.create [| 3; 2; 1 |] (Array.init 6 (fun i -> 0.1 * float i))
    Assert.Equal<int[]>([| 3; 2; 1 |], (Dist.logProb d xs).Shape)

[<Tests>]
let tests =
    testList "LogProbTests" [
        propertyCase "Normal" ``Normal``
        propertyCase "HalfNormal" ``HalfNormal``
        propertyCase "Cauchy" ``Cauchy``
        propertyCase "HalfCauchy" ``HalfCauchy``
        propertyCase "StudentT" ``StudentT``
        testCase "StudentT at large df: MathNet where it is accurate, the normal limit beyond, and the df gradient" ``StudentT at large df: MathNet where it is accurate, the normal limit beyond, and the df gradient``
        propertyCase "Laplace" ``Laplace``
        propertyCase "Logistic" ``Logistic``
        propertyCase "LogNormal" ``LogNormal``
        propertyCase "Exponential" ``Exponential``
        propertyCase "Gamma" ``Gamma``
        propertyCase "InverseGamma" ``InverseGamma``
        propertyCase "Beta" ``Beta``
        propertyCase "Uniform" ``Uniform``
        propertyCase "Bernoulli, logits and probs" ``Bernoulli, logits and probs``
        propertyCase "Binomial, logits and probs" ``Binomial, logits and probs``
        propertyCase "Categorical, logits and probs" ``Categorical, logits and probs``
        propertyCase "Poisson" ``Poisson``
        propertyCase "NegativeBinomial (mean, concentration)" ``NegativeBinomial (mean, concentration)``
        propertyCase "ZeroInflatedPoisson" ``ZeroInflatedPoisson``
        propertyCase "ZeroInflatedNegativeBinomial" ``ZeroInflatedNegativeBinomial``
        propertyCase "OrderedLogistic" ``OrderedLogistic``
        propertyCase "Dirichlet" ``Dirichlet``
        propertyCase "MultivariateNormal" ``MultivariateNormal``
        propertyCase "LowRankMultivariateNormal" ``LowRankMultivariateNormal``
        testCase "Delta, Mixture and the wrappers" ``Delta, Mixture and the wrappers``
        testCase "Mixture of normals against MathNet: 2 to 10 components, a spike, far points, a weight of 0" ``Mixture of normals against MathNet: 2 to 10 components, a spike, far points, a weight of 0``
        testCase "values outside the support have log-density -inf" ``values outside the support have log-density -inf``
        testCase "float32 parameters give float32 log-densities" ``float32 parameters give float32 log-densities``
        testCase "Expand gives one log density per expanded element, with or without sample axes" ``Expand gives one log density per expanded element, with or without sample axes``
    ]
