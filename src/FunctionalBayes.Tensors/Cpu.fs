namespace FunctionalBayes.Tensors

open System
open System.Numerics
open System.Numerics.Tensors

/// The CPU backend: kernels over flat row-major arrays. Element-wise ops, comparisons, where, clamp and
/// reductions run natively in float32 and float64 (float32 sums of rows accumulate in float64 blocks);
/// the rarer ops (cumsum, scatterAdd, factorizations) widen float32 to float64; matrix products run
/// natively in both.
[<RequireQualifiedAccess; OptimizeFromFirstCall>]
module internal Cpu =

    let inline private ro (a: 'T[]) = ReadOnlySpan<'T>(a)
    /// An output array that the kernel overwrites completely: skipping the zeroing is free speed.
    let inline private fresh<'T> (n: int) : 'T[] = GC.AllocateUninitializedArray<'T>(n)
    let inline private roAt (a: 'T[]) (off: int) (len: int) = ReadOnlySpan<'T>(a, off, len)
    let inline private spAt (a: 'T[]) (off: int) (len: int) = Span<'T>(a, off, len)

    // ---- dtype views --------------------------------------------------------------------------

    let toF64 (s: Storage) : float[] =
        match s with
        | F64 a -> a
        | F32 a -> Array.map float a
        | I32 a -> Array.map float a
        | B a -> Array.map (fun b -> if b then 1.0 else 0.0) a
        | Device _ -> invalidOp "CPU backend: given a device tensor."

    let private ofF64Like (dt: Dtype) (a: float[]) : Storage =
        match dt with
        | Float64 -> F64 a
        | Float32 -> F32 (Array.map float32 a)
        | Dtype.Int32 -> I32 (Array.map int a)
        | Bool -> B (Array.map (fun v -> v <> 0.0) a)

    let cast (s: Storage) (dt: Dtype) : Storage =
        match s, dt with
        | F64 _, Float64 | F32 _, Float32 | I32 _, Dtype.Int32 | B _, Bool -> s
        | F32 a, Float64 -> F64 (Array.map float a)
        | _ -> ofF64Like dt (toF64 s)

    /// Runs a float64 kernel on any float storage, narrowing back to float32 when the input was float32.
    let inline private viaF64 (dt: Dtype) (f: unit -> float[]) : Storage =
        match dt with
        | Float32 -> F32 (Array.map float32 (f ()))
        | _ -> F64 (f ())

    // ---- broadcasting iteration ---------------------------------------------------------------

    /// Strides of `shape` seen through the broadcast output shape `outShape` (0 on broadcast axes).
    let bstrides (shape: int[]) (outShape: int[]) =
        let st = Shape.stridesOf shape
        let r = Array.zeroCreate outShape.Length
        let off = outShape.Length - shape.Length
        for i in 0 .. shape.Length - 1 do
            r.[i + off] <- if shape.[i] = 1 then 0 else st.[i]
        r

    /// Calls `row outOffset inOffsets` for every row (all axes but the last) of outShape.
    let inline private forRows (outShape: int[]) (strides: int[][]) ([<InlineIfLambda>] row: int -> int[] -> unit) =
        let rank = outShape.Length
        let last = if rank = 0 then 1 else outShape.[rank - 1]
        let nrows = if last = 0 then 0 else Shape.size outShape / last
        let idx = Array.zeroCreate (max 0 (rank - 1))
        let offs = Array.zeroCreate strides.Length
        for r in 0 .. nrows - 1 do
            row (r * last) offs
            // odometer over the leading axes
            let mutable d = rank - 2
            let mutable carry = true
            while carry && d >= 0 do
                idx.[d] <- idx.[d] + 1
                for k in 0 .. strides.Length - 1 do
                    offs.[k] <- offs.[k] + strides.[k].[d]
                if idx.[d] < outShape.[d] then carry <- false
                else
                    for k in 0 .. strides.Length - 1 do
                        offs.[k] <- offs.[k] - strides.[k].[d] * outShape.[d]
                    idx.[d] <- 0
                    d <- d - 1

    /// Materializes `a` (of `shape`) broadcast to `outShape`.
    let broadcastTo (a: 'T[]) (shape: int[]) (outShape: int[]) : 'T[] =
        if Shape.equal shape outShape then a
        else
            let r = fresh<'T> (Shape.size outShape)
            let st = bstrides shape outShape
            let rank = outShape.Length
            let last = if rank = 0 then 1 else outShape.[rank - 1]
            let ls = if rank = 0 then 0 else st.[rank - 1]
            forRows outShape [| st |] (fun o offs ->
                let i0 = offs.[0]
                if ls = 0 then Span<'T>(r, o, last).Fill(a.[i0])
                else Array.Copy(a, i0, r, o, last))
            r

    // ---- element-wise -------------------------------------------------------------------------

    let private unaryF64 (op: UnaryOp) (src: float[]) : float[] =
        let dst = fresh<float> src.Length
        (Ops.unary op).Decl.Span64.Invoke(ro src, Span<float>(dst))
        dst

    /// float32 unary kernels: computed natively (TensorPrimitives and Special's float32 kernels), no widening.
    let private unaryF32 (op: UnaryOp) (src: float32[]) : float32[] =
        let dst = fresh<float32> src.Length
        (Ops.unary op).Decl.Span32.Invoke(ReadOnlySpan<float32>(src), Span<float32>(dst))
        dst

    let unary (op: UnaryOp) (x: Storage) : Storage =
        match x with
        | F32 a -> F32 (unaryF32 op a)
        | _ -> viaF64 x.Dtype (fun () -> unaryF64 op (toF64 x))

    /// One row of a binary op by its declared element form, through float64 (the special functions).
    let private elementRow<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'T: equality>
                          (op: BinaryOp) (a: 'T[]) (ao: int) (aStep: int) (b: 'T[]) (bo: int) (bStep: int) (r: 'T[]) (ro0: int) (n: int) =
        let f = (Ops.binary op).Element
        for i in 0 .. n - 1 do
            r.[ro0 + i] <- 'T.CreateTruncating(f.Invoke(Double.CreateTruncating a.[ao + i * aStep], Double.CreateTruncating b.[bo + i * bStep]))

    /// One row of a broadcast binary op: dst = a op b where either side may be a repeated scalar, in
    /// float64 or float32 (a scalar power goes through Math.Pow in float64 for both).
    let internal binaryRow<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'T: equality>
                          (op: BinaryOp) (a: 'T[]) (ao: int) (aStep: int) (b: 'T[]) (bo: int) (bStep: int) (r: 'T[]) (ro0: int) (n: int) =
        let d = spAt r ro0 n
        if aStep = 1 && bStep = 1 then
            let x = roAt a ao n
            let y = roAt b bo n
            match op with
            | Add -> Simd.Add<'T>(x, y, d)
            | Sub -> Simd.Subtract<'T>(x, y, d)
            | Mul -> Simd.Multiply<'T>(x, y, d)
            | Div -> Simd.Divide<'T>(x, y, d)
            | Pow -> TensorPrimitives.Pow<'T>(x, y, d)
            | Maximum -> Simd.Max<'T>(x, y, d)
            | Minimum -> Simd.Min<'T>(x, y, d)
            | StudentTLogCdf | GammaLogP | GammaLogQ -> elementRow op a ao aStep b bo bStep r ro0 n
        elif bStep = 0 && aStep = 1 then
            let x = roAt a ao n
            let y = b.[bo]
            match op with
            | Add -> Simd.Add<'T>(x, y, d)
            | Sub -> Simd.Subtract<'T>(x, y, d)
            | Mul -> Simd.Multiply<'T>(x, y, d)
            | Div -> Simd.Divide<'T>(x, y, d)
            | Pow ->
                if y = 'T.One + 'T.One then Simd.Multiply<'T>(x, x, d)
                else TensorPrimitives.Pow<'T>(x, y, d)
            | Maximum -> Simd.Max<'T>(x, y, d)
            | Minimum -> Simd.Min<'T>(x, y, d)
            | StudentTLogCdf | GammaLogP | GammaLogQ -> elementRow op a ao aStep b bo bStep r ro0 n
        elif aStep = 0 && bStep = 1 then
            let x = a.[ao]
            let y = roAt b bo n
            match op with
            | Add -> Simd.Add<'T>(y, x, d)
            | Sub -> Simd.Subtract<'T>(x, y, d)
            | Mul -> Simd.Multiply<'T>(y, x, d)
            | Div -> Simd.Divide<'T>(x, y, d)
            | Pow -> TensorPrimitives.Pow<'T>(x, y, d)
            | Maximum -> Simd.Max<'T>(y, x, d)
            | Minimum -> Simd.Min<'T>(y, x, d)
            | StudentTLogCdf | GammaLogP | GammaLogQ -> elementRow op a ao aStep b bo bStep r ro0 n
        else
            let x = a.[ao]
            let y = b.[bo]
            let v =
                match op with
                | Add -> x + y
                | Sub -> x - y
                | Mul -> x * y
                | Div -> x / y
                | Pow -> 'T.CreateTruncating(Math.Pow(Double.CreateTruncating x, Double.CreateTruncating y))
                | Maximum -> if 'T.IsNaN x || 'T.IsNaN y then 'T.NaN else 'T.Max(x, y)
                | Minimum -> if 'T.IsNaN x || 'T.IsNaN y then 'T.NaN else 'T.Min(x, y)
                | StudentTLogCdf | GammaLogP | GammaLogQ ->
                    'T.CreateTruncating((Ops.binary op).Element.Invoke(Double.CreateTruncating x, Double.CreateTruncating y))
            d.Fill v

    /// Rows shorter than this go through binaryTiled: a call per row of a few elements cost ~70 ns an element.
    let private tiledBelow = 64

    /// One side of a broadcast binary op full, the other a short repeating pattern: the trailing broadcast
    /// (`row` false: [n, C] op [C], the pattern repeats every `last` elements) or the row broadcast (`row` true:
    /// [n, C] op [n, 1], one value per row of `last`). Chunks of whole rows (about 256 elements) go through one
    /// span call against the pattern laid out for the chunk; the per-element results are binaryRow's.
    let private binaryTiled<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'T: equality>
                          (op: BinaryOp) (full: 'T[]) (pattern: 'T[]) (row: bool) (patternLeft: bool) (r: 'T[]) (last: int) =
        let n = r.Length
        let rowsPer = max 1 (256 / last)
        let tile = Array.zeroCreate<'T> (rowsPer * last)
        if not row then
            for q in 0 .. rowsPer - 1 do Array.blit pattern 0 tile (q * last) last
        let mutable o = 0
        while o < n do
            let m = min tile.Length (n - o)
            if row then
                for q in 0 .. m / last - 1 do (spAt tile (q * last) last).Fill(pattern.[o / last + q])
            if patternLeft then binaryRow op tile 0 1 full o 1 r o m
            else binaryRow op full o 1 tile 0 1 r o m
            o <- o + m

    /// A broadcast binary op over whole arrays (float64 or float32).
    let private binaryOf<'T when 'T :> IFloatingPointIeee754<'T> and 'T: struct and 'T: (new: unit -> 'T) and 'T :> ValueType and 'T: equality>
                          (op: BinaryOp) (a: 'T[]) (aShape: int[]) (b: 'T[]) (bShape: int[]) (outShape: int[]) =
        let r = fresh<'T> (Shape.size outShape)
        let n = r.Length
        if n = 1 && a.Length = 1 && b.Length = 1 then
            // scalars (most ops of a small model): the IEEE ops directly, the same bits as the span kernels
            match op with
            | Add -> r.[0] <- a.[0] + b.[0]
            | Sub -> r.[0] <- a.[0] - b.[0]
            | Mul -> r.[0] <- a.[0] * b.[0]
            | Div -> r.[0] <- a.[0] / b.[0]
            | Pow | Maximum | Minimum | StudentTLogCdf | GammaLogP | GammaLogQ -> binaryRow op a 0 1 b 0 1 r 0 1
        elif n > 0 then
            if a.Length = n && b.Length = n then binaryRow op a 0 1 b 0 1 r 0 n
            elif b.Length = 1 && a.Length = n then binaryRow op a 0 1 b 0 0 r 0 n
            elif a.Length = 1 && b.Length = n then binaryRow op a 0 0 b 0 1 r 0 n
            else
                let sa = bstrides aShape outShape
                let sb = bstrides bShape outShape
                let rank = outShape.Length
                let last = outShape.[rank - 1]
                let la = sa.[rank - 1]
                let lb = sb.[rank - 1]
                // the IEEE ops only: a scalar Pow takes x·x for y = 2 in binaryRow, which a span Pow would not
                let tileable = (match op with Add | Sub | Mul | Div | Maximum | Minimum -> true | Pow | StudentTLogCdf | GammaLogP | GammaLogQ -> false)
                // the pattern's side repeats the output's last axis (trailing) or holds one value per row
                let trailing (p: 'T[]) (lp: int) = p.Length = last && lp = 1
                let perRow (p: 'T[]) (lp: int) = p.Length * last = n && lp = 0
                if tileable && last > 1 && last < tiledBelow && a.Length = n && (trailing b lb || perRow b lb) then
                    binaryTiled op a b (lb = 0) false r last
                elif tileable && last > 1 && last < tiledBelow && b.Length = n && (trailing a la || perRow a la) then
                    binaryTiled op b a (la = 0) true r last
                else
                    forRows outShape [| sa; sb |] (fun o offs -> binaryRow op a offs.[0] la b offs.[1] lb r o last)
        r

    let binary (op: BinaryOp) (a: RawTensor) (b: RawTensor) (outShape: int[]) : Storage =
        match a.Storage, b.Storage with
        | F32 x, F32 y -> F32 (binaryOf op x a.Shape y b.Shape outShape)
        | _ -> viaF64 a.Dtype (fun () -> binaryOf op (toF64 a.Storage) a.Shape (toF64 b.Storage) b.Shape outShape)

    /// A comparison by its declared span forms (Ops).
    let compare (op: CompareOp) (a: RawTensor) (b: RawTensor) (outShape: int[]) : Storage =
        let n = Shape.size outShape
        let d = (Ops.compare op).Decl
        let r = fresh<bool> n
        // Same-shape operands or a scalar on one side (ReLU's and clamp's masks): no broadcast copies.
        let steps = if n = 0 then None
                    elif a.Size = n && b.Size = n then Some (1, 1)
                    elif a.Size = n && b.Size = 1 then Some (1, 0)
                    elif a.Size = 1 && b.Size = n then Some (0, 1)
                    else None
        match steps, a.Storage, b.Storage with
        | Some (xs, ys), F32 x, F32 y -> d.Span32.Invoke(ro x, xs, ro y, ys, Span r)
        | Some (xs, ys), F64 x, F64 y -> d.Span64.Invoke(ro x, xs, ro y, ys, Span r)
        | _ -> d.Span64.Invoke(ro (broadcastTo (toF64 a.Storage) a.Shape outShape), 1, ro (broadcastTo (toF64 b.Storage) b.Shape outShape), 1, Span r)
        B r

    /// where by its declared span form for bool masks (Ops.whereSpan).
    let where (mask: RawTensor) (a: RawTensor) (b: RawTensor) (outShape: int[]) : Storage =
        let n = Shape.size outShape
        let step (t: RawTensor) = if t.Size = n then 1 elif t.Size = 1 then 0 else -1
        let pick (m: bool[]) (x: 'T[]) xs (y: 'T[]) ys =
            let r = fresh<'T> n
            Ops.whereSpan (ro m) (ro x) xs (ro y) ys (Span r)
            r
        match mask.Storage, a.Storage, b.Storage with
        | B m, F32 x, F32 y when n > 0 && m.Length = n && step a >= 0 && step b >= 0 -> F32 (pick m x (step a) y (step b))
        | B m, F64 x, F64 y when n > 0 && m.Length = n && step a >= 0 && step b >= 0 -> F64 (pick m x (step a) y (step b))
        | _ ->
        let m = match mask.Storage with
                | B m -> broadcastTo m mask.Shape outShape
                | _ -> invalidOp "where: the mask must be bool."
        let full (x: 'T[]) (y: 'T[]) = pick m (broadcastTo x a.Shape outShape) 1 (broadcastTo y b.Shape outShape) 1
        match a.Storage, b.Storage with
        | F64 x, F64 y -> F64 (full x y)
        | F32 x, F32 y -> F32 (full x y)
        | I32 x, I32 y -> I32 (full x y)
        | B x, B y -> B (full x y)
        | _ -> invalidOp "where: branch dtypes differ."

    /// clamp by its declared span forms (Ops).
    let clamp (lo: float) (hi: float) (x: Storage) : Storage =
        let d = Ops.clamp.Decl
        match x with
        | F32 a ->
            let r = fresh<float32> a.Length
            d.Span32.Invoke(float32 lo, float32 hi, ro a, Span r)
            F32 r
        | _ ->
        viaF64 x.Dtype (fun () ->
            let s = toF64 x
            let r = fresh<float> s.Length
            d.Span64.Invoke(lo, hi, ro s, Span r)
            r)

    // ---- reductions ---------------------------------------------------------------------------

    /// Reduces the middle axis of an [outer, n, inner] view.
    let private reduce3 (op: ReduceOp) (a: float[]) (outer: int) (n: int) (inner: int) : float[] =
        let r = if n = 0 then Array.zeroCreate<float> (outer * inner) else fresh<float> (outer * inner)
        if n = 0 then
            if op = Max then Array.Fill(r, Double.NegativeInfinity)
        elif inner = 1 then
            for o in 0 .. outer - 1 do
                let s = roAt a (o * n) n
                r.[o] <- (match op with Sum -> Simd.Sum s | Max -> Simd.Max s)
        else
            for o in 0 .. outer - 1 do
                let acc = spAt r (o * inner) inner
                (roAt a (o * n * inner) inner).CopyTo(acc)
                for j in 1 .. n - 1 do
                    let s = roAt a ((o * n + j) * inner) inner
                    match op with
                    | Sum -> Simd.Add(ReadOnlySpan<float>(r, o * inner, inner), s, acc)
                    | Max -> Simd.Max(ReadOnlySpan<float>(r, o * inner, inner), s, acc)
        r

    /// The sum of a float32 span in float64 (blocks of 256 widened into a pooled buffer and summed by
    /// the SIMD float64 kernel): the float64 sum of the float32 values, as before the kernels were native.
    let private sumF32 (s: ReadOnlySpan<float32>) : float =
        let buf = Buffers.ArrayPool<float>.Shared.Rent 256
        let mutable acc = 0.0
        let mutable i = 0
        while i < s.Length do
            let len = min 256 (s.Length - i)
            for j in 0 .. len - 1 do
                buf.[j] <- float s.[i + j]
            acc <- acc + Simd.Sum(ReadOnlySpan<float>(buf, 0, len))
            i <- i + len
        Buffers.ArrayPool<float>.Shared.Return buf
        acc

    /// reduce3 in float32: rows (inner = 1) are summed through float64 blocks; columns accumulate in float32.
    let private reduce3F32 (op: ReduceOp) (a: float32[]) (outer: int) (n: int) (inner: int) : float32[] =
        let r = if n = 0 then Array.zeroCreate<float32> (outer * inner) else fresh<float32> (outer * inner)
        if n = 0 then
            if op = Max then Array.Fill(r, Single.NegativeInfinity)
        elif inner = 1 then
            for o in 0 .. outer - 1 do
                let s = roAt a (o * n) n
                r.[o] <- (match op with Sum -> float32 (sumF32 s) | Max -> Simd.Max s)
        else
            for o in 0 .. outer - 1 do
                let acc = spAt r (o * inner) inner
                (roAt a (o * n * inner) inner).CopyTo(acc)
                for j in 1 .. n - 1 do
                    let s = roAt a ((o * n + j) * inner) inner
                    match op with
                    | Sum -> Simd.Add(ReadOnlySpan<float32>(r, o * inner, inner), s, acc)
                    | Max -> Simd.Max(ReadOnlySpan<float32>(r, o * inner, inner), s, acc)
        r

    /// Reduces runs of consecutive axes, from the last run to the first.
    /// Reduces runs of consecutive axes (sorted), from the last run to the first. One run (a full sum, the
    /// unbroadcast of a gradient) is a single pass with no bookkeeping: the tape does this for every
    /// broadcast operand, mostly on tiny tensors.
    let private reduceRuns (reduce3: ReduceOp -> 'T[] -> int -> int -> int -> 'T[]) (op: ReduceOp) (a: 'T[]) (shape: int[]) (axes: int[]) : 'T[] =
        let product (s: int[]) lo hi =
            let mutable p = 1
            for k in lo .. hi do
                p <- p * s.[k]
            p
        let rank = shape.Length
        let mutable cur = a
        let mutable oneRun = true
        for k in 1 .. axes.Length - 1 do
            if axes.[k] <> axes.[k - 1] + 1 then oneRun <- false
        // only a second run writes to the shape
        let curShape = if oneRun then shape else Array.copy shape
        let mutable hi = axes.Length - 1
        while hi >= 0 do
            // the run axes.[lo .. hi] of consecutive axes
            let mutable lo = hi
            while lo > 0 && axes.[lo - 1] = axes.[lo] - 1 do
                lo <- lo - 1
            let a0, a1 = axes.[lo], axes.[hi]
            cur <- reduce3 op cur (product curShape 0 (a0 - 1)) (product curShape a0 a1) (product curShape (a1 + 1) (rank - 1))
            if lo > 0 then
                for k in a0 .. a1 do
                    curShape.[k] <- 1
            hi <- lo - 1
        cur

    let reduce (op: ReduceOp) (axes: int[]) (x: RawTensor) : Storage =
        match x.Storage with
        | F32 a -> F32 (reduceRuns reduce3F32 op a x.Shape axes)
        | _ -> viaF64 x.Dtype (fun () -> reduceRuns reduce3 op (toF64 x.Storage) x.Shape axes)

    let cumsum (axis: int) (reverse: bool) (x: RawTensor) : Storage =
        viaF64 x.Dtype (fun () ->
            let a = toF64 x.Storage
            let s = x.Shape
            let outer = Shape.size s.[.. axis - 1]
            let n = s.[axis]
            let inner = Shape.size s.[axis + 1 ..]
            let r = fresh<float> a.Length
            for o in 0 .. outer - 1 do
                for i in 0 .. inner - 1 do
                    let mutable acc = 0.0
                    for jj in 0 .. n - 1 do
                        let j = if reverse then n - 1 - jj else jj
                        let k = (o * n + j) * inner + i
                        acc <- acc + a.[k]
                        r.[k] <- acc
            r)

    // ---- layout -------------------------------------------------------------------------------

    let private mapStorage (s: Storage) (f: Array -> Array) : Storage =
        match s with
        | F64 a -> F64 (f a :?> float[])
        | F32 a -> F32 (f a :?> float32[])
        | I32 a -> I32 (f a :?> int[])
        | B a -> B (f a :?> bool[])
        | Device _ -> invalidOp "CPU backend: given a device tensor."

    let private permuteArr<'T> (a: 'T[]) (shape: int[]) (perm: int[]) : 'T[] =
        let rank = shape.Length
        let outShape = perm |> Array.map (fun p -> shape.[p])
        let inSt = Shape.stridesOf shape
        let r = Array.zeroCreate<'T> a.Length
        if a.Length > 0 then
            if rank = 2 && perm.[0] = 1 then
                // blocked 2-D transpose
                let m = shape.[0]
                let n = shape.[1]
                let bs = 32
                for i0 in 0 .. bs .. m - 1 do
                    for j0 in 0 .. bs .. n - 1 do
                        for i in i0 .. min (i0 + bs) m - 1 do
                            for j in j0 .. min (j0 + bs) n - 1 do
                                r.[j * m + i] <- a.[i * n + j]
            else
                let st = perm |> Array.map (fun p -> inSt.[p])
                let last = outShape.[rank - 1]
                let ls = st.[rank - 1]
                // strides of the input per output axis, as forRows expects
                forRows outShape [| st |] (fun o offs ->
                    let mutable k = offs.[0]
                    for j in 0 .. last - 1 do
                        r.[o + j] <- a.[k]
                        k <- k + ls)
        r

    let permute (perm: int[]) (x: RawTensor) : Storage =
        let shape = x.Shape
        match x.Storage with
        | F64 a -> F64 (permuteArr a shape perm)
        | F32 a -> F32 (permuteArr a shape perm)
        | I32 a -> I32 (permuteArr a shape perm)
        | B a -> B (permuteArr a shape perm)
        | Device _ -> invalidOp "CPU backend: given a device tensor."

    let broadcast (x: RawTensor) (outShape: int[]) : Storage =
        match x.Storage with
        | F64 a -> F64 (broadcastTo a x.Shape outShape)
        | F32 a -> F32 (broadcastTo a x.Shape outShape)
        | I32 a -> I32 (broadcastTo a x.Shape outShape)
        | B a -> B (broadcastTo a x.Shape outShape)
        | Device _ -> invalidOp "CPU backend: given a device tensor."

    /// Copies a box between a small and a large array: the shared loop of Slice (gather=true) and Pad.
    let private boxCopy (big: Array) (bigShape: int[]) (small: Array) (smallShape: int[]) (starts: int[]) (toSmall: bool) =
        let rank = bigShape.Length
        if Shape.size smallShape > 0 then
            if rank = 0 then
                if toSmall then Array.Copy(big, 0, small, 0, 1) else Array.Copy(small, 0, big, 0, 1)
            else
                let bst = Shape.stridesOf bigShape
                let mutable base0 = 0
                for d in 0 .. rank - 1 do
                    base0 <- base0 + starts.[d] * bst.[d]
                let last = smallShape.[rank - 1]
                forRows smallShape [| bst |] (fun o offs ->
                    if toSmall then Array.Copy(big, base0 + offs.[0], small, o, last)
                    else Array.Copy(small, o, big, base0 + offs.[0], last))

    let slice (starts: int[]) (lengths: int[]) (x: RawTensor) : Storage =
        mapStorage x.Storage (fun a ->
            let r = Array.CreateInstance(nonNull (a.GetType().GetElementType()), Shape.size lengths)
            boxCopy a x.Shape r lengths starts true
            r)

    let pad (starts: int[]) (shape: int[]) (x: RawTensor) : Storage =
        mapStorage x.Storage (fun a ->
            let r = Array.CreateInstance(nonNull (a.GetType().GetElementType()), Shape.size shape)
            boxCopy r shape a x.Shape starts false
            r)

    let concat (axis: int) (xs: RawTensor[]) (outShape: int[]) : Storage =
        let outer = Shape.size outShape.[.. axis - 1]
        let inner = Shape.size outShape.[axis + 1 ..]
        let total = outShape.[axis] * inner
        mapStorage xs.[0].Storage (fun a0 ->
            let r = Array.CreateInstance(nonNull (a0.GetType().GetElementType()), Shape.size outShape)
            let mutable colOff = 0
            for x in xs do
                let chunk = x.Shape.[axis] * inner
                let src = match x.Storage with
                          | F64 a -> a :> Array
                          | F32 a -> a :> Array
                          | I32 a -> a :> Array
                          | B a -> a :> Array
                          | Device _ -> invalidOp "CPU backend: given a device tensor."
                for o in 0 .. outer - 1 do
                    Array.Copy(src, o * chunk, r, o * total + colOff, chunk)
                colOff <- colOff + chunk
            r)

    /// The error of an index outside an axis (the tape's and compiled programs' gather and scatterAdd).
    let indexOutOfRange (op: string) (v: int) (size: int) =
        IndexOutOfRangeException(sprintf "%s: index %d is out of range for an axis of size %d." op v size)

    let private indicesOf (op: string) (idx: RawTensor) (size: int) =
        match idx.Storage with
        | I32 ix ->
            for v in ix do
                if v < 0 || v >= size then raise (indexOutOfRange op v size)
            ix
        | _ -> invalidArg "indices" (sprintf "%s: indices must be int32, got %O." op idx.Dtype)

    let gather (axis: int) (x: RawTensor) (idx: RawTensor) : Storage =
        let s = x.Shape
        let n = s.[axis]
        let ix = indicesOf "gather" idx n
        let outer = Shape.size s.[.. axis - 1]
        let inner = Shape.size s.[axis + 1 ..]
        mapStorage x.Storage (fun a ->
            let r = Array.CreateInstance(nonNull (a.GetType().GetElementType()), outer * ix.Length * inner)
            for o in 0 .. outer - 1 do
                for j in 0 .. ix.Length - 1 do
                    Array.Copy(a, (o * n + ix.[j]) * inner, r, (o * ix.Length + j) * inner, inner)
            r)

    let scatterAdd (axis: int) (size: int) (upd: RawTensor) (idx: RawTensor) : Storage =
        let ix = indicesOf "scatterAdd" idx size
        let s = upd.Shape
        let outer = Shape.size s.[.. axis - 1]
        let inner = Shape.size s.[axis + idx.Rank ..]
        viaF64 upd.Dtype (fun () ->
            let u = toF64 upd.Storage
            let r = Array.zeroCreate<float> (outer * size * inner)
            for o in 0 .. outer - 1 do
                for j in 0 .. ix.Length - 1 do
                    let dst = spAt r ((o * size + ix.[j]) * inner) inner
                    Simd.Add(ReadOnlySpan<float>(r, (o * size + ix.[j]) * inner, inner),
                             roAt u ((o * ix.Length + j) * inner) inner, dst)
            r)

    // ---- matrix product -----------------------------------------------------------------------

    let matmul (tA: bool) (tB: bool) (a: RawTensor) (b: RawTensor) (outShape: int[]) : Storage =
        let ra = a.Rank
        let rb = b.Rank
        let rank = outShape.Length
        let m = outShape.[rank - 2]
        let n = outShape.[rank - 1]
        let k = if tA then a.Shape.[ra - 2] else a.Shape.[ra - 1]
        let aMat = a.Shape.[ra - 2] * a.Shape.[ra - 1]
        let bMat = b.Shape.[rb - 2] * b.Shape.[rb - 1]
        let lda = a.Shape.[ra - 1]
        let ldb = b.Shape.[rb - 1]
        let batchShape = outShape.[.. rank - 3]
        let nb = Shape.size batchShape
        let aBatch = a.Shape.[.. ra - 3]
        let bBatch = b.Shape.[.. rb - 3]
        // A stack of row-major A against one B is one tall product.
        let tall = not tA && Shape.size bBatch = 1 && Shape.equal aBatch batchShape
        let sa = bstrides (Array.append aBatch [| 1; 1 |]) (Array.append batchShape [| 1; 1 |])
        let sb = bstrides (Array.append bBatch [| 1; 1 |]) (Array.append batchShape [| 1; 1 |])
        let offsets (st: int[]) (mat: int) =
            let o = Array.zeroCreate nb
            if nb > 0 && batchShape.Length > 0 then
                let bstr = st.[.. batchShape.Length - 1]
                let mutable i = 0
                forRows (Array.append batchShape [| 1 |]) [| Array.append bstr [| 0 |] |] (fun _ offs ->
                    o.[i] <- offs.[0] * mat
                    i <- i + 1)
            o
        let run (gemm: bool -> bool -> int -> int -> int -> 'T[] -> int -> int -> 'T[] -> int -> int -> 'T[] -> int -> int -> bool -> unit)
                (x: 'T[]) (y: 'T[]) =
            let c = fresh<'T> (nb * m * n)
            if tall then gemm false tB (nb * m) n k x 0 lda y 0 ldb c 0 n false
            else
                let ao = offsets sa aMat
                let bo = offsets sb bMat
                for i in 0 .. nb - 1 do
                    gemm tA tB m n k x ao.[i] lda y bo.[i] ldb c (i * m * n) n false
            c
        match a.Storage, b.Storage with
        | F64 x, F64 y -> F64 (run Gemm.gemmF64 x y)
        | F32 x, F32 y -> F32 (run Gemm.gemmF32 x y)
        | _ -> invalidOp "matmul: operand dtypes differ."

    // ---- factorizations ------------------------------------------------------------------------

    /// Lower Cholesky factor of the n×n matrix at a.[ao ..] (its lower triangle read) into l.[lo ..] (upper
    /// triangle zeroed). Raises on a pivot that is not positive, naming matrix `index` of a batch of `shape`.
    /// The tape and the compiled program both factor with it, so they give the same bits.
    /// Factors as choleskyInto does but never raises: the first pivot that is not positive (−1 when all
    /// are), with l filled up to that column. The positive-definite mask and the factorization share it.
    let tryCholeskyInto (n: int) (a: float[]) (ao: int) (l: float[]) (lo: int) =
        let mutable failed = -1
        let mutable j = 0
        while failed < 0 && j < n do
            let mutable s = a.[ao + j * n + j]
            for k in 0 .. j - 1 do
                s <- s - l.[lo + j * n + k] * l.[lo + j * n + k]
            if not (s > 0.0) || Double.IsPositiveInfinity s then
                failed <- j
                l.[lo + j * n + j] <- s
            else
                let d = sqrt s
                l.[lo + j * n + j] <- d
                for i in 0 .. j - 1 do
                    l.[lo + i * n + j] <- 0.0
                for i in j + 1 .. n - 1 do
                    let mutable t = a.[ao + i * n + j]
                    for k in 0 .. j - 1 do
                        t <- t - l.[lo + i * n + k] * l.[lo + j * n + k]
                    l.[lo + i * n + j] <- t / d
                j <- j + 1
        failed

    /// Lower Cholesky factor of the n×n matrix at a.[ao ..] (its lower triangle read) into l.[lo ..] (upper
    /// triangle zeroed). Raises on a pivot that is not positive, naming matrix `index` of a batch of `shape`.
    /// The tape and the compiled program both factor with it, so they give the same bits.
    let choleskyInto (shape: int[]) (index: int) (n: int) (a: float[]) (ao: int) (l: float[]) (lo: int) =
        let j = tryCholeskyInto n a ao l lo
        if j >= 0 then
            invalidArg "x" (sprintf "cholesky: matrix %d of the batch (shape %s) is not positive definite (pivot %d is %g)." index (Shape.format shape) j l.[lo + j * n + j])

    /// 1 where the n×n matrix at a.[ao ..] (lower triangle read) factors, else 0, on an n×n scratch.
    let positiveDefiniteAt (n: int) (a: float[]) (ao: int) (scratch: float[]) (so: int) =
        if tryCholeskyInto n a ao scratch so < 0 then 1.0 else 0.0

    let positiveDefinite (x: RawTensor) : Storage =
        let n = x.Shape.[x.Rank - 1]
        let a = toF64 x.Storage
        let batch = Shape.size x.Shape.[.. x.Rank - 3]
        let scratch = Array.zeroCreate<float> (n * n)
        B (Array.init batch (fun b -> positiveDefiniteAt n a (b * n * n) scratch 0 = 1.0))

    let cholesky (x: RawTensor) : Storage =
        let n = x.Shape.[x.Rank - 1]
        viaF64 x.Dtype (fun () ->
            let a = toF64 x.Storage
            let l = Array.zeroCreate<float> a.Length
            for b in 0 .. (if n = 0 then 0 else a.Length / (n * n)) - 1 do
                choleskyInto x.Shape b n a (b * n * n) l (b * n * n)
            l)

    /// Solves op(A) X = B by substitution for one triangular A (n×n at av.[ao ..], transposed when `t`) and
    /// B (n×k at rv.[ro ..]), writing X (n×k) at xv.[xo ..]; X may overwrite B (same array and offset).
    /// The tape and the compiled program both solve with it.
    let triangularSolveInto (lower: bool) (t: bool) (n: int) (k: int) (av: float[]) (ao: int) (rv: float[]) (ro: int) (xv: float[]) (xo: int) =
        // op(A) is lower triangular when exactly one of (lower, transposed) holds
        let forward = (lower <> t)
        let inline opA i j = if t then av.[ao + j * n + i] else av.[ao + i * n + j]
        for c in 0 .. k - 1 do
            for step in 0 .. n - 1 do
                let i = if forward then step else n - 1 - step
                let mutable s = rv.[ro + i * k + c]
                if forward then
                    for j in 0 .. i - 1 do
                        s <- s - opA i j * xv.[xo + j * k + c]
                else
                    for j in i + 1 .. n - 1 do
                        s <- s - opA i j * xv.[xo + j * k + c]
                xv.[xo + i * k + c] <- s / opA i i

    /// Solves op(A) X = B by substitution; A is [batch, n, n], B is [batch, n, k].
    let triangularSolve (lower: bool) (transpose: bool) (a: RawTensor) (b: RawTensor) : Storage =
        let n = a.Shape.[a.Rank - 1]
        let k = b.Shape.[b.Rank - 1]
        viaF64 a.Dtype (fun () ->
            let av = toF64 a.Storage
            let x = Array.copy (toF64 b.Storage)
            let batches = if n = 0 || k = 0 then 0 else x.Length / (n * k)
            for bt in 0 .. batches - 1 do
                triangularSolveInto lower transpose n k av (bt * n * n) x (bt * n * k) x (bt * n * k)
            x)

    /// The fused GLM log likelihood (GlmKernel), a scalar; float32 is widened (and the sum narrowed once).
    let glmLogLikelihood (family: GlmFamily) (xs: RawTensor[]) : Storage =
        let x = xs.[0]
        let alpha = toF64 xs.[1].Storage
        let v =
            GlmKernel.run family x.Shape.[0] x.Shape.[1] (toF64 x.Storage) 0 alpha 0 (alpha.Length > 1) (toF64 xs.[2].Storage) 0
                (toF64 xs.[3].Storage) 0 (toF64 xs.[4].Storage) 0 false [||] 0 false [||] 0
        match x.Dtype with
        | Float32 -> F32 [| float32 v |]
        | _ -> F64 [| v |]

    /// The fused categorical-logit GLM log likelihood (CategoricalGlmKernel), a scalar; float32 is widened
    /// (and the sum narrowed once).
    let categoricalGlmLogLikelihood (xs: RawTensor[]) : Storage =
        let x = xs.[0]
        let d, c = x.Shape.[1], xs.[1].Shape.[0]
        let v =
            CategoricalGlmKernel.run x.Shape.[0] d c (toF64 x.Storage) 0 (toF64 xs.[1].Storage) 0 (toF64 xs.[2].Storage) 0
                (toF64 xs.[3].Storage) 0 (toF64 xs.[4].Storage) 0 (Array.zeroCreate (CategoricalGlmKernel.scratchSize d c)) 0
                false [||] 0 false [||] 0
        match x.Dtype with
        | Float32 -> F32 [| float32 v |]
        | _ -> F64 [| v |]

    // ---- dispatch -----------------------------------------------------------------------------

    let execute (op: Op) (xs: RawTensor[]) (outShape: int[]) : RawTensor =
        let s =
            match op with
            | Unary u -> unary u xs.[0].Storage
            | Binary b -> binary b xs.[0] xs.[1] outShape
            | Compare c -> compare c xs.[0] xs.[1] outShape
            | Reduce (r, axes, _) -> reduce r axes xs.[0]
            | MatMul (tA, tB) -> matmul tA tB xs.[0] xs.[1] outShape
            | Permute perm -> permute perm xs.[0]
            | Reshape _ | StopGradient -> xs.[0].Storage
            | BroadcastTo shape -> broadcast xs.[0] shape
            | Concat axis -> concat axis xs outShape
            | Slice (starts, lengths) -> slice starts lengths xs.[0]
            | Pad (starts, shape) -> pad starts shape xs.[0]
            | Gather axis -> gather axis xs.[0] xs.[1]
            | ScatterAdd (axis, size) -> scatterAdd axis size xs.[0] xs.[1]
            | Cumsum (axis, rev) -> cumsum axis rev xs.[0]
            | Where -> where xs.[0] xs.[1] xs.[2] outShape
            | Clamp (lo, hi) -> clamp lo hi xs.[0].Storage
            | Cast dt -> cast xs.[0].Storage dt
            | Cholesky -> cholesky xs.[0]
            | PositiveDefinite -> positiveDefinite xs.[0]
            | TriangularSolve (lower, tr) -> triangularSolve lower tr xs.[0] xs.[1]
            | GlmLogLikelihood family -> glmLogLikelihood family xs
            | CategoricalGlmLogLikelihood -> categoricalGlmLogLikelihood xs
        RawTensor(outShape, s)

    /// The CPU backend as an IBackend value.
    let backend =
        { new IBackend with
            member _.Name = "cpu"
            member _.Execute(op, xs, outShape, _) = execute op xs outShape }
