namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr: the callers (Gemm.gemv64/gemv32) validate every operand range first.

open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// Matrix-vector kernels for AVX2+FMA (256-bit vectors, no AVX-512): the skinny products of regression models
/// (X·β and Xᵀ·r with n × d, d small). Row-major A; y[i·incy] (+)= Σ_p M(i,p)·x[p] with x contiguous.
/// - `gemvN`: M = A (rows of A, each dotted with x): 8 rows at a time, one accumulator per row, the columns
///   that do not fill a vector through a masked load, then a shuffle tree turns the 8 accumulators into 8 sums.
/// - `gemvT`: M = Aᵀ (outputs along A's rows): one pass over A per block of up to 6 vectors of outputs (the
///   last vector a masked load), 2 or 4 rows of A in flight, so a 5000 × 20 operand is read once.
/// Determinism: an output's summation order depends only on the shape (for gemvN only on its own row), never
/// on the thread count; masked loads read nothing outside the operands, so padding never reaches a result.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Gemv =

    /// Whether these kernels can run here (x86 with AVX2 and FMA).
    let supported () = Avx2.IsSupported && Fma.IsSupported

    // ---- float64 ------------------------------------------------------------------------------------

    /// Lane r = the sum of the lanes of t_r, each summed as (l0 + l1) + (l2 + l3).
    let inline private hsum4x64 (t0: Vector256<float>) (t1: Vector256<float>) (t2: Vector256<float>) (t3: Vector256<float>) =
        let h01 = Avx.HorizontalAdd(t0, t1)
        let h23 = Avx.HorizontalAdd(t2, t3)
        Avx.Permute2x128(h01, h23, 0x20uy) + Avx.Permute2x128(h01, h23, 0x31uy)

    /// The lanes of t summed in hsum4x64's order, so that a row's value does not depend on its neighbours.
    let inline private sum64 (t: Vector256<float>) = (t.GetElement 0 + t.GetElement 1) + (t.GetElement 2 + t.GetElement 3)

    let inline private put64 (y: nativeptr<float>) (incy: int) (i: int) (v: float) (accumulate: bool) =
        let yp = NativePtr.add y (i * incy)
        NativePtr.write yp (if accumulate then NativePtr.read yp + v else v)

    /// Writes the first `w` lanes of v to y[i ..], w ≤ 4.
    let inline private store64 (y: nativeptr<float>) (incy: int) (i: int) (w: int) (v: Vector256<float>) (accumulate: bool) =
        if w = 4 && incy = 1 then
            let yp = NativePtr.add y i
            Vector256.Store((if accumulate then Vector256.Load(yp) + v else v), yp)
        else
            for l in 0 .. w - 1 do put64 y incy (i + l) (v.GetElement l) accumulate

    /// y[i·incy] (+)= Σ_p a[i·lda + p]·x[p], i < rows, p < cols.
    let gemvN64 (rows: int) (cols: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let z = Vector256<float>.Zero
        let full = cols &&& ~~~3
        let tail = cols - full
        let mt = Vector256.LessThan(Vector256<int64>.Indices, Vector256.Create(int64 tail)).AsDouble()
        let xt = if tail > 0 then Avx.MaskLoad(NativePtr.add x full, mt) else z
        let mutable i = 0
        while i + 8 <= rows do
            let r0 = NativePtr.add a (i * lda)
            let r1 = NativePtr.add r0 lda
            let r2 = NativePtr.add r1 lda
            let r3 = NativePtr.add r2 lda
            let r4 = NativePtr.add r3 lda
            let r5 = NativePtr.add r4 lda
            let r6 = NativePtr.add r5 lda
            let r7 = NativePtr.add r6 lda
            let mutable s0 = z
            let mutable s1 = z
            let mutable s2 = z
            let mutable s3 = z
            let mutable s4 = z
            let mutable s5 = z
            let mutable s6 = z
            let mutable s7 = z
            let mutable p = 0
            while p < full do
                let xv = Vector256.Load(NativePtr.add x p)
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), xv, s0)
                s1 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r1 p), xv, s1)
                s2 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r2 p), xv, s2)
                s3 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r3 p), xv, s3)
                s4 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r4 p), xv, s4)
                s5 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r5 p), xv, s5)
                s6 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r6 p), xv, s6)
                s7 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r7 p), xv, s7)
                p <- p + 4
            if tail > 0 then
                s0 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r0 full, mt), xt, s0)
                s1 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r1 full, mt), xt, s1)
                s2 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r2 full, mt), xt, s2)
                s3 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r3 full, mt), xt, s3)
                s4 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r4 full, mt), xt, s4)
                s5 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r5 full, mt), xt, s5)
                s6 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r6 full, mt), xt, s6)
                s7 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r7 full, mt), xt, s7)
            store64 y incy i 4 (hsum4x64 s0 s1 s2 s3) accumulate
            store64 y incy (i + 4) 4 (hsum4x64 s4 s5 s6 s7) accumulate
            i <- i + 8
        while i < rows do
            let r0 = NativePtr.add a (i * lda)
            let mutable s0 = z
            let mutable p = 0
            while p < full do
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add x p), s0)
                p <- p + 4
            if tail > 0 then
                s0 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r0 full, mt), xt, s0)
            put64 y incy i (sum64 s0) accumulate
            i <- i + 1

    /// Vector j (of nv) of a row; the last one through the mask `mt` when the block's width `w` does not fill it,
    /// so that a block reads only its `w` columns.
    let inline private row64 (nv: int) (masked: bool) (j: int) (mt: Vector256<float>) (row: nativeptr<float>) =
        if masked && j = nv - 1 then Avx.MaskLoad(NativePtr.add row (4 * j), mt) else Vector256.Load(NativePtr.add row (4 * j))

    /// Outputs i0 .. i0 + w − 1 of gemvT (4·(nv − 1) < w ≤ 4·nv; nv, u and masked (w < 4·nv) literal after inlining): one pass over
    /// the k rows, u rows in flight (u·nv accumulators); the accumulators of rows p ≡ r (mod u) add up as
    /// (a0 + a1) + (a2 + a3), the rows past the last multiple of u going into a0.
    let inline private blockT64 (nv: int) (u: int) (masked: bool) (w: int) (k: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>)
                                (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let z = Vector256<float>.Zero
        let mt = Vector256.LessThan(Vector256<int64>.Indices, Vector256.Create(int64 (w - 4 * (nv - 1)))).AsDouble()
        let mutable s00 = z
        let mutable s01 = z
        let mutable s02 = z
        let mutable s03 = z
        let mutable s04 = z
        let mutable s05 = z
        let mutable s10 = z
        let mutable s11 = z
        let mutable s12 = z
        let mutable s13 = z
        let mutable s14 = z
        let mutable s15 = z
        let mutable s20 = z
        let mutable s21 = z
        let mutable s22 = z
        let mutable s30 = z
        let mutable s31 = z
        let mutable s32 = z
        let mutable ap = a
        let mutable p = 0
        while p + u <= k do
            let a1 = NativePtr.add ap lda
            let x0 = Vector256.Create(NativePtr.get x p)
            let x1 = Vector256.Create(NativePtr.get x (p + 1))
            s00 <- Vector256.FusedMultiplyAdd(row64 nv masked 0 mt ap, x0, s00)
            if nv > 1 then s01 <- Vector256.FusedMultiplyAdd(row64 nv masked 1 mt ap, x0, s01)
            if nv > 2 then s02 <- Vector256.FusedMultiplyAdd(row64 nv masked 2 mt ap, x0, s02)
            if nv > 3 then s03 <- Vector256.FusedMultiplyAdd(row64 nv masked 3 mt ap, x0, s03)
            if nv > 4 then s04 <- Vector256.FusedMultiplyAdd(row64 nv masked 4 mt ap, x0, s04)
            if nv > 5 then s05 <- Vector256.FusedMultiplyAdd(row64 nv masked 5 mt ap, x0, s05)
            s10 <- Vector256.FusedMultiplyAdd(row64 nv masked 0 mt a1, x1, s10)
            if nv > 1 then s11 <- Vector256.FusedMultiplyAdd(row64 nv masked 1 mt a1, x1, s11)
            if nv > 2 then s12 <- Vector256.FusedMultiplyAdd(row64 nv masked 2 mt a1, x1, s12)
            if nv > 3 then s13 <- Vector256.FusedMultiplyAdd(row64 nv masked 3 mt a1, x1, s13)
            if nv > 4 then s14 <- Vector256.FusedMultiplyAdd(row64 nv masked 4 mt a1, x1, s14)
            if nv > 5 then s15 <- Vector256.FusedMultiplyAdd(row64 nv masked 5 mt a1, x1, s15)
            if u = 4 then
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                let x2 = Vector256.Create(NativePtr.get x (p + 2))
                let x3 = Vector256.Create(NativePtr.get x (p + 3))
                s20 <- Vector256.FusedMultiplyAdd(row64 nv masked 0 mt a2, x2, s20)
                if nv > 1 then s21 <- Vector256.FusedMultiplyAdd(row64 nv masked 1 mt a2, x2, s21)
                if nv > 2 then s22 <- Vector256.FusedMultiplyAdd(row64 nv masked 2 mt a2, x2, s22)
                s30 <- Vector256.FusedMultiplyAdd(row64 nv masked 0 mt a3, x3, s30)
                if nv > 1 then s31 <- Vector256.FusedMultiplyAdd(row64 nv masked 1 mt a3, x3, s31)
                if nv > 2 then s32 <- Vector256.FusedMultiplyAdd(row64 nv masked 2 mt a3, x3, s32)
            ap <- NativePtr.add ap (u * lda)
            p <- p + u
        while p < k do
            let x0 = Vector256.Create(NativePtr.get x p)
            s00 <- Vector256.FusedMultiplyAdd(row64 nv masked 0 mt ap, x0, s00)
            if nv > 1 then s01 <- Vector256.FusedMultiplyAdd(row64 nv masked 1 mt ap, x0, s01)
            if nv > 2 then s02 <- Vector256.FusedMultiplyAdd(row64 nv masked 2 mt ap, x0, s02)
            if nv > 3 then s03 <- Vector256.FusedMultiplyAdd(row64 nv masked 3 mt ap, x0, s03)
            if nv > 4 then s04 <- Vector256.FusedMultiplyAdd(row64 nv masked 4 mt ap, x0, s04)
            if nv > 5 then s05 <- Vector256.FusedMultiplyAdd(row64 nv masked 5 mt ap, x0, s05)
            ap <- NativePtr.add ap lda
            p <- p + 1
        let inline fin (v0: Vector256<float>) (v1: Vector256<float>) (v2: Vector256<float>) (v3: Vector256<float>) =
            if u = 4 then (v0 + v1) + (v2 + v3) else v0 + v1
        store64 y incy 0 (min 4 w) (fin s00 s10 s20 s30) accumulate
        if nv > 1 then store64 y incy 4 (min 4 (w - 4)) (fin s01 s11 s21 s31) accumulate
        if nv > 2 then store64 y incy 8 (min 4 (w - 8)) (fin s02 s12 s22 s32) accumulate
        if nv > 3 then store64 y incy 12 (min 4 (w - 12)) (s03 + s13) accumulate
        if nv > 4 then store64 y incy 16 (min 4 (w - 16)) (s04 + s14) accumulate
        if nv > 5 then store64 y incy 20 (min 4 (w - 20)) (s05 + s15) accumulate

    // one method per vector count, so that each keeps its accumulators in registers
    let private blockT64v1 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 1 4 false w k a lda x y incy accumulate
    let private blockT64v1m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 1 4 true w k a lda x y incy accumulate
    let private blockT64v2 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 2 4 false w k a lda x y incy accumulate
    let private blockT64v2m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 2 4 true w k a lda x y incy accumulate
    let private blockT64v3 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 3 4 false w k a lda x y incy accumulate
    let private blockT64v3m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 3 4 true w k a lda x y incy accumulate
    let private blockT64v4 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 4 2 false w k a lda x y incy accumulate
    let private blockT64v4m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 4 2 true w k a lda x y incy accumulate
    let private blockT64v5 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 5 2 false w k a lda x y incy accumulate
    let private blockT64v5m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 5 2 true w k a lda x y incy accumulate
    let private blockT64v6 w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 6 2 false w k a lda x y incy accumulate
    let private blockT64v6m w k (a: nativeptr<float>) lda (x: nativeptr<float>) (y: nativeptr<float>) incy accumulate = blockT64 6 2 true w k a lda x y incy accumulate

    /// y[i·incy] (+)= Σ_p a[p·lda + i]·x[p], i < m (outputs), p < k.
    let gemvT64 (m: int) (k: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i < m do
            let w = min 24 (m - i)
            let ai = NativePtr.add a i
            let yi = NativePtr.add y (i * incy)
            let partial = w % 4 <> 0
            match (w + 3) / 4, partial with
            | 1, false -> blockT64v1 w k ai lda x yi incy accumulate
            | 1, true -> blockT64v1m w k ai lda x yi incy accumulate
            | 2, false -> blockT64v2 w k ai lda x yi incy accumulate
            | 2, true -> blockT64v2m w k ai lda x yi incy accumulate
            | 3, false -> blockT64v3 w k ai lda x yi incy accumulate
            | 3, true -> blockT64v3m w k ai lda x yi incy accumulate
            | 4, false -> blockT64v4 w k ai lda x yi incy accumulate
            | 4, true -> blockT64v4m w k ai lda x yi incy accumulate
            | 5, false -> blockT64v5 w k ai lda x yi incy accumulate
            | 5, true -> blockT64v5m w k ai lda x yi incy accumulate
            | _, false -> blockT64v6 w k ai lda x yi incy accumulate
            | _, true -> blockT64v6m w k ai lda x yi incy accumulate
            i <- i + w

    // ---- float32 ------------------------------------------------------------------------------------

    /// Lane r = the sum of the lanes of t_r, each summed as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)).
    let inline private hsum8x32 (t0: Vector256<float32>) (t1: Vector256<float32>) (t2: Vector256<float32>) (t3: Vector256<float32>)
                                (t4: Vector256<float32>) (t5: Vector256<float32>) (t6: Vector256<float32>) (t7: Vector256<float32>) =
        let q0 = Avx.HorizontalAdd(Avx.HorizontalAdd(t0, t1), Avx.HorizontalAdd(t2, t3))
        let q1 = Avx.HorizontalAdd(Avx.HorizontalAdd(t4, t5), Avx.HorizontalAdd(t6, t7))
        Avx.Permute2x128(q0, q1, 0x20uy) + Avx.Permute2x128(q0, q1, 0x31uy)

    /// The lanes of t summed in hsum8x32's order.
    let inline private sum32 (t: Vector256<float32>) =
        ((t.GetElement 0 + t.GetElement 1) + (t.GetElement 2 + t.GetElement 3))
        + ((t.GetElement 4 + t.GetElement 5) + (t.GetElement 6 + t.GetElement 7))

    let inline private put32 (y: nativeptr<float32>) (incy: int) (i: int) (v: float32) (accumulate: bool) =
        let yp = NativePtr.add y (i * incy)
        NativePtr.write yp (if accumulate then NativePtr.read yp + v else v)

    /// Writes the first `w` lanes of v to y[i ..], w ≤ 8.
    let inline private store32 (y: nativeptr<float32>) (incy: int) (i: int) (w: int) (v: Vector256<float32>) (accumulate: bool) =
        if w = 8 && incy = 1 then
            let yp = NativePtr.add y i
            Vector256.Store((if accumulate then Vector256.Load(yp) + v else v), yp)
        else
            for l in 0 .. w - 1 do put32 y incy (i + l) (v.GetElement l) accumulate

    /// y[i·incy] (+)= Σ_p a[i·lda + p]·x[p], i < rows, p < cols.
    let gemvN32 (rows: int) (cols: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>) (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let z = Vector256<float32>.Zero
        let full = cols &&& ~~~7
        let tail = cols - full
        let mt = Vector256.LessThan(Vector256<int32>.Indices, Vector256.Create(int32 tail)).AsSingle()
        let xt = if tail > 0 then Avx.MaskLoad(NativePtr.add x full, mt) else z
        let mutable i = 0
        while i + 8 <= rows do
            let r0 = NativePtr.add a (i * lda)
            let r1 = NativePtr.add r0 lda
            let r2 = NativePtr.add r1 lda
            let r3 = NativePtr.add r2 lda
            let r4 = NativePtr.add r3 lda
            let r5 = NativePtr.add r4 lda
            let r6 = NativePtr.add r5 lda
            let r7 = NativePtr.add r6 lda
            let mutable s0 = z
            let mutable s1 = z
            let mutable s2 = z
            let mutable s3 = z
            let mutable s4 = z
            let mutable s5 = z
            let mutable s6 = z
            let mutable s7 = z
            let mutable p = 0
            while p < full do
                let xv = Vector256.Load(NativePtr.add x p)
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), xv, s0)
                s1 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r1 p), xv, s1)
                s2 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r2 p), xv, s2)
                s3 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r3 p), xv, s3)
                s4 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r4 p), xv, s4)
                s5 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r5 p), xv, s5)
                s6 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r6 p), xv, s6)
                s7 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r7 p), xv, s7)
                p <- p + 8
            if tail > 0 then
                s0 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r0 full, mt), xt, s0)
                s1 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r1 full, mt), xt, s1)
                s2 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r2 full, mt), xt, s2)
                s3 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r3 full, mt), xt, s3)
                s4 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r4 full, mt), xt, s4)
                s5 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r5 full, mt), xt, s5)
                s6 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r6 full, mt), xt, s6)
                s7 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r7 full, mt), xt, s7)
            store32 y incy i 8 (hsum8x32 s0 s1 s2 s3 s4 s5 s6 s7) accumulate
            i <- i + 8
        while i < rows do
            let r0 = NativePtr.add a (i * lda)
            let mutable s0 = z
            let mutable p = 0
            while p < full do
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add x p), s0)
                p <- p + 8
            if tail > 0 then
                s0 <- Vector256.FusedMultiplyAdd(Avx.MaskLoad(NativePtr.add r0 full, mt), xt, s0)
            put32 y incy i (sum32 s0) accumulate
            i <- i + 1

    let inline private row32 (nv: int) (masked: bool) (j: int) (mt: Vector256<float32>) (row: nativeptr<float32>) =
        if masked && j = nv - 1 then Avx.MaskLoad(NativePtr.add row (8 * j), mt) else Vector256.Load(NativePtr.add row (8 * j))

    /// blockT64 for float32: outputs i0 .. i0 + w − 1, 8·(nv − 1) < w ≤ 8·nv.
    let inline private blockT32 (nv: int) (u: int) (masked: bool) (w: int) (k: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>)
                                (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let z = Vector256<float32>.Zero
        let mt = Vector256.LessThan(Vector256<int32>.Indices, Vector256.Create(int32 (w - 8 * (nv - 1)))).AsSingle()
        let mutable s00 = z
        let mutable s01 = z
        let mutable s02 = z
        let mutable s03 = z
        let mutable s04 = z
        let mutable s05 = z
        let mutable s10 = z
        let mutable s11 = z
        let mutable s12 = z
        let mutable s13 = z
        let mutable s14 = z
        let mutable s15 = z
        let mutable s20 = z
        let mutable s21 = z
        let mutable s22 = z
        let mutable s30 = z
        let mutable s31 = z
        let mutable s32 = z
        let mutable ap = a
        let mutable p = 0
        while p + u <= k do
            let a1 = NativePtr.add ap lda
            let x0 = Vector256.Create(NativePtr.get x p)
            let x1 = Vector256.Create(NativePtr.get x (p + 1))
            s00 <- Vector256.FusedMultiplyAdd(row32 nv masked 0 mt ap, x0, s00)
            if nv > 1 then s01 <- Vector256.FusedMultiplyAdd(row32 nv masked 1 mt ap, x0, s01)
            if nv > 2 then s02 <- Vector256.FusedMultiplyAdd(row32 nv masked 2 mt ap, x0, s02)
            if nv > 3 then s03 <- Vector256.FusedMultiplyAdd(row32 nv masked 3 mt ap, x0, s03)
            if nv > 4 then s04 <- Vector256.FusedMultiplyAdd(row32 nv masked 4 mt ap, x0, s04)
            if nv > 5 then s05 <- Vector256.FusedMultiplyAdd(row32 nv masked 5 mt ap, x0, s05)
            s10 <- Vector256.FusedMultiplyAdd(row32 nv masked 0 mt a1, x1, s10)
            if nv > 1 then s11 <- Vector256.FusedMultiplyAdd(row32 nv masked 1 mt a1, x1, s11)
            if nv > 2 then s12 <- Vector256.FusedMultiplyAdd(row32 nv masked 2 mt a1, x1, s12)
            if nv > 3 then s13 <- Vector256.FusedMultiplyAdd(row32 nv masked 3 mt a1, x1, s13)
            if nv > 4 then s14 <- Vector256.FusedMultiplyAdd(row32 nv masked 4 mt a1, x1, s14)
            if nv > 5 then s15 <- Vector256.FusedMultiplyAdd(row32 nv masked 5 mt a1, x1, s15)
            if u = 4 then
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                let x2 = Vector256.Create(NativePtr.get x (p + 2))
                let x3 = Vector256.Create(NativePtr.get x (p + 3))
                s20 <- Vector256.FusedMultiplyAdd(row32 nv masked 0 mt a2, x2, s20)
                if nv > 1 then s21 <- Vector256.FusedMultiplyAdd(row32 nv masked 1 mt a2, x2, s21)
                if nv > 2 then s22 <- Vector256.FusedMultiplyAdd(row32 nv masked 2 mt a2, x2, s22)
                s30 <- Vector256.FusedMultiplyAdd(row32 nv masked 0 mt a3, x3, s30)
                if nv > 1 then s31 <- Vector256.FusedMultiplyAdd(row32 nv masked 1 mt a3, x3, s31)
                if nv > 2 then s32 <- Vector256.FusedMultiplyAdd(row32 nv masked 2 mt a3, x3, s32)
            ap <- NativePtr.add ap (u * lda)
            p <- p + u
        while p < k do
            let x0 = Vector256.Create(NativePtr.get x p)
            s00 <- Vector256.FusedMultiplyAdd(row32 nv masked 0 mt ap, x0, s00)
            if nv > 1 then s01 <- Vector256.FusedMultiplyAdd(row32 nv masked 1 mt ap, x0, s01)
            if nv > 2 then s02 <- Vector256.FusedMultiplyAdd(row32 nv masked 2 mt ap, x0, s02)
            if nv > 3 then s03 <- Vector256.FusedMultiplyAdd(row32 nv masked 3 mt ap, x0, s03)
            if nv > 4 then s04 <- Vector256.FusedMultiplyAdd(row32 nv masked 4 mt ap, x0, s04)
            if nv > 5 then s05 <- Vector256.FusedMultiplyAdd(row32 nv masked 5 mt ap, x0, s05)
            ap <- NativePtr.add ap lda
            p <- p + 1
        let inline fin (v0: Vector256<float32>) (v1: Vector256<float32>) (v2: Vector256<float32>) (v3: Vector256<float32>) =
            if u = 4 then (v0 + v1) + (v2 + v3) else v0 + v1
        store32 y incy 0 (min 8 w) (fin s00 s10 s20 s30) accumulate
        if nv > 1 then store32 y incy 8 (min 8 (w - 8)) (fin s01 s11 s21 s31) accumulate
        if nv > 2 then store32 y incy 16 (min 8 (w - 16)) (fin s02 s12 s22 s32) accumulate
        if nv > 3 then store32 y incy 24 (min 8 (w - 24)) (s03 + s13) accumulate
        if nv > 4 then store32 y incy 32 (min 8 (w - 32)) (s04 + s14) accumulate
        if nv > 5 then store32 y incy 40 (min 8 (w - 40)) (s05 + s15) accumulate

    // one method per vector count, so that each keeps its accumulators in registers
    let private blockT32v1 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 1 4 false w k a lda x y incy accumulate
    let private blockT32v1m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 1 4 true w k a lda x y incy accumulate
    let private blockT32v2 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 2 4 false w k a lda x y incy accumulate
    let private blockT32v2m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 2 4 true w k a lda x y incy accumulate
    let private blockT32v3 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 3 4 false w k a lda x y incy accumulate
    let private blockT32v3m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 3 4 true w k a lda x y incy accumulate
    let private blockT32v4 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 4 2 false w k a lda x y incy accumulate
    let private blockT32v4m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 4 2 true w k a lda x y incy accumulate
    let private blockT32v5 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 5 2 false w k a lda x y incy accumulate
    let private blockT32v5m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 5 2 true w k a lda x y incy accumulate
    let private blockT32v6 w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 6 2 false w k a lda x y incy accumulate
    let private blockT32v6m w k (a: nativeptr<float32>) lda (x: nativeptr<float32>) (y: nativeptr<float32>) incy accumulate = blockT32 6 2 true w k a lda x y incy accumulate

    /// y[i·incy] (+)= Σ_p a[p·lda + i]·x[p], i < m (outputs), p < k.
    let gemvT32 (m: int) (k: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>) (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i < m do
            let w = min 48 (m - i)
            let ai = NativePtr.add a i
            let yi = NativePtr.add y (i * incy)
            let partial = w % 8 <> 0
            match (w + 7) / 8, partial with
            | 1, false -> blockT32v1 w k ai lda x yi incy accumulate
            | 1, true -> blockT32v1m w k ai lda x yi incy accumulate
            | 2, false -> blockT32v2 w k ai lda x yi incy accumulate
            | 2, true -> blockT32v2m w k ai lda x yi incy accumulate
            | 3, false -> blockT32v3 w k ai lda x yi incy accumulate
            | 3, true -> blockT32v3m w k ai lda x yi incy accumulate
            | 4, false -> blockT32v4 w k ai lda x yi incy accumulate
            | 4, true -> blockT32v4m w k ai lda x yi incy accumulate
            | 5, false -> blockT32v5 w k ai lda x yi incy accumulate
            | 5, true -> blockT32v5m w k ai lda x yi incy accumulate
            | _, false -> blockT32v6 w k ai lda x yi incy accumulate
            | _, true -> blockT32v6m w k ai lda x yi incy accumulate
            i <- i + w
