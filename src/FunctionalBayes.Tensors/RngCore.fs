namespace FunctionalBayes.Tensors

open System
open System.Numerics
open System.Runtime.CompilerServices
open System.Threading.Tasks

/// An immutable PRNG key (JAX-style): two 32-bit words used as the key of the
/// Threefry-2x32-20 block cipher. Splitting never mutates; the same key gives the
/// same numbers on any thread, in any process, on any machine.
///
/// A key should be consumed by exactly one draw; derive fresh keys with
/// `Rng.split`, `Rng.splitN` or `Rng.foldIn`.
[<Struct; CustomEquality; NoComparison>]
type RngKey =
    val K0 : uint32
    val K1 : uint32
    new(k0: uint32, k1: uint32) = { K0 = k0; K1 = k1 }

    member k.Equals(other: RngKey) = k.K0 = other.K0 && k.K1 = other.K1

    override k.Equals(o: obj) =
        match o with
        | :? RngKey as other -> k.Equals other
        | _ -> false

    override k.GetHashCode() = int (k.K0 * 0x9E3779B1u) ^^^ int k.K1
    override k.ToString() = sprintf "RngKey(0x%08x, 0x%08x)" k.K0 k.K1

    interface IEquatable<RngKey> with
        member k.Equals(other: RngKey) = k.Equals other

/// Implementation details of `Rng` (internal; tests reach them via InternalsVisibleTo).
/// Everything lives under this one name to avoid clashes inside the host assembly.
[<OptimizeFromFirstCall>]
module internal RngImpl =

    /// Execution policy for draws (internal; exposed to tests through InternalsVisibleTo).
    /// Every policy gives bit-identical results; it only changes how work is scheduled.
    [<RequireQualifiedAccess>]
    type Exec =
        /// Parallel.For over chunks when n is large enough (the default).
        | Auto
        /// Always a single thread.
        | Sequential
        /// Always Parallel.For over chunks, whatever n.
        | Parallel

    /// Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror, Shaw 2011, "Parallel random
    /// numbers: as easy as 1, 2, 3"), scalar and SIMD (System.Numerics.Vector) forms.
    module Threefry =

        [<Literal>]
        let Parity = 0x1BD11BDAu

        let inline private rotl (x: uint32) (r: int) = (x <<< r) ||| (x >>> (32 - r))

        /// One Threefry-2x32-20 block: key (k0,k1), counter (c0,c1) -> two words.
        let block (k0: uint32) (k1: uint32) (c0: uint32) (c1: uint32) : struct (uint32 * uint32) =
            let k2 = Parity ^^^ k0 ^^^ k1
            let mutable x0 = c0 + k0
            let mutable x1 = c1 + k1
            // rounds 0-3
            x0 <- x0 + x1; x1 <- rotl x1 13 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 15 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 26 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 6 ^^^ x0
            x0 <- x0 + k1; x1 <- x1 + k2 + 1u
            // rounds 4-7
            x0 <- x0 + x1; x1 <- rotl x1 17 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 29 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 16 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 24 ^^^ x0
            x0 <- x0 + k2; x1 <- x1 + k0 + 2u
            // rounds 8-11
            x0 <- x0 + x1; x1 <- rotl x1 13 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 15 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 26 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 6 ^^^ x0
            x0 <- x0 + k0; x1 <- x1 + k1 + 3u
            // rounds 12-15
            x0 <- x0 + x1; x1 <- rotl x1 17 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 29 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 16 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 24 ^^^ x0
            x0 <- x0 + k1; x1 <- x1 + k2 + 4u
            // rounds 16-19
            x0 <- x0 + x1; x1 <- rotl x1 13 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 15 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 26 ^^^ x0
            x0 <- x0 + x1; x1 <- rotl x1 6 ^^^ x0
            x0 <- x0 + k2; x1 <- x1 + k0 + 5u
            struct (x0, x1)

        let inline private vrotl (x: Vector<uint32>) (r: int) =
            Vector.ShiftLeft(x, r) ||| Vector.ShiftRightLogical(x, 32 - r)

        let private iota =
            let a = Array.init Vector<uint32>.Count uint32
            Vector<uint32>(a)

        /// Fills out0[0..count-1], out1[0..count-1] with the blocks for counters
        /// (c0start + t, c1), t = 0..count-1. SIMD when available; bit-identical to `block`.
        let fill (k0: uint32) (k1: uint32) (c0start: uint32) (c1: uint32)
                 (out0: uint32[]) (out1: uint32[]) (count: int) =
            let mutable t = 0
            if Vector.IsHardwareAccelerated then
                let w = Vector<uint32>.Count
                let vk0 = Vector<uint32>(k0)
                let vk1 = Vector<uint32>(k1)
                let vk2 = Vector<uint32>(Parity ^^^ k0 ^^^ k1)
                let one = Vector<uint32>(1u)
                let vx1init = Vector<uint32>(c1 + k1)
                let mutable base0 = Vector<uint32>(c0start + k0) + iota
                let stride = Vector<uint32>(uint32 w)
                while t + w <= count do
                    let mutable x0 = base0
                    let mutable x1 = vx1init
                    x0 <- x0 + x1; x1 <- vrotl x1 13 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 15 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 26 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 6 ^^^ x0
                    x0 <- x0 + vk1; x1 <- x1 + vk2 + one
                    x0 <- x0 + x1; x1 <- vrotl x1 17 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 29 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 16 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 24 ^^^ x0
                    x0 <- x0 + vk2; x1 <- x1 + vk0 + Vector<uint32>(2u)
                    x0 <- x0 + x1; x1 <- vrotl x1 13 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 15 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 26 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 6 ^^^ x0
                    x0 <- x0 + vk0; x1 <- x1 + vk1 + Vector<uint32>(3u)
                    x0 <- x0 + x1; x1 <- vrotl x1 17 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 29 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 16 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 24 ^^^ x0
                    x0 <- x0 + vk1; x1 <- x1 + vk2 + Vector<uint32>(4u)
                    x0 <- x0 + x1; x1 <- vrotl x1 13 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 15 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 26 ^^^ x0
                    x0 <- x0 + x1; x1 <- vrotl x1 6 ^^^ x0
                    x0 <- x0 + vk2; x1 <- x1 + vk0 + Vector<uint32>(5u)
                    x0.CopyTo(out0, t)
                    x1.CopyTo(out1, t)
                    base0 <- base0 + stride
                    t <- t + w
            while t < count do
                let struct (a, b) = block k0 k1 (c0start + uint32 t) c1
                out0.[t] <- a
                out1.[t] <- b
                t <- t + 1

    /// Per-element random stream: the j-th 64-bit word of element i under domain d is
    /// Threefry(key, (i, d<<<24 ||| j)). Only (key, domain, i) determine it.
    [<Struct; NoEquality; NoComparison>]
    type Stream =
        val K0 : uint32
        val K1 : uint32
        val C0 : uint32
        val mutable C1 : uint32
        new(k0, k1, c0, c1) = { K0 = k0; K1 = k1; C0 = c0; C1 = c1 }

    module Bits =
        /// Domains keep draws of different kinds from one key independent. The top byte of
        /// the second counter word is the domain; the low 24 bits count words in the stream.
        [<Literal>]
        let DomBits = 0u
        [<Literal>]
        let DomUniform = 1u
        [<Literal>]
        let DomUniformF32 = 2u
        [<Literal>]
        let DomNormal = 3u
        [<Literal>]
        let DomGamma = 4u
        [<Literal>]
        let DomBeta = 5u
        [<Literal>]
        let DomPoisson = 6u
        [<Literal>]
        let DomCategorical = 7u
        [<Literal>]
        let DomPermutation = 8u
        /// Second counter word for key derivation (domain 0xFF).
        [<Literal>]
        let SplitCtr = 0xFFFFFFFFu
        [<Literal>]
        let FoldInCtr = 0xFFFFFFFEu

        let inline c1Of (domain: uint32) (j: uint32) = (domain <<< 24) ||| j

        /// 2^-53
        [<Literal>]
        let Inv2p53 = 1.1102230246251565e-16

        /// A double in the open interval (0,1) from two words: (2k+1)/2^53 with k the top
        /// 52 of the 64 bits. 2^52 equally spaced values, symmetric about 1/2, never 0 or 1.
        [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
        let toOpenDouble (hi: uint32) (lo: uint32) =
            let k = (int64 hi <<< 20) ||| int64 (lo >>> 12)
            float (2L * k + 1L) * Inv2p53

        [<MethodImpl(MethodImplOptions.AggressiveInlining)>]
        let toOpenSingle (w: uint32) =
            let k = int (w >>> 9)
            float32 (2 * k + 1) * 5.96046448e-08f // 2^-24

        let newStream (key: RngKey) (domain: uint32) (i: int) (j: uint32) =
            Stream(key.K0, key.K1, uint32 i, c1Of domain j)

        let nextWords (s: byref<Stream>) : struct (uint32 * uint32) =
            let r = Threefry.block s.K0 s.K1 s.C0 s.C1
            if s.C1 &&& 0x00FFFFFFu = 0x00FFFFFFu then
                invalidOp "Rng: per-element random stream exhausted (2^24 blocks)."
            s.C1 <- s.C1 + 1u
            r

        let nextDouble (s: byref<Stream>) =
            let struct (a, b) = nextWords &s
            toOpenDouble a b

    /// Ziggurat method for the standard normal (Marsaglia & Tsang 2000), 256 layers.
    module Ziggurat =
        [<Literal>]
        let R = 3.6541528853610088
        [<Literal>]
        let V = 4.92867323399e-3

        let inline private f x = exp (-0.5 * x * x)

        /// X.[0] = V/f(R) (virtual width of the base strip), X.[1] = R, decreasing, X.[256] = 0.
        let X : float[] =
            let x = Array.zeroCreate 257
            x.[0] <- V / f R
            x.[1] <- R
            for i in 2 .. 255 do
                x.[i] <- sqrt (-2.0 * log (V / x.[i - 1] + f x.[i - 1]))
            x.[256] <- 0.0
            x

        let F : float[] = X |> Array.map f

        /// Slow path: the wedge or tail test failed; continue on the element's stream.
        let slow (s: byref<Stream>) (w0: uint32) (w1: uint32) : float =
            let mutable hi = w0
            let mutable lo = w1
            let mutable result = nan
            let mutable fin = false
            while not fin do
                let i = int (lo &&& 0xFFu)
                let neg = (lo &&& 0x100u) <> 0u
                let u = float ((int64 hi <<< 20) ||| int64 (lo >>> 12)) * 2.220446049250313e-16
                let z = u * X.[i]
                if z < X.[i + 1] then
                    result <- (if neg then -z else z); fin <- true
                elif i = 0 then
                    // tail beyond R (Marsaglia 1964)
                    let mutable t = 0.0
                    let mutable ok = false
                    while not ok do
                        let xx = -(log (Bits.nextDouble &s)) / R
                        let yy = -(log (Bits.nextDouble &s))
                        if yy + yy > xx * xx then
                            t <- R + xx; ok <- true
                    result <- (if neg then -t else t); fin <- true
                else
                    let y = F.[i] + Bits.nextDouble &s * (F.[i + 1] - F.[i])
                    if y < f z then
                        result <- (if neg then -z else z); fin <- true
                    else
                        let struct (a, b) = Bits.nextWords &s
                        hi <- a; lo <- b
            result

        /// One standard normal from the element's stream.
        let next (s: byref<Stream>) =
            let struct (w0, w1) = Bits.nextWords &s
            let i = int (w1 &&& 0xFFu)
            let u = float ((int64 w0 <<< 20) ||| int64 (w1 >>> 12)) * 2.220446049250313e-16
            let z = u * X.[i]
            if z < X.[i + 1] then
                if (w1 &&& 0x100u) <> 0u then -z else z
            else
                slow &s w0 w1

    /// Chunked (optionally parallel) driver. Work is split in fixed sub-blocks; an element's
    /// value never depends on the partition, so all policies give identical output.
    module Driver =
        /// Elements per sub-block handed to a body (buffers of this size are reused).
        [<Literal>]
        let Block = 1024
        /// Elements per parallel task.
        [<Literal>]
        let Chunk = 16384

        /// body lo hi buf0 buf1 processes elements [lo, hi), hi - lo <= Block.
        let run (exec: Exec) (n: int) (threshold: int) (body: int -> int -> uint32[] -> uint32[] -> unit) =
            let doRange lo hi =
                let b0 = Array.zeroCreate (min Block (hi - lo))
                let b1 = Array.zeroCreate (min Block (hi - lo))
                let mutable s = lo
                while s < hi do
                    let e = min hi (s + Block)
                    body s e b0 b1
                    s <- e
            let par =
                match exec with
                | Exec.Sequential -> false
                | Exec.Parallel -> true
                | Exec.Auto -> n >= threshold && Environment.ProcessorCount > 1
            if n > 0 then
                if not par then doRange 0 n
                else
                    let chunks = (n + Chunk - 1) / Chunk
                    Parallel.For(0, chunks, fun c -> doRange (c * Chunk) (min n ((c + 1) * Chunk) )) |> ignore

    module Special =
        /// log(k!) : exact table below 256, Stirling series above (|error| < 1e-16 relative).
        let private table =
            let t = Array.zeroCreate 256
            let mutable acc = 0.0
            for k in 1 .. 255 do
                acc <- acc + log (float k)
                t.[k] <- acc
            t

        let logFactorial (k: float) =
            if k < 256.0 then table.[int k]
            else
                let x = k + 1.0
                let x2 = x * x
                (x - 0.5) * log x - x + 0.91893853320467274178
                + (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / (1260.0 * x2)) / x2) / x

    /// Samplers on raw arrays. See `Rng` for the public API.
    module Samplers =
        open Bits

        let checkN (fn: string) (n: int) =
            if n < 0 then
                invalidArg "n" (sprintf "Rng.%s: n must be non-negative, got %d." fn n)

        let bits (exec: Exec) (key: RngKey) (n: int) : uint32[] =
            checkN "bits" n
            let out : uint32[] = Array.zeroCreate n
            let pairs = (n + 1) / 2
            Driver.run exec pairs 100_000 (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomBits 0u) b0 b1 (hi - lo)
                for p in lo .. hi - 1 do
                    out.[2 * p] <- b0.[p - lo]
                    if 2 * p + 1 < n then out.[2 * p + 1] <- b1.[p - lo])
            out

        let uniform (exec: Exec) (key: RngKey) (n: int) : float[] =
            checkN "uniform" n
            let out : float[] = Array.zeroCreate n
            Driver.run exec n 100_000 (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomUniform 0u) b0 b1 (hi - lo)
                for t in 0 .. hi - lo - 1 do
                    out.[lo + t] <- toOpenDouble b0.[t] b1.[t])
            out

        let uniformF32 (exec: Exec) (key: RngKey) (n: int) : float32[] =
            checkN "uniformF32" n
            let out : float32[] = Array.zeroCreate n
            let pairs = (n + 1) / 2
            Driver.run exec pairs 100_000 (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomUniformF32 0u) b0 b1 (hi - lo)
                for p in lo .. hi - 1 do
                    out.[2 * p] <- toOpenSingle b0.[p - lo]
                    if 2 * p + 1 < n then out.[2 * p + 1] <- toOpenSingle b1.[p - lo])
            out

        let normal (exec: Exec) (key: RngKey) (n: int) : float[] =
            checkN "normal" n
            let out : float[] = Array.zeroCreate n
            Driver.run exec n 100_000 (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomNormal 0u) b0 b1 (hi - lo)
                let X = Ziggurat.X
                for t in 0 .. hi - lo - 1 do
                    let w0 = b0.[t]
                    let w1 = b1.[t]
                    let i = int (w1 &&& 0xFFu)
                    let u = float ((int64 w0 <<< 20) ||| int64 (w1 >>> 12)) * 2.220446049250313e-16
                    let z = u * X.[i]
                    out.[lo + t] <-
                        if z < X.[i + 1] then
                            // branch-free sign from bit 8
                            BitConverter.Int64BitsToDouble(
                                BitConverter.DoubleToInt64Bits z ^^^ (int64 (w1 &&& 0x100u) <<< 55))
                        else
                            let mutable s = newStream key DomNormal (lo + t) 1u
                            Ziggurat.slow &s w0 w1)
            out

        // ---------------------------------------------------------------- gamma / beta

        /// log of a Gamma(a, 1) variate, a >= 1 (Marsaglia & Tsang 2000).
        let private logGammaGE1 (s: byref<Stream>) (a: float) : float =
            let d = a - 1.0 / 3.0
            let c = 1.0 / sqrt (9.0 * d)
            let mutable result = nan
            let mutable fin = false
            while not fin do
                let x = Ziggurat.next &s
                let t = 1.0 + c * x
                if t > 0.0 then
                    let v = t * t * t
                    let u = nextDouble &s
                    let x2 = x * x
                    if u < 1.0 - 0.0331 * x2 * x2 then
                        result <- log d + log v; fin <- true
                    else
                        let lv = log v
                        if log u < 0.5 * x2 + d * (1.0 - v + lv) then
                            result <- log d + lv; fin <- true
            result

        /// log of a Gamma(a, 1) variate for any a > 0; a < 1 uses G(a+1)·U^(1/a), in log space
        /// so that tiny shapes do not underflow.
        let logGammaSample (s: byref<Stream>) (a: float) : float =
            if a >= 1.0 then logGammaGE1 &s a
            else
                let lg = logGammaGE1 &s (a + 1.0)
                let u = nextDouble &s
                lg + log u / a

        let gammaSample (s: byref<Stream>) (a: float) : float =
            if a >= 1.0 then
                // direct form (avoids exp/log round trip)
                let d = a - 1.0 / 3.0
                let c = 1.0 / sqrt (9.0 * d)
                let mutable result = nan
                let mutable fin = false
                while not fin do
                    let x = Ziggurat.next &s
                    let t = 1.0 + c * x
                    if t > 0.0 then
                        let v = t * t * t
                        let u = nextDouble &s
                        let x2 = x * x
                        if u < 1.0 - 0.0331 * x2 * x2 || log u < 0.5 * x2 + d * (1.0 - v + log v) then
                            result <- d * v; fin <- true
                result
            else exp (logGammaSample &s a)

        let checkShapes (fn: string) (name: string) (a: float[]) =
            if obj.ReferenceEquals(a, null) then nullArg name
            for i in 0 .. a.Length - 1 do
                let x = a.[i]
                if not (x > 0.0) || Double.IsInfinity x then
                    invalidArg name (sprintf "Rng.%s: %s[%d] = %g; shape parameters must be positive and finite." fn name i x)

        let gamma (exec: Exec) (key: RngKey) (shape: float[]) : float[] =
            checkShapes "gamma" "shape" shape
            let n = shape.Length
            let out : float[] = Array.zeroCreate n
            Driver.run exec n 16_384 (fun lo hi _ _ ->
                for i in lo .. hi - 1 do
                    let mutable s = newStream key DomGamma i 0u
                    out.[i] <- gammaSample &s shape.[i])
            out

        let betaSample (s: byref<Stream>) (a: float) (b: float) =
            if a >= 1.0 && b >= 1.0 then
                let x = gammaSample &s a
                let y = gammaSample &s b
                x / (x + y)
            else
                // log space: robust for tiny shapes where the gammas underflow to 0
                let lx = logGammaSample &s a
                let ly = logGammaSample &s b
                if lx >= ly then 1.0 / (1.0 + exp (ly - lx))
                else
                    let e = exp (lx - ly)
                    e / (1.0 + e)

        let beta (exec: Exec) (key: RngKey) (a: float[]) (b: float[]) : float[] =
            checkShapes "beta" "a" a
            checkShapes "beta" "b" b
            if a.Length <> b.Length then
                invalidArg "b" (sprintf "Rng.beta: a and b must have the same length, got %d and %d." a.Length b.Length)
            let n = a.Length
            let out : float[] = Array.zeroCreate n
            Driver.run exec n 16_384 (fun lo hi _ _ ->
                for i in lo .. hi - 1 do
                    let mutable s = newStream key DomBeta i 0u
                    out.[i] <- betaSample &s a.[i] b.[i])
            out

        // ---------------------------------------------------------------- poisson

        [<Literal>]
        let MaxPoissonRate = 1e9

        /// Inversion by sequential search (one uniform); for rate < 10.
        let private poissonInversion (s: byref<Stream>) (lam: float) : int =
            let u = nextDouble &s
            let mutable p = exp (-lam)
            let mutable cdf = p
            let mutable k = 0
            // cdf converges to 1 - O(eps); cap guards against a u above the rounded total
            while u > cdf && k < 200 do
                k <- k + 1
                p <- p * lam / float k
                cdf <- cdf + p
            k

        /// PTRS: transformed rejection with squeeze (Hörmann 1993); for rate >= 10.
        let private poissonPtrs (s: byref<Stream>) (lam: float) : int =
            let slam = sqrt lam
            let loglam = log lam
            let b = 0.931 + 2.53 * slam
            let a = -0.059 + 0.02483 * b
            let invalpha = 1.1239 + 1.1328 / (b - 3.4)
            let vr = 0.9277 - 3.6224 / (b - 2.0)
            let logInvAlpha = log invalpha
            let mutable result = 0
            let mutable fin = false
            while not fin do
                let u = nextDouble &s - 0.5
                let v = nextDouble &s
                let us = 0.5 - abs u
                let k = floor ((2.0 * a / us + b) * u + lam + 0.43)
                if us >= 0.07 && v <= vr then
                    result <- int k; fin <- true
                elif k >= 0.0 && not (us < 0.013 && v > us) then
                    if log v + logInvAlpha - log (a / (us * us) + b) <= -lam + k * loglam - Special.logFactorial k then
                        result <- int k; fin <- true
            result

        let poissonSample (s: byref<Stream>) (lam: float) : int =
            if lam = 0.0 then 0
            elif lam < 10.0 then poissonInversion &s lam
            else poissonPtrs &s lam

        let poisson (exec: Exec) (key: RngKey) (rate: float[]) : int[] =
            if obj.ReferenceEquals(rate, null) then nullArg "rate"
            for i in 0 .. rate.Length - 1 do
                let r = rate.[i]
                if not (r >= 0.0) || r > MaxPoissonRate then
                    invalidArg "rate" (sprintf "Rng.poisson: rate[%d] = %g; rates must be finite, >= 0 and <= %g." i r MaxPoissonRate)
            let n = rate.Length
            let out : int[] = Array.zeroCreate n
            Driver.run exec n 16_384 (fun lo hi _ _ ->
                for i in lo .. hi - 1 do
                    let mutable s = newStream key DomPoisson i 0u
                    out.[i] <- poissonSample &s rate.[i])
            out

        // ---------------------------------------------------------------- categorical

        let categorical (exec: Exec) (key: RngKey) (logits: float[]) (rows: int) (cols: int) : int[] =
            if obj.ReferenceEquals(logits, null) then nullArg "logits"
            if rows < 0 then invalidArg "rows" (sprintf "Rng.categorical: rows must be non-negative, got %d." rows)
            if cols < 0 then invalidArg "cols" (sprintf "Rng.categorical: cols must be non-negative, got %d." cols)
            if int64 logits.Length <> int64 rows * int64 cols then
                invalidArg "logits"
                    (sprintf "Rng.categorical: logits length %d does not equal rows*cols = %d*%d = %d."
                        logits.Length rows cols (int64 rows * int64 cols))
            if rows > 0 && cols = 0 then
                invalidArg "cols" "Rng.categorical: cols must be positive when rows > 0 (no categories to draw from)."
            for r in 0 .. rows - 1 do
                let mutable anyFinite = false
                for c in 0 .. cols - 1 do
                    let x = logits.[r * cols + c]
                    if Double.IsNaN x then
                        invalidArg "logits" (sprintf "Rng.categorical: logits[%d,%d] is NaN." r c)
                    if Double.IsPositiveInfinity x then
                        invalidArg "logits" (sprintf "Rng.categorical: logits[%d,%d] is +infinity." r c)
                    if not (Double.IsNegativeInfinity x) then anyFinite <- true
                if not anyFinite then
                    invalidArg "logits" (sprintf "Rng.categorical: row %d has no finite logit (all -infinity)." r)
            let out : int[] = Array.zeroCreate rows
            let threshold = max 1 (1_000_000 / max 1 cols)
            Driver.run exec rows threshold (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomCategorical 0u) b0 b1 (hi - lo)
                for r in lo .. hi - 1 do
                    let off = r * cols
                    let mutable m = Double.NegativeInfinity
                    for c in 0 .. cols - 1 do
                        if logits.[off + c] > m then m <- logits.[off + c]
                    let mutable total = 0.0
                    for c in 0 .. cols - 1 do
                        total <- total + exp (logits.[off + c] - m)
                    // inverse CDF on softmax, one uniform per row
                    let target = toOpenDouble b0.[r - lo] b1.[r - lo] * total
                    let mutable cum = 0.0
                    let mutable pick = -1
                    let mutable lastPositive = 0
                    let mutable c = 0
                    while pick < 0 && c < cols do
                        let p = exp (logits.[off + c] - m)
                        if p > 0.0 then
                            lastPositive <- c
                            cum <- cum + p
                            if cum > target then pick <- c
                        c <- c + 1
                    out.[r] <- if pick >= 0 then pick else lastPositive)
            out

        // ---------------------------------------------------------------- permutation

        /// Sort indices by a 64-bit random key per index (key depends on (key, i) only).
        /// Exactly uniform unless two of the n 64-bit keys collide (probability < n^2/2^65).
        let permutation (exec: Exec) (key: RngKey) (n: int) : int[] =
            checkN "permutation" n
            let keys : uint64[] = Array.zeroCreate n
            let idx : int[] = Array.init n id
            Driver.run exec n 100_000 (fun lo hi b0 b1 ->
                Threefry.fill key.K0 key.K1 (uint32 lo) (c1Of DomPermutation 0u) b0 b1 (hi - lo)
                for t in 0 .. hi - lo - 1 do
                    keys.[lo + t] <- (uint64 b0.[t] <<< 32) ||| uint64 b1.[t])
            Array.Sort(keys, idx)
            idx

/// Splittable, counter-based random numbers (Threefry-2x32-20, JAX-style keys).
///
/// Element i of every draw depends only on (key, i): results are identical whether the
/// work runs on one thread or many. Draws of different kinds from the same key use
/// separate counter domains, but a key should still be used for one draw only; derive
/// new keys with `split`/`splitN`/`foldIn`.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal RngCore =
    open RngImpl

    /// A key from a 64-bit seed: words (high 32 bits, low 32 bits), as jax.random.PRNGKey.
    let key (seed: uint64) : RngKey = RngKey(uint32 (seed >>> 32), uint32 seed)

    /// A key from an int seed (sign-extended to 64 bits, so ofInt -1 = key UInt64.MaxValue).
    let ofInt (seed: int) : RngKey = key (uint64 (int64 seed))

    /// n new keys: key i = Threefry(key, (i, 0xFFFFFFFF)).
    let splitN (key: RngKey) (n: int) : RngKey[] =
        if n < 0 then invalidArg "n" (sprintf "Rng.splitN: n must be non-negative, got %d." n)
        Array.init n (fun i ->
            let struct (a, b) = Threefry.block key.K0 key.K1 (uint32 i) Bits.SplitCtr
            RngKey(a, b))

    /// Two new keys (the same as the first two of splitN key n, for any n >= 2).
    let split (key: RngKey) : RngKey * RngKey =
        let struct (a0, b0) = Threefry.block key.K0 key.K1 0u Bits.SplitCtr
        let struct (a1, b1) = Threefry.block key.K0 key.K1 1u Bits.SplitCtr
        RngKey(a0, b0), RngKey(a1, b1)

    /// A new key derived from key and an integer (e.g. a loop index or site id).
    let foldIn (key: RngKey) (data: int) : RngKey =
        let struct (a, b) = Threefry.block key.K0 key.K1 (uint32 data) Bits.FoldInCtr
        RngKey(a, b)

    /// n uniformly random 32-bit words.
    let bits (key: RngKey) (n: int) : uint32[] = Samplers.bits Exec.Auto key n

    /// n doubles uniform on the open interval (0,1): values (2k+1)/2^53, k < 2^52.
    let uniform (key: RngKey) (n: int) : float[] = Samplers.uniform Exec.Auto key n

    /// n singles uniform on the open interval (0,1): values (2k+1)/2^24, k < 2^23.
    let uniformF32 (key: RngKey) (n: int) : float32[] = Samplers.uniformF32 Exec.Auto key n

    /// n standard normal draws (256-layer ziggurat, Marsaglia & Tsang 2000).
    let normal (key: RngKey) (n: int) : float[] = Samplers.normal Exec.Auto key n

    /// Element i of `uniform key n` (for any n > i), computed alone: no allocation.
    let uniformAt (key: RngKey) (i: int) : float =
        if i < 0 then invalidArg "i" (sprintf "Rng.uniformAt: the index must be non-negative, got %d." i)
        let struct (a, b) = Threefry.block key.K0 key.K1 (uint32 i) (Bits.c1Of Bits.DomUniform 0u)
        Bits.toOpenDouble a b

    /// Writes the same numbers as `normal key dest.Length` into dest, without allocating.
    let normalInto (key: RngKey) (dest: Span<float>) : unit =
        let X = Ziggurat.X
        for t in 0 .. dest.Length - 1 do
            let struct (w0, w1) = Threefry.block key.K0 key.K1 (uint32 t) (Bits.c1Of Bits.DomNormal 0u)
            let i = int (w1 &&& 0xFFu)
            let u = float ((int64 w0 <<< 20) ||| int64 (w1 >>> 12)) * 2.220446049250313e-16
            let z = u * X.[i]
            dest.[t] <-
                if z < X.[i + 1] then (if (w1 &&& 0x100u) <> 0u then -z else z)
                else
                    let mutable s = Bits.newStream key Bits.DomNormal t 1u
                    Ziggurat.slow &s w0 w1

    /// Gamma(shape.[i], rate 1) per element (Marsaglia & Tsang 2000; shape < 1 via U^(1/a)).
    /// For very small shapes the result may underflow to 0.0.
    let gamma (key: RngKey) (shape: float[]) : float[] = Samplers.gamma Exec.Auto key shape

    /// Beta(a.[i], b.[i]) per element via two gammas (log space when a shape is < 1).
    let beta (key: RngKey) (a: float[]) (b: float[]) : float[] = Samplers.beta Exec.Auto key a b

    /// Poisson(rate.[i]) per element; inversion for rate < 10, PTRS (Hörmann 1993) above.
    /// Rates must be finite, >= 0 and <= 1e9.
    let poisson (key: RngKey) (rate: float[]) : int[] = Samplers.poisson Exec.Auto key rate

    /// One category index per row of a rows×cols row-major matrix of unnormalised
    /// log-probabilities (-infinity allowed for impossible categories).
    let categorical (key: RngKey) (logits: float[]) (rows: int) (cols: int) : int[] =
        Samplers.categorical Exec.Auto key logits rows cols

    /// A uniformly random permutation of 0..n-1.
    let permutation (key: RngKey) (n: int) : int[] = Samplers.permutation Exec.Auto key n
