/// Every op of the op table (Ops), enumerated: the tape's gradient, the compiled program's value and
/// gradient (unrolled and buffer-kernel paths) and central finite differences agree at random points,
/// in float64; float32 runs the same declarations.
module FunctionalBayes.Tensors.Tests.OpTableTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// Random points where the op is smooth: |x| in [0.2, 2.5] with either sign, or x in [0.2, 4].
let private pointIn (domain: Domain) (rng: Random) (n: int) =
    Array.init n (fun _ ->
        match domain with
        | Real -> (0.2 + 2.3 * rng.NextDouble()) * (if rng.NextDouble() < 0.5 then -1.0 else 1.0)
        | Positive -> 0.2 + 3.8 * rng.NextDouble())

/// sum(w ⊙ op(params)): one differentiable scalar per op, w a data input.
let private weighted (op: Op) (ps: Tensor[]) (w: Tensor) = Tensor.sum (Prim.Exec(op, ps) * w)

let private finiteDifference (f: Tensor[] -> float) (ps: Tensor[]) =
    ps |> Array.mapi (fun k p ->
        let a = Tensor.toArray p
        Array.init a.Length (fun i ->
            let at (d: float) =
                let b = Array.copy a
                b.[i] <- b.[i] + d
                f (ps |> Array.mapi (fun j q -> if j = k then Tensor.create p.Shape b else q))
            let h = 1e-6 * max 1.0 (abs a.[i])
            (at h - at -h) / (2.0 * h)))

/// Tape = compiled (to rounding) = finite differences (1e-6 relative), and float32's tape near float64's.
let private checkOp (op: Op) (shapes: int[][]) (domains: Domain[]) (seed: int) =
    let rng = Random(seed)
    let ps = Array.map2 (fun (s: int[]) d -> Tensor.create s (pointIn d rng (Shape.size s))) shapes domains
    let ps2 = Array.map2 (fun (s: int[]) d -> Tensor.create s (pointIn d rng (Shape.size s))) shapes domains
    let outShape = (Prim.Exec(op, ps)).Shape
    let w = Tensor.create outShape (randomArray (seed + 1) (Shape.size outShape) -1.0 1.0)
    let what = sprintf "%s on %s" op.Name (String.Join(" and ", shapes |> Array.map Shape.format))
    let value, tape = Autodiff.valueAndGradN (fun xs -> weighted op xs w) ps
    let fd = finiteDifference (fun xs -> Tensor.toScalar (weighted op xs w)) ps
    Array.iteri2 (fun k (t: Tensor) (f: float[]) ->
        try assertClose 1e-6 f (Tensor.toArray t) with e -> failwithf "%s: tape gradient %d against finite differences: %s" what k e.Message) tape fd
    match Compiler.compile (fun xs -> weighted op xs.[.. ps.Length - 1] xs.[ps.Length]) ps ps2 [| w |] with
    | Error why -> failwithf "%s: not compiled: %s" what why
    | Ok cg ->
        let e = cg.Bind([| w |]).CreateEvaluator()
        let flat = ps |> Array.collect Tensor.toArray
        let grad = Array.zeroCreate flat.Length
        let v = e.Evaluate(ReadOnlySpan flat, Span grad)
        assertClose 1e-13 [| Tensor.toScalar value |] [| v |]
        try assertClose 1e-13 (tape |> Array.collect Tensor.toArray) grad with ex -> failwithf "%s: compiled gradient against the tape: %s" what ex.Message
    // float32: the same declarations' float32 span kernels and rules
    let ps32 = ps |> Array.map (Tensor.cast Float32)
    let value32, tape32 = Autodiff.valueAndGradN (fun xs -> weighted op xs (Tensor.cast Float32 w)) ps32
    let tol32 = 2e-5
    try
        assertClose tol32 [| Tensor.toScalar value |] [| Tensor.toScalar (Tensor.cast Float64 value32) |]
        assertClose (tol32 * 10.0) (tape |> Array.collect Tensor.toArray) (tape32 |> Array.collect (Tensor.cast Float64 >> Tensor.toArray))
    with ex -> failwithf "%s: float32 against float64: %s" what ex.Message

// small shapes take the compiler's unrolled code, large ones its buffer kernels
let private unaryShapes = [ [| 5 |]; [| 2; 45 |] ]
let private binaryShapes =
    [ [| 4 |], [| 4 |]; [| 3; 4 |], [| 4 |]; [| 4 |], [||]; [| 80 |], [| 80 |]; [| 3; 30 |], [| 30 |]; [| 90 |], [||]; [||], [| 70 |]; [| 30; 1 |], [| 1; 3 |] ]

let ``every unary op: tape = compiled = finite differences, float64 and float32`` () =
    for u in Ops.allUnary do
        let d = (Ops.unary u).Decl
        for s in unaryShapes do
            match d.Vjp with
            | Ok _ -> checkOp (Unary u) [| s |] [| d.Domain |] (17 * s.Length + int (u.GetHashCode() % 1000))
            | Error why ->
                // no derivative: the tape refuses, the compiler falls back, both saying why
                let x = Tensor.create s (Array.create (Shape.size s) 1.5)
                let ex = Assert.Throws<NotSupportedException>(fun () -> Autodiff.grad (fun t -> Tensor.sum (Prim.Exec(Unary u, [| t |]))) x |> ignore)
                Assert.Equal(why, ex.Message)
                match Compiler.compile (fun xs -> Tensor.sum (Prim.Exec(Unary u, [| xs.[0] |]))) [| x |] [| x * 1.1 |] [||] with
                | Ok _ -> failwithf "%s: compiled without a derivative" (Unary u).Name
                | Error e -> Assert.Equal(why, e)

let ``every binary op: tape = compiled = finite differences, with broadcasting, float64 and float32`` () =
    for b in Ops.allBinary do
        let d = (Ops.binary b).Decl
        binaryShapes |> List.iteri (fun i (sx, sy) -> checkOp (Binary b) [| sx; sy |] [| d.Domain; Real |] (101 * i + 7))

let ``a unary op's one-pass span adjoint equals its rule`` () =
    for u in Ops.allUnary do
        let info = Ops.unary u
        match info.Decl.Adjoint, info.Decl.Vjp with
        | ValueSome adj, Ok _ ->
            let rng = Random(5)
            let n = 37
            let x = pointIn info.Decl.Domain rng n
            let o = Array.zeroCreate n
            info.Decl.Span64.Invoke(ReadOnlySpan x, Span o)
            let g = Array.init n (fun _ -> rng.NextDouble() - 0.5)
            let acc = Array.init n (fun _ -> rng.NextDouble())
            let expected = Array.init n (fun i -> acc.[i] + info.VjpScalar.Invoke(g.[i], x.[i], o.[i]))
            adj.Invoke(ReadOnlySpan x, ReadOnlySpan o, ReadOnlySpan g, ReadOnlySpan acc, Span acc, Span(Array.zeroCreate<float> n))
            assertClose 1e-15 expected acc
        | _ -> ()

[<Tests>]
let tests =
    testList "op table" [
        testCase "every unary op: tape = compiled = finite differences, float64 and float32" ``every unary op: tape = compiled = finite differences, float64 and float32``
        testCase "every binary op: tape = compiled = finite differences, with broadcasting, float64 and float32" ``every binary op: tape = compiled = finite differences, with broadcasting, float64 and float32``
        testCase "a unary op's one-pass span adjoint equals its rule" ``a unary op's one-pass span adjoint equals its rule``
    ]
