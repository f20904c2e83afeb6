namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr: every range the loops touch is checked against its array first.

open System
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// The fused GLM log likelihood (Op.GlmLogLikelihood) over flat float64 arrays. Four rows at a time:
/// η = x·β + α, the log likelihood, the residual r = y − E[y | η] and Xᵀr while those rows are still in
/// L1, so value and gradient take one pass over x. Every sum runs in a fixed order (one thread), so a
/// call gives the same bits every time.
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

    /// rowScalar for four rows. Bernoulli shares u = e^(−|η|) between softplus and σ (one exp, one log):
    /// log1p u = log(w)·u/(w − 1) with w = 1 + u (Goldberg), = u where w rounds to 1 (Special's kernels).
    let private rowsVector (family: GlmFamily) (eta: Vector256<float>) (y: Vector256<float>) : struct (Vector256<float> * Vector256<float>) =
        let one = Vector256.Create 1.0
        let zero = Vector256<float>.Zero
        match family with
        | GlmFamily.BernoulliLogit ->
            let u = Vector256.Exp(-(Vector256.Abs eta))
            let w = one + u
            let wm1 = w - one
            let l = Vector256.ConditionalSelect(Vector256.Equals(wm1, zero), u, Vector256.Log w * (u / wm1))
            let s = Vector256.ConditionalSelect(Vector256.Equals(y, one), -eta, eta)
            let rw = one / w
            let sigma = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(eta, zero), rw, u * rw)
            struct (-(Vector256.Max(s, zero) + l), y - sigma)
        | GlmFamily.PoissonLog ->
            let e = Vector256.Exp eta
            struct (y * eta - e, y - e)

    let private need (a: float[]) (o: int) (len: int) (what: string) =
        if o < 0 || len < 0 || o + len > a.Length then
            invalidOp (sprintf "GlmKernel.run: %s (offset %d, length %d) is outside its buffer of %d." what o len a.Length)

    /// Σᵢ lpᵢ over the n rows of x (n×d, row-major at xo), η = x·β + α (α: one value at ao, or n values
    /// when perRow); lpᵢ = −∞ where mask is 0 (anything else, NaN too, is set). When `grad`:
    /// g[go .. go + d) = Xᵀr and g[go + d] = Σ r, with rᵢ = 0 where the mask is 0; when `keepR`: r[ro + i] = rᵢ.
    /// Unused outputs may be empty arrays.
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
        let mutable i = 0
        let d4 = d &&& ~~~3
        if Fma.IsSupported && n >= 4 then
            use px = fixed x
            use pa = fixed alpha
            use pb0 = fixed beta
            use py = fixed y
            use pm = fixed mask
            use pg0 = fixed g
            use pr = fixed r
            let pb = NativePtr.add pb0 bo
            let pg = NativePtr.add pg0 go
            let aScalar = Vector256.Create(if perRow then 0.0 else alpha.[ao])
            let negInf = Vector256.Create Double.NegativeInfinity
            let mutable lpAcc = Vector256<float>.Zero
            let mutable rAcc = Vector256<float>.Zero
            while i + 4 <= n do
                let p0 = NativePtr.add px (xo + i * d)
                let p1 = NativePtr.add p0 d
                let p2 = NativePtr.add p1 d
                let p3 = NativePtr.add p2 d
                let mutable a0 = Vector256<float>.Zero
                let mutable a1 = Vector256<float>.Zero
                let mutable a2 = Vector256<float>.Zero
                let mutable a3 = Vector256<float>.Zero
                let mutable j = 0
                while j < d4 do
                    let bj = Avx.LoadVector256(NativePtr.add pb j)
                    a0 <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p0 j), bj, a0)
                    a1 <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p1 j), bj, a1)
                    a2 <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p2 j), bj, a2)
                    a3 <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p3 j), bj, a3)
                    j <- j + 4
                // [Σa0, Σa1, Σa2, Σa3]: pairwise sums within lanes, then the two halves
                let t0 = Avx.HorizontalAdd(a0, a1)
                let t1 = Avx.HorizontalAdd(a2, a3)
                let mutable eta = Avx.Add(Avx.Permute2x128(t0, t1, 0x20uy), Avx.Permute2x128(t0, t1, 0x31uy))
                if d4 < d then
                    let mutable s0 = 0.0
                    let mutable s1 = 0.0
                    let mutable s2 = 0.0
                    let mutable s3 = 0.0
                    for jj in d4 .. d - 1 do
                        let bj = NativePtr.get pb jj
                        s0 <- s0 + NativePtr.get p0 jj * bj
                        s1 <- s1 + NativePtr.get p1 jj * bj
                        s2 <- s2 + NativePtr.get p2 jj * bj
                        s3 <- s3 + NativePtr.get p3 jj * bj
                    eta <- Avx.Add(eta, Vector256.Create(s0, s1, s2, s3))
                eta <- Avx.Add(eta, (if perRow then Avx.LoadVector256(NativePtr.add pa (ao + i)) else aScalar))
                let struct (lp, rv) = rowsVector family eta (Avx.LoadVector256(NativePtr.add py (yo + i)))
                let unset = Vector256.Equals(Avx.LoadVector256(NativePtr.add pm (mo + i)), Vector256<float>.Zero)
                lpAcc <- Avx.Add(lpAcc, Vector256.ConditionalSelect(unset, negInf, lp))
                let rv = Vector256.ConditionalSelect(unset, Vector256<float>.Zero, rv)
                if keepR then Avx.Store(NativePtr.add pr (ro + i), rv)
                if grad then
                    rAcc <- Avx.Add(rAcc, rv)
                    let r0 = Vector256.Create(rv.GetElement 0)
                    let r1 = Vector256.Create(rv.GetElement 1)
                    let r2 = Vector256.Create(rv.GetElement 2)
                    let r3 = Vector256.Create(rv.GetElement 3)
                    let mutable j = 0
                    while j < d4 do
                        let pgj = NativePtr.add pg j
                        let mutable acc = Avx.LoadVector256 pgj
                        acc <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p0 j), r0, acc)
                        acc <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p1 j), r1, acc)
                        acc <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p2 j), r2, acc)
                        acc <- Fma.MultiplyAdd(Avx.LoadVector256(NativePtr.add p3 j), r3, acc)
                        Avx.Store(pgj, acc)
                        j <- j + 4
                    for jj in d4 .. d - 1 do
                        let v = NativePtr.get pg jj + NativePtr.get p0 jj * r0.ToScalar() + NativePtr.get p1 jj * r1.ToScalar()
                                + NativePtr.get p2 jj * r2.ToScalar() + NativePtr.get p3 jj * r3.ToScalar()
                        NativePtr.set pg jj v
                i <- i + 4
            total <- ((lpAcc.GetElement 0 + lpAcc.GetElement 1) + lpAcc.GetElement 2) + lpAcc.GetElement 3
            rSum <- ((rAcc.GetElement 0 + rAcc.GetElement 1) + rAcc.GetElement 2) + rAcc.GetElement 3
        // the rows left (all of them without FMA), one at a time
        while i < n do
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
            i <- i + 1
        if grad then g.[go + d] <- rSum
        total
