/// The CPU backend's native float32 kernels (element-wise, comparisons, where, clamp, reductions) against
/// float64 formulas evaluated here, and float32 gradients against float64 ones.
module FunctionalBayes.Tensors.Tests.Float32KernelTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// Deterministic float32 test data (rounded from float64 draws).
let private f32Data (seed: int) (n: int) (lo: float) (hi: float) = randomArray seed n lo hi |> Array.map float32

let private f32 (shape: int[]) (a: float32[]) = Tensor.createF32 shape a

/// Bitwise equality of float32 arrays (NaN equal to NaN).
let private assertBits (what: string) (expected: float32[]) (actual: float32[]) =
    Assert.Equal(expected.Length, actual.Length)
    for i in 0 .. expected.Length - 1 do
        let e = expected.[i]
        let a = actual.[i]
        if not ((Single.IsNaN e && Single.IsNaN a) || BitConverter.SingleToInt32Bits e = BitConverter.SingleToInt32Bits a) then
            failwithf "%s, element %d: expected %.9g, got %.9g" what i e a

/// Within `ulps` float32 units in the last place of the expected value (or 1e-37 absolute).
let private assertUlps (what: string) (ulps: float) (expected: float[]) (actual: float32[]) =
    Assert.Equal(expected.Length, actual.Length)
    for i in 0 .. expected.Length - 1 do
        let e = expected.[i]
        let a = float actual.[i]
        let ulp = max (abs e * 5.96e-8) 1e-37
        let ok = (Double.IsNaN e && Double.IsNaN a) || e = a || abs (e - a) <= ulps * ulp
        if not ok then failwithf "%s, element %d: expected %.9g, got %.9g (%g ulp allowed)" what i e a ulps

// The shapes that reach each kernel path: same shape, a scalar on either side, a broadcast row.
let private n = 1037   // not a multiple of any vector width
let private a = f32Data 11 n -3.0 3.0
let private b = f32Data 12 n 0.25 2.0
let private rowShape = [| 17; 61 |]   // 17·61 = 1037
let private row = f32Data 13 61 -1.5 1.5

let ``exactly rounded float32 ops equal the float64 result rounded once`` () =
    // Add, sub, mul, div, sqrt, max, min, neg, abs, relu are exactly rounded in float32, and a float64
    // result of float32 inputs rounded to float32 is the same value (no double rounding for these).
    let ta = f32 [| n |] a
    let tb = f32 [| n |] b
    let bin (name: string) (op: Tensor -> Tensor -> Tensor) (f: float -> float -> float) =
        assertBits (name + " (same shape)") (Array.map2 (fun x y -> float32 (f (float x) (float y))) a b) (Tensor.toArrayF32 (op ta tb))
        let s = b.[5]
        assertBits (name + " (scalar right)") (a |> Array.map (fun x -> float32 (f (float x) (float s)))) (Tensor.toArrayF32 (op ta (Tensor.scalarF32 s)))
        assertBits (name + " (scalar left)") (a |> Array.map (fun x -> float32 (f (float s) (float x)))) (Tensor.toArrayF32 (op (Tensor.scalarF32 s) ta))
        let m = f32 rowShape a
        let expected = Array.init n (fun k -> float32 (f (float a.[k]) (float row.[k % 61])))
        assertBits (name + " (broadcast row)") expected (Tensor.toArrayF32 (op m (f32 [| 61 |] row)))
    bin "add" (+) (+)
    bin "sub" (-) (-)
    bin "mul" (*) (*)
    bin "div" (/) (/)
    bin "maximum" Tensor.maximum (fun x y -> Math.Max(x, y))
    bin "minimum" Tensor.minimum (fun x y -> Math.Min(x, y))
    let un (name: string) (op: Tensor -> Tensor) (f: float -> float) (xs: float32[]) =
        assertBits name (xs |> Array.map (fun x -> float32 (f (float x)))) (Tensor.toArrayF32 (op (f32 [| xs.Length |] xs)))
    un "neg" Tensor.neg (fun x -> -x) a
    un "abs" Tensor.abs Math.Abs a
    un "relu" Tensor.relu (fun x -> Math.Max(x, 0.0)) a
    un "sqrt" Tensor.sqrt Math.Sqrt b
    un "sign" Tensor.sign (fun x -> float (Math.Sign x)) a
    un "clamp" (Tensor.clamp -1.0 0.5) (fun x -> Math.Min(Math.Max(x, -1.0), 0.5)) a
    // NaN propagates
    let withNan = [| 1.0f; Single.NaN; -2.0f |]
    let r = Tensor.toArrayF32 (Tensor.relu (f32 [| 3 |] withNan))
    Expect.isTrue (Single.IsNaN r.[1]) "relu keeps NaN"
    Assert.Equal(box Float32, box (Tensor.relu (f32 [| 3 |] withNan)).Dtype)

let ``float32 transcendental functions are within a few ulp of float64`` () =
    let ta = f32 [| n |] a
    let tb = f32 [| n |] b
    let wide = f32Data 14 n -30.0 30.0
    let tw = f32 [| n |] wide
    let dbl (xs: float32[]) (f: float -> float) = xs |> Array.map (fun x -> f (float x))
    assertUlps "exp" 4.0 (dbl a Math.Exp) (Tensor.toArrayF32 (Tensor.exp ta))
    assertUlps "log" 4.0 (dbl b Math.Log) (Tensor.toArrayF32 (Tensor.log tb))
    assertUlps "tanh" 4.0 (dbl a Math.Tanh) (Tensor.toArrayF32 (Tensor.tanh ta))
    assertUlps "sigmoid" 4.0 (dbl wide (fun x -> 1.0 / (1.0 + Math.Exp -x))) (Tensor.toArrayF32 (Tensor.sigmoid tw))
    // log(1 + u) for u = exp(−|x|) ≤ 1, by its series where 1 + u would round (u < 1e-4: error < u⁴/4)
    let log1pRef (u: float) = if u < 1e-4 then u - u * u / 2.0 + u * u * u / 3.0 else Math.Log(1.0 + u)
    assertUlps "softplus" 4.0 (dbl wide (fun x -> Math.Max(x, 0.0) + log1pRef (Math.Exp(-(abs x))))) (Tensor.toArrayF32 (Tensor.softplus tw))
    assertUlps "log1p" 1.0 (dbl b (fun x -> Math.Log(1.0 + x))) (Tensor.toArrayF32 (Tensor.log1p tb))
    assertUlps "expm1" 1.0 (dbl a (fun x -> Math.Exp x - 1.0)) (Tensor.toArrayF32 (Tensor.expm1 ta))
    assertUlps "lgamma" 2.0 (dbl b MathNet.Numerics.SpecialFunctions.GammaLn) (Tensor.toArrayF32 (Tensor.lgamma tb))
    assertUlps "erf" 1.0 (dbl a MathNet.Numerics.SpecialFunctions.Erf) (Tensor.toArrayF32 (Tensor.erf ta))
    assertUlps "pow" 4.0 (Array.map2 (fun x y -> Math.Pow(float x, float y)) b a) (Tensor.toArrayF32 (Tensor.pow tb ta))

let ``comparisons and where on the flat paths agree with loops, float32 and float64`` () =
    for dt in [ Float32; Float64 ] do
        let ta = f32 [| n |] a |> Tensor.cast dt
        let tb = f32 [| n |] b |> Tensor.cast dt
        let s = float a.[7]
        let ts = Tensor.fullOf dt [||] s
        let boolsOf (t: Tensor) = Tensor.cast Float64 t |> Tensor.toArray |> Array.map (fun v -> v = 1.0)
        let expectMask (f: float -> float -> bool) (xs: float[]) (ys: float[]) = Array.map2 f xs ys
        let av = a |> Array.map float
        let bv = b |> Array.map float
        let sv = Array.create n s
        Assert.Equal<bool[]>(expectMask (>) av bv, boolsOf (Tensor.gt ta tb))
        Assert.Equal<bool[]>(expectMask (<=) av sv, boolsOf (Tensor.le ta ts))
        Assert.Equal<bool[]>(expectMask (<) sv av, boolsOf (Tensor.lt ts ta))
        Assert.Equal<bool[]>(expectMask (=) av sv, boolsOf (Tensor.eq ta ts))
        // broadcast (general path)
        let m = Tensor.reshape rowShape ta
        let r = f32 [| 61 |] row |> Tensor.cast dt
        Assert.Equal<bool[]>(Array.init n (fun k -> av.[k] > float row.[k % 61]), boolsOf (Tensor.gt m r))
        // where: full branches, a scalar branch on either side, broadcast
        let mask = Tensor.gt ta (Tensor.fullOf dt [||] 0.0)
        let pick (x: int -> float) (y: int -> float) = Array.init n (fun k -> if av.[k] > 0.0 then x k else y k)
        let asF64 (t: Tensor) = Tensor.toFloat64 t |> Tensor.toArray
        Assert.Equal<float[]>(pick (fun k -> av.[k]) (fun k -> bv.[k]), asF64 (Tensor.where mask ta tb))
        Assert.Equal<float[]>(pick (fun k -> av.[k]) (fun _ -> 0.0), asF64 (Tensor.where mask ta (Tensor.fullOf dt [||] 0.0)))
        Assert.Equal<float[]>(pick (fun _ -> 2.0) (fun k -> bv.[k]), asF64 (Tensor.where mask (Tensor.fullOf dt [||] 2.0) tb))
        let mm = Tensor.reshape rowShape mask
        Assert.Equal<float[]>(pick (fun k -> float row.[k % 61]) (fun _ -> -1.0), asF64 (Tensor.where mm r (Tensor.fullOf dt [||] -1.0)))
        Assert.Equal(box dt, box (Tensor.where mask ta tb).Dtype)

let ``float32 sums and maxima agree with float64 loops`` () =
    // A row of 100,003 values (many accumulation blocks): the float64-accumulated sum is within one
    // float32 rounding of the exact sum of the float32 values.
    let big = f32Data 15 100_003 -1.0 1.0
    let exact = big |> Array.sumBy float
    let s = Tensor.sum (f32 [| big.Length |] big) |> Tensor.toArrayF32
    Assert.Equal(float32 exact, s.[0])
    // Column sums (axis 0 of 17×61) accumulate in float32 over 17 rows: within 17 roundings.
    let m = f32 rowShape a
    let colExpected = Array.init 61 (fun j -> Seq.sum (seq { for i in 0 .. 16 -> float a.[i * 61 + j] }))
    let colTol = 17.0 * 5.96e-8 * (a |> Array.map (fun v -> abs (float v)) |> Array.max)
    let cols = Tensor.sumAxes [| 0 |] false m |> Tensor.toArrayF32
    for j in 0 .. 60 do
        if abs (float cols.[j] - colExpected.[j]) > colTol then failwithf "column %d: expected %g, got %g" j colExpected.[j] cols.[j]
    // Row sums and maxima, all axes
    let rows = Tensor.sumAxes [| 1 |] false m |> Tensor.toArrayF32
    let rowExpected = Array.init 17 (fun i -> float32 (Seq.sum (seq { for j in 0 .. 60 -> float a.[i * 61 + j] })))
    assertBits "row sums" rowExpected rows
    assertBits "row maxima" (Array.init 17 (fun i -> Array.max a.[i * 61 .. i * 61 + 60])) (Tensor.maxAxes [| 1 |] false m |> Tensor.toArrayF32)
    assertBits "column maxima" (Array.init 61 (fun j -> Seq.max (seq { for i in 0 .. 16 -> a.[i * 61 + j] }))) (Tensor.maxAxes [| 0 |] false m |> Tensor.toArrayF32)
    Assert.Equal(float32 (a |> Array.sumBy float), (Tensor.sum m |> Tensor.toArrayF32).[0])
    Assert.Equal(box Float32, box (Tensor.sum m).Dtype)

let ``float32 gradients agree with float64 gradients through the fast kernels`` () =
    // A dense layer with bias, ReLU, softplus and a Bernoulli-logits likelihood: every op of the VAE's
    // hot path (matmul, broadcast add, relu's mask and where, softplus and its sigmoid, sums).
    let x = randomTensor 21 [| 9; 7 |] -1.0 1.0
    let y = randomTensor 22 [| 9; 5 |] 0.0 1.0
    let w = randomTensor 23 [| 7; 5 |] -1.0 1.0
    let bias = randomTensor 24 [| 5 |] -0.5 0.5
    let loss (dt: Dtype) (ps: Tensor[]) =
        let h = Tensor.relu (Tensor.matmul (Tensor.cast dt x) ps.[0] + ps.[1])
        Tensor.sum (Tensor.softplus h - Tensor.cast dt y * h)
    let grads dt = Autodiff.gradN (loss dt) [| Tensor.cast dt w; Tensor.cast dt bias |]
    let g64 = grads Float64
    let g32 = grads Float32
    for k in 0 .. 1 do
        Assert.Equal(box Float32, box g32.[k].Dtype)
        assertClose 1e-5 (Tensor.toArray g64.[k]) (Tensor.toArray (Tensor.toFloat64 g32.[k]))

[<Tests>]
let tests =
    testList "Float32KernelTests" [
        testCase "exactly rounded float32 ops equal the float64 result rounded once" ``exactly rounded float32 ops equal the float64 result rounded once``
        testCase "float32 transcendental functions are within a few ulp of float64" ``float32 transcendental functions are within a few ulp of float64``
        testCase "comparisons and where on the flat paths agree with loops, float32 and float64" ``comparisons and where on the flat paths agree with loops, float32 and float64``
        testCase "float32 sums and maxima agree with float64 loops" ``float32 sums and maxima agree with float64 loops``
        testCase "float32 gradients agree with float64 gradients through the fast kernels" ``float32 gradients agree with float64 gradients through the fast kernels``
    ]
