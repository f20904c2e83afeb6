/// Adaptive, fixed-prior and intercept layers; composition as in BLayers' README; prior moments;
/// samplePrior and describe.
module FunctionalBayes.Tests.LayerLinearTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

type private RefNormal = MathNet.Numerics.Distributions.Normal
type private RefExponential = MathNet.Numerics.Distributions.Exponential

let private s (v: float) = Tensor.scalar v

/// BLayers' README model: intercept + adaptive(x), Gaussian link.
let private regression (x: Tensor) (y: Tensor option) = model {
    let! mu = Layers.adaptive "x" x
    let! b = Layers.intercept "b"
    return! Links.gaussian "y" (mu + b) y
}

let ``log joint of an adaptive regression equals the hand-written sum`` () =
    let x = Tensor.create [| 4; 2 |] [| 1.0; 0.5; -0.3; 2.0; 0.7; -1.1; 0.0; 0.4 |]
    let y = Tensor.ofArray [| 1.0; 2.0; -1.0; 0.5 |]
    let scale, beta, b, sigma = 0.8, [| 0.6; -0.4 |], 0.25, 0.9
    let values =
        Map [ "AdaptiveLayer_x_scale", Tensor.ofArray [| scale |]
              "AdaptiveLayer_x_beta", Tensor.create [| 2; 1 |] beta
              "InterceptLayer_b_beta", Tensor.create [| 1; 1 |] [| b |]
              "y_sigma", s sigma ]
    let lj = LogDensity.logJoint values (regression x (Some y)) |> Tensor.toScalar
    let xv = Tensor.toArray x
    let yv = Tensor.toArray y
    let expected =
        log 2.0 + RefNormal.PDFLn(0.0, 1.0, scale)
        + (beta |> Array.sumBy (fun bj -> RefNormal.PDFLn(0.0, scale, bj)))
        + RefNormal.PDFLn(0.0, 1.0, b)
        + RefExponential.PDFLn(1.0, sigma)
        + (Array.init 4 (fun i -> RefNormal.PDFLn(xv.[2 * i] * beta.[0] + xv.[2 * i + 1] * beta.[1] + b, sigma, yv.[i])) |> Array.sum)
    Assert.Equal(expected, lj, 11)

let ``site names follow BLayers and shapes are (n, units)`` () =
    let x = Tensor.ones [| 5; 3 |]
    let out, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (AdaptiveLayer.Default.Call("x", x, units = 2, activation = Tensor.tanh))))
    Assert.Equal<int[]>([| 5; 2 |], out.Shape)
    Assert.Equal<int[]>([| 2 |], (tr.Value "AdaptiveLayer_x_scale").Shape)
    Assert.Equal<int[]>([| 3; 2 |], (tr.Value "AdaptiveLayer_x_beta").Shape)
    assertTensorClose 1e-15 (Tensor.tanh (Tensor.matmul x (tr.Value "AdaptiveLayer_x_beta"))) out
    // a vector x is one column
    let v, _ = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (Layers.fixedPrior "v" (Tensor.ones [| 5 |]))))
    Assert.Equal<int[]>([| 5; 1 |], v.Shape)
    let i, _ = Model.run (Handlers.trace (Handlers.seed (Rng.key 1UL) (InterceptLayer.Default.Call("b", units = 3))))
    Assert.Equal<int[]>([| 1; 3 |], i.Shape)

let ``prior moments of the adaptive layer: Var(out) = d for x = 1_d`` () =
    // scale ~ HalfNormal(1) so E[scale²] = 1, beta_j | scale ~ N(0, scale²): Var(Σ_j beta_j) = d.
    let d = 4
    let n = 6000
    let draws = ModelInfo.samplePrior (Rng.key 2UL) n (Layers.adaptive "x" (Tensor.ones [| 1; d |]))
    let beta = draws.["AdaptiveLayer_x_beta"] |> Tensor.sumAxes [| 1; 2 |] false |> Tensor.toArray
    let m = Array.average beta
    let v = beta |> Array.averageBy (fun b -> (b - m) ** 2.0)
    let m4 = beta |> Array.averageBy (fun b -> (b - m) ** 4.0)
    Assert.True(abs m < 5.0 * sqrt (float d / float n), sprintf "mean %g" m)
    Assert.True(abs (v - float d) < 5.0 * sqrt ((m4 - v * v) / float n), sprintf "variance %g vs %d" v d)

let ``invalid prior settings fail at construction, naming the layer`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> AdaptiveLayer.Create(Normal (s 0.0, s 1.0), ScaleFamily.Normal 0.0) |> ignore)
    Assert.Contains("AdaptiveLayer", ex.Message)
    Assert.Contains("positive", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> AdaptiveLayer.Create(HalfNormal (s 1.0), ScaleFamily.StudentT (-1.0, 0.0)) |> ignore)
    Assert.Contains("AdaptiveLayer", ex.Message)
    Assert.Contains("df", ex.Message)
    // any family that takes a scale is accepted
    let l = AdaptiveLayer.Create(HalfNormal (s 1.0), ScaleFamily.Laplace 0.0)
    let _, tr = Model.run (Handlers.trace (Handlers.seed (Rng.key 3UL) (l.Call("x", Tensor.ones [| 2; 2 |]))))
    Assert.Contains("Laplace", Dist.name tr.["AdaptiveLayer_x_beta"].Dist.Value)
    let ex = Assert.Throws<ArgumentException>(fun () -> AdaptiveLayer.Default.Call("x", Tensor.ones [| 2; 2; 2 |]) |> ignore)
    Assert.Contains("[2, 2, 2]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> AdaptiveLayer.Default.Call("x", Tensor.ones [| 2; 2 |], units = 0) |> ignore)
    Assert.Contains("units", ex.Message)

let ``a layer reused under the same name is refused`` () =
    let m = model {
        let! a = Layers.adaptive "x" (Tensor.ones [| 2; 2 |])
        let! b = Layers.adaptive "x" (Tensor.ones [| 2; 2 |])
        return a + b
    }
    let ex = Assert.Throws<InvalidOperationException>(fun () -> Model.run (Handlers.trace (Handlers.seed (Rng.key 4UL) m)) |> ignore)
    Assert.Contains("AdaptiveLayer_x_scale", ex.Message)

let ``samplePrior draws every latent and prediction`` () =
    let x = Tensor.ones [| 3; 2 |]
    let draws = ModelInfo.samplePrior (Rng.key 5UL) 7 (regression x None)
    Assert.Equal<string[]>([| "AdaptiveLayer_x_beta"; "AdaptiveLayer_x_scale"; "InterceptLayer_b_beta"; "y"; "y_sigma" |], draws |> Map.keys |> Seq.toArray)
    Assert.Equal<int[]>([| 7; 3 |], draws.["y"].Shape)

let ``describe prints every site with its distribution and shapes`` () =
    let text = ModelInfo.describe (Rng.key 6UL) (regression (Tensor.ones [| 3; 2 |]) (Some (Tensor.zeros [| 3 |])))
    for expected in [ "AdaptiveLayer_x_beta"; "latent"; "Expand(Normal)"; "[2, 1]"; "y_sigma"; "Exponential"; "observed" ] do
        Assert.Contains(expected, text)

[<Tests>]
let tests =
    testList "LayerLinearTests" [
        testCase "log joint of an adaptive regression equals the hand-written sum" ``log joint of an adaptive regression equals the hand-written sum``
        testCase "site names follow BLayers and shapes are (n, units)" ``site names follow BLayers and shapes are (n, units)``
        testCase "prior moments of the adaptive layer: Var(out) = d for x = 1_d" ``prior moments of the adaptive layer: Var(out) = d for x = 1_d``
        testCase "invalid prior settings fail at construction, naming the layer" ``invalid prior settings fail at construction, naming the layer``
        testCase "a layer reused under the same name is refused" ``a layer reused under the same name is refused``
        testCase "samplePrior draws every latent and prediction" ``samplePrior draws every latent and prediction``
        testCase "describe prints every site with its distribution and shapes" ``describe prints every site with its distribution and shapes``
    ]
