namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr use: all pointer accesses are bounds-validated up front (see check*).

open System
open System.Buffers
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open System.Threading.Tasks
open Microsoft.FSharp.NativeInterop

/// Dense matrix multiply kernels for row-major storage.
///
/// Design (see REPORT.md): packed, cache-blocked GEMM (BLIS/Goto loop order jc -> pc -> ic -> ir -> jr)
/// with an MR x NR register-blocked FMA micro-kernel (f64: 8 x 24 = 8 rows x 3 Vector512; f32: 8 x 48),
/// dedicated GEMV paths for n <= 4 / m <= 4 (one GEMV per column/row; on AVX2 without AVX-512 the kernels of Gemv.fs),
/// a narrow path for n <= 24 with op(B) = B (A unpacked, 4-row tiles of 256-bit vectors: the n x 20 products and
/// Xᵀ·R of regressions and small layers), and row/column partitioning of C across threads.
/// Determinism: every C element is computed by the same micro-kernel with the same KC-blocked summation
/// order regardless of how C is partitioned among threads, so results are bit-identical for any thread count
/// (the narrow path runs the same per-element FMA chains over the same KC blocks as the packed one).
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Gemm =

    // ------------------------------------------------------------------------------------------
    // Common helpers
    // ------------------------------------------------------------------------------------------

    /// Work (m*n*k) above which the blocked path is split across cores.
    let internal parallelThreshold = 1L <<< 20

    /// The AVX-512-specific packing and GEMV variants run where the hardware has them; CI also runs the
    /// GEMM tests with DOTNET_EnableAVX512=0 to cover the portable paths.
    let internal useIsaPaths = true

    /// The instruction set the kernels run on in this process: "AVX-512", "AVX2+FMA" or "scalar" (AVX and FMA
    /// switched off, e.g. DOTNET_EnableAVX=0: the portable vector code in software).
    let internal instructionSet () =
        if useIsaPaths && Avx512F.IsSupported then "AVX-512"
        elif Avx2.IsSupported && Fma.IsSupported then "AVX2+FMA"
        else "scalar"

    /// Loads an 8x8 f64 block (rows at stride `ld`) and stores its transpose (row q of the result at dst + q*dstStride).
    let private transpose8x8F64 (src: nativeptr<float>) (ld: int) (dst: nativeptr<float>) (dstStride: int) =
        let r0 = Vector512.Load(src)
        let r1 = Vector512.Load(NativePtr.add src ld)
        let r2 = Vector512.Load(NativePtr.add src (2 * ld))
        let r3 = Vector512.Load(NativePtr.add src (3 * ld))
        let r4 = Vector512.Load(NativePtr.add src (4 * ld))
        let r5 = Vector512.Load(NativePtr.add src (5 * ld))
        let r6 = Vector512.Load(NativePtr.add src (6 * ld))
        let r7 = Vector512.Load(NativePtr.add src (7 * ld))
        let t0 = Avx512F.UnpackLow(r0, r1)
        let t1 = Avx512F.UnpackHigh(r0, r1)
        let t2 = Avx512F.UnpackLow(r2, r3)
        let t3 = Avx512F.UnpackHigh(r2, r3)
        let t4 = Avx512F.UnpackLow(r4, r5)
        let t5 = Avx512F.UnpackHigh(r4, r5)
        let t6 = Avx512F.UnpackLow(r6, r7)
        let t7 = Avx512F.UnpackHigh(r6, r7)
        let iLo = Vector512.Create(0L, 1L, 8L, 9L, 4L, 5L, 12L, 13L)
        let iHi = Vector512.Create(2L, 3L, 10L, 11L, 6L, 7L, 14L, 15L)
        let u0 = Avx512F.PermuteVar8x64x2(t0, iLo, t2)
        let u1 = Avx512F.PermuteVar8x64x2(t0, iHi, t2)
        let u2 = Avx512F.PermuteVar8x64x2(t1, iLo, t3)
        let u3 = Avx512F.PermuteVar8x64x2(t1, iHi, t3)
        let u4 = Avx512F.PermuteVar8x64x2(t4, iLo, t6)
        let u5 = Avx512F.PermuteVar8x64x2(t4, iHi, t6)
        let u6 = Avx512F.PermuteVar8x64x2(t5, iLo, t7)
        let u7 = Avx512F.PermuteVar8x64x2(t5, iHi, t7)
        let jLo = Vector512.Create(0L, 1L, 2L, 3L, 8L, 9L, 10L, 11L)
        let jHi = Vector512.Create(4L, 5L, 6L, 7L, 12L, 13L, 14L, 15L)
        Vector512.Store(Avx512F.PermuteVar8x64x2(u0, jLo, u4), dst)
        Vector512.Store(Avx512F.PermuteVar8x64x2(u2, jLo, u6), NativePtr.add dst dstStride)
        Vector512.Store(Avx512F.PermuteVar8x64x2(u1, jLo, u5), NativePtr.add dst (2 * dstStride))
        Vector512.Store(Avx512F.PermuteVar8x64x2(u3, jLo, u7), NativePtr.add dst (3 * dstStride))
        Vector512.Store(Avx512F.PermuteVar8x64x2(u0, jHi, u4), NativePtr.add dst (4 * dstStride))
        Vector512.Store(Avx512F.PermuteVar8x64x2(u2, jHi, u6), NativePtr.add dst (5 * dstStride))
        Vector512.Store(Avx512F.PermuteVar8x64x2(u1, jHi, u5), NativePtr.add dst (6 * dstStride))
        Vector512.Store(Avx512F.PermuteVar8x64x2(u3, jHi, u7), NativePtr.add dst (7 * dstStride))

    /// Loads an 8x8 f32 block (rows at stride `ld`) and stores its transpose (row q of the result at dst + q*dstStride).
    let private transpose8x8F32 (src: nativeptr<float32>) (ld: int) (dst: nativeptr<float32>) (dstStride: int) =
        let r0 = Vector256.Load(src)
        let r1 = Vector256.Load(NativePtr.add src ld)
        let r2 = Vector256.Load(NativePtr.add src (2 * ld))
        let r3 = Vector256.Load(NativePtr.add src (3 * ld))
        let r4 = Vector256.Load(NativePtr.add src (4 * ld))
        let r5 = Vector256.Load(NativePtr.add src (5 * ld))
        let r6 = Vector256.Load(NativePtr.add src (6 * ld))
        let r7 = Vector256.Load(NativePtr.add src (7 * ld))
        let t0 = Avx.UnpackLow(r0, r1)
        let t1 = Avx.UnpackHigh(r0, r1)
        let t2 = Avx.UnpackLow(r2, r3)
        let t3 = Avx.UnpackHigh(r2, r3)
        let t4 = Avx.UnpackLow(r4, r5)
        let t5 = Avx.UnpackHigh(r4, r5)
        let t6 = Avx.UnpackLow(r6, r7)
        let t7 = Avx.UnpackHigh(r6, r7)
        let u0 = Avx.Shuffle(t0, t2, 0x44uy)
        let u1 = Avx.Shuffle(t0, t2, 0xEEuy)
        let u2 = Avx.Shuffle(t1, t3, 0x44uy)
        let u3 = Avx.Shuffle(t1, t3, 0xEEuy)
        let u4 = Avx.Shuffle(t4, t6, 0x44uy)
        let u5 = Avx.Shuffle(t4, t6, 0xEEuy)
        let u6 = Avx.Shuffle(t5, t7, 0x44uy)
        let u7 = Avx.Shuffle(t5, t7, 0xEEuy)
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20uy), dst)
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20uy), NativePtr.add dst dstStride)
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20uy), NativePtr.add dst (2 * dstStride))
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20uy), NativePtr.add dst (3 * dstStride))
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31uy), NativePtr.add dst (4 * dstStride))
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31uy), NativePtr.add dst (5 * dstStride))
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31uy), NativePtr.add dst (6 * dstStride))
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31uy), NativePtr.add dst (7 * dstStride))

    /// Loads 8 columns of 6 f32 rows (rows at stride `ld`) and stores column q's 6 values at dst + 6q, each as an
    /// 8-lane store whose last 2 lanes (junk) the next column's store overwrites: dst must have 2 writable
    /// elements past dst + 48 that are written again afterwards.
    let private transpose6x8F32 (src: nativeptr<float32>) (ld: int) (dst: nativeptr<float32>) =
        let r0 = Vector256.Load(src)
        let r1 = Vector256.Load(NativePtr.add src ld)
        let r2 = Vector256.Load(NativePtr.add src (2 * ld))
        let r3 = Vector256.Load(NativePtr.add src (3 * ld))
        let r4 = Vector256.Load(NativePtr.add src (4 * ld))
        let r5 = Vector256.Load(NativePtr.add src (5 * ld))
        let t0 = Avx.UnpackLow(r0, r1)
        let t1 = Avx.UnpackHigh(r0, r1)
        let t2 = Avx.UnpackLow(r2, r3)
        let t3 = Avx.UnpackHigh(r2, r3)
        let t4 = Avx.UnpackLow(r4, r5)
        let t5 = Avx.UnpackHigh(r4, r5)
        // columns q (lanes q and q+4 of each 128-bit half): rows 0-3 from t0..t3, rows 4-5 from t4/t5
        let u0 = Avx.Shuffle(t0, t2, 0x44uy)
        let u1 = Avx.Shuffle(t0, t2, 0xEEuy)
        let u2 = Avx.Shuffle(t1, t3, 0x44uy)
        let u3 = Avx.Shuffle(t1, t3, 0xEEuy)
        let u4 = Avx.Shuffle(t4, t4, 0x44uy)
        let u5 = Avx.Shuffle(t4, t4, 0xEEuy)
        let u6 = Avx.Shuffle(t5, t5, 0x44uy)
        let u7 = Avx.Shuffle(t5, t5, 0xEEuy)
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x20uy), dst)
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x20uy), NativePtr.add dst 6)
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x20uy), NativePtr.add dst 12)
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x20uy), NativePtr.add dst 18)
        Vector256.Store(Avx.Permute2x128(u0, u4, 0x31uy), NativePtr.add dst 24)
        Vector256.Store(Avx.Permute2x128(u1, u5, 0x31uy), NativePtr.add dst 30)
        Vector256.Store(Avx.Permute2x128(u2, u6, 0x31uy), NativePtr.add dst 36)
        Vector256.Store(Avx.Permute2x128(u3, u7, 0x31uy), NativePtr.add dst 42)

    /// m or n at or below which the product is computed as that many GEMVs instead of packing.
    [<Literal>]
    let private SkinnyMax = 4

    /// n at or below which a product with op(B) = B takes the narrow path (AVX2+FMA): A read in place instead of
    /// packed, and tiles of 4 rows x 2 or 3 256-bit vectors, so that n = 20 wastes at most one vector in six
    /// (the AVX-512 tiles are 24 (f64) and 48 (f32) wide) and packing A (k = 20) costs nothing.
    [<Literal>]
    let private NarrowMax = 24
    /// Rows of a narrow tile.
    [<Literal>]
    let private NarrowMR = 4
    /// Lanes of a 256-bit vector of float64 and float32.
    [<Literal>]
    let private L64 = 4
    [<Literal>]
    let private L32 = 8

    /// The narrow path's column panels for nv vectors: struct (panels of 3 vectors, panels of 2 vectors), which
    /// cover nv exactly when nv >= 2 (a single vector is padded to 2).
    let private narrowPanels (nv: int) =
        match nv % 3 with
        | 0 -> struct (nv / 3, 0)
        | 2 -> struct (nv / 3, 1)
        | _ -> if nv = 1 then struct (0, 1) else struct (nv / 3 - 1, 2)

    let inline private align64 (p: nativeptr<'T>) : nativeptr<'T> =
        let addr = NativePtr.toNativeInt p
        NativePtr.ofNativeInt ((addr + 63n) &&& ~~~63n)

    /// Validates that a row-major `rows x cols` matrix with leading dimension `ld` starting at `off` fits in an array of length `len`.
    let private checkMat (name: string) (len: int) (off: int) (rows: int) (cols: int) (ld: int) =
        if rows > 0 && cols > 0 then
            if off < 0 then invalidArg name (sprintf "%s: negative offset %d" name off)
            if rows > 1 && ld < cols then invalidArg name (sprintf "%s: leading dimension %d < %d columns" name ld cols)
            let last = int64 off + int64 (rows - 1) * int64 ld + int64 cols
            if last > int64 len then
                invalidArg name (sprintf "%s: %dx%d matrix (offset %d, ld %d) exceeds array length %d" name rows cols off ld len)

    let private checkArgs (transA: bool) (transB: bool) m n k (aLen: int) aOff lda (bLen: int) bOff ldb (cLen: int) cOff ldc =
        if m < 0 || n < 0 || k < 0 then invalidArg "m,n,k" "matrix dimensions must be non-negative"
        if m > 0 && n > 0 && k > 0 then
            if transA then checkMat "a" aLen aOff k m lda else checkMat "a" aLen aOff m k lda
            if transB then checkMat "b" bLen bOff n k ldb else checkMat "b" bLen bOff k n ldb
        checkMat "c" cLen cOff m n ldc

    // ==========================================================================================
    // float64
    // ==========================================================================================

    [<Literal>]
    let private MR64 = 8
    [<Literal>]
    let private NR64 = 24
    /// The AVX2 tile: 6 x 8 (12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers).
    [<Literal>]
    let private MR64x = 6
    [<Literal>]
    let private NR64x = 8
    [<Literal>]
    let private KC64 = 256
    [<Literal>]
    let private MC64 = 96
    /// Columns of B packed per block: 1024 columns in one block (a multiple of both tiles' NR). Each 8-row A
    /// micro-panel stays in L1 while B's kc x nc block streams from L2/L3; a wider block means op(A) is packed
    /// fewer times (n / NC per KC block). On the AMD EPYC (Zen 4, 1 MiB L2) 1024^3 ran 53-54 GFLOP/s of CPU
    /// time against 49-50 with 240, on both the AVX-512 and the AVX2 kernel, and no slower at 512 and 2048.
    [<Literal>]
    let private NC64 = 1056

    /// Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into MR-row micro-panels: panel r holds, for each p, MR consecutive rows.
    let private packA64 (mrT: int) (transA: bool) (a: nativeptr<float>) (lda: int) (i0: int) (p0: int) (mc: int) (kc: int) (dst: nativeptr<float>) =
        let mutable ir = 0
        while ir < mc do
            let mr = min mrT (mc - ir)
            let d = NativePtr.add dst (ir * kc)
            if transA then
                // op(A)(i,p) = a[p*lda + i]
                let s0 = NativePtr.add a (p0 * lda + i0 + ir)
                if mr = MR64 && mrT = MR64 then
                    for p in 0 .. kc - 1 do
                        Vector512.Store(Vector512.Load(NativePtr.add s0 (p * lda)), NativePtr.add d (p * mrT))
                elif mr = MR64x && mrT = MR64x then
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * lda)
                        let dd = NativePtr.add d (p * MR64x)
                        Vector256.Store(Vector256.Load(s), dd)
                        Vector128.Store(Vector128.Load(NativePtr.add s 4), NativePtr.add dd 4)
                elif mrT = MR64 && useIsaPaths && Avx512F.IsSupported then
                    let mk = Vector512.LessThan(Vector512<int64>.Indices, Vector512.Create(int64 mr)).AsDouble()
                    for p in 0 .. kc - 1 do
                        Vector512.Store(Avx512F.MaskLoad(NativePtr.add s0 (p * lda), mk, Vector512<float>.Zero), NativePtr.add d (p * mrT))
                else
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * lda)
                        let dd = NativePtr.add d (p * mrT)
                        for r in 0 .. mrT - 1 do
                            NativePtr.set dd r (if r < mr then NativePtr.get s r else 0.0)
            elif mr = MR64 && mrT = MR64 && useIsaPaths && Avx512F.IsSupported then
                // op(A)(i,p) = a[i*lda + p]: 8x8 register transposes
                let s0 = NativePtr.add a ((i0 + ir) * lda + p0)
                let mutable p = 0
                while p + 8 <= kc do
                    transpose8x8F64 (NativePtr.add s0 p) lda (NativePtr.add d (p * mrT)) MR64
                    p <- p + 8
                while p < kc do
                    for r in 0 .. MR64 - 1 do
                        NativePtr.set d (p * mrT + r) (NativePtr.get s0 (r * lda + p))
                    p <- p + 1
            elif mr = MR64x && mrT = MR64x && useIsaPaths && Avx.IsSupported then
                // op(A)(i,p) = a[i*lda + p], 6 rows: a 4x4 register transpose of rows 0-3 and pairs of rows 4-5
                let r0 = NativePtr.add a ((i0 + ir) * lda + p0)
                let r1 = NativePtr.add r0 lda
                let r2 = NativePtr.add r1 lda
                let r3 = NativePtr.add r2 lda
                let r4 = NativePtr.add r3 lda
                let r5 = NativePtr.add r4 lda
                let mutable p = 0
                while p + 4 <= kc do
                    let t0 = Avx.UnpackLow(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add r1 p))
                    let t1 = Avx.UnpackHigh(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add r1 p))
                    let t2 = Avx.UnpackLow(Vector256.Load(NativePtr.add r2 p), Vector256.Load(NativePtr.add r3 p))
                    let t3 = Avx.UnpackHigh(Vector256.Load(NativePtr.add r2 p), Vector256.Load(NativePtr.add r3 p))
                    let u0 = Avx.UnpackLow(Vector256.Load(NativePtr.add r4 p), Vector256.Load(NativePtr.add r5 p))
                    let u1 = Avx.UnpackHigh(Vector256.Load(NativePtr.add r4 p), Vector256.Load(NativePtr.add r5 p))
                    let dd = NativePtr.add d (p * MR64x)
                    Vector256.Store(Avx.Permute2x128(t0, t2, 0x20uy), dd)
                    Vector128.Store(u0.GetLower(), NativePtr.add dd 4)
                    Vector256.Store(Avx.Permute2x128(t1, t3, 0x20uy), NativePtr.add dd MR64x)
                    Vector128.Store(u1.GetLower(), NativePtr.add dd (MR64x + 4))
                    Vector256.Store(Avx.Permute2x128(t0, t2, 0x31uy), NativePtr.add dd (2 * MR64x))
                    Vector128.Store(u0.GetUpper(), NativePtr.add dd (2 * MR64x + 4))
                    Vector256.Store(Avx.Permute2x128(t1, t3, 0x31uy), NativePtr.add dd (3 * MR64x))
                    Vector128.Store(u1.GetUpper(), NativePtr.add dd (3 * MR64x + 4))
                    p <- p + 4
                while p < kc do
                    for r in 0 .. MR64x - 1 do
                        NativePtr.set d (p * MR64x + r) (NativePtr.get r0 (r * lda + p))
                    p <- p + 1
            else
                // op(A)(i,p) = a[i*lda + p]
                for r in 0 .. mrT - 1 do
                    if r < mr then
                        let s = NativePtr.add a ((i0 + ir + r) * lda + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * mrT + r) (NativePtr.get s p)
                    else
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * mrT + r) 0.0
            ir <- ir + mrT

    /// Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into NR-column micro-panels: panel holds, for each p, NR consecutive columns.
    let private packB64 (nrT: int) (transB: bool) (b: nativeptr<float>) (ldb: int) (p0: int) (j0: int) (kc: int) (nc: int) (dst: nativeptr<float>) =
        let mutable jr = 0
        while jr < nc do
            let nr = min nrT (nc - jr)
            let d = NativePtr.add dst (jr * kc)
            if not transB then
                // op(B)(p,j) = b[p*ldb + j]
                let s0 = NativePtr.add b (p0 * ldb + j0 + jr)
                if nr = NR64 && nrT = NR64 then
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * NR64)
                        Vector512.Store(Vector512.Load(s), dd)
                        Vector512.Store(Vector512.Load(NativePtr.add s 8), NativePtr.add dd 8)
                        Vector512.Store(Vector512.Load(NativePtr.add s 16), NativePtr.add dd 16)
                elif nr = nrT then
                    // a full AVX2-sized panel row: whole vectors
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * nrT)
                        let mutable jj = 0
                        while jj < nrT do
                            Vector256.Store(Vector256.Load(NativePtr.add s jj), NativePtr.add dd jj)
                            jj <- jj + Vector256<float>.Count
                elif nrT = NR64 && useIsaPaths && Avx512F.IsSupported then
                    // masked loads (no reads past column nr), zero padding
                    let idx = Vector512<int64>.Indices
                    let z = Vector512<float>.Zero
                    let m0 = Vector512.LessThan(idx, Vector512.Create(int64 nr)).AsDouble()
                    let m1 = Vector512.LessThan(idx, Vector512.Create(int64 (nr - 8))).AsDouble()
                    let m2 = Vector512.LessThan(idx, Vector512.Create(int64 (nr - 2 * 8))).AsDouble()
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * NR64)
                        Vector512.Store(Avx512F.MaskLoad(s, m0, z), dd)
                        Vector512.Store(Avx512F.MaskLoad(NativePtr.add s 8, m1, z), NativePtr.add dd 8)
                        Vector512.Store(Avx512F.MaskLoad(NativePtr.add s (2 * 8), m2, z), NativePtr.add dd (2 * 8))
                else
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * nrT)
                        for jj in 0 .. nrT - 1 do
                            NativePtr.set dd jj (if jj < nr then NativePtr.get s jj else 0.0)
            elif nr = NR64 && nrT = NR64 && useIsaPaths && Avx512F.IsSupported then
                // op(B)(p,j) = b[j*ldb + p]: 8x8 register transposes, NR/8 groups of columns
                let mutable p = 0
                while p + 8 <= kc do
                    for g in 0 .. NR64 / 8 - 1 do
                        transpose8x8F64 (NativePtr.add b ((j0 + jr + 8 * g) * ldb + p0 + p)) ldb (NativePtr.add d (p * NR64 + 8 * g)) NR64
                    p <- p + 8
                while p < kc do
                    for jj in 0 .. NR64 - 1 do
                        NativePtr.set d (p * NR64 + jj) (NativePtr.get b ((j0 + jr + jj) * ldb + p0 + p))
                    p <- p + 1
            else
                // op(B)(p,j) = b[j*ldb + p]
                for jj in 0 .. nrT - 1 do
                    if jj < nr then
                        let s = NativePtr.add b ((j0 + jr + jj) * ldb + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * nrT + jj) (NativePtr.get s p)
                    else
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * nrT + jj) 0.0
            jr <- jr + nrT

    /// 8 x 24 micro-kernel: C[8x24] (ldc) = (overwrite ? 0 : C) + sum_p pa[p,:]^T pb[p,:].
    /// The sum over p always starts from zero and C is added once at the end, so the rounding of each
    /// element does not depend on where the tile sits.
    let private kernel64 (kc: int) (pa: nativeptr<float>) (pb: nativeptr<float>) (c: nativeptr<float>) (ldc: int) (overwrite: bool) =
        if Sse.IsSupported then
            // Software-prefetch the C tile (its rows are ldc apart, which the hardware prefetcher does not follow);
            // the latency is hidden behind the kc-long FMA loop.
            let mutable cr = c
            for _ in 0 .. MR64 - 1 do
                Sse.Prefetch0(NativePtr.toVoidPtr cr)
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr 8))
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (2 * 8)))
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (3 * 8 - 1)))
                cr <- NativePtr.add cr ldc
        let mutable c00 = Vector512<float>.Zero
        let mutable c01 = Vector512<float>.Zero
        let mutable c02 = Vector512<float>.Zero
        let mutable c10 = Vector512<float>.Zero
        let mutable c11 = Vector512<float>.Zero
        let mutable c12 = Vector512<float>.Zero
        let mutable c20 = Vector512<float>.Zero
        let mutable c21 = Vector512<float>.Zero
        let mutable c22 = Vector512<float>.Zero
        let mutable c30 = Vector512<float>.Zero
        let mutable c31 = Vector512<float>.Zero
        let mutable c32 = Vector512<float>.Zero
        let mutable c40 = Vector512<float>.Zero
        let mutable c41 = Vector512<float>.Zero
        let mutable c42 = Vector512<float>.Zero
        let mutable c50 = Vector512<float>.Zero
        let mutable c51 = Vector512<float>.Zero
        let mutable c52 = Vector512<float>.Zero
        let mutable c60 = Vector512<float>.Zero
        let mutable c61 = Vector512<float>.Zero
        let mutable c62 = Vector512<float>.Zero
        let mutable c70 = Vector512<float>.Zero
        let mutable c71 = Vector512<float>.Zero
        let mutable c72 = Vector512<float>.Zero
        let mutable a = pa
        let mutable b = pb
        let mutable p = kc
        while p > 0 do
            let b0 = Vector512.Load(b)
            let b1 = Vector512.Load(NativePtr.add b 8)
            let b2 = Vector512.Load(NativePtr.add b 16)
            let a0 = Vector512.Create(NativePtr.get a 0)
            c00 <- Vector512.FusedMultiplyAdd(a0, b0, c00)
            c01 <- Vector512.FusedMultiplyAdd(a0, b1, c01)
            c02 <- Vector512.FusedMultiplyAdd(a0, b2, c02)
            let a1 = Vector512.Create(NativePtr.get a 1)
            c10 <- Vector512.FusedMultiplyAdd(a1, b0, c10)
            c11 <- Vector512.FusedMultiplyAdd(a1, b1, c11)
            c12 <- Vector512.FusedMultiplyAdd(a1, b2, c12)
            let a2 = Vector512.Create(NativePtr.get a 2)
            c20 <- Vector512.FusedMultiplyAdd(a2, b0, c20)
            c21 <- Vector512.FusedMultiplyAdd(a2, b1, c21)
            c22 <- Vector512.FusedMultiplyAdd(a2, b2, c22)
            let a3 = Vector512.Create(NativePtr.get a 3)
            c30 <- Vector512.FusedMultiplyAdd(a3, b0, c30)
            c31 <- Vector512.FusedMultiplyAdd(a3, b1, c31)
            c32 <- Vector512.FusedMultiplyAdd(a3, b2, c32)
            let a4 = Vector512.Create(NativePtr.get a 4)
            c40 <- Vector512.FusedMultiplyAdd(a4, b0, c40)
            c41 <- Vector512.FusedMultiplyAdd(a4, b1, c41)
            c42 <- Vector512.FusedMultiplyAdd(a4, b2, c42)
            let a5 = Vector512.Create(NativePtr.get a 5)
            c50 <- Vector512.FusedMultiplyAdd(a5, b0, c50)
            c51 <- Vector512.FusedMultiplyAdd(a5, b1, c51)
            c52 <- Vector512.FusedMultiplyAdd(a5, b2, c52)
            let a6 = Vector512.Create(NativePtr.get a 6)
            c60 <- Vector512.FusedMultiplyAdd(a6, b0, c60)
            c61 <- Vector512.FusedMultiplyAdd(a6, b1, c61)
            c62 <- Vector512.FusedMultiplyAdd(a6, b2, c62)
            let a7 = Vector512.Create(NativePtr.get a 7)
            c70 <- Vector512.FusedMultiplyAdd(a7, b0, c70)
            c71 <- Vector512.FusedMultiplyAdd(a7, b1, c71)
            c72 <- Vector512.FusedMultiplyAdd(a7, b2, c72)
            a <- NativePtr.add a MR64
            b <- NativePtr.add b NR64
            p <- p - 1
        let inline st (row: int) (v0: Vector512<float>) (v1: Vector512<float>) (v2: Vector512<float>) =
            let cp = NativePtr.add c (row * ldc)
            if overwrite then
                Vector512.Store(v0, cp)
                Vector512.Store(v1, NativePtr.add cp 8)
                Vector512.Store(v2, NativePtr.add cp 16)
            else
                Vector512.Store(Vector512.Load(cp) + v0, cp)
                Vector512.Store(Vector512.Load(NativePtr.add cp 8) + v1, NativePtr.add cp 8)
                Vector512.Store(Vector512.Load(NativePtr.add cp 16) + v2, NativePtr.add cp 16)
        st 0 c00 c01 c02
        st 1 c10 c11 c12
        st 2 c20 c21 c22
        st 3 c30 c31 c32
        st 4 c40 c41 c42
        st 5 c50 c51 c52
        st 6 c60 c61 c62
        st 7 c70 c71 c72

    /// AVX2 6 x 8 micro-kernel, the same contract as the AVX-512 one: C[6x8] (ldc) = (overwrite ? 0 : C) +
    /// sum_p pa[p,:]^T pb[p,:], the sum over p from zero (each element's rounding is the same FMA chain whichever
    /// kernel or tile computes it).
    let private kernel64x (kc: int) (pa: nativeptr<float>) (pb: nativeptr<float>) (c: nativeptr<float>) (ldc: int) (overwrite: bool) =
        if Sse.IsSupported then
            let mutable cr = c
            for _ in 0 .. MR64x - 1 do
                Sse.Prefetch0(NativePtr.toVoidPtr cr)
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (NR64x - 1)))
                cr <- NativePtr.add cr ldc
        let mutable c00 = Vector256<float>.Zero
        let mutable c01 = Vector256<float>.Zero
        let mutable c10 = Vector256<float>.Zero
        let mutable c11 = Vector256<float>.Zero
        let mutable c20 = Vector256<float>.Zero
        let mutable c21 = Vector256<float>.Zero
        let mutable c30 = Vector256<float>.Zero
        let mutable c31 = Vector256<float>.Zero
        let mutable c40 = Vector256<float>.Zero
        let mutable c41 = Vector256<float>.Zero
        let mutable c50 = Vector256<float>.Zero
        let mutable c51 = Vector256<float>.Zero
        let mutable a = pa
        let mutable b = pb
        let mutable p = kc
        while p > 0 do
            let b0 = Vector256.Load(b)
            let b1 = Vector256.Load(NativePtr.add b 4)
            let a0 = Vector256.Create(NativePtr.get a 0)
            c00 <- Vector256.FusedMultiplyAdd(a0, b0, c00)
            c01 <- Vector256.FusedMultiplyAdd(a0, b1, c01)
            let a1 = Vector256.Create(NativePtr.get a 1)
            c10 <- Vector256.FusedMultiplyAdd(a1, b0, c10)
            c11 <- Vector256.FusedMultiplyAdd(a1, b1, c11)
            let a2 = Vector256.Create(NativePtr.get a 2)
            c20 <- Vector256.FusedMultiplyAdd(a2, b0, c20)
            c21 <- Vector256.FusedMultiplyAdd(a2, b1, c21)
            let a3 = Vector256.Create(NativePtr.get a 3)
            c30 <- Vector256.FusedMultiplyAdd(a3, b0, c30)
            c31 <- Vector256.FusedMultiplyAdd(a3, b1, c31)
            let a4 = Vector256.Create(NativePtr.get a 4)
            c40 <- Vector256.FusedMultiplyAdd(a4, b0, c40)
            c41 <- Vector256.FusedMultiplyAdd(a4, b1, c41)
            let a5 = Vector256.Create(NativePtr.get a 5)
            c50 <- Vector256.FusedMultiplyAdd(a5, b0, c50)
            c51 <- Vector256.FusedMultiplyAdd(a5, b1, c51)
            a <- NativePtr.add a MR64x
            b <- NativePtr.add b NR64x
            p <- p - 1
        let inline st (row: int) (v0: Vector256<float>) (v1: Vector256<float>) =
            let cp = NativePtr.add c (row * ldc)
            if overwrite then
                Vector256.Store(v0, cp)
                Vector256.Store(v1, NativePtr.add cp 4)
            else
                Vector256.Store(Vector256.Load(cp) + v0, cp)
                Vector256.Store(Vector256.Load(NativePtr.add cp 4) + v1, NativePtr.add cp 4)
        st 0 c00 c01
        st 1 c10 c11
        st 2 c20 c21
        st 3 c30 c31
        st 4 c40 c41
        st 5 c50 c51

    /// Computes C[i0..i1, j0..j1] with the packed blocked algorithm (single thread).
    let private blocked64 (transA: bool) (transB: bool) (k: int)
                          (a: float[]) (aOff: int) (lda: int) (b: float[]) (bOff: int) (ldb: int)
                          (c: float[]) (cOff: int) (ldc: int) (accumulate: bool)
                          (i0: int) (i1: int) (j0: int) (j1: int) =
        // AVX-512: the 8 x 24 kernel; otherwise the AVX2 6 x 8 one (also the portable path without AVX).
        let wide = useIsaPaths && Avx512F.IsSupported
        let mrT = if wide then MR64 else MR64x
        let nrT = if wide then NR64 else NR64x
        let bufA = ArrayPool<float>.Shared.Rent(MC64 * KC64 + 8)
        let bufB = ArrayPool<float>.Shared.Rent(KC64 * NC64 + 8)
        let tile = NativePtr.stackalloc<float> (MR64 * NR64)
        try
            use pA0 = fixed bufA
            use pB0 = fixed bufB
            use pa0 = fixed a
            use pb0 = fixed b
            use pc0 = fixed c
            let pA = align64 pA0
            let pB = align64 pB0
            let pa = NativePtr.add pa0 aOff
            let pb = NativePtr.add pb0 bOff
            let pc = NativePtr.add pc0 cOff
            let mutable jc = j0
            while jc < j1 do
                let nc = min NC64 (j1 - jc)
                let mutable pcb = 0
                while pcb < k do
                    let kc = min KC64 (k - pcb)
                    let overwrite = (pcb = 0) && not accumulate
                    packB64 nrT transB pb ldb pcb jc kc nc pB
                    let mutable ic = i0
                    while ic < i1 do
                        let mc = min MC64 (i1 - ic)
                        packA64 mrT transA pa lda ic pcb mc kc pA
                        let mutable ir = 0
                        while ir < mc do
                            let mr = min mrT (mc - ir)
                            let ap = NativePtr.add pA (ir * kc)
                            let mutable jr = 0
                            while jr < nc do
                                let nr = min nrT (nc - jr)
                                let bp = NativePtr.add pB (jr * kc)
                                let cp = NativePtr.add pc ((ic + ir) * ldc + jc + jr)
                                if mr = mrT && nr = nrT then
                                    if wide then kernel64 kc ap bp cp ldc overwrite else kernel64x kc ap bp cp ldc overwrite
                                else
                                    if wide then kernel64 kc ap bp tile nrT true else kernel64x kc ap bp tile nrT true
                                    for r in 0 .. mr - 1 do
                                        let crow = NativePtr.add cp (r * ldc)
                                        let trow = NativePtr.add tile (r * nrT)
                                        for j in 0 .. nr - 1 do
                                            let t = NativePtr.get trow j
                                            NativePtr.set crow j (if overwrite then t else NativePtr.get crow j + t)
                                jr <- jr + nrT
                            ir <- ir + mrT
                        ic <- ic + MC64
                    pcb <- pcb + KC64
                jc <- jc + NC64
        finally
            ArrayPool<float>.Shared.Return(bufA)
            ArrayPool<float>.Shared.Return(bufB)

    /// The packed blocked path whatever the shape (the tests compare the narrow path with it).
    let internal runBlocked64 (maxThreads: int) transA transB m n k (a: float[]) aOff lda (b: float[]) bOff ldb (c: float[]) cOff ldc accumulate =
        let work = int64 m * int64 n * int64 k
        let nt = if work >= parallelThreshold then maxThreads else 1
        // Partition the dimension that has more micro-tile units (finer granularity => better balance).
        let mrT, nrT = if useIsaPaths && Avx512F.IsSupported then MR64, NR64 else MR64x, NR64x
        let splitCols = (n + nrT - 1) / nrT > (m + mrT - 1) / mrT
        let unit = if splitCols then nrT else mrT
        let len = if splitCols then n else m
        let units = (len + unit - 1) / unit
        let nt = min nt units
        if nt <= 1 then
            blocked64 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate 0 m 0 n
        else
            Parallel.For(0, nt, fun t ->
                let s = min len ((units * t / nt) * unit)
                let e = min len ((units * (t + 1) / nt) * unit)
                if e > s then
                    if splitCols then blocked64 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate 0 m s e
                    else blocked64 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate s e 0 n)
            |> ignore

    /// Horizontal sums of four Vector256<float>: result lane r = sum of v_r.
    let inline private hsum4x64 (t0: Vector256<float>) (t1: Vector256<float>) (t2: Vector256<float>) (t3: Vector256<float>) =
        if Avx.IsSupported then
            let h01 = Avx.HorizontalAdd(t0, t1)
            let h23 = Avx.HorizontalAdd(t2, t3)
            Avx.Permute2x128(h01, h23, 0x20uy) + Avx.Permute2x128(h01, h23, 0x31uy)
        else
            Vector256.Create(Vector256.Sum t0, Vector256.Sum t1, Vector256.Sum t2, Vector256.Sum t3)

    let inline private writeY64 (y: nativeptr<float>) (incy: int) (i: int) (v: float) (accumulate: bool) =
        let yp = NativePtr.add y (i * incy)
        NativePtr.write yp (if accumulate then NativePtr.read yp + v else v)

    /// y[i*incy] (+)= sum_p a[i*lda + p] * x[p], i < rows, p < cols (x contiguous).
    let private gemvN64 (rows: int) (cols: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i + 4 <= rows do
            let r0 = NativePtr.add a (i * lda)
            let r1 = NativePtr.add r0 lda
            let r2 = NativePtr.add r1 lda
            let r3 = NativePtr.add r2 lda
            let mutable s0 = Vector512<float>.Zero
            let mutable s1 = Vector512<float>.Zero
            let mutable s2 = Vector512<float>.Zero
            let mutable s3 = Vector512<float>.Zero
            let mutable p = 0
            while p + 8 <= cols do
                let xv = Vector512.Load(NativePtr.add x p)
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r0 p), xv, s0)
                s1 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r1 p), xv, s1)
                s2 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r2 p), xv, s2)
                s3 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r3 p), xv, s3)
                p <- p + 8
            let mutable t0 = s0.GetLower() + s0.GetUpper()
            let mutable t1 = s1.GetLower() + s1.GetUpper()
            let mutable t2 = s2.GetLower() + s2.GetUpper()
            let mutable t3 = s3.GetLower() + s3.GetUpper()
            if p + 4 <= cols then
                let xv = Vector256.Load(NativePtr.add x p)
                t0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), xv, t0)
                t1 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r1 p), xv, t1)
                t2 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r2 p), xv, t2)
                t3 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r3 p), xv, t3)
                p <- p + 4
            let mutable sums = hsum4x64 t0 t1 t2 t3
            while p < cols do
                let av = Vector256.Create(NativePtr.get r0 p, NativePtr.get r1 p, NativePtr.get r2 p, NativePtr.get r3 p)
                sums <- Vector256.FusedMultiplyAdd(av, Vector256.Create(NativePtr.get x p), sums)
                p <- p + 1
            if incy = 1 then
                let yp = NativePtr.add y i
                Vector256.Store((if accumulate then Vector256.Load(yp) + sums else sums), yp)
            else
                writeY64 y incy i (sums.GetElement 0) accumulate
                writeY64 y incy (i + 1) (sums.GetElement 1) accumulate
                writeY64 y incy (i + 2) (sums.GetElement 2) accumulate
                writeY64 y incy (i + 3) (sums.GetElement 3) accumulate
            i <- i + 4
        while i < rows do
            let r0 = NativePtr.add a (i * lda)
            let mutable s0 = Vector512<float>.Zero
            let mutable p = 0
            while p + 8 <= cols do
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r0 p), Vector512.Load(NativePtr.add x p), s0)
                p <- p + 8
            let mutable t0 = s0.GetLower() + s0.GetUpper()
            if p + 4 <= cols then
                t0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add x p), t0)
                p <- p + 4
            let mutable s = Vector256.Sum t0
            while p < cols do
                s <- Math.FusedMultiplyAdd(NativePtr.get r0 p, NativePtr.get x p, s)
                p <- p + 1
            writeY64 y incy i s accumulate
            i <- i + 1

    let inline private storeY512x64 (y: nativeptr<float>) (incy: int) (i: int) (v: Vector512<float>) (accumulate: bool) =
        if incy = 1 then
            let yp = NativePtr.add y i
            Vector512.Store((if accumulate then Vector512.Load(yp) + v else v), yp)
        else
            writeY64 y incy (i + 0) (v.GetElement 0) accumulate
            writeY64 y incy (i + 1) (v.GetElement 1) accumulate
            writeY64 y incy (i + 2) (v.GetElement 2) accumulate
            writeY64 y incy (i + 3) (v.GetElement 3) accumulate
            writeY64 y incy (i + 4) (v.GetElement 4) accumulate
            writeY64 y incy (i + 5) (v.GetElement 5) accumulate
            writeY64 y incy (i + 6) (v.GetElement 6) accumulate
            writeY64 y incy (i + 7) (v.GetElement 7) accumulate

    /// AVX-512 variant of gemvN for f64: 8 rows per block, masked tail chunk, and a shuffle tree that reduces the
    /// 8 row accumulators into one vector of 8 dot products. Remaining rows (< 8) go through gemvN64.
    let private gemvNMasked64 (rows: int) (cols: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let z = Vector512<float>.Zero
        let full = cols &&& ~~~7
        let mt = Vector512.LessThan(Vector512<int64>.Indices, Vector512.Create(int64 (cols - full))).AsDouble()
        let hasTail = full < cols
        let xt = if hasTail then Avx512F.MaskLoad(NativePtr.add x full, mt, z) else z
        let iLo = Vector512.Create(0L, 1L, 8L, 9L, 4L, 5L, 12L, 13L)
        let iHi = Vector512.Create(2L, 3L, 10L, 11L, 6L, 7L, 14L, 15L)
        let jLo = Vector512.Create(0L, 1L, 2L, 3L, 8L, 9L, 10L, 11L)
        let jHi = Vector512.Create(4L, 5L, 6L, 7L, 12L, 13L, 14L, 15L)
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
                let xv = Vector512.Load(NativePtr.add x p)
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r0 p), xv, s0)
                s1 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r1 p), xv, s1)
                s2 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r2 p), xv, s2)
                s3 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r3 p), xv, s3)
                s4 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r4 p), xv, s4)
                s5 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r5 p), xv, s5)
                s6 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r6 p), xv, s6)
                s7 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r7 p), xv, s7)
                p <- p + 8
            if hasTail then
                s0 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r0 full, mt, z), xt, s0)
                s1 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r1 full, mt, z), xt, s1)
                s2 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r2 full, mt, z), xt, s2)
                s3 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r3 full, mt, z), xt, s3)
                s4 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r4 full, mt, z), xt, s4)
                s5 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r5 full, mt, z), xt, s5)
                s6 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r6 full, mt, z), xt, s6)
                s7 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add r7 full, mt, z), xt, s7)
            let a01 = Avx512F.UnpackLow(s0, s1) + Avx512F.UnpackHigh(s0, s1)
            let a23 = Avx512F.UnpackLow(s2, s3) + Avx512F.UnpackHigh(s2, s3)
            let a45 = Avx512F.UnpackLow(s4, s5) + Avx512F.UnpackHigh(s4, s5)
            let a67 = Avx512F.UnpackLow(s6, s7) + Avx512F.UnpackHigh(s6, s7)
            let b03 = Avx512F.PermuteVar8x64x2(a01, iLo, a23) + Avx512F.PermuteVar8x64x2(a01, iHi, a23)
            let b47 = Avx512F.PermuteVar8x64x2(a45, iLo, a67) + Avx512F.PermuteVar8x64x2(a45, iHi, a67)
            let v = Avx512F.PermuteVar8x64x2(b03, jLo, b47) + Avx512F.PermuteVar8x64x2(b03, jHi, b47)
            storeY512x64 y incy i v accumulate
            i <- i + 8
        if i < rows then
            gemvN64 (rows - i) cols (NativePtr.add a (i * lda)) lda x (NativePtr.add y (i * incy)) incy accumulate

    /// y[i*incy] (+)= sum_p a[p*lda + i] * x[p], i < m (outputs), p < k (x contiguous).
    let private gemvT64 (m: int) (k: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i + 16 <= m do
            let mutable s00 = Vector512<float>.Zero
            let mutable s01 = Vector512<float>.Zero
            let mutable s10 = Vector512<float>.Zero
            let mutable s11 = Vector512<float>.Zero
            let mutable s20 = Vector512<float>.Zero
            let mutable s21 = Vector512<float>.Zero
            let mutable s30 = Vector512<float>.Zero
            let mutable s31 = Vector512<float>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let x0 = Vector512.Create(NativePtr.get x p)
                let x1 = Vector512.Create(NativePtr.get x (p + 1))
                let x2 = Vector512.Create(NativePtr.get x (p + 2))
                let x3 = Vector512.Create(NativePtr.get x (p + 3))
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s00 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add ap 8), x0, s01)
                s10 <- Vector512.FusedMultiplyAdd(Vector512.Load(a1), x1, s10)
                s11 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a1 8), x1, s11)
                s20 <- Vector512.FusedMultiplyAdd(Vector512.Load(a2), x2, s20)
                s21 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a2 8), x2, s21)
                s30 <- Vector512.FusedMultiplyAdd(Vector512.Load(a3), x3, s30)
                s31 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a3 8), x3, s31)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                let x0 = Vector512.Create(NativePtr.get x p)
                s00 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add ap 8), x0, s01)
                ap <- NativePtr.add ap lda
                p <- p + 1
            storeY512x64 y incy i ((s00 + s10) + (s20 + s30)) accumulate
            storeY512x64 y incy (i + 8) ((s01 + s11) + (s21 + s31)) accumulate
            i <- i + 16
        if i + 8 <= m then
            let mutable s0 = Vector512<float>.Zero
            let mutable s1 = Vector512<float>.Zero
            let mutable s2 = Vector512<float>.Zero
            let mutable s3 = Vector512<float>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), Vector512.Create(NativePtr.get x p), s0)
                s1 <- Vector512.FusedMultiplyAdd(Vector512.Load(a1), Vector512.Create(NativePtr.get x (p + 1)), s1)
                s2 <- Vector512.FusedMultiplyAdd(Vector512.Load(a2), Vector512.Create(NativePtr.get x (p + 2)), s2)
                s3 <- Vector512.FusedMultiplyAdd(Vector512.Load(a3), Vector512.Create(NativePtr.get x (p + 3)), s3)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), Vector512.Create(NativePtr.get x p), s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            storeY512x64 y incy i ((s0 + s1) + (s2 + s3)) accumulate
            i <- i + 8
        if i + 4 <= m then
            let mutable s0 = Vector256<float>.Zero
            let mutable s1 = Vector256<float>.Zero
            let mutable s2 = Vector256<float>.Zero
            let mutable s3 = Vector256<float>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(ap), Vector256.Create(NativePtr.get x p), s0)
                s1 <- Vector256.FusedMultiplyAdd(Vector256.Load(a1), Vector256.Create(NativePtr.get x (p + 1)), s1)
                s2 <- Vector256.FusedMultiplyAdd(Vector256.Load(a2), Vector256.Create(NativePtr.get x (p + 2)), s2)
                s3 <- Vector256.FusedMultiplyAdd(Vector256.Load(a3), Vector256.Create(NativePtr.get x (p + 3)), s3)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(ap), Vector256.Create(NativePtr.get x p), s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            let v = (s0 + s1) + (s2 + s3)
            if incy = 1 then
                let yp = NativePtr.add y i
                Vector256.Store((if accumulate then Vector256.Load(yp) + v else v), yp)
            else
                writeY64 y incy (i + 0) (v.GetElement 0) accumulate
                writeY64 y incy (i + 1) (v.GetElement 1) accumulate
                writeY64 y incy (i + 2) (v.GetElement 2) accumulate
                writeY64 y incy (i + 3) (v.GetElement 3) accumulate
            i <- i + 4
        while i < m do
            let mutable s0 = 0.0
            let mutable s1 = 0.0
            let mutable s2 = 0.0
            let mutable s3 = 0.0
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                s0 <- Math.FusedMultiplyAdd(NativePtr.read ap, NativePtr.get x p, s0)
                s1 <- Math.FusedMultiplyAdd(NativePtr.get ap lda, NativePtr.get x (p + 1), s1)
                s2 <- Math.FusedMultiplyAdd(NativePtr.get ap (2 * lda), NativePtr.get x (p + 2), s2)
                s3 <- Math.FusedMultiplyAdd(NativePtr.get ap (3 * lda), NativePtr.get x (p + 3), s3)
                ap <- NativePtr.add ap (4 * lda)
                p <- p + 4
            while p < k do
                s0 <- Math.FusedMultiplyAdd(NativePtr.read ap, NativePtr.get x p, s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            writeY64 y incy i ((s0 + s1) + (s2 + s3)) accumulate
            i <- i + 1

    /// AVX-512 variant of gemvT: one pass over `a` per block of up to 3 vectors of outputs (masked tails),
    /// 4-way unrolled over p so that 12 independent FMA chains are in flight.
    let private gemvTMasked64 (m: int) (k: int) (a: nativeptr<float>) (lda: int) (x: nativeptr<float>) (y: nativeptr<float>) (incy: int) (accumulate: bool) =
        let idx = Vector512<int64>.Indices
        let z = Vector512<float>.Zero
        let tmp = NativePtr.stackalloc<float> (3 * 8)
        let mutable i = 0
        while i < m do
            let w = min (3 * 8) (m - i)
            let m0 = Vector512.LessThan(idx, Vector512.Create(int64 w)).AsDouble()
            let m1 = Vector512.LessThan(idx, Vector512.Create(int64 (w - 8))).AsDouble()
            let m2 = Vector512.LessThan(idx, Vector512.Create(int64 (w - 2 * 8))).AsDouble()
            let mutable s00 = z
            let mutable s01 = z
            let mutable s02 = z
            let mutable s10 = z
            let mutable s11 = z
            let mutable s12 = z
            let mutable s20 = z
            let mutable s21 = z
            let mutable s22 = z
            let mutable s30 = z
            let mutable s31 = z
            let mutable s32 = z
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let x0 = Vector512.Create(NativePtr.get x p)
                let x1 = Vector512.Create(NativePtr.get x (p + 1))
                let x2 = Vector512.Create(NativePtr.get x (p + 2))
                let x3 = Vector512.Create(NativePtr.get x (p + 3))
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s00 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(ap, m0, z), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap 8, m1, z), x0, s01)
                s02 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap (2 * 8), m2, z), x0, s02)
                s10 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a1, m0, z), x1, s10)
                s11 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a1 8, m1, z), x1, s11)
                s12 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a1 (2 * 8), m2, z), x1, s12)
                s20 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a2, m0, z), x2, s20)
                s21 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a2 8, m1, z), x2, s21)
                s22 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a2 (2 * 8), m2, z), x2, s22)
                s30 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a3, m0, z), x3, s30)
                s31 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a3 8, m1, z), x3, s31)
                s32 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a3 (2 * 8), m2, z), x3, s32)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                let x0 = Vector512.Create(NativePtr.get x p)
                s00 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(ap, m0, z), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap 8, m1, z), x0, s01)
                s02 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap (2 * 8), m2, z), x0, s02)
                ap <- NativePtr.add ap lda
                p <- p + 1
            let v0 = (s00 + s10) + (s20 + s30)
            let v1 = (s01 + s11) + (s21 + s31)
            let v2 = (s02 + s12) + (s22 + s32)
            if w = 3 * 8 && incy = 1 then
                storeY512x64 y 1 i v0 accumulate
                storeY512x64 y 1 (i + 8) v1 accumulate
                storeY512x64 y 1 (i + 2 * 8) v2 accumulate
            else
                Vector512.Store(v0, tmp)
                Vector512.Store(v1, NativePtr.add tmp 8)
                Vector512.Store(v2, NativePtr.add tmp (2 * 8))
                for l in 0 .. w - 1 do writeY64 y incy (i + l) (NativePtr.get tmp l) accumulate
            i <- i + 3 * 8

    /// The GEMV kernel for this processor: AVX-512 the masked kernels above; AVX2+FMA Gemv's 256-bit kernels;
    /// otherwise the portable ones.
    let private gemvKernel64 (trans: bool) (rows: int) (cols: int) (pa: nativeptr<float>) (lda: int) (px: nativeptr<float>) (py: nativeptr<float>) (incy: int) (accumulate: bool) =
        if useIsaPaths && Avx512F.IsSupported then
            (if trans then gemvTMasked64 else gemvNMasked64) rows cols pa lda px py incy accumulate
        elif Gemv.supported () then
            (if trans then Gemv.gemvT64 else Gemv.gemvN64) rows cols pa lda px py incy accumulate
        else (if trans then gemvT64 else gemvN64) rows cols pa lda px py incy accumulate

    /// y (+)= M x where M(i,p) = trans ? a[aOff + p*lda + i] : a[aOff + i*lda + p]; x(p) = x[xOff + p*incx]; y(i) = y[yOff + i*incy].
    let private gemv64 (trans: bool) (rows: int) (cols: int) (a: float[]) (aOff: int) (lda: int)
                       (x: float[]) (xOff: int) (incx: int) (y: float[]) (yOff: int) (incy: int) (accumulate: bool) =
        use pa0 = fixed a
        use px0 = fixed x
        use py0 = fixed y
        let pa = NativePtr.add pa0 aOff
        let py = NativePtr.add py0 yOff
        if incx = 1 then
            let px = NativePtr.add px0 xOff
            gemvKernel64 trans rows cols pa lda px py incy accumulate
        else
            let buf = ArrayPool<float>.Shared.Rent(cols)
            try
                for p in 0 .. cols - 1 do buf.[p] <- x.[xOff + p * incx]
                use px = fixed buf
                gemvKernel64 trans rows cols pa lda px py incy accumulate
            finally
                ArrayPool<float>.Shared.Return(buf)

    // ------------------------------------------------------------------------------------------
    // Narrow products (n <= NarrowMax, op(B) = B): A read in place, B packed per KC block
    // ------------------------------------------------------------------------------------------

    /// Writes the first `w` lanes of v (all when w >= L64, none when w <= 0) to C at cp: C = v or C + v.
    let inline private putNarrow64 (cp: nativeptr<float>) (v: Vector256<float>) (w: int) (overwrite: bool) =
        if w >= L64 then
            Vector256.Store((if overwrite then v else Vector256.Load(cp) + v), cp)
        else
            for j in 0 .. w - 1 do
                let t = v.GetElement j
                NativePtr.set cp j (if overwrite then t else NativePtr.get cp j + t)

    /// C rows r < mr, columns < w (of nv vectors) (+)= the tile's rows (row r at tile + r*3*L64).
    let private narrowStore64 (tile: nativeptr<float>) (nv: int) (c: nativeptr<float>) (ldc: int) (mr: int) (w: int) (overwrite: bool) =
        for r in 0 .. mr - 1 do
            let cp = NativePtr.add c (r * ldc)
            let tp = NativePtr.add tile (r * 3 * L64)
            for v in 0 .. nv - 1 do
                putNarrow64 (NativePtr.add cp (v * L64)) (Vector256.Load(NativePtr.add tp (v * L64))) (w - v * L64) overwrite

    /// The narrow path's tile: C[mr x w] (ldc) = (overwrite ? 0 : C) + sum_p A(r, p) B(p, :) for p < kc, with
    /// A(r, p) at ar + p*aps (rows r >= mr point at row 0 and are not stored) and B(p, :) the nv vectors at
    /// bp + p*L64*nv (packed, zero-padded). Each element's sum over p starts from zero and is the blocked path's
    /// FMA chain, so both paths give the same bits. nv (2 or 3) is a literal after inlining.
    let inline private narrowTile64 (nv: int) (kc: int) (a0: nativeptr<float>) (a1: nativeptr<float>) (a2: nativeptr<float>)
                                    (a3: nativeptr<float>) (aps: int) (bp: nativeptr<float>) (tile: nativeptr<float>) (c: nativeptr<float>)
                                    (ldc: int) (mr: int) (w: int) (overwrite: bool) =
        let z = Vector256<float>.Zero
        let mutable c00 = z
        let mutable c01 = z
        let mutable c02 = z
        let mutable c10 = z
        let mutable c11 = z
        let mutable c12 = z
        let mutable c20 = z
        let mutable c21 = z
        let mutable c22 = z
        let mutable c30 = z
        let mutable c31 = z
        let mutable c32 = z
        let mutable b = bp
        let mutable off = 0
        let mutable p = kc
        while p > 0 do
            let b0 = Vector256.Load(b)
            let b1 = Vector256.Load(NativePtr.add b L64)
            let b2 = if nv > 2 then Vector256.Load(NativePtr.add b (2 * L64)) else z
            let x0 = Vector256.Create(NativePtr.get a0 off)
            c00 <- Vector256.FusedMultiplyAdd(x0, b0, c00)
            c01 <- Vector256.FusedMultiplyAdd(x0, b1, c01)
            if nv > 2 then c02 <- Vector256.FusedMultiplyAdd(x0, b2, c02)
            let x1 = Vector256.Create(NativePtr.get a1 off)
            c10 <- Vector256.FusedMultiplyAdd(x1, b0, c10)
            c11 <- Vector256.FusedMultiplyAdd(x1, b1, c11)
            if nv > 2 then c12 <- Vector256.FusedMultiplyAdd(x1, b2, c12)
            let x2 = Vector256.Create(NativePtr.get a2 off)
            c20 <- Vector256.FusedMultiplyAdd(x2, b0, c20)
            c21 <- Vector256.FusedMultiplyAdd(x2, b1, c21)
            if nv > 2 then c22 <- Vector256.FusedMultiplyAdd(x2, b2, c22)
            let x3 = Vector256.Create(NativePtr.get a3 off)
            c30 <- Vector256.FusedMultiplyAdd(x3, b0, c30)
            c31 <- Vector256.FusedMultiplyAdd(x3, b1, c31)
            if nv > 2 then c32 <- Vector256.FusedMultiplyAdd(x3, b2, c32)
            b <- NativePtr.add b (L64 * nv)
            off <- off + aps
            p <- p - 1
        // through the tile, so that no call follows while the accumulators are live (the JIT would spill them)
        let inline st (row: int) (v0: Vector256<float>) (v1: Vector256<float>) (v2: Vector256<float>) =
            let tp = NativePtr.add tile (row * 3 * L64)
            Vector256.Store(v0, tp)
            Vector256.Store(v1, NativePtr.add tp L64)
            if nv > 2 then Vector256.Store(v2, NativePtr.add tp (2 * L64))
        st 0 c00 c01 c02
        st 1 c10 c11 c12
        st 2 c20 c21 c22
        st 3 c30 c31 c32
        narrowStore64 tile nv c ldc mr w overwrite

    // one method per vector count, so that each keeps its accumulators in registers
    let private narrowTile64v2 kc a0 a1 a2 a3 aps (bp: nativeptr<float>) tile (c: nativeptr<float>) ldc mr w overwrite =
        narrowTile64 2 kc a0 a1 a2 a3 aps bp tile c ldc mr w overwrite
    let private narrowTile64v3 kc a0 a1 a2 a3 aps (bp: nativeptr<float>) tile (c: nativeptr<float>) ldc mr w overwrite =
        narrowTile64 3 kc a0 a1 a2 a3 aps bp tile c ldc mr w overwrite

    /// Rows i0 .. i1 of C for the narrow path (single thread): per KC block, B's kc x n block packed into
    /// panels of 3 vectors (the last one or two of 2 vectors), zero-padded; then per NarrowMR rows of C, every panel.
    let private narrow64 (transA: bool) (n: int) (k: int) (a: float[]) (aOff: int) (lda: int) (b: float[]) (bOff: int) (ldb: int)
                         (c: float[]) (cOff: int) (ldc: int) (accumulate: bool) (i0: int) (i1: int) =
        let struct (p3, p2) = narrowPanels ((n + L64 - 1) / L64)
        let npad = L64 * (3 * p3 + 2 * p2)
        let bufB = ArrayPool<float>.Shared.Rent(KC64 * npad + 8)
        let tile = NativePtr.stackalloc<float> (NarrowMR * 3 * L64)
        try
            use pB0 = fixed bufB
            use pa0 = fixed a
            use pb0 = fixed b
            use pc0 = fixed c
            let pB = align64 pB0
            let pa = NativePtr.add pa0 aOff
            let pb = NativePtr.add pb0 bOff
            let pc = NativePtr.add pc0 cOff
            let aps = if transA then lda else 1
            let ars = if transA then 1 else lda
            let mutable pcb = 0
            while pcb < k do
                let kc = min KC64 (k - pcb)
                let overwrite = (pcb = 0) && not accumulate
                // pack: panel t (width L64*nvT) at pB + kc*j0, row p of it at + p*L64*nvT
                let mutable j0 = 0
                for t in 0 .. p3 + p2 - 1 do
                    let nvT = if t < p3 then 3 else 2
                    let d = NativePtr.add pB (kc * j0)
                    for v in 0 .. nvT - 1 do
                        let j = j0 + L64 * v
                        let valid = n - j
                        let mk = Vector256.LessThan(Vector256<int64>.Indices, Vector256.Create(int64 valid)).AsDouble()
                        let mutable s = NativePtr.add pb (pcb * ldb + j)
                        let mutable dd = NativePtr.add d (L64 * v)
                        for _ in 0 .. kc - 1 do
                            let x =
                                if valid >= L64 then Vector256.Load(s)
                                elif valid > 0 then Avx.MaskLoad(s, mk)
                                else Vector256<float>.Zero
                            Vector256.Store(x, dd)
                            s <- NativePtr.add s ldb
                            dd <- NativePtr.add dd (L64 * nvT)
                    j0 <- j0 + L64 * nvT
                let mutable i = i0
                while i < i1 do
                    let mr = min NarrowMR (i1 - i)
                    let a0 = NativePtr.add pa (i * ars + pcb * aps)
                    let a1 = if mr > 1 then NativePtr.add a0 ars else a0
                    let a2 = if mr > 2 then NativePtr.add a0 (2 * ars) else a0
                    let a3 = if mr > 3 then NativePtr.add a0 (3 * ars) else a0
                    let cp = NativePtr.add pc (i * ldc)
                    let mutable j0 = 0
                    for t in 0 .. p3 + p2 - 1 do
                        let bp = NativePtr.add pB (kc * j0)
                        if t < p3 then narrowTile64v3 kc a0 a1 a2 a3 aps bp tile (NativePtr.add cp j0) ldc mr (n - j0) overwrite
                        else narrowTile64v2 kc a0 a1 a2 a3 aps bp tile (NativePtr.add cp j0) ldc mr (n - j0) overwrite
                        j0 <- j0 + L64 * (if t < p3 then 3 else 2)
                    i <- i + NarrowMR
                pcb <- pcb + KC64
        finally
            ArrayPool<float>.Shared.Return(bufB)

    let private runNarrow64 (maxThreads: int) transA m n k (a: float[]) aOff lda (b: float[]) bOff ldb (c: float[]) cOff ldc accumulate =
        let work = int64 m * int64 n * int64 k
        let units = (m + NarrowMR - 1) / NarrowMR
        let nt = min units (if work >= parallelThreshold then maxThreads else 1)
        if nt <= 1 then narrow64 transA n k a aOff lda b bOff ldb c cOff ldc accumulate 0 m
        else
            Parallel.For(0, nt, fun t ->
                let s = min m ((units * t / nt) * NarrowMR)
                let e = min m ((units * (t + 1) / nt) * NarrowMR)
                if e > s then narrow64 transA n k a aOff lda b bOff ldb c cOff ldc accumulate s e)
            |> ignore

    /// gemmF64 with an explicit upper bound on the number of threads (used by tests to check determinism).
    let internal gemmF64Threads (maxThreads: int) (transA: bool) (transB: bool) (m: int) (n: int) (k: int)
                                (a: float[]) (aOff: int) (lda: int) (b: float[]) (bOff: int) (ldb: int)
                                (c: float[]) (cOff: int) (ldc: int) (accumulate: bool) : unit =
        checkArgs transA transB m n k a.Length aOff lda b.Length bOff ldb c.Length cOff ldc
        if m = 0 || n = 0 then ()
        elif k = 0 then
            if not accumulate then
                for i in 0 .. m - 1 do
                    Array.Fill(c, 0.0, cOff + i * ldc, n)
        elif n <= SkinnyMax && n <= m then
            // One GEMV per column: C(:,j) = op(A) · op(B)(:,j)
            let xInc = if transB then 1 else ldb
            for j in 0 .. n - 1 do
                let xOff = if transB then bOff + j * ldb else bOff + j
                gemv64 transA m k a aOff lda b xOff xInc c (cOff + j) ldc accumulate
        elif m <= SkinnyMax then
            // One GEMV per row: C(i,:) = op(B)^T · op(A)(i,:)^T ; op(B)^T(j,p) = transB ? b[j*ldb + p] : b[p*ldb + j]
            let xInc = if transA then lda else 1
            for i in 0 .. m - 1 do
                let xOff = if transA then aOff + i else aOff + i * lda
                gemv64 (not transB) n k b bOff ldb a xOff xInc c (cOff + i * ldc) 1 accumulate
        elif n <= NarrowMax && not transB && Gemv.supported () then
            runNarrow64 (max 1 maxThreads) transA m n k a aOff lda b bOff ldb c cOff ldc accumulate
        else
            runBlocked64 (max 1 maxThreads) transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate

    /// C[m×n] (+)= op(A)[m×k] · op(B)[k×n]. Row-major. If transA, A is stored as k×m (element (i,p) at a[aOff + p*lda + i]),
    /// else m×k (a[aOff + i*lda + p]). Same for B (transB: stored n×k). C at c[cOff + i*ldc + j].
    /// accumulate=false overwrites C, true adds to it.
    let gemmF64 (transA: bool) (transB: bool) (m: int) (n: int) (k: int) (a: float[]) (aOff: int) (lda: int)
                (b: float[]) (bOff: int) (ldb: int) (c: float[]) (cOff: int) (ldc: int) (accumulate: bool) : unit =
        gemmF64Threads Environment.ProcessorCount transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate

    // ==========================================================================================
    // float32
    // ==========================================================================================

    [<Literal>]
    let private MR32 = 8
    [<Literal>]
    let private NR32 = 48
    /// The AVX2 tile: 6 x 16 (12 accumulators + 2 B vectors + 1 broadcast = 15 of the 16 ymm registers).
    [<Literal>]
    let private MR32x = 6
    [<Literal>]
    let private NR32x = 16
    [<Literal>]
    let private KC32 = 256
    [<Literal>]
    let private MC32 = 96
    /// As NC64: 1024 columns in one block (a multiple of both tiles' NR); 104-105 GFLOP/s of CPU time at 1024^3
    /// on the Zen 4 EPYC against 102-103 with 480.
    [<Literal>]
    let private NC32 = 1056

    /// Packs op(A)[i0 .. i0+mc, p0 .. p0+kc] into MR-row micro-panels: panel r holds, for each p, MR consecutive rows.
    let private packA32 (mrT: int) (transA: bool) (a: nativeptr<float32>) (lda: int) (i0: int) (p0: int) (mc: int) (kc: int) (dst: nativeptr<float32>) =
        let mutable ir = 0
        while ir < mc do
            let mr = min mrT (mc - ir)
            let d = NativePtr.add dst (ir * kc)
            if transA then
                // op(A)(i,p) = a[p*lda + i]
                let s0 = NativePtr.add a (p0 * lda + i0 + ir)
                if mr = MR32 && mrT = MR32 then
                    for p in 0 .. kc - 1 do
                        Vector256.Store(Vector256.Load(NativePtr.add s0 (p * lda)), NativePtr.add d (p * mrT))
                elif mr = MR32x && mrT = MR32x then
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * lda)
                        let dd = NativePtr.add d (p * MR32x)
                        Vector128.Store(Vector128.Load(s), dd)
                        NativePtr.set dd 4 (NativePtr.get s 4)
                        NativePtr.set dd 5 (NativePtr.get s 5)
                elif mrT = MR32 && useIsaPaths && Avx.IsSupported then
                    let mk = Vector256.LessThan(Vector256<int32>.Indices, Vector256.Create(mr)).AsSingle()
                    for p in 0 .. kc - 1 do
                        Vector256.Store(Avx.MaskLoad(NativePtr.add s0 (p * lda), mk), NativePtr.add d (p * mrT))
                else
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * lda)
                        let dd = NativePtr.add d (p * mrT)
                        for r in 0 .. mrT - 1 do
                            NativePtr.set dd r (if r < mr then NativePtr.get s r else 0.0f)
            elif mr = MR32 && mrT = MR32 && useIsaPaths && Avx.IsSupported then
                // op(A)(i,p) = a[i*lda + p]: 8x8 register transposes
                let s0 = NativePtr.add a ((i0 + ir) * lda + p0)
                let mutable p = 0
                while p + 8 <= kc do
                    transpose8x8F32 (NativePtr.add s0 p) lda (NativePtr.add d (p * mrT)) MR32
                    p <- p + 8
                while p < kc do
                    for r in 0 .. MR32 - 1 do
                        NativePtr.set d (p * mrT + r) (NativePtr.get s0 (r * lda + p))
                    p <- p + 1
            elif mr = MR32x && mrT = MR32x && useIsaPaths && Avx.IsSupported then
                // op(A)(i,p) = a[i*lda + p], 6 rows: 6x8 register transposes; each stores 8 lanes per p (2 of them
                // junk that the next p's store overwrites), so the last block of 8 is left to the scalar loop
                let s0 = NativePtr.add a ((i0 + ir) * lda + p0)
                let mutable p = 0
                while p + 8 < kc do
                    transpose6x8F32 (NativePtr.add s0 p) lda (NativePtr.add d (p * MR32x))
                    p <- p + 8
                while p < kc do
                    for r in 0 .. MR32x - 1 do
                        NativePtr.set d (p * MR32x + r) (NativePtr.get s0 (r * lda + p))
                    p <- p + 1
            else
                // op(A)(i,p) = a[i*lda + p]
                for r in 0 .. mrT - 1 do
                    if r < mr then
                        let s = NativePtr.add a ((i0 + ir + r) * lda + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * mrT + r) (NativePtr.get s p)
                    else
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * mrT + r) 0.0f
            ir <- ir + mrT

    /// Packs op(B)[p0 .. p0+kc, j0 .. j0+nc] into NR-column micro-panels: panel holds, for each p, NR consecutive columns.
    let private packB32 (nrT: int) (transB: bool) (b: nativeptr<float32>) (ldb: int) (p0: int) (j0: int) (kc: int) (nc: int) (dst: nativeptr<float32>) =
        let mutable jr = 0
        while jr < nc do
            let nr = min nrT (nc - jr)
            let d = NativePtr.add dst (jr * kc)
            if not transB then
                // op(B)(p,j) = b[p*ldb + j]
                let s0 = NativePtr.add b (p0 * ldb + j0 + jr)
                if nr = NR32 && nrT = NR32 then
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * NR32)
                        Vector512.Store(Vector512.Load(s), dd)
                        Vector512.Store(Vector512.Load(NativePtr.add s 16), NativePtr.add dd 16)
                        Vector512.Store(Vector512.Load(NativePtr.add s 32), NativePtr.add dd 32)
                elif nr = nrT then
                    // a full AVX2-sized panel row: whole vectors
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * nrT)
                        let mutable jj = 0
                        while jj < nrT do
                            Vector256.Store(Vector256.Load(NativePtr.add s jj), NativePtr.add dd jj)
                            jj <- jj + Vector256<float32>.Count
                elif nrT = NR32 && useIsaPaths && Avx512F.IsSupported then
                    // masked loads (no reads past column nr), zero padding
                    let idx = Vector512<int32>.Indices
                    let z = Vector512<float32>.Zero
                    let m0 = Vector512.LessThan(idx, Vector512.Create(int32 nr)).AsSingle()
                    let m1 = Vector512.LessThan(idx, Vector512.Create(int32 (nr - 16))).AsSingle()
                    let m2 = Vector512.LessThan(idx, Vector512.Create(int32 (nr - 2 * 16))).AsSingle()
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * NR32)
                        Vector512.Store(Avx512F.MaskLoad(s, m0, z), dd)
                        Vector512.Store(Avx512F.MaskLoad(NativePtr.add s 16, m1, z), NativePtr.add dd 16)
                        Vector512.Store(Avx512F.MaskLoad(NativePtr.add s (2 * 16), m2, z), NativePtr.add dd (2 * 16))
                else
                    for p in 0 .. kc - 1 do
                        let s = NativePtr.add s0 (p * ldb)
                        let dd = NativePtr.add d (p * nrT)
                        for jj in 0 .. nrT - 1 do
                            NativePtr.set dd jj (if jj < nr then NativePtr.get s jj else 0.0f)
            elif nr = nrT && useIsaPaths && Avx.IsSupported then
                // op(B)(p,j) = b[j*ldb + p]: 8x8 register transposes, nrT/8 groups of columns
                let mutable p = 0
                while p + 8 <= kc do
                    for g in 0 .. nrT / 8 - 1 do
                        transpose8x8F32 (NativePtr.add b ((j0 + jr + 8 * g) * ldb + p0 + p)) ldb (NativePtr.add d (p * nrT + 8 * g)) nrT
                    p <- p + 8
                while p < kc do
                    for jj in 0 .. nrT - 1 do
                        NativePtr.set d (p * nrT + jj) (NativePtr.get b ((j0 + jr + jj) * ldb + p0 + p))
                    p <- p + 1
            else
                // op(B)(p,j) = b[j*ldb + p]
                for jj in 0 .. nrT - 1 do
                    if jj < nr then
                        let s = NativePtr.add b ((j0 + jr + jj) * ldb + p0)
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * nrT + jj) (NativePtr.get s p)
                    else
                        for p in 0 .. kc - 1 do
                            NativePtr.set d (p * nrT + jj) 0.0f
            jr <- jr + nrT

    /// 8 x 48 micro-kernel: C[8x48] (ldc) = (overwrite ? 0 : C) + sum_p pa[p,:]^T pb[p,:].
    /// The sum over p always starts from zero and C is added once at the end, so the rounding of each
    /// element does not depend on where the tile sits.
    let private kernel32 (kc: int) (pa: nativeptr<float32>) (pb: nativeptr<float32>) (c: nativeptr<float32>) (ldc: int) (overwrite: bool) =
        if Sse.IsSupported then
            // Software-prefetch the C tile (its rows are ldc apart, which the hardware prefetcher does not follow);
            // the latency is hidden behind the kc-long FMA loop.
            let mutable cr = c
            for _ in 0 .. MR32 - 1 do
                Sse.Prefetch0(NativePtr.toVoidPtr cr)
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr 16))
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (2 * 16)))
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (3 * 16 - 1)))
                cr <- NativePtr.add cr ldc
        let mutable c00 = Vector512<float32>.Zero
        let mutable c01 = Vector512<float32>.Zero
        let mutable c02 = Vector512<float32>.Zero
        let mutable c10 = Vector512<float32>.Zero
        let mutable c11 = Vector512<float32>.Zero
        let mutable c12 = Vector512<float32>.Zero
        let mutable c20 = Vector512<float32>.Zero
        let mutable c21 = Vector512<float32>.Zero
        let mutable c22 = Vector512<float32>.Zero
        let mutable c30 = Vector512<float32>.Zero
        let mutable c31 = Vector512<float32>.Zero
        let mutable c32 = Vector512<float32>.Zero
        let mutable c40 = Vector512<float32>.Zero
        let mutable c41 = Vector512<float32>.Zero
        let mutable c42 = Vector512<float32>.Zero
        let mutable c50 = Vector512<float32>.Zero
        let mutable c51 = Vector512<float32>.Zero
        let mutable c52 = Vector512<float32>.Zero
        let mutable c60 = Vector512<float32>.Zero
        let mutable c61 = Vector512<float32>.Zero
        let mutable c62 = Vector512<float32>.Zero
        let mutable c70 = Vector512<float32>.Zero
        let mutable c71 = Vector512<float32>.Zero
        let mutable c72 = Vector512<float32>.Zero
        let mutable a = pa
        let mutable b = pb
        let mutable p = kc
        while p > 0 do
            let b0 = Vector512.Load(b)
            let b1 = Vector512.Load(NativePtr.add b 16)
            let b2 = Vector512.Load(NativePtr.add b 32)
            let a0 = Vector512.Create(NativePtr.get a 0)
            c00 <- Vector512.FusedMultiplyAdd(a0, b0, c00)
            c01 <- Vector512.FusedMultiplyAdd(a0, b1, c01)
            c02 <- Vector512.FusedMultiplyAdd(a0, b2, c02)
            let a1 = Vector512.Create(NativePtr.get a 1)
            c10 <- Vector512.FusedMultiplyAdd(a1, b0, c10)
            c11 <- Vector512.FusedMultiplyAdd(a1, b1, c11)
            c12 <- Vector512.FusedMultiplyAdd(a1, b2, c12)
            let a2 = Vector512.Create(NativePtr.get a 2)
            c20 <- Vector512.FusedMultiplyAdd(a2, b0, c20)
            c21 <- Vector512.FusedMultiplyAdd(a2, b1, c21)
            c22 <- Vector512.FusedMultiplyAdd(a2, b2, c22)
            let a3 = Vector512.Create(NativePtr.get a 3)
            c30 <- Vector512.FusedMultiplyAdd(a3, b0, c30)
            c31 <- Vector512.FusedMultiplyAdd(a3, b1, c31)
            c32 <- Vector512.FusedMultiplyAdd(a3, b2, c32)
            let a4 = Vector512.Create(NativePtr.get a 4)
            c40 <- Vector512.FusedMultiplyAdd(a4, b0, c40)
            c41 <- Vector512.FusedMultiplyAdd(a4, b1, c41)
            c42 <- Vector512.FusedMultiplyAdd(a4, b2, c42)
            let a5 = Vector512.Create(NativePtr.get a 5)
            c50 <- Vector512.FusedMultiplyAdd(a5, b0, c50)
            c51 <- Vector512.FusedMultiplyAdd(a5, b1, c51)
            c52 <- Vector512.FusedMultiplyAdd(a5, b2, c52)
            let a6 = Vector512.Create(NativePtr.get a 6)
            c60 <- Vector512.FusedMultiplyAdd(a6, b0, c60)
            c61 <- Vector512.FusedMultiplyAdd(a6, b1, c61)
            c62 <- Vector512.FusedMultiplyAdd(a6, b2, c62)
            let a7 = Vector512.Create(NativePtr.get a 7)
            c70 <- Vector512.FusedMultiplyAdd(a7, b0, c70)
            c71 <- Vector512.FusedMultiplyAdd(a7, b1, c71)
            c72 <- Vector512.FusedMultiplyAdd(a7, b2, c72)
            a <- NativePtr.add a MR32
            b <- NativePtr.add b NR32
            p <- p - 1
        let inline st (row: int) (v0: Vector512<float32>) (v1: Vector512<float32>) (v2: Vector512<float32>) =
            let cp = NativePtr.add c (row * ldc)
            if overwrite then
                Vector512.Store(v0, cp)
                Vector512.Store(v1, NativePtr.add cp 16)
                Vector512.Store(v2, NativePtr.add cp 32)
            else
                Vector512.Store(Vector512.Load(cp) + v0, cp)
                Vector512.Store(Vector512.Load(NativePtr.add cp 16) + v1, NativePtr.add cp 16)
                Vector512.Store(Vector512.Load(NativePtr.add cp 32) + v2, NativePtr.add cp 32)
        st 0 c00 c01 c02
        st 1 c10 c11 c12
        st 2 c20 c21 c22
        st 3 c30 c31 c32
        st 4 c40 c41 c42
        st 5 c50 c51 c52
        st 6 c60 c61 c62
        st 7 c70 c71 c72

    /// AVX2 6 x 16 micro-kernel, the same contract as the AVX-512 one: C[6x16] (ldc) = (overwrite ? 0 : C) +
    /// sum_p pa[p,:]^T pb[p,:], the sum over p from zero (each element's rounding is the same FMA chain whichever
    /// kernel or tile computes it).
    let private kernel32x (kc: int) (pa: nativeptr<float32>) (pb: nativeptr<float32>) (c: nativeptr<float32>) (ldc: int) (overwrite: bool) =
        if Sse.IsSupported then
            let mutable cr = c
            for _ in 0 .. MR32x - 1 do
                Sse.Prefetch0(NativePtr.toVoidPtr cr)
                Sse.Prefetch0(NativePtr.toVoidPtr (NativePtr.add cr (NR32x - 1)))
                cr <- NativePtr.add cr ldc
        let mutable c00 = Vector256<float32>.Zero
        let mutable c01 = Vector256<float32>.Zero
        let mutable c10 = Vector256<float32>.Zero
        let mutable c11 = Vector256<float32>.Zero
        let mutable c20 = Vector256<float32>.Zero
        let mutable c21 = Vector256<float32>.Zero
        let mutable c30 = Vector256<float32>.Zero
        let mutable c31 = Vector256<float32>.Zero
        let mutable c40 = Vector256<float32>.Zero
        let mutable c41 = Vector256<float32>.Zero
        let mutable c50 = Vector256<float32>.Zero
        let mutable c51 = Vector256<float32>.Zero
        let mutable a = pa
        let mutable b = pb
        let mutable p = kc
        while p > 0 do
            let b0 = Vector256.Load(b)
            let b1 = Vector256.Load(NativePtr.add b 8)
            let a0 = Vector256.Create(NativePtr.get a 0)
            c00 <- Vector256.FusedMultiplyAdd(a0, b0, c00)
            c01 <- Vector256.FusedMultiplyAdd(a0, b1, c01)
            let a1 = Vector256.Create(NativePtr.get a 1)
            c10 <- Vector256.FusedMultiplyAdd(a1, b0, c10)
            c11 <- Vector256.FusedMultiplyAdd(a1, b1, c11)
            let a2 = Vector256.Create(NativePtr.get a 2)
            c20 <- Vector256.FusedMultiplyAdd(a2, b0, c20)
            c21 <- Vector256.FusedMultiplyAdd(a2, b1, c21)
            let a3 = Vector256.Create(NativePtr.get a 3)
            c30 <- Vector256.FusedMultiplyAdd(a3, b0, c30)
            c31 <- Vector256.FusedMultiplyAdd(a3, b1, c31)
            let a4 = Vector256.Create(NativePtr.get a 4)
            c40 <- Vector256.FusedMultiplyAdd(a4, b0, c40)
            c41 <- Vector256.FusedMultiplyAdd(a4, b1, c41)
            let a5 = Vector256.Create(NativePtr.get a 5)
            c50 <- Vector256.FusedMultiplyAdd(a5, b0, c50)
            c51 <- Vector256.FusedMultiplyAdd(a5, b1, c51)
            a <- NativePtr.add a MR32x
            b <- NativePtr.add b NR32x
            p <- p - 1
        let inline st (row: int) (v0: Vector256<float32>) (v1: Vector256<float32>) =
            let cp = NativePtr.add c (row * ldc)
            if overwrite then
                Vector256.Store(v0, cp)
                Vector256.Store(v1, NativePtr.add cp 8)
            else
                Vector256.Store(Vector256.Load(cp) + v0, cp)
                Vector256.Store(Vector256.Load(NativePtr.add cp 8) + v1, NativePtr.add cp 8)
        st 0 c00 c01
        st 1 c10 c11
        st 2 c20 c21
        st 3 c30 c31
        st 4 c40 c41
        st 5 c50 c51

    /// Computes C[i0..i1, j0..j1] with the packed blocked algorithm (single thread).
    let private blocked32 (transA: bool) (transB: bool) (k: int)
                          (a: float32[]) (aOff: int) (lda: int) (b: float32[]) (bOff: int) (ldb: int)
                          (c: float32[]) (cOff: int) (ldc: int) (accumulate: bool)
                          (i0: int) (i1: int) (j0: int) (j1: int) =
        // AVX-512: the 8 x 48 kernel; otherwise the AVX2 6 x 16 one (also the portable path without AVX).
        let wide = useIsaPaths && Avx512F.IsSupported
        let mrT = if wide then MR32 else MR32x
        let nrT = if wide then NR32 else NR32x
        let bufA = ArrayPool<float32>.Shared.Rent(MC32 * KC32 + 8)
        let bufB = ArrayPool<float32>.Shared.Rent(KC32 * NC32 + 8)
        let tile = NativePtr.stackalloc<float32> (MR32 * NR32)
        try
            use pA0 = fixed bufA
            use pB0 = fixed bufB
            use pa0 = fixed a
            use pb0 = fixed b
            use pc0 = fixed c
            let pA = align64 pA0
            let pB = align64 pB0
            let pa = NativePtr.add pa0 aOff
            let pb = NativePtr.add pb0 bOff
            let pc = NativePtr.add pc0 cOff
            let mutable jc = j0
            while jc < j1 do
                let nc = min NC32 (j1 - jc)
                let mutable pcb = 0
                while pcb < k do
                    let kc = min KC32 (k - pcb)
                    let overwrite = (pcb = 0) && not accumulate
                    packB32 nrT transB pb ldb pcb jc kc nc pB
                    let mutable ic = i0
                    while ic < i1 do
                        let mc = min MC32 (i1 - ic)
                        packA32 mrT transA pa lda ic pcb mc kc pA
                        let mutable ir = 0
                        while ir < mc do
                            let mr = min mrT (mc - ir)
                            let ap = NativePtr.add pA (ir * kc)
                            let mutable jr = 0
                            while jr < nc do
                                let nr = min nrT (nc - jr)
                                let bp = NativePtr.add pB (jr * kc)
                                let cp = NativePtr.add pc ((ic + ir) * ldc + jc + jr)
                                if mr = mrT && nr = nrT then
                                    if wide then kernel32 kc ap bp cp ldc overwrite else kernel32x kc ap bp cp ldc overwrite
                                else
                                    if wide then kernel32 kc ap bp tile nrT true else kernel32x kc ap bp tile nrT true
                                    for r in 0 .. mr - 1 do
                                        let crow = NativePtr.add cp (r * ldc)
                                        let trow = NativePtr.add tile (r * nrT)
                                        for j in 0 .. nr - 1 do
                                            let t = NativePtr.get trow j
                                            NativePtr.set crow j (if overwrite then t else NativePtr.get crow j + t)
                                jr <- jr + nrT
                            ir <- ir + mrT
                        ic <- ic + MC32
                    pcb <- pcb + KC32
                jc <- jc + NC32
        finally
            ArrayPool<float32>.Shared.Return(bufA)
            ArrayPool<float32>.Shared.Return(bufB)

    /// The packed blocked path whatever the shape (the tests compare the narrow path with it).
    let internal runBlocked32 (maxThreads: int) transA transB m n k (a: float32[]) aOff lda (b: float32[]) bOff ldb (c: float32[]) cOff ldc accumulate =
        let work = int64 m * int64 n * int64 k
        let nt = if work >= parallelThreshold then maxThreads else 1
        // Partition the dimension that has more micro-tile units (finer granularity => better balance).
        let mrT, nrT = if useIsaPaths && Avx512F.IsSupported then MR32, NR32 else MR32x, NR32x
        let splitCols = (n + nrT - 1) / nrT > (m + mrT - 1) / mrT
        let unit = if splitCols then nrT else mrT
        let len = if splitCols then n else m
        let units = (len + unit - 1) / unit
        let nt = min nt units
        if nt <= 1 then
            blocked32 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate 0 m 0 n
        else
            Parallel.For(0, nt, fun t ->
                let s = min len ((units * t / nt) * unit)
                let e = min len ((units * (t + 1) / nt) * unit)
                if e > s then
                    if splitCols then blocked32 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate 0 m s e
                    else blocked32 transA transB k a aOff lda b bOff ldb c cOff ldc accumulate s e 0 n)
            |> ignore

    /// Horizontal sums of four Vector128<float32>: result lane r = sum of v_r.
    let inline private hsum4x32 (t0: Vector128<float32>) (t1: Vector128<float32>) (t2: Vector128<float32>) (t3: Vector128<float32>) =
        if Sse3.IsSupported then
            Sse3.HorizontalAdd(Sse3.HorizontalAdd(t0, t1), Sse3.HorizontalAdd(t2, t3))
        else
            Vector128.Create(Vector128.Sum t0, Vector128.Sum t1, Vector128.Sum t2, Vector128.Sum t3)

    let inline private writeY32 (y: nativeptr<float32>) (incy: int) (i: int) (v: float32) (accumulate: bool) =
        let yp = NativePtr.add y (i * incy)
        NativePtr.write yp (if accumulate then NativePtr.read yp + v else v)

    /// y[i*incy] (+)= sum_p a[i*lda + p] * x[p], i < rows, p < cols (x contiguous).
    let private gemvN32 (rows: int) (cols: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>) (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i + 4 <= rows do
            let r0 = NativePtr.add a (i * lda)
            let r1 = NativePtr.add r0 lda
            let r2 = NativePtr.add r1 lda
            let r3 = NativePtr.add r2 lda
            let mutable s0 = Vector512<float32>.Zero
            let mutable s1 = Vector512<float32>.Zero
            let mutable s2 = Vector512<float32>.Zero
            let mutable s3 = Vector512<float32>.Zero
            let mutable p = 0
            while p + 16 <= cols do
                let xv = Vector512.Load(NativePtr.add x p)
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r0 p), xv, s0)
                s1 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r1 p), xv, s1)
                s2 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r2 p), xv, s2)
                s3 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r3 p), xv, s3)
                p <- p + 16
            let mutable t0 = s0.GetLower() + s0.GetUpper()
            let mutable t1 = s1.GetLower() + s1.GetUpper()
            let mutable t2 = s2.GetLower() + s2.GetUpper()
            let mutable t3 = s3.GetLower() + s3.GetUpper()
            if p + 8 <= cols then
                let xv = Vector256.Load(NativePtr.add x p)
                t0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), xv, t0)
                t1 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r1 p), xv, t1)
                t2 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r2 p), xv, t2)
                t3 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r3 p), xv, t3)
                p <- p + 8
            let mutable u0 = t0.GetLower() + t0.GetUpper()
            let mutable u1 = t1.GetLower() + t1.GetUpper()
            let mutable u2 = t2.GetLower() + t2.GetUpper()
            let mutable u3 = t3.GetLower() + t3.GetUpper()
            if p + 4 <= cols then
                let xv = Vector128.Load(NativePtr.add x p)
                u0 <- Vector128.FusedMultiplyAdd(Vector128.Load(NativePtr.add r0 p), xv, u0)
                u1 <- Vector128.FusedMultiplyAdd(Vector128.Load(NativePtr.add r1 p), xv, u1)
                u2 <- Vector128.FusedMultiplyAdd(Vector128.Load(NativePtr.add r2 p), xv, u2)
                u3 <- Vector128.FusedMultiplyAdd(Vector128.Load(NativePtr.add r3 p), xv, u3)
                p <- p + 4
            let mutable sums = hsum4x32 u0 u1 u2 u3
            while p < cols do
                let av = Vector128.Create(NativePtr.get r0 p, NativePtr.get r1 p, NativePtr.get r2 p, NativePtr.get r3 p)
                sums <- Vector128.FusedMultiplyAdd(av, Vector128.Create(NativePtr.get x p), sums)
                p <- p + 1
            if incy = 1 then
                let yp = NativePtr.add y i
                Vector128.Store((if accumulate then Vector128.Load(yp) + sums else sums), yp)
            else
                writeY32 y incy i (sums.GetElement 0) accumulate
                writeY32 y incy (i + 1) (sums.GetElement 1) accumulate
                writeY32 y incy (i + 2) (sums.GetElement 2) accumulate
                writeY32 y incy (i + 3) (sums.GetElement 3) accumulate
            i <- i + 4
        while i < rows do
            let r0 = NativePtr.add a (i * lda)
            let mutable s0 = Vector512<float32>.Zero
            let mutable p = 0
            while p + 16 <= cols do
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add r0 p), Vector512.Load(NativePtr.add x p), s0)
                p <- p + 16
            let mutable t0 = s0.GetLower() + s0.GetUpper()
            if p + 8 <= cols then
                t0 <- Vector256.FusedMultiplyAdd(Vector256.Load(NativePtr.add r0 p), Vector256.Load(NativePtr.add x p), t0)
                p <- p + 8
            let mutable s = Vector256.Sum t0
            while p < cols do
                s <- MathF.FusedMultiplyAdd(NativePtr.get r0 p, NativePtr.get x p, s)
                p <- p + 1
            writeY32 y incy i s accumulate
            i <- i + 1

    let inline private storeY512x32 (y: nativeptr<float32>) (incy: int) (i: int) (v: Vector512<float32>) (accumulate: bool) =
        if incy = 1 then
            let yp = NativePtr.add y i
            Vector512.Store((if accumulate then Vector512.Load(yp) + v else v), yp)
        else
            writeY32 y incy (i + 0) (v.GetElement 0) accumulate
            writeY32 y incy (i + 1) (v.GetElement 1) accumulate
            writeY32 y incy (i + 2) (v.GetElement 2) accumulate
            writeY32 y incy (i + 3) (v.GetElement 3) accumulate
            writeY32 y incy (i + 4) (v.GetElement 4) accumulate
            writeY32 y incy (i + 5) (v.GetElement 5) accumulate
            writeY32 y incy (i + 6) (v.GetElement 6) accumulate
            writeY32 y incy (i + 7) (v.GetElement 7) accumulate
            writeY32 y incy (i + 8) (v.GetElement 8) accumulate
            writeY32 y incy (i + 9) (v.GetElement 9) accumulate
            writeY32 y incy (i + 10) (v.GetElement 10) accumulate
            writeY32 y incy (i + 11) (v.GetElement 11) accumulate
            writeY32 y incy (i + 12) (v.GetElement 12) accumulate
            writeY32 y incy (i + 13) (v.GetElement 13) accumulate
            writeY32 y incy (i + 14) (v.GetElement 14) accumulate
            writeY32 y incy (i + 15) (v.GetElement 15) accumulate

    /// y[i*incy] (+)= sum_p a[p*lda + i] * x[p], i < m (outputs), p < k (x contiguous).
    let private gemvT32 (m: int) (k: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>) (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let mutable i = 0
        while i + 32 <= m do
            let mutable s00 = Vector512<float32>.Zero
            let mutable s01 = Vector512<float32>.Zero
            let mutable s10 = Vector512<float32>.Zero
            let mutable s11 = Vector512<float32>.Zero
            let mutable s20 = Vector512<float32>.Zero
            let mutable s21 = Vector512<float32>.Zero
            let mutable s30 = Vector512<float32>.Zero
            let mutable s31 = Vector512<float32>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let x0 = Vector512.Create(NativePtr.get x p)
                let x1 = Vector512.Create(NativePtr.get x (p + 1))
                let x2 = Vector512.Create(NativePtr.get x (p + 2))
                let x3 = Vector512.Create(NativePtr.get x (p + 3))
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s00 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add ap 16), x0, s01)
                s10 <- Vector512.FusedMultiplyAdd(Vector512.Load(a1), x1, s10)
                s11 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a1 16), x1, s11)
                s20 <- Vector512.FusedMultiplyAdd(Vector512.Load(a2), x2, s20)
                s21 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a2 16), x2, s21)
                s30 <- Vector512.FusedMultiplyAdd(Vector512.Load(a3), x3, s30)
                s31 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add a3 16), x3, s31)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                let x0 = Vector512.Create(NativePtr.get x p)
                s00 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Vector512.Load(NativePtr.add ap 16), x0, s01)
                ap <- NativePtr.add ap lda
                p <- p + 1
            storeY512x32 y incy i ((s00 + s10) + (s20 + s30)) accumulate
            storeY512x32 y incy (i + 16) ((s01 + s11) + (s21 + s31)) accumulate
            i <- i + 32
        if i + 16 <= m then
            let mutable s0 = Vector512<float32>.Zero
            let mutable s1 = Vector512<float32>.Zero
            let mutable s2 = Vector512<float32>.Zero
            let mutable s3 = Vector512<float32>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), Vector512.Create(NativePtr.get x p), s0)
                s1 <- Vector512.FusedMultiplyAdd(Vector512.Load(a1), Vector512.Create(NativePtr.get x (p + 1)), s1)
                s2 <- Vector512.FusedMultiplyAdd(Vector512.Load(a2), Vector512.Create(NativePtr.get x (p + 2)), s2)
                s3 <- Vector512.FusedMultiplyAdd(Vector512.Load(a3), Vector512.Create(NativePtr.get x (p + 3)), s3)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                s0 <- Vector512.FusedMultiplyAdd(Vector512.Load(ap), Vector512.Create(NativePtr.get x p), s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            storeY512x32 y incy i ((s0 + s1) + (s2 + s3)) accumulate
            i <- i + 16
        if i + 8 <= m then
            let mutable s0 = Vector256<float32>.Zero
            let mutable s1 = Vector256<float32>.Zero
            let mutable s2 = Vector256<float32>.Zero
            let mutable s3 = Vector256<float32>.Zero
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(ap), Vector256.Create(NativePtr.get x p), s0)
                s1 <- Vector256.FusedMultiplyAdd(Vector256.Load(a1), Vector256.Create(NativePtr.get x (p + 1)), s1)
                s2 <- Vector256.FusedMultiplyAdd(Vector256.Load(a2), Vector256.Create(NativePtr.get x (p + 2)), s2)
                s3 <- Vector256.FusedMultiplyAdd(Vector256.Load(a3), Vector256.Create(NativePtr.get x (p + 3)), s3)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                s0 <- Vector256.FusedMultiplyAdd(Vector256.Load(ap), Vector256.Create(NativePtr.get x p), s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            let v = (s0 + s1) + (s2 + s3)
            if incy = 1 then
                let yp = NativePtr.add y i
                Vector256.Store((if accumulate then Vector256.Load(yp) + v else v), yp)
            else
                writeY32 y incy (i + 0) (v.GetElement 0) accumulate
                writeY32 y incy (i + 1) (v.GetElement 1) accumulate
                writeY32 y incy (i + 2) (v.GetElement 2) accumulate
                writeY32 y incy (i + 3) (v.GetElement 3) accumulate
                writeY32 y incy (i + 4) (v.GetElement 4) accumulate
                writeY32 y incy (i + 5) (v.GetElement 5) accumulate
                writeY32 y incy (i + 6) (v.GetElement 6) accumulate
                writeY32 y incy (i + 7) (v.GetElement 7) accumulate
            i <- i + 8
        while i < m do
            let mutable s0 = 0.0f
            let mutable s1 = 0.0f
            let mutable s2 = 0.0f
            let mutable s3 = 0.0f
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                s0 <- MathF.FusedMultiplyAdd(NativePtr.read ap, NativePtr.get x p, s0)
                s1 <- MathF.FusedMultiplyAdd(NativePtr.get ap lda, NativePtr.get x (p + 1), s1)
                s2 <- MathF.FusedMultiplyAdd(NativePtr.get ap (2 * lda), NativePtr.get x (p + 2), s2)
                s3 <- MathF.FusedMultiplyAdd(NativePtr.get ap (3 * lda), NativePtr.get x (p + 3), s3)
                ap <- NativePtr.add ap (4 * lda)
                p <- p + 4
            while p < k do
                s0 <- MathF.FusedMultiplyAdd(NativePtr.read ap, NativePtr.get x p, s0)
                ap <- NativePtr.add ap lda
                p <- p + 1
            writeY32 y incy i ((s0 + s1) + (s2 + s3)) accumulate
            i <- i + 1

    /// AVX-512 variant of gemvT: one pass over `a` per block of up to 3 vectors of outputs (masked tails),
    /// 4-way unrolled over p so that 12 independent FMA chains are in flight.
    let private gemvTMasked32 (m: int) (k: int) (a: nativeptr<float32>) (lda: int) (x: nativeptr<float32>) (y: nativeptr<float32>) (incy: int) (accumulate: bool) =
        let idx = Vector512<int32>.Indices
        let z = Vector512<float32>.Zero
        let tmp = NativePtr.stackalloc<float32> (3 * 16)
        let mutable i = 0
        while i < m do
            let w = min (3 * 16) (m - i)
            let m0 = Vector512.LessThan(idx, Vector512.Create(int32 w)).AsSingle()
            let m1 = Vector512.LessThan(idx, Vector512.Create(int32 (w - 16))).AsSingle()
            let m2 = Vector512.LessThan(idx, Vector512.Create(int32 (w - 2 * 16))).AsSingle()
            let mutable s00 = z
            let mutable s01 = z
            let mutable s02 = z
            let mutable s10 = z
            let mutable s11 = z
            let mutable s12 = z
            let mutable s20 = z
            let mutable s21 = z
            let mutable s22 = z
            let mutable s30 = z
            let mutable s31 = z
            let mutable s32 = z
            let mutable ap = NativePtr.add a i
            let mutable p = 0
            while p + 4 <= k do
                let x0 = Vector512.Create(NativePtr.get x p)
                let x1 = Vector512.Create(NativePtr.get x (p + 1))
                let x2 = Vector512.Create(NativePtr.get x (p + 2))
                let x3 = Vector512.Create(NativePtr.get x (p + 3))
                let a1 = NativePtr.add ap lda
                let a2 = NativePtr.add a1 lda
                let a3 = NativePtr.add a2 lda
                s00 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(ap, m0, z), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap 16, m1, z), x0, s01)
                s02 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap (2 * 16), m2, z), x0, s02)
                s10 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a1, m0, z), x1, s10)
                s11 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a1 16, m1, z), x1, s11)
                s12 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a1 (2 * 16), m2, z), x1, s12)
                s20 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a2, m0, z), x2, s20)
                s21 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a2 16, m1, z), x2, s21)
                s22 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a2 (2 * 16), m2, z), x2, s22)
                s30 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(a3, m0, z), x3, s30)
                s31 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a3 16, m1, z), x3, s31)
                s32 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add a3 (2 * 16), m2, z), x3, s32)
                ap <- NativePtr.add a3 lda
                p <- p + 4
            while p < k do
                let x0 = Vector512.Create(NativePtr.get x p)
                s00 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(ap, m0, z), x0, s00)
                s01 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap 16, m1, z), x0, s01)
                s02 <- Vector512.FusedMultiplyAdd(Avx512F.MaskLoad(NativePtr.add ap (2 * 16), m2, z), x0, s02)
                ap <- NativePtr.add ap lda
                p <- p + 1
            let v0 = (s00 + s10) + (s20 + s30)
            let v1 = (s01 + s11) + (s21 + s31)
            let v2 = (s02 + s12) + (s22 + s32)
            if w = 3 * 16 && incy = 1 then
                storeY512x32 y 1 i v0 accumulate
                storeY512x32 y 1 (i + 16) v1 accumulate
                storeY512x32 y 1 (i + 2 * 16) v2 accumulate
            else
                Vector512.Store(v0, tmp)
                Vector512.Store(v1, NativePtr.add tmp 16)
                Vector512.Store(v2, NativePtr.add tmp (2 * 16))
                for l in 0 .. w - 1 do writeY32 y incy (i + l) (NativePtr.get tmp l) accumulate
            i <- i + 3 * 16

    /// gemvKernel64 for float32.
    let private gemvKernel32 (trans: bool) (rows: int) (cols: int) (pa: nativeptr<float32>) (lda: int) (px: nativeptr<float32>) (py: nativeptr<float32>) (incy: int) (accumulate: bool) =
        if useIsaPaths && Avx512F.IsSupported then
            (if trans then gemvTMasked32 else gemvN32) rows cols pa lda px py incy accumulate
        elif Gemv.supported () then
            (if trans then Gemv.gemvT32 else Gemv.gemvN32) rows cols pa lda px py incy accumulate
        else (if trans then gemvT32 else gemvN32) rows cols pa lda px py incy accumulate

    /// y (+)= M x where M(i,p) = trans ? a[aOff + p*lda + i] : a[aOff + i*lda + p]; x(p) = x[xOff + p*incx]; y(i) = y[yOff + i*incy].
    let private gemv32 (trans: bool) (rows: int) (cols: int) (a: float32[]) (aOff: int) (lda: int)
                       (x: float32[]) (xOff: int) (incx: int) (y: float32[]) (yOff: int) (incy: int) (accumulate: bool) =
        use pa0 = fixed a
        use px0 = fixed x
        use py0 = fixed y
        let pa = NativePtr.add pa0 aOff
        let py = NativePtr.add py0 yOff
        if incx = 1 then
            let px = NativePtr.add px0 xOff
            gemvKernel32 trans rows cols pa lda px py incy accumulate
        else
            let buf = ArrayPool<float32>.Shared.Rent(cols)
            try
                for p in 0 .. cols - 1 do buf.[p] <- x.[xOff + p * incx]
                use px = fixed buf
                gemvKernel32 trans rows cols pa lda px py incy accumulate
            finally
                ArrayPool<float32>.Shared.Return(buf)

    /// Writes the first `w` lanes of v (all when w >= L32, none when w <= 0) to C at cp: C = v or C + v.
    let inline private putNarrow32 (cp: nativeptr<float32>) (v: Vector256<float32>) (w: int) (overwrite: bool) =
        if w >= L32 then
            Vector256.Store((if overwrite then v else Vector256.Load(cp) + v), cp)
        else
            let mutable j = 0
            if w >= 4 then
                let lo = v.GetLower()
                Vector128.Store((if overwrite then lo else Vector128.Load(cp) + lo), cp)
                j <- 4
            while j < w do
                let t = v.GetElement j
                NativePtr.set cp j (if overwrite then t else NativePtr.get cp j + t)
                j <- j + 1

    /// C rows r < mr, columns < w (of nv vectors) (+)= the tile's rows (row r at tile + r*3*L32).
    let private narrowStore32 (tile: nativeptr<float32>) (nv: int) (c: nativeptr<float32>) (ldc: int) (mr: int) (w: int) (overwrite: bool) =
        for r in 0 .. mr - 1 do
            let cp = NativePtr.add c (r * ldc)
            let tp = NativePtr.add tile (r * 3 * L32)
            for v in 0 .. nv - 1 do
                putNarrow32 (NativePtr.add cp (v * L32)) (Vector256.Load(NativePtr.add tp (v * L32))) (w - v * L32) overwrite

    /// narrowTile64 for float32: C[mr x w] (ldc) = (overwrite ? 0 : C) + sum_p A(r, p) B(p, :) for p < kc, with
    /// A(r, p) at ar + p*aps (rows r >= mr point at row 0 and are not stored) and B(p, :) the nv vectors at
    /// bp + p*L32*nv (packed, zero-padded). Each element's sum over p starts from zero and is the blocked path's
    /// FMA chain, so both paths give the same bits. nv (2 or 3) is a literal after inlining.
    let inline private narrowTile32 (nv: int) (kc: int) (a0: nativeptr<float32>) (a1: nativeptr<float32>) (a2: nativeptr<float32>)
                                    (a3: nativeptr<float32>) (aps: int) (bp: nativeptr<float32>) (tile: nativeptr<float32>) (c: nativeptr<float32>)
                                    (ldc: int) (mr: int) (w: int) (overwrite: bool) =
        let z = Vector256<float32>.Zero
        let mutable c00 = z
        let mutable c01 = z
        let mutable c02 = z
        let mutable c10 = z
        let mutable c11 = z
        let mutable c12 = z
        let mutable c20 = z
        let mutable c21 = z
        let mutable c22 = z
        let mutable c30 = z
        let mutable c31 = z
        let mutable c32 = z
        let mutable b = bp
        let mutable off = 0
        let mutable p = kc
        while p > 0 do
            let b0 = Vector256.Load(b)
            let b1 = Vector256.Load(NativePtr.add b L32)
            let b2 = if nv > 2 then Vector256.Load(NativePtr.add b (2 * L32)) else z
            let x0 = Vector256.Create(NativePtr.get a0 off)
            c00 <- Vector256.FusedMultiplyAdd(x0, b0, c00)
            c01 <- Vector256.FusedMultiplyAdd(x0, b1, c01)
            if nv > 2 then c02 <- Vector256.FusedMultiplyAdd(x0, b2, c02)
            let x1 = Vector256.Create(NativePtr.get a1 off)
            c10 <- Vector256.FusedMultiplyAdd(x1, b0, c10)
            c11 <- Vector256.FusedMultiplyAdd(x1, b1, c11)
            if nv > 2 then c12 <- Vector256.FusedMultiplyAdd(x1, b2, c12)
            let x2 = Vector256.Create(NativePtr.get a2 off)
            c20 <- Vector256.FusedMultiplyAdd(x2, b0, c20)
            c21 <- Vector256.FusedMultiplyAdd(x2, b1, c21)
            if nv > 2 then c22 <- Vector256.FusedMultiplyAdd(x2, b2, c22)
            let x3 = Vector256.Create(NativePtr.get a3 off)
            c30 <- Vector256.FusedMultiplyAdd(x3, b0, c30)
            c31 <- Vector256.FusedMultiplyAdd(x3, b1, c31)
            if nv > 2 then c32 <- Vector256.FusedMultiplyAdd(x3, b2, c32)
            b <- NativePtr.add b (L32 * nv)
            off <- off + aps
            p <- p - 1
        // through the tile, so that no call follows while the accumulators are live (the JIT would spill them)
        let inline st (row: int) (v0: Vector256<float32>) (v1: Vector256<float32>) (v2: Vector256<float32>) =
            let tp = NativePtr.add tile (row * 3 * L32)
            Vector256.Store(v0, tp)
            Vector256.Store(v1, NativePtr.add tp L32)
            if nv > 2 then Vector256.Store(v2, NativePtr.add tp (2 * L32))
        st 0 c00 c01 c02
        st 1 c10 c11 c12
        st 2 c20 c21 c22
        st 3 c30 c31 c32
        narrowStore32 tile nv c ldc mr w overwrite

    // one method per vector count, so that each keeps its accumulators in registers
    let private narrowTile32v2 kc a0 a1 a2 a3 aps (bp: nativeptr<float32>) tile (c: nativeptr<float32>) ldc mr w overwrite =
        narrowTile32 2 kc a0 a1 a2 a3 aps bp tile c ldc mr w overwrite
    let private narrowTile32v3 kc a0 a1 a2 a3 aps (bp: nativeptr<float32>) tile (c: nativeptr<float32>) ldc mr w overwrite =
        narrowTile32 3 kc a0 a1 a2 a3 aps bp tile c ldc mr w overwrite

    /// Rows i0 .. i1 of C for the narrow path (single thread): per KC block, B's kc x n block packed into
    /// panels of 3 vectors (the last one or two of 2 vectors), zero-padded; then per NarrowMR rows of C, every panel.
    let private narrow32 (transA: bool) (n: int) (k: int) (a: float32[]) (aOff: int) (lda: int) (b: float32[]) (bOff: int) (ldb: int)
                         (c: float32[]) (cOff: int) (ldc: int) (accumulate: bool) (i0: int) (i1: int) =
        let struct (p3, p2) = narrowPanels ((n + L32 - 1) / L32)
        let npad = L32 * (3 * p3 + 2 * p2)
        let bufB = ArrayPool<float32>.Shared.Rent(KC32 * npad + 16)
        let tile = NativePtr.stackalloc<float32> (NarrowMR * 3 * L32)
        try
            use pB0 = fixed bufB
            use pa0 = fixed a
            use pb0 = fixed b
            use pc0 = fixed c
            let pB = align64 pB0
            let pa = NativePtr.add pa0 aOff
            let pb = NativePtr.add pb0 bOff
            let pc = NativePtr.add pc0 cOff
            let aps = if transA then lda else 1
            let ars = if transA then 1 else lda
            let mutable pcb = 0
            while pcb < k do
                let kc = min KC32 (k - pcb)
                let overwrite = (pcb = 0) && not accumulate
                // pack: panel t (width L32*nvT) at pB + kc*j0, row p of it at + p*L32*nvT
                let mutable j0 = 0
                for t in 0 .. p3 + p2 - 1 do
                    let nvT = if t < p3 then 3 else 2
                    let d = NativePtr.add pB (kc * j0)
                    for v in 0 .. nvT - 1 do
                        let j = j0 + L32 * v
                        let valid = n - j
                        let mk = Vector256.LessThan(Vector256<int32>.Indices, Vector256.Create(valid)).AsSingle()
                        let mutable s = NativePtr.add pb (pcb * ldb + j)
                        let mutable dd = NativePtr.add d (L32 * v)
                        for _ in 0 .. kc - 1 do
                            let x =
                                if valid >= L32 then Vector256.Load(s)
                                elif valid > 0 then Avx.MaskLoad(s, mk)
                                else Vector256<float32>.Zero
                            Vector256.Store(x, dd)
                            s <- NativePtr.add s ldb
                            dd <- NativePtr.add dd (L32 * nvT)
                    j0 <- j0 + L32 * nvT
                let mutable i = i0
                while i < i1 do
                    let mr = min NarrowMR (i1 - i)
                    let a0 = NativePtr.add pa (i * ars + pcb * aps)
                    let a1 = if mr > 1 then NativePtr.add a0 ars else a0
                    let a2 = if mr > 2 then NativePtr.add a0 (2 * ars) else a0
                    let a3 = if mr > 3 then NativePtr.add a0 (3 * ars) else a0
                    let cp = NativePtr.add pc (i * ldc)
                    let mutable j0 = 0
                    for t in 0 .. p3 + p2 - 1 do
                        let bp = NativePtr.add pB (kc * j0)
                        if t < p3 then narrowTile32v3 kc a0 a1 a2 a3 aps bp tile (NativePtr.add cp j0) ldc mr (n - j0) overwrite
                        else narrowTile32v2 kc a0 a1 a2 a3 aps bp tile (NativePtr.add cp j0) ldc mr (n - j0) overwrite
                        j0 <- j0 + L32 * (if t < p3 then 3 else 2)
                    i <- i + NarrowMR
                pcb <- pcb + KC32
        finally
            ArrayPool<float32>.Shared.Return(bufB)

    let private runNarrow32 (maxThreads: int) transA m n k (a: float32[]) aOff lda (b: float32[]) bOff ldb (c: float32[]) cOff ldc accumulate =
        let work = int64 m * int64 n * int64 k
        let units = (m + NarrowMR - 1) / NarrowMR
        let nt = min units (if work >= parallelThreshold then maxThreads else 1)
        if nt <= 1 then narrow32 transA n k a aOff lda b bOff ldb c cOff ldc accumulate 0 m
        else
            Parallel.For(0, nt, fun t ->
                let s = min m ((units * t / nt) * NarrowMR)
                let e = min m ((units * (t + 1) / nt) * NarrowMR)
                if e > s then narrow32 transA n k a aOff lda b bOff ldb c cOff ldc accumulate s e)
            |> ignore

    /// gemmF32 with an explicit upper bound on the number of threads (used by tests to check determinism).
    let internal gemmF32Threads (maxThreads: int) (transA: bool) (transB: bool) (m: int) (n: int) (k: int)
                                (a: float32[]) (aOff: int) (lda: int) (b: float32[]) (bOff: int) (ldb: int)
                                (c: float32[]) (cOff: int) (ldc: int) (accumulate: bool) : unit =
        checkArgs transA transB m n k a.Length aOff lda b.Length bOff ldb c.Length cOff ldc
        if m = 0 || n = 0 then ()
        elif k = 0 then
            if not accumulate then
                for i in 0 .. m - 1 do
                    Array.Fill(c, 0.0f, cOff + i * ldc, n)
        elif n <= SkinnyMax && n <= m then
            // One GEMV per column: C(:,j) = op(A) · op(B)(:,j)
            let xInc = if transB then 1 else ldb
            for j in 0 .. n - 1 do
                let xOff = if transB then bOff + j * ldb else bOff + j
                gemv32 transA m k a aOff lda b xOff xInc c (cOff + j) ldc accumulate
        elif m <= SkinnyMax then
            // One GEMV per row: C(i,:) = op(B)^T · op(A)(i,:)^T ; op(B)^T(j,p) = transB ? b[j*ldb + p] : b[p*ldb + j]
            let xInc = if transA then lda else 1
            for i in 0 .. m - 1 do
                let xOff = if transA then aOff + i else aOff + i * lda
                gemv32 (not transB) n k b bOff ldb a xOff xInc c (cOff + i * ldc) 1 accumulate
        elif n <= NarrowMax && not transB && Gemv.supported () then
            runNarrow32 (max 1 maxThreads) transA m n k a aOff lda b bOff ldb c cOff ldc accumulate
        else
            runBlocked32 (max 1 maxThreads) transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate

    /// C[m×n] (+)= op(A)[m×k] · op(B)[k×n]. Row-major. If transA, A is stored as k×m (element (i,p) at a[aOff + p*lda + i]),
    /// else m×k (a[aOff + i*lda + p]). Same for B (transB: stored n×k). C at c[cOff + i*ldc + j].
    /// accumulate=false overwrites C, true adds to it.
    let gemmF32 (transA: bool) (transB: bool) (m: int) (n: int) (k: int) (a: float32[]) (aOff: int) (lda: int)
                (b: float32[]) (bOff: int) (ldb: int) (c: float32[]) (cOff: int) (ldc: int) (accumulate: bool) : unit =
        gemmF32Threads Environment.ProcessorCount transA transB m n k a aOff lda b bOff ldb c cOff ldc accumulate

