/// Cholesky and triangular solves: values against MathNet.Numerics, gradients against finite differences.
module FunctionalBayes.Tensors.Tests.LinalgTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open MathNet.Numerics.LinearAlgebra
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// A symmetric positive-definite matrix M Mᵀ + n·I.
let private spd (m: Tensor) =
    let n = m.Shape.[m.Rank - 1]
    Tensor.matmul m (Tensor.transpose m) + float n * Tensor.eye n

let ``cholesky matches MathNet and reconstructs the matrix`` () =
    let a = spd (randomTensor 1 [| 4; 4 |] -1.0 1.0)
    let l = Tensor.cholesky a
    let reference = Matrix<float>.Build.DenseOfArray(Tensor.toArray2D a).Cholesky().Factor
    assertClose 1e-13 (reference.ToRowMajorArray()) (Tensor.toArray l)
    assertTensorClose 1e-13 a (Tensor.matmul l (Tensor.transpose l))

let ``cholesky works on a batch and refuses an indefinite matrix`` () =
    let a = spd (randomTensor 2 [| 3; 2; 2 |] -1.0 1.0)
    let l = Tensor.cholesky a
    Assert.Equal<int[]>([| 3; 2; 2 |], l.Shape)
    assertTensorClose 1e-13 a (Tensor.matmul l (Tensor.transpose l))
    let bad = Tensor.create [| 2; 2 |] [| 1.0; 2.0; 2.0; 1.0 |]
    let ex = Assert.Throws<ArgumentException>(fun () -> Tensor.cholesky bad |> ignore)
    Assert.Contains("not positive definite", ex.Message)

let ``triangular solves in all four forms`` () =
    let l = Tensor.cholesky (spd (randomTensor 3 [| 4; 4 |] -1.0 1.0))
    let u = Tensor.transpose l
    let b = randomTensor 4 [| 4; 2 |] -1.0 1.0
    for lower, tr in [ true, false; true, true; false, false; false, true ] do
        let a = if lower then l else u
        let x = Tensor.triangularSolve lower tr a b
        let opA = if tr then Tensor.transpose a else a
        assertTensorClose 1e-12 b (Tensor.matmul opA x)
    // a 1-D right-hand side, and a batch of matrices against one
    let v = Tensor.ofArray [| 1.0; 2.0; 3.0; 4.0 |]
    assertTensorClose 1e-12 v (Tensor.matmul l (Tensor.triangularSolve true false l v))
    let lb = Tensor.stack 0 [ l; l * 2.0 ]
    Assert.Equal<int[]>([| 2; 4; 2 |], (Tensor.triangularSolve true false lb b).Shape)

let ``cholesky gradient`` () =
    gradCheck (fun xs -> Tensor.cholesky (spd xs.[0])) [| randomTensor 5 [| 3; 3 |] -1.0 1.0 |]
    gradCheck (fun xs -> Tensor.cholesky (spd xs.[0])) [| randomTensor 6 [| 2; 3; 3 |] -1.0 1.0 |]

let ``triangular solve gradient`` () =
    for lower, tr in [ true, false; true, true; false, false; false, true ] do
        let a = Tensor.cholesky (spd (randomTensor 7 [| 3; 3 |] -1.0 1.0))
        let a = if lower then a else Tensor.transpose a
        let b = randomTensor 8 [| 3; 2 |] -1.0 1.0
        let tri = if lower then Tensor.tril else (Tensor.transpose >> Tensor.tril >> Tensor.transpose)
        gradCheck (fun xs -> Tensor.triangularSolve lower tr (tri xs.[0]) xs.[1]) [| a; b |]

let ``diagonal, diagEmbed and tril`` () =
    let a = Tensor.create [| 2; 2 |] [| 1.0; 2.0; 3.0; 4.0 |]
    Assert.Equal<float[]>([| 1.0; 4.0 |], Tensor.toArray (Tensor.diagonal a))
    Assert.Equal<float[]>([| 1.0; 0.0; 0.0; 4.0 |], Tensor.toArray (Tensor.diagEmbed (Tensor.ofArray [| 1.0; 4.0 |])))
    Assert.Equal<float[]>([| 1.0; 0.0; 3.0; 4.0 |], Tensor.toArray (Tensor.tril a))
    gradCheck (fun xs -> Tensor.diagonal xs.[0]) [| randomTensor 9 [| 2; 3; 3 |] -1.0 1.0 |]
    gradCheck (fun xs -> Tensor.diagEmbed xs.[0]) [| randomTensor 10 [| 2; 3 |] -1.0 1.0 |]

[<Tests>]
let tests =
    testList "LinalgTests" [
        testCase "cholesky matches MathNet and reconstructs the matrix" ``cholesky matches MathNet and reconstructs the matrix``
        testCase "cholesky works on a batch and refuses an indefinite matrix" ``cholesky works on a batch and refuses an indefinite matrix``
        testCase "triangular solves in all four forms" ``triangular solves in all four forms``
        testCase "cholesky gradient" ``cholesky gradient``
        testCase "triangular solve gradient" ``triangular solve gradient``
        testCase "diagonal, diagEmbed and tril" ``diagonal, diagEmbed and tril``
    ]
