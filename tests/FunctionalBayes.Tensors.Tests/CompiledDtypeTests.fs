/// Float32 and int32 values computed from float64 parameters in compiled programs: casts are the tape's
/// casts; a float32 MLP and likelihood agree with the tape within float32 rounding; a float32 result is a
/// float32 value; an index computed from a parameter gathers exactly, and out of range raises as on the tape;
/// rebinding and threads stay bit-identical.
module FunctionalBayes.Tensors.Tests.CompiledDtypeTests

open System
open System.Linq.Expressions
open System.Threading.Tasks
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

let private bits (a: float[]) = a |> Array.map BitConverter.DoubleToInt64Bits

let private evaluate (e: CompiledEvaluator) (p: float[]) =
    let g = Array.zeroCreate p.Length
    let v = e.Evaluate(ReadOnlySpan p, Span g)
    v, g

let private tape (f: Tensor[] -> Tensor) (shapes: int[][]) (data: Tensor[]) (p: float[]) =
    let mutable at = 0
    let ps =
        shapes |> Array.map (fun s ->
            let n = Shape.size s
            let t = Tensor.create s p.[at .. at + n - 1]
            at <- at + n
            t)
    let v, g = Autodiff.valueAndGradN (fun xs -> f (Array.append xs data)) ps
    Tensor.toScalar (Tensor.cast Float64 v), g |> Array.collect (Tensor.cast Float64 >> Tensor.toArray)

let private compiled (what: string) (f: Tensor[] -> Tensor) (first: Tensor[]) (data: Tensor[]) =
    let second = first |> Array.map (fun t -> Tensor.create t.Shape (Tensor.toArray t |> Array.map (fun v -> 0.3 - 0.9 * v)))
    match Compiler.compile f first second data with
    | Error why -> failwithf "%s: not compiled: %s" what why
    | Ok cg -> cg

/// Four evaluators on four threads at once give one evaluator's bits.
let private threadsAgree (what: string) (b: CompiledBinding) (points: float[][]) =
    let run () = let e = b.CreateEvaluator() in points |> Array.map (evaluate e)
    let single = run ()
    for res in Task.WhenAll(Array.init 4 (fun _ -> Task.Run(fun () -> run ()))).Result do
        Array.iter2 (fun (v1: float, g1: float[]) (v2: float, g2: float[]) ->
            if BitConverter.DoubleToInt64Bits v1 <> BitConverter.DoubleToInt64Bits v2 || bits g1 <> bits g2 then
                failwithf "%s: a thread's result differs from one thread's." what) single res

let ``a cast in a compiled program is the tape's cast, at edge values`` () =
    let edge = [| 0.0; -0.0; 0.7; -0.7; 1.5; -2.5; 0.1; 16777217.0; 3.4028235677973366e38; 1e39; -1e39
                  2147483647.4; 2147483648.0; -2147483649.0; 1e300; Double.PositiveInfinity; Double.NegativeInfinity; Double.NaN; 5e-324 |]
    let p = Expression.Parameter(typeof<float>, "v")
    for dt in [ Float64; Float32; Dtype.Int32; Bool ] do
        let onTape = Tensor.toArray (Tensor.cast Float64 (Tensor.cast dt (Tensor.ofArray edge)))
        let byValue = edge |> Array.map (Ops.castValue dt)
        let expr = Expression.Lambda<Func<float, float>>(Ops.castExpr dt p, [| p |]).Compile()
        let byExpr = edge |> Array.map expr.Invoke
        Assert.Equal<int64[]>(bits onTape, bits byValue)
        Assert.Equal<int64[]>(bits onTape, bits byExpr)
        // from float32 and int32 sources, as the program holds them
        for src in [ Float32; Dtype.Int32 ] do
            let held = Tensor.toArray (Tensor.cast Float64 (Tensor.cast src (Tensor.ofArray edge)))
            let onTape = Tensor.toArray (Tensor.cast Float64 (Tensor.cast dt (Tensor.cast src (Tensor.ofArray edge))))
            let changes = Ops.castChanges src dt
            let byValue = held |> Array.map (fun v -> if changes then Ops.castValue dt v else v)
            Assert.Equal<int64[]>(bits onTape, bits byValue)

// ---- an index computed from a parameter ----------------------------------------------------------

/// a [m] picks rows of the table t [5] at int(clamp(5·σ(a))) (and unclamped int(3·a) when `raw`); the
/// indices also count (lgamma of index + 1, no gradient through the cast).
let private indexModel (raw: bool) (xs: Tensor[]) =
    let a, t, w = xs.[0], xs.[1], xs.[2]
    let idx =
        if raw then Tensor.cast Dtype.Int32 (a * 3.0)
        else Tensor.cast Dtype.Int32 (Tensor.clamp 0.0 4.5 (Tensor.sigmoid a * 5.0))
    let count = Tensor.cast Float64 idx
    Tensor.sum (Tensor.indexSelect 0 idx t * w) + Tensor.sum (Tensor.lgamma (count + 1.0)) * Tensor.sum (t * t) + Tensor.sum (a * a)

let ``an index computed from a parameter gathers exactly: compiled = tape, small and kernel paths`` () =
    for m in [ 3; 80 ] do
        let w = randomTensor (10 + m) [| m |] -1.0 1.0
        let shapes = [| [| m |]; [| 5 |] |]
        let f = indexModel false
        let first = [| randomTensor m [| m |] -2.0 2.0; randomTensor (m + 1) [| 5 |] -1.0 1.0 |]
        let cg = compiled (sprintf "index, m = %d" m) f first [| w |]
        let e = cg.Bind([| w |]).CreateEvaluator()
        let points = Array.init 4 (fun s -> Array.append (randomArray (100 * m + s) m -3.0 3.0) (randomArray (7 * m + s) 5 -1.0 1.0))
        let picked (p: float[]) = p.[.. m - 1] |> Array.map (fun a -> int (min 4.5 (max 0.0 (5.0 / (1.0 + exp -a)))))
        // the points pick different rows: the program follows them, nothing is frozen at the traced indices
        Expect.isTrue (points |> Array.map picked |> Array.distinct |> Array.length > 1) "the points pick different rows"
        for p in points do
            let v, g = evaluate e p
            let tv, tg = tape f shapes [| w |] p
            assertClose 1e-13 [| tv |] [| v |]
            assertClose 1e-13 tg g
        threadsAgree (sprintf "index, m = %d" m) (cg.Bind [| w |]) points

let ``an index from a parameter out of range raises as on the tape`` () =
    let w = randomTensor 4 [| 3 |] -1.0 1.0
    let f = indexModel true
    // traced at a = (0.1, 0.5, 0.2) and (0.21, -0.15, 0.12): indices in range at both
    let cg = compiled "raw index" f [| Tensor.ofArray [| 0.1; 0.5; 0.2 |]; randomTensor 5 [| 5 |] -1.0 1.0 |] [| w |]
    let e = cg.Bind([| w |]).CreateEvaluator()
    let inside = [| 0.1; 0.5; 1.0; 0.3; -0.2; 0.4; 0.9; -1.0 |]
    let v, g = evaluate e inside
    let tv, tg = tape f [| [| 3 |]; [| 5 |] |] [| w |] inside
    assertClose 1e-13 [| tv |] [| v |]
    assertClose 1e-13 tg g
    // int(3 · 2.1) = 6 is outside the table's 5 rows
    let outside = [| 0.1; 2.1; 1.0; 0.3; -0.2; 0.4; 0.9; -1.0 |]
    let onTape = Assert.Throws<IndexOutOfRangeException>(fun () -> tape f [| [| 3 |]; [| 5 |] |] [| w |] outside |> ignore)
    let inProgram = Assert.Throws<IndexOutOfRangeException>(fun () -> evaluate e outside |> ignore)
    Assert.Equal(onTape.Message, inProgram.Message)
    Assert.Contains("index 6", inProgram.Message)
    // the evaluator is still good after the refused point
    let v2, g2 = evaluate e inside
    Assert.Equal(BitConverter.DoubleToInt64Bits v, BitConverter.DoubleToInt64Bits v2)
    Assert.Equal<int64[]>(bits g, bits g2)

// ---- a float32 MLP with float64 latent weights ------------------------------------------------------

let private d, h = 3, 8

/// Weights w1 [d, h], b1 [h], w2 [h, 1], log σ [1] (float64 parameters, priors in float64); the network
/// and a normal likelihood of y [n] given x [n, d] in float32 (x and y float32 data).
let private mlp (f32: bool) (xs: Tensor[]) =
    let w1, b1, w2, ls, x, y = xs.[0], xs.[1], xs.[2], xs.[3], xs.[4], xs.[5]
    let c (t: Tensor) = if f32 then Tensor.cast Float32 t else Tensor.cast Float64 t
    let x, y = c x, c y
    let hid = Tensor.tanh (Tensor.matmul x (c w1) + c b1)
    let mu = Tensor.reshape [| y.Shape.[0] |] (Tensor.matmul hid (c w2))
    let s = Tensor.exp (c ls)
    let z = (y - mu) / s
    let ll = Tensor.sum (-0.5 * z * z - Tensor.log s)
    Tensor.cast Float64 ll - 0.5 * (Tensor.sum (w1 * w1) + Tensor.sum (b1 * b1) + Tensor.sum (w2 * w2) + Tensor.sum (ls * ls))

let private mlpShapes = [| [| d; h |]; [| h |]; [| h; 1 |]; [| 1 |] |]

let private mlpData (seed: int) (n: int) =
    [| Tensor.cast Float32 (randomTensor seed [| n; d |] -1.5 1.5); Tensor.cast Float32 (randomTensor (seed + 1) [| n |] -2.0 2.0) |]

/// Compiled (float32 inside) against the tape of the same function: each float32 op's value in the program
/// is its float64 value rounded once to float32, the tape's is its float32 kernel's (within a few float32
/// ulps, 2^-24 ≈ 6e-8 relative; a product of k ≤ 8 terms accumulates k roundings); through about ten ops
/// that is under 1e-5 relative to the sizes involved, so 2e-5 (the float32 tolerance of the op-table tests)
/// bounds value and gradient.
let ``a float32 MLP on float64 latent weights: compiled = tape within float32 rounding, rebind and threads bit-identical`` () =
    for n in [ 4; 40 ] do
        let data1, data2 = mlpData (3 * n) n, mlpData (5 * n) n
        let f = mlp true
        let dim = mlpShapes |> Array.sumBy Shape.size
        let first = mlpShapes |> Array.mapi (fun i s -> randomTensor (20 + i) s -0.8 0.8)
        let cg = compiled (sprintf "mlp, n = %d" n) f first data1
        let e = cg.Bind(data1).CreateEvaluator()
        let points = Array.init 3 (fun s -> randomArray (40 + s) dim -0.8 0.8)
        for p in points do
            let v, g = evaluate e p
            let tv, tg = tape f mlpShapes data1 p
            try
                assertClose 2e-5 [| tv |] [| v |]
                let scale = tg |> Array.map abs |> Array.max
                assertClose 2e-5 (tg |> Array.map (fun x -> x / scale)) (g |> Array.map (fun x -> x / scale))
            with ex -> failwithf "mlp, n = %d: compiled against the tape: %s" n ex.Message
        // rebound in place = a fresh binding, bit for bit; and = the tape on the new data
        e.Rebind data2
        let fresh = cg.Bind(data2).CreateEvaluator()
        for p in points do
            let v, g = evaluate e p
            let fv, fg = evaluate fresh p
            Assert.Equal(BitConverter.DoubleToInt64Bits fv, BitConverter.DoubleToInt64Bits v)
            Assert.Equal<int64[]>(bits fg, bits g)
            let tv, _ = tape f mlpShapes data2 p
            assertClose 2e-5 [| tv |] [| v |]
        threadsAgree (sprintf "mlp, n = %d" n) (cg.Bind data2) points

/// A function that returns float32 (no cast back) compiles: its value is a float32 value (the program rounds
/// its float32 ops), the tape's float32 value (a sum of
/// 100 float32 products: the program sums them in float64 and rounds once, the tape in float32 kernels, so
/// within 100 roundings of 2^-24 of Σ|terms|: 1e-5 relative to 1 + |value|, as |terms| ≤ 1).
let ``a function returning float32 compiles, its value the tape's within float32 rounding`` () =
    let w = Tensor.cast Float32 (randomTensor 8 [| 100 |] -1.0 1.0)
    let f (xs: Tensor[]) = Tensor.sum (Tensor.sin (Tensor.cast Float32 xs.[0]) * xs.[1])
    let p = randomArray 9 100 -1.0 1.0
    let cg = compiled "float32 result" f [| Tensor.ofArray p |] [| w |]
    let v, g = evaluate (cg.Bind([| w |]).CreateEvaluator()) p
    let tv, tg = tape f [| [| 100 |] |] [| w |] p
    Assert.Equal(float (float32 v), v)
    assertClose 1e-5 [| tv |] [| v |]
    assertClose 1e-5 tg g

[<Tests>]
let tests =
    testList "CompiledDtypeTests" [
        testCase "a cast in a compiled program is the tape's cast, at edge values" ``a cast in a compiled program is the tape's cast, at edge values``
        testCase "an index computed from a parameter gathers exactly: compiled = tape, small and kernel paths" ``an index computed from a parameter gathers exactly: compiled = tape, small and kernel paths``
        testCase "an index from a parameter out of range raises as on the tape" ``an index from a parameter out of range raises as on the tape``
        testCase "a function returning float32 compiles, its value the tape's within float32 rounding" ``a function returning float32 compiles, its value the tape's within float32 rounding``
        testCase "a float32 MLP on float64 latent weights: compiled = tape within float32 rounding, rebind and threads bit-identical" ``a float32 MLP on float64 latent weights: compiled = tape within float32 rounding, rebind and threads bit-identical``
    ]
