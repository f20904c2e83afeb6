/// Every op of the op table (Ops), enumerated: unary, binary, comparisons, where and clamp; and the fused
/// GLM log likelihood of every family and the categorical GLM's. The tape's
/// gradient, the compiled program's value and gradient (unrolled and buffer-kernel paths) and central
/// finite differences agree at random points, in float64; float32 runs the same declarations.
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

/// The float32 form of a data tensor (bool masks stay bool).
let private to32 (t: Tensor) = if t.Dtype = Float64 then Tensor.cast Float32 t else t

/// For `f params data` (a scalar): tape = compiled (to rounding) = central finite differences (1e-6
/// relative, when `fd`), float32's tape near float64's, and float32 compiled = float32's tape. `ps2`: the
/// second tracing point.
let private checkFn (what: string) (fd: bool) (f: Tensor[] -> Tensor[] -> Tensor) (ps: Tensor[]) (ps2: Tensor[]) (data: Tensor[]) =
    let value, tape = Autodiff.valueAndGradN (fun xs -> f xs data) ps
    if fd then
        let diffs = finiteDifference (fun xs -> Tensor.toScalar (f xs data)) ps
        Array.iteri2 (fun k (t: Tensor) (d: float[]) ->
            try assertClose 1e-6 d (Tensor.toArray t) with e -> failwithf "%s: tape gradient %d against finite differences: %s" what k e.Message) tape diffs
    match Compiler.compile (fun xs -> f xs.[.. ps.Length - 1] xs.[ps.Length ..]) ps ps2 data with
    | Error why -> failwithf "%s: not compiled: %s" what why
    | Ok cg ->
        let e = cg.Bind(data).CreateEvaluator()
        let flat = ps |> Array.collect Tensor.toArray
        let grad = Array.zeroCreate flat.Length
        let v = e.Evaluate(ReadOnlySpan flat, Span grad)
        try
            assertClose 1e-13 [| Tensor.toScalar value |] [| v |]
            assertClose 1e-13 (tape |> Array.collect Tensor.toArray) grad
        with ex -> failwithf "%s: compiled against the tape: %s" what ex.Message
    // float32: the same declarations' float32 span kernels and rules
    let value32, tape32 = Autodiff.valueAndGradN (fun xs -> f xs (Array.map to32 data)) (Array.map to32 ps)
    let tol32 = 2e-5
    try
        assertClose tol32 [| Tensor.toScalar value |] [| Tensor.toScalar (Tensor.cast Float64 value32) |]
        assertClose (tol32 * 10.0) (tape |> Array.collect Tensor.toArray) (tape32 |> Array.collect (Tensor.cast Float64 >> Tensor.toArray))
    with ex -> failwithf "%s: float32 against float64: %s" what ex.Message
    // float32 in a compiled program: float64 parameters cast to float32, the op in float32, the value cast
    // back; against the tape of the same function, to the float32 tolerance above (each op's value in the
    // program is its float64 value rounded once to float32, the tape's its float32 kernel's)
    let np = ps.Length
    let data32 = Array.map to32 data
    let f32 (xs: Tensor[]) = Tensor.cast Float64 (f (xs.[.. np - 1] |> Array.map (Tensor.cast Float32)) xs.[np ..])
    let tv32, tg32 = Autodiff.valueAndGradN (fun xs -> f32 (Array.append xs data32)) ps
    match Compiler.compile f32 ps ps2 data32 with
    | Error why -> failwithf "%s: float32 not compiled: %s" what why
    | Ok cg ->
        let e = cg.Bind(data32).CreateEvaluator()
        let flat = ps |> Array.collect Tensor.toArray
        let grad = Array.zeroCreate flat.Length
        let v = e.Evaluate(ReadOnlySpan flat, Span grad)
        try
            assertClose tol32 [| Tensor.toScalar tv32 |] [| v |]
            assertClose (tol32 * 10.0) (tg32 |> Array.collect Tensor.toArray) grad
        with ex -> failwithf "%s: float32 compiled against the float32 tape: %s" what ex.Message

/// Tape = compiled = finite differences for sum(w ⊙ op(params)) at random points of the op's domains.
let private checkOp (op: Op) (shapes: int[][]) (domains: Domain[]) (seed: int) =
    let rng = Random(seed)
    let ps = Array.map2 (fun (s: int[]) d -> Tensor.create s (pointIn d rng (Shape.size s))) shapes domains
    let ps2 = Array.map2 (fun (s: int[]) d -> Tensor.create s (pointIn d rng (Shape.size s))) shapes domains
    let outShape = (Prim.Exec(op, ps)).Shape
    let w = Tensor.create outShape (randomArray (seed + 1) (Shape.size outShape) -1.0 1.0)
    let what = sprintf "%s on %s" op.Name (String.Join(" and ", shapes |> Array.map Shape.format))
    checkFn what true (fun xs ds -> weighted op xs ds.[0]) ps ps2 [| w |]

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
        binaryShapes |> List.iteri (fun i (sx, sy) -> checkOp (Binary b) [| sx; sy |] [| d.Domain; d.DomainY |] (101 * i + 7))

/// A comparison enters a value only through its mask: sum(w ⊙ cast(a (cmp) b) ⊙ a), so a's gradient is
/// w on the mask and b's is 0.
let private masked (c: CompareOp) (ps: Tensor[]) (w: Tensor) =
    let a = ps.[0]
    Tensor.sum (Prim.Exec(Cast a.Dtype, [| Prim.Exec(Compare c, [| a; ps.[1] |]) |]) * a * w)

let ``every comparison: tape = compiled = finite differences through its mask, ties and NaN, float64 and float32`` () =
    for c in Ops.allCompare do
        binaryShapes |> List.iteri (fun i (sx, sy) ->
            let seed = 31 * i + 3
            let rng = Random(seed)
            let w = Tensor.create (Shape.broadcast "test" sx sy) (randomArray (seed + 1) (Shape.size (Shape.broadcast "test" sx sy)) -1.0 1.0)
            let what = sprintf "%s on %s and %s" (Compare c).Name (Shape.format sx) (Shape.format sy)
            let at (s: int[]) = Tensor.create s (pointIn Real rng (Shape.size s))
            checkFn what true (fun xs ds -> masked c xs ds.[0]) [| at sx; at sy |] [| at sx; at sy |] [| w |]
            // ties (values on a grid of five) and a NaN in b: no finite differences there
            let grid (s: int[]) = Tensor.create s (Array.init (Shape.size s) (fun _ -> 0.5 * float (rng.Next 5 - 2)))
            let b = Tensor.toArray (grid sy)
            b.[rng.Next b.Length] <- nan
            checkFn (what + " (ties, NaN)") false (fun xs ds -> masked c xs ds.[0]) [| grid sx; Tensor.create sy b |] [| grid sx; grid sy |] [| w |])

/// (mask, a, b) shapes, and whether b is data (no adjoint): small ones unrolled, large ones the buffer
/// kernel, element-wise (its span forms) or through broadcast maps (its element forms and rules).
let private whereCases =
    [ [| 4 |], [| 4 |], [| 4 |], false; [| 3; 4 |], [| 4 |], [| 3; 4 |], false; [| 4 |], [| 4 |], [||], false; [| 3; 1 |], [| 3; 4 |], [| 4 |], false
      [| 80 |], [| 80 |], [| 80 |], false; [| 80 |], [| 80 |], [| 80 |], true; [| 80 |], [| 80 |], [||], false; [| 80 |], [| 80 |], [||], true
      [| 3; 30 |], [| 3; 30 |], [| 30 |], false; [| 3; 30 |], [| 30 |], [| 3; 30 |], false; [| 1; 90 |], [| 2; 90 |], [| 2; 90 |], false ]

let ``where: tape = compiled = finite differences, with broadcasting, float64 and float32`` () =
    Assert.True(Shape.size [| 80 |] > Compiler.UnrollLimit && Shape.size [| 3; 4 |] <= Compiler.UnrollLimit)
    whereCases |> List.iteri (fun i (sm, sa, sb, bData) ->
        let seed = 53 * i + 11
        let rng = Random(seed)
        let outShape = Shape.broadcast "test" (Shape.broadcast "test" sm sa) sb
        let mask = Tensor.createBool sm (Array.init (Shape.size sm) (fun _ -> rng.NextDouble() < 0.5))
        let w = Tensor.create outShape (randomArray (seed + 1) (Shape.size outShape) -1.0 1.0)
        let at (s: int[]) = Tensor.create s (pointIn Real rng (Shape.size s))
        let what = sprintf "where on %s, %s and %s%s" (Shape.format sm) (Shape.format sa) (Shape.format sb) (if bData then " (b data)" else "")
        let f (xs: Tensor[]) (ds: Tensor[]) =
            let b = if bData then ds.[2] else xs.[1]
            Tensor.sum (Prim.Exec(Where, [| ds.[1]; xs.[0]; b |]) * ds.[0])
        if bData then checkFn what true f [| at sa |] [| at sa |] [| w; mask; at sb |]
        else checkFn what true f [| at sa; at sb |] [| at sa; at sb |] [| w; mask |])
    // both branches the same parameter: its adjoint gets each element once
    for n in [ 6; 80 ] do
        let rng = Random(n)
        let mask = Tensor.createBool [| n |] (Array.init n (fun _ -> rng.NextDouble() < 0.5))
        let at () = Tensor.create [| n |] (pointIn Real rng n)
        checkFn (sprintf "where(mask, a, a) on [%d]" n) true (fun xs ds -> Tensor.sum (Prim.Exec(Where, [| ds.[1]; xs.[0]; xs.[0] |]) * xs.[0] * ds.[0]))
            [| at () |] [| at () |] [| Tensor.create [| n |] (randomArray n n -1.0 1.0); mask |]

let private clampBounds = [ -0.5, 0.7; Double.NegativeInfinity, 0.3; -0.2, Double.PositiveInfinity; 0.4, 0.4 ]

let ``clamp: tape = compiled = finite differences, its bounds inside, float64 and float32`` () =
    clampBounds |> List.iteri (fun i (lo, hi) ->
        checkOp (Clamp (lo, hi)) [| [| 5 |] |] [| Real |] (7 * i + 1)
        checkOp (Clamp (lo, hi)) [| [| 2; 45 |] |] [| Real |] (7 * i + 2)
        // on the bounds: the gradient is g (the convention of every form), tape = compiled
        if not (Double.IsInfinity lo || Double.IsInfinity hi) then
            for n in [ 5; 90 ] do
                let pts (shift: float) = Tensor.create [| n |] (Array.init n (fun k -> match k % 5 with
                                                                                           | 0 -> lo
                                                                                           | 1 -> hi
                                                                                           | 2 -> lo - 1.0
                                                                                           | 3 -> hi + 1.0
                                                                                           | _ -> 0.5 * (lo + hi) + shift))
                let w = Tensor.create [| n |] (randomArray (n + i) n 0.5 1.0)
                checkFn (sprintf "clamp %g %g on its bounds, [%d]" lo hi n) false (fun xs ds -> weighted (Clamp (lo, hi)) xs ds.[0]) [| pts 0.0 |] [| pts 0.01 |] [| w |]
                let _, g = Autodiff.valueAndGradN (fun xs -> weighted (Clamp (lo, hi)) xs w) [| pts 0.0 |]
                let expected = Array.init n (fun k -> if k % 5 = 2 || k % 5 = 3 then 0.0 else (Tensor.toArray w).[k])
                Assert.Equal<float[]>(expected, Tensor.toArray g.[0]))

let ``the span forms of comparisons, where and clamp equal their element forms and rules`` () =
    let rng = Random(9)
    let n = 37
    let grid () = Array.init n (fun i -> if i = 5 then nan else 0.5 * float (rng.Next 5 - 2))
    let x, y = grid (), grid ()
    for c in Ops.allCompare do
        let info = Ops.compare c
        for (xs, ys) in [ 1, 1; 1, 0; 0, 1 ] do
            let expected = Array.init n (fun i -> info.Element.Invoke(x.[i * xs], y.[i * ys]))
            let r = Array.zeroCreate n
            info.Decl.Span64.Invoke(ReadOnlySpan x, xs, ReadOnlySpan y, ys, Span r)
            Assert.Equal<bool[]>(expected, r)
            let r32 = Array.zeroCreate n
            info.Decl.Span32.Invoke(ReadOnlySpan(Array.map float32 x), xs, ReadOnlySpan(Array.map float32 y), ys, Span r32)
            Assert.Equal<bool[]>(expected, r32)
    // where over a float mask: 0 unset; 1 and NaN set
    let w = Ops.where
    let mask = Array.init n (fun i -> match i % 3 with
                                      | 0 -> 0.0
                                      | 1 -> 1.0
                                      | _ -> nan)
    let a = randomArray 1 n -1.0 1.0
    for b in [ randomArray 2 n -1.0 1.0; [| 0.25 |] ] do
        let at i = if b.Length = 1 then b.[0] else b.[i]
        let o = Array.zeroCreate n
        w.Decl.Span.Invoke(ReadOnlySpan mask, ReadOnlySpan a, ReadOnlySpan b, Span o)
        Assert.Equal<float[]>(Array.init n (fun i -> w.Element.Invoke(mask.[i], a.[i], at i)), o)
    let g = randomArray 3 n -1.0 1.0
    let vjpX, vjpY = Ops.compileWhereRule w.Decl.VjpX, Ops.compileWhereRule w.Decl.VjpY
    for adj, rule in [ w.Decl.AdjointX, vjpX; w.Decl.AdjointY, vjpY ] do
        let acc = randomArray 4 n 0.0 1.0
        let expected = Array.init n (fun i -> acc.[i] + rule.Invoke(g.[i], mask.[i], a.[i], 0.0, 0.0))
        adj.Invoke(ReadOnlySpan mask, ReadOnlySpan g, Span acc)
        Assert.Equal<float[]>(expected, acc)
    // clamp, with points on its bounds and a NaN
    let cl = Ops.clamp
    for lo, hi in clampBounds do
        let xs = Array.init n (fun i -> match i % 4 with
                                        | 0 when not (Double.IsInfinity lo) -> lo
                                        | 1 when not (Double.IsInfinity hi) -> hi
                                        | _ -> if i = 6 then nan else 2.0 * rng.NextDouble() - 1.0)
        let o = Array.zeroCreate n
        cl.Decl.Span64.Invoke(lo, hi, ReadOnlySpan xs, Span o)
        Assert.Equal<float[]>(Array.map (fun v -> cl.Element.Invoke(lo, hi, v)) xs, o)
        let o32 = Array.zeroCreate n
        cl.Decl.Span32.Invoke(float32 lo, float32 hi, ReadOnlySpan(Array.map float32 xs), Span o32)
        Assert.Equal<float32[]>(Array.map (fun v -> float32 (cl.Element.Invoke(lo, hi, v))) (Array.map (float32 >> float) xs), o32)
        let rule = Ops.compileUnaryRule (cl.Decl.Vjp lo hi)
        let acc = randomArray 5 n 0.0 1.0
        let expected = Array.init n (fun i -> acc.[i] + rule.Invoke(g.[i], xs.[i], o.[i]))
        cl.Decl.Adjoint.Invoke(lo, hi, ReadOnlySpan xs, ReadOnlySpan g, Span acc)
        Assert.Equal<float[]>(expected, acc)

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
            let scratch = Array.zeroCreate<float> n
            match info.Decl.KeepForAdjoint with
            | ValueSome keep ->
                // the forward that keeps what the adjoint reads gives the op's values, bit for bit
                let kept = Array.create n nan
                keep.Invoke(ReadOnlySpan x, Span kept, Span scratch)
                Assert.Equal<float[]>(o, kept)
                // and the derivative f'(x): the rule at g = 1 (its scalar form: the SIMD kernels within 2e-15)
                assertClose 2e-15 (Array.init n (fun i -> info.VjpScalar.Invoke(1.0, x.[i], o.[i]))) scratch
            | ValueNone -> ()
            let g = Array.init n (fun _ -> rng.NextDouble() - 0.5)
            let acc = Array.init n (fun _ -> rng.NextDouble())
            let expected = Array.init n (fun i -> acc.[i] + info.VjpScalar.Invoke(g.[i], x.[i], o.[i]))
            adj.Invoke(ReadOnlySpan x, ReadOnlySpan o, ReadOnlySpan g, ReadOnlySpan acc, Span acc, Span scratch)
            assertClose 1e-15 expected acc
        | _ -> ()

/// The fused GLM log likelihood of every family: tape = compiled = finite differences in α (one, or one per
/// row), β and x, and float32 near float64. n = 7, d = 5: the kernel's four-row path, three single rows and
/// a column past the four-wide ones; n = 37, d = 9 more of each; n = 3: single rows only; n = 101, d = 41:
/// blocks of 48 rows (the last one of 5).
let ``the fused GLM log likelihood: tape = compiled = finite differences, every family, float64 and float32`` () =
    for family in UnionCases.nullary<GlmFamily> () do
        for (n, d) in [ 7, 5; 37, 9; 3, 2; 101, 41 ] do
            let seed = 13 * n + d
            let rng = Random(seed)
            let y =
                Array.init n (fun _ ->
                    match family with
                    | GlmFamily.BernoulliLogit -> if rng.NextDouble() < 0.5 then 1.0 else 0.0
                    | GlmFamily.PoissonLog -> float (rng.Next 5))
            // every row in the support (rows outside score −∞: FunctionalBayes.Tests' GlmTests)
            let data = [| Tensor.create [| n |] y; Tensor.createBool [| n |] (Array.create n true) |]
            let x s = randomTensor s [| n; d |] -1.0 1.0
            let beta s = randomTensor s [| d |] -0.6 0.6
            for perRow in [ false; true ] do
                let alpha s = if perRow then randomTensor s [| n |] -0.5 0.5 else Tensor.scalar (0.1 * float (s % 7) - 0.3)
                let what = sprintf "%s %A on x %s, alpha %s" (GlmLogLikelihood family).Name family (Shape.format [| n; d |]) (if perRow then "per row" else "scalar")
                checkFn what true (fun ps ds -> Tensor.glmLogLikelihood family ds.[2] ps.[0] ps.[1] ds.[0] ds.[1])
                    [| alpha 1; beta 2 |] [| alpha 3; beta 4 |] (Array.append data [| x 5 |])
                checkFn (what + ", x a parameter") true (fun ps ds -> Tensor.glmLogLikelihood family ps.[0] ps.[1] ps.[2] ds.[0] ds.[1])
                    [| x 6; alpha 7; beta 8 |] [| x 9; alpha 10; beta 11 |] data

/// The fused categorical-logit GLM log likelihood: tape = compiled = finite differences in α [C], β [d, C]
/// and x, and float32 near float64. C = 1 (every row's value 0) and C = 2; n = 7, d = 5: the kernel's
/// four-row path and three single rows; n = 3: single rows only; n = 101, d = 41, C = 4: blocks of 40 rows
/// (the last one of 21); C = 37: blocks of 24 rows. Every row in the support (rows outside score −∞:
/// FunctionalBayes.Tests' GlmTests).
let ``the fused categorical GLM log likelihood: tape = compiled = finite differences, float64 and float32`` () =
    for (n, d, c) in [ 7, 5, 3; 37, 9, 1; 3, 2, 2; 101, 41, 4; 13, 3, 5; 30, 9, 37 ] do
        let seed = 17 * n + 5 * d + c
        let rng = Random(seed)
        let y = Array.init n (fun _ -> float (rng.Next c))
        let data = [| Tensor.create [| n |] y; Tensor.createBool [| n |] (Array.create n true) |]
        let x s = randomTensor s [| n; d |] -1.0 1.0
        let beta s = randomTensor s [| d; c |] -0.6 0.6
        let alpha s = randomTensor s [| c |] -0.5 0.5
        let what = sprintf "%s on x %s, %d classes" CategoricalGlmLogLikelihood.Name (Shape.format [| n; d |]) c
        checkFn what true (fun ps ds -> Tensor.categoricalGlmLogLikelihood ds.[2] ps.[0] ps.[1] ds.[0] ds.[1])
            [| alpha 1; beta 2 |] [| alpha 3; beta 4 |] (Array.append data [| x 5 |])
        checkFn (what + ", x a parameter") true (fun ps ds -> Tensor.categoricalGlmLogLikelihood ps.[0] ps.[1] ps.[2] ds.[0] ds.[1])
            [| x 6; alpha 7; beta 8 |] [| x 9; alpha 10; beta 11 |] data

[<Tests>]
let tests =
    testList "op table" [
        testCase "every unary op: tape = compiled = finite differences, float64 and float32" ``every unary op: tape = compiled = finite differences, float64 and float32``
        testCase "every binary op: tape = compiled = finite differences, with broadcasting, float64 and float32" ``every binary op: tape = compiled = finite differences, with broadcasting, float64 and float32``
        testCase "every comparison: tape = compiled = finite differences through its mask, ties and NaN, float64 and float32" ``every comparison: tape = compiled = finite differences through its mask, ties and NaN, float64 and float32``
        testCase "where: tape = compiled = finite differences, with broadcasting, float64 and float32" ``where: tape = compiled = finite differences, with broadcasting, float64 and float32``
        testCase "clamp: tape = compiled = finite differences, its bounds inside, float64 and float32" ``clamp: tape = compiled = finite differences, its bounds inside, float64 and float32``
        testCase "the span forms of comparisons, where and clamp equal their element forms and rules" ``the span forms of comparisons, where and clamp equal their element forms and rules``
        testCase "a unary op's one-pass span adjoint equals its rule" ``a unary op's one-pass span adjoint equals its rule``
        testCase "the fused GLM log likelihood: tape = compiled = finite differences, every family, float64 and float32" ``the fused GLM log likelihood: tape = compiled = finite differences, every family, float64 and float32``
        testCase "the fused categorical GLM log likelihood: tape = compiled = finite differences, float64 and float32" ``the fused categorical GLM log likelihood: tape = compiled = finite differences, float64 and float32``
    ]
