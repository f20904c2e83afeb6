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

let ``positiveDefinite agrees with MathNet's eigenvalues, never raises, and compiles`` () =
    // random symmetric matrices, about half of them indefinite, and the edge cases
    let rng = Random 5
    let n, count = 4, 60
    let mats =
        Array.init count (fun k ->
            let m = Array2D.init n n (fun _ _ -> rng.NextDouble() * 2.0 - 1.0)
            let shift = if k % 2 = 0 then 2.5 else 0.2
            Array.init (n * n) (fun e -> let i, j = e / n, e % n in m.[i, j] + m.[j, i] + (if i = j then shift else 0.0)))
    let a = Tensor.create [| count; n; n |] (Array.concat mats)
    let expected =
        mats |> Array.map (fun v -> Matrix<float>.Build.DenseOfRowMajor(n, n, v).Evd(Symmetricity.Symmetric).EigenValues |> Seq.forall (fun e -> e.Real > 0.0))
    Assert.True(Array.contains true expected && Array.contains false expected, "both kinds occur")
    let mask = Tensor.positiveDefinite a
    Assert.Equal<int[]>([| count |], mask.Shape)
    Assert.Equal<bool[]>(expected, Tensor.toBools mask)
    Assert.Equal<bool[]>(expected, Tensor.toBools (Tensor.positiveDefinite (Tensor.cast Float32 a)))
    let edge = [| [| 0.0; 0.0; 0.0; 0.0 |]; [| 1.0; 0.0; 0.0; Double.NaN |]; [| Double.PositiveInfinity; 0.0; 0.0; 1.0 |]; [| 1e-300; 0.0; 0.0; 1e-300 |] |]
    Assert.Equal<bool[]>([| false; false; false; true |], Tensor.toBools (Tensor.positiveDefinite (Tensor.create [| 4; 2; 2 |] (Array.concat edge))))
    // in a compiled program the mask is a graph op over the data: rebinding recomputes it
    let f (xs: Tensor[]) = Tensor.sum (Tensor.where (Tensor.positiveDefinite xs.[1]) (xs.[0] * xs.[0]) (Tensor.zerosLike xs.[0]))
    let p = Tensor.ofArray (Array.init count (fun i -> 0.1 * float i))
    match Compiler.compile f [| p |] [| p * 1.3 |] [| a |] with
    | Error why -> failwithf "not compiled: %s" why
    | Ok cg ->
        for data in [ a; Tensor.create [| count; n; n |] (Array.concat (Array.rev mats)) ] do
            let e = cg.Bind([| data |]).CreateEvaluator()
            let g = Array.zeroCreate count
            let v = e.Evaluate(ReadOnlySpan (Tensor.toArray p), Span g)
            let tv, tg = Autodiff.valueAndGradN (fun xs -> f [| xs.[0]; data |]) [| p |]
            assertClose 1e-13 [| Tensor.toScalar tv |] [| v |]
            assertClose 1e-13 (Tensor.toArray tg.[0]) g

[<Tests>]
let tests =
    testList "LinalgTests" [
        testCase "positiveDefinite agrees with MathNet's eigenvalues, never raises, and compiles" ``positiveDefinite agrees with MathNet's eigenvalues, never raises, and compiles``
        testCase "cholesky matches MathNet and reconstructs the matrix" ``cholesky matches MathNet and reconstructs the matrix``
        testCase "cholesky works on a batch and refuses an indefinite matrix" ``cholesky works on a batch and refuses an indefinite matrix``
        testCase "triangular solves in all four forms" ``triangular solves in all four forms``
        testCase "cholesky gradient" ``cholesky gradient``
        testCase "triangular solve gradient" ``triangular solve gradient``
        testCase "diagonal, diagEmbed and tril" ``diagonal, diagEmbed and tril``
    ]
