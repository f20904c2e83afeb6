/// Op values against direct formulas and MathNet.Numerics.
module FunctionalBayes.Tensors.Tests.OpValueTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open MathNet.Numerics
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private xs = [| -3.7; -1.2; -0.3; 0.0; 1e-9; 0.4; 1.0; 2.5; 7.9 |]
let private pos = [| 1e-3; 0.1; 0.5; 1.0; 1.5; 2.5; 10.0; 123.4 |]

let private unaryCase (f: Tensor -> Tensor) (reference: float -> float) (data: float[]) (tol: float) =
    assertClose tol (Array.map reference data) (Tensor.toArray (f (Tensor.ofArray data)))

let ``element-wise functions against System.Math`` () =
    unaryCase Tensor.neg (fun x -> -x) xs 0.0
    unaryCase Tensor.exp Math.Exp xs 1e-15
    unaryCase Tensor.log Math.Log pos 1e-15
    unaryCase Tensor.sqrt Math.Sqrt pos 1e-15
    unaryCase Tensor.abs Math.Abs xs 0.0
    unaryCase Tensor.sign (fun x -> float (Math.Sign x)) xs 0.0
    unaryCase Tensor.tanh Math.Tanh xs 1e-15
    unaryCase Tensor.relu (fun x -> Math.Max(x, 0.0)) xs 0.0
    unaryCase Tensor.sigmoid (fun x -> 1.0 / (1.0 + Math.Exp(-x))) xs 1e-15
    unaryCase Tensor.softplus (fun x -> Math.Log(1.0 + Math.Exp x)) xs 1e-14

let ``log1p and expm1 are accurate for tiny arguments`` () =
    let tiny = [| 1e-300; -1e-20; 1e-12; 3e-9; -5e-6 |]
    // series: log1p(x) = x - x²/2 + x³/3, expm1(x) = x + x²/2 + x³/6, exact to double precision here
    let check f reference = assertRelClose 1e-15 (Array.map reference tiny) (Tensor.toArray (f (Tensor.ofArray tiny)))
    check Tensor.log1p (fun x -> x - x * x / 2.0 + x * x * x / 3.0)
    check Tensor.expm1 (fun x -> x + x * x / 2.0 + x * x * x / 6.0)
    unaryCase Tensor.log1p (fun x -> Math.Log(1.0 + x)) [| 0.5; 3.0; 100.0 |] 1e-15

let ``softplus is stable at the extremes`` () =
    let t = Tensor.ofArray [| -800.0; -40.0; 40.0; 800.0 |] |> Tensor.softplus |> Tensor.toArray
    assertClose 1e-14 [| 0.0; Math.Exp -40.0; 40.0; 800.0 |] t
    let ls = Tensor.ofArray [| -800.0; 800.0 |] |> Tensor.logSigmoid |> Tensor.toArray
    assertClose 1e-14 [| -800.0; 0.0 |] ls

let ``special functions against MathNet`` () =
    unaryCase Tensor.lgamma SpecialFunctions.GammaLn pos 1e-13
    unaryCase Tensor.digamma SpecialFunctions.DiGamma pos 1e-12
    unaryCase Tensor.erf SpecialFunctions.Erf xs 1e-14
    unaryCase Tensor.erfc SpecialFunctions.Erfc xs 1e-13
    unaryCase Tensor.normalCdf (fun x -> Distributions.Normal.CDF(0.0, 1.0, x)) xs 1e-13
    // trigamma(x) = Σ 1/(x+k)², checked by the recurrence ψ'(x) = ψ'(x+1) + 1/x² and ψ'(1) = π²/6
    let t1 = Tensor.ofArray [| 1.0 |] |> Tensor.trigamma |> Tensor.toScalar
    Assert.Equal(Math.PI * Math.PI / 6.0, t1, 12)
    let a = Tensor.ofArray pos |> Tensor.trigamma |> Tensor.toArray
    let b = Tensor.ofArray (pos |> Array.map ((+) 1.0)) |> Tensor.trigamma |> Tensor.toArray
    assertClose 1e-12 (Array.map2 (fun bi x -> bi + 1.0 / (x * x)) b pos) a

let ``binary ops with broadcasting against loops`` () =
    let a = randomTensor 1 [| 2; 1; 3 |] -2.0 2.0
    let b = randomTensor 2 [| 4; 1 |] 0.5 2.0
    let av = Tensor.toArray a
    let bv = Tensor.toArray b
    let expect f =
        [| for i in 0 .. 1 do
               for j in 0 .. 3 do
                   for k in 0 .. 2 do
                       yield f av.[i * 3 + k] bv.[j] |]
    assertClose 1e-15 (expect (+)) (Tensor.toArray (a + b))
    assertClose 1e-15 (expect (-)) (Tensor.toArray (a - b))
    assertClose 1e-15 (expect (*)) (Tensor.toArray (a * b))
    assertClose 1e-15 (expect (/)) (Tensor.toArray (a / b))
    assertClose 1e-14 (expect (fun x y -> Math.Pow(abs x, y))) (Tensor.toArray (Tensor.pow (Tensor.abs a) b))
    assertClose 0.0 (expect max) (Tensor.toArray (Tensor.maximum a b))
    assertClose 0.0 (expect min) (Tensor.toArray (Tensor.minimum a b))
    Assert.Equal<int[]>([| 2; 4; 3 |], (a + b).Shape)

let ``reductions against loops`` () =
    let x = randomTensor 3 [| 2; 3; 4 |] -2.0 2.0
    let v = Tensor.toArray x
    let at i j k = v.[(i * 3 + j) * 4 + k]
    let s02 = [| for j in 0 .. 2 -> Seq.sum (seq { for i in 0 .. 1 do for k in 0 .. 3 -> at i j k }) |]
    assertClose 1e-14 s02 (Tensor.toArray (Tensor.sumAxes [| 0; 2 |] false x))
    Assert.Equal<int[]>([| 1; 3; 1 |], (Tensor.sumAxes [| 0; -1 |] true x).Shape)
    let m1 = [| for i in 0 .. 1 do for k in 0 .. 3 -> Seq.max (seq { for j in 0 .. 2 -> at i j k }) |]
    assertClose 0.0 m1 (Tensor.toArray (Tensor.maxAxes [| 1 |] false x))
    Assert.Equal(Array.average v, Tensor.toScalar (Tensor.mean x), 14)
    Assert.Equal(Array.max v, Tensor.toScalar (Tensor.max x))
    Assert.Equal(Array.min v, Tensor.toScalar (Tensor.min x))
    let lse = Math.Log(v |> Array.sumBy Math.Exp)
    Assert.Equal(lse, Tensor.toScalar (Tensor.logsumexp x), 13)

let ``logsumexp and softmax are stable`` () =
    let x = Tensor.ofArray [| 1000.0; 1000.0; -1000.0 |]
    Assert.Equal(1000.0 + Math.Log 2.0, Tensor.toScalar (Tensor.logsumexp x), 12)
    assertClose 1e-15 [| 0.5; 0.5; 0.0 |] (Tensor.toArray (Tensor.softmax 0 x))
    let allNegInf = Tensor.ofArray [| Double.NegativeInfinity; Double.NegativeInfinity |]
    Assert.Equal(Double.NegativeInfinity, Tensor.toScalar (Tensor.logsumexp allNegInf))
    Assert.Equal(Double.NegativeInfinity, Tensor.toScalar (Tensor.logsumexp (Tensor.toFloat32 allNegInf)))
    // one row all −∞, the other finite: −∞ and the row's value, with a finite gradient in the finite row
    let rows = Tensor.create [| 2; 2 |] [| Double.NegativeInfinity; Double.NegativeInfinity; 0.5; -1.0 |]
    assertClose 1e-15 [| Double.NegativeInfinity; Math.Log(Math.Exp 0.5 + Math.Exp -1.0) |] (Tensor.toArray (Tensor.logsumexpAxes [| 1 |] false rows))

/// log Σ exp of the terms on the host, shifted by their max; −∞ where every term is −∞.
let private hostLogSumExp (terms: float[]) =
    let m = Array.max terms
    if Double.IsNegativeInfinity m then m else m + Math.Log(terms |> Array.sumBy (fun v -> Math.Exp(v - m)))

let ``logsumexpOf: element-wise over broadcast terms, stable at the extremes, float64 and float32`` () =
    // [2, 3], [3] and a scalar broadcast together
    let a = randomTensor 11 [| 2; 3 |] -3.0 3.0
    let b = randomTensor 12 [| 3 |] -3.0 3.0
    let av, bv = Tensor.toArray a, Tensor.toArray b
    let expected = Array.init 6 (fun i -> hostLogSumExp [| av.[i]; bv.[i % 3]; 0.7 |])
    let got = Tensor.logsumexpOf [ a; b; Tensor.scalar 0.7 ]
    Assert.Equal<int[]>([| 2; 3 |], got.Shape)
    assertClose 1e-14 expected (Tensor.toArray got)
    let got32 = Tensor.logsumexpOf [ Tensor.toFloat32 a; Tensor.toFloat32 b; Tensor.toFloat32 (Tensor.scalar 0.7) ]
    Assert.Equal(Float32, got32.Dtype)
    assertClose 1e-6 expected (Tensor.toArray got32)
    // every term −∞ (−∞, not NaN), one term −∞, terms ±1e300 and 1e6 apart, 1e6 apart at 1e300
    let ninf = Double.NegativeInfinity
    let p = [| ninf; ninf; 1e300; -1e300; 0.0; 1e6; 1e300 |]
    let q = [| ninf; 2.0; 1e300; -1e300; -1e6; 0.0; 1e300 - 1e6 |]
    let expected2 = Array.map2 (fun x y -> hostLogSumExp [| x; y |]) p q
    Assert.Equal(ninf, expected2.[0])
    assertClose 1e-15 expected2 (Tensor.toArray (Tensor.logsumexpOf [ Tensor.ofArray p; Tensor.ofArray q ]))
    // float32: every term −∞ and the float32 extremes
    let p32 = [| ninf; ninf; 3e38; -3e38; 0.0 |]
    let q32 = [| ninf; 2.0; 3e38; -3e38; -1e6 |]
    let f32 (v: float[]) = Tensor.toFloat32 (Tensor.ofArray v)
    let got2 = Tensor.toArray (Tensor.logsumexpOf [ f32 p32; f32 q32 ])
    Assert.Equal(ninf, got2.[0])
    assertClose 1e-6 (Array.map2 (fun x y -> hostLogSumExp [| float (float32 x); float (float32 y) |]) p32 q32) got2
    // one term: itself
    Expect.isTrue (obj.ReferenceEquals(a, Tensor.logsumexpOf [ a ])) "one term is returned as it is"

let ``matmul against a triple loop`` () =
    let a = randomTensor 4 [| 3; 5; 7 |] -1.0 1.0
    let b = randomTensor 5 [| 7; 2 |] -1.0 1.0
    let av = Tensor.toArray a
    let bv = Tensor.toArray b
    let expected =
        [| for bt in 0 .. 2 do
               for i in 0 .. 4 do
                   for j in 0 .. 1 -> Seq.sum (seq { for p in 0 .. 6 -> av.[(bt * 5 + i) * 7 + p] * bv.[p * 2 + j] }) |]
    assertClose 1e-14 expected (Tensor.toArray (Tensor.matmul a b))
    Assert.Equal<int[]>([| 5 |], (Tensor.matmul (Tensor.ones [| 5; 7 |]) (Tensor.ones [| 7 |])).Shape)
    Assert.Equal(7.0, Tensor.toScalar (Tensor.matmul (Tensor.ones [| 7 |]) (Tensor.ones [| 7 |])))

let ``float32 tensors compute in float32 storage`` () =
    let a = Tensor.ofArrayF32 [| 1.5f; -2.0f |]
    let b = Tensor.ofArrayF32 [| 0.25f; 4.0f |]
    let c = a * b + 1.0
    Assert.Equal(Float32, c.Dtype)
    Assert.Equal<float32[]>([| 1.375f; -7.0f |], Tensor.toArrayF32 c)
    // mixing float32 and float64 promotes to float64
    Assert.Equal(Float64, (a + Tensor.ofArray [| 1.0; 1.0 |]).Dtype)
    let m = Tensor.matmul (Tensor.createF32 [| 2; 2 |] [| 1.0f; 2.0f; 3.0f; 4.0f |]) (Tensor.ofArrayF32 [| 1.0f; 1.0f |])
    Assert.Equal(Float32, m.Dtype)
    Assert.Equal<float32[]>([| 3.0f; 7.0f |], Tensor.toArrayF32 m)

let ``layout ops against direct indexing`` () =
    let x = Tensor.create [| 2; 3 |] [| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0 |]
    Assert.Equal<float[]>([| 1.0; 4.0; 2.0; 5.0; 3.0; 6.0 |], Tensor.toArray (Tensor.transpose x))
    Assert.Equal<float[]>([| 2.0; 3.0; 5.0; 6.0 |], Tensor.toArray (Tensor.narrow 1 1 2 x))
    Assert.Equal<float[]>([| 4.0; 5.0; 6.0 |], Tensor.toArray (Tensor.select 0 1 x))
    Assert.Equal<float[]>([| 1.0; 3.0; 6.0; 4.0; 9.0; 15.0 |], Tensor.toArray (Tensor.cumsum 1 x))
    Assert.Equal<float[]>([| 1.0; 2.0; 3.0; 5.0; 7.0; 9.0 |], Tensor.toArray (Tensor.cumsum 0 x))
    let c = Tensor.concat 0 [ x; Tensor.ones [| 1; 3 |] ]
    Assert.Equal<int[]>([| 3; 3 |], c.Shape)
    Assert.Equal<float[]>([| 1.0; 2.0; 3.0; 4.0; 5.0; 6.0; 1.0; 1.0; 1.0 |], Tensor.toArray c)
    let s = Tensor.stack 1 [ Tensor.ofArray [| 1.0; 2.0 |]; Tensor.ofArray [| 3.0; 4.0 |] ]
    Assert.Equal<float[]>([| 1.0; 3.0; 2.0; 4.0 |], Tensor.toArray s)
    let p = Tensor.permute [| 2; 0; 1 |] (Tensor.reshape [| 1; 2; 3 |] x)
    Assert.Equal<int[]>([| 3; 1; 2 |], p.Shape)
    Assert.Equal<float[]>([| 1.0; 4.0; 2.0; 5.0; 3.0; 6.0 |], Tensor.toArray p)
    let b = Tensor.broadcastTo [| 2; 2; 3 |] x
    Assert.Equal<float[]>(Array.append (Tensor.toArray x) (Tensor.toArray x), Tensor.toArray b)

let ``gather and scatterAdd`` () =
    let table = Tensor.create [| 3; 2 |] [| 0.0; 1.0; 10.0; 11.0; 20.0; 21.0 |]
    let idx = Tensor.createI32 [| 2; 2 |] [| 2; 0; 2; 1 |]
    let e = Tensor.embedding table idx
    Assert.Equal<int[]>([| 2; 2; 2 |], e.Shape)
    Assert.Equal<float[]>([| 20.0; 21.0; 0.0; 1.0; 20.0; 21.0; 10.0; 11.0 |], Tensor.toArray e)
    // a one-row batch of indices works (BLayers 0.3.0 failed on it)
    Assert.Equal<int[]>([| 1; 2 |], (Tensor.embedding table (Tensor.ofInts [| 1 |])).Shape)
    let sa = Tensor.scatterAdd 0 3 (Tensor.ofInts [| 2; 0; 2 |]) (Tensor.ofArray [| 1.0; 2.0; 3.0 |])
    Assert.Equal<float[]>([| 2.0; 0.0; 4.0 |], Tensor.toArray sa)
    let ex = Assert.Throws<IndexOutOfRangeException>(fun () -> Tensor.embedding table (Tensor.ofInts [| 3 |]) |> ignore)
    Assert.Contains("index 3", ex.Message)

let ``comparisons, where and clamp`` () =
    let a = Tensor.ofArray [| 1.0; 2.0; 3.0 |]
    let b = Tensor.ofArray [| 3.0; 2.0; 1.0 |]
    Assert.Equal<bool[]>([| true; false; false |], Tensor.toBools (Tensor.lt a b))
    Assert.Equal<bool[]>([| true; true; false |], Tensor.toBools (Tensor.le a b))
    Assert.Equal<bool[]>([| false; false; true |], Tensor.toBools (Tensor.gt a b))
    Assert.Equal<bool[]>([| false; true; true |], Tensor.toBools (Tensor.ge a b))
    Assert.Equal<bool[]>([| false; true; false |], Tensor.toBools (Tensor.eq a b))
    Assert.Equal<bool[]>([| true; false; true |], Tensor.toBools (Tensor.ne a b))
    Assert.Equal(Bool, (Tensor.lt a b).Dtype)
    Assert.Equal<float[]>([| 1.0; 2.0; 1.0 |], Tensor.toArray (Tensor.where (Tensor.lt a b) a b |> Tensor.minimum a))
    Assert.Equal<float[]>([| 1.5; 2.0; 2.5 |], Tensor.toArray (Tensor.clamp 1.5 2.5 a))

let ``conversions round trip`` () =
    let a2 = array2D [ [ 1.0; 2.0 ]; [ 3.0; 4.0 ] ]
    let t = Tensor.ofArray2D a2
    Assert.Equal<int[]>([| 2; 2 |], t.Shape)
    Assert.Equal<float[,]>(a2, Tensor.toArray2D t)
    Assert.Equal(0, (Tensor.scalar 3.0).Rank)
    Assert.Equal(3.0, Tensor.toScalar (Tensor.scalar 3.0))
    Assert.Equal<int[]>([| 1; 2 |], Tensor.toInts (Tensor.ofInts [| 1; 2 |]))
    Assert.Equal<float32[]>([| 1.0f; 2.0f |], Tensor.toArrayF32 (Tensor.toFloat32 (Tensor.ofArray [| 1.0; 2.0 |])))
    Assert.Equal<float[]>([| 1.0; 0.0 |], Tensor.toArray (Tensor.ofBools [| true; false |]))
    // the tensor does not alias the caller's array
    let data = [| 1.0; 2.0 |]
    let t2 = Tensor.ofArray data
    data.[0] <- 99.0
    Assert.Equal(1.0, (Tensor.toArray t2).[0])

[<Tests>]
let tests =
    testList "OpValueTests" [
        testCase "element-wise functions against System.Math" ``element-wise functions against System.Math``
        testCase "log1p and expm1 are accurate for tiny arguments" ``log1p and expm1 are accurate for tiny arguments``
        testCase "softplus is stable at the extremes" ``softplus is stable at the extremes``
        testCase "special functions against MathNet" ``special functions against MathNet``
        testCase "binary ops with broadcasting against loops" ``binary ops with broadcasting against loops``
        testCase "reductions against loops" ``reductions against loops``
        testCase "logsumexp and softmax are stable" ``logsumexp and softmax are stable``
        testCase "logsumexpOf: element-wise over broadcast terms, stable at the extremes, float64 and float32" ``logsumexpOf: element-wise over broadcast terms, stable at the extremes, float64 and float32``
        testCase "matmul against a triple loop" ``matmul against a triple loop``
        testCase "float32 tensors compute in float32 storage" ``float32 tensors compute in float32 storage``
        testCase "layout ops against direct indexing" ``layout ops against direct indexing``
        testCase "gather and scatterAdd" ``gather and scatterAdd``
        testCase "comparisons, where and clamp" ``comparisons, where and clamp``
        testCase "conversions round trip" ``conversions round trip``
    ]
