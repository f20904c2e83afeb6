/// Bijectors: round trips, and log |det J| against a finite-difference Jacobian.
module FunctionalBayes.Tests.BijectorTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open MathNet.Numerics.LinearAlgebra
open FunctionalBayes
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// The free coordinates of a constrained value (those the bijector's Jacobian is square on).
let private free (b: Bijector) (y: Tensor) : float[] =
    let v = Tensor.toArray y
    match b with
    | Bijector.StickBreaking -> v.[.. v.Length - 2]
    | Bijector.LowerCholesky | Bijector.PositiveDefinite ->
        let n = y.Shape.[y.Rank - 1]
        [| for i in 0 .. n - 1 do for j in 0 .. i -> v.[i * n + j] |]
    | Bijector.CorrCholesky ->
        let n = y.Shape.[y.Rank - 1]
        [| for i in 0 .. n - 1 do for j in 0 .. i - 1 -> v.[i * n + j] |]
    | _ -> v

let private numericLogDet (b: Bijector) (x: float[]) =
    let h = 1e-6
    let m = x.Length
    let jac = Matrix<float>.Build.Dense(m, m)
    for j in 0 .. m - 1 do
        let at d =
            let a = Array.copy x
            a.[j] <- a.[j] + d
            free b (Bijector.forward b (Tensor.ofArray a))
        let up = at h
        let dn = at -h
        for i in 0 .. m - 1 do
            jac.[i, j] <- (up.[i] - dn.[i]) / (2.0 * h)
    log (abs (jac.Determinant()))

let private vectorCases =
    [ Bijector.StickBreaking, 4
      Bijector.Ordered, 4
      Bijector.LowerCholesky, 6
      Bijector.CorrCholesky, 6
      Bijector.PositiveDefinite, 6 ]

let ``scalar bijectors: round trip and derivative`` () =
    let x = randomTensor 1 [| 2; 3 |] -3.0 3.0
    for b in [ Bijector.Identity; Bijector.Exp; Bijector.ExpPlus -2.0; Bijector.Sigmoid (-1.0, 4.0) ] do
        let y = Bijector.forward b x
        assertTensorClose 1e-12 x (Bijector.inverse b y)
        let ld = Bijector.logAbsDetJacobian b x |> Tensor.toArray
        let xs = Tensor.toArray x
        let fd = xs |> Array.map (fun xi ->
            let f v = Bijector.forward b (Tensor.scalar v) |> Tensor.toScalar
            log (abs ((f (xi + 1e-6) - f (xi - 1e-6)) / 2e-6)))
        assertClose 1e-7 fd ld

let ``vector and matrix bijectors: round trip`` () =
    for (b, m) in vectorCases do
        let x = randomTensor (m + 3) [| 2; m |] -1.5 1.5
        let y = Bijector.forward b x
        assertTensorClose 1e-10 x (Bijector.inverse b y)
        Assert.Equal<int[]>(x.Shape, Bijector.unconstrainedShape b y.Shape)

let ``vector and matrix bijectors: log |det J| against finite differences`` () =
    for (b, m) in vectorCases do
        for seed in 1 .. 3 do
            let x = randomArray (seed * 10 + m) m -1.5 1.5
            let got = Bijector.logAbsDetJacobian b (Tensor.ofArray x) |> Tensor.toScalar
            let expected = numericLogDet b x
            if abs (got - expected) > 1e-6 * (1.0 + abs expected) then
                failwithf "%A: log|det J| %g, finite differences %g" b got expected

let ``forward lands in the constraint's set`` () =
    let cases =
        [ Constraint.Positive, 3; Constraint.GreaterThan 2.0, 3; Constraint.Interval (-1.0, 1.0), 3; Constraint.UnitInterval, 3
          Constraint.Simplex, 3; Constraint.OrderedVector, 4; Constraint.LowerCholesky, 6; Constraint.CorrCholesky, 6
          Constraint.PositiveDefinite, 6 ]
    for (c, m) in cases do
        let x = randomTensor m [| 5; m |] -4.0 4.0
        let y = Bijector.forward (Constraint.bijector c) x
        Assert.All(Tensor.toBools (Constraint.check c y), fun ok -> Assert.True(ok, sprintf "%A" c))
    // and a value outside is caught
    Assert.False((Constraint.check Constraint.Simplex (Tensor.ofArray [| 0.5; 0.6 |]) |> Tensor.toBools).[0])
    Assert.False((Constraint.check Constraint.OrderedVector (Tensor.ofArray [| 0.5; 0.4 |]) |> Tensor.toBools).[0])

let ``correlation Cholesky factors give unit-diagonal correlation matrices`` () =
    let l = Bijector.forward Bijector.CorrCholesky (randomTensor 4 [| 6 |] -2.0 2.0)
    let c = Tensor.matmul l (Tensor.transpose l)
    assertClose 1e-12 [| 1.0; 1.0; 1.0; 1.0 |] (Tensor.toArray (Tensor.diagonal c))

let ``discrete supports have no bijector`` () =
    let ex = Assert.Throws<ArgumentException>(fun () -> Constraint.bijector Constraint.NonNegativeInteger |> ignore)
    Assert.Contains("discrete", ex.Message)

[<Tests>]
let tests =
    testList "BijectorTests" [
        testCase "scalar bijectors: round trip and derivative" ``scalar bijectors: round trip and derivative``
        testCase "vector and matrix bijectors: round trip" ``vector and matrix bijectors: round trip``
        testCase "vector and matrix bijectors: log |det J| against finite differences" ``vector and matrix bijectors: log |det J| against finite differences``
        testCase "forward lands in the constraint's set" ``forward lands in the constraint's set``
        testCase "correlation Cholesky factors give unit-diagonal correlation matrices" ``correlation Cholesky factors give unit-diagonal correlation matrices``
        testCase "discrete supports have no bijector" ``discrete supports have no bijector``
    ]
