/// Broadcasting rules and the errors users see for bad shapes.
module FunctionalBayes.Tensors.Tests.ShapeTests

open System
open FsCheck
open FsCheck.FSharp
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let ``broadcasting follows NumPy`` () =
    let cases =
        [ [| 3 |], [| 2; 3 |], [| 2; 3 |]
          [| 2; 1 |], [| 1; 4 |], [| 2; 4 |]
          [||], [| 5; 6 |], [| 5; 6 |]
          [| 8; 1; 6; 1 |], [| 7; 1; 5 |], [| 8; 7; 6; 5 |]
          [| 0 |], [| 1 |], [| 0 |] ]
    for (a, b, expected) in cases do
        Assert.Equal<int[]>(expected, Shape.broadcast "test" a b)
        Assert.Equal<int[]>(expected, (Tensor.zeros a + Tensor.zeros b).Shape)

let ``broadcasting is symmetric and idempotent`` () =
    Prop.forAll (Arb.fromGen genBroadcastPair) (fun (a, b) ->
        let ab = Shape.broadcast "t" a b
        ab = Shape.broadcast "t" b a && Shape.broadcast "t" ab a = ab && Shape.broadcast "t" ab b = ab)
    |> check 100

let ``a shape error names the op and both shapes`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.zeros [| 2; 3 |] + Tensor.zeros [| 4 |] |> ignore)
    Assert.Contains("add", ex.Message)
    Assert.Contains("[2, 3]", ex.Message)
    Assert.Contains("[4]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.matmul (Tensor.zeros [| 2; 3 |]) (Tensor.zeros [| 4; 5 |]) |> ignore)
    Assert.Contains("matmul", ex.Message)
    Assert.Contains("[2, 3]", ex.Message)
    Assert.Contains("[4, 5]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.reshape [| 4 |] (Tensor.zeros [| 2; 3 |]) |> ignore)
    Assert.Contains("reshape", ex.Message)
    Assert.Contains("[2, 3]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.concat 0 [ Tensor.zeros [| 2; 3 |]; Tensor.zeros [| 2; 4 |] ] |> ignore)
    Assert.Contains("concat", ex.Message)
    Assert.Contains("[2, 4]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.sumAxes [| 2 |] false (Tensor.zeros [| 2; 3 |]) |> ignore)
    Assert.Contains("axis 2", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.create [| 2; 2 |] [| 1.0 |] |> ignore)
    Assert.Contains("[2, 2]", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.narrow 0 1 3 (Tensor.zeros [| 2 |]) |> ignore)
    Assert.Contains("slice", ex.Message)

let ``dtype errors say what to do`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.exp (Tensor.ofInts [| 1 |]) |> ignore)
    Assert.Contains("exp", ex.Message)
    Assert.Contains("int32", ex.Message)
    Assert.Contains("toFloat64", ex.Message)
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.embedding (Tensor.zeros [| 3; 2 |]) (Tensor.ofArray [| 1.0 |]) |> ignore)
    Assert.Contains("int32", ex.Message)

let ``reshape infers one dimension`` () =
    Assert.Equal<int[]>([| 3; 4 |], (Tensor.reshape [| 3; -1 |] (Tensor.zeros [| 2; 6 |])).Shape)
    Assert.Throws<ArgumentException>(fun () -> Tensor.reshape [| -1; -1 |] (Tensor.zeros [| 4 |]) |> ignore) |> ignore

[<Tests>]
let tests =
    testList "ShapeTests" [
        testCase "broadcasting follows NumPy" ``broadcasting follows NumPy``
        propertyCase "broadcasting is symmetric and idempotent" ``broadcasting is symmetric and idempotent``
        testCase "a shape error names the op and both shapes" ``a shape error names the op and both shapes``
        testCase "dtype errors say what to do" ``dtype errors say what to do``
        testCase "reshape infers one dimension" ``reshape infers one dimension``
    ]
