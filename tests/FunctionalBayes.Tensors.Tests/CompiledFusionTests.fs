/// Fused loops of element-wise ops in compiled programs (issue 22): a fused program gives the unfused
/// program's bits (value and gradient) on random chains of every fused op, lengths across the vector
/// width and its tail, broadcast scalars, NaN, ±inf and ±0, float32 programs, rebinding; and its listing
/// runs fewer kernels.
module FunctionalBayes.Tensors.Tests.CompiledFusionTests

open System
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.Tests.TestUtil

/// Bits, with every NaN one value: which NaN payload an IEEE op returns for two NaN operands depends on
/// the operand order the JIT picks, which no result here may depend on.
let private bits (a: float[]) = a |> Array.map (fun v -> if Double.IsNaN v then -1L else BitConverter.DoubleToInt64Bits v)

let private compile (fuse: bool) (f: Tensor[] -> Tensor) (first: Tensor[]) (data: Tensor[]) =
    let second = first |> Array.map (fun t -> Tensor.create t.Shape (Tensor.toArray t |> Array.map (fun v -> 0.3 - 0.9 * v)))
    match Compiler.compileWith fuse f first second data with
    | Error why -> failwithf "not compiled: %s" why
    | Ok cg -> cg

let private evaluate (e: CompiledEvaluator) (p: float[]) =
    let g = Array.zeroCreate p.Length
    let v = e.Evaluate(ReadOnlySpan p, Span g)
    Array.append [| v |] g

let private count (what: string) (listing: string) =
    listing.Split('\n') |> Array.filter (fun l -> l.Contains what) |> Array.length

/// Fused and unfused programs of f agree bit for bit at each point (and after rebinding to data2).
let private agree (what: string) (f: Tensor[] -> Tensor) (first: Tensor[]) (data: Tensor[]) (data2: Tensor[]) (points: float[][]) =
    let fused = compile true f first data
    let plain = compile false f first data
    let ef = fused.Bind(data).CreateEvaluator()
    let ep = plain.Bind(data).CreateEvaluator()
    let check (stage: string) =
        for p in points do
            let a = evaluate ep p
            let b = evaluate ef p
            if bits a <> bits b then
                let i = Array.zip (bits a) (bits b) |> Array.findIndex (fun (x, y) -> x <> y)
                failwithf "%s (%s): fused and unfused differ at output %d (0: value): %.17g vs %.17g\nlisting:\n%s" what stage i a.[i] b.[i] fused.Listing
    check "bound"
    ef.Rebind data2
    ep.Rebind data2
    check "rebound"
    fused, plain

/// Edge values written into a point: NaN, ±inf, ±0, huge and tiny.
let private edges = [| Double.NaN; Double.PositiveInfinity; Double.NegativeInfinity; 0.0; -0.0; 1e308; -1e-310; 5e-324 |]

let private withEdges (seed: int) (p: float[]) =
    let r = Random(seed)
    let q = Array.copy p
    for _ in 1 .. 3 do
        q.[r.Next q.Length] <- edges.[r.Next edges.Length]
    q

/// A random chain over x (n), y (n), a scalar s and data d (n): fused ops on the running value with
/// operands from the pool (earlier values, x, y, s, d, constants), a transcendental op now and then (a
/// loop boundary), ops between fused ops that read none of their values, and values read both inside and
/// after the loop (sums of several of them). (Softplus, not tanh, as the boundary: a program with a tanh
/// kernel gave different last bits in two evaluators of the same unfused program.)
let private randomChain (seed: int) (xs: Tensor[]) : Tensor =
    let r = Random(seed)
    let x, y, s, d = xs.[0], xs.[1], xs.[2], xs.[3]
    let pool = ResizeArray<Tensor>([ x; y; s; d ])
    let mutable t = x
    let outs = ResizeArray<Tensor>()
    for _ in 1 .. 4 + r.Next 9 do
        let o = pool.[r.Next pool.Count]
        t <-
            match r.Next 14 with
            | 0 -> t + o
            | 1 -> o - t
            | 2 -> t * o
            | 3 -> t / o
            | 4 -> o / t
            | 5 -> -t
            | 6 -> Tensor.abs t
            | 7 -> Tensor.sqrt (Tensor.abs t)
            | 8 -> t * 0.5 + 1.25
            | 9 -> 2.0 / t
            | 10 -> Tensor.softplus t
            // ops that read none of the run's values (a scalar op, a kernel on y) between fused ops
            | 11 -> t / Tensor.exp s
            | 12 -> t - Tensor.softplus y
            | _ -> t * t
        pool.Add t
        if r.Next 4 = 0 then outs.Add t
    outs.Add t
    outs |> Seq.map Tensor.sum |> Seq.reduce (+)

let ``random chains: fused = unfused bit for bit, lengths 1..1000 with tails, scalars, NaN and inf`` () =
    let mutable fusedLoops = 0
    for n in [ 1; 3; 64; 65; 66; 67; 68; 69; 127; 128; 129; 255; 1000 ] do
        for seed in 0 .. 11 do
            let what = sprintf "n = %d, chain %d" n seed
            let f = randomChain (1000 * n + seed)
            let sShape = if seed % 2 = 0 then [||] else [| 1 |]
            let first = [| randomTensor seed [| n |] 0.5 2.0; randomTensor (seed + 1) [| n |] -2.0 2.0; Tensor.create sShape [| 1.5 |] |]
            let data = [| randomTensor (seed + 2) [| n |] -1.0 1.0 |]
            let data2 = [| Tensor.create [| n |] (withEdges seed (randomArray (seed + 3) n -3.0 3.0)) |]
            let point k =
                let p = Array.concat [ randomArray (seed + 10 * k) n 0.5 2.0; randomArray (seed + 10 * k + 1) n -2.0 2.0; [| 0.75 + float k |] ]
                if k = 2 then withEdges (seed + k) p else p
            let fused, _ = agree what f first data data2 (Array.init 3 point)
            fusedLoops <- fusedLoops + count "(fused loop" fused.Listing
    // the chains do fuse (a chain of one fused op between boundaries stays a kernel)
    Assert.True(fusedLoops > 100, sprintf "only %d fused ops in all the chains" fusedLoops)

/// A normal likelihood on μ = a + x·b over n values: one loop instead of a kernel per op.
let private normalModel (xs: Tensor[]) =
    let a, b, logSigma, x, y = xs.[0], xs.[1], xs.[2], xs.[3], xs.[4]
    let sigma = Tensor.exp logSigma
    let z = (y - (a + x * b)) / sigma
    Tensor.sum (-0.5 * (z * z) - logSigma)

let ``a normal likelihood on mu + x*b: fused = unfused, fewer kernels in the listing`` () =
    let n = 1001
    let first = [| Tensor.create [||] [| 0.3 |]; Tensor.create [||] [| -0.7 |]; Tensor.create [||] [| 0.1 |] |]
    let data = [| randomTensor 1 [| n |] -2.0 2.0; randomTensor 2 [| n |] -3.0 3.0 |]
    let data2 = [| Tensor.create [| n |] (withEdges 3 (randomArray 4 n -2.0 2.0)); randomTensor 5 [| n |] -3.0 3.0 |]
    let points = [| [| 0.3; -0.7; 0.1 |]; [| -1.0; 2.0; -0.5 |]; [| 0.0; -0.0; 700.0 |] |]
    let fused, plain = agree "normal" normalModel first data data2 points
    let kernels (cg: CompiledGradient) = count "(kernel)" cg.Listing
    Assert.True(kernels fused + 5 <= kernels plain,
                sprintf "fused listing:\n%s\nunfused listing:\n%s" fused.Listing plain.Listing)
    // intermediates read only inside the loop are not stored
    Assert.True(count "not stored" fused.Listing >= 2, fused.Listing)

/// Broadcast rows (not fused: a row is not a scalar) and float32 programs (not fused: they round after
/// each op) stay as they were, next to fused float64 ops.
let ``row broadcasts and float32 ops next to fused ops: fused = unfused`` () =
    let rows, cols = 40, 25
    let f (xs: Tensor[]) =
        let w, c, m = xs.[0], xs.[1], xs.[2]
        let t = (m - w) * c + w
        let t32 = Tensor.cast Float32 t
        let u = Tensor.cast Float64 ((t32 * t32 - t32) / (t32 + Tensor.cast Float32 c))
        Tensor.sum (u * 0.5 - t / c) + Tensor.sum (-(t * t))
    let first = [| randomTensor 1 [| cols |] -1.0 1.0; Tensor.create [||] [| 1.5 |] |]
    let data = [| randomTensor 2 [| rows; cols |] -1.0 1.0 |]
    let data2 = [| Tensor.create [| rows; cols |] (withEdges 4 (randomArray 3 (rows * cols) -1.0 1.0)) |]
    let points = [| Array.append (randomArray 5 cols -1.0 1.0) [| 1.5 |]; Array.append (withEdges 6 (randomArray 7 cols -1.0 1.0)) [| -0.0 |] |]
    let fused, _ = agree "rows and float32" f first data data2 points
    Assert.True(count "(fused loop" fused.Listing >= 2, fused.Listing)

[<Tests>]
let tests =
    testList "CompiledFusionTests" [
        testCase "random chains: fused = unfused bit for bit, lengths 1..1000 with tails, scalars, NaN and inf" ``random chains: fused = unfused bit for bit, lengths 1..1000 with tails, scalars, NaN and inf``
        testCase "a normal likelihood on mu + x*b: fused = unfused, fewer kernels in the listing" ``a normal likelihood on mu + x*b: fused = unfused, fewer kernels in the listing``
        testCase "row broadcasts and float32 ops next to fused ops: fused = unfused" ``row broadcasts and float32 ops next to fused ops: fused = unfused``
    ]
