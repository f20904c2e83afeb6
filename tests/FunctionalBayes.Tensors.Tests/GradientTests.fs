/// Every primitive op's vector-Jacobian product against central finite differences, on random shapes.
module FunctionalBayes.Tensors.Tests.GradientTests

open System
open FsCheck
open FsCheck.FSharp
open Xunit
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// A property over a random shape and seed: values uniform in [lo, hi].
let private unaryProp (lo: float) (hi: float) (f: Tensor -> Tensor) =
    Prop.forAll (Arb.fromGen (Gen.zip genShape (Gen.choose (0, 1_000_000)))) (fun (shape, seed) ->
        gradCheck (fun xs -> f xs.[0]) [| randomTensor seed shape lo hi |])
    |> check 25

[<Fact>]
let ``neg`` () = unaryProp -2.0 2.0 Tensor.neg
[<Fact>]
let ``exp`` () = unaryProp -2.0 2.0 Tensor.exp
[<Fact>]
let ``log`` () = unaryProp 0.2 3.0 Tensor.log
[<Fact>]
let ``log1p`` () = unaryProp -0.5 3.0 Tensor.log1p
[<Fact>]
let ``expm1`` () = unaryProp -2.0 2.0 Tensor.expm1
[<Fact>]
let ``sqrt`` () = unaryProp 0.2 3.0 Tensor.sqrt
[<Fact>]
let ``abs away from zero`` () = unaryProp 0.1 2.0 (fun x -> Tensor.abs (x * Tensor.sign (x - 1.0)))
[<Fact>]
let ``sign has zero gradient`` () = unaryProp 0.1 2.0 (fun x -> Tensor.sign (x - 1.05) * 3.0)
[<Fact>]
let ``tanh`` () = unaryProp -2.0 2.0 Tensor.tanh
[<Fact>]
let ``sigmoid`` () = unaryProp -4.0 4.0 Tensor.sigmoid
[<Fact>]
let ``softplus`` () = unaryProp -4.0 4.0 Tensor.softplus
[<Fact>]
let ``logSigmoid`` () = unaryProp -4.0 4.0 Tensor.logSigmoid
[<Fact>]
let ``relu away from zero`` () = unaryProp 0.05 2.0 (fun x -> Tensor.relu (x - 1.0) + Tensor.relu (x * 0.0 + 0.5))
[<Fact>]
let ``lgamma`` () = unaryProp 0.3 6.0 Tensor.lgamma
[<Fact>]
let ``digamma`` () = unaryProp 0.3 6.0 Tensor.digamma
[<Fact>]
let ``erf`` () = unaryProp -2.0 2.0 Tensor.erf
[<Fact>]
let ``erfc`` () = unaryProp -2.0 2.0 Tensor.erfc
[<Fact>]
let ``normalCdf`` () = unaryProp -3.0 3.0 Tensor.normalCdf
[<Fact>]
let ``square and reciprocal`` () = unaryProp 0.3 2.0 (fun x -> Tensor.square x + Tensor.reciprocal x)
[<Fact>]
let ``clamp`` () = unaryProp -2.0 2.0 (fun x -> Tensor.clamp -0.5 0.7 (x * 1.0001 + 0.0003))

[<Fact>]
let ``trigamma's derivative is refused clearly`` () =
    let ex = Assert.Throws<NotSupportedException>(fun () -> Autodiff.grad (Tensor.trigamma >> Tensor.sum) (Tensor.ofArray [| 1.5 |]) |> ignore)
    Assert.Contains("tetragamma", ex.Message)

let private binaryProp (loA, hiA) (loB, hiB) (f: Tensor -> Tensor -> Tensor) =
    Prop.forAll (Arb.fromGen (Gen.zip genBroadcastPair (Gen.choose (0, 1_000_000)))) (fun ((sa, sb), seed) ->
        gradCheck (fun xs -> f xs.[0] xs.[1]) [| randomTensor seed sa loA hiA; randomTensor (seed + 1) sb loB hiB |])
    |> check 40

[<Fact>]
let ``add with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (+)
[<Fact>]
let ``sub with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (-)
[<Fact>]
let ``mul with broadcasting`` () = binaryProp (-2.0, 2.0) (-2.0, 2.0) (*)
[<Fact>]
let ``div with broadcasting`` () = binaryProp (-2.0, 2.0) (0.5, 2.0) (/)
[<Fact>]
let ``pow with broadcasting`` () = binaryProp (0.3, 2.0) (-1.5, 2.5) Tensor.pow
[<Fact>]
let ``maximum with broadcasting`` () = binaryProp (-2.0, 0.0) (0.1, 2.0) (fun a b -> Tensor.maximum a b + Tensor.maximum b (a - 3.0))
[<Fact>]
let ``minimum with broadcasting`` () = binaryProp (-2.0, 0.0) (0.1, 2.0) (fun a b -> Tensor.minimum a b + Tensor.minimum b (a - 3.0))
[<Fact>]
let ``scalar operands`` () = unaryProp 0.5 2.0 (fun x -> 2.0 * x - 1.0 + x / 3.0 + 3.0 / x - (1.0 - x) + Tensor.Pow(x, 1.7) + Tensor.Pow(1.3, x))

[<Fact>]
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

[<Fact>]
let ``sum over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        gradCheck (fun xs -> Tensor.sumAxes axes keep xs.[0]) [| randomTensor seed s -2.0 2.0 |])
    |> check 40

[<Fact>]
let ``mean over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        gradCheck (fun xs -> Tensor.meanAxes axes keep xs.[0]) [| randomTensor seed s -2.0 2.0 |])
    |> check 30

[<Fact>]
let ``max over random axes`` () =
    // distinct values, so the max is unique and the function smooth nearby
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        let n = Shape.size s
        let r = Random(seed)
        let vals = Array.init n float |> Array.sortBy (fun _ -> r.Next()) |> Array.map (fun v -> v * 0.37)
        gradCheck (fun xs -> Tensor.maxAxes axes keep xs.[0]) [| Tensor.create s vals |])
    |> check 40

[<Fact>]
let ``max shares the gradient among ties`` () =
    let g = Autodiff.grad Tensor.max (Tensor.ofArray [| 1.0; 3.0; 3.0; 2.0 |])
    assertClose 1e-15 [| 0.0; 0.5; 0.5; 0.0 |] (Tensor.toArray g)

[<Fact>]
let ``logsumexp, softmax and logSoftmax over random axes`` () =
    Prop.forAll (Arb.fromGen genReduction) (fun (s, axes, keep, seed) ->
        let x = randomTensor seed s -3.0 3.0
        gradCheck (fun xs -> Tensor.logsumexpAxes axes keep xs.[0]) [| x |]
        if s.Length > 0 then
            gradCheck (fun xs -> Tensor.softmax -1 xs.[0]) [| x |]
            gradCheck (fun xs -> Tensor.logSoftmax 0 xs.[0]) [| x |])
    |> check 30

[<Fact>]
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

[<Fact>]
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

[<Fact>]
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

[<Fact>]
let ``concat and stack`` () =
    let a = randomTensor 4 [| 2; 3 |] -1.0 1.0
    let b = randomTensor 5 [| 2; 1 |] -1.0 1.0
    let c = randomTensor 6 [| 2; 3 |] -1.0 1.0
    gradCheck (fun xs -> Tensor.concat 1 [ xs.[0]; xs.[1]; xs.[2] ]) [| a; b; c |]
    gradCheck (fun xs -> Tensor.stack 0 [ xs.[0]; xs.[1] ]) [| a; c |]

[<Fact>]
let ``indexSelect, embedding and scatterAdd`` () =
    let table = randomTensor 8 [| 5; 3 |] -1.0 1.0
    let idx = Tensor.createI32 [| 2; 3 |] [| 0; 4; 4; 1; 0; 2 |]
    gradCheck (fun xs -> Tensor.embedding xs.[0] idx) [| table |]
    gradCheck (fun xs -> Tensor.indexSelect 1 (Tensor.ofInts [| 2; 0; 2 |]) xs.[0]) [| table |]
    let upd = randomTensor 9 [| 2; 3; 3 |] -1.0 1.0
    gradCheck (fun xs -> Tensor.scatterAdd 0 6 idx xs.[0]) [| upd |]

[<Fact>]
let ``cast between float dtypes passes the gradient through`` () =
    let x = Tensor.ofArray [| 0.5; -1.25; 2.0 |]
    let w = Tensor.ofArray [| 1.0; 2.0; -3.0 |]
    let g = Autodiff.grad (fun x -> Tensor.sum (Tensor.toFloat64 (Tensor.toFloat32 x) * w)) x
    Assert.Equal(Float64, g.Dtype)
    assertClose 0.0 [| 1.0; 2.0; -3.0 |] (Tensor.toArray g)
