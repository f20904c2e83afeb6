namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr: every range the loops touch is checked against its array first.

open System
open System.Runtime.Intrinsics
open Microsoft.FSharp.NativeInterop

/// The fused categorical-logit GLM log likelihood (Op.CategoricalGlmLogLikelihood) over flat float64 arrays.
/// Per block of rows (about 16 KB of x, η and the residuals): η = x·β + α (m×C), a max-shifted logsumexp per
/// row, the value, the residual R = onehot(y) − softmax(η) and XᵀR while those rows are still in L1, so value
/// and gradient take one pass over x from memory. Within a block η and R are stored class by class (one
/// contiguous run of rows per class), so that each class is one matrix-vector product over the block's rows.
/// Every sum runs in a fixed order (one thread): a call gives the same bits every time.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal CategoricalGlmKernel =

    /// The most rows of a block.
    [<Literal>]
    let private MaxBlock = 512

    /// Rows per block: about 2048 doubles of x, η and R together, a multiple of 8.
    let blockRows (d: int) (c: int) = max 8 (min MaxBlock ((2048 / max (d + 2 * c) 1) &&& ~~~7))

    /// The scratch `run` needs: βᵀ and ∂βᵀ (C·d each), then η and R of one block (C·blockRows each).
    let scratchSize (d: int) (c: int) = 2 * c * d + 2 * c * blockRows d c

    let private need (a: float[]) (o: int) (len: int) (what: string) =
        if o < 0 || len < 0 || o + len > a.Length then
            invalidOp (sprintf "CategoricalGlmKernel.run: %s (offset %d, length %d) is outside its buffer of %d." what o len a.Length)

    /// Rows 0 .. m4 − 1 (m4 a multiple of 4) of a block, four at a time: η class by class at eta (stride
    /// `rows`), y and the mask; lp summed into lpAcc by lane; R (0 where the mask is 0) written class by
    /// class at r (stride `rows`). exp(η − max) is kept in R until the row's sum is known.
    let private rows4 (m4: int) (c: int) (rows: int) (eta: nativeptr<float>) (y: nativeptr<float>) (mask: nativeptr<float>)
                      (r: nativeptr<float>) (lpAcc: byref<Vector256<float>>) =
        let zero = Vector256<float>.Zero
        let one = Vector256.Create 1.0
        let negInf = Vector256.Create Double.NegativeInfinity
        let mutable lpA = lpAcc
        let mutable i = 0
        while i < m4 do
            let yv = Vector256.Load(NativePtr.add y i)
            let unset = Vector256.Equals(Vector256.Load(NativePtr.add mask i), zero)
            let mutable mx = Vector256.Load(NativePtr.add eta i)
            for k in 1 .. c - 1 do
                mx <- Vector256.Max(mx, Vector256.Load(NativePtr.add eta (k * rows + i)))
            let mutable s = zero
            let mutable pick = zero
            for k in 0 .. c - 1 do
                let e = Vector256.Load(NativePtr.add eta (k * rows + i))
                let ex = Vector256.Exp(e - mx)
                Vector256.Store(ex, NativePtr.add r (k * rows + i))
                s <- s + ex
                pick <- Vector256.ConditionalSelect(Vector256.Equals(yv, Vector256.Create(float k)), e, pick)
            // s ∈ [1, C]: the log is of a moderate number, whatever η is
            lpA <- lpA + Vector256.ConditionalSelect(unset, negInf, pick - (mx + Vector256.Log s))
            let inv = one / s
            for k in 0 .. c - 1 do
                let rp = NativePtr.add r (k * rows + i)
                let hit = Vector256.ConditionalSelect(Vector256.Equals(yv, Vector256.Create(float k)), one, zero)
                Vector256.Store(Vector256.ConditionalSelect(unset, zero, hit - Vector256.Load rp * inv), rp)
            i <- i + 4
        lpAcc <- lpA

    /// One row: η at eta[k·stride] (k < C), label y, mask set; writes R at r[k·stride]; returns lp.
    let private rowScalar (c: int) (stride: int) (eta: nativeptr<float>) (y: float) (r: nativeptr<float>) =
        let mutable mx = NativePtr.get eta 0
        for k in 1 .. c - 1 do
            mx <- max mx (NativePtr.get eta (k * stride))
        let mutable s = 0.0
        let mutable pick = 0.0
        for k in 0 .. c - 1 do
            let e = NativePtr.get eta (k * stride)
            let ex = Math.Exp(e - mx)
            NativePtr.set r (k * stride) ex
            s <- s + ex
            if y = float k then pick <- e
        let inv = 1.0 / s
        for k in 0 .. c - 1 do
            NativePtr.set r (k * stride) ((if y = float k then 1.0 else 0.0) - NativePtr.get r (k * stride) * inv)
        pick - (mx + Math.Log s)

    /// Σᵢ (ηᵢ[yᵢ] − logsumexp ηᵢ) over the n rows of x (n×d, row-major at xo), η = x·β + α with α [C] at ao
    /// and β [d, C] (row-major) at bo; lpᵢ = −∞ where mask is 0 (anything else, NaN too, is set; y is read
    /// only there, as a class id 0 .. C − 1). When `grad`: g[go .. go + d·C) = XᵀR ([d, C]) and
    /// g[go + d·C .. + C) = Σᵢ Rᵢ, with R = onehot(y) − softmax(η), 0 on rows whose mask is 0; when `keepR`:
    /// r[ro + i·C + k] = Rᵢₖ. `scratch` holds scratchSize d C values at so. Unused outputs may be empty arrays.
    let run (n: int) (d: int) (c: int)
            (x: float[]) (xo: int) (alpha: float[]) (ao: int) (beta: float[]) (bo: int)
            (y: float[]) (yo: int) (mask: float[]) (mo: int) (scratch: float[]) (so: int)
            (grad: bool) (g: float[]) (go: int) (keepR: bool) (r: float[]) (ro: int) : float =
        if c < 1 then invalidOp "CategoricalGlmKernel.run: needs at least one class."
        need x xo (n * d) "x"
        need alpha ao c "alpha"
        need beta bo (d * c) "beta"
        need y yo n "y"
        need mask mo n "mask"
        let rows = blockRows d c
        need scratch so (scratchSize d c) "the scratch"
        if grad then
            need g go ((d + 1) * c) "the gradient"
            Array.Clear(g, go, (d + 1) * c)
        if keepR then need r ro (n * c) "the residuals"
        let mutable total = 0.0
        let bt = so
        let gbt = so + c * d
        let etaO = so + 2 * c * d
        let rO = etaO + c * rows
        use px = fixed x
        use py = fixed y
        use pm = fixed mask
        use ps = fixed scratch
        let etaB = NativePtr.add ps etaO
        let rB = NativePtr.add ps rO
        if Gemv.supported () && n > 0 && d > 0 then
            // βᵀ, so that each class's coefficients are contiguous
            for j in 0 .. d - 1 do
                for k in 0 .. c - 1 do
                    scratch.[bt + k * d + j] <- beta.[bo + j * c + k]
            if grad then Array.Clear(scratch, gbt, c * d)
            let mutable lpAcc = Vector256<float>.Zero
            let mutable lpTail = 0.0
            let mutable b = 0
            while b < n do
                let m = min rows (n - b)
                let xb = NativePtr.add px (xo + b * d)
                for k in 0 .. c - 1 do
                    let ek = NativePtr.add etaB (k * rows)
                    Gemv.gemvN64 m d xb d (NativePtr.add ps (bt + k * d)) ek 1 false
                    Simd.Add(ReadOnlySpan<float>(NativePtr.toVoidPtr ek, m), alpha.[ao + k], Span<float>(NativePtr.toVoidPtr ek, m))
                let m4 = m &&& ~~~3
                rows4 m4 c rows etaB (NativePtr.add py (yo + b)) (NativePtr.add pm (mo + b)) rB &lpAcc
                for i in m4 .. m - 1 do
                    if mask.[mo + b + i] = 0.0 then
                        lpTail <- lpTail + Double.NegativeInfinity
                        for k in 0 .. c - 1 do
                            NativePtr.set rB (k * rows + i) 0.0
                    else lpTail <- lpTail + rowScalar c rows (NativePtr.add etaB i) y.[yo + b + i] (NativePtr.add rB i)
                if grad then
                    for k in 0 .. c - 1 do
                        let rk = NativePtr.add rB (k * rows)
                        Gemv.gemvT64 d m xb d rk (NativePtr.add ps (gbt + k * d)) 1 true
                        g.[go + d * c + k] <- g.[go + d * c + k] + Simd.Sum(ReadOnlySpan<float>(NativePtr.toVoidPtr rk, m))
                if keepR then
                    for i in 0 .. m - 1 do
                        for k in 0 .. c - 1 do
                            r.[ro + (b + i) * c + k] <- NativePtr.get rB (k * rows + i)
                b <- b + m
            total <- ((lpAcc.GetElement 0 + lpAcc.GetElement 1) + (lpAcc.GetElement 2 + lpAcc.GetElement 3)) + lpTail
            if grad then
                for j in 0 .. d - 1 do
                    for k in 0 .. c - 1 do
                        g.[go + j * c + k] <- scratch.[gbt + k * d + j]
        else
            // without AVX2 and FMA (or with d = 0): one row at a time, η and R of the row in the block buffers
            for i in 0 .. n - 1 do
                let row = xo + i * d
                for k in 0 .. c - 1 do
                    let mutable s = alpha.[ao + k]
                    for j in 0 .. d - 1 do
                        s <- s + x.[row + j] * beta.[bo + j * c + k]
                    NativePtr.set etaB k s
                if mask.[mo + i] = 0.0 then
                    total <- total + Double.NegativeInfinity
                    for k in 0 .. c - 1 do
                        NativePtr.set rB k 0.0
                else total <- total + rowScalar c 1 etaB y.[yo + i] rB
                for k in 0 .. c - 1 do
                    let rk = NativePtr.get rB k
                    if keepR then r.[ro + i * c + k] <- rk
                    if grad then
                        g.[go + d * c + k] <- g.[go + d * c + k] + rk
                        for j in 0 .. d - 1 do
                            g.[go + j * c + k] <- g.[go + j * c + k] + rk * x.[row + j]
        total
