/// Every primitive op's vector-Jacobian product against central finite differences, on random shapes.
module FunctionalBayes.Tensors.Tests.GradientTests

open System
open FsCheck
open FsCheck.FSharp
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// A property over a random shape and seed: values uniform in [lo, hi].
let private unaryProp (lo: float) (hi: float) (f: Tensor -> Tensor) =
    Prop.forAll (Arb.fromGen (Gen.zip genShape (Gen.choose (0, 1_000_000)))) (fun (shape, seed) ->
        gradCheck (fun xs -> f xs.[0]) [| randomTensor seed shape lo hi |])
    |> check 25

let ``neg`` () = unaryProp -2.0 2.0 Tensor.neg
let ``exp`` () = unaryProp -2.0 2.0 Tensor.exp
let ``log`` () = unaryProp 0.2 3.0 Tensor.log
let ``log1p`` () = unaryProp -0.5 3.0 Tensor.log1p
let ``expm1`` () = unaryProp -2.0 2.0 Tensor.expm1
let ``sqrt`` () = unaryProp 0.2 3.0 Tensor.sqrt
let ``abs away from zero`` () = unaryProp 0.1 2.0 (fun x -> Tensor.abs (x * Tensor.sign (x - 1.0)))
let ``sign has zero gradient`` () = unaryProp 0.1 2.0 (fun x -> Tensor.sign (x - 1.05) * 3.0)
let ``tanh`` () = unaryProp -2.0 2.0 Tensor.tanh
let ``sigmoid`` () = unaryProp -4.0 4.0 Tensor.sigmoid
let ``softplus`` () = unaryProp -4.0 4.0 Tensor.softplus
let ``logSigmoid`` () = unaryProp -4.0 4.0 Tensor.logSigmoid
let ``relu away from zero`` () = unaryProp 0.05 2.0 (fun x -> Tensor.relu (x - 1.0) + Tensor.relu (x * 0.0 + 0.5))
let ``lgamma`` () = unaryProp 0.3 6.0 Tensor.lgamma
let ``digamma`` () = unaryProp 0.3 6.0 Tensor.digamma
let ``erf`` () = unaryProp -2.0 2.0 Tensor.erf
let ``erfc`` () = unaryProp -2.0 2.0 Tensor.erfc
let ``normalCdf`` () = unaryProp -3.0 3.0 Tensor.normalCdf
let ``square and reciprocal`` () = unaryProp 0.3 2.0 (fun x -> Tensor.square x + Tensor.reciprocal x)
let ``clamp`` () = unaryProp -2.0 2.0 (fun x -> Tensor.clamp -0.5 0.7 (x * 1.0001 + 0.0003))

let ``trigamma's derivative is refused clearly`` () =
    let ex = Assert.Throws<NotSupportedException>(fun () -> Autodiff.grad (Tensor.trigamma >> Tensor.sum) (Tensor.ofArray [| 1.5 |]) |> ignore)
    Assert.Contains("tetragamma", ex.Message)

let private binaryProp (loA, hiA) (loB, hiB) (f: Tensor -> Tensor -> Tensor) =
    Prop.forAll (Arb.fromGen (Gen.zip genBroadcastPair (Gen.choose (0, 1_000_000)))) (fun ((sa, sb), seed) ->
        gradCheck (fun xs -> f xs.[0] xs.[1]) [| randomTensor seed sa loA hiA; randomTensor (seed + 1) sb loB hiB |])
    |> check 40

let ``add with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (+)
let ``sub with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (-)
let ``mul with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (*)
let ``div with broadcasting`` () = binaryProp (-2.0, 2.0) (0.5, 2.0) (/)
let ``pow with broadcasting`` () = binaryProp (0.3, 2.0) (-1.5, 2.5) Tensor.pow
let ``maximum with broadcasting`` () = binaryProp (-2.0, 0.0) (0.1, 2.0) (fun a b -> Tensor.maximum a b + Tensor.maximum b (a - 3.0))
let ``minimum with broadcasting`` () = binaryProp (-2.0, 0.0) (0.1, 2.0) (fun a b -> Tensor.minimum a b + Tensor.minimum b (a - 3.0))
let ``scalar operands`` () = unaryProp 0.5 2.0 (fun x -> 2.0 * x - 1.0 + x / 3.0 + 3.0 / x - (1.0 - x) + Tensor.Pow(x, 1.7) + Tensor.Pow(1.3, x))

let ``where with broadcasting`` () =
    Prop.forAll (Arb.fromGen (Gen.zip genBroadcastPair (Gen.choose (0, 1_000_000)))) (fun ((sa, sb), seed) ->
        let a = randomTensor seed sa -2.0 2.0
        let b = randomTensor (seed + 1) sb -2.0 2.0
        let mask = Tensor.gtScalar (randomTensor (seed + 2) sa -1.0 1.0) 0.0
        gradCheck (fun xs -> Tensor.where mask xs.[0] xs.[1]) [| a; b |])
    |> check 40

/// Random axes of a shape, and whether to keep them.
let private genReduction =
    gen {
        let! s = genShape
        let! pick = Gen.arrayOfLength s.Length (Gen.elements [ true; false ])
        let! keep = Gen.elements [ true; false ]
        let! seed = Gen.choose (0, 1_000_000)
        return s, (Array.indexed pick |> Array.filter snd |> Array.map fst), keep, seed
    }

let ``sum over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        gradCheck (fun xs -> Tensor.sumAxes axes keep xs.[0]) [| randomTensor seed s -2.0 2.0 |])
    |> check 40

let ``mean over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        gradCheck (fun xs -> Tensor.meanAxes axes keep xs.[0]) [| randomTensor seed s -2.0 2.0 |])
    |> check 30

let ``max over random axes`` () =
    // distinct values, so the max is unique and the function smooth nearby
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        let n = Shape.size s
        let r = Random(seed)
        let vals = Array.init n float |> Array.sortBy (fun _ -> r.Next()) |> Array.map (fun v -> v * 0.37)
        gradCheck (fun xs -> Tensor.maxAxes axes keep xs.[0]) [| Tensor.create s vals |])
    |> check 40

let ``max shares the gradient among ties`` () =
    let g = Autodiff.grad Tensor.max (Tensor.ofArray [| 1.0; 3.0; 3.0; 2.0 |])
    assertClose 1e-15 [| 0.0; 0.5; 0.5; 0.0 |] (Tensor.toArray g)

let ``logsumexp, softmax and logSoftmax over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        let x = randomTensor seed s -3.0 3.0
        gradCheck (fun xs -> Tensor.logsumexpAxes axes keep xs.[0]) [| x |]
        if s.Length > 0 then
            gradCheck (fun xs -> Tensor.softmax -1 xs.[0]) [| x |]
            gradCheck (fun xs -> Tensor.logSoftmax 0 xs.[0]) [| x |])
    |> check 30

let ``logsumexpOf over broadcast terms, float64 and float32, a −∞ term included`` () =
    Prop.forAll (Arb.fromGen (Gen.zip genBroadcastPair (Gen.choose (0, 1_000_000)))) (fun ((sa, sb), seed) ->
        let f (xs: Tensor[]) = Tensor.logsumexpOf [ xs.[0]; xs.[1]; 0.5 * xs.[0] - 1.0 ]
        let xs = [| randomTensor seed sa -3.0 3.0; randomTensor (seed + 1) sb -3.0 3.0 |]
        gradCheck f xs
        // float32: the gradient of the float32 terms is the float64 one to float32 rounding
        let loss (ys: Tensor[]) = Tensor.sum (Tensor.toFloat64 (f ys))
        let g64 = Autodiff.gradN loss xs
        let g32 = Autodiff.gradN loss (xs |> Array.map Tensor.toFloat32)
        for k in 0 .. 1 do
            Assert.Equal(Float32, g32.[k].Dtype)
            assertClose 1e-5 (Tensor.toArray g64.[k]) (Tensor.toArray g32.[k]))
    |> check 30 |> checkNow
    // a term that is −∞ at one element: its gradient there is 0, the others' the softmax weights
    let x = Tensor.ofArray [| Double.NegativeInfinity; 1.0 |]
    let y = Tensor.ofArray [| 0.5; 2.0 |]
    let g = Autodiff.gradN (fun ts -> Tensor.sum (Tensor.logsumexpOf [ ts.[0]; ts.[1] ])) [| x; y |]
    let w = 1.0 / (1.0 + Math.Exp(2.0 - 1.0))
    assertClose 1e-15 [| 0.0; w |] (Tensor.toArray g.[0])
    assertClose 1e-15 [| 1.0; 1.0 - w |] (Tensor.toArray g.[1])

let ``matmul in all forms`` () =
    let cases =
        [ [| 3; 4 |], [| 4; 2 |]
          [| 2; 3; 4 |], [| 2; 4; 5 |]
          [| 2; 3; 4 |], [| 4; 5 |]
          [| 3; 4 |], [| 2; 4; 5 |]
          [| 2; 1; 3; 4 |], [| 3; 4; 2 |]
          [| 4 |], [| 4; 3 |]
          [| 3; 4 |], [| 4 |]
          [| 4 |], [| 4 |]
          [| 1; 1 |], [| 1; 1 |] ]
    for (i, (sa, sb)) in List.indexed cases do
        gradCheck (fun xs -> Tensor.matmul xs.[0] xs.[1]) [| randomTensor i sa -1.0 1.0; randomTensor (i + 50) sb -1.0 1.0 |]

let ``matmul with transposed operands`` () =
    for tA in [ false; true ] do
        for tB in [ false; true ] do
            let sa = if tA then [| 2; 4; 3 |] else [| 2; 3; 4 |]
            let sb = if tB then [| 5; 4 |] else [| 4; 5 |]
            let a = randomTensor 1 sa -1.0 1.0
            let b = randomTensor 2 sb -1.0 1.0
            gradCheck (fun xs -> Tensor.matmulT tA tB xs.[0] xs.[1]) [| a; b |]
            // and the value equals the product of explicit transposes
            let ea = if tA then Tensor.transpose a else a
            let eb = if tB then Tensor.transpose b else b
            assertTensorClose 1e-14 (Tensor.matmul ea eb) (Tensor.matmulT tA tB a b)

let ``layout ops`` () =
    let x = randomTensor 3 [| 2; 3; 4 |] -1.0 1.0
    let check1 f = gradCheck (fun xs -> f xs.[0]) [| x |]
    check1 (Tensor.permute [| 2; 0; 1 |])
    check1 Tensor.transpose
    check1 (Tensor.reshape [| 4; -1 |])
    check1 (Tensor.broadcastTo [| 5; 2; 3; 4 |])
    check1 (Tensor.slice [| 1; 0; 1 |] [| 1; 2; 3 |])
    check1 (Tensor.narrow 2 1 2)
    check1 (Tensor.select 1 2)
    check1 (Tensor.unsqueeze 1 >> Tensor.squeeze 1)
    check1 (Tensor.cumsum 2)
    check1 (Tensor.cumsum 0)
    check1 Tensor.flatten

let ``concat and stack`` () =
    let a = randomTensor 4 [| 2; 3 |] -1.0 1.0
    let b = randomTensor 5 [| 2; 1 |] -1.0 1.0
    let c = randomTensor 6 [| 2; 3 |] -1.0 1.0
    gradCheck (fun xs -> Tensor.concat 1 [ xs.[0]; xs.[1]; xs.[2] ]) [| a; b; c |]
    gradCheck (fun xs -> Tensor.stack 0 [ xs.[0]; xs.[1] ]) [| a; c |]

let ``indexSelect, embedding and scatterAdd`` () =
    let table = randomTensor 8 [| 5; 3 |] -1.0 1.0
    let idx = Tensor.createI32 [| 2; 3 |] [| 0; 4; 4; 1; 0; 2 |]
    gradCheck (fun xs -> Tensor.embedding xs.[0] idx) [| table |]
    gradCheck (fun xs -> Tensor.indexSelect 1 (Tensor.ofInts [| 2; 0; 2 |]) xs.[0]) [| table |]
    let upd = randomTensor 9 [| 2; 3; 3 |] -1.0 1.0
    gradCheck (fun xs -> Tensor.scatterAdd 0 6 idx xs.[0]) [| upd |]

let ``cast between float dtypes passes the gradient through`` () =
    let x = Tensor.ofArray [| 0.5; -1.25; 2.0 |]
    let w = Tensor.ofArray [| 1.0; 2.0; -3.0 |]
    let g = Autodiff.grad (fun x -> Tensor.sum (Tensor.toFloat64 (Tensor.toFloat32 x) * w)) x
    Assert.Equal(Float64, g.Dtype)
    assertClose 0.0 [| 1.0; 2.0; -3.0 |] (Tensor.toArray g)

[<Tests>]
let tests =
    testList "GradientTests" [
        propertyCase "neg" ``neg``
        propertyCase "exp" ``exp``
        propertyCase "log" ``log``
        propertyCase "log1p" ``log1p``
        propertyCase "expm1" ``expm1``
        propertyCase "sqrt" ``sqrt``
        propertyCase "abs away from zero" ``abs away from zero``
        propertyCase "sign has zero gradient" ``sign has zero gradient``
        propertyCase "tanh" ``tanh``
        propertyCase "sigmoid" ``sigmoid``
        propertyCase "softplus" ``softplus``
        propertyCase "logSigmoid" ``logSigmoid``
        propertyCase "relu away from zero" ``relu away from zero``
        propertyCase "lgamma" ``lgamma``
        propertyCase "digamma" ``digamma``
        propertyCase "erf" ``erf``
        propertyCase "erfc" ``erfc``
        propertyCase "normalCdf" ``normalCdf``
        propertyCase "square and reciprocal" ``square and reciprocal``
        propertyCase "clamp" ``clamp``
        testCase "trigamma's derivative is refused clearly" ``trigamma's derivative is refused clearly``
        propertyCase "add with broadcasting" ``add with broadcasting``
        propertyCase "sub with broadcasting" ``sub with broadcasting``
        propertyCase "mul with broadcasting" ``mul with broadcasting``
        propertyCase "div with broadcasting" ``div with broadcasting``
        propertyCase "pow with broadcasting" ``pow with broadcasting``
        propertyCase "maximum with broadcasting" ``maximum with broadcasting``
        propertyCase "minimum with broadcasting" ``minimum with broadcasting``
        propertyCase "scalar operands" ``scalar operands``
        propertyCase "where with broadcasting" ``where with broadcasting``
        propertyCase "sum over random axes" ``sum over random axes``
        propertyCase "mean over random axes" ``mean over random axes``
        propertyCase "max over random axes" ``max over random axes``
        testCase "max shares the gradient among ties" ``max shares the gradient among ties``
        propertyCase "logsumexp, softmax and logSoftmax over random axes" ``logsumexp, softmax and logSoftmax over random axes``
        testCase "logsumexpOf over broadcast terms, float64 and float32, a −∞ term included" ``logsumexpOf over broadcast terms, float64 and float32, a −∞ term included``
        testCase "matmul in all forms" ``matmul in all forms``
        testCase "matmul with transposed operands" ``matmul with transposed operands``
        testCase "layout ops" ``layout ops``
        testCase "concat and stack" ``concat and stack``
        testCase "indexSelect, embedding and scatterAdd" ``indexSelect, embedding and scatterAdd``
        testCase "cast between float dtypes passes the gradient through" ``cast between float dtypes passes the gradient through``
    ]
