module FunctionalBayes.Tensors.Tests.RandomTests

open System
open System.Threading.Tasks
open Expecto
open FunctionalBayes.TestAssertions
open FunctionalBayes.Tensors
open FunctionalBayes.Tensors.RngImpl
open MathNet.Numerics.Distributions

// ------------------------------------------------------------------ helpers

let private mean (xs: float[]) = Array.average xs

let private centralMoments (xs: float[]) =
    let m = mean xs
    let mutable s2 = 0.0
    let mutable s4 = 0.0
    for x in xs do
        let d = x - m
        let d2 = d * d
        s2 <- s2 + d2
        s4 <- s4 + d2 * d2
    let n = float xs.Length
    m, s2 / (n - 1.0), s4 / n

/// |mean - mu| < 5 sd/sqrt(n) and |s^2 - var| < 5 se(s^2), se from the sample 4th moment.
let private checkMoments (label: string) (xs: float[]) (mu: float) (var: float) =
    let n = float xs.Length
    let m, s2, m4 = centralMoments xs
    let tolMean = 5.0 * sqrt (var / n)
    Assert.True(abs (m - mu) < tolMean, sprintf "%s: mean %g vs %g (tol %g)" label m mu tolMean)
    let tolVar = 5.0 * sqrt (max (m4 - s2 * s2) 1e-300 / n)
    Assert.True(abs (s2 - var) < tolVar, sprintf "%s: var %g vs %g (tol %g)" label s2 var tolVar)

let private correlation (xs: float[]) (ys: float[]) =
    let mx = mean xs
    let my = mean ys
    let mutable sxy = 0.0
    let mutable sxx = 0.0
    let mutable syy = 0.0
    for i in 0 .. xs.Length - 1 do
        let dx = xs.[i] - mx
        let dy = ys.[i] - my
        sxy <- sxy + dx * dy
        sxx <- sxx + dx * dx
        syy <- syy + dy * dy
    sxy / sqrt (sxx * syy)

/// Kolmogorov–Smirnov statistic against a continuous CDF.
let private ksStatistic (xs: float[]) (cdf: float -> float) =
    let s = Array.sort xs
    let n = float s.Length
    let mutable d = 0.0
    for i in 0 .. s.Length - 1 do
        let f = cdf s.[i]
        d <- max d (max (float (i + 1) / n - f) (f - float i / n))
    d

let private checkKs label (xs: float[]) cdf =
    let d = ksStatistic xs cdf
    let crit = 1.63 / sqrt (float xs.Length)
    Assert.True(d < crit, sprintf "%s: KS D = %g >= %g" label d crit)

let private throwsWith (needles: string list) (f: unit -> objnull) =
    let ex = Assert.ThrowsAny<ArgumentException>(fun () -> f () |> ignore)
    for s in needles do
        Assert.Contains(s, ex.Message)

// ------------------------------------------------------------------ Threefry

let ``Threefry-2x32-20 known-answer vectors (Random123 kat_vectors)`` () =
    let check k0 k1 c0 c1 (e0: uint32) (e1: uint32) =
        let struct (a, b) = Threefry.block k0 k1 c0 c1
        Assert.Equal(e0, a)
        Assert.Equal(e1, b)
    check 0u 0u 0u 0u 0x6b200159u 0x99ba4efeu
    check 0xffffffffu 0xffffffffu 0xffffffffu 0xffffffffu 0x1cb996fcu 0xbb002be7u
    // counter = pi digits, key = further pi digits
    check 0x13198a2eu 0x03707344u 0x243f6a88u 0x85a308d3u 0xc4923a9cu 0x483df7a0u

let ``SIMD fill equals scalar block for odd lengths and wrapping counters`` () =
    for (k0, k1, start, c1, count) in
        [ 1u, 2u, 0u, 0u, 37
          0xdeadbeefu, 0x12345678u, 0xfffffff0u, 0x03000005u, 100
          0u, 0u, 5u, 0xffffffffu, 7
          7u, 9u, 1000u, 0u, 1024 ] do
        let b0 = Array.zeroCreate count
        let b1 = Array.zeroCreate count
        Threefry.fill k0 k1 start c1 b0 b1 count
        for t in 0 .. count - 1 do
            let struct (a, b) = Threefry.block k0 k1 (start + uint32 t) c1
            Assert.Equal(a, b0.[t])
            Assert.Equal(b, b1.[t])

// ------------------------------------------------------------------ keys

let ``keys: construction, equality and ToString`` () =
    let k = RngCore.key 0x0000000100000002UL
    Assert.Equal(1u, k.K0)
    Assert.Equal(2u, k.K1)
    Assert.Equal(RngCore.key 42UL, RngCore.ofInt 42)
    Assert.Equal(RngCore.key UInt64.MaxValue, RngCore.ofInt -1)
    Assert.True((RngCore.key 5UL = RngCore.key 5UL))
    Assert.False((RngCore.key 5UL = RngCore.key 6UL))
    Assert.Equal("RngKey(0x00000001, 0x00000002)", k.ToString())
    Assert.Equal((RngCore.key 5UL).GetHashCode(), (RngCore.key 5UL).GetHashCode())
    Assert.True((RngCore.key 5UL).Equals(box (RngCore.key 5UL)))

let ``split is deterministic, distinct and consistent with splitN`` () =
    let k = RngCore.ofInt 0
    let a1, b1 = RngCore.split k
    let a2, b2 = RngCore.split k
    Assert.Equal(a1, a2)
    Assert.Equal(b1, b2)
    Assert.NotEqual(a1, b1)
    Assert.NotEqual(k, a1)
    Assert.NotEqual(k, b1)
    let ks = RngCore.splitN k 1000
    Assert.Equal(a1, ks.[0])
    Assert.Equal(b1, ks.[1])
    Assert.Equal(1000, (Array.distinct ks).Length)
    Assert.Empty(RngCore.splitN k 0)
    // foldIn: deterministic, distinct per data, distinct from split
    Assert.Equal(RngCore.foldIn k 3, RngCore.foldIn k 3)
    let folds = Array.init 1000 (fun i -> RngCore.foldIn k (i - 500))
    Assert.Equal(1000, (Array.distinct folds).Length)
    Assert.NotEqual(RngCore.foldIn k 0, a1)
    Assert.NotEqual(RngCore.foldIn k 1, b1)

let ``same key gives the same numbers; different keys differ`` () =
    let k = RngCore.key 123UL
    Assert.Equal<float[]>(RngCore.uniform k 1000, RngCore.uniform k 1000)
    Assert.Equal<float[]>(RngCore.normal k 1000, RngCore.normal k 1000)
    Assert.Equal<uint32[]>(RngCore.bits k 1001, RngCore.bits k 1001)
    Assert.Equal<float32[]>(RngCore.uniformF32 k 1001, RngCore.uniformF32 k 1001)
    let sh = Array.init 500 (fun i -> 0.1 + float i * 0.05)
    Assert.Equal<float[]>(RngCore.gamma k sh, RngCore.gamma k sh)
    Assert.Equal<float[]>(RngCore.beta k sh (Array.rev sh), RngCore.beta k sh (Array.rev sh))
    Assert.Equal<int[]>(RngCore.poisson k sh, RngCore.poisson k sh)
    Assert.Equal<int[]>(RngCore.permutation k 777, RngCore.permutation k 777)
    let k2 = RngCore.key 124UL
    Assert.NotEqual<float[]>(RngCore.uniform k 10, RngCore.uniform k2 10)
    // draws of different kinds from one key use separate counter domains
    let u = RngCore.uniform k 1000
    let z = RngCore.normal k 1000 |> Array.map (fun z -> Normal.CDF(0.0, 1.0, z))
    Assert.True(abs (correlation u z) < 5.0 / sqrt 1000.0)

let ``element i depends only on (key, i): prefixes agree and other elements do not matter`` () =
    let k = RngCore.key 9UL
    let big = RngCore.uniform k 5000
    Assert.Equal<float[]>(RngCore.uniform k 17, big.[0..16])
    let nbig = RngCore.normal k 5000
    Assert.Equal<float[]>(RngCore.normal k 33, nbig.[0..32])
    let bbig = RngCore.bits k 5000
    Assert.Equal<uint32[]>(RngCore.bits k 3, bbig.[0..2])
    let g1 = RngCore.gamma k [| 2.5; 0.3; 7.0 |]
    let g2 = RngCore.gamma k [| 2.5; 40.0; 7.0 |]
    Assert.Equal(g1.[0], g2.[0])
    Assert.Equal(g1.[2], g2.[2])
    let p1 = RngCore.poisson k [| 4.0; 1e6; 30.0 |]
    let p2 = RngCore.poisson k [| 4.0; 0.0; 30.0 |]
    Assert.Equal(p1.[0], p2.[0])
    Assert.Equal(p1.[2], p2.[2])

let ``streams of split keys are uncorrelated`` () =
    let n = 100_000
    let bound = 5.0 / sqrt (float n)
    let k = RngCore.key 2024UL
    let a, b = RngCore.split k
    let pairs =
        [ "split a/b", a, b
          "parent/child", k, a
          "splitN 2/3", (RngCore.splitN k 4).[2], (RngCore.splitN k 4).[3]
          "foldIn 0/1", RngCore.foldIn k 0, RngCore.foldIn k 1
          "seed 0/1", RngCore.key 0UL, RngCore.key 1UL ]
    for (label, k1, k2) in pairs do
        let r = correlation (RngCore.uniform k1 n) (RngCore.uniform k2 n)
        Assert.True(abs r < bound, sprintf "%s: uniform r = %g" label r)
        let r = correlation (RngCore.normal k1 n) (RngCore.normal k2 n)
        Assert.True(abs r < bound, sprintf "%s: normal r = %g" label r)
    // lag-1 correlation inside one stream
    let u = RngCore.uniform a n
    let r = correlation u.[0 .. n - 2] u.[1 ..]
    Assert.True(abs r < bound, sprintf "lag-1 r = %g" r)

// ------------------------------------------------------------------ uniform / bits

let ``uniform is in the open interval (0,1) with the right moments`` () =
    let n = 200_000
    let u = RngCore.uniform (RngCore.key 1UL) n
    Assert.True(u |> Array.forall (fun x -> x > 0.0 && x < 1.0))
    checkMoments "uniform" u 0.5 (1.0 / 12.0)
    checkKs "uniform" u id
    // extreme bit patterns stay strictly inside (0,1)
    Assert.Equal(Math.Pow(2.0, -53.0), Bits.toOpenDouble 0u 0u)
    let top = Bits.toOpenDouble 0xffffffffu 0xffffffffu
    Assert.True(top < 1.0)
    Assert.Equal(1.0 - Math.Pow(2.0, -53.0), top)
    Assert.True(Bits.toOpenSingle 0u > 0.0f)
    Assert.True(Bits.toOpenSingle 0xffffffffu < 1.0f)

let ``uniformF32 is in (0,1) with the right moments`` () =
    let n = 200_001
    let u = RngCore.uniformF32 (RngCore.key 2UL) n
    Assert.Equal(n, u.Length)
    Assert.True(u |> Array.forall (fun x -> x > 0.0f && x < 1.0f))
    checkMoments "uniformF32" (Array.map float u) 0.5 (1.0 / 12.0)

let ``bits are balanced`` () =
    let n = 100_001
    let b = RngCore.bits (RngCore.key 3UL) n
    Assert.Equal(n, b.Length)
    // each of the 32 bit positions is set with probability 1/2
    for bit in 0 .. 31 do
        let ones = b |> Array.sumBy (fun w -> int ((w >>> bit) &&& 1u))
        let p = float ones / float n
        Assert.True(abs (p - 0.5) < 5.0 * 0.5 / sqrt (float n), sprintf "bit %d: %g" bit p)

let ``zero-length draws`` () =
    let k = RngCore.key 0UL
    Assert.Empty(RngCore.uniform k 0)
    Assert.Empty(RngCore.uniformF32 k 0)
    Assert.Empty(RngCore.normal k 0)
    Assert.Empty(RngCore.bits k 0)
    Assert.Empty(RngCore.gamma k [||])
    Assert.Empty(RngCore.beta k [||] [||])
    Assert.Empty(RngCore.poisson k [||])
    Assert.Empty(RngCore.categorical k [||] 0 5)
    Assert.Empty(RngCore.permutation k 0)
    Assert.Equal<int[]>([| 0 |], RngCore.permutation k 1)
    Assert.Equal(1, (RngCore.bits k 1).Length)

// ------------------------------------------------------------------ normal

let ``ziggurat table is consistent`` () =
    let x = Ziggurat.X
    let f = Ziggurat.F
    // every layer has area V; check the top layer closes the recursion
    let top = x.[255] * (1.0 - f.[255])
    Assert.True(abs (top - Ziggurat.V) / Ziggurat.V < 1e-6, sprintf "top layer area %g" top)
    for i in 1 .. 255 do
        Assert.True(x.[i] > x.[i + 1])

let ``normal: moments, KS and tails`` () =
    let n = 400_000
    let z = RngCore.normal (RngCore.key 4UL) n
    Assert.True(z |> Array.forall Double.IsFinite)
    let _, s2, m4 = centralMoments z
    checkMoments "normal" z 0.0 1.0
    // kurtosis 3 (se ~ sqrt(24/n))
    let kurt = m4 / (s2 * s2)
    Assert.True(abs (kurt - 3.0) < 5.0 * sqrt (24.0 / float n), sprintf "kurtosis %g" kurt)
    checkKs "normal" z (fun x -> Normal.CDF(0.0, 1.0, x))
    // tail mass beyond the ziggurat base R = 3.654 and beyond 4
    for t in [ 3.0; Ziggurat.R; 4.0 ] do
        let p = 2.0 * (1.0 - Normal.CDF(0.0, 1.0, t))
        let freq = float (z |> Array.filter (fun x -> abs x > t) |> Array.length) / float n
        Assert.True(abs (freq - p) < 5.0 * sqrt (p / float n), sprintf "tail %g: %g vs %g" t freq p)
    // symmetric
    let pos = float (z |> Array.filter (fun x -> x > 0.0) |> Array.length) / float n
    Assert.True(abs (pos - 0.5) < 5.0 * 0.5 / sqrt (float n))

// ------------------------------------------------------------------ gamma / beta

let ``gamma: moments and KS`` (a: float) =
    let n = 200_000
    let g = RngCore.gamma (RngCore.foldIn (RngCore.key 5UL) (int (a * 10.0))) (Array.create n a)
    Assert.True(g |> Array.forall (fun x -> x >= 0.0 && Double.IsFinite x))
    checkMoments (sprintf "gamma(%g)" a) g a a
    checkKs (sprintf "gamma(%g)" a) g (fun x -> Gamma.CDF(a, 1.0, x))

let ``gamma: tiny and huge shapes stay finite`` () =
    let g = RngCore.gamma (RngCore.key 6UL) (Array.create 10_000 1e-3)
    Assert.True(g |> Array.forall (fun x -> x >= 0.0 && Double.IsFinite x))
    let g = RngCore.gamma (RngCore.key 6UL) (Array.create 10_000 1e8)
    checkMoments "gamma(1e8)" g 1e8 1e8
    // mixed shapes in one call: each element gets its own shape
    let shapes = Array.init 100_000 (fun i -> if i % 2 = 0 then 0.5 else 20.0)
    let g = RngCore.gamma (RngCore.key 7UL) shapes
    checkMoments "gamma mixed even" (Array.init 50_000 (fun i -> g.[2 * i])) 0.5 0.5
    checkMoments "gamma mixed odd" (Array.init 50_000 (fun i -> g.[2 * i + 1])) 20.0 20.0

let ``beta: moments and KS`` (a: float, b: float) =
    let n = 200_000
    let x = RngCore.beta (RngCore.key 8UL) (Array.create n a) (Array.create n b)
    Assert.True(x |> Array.forall (fun v -> v >= 0.0 && v <= 1.0))
    let mu = a / (a + b)
    let var = a * b / ((a + b) * (a + b) * (a + b + 1.0))
    checkMoments (sprintf "beta(%g,%g)" a b) x mu var
    checkKs (sprintf "beta(%g,%g)" a b) x (fun v -> Beta.CDF(a, b, v))

let ``beta: tiny shapes give no NaN`` () =
    let n = 100_000
    for (a, b) in [ 1e-3, 1e-3; 1e-3, 1.0; 2.0, 1e-3; 1e-6, 1e-6 ] do
        let x = RngCore.beta (RngCore.key 9UL) (Array.create n a) (Array.create n b)
        Assert.True(x |> Array.forall (fun v -> v >= 0.0 && v <= 1.0), sprintf "beta(%g,%g) out of [0,1] or NaN" a b)
        // mean only: near-Bernoulli samples make the variance's standard error degenerate
        let mu = a / (a + b)
        let sd = sqrt (a * b / ((a + b) * (a + b) * (a + b + 1.0)))
        let m = mean x
        Assert.True(abs (m - mu) < 5.0 * sd / sqrt (float n), sprintf "beta(%g,%g): mean %g vs %g" a b m mu)

// ------------------------------------------------------------------ poisson

let ``poisson: moments and pmf`` (rate: float) =
    let n = 200_000
    let k = RngCore.poisson (RngCore.foldIn (RngCore.key 10UL) (int rate)) (Array.create n rate)
    Assert.True(k |> Array.forall (fun v -> v >= 0))
    checkMoments (sprintf "poisson(%g)" rate) (Array.map float k) rate rate
    // frequencies of the values near the mode vs the pmf
    let counts = k |> Array.countBy id |> dict
    let mode = int (floor rate)
    for v in [ mode - 1; mode; mode + 1 ] |> List.filter (fun v -> v >= 0) do
        let p = Poisson.PMF(rate, v)
        let f = float (if counts.ContainsKey v then counts.[v] else 0) / float n
        Assert.True(abs (f - p) < 5.0 * sqrt (p * (1.0 - p) / float n) + 1e-12, sprintf "poisson(%g) P(%d): %g vs %g" rate v f p)

let ``poisson: zero rate and mixed rates`` () =
    let k = RngCore.poisson (RngCore.key 11UL) (Array.create 1000 0.0)
    Assert.True(k |> Array.forall ((=) 0))
    let rates = Array.init 100_000 (fun i -> if i % 2 = 0 then 2.0 else 5e5)
    let k = RngCore.poisson (RngCore.key 12UL) rates
    checkMoments "mixed even" (Array.init 50_000 (fun i -> float k.[2 * i])) 2.0 2.0
    checkMoments "mixed odd" (Array.init 50_000 (fun i -> float k.[2 * i + 1])) 5e5 5e5

let ``logFactorial matches MathNet`` () =
    for k in [ 0; 1; 2; 10; 100; 255; 256; 257; 1000; 123456; 10_000_000 ] do
        let expected = MathNet.Numerics.SpecialFunctions.FactorialLn k
        let got = Special.logFactorial (float k)
        Assert.True(abs (got - expected) <= 1e-13 * max 1.0 (abs expected), sprintf "k=%d: %g vs %g" k got expected)

// ------------------------------------------------------------------ categorical / permutation

let ``categorical: frequencies match softmax`` () =
    let cols = 5
    let rowLogits = [| 0.0; 1.0; -1.0; Double.NegativeInfinity; 2.0 |]
    let rows = 200_000
    let logits = Array.init (rows * cols) (fun i -> rowLogits.[i % cols] + 100.0) // shift-invariant
    let draws = RngCore.categorical (RngCore.key 13UL) logits rows cols
    let m = Array.max rowLogits
    let w = rowLogits |> Array.map (fun l -> exp (l - m))
    let p = w |> Array.map (fun x -> x / Array.sum w)
    let counts = Array.zeroCreate cols
    for d in draws do counts.[d] <- counts.[d] + 1
    Assert.Equal(0, counts.[3])
    for c in 0 .. cols - 1 do
        let f = float counts.[c] / float rows
        Assert.True(abs (f - p.[c]) < 5.0 * sqrt (p.[c] * (1.0 - p.[c]) / float rows) + 1e-12,
                    sprintf "category %d: %g vs %g" c f p.[c])

let ``categorical: per-row logits and a single column`` () =
    // row r puts all its mass on column r % 3
    let rows = 300
    let logits = Array.init (rows * 3) (fun i -> if i % 3 = (i / 3) % 3 then 0.0 else Double.NegativeInfinity)
    let d = RngCore.categorical (RngCore.key 14UL) logits rows 3
    Assert.Equal<int[]>(Array.init rows (fun r -> r % 3), d)
    Assert.Equal<int[]>([| 0; 0 |], RngCore.categorical (RngCore.key 14UL) [| 5.0; -3.0 |] 2 1)

let ``permutation: is a permutation, positions have mean (n-1)/2`` () =
    let n = 50
    let reps = 20_000
    let keys = RngCore.splitN (RngCore.key 15UL) reps
    let sums = Array.zeroCreate n
    for k in keys do
        let p = RngCore.permutation k n
        Assert.Equal<int[]>(Array.init n id, Array.sort p)
        for pos in 0 .. n - 1 do
            sums.[pos] <- sums.[pos] + float p.[pos]
    let mu = float (n - 1) / 2.0
    let sd = sqrt (float (n * n - 1) / 12.0)
    for pos in 0 .. n - 1 do
        let m = sums.[pos] / float reps
        Assert.True(abs (m - mu) < 5.0 * sd / sqrt (float reps), sprintf "position %d mean %g" pos m)
    let big = RngCore.permutation (RngCore.key 16UL) 1_000_000
    Assert.Equal<int[]>(Array.init 1_000_000 id, Array.sort big)

// ------------------------------------------------------------------ parallel vs sequential

type private Draw =
    | U32 of uint32[]
    | F64 of float[]
    | F32 of float32[]
    | I32 of int[]

let private allDraws (exec: Exec) (k: RngKey) (n: int) =
    let sh = Array.init n (fun i -> 0.2 + float (i % 97) * 0.5)
    let rates = Array.init n (fun i -> if i % 3 = 0 then 3.0 elif i % 3 = 1 then 40.0 else 1e6)
    let cols = 4
    let logits = Array.init (n * cols) (fun i -> float (i % 7) * 0.3)
    [| U32 (Samplers.bits exec k n)
       F64 (Samplers.uniform exec k n)
       F32 (Samplers.uniformF32 exec k n)
       F64 (Samplers.normal exec k n)
       F64 (Samplers.gamma exec k sh)
       F64 (Samplers.beta exec k sh (Array.rev sh))
       I32 (Samplers.poisson exec k rates)
       I32 (Samplers.categorical exec k logits n cols)
       I32 (Samplers.permutation exec k n) |]

let private assertSameDraws (a: Draw[]) (b: Draw[]) =
    Assert.Equal(a.Length, b.Length)
    for i in 0 .. a.Length - 1 do
        match a.[i], b.[i] with
        | F64 x, F64 y ->
            // bit-identical, not just equal (distinguishes -0.0)
            Assert.Equal<int64[]>(Array.map BitConverter.DoubleToInt64Bits x, Array.map BitConverter.DoubleToInt64Bits y)
        | F32 x, F32 y ->
            Assert.Equal<int[]>(Array.map BitConverter.SingleToInt32Bits x, Array.map BitConverter.SingleToInt32Bits y)
        | U32 x, U32 y -> Assert.Equal<uint32[]>(x, y)
        | I32 x, I32 y -> Assert.Equal<int[]>(x, y)
        | _ -> failwithf "draw %d: different kinds" i

let ``parallel and sequential paths are bit-identical for large n`` () =
    let k = RngCore.key 17UL
    let n = 150_001 // odd, not a multiple of the chunk or block size
    let seq = allDraws Exec.Sequential k n
    assertSameDraws seq (allDraws Exec.Parallel k n)
    assertSameDraws seq (allDraws Exec.Auto k n)
    // and the public API (Auto) agrees too
    assertSameDraws [| seq.[1]; seq.[3] |] [| F64 (RngCore.uniform k n); F64 (RngCore.normal k n) |]

let ``parallel path is bit-identical for small n as well`` () =
    let k = RngCore.key 18UL
    for n in [ 1; 2; 3; 1023; 1025; 16_385 ] do
        assertSameDraws (allDraws Exec.Sequential k n) (allDraws Exec.Parallel k n)

let ``concurrent draws from different keys equal sequential draws`` () =
    let keys = RngCore.splitN (RngCore.key 19UL) 8
    let n = 20_000
    let expected = keys |> Array.map (fun k -> allDraws Exec.Sequential k n)
    let results : Draw[][] = Array.zeroCreate keys.Length
    let tasks =
        keys
        |> Array.mapi (fun i k ->
            Task.Run(fun () ->
                // repeat so the threads really overlap
                for _ in 1 .. 3 do
                    results.[i] <- allDraws Exec.Auto k n))
    Task.WaitAll(tasks)
    for i in 0 .. keys.Length - 1 do
        assertSameDraws expected.[i] results.[i]
    // many threads sharing one key also agree
    let k = keys.[0]
    let shared = Array.init 8 (fun _ -> Task.Run(fun () -> RngCore.normal k 200_000)) |> Array.map (fun t -> t.Result)
    let reference = Samplers.normal Exec.Sequential k 200_000
    for r in shared do Assert.Equal<float[]>(reference, r)

// ------------------------------------------------------------------ validation

let ``invalid inputs throw ArgumentException naming the function and value`` () =
    let k = RngCore.key 0UL
    throwsWith [ "Rng.uniform"; "-1" ] (fun () -> box (RngCore.uniform k -1))
    throwsWith [ "Rng.uniformF32"; "-2" ] (fun () -> box (RngCore.uniformF32 k -2))
    throwsWith [ "Rng.normal"; "-3" ] (fun () -> box (RngCore.normal k -3))
    throwsWith [ "Rng.bits"; "-4" ] (fun () -> box (RngCore.bits k -4))
    throwsWith [ "Rng.permutation"; "-5" ] (fun () -> box (RngCore.permutation k -5))
    throwsWith [ "Rng.splitN"; "-6" ] (fun () -> box (RngCore.splitN k -6))
    throwsWith [ "Rng.gamma"; "shape[1]"; "-1" ] (fun () -> box (RngCore.gamma k [| 1.0; -1.0 |]))
    throwsWith [ "Rng.gamma"; "shape[0]"; "0" ] (fun () -> box (RngCore.gamma k [| 0.0 |]))
    throwsWith [ "Rng.gamma"; "NaN" ] (fun () -> box (RngCore.gamma k [| nan |]))
    throwsWith [ "Rng.gamma"; "Infinity" ] (fun () -> box (RngCore.gamma k [| infinity |]))
    throwsWith [ "Rng.beta"; "a[0]" ] (fun () -> box (RngCore.beta k [| -0.5 |] [| 1.0 |]))
    throwsWith [ "Rng.beta"; "b[0]"; "NaN" ] (fun () -> box (RngCore.beta k [| 0.5 |] [| nan |]))
    throwsWith [ "Rng.beta"; "same length"; "2"; "1" ] (fun () -> box (RngCore.beta k [| 1.0; 1.0 |] [| 1.0 |]))
    throwsWith [ "Rng.poisson"; "rate[2]"; "-1" ] (fun () -> box (RngCore.poisson k [| 1.0; 2.0; -1.0 |]))
    throwsWith [ "Rng.poisson"; "NaN" ] (fun () -> box (RngCore.poisson k [| nan |]))
    throwsWith [ "Rng.poisson"; "Infinity" ] (fun () -> box (RngCore.poisson k [| infinity |]))
    throwsWith [ "Rng.poisson"; "1e+10" ] (fun () -> box (RngCore.poisson k [| 1e10 |]))
    throwsWith [ "Rng.categorical"; "length 5"; "2*3" ] (fun () -> box (RngCore.categorical k (Array.zeroCreate 5) 2 3))
    throwsWith [ "Rng.categorical"; "logits[1,0]"; "NaN" ] (fun () -> box (RngCore.categorical k [| 0.0; 0.0; nan; 0.0 |] 2 2))
    throwsWith [ "Rng.categorical"; "+infinity" ] (fun () -> box (RngCore.categorical k [| 0.0; infinity |] 1 2))
    throwsWith [ "Rng.categorical"; "row 0"; "no finite" ] (fun () -> box (RngCore.categorical k [| -infinity; -infinity |] 1 2))
    throwsWith [ "Rng.categorical"; "rows"; "-1" ] (fun () -> box (RngCore.categorical k [||] -1 2))
    throwsWith [ "Rng.categorical"; "cols" ] (fun () -> box (RngCore.categorical k [||] 2 0))
    Assert.Throws<ArgumentNullException>(fun () -> RngCore.gamma k Unchecked.defaultof<float[]> |> ignore) |> ignore
    Assert.Throws<ArgumentNullException>(fun () -> RngCore.poisson k Unchecked.defaultof<float[]> |> ignore) |> ignore

[<Tests>]
let tests =
    testList "RandomTests" [
        testCase "Threefry-2x32-20 known-answer vectors (Random123 kat_vectors)" ``Threefry-2x32-20 known-answer vectors (Random123 kat_vectors)``
        testCase "SIMD fill equals scalar block for odd lengths and wrapping counters" ``SIMD fill equals scalar block for odd lengths and wrapping counters``
        testCase "keys: construction, equality and ToString" ``keys: construction, equality and ToString``
        testCase "split is deterministic, distinct and consistent with splitN" ``split is deterministic, distinct and consistent with splitN``
        testCase "same key gives the same numbers; different keys differ" ``same key gives the same numbers; different keys differ``
        testCase "element i depends only on (key, i): prefixes agree and other elements do not matter" ``element i depends only on (key, i): prefixes agree and other elements do not matter``
        testCase "streams of split keys are uncorrelated" ``streams of split keys are uncorrelated``
        testCase "uniform is in the open interval (0,1) with the right moments" ``uniform is in the open interval (0,1) with the right moments``
        testCase "uniformF32 is in (0,1) with the right moments" ``uniformF32 is in (0,1) with the right moments``
        testCase "bits are balanced" ``bits are balanced``
        testCase "zero-length draws" ``zero-length draws``
        testCase "ziggurat table is consistent" ``ziggurat table is consistent``
        testCase "normal: moments, KS and tails" ``normal: moments, KS and tails``
        testCase "gamma: moments and KS (0.3)" (fun () -> ``gamma: moments and KS`` (0.3))
        testCase "gamma: moments and KS (1.0)" (fun () -> ``gamma: moments and KS`` (1.0))
        testCase "gamma: moments and KS (2.5)" (fun () -> ``gamma: moments and KS`` (2.5))
        testCase "gamma: moments and KS (50.0)" (fun () -> ``gamma: moments and KS`` (50.0))
        testCase "gamma: tiny and huge shapes stay finite" ``gamma: tiny and huge shapes stay finite``
        testCase "beta: moments and KS (0.5, 0.5)" (fun () -> ``beta: moments and KS`` (0.5, 0.5))
        testCase "beta: moments and KS (2.0, 5.0)" (fun () -> ``beta: moments and KS`` (2.0, 5.0))
        testCase "beta: moments and KS (0.2, 3.0)" (fun () -> ``beta: moments and KS`` (0.2, 3.0))
        testCase "beta: tiny shapes give no NaN" ``beta: tiny shapes give no NaN``
        testCase "poisson: moments and pmf (0.5)" (fun () -> ``poisson: moments and pmf`` (0.5))
        testCase "poisson: moments and pmf (4.0)" (fun () -> ``poisson: moments and pmf`` (4.0))
        testCase "poisson: moments and pmf (9.99)" (fun () -> ``poisson: moments and pmf`` (9.99))
        testCase "poisson: moments and pmf (10.0)" (fun () -> ``poisson: moments and pmf`` (10.0))
        testCase "poisson: moments and pmf (30.0)" (fun () -> ``poisson: moments and pmf`` (30.0))
        testCase "poisson: moments and pmf (1e4)" (fun () -> ``poisson: moments and pmf`` (1e4))
        testCase "poisson: moments and pmf (1e6)" (fun () -> ``poisson: moments and pmf`` (1e6))
        testCase "poisson: zero rate and mixed rates" ``poisson: zero rate and mixed rates``
        testCase "logFactorial matches MathNet" ``logFactorial matches MathNet``
        testCase "categorical: frequencies match softmax" ``categorical: frequencies match softmax``
        testCase "categorical: per-row logits and a single column" ``categorical: per-row logits and a single column``
        testCase "permutation: is a permutation, positions have mean (n-1)/2" ``permutation: is a permutation, positions have mean (n-1)/2``
        testCase "parallel and sequential paths are bit-identical for large n" ``parallel and sequential paths are bit-identical for large n``
        testCase "parallel path is bit-identical for small n as well" ``parallel path is bit-identical for small n as well``
        testCase "concurrent draws from different keys equal sequential draws" ``concurrent draws from different keys equal sequential draws``
        testCase "invalid inputs throw ArgumentException naming the function and value" ``invalid inputs throw ArgumentException naming the function and value``
    ]
