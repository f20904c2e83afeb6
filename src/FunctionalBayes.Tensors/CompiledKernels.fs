namespace FunctionalBayes.Tensors

#nowarn "9" // NativePtr in smallGemm: every access is range-checked against the arrays first.

open System
open System.Numerics
open System.Runtime.InteropServices
open System.Runtime.Intrinsics
open System.Runtime.Intrinsics.X86
open Microsoft.FSharp.NativeInterop

/// One step of a compiled program that works on whole buffers: the forward kernel writes its output
/// into the value buffer, the backward kernel adds its inputs' adjoints into the adjoint buffer.
/// Offsets are fixed at compile time; a kernel holds no mutable state, so evaluators share it.
[<AbstractClass; OptimizeFromFirstCall>]
type internal ProgramKernel() =
    /// Computes the output from the inputs in `vals`.
    abstract Forward: vals: float[] * ints: int[][] -> unit
    /// Adds the inputs' adjoints (in `adjs`) from the output's adjoint.
    abstract Backward: vals: float[] * adjs: float[] * ints: int[][] -> unit

/// The buffer kernels of compiled programs, and the scalar functions generated code calls.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal CompiledKernels =

    let inline private ro (a: float[]) (off: int) (n: int) = ReadOnlySpan<float>(a, off, n)
    let inline private sp (a: float[]) (off: int) (n: int) = Span<float>(a, off, n)

    /// Flat index of the input element that feeds each element of the broadcast output (empty: the same index).
    let broadcastMap (inShape: int[]) (outShape: int[]) : int[] =
        if Shape.equal inShape outShape then [||]
        else
            let n = Shape.size outShape
            let st = Cpu.bstrides inShape outShape
            let outSt = Shape.stridesOf outShape
            Array.init n (fun i ->
                let mutable rem = i
                let mutable idx = 0
                for d in 0 .. outShape.Length - 1 do
                    let c = rem / outSt.[d]
                    rem <- rem - c * outSt.[d]
                    idx <- idx + c * st.[d]
                idx)

    let inline private at (map: int[]) (i: int) = if map.Length = 0 then i else map.[i]

    /// Element-wise unary op over a buffer: the span forms of its declaration (Ops).
    type Unary(u: UnaryOp, x: int, o: int, n: int, gx: int, go: int, scratch: int) =
        inherit ProgramKernel()
        let info = Ops.unary u
        override _.Forward(v, _) =
            // the scratch exists where the adjoint runs (the compiler allocates it then)
            match info.Decl.KeepForAdjoint with
            | ValueSome keep when scratch >= 0 -> keep.Invoke(ro v x n, sp v o n, sp v scratch n)
            | _ -> info.Decl.Span64.Invoke(ro v x n, sp v o n)
        override _.Backward(v, a, _) =
            if gx >= 0 then
                match info.Decl.Adjoint with
                | ValueSome adj -> adj.Invoke(ro v x n, ro v o n, ro a go n, ro a gx n, sp a gx n, sp v scratch n)
                | ValueNone ->
                    let f = info.VjpScalar
                    for i in 0 .. n - 1 do
                        a.[gx + i] <- a.[gx + i] + f.Invoke(a.[go + i], v.[x + i], v.[o + i])

    /// Adds s·ḡ (ḡ: n elements at `go`) into the adjoint at `gz` of an operand reached through `map`:
    /// plain (empty map), a broadcast scalar, a tile of `period` elements repeated, or any map.
    let private addAdjoint (a: float[]) (go: int) (n: int) (gz: int) (map: int[]) (isScalar: bool) (period: int) (s: float) =
        if map.Length = 0 then
            if s = 1.0 then Simd.Add(ro a gz n, ro a go n, sp a gz n)
            else Simd.Subtract(ro a gz n, ro a go n, sp a gz n)
        elif isScalar then a.[gz] <- a.[gz] + s * Simd.Sum(ro a go n)
        elif period > 0 then
            for q in 0 .. n / period - 1 do
                if s = 1.0 then Simd.Add(ro a gz period, ro a (go + q * period) period, sp a gz period)
                else Simd.Subtract(ro a gz period, ro a (go + q * period) period, sp a gz period)
        else
            for i in 0 .. n - 1 do
                a.[gz + map.[i]] <- a.[gz + map.[i]] + s * a.[go + i]

    /// A tile shorter than this is not worth a span call per tile: the mapped loop runs instead.
    [<Literal>]
    let private MinTile = 16

    /// o = x op y element by element through the maps (a broadcast that is not one span op): the
    /// arithmetic written out, the other ops by their compiled element form.
    let private binaryMapped (b: BinaryOp) (element: Func<float, float, float>) (v: float[]) (x: int) (xMap: int[]) (y: int) (yMap: int[]) (o: int) (n: int) =
        match b with
        | Add -> for i in 0 .. n - 1 do v.[o + i] <- v.[x + at xMap i] + v.[y + at yMap i]
        | Sub -> for i in 0 .. n - 1 do v.[o + i] <- v.[x + at xMap i] - v.[y + at yMap i]
        | Mul -> for i in 0 .. n - 1 do v.[o + i] <- v.[x + at xMap i] * v.[y + at yMap i]
        | Div -> for i in 0 .. n - 1 do v.[o + i] <- v.[x + at xMap i] / v.[y + at yMap i]
        | Pow | Maximum | Minimum | StudentTLogCdf | GammaLogP | GammaLogQ ->
            for i in 0 .. n - 1 do v.[o + i] <- element.Invoke(v.[x + at xMap i], v.[y + at yMap i])

    type Binary(b: BinaryOp, x: int, xMap: int[], y: int, yMap: int[], o: int, n: int, gx: int, gy: int, go: int) =
        inherit ProgramKernel()
        let xScalar = xMap.Length > 0 && xMap |> Array.forall (fun k -> k = 0)
        let yScalar = yMap.Length > 0 && yMap |> Array.forall (fun k -> k = 0)
        /// The period L when the map repeats the input's L elements (map.[i] = i mod L, L > 1), else 0.
        let tile (map: int[]) =
            if map.Length = 0 then 0
            else
                let l = (Array.max map) + 1
                if l > 1 && map.Length % l = 0 && map |> Array.mapi (fun i k -> k = i % l) |> Array.forall id then l else 0
        // (short tiles take the mapped loops: a span call per tile costs more than it saves)
        let xTile = let l = tile xMap in if l >= MinTile then l else 0
        let yTile = let l = tile yMap in if l >= MinTile then l else 0
        let info = Ops.binary b
        let element = info.Element
        override _.Forward(v, _) =
            // plain, scalar and tiled operands: the span kernel the tape uses (Cpu.binaryRow)
            if xMap.Length = 0 && yMap.Length = 0 then Cpu.binaryRow b v x 1 v y 1 v o n
            elif xMap.Length = 0 && yScalar then Cpu.binaryRow b v x 1 v y 0 v o n
            elif xScalar && yMap.Length = 0 then Cpu.binaryRow b v x 0 v y 1 v o n
            elif (xTile > 0 && yMap.Length = 0) || (xMap.Length = 0 && yTile > 0) then
                // one operand repeats a block over the other: one span op per block
                let l = max xTile yTile
                for q in 0 .. n / l - 1 do
                    Cpu.binaryRow b v (if xTile > 0 then x else x + q * l) 1 v (if yTile > 0 then y else y + q * l) 1 v (o + q * l) l
            else binaryMapped b element v x xMap y yMap o n
        override _.Backward(v, a, _) =
            let plain = xMap.Length = 0 && yMap.Length = 0
            match b with
            | Add | Sub ->
                if gx >= 0 then addAdjoint a go n gx xMap xScalar xTile 1.0
                if gy >= 0 then addAdjoint a go n gy yMap yScalar yTile (if b = Add then 1.0 else -1.0)
            | Mul when (xMap.Length = 0 && yScalar) || (xScalar && yMap.Length = 0) ->
                // one operand a broadcast scalar c, the other plain z: z̄ += ḡ·c, c̄ += Σ ḡ·z
                let z, gz, c, gc = if yScalar then x, gx, y, gy else y, gy, x, gx
                if gz >= 0 then Simd.MultiplyAdd(ro a go n, v.[c], ro a gz n, sp a gz n)
                if gc >= 0 then a.[gc] <- a.[gc] + Simd.Dot(ro a go n, ro v z n)
            | Div when xMap.Length = 0 && yScalar ->
                let yv = v.[y]
                if gx >= 0 then
                    for i in 0 .. n - 1 do
                        a.[gx + i] <- a.[gx + i] + a.[go + i] / yv
                if gy >= 0 then
                    let mutable s = 0.0
                    for i in 0 .. n - 1 do
                        s <- s + (a.[go + i] * v.[o + i]) / yv
                    a.[gy] <- a.[gy] - s
            | Mul when plain ->
                if gx >= 0 then Simd.MultiplyAdd(ro a go n, ro v y n, ro a gx n, sp a gx n)
                if gy >= 0 then Simd.MultiplyAdd(ro a go n, ro v x n, ro a gy n, sp a gy n)
            | Mul ->
                // the declared adjoints g·y and g·x, written out
                for i in 0 .. n - 1 do
                    let g = a.[go + i]
                    let xi = at xMap i
                    let yi = at yMap i
                    if gx >= 0 then a.[gx + xi] <- a.[gx + xi] + g * v.[y + yi]
                    if gy >= 0 then a.[gy + yi] <- a.[gy + yi] + g * v.[x + xi]
            | Div ->
                // the declared adjoints g/y and −(g·out)/y, written out
                for i in 0 .. n - 1 do
                    let g = a.[go + i]
                    let xi = at xMap i
                    let yi = at yMap i
                    if gx >= 0 then a.[gx + xi] <- a.[gx + xi] + g / v.[y + yi]
                    if gy >= 0 then a.[gy + yi] <- a.[gy + yi] + -((g * v.[o + i]) / v.[y + yi])
            | Pow | Maximum | Minimum | StudentTLogCdf | GammaLogP | GammaLogQ ->
                // the declared adjoints, element by element
                let fx = info.VjpXScalar
                let fy = info.VjpYScalar
                for i in 0 .. n - 1 do
                    let g = a.[go + i]
                    let xv = v.[x + at xMap i]
                    let yv = v.[y + at yMap i]
                    let ov = v.[o + i]
                    if gx >= 0 then a.[gx + at xMap i] <- a.[gx + at xMap i] + fx.Invoke(g, xv, yv, ov)
                    if gy >= 0 then a.[gy + at yMap i] <- a.[gy + at yMap i] + fy.Invoke(g, xv, yv, ov)
        member _.ScalarFlags = xScalar, yScalar

    /// Element-wise comparison (1 or 0) by its declared relation (Ops); no adjoint.
    type Compare(c: CompareOp, x: int, xMap: int[], y: int, yMap: int[], o: int, n: int) =
        inherit ProgramKernel()
        let rel = (Ops.compare c).Element
        override _.Forward(v, _) =
            for i in 0 .. n - 1 do
                v.[o + i] <- if rel.Invoke(v.[x + at xMap i], v.[y + at yMap i]) then 1.0 else 0.0
        override _.Backward(_, _, _) = ()

    let private whereYScalar (yMap: int[]) (n: int) = yMap.Length = n && n > 0 && Array.forall ((=) 0) yMap

    /// Whether where's mask and x are element-wise and y too or one broadcast value (a support check):
    /// its span forms then run on the buffers.
    let private wherePlain (mMap: int[]) (xMap: int[]) (yMap: int[]) (n: int) =
        mMap.Length = 0 && xMap.Length = 0 && (yMap.Length = 0 || whereYScalar yMap n)

    /// The scratch (elements) the Where kernel needs: none where its span forms run on the buffers, else
    /// room for the operands gathered through their maps (forward) and the branches' adjoints (backward).
    let whereScratch (mMap: int[]) (xMap: int[]) (yMap: int[]) (n: int) (gy: int) =
        if wherePlain mMap xMap yMap n && not (whereYScalar yMap n && gy >= 0) then 0 else 3 * n

    /// where(mask, a, b) with broadcasting (the mask holds 1 or 0), by its declared span forms (Ops): on the
    /// buffers (see wherePlain), else on operands gathered through the maps into `scratch`, with the
    /// branches' adjoints added back through the maps in element order.
    type Where(m: int, mMap: int[], x: int, xMap: int[], y: int, yMap: int[], o: int, n: int, gx: int, gy: int, go: int, scratch: int) =
        inherit ProgramKernel()
        let d = Ops.where.Decl
        let plain = wherePlain mMap xMap yMap n
        let yLen = if whereYScalar yMap n then 1 else n
        override _.Forward(v, _) =
            if plain then d.Span.Invoke(ro v m n, ro v x n, ro v y yLen, sp v o n)
            else
                let sx, sy = scratch + n, scratch + 2 * n
                for i in 0 .. n - 1 do
                    v.[scratch + i] <- v.[m + at mMap i]
                    v.[sx + i] <- v.[x + at xMap i]
                    v.[sy + i] <- v.[y + at yMap i]
                d.Span.Invoke(ro v scratch n, ro v sx n, ro v sy n, sp v o n)
        override _.Backward(v, a, _) =
            if scratch < 0 then
                if gx >= 0 then d.AdjointX.Invoke(ro v m n, ro a go n, sp a gx n)
                if gy >= 0 then d.AdjointY.Invoke(ro v m n, ro a go n, sp a gy n)
            else
                // each branch's adjoint (0 where not taken) into the scratch, then added in element order,
                // as a broadcast operand's sum wants
                let mk = if plain then m else scratch
                let tx, ty = scratch + n, scratch + 2 * n
                if gx >= 0 then
                    (sp v tx n).Clear()
                    d.AdjointX.Invoke(ro v mk n, ro a go n, sp v tx n)
                if gy >= 0 then
                    (sp v ty n).Clear()
                    d.AdjointY.Invoke(ro v mk n, ro a go n, sp v ty n)
                for i in 0 .. n - 1 do
                    if gx >= 0 then a.[gx + at xMap i] <- a.[gx + at xMap i] + v.[tx + i]
                    if gy >= 0 then a.[gy + at yMap i] <- a.[gy + at yMap i] + v.[ty + i]

    /// clamp(x, lo, hi) by its declared span forms (Ops).
    type Clamp(lo: float, hi: float, x: int, o: int, n: int, gx: int, go: int) =
        inherit ProgramKernel()
        let d = Ops.clamp.Decl
        override _.Forward(v, _) = d.Span64.Invoke(lo, hi, ro v x n, sp v o n)
        override _.Backward(v, a, _) = if gx >= 0 then d.Adjoint.Invoke(lo, hi, ro v x n, ro a go n, sp a gx n)

    /// Sum or max over axes; `map` gives the output element of each input element (empty: all into one).
    /// Max keeps, per output element, the count of ties in `scratch` for its adjoint.
    type Reduce(r: ReduceOp, x: int, n: int, map: int[], o: int, m: int, scratch: int, gx: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            match r with
            | Sum ->
                if map.Length = 0 then v.[o] <- Simd.Sum(ro v x n)
                else
                    (sp v o m).Clear()
                    for j in 0 .. n - 1 do
                        v.[o + map.[j]] <- v.[o + map.[j]] + v.[x + j]
            | Max ->
                if map.Length = 0 then v.[o] <- (if n = 0 then Double.NegativeInfinity else Simd.Max(ro v x n))
                else
                    (sp v o m).Fill(Double.NegativeInfinity)
                    for j in 0 .. n - 1 do
                        let k = o + map.[j]
                        let xv = v.[x + j]
                        if Double.IsNaN xv || xv > v.[k] then v.[k] <- xv
        override _.Backward(v, a, _) =
            if gx >= 0 then
                match r with
                | Sum ->
                    if map.Length = 0 then
                        let g = a.[go]
                        Simd.Add(ro a gx n, g, sp a gx n)
                    else
                        for j in 0 .. n - 1 do
                            a.[gx + j] <- a.[gx + j] + a.[go + map.[j]]
                | Max ->
                    (sp v scratch m).Clear()
                    for j in 0 .. n - 1 do
                        let k = at map j
                        if v.[x + j] = v.[o + (if map.Length = 0 then 0 else k)] then
                            v.[scratch + (if map.Length = 0 then 0 else k)] <- v.[scratch + (if map.Length = 0 then 0 else k)] + 1.0
                    for j in 0 .. n - 1 do
                        let k = if map.Length = 0 then 0 else map.[j]
                        if v.[x + j] = v.[o + k] then a.[gx + j] <- a.[gx + j] + a.[go + k] / v.[scratch + k]

    /// Products with at most this many multiply-adds (and 4 ≤ n ≤ 8, k ≤ 128) take `smallGemm` instead of
    /// the GEMM kernels.
    [<Literal>]
    let SmallGemmLimit = 8192

    /// Whether `smallGemm` takes a product of these sizes.
    let smallGemmApplies (m: int) (n: int) (k: int) = m >= 1 && n >= 4 && n <= 8 && k >= 1 && k <= 128 && m * n * k <= SmallGemmLimit

    /// C[m×n] (+)= op(A)[m×k] · op(B)[k×n] for tiny products (see `smallGemmApplies`), with the conventions
    /// of Gemm.gemmF64 (row-major; transA: A stored k×m; transB: B stored n×k; ldc the row stride of C). No
    /// packing and no dispatch: op(B)'s rows are read 8 wide in place, or copied into k zero-padded rows of 8
    /// on the stack when they are not contiguous; a row of C is one 8-lane accumulator (AVX-512) or two of
    /// 4, eight or four rows at a time share op(B)'s loads. Every element is one fused multiply-add chain in
    /// p order, from C's value when accumulating: the same bits every call, wherever the row falls in its
    /// block. Stores are masked to the n lanes, so nothing past a row is written.
    let smallGemm (tA: bool) (tB: bool) (m: int) (n: int) (k: int) (a: float[]) (aOff: int) (lda: int)
                  (b: float[]) (bOff: int) (ldb: int) (c: float[]) (cOff: int) (ldc: int) (accumulate: bool) =
        if not (smallGemmApplies m n k) then
            invalidArg "n" (sprintf "smallGemm: sizes m=%d n=%d k=%d are outside its range (4 <= n <= 8, 1 <= k <= 128, m·n·k <= %d); use Gemm.gemmF64." m n k SmallGemmLimit)
        // strides of op(A)(i, p) and op(B)(p, j)
        let sAi, sAp = if tA then 1, lda else lda, 1
        let sBp, sBj = if tB then 1, ldb else ldb, 1
        if aOff < 0 || bOff < 0 || cOff < 0 || ldc < n
           || aOff + sAi * (m - 1) + sAp * (k - 1) >= a.Length || bOff + sBp * (k - 1) + sBj * (n - 1) >= b.Length
           || cOff + ldc * (m - 1) + n - 1 >= c.Length then
            invalidArg "a" (sprintf "smallGemm: operands out of range (m=%d n=%d k=%d, offsets %d %d %d, strides %d %d %d, lengths %d %d %d)."
                                m n k aOff bOff cOff lda ldb ldc a.Length b.Length c.Length)
        // op(B)'s rows are read in place when they are contiguous and 8 elements from the last one's start
        // are inside b (lanes past n read the next row: they are never stored); else copied, zero-padded.
        let direct = sBj = 1 && bOff + sBp * (k - 1) + 8 <= b.Length
        let bp = NativePtr.stackalloc<float> (if direct then 1 else k * 8)
        use pa0 = fixed a
        use pb0 = fixed b
        use pc0 = fixed c
        let rows, pitch =
            if direct then NativePtr.add pb0 bOff, sBp
            else
                for p in 0 .. k - 1 do
                    for j in 0 .. 7 do
                        NativePtr.set bp (p * 8 + j) (if j < n then NativePtr.get pb0 (bOff + p * sBp + j * sBj) else 0.0)
                bp, 8
        let inline aAt (pa: nativeptr<float>) (p: int) = NativePtr.get pa (p * sAp)
        let inline rowC (i: int) = NativePtr.add pc0 (cOff + i * ldc)
        let inline rowA (i: int) = NativePtr.add pa0 (aOff + i * sAi)
        // the three rows after i in a block of four; past the end, the last row again (not stored)
        let inline nextRows (i: int) = struct (min (i + 1) (m - 1), min (i + 2) (m - 1), min (i + 3) (m - 1))
        // lane masks of the n stored lanes (all bits set: the sign bit selects)
        let on = BitConverter.Int64BitsToDouble -1L
        let lane (j: int) = if j < n then on else 0.0
        if Avx512F.IsSupported then
            let mask = Vector512.Create(lane 0, lane 1, lane 2, lane 3, lane 4, lane 5, lane 6, lane 7)
            // accumulating: the chains start from C's rows, all loaded before any of the block is stored
            // (a load overlapping a just-issued masked store of the row before would wait for it)
            let inline init (i: int) = if accumulate then Avx512F.MaskLoad(rowC i, mask, Vector512<float>.Zero) else Vector512<float>.Zero
            let inline put (i: int) (v: Vector512<float>) = Avx512F.MaskStore(rowC i, mask, v)
            let mutable i = 0
            // eight rows at a time: eight independent chains hide the FMA latency
            while i + 8 <= m do
                let pa = rowA i
                let mutable c0 = init i
                let mutable c1 = init (i + 1)
                let mutable c2 = init (i + 2)
                let mutable c3 = init (i + 3)
                let mutable c4 = init (i + 4)
                let mutable c5 = init (i + 5)
                let mutable c6 = init (i + 6)
                let mutable c7 = init (i + 7)
                for p in 0 .. k - 1 do
                    let r = Vector512.Load(NativePtr.add rows (p * pitch))
                    let q = NativePtr.add pa (p * sAp)
                    c0 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q 0), r, c0)
                    c1 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q sAi), r, c1)
                    c2 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (2 * sAi)), r, c2)
                    c3 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (3 * sAi)), r, c3)
                    c4 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (4 * sAi)), r, c4)
                    c5 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (5 * sAi)), r, c5)
                    c6 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (6 * sAi)), r, c6)
                    c7 <- Vector512.FusedMultiplyAdd(Vector512.Create(NativePtr.get q (7 * sAi)), r, c7)
                put i c0
                put (i + 1) c1
                put (i + 2) c2
                put (i + 3) c3
                put (i + 4) c4
                put (i + 5) c5
                put (i + 6) c6
                put (i + 7) c7
                i <- i + 8
            // the rest four rows at a time (four chains even for one to three rows): rows past the end
            // repeat the last one and are not stored
            while i < m do
                let struct (i1, i2, i3) = nextRows i
                let pa, pa1, pa2, pa3 = rowA i, rowA i1, rowA i2, rowA i3
                let mutable c0 = init i
                let mutable c1 = init i1
                let mutable c2 = init i2
                let mutable c3 = init i3
                for p in 0 .. k - 1 do
                    let r = Vector512.Load(NativePtr.add rows (p * pitch))
                    c0 <- Vector512.FusedMultiplyAdd(Vector512.Create(aAt pa p), r, c0)
                    c1 <- Vector512.FusedMultiplyAdd(Vector512.Create(aAt pa1 p), r, c1)
                    c2 <- Vector512.FusedMultiplyAdd(Vector512.Create(aAt pa2 p), r, c2)
                    c3 <- Vector512.FusedMultiplyAdd(Vector512.Create(aAt pa3 p), r, c3)
                put i c0
                if i + 1 < m then put i1 c1
                if i + 2 < m then put i2 c2
                if i + 3 < m then put i3 c3
                i <- i + 4
        else
            let maskLo = Vector256.Create(lane 0, lane 1, lane 2, lane 3)
            let maskHi = Vector256.Create(lane 4, lane 5, lane 6, lane 7)
            // lanes from..from+3 of row i that are inside the row; zeros elsewhere
            let inline part (pc: nativeptr<float>) (from: int) (msk: Vector256<float>) =
                if Avx.IsSupported then Avx.MaskLoad(NativePtr.add pc from, msk)
                else
                    let at j = if from + j < n then NativePtr.get pc (from + j) else 0.0
                    Vector256.Create(at 0, at 1, at 2, at 3)
            let inline initLo (i: int) = if accumulate then part (rowC i) 0 maskLo else Vector256<float>.Zero
            let inline initHi (i: int) = if accumulate && n > 4 then part (rowC i) 4 maskHi else Vector256<float>.Zero
            let inline put (i: int) (lo: Vector256<float>) (hi: Vector256<float>) =
                let pc = rowC i
                if Avx.IsSupported then
                    Avx.MaskStore(pc, maskLo, lo)
                    if n > 4 then Avx.MaskStore(NativePtr.add pc 4, maskHi, hi)
                else
                    for j in 0 .. n - 1 do NativePtr.set pc j (if j < 4 then lo.GetElement j else hi.GetElement(j - 4))
            let mutable i = 0
            while i < m do
                let struct (i1, i2, i3) = nextRows i
                let pa, pa1, pa2, pa3 = rowA i, rowA i1, rowA i2, rowA i3
                let mutable l0 = initLo i
                let mutable h0 = initHi i
                let mutable l1 = initLo i1
                let mutable h1 = initHi i1
                let mutable l2 = initLo i2
                let mutable h2 = initHi i2
                let mutable l3 = initLo i3
                let mutable h3 = initHi i3
                for p in 0 .. k - 1 do
                    let r = NativePtr.add rows (p * pitch)
                    let lo = Vector256.Load r
                    let hi = Vector256.Load(NativePtr.add r 4)
                    let x0 = Vector256.Create(aAt pa p)
                    let x1 = Vector256.Create(aAt pa1 p)
                    let x2 = Vector256.Create(aAt pa2 p)
                    let x3 = Vector256.Create(aAt pa3 p)
                    l0 <- Vector256.FusedMultiplyAdd(x0, lo, l0)
                    h0 <- Vector256.FusedMultiplyAdd(x0, hi, h0)
                    l1 <- Vector256.FusedMultiplyAdd(x1, lo, l1)
                    h1 <- Vector256.FusedMultiplyAdd(x1, hi, h1)
                    l2 <- Vector256.FusedMultiplyAdd(x2, lo, l2)
                    h2 <- Vector256.FusedMultiplyAdd(x2, hi, h2)
                    l3 <- Vector256.FusedMultiplyAdd(x3, lo, l3)
                    h3 <- Vector256.FusedMultiplyAdd(x3, hi, h3)
                put i l0 h0
                if i + 1 < m then put i1 l1 h1
                if i + 2 < m then put i2 l2 h2
                if i + 3 < m then put i3 l3 h3
                i <- i + 4

    /// A batch of matrix products on the GEMM kernels, or `smallGemm` for tiny ones (one thread: same bits
    /// every call, no allocation).
    type MatMul(tA: bool, tB: bool, m: int, n: int, k: int, lda: int, ldb: int,
                x: int, xOffs: int[], y: int, yOffs: int[], o: int, gx: int, gy: int, go: int) =
        inherit ProgramKernel()
        let gemm tA tB m n k (a: float[]) aOff lda (b: float[]) bOff ldb (c: float[]) cOff ldc acc =
            if smallGemmApplies m n k then smallGemm tA tB m n k a aOff lda b bOff ldb c cOff ldc acc
            else Gemm.gemmF64Threads 1 tA tB m n k a aOff lda b bOff ldb c cOff ldc acc
        override _.Forward(v, _) =
            for i in 0 .. xOffs.Length - 1 do
                gemm tA tB m n k v (x + xOffs.[i]) lda v (y + yOffs.[i]) ldb v (o + i * m * n) n false
        override _.Backward(v, a, _) =
            for i in 0 .. xOffs.Length - 1 do
                let g = go + i * m * n
                if gx >= 0 then
                    if tA then gemm tB true k m n v (y + yOffs.[i]) ldb a g n a (gx + xOffs.[i]) m true
                    else gemm false (not tB) m k n a g n v (y + yOffs.[i]) ldb a (gx + xOffs.[i]) k true
                if gy >= 0 then
                    if tB then gemm true tA n k m a g n v (x + xOffs.[i]) lda a (gy + yOffs.[i]) k true
                    else gemm (not tA) false k n m v (x + xOffs.[i]) lda a g n a (gy + yOffs.[i]) n true

    /// Layout ops (permute, broadcast, slice, pad, concat): output element i reads input `src.[i]`
    /// at element `idx.[i]` (src -1: zero).
    type Copy(ins: int[], gins: int[], src: int[], idx: int[], o: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for i in 0 .. src.Length - 1 do
                let s = src.[i]
                v.[o + i] <- if s < 0 then 0.0 else v.[ins.[s] + idx.[i]]
        override _.Backward(_, a, _) =
            for i in 0 .. src.Length - 1 do
                let s = src.[i]
                if s >= 0 && gins.[s] >= 0 then a.[gins.[s] + idx.[i]] <- a.[gins.[s] + idx.[i]] + a.[go + i]

    /// The j-th of q indices: from the bound int array at `slot` (checked at bind), or, where `slot` is -1,
    /// from the value buffer at `idx` (int values computed from the parameters), checked here as the tape
    /// checks them.
    let inline private indexAt (op: string) (v: float[]) (ints: int[][]) (slot: int) (idx: int) (bound: int) (j: int) =
        if slot >= 0 then ints.[slot].[j]
        else
            let k = int v.[idx + j]
            if k < 0 || k >= bound then raise (Cpu.indexOutOfRange op k bound)
            k

    /// Gather along an axis by q int indices (see indexAt), and its adjoint.
    type Gather(x: int, outer: int, axisLen: int, inner: int, slot: int, idx: int, q: int, o: int, gx: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, ints) =
            for p in 0 .. outer - 1 do
                for j in 0 .. q - 1 do
                    let k = indexAt "gather" v ints slot idx axisLen j
                    Array.Copy(v, x + (p * axisLen + k) * inner, v, o + (p * q + j) * inner, inner)
        override _.Backward(v, a, ints) =
            if gx >= 0 then
                for p in 0 .. outer - 1 do
                    for j in 0 .. q - 1 do
                        let d = gx + (p * axisLen + indexAt "gather" v ints slot idx axisLen j) * inner
                        Simd.Add(ro a d inner, ro a (go + (p * q + j) * inner) inner, sp a d inner)

    /// Scatter-add of updates along an axis at q int indices (see indexAt), and its adjoint (a gather).
    type ScatterAdd(x: int, outer: int, size: int, inner: int, slot: int, idx: int, q: int, o: int, gx: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, ints) =
            (sp v o (outer * size * inner)).Clear()
            for p in 0 .. outer - 1 do
                for j in 0 .. q - 1 do
                    let d = o + (p * size + indexAt "scatterAdd" v ints slot idx size j) * inner
                    Simd.Add(ro v d inner, ro v (x + (p * q + j) * inner) inner, sp v d inner)
        override _.Backward(v, a, ints) =
            if gx >= 0 then
                for p in 0 .. outer - 1 do
                    for j in 0 .. q - 1 do
                        let d = gx + (p * q + j) * inner
                        Simd.Add(ro a d inner, ro a (go + (p * size + indexAt "scatterAdd" v ints slot idx size j) * inner) inner, sp a d inner)

    /// A cast that changes values (Ops.castChanges): Ops.castValue element by element; the adjoint of a
    /// float-to-float cast passes through.
    type Cast(dt: Dtype, x: int, o: int, n: int, gx: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for i in 0 .. n - 1 do
                v.[o + i] <- Ops.castValue dt v.[x + i]
        override _.Backward(_, a, _) = if gx >= 0 then Simd.Add(ro a gx n, ro a go n, sp a gx n)

    /// Rounds a float32 value, held in the float64 value buffer, to float32 after the op that computed it
    /// in float64: the program's float32 values are float32 values, as the tape's are.
    type RoundToFloat32(o: int, n: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for i in 0 .. n - 1 do
                v.[o + i] <- Ops.castValue Float32 v.[o + i]
        override _.Backward(_, _, _) = ()

    /// Cumulative sum along an axis of an [outer, n, inner] view.
    type Cumsum(x: int, outer: int, n: int, inner: int, reverse: bool, o: int, gx: int, go: int) =
        inherit ProgramKernel()
        static let run (src: float[]) (s: int) (dst: float[]) (d: int) outer n inner reverse (accumulate: bool) =
            for p in 0 .. outer - 1 do
                for i in 0 .. inner - 1 do
                    let mutable acc = 0.0
                    for jj in 0 .. n - 1 do
                        let j = if reverse then n - 1 - jj else jj
                        let k = (p * n + j) * inner + i
                        acc <- acc + src.[s + k]
                        if accumulate then dst.[d + k] <- dst.[d + k] + acc else dst.[d + k] <- acc
        override _.Forward(v, _) = run v x v o outer n inner reverse false
        override _.Backward(_, a, _) = if gx >= 0 then run a go a gx outer n inner (not reverse) true

    /// Solves op(A) X = B for a batch of triangular A (n×n) and B (n×k) by substitution; the adjoint
    /// solves the transposed system for B̄ (kept in `scratch`) and gives Ā = −B̄ Xᵀ (or −X B̄ᵀ), on A's triangle.
    type TriangularSolve(lower: bool, tr: bool, batch: int, n: int, k: int, a: int, b: int, o: int, scratch: int, ga: int, gb: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for q in 0 .. batch - 1 do
                Cpu.triangularSolveInto lower tr n k v (a + q * n * n) v (b + q * n * k) v (o + q * n * k)
        override _.Backward(v, adj, _) =
            for q in 0 .. batch - 1 do
                let bb = scratch + q * n * k
                Cpu.triangularSolveInto lower (not tr) n k v (a + q * n * n) adj (go + q * n * k) v bb
                if gb >= 0 then
                    for e in 0 .. n * k - 1 do
                        adj.[gb + q * n * k + e] <- adj.[gb + q * n * k + e] + v.[bb + e]
                if ga >= 0 then
                    let xo = o + q * n * k
                    for i in 0 .. n - 1 do
                        for j in 0 .. n - 1 do
                            if (if lower then i >= j else i <= j) then
                                let mutable s = 0.0
                                for c in 0 .. k - 1 do
                                    s <- s + (if tr then v.[xo + i * k + c] * v.[bb + j * k + c] else v.[bb + i * k + c] * v.[xo + j * k + c])
                                let idx = ga + q * n * n + i * n + j
                                adj.[idx] <- adj.[idx] - s

    /// The positive-definite mask of a batch of n×n matrices (1 or 0 per matrix), by the tape's routine
    /// (Cpu.positiveDefiniteAt) on one n×n scratch; no adjoint.
    type PositiveDefinite(batch: int, n: int, a: int, o: int, scratch: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for q in 0 .. batch - 1 do
                v.[o + q] <- Cpu.positiveDefiniteAt n v (a + q * n * n) v scratch
        override _.Backward(_, _, _) = ()

    /// Lower Cholesky factors L of a batch of n×n matrices A (`shape`: A's shape, for the error), by the
    /// tape's own routine (Cpu.choleskyInto): the same bits, and the same exception on a pivot that is not
    /// positive (a sampler counts it as a divergence). The adjoint is the tape's (Tensor.vjp, Murray 2016):
    /// Ā = sym(L⁻ᵀ Φ(Lᵀ L̄) L⁻¹), Φ the lower triangle with the diagonal halved, on one n×n `scratch`.
    type Cholesky(shape: int[], batch: int, n: int, a: int, o: int, scratch: int, ga: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            for q in 0 .. batch - 1 do
                Cpu.choleskyInto shape q n v (a + q * n * n) v (o + q * n * n)
        override _.Backward(v, adj, _) =
            if ga >= 0 then
                for q in 0 .. batch - 1 do
                    let l = o + q * n * n
                    let g = go + q * n * n
                    // P = Φ(Lᵀ L̄): L lower, so (Lᵀ L̄)ij = Σ_{k ≥ i} Lki L̄kj; only i ≥ j is kept
                    for i in 0 .. n - 1 do
                        for j in 0 .. n - 1 do
                            let mutable s = 0.0
                            if i >= j then
                                for k in i .. n - 1 do
                                    s <- s + v.[l + k * n + i] * adj.[g + k * n + j]
                            v.[scratch + i * n + j] <- if i = j then 0.5 * s else s
                    // W = L⁻ᵀ P, then L⁻ᵀ Wᵀ = Sᵀ with S = L⁻ᵀ P L⁻¹, all in place in the scratch
                    Cpu.triangularSolveInto true true n n v l v scratch v scratch
                    for i in 0 .. n - 1 do
                        for j in i + 1 .. n - 1 do
                            let t = v.[scratch + i * n + j]
                            v.[scratch + i * n + j] <- v.[scratch + j * n + i]
                            v.[scratch + j * n + i] <- t
                    Cpu.triangularSolveInto true true n n v l v scratch v scratch
                    // Ā += ½ (Sᵀ + S)
                    for i in 0 .. n - 1 do
                        for j in 0 .. n - 1 do
                            let idx = ga + q * n * n + i * n + j
                            adj.[idx] <- adj.[idx] + 0.5 * (v.[scratch + i * n + j] + v.[scratch + j * n + i])

    /// The fused GLM log likelihood (GlmKernel) of x (n×d at x), α (one value, or n when perRow), β, y and
    /// a float mask. Forward makes the value and, when there is a gradient, Xᵀr and Σr (at `gs`, d + 1
    /// values) and r (at `rs`, where ∂x or a per-row ∂α needs it) in the same pass over x; Backward scales
    /// them by the output's adjoint. y and the mask get no adjoint (data).
    type Glm(family: GlmFamily, n: int, d: int, x: int, a: int, perRow: bool, b: int, y: int, m: int, o: int,
             rs: int, gs: int, gx: int, ga: int, gb: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            let grad = gs >= 0
            v.[o] <- GlmKernel.run family n d v x v a perRow v b v y v m grad (if grad then v else [||]) gs (rs >= 0) (if rs >= 0 then v else [||]) rs
        override _.Backward(v, adj, _) =
            let g = adj.[go]
            if gb >= 0 then Simd.MultiplyAdd(ro v gs d, g, ro adj gb d, sp adj gb d)
            if ga >= 0 then
                if perRow then Simd.MultiplyAdd(ro v rs n, g, ro adj ga n, sp adj ga n)
                else adj.[ga] <- adj.[ga] + g * v.[gs + d]
            if gx >= 0 then
                for i in 0 .. n - 1 do
                    Simd.MultiplyAdd(ro v b d, g * v.[rs + i], ro adj (gx + i * d) d, sp adj (gx + i * d) d)

    /// The fused categorical-logit GLM log likelihood (CategoricalGlmKernel) of x (n×d at x), α [C], β [d, C],
    /// y (class ids) and a float mask. Forward makes the value and, when there is a gradient, XᵀR and ΣR (at
    /// `gs`, (d + 1)·C values) and R ([n, C] at `rs`, only where ∂x needs it) in the same pass over x, with
    /// the kernel's scratch at `scratch`; Backward scales them by the output's adjoint (∂x = g·R βᵀ, R scaled
    /// in place: Forward rewrites it). y and the mask get no adjoint (data).
    type CategoricalGlm(n: int, d: int, c: int, x: int, a: int, b: int, y: int, m: int, o: int,
                        scratch: int, rs: int, gs: int, gx: int, ga: int, gb: int, go: int) =
        inherit ProgramKernel()
        override _.Forward(v, _) =
            let grad = gs >= 0
            v.[o] <- CategoricalGlmKernel.run n d c v x v a v b v y v m v scratch grad (if grad then v else [||]) gs (rs >= 0) (if rs >= 0 then v else [||]) rs
        override _.Backward(v, adj, _) =
            let g = adj.[go]
            if gb >= 0 then Simd.MultiplyAdd(ro v gs (d * c), g, ro adj gb (d * c), sp adj gb (d * c))
            if ga >= 0 then Simd.MultiplyAdd(ro v (gs + d * c) c, g, ro adj ga c, sp adj ga c)
            if gx >= 0 && n > 0 && d > 0 then
                Simd.Multiply(ro v rs (n * c), g, sp v rs (n * c))
                // ∂x [n, d] += (g·R) [n, C] · βᵀ (β stored [d, C] is op(B) = βᵀ transposed)
                if smallGemmApplies n d c then smallGemm false true n d c v rs c v b c adj gx d true
                else Gemm.gemmF64Threads 1 false true n d c v rs c v b c adj gx d true
