namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr: every range the loops touch is checked against its array first.

open System
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop

/// The fused GLM log likelihood (Op.GlmLogLikelihood) over flat float64 arrays. Per block of rows (about
/// 16 KB of x): η = x·β + α, the log likelihood, the residual r = y − E[y | η] and Xᵀr while those rows
/// are still in L1, so value and gradient take one pass over x from memory. Every sum runs in a fixed
/// order (one thread), so a call gives the same bits every time.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal GlmKernel =

    /// log p(y | η) and r = y − E[y | η] of one row whose mask is set.
    let private rowScalar (family: GlmFamily) (eta: float) (y: float) : struct (float * float) =
        match family with
        | GlmFamily.BernoulliLogit ->
            // log σ(η) at y = 1, log σ(−η) at y = 0: −softplus((1 − 2y)·η), as BernoulliLogits writes it
            struct (-(Special.softplus (if y = 1.0 then -eta else eta)), y - Special.sigmoid eta)
        | GlmFamily.PoissonLog ->
            let e = Math.Exp eta
            struct (y * eta - e, y - e)

    /// Rows 0 .. m4 − 1 (m4 a multiple of 4) of a block, four at a time, from η (α added), y and the mask:
    /// lp summed into lpAcc by lane, r (0 where the mask is 0) written to r and summed into rAcc by lane.
    /// Bernoulli: u = e^(−|η|) ∈ (0, 1] gives softplus(±η) = max(±η, 0) + log1p u and σ(η) = 1/(1 + u) or
    /// u/(1 + u); one division, t = 1/((2 + u)(1 + u)), gives both 2/(2 + u) for Special.log1pUnit256 and
    /// 1/(1 + u) (Vector256.Log costs twice the series).
    let private bernoulliRows (m4: int) (eta: nativeptr<float>) (y: nativeptr<float>) (mask: nativeptr<float>) (r: nativeptr<float>)
                              (lpAcc: byref<Vector256<float>>) (rAcc: byref<Vector256<float>>) =
        let one = Vector256.Create 1.0
        let two = Vector256.Create 2.0
        let zero = Vector256<float>.Zero
        let negInf = Vector256.Create Double.NegativeInfinity
        let mutable lpA = lpAcc
        let mutable rA = rAcc
        let mutable i = 0
        while i < m4 do
            let e = Vector256.Load(NativePtr.add eta i)
            let yv = Vector256.Load(NativePtr.add y i)
            let u = Special.expNonPositive256 (-(Vector256.Abs e))
            let w = one + u
            let v = two + u
            let t = one / (v * w)
            let l = Special.log1pUnit256 u (two * w * t)
            let rw = v * t
            let sigma = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(e, zero), rw, u * rw)
            let sx = Vector256.ConditionalSelect(Vector256.Equals(yv, one), -e, e)
            let unset = Vector256.Equals(Vector256.Load(NativePtr.add mask i), zero)
            lpA <- lpA + Vector256.ConditionalSelect(unset, negInf, -(Vector256.Max(sx, zero) + l))
            let rv = Vector256.ConditionalSelect(unset, zero, yv - sigma)
            Vector256.Store(rv, NativePtr.add r i)
            rA <- rA + rv
            i <- i + 4
        lpAcc <- lpA
        rAcc <- rA

    /// bernoulliRows for Poisson: lp = y·η − e^η, r = y − e^η.
    let private poissonRows (m4: int) (eta: nativeptr<float>) (y: nativeptr<float>) (mask: nativeptr<float>) (r: nativeptr<float>)
                            (lpAcc: byref<Vector256<float>>) (rAcc: byref<Vector256<float>>) =
        let zero = Vector256<float>.Zero
        let negInf = Vector256.Create Double.NegativeInfinity
        let mutable lpA = lpAcc
        let mutable rA = rAcc
        let mutable i = 0
        while i < m4 do
            let e = Vector256.Load(NativePtr.add eta i)
            let yv = Vector256.Load(NativePtr.add y i)
            let ex = Vector256.Exp e
            let unset = Vector256.Equals(Vector256.Load(NativePtr.add mask i), zero)
            lpA <- lpA + Vector256.ConditionalSelect(unset, negInf, yv * e - ex)
            let rv = Vector256.ConditionalSelect(unset, zero, yv - ex)
            Vector256.Store(rv, NativePtr.add r i)
            rA <- rA + rv
            i <- i + 4
        lpAcc <- lpA
        rAcc <- rA

    let private need (a: float[]) (o: int) (len: int) (what: string) =
        if o < 0 || len < 0 || o + len > a.Length then
            invalidOp (sprintf "GlmKernel.run: %s (offset %d, length %d) is outside its buffer of %d." what o len a.Length)

    /// The most rows of a block (the size of the stack buffers for η and r).
    [<Literal>]
    let private MaxBlock = 512

    /// Rows per block: about 16 KB of x, so that the block read for η is still in L1 for Xᵀr.
    let private blockRows (d: int) = max 8 (min MaxBlock ((2048 / max d 1) &&& ~~~7))

    /// Σᵢ lpᵢ over the n rows of x (n×d, row-major at xo), η = x·β + α (α: one value at ao, or n values
    /// when perRow); lpᵢ = −∞ where mask is 0 (anything else, NaN too, is set). When `grad`:
    /// g[go .. go + d) = Xᵀr and g[go + d] = Σ r, with rᵢ = 0 where the mask is 0; when `keepR`: r[ro + i] = rᵢ.
    /// Unused outputs may be empty arrays. Per block of rows: η by Gemv.gemvN64, then lp and r four rows at a
    /// time, then Xᵀr by Gemv.gemvT64 on the same rows (in cache), so x is read once from memory.
    let run (family: GlmFamily) (n: int) (d: int)
            (x: float[]) (xo: int) (alpha: float[]) (ao: int) (perRow: bool) (beta: float[]) (bo: int)
            (y: float[]) (yo: int) (mask: float[]) (mo: int)
            (grad: bool) (g: float[]) (go: int) (keepR: bool) (r: float[]) (ro: int) : float =
        need x xo (n * d) "x"
        need alpha ao (if perRow then n else 1) "alpha"
        need beta bo d "beta"
        need y yo n "y"
        need mask mo n "mask"
        if grad then
            need g go (d + 1) "the gradient"
            Array.Clear(g, go, d + 1)
        if keepR then need r ro n "the residuals"
        let mutable total = 0.0
        let mutable rSum = 0.0
        if Gemv.supported () && n > 0 && d > 0 then
            use px = fixed x
            use pa = fixed alpha
            use pb = fixed beta
            use py = fixed y
            use pm = fixed mask
            use pg = fixed g
            use pr = fixed r
            let buf = NativePtr.stackalloc<float> (2 * MaxBlock)
            let etaB = buf
            let rB = NativePtr.add buf MaxBlock
            let rows = blockRows d
            let aScalar = if perRow then 0.0 else alpha.[ao]
            let mutable lpAcc = Vector256<float>.Zero
            let mutable rAcc = Vector256<float>.Zero
            let mutable lpTail = 0.0
            let mutable rTail = 0.0
            let mutable b = 0
            while b < n do
                let m = min rows (n - b)
                let xb = NativePtr.add px (xo + b * d)
                Gemv.gemvN64 m d xb d (NativePtr.add pb bo) etaB 1 false
                let rp = if keepR then NativePtr.add pr (ro + b) else rB
                // η += α, then the rows four at a time, then the rest one at a time
                if perRow then
                    Simd.Add(ReadOnlySpan<float>(NativePtr.toVoidPtr etaB, m), ReadOnlySpan<float>(NativePtr.toVoidPtr (NativePtr.add pa (ao + b)), m),
                             Span<float>(NativePtr.toVoidPtr etaB, m))
                else Simd.Add(ReadOnlySpan<float>(NativePtr.toVoidPtr etaB, m), aScalar, Span<float>(NativePtr.toVoidPtr etaB, m))
                let m4 = m &&& ~~~3
                match family with
                | GlmFamily.BernoulliLogit -> bernoulliRows m4 etaB (NativePtr.add py (yo + b)) (NativePtr.add pm (mo + b)) rp &lpAcc &rAcc
                | GlmFamily.PoissonLog -> poissonRows m4 etaB (NativePtr.add py (yo + b)) (NativePtr.add pm (mo + b)) rp &lpAcc &rAcc
                let mutable i = m4
                while i < m do
                    let k = b + i
                    let eta = NativePtr.get etaB i
                    let ri =
                        if mask.[mo + k] = 0.0 then
                            lpTail <- lpTail + Double.NegativeInfinity
                            0.0
                        else
                            let struct (lp, ri) = rowScalar family eta y.[yo + k]
                            lpTail <- lpTail + lp
                            ri
                    NativePtr.set rp i ri
                    rTail <- rTail + ri
                    i <- i + 1
                if grad then Gemv.gemvT64 d m xb d rp (NativePtr.add pg go) 1 true
                b <- b + m
            total <- ((lpAcc.GetElement 0 + lpAcc.GetElement 1) + (lpAcc.GetElement 2 + lpAcc.GetElement 3)) + lpTail
            rSum <- ((rAcc.GetElement 0 + rAcc.GetElement 1) + (rAcc.GetElement 2 + rAcc.GetElement 3)) + rTail
        else
            // without AVX2 and FMA (or with d = 0): one row at a time
            for i in 0 .. n - 1 do
                let row = xo + i * d
                let mutable s = 0.0
                for j in 0 .. d - 1 do
                    s <- s + x.[row + j] * beta.[bo + j]
                let eta = s + (if perRow then alpha.[ao + i] else alpha.[ao])
                let ri =
                    if mask.[mo + i] = 0.0 then
                        total <- total + Double.NegativeInfinity
                        0.0
                    else
                        let struct (lp, ri) = rowScalar family eta y.[yo + i]
                        total <- total + lp
                        ri
                if keepR then r.[ro + i] <- ri
                if grad then
                    rSum <- rSum + ri
                    for j in 0 .. d - 1 do
                        g.[go + j] <- g.[go + j] + ri * x.[row + j]
        if grad then g.[go + d] <- rSum
        total
